/* tokens.c - the public tokenizer calls, on the model's tokenizer. */
#include "model/model.h"

#include "core/core.h"
#include "tokenizer/tokenizer.h"

#include <string.h>

ntp_status ntp_tokenize(const ntp_model *m, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *tokens, int32_t cap, int32_t *n_out)
{
    ntp__error_clear();
    if (m == NULL || (text == NULL && len > 0) || cap < 0 || n_out == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_tokenize: bad arguments");
    size_t n = 0;
    ntp_status s = ntp__tokenizer_encode(m->tok, text ? text : "", len, add_special, parse_special,
                                         tokens, (size_t)cap, &n);
    if (n > INT32_MAX)
        return ntp__error(NTP_E_OVERFLOW, "ntp_tokenize: %zu tokens", n);
    *n_out = (int32_t)n;
    return s;
}

ntp_status ntp_token_to_piece(const ntp_model *m, int32_t token, char *buf, size_t cap,
                              size_t *len_out)
{
    size_t len = 0;
    const char *p = ntp__tokenizer_piece(m->tok, token, false, &len);
    if (p == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "token %d outside the vocabulary [0, %lld)",
                          (int)token, (long long)m->cfg.hp.n_vocab);
    *len_out = len;
    if (len > cap)
        return ntp__error(NTP_E_OVERFLOW, "token %d has %zu bytes, buffer holds %zu", (int)token,
                          len, cap);
    memcpy(buf, p, len);
    return NTP_OK;
}

int32_t ntp_token_bos(const ntp_model *m)
{
    return ntp__tokenizer_bos(m->tok);
}

int32_t ntp_token_eos(const ntp_model *m)
{
    return ntp__tokenizer_eos(m->tok);
}

bool ntp_token_is_eog(const ntp_model *m, int32_t token)
{
    return ntp__tokenizer_is_eog(m->tok, token);
}

bool ntp_model_add_bos(const ntp_model *m)
{
    return ntp__tokenizer_add_bos(m->tok);
}
