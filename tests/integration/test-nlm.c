/*
 * test-nlm.c - file locking through a real ovlnfsd (issue 15): NLM v4
 * (and v1) byte-range locks between clients, blocking locks granted by a
 * GRANTED callback, CANCEL, FREE_ALL, the _MSG/_RES forms, SHARE, locks
 * that follow a file across copy-up and rename, the NSM side (holders
 * recorded, SM_NOTIFY after a restart, the grace period, a rebooted
 * client's SM_NOTIFY), locking = off, and bad input (forged handles,
 * absurd ranges, a flood of blocking requests, a client that never
 * answers its GRANTED callback).
 *
 * The whole test runs in a network namespace of its own (unshare
 * CLONE_NEWNET, loopback only), so that each fake client can own an
 * address of 127.0.0.0/8 with its own portmapper on port 111, exactly
 * where the server looks for a client's lock manager and status monitor.
 * A fake client is a few UDP sockets in this process: one it sends from,
 * its portmapper, and one "callback" socket registered there for NLM and
 * NSM. Without the privilege to make the namespace every case is skipped
 * with the reason printed.
 *
 * Each case starts its own server on a temp tree and stops it by PID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nfsc/libnfs-raw-nlm.h>

#include "nfsclient.h"
#include "rawrpc.h"
#include "testlib.h"

/* status codes: libnfs's enum nlmstat4 (NLM4_GRANTED, NLM4_DENIED, ...) */
#define NLM_PROG 100021
#define NSM_PROG 100024
#define PMAP_PROG 100000
#define NLM4_DENIED_GRACE NLM4_DENIED_GRACE_PERIOD
#define P_TEST 1
#define P_LOCK 2
#define P_CANCEL 3
#define P_UNLOCK 4
#define P_GRANTED 5
#define P_LOCK_MSG 7
#define P_LOCK_RES 12
#define P_SHARE 20
#define P_UNSHARE 21
#define P_FREE_ALL 23
#define SM_NOTIFY 6

static const char *netns_skip; /* why the namespace could not be made, or NULL */

/* ---------- a fake client host ---------- */

struct fc {
	const char *name; /* caller_name */
	const char *ip;
	int sock;         /* sends calls, receives replies (and fallback callbacks) */
	int pmap;         /* its portmapper on ip:111, or -1 */
	int cb;           /* its lock manager / status monitor, or -1 */
	int cb_port;
	bool answer_granted; /* reply to GRANTED calls */
	uint32_t xid;
};

/* A call the fake client received. */
struct fc_call {
	uint32_t xid, prog, vers, proc;
	uint8_t rec[4096];
	size_t len;
	struct tl_rd args;
	struct sockaddr_in from;
	int fd;
};

static int udp_bind(const char *ip, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	ASSERT(inet_pton(AF_INET, ip, &sa.sin_addr) == 1);
	ASSERTF(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s:%d: %s", ip, port,
		strerror(errno));
	return fd;
}

static int sock_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	ASSERT(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	return ntohs(sa.sin_port);
}

static void fc_close(void *arg)
{
	struct fc *f = arg;

	if (f->sock >= 0)
		close(f->sock);
	if (f->pmap >= 0)
		close(f->pmap);
	if (f->cb >= 0)
		close(f->cb);
	f->sock = f->pmap = f->cb = -1;
}

/* with_pmap: a portmapper on ip:111 that maps NLM and NSM to the callback socket. */
static void fc_open(struct fc *f, const char *name, const char *ip, bool with_pmap)
{
	memset(f, 0, sizeof(*f));
	f->name = name;
	f->ip = ip;
	f->answer_granted = true;
	f->xid = 0x1000u * (uint32_t)(ip[strlen(ip) - 1]);
	f->sock = udp_bind(ip, 0);
	f->pmap = f->cb = -1;
	if (with_pmap) {
		f->pmap = udp_bind(ip, 111);
		f->cb = udp_bind(ip, 0);
		f->cb_port = sock_port(f->cb);
	}
	tl_cleanup_push(fc_close, f);
}

static void put_reply_hdr(struct tl_buf *b, uint32_t xid)
{
	tl_put_u32(b, xid);
	tl_put_u32(b, 1); /* REPLY */
	tl_put_u32(b, 0); /* MSG_ACCEPTED */
	tl_put_u32(b, 0);
	tl_put_u32(b, 0); /* verifier */
	tl_put_u32(b, 0); /* SUCCESS */
}

/* Parse a CALL header; args points at the arguments. */
static bool parse_call(struct fc_call *c)
{
	struct tl_rd r = { c->rec, c->len, 0, false };
	uint32_t n;

	c->xid = tl_get_u32(&r);
	if (tl_get_u32(&r) != 0)
		return false;
	tl_get_u32(&r); /* rpcvers */
	c->prog = tl_get_u32(&r);
	c->vers = tl_get_u32(&r);
	c->proc = tl_get_u32(&r);
	tl_get_u32(&r); /* cred flavor */
	n = tl_get_u32(&r);
	r.off += (n + 3) & ~3u;
	tl_get_u32(&r); /* verf flavor */
	n = tl_get_u32(&r);
	r.off += (n + 3) & ~3u;
	if (r.bad || r.off > c->len)
		return false;
	c->args = (struct tl_rd){ c->rec + r.off, c->len - r.off, 0, false };
	return true;
}

static void send_to(int fd, const struct tl_buf *b, const struct sockaddr_in *to)
{
	ASSERT(sendto(fd, b->p, b->len, 0, (const struct sockaddr *)to, sizeof(*to)) ==
	       (ssize_t)b->len);
}

/* Answer a portmapper call (GETPORT of NLM/NSM: the callback port; else 0). */
static void pmap_answer(struct fc *f)
{
	struct fc_call c = { .fd = f->pmap };
	socklen_t fl = sizeof(c.from);
	ssize_t n = recvfrom(f->pmap, c.rec, sizeof(c.rec), 0, (struct sockaddr *)&c.from, &fl);
	struct tl_buf b = { 0 };
	uint32_t prog;

	if (n <= 0)
		return;
	c.len = (size_t)n;
	if (!parse_call(&c) || c.prog != PMAP_PROG)
		return;
	put_reply_hdr(&b, c.xid);
	if (c.proc == 3) {
		prog = tl_get_u32(&c.args);
		tl_put_u32(&b, (prog == NLM_PROG || prog == NSM_PROG) ? (uint32_t)f->cb_port : 0);
	}
	send_to(f->pmap, &b, &c.from);
	tl_buf_free(&b);
}

/* Answer a GRANTED call with nlm4_res {cookie, granted}. */
static void answer_granted(struct fc_call *c)
{
	struct tl_rd r = c->args;
	uint8_t cookie[1024];
	uint32_t clen = tl_get_opaque(&r, cookie, sizeof(cookie));
	struct tl_buf b = { 0 };

	put_reply_hdr(&b, c->xid);
	tl_put_opaque(&b, cookie, clen);
	tl_put_u32(&b, NLM4_GRANTED);
	send_to(c->fd, &b, &c->from);
	tl_buf_free(&b);
}

/*
 * Serve the fake host for up to timeout_ms: answer its portmapper, and
 * return 0 with *out the first call (prog, proc) that arrives on its
 * callback or its own socket (a GRANTED is answered when answer_granted).
 * Replies that arrive meanwhile go to want_reply_xid/reply (if set).
 */
static int fc_serve(struct fc *f, int timeout_ms, uint32_t prog, uint32_t proc,
		    struct fc_call *out)
{
	double deadline = tl_now() + timeout_ms / 1000.0;

	for (;;) {
		struct pollfd p[3] = { { f->sock, POLLIN, 0 }, { f->pmap, POLLIN, 0 },
				       { f->cb, POLLIN, 0 } };
		int ms = (int)((deadline - tl_now()) * 1000);

		if (ms <= 0 || poll(p, 3, ms) <= 0)
			return -ETIMEDOUT;
		if (p[1].revents & POLLIN)
			pmap_answer(f);
		for (int i = 0; i < 3; i += 2) {
			struct fc_call c;
			socklen_t fl = sizeof(c.from);
			ssize_t n;

			if (!(p[i].revents & POLLIN))
				continue;
			n = recvfrom(p[i].fd, c.rec, sizeof(c.rec), 0, (struct sockaddr *)&c.from,
				     &fl);
			if (n <= 0)
				continue;
			c.len = (size_t)n;
			c.fd = p[i].fd;
			if (!parse_call(&c))
				continue; /* a stray reply */
			if (c.prog == NLM_PROG && c.proc == P_GRANTED && f->answer_granted)
				answer_granted(&c);
			if (c.prog == prog && c.proc == proc) {
				*out = c;
				return 0;
			}
		}
	}
}

/* One call from the fake client over UDP; returns the reply body reader. */
static struct tl_rd fc_call_udp(struct fc *f, int port, uint32_t prog, uint32_t vers,
				uint32_t proc, const struct tl_buf *args, uint8_t *rec, size_t cap)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct tl_buf b = { 0 };
	struct tl_reply r;
	uint32_t xid = ++f->xid;
	double deadline = tl_now() + 10;

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tl_put_call(&b, xid, 2, prog, vers, proc, TL_AUTH_SYS, 0, 0, 0);
	tl_put_bytes(&b, args->p, args->len);
	send_to(f->sock, &b, &to);
	tl_buf_free(&b);
	for (;;) {
		struct pollfd p[2] = { { f->sock, POLLIN, 0 }, { f->pmap, POLLIN, 0 } };
		int ms = (int)((deadline - tl_now()) * 1000);
		ssize_t n;

		ASSERTF(ms > 0 && poll(p, 2, ms) > 0, "no reply to prog %u proc %u", prog, proc);
		if (p[1].revents & POLLIN)
			pmap_answer(f);
		if (!(p[0].revents & POLLIN))
			continue;
		n = recv(f->sock, rec, cap, 0);
		ASSERT(n > 0);
		if (tl_reply_parse(rec, (size_t)n, &r) == 0 && r.xid == xid) {
			ASSERTF(r.accepted && r.accept_stat == TL_SUCCESS,
				"prog %u proc %u: accept_stat %u", prog, proc, r.accept_stat);
			return (struct tl_rd){ r.body, r.body_len, 0, false };
		}
	}
}

/* ---------- NLM argument builders ---------- */

static void put_lock4(struct tl_buf *b, const struct fc *f, const struct tl_fh *fh,
		      uint32_t svid, uint64_t off, uint64_t len)
{
	char oh[64];

	snprintf(oh, sizeof(oh), "%u@%s", svid, f->name);
	tl_put_opaque(b, f->name, (uint32_t)strlen(f->name));
	tl_put_opaque(b, fh->data, fh->len);
	tl_put_opaque(b, oh, (uint32_t)strlen(oh));
	tl_put_u32(b, svid);
	tl_put_u64(b, off);
	tl_put_u64(b, len);
}

static uint32_t res_stat(struct tl_rd *r)
{
	uint8_t cookie[1024];

	tl_get_opaque(r, cookie, sizeof(cookie));
	return tl_get_u32(r);
}

static uint32_t nlm_lock(struct fc *f, int port, const struct tl_fh *fh, uint32_t svid,
			 uint64_t off, uint64_t len, bool excl, bool block, bool reclaim)
{
	struct tl_buf a = { 0 };
	uint8_t rec[4096];
	struct tl_rd r;

	tl_put_opaque(&a, "ck", 2);
	tl_put_u32(&a, block);
	tl_put_u32(&a, excl);
	put_lock4(&a, f, fh, svid, off, len);
	tl_put_u32(&a, reclaim);
	tl_put_u32(&a, 1); /* state */
	r = fc_call_udp(f, port, NLM_PROG, 4, P_LOCK, &a, rec, sizeof(rec));
	tl_buf_free(&a);
	return res_stat(&r);
}

static uint32_t nlm_unlock(struct fc *f, int port, const struct tl_fh *fh, uint32_t svid,
			   uint64_t off, uint64_t len)
{
	struct tl_buf a = { 0 };
	uint8_t rec[4096];
	struct tl_rd r;

	tl_put_opaque(&a, "ck", 2);
	put_lock4(&a, f, fh, svid, off, len);
	r = fc_call_udp(f, port, NLM_PROG, 4, P_UNLOCK, &a, rec, sizeof(rec));
	tl_buf_free(&a);
	return res_stat(&r);
}

static uint32_t nlm_cancel(struct fc *f, int port, const struct tl_fh *fh, uint32_t svid,
			   uint64_t off, uint64_t len, bool excl)
{
	struct tl_buf a = { 0 };
	uint8_t rec[4096];
	struct tl_rd r;

	tl_put_opaque(&a, "ck", 2);
	tl_put_u32(&a, 1);
	tl_put_u32(&a, excl);
	put_lock4(&a, f, fh, svid, off, len);
	r = fc_call_udp(f, port, NLM_PROG, 4, P_CANCEL, &a, rec, sizeof(rec));
	tl_buf_free(&a);
	return res_stat(&r);
}

struct holder {
	bool excl;
	uint32_t svid;
	uint64_t off, len;
};

static uint32_t nlm_test(struct fc *f, int port, const struct tl_fh *fh, uint32_t svid,
			 uint64_t off, uint64_t len, bool excl, struct holder *h)
{
	struct tl_buf a = { 0 };
	uint8_t rec[4096], oh[1024];
	struct tl_rd r;
	uint32_t st;

	tl_put_opaque(&a, "ck", 2);
	tl_put_u32(&a, excl);
	put_lock4(&a, f, fh, svid, off, len);
	r = fc_call_udp(f, port, NLM_PROG, 4, P_TEST, &a, rec, sizeof(rec));
	tl_buf_free(&a);
	st = res_stat(&r);
	if (st == NLM4_DENIED && h) {
		h->excl = tl_get_u32(&r);
		h->svid = tl_get_u32(&r);
		tl_get_opaque(&r, oh, sizeof(oh));
		h->off = tl_get_u64(&r);
		h->len = tl_get_u64(&r);
		ASSERT(!r.bad);
	}
	return st;
}

/* ---------- the server and files ---------- */

struct env {
	struct tl_tree t;
	struct tl_server s;
	struct tl_client nc;
	struct tl_fh root;
	char opts[4 * PATH_MAX];
};

static void env_start(struct env *e, const char *const *extra)
{
	tl_server_start(&e->s, e->t.root, e->t.state, e->opts, NULL, extra);
	tl_client_mount(&e->nc, e->s.port, "/", &e->root);
}

static void env_new(struct env *e, const char *const *extra)
{
	if (netns_skip)
		RETURN_SKIP("%s", netns_skip);
	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 1);
	tl_mkdir(e->t.lower[0], "d", 0755);
	tl_write(e->t.lower[0], "d/lowfile", "lower data\n", 0666);
	tl_write(e->t.upper, "f", "0123456789abcdef", 0666);
	tl_write(e->t.upper, "g", "other file", 0666);
	tl_tree_opts(&e->t, true, e->opts, sizeof(e->opts));
	env_start(e, extra);
}

static void env_stop(struct env *e)
{
	tl_client_close(&e->nc);
	tl_server_stop(&e->s);
}

static void env_restart(struct env *e, const char *const *extra)
{
	env_stop(e);
	env_start(e, extra);
}

static struct tl_fh fh_of(struct env *e, const char *path)
{
	struct tl_fh fh;

	ASSERTF(tl_nfs_walk(&e->nc, &e->root, path, &fh, NULL) == NFS3_OK, "lookup %s", path);
	return fh;
}

/* Files in STATE/nsm/sm (recorded lock holders). */
static int recorded_holders(struct env *e)
{
	char path[PATH_MAX + 16];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/nsm/sm", e->t.state);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool log_has(const struct env *e, const char *needle)
{
	char *text = NULL;
	bool hit;

	if (tl_read_file(e->s.log, &text) < 0)
		return false;
	hit = strstr(text, needle) != NULL;
	free(text);
	return hit;
}

/* ---------- cases ---------- */

TEST_IMPL(nlm_conflicts_and_ranges)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f, g;
	struct holder h;

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	g = fh_of(&e, "g");

	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 100, 0, 100, true, false, false), NLM4_GRANTED);
	/* overlapping: denied, and TEST names the holder */
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 200, 50, 10, true, &h), NLM4_DENIED);
	ASSERT(h.excl);
	ASSERT_EQ(h.svid, 100);
	ASSERT_EQ(h.off, 0);
	ASSERT_EQ(h.len, 100);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 200, 99, 1, false, false, false), NLM4_DENIED);
	/* adjacent and beyond: free */
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 200, 100, 50, true, false, false), NLM4_GRANTED);
	/* another file is another lock */
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 200, 0, 0, true, false, false), NLM4_GRANTED);
	/* the same client, another process (svid): a different owner, it conflicts */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 101, 10, 1, false, false, false), NLM4_DENIED);
	/* the owner itself: no conflict with its own lock */
	ASSERT_EQ(nlm_test(&a, e.s.port, &f, 100, 0, 10, true, NULL), NLM4_GRANTED);
	/* shared locks share: a shared lock of A elsewhere, B's shared over it */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 100, 1000, 10, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 200, 1005, 10, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 201, 1000, 1, true, &h), NLM4_DENIED);
	ASSERT(!h.excl);
	/* length 0 = to end of file: conflicts with everything above */
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 201, 5000, 0, false, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 201, 0, 0, false, &h), NLM4_DENIED);
	ASSERT(h.svid == 100 || h.svid == 200);

	/* version 1 (32-bit ranges) sees the same table */
	{
		struct tl_buf a1 = { 0 };
		uint8_t rec[4096];
		struct tl_rd r;
		char oh[] = "v1";

		tl_put_opaque(&a1, "c1", 2);
		tl_put_u32(&a1, 1);
		tl_put_opaque(&a1, b.name, (uint32_t)strlen(b.name));
		tl_put_opaque(&a1, f.data, f.len);
		tl_put_opaque(&a1, oh, 2);
		tl_put_u32(&a1, 300);
		tl_put_u32(&a1, 20);
		tl_put_u32(&a1, 5);
		r = fc_call_udp(&b, e.s.port, NLM_PROG, 1, P_TEST, &a1, rec, sizeof(rec));
		ASSERT_EQ(res_stat(&r), NLM4_DENIED);
		tl_get_u32(&r);
		ASSERT_EQ(tl_get_u32(&r), 100);
		tl_buf_free(&a1);
	}
	/* a holder is recorded for restart recovery */
	ASSERT_EQ(recorded_holders(&e), 2);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 100, 0, 0), NLM4_GRANTED);
	ASSERT_EQ(nlm_unlock(&b, e.s.port, &f, 200, 0, 0), NLM4_GRANTED);
	ASSERT_EQ(nlm_unlock(&b, e.s.port, &g, 200, 0, 0), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 200, 0, 0, true, NULL), NLM4_GRANTED);
	/* nothing held: nothing recorded */
	ASSERT_EQ(recorded_holders(&e), 0);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_upgrade_downgrade_split)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f;

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");

	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 100, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 10, false, false, false), NLM4_GRANTED);
	/* upgrade refused while B shares part of the range */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 100, true, false, false), NLM4_DENIED);
	ASSERT_EQ(nlm_unlock(&b, e.s.port, &f, 2, 0, 10), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 100, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 50, 1, false, NULL), NLM4_DENIED);
	/* downgrade: readers are welcome again, writers are not */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 100, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 50, 1, false, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 50, 1, true, NULL), NLM4_DENIED);
	/* split: unlock the middle [40, 60) */
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 40, 20), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 40, 20, true, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 39, 1, true, NULL), NLM4_DENIED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 60, 1, true, NULL), NLM4_DENIED);
	/* upgrade one piece only: [70, 80) exclusive, the rest stays shared */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 70, 10, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 65, 5, false, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 75, 1, false, NULL), NLM4_DENIED);
	/* merge: a shared lock over everything joins the pieces; one unlock frees all */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 100, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 75, 1, false, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 45, 1, true, NULL), NLM4_DENIED);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 0, 100), NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 0, 0, true, NULL), NLM4_GRANTED);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

/* Read the lock of a GRANTED call: exclusive, svid, offset, len. */
static void granted_args(struct fc_call *c, struct tl_fh *fh, struct holder *h)
{
	uint8_t tmp[1024];
	struct tl_rd r = c->args;

	tl_get_opaque(&r, tmp, sizeof(tmp)); /* cookie */
	h->excl = tl_get_u32(&r);
	tl_get_opaque(&r, tmp, sizeof(tmp)); /* caller_name */
	fh->len = tl_get_opaque(&r, fh->data, sizeof(fh->data));
	tl_get_opaque(&r, tmp, sizeof(tmp)); /* oh */
	h->svid = tl_get_u32(&r);
	h->off = tl_get_u64(&r);
	h->len = tl_get_u64(&r);
	ASSERT(!r.bad);
}

TEST_IMPL(nlm_blocking_lock_granted_by_callback)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f, gfh;
	struct fc_call call;
	struct holder h;

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", true);
	f = fh_of(&e, "f");

	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 7, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 8, 10, 5, true, true, false), NLM4_BLOCKED);
	/* asking again while queued (the client's poll) is BLOCKED, not a second waiter */
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 8, 10, 5, true, true, false), NLM4_BLOCKED);
	/* nothing is granted while A holds it */
	ASSERT_EQ(fc_serve(&b, 500, NLM_PROG, P_GRANTED, &call), -ETIMEDOUT);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 7, 0, 0), NLM4_GRANTED);
	/* GRANTED reaches B's lock manager through B's portmapper */
	ASSERT_EQ(fc_serve(&b, 5000, NLM_PROG, P_GRANTED, &call), 0);
	ASSERT_EQ(call.fd, b.cb);
	ASSERT_EQ(call.vers, 4);
	granted_args(&call, &gfh, &h);
	ASSERT(h.excl);
	ASSERT_EQ(h.svid, 8);
	ASSERT_EQ(h.off, 10);
	ASSERT_EQ(h.len, 5);
	ASSERT(gfh.len == f.len && memcmp(gfh.data, f.data, f.len) == 0);
	/* B holds it now */
	ASSERT_EQ(nlm_test(&a, e.s.port, &f, 7, 12, 1, false, &h), NLM4_DENIED);
	ASSERT_EQ(h.svid, 8);
	/* and keeps it: the callback was answered */
	usleep(1500 * 1000);
	ASSERT_EQ(nlm_test(&a, e.s.port, &f, 7, 12, 1, false, NULL), NLM4_DENIED);

	/* the same with NLM version 1 (32-bit offsets): a version 1 GRANTED */
	{
		struct tl_fh g = fh_of(&e, "g");
		struct tl_buf a1 = { 0 };
		uint8_t rec[4096], tmp[1024];
		struct tl_rd r;

		ASSERT_EQ(nlm_lock(&a, e.s.port, &g, 7, 0, 0, true, false, false), NLM4_GRANTED);
		tl_put_opaque(&a1, "v1", 2);
		tl_put_u32(&a1, 1); /* block */
		tl_put_u32(&a1, 0); /* shared */
		tl_put_opaque(&a1, b.name, (uint32_t)strlen(b.name));
		tl_put_opaque(&a1, g.data, g.len);
		tl_put_opaque(&a1, "oh1", 3);
		tl_put_u32(&a1, 31);
		tl_put_u32(&a1, 4000);
		tl_put_u32(&a1, 96);
		tl_put_u32(&a1, 0);
		tl_put_u32(&a1, 1);
		r = fc_call_udp(&b, e.s.port, NLM_PROG, 1, P_LOCK, &a1, rec, sizeof(rec));
		tl_buf_free(&a1);
		ASSERT_EQ(res_stat(&r), NLM4_BLOCKED);
		ASSERT_EQ(nlm_unlock(&a, e.s.port, &g, 7, 0, 0), NLM4_GRANTED);
		ASSERT_EQ(fc_serve(&b, 5000, NLM_PROG, P_GRANTED, &call), 0);
		ASSERT_EQ(call.vers, 1);
		r = call.args;
		tl_get_opaque(&r, tmp, sizeof(tmp)); /* cookie */
		ASSERT_EQ(tl_get_u32(&r), 0);        /* shared */
		tl_get_opaque(&r, tmp, sizeof(tmp)); /* caller */
		tl_get_opaque(&r, tmp, sizeof(tmp)); /* fh */
		tl_get_opaque(&r, tmp, sizeof(tmp)); /* oh */
		ASSERT_EQ(tl_get_u32(&r), 31);
		ASSERT_EQ(tl_get_u32(&r), 4000);
		ASSERT_EQ(tl_get_u32(&r), 96);
		ASSERT(!r.bad && r.off == r.len);
		ASSERT_EQ(nlm_test(&a, e.s.port, &g, 7, 4050, 1, true, &h), NLM4_DENIED);
		ASSERT_EQ(h.svid, 31);
	}
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_cancel_and_free_all)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f, g;
	struct fc_call call;
	struct tl_buf args = { 0 };
	uint8_t rec[4096];

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", true);
	f = fh_of(&e, "f");
	g = fh_of(&e, "g");

	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, true, false), NLM4_BLOCKED);
	ASSERT_EQ(nlm_cancel(&b, e.s.port, &f, 2, 0, 0, true), NLM4_GRANTED);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 0, 0), NLM4_GRANTED);
	/* cancelled: no callback, and B holds nothing */
	ASSERT_EQ(fc_serve(&b, 1500, NLM_PROG, P_GRANTED, &call), -ETIMEDOUT);
	ASSERT_EQ(nlm_test(&a, e.s.port, &f, 1, 0, 0, true, NULL), NLM4_GRANTED);

	/* FREE_ALL: everything A holds, on every file, goes */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 10, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&a, e.s.port, &g, 3, 5, 10, false, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 10, true, false, false), NLM4_DENIED);
	/* from another address, A's name frees nothing */
	tl_put_opaque(&args, a.name, (uint32_t)strlen(a.name));
	tl_put_u32(&args, 5);
	fc_call_udp(&b, e.s.port, NLM_PROG, 4, P_FREE_ALL, &args, rec, sizeof(rec));
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 10, true, false, false), NLM4_DENIED);
	fc_call_udp(&a, e.s.port, NLM_PROG, 4, P_FREE_ALL, &args, rec, sizeof(rec));
	tl_buf_free(&args);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 10, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 2, 0, 100, true, false, false), NLM4_GRANTED);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_lock_follows_copy_up_and_rename)
{
	struct env e;
	struct fc a, b;
	struct tl_fh low, d, again;
	struct holder h;
	struct stat st;
	char path[PATH_MAX];

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	low = fh_of(&e, "d/lowfile");
	d = fh_of(&e, "d");
	tl_join(path, sizeof(path), e.t.upper, "d/lowfile");
	ASSERT(stat(path, &st) < 0);

	ASSERT_EQ(nlm_lock(&a, e.s.port, &low, 1, 0, 0, true, false, false), NLM4_GRANTED);
	/* another client writes: the file is copied up */
	ASSERT_EQ(tl_nfs_write(&e.nc, &low, 0, "changed", 7), NFS3_OK);
	ASSERT(stat(path, &st) == 0);
	ASSERT_EQ(nlm_test(&b, e.s.port, &low, 2, 0, 1, false, &h), NLM4_DENIED);
	ASSERT_EQ(h.svid, 1);
	/* looked up afresh, and renamed: still the same lock */
	ASSERT_EQ(tl_nfs_rename(&e.nc, &d, "lowfile", &e.root, "moved"), NFS3_OK);
	again = fh_of(&e, "moved");
	ASSERT_EQ(nlm_lock(&b, e.s.port, &again, 2, 0, 1, false, false, false), NLM4_DENIED);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &low, 1, 0, 0), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &again, 2, 0, 1, false, false, false), NLM4_GRANTED);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

/* Read SM_NOTIFY's args: mon_name, state. */
static int32_t notify_state(struct fc_call *c, char *name, size_t cap)
{
	struct tl_rd r = c->args;
	uint32_t n = tl_get_opaque(&r, name, cap - 1);

	name[n < cap ? n : cap - 1] = 0;
	return (int32_t)tl_get_u32(&r);
}

static int read_state_file(struct env *e)
{
	char path[PATH_MAX + 16], *text = NULL;
	int v;

	snprintf(path, sizeof(path), "%s/nsm/state", e->t.state);
	ASSERT(tl_read_file(path, &text) >= 0);
	v = atoi(text);
	free(text);
	return v;
}

TEST_IMPL(nlm_restart_notifies_and_grace)
{
	static const char *const grace3[] = { "--grace", "3", NULL };
	struct env e;
	struct fc a, b;
	struct tl_fh f, g;
	struct fc_call call;
	char name[256];
	int s1, s2, s3;
	double t0;

	env_new(&e, grace3);
	fc_open(&a, "client-a", "127.0.0.2", true);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	g = fh_of(&e, "g");
	s1 = read_state_file(&e);
	ASSERT_EQ(s1 & 1, 1);
	/* no holder recorded at the first start: no grace period */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 10, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(recorded_holders(&e), 1);

	env_restart(&e, grace3);
	t0 = tl_now();
	s2 = read_state_file(&e);
	ASSERT(s2 > s1 && (s2 & 1));
	/* SM_NOTIFY reaches A's status monitor through A's portmapper */
	ASSERT_EQ(fc_serve(&a, 5000, NSM_PROG, SM_NOTIFY, &call), 0);
	ASSERT_EQ(call.fd, a.cb);
	ASSERT_EQ(notify_state(&call, name, sizeof(name)), s2);
	ASSERT_STREQ(name, "127.0.0.1");
	{
		struct tl_buf rb = { 0 };

		put_reply_hdr(&rb, call.xid);
		send_to(call.fd, &rb, &call.from);
		tl_buf_free(&rb);
	}
	/* in grace: a new lock is refused, the reclaim accepted */
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 2, 0, 10, true, false, false), NLM4_DENIED_GRACE);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, 0, 10, true, NULL), NLM4_DENIED_GRACE);
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 10, true, false, true), NLM4_GRANTED);
	ASSERT(log_has(&e, "grace period of 3 s"));
	/* after it, normal service; the reclaimed lock holds */
	while (tl_now() - t0 < 3.5)
		usleep(100 * 1000);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 2, 0, 10, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 10, true, false, false), NLM4_DENIED);

	/* all released before the next restart: no grace period then */
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 0, 10), NLM4_GRANTED);
	ASSERT_EQ(nlm_unlock(&b, e.s.port, &g, 2, 0, 10), NLM4_GRANTED);
	ASSERT_EQ(recorded_holders(&e), 0);
	env_restart(&e, grace3);
	s3 = read_state_file(&e);
	ASSERT(s3 > s2 && (s3 & 1));
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 2, 0, 10, true, false, false), NLM4_GRANTED);
	ASSERT(!log_has(&e, "grace period"));
	env_stop(&e);
	/* a clean stop leaves the state number even */
	ASSERT_EQ(read_state_file(&e) & 1, 0);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_rebooted_client_notify_releases)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f;
	struct tl_buf args = { 0 };
	uint8_t rec[4096];

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, false, false), NLM4_DENIED);
	/* A's name from B's address: not A's reboot, nothing released */
	tl_put_opaque(&args, a.name, (uint32_t)strlen(a.name));
	tl_put_u32(&args, 3);
	fc_call_udp(&b, e.s.port, NSM_PROG, 1, SM_NOTIFY, &args, rec, sizeof(rec));
	tl_buf_free(&args);
	memset(&args, 0, sizeof(args));
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, false, false), NLM4_DENIED);
	/* A's statd, after A rebooted: SM_NOTIFY to the server's NSM program */
	tl_put_opaque(&args, a.name, (uint32_t)strlen(a.name));
	tl_put_u32(&args, 3);
	fc_call_udp(&a, e.s.port, NSM_PROG, 1, SM_NOTIFY, &args, rec, sizeof(rec));
	tl_buf_free(&args);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(recorded_holders(&e), 1); /* B only */
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_msg_forms_and_share)
{
	struct env e;
	struct fc a, b, c;
	struct tl_fh f;
	struct fc_call call;
	struct tl_buf args = { 0 };
	uint8_t rec[4096], cookie[64];
	struct tl_rd r;

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", true);
	fc_open(&b, "client-b", "127.0.0.3", false);
	fc_open(&c, "client-c", "127.0.0.4", false); /* no portmapper */
	f = fh_of(&e, "f");

	/* LOCK_MSG: the answer is a LOCK_RES call to A's lock manager */
	tl_put_opaque(&args, "msg1", 4);
	tl_put_u32(&args, 0);
	tl_put_u32(&args, 1);
	put_lock4(&args, &a, &f, 9, 0, 10);
	tl_put_u32(&args, 0);
	tl_put_u32(&args, 1);
	fc_call_udp(&a, e.s.port, NLM_PROG, 4, P_LOCK_MSG, &args, rec, sizeof(rec));
	tl_buf_free(&args);
	ASSERT_EQ(fc_serve(&a, 5000, NLM_PROG, P_LOCK_RES, &call), 0);
	ASSERT_EQ(call.fd, a.cb);
	r = call.args;
	ASSERT_EQ(tl_get_opaque(&r, cookie, sizeof(cookie)), 4);
	ASSERT(memcmp(cookie, "msg1", 4) == 0);
	ASSERT_EQ(tl_get_u32(&r), NLM4_GRANTED);
	/* C has no portmapper: its LOCK_RES comes back to where it called from */
	memset(&args, 0, sizeof(args));
	tl_put_opaque(&args, "msg2", 4);
	tl_put_u32(&args, 0);
	tl_put_u32(&args, 1);
	put_lock4(&args, &c, &f, 10, 5, 1);
	tl_put_u32(&args, 0);
	tl_put_u32(&args, 1);
	fc_call_udp(&c, e.s.port, NLM_PROG, 4, P_LOCK_MSG, &args, rec, sizeof(rec));
	tl_buf_free(&args);
	ASSERT_EQ(fc_serve(&c, 8000, NLM_PROG, P_LOCK_RES, &call), 0);
	ASSERT_EQ(call.fd, c.sock);
	r = call.args;
	tl_get_opaque(&r, cookie, sizeof(cookie));
	ASSERT_EQ(tl_get_u32(&r), NLM4_DENIED);

	/* SHARE: A reads and denies writers; B may read, not write */
	memset(&args, 0, sizeof(args));
	tl_put_opaque(&args, "s", 1);
	tl_put_opaque(&args, a.name, (uint32_t)strlen(a.name));
	tl_put_opaque(&args, f.data, f.len);
	tl_put_opaque(&args, "ohA", 3);
	tl_put_u32(&args, 2); /* fsm_DW */
	tl_put_u32(&args, 1); /* fsa_R */
	tl_put_u32(&args, 0);
	r = fc_call_udp(&a, e.s.port, NLM_PROG, 4, P_SHARE, &args, rec, sizeof(rec));
	ASSERT_EQ(res_stat(&r), NLM4_GRANTED);
	tl_buf_free(&args);
	for (int i = 0; i < 2; i++) {
		memset(&args, 0, sizeof(args));
		tl_put_opaque(&args, "s", 1);
		tl_put_opaque(&args, b.name, (uint32_t)strlen(b.name));
		tl_put_opaque(&args, f.data, f.len);
		tl_put_opaque(&args, "ohB", 3);
		tl_put_u32(&args, 0);          /* deny none */
		tl_put_u32(&args, i ? 1 : 2);  /* write, then read */
		tl_put_u32(&args, 0);
		r = fc_call_udp(&b, e.s.port, NLM_PROG, 4, P_SHARE, &args, rec, sizeof(rec));
		ASSERT_EQ(res_stat(&r), i ? NLM4_GRANTED : NLM4_DENIED);
		tl_buf_free(&args);
	}
	/* A lets go: now B may write */
	memset(&args, 0, sizeof(args));
	tl_put_opaque(&args, "s", 1);
	tl_put_opaque(&args, a.name, (uint32_t)strlen(a.name));
	tl_put_opaque(&args, f.data, f.len);
	tl_put_opaque(&args, "ohA", 3);
	tl_put_u32(&args, 2);
	tl_put_u32(&args, 1);
	tl_put_u32(&args, 0);
	r = fc_call_udp(&a, e.s.port, NLM_PROG, 4, P_UNSHARE, &args, rec, sizeof(rec));
	ASSERT_EQ(res_stat(&r), NLM4_GRANTED);
	tl_buf_free(&args);
	memset(&args, 0, sizeof(args));
	tl_put_opaque(&args, "s", 1);
	tl_put_opaque(&args, b.name, (uint32_t)strlen(b.name));
	tl_put_opaque(&args, f.data, f.len);
	tl_put_opaque(&args, "ohB", 3);
	tl_put_u32(&args, 0);
	tl_put_u32(&args, 3);
	tl_put_u32(&args, 0);
	r = fc_call_udp(&b, e.s.port, NLM_PROG, 4, P_SHARE, &args, rec, sizeof(rec));
	ASSERT_EQ(res_stat(&r), NLM4_GRANTED);
	tl_buf_free(&args);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_tcp_and_portmap)
{
	struct env e;
	struct fc b;
	struct tl_fh f;
	struct tl_buf req = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec = NULL;
	int fd;

	env_new(&e, NULL);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	/* the embedded portmapper knows NLM 1, 3, 4 and NSM 1 */
	for (uint32_t v = 0; v < 5; v++) {
		uint32_t progs[5][2] = { { NLM_PROG, 1 }, { NLM_PROG, 3 }, { NLM_PROG, 4 },
					 { NSM_PROG, 1 }, { NLM_PROG, 2 } };
		uint8_t buf[512];
		ssize_t n;

		memset(&req, 0, sizeof(req));
		tl_put_call(&req, 77 + v, 2, PMAP_PROG, 2, 3, TL_AUTH_NONE, 0, 0, 0);
		tl_put_u32(&req, progs[v][0]);
		tl_put_u32(&req, progs[v][1]);
		tl_put_u32(&req, v & 1 ? 17 : 6);
		tl_put_u32(&req, 0);
		n = tl_udp_call(e.s.port, req.p, req.len, buf, sizeof(buf), 5000);
		ASSERT(n > 0);
		ASSERT(tl_reply_parse(buf, (size_t)n, &r) == 0);
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		ASSERT_EQ(tl_get_u32(&rd), v < 4 ? e.s.port : 0);
		tl_buf_free(&req);
	}
	/* NLM version 2 does not exist: PROG_MISMATCH 1..4 */
	fd = tl_tcp_connect(e.s.port);
	ASSERT(fd >= 0);
	memset(&req, 0, sizeof(req));
	tl_put_call(&req, 5, 2, NLM_PROG, 2, 0, TL_AUTH_SYS, 0, 0, 0);
	tl_tcp_call(fd, &req, &rec, &r);
	ASSERT_EQ(r.accept_stat, TL_PROG_MISMATCH);
	ASSERT_EQ(r.low, 1);
	ASSERT_EQ(r.high, 4);
	free(rec);
	tl_buf_free(&req);
	/* LOCK over TCP, then a conflicting TEST over UDP from another client */
	memset(&req, 0, sizeof(req));
	tl_put_call(&req, 6, 2, NLM_PROG, 4, P_LOCK, TL_AUTH_SYS, 0, 0, 0);
	{
		struct fc a = { .name = "client-tcp" };

		tl_put_opaque(&req, "t", 1);
		tl_put_u32(&req, 0);
		tl_put_u32(&req, 1);
		put_lock4(&req, &a, &f, 42, 0, 0);
		tl_put_u32(&req, 0);
		tl_put_u32(&req, 1);
	}
	tl_tcp_call(fd, &req, &rec, &r);
	ASSERT_EQ(r.accept_stat, TL_SUCCESS);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	ASSERT_EQ(res_stat(&rd), NLM4_GRANTED);
	free(rec);
	tl_buf_free(&req);
	close(fd);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 1, 100, 1, false, NULL), NLM4_DENIED);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_locking_off_and_local)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f, g, lroot;
	struct tl_client nc2;
	char conf[PATH_MAX], text[6 * PATH_MAX + 512];
	const char *extra[] = { "-c", conf, NULL };

	if (netns_skip)
		RETURN_SKIP("%s", netns_skip);
	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	tl_write(e.t.upper, "f", "data", 0666);
	tl_write(e.t.lower[0], "g", "lower", 0666);
	snprintf(text, sizeof(text),
		 "[export off]\npath = /off\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		 "squash = none\nlocking = off\n"
		 "[export local]\npath = /local\nlowerdir = %s\nlocking = local\n"
		 "[export other]\npath = /other\nlowerdir = %s\n",
		 e.t.lower[0], e.t.upper, e.t.work, e.t.lower[0], e.t.lower[0]);
	tl_join(conf, sizeof(conf), e.t.root, "ovlnfsd.conf");
	tl_write(e.t.root, "ovlnfsd.conf", text, 0644);
	tl_server_start(&e.s, e.t.root, e.t.state, NULL, NULL, extra);
	tl_client_mount(&e.nc, e.s.port, "/off", &e.root);
	tl_client_mount(&nc2, e.s.port, "/local", &lroot);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	ASSERT_EQ(tl_nfs_walk(&nc2, &lroot, "g", &g, NULL), NFS3_OK);
	/* off: refused, and said at startup */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_DENIED_NOLOCKS);
	ASSERT_EQ(nlm_test(&a, e.s.port, &f, 1, 0, 0, true, NULL), NLM4_DENIED_NOLOCKS);
	ASSERT(log_has(&e, "export 'off': locking = off"));
	/* local: locks hold between clients (a read-only export too), nothing recorded */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &g, 1, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 2, 0, 0, false, false, false), NLM4_DENIED);
	ASSERT_EQ(recorded_holders(&e), 0);
	ASSERT(log_has(&e, "export 'local': locking = local"));
	/* the same file through another export instance: another lock table */
	{
		struct tl_client nc3;
		struct tl_fh oroot, og;

		tl_client_mount(&nc3, e.s.port, "/other", &oroot);
		ASSERT_EQ(tl_nfs_walk(&nc3, &oroot, "g", &og, NULL), NFS3_OK);
		ASSERT_EQ(nlm_lock(&b, e.s.port, &og, 2, 0, 0, true, false, false), NLM4_GRANTED);
		ASSERT_EQ(recorded_holders(&e), 1); /* locking = on there */
		ASSERT_EQ(nlm_unlock(&b, e.s.port, &og, 2, 0, 0), NLM4_GRANTED);
		tl_client_close(&nc3);
	}
	tl_client_close(&nc2);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: callbacks and records still work. */
TEST_IMPL(nlm_dual_stack_listener)
{
	static const char *const v6[] = { "--listen", "[::]:0", NULL };
	struct env e;
	struct fc a, b;
	struct tl_fh f;
	struct fc_call call;
	char path[PATH_MAX + 16];
	struct dirent *de;
	DIR *d;
	bool v4_named = false;

	env_new(&e, v6);
	ASSERT(log_has(&e, "listening on [::]:"));
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", true);
	f = fh_of(&e, "f");
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, true, false), NLM4_BLOCKED);
	snprintf(path, sizeof(path), "%s/nsm/sm", e.t.state);
	d = opendir(path);
	ASSERT(d != NULL);
	while ((de = readdir(d)))
		v4_named |= strncmp(de->d_name, "127.0.0.3_", 10) == 0;
	closedir(d);
	ASSERT(v4_named);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 0, 0), NLM4_GRANTED);
	ASSERT_EQ(fc_serve(&b, 5000, NLM_PROG, P_GRANTED, &call), 0);
	ASSERT_EQ(call.fd, b.cb);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_unusable_state_dir_still_locks)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f;

	if (netns_skip)
		RETURN_SKIP("%s", netns_skip);
	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	tl_write(e.t.upper, "f", "data", 0666);
	tl_write(e.t.state, "nsm", "a file where the NSM directory should be", 0644);
	tl_tree_opts(&e.t, true, e.opts, sizeof(e.opts));
	env_start(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	ASSERT(log_has(&e, "without restart recovery"));
	ASSERT(log_has(&e, "/nsm/sm"));
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_GRANTED);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 2, 0, 0, true, false, false), NLM4_DENIED);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(nlm_bad_input)
{
	struct env e;
	struct fc a, b;
	struct tl_fh f, forged;
	struct fc_call call;
	int blocked = 0, nolocks = 0;
	double t0;

	env_new(&e, NULL);
	fc_open(&a, "client-a", "127.0.0.2", false);
	fc_open(&b, "client-b", "127.0.0.3", true);
	f = fh_of(&e, "f");

	/* forged handles: a flipped MAC byte, a short one, an empty one */
	forged = f;
	forged.data[forged.len - 1] ^= 0x55;
	ASSERT_EQ(nlm_lock(&a, e.s.port, &forged, 1, 0, 0, true, false, false), NLM4_STALE_FH);
	ASSERT_EQ(nlm_test(&a, e.s.port, &forged, 1, 0, 0, true, NULL), NLM4_STALE_FH);
	forged.len = 3;
	ASSERT_EQ(nlm_lock(&a, e.s.port, &forged, 1, 0, 0, true, false, false), NLM4_STALE_FH);
	forged.len = 0;
	ASSERT_EQ(nlm_lock(&a, e.s.port, &forged, 1, 0, 0, true, false, false), NLM4_STALE_FH);
	ASSERT_EQ(recorded_holders(&e), 0);

	/* absurd ranges: near 2^64, and a length that wraps */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, UINT64_MAX - 5, 100, true, false, false),
		  NLM4_GRANTED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, UINT64_MAX - 1, 1, false, NULL), NLM4_DENIED);
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 2, UINT64_MAX - 10, 5, false, NULL), NLM4_GRANTED);
	ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, UINT64_MAX - 5, 0), NLM4_GRANTED);

	/* a flood of blocking requests from one client: bounded, each one answered */
	ASSERT_EQ(nlm_lock(&a, e.s.port, &f, 1, 0, 0, true, false, false), NLM4_GRANTED);
	for (uint32_t i = 0; i < 80; i++) {
		uint32_t st = nlm_lock(&b, e.s.port, &f, 1000 + i, i, 1, true, true, false);

		ASSERTF(st == NLM4_BLOCKED || st == NLM4_DENIED_NOLOCKS, "status %u", st);
		blocked += st == NLM4_BLOCKED;
		nolocks += st == NLM4_DENIED_NOLOCKS;
	}
	ASSERT_EQ(blocked, 64);
	ASSERT_EQ(nolocks, 16);
	for (uint32_t i = 0; i < 64; i++)
		ASSERT_EQ(nlm_cancel(&b, e.s.port, &f, 1000 + i, i, 1, true), NLM4_GRANTED);

	/* one address inventing caller names gets a bounded number of hosts */
	{
		struct tl_fh g = fh_of(&e, "d/lowfile");
		struct fc x = a;
		char names[20][16];
		int granted = 0, refused = 0;

		for (int i = 0; i < 20; i++) {
			snprintf(names[i], sizeof(names[i]), "made-up-%d", i);
			x.name = names[i];
			switch (nlm_lock(&x, e.s.port, &g, 1, (uint64_t)i * 10, 1, true, false,
					 false)) {
			case NLM4_GRANTED:
				granted++;
				break;
			case NLM4_DENIED_NOLOCKS:
				refused++;
				break;
			default:
				ASSERTF(0, "unexpected status");
			}
		}
		ASSERT_EQ(granted, 15); /* 16 names per address, "client-a" is one */
		ASSERT_EQ(refused, 5);
	}

	/*
	 * A client that never answers GRANTED does not keep the lock (g); one
	 * that polls meanwhile, as Linux does every 30 s, keeps it (f).
	 */
	{
		struct tl_fh g = fh_of(&e, "g");

		b.answer_granted = false;
		ASSERT_EQ(nlm_lock(&a, e.s.port, &g, 1, 0, 0, true, false, false), NLM4_GRANTED);
		ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 5, 0, 0, true, true, false), NLM4_BLOCKED);
		ASSERT_EQ(nlm_lock(&b, e.s.port, &g, 6, 0, 0, true, true, false), NLM4_BLOCKED);
		ASSERT_EQ(nlm_unlock(&a, e.s.port, &f, 1, 0, 0), NLM4_GRANTED);
		ASSERT_EQ(nlm_unlock(&a, e.s.port, &g, 1, 0, 0), NLM4_GRANTED);
		ASSERT_EQ(fc_serve(&b, 5000, NLM_PROG, P_GRANTED, &call), 0);
		ASSERT_EQ(nlm_test(&a, e.s.port, &f, 1, 0, 0, true, NULL), NLM4_DENIED);
		ASSERT_EQ(nlm_test(&a, e.s.port, &g, 1, 0, 0, true, NULL), NLM4_DENIED);
		/* B's poll for f: granted (it is B's already) */
		ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 5, 0, 0, true, true, false), NLM4_GRANTED);
		t0 = tl_now();
		while (nlm_test(&a, e.s.port, &g, 1, 0, 0, true, NULL) == NLM4_DENIED) {
			struct fc_call more;

			ASSERTF(tl_now() - t0 < 60, "the unanswered GRANTED lock is still held");
			(void)fc_serve(&b, 500, 0, 0, &more); /* B's portmapper answers, B not */
		}
		ASSERT(tl_now() - t0 > 20); /* retried with back-off before giving up */
		ASSERT(log_has(&e, "not answered"));
		/* f was confirmed by the poll: still B's */
		ASSERT_EQ(nlm_test(&a, e.s.port, &f, 1, 0, 0, true, NULL), NLM4_DENIED);
	}
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

/* ---------- libnfs's own NLM client ---------- */

struct lpend {
	bool done;
	int status;    /* RPC status */
	uint32_t stat; /* nlm4 status */
	uint32_t svid; /* TEST: the holder */
};

static void l_lock_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct lpend *p = priv;

	(void)rpc;
	p->done = true;
	p->status = status;
	if (status == RPC_STATUS_SUCCESS)
		p->stat = ((NLM4_LOCKres *)data)->status;
}

static void l_test_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct lpend *p = priv;
	NLM4_TESTres *r = data;

	(void)rpc;
	p->done = true;
	p->status = status;
	if (status == RPC_STATUS_SUCCESS) {
		p->stat = r->reply.status;
		if (r->reply.status == NLM4_DENIED)
			p->svid = r->reply.nlm4_testreply_u.lock.holder.svid;
	}
}

static void l_unlock_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct lpend *p = priv;

	(void)rpc;
	p->done = true;
	p->status = status;
	if (status == RPC_STATUS_SUCCESS)
		p->stat = ((NLM4_UNLOCKres *)data)->status;
}

static void l_connect_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct lpend *p = priv;

	(void)rpc;
	(void)data;
	p->done = true;
	p->status = status;
}

static void l_wait(struct rpc_context *rpc, struct lpend *p, int queued)
{
	double deadline = tl_now() + 10;

	ASSERTF(queued == 0, "libnfs could not queue the call: %s", rpc_get_error(rpc));
	while (!p->done) {
		struct pollfd pfd = { rpc_get_fd(rpc), (short)rpc_which_events(rpc), 0 };
		int r = poll(&pfd, 1, 100);

		ASSERT(rpc_service(rpc, r > 0 ? pfd.revents : 0) >= 0 || p->done);
		ASSERTF(tl_now() < deadline, "libnfs NLM call: no answer");
	}
	ASSERTF(p->status == RPC_STATUS_SUCCESS, "libnfs NLM call failed: %s",
		rpc_get_error(rpc));
}

static void l_destroy(void *rpc)
{
	rpc_destroy_context(rpc);
}

static void l_lock4(struct nlm4_lock *l, char *caller, const struct tl_fh *fh, uint32_t svid,
		    uint64_t off, uint64_t len)
{
	static char oh[] = "libnfs-oh";

	memset(l, 0, sizeof(*l));
	l->caller_name = caller;
	l->fh.data.data_len = fh->len;
	l->fh.data.data_val = (char *)fh->data;
	l->oh = oh;
	l->svid = svid;
	l->l_offset = off;
	l->l_len = len;
}

TEST_IMPL(nlm_libnfs_client)
{
	static char caller[] = "libnfs-client";
	struct rpc_context *rpc;
	struct lpend p = { 0 };
	int tok;
	struct env e;
	struct fc b;
	struct tl_fh f;
	struct holder h;

	env_new(&e, NULL);
	fc_open(&b, "client-b", "127.0.0.3", false);
	f = fh_of(&e, "f");
	rpc = rpc_init_context();
	ASSERT(rpc != NULL);
	tok = tl_cleanup_push(l_destroy, rpc);
	l_wait(rpc, &p, rpc_connect_port_async(rpc, "127.0.0.1", e.s.port, NLM_PROGRAM, NLM_V4,
					       l_connect_cb, &p));
	{
		NLM4_LOCKargs a = { .exclusive = 1 };

		l_lock4(&a.lock, caller, &f, 4242, 0, 100);
		memset(&p, 0, sizeof(p));
		l_wait(rpc, &p, rpc_nlm4_lock_async(rpc, l_lock_cb, &a, &p));
		ASSERT_EQ(p.stat, NLM4_GRANTED);
	}
	/* another client sees libnfs's lock, and libnfs sees the conflict the other way */
	ASSERT_EQ(nlm_test(&b, e.s.port, &f, 7, 50, 1, false, &h), NLM4_DENIED);
	ASSERT_EQ(h.svid, 4242);
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 7, 200, 10, true, false, false), NLM4_GRANTED);
	{
		NLM4_TESTargs a = { .exclusive = 0 };

		l_lock4(&a.lock, caller, &f, 4242, 205, 1);
		memset(&p, 0, sizeof(p));
		l_wait(rpc, &p, rpc_nlm4_test_async(rpc, l_test_cb, &a, &p));
		ASSERT_EQ(p.stat, NLM4_DENIED);
		ASSERT_EQ(p.svid, 7);
	}
	{
		NLM4_UNLOCKargs a;

		memset(&a, 0, sizeof(a));
		l_lock4(&a.lock, caller, &f, 4242, 0, 0);
		memset(&p, 0, sizeof(p));
		l_wait(rpc, &p, rpc_nlm4_unlock_async(rpc, l_unlock_cb, &a, &p));
		ASSERT_EQ(p.stat, NLM4_GRANTED);
	}
	ASSERT_EQ(nlm_lock(&b, e.s.port, &f, 7, 0, 100, true, false, false), NLM4_GRANTED);
	tl_cleanup_cancel(tok);
	rpc_destroy_context(rpc);
	env_stop(&e);
	tl_tree_free(&e.t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(nlm_libnfs_client, 120),
	TEST_ENTRY_TIMEOUT(nlm_conflicts_and_ranges, 120),
	TEST_ENTRY_TIMEOUT(nlm_upgrade_downgrade_split, 120),
	TEST_ENTRY_TIMEOUT(nlm_blocking_lock_granted_by_callback, 120),
	TEST_ENTRY_TIMEOUT(nlm_cancel_and_free_all, 120),
	TEST_ENTRY_TIMEOUT(nlm_lock_follows_copy_up_and_rename, 120),
	TEST_ENTRY_TIMEOUT(nlm_restart_notifies_and_grace, 180),
	TEST_ENTRY_TIMEOUT(nlm_rebooted_client_notify_releases, 120),
	TEST_ENTRY_TIMEOUT(nlm_msg_forms_and_share, 120),
	TEST_ENTRY_TIMEOUT(nlm_tcp_and_portmap, 120),
	TEST_ENTRY_TIMEOUT(nlm_locking_off_and_local, 120),
	TEST_ENTRY_TIMEOUT(nlm_dual_stack_listener, 120),
	TEST_ENTRY_TIMEOUT(nlm_unusable_state_dir_still_locks, 120),
	TEST_ENTRY_TIMEOUT(nlm_bad_input, 180),
};

/* A network namespace with its loopback up: every 127.0.0.0/8 address is ours. */
static void enter_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET) < 0) {
		netns_skip = "cannot create a network namespace (needs root / CAP_SYS_ADMIN): "
			     "the fake clients need their own portmapper on port 111";
		return;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0))
		netns_skip = "cannot bring up the loopback of the test's network namespace";
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	enter_netns();
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
