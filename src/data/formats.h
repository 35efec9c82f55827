/* Readers and writers of the standard on-disk formats; each format has one
 * module (imagefolder.c, coco.c, segmask.c, image_io.c). Every malformed
 * input is an error naming the file and the field. */
#ifndef FB_DATA_FORMATS_H
#define FB_DATA_FORMATS_H

#include "data/dataset.h"
#include "fbnet.h"

/* ---- images (PNG via libpng, JPEG via libjpeg-turbo) ------------------ */
/* Decodes an image file into 8-bit HWC with `want_c` channels (1 or 3;
 * 0 keeps the file's own, grey stays 1, RGBA drops alpha). */
int fb_image_read(const char *path, int want_c, uint8_t **px, int *h, int *w, int *c,
                  fb_status *st);
/* Writes JPEG at quality 95 (atomic). */
int fb_jpg_write(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st);
/* Reads an 8-bit single-channel PNG mask. */
int fb_mask_read(const char *path, uint8_t **mask, int *h, int *w, fb_status *st);
/* Writes PNG (atomic: PATH.tmp then rename). */
int fb_png_write(const char *path, const uint8_t *px, int h, int w, int c, fb_status *st);

/* The entries of dir (hidden ones skipped) that are sub-directories
 * (want_dir 1) or image files by extension (.png, .jpg, .jpeg; want_dir 0),
 * sorted by name, each malloc'd. */
int fb_list_dir(const char *dir, int want_dir, char ***names, int *count, fb_status *st);
int fb_is_image_name(const char *name);

/* ---- classification: one sub-folder per class ------------------------- */
/* DIR/<class>/<image>.{png,jpg,jpeg}; classes sorted by name, images sorted
 * by name within a class. An empty class folder or no class at all is an
 * error; a file that cannot be decoded is an error naming it. */
int fb_imagefolder_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st);
/* Every image under dir, recursively (hidden entries skipped; a folder's
 * files sorted by name, then its sub-folders in name order), without labels (label -1): what `fbnet predict --images` reads.
 * out->root = dir. No image at all is an error. */
int fb_imagetree_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st);

/* ---- detection: COCO JSON --------------------------------------------- */
/* Reads `json_path` (images, annotations with bbox [x,y,w,h], category_id,
 * iscrowd, area; categories) and decodes every image from image_dir/<file_name>
 * (image_dir NULL: the annotations only, no pixels; sample.file = file_name:
 * proxy sets' boxes, ground truth whose images live elsewhere). A box's score
 * is its annotation's "score" (pseudo-labels; 1 when absent, must lie in
 * [0, 1]).
 * Errors name the file and field: missing keys, wrong types, negative or
 * out-of-image bbox, unknown category_id, duplicate ids, unknown image_id. */
int fb_coco_load(const char *json_path, const char *image_dir, int want_c, fb_mt_dataset *out,
                 fb_status *st);
/* Writes the ground truth of d as COCO JSON: the samples with boxes, or every
 * sample when all_images (an image list for predictions on unlabelled
 * images); file_name is the sample's path relative to d->root (its base name
 * when d->root is NULL). */
int fb_coco_write_gt(const char *json_path, const fb_mt_dataset *d, int all_images,
                     fb_status *st);
/* Writes detections (COCO results format: image_id, category_id, bbox, score). */
typedef struct fb_det {
  int image_id;
  fb_box box; /* box.cat contiguous index; box.score */
} fb_det;
int fb_coco_write_results(const char *json_path, const fb_det *dets, int n, const int *cat_ids,
                          fb_status *st);
/* Reads a COCO results file back (category ids mapped through cat_ids). */
int fb_coco_load_results(const char *json_path, const int *cat_ids, int num_cats, fb_det **dets,
                         int *n, fb_status *st);

/* ---- segmentation: image + PNG mask ----------------------------------- */
/* DIR/images/<name>.png|jpg and DIR/masks/<name>.png (8-bit, one class index
 * per pixel, 255 = ignore); DIR/classes.txt lists class names one per line.
 * Errors: a mask whose size differs from its image, a missing mask, a mask
 * value >= number of classes (other than 255), a truncated PNG. */
int fb_segset_load(const char *dir, int want_c, fb_mt_dataset *out, fb_status *st);
int fb_mask_write(const char *path, const uint8_t *mask, int h, int w, fb_status *st);

#endif
