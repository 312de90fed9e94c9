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
#include "corpus.h"
#include "dist.h"

#define DEFAULT_CORPUS_DIR "/usr/share/common-licenses"

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads a whole file; exits with a one-line error on failure. */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) cli_fail("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) cli_fail("%s: out of memory", path);
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    if (ferror(f)) cli_fail("%s: read error: %s", path, strerror(errno));
    fclose(f);
    *n = len;
    return buf;
}

static void fmt_eta(char *out, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) { snprintf(out, cap, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Fails early (before any training) when the directory of path is not writable. */
static void check_writable(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (access(dir, W_OK) != 0) cli_fail("%s: cannot write into %s: %s", path, dir, strerror(errno));
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) {
    stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once; the last checkpoint stays good */
}

/* ---------------------------------------------------------------- options */

typedef enum { O_LONG, O_DOUBLE, O_STR, O_FLAG } okind;
typedef struct {
    const char *name; /* "--lr" */
    okind kind;
    void *p;
    double lo, hi;
    int saved;        /* recorded in checkpoints and taken from one on --resume */
    int given;
} opt;

static int parse_opt(cli_args *a, opt *o) {
    long l;
    switch (o->kind) {
    case O_LONG:
        if (!cli_opt_long(a, o->name, &l, (long)o->lo, (long)o->hi)) return 0;
        *(long *)o->p = l;
        break;
    case O_DOUBLE:
        if (!cli_opt_double(a, o->name, (double *)o->p, o->lo, o->hi)) return 0;
        break;
    case O_STR:
        if (!cli_opt_str(a, o->name, (const char **)o->p)) return 0;
        break;
    case O_FLAG:
        if (!cli_opt_flag(a, o->name, (int *)o->p)) return 0;
        break;
    }
    o->given = 1;
    return 1;
}

static void opt_value(const opt *o, char *out, size_t cap) {
    switch (o->kind) {
    case O_LONG: snprintf(out, cap, "%ld", *(long *)o->p); break;
    case O_DOUBLE: snprintf(out, cap, "%.17g", *(double *)o->p); break;
    case O_STR: snprintf(out, cap, "%s", *(const char **)o->p ? *(const char **)o->p : ""); break;
    case O_FLAG: snprintf(out, cap, "%d", *(int *)o->p); break;
    }
}

/* Takes the option's value from checkpoint metadata "train.<name>". */
static void opt_restore(opt *o, const lstm_st_file *f, const char *path) {
    char key[64];
    snprintf(key, sizeof key, "train.%s", o->name + 2);
    const char *v = lstm_st_meta(f, key);
    if (!v) return;
    char *end = NULL;
    switch (o->kind) {
    case O_LONG: *(long *)o->p = strtol(v, &end, 10); break;
    case O_DOUBLE: *(double *)o->p = strtod(v, &end); break;
    case O_STR: *(const char **)o->p = *v ? v : NULL; return;
    case O_FLAG: *(int *)o->p = (int)strtol(v, &end, 10); break;
    }
    if (!end || end == v || *end) cli_fail("%s: checkpoint metadata '%s': cannot parse '%.40s'", path, key, v);
}

static opt *find_opt(opt *o, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(o[i].name, name) == 0) return &o[i];
    return NULL;
}

/* ---------------------------------------------------------------- train */

static const char train_usage[] =
    "usage: lstm train [--data FILE] [--init M0.safetensors] [--hidden H] [--layers L] [--embed E]\n"
    "                  [--proj P] [--batch B] [--bptt T] [--steps N | --epochs N] [--time SECONDS]\n"
    "                  [--lr LR] [--optimizer adam|adamw|sgd] [--clip C] [--dropout D]\n"
    "                  [--weight-decay W] [--momentum M] [--nesterov] [--schedule constant|cosine]\n"
    "                  [--warmup K] [--lr-min X] [--val-fraction F] [--eval-every K] [--seed S]\n"
    "                  [--threads N] [--checkpoint FILE] [--checkpoint-every K] [--resume FILE]\n"
    "                  [--log LOG.jsonl] [--keep last|best] [--patience K] [--sample N] --out M.safetensors\n"
    "Trains Embedding -> LSTM -> Linear on the bytes of FILE (default: the texts under\n"
    DEFAULT_CORPUS_DIR ") by truncated BPTT over B streams of T-step blocks.\n"
    "  --data FILE        training text; its last F (--val-fraction, default 0.1) is validation;\n"
    "                     FILE,DIR,...: files and directories (their regular files by name)\n"
    "                     joined in that order; memory-mapped, any size\n"
    "  --keep last|best   --out gets the last weights, or those of the best validation loss\n"
    "  --patience K       stop after K evaluations without a better validation loss (0: never)\n"
    "  --init M0          start from this model (architecture and vocabulary from it)\n"
    "  --hidden/--layers/--embed/--proj   a new model's sizes (default 128, 2, 64, 0)\n"
    "  --batch, --bptt    B streams (32), T steps per block (64)\n"
    "  --steps N          stop after step N (counted from the start, also on --resume);\n"
    "  --epochs N         or after N epochs; --time S: or after S seconds (default 60 s\n"
    "                     when none of the three is given)\n"
    "  --lr (3e-3), --optimizer (adam), --clip (1; 0 = off), --weight-decay (0; adamw 0.01),\n"
    "  --momentum (0.9, sgd), --nesterov, --schedule (constant; cosine decays to --lr-min\n"
    "  at the last step after --warmup linear steps), --dropout between layers (0)\n"
    "  --eval-every K     validation loss every K steps (100; 0 = only at the end)\n"
    "  --checkpoint FILE  (default OUT.ckpt) written every --checkpoint-every K steps (200),\n"
    "                     at the end and on Ctrl-C; atomically (tmp, fsync, rename)\n"
    "  --resume FILE      continue from a checkpoint; flags not given are taken from it\n"
    "  --log LOG.jsonl    one JSON object per step\n"
    "  --threads N        threads for the LSTM (default: the CPUs, at most 8; same bits for any N)\n"
    "  --sample N         print N sampled bytes to stdout when done\n";

typedef struct {
    FILE *log;
    int tty;
    double last_print;
} progress;

int lstm_cmd_train(int argc, char **argv) {
    const char *data_path = NULL, *init_path = NULL, *resume_path = NULL, *ckpt_path = NULL;
    const char *log_path = NULL, *out_path = NULL, *optimizer = "adam", *schedule = "constant";
    long hidden = 128, layers = 2, embed = 64, proj = 0, batch = 32, bptt = 64, steps = 0, epochs = 0;
    long warmup = 0, eval_every = 100, seed = 1, ckpt_every = 200, sample_n = 0, patience = 0;
    const char *keep = "last";
    long threads = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? (sysconf(_SC_NPROCESSORS_ONLN) < 8 ? sysconf(_SC_NPROCESSORS_ONLN) : 8) : 1;
    double time_limit = 0, lr = 3e-3, clip = 1.0, dropout = 0.0, wd = -1.0, momentum = 0.9, lr_min = 0.0;
    double val_fraction = 0.1;
    int nesterov = 0, help = 0;
    opt opts[] = {
        {"--data", O_STR, &data_path, 0, 0, 1, 0},
        {"--init", O_STR, &init_path, 0, 0, 0, 0},
        {"--hidden", O_LONG, &hidden, 1, 1 << 20, 0, 0},
        {"--layers", O_LONG, &layers, 1, 1024, 0, 0},
        {"--embed", O_LONG, &embed, 1, 1 << 20, 0, 0},
        {"--proj", O_LONG, &proj, 0, 1 << 20, 0, 0},
        {"--batch", O_LONG, &batch, 1, 1 << 20, 1, 0},
        {"--bptt", O_LONG, &bptt, 1, 1 << 20, 1, 0},
        {"--steps", O_LONG, &steps, 1, 1e15, 1, 0},
        {"--epochs", O_LONG, &epochs, 1, 1e9, 1, 0},
        {"--time", O_DOUBLE, &time_limit, 0, 1e9, 0, 0},
        {"--lr", O_DOUBLE, &lr, 0, 1e38, 1, 0},
        {"--optimizer", O_STR, &optimizer, 0, 0, 1, 0},
        {"--clip", O_DOUBLE, &clip, 0, 1e30, 1, 0},
        {"--dropout", O_DOUBLE, &dropout, 0, 0.999, 1, 0},
        {"--weight-decay", O_DOUBLE, &wd, 0, 1e9, 1, 0},
        {"--momentum", O_DOUBLE, &momentum, 0, 1, 1, 0},
        {"--nesterov", O_FLAG, &nesterov, 0, 0, 1, 0},
        {"--schedule", O_STR, &schedule, 0, 0, 1, 0},
        {"--warmup", O_LONG, &warmup, 0, 1e15, 1, 0},
        {"--lr-min", O_DOUBLE, &lr_min, 0, 1e9, 1, 0},
        {"--val-fraction", O_DOUBLE, &val_fraction, 0, 0.9, 1, 0},
        {"--eval-every", O_LONG, &eval_every, 0, 1e15, 1, 0},
        {"--seed", O_LONG, &seed, 0, 9007199254740991.0, 1, 0},
        {"--threads", O_LONG, &threads, 0, 4096, 0, 0},
        {"--checkpoint", O_STR, &ckpt_path, 0, 0, 1, 0},
        {"--checkpoint-every", O_LONG, &ckpt_every, 0, 1e15, 1, 0},
        {"--resume", O_STR, &resume_path, 0, 0, 0, 0},
        {"--log", O_STR, &log_path, 0, 0, 1, 0},
        {"--keep", O_STR, &keep, 0, 0, 1, 0},
        {"--patience", O_LONG, &patience, 0, 1e15, 1, 0},
        {"--out", O_STR, &out_path, 0, 0, 1, 0},
        {"--sample", O_LONG, &sample_n, 0, 1 << 30, 0, 0},
        {"--help", O_FLAG, &help, 0, 0, 0, 0},
    };
    int nopt = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 0, "train"};
    for (a.i = 1; a.i < argc; a.i++) {
        int hit = 0;
        for (int k = 0; k < nopt && !hit; k++) hit = parse_opt(&a, &opts[k]);
        if (!hit) cli_usage(&a, "unknown option '%s'", argv[a.i]);
    }
    if (help) { fputs(train_usage, stdout); return 0; }

    /* ---- the model: from a checkpoint, an init file, or new ---- */
    lstm_charlm model;
    lstm_st_file ckpt;
    memset(&ckpt, 0, sizeof ckpt);
    lstm_status st;
    int have_model = 0;
    if (resume_path && init_path) cli_usage(&a, "--resume and --init exclude each other");
    if (resume_path) {
        if ((st = lstm_st_read(&ckpt, resume_path))) cli_fail_status(st);
        if (!lstm_st_meta(&ckpt, "train.step"))
            cli_fail("%s: not a training checkpoint (no 'train.step' metadata)", resume_path);
        for (int k = 0; k < nopt; k++)
            if (opts[k].saved && !opts[k].given) opt_restore(&opts[k], &ckpt, resume_path);
        if ((st = lstm_charlm_load_st(&model, &ckpt, resume_path))) cli_fail_status(st);
        have_model = 1;
    } else if (init_path) {
        if ((st = lstm_charlm_load(&model, init_path))) cli_fail_status(st);
        have_model = 1;
    }
    if (have_model) { /* architecture flags must agree with the file */
        const char *src = resume_path ? resume_path : init_path;
        long have[4] = {model.net.H, model.net.cfg.num_layers, model.E, model.net.cfg.proj_size};
        const char *nm[4] = {"--hidden", "--layers", "--embed", "--proj"};
        for (int k = 0; k < 4; k++) {
            opt *o = find_opt(opts, nopt, nm[k]);
            if (o->given && *(long *)o->p != have[k])
                cli_usage(&a, "%s %ld conflicts with %s, which has %ld", nm[k], *(long *)o->p, src, have[k]);
        }
    }
    if (!out_path) cli_usage(&a, "--out M.safetensors is required");
    lstm_optimizer okind;
    if (!strcmp(optimizer, "adam")) okind = LSTM_OPT_ADAM;
    else if (!strcmp(optimizer, "adamw")) okind = LSTM_OPT_ADAMW;
    else if (!strcmp(optimizer, "sgd")) okind = LSTM_OPT_SGD;
    else cli_usage(&a, "--optimizer: expected adam, adamw or sgd, got '%s'", optimizer);
    lstm_schedule skind;
    if (!strcmp(schedule, "constant")) skind = LSTM_SCHED_CONSTANT;
    else if (!strcmp(schedule, "cosine")) skind = LSTM_SCHED_COSINE;
    else cli_usage(&a, "--schedule: expected constant or cosine, got '%s'", schedule);
    if (wd < 0) wd = okind == LSTM_OPT_ADAMW ? 0.01 : 0.0;
    if (find_opt(opts, nopt, "--steps")->given && find_opt(opts, nopt, "--epochs")->given)
        cli_usage(&a, "--steps and --epochs exclude each other");
    if (find_opt(opts, nopt, "--steps")->given) epochs = 0;
    if (find_opt(opts, nopt, "--epochs")->given) steps = 0;
    if (!steps && !epochs && !(time_limit > 0)) time_limit = 60;
    if (batch % cli_dist_size()) /* under mpirun -np N */
        cli_usage(&a, "--batch %ld is not divisible by the %d processes", batch, cli_dist_size());

    /* ---- data: memory-mapped, files and directories in a documented order (cli/corpus.c) ---- */
    if (!data_path && access(DEFAULT_CORPUS_DIR, R_OK) != 0)
        cli_fail("no --data given and the default corpus %s is absent; pass --data FILE", DEFAULT_CORPUS_DIR);
    if (strcmp(keep, "last") && strcmp(keep, "best")) cli_usage(&a, "--keep: expected last or best, got '%s'", keep);
    cli_corpus corpus;
    cli_corpus_open(&corpus, data_path ? data_path : DEFAULT_CORPUS_DIR);
    size_t n_all = corpus.n;
    const unsigned char *bytes = corpus.p;
    const char *data_name = data_path ? data_path : DEFAULT_CORPUS_DIR;
    if (n_all == 0) cli_fail("%s: the data is empty", data_name);
    uint64_t hash = corpus.hash; /* FNV-1a, found with the vocabulary in one pass */
    char hash_s[32];
    snprintf(hash_s, sizeof hash_s, "%016" PRIx64, hash);
    if (resume_path) {
        const char *h = lstm_st_meta(&ckpt, "train.data_hash");
        if (h && strcmp(h, hash_s) != 0)
            cli_fail("%s: this checkpoint was trained on other data (hash %s), but %s has hash %s", resume_path, h,
                     data_name, hash_s);
    }
    size_t n_val = (size_t)(val_fraction * (double)n_all), n_train = n_all - n_val;
    if (n_train < (size_t)batch * (size_t)bptt + 1)
        cli_fail("%s: %zu bytes of training data%s; --batch %ld --bptt %ld need at least B*T+1 = %zu",
                 data_name, n_train, n_val ? " (after holding out --val-fraction for validation)" : "", batch, bptt,
                 (size_t)batch * (size_t)bptt + 1);
    if (n_val && n_val < (size_t)batch + 1)
        cli_fail("%s: the validation part has %zu bytes; it needs at least B+1 = %ld (raise --val-fraction, or 0 for none)",
                 data_name, n_val, batch + 1);
    if (!have_model) {
        unsigned char vocab[256];
        int V;
        V = 0;
        for (int b = 0; b < 256; b++)
            if (corpus.seen[b]) vocab[V++] = (unsigned char)b;
        lstm_config cfg = {.input_size = (int)embed, .hidden_size = (int)hidden, .num_layers = (int)layers,
                           .proj_size = (int)proj, .bias = 1, .bidirectional = 0};
        if ((st = lstm_charlm_init(&model, vocab, V, (int)embed, &cfg))) cli_fail_status(st);
        lstm_charlm_init_params(&model, (uint64_t)seed);
    }
    if (have_model) cli_corpus_check_vocab(&model, bytes, n_all, data_name, corpus.seen); /* a new model's vocabulary has them all */
    if (!strcmp(keep, "best") && !n_val) cli_usage(&a, "--keep best needs validation data (--val-fraction above 0)");

    /* ---- trainer ---- */
    lstm_train_config tc;
    lstm_train_config_default(&tc);
    tc.batch = (int)batch;
    tc.bptt = (int)bptt;
    tc.optimizer = okind;
    tc.lr = lr;
    tc.weight_decay = wd;
    tc.momentum = momentum;
    tc.nesterov = nesterov;
    tc.clip = clip;
    tc.schedule = skind;
    tc.warmup = warmup;
    tc.lr_min = lr_min;
    tc.dropout = dropout;
    tc.seed = (uint64_t)seed;
    size_t S = (n_train - 1) / (size_t)batch;
    int64_t spe = (int64_t)(S / (size_t)bptt);
    int64_t total = steps ? steps : epochs ? epochs * spe : 0;
    tc.total_steps = total;
    if (skind == LSTM_SCHED_COSINE && !total) cli_usage(&a, "--schedule cosine needs --steps or --epochs");
    lstm_trainer tr;
    if ((st = lstm_trainer_init(&tr, &model, &tc, bytes, n_train)) || (st = lstm_trainer_set_bytes(&tr, 1)))
        cli_fail_status(st);
    if (resume_path) {
        if ((st = lstm_trainer_restore(&tr, &ckpt, resume_path))) cli_fail_status(st);
    }
    if ((st = lstm_trainer_set_reducer(&tr, cli_dist_reducer()))) cli_fail_status(st); /* this process's streams */
    if (threads > 1 && (st = lstm_trainer_set_threads(&tr, (int)threads))) cli_fail_status(st);
    int64_t start_step = tr.step;

    /* ---- outputs ---- */
    char *ckpt_default = NULL;
    if (!ckpt_path) {
        ckpt_default = malloc(strlen(out_path) + 6);
        sprintf(ckpt_default, "%s.ckpt", out_path);
        ckpt_path = ckpt_default;
    }
    /* metadata recorded in checkpoints: every saved flag, the data hash */
    int nkv = 0;
    const char **kv = calloc((size_t)(2 * nopt + 4), sizeof *kv);
    char (*vals)[512] = calloc((size_t)nopt, sizeof *vals);
    char (*keys)[64] = calloc((size_t)nopt, sizeof *keys);
    if (!kv || !vals || !keys) cli_fail("out of memory");
    for (int k = 0; k < nopt; k++) {
        if (!opts[k].saved) continue;
        if (opts[k].kind == O_STR && !*(const char **)opts[k].p) continue;
        snprintf(keys[k], sizeof keys[k], "train.%s", opts[k].name + 2);
        if (!strcmp(opts[k].name, "--checkpoint")) snprintf(vals[k], sizeof vals[k], "%s", ckpt_path);
        else opt_value(&opts[k], vals[k], sizeof vals[k]);
        kv[nkv++] = keys[k];
        kv[nkv++] = vals[k];
    }
    kv[nkv++] = "train.data_hash";
    kv[nkv++] = hash_s;
    /* the best validation loss so far and the evaluations since (--keep best, --patience) */
    double best_val = INFINITY;
    long bad_evals = 0;
    char best_s[40] = "inf", bad_s[24] = "0";
    if (resume_path && lstm_st_meta(&ckpt, "train.best_val")) {
        best_val = strtod(lstm_st_meta(&ckpt, "train.best_val"), NULL);
        bad_evals = lstm_st_meta(&ckpt, "train.bad_evals") ? strtol(lstm_st_meta(&ckpt, "train.bad_evals"), NULL, 10) : 0;
        snprintf(best_s, sizeof best_s, "%.17g", best_val);
        snprintf(bad_s, sizeof bad_s, "%ld", bad_evals);
    }
    kv[nkv++] = "train.best_val";
    kv[nkv++] = best_s;
    kv[nkv++] = "train.bad_evals";
    kv[nkv++] = bad_s;
    kv[nkv] = NULL;
    progress pg = {NULL, isatty(2), -1e9};
    if (log_path && cli_dist_rank() == 0) {
        if (resume_path) { /* keep the records up to the resumed step, drop the rest */
            FILE *old = fopen(log_path, "rb");
            char *keep = NULL;
            size_t keep_len = 0;
            if (old) {
                char line[4096];
                FILE *mem = open_memstream(&keep, &keep_len);
                while (fgets(line, sizeof line, old)) {
                    const char *p = strstr(line, "\"step\":");
                    if (p && strtoll(p + 7, NULL, 10) <= start_step) fputs(line, mem);
                }
                fclose(mem);
                fclose(old);
            }
            pg.log = fopen(log_path, "wb");
            if (pg.log && keep_len) fwrite(keep, 1, keep_len, pg.log);
            free(keep);
        } else {
            pg.log = fopen(log_path, "wb");
        }
        if (!pg.log) cli_fail("%s: cannot open the log: %s", log_path, strerror(errno));
    }

    check_writable(out_path);
    check_writable(ckpt_path);

    /* ---- the loop ---- */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    const uint8_t *val_ids = bytes + n_train;
    double t0 = now_s(), train_time = 0.0, last_val = NAN, loss_ema = NAN;
    int64_t done_steps = 0, last_ckpt = resume_path ? start_step : -1;
    int status = 0;
    lstm_step_info info = {0};
    if (resume_path)
        fprintf(stderr, "resuming %s at step %" PRId64 " (epoch %" PRId64 ")\n", resume_path, tr.step, tr.step / spe);
    fprintf(stderr, "model: V %d, E %d, H %d, L %d, P %d: %zu parameters; data %s: %zu training + %zu validation bytes, %" PRId64 " steps/epoch\n",
            model.V, model.E, model.net.H, model.net.cfg.num_layers, model.net.cfg.proj_size,
            model.n_params + model.net.n_params, data_name, n_train, n_val, spe);
    for (;;) {
        if (total && tr.step >= total) break;
        if (cli_dist_any((time_limit > 0 && now_s() - t0 >= time_limit) || stop_signal)) break;
        double ts = now_s();
        st = lstm_trainer_step(&tr, &info);
        if (st == LSTM_ERR_NONFINITE) {
            if (pg.tty) fputc('\n', stderr);
            if (last_ckpt >= 0)
                fprintf(stderr, "lstm: %s: stopping; the last good checkpoint is %s (step %" PRId64 ")\n",
                        lstm_last_error(), ckpt_path, last_ckpt);
            else
                fprintf(stderr, "lstm: %s: stopping; no checkpoint was written (lower --lr or raise --clip)\n",
                        lstm_last_error());
            status = 1;
            goto out;
        }
        if (st) cli_fail_status(st);
        train_time += now_s() - ts;
        done_steps++;
        loss_ema = isnan(loss_ema) ? info.loss : 0.95 * loss_ema + 0.05 * info.loss;
        int last = cli_dist_any((total && tr.step >= total) || (time_limit > 0 && now_s() - t0 >= time_limit) || stop_signal);
        int evaluated = 0;
        if (n_val && ((eval_every && tr.step % eval_every == 0) || last)) {
            if ((st = lstm_trainer_validate(&tr, val_ids, n_val, &last_val))) cli_fail_status(st);
            evaluated = 1;
            if (last_val < best_val) { /* the same on every rank: validation sums are exact */
                best_val = last_val;
                bad_evals = 0;
                if (!strcmp(keep, "best") && cli_dist_rank() == 0 && (st = lstm_charlm_save(&model, out_path, NULL)))
                    cli_fail("model not written: %s", lstm_last_error());
            } else if (patience && ++bad_evals >= patience) {
                if (!last) fprintf(stderr, "%sstopping: %ld evaluations without improvement (--patience)\n", pg.tty ? "\n" : "", bad_evals);
                last = 1;
            }
            snprintf(best_s, sizeof best_s, "%.17g", best_val);
            snprintf(bad_s, sizeof bad_s, "%ld", bad_evals);
        }
        double tps = (double)done_steps * batch * bptt / (train_time > 0 ? train_time : 1e-9);
        if (pg.log) {
            fprintf(pg.log, "{\"step\":%" PRId64 ",\"epoch\":%" PRId64 ",\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.1f,\"time\":%.3f",
                    info.step, info.epoch, info.loss, info.lr, info.grad_norm, tps, now_s() - t0);
            if (evaluated) fprintf(pg.log, ",\"val_loss\":%.9g", last_val);
            fputs("}\n", pg.log);
            fflush(pg.log);
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
        }
        if (last) break; /* decided once: the final evaluation above was for this step */
    }
    if (pg.tty) fputc('\n', stderr);
    if ((st = cli_dist_save(&tr, ckpt_path, kv)))
        cli_fail("checkpoint not written: %s (the previous checkpoint is intact)", lstm_last_error());
    if (cli_dist_rank() == 0 && strcmp(keep, "best") && (st = lstm_charlm_save(&model, out_path, NULL)))
        cli_fail("model not written: %s", lstm_last_error());
    if (stop_signal) {
        fprintf(stderr, "interrupted at step %" PRId64 ": checkpoint saved to %s; continue with: lstm train --resume %s\n",
                tr.step, ckpt_path, ckpt_path);
        status = 130;
        goto out;
    }
    char val_s[96] = "";
    if (n_val) snprintf(val_s, sizeof val_s, ", validation loss %.4f (%.4f bits/char)", last_val, last_val / log(2.0));
    fprintf(stderr, "trained %" PRId64 " steps (to step %" PRId64 ", epoch %.2f) in %.1f s: loss %.4f%s, %.0f tokens/s; wrote %s\n",
            done_steps, tr.step, (double)tr.step / (double)spe, now_s() - t0, loss_ema, val_s,
            (double)done_steps * batch * bptt / (train_time > 0 ? train_time : 1e-9), out_path);
    if (sample_n > 0) {
        unsigned char *buf = malloc((size_t)sample_n);
        unsigned char prime = model.id['\n'] >= 0 ? '\n' : model.vocab[0];
        if (!buf) cli_fail("out of memory");
        if ((st = lstm_charlm_generate(&model, &prime, 1, buf, (size_t)sample_n, 0.8, 0, (uint64_t)seed)))
            cli_fail_status(st);
        fwrite(buf, 1, (size_t)sample_n, stdout);
        fputc('\n', stdout);
        free(buf);
    }
out:
    if (pg.log) fclose(pg.log);
    lstm_trainer_free(&tr);
    lstm_charlm_free(&model);
    lstm_st_free(&ckpt);
    cli_corpus_close(&corpus);
    free(kv); free(vals); free(keys); free(ckpt_default);
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
            cli_opt_long(&a, "--threads", &threads, 0, 4096) || cli_opt_flag(&a, "--help", &help))
            continue;
        cli_usage(&a, "unknown option '%s'", argv[a.i]);
    }
    if (help) {
        puts("usage: lstm eval --model M.safetensors --data FILE [--json] [--bptt T] [--threads N]\n"
             "Mean cross-entropy of the n-1 next-byte predictions over FILE read as one stream\n"
             "from zero state (in blocks of T = 256 steps), in nats and bits per char.");
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
    printf("%s: %.6f nats/char, %.6f bits/char over %zu predictions\n", data_path, loss, bpc, count);
    if (json) printf("{\"loss\": %.9g, \"bpc\": %.9g, \"chars\": %zu}\n", loss, bpc, count);
    free(ids); free(bytes);
    lstm_charlm_free(&m);
    return 0;
}

/* ---------------------------------------------------------------- sample */

int lstm_cmd_sample(int argc, char **argv) {
    const char *model_path = NULL, *prime = NULL;
    long length = 500, top_k = 0, seed = 1, threads = 1;
    double temperature = 0.8;
    int help = 0;
    cli_args a = {argc, argv, 0, "sample"};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_str(&a, "--model", &model_path) || cli_opt_str(&a, "--prime", &prime) ||
            cli_opt_long(&a, "--length", &length, 0, 1L << 40) ||
            cli_opt_double(&a, "--temperature", &temperature, 0, 1e6) ||
            cli_opt_long(&a, "--top-k", &top_k, 0, 256) || cli_opt_long(&a, "--seed", &seed, 0, 9007199254740991L) ||
            cli_opt_long(&a, "--threads", &threads, 0, 4096) || cli_opt_flag(&a, "--help", &help))
            continue;
        cli_usage(&a, "unknown option '%s'", argv[a.i]);
    }
    if (help) {
        puts("usage: lstm sample --model M.safetensors [--prime TEXT] [--length N] [--temperature T]\n"
             "                   [--top-k K] [--seed S]\n"
             "Writes the prime (default: a newline, or the first vocabulary byte) and N (500)\n"
             "generated bytes to stdout.  Temperature (0.8) 0 is greedy (argmax); --top-k K draws\n"
             "only among the K likeliest bytes.");
        return 0;
    }
    if (!model_path) cli_usage(&a, "--model is required");
    (void)threads; /* accepted for symmetry: one stream of one byte per step gains nothing from threads */
    lstm_charlm m;
    lstm_status st = lstm_charlm_load(&m, model_path);
    if (st) cli_fail_status(st);
    unsigned char dflt[1] = {m.id['\n'] >= 0 ? '\n' : m.vocab[0]};
    const unsigned char *p = prime && *prime ? (const unsigned char *)prime : dflt;
    size_t np = prime && *prime ? strlen(prime) : 1;
    unsigned char *out = malloc(length ? (size_t)length : 1);
    if (!out) cli_fail("out of memory for --length %ld", length);
    if ((st = lstm_charlm_generate(&m, p, np, out, (size_t)length, temperature, (int)top_k, (uint64_t)seed)))
        cli_fail_status(st);
    fwrite(p, 1, np, stdout);
    fwrite(out, 1, (size_t)length, stdout);
    if (fflush(stdout)) cli_fail("writing the sample: %s", strerror(errno));
    free(out);
    lstm_charlm_free(&m);
    return 0;
}
