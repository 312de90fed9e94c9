/* basic.c — the README example: build a net, run forward and backward. */
#include <stdio.h>
#include <stdlib.h>
#include "lstm.h"

int main(void) {
    lstm_config cfg = {.input_size = 20, .hidden_size = 100, .num_layers = 2, .bias = 1};
    lstm_net net;
    if (lstm_net_init(&net, &cfg) != LSTM_OK) { fprintf(stderr, "%s\n", lstm_last_error()); return 1; }
    lstm_net_init_uniform(&net, 42);              /* or lstm_net_load(&net, "m.safetensors", "") */

    int T = 50, B = 8;
    float *x = calloc((size_t)T * B * 20, sizeof *x), *y = calloc((size_t)T * B * 100, sizeof *y);
    lstm_workspace *ws;
    lstm_workspace_init(&ws, &net, T, B, LSTM_WS_TRAIN);
    lstm_workspace_set_threads(ws, 2);           /* same bits for any thread count */

    lstm_net_zero_grad(&net);
    lstm_forward(&net, ws, T, B, x, NULL, NULL, y, NULL, NULL);   /* zero h0, c0 */
    /* ... dy = dLoss/dy ... here: y itself, i.e. L = ½Σy² */
    lstm_backward(&net, ws, y, NULL, NULL, NULL, NULL, NULL);     /* net.grads += dL/dθ */
    printf("%zu parameters, dL/dw[0] = %g\n", net.n_params, net.grads[0]);

    lstm_workspace_free(ws);
    lstm_net_free(&net);
    free(x); free(y);
    return 0;
}
