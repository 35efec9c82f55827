/* Training checkpoints and exported weights.
 *
 * checkpoint: OUT/checkpoint.safetensors holds the whole run state needed to
 * continue exactly at an epoch boundary: every store slot ("param.<slot>"),
 * the optimizer moments ("m1.<slot>", "m2.<slot>"), the EMA shadow
 * ("ema.<slot>", when EMA is on) and, as metadata, the epoch and step counts.
 * The data order and augmentation of an epoch are pure functions of
 * (seed, epoch), so no rng state needs saving. Written atomically.
 *
 * weights: a plain safetensors file of the network's slots by name (the file
 * `fbnet eval` and PyTorch load), with the build options as metadata. */
#ifndef FB_TRAIN_CHECKPOINT_H
#define FB_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "fbnet.h"
#include "nn/net.h"
#include "train/ema.h"

/* Integrity: every checkpoint carries a CRC-32 of each tensor and of its
 * metadata ("checksums"); the previous one is kept as PATH.prev.safetensors,
 * and a reader that finds the newest damaged (or missing) says so and uses
 * the previous one.
 *
 * config: the options the run's result depends on, a JSON object of option
 * name -> value text ({"--lr": "0.002", ...}; fb_config_put builds it), saved
 * as metadata "config"; a reader given a config refuses a checkpoint whose
 * stored one differs, naming each option (NULL: not compared; checkpoints of
 * an older fbnet have none and pass). */
int fb_checkpoint_save(const char *out_dir, const fb_net *net, const fb_ema *ema, int epoch,
                       long step, const char *config, fb_status *st);
/* Restores what fb_checkpoint_save wrote; the network must be built with the
 * same arch and options (a mismatch is an error naming the tensor). */
int fb_checkpoint_load(const char *out_dir, fb_net *net, fb_ema *ema, int *epoch, long *step,
                       const char *config, const fb_logger *lg, fb_status *st);

/* The same at an explicit path, with extra metadata (key, value, ...,
 * NULL; at most 7 pairs), e.g. the search state and "config"; and its
 * reader, which returns the value of extra_key (malloc'd) when extra_key is
 * non-NULL. */
int fb_checkpoint_write(const char *path, const fb_net *net, const fb_ema *ema, int epoch,
                        long step, const char *const *extra_meta, fb_status *st);
int fb_checkpoint_read(const char *path, fb_net *net, fb_ema *ema, int *epoch, long *step,
                       const char *extra_key, char **extra_value, const char *config,
                       const fb_logger *lg, fb_status *st);

/* Adds option name = the printf-formatted value to the config object o (a
 * cJSON object). The options that may change on resume are left out by the
 * callers (--epochs extends a run; --threads, --quiet). */
struct cJSON;
void fb_config_put(struct cJSON *o, const char *option, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The parts every run has: the network (its arch text's CRC, input size,
 * width, padding, heads) and the weights' optimizer. */
struct fb_optim_cfg;
void fb_config_put_net(struct cJSON *o, const fb_net *net);
void fb_config_put_optim(struct cJSON *o, const struct fb_optim_cfg *c);
/* What both trainers record: the network, the optimizer and the recipe. */
void fb_config_put_recipe(struct cJSON *o, const fb_net *net, const struct fb_optim_cfg *optim,
                          const char *data, int batch, uint64_t seed, double warmup_epochs,
                          double final_lr_frac, double label_smoothing, double ema_decay);
/* The object as JSON text (malloc'd) and freed. */
char *fb_config_finish(struct cJSON *o);

int fb_weights_save(const char *path, const fb_net *net, fb_status *st);
/* End of an epoch: OUT/checkpoint.safetensors, then OUT/weights.safetensors
 * with the EMA weights when ema is non-NULL (swapped in and back). */
int fb_run_save(const char *out_dir, fb_net *net, fb_ema *ema, int epoch, long step,
                const char *config, fb_status *st);
/* The build options fb_weights_save recorded, set on *b (keys a file lacks
 * leave *b's values: older weights have no head widths). */
struct fb_st_file;
void fb_weights_build_opts(const struct fb_st_file *f, fb_build_opts *b);
int fb_weights_load(const char *path, fb_net *net, fb_status *st);

#endif
