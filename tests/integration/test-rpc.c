/*
 * test-rpc.c - the RPC layer of a real ovlnfsd, with hand-built call
 * records over plain TCP and UDP sockets: accept/deny codes
 * (GARBAGE_ARGS, PROG_UNAVAIL, PROG_MISMATCH 3..3, PROC_UNAVAIL,
 * AUTH_TOOWEAK, AUTH_BADCRED, RPC_MISMATCH), record marking (fragments,
 * oversize records), pipelining, UDP, the embedded portmapper and MOUNT
 * EXPORT with AUTH_NONE.
 *
 * Runs as a test process; each case starts and stops its own server by
 * PID. No libnfs, no rpcgen: every byte is written here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

#define PROG_PMAP 100000
#define PROG_NFS 100003
#define PROG_MOUNT 100005

struct env {
	struct tl_tree t;
	struct tl_server s;
	int fd;
	uint8_t root[64];
	uint32_t rootlen;
};

static uint32_t next_xid = 0x1000;

static void call_ok(int fd, struct tl_buf *req, uint8_t **rec, struct tl_reply *r,
		    const char *what)
{
	tl_tcp_call(fd, req, rec, r);
	ASSERTF(r->accepted && r->accept_stat == TL_SUCCESS,
		"%s: accepted %d accept_stat %u reject_stat %u auth_stat %u", what, r->accepted,
		r->accept_stat, r->reject_stat, r->auth_stat);
}

static void env_up(struct env *e)
{
	char opts[8192];

	tl_fixture_standard(&e->t);
	tl_tree_opts(&e->t, true, opts, sizeof(opts));
	tl_server_start(&e->s, e->t.root, e->t.state, opts, NULL, NULL);
	e->fd = tl_tcp_connect(e->s.port);
	ASSERTF(e->fd >= 0, "connect: %s", strerror(-e->fd));
	e->rootlen = tl_raw_mnt(e->fd, next_xid++, "/", e->root, sizeof(e->root));
}

static void env_down(struct env *e)
{
	close(e->fd);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

static void put_getattr(struct env *e, struct tl_buf *b, uint32_t xid, uint32_t flavor,
			uint32_t ngroups)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, 1, flavor, 0, 0, ngroups);
	tl_put_opaque(b, e->root, e->rootlen);
}

/* GETATTR of the root must be NFS3_OK with type NF3DIR. */
static void assert_getattr_body(const struct tl_reply *r)
{
	struct tl_rd rd = { r->body, r->body_len, 0, false };

	ASSERT_EQ(tl_get_u32(&rd), 0);  /* NFS3_OK */
	ASSERT_EQ(tl_get_u32(&rd), 2);  /* NF3DIR */
	ASSERT(!rd.bad);
}

static void null_still_works(int fd)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	uint8_t *rec;

	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
	call_ok(fd, &b, &rec, &r, "NULL");
	free(rec);
	tl_buf_free(&b);
}

TEST_IMPL(rpc_null_and_getattr_tcp)
{
	struct env e;
	struct tl_buf b = { 0 };
	struct tl_reply r;
	uint8_t *rec;

	env_up(&e);
	null_still_works(e.fd);
	put_getattr(&e, &b, 77, TL_AUTH_SYS, 2);
	call_ok(e.fd, &b, &rec, &r, "GETATTR");
	ASSERT_EQ(r.xid, 77);
	assert_getattr_body(&r);
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_garbage_args)
{
	struct env e;
	uint8_t *rec;
	struct tl_reply r;

	env_up(&e);
	{ /* handle length 32, only 8 bytes follow */
		struct tl_buf b = { 0 };
		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, 1, TL_AUTH_SYS, 0, 0, 0);
		tl_put_u32(&b, 32);
		tl_put_u64(&b, 0x0102030405060708ull);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_GARBAGE_ARGS,
			"truncated GETATTR args: accept_stat %u (accepted %d)", r.accept_stat,
			r.accepted);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* no args at all */
		struct tl_buf b = { 0 };
		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, 1, TL_AUTH_SYS, 0, 0, 0);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_GARBAGE_ARGS,
			"empty GETATTR args: accept_stat %u", r.accept_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* a 65-byte handle: over the protocol's limit */
		struct tl_buf b = { 0 };
		uint8_t fh[65];
		memset(fh, 1, sizeof(fh));
		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, 3, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&b, fh, 65);
		tl_put_opaque(&b, "a", 1);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_GARBAGE_ARGS,
			"LOOKUP with a 65-byte handle: accept_stat %u", r.accept_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* LOOKUP name length beyond the record */
		struct tl_buf b = { 0 };
		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, 3, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&b, e.root, e.rootlen);
		tl_put_u32(&b, 100000);
		tl_put_bytes(&b, "abcd", 4);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_GARBAGE_ARGS,
			"LOOKUP with an overlong name length: accept_stat %u", r.accept_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* MNT path with a bogus length */
		struct tl_buf b = { 0 };
		tl_put_call(&b, next_xid++, 2, PROG_MOUNT, 3, 1, TL_AUTH_SYS, 0, 0, 0);
		tl_put_u32(&b, 0x7fffffff);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_GARBAGE_ARGS,
			"MNT with a bogus path length: accept_stat %u", r.accept_stat);
		free(rec);
		tl_buf_free(&b);
	}
	/* the connection survives */
	null_still_works(e.fd);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_prog_unavail)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec;
	struct tl_reply r;

	env_up(&e);
	tl_put_call(&b, next_xid++, 2, 100099, 1, 0, TL_AUTH_NONE, 0, 0, 0);
	tl_tcp_call(e.fd, &b, &rec, &r);
	ASSERTF(r.accepted && r.accept_stat == TL_PROG_UNAVAIL, "program 100099: accept_stat %u",
		r.accept_stat);
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_prog_mismatch_v2_v4)
{
	static const uint32_t vers[] = { 2, 4, 1 };
	struct env e;

	env_up(&e);
	for (size_t i = 0; i < TL_ARRAY_SIZE(vers); i++) {
		struct tl_buf b = { 0 };
		uint8_t *rec;
		struct tl_reply r;

		tl_put_call(&b, next_xid++, 2, PROG_NFS, vers[i], 0, TL_AUTH_NONE, 0, 0, 0);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_PROG_MISMATCH,
			"NFS v%u NULL: accept_stat %u (accepted %d)", vers[i], r.accept_stat,
			r.accepted);
		ASSERTF(r.low == 3 && r.high == 3, "NFS v%u: mismatch range %u..%u, want 3..3",
			vers[i], r.low, r.high);
		free(rec);
		tl_buf_free(&b);
	}
	null_still_works(e.fd);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_proc_unavail)
{
	static const uint32_t calls[][3] = { { PROG_NFS, 3, 22 }, { PROG_NFS, 3, 1000 },
					     { PROG_MOUNT, 3, 6 }, { PROG_PMAP, 2, 99 } };
	struct env e;

	env_up(&e);
	for (size_t i = 0; i < TL_ARRAY_SIZE(calls); i++) {
		struct tl_buf b = { 0 };
		uint8_t *rec;
		struct tl_reply r;

		tl_put_call(&b, next_xid++, 2, calls[i][0], calls[i][1], calls[i][2], TL_AUTH_SYS,
			    0, 0, 0);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(r.accepted && r.accept_stat == TL_PROC_UNAVAIL,
			"prog %u v%u proc %u: accept_stat %u", calls[i][0], calls[i][1],
			calls[i][2], r.accept_stat);
		free(rec);
		tl_buf_free(&b);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_auth_none_too_weak)
{
	struct env e;
	uint8_t *rec;
	struct tl_reply r;

	env_up(&e);
	{
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, next_xid++, TL_AUTH_NONE, 0);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(!r.accepted && r.reject_stat == TL_AUTH_ERROR &&
				r.auth_stat == TL_AUTH_TOOWEAK,
			"GETATTR with AUTH_NONE: accepted %d reject %u auth_stat %u", r.accepted,
			r.reject_stat, r.auth_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{
		struct tl_buf b = { 0 };
		tl_put_call(&b, next_xid++, 2, PROG_MOUNT, 3, 1, TL_AUTH_NONE, 0, 0, 0);
		tl_put_opaque(&b, "/", 1);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(!r.accepted && r.reject_stat == TL_AUTH_ERROR &&
				r.auth_stat == TL_AUTH_TOOWEAK,
			"MNT with AUTH_NONE: accepted %d reject %u auth_stat %u", r.accepted,
			r.reject_stat, r.auth_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* an unknown flavor is no better */
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, next_xid++, 390003 /* RPCSEC_GSS... any */, 0);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(!r.accepted && r.reject_stat == TL_AUTH_ERROR,
			"GETATTR with flavor 390003: accepted %d reject %u", r.accepted,
			r.reject_stat);
		free(rec);
		tl_buf_free(&b);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_auth_sys_groups)
{
	struct env e;
	uint8_t *rec;
	struct tl_reply r;

	env_up(&e);
	{
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, next_xid++, TL_AUTH_SYS, 17);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(!r.accepted && r.reject_stat == TL_AUTH_ERROR &&
				r.auth_stat == TL_AUTH_BADCRED,
			"AUTH_SYS with 17 groups: accepted %d reject %u auth_stat %u", r.accepted,
			r.reject_stat, r.auth_stat);
		free(rec);
		tl_buf_free(&b);
	}
	{
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, next_xid++, TL_AUTH_SYS, 16);
		call_ok(e.fd, &b, &rec, &r, "GETATTR with 16 groups");
		assert_getattr_body(&r);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* an AUTH_SYS body whose machine name runs past the credential */
		struct tl_buf b = { 0 }, cred = { 0 };
		tl_put_u32(&b, next_xid++);
		tl_put_u32(&b, 0);
		tl_put_u32(&b, 2);
		tl_put_u32(&b, PROG_NFS);
		tl_put_u32(&b, 3);
		tl_put_u32(&b, 1);
		tl_put_u32(&cred, 1);      /* stamp */
		tl_put_u32(&cred, 200);    /* name length beyond the body */
		tl_put_u32(&cred, 0);
		tl_put_u32(&b, TL_AUTH_SYS);
		tl_put_opaque(&b, cred.p, (uint32_t)cred.len);
		tl_put_u32(&b, 0);
		tl_put_u32(&b, 0);
		tl_put_opaque(&b, e.root, e.rootlen);
		tl_tcp_call(e.fd, &b, &rec, &r);
		ASSERTF(!r.accepted && r.reject_stat == TL_AUTH_ERROR &&
				r.auth_stat == TL_AUTH_BADCRED,
			"malformed AUTH_SYS body: accepted %d accept %u reject %u auth_stat %u",
			r.accepted, r.accept_stat, r.reject_stat, r.auth_stat);
		free(rec);
		tl_buf_free(&b);
		tl_buf_free(&cred);
	}
	null_still_works(e.fd);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_version_mismatch)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec;
	struct tl_reply r;

	env_up(&e);
	tl_put_call(&b, next_xid++, 3, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
	tl_tcp_call(e.fd, &b, &rec, &r);
	ASSERTF(!r.accepted && r.reject_stat == TL_RPC_MISMATCH,
		"rpcvers 3: accepted %d reject %u", r.accepted, r.reject_stat);
	ASSERTF(r.low == 2 && r.high == 2, "RPC_MISMATCH range %u..%u, want 2..2", r.low,
		r.high);
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_multi_fragment_record)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec;
	struct tl_reply r;
	ssize_t n;

	env_up(&e);
	put_getattr(&e, &b, 4242, TL_AUTH_SYS, 3);
	{
		size_t cuts[] = { 1, 5, 30, b.len - 1 };
		ASSERT(tl_tcp_send_fragments(e.fd, b.p, b.len, cuts, 4) == 0);
	}
	n = tl_tcp_recv_record(e.fd, &rec, 30000);
	ASSERTF(n > 0, "no reply to a 5-fragment record");
	ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
	ASSERT_EQ(r.xid, 4242);
	ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
	assert_getattr_body(&r);
	free(rec);

	/* one fragment per byte */
	{
		size_t *cuts = malloc(b.len * sizeof(size_t));
		ASSERT(cuts != NULL);
		for (size_t i = 1; i < b.len; i++)
			cuts[i - 1] = i;
		ASSERT(tl_tcp_send_fragments(e.fd, b.p, b.len, cuts, b.len - 1) == 0);
		free(cuts);
	}
	n = tl_tcp_recv_record(e.fd, &rec, 30000);
	ASSERTF(n > 0, "no reply to a record sent one byte per fragment");
	ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
	ASSERT_EQ(r.xid, 4242);
	assert_getattr_body(&r);
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_zero_length_fragment)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec;
	struct tl_reply r;
	ssize_t n;

	env_up(&e);
	tl_put_call(&b, 99, 2, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
	{
		size_t cuts[] = { 8, 8, 16 };
		ASSERT(tl_tcp_send_fragments(e.fd, b.p, b.len, cuts, 3) == 0);
	}
	n = tl_tcp_recv_record(e.fd, &rec, 30000);
	ASSERTF(n > 0, "no reply to a record with an empty middle fragment");
	ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
	ASSERT_EQ(r.xid, 99);
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_oversize_record_closes_connection)
{
	struct env e;
	int fd2, fd3;
	static uint8_t chunk[65536];

	env_up(&e);
	fd2 = tl_tcp_connect(e.s.port);
	ASSERT(fd2 >= 0);
	/* one fragment announced at 2 MiB: above the 1 MiB + 4 KiB cap */
	{
		uint32_t hdr = htobe32(0x80000000u | (2u << 20));
		ASSERT(write(fd2, &hdr, 4) == 4);
		for (int i = 0; i < 4; i++)
			if (send(fd2, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				break;
	}
	ASSERTF(tl_tcp_wait_closed(fd2, 20000) == 1,
		"a 2 MiB record did not close the connection");
	close(fd2);

	/* many non-last fragments adding up past the cap */
	fd3 = tl_tcp_connect(e.s.port);
	ASSERT(fd3 >= 0);
	for (int f = 0; f < 24; f++) {
		uint32_t hdr = htobe32((uint32_t)sizeof(chunk));
		if (send(fd3, &hdr, 4, MSG_NOSIGNAL) != 4)
			break;
		if (send(fd3, chunk, sizeof(chunk), MSG_NOSIGNAL) != (ssize_t)sizeof(chunk))
			break;
	}
	ASSERTF(tl_tcp_wait_closed(fd3, 20000) == 1,
		"24 x 64 KiB fragments did not close the connection");
	close(fd3);

	/* the server keeps serving: the old connection and a new one */
	null_still_works(e.fd);
	fd2 = tl_tcp_connect(e.s.port);
	ASSERT(fd2 >= 0);
	null_still_works(fd2);
	close(fd2);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_pipelined_requests)
{
	enum { N = 64 };
	struct env e;
	struct tl_buf all = { 0 };
	bool seen[N] = { false };

	env_up(&e);
	for (uint32_t i = 0; i < N; i++) {
		struct tl_buf b = { 0 };
		uint32_t hdr;

		if (i % 2)
			put_getattr(&e, &b, 50000 + i, TL_AUTH_SYS, 1);
		else
			tl_put_call(&b, 50000 + i, 2, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
		hdr = 0x80000000u | (uint32_t)b.len;
		tl_put_u32(&all, hdr);
		tl_put_bytes(&all, b.p, b.len);
		tl_buf_free(&b);
	}
	/* all records in one write: the server must split them */
	{
		size_t off = 0;
		while (off < all.len) {
			ssize_t w = send(e.fd, all.p + off, all.len - off, MSG_NOSIGNAL);
			ASSERT(w > 0);
			off += (size_t)w;
		}
	}
	for (int i = 0; i < N; i++) {
		uint8_t *rec;
		struct tl_reply r;
		ssize_t n = tl_tcp_recv_record(e.fd, &rec, 30000);

		ASSERTF(n > 0, "reply %d of %d missing", i, N);
		ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
		ASSERT(r.xid >= 50000 && r.xid < 50000 + N);
		ASSERTF(!seen[r.xid - 50000], "xid %u answered twice", r.xid);
		seen[r.xid - 50000] = true;
		ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
		if (r.xid % 2)
			assert_getattr_body(&r);
		free(rec);
	}
	tl_buf_free(&all);
	env_down(&e);
	return 0;
}

/* Many connections at once, each with a call in flight. */
TEST_IMPL(rpc_many_connections)
{
	enum { N = 48 };
	struct env e;
	int fds[N];

	env_up(&e);
	for (int i = 0; i < N; i++) {
		fds[i] = tl_tcp_connect(e.s.port);
		ASSERTF(fds[i] >= 0, "connection %d: %s", i, strerror(-fds[i]));
	}
	for (int i = 0; i < N; i++) {
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, 70000 + (uint32_t)i, TL_AUTH_SYS, 0);
		ASSERT(tl_tcp_send_record(fds[i], b.p, b.len) == 0);
		tl_buf_free(&b);
	}
	for (int i = N - 1; i >= 0; i--) {
		uint8_t *rec;
		struct tl_reply r;
		ssize_t n = tl_tcp_recv_record(fds[i], &rec, 30000);

		ASSERTF(n > 0, "no reply on connection %d", i);
		ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
		ASSERT_EQ(r.xid, 70000 + i);
		assert_getattr_body(&r);
		free(rec);
		close(fds[i]);
	}
	null_still_works(e.fd);
	env_down(&e);
	return 0;
}

TEST_IMPL(rpc_udp_null_and_getattr)
{
	struct env e;
	uint8_t reply[65536];
	struct tl_reply r;
	ssize_t n;

	env_up(&e);
	{
		struct tl_buf b = { 0 };
		tl_put_call(&b, 0xabc1, 2, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
		n = tl_udp_call(e.s.port, b.p, b.len, reply, sizeof(reply), 10000);
		ASSERTF(n > 0, "UDP NULL: %s", strerror((int)-n));
		ASSERT(tl_reply_parse(reply, (size_t)n, &r) == 0);
		ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
		tl_buf_free(&b);
	}
	{
		struct tl_buf b = { 0 };
		put_getattr(&e, &b, 0xabc2, TL_AUTH_SYS, 0);
		n = tl_udp_call(e.s.port, b.p, b.len, reply, sizeof(reply), 10000);
		ASSERTF(n > 0, "UDP GETATTR: %s", strerror((int)-n));
		ASSERT(tl_reply_parse(reply, (size_t)n, &r) == 0);
		ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
		assert_getattr_body(&r);
		tl_buf_free(&b);
	}
	{ /* UDP MOUNT MNT gives the same root */
		struct tl_buf b = { 0 };
		uint8_t fh[64];
		struct tl_rd rd;
		uint32_t len;
		tl_put_call(&b, 0xabc3, 2, PROG_MOUNT, 3, 1, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&b, "/", 1);
		n = tl_udp_call(e.s.port, b.p, b.len, reply, sizeof(reply), 10000);
		ASSERTF(n > 0, "UDP MNT: %s", strerror((int)-n));
		ASSERT(tl_reply_parse(reply, (size_t)n, &r) == 0);
		ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		ASSERT_EQ(tl_get_u32(&rd), 0);
		len = tl_get_opaque(&rd, fh, sizeof(fh));
		ASSERT(len == e.rootlen && memcmp(fh, e.root, len) == 0);
		tl_buf_free(&b);
	}
	{ /* a garbage datagram gets no crash; the server answers the next one */
		uint8_t junk[7] = { 1, 2, 3, 4, 5, 6, 7 };
		struct tl_buf b = { 0 };
		(void)tl_udp_call(e.s.port, junk, sizeof(junk), reply, sizeof(reply), 300);
		tl_put_call(&b, 0xabc4, 2, PROG_NFS, 3, 0, TL_AUTH_NONE, 0, 0, 0);
		n = tl_udp_call(e.s.port, b.p, b.len, reply, sizeof(reply), 10000);
		ASSERTF(n > 0, "UDP NULL after junk: %s", strerror((int)-n));
		tl_buf_free(&b);
	}
	null_still_works(e.fd);
	env_down(&e);
	return 0;
}

static uint32_t getport(int port, bool udp, int fd, uint32_t prog, uint32_t vers,
			uint32_t prot)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec = NULL, dgram[4096];
	uint32_t res;

	tl_put_call(&b, next_xid++, 2, PROG_PMAP, 2, 3, TL_AUTH_NONE, 0, 0, 0);
	tl_put_u32(&b, prog);
	tl_put_u32(&b, vers);
	tl_put_u32(&b, prot);
	tl_put_u32(&b, 0);
	if (udp) {
		ssize_t n = tl_udp_call(port, b.p, b.len, dgram, sizeof(dgram), 10000);
		ASSERTF(n > 0, "UDP GETPORT: %s", strerror((int)-n));
		ASSERT(tl_reply_parse(dgram, (size_t)n, &r) == 0);
	} else {
		tl_tcp_call(fd, &b, &rec, &r);
	}
	ASSERTF(r.accepted && r.accept_stat == TL_SUCCESS, "GETPORT: accept_stat %u",
		r.accept_stat);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	res = tl_get_u32(&rd);
	ASSERT(!rd.bad);
	free(rec);
	tl_buf_free(&b);
	return res;
}

TEST_IMPL(portmap_getport_and_dump)
{
	struct env e;
	uint32_t me;

	env_up(&e);
	me = (uint32_t)e.s.port;
	for (int udp = 0; udp < 2; udp++) {
		ASSERT_EQ(getport(e.s.port, udp, e.fd, PROG_NFS, 3, 6), me);
		ASSERT_EQ(getport(e.s.port, udp, e.fd, PROG_NFS, 3, 17), me);
		ASSERT_EQ(getport(e.s.port, udp, e.fd, PROG_MOUNT, 3, 6), me);
		ASSERT_EQ(getport(e.s.port, udp, e.fd, PROG_MOUNT, 3, 17), me);
		ASSERT_EQ(getport(e.s.port, udp, e.fd, 100099, 1, 6), 0);
		ASSERT_EQ(getport(e.s.port, udp, e.fd, PROG_NFS, 4, 6), 0);
	}
	{ /* DUMP lists NFS v3 over TCP on our port */
		struct tl_buf b = { 0 };
		struct tl_reply r;
		struct tl_rd rd;
		uint8_t *rec;
		bool found = false;
		int guard = 0;

		tl_put_call(&b, next_xid++, 2, PROG_PMAP, 2, 4, TL_AUTH_NONE, 0, 0, 0);
		call_ok(e.fd, &b, &rec, &r, "PMAP DUMP");
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		while (tl_get_u32(&rd) == 1 && !rd.bad && guard++ < 1000) {
			uint32_t prog = tl_get_u32(&rd), vers = tl_get_u32(&rd);
			uint32_t prot = tl_get_u32(&rd), port = tl_get_u32(&rd);
			found |= prog == PROG_NFS && vers == 3 && prot == 6 && port == me;
		}
		ASSERT(!rd.bad);
		ASSERTF(found, "PMAP DUMP lacks 100003 v3 tcp port %u", me);
		free(rec);
		tl_buf_free(&b);
	}
	{ /* PMAP NULL */
		struct tl_buf b = { 0 };
		struct tl_reply r;
		uint8_t *rec;
		tl_put_call(&b, next_xid++, 2, PROG_PMAP, 2, 0, TL_AUTH_NONE, 0, 0, 0);
		call_ok(e.fd, &b, &rec, &r, "PMAP NULL");
		free(rec);
		tl_buf_free(&b);
	}
	env_down(&e);
	return 0;
}

TEST_IMPL(mount_export_with_auth_none)
{
	struct env e;
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec;
	char dir[1100];
	uint32_t len;

	env_up(&e);
	tl_put_call(&b, next_xid++, 2, PROG_MOUNT, 3, 5, TL_AUTH_NONE, 0, 0, 0);
	call_ok(e.fd, &b, &rec, &r, "MOUNT EXPORT with AUTH_NONE");
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	ASSERT_EQ(tl_get_u32(&rd), 1); /* one export follows */
	len = tl_get_opaque(&rd, dir, sizeof(dir) - 1);
	ASSERT(!rd.bad && len < sizeof(dir));
	dir[len] = 0;
	ASSERT_STREQ(dir, "/");
	free(rec);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(rpc_null_and_getattr_tcp),
	TEST_ENTRY(rpc_garbage_args),
	TEST_ENTRY(rpc_prog_unavail),
	TEST_ENTRY(rpc_prog_mismatch_v2_v4),
	TEST_ENTRY(rpc_proc_unavail),
	TEST_ENTRY(rpc_auth_none_too_weak),
	TEST_ENTRY(rpc_auth_sys_groups),
	TEST_ENTRY(rpc_version_mismatch),
	TEST_ENTRY(rpc_multi_fragment_record),
	TEST_ENTRY(rpc_zero_length_fragment),
	TEST_ENTRY(rpc_oversize_record_closes_connection),
	TEST_ENTRY(rpc_pipelined_requests),
	TEST_ENTRY(rpc_many_connections),
	TEST_ENTRY(rpc_udp_null_and_getattr),
	TEST_ENTRY(portmap_getport_and_dump),
	TEST_ENTRY(mount_export_with_auth_none),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
