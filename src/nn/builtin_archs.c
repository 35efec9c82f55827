#include "nn/builtin_archs.h"

#include <string.h>

const char *fb_builtin_arch_text(const char *name) {
  for (const fb_builtin_arch *a = fb_builtin_archs; a->name; a++)
    if (strcmp(a->name, name) == 0) return a->text;
  return NULL;
}
