/* The public model API (include/fbnet.h: fb_model_*) on weights saved from a
 * tiny 3-head supernet: outputs named by their task rows with the network's
 * own values, heads chosen at open, errors that name what is wrong. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/graph.h"
#include "nn/net.h"
#include "tiny_supernet.h"
#include "train/checkpoint.h"

int main(void) {
  fb_status st = {0};
  fb_net *net = tiny_build(FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, 5, 3, 4, &st);
  CHECK(net && fb_net_plan_inference(net, 2, &st) == 0, "tiny net: %s", st.msg);
  char path[64];
  snprintf(path, sizeof path, "/tmp/fbnet_model_api_%d.safetensors", (int)getpid());
  CHECK(fb_weights_save(path, net, &st) == 0, "save: %s", st.msg);
  const int S = net->opts.input_size;
  const size_t per = (size_t)3 * S * S;
  float *x = fb_net_input(net);
  for (size_t i = 0; i < 2 * per; i++) x[i] = (float)sin(0.01 * (double)i);
  fb_net_forward(net, 0);

  fb_model_opts o = {NULL, 0, 2};
  fb_model *m = fb_model_open(path, &o, &st);
  CHECK(m != NULL, "open: %s", st.msg);
  if (!m) return check_report("test_model_api");
  CHECK(fb_model_tasks(m) == (FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG) &&
            fb_model_input_size(m) == S && fb_model_in_channels(m) == 3 &&
            fb_model_num_classes(m) == 5 && fb_model_batch(m) == 2,
        "what the model is");
  memcpy(fb_model_input(m), x, 2 * per * sizeof(float));
  fb_output out;
  CHECK(fb_model_output(m, "cls.logits", &out, &st) != 0 && strstr(st.msg, "no fb_model_run"),
        "no output before a run: %s", st.msg);
  CHECK(fb_model_run(m, 2, &st) == 0, "run: %s", st.msg);
  static const char *names[5] = {"cls.logits", "det.cls", "det.box", "det.ctr", "seg.logits"};
  const int nodes[5] = {net->logits_node, net->det.cls, net->det.box, net->det.ctr,
                        net->seg.logits};
  const int ranks[5] = {2, 3, 3, 3, 4};
  CHECK(fb_model_num_outputs(m) == 5, "5 outputs (%d)", fb_model_num_outputs(m));
  for (int k = 0; k < 5; k++) {
    int ok = fb_model_output(m, names[k], &out, &st) == 0;
    CHECK(ok && strcmp(out.name, names[k]) == 0 && out.rank == ranks[k] && out.shape[0] == 2,
          "%s: rank %d, batch 2 (%s)", names[k], ok ? out.rank : -1, st.msg);
    if (!ok) continue;
    const fb_shape s = net->g.nodes[nodes[k]].args.out;
    size_t n = 1;
    for (int d = 0; d < out.rank; d++) n *= (size_t)out.shape[d];
    CHECK(n == fb_numel(s), "%s: %zu values", names[k], n);
    const float *want = fb_graph_output(&net->g, nodes[k]);
    float worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmaxf(worst, fabsf(out.data[i] - want[i]));
    CHECK(worst == 0, "%s: the network's own values (max diff %g)", names[k], (double)worst);
  }
  CHECK(fb_model_output(m, "seg.logits", &out, &st) == 0, "seg.logits");
  const float first = out.data[123];
  CHECK(fb_model_run(m, 2, &st) == 0 && fb_model_output(m, "seg.logits", &out, &st) == 0 &&
            out.data[123] == first && fb_model_input(m)[5] == x[5],
        "the input stays readable: a second run gives the same outputs");
  int stride[8], h[8], w[8], off[8];
  const int L = fb_model_det_levels(m, stride, h, w, off);
  CHECK(L == net->det.n_levels && L > 0 && stride[0] == net->det.stride[0] && off[0] == 0 &&
            off[L - 1] + h[L - 1] * w[L - 1] == net->det.P,
        "detector levels cover every location");
  CHECK(fb_model_output(m, "seg.masks", &out, &st) != 0 && strstr(st.msg, "seg.masks") &&
            strstr(st.msg, "det.box"),
        "an unknown output lists the real ones: %s", st.msg);
  CHECK(fb_model_run(m, 3, &st) != 0 && strstr(st.msg, "1..2"), "too many images: %s", st.msg);
  fb_model_input(m)[7] = NAN;
  CHECK(fb_model_run(m, 1, &st) != 0 && strstr(st.msg, "value 7 (image 0)"), "NaN input: %s",
        st.msg);
  fb_model_free(m);

  fb_model_opts seg = {NULL, FB_TASK_SEG, 1};
  m = fb_model_open(path, &seg, &st);
  CHECK(m && fb_model_tasks(m) == FB_TASK_SEG && fb_model_num_outputs(m) == 1 &&
            fb_model_num_classes(m) == 0,
        "only the seg head: %s", m ? "" : st.msg);
  fb_model_free(m);
  fb_model_opts bad = {NULL, 8, 1};
  CHECK(!fb_model_open(path, &bad, &st) && strstr(st.msg, "no task"), "a bit that is no task: %s",
        st.msg);
  CHECK(!fb_model_open("/nonexistent/w.safetensors", NULL, &st) && st.code == FB_E_IO &&
            strstr(st.msg, "/nonexistent/w.safetensors"),
        "missing weights: %s", st.msg);
  unlink(path);
  fb_net_free(net);
  return check_report("test_model_api");
}
