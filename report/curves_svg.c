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
