/* safetensors files, and the same bytes as a checkpoint of a small network
 * (checksums, tensor names and sizes, metadata). */
#include <stdlib.h>

#include "fuzz.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "train/checkpoint.h"

static fb_net *small_net(void) {
  static fb_net *net;
  if (net) return net;
  fb_status st = {0};
  fb_arch *a = fb_arch_load("builtin:fbnetv3_a", &st);
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 32, o.width = 0.25, o.num_classes = 4, o.standard_padding = 1;
  net = a ? fb_net_build(a, &o, 1, &st) : NULL;
  fb_arch_free(a);
  if (!net || fb_net_plan(net, 1, 1, &st)) abort();
  return net;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".safetensors");
  fb_status st = {0};
  fb_st_file f;
  if (fb_safetensors_read(path, &f, &st) == 0) fb_st_file_free(&f);
  int epoch;
  long step;
  char *extra = NULL;
  if (fb_checkpoint_read(path, small_net(), NULL, &epoch, &step, "search", &extra, NULL, NULL, &st) == 0)
    free(extra);
  return 0;
}
