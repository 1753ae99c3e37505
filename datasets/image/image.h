/* image.h — Vigil's own image codecs and pixel transforms (datasets/image).
 *
 *   vg_image img;
 *   if (vg_image_load("x.png", &img, NULL) != VG_OK) puts(vg_last_error());
 *   ... img.data is h*w*c samples, interleaved (HWC), row-major, top row first ...
 *   vg_image_free(&img);
 *
 * Samples are uint8_t when depth == 8 and uint16_t (native endian) when depth == 16.
 * Channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. Decoders keep the file's channel
 * layout (a palette PNG decodes to RGB, or RGBA when it has tRNS; a grey+tRNS PNG
 * to grey+alpha). Every size is checked against the limits before allocating.
 * Limits: a NULL pointer, or a zero field, means the default. */
#ifndef VG_IMAGE_H
#define VG_IMAGE_H
#include "base/inflate.h"
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
  int w, h;        /* pixels */
  int c;           /* channels: 1..4 */
  int depth;       /* bits per sample: 8 or 16 */
  void *data;      /* h*w*c samples, malloc'd, owned by the image */
} vg_image;

typedef struct {
  int max_side;             /* each side <= this (default 16384) */
  size_t max_bytes;         /* decoded size <= this (default 256 MiB) */
  size_t max_chunk;         /* PNG chunk length <= this (default 8 MB) */
} vg_image_limits;

/* NULL limits = the defaults above. */
vg_status vg_png_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
vg_status vg_jpeg_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
/* PNG encoder: depth 8 or 16, c = 1 (grey), 2 (grey+alpha), 3 (RGB), 4 (RGBA).
 * Writes to a malloc'd buffer (*out, *out_n). */
vg_status vg_png_encode(const vg_image *img, uint8_t **out, size_t *out_n);

/* zlib/deflate and CRC-32/Adler-32: base/inflate.h (included above) */

/* BMP: 1/4/8-bit palette (-> RGB), 16/24/32-bit with or without bitfields (-> RGB, or RGBA
 * when the file has an alpha mask), RLE8/RLE4, bottom-up and top-down. Depth 8. */
vg_status vg_bmp_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
/* BMP writer, depth 8 only: c = 1 (8-bit grey palette), 3 (24-bit), 4 (32-bit BGRA, V4
 * header with bitfields). */
vg_status vg_bmp_encode(const vg_image *img, uint8_t **out, size_t *out_n);
/* PGM/PPM: P2/P5 (grey) and P3/P6 (RGB), maxval 1..65535. maxval <= 255 gives depth 8,
 * larger gives depth 16; values are rescaled to the full range (v * 255 / maxval or
 * v * 65535 / maxval, rounded), values above maxval are an error. */
vg_status vg_pnm_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
/* PGM/PPM writer: binary P5 (c = 1) or P6 (c = 3), maxval 255 or 65535 by depth. */
vg_status vg_pnm_encode(const vg_image *img, uint8_t **out, size_t *out_n);
/* TIFF, uncompressed, strips (no tiles), contiguous samples: 8/16-bit grey, grey+alpha,
 * RGB, RGBA (WhiteIsZero grey is inverted). A float TIFF is refused here: use the f32 API. */
vg_status vg_tiff_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
/* 32-bit float, single-channel, uncompressed TIFF (anomaly maps, as MVTec's evaluation
 * scripts read and write them). *data = w*h floats, row-major, malloc'd, caller frees. */
vg_status vg_tiff_decode_f32(const uint8_t *buf, size_t n, float **data, int *w, int *h,
                             const vg_image_limits *lim);
vg_status vg_tiff_read_f32(const char *path, float **data, int *w, int *h);
/* Little-endian TIFF, one strip, SampleFormat = IEEE float; encode to memory, or write to
 * a file via a temp name, fsync and rename. */
vg_status vg_tiff_encode_f32(const float *data, int w, int h, uint8_t **out, size_t *out_n);
vg_status vg_tiff_write_f32(const char *path, const float *data, int w, int h);

/* Decodes by content (PNG/JPEG/BMP/PGM/PPM/TIFF), from memory or a file; errors name the file.
 * Files are read with base/file.h: a directory, FIFO, socket or device is an error
 * (VG_ERR_IO, naming what it is), never a hang. */
vg_status vg_image_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
vg_status vg_image_load(const char *path, vg_image *out, const vg_image_limits *lim);

/* Things a decode noticed without failing. VG_IMAGE_TRUNCATED: the data end early (a JPEG
 * without its EOI marker, cut inside or after its scan data; the other codecs refuse cut
 * files) and the missing part was filled as libjpeg fills it (mid-grey, or coarser detail
 * from earlier progressive scans). Pillow refuses such files unless LOAD_TRUNCATED_IMAGES. */
enum { VG_IMAGE_TRUNCATED = 1u };
/* flags may be NULL. */
vg_status vg_image_decode_ex(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim,
                             unsigned *flags);
/* strict: a truncated file is an error (VG_ERR_FORMAT naming the file). Not strict: it
 * decodes; with flags == NULL a warning naming the file goes to the warning handler
 * (stderr: "vigil: warning: ..."), with flags != NULL the caller gets VG_IMAGE_TRUNCATED
 * and decides (the dataset loader warns once per file). vg_image_load = not strict, NULL. */
vg_status vg_image_load_ex(const char *path, vg_image *out, const vg_image_limits *lim, int strict,
                           unsigned *flags);
/* Where image warnings go: fn(message, user), message without a newline; NULL restores
 * the default (stderr). Process-wide; set it before starting loader threads. */
typedef void (*vg_image_warn_fn)(const char *msg, void *user);
void vg_image_set_warning_handler(vg_image_warn_fn fn, void *user);
void vg_image_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vg_image_free(vg_image *img);
/* Writes img as PNG to path (temp name, fsync, rename). */
vg_status vg_png_save(const char *path, const vg_image *img);

/* Whole-file helpers the codecs share. read: refuses files larger than max_n bytes;
 * *buf is malloc'd (caller frees). write: temp file in the same folder, fsync, rename,
 * so readers never see a half-written file. Errors name the path. */
vg_status vg_image_read_file(const char *path, uint8_t **buf, size_t *n, size_t max_n);
vg_status vg_image_write_file(const char *path, const uint8_t *buf, size_t n);

/* ==== Transforms (datasets/image/transform.c) =========================================
 * Pillow / torchvision (PIL path) compatible; 8-bit images only. Every function that
 * writes a vg_image allocates it (vg_image_free it); on failure *out is zeroed.
 *   resize: Pillow Image.resize (box = whole image, reducing_gap = None). BILINEAR and
 *     BICUBIC: antialiased convolution in Pillow's 8-bit fixed point, horizontal pass
 *     first; 1 or 3 channels (alpha images are refused: Pillow premultiplies).
 *     NEAREST: any channel count (masks).
 *   to_tensor: HWC u8 -> CHW float v/255 (out holds c*h*w floats).
 *   normalize: in place (x - mean[c]) / std[c] in float, as torchvision's Normalize.
 *   center_crop: torchvision's offsets int(round((size - crop) / 2.0)); crop must fit.
 *   to_gray: Pillow convert("L"); to_rgb: grey replicated, alpha dropped.
 *   adjust_*: PIL ImageEnhance Brightness / Contrast / Color (torchvision's PIL path).
 *   rotate: PIL Image.rotate(angle deg, counter-clockwise, BILINEAR, expand=False,
 *     centre = image centre, fill 0); 1 or 3 channels. */
typedef enum { VG_RESAMPLE_NEAREST = 0, VG_RESAMPLE_BILINEAR = 2, VG_RESAMPLE_BICUBIC = 3 } vg_resample;
vg_status vg_image_resize(const vg_image *src, int w, int h, vg_resample filter, vg_image *out);
vg_status vg_image_to_tensor(const vg_image *src, float *out);
void vg_tensor_normalize_chw(float *chw, int c, int h, int w, const float *mean, const float *std);
void vg_tensor_normalize_imagenet(float *chw, int h, int w);   /* c = 3 */
vg_status vg_image_crop(const vg_image *src, int left, int top, int w, int h, vg_image *out);
vg_status vg_image_center_crop(const vg_image *src, int w, int h, vg_image *out);
vg_status vg_image_flip(const vg_image *src, int horizontal, vg_image *out); /* 0 = vertical */
vg_status vg_image_to_gray(const vg_image *src, vg_image *out);
vg_status vg_image_to_rgb(const vg_image *src, vg_image *out);
vg_status vg_image_adjust_brightness(const vg_image *src, double factor, vg_image *out);
vg_status vg_image_adjust_contrast(const vg_image *src, double factor, vg_image *out);
vg_status vg_image_adjust_saturation(const vg_image *src, double factor, vg_image *out);
vg_status vg_image_rotate(const vg_image *src, double angle_deg, vg_image *out);
/* anomalib 2.x's input path, in float (no 8-bit rounding anywhere):
 *   resize_float: samples -> float32 as torchvision's to_dtype(scale=True) does (v times
 *     float32(1/255), or 1/65535 for 16-bit), then torch's antialiased bilinear
 *     (F.interpolate(mode="bilinear", antialias=True, align_corners=False) on a float32
 *     tensor, which torchvision.transforms.v2.Resize(antialias=True) calls): Pillow's
 *     BILINEAR filter weights without fixed point, with torch's float32 rounding of centre
 *     and weights, width pass first. out: src->c planes of h*w floats (CHW). Any channel
 *     count, depth 8 or 16. Matches torch to ~1e-7 (tests/test_anomalib_import.c).
 *   float_transform / float_imagenet_transform (the vg_transform_fn signature of
 *     datasets/datasets.h): anomalib's read_image (Pillow convert("RGB") -> float) ->
 *     Resize(antialias=True) [-> ImageNet Normalize]; c = 1 or 3 (3 for imagenet). 16-bit
 *     images are first made 8-bit as Pillow opens them: grey (I;16) clipped, min(v, 255);
 *     RGB / RGBA / grey+alpha the high byte, v >> 8 (a 16-bit PPM, where Pillow rounds
 *     v * 255 / maxval, can differ by 1/255). */
vg_status vg_image_resize_float(const vg_image *src, int w, int h, float *out);
vg_status vg_image_float_transform(const vg_image *im, float *out, int c, int h, int w, void *user);
vg_status vg_image_float_imagenet_transform(const vg_image *im, float *out, int c, int h, int w, void *user);
/* ==== end of transforms ==== */
#endif
