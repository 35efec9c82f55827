/* The op table: one row per op, one file per op (src/ops/<name>.c); the
 * interface a row fills is core/op.h.
 *
 * Tests iterate over fb_op_table(), so adding a row is enough for an op to be
 * gradient-checked and compared fast-vs-reference; graphs name their ops from
 * this table (fb_graph_init(g, fb_op_table())).
 */
#ifndef FB_OPS_OP_H
#define FB_OPS_OP_H

#include "core/op.h"

/* NULL-terminated table of every op. */
const fb_op *const *fb_op_table(void);
const fb_op *fb_op_find(const char *name);

/* Default attributes (groups 1, stride 1, bn eps 1e-5 momentum 0.1, ...). */
fb_op_attr fb_attr_default(void);

#endif
