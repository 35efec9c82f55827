/* safetensors writer/reader: round trip of a parameter store, the header
 * layout, errors on damaged files, and an independent Python reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/op.h"
#include "check.h"
#include "core/params.h"
#include "io/safetensors.h"

static char dir[256];

static void make_store(fb_params *s, uint64_t seed) {
  fb_params_init(s);
  fb_params_add(s, "stem.conv.weight", fb_shape4(8, 1, 3, 3), FB_PG_WEIGHT, FB_INIT_KAIMING_OUT,
                72);
  fb_params_add(s, "stem.bn.weight", fb_shape4(8, 1, 1, 1), FB_PG_NO_DECAY, FB_INIT_ONE, 0);
  fb_params_add(s, "stem.bn.bias", fb_shape4(1, 8, 1, 1), FB_PG_NO_DECAY, FB_INIT_ZERO, 0);
  fb_params_add(s, "stem.bn.running_mean", fb_shape4(8, 1, 1, 1), FB_PG_BUFFER, FB_INIT_ZERO, 0);
  fb_params_add(s, "stem.bn.running_var", fb_shape4(8, 1, 1, 1), FB_PG_BUFFER, FB_INIT_ONE, 0);
  fb_params_add(s, "pw.weight", fb_shape4(16, 8, 1, 1), FB_PG_WEIGHT, FB_INIT_KAIMING_OUT, 16);
  fb_params_add(s, "fc.weight", fb_shape4(10, 16, 1, 1), FB_PG_WEIGHT, FB_INIT_LINEAR, 0);
  fb_params_add(s, "fc.bias", fb_shape4(10, 1, 1, 1), FB_PG_NO_DECAY, FB_INIT_ZERO, 0);
  fb_params_alloc(s, seed);
  /* give the zero/one slots distinct values too */
  for (int i = 0; i < s->n; i++)
    for (size_t k = 0; k < s->p[i].numel; k++)
      fb_param_data(s, i)[k] += 0.001f * (float)(i * 100 + k);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc(*n + 1);
  *n = fread(p, 1, *n, f);
  p[*n] = 0;
  fclose(f);
  return p;
}

static void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(p, 1, n, f);
  fclose(f);
}

static void expect_load_fail(const char *what, const char *path, const char *needle) {
  fb_params s;
  make_store(&s, 2);
  float before = s.data[0];
  fb_status st = {0};
  int rc = fb_safetensors_load_into(&s, path, &st);
  CHECK(rc != 0, "%s: load should fail", what);
  CHECK(strstr(st.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, st.msg, needle);
  CHECK(s.data[0] == before, "%s: store unchanged on failure", what);
  printf("  %-26s -> %s\n", what, st.msg);
  fb_params_free(&s);
}

/* Writes FILE.expect.json for tests/safetensors_check.py. */
static void write_expected(const char *path, const fb_params *s) {
  FILE *f = fopen(path, "w");
  fprintf(f, "{\"metadata\":{\"arch\":\"tiny \\\"net\\\"\",\"step\":\"42\"},\"tensors\":{");
  for (int i = 0; i < s->n; i++) {
    int64_t d[FB_ST_MAX_RANK];
    int r = fb_st_slot_dims(s->p[i].shape, 0, d);
    fprintf(f, "%s\"%s\":{\"shape\":[", i ? "," : "", s->p[i].name);
    for (int k = 0; k < r; k++) fprintf(f, "%s%lld", k ? "," : "", (long long)d[k]);
    fprintf(f, "],\"values\":[");
    for (size_t k = 0; k < s->p[i].numel; k++)
      fprintf(f, "%s%.9g", k ? "," : "", (double)fb_param_data(s, i)[k]);
    fprintf(f, "]}");
  }
  fprintf(f, "}}\n");
  fclose(f);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fbnet_test_st_XXXXXX");
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char path[512], tmp[600], bad[600];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);

  /* shape rules */
  int64_t d[FB_ST_MAX_RANK];
  CHECK(fb_st_slot_dims(fb_shape4(8, 1, 3, 3), 0, d) == 4 && d[0] == 8 && d[3] == 3, "conv 4-D");
  CHECK(fb_st_slot_dims(fb_shape4(16, 8, 1, 1), 0, d) == 4, "1x1 conv stays 4-D");
  CHECK(fb_st_slot_dims(fb_shape4(10, 16, 1, 1), 1, d) == 2 && d[0] == 10 && d[1] == 16,
        "linear 2-D");
  CHECK(fb_st_slot_dims(fb_shape4(8, 1, 1, 1), 0, d) == 1 && d[0] == 8, "vector (C,1,1,1)");
  CHECK(fb_st_slot_dims(fb_shape4(1, 8, 1, 1), 0, d) == 1 && d[0] == 8, "vector (1,C,1,1)");
  CHECK(fb_st_slot_dims(fb_shape4(1, 1, 1, 1), 0, d) == 1 && d[0] == 1, "scalar");

  /* round trip */
  fb_params a, b;
  make_store(&a, 1);
  make_store(&b, 2);
  fb_status st = {0};
  const char *meta[] = {"arch", "tiny \"net\"", "step", "42", NULL};
  CHECK(fb_safetensors_save_params(&a, path, meta, &st) == 0, "save: %s", st.msg);
  CHECK(access(tmp, F_OK) != 0, "no .tmp left behind");
  CHECK(memcmp(a.data, b.data, a.total * 4) != 0, "stores differ before loading");
  CHECK(fb_safetensors_load_into(&b, path, &st) == 0, "load: %s", st.msg);
  int same = 1;
  for (int i = 0; i < a.n; i++)
    same &= memcmp(fb_param_data(&a, i), fb_param_data(&b, i), a.p[i].numel * 4) == 0;
  CHECK(same, "round trip bit-exact (incl. BN buffers)");

  /* file layout */
  size_t n = 0;
  unsigned char *raw = slurp(path, &n);
  unsigned long long hn = 0;
  for (int k = 0; k < 8; k++) hn |= (unsigned long long)raw[k] << (8 * k);
  size_t payload = 0;
  for (int i = 0; i < a.n; i++) payload += a.p[i].numel * 4;
  CHECK(hn % 8 == 0, "header length multiple of 8 (%llu)", hn);
  CHECK(n == 8 + hn + payload, "file size = 8 + header + data (%zu)", n);
  {
    size_t end = 8 + hn;
    while (end > 8 && raw[end - 1] == ' ') end--;
    CHECK(raw[8] == '{' && raw[end - 1] == '}', "header is a JSON object padded with spaces only");
  }
  CHECK(strstr((char *)raw + 8,
               "\"stem.conv.weight\":{\"dtype\":\"F32\",\"shape\":[8,1,3,3],\"data_offsets\":[0,"
               "288]}") != NULL,
        "conv entry in the header");
  CHECK(memcmp(raw + 8 + hn, fb_param_data(&a, 0), 288) == 0, "first tensor's raw bytes");

  fb_st_file f;
  CHECK(fb_safetensors_read(path, &f, &st) == 0, "read: %s", st.msg);
  CHECK(f.n == a.n, "tensor count");
  CHECK(fb_st_meta(&f, "arch") && strcmp(fb_st_meta(&f, "arch"), "tiny \"net\"") == 0,
        "metadata escaped");
  const fb_st_tensor *t = fb_st_find(&f, "stem.bn.bias");
  CHECK(t && t->rank == 1 && t->dims[0] == 8, "BN vector 1-D");
  t = fb_st_find(&f, "fc.weight");
  CHECK(t && t->rank == 4 && t->dims[0] == 10 && t->dims[1] == 16, "save_params: fc weight 4-D");
  fb_st_file_free(&f);

  /* a file with a 2-D linear weight loads into the (O,I,1,1) slot */
  {
    fb_st_entry e[8];
    for (int i = 0; i < a.n; i++) {
      e[i].name = a.p[i].name;
      e[i].rank = fb_st_slot_dims(a.p[i].shape, strcmp(a.p[i].name, "fc.weight") == 0, e[i].dims);
      e[i].data = fb_param_data(&a, i);
    }
    CHECK(e[6].rank == 2, "fc rank 2 entry");
    CHECK(fb_safetensors_write(bad, e, a.n, NULL, &st) == 0, "write: %s", st.msg);
    fb_params_free(&b);
    make_store(&b, 3);
    CHECK(fb_safetensors_load_into(&b, bad, &st) == 0, "2-D fc loads: %s", st.msg);
    CHECK(memcmp(fb_param_data(&a, 6), fb_param_data(&b, 6), 160 * 4) == 0, "fc values");
    /* transposed linear weight is a mismatch */
    e[6].dims[0] = 16;
    e[6].dims[1] = 10;
    CHECK(fb_safetensors_write(bad, e, a.n, NULL, &st) == 0, "write: %s", st.msg);
    printf("error messages:\n");
    expect_load_fail("transposed shape", bad,
                     "fc.weight' has shape [16,10], the model needs [10,16,1,1]");
    /* missing tensor */
    CHECK(fb_safetensors_write(bad, e, 4, NULL, &st) == 0, "write: %s", st.msg);
    expect_load_fail("missing tensor", bad, "missing tensor 'stem.bn.running_var'");
    fb_params c;
    make_store(&c, 4);
    float keep = fb_param_data(&c, 7)[0];
    int got = fb_safetensors_load_into_ex(&c, bad, FB_ST_ALLOW_MISSING, &st);
    CHECK(got == 4, "ALLOW_MISSING fills the 4 present slots (%d): %s", got, st.msg);
    CHECK(fb_param_data(&c, 7)[0] == keep, "absent slot untouched");
    fb_params_free(&c);
    /* extra tensor */
    fb_params small;
    fb_params_init(&small);
    fb_params_add(&small, "fc.bias", fb_shape4(10, 1, 1, 1), FB_PG_NO_DECAY, FB_INIT_ZERO, 0);
    fb_params_alloc(&small, 1);
    CHECK(fb_safetensors_load_into(&small, path, &st) == 0, "extra tensors ignored: %s", st.msg);
    CHECK(fb_param_data(&small, 0)[3] == fb_param_data(&a, 7)[3], "subset loaded");
    CHECK(fb_safetensors_load_into_ex(&small, path, FB_ST_REQUIRE_ALL, &st) < 0 &&
              strstr(st.msg, "matches no parameter"),
          "REQUIRE_ALL rejects extras: %s", st.msg);
    fb_params_free(&small);
    /* duplicate names rejected by the writer */
    e[1].name = e[0].name;
    CHECK(fb_safetensors_write(bad, e, 2, NULL, &st) != 0 && strstr(st.msg, "twice"),
          "duplicate: %s", st.msg);
  }

  /* through a graph: the linear weight is written 2-D */
  {
    fb_graph g;
    fb_graph_init(&g, fb_op_table());
    fb_op_attr at = fb_attr_default();
    at.c_out = 10;
    at.has_bias = 1;
    int x = fb_graph_input(&g, "x", 16, 1, 1);
    if (fb_graph_add(&g, "linear", "fc", &x, 1, &at, 0, &st) >= 0 &&
        fb_graph_plan(&g, 2, 1, &st) == 0) {
      CHECK(fb_safetensors_save_graph(&g, bad, NULL, &st) == 0, "save_graph: %s", st.msg);
      CHECK(fb_safetensors_read(bad, &f, &st) == 0, "read: %s", st.msg);
      t = fb_st_find(&f, "fc.weight");
      CHECK(t && t->rank == 2 && t->dims[0] == 10 && t->dims[1] == 16, "graph: fc.weight [10,16]");
      t = fb_st_find(&f, "fc.bias");
      CHECK(t && t->rank == 1 && t->dims[0] == 10, "graph: fc.bias [10]");
      fb_st_file_free(&f);
    } else {
      printf("note: could not build a linear graph (%s); save_graph check skipped\n", st.msg);
    }
    fb_graph_free(&g);
  }

  /* damaged files */
  spit(bad, raw, n - 4);
  expect_load_fail("truncated data", bad, "truncated");
  spit(bad, raw, 5);
  expect_load_fail("truncated size", bad, "truncated");
  spit(bad, raw, 8 + hn / 2);
  expect_load_fail("truncated header", bad, "truncated");
  {
    unsigned char *c = malloc(n);
    memcpy(c, raw, n);
    c[7] = 0x7f; /* absurd header size */
    spit(bad, c, n);
    expect_load_fail("huge header size", bad, "bad header");
    memcpy(c, raw, n);
    c[8] = '[';
    spit(bad, c, n);
    expect_load_fail("header not JSON object", bad, "bad header");
    memcpy(c, raw, n);
    char *dt = strstr((char *)c + 8, "F32");
    memcpy(dt, "F16", 3);
    spit(bad, c, n);
    expect_load_fail("wrong dtype", bad, "dtype F16");
    memcpy(c, raw, n);
    char *off = strstr((char *)c + 8, "[0,288]");
    memcpy(off, "[4,288]", 7);
    spit(bad, c, n);
    expect_load_fail("bad offsets", bad, "data_offsets span");
    memcpy(c, raw, n);
    char *shp = strstr((char *)c + 8, "[8,1,3,3]");
    memcpy(shp, "[8,1,3,4]", 9);
    spit(bad, c, n);
    expect_load_fail("shape vs offsets", bad, "shape needs");
    /* trailing garbage after the data */
    unsigned char *g = malloc(n + 4);
    memcpy(g, raw, n);
    memset(g + n, 0, 4);
    spit(bad, g, n + 4);
    expect_load_fail("extra bytes", bad, "tensors cover");
    free(g);
    free(c);
  }
  expect_load_fail("no such file", "/nonexistent/x.safetensors", "cannot open");

  /* the independent Python reader */
  char expect[600], cmd[2000];
  snprintf(expect, sizeof expect, "%s/expect.json", dir);
  write_expected(expect, &a);
  if (access("tests/safetensors_check.py", R_OK) == 0 &&
      system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/safetensors_check.py %s %s", path, expect);
    CHECK(system(cmd) == 0, "python reader agrees");
    /* the checker can fail: a file with one value changed */
    memcpy(raw + n - 4, "\x00\x00\x80\x3f", 4);
    spit(bad, raw, n);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/safetensors_check.py %s %s >/dev/null", bad,
             expect);
    CHECK(system(cmd) != 0, "python reader notices a changed value");
  } else {
    printf(
        "note: /usr/bin/python3 with numpy (or tests/safetensors_check.py) not found; python "
        "cross-check skipped\n");
  }
  free(raw);
  unlink(path);
  unlink(bad);
  unlink(expect);
  rmdir(dir);
  fb_params_free(&a);
  fb_params_free(&b);
  return check_report("safetensors");
}
