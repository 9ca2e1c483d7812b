/*
 * main.c - argv, signals, loop start and stop; nothing else.
 *
 * Main thread only. It owns the uv loop, the config (changed only by a
 * SIGHUP reload, on this thread) and the export instances (closed here
 * after the loop has drained). Never serves a request itself and never
 * blocks once the loop runs, except that a reload opens the exports added
 * to the config file (layer checks, work area scrub) on the loop thread:
 * a rare, operator-triggered pause. A new lowerdir (a base move, which
 * waits for the export's calls to drain) goes to the worker pool
 * (basewatch.c, onfs_base_move).
 *
 * SIGHUP re-reads the -c file: the access rules of exports that keep their
 * name and layers are replaced atomically (access.c), new exports are
 * opened and served; removed exports and changed layers need a restart
 * (logged). A file with an error changes nothing (the error is logged).
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

#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/basewatch.h"
#include "ovlnfsd/ctl.h"
#include "ovlnfsd/daemon.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

#define DEMO_DIR "demo-overlay"
#define STOP_GRACE_MS 5000

struct main_state {
	uv_loop_t loop;
	struct onfs_server srv;
	struct onfs_config *cfg; /* main's; exports[] grow on reload */
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

/* One line per export: who may use it and as whom. */
static void log_rules(const struct onfs_export_conf *ec)
{
	char clients[512] = "any client";
	size_t len = 0;

	for (size_t i = 0; i < ec->nclients && len < sizeof(clients) - 1; i++) {
		int n = snprintf(clients + len, sizeof(clients) - len, "%s%s", i ? " " : "",
				 ec->clients[i].text);

		if (n < 0)
			break;
		len += (size_t)n;
	}
	onfs_info("export '%s' (%s): clients %s; access %s; squash %s (anon %u:%u)%s",
		  ec->name, ec->path, clients, ec->readonly ? "ro" : "rw (as the layers allow)",
		  ec->squash == ONFS_SQUASH_ROOT ? "root" :
		  ec->squash == ONFS_SQUASH_ALL ? "all" : "none",
		  (unsigned)ec->anonuid, (unsigned)ec->anongid,
		  ec->secure ? "; secure (source port < 1024)" : "");
}

static int publish_rules(struct onfs_export *ex, const struct onfs_export_conf *ec)
{
	struct onfs_access_rules *r = onfs_access_rules_new(ec);

	if (!r)
		return -ENOMEM;
	log_rules(ec);
	return onfs_access_publish(ex, r);
}

static struct onfs_export_conf *conf_by_name(struct onfs_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nexports; i++)
		if (cfg->exports[i].name && strcmp(cfg->exports[i].name, name) == 0)
			return &cfg->exports[i];
	return NULL;
}

static bool str_same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Move the access rules of src into dst (same export, new file). */
static void take_rules(struct onfs_export_conf *dst, struct onfs_export_conf *src)
{
	free(dst->clients);
	dst->clients = src->clients;
	dst->nclients = src->nclients;
	src->clients = NULL;
	src->nclients = 0;
	dst->readonly = src->readonly;
	dst->squash = src->squash;
	dst->anonuid = src->anonuid;
	dst->anongid = src->anongid;
	dst->secure = src->secure;
	dst->line = src->line;
}

/* Does b differ from a only in lowerdir (a base update)? */
static bool lowers_only_differ(const struct onfs_export_conf *a, const struct onfs_export_conf *b)
{
	struct onfs_export_conf t = *a;

	memcpy(t.lowerdir, b->lowerdir, sizeof(t.lowerdir));
	t.nlower = b->nlower;
	return !onfs_config_layers_differ(&t, b);
}

/*
 * A base move asked by a reload ended (loop thread): the export serves the
 * new lowers (moved or waiting for its pinned upper), so the config records
 * them and the next reload compares against them; on failure it keeps the
 * old ones, and the same file reloaded tries again.
 */
static void base_moved(void *arg, struct onfs_export *ex, char *const *lower, size_t n, int r,
		       const char *err)
{
	struct main_state *m = arg;
	struct onfs_export_conf *oe = conf_by_name(m->cfg, onfs_export_name(ex));
	char *copy[ONFS_MAX_LOWER] = { 0 };

	if (r < 0) {
		onfs_warn("reload: export '%s': new lowerdir not taken: %s; serving it unchanged",
			  onfs_export_name(ex), err);
		return;
	}
	if (!oe)
		return;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(lower[i]);
		if (!copy[i]) {
			for (size_t k = 0; k < i; k++)
				free(copy[k]);
			onfs_err("reload: export '%s': out of memory recording its new lowerdir",
				 oe->name);
			return;
		}
	}
	for (size_t i = 0; i < oe->nlower; i++)
		free(oe->lowerdir[i]);
	memcpy(oe->lowerdir, copy, sizeof(oe->lowerdir));
	oe->nlower = n;
}

/* SIGHUP: see the comment at the top. Loop thread. */
static void reload(struct main_state *m)
{
	struct onfs_config *cur = m->cfg;
	struct onfs_config nc = { 0 };
	struct onfs_export *opened[ONFS_MAX_EXPORTS];
	size_t open_idx[ONFS_MAX_EXPORTS]; /* index in nc.exports */
	size_t nopened = 0, updated = 0;
	char err[1024];

	if (!cur->config_file) {
		onfs_warn("SIGHUP: no config file (-c) to reload; ignored");
		return;
	}
	if (onfs_config_load_file(cur->config_file, &nc, err, sizeof(err)) < 0) {
		onfs_err("reload: %s; keeping the current configuration", err);
		goto out;
	}
	/* new exports must not collide with any export still served */
	for (size_t i = 0; i < nc.nexports; i++) {
		struct onfs_export_conf *ne = &nc.exports[i];

		if (conf_by_name(cur, ne->name))
			continue;
		for (size_t j = 0; j < cur->nexports; j++) {
			const struct onfs_export_conf *oe = &cur->exports[j];

			const char *key;

			if (onfs_config_check_template_pair(ne, oe, &key, err, sizeof(err)) < 0) {
				onfs_err("reload: %s:%d: %s; keeping the current configuration",
					 cur->config_file, ne->line, err);
				goto out_close;
			}
			if (str_same(ne->path, oe->path) || str_same(ne->upperdir, oe->upperdir) ||
			    str_same(ne->workdir, oe->workdir) || str_same(ne->upperdir, oe->workdir) ||
			    str_same(ne->workdir, oe->upperdir)) {
				onfs_err("reload: %s:%d: new [export %s] shares its path or layers "
					 "with the served export '%s' (restart needed to swap them); "
					 "keeping the current configuration",
					 cur->config_file, ne->line, ne->name, oe->name);
				goto out_close;
			}
		}
		if (cur->nexports + nopened >= ONFS_MAX_EXPORTS) {
			onfs_err("reload: more than %d exports; keeping the current configuration",
				 ONFS_MAX_EXPORTS);
			goto out_close;
		}
		if (onfs_export_open(ne, cur->state_dir, &opened[nopened], err, sizeof(err)) < 0) {
			onfs_err("reload: %s:%d: export '%s': %s; keeping the current configuration",
				 cur->config_file, ne->line, ne->name, err);
			goto out_close;
		}
		open_idx[nopened++] = i;
	}

	/* commit: nothing below fails but for memory */
	for (size_t j = 0; j < cur->nexports; j++) {
		struct onfs_export_conf *oe = &cur->exports[j];
		struct onfs_export_conf *ne = conf_by_name(&nc, oe->name);

		if (!ne) {
			onfs_warn("reload: export '%s' is no longer in %s: still served until a "
				  "restart", oe->name, cur->config_file);
			continue;
		}
		if (onfs_config_layers_differ(oe, ne) && lowers_only_differ(oe, ne)) {
			/*
			 * A base update: moved, or left waiting for a pinned upper
			 * (base.c), on a worker; the config records the new lowers
			 * once the move has taken them (base_moved).
			 */
			if (onfs_base_move_pending(m->srv.exports[j], ne->lowerdir, ne->nlower)) {
				onfs_info("reload: export '%s': its move to the new lowerdir is "
					  "still running", oe->name);
			} else if (onfs_base_move(&m->loop, m->srv.exports[j], ne->lowerdir,
						  ne->nlower, false, base_moved, m) < 0) {
				onfs_warn("reload: export '%s': new lowerdir not taken: out of "
					  "memory; serving it unchanged", oe->name);
				continue;
			}
		} else if (onfs_config_layers_differ(oe, ne)) {
			onfs_warn("reload: export '%s': path, layers or owner changed: restart "
				  "needed; serving it unchanged", oe->name);
			continue;
		}
		if (!onfs_base_move_pending(m->srv.exports[j], NULL, 0))
			onfs_layers_base_probe(m->srv.exports[j]); /* else the move records it */
		take_rules(oe, ne);
		if (publish_rules(m->srv.exports[j], oe) < 0)
			onfs_err("reload: export '%s': out of memory; old rules kept", oe->name);
		else
			updated++;
	}
	for (size_t k = 0; k < nopened; k++) {
		size_t n = cur->nexports;

		cur->exports[n] = nc.exports[open_idx[k]];
		memset(&nc.exports[open_idx[k]], 0, sizeof(nc.exports[0]));
		if (publish_rules(opened[k], &cur->exports[n]) < 0) {
			/* cannot happen with n < ONFS_MAX_EXPORTS but for memory */
			onfs_err("reload: export '%s': out of memory; not served",
				 cur->exports[n].name);
			onfs_export_close(opened[k]);
			nc.exports[open_idx[k]] = cur->exports[n]; /* freed with nc */
			memset(&cur->exports[n], 0, sizeof(cur->exports[n]));
			continue;
		}
		m->srv.exports[n] = opened[k];
		cur->nexports = n + 1;
		/* workers read nexports without a lock: the slot is filled first */
		__atomic_store_n(&m->srv.nexports, n + 1, __ATOMIC_RELEASE);
		onfs_info("reload: export '%s' (%s) added", cur->exports[n].name,
			  cur->exports[n].path);
	}
	onfs_info("reload: %s: rules of %zu export(s) updated, %zu added", cur->config_file,
		  updated, nopened);
	for (size_t j = 0; j < cur->nexports; j++)
		onfs_instance_log(m->srv.exports[j]); /* templated lines and their instances */
	nopened = 0;
out_close:
	while (nopened > 0)
		onfs_export_close(opened[--nopened]);
out:
	onfs_config_free(&nc);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct main_state *m = s->data;

	if (signum == SIGHUP) {
		if (!m->srv.stopping) {
			onfs_notify_reloading();
			reload(m);
			onfs_notify_reloaded(&m->srv);
		}
		return;
	}
	if (m->srv.stopping)
		return;
	onfs_info("%s: stopping", strsignal(signum));
	onfs_notify_stopping();
	onfs_basewatch_stop();
	onfs_metrics_stop();
	onfs_ctl_stop(&m->srv);
	m->srv.stopping = true;
	onfs_transport_stop(&m->srv);
	onfs_nlm_stop(&m->srv);
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
	if (cfg.check_config) {
		ret = onfs_check_config(cfg.config_file);
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
	m.cfg = &cfg;

	for (opened = 0; opened < cfg.nexports; opened++) {
		if (onfs_export_open(&cfg.exports[opened], cfg.state_dir,
				     &m.srv.exports[opened], err, sizeof(err)) < 0) {
			onfs_err("export '%s': %s", cfg.exports[opened].name, err);
			goto out_exports;
		}
		if (publish_rules(m.srv.exports[opened], &cfg.exports[opened]) < 0) {
			onfs_err("export '%s': out of memory", cfg.exports[opened].name);
			opened++;
			goto out_exports;
		}
	}
	m.srv.nexports = opened;

	/* the control socket of ovlnfsctl (ctl.c): up before the port file says ready */
	if (onfs_ctl_start(&m.srv, err, sizeof(err)) < 0) {
		onfs_err("%s", err);
		goto out_exports;
	}
	onfs_portmap_plan(&cfg);
	if (onfs_transport_start(&m.srv, err, sizeof(err)) < 0) {
		onfs_err("%s", err);
		onfs_ctl_stop(&m.srv); /* static handle, no callback: no loop run needed */
		goto out_exports;
	}
	if (cfg.port_file && write_port_file(cfg.port_file, m.srv.port) < 0) {
		onfs_err("cannot write port file '%s': %s", cfg.port_file, strerror(errno));
		m.srv.stopping = true;
		onfs_transport_stop(&m.srv);
		onfs_ctl_stop(&m.srv);
		uv_run(&m.loop, UV_RUN_DEFAULT);
		goto out_exports;
	}
	/* the lock manager: NSM state, notify of the previous run's holders, grace */
	if (onfs_nlm_start(&m.srv, err, sizeof(err)) < 0) {
		onfs_err("%s", err);
		m.srv.stopping = true;
		onfs_transport_stop(&m.srv);
		onfs_nlm_stop(&m.srv);
		onfs_ctl_stop(&m.srv);
		uv_run(&m.loop, UV_RUN_DEFAULT);
		goto out_exports;
	}

	if (onfs_metrics_start(&m.srv, err, sizeof(err)) < 0) {
		onfs_err("%s", err);
		m.srv.stopping = true;
		onfs_transport_stop(&m.srv);
		onfs_ctl_stop(&m.srv);
		uv_run(&m.loop, UV_RUN_DEFAULT);
		goto out_exports;
	}
	onfs_portmap_announce(&m.srv);
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
	onfs_notify_ready(&m.srv);
	onfs_basewatch_start(&m.srv);

	uv_run(&m.loop, UV_RUN_DEFAULT);

	if (m.timed_out) {
		/*
		 * Workers may still be inside an export: closing it under them
		 * would be a use-after-free. Exit and let the kernel clean up.
		 */
		onfs_portmap_withdraw();
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
	onfs_portmap_withdraw();
	onfs_metrics_free();
	onfs_nlm_free(&m.srv);
	opened = m.srv.nexports > opened ? m.srv.nexports : opened; /* reload added some */
	while (opened > 0)
		onfs_export_close(m.srv.exports[--opened]);
	onfs_access_cleanup();
out_cfg:
	onfs_config_free(&cfg);
	return ret;
}
