/* The task table (task.h): the rows in slot order. */
#include "tasks/task.h"

#include <string.h>

static const fb_task_row *const rows[FB_TASKS_MAX] = {&fb_task_cls_row, &fb_task_det_row,
                                                      &fb_task_seg_row};

const fb_task_row *fb_task_at(int slot) {
  return slot >= 0 && slot < FB_TASKS_MAX ? rows[slot] : NULL;
}

int fb_task_slot(unsigned id) {
  for (int k = 0; k < FB_TASKS_MAX; k++)
    if (rows[k]->id == id) return k;
  return -1;
}

const fb_task_row *fb_task_row_of(unsigned id) { return fb_task_at(fb_task_slot(id)); }

const fb_task_row *fb_task_named(const char *name) {
  for (int k = 0; name && k < FB_TASKS_MAX; k++)
    if (strcmp(rows[k]->name, name) == 0) return rows[k];
  return NULL;
}

unsigned fb_task_all(void) {
  unsigned all = 0;
  for (int k = 0; k < FB_TASKS_MAX; k++) all |= rows[k]->id;
  return all;
}

int fb_task_list(unsigned tasks, unsigned *list) {
  int n = 0;
  for (int k = 0; k < FB_TASKS_MAX; k++)
    if (tasks & rows[k]->id) list[n++] = rows[k]->id;
  return n;
}

const char *fb_task_name(unsigned task) {
  const fb_task_row *r = fb_task_row_of(task);
  return r ? r->name : "?";
}
