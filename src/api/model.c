/* A trained model behind the public API (include/fbnet.h: fb_model_*): the
 * weights' network planned for inference, its input, its named outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/model_info.h"
#include "core/status.h"
#include "data/formats.h"
#include "data/loader.h"
#include "io/safetensors.h"
#include "nn/net.h"
#include "tasks/task.h"
#include "train/mt_trainer.h"

enum { MODEL_MAX_OUTPUTS = 4 * FB_TASKS_MAX };

struct fb_model {
  fb_model_info info;
  fb_net *net;
  int batch, last_n;
  int n_out;
  int out_node[MODEL_MAX_OUTPUTS], out_rank[MODEL_MAX_OUTPUTS];
  char out_name[MODEL_MAX_OUTPUTS][32];
};

/* The heads to build: every head of the weights, or those asked for. */
static int pick_tasks(const char *weights, const fb_model_opts *o, fb_model_info *info,
                      fb_status *st) {
  if (!o || !o->tasks) return 0;
  for (int k = 0; fb_task_at(k); k++) {
    const unsigned id = fb_task_at(k)->id;
    if ((o->tasks & id) && fb_model_info_need_task(weights, &info->b, id, st)) return -1;
  }
  if (o->tasks & ~fb_task_all())
    return fb_fail(st, "fb_model_open: tasks 0x%x holds bits that are no task", o->tasks);
  info->b.tasks = o->tasks;
  return 0;
}

/* Output names "<task>.<output>" from the task rows ("det.box"). */
static void list_outputs(fb_model *m) {
  const fb_net *net = m->net;
  for (int k = 0; fb_task_at(k); k++) {
    const fb_task_row *r = fb_task_at(k);
    int nodes[4];
    const int n = (net->tasks & r->id) ? r->outputs(net, nodes) : 0;
    for (int i = 0; i < n && m->n_out < MODEL_MAX_OUTPUTS; i++) {
      snprintf(m->out_name[m->n_out], sizeof m->out_name[0], "%s.%s", r->name,
               r->output_names[i]);
      m->out_rank[m->n_out] = r->output_ranks[i];
      m->out_node[m->n_out++] = nodes[i];
    }
  }
}

static int open_net(fb_model *m, const char *weights, const fb_model_opts *o, int all_heads,
                    fb_status *st) {
  fb_arch *arch = fb_model_info_arch(weights, o ? o->arch_path : NULL, &m->info, st);
  if (!arch) return -1;
  m->net = fb_net_build(arch, &m->info.b, 1, st);
  fb_arch_free(arch);
  if (!m->net || fb_net_plan_inference(m->net, m->batch, st)) return -1;
  if (fb_safetensors_load_into_ex(&m->net->g.params, weights, all_heads ? FB_ST_REQUIRE_ALL : 0,
                                  st) < 0)
    return -1;
  list_outputs(m);
  return 0;
}

fb_model *fb_model_open(const char *weights, const fb_model_opts *o, fb_status *st) {
  if (!weights) {
    fb_fail(st, "fb_model_open: no weights file");
    return NULL;
  }
  fb_model *m = fb_xcalloc(1, sizeof *m);
  m->batch = o && o->batch > 0 ? o->batch : 1;
  int rc = fb_model_info_read(weights, &m->info, st);
  if (rc == 0 && m->info.format && strcmp(m->info.format, "fbnet-weights-1") != 0)
    rc = fb_fail(st, "%s: format '%s' (expected fbnet-weights-1; a checkpoint holds optimizer "
                 "state too: use weights.safetensors)", weights, m->info.format);
  if (rc == 0) rc = fb_model_info_need_arch(weights, o ? o->arch_path : NULL, &m->info, st);
  if (rc == 0) rc = pick_tasks(weights, o, &m->info, st);
  if (rc == 0) rc = open_net(m, weights, o, !o || !o->tasks, st);
  if (rc) {
    fb_model_free(m);
    return NULL;
  }
  return m;
}

void fb_model_free(fb_model *m) {
  if (!m) return;
  fb_net_free(m->net);
  fb_model_info_free(&m->info);
  free(m);
}

unsigned fb_model_tasks(const fb_model *m) { return m->net->tasks; }
int fb_model_batch(const fb_model *m) { return m->batch; }
int fb_model_input_size(const fb_model *m) { return m->net->opts.input_size; }
int fb_model_in_channels(const fb_model *m) { return m->net->opts.in_channels; }
int fb_model_num_classes(const fb_model *m) {
  return (m->net->tasks & FB_TASK_CLS) ? m->net->opts.num_classes : 0;
}

const char *fb_model_class_name(const fb_model *m, int k) {
  const fb_mt_dataset *d = &m->info.names;
  return d->class_names && k >= 0 && k < d->num_classes ? d->class_names[k] : NULL;
}

const char *fb_model_category_name(const fb_model *m, int k) {
  const fb_mt_dataset *d = &m->info.names;
  return d->cat_names && k >= 0 && k < d->num_cats ? d->cat_names[k] : NULL;
}

float *fb_model_input(fb_model *m) { return fb_net_input(m->net); }

/* One image through the evaluation loader (the framing `fbnet eval` uses). */
int fb_model_load_image(const fb_model *m, const char *path, float *dst, fb_status *st) {
  fb_mt_dataset d;
  memset(&d, 0, sizeof d);
  d.s = fb_xcalloc(1, sizeof *d.s);
  d.n = 1;
  fb_sample *s = &d.s[0];
  s->label = -1;
  s->file = fb_xstrdup(path);
  const int want_c = m->net->opts.in_channels == 1 ? 1 : 3;
  int rc = fb_image_read(path, want_c, &s->px, &s->h, &s->w, &s->c, st);
  fb_loader *l = rc ? NULL : fb_mt_loader_create(&d, m->net, 1, 0, NULL, 1, st);
  const fb_batch *b = NULL;
  if (l) {
    fb_loader_start_epoch(l, 0);
    b = fb_loader_next(l);
  }
  if (b) {
    const size_t per = (size_t)b->c * b->size * b->size;
    memcpy(dst, b->images, per * sizeof(float));
  } else if (rc == 0) {
    rc = fb_fail(st, "%s: the loader gave no image", path);
  }
  fb_loader_free(l);
  fb_mt_dataset_free(&d);
  return rc ? -1 : 0;
}

int fb_model_run(fb_model *m, int n, fb_status *st) {
  if (n < 1 || n > m->batch)
    return fb_fail(st, "fb_model_run: %d images (the model was opened for 1..%d)", n, m->batch);
  const fb_net *net = m->net;
  const size_t per = (size_t)net->opts.in_channels * net->opts.input_size * net->opts.input_size;
  const float *x = fb_net_input(m->net);
  for (size_t i = 0; i < (size_t)n * per; i++)
    if (!isfinite(x[i]))
      return fb_fail(st, "fb_model_run: value %zu (image %zu) is %g: the input must be "
                     "finite", i, i / per, (double)x[i]);
  fb_net_forward(m->net, 0);
  m->last_n = n;
  return 0;
}

int fb_model_det_levels(const fb_model *m, int *stride, int *h, int *w, int *offset) {
  const fb_fcos_head *d = &m->net->det;
  if (!(m->net->tasks & FB_TASK_DET)) return 0;
  for (int l = 0; l < d->n_levels; l++)
    stride[l] = d->stride[l], h[l] = d->h[l], w[l] = d->w[l], offset[l] = d->offset[l];
  return d->n_levels;
}

int fb_model_num_outputs(const fb_model *m) { return m->n_out; }

int fb_model_output_at(const fb_model *m, int i, fb_output *o, fb_status *st) {
  if (i < 0 || i >= m->n_out)
    return fb_fail(st, "fb_model_output_at: output %d of %d", i, m->n_out);
  if (m->last_n < 1) return fb_fail(st, "fb_model_output: no fb_model_run yet");
  const fb_node *nd = &m->net->g.nodes[m->out_node[i]];
  const fb_shape s = nd->args.out;
  memset(o, 0, sizeof *o);
  o->name = m->out_name[i];
  o->data = fb_graph_output(&m->net->g, m->out_node[i]);
  o->rank = m->out_rank[i];
  const int dims[4] = {m->last_n, s.c, s.h, s.w};
  for (int k = 0; k < o->rank; k++) o->shape[k] = dims[k];
  return 0;
}

int fb_model_output(const fb_model *m, const char *name, fb_output *o, fb_status *st) {
  for (int i = 0; name && i < m->n_out; i++)
    if (strcmp(m->out_name[i], name) == 0) return fb_model_output_at(m, i, o, st);
  char have[256] = "";
  for (int i = 0; i < m->n_out; i++)
    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "",
             m->out_name[i]);
  return fb_fail(st, "fb_model_output: no output '%s' (this model has: %s)", name ? name : "",
                 have);
}
