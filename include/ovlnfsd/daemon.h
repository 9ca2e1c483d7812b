/*
 * daemon.h - how ovlnfsd lives as a system daemon: readiness and status for
 * systemd (notify.c), being found by plain mounts through port 111
 * (rpcbind.c), and the Prometheus metrics endpoint (metrics.c).
 *
 * Threads: everything here runs on the loop (main) thread unless a
 * function says otherwise.
 */
#ifndef OVLNFSD_DAEMON_H
#define OVLNFSD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "ovlnfsd/server.h"

/* --- notify.c: sd_notify (no-ops when built without libsystemd) --- */

/*
 * Every export serves: READY=1 with a STATUS= line, and a timer (unref'd,
 * never keeping the loop alive) that refreshes STATUS= when the number of
 * client connections changes. Logs once when NOTIFY_SOCKET is set but the
 * build has no libsystemd.
 */
void onfs_notify_ready(struct onfs_server *srv);
/* SIGHUP: RELOADING=1 before the reload, READY=1 (and STATUS=) after. */
void onfs_notify_reloading(void);
void onfs_notify_reloaded(struct onfs_server *srv);
/* SIGTERM/SIGINT: STOPPING=1; stops the status timer. */
void onfs_notify_stopping(void);

/* transport.c: open TCP connections (STATUS=, metrics). */
unsigned onfs_transport_nconns(const struct onfs_server *srv);

#endif
