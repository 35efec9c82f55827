/* The label names a trained model carries in its weights (metadata key
 * "labels"), so that evaluation and prediction on any folder name classes
 * and categories as the model knows them, not as the folder lists them:
 *   {"classes": ["name", ...]}                        classification
 *   {"categories": [{"id": 1, "name": "x"}, ...]}     detection (COCO ids)
 * Names live in an fb_mt_dataset with no samples (n = 0): num_classes and
 * class_names, num_cats, cat_ids and cat_names. */
#ifndef FB_DATA_LABELS_H
#define FB_DATA_LABELS_H

#include "data/dataset.h"
#include "fbnet.h"

/* The names of d that the tasks use, as JSON text (malloc'd); NULL when d
 * has none of them. */
char *fb_labels_to_json(const fb_mt_dataset *d, unsigned tasks);
/* Parses fb_labels_to_json's text into names (zeroed first; free with
 * fb_mt_dataset_free). path names the file in messages. */
int fb_labels_from_json(const char *json, const char *path, fb_mt_dataset *names, fb_status *st);

/* Classification: re-labels every sample of d (labels index d's own class
 * list) with the index of the class of the same name in model (model->
 * class_names, model->num_classes), and replaces d's class list by the
 * model's. A class of d that the model does not know is an error naming it
 * and the model's classes. */
int fb_labels_map_classes(fb_mt_dataset *d, const fb_mt_dataset *model, const char *what,
                          fb_status *st);
/* Index of name in names[0..n), -1 when absent. */
int fb_name_index(char *const *names, int n, const char *name);

/* The class names of Fashion-MNIST, index 0..9 (folder-safe spellings). */
const char *fb_fmnist_class_name(int c);

#endif
