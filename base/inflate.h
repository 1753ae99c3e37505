/* inflate.h — zlib/deflate streams and their checksums (part of tensor/, the bottom layer,
 * for every format that needs them: PNG, TIFF, .pth zip archives).
 *
 *   uint8_t out[4096];
 *   if (vg_zlib_inflate(buf, n, out, sizeof out) != VG_OK) puts(vg_last_error());
 *   uint32_t crc = vg_crc32(0, data, len);
 *
 * Decoders never write past the size they are given and never read past the input. */
#ifndef VG_INFLATE_H
#define VG_INFLATE_H
#include "base/status.h"
#include <stddef.h>
#include <stdint.h>

/* zlib stream (RFC 1950) inflate with Adler-32 check; exact_size = the size the caller
 * expects: anything else (shorter or longer output) is an error. */
vg_status vg_zlib_inflate(const uint8_t *in, size_t n, uint8_t *out, size_t exact_size);
/* raw deflate (RFC 1951); *out_n = bytes produced, never more than cap. */
vg_status vg_inflate_raw(const uint8_t *in, size_t n, size_t *consumed, uint8_t *out, size_t cap, size_t *out_n);
/* zlib stream writer (stored or fixed-Huffman blocks are fine) for the PNG encoder. */
vg_status vg_zlib_deflate(const uint8_t *in, size_t n, uint8_t **out, size_t *out_n);
uint32_t vg_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t vg_adler32(uint32_t adler, const uint8_t *p, size_t n);
#endif
