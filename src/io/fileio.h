/* fileio.h — private file helpers shared by the format readers and writers
 * (src/io/fileio.c): whole-file reads and atomic writes (tmp + fsync + rename),
 * and a printable copy of untrusted names for one-line error messages. */
#ifndef LSTM_FILEIO_H
#define LSTM_FILEIO_H

#include <stdio.h>

#include "internal.h"

/* Reads the whole file into a malloc'd buffer (*buf is non-NULL on success,
 * even for an empty file).  Messages start with path. */
lstm_status lstm__read_file(const char *path, unsigned char **buf, size_t *size);

/* Atomic writer.  open resolves path (a symbolic link is written through to
 * its target; a dangling one, a directory, "" or a regular file this user may
 * not write (faccessat W_OK: root may) is an error), then:
 *  - a regular file or a new name: creates DIR/.NAME.lstm-tmp.PID.RANDOM beside
 *    the target with O_CREAT|O_EXCL|O_NOFOLLOW (mode 0666 less the umask, or
 *    the permissions of the file it replaces), after removing such temporaries
 *    of this user whose process is gone; commit flushes, fsyncs, closes and
 *    renames it over the target;
 *  - an existing device or FIFO (/dev/null, /dev/full, a pipe): writes into
 *    it directly (a rename would replace it by a regular file);
 *  - an alias of an open descriptor (lstm__fd_alias: /dev/stdout, ...):
 *    writes into a dup of that descriptor, at its offset.
 * write appends; every error is reported.  abort (or a failed write, close,
 * rename) removes the temporary, leaving any previous file intact.
 * commit = close (flush, fsync, close) + rename; callers writing several files
 * all-or-nothing close each one, then rename each. */
typedef struct {
    FILE *fp;
    char *tmp;          /* NULL when writing the target directly */
    char *target;       /* path with a symlink resolved */
    const char *path;   /* as given, for messages */
} lstm__afile;

lstm_status lstm__afile_open(lstm__afile *a, const char *path);
/* The descriptor that path names when it is the kernel's alias of one this
 * process has open — /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N,
 * /proc/self/fd/N — else -1.  afile_open writes such a path through a copy
 * (dup) of that descriptor: opened again by name it would start at offset 0 of
 * a regular file behind it (overwriting what the shell wrote before, or an >>
 * append), a rename would replace that file, and a socket cannot be opened by
 * name at all. */
int lstm__fd_alias(const char *path);
/* A stream on a copy of descriptor fd (close-on-exec), after flushing stdout and
 * stderr; NULL with errno set when fd is not open. */
FILE *lstm__fd_alias_open(int fd);
/* On failure the temporary file is already removed (no abort needed). */
lstm_status lstm__afile_write(lstm__afile *a, const void *p, size_t n);
lstm_status lstm__afile_close(lstm__afile *a);
lstm_status lstm__afile_rename(lstm__afile *a);
lstm_status lstm__afile_commit(lstm__afile *a);
void lstm__afile_abort(lstm__afile *a);

/* An .npy image of data [shape] (format 1.0, '<f4') written into an open
 * afile; on failure the afile is aborted. */
lstm_status lstm__npy_put(lstm__afile *a, const float *data, int ndim, const int64_t *shape);

/* Copies s into out[cap] for messages: control bytes and backslashes become
 * \xNN, and long strings are cut with "...".  Returns out. */
const char *lstm__printable(char *out, size_t cap, const char *s);
/* "[d0, d1, ...]" into out[cap] (cut short if it does not fit), for messages. */
void lstm__fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape);

#endif
