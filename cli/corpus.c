/* corpus.c — the training text of lstm train, memory-mapped (never read
 * whole into memory, so a corpus of many GB trains in bounded memory).
 *
 * --data is a comma-separated list of files and directories, taken in the
 * order given; a directory stands for its regular files (not links, not
 * subdirectories, names starting with '.' skipped) in byte-wise (strcmp)
 * order of their names.  One regular file is mapped as it is; several (or a
 * pipe, which cannot be mapped) are joined,
 * in that order, into an unlinked temporary file (in $TMPDIR, default /tmp)
 * that is mapped, so their bytes are one sequence without a copy in memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "dist.h"
#include "io/fileio.h"
#include "internal.h"

typedef struct {
    char **v;
    int n, cap;
} names;

static void push(names *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        if (!l->v) cli_fail("out of memory listing the data files");
    }
    if (!(l->v[l->n++] = strdup(s))) cli_fail("out of memory listing the data files");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A directory's regular files, sorted byte-wise. */
static void list_dir(names *out, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) cli_fail("%s: cannot open the directory: %s", dir, strerror(errno));
    names l = {0};
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        struct stat st;
        if (!p) cli_fail("out of memory listing %s", dir);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0) {
            if (S_ISREG(st.st_mode)) push(&l, p);
        } else if (errno != ENOENT) { /* (gone since the listing: skipped) */
            cli_fail("%s: cannot examine: %s", p, strerror(errno));
        }
        free(p);
        errno = 0;
    }
    if (errno) cli_fail("%s: cannot list the directory: %s", dir, strerror(errno));
    closedir(d);
    qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    for (int i = 0; i < l.n; i++) {
        push(out, l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
}

/* The mapping is of the file itself: if another program makes the file shorter
 * while we train, reading a page past its new end raises SIGBUS (BUS_ADRERR; a
 * read error of the device under it, BUS_OBJERR).  A SIGBUS the kernel raises
 * inside the mapping becomes one line and exit 1 (the last checkpoint, if any,
 * is kept; the lock files are removed); any other SIGBUS is not ours and kills
 * as before.  (A file rewritten in place, not shortened, is read as it now is:
 * the data must not change while it trains; TRAINING.md, "Corpora of any size".) */
static const unsigned char *bus_lo;
static int bus_fd = 2; /* stderr, or under mpirun on a rank above 0 the job's (cli_dist_err_fd) */
static size_t bus_n, bus_len[2];
static char bus_msg[2][640];

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    const unsigned char *a = si->si_addr;
    if (si->si_code > 0 && bus_lo && a >= bus_lo && a < bus_lo + bus_n) { /* (> 0: from the kernel, not kill) */
        const int k = si->si_code == BUS_ADRERR ? 0 : 1;
        ssize_t w = write(bus_fd, bus_msg[k], bus_len[k]);
        (void)w;
        cli_locks_unlink();
        _exit(1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* 0, or with may_fail -1 where the file cannot be mapped (a procfs or sysfs file: its size
 * reads 0, or mmap says ENODEV): the caller copies it instead. */
static int map_fd(cli_corpus *c, int fd, const char *what, int may_fail) {
    struct stat st;
    if (fstat(fd, &st) != 0) cli_fail("%s: cannot stat: %s", what, strerror(errno));
    if (may_fail && st.st_size == 0) return -1;
    c->n = (size_t)st.st_size;
    if (c->n == 0) { c->p = NULL; return 0; }
    void *m = mmap(NULL, c->n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED && may_fail && (errno == ENODEV || errno == EINVAL || errno == EACCES)) {
        c->n = 0;
        return -1;
    }
    if (m == MAP_FAILED) cli_fail("%s: cannot map: %s", what, strerror(errno));
    madvise(m, c->n, MADV_SEQUENTIAL);
    c->map = m;
    c->p = m;
    char name[400];
    static const char *const why[2] = {"the data file became shorter while training", "the data file could not be read"};
    const char *tag;
    bus_fd = cli_dist_err_fd(&tag);
    for (int k = 0; k < 2; k++) {
        int len = snprintf(bus_msg[k], sizeof bus_msg[k],
                           "%slstm: %s%s: %s (it had %zu bytes); stopped, the last checkpoint (if any) is kept\n",
                           isatty(bus_fd) ? "\n" : "", tag, lstm__printable(name, sizeof name, what), why[k], c->n); /* (after a progress line) */
        bus_len[k] = len < 0 ? 0 : (size_t)len < sizeof bus_msg[k] ? (size_t)len : sizeof bus_msg[k] - 1;
    }
    bus_lo = m, bus_n = c->n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    return 0;
}

/* Appends what the open file in (named path) holds to fd. */
static void append_fd(int fd, int in, const char *path) {
    static char buf[1 << 16];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0) cli_fail("%s: read error: %s", path, strerror(errno));
        if (r == 0) break;
        for (ssize_t o = 0; o < r;) {
            ssize_t w = write(fd, buf + o, (size_t)(r - o));
            if (w < 0) cli_fail("joining the data files: cannot write the temporary file: %s", strerror(errno));
            o += w;
        }
    }
}

/* Appends file path to fd. */
static void append(int fd, const char *path) {
    int in = open(path, O_RDONLY);
    if (in < 0) cli_fail("%s: cannot open: %s", path, strerror(errno));
    append_fd(fd, in, path);
    close(in);
}

/* An unlinked temporary file (in $TMPDIR, default /tmp) to join the data in. */
static int join_file(void) {
    const char *dir = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/lstm-corpus-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmpl);
    if (fd < 0) cli_fail("joining the data files: cannot create a temporary file in %s: %s", dir && *dir ? dir : "/tmp", strerror(errno));
    unlink(tmpl); /* gone when closed and unmapped */
    return fd;
}

/* One pass in 16 MB chunks: the hash and the set of bytes; each chunk's pages
 * leave this process's memory after it (they stay in the page cache). */
static void scan(cli_corpus *c) {
    const size_t chunk = (size_t)16 << 20;
    uint64_t h = LSTM__FNV1A_INIT; /* lstm__fnv1a, inlined beside the byte set */
    for (size_t o = 0; o < c->n; o += chunk) {
        size_t e = c->n - o < chunk ? c->n : o + chunk;
        for (size_t i = o; i < e; i++) {
            h = (h ^ c->p[i]) * 0x100000001b3ull;
            c->seen[c->p[i]] = 1;
        }
        madvise((char *)c->map + o, e - o, MADV_DONTNEED);
    }
    c->hash = h;
}

char **cli_corpus_list(const char *spec, int *n) {
    names files = {0};
    char *s = strdup(spec), *save = NULL;
    if (!s) cli_fail("out of memory");
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct stat st;
        if (stat(tok, &st) != 0) cli_fail("%s: cannot open: %s", tok, strerror(errno));
        /* /dev/zero in a list would be copied into $TMPDIR until the disk is full */
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) cli_fail("%s: is a device, not a data file", tok);
        if (S_ISDIR(st.st_mode)) list_dir(&files, tok);
        else push(&files, tok);
    }
    free(s);
    if (files.n == 0) cli_fail("%s: no data files", spec);
    *n = files.n;
    return files.v;
}

void cli_corpus_open(cli_corpus *c, char **files, int nfiles) {
    memset(c, 0, sizeof *c);
    c->nfiles = nfiles;
    struct stat st;
    int fd0 = nfiles == 1 ? open(files[0], O_RDONLY) : -1;
    if (nfiles == 1 && fd0 < 0) cli_fail("%s: cannot open: %s", files[0], strerror(errno));
    if (fd0 >= 0 && !(fstat(fd0, &st) == 0 && S_ISFIFO(st.st_mode)) && map_fd(c, fd0, files[0], 1) == 0) {
        close(fd0);
    } else { /* several files, or a pipe or FIFO (--data <(cmd)), or a file that cannot be mapped
              * (procfs, sysfs): copied */
        int fd = join_file();
        if (fd0 >= 0) {
            append_fd(fd, fd0, files[0]);
            close(fd0);
        }
        for (int i = 0; fd0 < 0 && i < nfiles; i++) append(fd, files[i]);
        map_fd(c, fd, fd0 >= 0 ? files[0] : "the joined data files", 0);
        close(fd);
    }
    for (int i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    scan(c);
}

void cli_corpus_close(cli_corpus *c) {
    if (c->map && bus_lo == c->map) bus_lo = NULL, bus_n = 0;
    if (c->map) munmap(c->map, c->n);
    memset(c, 0, sizeof *c);
}

void cli_corpus_check_vocab(const lstm_charlm *m, const unsigned char *p, size_t n, const char *what,
                            const unsigned char *seen) {
    int ok = 1;
    for (int b = 0; b < 256; b++) ok &= !seen[b] || m->id[b] >= 0;
    if (ok) return;
    for (size_t i = 0; i < n; i++) /* find the first offending byte */
        if (m->id[p[i]] < 0)
            cli_fail("%s: byte 0x%02x at offset %zu is not in the model's vocabulary (%d bytes)", what, p[i], i, m->V);
}
