/* dist.h — the processes of one training run.  build/lstm links cli/dist.c
 * (one process); build/lstm-mpi (make mpi) links cli/dist_mpi.c instead: the
 * same CLI over Open MPI.  Only rank 0 prints (the others' stdout and stderr
 * go to /dev/null, but for the line of a failure: cli_dist_fail_out) and
 * writes files. */
#ifndef LSTM_CLI_DIST_H
#define LSTM_CLI_DIST_H
#include "lstm.h"

#include <stdio.h>

void cli_dist_init(int *argc, char ***argv); /* first thing in main */
/* Where a failure's line goes before its exit (cli_fail, cli_usage), and its
 * tag: stderr and "" for rank 0 (or one process); for a rank above 0 the
 * job's stderr (its own is /dev/null) and "rank R of N: ", after a wait of
 * 2 s: a failure every rank meets is reported once, by rank 0, since mpirun
 * ends the job when rank 0 exits; one only this rank meets (its file) still
 * gets its line. */
FILE *cli_dist_fail_out(const char **tag);
/* The descriptor of that stream and its tag, at once (no wait): for a signal
 * handler's line, written with write(2). */
int cli_dist_err_fd(const char **tag);
void cli_dist_finalize(void);                /* on a normal return from main */
int cli_dist_rank(void);
int cli_dist_size(void);
/* MPI: this rank's share of its machine's cores, the cores of the union of the affinities of
 * the ranks on the machine (MPI_COMM_TYPE_SHARED) divided by their number, >= 1; 0 without
 * MPI or where the affinity cannot be read (no cap). */
int cli_dist_core_share(void);
/* The lines 'lstm --help' ends with on what runs under mpirun, or NULL (build/lstm). */
const char *cli_dist_help(void);
/* The training reducer over all processes; NULL for one. */
const lstm_reducer *cli_dist_reducer(void);
/* Logical OR of flag over the processes (every rank must call it: the
 * decisions to stop are taken together). */
int cli_dist_any(int flag);
/* The index of the first of v[0..n) (n <= 64) whose value is not the same on
 * every process, or -1 (every rank must call it). */
int cli_dist_differ(const uint64_t *v, int n);
/* Gathers the carried state, then rank 0 writes the checkpoint (a status on
 * rank 0; LSTM_OK on the others). */
lstm_status cli_dist_save(lstm_trainer *tr, const char *path, const char *const *meta_kv);

#endif
