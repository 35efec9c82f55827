/* What a weights file records about its model, and the checks every user of
 * a trained model (fb_model_open, fbnet eval, predict, export) makes before
 * building the network: the one place that opens a trained model. */
#ifndef FB_API_MODEL_INFO_H
#define FB_API_MODEL_INFO_H

#include "data/dataset.h"
#include "fbnet.h"

/* What the weights file records: build options (b.tasks = the trained heads;
 * num_classes defaults to Fashion-MNIST's 10 for weights that do not record
 * it), the "format" tag (NULL when absent), the arch file's JSON text
 * (metadata "arch_json"; NULL for weights written before fbnet stored it) and
 * the label names ("labels"; none for older weights). */
typedef struct fb_model_info {
  fb_build_opts b;
  char *format;
  char *arch_text;
  fb_mt_dataset names;
} fb_model_info;

int fb_model_info_read(const char *weights, fb_model_info *m, fb_status *st);
void fb_model_info_free(fb_model_info *m);
/* An error unless --arch was given or the weights carry their arch. */
int fb_model_info_need_arch(const char *weights, const char *arch_path, const fb_model_info *m,
                         fb_status *st);
/* An error unless the weights have the head of `task` (one FB_TASK_* bit). */
int fb_model_info_need_task(const char *weights, const fb_build_opts *b, unsigned task,
                         fb_status *st);
/* The arch from --arch when given, else from the weights' arch_json. */
fb_arch *fb_model_info_arch(const char *weights, const char *arch_path, const fb_model_info *m,
                         fb_status *st);

#endif
