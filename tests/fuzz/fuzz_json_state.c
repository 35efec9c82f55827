/* The small JSON documents fbnet reads back: the search state (architecture
 * distributions), label names stored with weights. */
#include <stdlib.h>

#include "data/labels.h"
#include "fuzz.h"
#include "search/archdist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  fb_status st = {0};
  fb_archdist d;
  if (fb_archdist_from_json(&d, text, &st) == 0) {
    char *again = fb_archdist_to_json(&d);
    fb_archdist_free(&d);
    free(again);
  }
  fb_mt_dataset names;
  if (fb_labels_from_json(text, "fuzz", &names, &st) == 0) fb_mt_dataset_free(&names);
  free(text);
  return 0;
}
