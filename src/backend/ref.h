/* The reference backend: every node runs its op row's double reference
 * kernels (fwd_ref/bwd_ref) on the graph's float buffers, converted to double
 * and back around each call; workspaces hold doubles. Slow, for tests: a
 * training step through it is the fast kernels' ground truth at the level of
 * a whole network, and it proves the backend seam (core/backend.h). */
#ifndef FB_BACKEND_REF_H
#define FB_BACKEND_REF_H

#include "core/backend.h"

const fb_backend *fb_backend_ref(void);

#endif
