/* fuzz_safetensors.c — libFuzzer target: lstm_st_parse on arbitrary bytes,
 * then every float tensor converted, then lstm_net_from_st (prefix ""). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"

static void check_image(unsigned char *buf, size_t size) {
    lstm_st_file f;
    if (lstm_st_parse(&f, buf, size) != LSTM_OK) return; /* buf is freed */
    for (int k = 0; k < f.n_tensors; k++) {
        const lstm_st_tensor *t = &f.tensors[k];
        if (lstm_st_find(&f, t->name) == NULL) abort(); /* every parsed name is findable */
        if (t->offset + t->nbytes > f.data_size) abort();
        if (t->dtype == LSTM_DT_OTHER) continue;
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (out) {
            if (lstm_st_to_f32(&f, t, out) != LSTM_OK) abort();
            free(out);
        }
    }
    for (int k = 0; k < f.n_meta; k++)
        if (lstm_st_meta(&f, f.meta_keys[k]) == NULL) abort();
    lstm_net net;
    if (lstm_net_from_st(&net, &f, "<fuzz>", "") == LSTM_OK) lstm_net_free(&net);
    else if (net.params != NULL) abort(); /* a failed load leaves the net zeroed */
    lstm_st_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the image as given (an exact-size heap copy, so ASan sees overreads) */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    check_image(buf, size);
    /* and with the length field fixed up to end the header at the last '}',
     * so that mutations inside the JSON are not all stopped by the length */
    size_t end = 0;
    for (size_t k = size; k > 8; k--)
        if (data[k - 1] == '}') {
            end = k;
            break;
        }
    if (end) {
        buf = malloc(size);
        if (!buf) return 0;
        memcpy(buf, data, size);
        uint64_t hl = end - 8;
        for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(hl >> (8 * k));
        check_image(buf, size);
    }
    return 0;
}
