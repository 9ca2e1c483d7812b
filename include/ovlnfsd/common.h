/*
 * common.h - small helpers shared by every server file: logging, errno
 * extensions for NFS-only conditions, container_of.
 *
 * Any thread may call these. Logging is line-buffered to stderr (or syslog
 * later); it never blocks on the network.
 */
#ifndef OVLNFSD_COMMON_H
#define OVLNFSD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>

/*
 * NFS-only conditions carried as negative errno values inside the server.
 * The numbers are the Linux kernel's own (include/linux/errno.h) so that a
 * trace reads the same as knfsd's.
 */
#define ONFS_EBADHANDLE 521 /* malformed handle: wrong length or version */
#define ONFS_ENOTSYNC 522   /* SETATTR guard mismatch */
#define ONFS_EBADCOOKIE 523 /* READDIR cookie cannot be resumed */
#define ONFS_ENOTSUPP 524
#define ONFS_ETOOSMALL 525  /* READDIR reply cannot hold one entry */
#define ONFS_ESERVERFAULT 526
#define ONFS_EBADTYPE 527
#define ONFS_EJUKEBOX 528

#define ONFS_CONTAINER_OF(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define ONFS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum onfs_log_level { ONFS_LOG_ERR = 0, ONFS_LOG_WARN, ONFS_LOG_INFO, ONFS_LOG_DEBUG };

/* Set once at startup by main.c before any thread starts. */
extern int onfs_log_verbosity;

void onfs_log(enum onfs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define onfs_err(...) onfs_log(ONFS_LOG_ERR, __VA_ARGS__)
#define onfs_warn(...) onfs_log(ONFS_LOG_WARN, __VA_ARGS__)
#define onfs_info(...) onfs_log(ONFS_LOG_INFO, __VA_ARGS__)
#define onfs_debug(...)                                   \
	do {                                              \
		if (onfs_log_verbosity >= ONFS_LOG_DEBUG) \
			onfs_log(ONFS_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
