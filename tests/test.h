/* test.h — a tiny test harness: CHECK(cond, fmt...) and a closing report.
 * Each test binary ends with TEST_REPORT(), which prints "N passed, M failed"
 * and returns non-zero on any failure. */
#ifndef LSTM_TEST_H
#define LSTM_TEST_H
#include <math.h>
#include <stddef.h>
#include <stdio.h>

static int test_pass_, test_fail_, test_skip_;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            test_pass_++;                                                      \
        } else {                                                               \
            test_fail_++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

/* Like CHECK but also prints the line when it passes (for reported errors).
 * cond is evaluated once, before the message's arguments. */
#define CHECK_V(cond, ...)                                                     \
    do {                                                                       \
        int check_ok_ = !!(cond);                                              \
        printf("%s ", check_ok_ ? "ok  " : "FAIL");                            \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
        if (check_ok_) test_pass_++; else test_fail_++;                        \
    } while (0)

/* A check that cannot run here (a kernel this CPU or build lacks): printed and
 * counted as skipped, never as passed. */
#define TEST_SKIP(...)                                                         \
    do {                                                                       \
        printf("skip ");                                                       \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
        test_skip_++;                                                          \
    } while (0)

/* max |a[i] - b[i]|; a NaN on either side makes it NaN */
static inline double test_maxabs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= m)) m = e;
    }
    return m;
}

#define TEST_REPORT()                                                          \
    (printf("%s: %d passed, %d failed", __FILE__, test_pass_, test_fail_),     \
     printf(test_skip_ ? ", %d skipped\n" : "\n", test_skip_), test_fail_ ? 1 : 0)

#endif
