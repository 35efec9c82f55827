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

/* Multi-path (HRNet-like) networks such as the FBNetV5 supernet
 * (docs/supernet.md): a stem chain, then stages; stage i may open a new path
 * from the last path, runs a chain of rows on every path, and ends with a
 * fusion that adds cross-path terms T(from -> to). */
#define FB_MP_MAX_PATHS 6
#define FB_MP_MAX_STAGES 16
#define FB_MP_MAX_CROSS (FB_MP_MAX_PATHS * (FB_MP_MAX_PATHS - 1))

typedef struct fb_mp_stage {
  int has_open;     /* opens path n_paths-1 from path n_paths-2 (or the stem) */
  fb_arch_row open;
  int n_paths;      /* paths that exist in this stage (after the open) */
  int first_row[FB_MP_MAX_PATHS], n_rows[FB_MP_MAX_PATHS]; /* into fb_mp.rows */
  int cross_all;    /* fusion: every (from, to) with from != to */
  int n_cross;      /* explicit fusion terms when !cross_all */
  int cross_from[FB_MP_MAX_CROSS], cross_to[FB_MP_MAX_CROSS];
} fb_mp_stage;

typedef struct fb_mp {
  int search;      /* 1: shape-preserving blocks and cross terms are searchable bits */
  int n_stem;      /* the stem rows are rows[0 .. n_stem) */
  fb_arch_row *rows; /* stem rows, then every stage's rows path by path */
  int n_rows;
  int n_stages;
  fb_mp_stage stages[FB_MP_MAX_STAGES];
  int has_head;    /* classification head row (ir_pool_hs) */
  fb_arch_row head;
  /* by task slot (src/tasks/task.h): the last stage's paths its head reads */
  int n_head_paths[FB_TASKS_MAX], head_paths[FB_TASKS_MAX][FB_MP_MAX_PATHS];
} fb_mp;

struct fb_arch {
  char name[64];
  char path[256]; /* for error messages */
  int input_size; /* the resolution the file was designed for */
  fb_arch_row *rows;
  int n_rows;
  fb_arch_taps head_from[FB_TASKS_MAX]; /* by task slot: named stages a dense head reads */
  char *text; /* the JSON text it was parsed from (owned): saved with weights */
  fb_mp *mp;  /* multi-path network (then rows/n_rows are unused); NULL for a chain */
};

/* Internal to the arch parsers (src/nn/arch.c, src/nn/mp_arch.c). */
struct cJSON;
int fb_arch_parse_row(const struct cJSON *row, fb_arch_row *r, const char *where, fb_status *st);
int fb_mp_parse(fb_arch *a, const struct cJSON *root, fb_status *st);
/* Writes a multi-path arch as JSON text (malloc'd; the format fb_mp_parse
 * reads). derived: NULL, or a JSON object's text stored under "derived"
 * (provenance of a derived architecture; the parser ignores it). */
char *fb_mp_to_json(const char *name, const char *comment, int input_size, const fb_mp *mp,
                    const char *derived);

#endif
