/* A training/eval batch for any task: images as a float tensor and the
 * annotations moved with the image by augmentation (flip, scale, crop), in
 * batch-image pixel coordinates. Built by src/data/loader.c, consumed by the
 * task heads (src/tasks) to fill their target tensors. */
#ifndef FB_DATA_BATCH_H
#define FB_DATA_BATCH_H

#include "data/dataset.h"

typedef struct fb_batch {
  int n, c, size;     /* images are (n, c, size, size), normalised */
  float *images;
  int *labels;        /* n class indices (-1: none) */
  int *n_boxes;       /* n */
  fb_box **boxes;     /* n arrays, coordinates in the size x size image */
  uint8_t *masks;     /* n * size * size, 255 = ignore (also padding); NULL if no masks */
  int *index;         /* dataset index of each item */
  /* scale and offset that map batch pixels back to original image pixels:
   * orig = (batch - offset) / scale (eval: for writing predictions) */
  float *scale, *off_x, *off_y;
} fb_batch;

#endif
