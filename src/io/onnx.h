/* ONNX export of a built network (inference form), written with protobuf-c
 * from the onnx.proto that Debian's libonnx-dev ships.
 *
 * The graph is the network's forward in eval mode: every node that one of
 * the head outputs depends on, with aliases of skipped blocks followed and
 * absent terms of an add dropped, exactly as the executor runs it. Batch
 * norm after a convolution that nothing else reads is folded into that
 * convolution's weights and bias (computed in double); any other batch norm
 * becomes BatchNormalization with the running statistics. The batch size is
 * dynamic (dimension "N").
 *
 * Input "input": float32 [N, C, S, S], preprocessed as fbnet's loader does
 * (metadata "fbnet.preprocess" says how). Outputs, per head the net has:
 *   cls.logits [N, K]                        (before softmax)
 *   det.cls.s<stride>  [N, K, H, W]          (logits, before sigmoid)
 *   det.box.s<stride>  [N, 4, H, W]          (l, t, r, b in units of the stride)
 *   det.ctr.s<stride>  [N, 1, H, W]          (centerness logits)
 *   seg.logits [N, K, S, S]
 * Opset FB_ONNX_OPSET, IR version 8. */
#ifndef FB_IO_ONNX_H
#define FB_IO_ONNX_H

#include "fbnet.h"

#define FB_ONNX_OPSET 17

typedef struct fb_onnx_info {
  int n_nodes;        /* ONNX nodes written */
  int n_folded;       /* batch norms folded into convolutions */
  int n_outputs;
  size_t bytes;       /* file size */
} fb_onnx_info;

/* Writes net (planned, parameters loaded) to path atomically. An op that has
 * no ONNX form is an error naming the node. info may be NULL. */
int fb_onnx_export(const fb_net *net, const char *path, fb_onnx_info *info, fb_status *st);

#endif
