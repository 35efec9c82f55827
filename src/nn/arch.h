/* The parsed form of an arch file (docs/arch-files.md): a flat list of rows,
 * each remembering its stage name and its index inside the stage so that
 * every later error can name the row at fault. */
#ifndef FB_NN_ARCH_H
#define FB_NN_ARCH_H

#include "fbnet.h"

typedef struct fb_arch_row {
  char stage[32]; /* "stem", "stage3", "head", ... (no dots) */
  int index;      /* position in the stage's "rows" array, from 0 */
  char op[48];    /* block op, e.g. "ir_k5_sehsig_hs" */
  int c_out;      /* before width scaling */
  int stride;     /* 1 or 2; only the first of `repeat` copies keeps it */
  int repeat;     /* >= 1 */
  double e;       /* expansion; 0 = the op's default */
  int dw_pad;     /* explicit depthwise padding; -1 = k/2 */
} fb_arch_row;

#define FB_ARCH_MAX_TAPS 4

/* Which stages' outputs feed a task head ("heads" in the arch file); empty:
 * the builder picks the last block at each stride the head needs. */
typedef struct fb_arch_taps {
  int n;
  char stage[FB_ARCH_MAX_TAPS][32];
} fb_arch_taps;

struct fb_arch {
  char name[64];
  char path[256]; /* for error messages */
  int input_size; /* the resolution the file was designed for */
  fb_arch_row *rows;
  int n_rows;
  fb_arch_taps det_from, seg_from;
};

#endif
