/* threads.c — a persistent thread team: lstm__team_run(team, fn, arg) runs
 * fn(arg, tid, n) on every thread of the team (the caller is thread 0) and
 * returns when all are done.  Hand-off and completion use a generation counter
 * and a done counter; a waiting thread spins briefly, then sleeps on a futex. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal.h"

#define SPIN 4000

struct lstm__team {
    int n;
    pthread_t *th;
    void (*fn)(void *, int, int);
    void *arg;
    int gen;      /* futex word: bumped for each run (and for quit) */
    int done;     /* futex word: workers finished in this run */
    int sleepers; /* workers sleeping on gen */
    int waiting;  /* 1 while the caller sleeps on done */
    int quit;
};

typedef struct {
    lstm__team *team;
    int tid;
} worker_arg;

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

/* Waits until *addr != val; *count (may be NULL) counts sleepers. */
static int wait_change(int *addr, int val, int *count) {
    int v;
    for (int i = 0; i < SPIN; i++) {
        if ((v = __atomic_load_n(addr, __ATOMIC_ACQUIRE)) != val) return v;
        cpu_relax();
    }
    for (;;) {
        if (count) __atomic_store_n(count, 1, __ATOMIC_SEQ_CST);
        if ((v = __atomic_load_n(addr, __ATOMIC_SEQ_CST)) != val) break;
        futex_wait(addr, val);
        if ((v = __atomic_load_n(addr, __ATOMIC_ACQUIRE)) != val) break;
    }
    return v;
}

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    lstm__team *t = wa.team;
    free(p);
    int seen = 0;
    for (;;) {
        seen = wait_change(&t->gen, seen, &t->sleepers);
        if (__atomic_load_n(&t->quit, __ATOMIC_ACQUIRE)) break;
        t->fn(t->arg, wa.tid, t->n);
        if (__atomic_add_fetch(&t->done, 1, __ATOMIC_SEQ_CST) == t->n - 1 &&
            __atomic_load_n(&t->waiting, __ATOMIC_SEQ_CST))
            futex_wake(&t->done);
    }
    return NULL;
}

/* Bumps the generation and wakes sleeping workers. */
static void release_workers(lstm__team *t) {
    __atomic_add_fetch(&t->gen, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->sleepers, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&t->sleepers, 0, __ATOMIC_SEQ_CST);
        futex_wake(&t->gen);
    }
}

static void join_workers(lstm__team *t, int started) {
    __atomic_store_n(&t->quit, 1, __ATOMIC_RELEASE);
    release_workers(t);
    for (int i = 0; i < started; i++) pthread_join(t->th[i], NULL);
}

lstm__team *lstm__team_create(int n) {
    if (n < 1) return NULL;
    lstm__team *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->th = calloc((size_t)n, sizeof *t->th);
    if (!t->th) { free(t); return NULL; }
    for (int i = 1; i < n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){t, i};
        if (!wa || pthread_create(&t->th[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            join_workers(t, i - 1);
            free(t->th);
            free(t);
            return NULL;
        }
    }
    return t;
}

int lstm__team_size(const lstm__team *t) { return t ? t->n : 1; }

void lstm__team_run(lstm__team *t, void (*fn)(void *arg, int tid, int n), void *arg) {
    if (!t || t->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    __atomic_store_n(&t->done, 0, __ATOMIC_SEQ_CST);
    release_workers(t);
    fn(arg, 0, t->n);
    int d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    for (int i = 0; i < SPIN && d != t->n - 1; i++) {
        cpu_relax();
        d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    }
    while (d != t->n - 1) {
        __atomic_store_n(&t->waiting, 1, __ATOMIC_SEQ_CST);
        d = __atomic_load_n(&t->done, __ATOMIC_SEQ_CST);
        if (d == t->n - 1) break;
        futex_wait(&t->done, d);
        d = __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
    }
    __atomic_store_n(&t->waiting, 0, __ATOMIC_RELAXED);
}

void lstm__team_free(lstm__team *t) {
    if (!t) return;
    join_workers(t, t->n - 1);
    free(t->th);
    free(t);
}
