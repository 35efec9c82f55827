/* A two-path supernet with 7 bits (stem.1, s0.p0.0, s0.p0.1, s1.p0.0,
 * s1.p1.0, s1.f1to0, s1.f0to1) for tests: small enough for exhaustive and
 * many-step checks at 32 px. */
#ifndef FB_TESTS_TINY_SUPERNET_H
#define FB_TESTS_TINY_SUPERNET_H

#include "fbnet.h"

static const char *TINY =
    "{\"name\": \"tiny\", \"search\": true, \"input_size\": 32,"
    " \"stem\": [[\"conv_k3_hs\", 8, 2, 1], [\"ir_k3_hs\", 8, 1, 1, {\"e\": 1}]],"
    " \"stages\": ["
    "  {\"open\": [\"ir_k3_hs\", 8, 2, 1, {\"e\": 2}], \"paths\": [[[\"ir_k3_hs\", 8, 1, 2, {\"e\": 2}]]]},"
    "  {\"open\": [\"ir_k3_sehsig_hs\", 16, 2, 1, {\"e\": 2}],"
    "   \"paths\": [[[\"ir_k3_hs\", 8, 1, 1, {\"e\": 2}]], [[\"ir_k3_sehsig_hs\", 16, 1, 1, {\"e\": 2}]]],"
    "   \"fusion\": \"all\"}],"
    " \"head\": [\"ir_pool_hs\", 32, 1, 1, {\"e\": 2}],"
    " \"heads\": {\"cls\": 1, \"det\": [0, 1], \"seg\": [0, 1]}}";

/* The tiny supernet with the given heads, sized for data set d (any type with
 * num_classes, num_cats, num_seg_classes), light heads, parsed and built
 * (not planned); NULL with a message. */
#define TINY_BUILD(tasks_, d_, st_)                                                  \
  tiny_build((tasks_), (d_)->num_classes, (d_)->num_cats, (d_)->num_seg_classes, (st_))

static inline fb_net *tiny_build(unsigned tasks, int classes, int cats, int seg_classes,
                                 fb_status *st) {
  fb_arch *a = fb_arch_parse(TINY, "tiny.json", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 32;
  o.standard_padding = 1;
  o.tasks = tasks;
  o.num_classes = classes;
  o.num_cats = cats;
  o.num_seg_classes = seg_classes;
  o.det_width = 16;
  o.det_depth = 1;
  o.seg_width = 8;
  fb_net *n = fb_net_build(a, &o, 3, st);
  fb_arch_free(a);
  return n;
}

#endif
