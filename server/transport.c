/*
 * transport.c - the sockets: TCP and UDP listeners (the NFS port and the
 * optional separate portmap address), TCP connections with record marking,
 * in-flight accounting, and writing replies.
 *
 * Owns: struct onfs_transport (srv->transport), every uv handle of the
 * server, struct onfs_conn (refcounted: the open handle holds one
 * reference, each call in flight one more), the call pool, the duplicate
 * request cache (used by dispatch.c; it outlives every call).
 * Thread: the loop thread only.
 * Never: blocks, runs procedures, or frees a uv handle outside its
 * close_cb. A reply whose connection has gone is dropped, never written.
 *
 * Life of a connection: accepted -> reading -> (in-flight cap or queued
 * reply bytes cap reached: reading paused until a call finishes) -> closing
 * (EOF, error, record over the cap, a record or a queued reply not taken
 * within io_timeout, evicted to make room, or stop once its calls are done)
 * -> closed in close_cb -> freed when the last call referencing it is freed.
 *
 * Connection cap (max_connections, fitted to RLIMIT_NOFILE): t->conns is
 * kept in least-recently-active order (head: most recent), so when a new
 * connection would exceed the cap the longest-idle connection with no call
 * in flight - or one whose replies have not been taken for a while - is
 * closed to make room, with a log line, as knfsd does. Busy connections
 * are never evicted; only when every connection is busy is the new one
 * refused. A sweep timer closes connections whose record has been
 * incomplete, or whose queued replies have not moved, for io_timeout.
 *
 * Stop: listeners close at once; connections stop reading and close once
 * their in-flight calls have been answered (or after ONFS_STOP_GRACE_MS);
 * UDP sockets close once no call is live. When the last handle is closed
 * the transport frees itself and sets srv->transport to NULL, so a loop
 * that serves nothing else simply runs out of handles and uv_run returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/drc.h"
#include "ovlnfsd/recmark.h"
#include "ovlnfsd/rpc.h"
#include "ovlnfsd/server.h"
#include "ovlnfsd/daemon.h" /* metrics counters */

#define ONFS_DEFAULT_MAX_CONNS 4096
#define ONFS_FD_RESERVE 64      /* descriptors kept for files, the log, the pool */
#define ONFS_MIN_MAX_CONNS 16
#define ONFS_DEFAULT_IO_TIMEOUT 30 /* seconds */
#define ONFS_CONN_MAX_INFLIGHT 64
/* reply bytes queued in user space before reading that connection pauses */
#define ONFS_CONN_MAX_QUEUED (4u * 1024 * 1024)
#define ONFS_STALL_EVICT_MS 1000 /* replies not moving this long: evictable */
#define ONFS_SWEEP_MS 500
#define ONFS_STOP_GRACE_MS 4000 /* below main.c's 5 s grace */
#define ONFS_READ_BUF (64 * 1024)
/*
 * Bytes one connection may bring in per turn of the loop before it yields:
 * its reading pauses and resumes before the next poll, so the loop goes
 * round the other ready sockets first. libuv reads a readable stream up to
 * 32 times per wake-up; with records read in place that was up to tens of
 * MiB of WRITE payload copied from one client while another's GETATTR,
 * already in its socket, waited for the loop.
 */
#define ONFS_TURN_BUDGET (256 * 1024)
#define ONFS_BACKLOG 128
#define ONFS_BIND_TRIES 32

struct onfs_listener {
	struct onfs_transport *t;  /* not owned */
	uv_tcp_t tcp;
	uv_udp_t udp;
	uint16_t port;
	bool tcp_open, udp_open;   /* initialised and not yet closing */
	bool udp_closing;
	char name[80];             /* "host:port" for logs */
};

struct onfs_conn {
	uv_tcp_t tcp;
	struct onfs_transport *t;   /* not owned */
	struct onfs_listener *lis;  /* not owned */
	struct onfs_conn *prev, *next; /* t->conns list while open */
	struct sockaddr_storage peer;
	int peer_len;
	struct onfs_recmark rm;     /* owned */
	unsigned refs;              /* 1 for the open handle + 1 per call */
	unsigned inflight;          /* calls not yet answered */
	/*
	 * Bytes read but not yet parsed because the in-flight cap was reached
	 * in the middle of a read: parsed before reading resumes.
	 */
	uint8_t *stash;             /* owned */
	size_t stash_len, stash_off;
	bool reading;
	bool feeding;               /* inside conn_feed: no re-entry */
	bool eof;                   /* the client shut down its side: answer, then close */
	bool closing;
	uint64_t last_active;       /* uv_now of the last read or reply written */
	uint64_t rec_start;         /* uv_now when the incomplete record began; 0: none */
	uint64_t queued_since;      /* uv_now since replies wait unmoved; 0: none queued */
	/* calls waiting for a worker (linked through work.data), oldest first */
	struct onfs_call *wait_head, *wait_tail;
	struct onfs_conn *rr_next;  /* t->rr ring of connections with calls waiting */
	bool in_rr;
	/* the loop-turn budget (ONFS_TURN_BUDGET) */
	uint64_t turn;              /* t->turn when turn_bytes was last reset */
	size_t turn_bytes;          /* bytes read in that turn */
	bool yielded;               /* on t->yielded: reading resumes next turn */
	struct onfs_conn *yield_next;
};

struct onfs_transport {
	struct onfs_server *srv;       /* not owned */
	struct onfs_listener lis[2];
	unsigned nlis;
	struct onfs_conn *conns;       /* open connections, most recently active first */
	struct onfs_conn *conns_tail;  /* the least recently active */
	unsigned nconns;
	unsigned fd_room;              /* connections the descriptor limit allows */
	uv_timer_t sweep_timer;
	bool sweep_open;
	uint64_t evict_log_at;         /* uv_now of the last eviction log line */
	unsigned evict_unlogged;       /* evictions since that line */
	unsigned open_handles;         /* uv handles not yet through close_cb */
	uv_timer_t stop_timer;
	bool timer_open;
	bool stopping;
	struct onfs_call_pool pool;    /* owned */
	struct onfs_drc *drc;          /* owned; NULL if it could not be made */
	/*
	 * Fair share of the worker pool: at most pool_slots calls are handed
	 * to libuv at once; the others wait on their connection, and a freed
	 * slot goes to the next connection in the ring (round-robin).
	 */
	unsigned pool_slots, pool_running;
	struct onfs_conn *rr_head, *rr_tail;
	uv_work_cb work_cb;
	uv_after_work_cb after_cb;
	/* turns of the loop, counted before each poll; connections that used
	 * their budget wait on t->yielded for the next one */
	uv_prepare_t turn_prepare;
	bool prepare_open;
	uint64_t turn;
	struct onfs_conn *yielded;
	char rbuf[ONFS_READ_BUF];      /* shared: reads are copied out at once */
};

static const uint8_t zero_pad[4];

static void transport_maybe_finish(struct onfs_transport *t);
static void conn_close(struct onfs_conn *conn);
static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_yield_maybe(struct onfs_conn *conn);

struct onfs_call_pool *onfs_transport_pool(struct onfs_server *srv)
{
	return srv->transport ? &srv->transport->pool : NULL;
}

struct onfs_drc *onfs_transport_drc(struct onfs_server *srv)
{
	return srv->transport ? srv->transport->drc : NULL;
}

static unsigned max_conns(const struct onfs_transport *t)
{
	const struct onfs_config *cfg = t->srv->cfg;
	unsigned want = cfg && cfg->max_connections ? cfg->max_connections
						    : ONFS_DEFAULT_MAX_CONNS;

	return want < t->fd_room ? want : t->fd_room;
}

static uint64_t io_timeout_ms(const struct onfs_transport *t)
{
	const struct onfs_config *cfg = t->srv->cfg;

	return (uint64_t)(cfg && cfg->io_timeout > 0 ? cfg->io_timeout
						     : ONFS_DEFAULT_IO_TIMEOUT) * 1000;
}

static size_t max_record(const struct onfs_server *srv)
{
	return srv->cfg && srv->cfg->max_record ? srv->cfg->max_record
						: ONFS_DEFAULT_MAX_RECORD;
}

static void fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		uv_ip4_name(in, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		uv_ip6_name(in6, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, port);
	} else {
		snprintf(buf, len, "?");
	}
}

/* ---------------------------------------------------------------- handles */

static void handle_closed(uv_handle_t *h)
{
	struct onfs_transport *t = h->data;

	t->open_handles--;
	transport_maybe_finish(t);
}

static void close_handle(struct onfs_transport *t, uv_handle_t *h)
{
	h->data = t;
	uv_close(h, handle_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct onfs_transport *t;

	(void)suggested;
	if (h->type == UV_TCP) {
		struct onfs_conn *conn = ONFS_CONTAINER_OF(h, struct onfs_conn, tcp);

		t = conn->t;
	} else {
		struct onfs_listener *lis = ONFS_CONTAINER_OF(h, struct onfs_listener, udp);

		t = lis->t;
	}
	if (h->type == UV_TCP) {
		struct onfs_conn *conn = ONFS_CONTAINER_OF(h, struct onfs_conn, tcp);
		uint8_t *p;
		size_t room = onfs_recmark_space(&conn->rm, &p);

		/* inside a large record: straight into it (read_cb tells by the address) */
		if (room > 0) {
			*buf = uv_buf_init((char *)p, (unsigned)(room < INT_MAX ? room : INT_MAX));
			return;
		}
	}
	/* libuv calls alloc, read, read_cb in one go per handle, so one
	 * buffer serves every socket; records are copied out in read_cb. */
	*buf = uv_buf_init(t->rbuf, sizeof(t->rbuf));
}

/* ---------------------------------------------------------------- worker pool share */

/*
 * Without this, a call went straight to libuv's single FIFO queue: a
 * client with 64 WRITEs of 1 MiB in flight put all 64 before the next
 * client's LOOKUP, which then waited for every one of them. Now the pool
 * gets at most as many calls as it has threads; the rest wait on their
 * own connection, and each freed worker takes the oldest waiting call of
 * the next connection in turn. A lone client still gets every worker.
 */
static void pool_after_cb(uv_work_t *req, int status);

static int pool_submit(struct onfs_transport *t, struct onfs_call *c)
{
	int r = uv_queue_work(t->srv->loop, &c->work, t->work_cb, pool_after_cb);

	if (r == 0)
		t->pool_running++;
	return r;
}

/* A worker is free: the next connection in the ring sends its oldest call. */
static void pool_next(struct onfs_transport *t)
{
	while (t->rr_head && t->pool_running < t->pool_slots) {
		struct onfs_conn *conn = t->rr_head;
		struct onfs_call *c = conn->wait_head;

		conn->wait_head = c->work.data;
		if (!conn->wait_head)
			conn->wait_tail = NULL;
		t->rr_head = conn->rr_next;
		if (!t->rr_head)
			t->rr_tail = NULL;
		conn->rr_next = NULL;
		conn->in_rr = false;
		if (conn->wait_head) { /* more waiting: to the back of the ring */
			conn->in_rr = true;
			if (t->rr_tail)
				t->rr_tail->rr_next = conn;
			else
				t->rr_head = conn;
			t->rr_tail = conn;
		}
		c->work.data = NULL;
		if (pool_submit(t, c) < 0) {
			/*
			 * Cannot happen with valid callbacks; the call runs on the
			 * loop then. Its after_cb may free the transport once no
			 * call is left, so look at the ring only if calls still wait.
			 */
			bool more = t->rr_head != NULL;

			t->work_cb(&c->work);
			t->after_cb(&c->work, 0);
			if (!more)
				return;
		}
	}
}

static void pool_after_cb(uv_work_t *req, int status)
{
	struct onfs_call *c = ONFS_CONTAINER_OF(req, struct onfs_call, work);
	struct onfs_transport *t = c->srv->transport;
	uv_after_work_cb after = t->after_cb;

	t->pool_running--;
	pool_next(t);
	after(req, status); /* may free the call, the connection and the transport: last */
}

int onfs_transport_queue_work(struct onfs_call *c, uv_work_cb work, uv_after_work_cb after)
{
	struct onfs_transport *t = c->srv->transport;
	struct onfs_conn *conn = c->conn;

	if (!t || !conn)
		return uv_queue_work(c->srv->loop, &c->work, work, after);
	t->work_cb = work;
	t->after_cb = after;
	if (t->pool_running < t->pool_slots && !t->rr_head)
		return pool_submit(t, c);
	c->work.data = NULL;
	if (conn->wait_tail)
		conn->wait_tail->work.data = c;
	else
		conn->wait_head = c;
	conn->wait_tail = c;
	if (!conn->in_rr) {
		conn->in_rr = true;
		conn->rr_next = NULL;
		if (t->rr_tail)
			t->rr_tail->rr_next = conn;
		else
			t->rr_head = conn;
		t->rr_tail = conn;
	}
	return 0;
}

/* ---------------------------------------------------------------- connections */

void onfs_transport_conn_get(struct onfs_conn *conn)
{
	conn->refs++;
	conn->inflight++;
}

static void conn_free(struct onfs_conn *conn)
{
	onfs_recmark_free(&conn->rm);
	free(conn->stash);
	free(conn);
}

static void conn_unlink(struct onfs_transport *t, struct onfs_conn *conn)
{
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		t->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	else
		t->conns_tail = conn->prev;
	conn->prev = conn->next = NULL;
}

static void conn_push_head(struct onfs_transport *t, struct onfs_conn *conn)
{
	conn->prev = NULL;
	conn->next = t->conns;
	if (t->conns)
		t->conns->prev = conn;
	else
		t->conns_tail = conn;
	t->conns = conn;
}

/* Activity: stamp it and move the connection to the head of the LRU list. */
static void conn_touch(struct onfs_conn *conn)
{
	struct onfs_transport *t = conn->t;

	conn->last_active = uv_now(t->srv->loop);
	if (t->conns != conn) {
		conn_unlink(t, conn);
		conn_push_head(t, conn);
	}
}

static size_t conn_queued(const struct onfs_conn *conn)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
}

/* Reading must wait: too many calls in flight or too many reply bytes queued. */
static bool conn_full(const struct onfs_conn *conn)
{
	return conn->inflight >= ONFS_CONN_MAX_INFLIGHT || conn_queued(conn) > ONFS_CONN_MAX_QUEUED;
}

static bool conn_partial(const struct onfs_conn *conn)
{
	return conn->rm.hdr_have != 0 || conn->rm.len != 0;
}

/*
 * Parse bytes into records and dispatch them until the in-flight cap is
 * reached. Bytes from the socket buffer that are left over are copied into
 * conn->stash; when feeding from the stash, only stash_off moves.
 */
static void conn_feed(struct onfs_conn *conn, const uint8_t *p, size_t left, bool from_stash)
{
	struct onfs_server *srv = conn->t->srv;

	conn->feeding = true;
	while (left > 0 && !conn->closing) {
		uint8_t *rec;
		size_t rec_len;
		ssize_t n;

		if (conn_full(conn))
			break;
		n = onfs_recmark_feed(&conn->rm, p, left, &rec, &rec_len);
		if (n < 0) {
			char a[80];

			fmt_addr((struct sockaddr *)&conn->peer, a, sizeof(a));
			onfs_warn("closing connection from %s: %s", a,
				  n == -EMSGSIZE ? "record above the size cap" : "out of memory");
			conn_close(conn);
			break;
		}
		p += n;
		left -= (size_t)n;
		if (rec) {
			conn->rec_start = 0;
			onfs_dispatch_record(srv, conn, (struct sockaddr *)&conn->peer,
					     conn->peer_len, conn->lis->port, rec, rec_len);
		}
	}
	conn->feeding = false;
	if (!conn_partial(conn))
		conn->rec_start = 0;
	else if (!conn->rec_start)
		conn->rec_start = uv_now(conn->t->srv->loop);
	if (from_stash) {
		conn->stash_off = conn->stash_len - left;
		if (left == 0 || conn->closing) {
			free(conn->stash);
			conn->stash = NULL;
			conn->stash_len = conn->stash_off = 0;
		}
	} else if (left > 0 && !conn->closing) {
		conn->stash = malloc(left);
		if (!conn->stash) {
			conn_close(conn);
			return;
		}
		memcpy(conn->stash, p, left);
		conn->stash_len = left;
		conn->stash_off = 0;
	}
	if (!conn->closing && conn->reading && (conn->stash || conn_full(conn))) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
}

/*
 * n bytes were read straight into the record being assembled (alloc_cb):
 * account for them, and dispatch the record if they completed it. Reading
 * was on, so the connection was below its caps before this record.
 */
static void conn_filled(struct onfs_conn *conn, size_t n)
{
	uint8_t *rec;
	size_t rec_len;

	if (onfs_recmark_filled(&conn->rm, n, &rec, &rec_len) < 0) {
		onfs_warn("closing a connection: out of memory");
		conn_close(conn);
		return;
	}
	if (rec) {
		conn->rec_start = 0;
		conn->feeding = true;
		onfs_dispatch_record(conn->t->srv, conn, (struct sockaddr *)&conn->peer,
				     conn->peer_len, conn->lis->port, rec, rec_len);
		conn->feeding = false;
	} else if (!conn->rec_start) {
		conn->rec_start = uv_now(conn->t->srv->loop);
	}
	if (!conn->closing && conn->reading && conn_full(conn)) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
}

/* Below the cap again: parse what was stashed, then read more. */
static void conn_resume(struct onfs_conn *conn)
{
	if (conn->stash)
		conn_feed(conn, conn->stash + conn->stash_off, conn->stash_len - conn->stash_off,
			  true);
	if (conn->closing || conn->stash || conn_full(conn))
		return;
	if (conn->eof) {
		if (conn->inflight == 0)
			conn_close(conn);
		return;
	}
	if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, conn_read_cb) == 0) {
		conn->reading = true;
		/* the wait was ours: the client's record clock starts again */
		if (conn->rec_start)
			conn->rec_start = uv_now(conn->t->srv->loop);
	} else {
		conn_close(conn);
	}
}

void onfs_transport_conn_put(struct onfs_conn *conn)
{
	struct onfs_transport *t = conn->t;

	conn->inflight--;
	if (--conn->refs == 0) {
		conn_free(conn);
		return;
	}
	if (conn->closing)
		return;
	if (t->stopping) {
		if (conn->inflight == 0)
			conn_close(conn);
		return;
	}
	/* some hysteresis: resume a quarter below the cap */
	if (!conn->reading && !conn->feeding &&
	    ((conn->inflight <= ONFS_CONN_MAX_INFLIGHT - ONFS_CONN_MAX_INFLIGHT / 4 &&
	      conn_queued(conn) <= ONFS_CONN_MAX_QUEUED / 2) ||
	     (conn->eof && conn->inflight == 0)))
		conn_resume(conn);
}

static void conn_closed(uv_handle_t *h)
{
	struct onfs_conn *conn = ONFS_CONTAINER_OF(h, struct onfs_conn, tcp);
	struct onfs_transport *t = conn->t;

	onfs_recmark_free(&conn->rm);
	t->open_handles--;
	if (--conn->refs == 0)
		conn_free(conn);
	transport_maybe_finish(t);
}

static void conn_close(struct onfs_conn *conn)
{
	struct onfs_transport *t = conn->t;

	if (conn->closing)
		return;
	conn->closing = true;
	conn->reading = false;
	if (conn->yielded) {
		struct onfs_conn **pp = &t->yielded;

		while (*pp != conn)
			pp = &(*pp)->yield_next;
		*pp = conn->yield_next;
		conn->yielded = false;
	}
	conn_unlink(t, conn);
	t->nconns--;
	/* pending writes complete with UV_ECANCELED before conn_closed */
	uv_close((uv_handle_t *)&conn->tcp, conn_closed);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct onfs_conn *conn = ONFS_CONTAINER_OF(s, struct onfs_conn, tcp);

	if (nread == UV_EOF && conn->inflight > 0) {
		/* a half-close: the calls already read still get their replies */
		uv_read_stop(s);
		conn->reading = false;
		conn->eof = true;
		return;
	}
	if (nread < 0) {
		if (nread != UV_EOF)
			onfs_debug("connection read error: %s", uv_strerror((int)nread));
		conn_close(conn);
		return;
	}
	if (nread > 0) {
		conn_touch(conn);
		if (conn->turn != conn->t->turn) {
			conn->turn = conn->t->turn;
			conn->turn_bytes = 0;
		}
		conn->turn_bytes += (size_t)nread;
	}
	if (nread > 0 && buf->base != conn->t->rbuf)
		conn_filled(conn, (size_t)nread);
	else
		conn_feed(conn, (const uint8_t *)buf->base, (size_t)nread, false);
	conn_yield_maybe(conn);
}

/* Its budget for this turn used up: pause reading until the next turn. */
static void conn_yield_maybe(struct onfs_conn *conn)
{
	struct onfs_transport *t = conn->t;

	if (conn->closing || !conn->reading || conn->turn_bytes < ONFS_TURN_BUDGET ||
	    !t->prepare_open)
		return;
	uv_read_stop((uv_stream_t *)&conn->tcp);
	conn->reading = false;
	if (!conn->yielded) {
		conn->yielded = true;
		conn->yield_next = t->yielded;
		t->yielded = conn;
	}
}

/* The first connection off t->yielded, or NULL when none is left. */
static struct onfs_conn *yield_pop(struct onfs_transport *t)
{
	struct onfs_conn *conn = t->yielded;

	if (conn) {
		t->yielded = conn->yield_next;
		conn->yield_next = NULL;
		conn->yielded = false;
	}
	return conn;
}

/* Before each poll: a new turn; the connections that yielded read again. */
static void turn_prepare_cb(uv_prepare_t *h)
{
	struct onfs_transport *t = ONFS_CONTAINER_OF(h, struct onfs_transport, turn_prepare);
	struct onfs_conn *conn;

	t->turn++;
	while ((conn = yield_pop(t)) != NULL) {
		/* conn_put may have resumed it already; the caps still apply */
		if (!conn->closing && !conn->reading && !conn->feeding && !t->stopping)
			conn_resume(conn);
	}
}

/*
 * The connection to close so that a new one fits: from the least recently
 * active end, the first with no call in flight, or whose queued replies
 * have not moved for a while (a client that stopped reading). NULL when
 * every connection is busy.
 */
static struct onfs_conn *evict_victim(struct onfs_transport *t, struct onfs_conn *except)
{
	uint64_t now = uv_now(t->srv->loop);
	struct onfs_conn *c;

	for (c = t->conns_tail; c; c = c->prev) {
		if (c == except || c->closing)
			continue;
		if (c->inflight == 0)
			return c;
		if (c->queued_since && now - c->queued_since >= ONFS_STALL_EVICT_MS)
			return c;
	}
	return NULL;
}

static void evict_one(struct onfs_transport *t, struct onfs_conn *victim)
{
	uint64_t now = uv_now(t->srv->loop);
	char a[80];

	fmt_addr((struct sockaddr *)&victim->peer, a, sizeof(a));
	/* one line a second at most: a reconnect storm must not flood the log */
	if (t->evict_log_at == 0 || now - t->evict_log_at >= 1000) {
		onfs_warn("too many connections (max_connections %u): closing %s, %s for %.1f s"
			  " (%u more closed since the last such line)",
			  max_conns(t), a, victim->inflight ? "replies not taken" : "idle",
			  (double)(now - (victim->inflight ? victim->queued_since
							   : victim->last_active)) / 1000.0,
			  t->evict_unlogged);
		t->evict_log_at = now;
		t->evict_unlogged = 0;
	} else {
		t->evict_unlogged++;
	}
	onfs_metrics_add(&onfs_metrics.conns_refused, 1);
	conn_close(victim);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct onfs_listener *lis = ONFS_CONTAINER_OF(server, struct onfs_listener, tcp);
	struct onfs_transport *t = lis->t;
	struct onfs_conn *conn;
	int len, r;

	if (status < 0) {
		onfs_warn("accept on %s: %s", lis->name, uv_strerror(status));
		return;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return;
	conn->t = t;
	conn->lis = lis;
	conn->refs = 1;
	onfs_recmark_init(&conn->rm, max_record(t->srv));
	r = uv_tcp_init(t->srv->loop, &conn->tcp);
	if (r < 0) {
		free(conn);
		return;
	}
	t->open_handles++;
	/* linked first so conn_close can unlink it on every path */
	conn_push_head(t, conn);
	t->nconns++;
	conn->last_active = uv_now(t->srv->loop);

	r = uv_accept(server, (uv_stream_t *)&conn->tcp);
	if (r < 0)
		goto out_close;
	if (!t->stopping && t->nconns > max_conns(t)) {
		struct onfs_conn *victim = evict_victim(t, conn);

		if (victim)
			evict_one(t, victim);
	}
	if (t->stopping || t->nconns > max_conns(t)) {
		onfs_metrics_add(&onfs_metrics.conns_refused, 1);
		onfs_warn("refusing a connection on %s: %s", lis->name,
			  t->stopping ? "stopping"
				      : "too many connections, every one with calls in flight");
		goto out_close;
	}
	onfs_metrics_add(&onfs_metrics.conns_accepted, 1);
	len = sizeof(conn->peer);
	if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &len) == 0)
		conn->peer_len = len;
	uv_tcp_nodelay(&conn->tcp, 1);
	uv_tcp_keepalive(&conn->tcp, 1, 60);
	r = uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, conn_read_cb);
	if (r < 0)
		goto out_close;
	conn->reading = true;
	return;

out_close:
	conn_close(conn);
}

/* ---------------------------------------------------------------- UDP */

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *addr, unsigned flags)
{
	struct onfs_listener *lis = ONFS_CONTAINER_OF(h, struct onfs_listener, udp);
	struct onfs_transport *t = lis->t;
	uint8_t *rec;
	int alen;

	if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL) || t->stopping)
		return;
	alen = addr->sa_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
					   : (int)sizeof(struct sockaddr_in);
	rec = malloc((size_t)nread);
	if (!rec)
		return;
	memcpy(rec, buf->base, (size_t)nread);
	onfs_dispatch_record(t->srv, NULL, addr, alen, lis->port, rec, (size_t)nread);
}

static struct onfs_listener *udp_listener(struct onfs_transport *t, uint16_t port)
{
	unsigned i;

	for (i = 0; i < t->nlis; i++)
		if (t->lis[i].port == port && t->lis[i].udp_open)
			return &t->lis[i];
	return NULL;
}

/* ---------------------------------------------------------------- replies */

static void write_cb(uv_write_t *req, int status)
{
	struct onfs_call_ext *e = ONFS_CONTAINER_OF(req, struct onfs_call_ext, req.write);
	struct onfs_conn *conn = e->c.conn;

	if (status < 0 && status != UV_ECANCELED) {
		onfs_debug("write: %s", uv_strerror(status));
		conn_close(conn);
	} else if (status == 0 && !conn->closing) {
		conn->last_active = uv_now(conn->t->srv->loop);
		conn->queued_since = conn_queued(conn) ? conn->last_active : 0;
	}
	onfs_call_free(&e->c);
}

static void send_cb(uv_udp_send_t *req, int status)
{
	struct onfs_call_ext *e = ONFS_CONTAINER_OF(req, struct onfs_call_ext, req.send);

	if (status < 0)
		onfs_debug("udp send: %s", uv_strerror(status));
	onfs_call_free(&e->c);
}

void onfs_transport_send_reply(struct onfs_call *c)
{
	struct onfs_call_ext *e = ONFS_CONTAINER_OF(c, struct onfs_call_ext, c);
	struct onfs_transport *t = c->srv->transport;
	uv_buf_t bufs[4];
	unsigned n = 0;
	size_t pad = (4 - (c->data_len & 3)) & 3;
	size_t total = c->reply_len + c->data_len + pad;
	int r;

	if (!t || c->reply_len == 0)
		goto out_drop;
	if (c->conn) {
		if (c->conn->closing || total > ONFS_RECMARK_LEN_MASK)
			goto out_drop;
		onfs_recmark_encode(e->mark, (uint32_t)total, true);
		bufs[n++] = uv_buf_init((char *)e->mark, sizeof(e->mark));
	}
	bufs[n++] = uv_buf_init((char *)c->reply, (unsigned)c->reply_len);
	if (c->data_len) {
		bufs[n++] = uv_buf_init((char *)c->data, (unsigned)c->data_len);
		if (pad)
			bufs[n++] = uv_buf_init((char *)zero_pad, (unsigned)pad);
	}
	if (c->conn) {
		r = uv_write(&e->req.write, (uv_stream_t *)&c->conn->tcp, bufs, n, write_cb);
		if (r < 0) {
			onfs_debug("write: %s", uv_strerror(r));
			conn_close(c->conn);
			goto out_drop;
		}
		if (!c->conn->queued_since && conn_queued(c->conn))
			c->conn->queued_since = uv_now(t->srv->loop);
	} else {
		struct onfs_listener *lis = udp_listener(t, c->local_port);

		if (!lis || c->peer_len == 0)
			goto out_drop;
		r = uv_udp_send(&e->req.send, &lis->udp, bufs, n,
				(const struct sockaddr *)&c->peer, send_cb);
		if (r < 0) {
			onfs_debug("udp send: %s", uv_strerror(r));
			goto out_drop;
		}
	}
	return;

out_drop:
	onfs_call_free(c);
}

/* ---------------------------------------------------------------- listeners */

/*
 * A literal IPv4/IPv6 address, else a name resolved once here (startup,
 * before the loop runs, so the blocking lookup is harmless).
 */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int r;

	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':'))
		return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
	r = uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
	if (r == 0)
		return 0;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EINVAL;
	if (res->ai_addrlen <= sizeof(*ss)) {
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		r = 0;
	} else {
		r = -EINVAL;
	}
	freeaddrinfo(res);
	return r;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static int bound_socket(int family, int type, const struct sockaddr_storage *ss)
{
	int fd, one = 1, zero = 0, r;
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in);

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) /* "::" serves IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	r = bind(fd, (const struct sockaddr *)ss, len);
	if (r == 0 && type == SOCK_STREAM)
		r = listen(fd, ONFS_BACKLOG);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Bind a TCP and a UDP socket on host:port, the same port number for both
 * (port 0: the kernel picks the TCP port, retried when UDP finds it taken).
 */
static int open_sockets(const char *host, int port, int *tcp_fd, int *udp_fd,
			uint16_t *bound, char *err, size_t errlen)
{
	struct sockaddr_storage ss, got;
	socklen_t glen;
	int tries, tfd = -1, ufd = -1, r;

	r = parse_addr(host, port, &ss);
	if (r < 0 || port < 0 || port > 65535) {
		snprintf(err, errlen, "invalid listen address '%s:%d'", host, port);
		return -EINVAL;
	}
	for (tries = 0; tries < ONFS_BIND_TRIES; tries++) {
		set_port(&ss, (uint16_t)port);
		tfd = bound_socket(ss.ss_family, SOCK_STREAM, &ss);
		if (tfd < 0) {
			r = tfd;
			snprintf(err, errlen, "cannot listen on '%s:%d' (tcp): %s", host, port,
				 strerror(-r));
			return r;
		}
		glen = sizeof(got);
		if (getsockname(tfd, (struct sockaddr *)&got, &glen) < 0) {
			r = -errno;
			close(tfd);
			snprintf(err, errlen, "cannot listen on '%s:%d': %s", host, port,
				 strerror(-r));
			return r;
		}
		*bound = ntohs(got.ss_family == AF_INET6
				       ? ((struct sockaddr_in6 *)&got)->sin6_port
				       : ((struct sockaddr_in *)&got)->sin_port);
		set_port(&ss, *bound);
		ufd = bound_socket(ss.ss_family, SOCK_DGRAM, &ss);
		if (ufd >= 0)
			break;
		close(tfd);
		r = ufd;
		if (port != 0 || r != -EADDRINUSE) {
			snprintf(err, errlen, "cannot listen on '%s:%d' (udp): %s", host, port,
				 strerror(-r));
			return r;
		}
	}
	if (ufd < 0) {
		snprintf(err, errlen, "cannot listen on '%s:%d': no port free for tcp and udp",
			 host, port);
		return -EADDRINUSE;
	}
	*tcp_fd = tfd;
	*udp_fd = ufd;
	return 0;
}

static int listener_start(struct onfs_transport *t, struct onfs_listener *lis, int tfd,
			  int ufd, char *err, size_t errlen)
{
	uv_loop_t *loop = t->srv->loop;
	int r;

	r = uv_tcp_init(loop, &lis->tcp);
	if (r < 0)
		goto out_err;
	t->open_handles++;
	lis->tcp_open = true;
	r = uv_tcp_open(&lis->tcp, tfd);
	if (r < 0)
		goto out_err;
	tfd = -1; /* the handle owns it now */
	r = uv_listen((uv_stream_t *)&lis->tcp, ONFS_BACKLOG, on_connection);
	if (r < 0)
		goto out_err;

	r = uv_udp_init(loop, &lis->udp);
	if (r < 0)
		goto out_err;
	t->open_handles++;
	lis->udp_open = true;
	r = uv_udp_open(&lis->udp, ufd);
	if (r < 0)
		goto out_err;
	ufd = -1;
	r = uv_udp_recv_start(&lis->udp, alloc_cb, udp_recv_cb);
	if (r < 0)
		goto out_err;
	return 0;

out_err:
	snprintf(err, errlen, "cannot listen on '%s': %s", lis->name, uv_strerror(r));
	if (tfd >= 0)
		close(tfd);
	if (ufd >= 0)
		close(ufd);
	return r;
}

/* ---------------------------------------------------------------- limits */

/*
 * Time limits a client cannot stretch: a record must arrive whole within
 * io_timeout of its first byte (one byte a second never completes one),
 * and queued replies must move within io_timeout (a client that never
 * reads). Either way the connection is closed and its memory freed.
 */
static void sweep_cb(uv_timer_t *timer)
{
	struct onfs_transport *t = ONFS_CONTAINER_OF(timer, struct onfs_transport, sweep_timer);
	uint64_t now = uv_now(t->srv->loop), limit = io_timeout_ms(t);
	struct onfs_conn *c, *prev;

	for (c = t->conns_tail; c; c = prev) {
		const char *why = NULL;
		char a[80];

		prev = c->prev;
		if (c->closing)
			continue;
		if (c->reading && c->rec_start && now - c->rec_start >= limit)
			why = "a record still incomplete";
		else if (c->queued_since && now - c->queued_since >= limit)
			why = "replies not taken";
		if (!why)
			continue;
		fmt_addr((struct sockaddr *)&c->peer, a, sizeof(a));
		onfs_warn("closing connection from %s: %s after %.1f s", a, why,
			  (double)limit / 1000.0);
		conn_close(c);
	}
}

/*
 * Connections the descriptor limit allows: half the soft RLIMIT_NOFILE
 * (the other half is the node cache's budget, overlay/handle.c, which also
 * raised the soft limit to the hard one), less ONFS_FD_RESERVE.
 */
static unsigned fit_fd_limit(const struct onfs_config *cfg)
{
	unsigned want = cfg && cfg->max_connections ? cfg->max_connections
						    : ONFS_DEFAULT_MAX_CONNS;
	struct rlimit rl;
	unsigned room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 2 >= (rlim_t)want + ONFS_FD_RESERVE)
		return UINT_MAX;
	room = rl.rlim_cur / 2 > ONFS_FD_RESERVE + ONFS_MIN_MAX_CONNS
		       ? (unsigned)(rl.rlim_cur / 2 - ONFS_FD_RESERVE)
		       : ONFS_MIN_MAX_CONNS;
	if (cfg && cfg->max_connections)
		onfs_warn("max_connections %u lowered to %u: the descriptor limit is %llu",
			  want, room, (unsigned long long)rl.rlim_cur);
	else
		onfs_info("at most %u connections: the descriptor limit is %llu", room,
			  (unsigned long long)rl.rlim_cur);
	return room;
}

static void transport_free(struct onfs_transport *t)
{
	/* no call is live, so no DRC entry is in progress */
	onfs_drc_free(t->drc);
	onfs_call_pool_destroy(&t->pool);
	t->srv->transport = NULL;
	free(t);
}

static void close_listeners(struct onfs_transport *t, bool udp_too)
{
	unsigned i;

	for (i = 0; i < t->nlis; i++) {
		struct onfs_listener *lis = &t->lis[i];

		if (lis->tcp_open) {
			lis->tcp_open = false;
			close_handle(t, (uv_handle_t *)&lis->tcp);
		}
		if (lis->udp_open) {
			uv_udp_recv_stop(&lis->udp);
			if (udp_too) {
				lis->udp_open = false;
				close_handle(t, (uv_handle_t *)&lis->udp);
			}
		}
	}
}

int onfs_transport_start(struct onfs_server *srv, char *err, size_t errlen)
{
	const struct onfs_config *cfg = srv->cfg;
	struct onfs_transport *t;
	int fds[2][2] = { { -1, -1 }, { -1, -1 } };
	uint16_t ports[2] = { 0, 0 };
	const char *hosts[2];
	int want[2];
	unsigned i, n = 1;
	int r;

	hosts[0] = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
	want[0] = cfg->listen_port;
	if (cfg->portmap_host) {
		hosts[1] = cfg->portmap_host;
		want[1] = cfg->portmap_port;
		n = 2;
	}

	/* All sockets first (synchronous), uv handles only once all bound. */
	for (i = 0; i < n; i++) {
		r = open_sockets(hosts[i], want[i], &fds[i][0], &fds[i][1], &ports[i], err,
				 errlen);
		if (r < 0)
			goto out_fds;
	}

	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		snprintf(err, errlen, "cannot start the transport: out of memory");
		goto out_fds;
	}
	r = onfs_call_pool_init(&t->pool);
	if (r < 0) {
		free(t);
		snprintf(err, errlen, "cannot start the transport: %s", uv_strerror(r));
		goto out_fds;
	}
	if (onfs_drc_new(NULL, &t->drc) < 0)
		onfs_warn("no duplicate request cache: out of memory");
	t->srv = srv;
	t->pool_slots = srv->cfg && srv->cfg->threads > 0 ? (unsigned)srv->cfg->threads
							    : ONFS_DEFAULT_THREADS;
	t->fd_room = fit_fd_limit(cfg);
	t->nlis = n;
	srv->transport = t;
	for (i = 0; i < n; i++) {
		struct onfs_listener *lis = &t->lis[i];

		lis->t = t;
		lis->port = ports[i];
		snprintf(lis->name, sizeof(lis->name), strchr(hosts[i], ':') ? "[%s]:%u" : "%s:%u",
			 hosts[i], (unsigned)ports[i]);
	}
	for (i = 0; i < n; i++) {
		r = listener_start(t, &t->lis[i], fds[i][0], fds[i][1], err, errlen);
		fds[i][0] = fds[i][1] = -1;
		if (r < 0) {
			for (i++; i < n; i++) {
				close(fds[i][0]);
				close(fds[i][1]);
			}
			goto out_handles;
		}
	}
	if (uv_timer_init(srv->loop, &t->sweep_timer) == 0) {
		t->open_handles++;
		t->sweep_open = true;
		uv_timer_start(&t->sweep_timer, sweep_cb, ONFS_SWEEP_MS, ONFS_SWEEP_MS);
	}
	/* without it (cannot fail in practice) connections never yield */
	if (uv_prepare_init(srv->loop, &t->turn_prepare) == 0) {
		t->open_handles++;
		t->prepare_open = true;
		uv_prepare_start(&t->turn_prepare, turn_prepare_cb);
		uv_unref((uv_handle_t *)&t->turn_prepare);
	}
	srv->port = ports[0];
	for (i = 0; i < n; i++)
		onfs_info("listening on %s (tcp, udp)", t->lis[i].name);
	return 0;

out_handles:
	/* Undo synchronously: nothing else runs on the loop yet. */
	t->stopping = true;
	close_listeners(t, true);
	if (t->open_handles == 0)
		transport_free(t);
	/* the last close_cb frees t and clears srv->transport */
	while (srv->transport)
		uv_run(srv->loop, UV_RUN_NOWAIT);
	return r;

out_fds:
	for (i = 0; i < 2; i++) {
		if (fds[i][0] >= 0)
			close(fds[i][0]);
		if (fds[i][1] >= 0)
			close(fds[i][1]);
	}
	return r;
}

static void transport_maybe_finish(struct onfs_transport *t)
{
	unsigned i;

	if (!t->stopping)
		return;
	if (t->nconns == 0 && t->pool.live == 0) {
		for (i = 0; i < t->nlis; i++) {
			struct onfs_listener *lis = &t->lis[i];

			if (lis->udp_open) {
				lis->udp_open = false;
				close_handle(t, (uv_handle_t *)&lis->udp);
			}
		}
		if (t->timer_open) {
			t->timer_open = false;
			close_handle(t, (uv_handle_t *)&t->stop_timer);
		}
	}
	if (t->open_handles == 0 && t->pool.live == 0)
		transport_free(t);
}

void onfs_transport_call_gone(struct onfs_server *srv)
{
	if (srv->transport)
		transport_maybe_finish(srv->transport);
}

static void stop_timer_cb(uv_timer_t *timer)
{
	struct onfs_transport *t = ONFS_CONTAINER_OF(timer, struct onfs_transport, stop_timer);
	unsigned i;

	if (t->nconns)
		onfs_warn("stopping: closing %u connection(s) with calls still in flight",
			  t->nconns);
	while (t->conns)
		conn_close(t->conns);
	for (i = 0; i < t->nlis; i++) {
		struct onfs_listener *lis = &t->lis[i];

		if (lis->udp_open) {
			lis->udp_open = false;
			close_handle(t, (uv_handle_t *)&lis->udp);
		}
	}
	t->timer_open = false;
	close_handle(t, (uv_handle_t *)&t->stop_timer);
}

void onfs_transport_stop(struct onfs_server *srv)
{
	struct onfs_transport *t = srv->transport;
	struct onfs_conn *conn, *next;

	if (!t || t->stopping)
		return;
	t->stopping = true;
	close_listeners(t, false);
	if (t->sweep_open) {
		t->sweep_open = false;
		close_handle(t, (uv_handle_t *)&t->sweep_timer);
	}
	if (t->prepare_open) {
		t->prepare_open = false;
		close_handle(t, (uv_handle_t *)&t->turn_prepare);
	}
	while (yield_pop(t)) /* they stay paused: stopping reads no more */
		;
	if (uv_timer_init(srv->loop, &t->stop_timer) == 0) {
		t->open_handles++;
		t->timer_open = true;
		uv_timer_start(&t->stop_timer, stop_timer_cb, ONFS_STOP_GRACE_MS, 0);
	}
	for (conn = t->conns; conn; conn = next) {
		next = conn->next;
		if (conn->reading) {
			uv_read_stop((uv_stream_t *)&conn->tcp);
			conn->reading = false;
		}
		if (conn->inflight == 0)
			conn_close(conn);
	}
	transport_maybe_finish(t);
}

/* Open TCP connections, for STATUS= and the metrics (daemon.h). */
unsigned onfs_transport_nconns(const struct onfs_server *srv)
{
	return srv->transport ? srv->transport->nconns : 0;
}
