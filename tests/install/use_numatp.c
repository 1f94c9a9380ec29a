/*
 * use_numatp.c MODEL - a program outside the tree, built against an installed
 * numatp with pkg-config (tests/install): the greedy continuation of "numatp"
 * from MODEL, 8 tokens at most, printed as `numatp run --temp 0 -n 8` prints it.
 */
#include <ntp.h>
#include <stdio.h>

static int fail(void) { return fprintf(stderr, "use_numatp: %s\n", ntp_last_error()), 1; }

int main(int argc, char **argv)
{
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    int32_t tok[16], n = 0;
    if (argc != 2 || ntp_model_load(argv[1], ntp_model_default_params(), &m) != NTP_OK ||
        ntp_context_new(m, ntp_context_default_params(), &c) != NTP_OK ||
        ntp_tokenize(m, "numatp", 6, true, true, tok, 16, &n) != NTP_OK)
        return fail();
    for (int i = 0; i < 8; i++, n = 1) { /* the prompt first, then each new token */
        if (ntp_decode(c, tok, n, false) != NTP_OK)
            return fail();
        const float *logits = ntp_get_logits(c, -1);
        tok[0] = 0;
        for (int32_t v = 1; v < ntp_model_n_vocab(m); v++)
            tok[0] = logits[v] > logits[tok[0]] ? v : tok[0];
        char piece[256];
        size_t len = 0;
        if (ntp_token_is_eog(m, tok[0]) ||
            ntp_token_to_piece(m, tok[0], piece, sizeof piece, &len) != NTP_OK)
            break;
        fwrite(piece, 1, len, stdout);
    }
    printf("\n");
    ntp_context_free(c);
    ntp_model_free(m);
    return 0;
}
