/*
 * devfile.h: the device side's file primitives: whole-file reads with a ceiling and
 * crash-safe replacement (write a temporary, fsync, rename over, fsync the directory), so
 * a power cut leaves either the old file or the new one, never a torn one.
 */
#ifndef PX_DEVICE_DEVFILE_H
#define PX_DEVICE_DEVFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/buf.h"
#include "lib/err.h"

/* Replace path with n bytes of data, created with mode (e.g. 0600). */
int devfile_write_atomic(const char *path, const void *data, size_t n, mode_t mode, px_error *e);

/* Read all of path into out (its ceiling bounds the size: PX_ETOOBIG past it).
 * PX_ENOTFOUND when the file does not exist. */
int devfile_read(const char *path, px_buf *out, px_error *e);

/* mkdir -p with mode for each created level. */
int devfile_mkdirs(const char *dir, mode_t mode, px_error *e);

/* 1 if path exists. */
int devfile_exists(const char *path);

#endif
