/* From a searched distribution to architectures (docs/method.md sections 3 and 4):
 * threshold each task's bit probabilities, derive (drop what cannot reach
 * the task's head), write readable arch files and the summary; and BN
 * re-calibration, so a derived subnet can be evaluated with the shared
 * supernet weights. */
#ifndef FB_SEARCH_DERIVE_H
#define FB_SEARCH_DERIVE_H

#include <stdint.h>

#include "data/dataset.h"
#include "fbnet.h"
#include "search/archdist.h"
#include "search/search.h"

struct fb_net;

/* The derived arch file of `task` under mask as JSON text (malloc'd), with a
 * "derived" provenance object (supernet, task, bits, probabilities when
 * probs is non-NULL, step, the search's input size and width). input_size
 * is the file's "input_size" (the deployed one; 0: the supernet's).
 * *n_kept (may be NULL): the searchable bits that survive derivation. */
char *fb_derive_arch_json(const struct fb_net *supernet, const uint8_t *mask, unsigned task,
                          const char *supernet_path, const double *probs, long step,
                          int input_size, int *n_kept, fb_status *st);

/* MACs/params of an arch file's text built for one task with build options
 * o (o->tasks is replaced by task). */
int fb_derive_count(const char *arch_json, const fb_build_opts *o, unsigned task, fb_count *out,
                    fb_status *st);

/* The network `net` (built from an arch file) built again with options o,
 * not planned (no memory for activations or parameters): for counting. */
struct fb_net *fb_deploy_net(const struct fb_net *net, const fb_build_opts *o, fb_status *st);

/* Writes OUT/<task>.json for every searched task, OUT/summary.json and
 * OUT/summary.txt, and prints the summary table to stdout. */
/* (Counts are of the deployed networks, fb_search_deploy_opts, beside those of
 * the search's light heads at the search size.) */
int fb_search_write_results(const struct fb_net *supernet, const fb_archdist *d,
                            const unsigned *tasks, int T, const fb_search_cfg *c, long step,
                            fb_status *st);

/* Resets the running statistics of every active BN node of net and
 * recomputes them as the plain average over the first `images` images of d
 * (training-mode forward passes, no weight update, cumulative momentum).
 * The network must be planned; the mask must be set. */
int fb_bn_recalibrate(struct fb_net *net, const fb_mt_dataset *d, int images, int threads,
                      uint64_t seed, fb_status *st);

#endif
