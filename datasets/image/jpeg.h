/* jpeg.h — options for Vigil's baseline/progressive JPEG decoder (datasets/image/jpeg.c).
 *
 *   vg_image img;
 *   vg_jpeg_options o = vg_jpeg_options_default();
 *   o.fancy_upsampling = 0;              // box (replicating) chroma upsampling
 *   if (vg_jpeg_decode_ex(buf, n, &img, NULL, &o) != VG_OK) puts(vg_last_error());
 *
 * vg_jpeg_decode(buf, n, out, lim) (declared in image.h) uses the defaults, which give the
 * pixels libjpeg-turbo gives with its default settings — what Pillow's Image.open().convert()
 * returns: ISLOW integer IDCT, "fancy" (triangle) upsampling, libjpeg's fixed-point
 * YCbCr->RGB, and block smoothing of progressive files whose AC coefficients are
 * incomplete (truncated progressive files).
 *
 * Output: depth 8, c = 1 for one-component (greyscale) files, c = 3 (RGB) otherwise.
 * Four-component files (Adobe CMYK or YCCK) come out as RGB the way Pillow's
 * Image.open(f).convert("RGB") makes them: YCCK -> CMYK with libjpeg's tables, the CMYK
 * samples read as inverted (Adobe/Photoshop convention, Pillow's "CMYK;I"), then
 * R = 255 - K' - (C' * (255 - K')) / 255 in Pillow's integer form.
 *
 * Supported: SOF0/SOF1/SOF2, Huffman coding, 8-bit samples, 1/3/4 components, any
 * sampling factors 1..4 whose ratios are integers, restart markers, Adobe APP14 transform.
 * Refused with VG_ERR_UNSUPPORTED: 12/16-bit precision, arithmetic coding, lossless and
 * hierarchical processes. Truncated or damaged entropy-coded data decodes the way libjpeg
 * does (a truncated file is reported through VG_IMAGE_TRUNCATED, see vg_jpeg_decode_flags
 * and vg_image_load_ex) (missing MCUs stay zero: mid-grey in baseline files, earlier scans' detail in
 * progressive ones); damaged headers are refused with VG_ERR_FORMAT naming the problem. */
#ifndef VG_JPEG_H
#define VG_JPEG_H
#include "datasets/image/image.h"

/* Work limits (denial of service): a file with more than max_scans scans is refused
 * (VG_ERR_LIMIT), like libjpeg-turbo's djpeg -maxscans (its documentation suggests 500);
 * a scan whose entropy-coded segment is empty is refused (VG_ERR_FORMAT: every real
 * scan codes at least one bit per block); and all scans together may visit each
 * coefficient of the frame at most 16 times on average (VG_ERR_LIMIT; a full
 * successive-approximation progression needs 14). Data that run out, in a scan or
 * before a restart marker, end the work there instead of walking the declared size.
 * A 16384 x 16384 frame with a few bytes of data therefore costs one pass of the inverse
 * DCT, and a flood of scans is stopped after the limit. DNL markers are ignored (a
 * frame must declare its height). */
#define VG_JPEG_MAX_SCANS 500

typedef struct {
  int fancy_upsampling;  /* 1 (default): libjpeg's triangle filter; 0: replicate samples */
  int block_smoothing;   /* 1 (default): libjpeg's smoothing of incomplete progressive data */
  int max_scans;         /* 0 (default) = VG_JPEG_MAX_SCANS */
} vg_jpeg_options;

static inline vg_jpeg_options vg_jpeg_options_default(void) {
  vg_jpeg_options o = {1, 1, 0};
  return o;
}

/* opt NULL = defaults (same as vg_jpeg_decode). */
vg_status vg_jpeg_decode_ex(const uint8_t *buf, size_t n, vg_image *out,
                            const vg_image_limits *lim, const vg_jpeg_options *opt);
/* The same; *flags (may be NULL) gets VG_IMAGE_TRUNCATED when the data end before the
 * EOI marker (a cut file: Pillow refuses it by default, libjpeg warns and fills in). */
vg_status vg_jpeg_decode_flags(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim,
                               const vg_jpeg_options *opt, unsigned *flags);
#endif
