/* The task table (src/tasks/task.h): every row complete and distinct, the
 * lookups agree, and each row's hooks find its head in a built network: the
 * loss nodes are losses, the outputs are the head's prediction nodes. */
#include <string.h>

#include "check.h"
#include "nn/multipath.h"
#include "nn/net.h"
#include "tasks/task.h"
#include "tiny_supernet.h"
#include "train/evaluate.h"

static void test_rows(void) {
  unsigned seen = 0;
  int n = 0;
  for (int k = 0; fb_task_at(k); k++, n++) {
    const fb_task_row *r = fb_task_at(k);
    CHECK(r->id && !(r->id & (r->id - 1)) && !(seen & r->id), "%s: one bit of its own", r->name);
    seen |= r->id;
    CHECK(fb_task_slot(r->id) == k && fb_task_row_of(r->id) == r && fb_task_named(r->name) == r,
          "%s: slot, id and name lookups agree", r->name);
    CHECK(strcmp(fb_task_name(r->id), r->name) == 0 && r->title && r->metric, "%s: names", r->name);
    CHECK(r->roots && r->outputs && r->set_targets && r->load_split && r->head_from_data &&
              r->has_labels && r->head_size && r->proxy_lacks && r->eval_open && r->eval_batch && r->eval_finish && r->eval_free &&
              r->headline && r->metrics_json && r->metrics_text && r->add_head &&
              r->output_names[0],
          "%s: every hook set", r->name);
    fb_mt_metrics m = {0};
    m.task = (int)r->id;
    CHECK(strcmp(fb_mt_headline_name(m.task), r->metric) == 0, "%s: headline name", r->name);
  }
  CHECK(n == FB_TASKS_MAX && seen == fb_task_all() &&
            seen == (FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG),
        "three rows: cls, det, seg");
  CHECK(strcmp(fb_task_at(0)->name, "cls") == 0 && strcmp(fb_task_at(2)->name, "seg") == 0,
        "slot order cls, det, seg");
  CHECK(!fb_task_named("pose") && !fb_task_row_of(FB_TASK_CLS | FB_TASK_DET) &&
            fb_task_slot(8) == -1 && strcmp(fb_task_name(0), "?") == 0,
        "unknown names and bits are not tasks");
  unsigned list[FB_TASKS_MAX];
  CHECK(fb_task_list(FB_TASK_SEG | FB_TASK_CLS, list) == 2 && list[0] == FB_TASK_CLS &&
            list[1] == FB_TASK_SEG,
        "a task list in slot order");
}

static void test_hooks_on_a_network(void) {
  fb_status st = {0};
  fb_net *net = tiny_build(FB_TASK_CLS | FB_TASK_DET | FB_TASK_SEG, 5, 3, 4, &st);
  CHECK(net != NULL, "build: %s", st.msg);
  if (!net) return;
  int total = 0;
  for (int k = 0; fb_task_at(k); k++) {
    const fb_task_row *r = fb_task_at(k);
    int roots[4], outs[4];
    const int nr = r->roots(net, roots), no = r->outputs(net, outs);
    total += nr;
    int losses = 1;
    for (int i = 0; i < nr; i++) losses &= net->g.nodes[roots[i]].op->is_loss;
    CHECK(nr >= 1 && losses, "%s: %d loss roots, each a loss", r->name, nr);
    int preds = 1;
    for (int i = 0; i < no; i++) preds &= outs[i] >= 0 && !net->g.nodes[outs[i]].op->is_loss;
    CHECK(no >= 1 && preds, "%s: %d outputs, none a loss", r->name, no);
    CHECK(fb_net_task_roots(net, r->id, roots) == nr, "%s: fb_net_task_roots asks the row", r->name);
  }
  int losses = 0;
  for (int i = 0; i < net->g.n; i++) losses += net->g.nodes[i].op && net->g.nodes[i].op->is_loss;
  CHECK(total == losses, "the rows' roots are every loss of the network (%d of %d)", total, losses);
  fb_net_free(net);
  net = tiny_build(FB_TASK_DET, 5, 3, 4, &st);
  int roots[4];
  CHECK(net && fb_task_cls_row.roots(net, roots) == 0 && fb_task_seg_row.outputs(net, roots) == 0,
        "a network without a head: the row finds nothing");
  fb_net_free(net);
}

int main(void) {
  test_rows();
  test_hooks_on_a_network();
  return check_report("test_task_table");
}
