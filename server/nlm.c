/*
 * nlm.c - the Network Lock Manager, versions 1 and 3 (32-bit ranges) and
 * 4 (64-bit), as the Open Group XNFS specification and Linux's lockd
 * define them: TEST, LOCK (blocking and not), CANCEL, UNLOCK, the _MSG
 * forms answered by a _RES call back to the client, GRANTED_RES, SHARE,
 * UNSHARE, NM_LOCK and FREE_ALL. Locks live in the lock table of the
 * export instance the handle names (lock.h), keyed by the file's identity.
 *
 * Each version's arguments are turned into one internal request; results
 * are encoded back in the caller's version (v4-only status codes become
 * denied_nolocks for v1/v3 clients, as lockd does).
 *
 * Threads: procedures that take a handle run on a pool worker: resolving
 * a handle may touch the disk, and recording a new lock holder writes and
 * syncs a file (nsm.c) before the lock is granted. The lock table itself
 * is memory under its own mutex. NULL, the _RES procedures and GRANTED
 * run on the loop. Callbacks leave through rpcout.c.
 * Never: frees its args, blocks the loop, or trusts a handle it did not
 * resolve (a stale or forged handle gets stale_fh / denied_nolocks).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nlm4.h"
#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

enum {
	P_NULL = 0, P_TEST = 1, P_LOCK = 2, P_CANCEL = 3, P_UNLOCK = 4, P_GRANTED = 5,
	P_TEST_MSG = 6, P_LOCK_MSG = 7, P_CANCEL_MSG = 8, P_UNLOCK_MSG = 9, P_GRANTED_MSG = 10,
	P_TEST_RES = 11, P_LOCK_RES = 12, P_CANCEL_RES = 13, P_UNLOCK_RES = 14,
	P_GRANTED_RES = 15, P_SHARE = 20, P_UNSHARE = 21, P_NM_LOCK = 22, P_FREE_ALL = 23,
};

/* One lock request, whatever the version. Pointers into the decoded args. */
struct nlm_lk {
	const char *caller;
	const onfs_netobj *fh;
	const onfs_netobj *oh;
	uint32_t svid;
	uint64_t off, len;
};

/* A queued blocking request: what its GRANTED callback needs (flat: freed with free()). */
struct nlm_wait {
	uint32_t vers;
	bool excl;
	uint32_t svid;
	uint64_t off, len;
	struct sockaddr_storage peer;     /* port 0: ask the portmapper */
	socklen_t peerlen;
	struct sockaddr_storage fallback; /* the UDP source, or family 0 */
	socklen_t fallbacklen;
	uint32_t fhlen, ohlen;
	uint8_t fh[ONFS_FH_MAX];
	uint8_t oh[ONFS_MAXNETOBJ_SZ];
};

static void lk_from1(const struct onfs_nlm_lock *l, struct nlm_lk *k)
{
	k->caller = l->caller_name;
	k->fh = &l->fh;
	k->oh = &l->oh;
	k->svid = (uint32_t)l->svid;
	k->off = l->l_offset;
	k->len = l->l_len;
}

static void lk_from4(const struct onfs_nlm4_lock *l, struct nlm_lk *k)
{
	k->caller = l->caller_name;
	k->fh = &l->fh;
	k->oh = &l->oh;
	k->svid = (uint32_t)l->svid;
	k->off = l->l_offset;
	k->len = l->l_len;
}

/* Length 0 means "to the end of the file"; a range past 2^64 is cut there. */
static void lk_range(const struct nlm_lk *k, bool excl, struct onfs_lock_range *r)
{
	r->start = k->off;
	if (k->len == 0 || k->len - 1 > ONFS_LOCK_EOF - k->off)
		r->end = ONFS_LOCK_EOF;
	else
		r->end = k->off + k->len - 1;
	r->excl = excl;
}

/* v4 status in the caller's version. */
static uint32_t stat_for(uint32_t vers, uint32_t st4)
{
	if (vers == 4 || st4 <= ONFS_NLM4_DEADLCK)
		return st4;
	return ONFS_NLM_DENIED_NOLOCKS;
}

struct nlm_target {
	struct onfs_export *ex;
	struct onfs_lock_table *t;
	struct onfs_lock_key key;
};

/*
 * Handle -> export -> node -> identity key. Returns ONFS_NLM4_GRANTED or
 * the status to answer: stale_fh for a handle that does not resolve (or
 * is forged), failed for a client the export refuses, denied_nolocks for
 * locking = off.
 */
static uint32_t resolve(struct onfs_call *c, const onfs_netobj *fh, struct nlm_target *tg)
{
	const uint8_t *data = (const uint8_t *)fh->onfs_netobj_val;
	size_t len = fh->onfs_netobj_len;
	struct onfs_node *n = NULL;
	uint16_t id;
	int err;

	memset(tg, 0, sizeof(*tg));
	if (!data || len == 0 || len > ONFS_FH_MAX || onfs_fh_export_id(data, len, &id) < 0)
		return ONFS_NLM4_STALE_FH;
	tg->ex = onfs_server_export_by_id(c->srv, id);
	if (!tg->ex)
		return ONFS_NLM4_STALE_FH;
	if (onfs_call_enter_export(c, tg->ex) < 0)
		return ONFS_NLM4_DENIED_GRACE_PERIOD;
	if (onfs_node_from_fh(tg->ex, data, len, &n) < 0)
		return ONFS_NLM4_STALE_FH;
	err = onfs_access_check(c, tg->ex);
	if (err < 0) {
		if (err == -EPERM)
			c->auth_deny = AUTH_TOOWEAK;
		onfs_node_put(n);
		return ONFS_NLM4_FAILED;
	}
	onfs_node_lock_key(n, &tg->key);
	onfs_node_put(n);
	tg->t = onfs_export_locks(tg->ex);
	if (!tg->t || onfs_lock_table_mode(tg->t) == ONFS_LOCKING_OFF)
		return ONFS_NLM4_DENIED_NOLOCKS;
	return ONFS_NLM4_GRANTED;
}

static struct onfs_nlm_host *host_of(struct onfs_call *c, const char *caller)
{
	if (!c->srv->nlm || c->peer_len <= 0)
		return NULL;
	return onfs_nlm_host_get(c->srv->nlm, caller ? caller : "",
				 (const struct sockaddr *)&c->peer, (socklen_t)c->peer_len);
}

static void peer_noport(const struct onfs_call *c, struct sockaddr_storage *ss, socklen_t *len)
{
	onfs_nlm_norm_addr((const struct sockaddr *)&c->peer, (socklen_t)c->peer_len, ss, len);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = 0;
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = 0;
}

/* --- GRANTED callbacks --- */

static size_t encode_granted(struct onfs_nlm *nlm, const struct nlm_wait *w,
			     const uint8_t cookie[8], uint8_t *buf, size_t cap)
{
	XDR xdrs;
	bool ok;
	size_t len;

	xdrmem_create(&xdrs, (char *)buf, (u_int)cap, XDR_ENCODE);
	if (w->vers == 4) {
		struct onfs_nlm4_testargs a = {
			.cookie = { 8, (char *)cookie },
			.exclusive = w->excl,
			.alock = { .caller_name = nlm->myname,
				   .fh = { w->fhlen, (char *)w->fh },
				   .oh = { w->ohlen, (char *)w->oh },
				   .svid = (int)w->svid,
				   .l_offset = w->off, .l_len = w->len },
		};
		ok = xdr_onfs_nlm4_testargs(&xdrs, &a);
	} else {
		struct onfs_nlm_testargs a = {
			.cookie = { 8, (char *)cookie },
			.exclusive = w->excl,
			.alock = { .caller_name = nlm->myname,
				   .fh = { w->fhlen, (char *)w->fh },
				   .oh = { w->ohlen, (char *)w->oh },
				   .svid = (int)w->svid,
				   .l_offset = (u_int)w->off, .l_len = (u_int)w->len },
		};
		ok = xdr_onfs_nlm_testargs(&xdrs, &a);
	}
	len = ok ? xdr_getpos(&xdrs) : 0;
	xdr_destroy(&xdrs);
	return len;
}

void onfs_nlm_send_grants(struct onfs_nlm *nlm, struct onfs_lock_table *t,
			  struct onfs_lock_grant *g)
{
	uint8_t buf[2 * ONFS_MAXNETOBJ_SZ + 512];

	while (g) {
		struct onfs_lock_grant *next = g->next;
		struct nlm_wait *w = g->data;
		struct onfs_out *o = NULL;
		uint8_t cookie[8];
		uint32_t seq;
		size_t len;

		g->next = NULL;
		if (!nlm || !w)
			goto next;
		seq = __atomic_add_fetch(&nlm->next_cookie, 1, __ATOMIC_RELAXED);
		memcpy(cookie, "ovlG", 4);
		cookie[4] = (uint8_t)(seq >> 24);
		cookie[5] = (uint8_t)(seq >> 16);
		cookie[6] = (uint8_t)(seq >> 8);
		cookie[7] = (uint8_t)seq;
		len = encode_granted(nlm, w, cookie, buf, sizeof(buf));
		o = len ? onfs_out_new(len) : NULL;
		if (!o) {
			/* cannot tell the client: do not keep a lock nobody knows it holds */
			struct onfs_lock_grant *more = NULL;

			onfs_lock_unlock(t, &g->key, &g->owner, &g->range, &more);
			onfs_lock_grant_free(t, g);
			onfs_nlm_send_grants(nlm, t, more);
			g = next;
			continue;
		}
		memcpy(o->args, buf, len);
		o->len = len;
		o->kind = ONFS_OUT_GRANTED;
		o->prog = ONFS_NLM_PROG;
		o->vers = w->vers;
		o->proc = P_GRANTED;
		o->dst = w->peer;
		o->dstlen = w->peerlen;
		o->fallback = w->fallback;
		o->fallbacklen = w->fallbacklen;
		o->table = t;
		o->key = g->key;
		o->owner = g->owner;
		o->range = g->range;
		memcpy(o->cookie, cookie, 8);
		onfs_debug("nlm: granting a blocked lock to svid %u: GRANTED callback", w->svid);
		onfs_rpcout_submit(nlm, o);
next:
		onfs_lock_grant_free(t, g);
		g = next;
	}
}

/* --- _RES replies to _MSG calls --- */

static void send_res(struct onfs_call *c, uint32_t proc, xdrproc_t enc, void *res)
{
	struct onfs_nlm *nlm = c->srv->nlm;
	uint8_t buf[2 * ONFS_MAXNETOBJ_SZ + 512];
	struct onfs_out *o;
	XDR xdrs;
	size_t len;
	bool ok;

	if (!nlm || c->peer_len <= 0)
		return;
	xdrmem_create(&xdrs, (char *)buf, sizeof(buf), XDR_ENCODE);
	ok = enc(&xdrs, res);
	len = ok ? xdr_getpos(&xdrs) : 0;
	xdr_destroy(&xdrs);
	if (!ok)
		return;
	o = onfs_out_new(len);
	if (!o)
		return;
	memcpy(o->args, buf, len);
	o->len = len;
	o->kind = ONFS_OUT_RES;
	o->prog = ONFS_NLM_PROG;
	o->vers = c->vers;
	o->proc = proc;
	peer_noport(c, &o->dst, &o->dstlen);
	if (!c->conn)
		onfs_nlm_norm_addr((const struct sockaddr *)&c->peer, (socklen_t)c->peer_len,
				   &o->fallback, &o->fallbacklen);
	onfs_rpcout_submit(nlm, o);
}

/* --- the operations --- */

struct test_out {
	uint32_t st;
	struct onfs_lock_holder h;
};

static void do_test(struct onfs_call *c, bool excl, const struct nlm_lk *k, struct test_out *out)
{
	struct nlm_target tg;
	struct onfs_nlm_host *h;
	struct onfs_lock_owner o;
	struct onfs_lock_range r;

	memset(out, 0, sizeof(*out));
	out->st = resolve(c, k->fh, &tg);
	if (out->st != ONFS_NLM4_GRANTED)
		return;
	if (onfs_nlm_in_grace(c->srv->nlm)) {
		out->st = ONFS_NLM4_DENIED_GRACE_PERIOD;
		return;
	}
	h = host_of(c, k->caller);
	o.host = h ? h->id : 0;
	o.svid = k->svid;
	lk_range(k, excl, &r);
	if (onfs_lock_test(tg.t, &tg.key, &o, &r, &out->h) < 0)
		out->st = ONFS_NLM4_DENIED;
}

static uint32_t do_lock(struct onfs_call *c, const struct nlm_lk *k, bool excl, bool block,
			bool reclaim, bool monitor)
{
	struct onfs_nlm *nlm = c->srv->nlm;
	struct onfs_lock_grant *g = NULL;
	struct nlm_target tg;
	struct onfs_nlm_host *h;
	struct onfs_lock_owner o;
	struct onfs_lock_range r;
	struct nlm_wait *w = NULL;
	enum onfs_lock_result res;
	bool was_monitored;
	uint32_t st;

	st = resolve(c, k->fh, &tg);
	if (st != ONFS_NLM4_GRANTED)
		return st;
	if (!reclaim && onfs_nlm_in_grace(nlm))
		return ONFS_NLM4_DENIED_GRACE_PERIOD;
	h = host_of(c, k->caller);
	if (!h)
		return ONFS_NLM4_DENIED_NOLOCKS;
	o.host = h->id;
	o.svid = k->svid;
	lk_range(k, excl, &r);
	if (block) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return ONFS_NLM4_DENIED_NOLOCKS;
		w->vers = c->vers;
		w->excl = excl;
		w->svid = k->svid;
		w->off = k->off;
		w->len = k->len;
		peer_noport(c, &w->peer, &w->peerlen);
		if (!c->conn)
			onfs_nlm_norm_addr((const struct sockaddr *)&c->peer,
					   (socklen_t)c->peer_len, &w->fallback, &w->fallbacklen);
		w->fhlen = k->fh->onfs_netobj_len;
		memcpy(w->fh, k->fh->onfs_netobj_val, w->fhlen);
		w->ohlen = k->oh->onfs_netobj_len <= sizeof(w->oh) ? k->oh->onfs_netobj_len : 0;
		if (w->ohlen)
			memcpy(w->oh, k->oh->onfs_netobj_val, w->ohlen);
	}
	/* the holder is on disk before the lock exists: a crash cannot lose it */
	pthread_mutex_lock(&h->mu);
	was_monitored = h->monitored;
	if (monitor && onfs_lock_table_mode(tg.t) == ONFS_LOCKING_ON &&
	    onfs_nsm_monitor(nlm, h) < 0) {
		pthread_mutex_unlock(&h->mu);
		free(w);
		return ONFS_NLM4_DENIED_NOLOCKS;
	}
	res = onfs_lock_lock(tg.t, &tg.key, &o, &r, block, w, &g);
	pthread_mutex_unlock(&h->mu);
	onfs_nlm_send_grants(nlm, tg.t, g);
	switch (res) {
	case ONFS_LOCK_GRANTED:
		/* a poll for a lock granted while the client was not reachable */
		if (block && nlm) {
			struct onfs_out *cf = onfs_out_new(0);

			if (cf) {
				cf->kind = ONFS_OUT_CONFIRM;
				cf->table = tg.t;
				cf->key = tg.key;
				cf->owner = o;
				onfs_rpcout_submit(nlm, cf);
			}
		}
		return ONFS_NLM4_GRANTED;
	case ONFS_LOCK_BLOCKED:
		return ONFS_NLM4_BLOCKED;
	case ONFS_LOCK_DENIED:
		st = ONFS_NLM4_DENIED;
		break;
	case ONFS_LOCK_NOLOCKS:
	default:
		st = ONFS_NLM4_DENIED_NOLOCKS;
		break;
	}
	if (!was_monitored)
		onfs_nsm_maybe_unmonitor(nlm, h);
	return st;
}

static uint32_t do_cancel(struct onfs_call *c, const struct nlm_lk *k, bool excl)
{
	struct nlm_target tg;
	struct onfs_nlm_host *h;
	struct onfs_lock_owner o;
	struct onfs_lock_range r;
	uint32_t st = resolve(c, k->fh, &tg);

	if (st != ONFS_NLM4_GRANTED)
		return st;
	h = host_of(c, k->caller);
	if (!h)
		return ONFS_NLM4_DENIED;
	o.host = h->id;
	o.svid = k->svid;
	lk_range(k, excl, &r);
	/* lockd answers granted whether or not the request was still queued */
	onfs_lock_cancel(tg.t, &tg.key, &o, &r);
	onfs_nsm_maybe_unmonitor(c->srv->nlm, h);
	return ONFS_NLM4_GRANTED;
}

static uint32_t do_unlock(struct onfs_call *c, const struct nlm_lk *k)
{
	struct onfs_lock_grant *g = NULL;
	struct nlm_target tg;
	struct onfs_nlm_host *h;
	struct onfs_lock_owner o;
	struct onfs_lock_range r;
	uint32_t st = resolve(c, k->fh, &tg);

	if (st != ONFS_NLM4_GRANTED)
		return st;
	h = host_of(c, k->caller);
	if (!h)
		return ONFS_NLM4_GRANTED; /* nothing can be held by a host we never saw */
	o.host = h->id;
	o.svid = k->svid;
	lk_range(k, false, &r);
	onfs_lock_unlock(tg.t, &tg.key, &o, &r, &g);
	onfs_nlm_send_grants(c->srv->nlm, tg.t, g);
	onfs_nsm_maybe_unmonitor(c->srv->nlm, h);
	return ONFS_NLM4_GRANTED;
}

static uint32_t do_share(struct onfs_call *c, const char *caller, const onfs_netobj *fh,
			 const onfs_netobj *oh, unsigned mode, unsigned access, bool reclaim,
			 bool unshare)
{
	struct onfs_nlm *nlm = c->srv->nlm;
	struct nlm_target tg;
	struct onfs_nlm_host *h;
	uint32_t st = resolve(c, fh, &tg);
	int err;

	if (st != ONFS_NLM4_GRANTED)
		return st;
	h = host_of(c, caller);
	if (!h)
		return ONFS_NLM4_DENIED_NOLOCKS;
	if (unshare) {
		onfs_lock_unshare(tg.t, &tg.key, h->id, oh->onfs_netobj_val, oh->onfs_netobj_len);
		onfs_nsm_maybe_unmonitor(nlm, h);
		return ONFS_NLM4_GRANTED;
	}
	if (!reclaim && onfs_nlm_in_grace(nlm))
		return ONFS_NLM4_DENIED_GRACE_PERIOD;
	pthread_mutex_lock(&h->mu);
	if (onfs_lock_table_mode(tg.t) == ONFS_LOCKING_ON && onfs_nsm_monitor(nlm, h) < 0) {
		pthread_mutex_unlock(&h->mu);
		return ONFS_NLM4_DENIED_NOLOCKS;
	}
	err = onfs_lock_share(tg.t, &tg.key, h->id, oh->onfs_netobj_val, oh->onfs_netobj_len,
			      mode & 3, access & 3);
	pthread_mutex_unlock(&h->mu);
	if (err == 0)
		return ONFS_NLM4_GRANTED;
	onfs_nsm_maybe_unmonitor(nlm, h);
	return err == -EAGAIN ? ONFS_NLM4_DENIED : ONFS_NLM4_DENIED_NOLOCKS;
}

static void do_free_all(struct onfs_call *c, const char *name)
{
	struct onfs_nlm *nlm = c->srv->nlm;
	struct onfs_nlm_host *hits[64];
	struct sockaddr_storage from;
	socklen_t fromlen;
	size_t n = 0;

	if (!nlm || !name)
		return;
	onfs_nlm_norm_addr((const struct sockaddr *)&c->peer, (socklen_t)c->peer_len, &from,
			   &fromlen);
	pthread_mutex_lock(&nlm->mu);
	/* by name, and only from the host itself (a name alone anyone could send) */
	for (struct onfs_nlm_host *h = nlm->hosts; h && n < ONFS_ARRAY_SIZE(hits); h = h->next)
		if (strcasecmp(h->name, name) == 0 && fromlen > 0 &&
		    onfs_nlm_addr_eq(&h->addr, (const struct sockaddr *)&from))
			hits[n++] = h;
	pthread_mutex_unlock(&nlm->mu);
	onfs_info("nlm: FREE_ALL from %s: releasing the locks of %zu client(s)", name, n);
	for (size_t i = 0; i < n; i++)
		onfs_nlm_free_host(nlm, hits[i]);
}

/* --- result encoders --- */

static bool enc_res(uint32_t vers, XDR *xdrs, const onfs_netobj *cookie, uint32_t st)
{
	if (vers == 4) {
		struct onfs_nlm4_res r = { *cookie, (onfs_nlm4_stats)st };

		return xdr_onfs_nlm4_res(xdrs, &r);
	} else {
		struct onfs_nlm_res r = { *cookie, (onfs_nlm_stats)stat_for(vers, st) };

		return xdr_onfs_nlm_res(xdrs, &r);
	}
}

/*
 * The answer of LOCK, CANCEL and UNLOCK: the reply itself, or for the _MSG
 * form (res_proc set) a _RES call back to the client (the reply is empty).
 */
static bool answer(struct onfs_call *c, XDR *xdrs, uint32_t res_proc, const onfs_netobj *cookie,
		   uint32_t st)
{
	if (!res_proc)
		return enc_res(c->vers, xdrs, cookie, st);
	if (c->vers == 4) {
		struct onfs_nlm4_res r = { *cookie, (onfs_nlm4_stats)st };

		send_res(c, res_proc, (xdrproc_t)xdr_onfs_nlm4_res, &r);
	} else {
		struct onfs_nlm_res r = { *cookie, (onfs_nlm_stats)stat_for(c->vers, st) };

		send_res(c, res_proc, (xdrproc_t)xdr_onfs_nlm_res, &r);
	}
	return true;
}

static uint64_t holder_len(const struct onfs_lock_range *r)
{
	return r->end == ONFS_LOCK_EOF ? 0 : r->end - r->start + 1;
}

/* Fill a testres of the caller's version; returns the xdr routine. */
union any_testres {
	struct onfs_nlm4_testres v4;
	struct onfs_nlm_testres v1;
};

static xdrproc_t fill_testres(uint32_t vers, const onfs_netobj *cookie,
			      const struct test_out *t, union any_testres *u)
{
	memset(u, 0, sizeof(*u));
	if (vers == 4) {
		u->v4.cookie = *cookie;
		u->v4.test_stat.stat = (onfs_nlm4_stats)t->st;
		if (t->st == ONFS_NLM4_DENIED) {
			onfs_nlm4_holder *hd = &u->v4.test_stat.onfs_nlm4_testrply_u.holder;

			hd->exclusive = t->h.range.excl;
			hd->svid = (int)t->h.owner.svid;
			hd->l_offset = t->h.range.start;
			hd->l_len = holder_len(&t->h.range);
		}
		return (xdrproc_t)xdr_onfs_nlm4_testres;
	}
	u->v1.cookie = *cookie;
	u->v1.test_stat.stat = (onfs_nlm_stats)stat_for(vers, t->st);
	if (t->st == ONFS_NLM4_DENIED) {
		onfs_nlm_holder *hd = &u->v1.test_stat.onfs_nlm_testrply_u.holder;
		uint64_t len = holder_len(&t->h.range);

		hd->exclusive = t->h.range.excl;
		hd->svid = (int)t->h.owner.svid;
		hd->l_offset = t->h.range.start > UINT32_MAX ? UINT32_MAX : (u_int)t->h.range.start;
		hd->l_len = len > UINT32_MAX ? 0 : (u_int)len;
	}
	return (xdrproc_t)xdr_onfs_nlm_testres;
}

/* --- the procedures: one body per operation, per-version argument shapes --- */

static bool nlm_null(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

#define ARGS(vers4type, vers1type) \
	const vers4type *a4 = c->vers == 4 ? args : NULL; \
	const vers1type *a1 = c->vers == 4 ? NULL : args

static bool test_common(struct onfs_call *c, void *args, XDR *xdrs, bool msg)
{
	ARGS(struct onfs_nlm4_testargs, struct onfs_nlm_testargs);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;
	union any_testres u;
	struct test_out t;
	struct nlm_lk k;
	xdrproc_t enc;

	if (a4)
		lk_from4(&a4->alock, &k);
	else
		lk_from1(&a1->alock, &k);
	do_test(c, a4 ? a4->exclusive : a1->exclusive, &k, &t);
	enc = fill_testres(c->vers, cookie, &t, &u);
	if (msg) {
		send_res(c, P_TEST_RES, enc, &u);
		return true;
	}
	return enc(xdrs, &u);
}

static bool lock_common(struct onfs_call *c, void *args, XDR *xdrs, bool msg, bool nm)
{
	ARGS(struct onfs_nlm4_lockargs, struct onfs_nlm_lockargs);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;
	struct nlm_lk k;
	uint32_t st;
	bool excl, block, reclaim;

	if (a4) {
		lk_from4(&a4->alock, &k);
		excl = a4->exclusive, block = a4->block, reclaim = a4->reclaim;
	} else {
		lk_from1(&a1->alock, &k);
		excl = a1->exclusive, block = a1->block, reclaim = a1->reclaim;
	}
	/* NM_LOCK: a client without a status monitor; never blocks */
	st = do_lock(c, &k, excl, nm ? false : block, reclaim, !nm);
	onfs_debug("nlm: LOCK from %s svid %u [%llu+%llu]%s%s: %u", k.caller, k.svid,
		   (unsigned long long)k.off, (unsigned long long)k.len, excl ? " excl" : "",
		   block ? " block" : "", st);
	return answer(c, xdrs, msg ? P_LOCK_RES : 0, cookie, st);
}

static bool cancel_common(struct onfs_call *c, void *args, XDR *xdrs, bool msg)
{
	ARGS(struct onfs_nlm4_cancargs, struct onfs_nlm_cancargs);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;
	struct nlm_lk k;
	uint32_t st;

	if (a4)
		lk_from4(&a4->alock, &k);
	else
		lk_from1(&a1->alock, &k);
	st = do_cancel(c, &k, a4 ? a4->exclusive : a1->exclusive);
	return answer(c, xdrs, msg ? P_CANCEL_RES : 0, cookie, st);
}

static bool unlock_common(struct onfs_call *c, void *args, XDR *xdrs, bool msg)
{
	ARGS(struct onfs_nlm4_unlockargs, struct onfs_nlm_unlockargs);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;
	struct nlm_lk k;
	uint32_t st;

	if (a4)
		lk_from4(&a4->alock, &k);
	else
		lk_from1(&a1->alock, &k);
	st = do_unlock(c, &k);
	onfs_debug("nlm: UNLOCK from %s svid %u [%llu+%llu]: %u", k.caller, k.svid,
		   (unsigned long long)k.off, (unsigned long long)k.len, st);
	return answer(c, xdrs, msg ? P_UNLOCK_RES : 0, cookie, st);
}

static bool nlm_test(struct onfs_call *c, void *a, XDR *x) { return test_common(c, a, x, false); }
static bool nlm_test_msg(struct onfs_call *c, void *a, XDR *x) { return test_common(c, a, x, true); }
static bool nlm_lock(struct onfs_call *c, void *a, XDR *x) { return lock_common(c, a, x, false, false); }
static bool nlm_lock_msg(struct onfs_call *c, void *a, XDR *x) { return lock_common(c, a, x, true, false); }
static bool nlm_nm_lock(struct onfs_call *c, void *a, XDR *x) { return lock_common(c, a, x, false, true); }
static bool nlm_cancel(struct onfs_call *c, void *a, XDR *x) { return cancel_common(c, a, x, false); }
static bool nlm_cancel_msg(struct onfs_call *c, void *a, XDR *x) { return cancel_common(c, a, x, true); }
static bool nlm_unlock(struct onfs_call *c, void *a, XDR *x) { return unlock_common(c, a, x, false); }
static bool nlm_unlock_msg(struct onfs_call *c, void *a, XDR *x) { return unlock_common(c, a, x, true); }

/* GRANTED is for a client's lock manager; this server waits on nobody. */
static bool nlm_granted(struct onfs_call *c, void *args, XDR *xdrs)
{
	ARGS(struct onfs_nlm4_testargs, struct onfs_nlm_testargs);

	return enc_res(c->vers, xdrs, a4 ? &a4->cookie : &a1->cookie, ONFS_NLM4_DENIED);
}

/* _RES of a _MSG we never send, GRANTED_MSG we never wait on: void. */
static bool nlm_void(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

/* A client answered a GRANTED callback the _MSG way. Loop thread. */
static bool nlm_granted_res(struct onfs_call *c, void *args, XDR *xdrs)
{
	ARGS(struct onfs_nlm4_res, struct onfs_nlm_res);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;

	(void)xdrs;
	if (c->srv->nlm)
		onfs_rpcout_granted_res(c->srv->nlm, (const uint8_t *)cookie->onfs_netobj_val,
					cookie->onfs_netobj_len, a4 ? (uint32_t)a4->stat :
								      (uint32_t)a1->stat);
	return true;
}

static bool share_common(struct onfs_call *c, void *args, XDR *xdrs, bool unshare)
{
	ARGS(struct onfs_nlm4_shareargs, struct onfs_nlm_shareargs);
	const onfs_netobj *cookie = a4 ? &a4->cookie : &a1->cookie;
	uint32_t st;

	if (a4)
		st = do_share(c, a4->share.caller_name, &a4->share.fh, &a4->share.oh,
			      a4->share.mode, a4->share.access, a4->reclaim, unshare);
	else
		st = do_share(c, a1->share.caller_name, &a1->share.fh, &a1->share.oh,
			      a1->share.mode, a1->share.access, a1->reclaim, unshare);
	if (c->vers == 4) {
		struct onfs_nlm4_shareres r = { *cookie, (onfs_nlm4_stats)st, 0 };

		return xdr_onfs_nlm4_shareres(xdrs, &r);
	} else {
		struct onfs_nlm_shareres r = { *cookie, (onfs_nlm_stats)stat_for(c->vers, st), 0 };

		return xdr_onfs_nlm_shareres(xdrs, &r);
	}
}

static bool nlm_share(struct onfs_call *c, void *a, XDR *x) { return share_common(c, a, x, false); }
static bool nlm_unshare(struct onfs_call *c, void *a, XDR *x) { return share_common(c, a, x, true); }

static bool nlm_free_all(struct onfs_call *c, void *args, XDR *xdrs)
{
	ARGS(struct onfs_nlm4_notify, struct onfs_nlm_notify);

	(void)xdrs;
	do_free_all(c, a4 ? a4->name : a1->name);
	return true;
}

/* --- tables --- */

#define PROC(nm, fn, xdrt, t, loop) \
	{ .name = nm, .xdr_args = (xdrproc_t)xdrt, .args_size = sizeof(t), .run = fn, \
	  .on_loop = loop, .auth_none_ok = true }

/* Linux's lockd sends AUTH_SYS, statd-less clients and callbacks may send AUTH_NONE. */
static const struct onfs_proc nlm1_procs[] = {
	[P_NULL] = { .name = "NLM_NULL", .run = nlm_null, .on_loop = true, .auth_none_ok = true },
	[P_TEST] = PROC("NLM_TEST", nlm_test, xdr_onfs_nlm_testargs, struct onfs_nlm_testargs, false),
	[P_LOCK] = PROC("NLM_LOCK", nlm_lock, xdr_onfs_nlm_lockargs, struct onfs_nlm_lockargs, false),
	[P_CANCEL] = PROC("NLM_CANCEL", nlm_cancel, xdr_onfs_nlm_cancargs, struct onfs_nlm_cancargs, false),
	[P_UNLOCK] = PROC("NLM_UNLOCK", nlm_unlock, xdr_onfs_nlm_unlockargs, struct onfs_nlm_unlockargs, false),
	[P_GRANTED] = PROC("NLM_GRANTED", nlm_granted, xdr_onfs_nlm_testargs, struct onfs_nlm_testargs, true),
	[P_TEST_MSG] = PROC("NLM_TEST_MSG", nlm_test_msg, xdr_onfs_nlm_testargs, struct onfs_nlm_testargs, false),
	[P_LOCK_MSG] = PROC("NLM_LOCK_MSG", nlm_lock_msg, xdr_onfs_nlm_lockargs, struct onfs_nlm_lockargs, false),
	[P_CANCEL_MSG] = PROC("NLM_CANCEL_MSG", nlm_cancel_msg, xdr_onfs_nlm_cancargs, struct onfs_nlm_cancargs, false),
	[P_UNLOCK_MSG] = PROC("NLM_UNLOCK_MSG", nlm_unlock_msg, xdr_onfs_nlm_unlockargs, struct onfs_nlm_unlockargs, false),
	[P_GRANTED_MSG] = PROC("NLM_GRANTED_MSG", nlm_void, xdr_onfs_nlm_testargs, struct onfs_nlm_testargs, true),
	[P_TEST_RES] = PROC("NLM_TEST_RES", nlm_void, xdr_onfs_nlm_testres, struct onfs_nlm_testres, true),
	[P_LOCK_RES] = PROC("NLM_LOCK_RES", nlm_void, xdr_onfs_nlm_res, struct onfs_nlm_res, true),
	[P_CANCEL_RES] = PROC("NLM_CANCEL_RES", nlm_void, xdr_onfs_nlm_res, struct onfs_nlm_res, true),
	[P_UNLOCK_RES] = PROC("NLM_UNLOCK_RES", nlm_void, xdr_onfs_nlm_res, struct onfs_nlm_res, true),
	[P_GRANTED_RES] = PROC("NLM_GRANTED_RES", nlm_granted_res, xdr_onfs_nlm_res, struct onfs_nlm_res, true),
	[P_SHARE] = PROC("NLM_SHARE", nlm_share, xdr_onfs_nlm_shareargs, struct onfs_nlm_shareargs, false),
	[P_UNSHARE] = PROC("NLM_UNSHARE", nlm_unshare, xdr_onfs_nlm_shareargs, struct onfs_nlm_shareargs, false),
	[P_NM_LOCK] = PROC("NLM_NM_LOCK", nlm_nm_lock, xdr_onfs_nlm_lockargs, struct onfs_nlm_lockargs, false),
	[P_FREE_ALL] = PROC("NLM_FREE_ALL", nlm_free_all, xdr_onfs_nlm_notify, struct onfs_nlm_notify, false),
};

static const struct onfs_proc nlm4_procs[] = {
	[P_NULL] = { .name = "NLM4_NULL", .run = nlm_null, .on_loop = true, .auth_none_ok = true },
	[P_TEST] = PROC("NLM4_TEST", nlm_test, xdr_onfs_nlm4_testargs, struct onfs_nlm4_testargs, false),
	[P_LOCK] = PROC("NLM4_LOCK", nlm_lock, xdr_onfs_nlm4_lockargs, struct onfs_nlm4_lockargs, false),
	[P_CANCEL] = PROC("NLM4_CANCEL", nlm_cancel, xdr_onfs_nlm4_cancargs, struct onfs_nlm4_cancargs, false),
	[P_UNLOCK] = PROC("NLM4_UNLOCK", nlm_unlock, xdr_onfs_nlm4_unlockargs, struct onfs_nlm4_unlockargs, false),
	[P_GRANTED] = PROC("NLM4_GRANTED", nlm_granted, xdr_onfs_nlm4_testargs, struct onfs_nlm4_testargs, true),
	[P_TEST_MSG] = PROC("NLM4_TEST_MSG", nlm_test_msg, xdr_onfs_nlm4_testargs, struct onfs_nlm4_testargs, false),
	[P_LOCK_MSG] = PROC("NLM4_LOCK_MSG", nlm_lock_msg, xdr_onfs_nlm4_lockargs, struct onfs_nlm4_lockargs, false),
	[P_CANCEL_MSG] = PROC("NLM4_CANCEL_MSG", nlm_cancel_msg, xdr_onfs_nlm4_cancargs, struct onfs_nlm4_cancargs, false),
	[P_UNLOCK_MSG] = PROC("NLM4_UNLOCK_MSG", nlm_unlock_msg, xdr_onfs_nlm4_unlockargs, struct onfs_nlm4_unlockargs, false),
	[P_GRANTED_MSG] = PROC("NLM4_GRANTED_MSG", nlm_void, xdr_onfs_nlm4_testargs, struct onfs_nlm4_testargs, true),
	[P_TEST_RES] = PROC("NLM4_TEST_RES", nlm_void, xdr_onfs_nlm4_testres, struct onfs_nlm4_testres, true),
	[P_LOCK_RES] = PROC("NLM4_LOCK_RES", nlm_void, xdr_onfs_nlm4_res, struct onfs_nlm4_res, true),
	[P_CANCEL_RES] = PROC("NLM4_CANCEL_RES", nlm_void, xdr_onfs_nlm4_res, struct onfs_nlm4_res, true),
	[P_UNLOCK_RES] = PROC("NLM4_UNLOCK_RES", nlm_void, xdr_onfs_nlm4_res, struct onfs_nlm4_res, true),
	[P_GRANTED_RES] = PROC("NLM4_GRANTED_RES", nlm_granted_res, xdr_onfs_nlm4_res, struct onfs_nlm4_res, true),
	[P_SHARE] = PROC("NLM4_SHARE", nlm_share, xdr_onfs_nlm4_shareargs, struct onfs_nlm4_shareargs, false),
	[P_UNSHARE] = PROC("NLM4_UNSHARE", nlm_unshare, xdr_onfs_nlm4_shareargs, struct onfs_nlm4_shareargs, false),
	[P_NM_LOCK] = PROC("NLM4_NM_LOCK", nlm_nm_lock, xdr_onfs_nlm4_lockargs, struct onfs_nlm4_lockargs, false),
	[P_FREE_ALL] = PROC("NLM4_FREE_ALL", nlm_free_all, xdr_onfs_nlm4_notify, struct onfs_nlm4_notify, false),
};

/* Version 1 has procedures 0..15 only; version 3 adds 20..23. */
const struct onfs_program onfs_nlm1_program = {
	.name = "NLM1", .prog = ONFS_NLM_PROG, .vers = 1, .procs = nlm1_procs, .nprocs = 16,
};
const struct onfs_program onfs_nlm3_program = {
	.name = "NLM3", .prog = ONFS_NLM_PROG, .vers = 3, .procs = nlm1_procs,
	.nprocs = ONFS_ARRAY_SIZE(nlm1_procs),
};
const struct onfs_program onfs_nlm4_program = {
	.name = "NLM4", .prog = ONFS_NLM_PROG, .vers = 4, .procs = nlm4_procs,
	.nprocs = ONFS_ARRAY_SIZE(nlm4_procs),
};
