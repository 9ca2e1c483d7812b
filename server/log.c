/*
 * log.c - onfs_log: one "ovlnfsd: LEVEL: message" line per call on stderr.
 *
 * Any thread may call it. Each line is formatted into a local buffer and
 * written with one write(2), so lines from different threads never
 * interleave (POSIX: writes up to PIPE_BUF are atomic on pipes; the lock
 * covers terminals and files). Never blocks on the network, never
 * allocates.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/common.h"

/* Set once by main.c before any thread starts; read-only afterwards. */
int onfs_log_verbosity = ONFS_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
	[ONFS_LOG_ERR] = "error",
	[ONFS_LOG_WARN] = "warning",
	[ONFS_LOG_INFO] = "info",
	[ONFS_LOG_DEBUG] = "debug",
};

void onfs_log(enum onfs_log_level lvl, const char *fmt, ...)
{
	char line[2048];
	size_t len = 0;
	int n;
	va_list ap;

	if ((int)lvl > onfs_log_verbosity)
		return;
	if ((unsigned)lvl >= ONFS_ARRAY_SIZE(level_names))
		lvl = ONFS_LOG_DEBUG;

	/* A timestamp helps only when following a verbose trace. */
	if (onfs_log_verbosity >= ONFS_LOG_DEBUG) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(line, sizeof(line), "[%5lld.%06ld] ", (long long)ts.tv_sec,
			     ts.tv_nsec / 1000);
		if (n > 0)
			len = (size_t)n;
	}
	n = snprintf(line + len, sizeof(line) - len, "ovlnfsd: %s: ", level_names[lvl]);
	if (n > 0)
		len += (size_t)n;
	if (len < sizeof(line)) {
		va_start(ap, fmt);
		n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
		va_end(ap);
		if (n > 0)
			len += (size_t)n;
	}
	/* Truncated lines keep room for the newline. */
	if (len > sizeof(line) - 1)
		len = sizeof(line) - 1;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	line[len++] = '\n';

	pthread_mutex_lock(&log_lock);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	pthread_mutex_unlock(&log_lock);
}
