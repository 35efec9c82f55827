/* fbnet label: the proxy multi-task data set of docs/method.md section 5. Runs a
 * trained detection teacher and a segmentation teacher over an image folder
 * with class labels only and writes boxes (COCO JSON with scores) and masks
 * (PNG, 255 = ignore for low-confidence pixels) beside the images, in the
 * layout of src/data/proxy.h (docs/proxy-data.md). With --truth, measures
 * the pseudo-labels against true boxes/masks (the demo scenes' proxy/truth).
 * The work is done by src/tasks/label.h; this file parses and prints. */
#include <omp.h>
#include <stdio.h>

#include "args.h"
#include "commands.h"
#include "term_log.h"
#include "core/clock.h"
#include "core/status.h"
#include "tasks/label.h"

/* Runs the labelling and prints its JSON line; the exit code. */
static int label_and_print(const fb_label_cfg *a) {
  fb_status st = {0};
  fb_label_result r;
  double t0 = fb_now_sec();
  int rc = fb_label_run(a, &r, &st);
  if (r.written) { /* also when only the --truth measure failed */
    fb_label_result_json(stdout, a, &r);
    fflush(stdout);
  }
  if (rc == 0 && !a->quiet)
    fprintf(stderr, "fbnet label: wrote %s/%s (%d images) in %.1fs\n", a->out, a->split,
            r.images, fb_now_sec() - t0);
  if (rc) {
    fprintf(stderr, "fbnet label: error: %s\n", st.msg);
    return 1;
  }
  return 0;
}

int cmd_label(int argc, char **argv) {
  fb_label_cfg a = fb_label_cfg_default();
  a.log = tool_logger();
  const arg_opt opts[] = {
      {"--det-teacher", ARG_STRING, &a.det_teacher, 0, 0, NULL,
       "detection teacher weights (.safetensors)"},
      {"--seg-teacher", ARG_STRING, &a.seg_teacher, 0, 0, NULL,
       "segmentation teacher weights (at least one teacher is required)"},
      {"--images", ARG_STRING, &a.images, 0, 0, NULL,
       "image folder DIR/<class>/<image>.png|jpg (required)"},
      {"--out", ARG_STRING, &a.out, 0, 0, NULL, "output proxy directory (required)"},
      {"--split", ARG_STRING, &a.split, 0, 0, NULL, "split name to write (default train)"},
      {"--score-thresh", ARG_DOUBLE, &a.score_thresh, 0, 1, NULL,
       "keep boxes with score >= this (default 0.3)"},
      {"--mask-thresh", ARG_DOUBLE, &a.mask_thresh, 0, 1, NULL,
       "pixels whose max softmax probability is below become 255 = ignore (default 0.5)"},
      {"--det-arch", ARG_STRING, &a.det_arch, 0, 0, NULL,
       "arch file of the det teacher (default: the arch stored in its weights)"},
      {"--seg-arch", ARG_STRING, &a.seg_arch, 0, 0, NULL, "arch file of the seg teacher (same)"},
      {"--det-categories", ARG_STRING, &a.det_categories, 0, 0, NULL,
       "COCO JSON whose categories name the det teacher's classes, e.g. its training file "
       "(default: ids 1..K, names cat<id>)"},
      {"--seg-classes", ARG_STRING, &a.seg_classes, 0, 0, NULL,
       "classes.txt naming the seg teacher's classes (default: class_<k>)"},
      {"--truth", ARG_STRING, &a.truth, 0, 0, NULL,
       "directory with det.json and masks/<stem>.png of the same images (matched by file "
       "name, e.g. scenes' proxy/truth): prints the pseudo-labels' AP and mIoU"},
      {"--batch", ARG_INT, &a.batch, 1, 65536, NULL, "images per forward pass (default 32)"},
      {"--threads", ARG_INT, &a.threads, 1, 1024, NULL, "OpenMP threads (default: all cores)"},
      {"--limit", ARG_INT, &a.limit, 1, 100000000, NULL,
       "label N images spread evenly over the folder (default: all)"},
      {"--force", ARG_FLAG, &a.force, 0, 0, NULL,
       "replace the files of an existing split of OUT (tasks and classes must match)"},
      {"--quiet", ARG_FLAG, &a.quiet, 0, 0, NULL, "no progress lines on stderr"},
  };
  const arg_spec spec = {
      "fbnet label --det-teacher W --seg-teacher W --images DIR --out OUT [options]",
      "Pseudo-labels an image folder that has class labels only (docs/method.md section 5): boxes of the\n"
      "det teacher (COCO JSON with scores) and masks of the seg teacher (PNG, 255 = ignore),\n"
      "each at the teacher's own input size, mapped back to the image size. OUT is read by\n"
      "the search (proxy data set) and by fbnet train --task det|seg --data OUT. Prints one\n"
      "JSON line of counts (and quality with --truth). Layout: docs/proxy-data.md.",
      opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL};
  int rc = args_parse(&spec, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  if (!a.images || !a.out || (!a.det_teacher && !a.seg_teacher)) {
    fprintf(stderr, "fbnet label: --images, --out and at least one of --det-teacher and "
            "--seg-teacher are required (see --help)\n");
    return 2;
  }
  if (a.threads) omp_set_num_threads(a.threads);
  return label_and_print(&a);
}
