/* jpeg_internal.h — what jpeg.c (markers, entropy decoding) hands to jpeg_pixels.c
 * (IDCT, block smoothing, upsampling, colour conversion). Not a public header. */
#ifndef VG_JPEG_INTERNAL_H
#define VG_JPEG_INTERNAL_H
#include <stdint.h>
#include "datasets/image/image.h"

/* Colour space of the coded components, chosen the way libjpeg guesses it. */
typedef enum { VG_JCS_GREY, VG_JCS_YCC, VG_JCS_RGB, VG_JCS_CMYK, VG_JCS_YCCK } vg_jpeg_cs;

typedef struct {
  int id, h, v, tq;      /* component id, sampling factors 1..4, quant table slot */
  int dw, dh;            /* downsampled size: ceil(W*h/hmax) x ceil(H*v/vmax) samples */
  int wib, hib;          /* blocks holding real samples: ceil(dw/8) x ceil(dh/8) */
  int bw, bh;            /* blocks allocated (MCU-padded): mcux*h x mcuy*v */
  int16_t *coef;         /* bh*bw blocks of 64 quantized coefficients, natural order */
  uint8_t *acnz;         /* progressive: per block, 1 once an AC coefficient was set nonzero */
  uint16_t q[64];        /* quant table latched at the first scan holding the component */
  int q_latched;
  int coef_bits[10];     /* progressive: -1 = coefficient never coded, else its last Al */
  int prev_coef_bits[10];/* the same before the latest scan that touched the component */
} vg_jpeg_comp;

typedef struct {
  int w, h, ncomp, hmax, vmax, mcux, mcuy;
  int progressive;
  int scans;             /* scans read so far (libjpeg's input_scan_number) */
  int last_good_row;     /* last iMCU row entered with data left (libjpeg's last_good_iMCU_row) */
  vg_jpeg_cs cs;
  vg_jpeg_comp comp[4];
} vg_jpeg_frame;

/* IDCT + smoothing + upsampling + colour conversion of a fully read frame into *out
 * (allocated here; depth 8, c = 1 or 3). */
vg_status vg_jpeg_render(const vg_jpeg_frame *f, int fancy, int smoothing, vg_image *out);

/* 1 when every component's sampling ratio (hmax/h, vmax/v) is one libjpeg can upsample. */
int vg_jpeg_ratios_ok(const vg_jpeg_frame *f);
#endif
