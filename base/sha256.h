/* sha256.h — SHA-256 (FIPS 180-4) of memory and of files, for checking downloaded weights
 * against their published hashes (scripts/tables/weights.json).
 *
 *   vg_sha256 h; vg_sha256_init(&h); vg_sha256_update(&h, buf, n); ...
 *   uint8_t d[32]; vg_sha256_final(&h, d);
 *   char hex[65]; vg_sha256_file("resnet18-f37072fd.pth", hex);   // lower-case hex */
#ifndef VG_SHA256_H
#define VG_SHA256_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
  uint32_t h[8];
  uint64_t nbytes;          /* bytes hashed so far */
  uint8_t buf[64];
  size_t nbuf;
} vg_sha256;

void vg_sha256_init(vg_sha256 *s);
void vg_sha256_update(vg_sha256 *s, const void *data, size_t n);
void vg_sha256_final(vg_sha256 *s, uint8_t out[32]);
/* one call: out = SHA-256(data[0..n)) */
void vg_sha256_buf(const void *data, size_t n, uint8_t out[32]);
/* 32 bytes -> 64 lower-case hex digits + NUL */
void vg_sha256_hex(const uint8_t d[32], char hex[65]);
/* The hash of a regular file (read in chunks; vg_file_open_read's checks) as hex. */
vg_status vg_sha256_file(const char *path, char hex[65]);
#endif
