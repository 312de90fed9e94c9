/* fixture_util.h — reading the PyTorch reference fixtures written by
 * tools/lstm_ref.py (tests/fixtures/ files): tensors as float (F32,
 * F64, F16, BF16, or I8 with a scale from the "i8_scale" metadata), tiny JSON
 * lookups in the metadata, and the error measure.  Header-only, for tests. */
#ifndef LSTM_FIXTURE_UTIL_H
#define LSTM_FIXTURE_UTIL_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"

/* Finds "key": in a flat JSON object and parses the number (or true/false)
 * after it.  Returns 1 if found.  Keys are matched with their quotes, so
 * "x" does not match "ref.x". */
static int fx_json_num(const char *json, const char *key, double *v) {
    if (!json) return 0;
    size_t kl = strlen(key);
    for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '"') {
            const char *q = p + 2 + kl;
            while (*q == ' ') q++;
            if (*q != ':') continue;
            q++;
            while (*q == ' ') q++;
            if (strncmp(q, "true", 4) == 0) { *v = 1; return 1; }
            if (strncmp(q, "false", 5) == 0) { *v = 0; return 1; }
            char *end;
            *v = strtod(q, &end);
            return end != q;
        }
    }
    return 0;
}

/* Reads tensor `name` of f as floats into a new buffer (NULL if absent or
 * unreadable); *numel gets the element count.  I8 tensors are scaled by the
 * value of `name` in the "i8_scale" metadata (which must be present). */
static float *fx_tensor(const lstm_st_file *f, const char *name, size_t *numel) {
    const lstm_st_tensor *t = lstm_st_find(f, name);
    if (!t) return NULL;
    float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
    if (!out) return NULL;
    if (strcmp(t->dtype_str, "I8") == 0) {
        double scale;
        if (!fx_json_num(lstm_st_meta(f, "i8_scale"), name, &scale) || t->nbytes != t->numel) {
            free(out);
            return NULL;
        }
        const signed char *d = (const signed char *)(f->data + t->offset);
        for (size_t i = 0; i < t->numel; i++) out[i] = (float)(d[i] * scale);
    } else if (lstm_st_to_f32(f, t, out) != LSTM_OK) {
        free(out);
        return NULL;
    }
    if (numel) *numel = t->numel;
    return out;
}

/* Reads a reference tensor at full precision (F64 stays double). */
static double *fx_tensor_f64(const lstm_st_file *f, const char *name, size_t *numel) {
    const lstm_st_tensor *t = lstm_st_find(f, name);
    if (!t) return NULL;
    double *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
    if (!out) return NULL;
    if (t->dtype == LSTM_DT_F64 && t->nbytes == t->numel * 8) {
        const unsigned char *d = f->data + t->offset;
        for (size_t i = 0; i < t->numel; i++) { /* little-endian bytes */
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = (u << 8) | d[i * 8 + (size_t)b];
            memcpy(&out[i], &u, 8);
        }
    } else {
        float *tmp = fx_tensor(f, name, NULL);
        if (!tmp) { free(out); return NULL; }
        for (size_t i = 0; i < t->numel; i++) out[i] = tmp[i];
        free(tmp);
    }
    if (numel) *numel = t->numel;
    return out;
}

/* max |a - r|; NaN or Inf in a gives INFINITY. */
static double fx_max_err(const float *a, const double *r, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (!(d <= m)) m = isnan(d) || isinf(d) ? INFINITY : d;
    }
    return m;
}

/* The acceptance rule: within 8 times PyTorch float32's own error against
 * the float64 reference, or under 1e-5 absolute. */
static double fx_tol(double torch_err) {
    double t = 8.0 * torch_err;
    return t > 1e-5 ? t : 1e-5;
}
#endif
