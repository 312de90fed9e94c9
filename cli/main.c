/* main.c — the lstm command: dispatches to the subcommands in the table. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

#ifndef LSTM_VERSION
#define LSTM_VERSION "0.1.0"
#endif

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help; /* one line */
} lstm_command;

static const lstm_command commands[] = {
    {"forward", lstm_cmd_forward, "run a model over a sequence (.npy in, .npy out)"},
    {"grad", lstm_cmd_grad, "gradients of sum(Y*GY) (+ hn, cn terms) w.r.t. parameters and inputs"},
    {"info", lstm_cmd_info, "print a model's inferred configuration and parameter count"},
    {"train", lstm_cmd_train, "train a char-level language model (truncated BPTT, checkpoints, resume)"},
    {"eval", lstm_cmd_eval, "a char model's loss (nats and bits per char) on a file"},
    {"sample", lstm_cmd_sample, "generate text from a char model"},
    {"bench", lstm_cmd_bench, "time forward, training or step-by-step streaming on random data"},
};

static void usage(FILE *fp) { /* --help */
    fprintf(fp, "usage: lstm COMMAND [OPTIONS]   (lstm COMMAND --help for its options)\n\ncommands:\n");
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        fprintf(fp, "  %-9s %s\n", commands[k].name, commands[k].help);
    fprintf(fp, "\n  --help    this text\n  --version print the version\n");
    const char *dist = cli_dist_help(); /* build/lstm-mpi: which commands mpirun may start */
    if (dist) fprintf(fp, "\n%s\n", dist);
}

int main(int argc, char **argv) {
    cli_dist_init(&argc, &argv); /* MPI_Init in build/lstm-mpi; nothing in build/lstm */
    if (argc < 2) {
        fprintf(stderr, "lstm: missing command (see 'lstm --help')\n");
        return 2;
    }
    /* a file over `ulimit -f` makes writes fail with EFBIG (reported) rather than kill us */
    signal(SIGXFSZ, SIG_IGN);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        cli_finish_stdout();
        cli_dist_finalize(); /* a return without MPI_Finalize is an abnormal end to mpirun: exit 1 */
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("lstm %s\n", LSTM_VERSION);
        cli_finish_stdout();
        cli_dist_finalize();
        return 0;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(cmd, commands[k].name) == 0) {
            if (cli_dist_size() > 1 && commands[k].fn != lstm_cmd_train) {
                /* only train splits its work over the ranks: any other command would run whole on
                 * every rank, each writing the same files.  Every rank refuses (rank 0's line is the
                 * job's: see cli_dist_fail_out) before reading its options. */
                cli_args a = {argc - 1, argv + 1, 0, cmd};
                cli_usage(&a, "only 'train' is distributed over MPI processes (%d here); run %s without mpirun or with -np 1",
                          cli_dist_size(), cmd);
            }
            int rc = commands[k].fn(argc - 1, argv + 1);
            cli_finish_stdout(); /* every command's stdout is checked, once, here */
            cli_dist_finalize();
            return rc;
        }
    fprintf(stderr, "lstm: unknown command '%s' (see 'lstm --help')\n", cmd);
    return 2;
}
