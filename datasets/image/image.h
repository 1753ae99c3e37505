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

/* Decodes by content (PNG/JPEG/...), from memory or a file; errors name the file. */
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
#endif
