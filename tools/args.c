#include "args.h"
#include "dist/dist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const arg_opt *find_opt(const arg_spec *s, const char *name) {
  for (int i = 0; i < s->n_opts; i++)
    if (strcmp(s->opts[i].name, name) == 0) return &s->opts[i];
  return NULL;
}

static int choice_index(const char *choices, const char *v) {
  int idx = 0;
  const char *p = choices;
  size_t n = strlen(v);
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && strncmp(p, v, n) == 0) return idx;
    if (!bar) break;
    p = bar + 1;
    idx++;
  }
  return -1;
}

static int set_value(const char *usage, const arg_opt *o, const char *v) {
  char *end = NULL;
  errno = 0;
  switch (o->kind) {
    case ARG_INT: {
      long x = strtol(v, &end, 10);
      if (errno || *end || end == v) {
        fprintf(stderr, "%s: %s expects an integer, got '%s'\n", usage, o->name, v);
        return -1;
      }
      if (x < o->min || x > o->max) {
        fprintf(stderr, "%s: %s must be in [%g, %g], got %ld\n", usage, o->name, o->min, o->max, x);
        return -1;
      }
      *(int *)o->dst = (int)x;
      return 0;
    }
    case ARG_DOUBLE: {
      double x = strtod(v, &end);
      if (errno || *end || end == v || x != x) {
        fprintf(stderr, "%s: %s expects a number, got '%s'\n", usage, o->name, v);
        return -1;
      }
      if (x < o->min || x > o->max) {
        fprintf(stderr, "%s: %s must be in [%g, %g], got %g\n", usage, o->name, o->min, o->max, x);
        return -1;
      }
      *(double *)o->dst = x;
      return 0;
    }
    case ARG_STRING: *(const char **)o->dst = v; return 0;
    case ARG_CHOICE: {
      int idx = choice_index(o->choices, v);
      if (idx < 0) {
        fprintf(stderr, "%s: %s must be one of %s, got '%s'\n", usage, o->name, o->choices, v);
        return -1;
      }
      *(int *)o->dst = idx;
      return 0;
    }
    case ARG_FLAG: *(int *)o->dst = 1; return 0;
  }
  return -1;
}

void args_usage(const arg_spec *s, FILE *f) {
  fprintf(f, "usage: %s\n\n%s\n\noptions:\n", s->usage, s->summary);
  for (int i = 0; i < s->n_opts; i++) {
    const arg_opt *o = &s->opts[i];
    const char *meta = o->kind == ARG_INT ? " N" : o->kind == ARG_DOUBLE ? " X"
                     : o->kind == ARG_STRING ? " S" : o->kind == ARG_CHOICE ? " C" : "";
    char left[64];
    snprintf(left, sizeof left, "%s%s", o->name, meta);
    fprintf(f, "  %-22s %s", left, o->help);
    if (o->kind == ARG_CHOICE) fprintf(f, " (%s)", o->choices);
    fputc('\n', f);
  }
  fprintf(f, "  %-22s %s\n", "--help", "show this help");
}

int args_parse(const arg_spec *s, int argc, char **argv) {
  if (s->n_positional) *s->n_positional = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      args_usage(s, stdout);
      return 1;
    }
    if (strncmp(a, "--", 2) == 0) {
      char name[64];
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a) : strlen(a);
      if (len >= sizeof name) len = sizeof name - 1;
      memcpy(name, a, len);
      name[len] = 0;
      const arg_opt *o = find_opt(s, name);
      if (!o) {
        fprintf(stderr, "%s: unknown option '%s' (see --help)\n", s->usage, name);
        return -1;
      }
      const char *v = eq ? eq + 1 : NULL;
      if (o->kind == ARG_FLAG) {
        if (v) {
          fprintf(stderr, "%s: %s takes no value\n", s->usage, name);
          return -1;
        }
        *(int *)o->dst = 1;
        continue;
      }
      if (!v) {
        if (i + 1 >= argc) {
          fprintf(stderr, "%s: %s needs a value\n", s->usage, name);
          return -1;
        }
        v = argv[++i];
      }
      if (set_value(s->usage, o, v) != 0) return -1;
      continue;
    }
    if (!s->n_positional || *s->n_positional >= s->max_positional) {
      fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", s->usage, a);
      return -1;
    }
    s->positional[(*s->n_positional)++] = a;
  }
  return 0;
}

void tool_error(const char *cmd, const fb_dist *d, const fb_status *st) {
  if (d && d->size > 1)
    fprintf(stderr, "fbnet %s: rank %d of %d: error: %s\n", cmd, d->rank, d->size, st->msg);
  else
    fprintf(stderr, "fbnet %s: error: %s\n", cmd, st->msg);
  fb_dist_abort(d, 1);
}

void tool_dist_summary(const char *cmd, const fb_dist *d) {
  if (!d || d->size <= 1 || d->rank != 0 || d->reduce_calls == 0) return;
  fprintf(stderr, "fbnet %s: data-parallel over %d ranks: gradient allreduce of %.2f MB per step, "
          "%.2f ms per step on average (%ld steps)\n", cmd, d->size,
          d->reduce_bytes / d->reduce_calls / 1e6, 1e3 * d->reduce_sec / d->reduce_calls,
          d->reduce_calls);
}
