/* Reader for the PyTorch reference fixtures written by
 * scripts/make_torch_fixtures.py (format documented at the top of that
 * script): a file is a list of named float64 arrays with 4-d shapes. */
#ifndef FB_TESTS_FIXTURE_IO_H
#define FB_TESTS_FIXTURE_IO_H

#include <stddef.h>

typedef struct fx_array {
  char name[96];
  int shape[4]; /* n, c, h, w */
  size_t numel;
  double *v;
} fx_array;

typedef struct fx_file {
  fx_array *a;
  int n;
} fx_file;

/* Loads path into f. Returns 0, or -1 with a reason in err (size errlen). */
int fx_load(fx_file *f, const char *path, char *err, size_t errlen);
void fx_free(fx_file *f);
/* The array called name, or NULL. */
const fx_array *fx_find(const fx_file *f, const char *name);
/* First value of array name, or dflt when it is absent. */
double fx_scalar(const fx_file *f, const char *name, double dflt);

#endif
