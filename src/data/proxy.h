/* The proxy multi-task data set (docs/method.md section 5): images that carry a class
 * label from their folder, pseudo boxes from a detection teacher and pseudo
 * masks from a segmentation teacher, written by `fbnet label` and read back
 * as one fb_mt_dataset by the search. Full description: docs/proxy-data.md.
 *
 * Layout under DIR (split = "train", "val", ...):
 *   DIR/proxy.json                      manifest (format "fbnet-proxy-1",
 *                                       tasks, splits, teachers, counts)
 *   DIR/cls_classes.txt                 classification class names, index order
 *   DIR/<split>/labels.csv              "file,class" header, one row per image
 *   DIR/<split>/images/<class>__<name>  the images (copied byte for byte)
 *   DIR/<split>.json                    det: COCO boxes with "score" (when the
 *                                       det teacher ran)
 *   DIR/<split>/masks/<stem>.png        seg: 8-bit masks, 255 = ignore (when
 *                                       the seg teacher ran)
 *   DIR/<split>/classes.txt             seg: class names, one per line
 * so `fbnet train --task det|seg --data DIR` reads the pseudo-labels with the
 * standard readers (src/data/formats.h) as well. */
#ifndef FB_DATA_PROXY_H
#define FB_DATA_PROXY_H

#include "data/dataset.h"
#include "fbnet.h"

#define FB_PROXY_FORMAT "fbnet-proxy-1"

/* What a labelling run records in the manifest. */
typedef struct fb_proxy_info {
  unsigned tasks;            /* FB_TASK_CLS | (FB_TASK_DET) | (FB_TASK_SEG) */
  const char *det_teacher;   /* weights paths (NULL: that teacher did not run) */
  const char *seg_teacher;
  double score_thresh;       /* boxes kept: score >= score_thresh */
  double mask_thresh;        /* pixels with max softmax probability below: 255 */
  char **seg_class_names;    /* d->num_seg_classes names, or NULL ("class_<k>") */
} fb_proxy_info;

/* Checks, before any expensive work, that split `split` of DIR can be
 * written: creates DIR, DIR/<split>, DIR/<split>/images (and masks/ when
 * tasks has FB_TASK_SEG); DIR/<split> must be empty (no silent mixing with an
 * earlier run); an existing manifest must list the same tasks and an existing
 * cls_classes.txt the same class names. */
int fb_proxy_prepare(const char *dir, const char *split, unsigned tasks, char *const *class_names,
                     int num_classes, int force, fb_status *st);

/* (force: the files of an existing split's images/ and masks/ are removed
 * instead of refusing; tasks and class names must still agree.) */
/* Writes split `split` of d: every sample must have `file` (the source image,
 * copied), `label` in 0..num_classes-1, boxes (has_boxes) when info->tasks has
 * FB_TASK_DET and an h*w mask when it has FB_TASK_SEG. Categories:
 * d->cat_ids / d->cat_names (NULL: ids 1..K, names "cat<id>"). The JSON and
 * text files are written to PATH.tmp and renamed; the manifest is merged with
 * the other splits of an existing one. */
int fb_proxy_write(const char *dir, const char *split, const fb_mt_dataset *d,
                   const fb_proxy_info *info, fb_status *st);

/* The flat file name of sample i in DIR/<split>/images: "<class>__<basename>"
 * (malloc'd). */
char *fb_proxy_file_name(const fb_mt_dataset *d, int i);

/* Reads split `split` of DIR (the first `limit` rows of labels.csv; 0: all)
 * into one data set, in labels.csv order: label, boxes (has_boxes = 1, score
 * from the JSON) when the manifest has det, mask (NULL otherwise) when it has
 * seg; num_classes/class_names, num_cats/cat_ids/cat_names, num_seg_classes.
 * Images are decoded as 3-channel RGB. Every malformed input is an error
 * naming the file and field (missing manifest, a labels.csv row for a
 * missing image, an unknown class, a mask whose size differs from its image,
 * a score outside [0, 1], ...). */
int fb_proxy_load(const char *dir, const char *split, int limit, fb_mt_dataset *d,
                  fb_status *st);

/* The FB_TASK_* bits listed in DIR/proxy.json. */
int fb_proxy_tasks(const char *dir, unsigned *tasks, fb_status *st);


#endif
