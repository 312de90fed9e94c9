/* run.c — the settings of a training run: one table of keys, ranges and
 * types shared by the `lstm train` flags and the checkpoint metadata
 * "train.<key>", so a value from a checkpoint passes the same checks as the
 * flag.  Paths are escaped so that any byte string round-trips through the
 * JSON header (which must be UTF-8). */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/fileio.h"
#include "train_internal.h"

typedef enum { K_INT, K_I64, K_U64, K_REAL, K_BOOL, K_OPTIM, K_SCHED, K_CELL, K_KEEP, K_PATH, K_DEST } key_kind;

typedef struct {
    const char *key;
    key_kind kind;
    double lo, hi;
    size_t off;
    int state; /* the run's state: checkpoint metadata only, never a flag */
} run_key;

#define F(field) offsetof(lstm_train_run, field)
static const run_key keys[] = {
    {"data", K_PATH, 0, 0, F(data), 0},
    {"cell", K_CELL, 0, 0, F(cell), 0},
    {"batch", K_INT, 1, 1 << 20, F(cfg.batch), 0},
    {"bptt", K_INT, 1, 1 << 20, F(cfg.bptt), 0},
    {"steps", K_I64, 1, 1e15, F(steps), 0},
    {"epochs", K_I64, 1, 1e9, F(epochs), 0},
    {"lr", K_REAL, 0, 1e38, F(cfg.lr), 0},
    {"optimizer", K_OPTIM, 0, 0, F(cfg.optimizer), 0},
    {"clip", K_REAL, 0, 1e30, F(cfg.clip), 0},
    {"dropout", K_REAL, 0, 0.999, F(cfg.dropout), 0},
    {"weight-decay", K_REAL, 0, 1e9, F(cfg.weight_decay), 0},
    {"momentum", K_REAL, 0, 1, F(cfg.momentum), 0},
    {"nesterov", K_BOOL, 0, 1, F(cfg.nesterov), 0},
    {"schedule", K_SCHED, 0, 0, F(cfg.schedule), 0},
    {"warmup", K_I64, 0, 1e15, F(cfg.warmup), 0},
    {"lr-min", K_REAL, 0, 1e9, F(cfg.lr_min), 0},
    {"val-fraction", K_REAL, 0, 0.9, F(val_fraction), 0},
    {"eval-every", K_I64, 0, 1e15, F(eval_every), 0},
    {"seed", K_U64, 0, 9007199254740991.0, F(cfg.seed), 0},
    {"checkpoint-every", K_I64, 0, 1e15, F(checkpoint_every), 0},
    {"keep", K_KEEP, 0, 0, F(keep_best), 0},
    {"patience", K_I64, 0, 1e15, F(patience), 0},
    {"best_val", K_REAL, 0, INFINITY, F(best_val), 1},
    {"bad_evals", K_I64, 0, 1e15, F(bad_evals), 1},
    {"checkpoint", K_DEST, 0, 0, F(checkpoint), 0},
    {"log", K_DEST, 0, 0, F(log), 0},
    {"out", K_DEST, 0, 0, F(out), 0},
};
#undef F
enum { NKEYS = sizeof keys / sizeof keys[0] };
_Static_assert(NKEYS <= sizeof ((lstm_train_run *)0)->given, "lstm_train_run.given must have a slot per key");
static const char *const optim_names[] = {"adam", "adamw", "sgd"};
static const char *const sched_names[] = {"constant", "cosine"};
static const char *const cell_names[] = {"lstm", "gru"}; /* by lstm_cell_kind */
static const char *const keep_names[] = {"last", "best"};

void lstm_train_run_init(lstm_train_run *r) {
    memset(r, 0, sizeof *r);
    lstm_train_config_default(&r->cfg);
    r->cfg.weight_decay = -1.0; /* resolved by lstm_train_run_total: adamw 0.01, else 0 */
    r->eval_every = 100;
    r->checkpoint_every = 200;
    r->val_fraction = 0.1;
    r->best_val = INFINITY;
}

static void free_meta(lstm_train_run *r) {
    if (r->meta)
        for (char **p = r->meta; *p; p++) free(*p);
    free(r->meta);
    r->meta = NULL;
}

void lstm_train_run_free(lstm_train_run *r) {
    if (!r) return;
    free(r->data); free(r->checkpoint); free(r->log); free(r->out);
    free_meta(r);
    memset(r, 0, sizeof *r);
}

static int key_index(const char *key) { /* -1 when unknown */
    for (int k = 0; k < NKEYS; k++)
        if (strcmp(keys[k].key, key) == 0) return k;
    return -1;
}

/* ---------------------------------------------------------------- path escaping
 * Valid UTF-8 is kept; '\' and every byte outside a valid UTF-8 sequence
 * become \xNN.  unescape inverts it exactly. */

static size_t utf8_len(const unsigned char *s) { /* length of a valid sequence at s, or 0 */
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 0) : c >= 0xC2 ? 2 : 0;
    if (!n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    unsigned c1 = s[1];
    if (c == 0xE0 && c1 < 0xA0) return 0;  /* overlong */
    if (c == 0xED && c1 > 0x9F) return 0;  /* surrogates */
    if (c == 0xF0 && c1 < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && c1 > 0x8F) return 0;  /* above U+10FFFF */
    return n;
}

static char *escape_path(const char *p) {
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(4 * strlen(p) + 1), *o = out;
    if (!out) return NULL;
    const unsigned char *s = (const unsigned char *)p;
    while (*s) {
        size_t n = *s == '\\' ? 0 : utf8_len(s);
        if (n) {
            memcpy(o, s, n);
            o += n;
            s += n;
        } else {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 15];
            s++;
        }
    }
    *o = 0;
    return out;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* NULL with *bad set when s holds a '\' not followed by xNN (or an escaped NUL). */
static char *unescape_path(const char *s, int *bad) {
    char *out = malloc(strlen(s) + 1), *o = out;
    *bad = 0;
    if (!out) return NULL;
    for (; *s; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        int hi = s[1] == 'x' ? hexval(s[2]) : -1, lo = hi >= 0 ? hexval(s[3]) : -1;
        if (lo < 0 || (hi | lo) == 0) {
            free(out);
            *bad = 1;
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        s += 3;
    }
    *o = 0;
    return out;
}

/* ---------------------------------------------------------------- set */

static lstm_status bad_value(const run_key *k, const char *src, const char *value, const char *expected) {
    char v[64];
    lstm__printable(v, sizeof v, value);
    if (src) return lstm__fail(LSTM_ERR_ARG, "%s: checkpoint metadata 'train.%s': expected %s, got '%s'", src, k->key, expected, v);
    return lstm__fail(LSTM_ERR_ARG, "--%s: expected %s, got '%s'", k->key, expected, v);
}

static lstm_status parse_name(const run_key *k, const char *src, const char *value, const char *const *names,
                              int n, int *out) {
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) {
            *out = i;
            return LSTM_OK;
        }
    char expected[64] = "";
    for (int i = 0; i < n; i++)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s",
                 i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    return bad_value(k, src, value, expected);
}

lstm_status lstm_train_run_set(lstm_train_run *r, const char *key, const char *value, const char *src) {
    int index = key_index(key);
    if (index < 0 || (!src && keys[index].state)) return lstm__fail(LSTM_ERR_MISSING, "training: unknown setting '%s'", key);
    const run_key *k = &keys[index];
    void *p = (char *)r + k->off;
    char expected[96];
    char *end = NULL;
    int i = 0;
    switch (k->kind) {
    case K_INT: case K_I64: case K_U64: case K_BOOL: {
        snprintf(expected, sizeof expected, "an integer in [%.0f, %.0f]", k->lo, k->hi);
        errno = 0;
        long long v = strtoll(value, &end, 10);
        int digits = (*value >= '0' && *value <= '9') || *value == '-'; /* no blanks, no '+' */
        if (!digits || errno || end == value || *end || !((double)v >= k->lo && (double)v <= k->hi))
            return bad_value(k, src, value, expected);
        if (k->kind == K_INT || k->kind == K_BOOL) *(int *)p = (int)v;
        else if (k->kind == K_I64) *(int64_t *)p = (int64_t)v;
        else *(uint64_t *)p = (uint64_t)v;
        break;
    }
    case K_REAL: {
        snprintf(expected, sizeof expected, "a number in [%g, %g]", k->lo, k->hi);
        errno = 0;
        double v = strtod(value, &end); /* inf only where hi is inf (best_val: none yet) */
        if (errno == ERANGE && fabs(v) <= DBL_MIN) errno = 0; /* underflow: the denormal or 0 it gives is the value */
        if (errno || end == value || *end || isnan(v) || v < k->lo || v > k->hi || (isinf(v) && !isinf(k->hi)))
            return bad_value(k, src, value, expected);
        *(double *)p = v;
        break;
    }
    case K_OPTIM: {
        lstm_status st = parse_name(k, src, value, optim_names, 3, &i);
        if (st) return st;
        *(lstm_optimizer *)p = (lstm_optimizer)i;
        break;
    }
    case K_SCHED: {
        lstm_status st = parse_name(k, src, value, sched_names, 2, &i);
        if (st) return st;
        *(lstm_schedule *)p = (lstm_schedule)i;
        break;
    }
    case K_CELL: case K_KEEP: {
        lstm_status st = k->kind == K_CELL ? parse_name(k, src, value, cell_names, 2, &i)
                                           : parse_name(k, src, value, keep_names, 2, &i);
        if (st) return st;
        *(int *)p = i;
        break;
    }
    case K_PATH: case K_DEST: {
        char *v;
        if (src) {
            int bad;
            v = unescape_path(value, &bad);
            if (!v && bad) return bad_value(k, src, value, "a path (\\xNN escapes only)");
        } else {
            v = strdup(value);
        }
        if (!v) return lstm__fail(LSTM_ERR_NOMEM, "training: out of memory");
        if (!*v) {
            free(v);
            return bad_value(k, src, value, "a non-empty path");
        }
        free(*(char **)p);
        *(char **)p = v;
        break;
    }
    }
    if (!src) r->given[index] = 1;
    return LSTM_OK;
}

int lstm_train_run_given(const lstm_train_run *r, const char *key) {
    int k = key_index(key);
    return k >= 0 && r->given[k];
}

/* ---------------------------------------------------------------- restore */

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

lstm_status lstm_train_run_restore(lstm_train_run *r, const lstm_st_file *f, const char *path) {
    if (!lstm_st_meta(f, "train.step")) /* a model file, say: no checksum to speak of either */
        return lstm__fail(LSTM_ERR_FORMAT, "%s: not a training checkpoint (no 'train.step' metadata)", path);
    lstm_status st = lstm__checkpoint_verify(f, path);
    if (st) return st;
    int i_steps = key_index("steps"), i_epochs = key_index("epochs");
    int steps_or_epochs = r->given[i_steps] || r->given[i_epochs]; /* one overrides the other */
    /* The destinations are the run's own only when this file is the checkpoint that run wrote. */
    const char *ck = lstm_st_meta(f, "train.checkpoint");
    char *ckpath = NULL;
    if (ck) {
        int bad;
        ckpath = unescape_path(ck, &bad);
        if (!ckpath && bad) return bad_value(&keys[key_index("checkpoint")], path, ck, "a path (\\xNN escapes only)");
    }
    int own = ckpath && same_file(ckpath, path);
    free(ckpath);
    int any_dest_given = 0;
    for (int k = 0; k < NKEYS; k++) any_dest_given |= keys[k].kind == K_DEST && r->given[k];
    for (int k = 0; k < NKEYS; k++) {
        if (r->given[k]) continue;
        if ((k == i_steps || k == i_epochs) && steps_or_epochs) continue;
        if (keys[k].kind == K_DEST && (!own || any_dest_given)) continue;
        char mk[64];
        snprintf(mk, sizeof mk, "train.%s", keys[k].key);
        const char *v = lstm_st_meta(f, mk);
        if (v && (st = lstm_train_run_set(r, keys[k].key, v, path))) return st;
    }
    return LSTM_OK;
}

/* The settings fixed for a whole run: the carried state and the stream layout fix batch and
 * bptt; the validation fraction fixes the training part (its streams, the steps of an epoch)
 * and the validation set that --keep best's losses compare on.  r's value against the
 * checkpoint's (its metadata, or the default where it has none, as a restore reads it). */
static lstm_status check_fixed(const lstm_train_run *r, const lstm_st_file *f, const char *path) {
    static const char *const fixed[] = {"batch", "bptt", "val-fraction"};
    lstm_train_run saved;
    lstm_train_run_init(&saved);
    lstm_status st = LSTM_OK;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !st; i++) {
        char mk[64];
        snprintf(mk, sizeof mk, "train.%s", fixed[i]);
        const char *v = lstm_st_meta(f, mk);
        if (v) st = lstm_train_run_set(&saved, fixed[i], v, path);
    }
    if (st) {
        /* a bad value: the error is set */
    } else if (r->cfg.batch != saved.cfg.batch) {
        st = lstm__fail(LSTM_ERR_ARG, "--batch %d conflicts with %s, which was trained with batch %d (it cannot change on --resume)",
                        r->cfg.batch, path, saved.cfg.batch);
    } else if (r->cfg.bptt != saved.cfg.bptt) {
        st = lstm__fail(LSTM_ERR_ARG, "--bptt %d conflicts with %s, which was trained with bptt %d (it cannot change on --resume)",
                        r->cfg.bptt, path, saved.cfg.bptt);
    } else if (r->val_fraction != saved.val_fraction) {
        st = lstm__fail(LSTM_ERR_ARG, "--val-fraction %g conflicts with %s, which was trained with val-fraction %g (it cannot change on --resume)",
                        r->val_fraction, path, saved.val_fraction);
    }
    lstm_train_run_free(&saved);
    return st;
}

lstm_status lstm_train_run_check_resume(const lstm_train_run *r, const lstm_st_file *f, const char *path) {
    lstm_status st = check_fixed(r, f, path);
    if (st) return st;
    if (!r->keep_best || !isfinite(r->best_val)) return LSTM_OK; /* no best so far: --out is written by the first evaluation */
    /* a run that kept its last weights has no best in its --out (its best loss is kept for
     * --patience): an evaluation that did not beat it would leave those last weights there */
    const char *k = lstm_st_meta(f, "train.keep");
    if (!k || strcmp(k, "best") != 0)
        return lstm__fail(LSTM_ERR_ARG, "--keep best conflicts with %s, whose run kept its last weights (--keep last), not those of its best validation loss %.4f",
                          path, r->best_val);
    /* the best weights so far are in --out, which only a better evaluation overwrites; where it
     * is missing (a copy of the checkpoint given a new --out) they are not here */
    struct stat so;
    if (r->out && stat(r->out, &so) != 0)
        return lstm__fail(LSTM_ERR_IO, "--keep best: the weights of the best validation loss so far (%.4f) are in the --out of the run that wrote %s, and %s does not exist (give that --out, or --keep last)",
                          r->best_val, path, r->out);
    return LSTM_OK;
}

lstm_status lstm_train_run_model_cell(lstm_train_run *r, int cell, const char *src, int resume) {
    static const char *const a_model[] = {"n LSTM", " GRU"};
    if (cell != LSTM_CELL_LSTM && cell != LSTM_CELL_GRU)
        return lstm__fail(LSTM_ERR_ARG, "training: unknown cell kind %d", cell);
    if (r->cell == cell) return LSTM_OK;
    if (lstm_train_run_given(r, "cell"))
        return lstm__fail(LSTM_ERR_ARG, "--cell %s conflicts with %s, which holds a%s model", cell_names[r->cell], src,
                          a_model[cell]);
    if (resume)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: checkpoint metadata 'train.cell' says %s, but its tensors are a%s model",
                          src, cell_names[r->cell], a_model[cell]);
    r->cell = cell; /* --init: the file's cell */
    return LSTM_OK;
}

lstm_status lstm_train_check_sizes(const lstm_charlm *m, const long sizes[4], const int given[4], const char *src) {
    static const char *const flag[4] = {"--hidden", "--layers", "--embed", "--proj"};
    const long have[4] = {m->net.H, m->net.cfg.num_layers, m->E, m->net.cfg.proj_size};
    for (int k = 0; k < 4; k++)
        if (given[k] && sizes[k] != have[k])
            return lstm__fail(LSTM_ERR_ARG, "%s %ld conflicts with %s, which has %ld", flag[k], sizes[k], src, have[k]);
    return LSTM_OK;
}

uint64_t lstm_train_data_hash(const void *data, size_t n) { return lstm__fnv1a(LSTM__FNV1A_INIT, data, n); }

lstm_status lstm_train_check_data(const lstm_st_file *f, const char *path, uint64_t data_hash, const char *data_name) {
    const char *h = lstm_st_meta(f, "train.data_hash");
    char have[32], shown[24];
    snprintf(have, sizeof have, "%016" PRIx64, data_hash);
    if (h && strcmp(h, have) != 0)
        return lstm__fail(LSTM_ERR_ARG, "%s: this checkpoint was trained on other data (hash %s), but %s has hash %s", path,
                          lstm__printable(shown, sizeof shown, h), data_name, have);
    return LSTM_OK;
}

int lstm_train_run_record_val(lstm_train_run *r, double val, int *stop) {
    *stop = 0;
    if (val < r->best_val) {
        r->best_val = val;
        r->bad_evals = 0;
        return 1;
    }
    if (r->patience && ++r->bad_evals >= r->patience) *stop = 1;
    return 0;
}

lstm_status lstm_train_run_total(lstm_train_run *r, int64_t spe) {
    int idx_steps = key_index("steps"), idx_epochs = key_index("epochs");
    if (r->given[idx_steps] && r->given[idx_epochs])
        return lstm__fail(LSTM_ERR_ARG, "--steps and --epochs exclude each other");
    if (r->given[idx_steps]) r->epochs = 0;
    if (r->given[idx_epochs]) r->steps = 0;
    /* both compare validation losses: without validation data --keep best would write no --out,
     * and --patience would never stop the run */
    if (r->keep_best && r->val_fraction == 0)
        return lstm__fail(LSTM_ERR_ARG, "--keep best needs validation data (--val-fraction above 0)");
    if (r->patience && r->val_fraction == 0)
        return lstm__fail(LSTM_ERR_ARG, "--patience %" PRId64 " needs validation data (--val-fraction above 0)", r->patience);
    if (r->cfg.weight_decay < 0) r->cfg.weight_decay = r->cfg.optimizer == LSTM_OPT_ADAMW ? 0.01 : 0.0;
    int64_t total = r->steps;
    if (!r->steps && r->epochs && (__builtin_mul_overflow(r->epochs, spe, &total) || total > (int64_t)1e15))
        return lstm__fail(LSTM_ERR_ARG, "--epochs %" PRId64 " of %" PRId64 " steps each is more than 10^15 steps",
                          r->epochs, spe);
    r->cfg.total_steps = total;
    if (r->cfg.schedule == LSTM_SCHED_COSINE && !total)
        return lstm__fail(LSTM_ERR_ARG, "--schedule cosine needs --steps or --epochs");
    if (r->cfg.schedule == LSTM_SCHED_COSINE && r->cfg.warmup >= total)
        return lstm__fail(LSTM_ERR_ARG, "--schedule cosine: --warmup %" PRId64 " must be below the total steps (%" PRId64 ")",
                          r->cfg.warmup, total);
    return LSTM_OK;
}

/* ---------------------------------------------------------------- meta */

const char *const *lstm_train_run_meta(lstm_train_run *r) {
    free_meta(r);
    r->meta = calloc(2 * NKEYS + 1, sizeof *r->meta);
    if (!r->meta) return NULL;
    int n = 0;
    for (int k = 0; k < NKEYS; k++) {
        const void *p = (const char *)r + keys[k].off;
        char v[64], *val = NULL;
        switch (keys[k].kind) {
        case K_INT: case K_BOOL: snprintf(v, sizeof v, "%d", *(const int *)p); break;
        case K_I64: snprintf(v, sizeof v, "%" PRId64, *(const int64_t *)p); break;
        case K_U64: snprintf(v, sizeof v, "%" PRIu64, *(const uint64_t *)p); break;
        case K_REAL: snprintf(v, sizeof v, "%.17g", *(const double *)p); break;
        case K_OPTIM: snprintf(v, sizeof v, "%s", optim_names[*(const lstm_optimizer *)p]); break;
        case K_SCHED: snprintf(v, sizeof v, "%s", sched_names[*(const lstm_schedule *)p]); break;
        case K_CELL: snprintf(v, sizeof v, "%s", cell_names[*(const int *)p]); break;
        case K_KEEP: snprintf(v, sizeof v, "%s", keep_names[*(const int *)p]); break;
        case K_PATH: case K_DEST:
            if (!*(char *const *)p) continue;
            val = escape_path(*(char *const *)p);
            break;
        }
        if (keys[k].kind == K_I64 && (!strcmp(keys[k].key, "steps") || !strcmp(keys[k].key, "epochs")) &&
            *(const int64_t *)p == 0)
            continue; /* not set */
        if (keys[k].kind == K_REAL && *(const double *)p < 0) continue; /* weight-decay's "the optimizer's default" */
        if (!val) val = keys[k].kind == K_PATH || keys[k].kind == K_DEST ? NULL : strdup(v);
        size_t kl = strlen(keys[k].key) + 7;
        char *key = malloc(kl);
        if (!val || !key) {
            free(val);
            free(key);
            free_meta(r);
            return NULL;
        }
        snprintf(key, kl, "train.%s", keys[k].key);
        r->meta[n++] = key;
        r->meta[n++] = val;
    }
    return (const char *const *)r->meta;
}
