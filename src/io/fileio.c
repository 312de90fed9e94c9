/* fileio.c — whole-file reads, atomic writes (tmp + fsync + rename) and
 * printable names for error messages.  See fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

lstm_status lstm__read_file(const char *path, unsigned char **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return lstm__fail(LSTM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    size_t cap = 1 << 16;
    if (fstat(fileno(fp), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fclose(fp);
            return lstm__fail(LSTM_ERR_IO, "%s: is a directory", path);
        }
        if (S_ISREG(st.st_mode) && st.st_size >= 0 && (unsigned long long)st.st_size < (size_t)-1 / 2)
            cap = (size_t)st.st_size + 1; /* +1: reading hits EOF without a regrow */
    }
    unsigned char *b = malloc(cap);
    if (!b) {
        fclose(fp);
        return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > (size_t)-1 / 2) {
                free(b);
                fclose(fp);
                return lstm__fail(LSTM_ERR_NOMEM, "%s: file too large", path);
            }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(fp);
                return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap * 2);
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(fp) ? (errno ? errno : EIO) : 0;
    fclose(fp);
    if (err) {
        free(b);
        return lstm__fail(LSTM_ERR_IO, "%s: read error: %s", path, strerror(err));
    }
    *buf = b;
    *size = n;
    return LSTM_OK;
}

lstm_status lstm__afile_open(lstm__afile *a, const char *path) {
    a->fp = NULL;
    a->path = path;
    size_t len = strlen(path) + 48;
    a->tmp = malloc(len);
    if (!a->tmp) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(a->tmp, len, "%s.tmp.%ld", path, (long)getpid());
    /* O_EXCL would refuse a stale tmp from a crashed run with the same pid;
     * truncating it is fine since the name is ours. */
    a->fp = fopen(a->tmp, "wb");
    if (!a->fp) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return lstm__fail(LSTM_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    return LSTM_OK;
}

void lstm__afile_abort(lstm__afile *a) {
    if (a->fp) fclose(a->fp);
    if (a->tmp) remove(a->tmp);
    free(a->tmp);
    a->fp = NULL;
    a->tmp = NULL;
}

lstm_status lstm__afile_write(lstm__afile *a, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, a->fp) != n) {
        int e = errno;
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_IO, "%s: write failed: %s", a->path, strerror(e));
    }
    return LSTM_OK;
}

static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse it */
        close(fd);
    }
    free(dir);
}

lstm_status lstm__afile_commit(lstm__afile *a) {
    const char *what = NULL;
    int e = 0;
    if (fflush(a->fp) != 0) what = "write failed", e = errno;
    else if (fsync(fileno(a->fp)) != 0) what = "fsync failed", e = errno;
    int rc = fclose(a->fp);
    a->fp = NULL;
    if (!what && rc != 0) what = "close failed", e = errno;
    if (!what && rename(a->tmp, a->path) != 0) what = "rename failed", e = errno;
    if (what) {
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_IO, "%s: %s: %s", a->path, what, strerror(e));
    }
    free(a->tmp);
    a->tmp = NULL;
    sync_parent_dir(a->path);
    return LSTM_OK;
}

const char *lstm__printable(char *out, size_t cap, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (cap < 8) {
        if (cap) out[0] = 0;
        return out;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t need = (c < 0x20 || c == 0x7f || c == '\\') ? 4 : 1;
        if (n + need + 4 > cap) { /* room for "..." and NUL */
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 4) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
    return out;
}
