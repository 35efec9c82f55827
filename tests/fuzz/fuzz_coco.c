/* COCO JSON ground truth (images from an empty folder, and the annotations
 * alone as proxy sets read them) and results files. */
#include <stdlib.h>

#include "data/formats.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".json");
  fb_status st = {0};
  fb_mt_dataset d;
  if (fb_coco_load(path, "/nonexistent-fbnet-images", 3, &d, &st) == 0) fb_mt_dataset_free(&d);
  if (fb_coco_load(path, NULL, 0, &d, &st) == 0) fb_mt_dataset_free(&d);
  const int ids[3] = {1, 2, 3};
  fb_det *dets = NULL;
  int n = 0;
  if (fb_coco_load_results(path, ids, 3, &dets, &n, &st) == 0) free(dets);
  return 0;
}
