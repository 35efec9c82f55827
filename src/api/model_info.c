/* What a weights file records about its model (model_info.h). */
#include "api/model_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/fmnist.h"
#include "data/labels.h"
#include "io/safetensors.h"
#include "tasks/task.h"
#include "train/checkpoint.h"

int fb_model_info_read(const char *weights, fb_model_info *m, fb_status *st) {
  memset(m, 0, sizeof *m);
  m->b = fb_build_opts_default();
  m->b.num_classes = FB_FMNIST_CLASSES;
  fb_st_file f;
  if (fb_safetensors_read(weights, &f, st)) return -1;
  fb_weights_build_opts(&f, &m->b);
  const char *v = fb_st_meta(&f, "format");
  m->format = v ? fb_xstrdup(v) : NULL;
  v = fb_st_meta(&f, "arch_json");
  m->arch_text = v ? fb_xstrdup(v) : NULL;
  v = fb_st_meta(&f, "labels");
  int rc = v ? fb_labels_from_json(v, weights, &m->names, st) : 0;
  fb_st_file_free(&f);
  return rc;
}

void fb_model_info_free(fb_model_info *m) {
  free(m->format);
  free(m->arch_text);
  fb_mt_dataset_free(&m->names);
  memset(m, 0, sizeof *m);
}

int fb_model_info_need_arch(const char *weights, const char *arch_path, const fb_model_info *m,
                         fb_status *st) {
  if (arch_path || m->arch_text) return 0;
  return fb_fail(st, "%s has no arch_json metadata (weights written by an older fbnet): pass "
                 "--arch ARCH with the arch file it was trained from", weights);
}

int fb_model_info_need_task(const char *weights, const fb_build_opts *b, unsigned task,
                         fb_status *st) {
  if (b->tasks & task) return 0;
  char have[64] = "";
  for (int k = 0; fb_task_at(k); k++)
    if (b->tasks & fb_task_at(k)->id)
      snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", *have ? " " : "",
               fb_task_at(k)->name);
  return fb_fail(st, "%s: the weights have no %s head (tasks of the model: %s)", weights,
                 fb_task_name(task), have);
}

fb_arch *fb_model_info_arch(const char *weights, const char *arch_path, const fb_model_info *m,
                         fb_status *st) {
  return arch_path ? fb_arch_load(arch_path, st) : fb_arch_parse(m->arch_text, weights, st);
}
