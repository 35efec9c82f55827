/* Error reporting: every fallible function takes an fb_status * and returns 0 on
 * success or -1 after writing a message that names the file/field at fault. */
#ifndef FB_CORE_STATUS_H
#define FB_CORE_STATUS_H

#include "fbnet.h"

/* Writes printf-style message into st (when st is non-NULL) and returns -1.
 * The code is FB_E_INPUT, or FB_E_INTERNAL for a message that starts with
 * "internal:". */
int fb_fail(fb_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with an explicit code (fb_fail_io: FB_E_IO, for files that cannot
 * be opened, read, written, renamed or locked). */
int fb_fail_code(fb_status *st, fb_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fb_fail_io(fb_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One message to the logger (nothing when lg or its fn is NULL). */
void fb_log(const fb_logger *lg, fb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocation helpers that abort with a message on out-of-memory: a training
 * tool cannot continue without memory and must not continue silently. */
void *fb_xmalloc(size_t bytes);
void *fb_xcalloc(size_t n, size_t size);
void *fb_xrealloc(void *p, size_t bytes);
char *fb_xstrdup(const char *s); /* exits like fb_xmalloc on failure */
/* 64-byte aligned, zeroed; free with free(). */
float *fb_alloc_floats(size_t n);
double *fb_alloc_doubles(size_t n);

#endif
