/* Monotonic wall-clock seconds, for progress lines and benchmarks. */
#ifndef FB_CORE_CLOCK_H
#define FB_CORE_CLOCK_H

#include <time.h>

static inline double fb_now_sec(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#endif
