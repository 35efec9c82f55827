/* Fashion-MNIST from its IDX files (gzip-compressed, as Debian's
 * dataset-fashion-mnist installs them under /usr/share/datasets/fashion-mnist):
 *   {train,t10k}-images-idx3-ubyte.gz: magic 2051, count, 28, 28, then bytes
 *   {train,t10k}-labels-idx1-ubyte.gz: magic 2049, count, then bytes 0..9
 * (big-endian 32-bit header fields). Files are read through zlib, so an
 * uncompressed IDX file under the same name is accepted as well. */
#ifndef FB_DATA_FMNIST_H
#define FB_DATA_FMNIST_H

#include <stdint.h>

#include "fbnet.h"

#define FB_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FB_FMNIST_CLASSES 10

/* A set of 8-bit grey images with one class label each. */
typedef struct fb_dataset_u8 {
  int n;           /* number of images */
  int h, w;        /* image size (28 x 28 for Fashion-MNIST) */
  int num_classes; /* labels lie in [0, num_classes) */
  uint8_t *images; /* (n, h, w) row-major */
  uint8_t *labels; /* (n) */
} fb_dataset_u8;

/* Loads the train (train != 0) or test split from `dir`. dir NULL, "" or the
 * alias "fashion-mnist" mean FB_FMNIST_DEFAULT_DIR. On failure *out is left
 * empty (zeroed) and st names the file and what is wrong with it. */
int fb_fmnist_load(const char *dir, int train, fb_dataset_u8 *out, fb_status *st);

/* Reads one IDX image file (magic 2051, any h x w) or label file (magic 2049)
 * into freshly allocated memory; the building blocks of fb_fmnist_load. */
int fb_idx_read_images(const char *path, uint8_t **images, int *n, int *h, int *w, fb_status *st);
int fb_idx_read_labels(const char *path, uint8_t **labels, int *n, fb_status *st);

void fb_dataset_u8_free(fb_dataset_u8 *d);

/* The first n images of ds (all when n <= 0 or n > ds->n) as a multi-task
 * data set: grey samples named "<prefix>_00000" ... in order, labelled, with
 * the Fashion-MNIST class names (what `fbnet predict --data fashion-mnist`
 * writes predictions for). */
struct fb_mt_dataset;
void fb_fmnist_to_mt(const fb_dataset_u8 *ds, int n, const char *prefix,
                     struct fb_mt_dataset *out);

#endif
