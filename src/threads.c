/* threads.c — a persistent thread team.  lstm__team_run_tasks(team, ntasks,
 * fn, arg) runs fn(arg, task, ntasks) once for every task in 0..ntasks-1 and
 * returns when all are done.  Tasks are handed out through one atomic ticket
 * (generation, the ends of the tasks not yet taken) that the workers and the
 * caller both draw from, so a worker that is late (descheduled on a busy
 * machine) simply takes fewer tasks, or none: the caller never waits for a
 * worker that has not started a task.  The caller takes from the front (task
 * 0 in the same store that publishes the run, then up), the workers from the back, so with two threads and two tasks each
 * keeps its task from one run to the next, and the data that task reads stays
 * in its core's cache (with one counter from the front they traded tasks in
 * 5-45 % of a batch-1 step's runs, and each trade moved the 512 KB of weights
 * a task of H = 256 reads from one core's L2 to the other's).  Waiting
 * threads spin briefly, then sleep on a futex. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "internal.h"

#define SPIN 4000

struct lstm__team {
    int n;
    pthread_t *th;
    void (*fn)(void *, int, int);
    void *arg;
    uint64_t ticket; /* generation << 32 | back << 16 | front: tasks [front, back) not taken */
    int ntasks;      /* of the current run (published by the ticket) */
    unsigned target; /* done's value once the current run's tasks are finished (published by the ticket) */
    int gen;         /* futex word: bumped for each run (and for quit) */
    int sleepers;    /* workers between deciding to sleep on gen and waking: counted, never cleared */
    int quit;
    /* on a line of their own: the count the caller waits on at the end of a run */
    _Alignas(64) unsigned done; /* futex word: tasks finished, counted on from run to run (wraps) */
    int waiting;           /* 1 while the caller may sleep on done */
};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(int *addr, int val) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)addr, (void)val;
    sched_yield();
#endif
}

static void futex_wake(int *addr) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* The ticket: generation << 32 | back << 16 | front.  Checking the
 * generation and both ends in the same word as the task taken means a late
 * worker can never take a task of a run other than the one it saw. */
#define TICKET(g, nt) ((uint64_t)(uint32_t)(g) << 32 | (uint64_t)(uint32_t)(nt) << 16)

/* Takes and runs tasks of generation g until none is left: from the front
 * (the caller) or from the back (workers). */
static void take_tasks(lstm__team *t, uint32_t g, int from_back) {
    uint64_t v = __atomic_load_n(&t->ticket, __ATOMIC_ACQUIRE);
    for (;;) {
        int back = (int)(v >> 16 & 0xffff), front = (int)(v & 0xffff);
        if ((uint32_t)(v >> 32) != g || front >= back) return;
        int task = from_back ? back - 1 : front;
        uint64_t nv = from_back ? v - ((uint64_t)1 << 16) : v + 1;
        if (!__atomic_compare_exchange_n(&t->ticket, &v, nv, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue; /* v was reloaded */
        const int ntasks = __atomic_load_n(&t->ntasks, __ATOMIC_RELAXED);
        const unsigned target = __atomic_load_n(&t->target, __ATOMIC_RELAXED);
        /* Run g cannot end before this task does, so fn and arg are still g's. */
        void (*fn)(void *, int, int) = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
        fn(__atomic_load_n(&t->arg, __ATOMIC_RELAXED), task, ntasks);
        if (__atomic_add_fetch(&t->done, 1u, __ATOMIC_SEQ_CST) == target &&
            __atomic_load_n(&t->waiting, __ATOMIC_SEQ_CST))
            futex_wake((int *)&t->done);
        v = __atomic_load_n(&t->ticket, __ATOMIC_ACQUIRE);
    }
}

static void *worker_main(void *p) {
    lstm__team *t = p;
    int seen = 0;
    for (;;) {
        int g;
        for (int i = 0; i < SPIN; i++) {
            if ((g = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE)) != seen) goto run;
            cpu_relax();
        }
        /* Counted in sleepers before gen is read: a release that stores gen after this read
         * then sees the count and wakes us (a flag that the waker cleared could be cleared
         * after a later sleep had set it, and that sleep would miss its wake-up) */
        for (;;) {
            __atomic_add_fetch(&t->sleepers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&t->gen, __ATOMIC_SEQ_CST) == seen) futex_wait(&t->gen, seen);
            __atomic_sub_fetch(&t->sleepers, 1, __ATOMIC_SEQ_CST);
            if ((g = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE)) != seen) break;
        }
    run:
        seen = g;
        if (__atomic_load_n(&t->quit, __ATOMIC_ACQUIRE)) break;
        take_tasks(t, (uint32_t)g, 1);
    }
    return NULL;
}

/* Publishes a new generation of ntasks tasks, the first `front` of them already
 * taken (by the caller), and wakes sleeping workers. */
static int release_workers(lstm__team *t, int ntasks, int front) {
    /* wraps after 2^32 runs: unsigned arithmetic (the futex word is 32 bits anyway) */
    int g = (int)((unsigned)__atomic_load_n(&t->gen, __ATOMIC_RELAXED) + 1u);
    __atomic_store_n(&t->ticket, TICKET(g, ntasks) | (uint64_t)(uint32_t)front, __ATOMIC_SEQ_CST);
    __atomic_store_n(&t->gen, g, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->sleepers, __ATOMIC_SEQ_CST)) futex_wake(&t->gen);
    return g;
}

static void join_workers(lstm__team *t, int started) {
    __atomic_store_n(&t->quit, 1, __ATOMIC_RELEASE);
    release_workers(t, 0, 0);
    for (int i = 0; i < started; i++) pthread_join(t->th[i], NULL);
}

lstm__team *lstm__team_create(int n) {
    if (n < 1) return NULL;
    lstm__team *t = aligned_alloc(64, (sizeof *t + 63) / 64 * 64); /* (done's line) */
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->n = n;
    t->th = calloc((size_t)n, sizeof *t->th);
    if (!t->th) { free(t); return NULL; }
    for (int i = 1; i < n; i++)
        if (pthread_create(&t->th[i - 1], NULL, worker_main, t) != 0) {
            join_workers(t, i - 1);
            free(t->th);
            free(t);
            return NULL;
        }
    return t;
}

int lstm__team_size(const lstm__team *t) { return t ? t->n : 1; }

/* The lowest CPU of a cpulist ("0-3,8,10-11": digits, '-', ',', then an optional
 * newline) that in_set[0..ncpu) holds; -2 when the text is not a cpulist or does not
 * hold self (a CPU's siblings include it). */
static int cpulist_first_in(const char *s, const unsigned char *in_set, int ncpu, int self) {
    int best = -1, has_self = 0;
    while (*s && *s != '\n') {
        char *e;
        if (*s < '0' || *s > '9') return -2; /* (strtol would skip spaces and take signs) */
        long a = strtol(s, &e, 10), b = a;
        if (*e == '-') {
            const char *t = e + 1;
            if (*t < '0' || *t > '9') return -2;
            b = strtol(t, &e, 10);
            if (b < a) return -2;
        }
        has_self |= a <= self && self <= b;
        for (long c = a; c <= b && c < ncpu; c++)
            if (in_set[c] && (best < 0 || c < best)) best = (int)c;
        if (*e == ',') e++;
        else if (*e && *e != '\n') return -2;
        s = e;
    }
    return has_self ? best : -2;
}

int lstm__cores_of(const char *cpu_dir, const unsigned char *in_set, int ncpu) {
    int n = 0;
    for (int c = 0; c < ncpu; c++) {
        if (!in_set[c]) continue;
        char path[512], buf[4096];
        if (snprintf(path, sizeof path, "%s/cpu%d/topology/thread_siblings_list", cpu_dir, c) >= (int)sizeof path)
            return -1;
        FILE *f = fopen(path, "r");
        if (!f) return -1;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const int first = cpulist_first_in(buf, in_set, ncpu, c);
        if (first < 0) return -1; /* not a cpulist, or c not among its own siblings */
        n += first == c;          /* one CPU of each core: the lowest in the set */
    }
    return n;
}

int lstm__cores_in(const unsigned char *in_set, int ncpu) {
    const int cores = lstm__cores_of("/sys/devices/system/cpu", in_set, ncpu);
    if (cores >= 1) return cores;
    int n = 0; /* no topology: every CPU */
    for (int c = 0; c < ncpu; c++) n += in_set[c] != 0;
    return n;
}

unsigned char *lstm__affinity(int *ncpu) {
#if defined(__linux__)
    /* a set as large as the kernel's (more than CPU_SETSIZE possible CPUs: EINVAL, then twice) */
    for (int n = CPU_SETSIZE; n <= 1 << 20; n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        unsigned char *in_set = malloc((size_t)n);
        if (!set || !in_set) {
            CPU_FREE(set);
            free(in_set);
            return NULL;
        }
        const size_t size = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0 && CPU_COUNT_S(size, set) > 0) {
            for (int c = 0; c < n; c++) in_set[c] = CPU_ISSET_S(c, size, set) != 0;
            CPU_FREE(set);
            *ncpu = n;
            return in_set;
        }
        const int again = errno == EINVAL;
        CPU_FREE(set);
        free(in_set);
        if (!again) return NULL;
    }
#endif
    (void)ncpu;
    return NULL;
}

int lstm__cores_usable(void) {
    int ncpu;
    unsigned char *in_set = lstm__affinity(&ncpu);
    if (in_set) {
        const int cores = lstm__cores_in(in_set, ncpu); /* (>= 1: the set is not empty) */
        free(in_set);
        return cores;
    }
#if defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 1 ? (n > 1 << 20 ? 1 << 20 : (int)n) : 1;
#else
    return 1;
#endif
}

void lstm__team_run_tasks(lstm__team *t, int ntasks, void (*fn)(void *arg, int task, int ntasks),
                          void *arg) {
    if (ntasks <= 0) return;
    if (!t || t->n == 1 || ntasks > 0xffff) { /* (the ticket holds 16 bits of count) */
        for (int i = 0; i < ntasks; i++) fn(arg, i, ntasks);
        return;
    }
    __atomic_store_n(&t->fn, fn, __ATOMIC_RELAXED); /* published by the ticket */
    __atomic_store_n(&t->arg, arg, __ATOMIC_RELAXED);
    /* done is not reset (a store to its line would wait, before the run is published, for the
     * line to come back from the worker that added to it last): the run ends at target */
    const unsigned target = t->target + (unsigned)ntasks;
    __atomic_store_n(&t->target, target, __ATOMIC_RELAXED);
    __atomic_store_n(&t->ntasks, ntasks, __ATOMIC_RELAXED);
    /* The caller takes task 0 as it publishes the run: no compare-and-swap of its own on the
     * ticket's line while the workers take theirs from it (one hand-off less a run). */
    int g = release_workers(t, ntasks, 1);
    fn(arg, 0, ntasks);
    __atomic_add_fetch(&t->done, 1u, __ATOMIC_SEQ_CST);
    take_tasks(t, (uint32_t)g, 0);
    /* Wait for tasks that workers have started. */
    unsigned d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    for (int i = 0; i < SPIN && d != target; i++) {
        cpu_relax();
        d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    }
    if (d == target) return;
    while (d != target) {
        __atomic_store_n(&t->waiting, 1, __ATOMIC_SEQ_CST);
        d = __atomic_load_n(&t->done, __ATOMIC_SEQ_CST);
        if (d == target) break;
        futex_wait((int *)&t->done, (int)d);
        d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    }
    __atomic_store_n(&t->waiting, 0, __ATOMIC_RELAXED);
}

void lstm__team_run(lstm__team *t, void (*fn)(void *arg, int tid, int n), void *arg) {
    lstm__team_run_tasks(t, lstm__team_size(t), fn, arg);
}

void lstm__team_free(lstm__team *t) {
    if (!t) return;
    join_workers(t, t->n - 1);
    free(t->th);
    free(t);
}
