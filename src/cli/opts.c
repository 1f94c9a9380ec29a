/* opts.c - the option parser of every numatp command (opts.h). */
#include "cli/opts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option as the user wrote it, for messages: "-t", or "--threads" from "--threads=4". */
struct spelling {
    const char *cmd;
    const char *s;
    int len;
};

/* Whether word is one of the space-separated names in list. */
static bool in_list(const char *list, const char *word, size_t len)
{
    for (const char *p = list; p && *p;) {
        const size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, word, len) == 0)
            return true;
        p += n + (p[n] == ' ');
    }
    return false;
}

/* The option arg[0, len) names; "--x=v" forms only match names that start with "--". */
static const struct ntp_cli_opt *find(const struct ntp_cli_opt *const *tables, const char *arg,
                                      size_t len, bool eq)
{
    if (eq && strncmp(arg, "--", 2) != 0)
        return NULL;
    for (; *tables; tables++)
        for (const struct ntp_cli_opt *o = *tables; o->name; o++)
            if ((strlen(o->name) == len && strncmp(o->name, arg, len) == 0) ||
                in_list(o->alias, arg, len))
                return o;
    return NULL;
}

static int bad(const struct spelling *sp, const char *v, const char *why)
{
    fprintf(stderr, "numatp %s: %.*s '%s' %s\n", sp->cmd, sp->len, sp->s, v, why);
    return 2;
}

static int out_of_range(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v)
{
    char range[96];
    if (o->kind == NTP_CLI_FLOAT)
        snprintf(range, sizeof range, o->positive ? "a number above 0" : "a finite number");
    else if (o->hi == INT64_MAX)
        snprintf(range, sizeof range, "%s%s%lld or more", o->word ? o->word : "",
                 o->word ? " or " : "", (long long)o->lo);
    else
        snprintf(range, sizeof range, "%s%s%lld .. %lld", o->word ? o->word : "",
                 o->word ? " or " : "", (long long)o->lo, (long long)o->hi);
    fprintf(stderr, "numatp %s: %.*s %s is out of range (%s)\n", sp->cmd, sp->len, sp->s, v, range);
    return 2;
}

/* One integer of option o: its word (for 0), or digits in [lo, hi] with nothing after them. */
static int parse_int(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v,
                     int64_t *out)
{
    if (o->word && strcmp(v, o->word) == 0) {
        *out = 0;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    const long long x = strtoll(v, &end, 10);
    if (end == v || *end || isspace((unsigned char)v[0])) {
        char why[64];
        snprintf(why, sizeof why, "is not %s%san integer", o->word ? o->word : "",
                 o->word ? " or " : "");
        return bad(sp, v, why);
    }
    if (errno == ERANGE || x < o->lo || x > o->hi)
        return out_of_range(sp, o, v);
    *out = x;
    return 0;
}

/* "1,2,4" into an ntp_cli_ints; each value as parse_int takes it. */
static int parse_ints(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v)
{
    struct ntp_cli_ints *l = o->dst;
    const int max_n = o->max_n > 1 ? o->max_n : 1;
    l->n = 0;
    if (max_n == 1)
        return parse_int(sp, o, v, &l->v[l->n++]);
    for (const char *p = v;; p++) {
        char one[64];
        const size_t n = strcspn(p, ",");
        if (l->n == max_n) {
            fprintf(stderr, "numatp %s: %.*s takes at most %d values\n", sp->cmd, sp->len, sp->s,
                    max_n);
            return 2;
        }
        if (n >= sizeof one)
            return bad(sp, v, "is not a list of integers");
        snprintf(one, sizeof one, "%.*s", (int)n, p);
        if (parse_int(sp, o, one, &l->v[l->n++]) != 0)
            return 2;
        p += n;
        if (*p == '\0')
            return 0;
    }
}

static int parse_float(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    const float x = strtof(v, &end);
    if (end == v || *end || isspace((unsigned char)v[0]))
        return bad(sp, v, "is not a number");
    if (errno == ERANGE || !isfinite(x) || (o->positive && !(x > 0)))
        return out_of_range(sp, o, v);
    *(float *)o->dst = x;
    return 0;
}

static int parse_choice(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v)
{
    char list[256] = "";
    size_t w = 0;
    for (int i = 0; o->choices[i]; i++) {
        if (strcmp(v, o->choices[i]) == 0) {
            *(int *)o->dst = i;
            return 0;
        }
        if (w < sizeof list)
            w += (size_t)snprintf(list + w, sizeof list - w, "%s%s",
                                  i ? ", " : "is not one of: ", o->choices[i]);
    }
    return bad(sp, v, list);
}

static int parse_value(const struct spelling *sp, const struct ntp_cli_opt *o, const char *v)
{
    switch (o->kind) {
    case NTP_CLI_INT:
        return parse_int(sp, o, v, o->dst);
    case NTP_CLI_INTS:
        return parse_ints(sp, o, v);
    case NTP_CLI_FLOAT:
        return parse_float(sp, o, v);
    case NTP_CLI_CHOICE:
        return parse_choice(sp, o, v);
    case NTP_CLI_STR:
        *(const char **)o->dst = v;
        return 0;
    case NTP_CLI_SIZE:
        return ntp_cli_parse_size(v, o->dst)
                   ? 0
                   : bad(sp, v, "is not a byte count above 0 (e.g. 64K, 512M, 2G)");
    case NTP_CLI_FLAG:
        break;
    }
    *(bool *)o->dst = true;
    return 0;
}

int ntp_cli_parse(const char *cmd, int argc, char **argv, const struct ntp_cli_opt *const *tables)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        const size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct ntp_cli_opt *o = find(tables, arg, len, eq != NULL);
        if (o == NULL) {
            fprintf(stderr, "numatp %s: unknown option '%s' (see numatp %s --help)\n", cmd, arg,
                    cmd);
            return 2;
        }
        const struct spelling sp = {cmd, arg, (int)len};
        if (o->kind == NTP_CLI_FLAG && eq) {
            fprintf(stderr, "numatp %s: %.*s takes no value\n", cmd, sp.len, arg);
            return 2;
        }
        const char *v = o->kind == NTP_CLI_FLAG ? ""
                        : eq                    ? eq + 1
                        : i + 1 < argc          ? argv[++i]
                                                : NULL;
        if (v == NULL) {
            fprintf(stderr, "numatp %s: %s needs a value\n", cmd, arg);
            return 2;
        }
        if (parse_value(&sp, o, v) != 0)
            return 2;
    }
    return 0;
}

bool ntp_cli_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return false;
    char *end = NULL;
    errno = 0;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    static const char units[] = "KMGT";
    int shift = 0;
    if (*end) {
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (u == NULL)
            return false;
        shift = 10 * (int)(u - units + 1);
        end++;
        if (*end == 'i')
            end++;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v == 0 || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}
