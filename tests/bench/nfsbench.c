/*
 * nfsbench.c - the benchmark client: NFSv3 workloads on libnfs's raw async
 * RPC API (one TCP connection, a configurable number of requests in flight),
 * and the same operations as local system calls (--local) for the distance
 * to the limit. One "RESULT key=value ..." line per result on stdout.
 *
 * Runs as its own process, single-threaded: one poll() loop drives the
 * libnfs context (rpc_get_fd / rpc_which_events / rpc_service). Every loop
 * is bounded by --count and --time; a server that stops answering for
 * STALL_S seconds ends the run with an error.
 *
 * Buffers: WRITE payloads and the latency array are allocated once, touched
 * before the clock starts, and reused. READ replies are decoded by libnfs 4.0
 * into its own record buffer (its raw API has no caller-supplied read buffer).
 *
 * --bind ADDR: libnfs 4.0 has no option for the source address (only
 * nfs_set_interface, SO_BINDTODEVICE). As root it bind()s the socket to a
 * reserved port on INADDR_ANY before connect(); this executable interposes
 * bind() and connect() (its own definitions win over libc's for libnfs's
 * calls) to put ADDR into that bind, or to bind ADDR:0 when libnfs did not.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#define STALL_S 60.0
#define LISTING_GRACE_S 30.0
#define FH_MAX 64
#define MAX_DEPTH 1024

/* ---------- options ---------- */

static struct {
	const char *server;
	int port;           /* NFS */
	int mount_port;     /* MOUNT; 0: same as port */
	const char *export;
	const char *bind;
	const char *local;  /* directory: run the workload as system calls there */
	const char *name;   /* workload name in the RESULT line */
	int depth;
	uint64_t count;     /* operations (listings for readdir*) */
	double time;        /* seconds */
	uint32_t size;      /* READ/WRITE request size */
	uint64_t bytes;     /* WRITE total */
	uint32_t dircount, maxcount;
	bool quiet;
} opt = {
	.server = "127.0.0.1",
	.export = "/",
	.depth = 1,
	.count = 1000000,
	.time = 10.0,
	.size = 512 * 1024,
	.bytes = 1024ULL * 1024 * 1024,
	.dircount = 8192,
	.maxcount = 65536,
};

static struct in_addr bind_addr;
static bool bind_set;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nfsbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- source address (see the header comment) ---------- */

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (bind_set && sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		if (sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
			sin.sin_addr = bind_addr;
			return (int)syscall(SYS_bind, fd, &sin, (socklen_t)sizeof(sin));
		}
	}
	return (int)syscall(SYS_bind, fd, sa, len);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (bind_set && sa && sa->sa_family == AF_INET) {
		struct sockaddr_in cur;
		socklen_t cl = sizeof(cur);

		if (getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 &&
		    cur.sin_family == AF_INET && cur.sin_port == 0) {
			struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = bind_addr };

			if (syscall(SYS_bind, fd, &sin, (socklen_t)sizeof(sin)) != 0)
				return -1;
		}
	}
	return (int)syscall(SYS_connect, fd, sa, len);
}

/* ---------- results ---------- */

static void result(const char *unit, double value, uint64_t ops, double secs, const char *extra)
{
	printf("RESULT workload=%s mode=%s depth=%d value=%.3f unit=%s ops=%" PRIu64
	       " secs=%.3f%s%s\n",
	       opt.name, opt.local ? "local" : "nfs", opt.depth, value, unit, ops, secs,
	       extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double *lat;          /* seconds per operation, for the latency workload */
static size_t nlat, caplat;

static void latency_result(uint64_t ops, double secs)
{
	char extra[160];

	if (nlat == 0)
		die("%s: no operation completed", opt.name);
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	double p50 = lat[nlat / 2], p99 = lat[(nlat * 99) / 100], mx = lat[nlat - 1];

	snprintf(extra, sizeof(extra), "p50_us=%.1f p99_us=%.1f max_us=%.1f", p50 * 1e6,
		 p99 * 1e6, mx * 1e6);
	result("us-p99", p99 * 1e6, ops, secs, extra);
}

/* ---------- the NFS connection ---------- */

struct fh {
	uint32_t len;
	char data[FH_MAX];
};

static struct rpc_context *rpc;
static struct fh root;
static char rpc_err[512];

static void to_nfs(nfs_fh3 *n, const struct fh *fh)
{
	n->data.data_len = fh->len;
	n->data.data_val = (char *)fh->data;
}

static void from_nfs(struct fh *fh, const nfs_fh3 *n)
{
	if (n->data.data_len > FH_MAX)
		die("file handle of %u bytes", n->data.data_len);
	fh->len = n->data.data_len;
	memcpy(fh->data, n->data.data_val, fh->len);
}

/* One poll round; returns -1 when the connection failed. */
static int pump(int timeout_ms)
{
	struct pollfd pfd = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
	int r;

	if (pfd.fd < 0) {
		snprintf(rpc_err, sizeof(rpc_err), "not connected");
		return -1;
	}
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0 && errno != EINTR) {
		snprintf(rpc_err, sizeof(rpc_err), "poll: %s", strerror(errno));
		return -1;
	}
	if (rpc_service(rpc, r > 0 ? pfd.revents : 0) < 0) {
		snprintf(rpc_err, sizeof(rpc_err), "rpc_service: %s", rpc_get_error(rpc));
		return -1;
	}
	return 0;
}

/* A synchronous call: the callback sets done and copies what it needs. */
struct sync {
	bool done;
	int status;          /* RPC status */
	void *out;
	void (*copy)(void *data, struct sync *s);
	uint32_t nfs;        /* procedure status, filled by copy */
	char err[256];
};

static void sync_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	struct sync *s = priv;

	(void)r;
	s->done = true;
	s->status = status;
	if (status == RPC_STATUS_SUCCESS) {
		if (s->copy)
			s->copy(data, s);
	} else {
		snprintf(s->err, sizeof(s->err), "%s",
			 status == RPC_STATUS_ERROR && data ? (const char *)data : "rpc failure");
	}
}

static void sync_wait(struct sync *s, int queued, const char *what)
{
	double deadline = now() + STALL_S;

	if (queued != 0)
		die("%s: could not queue: %s", what, rpc_get_error(rpc));
	while (!s->done) {
		if (pump(100) < 0)
			die("%s: %s", what, rpc_err);
		if (!s->done && now() > deadline)
			die("%s: no reply within %.0f s", what, STALL_S);
	}
	if (s->status != RPC_STATUS_SUCCESS)
		die("%s: %s", what, s->err);
}

static void connect_to(int port, int prog, int vers, const char *what)
{
	struct sync s = { 0 };

	if (rpc)
		rpc_destroy_context(rpc);
	rpc = rpc_init_context();
	if (!rpc)
		die("rpc_init_context failed");
	sync_wait(&s, rpc_connect_port_async(rpc, opt.server, port, prog, vers, sync_cb, &s),
		  what);
}

static void copy_mnt(void *data, struct sync *s)
{
	mountres3 *res = data;

	s->nfs = res->fhs_status;
	if (res->fhs_status == MNT3_OK) {
		fhandle3 *f = &res->mountres3_u.mountinfo.fhandle;

		if (f->fhandle3_len > FH_MAX)
			die("root handle of %u bytes", f->fhandle3_len);
		root.len = f->fhandle3_len;
		memcpy(root.data, f->fhandle3_val, root.len);
	}
}

static void nfs_connect(void)
{
	struct sync s = { .copy = copy_mnt };
	char what[300];

	snprintf(what, sizeof(what), "MOUNT %s at %s:%d", opt.export, opt.server,
		 opt.mount_port ? opt.mount_port : opt.port);
	connect_to(opt.mount_port ? opt.mount_port : opt.port, MOUNT_PROGRAM, MOUNT_V3, what);
	sync_wait(&s, rpc_mount3_mnt_async(rpc, sync_cb, (char *)opt.export, &s), what);
	if (s.nfs != MNT3_OK)
		die("%s: mount status %u", what, s.nfs);
	snprintf(what, sizeof(what), "connect to NFS at %s:%d", opt.server, opt.port);
	connect_to(opt.port, NFS_PROGRAM, NFS_V3, what);
}

static void copy_lookup(void *data, struct sync *s)
{
	LOOKUP3res *res = data;

	s->nfs = res->status;
	if (res->status == NFS3_OK)
		from_nfs(s->out, &res->LOOKUP3res_u.resok.object);
}

static int lookup1(const struct fh *dir, const char *name, struct fh *out)
{
	struct sync s = { .copy = copy_lookup, .out = out };
	LOOKUP3args a;

	to_nfs(&a.what.dir, dir);
	a.what.name = (char *)name;
	sync_wait(&s, rpc_nfs3_lookup_async(rpc, sync_cb, &a, &s), "LOOKUP");
	return (int)s.nfs;
}

/* Resolve a path relative to the export root ("" or "." is the root). */
static struct fh resolve(const char *path)
{
	struct fh cur = root;
	char *copy = strdup(path), *save = NULL;

	if (!copy)
		die("out of memory");
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct fh next;
		int st;

		if (strcmp(c, ".") == 0)
			continue;
		st = lookup1(&cur, c, &next);
		if (st != NFS3_OK)
			die("LOOKUP of %s (in %s): NFS status %d", c, path, st);
		cur = next;
	}
	free(copy);
	return cur;
}

/* ---------- directory listings (sync, cookie loop) ---------- */

struct ent {
	char *name;
	struct fh fh;
	uint32_t type;
};

struct listing {
	uint64_t cookie;
	char verf[NFS3_COOKIEVERFSIZE];
	bool eof;
	uint64_t entries;
	bool keep;            /* collect names and handles into ents */
	bool partial;         /* stopped LISTING_GRACE_S after the time bound */
	struct ent *ents;
	size_t nents, capents;
};

static void keep_entry(struct listing *l, const char *name, const post_op_attr *attr,
		       const post_op_fh3 *fh)
{
	struct ent *e;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return;
	if (l->nents == l->capents) {
		l->capents = l->capents ? l->capents * 2 : 1024;
		l->ents = realloc(l->ents, l->capents * sizeof(*l->ents));
		if (!l->ents)
			die("out of memory");
	}
	e = &l->ents[l->nents++];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		die("out of memory");
	if (attr && attr->attributes_follow)
		e->type = attr->post_op_attr_u.attributes.type;
	if (fh && fh->handle_follows)
		from_nfs(&e->fh, &fh->post_op_fh3_u.handle);
}

static void copy_rdp(void *data, struct sync *s)
{
	READDIRPLUS3res *res = data;
	struct listing *l = s->out;

	s->nfs = res->status;
	if (res->status != NFS3_OK)
		return;
	memcpy(l->verf, res->READDIRPLUS3res_u.resok.cookieverf, NFS3_COOKIEVERFSIZE);
	/* libnfs 4.0 decodes list nodes at 4-byte aligned addresses: memcpy them */
	for (entryplus3 *p = res->READDIRPLUS3res_u.resok.reply.entries; p;) {
		entryplus3 e;

		memcpy(&e, p, sizeof(e));
		l->entries++;
		l->cookie = e.cookie;
		if (l->keep)
			keep_entry(l, e.name, &e.name_attributes, &e.name_handle);
		p = e.nextentry;
	}
	l->eof = res->READDIRPLUS3res_u.resok.reply.eof;
}

static void copy_rd(void *data, struct sync *s)
{
	READDIR3res *res = data;
	struct listing *l = s->out;

	s->nfs = res->status;
	if (res->status != NFS3_OK)
		return;
	memcpy(l->verf, res->READDIR3res_u.resok.cookieverf, NFS3_COOKIEVERFSIZE);
	for (entry3 *p = res->READDIR3res_u.resok.reply.entries; p;) {
		entry3 e;

		memcpy(&e, p, sizeof(e));
		l->entries++;
		l->cookie = e.cookie;
		if (l->keep)
			keep_entry(l, e.name, NULL, NULL);
		p = e.nextentry;
	}
	l->eof = res->READDIR3res_u.resok.reply.eof;
}

static uint64_t list_calls;   /* READDIR(PLUS) calls made by list_dir */

/* One whole listing; returns the number of entries. Bounded by a deadline. */
static uint64_t list_dir(const struct fh *dir, bool plus, struct listing *l, double deadline)
{
	l->cookie = 0;
	memset(l->verf, 0, sizeof(l->verf));
	l->eof = false;
	l->entries = 0;
	while (!l->eof) {
		struct sync s = { .copy = plus ? copy_rdp : copy_rd, .out = l };

		if (plus) {
			READDIRPLUS3args a;

			to_nfs(&a.dir, dir);
			a.cookie = l->cookie;
			memcpy(a.cookieverf, l->verf, sizeof(a.cookieverf));
			a.dircount = opt.dircount;
			a.maxcount = opt.maxcount;
			sync_wait(&s, rpc_nfs3_readdirplus_async(rpc, sync_cb, &a, &s),
				  "READDIRPLUS");
		} else {
			READDIR3args a;

			to_nfs(&a.dir, dir);
			a.cookie = l->cookie;
			memcpy(a.cookieverf, l->verf, sizeof(a.cookieverf));
			a.count = opt.maxcount;
			sync_wait(&s, rpc_nfs3_readdir_async(rpc, sync_cb, &a, &s), "READDIR");
		}
		list_calls++;
		if (s.nfs != NFS3_OK)
			die("%s: NFS status %u", plus ? "READDIRPLUS" : "READDIR", s.nfs);
		if (now() > deadline + LISTING_GRACE_S) {
			/* a listing slower than that: report the rate of the part done */
			l->partial = true;
			break;
		}
	}
	return l->entries;
}

/* ---------- the async engine: depth requests in flight ---------- */

struct slot;
typedef int (*issue_fn)(struct slot *s);

struct slot {
	uint64_t op;          /* operation number */
	int phase;
	double t0;
	struct fh fh;
	char name[64];
	char *buf;            /* pre-faulted WRITE payload */
};

static struct {
	struct slot slots[MAX_DEPTH];
	issue_fn issue;
	uint64_t limit, issued, done;
	double deadline;
	uint64_t bytes;
	bool record_lat;
	bool failed;
	char err[256];
} eng;

/* Called when slot s finished its operation: count it, issue the next. */
static void op_done(struct slot *s)
{
	if (eng.record_lat && nlat < caplat)
		lat[nlat++] = now() - s->t0;
	eng.done++;
	if (eng.failed || eng.issued >= eng.limit || now() >= eng.deadline)
		return;
	s->op = eng.issued++;
	s->phase = 0;
	s->t0 = now();
	if (eng.issue(s) != 0) {
		eng.failed = true;
		snprintf(eng.err, sizeof(eng.err), "could not queue: %s", rpc_get_error(rpc));
		eng.done++; /* nothing in flight for this slot */
	}
}

static void op_fail(const char *what, int status, void *data, uint32_t nfs)
{
	if (!eng.failed) {
		if (status != RPC_STATUS_SUCCESS)
			snprintf(eng.err, sizeof(eng.err), "%s: %s", what,
				 status == RPC_STATUS_ERROR && data ? (const char *)data
								    : "rpc failure");
		else
			snprintf(eng.err, sizeof(eng.err), "%s: NFS status %u", what, nfs);
	}
	eng.failed = true;
	eng.done++;
}

/* Run: depth slots, limit operations, until the time bound. */
static double run_engine(issue_fn fn, uint64_t limit, double secs)
{
	double t0 = now(), last = t0;
	uint64_t seen = 0;

	eng.issue = fn;
	eng.limit = limit;
	eng.issued = eng.done = 0;
	eng.deadline = t0 + secs;
	eng.failed = false;
	for (int i = 0; i < opt.depth && eng.issued < eng.limit; i++) {
		struct slot *s = &eng.slots[i];

		s->op = eng.issued++;
		s->phase = 0;
		s->t0 = now();
		if (fn(s) != 0)
			die("%s: could not queue: %s", opt.name, rpc_get_error(rpc));
	}
	while (eng.done < eng.issued) {
		if (pump(100) < 0)
			die("%s: %s", opt.name, rpc_err);
		if (eng.done != seen) {
			seen = eng.done;
			last = now();
		} else if (now() - last > STALL_S) {
			die("%s: no reply for %.0f s (%" PRIu64 " of %" PRIu64 " done)", opt.name,
			    STALL_S, eng.done, eng.issued);
		}
	}
	if (eng.failed)
		die("%s: %s", opt.name, eng.err);
	return now() - t0;
}

/* ---------- NFS workloads ---------- */

static struct fh target;      /* the file or directory the workload works on */
static struct ent *ents;      /* names in the directory (lookup, copyup) */
static size_t nents;
static uint64_t file_size;
static char prefix[32];       /* names created by create/remove/write */

static void load_entries(bool regular_only)
{
	struct listing l = { .keep = true };

	list_dir(&target, true, &l, now() + 600);
	nents = 0;
	for (size_t i = 0; i < l.nents; i++) {
		if (regular_only && l.ents[i].type != NF3REG) {
			free(l.ents[i].name);
			continue;
		}
		if (l.ents[i].fh.len == 0 &&
		    lookup1(&target, l.ents[i].name, &l.ents[i].fh) != NFS3_OK)
			die("LOOKUP %s failed", l.ents[i].name);
		l.ents[nents++] = l.ents[i];
	}
	ents = l.ents;
	if (nents == 0)
		die("%s: the directory has no %sentries", opt.name, regular_only ? "regular " : "");
}

static bool check(const char *what, int status, void *data, uint32_t nfs)
{
	if (status == RPC_STATUS_SUCCESS && nfs == NFS3_OK)
		return true;
	op_fail(what, status, data, nfs);
	return false;
}

static void getattr_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	(void)r;
	if (check("GETATTR", status, data, data ? ((GETATTR3res *)data)->status : 0))
		op_done(priv);
}

static int issue_getattr_fh(struct slot *s, const struct fh *fh)
{
	GETATTR3args a;

	to_nfs(&a.object, fh);
	return rpc_nfs3_getattr_async(rpc, getattr_cb, &a, s);
}

static int issue_getattr(struct slot *s)
{
	return issue_getattr_fh(s, &target);
}

static void lookup_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	struct slot *s = priv;
	LOOKUP3res *res = data;

	(void)r;
	if (!check("LOOKUP", status, data, res ? res->status : 0))
		return;
	from_nfs(&s->fh, &res->LOOKUP3res_u.resok.object);
	s->phase = 1;
	if (issue_getattr_fh(s, &s->fh) != 0)
		op_fail("GETATTR after LOOKUP: could not queue", RPC_STATUS_ERROR, NULL, 0);
}

static int issue_lookup(struct slot *s)
{
	LOOKUP3args a;

	to_nfs(&a.what.dir, &target);
	a.what.name = ents[s->op % nents].name;
	return rpc_nfs3_lookup_async(rpc, lookup_cb, &a, s);
}

static void read_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	READ3res *res = data;

	(void)r;
	if (!check("READ", status, data, res ? res->status : 0))
		return;
	eng.bytes += res->READ3res_u.resok.count;
	op_done(priv);
}

static int issue_read(struct slot *s)
{
	READ3args a;
	uint64_t chunks = file_size / opt.size;

	to_nfs(&a.file, &target);
	a.offset = (s->op % (chunks ? chunks : 1)) * opt.size;
	a.count = opt.size;
	return rpc_nfs3_read_async(rpc, read_cb, &a, s);
}

static void write_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	WRITE3res *res = data;

	(void)r;
	if (!check("WRITE", status, data, res ? res->status : 0))
		return;
	eng.bytes += res->WRITE3res_u.resok.count;
	op_done(priv);
}

static int issue_write_at(struct slot *s, const struct fh *fh, uint64_t off, uint32_t len,
			  stable_how how, rpc_cb cb)
{
	WRITE3args a;

	to_nfs(&a.file, fh);
	a.offset = off;
	a.count = len;
	a.stable = how;
	a.data.data_len = len;
	a.data.data_val = s->buf;
	return rpc_nfs3_write_async(rpc, cb, &a, s);
}

static int issue_write(struct slot *s)
{
	return issue_write_at(s, &target, s->op * opt.size, opt.size, UNSTABLE, write_cb);
}

static bool create_writes;    /* create: 4 KiB FILE_SYNC after the CREATE */

static void create_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	struct slot *s = priv;
	CREATE3res *res = data;

	(void)r;
	if (!check("CREATE", status, data, res ? res->status : 0))
		return;
	if (!create_writes) {
		op_done(s);
		return;
	}
	if (!res->CREATE3res_u.resok.obj.handle_follows) {
		op_fail("CREATE returned no handle", RPC_STATUS_ERROR, NULL, 0);
		return;
	}
	from_nfs(&s->fh, &res->CREATE3res_u.resok.obj.post_op_fh3_u.handle);
	s->phase = 1;
	if (issue_write_at(s, &s->fh, 0, 4096, FILE_SYNC, write_cb) != 0)
		op_fail("WRITE after CREATE: could not queue", RPC_STATUS_ERROR, NULL, 0);
}

static int issue_create(struct slot *s)
{
	CREATE3args a;

	memset(&a, 0, sizeof(a));
	snprintf(s->name, sizeof(s->name), "%s%" PRIu64, prefix, s->op);
	to_nfs(&a.where.dir, &target);
	a.where.name = s->name;
	a.how.mode = GUARDED;
	a.how.createhow3_u.obj_attributes.mode.set_it = 1;
	a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
	return rpc_nfs3_create_async(rpc, create_cb, &a, s);
}

static void remove_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	(void)r;
	if (check("REMOVE", status, data, data ? ((REMOVE3res *)data)->status : 0))
		op_done(priv);
}

static int issue_remove(struct slot *s)
{
	REMOVE3args a;

	snprintf(s->name, sizeof(s->name), "%s%" PRIu64, prefix, s->op);
	to_nfs(&a.object.dir, &target);
	a.object.name = s->name;
	return rpc_nfs3_remove_async(rpc, remove_cb, &a, s);
}

static int issue_copyup(struct slot *s)
{
	return issue_write_at(s, &ents[s->op].fh, 0, 1, FILE_SYNC, write_cb);
}

static int issue_copyup_big(struct slot *s)
{
	return issue_write_at(s, &target, 0, 1, FILE_SYNC, write_cb);
}

static void commit_cb(struct rpc_context *r, int status, void *data, void *priv)
{
	(void)r;
	if (check("COMMIT", status, data, data ? ((COMMIT3res *)data)->status : 0))
		op_done(priv);
}

static int issue_commit(struct slot *s)
{
	COMMIT3args a;

	to_nfs(&a.file, &target);
	a.offset = 0;
	a.count = 0;
	return rpc_nfs3_commit_async(rpc, commit_cb, &a, s);
}

static void copy_getattr(void *data, struct sync *s)
{
	GETATTR3res *res = data;

	s->nfs = res->status;
	if (res->status == NFS3_OK)
		*(uint64_t *)s->out = res->GETATTR3res_u.resok.obj_attributes.size;
}

static uint64_t size_of(const struct fh *fh)
{
	uint64_t size = 0;
	struct sync s = { .copy = copy_getattr, .out = &size };
	GETATTR3args a;

	to_nfs(&a.object, fh);
	sync_wait(&s, rpc_nfs3_getattr_async(rpc, sync_cb, &a, &s), "GETATTR");
	if (s.nfs != NFS3_OK)
		die("GETATTR: NFS status %u", s.nfs);
	return size;
}

static void alloc_buffers(void)
{
	for (int i = 0; i < opt.depth; i++) {
		eng.slots[i].buf = malloc(opt.size);
		if (!eng.slots[i].buf)
			die("out of memory");
		memset(eng.slots[i].buf, 'a' + i % 26, opt.size);   /* pre-fault */
	}
}

static void free_buffers(void)
{
	for (int i = 0; i < opt.depth; i++) {
		free(eng.slots[i].buf);
		eng.slots[i].buf = NULL;
	}
}

/* A create/remove pass that is not measured (setup or cleanup). */
static void untimed(issue_fn fn, uint64_t n, bool writes)
{
	create_writes = writes;
	run_engine(fn, n, 1e9);
}

static int run_nfs(const char *wl, const char *path)
{
	double secs;

	nfs_connect();
	target = resolve(path);
	alloc_buffers();
	snprintf(prefix, sizeof(prefix), "nb-%d-", (int)getpid());

	if (strcmp(wl, "getattr") == 0) {
		secs = run_engine(issue_getattr, opt.count, opt.time);
		result("ops/s", (double)eng.done / secs, eng.done, secs, NULL);
	} else if (strcmp(wl, "latency") == 0) {
		caplat = opt.count < 10000000 ? opt.count : 10000000;
		lat = calloc(caplat, sizeof(*lat));
		if (!lat)
			die("out of memory");
		memset(lat, 0, caplat * sizeof(*lat));
		eng.record_lat = true;
		secs = run_engine(issue_getattr, opt.count, opt.time);
		latency_result(eng.done, secs);
	} else if (strcmp(wl, "lookup") == 0) {
		load_entries(false);
		secs = run_engine(issue_lookup, opt.count, opt.time);
		result("ops/s", (double)eng.done / secs, eng.done, secs, NULL);
	} else if (strcmp(wl, "readdirplus") == 0 || strcmp(wl, "readdir") == 0) {
		bool plus = wl[7] == 'p';
		struct listing l = { 0 };
		uint64_t entries = 0, n = 0;
		double t0 = now(), end = t0 + opt.time;
		char extra[120];
		double first = 0;

		do {
			entries += list_dir(&target, plus, &l, end);
			if (n++ == 0)
				first = (double)l.entries / (now() - t0);
		} while (n < opt.count && now() < end);
		secs = now() - t0;
		/* first: the rate of the first listing alone (nothing cached yet) */
		snprintf(extra, sizeof(extra),
			 "listings=%" PRIu64 " entries=%" PRIu64 " first=%.0f%s", n, l.entries,
			 first, l.partial ? " partial=1" : "");
		result("entries/s", (double)entries / secs, entries, secs, extra);
	} else if (strcmp(wl, "read") == 0) {
		file_size = size_of(&target);
		if (file_size < opt.size)
			die("read: %s is smaller than one request (%u bytes)", path, opt.size);
		uint64_t n = opt.count < file_size / opt.size ? opt.count : file_size / opt.size;

		secs = run_engine(issue_read, n, opt.time);
		result("MB/s", (double)eng.bytes / 1e6 / secs, eng.done, secs, NULL);
	} else if (strcmp(wl, "write") == 0) {
		struct slot *s0 = &eng.slots[0];
		double t0 = now();

		untimed(issue_create, 1, false);
		snprintf(s0->name, sizeof(s0->name), "%s0", prefix);
		struct fh dir = target;

		if (lookup1(&dir, s0->name, &target) != NFS3_OK)
			die("write: LOOKUP of the new file failed");
		t0 = now();
		eng.bytes = 0;
		run_engine(issue_write, opt.bytes / opt.size, opt.time);
		uint64_t written = eng.bytes, nwrites = eng.done;

		run_engine(issue_commit, 1, 1e9);
		secs = now() - t0;
		result("MB/s", (double)written / 1e6 / secs, nwrites, secs, NULL);
		target = dir;
		untimed(issue_remove, 1, false);
	} else if (strcmp(wl, "create") == 0) {
		create_writes = true;
		secs = run_engine(issue_create, opt.count, opt.time);
		uint64_t made = eng.done;

		result("ops/s", (double)made / secs, made, secs, NULL);
		untimed(issue_remove, made, false);
	} else if (strcmp(wl, "remove") == 0) {
		untimed(issue_create, opt.count, false);
		uint64_t made = eng.done;

		/* the time bound only counts the removal; the rest is cleaned up untimed */
		secs = run_engine(issue_remove, made, opt.time);
		uint64_t gone = eng.done;

		result("ops/s", (double)gone / secs, gone, secs, NULL);
		if (gone < made) {
			uint64_t first = gone;

			for (uint64_t i = first; i < made; i++) {
				struct sync s = { 0 };
				REMOVE3args a;
				char name[64];

				snprintf(name, sizeof(name), "%s%" PRIu64, prefix, i);
				to_nfs(&a.object.dir, &target);
				a.object.name = name;
				sync_wait(&s, rpc_nfs3_remove_async(rpc, sync_cb, &a, &s), "REMOVE");
			}
		}
	} else if (strcmp(wl, "copyup") == 0) {
		load_entries(true);
		uint64_t n = opt.count < nents ? opt.count : nents;

		secs = run_engine(issue_copyup, n, opt.time);
		result("files/s", (double)eng.done / secs, eng.done, secs, NULL);
	} else if (strcmp(wl, "copyup-big") == 0) {
		file_size = size_of(&target);
		int depth = opt.depth;

		opt.depth = 1;
		secs = run_engine(issue_copyup_big, 1, 1e9);
		opt.depth = depth;
		result("MB/s", (double)file_size / 1e6 / secs, 1, secs, NULL);
	} else {
		die("unknown workload %s", wl);
	}
	free_buffers();
	for (size_t i = 0; i < nents; i++)
		free(ents[i].name);
	free(ents);
	free(lat);
	rpc_destroy_context(rpc);
	rpc = NULL;
	return 0;
}

/* ---------- replay: a LOOKUP/GETATTR/ACCESS/READLINK/READ trace ---------- */

/*
 * Trace format (tests/bench/boot-trace.txt): one call per line,
 *   LOOKUP PATH | GETATTR PATH | ACCESS PATH | READLINK PATH | READ PATH OFFSET COUNT
 *   | READDIR PATH 0 COUNT | READDIRPLUS PATH 0 COUNT
 *   | FSSTAT PATH | FSINFO PATH | PATHCONF PATH
 * PATH is absolute within the export; "#" starts a comment. A READDIR(PLUS)
 * line is one whole listing: calls of COUNT bytes (READDIRPLUS: dircount
 * COUNT / 8, as Linux asks) from cookie 0, following the cookies to eof. LOOKUP PATH
 * looks the last component up in the handle of its parent, which an earlier
 * line resolved (or which is resolved now, counted as extra LOOKUPs). The
 * calls go one at a time, like the single thread of a booting client;
 * NFS3ERR_NOENT is an answer (a boot probes for missing files too).
 */
struct pathfh {
	char *path;
	struct fh fh;
	bool neg;            /* NOENT */
};

static struct pathfh *ptab;
static size_t ptab_cap, ptab_n;
static uint64_t replay_calls;

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct pathfh *ptab_find(const char *path, bool add)
{
	if (ptab_n * 2 >= ptab_cap) {
		struct pathfh *old = ptab;
		size_t oldcap = ptab_cap;

		ptab_cap = ptab_cap ? ptab_cap * 2 : 4096;
		ptab = calloc(ptab_cap, sizeof(*ptab));
		if (!ptab)
			die("out of memory");
		for (size_t i = 0; i < oldcap; i++) {
			if (!old[i].path)
				continue;
			size_t j = fnv(old[i].path) & (ptab_cap - 1);

			while (ptab[j].path)
				j = (j + 1) & (ptab_cap - 1);
			ptab[j] = old[i];
		}
		free(old);
	}
	for (size_t j = fnv(path) & (ptab_cap - 1);; j = (j + 1) & (ptab_cap - 1)) {
		if (!ptab[j].path) {
			if (!add)
				return NULL;
			ptab[j].path = strdup(path);
			if (!ptab[j].path)
				die("out of memory");
			ptab_n++;
			return &ptab[j];
		}
		if (strcmp(ptab[j].path, path) == 0)
			return &ptab[j];
	}
}

/* The handle of PATH (LOOKUPs of what is not known yet); NULL: NOENT. */
static const struct fh *replay_resolve(const char *path)
{
	struct pathfh *e;
	char parent[4096];
	const char *slash;
	const struct fh *dir;
	int st;

	if (path[0] == '/' && path[1] == 0)
		return &root;
	e = ptab_find(path, false);
	if (e)
		return e->neg ? NULL : &e->fh;
	slash = strrchr(path, '/');
	if (!slash || (size_t)(slash - path) >= sizeof(parent))
		die("replay: bad path %s", path);
	if (slash == path)
		strcpy(parent, "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	dir = replay_resolve(parent);
	if (!dir)
		return NULL;
	struct fh f = *dir, out;

	st = lookup1(&f, slash + 1, &out);
	replay_calls++;
	e = ptab_find(path, true);
	if (st == NFS3_OK) {
		e->fh = out;
		return &e->fh;
	}
	if (st != NFS3ERR_NOENT && st != NFS3ERR_NOTDIR)
		die("replay: LOOKUP %s: NFS status %d", path, st);
	e->neg = true;
	return NULL;
}

static void copy_status(void *data, struct sync *s)
{
	s->nfs = *(uint32_t *)data;   /* every *3res starts with its nfsstat3 */
}

static int run_replay(const char *trace, const char *rootdir)
{
	FILE *f = fopen(trace, "r");
	char line[4200], op[16], path[4096];
	unsigned long long off, cnt;
	double t0;
	uint64_t lines = 0;

	if (!f)
		die("replay: %s: %s", trace, strerror(errno));
	nfs_connect();
	if (rootdir)
		root = resolve(rootdir);   /* the trace's "/" */
	t0 = now();
	while (fgets(line, sizeof(line), f)) {
		const struct fh *fh;
		struct sync s = { .copy = copy_status };
		int n = sscanf(line, "%15s %4095s %llu %llu", op, path, &off, &cnt);

		if (n < 2 || op[0] == '#')
			continue;
		if (++lines > opt.count || now() > t0 + opt.time)
			break;
		if (strcmp(op, "LOOKUP") == 0) {
			struct pathfh *e = ptab_find(path, false);

			if (e) {  /* already known: the client asks again */
				char *slash = strrchr(path, '/');
				const struct fh *dir;

				*slash = 0;
				dir = replay_resolve(path[0] ? path : "/");
				if (dir) {
					struct fh d = *dir, out;

					lookup1(&d, slash + 1, &out);
					replay_calls++;
				}
			} else {
				replay_resolve(path);
			}
			continue;
		}
		fh = replay_resolve(path);
		if (!fh)
			continue;
		struct fh h = *fh;
		nfs_fh3 nh;
		int queued;

		/*
		 * One call on the handle (every *3args starts with it), waited
		 * for below. libnfs encodes the arguments when it queues the
		 * call (the issue_* functions rely on it too), so arguments
		 * that end with their branch are enough.
		 */
		to_nfs(&nh, &h);
		if (strcmp(op, "GETATTR") == 0) {
			queued = rpc_nfs3_getattr_async(rpc, sync_cb, &(GETATTR3args){ nh }, &s);
		} else if (strcmp(op, "ACCESS") == 0) {
			ACCESS3args a = { nh, ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_EXECUTE };

			queued = rpc_nfs3_access_async(rpc, sync_cb, &a, &s);
		} else if (strcmp(op, "FSSTAT") == 0) {
			queued = rpc_nfs3_fsstat_async(rpc, sync_cb, &(FSSTAT3args){ nh }, &s);
		} else if (strcmp(op, "FSINFO") == 0) {
			queued = rpc_nfs3_fsinfo_async(rpc, sync_cb, &(FSINFO3args){ nh }, &s);
		} else if (strcmp(op, "PATHCONF") == 0) {
			queued = rpc_nfs3_pathconf_async(rpc, sync_cb, &(PATHCONF3args){ nh }, &s);
		} else if (strcmp(op, "READLINK") == 0) {
			queued = rpc_nfs3_readlink_async(rpc, sync_cb, &(READLINK3args){ nh }, &s);
		} else if (strcmp(op, "READ") == 0 && n == 4) {
			READ3args a = { nh, off, (count3)cnt };

			queued = rpc_nfs3_read_async(rpc, sync_cb, &a, &s);
		} else if ((strcmp(op, "READDIRPLUS") == 0 || strcmp(op, "READDIR") == 0) && n == 4) {
			struct listing l = { 0 };
			uint32_t maxc = opt.maxcount, dirc = opt.dircount;
			uint64_t before = list_calls;

			if (cnt >= 1024 && cnt <= 1048576) {
				opt.maxcount = (uint32_t)cnt;
				opt.dircount = (uint32_t)(cnt / 8);
			}
			list_dir(fh, op[7] == 'P', &l, t0 + opt.time);
			opt.maxcount = maxc;
			opt.dircount = dirc;
			replay_calls += list_calls - before;
			continue;
		} else {
			die("replay: %s: bad line: %s", trace, line);
		}
		sync_wait(&s, queued, op);
		replay_calls++;
		if (s.nfs != NFS3_OK && s.nfs != NFS3ERR_NOENT)
			die("replay: %s %s: NFS status %u", op, path, s.nfs);
	}
	double secs = now() - t0;
	char extra[64];

	fclose(f);
	snprintf(extra, sizeof(extra), "lines=%" PRIu64, lines);
	result("s", secs, replay_calls, secs, extra);
	for (size_t i = 0; i < ptab_cap; i++)
		free(ptab[i].path);
	free(ptab);
	rpc_destroy_context(rpc);
	rpc = NULL;
	return 0;
}

/* ---------- instances: per-client instances of a templated export ---------- */

/*
 * instances DIR: --count new names DIR/ro-NNNNN, each MNT (timed) + GETATTR of
 * its root, then as many DIR/rw-NNNNN, each MNT + GETATTR + CREATE + one small
 * FILE_SYNC WRITE (the instance creates its upper). The server's VmRSS
 * (--server-pid) before and after each pass, divided by the count, is the
 * cost of one idle instance; MNT latency is over the read-only pass's new
 * names. All from one connection pair: the export must be templated by
 * {name} (path = DIR/{name}), which tells instances apart by the mounted name.
 */
static long vmrss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		die("--server-pid %d: %s: %s", pid, path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	if (kib < 0)
		die("--server-pid %d: no VmRSS in %s", pid, path);
	return kib;
}

static void copy_create_fh(void *data, struct sync *s)
{
	CREATE3res *res = data;

	s->nfs = res->status;
	if (res->status == NFS3_OK && res->CREATE3res_u.resok.obj.handle_follows)
		from_nfs(s->out, &res->CREATE3res_u.resok.obj.post_op_fh3_u.handle);
}

static int server_pid;

/* One new instance: MNT DIR/NAME (returns its latency), GETATTR, maybe a write. */
static double instance_touch(struct rpc_context *mrpc, struct rpc_context *nrpc,
			     const char *path, bool write)
{
	struct sync s = { .copy = copy_mnt };
	char what[300];
	double t0, dt;

	snprintf(what, sizeof(what), "MOUNT %s", path);
	rpc = mrpc;
	t0 = now();
	sync_wait(&s, rpc_mount3_mnt_async(rpc, sync_cb, (char *)path, &s), what);
	dt = now() - t0;
	if (s.nfs != MNT3_OK)
		die("%s: mount status %u (a templated export with path = DIR/{name}, "
		    "and max_instances of at least twice --count?)", what, s.nfs);
	rpc = nrpc;

	GETATTR3args ga;
	struct sync g = { .copy = copy_status };

	to_nfs(&ga.object, &root);
	snprintf(what, sizeof(what), "GETATTR of the root of %s", path);
	sync_wait(&g, rpc_nfs3_getattr_async(rpc, sync_cb, &ga, &g), what);
	if (g.nfs != NFS3_OK)
		die("%s: NFS status %u", what, g.nfs);
	if (!write)
		return dt;

	CREATE3args ca;
	struct fh file = { 0 };
	struct sync c = { .copy = copy_create_fh, .out = &file };

	memset(&ca, 0, sizeof(ca));
	to_nfs(&ca.where.dir, &root);
	ca.where.name = (char *)"nfsbench-instance";
	ca.how.mode = UNCHECKED;
	ca.how.createhow3_u.obj_attributes.mode.set_it = 1;
	ca.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
	snprintf(what, sizeof(what), "CREATE in the root of %s", path);
	sync_wait(&c, rpc_nfs3_create_async(rpc, sync_cb, &ca, &c), what);
	if (c.nfs != NFS3_OK || file.len == 0)
		die("%s: NFS status %u%s", what, c.nfs, file.len ? "" : " or no handle");

	WRITE3args wa;
	struct sync w = { .copy = copy_status };
	char data[32];
	int n = snprintf(data, sizeof(data), "%s\n", path);

	to_nfs(&wa.file, &file);
	wa.offset = 0;
	wa.count = (count3)n;
	wa.stable = FILE_SYNC;
	wa.data.data_len = (u_int)n;
	wa.data.data_val = data;
	snprintf(what, sizeof(what), "WRITE in the root of %s", path);
	sync_wait(&w, rpc_nfs3_write_async(rpc, sync_cb, &wa, &w), what);
	if (w.nfs != NFS3_OK)
		die("%s: NFS status %u", what, w.nfs);
	return dt;
}

static void named_result(const char *base, const char *suffix, const char *unit, double value,
			 uint64_t ops, double secs, const char *extra)
{
	char name[160];
	const char *keep = opt.name;

	snprintf(name, sizeof(name), "%s-%s", base, suffix);
	opt.name = name;
	result(unit, value, ops, secs, extra);
	opt.name = keep;
}

static int run_instances(const char *dir)
{
	struct rpc_context *mrpc, *nrpc;
	char path[4200], extra[200];
	uint64_t n = opt.count;
	long rss0, rss1, rss2;
	double t0, t1, t2, *ml;

	if (server_pid <= 0)
		die("instances: --server-pid PID is required (the server's VmRSS is the figure)");
	if (n > 100000)
		die("instances: --count %" PRIu64 ": at most 100000", n);
	ml = calloc(n, sizeof(*ml));
	if (!ml)
		die("out of memory");
	snprintf(path, sizeof(path), "MOUNT connection to %s:%d", opt.server,
		 opt.mount_port ? opt.mount_port : opt.port);
	connect_to(opt.mount_port ? opt.mount_port : opt.port, MOUNT_PROGRAM, MOUNT_V3, path);
	mrpc = rpc;
	rpc = NULL;
	snprintf(path, sizeof(path), "NFS connection to %s:%d", opt.server, opt.port);
	connect_to(opt.port, NFS_PROGRAM, NFS_V3, path);
	nrpc = rpc;

	rss0 = vmrss_kib(server_pid);
	t0 = now();
	for (uint64_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/ro-%05" PRIu64, dir, i);
		ml[i] = instance_touch(mrpc, nrpc, path, false);
	}
	t1 = now();
	rss1 = vmrss_kib(server_pid);
	for (uint64_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/rw-%05" PRIu64, dir, i);
		instance_touch(mrpc, nrpc, path, true);
	}
	t2 = now();
	rss2 = vmrss_kib(server_pid);

	qsort(ml, n, sizeof(*ml), cmp_double);
	snprintf(extra, sizeof(extra), "instances=%" PRIu64 " rss_before_kib=%ld rss_after_kib=%ld",
		 n, rss0, rss1);
	named_result(opt.name, "rss-readonly", "KiB", (double)(rss1 - rss0) / (double)n, n,
		     t1 - t0, extra);
	snprintf(extra, sizeof(extra), "instances=%" PRIu64 " rss_before_kib=%ld rss_after_kib=%ld",
		 n, rss1, rss2);
	named_result(opt.name, "rss-written", "KiB", (double)(rss2 - rss1) / (double)n, n,
		     t2 - t1, extra);
	snprintf(extra, sizeof(extra), "max_us=%.1f", ml[n - 1] * 1e6);
	named_result(opt.name, "mnt-p50", "us", ml[n / 2] * 1e6, n, t1 - t0, extra);
	named_result(opt.name, "mnt-p99", "us", ml[(n * 99) / 100] * 1e6, n, t1 - t0, extra);
	free(ml);
	rpc_destroy_context(mrpc);
	rpc_destroy_context(nrpc);
	rpc = NULL;
	return 0;
}

/* ---------- local workloads: the same operations as system calls ---------- */

struct lname {
	char **v;
	size_t n, cap;
};

static void local_names(int dfd, struct lname *ln, bool regular_only)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d)
		die("opendir: %s", strerror(errno));
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (regular_only && e->d_type != DT_REG)
			continue;
		if (ln->n == ln->cap) {
			ln->cap = ln->cap ? ln->cap * 2 : 1024;
			ln->v = realloc(ln->v, ln->cap * sizeof(*ln->v));
			if (!ln->v)
				die("out of memory");
		}
		ln->v[ln->n] = strdup(e->d_name);
		if (!ln->v[ln->n++])
			die("out of memory");
	}
	closedir(d);
	if (ln->n == 0)
		die("%s: the directory has no entries", opt.name);
}

static void local_names_free(struct lname *ln)
{
	for (size_t i = 0; i < ln->n; i++)
		free(ln->v[i]);
	free(ln->v);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* One listing with getdents64 (and fstatat per entry when plus). */
static uint64_t local_list(int dfd, bool plus, char *buf, size_t bufsz)
{
	uint64_t n = 0;
	long got;

	if (lseek(dfd, 0, SEEK_SET) != 0)
		die("lseek: %s", strerror(errno));
	while ((got = syscall(SYS_getdents64, dfd, buf, bufsz)) > 0) {
		for (long off = 0; off < got;) {
			struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
			struct stat st;

			if (plus && fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
				die("fstatat %s: %s", e->d_name, strerror(errno));
			n++;
			off += e->d_reclen;
		}
	}
	if (got < 0)
		die("getdents64: %s", strerror(errno));
	return n;
}

/*
 * Data-set helper: COUNT entries PREFIX%07u in DIR (made if missing):
 * files of --fill bytes, or overlay whiteouts (character devices 0/0).
 */
static uint64_t fill_bytes;

static int make_files(int base, bool whiteouts, const char *dir, const char *count,
		      const char *pfx)
{
	uint64_t n = count ? strtoull(count, NULL, 10) : 0;
	char *buf = NULL;
	char name[300];
	int dfd;

	if (!count || !pfx || n == 0)
		die("mkfiles/mkwhiteouts DIR COUNT PREFIX");
	if (mkdirat(base, dir, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", dir, strerror(errno));
	dfd = openat(base, dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		die("%s: %s", dir, strerror(errno));
	if (fill_bytes) {
		buf = malloc(fill_bytes);
		if (!buf)
			die("out of memory");
		for (uint64_t i = 0; i < fill_bytes; i++)
			buf[i] = (char)('a' + i % 26);
	}
	for (uint64_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%.200s%07" PRIu64, pfx, i);
		if (whiteouts) {
			if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) != 0 && errno != EEXIST)
				die("mknod %s/%s: %s", dir, name, strerror(errno));
			continue;
		}
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			die("create %s/%s: %s", dir, name, strerror(errno));
		if (fill_bytes && write(fd, buf, fill_bytes) != (ssize_t)fill_bytes)
			die("write %s/%s: %s", dir, name, strerror(errno));
		close(fd);
	}
	free(buf);
	close(dfd);
	close(base);
	return 0;
}

/*
 * read-tcp's receiver: a child that connects to a loopback listener and
 * receives into buf (--size bytes) until the end; the accepted socket.
 */
static int tcp_receiver(char *buf, pid_t *child)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lis = socket(AF_INET, SOCK_STREAM, 0), s;

	if (lis < 0 || bind(lis, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lis, 1) != 0 ||
	    getsockname(lis, (struct sockaddr *)&sa, &sl) != 0)
		die("read-tcp: listen: %s", strerror(errno));
	*child = fork();
	if (*child < 0)
		die("fork: %s", strerror(errno));
	if (*child == 0) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		ssize_t r;

		if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			_exit(1);
		while ((r = recv(c, buf, opt.size, 0)) > 0)
			;
		_exit(r < 0);
	}
	s = accept(lis, NULL, NULL);
	close(lis);
	if (s < 0)
		die("read-tcp: accept: %s", strerror(errno));
	return s;
}

static int run_local(const char *wl, const char *path, const char *dest, const char *pfx)
{
	int base = open(opt.local, O_RDONLY | O_DIRECTORY);
	int fd;
	double t0, secs;
	uint64_t n = 0;
	char name[80];
	char *buf;

	if (base < 0)
		die("--local %s: %s", opt.local, strerror(errno));
	if (strcmp(wl, "mkfiles") == 0 || strcmp(wl, "mkwhiteouts") == 0)
		return make_files(base, wl[2] == 'w', path, dest, pfx);
	if (strcmp(path, "") == 0)
		path = ".";
	fd = openat(base, path, O_RDONLY);
	if (fd < 0)
		die("%s/%s: %s", opt.local, path, strerror(errno));
	buf = malloc(opt.size);
	if (!buf)
		die("out of memory");
	memset(buf, 'l', opt.size);
	snprintf(prefix, sizeof(prefix), "nb-%d-", (int)getpid());
	t0 = now();
	double end = t0 + opt.time;

	if (strcmp(wl, "getattr") == 0 || strcmp(wl, "latency") == 0) {
		struct stat st;

		for (; n < opt.count && (n % 1024 || now() < end); n++)
			if (fstat(fd, &st) != 0)
				die("fstat: %s", strerror(errno));
		secs = now() - t0;
		result("ops/s", (double)n / secs, n, secs, NULL);
	} else if (strcmp(wl, "lookup") == 0) {
		struct lname ln = { 0 };
		struct stat st;

		local_names(fd, &ln, false);
		t0 = now();
		end = t0 + opt.time;
		for (; n < opt.count && (n % 1024 || now() < end); n++)
			if (fstatat(fd, ln.v[n % ln.n], &st, AT_SYMLINK_NOFOLLOW) != 0)
				die("fstatat: %s", strerror(errno));
		secs = now() - t0;
		result("ops/s", (double)n / secs, n, secs, NULL);
		local_names_free(&ln);
	} else if (strcmp(wl, "readdirplus") == 0 || strcmp(wl, "readdir") == 0) {
		uint64_t listings = 0;

		do {
			n += local_list(fd, wl[7] == 'p', buf, opt.size);
			listings++;
		} while (listings < opt.count && now() < end);
		secs = now() - t0;
		result("entries/s", (double)n / secs, n, secs, NULL);
	} else if (strcmp(wl, "read") == 0 || strcmp(wl, "read-tcp") == 0) {
		/*
		 * read-tcp: each piece also sent over one loopback TCP
		 * connection to a child that receives it into one buffer, the
		 * most that connection carries here (a READ without RPC or NFS)
		 */
		bool tcp = wl[4] == '-';
		struct stat st;
		uint64_t bytes = 0;
		pid_t child = -1;
		int s = -1, status;

		if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < opt.size)
			die("%s: %s is smaller than one request", wl, path);
		uint64_t chunks = (uint64_t)st.st_size / opt.size;

		if (tcp) {
			s = tcp_receiver(buf, &child);
			t0 = now();
			end = t0 + opt.time;
		}
		for (; n < opt.count && n < chunks && now() < end; n++) {
			ssize_t r = pread(fd, buf, opt.size, (off_t)(n * opt.size));

			if (r <= 0)
				die("pread: %s", r < 0 ? strerror(errno) : "end of file");
			for (ssize_t done = 0, w; s >= 0 && done < r; done += w)
				if ((w = send(s, buf + done, (size_t)(r - done), 0)) <= 0)
					die("read-tcp: send: %s", strerror(errno));
			bytes += (uint64_t)r;
		}
		if (tcp) {
			shutdown(s, SHUT_WR);
			if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				die("read-tcp: the receiving child failed");
			close(s);
		}
		secs = now() - t0; /* read-tcp: until the last byte was received */
		result("MB/s", (double)bytes / 1e6 / secs, n, secs, NULL);
	} else if (strcmp(wl, "write") == 0) {
		uint64_t bytes = 0;
		int w;

		snprintf(name, sizeof(name), "%swrite", prefix);
		w = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (w < 0)
			die("create %s: %s", name, strerror(errno));
		for (; bytes < opt.bytes && now() < end; n++) {
			if (pwrite(w, buf, opt.size, (off_t)bytes) != (ssize_t)opt.size)
				die("pwrite: %s", strerror(errno));
			bytes += opt.size;
		}
		if (fsync(w) != 0)
			die("fsync: %s", strerror(errno));
		secs = now() - t0;
		close(w);
		unlinkat(fd, name, 0);
		result("MB/s", (double)bytes / 1e6 / secs, n, secs, NULL);
	} else if (strcmp(wl, "create") == 0 || strcmp(wl, "remove") == 0) {
		bool cr = wl[0] == 'c';
		uint64_t made = 0;

		for (; made < opt.count && (cr ? now() < end : true); made++) {
			int c;

			snprintf(name, sizeof(name), "%s%" PRIu64, prefix, made);
			c = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (c < 0)
				die("create %s: %s", name, strerror(errno));
			if (cr && (write(c, buf, 4096) != 4096 || fsync(c) != 0))
				die("write+fsync %s: %s", name, strerror(errno));
			close(c);
		}
		if (cr) {
			secs = now() - t0;
			result("ops/s", (double)made / secs, made, secs, NULL);
		}
		t0 = now();
		for (n = 0; n < made; n++) {
			snprintf(name, sizeof(name), "%s%" PRIu64, prefix, n);
			if (unlinkat(fd, name, 0) != 0)
				die("unlink %s: %s", name, strerror(errno));
		}
		if (!cr) {
			secs = now() - t0;
			result("ops/s", (double)n / secs, n, secs, NULL);
		}
	} else if (strcmp(wl, "copyup") == 0 || strcmp(wl, "copyup-big") == 0) {
		/* cp: copy_file_range to DEST, no fsync (what `cp` does) */
		bool big = wl[6] == '-';
		struct lname ln = { 0 };
		int dfd;
		uint64_t bytes = 0;

		if (!dest)
			die("%s --local needs a destination directory", wl);
		dfd = open(dest, O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			die("%s: %s", dest, strerror(errno));
		if (!big)
			local_names(fd, &ln, true);
		t0 = now();
		end = t0 + opt.time;
		for (; n < (big ? 1 : ln.n) && n < opt.count && now() < end; n++) {
			int src = big ? dup(fd) : openat(fd, ln.v[n], O_RDONLY);
			int dst;
			struct stat st;

			snprintf(name, sizeof(name), "%s%" PRIu64, prefix, n);
			dst = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (src < 0 || dst < 0 || fstat(src, &st) != 0)
				die("copy: %s", strerror(errno));
			for (off_t left = st.st_size; left > 0;) {
				ssize_t r = copy_file_range(src, NULL, dst, NULL, (size_t)left, 0);

				if (r <= 0)
					die("copy_file_range: %s", r < 0 ? strerror(errno) : "short");
				left -= r;
				bytes += (uint64_t)r;
			}
			close(src);
			close(dst);
		}
		secs = now() - t0;
		if (big)
			result("MB/s", (double)bytes / 1e6 / secs, n, secs, NULL);
		else
			result("files/s", (double)n / secs, n, secs, NULL);
		for (uint64_t i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s%" PRIu64, prefix, i);
			unlinkat(dfd, name, 0);
		}
		close(dfd);
		local_names_free(&ln);
	} else {
		die("unknown workload %s", wl);
	}
	free(buf);
	close(fd);
	close(base);
	return 0;
}

/* ---------- main ---------- */

/* A byte count with an optional k, M or G (powers of 1024). */
static uint64_t parse_bytes(const char *arg, const char *what)
{
	char *end;
	uint64_t v = strtoull(arg, &end, 0);

	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end || end == arg)
		die("%s %s: not a byte count (N, Nk, NM, NG)", what, arg);
	return v;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nfsbench [options] WORKLOAD PATH [DEST]\n"
		"  PATH is relative to the export root (or to --local DIR)\n"
		"workloads:\n"
		"  getattr FILE        GETATTR, --depth in flight (ops/s)\n"
		"  latency FILE        GETATTR depth 1, p50/p99/max latency (us)\n"
		"  lookup DIR          LOOKUP of each name in DIR + GETATTR of the result (ops/s)\n"
		"  readdirplus DIR     whole listings, cookie loop (entries/s)\n"
		"  readdir DIR         same with READDIR\n"
		"  read FILE           READ --size requests over the file (MB/s)\n"
		"  read-tcp FILE       (--local only) the file pread and sent over one loopback\n"
		"                      TCP connection to a receiver, --size pieces (MB/s)\n"
		"  write DIR           WRITE UNSTABLE --bytes to a new file + COMMIT (MB/s)\n"
		"  create DIR          CREATE + 4 KiB FILE_SYNC WRITE (ops/s; removed after)\n"
		"  remove DIR          REMOVE of --count files made before the clock (ops/s)\n"
		"  copyup DIR          1-byte FILE_SYNC WRITE to every regular file (files/s)\n"
		"  copyup-big FILE     1-byte FILE_SYNC WRITE to one file (file MB/s)\n"
		"  replay TRACE [DIR]  replay a trace of LOOKUP, GETATTR, ACCESS, READLINK, READ,\n"
		"                      READDIR(PLUS), FSSTAT, FSINFO, PATHCONF calls\n"
		"                      one call at a time, DIR as its / (seconds until done)\n"
		"  instances DIR       per-client instances of an export with path = DIR/{name}:\n"
		"                      --count new names DIR/ro-N (MNT + GETATTR), then DIR/rw-N\n"
		"                      (+ CREATE + small WRITE); server VmRSS growth per instance\n"
		"                      (KiB, needs --server-pid) and MNT p50/p99 (us)\n"
		"options:\n"
		"  --server ADDR (127.0.0.1)  --port N (NFS)  --mount-port N (default --port)\n"
		"  --export PATH (/)  --bind ADDR (source address)  --depth N (1)\n"
		"  --count N  --time SECONDS (10)  --size BYTES (524288)  --bytes N (1 GiB)\n"
		"  --dircount N (8192)  --maxcount N (65536)  --name LABEL\n"
		"  --server-pid PID: the server whose VmRSS the instances workload reads\n"
		"  --local DIR: the same operations as system calls under DIR\n"
		"    (copyup/copyup-big need DEST: copy_file_range there, like cp)\n"
		"data-set helpers (with --local DIR):\n"
		"  mkfiles SUBDIR COUNT PREFIX [--fill BYTES]   files PREFIX0000000..\n"
		"  mkwhiteouts SUBDIR COUNT PREFIX               overlay whiteouts (0/0 char devices)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "server", 1, NULL, 's' },   { "port", 1, NULL, 'p' },
		{ "mount-port", 1, NULL, 'm' }, { "export", 1, NULL, 'e' },
		{ "bind", 1, NULL, 'b' },     { "local", 1, NULL, 'L' },
		{ "name", 1, NULL, 'n' },     { "depth", 1, NULL, 'd' },
		{ "count", 1, NULL, 'c' },    { "time", 1, NULL, 't' },
		{ "size", 1, NULL, 'S' },     { "bytes", 1, NULL, 'B' },
		{ "dircount", 1, NULL, 'D' }, { "maxcount", 1, NULL, 'M' },
		{ "fill", 1, NULL, 'F' },     { "help", 0, NULL, 'h' },
		{ "server-pid", 1, NULL, 'P' }, { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': opt.server = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'm': opt.mount_port = atoi(optarg); break;
		case 'e': opt.export = optarg; break;
		case 'b': opt.bind = optarg; break;
		case 'L': opt.local = optarg; break;
		case 'n': opt.name = optarg; break;
		case 'd': opt.depth = atoi(optarg); break;
		case 'c': opt.count = strtoull(optarg, NULL, 0); break;
		case 't': opt.time = atof(optarg); break;
		case 'S': opt.size = (uint32_t)parse_bytes(optarg, "--size"); break;
		case 'B': opt.bytes = parse_bytes(optarg, "--bytes"); break;
		case 'D': opt.dircount = (uint32_t)parse_bytes(optarg, "--dircount"); break;
		case 'M': opt.maxcount = (uint32_t)parse_bytes(optarg, "--maxcount"); break;
		case 'F': fill_bytes = parse_bytes(optarg, "--fill"); break;
		case 'P': server_pid = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	if (opt.depth < 1 || opt.depth > MAX_DEPTH)
		die("--depth %d: must be 1..%d", opt.depth, MAX_DEPTH);
	if (opt.size < 1 || opt.size > 4 * 1024 * 1024)
		die("--size %u: must be 1..4194304", opt.size);
	if (opt.count < 1 || opt.time <= 0)
		die("--count and --time must be positive");
	if (!opt.name)
		opt.name = argv[optind];
	if (opt.bind) {
		if (inet_pton(AF_INET, opt.bind, &bind_addr) != 1)
			die("--bind %s: not an IPv4 address", opt.bind);
		bind_set = true;
	}
	if (opt.local)
		return run_local(argv[optind], argv[optind + 1],
				 argc - optind > 2 ? argv[optind + 2] : NULL,
				 argc - optind > 3 ? argv[optind + 3] : NULL);
	if (opt.port <= 0)
		die("--port is required (the server's NFS port)");
	if (strcmp(argv[optind], "replay") == 0)
		return run_replay(argv[optind + 1], argc - optind > 2 ? argv[optind + 2] : NULL);
	if (strcmp(argv[optind], "instances") == 0)
		return run_instances(argv[optind + 1]);
	return run_nfs(argv[optind], argv[optind + 1]);
}
