/* COCO box evaluation with the semantics of the reference COCOeval
 * (pycocotools, iouType "bbox"): per image and category, greedy matching of
 * detections in score order to the best-IoU free ground truth, crowd regions
 * and out-of-range boxes ignored, 10 IoU thresholds .50:.05:.95, 101-point
 * interpolated precision, maxDets 1/10/100, area ranges all/small/medium/large
 * (ground truth by its "area" field, detections by w*h), categories without
 * ground truth left out of the means.
 *
 * Which images are evaluated: the samples of the ground-truth dataset that
 * carry box annotations (has_boxes set, or n_boxes > 0), like pycocotools
 * evaluates the image ids of the ground-truth file. A detection whose
 * image_id is no sample of the ground truth is an error (pycocotools' loadRes
 * refuses such results); one on a sample without box annotations is ignored.
 * Scores are doubles, so a results file is ranked at its full precision. */
#ifndef FB_TASKS_COCO_EVAL_H
#define FB_TASKS_COCO_EVAL_H

#include "data/dataset.h"
#include "data/formats.h"
#include "fbnet.h"

/* The 12 numbers of COCOeval.summarize(), in its order. A value of -1 means
 * "no category has ground truth in that setting" (as pycocotools prints). */
enum {
  FB_COCO_AP = 0,   /* AP @[.50:.95], all areas, maxDets 100 */
  FB_COCO_AP50,     /* AP @.50 */
  FB_COCO_AP75,     /* AP @.75 */
  FB_COCO_AP_S,     /* AP small  (area <= 32^2) */
  FB_COCO_AP_M,     /* AP medium (32^2 <= area <= 96^2) */
  FB_COCO_AP_L,     /* AP large  (area >= 96^2) */
  FB_COCO_AR1,      /* AR maxDets 1 */
  FB_COCO_AR10,     /* AR maxDets 10 */
  FB_COCO_AR100,    /* AR maxDets 100 */
  FB_COCO_AR_S,
  FB_COCO_AR_M,
  FB_COCO_AR_L,
  FB_COCO_NSTATS
};

/* Short names ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
 * "AR100", "ARs", "ARm", "ARl") for JSON keys and tables. */
extern const char *const fb_coco_stat_names[FB_COCO_NSTATS];

/* Evaluates `n_dets` detections (box.cat = contiguous category index of gt,
 * box.score; box x,y,w,h in pixels) against the boxes of `gt` (box.cat,
 * box.iscrowd, box.area). Fills stats[FB_COCO_NSTATS]; when cat_ap is not
 * NULL it gets gt->num_cats values: AP @[.50:.95] (all areas, maxDets 100)
 * of each category, -1 for a category without ground truth.
 * Errors: a box or detection category outside 0..num_cats-1, a non-finite
 * score or coordinate, two evaluated samples with the same image_id. */
int fb_coco_eval_bbox(const fb_mt_dataset *gt, const fb_det *dets, int n_dets,
                      double stats[FB_COCO_NSTATS], double *cat_ap, fb_status *st);

/* IoU of a detection and a ground-truth box as COCO computes it: boxes are
 * [x,y,w,h] with no +1, and for a crowd gt the union is the detection area. */
double fb_coco_box_iou(const fb_box *dt, const fb_box *gt, int gt_iscrowd);

/* The evaluation grids: thresholds[10] (numpy linspace(.5, .95, 10) values,
 * bit for bit) and recall points[101] (linspace(0, 1, 101)). */
void fb_coco_iou_thresholds(double out[10]);
void fb_coco_recall_points(double out[101]);

#endif
