/* fbnet: FBNetV5 multi-task neural architecture search in C.
 *
 * Public API. Every fallible call takes an fb_status * and returns 0 on
 * success or -1 with a message naming the file/field at fault in status.msg.
 */
#ifndef FBNET_H
#define FBNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FBNET_VERSION "0.1.0"

/* What went wrong, for callers that act on it (the CLI's exit status). */
typedef enum fb_code {
  FB_OK = 0,
  FB_E_INPUT = 1,    /* bad input: a file's content, a field, an option, a shape */
  FB_E_IO = 2,       /* a file or directory that cannot be opened, read or written */
  FB_E_DIVERGED = 3, /* training or search diverged (a non-finite or exploding loss) */
  FB_E_INTERNAL = 4, /* a bug in fbnet: please report it with the message */
} fb_code;

typedef struct fb_status {
  char msg[1024];
  fb_code code; /* set with msg by every failing call */
} fb_status;

/* Where the library's messages go: it never prints. fn receives each line
 * (INFO, WARN), a run's result text (RESULT: the CLI prints it on stdout),
 * progress (PROGRESS with the fraction done, 0..1; PROGRESS_END when a
 * progress display should end its line); a NULL logger or fn: silent. */
typedef enum fb_log_level {
  FB_LOG_INFO = 0,
  FB_LOG_WARN,
  FB_LOG_RESULT,
  FB_LOG_PROGRESS,
  FB_LOG_PROGRESS_END,
} fb_log_level;
typedef struct fb_logger {
  void (*fn)(void *ctx, fb_log_level level, double fraction, const char *text);
  void *ctx;
  double progress_every; /* seconds between progress messages (0: every one) */
} fb_logger;

/* ---- Architectures ---------------------------------------------------- */

/* Task heads a network carries (bit mask). */
enum { FB_TASK_CLS = 1, FB_TASK_DET = 2, FB_TASK_SEG = 4 };
enum { FB_TASKS_MAX = 3 }; /* tasks fbnet knows (src/tasks/task.h) */
/* "cls", "det" or "seg" for one FB_TASK_* value ("?" otherwise). */
const char *fb_task_name(unsigned task);

/* How the builder turns an arch file into a network. */
typedef struct fb_build_opts {
  int input_size;   /* square input resolution (e.g. 224) */
  int in_channels;  /* 3 for RGB, 1 for Fashion-MNIST */
  int num_classes;  /* classifier outputs */
  double width;     /* width multiplier; channels rounded with div8 */
  int standard_padding; /* 1: ignore explicit paddings and use k/2 everywhere */
  unsigned tasks;       /* FB_TASK_* bits (default FB_TASK_CLS) */
  int num_cats;         /* detection categories (FB_TASK_DET) */
  int num_seg_classes;  /* segmentation classes (FB_TASK_SEG) */
  int det_width;        /* detection head channels (0: the head's default) */
  int seg_width;        /* segmentation head channels (0: the head's default) */
  int det_depth;        /* detection tower depth (0: the head's default 2; -1: no tower) */
  int input_content;    /* 1-channel (Fashion-MNIST) models: side the image is resized to and
                           centred at in the input canvas (0: the default for the input size) */
} fb_build_opts;

fb_build_opts fb_build_opts_default(void);

/* FBNet channel rounding (docs/method.md section 2). */
int fb_div8(double n);

typedef struct fb_arch fb_arch; /* a parsed arch file */

fb_arch *fb_arch_load(const char *path, fb_status *st);
fb_arch *fb_arch_parse(const char *json_text, const char *path_for_errors, fb_status *st);
void fb_arch_free(fb_arch *a);
const char *fb_arch_name(const fb_arch *a);

/* ---- Networks --------------------------------------------------------- */

typedef struct fb_net fb_net; /* graph + parameters, ready to run */

fb_net *fb_net_build(const fb_arch *arch, const fb_build_opts *opts, uint64_t seed,
                     fb_status *st);
void fb_net_free(fb_net *net);

/* Per-layer table of shapes, params and multiply-adds (at batch 1). */
typedef struct fb_count {
  double macs;          /* published convention: conv/linear MACs + global pool inputs */
  double params;        /* conv + linear weights only */
  double params_all;    /* every trainable value, incl. biases and BN */
} fb_count;

fb_count fb_net_count(const fb_net *net);

/* ---- a trained model: open, run, read outputs -------------------------------
 *
 *   fb_status st = {0};
 *   fb_model *m = fb_model_open("runs/cls/weights.safetensors", NULL, &st);
 *   if (!m) { fprintf(stderr, "%s\n", st.msg); return 1; }
 *   fb_model_load_image(m, "cat.png", fb_model_input(m), &st);   // image 0 of the batch
 *   fb_model_run(m, 1, &st);
 *   fb_output o;
 *   fb_model_output(m, "cls.logits", &o, &st);                     // o.data: [1, K]
 *   ... fb_model_free(m);
 *
 * A model is the network its weights file describes (the arch and build options
 * fbnet stored in it, or another arch file), planned for inference at a batch
 * size, batch norm with its running statistics. See examples/classify.c. */
typedef struct fb_model fb_model;

typedef struct fb_model_opts {
  const char *arch_path; /* arch file (NULL: the arch stored in the weights) */
  unsigned tasks;        /* heads to build, FB_TASK_* bits the weights have (0: all of them) */
  int batch;             /* images per fb_model_run (0: 1) */
} fb_model_opts;

/* NULL with a message naming the file when it is not fbnet weights, lacks a
 * requested head, or does not match the arch. */
fb_model *fb_model_open(const char *weights_path, const fb_model_opts *opts, fb_status *st);
void fb_model_free(fb_model *m);

unsigned fb_model_tasks(const fb_model *m);   /* FB_TASK_* heads built */
int fb_model_batch(const fb_model *m);
int fb_model_input_size(const fb_model *m);   /* images are C x S x S, S this */
int fb_model_in_channels(const fb_model *m);  /* C: 3 (RGB) or 1 (Fashion-MNIST models) */
int fb_model_num_classes(const fb_model *m);  /* classifier outputs (0 without the head) */
/* The name of class k of the classifier (or category k of the detector):
 * the training set's folder (category) name, NULL when the weights carry none. */
const char *fb_model_class_name(const fb_model *m, int k);
const char *fb_model_category_name(const fb_model *m, int k);

/* The input tensor: batch x C x S x S floats, preprocessed (normalised as in
 * training); fill the first n images, then fb_model_run(m, n). */
float *fb_model_input(fb_model *m);
/* Decodes an image file (PNG or JPEG) and writes it to dst (C x S x S), resized
 * and normalised exactly as `fbnet eval` feeds the network. */
int fb_model_load_image(const fb_model *m, const char *path, float *dst, fb_status *st);
/* Runs the network on the first n images of the input (1 <= n <= batch); a
 * non-finite input value is an error. */
int fb_model_run(fb_model *m, int n, fb_status *st);

/* A named output of the last run (n = images of that run):
 *   cls.logits [n, K]; det.cls [n, K, P] (logits), det.box [n, 4, P] (l, t, r, b in
 *   units of the level's stride), det.ctr [n, 1, P], P the locations of every level;
 *   seg.logits [n, K, S, S]. */
typedef struct fb_output {
  const char *name;
  const float *data; /* valid until the next fb_model_run or fb_model_free */
  int rank;
  int shape[4];
} fb_output;
/* The detector's feature levels, in the order of det.* locations: level l
 * holds locations offset[l] .. offset[l] + h[l] * w[l] - 1 (row-major) at
 * stride[l] pixels. Returns the number of levels (<= 5; 0 without the head). */
int fb_model_det_levels(const fb_model *m, int *stride, int *h, int *w, int *offset);
int fb_model_num_outputs(const fb_model *m);
/* Output i (0 <= i < fb_model_num_outputs) or by name; -1 with a message when absent. */
int fb_model_output_at(const fb_model *m, int i, fb_output *out, fb_status *st);
int fb_model_output(const fb_model *m, const char *name, fb_output *out, fb_status *st);

#ifdef __cplusplus
}
#endif
#endif
