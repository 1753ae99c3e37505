/* image.c — format dispatch by magic bytes, whole-file read/write helpers, and
 * vg_image_free. The codecs themselves live in png.c, jpeg.c, bmp.c, pnm.c, tiff.c. */
#include "datasets/image/internal.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

vg_status vg_image_decode(const uint8_t *buf, size_t n, vg_image *out, const vg_image_limits *lim) {
  memset(out, 0, sizeof *out);
  /* PNG: also when the signature is damaged but recognisable (high bit stripped, a
   * letter changed), so the PNG decoder can say what is wrong with it. */
  if (n >= 4 && (buf[0] == 0x89 || ((buf[1] | 0x20) == 'p' && (buf[2] | 0x20) == 'n' && (buf[3] | 0x20) == 'g')))
    return vg_png_decode(buf, n, out, lim);
  if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return vg_jpeg_decode(buf, n, out, lim);
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

vg_status vg_image_read_file(const char *path, uint8_t **buf, size_t *n, size_t max_n) {
  *buf = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return vg_fail(VG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  vg_status st = VG_OK;
  uint8_t *data = NULL;
  if (fseeko(f, 0, SEEK_END) != 0) { st = vg_fail(VG_ERR_IO, "%s: cannot seek: %s", path, strerror(errno)); goto done; }
  off_t size = ftello(f);
  if (size < 0) { st = vg_fail(VG_ERR_IO, "%s: cannot tell size: %s", path, strerror(errno)); goto done; }
  if ((uint64_t)size > max_n) {
    st = vg_fail(VG_ERR_LIMIT, "%s: file is %lld bytes, over the limit of %zu", path, (long long)size, max_n);
    goto done;
  }
  rewind(f);
  data = malloc(size > 0 ? (size_t)size : 1);
  if (!data) { st = vg_fail(VG_ERR_NOMEM, "%s: out of memory reading %lld bytes", path, (long long)size); goto done; }
  if (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size) {
    st = vg_fail(VG_ERR_IO, "%s: read failed%s", path, ferror(f) ? "" : " (file shrank)");
    goto done;
  }
  *buf = data;
  *n = (size_t)size;
  data = NULL;
done:
  free(data);
  fclose(f);
  return st;
}

vg_status vg_image_write_file(const char *path, const uint8_t *buf, size_t n) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) return vg_fail(VG_ERR_NOMEM, "%s: out of memory", path);
  snprintf(tmp, plen + 32, "%s.tmp%ld", path, (long)getpid());
  vg_status st = VG_OK;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    st = vg_fail(VG_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
    return st;
  }
  if (n > 0 && fwrite(buf, 1, n, f) != n) st = vg_fail(VG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  if (st == VG_OK && fflush(f) != 0) st = vg_fail(VG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  if (st == VG_OK && fsync(fileno(f)) != 0) st = vg_fail(VG_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
  if (fclose(f) != 0 && st == VG_OK) st = vg_fail(VG_ERR_IO, "%s: close failed: %s", path, strerror(errno));
  if (st == VG_OK && rename(tmp, path) != 0)
    st = vg_fail(VG_ERR_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
  if (st != VG_OK) remove(tmp);
  free(tmp);
  return st;
}

/* Files may be larger than the decoded image (ancillary chunks, stored deflate, text
 * PNM), but not without bound: twice the decoded-size limit plus 1 MiB. */
vg_status vg_image_load(const char *path, vg_image *out, const vg_image_limits *lim) {
  memset(out, 0, sizeof *out);
  vg_image_limits l = vg_image_limits_resolve(lim);
  size_t max_file = l.max_bytes > (SIZE_MAX - ((size_t)1 << 20)) / 2 ? SIZE_MAX : 2 * l.max_bytes + ((size_t)1 << 20);
  uint8_t *buf;
  size_t n;
  vg_status st = vg_image_read_file(path, &buf, &n, max_file);
  if (st != VG_OK) return st;
  st = vg_image_decode(buf, n, out, &l);
  free(buf);
  if (st != VG_OK) vg_fail_prefix("%s", path);
  return st;
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
