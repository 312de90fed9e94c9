/* util.c — option parsing and error exits shared by the subcommands. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

static size_t utf8_seq_len(const unsigned char *s);

/* Writes the message to f on one line: control bytes (a newline in a file
 * name, say) are written as \n, \r, \t or \xNN, and so is every byte that is
 * not part of valid UTF-8 (a Latin-1 file name): what is printed is text. */
static void put_escaped(FILE *f, const char *fmt, va_list ap) {
    char small[1024], *m = small;
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, fmt, aq);
    va_end(aq);
    if (n < 0) return;
    if ((size_t)n >= sizeof small && !(m = malloc((size_t)n + 1))) {
        vfprintf(f, fmt, ap); /* out of memory: as it is */
        return;
    }
    if (m != small) vsnprintf(m, (size_t)n + 1, fmt, ap);
    for (const unsigned char *p = (const unsigned char *)m; *p; p++) {
        const size_t len = *p >= 0x80 ? utf8_seq_len(p) : 0;
        if (len) { /* a whole UTF-8 character */
            fwrite(p, 1, len, f);
            p += len - 1;
        } else if (*p >= 0x20 && *p < 0x7f) fputc(*p, f);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p == '\t') fputs("\\t", f);
        else fprintf(f, "\\x%02x", *p);
    }
    if (m != small) free(m);
}

noreturn void cli_usage(const cli_args *a, const char *fmt, ...) {
    va_list ap;
    const char *tag;
    FILE *f = cli_dist_fail_out(&tag); /* under mpirun, a rank above 0: the job's stderr, after a wait */
    fprintf(f, "lstm %s: %s", a->cmd, tag);
    va_start(ap, fmt);
    put_escaped(f, fmt, ap);
    va_end(ap);
    fprintf(f, " (see 'lstm %s --help')\n", a->cmd);
    fflush(f);
    exit(2);
}

static void error_line(FILE *f, const char *tag, const char *fmt, va_list ap) {
    fprintf(f, "lstm: %s", tag);
    put_escaped(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
}

void cli_error(const char *fmt, ...) { /* not a failure of this rank alone: rank 0 speaks */
    va_list ap;
    va_start(ap, fmt);
    error_line(stderr, "", fmt, ap);
    va_end(ap);
}

noreturn void cli_fail(const char *fmt, ...) {
    va_list ap;
    const char *tag;
    FILE *f = cli_dist_fail_out(&tag);
    va_start(ap, fmt);
    error_line(f, tag, fmt, ap);
    va_end(ap);
    exit(1);
}

noreturn void cli_fail_status(lstm_status s) {
    const char *m = lstm_last_error();
    cli_fail("%s", m && *m ? m : lstm_status_str(s));
}

static const char *take_value(cli_args *a, const char *name) {
    if (a->i + 1 >= a->argc) cli_usage(a, "option %s needs a value", name);
    return a->argv[++a->i];
}

int cli_opt_str(cli_args *a, const char *name, const char **val) {
    if (strcmp(a->argv[a->i], name) != 0) return 0;
    *val = take_value(a, name);
    return 1;
}

int cli_opt_long(cli_args *a, const char *name, long *val, long min, long max) {
    if (strcmp(a->argv[a->i], name) != 0) return 0;
    const char *s = take_value(a, name);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        cli_usage(a, "option %s: expected an integer in [%ld, %ld], got '%s'", name, min, max, s);
    *val = v;
    return 1;
}

int cli_opt_double(cli_args *a, const char *name, double *val, double min, double max) {
    if (strcmp(a->argv[a->i], name) != 0) return 0;
    const char *s = take_value(a, name);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) <= DBL_MIN) errno = 0; /* underflow: the denormal or 0 it gives is the value */
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        cli_usage(a, "option %s: expected a number in [%g, %g], got '%s'", name, min, max, s);
    *val = v;
    return 1;
}

int cli_opt_flag(cli_args *a, const char *name, int *val) {
    if (strcmp(a->argv[a->i], name) != 0) return 0;
    *val = 1;
    return 1;
}

void cli_finish_stdout(void) {
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    if (bad && errno) cli_fail("writing to standard output failed: %s", strerror(errno));
    if (bad) cli_fail("writing to standard output failed");
}

/* Length of the valid UTF-8 sequence at s (lead byte s[0] >= 0x80), or 0 when
 * it is not one: a stray continuation byte, an overlong form, a surrogate
 * U+D800..DFFF, a code point above U+10FFFF or a truncated sequence.  s is
 * NUL-terminated, so a truncated sequence stops at a byte that is not 10xxxxxx. */
static size_t utf8_seq_len(const unsigned char *s) {
    unsigned c = s[0];
    size_t len;
    unsigned long cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0; /* 80..C1 (continuation, overlong 2-byte lead), F5..FF */
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

void cli_json_str(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        size_t len = *p < 0x80 ? 1 : utf8_seq_len(p);
        if (len > 1) fwrite(p, 1, len, f);
        else if (len == 0) fprintf(f, "\\udc%02x", *p); /* surrogateescape: a lone byte 0xXX is U+DCXX */
        else if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f); /* printable ASCII and DEL */
        p += len ? len : 1;
    }
    fputc('"', f);
}

void cli_write_stdout(const void *p, size_t n, const char *what) {
    if (n && fwrite(p, 1, n, stdout) != n) cli_fail("writing %s to standard output failed: %s", what, strerror(errno));
}
