/*
 * ctl.c - the control socket STATE/ctl.sock (docs/operating.md): one
 * request line per connection from ovlnfsctl, one reply, then close.
 *
 *   request: COMMAND [ARG [LAYER]] [json]\n   (list, diff NAME, reset NAME,
 *            commit NAME LAYER)
 *   reply:   "ok\n" then the body, or "error: REASON\n"
 *
 * Only the server's own uid and root may talk to it: the socket is mode
 * 0600 and every connection's peer is checked with SO_PEERCRED.
 *
 * Threads: the listener, connections and writes live on the loop thread;
 * every request (walks of an upper, the renames of a reset) runs on a pool
 * worker, and a reset's trash is emptied by a second pool job afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/ctl.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

#define CTL_LINE_MAX 4096
#define CTL_INST_MAX 4096

struct ctl_conn {
	uv_pipe_t pipe;
	uv_work_t work;
	uv_write_t wr;
	char line[CTL_LINE_MAX];
	size_t len;
	bool refused; /* the peer is not allowed: out holds the refusal */
	struct onfs_export *exports[ONFS_MAX_EXPORTS]; /* snapshot taken on the loop */
	size_t nexports;
	struct onfs_export *reset_done; /* set by a reset: empty its trash */
	struct onfs_buf out;
};

struct trash_job {
	uv_work_t work;
	struct onfs_export *ex;
};

static struct {
	struct onfs_server *srv;
	uv_pipe_t lis;
	bool started;
	char path[4096];
} cs;

static void conn_closed(uv_handle_t *h)
{
	struct ctl_conn *c = ONFS_CONTAINER_OF((uv_pipe_t *)h, struct ctl_conn, pipe);

	free(c->out.p);
	free(c);
}

static void conn_close(struct ctl_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	conn_close(ONFS_CONTAINER_OF(w, struct ctl_conn, wr));
}

static void reply(struct ctl_conn *c)
{
	uv_buf_t b;

	if (c->out.oom) {
		free(c->out.p);
		c->out.p = strdup("error: out of memory\n");
		c->out.len = c->out.p ? strlen(c->out.p) : 0;
	}
	b = uv_buf_init(c->out.p ? c->out.p : (char *)"", (unsigned)c->out.len);
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, write_done) < 0)
		conn_close(c);
}

/* --- the requests, on a pool worker --- */

static struct onfs_export *find_export(struct ctl_conn *c, const char *name)
{
	const char *slash = strchr(name, '/');

	for (size_t i = 0; i < c->nexports; i++) {
		struct onfs_export *ex = c->exports[i];
		const char *n = onfs_export_name(ex);

		if (!slash && strcmp(n, name) == 0)
			return ex;
		if (slash && strlen(n) == (size_t)(slash - name) && !strncmp(n, name, strlen(n))) {
			struct onfs_export *found = NULL, **insts;
			size_t k;

			insts = calloc(CTL_INST_MAX, sizeof(*insts));
			if (!insts)
				return NULL;
			k = onfs_instance_list(ex, insts, CTL_INST_MAX);
			for (size_t j = 0; j < k && !found; j++)
				if (strcmp(onfs_export_name(insts[j]), name) == 0)
					found = insts[j];
			free(insts);
			return found;
		}
	}
	return NULL;
}

static void list_one(struct onfs_buf *b, struct onfs_export *ex, bool json, bool *first,
		     size_t ninst)
{
	struct onfs_layers_info in;
	uint64_t bytes, objects;
	char last[32] = "-", clients[32];
	unsigned version;
	bool pinned;
	int base;

	onfs_layers_info(ex, &in);
	onfs_layers_usage(ex, &bytes, &objects);
	base = onfs_layers_base(ex);
	version = onfs_layers_base_version(ex, &pinned);
	if (in.idle_s >= 0)
		snprintf(last, sizeof(last), "%llds ago", in.idle_s);
	/* a line: how many clients have an instance; an instance: its one client */
	snprintf(clients, sizeof(clients), "%zu", ninst);
	if (json) {
		onfs_buf_printf(b, "%s\n  {\"name\": ", *first ? "" : ",");
		onfs_buf_json_str(b, onfs_export_name(ex));
		onfs_buf_printf(b, ", \"kind\": \"%s\", \"path\": ", in.kind);
		onfs_buf_json_str(b, onfs_export_path(ex));
		onfs_buf_printf(b, ", \"clients\": %zu, \"upper\": ", ninst);
		if (in.upper)
			onfs_buf_json_str(b, in.upper);
		else
			onfs_buf_printf(b, "null");
		onfs_buf_printf(b, ", \"upper_bytes\": %llu, \"upper_objects\": %llu",
				(unsigned long long)bytes, (unsigned long long)objects);
		if (in.idle_s >= 0)
			onfs_buf_printf(b, ", \"last_request_s_ago\": %lld", in.idle_s);
		else
			onfs_buf_printf(b, ", \"last_request_s_ago\": null");
		onfs_buf_printf(b, ", \"readonly\": %s, \"readonly_reason\": ",
				in.readonly ? "true" : "false");
		if (in.ro_reason)
			onfs_buf_json_str(b, in.ro_reason);
		else
			onfs_buf_printf(b, "null");
		onfs_buf_printf(b, ", \"base_changed\": %s",
				base < 0 ? "null" : base ? "true" : "false");
		onfs_buf_printf(b, ", \"base_version\": %u, \"base_pinned\": %s", version,
				pinned ? "true" : "false");
		onfs_buf_printf(b, ", \"live\": %s, \"base\": [", in.live ? "true" : "false");
		for (size_t i = 0; i < in.nlowers; i++) {
			onfs_buf_printf(b, "%s", i ? ", " : "");
			onfs_buf_json_str(b, in.lowers[i]);
		}
		onfs_buf_printf(b, "]}");
	} else {
		onfs_buf_printf(b, "%-24s %-9s %7s %12llu %8llu %-12s %-10s v%-3u ",
				onfs_export_name(ex), in.kind, clients, (unsigned long long)bytes,
				(unsigned long long)objects, last, in.ro_reason ? "ro" : "rw",
				version);
		for (size_t i = 0; i < in.nlowers; i++)
			onfs_buf_printf(b, "%s%s", i ? ":" : "", in.lowers[i]);
		if (in.ro_reason)
			onfs_buf_printf(b, "  (read-only: %s)", in.ro_reason);
		if (base > 0)
			onfs_buf_printf(b, "  (base changed since the upper was made)");
		if (pinned)
			onfs_buf_printf(b, "  (pinned to base v%u: a new base waits for reset or "
					"rebase --force)", version);
		onfs_buf_printf(b, "\n");
	}
	*first = false;
}

static void do_list(struct ctl_conn *c, bool json)
{
	struct onfs_export **insts = calloc(CTL_INST_MAX, sizeof(*insts));
	struct onfs_buf *b = &c->out;
	bool first = true;

	if (!insts) {
		b->oom = true;
		return;
	}

	onfs_buf_printf(b, "ok\n");
	if (json)
		onfs_buf_printf(b, "{\"exports\": [");
	else
		onfs_buf_printf(b, "%-24s %-9s %7s %12s %8s %-12s %-10s %-4s %s\n", "NAME", "KIND",
				"CLIENTS", "UPPER-BYTES", "OBJECTS", "LAST", "STATE", "VER", "BASE");
	for (size_t i = 0; i < c->nexports; i++) {
		struct onfs_export *ex = c->exports[i];
		size_t k = onfs_instance_list(ex, insts, CTL_INST_MAX);

		list_one(b, ex, json, &first, onfs_export_templated(ex) ? k : 0);
		for (size_t j = 0; j < k; j++)
			list_one(b, insts[j], json, &first, 1);
	}
	if (json)
		onfs_buf_printf(b, "\n]}\n");
	free(insts);
}

static void work_cb(uv_work_t *w)
{
	struct ctl_conn *c = ONFS_CONTAINER_OF(w, struct ctl_conn, work);
	char *save = NULL, *cmd, *arg, *opt, *layer = NULL, err[PATH_MAX * 3];
	bool force = false;
	struct onfs_export *ex = NULL;
	bool json = false;
	int r;

	cmd = strtok_r(c->line, " \t", &save);
	arg = strtok_r(NULL, " \t", &save);
	opt = strtok_r(NULL, " \t", &save);
	if (arg && !strcmp(arg, "json") && !opt) {
		json = true;
		arg = NULL;
	} else if (opt && !strcmp(opt, "json")) {
		json = true;
		opt = NULL;
	} else if (opt) {
		/* commit NAME LAYER [json] */
		layer = opt;
		opt = strtok_r(NULL, " \t", &save);
		json = opt && !strcmp(opt, "json");
	}
	if (!cmd) {
		onfs_buf_printf(&c->out, "error: empty request\n");
		return;
	}
	if (!strcmp(cmd, "list")) {
		do_list(c, json);
		return;
	}
	if (strcmp(cmd, "diff") && strcmp(cmd, "reset") && strcmp(cmd, "commit") &&
	    strcmp(cmd, "rebase")) {
		onfs_buf_printf(&c->out, "error: unknown command '%s' (list, diff, reset, "
				"commit, rebase)\n", cmd);
		return;
	}
	if (!strcmp(cmd, "rebase") && layer && !strcmp(layer, "force")) {
		force = true;
		layer = NULL;
	}
	if (!strcmp(cmd, "commit") != !!layer) {
		onfs_buf_printf(&c->out, "error: %s\n", layer ? "only commit takes a LAYER"
							      : "commit needs EXPORT[/INSTANCE] LAYER");
		return;
	}
	if (!arg) {
		onfs_buf_printf(&c->out, "error: %s needs EXPORT[/INSTANCE]\n", cmd);
		return;
	}
	ex = find_export(c, arg);
	if (!ex) {
		onfs_buf_printf(&c->out, "error: no export or instance named '%s'\n", arg);
		return;
	}
	if (!strcmp(cmd, "diff")) {
		struct onfs_buf body = { 0 };

		if (onfs_export_templated(ex)) {
			onfs_buf_printf(&c->out, "error: '%s' is a templated line: name one of its "
					"instances (EXPORT/INSTANCE, see list)\n", arg);
			return;
		}
		if (!onfs_instance_upper(ex)) {
			onfs_buf_printf(&c->out, "error: '%s' has no upper layer\n", arg);
			return;
		}
		r = onfs_layers_diff(ex, json, &body);
		if (r < 0)
			onfs_buf_printf(&c->out, "error: diff of '%s': %s\n", arg, strerror(-r));
		else
			onfs_buf_printf(&c->out, "ok\n%.*s", (int)body.len, body.p ? body.p : "");
		free(body.p);
		return;
	}
	if (!strcmp(cmd, "rebase")) {
		struct onfs_buf body = { 0 };

		r = onfs_layers_rebase(ex, force, json, &body, err, sizeof(err));
		if (r < 0)
			onfs_buf_printf(&c->out, "error: rebase of '%s': %s\n", arg, err);
		else
			onfs_buf_printf(&c->out, "%.*s", (int)body.len, body.p ? body.p : "");
		free(body.p);
		return;
	}
	if (!strcmp(cmd, "commit")) {
		r = onfs_layers_commit(ex, cs.srv->cfg->layers_dir, layer, err, sizeof(err));
		if (r < 0) {
			onfs_buf_printf(&c->out, "error: commit of '%s': %s\n", arg, err);
			return;
		}
		c->reset_done = ex; /* the old index is in the trash */
		onfs_buf_printf(&c->out, "ok\n");
		if (json) {
			onfs_buf_printf(&c->out, "{\"commit\": ");
			onfs_buf_json_str(&c->out, arg);
			onfs_buf_printf(&c->out, ", \"layer\": ");
			onfs_buf_json_str(&c->out, layer);
			onfs_buf_printf(&c->out, ", \"layers_dir\": ");
			onfs_buf_json_str(&c->out, cs.srv->cfg->layers_dir);
			onfs_buf_printf(&c->out, "}\n");
		} else {
			onfs_buf_printf(&c->out, "%s: upper committed as layer %s/%s\n", arg,
					cs.srv->cfg->layers_dir, layer);
		}
		return;
	}
	/* reset */
	r = onfs_instance_reset(ex, err, sizeof(err));
	if (r < 0) {
		onfs_buf_printf(&c->out, "error: reset of '%s': %s\n", arg, err);
		return;
	}
	c->reset_done = ex;
	if (json)
		onfs_buf_printf(&c->out, "ok\n{\"reset\": ");
	else
		onfs_buf_printf(&c->out, "ok\n");
	if (json) {
		onfs_buf_json_str(&c->out, arg);
		onfs_buf_printf(&c->out, "}\n");
	} else {
		onfs_buf_printf(&c->out, "%s: reset to its base\n", arg);
	}
}

static void trash_work(uv_work_t *w)
{
	onfs_layers_trash_empty(ONFS_CONTAINER_OF(w, struct trash_job, work)->ex);
}

static void trash_done(uv_work_t *w, int status)
{
	(void)status;
	free(ONFS_CONTAINER_OF(w, struct trash_job, work));
}

static void after_work(uv_work_t *w, int status)
{
	struct ctl_conn *c = ONFS_CONTAINER_OF(w, struct ctl_conn, work);

	(void)status;
	if (c->reset_done) {
		struct trash_job *j = calloc(1, sizeof(*j));

		if (j) {
			j->ex = c->reset_done;
			if (uv_queue_work(cs.srv->loop, &j->work, trash_work, trash_done) < 0)
				free(j);
		}
	}
	reply(c);
}

/* --- the loop side --- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_conn *c = ONFS_CONTAINER_OF((uv_pipe_t *)h, struct ctl_conn, pipe);

	(void)hint;
	*buf = uv_buf_init(c->line + c->len, (unsigned)(sizeof(c->line) - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn *c = ONFS_CONTAINER_OF((uv_pipe_t *)s, struct ctl_conn, pipe);
	char *nl;

	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->line[c->len] = '\0';
	nl = memchr(c->line, '\n', c->len);
	if (!nl) {
		if (c->len >= sizeof(c->line) - 1) {
			uv_read_stop(s);
			onfs_buf_printf(&c->out, "error: request line too long\n");
			reply(c);
		}
		return;
	}
	*nl = '\0';
	uv_read_stop(s);
	if (c->refused) {
		reply(c);
		return;
	}
	c->nexports = cs.srv->nexports;
	memcpy(c->exports, cs.srv->exports, sizeof(c->exports));
	if (uv_queue_work(cs.srv->loop, &c->work, work_cb, after_work) < 0) {
		onfs_buf_printf(&c->out, "error: cannot queue the request\n");
		reply(c);
	}
}

static void on_conn(uv_stream_t *lis, int status)
{
	struct ctl_conn *c;
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_pipe_init(lis->loop, &c->pipe, 0);
	if (uv_accept(lis, (uv_stream_t *)&c->pipe) < 0) {
		conn_close(c);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
		conn_close(c);
		return;
	}
	if (cr.uid != 0 && cr.uid != geteuid()) {
		onfs_warn("control socket: refused a connection from uid %u (pid %d)",
			  (unsigned)cr.uid, (int)cr.pid);
		onfs_buf_printf(&c->out, "error: permission denied: uid %u is neither the "
				"server's (uid %u) nor root\n", (unsigned)cr.uid,
				(unsigned)geteuid());
		/* read the request line first: closing on unread data resets the reply */
		c->refused = true;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) < 0)
		conn_close(c);
}

int onfs_ctl_start(struct onfs_server *srv, char *err, size_t errlen)
{
	const char *dir = srv->cfg->state_dir;
	mode_t old;
	int r;

	cs.srv = srv;
	if (!dir)
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "control socket: cannot create state_dir '%s': %s", dir,
			 strerror(errno));
		return -1;
	}
	if ((size_t)snprintf(cs.path, sizeof(cs.path), "%s/ctl.sock", dir) >= sizeof(cs.path) ||
	    strlen(cs.path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "control socket: path '%s/ctl.sock' is too long for a "
			 "Unix socket (state_dir)", dir);
		return -1;
	}
	/* a leftover of a killed server: the workdir locks already keep two servers apart */
	unlink(cs.path);
	uv_pipe_init(srv->loop, &cs.lis, 0);
	old = umask(0077);
	r = uv_pipe_bind(&cs.lis, cs.path);
	umask(old);
	if (r == 0)
		r = chmod(cs.path, 0600) < 0 ? uv_translate_sys_error(errno) : 0;
	if (r == 0)
		r = uv_listen((uv_stream_t *)&cs.lis, 8, on_conn);
	if (r < 0) {
		snprintf(err, errlen, "control socket '%s': %s", cs.path, uv_strerror(r));
		uv_close((uv_handle_t *)&cs.lis, NULL);
		return -1;
	}
	cs.started = true;
	onfs_info("control socket on %s", cs.path);
	return 0;
}

void onfs_ctl_stop(struct onfs_server *srv)
{
	(void)srv;
	if (!cs.started)
		return;
	cs.started = false;
	uv_close((uv_handle_t *)&cs.lis, NULL);
	unlink(cs.path);
}
