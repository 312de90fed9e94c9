/* util.c — option parsing and error exits shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

noreturn void cli_usage(const cli_args *a, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lstm %s: ", a->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'lstm %s --help')\n", a->cmd);
    exit(2);
}

noreturn void cli_fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lstm: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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

void cli_write_stdout(const void *p, size_t n, const char *what) {
    if (n && fwrite(p, 1, n, stdout) != n) cli_fail("writing %s to standard output failed: %s", what, strerror(errno));
}
