/* test_sha256.c — base/sha256.h against the FIPS 180-4 / NIST CAVS example vectors ("", "abc",
 * the 448- and 896-bit messages, one million 'a'), chunked updates across every split point
 * (the block boundary and the 55/56/64-byte padding edges), and vg_sha256_file on a file
 * and on what is not a regular file. */
#include "tests/vgtest.h"
#include "base/sha256.h"
#include <sys/stat.h>
#include <unistd.h>

static const char *hex_of(const void *p, size_t n) {
  static char hex[65];
  uint8_t d[32];
  vg_sha256_buf(p, n, d);
  vg_sha256_hex(d, hex);
  return hex;
}

int main(void) {
  static const struct { const char *msg, *want; } V[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
  };
  for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
    const char *h = hex_of(V[i].msg, strlen(V[i].msg));
    VG_CHECK(!strcmp(h, V[i].want), "FIPS vector %zu (%zu bytes): %s", i, strlen(V[i].msg), h);
  }
  /* one million 'a', fed in uneven pieces */
  vg_sha256 s;
  vg_sha256_init(&s);
  char a[1000];
  memset(a, 'a', sizeof a);
  size_t left = 1000000, piece = 1;
  while (left) {
    size_t k = piece < left ? piece : left;
    if (k > sizeof a) k = sizeof a;
    vg_sha256_update(&s, a, k);
    left -= k;
    piece = piece * 7 % 997 + 1;
  }
  uint8_t d[32];
  char hex[65];
  vg_sha256_final(&s, d);
  vg_sha256_hex(d, hex);
  VG_CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
           "FIPS vector: one million 'a' in uneven pieces: %s", hex);
  /* every split of messages around the padding edges gives the one-shot hash */
  uint8_t msg[130];
  for (int i = 0; i < 130; i++) msg[i] = (uint8_t)(i * 37 + 11);
  int bad = 0;
  for (size_t n = 0; n <= 130; n++) {
    uint8_t one[32];
    vg_sha256_buf(msg, n, one);
    for (size_t cut = 0; cut <= n; cut++) {
      vg_sha256_init(&s);
      vg_sha256_update(&s, msg, cut);
      vg_sha256_update(&s, msg + cut, n - cut);
      vg_sha256_final(&s, d);
      bad += memcmp(d, one, 32) != 0;
    }
  }
  VG_CHECK(bad == 0, "two-piece updates at every cut of 0..130-byte messages = one shot (%d differ)", bad);
  /* lengths 55, 56, 63, 64 differ from each other (the padding block logic) */
  char h55[65], h56[65];
  strcpy(h55, hex_of(msg, 55));
  strcpy(h56, hex_of(msg, 56));
  VG_CHECK(strcmp(h55, h56) != 0, "55 and 56 bytes hash differently");

  /* files */
  char dir[] = "/tmp/vg_sha256_XXXXXX";
  VG_CHECK(mkdtemp(dir) != NULL, "temp folder");
  char path[256];
  snprintf(path, sizeof path, "%s/abc.bin", dir);
  FILE *f = fopen(path, "wb");
  if (f) { fputs("abc", f); fclose(f); }
  char fh[65];
  VG_CHECK(vg_sha256_file(path, fh) == VG_OK && !strcmp(fh, V[1].want), "vg_sha256_file(\"abc\") = %s", fh);
  snprintf(path, sizeof path, "%s/none.bin", dir);
  VG_CHECK(vg_sha256_file(path, fh) != VG_OK && strstr(vg_last_error(), "none.bin") && fh[0] == 0,
           "a missing file: an error naming it (%s)", vg_last_error());
  VG_CHECK(vg_sha256_file(dir, fh) == VG_ERR_IO || vg_last_status() != VG_OK, "a folder is refused (%s)", vg_last_error());
  vg_test_tmp_done(dir);
  return vg_test_finish();
}
