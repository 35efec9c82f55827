/* Random multi-task samples for benchmarks and tests (no files): each image
 * carries a class label, boxes and a segmentation mask that agree with its
 * pixels. */
#ifndef FB_DATA_SYNTH_H
#define FB_DATA_SYNTH_H

#include <stdint.h>

#include "data/dataset.h"

/* n RGB images of size x size on a dark noisy background, each with 1-3
 * axis-aligned rectangles of random category c < num_cats, colour tinted by
 * c; boxes = the rectangles' visible extents, mask = c + 1 where the
 * topmost rectangle is (0 background), label = category of the largest
 * rectangle. num_classes = num_cats, num_seg_classes = num_cats + 1,
 * category ids 1..num_cats. Deterministic from seed. */
int fb_synth_dataset(int n, int size, int num_cats, uint64_t seed, fb_mt_dataset *d,
                     fb_status *st);

#endif
