/* The arch files of archs/ compiled into the library (generated at build
 * time by scripts/embed_archs.sh), so that "builtin:fbnetv5_supernet" works
 * from any directory. */
#ifndef FB_NN_BUILTIN_ARCHS_H
#define FB_NN_BUILTIN_ARCHS_H

typedef struct fb_builtin_arch {
  const char *name; /* file name without .json */
  const char *text;
} fb_builtin_arch;

extern const fb_builtin_arch fb_builtin_archs[]; /* ends with {NULL, NULL} */

/* The text of builtin arch `name`, or NULL. */
const char *fb_builtin_arch_text(const char *name);

#endif
