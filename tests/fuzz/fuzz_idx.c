/* IDX files (Fashion-MNIST), raw or gzip (zlib reads both). */
#include <stdlib.h>

#include "data/fmnist.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".idx");
  fb_status st = {0};
  uint8_t *buf = NULL;
  int n, h, w;
  if (fb_idx_read_images(path, &buf, &n, &h, &w, &st) == 0) free(buf);
  if (fb_idx_read_labels(path, &buf, &n, &st) == 0) free(buf);
  return 0;
}
