/*
 * rpcout.c - the lock manager's outgoing calls: GRANTED callbacks to
 * clients waiting on a blocking lock, the _RES calls that answer _MSG
 * requests, and SM_NOTIFY after a restart. Each goes over UDP to the
 * peer's program found through the peer's own portmapper (port 111,
 * GETPORT), as Linux's lockd and statd do; when that portmapper does not
 * answer, a call that answers a UDP request goes back to the address and
 * port the request came from.
 *
 * Owns: two UDP sockets (IPv4, IPv6), a retransmit timer, the async
 * handle that wakes the loop, the outbox (under nlm->mu) and the pending
 * calls (loop only).
 * Thread: the loop thread, except onfs_rpcout_submit and onfs_out_new/
 * free (any thread).
 * Never: blocks the loop, waits for a reply in a worker, or keeps a call
 * retransmitting forever (each kind has a try limit; a GRANTED nobody
 * takes releases the lock, so a silent client cannot hold it forever).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/nlm.h"

#define PMAP_PORT 111
#define PMAP_PROG 100000
#define PMAP_VERS 2
#define PMAP_GETPORT 3
#define TICK_MS 250
#define PORT_TRIES 2
#define PORT_INTERVAL_MS 1000
#define CALL_INTERVAL_MS 1000
#define MAX_RECORD 4096

static int tries_of(enum onfs_out_kind k)
{
	switch (k) {
	case ONFS_OUT_GRANTED:
		return 6; /* 1+2+4+8+16 s: longer than a Linux client's 30 s poll */
	case ONFS_OUT_NOTIFY:
		return 5;
	case ONFS_OUT_RES:
	default:
		return 3;
	}
}

struct onfs_out *onfs_out_new(size_t len)
{
	return calloc(1, sizeof(struct onfs_out) + len);
}

void onfs_out_free(struct onfs_out *o)
{
	if (!o)
		return;
	free(o->record);
	free(o);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static uint16_t get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

struct send_req {
	uv_udp_send_t req;
	uint8_t buf[];
};

static void send_cb(uv_udp_send_t *req, int status)
{
	(void)status; /* a lost datagram is retransmitted by the timer */
	free(ONFS_CONTAINER_OF(req, struct send_req, req));
}

/* CALL header with an AUTH_SYS credential (uid 0, our name), as Linux's lockd sends. */
static size_t put_header(struct onfs_nlm *nlm, uint8_t *p, uint32_t xid, uint32_t prog,
			 uint32_t vers, uint32_t proc)
{
	size_t namelen = strlen(nlm->myname);
	size_t pad = (namelen + 3) & ~(size_t)3;
	size_t body = 4 + 4 + pad + 4 + 4 + 4;
	size_t off = 0;

	put32(p + off, xid), off += 4;
	put32(p + off, 0), off += 4;       /* CALL */
	put32(p + off, 2), off += 4;       /* RPC version */
	put32(p + off, prog), off += 4;
	put32(p + off, vers), off += 4;
	put32(p + off, proc), off += 4;
	put32(p + off, 1), off += 4;       /* AUTH_SYS */
	put32(p + off, (uint32_t)body), off += 4;
	put32(p + off, 0), off += 4;       /* stamp */
	put32(p + off, (uint32_t)namelen), off += 4;
	memset(p + off, 0, pad);
	memcpy(p + off, nlm->myname, namelen);
	off += pad;
	put32(p + off, 0), off += 4;       /* uid */
	put32(p + off, 0), off += 4;       /* gid */
	put32(p + off, 0), off += 4;       /* no groups */
	put32(p + off, 0), off += 4;       /* verifier AUTH_NONE */
	put32(p + off, 0), off += 4;
	return off;
}

static void transmit(struct onfs_nlm *nlm, struct onfs_out *o)
{
	struct send_req *s = malloc(sizeof(*s) + MAX_RECORD);
	struct sockaddr_storage to = o->dst;
	uv_udp_t *sock = o->dst.ss_family == AF_INET6 ? &nlm->udp6 : &nlm->udp4;
	size_t len;
	uv_buf_t b;

	if (!s)
		return;
	if ((o->dst.ss_family == AF_INET6 && !nlm->have6) || (o->unreachable && !o->asking_port)) {
		free(s);
		return;
	}
	if (o->asking_port) {
		len = put_header(nlm, s->buf, o->xid, PMAP_PROG, PMAP_VERS, PMAP_GETPORT);
		put32(s->buf + len, o->prog);
		put32(s->buf + len + 4, o->vers);
		put32(s->buf + len + 8, IPPROTO_UDP);
		put32(s->buf + len + 12, 0);
		len += 16;
		set_port(&to, PMAP_PORT);
	} else {
		len = put_header(nlm, s->buf, o->xid, o->prog, o->vers, o->proc);
		if (len + o->len > MAX_RECORD) {
			free(s);
			return;
		}
		memcpy(s->buf + len, o->args, o->len);
		len += o->len;
	}
	b = uv_buf_init((char *)s->buf, (unsigned)len);
	if (uv_udp_send(&s->req, sock, &b, 1, (const struct sockaddr *)&to, send_cb) < 0)
		free(s);
}

static void arm_timer(struct onfs_nlm *nlm);

/* The wait before try n+1: GRANTED backs off (1, 2, 4, 8, 16 s), the rest do not. */
static uint64_t interval(const struct onfs_out *o)
{
	if (o->asking_port)
		return PORT_INTERVAL_MS;
	if (o->kind == ONFS_OUT_GRANTED && o->tries > 1)
		return (uint64_t)CALL_INTERVAL_MS << (o->tries - 1 < 4 ? o->tries - 1 : 4);
	return CALL_INTERVAL_MS;
}

static void begin(struct onfs_nlm *nlm, struct onfs_out *o)
{
	o->xid = ++nlm->next_xid;
	o->tries = 1;
	o->due = uv_now(nlm->srv->loop) + interval(o);
	transmit(nlm, o);
}

static void unlink_cb(uv_fs_t *req)
{
	uv_fs_req_cleanup(req);
	free(req);
}

/* The call is over: ok with the reply body, or failed. Removes o from pending first. */
static void finish(struct onfs_nlm *nlm, struct onfs_out *o, bool ok, const uint8_t *body,
		   size_t blen)
{
	struct onfs_out **p;

	for (p = &nlm->pending; *p; p = &(*p)->next) {
		if (*p == o) {
			*p = o->next;
			break;
		}
	}
	switch (o->kind) {
	case ONFS_OUT_GRANTED: {
		uint32_t stat = 9;
		struct onfs_lock_grant *g = NULL;

		/* nlm4_res / nlm_res: cookie (netobj), stat */
		if (ok && blen >= 4) {
			uint32_t clen = get32(body);
			size_t off = 4 + ((clen + 3) & ~(uint32_t)3);

			if (clen <= 1024 && off + 4 <= blen)
				stat = get32(body + off);
		}
		if (ok && stat == 0) {
			onfs_debug("nlm: GRANTED taken by the client (svid %u)", o->owner.svid);
			break;
		}
		onfs_info("nlm: GRANTED callback %s (svid %u); releasing the lock",
			  ok ? "refused by the client" : "not answered", o->owner.svid);
		onfs_lock_unlock(o->table, &o->key, &o->owner, &o->range, &g);
		onfs_nlm_send_grants(nlm, o->table, g);
		break;
	}
	case ONFS_OUT_NOTIFY:
		if (ok)
			onfs_info("nsm: SM_NOTIFY reached %s", o->record ? o->record : "?");
		else
			onfs_warn("nsm: SM_NOTIFY to %s not answered; giving up",
				  o->record ? o->record : "?");
		if (o->record) {
			uv_fs_t *req = malloc(sizeof(*req));

			if (req && uv_fs_unlink(nlm->srv->loop, req, o->record, unlink_cb) < 0)
				free(req);
		}
		break;
	case ONFS_OUT_RES:
	default:
		if (!ok)
			onfs_debug("nlm: _RES call (proc %u) not answered", o->proc);
		break;
	}
	onfs_out_free(o);
}

/*
 * The portmapper gave no port: go to where the request came from. With
 * nowhere to go, a GRANTED still keeps its lock for its whole retry
 * window (a client we cannot reach, behind NAT say, polls and gets it);
 * anything else gives up.
 */
static void port_failed(struct onfs_nlm *nlm, struct onfs_out *o)
{
	o->asking_port = false;
	if (o->fallback.ss_family != 0) {
		o->dst = o->fallback;
		o->dstlen = o->fallbacklen;
		begin(nlm, o);
		return;
	}
	if (o->kind == ONFS_OUT_GRANTED) {
		onfs_debug("nlm: no way to call the client back (svid %u); it has to poll",
			   o->owner.svid);
		o->unreachable = true;
		begin(nlm, o);
		return;
	}
	finish(nlm, o, false, NULL, 0);
}

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
		    unsigned flags)
{
	struct onfs_nlm *nlm = h->data;
	const uint8_t *p = (const uint8_t *)buf->base;
	struct onfs_out *o;
	uint32_t xid, vlen;
	size_t off;

	(void)from;
	(void)flags;
	if (nread < 24)
		goto out;
	xid = get32(p);
	for (o = nlm->pending; o; o = o->next)
		if (o->xid == xid)
			break;
	if (!o || get32(p + 4) != 1)
		goto out;
	if (get32(p + 8) != 0) { /* MSG_DENIED */
		if (o->asking_port)
			port_failed(nlm, o);
		else
			finish(nlm, o, false, NULL, 0);
		goto out;
	}
	vlen = get32(p + 16);
	off = 20 + ((vlen + 3) & ~(uint32_t)3);
	if (vlen > 400 || off + 4 > (size_t)nread)
		goto out;
	if (get32(p + off) != 0) { /* not SUCCESS */
		if (o->asking_port)
			port_failed(nlm, o);
		else
			finish(nlm, o, false, NULL, 0);
		goto out;
	}
	off += 4;
	if (o->asking_port) {
		uint32_t port = off + 4 <= (size_t)nread ? get32(p + off) : 0;

		/*
		 * Port 0: not registered. Our own port on a loopback address: the
		 * "client" portmapper is ours (a NATed client seen as 127.0.0.1),
		 * and we must not call ourselves.
		 */
		if (port == 0 || port > 65535 ||
		    (port == nlm->srv->port && is_loopback(&o->dst))) {
			port_failed(nlm, o);
			goto out;
		}
		set_port(&o->dst, (uint16_t)port);
		o->asking_port = false;
		begin(nlm, o);
		goto out;
	}
	finish(nlm, o, true, p + off, (size_t)nread - off);
out:
	free(buf->base);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = malloc(MAX_RECORD);
	buf->len = buf->base ? MAX_RECORD : 0;
}

static void timer_cb(uv_timer_t *t)
{
	struct onfs_nlm *nlm = t->data;
	uint64_t now = uv_now(nlm->srv->loop);
	struct onfs_out *o, *next;

	for (o = nlm->pending; o; o = next) {
		next = o->next;
		if (o->due > now)
			continue;
		if (o->asking_port) {
			if (o->tries >= PORT_TRIES) {
				port_failed(nlm, o);
				next = nlm->pending; /* the list changed: rescan (due ones only) */
				continue;
			}
		} else if (o->tries >= tries_of(o->kind)) {
			finish(nlm, o, false, NULL, 0);
			next = nlm->pending;
			continue;
		}
		o->tries++;
		o->due = now + interval(o);
		transmit(nlm, o);
	}
	if (!nlm->pending)
		uv_timer_stop(&nlm->timer);
}

static void arm_timer(struct onfs_nlm *nlm)
{
	if (!uv_is_active((uv_handle_t *)&nlm->timer))
		uv_timer_start(&nlm->timer, timer_cb, TICK_MS, TICK_MS);
}

/*
 * The client asked for a lock whose GRANTED callback is still pending and
 * got it (its poll found the lock already its own): the callback is
 * answered by that, stop it without releasing anything.
 */
static void confirm(struct onfs_nlm *nlm, const struct onfs_out *c)
{
	struct onfs_out *o, *next;

	for (o = nlm->pending; o; o = next) {
		next = o->next;
		if (o->kind == ONFS_OUT_GRANTED && o->table == c->table &&
		    o->owner.host == c->owner.host && o->owner.svid == c->owner.svid &&
		    o->key.len == c->key.len && memcmp(o->key.b, c->key.b, c->key.len) == 0) {
			uint8_t body[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }; /* no cookie, granted */

			finish(nlm, o, true, body, sizeof(body));
		}
	}
}

static void async_cb(uv_async_t *a)
{
	struct onfs_nlm *nlm = a->data;
	struct onfs_out *list, *o;

	pthread_mutex_lock(&nlm->mu);
	list = nlm->outbox;
	nlm->outbox = NULL;
	pthread_mutex_unlock(&nlm->mu);
	while (list) {
		o = list;
		list = o->next;
		if (o->kind == ONFS_OUT_CONFIRM) {
			confirm(nlm, o);
			onfs_out_free(o);
			continue;
		}
		o->asking_port = get_port(&o->dst) == 0;
		o->next = nlm->pending;
		nlm->pending = o;
		begin(nlm, o);
	}
	if (nlm->pending)
		arm_timer(nlm);
}

void onfs_rpcout_submit(struct onfs_nlm *nlm, struct onfs_out *o)
{
	bool ok;

	pthread_mutex_lock(&nlm->mu);
	ok = nlm->started;
	if (ok) {
		/* order kept: appended */
		struct onfs_out **p = &nlm->outbox;

		while (*p)
			p = &(*p)->next;
		o->next = NULL;
		*p = o;
		uv_async_send(&nlm->async);
	}
	pthread_mutex_unlock(&nlm->mu);
	if (!ok)
		onfs_out_free(o);
}

void onfs_rpcout_granted_res(struct onfs_nlm *nlm, const uint8_t *cookie, size_t len,
			     uint32_t stat)
{
	struct onfs_out *o;
	uint8_t body[16];

	for (o = nlm->pending; o; o = o->next) {
		if (o->kind == ONFS_OUT_GRANTED && len == sizeof(o->cookie) &&
		    memcmp(o->cookie, cookie, len) == 0) {
			/* the same shape as a GRANTED reply: cookie, stat */
			put32(body, 0);
			put32(body + 4, stat);
			finish(nlm, o, true, body, 8);
			return;
		}
	}
}

int onfs_rpcout_start(struct onfs_nlm *nlm, char *err, size_t errlen)
{
	uv_loop_t *loop = nlm->srv->loop;
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	int r;

	uv_async_init(loop, &nlm->async, async_cb);
	nlm->async.data = nlm;
	uv_timer_init(loop, &nlm->timer);
	nlm->timer.data = nlm;
	uv_udp_init(loop, &nlm->udp4);
	nlm->udp4.data = nlm;
	uv_udp_init(loop, &nlm->udp6);
	nlm->udp6.data = nlm;
	uv_ip4_addr("0.0.0.0", 0, &a4);
	r = uv_udp_bind(&nlm->udp4, (const struct sockaddr *)&a4, 0);
	if (r == 0)
		r = uv_udp_recv_start(&nlm->udp4, alloc_cb, recv_cb);
	if (r < 0) {
		snprintf(err, errlen, "lock manager: cannot open a UDP socket for callbacks: %s",
			 uv_strerror(r));
		nlm->started = true; /* so stop closes the handles */
		return -1;
	}
	uv_ip6_addr("::", 0, &a6);
	nlm->have6 = uv_udp_bind(&nlm->udp6, (const struct sockaddr *)&a6, UV_UDP_IPV6ONLY) == 0 &&
		     uv_udp_recv_start(&nlm->udp6, alloc_cb, recv_cb) == 0;
	pthread_mutex_lock(&nlm->mu);
	nlm->started = true;
	pthread_mutex_unlock(&nlm->mu);
	return 0;
}

static void close_noop(uv_handle_t *h)
{
	(void)h;
}

void onfs_rpcout_stop(struct onfs_nlm *nlm)
{
	struct onfs_out *o;

	pthread_mutex_lock(&nlm->mu);
	if (!nlm->started) {
		pthread_mutex_unlock(&nlm->mu);
		return;
	}
	nlm->started = false;
	o = nlm->outbox;
	nlm->outbox = NULL;
	pthread_mutex_unlock(&nlm->mu);
	while (o) {
		struct onfs_out *n = o->next;

		onfs_out_free(o);
		o = n;
	}
	while (nlm->pending) {
		o = nlm->pending;
		nlm->pending = o->next;
		onfs_out_free(o);
	}
	uv_close((uv_handle_t *)&nlm->async, close_noop);
	uv_close((uv_handle_t *)&nlm->timer, close_noop);
	uv_close((uv_handle_t *)&nlm->udp4, close_noop);
	uv_close((uv_handle_t *)&nlm->udp6, close_noop);
}
