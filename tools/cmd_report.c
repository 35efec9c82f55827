/* fbnet report: one self-contained HTML page of what a search run did
 * (src/report/report.h); works on a run still in progress. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "core/fileio.h"
#include "report/report.h"

static int run(const char *dir, const char *quality, const char *out, fb_status *st) {
  fb_report_run r;
  if (fb_report_run_read(dir, &r, st)) return -1;
  fb_quality *q = NULL;
  int rc = 0;
  if (quality) {
    q = malloc(sizeof *q);
    rc = q ? fb_quality_read(quality, q, st) : -1;
  }
  if (rc == 0) rc = fb_report_write_html(&r, q, out, st);
  free(q);
  fb_report_run_free(&r);
  return rc;
}

int cmd_report(int argc, char **argv) {
  const char *quality = NULL, *out = NULL;
  const char *positional[1] = {NULL};
  int n_positional = 0;
  const arg_opt opts[] = {
      {"--quality", ARG_STRING, &quality, 0, 0, NULL,
       "output directory of scripts/search_quality.sh (search_quality.json): adds a "
       "metric-vs-MACs scatter of searched, random and baseline networks per task"},
      {"--out", ARG_STRING, &out, 0, 0, NULL, "the HTML file (default RUN_DIR/report.html)"},
  };
  const arg_spec spec = {
      "fbnet report RUN_DIR [--quality QDIR] [--out FILE.html]",
      "Writes one self-contained HTML page (inline SVG, nothing fetched when viewed) of a\n"
      "search run (fbnet search --out RUN_DIR): every task's bit probabilities over the steps,\n"
      "its derived architecture drawn on the supernet, the blocks all tasks keep, losses,\n"
      "rewards, importance weights and MACs over the steps. A run still in progress works:\n"
      "what is not written yet says so.",
      opts, (int)(sizeof opts / sizeof opts[0]), positional, 1, &n_positional};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (n_positional != 1) {
    fprintf(stderr, "fbnet report: give the run directory (see --help)\n");
    return 2;
  }
  char *dflt = out ? NULL : fb_path_join(positional[0], "report.html");
  fb_status st = {0};
  rc = run(positional[0], quality, out ? out : dflt, &st);
  if (rc == 0) printf("%s\n", out ? out : dflt);
  else fprintf(stderr, "fbnet report: error: %s\n", st.msg);
  free(dflt);
  return rc ? 1 : 0;
}
