/* Box geometry for detection, apart from the network code. Boxes here are
 * corner boxes float[4] = {x0, y0, x1, y1} in pixels with x1 >= x0, y1 >= y0
 * (continuous coordinates: a box [0, 10] is 10 pixels wide). */
#ifndef FB_TASKS_DET_BOX_H
#define FB_TASKS_DET_BOX_H

static inline float fb_box_area(const float *b) {
  float w = b[2] - b[0], h = b[3] - b[1];
  return w > 0 && h > 0 ? w * h : 0.f;
}

/* Intersection over union; 0 when the union is empty. */
float fb_box_iou(const float *a, const float *b);

/* Clips a corner box to [0, w] x [0, h]. */
void fb_box_clip(float *b, float w, float h);

/* (x, y, w, h) <-> corners. */
static inline void fb_box_xywh_to_xyxy(const float *xywh, float *xyxy) {
  xyxy[0] = xywh[0], xyxy[1] = xywh[1], xyxy[2] = xywh[0] + xywh[2], xyxy[3] = xywh[1] + xywh[3];
}

#endif
