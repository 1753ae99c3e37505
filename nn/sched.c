/* sched.c — learning-rate schedules as torch.optim.lr_scheduler (1.13) computes them
 * when step() is called without an epoch: the recursive ("chainable") get_lr that
 * reads each group's current lr, in double as Python does; and CFLOW-AD's schedule
 * from the official code. */
#include "nn/nn.h"
#include <math.h>

typedef enum { SCHED_STEP, SCHED_MULTISTEP, SCHED_COSINE, SCHED_LINEAR } sched_kind;

struct vg_sched {
  sched_kind kind;
  vg_optim *o;
  int last_epoch;
  double *base_lrs;       /* torch's initial_lr per group */
  int step_size;          /* StepLR */
  double gamma;           /* StepLR, MultiStepLR */
  int nmilestones;
  int *milestones;        /* MultiStepLR (duplicates count, as torch's Counter) */
  int t_max;              /* CosineAnnealingLR */
  double eta_min;
  double start_factor, end_factor;
  int total_iters;        /* LinearLR */
};

/* Python's floor modulo */
static int py_mod(int a, int b) {
  int r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

static double next_lr(const vg_sched *s, int g, double lr) {
  int e = s->last_epoch;
  switch (s->kind) {
    case SCHED_STEP:
      if (e == 0 || e % s->step_size != 0) return lr;
      return lr * s->gamma;
    case SCHED_MULTISTEP: {
      int k = 0;
      for (int i = 0; i < s->nmilestones; i++) k += s->milestones[i] == e;
      return k ? lr * pow(s->gamma, k) : lr;
    }
    case SCHED_COSINE: {
      double T = s->t_max;
      if (e == 0) return lr;
      if (py_mod(e - 1 - s->t_max, 2 * s->t_max) == 0)
        return lr + (s->base_lrs[g] - s->eta_min) * (1 - cos(M_PI / T)) / 2;
      return (1 + cos(M_PI * e / T)) / (1 + cos(M_PI * (e - 1) / T)) * (lr - s->eta_min) + s->eta_min;
    }
    case SCHED_LINEAR:
      if (e == 0) return lr * s->start_factor;
      if (e > s->total_iters) return lr;
      return lr * (1.0 + (s->end_factor - s->start_factor) /
                             (s->total_iters * s->start_factor + (e - 1) * (s->end_factor - s->start_factor)));
  }
  VG_ABORT("sched: bad kind");
}

void vg_sched_step(vg_sched *s) {
  s->last_epoch++;
  for (int g = 0; g < vg_optim_num_groups(s->o); g++)
    vg_optim_set_lr(s->o, g, next_lr(s, g, vg_optim_get_lr(s->o, g)));
}

static vg_sched *sched_new(vg_optim *o, sched_kind kind) {
  vg_sched *s = calloc(1, sizeof *s);
  int ng = vg_optim_num_groups(o);
  s->base_lrs = malloc((size_t)(ng ? ng : 1) * sizeof *s->base_lrs);
  if (!s || !s->base_lrs) VG_ABORT("out of memory");
  s->kind = kind;
  s->o = o;
  s->last_epoch = -1;
  for (int g = 0; g < ng; g++) s->base_lrs[g] = vg_optim_get_lr(o, g);
  return s;
}

/* torch's constructors end with one step() to epoch 0 */
static vg_sched *sched_start(vg_sched *s) {
  vg_sched_step(s);
  return s;
}

vg_sched *vg_sched_step_new(vg_optim *o, int step_size, double gamma) {
  if (step_size <= 0) {
    vg_fail(VG_ERR_ARG, "StepLR: step_size %d must be positive", step_size);
    return NULL;
  }
  vg_sched *s = sched_new(o, SCHED_STEP);
  s->step_size = step_size;
  s->gamma = gamma;
  return sched_start(s);
}

vg_sched *vg_sched_multistep_new(vg_optim *o, int n, const int *milestones, double gamma) {
  vg_sched *s = sched_new(o, SCHED_MULTISTEP);
  s->milestones = malloc((size_t)(n ? n : 1) * sizeof *s->milestones);
  if (!s->milestones) VG_ABORT("out of memory");
  for (int i = 0; i < n; i++) s->milestones[i] = milestones[i];
  s->nmilestones = n;
  s->gamma = gamma;
  return sched_start(s);
}

vg_sched *vg_sched_cosine_new(vg_optim *o, int t_max, double eta_min) {
  if (t_max <= 0) {
    vg_fail(VG_ERR_ARG, "CosineAnnealingLR: T_max %d must be positive", t_max);
    return NULL;
  }
  vg_sched *s = sched_new(o, SCHED_COSINE);
  s->t_max = t_max;
  s->eta_min = eta_min;
  return sched_start(s);
}

vg_sched *vg_sched_linear_new(vg_optim *o, double start_factor, double end_factor, int total_iters) {
  if (!(start_factor > 0 && start_factor <= 1) || !(end_factor >= 0 && end_factor <= 1) || total_iters <= 0) {
    vg_fail(VG_ERR_ARG, "LinearLR: start factor in (0, 1], end factor in [0, 1], total_iters > 0 (got %g, %g, %d)",
            start_factor, end_factor, total_iters);
    return NULL;
  }
  vg_sched *s = sched_new(o, SCHED_LINEAR);
  s->start_factor = start_factor;
  s->end_factor = end_factor;
  s->total_iters = total_iters;
  return sched_start(s);
}

vg_sched *vg_sched_efficientad_new(vg_optim *o, int64_t total_steps) {
  int64_t step = (int64_t)(0.95 * (double)total_steps);   /* Python int(0.95 * steps) */
  if (step <= 0 || step > 0x7fffffff) {
    vg_fail(VG_ERR_ARG, "EfficientAD schedule: int(0.95 * %lld) is not a usable step size", (long long)total_steps);
    return NULL;
  }
  return vg_sched_step_new(o, (int)step, 0.1);
}

double vg_sched_get_lr(const vg_sched *s, int group) { return vg_optim_get_lr(s->o, group); }
int vg_sched_last_epoch(const vg_sched *s) { return s->last_epoch; }

void vg_sched_free(vg_sched *s) {
  if (!s) return;
  free(s->base_lrs);
  free(s->milestones);
  free(s);
}

/* ---- CFLOW-AD ---- */
static double cflow_epoch_lr(const vg_cflow_lr *c, int epoch) {
  double lr = c->lr, rate = 0.1;
  if (c->cosine) {
    double eta_min = lr * pow(rate, 3);
    return eta_min + (lr - eta_min) * (1 + cos(M_PI * epoch / c->meta_epochs)) / 2;
  }
  /* lr_decay_epochs = [i * meta_epochs // 100 for i in (50, 75, 90)] */
  int steps = 0;
  static const int pct[3] = {50, 75, 90};
  for (int i = 0; i < 3; i++) steps += epoch >= pct[i] * c->meta_epochs / 100;
  return steps > 0 ? lr * pow(rate, steps) : lr;
}

double vg_cflow_lr_at(const vg_cflow_lr *c, int epoch, int64_t batch_id, int64_t total_batches) {
  if (c->warm_epochs > 0 && epoch < c->warm_epochs) {
    double from = c->lr / 10.0;
    double to = c->cosine ? cflow_epoch_lr(c, c->warm_epochs) : c->lr;
    double p = (double)(batch_id + (int64_t)epoch * total_batches) / (double)((int64_t)c->warm_epochs * total_batches);
    return from + p * (to - from);
  }
  return cflow_epoch_lr(c, epoch);
}

void vg_cflow_lr_apply(const vg_cflow_lr *c, vg_optim *o, int epoch, int64_t batch_id, int64_t total_batches) {
  double lr = vg_cflow_lr_at(c, epoch, batch_id, total_batches);
  for (int g = 0; g < vg_optim_num_groups(o); g++) vg_optim_set_lr(o, g, lr);
}
