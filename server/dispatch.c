/*
 * dispatch.c - from a complete record to a reply: header verdict, program,
 * version and procedure lookup, credential strength, XDR decode of the
 * arguments, the hop to the worker pool, and freeing the call.
 *
 * Owns: struct onfs_call (through struct onfs_call_ext) and everything a
 * call owns (record, decoded args, reply buffer, READ payload); the call
 * and reply-buffer free lists (kept in the transport's pool).
 * Also: the duplicate request cache around the calls it covers (lookup
 * before queueing, completion in after_work; server/drc.c) and the
 * embedded-NUL check of decoded names.
 * Thread: the loop thread, except onfs_dispatch_run/work_cb and
 * onfs_call_data_alloc, which run on a pool worker for non-on_loop
 * procedures (they touch only the call itself, plus the READ-buffer part
 * of the pool under its lock). onfs_server_export_by_id: any thread (the
 * export table is fixed once serving).
 * Never: touches sockets (replies leave through onfs_transport_send_reply),
 * blocks the loop, or lets a procedure free its own args.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <rpc/rpc.h>
#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/rpc.h"
#include "ovlnfsd/server.h"
#include "ovlnfsd/daemon.h" /* metrics hooks */

#define DEFAULT_REPLY_SIZE 4096
/*
 * Largest encoded args of a procedure whose strings are checked (SYMLINK:
 * handle, name<1024>, sattr3, path<4096> is about 5.3 KiB).
 */
#define STRING_ARGS_MAX 8192

/* RFC 1813 program numbers (the rpcgen headers are not included here). */
#define PROG_NFS 100003
#define PROG_MOUNT 100005

static const struct onfs_program *const programs[] = {
	&onfs_nfs3_program,
	&onfs_mount3_program,
	&onfs_pmap2_program,
	&onfs_nlm4_program, /* nlm.c: NLM 1, 3, 4 and NSM 1 (nsm.c) */
	&onfs_nlm3_program,
	&onfs_nlm1_program,
	&onfs_nsm1_program,
};

static struct onfs_call_ext *call_ext(struct onfs_call *c)
{
	return ONFS_CONTAINER_OF(c, struct onfs_call_ext, c);
}

struct onfs_call *onfs_call_alloc(struct onfs_server *srv)
{
	struct onfs_call_pool *pool = onfs_transport_pool(srv);
	struct onfs_call_ext *e;

	if (pool && pool->free_calls) {
		e = pool->free_calls;
		pool->free_calls = e->next_free;
		pool->nfree_calls--;
	} else {
		e = malloc(sizeof(*e));
		if (!e)
			return NULL;
	}
	memset(e, 0, sizeof(*e));
	if (pool)
		pool->live++;
	e->c.srv = srv;
	return &e->c;
}

/* A reply buffer of at least size bytes; standard sizes come from the pool. */
static int reply_alloc(struct onfs_call *c, size_t size)
{
	struct onfs_call_pool *pool = onfs_transport_pool(c->srv);
	void *buf;

	if (size <= ONFS_POOL_REPLY_SIZE) {
		size = ONFS_POOL_REPLY_SIZE;
		if (pool && pool->free_replies) {
			buf = pool->free_replies;
			pool->free_replies = pool->free_replies->next;
			pool->nfree_replies--;
			goto out_ok;
		}
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
out_ok:
	c->reply = buf;
	c->reply_cap = size;
	c->reply_len = 0;
	return 0;
}

static void reply_release(struct onfs_call_pool *pool, uint8_t *buf, size_t cap)
{
	struct onfs_reply_buf *rb;

	if (!buf)
		return;
	if (pool && cap == ONFS_POOL_REPLY_SIZE && pool->nfree_replies < ONFS_POOL_MAX_FREE) {
		rb = (struct onfs_reply_buf *)(void *)buf;
		rb->next = pool->free_replies;
		pool->free_replies = rb;
		pool->nfree_replies++;
		return;
	}
	free(buf);
}

int onfs_call_pool_init(struct onfs_call_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	return uv_mutex_init(&pool->data_lock);
}

void onfs_call_pool_destroy(struct onfs_call_pool *pool)
{
	while (pool->nfree_data > 0)
		free(pool->free_data[--pool->nfree_data]);
	uv_mutex_destroy(&pool->data_lock);
	while (pool->free_calls) {
		struct onfs_call_ext *e = pool->free_calls;

		pool->free_calls = e->next_free;
		free(e);
	}
	while (pool->free_replies) {
		struct onfs_reply_buf *rb = pool->free_replies;

		pool->free_replies = rb->next;
		free(rb);
	}
	pool->nfree_calls = pool->nfree_replies = 0;
}

/* Any thread: the call's own args. */
static void args_release(struct onfs_call *c)
{
	if (!c->args)
		return;
	if (c->p && c->p->xdr_args)
		xdr_free(c->p->xdr_args, c->args);
	if (c->args != (void *)call_ext(c)->args_inline.b)
		free(c->args);
	c->args = NULL;
}

/* Any thread: give the READ payload buffer back (pool or heap). */
static void data_release(struct onfs_call *c)
{
	struct onfs_call_ext *e = call_ext(c);
	struct onfs_call_pool *pool = onfs_transport_pool(c->srv);
	void *buf = c->data_buf;

	c->data_buf = NULL;
	c->data = NULL;
	c->data_len = 0;
	if (!buf)
		return;
	if (pool && e->data_cap == ONFS_DATA_POOL_SIZE) {
		uv_mutex_lock(&pool->data_lock);
		if (pool->nfree_data < ONFS_DATA_POOL_MAX) {
			pool->free_data[pool->nfree_data++] = buf;
			buf = NULL;
		}
		uv_mutex_unlock(&pool->data_lock);
	}
	free(buf);
	e->data_cap = 0;
}

void onfs_call_free(struct onfs_call *c)
{
	struct onfs_server *srv = c->srv;
	struct onfs_call_pool *pool = onfs_transport_pool(srv);
	struct onfs_conn *conn = c->conn;
	struct onfs_call_ext *e = call_ext(c);

	args_release(c);
	free(c->rec);
	data_release(c);
	reply_release(pool, c->reply, c->reply_cap);
	if (pool) {
		pool->live--;
		if (pool->nfree_calls < ONFS_POOL_MAX_FREE) {
			e->next_free = pool->free_calls;
			pool->free_calls = e;
			pool->nfree_calls++;
		} else {
			free(e);
		}
	} else {
		free(e);
	}
	/* These two may free the connection and the transport: last. */
	if (conn)
		onfs_transport_conn_put(conn);
	onfs_transport_call_gone(srv);
}

/* Worker (or loop for on_loop procedures). */
void *onfs_call_data_alloc(struct onfs_call *c, size_t len)
{
	struct onfs_call_ext *e = call_ext(c);
	struct onfs_call_pool *pool = onfs_transport_pool(c->srv);
	void *buf = NULL;

	data_release(c);
	if (len > ONFS_DATA_POOL_MIN && len <= ONFS_DATA_POOL_SIZE) {
		if (pool) {
			uv_mutex_lock(&pool->data_lock);
			if (pool->nfree_data > 0)
				buf = pool->free_data[--pool->nfree_data];
			uv_mutex_unlock(&pool->data_lock);
		}
		len = ONFS_DATA_POOL_SIZE;
	}
	if (!buf)
		buf = malloc(len ? len : 1);
	if (buf) {
		e->data_cap = len;
		c->data_buf = buf;
		c->data = buf;
	}
	return buf;
}

struct onfs_export *onfs_server_export_by_id(struct onfs_server *srv, uint16_t id)
{
	size_t i;

	for (i = 0; i < srv->nexports; i++)
		if (srv->exports[i] && onfs_export_id(srv->exports[i]) == id)
			return srv->exports[i];
	return NULL;
}

static void reply_discard(struct onfs_call *c)
{
	reply_release(onfs_transport_pool(c->srv), c->reply, c->reply_cap);
	c->reply = NULL;
	c->reply_cap = c->reply_len = 0;
}

enum short_reply {
	SHORT_ACCEPTED,     /* MSG_ACCEPTED stat (low..high for PROG_MISMATCH) */
	SHORT_RPC_MISMATCH, /* MSG_DENIED RPC_MISMATCH 2..2 */
	SHORT_AUTH_ERROR,   /* MSG_DENIED AUTH_ERROR stat */
};

/* Answer with a header-only reply (errors found on the loop). */
static void reply_short(struct onfs_call *c, enum short_reply kind, uint32_t stat,
			uint32_t low, uint32_t high)
{
	int n;

	if (reply_alloc(c, ONFS_RPC_REPLY_HDR_MAX) < 0)
		goto out_drop;
	switch (kind) {
	case SHORT_RPC_MISMATCH:
		n = onfs_rpc_encode_rpc_mismatch(c->reply, c->reply_cap, c->xid);
		break;
	case SHORT_AUTH_ERROR:
		n = onfs_rpc_encode_auth_error(c->reply, c->reply_cap, c->xid, stat);
		break;
	case SHORT_ACCEPTED:
	default:
		n = onfs_rpc_encode_accepted(c->reply, c->reply_cap, c->xid, stat, low, high);
		break;
	}
	if (n < 0)
		goto out_drop;
	c->reply_len = (size_t)n;
	onfs_metrics_call_done(c);
	onfs_transport_send_reply(c);
	return;
out_drop:
	onfs_call_free(c);
}

static void reply_accepted(struct onfs_call *c, uint32_t stat, uint32_t low, uint32_t high)
{
	reply_short(c, SHORT_ACCEPTED, stat, low, high);
}

void onfs_dispatch_run(struct onfs_call *c)
{
	XDR xdrs;
	bool ok;

	xdrmem_create(&xdrs, (char *)c->reply, (u_int)c->reply_cap, XDR_ENCODE);
	ok = onfs_rpc_xdr_accepted(&xdrs, c->xid, SUCCESS, 0, 0) && c->p->run(c, c->args, &xdrs);
	if (ok && c->auth_deny) {
		/* the procedure refused the credential: a denied reply instead */
		int n;

		data_release(c);
		n = onfs_rpc_encode_auth_error(c->reply, c->reply_cap, c->xid, c->auth_deny);
		c->reply_len = n < 0 ? 0 : (size_t)n;
	} else if (ok) {
		c->reply_len = xdr_getpos(&xdrs);
	} else {
		int n;

		onfs_warn("%s: cannot encode reply (xid %08x)", c->p->name ? c->p->name : "?",
			  c->xid);
		data_release(c);
		n = onfs_rpc_encode_accepted(c->reply, c->reply_cap, c->xid, SYSTEM_ERR, 0, 0);
		c->reply_len = n < 0 ? 0 : (size_t)n;
	}
	xdr_destroy(&xdrs);
	args_release(c);
	onfs_call_leave(c);
}

static void after_work_cb(uv_work_t *req, int status);

/*
 * Loop thread: a procedure's answer from memory (run_cached), saving the
 * two thread hops of the pool. false: nothing was sent, queue the call.
 */
static bool dispatch_cached(struct onfs_call *c)
{
	XDR xdrs;
	bool ok;

	xdrmem_create(&xdrs, (char *)c->reply, (u_int)c->reply_cap, XDR_ENCODE);
	ok = onfs_rpc_xdr_accepted(&xdrs, c->xid, SUCCESS, 0, 0) &&
	     c->p->run_cached(c, c->args, &xdrs) && !c->auth_deny;
	if (ok)
		c->reply_len = xdr_getpos(&xdrs);
	xdr_destroy(&xdrs);
	onfs_call_leave(c); /* an instance it entered; a worker enters again */
	if (!ok) {
		c->auth_deny = 0;
		return false;
	}
	args_release(c);
	after_work_cb(&c->work, 0);
	return true;
}

/*
 * Workers run a little below the loop's priority (nice +ONFS_WORKER_NICE
 * relative to the process). The loop is the one thread every client
 * passes through: when workers copying 1 MiB WRITEs keep both CPUs busy,
 * an equal share left the loop waiting its turn for tens of milliseconds,
 * and every other client's GETATTR with it. A worker waiting for the disk
 * is not runnable, so this costs no I/O parallelism. Linux sets nice per
 * thread; where it cannot be raised, nothing changes.
 */
#define ONFS_WORKER_NICE 5

static void worker_priority(void)
{
	static __thread bool done;
	int now;

	if (done)
		return;
	done = true;
	errno = 0;
	now = getpriority(PRIO_PROCESS, 0); /* this thread's, on Linux */
	if (now == -1 && errno != 0)
		return;
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), now + ONFS_WORKER_NICE);
}

static void work_cb(uv_work_t *req)
{
	worker_priority();
	onfs_dispatch_run(ONFS_CONTAINER_OF(req, struct onfs_call, work));
}

/*
 * The original of a cached call has its reply (loop thread): keep a copy
 * and answer every retransmit that waited for it with that same reply.
 * A reply followed by a payload (READ data) is never cached.
 */
static void drc_finish(struct onfs_call *c)
{
	struct onfs_call_ext *e = call_ext(c);
	struct onfs_drc_waiter *w, *next;
	bool have = c->reply_len > 0 && c->data_len == 0;

	w = onfs_drc_complete(onfs_transport_drc(c->srv), e->drc_entry, have ? c->reply : NULL,
			      have ? c->reply_len : 0, uv_now(c->srv->loop));
	e->drc_entry = NULL;
	for (; w; w = next) {
		struct onfs_call *wc = &ONFS_CONTAINER_OF(w, struct onfs_call_ext, drc_wait)->c;

		next = w->next;
		if (!have || reply_alloc(wc, c->reply_len) < 0) {
			/* as if lost: the client retransmits and the call runs then */
			onfs_call_free(wc);
			continue;
		}
		memcpy(wc->reply, c->reply, c->reply_len);
		wc->reply_len = c->reply_len;
		onfs_transport_send_reply(wc);
	}
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct onfs_call *c = ONFS_CONTAINER_OF(req, struct onfs_call, work);

	(void)status; /* never cancelled: stop waits for in-flight calls */
	if (call_ext(c)->drc_entry)
		drc_finish(c);
	if (c->reply_len == 0) {
		onfs_call_free(c);
	} else {
		onfs_metrics_call_done(c);
		onfs_transport_send_reply(c);
	}
}

/*
 * Procedures whose arguments hold a filename3, nfspath3 or dirpath:
 * NFSv3 LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME,
 * LINK; MOUNT MNT and UMNT.
 */
static bool has_strings(uint32_t prog, uint32_t proc)
{
	if (prog == PROG_NFS)
		return proc == 3 || (proc >= 8 && proc <= 15);
	if (prog == PROG_MOUNT)
		return proc == 1 || proc == 3;
	return false;
}

/*
 * xdr_string stops at an embedded NUL: a name sent as "a\0b" decodes as
 * "a", and REMOVE would remove "a". knfsd refuses a name holding a NUL (or
 * a '/') while decoding, which answers GARBAGE_ARGS; so do we, for NULs
 * ('/' is nfs3.c's business). The simplest exact test: encode the decoded
 * args again and compare with the bytes the decoder consumed; a string cut
 * short at a NUL changes its length word. The same comparison refuses
 * non-canonical XDR (non-zero padding, a bool other than 0 or 1), which
 * RFC 4506 does not allow and no client sends. These args are small.
 */
static bool strings_intact(const struct onfs_proc *p, void *args, const uint8_t *wire,
			   size_t len)
{
	uint8_t buf[STRING_ARGS_MAX];
	XDR xdrs;
	bool ok;

	if (len > sizeof(buf))
		return false;
	xdrmem_create(&xdrs, (char *)buf, (u_int)len, XDR_ENCODE);
	ok = p->xdr_args(&xdrs, args) && xdr_getpos(&xdrs) == len &&
	     memcmp(buf, wire, len) == 0;
	xdr_destroy(&xdrs);
	return ok;
}

/*
 * Duplicate request cache lookup for a decoded call (loop thread). Returns
 * true when the call is taken care of: answered with the cached reply, or
 * parked behind its running original (drc_finish answers it). Otherwise
 * the call runs, and completes its entry (if it got one) in after_work.
 */
static bool drc_check(struct onfs_call *c, struct onfs_drc *drc, size_t args_len)
{
	struct onfs_call_ext *e = call_ext(c);
	struct onfs_drc_key k;
	const uint8_t *reply;
	size_t len;

	onfs_drc_key_init(drc, &k, c->peer_len > 0 ? (const struct sockaddr *)&c->peer : NULL,
			  c->conn != NULL, c->xid, c->prog, c->vers, c->proc,
			  c->rec + c->args_off, args_len);
	switch (onfs_drc_lookup(drc, &k, uv_now(c->srv->loop), &e->drc_wait, &e->drc_entry,
				&reply, &len)) {
	case ONFS_DRC_REPLAY:
		onfs_metrics_add(&onfs_metrics.drc_hits, 1);
		onfs_debug("%s: answering retransmit xid %08x from the cache", c->p->name,
			   c->xid);
		args_release(c);
		if (reply_alloc(c, len) < 0) {
			onfs_call_free(c);
			return true;
		}
		memcpy(c->reply, reply, len);
		c->reply_len = len;
		onfs_transport_send_reply(c);
		return true;
	case ONFS_DRC_WAIT:
		onfs_metrics_add(&onfs_metrics.drc_waits, 1);
		onfs_debug("%s: retransmit xid %08x waits for the original", c->p->name, c->xid);
		args_release(c);
		return true;
	case ONFS_DRC_MISS:
	default:
		return false;
	}
}

/*
 * The entry serving (prog, vers), or NULL; *known tells whether prog is
 * served at all and *low..*high the versions it is served in (NLM has
 * several entries, one per version).
 */
static const struct onfs_program *find_program(uint32_t prog, uint32_t vers, bool *known,
					       uint32_t *low, uint32_t *high)
{
	const struct onfs_program *hit = NULL;
	size_t i;

	*known = false;
	*low = UINT32_MAX;
	*high = 0;
	for (i = 0; i < ONFS_ARRAY_SIZE(programs); i++) {
		if (programs[i]->prog != prog)
			continue;
		*known = true;
		if (programs[i]->vers < *low)
			*low = programs[i]->vers;
		if (programs[i]->vers > *high)
			*high = programs[i]->vers;
		if (programs[i]->vers == vers)
			hit = programs[i];
	}
	return hit;
}

void onfs_dispatch_record(struct onfs_server *srv, struct onfs_conn *conn,
			  const struct sockaddr *peer, int peer_len, uint16_t local_port,
			  uint8_t *rec, size_t rec_len)
{
	struct onfs_rpc_hdr h;
	const struct onfs_program *prog;
	const struct onfs_proc *p;
	struct onfs_call *c;
	struct onfs_drc *drc = NULL;
	uint32_t auth_stat, vlow, vhigh;
	bool known;
	size_t body, args_len = 0;
	XDR xdrs;
	bool ok;

	c = onfs_call_alloc(srv);
	if (!c) {
		free(rec);
		return;
	}
	c->t_start = uv_hrtime();
	c->conn = conn;
	if (conn)
		onfs_transport_conn_get(conn);
	if (peer && peer_len > 0 && (size_t)peer_len <= sizeof(c->peer)) {
		memcpy(&c->peer, peer, (size_t)peer_len);
		c->peer_len = peer_len;
	}
	c->local_port = local_port;
	c->rec = rec;
	c->rec_len = rec_len;

	switch (onfs_rpc_decode_call(rec, rec_len, &h, &auth_stat)) {
	case ONFS_RPC_OK:
		break;
	case ONFS_RPC_BAD_RPCVERS:
		c->xid = h.xid;
		reply_short(c, SHORT_RPC_MISMATCH, 0, 0, 0);
		return;
	case ONFS_RPC_AUTH_ERROR:
		c->xid = h.xid;
		reply_short(c, SHORT_AUTH_ERROR, auth_stat, 0, 0);
		return;
	case ONFS_RPC_DROP:
	default:
		onfs_debug("dropping a record that is not an RPC call (%zu bytes)", rec_len);
		onfs_call_free(c);
		return;
	}
	c->xid = h.xid;
	c->prog = h.prog;
	c->vers = h.vers;
	c->proc = h.proc;
	c->cred = h.cred;
	c->args_off = h.args_off;

	prog = find_program(h.prog, h.vers, &known, &vlow, &vhigh);
	if (!known) {
		reply_accepted(c, PROG_UNAVAIL, 0, 0);
		return;
	}
	if (!prog) {
		reply_accepted(c, PROG_MISMATCH, vlow, vhigh);
		return;
	}
	if (h.proc >= prog->nprocs || !prog->procs[h.proc].run) {
		reply_accepted(c, PROC_UNAVAIL, 0, 0);
		return;
	}
	p = &prog->procs[h.proc];
	if (h.cred.flavor == ONFS_AUTH_NONE && !p->auth_none_ok) {
		reply_short(c, SHORT_AUTH_ERROR, AUTH_TOOWEAK, 0, 0);
		return;
	}
	c->p = p;

	if (p->args_size <= ONFS_ARGS_INLINE) {
		/* zeroed by onfs_call_alloc */
		c->args = call_ext(c)->args_inline.b;
	} else {
		c->args = calloc(1, p->args_size);
		if (!c->args)
			goto out_system_err;
	}
	ok = true;
	if (p->xdr_args) {
		xdrmem_create(&xdrs, (char *)rec + h.args_off, (u_int)(rec_len - h.args_off),
			      XDR_DECODE);
		ok = p->xdr_args(&xdrs, c->args);
		args_len = xdr_getpos(&xdrs);
		xdr_destroy(&xdrs);
		if (ok && has_strings(h.prog, h.proc))
			ok = strings_intact(p, c->args, rec + h.args_off, args_len);
	}
	if (!ok) {
		onfs_debug("%s: cannot decode arguments (xid %08x)", p->name ? p->name : "?", h.xid);
		args_release(c);
		reply_accepted(c, GARBAGE_ARGS, 0, 0);
		return;
	}

	drc = onfs_transport_drc(srv);
	if (drc && onfs_drc_cacheable(h.prog, h.vers, h.proc) && drc_check(c, drc, args_len))
		return;

	body = p->reply_size ? p->reply_size(c->args) : DEFAULT_REPLY_SIZE;
	if (reply_alloc(c, ONFS_RPC_ACCEPTED_HDR_LEN + body) < 0)
		goto out_system_err;

	if (p->on_loop) {
		onfs_dispatch_run(c);
		after_work_cb(&c->work, 0);
		return;
	}
	if (p->run_cached && !call_ext(c)->drc_entry && dispatch_cached(c))
		return;
	if (onfs_transport_queue_work(c, work_cb, after_work_cb) < 0)
		goto out_system_err;
	return;

out_system_err:
	if (call_ext(c)->drc_entry) {
		/* not run: forget the entry (no waiter can have joined yet) */
		onfs_drc_complete(drc, call_ext(c)->drc_entry, NULL, 0, uv_now(srv->loop));
		call_ext(c)->drc_entry = NULL;
	}
	args_release(c);
	reply_discard(c);
	reply_accepted(c, SYSTEM_ERR, 0, 0);
}
