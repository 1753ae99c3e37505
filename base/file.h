/* file.h — reading and writing whole files safely (part of tensor/, the bottom layer).
 *
 *   int fd; uint64_t size;
 *   if (vg_file_open_read(path, &fd, &size) != VG_OK) puts(vg_last_error());
 *   uint8_t *buf; size_t n;
 *   vg_file_read_all("x.json", 1 << 20, &buf, &n);          // refuses dirs, FIFOs, devices
 *   vg_file_write_atomic("state.json", text, len);           // temp name, fsync, rename, fsync dir
 *
 * Reading: only regular files are opened (the open never blocks on a FIFO), and a
 * directory, FIFO, socket or device gets an error naming what it is. Writing: the data go
 * to "<path>.tmp<pid>", are fsynced, renamed over <path>, and the directory is fsynced, so
 * a crash leaves either the old file or the new one, plus at most a stray *.tmp* file. */
#ifndef VG_FILE_H
#define VG_FILE_H
#include "base/status.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opens a regular file for reading (O_CLOEXEC); *size is its size in bytes. */
vg_status vg_file_open_read(const char *path, int *fd, uint64_t *size);
/* Reads a whole regular file of at most max_n bytes into a malloc'd buffer (*buf; one extra
 * zero byte after the data, so text can be parsed as a C string). VG_ERR_LIMIT when larger. */
vg_status vg_file_read_all(const char *path, size_t max_n, uint8_t **buf, size_t *n);
/* Writes n bytes atomically (see above). */
vg_status vg_file_write_atomic(const char *path, const void *buf, size_t n);
/* fsyncs the directory that holds path (after a rename into it). */
vg_status vg_file_fsync_dir(const char *path);
/* What kind of non-regular file st_mode is ("a directory", "a FIFO", ...), for messages. */
const char *vg_file_kind(unsigned mode);

/* mkdir -p: creates the folder path and every missing folder above it (mode 0755); folders
 * that exist are fine. VG_ERR_IO "<folder>: cannot create folder (<reason>)" naming the
 * first one that cannot be made, also when a non-folder is in the way. */
vg_status vg_mkdir_p(const char *path);
/* vg_mkdir_p of the folder part of path (what vg_path_dirname gives; nothing to make for
 * "name" or "/name"): the folders a file about to be written at path needs. */
vg_status vg_mkdir_parents(const char *path);
/* The folder part of path into buf (cap bytes): everything before the last '/' with the
 * file name's trailing slashes ignored: "a/b/c" -> "a/b", "a/b/" -> "a", "/x" -> "/",
 * "x" -> ".". false (buf "") when it does not fit. */
bool vg_path_dirname(const char *path, char *buf, size_t cap);

/* Fault injection for crash tests (always compiled in; one getenv on the first pass).
 * Each step of a durable write is a named point "<file name>.<phase>" (the file name
 * without its folder): vg_file_write_atomic and the safetensors writer pass
 *   <name>.tmp      the temp file is created, nothing written yet
 *   <name>.write    the data are written, not yet fsynced
 *   <name>.fsync    the temp file is fsynced and closed, not yet renamed
 *   <name>.rename   renamed into place, the folder not yet fsynced
 *   <name>.dirsync  the folder is fsynced (the write is complete)
 * and `vigil train` passes train_log.jsonl.append (before a log line is written),
 * train_log.jsonl.partial (half of the line is written when it fires) and
 * train_log.jsonl.sync (the log is fsynced before a checkpoint; a resume rewrites the log
 * through vg_file_write_atomic: train_log.jsonl.tmp, .write, ...).
 *   VIGIL_FAULT="<point>:<n>"   the process _exit(137)s (as kill -9 leaves it, no cleanup)
 *                               the n-th time (from 1) it passes <point>; "*" = any point
 *   VIGIL_FAULT_TRACE=<file>    appends each point passed, one name a line
 * Unset, a point costs one branch. */
/* true when this pass of the point is the one to fail: the caller may leave partial work,
 * then calls vg_fault_exit(). path: the file (its base name makes the point's name). */
bool vg_fault_fires(const char *path, const char *phase);
/* vg_fault_fires + vg_fault_exit. */
void vg_fault_point(const char *path, const char *phase);
/* _exit(137) without any cleanup, as a kill -9 would leave things. */
_Noreturn void vg_fault_exit(void);

#endif
