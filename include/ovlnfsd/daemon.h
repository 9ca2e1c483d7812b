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
#include <stdint.h>

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

/* --- rpcbind.c: port 111 (see the comment at its top) --- */
enum onfs_portmap_mode {
	ONFS_PORTMAP_NONE,     /* --portmap off, or not the standard port */
	ONFS_PORTMAP_GIVEN,    /* --portmap ADDR:PORT / portmap = ADDR:PORT */
	ONFS_PORTMAP_EMBEDDED, /* port 111 was free: portmap.c answers there */
	ONFS_PORTMAP_RPCBIND,  /* port 111 held: register with the system rpcbind */
};
/* Before the transport starts: may set cfg->portmap_host/port to LISTEN:111. */
enum onfs_portmap_mode onfs_portmap_plan(struct onfs_config *cfg);
/* After the listeners are bound: register with rpcbind if planned; log what happened. */
void onfs_portmap_announce(const struct onfs_server *srv);
/* At exit: unregister what rpcbind took from us (no-op otherwise). */
void onfs_portmap_withdraw(void);

/* --- metrics.c: Prometheus text over HTTP (see the comment at its top) --- */

/* Counted by workers too: relaxed atomics through onfs_metrics_add. */
struct onfs_metrics_shared {
	uint64_t bytes_read, bytes_written;
	uint64_t copyups, copyup_bytes, copyup_ns;
	uint64_t conns_accepted, conns_refused;
	uint64_t drc_hits, drc_waits;
	uint64_t whiteouts;
};
extern struct onfs_metrics_shared onfs_metrics;

static inline void onfs_metrics_add(uint64_t *counter, uint64_t v)
{
	__atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

/* A reply is on its way (dispatch.c, loop thread): count it by status and latency. */
void onfs_metrics_call_done(const struct onfs_call *c);
/* Listen on cfg->metrics_host:port (nothing when unset). 0, or <0 with err. */
int onfs_metrics_start(struct onfs_server *srv, char *err, size_t errlen);
/* Stop listening, cut off scrapes in progress (loop thread, on SIGTERM). */
void onfs_metrics_stop(void);
/* After the loop: free what the size cache holds. */
void onfs_metrics_free(void);

/* transport.c: open TCP connections (STATUS=, metrics). */
unsigned onfs_transport_nconns(const struct onfs_server *srv);

#endif
