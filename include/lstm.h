/*
 * lstm.h — LSTM networks in C, with torch.nn.LSTM's semantics.
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
 *   Gates, in PyTorch's order i, f, g, o:
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
const char *lstm_status_str(lstm_status s);
/* One-line reason for the last failure in the calling thread ("" if none). */
const char *lstm_last_error(void);

/* ---------------------------------------------------------------- model */

typedef struct {
    int input_size;    /* I */
    int hidden_size;   /* H */
    int num_layers;    /* L >= 1 */
    int proj_size;     /* P: 0 = no projection; else 0 < P < H and h has size P */
    int bias;          /* 1: b_ih and b_hh present (PyTorch's default) */
    int bidirectional; /* 1: two directions, outputs concatenated [fwd, bwd] */
} lstm_config;

/* Views of one (layer, direction) into the flat buffer. */
typedef struct {
    float *w_ih; /* [4H, in]                         */
    float *w_hh; /* [4H, Hout]                       */
    float *b_ih; /* [4H] or NULL when bias = 0       */
    float *b_hh; /* [4H] or NULL when bias = 0       */
    float *w_hr; /* [P, H] or NULL when proj_size = 0 */
    int in;      /* this layer's input size: I for layer 0, D*Hout above */
} lstm_weights;

typedef struct {
    lstm_config cfg;
    int D;            /* directions: 1 or 2 */
    int H;            /* hidden size (size of c) */
    int Hout;         /* size of h: P if projected, else H */
    size_t n_params;  /* floats in params (and in grads) */
    float *params;    /* [n_params], state_dict order: for l, for d: w_ih w_hh b_ih b_hh w_hr */
    float *grads;     /* [n_params], same layout; accumulated by lstm_backward */
    lstm_weights *w;  /* [L*D] views into params, index l*D + d */
    lstm_weights *g;  /* [L*D] views into grads */
} lstm_net;

/* Validates cfg, allocates params and grads (zeroed). */
lstm_status lstm_net_init(lstm_net *net, const lstm_config *cfg);
void lstm_net_free(lstm_net *net);
/* PyTorch's default init law: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)),
 * drawn from our own seeded generator (not PyTorch's bit stream). */
void lstm_net_init_uniform(lstm_net *net, uint64_t seed);
void lstm_net_zero_grad(lstm_net *net);

/* One named tensor of the net, e.g. "weight_hh_l1_reverse". */
typedef struct {
    char name[48];
    int ndim;          /* 1 or 2 */
    int64_t shape[2];
    size_t offset;     /* into params / grads */
    size_t numel;
} lstm_tensor_info;

/* Fills out[0..n) (out may be NULL) and returns n, the tensor count. */
int lstm_net_tensors(const lstm_net *net, lstm_tensor_info *out);

/* ---------------------------------------------------------------- files */

/* Loads an nn.LSTM state_dict from a safetensors file.  Tensor names are
 * prefix + PyTorch's names; the configuration is inferred from names and
 * shapes.  Tensors outside the prefix are ignored; a missing tensor, an extra
 * one under the prefix, or an inconsistent shape is an error.  F32, F64, F16
 * and BF16 are converted to float.  On failure *net is zeroed. */
lstm_status lstm_net_load(lstm_net *net, const char *path, const char *prefix);
/* Saves params as F32 under prefix + state_dict names; atomic (tmp + rename). */
lstm_status lstm_net_save(const lstm_net *net, const char *path, const char *prefix);

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
lstm_status lstm_st_parse(lstm_st_file *f, unsigned char *buf, size_t size);
/* Reads and parses a file; error messages start with the path. */
lstm_status lstm_st_read(lstm_st_file *f, const char *path);
const lstm_st_tensor *lstm_st_find(const lstm_st_file *f, const char *name);
const char *lstm_st_meta(const lstm_st_file *f, const char *key); /* NULL if absent */
/* Converts a float tensor (F32/F64/F16/BF16) to float32 into out[numel]. */
lstm_status lstm_st_to_f32(const lstm_st_file *f, const lstm_st_tensor *t, float *out);
void lstm_st_free(lstm_st_file *f);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[8];
    const float *data; /* numel floats, written as F32 little-endian */
} lstm_st_entry;

/* Writes F32 tensors and metadata (meta_kv: key, value, key, value, ..., NULL;
 * may be NULL) to path atomically: path.tmp.PID, fsync, rename. */
lstm_status lstm_st_write(const char *path, const lstm_st_entry *t, int n,
                          const char *const *meta_kv);

/* ---- .npy (format 1.0/2.0, little-endian <f4 or <f8, C order) ---- */
typedef struct {
    int ndim;          /* 0..8 */
    int64_t shape[8];
    size_t numel;
    float *data;       /* converted to float32, owned */
} lstm_array;

lstm_status lstm_npy_parse(lstm_array *a, const unsigned char *buf, size_t size);
lstm_status lstm_npy_read(lstm_array *a, const char *path);
/* Writes <f4, format 1.0, atomically (tmp + rename). */
lstm_status lstm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape);
void lstm_array_free(lstm_array *a);

/* Like lstm_net_load, from an already-parsed safetensors file (for files that
 * hold more than the LSTM); path is only used in error messages. */
lstm_status lstm_net_from_st(lstm_net *net, const lstm_st_file *f, const char *path, const char *prefix);

/* ---------------------------------------------------------------- compute */

/* Scratch for one (T, B): gate activations, cell states and layer outputs.
 * With LSTM_WS_TRAIN it keeps what lstm_backward needs and has room for the
 * backward pass.  Allocated once; forward/backward never allocate. */
typedef struct lstm_workspace lstm_workspace;
enum { LSTM_WS_TRAIN = 1 };

lstm_status lstm_workspace_init(lstm_workspace **ws, const lstm_net *net, int T, int B, int flags);
void lstm_workspace_free(lstm_workspace *ws);
/* Dropout p on the outputs of every layer but the last, applied by
 * lstm_forward on a LSTM_WS_TRAIN workspace (PyTorch's train-mode dropout);
 * *rng is a xorshift state advanced by each forward.  p = 0 turns it off. */
void lstm_workspace_set_dropout(lstm_workspace *ws, float p, uint64_t *rng);

/* Full-sequence forward, torch.nn.LSTM semantics.
 *   x  [T, B, I]                    (T <= ws T, B == ws B)
 *   h0 [L*D, B, Hout] or NULL (zeros)   c0 [L*D, B, H] or NULL (zeros)
 *   y  [T, B, D*Hout]   hn [L*D, B, Hout] or NULL   cn [L*D, B, H] or NULL */
lstm_status lstm_forward(const lstm_net *net, lstm_workspace *ws, int T, int B,
                         const float *x, const float *h0, const float *c0,
                         float *y, float *hn, float *cn);

/* Backward through time after lstm_forward on the same LSTM_WS_TRAIN workspace.
 *   dy [T, B, D*Hout] or NULL (zeros)  dhn [L*D, B, Hout] or NULL  dcn [L*D, B, H] or NULL
 * Accumulates parameter gradients into net->grads (+=).  Writes (overwrites)
 *   dx [T, B, I], dh0 [L*D, B, Hout], dc0 [L*D, B, H]; each may be NULL. */
lstm_status lstm_backward(lstm_net *net, lstm_workspace *ws,
                          const float *dy, const float *dhn, const float *dcn,
                          float *dx, float *dh0, float *dc0);

/* ---- the cell: one step of torch.nn.LSTMCell on a batch ----
 *   x [B, I], h [B, H] or NULL (zeros), c [B, H] or NULL (zeros); w_ih [4H, I], w_hh [4H, H],
 *   b_ih, b_hh [4H] or both NULL
 *   out: h1 [B, H], c1 [B, H], act [B, 4H] (σ(i), σ(f), tanh(g), σ(o), kept for backward) */
void lstm_cell_forward(float *h1, float *c1, float *act,
                       const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int B, int I, int H);
/* Given dh1, dc1 [B, H] (dc1 may be NULL), writes dx [B, I], dh [B, H], dc [B, H]
 * (each may be NULL) and accumulates dw_ih [4H, I], dw_hh [4H, H], db_ih, db_hh [4H]
 * (db_* may be NULL).  scratch: [B, 5H]. */
void lstm_cell_backward(float *dx, float *dh, float *dc,
                        float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh1, const float *dc1, const float *act,
                        const float *x, const float *h, const float *c, const float *c1,
                        const float *w_ih, const float *w_hh, float *scratch,
                        int B, int I, int H);

/* ---- streaming: feed a unidirectional net a step (or a block) at a time ---- */
typedef struct {
    int L, D, B, H, Hout;
    float *h; /* [L*D, B, Hout] */
    float *c; /* [L*D, B, H]    */
} lstm_state;

lstm_status lstm_state_init(lstm_state *s, const lstm_net *net, int B); /* zeros */
void lstm_state_reset(lstm_state *s);                                   /* back to zeros */
lstm_status lstm_state_copy(lstm_state *dst, const lstm_state *src);    /* same shapes */
void lstm_state_free(lstm_state *s);
/* Runs T steps from the state and leaves the final state in it:
 *   x [T, B, I] -> y [T, B, Hout].  ws: lstm_workspace_init(net, Tmax >= T, B, 0).
 * Bidirectional nets cannot stream (LSTM_ERR_ARG).  Feeding a sequence in
 * pieces gives the same bits as feeding it at once. */
lstm_status lstm_stream(const lstm_net *net, lstm_workspace *ws, lstm_state *s,
                        int T, const float *x, float *y);

#ifdef __cplusplus
}
#endif
#endif /* LSTM_H */
