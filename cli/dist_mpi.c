/* dist_mpi.c — the processes of an Open MPI job (build/lstm-mpi, make mpi):
 * see dist.h.  Every collective is on MPI_COMM_WORLD from the main thread.
 * A rank that dies ends the job through mpirun (its default: any process
 * that exits abnormally or without MPI_Finalize takes the job down), so the
 * others never wait forever in a collective. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "internal.h" /* lstm__affinity, lstm__cores_in */

static int rank_, size_ = 1, core_share_;
static FILE *job_err_; /* a rank above 0: the job's stderr, for the line of a failure */

static int red_max_f32(void *ctx, float *buf, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) /* MPI_MAX may drop a NaN: make it +inf, which it keeps */
        if (buf[i] != buf[i]) buf[i] = INFINITY;
    return MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS;
}
static int red_sum_i64(void *ctx, int64_t *buf, size_t n) {
    (void)ctx; /* integer sums: exact, so any reduction order gives the same bits */
    return MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS;
}
static int red_allgather_f32(void *ctx, float *buf, size_t n) {
    (void)ctx;
    return MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)n, MPI_FLOAT, MPI_COMM_WORLD) != MPI_SUCCESS;
}
static lstm_reducer reducer_;

/* The cores of the union of the affinities of the ranks on this machine, over their number
 * (at least 1); 0 when the affinity or the machine's ranks cannot be had.  Collective. */
static int node_core_share(void) {
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return 0;
    int local = 1, n = 0, nmax = 0, ok, all_ok = 0;
    MPI_Comm_size(node, &local);
    unsigned char *mine = lstm__affinity(&n);
    /* (every rank takes part in every reduction, whatever its own outcome) */
    MPI_Allreduce(&n, &nmax, 1, MPI_INT, MPI_MAX, node);
    unsigned char *all = calloc(nmax > 0 ? (size_t)nmax : 1, 1);
    ok = mine && all;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, node);
    if (all_ok) { /* the same on every rank: all enter the union or none does */
        memcpy(all, mine, (size_t)n);
        MPI_Allreduce(MPI_IN_PLACE, all, nmax, MPI_UNSIGNED_CHAR, MPI_MAX, node); /* the union */
    }
    MPI_Comm_free(&node);
    const int cores = all_ok ? lstm__cores_in(all, nmax) : 0;
    free(mine);
    free(all);
    if (!all_ok) return 0;
    const int share = cores / (local > 0 ? local : 1);
    return share > 1 ? share : 1;
}

void cli_dist_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    core_share_ = node_core_share();
    reducer_ = (lstm_reducer){rank_, size_, NULL, red_max_f32, red_sum_i64, red_allgather_f32};
    if (rank_ > 0) { /* rank 0 speaks for the job */
        int fd = open("/dev/null", O_WRONLY), efd = fcntl(2, F_DUPFD_CLOEXEC, 3);
        if (efd >= 0 && !(job_err_ = fdopen(efd, "w"))) close(efd);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
}

void cli_dist_finalize(void) { MPI_Finalize(); }

int cli_dist_err_fd(const char **tag) {
    static char t[48];
    *tag = "";
    if (rank_ == 0 || !job_err_) return 2;
    snprintf(t, sizeof t, "rank %d of %d: ", rank_, size_);
    *tag = t;
    return fileno(job_err_);
}
FILE *cli_dist_fail_out(const char **tag) {
    if (cli_dist_err_fd(tag) == 2) return stderr;
    signal(SIGTERM, SIG_DFL); /* mpirun ending the job during the wait ends this process, silently */
    signal(SIGINT, SIG_DFL);
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return job_err_;
}
int cli_dist_rank(void) { return rank_; }
int cli_dist_size(void) { return size_; }
int cli_dist_core_share(void) { return core_share_; }
const char *cli_dist_help(void) {
    return "under mpirun with more than one process only 'train' runs (its batch split over the ranks);\n"
           "run the other commands without mpirun (or with -np 1)";
}
const lstm_reducer *cli_dist_reducer(void) { return size_ > 1 ? &reducer_ : NULL; }

int cli_dist_any(int flag) {
    int v = flag != 0;
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

int cli_dist_differ(const uint64_t *v, int n) {
    uint64_t hi[64], lo[64];
    if (size_ == 1 || n < 1 || n > 64) return -1;
    MPI_Allreduce(v, hi, n, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(v, lo, n, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++)
        if (hi[i] != lo[i]) return i;
    return -1;
}

lstm_status cli_dist_save(lstm_trainer *tr, const char *path, const char *const *meta_kv) {
    lstm_status st = lstm_trainer_sync_state(tr);
    if (st || rank_ > 0) return st;
    return lstm_trainer_save(tr, path, meta_kv);
}
