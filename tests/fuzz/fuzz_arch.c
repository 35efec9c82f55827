/* Arch files, chain and multi-path: parse, and build what parses (small). */
#include <stdlib.h>

#include "fbnet.h"
#include "fuzz.h"
#include "nn/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  fb_status st = {0};
  fb_arch *a = fb_arch_parse(text, "fuzz.json", &st);
  if (a) {
    fb_build_opts o = fb_build_opts_default();
    o.input_size = 64, o.width = 0.25, o.num_classes = 4, o.standard_padding = 1;
    fb_net *net = fb_net_build(a, &o, 1, &st);
    fb_net_free(net);
    fb_arch_free(a);
  }
  free(text);
  return 0;
}
