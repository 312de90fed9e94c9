/* fuzz_npy.c — libFuzzer target: lstm_npy_parse on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size heap copy, so ASan catches any read past the end */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    lstm_array a;
    if (lstm_npy_parse(&a, buf, size) == LSTM_OK) {
        size_t numel = 1;
        for (int k = 0; k < a.ndim; k++) numel *= (size_t)a.shape[k];
        if (a.ndim < 0 || a.ndim > 8 || numel != a.numel || !a.data) abort();
        volatile float sink = 0;
        for (size_t k = 0; k < a.numel; k++) sink += a.data[k]; /* every element is readable */
        (void)sink;
        lstm_array_free(&a);
    } else if (a.data != NULL) {
        abort();
    }
    free(buf);
    return 0;
}
