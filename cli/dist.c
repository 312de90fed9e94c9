/* dist.c — one process (build/lstm): see dist.h; cli/dist_mpi.c is the MPI one. */
#include "dist.h"

void cli_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
void cli_dist_finalize(void) {}
FILE *cli_dist_fail_out(const char **tag) {
    *tag = "";
    return stderr;
}
int cli_dist_err_fd(const char **tag) {
    *tag = "";
    return 2;
}
int cli_dist_rank(void) { return 0; }
int cli_dist_size(void) { return 1; }
int cli_dist_core_share(void) { return 0; }
const char *cli_dist_help(void) { return NULL; }
const lstm_reducer *cli_dist_reducer(void) { return NULL; }
int cli_dist_any(int flag) { return flag != 0; }
int cli_dist_differ(const uint64_t *v, int n) { (void)v; (void)n; return -1; }
lstm_status cli_dist_save(lstm_trainer *tr, const char *path, const char *const *meta_kv) {
    return lstm_trainer_save(tr, path, meta_kv);
}
