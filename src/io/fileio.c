/* fileio.c — whole-file reads, atomic writes (tmp + fsync + rename; devices
 * and FIFOs written directly) and printable names for error messages.  See fileio.h. */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
        /* a device is never a model or data file, and /dev/zero or /dev/urandom would be read until memory runs out */
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            fclose(fp);
            return lstm__fail(LSTM_ERR_IO, "%s: is a device, not a file", path);
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

/* Output files: a temporary file beside the target, then rename.  See fileio.h. */
typedef struct {
    char *target;       /* resolved path (a symlink's target), malloc'd */
    struct stat st;     /* of target, when exists */
    int exists;
} dest_info;

/* Resolves path to the file a write must change.  A symlink is followed to
 * its target (realpath); a dangling one is refused, as GNU cp does. */
static lstm_status resolve_dest(const char *path, dest_info *d) {
    memset(d, 0, sizeof *d);
    if (!*path) return lstm__fail(LSTM_ERR_ARG, "an output path is empty");
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        d->target = realpath(path, NULL);
        if (!d->target)
            return lstm__fail(LSTM_ERR_IO, "%s: a symbolic link whose target cannot be resolved (%s): not written through",
                              path, strerror(errno));
    } else {
        d->target = strdup(path);
        if (!d->target) return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (stat(d->target, &d->st) == 0) {
        d->exists = 1;
        /* a regular file this user may not write is refused, not replaced by the rename
         * (which needs only the directory): open(O_WRONLY) and cp refuse it too */
        const int dir = S_ISDIR(d->st.st_mode);
        const int e = !dir && S_ISREG(d->st.st_mode) && faccessat(AT_FDCWD, d->target, W_OK, AT_EACCESS) != 0 ? errno : 0;
        if (dir || e) {
            free(d->target);
            d->target = NULL;
            return dir ? lstm__fail(LSTM_ERR_IO, "%s: is a directory", path)
                       : lstm__fail(LSTM_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        }
    }
    return LSTM_OK;
}

/* Splits path into its directory (malloc'd; "." when none) and its last name. */
static char *dir_of(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* Temporary names: DIR/.NAME.lstm-tmp.PID.RANDOM (NAME cut to TMP_BASE bytes so
 * the whole stays under NAME_MAX). */
#define TMP_BASE 200
#define TMP_TAG ".lstm-tmp."

/* Removes DIR/.NAME.lstm-tmp.PID.* files that this user owns, whose process
 * is gone (a run killed before it could clean up) and that nothing has written
 * for STALE_AGE seconds: a writer in another PID namespace sharing the
 * directory (a container) has a PID we cannot see, but it writes its
 * temporary in seconds, so a recent one is left alone. */
#define STALE_AGE 3600
static void remove_stale(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return;
    char prefix[TMP_BASE + 32];
    int np = snprintf(prefix, sizeof prefix, ".%.*s" TMP_TAG, TMP_BASE, base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, (size_t)np) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        if (end == e->d_name + np || *end != '.' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid() && time(NULL) - st.st_mtime > STALE_AGE)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static uint64_t tmp_random(void) {
    static uint64_t counter; /* atomic: saves of different models may run in parallel threads */
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &r, sizeof r) != (ssize_t)sizeof r) r = 0;
        close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15ull);
    r ^= r >> 31;
    r *= 0xBF58476D1CE4E5B9ull;
    return r ^ (r >> 29);
}

int lstm__fd_alias(const char *path) {
    /* the spelling with "//" and "/./" taken out (/dev//stdout was written as a file: a rename
     * replaced what stdout's file held); the aliases are short */
    char q[64];
    size_t n_q = 0;
    for (const char *s = path; *s; s++) {
        if (*s == '/' && s[1] == '/') continue;                                /* "//": one '/' */
        if (*s == '/' && s[1] == '.' && (s[2] == '/' || !s[2])) { s++; continue; } /* "/./": "/" */
        if (n_q + 1 >= sizeof q) return -1;
        q[n_q++] = *s;
    }
    q[n_q] = '\0';
    path = q;
    if (!strcmp(path, "/dev/stdin")) return 0;
    if (!strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    char own[40]; /* /proc/PID/fd/ of this process */
    snprintf(own, sizeof own, "/proc/%ld/fd/", (long)getpid());
    const char *p = !strncmp(path, "/dev/fd/", 8)              ? path + 8
                    : !strncmp(path, "/proc/self/fd/", 14)        ? path + 14
                    : !strncmp(path, "/proc/thread-self/fd/", 21) ? path + 21
                    : !strncmp(path, own, strlen(own))            ? path + strlen(own)
                                                                  : NULL;
    if (!p || *p < '0' || *p > '9') return -1;
    long n = 0;
    for (; *p >= '0' && *p <= '9' && n < INT_MAX / 10; p++) n = 10 * n + (*p - '0'); /* (no overflow of a 32-bit long) */
    return *p || n > INT_MAX ? -1 : (int)n;
}

FILE *lstm__fd_alias_open(int fd) {
    fflush(stdout); /* what was printed before comes first (fd 1, or a copy of it) */
    fflush(stderr);
    const int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    /* "wb" on a descriptor truncates nothing ("a" would set O_APPEND on the caller's too) */
    FILE *f = d >= 0 ? fdopen(d, "wb") : NULL;
    if (!f && d >= 0) {
        const int e = errno;
        close(d);
        errno = e;
    }
    return f;
}

lstm_status lstm__afile_open(lstm__afile *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->path = path;
    const int alias = lstm__fd_alias(path);
    if (alias >= 0) { /* the descriptor itself, at its offset (see fileio.h) */
        if (!(a->fp = lstm__fd_alias_open(alias)))
            return lstm__fail(LSTM_ERR_IO, "%s: descriptor %d: %s", path, alias, strerror(errno));
        return LSTM_OK;
    }
    dest_info d;
    lstm_status st = resolve_dest(path, &d);
    if (st) return st;
    a->target = d.target;
    int fd = -1;
    if (d.exists && !S_ISREG(d.st.st_mode)) {
        /* a device or FIFO: write into it; a rename would replace it by a file */
        fd = open(a->target, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            lstm__afile_abort(a);
            return lstm__fail(LSTM_ERR_IO, "%s: cannot open for writing: %s", path, strerror(e));
        }
    } else {
        const char *base;
        char *dir = dir_of(a->target, &base);
        size_t cap = strlen(a->target) + TMP_BASE + 64;
        a->tmp = malloc(cap);
        if (!dir || !a->tmp) {
            free(dir);
            lstm__afile_abort(a);
            return lstm__fail(LSTM_ERR_NOMEM, "%s: out of memory", path);
        }
        remove_stale(dir, base);
        int e = 0;
        for (int tries = 0; tries < 100 && fd < 0; tries++) {
            snprintf(a->tmp, cap, "%s/.%.*s" TMP_TAG "%ld.%016" PRIx64, dir, TMP_BASE, base, (long)getpid(),
                     tmp_random());
            /* O_EXCL | O_NOFOLLOW: a file or link planted at the name is never followed or reused */
            fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            e = errno;
            if (fd < 0 && e != EEXIST) break;
        }
        free(dir);
        if (fd < 0) {
            free(a->tmp);
            a->tmp = NULL;
            lstm__afile_abort(a);
            return lstm__fail(LSTM_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
        }
        if (d.exists) (void)fchmod(fd, d.st.st_mode & 07777); /* replacing a file keeps its permissions */
    }
    a->fp = fdopen(fd, "wb");
    if (!a->fp) {
        int e = errno;
        close(fd);
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_IO, "%s: %s", path, strerror(e));
    }
    return LSTM_OK;
}

void lstm__afile_abort(lstm__afile *a) {
    if (a->fp) fclose(a->fp);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    free(a->target);
    a->fp = NULL;
    a->tmp = NULL;
    a->target = NULL;
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
    const char *base;
    char *dir = dir_of(path, &base);
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse it */
        close(fd);
    }
    free(dir);
}

lstm_status lstm__afile_close(lstm__afile *a) {
    const char *what = NULL;
    int e = 0;
    if (fflush(a->fp) != 0 || ferror(a->fp)) what = "write failed", e = errno ? errno : EIO;
    else if (a->tmp && fsync(fileno(a->fp)) != 0) what = "fsync failed", e = errno;
    int rc = fclose(a->fp);
    a->fp = NULL;
    if (!what && rc != 0) what = "close failed", e = errno;
    if (what) {
        lstm__afile_abort(a);
        return lstm__fail(LSTM_ERR_IO, "%s: %s: %s", a->path, what, strerror(e));
    }
    return LSTM_OK;
}

lstm_status lstm__afile_rename(lstm__afile *a) {
    if (a->tmp) {
        if (rename(a->tmp, a->target) != 0) {
            int e = errno;
            lstm__afile_abort(a);
            return lstm__fail(LSTM_ERR_IO, "%s: rename failed: %s", a->path, strerror(e));
        }
        free(a->tmp);
        a->tmp = NULL;
        sync_parent_dir(a->target);
    }
    free(a->target);
    a->target = NULL;
    return LSTM_OK;
}

lstm_status lstm__afile_commit(lstm__afile *a) {
    lstm_status st = lstm__afile_close(a);
    return st ? st : lstm__afile_rename(a);
}

void lstm__fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int k = 0; k < ndim && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (n < cap) snprintf(out + n, cap - n, "]");
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
