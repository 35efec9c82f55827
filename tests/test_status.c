/* Error codes in fb_status and the logger the library prints through. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/status.h"
#include "fbnet.h"

typedef struct captured {
  int n;
  fb_log_level level;
  char text[256];
} captured;

static void capture(void *ctx, fb_log_level level, double fraction, const char *text) {
  (void)fraction;
  captured *c = ctx;
  c->n++;
  c->level = level;
  snprintf(c->text, sizeof c->text, "%s", text);
}

int main(void) {
  fb_status st = {0};
  CHECK(fb_fail(&st, "x.json: field 'a' must be a number") == -1 && st.code == FB_E_INPUT,
        "fb_fail: bad input (code %d)", st.code);
  fb_fail(&st, "internal: %d heads", 4);
  CHECK(st.code == FB_E_INTERNAL, "an 'internal:' message is a bug (code %d)", st.code);
  CHECK(fb_arch_load("/nonexistent/arch.json", &st) == NULL && st.code == FB_E_IO &&
            strstr(st.msg, "/nonexistent/arch.json"),
        "a missing file: FB_E_IO naming it (%d: %s)", st.code, st.msg);
  CHECK(fb_arch_parse("{\"name\": ", "bad.json", &st) == NULL && st.code == FB_E_INPUT &&
            strstr(st.msg, "bad.json"),
        "malformed JSON: FB_E_INPUT naming the file (%d: %s)", st.code, st.msg);
  captured c = {0};
  const fb_logger lg = {.fn = capture, .ctx = &c};
  fb_log(&lg, FB_LOG_WARN, "warning: %s %d", "seven", 7);
  CHECK(c.n == 1 && c.level == FB_LOG_WARN && strcmp(c.text, "warning: seven 7") == 0,
        "fb_log formats into the callback ('%s')", c.text);
  fb_log(NULL, FB_LOG_INFO, "nothing");
  const fb_logger silent = {0};
  fb_log(&silent, FB_LOG_INFO, "nothing");
  CHECK(c.n == 1, "no logger or no callback: silent");
  return check_report("test_status");
}
