/* Arch files: JSON text -> struct fb_arch (src/nn/arch.h). The format is
 * documented in docs/arch-files.md. Parsing is strict: an unknown key, a
 * value of the wrong type or out of range is an error naming the file, the
 * stage and the row, never a silent default. */
#include "nn/arch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/jsonutil.h"
#include "core/status.h"
#include "nn/blocks.h"
#include "nn/builtin_archs.h"
#include "tasks/task.h"

enum { ARCH_MAX_BYTES = 16 << 20, ARCH_MAX_ROWS = 4096 };

static int valid_stage_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof(((fb_arch_row *)0)->stage)) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

static int parse_args(const cJSON *obj, fb_arch_row *r, const char *where, fb_status *st) {
  if (!cJSON_IsObject(obj))
    return fb_fail(st, "%s: element 4 (args) must be an object like {\"e\": 4}, got %s", where,
                   fb_json_type_name(obj));
  int is_ir = strncmp(r->op, "ir_", 3) == 0;
  int seen_e = 0, seen_pad = 0;
  for (const cJSON *kv = obj->child; kv; kv = kv->next) {
    if (strcmp(kv->string, "e") == 0) {
      if (seen_e++) return fb_fail(st, "%s: arg \"e\" given twice", where);
      if (!is_ir) return fb_fail(st, "%s: arg \"e\" does not apply to %s", where, r->op);
      if (!cJSON_IsNumber(kv) || !(kv->valuedouble > 0.0) || kv->valuedouble > 64.0)
        return fb_fail(st, "%s: arg \"e\" must be a number in (0, 64]", where);
      r->e = kv->valuedouble;
    } else if (strcmp(kv->string, "dw_pad") == 0) {
      if (seen_pad++) return fb_fail(st, "%s: arg \"dw_pad\" given twice", where);
      if (!is_ir || strcmp(r->op, "ir_pool_hs") == 0)
        return fb_fail(st, "%s: arg \"dw_pad\" does not apply to %s", where, r->op);
      if (fb_json_int_in_range(kv, 0, 64, &r->dw_pad) != 0)
        return fb_fail(st, "%s: arg \"dw_pad\" must be an integer in [0, 64]", where);
    } else {
      return fb_fail(st, "%s: unknown arg \"%s\" (known: \"e\", \"dw_pad\")", where, kv->string);
    }
  }
  return 0;
}

int fb_arch_parse_row(const cJSON *row, fb_arch_row *r, const char *where, fb_status *st) {
  if (!cJSON_IsArray(row))
    return fb_fail(st, "%s: a row must be an array [op, C_out, stride, repeat, {args}], got %s",
                   where, fb_json_type_name(row));
  int n = cJSON_GetArraySize(row);
  if (n < 4 || n > 5)
    return fb_fail(st, "%s: a row has 4 or 5 elements [op, C_out, stride, repeat, {args}], got %d",
                   where, n);
  const cJSON *op = cJSON_GetArrayItem(row, 0);
  if (!cJSON_IsString(op))
    return fb_fail(st, "%s: element 1 (op) must be a string, got %s", where, fb_json_type_name(op));
  if (!fb_block_known(op->valuestring) || strlen(op->valuestring) >= sizeof r->op)
    return fb_fail(st,
                   "%s: unknown op '%s' (known: conv_k<k>_hs, ir_k<k>_hs, ir_k<k>_sehsig_hs, "
                   "ir_pool_hs; k odd, 1..11)",
                   where, op->valuestring);
  snprintf(r->op, sizeof r->op, "%s", op->valuestring);
  if (fb_json_int_in_range(cJSON_GetArrayItem(row, 1), 1, 65536, &r->c_out) != 0)
    return fb_fail(st, "%s: element 2 (C_out) must be an integer in [1, 65536]", where);
  if (fb_json_int_in_range(cJSON_GetArrayItem(row, 2), 1, 2, &r->stride) != 0)
    return fb_fail(st, "%s: element 3 (stride) must be 1 or 2", where);
  if (fb_json_int_in_range(cJSON_GetArrayItem(row, 3), 1, 1000, &r->repeat) != 0)
    return fb_fail(st, "%s: element 4 (repeat) must be an integer in [1, 1000]", where);
  if (strcmp(r->op, "ir_pool_hs") == 0 && (r->stride != 1 || r->repeat != 1))
    return fb_fail(st, "%s: ir_pool_hs needs stride 1 and repeat 1", where);
  if (n == 5) return parse_args(cJSON_GetArrayItem(row, 4), r, where, st);
  return 0;
}

static int parse_stage(fb_arch *a, const cJSON *blk, int bi, int *cap, fb_status *st) {
  const char *path = a->path;
  if (!cJSON_IsObject(blk))
    return fb_fail(st, "%s: blocks[%d] must be an object {\"stage\": ..., \"rows\": [...]}", path,
                   bi);
  const cJSON *stage = NULL, *rows = NULL;
  for (const cJSON *kv = blk->child; kv; kv = kv->next) {
    if (strcmp(kv->string, "stage") == 0 && !stage)
      stage = kv;
    else if (strcmp(kv->string, "rows") == 0 && !rows)
      rows = kv;
    else
      return fb_fail(st, "%s: blocks[%d]: unknown or repeated key \"%s\"", path, bi, kv->string);
  }
  if (!stage || !cJSON_IsString(stage) || !valid_stage_name(stage->valuestring))
    return fb_fail(st,
                   "%s: blocks[%d]: \"stage\" must be a name of letters, digits and '_' "
                   "(at most 31 characters)",
                   path, bi);
  const char *sname = stage->valuestring;
  for (int i = 0; i < a->n_rows; i++)
    if (strcmp(a->rows[i].stage, sname) == 0)
      return fb_fail(st, "%s: blocks[%d]: stage name '%s' used twice", path, bi, sname);
  if (!rows || !cJSON_IsArray(rows) || cJSON_GetArraySize(rows) < 1)
    return fb_fail(st, "%s: stage %s: \"rows\" must be a non-empty array", path, sname);
  int ri = 0;
  for (const cJSON *row = rows->child; row; row = row->next, ri++) {
    if (a->n_rows >= ARCH_MAX_ROWS)
      return fb_fail(st, "%s: more than %d rows", path, ARCH_MAX_ROWS);
    if (a->n_rows == *cap) {
      *cap = *cap ? 2 * *cap : 32;
      a->rows = fb_xrealloc(a->rows, (size_t)*cap * sizeof *a->rows);
    }
    fb_arch_row *r = &a->rows[a->n_rows];
    memset(r, 0, sizeof *r);
    snprintf(r->stage, sizeof r->stage, "%s", sname);
    r->index = ri;
    r->dw_pad = -1;
    char where[512];
    snprintf(where, sizeof where, "%s: stage %s row %d", path, sname, ri);
    if (fb_arch_parse_row(row, r, where, st) != 0) return -1;
    a->n_rows++;
  }
  return 0;
}

/* "heads": {"det": ["stage3", "stage4", "stage5"], "seg": [...]} */
static int parse_taps(const cJSON *list, fb_arch_taps *t, const char *path, const char *task,
                      fb_status *st) {
  if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1 ||
      cJSON_GetArraySize(list) > FB_ARCH_MAX_TAPS)
    return fb_fail(st, "%s: heads.%s must be an array of 1 to %d stage names", path, task,
                   FB_ARCH_MAX_TAPS);
  int i = 0;
  for (const cJSON *v = list->child; v; v = v->next, i++) {
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= sizeof t->stage[0])
      return fb_fail(st, "%s: heads.%s[%d] must be a stage name", path, task, i);
    snprintf(t->stage[i], sizeof t->stage[i], "%s", v->valuestring);
  }
  t->n = i;
  return 0;
}

static int parse_heads(fb_arch *a, const cJSON *heads, fb_status *st) {
  if (!cJSON_IsObject(heads))
    return fb_fail(st, "%s: \"heads\" must be an object like {\"det\": [\"stage3\", ...]}",
                   a->path);
  for (const cJSON *kv = heads->child; kv; kv = kv->next) {
    const fb_task_row *r = fb_task_named(kv->string);
    if (!r || r->n_strides == 0)
      return fb_fail(st, "%s: heads: unknown task \"%s\" (known: det, seg; the classifier "
                     "always follows the last stage)", a->path, kv->string);
    if (parse_taps(kv, &a->head_from[fb_task_slot(r->id)], a->path, kv->string, st)) return -1;
  }
  return 0;
}

/* Every stage named in "heads" must exist. */
static int check_heads(const fb_arch *a, const fb_arch_taps *t, const char *task,
                       fb_status *st) {
  for (int i = 0; i < t->n; i++) {
    int found = 0;
    for (int r = 0; r < a->n_rows && !found; r++) found = strcmp(a->rows[r].stage, t->stage[i]) == 0;
    if (!found)
      return fb_fail(st, "%s: heads.%s[%d]: no stage named \"%s\"", a->path, task, i,
                     t->stage[i]);
  }
  return 0;
}

static int parse_top(fb_arch *a, const cJSON *root, fb_status *st) {
  const char *path = a->path;
  if (!cJSON_IsObject(root))
    return fb_fail(st, "%s: the top level must be an object with \"name\" and \"blocks\"", path);
  const cJSON *name = NULL, *input = NULL, *blocks = NULL, *heads = NULL;
  for (const cJSON *kv = root->child; kv; kv = kv->next) {
    const cJSON **slot = strcmp(kv->string, "name") == 0         ? &name
                         : strcmp(kv->string, "input_size") == 0 ? &input
                         : strcmp(kv->string, "blocks") == 0     ? &blocks
                         : strcmp(kv->string, "heads") == 0      ? &heads
                                                                 : NULL;
    if (strcmp(kv->string, "comment") == 0) continue; /* free text for humans */
    if (!slot)
      return fb_fail(st, "%s: unknown key \"%s\" (known: name, input_size, blocks, heads, comment)", path,
                     kv->string);
    if (*slot) return fb_fail(st, "%s: key \"%s\" given twice", path, kv->string);
    *slot = kv;
  }
  if (!name || !cJSON_IsString(name) || !name->valuestring[0] ||
      strlen(name->valuestring) >= sizeof a->name)
    return fb_fail(st, "%s: \"name\" must be a non-empty string (at most 63 characters)", path);
  snprintf(a->name, sizeof a->name, "%s", name->valuestring);
  a->input_size = 224;
  if (input && fb_json_int_in_range(input, 1, 16384, &a->input_size) != 0)
    return fb_fail(st, "%s: \"input_size\" must be an integer in [1, 16384]", path);
  if (!blocks || !cJSON_IsArray(blocks) || cJSON_GetArraySize(blocks) < 1)
    return fb_fail(st, "%s: \"blocks\" must be a non-empty array of stages", path);
  int cap = 0, bi = 0;
  for (const cJSON *blk = blocks->child; blk; blk = blk->next, bi++)
    if (parse_stage(a, blk, bi, &cap, st) != 0) return -1;
  if (heads && parse_heads(a, heads, st)) return -1;
  for (int k = 0; fb_task_at(k); k++)
    if (check_heads(a, &a->head_from[k], fb_task_at(k)->name, st)) return -1;
  return 0;
}

fb_arch *fb_arch_parse(const char *json_text, const char *path_for_errors, fb_status *st) {
  const char *path = path_for_errors ? path_for_errors : "<arch>";
  if (!json_text) {
    fb_fail(st, "%s: no text", path);
    return NULL;
  }
  size_t len = strlen(json_text);
  const char *end = NULL;
  /* length + 1: cJSON's null-termination check reads the terminator */
  cJSON *root = cJSON_ParseWithLengthOpts(json_text, len + 1, &end, 1);
  if (!root) {
    size_t pos = fb_json_error_offset(json_text, len, end);
    int line, col;
    fb_json_line_col(json_text, len, pos, &line, &col);
    fb_fail(st, "%s:%d:%d: invalid JSON near '%.20s'", path, line, col,
            pos < len ? json_text + pos : "<end of file>");
    return NULL;
  }
  fb_arch *a = fb_xcalloc(1, sizeof *a);
  snprintf(a->path, sizeof a->path, "%s", path);
  int rc = cJSON_GetObjectItemCaseSensitive(root, "stages") ? fb_mp_parse(a, root, st)
                                                             : parse_top(a, root, st);
  cJSON_Delete(root);
  if (rc == 0) a->text = fb_xstrdup(json_text);
  if (rc != 0) {
    fb_arch_free(a);
    return NULL;
  }
  return a;
}

fb_arch *fb_arch_load(const char *path, fb_status *st) {
  if (strncmp(path, "builtin:", 8) == 0) { /* an arch file compiled into the library */
    const char *builtin = fb_builtin_arch_text(path + 8);
    if (!builtin) {
      fb_fail(st, "%s: no such builtin arch (builtin:fbnetv3_a, builtin:fbnetv5_supernet)", path);
      return NULL;
    }
    return fb_arch_parse(builtin, path, st);
  }
  size_t n = 0;
  char *text = fb_read_file(path, ARCH_MAX_BYTES, &n, st);
  if (!text) return NULL;
  fb_arch *a = NULL;
  if (memchr(text, 0, n))
    fb_fail(st, "%s: contains a NUL byte; not an arch file", path);
  else
    a = fb_arch_parse(text, path, st);
  free(text);
  return a;
}

void fb_arch_free(fb_arch *a) {
  if (!a) return;
  free(a->rows);
  free(a->text);
  if (a->mp) free(a->mp->rows);
  free(a->mp);
  free(a);
}

const char *fb_arch_name(const fb_arch *a) { return a ? a->name : ""; }
