/* Opening a trained model for the commands that run one (eval, predict,
 * infer): what the weights file records and the checks every such command
 * makes before building the network. */
#ifndef FB_TOOLS_MODEL_H
#define FB_TOOLS_MODEL_H

#include "data/dataset.h"
#include "fbnet.h"

/* What the weights file records: build options (b.tasks = the trained heads;
 * num_classes defaults to Fashion-MNIST's 10 for weights that do not record
 * it), the "format" tag (NULL when absent), the arch file's JSON text
 * (metadata "arch_json"; NULL for weights written before fbnet stored it) and
 * the label names ("labels"; none for older weights). */
typedef struct tool_model {
  fb_build_opts b;
  char *format;
  char *arch_text;
  fb_mt_dataset names;
} tool_model;

int tool_model_read(const char *weights, tool_model *m, fb_status *st);
void tool_model_free(tool_model *m);
/* An error unless --arch was given or the weights carry their arch. */
int tool_model_need_arch(const char *weights, const char *arch_path, const tool_model *m,
                         fb_status *st);
/* An error unless the weights have the head of `task` (one FB_TASK_* bit). */
int tool_model_need_task(const char *weights, const fb_build_opts *b, unsigned task,
                         fb_status *st);
/* The arch from --arch when given, else from the weights' arch_json. */
fb_arch *tool_model_arch(const char *weights, const char *arch_path, const tool_model *m,
                         fb_status *st);

#endif
