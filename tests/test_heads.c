/* Multi-task networks: an arch file's trunk with det/seg heads attached at the
 * right strides (by default or by the "heads" key), and the errors. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nn/arch.h"
#include "nn/net.h"

static const char *ARCH_TEXT =
    "{\"name\": \"tiny\", \"input_size\": 64, \"heads\": {\"det\": [\"s3\", \"s4\", \"s5\"]},"
    " \"blocks\": ["
    "  {\"stage\": \"stem\", \"rows\": [[\"conv_k3_hs\", 8, 2, 1]]},"
    "  {\"stage\": \"s2\", \"rows\": [[\"ir_k3_hs\", 16, 2, 1, {\"e\": 2}]]},"
    "  {\"stage\": \"s3\", \"rows\": [[\"ir_k3_hs\", 16, 2, 2, {\"e\": 2}]]},"
    "  {\"stage\": \"s4\", \"rows\": [[\"ir_k3_hs\", 24, 2, 1, {\"e\": 2}]]},"
    "  {\"stage\": \"s5\", \"rows\": [[\"ir_k3_hs\", 32, 2, 1, {\"e\": 2}]]},"
    "  {\"stage\": \"head\", \"rows\": [[\"ir_pool_hs\", 64, 1, 1]]}]}";

static int find(const fb_net *net, const char *name) {
  for (int i = 0; i < net->g.n; i++)
    if (strcmp(net->g.nodes[i].name, name) == 0) return i;
  return -1;
}

static fb_net *build(const char *text, unsigned tasks, fb_status *st) {
  fb_arch *a = fb_arch_parse(text, "tiny.json", st);
  if (!a) return NULL;
  fb_build_opts o = fb_build_opts_default();
  o.input_size = 64;
  o.tasks = tasks;
  o.num_classes = 5;
  o.num_cats = 3;
  o.num_seg_classes = 4;
  fb_net *net = fb_net_build(a, &o, 1, st);
  fb_arch_free(a);
  return net;
}

static void test_det_seg_taps(void) {
  fb_status st = {0};
  fb_net *net = build(ARCH_TEXT, FB_TASK_DET | FB_TASK_SEG, &st);
  CHECK(net != NULL, "build det+seg: %s", st.msg);
  if (!net) return;
  CHECK(net->loss_node < 0 && find(net, "head.0.pool") < 0, "no classifier without cls");
  /* det reads the named stages s3 (stride 8), s4 (16), s5 (32) */
  CHECK(net->det.n_levels == 3, "det levels %d", net->det.n_levels);
  CHECK(net->det.stride[0] == 8 && net->det.stride[1] == 16 && net->det.stride[2] == 32,
        "det strides %d %d %d", net->det.stride[0], net->det.stride[1], net->det.stride[2]);
  CHECK(net->det.h[0] == 8 && net->det.h[2] == 2, "det map sizes %d %d", net->det.h[0],
        net->det.h[2]);
  /* seg picks the last block at strides 4, 8, 16, 32 by default */
  CHECK(net->seg.n_levels == 4, "seg levels %d", net->seg.n_levels);
  fb_shape lo = net->g.nodes[net->seg.logits].args.out;
  CHECK(lo.c == 4 && lo.h == 64 && lo.w == 64, "seg logits %dx%dx%d", lo.c, lo.h, lo.w);
  CHECK(fb_net_plan(net, 2, 1, &st) == 0, "plan: %s", st.msg);
  float total = fb_net_forward(net, 1);
  CHECK(total == total, "forward gives a number");
  fb_count c = fb_net_count(net);
  CHECK(c.macs > 0 && c.params > 0, "count");
  fb_net_free(net);

  /* cls only: the head stage and the classifier, no dense heads */
  net = build(ARCH_TEXT, FB_TASK_CLS, &st);
  CHECK(net != NULL && net->loss_node >= 0 && find(net, "head.0.pool") >= 0 &&
            net->tasks == FB_TASK_CLS,
        "cls-only network: %s", st.msg);
  fb_net_free(net);
}

static void test_errors(void) {
  fb_status st = {0};
  char text[2048];
  snprintf(text, sizeof text, "%s", ARCH_TEXT);
  char *p = strstr(text, "\"s3\", \"s4\"");
  memcpy(p, "\"sX\"", 4);
  fb_arch *a = fb_arch_parse(text, "tiny.json", &st);
  CHECK(!a && strstr(st.msg, "tiny.json") && strstr(st.msg, "heads.det[0]") &&
            strstr(st.msg, "sX"),
        "unknown stage in heads: %s", st.msg);
  fb_arch_free(a);
  snprintf(text, sizeof text, "%s", ARCH_TEXT);
  p = strstr(text, "\"det\":");
  memcpy(p, "\"dex\"", 5);
  a = fb_arch_parse(text, "tiny.json", &st);
  CHECK(!a && strstr(st.msg, "dex"), "unknown task in heads: %s", st.msg);
  fb_arch_free(a);
  /* an arch whose trunk stops at stride 16 cannot feed a stride-32 level */
  const char *shallow =
      "{\"name\": \"shallow\", \"blocks\": ["
      " {\"stage\": \"stem\", \"rows\": [[\"conv_k3_hs\", 8, 2, 1]]},"
      " {\"stage\": \"s2\", \"rows\": [[\"ir_k3_hs\", 16, 2, 1]]},"
      " {\"stage\": \"s3\", \"rows\": [[\"ir_k3_hs\", 16, 2, 1]]},"
      " {\"stage\": \"s4\", \"rows\": [[\"ir_k3_hs\", 16, 2, 1]]}]}";
  fb_net *net = build(shallow, FB_TASK_DET, &st);
  CHECK(!net && strstr(st.msg, "stride 32"), "missing stride named: %s", st.msg);
  fb_net_free(net);
}

int main(void) {
  test_det_seg_taps();
  test_errors();
  return check_report("heads");
}
