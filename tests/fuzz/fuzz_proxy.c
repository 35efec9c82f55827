/* The proxy set's manifest (proxy.json) and split files, in a directory of
 * this process: the input is the manifest; a second copy serves as the
 * split's COCO file and labels.csv. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/proxy.h"
#include "fuzz.h"

static void put(const char *dir, const char *name, const uint8_t *data, size_t size) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  if (!f) abort();
  if (size) fwrite(data, 1, size, f);
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char dir[512], sub[560];
  snprintf(dir, sizeof dir, "%s/fbnet_fuzz_proxy_%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (long)getpid());
  snprintf(sub, sizeof sub, "%s/train", dir);
  mkdir(dir, 0777);
  mkdir(sub, 0777);
  put(dir, "proxy.json", data, size);
  put(dir, "train.json", data, size);
  put(sub, "labels.csv", data, size);
  put(dir, "cls_classes.txt", data, size);
  fb_status st = {0};
  fb_mt_dataset d;
  if (fb_proxy_load(dir, "train", 0, &d, &st) == 0) fb_mt_dataset_free(&d);
  return 0;
}
