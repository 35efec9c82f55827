/* Label names stored with trained weights (labels.h). */
#include "data/labels.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonutil.h"
#include "core/status.h"
#include "data/fmnist.h"

static const char *const fmnist_names[FB_FMNIST_CLASSES] = {
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal",     "shirt",   "sneaker",  "bag",   "ankle_boot"};

const char *fb_fmnist_class_name(int c) {
  return c >= 0 && c < FB_FMNIST_CLASSES ? fmnist_names[c] : "unknown";
}

int fb_name_index(char *const *names, int n, const char *name) {
  for (int k = 0; names && k < n; k++)
    if (names[k] && strcmp(names[k], name) == 0) return k;
  return -1;
}

char *fb_labels_to_json(const fb_mt_dataset *d, unsigned tasks) {
  cJSON *o = cJSON_CreateObject();
  int any = 0;
  if ((tasks & FB_TASK_CLS) && d->class_names && d->num_classes > 0) {
    cJSON *a = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < d->num_classes; k++)
      cJSON_AddItemToArray(a, cJSON_CreateString(d->class_names[k] ? d->class_names[k] : ""));
    any = 1;
  }
  if ((tasks & FB_TASK_DET) && d->cat_ids && d->num_cats > 0) {
    cJSON *a = cJSON_AddArrayToObject(o, "categories");
    for (int k = 0; k < d->num_cats; k++) {
      cJSON *c = cJSON_CreateObject();
      cJSON_AddNumberToObject(c, "id", d->cat_ids[k]);
      cJSON_AddStringToObject(c, "name", d->cat_names && d->cat_names[k] ? d->cat_names[k] : "");
      cJSON_AddItemToArray(a, c);
    }
    any = 1;
  }
  char *text = any ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return text;
}

static int read_classes(const cJSON *a, const char *path, fb_mt_dataset *n, fb_status *st) {
  const int k = cJSON_GetArraySize(a);
  n->class_names = fb_xcalloc((size_t)(k > 0 ? k : 1), sizeof *n->class_names);
  n->num_classes = k;
  for (int i = 0; i < k; i++) {
    const cJSON *v = cJSON_GetArrayItem(a, i);
    if (!cJSON_IsString(v))
      return fb_fail(st, "%s: labels.classes[%d] must be a string, found %s", path, i,
                     fb_json_type_name(v));
    n->class_names[i] = fb_xstrdup(v->valuestring);
  }
  return 0;
}

static int read_categories(const cJSON *a, const char *path, fb_mt_dataset *n, fb_status *st) {
  const int k = cJSON_GetArraySize(a);
  n->cat_ids = fb_xcalloc((size_t)(k > 0 ? k : 1), sizeof *n->cat_ids);
  n->cat_names = fb_xcalloc((size_t)(k > 0 ? k : 1), sizeof *n->cat_names);
  n->num_cats = k;
  for (int i = 0; i < k; i++) {
    const cJSON *c = cJSON_GetArrayItem(a, i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (fb_json_int_in_range(id, -2147483647.0, 2147483647.0, &n->cat_ids[i]) ||
        !cJSON_IsString(name))
      return fb_fail(st, "%s: labels.categories[%d] needs an integer id and a string name", path,
                     i);
    n->cat_names[i] = fb_xstrdup(name->valuestring);
  }
  return 0;
}

int fb_labels_from_json(const char *json, const char *path, fb_mt_dataset *names, fb_status *st) {
  memset(names, 0, sizeof *names);
  cJSON *o = cJSON_Parse(json);
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return fb_fail(st, "%s: metadata 'labels' is not a JSON object", path);
  }
  const cJSON *cls = cJSON_GetObjectItemCaseSensitive(o, "classes");
  const cJSON *cats = cJSON_GetObjectItemCaseSensitive(o, "categories");
  int rc = 0;
  if (cls && !cJSON_IsArray(cls)) rc = fb_fail(st, "%s: labels.classes must be an array", path);
  if (cats && !cJSON_IsArray(cats))
    rc = fb_fail(st, "%s: labels.categories must be an array", path);
  if (rc == 0 && cls) rc = read_classes(cls, path, names, st);
  if (rc == 0 && cats) rc = read_categories(cats, path, names, st);
  cJSON_Delete(o);
  if (rc) fb_mt_dataset_free(names);
  return rc;
}

int fb_labels_map_classes(fb_mt_dataset *d, const fb_mt_dataset *model, const char *what,
                          fb_status *st) {
  int *to = fb_xmalloc((size_t)(d->num_classes > 0 ? d->num_classes : 1) * sizeof *to);
  for (int k = 0; k < d->num_classes; k++) {
    to[k] = fb_name_index(model->class_names, model->num_classes, d->class_names[k]);
    if (to[k] < 0) {
      char known[512] = "";
      for (int j = 0; j < model->num_classes && strlen(known) < sizeof known - 64; j++) {
        strcat(known, j ? ", " : "");
        strncat(known, model->class_names[j], 48);
      }
      fb_fail(st, "%s: class folder '%s' is not a class of the model (%d classes: %s)", what,
              d->class_names[k], model->num_classes, known);
      free(to);
      return -1;
    }
  }
  for (int i = 0; i < d->n; i++)
    if (d->s[i].label >= 0 && d->s[i].label < d->num_classes) d->s[i].label = to[d->s[i].label];
  free(to);
  for (int k = 0; k < d->num_classes; k++) free(d->class_names[k]);
  free(d->class_names);
  d->num_classes = model->num_classes;
  d->class_names = fb_xcalloc((size_t)model->num_classes + 1, sizeof *d->class_names);
  for (int k = 0; k < model->num_classes; k++)
    d->class_names[k] = fb_xstrdup(model->class_names[k]);
  return 0;
}
