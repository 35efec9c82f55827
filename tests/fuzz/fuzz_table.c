/* Tabular NAS benchmark tables (fbnet bench tabular). */
#include "fuzz.h"
#include "search/tabular.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size, ".json");
  fb_status st = {0};
  fb_nas_table t;
  if (fb_nas_table_load(path, &t, &st) == 0) fb_nas_table_free(&t);
  return 0;
}
