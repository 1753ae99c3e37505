/* sequence.c — SequenceINN: blocks run in order (reversed for rev), each with its own
 * condition (an index into the caller's cond[]) and the dims the previous block produced;
 * log-dets add up. State-dict names "module_list.<i>.<block names>". */
#include "flows/block.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  vg_flow_block b;        /* dims: the input dims */
  int n, cap;             /* blocks, allocated entries */
  int *conds;             /* cap: block i's condition index, -1 = none */
  int *shape_nd;          /* cap + 1: the dims after block i - 1 (0: the input's) */
  int64_t (*shapes)[4];
} sequence_state;

static void sequence_free(void *p) {
  sequence_state *f = p;
  free(f->conds); free(f->shape_nd); free(f->shapes);
}

static vg_tensor *sequence_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev,
                               bool want, vg_tensor **logdet) {
  return vg_flow_sequence_forward_range(m, 0, ((sequence_state *)m->ctx)->n, x, ncond, cond, rev, want, logdet);
}

static int sequence_output_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  const sequence_state *f = m->ctx;
  if (ndim != f->shape_nd[0]) { vg_fail(VG_ERR_ARG, "SequenceINN: dims mismatch"); return -1; }
  for (int i = 0; i < ndim; i++) if (dims[i] != f->shapes[0][i]) { vg_fail(VG_ERR_ARG, "SequenceINN: dims mismatch"); return -1; }
  for (int i = 0; i < f->shape_nd[f->n]; i++) out[i] = f->shapes[f->n][i];
  return f->shape_nd[f->n];
}

static const vg_flow_block_ops sequence_ops = {
    .forward = sequence_fwd, .output_dims = sequence_output_dims, .free_state = sequence_free, .composite = true};

/* seq's state when it is a SequenceINN, else NULL */
static sequence_state *seq_state(const vg_nn_module *seq) { return vg_flow_block_state(seq, &sequence_ops); }

vg_nn_module *vg_flow_sequence_new(int ndim, const int64_t *dims) {
  if (!vg_flow_check_dims(ndim, dims)) return NULL;
  vg_nn_module *m = vg_flow_block_new("SequenceINN", &sequence_ops, sizeof(sequence_state), ndim, dims, 0);
  vg_nn_add_child(m, "module_list", vg_nn_module_new("ModuleList", NULL, NULL, NULL));
  sequence_state *f = m->ctx;
  f->cap = 8;
  f->conds = calloc((size_t)f->cap, sizeof(int));
  f->shape_nd = calloc((size_t)f->cap + 1, sizeof(int));
  f->shapes = calloc((size_t)f->cap + 1, sizeof *f->shapes);
  f->shape_nd[0] = ndim;
  for (int i = 0; i < ndim; i++) f->shapes[0][i] = dims[i];
  return m;
}

int vg_flow_sequence_append(vg_nn_module *seq, vg_nn_module *block, int cond) {
  if (!block) return -1;
  sequence_state *f = seq_state(seq);
  if (!f || !vg_flow_is_flow(block)) {
    vg_nn_free(block);
    vg_fail(VG_ERR_ARG, "vg_flow_sequence_append: not a SequenceINN / flow block");
    return -1;
  }
  int64_t od[4];
  int ond = vg_flow_output_dims(block, f->shape_nd[f->n], f->shapes[f->n], od);
  if (ond < 0) { vg_nn_free(block); return -1; }
  if (f->n == f->cap) {
    f->cap *= 2;
    f->conds = realloc(f->conds, sizeof(int) * (size_t)f->cap);
    f->shape_nd = realloc(f->shape_nd, sizeof(int) * (size_t)(f->cap + 1));
    f->shapes = realloc(f->shapes, sizeof *f->shapes * (size_t)(f->cap + 1));
  }
  char name[32];
  snprintf(name, sizeof name, "%d", f->n);
  vg_nn_add_child(vg_nn_child_get(seq, "module_list"), name, block);
  f->conds[f->n] = cond;
  f->n++;
  f->shape_nd[f->n] = ond;
  for (int i = 0; i < ond; i++) f->shapes[f->n][i] = od[i];
  return f->n - 1;
}

int vg_flow_append_allinone(vg_nn_module *seq, int cond_index, int64_t cond_channels,
                            vg_flow_subnet subnet, vg_flow_allinone_opts o) {
  sequence_state *f = seq_state(seq);
  if (!f) { vg_fail(VG_ERR_ARG, "not a SequenceINN"); return -1; }
  vg_nn_module *b = vg_flow_allinone_new(f->shape_nd[f->n], f->shapes[f->n], cond_index >= 0 ? cond_channels : 0, subnet, o);
  if (!b) return -1;
  return vg_flow_sequence_append(seq, b, cond_index);
}

int vg_flow_sequence_len(const vg_nn_module *seq) {
  const sequence_state *f = seq_state(seq);
  return f ? f->n : 0;
}
vg_nn_module *vg_flow_sequence_get(const vg_nn_module *seq, int i) {
  if (i < 0 || i >= vg_flow_sequence_len(seq)) return NULL;
  const vg_nn_module *ml = vg_nn_child_get(seq, "module_list");
  return ml->children[i].m;
}
int vg_flow_sequence_dims(const vg_nn_module *seq, int i, int64_t *dims) {
  const sequence_state *f = seq_state(seq);
  if (!f) { vg_fail(VG_ERR_ARG, "not a SequenceINN"); return -1; }
  if (i < 0 || i > f->n) return -1;
  for (int k = 0; k < f->shape_nd[i]; k++) dims[k] = f->shapes[i][k];
  return f->shape_nd[i];
}

vg_tensor *vg_flow_sequence_forward_range(vg_nn_module *seq, int a, int b, const vg_tensor *x,
                                          int ncond, vg_tensor *const *cond, bool rev,
                                          bool want, vg_tensor **logdet) {
  int n = vg_flow_sequence_len(seq);
  if (a < 0 || b > n || a > b) { vg_fail(VG_ERR_ARG, "SequenceINN: bad range [%d,%d) of %d", a, b, n); return NULL; }
  const sequence_state *f = seq_state(seq);
  vg_tensor *h = (vg_tensor *)x, *ld = NULL;
  /* inference: the steps run in one scope whose state (h, the log-det so far) each step
   * replaces (vg_scope_reset_keep), so the sequence holds one activation at a time */
  bool nest = b > a;
  const vg_tensor *ins[1] = {x};
  for (int ci = 0; ci < ncond && nest; ci++) nest = !cond[ci] || !cond[ci]->requires_grad;
  nest = nest && !vg_nn_would_record(seq, 1, ins);
  if (nest) vg_scope_begin();
  for (int k = 0; k < b - a; k++) {
    int i = rev ? b - 1 - k : a + k;
    int ci = f->conds[i];
    if (ci >= ncond) {
      vg_fail(VG_ERR_ARG, "SequenceINN: block %d wants condition %d of %d", i, ci, ncond);
      h = NULL;
      break;
    }
    vg_tensor *j = NULL;
    h = vg_flow_forward(vg_flow_sequence_get(seq, i), h, ci >= 0 ? 1 : 0, ci >= 0 ? &cond[ci] : NULL, rev, want, &j);
    if (!h) break;
    if (want) ld = vg_flow_add_ld(ld, j);
    if (nest && k + 1 < b - a) {
      vg_tensor *keep[2] = {h, ld};
      vg_scope_reset_keep(2, keep);
      h = keep[0];
      ld = keep[1];
    }
  }
  if (nest) {
    vg_tensor *keep[2] = {h, ld};
    vg_scope_end_keep(2, keep);
    h = keep[0];
    ld = keep[1];
  }
  if (!h) return NULL;
  if (want && !ld) ld = vg_flow_zeros_n(x, x->shape[0]);
  if (logdet) *logdet = want ? ld : NULL;
  return h;
}
