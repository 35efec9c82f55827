/* PNG and JPEG images and PNG masks (libpng, libjpeg-turbo, fbnet's checks). */
#include <stdlib.h>

#include "data/formats.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".img");
  fb_status st = {0};
  uint8_t *px = NULL;
  int h, w, c;
  for (int want = 0; want <= 3; want += want == 0 ? 1 : 2)
    if (fb_image_read(path, want, &px, &h, &w, &c, &st) == 0) free(px), px = NULL;
  if (fb_mask_read(path, &px, &h, &w, &st) == 0) free(px);
  return 0;
}
