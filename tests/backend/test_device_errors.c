/*
 * test_device_errors.c - a failure inside a device's worker threads reaches
 * the caller with its own message, and the device registry names what it
 * does not know.
 *
 * A CPU device of two threads runs one block whose matrices are Q8_K, a type
 * with no product kernel (it only ever holds activations): the kernel call
 * fails on the worker threads, and run_layers must return NTP_E_UNSUPPORTED
 * with the kernel's message (naming the type) prefixed by the device, not a
 * bare "a kernel failed". The team must survive it and run the next job.
 */
#include "backend/registry.h"
#include "core/core.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

enum { EMBD = 256, HEADS = 2, HD = 128, FF = 256, CTX = 8 };

/* A 2-D tensor of type t, ne0 x ne1, in zeroed host memory. */
static struct ntp_dev_tensor tensor(enum ntp_type t, int64_t ne0, int64_t ne1)
{
    size_t row = 0;
    CHECK_OK(ntp_type_row_size(t, ne0, &row));
    return (struct ntp_dev_tensor){
        .type = t, .ne = {ne0, ne1}, .row_stride = row, .data = calloc((size_t)ne1, row)};
}

static void test_worker_error(void)
{
    const struct ntp_device_spec spec = {.node = -1, .n_threads = 2};
    struct ntp_device *d = NULL;
    CHECK_OK(ntp__device_new("cpu", &spec, &d));
    if (d == NULL)
        return;
    const struct ntp_model_cfg cfg = {
        .hp = {.n_embd = EMBD,
               .n_layer = 1,
               .n_head = HEADS,
               .n_head_kv = HEADS,
               .head_dim_k = HD,
               .head_dim_v = HD,
               .n_ff = FF,
               .n_vocab = 16,
               .n_ctx = CTX,
               .n_rot = HD,
               .rms_eps = 1e-5f,
               .rope_freq_base = 10000.0f},
        .rope = {.n_rot = HD, .freq_base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f},
        .attn_scale = 0.088f,
    };
    const struct ntp_shard sh = {.n_layer = 1, .n_head = HEADS, .n_head_kv = HEADS, .n_ff = FF};
    struct ntp_dev_tensor layer[NTP_T_COUNT] = {{0}};
    layer[NTP_T_ATTN_NORM] = tensor(NTP_TYPE_F32, EMBD, 1);
    layer[NTP_T_FFN_NORM] = tensor(NTP_TYPE_F32, EMBD, 1);
    layer[NTP_T_ATTN_Q] = tensor(NTP_TYPE_Q8_K, EMBD, HEADS * HD);
    layer[NTP_T_ATTN_K] = tensor(NTP_TYPE_Q8_K, EMBD, HEADS * HD);
    layer[NTP_T_ATTN_V] = tensor(NTP_TYPE_Q8_K, EMBD, HEADS * HD);
    layer[NTP_T_ATTN_OUTPUT] = tensor(NTP_TYPE_Q8_K, HEADS * HD, EMBD);
    layer[NTP_T_FFN_GATE] = tensor(NTP_TYPE_Q8_K, EMBD, FF);
    layer[NTP_T_FFN_UP] = tensor(NTP_TYPE_Q8_K, EMBD, FF);
    layer[NTP_T_FFN_DOWN] = tensor(NTP_TYPE_Q8_K, FF, EMBD);
    const struct ntp_dev_weights w = {.layer = layer};
    const struct ntp_dev_state_params sp = {
        .cfg = &cfg, .shard = &sh, .w = &w, .n_ctx = CTX, .n_batch = 2, .kv_type = NTP_TYPE_F32};
    struct ntp_dev_state *s = NULL;
    CHECK_OK(d->iface->state_new(d, &sp, &s));
    float x[2 * EMBD];
    for (int i = 0; i < 2 * EMBD; i++)
        x[i] = (float)(i % 7) - 3.0f;
    if (s != NULL) {
        CHECK_OK(d->iface->hidden_write(d, s, x, 2));
        for (int round = 0; round < 2; round++) { /* the team survives and fails again */
            const struct ntp_dev_run run = {.pos = round * 2, .n_tok = 2, .layer1 = 1};
            CHECK_STATUS(d->iface->run_layers(d, s, &run), NTP_E_UNSUPPORTED);
            printf("run_layers: %s\n", ntp_last_error());
            CHECK(strstr(ntp_last_error(), "Q8_K") != NULL);
            CHECK(strstr(ntp_last_error(), d->desc) == ntp_last_error());
        }
    }
    d->iface->state_free(d, s);
    for (int i = 0; i < NTP_T_COUNT; i++)
        free(layer[i].data);
    d->iface->destroy(d);
}

static void test_unknown_kind(void)
{
    struct ntp_device *d = (struct ntp_device *)1;
    const struct ntp_device_spec spec = {.n_threads = 1};
    CHECK_STATUS(ntp__device_new("abacus", &spec, &d), NTP_E_UNSUPPORTED);
    CHECK(d == NULL);
    CHECK(strstr(ntp_last_error(), "abacus") != NULL);
    CHECK(ntp__device_kind("cpu") != NULL && ntp__device_kind("cuda") != NULL);
    char why[200] = "";
    CHECK(ntp__device_kind("cpu")->count(why, sizeof why) >= 1);
}

int main(void)
{
    test_worker_error();
    test_unknown_kind();
    return ntp_test_result("device_errors");
}
