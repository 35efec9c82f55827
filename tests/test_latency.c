/* Latency tables (src/search/latency.h): Spearman against scipy's values,
 * the least-squares fit recovering planted per-element times, predictions
 * equal to the elements derivation keeps, the file's round trip and its
 * checks (another supernet, input size, thread count; malformed fields), and
 * a real measurement of the tiny supernet. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tiny_supernet.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "search/latency.h"

static void test_spearman(void) {
  /* scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) (its documentation's example,
   * with a tie) = 0.8207826816681233; reversed order = -1 */
  const double x[5] = {1, 2, 3, 4, 5}, y[5] = {5, 6, 7, 8, 7}, r[5] = {9, 7, 5, 3, 1};
  CHECK_CLOSE(fb_spearman(x, y, 5), 0.8207826816681233, 1e-12, "spearman with a tie");
  CHECK_CLOSE(fb_spearman(x, r, 5), -1.0, 1e-12, "spearman reversed");
  CHECK(isnan(fb_spearman(x, y, 1)), "spearman of one pair is undefined");
}

static void test_fit(void) {
  enum { S = 80, E = 12 };
  uint8_t kept[S * E];
  double y[S], c[E];
  fb_rng r;
  fb_rng_seed(&r, 3);
  for (int e = 0; e < E; e++) c[e] = 0.1 + 0.3 * e;
  for (int s = 0; s < S; s++) {
    y[s] = 2.0;
    for (int e = 0; e < E; e++) {
      const int k = e == 0 ? 1 : e == E - 1 ? 0 : fb_rng_uniform(&r) < 0.5;
      kept[s * E + e] = (uint8_t)k;
      y[s] += k * c[e];
    }
    y[s] += 1e-3 * (fb_rng_uniform(&r) - 0.5); /* measurement noise */
  }
  fb_lat_task lt;
  fb_status st = {0};
  CHECK(fb_lat_fit(kept, y, S, E, FB_TASK_DET, &lt, &st) == 0, "fit: %s", st.msg);
  CHECK_CLOSE(lt.fixed_ms, 2.0 + c[0], 2e-3, "fixed = intercept + the always-kept element");
  CHECK(!lt.fitted[0] && !lt.fitted[E - 1], "elements that never vary are not fitted");
  double worst = 0;
  for (int e = 1; e < E - 1; e++) {
    CHECK(lt.fitted[e] && lt.elem_se[e] > 0 && lt.elem_se[e] < 1e-3, "element %d: se %g", e,
          lt.elem_se[e]);
    if (fabs(lt.elem_ms[e] - c[e]) > worst) worst = fabs(lt.elem_ms[e] - c[e]);
  }
  CHECK(worst < 1e-3, "planted per-element times recovered (worst error %g)", worst);
  CHECK(lt.rmse_ms < 1e-3 && lt.mape < 0.1, "fit residual %g ms, %g%%", lt.rmse_ms, lt.mape);
  CHECK(lt.min_ms > 0 && lt.max_ms > lt.min_ms, "measured range recorded");
  fb_lat_task_free(&lt);
  /* fewer samples than unknowns: an error, not a silent guess */
  fb_status st2 = {0};
  int rc = fb_lat_fit(kept, y, 8, E, FB_TASK_CLS, &lt, &st2);
  fb_lat_task_free(&lt);
  CHECK(rc != 0 && strstr(st2.msg, "8 networks for") && strstr(st2.msg, "unknowns"), "8 samples: %s", st2.msg);
}

/* Noisy timings of elements that cost nothing: an unconstrained fit would
 * give about half of them a negative time; the fit keeps every time >= 0 and
 * is the constrained optimum (KKT: the residual's gradient is zero on the
 * positive times, and points outwards on those held at zero). */
static void test_fit_nonneg(void) {
  enum { S = 40, E = 24 };
  uint8_t kept[S * E];
  double y[S];
  fb_rng r;
  fb_rng_seed(&r, 11);
  for (int s = 0; s < S; s++) {
    y[s] = 1.0 + 0.2 * (fb_rng_uniform(&r) - 0.5);
    for (int e = 0; e < E; e++) {
      kept[s * E + e] = fb_rng_uniform(&r) < 0.5;
      if (e < 4) y[s] += kept[s * E + e] * 0.5; /* four elements cost 0.5 ms, the rest 0 */
    }
  }
  fb_lat_task lt;
  fb_status st = {0};
  CHECK(fb_lat_fit(kept, y, S, E, FB_TASK_CLS, &lt, &st) == 0, "fit: %s", st.msg);
  int negative = 0, zero = 0;
  for (int e = 0; e < E; e++) negative += lt.elem_ms[e] < 0, zero += lt.elem_ms[e] == 0;
  CHECK(negative == 0 && zero > 0, "no negative element time (%d held at zero)", zero);
  for (int e = 0; e < 4; e++)
    CHECK(fabs(lt.elem_ms[e] - 0.5) < 0.1, "a costly element recovered: %g", lt.elem_ms[e]);
  double worst = 0;
  for (int j = -1; j < E; j++) { /* gradient of 0.5 |y - X t|^2 (+ the fit's ridge) */
    double g = 0;
    for (int s = 0; s < S; s++) {
      double pred = lt.fixed_ms;
      for (int e = 0; e < E; e++) pred += kept[s * E + e] * lt.elem_ms[e];
      g += (pred - y[s]) * (j < 0 ? 1 : kept[s * E + j]);
    }
    if (j >= 0) g += 1e-6 * S * lt.elem_ms[j];
    const int at_zero = j >= 0 && lt.elem_ms[j] == 0;
    if (at_zero ? g < -1e-9 : fabs(g) > 1e-9) worst = fmax(worst, fabs(g));
  }
  CHECK(worst == 0, "the constrained optimum (KKT violated by %g)", worst);
  fb_lat_task_free(&lt);
}

static fb_net *tiny_net(unsigned tasks, int size, fb_status *st) {
  fb_arch *a = fb_arch_parse(TINY, "tiny.json", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = size;
  o.standard_padding = 1;
  o.tasks = tasks;
  o.num_classes = 5, o.num_cats = 3, o.num_seg_classes = 4;
  fb_net *n = fb_net_build(a, &o, 1, st);
  fb_arch_free(a);
  return n;
}

/* A hand-made table for the tiny supernet: element e costs 1 + e ms. */
static void hand_table(const fb_net *net, fb_lat_table *t) {
  const fb_mp_net *m = net->mp;
  memset(t, 0, sizeof *t);
  t->supernet = strdup("tiny");
  t->hash = fb_lat_text_hash(net->arch_text);
  t->n_elems = m->n_elems;
  t->elem_names = calloc((size_t)m->n_elems, sizeof *t->elem_names);
  for (int e = 0; e < m->n_elems; e++) t->elem_names[e] = strdup(m->elems[e].name);
  t->input_size = net->opts.input_size, t->batch = 1, t->width = net->opts.width;
  t->num_classes = 5, t->num_cats = 3, t->num_seg_classes = 4;
  t->cpu = strdup("test CPU"), t->build = strdup("test build");
  t->n_entries = 1;
  t->entry[0].threads = 2;
  t->entry[0].n_tasks = 1;
  fb_lat_task *lt = &t->entry[0].task[0];
  lt->task = FB_TASK_CLS;
  lt->fixed_ms = 0.5;
  lt->elem_ms = calloc((size_t)m->n_elems, sizeof(double));
  lt->elem_se = calloc((size_t)m->n_elems, sizeof(double));
  lt->fitted = calloc((size_t)m->n_elems, 1);
  for (int e = 0; e < m->n_elems; e++) lt->elem_ms[e] = 1 + e, lt->elem_se[e] = 0.01, lt->fitted[e] = 1;
  lt->rmse_ms = 0.1, lt->mape = 1, lt->min_ms = 1, lt->max_ms = 9;
}

static void test_predict_and_file(void) {
  fb_status st = {0};
  fb_net *net = tiny_net(FB_TASK_CLS, 32, &st);
  CHECK(net && net->mp, "tiny supernet: %s", st.msg);
  if (!net || !net->mp) return;
  fb_lat_table t;
  hand_table(net, &t);
  const fb_lat_task *lt = &t.entry[0].task[0];
  const int B = net->mp->n_bits, E = net->mp->n_elems;
  uint8_t mask[16], kept[64];
  fb_rng r;
  fb_rng_seed(&r, 5);
  int ok = 1, above_min = 1;
  const double lo = fb_lat_min(lt, net, FB_TASK_CLS);
  for (int k = 0; k < 40; k++) {
    for (int b = 0; b < B; b++) mask[b] = fb_rng_uniform(&r) < 0.5;
    fb_mp d;
    if (fb_mp_derive(net, mask, FB_TASK_CLS, kept, &d, &st)) { ok = 0; break; }
    fb_mp_free_desc(&d);
    double want = 0.5;
    for (int e = 0; e < E; e++) want += kept[e] ? 1 + e : 0;
    const double got = fb_lat_predict(lt, net, mask, FB_TASK_CLS);
    ok &= fabs(got - want) < 1e-9;
    above_min &= got >= lo - 1e-9;
  }
  CHECK(ok, "prediction = fixed + the elements derivation keeps (40 masks)");
  CHECK(above_min, "no mask is faster than fb_lat_min (%g)", lo);

  /* round trip */
  char dir[] = "/tmp/fbnet_lat_XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "temp dir");
  char *path = fb_path_join(dir, "lut.json");
  char *text = fb_lat_to_json(&t);
  CHECK(fb_write_text_atomic(path, text, &st) == 0, "write: %s", st.msg);
  fb_lat_table u;
  CHECK(fb_lat_read(path, &u, &st) == 0, "read back: %s", st.msg);
  const fb_lat_entry *e = fb_lat_compat(&u, path, net, &net->opts, 2, 0, NULL, 0, &st);
  CHECK(e != NULL, "the table fits its supernet: %s", st.msg);
  if (e) {
    const fb_lat_task *ut = fb_lat_entry_task(e, FB_TASK_CLS);
    int same = ut && fabs(ut->fixed_ms - 0.5) < 1e-12;
    for (int k = 0; ut && k < E; k++) same &= fabs(ut->elem_ms[k] - lt->elem_ms[k]) < 1e-12;
    CHECK(same, "values survive the round trip");
    CHECK(fb_lat_entry_task(e, FB_TASK_DET) == NULL, "no det table in it");
  }
  fb_status s2 = {0};
  CHECK(fb_lat_compat(&u, path, net, &net->opts, 4, 0, NULL, 0, &s2) == NULL &&
            strstr(s2.msg, "no table for 4 threads") && strstr(s2.msg, "it has 2"),
        "another thread count: %s", s2.msg);
  fb_build_opts other = net->opts;
  other.input_size = 64;
  fb_status s3 = {0};
  CHECK(fb_lat_compat(&u, path, net, &other, 2, 0, NULL, 0, &s3) == NULL &&
            strstr(s3.msg, "input size 32 (here 64)"),
        "another input size: %s", s3.msg);
  char warn[256];
  fb_status s4 = {0};
  CHECK(fb_lat_compat(&u, path, net, &other, 2, 1, warn, sizeof warn, &s4) != NULL &&
            strstr(warn, "input size"), "--force: a warning instead (%s)", warn);
  other = net->opts;
  other.num_classes = 10;
  fb_status s5 = {0};
  CHECK(fb_lat_compat(&u, path, net, &other, 2, 0, NULL, 0, &s5) == NULL &&
            strstr(s5.msg, "classifier of 5 classes (here 10"),
        "other head sizes: %s", s5.msg);
  fb_net *big = tiny_net(FB_TASK_CLS, 32, &st);
  if (big) { /* the same elements, another arch text: the hash differs */
    free(big->arch_text);
    big->arch_text = strdup("{\"name\": \"other\"}");
    fb_status s6 = {0};
    CHECK(fb_lat_compat(&u, path, big, &big->opts, 2, 0, NULL, 0, &s6) == NULL &&
              strstr(s6.msg, "arch file differs"), "another supernet: %s", s6.msg);
    fb_net_free(big);
  }
  fb_lat_free(&u);
  /* malformed files name the file and the field */
  const char *bad[][2] = {
      {"{\"format\": \"something else\"}", "not an fbnet latency table"},
      {"[1, 2]", "not an fbnet latency table"},
  };
  for (int k = 0; k < 2; k++) {
    fb_status sb = {0};
    fb_write_text_atomic(path, bad[k][0], &sb);
    CHECK(fb_lat_read(path, &u, &sb) != 0 && strstr(sb.msg, bad[k][1]) && strstr(sb.msg, path),
          "bad table %d: %s", k, sb.msg);
  }
  /* element_ms one short; a NaN-free number replaced by a string */
  char *cut = strdup(text), *p = strstr(cut, "\"element_ms\"");
  if (p && (p = strchr(p, '[')) != NULL) {
    char *q = strchr(p, ',');
    if (q) memmove(p + 1, q + 1, strlen(q + 1) + 1);
  }
  fb_write_text_atomic(path, cut, &st);
  fb_status s7 = {0};
  CHECK(fb_lat_read(path, &u, &s7) != 0 && strstr(s7.msg, "tables[0].tasks[0].element_ms"),
        "short element_ms: %s", s7.msg);
  free(cut);
  char *nohash = strdup(text), *h = strstr(nohash, "\"hash\"");
  if (h) memcpy(h, "\"hasx\"", 6);
  fb_write_text_atomic(path, nohash, &st);
  fb_status s8 = {0};
  CHECK(fb_lat_read(path, &u, &s8) != 0 && strstr(s8.msg, "supernet.hash: missing"),
        "missing hash: %s", s8.msg);
  free(nohash);
  unlink(path);
  rmdir(dir);
  free(path);
  free(text);
  fb_lat_free(&t);
  fb_net_free(net);
}

/* A real (small) measurement: the tiny supernet at 32 px, one thread. Only
 * structure is asserted; timings of a shared machine are not. */
static void test_measure(void) {
  char dir[] = "/tmp/fbnet_latm_XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "temp dir");
  char *path = fb_path_join(dir, "tiny.json");
  fb_status st = {0};
  fb_write_text_atomic(path, TINY, &st);
  fb_lat_cfg c = {.supernet_path = path, .tasks = FB_TASK_CLS | FB_TASK_SEG, .threads = {1},
                  .n_threads = 1, .samples = 24, .warmup = 1, .reps = 3, .seed = 2};
  c.deploy = fb_build_opts_default();
  c.deploy.input_size = 32, c.deploy.standard_padding = 1;
  c.deploy.num_classes = 5, c.deploy.num_cats = 3, c.deploy.num_seg_classes = 4;
  fb_lat_table t;
  CHECK(fb_lat_build(&c, &t, &st) == 0, "build a table: %s", st.msg);
  if (t.n_entries == 1) {
    CHECK(t.entry[0].n_tasks == 2 && t.entry[0].task[0].task == FB_TASK_CLS &&
              t.entry[0].task[1].task == FB_TASK_SEG, "a table per task");
    for (int i = 0; i < 2; i++) {
      const fb_lat_task *lt = &t.entry[0].task[i];
      int fitted = 0;
      for (int e = 0; e < t.n_elems; e++) fitted += lt->fitted[e];
      CHECK(fitted >= 5 && lt->fixed_ms > 0 && lt->min_ms > 0 && isfinite(lt->mape),
            "task %d: %d elements fitted, fixed %g ms", i, fitted, lt->fixed_ms);
    }
    fb_lat_check_row rows[4];
    int n = 0;
    CHECK(fb_lat_check(&t, &c, 6, rows, &n, &st) == 0 && n == 2, "check: %s", st.msg);
    for (int i = 0; i < n; i++)
      CHECK(rows[i].n == 6 && rows[i].threads == 1 && rows[i].mape >= 0 && rows[i].spearman >= -1,
            "check row %d: spearman %g, mape %g%%", i, rows[i].spearman, rows[i].mape);
    double ms = 0, spread = -1;
    fb_net *net = tiny_net(FB_TASK_CLS, 32, &st);
    CHECK(net && fb_lat_measure_arch(TINY, &net->opts, FB_TASK_CLS, 1, 1, 5, &ms, &spread, &st) == 0 &&
              ms > 0 && spread >= 0, "measure an arch file: %g ms, %s", ms, st.msg);
    fb_net_free(net);
  }
  fb_lat_free(&t);
  c.n_threads = 0;
  fb_status s2 = {0};
  CHECK(fb_lat_build(&c, &t, &s2) != 0 && strstr(s2.msg, "thread counts"), "no thread count: %s",
        s2.msg);
  unlink(path);
  rmdir(dir);
  free(path);
}

int main(void) {
  test_spearman();
  test_fit();
  test_fit_nonneg();
  test_predict_and_file();
  test_measure();
  return check_report("latency");
}
