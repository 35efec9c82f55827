#include "check.h"

#include <stdarg.h>

check_counts check_g;

void check_record(int ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    check_g.passed++;
    return;
  }
  check_g.failed++;
  if (check_g.failed <= 50) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
}

int check_report(const char *suite) {
  printf("%s: %d checks passed, %d failed\n", suite, check_g.passed, check_g.failed);
  if (check_g.passed + check_g.failed == 0) {
    printf("%s: no checks ran\n", suite);
    return 1;
  }
  return check_g.failed ? 1 : 0;
}
