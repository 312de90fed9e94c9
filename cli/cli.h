/* cli.h — the lstm command line: subcommands and shared option parsing.
 * Only the CLI prints and exits: exit 1 for failures, 2 for usage errors. */
#ifndef LSTM_CLI_H
#define LSTM_CLI_H
#include <stddef.h>
#include <stdio.h>
#include <stdnoreturn.h>

#include "lstm.h"

/* Each subcommand gets argv with argv[0] = its name. Returns the exit status. */
int lstm_cmd_forward(int argc, char **argv);
int lstm_cmd_grad(int argc, char **argv);
int lstm_cmd_info(int argc, char **argv);
/* cli/cmd_train.c: the char-level language model */
int lstm_cmd_train(int argc, char **argv);
int lstm_cmd_eval(int argc, char **argv);
int lstm_cmd_sample(int argc, char **argv);
int lstm_cmd_bench(int argc, char **argv);

/* Option scanning: for (a.i = 1; a.i < a.argc; a.i++) { if (cli_opt_str(&a, "--model", &m)) continue; ...
 * cli_usage(&a, "unknown option '%s'", a.argv[a.i]); }  A value that is missing or
 * does not parse (or is out of [min, max]) is a usage error (exit 2). */
typedef struct {
    int argc;
    char **argv;
    int i;
    const char *cmd;
} cli_args;

int cli_opt_str(cli_args *a, const char *name, const char **val);
int cli_opt_long(cli_args *a, const char *name, long *val, long min, long max);
int cli_opt_double(cli_args *a, const char *name, double *val, double min, double max);
int cli_opt_flag(cli_args *a, const char *name, int *val);
/* "lstm CMD: message" on stderr, exit 2. */
noreturn void cli_usage(const cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "lstm: message" on stderr, exit 1. */
noreturn void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "lstm: MESSAGE" on one line (control bytes escaped), without exiting. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints lstm_last_error() (or the status name) and exits 1. */
noreturn void cli_fail_status(lstm_status s);

/* cli/paths.c: every file a command names, checked before any work.  For a
 * destination (dest 1): "" is a usage error; a directory, a dangling symlink
 * or a place it cannot be written is a failure (exit 1).  Two paths of which
 * one is a destination and that name the same file (device and inode, or the
 * same name in the same directory when not there yet; symlinks followed) are
 * a usage error unless allow_same names the other's flag. */
typedef struct {
    const char *flag;       /* "--out" */
    const char *path;       /* NULL: not given */
    int dest;
    const char *allow_same; /* a flag this one may equal (e.g. --checkpoint may be --resume) */
} cli_path;
void cli_check_paths(const cli_args *a, const cli_path *p, int n);
/* Takes an exclusive flock on DIR/.NAME.lock beside path (symlinks followed)
 * for the rest of the process, or exits 1 when another process holds it.
 * Devices and FIFOs are not locked.  The lock file is removed at exit. */
void cli_lock(const char *path, const char *flag);
/* Removes the lock files now (async-signal-safe: for a handler that then _exits). */
void cli_locks_unlink(void);
/* Flushes stdout; a write error anywhere on it (ENOSPC, EFBIG) exits 1.
 * main calls it after every command. */
void cli_finish_stdout(void);
/* Writes s to f as a JSON string: '"', '\\' and control bytes escaped (\u00XX),
 * valid UTF-8 as it is, and each byte that is not part of a valid UTF-8
 * sequence as \udcXX (Python's surrogateescape: os.fsencode(json.loads(...))
 * gives back the bytes of a file name). */
void cli_json_str(FILE *f, const char *s);
/* fwrite to stdout; a failure exits 1 with "writing WHAT to standard output failed: reason". */
void cli_write_stdout(const void *p, size_t n, const char *what);

#endif
