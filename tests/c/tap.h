/* A tiny TAP producer for the C unit tests (https://testanything.org).
 *
 *     plan(3);                        or no plan and done_testing() at the end
 *     ok(x > 0, "x is positive");
 *     is_int(n, 5, "five bytes");
 *     is_str(s, "GET", "method");
 *     return done_testing();
 *
 * Output goes to stdout and is flushed after every line, so a test that
 * crashes (ASan, UBSan, a guard page) still shows how far it got. The exit
 * status is non-zero when a test failed or the plan was not met. Results are
 * reported from one thread at a time (the tests call them from main). */
#ifndef MT_TAP_H
#define MT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

static inline void plan(int n) {
    tap_planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

/* A comment line ("# ..."): shown by TAP harnesses, never a result. */
static inline __attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static inline int tap_vresult(int pass, const char *file, int line, const char *fmt, va_list ap) {
    tap_run++;
    if (!pass)
        tap_failed++;
    printf("%sok %d - ", pass ? "" : "not ", tap_run);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    if (!pass)
        printf("#   failed at %s:%d\n", file, line);
    fflush(stdout);
    return pass;
}

static inline __attribute__((format(printf, 4, 5))) int tap_ok(int pass, const char *file, int line, const char *fmt,
                                                               ...) {
    va_list ap;
    va_start(ap, fmt);
    tap_vresult(pass, file, line, fmt, ap);
    va_end(ap);
    return pass;
}

static inline __attribute__((format(printf, 5, 6))) int tap_is_int(long long got, long long want, const char *file,
                                                                   int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int pass = tap_vresult(got == want, file, line, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
    fflush(stdout);
    return pass;
}

static inline __attribute__((format(printf, 5, 6))) int tap_is_str(const char *got, const char *want, const char *file,
                                                                   int line, const char *fmt, ...) {
    int same = got && want ? strcmp(got, want) == 0 : got == want;
    va_list ap;
    va_start(ap, fmt);
    int pass = tap_vresult(same, file, line, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#          got: '%s'\n#     expected: '%s'\n", got ? got : "(null)", want ? want : "(null)");
    fflush(stdout);
    return pass;
}

/* A test that cannot run here (no IPv6, ...): counted as passed, marked SKIP. */
static inline void skip(const char *reason) {
    tap_run++;
    printf("ok %d # SKIP %s\n", tap_run, reason);
    fflush(stdout);
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

/* Prints the plan if none was given up front; returns the exit status. */
static inline int done_testing(void) {
    if (tap_planned < 0)
        printf("1..%d\n", tap_run);
    else if (tap_planned != tap_run)
        printf("# planned %d tests but ran %d\n", tap_planned, tap_run);
    if (tap_failed)
        printf("# failed %d of %d tests\n", tap_failed, tap_run);
    fflush(stdout);
    return tap_failed || (tap_planned >= 0 && tap_planned != tap_run) ? 1 : 0;
}

#endif
