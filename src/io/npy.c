/* npy.c — NumPy .npy arrays: read (format 1.0/2.0/3.0, '<f4' or '<f8', C
 * order) and write ('<f4', format 1.0), atomically.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.x, u32 LE
 * for 2.x/3.x), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n', then the raw data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* ---- a parser for the header dict: exactly the three keys, each once ---- */
typedef struct {
    const char *s;
    size_t n, i;
} hscan;

static void hws(hscan *h) {
    while (h->i < h->n && (h->s[h->i] == ' ' || h->s[h->i] == '\t' || h->s[h->i] == '\n' || h->s[h->i] == '\r'))
        h->i++;
}

static int hchar(hscan *h, char c) {
    hws(h);
    if (h->i < h->n && h->s[h->i] == c) {
        h->i++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes, into out[cap]; 0 if malformed or too long. */
static int hstr(hscan *h, char *out, size_t cap) {
    hws(h);
    if (h->i >= h->n || (h->s[h->i] != '\'' && h->s[h->i] != '"')) return 0;
    char q = h->s[h->i++];
    size_t k = 0;
    while (h->i < h->n && h->s[h->i] != q) {
        char c = h->s[h->i++];
        if (c == '\\' || (unsigned char)c < 0x20 || k + 1 >= cap) return 0;
        out[k++] = c;
    }
    if (h->i >= h->n) return 0;
    h->i++;
    out[k] = 0;
    return 1;
}

static int hword(hscan *h, const char *w) {
    hws(h);
    size_t len = strlen(w);
    if (h->n - h->i < len || memcmp(h->s + h->i, w, len) != 0) return 0;
    h->i += len;
    return 1;
}

/* (a, b, ...) with an optional trailing comma; (n,) for one dimension. */
static int htuple(hscan *h, int *ndim, int64_t *shape) {
    if (!hchar(h, '(')) return 0;
    *ndim = 0;
    if (hchar(h, ')')) return 1;
    for (;;) {
        hws(h);
        if (h->i >= h->n || h->s[h->i] < '0' || h->s[h->i] > '9') return 0;
        int64_t v = 0;
        while (h->i < h->n && h->s[h->i] >= '0' && h->s[h->i] <= '9') {
            int d = h->s[h->i++] - '0';
            if (v > (INT64_MAX - d) / 10) return -1;
            v = v * 10 + d;
        }
        if (*ndim == 8) return -2;
        shape[(*ndim)++] = v;
        int comma = hchar(h, ',');
        if (hchar(h, ')')) return (*ndim == 1 && !comma) ? 0 : 1; /* "(3)" is not a tuple */
        if (!comma) return 0;
    }
}

static lstm_status npy_parse_named(lstm_array *a, const unsigned char *buf, size_t size, const char *what) {
    memset(a, 0, sizeof *a);
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: not a .npy file (bad magic)", what);
    int major = buf[6], minor = buf[7];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return lstm__fail(LSTM_ERR_FORMAT, "%s: truncated .npy header", what);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy format version %d.%d not supported (expected 1.0, 2.0 or 3.0)", what,
                          major, minor);
    }
    if (minor != 0)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy format version %d.%d not supported (expected 1.0, 2.0 or 3.0)", what,
                          major, minor);
    if (hlen > size - hoff)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy header length %zu exceeds the file (%zu bytes)", what, hlen, size);
    hscan h = {(const char *)buf + hoff, hlen, 0};
    char key[32], descr[32];
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[8] = {0};
    if (!hchar(&h, '{')) return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy header is not a dict", what);
    while (!hchar(&h, '}')) {
        if (!hstr(&h, key, sizeof key) || !hchar(&h, ':'))
            return lstm__fail(LSTM_ERR_FORMAT, "%s: malformed .npy header at byte %zu", what, hoff + h.i);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            hws(&h);
            if (h.i < h.n && h.s[h.i] == '[')
                return lstm__fail(LSTM_ERR_DTYPE, "%s: structured dtype not supported (expected '<f4' or '<f8')", what);
            if (!hstr(&h, descr, sizeof descr))
                return lstm__fail(LSTM_ERR_FORMAT, "%s: malformed 'descr' in .npy header", what);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fo) {
            if (hword(&h, "False")) fortran = 0;
            else if (hword(&h, "True")) fortran = 1;
            else return lstm__fail(LSTM_ERR_FORMAT, "%s: malformed 'fortran_order' in .npy header", what);
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            int r = htuple(&h, &ndim, shape);
            if (r == -2) return lstm__fail(LSTM_ERR_SHAPE, "%s: more than 8 dimensions not supported", what);
            if (r <= 0) return lstm__fail(LSTM_ERR_FORMAT, "%s: malformed 'shape' in .npy header", what);
            have_shape = 1;
        } else {
            char kn[48];
            return lstm__fail(LSTM_ERR_FORMAT, "%s: unexpected or duplicate key '%s' in .npy header", what,
                              lstm__printable(kn, sizeof kn, key));
        }
        if (!hchar(&h, ',')) {
            if (!hchar(&h, '}')) return lstm__fail(LSTM_ERR_FORMAT, "%s: malformed .npy header at byte %zu", what, hoff + h.i);
            break;
        }
    }
    hws(&h);
    if (h.i != h.n) return lstm__fail(LSTM_ERR_FORMAT, "%s: trailing characters in .npy header", what);
    if (!have_descr || !have_fo || !have_shape)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy header lacks '%s'", what,
                          !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
    size_t esize;
    char dn[48];
    lstm__printable(dn, sizeof dn, descr);
    if (strcmp(descr, "<f4") == 0) esize = 4;
    else if (strcmp(descr, "<f8") == 0) esize = 8;
    else if (strcmp(descr, ">f4") == 0 || strcmp(descr, ">f8") == 0)
        return lstm__fail(LSTM_ERR_DTYPE, "%s: big-endian dtype '%s' not supported (expected '<f4' or '<f8')", what, dn);
    else
        return lstm__fail(LSTM_ERR_DTYPE, "%s: dtype '%s' not supported (expected '<f4' or '<f8')", what, dn);
    if (fortran)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: Fortran-order arrays not supported (expected fortran_order False)", what);
    size_t numel = 1;
    int zero = 0, overflow = 0;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] == 0) zero = 1;
        else if (numel > SIZE_MAX / 8 / (uint64_t)shape[k]) overflow = 1;
        else numel *= (size_t)shape[k];
    }
    if (zero) numel = 0;
    else if (overflow) return lstm__fail(LSTM_ERR_FORMAT, "%s: .npy shape too large", what);
    size_t have = size - hoff - hlen, need = numel * esize;
    if (have < need)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: truncated: expected %zu data bytes, got %zu", what, need, have);
    if (have > need)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: %zu unexpected bytes after the data (expected %zu data bytes)", what,
                          have - need, need);
    float *data = malloc(numel ? numel * sizeof(float) : 1);
    if (!data) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory for %zu floats", what, numel);
    const unsigned char *s = buf + hoff + hlen;
    for (size_t k = 0; k < numel; k++) {
        if (esize == 4) {
            uint32_t u = (uint32_t)s[4 * k] | (uint32_t)s[4 * k + 1] << 8 | (uint32_t)s[4 * k + 2] << 16 |
                         (uint32_t)s[4 * k + 3] << 24;
            memcpy(&data[k], &u, 4);
        } else {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = (u << 8) | s[8 * k + (size_t)b];
            double d;
            memcpy(&d, &u, 8);
            data[k] = (float)d;
        }
    }
    a->ndim = ndim;
    memcpy(a->shape, shape, sizeof shape);
    a->numel = numel;
    a->data = data;
    return LSTM_OK;
}

lstm_status lstm_npy_parse(lstm_array *a, const unsigned char *buf, size_t size) {
    if (!buf && size) {
        memset(a, 0, sizeof *a);
        return lstm__fail(LSTM_ERR_ARG, "<buffer>: no buffer");
    }
    return npy_parse_named(a, buf, size, "<buffer>");
}

lstm_status lstm_npy_read(lstm_array *a, const char *path) {
    unsigned char *buf;
    size_t size;
    memset(a, 0, sizeof *a);
    lstm_status s = lstm__read_file(path, &buf, &size);
    if (s != LSTM_OK) return s;
    s = npy_parse_named(a, buf, size, path);
    free(buf);
    return s;
}

void lstm_array_free(lstm_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

lstm_status lstm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    lstm__afile a;
    lstm_status st = lstm__afile_open(&a, path);
    if (st == LSTM_OK) st = lstm__npy_put(&a, data, ndim, shape);
    if (st == LSTM_OK) st = lstm__afile_commit(&a);
    return st;
}

lstm_status lstm__npy_put(lstm__afile *a, const float *data, int ndim, const int64_t *shape) {
    const char *path = a->path;
    lstm_status st = LSTM_OK;
    if (ndim < 0 || ndim > 8) {
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_ARG, "%s: ndim %d (expected 0..8)", path, ndim);
    }
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0) st = lstm__fail(LSTM_ERR_ARG, "%s: negative dimension %lld", path, (long long)shape[k]);
        else if (shape[k] && numel > SIZE_MAX / 4 / (uint64_t)shape[k])
            st = lstm__fail(LSTM_ERR_ARG, "%s: array too large", path);
        if (st) {
            lstm__afile_abort(a);
            return st;
        }
        numel *= (size_t)shape[k];
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s%lld%s", k ? " " : "", (long long)shape[k],
                      (k + 1 < ndim || ndim == 1) ? "," : "");
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* pad with spaces so that magic + length + header (ending in '\n') is a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + n, ' ', pad);
    n += (int)pad;
    hdr[n++] = '\n';
    if (numel && !data) {
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_ARG, "%s: no data", path);
    }
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xFF), (unsigned char)(n >> 8)};
    st = lstm__afile_write(a, pre, sizeof pre);
    if (st == LSTM_OK) st = lstm__afile_write(a, hdr, (size_t)n);
    unsigned char chunk[4096];
    for (size_t i = 0; i < numel && st == LSTM_OK;) {
        size_t m = numel - i < sizeof chunk / 4 ? numel - i : sizeof chunk / 4;
        for (size_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &data[i + j], 4);
            chunk[4 * j] = (unsigned char)u;
            chunk[4 * j + 1] = (unsigned char)(u >> 8);
            chunk[4 * j + 2] = (unsigned char)(u >> 16);
            chunk[4 * j + 3] = (unsigned char)(u >> 24);
        }
        st = lstm__afile_write(a, chunk, 4 * m);
        i += m;
    }
    return st;
}
