/*
 * cmd_tokenize.c - `numatp tokenize -m FILE (-p TEXT | -f FILE)`: the token
 * ids of a text under a GGUF file's tokenizer, as llama.cpp's llama-tokenize
 * computes them: one line of space-separated ids, or one `id 'piece'` line
 * per token with --pieces.
 */
#include "cli/cli.h"
#include "cli/io.h"
#include "cli/opts.h"
#include "ntp.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp tokenize -m FILE (-p TEXT | -f FILE) [options]\n\n"
            "Print the token ids of a text under the model's tokenizer (byte for byte\n"
            "what llama.cpp's llama-tokenize gives).\n\n"
            "options:\n"
            "  -m, --model FILE     GGUF file with the tokenizer (a vocabulary-only file will do)\n"
            "  -p, --prompt TEXT    the text\n"
            "  -f, --file FILE      read the text from FILE, byte for byte ('-': stdin)\n"
            "  --max-input-bytes N  refuse a text of more than N bytes (K, M, G: binary\n"
            "                       multiples; default %lluM)\n"
            "  --no-bos             do not add BOS/EOS even when the vocabulary asks for them\n"
            "  --no-parse-special   treat control-token texts such as <|im_start|> as text\n"
            "  --ids                print the line of ids (the default output)\n"
            "  --pieces             print one line per token: id 'piece'\n"
            "  -h, --help           this help\n",
            NTP_CLI_MAX_INPUT_DEFAULT >> 20);
}

static ntp_tokenizer *load_tokenizer(const char *path)
{
    ntp_gguf *g = NULL;
    ntp_tokenizer *t = NULL;
    if (ntp_gguf_open(path, &g) != NTP_OK || ntp__tokenizer_load(g, &t) != NTP_OK)
        fprintf(stderr, "numatp tokenize: %s\n", ntp_last_error());
    ntp_gguf_free(g);
    return t;
}

/* Tokenize, growing the id buffer once if the first guess was short. */
static int32_t *encode(const ntp_tokenizer *t, const char *text, size_t len, bool bos, bool special,
                       size_t *n)
{
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *ids = malloc(cap * sizeof *ids);
        if (!ids) {
            fprintf(stderr, "numatp tokenize: out of memory\n");
            return NULL;
        }
        ntp_status s = ntp__tokenizer_encode(t, text, len, bos, special, ids, cap, n);
        if (s == NTP_OK)
            return ids;
        free(ids);
        if (s != NTP_E_OVERFLOW) {
            fprintf(stderr, "numatp tokenize: %s\n", ntp_last_error());
            return NULL;
        }
        cap = *n;
    }
    fprintf(stderr, "numatp tokenize: internal error: token count changed\n");
    return NULL;
}

static void print_pieces(const ntp_tokenizer *t, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = ntp__tokenizer_piece(t, ids[i], true, &len);
        printf("%d '", (int)ids[i]);
        fwrite(p, 1, len, stdout);
        printf("'\n");
    }
}

int ntp_cli_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool no_bos = false, no_special = false, ids_line = false, pieces = false, help = false;
    uint64_t max_input = NTP_CLI_MAX_INPUT_DEFAULT;
    const struct ntp_cli_opt opts[] = {
        {"--model", "-m", NTP_CLI_STR, .dst = &model},
        {"--prompt", "-p", NTP_CLI_STR, .dst = &prompt},
        {"--file", "-f", NTP_CLI_STR, .dst = &file},
        {"--max-input-bytes", NULL, NTP_CLI_SIZE, .dst = &max_input},
        {"--no-bos", NULL, NTP_CLI_FLAG, .dst = &no_bos},
        {"--no-parse-special", NULL, NTP_CLI_FLAG, .dst = &no_special},
        {"--ids", NULL, NTP_CLI_FLAG, .dst = &ids_line},
        {"--pieces", NULL, NTP_CLI_FLAG, .dst = &pieces},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &help},
        {NULL},
    };
    int rc = ntp_cli_parse("tokenize", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
    if (rc)
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    if (!model || (!prompt) == (!file)) {
        fprintf(stderr, "numatp tokenize: %s (see numatp tokenize --help)\n",
                !model ? "-m FILE is required" : "give exactly one of -p TEXT and -f FILE");
        return 2;
    }
    size_t len = prompt ? strlen(prompt) : 0, n = 0;
    char *text = prompt ? NULL : ntp_cli_read_text("tokenize", file, max_input, &len);
    if (!prompt && !text)
        return 1;
    ntp_tokenizer *t = load_tokenizer(model);
    int32_t *ids = t ? encode(t, prompt ? prompt : text, len, !no_bos, !no_special, &n) : NULL;
    if (ids) {
        if (pieces)
            print_pieces(t, ids, n);
        for (size_t i = 0; i < n && (ids_line || !pieces); i++)
            printf("%s%d", i ? " " : "", (int)ids[i]);
        if (ids_line || !pieces)
            printf("\n");
    }
    rc = ids ? 0 : 1; /* main checks the writes */
    free(ids);
    free(text);
    ntp__tokenizer_free(t);
    return rc;
}
