/*
 * basewatch.h - the periodic probe of lower roots replaced in place, and
 * the queue that runs base moves on the worker pool (server/basewatch.c).
 * Loop thread only.
 */
#ifndef OVLNFSD_BASEWATCH_H
#define OVLNFSD_BASEWATCH_H

#include "ovlnfsd/config.h"
#include "ovlnfsd/server.h"

/* Seconds between probes for cfg ([server] base_check_interval); 0: off. */
int onfs_basewatch_interval(const struct onfs_config *cfg);
/* Start the timer (a no-op when the interval is 0). */
void onfs_basewatch_start(struct onfs_server *srv);
/* Stop and close the timer; a probe in flight finishes and is dropped. */
void onfs_basewatch_stop(void);

/*
 * Move ex to the lowers (copied) on a worker, after the moves queued
 * before, as onfs_export_set_base does; flush: also flush its caches after.
 * done (may be NULL) runs on the loop after with set_base's result r (0
 * moved, 1 pinned, -1 with err). -1: out of memory.
 */
int onfs_base_move(uv_loop_t *loop, struct onfs_export *ex, char *const *lower, size_t n,
		   bool flush,
		   void (*done)(void *arg, struct onfs_export *ex, char *const *lower, size_t n,
				int r, const char *err),
		   void *arg);
/* A move of ex (to these lowers; NULL: to any) queued or running? */
bool onfs_base_move_pending(const struct onfs_export *ex, char *const *lower, size_t n);

#endif
