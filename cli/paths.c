/* paths.c — the files a command reads and writes, checked before any work:
 * destinations are writable and not directories, no two of them (and no
 * destination and input) are the same file, by identity rather than by
 * spelling; and locks that keep two runs from writing the same files. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h" /* lstm__fnv1a */
#include "io/fileio.h"

/* What a path names: an existing file (dev, ino), or a name not yet there in
 * the directory (dev, ino of the directory + the last name).  Symlinks are
 * followed, as the writers do. */
typedef struct {
    int exists, chardev;
    dev_t dev;
    ino_t ino;
    const char *name; /* last component, for names not yet there */
} identity;

static char *dir_part(const char *path, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* 0 when the path (or its directory) cannot be examined. */
static int identify(const char *path, identity *id) {
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) == 0) {
        id->exists = 1;
        id->chardev = S_ISCHR(st.st_mode);
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return 1;
    }
    const char *base;
    char *dir = dir_part(path, &base);
    int ok = dir && stat(dir, &st) == 0;
    free(dir);
    if (!ok) return 0;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->name = base;
    return 1;
}

static int same(const identity *a, const identity *b) {
    if (a->exists != b->exists || a->dev != b->dev || a->ino != b->ino) return 0;
    if (a->exists) return !(a->chardev && b->chardev); /* /dev/null twice discards both: allowed */
    return strcmp(a->name, b->name) == 0;
}

static void check_dest(const cli_args *a, const cli_path *p) {
    if (!*p->path) cli_usage(a, "%s: expected a file name, got an empty string", p->flag);
    const int alias = lstm__fd_alias(p->path);
    if (alias >= 0) { /* /dev/stdout and the like: written through that descriptor (fileio.h) */
        const int fl = fcntl(alias, F_GETFL);
        if (fl < 0) cli_fail("%s: descriptor %d is not open (%s)", p->path, alias, p->flag);
        if ((fl & O_ACCMODE) == O_RDONLY) cli_fail("%s: descriptor %d is open for reading only (%s)", p->path, alias, p->flag);
        return;
    }
    struct stat lst, st;
    if (lstat(p->path, &lst) == 0 && S_ISLNK(lst.st_mode) && stat(p->path, &st) != 0)
        cli_fail("%s: a symbolic link whose target cannot be resolved (%s): not written through (%s)", p->path,
                 strerror(errno), p->flag);
    const int se = stat(p->path, &st) == 0 ? 0 : errno;
    /* not there is a new file; any other failure (a name too long, a component not a directory,
     * a loop of links, a directory we may not search) would fail the write only after the work */
    if (se && se != ENOENT) cli_fail("%s: cannot write: %s (%s)", p->path, strerror(se), p->flag);
    if (!se) {
        if (S_ISDIR(st.st_mode)) cli_fail("%s: is a directory (%s expects a file)", p->path, p->flag);
        if (!S_ISREG(st.st_mode)) { /* a device or FIFO is written into */
            if (access(p->path, W_OK) != 0) cli_fail("%s: cannot write: %s (%s)", p->path, strerror(errno), p->flag);
            return;
        }
        /* a file we may not write is not replaced either (cp refuses it too), though the rename could */
        if (faccessat(AT_FDCWD, p->path, W_OK, AT_EACCESS) != 0)
            cli_fail("%s: cannot write: %s (%s)", p->path, strerror(errno), p->flag);
    }
    /* a new file or a replaced one: a temporary is created beside the (resolved) target */
    char *real = NULL;
    if (lstat(p->path, &lst) == 0 && S_ISLNK(lst.st_mode)) real = realpath(p->path, NULL);
    const char *base;
    char *dir = dir_part(real ? real : p->path, &base);
    if (!dir) cli_fail("out of memory");
    if (stat(dir, &st) != 0) cli_fail("%s: cannot write into %s: %s (%s)", p->path, dir, strerror(errno), p->flag);
    if (!S_ISDIR(st.st_mode)) cli_fail("%s: %s is not a directory (%s)", p->path, dir, p->flag);
    if (access(dir, W_OK | X_OK) != 0) cli_fail("%s: cannot write into %s: %s (%s)", p->path, dir, strerror(errno), p->flag);
    free(dir);
    free(real);
}

void cli_check_paths(const cli_args *a, const cli_path *p, int n) {
    identity *id = calloc((size_t)n + 1, sizeof *id);
    int *known = calloc((size_t)n + 1, sizeof *known);
    if (!id || !known) cli_fail("out of memory");
    for (int i = 0; i < n; i++) {
        if (!p[i].path) continue;
        if (p[i].dest) check_dest(a, &p[i]);
        known[i] = *p[i].path && identify(p[i].path, &id[i]);
    }
    /* every pair with a destination in it: a destination (a few) against every path (a corpus
     * directory may give 10^5 inputs: all pairs of 120000 took 7 s) */
    for (int d = 0; d < n; d++) {
        if (!p[d].dest || !known[d]) continue;
        for (int o = 0; o < n; o++) {
            if (o == d || !known[o] || (p[o].dest && o < d) || !same(&id[d], &id[o])) continue; /* (two dests: once) */
            const int i = d < o ? d : o, j = d < o ? o : d;
            if ((p[i].allow_same && !strcmp(p[i].allow_same, p[j].flag)) ||
                (p[j].allow_same && !strcmp(p[j].allow_same, p[i].flag)))
                continue;
            cli_usage(a, "%s %s and %s %s are the same file", p[i].flag, p[i].path, p[j].flag, p[j].path);
        }
    }
    free(id);
    free(known);
}

/* ---------------------------------------------------------------- locks */

static char *locks[8];
static int lock_fds[8], n_locks;

static void release_locks(void) {
    for (int i = 0; i < n_locks; i++) { /* unlink first: a waiting run re-checks identity */
        unlink(locks[i]);
        close(lock_fds[i]);
        free(locks[i]);
    }
    n_locks = 0;
}

void cli_locks_unlink(void) {
    for (int i = 0; i < n_locks; i++) unlink(locks[i]);
}

void cli_lock(const char *path, const char *flag) {
    if (lstm__fd_alias(path) >= 0) return; /* a descriptor we were given: nothing to protect */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return; /* devices, FIFOs: nothing to protect */
    char *real = NULL;
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) real = realpath(path, NULL);
    const char *base;
    char *dir = dir_part(real ? real : path, &base);
    size_t cap = (dir ? strlen(dir) : 0) + strlen(base) + 40;
    char *lk = malloc(cap);
    if (!dir || !lk || n_locks == (int)(sizeof locks / sizeof locks[0])) cli_fail("out of memory");
    if (strlen(base) <= NAME_MAX - 6) {
        snprintf(lk, cap, "%s/.%s.lock", dir, base);
    } else { /* ".NAME.lock" would be too long: a cut NAME and the whole name's hash, so that two
              * names alike in their first bytes (OUT and OUT.ckpt) still take two locks */
        snprintf(lk, cap, "%s/.%.*s-%016" PRIx64 ".lock", dir, NAME_MAX - 23, base,
                 lstm__fnv1a(LSTM__FNV1A_INIT, base, strlen(base)));
    }
    free(dir);
    free(real);
    for (int tries = 0;; tries++) {
        int fd = open(lk, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) cli_fail("%s: cannot create the lock file %s: %s", path, lk, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK)
                cli_fail("%s: another lstm run is writing it (%s is locked); %s must differ between runs", path, lk, flag);
            cli_fail("%s: cannot lock %s: %s", path, lk, strerror(e));
        }
        /* the holder may have unlinked it between our open and flock: then retry */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lk, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            if (n_locks == 0) atexit(release_locks);
            locks[n_locks] = lk;
            lock_fds[n_locks++] = fd;
            return;
        }
        close(fd);
        if (tries > 100) cli_fail("%s: cannot take the lock %s", path, lk);
    }
}
