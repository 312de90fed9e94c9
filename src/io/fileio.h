/* fileio.h — private file helpers shared by the format readers and writers
 * (src/fileio.c): whole-file reads and atomic writes (tmp + fsync + rename),
 * and a printable copy of untrusted names for one-line error messages. */
#ifndef LSTM_FILEIO_H
#define LSTM_FILEIO_H

#include <stdio.h>

#include "internal.h"

/* Reads the whole file into a malloc'd buffer (*buf is non-NULL on success,
 * even for an empty file).  Messages start with path. */
lstm_status lstm__read_file(const char *path, unsigned char **buf, size_t *size);

/* Atomic writer: open creates path.tmp.PID; write appends; commit flushes,
 * fsyncs, closes and renames over path; abort (or a failed write/commit)
 * removes the temporary file, leaving any previous file at path intact. */
typedef struct {
    FILE *fp;
    char *tmp;
    const char *path;
} lstm__afile;

lstm_status lstm__afile_open(lstm__afile *a, const char *path);
/* On failure the temporary file is already removed (no abort needed). */
lstm_status lstm__afile_write(lstm__afile *a, const void *p, size_t n);
lstm_status lstm__afile_commit(lstm__afile *a);
void lstm__afile_abort(lstm__afile *a);

/* Copies s into out[cap] for messages: control bytes and backslashes become
 * \xNN, and long strings are cut with "...".  Returns out. */
const char *lstm__printable(char *out, size_t cap, const char *s);

#endif
