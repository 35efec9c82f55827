/* Arch files, FBNet blocks, the builder and the FLOPs/params counter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/status.h"
#include "fbnet.h"
#include "nn/arch.h"
#include "nn/blocks.h"
#include "nn/net.h"

static const char *V3A = "archs/fbnetv3_a.json";

/* div8 values worked out by hand from the rule of docs/method.md section 2. */
static void test_div8(void) {
  static const struct {
    double n;
    int want;
  } t[] = {
      {8, 8},     {16, 16},     {1104, 1104}, {1344, 1344},
      {0, 8},     {-5, 8},      {1, 8}, /* round(0.125)=0 -> 1 */
      {4, 8},                           /* round(0.5) half up = 1 */
      {7, 8},     {12, 16},             /* round(1.5) = 2 */
      {11.9, 16},                       /* round(1.4875)=1 -> 8 < 11.305 -> +8 */
      {17, 24},                         /* 16 < 16.15 -> +8 */
      {16.8, 16},                       /* 16 >= 15.96 */
      {19, 24},   {20, 24},             /* round(2.5) = 3 */
      {26.4, 32},                       /* 24 < 25.08 -> +8 */
      {36, 40},   {60, 64},     {68, 72},     {100, 104},
      {992, 992}, {1488, 1488}, {6, 8}, /* SE of mid 120, e 5 */
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    CHECK(fb_div8(t[i].n) == t[i].want, "div8(%g) = %d, want %d", t[i].n, fb_div8(t[i].n),
          t[i].want);
}

static void test_parse_v3a(void) {
  fb_status st = {0};
  fb_arch *a = fb_arch_load(V3A, &st);
  CHECK(a != NULL, "load %s: %s", V3A, st.msg);
  if (!a) return;
  CHECK(strcmp(fb_arch_name(a), "fbnetv3_a") == 0, "name %s", fb_arch_name(a));
  CHECK(a->input_size == 224, "input_size %d", a->input_size);
  CHECK(a->n_rows == 14, "rows %d", a->n_rows);
  int blocks = 0;
  for (int i = 0; i < a->n_rows; i++) blocks += a->rows[i].repeat;
  CHECK(blocks == 1 + 2 + 4 + 5 + 11 + 7 + 1, "blocks %d", blocks);
  const fb_arch_row *r = &a->rows[6]; /* stage4 row 0 */
  CHECK(strcmp(r->stage, "stage4") == 0 && r->index == 0 && r->dw_pad == 1 && r->e == 5 &&
            r->stride == 2 && r->c_out == 72 && strcmp(r->op, "ir_k5_hs") == 0,
        "stage4 row 0: %s %d %s %d %g %d", r->stage, r->index, r->op, r->c_out, r->e, r->dw_pad);
  CHECK(a->rows[7].dw_pad == -1, "default dw_pad %d", a->rows[7].dw_pad);
  fb_arch_free(a);
}

static int has(const char *msg, const char *needle) { return strstr(msg, needle) != NULL; }

/* Parses text that must fail; every needle must appear in the message. */
static void expect_parse_error(const char *text, const char *n1, const char *n2, const char *n3) {
  fb_status st = {0};
  fb_arch *a = fb_arch_parse(text, "bad.json", &st);
  CHECK(a == NULL, "parse should fail: %s", text);
  fb_arch_free(a);
  const char *needles[3] = {n1, n2, n3};
  for (int i = 0; i < 3; i++)
    if (needles[i]) CHECK(has(st.msg, needles[i]), "message '%s' lacks '%s'", st.msg, needles[i]);
}

#define ROW_HEAD \
  "{\"name\": \"x\", \"blocks\": [{\"stage\": \"stage3\", \"rows\": [[\"ir_k3_hs\", 8, 1, 1], "

static void test_errors(void) {
  /* broken JSON: file, line and column (the missing comma is at line 3 col 3) */
  expect_parse_error("{\"name\": \"x\",\n  \"blocks\": []\n  \"oops\": 1}",
                     "bad.json:3:3:", "invalid JSON", NULL);
  expect_parse_error("{\"name\": \"x\", \"blocks\": [", "bad.json:1:", "invalid JSON", NULL);
  /* unknown op: file + stage + row index + op name */
  expect_parse_error(ROW_HEAD "[\"ir_k4_hs\", 8, 1, 1]]}]}", "bad.json", "stage stage3 row 1",
                     "unknown op 'ir_k4_hs'");
  expect_parse_error(ROW_HEAD "[\"mbconv\", 8, 1, 1]]}]}", "stage3 row 1", "'mbconv'", NULL);
  /* bad rows */
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", \"8\", 1, 1]]}]}", "stage3 row 1", "C_out", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", -8, 1, 1]]}]}", "stage3 row 1", "C_out", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8.5, 1, 1]]}]}", "stage3 row 1", "C_out", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 3, 1]]}]}", "stage3 row 1", "stride", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 1, 0]]}]}", "stage3 row 1", "repeat", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 1]]}]}", "stage3 row 1", "4 or 5", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 1, 1, {\"k\": 3}]]}]}", "stage3 row 1",
                     "unknown arg \"k\"", NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 1, 1, {\"e\": -1}]]}]}", "stage3 row 1", "\"e\"",
                     NULL);
  expect_parse_error(ROW_HEAD "[\"ir_k3_hs\", 8, 1, 1, {\"dw_pad\": 1.5}]]}]}", "stage3 row 1",
                     "dw_pad", NULL);
  expect_parse_error(ROW_HEAD "[\"conv_k3_hs\", 8, 1, 1, {\"e\": 2}]]}]}", "stage3 row 1",
                     "does not apply", NULL);
  expect_parse_error(ROW_HEAD "\"ir_k3_hs\"]}]}", "stage3 row 1", "must be an array", NULL);
  /* file-level structure */
  expect_parse_error("{\"name\": \"x\", \"blocks\": [], \"extra\": 1}", "unknown key \"extra\"",
                     NULL, NULL);
  expect_parse_error("{\"blocks\": [{\"stage\": \"a\", \"rows\": [[\"ir_k3_hs\", 8, 1, 1]]}]}",
                     "\"name\"", NULL, NULL);
  expect_parse_error(
      "{\"name\": \"x\", \"blocks\": [{\"stage\": \"a\", \"rows\": [[\"ir_k3_hs\", "
      "8, 1, 1]]}, {\"stage\": \"a\", \"rows\": [[\"ir_k3_hs\", 8, 1, 1]]}]}",
      "used twice", NULL, NULL);
  expect_parse_error("{\"name\": \"x\", \"blocks\": [{\"stage\": \"a.b\", \"rows\": []}]}",
                     "blocks[0]", "stage", NULL);
  /* missing file */
  fb_status st = {0};
  fb_arch *a = fb_arch_load("tests/fixtures/no_such_arch.json", &st);
  CHECK(a == NULL && has(st.msg, "tests/fixtures/no_such_arch.json") && has(st.msg, "cannot open"),
        "missing file: %s", st.msg);
  fb_arch_free(a);
  /* block names */
  CHECK(fb_block_known("ir_k7_hs") && fb_block_known("ir_k3_sehsig_hs") &&
            fb_block_known("conv_k5_hs") && fb_block_known("ir_pool_hs"),
        "known block ops");
  CHECK(!fb_block_known("ir_k4_hs") && !fb_block_known("ir_k_hs") && !fb_block_known("ir_k03_hs") &&
            !fb_block_known("ir_k3_se_hs") && !fb_block_known("conv_k3_sehsig_hs") &&
            !fb_block_known("ir_k3_hsx"),
        "unknown block ops");
}

static int node(const fb_net *net, const char *name) {
  for (int i = 0; i < net->g.n; i++)
    if (strcmp(net->g.nodes[i].name, name) == 0) return i;
  return -1;
}

static fb_shape out_of(const fb_net *net, const char *name) {
  int i = node(net, name);
  CHECK(i >= 0, "node %s exists", name);
  return i >= 0 ? net->g.nodes[i].args.out : fb_shape4(0, 0, 0, 0);
}

static void test_v3a_counts(void) {
  fb_status st = {0};
  fb_arch *a = fb_arch_load(V3A, &st);
  if (!a) return;
  fb_build_opts o = fb_build_opts_default();
  fb_net *net = fb_net_build(a, &o, 7, &st);
  CHECK(net != NULL, "build: %s", st.msg);
  if (net) {
    fb_count c = fb_net_count(net);
    /* docs/method.md section 2: an independent PyTorch model gives 356.598 M MACs and 8.542224 M params */
    CHECK_CLOSE(c.macs / 1e6, 356.598, 356.598 * 0.005, "FBNetV3-A MMACs (0.5%)");
    CHECK_CLOSE(c.params / 1e6, 8.542224, 8.542224 * 0.01, "FBNetV3-A M params (1%)");
    CHECK_CLOSE(c.params_all / 1e6, 8.598, 8.598 * 0.01, "FBNetV3-A trainable M params (1%)");
    /* exact values of our own hand count of the table of docs/method.md section 2 (the reference model
     * counts one more global pool over the 1984x1x1 head output: +1984) */
    CHECK_CLOSE(c.macs, 356596296.0, 0.5, "FBNetV3-A MACs exact");
    CHECK_CLOSE(c.params, 8542224.0, 0.5, "FBNetV3-A params exact");
    CHECK_CLOSE(c.params_all, 8598480.0, 0.5, "FBNetV3-A trainable params exact");
    /* explicit paddings: 28 -> 13 and 13 -> 6 */
    fb_shape s = out_of(net, "stage4.0.dw.conv");
    CHECK(s.c == 200 && s.h == 13 && s.w == 13, "stage4.0.dw %dx%dx%d", s.c, s.h, s.w);
    s = out_of(net, "stage5.0.dw.conv");
    CHECK(s.c == 720 && s.h == 6 && s.w == 6, "stage5.0.dw %dx%dx%d", s.c, s.h, s.w);
    s = out_of(net, "stage3.1.se.fc1");
    CHECK(s.c == 16 && s.h == 1, "stage3.1 SE m = div8(120*0.25/3) = 16, got %d", s.c);
    s = out_of(net, "head.0.fc.act");
    CHECK(s.c == 1984 && s.h == 1 && s.w == 1, "head %dx%dx%d", s.c, s.h, s.w);
    s = out_of(net, "stem.0.act");
    CHECK(s.c == 16 && s.h == 112, "stem %dx%d", s.c, s.h);
    CHECK(node(net, "stage1.0.pw.conv") < 0, "e=1 block has no pw conv");
    CHECK(node(net, "stage1.1.res") >= 0 && node(net, "stage2.0.res") < 0, "residuals");
    CHECK(net->g.nodes[net->loss_node].loss_weight == 1.0f, "loss weight");
    CHECK(net->g.nodes[net->logits_node].args.out.c == 1000, "logits");
    /* parameter names and the zero-gamma rule */
    const fb_params *p = &net->g.params;
    int zg = fb_params_find(p, "stage1.1.pwl.bn.weight");
    int og = fb_params_find(p, "stage2.0.pwl.bn.weight");
    CHECK(zg >= 0 && og >= 0 && fb_params_find(p, "stage3.2.se.fc1.bias") >= 0 &&
              fb_params_find(p, "stem.0.conv.bias") >= 0 &&
              fb_params_find(p, "classifier.weight") >= 0 &&
              fb_params_find(p, "stage4.0.dw.conv.bias") < 0,
          "parameter names");
    CHECK(fb_net_plan(net, 1, 7, &st) == 0 && p->data, "plan: %s", st.msg);
    if (zg >= 0 && og >= 0 && p->data) {
      CHECK(fb_param_data(p, zg)[0] == 0.0f && fb_param_data(p, og)[0] == 1.0f,
            "pwl BN gamma: residual %g, no residual %g", fb_param_data(p, zg)[0],
            fb_param_data(p, og)[0]);
    }
  }
  fb_net_free(net);

  /* small inputs: explicit paddings do not fit, standard ones do */
  o.input_size = 32;
  net = fb_net_build(a, &o, 7, &st);
  CHECK(net == NULL, "32 px with explicit padding must fail");
  CHECK(has(st.msg, "stage5 row 0") && has(st.msg, "--padding standard") && has(st.msg, V3A),
        "small-input message: %s", st.msg);
  fb_net_free(net);
  o.standard_padding = 1;
  net = fb_net_build(a, &o, 7, &st);
  CHECK(net != NULL, "32 px with standard padding: %s", st.msg);
  if (net) {
    fb_shape s = out_of(net, "stage5.0.dw.conv");
    CHECK(s.h == 1 && s.w == 1, "standard padding at 32 px: %dx%d", s.h, s.w);
  }
  fb_net_free(net);

  /* width multiplier: every C_out through div8, the 1984 head included */
  o = fb_build_opts_default();
  o.width = 0.5;
  o.num_classes = 10;
  net = fb_net_build(a, &o, 7, &st);
  CHECK(net != NULL, "width 0.5: %s", st.msg);
  if (net) {
    CHECK(out_of(net, "head.0.fc.conv").c == 992, "head width");
    CHECK(out_of(net, "stem.0.conv").c == 8, "stem width");
    CHECK(out_of(net, "stage5.6.pwl.bn").c == 112, "stage5 last width");
    CHECK(net->g.nodes[net->logits_node].args.out.c == 10, "classes");
  }
  fb_net_free(net);
  o = fb_build_opts_default();
  o.width = 0;
  net = fb_net_build(a, &o, 7, &st);
  CHECK(net == NULL && has(st.msg, "width"), "width 0: %s", st.msg);
  fb_arch_free(a);
}

/* A tiny network runs forward and backward; a shape error names the row. */
static void test_small_net(void) {
  const char *text =
      "{\"name\": \"tiny\", \"input_size\": 16, \"blocks\": [\n"
      " {\"stage\": \"stem\", \"rows\": [[\"conv_k3_hs\", 8, 2, 1]]},\n"
      " {\"stage\": \"s1\", \"rows\": [[\"ir_k7_hs\", 8, 1, 1, {\"e\": 2}],\n"
      "                               [\"ir_k3_sehsig_hs\", 16, 2, 2, {\"e\": 3}]]},\n"
      " {\"stage\": \"head\", \"rows\": [[\"ir_pool_hs\", 32, 1, 1]]}]}";
  fb_status st = {0};
  fb_arch *a = fb_arch_parse(text, "tiny.json", &st);
  CHECK(a != NULL, "tiny: %s", st.msg);
  if (!a) return;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 0; /* the file's 16 */
  o.in_channels = 1;
  o.num_classes = 5;
  fb_net *net = fb_net_build(a, &o, 3, &st);
  CHECK(net != NULL, "tiny build: %s", st.msg);
  if (net) {
    CHECK(out_of(net, "s1.0.dw.conv").h == 8 && out_of(net, "s1.0.dw.conv").c == 16, "k7 block");
    CHECK(out_of(net, "s1.2.res").h == 4, "repeat: second copy stride 1");
    CHECK(out_of(net, "head.0.pw.conv").c == 96, "ir_pool_hs default e = 6");
    /* MACs by hand: stem 8*9*64, s1.0 pw 16*8*64 + dw 16*49*64 + pwl 8*16*64,
     * s1.1 pw 24*8*64 + dw 24*9*16 + gap 24*16 + se 2*24*8 + pwl 16*24*16,
     * s1.2 pw 48*16*16 + dw 48*9*16 + gap 48*16 + se 2*48*8 + pwl 16*48*16,
     * head 96*16*16 + gap 96*16 + 32*96 + classifier 5*32 */
    double want = 8 * 9 * 64 + 16 * 8 * 64 + 16 * 49 * 64 + 8 * 16 * 64 + 24 * 8 * 64 +
                  24 * 9 * 16 + 24 * 16 + 2 * 24 * 8 + 16 * 24 * 16 + 48 * 16 * 16 + 48 * 9 * 16 +
                  48 * 16 + 2 * 48 * 8 + 16 * 48 * 16 + 96 * 16 * 16 + 96 * 16 + 32 * 96 + 5 * 32;
    CHECK_CLOSE(fb_net_count(net).macs, want, 0.5, "tiny MACs");
    const fb_op *ce = net->g.nodes[net->loss_node].op;
    if (ce && ce->fwd && net->g.nodes[node(net, "stem.0.bn")].op->fwd) {
      CHECK(fb_net_plan(net, 2, 3, &st) == 0, "plan: %s", st.msg);
      float *x = fb_net_input(net);
      for (int i = 0; i < 2 * 16 * 16; i++) x[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
      fb_net_labels(net)[0] = 1;
      fb_net_labels(net)[1] = 4;
      float loss = fb_net_forward(net, 1);
      CHECK(isfinite(loss) && loss > 0.5f && loss < 5.0f, "tiny loss %g (about ln 5)", loss);
      fb_params_zero_grad(&net->g.params);
      fb_net_backward(net);
      double gsum = 0;
      for (size_t i = 0; i < net->g.params.total; i++) gsum += fabs(net->g.params.grad[i]);
      CHECK(isfinite(gsum) && gsum > 0, "gradients flow: sum |g| = %g", gsum);
    } else {
      printf("note: softmax_ce/batchnorm kernels not there yet; forward not run\n");
    }
  }
  fb_net_free(net);
  /* a stride that cannot fit names the row */
  o.input_size = 2;
  net = fb_net_build(a, &o, 3, &st);
  CHECK(net != NULL, "2 px with standard k/2 padding fits: %s", st.msg);
  fb_net_free(net);
  fb_arch_free(a);
  const char *bad =
      "{\"name\": \"bad\", \"blocks\": [{\"stage\": \"s\", \"rows\": [\n"
      " [\"ir_k5_hs\", 8, 2, 1, {\"dw_pad\": 0}], [\"ir_k5_hs\", 16, 2, 1, {\"dw_pad\": 0}],\n"
      " [\"ir_k3_hs\", 16, 1, 1, {\"dw_pad\": 0}]]}]}";
  a = fb_arch_parse(bad, "bad.json", &st);
  CHECK(a != NULL, "bad parses: %s", st.msg);
  if (a) {
    o.input_size = 12; /* 12 -> 4 -> too small for 5x5 without padding */
    net = fb_net_build(a, &o, 3, &st);
    CHECK(net == NULL && has(st.msg, "bad.json: stage s row 1") && has(st.msg, "block s.1") &&
              has(st.msg, "too small") && has(st.msg, "--padding standard"),
          "shape error names the row: %s", st.msg);
    fb_net_free(net);
    o.input_size = 32; /* 32 -> 14 -> 5 -> residual 3x3 at pad 0 gives 3 != 5 */
    net = fb_net_build(a, &o, 3, &st);
    CHECK(net == NULL && has(st.msg, "stage s row 2") && has(st.msg, "residual"),
          "residual size error names the row: %s", st.msg);
    fb_net_free(net);
    o.standard_padding = 1;
    net = fb_net_build(a, &o, 3, &st);
    CHECK(net != NULL, "standard padding builds: %s", st.msg);
    fb_net_free(net);
  }
  fb_arch_free(a);
}

int main(void) {
  test_div8();
  test_parse_v3a();
  test_errors();
  test_v3a_counts();
  test_small_net();
  return check_report("arch");
}
