/* The text buffer (src/core/strbuf.h): growth across many appends, JSON
 * string escapes (checked by parsing them back with cJSON), CSV fields. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/strbuf.h"

int main(void) {
  fb_strbuf b = {0};
  CHECK(strcmp(fb_sb_str(&b), "") == 0 && b.n == 0, "empty buffer reads as \"\"");
  for (int i = 0; i < 1000; i++) fb_sb_printf(&b, "%d,", i);
  size_t want = 0;
  for (int i = 0; i < 1000; i++) want += (size_t)snprintf(NULL, 0, "%d,", i);
  CHECK(b.n == want && strlen(b.s) == want && strncmp(b.s, "0,1,2,", 6) == 0 &&
            strcmp(b.s + want - 4, "999,") == 0,
        "1000 appends: %zu bytes, NUL-terminated", b.n);
  fb_sb_free(&b);
  CHECK(b.s == NULL && b.n == 0 && b.cap == 0, "freed");

  const char *nasty = "a \"quoted\" back\\slash\nnew line\ttab \x01 caf\xc3\xa9";
  fb_sb_json_string(&b, nasty);
  cJSON *v = cJSON_Parse(b.s);
  CHECK(cJSON_IsString(v) && strcmp(v->valuestring, nasty) == 0, "JSON escapes parse back: %s",
        b.s);
  cJSON_Delete(v);
  fb_sb_free(&b);

  fb_sb_csv_field(&b, "plain");
  fb_sb_puts(&b, "|");
  fb_sb_csv_field(&b, "a,b");
  fb_sb_puts(&b, "|");
  fb_sb_csv_field(&b, "say \"hi\"");
  CHECK(strcmp(b.s, "plain|\"a,b\"|\"say \"\"hi\"\"\"") == 0, "CSV fields: %s", b.s);
  fb_sb_free(&b);
  return check_report("test_strbuf");
}
