/*
 * lstm.h — LSTM and GRU networks in C, with torch.nn.LSTM's and nn.GRU's semantics.
 *
 * Overview
 *   An lstm_net holds the parameters of a (possibly deep, bidirectional,
 *   projected) LSTM in ONE flat float buffer, in PyTorch state_dict order, with
 *   named views per layer and direction; gradients mirror it.  Sequences are
 *   time-major: x is [T, B, I] so that each step reads one contiguous [B, I]
 *   block.  Per layer, the input projections of all T steps are one matrix
 *   product, then the recurrence runs step by step; a deep net runs each layer
 *   over the whole sequence before the next one starts.
 *
 *   The cell is an LSTM (below) or, with lstm_config.cell = LSTM_CELL_GRU, a GRU
 *   (nn.GRU's gates r, z, n; see lstm_cell_kind).  LSTM gates, in PyTorch's order i, f, g, o:
 *     gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh            [B, 4H]
 *     i = σ(gates_i)  f = σ(gates_f)  g = tanh(gates_g)  o = σ(gates_o)
 *     c' = f·c + i·g      h' = o·tanh(c')   (LSTMP: h' = (o·tanh(c')) W_hrᵀ)
 *
 * Errors
 *   Every fallible call returns an lstm_status.  On failure, outputs are left
 *   unchanged (or freed) and lstm_last_error() gives a one-line reason naming
 *   the file/tensor and what was expected.  The library never prints or exits.
 *   Programmer misuse (NULL where not allowed) may assert.
 *
 * Ownership
 *   *_init / *_load allocate; the matching *_free releases and accepts NULL or
 *   zeroed structs.  Pointers passed in are borrowed for the duration of the call.
 *   A workspace serves one call at a time (it holds the thread team and scratch);
 *   use one workspace per calling thread.  Forwards of one net may run at once
 *   on workspaces of their own; backwards may not (each adds into net->grads).
 *   A workspace may serve several nets of its shape: what it keeps of one (a
 *   packed copy of the weights) is never used for another (lstm_net.stamp).
 *
 * Kernels and determinism
 *   The CPU picks the kernels at run time: AVX-512, else AVX2+FMA, else portable C.
 *   LSTM_KERNEL=ref|generic|avx2|avx512 in the environment forces one (avx2 and
 *   below also turn off the fused AVX-512 step; LSTM_FUSED=0 turns off only that).
 *   For a given kernel the results are the same bits for any thread count, and
 *   a sequence fed through lstm_stream in pieces gives the bits of one call.
 *   Inference at batch 1 (lstm_forward or lstm_stream with B = 1) runs its own
 *   step kernel (split sums, its own σ/tanh): the same row computed inside a
 *   batch of B > 1 may differ from it by up to about 1e-5 (both are within
 *   float32 rounding of the float64 reference, as tested against PyTorch).
 *
 * Example (inference)
 *   lstm_net net;
 *   if (lstm_net_load(&net, "model.safetensors", "") != LSTM_OK) {
 *       fprintf(stderr, "%s\n", lstm_last_error()); return 1; }
 *   lstm_workspace *ws;
 *   lstm_workspace_init(&ws, &net, T, B, 0);      // 0: inference only
 *   lstm_forward(&net, ws, T, B, x, NULL, NULL, y, hn, cn);
 *   lstm_workspace_free(ws);
 *   lstm_net_free(&net);
 *
 * Example (training step)
 *   lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
 *   lstm_net_zero_grad(&net);
 *   lstm_forward(&net, ws, T, B, x, h0, c0, y, hn, cn);
 *   ... dy = dLoss/dy ...
 *   lstm_backward(&net, ws, dy, NULL, NULL, dx, NULL, NULL); // net.grads += dL/dθ
 */
#ifndef LSTM_H
#define LSTM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public function carries LSTM_API: the shared library is built with
 * hidden visibility and exports exactly these. */
#if defined(__GNUC__) || defined(__clang__)
#define LSTM_API __attribute__((visibility("default")))
#else
#define LSTM_API
#endif

/* ---------------------------------------------------------------- errors */

typedef enum {
    LSTM_OK = 0,
    LSTM_ERR_NOMEM,     /* allocation failed */
    LSTM_ERR_IO,        /* open/read/write/fsync/rename failed */
    LSTM_ERR_FORMAT,    /* malformed file contents (header, JSON, sizes, offsets) */
    LSTM_ERR_DTYPE,     /* unsupported or unexpected element type / byte order */
    LSTM_ERR_SHAPE,     /* a shape that does not fit */
    LSTM_ERR_MISSING,   /* a required tensor is absent */
    LSTM_ERR_EXTRA,     /* an unexpected tensor is present */
    LSTM_ERR_ARG,       /* invalid argument or unsupported configuration */
    LSTM_ERR_NONFINITE  /* NaN or Inf where a finite value is required */
} lstm_status;

/* Short name of a status ("ok", "out of memory", ...). Never NULL. */
LSTM_API const char *lstm_status_str(lstm_status s);
/* One-line reason for the last failure in the calling thread ("" if none). */
LSTM_API const char *lstm_last_error(void);

/* ---------------------------------------------------------------- model */

/* The recurrent cell of every layer.  LSTM_CELL_GRU is torch.nn.GRU (gates r, z, n):
 *   r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)     z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
 *   n = tanh(x W_inᵀ + b_in + r·(h W_hnᵀ + b_hn))      h' = (1 − z)·n + z·h
 * A GRU has no cell state c and no projection: every c0/cn/dcn/dc0 argument
 * below must be NULL for it (LSTM_ERR_ARG otherwise), and lstm_state.c is NULL. */
typedef enum { LSTM_CELL_LSTM = 0, LSTM_CELL_GRU = 1 } lstm_cell_kind;

typedef struct {
    int input_size;    /* I */
    int hidden_size;   /* H */
    int num_layers;    /* L >= 1 */
    int proj_size;     /* P: 0 = no projection; else 0 < P < H and h has size P (LSTM only) */
    int bias;          /* 1: b_ih and b_hh present (PyTorch's default) */
    int bidirectional; /* 1: two directions, outputs concatenated [fwd, bwd] */
    int cell;          /* lstm_cell_kind: LSTM_CELL_LSTM (0, the default) or LSTM_CELL_GRU */
} lstm_config;

/* Views of one (layer, direction) into the flat buffer.  G = 4 gates (i, f, g, o)
 * for the LSTM, 3 (r, z, n) for the GRU: nn.LSTM's / nn.GRU's shapes. */
typedef struct {
    float *w_ih; /* [G*H, in]                        */
    float *w_hh; /* [G*H, Hout]                      */
    float *b_ih; /* [G*H] or NULL when bias = 0      */
    float *b_hh; /* [G*H] or NULL when bias = 0      */
    float *w_hr; /* [P, H] or NULL when proj_size = 0 */
    int in;      /* this layer's input size: I for layer 0, D*Hout above */
} lstm_weights;

typedef struct {
    lstm_config cfg;
    int D;            /* directions: 1 or 2 */
    int H;            /* hidden size (size of c) */
    int Hout;         /* size of h: P if projected, else H */
    int G;            /* gates per unit: 4 (LSTM) or 3 (GRU) */
    size_t n_params;  /* floats in params (and in grads) */
    float *params;    /* [n_params], state_dict order: for l, for d: w_ih w_hh b_ih b_hh w_hr */
    float *grads;     /* [n_params], same layout; accumulated by lstm_backward */
    lstm_weights *w;  /* [L*D] views into params, index l*D + d */
    lstm_weights *g;  /* [L*D] views into grads */
    int external;     /* 1: params and grads belong to the caller (lstm_net_init_external) */
    uint64_t stamp;   /* this init's number, unique in the process (0 after lstm_net_free): a
                       * workspace's packed copy of the weights is of one (params, stamp), so a
                       * net made where a freed one was is never taken for it */
} lstm_net;

/* Validates cfg, allocates params and grads (zeroed).  Tensor names are those
 * of nn.LSTM / nn.GRU's state_dict (weight_ih_l0, ..., weight_hh_l1_reverse). */
LSTM_API lstm_status lstm_net_init(lstm_net *net, const lstm_config *cfg);
/* For an owner that keeps the net inside its own buffers (e.g. one flat model
 * buffer embedding | recurrent | head): lstm_net_size validates cfg and gives
 * the floats the net needs in params (and, the same count, in grads);
 * lstm_net_init_external then lays the views over params[n_params] and
 * grads[n_params] (both non-NULL, borrowed, contents left as they are).
 * lstm_net_free releases only the views, never the caller's buffers. */
LSTM_API lstm_status lstm_net_size(const lstm_config *cfg, size_t *n_params);
LSTM_API lstm_status lstm_net_init_external(lstm_net *net, const lstm_config *cfg, float *params, float *grads);
LSTM_API void lstm_net_free(lstm_net *net);
/* PyTorch's default init law: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
 * drawn from our own seeded generator (not PyTorch's bit stream). */
LSTM_API void lstm_net_init_uniform(lstm_net *net, uint64_t seed);
LSTM_API void lstm_net_zero_grad(lstm_net *net);

/* One named tensor of the net, e.g. "weight_hh_l1_reverse". */
typedef struct {
    char name[48];
    int ndim;          /* 1 or 2 */
    int64_t shape[2];
    size_t offset;     /* into params / grads */
    size_t numel;
} lstm_tensor_info;

/* Fills out[0..n) (out may be NULL) and returns n, the tensor count. */
LSTM_API int lstm_net_tensors(const lstm_net *net, lstm_tensor_info *out);

/* ---------------------------------------------------------------- files */

/* Loads an nn.LSTM or nn.GRU state_dict from a safetensors file.  Tensor names
 * are prefix + PyTorch's names; the configuration is inferred from names and
 * shapes (the cell from the rows of weight_hh_l0: 4H LSTM, 3H GRU; weight_hr
 * tensors make it an LSTM).  Tensors outside the prefix are ignored; a missing tensor, an extra
 * one under the prefix, or an inconsistent shape is an error.  F32, F64, F16
 * and BF16 are converted to float.  On failure *net is zeroed. */
LSTM_API lstm_status lstm_net_load(lstm_net *net, const char *path, const char *prefix);
/* Saves params as F32 under prefix + state_dict names; atomic (tmp + rename). */
LSTM_API lstm_status lstm_net_save(const lstm_net *net, const char *path, const char *prefix);

/* ---- safetensors: https://github.com/huggingface/safetensors format ----
 * 8-byte little-endian header length N, N bytes of JSON header, then data. */
typedef enum { LSTM_DT_F32, LSTM_DT_F64, LSTM_DT_F16, LSTM_DT_BF16, LSTM_DT_OTHER } lstm_dtype;

typedef struct {
    char *name;
    lstm_dtype dtype;
    char dtype_str[16]; /* as written in the file, e.g. "I64" */
    int ndim;           /* 0..8 */
    int64_t shape[8];
    size_t numel;
    size_t offset;      /* byte offset into data */
    size_t nbytes;
} lstm_st_tensor;

typedef struct {
    int n_tensors;
    lstm_st_tensor *tensors;
    int n_meta;
    char **meta_keys;   /* __metadata__ string map */
    char **meta_vals;
    unsigned char *buf; /* whole file, owned */
    size_t size;
    const unsigned char *data; /* buf + 8 + header length */
    size_t data_size;
} lstm_st_file;

/* Parses a safetensors image; takes ownership of buf (malloc'd) on success
 * and on failure (it is freed).  Every offset and size is checked. */
LSTM_API lstm_status lstm_st_parse(lstm_st_file *f, unsigned char *buf, size_t size);
/* Reads and parses a file; error messages start with the path. */
LSTM_API lstm_status lstm_st_read(lstm_st_file *f, const char *path);
LSTM_API const lstm_st_tensor *lstm_st_find(const lstm_st_file *f, const char *name);
LSTM_API const char *lstm_st_meta(const lstm_st_file *f, const char *key); /* NULL if absent */
/* Converts a float tensor (F32/F64/F16/BF16) to float32 into out[numel]. */
LSTM_API lstm_status lstm_st_to_f32(const lstm_st_file *f, const lstm_st_tensor *t, float *out);
LSTM_API void lstm_st_free(lstm_st_file *f);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[8];
    const float *data; /* numel floats, written as F32 little-endian */
} lstm_st_entry;

/* Writes F32 tensors and metadata (meta_kv: key, value, key, value, ..., NULL;
 * may be NULL) to path atomically (a temporary beside it, fsync, rename; a
 * device or FIFO is written directly). */
LSTM_API lstm_status lstm_st_write(const char *path, const lstm_st_entry *t, int n,
                          const char *const *meta_kv);

/* ---- .npy (format 1.0/2.0, little-endian <f4 or <f8, C order) ---- */
typedef struct {
    int ndim;          /* 0..8 */
    int64_t shape[8];
    size_t numel;
    float *data;       /* converted to float32, owned */
} lstm_array;

LSTM_API lstm_status lstm_npy_parse(lstm_array *a, const unsigned char *buf, size_t size);
LSTM_API lstm_status lstm_npy_read(lstm_array *a, const char *path);
/* Writes <f4, format 1.0, atomically (tmp + rename). */
LSTM_API lstm_status lstm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape);
LSTM_API void lstm_array_free(lstm_array *a);

/* Like lstm_net_load, from an already-parsed safetensors file (for files that
 * hold more than the LSTM); path is only used in error messages. */
LSTM_API lstm_status lstm_net_from_st(lstm_net *net, const lstm_st_file *f, const char *path, const char *prefix);

/* ---------------------------------------------------------------- compute */

/* Scratch for one (T, B): gate activations, cell states and layer outputs.
 * With LSTM_WS_TRAIN it keeps what lstm_backward needs and has room for the
 * backward pass.  Allocated once; forward/backward never allocate. */
typedef struct lstm_workspace lstm_workspace;
/* LSTM_WS_BATCH_FIRST: torch's batch_first=True.  lstm_forward and
 * lstm_backward on this workspace take x, dx [B, T, I] and y, dy [B, T, D*Hout]
 * instead of [T, B, ...] (the states h0, c0, hn, cn, dhn, dcn, dh0, dc0 keep
 * their [L*D, B, ...] shapes, as in PyTorch); the results are the same bits as
 * the time-major call on transposed arrays.  The workspace holds the
 * time-major copies (T*B*(I + D*Hout) floats more).  lstm_stream refuses it. */
/* LSTM_WS_KEEP_PACKS: lstm_forward keeps its repacked copy of the weights
 * between calls on the same net->params, as lstm_stream does, instead of
 * repacking on every call (2-9 % of a forward of 50-100 steps); call
 * lstm_workspace_weights_changed after changing net->params in place (without
 * it, outputs mix old and new weights).  With LSTM_WS_TRAIN the backward runs
 * on the kept copies too: a training loop calls lstm_workspace_weights_changed
 * after every optimizer step (and then gains nothing); it pays where the weights
 * stay fixed between forwards, e.g. gradients with respect to the input. */
enum { LSTM_WS_TRAIN = 1, LSTM_WS_BATCH_FIRST = 2, LSTM_WS_KEEP_PACKS = 4 };

/* T >= 1 steps (calls may use fewer), B >= 1 streams, T*B <= INT_MAX (and
 * buffer sizes that fit in size_t; else LSTM_ERR_ARG); flags 0 or LSTM_WS_TRAIN,
 * or-ed with LSTM_WS_BATCH_FIRST and LSTM_WS_KEEP_PACKS (any other bit:
 * LSTM_ERR_ARG); a net not made by lstm_net_init, or freed: LSTM_ERR_ARG.
 * One thread until lstm_workspace_set_threads.  *ws is NULL on failure. */
LSTM_API lstm_status lstm_workspace_init(lstm_workspace **ws, const lstm_net *net, int T, int B, int flags);
LSTM_API void lstm_workspace_free(lstm_workspace *ws);
/* Dropout p on the outputs of every layer but the last, applied by
 * lstm_forward on a LSTM_WS_TRAIN workspace (PyTorch's train-mode dropout);
 * *rng is a xorshift state advanced by each forward.  p in [0, 1], as
 * nn.LSTM's dropout: p = 0 turns it off, p = 1 zeroes those outputs (x·0:
 * NaN stays NaN).  LSTM_ERR_ARG (the setting unchanged): p NaN or outside [0, 1],
 * or p > 0 with rng NULL. */
LSTM_API lstm_status lstm_workspace_set_dropout(lstm_workspace *ws, float p, uint64_t *rng);
/* Runs forward/backward on n threads (n = 1: the calling thread only; at most
 * LSTM_MAX_THREADS).  The threads live as long as ws; results are
 * bit-identical for every n.  LSTM_ERR_NOMEM (threads could not start): ws
 * keeps its previous threads and stays usable. */
enum { LSTM_MAX_THREADS = 256 };
LSTM_API lstm_status lstm_workspace_set_threads(lstm_workspace *ws, int n);
/* lstm_stream (and lstm_forward on a LSTM_WS_KEEP_PACKS workspace) keeps a
 * repacked copy of the weights in ws between calls; call this after changing
 * net->params in place (lstm_forward on other workspaces always repacks, so
 * it needs no such call). */
LSTM_API void lstm_workspace_weights_changed(lstm_workspace *ws);

/* Full-sequence forward, torch.nn.LSTM semantics (torch.nn.GRU for a GRU net:
 * c0 and cn must be NULL).
 *   x  [T, B, I]                    (T <= ws T, B == ws B)
 *   h0 [L*D, B, Hout] or NULL (zeros)   c0 [L*D, B, H] or NULL (zeros)
 *   y  [T, B, D*Hout]   hn [L*D, B, Hout] or NULL   cn [L*D, B, H] or NULL
 * hn may be h0 and cn may be c0 (read before written); y and x must not
 * overlap (LSTM_ERR_ARG, nothing computed). */
LSTM_API lstm_status lstm_forward(const lstm_net *net, lstm_workspace *ws, int T, int B,
                         const float *x, const float *h0, const float *c0,
                         float *y, float *hn, float *cn);

/* Backward through time after lstm_forward on the same LSTM_WS_TRAIN workspace,
 * with the forward's net (another net, even of the same shape: LSTM_ERR_ARG);
 * it consumes what the forward saved (one backward per forward: a second call
 * returns LSTM_ERR_ARG) and undoes the dropout that forward ran with (a
 * lstm_workspace_set_dropout in between applies from the next forward).
 *   dy [T, B, D*Hout] or NULL (zeros)  dhn [L*D, B, Hout] or NULL  dcn [L*D, B, H] or NULL
 * Accumulates parameter gradients into net->grads (+=).  Writes (overwrites)
 *   dx [T, B, I], dh0 [L*D, B, Hout], dc0 [L*D, B, H]; each may be NULL.
 * A GRU: dcn and dc0 must be NULL.  dh0 may be dhn and dc0 dcn; dx and dy must
 * not overlap (LSTM_ERR_ARG before anything is consumed: the call may be made
 * again).  Two threads may not run lstm_backward on one net at once (both add
 * into net->grads), even on workspaces of their own. */
LSTM_API lstm_status lstm_backward(lstm_net *net, lstm_workspace *ws,
                          const float *dy, const float *dhn, const float *dcn,
                          float *dx, float *dh0, float *dc0);

/* ---- the cell: one step of torch.nn.LSTMCell on a batch ----
 * (B >= 1, H >= 1, I >= 0; other sizes do nothing: these calls return no status)
 *   x [B, I], h [B, H] or NULL (zeros), c [B, H] or NULL (zeros); w_ih [4H, I], w_hh [4H, H],
 *   b_ih, b_hh [4H] or both NULL
 *   out: h1 [B, H], c1 [B, H], act [B, 4H] (σ(i), σ(f), tanh(g), σ(o), kept for backward) */
LSTM_API void lstm_cell_forward(float *h1, float *c1, float *act,
                       const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int B, int I, int H);
/* Given dh1, dc1 [B, H] (dc1 may be NULL), writes dx [B, I], dh [B, H], dc [B, H]
 * (each may be NULL) and accumulates dw_ih [4H, I], dw_hh [4H, H], db_ih, db_hh [4H]
 * (db_* may be NULL).  scratch: [B, 5H]. */
LSTM_API void lstm_cell_backward(float *dx, float *dh, float *dc,
                        float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh1, const float *dc1, const float *act,
                        const float *x, const float *h, const float *c, const float *c1,
                        const float *w_ih, const float *w_hh, float *scratch,
                        int B, int I, int H);

/* ---- the GRU cell: one step of torch.nn.GRUCell on a batch ----
 *   x [B, I], h [B, H] or NULL (zeros); w_ih [3H, I], w_hh [3H, H], b_ih, b_hh [3H] or both NULL
 *   out: h1 [B, H], act [B, 4H] (r, z, n, h·W_hnᵀ + b_hn, kept for backward) */
LSTM_API void lstm_gru_cell_forward(float *h1, float *act, const float *x, const float *h,
                           const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                           int B, int I, int H);
/* Given dh1 [B, H], writes dx [B, I], dh [B, H] (each may be NULL) and accumulates
 * dw_ih [3H, I], dw_hh [3H, H], db_ih, db_hh [3H] (db_* may be NULL).  scratch: [B, 8H]. */
LSTM_API void lstm_gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                            const float *dh1, const float *act, const float *x, const float *h,
                            const float *w_ih, const float *w_hh, float *scratch, int B, int I, int H);

/* ---- streaming: feed a unidirectional net a step (or a block) at a time ---- */
typedef struct {
    int L, D, B, H, Hout;
    float *h; /* [L*D, B, Hout] */
    float *c; /* [L*D, B, H]; NULL for a GRU */
} lstm_state;

LSTM_API lstm_status lstm_state_init(lstm_state *s, const lstm_net *net, int B); /* zeros; c only for an LSTM
                                                                                 * (a freed net: LSTM_ERR_ARG) */
LSTM_API void lstm_state_reset(lstm_state *s);                                   /* back to zeros (freed: nothing) */
LSTM_API lstm_status lstm_state_copy(lstm_state *dst, const lstm_state *src);    /* same shapes */
LSTM_API void lstm_state_free(lstm_state *s);
/* Runs T steps from the state and leaves the final state in it:
 *   x [T, B, I] -> y [T, B, Hout].  ws: lstm_workspace_init(net, Tmax >= T, B, 0):
 * a LSTM_WS_TRAIN or LSTM_WS_BATCH_FIRST workspace is LSTM_ERR_ARG, and so are
 * bidirectional nets, which cannot stream; so is y overlapping x (y is
 * written while x is still read).  Feeding a sequence in pieces gives the
 * same bits as feeding it at once. */
LSTM_API lstm_status lstm_stream(const lstm_net *net, lstm_workspace *ws, lstm_state *s,
                        int T, const float *x, float *y);

/* ---------------------------------------------------------------- char-level language model
 *
 * Embedding(V, E) -> LSTM(E, H, L, proj P, dropout between layers) or
 * GRU(E, H, L, dropout) -> Linear(Hout, V), softmax cross-entropy in nats.
 * Files use the state_dict names of
 *     class CharLSTM(nn.Module):
 *         def __init__(self, V, E, H, L, dropout=0.0, proj=0):
 *             self.embedding = nn.Embedding(V, E)
 *             self.lstm = nn.LSTM(E, H, L, dropout=dropout, proj_size=proj)
 *             self.head = nn.Linear(proj or H, V)
 * i.e. "embedding.weight" [V,E], "lstm.<nn.LSTM names>", "head.weight" [V,Hout],
 * "head.bias" [V], plus __metadata__ "vocab": a JSON array of the byte of each
 * token id.  The GRU model is the same module with self.gru = nn.GRU(E, H, L,
 * dropout=dropout): "gru.<nn.GRU names>"; loading tells the cell from the
 * names.  A GRU model has no cell state: every c argument below is ignored
 * for it (pass NULL).  Token sequences are time-major: ids[t*B + b].
 *
 * The model is ONE flat buffer, params = embedding.weight | the recurrent net
 * (its state_dict order) | head.weight, head.bias, with grads (and a
 * trainer's optimizer moments) laid out the same way; net lives inside it
 * (lstm_net_init_external), so clipping and the optimizer run once over
 * params[0..n_params). */
typedef struct {
    int V;                     /* vocabulary size, 1..256 */
    int E;                     /* embedding size */
    unsigned char vocab[256];  /* vocab[id] = byte */
    int16_t id[256];           /* id[byte] = token id, or -1 when not in the vocabulary */
    lstm_net net;              /* the LSTM or GRU (input_size E, unidirectional, bias), views into params/grads */
    size_t n_params;           /* floats in params/grads: the whole model */
    float *params;             /* [n_params]: embedding.weight | net.params | head.weight, head.bias */
    float *grads;              /* [n_params], same layout */
    float *emb, *head_w, *head_b;       /* views into params: [V,E], [V,Hout], [V] */
    float *d_emb, *d_head_w, *d_head_b; /* views into grads */
} lstm_charlm;

/* One parameter tensor of the whole model, in state_dict order. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
    size_t numel;
    float *param, *grad;       /* into m->params / m->grads */
} lstm_charlm_tensor;

/* vocab[0..V) must be distinct bytes; cfg: the LSTM or GRU (cfg.cell;
 * input_size must be E, bias 1, unidirectional).  Parameters and grads are zeroed. */
LSTM_API lstm_status lstm_charlm_init(lstm_charlm *m, const unsigned char *vocab, int V, int E,
                             const lstm_config *cfg);
LSTM_API void lstm_charlm_free(lstm_charlm *m);
/* PyTorch's default laws from our own seeded generator: embedding ~ N(0, 1),
 * LSTM/GRU ~ U(-1/sqrt(H), 1/sqrt(H)), head weight and bias ~ U(-1/sqrt(Hout), 1/sqrt(Hout)). */
LSTM_API void lstm_charlm_init_params(lstm_charlm *m, uint64_t seed);
LSTM_API void lstm_charlm_zero_grad(lstm_charlm *m);
/* Fills out[0..n) (out may be NULL), returns n. */
LSTM_API int lstm_charlm_tensors(lstm_charlm *m, lstm_charlm_tensor *out);
/* The sorted distinct bytes of data[0..n): vocab[256], *V.  n = 0 is an error. */
LSTM_API lstm_status lstm_charlm_vocab_of(const unsigned char *data, size_t n, unsigned char *vocab, int *V);
/* Maps bytes to token ids; a byte outside the vocabulary is LSTM_ERR_ARG,
 * with a message "<what>: byte 0xNN at offset K is not in the model's vocabulary". */
LSTM_API lstm_status lstm_charlm_encode(const lstm_charlm *m, const unsigned char *bytes, size_t n,
                               uint8_t *ids, const char *what);
/* Loads a model written by lstm_charlm_save or by PyTorch (tensors other
 * than the model's are ignored, so a training checkpoint loads too). */
LSTM_API lstm_status lstm_charlm_load(lstm_charlm *m, const char *path);
LSTM_API lstm_status lstm_charlm_load_st(lstm_charlm *m, const lstm_st_file *f, const char *path);
/* Writes the model as F32 safetensors with "vocab" metadata plus meta_kv
 * (key, value, ..., NULL; may be NULL); atomic. */
LSTM_API lstm_status lstm_charlm_save(lstm_charlm *m, const char *path, const char *const *meta_kv);

/* Scratch for blocks of up to T steps of B streams (time-major: LSTM_WS_BATCH_FIRST
 * and LSTM_WS_KEEP_PACKS are ignored, any other bit is LSTM_ERR_ARG); LSTM_WS_TRAIN
 * keeps what lstm_charlm_backward needs.  Allocated once; forward/backward never allocate. */
typedef struct lstm_charlm_ws lstm_charlm_ws;
LSTM_API lstm_status lstm_charlm_ws_init(lstm_charlm_ws **ws, const lstm_charlm *m, int T, int B, int flags);
LSTM_API void lstm_charlm_ws_free(lstm_charlm_ws *ws);
/* Dropout between LSTM layers (train workspaces only); see lstm_workspace_set_dropout. */
LSTM_API lstm_status lstm_charlm_ws_set_dropout(lstm_charlm_ws *ws, float p, uint64_t *rng);
/* The LSTM's forward/backward on n threads (lstm_workspace_set_threads: n in
 * [1, LSTM_MAX_THREADS], else LSTM_ERR_ARG): same bits for every n. */
LSTM_API lstm_status lstm_charlm_ws_set_threads(lstm_charlm_ws *ws, int n);
/* Runs T (<= ws T) steps:
 *   ids [T, B] token ids in, targets [T, B] (NULL: logits only)
 *   h [L, B, Hout], c [L, B, H]: initial state in (NULL: zeros), final state out
 *   (c: ignored for a GRU)
 *   *loss (may be NULL): mean cross-entropy over the T*B targets, in nats.
 * The logits [T, B, V] stay in the workspace (lstm_charlm_logits).  ws must
 * have been made for a model of m's shape (else LSTM_ERR_ARG, nothing written). */
LSTM_API lstm_status lstm_charlm_forward(const lstm_charlm *m, lstm_charlm_ws *ws, int T,
                                const uint8_t *ids, const uint8_t *targets,
                                float *h, float *c, double *loss);
/* After a forward with targets on a train workspace, with that forward's model
 * (another: LSTM_ERR_ARG, no gradient added): grads += d(mean loss)/dθ
 * (embedding, recurrent net and head). */
LSTM_API lstm_status lstm_charlm_backward(lstm_charlm *m, lstm_charlm_ws *ws);
LSTM_API const float *lstm_charlm_logits(const lstm_charlm_ws *ws);
/* Mean cross-entropy of the next-token predictions of ids[0..n) read as B
 * streams of S = (n-1) div B steps (stream b reads ids[b*S + j], predicts
 * ids[b*S + j + 1]), in blocks of T from zero state.  B = 1 is one stream over
 * all n - 1 predictions; threads as lstm_charlm_ws_set_threads (<= 1: one).
 * *count: predictions scored (B*S). */
LSTM_API lstm_status lstm_charlm_eval(const lstm_charlm *m, const uint8_t *ids, size_t n, int B, int T,
                             int threads, double *loss, size_t *count);
/* Feeds prime[0..np) (np >= 1; bytes must be in the vocabulary) from zero
 * state, then writes n generated bytes to out[n]: temperature 0 takes the
 * argmax (the first maximum); otherwise a draw from softmax(logits /
 * temperature) over the top_k largest logits (0: all), seeded by seed.
 * Errors as lstm_charlm_sampler_generate's. */
LSTM_API lstm_status lstm_charlm_generate(const lstm_charlm *m, const unsigned char *prime, size_t np,
                                 unsigned char *out, size_t n, double temperature, int top_k,
                                 uint64_t seed);

/* A sampler: generation from a char model one byte at a time on its streaming
 * state (batch 1), with everything a byte needs made once (layer 0's input
 * product for every vocabulary byte, the packed head), so that a byte costs one
 * step of the layers, the head and the pick, and nothing is allocated per byte.
 * lstm_charlm_generate is init + reset(seed) + feed(prime) + generate + free,
 * on one thread; the bytes are the same for every thread count.
 *
 *   lstm_charlm_sampler *s;
 *   lstm_charlm_sampler_init(&s, &m, 2);          // m must outlive s, weights unchanged
 *   lstm_charlm_sampler_reset(s, seed);           // zero state, the draw's generator
 *   lstm_charlm_sampler_feed(s, (const unsigned char *)"The ", 4);  // the prime (any number of calls)
 *   lstm_charlm_sampler_generate(s, out, 200, 0.8, 0);  // out[200]; more calls continue
 *   lstm_charlm_sampler_free(s);
 *
 * init: *s owns its workspace, state and a team of threads (1..LSTM_MAX_THREADS,
 *   or 0: chosen from m and this CPU — one thread while the weights a byte
 *   reads fit in one core's L2 cache (1 MB when the CPU does not say), else
 *   the cores this process may use (SMT siblings once), at most 8 and at most the groups the step
 *   splits into; LSTM_ERR_ARG otherwise, LSTM_ERR_NOMEM, *s NULL on failure); it borrows m,
 *   reads m's weights once (changed weights need a new sampler); the state is
 *   zero and the generator that of seed 0.  free(NULL) is a no-op.
 * reset: zero state, no pending byte, the generator of seed (as lstm_charlm_generate's).
 * feed: bytes[0..n) in order; a byte outside the vocabulary is LSTM_ERR_ARG
 *   naming it, and then nothing is fed.  A byte generate picked last is fed first.
 * generate: n bytes into out[n] as lstm_charlm_generate draws them (temperature
 *   0: the argmax, the first maximum; else softmax(logits / temperature) over
 *   the top_k largest logits, 0: all); each is fed before the next is drawn, the
 *   last when the sampler next needs it.  LSTM_ERR_ARG for a temperature < 0
 *   or not finite, a top_k < 0, or when nothing was fed since init/reset.
 *   Non-finite logits as torch: at temperature 0 a NaN is the argmax (the
 *   first NaN); else a NaN or +Inf logit, or all -Inf, is LSTM_ERR_NONFINITE
 *   (torch.multinomial refuses the softmax's NaN), out[] holding the bytes
 *   drawn before it.
 * logits: [V], the head's output after the last byte fed or generated (that
 *   byte fed now if it was pending); NULL when nothing was fed.  Valid until the
 *   next call on s. */
typedef struct lstm_charlm_sampler lstm_charlm_sampler;
LSTM_API lstm_status lstm_charlm_sampler_init(lstm_charlm_sampler **s, const lstm_charlm *m, int threads);
LSTM_API void lstm_charlm_sampler_free(lstm_charlm_sampler *s);
LSTM_API void lstm_charlm_sampler_reset(lstm_charlm_sampler *s, uint64_t seed);
LSTM_API lstm_status lstm_charlm_sampler_feed(lstm_charlm_sampler *s, const unsigned char *bytes, size_t n);
LSTM_API lstm_status lstm_charlm_sampler_generate(lstm_charlm_sampler *s, unsigned char *out, size_t n,
                                                  double temperature, int top_k);
LSTM_API const float *lstm_charlm_sampler_logits(lstm_charlm_sampler *s);

/* ---------------------------------------------------------------- training
 *
 * Truncated BPTT over B streams (the contract that a PyTorch loop reproduces):
 * with training tokens t[0..n), S = (n-1) div B; stream b reads inputs
 * t[b*S + j] and targets t[b*S + j + 1], j in [0, S).  An epoch has S div T
 * steps; step k of an epoch uses j in [k*T, (k+1)*T).  h and c start at zero
 * at each epoch and carry, detached, between steps.  The loss is the mean
 * cross-entropy over the T*B targets; gradients are clipped to a global norm
 * (torch.nn.utils.clip_grad_norm_) and one optimizer step follows
 * (torch.optim.Adam / AdamW / SGD semantics, PyTorch 1.13). */
typedef enum { LSTM_OPT_ADAM, LSTM_OPT_ADAMW, LSTM_OPT_SGD } lstm_optimizer;
typedef enum { LSTM_SCHED_CONSTANT, LSTM_SCHED_COSINE } lstm_schedule;

typedef struct {
    int batch, bptt;           /* B, T */
    lstm_optimizer optimizer;
    double lr;                 /* peak learning rate */
    double beta1, beta2, eps;  /* Adam/AdamW: 0.9, 0.999, 1e-8 */
    double weight_decay;       /* Adam/SGD: L2 added to the gradient; AdamW: decoupled */
    double momentum;           /* SGD */
    int nesterov;              /* SGD */
    double clip;               /* max global gradient norm; 0 = off */
    lstm_schedule schedule;
    int64_t warmup;            /* steps of linear warmup: lr*(s+1)/warmup for s < warmup */
    int64_t total_steps;       /* cosine: decays from lr to lr_min at step total_steps */
    double lr_min;
    double dropout;            /* between LSTM layers */
    uint64_t seed;             /* dropout generator */
} lstm_train_config;

/* Fills the defaults above (Adam, lr 3e-3, clip 1, B 32, T 64). */
LSTM_API void lstm_train_config_default(lstm_train_config *c);
/* Learning rate of (0-based) step s. */
LSTM_API double lstm_train_lr(const lstm_train_config *c, int64_t s);

typedef struct {
    lstm_train_config cfg;
    lstm_charlm *model;        /* borrowed */
    const uint8_t *ids;        /* training token ids, borrowed */
    size_t n;
    size_t S;                  /* steps of each stream: (n-1) div B */
    int64_t steps_per_epoch;   /* S div T */
    int64_t step;              /* optimizer steps done */
    uint64_t rng;              /* dropout generator state */
    float *h, *c;              /* carried state [L, B, Hout], [L, B, H] (c NULL for a GRU) */
    size_t n_state;            /* floats per moment buffer: the model's n_params, same layout */
    float *m1, *m2;            /* Adam exp_avg / exp_avg_sq, SGD momentum_buffer (m1) */
    uint8_t *x, *y;            /* [T, B] */
    lstm_charlm_ws *ws;
    struct lstm__exact *exact; /* exact gradient sums, this process's streams (src/train/exact.c) */
} lstm_trainer;

typedef struct {
    int64_t step;              /* 1-based number of the step just taken */
    int64_t epoch;             /* 0-based epoch it belongs to */
    double loss;               /* its loss, before the update */
    double lr;
    double grad_norm;          /* before clipping */
} lstm_step_info;

/* ids[0..n) must hold at least B*T + 1 tokens. */
LSTM_API lstm_status lstm_trainer_init(lstm_trainer *tr, lstm_charlm *m, const lstm_train_config *cfg,
                              const uint8_t *ids, size_t n);
LSTM_API void lstm_trainer_free(lstm_trainer *tr);
/* Runs the LSTM on n threads (as lstm_charlm_ws_set_threads; a refused n leaves
 * the trainer as it was); results are the same bits for every n. */
LSTM_API lstm_status lstm_trainer_set_threads(lstm_trainer *tr, int n);
/* One TBPTT step.  A non-finite loss or gradient norm is LSTM_ERR_NONFINITE
 * and leaves the parameters and optimizer state untouched. */
LSTM_API lstm_status lstm_trainer_step(lstm_trainer *tr, lstm_step_info *info);
/* Checkpoint: the model, "optim.exp_avg.<name>" / "optim.exp_avg_sq.<name>"
 * (or "optim.momentum_buffer.<name>"), "state.h", "state.c" (LSTM only), and metadata
 * train.step, train.rng, train.epoch, train.pos plus meta_kv, and
 * train.checksum (64-bit FNV-1a over every tensor and every other metadata
 * entry, checked by lstm_trainer_restore); atomic. */
LSTM_API lstm_status lstm_trainer_save(lstm_trainer *tr, const char *path, const char *const *meta_kv);
/* Restores step, generator, carried state and optimizer moments from a
 * checkpoint whose model was loaded into tr->model (same B and optimizer).
 * The checksum must match; every value is range-checked. */
LSTM_API lstm_status lstm_trainer_restore(lstm_trainer *tr, const lstm_st_file *f, const char *path);

/* ---- the settings of a training run ----
 * The flags of `lstm train` and the "train.<key>" metadata of its checkpoints
 * are one table with one set of rules (src/train/run.c): keys data, cell, batch,
 * bptt, steps, epochs, lr, optimizer, clip, dropout, weight-decay, momentum,
 * nesterov, schedule, warmup, lr-min, val-fraction, eval-every, seed,
 * checkpoint-every, keep (last|best), patience, and the destinations
 * checkpoint, log, out; and the run's state best_val, bad_evals (the best
 * validation loss so far, inf for none, and the evaluations since: metadata
 * only, never flags).  Paths are stored so that any byte string round-trips
 * (bytes that are not UTF-8, and '\\', as \\xNN). */
typedef struct {
    lstm_train_config cfg;      /* batch .. seed; total_steps set by lstm_train_run_total */
    int64_t steps, epochs;      /* stop after step N or after N epochs (0: not set) */
    int64_t eval_every, checkpoint_every;
    double val_fraction;
    int cell;                   /* lstm_cell_kind of the char model: "lstm" (default) or "gru" */
    int keep_best;              /* --keep best: --out gets the best validation loss's weights */
    int64_t patience;           /* stop after this many evaluations without improvement (0: never) */
    double best_val;            /* state: the best validation loss so far (inf: none yet) */
    int64_t bad_evals;          /* state: evaluations since it */
    char *data;                 /* NULL: the default corpus */
    char *checkpoint, *log, *out;
    unsigned char given[32];    /* per key: set by a flag (lstm_train_run_set with src NULL) */
    char **meta;                /* lstm_train_run_meta's list, owned */
} lstm_train_run;

LSTM_API void lstm_train_run_init(lstm_train_run *r); /* the defaults */
LSTM_API void lstm_train_run_free(lstm_train_run *r);
/* Sets key from text with its range check.  src NULL: a flag (messages name
 * "--key", and the key counts as given); else the checkpoint file src
 * (messages name "src: checkpoint metadata 'train.key'").  A bad value is
 * LSTM_ERR_ARG, an unknown key LSTM_ERR_MISSING. */
LSTM_API lstm_status lstm_train_run_set(lstm_train_run *r, const char *key, const char *value, const char *src);
/* 1 when key was set by a flag (lstm_train_run_set with src NULL), else 0. */
LSTM_API int lstm_train_run_given(const lstm_train_run *r, const char *key);
/* Takes every key not given from the checkpoint's metadata, checked as the
 * flags are (a file without train.step is not a training checkpoint:
 * LSTM_ERR_FORMAT).  The destinations (checkpoint, log, out) are taken only when path
 * is the checkpoint its run wrote (the same file by device and inode): a
 * copy never writes the original run's files. */
LSTM_API lstm_status lstm_train_run_restore(lstm_train_run *r, const lstm_st_file *f, const char *path);
/* The rules of a resume, once r holds the resumed run's settings
 * (lstm_train_run_restore from the checkpoint f read from path) and its out.
 * batch, bptt and val-fraction cannot change (the carried state, the streams,
 * the steps of an epoch and the validation set depend on them): LSTM_ERR_ARG
 * when r's value differs from the checkpoint's ("--batch 8 conflicts with
 * PATH, which was trained with batch 4 ...").  Then --keep best: with a best
 * validation loss so far (best_val finite), --out holds its
 * weights and only a better evaluation overwrites them.  LSTM_ERR_ARG when
 * keep best was given for a checkpoint whose run kept its last weights (its
 * out holds those; its best loss is kept for --patience); LSTM_ERR_IO when out
 * (if set) does not exist (a copy of the checkpoint given a new out: the best
 * weights are in the first run's out).  LSTM_OK otherwise. */
LSTM_API lstm_status lstm_train_run_check_resume(const lstm_train_run *r, const lstm_st_file *f, const char *path);
/* The run's cell against the model it continues (cell: lstm_cell_kind of the
 * model read from src, a checkpoint when resume is 1, an --init file when 0):
 * a --cell given that differs is LSTM_ERR_ARG ("--cell gru conflicts with SRC,
 * which holds an LSTM model"); a checkpoint whose train.cell metadata differs
 * from its tensors is LSTM_ERR_FORMAT; an --init file's cell is adopted (r->cell
 * set), so the checkpoints the run writes name the model's cell. */
LSTM_API lstm_status lstm_train_run_model_cell(lstm_train_run *r, int cell, const char *src, int resume);
/* The model's sizes against those a run was given: sizes {hidden, layers,
 * embed, proj} with given[k] 1 where a flag set sizes[k]; the first that
 * differs from the model m read from src is LSTM_ERR_ARG ("--hidden 32
 * conflicts with SRC, which has 24"); sizes not given are the model's. */
LSTM_API lstm_status lstm_train_check_sizes(const lstm_charlm *m, const long sizes[4], const int given[4],
                                            const char *src);
/* The data of a resume: LSTM_ERR_ARG when the checkpoint f (read from path)
 * records a train.data_hash other than data_hash (FNV-1a 64 of the training
 * bytes, as 16 hex digits); data_name names the data in the message.  A
 * checkpoint without one passes. */
LSTM_API lstm_status lstm_train_check_data(const lstm_st_file *f, const char *path, uint64_t data_hash,
                                           const char *data_name);
/* The data hash lstm_train_check_data compares and `lstm train` records as
 * train.data_hash: FNV-1a 64 of the n bytes at data (0xcbf29ce484222325 for n = 0). */
LSTM_API uint64_t lstm_train_data_hash(const void *data, size_t n);
/* The rules between keys, once the steps per epoch are known: sets
 * cfg.total_steps from steps or epochs, resolves the weight decay default
 * (adamw 0.01, else 0), and refuses (LSTM_ERR_ARG) cosine without a total above
 * the warmup, and keep best or a patience without validation (val-fraction 0). */
LSTM_API lstm_status lstm_train_run_total(lstm_train_run *r, int64_t steps_per_epoch);
/* Records a validation loss in the run's state (best_val, bad_evals): returns 1
 * when it is the best so far (--keep best writes the weights then), else 0;
 * *stop = 1 when --patience evaluations in a row brought no improvement. */
LSTM_API int lstm_train_run_record_val(lstm_train_run *r, double val, int *stop);
/* "train.<key>", value, ..., NULL for lstm_trainer_save (owned by r; valid
 * until the next call or lstm_train_run_free).  NULL when out of memory. */
LSTM_API const char *const *lstm_train_run_meta(lstm_train_run *r);

/* ---- data-parallel training (src/train/exact.c) ----
 * A step's gradient is defined as an exact sum over the B streams: each
 * stream's gradient (its own products over T) is rounded to a fixed-point grid
 * whose scale comes from a maximum over all streams (per gradient row), and the
 * integers are added.  Integer sums do not depend on order or grouping, so the
 * result is the same bits however the streams are split over threads or
 * processes.  A reducer combines the processes: rank r of size holds streams
 * [r*B/size, (r+1)*B/size).  Each callback works in place over all ranks
 * (every rank gets the result) and returns 0 on success:
 *   max_f32: element-wise maximum; sum_i64: element-wise sum;
 *   allgather_f32: buf [size * n], rank r's n floats at buf + r*n -> everyone's. */
typedef struct lstm_reducer {
    int rank, size;
    void *ctx;
    int (*max_f32)(void *ctx, float *buf, size_t n);
    int (*sum_i64)(void *ctx, int64_t *buf, size_t n);
    int (*allgather_f32)(void *ctx, float *buf, size_t n);
} lstm_reducer;

/* Splits the streams over r's ranks (size must divide B); r is borrowed.  Call
 * after lstm_trainer_init / lstm_trainer_restore and before lstm_trainer_set_threads. */
LSTM_API lstm_status lstm_trainer_set_reducer(lstm_trainer *tr, const lstm_reducer *r);
/* on: the ids given to lstm_trainer_init (and to lstm_trainer_validate) are
 * raw bytes, each mapped through the model's vocabulary as it is read, so a
 * memory-mapped file needs no encoded copy.  The caller checks that every
 * byte is in the vocabulary (a step that meets one fails with LSTM_ERR_ARG). */
LSTM_API lstm_status lstm_trainer_set_bytes(lstm_trainer *tr, int on);
/* Before lstm_trainer_save: gathers every rank's carried state into tr->h, tr->c. */
LSTM_API lstm_status lstm_trainer_sync_state(lstm_trainer *tr);
/* Validation loss of ids[0..n) read as B streams in blocks of T from zero
 * state (each rank its streams), summed exactly: the same bits for any split. */
LSTM_API lstm_status lstm_trainer_validate(lstm_trainer *tr, const uint8_t *ids, size_t n, double *loss);

#ifdef __cplusplus
}
#endif
#endif /* LSTM_H */
