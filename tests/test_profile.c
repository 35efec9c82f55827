/* The op-family profile (src/nn/profile.h): the families partition the
 * active nodes as named by hand, MACs add up to fb_net_count, the bytes model
 * and the floor arithmetic of single nodes worked out by hand, and the
 * printed table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "nn/arch.h"
#include "nn/net.h"
#include "nn/profile.h"

/* 32 px, batch 2: stem 3->8 at 16x16, two SE blocks 8->32->8 with
 * residuals, the pool head 8->16 (pw), gap, fc 16, then 5 classes. */
static const char *ARCH_TEXT =
    "{\"name\": \"tiny\", \"input_size\": 32, \"blocks\": ["
    "  {\"stage\": \"stem\", \"rows\": [[\"conv_k3_hs\", 8, 2, 1]]},"
    "  {\"stage\": \"s1\", \"rows\": [[\"ir_k3_sehsig_hs\", 8, 1, 2, {\"e\": 4}]]},"
    "  {\"stage\": \"head\", \"rows\": [[\"ir_pool_hs\", 16, 1, 1, {\"e\": 2}]]}]}";
enum { BATCH = 2 };

typedef struct expect {
  const char *name;
  fb_family family;
} expect;

/* Every op node of the tiny net and its family, by hand. */
static const expect EXPECTED[] = {
    {"stem.0.conv", FB_FAM_CONVKXK},    {"stem.0.bn", FB_FAM_BN},
    {"stem.0.act", FB_FAM_ACT},         {"s1.0.pw.conv", FB_FAM_CONV1X1},
    {"s1.0.pw.bn", FB_FAM_BN},          {"s1.0.pw.act", FB_FAM_ACT},
    {"s1.0.dw.conv", FB_FAM_DEPTHWISE}, {"s1.0.dw.bn", FB_FAM_BN},
    {"s1.0.dw.act", FB_FAM_ACT},        {"s1.0.se.pool", FB_FAM_SE},
    {"s1.0.se.fc1", FB_FAM_SE},         {"s1.0.se.act", FB_FAM_SE},
    {"s1.0.se.fc2", FB_FAM_SE},         {"s1.0.se.gate", FB_FAM_SE},
    {"s1.0.se.mul", FB_FAM_SE},         {"s1.0.pwl.conv", FB_FAM_CONV1X1},
    {"s1.0.pwl.bn", FB_FAM_BN},         {"s1.0.res", FB_FAM_ADD},
    {"s1.1.pw.conv", FB_FAM_CONV1X1},   {"s1.1.pw.bn", FB_FAM_BN},
    {"s1.1.pw.act", FB_FAM_ACT},        {"s1.1.dw.conv", FB_FAM_DEPTHWISE},
    {"s1.1.dw.bn", FB_FAM_BN},          {"s1.1.dw.act", FB_FAM_ACT},
    {"s1.1.se.pool", FB_FAM_SE},        {"s1.1.se.fc1", FB_FAM_SE},
    {"s1.1.se.act", FB_FAM_SE},         {"s1.1.se.fc2", FB_FAM_SE},
    {"s1.1.se.gate", FB_FAM_SE},        {"s1.1.se.mul", FB_FAM_SE},
    {"s1.1.pwl.conv", FB_FAM_CONV1X1},  {"s1.1.pwl.bn", FB_FAM_BN},
    {"s1.1.res", FB_FAM_ADD},           {"head.0.pw.conv", FB_FAM_CONV1X1},
    {"head.0.pw.bn", FB_FAM_BN},        {"head.0.pw.act", FB_FAM_ACT},
    {"head.0.pool", FB_FAM_POOLCLS},    {"head.0.fc.conv", FB_FAM_CONV1X1},
    {"head.0.fc.act", FB_FAM_ACT},      {"classifier", FB_FAM_POOLCLS},
    {"loss", FB_FAM_POOLCLS},
};
enum { N_EXPECTED = sizeof EXPECTED / sizeof EXPECTED[0] };

static fb_net *build(const char *text, unsigned tasks, fb_status *st) {
  fb_arch *a = fb_arch_parse(text, "tiny.json", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 32;
  o.tasks = tasks;
  o.num_classes = 5;
  o.num_cats = 3;
  o.num_seg_classes = 4;
  fb_net *net = fb_net_build(a, &o, 1, st);
  fb_arch_free(a);
  if (net && fb_net_plan(net, BATCH, 1, st)) {
    fb_net_free(net);
    return NULL;
  }
  return net;
}

static int find(const fb_net *net, const char *name) {
  for (int i = 0; i < net->g.n; i++)
    if (strcmp(net->g.nodes[i].name, name) == 0) return i;
  return -1;
}

static void run_steps(fb_net *net, int steps) {
  fb_rng rng;
  fb_rng_seed(&rng, 3);
  float *x = fb_net_input(net);
  const size_t n = fb_numel(net->g.nodes[net->input_node].args.out);
  for (size_t i = 0; i < n; i++) x[i] = (float)fb_rng_normal(&rng);
  for (int i = 0; i < BATCH; i++) fb_net_labels(net)[i] = (float)(i % 5);
  for (int s = 0; s < steps; s++) {
    fb_net_forward(net, 1);
    fb_params_zero_grad(&net->g.params);
    fb_net_backward(net);
  }
}

/* Every active op node is in EXPECTED with that family; each row holds
 * exactly the nodes EXPECTED gives its family. */
static void check_partition(const fb_net *net, const fb_family_row *rows, int n) {
  int want[FB_FAM_COUNT] = {0}, active = 0, named = 0;
  for (int k = 0; k < N_EXPECTED; k++) want[EXPECTED[k].family]++;
  for (int i = 0; i < net->g.n; i++) {
    const fb_node *nd = &net->g.nodes[i];
    if (!nd->op || !nd->active) continue;
    active++;
    for (int k = 0; k < N_EXPECTED; k++) {
      if (strcmp(nd->name, EXPECTED[k].name) != 0) continue;
      named++;
      CHECK(fb_profile_family_of(&net->g, i) == EXPECTED[k].family, "%s: family %s, want %s",
            nd->name, fb_family_name(fb_profile_family_of(&net->g, i)),
            fb_family_name(EXPECTED[k].family));
    }
  }
  CHECK(active == N_EXPECTED && named == N_EXPECTED, "active %d, named %d, expected %d", active,
        named, N_EXPECTED);
  int total = 0, seen[FB_FAM_COUNT] = {0};
  for (int r = 0; r < n; r++) {
    seen[rows[r].family]++;
    total += rows[r].nodes;
    CHECK(rows[r].nodes == want[rows[r].family], "%s: %d nodes, want %d",
          fb_family_name(rows[r].family), rows[r].nodes, want[rows[r].family]);
  }
  for (int f = 0; f < FB_FAM_COUNT; f++)
    CHECK(seen[f] == (want[f] > 0), "family %s: %d rows", fb_family_name(f), seen[f]);
  CHECK(total == active, "rows hold %d nodes, %d active", total, active);
}

/* The bytes and MACs of single nodes, worked out by hand (see the arch). */
static void check_node_costs(const fb_net *net) {
  const fb_graph *g = &net->g;
  /* s1.0.pw.conv: in 2x8x16x16 = 4096, weight 32x8 = 256, out 2x32x16x16 = 16384 */
  fb_node_cost c = fb_profile_node_cost(g, find(net, "s1.0.pw.conv"));
  CHECK_CLOSE(c.macs_fwd, 2.0 * 32 * 16 * 16 * 8, 0, "pw conv fwd MACs");
  CHECK_CLOSE(c.macs_bwd, 2 * c.macs_fwd, 0, "pw conv bwd MACs (data + weights)");
  CHECK_CLOSE(c.bytes_fwd, 4.0 * (4096 + 256 + 16384), 0, "pw conv fwd bytes");
  /* read dout, in, W; write din, dW */
  CHECK_CLOSE(c.bytes_bwd, 4.0 * (16384 + 4096 + 256 + 4096 + 256), 0, "pw conv bwd bytes");
  /* stem.0.conv reads the image (2x3x32x32 = 6144): weight 8x3x3x3 = 216 +
   * bias 8, out 4096; no image gradient */
  c = fb_profile_node_cost(g, find(net, "stem.0.conv"));
  CHECK_CLOSE(c.macs_fwd, 2.0 * 8 * 16 * 16 * 27, 0, "stem fwd MACs");
  CHECK_CLOSE(c.macs_bwd, c.macs_fwd, 0, "stem bwd MACs: weight gradient only");
  CHECK_CLOSE(c.bytes_fwd, 4.0 * (6144 + 224 + 4096), 0, "stem fwd bytes");
  CHECK_CLOSE(c.bytes_bwd, 4.0 * (4096 + 6144 + 2 * 224), 0, "stem bwd bytes");
  /* BN on 2x32x16x16: 4 vectors of 32 read forward, gamma/beta trained */
  c = fb_profile_node_cost(g, find(net, "s1.0.pw.bn"));
  CHECK_CLOSE(c.bytes_fwd, 4.0 * (16384 + 128 + 16384), 0, "bn fwd bytes");
  CHECK_CLOSE(c.bytes_bwd, 4.0 * (16384 + 16384 + 2 * 64 + 16384), 0, "bn bwd bytes");
  CHECK(c.macs_fwd == 0 && c.macs_bwd == 0, "bn MACs %g %g", c.macs_fwd, c.macs_bwd);
  /* the residual add: two 4096 inputs; backward reads dout, writes two grads */
  c = fb_profile_node_cost(g, find(net, "s1.0.res"));
  CHECK_CLOSE(c.bytes_fwd, 4.0 * 3 * 4096, 0, "add fwd bytes");
  CHECK_CLOSE(c.bytes_bwd, 4.0 * 3 * 4096, 0, "add bwd bytes");
  /* gap of 2x32x16x16: one MAC per input element; backward broadcasts */
  c = fb_profile_node_cost(g, find(net, "s1.0.se.pool"));
  CHECK_CLOSE(c.macs_fwd, 16384, 0, "gap MACs");
  CHECK_CLOSE(c.bytes_bwd, 4.0 * (64 + 16384), 0, "gap bwd bytes");
}

static void check_floor_arithmetic(const fb_net *net) {
  const fb_roofline r = {1e9, 2e9}; /* 1 GFLOP/s, 2 GB/s */
  CHECK_CLOSE(fb_floor_sec(1e6, 1e6, &r), 2e-3, 1e-15, "flop-bound floor");
  CHECK_CLOSE(fb_floor_sec(1e6, 1e7, &r), 5e-3, 1e-15, "memory-bound floor");
  /* the two depthwise convs: in = out = 2x32x16x16, weight 32x1x3x3 = 288 */
  fb_family_row rows[FB_FAM_COUNT];
  fb_status st = {0};
  const int n = fb_profile_families(net, 1, &r, 0, rows, FB_FAM_COUNT, &st);
  int dw = -1;
  for (int i = 0; i < n; i++)
    if (rows[i].family == FB_FAM_DEPTHWISE) dw = i;
  CHECK(dw >= 0, "no depthwise row");
  if (dw < 0) return;
  const double macs = 2.0 * 32 * 16 * 16 * 9, fwd_bytes = 4.0 * (16384 + 288 + 16384);
  const double bwd_bytes = 4.0 * (16384 + 16384 + 2 * 288 + 16384);
  /* fwd: 2 * 147456 / 1e9 = 2.95e-4 s vs 132224 / 2e9 = 6.6e-5 s: flop-bound */
  CHECK_CLOSE(rows[dw].floor_fwd_sec, 2 * (2 * macs / 1e9), 1e-15, "dw fwd floor");
  /* bwd: 2 * 294912 / 1e9 = 5.9e-4 s vs 198912 / 2e9 = 9.9e-5 s */
  CHECK_CLOSE(rows[dw].floor_bwd_sec, 2 * (2 * 2 * macs / 1e9), 1e-15, "dw bwd floor");
  CHECK_CLOSE(rows[dw].mem_sec, 2 * (fwd_bytes + bwd_bytes) / 2e9, 1e-15, "dw memory time");
  CHECK_CLOSE(rows[dw].macs_fwd, 2 * macs, 0, "dw MACs");
  /* a family floor is the sum of node floors: BN is memory-bound everywhere */
  const fb_family_row s = fb_profile_sum(rows, n);
  CHECK(s.floor_fwd_sec + s.floor_bwd_sec >= s.flop_sec - 1e-15 &&
            s.floor_fwd_sec + s.floor_bwd_sec >= s.mem_sec - 1e-15 &&
            s.floor_fwd_sec + s.floor_bwd_sec <= s.flop_sec + s.mem_sec + 1e-15,
        "graph floor %g vs flop %g mem %g", s.floor_fwd_sec + s.floor_bwd_sec, s.flop_sec,
        s.mem_sec);
}

static void check_profiled(fb_net *net) {
  const int steps = 2;
  fb_graph_profile(&net->g, 1);
  run_steps(net, steps);
  const fb_roofline r = {100e9, 20e9};
  fb_family_row rows[FB_FAM_COUNT];
  fb_status st = {0};
  const int n = fb_profile_families(net, steps, &r, 0, rows, FB_FAM_COUNT, &st);
  CHECK(n > 0, "families: %s", st.msg);
  if (n <= 0) return;
  check_partition(net, rows, n);
  const fb_family_row s = fb_profile_sum(rows, n);
  const double want_macs = fb_net_count(net).macs * BATCH;
  CHECK_CLOSE(s.macs_fwd, want_macs, 1e-9 * want_macs, "family MACs vs fb_net_count * batch");
  double fwd = 0, bwd = 0;
  for (int i = 0; i < net->g.n; i++) fwd += net->g.prof_fwd[i], bwd += net->g.prof_bwd[i];
  CHECK(s.fwd_sec > 0 && s.bwd_sec > 0, "profiled times %g %g", s.fwd_sec, s.bwd_sec);
  CHECK_CLOSE(s.fwd_sec, fwd / steps, 1e-12, "forward seconds per step");
  CHECK_CLOSE(s.bwd_sec, bwd / steps, 1e-12, "backward seconds per step");
  /* by part: the pool head stage, classifier and loss form the cls head */
  fb_family_row parts[FB_PART_COUNT * FB_FAM_COUNT];
  const int m = fb_profile_families(net, steps, &r, FB_PROFILE_BY_PART, parts,
                                    FB_PART_COUNT * FB_FAM_COUNT, &st);
  int cls = 0, trunk = 0;
  for (int i = 0; i < m; i++) {
    if (parts[i].part == FB_PART_CLS) cls += parts[i].nodes;
    if (parts[i].part == FB_PART_TRUNK) trunk += parts[i].nodes;
  }
  CHECK(cls == 8 && trunk == N_EXPECTED - 8, "cls head %d nodes, trunk %d", cls, trunk);
  CHECK_CLOSE(fb_profile_sum(parts, m).macs_fwd, want_macs, 1e-9 * want_macs, "by-part MACs");
  /* inference-only: no backward costs, the same forward */
  const int k = fb_profile_families(net, steps, &r, FB_PROFILE_FORWARD, rows, FB_FAM_COUNT, &st);
  const fb_family_row fwd_only = fb_profile_sum(rows, k > 0 ? k : 0);
  CHECK(k == n && fwd_only.macs_bwd == 0 && fwd_only.bytes_bwd == 0 &&
            fwd_only.floor_bwd_sec == 0 && fwd_only.bytes_fwd == s.bytes_fwd,
        "forward-only: %d rows, bwd MACs %g bytes %g", k, fwd_only.macs_bwd, fwd_only.bytes_bwd);
  /* errors */
  CHECK(fb_profile_families(net, 0, &r, 0, rows, FB_FAM_COUNT, &st) < 0 &&
            strstr(st.msg, "steps"), "steps 0: %s", st.msg);
  CHECK(fb_profile_families(net, steps, &r, 0, rows, 2, &st) < 0 && strstr(st.msg, "rows"),
        "too few rows: %s", st.msg);
}

static void check_print(const fb_net *net) {
  const fb_roofline r = {100e9, 20e9};
  FILE *f = tmpfile();
  fb_status st = {0};
  CHECK(f && fb_profile_print(f, net, 2, 0.01, &r, 0, 0, &st) == 0 &&
            fb_profile_print(f, net, 2, 0.01, &r, 0, 1, &st) == 0,
        "print: %s", st.msg);
  if (!f) return;
  char buf[16384];
  rewind(f);
  const size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  CHECK(strstr(buf, "conv depthwise") && strstr(buf, "graph (sum)") &&
            strstr(buf, "outside nodes") && strstr(buf, "\"families\": [{\"family\": "),
        "printed table:\n%s", buf);
}

static void check_parts(void) {
  CHECK(fb_profile_part_of("fcos.cls_tower.0.conv") == FB_PART_DET, "fcos part");
  CHECK(fb_profile_part_of("seg.lat0.conv") == FB_PART_SEG, "seg part");
  CHECK(fb_profile_part_of("classifier") == FB_PART_CLS, "classifier part");
  CHECK(fb_profile_part_of("head.0.pw.conv") == FB_PART_CLS, "head part");
  CHECK(fb_profile_part_of("s1.0.pw.conv") == FB_PART_TRUNK, "trunk part");
  CHECK(fb_profile_part_of("s0.p1.f0to1.up") == FB_PART_TRUNK, "fusion part");
}

int main(void) {
  fb_status st = {0};
  fb_net *net = build(ARCH_TEXT, FB_TASK_CLS, &st);
  CHECK(net != NULL, "build: %s", st.msg);
  if (net) {
    check_node_costs(net);
    check_floor_arithmetic(net);
    check_profiled(net);
    check_print(net);
  }
  fb_net_free(net);
  check_parts();
  return check_report("profile");
}
