/* safetensors.c — reading, validating and writing safetensors files.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, data.
 * The header maps tensor names to {"dtype", "shape", "data_offsets": [b, e]}
 * (offsets relative to the data section) plus an optional "__metadata__"
 * string map.  Everything is checked before any tensor is exposed: the JSON
 * itself (strictly, RFC 8259, nesting depth <= 64), key sets, duplicate
 * names, dtype sizes against the offsets, and that the tensors tile the data
 * section exactly (sorted by offset: no overlap, no hole, nothing after). */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define JSON_MAX_DEPTH 64

/* ---------------------------------------------------------------- JSON */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
    int type;
    int first, next; /* first child (arrays/objects), next sibling; -1 = none */
    int count;       /* number of children */
    const char *key; /* member name when the parent is an object (decoded) */
    size_t keylen;
    const char *str; /* J_STR: decoded text (NUL-terminated); J_NUM: raw text */
    size_t len;
    size_t pos;      /* offset of the value in the header text */
} jnode;

typedef struct {
    const char *s;
    size_t n, i;
    jnode *nodes;
    int nn, cap;
    char *arena; /* decoded strings; never longer than their encoded form */
    size_t an;
    const char *err;
    size_t errpos;
    int nomem;
} jparser;

static int jerr(jparser *p, const char *msg) {
    if (!p->err) {
        p->err = msg;
        p->errpos = p->i;
    }
    return -1;
}

static void jws(jparser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int jnew(jparser *p, int type) {
    if (p->nn == p->cap) {
        int nc = p->cap == 0 ? 64 : p->cap <= INT_MAX / 2 ? p->cap * 2 : 0;
        jnode *nb = nc > 0 ? realloc(p->nodes, (size_t)nc * sizeof *nb) : NULL;
        if (!nb) {
            p->nomem = 1;
            return jerr(p, "out of memory");
        }
        p->nodes = nb;
        p->cap = nc;
    }
    jnode *j = &p->nodes[p->nn];
    memset(j, 0, sizeof *j);
    j->type = type;
    j->first = j->next = -1;
    j->pos = p->i;
    return p->nn++;
}

/* Length of the valid UTF-8 sequence at s[0..n) (non-ASCII lead), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0; /* overlong / range */
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;                                               /* surrogates */
    return len;
}

static int hex4(const char *s, uint32_t *v) {
    uint32_t x = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *v = x;
    return 1;
}

/* Parses a string at p->i (on the opening quote) into the arena. */
static int jstring(jparser *p, const char **out, size_t *outlen) {
    p->i++; /* opening quote */
    char *d = p->arena + p->an, *d0 = d;
    for (;;) {
        if (p->i >= p->n) return jerr(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) return jerr(p, "control character in string");
        if (c == '\\') {
            if (p->i + 1 >= p->n) return jerr(p, "unterminated string");
            char e = p->s[p->i + 1];
            p->i += 2;
            switch (e) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (p->i + 4 > p->n || !hex4(p->s + p->i, &cp)) return jerr(p, "bad \\u escape");
                p->i += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return jerr(p, "unpaired surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' || !hex4(p->s + p->i + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return jerr(p, "unpaired surrogate in \\u escape");
                    p->i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) {
                    *d++ = (char)cp;
                } else if (cp < 0x800) {
                    *d++ = (char)(0xC0 | (cp >> 6));
                    *d++ = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *d++ = (char)(0xE0 | (cp >> 12));
                    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *d++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *d++ = (char)(0xF0 | (cp >> 18));
                    *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *d++ = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: p->i--; return jerr(p, "bad escape in string");
            }
            continue;
        }
        if (c < 0x80) {
            *d++ = (char)c;
            p->i++;
            continue;
        }
        size_t len = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
        if (!len) return jerr(p, "invalid UTF-8 in string");
        memcpy(d, p->s + p->i, len);
        d += len;
        p->i += len;
    }
    *d++ = 0;
    *out = d0;
    *outlen = (size_t)(d - d0) - 1;
    p->an += (size_t)(d - d0);
    return 0;
}

static int jnumber(jparser *p) {
    size_t st = p->i;
    const char *s = p->s;
    size_t n = p->n, i = p->i;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return jerr(p, "bad number");
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return jerr(p, "bad number");
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') { p->i = i; return jerr(p, "bad number"); }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') { p->i = i; return jerr(p, "bad number"); }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    int k = jnew(p, J_NUM);
    if (k < 0) return -1;
    p->nodes[k].str = s + st;
    p->nodes[k].len = i - st;
    p->i = i;
    return k;
}

static int jvalue(jparser *p, int depth);

/* Parses the members/elements of an object/array at p->i (on '{' or '['). */
static int jcontainer(jparser *p, int depth, int obj) {
    if (depth >= JSON_MAX_DEPTH) return jerr(p, "nesting too deep");
    int k = jnew(p, obj ? J_OBJ : J_ARR);
    if (k < 0) return -1;
    char close = obj ? '}' : ']';
    p->i++;
    jws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return k;
    }
    int last = -1;
    for (;;) {
        const char *key = NULL;
        size_t keylen = 0;
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return jerr(p, "expected a string key");
            if (jstring(p, &key, &keylen) < 0) return -1;
            jws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return jerr(p, "expected ':'");
            p->i++;
            jws(p);
        }
        int v = jvalue(p, depth + 1);
        if (v < 0) return -1;
        p->nodes[v].key = key;
        p->nodes[v].keylen = keylen;
        if (last < 0) p->nodes[k].first = v;
        else p->nodes[last].next = v;
        last = v;
        p->nodes[k].count++;
        jws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            jws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return k;
        }
        return jerr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int jlit(jparser *p, const char *lit, int type) {
    size_t len = strlen(lit);
    if (p->n - p->i < len || memcmp(p->s + p->i, lit, len) != 0) return jerr(p, "unexpected character");
    int k = jnew(p, type);
    if (k < 0) return -1;
    p->i += len;
    return k;
}

static int jvalue(jparser *p, int depth) {
    if (p->i >= p->n) return jerr(p, "unexpected end");
    switch (p->s[p->i]) {
    case '{': return jcontainer(p, depth, 1);
    case '[': return jcontainer(p, depth, 0);
    case '"': {
        int k = jnew(p, J_STR);
        if (k < 0) return -1;
        const char *str;
        size_t len;
        if (jstring(p, &str, &len) < 0) return -1;
        p->nodes[k].str = str;
        p->nodes[k].len = len;
        return k;
    }
    case 't': return jlit(p, "true", J_BOOL);
    case 'f': return jlit(p, "false", J_BOOL);
    case 'n': return jlit(p, "null", J_NULL);
    default:
        if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')) return jnumber(p);
        return jerr(p, "unexpected character");
    }
}

/* Non-negative integer without fraction or exponent, <= max. */
static int juint(const jnode *j, uint64_t max, uint64_t *v) {
    if (j->type != J_NUM) return 0;
    uint64_t x = 0;
    for (size_t k = 0; k < j->len; k++) {
        char c = j->str[k];
        if (c < '0' || c > '9') return 0;
        unsigned dgt = (unsigned)(c - '0');
        if (x > (max - dgt) / 10) return 0;
        x = x * 10 + dgt;
    }
    *v = x;
    return j->len > 0;
}

/* ---------------------------------------------------------------- reading */

static const struct { const char *name; lstm_dtype dt; size_t size; } dtypes[] = {
    {"F32", LSTM_DT_F32, 4},   {"F64", LSTM_DT_F64, 8},     {"F16", LSTM_DT_F16, 2},   {"BF16", LSTM_DT_BF16, 2},
    {"BOOL", LSTM_DT_OTHER, 1}, {"U8", LSTM_DT_OTHER, 1},    {"I8", LSTM_DT_OTHER, 1},  {"I16", LSTM_DT_OTHER, 2},
    {"U16", LSTM_DT_OTHER, 2},  {"I32", LSTM_DT_OTHER, 4},   {"U32", LSTM_DT_OTHER, 4}, {"I64", LSTM_DT_OTHER, 8},
    {"U64", LSTM_DT_OTHER, 8},  {"F8_E4M3", LSTM_DT_OTHER, 1}, {"F8_E5M2", LSTM_DT_OTHER, 1},
    {"C64", LSTM_DT_OTHER, 8},
};

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmp_by_offset(const void *a, const void *b) {
    const lstm_st_tensor *x = *(const lstm_st_tensor *const *)a, *y = *(const lstm_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Looks for two equal strings among n pointers stored stride bytes apart
 * from *first.  Returns 1 (and *dup) if found, 0 if not, -1 without memory. */
static int find_duplicate(const char *const *first, int n, size_t stride, const char **dup) {
    if (n < 2) return 0;
    const char **v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (int k = 0; k < n; k++) v[k] = *(const char *const *)(const void *)((const char *)first + (size_t)k * stride);
    qsort(v, (size_t)n, sizeof *v, cmp_str_ptr);
    int found = 0;
    for (int k = 1; k < n && !found; k++)
        if (strcmp(v[k - 1], v[k]) == 0) {
            *dup = v[k];
            found = 1;
        }
    free(v);
    return found;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Builds f from the parsed header; messages start with what. */
static lstm_status st_build(lstm_st_file *f, const jparser *p, int root, const char *what) {
    char nm[96], sh[160];
    const jnode *R = &p->nodes[root];
    if (R->type != J_OBJ) return lstm__fail(LSTM_ERR_FORMAT, "%s: header is not a JSON object", what);
    int nt = 0, has_meta = 0;
    for (int c = R->first; c >= 0; c = p->nodes[c].next) {
        const jnode *m = &p->nodes[c];
        if (strlen(m->key) != m->keylen)
            return lstm__fail(LSTM_ERR_FORMAT, "%s: a tensor name contains a NUL character", what);
        if (strcmp(m->key, "__metadata__") == 0) {
            if (has_meta) return lstm__fail(LSTM_ERR_FORMAT, "%s: duplicate key '__metadata__'", what);
            has_meta = 1;
        } else {
            nt++;
        }
    }
    f->tensors = calloc(nt ? (size_t)nt : 1, sizeof *f->tensors);
    if (!f->tensors) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
    f->n_tensors = 0;
    for (int c = R->first; c >= 0; c = p->nodes[c].next) {
        const jnode *m = &p->nodes[c];
        lstm__printable(nm, sizeof nm, m->key);
        if (strcmp(m->key, "__metadata__") == 0) {
            if (m->type != J_OBJ)
                return lstm__fail(LSTM_ERR_FORMAT, "%s: '__metadata__' must be an object of strings", what);
            f->meta_keys = calloc(m->count ? (size_t)m->count : 1, sizeof(char *));
            f->meta_vals = calloc(m->count ? (size_t)m->count : 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_vals) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
            for (int e = m->first; e >= 0; e = p->nodes[e].next) {
                const jnode *kv = &p->nodes[e];
                lstm__printable(nm, sizeof nm, kv->key);
                if (kv->type != J_STR)
                    return lstm__fail(LSTM_ERR_FORMAT, "%s: __metadata__ '%s': expected a string value", what, nm);
                if (strlen(kv->key) != kv->keylen || strlen(kv->str) != kv->len)
                    return lstm__fail(LSTM_ERR_FORMAT, "%s: __metadata__ '%s': contains a NUL character", what, nm);
                f->meta_keys[f->n_meta] = dupn(kv->key, kv->keylen);
                f->meta_vals[f->n_meta] = dupn(kv->str, kv->len);
                f->n_meta++;
                if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1])
                    return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
            }
            continue;
        }
        lstm_st_tensor *t = &f->tensors[f->n_tensors++];
        t->name = dupn(m->key, m->keylen);
        if (!t->name) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
        if (m->type != J_OBJ)
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': expected an object with dtype, shape, data_offsets", what, nm);
        const jnode *dt = NULL, *shape = NULL, *offs = NULL;
        for (int e = m->first; e >= 0; e = p->nodes[e].next) {
            const jnode *kv = &p->nodes[e];
            const jnode **slot = strcmp(kv->key, "dtype") == 0          ? &dt
                                 : strcmp(kv->key, "shape") == 0        ? &shape
                                 : strcmp(kv->key, "data_offsets") == 0 ? &offs
                                                                        : NULL;
            char kn[48];
            lstm__printable(kn, sizeof kn, kv->key);
            if (!slot || strlen(kv->key) != kv->keylen)
                return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': unexpected key '%s'", what, nm, kn);
            if (*slot) return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': duplicate key '%s'", what, nm, kn);
            *slot = kv;
        }
        if (!dt || !shape || !offs)
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': missing '%s'", what, nm,
                              !dt ? "dtype" : !shape ? "shape" : "data_offsets");
        /* dtype */
        if (dt->type != J_STR) return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': dtype must be a string", what, nm);
        char dn[48];
        lstm__printable(dn, sizeof dn, dt->str);
        if (dt->len == 0 || dt->len >= sizeof t->dtype_str || strlen(dt->str) != dt->len)
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': invalid dtype '%s'", what, nm, dn);
        memcpy(t->dtype_str, dt->str, dt->len + 1);
        size_t esize = 0;
        t->dtype = LSTM_DT_OTHER;
        for (size_t q = 0; q < sizeof dtypes / sizeof dtypes[0]; q++)
            if (strcmp(dt->str, dtypes[q].name) == 0) {
                t->dtype = dtypes[q].dt;
                esize = dtypes[q].size;
            }
        /* shape */
        if (shape->type != J_ARR) return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': shape must be an array", what, nm);
        if (shape->count > 8)
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions (at most 8 supported)", what, nm,
                              shape->count);
        t->ndim = shape->count;
        size_t numel = 1;
        int overflow = 0, zero = 0, k = 0;
        for (int e = shape->first; e >= 0; e = p->nodes[e].next, k++) {
            uint64_t v;
            if (!juint(&p->nodes[e], INT64_MAX, &v))
                return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': shape entries must be non-negative integers", what,
                                  nm);
            t->shape[k] = (int64_t)v;
            if (v == 0) zero = 1;
            else if (numel > SIZE_MAX / v) overflow = 1;
            else numel *= (size_t)v;
        }
        if (zero) numel = 0, overflow = 0;
        lstm__fmt_shape(sh, sizeof sh, t->ndim, t->shape);
        if (overflow || (esize && numel > SIZE_MAX / esize))
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': shape %s is too large", what, nm, sh);
        t->numel = numel;
        /* offsets */
        uint64_t b, en;
        if (offs->type != J_ARR || offs->count != 2 || !juint(&p->nodes[offs->first], SIZE_MAX, &b) ||
            !juint(&p->nodes[p->nodes[offs->first].next], SIZE_MAX, &en))
            return lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] integers", what, nm);
        if (b > en || en > f->data_size)
            return lstm__fail(LSTM_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section has %zu bytes)",
                              what, nm, (unsigned long long)b, (unsigned long long)en, f->data_size);
        t->offset = (size_t)b;
        t->nbytes = (size_t)(en - b);
        if (esize && t->nbytes != numel * esize)
            return lstm__fail(LSTM_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] do not match shape %s of %s (expected %zu bytes)",
                              what, nm, (unsigned long long)b, (unsigned long long)en, sh, t->dtype_str, numel * esize);
    }
    /* duplicate names */
    const char *dup = NULL;
    int r = find_duplicate((const char *const *)(f->n_tensors ? (const void *)&f->tensors[0].name : NULL), f->n_tensors,
                           sizeof f->tensors[0], &dup);
    if (r == 0) r = 2 * find_duplicate((const char *const *)f->meta_keys, f->n_meta, sizeof(char *), &dup);
    if (r < 0) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
    if (r > 0)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: duplicate %s '%s'", what, r == 1 ? "tensor name" : "__metadata__ key",
                          lstm__printable(nm, sizeof nm, dup));
    /* the tensors must tile the data section: no overlap, no hole */
    const lstm_st_tensor **ord = malloc((f->n_tensors ? (size_t)f->n_tensors : 1) * sizeof *ord);
    if (!ord) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", what);
    for (int k = 0; k < f->n_tensors; k++) ord[k] = &f->tensors[k];
    qsort(ord, (size_t)f->n_tensors, sizeof *ord, cmp_by_offset);
    size_t pos = 0;
    for (int k = 0; k < f->n_tensors; k++) {
        const lstm_st_tensor *t = ord[k];
        if (t->offset != pos) {
            lstm__printable(nm, sizeof nm, t->name);
            lstm_status s;
            if (t->offset < pos) {
                char other[96];
                lstm__printable(other, sizeof other, ord[k - 1]->name);
                s = lstm__fail(LSTM_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' [%zu, %zu]",
                               what, nm, t->offset, t->offset + t->nbytes, other, ord[k - 1]->offset,
                               ord[k - 1]->offset + ord[k - 1]->nbytes);
            } else {
                s = lstm__fail(LSTM_ERR_FORMAT, "%s: data bytes [%zu, %zu) belong to no tensor (next is '%s')", what, pos,
                               t->offset, nm);
            }
            free(ord);
            return s;
        }
        pos = t->offset + t->nbytes;
    }
    free(ord);
    if (pos != f->data_size)
        return lstm__fail(LSTM_ERR_FORMAT, "%s: data section has %zu bytes, tensors cover only %zu", what, f->data_size,
                          pos);
    return LSTM_OK;
}

static lstm_status st_parse_named(lstm_st_file *out, unsigned char *buf, size_t size, const char *what) {
    lstm_st_file f;
    memset(&f, 0, sizeof f);
    memset(out, 0, sizeof *out);
    f.buf = buf;
    f.size = size;
    if (!buf) return lstm__fail(LSTM_ERR_ARG, "%s: no buffer", what);
    if (size < 8) {
        lstm_st_free(&f);
        return lstm__fail(LSTM_ERR_FORMAT, "%s: file too short (%zu bytes, expected at least 8)", what, size);
    }
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | buf[k];
    if (hl > size - 8) {
        lstm_st_free(&f);
        return lstm__fail(LSTM_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes after the length)", what,
                          (unsigned long long)hl, size - 8);
    }
    f.data = buf + 8 + hl;
    f.data_size = size - 8 - (size_t)hl;
    jparser p;
    memset(&p, 0, sizeof p);
    p.s = (const char *)buf + 8;
    p.n = (size_t)hl;
    p.arena = malloc((size_t)hl + 1);
    lstm_status st = LSTM_OK;
    if (!p.arena) {
        st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory for a %llu-byte header", what, (unsigned long long)hl);
    } else {
        jws(&p);
        int root = jvalue(&p, 0);
        if (root >= 0) {
            jws(&p);
            if (p.i != p.n) root = jerr(&p, "trailing characters after the header object");
        }
        if (root < 0)
            st = p.nomem ? lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory parsing the header", what)
                         : lstm__fail(LSTM_ERR_FORMAT, "%s: header is not valid JSON: %s at header byte %zu", what, p.err,
                                      p.errpos);
        else
            st = st_build(&f, &p, root, what);
    }
    free(p.arena);
    free(p.nodes);
    if (st != LSTM_OK) {
        lstm_st_free(&f);
        return st;
    }
    *out = f;
    return LSTM_OK;
}

lstm_status lstm_st_parse(lstm_st_file *f, unsigned char *buf, size_t size) {
    return st_parse_named(f, buf, size, "<buffer>");
}

lstm_status lstm_st_read(lstm_st_file *f, const char *path) {
    unsigned char *buf;
    size_t size;
    memset(f, 0, sizeof *f);
    lstm_status s = lstm__read_file(path, &buf, &size);
    if (s != LSTM_OK) return s;
    return st_parse_named(f, buf, size, path);
}

const lstm_st_tensor *lstm_st_find(const lstm_st_file *f, const char *name) {
    for (int k = 0; k < f->n_tensors; k++)
        if (strcmp(f->tensors[k].name, name) == 0) return &f->tensors[k];
    return NULL;
}

const char *lstm_st_meta(const lstm_st_file *f, const char *key) {
    for (int k = 0; k < f->n_meta; k++)
        if (strcmp(f->meta_keys[k], key) == 0) return f->meta_vals[k];
    return NULL;
}

void lstm_st_free(lstm_st_file *f) {
    if (!f) return;
    if (f->tensors)
        for (int k = 0; k < f->n_tensors; k++) free(f->tensors[k].name);
    free(f->tensors);
    for (int k = 0; k < f->n_meta; k++) {
        free(f->meta_keys[k]);
        free(f->meta_vals[k]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- conversion */

static uint32_t f32_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* IEEE half -> float, exact for every input (subnormals, inf, NaN payloads). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return bits_f32(sign | 0x7F800000u | (m << 13));
    if (e) return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    /* zero or subnormal: m * 2^-24, exact in float */
    return bits_f32(sign | f32_bits((float)m * 0x1p-24f));
}

lstm_status lstm_st_to_f32(const lstm_st_file *f, const lstm_st_tensor *t, float *out) {
    char nm[96];
    const unsigned char *s = f->data + t->offset;
    size_t n = t->numel;
    switch (t->dtype) {
    case LSTM_DT_F32:
        for (size_t k = 0; k < n; k++, s += 4)
            out[k] = bits_f32((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);
        return LSTM_OK;
    case LSTM_DT_F64:
        for (size_t k = 0; k < n; k++, s += 8) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = (u << 8) | s[b];
            double d;
            memcpy(&d, &u, 8);
            out[k] = (float)d;
        }
        return LSTM_OK;
    case LSTM_DT_F16:
        for (size_t k = 0; k < n; k++, s += 2) out[k] = f16_to_f32((uint16_t)(s[0] | s[1] << 8));
        return LSTM_OK;
    case LSTM_DT_BF16:
        for (size_t k = 0; k < n; k++, s += 2) out[k] = bits_f32((uint32_t)(s[0] | s[1] << 8) << 16);
        return LSTM_OK;
    case LSTM_DT_OTHER: break;
    }
    char dn[48];
    return lstm__fail(LSTM_ERR_DTYPE, "tensor '%s': dtype %s is not supported (expected F32, F64, F16 or BF16)",
                      lstm__printable(nm, sizeof nm, t->name), lstm__printable(dn, sizeof dn, t->dtype_str));
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    char *s;
    size_t n, cap;
    int nomem;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->nomem) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->nomem = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt_u(sbuf *b, unsigned long long v) {
    char t[32];
    int n = snprintf(t, sizeof t, "%llu", v);
    sb_put(b, t, (size_t)n);
}

static void sb_json(sbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Whether s is valid UTF-8, as the JSON header must be (the reader refuses it otherwise). */
static int utf8_ok(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = (unsigned char)s[i] < 0x80 ? 1 : utf8_len((const unsigned char *)s + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

lstm_status lstm_st_write(const char *path, const lstm_st_entry *t, int n, const char *const *meta_kv) {
    char nm[96];
    if (n < 0 || (n > 0 && !t)) return lstm__fail(LSTM_ERR_ARG, "%s: invalid tensor list", path);
    size_t *nbytes = malloc((n ? (size_t)n : 1) * sizeof *nbytes);
    if (!nbytes) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    lstm_status st = LSTM_OK;
    for (int k = 0; k < n && st == LSTM_OK; k++) {
        if (!t[k].name) {
            st = lstm__fail(LSTM_ERR_ARG, "%s: tensor %d has no name", path, k);
            break;
        }
        lstm__printable(nm, sizeof nm, t[k].name);
        if (!utf8_ok(t[k].name)) {
            st = lstm__fail(LSTM_ERR_ARG, "%s: tensor '%s': the name is not valid UTF-8", path, nm);
            break;
        }
        if (strcmp(t[k].name, "__metadata__") == 0) {
            st = lstm__fail(LSTM_ERR_ARG, "%s: '__metadata__' is not a valid tensor name", path);
            break;
        }
        if (t[k].ndim < 0 || t[k].ndim > 8) {
            st = lstm__fail(LSTM_ERR_ARG, "%s: tensor '%s': ndim %d (expected 0..8)", path, nm, t[k].ndim);
            break;
        }
        size_t numel = 1;
        for (int d = 0; d < t[k].ndim; d++) {
            if (t[k].shape[d] < 0) {
                st = lstm__fail(LSTM_ERR_ARG, "%s: tensor '%s': negative dimension", path, nm);
                break;
            }
            uint64_t v = (uint64_t)t[k].shape[d];
            if (v && numel > SIZE_MAX / 4 / v) {
                st = lstm__fail(LSTM_ERR_ARG, "%s: tensor '%s': too large", path, nm);
                break;
            }
            numel *= (size_t)v;
        }
        if (st != LSTM_OK) break;
        nbytes[k] = numel * 4;
        if (numel && !t[k].data) st = lstm__fail(LSTM_ERR_ARG, "%s: tensor '%s': no data", path, nm);
    }
    /* the reader refuses repeated names and metadata keys: never write them */
    const char *dup = NULL;
    int nmeta = 0;
    while (meta_kv && meta_kv[2 * nmeta] && meta_kv[2 * nmeta + 1]) nmeta++;
    for (int k = 0; k < 2 * nmeta && st == LSTM_OK; k++)
        if (!utf8_ok(meta_kv[k]))
            st = lstm__fail(LSTM_ERR_ARG, "%s: metadata %s '%s' is not valid UTF-8", path, k % 2 ? "value" : "key",
                            lstm__printable(nm, sizeof nm, meta_kv[k]));
    if (st == LSTM_OK) {
        int r = n > 0 ? find_duplicate((const char *const *)&t[0].name, n, sizeof *t, &dup) : 0;
        if (r == 1)
            st = lstm__fail(LSTM_ERR_ARG, "%s: duplicate tensor name '%s'", path, lstm__printable(nm, sizeof nm, dup));
        else if (r == 0 && (r = find_duplicate(meta_kv, nmeta, 2 * sizeof *meta_kv, &dup)) == 1)
            st = lstm__fail(LSTM_ERR_ARG, "%s: duplicate metadata key '%s'", path, lstm__printable(nm, sizeof nm, dup));
        if (r < 0) st = lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st != LSTM_OK) {
        free(nbytes);
        return st;
    }
    sbuf h = {0};
    sb_str(&h, "{");
    int first = 1;
    if (meta_kv && meta_kv[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (int k = 0; meta_kv[k]; k += 2) {
            if (!meta_kv[k + 1]) {
                free(nbytes);
                free(h.s);
                return lstm__fail(LSTM_ERR_ARG, "%s: metadata key '%s' has no value", path,
                                  lstm__printable(nm, sizeof nm, meta_kv[k]));
            }
            if (k) sb_str(&h, ",");
            sb_json(&h, meta_kv[k]);
            sb_str(&h, ":");
            sb_json(&h, meta_kv[k + 1]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json(&h, t[k].name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[k].ndim; d++) {
            if (d) sb_str(&h, ",");
            sb_fmt_u(&h, (unsigned long long)t[k].shape[d]);
        }
        sb_str(&h, "],\"data_offsets\":[");
        sb_fmt_u(&h, off);
        sb_str(&h, ",");
        if (nbytes[k] > SIZE_MAX - off) h.nomem = 1;
        off += nbytes[k];
        sb_fmt_u(&h, off);
        sb_str(&h, "]}");
    }
    sb_str(&h, "}");
    while (!h.nomem && h.n % 8) sb_str(&h, " ");
    if (h.nomem) {
        free(nbytes);
        free(h.s);
        return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
    lstm__afile a;
    st = lstm__afile_open(&a, path);
    if (st == LSTM_OK) st = lstm__afile_write(&a, len8, 8);
    if (st == LSTM_OK) st = lstm__afile_write(&a, h.s, h.n);
    free(h.s);
    unsigned char chunk[4096];
    for (int k = 0; k < n && st == LSTM_OK; k++) {
        size_t numel = nbytes[k] / 4;
        for (size_t i = 0; i < numel && st == LSTM_OK;) {
            size_t m = numel - i < sizeof chunk / 4 ? numel - i : sizeof chunk / 4;
            for (size_t j = 0; j < m; j++) {
                uint32_t u = f32_bits(t[k].data[i + j]);
                chunk[4 * j] = (unsigned char)u;
                chunk[4 * j + 1] = (unsigned char)(u >> 8);
                chunk[4 * j + 2] = (unsigned char)(u >> 16);
                chunk[4 * j + 3] = (unsigned char)(u >> 24);
            }
            st = lstm__afile_write(&a, chunk, 4 * m);
            i += m;
        }
    }
    free(nbytes);
    if (st == LSTM_OK) st = lstm__afile_commit(&a);
    return st;
}
