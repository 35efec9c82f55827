/* safetensors files (https://huggingface.co/docs/safetensors), float32 only:
 *   8 bytes   N, little-endian u64: size of the JSON header
 *   N bytes   JSON: {"__metadata__": {"k": "v", ...},
 *                    "<name>": {"dtype": "F32", "shape": [...],
 *                               "data_offsets": [begin, end]}, ...}
 *             padded with spaces to a multiple of 8
 *   data      the tensors' bytes, little-endian, offsets relative to here,
 *             contiguous without gaps.
 *
 * Shapes of store slots (fb_shape n,c,h,w -> PyTorch): a vector stored as
 * (C,1,1,1) or (1,C,1,1) becomes [C] (BN gamma/beta/running stats, biases);
 * a scalar (1,1,1,1) becomes [1]; everything else keeps 4 dims [n,c,h,w]
 * (conv weights (O,I/g,kh,kw), incl. 1x1). Linear weights (O,I,1,1) become
 * [O,I] when written through fb_safetensors_save_graph, which knows the op of
 * each slot; fb_safetensors_save_params cannot tell them from 1x1 convs and
 * writes [O,I,1,1]. The reader accepts either: a file shape matches a slot
 * when both list the same sizes after dropping every 1. */
#ifndef FB_IO_SAFETENSORS_H
#define FB_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"
#include "core/params.h"
#include "fbnet.h"

#define FB_ST_MAX_RANK 8

/* One tensor to write. */
typedef struct fb_st_entry {
  const char *name;
  int rank; /* 0..FB_ST_MAX_RANK */
  int64_t dims[FB_ST_MAX_RANK];
  const float *data; /* prod(dims) floats */
} fb_st_entry;

/* Writes the tensors (in this order) and optional metadata `meta`, a
 * NULL-terminated list of key, value, key, value, ... strings (may be NULL).
 * Atomic: writes path.tmp, fsyncs it and renames it over path. */
int fb_safetensors_write(const char *path, const fb_st_entry *t, int n, const char *const *meta,
                         fb_status *st);

/* The safetensors dims of a store slot (see above); returns the rank. */
int fb_st_slot_dims(fb_shape s, int matrix, int64_t dims[FB_ST_MAX_RANK]);

/* Every slot of the store (weights, BN parameters and buffers), by slot name. */
int fb_safetensors_save_params(const fb_params *s, const char *path, const char *const *meta,
                               fb_status *st);
/* The same for a graph's store, with linear weights written as [O, I]. */
int fb_safetensors_save_graph(const fb_graph *g, const char *path, const char *const *meta,
                              fb_status *st);

/* A file read into memory. */
typedef struct fb_st_tensor {
  char *name;
  int rank;
  int64_t dims[FB_ST_MAX_RANK];
  size_t numel;
  const float *data; /* points into the file buffer */
} fb_st_tensor;

typedef struct fb_st_file {
  int n;
  fb_st_tensor *t;
  int n_meta;
  char **meta; /* key, value pairs: meta[2i], meta[2i+1] */
  void *buf;   /* the data section */
} fb_st_file;

/* Reads and validates the whole file (header JSON, dtypes, shapes against
 * offsets, offsets inside the data and contiguous). */
int fb_safetensors_read(const char *path, fb_st_file *f, fb_status *st);
void fb_st_file_free(fb_st_file *f);
const fb_st_tensor *fb_st_find(const fb_st_file *f, const char *name);
const char *fb_st_meta(const fb_st_file *f, const char *key);

enum {
  FB_ST_ALLOW_MISSING = 1, /* slots without a tensor in the file keep their values */
  FB_ST_REQUIRE_ALL = 2,   /* every tensor in the file must match a slot */
};

/* Fills every slot of the store from the tensor of the same name; a missing
 * tensor or a shape mismatch is an error naming both (tensors in the file
 * without a slot are ignored). Nothing is written to the store unless every
 * slot can be filled. */
int fb_safetensors_load_into(fb_params *s, const char *path, fb_status *st);
/* The same with FB_ST_* flags; returns the number of slots filled, or -1. */
int fb_safetensors_load_into_ex(fb_params *s, const char *path, int flags, fb_status *st);

#endif
