/* json.c - JSON values for the commands' reports (json.h). */
#include "cli/json.h"
#include "tokenizer/unicode.h"

#include <math.h>
#include <string.h>
#include <time.h>

void ntp_cli_json_strn(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        const size_t len = ntp__utf8_char(s + i, n - i);
        const unsigned char c = (unsigned char)s[i];
        if (len == 0)
            fputs("\\ufffd", f);
        else if (len > 1)
            fwrite(s + i, 1, len, f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
        i += len ? len : 1;
    }
    fputc('"', f);
}

void ntp_cli_json_str(FILE *f, const char *s)
{
    if (s == NULL)
        fputs("null", f);
    else
        ntp_cli_json_strn(f, s, strlen(s));
}

void ntp_cli_json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

void ntp_cli_iso_time(char *buf, size_t cap)
{
    const time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
