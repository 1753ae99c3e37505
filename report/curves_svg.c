/* curves_svg.c — hand-written SVG line charts for ROC / PR / PRO curves (see report.h). */
#include "report/report.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t n, cap; bool oom; } sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = true; return; }
    if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
    size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
    char *t = realloc(b->s, nc);
    if (!t) { b->oom = true; return; }
    b->s = t; b->cap = nc;
  }
}

static void sb_esc(sbuf *b, const char *t) {
  for (; t && *t; t++) {
    switch (*t) {
      case '<': sb_add(b, "&lt;"); break;
      case '>': sb_add(b, "&gt;"); break;
      case '&': sb_add(b, "&amp;"); break;
      case '"': sb_add(b, "&quot;"); break;
      default: sb_add(b, "%c", *t);
    }
  }
}

enum { W = 360, H = 320, ML = 50, MR = 14, MT = 30, MB = 44 };
static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};

char *vg_report_svg_curve(const char *title, const char *xlabel, const char *ylabel, double xmax,
                          const vg_report_series *s, int ns) {
  if (!(xmax > 0)) xmax = 1;
  const double pw = W - ML - MR, ph = H - MT - MB;
  sbuf b = {0};
  sb_add(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H, W, H);
  sb_add(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
  sb_add(&b, "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">", W / 2);
  sb_esc(&b, title);
  sb_add(&b, "</text>\n");
  for (int t = 0; t <= 5; t++) {   /* grid + ticks */
    double gx = ML + pw * t / 5.0, gy = MT + ph * (1 - t / 5.0);
    sb_add(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", gx, MT, gx, MT + ph);
    sb_add(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, gy, ML + pw, gy);
    sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", gx, MT + ph + 14, xmax * t / 5.0);
    sb_add(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ML - 4, gy + 4, t / 5.0);
  }
  sb_add(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", ML, MT, pw, ph);
  sb_add(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ML + pw / 2, H - 8);
  sb_esc(&b, xlabel);
  sb_add(&b, "</text>\n<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
         MT + ph / 2, MT + ph / 2);
  sb_esc(&b, ylabel);
  sb_add(&b, "</text>\n");
  for (int k = 0; k < ns; k++) {
    const char *col = colors[k % 5];
    sb_add(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", col);
    double lx = -1e9, ly = -1e9;
    for (int64_t i = 0; i < s[k].n; i++) {
      double x = s[k].x[i], y = s[k].y[i];
      if (!isfinite(x) || !isfinite(y)) continue;
      if (x > xmax) x = xmax;
      double px = ML + pw * x / xmax, py = MT + ph * (1 - (y < 0 ? 0 : y > 1 ? 1 : y));
      bool last = i == s[k].n - 1;
      if (!last && fabs(px - lx) < 0.5 && fabs(py - ly) < 0.5) continue;   /* decimate */
      sb_add(&b, "%.1f,%.1f ", px, py);
      lx = px; ly = py;
      if (s[k].x[i] >= xmax) break;
    }
    sb_add(&b, "\"/>\n");
    double ly0 = MT + ph - 14.0 * (ns - k) + 4;
    sb_add(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
           ML + pw * 0.38, ly0 - 4, ML + pw * 0.38 + 16, ly0 - 4, col);
    sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\">", ML + pw * 0.38 + 20, ly0);
    sb_esc(&b, s[k].label);
    sb_add(&b, "</text>\n");
  }
  sb_add(&b, "</svg>\n");
  if (b.oom) { free(b.s); vg_fail(VG_ERR_NOMEM, "svg: out of memory"); return NULL; }
  return b.s;
}

/* ---- bar and scatter charts (report.h: vg_report_svg_bars / vg_report_svg_scatter) */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
enum { NPAL = 10 };

/* the axis range [lo, hi] over the finite values (log: positive values only) with ticks */
typedef struct { double lo, hi; bool log; } axis;
static double ax_pos(const axis *a, double v, double x0, double len) {
  double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  return x0 + t * len;
}
static bool ax_fit(axis *a, const double *v, int64_t n, bool log_scale, bool from_zero) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(v[i]) || (log_scale && v[i] <= 0)) continue;
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  if (!(lo <= hi)) return false;
  a->log = log_scale;
  if (log_scale) {
    a->lo = pow(10, floor(log10(lo)));
    a->hi = pow(10, ceil(log10(hi)));
    if (a->hi <= a->lo) a->hi = a->lo * 10;
  } else {
    double span = hi - (from_zero ? 0 : lo);
    double step = pow(10, floor(log10(span > 0 ? span : 1)));
    a->lo = from_zero && lo >= 0 ? 0 : floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    if (a->hi <= a->lo) a->hi = a->lo + step;
  }
  return true;
}
/* tick values of a (decades on a log axis, 5 steps on a linear one) */
static int ax_ticks(const axis *a, double *t, int cap) {
  int n = 0;
  if (a->log)
    for (double v = a->lo; v <= a->hi * 1.0001 && n < cap; v *= 10) t[n++] = v;
  else
    for (int k = 0; k <= 5 && n < cap; k++) t[n++] = a->lo + (a->hi - a->lo) * k / 5.0;
  return n;
}

static void svg_head(sbuf *b, int w, int h, const char *title) {
  sb_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n", w, h, w, h);
  sb_add(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", w, h);
  sb_add(b, "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">", w / 2);
  sb_esc(b, title);
  sb_add(b, "</text>\n");
}

static char *svg_done(sbuf *b) {
  sb_add(b, "</svg>\n");
  if (b->oom) { free(b->s); vg_fail(VG_ERR_NOMEM, "svg: out of memory"); return NULL; }
  return b->s;
}

char *vg_report_svg_bars(const vg_report_bars *c) {
  if (!c || c->ngroups <= 0 || c->nseries <= 0 || !c->v) { vg_fail(VG_ERR_ARG, "svg bars: nothing to draw"); return NULL; }
  axis ax;
  if (!ax_fit(&ax, c->v, (int64_t)c->ngroups * c->nseries, c->log_scale, true)) {
    vg_fail(VG_ERR_ARG, "svg bars: no finite%s value", c->log_scale ? " positive" : "");
    return NULL;
  }
  const int bar = 9, gap = 8, ml = 170, mr = 70, mt = 34;
  const int lh = 14 * c->nseries + 10;   /* legend */
  const int gh = bar * c->nseries + gap;
  const int w = 720, h = mt + gh * c->ngroups + 30 + lh;
  const double pw = w - ml - mr, plot_h = (double)gh * c->ngroups;
  sbuf b = {0};
  svg_head(&b, w, h, c->title);
  double t[16];
  int nt = ax_ticks(&ax, t, 16);
  for (int k = 0; k < nt; k++) {
    double x = ax_pos(&ax, t[k], ml, pw);
    sb_add(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, mt, x, mt + plot_h);
    sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x, mt + plot_h + 13, t[k]);
  }
  sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", ml + pw / 2, mt + plot_h + 26);
  sb_esc(&b, c->xlabel);
  sb_add(&b, "</text>\n");
  for (int g = 0; g < c->ngroups; g++) {
    double y0 = mt + (double)gh * g;
    sb_add(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", ml - 6, y0 + gh / 2.0);
    sb_esc(&b, c->groups[g]);
    sb_add(&b, "</text>\n");
    for (int s = 0; s < c->nseries; s++) {
      double v = c->v[(size_t)g * c->nseries + s];
      if (!isfinite(v) || (c->log_scale && v <= 0)) continue;
      double x1 = ax_pos(&ax, v, ml, pw), y = y0 + bar * s;
      sb_add(&b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"%s><title>", ml, y, x1 - ml > 0.5 ? x1 - ml : 0.5,
             bar - 1, palette[s % NPAL], c->hatched && c->hatched[s] ? " fill-opacity=\"0.45\"" : "");
      sb_esc(&b, c->series[s]);
      sb_add(&b, ": %g</title></rect>\n", v);
      sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\">%.3g</text>\n", x1 + 2, y + bar - 1.5, v);
    }
  }
  sb_add(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", ml, mt, pw, plot_h);
  for (int s = 0; s < c->nseries; s++) {   /* legend under the plot */
    double y = mt + plot_h + 40 + 14.0 * s;
    sb_add(&b, "<rect x=\"%d\" y=\"%.1f\" width=\"12\" height=\"9\" fill=\"%s\"%s/>\n<text x=\"%d\" y=\"%.1f\">", ml, y - 8,
           palette[s % NPAL], c->hatched && c->hatched[s] ? " fill-opacity=\"0.45\"" : "", ml + 16, y);
    sb_esc(&b, c->series[s]);
    sb_add(&b, "</text>\n");
  }
  return svg_done(&b);
}

char *vg_report_svg_scatter(const vg_report_scatter *c) {
  if (!c || c->n <= 0) { vg_fail(VG_ERR_ARG, "svg scatter: nothing to draw"); return NULL; }
  axis ax, ay;
  if (!ax_fit(&ax, c->x, c->n, c->log_x, false) || !ax_fit(&ay, c->y, c->n, false, false)) {
    vg_fail(VG_ERR_ARG, "svg scatter: no finite point");
    return NULL;
  }
  const int w = 560, h = 420, ml = 56, mr = 20, mt = 34, mb = 50;
  const double pw = w - ml - mr, ph = h - mt - mb;
  sbuf b = {0};
  svg_head(&b, w, h, c->title);
  double t[16];
  int nt = ax_ticks(&ax, t, 16);
  for (int k = 0; k < nt; k++) {
    double x = ax_pos(&ax, t[k], ml, pw);
    sb_add(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, mt, x, mt + ph);
    sb_add(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x, mt + ph + 13, t[k]);
  }
  nt = ax_ticks(&ay, t, 16);
  for (int k = 0; k < nt; k++) {
    double y = mt + ph - (ax_pos(&ay, t[k], 0, ph));
    sb_add(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ml, y, ml + pw, y);
    sb_add(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ml - 4, y + 4, t[k]);
  }
  sb_add(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", ml, mt, pw, ph);
  sb_add(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ml + pw / 2, h - 14);
  sb_esc(&b, c->xlabel);
  sb_add(&b, "</text>\n<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">", mt + ph / 2,
         mt + ph / 2);
  sb_esc(&b, c->ylabel);
  sb_add(&b, "</text>\n");
  for (int64_t i = 0; i < c->n; i++) {
    if (!isfinite(c->x[i]) || !isfinite(c->y[i]) || (c->log_x && c->x[i] <= 0)) continue;
    int s = c->series ? c->series[i] : 0;
    double x = ax_pos(&ax, c->x[i], ml, pw), y = mt + ph - ax_pos(&ay, c->y[i], 0, ph);
    sb_add(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\">", x, y,
           palette[s % NPAL], x + 6, y - 4);
    sb_esc(&b, c->labels ? c->labels[i] : "");
    sb_add(&b, "</text>\n");
  }
  for (int s = 0; s < c->nseries; s++) {
    double y = mt + 14 + 14.0 * s;
    sb_add(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">", ml + pw - 150, y - 4,
           palette[s % NPAL], ml + pw - 142, y);
    sb_esc(&b, c->series_names[s]);
    sb_add(&b, "</text>\n");
  }
  return svg_done(&b);
}
