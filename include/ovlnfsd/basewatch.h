/*
 * basewatch.h - the periodic probe of lower roots replaced in place
 * (server/basewatch.c). Loop thread only.
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

#endif
