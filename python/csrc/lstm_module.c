/* lstm_module.c — the CPython extension lstm._lstm: a thin layer over the
 * public API in include/lstm.h.  Shapes, layouts and PyTorch's conventions
 * live in the Python package (lstm/); this file only
 *   - owns the library's objects (net, workspace, state, char model, trainer),
 *   - checks every buffer it passes on (float32, C-contiguous, exact element
 *     count, writable where written), so no argument can make the library read
 *     or write out of bounds,
 *   - releases the GIL while the library computes or does file I/O, holding
 *     the model's own lock instead (one model serves one call at a time;
 *     different models run in parallel),
 *   - turns an lstm_status into an exception carrying lstm_last_error():
 *     MemoryError (NOMEM), OSError (IO), ValueError (everything else).
 * Buffers come in through the buffer protocol (NumPy arrays, bytes); floats
 * go out as FloatBuf objects, buffer exporters that keep their owner alive. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h" /* lstm__cores_usable */
#include "lstm.h"

/* ---------------------------------------------------------------- errors */

static PyObject *raise_status(lstm_status st) {
    PyObject *exc = st == LSTM_ERR_NOMEM ? PyExc_MemoryError : st == LSTM_ERR_IO ? PyExc_OSError : PyExc_ValueError;
    const char *m = lstm_last_error();
    PyErr_SetString(exc, m && *m ? m : lstm_status_str(st));
    return NULL;
}

/* A lock held (with the GIL released) while the library works on one model. */
static PyThread_type_lock new_lock(void) {
    PyThread_type_lock l = PyThread_allocate_lock();
    if (!l) PyErr_NoMemory();
    return l;
}
#define LOCKED_NOGIL(lock, stmt)                          \
    do {                                                  \
        Py_BEGIN_ALLOW_THREADS                            \
        PyThread_acquire_lock((lock), WAIT_LOCK);         \
        stmt;                                             \
        PyThread_release_lock(lock);                      \
        Py_END_ALLOW_THREADS                              \
    } while (0)

/* ---------------------------------------------------------------- buffers in */

/* Takes a float32 C-contiguous buffer of exactly n elements from o (writable
 * when w).  o may be None when opt (then v->buf is NULL).  Returns 0 with a
 * Python exception set on failure; release with put_buf. */
static int get_f32(PyObject *o, Py_buffer *v, size_t n, int w, int opt, const char *what) {
    memset(v, 0, sizeof *v);
    if (o == Py_None) {
        if (opt) return 1;
        PyErr_Format(PyExc_TypeError, "%s: expected a float32 array, got None", what);
        return 0;
    }
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (w ? PyBUF_WRITABLE : 0)) < 0) {
        memset(v, 0, sizeof *v);
        return 0;
    }
    const char *f = v->format ? v->format : "B";
    int is_f32 = v->itemsize == 4 && (!strcmp(f, "f") || !strcmp(f, "<f") || !strcmp(f, "=f") || !strcmp(f, "@f"));
    if (!is_f32 || (size_t)v->len != n * sizeof(float)) {
        if (!is_f32)
            PyErr_Format(PyExc_ValueError, "%s: expected float32 data, got format '%s'", what, f);
        else
            PyErr_Format(PyExc_ValueError, "%s: expected %zu float32 values, got %zd", what, n, v->len / 4);
        PyBuffer_Release(v);
        memset(v, 0, sizeof *v);
        return 0;
    }
    return 1;
}

static void put_buf(Py_buffer *v) {
    if (v->obj) PyBuffer_Release(v);
}

/* Bytes-like input (bytes, bytearray, uint8 array), any length. */
static int get_bytes(PyObject *o, Py_buffer *v, const char *what) {
    memset(v, 0, sizeof *v);
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS) < 0) {
        memset(v, 0, sizeof *v);
        PyErr_Format(PyExc_TypeError, "%s: expected bytes", what);
        return 0;
    }
    if (v->itemsize != 1) {
        PyBuffer_Release(v);
        memset(v, 0, sizeof *v);
        PyErr_Format(PyExc_TypeError, "%s: expected bytes (1-byte items)", what);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- FloatBuf: floats out */

typedef struct {
    PyObject_HEAD
    PyObject *owner; /* keeps p alive */
    float *p;
    Py_ssize_t n, stride; /* elements; sizeof(float) */
} FloatBufObject;

static PyTypeObject FloatBufType;

static PyObject *floatbuf_new(PyObject *owner, float *p, size_t n) {
    FloatBufObject *b = PyObject_New(FloatBufObject, &FloatBufType);
    if (!b) return NULL;
    Py_INCREF(owner);
    b->owner = owner;
    b->p = p;
    b->n = p ? (Py_ssize_t)n : 0; /* e.g. a GRU's state has no c */
    b->stride = sizeof(float);
    return (PyObject *)b;
}

static void floatbuf_dealloc(FloatBufObject *b) {
    Py_XDECREF(b->owner);
    PyObject_Free(b);
}

static int floatbuf_getbuffer(FloatBufObject *b, Py_buffer *v, int flags) {
    static float empty;
    memset(v, 0, sizeof *v);
    v->buf = b->p ? (void *)b->p : (void *)&empty;
    v->obj = (PyObject *)b;
    Py_INCREF(b);
    v->len = b->n * (Py_ssize_t)sizeof(float);
    v->itemsize = sizeof(float);
    v->readonly = 0;
    v->ndim = 1;
    v->format = (flags & PyBUF_FORMAT) ? "f" : NULL;
    v->shape = (flags & PyBUF_ND) ? &b->n : NULL;
    v->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &b->stride : NULL;
    return 0;
}

static PyBufferProcs floatbuf_as_buffer = {(getbufferproc)floatbuf_getbuffer, NULL};

static PyTypeObject FloatBufType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.FloatBuf",
    .tp_basicsize = sizeof(FloatBufObject),
    .tp_dealloc = (destructor)floatbuf_dealloc,
    .tp_as_buffer = &floatbuf_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "float32 memory owned by a library object (use numpy.frombuffer).",
};

/* ---------------------------------------------------------------- Net */

typedef struct {
    PyObject_HEAD
    lstm_net net;
    int ok;
    PyThread_type_lock lock;
} NetObject;

static PyTypeObject NetType;

static NetObject *net_alloc(void) {
    NetObject *n = PyObject_New(NetObject, &NetType);
    if (!n) return NULL;
    memset(&n->net, 0, sizeof n->net);
    n->ok = 0;
    if (!(n->lock = new_lock())) {
        Py_DECREF(n);
        return NULL;
    }
    return n;
}

static void net_dealloc(NetObject *n) {
    if (n->ok) lstm_net_free(&n->net);
    if (n->lock) PyThread_free_lock(n->lock);
    PyObject_Free(n);
}

/* Net(input_size, hidden_size, num_layers, proj_size, bias, bidirectional[, cell]): zeroed parameters. */
static PyObject *net_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)type;
    lstm_config c;
    memset(&c, 0, sizeof c);
    if (kw && PyDict_Size(kw)) {
        PyErr_SetString(PyExc_TypeError, "Net takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "iiiipp|i", &c.input_size, &c.hidden_size, &c.num_layers, &c.proj_size, &c.bias,
                          &c.bidirectional, &c.cell))
        return NULL;
    NetObject *n = net_alloc();
    if (!n) return NULL;
    lstm_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lstm_net_init(&n->net, &c);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(n);
        return raise_status(st);
    }
    n->ok = 1;
    return (PyObject *)n;
}

static PyObject *net_load(PyObject *cls, PyObject *args) {
    (void)cls;
    PyObject *path_o;
    const char *prefix;
    if (!PyArg_ParseTuple(args, "O&s", PyUnicode_FSConverter, &path_o, &prefix)) return NULL;
    NetObject *n = net_alloc();
    if (!n) {
        Py_DECREF(path_o);
        return NULL;
    }
    lstm_status st;
    const char *path = PyBytes_AS_STRING(path_o);
    Py_BEGIN_ALLOW_THREADS
    st = lstm_net_load(&n->net, path, prefix);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_o);
    if (st) {
        Py_DECREF(n);
        return raise_status(st);
    }
    n->ok = 1;
    return (PyObject *)n;
}

static PyObject *net_save(NetObject *n, PyObject *args) {
    PyObject *path_o;
    const char *prefix;
    if (!PyArg_ParseTuple(args, "O&s", PyUnicode_FSConverter, &path_o, &prefix)) return NULL;
    lstm_status st;
    const char *path = PyBytes_AS_STRING(path_o);
    LOCKED_NOGIL(n->lock, st = lstm_net_save(&n->net, path, prefix));
    Py_DECREF(path_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *net_init_uniform(NetObject *n, PyObject *arg) {
    unsigned long long seed = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    LOCKED_NOGIL(n->lock, lstm_net_init_uniform(&n->net, (uint64_t)seed));
    Py_RETURN_NONE;
}

static PyObject *net_zero_grad(NetObject *n, PyObject *unused) {
    (void)unused;
    LOCKED_NOGIL(n->lock, lstm_net_zero_grad(&n->net));
    Py_RETURN_NONE;
}

/* [(name, shape, offset, numel)] in state_dict order. */
static PyObject *tensor_list(const lstm_tensor_info *ti, int k) {
    PyObject *list = PyList_New(k);
    if (!list) return NULL;
    for (int i = 0; i < k; i++) {
        PyObject *shape = ti[i].ndim == 2 ? Py_BuildValue("(LL)", (long long)ti[i].shape[0], (long long)ti[i].shape[1])
                                          : Py_BuildValue("(L)", (long long)ti[i].shape[0]);
        PyObject *item = shape ? Py_BuildValue("(sNnn)", ti[i].name, shape, (Py_ssize_t)ti[i].offset,
                                               (Py_ssize_t)ti[i].numel)
                               : NULL;
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *net_tensors(NetObject *n, PyObject *unused) {
    (void)unused;
    int k = lstm_net_tensors(&n->net, NULL);
    lstm_tensor_info *ti = PyMem_Calloc((size_t)k + 1, sizeof *ti);
    if (!ti) return PyErr_NoMemory();
    lstm_net_tensors(&n->net, ti);
    PyObject *r = tensor_list(ti, k);
    PyMem_Free(ti);
    return r;
}

static PyObject *net_params(NetObject *n, PyObject *unused) {
    (void)unused;
    return floatbuf_new((PyObject *)n, n->net.params, n->net.n_params);
}

static PyObject *net_grads(NetObject *n, PyObject *unused) {
    (void)unused;
    return floatbuf_new((PyObject *)n, n->net.grads, n->net.n_params);
}

static PyObject *config_dict(const lstm_net *net) {
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:n}", "input_size", net->cfg.input_size,
                         "hidden_size", net->cfg.hidden_size, "num_layers", net->cfg.num_layers, "proj_size",
                         net->cfg.proj_size, "bias", net->cfg.bias, "bidirectional", net->cfg.bidirectional, "cell",
                         net->cfg.cell, "D", net->D, "Hout", net->Hout, "n_params", (Py_ssize_t)net->n_params);
}

static PyObject *net_config(NetObject *n, PyObject *unused) {
    (void)unused;
    return config_dict(&n->net);
}

static PyMethodDef net_methods[] = {
    {"load", (PyCFunction)net_load, METH_VARARGS | METH_CLASS, "load(path, prefix) -> Net (lstm_net_load)"},
    {"save", (PyCFunction)net_save, METH_VARARGS, "save(path, prefix) (lstm_net_save)"},
    {"init_uniform", (PyCFunction)net_init_uniform, METH_O, "init_uniform(seed) (lstm_net_init_uniform)"},
    {"zero_grad", (PyCFunction)net_zero_grad, METH_NOARGS, "zero_grad() (lstm_net_zero_grad)"},
    {"tensors", (PyCFunction)net_tensors, METH_NOARGS, "tensors() -> [(name, shape, offset, numel)]"},
    {"params", (PyCFunction)net_params, METH_NOARGS, "params() -> FloatBuf over the flat parameters"},
    {"grads", (PyCFunction)net_grads, METH_NOARGS, "grads() -> FloatBuf over the flat gradients"},
    {"config", (PyCFunction)net_config, METH_NOARGS, "config() -> dict"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject NetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.Net",
    .tp_basicsize = sizeof(NetObject),
    .tp_dealloc = (destructor)net_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Net(input_size, hidden_size, num_layers, proj_size, bias, bidirectional[, cell]): an lstm_net.",
    .tp_methods = net_methods,
    .tp_new = net_new,
};

/* ---------------------------------------------------------------- State (streaming) */

typedef struct {
    PyObject_HEAD
    NetObject *net;
    lstm_state s;
} StateObject;

static PyTypeObject StateType;

static PyObject *state_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)type;
    (void)kw;
    NetObject *net;
    int B;
    if (!PyArg_ParseTuple(args, "O!i", &NetType, &net, &B)) return NULL;
    StateObject *s = PyObject_New(StateObject, &StateType);
    if (!s) return NULL;
    Py_INCREF(net);
    s->net = net;
    lstm_status st = lstm_state_init(&s->s, &net->net, B);
    if (st) {
        Py_DECREF(s);
        return raise_status(st);
    }
    return (PyObject *)s;
}

static void state_dealloc(StateObject *s) {
    lstm_state_free(&s->s);
    Py_XDECREF(s->net);
    PyObject_Free(s);
}

static size_t state_h_n(const lstm_state *s) { return (size_t)s->L * s->D * s->B * s->Hout; }
static size_t state_c_n(const lstm_state *s) { return (size_t)s->L * s->D * s->B * s->H; }

static PyObject *state_h(StateObject *s, PyObject *unused) {
    (void)unused;
    return floatbuf_new((PyObject *)s, s->s.h, state_h_n(&s->s));
}

static PyObject *state_c(StateObject *s, PyObject *unused) {
    (void)unused;
    return floatbuf_new((PyObject *)s, s->s.c, state_c_n(&s->s));
}

static PyObject *state_reset(StateObject *s, PyObject *unused) {
    (void)unused;
    LOCKED_NOGIL(s->net->lock, lstm_state_reset(&s->s));
    Py_RETURN_NONE;
}

static PyMethodDef state_methods[] = {
    {"h", (PyCFunction)state_h, METH_NOARGS, "h() -> FloatBuf [L*D, B, Hout]"},
    {"c", (PyCFunction)state_c, METH_NOARGS, "c() -> FloatBuf [L*D, B, H]"},
    {"reset", (PyCFunction)state_reset, METH_NOARGS, "reset() (lstm_state_reset)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.State",
    .tp_basicsize = sizeof(StateObject),
    .tp_dealloc = (destructor)state_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "State(net, B): an lstm_state (h, c carried between stream calls).",
    .tp_methods = state_methods,
    .tp_new = state_new,
};

/* ---------------------------------------------------------------- Workspace */

typedef struct {
    PyObject_HEAD
    NetObject *net;
    lstm_workspace *ws;
    int T, B, train, threads;
    int fwd_T;    /* steps of the forward that backward may still consume; 0: none */
    uint64_t rng; /* dropout generator (the library keeps a pointer to it) */
} WorkspaceObject;

static PyTypeObject WorkspaceType;

/* Workspace(net, T, B, train[, keep_packs]): keep_packs is LSTM_WS_KEEP_PACKS
 * (training too): the caller calls weights_changed() after changing the
 * parameters. */
static PyObject *ws_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)type;
    (void)kw;
    NetObject *net;
    int T, B, train, keep = 0;
    if (!PyArg_ParseTuple(args, "O!iip|p", &NetType, &net, &T, &B, &train, &keep)) return NULL;
    WorkspaceObject *w = PyObject_New(WorkspaceObject, &WorkspaceType);
    if (!w) return NULL;
    Py_INCREF(net);
    w->net = net;
    w->ws = NULL;
    w->T = T;
    w->B = B;
    w->train = train;
    w->threads = 1;
    w->fwd_T = 0;
    w->rng = 0;
    lstm_status st;
    Py_BEGIN_ALLOW_THREADS
    st = lstm_workspace_init(&w->ws, &net->net, T, B, (train ? LSTM_WS_TRAIN : 0) | (keep ? LSTM_WS_KEEP_PACKS : 0));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(w);
        return raise_status(st);
    }
    return (PyObject *)w;
}

static void ws_dealloc(WorkspaceObject *w) {
    if (w->ws) {
        lstm_workspace *ws = w->ws;
        Py_BEGIN_ALLOW_THREADS /* joins the thread team */
        lstm_workspace_free(ws);
        Py_END_ALLOW_THREADS
    }
    Py_XDECREF(w->net);
    PyObject_Free(w);
}

static PyObject *ws_set_threads(WorkspaceObject *w, PyObject *arg) {
    long l = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    int n = l > INT32_MAX ? INT32_MAX : l < INT32_MIN ? INT32_MIN : (int)l;
    lstm_status st;
    LOCKED_NOGIL(w->net->lock, st = lstm_workspace_set_threads(w->ws, n));
    if (st) return raise_status(st);
    w->threads = n;
    Py_RETURN_NONE;
}

/* set_dropout(p, rng_state) */
static PyObject *ws_set_dropout(WorkspaceObject *w, PyObject *args) {
    float p;
    unsigned long long rng;
    if (!PyArg_ParseTuple(args, "fK", &p, &rng)) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) {
        char num[32]; /* PyErr_Format has no %g */
        PyOS_snprintf(num, sizeof num, "%g", (double)p);
        PyErr_Format(PyExc_ValueError, "dropout: expected a probability in [0, 1], got %s", num);
        return NULL;
    }
    lstm_status st;
    /* under the lock: a forward on another thread advances w->rng */
    LOCKED_NOGIL(w->net->lock, w->rng = rng; st = lstm_workspace_set_dropout(w->ws, p, &w->rng));
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *ws_weights_changed(WorkspaceObject *w, PyObject *unused) {
    (void)unused;
    LOCKED_NOGIL(w->net->lock, lstm_workspace_weights_changed(w->ws));
    Py_RETURN_NONE;
}

/* Element counts of the state tensors for batch B. */
static size_t n_h(const lstm_net *n, int B) { return (size_t)n->cfg.num_layers * n->D * B * n->Hout; }
static size_t n_c(const lstm_net *n, int B) { return (size_t)n->cfg.num_layers * n->D * B * n->H; }

/* forward(T, x, h0, c0, y, hn, cn): h0, c0, hn, cn may be None. */
static PyObject *ws_forward(WorkspaceObject *w, PyObject *args) {
    int T;
    PyObject *o[7];
    if (!PyArg_ParseTuple(args, "iOOOOOO", &T, &o[1], &o[2], &o[3], &o[4], &o[5], &o[6])) return NULL;
    if (T < 1 || T > w->T) {
        PyErr_Format(PyExc_ValueError, "forward: T=%d must be in [1, %d] for this workspace", T, w->T);
        return NULL;
    }
    const lstm_net *net = &w->net->net;
    size_t tb = (size_t)T * w->B;
    Py_buffer v[7];
    memset(v, 0, sizeof v);
    int ok = get_f32(o[1], &v[1], tb * net->cfg.input_size, 0, 0, "x") &&
             get_f32(o[2], &v[2], n_h(net, w->B), 0, 1, "h0") && get_f32(o[3], &v[3], n_c(net, w->B), 0, 1, "c0") &&
             get_f32(o[4], &v[4], tb * net->D * net->Hout, 1, 0, "y") &&
             get_f32(o[5], &v[5], n_h(net, w->B), 1, 1, "hn") && get_f32(o[6], &v[6], n_c(net, w->B), 1, 1, "cn");
    lstm_status st = LSTM_OK;
    /* fwd_T changes under the lock, with the forward it describes: set after
     * it, another thread's forward could run in between and leave fwd_T naming
     * the other's T */
    if (ok)
        LOCKED_NOGIL(w->net->lock, {
            st = lstm_forward(net, w->ws, T, w->B, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf, v[6].buf);
            if (!st) w->fwd_T = w->train ? T : 0;
        });
    for (int i = 1; i < 7; i++) put_buf(&v[i]);
    if (!ok) return NULL;
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* backward(dy, dhn, dcn, dx, dh0, dc0): any may be None. */
static PyObject *ws_backward(WorkspaceObject *w, PyObject *args) {
    PyObject *o[6];
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5])) return NULL;
    if (!w->train || w->fwd_T < 1) {
        PyErr_SetString(PyExc_RuntimeError,
                        "backward: needs a forward in training mode first (each forward serves one backward)");
        return NULL;
    }
    const lstm_net *net = &w->net->net;
    int T = w->fwd_T; /* the buffers are checked against it; the lock checks it still holds */
    size_t tb = (size_t)T * w->B;
    Py_buffer v[6];
    memset(v, 0, sizeof v);
    int ok = get_f32(o[0], &v[0], tb * net->D * net->Hout, 0, 1, "dy") &&
             get_f32(o[1], &v[1], n_h(net, w->B), 0, 1, "dhn") && get_f32(o[2], &v[2], n_c(net, w->B), 0, 1, "dcn") &&
             get_f32(o[3], &v[3], tb * net->cfg.input_size, 1, 1, "dx") &&
             get_f32(o[4], &v[4], n_h(net, w->B), 1, 1, "dh0") && get_f32(o[5], &v[5], n_c(net, w->B), 1, 1, "dc0");
    lstm_status st = LSTM_OK;
    int stale = 0; /* another thread's forward (or backward) ran since fwd_T was read */
    if (ok)
        LOCKED_NOGIL(w->net->lock, {
            if (w->fwd_T != T) {
                stale = 1;
            } else {
                st = lstm_backward(&w->net->net, w->ws, v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf);
                if (!st) w->fwd_T = 0;
            }
        });
    for (int i = 0; i < 6; i++) put_buf(&v[i]);
    if (!ok) return NULL;
    if (stale) {
        PyErr_SetString(PyExc_RuntimeError,
                        "backward: another forward or backward ran on this workspace meanwhile (each forward serves one backward)");
        return NULL;
    }
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* stream(state, T, x, y) */
static PyObject *ws_stream(WorkspaceObject *w, PyObject *args) {
    StateObject *s;
    int T;
    PyObject *xo, *yo;
    if (!PyArg_ParseTuple(args, "O!iOO", &StateType, &s, &T, &xo, &yo)) return NULL;
    if (s->net != w->net || s->s.B != w->B) {
        PyErr_SetString(PyExc_ValueError, "stream: state was made for another network or batch size");
        return NULL;
    }
    if (T < 1 || T > w->T) {
        PyErr_Format(PyExc_ValueError, "stream: T=%d must be in [1, %d] for this workspace", T, w->T);
        return NULL;
    }
    const lstm_net *net = &w->net->net;
    size_t tb = (size_t)T * w->B;
    Py_buffer x, y;
    memset(&y, 0, sizeof y);
    int ok = get_f32(xo, &x, tb * net->cfg.input_size, 0, 0, "x") &&
             get_f32(yo, &y, tb * net->D * net->Hout, 1, 0, "y");
    lstm_status st = LSTM_OK;
    if (ok) LOCKED_NOGIL(w->net->lock, st = lstm_stream(net, w->ws, &s->s, T, x.buf, y.buf));
    put_buf(&x);
    put_buf(&y);
    if (!ok) return NULL;
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *ws_get(WorkspaceObject *w, void *which) {
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLong(w->T);
    case 1: return PyLong_FromLong(w->B);
    case 2: return PyBool_FromLong(w->train);
    case 3: return PyLong_FromLong(w->threads);
    case 4: return PyLong_FromUnsignedLongLong(w->rng);
    default: return PyLong_FromLong(w->fwd_T);
    }
}

static PyGetSetDef ws_getset[] = {
    {"T", (getter)ws_get, NULL, "steps", (void *)0},
    {"B", (getter)ws_get, NULL, "batch", (void *)1},
    {"train", (getter)ws_get, NULL, "keeps what backward needs", (void *)2},
    {"threads", (getter)ws_get, NULL, "threads", (void *)3},
    {"rng", (getter)ws_get, NULL, "dropout generator state", (void *)4},
    {"fwd_T", (getter)ws_get, NULL, "steps of the forward backward may consume (0: none)", (void *)5},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ws_methods[] = {
    {"set_threads", (PyCFunction)ws_set_threads, METH_O, "set_threads(n)"},
    {"set_dropout", (PyCFunction)ws_set_dropout, METH_VARARGS, "set_dropout(p, rng_state)"},
    {"weights_changed", (PyCFunction)ws_weights_changed, METH_NOARGS, "weights_changed()"},
    {"forward", (PyCFunction)ws_forward, METH_VARARGS, "forward(T, x, h0, c0, y, hn, cn)"},
    {"backward", (PyCFunction)ws_backward, METH_VARARGS, "backward(dy, dhn, dcn, dx, dh0, dc0)"},
    {"stream", (PyCFunction)ws_stream, METH_VARARGS, "stream(state, T, x, y)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WorkspaceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.Workspace",
    .tp_basicsize = sizeof(WorkspaceObject),
    .tp_dealloc = (destructor)ws_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Workspace(net, T, B, train[, keep_packs]): an lstm_workspace for up to T steps of B streams; keep_packs: LSTM_WS_KEEP_PACKS (training too), call weights_changed() after changing the parameters.",
    .tp_methods = ws_methods,
    .tp_getset = ws_getset,
    .tp_new = ws_new,
};

/* ---------------------------------------------------------------- CharLM */

typedef struct {
    PyObject_HEAD
    lstm_charlm m;
    int ok;
    PyThread_type_lock lock;
} CharLMObject;

static PyTypeObject CharLMType;

static CharLMObject *charlm_alloc(void) {
    CharLMObject *c = PyObject_New(CharLMObject, &CharLMType);
    if (!c) return NULL;
    memset(&c->m, 0, sizeof c->m);
    c->ok = 0;
    if (!(c->lock = new_lock())) {
        Py_DECREF(c);
        return NULL;
    }
    return c;
}

static void charlm_dealloc(CharLMObject *c) {
    if (c->ok) lstm_charlm_free(&c->m);
    if (c->lock) PyThread_free_lock(c->lock);
    PyObject_Free(c);
}

static PyObject *charlm_load(PyObject *cls, PyObject *args) {
    (void)cls;
    PyObject *path_o;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_o)) return NULL;
    CharLMObject *c = charlm_alloc();
    if (!c) {
        Py_DECREF(path_o);
        return NULL;
    }
    lstm_status st;
    const char *path = PyBytes_AS_STRING(path_o);
    Py_BEGIN_ALLOW_THREADS
    st = lstm_charlm_load(&c->m, path);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_o);
    if (st) {
        Py_DECREF(c);
        return raise_status(st);
    }
    c->ok = 1;
    return (PyObject *)c;
}

/* new(vocab, E, H, L, P, seed, cell=0): a new model, initialized with PyTorch's laws
 * (cell: 0 LSTM, 1 GRU). */
static PyObject *charlm_create(PyObject *cls, PyObject *args) {
    (void)cls;
    Py_buffer vb;
    PyObject *vo;
    lstm_config cfg = {0};
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OiiiiK|i", &vo, &cfg.input_size, &cfg.hidden_size, &cfg.num_layers, &cfg.proj_size,
                          &seed, &cfg.cell))
        return NULL;
    if (!get_bytes(vo, &vb, "vocab")) return NULL;
    cfg.bias = 1;
    CharLMObject *c = charlm_alloc();
    lstm_status st = LSTM_OK;
    if (c) {
        if (vb.len < 1 || vb.len > 256) {
            PyErr_Format(PyExc_ValueError, "vocab: expected 1 to 256 distinct bytes, got %zd", vb.len);
        } else {
            /* without the GIL: c is not yet visible to other threads, and the vocabulary is a copy
             * (another thread could change a bytearray meanwhile) */
            unsigned char voc[256];
            memcpy(voc, vb.buf, (size_t)vb.len);
            Py_BEGIN_ALLOW_THREADS
            st = lstm_charlm_init(&c->m, voc, (int)vb.len, cfg.input_size, &cfg);
            if (!st) lstm_charlm_init_params(&c->m, (uint64_t)seed);
            Py_END_ALLOW_THREADS
            c->ok = !st;
        }
    }
    PyBuffer_Release(&vb);
    if (c && !c->ok) {
        Py_DECREF(c);
        return PyErr_Occurred() ? NULL : raise_status(st);
    }
    return (PyObject *)c;
}

static PyObject *charlm_info(CharLMObject *c, PyObject *unused) {
    (void)unused;
    PyObject *cfg = config_dict(&c->m.net);
    if (!cfg) return NULL;
    return Py_BuildValue("{s:i,s:i,s:y#,s:N,s:n}", "V", c->m.V, "E", c->m.E, "vocab", (const char *)c->m.vocab,
                         (Py_ssize_t)c->m.V, "lstm", cfg, "n_params", (Py_ssize_t)c->m.n_params); /* the whole model: one buffer */
}

/* check_sizes(hidden, layers, embed, proj, given, src): ValueError when a size given
 * (bit k of given: hidden, layers, embed, proj) is not the model's (lstm_train_check_sizes) */
static PyObject *charlm_check_sizes(CharLMObject *c, PyObject *args) {
    long sz[4];
    int bits;
    PyObject *src_o;
    if (!PyArg_ParseTuple(args, "lllliO&", &sz[0], &sz[1], &sz[2], &sz[3], &bits, PyUnicode_FSConverter, &src_o))
        return NULL;
    const int given[4] = {bits & 1, bits >> 1 & 1, bits >> 2 & 1, bits >> 3 & 1};
    lstm_status st = lstm_train_check_sizes(&c->m, sz, given, PyBytes_AS_STRING(src_o));
    Py_DECREF(src_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* [(name, shape, FloatBuf param, FloatBuf grad)] in state_dict order. */
static PyObject *charlm_tensors(CharLMObject *c, PyObject *unused) {
    (void)unused;
    int k = lstm_charlm_tensors(&c->m, NULL);
    lstm_charlm_tensor *t = PyMem_Calloc((size_t)k + 1, sizeof *t);
    if (!t) return PyErr_NoMemory();
    lstm_charlm_tensors(&c->m, t);
    PyObject *list = PyList_New(k);
    for (int i = 0; list && i < k; i++) {
        PyObject *shape = t[i].ndim == 2 ? Py_BuildValue("(LL)", (long long)t[i].shape[0], (long long)t[i].shape[1])
                                         : Py_BuildValue("(L)", (long long)t[i].shape[0]);
        PyObject *item = shape ? Py_BuildValue("(sNNN)", t[i].name, shape,
                                               floatbuf_new((PyObject *)c, t[i].param, t[i].numel),
                                               floatbuf_new((PyObject *)c, t[i].grad, t[i].numel))
                               : NULL;
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyMem_Free(t);
    return list;
}

/* generate(prime, n, temperature, top_k, seed, threads) -> bytes (the n generated bytes):
 * the library's sampler (lstm_charlm_sampler_*), as lstm sample runs it */
static lstm_status generate(const lstm_charlm *m, const unsigned char *p, size_t np, unsigned char *out, size_t n,
                            double temp, int top_k, uint64_t seed, int threads) {
    lstm_charlm_sampler *s;
    lstm_status st = lstm_charlm_sampler_init(&s, m, threads);
    if (st) return st;
    lstm_charlm_sampler_reset(s, seed);
    if (!(st = lstm_charlm_sampler_feed(s, p, np))) st = lstm_charlm_sampler_generate(s, out, n, temp, top_k);
    lstm_charlm_sampler_free(s);
    return st;
}

static PyObject *charlm_generate(CharLMObject *c, PyObject *args) {
    PyObject *po;
    Py_ssize_t n;
    double temp;
    int top_k, threads;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OndiKi", &po, &n, &temp, &top_k, &seed, &threads)) return NULL;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "length: expected >= 0, got %zd", n);
        return NULL;
    }
    Py_buffer p;
    if (!get_bytes(po, &p, "prime")) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out) {
        PyBuffer_Release(&p);
        return NULL;
    }
    lstm_status st;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    LOCKED_NOGIL(c->lock, st = generate(&c->m, p.buf, (size_t)p.len, o, (size_t)n, temp, top_k, seed, threads));
    PyBuffer_Release(&p);
    if (st) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

/* encode(data, what) -> bytes of token ids */
static PyObject *charlm_encode(CharLMObject *c, PyObject *args) {
    PyObject *dobj;
    const char *what;
    if (!PyArg_ParseTuple(args, "Os", &dobj, &what)) return NULL;
    Py_buffer d;
    if (!get_bytes(dobj, &d, what)) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, d.len);
    lstm_status st = LSTM_OK;
    if (out) {
        uint8_t *ids = (uint8_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        st = lstm_charlm_encode(&c->m, d.buf, (size_t)d.len, ids, what);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&d);
    if (out && st) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

/* eval(ids, B, T, threads) -> (loss, count) */
static PyObject *charlm_eval(CharLMObject *c, PyObject *args) {
    PyObject *io;
    int B, T, threads;
    if (!PyArg_ParseTuple(args, "Oiii", &io, &B, &T, &threads)) return NULL;
    Py_buffer ids;
    if (!get_bytes(io, &ids, "ids")) return NULL;
    for (Py_ssize_t i = 0; i < ids.len; i++)
        if (((const uint8_t *)ids.buf)[i] >= c->m.V) {
            PyBuffer_Release(&ids);
            PyErr_Format(PyExc_ValueError, "ids: token id %d at offset %zd is not below V = %d",
                         ((const uint8_t *)ids.buf)[i], i, c->m.V);
            return NULL;
        }
    double loss = 0;
    size_t count = 0;
    lstm_status st;
    LOCKED_NOGIL(c->lock, st = lstm_charlm_eval(&c->m, ids.buf, (size_t)ids.len, B, T, threads, &loss, &count));
    PyBuffer_Release(&ids);
    if (st) return raise_status(st);
    return Py_BuildValue("(dn)", loss, (Py_ssize_t)count);
}

/* A NULL-terminated key, value, ... array from a list of str.  The pointers
 * are into a tuple copy of the list, *keep (release it after the save): the
 * save runs without the GIL, when another thread may empty the list and free
 * its strings. */
static const char **meta_array(PyObject *list, PyObject **keep) {
    *keep = NULL;
    if (list == Py_None) return NULL;
    if (!PyList_Check(list) || PyList_GET_SIZE(list) % 2) {
        PyErr_SetString(PyExc_TypeError, "meta: expected a list [key, value, ...] of str");
        return NULL;
    }
    PyObject *t = PyList_AsTuple(list);
    if (!t) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    const char **kv = PyMem_Calloc((size_t)n + 1, sizeof *kv);
    if (!kv) {
        Py_DECREF(t);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(t, i);
        Py_ssize_t len = 0;
        if (!(kv[i] = PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &len) : NULL) || strlen(kv[i]) != (size_t)len) {
            if (!PyErr_Occurred() && kv[i])
                PyErr_Format(PyExc_ValueError, "meta: the %s of entry %zd holds a NUL character", i % 2 ? "value" : "key",
                             i / 2);
            else if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "meta: expected str keys and values");
            PyMem_Free(kv);
            Py_DECREF(t);
            return NULL;
        }
    }
    *keep = t;
    return kv;
}

/* A library save call: obj, path, NULL-terminated key/value metadata (or NULL). */
typedef lstm_status (*save_fn)(void *obj, const char *path, const char *const *meta_kv);

/* Parses (path, meta list or None) and runs save under lock without the GIL. */
static PyObject *save_with_meta(PyObject *args, PyThread_type_lock lock, save_fn save, void *obj) {
    PyObject *path_o, *meta;
    if (!PyArg_ParseTuple(args, "O&O", PyUnicode_FSConverter, &path_o, &meta)) return NULL;
    PyObject *keep;
    const char **kv = meta_array(meta, &keep);
    if (!kv && PyErr_Occurred()) {
        Py_DECREF(path_o);
        return NULL;
    }
    lstm_status st;
    const char *path = PyBytes_AS_STRING(path_o);
    LOCKED_NOGIL(lock, st = save(obj, path, kv));
    PyMem_Free(kv);
    Py_XDECREF(keep);
    Py_DECREF(path_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static lstm_status charlm_save_fn(void *m, const char *path, const char *const *kv) {
    return lstm_charlm_save(m, path, kv);
}

/* save(path, meta list or None) */
static PyObject *charlm_save(CharLMObject *c, PyObject *args) {
    return save_with_meta(args, c->lock, charlm_save_fn, &c->m);
}

static PyMethodDef charlm_methods[] = {
    {"load", (PyCFunction)charlm_load, METH_VARARGS | METH_CLASS, "load(path) -> CharLM (lstm_charlm_load)"},
    {"new", (PyCFunction)charlm_create, METH_VARARGS | METH_CLASS, "new(vocab, E, H, L, P, seed) -> CharLM"},
    {"info", (PyCFunction)charlm_info, METH_NOARGS, "info() -> dict"},
    {"check_sizes", (PyCFunction)charlm_check_sizes, METH_VARARGS,
     "check_sizes(hidden, layers, embed, proj, given_bits, src) (lstm_train_check_sizes)"},
    {"tensors", (PyCFunction)charlm_tensors, METH_NOARGS, "tensors() -> [(name, shape, param, grad)]"},
    {"generate", (PyCFunction)charlm_generate, METH_VARARGS, "generate(prime, n, temperature, top_k, seed, threads)"},
    {"encode", (PyCFunction)charlm_encode, METH_VARARGS, "encode(data, what) -> ids"},
    {"eval", (PyCFunction)charlm_eval, METH_VARARGS, "eval(ids, B, T, threads) -> (loss, count)"},
    {"save", (PyCFunction)charlm_save, METH_VARARGS, "save(path, meta)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CharLMType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.CharLM",
    .tp_basicsize = sizeof(CharLMObject),
    .tp_dealloc = (destructor)charlm_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An lstm_charlm (CharLM.load or CharLM.new).",
    .tp_methods = charlm_methods,
};

/* ---------------------------------------------------------------- Run: the settings of a training run */

typedef struct {
    PyObject_HEAD
    lstm_train_run r;
} RunObject;

static PyTypeObject RunType;

static PyObject *run_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)type;
    if (!PyArg_ParseTuple(args, "") || (kw && PyDict_Size(kw))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Run() takes no arguments");
        return NULL;
    }
    RunObject *r = PyObject_New(RunObject, &RunType);
    if (!r) return NULL;
    lstm_train_run_init(&r->r);
    return (PyObject *)r;
}

static void run_dealloc(RunObject *r) {
    lstm_train_run_free(&r->r);
    PyObject_Free(r);
}

/* set(key, value, src=None) -> False when key is not a setting of the run */
static PyObject *run_set(RunObject *r, PyObject *args) {
    const char *key, *src = NULL;
    PyObject *vo;
    if (!PyArg_ParseTuple(args, "sO&|z", &key, PyUnicode_FSConverter, &vo, &src)) return NULL;
    lstm_status st = lstm_train_run_set(&r->r, key, PyBytes_AS_STRING(vo), src);
    Py_DECREF(vo);
    if (st == LSTM_ERR_MISSING) Py_RETURN_FALSE;
    if (st) return raise_status(st);
    Py_RETURN_TRUE;
}

/* Reads the safetensors file path into f (zeroed first) without the GIL. */
static lstm_status read_st_nogil(lstm_st_file *f, const char *path) {
    lstm_status st;
    memset(f, 0, sizeof *f);
    Py_BEGIN_ALLOW_THREADS
    st = lstm_st_read(f, path);
    Py_END_ALLOW_THREADS
    return st;
}

/* Reads the checkpoint path (without the GIL) and applies fn(run, file, path) to it. */
static PyObject *run_with_checkpoint(RunObject *r, PyObject *args,
                                     lstm_status (*fn)(lstm_train_run *, const lstm_st_file *, const char *)) {
    PyObject *path_o;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_o)) return NULL;
    const char *path = PyBytes_AS_STRING(path_o);
    lstm_st_file f;
    lstm_status st = read_st_nogil(&f, path);
    if (!st) st = fn(&r->r, &f, path);
    lstm_st_free(&f);
    Py_DECREF(path_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* restore(path): every setting not given, from a checkpoint's metadata */
static PyObject *run_restore(RunObject *r, PyObject *args) { return run_with_checkpoint(r, args, lstm_train_run_restore); }

/* check_resume(path): the rules of resuming the checkpoint path (lstm_train_run_check_resume):
 * ValueError for a batch, bptt or val-fraction other than its own and for keep best of a run that
 * kept its last weights, OSError for an out that does not exist */
static lstm_status check_resume(lstm_train_run *r, const lstm_st_file *f, const char *path) {
    return lstm_train_run_check_resume(r, f, path);
}
static PyObject *run_check_resume(RunObject *r, PyObject *args) { return run_with_checkpoint(r, args, check_resume); }

/* model_cell(cell, src, resume): the run's cell against the model read from src
 * (lstm_train_run_model_cell): ValueError on a conflict; an init file's cell is adopted */
static PyObject *run_model_cell(RunObject *r, PyObject *args) {
    int cell, resume;
    PyObject *src_o;
    if (!PyArg_ParseTuple(args, "iO&p", &cell, PyUnicode_FSConverter, &src_o, &resume)) return NULL;
    lstm_status st = lstm_train_run_model_cell(&r->r, cell, PyBytes_AS_STRING(src_o), resume);
    Py_DECREF(src_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *run_total(RunObject *r, PyObject *arg) {
    long long spe = PyLong_AsLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    lstm_status st = lstm_train_run_total(&r->r, spe);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* record_val(loss) -> (best, stop) (lstm_train_run_record_val) */
static PyObject *run_record_val(RunObject *r, PyObject *arg) {
    double v = PyFloat_AsDouble(arg);
    if (PyErr_Occurred()) return NULL;
    int stop, best = lstm_train_run_record_val(&r->r, v, &stop);
    return Py_BuildValue("(OO)", best ? Py_True : Py_False, stop ? Py_True : Py_False);
}

/* meta() -> ["train.<key>", value, ...] for checkpoints */
static PyObject *run_meta(RunObject *r, PyObject *unused) {
    (void)unused;
    const char *const *kv = lstm_train_run_meta(&r->r);
    if (!kv) return PyErr_NoMemory();
    PyObject *list = PyList_New(0);
    for (int i = 0; list && kv[i]; i++) {
        PyObject *v = PyUnicode_DecodeFSDefault(kv[i]);
        if (!v || PyList_Append(list, v) < 0) Py_CLEAR(list);
        Py_XDECREF(v);
    }
    return list;
}

static PyObject *opt_str(const char *s) {
    if (!s) Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(s);
}

static PyObject *run_info(RunObject *r, PyObject *unused) {
    (void)unused;
    const lstm_train_run *x = &r->r;
    return Py_BuildValue("{s:i,s:i,s:L,s:L,s:L,s:L,s:d,s:K,s:L,s:N,s:N,s:N,s:N,s:i,s:L,s:i,s:d}", "batch", x->cfg.batch, "bptt",
                         x->cfg.bptt, "steps", (long long)x->steps, "epochs", (long long)x->epochs, "eval_every",
                         (long long)x->eval_every, "checkpoint_every", (long long)x->checkpoint_every, "val_fraction",
                         x->val_fraction, "seed", (unsigned long long)x->cfg.seed, "total_steps",
                         (long long)x->cfg.total_steps, "data", opt_str(x->data), "checkpoint", opt_str(x->checkpoint),
                         "log", opt_str(x->log), "out", opt_str(x->out), "keep_best",
                         x->keep_best, "patience", (long long)x->patience, "cell", x->cell, "best_val", x->best_val);
}

static PyMethodDef run_methods[] = {
    {"set", (PyCFunction)run_set, METH_VARARGS, "set(key, value, src=None) -> bool (lstm_train_run_set)"},
    {"restore", (PyCFunction)run_restore, METH_VARARGS, "restore(path) (lstm_train_run_restore)"},
    {"check_resume", (PyCFunction)run_check_resume, METH_VARARGS, "check_resume(path) (lstm_train_run_check_resume)"},
    {"model_cell", (PyCFunction)run_model_cell, METH_VARARGS,
     "model_cell(cell, src, resume) (lstm_train_run_model_cell)"},
    {"total", (PyCFunction)run_total, METH_O, "total(steps_per_epoch) (lstm_train_run_total)"},
    {"record_val", (PyCFunction)run_record_val, METH_O, "record_val(loss) -> (best, stop) (lstm_train_run_record_val)"},
    {"meta", (PyCFunction)run_meta, METH_NOARGS, "meta() -> [key, value, ...] (lstm_train_run_meta)"},
    {"info", (PyCFunction)run_info, METH_NOARGS, "info() -> dict of the settings"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RunType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.Run",
    .tp_basicsize = sizeof(RunObject),
    .tp_dealloc = (destructor)run_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Run(): an lstm_train_run (the settings of lstm train).",
    .tp_methods = run_methods,
    .tp_new = run_new,
};

/* ---------------------------------------------------------------- Trainer */

typedef struct {
    PyObject_HEAD
    CharLMObject *model;
    PyObject *ids; /* bytes, borrowed by the trainer */
    lstm_trainer tr;
    int ok;
} TrainerObject;

static PyTypeObject TrainerType;

/* Trainer(model, ids bytes, run): lstm_trainer_init with the run's configuration. */
static PyObject *trainer_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)type;
    (void)kw;
    CharLMObject *m;
    PyObject *ids;
    RunObject *run;
    if (!PyArg_ParseTuple(args, "O!O!O!", &CharLMType, &m, &PyBytes_Type, &ids, &RunType, &run)) return NULL;
    lstm_train_config c = run->r.cfg;
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(ids);
    Py_ssize_t n = PyBytes_GET_SIZE(ids);
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] >= m->m.V) {
            PyErr_Format(PyExc_ValueError, "ids: token id %d at offset %zd is not below V = %d", p[i], i, m->m.V);
            return NULL;
        }
    TrainerObject *t = PyObject_New(TrainerObject, &TrainerType);
    if (!t) return NULL;
    Py_INCREF(m);
    Py_INCREF(ids);
    t->model = m;
    t->ids = ids;
    t->ok = 0;
    lstm_status st;
    LOCKED_NOGIL(m->lock, st = lstm_trainer_init(&t->tr, &m->m, &c, p, (size_t)n));
    if (st) {
        Py_DECREF(t);
        return raise_status(st);
    }
    t->ok = 1;
    return (PyObject *)t;
}

static void trainer_dealloc(TrainerObject *t) {
    if (t->ok) {
        lstm_trainer *tr = &t->tr;
        Py_BEGIN_ALLOW_THREADS
        lstm_trainer_free(tr);
        Py_END_ALLOW_THREADS
    }
    Py_XDECREF(t->model);
    Py_XDECREF(t->ids);
    PyObject_Free(t);
}

static PyObject *trainer_set_threads(TrainerObject *t, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    lstm_status st;
    int ni = n > INT32_MAX ? INT32_MAX : n < INT32_MIN ? INT32_MIN : (int)n;
    LOCKED_NOGIL(t->model->lock, st = lstm_trainer_set_threads(&t->tr, ni));
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* step() -> (step, epoch, loss, lr, grad_norm) */
static PyObject *trainer_step(TrainerObject *t, PyObject *unused) {
    (void)unused;
    lstm_step_info info;
    memset(&info, 0, sizeof info);
    lstm_status st;
    LOCKED_NOGIL(t->model->lock, st = lstm_trainer_step(&t->tr, &info));
    if (st) return raise_status(st);
    return Py_BuildValue("(LLddd)", (long long)info.step, (long long)info.epoch, info.loss, info.lr, info.grad_norm);
}

/* validate(ids) -> loss (lstm_trainer_validate: exact sums, as lstm train's) */
static PyObject *trainer_validate(TrainerObject *t, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    double loss = 0.0;
    lstm_status st;
    LOCKED_NOGIL(t->model->lock, st = lstm_trainer_validate(&t->tr, b.buf, (size_t)b.len, &loss));
    PyBuffer_Release(&b);
    if (st) return raise_status(st);
    return PyFloat_FromDouble(loss);
}

static lstm_status trainer_save_fn(void *tr, const char *path, const char *const *kv) {
    return lstm_trainer_save(tr, path, kv);
}

static PyObject *trainer_save(TrainerObject *t, PyObject *args) {
    return save_with_meta(args, t->model->lock, trainer_save_fn, &t->tr);
}

/* restore(path): step, generator, carried state and moments from a checkpoint. */
static PyObject *trainer_restore(TrainerObject *t, PyObject *args) {
    PyObject *path_o;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_o)) return NULL;
    lstm_status st;
    const char *path = PyBytes_AS_STRING(path_o);
    LOCKED_NOGIL(t->model->lock, {
        lstm_st_file f;
        memset(&f, 0, sizeof f);
        st = lstm_st_read(&f, path);
        if (!st) st = lstm_trainer_restore(&t->tr, &f, path);
        lstm_st_free(&f);
    });
    Py_DECREF(path_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *trainer_get(TrainerObject *t, void *which) {
    switch ((int)(intptr_t)which) {
    case 0: return PyLong_FromLongLong(t->tr.step);
    case 1: return PyLong_FromLongLong(t->tr.steps_per_epoch);
    default: return PyLong_FromSize_t(t->tr.S);
    }
}

static PyGetSetDef trainer_getset[] = {
    {"steps_done", (getter)trainer_get, NULL, "optimizer steps done", (void *)0},
    {"steps_per_epoch", (getter)trainer_get, NULL, "S div T", (void *)1},
    {"S", (getter)trainer_get, NULL, "steps of each stream", (void *)2},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef trainer_methods[] = {
    {"set_threads", (PyCFunction)trainer_set_threads, METH_O, "set_threads(n)"},
    {"validate", (PyCFunction)trainer_validate, METH_O, "validate(ids) -> loss (lstm_trainer_validate)"},
    {"step", (PyCFunction)trainer_step, METH_NOARGS, "step() -> (step, epoch, loss, lr, grad_norm)"},
    {"save", (PyCFunction)trainer_save, METH_VARARGS, "save(path, meta) (lstm_trainer_save)"},
    {"restore", (PyCFunction)trainer_restore, METH_VARARGS, "restore(path) (lstm_trainer_restore)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lstm._lstm.Trainer",
    .tp_basicsize = sizeof(TrainerObject),
    .tp_dealloc = (destructor)trainer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Trainer(model, ids, run): an lstm_trainer.",
    .tp_methods = trainer_methods,
    .tp_getset = trainer_getset,
    .tp_new = trainer_new,
};

/* ---------------------------------------------------------------- module functions */

/* read_meta(path) -> {key: value} of a safetensors file's __metadata__ */
static PyObject *mod_read_meta(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_o;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_o)) return NULL;
    lstm_st_file f;
    lstm_status st = read_st_nogil(&f, PyBytes_AS_STRING(path_o));
    Py_DECREF(path_o);
    if (st) return raise_status(st);
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < f.n_meta; i++) {
        PyObject *v = PyUnicode_DecodeUTF8(f.meta_vals[i], (Py_ssize_t)strlen(f.meta_vals[i]), "replace");
        if (!v || PyDict_SetItemString(d, f.meta_keys[i], v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    lstm_st_free(&f);
    return d;
}

/* check_data(path, data_hash, data_name): ValueError when the checkpoint path was trained on
 * other data (lstm_train_check_data) */
static PyObject *mod_check_data(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_o, *name_o;
    unsigned long long hash;
    if (!PyArg_ParseTuple(args, "O&KO&", PyUnicode_FSConverter, &path_o, &hash, PyUnicode_FSConverter, &name_o))
        return NULL;
    lstm_st_file f;
    const char *path = PyBytes_AS_STRING(path_o);
    lstm_status st = read_st_nogil(&f, path);
    if (!st) st = lstm_train_check_data(&f, path, (uint64_t)hash, PyBytes_AS_STRING(name_o));
    lstm_st_free(&f);
    Py_DECREF(path_o);
    Py_DECREF(name_o);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* data_hash(data) -> int: FNV-1a 64 of the bytes (lstm_train_data_hash), without the GIL */
static PyObject *mod_data_hash(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer d;
    if (!get_bytes(arg, &d, "data")) return NULL;
    uint64_t h;
    Py_BEGIN_ALLOW_THREADS
    h = lstm_train_data_hash(d.buf, (size_t)d.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&d);
    return PyLong_FromUnsignedLongLong((unsigned long long)h);
}

/* vocab_of(data) -> the sorted distinct bytes */
static PyObject *mod_vocab_of(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer d;
    if (!get_bytes(arg, &d, "data")) return NULL;
    unsigned char vocab[256];
    int V = 0;
    lstm_status st = lstm_charlm_vocab_of(d.buf, (size_t)d.len, vocab, &V);
    PyBuffer_Release(&d);
    if (st) return raise_status(st);
    return PyBytes_FromStringAndSize((const char *)vocab, V);
}

static PyObject *mod_cores_usable(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    return PyLong_FromLong(lstm__cores_usable());
}

static PyMethodDef module_methods[] = {
    {"read_meta", mod_read_meta, METH_VARARGS, "read_meta(path) -> dict: a safetensors file's metadata"},
    {"check_data", mod_check_data, METH_VARARGS, "check_data(path, data_hash, data_name) (lstm_train_check_data)"},
    {"vocab_of", mod_vocab_of, METH_O, "vocab_of(data) -> bytes (lstm_charlm_vocab_of)"},
    {"data_hash", mod_data_hash, METH_O, "data_hash(data) -> int: FNV-1a 64 (lstm_train_data_hash)"},
    {"cores_usable", mod_cores_usable, METH_NOARGS,
     "cores_usable() -> int: the cores this process may run on, SMT siblings once (lstm__cores_usable)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "lstm._lstm", "The C library behind the lstm package (see lstm/__init__.py).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lstm(void) {
    PyTypeObject *types[] = {&FloatBufType, &NetType, &StateType, &WorkspaceType, &CharLMType, &RunType, &TrainerType};
    const char *names[] = {"FloatBuf", "Net", "State", "Workspace", "CharLM", "Run", "Trainer"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
