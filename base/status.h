/* status.h — errors for user input and environment failures (part of tensor/, the
 * bottom of the stack; every module uses it).
 *
 *   vg_status st = vg_png_decode(buf, n, &img, NULL);
 *   if (st != VG_OK) fprintf(stderr, "%s\n", vg_last_error());
 *
 * Library code never exits and never prints: a failing public function returns a
 * vg_status (or NULL) and leaves a readable message, per thread, in vg_last_error().
 * Programmer errors (broken invariants) abort via VG_ASSERT / VG_ABORT with file:line. */
#ifndef VG_STATUS_H
#define VG_STATUS_H
#include <stdio.h>
#include <stdlib.h>

typedef enum {
  VG_OK = 0,
  VG_ERR_ARG,        /* bad argument: shape, dtype, dims, option */
  VG_ERR_IO,         /* open/read/write/rename failed */
  VG_ERR_FORMAT,     /* corrupt or malformed file contents */
  VG_ERR_UNSUPPORTED,/* valid but not supported (e.g. a PNG extension we refuse) */
  VG_ERR_LIMIT,      /* a size limit was exceeded (decompression bomb, huge header) */
  VG_ERR_NOMEM,      /* allocation failed */
  VG_ERR_NUMERIC,    /* NaN/Inf where a finite value is required */
  VG_ERR_DEVICE,     /* backend/device failure */
} vg_status;

/* Sets the thread's last error message (printf-style) and returns `st`, so
 *   return vg_fail(VG_ERR_FORMAT, "%s: bad CRC in chunk %s", path, name);        */
vg_status vg_fail(vg_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message: vg_fail_prefix("%s", path) turns "bad CRC" into
 * "file.png: bad CRC". Returns the last status. */
vg_status vg_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *vg_last_error(void);     /* "" when none */
vg_status vg_last_status(void);
void vg_clear_error(void);
const char *vg_status_name(vg_status st);

#define VG_ABORT(...) do { fprintf(stderr, "vigil: fatal at %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)
#define VG_ASSERT(cond) do { if (!(cond)) VG_ABORT("assertion failed: %s", #cond); } while (0)
#endif
