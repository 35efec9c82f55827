#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/status.h"
#include "io/safetensors.h"
#include "train/optim.h"

static const char *const kinds[] = {"param", "m1", "m2", "ema"};

/* ---- integrity: CRC-32 of every tensor and of the metadata --------------- */

static uint32_t crc_bytes(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n > 0) { /* zlib takes uInt lengths */
    const uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    crc = (uint32_t)crc32(crc, b, chunk);
    b += chunk, n -= chunk;
  }
  return crc;
}

static size_t entry_numel(const fb_st_entry *e) {
  size_t n = 1;
  for (int k = 0; k < e->rank; k++) n *= (size_t)e->dims[k];
  return n;
}

/* CRC of the metadata pairs other than "checksums", in key order. */
static int cmp_key(const void *a, const void *b) {
  return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}
static uint32_t meta_crc(const char *const *kv, int n_pairs) {
  const char *const **order = fb_xmalloc(((size_t)n_pairs + 1) * sizeof *order);
  int m = 0;
  for (int i = 0; i < n_pairs; i++)
    if (strcmp(kv[2 * i], "checksums") != 0) order[m++] = &kv[2 * i];
  qsort(order, (size_t)m, sizeof *order, cmp_key);
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  for (int i = 0; i < m; i++) {
    crc = crc_bytes(crc, order[i][0], strlen(order[i][0]) + 1);
    crc = crc_bytes(crc, order[i][1], strlen(order[i][1]) + 1);
  }
  free(order);
  return crc;
}

/* {"meta": "xxxxxxxx", "tensors": {"name": "xxxxxxxx", ...}} */
static char *checksums_json(const fb_st_entry *e, int n, const char *const *meta) {
  int pairs = 0;
  while (meta[2 * pairs]) pairs++;
  cJSON *o = cJSON_CreateObject(), *t = cJSON_CreateObject();
  char hex[16];
  snprintf(hex, sizeof hex, "%08x", meta_crc(meta, pairs));
  cJSON_AddStringToObject(o, "meta", hex);
  for (int i = 0; i < n; i++) {
    const uint32_t c = crc_bytes((uint32_t)crc32(0L, Z_NULL, 0), e[i].data, entry_numel(&e[i]) * sizeof(float));
    snprintf(hex, sizeof hex, "%08x", c);
    cJSON_AddStringToObject(t, e[i].name, hex);
  }
  cJSON_AddItemToObject(o, "tensors", t);
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

/* Checks f against its "checksums" metadata (files without it, written by an
 * older fbnet, pass). */
static int verify_checksums(const fb_st_file *f, const char *path, fb_status *st) {
  const char *js = fb_st_meta(f, "checksums");
  if (!js) return 0;
  cJSON *o = cJSON_Parse(js);
  const cJSON *mc = cJSON_GetObjectItemCaseSensitive(o, "meta");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tensors");
  int rc = 0;
  char hex[16];
  if (!cJSON_IsString(mc) || !cJSON_IsObject(t)) {
    rc = fb_fail(st, "%s: damaged (metadata 'checksums' unreadable)", path);
  } else {
    snprintf(hex, sizeof hex, "%08x", meta_crc((const char *const *)f->meta, f->n_meta));
    if (strcmp(hex, mc->valuestring) != 0)
      rc = fb_fail(st, "%s: damaged: the metadata's checksum does not match", path);
  }
  for (int i = 0; rc == 0 && i < f->n; i++) {
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(t, f->t[i].name);
    const uint32_t c = crc_bytes((uint32_t)crc32(0L, Z_NULL, 0), f->t[i].data, f->t[i].numel * sizeof(float));
    snprintf(hex, sizeof hex, "%08x", c);
    if (!cJSON_IsString(want) || strcmp(hex, want->valuestring) != 0)
      rc = fb_fail(st, "%s: damaged: tensor '%s' does not match its checksum", path, f->t[i].name);
  }
  if (rc == 0 && cJSON_GetArraySize(t) != f->n)
    rc = fb_fail(st, "%s: damaged: %d tensors, the checksums list %d", path, f->n,
                 cJSON_GetArraySize(t));
  cJSON_Delete(o);
  return rc;
}

/* PATH.safetensors -> PATH.prev.safetensors: the checkpoint before the last. */
static char *prev_path(const char *path) {
  const size_t n = strlen(path);
  const char *ext = n > 12 && strcmp(path + n - 12, ".safetensors") == 0 ? path + n - 12 : path + n;
  const size_t stem = (size_t)(ext - path);
  char *p = fb_xmalloc(n + 8);
  memcpy(p, path, stem);
  strcpy(p + stem, ".prev");
  strcat(p, ext);
  return p;
}

static const float *kind_base(const fb_params *p, const fb_ema *ema, int k) {
  switch (k) {
    case 0: return p->data;
    case 1: return p->m1;
    case 2: return p->m2;
    default: return ema ? ema->shadow : NULL;
  }
}

int fb_checkpoint_write(const char *path, const fb_net *net, const fb_ema *ema, int epoch,
                        long step, const char *const *extra_meta, fb_status *st) {
  const fb_params *p = &net->g.params;
  int n_kinds = ema ? 4 : 3;
  fb_st_entry *e = fb_xcalloc((size_t)p->n * n_kinds + 1, sizeof *e);
  char **names = fb_xcalloc((size_t)p->n * n_kinds + 1, sizeof *names);
  int m = 0;
  for (int k = 0; k < n_kinds; k++)
    for (int i = 0; i < p->n; i++) {
      names[m] = fb_xmalloc(strlen(p->p[i].name) + 8);
      sprintf(names[m], "%s.%s", kinds[k], p->p[i].name);
      e[m].name = names[m];
      e[m].rank = fb_st_slot_dims(p->p[i].shape, 0, e[m].dims);
      e[m].data = kind_base(p, ema, k) + p->p[i].offset;
      m++;
    }
  if (p->steps) { /* per-slot update counts (supernets) */
    names[m] = fb_xstrdup("optim.steps");
    e[m].name = names[m];
    e[m].rank = 1;
    e[m].dims[0] = p->n;
    e[m].data = p->steps;
    m++;
  }
  char epoch_s[32], step_s[32];
  snprintf(epoch_s, sizeof epoch_s, "%d", epoch);
  snprintf(step_s, sizeof step_s, "%ld", step);
  const char *meta[26] = {"format", "fbnet-checkpoint-1", "epoch", epoch_s, "step", step_s,
                          "ema", ema ? "1" : "0", NULL};
  int k = 8;
  for (int i = 0; extra_meta && extra_meta[i] && extra_meta[i + 1] && k + 4 < 26; i += 2)
    meta[k++] = extra_meta[i], meta[k++] = extra_meta[i + 1];
  char *sums = checksums_json(e, m, meta);
  meta[k++] = "checksums";
  meta[k++] = sums;
  meta[k] = NULL;
  /* keep the previous checkpoint: a damaged newest one falls back to it */
  char *prev = prev_path(path);
  int rc = 0;
  if (rename(path, prev) != 0 && errno != ENOENT)
    rc = fb_fail_io(st, "%s: cannot keep the previous checkpoint as %s (%s)", path, prev,
                 strerror(errno));
  if (rc == 0) rc = fb_safetensors_write(path, e, m, meta, st);
  free(prev);
  free(sums);
  for (int i = 0; i < m; i++) free(names[i]);
  free(names);
  free(e);
  return rc;
}

static int restore_kind(const fb_st_file *f, const char *path, fb_params *p, float *base,
                        const char *kind, fb_status *st) {
  for (int i = 0; i < p->n; i++) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", kind, p->p[i].name);
    const fb_st_tensor *t = fb_st_find(f, name);
    if (!t) return fb_fail(st, "%s: tensor '%s' missing (different arch or options?)", path, name);
    if (t->numel != p->p[i].numel)
      return fb_fail(st, "%s: tensor '%s' has %zu values, the network expects %zu", path, name,
                     t->numel, p->p[i].numel);
    memcpy(base + p->p[i].offset, t->data, t->numel * sizeof(float));
  }
  return 0;
}

int fb_checkpoint_save(const char *out_dir, const fb_net *net, const fb_ema *ema, int epoch,
                       long step, const char *config, fb_status *st) {
  char path[1200];
  if (fb_path_in(path, sizeof path, out_dir, "checkpoint.safetensors", st)) return -1;
  const char *meta[] = {config ? "config" : NULL, config, NULL};
  return fb_checkpoint_write(path, net, ema, epoch, step, meta, st);
}

int fb_checkpoint_load(const char *out_dir, fb_net *net, fb_ema *ema, int *epoch, long *step,
                       const char *config, const fb_logger *lg, fb_status *st) {
  char path[1200];
  if (fb_path_in(path, sizeof path, out_dir, "checkpoint.safetensors", st)) return -1;
  return fb_checkpoint_read(path, net, ema, epoch, step, NULL, NULL, config, lg, st);
}

void fb_config_put(cJSON *o, const char *option, const char *fmt, ...) {
  char v[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  cJSON_AddStringToObject(o, option, v);
}

void fb_config_put_net(cJSON *o, const fb_net *net) {
  const fb_build_opts *b = &net->opts;
  const char *text = net->arch_text ? net->arch_text : net->name;
  fb_config_put(o, "--arch", "%s (crc %08x)", net->name,
                crc_bytes((uint32_t)crc32(0L, Z_NULL, 0), text, strlen(text)));
  fb_config_put(o, "--input", "%d", b->input_size);
  fb_config_put(o, "--width", "%g", b->width);
  fb_config_put(o, "--padding", "%s", b->standard_padding ? "standard" : "explicit");
  fb_config_put(o, "heads", "det %d/%d seg %d, %d classes", b->det_width, b->det_depth,
                b->seg_width, b->num_classes);
}

void fb_config_put_optim(cJSON *o, const fb_optim_cfg *c) {
  fb_config_put(o, "--optimizer", "%s", c->kind == FB_OPT_SGD ? "sgd" : "adamw");
  fb_config_put(o, "--lr", "%g", (double)c->lr);
  fb_config_put(o, "--wd", "%g", (double)c->weight_decay);
  if (c->kind == FB_OPT_SGD)
    fb_config_put(o, "--momentum", "%g%s", (double)c->momentum, c->nesterov ? " nesterov" : "");
}

void fb_config_put_recipe(cJSON *o, const fb_net *net, const fb_optim_cfg *optim,
                          const char *data, int batch, uint64_t seed, double warmup_epochs,
                          double final_lr_frac, double label_smoothing, double ema_decay) {
  fb_config_put_net(o, net);
  fb_config_put_optim(o, optim);
  fb_config_put(o, "--data", "%s", data);
  fb_config_put(o, "--batch", "%d", batch);
  fb_config_put(o, "--seed", "%llu", (unsigned long long)seed);
  fb_config_put(o, "--warmup", "%g", warmup_epochs);
  fb_config_put(o, "--final-lr", "%g", final_lr_frac);
  fb_config_put(o, "--label-smoothing", "%g", label_smoothing);
  fb_config_put(o, "--ema", "%g", ema_decay);
}

char *fb_config_finish(cJSON *o) {
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

/* The stored config against this command's: every option that differs. */
static int compare_config(const char *path, const char *stored, const char *now, fb_status *st) {
  cJSON *a = cJSON_Parse(stored), *b = cJSON_Parse(now);
  char diff[1536] = "";
  int n = 0;
  for (const cJSON *x = b ? b->child : NULL; x; x = x->next) {
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(a, x->string);
    const char *was = cJSON_IsString(y) ? y->valuestring : "(not set)";
    if (cJSON_IsString(x) && strcmp(was, x->valuestring) != 0 && strlen(diff) < sizeof diff - 200) {
      snprintf(diff + strlen(diff), sizeof diff - strlen(diff), "%s%s %s (the run has %s)",
               n ? ", " : "", x->string, x->valuestring, was);
      n++;
    }
  }
  cJSON_Delete(a);
  cJSON_Delete(b);
  if (n == 0) return 0;
  return fb_fail(st, "%s: --resume with other options than the run was started with: %s. Resume "
                 "with the run's options (only --epochs, --threads and --quiet may change) or "
                 "start a new run in another --out", path, diff);
}

static int read_one(const char *path, fb_net *net, fb_ema *ema, int *epoch, long *step,
                    const char *extra_key, char **extra_value, const char *config,
                    fb_status *st) {
  fb_st_file f;
  if (fb_safetensors_read(path, &f, st)) return -1;
  const char *stored = fb_st_meta(&f, "config");
  if (verify_checksums(&f, path, st) ||
      (config && stored && compare_config(path, stored, config, st))) {
    fb_st_file_free(&f);
    return -1;
  }
  int rc = -1;
  const char *fmt = fb_st_meta(&f, "format");
  const char *ep = fb_st_meta(&f, "epoch"), *sp = fb_st_meta(&f, "step");
  if (!fmt || strcmp(fmt, "fbnet-checkpoint-1") != 0 || !ep || !sp) {
    fb_fail(st, "%s: not an fbnet checkpoint (metadata format/epoch/step missing)", path);
    goto done;
  }
  fb_params *p = &net->g.params;
  if (restore_kind(&f, path, p, p->data, "param", st) ||
      restore_kind(&f, path, p, p->m1, "m1", st) || restore_kind(&f, path, p, p->m2, "m2", st))
    goto done;
  if (ema && restore_kind(&f, path, p, ema->shadow, "ema", st)) goto done;
  if (p->steps) {
    const fb_st_tensor *t = fb_st_find(&f, "optim.steps");
    if (!t || t->numel != (size_t)p->n) {
      fb_fail(st, "%s: tensor 'optim.steps' (%d per-slot update counts) missing or of the wrong "
              "size", path, p->n);
      goto done;
    }
    memcpy(p->steps, t->data, (size_t)p->n * sizeof(float));
  }
  if (extra_key) {
    const char *v = fb_st_meta(&f, extra_key);
    if (!v) {
      fb_fail(st, "%s: metadata '%s' missing", path, extra_key);
      goto done;
    }
    *extra_value = fb_xstrdup(v);
  }
  *epoch = atoi(ep);
  *step = atol(sp);
  rc = 0;
done:
  fb_st_file_free(&f);
  return rc;
}

int fb_checkpoint_read(const char *path, fb_net *net, fb_ema *ema, int *epoch, long *step,
                       const char *extra_key, char **extra_value, const char *config,
                       const fb_logger *lg, fb_status *st) {
  char *prev = prev_path(path);
  struct stat sb;
  const int have = stat(path, &sb) == 0, have_prev = stat(prev, &sb) == 0;
  int rc;
  if (!have && !have_prev) {
    rc = fb_fail(st, "%s: no checkpoint to resume from (run without --resume to start)", path);
  } else if (have &&
             (rc = read_one(path, net, ema, epoch, step, extra_key, extra_value, config, st)) == 0) {
    rc = 0;
  } else if (have && strstr(st->msg, "other options")) {
    rc = -1; /* not damage: the command differs */
  } else if (have_prev) {
    /* the newest is damaged or missing (killed between the two renames): the previous one */
    fb_log(lg, FB_LOG_WARN, "warning: %s; resuming from the previous checkpoint %s",
            have ? st->msg : "the newest checkpoint is missing", prev);
    rc = read_one(prev, net, ema, epoch, step, extra_key, extra_value, config, st);
  }
  free(prev);
  return rc;
}

int fb_weights_save(const char *path, const fb_net *net, fb_status *st) {
  char size_s[16], width_s[32], ch_s[16], cls_s[16], tasks_s[16], cats_s[16], segk_s[16];
  snprintf(tasks_s, sizeof tasks_s, "%u", net->tasks);
  snprintf(cats_s, sizeof cats_s, "%d", net->opts.num_cats);
  snprintf(segk_s, sizeof segk_s, "%d", net->opts.num_seg_classes);
  snprintf(size_s, sizeof size_s, "%d", net->opts.input_size);
  snprintf(width_s, sizeof width_s, "%g", net->opts.width);
  snprintf(ch_s, sizeof ch_s, "%d", net->opts.in_channels);
  snprintf(cls_s, sizeof cls_s, "%d", net->opts.num_classes);
  char dw_s[16], sw_s[16], dd_s[16], content_s[16];
  snprintf(content_s, sizeof content_s, "%d", net->opts.input_content);
  snprintf(dw_s, sizeof dw_s, "%d", net->opts.det_width);
  snprintf(sw_s, sizeof sw_s, "%d", net->opts.seg_width);
  snprintf(dd_s, sizeof dd_s, "%d", net->opts.det_depth);
  const char *meta[40] = {"format", "fbnet-weights-1", "arch", net->name,
                        "input_size", size_s, "width", width_s, "in_channels", ch_s,
                        "num_classes", cls_s, "tasks", tasks_s, "num_cats", cats_s,
                        "num_seg_classes", segk_s, "det_width", dw_s, "seg_width", sw_s,
                        "det_depth", dd_s, "input_content", content_s,
                        "padding", net->opts.standard_padding ? "standard" : "explicit", NULL};
  int k = 0;
  while (meta[k]) k++;
  if (net->arch_text) meta[k++] = "arch_json", meta[k++] = net->arch_text;
  if (net->labels_json) meta[k++] = "labels", meta[k++] = net->labels_json;
  return fb_safetensors_save_graph(&net->g, path, meta, st);
}

void fb_weights_build_opts(const fb_st_file *f, fb_build_opts *b) {
  const char *v;
  if ((v = fb_st_meta(f, "input_size"))) b->input_size = atoi(v);
  if ((v = fb_st_meta(f, "width"))) b->width = atof(v);
  if ((v = fb_st_meta(f, "in_channels"))) b->in_channels = atoi(v);
  if ((v = fb_st_meta(f, "num_classes"))) b->num_classes = atoi(v);
  if ((v = fb_st_meta(f, "tasks"))) b->tasks = (unsigned)atoi(v);
  if ((v = fb_st_meta(f, "num_cats"))) b->num_cats = atoi(v);
  if ((v = fb_st_meta(f, "num_seg_classes"))) b->num_seg_classes = atoi(v);
  if ((v = fb_st_meta(f, "det_width"))) b->det_width = atoi(v);
  if ((v = fb_st_meta(f, "seg_width"))) b->seg_width = atoi(v);
  if ((v = fb_st_meta(f, "det_depth"))) b->det_depth = atoi(v);
  if ((v = fb_st_meta(f, "input_content"))) b->input_content = atoi(v);
  if ((v = fb_st_meta(f, "padding"))) b->standard_padding = strcmp(v, "standard") == 0;
}

int fb_weights_load(const char *path, fb_net *net, fb_status *st) {
  return fb_safetensors_load_into(&net->g.params, path, st) < 0 ? -1 : 0;
}

int fb_run_save(const char *out_dir, fb_net *net, fb_ema *ema, int epoch, long step,
                const char *config, fb_status *st) {
  char path[1200];
  if (fb_checkpoint_save(out_dir, net, ema, epoch, step, config, st)) return -1;
  if (fb_path_in(path, sizeof path, out_dir, "weights.safetensors", st)) return -1;
  if (ema) fb_ema_swap(ema, &net->g.params);
  int rc = fb_weights_save(path, net, st);
  if (ema) fb_ema_swap(ema, &net->g.params);
  return rc;
}
