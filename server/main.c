/*
 * main.c - argv, signals, loop start and stop; nothing else.
 *
 * Main thread only. It owns the uv loop, the config (const once parsed)
 * and the export instances (closed here after the loop has drained).
 * Never serves a request itself and never blocks once the loop runs.
 *
 * Exit status: 0 after a clean stop, --help or --version; 2 for a command
 * line error; 1 for any other startup error (missing layer, port in use).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

#define DEMO_DIR "demo-overlay"
#define STOP_GRACE_MS 5000

struct main_state {
	uv_loop_t loop;
	struct onfs_server srv;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t grace;
	bool timed_out;
};

/* Write the port to FILE.tmp then rename: a test polling FILE never reads half. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	char buf[16];
	int fd, n;
	int ret = -1;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto out;
	n = snprintf(buf, sizeof(buf), "%u\n", port);
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	return ret;
}

static void grace_cb(uv_timer_t *t)
{
	struct main_state *m = ONFS_CONTAINER_OF(t, struct main_state, grace);

	onfs_warn("in-flight requests did not finish within %d ms; stopping anyway",
		  STOP_GRACE_MS);
	m->timed_out = true;
	uv_stop(&m->loop);
}

static void close_noop(uv_handle_t *h)
{
	(void)h;
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct main_state *m = s->data;

	if (signum == SIGHUP) {
		onfs_warn("SIGHUP: config reload is not supported yet; ignored");
		return;
	}
	if (m->srv.stopping)
		return;
	onfs_info("%s: stopping", strsignal(signum));
	m->srv.stopping = true;
	onfs_transport_stop(&m->srv);
	uv_close((uv_handle_t *)&m->sigterm, close_noop);
	uv_close((uv_handle_t *)&m->sigint, close_noop);
	uv_close((uv_handle_t *)&m->sighup, close_noop);
	/*
	 * The loop returns by itself once the transport has closed every
	 * handle. The grace timer is unref'd so it never keeps it alive.
	 */
	uv_timer_start(&m->grace, grace_cb, STOP_GRACE_MS, 0);
	uv_unref((uv_handle_t *)&m->grace);
}

/* How a client on this machine reaches the listener. */
static void client_host(const char *listen_host, char *buf, size_t cap)
{
	if (!strcmp(listen_host, "0.0.0.0"))
		snprintf(buf, cap, "127.0.0.1");
	else if (!strcmp(listen_host, "::"))
		snprintf(buf, cap, "[::1]");
	else if (strchr(listen_host, ':'))
		snprintf(buf, cap, "[%s]", listen_host);
	else
		snprintf(buf, cap, "%s", listen_host);
}

static void print_demo_help(const struct onfs_config *cfg, unsigned port)
{
	const char *path = cfg->exports[0].path;
	char host[80];

	client_host(cfg->listen_host, host, sizeof(host));
	printf("\novlnfsd demo: serving ./%s on %s port %u (NFSv3 and MOUNT v3, TCP and UDP)\n\n",
	       DEMO_DIR, host, port);
	printf("libnfs URL:\n  nfs://%s%s?nfsport=%u&mountport=%u&version=3\n",
	       host, path, port, port);
	printf("  e.g. nfs-ls \"nfs://%s%s?nfsport=%u&mountport=%u&version=3\"\n\n",
	       host, path, port, port);
	printf("Linux mount (as root):\n"
	       "  mount -t nfs -o vers=3,proto=tcp,port=%u,mountport=%u,nolock %s:%s /mnt\n\n",
	       port, port, host, path);
	printf("Stop with Ctrl-C (SIGINT) or SIGTERM.\n\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct main_state m; /* zeroed; big enough to keep off the stack */
	struct onfs_config cfg = { 0 };
	char err[1024] = "";
	char threads[16];
	int ret = 1;
	int r;
	size_t opened = 0;

	r = onfs_config_parse_args(argc, argv, &cfg, err, sizeof(err));
	if (r == 1) {
		ret = 0;
		goto out_cfg;
	}
	if (r < 0) {
		fprintf(stderr, "ovlnfsd: error: %s\n", err);
		ret = 2;
		goto out_cfg;
	}
	onfs_log_verbosity = ONFS_LOG_INFO + cfg.verbose;
	if (onfs_log_verbosity > ONFS_LOG_DEBUG)
		onfs_log_verbosity = ONFS_LOG_DEBUG;

	if (cfg.demo && onfs_demo_setup(DEMO_DIR, &cfg, err, sizeof(err)) < 0) {
		onfs_err("demo: %s", err);
		goto out_cfg;
	}

	/* libuv sizes its pool on the first uv_queue_work; set it before any */
	snprintf(threads, sizeof(threads), "%d", cfg.threads > 0 ? cfg.threads : 4);
	setenv("UV_THREADPOOL_SIZE", threads, 1);
	/* a client that goes away must not kill the server mid-write */
	signal(SIGPIPE, SIG_IGN);

	r = uv_loop_init(&m.loop);
	if (r < 0) {
		onfs_err("cannot create the event loop: %s", uv_strerror(r));
		goto out_cfg;
	}
	m.srv.loop = &m.loop;
	m.srv.cfg = &cfg;

	for (opened = 0; opened < cfg.nexports; opened++) {
		if (onfs_export_open(&cfg.exports[opened], cfg.state_dir,
				     &m.srv.exports[opened], err, sizeof(err)) < 0) {
			onfs_err("export '%s': %s", cfg.exports[opened].name, err);
			goto out_exports;
		}
	}
	m.srv.nexports = opened;

	if (onfs_transport_start(&m.srv, err, sizeof(err)) < 0) {
		onfs_err("%s", err);
		goto out_exports;
	}
	if (cfg.port_file && write_port_file(cfg.port_file, m.srv.port) < 0) {
		onfs_err("cannot write port file '%s': %s", cfg.port_file, strerror(errno));
		m.srv.stopping = true;
		onfs_transport_stop(&m.srv);
		uv_run(&m.loop, UV_RUN_DEFAULT);
		goto out_exports;
	}

	uv_signal_init(&m.loop, &m.sigterm);
	uv_signal_init(&m.loop, &m.sigint);
	uv_signal_init(&m.loop, &m.sighup);
	uv_timer_init(&m.loop, &m.grace);
	m.sigterm.data = m.sigint.data = m.sighup.data = &m;
	uv_signal_start(&m.sigterm, signal_cb, SIGTERM);
	uv_signal_start(&m.sigint, signal_cb, SIGINT);
	uv_signal_start(&m.sighup, signal_cb, SIGHUP);

	onfs_info("ovlnfsd %s ready on %s port %u: %zu export(s), %s worker threads",
		  ONFS_VERSION, cfg.listen_host, (unsigned)m.srv.port, cfg.nexports, threads);
	if (cfg.demo)
		print_demo_help(&cfg, m.srv.port);

	uv_run(&m.loop, UV_RUN_DEFAULT);

	if (m.timed_out) {
		/*
		 * Workers may still be inside an export: closing it under them
		 * would be a use-after-free. Exit and let the kernel clean up.
		 */
		ret = 0;
		goto out_cfg;
	}
	ret = 0;
	if (!uv_is_closing((uv_handle_t *)&m.grace))
		uv_close((uv_handle_t *)&m.grace, close_noop);
	uv_run(&m.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&m.loop) != 0)
		onfs_warn("event loop closed with handles still open");
	onfs_info("stopped");
out_exports:
	while (opened > 0)
		onfs_export_close(m.srv.exports[--opened]);
out_cfg:
	onfs_config_free(&cfg);
	return ret;
}
