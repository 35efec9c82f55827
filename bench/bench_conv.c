/* Measures the fast conv2d kernels (oneDNN and the direct kernels) in GFLOP/s.
 * Not a test. Build and run (after `make`):
 *   cc -O3 -march=x86-64-v3 -fopenmp -Iinclude -Isrc bench/bench_conv.c \
 *      build/libfbnet.a -ldnnl -lcjson -lz -lm -o build/bench_conv
 *   OMP_NUM_THREADS=2 build/bench_conv
 * Forward counts 2 * MACs flops, backward (data + weights) 4 * MACs; best of
 * several repetitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"
#include "ops/op.h"

extern const fb_op fb_op_conv2d;
void fb_conv2d_force_impl(fb_op_ctx *ctx, int which); /* src/ops/conv2d.c */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void bench(const char *name, int n, int c, int hw, int c_out, int k, int stride,
                  int groups) {
  fb_op_args a;
  memset(&a, 0, sizeof a);
  a.n_in = 1;
  a.in[0] = fb_shape4(n, c, hw, hw);
  a.attr = fb_attr_default();
  a.attr.kh = a.attr.kw = k;
  a.attr.sh = a.attr.sw = stride;
  a.attr.pad_t = a.attr.pad_l = a.attr.pad_b = a.attr.pad_r = k / 2;
  a.attr.groups = groups;
  a.attr.c_out = c_out;
  char msg[256];
  if (fb_op_conv2d.infer(&a, msg) != 0) {
    fprintf(stderr, "%s: %s\n", name, msg);
    exit(1);
  }
  size_t nx = fb_numel(a.in[0]), ny = fb_numel(a.out), nw = fb_numel(a.par[0]);
  float *x = fb_alloc_floats(nx), *dx = fb_alloc_floats(nx), *y = fb_alloc_floats(ny),
        *dy = fb_alloc_floats(ny), *w = fb_alloc_floats(nw), *dw = fb_alloc_floats(nw);
  for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < ny; i++) dy[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 31) % 100) / 100.0f - 0.5f;
  double macs = fb_op_macs("conv2d", &a);
  static const char *impl_name[4] = {"auto", "oneDNN", "direct", "dw-simd"};
  for (int impl = 1; impl <= (groups > 1 ? 3 : 1); impl++) {
    fb_op_ctx ctx = {0};
    fb_conv2d_force_impl(&ctx, impl);
    const float *in[1] = {x};
    float *par[1] = {w}, *din[1] = {dx}, *dpar[1] = {dw};
    double best_f = 1e30, best_b = 1e30;
    for (int rep = 0; rep < 6; rep++) {
      double t0 = now();
      fb_op_conv2d.fwd(&ctx, &a, in, par, y, NULL);
      double t1 = now();
      fb_op_conv2d.bwd(&ctx, &a, in, (const float *const *)par, y, dy, din, dpar, NULL);
      double t2 = now();
      if (rep > 0) { /* the first run creates primitives */
        if (t1 - t0 < best_f) best_f = t1 - t0;
        if (t2 - t1 < best_b) best_b = t2 - t1;
      }
    }
    printf("%-34s %-7s fwd %7.2f ms %6.1f GFLOP/s   bwd %7.2f ms %6.1f GFLOP/s\n", name,
           impl_name[impl], 1e3 * best_f, 2 * macs / best_f * 1e-9, 1e3 * best_b,
           4 * macs / best_b * 1e-9);
    fb_op_conv2d.ctx_free(&ctx);
  }
  free(x);
  free(dx);
  free(y);
  free(dy);
  free(w);
  free(dw);
}

int main(void) {
  bench("1x1 96->24 56x56 N32", 32, 96, 56, 24, 1, 1, 1);
  bench("dw 5x5 s1 96ch 56x56 N32", 32, 96, 56, 96, 5, 1, 96);
  bench("dw 3x3 s1 96ch 56x56 N32", 32, 96, 56, 96, 3, 1, 96);
  bench("dw 5x5 s2 96ch 56x56 N32", 32, 96, 56, 96, 5, 2, 96);
  bench("3x3 64->64 56x56 N32", 32, 64, 56, 64, 3, 1, 1);
  return 0;
}
