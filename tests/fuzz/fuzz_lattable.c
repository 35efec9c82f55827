/* Latency tables (fbnet bench latency --out, read by fbnet search
 * --latency-table and fbnet derive --front). */
#include "fuzz.h"
#include "search/latency.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".json");
  fb_status st = {0};
  fb_lat_table t;
  if (fb_lat_read(path, &t, &st) == 0) fb_lat_free(&t);
  return 0;
}
