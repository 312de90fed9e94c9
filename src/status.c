/* status.c — status names and the per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[512];

const char *lstm_status_str(lstm_status s) {
    switch (s) {
    case LSTM_OK: return "ok";
    case LSTM_ERR_NOMEM: return "out of memory";
    case LSTM_ERR_IO: return "I/O error";
    case LSTM_ERR_FORMAT: return "malformed file";
    case LSTM_ERR_DTYPE: return "unsupported dtype";
    case LSTM_ERR_SHAPE: return "shape mismatch";
    case LSTM_ERR_MISSING: return "missing tensor";
    case LSTM_ERR_EXTRA: return "unexpected tensor";
    case LSTM_ERR_ARG: return "invalid argument";
    case LSTM_ERR_NONFINITE: return "non-finite value";
    }
    return "unknown status";
}

const char *lstm_last_error(void) { return last_error; }

lstm_status lstm__fail(lstm_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
