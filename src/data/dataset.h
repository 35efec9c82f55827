/* Multi-task samples: one image with any of a class label, boxes and a
 * segmentation mask. The three standard on-disk formats load into this one
 * structure (src/data/imagefolder.c, src/data/coco.c, src/data/segmask.c), the
 * demo-scene generator and the pseudo-labeller write them, and the loaders of
 * every task read it. Images are kept decoded in memory as 8-bit HWC. */
#ifndef FB_DATA_DATASET_H
#define FB_DATA_DATASET_H

#include <stdint.h>

#include "fbnet.h"

typedef struct fb_box {
  float x, y, w, h; /* COCO convention: top-left corner and size, pixels */
  int cat;          /* contiguous category index 0..K-1 (see fb_mt_dataset.cat_ids) */
  int iscrowd;
  float area;       /* COCO "area" (the mask area for crowd/segment annotations) */
  double score;     /* detections/pseudo-labels; 1 for ground truth (double: COCO results files are compared at full precision) */
} fb_box;

typedef struct fb_sample {
  char *file;       /* path the image was read from (for messages), owned */
  int image_id;     /* COCO image id (or index) */
  int h, w, c;      /* image size, channels (1 or 3) */
  uint8_t *px;      /* h*w*c, HWC, owned */
  int label;        /* class index, -1 when none */
  int n_boxes;
  fb_box *boxes;    /* owned, NULL when n_boxes == 0 */
  int has_boxes;    /* 1 when this sample carries box annotations (even zero boxes) */
  uint8_t *mask;    /* h*w class indices, 255 = ignore; NULL when none; owned */
} fb_sample;

typedef struct fb_mt_dataset {
  int n;
  fb_sample *s;
  int num_classes;   /* classification classes (image folders) */
  char **class_names;
  int num_cats;      /* detection categories */
  int *cat_ids;      /* COCO category_id of each contiguous index */
  char **cat_names;
  int num_seg_classes; /* segmentation classes (mask values 0..num_seg_classes-1) */
  char *root;        /* directory the sample files were found under (NULL: unknown); owned */
} fb_mt_dataset;

void fb_mt_dataset_free(fb_mt_dataset *d);
/* The sample's file relative to d->root ("a/b.png" for ROOT/a/b.png); the
 * base name when the file is not under the root. Points into s->file. */
const char *fb_sample_relname(const fb_mt_dataset *d, const fb_sample *s);
/* Appends a sample (moved: the dataset owns its buffers afterwards). */
void fb_mt_dataset_push(fb_mt_dataset *d, fb_sample *s);

#endif
