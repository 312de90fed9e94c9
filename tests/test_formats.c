/* test_formats.c — safetensors and .npy readers/writers, model load/save:
 * round trips, exact F16/BF16/F64 conversion, and every malformed input the
 * readers must reject (with the right status and a message naming it). */
#include <dirent.h>
#include <grp.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lstm.h"
#include "test.h"

static char tmpdir[256];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int no_tmp_files(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int ok = 1;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".lstm-tmp.")) ok = 0; /* DIR/.NAME.lstm-tmp.PID.RANDOM (fileio.c) */
    if (d) closedir(d);
    return ok;
}

static uint32_t fbits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* A safetensors image: header json, then ndata bytes (k -> k*7+1). */
static unsigned char *mk_st(const char *json, size_t ndata, size_t *size) {
    size_t hl = strlen(json);
    *size = 8 + hl + ndata;
    unsigned char *b = malloc(*size);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, json, hl);
    for (size_t k = 0; k < ndata; k++) b[8 + hl + k] = (unsigned char)(k * 7 + 1);
    return b;
}

/* Parses json + ndata bytes; checks the status and that the message contains want. */
static void st_expect(int line, const char *json, size_t ndata, lstm_status want, const char *msg) {
    size_t size;
    unsigned char *b = mk_st(json, ndata, &size);
    lstm_st_file f;
    lstm_status s = lstm_st_parse(&f, b, size);
    const char *e = lstm_last_error();
    if (s == LSTM_OK) lstm_st_free(&f);
    CHECK(s == want, "line %d: status %s, expected %s (%s) for %s", line, lstm_status_str(s), lstm_status_str(want), e,
          json);
    if (want != LSTM_OK) {
        CHECK(strncmp(e, "<buffer>: ", 10) == 0, "line %d: message should start with '<buffer>: ': %s", line, e);
        CHECK(!msg || strstr(e, msg), "line %d: message '%s' lacks '%s'", line, e, msg);
        CHECK(!strchr(e, '\n'), "line %d: message has a newline", line);
    }
}
#define ST_BAD(json, nd, st, msg) st_expect(__LINE__, json, nd, st, msg)
#define ST_OK(json, nd) st_expect(__LINE__, json, nd, LSTM_OK, NULL)

static void test_st_roundtrip(void) {
    float a[6] = {1.5f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f}, b[3] = {3, 4, 5}, c[1] = {42};
    lstm_st_entry e[4] = {
        {"a.weight", 2, {2, 3}, a}, {"b\"q\\\n", 1, {3}, b}, {"scalar", 0, {0}, c}, {"empty", 2, {0, 3}, NULL}};
    const char *meta[] = {"format", "pt", "note", "x\"y", NULL};
    const char *p = tpath("rt.safetensors");
    CHECK(lstm_st_write(p, e, 4, meta) == LSTM_OK, "write: %s", lstm_last_error());
    lstm_st_file f;
    lstm_status s = lstm_st_read(&f, p);
    CHECK(s == LSTM_OK, "read: %s", lstm_last_error());
    if (s != LSTM_OK) return;
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | f.buf[k];
    CHECK(hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
    CHECK(f.n_tensors == 4, "n_tensors %d", f.n_tensors);
    CHECK(f.n_meta == 2 && lstm_st_meta(&f, "format") && strcmp(lstm_st_meta(&f, "format"), "pt") == 0, "meta format");
    CHECK(lstm_st_meta(&f, "note") && strcmp(lstm_st_meta(&f, "note"), "x\"y") == 0, "meta note");
    CHECK(lstm_st_meta(&f, "nope") == NULL, "absent meta");
    for (int k = 0; k < 4; k++) {
        const lstm_st_tensor *t = lstm_st_find(&f, e[k].name);
        CHECK(t != NULL, "tensor %d missing", k);
        if (!t) continue;
        CHECK(t->dtype == LSTM_DT_F32 && strcmp(t->dtype_str, "F32") == 0, "dtype %s", t->dtype_str);
        CHECK(t->ndim == e[k].ndim, "ndim %d", t->ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == e[k].shape[d], "shape");
            numel *= (size_t)e[k].shape[d];
        }
        CHECK(t->numel == numel && t->nbytes == 4 * numel, "numel %zu", t->numel);
        float out[8];
        CHECK(lstm_st_to_f32(&f, t, out) == LSTM_OK, "to_f32");
        for (size_t q = 0; q < numel; q++) CHECK(fbits(out[q]) == fbits(e[k].data[q]), "value %d[%zu]", k, q);
    }
    CHECK(lstm_st_find(&f, "nope") == NULL, "absent tensor");
    lstm_st_free(&f);
    lstm_st_free(&f); /* a zeroed struct is fine */

    /* overwrite, then a failing write keeps the previous file and leaves no tmp */
    lstm_st_entry e2[1] = {{"only", 1, {2}, b}};
    CHECK(lstm_st_write(p, e2, 1, NULL) == LSTM_OK, "overwrite: %s", lstm_last_error());
    lstm_st_entry dup[2] = {{"x", 1, {1}, b}, {"x", 1, {1}, b}};
    CHECK(lstm_st_write(p, dup, 2, NULL) == LSTM_ERR_ARG, "duplicate names must fail");
    lstm_st_entry bad[1] = {{"__metadata__", 1, {1}, b}};
    CHECK(lstm_st_write(p, bad, 1, NULL) == LSTM_ERR_ARG, "__metadata__ as a name must fail");
    CHECK(lstm_st_write(tpath("nodir/x.safetensors"), e2, 1, NULL) == LSTM_ERR_IO, "write into a missing dir");
    CHECK(strstr(lstm_last_error(), "nodir/x.safetensors") != NULL, "message names the path: %s", lstm_last_error());
    /* repeated metadata keys would make a file the reader refuses */
    const char *dupmeta[] = {"a", "x", "a", "y", NULL};
    CHECK(lstm_st_write(p, e2, 1, dupmeta) == LSTM_ERR_ARG, "duplicate metadata keys must fail");
    /* the header must be UTF-8: a name or metadata string that is not would make a file no reader takes */
    lstm_st_entry latin1[1] = {{"caf\xe9", 1, {2}, b}};
    CHECK(lstm_st_write(p, latin1, 1, NULL) == LSTM_ERR_ARG && strstr(lstm_last_error(), "UTF-8"),
          "a name that is not UTF-8 must fail: %s", lstm_last_error());
    const char *badmeta[] = {"k", "v\xc3", NULL}, *badkey[] = {"\xed\xa0\x80", "v", NULL};
    CHECK(lstm_st_write(p, e2, 1, badmeta) == LSTM_ERR_ARG, "a metadata value that is not UTF-8 must fail");
    CHECK(lstm_st_write(p, e2, 1, badkey) == LSTM_ERR_ARG, "a metadata key that is not UTF-8 must fail");
    CHECK(no_tmp_files(), "temporary files left behind");
    s = lstm_st_read(&f, p);
    CHECK(s == LSTM_OK && f.n_tensors == 1 && lstm_st_find(&f, "only"), "previous file intact");
    if (s == LSTM_OK) lstm_st_free(&f);
    /* a failure after the temporary file was written: the rename onto a directory
     * (tpath reuses a few buffers, so p is not used past this point) */
    CHECK(mkdir(tpath("isdir.safetensors"), 0700) == 0, "mkdir");
    CHECK(lstm_st_write(tpath("isdir.safetensors"), e2, 1, NULL) == LSTM_ERR_IO, "rename onto a directory must fail");
    CHECK(lstm_npy_write(tpath("isdir.safetensors"), b, 1, (const int64_t[]){2}) == LSTM_ERR_IO,
          "npy rename onto a directory must fail");
    CHECK(no_tmp_files(), "temporary files left behind");

    /* reading errors name the path */
    s = lstm_st_read(&f, tpath("absent.safetensors"));
    CHECK(s == LSTM_ERR_IO && strstr(lstm_last_error(), "absent.safetensors: "), "absent: %s", lstm_last_error());
    s = lstm_st_read(&f, tmpdir);
    CHECK(s == LSTM_ERR_IO, "directory: %s", lstm_last_error());
    FILE *fp = fopen(tpath("short.safetensors"), "wb");
    fwrite("\x10\0\0\0\0\0\0\0{}", 1, 10, fp);
    fclose(fp);
    s = lstm_st_read(&f, tpath("short.safetensors"));
    CHECK(s == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "short.safetensors: header length 16 exceeds"),
          "header beyond file: %s", lstm_last_error());
}

static void test_st_bad(void) {
    ST_OK("{}", 0);
    ST_OK("  {\"__metadata__\":{\"a\":\"b\"}}  ", 0);
    ST_OK("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    ST_OK("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}", 8);
    ST_OK("{\"\\u00e9\\ud83d\\ude00\\n\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
    ST_OK("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0);
    /* sizes of the image */
    {
        unsigned char *b = malloc(7);
        memset(b, 0, 7);
        lstm_st_file f;
        CHECK(lstm_st_parse(&f, b, 7) == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "too short"), "7 bytes: %s",
              lstm_last_error());
        size_t size;
        b = mk_st("{}", 0, &size);
        b[0] = 3; /* header length 3 > 2 bytes left */
        CHECK(lstm_st_parse(&f, b, size) == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "exceeds"), "hl: %s",
              lstm_last_error());
        b = mk_st("{}", 0, &size);
        b[7] = 0x80; /* 2^63 */
        CHECK(lstm_st_parse(&f, b, size) == LSTM_ERR_FORMAT, "huge header length");
    }
    /* not JSON */
    ST_BAD("", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("{", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("[1]", 0, LSTM_ERR_FORMAT, "not a JSON object");
    ST_BAD("\"x\"", 0, LSTM_ERR_FORMAT, "not a JSON object");
    ST_BAD("{} x", 0, LSTM_ERR_FORMAT, "trailing");
    ST_BAD("{\"a\":}", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("{\"a\" 1}", 0, LSTM_ERR_FORMAT, "expected ':'");
    ST_BAD("{a:1}", 0, LSTM_ERR_FORMAT, "expected a string key");
    ST_BAD("{\"a\":[1,]}", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("{\"a\":[1 2]}", 0, LSTM_ERR_FORMAT, "expected ',' or ']'");
    ST_BAD("{\"a\":01}", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("{\"a\":1.}", 0, LSTM_ERR_FORMAT, "bad number");
    ST_BAD("{\"a\":1e}", 0, LSTM_ERR_FORMAT, "bad number");
    ST_BAD("{\"a\":-}", 0, LSTM_ERR_FORMAT, "bad number");
    ST_BAD("{\"a\":tru}", 0, LSTM_ERR_FORMAT, "not valid JSON");
    ST_BAD("{\"a\":\"x}", 0, LSTM_ERR_FORMAT, "unterminated string");
    ST_BAD("{\"a\\q\":1}", 0, LSTM_ERR_FORMAT, "bad escape");
    ST_BAD("{\"a\\u12\":1}", 0, LSTM_ERR_FORMAT, "bad \\u escape");
    ST_BAD("{\"a\\ud83d\":1}", 0, LSTM_ERR_FORMAT, "unpaired surrogate");
    ST_BAD("{\"a\\ude00\":1}", 0, LSTM_ERR_FORMAT, "unpaired surrogate");
    ST_BAD("{\"a\tb\":1}", 0, LSTM_ERR_FORMAT, "control character");
    ST_BAD("{\"a\xff\":1}", 0, LSTM_ERR_FORMAT, "invalid UTF-8");
    ST_BAD("{\"a\xc0\xaf\":1}", 0, LSTM_ERR_FORMAT, "invalid UTF-8");     /* overlong */
    ST_BAD("{\"a\xed\xa0\x80\":1}", 0, LSTM_ERR_FORMAT, "invalid UTF-8"); /* surrogate */
    {
        char deep[400];
        int n = sprintf(deep, "{\"a\":");
        for (int k = 0; k < 100; k++) deep[n++] = '[';
        for (int k = 0; k < 100; k++) deep[n++] = ']';
        strcpy(deep + n, "}");
        ST_BAD(deep, 0, LSTM_ERR_FORMAT, "nesting too deep");
    }
    /* structure */
    ST_BAD("{\"w\":1}", 0, LSTM_ERR_FORMAT, "tensor 'w': expected an object");
    ST_BAD("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "missing 'dtype'");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "missing 'shape'");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, LSTM_ERR_FORMAT, "missing 'data_offsets'");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, LSTM_ERR_FORMAT,
           "unexpected key 'x'");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           LSTM_ERR_FORMAT, "duplicate key 'dtype'");
    ST_BAD("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "dtype must be");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "shape must be");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "non-negative");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "non-negative");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "non-negative");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT,
           "non-negative");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT,
           "9 dimensions");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, LSTM_ERR_FORMAT, "[begin, end]");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, LSTM_ERR_FORMAT, "[begin, end]");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, LSTM_ERR_FORMAT, "[begin, end]");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}}", 4,
           LSTM_ERR_FORMAT, "[begin, end]");
    ST_BAD("{\"w\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "invalid dtype");
    ST_BAD("{\"w\":{\"dtype\":\"F32_AND_A_VERY_LONG_NAME\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           LSTM_ERR_FORMAT, "invalid dtype");
    ST_BAD("{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "NUL");
    /* sizes and offsets */
    ST_BAD("{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,5],\"data_offsets\":[0,100]}}", 100, LSTM_ERR_FORMAT,
           "tensor 'weight_ih_l0': data_offsets [0, 100] do not match shape [4, 5] of F32 (expected 80 bytes)");
    ST_BAD("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "expected 6 bytes");
    ST_BAD("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LSTM_ERR_FORMAT, "expected 8 bytes");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4, LSTM_ERR_FORMAT, "out of range");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, LSTM_ERR_FORMAT, "out of range");
    ST_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
           LSTM_ERR_FORMAT, "too large");
    ST_BAD("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 4,
           LSTM_ERR_FORMAT, "too large");
    ST_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8, LSTM_ERR_FORMAT, "overlap");
    ST_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           4, LSTM_ERR_FORMAT, "overlap");
    ST_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
           12, LSTM_ERR_FORMAT, "belong to no tensor");
    ST_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, LSTM_ERR_FORMAT,
           "tensors cover only 4");
    ST_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8, LSTM_ERR_FORMAT, "duplicate tensor name 'a'");
    /* metadata */
    ST_BAD("{\"__metadata__\":[]}", 0, LSTM_ERR_FORMAT, "__metadata__");
    ST_BAD("{\"__metadata__\":{\"a\":1}}", 0, LSTM_ERR_FORMAT, "expected a string value");
    ST_BAD("{\"__metadata__\":{\"a\":\"x\",\"a\":\"y\"}}", 0, LSTM_ERR_FORMAT, "duplicate __metadata__ key 'a'");
    ST_BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, LSTM_ERR_FORMAT, "duplicate key '__metadata__'");
    ST_BAD("{\"__metadata__\":{\"a\":\"x\\u0000\"}}", 0, LSTM_ERR_FORMAT, "NUL");
    /* an embedded NUL in the header is a control character, not the end */
    {
        static const char j[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}\0}";
        size_t hl = sizeof j - 1, size = 8 + hl + 4;
        unsigned char *b = calloc(1, size);
        b[0] = (unsigned char)hl;
        memcpy(b + 8, j, hl);
        lstm_st_file f;
        CHECK(lstm_st_parse(&f, b, size) == LSTM_ERR_FORMAT, "NUL inside the header");
    }
    /* an unknown dtype parses; conversion fails naming tensor and dtype */
    {
        size_t size;
        unsigned char *b = mk_st("{\"steps\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                                 "\"odd\":{\"dtype\":\"Q7\",\"shape\":[3],\"data_offsets\":[8,9]}}",
                                 9, &size);
        lstm_st_file f;
        lstm_status s = lstm_st_parse(&f, b, size);
        CHECK(s == LSTM_OK, "unknown dtypes must parse: %s", lstm_last_error());
        if (s == LSTM_OK) {
            const lstm_st_tensor *t = lstm_st_find(&f, "steps"), *u = lstm_st_find(&f, "odd");
            CHECK(t && t->dtype == LSTM_DT_OTHER && strcmp(t->dtype_str, "I64") == 0, "I64 kept");
            CHECK(u && u->dtype == LSTM_DT_OTHER && strcmp(u->dtype_str, "Q7") == 0 && u->nbytes == 1, "Q7 kept");
            float out[4];
            s = lstm_st_to_f32(&f, t, out);
            CHECK(s == LSTM_ERR_DTYPE && strstr(lstm_last_error(), "'steps'") && strstr(lstm_last_error(), "I64"),
                  "to_f32 on I64: %s", lstm_last_error());
            lstm_st_free(&f);
        }
    }
}

/* Reference decoders built from the IEEE definitions with ldexp. */
static double ref_half(unsigned h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}
static double ref_bf16(unsigned h) {
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
    return s ? -v : v;
}

static void test_conversion(void) {
    /* every F16 and BF16 bit pattern, in one file: a [65536] F16, b [65536] BF16 */
    char json[256];
    snprintf(json, sizeof json,
             "{\"a\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[256,256],\"data_offsets\":[131072,262144]}}");
    size_t size;
    unsigned char *b = mk_st(json, 262144, &size);
    size_t d = size - 262144;
    for (unsigned k = 0; k < 65536; k++) {
        b[d + 2 * k] = (unsigned char)k;
        b[d + 2 * k + 1] = (unsigned char)(k >> 8);
        b[d + 131072 + 2 * k] = (unsigned char)k;
        b[d + 131072 + 2 * k + 1] = (unsigned char)(k >> 8);
    }
    lstm_st_file f;
    lstm_status s = lstm_st_parse(&f, b, size);
    CHECK(s == LSTM_OK, "parse: %s", lstm_last_error());
    if (s != LSTM_OK) return;
    float *out = malloc(65536 * sizeof *out);
    int bad16 = 0, badbf = 0;
    CHECK(lstm_st_to_f32(&f, lstm_st_find(&f, "a"), out) == LSTM_OK, "F16 convert");
    for (unsigned k = 0; k < 65536; k++) {
        double r = ref_half(k);
        int ok = isnan(r) ? (isnan(out[k]) && (fbits(out[k]) >> 31) == (k >> 15) && (fbits(out[k]) & 0x7FFFFF) >> 13 == (k & 1023))
                          : (out[k] == r && !!signbit(out[k]) == !!signbit(r));
        bad16 += !ok;
    }
    CHECK_V(bad16 == 0, "F16 -> F32 exact for all 65536 bit patterns (%d wrong)", bad16);
    CHECK(lstm_st_to_f32(&f, lstm_st_find(&f, "b"), out) == LSTM_OK, "BF16 convert");
    for (unsigned k = 0; k < 65536; k++) {
        double r = ref_bf16(k);
        int ok = isnan(r) ? (isnan(out[k]) && fbits(out[k]) == (uint32_t)k << 16)
                          : (out[k] == r && !!signbit(out[k]) == !!signbit(r));
        badbf += !ok;
    }
    CHECK_V(badbf == 0, "BF16 -> F32 exact for all 65536 bit patterns (%d wrong)", badbf);
    lstm_st_free(&f);

    /* F64 rounds to nearest, overflows to inf, keeps NaN and signed zero */
    double v[8] = {1.0 / 3.0, -2.5, 1e300, -1e300, 1e-300, -0.0, NAN, 0x1.000001p0};
    b = mk_st("{\"c\":{\"dtype\":\"F64\",\"shape\":[2,4],\"data_offsets\":[0,64]}}", 64, &size);
    for (int k = 0; k < 8; k++) {
        uint64_t u;
        memcpy(&u, &v[k], 8);
        for (int q = 0; q < 8; q++) b[size - 64 + 8 * k + q] = (unsigned char)(u >> (8 * q));
    }
    s = lstm_st_parse(&f, b, size);
    CHECK(s == LSTM_OK, "parse F64: %s", lstm_last_error());
    if (s == LSTM_OK) {
        CHECK(lstm_st_to_f32(&f, &f.tensors[0], out) == LSTM_OK, "F64 convert");
        int bad = 0;
        for (int k = 0; k < 8; k++) {
            float r = (float)v[k];
            bad += isnan(r) ? !isnan(out[k]) : fbits(out[k]) != fbits(r);
        }
        CHECK(out[0] == 0x1.555556p-2f && out[2] == INFINITY && out[4] == 0.0f && signbit(out[5]) && out[7] == 1.0f,
              "F64 spot values");
        CHECK_V(bad == 0, "F64 -> F32 rounding (%d wrong of 8)", bad);
        lstm_st_free(&f);
    }
    free(out);
}

/* ---------------------------------------------------------------- npy */

/* A .npy image: version major.0, header dict text (padded to 16 with spaces + '\n'), ndata bytes. */
static unsigned char *mk_npy(int major, const char *dict, size_t ndata, size_t *size) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = dl + 1;
    hl += (16 - (pre + hl) % 16) % 16;
    *size = pre + hl + ndata;
    unsigned char *b = malloc(*size);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (unsigned char)(hl >> (8 * k));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hl - dl - 1);
    b[pre + hl - 1] = '\n';
    for (size_t k = 0; k < ndata; k++) b[pre + hl + k] = (unsigned char)(k * 13 + 5);
    return b;
}

static void npy_expect(int line, int major, const char *dict, size_t ndata, lstm_status want, const char *msg) {
    size_t size;
    unsigned char *b = mk_npy(major, dict, ndata, &size);
    lstm_array a;
    lstm_status s = lstm_npy_parse(&a, b, size);
    const char *e = lstm_last_error();
    CHECK(s == want, "line %d: status %s, expected %s (%s)", line, lstm_status_str(s), lstm_status_str(want), e);
    if (s == LSTM_OK) lstm_array_free(&a);
    else CHECK(a.data == NULL && a.ndim == 0, "line %d: array not zeroed on failure", line);
    if (want != LSTM_OK) {
        CHECK(strncmp(e, "<buffer>: ", 10) == 0, "line %d: message should start with '<buffer>: ': %s", line, e);
        CHECK(!msg || strstr(e, msg), "line %d: message '%s' lacks '%s'", line, e, msg);
    }
    free(b);
}
#define NPY_BAD(maj, dict, nd, st, msg) npy_expect(__LINE__, maj, dict, nd, st, msg)
#define NPY_OK(maj, dict, nd) npy_expect(__LINE__, maj, dict, nd, LSTM_OK, NULL)

static void test_npy(void) {
    /* round trips over shapes, including () and zero-size */
    static const int64_t shapes[][8] = {{0}, {5}, {2, 3}, {2, 0, 3}, {1, 2, 1, 2, 1, 2, 1, 2}};
    static const int ndims[] = {0, 1, 2, 3, 8};
    static const char *hdr[] = {"()", "(5,)", "(2, 3)", "(2, 0, 3)", "(1, 2, 1, 2, 1, 2, 1, 2)"};
    float data[16];
    for (int k = 0; k < 16; k++) data[k] = (float)k * 0.37f - 2.0f;
    data[1] = -0.0f;
    data[2] = NAN;
    for (int t = 0; t < 5; t++) {
        const char *p = tpath("rt.npy");
        CHECK(lstm_npy_write(p, data, ndims[t], shapes[t]) == LSTM_OK, "npy write: %s", lstm_last_error());
        FILE *fp = fopen(p, "rb");
        unsigned char raw[256];
        size_t got = fp ? fread(raw, 1, sizeof raw, fp) : 0;
        if (fp) fclose(fp);
        size_t hl = got >= 10 ? (size_t)(raw[8] | raw[9] << 8) : 0;
        CHECK(got >= 10 && raw[6] == 1 && raw[7] == 0 && (10 + hl) % 64 == 0 && raw[10 + hl - 1] == '\n',
              "npy v1.0 header aligned to 64 (len %zu)", hl);
        char want[128];
        snprintf(want, sizeof want, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", hdr[t]);
        CHECK(got > 10 + strlen(want) && memcmp(raw + 10, want, strlen(want)) == 0, "npy header text for %s", hdr[t]);
        lstm_array a;
        lstm_status s = lstm_npy_read(&a, p);
        CHECK(s == LSTM_OK, "npy read: %s", lstm_last_error());
        if (s != LSTM_OK) continue;
        size_t numel = 1;
        CHECK(a.ndim == ndims[t], "ndim %d", a.ndim);
        for (int d = 0; d < ndims[t]; d++) {
            CHECK(a.shape[d] == shapes[t][d], "dim %d", d);
            numel *= (size_t)shapes[t][d];
        }
        CHECK(a.numel == numel && a.data, "numel %zu", a.numel);
        for (size_t q = 0; q < numel && q < a.numel; q++) CHECK(fbits(a.data[q]) == fbits(data[q]), "npy value %zu", q);
        lstm_array_free(&a);
    }
    CHECK(no_tmp_files(), "npy temporary files left behind");
    /* a failing write keeps the previous file */
    int64_t neg[1] = {-1};
    CHECK(lstm_npy_write(tpath("rt.npy"), data, 1, neg) == LSTM_ERR_ARG, "negative dim");
    CHECK(lstm_npy_write(tpath("nodir/x.npy"), data, 1, shapes[1]) == LSTM_ERR_IO, "missing dir");
    lstm_array a;
    CHECK(lstm_npy_read(&a, tpath("rt.npy")) == LSTM_OK && a.ndim == 8, "previous npy intact");
    lstm_array_free(&a);
    CHECK(lstm_npy_read(&a, tpath("absent.npy")) == LSTM_ERR_IO && strstr(lstm_last_error(), "absent.npy: "),
          "absent npy: %s", lstm_last_error());

    /* versions, dtypes, layouts */
    NPY_OK(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    NPY_OK(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    NPY_OK(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    NPY_OK(1, "{\"shape\":(3,),\"descr\":\"<f8\",\"fortran_order\":False}", 24);
    NPY_OK(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1), }", 4);
    NPY_BAD(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, LSTM_ERR_DTYPE, "big-endian");
    NPY_BAD(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16, LSTM_ERR_DTYPE, "big-endian");
    NPY_BAD(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16, LSTM_ERR_DTYPE, "'<i8' not supported");
    NPY_BAD(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8, LSTM_ERR_DTYPE, "not supported");
    NPY_BAD(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, LSTM_ERR_DTYPE, "structured");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, LSTM_ERR_FORMAT, "Fortran");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23, LSTM_ERR_FORMAT,
            "truncated: expected 24 data bytes, got 23");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, LSTM_ERR_FORMAT, "unexpected bytes");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4, LSTM_ERR_SHAPE,
            "more than 8");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12, LSTM_ERR_FORMAT, "'shape'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 12, LSTM_ERR_FORMAT, "'shape'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,), }", 12, LSTM_ERR_FORMAT, "'shape'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 12, LSTM_ERR_FORMAT,
            "'shape'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 12,
            LSTM_ERR_FORMAT, "too large");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False}", 4, LSTM_ERR_FORMAT, "lacks 'shape'");
    NPY_BAD(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, LSTM_ERR_FORMAT,
            "duplicate key 'descr'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, LSTM_ERR_FORMAT, "key 'x'");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4, LSTM_ERR_FORMAT, "fortran_order");
    NPY_BAD(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 4, LSTM_ERR_FORMAT, "trailing");
    NPY_BAD(1, "['descr', '<f4']", 4, LSTM_ERR_FORMAT, "not a dict");
    NPY_BAD(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4, LSTM_ERR_FORMAT, "malformed");
    NPY_BAD(1, "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}", 4, LSTM_ERR_FORMAT, "malformed");
    NPY_BAD(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, LSTM_ERR_FORMAT, "version 4.0");
    {
        size_t size;
        unsigned char *b = mk_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, &size);
        lstm_array x;
        b[7] = 1; /* 1.1 */
        CHECK(lstm_npy_parse(&x, b, size) == LSTM_ERR_FORMAT, "version 1.1");
        b[7] = 0;
        b[0] = 0x92;
        CHECK(lstm_npy_parse(&x, b, size) == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "magic"), "magic");
        b[0] = 0x93;
        unsigned char b8 = b[8];
        b[8] = 0xFF; /* header length beyond the file */
        CHECK(lstm_npy_parse(&x, b, size) == LSTM_ERR_FORMAT && strstr(lstm_last_error(), "exceeds"), "hlen: %s",
              lstm_last_error());
        b[8] = b8;
        CHECK(lstm_npy_parse(&x, b, size) == LSTM_OK, "restored image parses");
        lstm_array_free(&x);
        for (size_t cut = 0; cut < size; cut++) { /* every truncation fails cleanly */
            lstm_status s = lstm_npy_parse(&x, b, cut);
            CHECK(s != LSTM_OK, "truncated to %zu bytes parses", cut);
            if (s == LSTM_OK) lstm_array_free(&x);
        }
        free(b);
        /* the f8 data converts with rounding */
        b = mk_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, &size);
        double v[2] = {1.0 / 3.0, -1e300};
        for (int k = 0; k < 2; k++) {
            uint64_t u;
            memcpy(&u, &v[k], 8);
            for (int q = 0; q < 8; q++) b[size - 16 + 8 * k + q] = (unsigned char)(u >> (8 * q));
        }
        CHECK(lstm_npy_parse(&x, b, size) == LSTM_OK && x.data[0] == (float)v[0] && x.data[1] == -INFINITY, "<f8 values");
        lstm_array_free(&x);
        free(b);
    }
}

/* ---------------------------------------------------------------- models */

/* Saves net's tensors (prefix + name) plus extra entries, optionally with one
 * tensor's shape replaced or dropped, via lstm_st_write. */
static lstm_status save_variant(const char *path, const lstm_net *net, const char *prefix, const char *drop,
                                const char *reshape, int64_t r0, int64_t r1, const lstm_st_entry *extra, int nextra) {
    lstm_tensor_info ti[64];
    int n = lstm_net_tensors(net, ti);
    lstm_st_entry e[80];
    char names[80][96];
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (drop && strcmp(ti[k].name, drop) == 0) continue;
        if (snprintf(names[m], sizeof names[m], "%s%s", prefix, ti[k].name) >= (int)sizeof names[m]) return LSTM_ERR_ARG;
        e[m].name = names[m];
        e[m].ndim = ti[k].ndim;
        e[m].shape[0] = ti[k].shape[0];
        e[m].shape[1] = ti[k].shape[1];
        e[m].data = net->params + ti[k].offset;
        if (reshape && strcmp(ti[k].name, reshape) == 0) {
            e[m].shape[0] = r0;
            e[m].shape[1] = r1;
        }
        m++;
    }
    for (int k = 0; k < nextra; k++) e[m++] = extra[k];
    return lstm_st_write(path, e, m, NULL);
}

static void load_expect(int line, const char *path, const char *prefix, lstm_status want, const char *msg) {
    lstm_net net;
    memset(&net, 0xAB, sizeof net);
    lstm_status s = lstm_net_load(&net, path, prefix);
    const char *e = lstm_last_error();
    CHECK(s == want, "line %d: load status %s, expected %s (%s)", line, lstm_status_str(s), lstm_status_str(want), e);
    if (s != LSTM_OK) {
        CHECK(net.params == NULL && net.w == NULL && net.n_params == 0, "line %d: net not zeroed on failure", line);
        CHECK(strncmp(e, path, strlen(path)) == 0 && e[strlen(path)] == ':', "line %d: message lacks the path: %s", line,
              e);
        CHECK(!msg || strstr(e, msg), "line %d: message '%s' lacks '%s'", line, e, msg);
    }
    lstm_net_free(&net);
}
#define LOAD_BAD(path, prefix, st, msg) load_expect(__LINE__, path, prefix, st, msg)

static void test_models(void) {
    static const lstm_config cfgs[] = {
        {3, 5, 1, 0, 1, 0, 0}, {3, 5, 2, 0, 1, 1, 0}, {4, 6, 3, 2, 0, 0, 0}, {2, 5, 2, 3, 1, 1, 0}, {1, 1, 1, 0, 0, 0, 0},
        /* GRUs, told from LSTMs by the shapes (H = 4: weight_hh [12, 4], an LSTM's H = 3 has [12, 3]) */
        {3, 4, 1, 0, 1, 0, LSTM_CELL_GRU}, {3, 5, 2, 0, 1, 1, LSTM_CELL_GRU}, {1, 1, 1, 0, 0, 0, LSTM_CELL_GRU},
        {4, 3, 2, 0, 1, 0, LSTM_CELL_LSTM},
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        lstm_net net, back;
        CHECK(lstm_net_init(&net, &cfgs[c]) == LSTM_OK, "init");
        lstm_net_init_uniform(&net, 7 + c);
        const char *p = tpath("model.safetensors");
        const char *prefix = c % 2 ? "lstm." : "";
        CHECK(lstm_net_save(&net, p, prefix) == LSTM_OK, "save: %s", lstm_last_error());
        lstm_status s = lstm_net_load(&back, p, prefix);
        CHECK(s == LSTM_OK, "load cfg %zu: %s", c, lstm_last_error());
        if (s == LSTM_OK) {
            CHECK(memcmp(&back.cfg, &net.cfg, sizeof net.cfg) == 0, "cfg %zu inferred: I%d H%d L%d P%d b%d bi%d cell%d",
                  c, back.cfg.input_size, back.cfg.hidden_size, back.cfg.num_layers, back.cfg.proj_size, back.cfg.bias,
                  back.cfg.bidirectional, back.cfg.cell);
            CHECK(back.n_params == net.n_params && memcmp(back.params, net.params, net.n_params * 4) == 0,
                  "cfg %zu params round trip", c);
            lstm_net_free(&back);
        }
        lstm_st_file f;
        if (lstm_st_read(&f, p) == LSTM_OK) {
            CHECK(lstm_st_meta(&f, "format") && strcmp(lstm_st_meta(&f, "format"), "pt") == 0, "format metadata");
            lstm_st_free(&f);
        }
        lstm_net_free(&net);
    }

    /* the error cases, on a 2-layer bidirectional projected net with bias */
    lstm_config cfg = {3, 5, 2, 2, 1, 1, LSTM_CELL_LSTM};
    lstm_net net;
    lstm_net_init(&net, &cfg);
    lstm_net_init_uniform(&net, 1);
    const char *p = tpath("bad.safetensors");
    float z[4] = {0};
    lstm_st_entry other = {"head.weight", 2, {2, 2}, z}, extra = {"lstm.weight_ih_l0_x", 1, {1}, z},
                  gap = {"lstm.weight_ih_l3", 2, {20, 4}, NULL};
    /* tensors outside the prefix are ignored */
    save_variant(p, &net, "lstm.", NULL, NULL, 0, 0, &other, 1);
    LOAD_BAD(p, "lstm.", LSTM_OK, NULL);
    LOAD_BAD(p, "", LSTM_ERR_MISSING, "tensor 'weight_ih_l0' not found (no LSTM or GRU under prefix '')");
    LOAD_BAD(p, "rnn.", LSTM_ERR_MISSING, "no LSTM or GRU under prefix 'rnn.'");
    /* from an already-parsed file */
    {
        lstm_st_file f;
        lstm_net n2;
        CHECK(lstm_st_read(&f, p) == LSTM_OK, "read");
        CHECK(lstm_net_from_st(&n2, &f, "x.st", "lstm.") == LSTM_OK && n2.n_params == net.n_params &&
                  memcmp(n2.params, net.params, net.n_params * 4) == 0,
              "lstm_net_from_st: %s", lstm_last_error());
        lstm_net_free(&n2);
        CHECK(lstm_net_from_st(&n2, &f, "x.st", "") == LSTM_ERR_MISSING && strncmp(lstm_last_error(), "x.st: ", 6) == 0,
              "from_st message: %s", lstm_last_error());
        lstm_st_free(&f);
    }
    save_variant(p, &net, "lstm.", NULL, NULL, 0, 0, &extra, 1);
    LOAD_BAD(p, "lstm.", LSTM_ERR_EXTRA, "unexpected tensor 'lstm.weight_ih_l0_x'");
    save_variant(p, &net, "", NULL, NULL, 0, 0, &other, 1);
    LOAD_BAD(p, "", LSTM_ERR_EXTRA, "unexpected tensor 'head.weight'");
    save_variant(p, &net, "lstm.", "bias_hh_l1_reverse", NULL, 0, 0, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_MISSING, "tensor 'lstm.bias_hh_l1_reverse' not found (expected shape [20])");
    save_variant(p, &net, "lstm.", "weight_hr_l1", NULL, 0, 0, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_MISSING, "'lstm.weight_hr_l1' not found");
    save_variant(p, &net, "lstm.", "weight_ih_l1", NULL, 0, 0, NULL, 0); /* L inferred as 1: layer 1 is extra */
    LOAD_BAD(p, "lstm.", LSTM_ERR_EXTRA, "unexpected tensor 'lstm.weight_hh_l1'");
    save_variant(p, &net, "lstm.", "weight_hh_l1", "weight_hh_l1", 0, 0, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_MISSING, "'lstm.weight_hh_l1' not found (expected shape [20, 2])");
    save_variant(p, &net, "lstm.", NULL, "weight_hh_l1", 20, 1, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "tensor 'lstm.weight_hh_l1': expected shape [20, 2], got [20, 1]");
    save_variant(p, &net, "lstm.", NULL, "weight_ih_l1", 20, 5, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "tensor 'lstm.weight_ih_l1': expected shape [20, 4], got [20, 5]");
    save_variant(p, &net, "lstm.", NULL, "weight_ih_l0_reverse", 20, 2, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "expected shape [20, 3], got [20, 2]");
    save_variant(p, &net, "lstm.", NULL, "weight_hh_l0", 18, 2, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "multiple of 4");
    save_variant(p, &net, "lstm.", NULL, "weight_hr_l0", 5, 2, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "proj_size 5 must be smaller than hidden_size 5");
    save_variant(p, &net, "lstm.", NULL, "weight_ih_l0", 20, 0, NULL, 0);
    LOAD_BAD(p, "lstm.", LSTM_ERR_SHAPE, "got [20, 0]");
    gap.data = net.params;
    save_variant(p, &net, "lstm.", NULL, NULL, 0, 0, &gap, 1); /* a layer 3 without layer 2 */
    LOAD_BAD(p, "lstm.", LSTM_ERR_EXTRA, "'lstm.weight_ih_l3'");
    LOAD_BAD(tpath("absent.safetensors"), "", LSTM_ERR_IO, "cannot open");
    lstm_net_free(&net);

    /* dtypes: an F16/BF16/F64 model converts; an I32 weight is refused */
    {
        /* I=1, H=1, no bias: weight_ih_l0 [4,1] F16, weight_hh_l0 [4,1] BF16 */
        size_t size;
        unsigned char *b = mk_st("{\"weight_ih_l0\":{\"dtype\":\"F16\",\"shape\":[4,1],\"data_offsets\":[0,8]},"
                                 "\"weight_hh_l0\":{\"dtype\":\"BF16\",\"shape\":[4,1],\"data_offsets\":[8,16]}}",
                                 16, &size);
        static const unsigned char d[16] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C,  /* 1, -2, 2^-24, inf */
                                            0x80, 0x3F, 0xC0, 0xBF, 0x00, 0x80, 0x49, 0x40}; /* 1, -1.5, -0, 3.140625 */
        memcpy(b + size - 16, d, 16);
        lstm_st_file f;
        lstm_net n2;
        CHECK(lstm_st_parse(&f, b, size) == LSTM_OK, "parse f16 model: %s", lstm_last_error());
        lstm_status s = lstm_net_from_st(&n2, &f, "h.st", "");
        CHECK(s == LSTM_OK, "load f16 model: %s", lstm_last_error());
        if (s == LSTM_OK) {
            const float want[8] = {1, -2, 0x1p-24f, INFINITY, 1, -1.5f, -0.0f, 3.140625f};
            int ok = n2.n_params == 8;
            for (int k = 0; ok && k < 8; k++) ok = fbits(n2.params[k]) == fbits(want[k]);
            CHECK(ok, "f16/bf16 model values");
            lstm_net_free(&n2);
        }
        lstm_st_free(&f);
        b = mk_st("{\"weight_ih_l0\":{\"dtype\":\"I32\",\"shape\":[4,1],\"data_offsets\":[0,16]},"
                  "\"weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[16,32]}}",
                  32, &size);
        CHECK(lstm_st_parse(&f, b, size) == LSTM_OK, "parse i32 model");
        s = lstm_net_from_st(&n2, &f, "i.st", "");
        CHECK(s == LSTM_ERR_DTYPE && strstr(lstm_last_error(), "i.st: tensor 'weight_ih_l0': dtype I32"), "I32: %s",
              lstm_last_error());
        lstm_st_free(&f);
        b = mk_st("{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]},"
                  "\"weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[16,32]},"
                  "\"bias_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]},"
                  "\"bias_hh_l0\":{\"dtype\":\"U32\",\"shape\":[4],\"data_offsets\":[48,64]}}",
                  64, &size);
        CHECK(lstm_st_parse(&f, b, size) == LSTM_OK, "parse u32 bias model");
        s = lstm_net_from_st(&n2, &f, "u.st", "");
        CHECK(s == LSTM_ERR_DTYPE && strstr(lstm_last_error(), "u.st: tensor 'bias_hh_l0': dtype U32"), "U32: %s",
              lstm_last_error());
        lstm_st_free(&f);
    }
}

static int read_file_is(const char *path, const char *want) {
    char buf[64] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    return f && n == strlen(want) && memcmp(buf, want, n) == 0;
}

/* A regular file this user may not write is refused (LSTM_ERR_IO naming it,
 * "cannot write: Permission denied"), not replaced by the rename, and no
 * temporary is left; as root (who may write anything) the save runs in a
 * child that has become user and group 65534.  Writable again, the same save
 * replaces it. */
static void test_read_only(void) {
    lstm_config cfg = {.input_size = 3, .hidden_size = 4, .num_layers = 1, .bias = 1};
    lstm_net net;
    CHECK(lstm_net_init(&net, &cfg) == LSTM_OK, "init");
    lstm_net_init_uniform(&net, 1);
    char dir[300], path[320];
    snprintf(dir, sizeof dir, "%s", tpath("ro"));
    snprintf(path, sizeof path, "%s/m.st", dir);
    FILE *f = NULL;
    int ok = chmod(tmpdir, 0755) == 0 && mkdir(dir, 0777) == 0 && chmod(dir, 0777) == 0 && (f = fopen(path, "wb")) &&
             fputs("precious", f) >= 0;
    if (f) ok &= fclose(f) == 0;
    CHECK(ok && chmod(path, 0444) == 0, "setup of %s", path);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgroups(0, NULL), setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
        lstm_status s = lstm_net_save(&net, path, "");
        const char *e = lstm_last_error();
        _exit(s == LSTM_ERR_IO && strstr(e, "m.st: cannot write: Permission denied") && !strchr(e, '\n') ? 0 : 1);
    }
    int wst = 0;
    CHECK(pid > 0 && waitpid(pid, &wst, 0) == pid, "fork/wait");
    DIR *d = opendir(dir);
    struct dirent *de;
    int tmps = 0;
    while (d && (de = readdir(d))) tmps += strstr(de->d_name, ".lstm-tmp.") != NULL;
    if (d) closedir(d);
    CHECK_V(WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && read_file_is(path, "precious") && tmps == 0,
            "save onto a read-only file%s: LSTM_ERR_IO \"cannot write: Permission denied\" (child exit %d), the file "
            "kept, %d temporaries left",
            geteuid() == 0 ? " (as user 65534)" : "", WIFEXITED(wst) ? WEXITSTATUS(wst) : -1, tmps);
    const lstm_status s = chmod(path, 0644) == 0 ? lstm_net_save(&net, path, "") : LSTM_ERR_IO;
    CHECK_V(s == LSTM_OK && !read_file_is(path, "precious"), "the same save once the file is writable: %s, replaced",
            lstm_status_str(s));
    lstm_net_free(&net);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lstm_test_formats.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_st_roundtrip();
    test_st_bad();
    test_conversion();
    test_npy();
    test_models();
    test_read_only();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return TEST_REPORT();
}
