/* Minimal test harness: CHECK records a failure with file:line and a message
 * instead of aborting, and check_report() prints "N passed, N failed" and
 * returns the process exit code. A test binary that checks nothing fails. */
#ifndef FB_TESTS_CHECK_H
#define FB_TESTS_CHECK_H

#include <stdio.h>

typedef struct check_counts {
  int passed, failed;
} check_counts;

extern check_counts check_g; /* per test binary; the only global, test-side */

void check_record(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_report(const char *suite);

#define CHECK(cond, ...) check_record(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_CLOSE(a, b, tol, what)                                                           \
  do {                                                                                         \
    double ca_ = (a), cb_ = (b);                                                               \
    double cd_ = ca_ - cb_;                                                                    \
    if (cd_ < 0) cd_ = -cd_;                                                                   \
    check_record(cd_ <= (tol), __FILE__, __LINE__, "%s: %.9g vs %.9g (|diff| %.3g > %.3g)", \
                 (what), ca_, cb_, cd_, (double)(tol));                                        \
  } while (0)

#endif
