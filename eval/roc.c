/* roc.c — exact AUROC / average precision / F1-max (sklearn's definitions).
 *
 * With the tie groups visited from the highest score down and TP, FP the cumulative
 * counts after each group (P positives, N negatives in all):
 *   AUROC = sum_groups dFP (TP_before + TP_after) / (2 P N)   (trapezoid over ROC points)
 *   AP    = sum_groups dTP / P * TP / (TP + FP)               (sklearn: no interpolation)
 *   F1    = 2 TP / (TP + FP + P) at each group's score, predicting score >= it. */
#include "eval/rank.h"
#include <stdlib.h>

void vg_roc_acc_init(vg_roc_acc *a, int64_t P, int64_t N) {
  memset(a, 0, sizeof *a);
  a->P = P;
  a->N = N;
  a->f1 = -1;
  a->f1_thr = NAN;
}

void vg_roc_acc_visit(void *ctx, float score, int64_t dpos, int64_t dneg, double dw) {
  (void)dw;
  vg_roc_acc *a = ctx;
  int64_t tp0 = a->tp;
  a->tp += dpos;
  a->fp += dneg;
  a->auc2 += (uint64_t)dneg * (uint64_t)(tp0 + a->tp); /* <= 2PN < 2^63 for n < 2^32 */
  if (dpos) a->ap += (double)dpos * ((double)a->tp / (double)(a->tp + a->fp));
  if (a->P > 0) {
    /* exact ties give bit-identical quotients (IEEE division is correctly rounded), so
     * ">=" keeps the lowest threshold among equal F1s */
    double f1 = 2.0 * (double)a->tp / (double)(a->tp + a->fp + a->P);
    if (f1 >= a->f1) {
      a->f1 = f1;
      a->f1_thr = score;
    }
  }
}

void vg_roc_acc_result(const vg_roc_acc *a, vg_eval_binary *out) {
  out->n_pos = a->P;
  out->n_neg = a->N;
  out->auroc = (a->P > 0 && a->N > 0) ? (double)a->auc2 / (2.0 * (double)a->P * (double)a->N) : NAN;
  out->auprc = a->P > 0 ? a->ap / (double)a->P : NAN;
  out->f1_max = a->P > 0 ? a->f1 : NAN;
  out->f1_threshold = a->P > 0 ? a->f1_thr : NAN;
}

vg_status vg_eval_binary_metrics(const float *scores, const uint8_t *labels, int64_t n,
                                 vg_eval_binary *out) {
  if (!scores || !labels || !out || n <= 0)
    return vg_fail(VG_ERR_ARG, "eval: binary metrics need n > 0 scores and labels (n=%lld)",
                   (long long)n);
  vg_rank r;
  vg_status st = vg_rank_init(&r, 0);
  if (st != VG_OK) return st;
  for (int64_t i = 0; i < n; i++) vg_rank_count(&r, scores[i], labels[i] != 0);
  if ((st = vg_rank_alloc(&r)) == VG_OK) {
    for (int64_t i = 0; i < n; i++) vg_rank_put(&r, scores[i], labels[i] != 0, 0);
    vg_roc_acc a;
    vg_roc_acc_init(&a, r.npos, r.nneg);
    if ((st = vg_rank_walk(&r, NULL, vg_roc_acc_visit, &a)) == VG_OK) vg_roc_acc_result(&a, out);
  }
  vg_rank_free(&r);
  return st;
}

/* Runs the metrics and reports why the one asked for is undefined. */
static double pick(const float *scores, const uint8_t *labels, int64_t n, int which,
                   float *thr) {
  if (thr) *thr = NAN;
  vg_eval_binary b;
  if (vg_eval_binary_metrics(scores, labels, n, &b) != VG_OK) return NAN;
  double v = which == 0 ? b.auroc : which == 1 ? b.auprc : b.f1_max;
  if (thr) *thr = b.f1_threshold;
  if (isnan(v)) {
    if (b.n_pos == 0)
      vg_fail(VG_ERR_ARG, "eval: no positive label among %lld samples: %s undefined",
              (long long)n, which == 0 ? "AUROC" : which == 1 ? "AUPRC" : "F1");
    else
      vg_fail(VG_ERR_ARG, "eval: no negative label among %lld samples: AUROC undefined",
              (long long)n);
  }
  return v;
}

double vg_eval_auroc(const float *s, const uint8_t *l, int64_t n) { return pick(s, l, n, 0, NULL); }
double vg_eval_auprc(const float *s, const uint8_t *l, int64_t n) { return pick(s, l, n, 1, NULL); }
double vg_eval_f1_max(const float *s, const uint8_t *l, int64_t n, float *thr) {
  return pick(s, l, n, 2, thr);
}

/* ---- partial AUROC: the ROC curve up to max_fpr ---- */
typedef struct {
  vg_roc_acc roc;
  vg_trap trap;
} proc_acc;

static void proc_visit(void *ctx, float score, int64_t dpos, int64_t dneg, double dw) {
  proc_acc *a = ctx;
  vg_roc_acc_visit(&a->roc, score, dpos, dneg, dw);
  vg_trap_point(&a->trap, (double)a->roc.fp / (double)a->roc.N, (double)a->roc.tp / (double)a->roc.P);
}

double vg_eval_partial_auroc(const float *scores, const uint8_t *labels, int64_t n, double max_fpr) {
  if (!scores || !labels || n <= 0) {
    vg_fail(VG_ERR_ARG, "eval: partial AUROC needs n > 0 scores and labels (n=%lld)", (long long)n);
    return NAN;
  }
  if (!(max_fpr > 0 && max_fpr <= 1)) {
    vg_fail(VG_ERR_ARG, "eval: partial AUROC FPR limit %g not in (0, 1]", max_fpr);
    return NAN;
  }
  vg_rank r;
  if (vg_rank_init(&r, 0) != VG_OK) return NAN;
  for (int64_t i = 0; i < n; i++) vg_rank_count(&r, scores[i], labels[i] != 0);
  double v = NAN;
  if (vg_rank_alloc(&r) == VG_OK) {
    if (r.npos == 0 || r.nneg == 0) {
      vg_fail(VG_ERR_ARG, "eval: no %s label among %lld samples: partial AUROC undefined",
              r.npos == 0 ? "positive" : "negative", (long long)n);
    } else {
      for (int64_t i = 0; i < n; i++) vg_rank_put(&r, scores[i], labels[i] != 0, 0);
      proc_acc a;
      vg_roc_acc_init(&a.roc, r.npos, r.nneg);
      vg_trap_init(&a.trap, &max_fpr, 1);
      if (vg_rank_walk(&r, NULL, proc_visit, &a) == VG_OK) v = a.trap.area[0] / max_fpr;
    }
  }
  vg_rank_free(&r);
  return v;
}
