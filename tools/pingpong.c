/* pingpong.c — the round trip of one cache line between two CPUs: thread A
 * stores n into a line and waits for thread B to store n into another, B
 * waits for A's n and answers, N times.  That round trip is the least a
 * hand-off to the thread team costs (a run is published, a worker answers),
 * so it says whether splitting one short step over two cores can pay: a step
 * must save more than it.  Not a test.
 *   cc -O2 -pthread tools/pingpong.c -o build/pingpong && build/pingpong [CPU_A CPU_B [N]]
 * (defaults 0 1 200000; each thread pinned to its CPU; prints the mean ns a
 * round trip of 5 runs).  The two CPUs should differ: on one, each trip waits
 * for a time slice. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) int ping;
static _Alignas(64) int pong;
static int cpu_b, n_trips;

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *answer(void *arg) {
    (void)arg;
    if (pin(cpu_b) != 0) fprintf(stderr, "pingpong: cannot pin to CPU %d (runs unpinned)\n", cpu_b);
    for (int r = 0; r < 5; r++)
        for (int i = 1; i <= n_trips; i++) {
            while (__atomic_load_n(&ping, __ATOMIC_ACQUIRE) != i) relax();
            __atomic_store_n(&pong, i, __ATOMIC_RELEASE);
        }
    return NULL;
}

int main(int argc, char **argv) {
    const int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    cpu_b = argc > 2 ? atoi(argv[2]) : 1;
    n_trips = argc > 3 ? atoi(argv[3]) : 200000;
    if (cpu_a < 0 || cpu_b < 0 || cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE || n_trips < 1) {
        fprintf(stderr, "usage: pingpong [CPU_A CPU_B [N]]  (CPUs 0..%d, N >= 1)\n", CPU_SETSIZE - 1);
        return 2;
    }
    if (pin(cpu_a) != 0) fprintf(stderr, "pingpong: cannot pin to CPU %d (runs unpinned)\n", cpu_a);
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL) != 0) {
        fprintf(stderr, "pingpong: cannot start a thread\n");
        return 1;
    }
    printf("CPUs %d and %d, %d round trips a run:", cpu_a, cpu_b, n_trips);
    for (int r = 0; r < 5; r++) {
        struct timespec t0, t1;
        __atomic_store_n(&ping, 0, __ATOMIC_RELEASE); /* (B waits for 1 next) */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 1; i <= n_trips; i++) {
            __atomic_store_n(&ping, i, __ATOMIC_RELEASE);
            while (__atomic_load_n(&pong, __ATOMIC_ACQUIRE) != i) relax();
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf(" %.1f", ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n_trips);
    }
    printf(" ns a round trip\n");
    pthread_join(t, NULL);
    return 0;
}
