/* A search run directory for fbnet report: the input is RUN/search.jsonl (no
 * summary or derived files: a run in progress); what reads is written as
 * the report page, so the plots meet every number a log can hold. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/fbnet_fuzz_runlog_%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (long)getpid());
  mkdir(dir, 0777);
  snprintf(path, sizeof path, "%s/search.jsonl", dir);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size) fwrite(data, 1, size, f);
  fclose(f);
  fb_status st = {0};
  fb_report_run r;
  if (fb_report_run_read(dir, &r, &st) == 0) {
    snprintf(path, sizeof path, "%s/report.html", dir);
    fb_report_write_html(&r, NULL, path, &st);
    fb_report_run_free(&r);
  }
  return 0;
}
