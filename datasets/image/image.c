/* image.c — format dispatch by magic bytes, whole-file read/write helpers, and
 * vg_image_free. The codecs themselves live in png.c, jpeg.c, bmp.c, pnm.c, tiff.c. */
#include "datasets/image/internal.h"
#include "datasets/image/jpeg.h"
#include "base/file.h"
#include <stdarg.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

vg_status vg_image_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim) {
  return vg_image_decode_ex(buf, n, out, lim, NULL);
}

vg_status vg_image_decode_ex(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim,
                             unsigned *flags) {
  if (flags) *flags = 0;
  memset(out, 0, sizeof *out);
  /* PNG: also when the signature is damaged but recognisable (high bit stripped, a
   * letter changed), so the PNG decoder can say what is wrong with it. */
  if (n >= 4 && (buf[0] == 0x89 || ((buf[1] | 0x20) == 'p' && (buf[2] | 0x20) == 'n' && (buf[3] | 0x20) == 'g')))
    return vg_png_decode(buf, n, out, lim);
  if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return vg_jpeg_decode_flags(buf, n, out, lim, NULL, flags);
  if (n >= 2 && buf[0] == 'B' && buf[1] == 'M') return vg_bmp_decode(buf, n, out, lim);
  if (n >= 2 && buf[0] == 'P' && strchr("2356", buf[1]) && buf[1]) return vg_pnm_decode(buf, n, out, lim);
  if (n >= 4 && ((buf[0] == 'I' && buf[1] == 'I' && buf[2] == 42 && buf[3] == 0) ||
                 (buf[0] == 'M' && buf[1] == 'M' && buf[2] == 0 && buf[3] == 42)))
    return vg_tiff_decode(buf, n, out, lim);
  uint8_t b[4] = {0};
  memcpy(b, buf, n < 4 ? n : 4);
  return vg_fail(VG_ERR_UNSUPPORTED, "unknown image format (%zu bytes, starting %02x %02x %02x %02x)", n, b[0],
                 b[1], b[2], b[3]);
}

/* Regular files only (base/file.h): a directory, FIFO, socket or device is an error
 * naming what it is, and opening a FIFO never blocks. */
vg_status vg_image_read_file(const char *path, uint8_t **buf, size_t *n, size_t max_n) {
  return vg_file_read_all(path, max_n, buf, n);
}

/* Temp name, fsync, rename, fsync of the folder (base/file.h). */
vg_status vg_image_write_file(const char *path, const uint8_t *buf, size_t n) {
  return vg_file_write_atomic(path, buf, n);
}

/* Warnings (truncated images, skipped folder links): a handler, or stderr. */
static vg_image_warn_fn warn_fn;
static void *warn_user;

void vg_image_set_warning_handler(vg_image_warn_fn fn, void *user) {
  warn_fn = fn;
  warn_user = user;
}

void vg_image_warn(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (warn_fn) warn_fn(msg, warn_user);
  else fprintf(stderr, "vigil: warning: %s\n", msg);
}

vg_status vg_image_load(const char *path, vg_image *out, const vg_image_limits *lim) {
  return vg_image_load_ex(path, out, lim, 0, NULL);
}

/* Files may be larger than the decoded image (ancillary chunks, stored deflate, text
 * PNM), but not without bound: twice the decoded-size limit plus 1 MiB. */
vg_status vg_image_load_ex(const char *path, vg_image *out, const vg_image_limits *lim, int strict,
                           unsigned *flags) {
  if (flags) *flags = 0;
  memset(out, 0, sizeof *out);
  vg_image_limits l = vg_image_limits_resolve(lim);
  size_t max_file = l.max_bytes > (SIZE_MAX - ((size_t)1 << 20)) / 2 ? SIZE_MAX : 2 * l.max_bytes + ((size_t)1 << 20);
  uint8_t *buf;
  size_t n;
  vg_status st = vg_image_read_file(path, &buf, &n, max_file);
  if (st != VG_OK) return st;
  unsigned fl = 0;
  st = vg_image_decode_ex(buf, n, out, &l, &fl);
  free(buf);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  if (fl & VG_IMAGE_TRUNCATED) {
    if (strict) {
      vg_image_free(out);
      return vg_fail(VG_ERR_FORMAT, "%s: truncated image: the data end before the JPEG EOI marker (refused: "
                     "strict images)", path);
    }
    if (!flags)
      vg_image_warn("%s: truncated image: the data end before the JPEG EOI marker; the missing part "
                    "decodes as libjpeg fills it (grey or coarse)", path);
  }
  if (flags) *flags = fl;
  return VG_OK;
}

vg_status vg_png_save(const char *path, const vg_image *img) {
  uint8_t *buf;
  size_t n;
  vg_status st = vg_png_encode(img, &buf, &n);
  if (st != VG_OK) return vg_fail_prefix("%s", path);
  st = vg_image_write_file(path, buf, n);
  free(buf);
  return st;
}

void vg_image_free(vg_image *img) {
  if (!img) return;
  free(img->data);
  img->data = NULL;
  img->w = img->h = img->c = img->depth = 0;
}
