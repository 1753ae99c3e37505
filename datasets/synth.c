/* synth.c — the synthetic benchmark generator (see synth.h).
 *
 * Geometry is integer fixed point: positions in Q4 pixels (pixel centre = 16*x + 8),
 * rotations as Q14 (cos, sin) pairs from the rational parametrisation
 * cos = (1 - t^2) / (1 + t^2), sin = 2t / (1 + t^2) (no libm anywhere near pixels).
 * Sizes are capped at 1024 so every squared Q4 length fits comfortably in int64. */
#include "datasets/synth.h"
#include "datasets/image/image.h"
#include "base/file.h"
#include "base/json.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- categories ---- */
static const char *const k_def_woven[] = {"hole", "cut", "stain"};
static const char *const k_def_grained[] = {"scratch", "crack", "spot"};
static const char *const k_def_grid[] = {"scratch", "hole", "stain"};
static const char *const k_def_noise[] = {"crack", "spot", "cut"};
static const char *const k_def_shapes[] = {"scratch", "hole", "stain"};
static const char *const k_def_screws[] = {"scratch", "spot", "cut"};
static const char *const k_def_assembly[] = {"missing_part", "extra_part", "wrong_arrangement", "wrong_colour",
                                             "scratch", "stain"};
static const bool k_log_assembly[] = {true, true, true, true, false, false};
static const int k_pv_assembly[] = {250, 240, 230, 220, 210, 200};

enum { CAT_WOVEN, CAT_GRAINED, CAT_GRID, CAT_NOISE, CAT_SHAPES, CAT_SCREWS, CAT_ASSEMBLY, CAT_COUNT };
static const vg_synth_category k_cats[CAT_COUNT] = {
    {"woven", false, 3, k_def_woven, NULL, NULL},
    {"grained", false, 3, k_def_grained, NULL, NULL},
    {"grid", false, 3, k_def_grid, NULL, NULL},
    {"noise", false, 3, k_def_noise, NULL, NULL},
    {"shapes", false, 3, k_def_shapes, NULL, NULL},
    {"screws", false, 3, k_def_screws, NULL, NULL},
    {"assembly", true, 6, k_def_assembly, k_log_assembly, k_pv_assembly},
};

int vg_synth_category_count(void) { return CAT_COUNT; }
const vg_synth_category *vg_synth_category_at(int i) { return i >= 0 && i < CAT_COUNT ? &k_cats[i] : NULL; }
const vg_synth_category *vg_synth_category_find(const char *name) {
  for (int i = 0; name && i < CAT_COUNT; i++)
    if (!strcmp(k_cats[i].name, name)) return &k_cats[i];
  return NULL;
}

void vg_synth_test_sample(const vg_synth_category *c, int n_test, int i, int *defect, int *number) {
  int ngood = (n_test + 1) / 2;
  if (i < ngood) { *defect = -1; *number = i; return; }
  int j = i - ngood, d = j % c->n_defects;
  *defect = d;
  if (!c->loco) { *number = j / c->n_defects; return; }
  /* LOCO: defects of the same kind (logical / structural) share one folder */
  int n = 0;
  for (int k = 0; k < j; k++)
    if (c->logical[k % c->n_defects] == c->logical[d]) n++;
  *number = n;
}

/* ---- integer helpers ---- */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
typedef struct { uint64_t s; } rng;
static uint64_t rnext(rng *r) { return mix64(r->s += 0x9E3779B97F4A7C15ull); }
static int rint_(rng *r, int lo, int hi) { return lo + (int)(rnext(r) % (uint64_t)(hi - lo + 1)); } /* [lo, hi] */
static uint32_t hash3(uint32_t seed, int x, int y) {
  return (uint32_t)(mix64(((uint64_t)seed << 32) ^ ((uint64_t)(uint32_t)x << 16) ^ (uint64_t)(uint32_t)y ^
                          ((uint64_t)(uint32_t)y << 40)) >> 32);
}
static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }
static int imod(int a, int m) { int r = a % m; return r < 0 ? r + m : r; }

/* Value noise 0..255, cell in pixels (>= 1), smoothstep interpolation in Q8. */
static int vnoise(uint32_t seed, int x, int y, int cell) {
  x += 1 << 20; y += 1 << 20;   /* keep non-negative */
  int gx = x / cell, gy = y / cell;
  int fx = (x % cell) * 256 / cell, fy = (y % cell) * 256 / cell;
  fx = fx * fx * (768 - 2 * fx) >> 16;
  fy = fy * fy * (768 - 2 * fy) >> 16;
  int a = (int)(hash3(seed, gx, gy) & 255), b = (int)(hash3(seed, gx + 1, gy) & 255);
  int c = (int)(hash3(seed, gx, gy + 1) & 255), d = (int)(hash3(seed, gx + 1, gy + 1) & 255);
  int top = a * 256 + (b - a) * fx, bot = c * 256 + (d - c) * fx;
  return (top * 256 + (bot - top) * fy) >> 16;
}

/* Rotation (Q14 cos, sin) from k in [-64, 64] (about -90..90 degrees) and a quadrant. */
typedef struct { int c, s; } rot;
static rot make_rot(int k, int quadrant) {
  int64_t t = (int64_t)k * 16384 / 64, t2 = t * t >> 14, den = 16384 + t2;
  rot r = {(int)((16384 - t2) * 16384 / den), (int)(2 * t * 16384 / den)};
  for (int q = 0; q < (quadrant & 3); q++) { rot n = {-r.s, r.c}; r = n; }
  return r;
}
/* Local coordinates (Q4) of pixel centre (x, y) relative to centre (cx, cy) (Q4), rotated. */
static void to_local(rot r, int cx, int cy, int x, int y, int *u, int *v) {
  int64_t dx = 16 * x + 8 - cx, dy = 16 * y + 8 - cy;
  *u = (int)((dx * r.c + dy * r.s) >> 14);
  *v = (int)((-dx * r.s + dy * r.c) >> 14);
}

/* Lighting: brightness factor Q8 at (x, y). */
typedef struct { int base, gx, gy, S; } light;
static int light_at(const light *L, int x, int y) {
  return 256 + L->base + L->gx * (2 * x - L->S) / L->S + L->gy * (2 * y - L->S) / L->S;
}
static void put_px(uint8_t *p, int r, int g, int b, int lf, int n) {
  p[0] = (uint8_t)clamp255((r * lf >> 8) + n);
  p[1] = (uint8_t)clamp255((g * lf >> 8) + n);
  p[2] = (uint8_t)clamp255((b * lf >> 8) + n);
}
static light rand_light(rng *r, int S) {
  light L = {rint_(r, -20, 20), rint_(r, -36, 36), rint_(r, -36, 36), S};
  return L;
}
static int grain(uint32_t seed, int x, int y, int amp) { return (int)(hash3(seed, x, y) % (uint32_t)(2 * amp + 1)) - amp; }

/* ---- textures ---- */
static void tex_woven(rng *r, int S, uint8_t *rgb) {
  light L = rand_light(r, S);
  int P = S / 12 + rint_(r, -S / 120, S / 120);
  if (P < 4) P = 4;
  int px = rint_(r, 0, 2 * P - 1), py = rint_(r, 0, 2 * P - 1);
  int cr = 196 + rint_(r, -10, 10), cg = 176 + rint_(r, -10, 10), cb = 136 + rint_(r, -10, 10);
  uint32_t ns = (uint32_t)rnext(r);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int xx = x + px, yy = y + py, cx = xx / P, cy = yy / P, fx = xx % P, fy = yy % P;
      bool horiz = ((cx + cy) & 1) != 0;
      int across = horiz ? fy : fx, along = horiz ? xx : yy, lane = horiz ? cy : cx;
      int prof = 256 - abs(2 * across + 1 - P) * 150 / P;            /* thread profile, Q8 */
      int fib = (int)(hash3(ns, lane, along / 2) & 31) - 16;          /* fibres along the thread */
      int lf = light_at(&L, x, y) * (prof + fib) >> 8;
      put_px(rgb + 3 * ((size_t)y * S + x), cr, cg, cb, lf, grain(ns + 1, x, y, 3));
    }
}

static void tex_grained(rng *r, int S, uint8_t *rgb) {
  light L = rand_light(r, S);
  uint32_t ns = (uint32_t)rnext(r);
  int period = 16 * (S / 20 + 2) + rint_(r, -8, 8) * S / 64;
  int phase = rint_(r, 0, 1 << 16), tilt = rint_(r, -3, 3);
  int warp = 12 * S / 16;
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int t = 16 * y + tilt * x + (vnoise(ns, x, y, S / 4 + 1) - 128) * warp / 64 + phase;
      int m = imod(t, period), tri = abs(2 * m - period) * 256 / period;   /* 0..256 */
      int streak = (int)(hash3(ns + 7, x / 6, y) & 15);
      int k = tri * 3 / 4 + streak * 4;
      int cr = 140 + (60 * k >> 8), cg = 92 + (48 * k >> 8), cb = 52 + (36 * k >> 8);
      put_px(rgb + 3 * ((size_t)y * S + x), cr, cg, cb, light_at(&L, x, y), grain(ns + 1, x, y, 2));
    }
}

static void tex_grid(rng *r, int S, uint8_t *rgb) {
  light L = rand_light(r, S);
  uint32_t ns = (uint32_t)rnext(r);
  int P = 16 * (S / 10) + rint_(r, -S / 8, S / 8);
  if (P < 64) P = 64;
  int lw = 16 * (S / 128 + 1) + 8;
  rot ro = make_rot(rint_(r, -4, 4), 0);
  int cx = 16 * rint_(r, 0, S), cy = 16 * rint_(r, 0, S);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int u, v;
      to_local(ro, cx, cy, x, y, &u, &v);
      bool line = imod(u, P) < lw || imod(v, P) < lw;
      int n = vnoise(ns, x, y, S / 16 + 1) / 16;
      uint8_t *p = rgb + 3 * ((size_t)y * S + x);
      if (line) put_px(p, 58 + n, 62 + n, 72 + n, light_at(&L, x, y), grain(ns + 1, x, y, 2));
      else put_px(p, 170 + n, 172 + n, 176 + n, light_at(&L, x, y), grain(ns + 1, x, y, 4));
    }
}

static void tex_noise(rng *r, int S, uint8_t *rgb) {
  light L = rand_light(r, S);
  uint32_t ns = (uint32_t)rnext(r);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int n = (vnoise(ns, x, y, S / 8 + 1) * 4 + vnoise(ns + 1, x, y, S / 16 + 1) * 2 + vnoise(ns + 2, x, y, S / 32 + 1)) / 7;
      int cr = 80 + (100 * n >> 8), cg = 100 + (90 * n >> 8), cb = 130 + (80 * n >> 8);
      put_px(rgb + 3 * ((size_t)y * S + x), cr, cg, cb, light_at(&L, x, y), grain(ns + 3, x, y, 6));
    }
}

/* ---- parts (objects drawn on a background) ---- */
typedef enum { P_DISC, P_RECT, P_HEXNUT, P_SCREW } part_kind;
typedef struct {
  part_kind kind;
  int cx, cy;        /* Q4 */
  rot ro;
  int a, b;          /* Q4: disc radius a; rect half sizes a, b; hexnut apothem a, hole b;
                        screw half length a, shaft half width b (head radius 2b) */
  int col[3];
} part;

/* Inside test; *shade = extra Q8 brightness for the part's detail. */
static bool part_inside(const part *p, int x, int y, int *shade) {
  int u, v;
  to_local(p->ro, p->cx, p->cy, x, y, &u, &v);
  int64_t uu = u, vv = v;
  *shade = 256;
  switch (p->kind) {
    case P_DISC: {
      int64_t d2 = uu * uu + vv * vv, r2 = (int64_t)p->a * p->a;
      if (d2 > r2) return false;
      *shade = 256 - (int)(d2 * 48 / r2);
      return true;
    }
    case P_RECT:
      if (abs(u) > p->a || abs(v) > p->b) return false;
      *shade = 256 - abs(u) * 24 / p->a;
      return true;
    case P_HEXNUT: {
      int64_t h1 = (uu * 8192 + vv * 14189) >> 14, h2 = (uu * 8192 - vv * 14189) >> 14;
      int64_t m = llabs(uu);
      if (llabs(h1) > m) m = llabs(h1);
      if (llabs(h2) > m) m = llabs(h2);
      if (m > p->a) return false;
      if (uu * uu + vv * vv < (int64_t)p->b * p->b) return false;   /* the hole shows the background */
      *shade = m > p->a * 3 / 4 ? 220 : 256;
      return true;
    }
    case P_SCREW: {
      int hr = 2 * p->b, hu = -p->a;                   /* head centre at u = -a */
      int64_t du = uu - hu;
      if (du * du + vv * vv <= (int64_t)hr * hr) {
        *shade = abs(v) < p->b / 3 && abs((int)du) < hr * 3 / 4 ? 120 : 256 - (int)((du * du + vv * vv) * 40 / ((int64_t)hr * hr));
        return true;
      }
      if (u < hu || u > p->a) return false;
      int w = p->b;
      if (u > p->a - 3 * p->b) w = p->b * (p->a - u) / (3 * p->b);   /* pointed tip */
      if (abs(v) > w) return false;
      int per = p->b > 16 ? p->b : 16;
      *shade = imod(u + v / 3, per) < per / 2 ? 190 : 250;              /* thread */
      return true;
    }
  }
  return false;
}

typedef struct {
  int S;
  light L;
  uint32_t ns;
  int bg[3];
  int tray;          /* assembly: tray/divider drawing on */
  int n;
  part p[8];
} scene;

static void scene_pixel(const scene *sc, int x, int y, uint8_t *out) {
  int lf = light_at(&sc->L, x, y);
  for (int i = sc->n - 1; i >= 0; i--) {
    int sh;
    if (part_inside(&sc->p[i], x, y, &sh)) {
      const int *c = sc->p[i].col;
      put_px(out, c[0], c[1], c[2], lf * sh >> 8, grain(sc->ns + 5, x, y, 2));
      return;
    }
  }
  int n = vnoise(sc->ns, x, y, sc->S / 10 + 1) / 12;
  if (sc->tray) {
    int S = sc->S, m = S / 16;
    bool wall = x < m || y < m || x >= S - m || y >= S - m || abs(2 * x + 1 - S) < S / 40 + 2;
    if (wall) { put_px(out, 120 + n, 124 + n, 130 + n, lf, grain(sc->ns + 6, x, y, 2)); return; }
  }
  put_px(out, sc->bg[0] + n, sc->bg[1] + n, sc->bg[2] + n, lf, grain(sc->ns + 6, x, y, 3));
}

static void scene_draw(const scene *sc, uint8_t *rgb) {
  for (int y = 0; y < sc->S; y++)
    for (int x = 0; x < sc->S; x++) scene_pixel(sc, x, y, rgb + 3 * ((size_t)y * sc->S + x));
}

static void scene_base(rng *r, int S, scene *sc, int bgr, int bgg, int bgb) {
  memset(sc, 0, sizeof *sc);
  sc->S = S;
  sc->L = rand_light(r, S);
  sc->ns = (uint32_t)rnext(r);
  sc->bg[0] = bgr + rint_(r, -8, 8); sc->bg[1] = bgg + rint_(r, -8, 8); sc->bg[2] = bgb + rint_(r, -8, 8);
}

static void obj_shapes(rng *r, int S, scene *sc) {
  scene_base(r, S, sc, 70, 74, 80);
  int q = 16 * S;   /* Q4 image side */
  static const int anchors[3][2] = {{28, 30}, {72, 30}, {50, 72}};   /* percent */
  for (int i = 0; i < 3; i++) {
    part *p = &sc->p[sc->n++];
    p->cx = q * anchors[i][0] / 100 + rint_(r, -q / 20, q / 20);
    p->cy = q * anchors[i][1] / 100 + rint_(r, -q / 20, q / 20);
    p->ro = make_rot(rint_(r, -64, 64), rint_(r, 0, 3));
    if (i == 0) { p->kind = P_DISC; p->a = q * 13 / 100 + rint_(r, -q / 100, q / 100); p->col[0] = 200; p->col[1] = 60; p->col[2] = 50; }
    if (i == 1) { p->kind = P_RECT; p->a = p->b = q * 10 / 100 + rint_(r, -q / 100, q / 100); p->col[0] = 60; p->col[1] = 90; p->col[2] = 190; }
    if (i == 2) { p->kind = P_HEXNUT; p->a = q * 12 / 100 + rint_(r, -q / 100, q / 100); p->b = p->a * 2 / 5; p->col[0] = 200; p->col[1] = 180; p->col[2] = 60; }
  }
}

static void obj_screws(rng *r, int S, scene *sc) {
  scene_base(r, S, sc, 40, 42, 46);
  int q = 16 * S;
  part *p = &sc->p[sc->n++];
  p->kind = P_SCREW;
  p->cx = q / 2 + rint_(r, -q / 16, q / 16);
  p->cy = q / 2 + rint_(r, -q / 16, q / 16);
  p->ro = make_rot(rint_(r, -64, 64), rint_(r, 0, 3));
  p->a = q * 28 / 100 + rint_(r, -q / 80, q / 80);
  p->b = q * 4 / 100 + 8;
  int g = 170 + rint_(r, -12, 12);
  p->col[0] = g; p->col[1] = g; p->col[2] = g + 8;
}

/* Assembly: a tray split in two compartments; left holds two orange discs (rows 0, 2),
 * right a blue square (row 0) and a green bar (row 2); the middle rows stay empty. */
static int asm_slot_x(int q, int col) { return col ? q * 3 / 4 - q / 64 : q / 4 + q / 64; }
static int asm_slot_y(int q, int row) { return q * (22 + 28 * row) / 100; }
static void asm_part(rng *r, int q, int kind, int col, int row, part *p) {
  memset(p, 0, sizeof *p);
  p->cx = asm_slot_x(q, col) + rint_(r, -q / 40, q / 40);
  p->cy = asm_slot_y(q, row) + rint_(r, -q / 40, q / 40);
  p->ro = make_rot(rint_(r, -64, 64), 0);
  if (kind == 0) { p->kind = P_DISC; p->a = q * 9 / 100 + rint_(r, -q / 200, q / 200); p->col[0] = 230; p->col[1] = 130; p->col[2] = 40; }
  if (kind == 1) { p->kind = P_RECT; p->a = p->b = q * 7 / 100 + rint_(r, -q / 200, q / 200); p->col[0] = 50; p->col[1] = 80; p->col[2] = 200; }
  if (kind == 2) { p->kind = P_RECT; p->ro = make_rot(rint_(r, -6, 6), 0); p->a = q * 14 / 100; p->b = q * 4 / 100; p->col[0] = 60; p->col[1] = 170; p->col[2] = 70; }
}
static void obj_assembly(rng *r, int S, scene *sc) {
  scene_base(r, S, sc, 200, 196, 186);
  sc->tray = 1;
  int q = 16 * S;
  asm_part(r, q, 0, 0, 0, &sc->p[sc->n++]);
  asm_part(r, q, 0, 0, 2, &sc->p[sc->n++]);
  asm_part(r, q, 1, 1, 0, &sc->p[sc->n++]);
  asm_part(r, q, 2, 1, 2, &sc->p[sc->n++]);
}

/* ---- structural defects: a shape rasterised into `m`, then painted ---- */
typedef struct { int S; uint8_t *m; } canvas;

/* Marks pixels within distance w/2 (Q4) of segment (x0,y0)-(x1,y1) (Q4). */
static void mark_segment(canvas *c, int x0, int y0, int x1, int y1, int w) {
  int64_t dx = x1 - x0, dy = y1 - y0, L2 = dx * dx + dy * dy, rr = (int64_t)w * w / 4;
  int pad = w / 2 + 16;
  int bx0 = ((x0 < x1 ? x0 : x1) - pad) / 16, bx1 = ((x0 > x1 ? x0 : x1) + pad) / 16;
  int by0 = ((y0 < y1 ? y0 : y1) - pad) / 16, by1 = ((y0 > y1 ? y0 : y1) + pad) / 16;
  for (int y = by0 < 0 ? 0 : by0; y <= by1 && y < c->S; y++)
    for (int x = bx0 < 0 ? 0 : bx0; x <= bx1 && x < c->S; x++) {
      int64_t px = 16 * x + 8 - x0, py = 16 * y + 8 - y0, t = px * dx + py * dy;
      bool in;
      if (L2 == 0 || t <= 0) in = px * px + py * py <= rr;
      else if (t >= L2) { int64_t qx = 16 * x + 8 - x1, qy = 16 * y + 8 - y1; in = qx * qx + qy * qy <= rr; }
      else { int64_t cr = px * dy - py * dx; in = cr * cr <= rr * L2; }
      if (in) c->m[(size_t)y * c->S + x] = 1;
    }
}
static void mark_disc(canvas *c, int cx, int cy, int rad) {
  for (int y = (cy - rad) / 16 - 1; y <= (cy + rad) / 16 + 1; y++)
    for (int x = (cx - rad) / 16 - 1; x <= (cx + rad) / 16 + 1; x++) {
      if (x < 0 || y < 0 || x >= c->S || y >= c->S) continue;
      int64_t dx = 16 * x + 8 - cx, dy = 16 * y + 8 - cy;
      if (dx * dx + dy * dy <= (int64_t)rad * rad) c->m[(size_t)y * c->S + x] = 1;
    }
}

/* Draws structural defect `name` around anchor (ax, ay) (Q4) into rgb and marks it. */
static void structural(rng *r, const char *name, int S, int ax, int ay, uint8_t *rgb, uint8_t *m) {
  canvas c = {S, m};
  int q = 16 * S, unit = q / 64 > 16 ? q / 64 : 16;   /* Q4, >= 1 px */
  rot ro = make_rot(rint_(r, -64, 64), rint_(r, 0, 3));
  int mode = 0, tint[3] = {0, 0, 0};
  if (!strcmp(name, "scratch")) {
    int len = q / 8 + rint_(r, 0, q / 8);
    int dx = (int)((int64_t)len * ro.c >> 15), dy = (int)((int64_t)len * ro.s >> 15);
    mark_segment(&c, ax - dx, ay - dy, ax + dx, ay + dy, unit * 3 / 2 + 8);
    mode = 1;
  } else if (!strcmp(name, "cut")) {
    int len = q / 6 + rint_(r, 0, q / 10);
    int dx = (int)((int64_t)len * ro.c >> 15), dy = (int)((int64_t)len * ro.s >> 15);
    mark_segment(&c, ax - dx, ay - dy, ax + dx, ay + dy, unit * 3);
    mode = 2;
  } else if (!strcmp(name, "crack")) {
    int x = ax, y = ay, steps = 4 + rint_(r, 0, 2);
    for (int i = 0; i < steps; i++) {
      rot d = make_rot(rint_(r, -20, 20), 0);
      int len = q / 24 + rint_(r, 0, q / 24);
      int nx = x + (int)(((int64_t)ro.c * d.c - (int64_t)ro.s * d.s) * len >> 28);
      int ny = y + (int)(((int64_t)ro.s * d.c + (int64_t)ro.c * d.s) * len >> 28);
      mark_segment(&c, x, y, nx, ny, unit + 8);
      x = nx; y = ny;
    }
    mode = 3;
  } else if (!strcmp(name, "spot")) {
    mark_disc(&c, ax, ay, q / 40 + rint_(r, 0, q / 40) + 16);
    mode = 4; tint[0] = 70; tint[1] = 45; tint[2] = 25;
  } else if (!strcmp(name, "hole")) {
    mark_disc(&c, ax, ay, q / 22 + rint_(r, 0, q / 30) + 16);
    mode = 5;
  } else if (!strcmp(name, "stain")) {
    int k = 3 + rint_(r, 0, 2), rad = q / 30 + 16;
    for (int i = 0; i < k; i++)
      mark_disc(&c, ax + rint_(r, -rad, rad), ay + rint_(r, -rad, rad), rad + rint_(r, 0, rad / 2));
    mode = 4;
    int pick = rint_(r, 0, 1);
    tint[0] = pick ? 150 : 90; tint[1] = pick ? 100 : 150; tint[2] = pick ? 30 : 60;
  }
  VG_ASSERT(mode != 0 && "unknown structural defect");
  for (size_t i = 0; i < (size_t)S * S; i++) {
    if (!m[i]) continue;
    uint8_t *p = rgb + 3 * i;
    for (int k = 0; k < 3; k++) {
      int v = p[k];
      switch (mode) {
        case 1: v = v + 80 < 255 ? v + 80 : 255 - (v >> 3); break;     /* bright scratch */
        case 2: v = v / 5 + 10; break;                                   /* dark cut */
        case 3: v = v / 3; break;                                        /* dark crack */
        case 4: v = (v * 70 + tint[k] * 186) >> 8; break;                /* stain / spot */
        case 5: v = 12 + (v >> 5); break;                                /* hole */
      }
      p[k] = (uint8_t)v;
    }
  }
}

/* ---- rendering ---- */
static bool is_texture(int id) { return id <= CAT_NOISE; }

/* Pixels covered by part p (ignoring occlusion) get value v in inst. */
static void mark_part(const part *p, int S, uint8_t *inst, uint8_t v) {
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      int sh;
      if (part_inside(p, x, y, &sh)) inst[(size_t)y * S + x] = v;
    }
}

vg_status vg_synth_render(const vg_synth_category *c, uint64_t seed, int size, vg_synth_set set, int index,
                          int defect, uint8_t *rgb, uint8_t *inst, int *n_inst) {
  if (!c || c < k_cats || c >= k_cats + CAT_COUNT) return vg_fail(VG_ERR_ARG, "synth: unknown category");
  if (size < VG_SYNTH_MIN_SIZE || size > VG_SYNTH_MAX_SIZE)
    return vg_fail(VG_ERR_ARG, "synth: size %d out of range (%d..%d)", size, VG_SYNTH_MIN_SIZE, VG_SYNTH_MAX_SIZE);
  if (defect < -1 || defect >= c->n_defects) return vg_fail(VG_ERR_ARG, "synth: %s: defect %d out of range", c->name, defect);
  int id = (int)(c - k_cats), S = size;
  uint64_t key = mix64(seed ^ mix64(((uint64_t)id << 40) ^ ((uint64_t)set << 32) ^ (uint64_t)(uint32_t)index));
  rng rn = {key}, rd = {mix64(key ^ 0xD3FEC7ull)};
  size_t np = (size_t)S * S;
  uint8_t *m = calloc(np, 1);
  if (!m) return vg_fail(VG_ERR_NOMEM, "synth: out of memory");
  int ninst = 0;
  scene sc;
  int q = 16 * S;
  if (is_texture(id)) {
    if (id == CAT_WOVEN) tex_woven(&rn, S, rgb);
    if (id == CAT_GRAINED) tex_grained(&rn, S, rgb);
    if (id == CAT_GRID) tex_grid(&rn, S, rgb);
    if (id == CAT_NOISE) tex_noise(&rn, S, rgb);
    if (defect >= 0) {
      structural(&rd, c->defects[defect], S, q / 8 + rint_(&rd, 0, q * 3 / 4), q / 8 + rint_(&rd, 0, q * 3 / 4), rgb, m);
      ninst = 1;
    }
  } else {
    if (id == CAT_SHAPES) obj_shapes(&rn, S, &sc);
    if (id == CAT_SCREWS) obj_screws(&rn, S, &sc);
    if (id == CAT_ASSEMBLY) obj_assembly(&rn, S, &sc);
    bool logical = c->logical && defect >= 0 && c->logical[defect];
    if (!logical) {
      scene_draw(&sc, rgb);
      if (defect >= 0) {
        const part *p = &sc.p[rint_(&rd, 0, sc.n - 1)];
        int ax = p->cx, ay = p->cy;
        if (p->kind == P_SCREW) {   /* somewhere along the shaft */
          int u = rint_(&rd, -p->a / 2, p->a * 2 / 3);
          ax += (int)((int64_t)u * p->ro.c >> 14); ay += (int)((int64_t)u * p->ro.s >> 14);
        } else {
          ax += rint_(&rd, -p->a / 2, p->a / 2); ay += rint_(&rd, -p->a / 2, p->a / 2);
        }
        structural(&rd, c->defects[defect], S, ax, ay, rgb, m);
        ninst = 1;
      }
    } else {
      /* logical anomaly: change the scene; masks = footprints of the changed parts */
      scene bad = sc;
      const char *name = c->defects[defect];
      if (!strcmp(name, "missing_part")) {
        int k = 1 + (index & 1);     /* one part, or two (odd sample index) */
        int first = rint_(&rd, 0, sc.n - 1), second = (first + 1 + rint_(&rd, 0, sc.n - 2)) % sc.n;
        int gone[2] = {first, second};
        for (int j = 0; j < k; j++) mark_part(&sc.p[gone[j]], S, m, (uint8_t)(j + 1));
        bad.n = 0;
        for (int i = 0; i < sc.n; i++)
          if (i != first && (k == 1 || i != second)) bad.p[bad.n++] = sc.p[i];
        ninst = k;
      } else if (!strcmp(name, "extra_part")) {
        asm_part(&rd, q, rint_(&rd, 0, 1), rint_(&rd, 0, 1), 1, &bad.p[bad.n]);
        mark_part(&bad.p[bad.n], S, m, 1);
        bad.n++;
        ninst = 1;
      } else if (!strcmp(name, "wrong_arrangement")) {
        /* a disc and the square swap compartments */
        int disc = rint_(&rd, 0, 1);
        part a = sc.p[disc], b = sc.p[2];
        mark_part(&a, S, m, 1); mark_part(&b, S, m, 1);
        int ax = a.cx, ay = a.cy;
        a.cx = b.cx; a.cy = b.cy; b.cx = ax; b.cy = ay;
        bad.p[disc] = a; bad.p[2] = b;
        mark_part(&a, S, m, 1); mark_part(&b, S, m, 1);
        ninst = 1;
      } else if (!strcmp(name, "wrong_colour")) {
        int i = rint_(&rd, 0, sc.n - 1);
        static const int alt[3][3] = {{150, 60, 170}, {220, 40, 40}, {240, 240, 240}};
        memcpy(bad.p[i].col, alt[rint_(&rd, 0, 2)], sizeof bad.p[i].col);
        mark_part(&sc.p[i], S, m, 1);
        ninst = 1;
      }
      scene_draw(&bad, rgb);
    }
  }
  if (inst) memcpy(inst, m, np);
  if (n_inst) *n_inst = ninst;
  free(m);
  return VG_OK;
}

/* ---- files ---- */
static vg_status write_all(const char *path, const uint8_t *buf, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return vg_fail(VG_ERR_IO, "synth: %s: %s", path, strerror(errno));
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { int e = errno; close(fd); return vg_fail(VG_ERR_IO, "synth: %s: write: %s", path, strerror(e)); }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) return vg_fail(VG_ERR_IO, "synth: %s: fsync/close: %s", path, strerror(errno));
  return VG_OK;
}
static vg_status write_png(const char *path, int w, int h, int ch, uint8_t *data) {
  vg_image im = {w, h, ch, 8, data};
  uint8_t *buf = NULL;
  size_t n = 0;
  vg_status st = vg_png_encode(&im, &buf, &n);
  if (st == VG_OK) st = write_all(path, buf, n);
  free(buf);
  return st;
}
static vg_status mkdir_p(const char *path) {
  return vg_mkdir_p(path) == VG_OK ? VG_OK : vg_fail_prefix("synth");
}
static void fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) { fsync(fd); close(fd); }
}
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb; (void)flag; (void)f;
  return remove(p);
}
static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* One category's files under root/<name>. */
static vg_status gen_category(const vg_synth_category *c, const char *root, const vg_synth_opts *o) {
  int S = o->size;
  size_t np = (size_t)S * S;
  uint8_t *rgb = malloc(np * 3), *inst = malloc(np), *mask = malloc(np);
  char dir[4096], path[4200];
  vg_status st = VG_OK;
  if (!rgb || !inst || !mask) { st = vg_fail(VG_ERR_NOMEM, "synth: out of memory"); goto done; }
  const char *sets[2] = {"train/good", "validation/good"};
  int counts[2] = {o->n_train, c->loco ? o->n_val : 0};
  for (int s = 0; s < 2 && st == VG_OK; s++) {
    if (!counts[s]) continue;
    snprintf(dir, sizeof dir, "%s/%s/%s", root, c->name, sets[s]);
    st = mkdir_p(dir);
    for (int i = 0; i < counts[s] && st == VG_OK; i++) {
      st = vg_synth_render(c, o->seed, S, s ? VG_SYNTH_VAL : VG_SYNTH_TRAIN, i, -1, rgb, NULL, NULL);
      snprintf(path, sizeof path, "%s/%03d.png", dir, i);
      if (st == VG_OK) st = write_png(path, S, S, 3, rgb);
    }
    if (st == VG_OK) fsync_dir(dir);
  }
  for (int i = 0; i < o->n_test && st == VG_OK; i++) {
    int d, num, ninst = 0;
    vg_synth_test_sample(c, o->n_test, i, &d, &num);
    const char *folder = d < 0 ? "good" : !c->loco ? c->defects[d] : c->logical[d] ? "logical_anomalies" : "structural_anomalies";
    snprintf(dir, sizeof dir, "%s/%s/test/%s", root, c->name, folder);
    if (num == 0 && (st = mkdir_p(dir)) != VG_OK) break;
    st = vg_synth_render(c, o->seed, S, VG_SYNTH_TEST, i, d, rgb, inst, &ninst);
    snprintf(path, sizeof path, "%s/%03d.png", dir, num);
    if (st == VG_OK) st = write_png(path, S, S, 3, rgb);
    if (st != VG_OK || d < 0) continue;
    if (!c->loco) {
      snprintf(dir, sizeof dir, "%s/%s/ground_truth/%s", root, c->name, folder);
      if (num == 0 && (st = mkdir_p(dir)) != VG_OK) break;
      for (size_t k = 0; k < np; k++) mask[k] = inst[k] ? 255 : 0;
      snprintf(path, sizeof path, "%s/%03d_mask.png", dir, num);
      st = write_png(path, S, S, 1, mask);
    } else {
      snprintf(dir, sizeof dir, "%s/%s/ground_truth/%s/%03d", root, c->name, folder, num);
      st = mkdir_p(dir);
      for (int k = 1; k <= ninst && st == VG_OK; k++) {
        for (size_t j = 0; j < np; j++) mask[j] = inst[j] == k ? (uint8_t)c->pixel_value[d] : 0;
        snprintf(path, sizeof path, "%s/%03d.png", dir, k - 1);
        st = write_png(path, S, S, 1, mask);
      }
    }
  }
  if (st == VG_OK && c->loco) {
    /* sPRO saturation: missing parts saturate at the area of a nominal disc part
     * (absolute pixels, as LOCO does for missing objects); the rest at their full area. */
    int64_t r = (int64_t)S * 9 / 100, area = r * r * 355 / 113;
    vg_json_writer w;
    vg_jw_init(&w, 2);
    vg_jw_begin_array(&w);
    for (int d = 0; d < c->n_defects; d++) {
      bool absolute = !strcmp(c->defects[d], "missing_part");
      vg_jw_begin_object(&w);
      vg_jw_key(&w, "defect_name"); vg_jw_string(&w, c->defects[d]);
      vg_jw_key(&w, "pixel_value"); vg_jw_int64(&w, c->pixel_value[d]);
      vg_jw_key(&w, "saturation_threshold"); vg_jw_double(&w, absolute ? (double)area : 1.0);
      vg_jw_key(&w, "relative_saturation"); vg_jw_bool(&w, !absolute);
      vg_jw_end_object(&w);
    }
    vg_jw_end_array(&w);
    size_t n = 0;
    char *text = vg_jw_finish(&w, &n);
    if (!text) st = vg_last_status();
    else {
      snprintf(path, sizeof path, "%s/%s/defects_config.json", root, c->name);
      st = write_all(path, (const uint8_t *)text, n);
      free(text);
    }
  }
done:
  free(rgb); free(inst); free(mask);
  return st;
}

/* ---- generate ---- */
typedef struct {
  const vg_synth_opts *o;
  const char *root;
  const vg_synth_category **cats;
  int n, next;
  pthread_mutex_t mu;
  vg_status st;
  char err[1024];
} job;

static void *worker(void *arg) {
  job *J = arg;
  for (;;) {
    pthread_mutex_lock(&J->mu);
    int i = J->st == VG_OK && J->next < J->n ? J->next++ : -1;
    pthread_mutex_unlock(&J->mu);
    if (i < 0) return NULL;
    vg_status st = gen_category(J->cats[i], J->root, J->o);
    if (st != VG_OK) {
      pthread_mutex_lock(&J->mu);
      if (J->st == VG_OK) { J->st = st; snprintf(J->err, sizeof J->err, "%s", vg_last_error()); }
      pthread_mutex_unlock(&J->mu);
    }
  }
}

static char *manifest_text(const vg_synth_opts *o, const vg_synth_category **cats, int n) {
  vg_json_writer w;
  vg_jw_init(&w, 2);
  vg_jw_begin_object(&w);
  vg_jw_key(&w, "generator"); vg_jw_string(&w, "vigil synth");
  vg_jw_key(&w, "version"); vg_jw_int64(&w, VG_SYNTH_VERSION);
  vg_jw_key(&w, "seed"); vg_jw_int64(&w, (int64_t)o->seed);
  vg_jw_key(&w, "size"); vg_jw_int64(&w, o->size);
  vg_jw_key(&w, "train"); vg_jw_int64(&w, o->n_train);
  vg_jw_key(&w, "test"); vg_jw_int64(&w, o->n_test);
  vg_jw_key(&w, "validation"); vg_jw_int64(&w, o->n_val);
  vg_jw_key(&w, "categories");
  vg_jw_begin_array(&w);
  for (int i = 0; i < n; i++) vg_jw_string(&w, cats[i]->name);
  vg_jw_end_array(&w);
  vg_jw_end_object(&w);
  size_t len;
  return vg_jw_finish(&w, &len);
}

static bool file_equals(const char *path, const char *text) {
  uint8_t *buf = NULL;
  size_t n = 0;
  if (vg_image_read_file(path, &buf, &n, 1 << 20) != VG_OK) { vg_clear_error(); return false; }
  bool eq = n == strlen(text) && !memcmp(buf, text, n);
  free(buf);
  return eq;
}

static bool dir_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return false;
  struct dirent *e;
  bool empty = true;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = false; break; }
  closedir(d);
  return empty;
}

vg_status vg_synth_generate(const vg_synth_opts *in, bool *generated) {
  if (generated) *generated = false;
  if (!in || !in->out || !in->out[0]) return vg_fail(VG_ERR_ARG, "synth: an output directory is required");
  vg_synth_opts o = *in;
  if (!o.size) o.size = 256;
  if (!o.n_train) o.n_train = 60;
  if (!o.n_test) o.n_test = 40;
  if (!o.n_val) o.n_val = 10;
  if (o.size < VG_SYNTH_MIN_SIZE || o.size > VG_SYNTH_MAX_SIZE)
    return vg_fail(VG_ERR_ARG, "synth: --size %d out of range (%d..%d)", o.size, VG_SYNTH_MIN_SIZE, VG_SYNTH_MAX_SIZE);
  if (o.n_train < 1 || o.n_test < 2 || o.n_val < 1 || o.n_train > 100000 || o.n_test > 100000 || o.n_val > 100000)
    return vg_fail(VG_ERR_ARG, "synth: image counts out of range (train >= 1, test >= 2, validation >= 1, each <= 100000)");
  const vg_synth_category *cats[CAT_COUNT];
  int n = 0;
  if (!o.categories || !o.categories[0]) {
    for (int i = 0; i < CAT_COUNT; i++) cats[n++] = &k_cats[i];
  } else {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", o.categories) >= (int)sizeof buf) return vg_fail(VG_ERR_ARG, "synth: category list too long");
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      const vg_synth_category *c = vg_synth_category_find(t);
      if (!c)
        return vg_fail(VG_ERR_ARG, "synth: unknown category '%s' (known: woven, grained, grid, noise, shapes, screws, assembly)", t);
      bool dup = false;
      for (int i = 0; i < n; i++) dup |= cats[i] == c;
      if (!dup) cats[n++] = c;
    }
    if (!n) return vg_fail(VG_ERR_ARG, "synth: empty category list");
  }
  char *man = manifest_text(&o, cats, n);
  if (!man) return vg_last_status();
  char mpath[4200], tmp[4200], old[4200];
  snprintf(mpath, sizeof mpath, "%s/synth.json", o.out);
  if (!o.force && file_equals(mpath, man)) { free(man); return VG_OK; }
  struct stat sb;
  bool exists = stat(o.out, &sb) == 0;
  vg_status st = VG_OK;
  if (exists && !S_ISDIR(sb.st_mode)) st = vg_fail(VG_ERR_IO, "synth: %s exists and is not a directory", o.out);
  else if (exists && !dir_empty(o.out) && access(mpath, F_OK) != 0)
    st = vg_fail(VG_ERR_IO, "synth: %s exists, is not empty and holds no synth.json: refusing to replace it", o.out);
  if (st != VG_OK) { free(man); return st; }
  /* parent folders, then a temp sibling to generate into */
  snprintf(tmp, sizeof tmp, "%s", o.out);
  size_t tl = strlen(tmp);
  while (tl > 1 && tmp[tl - 1] == '/') tmp[--tl] = 0;
  char *slash = strrchr(tmp, '/');
  if (slash && slash != tmp) {
    *slash = 0;
    st = mkdir_p(tmp);
    *slash = '/';
    if (st != VG_OK) { free(man); return st; }
  }
  snprintf(tmp + tl, sizeof tmp - tl, ".tmp-XXXXXX");
  if (!mkdtemp(tmp)) {
    int e = errno;
    free(man);
    return vg_fail(VG_ERR_IO, "synth: cannot create %s: %s (is the output folder writable?)", tmp, strerror(e));
  }
  job J = {&o, tmp, cats, n, 0, PTHREAD_MUTEX_INITIALIZER, VG_OK, ""};
  int nt = o.threads;
  if (nt <= 0) { long c = sysconf(_SC_NPROCESSORS_ONLN); nt = c < 1 ? 1 : c > 8 ? 8 : (int)c; }
  if (nt > n) nt = n;
  pthread_t th[8];
  int started = 0;
  for (int i = 1; i < nt && i < 8; i++)
    if (pthread_create(&th[started], NULL, worker, &J) == 0) started++;
  worker(&J);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  st = J.st;
  if (st != VG_OK) vg_fail(st, "%s", J.err);
  if (st == VG_OK) {
    char p[4300];
    snprintf(p, sizeof p, "%s/synth.json", tmp);
    st = write_all(p, (const uint8_t *)man, strlen(man));
    fsync_dir(tmp);
  }
  free(man);
  if (st == VG_OK) {
    bool moved = false;
    if (exists && !dir_empty(o.out)) {
      snprintf(old, sizeof old, "%.*s.old-XXXXXX", (int)tl, tmp);
      if (!mkdtemp(old) || rename(o.out, old) != 0)
        st = vg_fail(VG_ERR_IO, "synth: cannot move the old %s aside: %s", o.out, strerror(errno));
      else moved = true;
    }
    if (st == VG_OK && rename(tmp, o.out) != 0) {
      st = vg_fail(VG_ERR_IO, "synth: rename %s -> %s: %s", tmp, o.out, strerror(errno));
      if (moved) rename(old, o.out);
      moved = false;
    }
    if (moved) rm_rf(old);
    if (st == VG_OK) {
      char parent[4200];
      snprintf(parent, sizeof parent, "%.*s", (int)tl, tmp);
      char *sl = strrchr(parent, '/');
      if (sl && sl != parent) { *sl = 0; fsync_dir(parent); } else fsync_dir(sl ? "/" : ".");
    }
  }
  if (st != VG_OK) rm_rf(tmp);
  else if (generated) *generated = true;
  return st;
}
