/* test_core.c - status names, error messages, type table, half conversions. */
#include "core/core.h"
#include "core/half.h"
#include "test.h"

#include <math.h>
#include <string.h>

static void test_status(void)
{
    CHECK(strcmp(ntp_status_str(NTP_OK), "NTP_OK") == 0);
    CHECK(strcmp(ntp_status_str(NTP_E_FORMAT), "NTP_E_FORMAT") == 0);
    CHECK(strcmp(ntp_status_str((ntp_status)-999), "NTP_E_UNKNOWN") == 0);
    CHECK(strcmp(ntp_status_desc(NTP_E_TRUNCATED), "file truncated") == 0);
    CHECK(ntp__error(NTP_E_IO, "%s: cannot open", "x.gguf") == NTP_E_IO);
    CHECK(strcmp(ntp_last_error(), "x.gguf: cannot open") == 0);
    ntp__error_prefix("while loading %d", 3);
    CHECK(strcmp(ntp_last_error(), "while loading 3: x.gguf: cannot open") == 0);
    ntp__error_clear();
    CHECK(ntp_last_error()[0] == '\0');
    CHECK(strcmp(ntp_version(), "0.1.0") == 0);
}

static void test_types(void)
{
    /* Bytes per block from the ggml block definitions. */
    static const struct {
        enum ntp_type t;
        int64_t bs;
        size_t ts;
    } want[] = {
        {NTP_TYPE_F32, 1, 4},       {NTP_TYPE_F16, 1, 2},       {NTP_TYPE_BF16, 1, 2},
        {NTP_TYPE_Q4_0, 32, 18},    {NTP_TYPE_Q4_1, 32, 20},    {NTP_TYPE_Q5_0, 32, 22},
        {NTP_TYPE_Q5_1, 32, 24},    {NTP_TYPE_Q8_0, 32, 34},    {NTP_TYPE_Q8_1, 32, 36},
        {NTP_TYPE_Q2_K, 256, 84},   {NTP_TYPE_Q3_K, 256, 110},  {NTP_TYPE_Q4_K, 256, 144},
        {NTP_TYPE_Q5_K, 256, 176},  {NTP_TYPE_Q6_K, 256, 210},  {NTP_TYPE_Q8_K, 256, 292},
        {NTP_TYPE_IQ2_XXS, 256, 66}, {NTP_TYPE_IQ4_XS, 256, 136}, {NTP_TYPE_MXFP4, 32, 17},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ntp_type_traits *tt = ntp_type_get_traits(want[i].t);
        CHECK(tt != NULL);
        if (tt) {
            CHECK(tt->block_size == want[i].bs);
            CHECK(tt->type_size == want[i].ts);
        }
    }
    CHECK(ntp_type_get_traits(4) == NULL);
    CHECK(ntp_type_get_traits(-1) == NULL);
    CHECK(ntp_type_get_traits(NTP_TYPE_COUNT) == NULL);
    enum ntp_type t;
    CHECK_OK(ntp_type_from_name("q4_k", &t));
    CHECK(t == NTP_TYPE_Q4_K);
    CHECK_STATUS(ntp_type_from_name("q4_kk", &t), NTP_E_NOT_FOUND);
    CHECK_STATUS(ntp_type_from_name("q4", &t), NTP_E_NOT_FOUND);
    size_t sz;
    CHECK_OK(ntp_type_row_size(NTP_TYPE_Q4_K, 512, &sz));
    CHECK(sz == 288);
    CHECK_STATUS(ntp_type_row_size(NTP_TYPE_Q4_K, 100, &sz), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp_type_row_size(NTP_TYPE_F32, INT64_MAX, &sz), NTP_E_OVERFLOW);
}

static void test_half(void)
{
    /* Known binary16 encodings. */
    CHECK(ntp__f32_to_f16(1.0f) == 0x3c00);
    CHECK(ntp__f32_to_f16(-2.0f) == 0xc000);
    CHECK(ntp__f32_to_f16(65504.0f) == 0x7bff);
    CHECK(ntp__f32_to_f16(65520.0f) == 0x7c00);        /* rounds up to infinity */
    CHECK(ntp__f32_to_f16(0x1p-24f) == 0x0001);        /* smallest subnormal */
    CHECK(ntp__f32_to_f16(1.0f + 0x1p-11f) == 0x3c00); /* tie rounds to even */
    CHECK((ntp__f32_to_f16(NAN) & 0x7e00) == 0x7e00);
    CHECK(ntp__f16_to_f32(0x3555) == 0x1.554p-2f);
    CHECK(ntp__f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(isinf(ntp__f16_to_f32(0xfc00)) && ntp__f16_to_f32(0xfc00) < 0);
    /* Every finite binary16 survives the round trip exactly. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        if (ntp__f32_to_f16(ntp__f16_to_f32((ntp_f16)h)) != h)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(ntp__f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ntp__f32_to_bf16(ntp__f32_from_bits(0x3f808000u)) == 0x3f80); /* tie to even */
    CHECK(ntp__f32_to_bf16(ntp__f32_from_bits(0x3f818000u)) == 0x3f82);
    CHECK(ntp__bf16_to_f32(0xc040) == -3.0f);
}

int main(void)
{
    test_status();
    test_types();
    test_half();
    return ntp_test_result("test_core");
}
