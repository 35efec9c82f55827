#include "tasks/det/box.h"

float fb_box_iou(const float *a, const float *b) {
  float ix0 = a[0] > b[0] ? a[0] : b[0], iy0 = a[1] > b[1] ? a[1] : b[1];
  float ix1 = a[2] < b[2] ? a[2] : b[2], iy1 = a[3] < b[3] ? a[3] : b[3];
  float iw = ix1 - ix0, ih = iy1 - iy0;
  float inter = iw > 0 && ih > 0 ? iw * ih : 0.f;
  float uni = fb_box_area(a) + fb_box_area(b) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void fb_box_clip(float *b, float w, float h) {
  b[0] = clampf(b[0], 0, w), b[2] = clampf(b[2], 0, w);
  b[1] = clampf(b[1], 0, h), b[3] = clampf(b[3], 0, h);
}
