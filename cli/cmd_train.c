/* cmd_train.c — lstm train / eval / sample: the char-level language model on
 * the command line.  Training checkpoints atomically, resumes bit for bit,
 * saves on Ctrl-C and stops on a non-finite loss. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io/fileio.h"
#include "corpus.h"
#include "dist.h"
#include "internal.h" /* lstm__cores_usable */

#define DEFAULT_CORPUS_DIR "/usr/share/common-licenses"

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads a whole file; exits with a one-line error on failure. */
static unsigned char *read_all(const char *path, size_t *n) {
    unsigned char *buf;
    lstm_status st = lstm__read_file(path, &buf, n);
    if (st) cli_fail_status(st);
    return buf;
}

static void fmt_eta(char *out, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) { snprintf(out, cap, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) {
    stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once; the last checkpoint stays good */
}

/* ---------------------------------------------------------------- train */

static const char train_usage[] =
    "usage: lstm train [--data FILE] [--init M0.safetensors] [--cell lstm|gru] [--hidden H] [--layers L]\n"
    "                  [--embed E] [--proj P] [--batch B] [--bptt T] [--steps N | --epochs N] [--time SECONDS]\n"
    "                  [--lr LR] [--optimizer adam|adamw|sgd] [--clip C] [--dropout D]\n"
    "                  [--weight-decay W] [--momentum M] [--nesterov] [--schedule constant|cosine]\n"
    "                  [--warmup K] [--lr-min X] [--val-fraction F] [--eval-every K] [--seed S]\n"
    "                  [--threads N] [--checkpoint FILE] [--checkpoint-every K] [--resume FILE]\n"
    "                  [--log LOG.jsonl] [--keep last|best] [--patience K] [--sample N] --out M.safetensors\n"
    "Trains Embedding -> LSTM (or GRU) -> Linear on the bytes of FILE (default: the texts under\n"
    DEFAULT_CORPUS_DIR ") by truncated BPTT over B streams of T-step blocks.\n"
    "  --data FILE        training text; its last F (--val-fraction, default 0.1) is validation;\n"
    "                     FILE,DIR,...: files and directories (their regular files by name)\n"
    "                     joined in that order; memory-mapped, any size\n"
    "  --keep last|best   --out gets the last weights, or those of the best validation loss\n"
    "  --patience K       stop after K evaluations without a better validation loss (0: never);\n"
    "                     this and --keep best need validation data (--val-fraction above 0)\n"
    "  --init M0          start from this model (architecture and vocabulary from it)\n"
    "  --cell lstm|gru    the recurrent cell (default lstm; a GRU has no --proj)\n"
    "  --hidden/--layers/--embed/--proj   a new model's sizes (default 128, 2, 64, 0)\n"
    "  --batch, --bptt    B streams (32), T steps per block (64)\n"
    "  --steps N          stop after step N (counted from the start, also on --resume);\n"
    "  --epochs N         or after N epochs; --time S: or after S seconds (default 60 s\n"
    "                     when none of the three is given)\n"
    "  --lr (3e-3), --optimizer (adam), --clip (1; 0 = off), --weight-decay (0; adamw 0.01),\n"
    "  --momentum (0.9, sgd), --nesterov, --schedule (constant; cosine decays to --lr-min\n"
    "  at the last step after --warmup linear steps), --dropout between layers (0)\n"
    "  --eval-every K     validation loss every K steps (100; 0 = only at the end)\n"
    "  --seed S           a new model's initial weights, dropout and --sample's draws (1)\n"
    "  --checkpoint FILE  (default OUT.ckpt) written every --checkpoint-every K steps (200),\n"
    "                     at the end and on Ctrl-C; atomically (tmp, fsync, rename)\n"
    "  --resume FILE      continue from a checkpoint; settings not given are taken from it,\n"
    "                     and so are --out, --checkpoint and --log unless one of them is\n"
    "                     given or FILE is not the checkpoint its run wrote (a copy)\n"
    "  --log LOG.jsonl    one JSON object per step\n"
    "  --threads N        threads for the LSTM/GRU (default, or 0: the cores this process may use,\n"
    "                     at most 8, and under MPI at most its share of the machine's cores;\n"
    "                     same bits for any N)\n"
    "  --sample N         print N sampled bytes to stdout when done\n"
    "Two runs may not write the same files: each holds a lock beside them.\n";

typedef struct {
    FILE *log;
    const char *log_path;
    int tty;
    double last_print;
} progress;

/* Whether the log record line[0..len) has "step":N with N <= last, the
 * digits read within the line (strtoll went on over a newline, and past the
 * end of the buffer). */
static int record_upto(const unsigned char *line, size_t len, int64_t last) {
    const unsigned char *p = memmem(line, len, "\"step\":", 7), *e = line + len;
    if (!p || (p += 7) == e || *p < '0' || *p > '9') return 0;
    int64_t v = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > last / 10 || v * 10 > last - d) return 0; /* past last */
        v = v * 10 + d;
    }
    return 1;
}

/* Rewrites the log at path (a regular file) with its records up to step
 * start_step, atomically (tmp + rename): a failure leaves it as it was. */
static void keep_log_records(const char *path, int64_t start_step) {
    unsigned char *old;
    size_t n;
    lstm_status st = lstm__read_file(path, &old, &n);
    if (st) cli_fail_status(st);
    lstm__afile a;
    if ((st = lstm__afile_open(&a, path))) cli_fail_status(st);
    for (size_t i = 0; i < n && !st;) {
        const unsigned char *nl = memchr(old + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (old + i)) + 1 : n - i;
        if (nl && record_upto(old + i, len, start_step)) st = lstm__afile_write(&a, old + i, len);
        i += len;
    }
    free(old);
    if (!st) st = lstm__afile_commit(&a);
    if (st) cli_fail("%s (rewriting the log for --resume; it is left as it was)", lstm_last_error());
}

/* Opens the log; on --resume keeps its records up to the resumed step.  Only
 * a regular file is read back: a FIFO or device (a pipe to another program,
 * /dev/stdout) is written into, since reading it would block or never end. */
static FILE *open_log(const char *path, int resuming, int64_t start_step) {
    const int alias = lstm__fd_alias(path);
    if (alias >= 0) { /* /dev/stdout and the like: that descriptor, at its offset (fileio.h) */
        FILE *f = lstm__fd_alias_open(alias);
        if (!f) cli_fail("%s: cannot open the log: %s", path, strerror(errno));
        return f;
    }
    struct stat st;
    if (resuming && stat(path, &st) == 0 && S_ISREG(st.st_mode)) keep_log_records(path, start_step);
    FILE *f = fopen(path, resuming ? "ab" : "wb");
    if (!f) cli_fail("%s: cannot open the log: %s", path, strerror(errno));
    return f;
}

/* The checkpoint metadata: every setting and the state of the run
 * (lstm_train_run_meta), and the data hash; replaces kv (freed). */
static const char **ckpt_meta(lstm_train_run *run, const char *hash_s, const char **kv) {
    const char *const *rkv = lstm_train_run_meta(run);
    int n = 0;
    while (rkv && rkv[n]) n++;
    free(kv);
    kv = calloc((size_t)n + 3, sizeof *kv);
    if (!rkv || !kv) cli_fail("out of memory");
    memcpy(kv, rkv, (size_t)n * sizeof *kv);
    kv[n++] = "train.data_hash";
    kv[n++] = hash_s;
    kv[n] = NULL;
    return kv;
}

/* Under mpirun every process must train the same run: the same settings, data
 * bytes, initial model and resumed state (only --threads, --time, --sample and
 * the paths of the data and of the destinations may differ).  Ranks that
 * differ would each train apart, or meet in different collectives (another
 * --eval-every or --patience: an MPI error or a hang); they stop here, before
 * any step, with one line naming what differs.  Call before ckpt_meta (it
 * renews the run's metadata list). */
static void check_ranks_alike(lstm_train_run *run, uint64_t data_hash, size_t n_all, const lstm_charlm *m,
                              const lstm_trainer *tr, const char *resume_path, const char *init_path) {
    static const char *const keys[] = {"cell", "batch", "bptt", "steps", "epochs", "lr", "optimizer", "clip",
                                       "dropout", "weight-decay", "momentum", "nesterov", "schedule", "warmup",
                                       "lr-min", "val-fraction", "eval-every", "seed", "checkpoint-every", "keep",
                                       "patience", "best_val", "bad_evals"};
    enum { NK = sizeof keys / sizeof keys[0], NV = NK + 5 };
    if (cli_dist_size() == 1) return;
    const char *const *kv = lstm_train_run_meta(run);
    if (!kv) cli_fail("out of memory");
    uint64_t v[NV];
    for (int k = 0; k < NK; k++) { /* each key: its value, or absent */
        v[k] = LSTM__FNV1A_INIT;
        for (int i = 0; kv[i]; i += 2)
            if (!strncmp(kv[i], "train.", 6) && !strcmp(kv[i] + 6, keys[k]))
                v[k] = lstm__fnv1a(LSTM__FNV1A_INIT, kv[i + 1], strlen(kv[i + 1]) + 1);
    }
    v[NK] = LSTM__FNV1A_INIT; /* every setting but the paths: a key not in the list above */
    for (int i = 0; kv[i]; i += 2)
        if (strcmp(kv[i], "train.data") && strcmp(kv[i], "train.checkpoint") && strcmp(kv[i], "train.log") &&
            strcmp(kv[i], "train.out")) {
            v[NK] = lstm__fnv1a(v[NK], kv[i], strlen(kv[i]) + 1);
            v[NK] = lstm__fnv1a(v[NK], kv[i + 1], strlen(kv[i + 1]) + 1);
        }
    v[NK + 1] = lstm__fnv1a(lstm__fnv1a(LSTM__FNV1A_INIT, &data_hash, sizeof data_hash), &n_all, sizeof n_all);
    const lstm_config *c = &m->net.cfg;
    int arch[6] = {m->V, m->E, c->cell, m->net.H, c->num_layers, c->proj_size};
    uint64_t hm = lstm__fnv1a(LSTM__FNV1A_INIT, arch, sizeof arch); /* the sizes apart from the weights: */
    v[NK + 2] = lstm__fnv1a(hm, m->vocab, (size_t)m->V);             /* (compared first, named as such) */
    v[NK + 3] = lstm__fnv1a(LSTM__FNV1A_INIT, m->params, m->n_params * sizeof(float));
    size_t nh = (size_t)c->num_layers * tr->cfg.batch * m->net.Hout, nc = (size_t)c->num_layers * tr->cfg.batch * m->net.H;
    uint64_t h = lstm__fnv1a(lstm__fnv1a(LSTM__FNV1A_INIT, &tr->step, sizeof tr->step), &tr->rng, sizeof tr->rng);
    if (tr->m1) h = lstm__fnv1a(h, tr->m1, tr->n_state * sizeof(float));
    if (tr->m2) h = lstm__fnv1a(h, tr->m2, tr->n_state * sizeof(float));
    h = lstm__fnv1a(h, tr->h, nh * sizeof(float));
    if (tr->c) h = lstm__fnv1a(h, tr->c, nc * sizeof(float));
    v[NK + 4] = h;
    int d = cli_dist_differ(v, NV);
    if (d < 0) return;
    char what[64];
    if (d < NK && strcmp(keys[d], "best_val") && strcmp(keys[d], "bad_evals")) /* those two: a checkpoint's state */
        snprintf(what, sizeof what, "--%s", keys[d]);
    else if (d == NK) snprintf(what, sizeof what, "settings");
    else if (d == NK + 1) snprintf(what, sizeof what, "--data (its bytes)");
    else if (d == NK + 2 && !resume_path && !init_path) /* (from a file, its sizes are the file's) */
        snprintf(what, sizeof what, "model size (--hidden, --layers, --embed or --proj)");
    else if (d <= NK + 3 && !resume_path) snprintf(what, sizeof what, "--init model");
    else snprintf(what, sizeof what, "--resume checkpoint");
    cli_fail("the %d processes were not started alike: their %s differs (every rank needs the same flags, data, "
             "--init and --resume files; --threads, --time and paths may differ)",
             cli_dist_size(), what);
}

/* Sets the run's setting "--key VALUE" (a usage error when the value is bad). */
static int parse_run_opt(cli_args *a, lstm_train_run *run) {
    const char *arg = a->argv[a->i];
    if (strncmp(arg, "--", 2) != 0) return 0;
    if (!strcmp(arg, "--nesterov")) return lstm_train_run_set(run, "nesterov", "1", NULL) == LSTM_OK;
    const char *v = a->i + 1 < a->argc ? a->argv[a->i + 1] : NULL;
    lstm_status st = lstm_train_run_set(run, arg + 2, v ? v : "", NULL);
    if (st == LSTM_ERR_MISSING) return 0; /* not a setting of the run */
    if (!v) cli_usage(a, "option %s needs a value", arg);
    if (st) cli_usage(a, "%s", lstm_last_error());
    a->i++;
    return 1;
}

int lstm_cmd_train(int argc, char **argv) {
    const char *init_path = NULL, *resume_path = NULL;
    long hidden = 128, layers = 2, embed = 64, proj = 0, sample_n = 0;
    /* the cores this process may run on (its affinity: taskset, a container; SMT siblings once), at most 8,
     * and under MPI at most its share of the cores its machine's ranks may run on (ranks that mpirun did
     * not bind, or bound to a socket, would otherwise each take every core) */
    long ncpu = lstm__cores_usable();
    const long share = cli_dist_core_share();
    if (share > 0 && ncpu > share) ncpu = share;
    const long auto_threads = ncpu < 8 ? ncpu : 8;
    long threads = auto_threads;
    double time_limit = 0;
    int help = 0, arch_given[4] = {0};
    lstm_train_run run;
    lstm_train_run_init(&run);
    cli_args a = {argc, argv, 0, "train"};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *arg = argv[a.i];
        if (cli_opt_str(&a, "--init", &init_path) || cli_opt_str(&a, "--resume", &resume_path) ||
            cli_opt_double(&a, "--time", &time_limit, 0, 1e9) ||
            cli_opt_long(&a, "--threads", &threads, 0, LSTM_MAX_THREADS) ||
            cli_opt_long(&a, "--sample", &sample_n, 0, 1 << 30) || cli_opt_flag(&a, "--help", &help) ||
            cli_opt_flag(&a, "-h", &help))
            continue;
        if (cli_opt_long(&a, "--hidden", &hidden, 1, 1 << 20)) { arch_given[0] = 1; continue; }
        if (cli_opt_long(&a, "--layers", &layers, 1, 1024)) { arch_given[1] = 1; continue; }
        if (cli_opt_long(&a, "--embed", &embed, 1, 1 << 20)) { arch_given[2] = 1; continue; }
        if (cli_opt_long(&a, "--proj", &proj, 0, 1 << 20)) { arch_given[3] = 1; continue; }
        if (parse_run_opt(&a, &run)) continue;
        cli_usage(&a, "unknown option '%s'", arg);
    }
    if (help) { fputs(train_usage, stdout); return 0; }
    if (threads == 0) threads = auto_threads; /* (as lstm sample's --threads 0) */

    /* ---- the model: from a checkpoint, an init file, or new ---- */
    lstm_charlm model;
    lstm_st_file ckpt;
    memset(&ckpt, 0, sizeof ckpt);
    lstm_status st;
    int have_model = 0;
    if (resume_path && init_path) cli_usage(&a, "--resume and --init exclude each other");
    if (resume_path) {
        if ((st = lstm_st_read(&ckpt, resume_path))) cli_fail_status(st);
        if ((st = lstm_train_run_restore(&run, &ckpt, resume_path))) cli_fail_status(st);
        /* batch, bptt and val-fraction cannot change (a conflict is a usage error); --keep best
         * needs the best weights so far in --out (a conflict with the run's --keep last is a
         * usage error; an --out that does not exist, a failure) */
        if ((st = lstm_train_run_check_resume(&run, &ckpt, resume_path)) == LSTM_ERR_ARG)
            cli_usage(&a, "%s", lstm_last_error());
        if (st) cli_fail_status(st);
        if ((st = lstm_charlm_load_st(&model, &ckpt, resume_path))) cli_fail_status(st);
        have_model = 1;
    } else if (init_path) {
        if ((st = lstm_charlm_load(&model, init_path))) cli_fail_status(st);
        have_model = 1;
    }
    if (have_model) { /* architecture flags must agree with the file */
        const char *src = resume_path ? resume_path : init_path;
        if ((st = lstm_train_run_model_cell(&run, model.net.cfg.cell, src, resume_path != NULL)) == LSTM_ERR_ARG)
            cli_usage(&a, "%s", lstm_last_error());
        if (st) cli_fail_status(st);
        const long sizes[4] = {hidden, layers, embed, proj};
        if (lstm_train_check_sizes(&model, sizes, arch_given, src)) cli_usage(&a, "%s", lstm_last_error());
    } else if (proj && run.cell == LSTM_CELL_GRU) {
        cli_usage(&a, "--proj %ld: a GRU has no projection (--proj needs --cell lstm)", proj);
    } else if (proj && proj >= hidden) {
        cli_usage(&a, "--proj %ld must be below --hidden %ld (or 0 for none)", proj, hidden);
    }
    if (!run.out) {
        if (resume_path)
            cli_usage(&a, "--out M.safetensors is required: %s is not the checkpoint its run wrote (a copy?), or one of --checkpoint, --log was given, so that run's files are not used",
                      resume_path);
        cli_usage(&a, "--out M.safetensors is required");
    }
    if (run.cfg.batch % cli_dist_size()) /* under mpirun -np N */
        cli_usage(&a, "--batch %d is not divisible by the %d processes", run.cfg.batch, cli_dist_size());
    /* --out as a stream (/dev/stdout, a FIFO, a device): written once, at the end; never read back */
    struct stat ost;
    const int out_stream = lstm__fd_alias(run.out) >= 0 || (stat(run.out, &ost) == 0 && !S_ISREG(ost.st_mode) && !S_ISDIR(ost.st_mode));
    if (out_stream && run.keep_best)
        cli_usage(&a, "--keep best rewrites --out at every better evaluation and reads it back: %s must be a regular file",
                  run.out);
    if (out_stream && !run.checkpoint)
        cli_usage(&a, "--out %s is not a regular file: give --checkpoint FILE (OUT.ckpt would be beside it)", run.out);
    if (!run.checkpoint) { /* beside --out, never the path recorded in a resumed file */
        size_t n = strlen(run.out) + 6;
        char *c = malloc(n);
        if (!c) cli_fail("out of memory");
        snprintf(c, n, "%s.ckpt", run.out);
        run.checkpoint = c;
    }
    const char *ckpt_path = run.checkpoint, *out_path = run.out, *log_path = run.log, *data_path = run.data;
    if (!data_path && access(DEFAULT_CORPUS_DIR, R_OK) != 0)
        cli_fail("no --data given and the default corpus %s is absent; pass --data FILE", DEFAULT_CORPUS_DIR);
    const char *data_name = data_path ? data_path : DEFAULT_CORPUS_DIR;

    /* ---- every file, before any work: destinations, collisions (each data file), locks ---- */
    int n_data;
    char **data_files = cli_corpus_list(data_name, &n_data);
    cli_path *paths = calloc((size_t)n_data + 5, sizeof *paths);
    if (!paths) cli_fail("out of memory");
    paths[0] = (cli_path){"--out", out_path, 1, NULL};
    paths[1] = (cli_path){"--checkpoint", ckpt_path, 1, "--resume"};
    paths[2] = (cli_path){"--log", log_path, 1, NULL};
    paths[3] = (cli_path){"--resume", resume_path, 0, "--checkpoint"};
    paths[4] = (cli_path){"--init", init_path, 0, NULL}; /* read once at the start, but never overwritten */
    for (int i = 0; i < n_data; i++) paths[5 + i] = (cli_path){"--data", data_files[i], 0, NULL};
    cli_check_paths(&a, paths, n_data + 5);
    free(paths);
    if (cli_dist_rank() == 0) { /* rank 0 alone writes the files */
        cli_lock(ckpt_path, "--checkpoint");
        cli_lock(out_path, "--out");
        if (log_path) cli_lock(log_path, "--log");
    }
    if (!run.steps && !run.epochs && !(time_limit > 0)) time_limit = 60;

    /* ---- data: memory-mapped, files and directories in a documented order (cli/corpus.c) ---- */
    cli_corpus corpus;
    cli_corpus_open(&corpus, data_files, n_data);
    size_t n_all = corpus.n;
    const unsigned char *bytes = corpus.p;
    if (n_all == 0) cli_fail("%s: the data is empty", data_name);
    uint64_t hash = corpus.hash; /* FNV-1a, found with the vocabulary in one pass */
    char hash_s[32];
    snprintf(hash_s, sizeof hash_s, "%016" PRIx64, hash);
    if (resume_path && (st = lstm_train_check_data(&ckpt, resume_path, hash, data_name))) cli_fail_status(st);
    const long batch = run.cfg.batch, bptt = run.cfg.bptt;
    size_t n_val = (size_t)(run.val_fraction * (double)n_all), n_train = n_all - n_val;
    if (n_train < (size_t)batch * (size_t)bptt + 1)
        cli_fail("%s: %zu bytes of training data%s; --batch %ld --bptt %ld need at least B*T+1 = %zu",
                 data_name, n_train, n_val ? " (after holding out --val-fraction for validation)" : "", batch, bptt,
                 (size_t)batch * (size_t)bptt + 1);
    if (run.val_fraction > 0 && n_val < (size_t)batch + 1) /* 0 bytes too: validation was asked for */
        cli_fail("%s: the validation part has %zu bytes; it needs at least B+1 = %ld (raise --val-fraction, or 0 for none)",
                 data_name, n_val, batch + 1);
    int64_t spe = (int64_t)((n_train - 1) / (size_t)batch / (size_t)bptt);
    if ((st = lstm_train_run_total(&run, spe))) cli_usage(&a, "%s", lstm_last_error());
    if (!have_model) {
        unsigned char vocab[256];
        int V = 0;
        for (int b = 0; b < 256; b++)
            if (corpus.seen[b]) vocab[V++] = (unsigned char)b;
        lstm_config cfg = {.input_size = (int)embed, .hidden_size = (int)hidden, .num_layers = (int)layers,
                           .proj_size = (int)proj, .bias = 1, .bidirectional = 0, .cell = run.cell};
        if ((st = lstm_charlm_init(&model, vocab, V, (int)embed, &cfg))) cli_fail_status(st);
        lstm_charlm_init_params(&model, run.cfg.seed);
    }
    if (have_model) cli_corpus_check_vocab(&model, bytes, n_all, data_name, corpus.seen); /* a new model's vocabulary has them all */

    /* ---- trainer ---- */
    const int64_t total = run.cfg.total_steps;
    const long eval_every = (long)run.eval_every, ckpt_every = (long)run.checkpoint_every;
    lstm_trainer tr;
    if ((st = lstm_trainer_init(&tr, &model, &run.cfg, bytes, n_train)) || (st = lstm_trainer_set_bytes(&tr, 1)))
        cli_fail_status(st);
    if (resume_path && (st = lstm_trainer_restore(&tr, &ckpt, resume_path))) cli_fail_status(st);
    if ((st = lstm_trainer_set_reducer(&tr, cli_dist_reducer()))) cli_fail_status(st); /* this process's streams */
    if (threads > 1 && (st = lstm_trainer_set_threads(&tr, (int)threads))) cli_fail_status(st);
    check_ranks_alike(&run, hash, n_all, &model, &tr, resume_path, init_path);
    int64_t start_step = tr.step;
    if (total && start_step >= total) {
        fprintf(stderr, "nothing to train: %s is at step %" PRId64 ", and the run stops at step %" PRId64
                        " (raise --steps or --epochs to continue); no file written\n",
                resume_path ? resume_path : "the model", start_step, total);
        lstm_trainer_free(&tr);
        lstm_charlm_free(&model);
        lstm_st_free(&ckpt);
        lstm_train_run_free(&run);
        cli_corpus_close(&corpus);
        return 0;
    }
    /* metadata recorded in checkpoints: every setting and the state of the run, the data hash */
    const char **kv = ckpt_meta(&run, hash_s, NULL);
    progress pg = {NULL, log_path, isatty(2), -1e9};
    if (log_path && cli_dist_rank() == 0) pg.log = open_log(log_path, resume_path != NULL, start_step);

    /* ---- the loop ---- */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    const uint8_t *val_ids = bytes + n_train;
    double t0 = now_s(), train_time = 0.0, last_val = NAN, loss_ema = NAN;
    int64_t done_steps = 0, last_ckpt = resume_path ? start_step : -1;
    const char *last_ckpt_path = resume_path; /* the last good checkpoint on disk */
    int status = 0;
    lstm_step_info info = {0};
    if (resume_path)
        fprintf(stderr, "resuming %s at step %" PRId64 " (epoch %" PRId64 ")\n", resume_path, tr.step, tr.step / spe);
    fprintf(stderr, "model: %s, V %d, E %d, H %d, L %d, P %d: %zu parameters; data %s: %zu training + %zu validation bytes, %" PRId64 " steps/epoch, %ld thread%s\n",
            model.net.cfg.cell == LSTM_CELL_GRU ? "GRU" : "LSTM", model.V, model.E, model.net.H, model.net.cfg.num_layers, model.net.cfg.proj_size,
            model.n_params, data_name, n_train, n_val, spe, threads > 1 ? threads : 1L, threads > 1 ? "s" : "");
    for (;;) {
        if (total && tr.step >= total) break;
        if (cli_dist_any((time_limit > 0 && now_s() - t0 >= time_limit) || stop_signal)) break;
        double ts = now_s();
        st = lstm_trainer_step(&tr, &info);
        if (st == LSTM_ERR_NONFINITE) {
            if (pg.tty) fputc('\n', stderr);
            if (last_ckpt >= 0)
                cli_error("%s: stopping; the last good checkpoint is %s (step %" PRId64 ")", lstm_last_error(),
                          last_ckpt_path, last_ckpt);
            else
                cli_error("%s: stopping; no checkpoint was written (lower --lr or raise --clip)", lstm_last_error());
            status = 1;
            goto out;
        }
        if (st) cli_fail_status(st);
        train_time += now_s() - ts;
        done_steps++;
        loss_ema = isnan(loss_ema) ? info.loss : 0.95 * loss_ema + 0.05 * info.loss;
        int last = cli_dist_any((total && tr.step >= total) || (time_limit > 0 && now_s() - t0 >= time_limit) || stop_signal);
        int evaluated = 0;
        /* Only the scheduled evaluations count for --keep best and --patience (with --eval-every 0,
         * the one at the end of --steps/--epochs): the last step of a run that stops in between
         * (Ctrl-C, SIGTERM, --time, a --steps off the grid) is evaluated, printed and logged, not
         * counted, so that a stop and a resume keep what a run never stopped keeps. */
        const int scheduled = eval_every ? tr.step % eval_every == 0 : total && tr.step >= total;
        if (n_val && (scheduled || last)) {
            if ((st = lstm_trainer_validate(&tr, val_ids, n_val, &last_val))) cli_fail_status(st);
            evaluated = 1;
            int out_of_patience = 0; /* the same on every rank: validation sums are exact */
            if (scheduled && lstm_train_run_record_val(&run, last_val, &out_of_patience)) {
                if (run.keep_best && cli_dist_rank() == 0 && (st = lstm_charlm_save(&model, out_path, NULL)))
                    cli_fail("model not written: %s", lstm_last_error());
            } else if (out_of_patience) {
                if (!last)
                    fprintf(stderr, "%sstopping: %" PRId64 " evaluations without improvement (--patience)\n",
                            pg.tty ? "\n" : "", run.bad_evals);
                last = 1;
            }
            if (scheduled) kv = ckpt_meta(&run, hash_s, kv); /* the new state */
        }
        double tps = (double)done_steps * batch * bptt / (train_time > 0 ? train_time : 1e-9);
        int log_err = 0;
        if (pg.log) { /* rank 0's */
            fprintf(pg.log, "{\"step\":%" PRId64 ",\"epoch\":%" PRId64 ",\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.1f,\"time\":%.3f",
                    info.step, info.epoch, info.loss, info.lr, info.grad_norm, tps, now_s() - t0);
            if (evaluated && isfinite(last_val)) fprintf(pg.log, ",\"val_loss\":%.9g", last_val);
            else if (evaluated) fputs(",\"val_loss\":null", pg.log); /* (JSON has no inf or nan) */
            fputs("}\n", pg.log);
            errno = 0;
            if (fflush(pg.log) != 0 || ferror(pg.log)) log_err = errno ? errno : EIO;
        }
        if (cli_dist_any(log_err) && log_path) { /* a lost record: every rank stops, with a checkpoint (every
                                                  * rank calls the collective: a --log may be given to some only) */
            if (pg.tty) fputc('\n', stderr);
            if ((st = cli_dist_save(&tr, ckpt_path, kv)))
                cli_fail("%s: writing the log failed: %s; and the checkpoint was not written: %s", log_path,
                         strerror(log_err), lstm_last_error());
            cli_error("%s: writing the log failed at step %" PRId64 ": %s; stopped with a checkpoint: %s", log_path,
                      tr.step, strerror(log_err), ckpt_path);
            status = 1; /* a normal return: no rank exits while rank 0 still writes */
            goto out;
        }
        double t = now_s();
        if (evaluated || last || t - pg.last_print >= (pg.tty ? 0.2 : 5.0)) {
            double eta = NAN, el = t - t0;
            if (total) eta = (double)(total - tr.step) * el / (double)done_steps;
            if (time_limit > 0 && (isnan(eta) || time_limit - el < eta)) eta = time_limit - el;
            if (eta < 0) eta = 0;
            char etas[32], tot[32] = "";
            fmt_eta(etas, sizeof etas, eta);
            if (total) snprintf(tot, sizeof tot, "/%" PRId64, total);
            char vals_s[32] = "-";
            if (!isnan(last_val)) snprintf(vals_s, sizeof vals_s, "%.4f", last_val);
            fprintf(stderr, "%sstep %" PRId64 "%s  epoch %" PRId64 "  loss %.4f  val %s  lr %.2e  %.0f tok/s  ETA %s%s",
                    pg.tty ? "\r\033[K" : "", info.step, tot, info.epoch, loss_ema, vals_s, info.lr, tps, etas,
                    pg.tty ? "" : "\n");
            pg.last_print = t;
        }
        if (ckpt_every && tr.step % ckpt_every == 0 && !last) {
            if ((st = cli_dist_save(&tr, ckpt_path, kv))) {
                if (pg.tty) fputc('\n', stderr);
                cli_fail("checkpoint not written: %s (the previous checkpoint is intact)", lstm_last_error());
            }
            last_ckpt = tr.step;
            last_ckpt_path = ckpt_path;
        }
        if (last) break; /* decided once: the final evaluation above was for this step */
    }
    if (pg.tty) fputc('\n', stderr);
    if ((st = cli_dist_save(&tr, ckpt_path, kv)))
        cli_fail("checkpoint not written: %s (the previous checkpoint is intact)", lstm_last_error());
    if (cli_dist_rank() == 0 && !run.keep_best && (st = lstm_charlm_save(&model, out_path, NULL)))
        cli_fail("model not written: %s; the checkpoint %s holds these weights (lstm sample and eval read it)",
                 lstm_last_error(), ckpt_path);
    if (stop_signal) {
        fprintf(stderr, "interrupted at step %" PRId64 ": checkpoint saved to %s; continue with: lstm train --resume %s\n",
                tr.step, ckpt_path, ckpt_path);
        status = 130;
        goto out;
    }
    char val_s[96] = "", wrote_s[64] = "wrote";
    if (n_val) snprintf(val_s, sizeof val_s, ", validation loss %.4f (%.4f bits/char)", last_val, last_val / log(2.0));
    const int out_written = !run.keep_best || isfinite(run.best_val); /* (no evaluation counted yet: not written) */
    if (run.keep_best && out_written) snprintf(wrote_s, sizeof wrote_s, "kept the best (validation loss %.4f) in", run.best_val);
    else if (run.keep_best) snprintf(wrote_s, sizeof wrote_s, "no evaluation counted yet, nothing written to");
    fprintf(stderr, "trained %" PRId64 " steps (to step %" PRId64 ", epoch %.2f) in %.1f s: loss %.4f%s, %.0f tokens/s; %s %s\n",
            done_steps, tr.step, (double)tr.step / (double)spe, now_s() - t0, loss_ema, val_s,
            (double)done_steps * batch * bptt / (train_time > 0 ? train_time : 1e-9), wrote_s, out_path);
    /* from the model in --out: with --keep best the best, not the last weights.  Rank 0 alone
     * (it alone prints; the others' stdout is /dev/null): on the others it was time thrown away
     * that the job's end waited for, and with --keep best a read of an --out they never wrote */
    if (sample_n > 0 && cli_dist_rank() == 0 && out_written) {
        lstm_charlm kept;
        if (run.keep_best && (st = lstm_charlm_load(&kept, out_path))) cli_fail_status(st);
        lstm_charlm *sm = run.keep_best ? &kept : &model;
        unsigned char *buf = malloc((size_t)sample_n);
        unsigned char prime = sm->id['\n'] >= 0 ? '\n' : sm->vocab[0];
        if (!buf) cli_fail("out of memory");
        if ((st = lstm_charlm_generate(sm, &prime, 1, buf, (size_t)sample_n, 0.8, 0, run.cfg.seed)))
            cli_fail_status(st);
        if (run.keep_best) lstm_charlm_free(&kept);
        cli_write_stdout(buf, (size_t)sample_n, "the sample");
        cli_write_stdout("\n", 1, "the sample");
        free(buf);
    }
out:
    if (pg.log && fclose(pg.log) != 0 && !status) cli_fail("%s: writing the log failed: %s", log_path, strerror(errno));
    lstm_trainer_free(&tr);
    lstm_charlm_free(&model);
    lstm_st_free(&ckpt);
    lstm_train_run_free(&run);
    cli_corpus_close(&corpus);
    free(kv);
    return status;
}

/* ---------------------------------------------------------------- eval */

int lstm_cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL;
    long bptt = 256, threads = 1;
    int json = 0, help = 0;
    cli_args a = {argc, argv, 0, "eval"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_str(&a, "--model", &model_path) || cli_opt_str(&a, "--data", &data_path) ||
            cli_opt_flag(&a, "--json", &json) || cli_opt_long(&a, "--bptt", &bptt, 1, 1 << 20) ||
            cli_opt_long(&a, "--threads", &threads, 0, LSTM_MAX_THREADS) || cli_opt_flag(&a, "--help", &help) ||
            cli_opt_flag(&a, "-h", &help))
            continue;
        cli_usage(&a, "unknown option '%s'", argv[a.i]);
    }
    if (help) {
        puts("usage: lstm eval --model M.safetensors --data FILE [--json] [--bptt T] [--threads N]\n"
             "Mean cross-entropy of the n-1 next-byte predictions over FILE read as one stream\n"
             "from zero state (in blocks of T = 256 steps), in nats and bits per char, on N (1)\n"
             "threads.  --json prints {\"loss\": ..., \"bpc\": ..., \"chars\": ...}.");
        return 0;
    }
    if (!model_path || !data_path) cli_usage(&a, "--model and --data are required");
    lstm_charlm m;
    lstm_status st = lstm_charlm_load(&m, model_path);
    if (st) cli_fail_status(st);
    size_t n;
    unsigned char *bytes = read_all(data_path, &n);
    if (n < 2) cli_fail("%s: expected at least 2 bytes to score a prediction, got %zu", data_path, n);
    uint8_t *ids = malloc(n);
    if (!ids) cli_fail("out of memory");
    if ((st = lstm_charlm_encode(&m, bytes, n, ids, data_path))) cli_fail_status(st);
    double loss;
    size_t count;
    if ((st = lstm_charlm_eval(&m, ids, n, 1, (int)bptt, (int)threads, &loss, &count))) cli_fail_status(st);
    double bpc = loss / log(2.0);
    if (json && isfinite(loss)) /* stdout is the JSON alone */
        printf("{\"loss\": %.9g, \"bpc\": %.9g, \"chars\": %zu}\n", loss, bpc, count);
    else if (json) /* JSON has no NaN or Inf */
        printf("{\"loss\": null, \"bpc\": null, \"chars\": %zu}\n", count);
    else
        printf("%s: %.6f nats/char, %.6f bits/char over %zu predictions\n", data_path, loss, bpc, count);
    free(ids); free(bytes);
    lstm_charlm_free(&m);
    return 0;
}

/* ---------------------------------------------------------------- sample */

int lstm_cmd_sample(int argc, char **argv) {
    const char *model_path = NULL, *prime = NULL;
    long length = 500, top_k = 0, seed = 1, threads = 0;
    double temperature = 0.8;
    int help = 0;
    cli_args a = {argc, argv, 0, "sample"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_str(&a, "--model", &model_path) || cli_opt_str(&a, "--prime", &prime) ||
            cli_opt_long(&a, "--length", &length, 0, 1L << 40) ||
            cli_opt_double(&a, "--temperature", &temperature, 0, 1e6) ||
            cli_opt_long(&a, "--top-k", &top_k, 0, 256) || cli_opt_long(&a, "--seed", &seed, 0, 9007199254740991L) ||
            cli_opt_long(&a, "--threads", &threads, 0, LSTM_MAX_THREADS) || cli_opt_flag(&a, "--help", &help) ||
            cli_opt_flag(&a, "-h", &help))
            continue;
        cli_usage(&a, "unknown option '%s'", argv[a.i]);
    }
    if (help) {
        puts("usage: lstm sample --model M.safetensors [--prime TEXT] [--length N] [--temperature T]\n"
             "                   [--top-k K] [--seed S] [--threads N]\n"
             "Writes the prime (default: a newline, or the first vocabulary byte) and N (500)\n"
             "generated bytes to stdout.  Temperature (0.8) 0 is greedy (argmax); --top-k K draws\n"
             "only among the K likeliest bytes; --seed S (1) seeds the draws.  --threads N splits\n"
             "each byte's step over N threads, the same bytes for every N (default 0: one thread\n"
             "while the weights a byte reads fit in a core's L2 cache, else the cores, at most 8\n"
             "and at most the step's unit groups).");
        return 0;
    }
    if (!model_path) cli_usage(&a, "--model is required");
    lstm_charlm m;
    lstm_status st = lstm_charlm_load(&m, model_path);
    if (st) cli_fail_status(st);
    unsigned char dflt[1] = {m.id['\n'] >= 0 ? '\n' : m.vocab[0]};
    const unsigned char *p = prime && *prime ? (const unsigned char *)prime : dflt;
    size_t np = prime && *prime ? strlen(prime) : 1;
    unsigned char *out = malloc(length ? (size_t)length : 1);
    if (!out) cli_fail("out of memory for --length %ld", length);
    lstm_charlm_sampler *smp;
    if ((st = lstm_charlm_sampler_init(&smp, &m, (int)threads))) cli_fail_status(st);
    lstm_charlm_sampler_reset(smp, (uint64_t)seed);
    if ((st = lstm_charlm_sampler_feed(smp, p, np)) ||
        (st = lstm_charlm_sampler_generate(smp, out, (size_t)length, temperature, (int)top_k)))
        cli_fail_status(st);
    lstm_charlm_sampler_free(smp);
    cli_write_stdout(p, np, "the sample");
    cli_write_stdout(out, (size_t)length, "the sample");
    free(out);
    lstm_charlm_free(&m);
    return 0;
}
