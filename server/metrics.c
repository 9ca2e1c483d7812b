/*
 * metrics.c - `--metrics ADDR:PORT` (`metrics =` in [server]): Prometheus
 * text exposition (format 0.0.4) over a small HTTP/1.0 server on the
 * loop. GET /metrics (or /) answers the counters below; anything else 404.
 *
 * What is counted, and by whom:
 *   - requests by program, procedure and status, and a latency histogram
 *     per procedure (from the record's arrival to its reply): the loop
 *     thread, in dispatch.c's reply paths (onfs_metrics_call_done) - plain
 *     counters, only the loop touches them;
 *   - bytes read and written (nfs3.c), copy-ups (count, bytes, seconds;
 *     copyup.c), whiteouts (upper.c): workers, relaxed atomics in
 *     onfs_metrics (renames are RENAME in the request counts);
 *   - connections accepted and refused (transport.c, loop), open ones
 *     (transport's own count), DRC hits and in-progress waits (dispatch.c,
 *     loop);
 *   - per export: the upper layer's size (a walk of the upper directory on
 *     a pool worker, cached, at most one walk per export every 30 s) and
 *     whether the export is read-only.
 *
 * Threads: everything here runs on the loop, except the upper-size walk
 * (a pool worker, which writes only its own struct until after_work).
 * Owns: the listener, its connections (at most METRICS_MAX_CONNS, each
 * closed after its answer or after METRICS_TIMEOUT_MS), the size cache.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/daemon.h"
#include "ovlnfsd/overlay.h"

#define METRICS_MAX_CONNS 16
#define METRICS_REQ_MAX 4096
#define METRICS_TIMEOUT_MS 10000
#define SIZE_REFRESH_NS (30ull * 1000000000ull)

struct onfs_metrics_shared onfs_metrics;

/* --- requests (loop thread only) --- */

enum { P_NFS, P_MOUNT, P_PMAP, P_NLM, P_NSM, P_OTHER, NPROGS };
#define NPROCS 25 /* NLM's last is 23; index NPROCS-1 is "other" */

static const char *const prog_names[NPROGS] = { "nfs3", "mount3", "portmap2", "nlm", "nsm",
						"other" };
static const char *const nfs_procs[] = {
	"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
	"CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK",
	"READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHCONF", "COMMIT",
};
static const char *const mount_procs[] = { "NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT" };
static const char *const pmap_procs[] = { "NULL", "SET", "UNSET", "GETPORT", "DUMP", "CALLIT" };
/* NLM v1, v3 and v4 number their procedures alike (17-19 are unused). */
static const char *const nlm_procs[] = {
	"NULL", "TEST", "LOCK", "CANCEL", "UNLOCK", "GRANTED", "TEST_MSG", "LOCK_MSG",
	"CANCEL_MSG", "UNLOCK_MSG", "GRANTED_MSG", "TEST_RES", "LOCK_RES", "CANCEL_RES",
	"UNLOCK_RES", "GRANTED_RES", "SM_NOTIFY", NULL, NULL, NULL, "SHARE", "UNSHARE",
	"NM_LOCK", "FREE_ALL",
};
static const char *const nsm_procs[] = { "NULL", "STAT", "MON", "UNMON", "UNMON_ALL",
					 "SIMU_CRASH", "NOTIFY" };

/* Statuses: the nfsstat3/mountstat3 values, then the RPC-level outcomes, then
 * the lock manager's (nlm4_stats; v1 and v3 use the same numbers). */
static const struct {
	uint32_t v;
	const char *name;
} stat_names[] = {
	{ 0, "OK" }, { 1, "PERM" }, { 2, "NOENT" }, { 5, "IO" }, { 6, "NXIO" },
	{ 13, "ACCES" }, { 17, "EXIST" }, { 18, "XDEV" }, { 19, "NODEV" }, { 20, "NOTDIR" },
	{ 21, "ISDIR" }, { 22, "INVAL" }, { 27, "FBIG" }, { 28, "NOSPC" }, { 30, "ROFS" },
	{ 31, "MLINK" }, { 63, "NAMETOOLONG" }, { 66, "NOTEMPTY" }, { 69, "DQUOT" },
	{ 70, "STALE" }, { 71, "REMOTE" }, { 10001, "BADHANDLE" }, { 10002, "NOT_SYNC" },
	{ 10003, "BAD_COOKIE" }, { 10004, "NOTSUPP" }, { 10005, "TOOSMALL" },
	{ 10006, "SERVERFAULT" }, { 10007, "BADTYPE" }, { 10008, "JUKEBOX" },
};
enum {
	S_FIRST_RPC = ONFS_ARRAY_SIZE(stat_names),
	S_PROG_UNAVAIL = S_FIRST_RPC, S_PROG_MISMATCH, S_PROC_UNAVAIL, S_GARBAGE_ARGS,
	S_SYSTEM_ERR, S_RPC_MISMATCH, S_AUTH_ERROR, S_DONE, S_OTHER,
	S_NLM_FIRST, S_NLM_LAST = S_NLM_FIRST + 9, NSTATS
};
static const char *const rpc_stat_names[] = {
	"PROG_UNAVAIL", "PROG_MISMATCH", "PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR",
	"RPC_MISMATCH", "AUTH_ERROR", "SUCCESS", "OTHER",
	"NLM4_GRANTED", "NLM4_DENIED", "NLM4_DENIED_NOLOCKS", "NLM4_BLOCKED",
	"NLM4_DENIED_GRACE_PERIOD", "NLM4_DEADLCK", "NLM4_ROFS", "NLM4_STALE_FH", "NLM4_FBIG",
	"NLM4_FAILED",
};
_Static_assert(ONFS_ARRAY_SIZE(rpc_stat_names) == NSTATS - S_FIRST_RPC, "a name per status");

/* le bounds in seconds; the last bucket is +Inf */
static const double bucket_le[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (ONFS_ARRAY_SIZE(bucket_le) + 1)

static uint64_t req_count[NPROGS][NPROCS][NSTATS];
static uint64_t lat_bucket[NPROGS][NPROCS][NBUCKETS];
static uint64_t lat_sum_ns[NPROGS][NPROCS];
static uint64_t lat_count[NPROGS][NPROCS];

static unsigned prog_idx(uint32_t prog)
{
	switch (prog) {
	case 100003:
		return P_NFS;
	case 100005:
		return P_MOUNT;
	case 100000:
		return P_PMAP;
	case 100021:
		return P_NLM;
	case 100024:
		return P_NSM;
	default:
		return P_OTHER;
	}
}

static const char *proc_name(unsigned p, unsigned proc)
{
	if (p == P_NFS && proc < ONFS_ARRAY_SIZE(nfs_procs))
		return nfs_procs[proc];
	if (p == P_MOUNT && proc < ONFS_ARRAY_SIZE(mount_procs))
		return mount_procs[proc];
	if (p == P_PMAP && proc < ONFS_ARRAY_SIZE(pmap_procs))
		return pmap_procs[proc];
	if (p == P_NLM && proc < ONFS_ARRAY_SIZE(nlm_procs) && nlm_procs[proc])
		return nlm_procs[proc];
	if (p == P_NSM && proc < ONFS_ARRAY_SIZE(nsm_procs))
		return nsm_procs[proc];
	return "other";
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The status index of a reply: RPC-level outcome, or the procedure's status word. */
static unsigned reply_status(unsigned p, uint32_t proc, const uint8_t *r, size_t len)
{
	size_t off;
	uint32_t v;

	if (!r || len < 16 || be32(r + 4) != 1)
		return S_OTHER;
	if (be32(r + 8) == 1) /* MSG_DENIED */
		return be32(r + 12) == 0 ? S_RPC_MISMATCH : S_AUTH_ERROR;
	if (len < 24)
		return S_OTHER;
	off = 20 + ((be32(r + 16) + 3u) & ~3u); /* past the verifier */
	if (off + 4 > len)
		return S_OTHER;
	switch (be32(r + off)) {
	case 0:
		break;
	case 1:
		return S_PROG_UNAVAIL;
	case 2:
		return S_PROG_MISMATCH;
	case 3:
		return S_PROC_UNAVAIL;
	case 4:
		return S_GARBAGE_ARGS;
	default:
		return S_SYSTEM_ERR;
	}
	/* NLM: the status follows the cookie in the results of TEST, LOCK,
	 * CANCEL, UNLOCK, GRANTED, SHARE, UNSHARE and NM_LOCK */
	if (p == P_NLM && ((proc >= 1 && proc <= 5) || (proc >= 20 && proc <= 22))) {
		if (off + 8 > len)
			return S_OTHER;
		off += 8 + ((be32(r + off + 4) + 3u) & ~3u);
		if (off + 4 > len)
			return S_OTHER;
		v = be32(r + off);
		return v <= S_NLM_LAST - S_NLM_FIRST ? S_NLM_FIRST + v : S_OTHER;
	}
	/* a status word leads every NFSv3 result but NULL's, and MNT's */
	if (!((p == P_NFS && proc != 0) || (p == P_MOUNT && proc == 1)) || off + 8 > len)
		return S_DONE;
	v = be32(r + off + 4);
	for (unsigned i = 0; i < ONFS_ARRAY_SIZE(stat_names); i++)
		if (stat_names[i].v == v)
			return i;
	return S_OTHER;
}

void onfs_metrics_call_done(const struct onfs_call *c)
{
	unsigned p = prog_idx(c->prog);
	/* every procedure without a name counts as the one "other" of its program */
	unsigned proc = c->proc < NPROCS - 1 && strcmp(proc_name(p, c->proc), "other") != 0
				? c->proc : NPROCS - 1;
	unsigned s = reply_status(p, c->proc, c->reply, c->reply_len);
	uint64_t ns = c->t_start ? uv_hrtime() - c->t_start : 0;
	double sec = (double)ns / 1e9;
	unsigned b = 0;

	req_count[p][proc][s]++;
	while (b < ONFS_ARRAY_SIZE(bucket_le) && sec > bucket_le[b])
		b++;
	lat_bucket[p][proc][b]++;
	lat_sum_ns[p][proc] += ns;
	lat_count[p][proc]++;
}

/* --- upper sizes (a pool worker walks, the loop reads) --- */

struct upper_size {
	uv_work_t work;
	char *path;       /* owned; the upper directory */
	uint64_t bytes;   /* written by the worker, read after after_work */
	uint64_t done_at; /* uv_hrtime of the last completed walk; 0: none yet */
	bool busy;
	bool ok;
};

static __thread uint64_t walk_bytes;

static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	walk_bytes += (uint64_t)st->st_blocks * 512u;
	return 0;
}

static void size_work(uv_work_t *w)
{
	struct upper_size *u = ONFS_CONTAINER_OF(w, struct upper_size, work);

	walk_bytes = 0;
	u->ok = nftw(u->path, walk_cb, 16, FTW_PHYS | FTW_MOUNT) == 0;
	u->bytes = walk_bytes;
}

static void size_done(uv_work_t *w, int status)
{
	struct upper_size *u = ONFS_CONTAINER_OF(w, struct upper_size, work);

	(void)status;
	u->busy = false;
	u->done_at = uv_hrtime();
	if (!u->ok)
		onfs_debug("metrics: cannot measure upper layer '%s'", u->path);
}

/* --- the HTTP side --- */

struct mconn {
	struct mconn *prev, *next; /* ms.conns */
	uv_tcp_t tcp;
	uv_write_t wr;
	uv_timer_t timer;
	char req[METRICS_REQ_MAX];
	size_t len;
	char *resp; /* owned */
	bool answered;
	int closing; /* handles still to close */
};

static struct {
	struct onfs_server *srv;
	uv_tcp_t lis;
	bool on;
	unsigned nconns;
	struct mconn *conns;
	struct upper_size sizes[ONFS_MAX_EXPORTS];
	char name[80];
} ms;

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap * 2 + (size_t)n;
		char *np = realloc(b->p, ncap);

		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

static void help(struct sbuf *b, const char *name, const char *type, const char *text)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static uint64_t ld(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* Label values here are fixed names or export names (no quotes, no newlines: config.c). */
static void render(struct sbuf *b)
{
	struct onfs_server *srv = ms.srv;
	size_t nex = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);

	help(b, "ovlnfsd_build_info", "gauge", "Version of the running server.");
	sb_printf(b, "ovlnfsd_build_info{version=\"%s\"} 1\n", ONFS_VERSION);

	help(b, "ovlnfsd_requests_total", "counter",
	     "RPC calls answered, by program, procedure and status (NFS/MOUNT status, or the "
	     "RPC-level outcome; SUCCESS for results without a status).");
	for (unsigned p = 0; p < NPROGS; p++)
		for (unsigned q = 0; q < NPROCS; q++)
			for (unsigned s = 0; s < NSTATS; s++) {
				const char *sn;

				if (!req_count[p][q][s])
					continue;
				sn = s < S_FIRST_RPC ? stat_names[s].name : rpc_stat_names[s - S_FIRST_RPC];
				sb_printf(b,
					  "ovlnfsd_requests_total{program=\"%s\",procedure=\"%s\","
					  "status=\"%s%s\"} %llu\n",
					  prog_names[p], proc_name(p, q),
					  s >= S_FIRST_RPC ? "" : p == P_MOUNT ? (s ? "MNT3ERR_" : "MNT3_")
								: (s ? "NFS3ERR_" : "NFS3_"),
					  sn, (unsigned long long)req_count[p][q][s]);
			}

	help(b, "ovlnfsd_request_duration_seconds", "histogram",
	     "Time from a call's arrival to its reply, by program and procedure.");
	for (unsigned p = 0; p < NPROGS; p++)
		for (unsigned q = 0; q < NPROCS; q++) {
			uint64_t cum = 0;

			if (!lat_count[p][q])
				continue;
			for (unsigned k = 0; k < NBUCKETS; k++) {
				char le[32];

				cum += lat_bucket[p][q][k];
				if (k < ONFS_ARRAY_SIZE(bucket_le))
					snprintf(le, sizeof(le), "%g", bucket_le[k]);
				else
					snprintf(le, sizeof(le), "+Inf");
				sb_printf(b,
					  "ovlnfsd_request_duration_seconds_bucket{program=\"%s\","
					  "procedure=\"%s\",le=\"%s\"} %llu\n",
					  prog_names[p], proc_name(p, q), le, (unsigned long long)cum);
			}
			sb_printf(b,
				  "ovlnfsd_request_duration_seconds_sum{program=\"%s\",procedure=\"%s\"} "
				  "%.9f\n",
				  prog_names[p], proc_name(p, q), (double)lat_sum_ns[p][q] / 1e9);
			sb_printf(b,
				  "ovlnfsd_request_duration_seconds_count{program=\"%s\",procedure=\"%s\"} "
				  "%llu\n",
				  prog_names[p], proc_name(p, q), (unsigned long long)lat_count[p][q]);
		}

	help(b, "ovlnfsd_read_bytes_total", "counter", "File data bytes sent by NFS READ.");
	sb_printf(b, "ovlnfsd_read_bytes_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.bytes_read));
	help(b, "ovlnfsd_written_bytes_total", "counter", "File data bytes written by NFS WRITE.");
	sb_printf(b, "ovlnfsd_written_bytes_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.bytes_written));
	help(b, "ovlnfsd_copyups_total", "counter", "Copy-ups of a lower object with its data.");
	sb_printf(b, "ovlnfsd_copyups_total %llu\n", (unsigned long long)ld(&onfs_metrics.copyups));
	help(b, "ovlnfsd_copyup_bytes_total", "counter", "Bytes copied up from lower layers.");
	sb_printf(b, "ovlnfsd_copyup_bytes_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.copyup_bytes));
	help(b, "ovlnfsd_copyup_seconds_total", "counter", "Time spent copying data up.");
	sb_printf(b, "ovlnfsd_copyup_seconds_total %.9f\n",
		  (double)ld(&onfs_metrics.copyup_ns) / 1e9);
	help(b, "ovlnfsd_whiteouts_total", "counter",
	     "Whiteouts created in upper layers and their index (removals and renames of "
	     "lower names: one for the name, one in the index for a removed lower file).");
	sb_printf(b, "ovlnfsd_whiteouts_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.whiteouts));
	help(b, "ovlnfsd_connections_open", "gauge", "Open TCP connections of NFS clients.");
	sb_printf(b, "ovlnfsd_connections_open %u\n", onfs_transport_nconns(srv));
	help(b, "ovlnfsd_connections_accepted_total", "counter", "TCP connections accepted.");
	sb_printf(b, "ovlnfsd_connections_accepted_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.conns_accepted));
	help(b, "ovlnfsd_connections_refused_total", "counter",
	     "TCP connections closed at once (too many, or stopping).");
	sb_printf(b, "ovlnfsd_connections_refused_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.conns_refused));
	help(b, "ovlnfsd_drc_hits_total", "counter",
	     "Retransmitted calls answered from the duplicate request cache.");
	sb_printf(b, "ovlnfsd_drc_hits_total %llu\n", (unsigned long long)ld(&onfs_metrics.drc_hits));
	help(b, "ovlnfsd_drc_waits_total", "counter",
	     "Retransmitted calls that waited for their original still in progress.");
	sb_printf(b, "ovlnfsd_drc_waits_total %llu\n",
		  (unsigned long long)ld(&onfs_metrics.drc_waits));

	help(b, "ovlnfsd_export_read_only", "gauge",
	     "1 when the export answers every change with ROFS (access = ro, no upper layer, "
	     "or a work area it could not use).");
	for (size_t i = 0; i < nex; i++)
		if (srv->exports[i])
			sb_printf(b, "ovlnfsd_export_read_only{export=\"%s\"} %d\n",
				  onfs_export_name(srv->exports[i]),
				  onfs_export_readonly(srv->exports[i]) ? 1 : 0);
	help(b, "ovlnfsd_export_upper_bytes", "gauge",
	     "Disk space used by the export's upper layer (measured at most every 30 s).");
	for (size_t i = 0; i < nex && i < ONFS_MAX_EXPORTS; i++)
		if (srv->exports[i] && ms.sizes[i].done_at && ms.sizes[i].ok)
			sb_printf(b, "ovlnfsd_export_upper_bytes{export=\"%s\"} %llu\n",
				  onfs_export_name(srv->exports[i]),
				  (unsigned long long)ms.sizes[i].bytes);
}

/* Start a walk of each upper layer whose size is older than SIZE_REFRESH_NS. */
static void refresh_sizes(void)
{
	struct onfs_server *srv = ms.srv;
	size_t nex = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);
	uint64_t now = uv_hrtime();

	for (size_t i = 0; i < nex && i < ONFS_MAX_EXPORTS; i++) {
		struct upper_size *u = &ms.sizes[i];
		const char *up = srv->cfg->exports[i].upperdir;

		if (!up || u->busy || srv->stopping ||
		    (u->done_at && now - u->done_at < SIZE_REFRESH_NS))
			continue;
		if (!u->path && !(u->path = strdup(up)))
			continue;
		if (uv_queue_work(srv->loop, &u->work, size_work, size_done) == 0)
			u->busy = true;
	}
}

static void mconn_closed(uv_handle_t *h)
{
	struct mconn *mc = h->data;

	if (--mc->closing == 0) {
		if (mc->prev)
			mc->prev->next = mc->next;
		else
			ms.conns = mc->next;
		if (mc->next)
			mc->next->prev = mc->prev;
		free(mc->resp);
		free(mc);
		ms.nconns--;
	}
}

static void mconn_close(struct mconn *mc)
{
	if (mc->closing)
		return;
	mc->closing = 2;
	uv_timer_stop(&mc->timer);
	uv_close((uv_handle_t *)&mc->timer, mconn_closed);
	uv_close((uv_handle_t *)&mc->tcp, mconn_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	mconn_close(w->data);
}

static void respond(struct mconn *mc, const char *status, const char *ctype, struct sbuf *body)
{
	struct sbuf b = { 0 };
	uv_buf_t buf;

	mc->answered = true;
	uv_read_stop((uv_stream_t *)&mc->tcp);
	sb_printf(&b, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Connection: close\r\n\r\n%s", status, ctype, body ? body->len : 0,
		  body && body->p ? body->p : "");
	if (b.oom || !b.p) {
		free(b.p);
		mconn_close(mc);
		return;
	}
	mc->resp = b.p;
	buf = uv_buf_init(mc->resp, (unsigned)b.len);
	mc->wr.data = mc;
	if (uv_write(&mc->wr, (uv_stream_t *)&mc->tcp, &buf, 1, write_done) < 0)
		mconn_close(mc);
}

static void handle_request(struct mconn *mc)
{
	struct sbuf body = { 0 };
	char method[8] = "", path[256] = "";

	if (sscanf(mc->req, "%7s %255s", method, path) != 2) {
		sb_printf(&body, "bad request\n");
		respond(mc, "400 Bad Request", "text/plain", &body);
	} else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		sb_printf(&body, "only GET\n");
		respond(mc, "405 Method Not Allowed", "text/plain", &body);
	} else if (strcmp(path, "/metrics") && strcmp(path, "/")) {
		sb_printf(&body, "not found: try /metrics\n");
		respond(mc, "404 Not Found", "text/plain", &body);
	} else {
		refresh_sizes();
		render(&body);
		if (body.oom) {
			free(body.p);
			body = (struct sbuf){ 0 };
			sb_printf(&body, "out of memory\n");
			respond(mc, "500 Internal Server Error", "text/plain", &body);
		} else {
			respond(mc, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body);
		}
	}
	free(body.p);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct mconn *mc = h->data;

	(void)suggested;
	buf->base = mc->req + mc->len;
	buf->len = sizeof(mc->req) - 1 - mc->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct mconn *mc = s->data;

	(void)buf;
	if (mc->answered || mc->closing)
		return;
	if (n < 0) {
		mconn_close(mc);
		return;
	}
	mc->len += (size_t)n;
	mc->req[mc->len] = '\0';
	if (strstr(mc->req, "\r\n\r\n") || strstr(mc->req, "\n\n")) {
		handle_request(mc);
	} else if (mc->len >= sizeof(mc->req) - 1) {
		struct sbuf body = { 0 };

		sb_printf(&body, "request too large\n");
		respond(mc, "400 Bad Request", "text/plain", &body);
		free(body.p);
	}
}

static void timeout_cb(uv_timer_t *t)
{
	mconn_close(t->data);
}

static void on_conn(uv_stream_t *lis, int status)
{
	struct mconn *mc;

	if (status < 0)
		return;
	mc = calloc(1, sizeof(*mc));
	if (!mc || uv_tcp_init(ms.srv->loop, &mc->tcp) < 0) {
		free(mc);
		return;
	}
	ms.nconns++;
	mc->next = ms.conns;
	if (ms.conns)
		ms.conns->prev = mc;
	ms.conns = mc;
	mc->tcp.data = mc;
	uv_timer_init(ms.srv->loop, &mc->timer);
	mc->timer.data = mc;
	if (uv_accept(lis, (uv_stream_t *)&mc->tcp) < 0 || ms.nconns > METRICS_MAX_CONNS ||
	    ms.srv->stopping) {
		mconn_close(mc);
		return;
	}
	uv_timer_start(&mc->timer, timeout_cb, METRICS_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&mc->tcp, alloc_cb, read_cb) < 0)
		mconn_close(mc);
}

int onfs_metrics_start(struct onfs_server *srv, char *err, size_t errlen)
{
	const struct onfs_config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	struct sockaddr_storage got;
	int len = sizeof(got);
	int r;

	if (!cfg->metrics_host)
		return 0;
	ms.srv = srv;
	memset(&ss, 0, sizeof(ss));
	if (strchr(cfg->metrics_host, ':'))
		r = uv_ip6_addr(cfg->metrics_host, cfg->metrics_port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(cfg->metrics_host, cfg->metrics_port, (struct sockaddr_in *)&ss);
	if (r == 0)
		r = uv_tcp_init(srv->loop, &ms.lis);
	if (r < 0) {
		snprintf(err, errlen, "metrics: invalid address '%s:%d': %s", cfg->metrics_host,
			 cfg->metrics_port, uv_strerror(r));
		return r;
	}
	ms.on = true;
	r = uv_tcp_bind(&ms.lis, (const struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&ms.lis, 16, on_conn);
	if (r == 0)
		r = uv_tcp_getsockname(&ms.lis, (struct sockaddr *)&got, &len);
	if (r < 0) {
		snprintf(err, errlen, "metrics: cannot listen on '%s:%d': %s", cfg->metrics_host,
			 cfg->metrics_port, uv_strerror(r));
		onfs_metrics_stop();
		return r;
	}
	snprintf(ms.name, sizeof(ms.name), strchr(cfg->metrics_host, ':') ? "[%s]:%u" : "%s:%u",
		 cfg->metrics_host,
		 (unsigned)ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
							   : ((struct sockaddr_in *)&got)->sin_port));
	onfs_info("metrics: Prometheus text on http://%s/metrics", ms.name);
	refresh_sizes(); /* the first scrape finds the sizes measured */
	return 0;
}

static void lis_closed(uv_handle_t *h)
{
	(void)h;
}

void onfs_metrics_stop(void)
{
	if (!ms.on)
		return;
	ms.on = false;
	uv_close((uv_handle_t *)&ms.lis, lis_closed);
	/* a scrape in progress is cut off: the loop must not wait for it */
	for (struct mconn *mc = ms.conns; mc; mc = mc->next)
		mconn_close(mc);
}

void onfs_metrics_free(void)
{
	for (size_t i = 0; i < ONFS_MAX_EXPORTS; i++) {
		free(ms.sizes[i].path);
		ms.sizes[i].path = NULL;
	}
}
