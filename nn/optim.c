/* optim.c — SGD, Adam, AdamW as torch.optim 1.13's single-tensor implementations,
 * and clip_grad_norm_.
 *
 * Arithmetic follows torch's: hyper-parameter algebra (bias corrections, step size)
 * in double as Python does it, then per-element updates in f32 with the scalars
 * rounded to f32, in torch's order of operations:
 *   Adam:  g += wd p;  m = m b1 + (1-b1) g;  v = v b2 + (1-b2) g g;
 *          p += -(lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 *   AdamW: p *= 1 - lr wd, then Adam without the L2 term
 *   SGD:   g += wd p;  buf = g (first step) or buf mom + (1-damp) g;
 *          g = nesterov ? g + mom buf : buf;  p += -lr g
 * State of every group lives in one contiguous block per moment kind; the per-param
 * tensors are views into it. */
#include "nn/nn.h"
#include "tensor/optim_upd.h"
#include <math.h>
#include <string.h>

typedef struct {
  vg_tensor *p;        /* the parameter (not owned) */
  int group;
  vg_tensor *step;     /* 0-d f32 */
  vg_tensor *m1;       /* exp_avg or momentum_buffer (NULL when unused) */
  vg_tensor *m2;       /* exp_avg_sq */
  vg_tensor *vmax;     /* max_exp_avg_sq (amsgrad) */
} vg_pstate;

struct vg_optim {
  vg_optim_kind kind;
  vg_optim_hparams defaults;
  int ngroups, nparams;
  vg_optim_hparams *groups;
  vg_pstate *ps;
  int nblocks;
  vg_tensor **blocks;  /* owned storage blocks behind the state views */
};

vg_optim_hparams vg_optim_defaults(vg_optim_kind kind, double lr) {
  vg_optim_hparams h = {.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  if (kind == VG_OPTIM_ADAMW) h.weight_decay = 1e-2;
  return h;
}

vg_optim *vg_optim_new(vg_optim_kind kind, vg_optim_hparams defaults) {
  vg_optim *o = calloc(1, sizeof *o);
  if (!o) VG_ABORT("out of memory");
  o->kind = kind;
  o->defaults = defaults;
  return o;
}

static vg_status check_hparams(vg_optim_kind kind, const vg_optim_hparams *h) {
  if (!(h->lr >= 0)) return vg_fail(VG_ERR_ARG, "optimizer: invalid learning rate %g", h->lr);
  if (!(h->weight_decay >= 0)) return vg_fail(VG_ERR_ARG, "optimizer: invalid weight_decay %g", h->weight_decay);
  if (kind == VG_OPTIM_SGD) {
    if (!(h->momentum >= 0)) return vg_fail(VG_ERR_ARG, "SGD: invalid momentum %g", h->momentum);
    if (h->nesterov && (h->momentum <= 0 || h->dampening != 0))
      return vg_fail(VG_ERR_ARG, "SGD: nesterov momentum requires a momentum and zero dampening");
  } else {
    if (!(h->eps >= 0)) return vg_fail(VG_ERR_ARG, "Adam: invalid epsilon %g", h->eps);
    if (!(h->beta1 >= 0 && h->beta1 < 1)) return vg_fail(VG_ERR_ARG, "Adam: invalid beta1 %g", h->beta1);
    if (!(h->beta2 >= 0 && h->beta2 < 1)) return vg_fail(VG_ERR_ARG, "Adam: invalid beta2 %g", h->beta2);
  }
  return VG_OK;
}

/* A heap header viewing `numel(like)` floats of block at offset (owns nothing). */
static vg_tensor *block_view(vg_tensor *block, int64_t off, const vg_tensor *like) {
  vg_tensor *t = calloc(1, sizeof *t);
  if (!t) VG_ABORT("out of memory");
  t->dtype = VG_F32;
  t->device = block->device;
  t->ndim = like->ndim;
  int64_t s = 1;
  for (int i = like->ndim - 1; i >= 0; i--) {
    t->shape[i] = like->shape[i];
    t->stride[i] = s;
    s *= like->shape[i];
  }
  t->offset = off;
  t->storage = block->storage;
  t->flags = VG_TF_HEAP;
  return t;
}

static vg_tensor *new_block(vg_optim *o, int64_t n) {
  vg_tensor *b = vg_tensor_new(VG_F32, 1, &n);
  o->blocks = realloc(o->blocks, (size_t)(o->nblocks + 1) * sizeof *o->blocks);
  if (!o->blocks) VG_ABORT("out of memory");
  o->blocks[o->nblocks++] = b;
  return b;
}

int vg_optim_add_group(vg_optim *o, int n, vg_tensor *const *params, const vg_optim_hparams *hp) {
  vg_optim_hparams h = hp ? *hp : o->defaults;
  if (check_hparams(o->kind, &h)) return -1;
  for (int i = 0; i < n; i++) {
    const vg_tensor *p = params[i];
    if (!p || p->dtype != VG_F32 || !vg_is_contiguous(p)) {
      vg_fail(VG_ERR_ARG, "optimizer: parameter %d is not a contiguous f32 tensor", i);
      return -1;
    }
    if (p->device != params[0]->device || (o->nparams && p->device != o->ps[0].p->device)) {
      vg_fail(VG_ERR_ARG, "optimizer: parameter %d is on another device than the others", i);
      return -1;
    }
    for (int j = 0; j < o->nparams; j++)
      if (o->ps[j].p == p) {
        vg_fail(VG_ERR_ARG, "optimizer: some parameters appear in more than one parameter group");
        return -1;
      }
  }
  int g = o->ngroups++;
  o->groups = realloc(o->groups, (size_t)o->ngroups * sizeof *o->groups);
  o->ps = realloc(o->ps, (size_t)(o->nparams + n) * sizeof *o->ps);
  if (!o->groups || !o->ps) VG_ABORT("out of memory");
  o->groups[g] = h;
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += vg_numel(params[i]);
  bool adam = o->kind != VG_OPTIM_SGD;
  vg_tensor *b1 = (adam || h.momentum != 0) ? new_block(o, total) : NULL;
  vg_tensor *b2 = adam ? new_block(o, total) : NULL;
  vg_tensor *b3 = adam && h.amsgrad ? new_block(o, total) : NULL;
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    vg_pstate *s = &o->ps[o->nparams++];
    *s = (vg_pstate){.p = params[i], .group = g, .step = vg_tensor_new(VG_F32, 0, NULL)};
    if (b1) s->m1 = block_view(b1, off, params[i]);
    if (b2) s->m2 = block_view(b2, off, params[i]);
    if (b3) s->vmax = block_view(b3, off, params[i]);
    off += vg_numel(params[i]);
  }
  /* state next to the parameters (blocks are made on the host, zeroed) */
  if (n && params[0]->device != VG_CPU && vg_optim_to(o, params[0]->device) != VG_OK) return -1;
  return g;
}

vg_status vg_optim_to(vg_optim *o, vg_device dev) {
  for (int i = 0; i < o->nblocks; i++) {
    vg_status st = vg_tensor_to_(o->blocks[i], dev, VG_F32);
    if (st != VG_OK) return vg_fail_prefix("optimizer state");
  }
  /* the per-param views share their block's storage record, which moved with it */
  for (int i = 0; i < o->nparams; i++) {
    vg_pstate *s = &o->ps[i];
    if (s->m1) s->m1->device = dev;
    if (s->m2) s->m2->device = dev;
    if (s->vmax) s->vmax->device = dev;
  }
  return VG_OK;
}

int vg_optim_num_groups(const vg_optim *o) { return o->ngroups; }

double vg_optim_get_lr(const vg_optim *o, int group) {
  VG_ASSERT(group >= 0 && group < o->ngroups);
  return o->groups[group].lr;
}

void vg_optim_set_lr(vg_optim *o, int group, double lr) {
  VG_ASSERT(group >= 0 && group < o->ngroups);
  o->groups[group].lr = lr;
}

vg_optim_hparams *vg_optim_group(vg_optim *o, int group) {
  VG_ASSERT(group >= 0 && group < o->ngroups);
  return &o->groups[group];
}

void vg_optim_zero_grad_ex(vg_optim *o, bool set_to_none) {
  for (int i = 0; i < o->nparams; i++) {
    if (set_to_none) vg_clear_grad_(o->ps[i].p);
    else vg_zero_grad_(o->ps[i].p);
  }
}

void vg_optim_zero_grad(vg_optim *o) { vg_optim_zero_grad_ex(o, false); }

/* The element updates (tensor/optim_upd.h) run on the parameter's device through the
 * backend table (vg_optim_update_run: tensor/cpu/optim.c, tensor/cuda/optim.cu). */
static void run_update(vg_device dev, vg_upd_kind kind, const vg_upd *u) {
  vg_optim_update_run(dev, &(vg_optim_update){.kind = kind, .n = 1, .ups = u});
}

/* a pointer to element 0 of a state / param / grad tensor on any device */
static float *f32p(const vg_tensor *t) { return t->device == VG_CPU ? vg_f32(t) : (float *)vg_data(t); }

static void sgd_update(const vg_optim_hparams *h, vg_pstate *s) {
  float *stepf = vg_f32(s->step);
  vg_upd u = {.n = vg_numel(s->p), .p = f32p(s->p), .g = f32p(s->p->grad), .m = s->m1 ? f32p(s->m1) : NULL,
              .maximize = h->maximize, .l2 = h->weight_decay != 0, .first = stepf[0] == 0, .nesterov = h->nesterov,
              .wd = (float)h->weight_decay, .mom = (float)h->momentum, .omd = (float)(1 - h->dampening),
              .nlr = (float)-h->lr};
  stepf[0] += 1;
  run_update(s->p->device, VG_UPD_SGD, &u);
}

static void adam_update(vg_optim_kind kind, const vg_optim_hparams *h, vg_pstate *s) {
  float *stepf = vg_f32(s->step);
  stepf[0] += 1;                                  /* torch 1.13: an f32 tensor, read as a float */
  double step = stepf[0];
  double bc1 = 1 - pow(h->beta1, step), bc2 = 1 - pow(h->beta2, step);
  vg_upd u = {.n = vg_numel(s->p), .p = f32p(s->p), .g = f32p(s->p->grad), .m = f32p(s->m1),
              .v = f32p(s->m2), .vmax = s->vmax ? f32p(s->vmax) : NULL, .maximize = h->maximize,
              .l2 = kind == VG_OPTIM_ADAM && h->weight_decay != 0,
              .decay = kind == VG_OPTIM_ADAMW ? (float)(1 - h->lr * h->weight_decay) : 1.0f,
              .wd = (float)h->weight_decay, .b1 = (float)h->beta1, .omb1 = (float)(1 - h->beta1),
              .b2 = (float)h->beta2, .omb2 = (float)(1 - h->beta2), .nss = (float)-(h->lr / bc1),
              .bc2s = (float)sqrt(bc2), .eps = (float)h->eps};
  run_update(s->p->device, VG_UPD_ADAM, &u);
}

static void step_param(vg_optim *o, int i) {
  vg_pstate *s = &o->ps[i];
  if (s->p->grad->device != s->p->device || !vg_is_contiguous(s->p->grad))
    VG_ABORT("optimizer: parameter %d has a non-contiguous grad or one on another device", i);
  const vg_optim_hparams *h = &o->groups[s->group];
  switch (o->kind) {
    case VG_OPTIM_SGD: sgd_update(h, s); break;
    case VG_OPTIM_ADAM:
    case VG_OPTIM_ADAMW: adam_update(o->kind, h, s); break;
  }
}

void vg_optim_step(vg_optim *o) {
  for (int i = 0; i < o->nparams; i++)
    if (o->ps[i].p->grad) step_param(o, i);   /* torch skips params whose grad is None */
}

typedef struct {
  vg_optim *o;
  unsigned char *done;
} fused_step;

static void step_ready(vg_tensor *leaf, void *ctx) {
  fused_step *f = ctx;
  if (!leaf->grad) return;
  for (int i = 0; i < f->o->nparams; i++)
    if (f->o->ps[i].p == leaf && !f->done[i]) {
      step_param(f->o, i);
      f->done[i] = 1;
    }
}

vg_status vg_optim_backward_step(vg_optim *o, vg_tensor *loss) {
  fused_step f = {.o = o, .done = calloc((size_t)o->nparams + 1, 1)};
  if (!f.done) VG_ABORT("out of memory");
  vg_status st = vg_backward_ready(loss, step_ready, &f);
  if (st == VG_OK)   /* the parameters off the loss's graph that have a grad (zeroed ones) */
    for (int i = 0; i < o->nparams; i++)
      if (!f.done[i] && o->ps[i].p->grad) step_param(o, i);
  free(f.done);
  return st;
}

static void push_state(vg_nn_list *l, int i, const char *what, vg_tensor *t) {
  if (!t) return;
  l->names = realloc(l->names, (size_t)(l->n + 1) * sizeof *l->names);
  l->tensors = realloc(l->tensors, (size_t)(l->n + 1) * sizeof *l->tensors);
  l->is_buffer = realloc(l->is_buffer, (size_t)(l->n + 1) * sizeof *l->is_buffer);
  if (!l->names || !l->tensors || !l->is_buffer) VG_ABORT("out of memory");
  char buf[64];
  snprintf(buf, sizeof buf, "state.%d.%s", i, what);
  l->names[l->n] = strdup(buf);
  if (!l->names[l->n]) VG_ABORT("out of memory");
  l->tensors[l->n] = t;
  l->is_buffer[l->n] = true;
  l->n++;
}

vg_nn_list vg_optim_state(vg_optim *o) {
  vg_nn_list l = {0};
  for (int i = 0; i < o->nparams; i++) {
    vg_pstate *s = &o->ps[i];
    push_state(&l, i, "step", s->step);
    if (o->kind == VG_OPTIM_SGD) {
      push_state(&l, i, "momentum_buffer", s->m1);
    } else {
      push_state(&l, i, "exp_avg", s->m1);
      push_state(&l, i, "exp_avg_sq", s->m2);
      push_state(&l, i, "max_exp_avg_sq", s->vmax);
    }
  }
  return l;
}

void vg_optim_free(vg_optim *o) {
  if (!o) return;
  for (int i = 0; i < o->nparams; i++) {
    vg_tensor_free(o->ps[i].step);
    vg_tensor_free(o->ps[i].m1);
    vg_tensor_free(o->ps[i].m2);
    vg_tensor_free(o->ps[i].vmax);
  }
  for (int i = 0; i < o->nblocks; i++) vg_tensor_free(o->blocks[i]);
  free(o->blocks);
  free(o->ps);
  free(o->groups);
  free(o);
}

double vg_clip_grad_norm(int n, vg_tensor *const *params, double max_norm, double norm_type) {
  bool inf = isinf(norm_type);
  VG_ASSERT((inf || norm_type == 2.0) && "clip_grad_norm: norm_type 2 or INFINITY");
  double acc = 0;
  int ng = 0;
  for (int k = 0; k < n; k++) {
    const vg_tensor *g = params[k] ? params[k]->grad : NULL;
    if (!g) continue;
    VG_ASSERT(g->dtype == VG_F32 && vg_is_contiguous(g) && g->device == VG_CPU);
    const float *d = vg_f32(g);
    int64_t m = vg_numel(g);
    double s = 0;
    for (int64_t i = 0; i < m; i++) s = inf ? fmax(s, fabs(d[i])) : s + (double)d[i] * d[i];
    float norm = inf ? (float)s : (float)sqrt(s);   /* torch.norm(g): an f32 tensor */
    acc = inf ? fmax(acc, norm) : acc + (double)norm * norm;
    ng++;
  }
  if (!ng) return 0.0;
  float total = inf ? (float)acc : (float)sqrt(acc);
  float coef = (float)max_norm / (total + 1e-6f);
  if (coef > 1.0f) coef = 1.0f;
  for (int k = 0; k < n; k++) {
    vg_tensor *g = params[k] ? params[k]->grad : NULL;
    if (!g) continue;
    float *d = vg_f32(g);
    int64_t m = vg_numel(g);
    for (int64_t i = 0; i < m; i++) d[i] *= coef;
  }
  return total;
}
