/* Multi-path arch files (docs/supernet.md): JSON <-> struct fb_mp. The
 * FBNetV5 supernet (archs/fbnetv5_supernet.json) and every architecture
 * derived from it are files of this form. Parsing is strict like the chain
 * format's: an unknown key or a value out of range is an error naming the
 * file and the place ("stages[2].paths[1] row 0: ..."). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonutil.h"
#include "core/status.h"
#include "core/strbuf.h"
#include "nn/arch.h"
#include "tasks/task.h"

enum { MP_MAX_ROWS = 4096 };

static int parse_one_row(fb_arch *a, const cJSON *row, fb_arch_row *r, const char *stage,
                         int index, fb_status *st) {
  memset(r, 0, sizeof *r);
  snprintf(r->stage, sizeof r->stage, "%s", stage);
  r->index = index;
  r->dw_pad = -1;
  char where[512];
  snprintf(where, sizeof where, "%s: %s row %d", a->path, stage, index);
  if (fb_arch_parse_row(row, r, where, st)) return -1;
  if (strcmp(r->op, "ir_pool_hs") == 0 && strcmp(stage, "head") != 0)
    return fb_fail(st, "%s: ir_pool_hs belongs in \"head\"", where);
  return 0;
}

/* Appends the rows of a JSON array (may be empty when allow_empty). */
static int parse_row_list(fb_arch *a, const cJSON *list, const char *stage, int allow_empty,
                          int *cap, int *n_added, fb_status *st) {
  fb_mp *mp = a->mp;
  if (!cJSON_IsArray(list) || (!allow_empty && cJSON_GetArraySize(list) < 1))
    return fb_fail(st, "%s: %s must be %s array of rows", a->path, stage,
                   allow_empty ? "an" : "a non-empty");
  int i = 0;
  for (const cJSON *row = list->child; row; row = row->next, i++) {
    if (mp->n_rows >= MP_MAX_ROWS) return fb_fail(st, "%s: more than %d rows", a->path, MP_MAX_ROWS);
    if (mp->n_rows == *cap) {
      *cap = *cap ? 2 * *cap : 64;
      mp->rows = fb_xrealloc(mp->rows, (size_t)*cap * sizeof *mp->rows);
    }
    if (parse_one_row(a, row, &mp->rows[mp->n_rows], stage, i, st)) return -1;
    mp->n_rows++;
  }
  *n_added = i;
  return 0;
}

static int parse_path_index(const fb_arch *a, const cJSON *v, int n_paths, const char *where,
                            int *out, fb_status *st) {
  /* range first: casting an out-of-range double (1e999) to int is undefined */
  if (fb_json_int_in_range(v, 0, n_paths - 1, out))
    return fb_fail(st, "%s: %s must be a path index in [0, %d]", a->path, where, n_paths - 1);
  return 0;
}

/* "fusion": "all" | "none" | [[from, to], ...] */
static int parse_fusion(const fb_arch *a, const cJSON *f, fb_mp_stage *s, int si, fb_status *st) {
  if (!f || (cJSON_IsString(f) && strcmp(f->valuestring, "none") == 0)) return 0;
  if (cJSON_IsString(f) && strcmp(f->valuestring, "all") == 0) {
    s->cross_all = 1;
    return 0;
  }
  if (!cJSON_IsArray(f))
    return fb_fail(st, "%s: stages[%d].fusion must be \"all\", \"none\" or a list of [from, to] "
                   "path pairs", a->path, si);
  int k = 0;
  for (const cJSON *pair = f->child; pair; pair = pair->next, k++) {
    char where[96];
    snprintf(where, sizeof where, "stages[%d].fusion[%d]", si, k);
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2)
      return fb_fail(st, "%s: %s must be a pair [from, to]", a->path, where);
    int from = 0, to = 0;
    if (parse_path_index(a, cJSON_GetArrayItem(pair, 0), s->n_paths, where, &from, st) ||
        parse_path_index(a, cJSON_GetArrayItem(pair, 1), s->n_paths, where, &to, st))
      return -1;
    if (from == to) return fb_fail(st, "%s: %s: from == to (the identity is implicit)", a->path, where);
    for (int j = 0; j < s->n_cross; j++)
      if (s->cross_from[j] == from && s->cross_to[j] == to)
        return fb_fail(st, "%s: %s: [%d, %d] given twice", a->path, where, from, to);
    s->cross_from[s->n_cross] = from;
    s->cross_to[s->n_cross] = to;
    s->n_cross++;
  }
  return 0;
}

static int parse_stage_obj(fb_arch *a, const cJSON *obj, int si, int prev_paths, int *cap,
                           fb_status *st) {
  fb_mp *mp = a->mp;
  fb_mp_stage *s = &mp->stages[si];
  if (!cJSON_IsObject(obj))
    return fb_fail(st, "%s: stages[%d] must be an object {\"open\", \"paths\", \"fusion\"}",
                   a->path, si);
  const cJSON *open = NULL, *paths = NULL, *fusion = NULL;
  for (const cJSON *kv = obj->child; kv; kv = kv->next) {
    const cJSON **slot = strcmp(kv->string, "open") == 0     ? &open
                         : strcmp(kv->string, "paths") == 0  ? &paths
                         : strcmp(kv->string, "fusion") == 0 ? &fusion
                                                             : NULL;
    if (strcmp(kv->string, "comment") == 0) continue;
    if (!slot || *slot)
      return fb_fail(st, "%s: stages[%d]: unknown or repeated key \"%s\" (known: open, paths, "
                     "fusion, comment)", a->path, si, kv->string);
    *slot = kv;
  }
  s->n_paths = prev_paths + (open ? 1 : 0);
  if (si == 0 && !open)
    return fb_fail(st, "%s: stages[0] needs \"open\": the block that opens path 0 from the stem",
                   a->path);
  if (s->n_paths > FB_MP_MAX_PATHS)
    return fb_fail(st, "%s: stages[%d]: more than %d paths", a->path, si, FB_MP_MAX_PATHS);
  char stage[32];
  if (open) {
    snprintf(stage, sizeof stage, "s%d.open", si);
    if (parse_one_row(a, open, &s->open, stage, 0, st)) return -1;
    if (s->open.repeat != 1) return fb_fail(st, "%s: %s: repeat must be 1", a->path, stage);
    s->has_open = 1;
  }
  if (!paths || !cJSON_IsArray(paths) || cJSON_GetArraySize(paths) != s->n_paths)
    return fb_fail(st, "%s: stages[%d].paths must be an array of %d row lists (one per path)",
                   a->path, si, s->n_paths);
  int p = 0;
  for (const cJSON *list = paths->child; list; list = list->next, p++) {
    snprintf(stage, sizeof stage, "s%d.p%d", si, p);
    s->first_row[p] = mp->n_rows;
    if (parse_row_list(a, list, stage, 1, cap, &s->n_rows[p], st)) return -1;
  }
  return parse_fusion(a, fusion, s, si, st);
}

static int parse_path_list(const fb_arch *a, const cJSON *v, const char *task, int n_paths,
                           int *paths, int *n, fb_status *st) {
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > n_paths)
    return fb_fail(st, "%s: heads.%s must be a list of 1 to %d path indices", a->path, task,
                   n_paths);
  int k = 0;
  for (const cJSON *e = v->child; e; e = e->next, k++) {
    char where[64];
    snprintf(where, sizeof where, "heads.%s[%d]", task, k);
    if (parse_path_index(a, e, n_paths, where, &paths[k], st)) return -1;
    if (k > 0 && paths[k] <= paths[k - 1])
      return fb_fail(st, "%s: %s: paths must be increasing", a->path, where);
  }
  *n = k;
  return 0;
}

/* Each task's default paths (its row's default_paths: the last ones, or all),
 * then what "heads" says: {"cls": 3, "det": [1, 2, 3], ...}. */
static int parse_mp_heads(fb_arch *a, const cJSON *heads, fb_status *st) {
  fb_mp *mp = a->mp;
  const int np = mp->stages[mp->n_stages - 1].n_paths;
  for (int t = 0; fb_task_at(t); t++) {
    const int want = fb_task_at(t)->default_paths;
    const int n = want > 0 && want < np ? want : np;
    mp->n_head_paths[t] = n;
    for (int k = 0; k < n; k++) mp->head_paths[t][k] = np - n + k;
  }
  if (!heads) return 0;
  if (!cJSON_IsObject(heads))
    return fb_fail(st, "%s: \"heads\" must be an object like {\"cls\": 3, \"det\": [1, 2, 3]}",
                   a->path);
  for (const cJSON *kv = heads->child; kv; kv = kv->next) {
    const fb_task_row *r = fb_task_named(kv->string);
    if (!r)
      return fb_fail(st, "%s: heads: unknown task \"%s\" (known: cls, det, seg)", a->path,
                     kv->string);
    const int t = fb_task_slot(r->id);
    char where[64];
    snprintf(where, sizeof where, "heads.%s", r->name);
    if (r->one_path) {
      mp->n_head_paths[t] = 1;
      if (parse_path_index(a, kv, np, where, &mp->head_paths[t][0], st)) return -1;
    } else if (parse_path_list(a, kv, r->name, np, mp->head_paths[t], &mp->n_head_paths[t], st)) {
      return -1;
    }
  }
  return 0;
}

int fb_mp_parse(fb_arch *a, const cJSON *root, fb_status *st) {
  const char *path = a->path;
  if (!cJSON_IsObject(root)) return fb_fail(st, "%s: the top level must be an object", path);
  const cJSON *name = NULL, *input = NULL, *search = NULL, *stem = NULL, *stages = NULL,
              *head = NULL, *heads = NULL;
  for (const cJSON *kv = root->child; kv; kv = kv->next) {
    const cJSON **slot = strcmp(kv->string, "name") == 0         ? &name
                         : strcmp(kv->string, "input_size") == 0 ? &input
                         : strcmp(kv->string, "search") == 0     ? &search
                         : strcmp(kv->string, "stem") == 0       ? &stem
                         : strcmp(kv->string, "stages") == 0     ? &stages
                         : strcmp(kv->string, "head") == 0       ? &head
                         : strcmp(kv->string, "heads") == 0      ? &heads
                                                                 : NULL;
    if (strcmp(kv->string, "comment") == 0 || strcmp(kv->string, "derived") == 0) continue;
    if (!slot)
      return fb_fail(st, "%s: unknown key \"%s\" (a multi-path arch knows: name, input_size, "
                     "search, stem, stages, head, heads, comment, derived)", path, kv->string);
    if (*slot) return fb_fail(st, "%s: key \"%s\" given twice", path, kv->string);
    *slot = kv;
  }
  if (!name || !cJSON_IsString(name) || !name->valuestring[0] ||
      strlen(name->valuestring) >= sizeof a->name)
    return fb_fail(st, "%s: \"name\" must be a non-empty string (at most 63 characters)", path);
  snprintf(a->name, sizeof a->name, "%s", name->valuestring);
  a->input_size = 224;
  if (input && fb_json_int_in_range(input, 1, 16384, &a->input_size))
    return fb_fail(st, "%s: \"input_size\" must be an integer in [1, 16384]", path);
  a->mp = fb_xcalloc(1, sizeof *a->mp);
  fb_mp *mp = a->mp;
  if (search && !cJSON_IsBool(search)) return fb_fail(st, "%s: \"search\" must be true or false", path);
  mp->search = search && cJSON_IsTrue(search);
  int cap = 0;
  if (!stem) return fb_fail(st, "%s: \"stem\" (a non-empty array of rows) is missing", path);
  if (parse_row_list(a, stem, "stem", 0, &cap, &mp->n_stem, st)) return -1;
  if (!cJSON_IsArray(stages) || cJSON_GetArraySize(stages) < 1 ||
      cJSON_GetArraySize(stages) > FB_MP_MAX_STAGES)
    return fb_fail(st, "%s: \"stages\" must be an array of 1 to %d stages", path, FB_MP_MAX_STAGES);
  int si = 0, prev = 0;
  for (const cJSON *s = stages->child; s; s = s->next, si++) {
    if (parse_stage_obj(a, s, si, prev, &cap, st)) return -1;
    prev = mp->stages[si].n_paths;
  }
  mp->n_stages = si;
  if (head) {
    if (parse_one_row(a, head, &mp->head, "head", 0, st)) return -1;
    if (strcmp(mp->head.op, "ir_pool_hs") != 0)
      return fb_fail(st, "%s: \"head\" must be an ir_pool_hs row", path);
    mp->has_head = 1;
  }
  return parse_mp_heads(a, heads, st);
}

/* ---- writer ----------------------------------------------------------- */

static void sb_row(fb_strbuf *b, const fb_arch_row *r) {
  fb_sb_printf(b, "[\"%s\", %d, %d, %d", r->op, r->c_out, r->stride, r->repeat);
  if (r->e > 0 || r->dw_pad >= 0) {
    fb_sb_printf(b, ", {");
    if (r->e > 0) fb_sb_printf(b, "\"e\": %g", r->e);
    if (r->dw_pad >= 0) fb_sb_printf(b, "%s\"dw_pad\": %d", r->e > 0 ? ", " : "", r->dw_pad);
    fb_sb_printf(b, "}");
  }
  fb_sb_printf(b, "]");
}

static void sb_rows(fb_strbuf *b, const fb_arch_row *rows, int n, const char *indent) {
  fb_sb_printf(b, "[");
  for (int i = 0; i < n; i++) {
    fb_sb_printf(b, "%s%s", i ? ",\n" : "", i ? indent : "");
    sb_row(b, &rows[i]);
  }
  fb_sb_printf(b, "]");
}

/* "heads": every task's paths, one index for a row with one_path */
static void sb_heads(fb_strbuf *b, const fb_mp *mp) {
  fb_sb_puts(b, ",\n  \"heads\": {");
  for (int t = 0; fb_task_at(t); t++) {
    const fb_task_row *r = fb_task_at(t);
    fb_sb_printf(b, "%s\"%s\": ", t ? ", " : "", r->name);
    if (r->one_path) {
      fb_sb_printf(b, "%d", mp->head_paths[t][0]);
      continue;
    }
    fb_sb_puts(b, "[");
    for (int k = 0; k < mp->n_head_paths[t]; k++)
      fb_sb_printf(b, "%s%d", k ? ", " : "", mp->head_paths[t][k]);
    fb_sb_puts(b, "]");
  }
  fb_sb_puts(b, "}");
}

static void sb_stage(fb_strbuf *b, const fb_mp *mp, const fb_mp_stage *s) {
  fb_sb_printf(b, "    {");
  if (s->has_open) {
    fb_sb_printf(b, "\"open\": ");
    sb_row(b, &s->open);
    fb_sb_printf(b, ",\n     ");
  }
  fb_sb_printf(b, "\"paths\": [");
  for (int p = 0; p < s->n_paths; p++) {
    fb_sb_printf(b, "%s", p ? ",\n               " : "");
    sb_rows(b, mp->rows + s->first_row[p], s->n_rows[p], "                ");
  }
  fb_sb_printf(b, "]");
  if (s->cross_all) {
    fb_sb_printf(b, ",\n     \"fusion\": \"all\"");
  } else if (s->n_cross > 0) {
    fb_sb_printf(b, ",\n     \"fusion\": [");
    for (int k = 0; k < s->n_cross; k++)
      fb_sb_printf(b, "%s[%d, %d]", k ? ", " : "", s->cross_from[k], s->cross_to[k]);
    fb_sb_printf(b, "]");
  }
  fb_sb_printf(b, "}");
}

char *fb_mp_to_json(const char *name, const char *comment, int input_size, const fb_mp *mp,
                    const char *derived) {
  fb_strbuf b = {0};
  fb_sb_printf(&b, "{\n  \"name\": ");
  fb_sb_json_string(&b, name);
  if (comment) {
    fb_sb_printf(&b, ",\n  \"comment\": ");
    fb_sb_json_string(&b, comment);
  }
  if (derived) fb_sb_printf(&b, ",\n  \"derived\": %s", derived);
  fb_sb_printf(&b, ",\n  \"input_size\": %d,\n", input_size);
  if (mp->search) fb_sb_printf(&b, "  \"search\": true,\n");
  fb_sb_printf(&b, "  \"stem\": ");
  sb_rows(&b, mp->rows, mp->n_stem, "           ");
  fb_sb_printf(&b, ",\n  \"stages\": [\n");
  for (int i = 0; i < mp->n_stages; i++) {
    sb_stage(&b, mp, &mp->stages[i]);
    fb_sb_printf(&b, "%s\n", i + 1 < mp->n_stages ? "," : "");
  }
  fb_sb_printf(&b, "  ]");
  if (mp->has_head) {
    fb_sb_printf(&b, ",\n  \"head\": ");
    sb_row(&b, &mp->head);
  }
  sb_heads(&b, mp);
  fb_sb_puts(&b, "\n}\n");
  return b.s;
}
