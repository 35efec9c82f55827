/* Registry lookup of the op interface (op.h). */
#include "core/op.h"

#include <string.h>

const fb_op *fb_op_lookup(const fb_op *const *table, const char *name) {
  for (int i = 0; table && table[i]; i++)
    if (strcmp(table[i]->name, name) == 0) return table[i];
  return NULL;
}
