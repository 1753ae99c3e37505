/* vgtest.h — the tiny test harness every tests/test_*.c uses.
 *
 *   VG_CHECK(cond, "what")             one OK / NOT OK row
 *   VG_CHECK_CLOSE(got, want, n, rtol, atol, "what")   elementwise, prints max error
 *   return vg_test_finish();           prints "N passed, N failed", exit code
 *
 * Every check asserts on values; a test that cannot fail is a bug. */
#ifndef VG_TEST_H
#define VG_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>
#include <stdbool.h>

extern int vg_test_passed, vg_test_failed;

/* Records one check: prints "OK what" or "NOT OK what (file:line)". Returns cond. */
int vg_test_check(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Compares n floats: |got-want| <= atol + rtol*|want| everywhere (NaN never passes).
 * Prints the max abs and rel error on the row. Returns 1 when all close. */
int vg_test_close(const float *got, const float *want, int64_t n, double rtol, double atol,
                  const char *file, int line, const char *what);

int vg_test_finish(void);        /* prints the closing line; returns the exit code */
int vg_test_long(void);          /* VIGIL_TEST_LONG=1 set: run slow cases too */

/* Path of a fixture (tests/fixtures/NAME) or test data (tests/data/NAME, in the repository),
 * resolved from VIGIL_ROOT or the current directory. Static buffer, valid until next call. */
const char *vg_test_fixture(const char *name);
const char *vg_test_shared(const char *name);

/* Runs a shell command with stderr merged into stdout; returns the output (malloc'd, NULL when
 * the command could not start) and sets *rc to its exit status, 128 + N when killed by signal N. */
char *vg_test_run(const char *cmd, int *rc);

/* The vigil program built beside the test (<BUILD>/vigil, from argv[0] = <BUILD>/tests/test_x)
 * as an absolute path in out; "" (and false) when it is not there. */
bool vg_test_find_vigil(const char *argv0, char *out, size_t cap);
/* Removes a test's temp folder (rm -rf), or keeps it and says so when VIGIL_TEST_KEEP=1. */
void vg_test_tmp_done(const char *dir);
/* vg_mkdir_p (base/file.h) with errors ignored: the checks that follow fail instead. */
void vg_test_mkdirs(const char *path);

#define VG_CHECK(cond, ...) vg_test_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define VG_CHECK_CLOSE(got, want, n, rtol, atol, what) \
  vg_test_close((got), (want), (n), (rtol), (atol), __FILE__, __LINE__, (what))
/* For a test that asks for allocations that must fail: under ASan they return NULL (as plain
 * malloc does) instead of aborting the program. Once at file scope. */
#if defined(__SANITIZE_ADDRESS__)
#define VG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VG_TEST_ASAN 1
#endif
#endif
#ifdef VG_TEST_ASAN
#define VG_TEST_ALLOCATOR_MAY_RETURN_NULL()                                                   \
  const char *__asan_default_options(void);                                                 \
  const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#else
#define VG_TEST_ALLOCATOR_MAY_RETURN_NULL()
#endif
#endif
