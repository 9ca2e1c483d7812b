/*
 * notify.c - readiness and status for systemd (Type=notify) through
 * libsystemd's sd_notify: READY=1 once every export is open and the
 * listeners are bound, STATUS= with the exports and client connections,
 * RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM.
 *
 * Built without libsystemd (meson -Dsystemd=disabled, or no libsystemd-dev)
 * every call is a no-op; a NOTIFY_SOCKET in the environment is then logged
 * once so that a Type=notify unit does not time out silently.
 *
 * Loop thread only. Owns the status timer (unref'd: it never keeps the
 * loop alive, and is closed on stop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#if ONFS_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "ovlnfsd/common.h"
#include "ovlnfsd/daemon.h"

#define STATUS_EVERY_MS 5000

static uv_timer_t status_timer;
static bool timer_on;
static unsigned last_conns = ~0u;

#if ONFS_HAVE_SYSTEMD
static void notify(const char *msg)
{
	int r = sd_notify(0, msg);

	if (r < 0)
		onfs_warn("sd_notify: %s", strerror(-r));
}
#else
static void notify(const char *msg)
{
	static bool said;

	(void)msg;
	if (!said && getenv("NOTIFY_SOCKET")) {
		onfs_warn("NOTIFY_SOCKET is set but this ovlnfsd is built without libsystemd: "
			  "no readiness notification (use Type=simple or rebuild with "
			  "-Dsystemd=enabled)");
		said = true;
	}
}
#endif

static void status_line(struct onfs_server *srv, char *buf, size_t cap, const char *prefix)
{
	size_t nex = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);
	unsigned conns = onfs_transport_nconns(srv);

	last_conns = conns;
	snprintf(buf, cap, "%sSTATUS=Serving %zu export(s) on %s port %u; %u client connection(s)",
		 prefix, nex, srv->cfg && srv->cfg->listen_host ? srv->cfg->listen_host : "?",
		 (unsigned)srv->port, conns);
}

static void status_cb(uv_timer_t *t)
{
	struct onfs_server *srv = t->data;
	char buf[256];

	if (onfs_transport_nconns(srv) == last_conns)
		return;
	status_line(srv, buf, sizeof(buf), "");
	notify(buf);
}

void onfs_notify_ready(struct onfs_server *srv)
{
	char buf[256];

	status_line(srv, buf, sizeof(buf), "READY=1\n");
	notify(buf);
	if (!timer_on && getenv("NOTIFY_SOCKET") &&
	    uv_timer_init(srv->loop, &status_timer) == 0) {
		status_timer.data = srv;
		uv_timer_start(&status_timer, status_cb, STATUS_EVERY_MS, STATUS_EVERY_MS);
		uv_unref((uv_handle_t *)&status_timer);
		timer_on = true;
	}
}

void onfs_notify_reloading(void)
{
	char buf[96];
	struct timespec ts;

	/* MONOTONIC_USEC: what Type=notify-reload (systemd >= 253) wants with it */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof(buf), "RELOADING=1\nSTATUS=Reloading the configuration\n"
		 "MONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	notify(buf);
}

void onfs_notify_reloaded(struct onfs_server *srv)
{
	char buf[256];

	status_line(srv, buf, sizeof(buf), "READY=1\n");
	notify(buf);
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

void onfs_notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=Stopping: finishing requests in flight");
	if (timer_on) {
		uv_timer_stop(&status_timer);
		uv_close((uv_handle_t *)&status_timer, timer_closed);
		timer_on = false;
	}
}
