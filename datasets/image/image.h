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
#include <stddef.h>
#include <stdint.h>
#include "tensor/status.h"

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

/* zlib stream (RFC 1950) inflate with Adler-32 check; exact_size = the size the caller
 * expects: anything else (shorter or longer output) is an error. */
vg_status vg_zlib_inflate(const uint8_t *in, size_t n, uint8_t *out, size_t exact_size);
/* raw deflate (RFC 1951); *out_n = bytes produced, never more than cap. */
vg_status vg_inflate_raw(const uint8_t *in, size_t n, size_t *consumed, uint8_t *out, size_t cap, size_t *out_n);
/* zlib stream writer (stored or fixed-Huffman blocks are fine) for the PNG encoder. */
vg_status vg_zlib_deflate(const uint8_t *in, size_t n, uint8_t **out, size_t *out_n);
uint32_t vg_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t vg_adler32(uint32_t adler, const uint8_t *p, size_t n);

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

/* Decodes by content (PNG/JPEG/BMP/PGM/PPM/TIFF), from memory or a file; errors name the file. */
vg_status vg_image_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim);
vg_status vg_image_load(const char *path, vg_image *out, const vg_image_limits *lim);
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
/* ==== end of transforms ==== */
#endif
