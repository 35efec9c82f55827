/* Pseudo-labelling (docs/method.md section 5), the library behind `fbnet label`: a
 * trained detection teacher and/or segmentation teacher run over an image
 * folder with class labels only (DIR/<class>/<image>); their boxes (score >=
 * score_thresh) and masks (pixels whose max softmax probability is below
 * mask_thresh become 255 = ignore), mapped back to each image's own size, are
 * written as split `split` of the proxy data set OUT (src/data/proxy.h,
 * docs/proxy-data.md). With a truth directory (det.json and
 * masks/<stem>.png of the same images, matched by file name, e.g. the demo
 * scenes' proxy/truth) the pseudo-labels' quality is measured as well. */
#ifndef FB_TASKS_LABEL_H
#define FB_TASKS_LABEL_H

#include <stdio.h>

#include "fbnet.h"
#include "tasks/det/coco_eval.h"

typedef struct fb_label_cfg {
  const char *det_teacher;    /* det teacher weights (.safetensors); NULL: none */
  const char *seg_teacher;    /* seg teacher weights; NULL: none (one is required) */
  const char *det_arch;       /* arch files of the teachers; NULL: the arch */
  const char *seg_arch;       /*   stored in the weights ("arch_json") */
  const char *images;         /* image folder DIR/<class>/<image> (required) */
  const char *out;            /* proxy data set directory (required) */
  const char *split;          /* split written ("train") */
  double score_thresh;        /* boxes kept: score >= this (0.3) */
  double mask_thresh;         /* pixels below this max probability: 255 (0.5) */
  const char *det_categories; /* COCO JSON naming the det classes; NULL: cat<id> */
  const char *seg_classes;    /* classes.txt naming the seg classes; NULL: class_<k> */
  const char *truth;          /* truth directory; NULL: no quality measure */
  int batch;                  /* images per forward pass (32) */
  int threads;                /* image loader threads (0: 1); the caller sets
                                 the OpenMP thread count */
  int limit;                  /* label this many images spread evenly over the
                                 folder order (0: all) */
  int quiet;                  /* 0: progress lines, to log */
  const fb_logger *log;       /* NULL: silent */
  int force;                  /* 1: replace the files of an existing split */
} fb_label_cfg;

fb_label_cfg fb_label_cfg_default(void);

/* Boxes against truth/det.json, on the labelled images it lists. */
typedef struct fb_label_det_quality {
  int images;                             /* labelled images found in the truth */
  double precision50, recall50;           /* pseudo boxes matched at IoU 0.5 */
  double pseudo_boxes[FB_COCO_NSTATS];    /* COCO stats of the pseudo boxes */
  double all_detections[FB_COCO_NSTATS];  /* of every teacher detection */
} fb_label_det_quality;

/* Masks against truth/masks/<stem>.png, on the images that have one. */
typedef struct fb_label_seg_quality {
  int images, classes;
  double pseudo_miou, pseudo_pixel_acc; /* on the pixels the pseudo mask labels */
  double labelled_fraction;             /* share of truth pixels labelled */
  double argmax_miou, argmax_pixel_acc; /* of the plain argmax (no threshold) */
  double pseudo_class_iou[256];         /* `classes` values */
  double class_labelled_fraction[256];  /* `classes` values; -1: class absent */
} fb_label_seg_quality;

typedef struct fb_label_result {
  int written;                  /* 1 once the split is written (the counts are
                                   valid even when the truth measure failed) */
  unsigned tasks;               /* FB_TASK_CLS | FB_TASK_DET? | FB_TASK_SEG? */
  int images;                   /* images labelled (masks: one per image) */
  long boxes;                   /* pseudo boxes written */
  double ignored_pixel_fraction;/* mask pixels set to 255 (seg) */
  double seconds;               /* loading, labelling and writing */
  int has_truth;                /* 1: det (when det ran) and seg (when seg ran)
                                   quality measured */
  fb_label_det_quality det;
  fb_label_seg_quality seg;
} fb_label_result;

/* Loads the teachers, labels the images and writes the split; then, with
 * c->truth, measures the quality. Fills *r (see `written`); returns 0, or -1
 * with the reason in st (naming the file). */
int fb_label_run(const fb_label_cfg *c, fb_label_result *r, fb_status *st);

/* The one JSON line of `fbnet label`: out, split, images, box and mask counts,
 * seconds and, when r->has_truth, the "truth" object; ends with "}\n". */
void fb_label_result_json(FILE *o, const fb_label_cfg *c, const fb_label_result *r);

#endif
