/* classify: the fbnet library embedded in a program of your own.
 *
 *   classify WEIGHTS IMAGE...
 *
 * Opens a classifier trained with `fbnet train --task cls` (the arch and the
 * class names are read from the weights file), classifies each image (PNG or
 * JPEG) and prints one line per image: the file, then the 5 most probable
 * classes with their probabilities. It uses include/fbnet.h only:
 *
 *   cc -Iinclude classify.c build/libfbnet.a $(LIBS) -o classify
 *
 * (`make examples` builds it as build/examples/classify.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fbnet.h"

/* Softmax of K logits into p. */
static void softmax(const float *logits, int K, double *p) {
  double mx = logits[0], sum = 0;
  for (int k = 1; k < K; k++) mx = logits[k] > mx ? logits[k] : mx;
  for (int k = 0; k < K; k++) sum += p[k] = exp(logits[k] - mx);
  for (int k = 0; k < K; k++) p[k] /= sum;
}

/* Prints the file and its `top` best classes. */
static void print_top(const fb_model *m, const char *file, const double *p, int K, int top) {
  printf("%s", file);
  int taken[1024] = {0};
  for (int r = 0; r < top; r++) {
    int best = -1;
    for (int k = 0; k < K; k++)
      if (!taken[k] && (best < 0 || p[k] > p[best])) best = k;
    taken[best] = 1;
    const char *name = fb_model_class_name(m, best);
    if (name) printf("  %s %.4f", name, p[best]);
    else printf("  class%d %.4f", best, p[best]);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: classify WEIGHTS IMAGE...\n");
    return 2;
  }
  fb_status st = {0};
  fb_model_opts o = {NULL, FB_TASK_CLS, 8}; /* the classifier, 8 images per run */
  fb_model *m = fb_model_open(argv[1], &o, &st);
  if (!m) {
    fprintf(stderr, "classify: %s\n", st.msg);
    return 1;
  }
  const int K = fb_model_num_classes(m), B = fb_model_batch(m);
  const size_t per = (size_t)fb_model_in_channels(m) * fb_model_input_size(m) *
                     fb_model_input_size(m);
  const int top = K < 5 ? K : 5;
  double *p = malloc((size_t)K * sizeof *p);
  int rc = K > 1024 ? 1 : 0;
  if (rc) fprintf(stderr, "classify: %d classes (this example lists at most 1024)\n", K);
  for (int first = 2; rc == 0 && first < argc; first += B) {
    const int n = argc - first < B ? argc - first : B;
    for (int i = 0; rc == 0 && i < n; i++)
      rc = fb_model_load_image(m, argv[first + i], fb_model_input(m) + i * per, &st);
    fb_output logits;
    if (rc == 0) rc = fb_model_run(m, n, &st);
    if (rc == 0) rc = fb_model_output(m, "cls.logits", &logits, &st);
    for (int i = 0; rc == 0 && i < n; i++) {
      softmax(logits.data + (size_t)i * K, K, p);
      print_top(m, argv[first + i], p, K, top);
    }
    if (rc) fprintf(stderr, "classify: %s\n", st.msg);
  }
  free(p);
  fb_model_free(m);
  return rc ? 1 : 0;
}
