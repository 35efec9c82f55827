/* cJSON helpers shared by the readers of JSON files (COCO, proxy manifests,
 * arch files): type names for messages, parse-error positions, whole-file
 * parsing and integer checks. */
#ifndef FB_CORE_JSONUTIL_H
#define FB_CORE_JSONUTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "fbnet.h"

/* "a number", "a string", "an array", "an object", "a boolean", "null",
 * "nothing" (v NULL) or "an invalid value": for "found %s" messages. */
const char *fb_json_type_name(const cJSON *v);

/* 1-based line and column of byte pos of text (pos clipped to len and to
 * the first NUL). */
void fb_json_line_col(const char *text, size_t len, size_t pos, int *line, int *col);
/* Byte offset of cJSON's error pointer `end` in text[0..len], len when end
 * is NULL or outside the text. */
size_t fb_json_error_offset(const char *text, size_t len, const char *end);

/* Reads and parses a whole JSON file; NULL with "PATH: cannot open (...)" or
 * "PATH: invalid JSON near line L column C" on failure. Free with
 * cJSON_Delete. */
cJSON *fb_json_read_file(const char *path, fb_status *st);

/* Writes s as a JSON string literal (quotes; '"', '\\' and control bytes
 * escaped; other bytes as they are). */
void fb_json_put_string(FILE *f, const char *s);

/* Lookup of the integer ids of JSON records (COCO image and category ids):
 * pairs (id, index of the record), sorted by id then index. */
typedef struct fb_id_pair {
  int id, idx;
} fb_id_pair;
void fb_id_pairs_sort(fb_id_pair *p, int n);
/* idx of a pair with this id in the sorted pairs, or -1. */
int fb_id_find(const fb_id_pair *p, int n, int id);

/* An integral JSON number in [lo, hi] into *out; -1 (no message) otherwise. */
int fb_json_int_in_range(const cJSON *v, double lo, double hi, int *out);

#endif
