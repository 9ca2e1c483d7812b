/*
 * test-drc-storm.c - the duplicate request cache under retransmission
 * storms: the same xid of REMOVE, RENAME and CREATE EXCLUSIVE replayed many
 * times, while the original is still queued and after it finished, over new
 * TCP connections from the original client's address (127.0.0.1) and from
 * another address (127.0.0.2). The original client always gets the
 * original reply, byte for byte, and the call runs once; the other address
 * is another client: its copy is executed afresh, never answered from the
 * cache. Between the original and the storm the state is changed so that a
 * replay and a fresh execution give different answers.
 *
 * Runs as a test process; each case starts and stops its own server by
 * PID. Raw RPC records (rawrpc.h), no libnfs. ONFS_LONG=1: longer storms.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
#define P_LOOKUP 3
#define P_CREATE 8
#define P_REMOVE 12
#define P_RENAME 14
#define P_READDIRPLUS 17
#define NFS3_OK 0
#define NFS3ERR_NOENT 2
#define NFS3ERR_EXIST 17

#define MANY_FILES 2000

struct env {
	struct tl_tree t;
	struct tl_server s;
	int fd;
	uint8_t root[64];
	uint32_t rootlen;
};

static uint32_t next_xid = 0x93000;

static int storm_size(void)
{
	const char *v = getenv("ONFS_LONG");

	return v && *v && strcmp(v, "0") != 0 ? 500 : 25;
}

/* TCP to the server from a chosen loopback source address. */
static int connect_from(const char *src, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in me = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	ASSERT(inet_pton(AF_INET, src, &me.sin_addr) == 1);
	ASSERTF(bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0, "bind %s: %s", src,
		strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	ASSERTF(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect from %s: %s", src,
		strerror(errno));
	return fd;
}

static void env_up(struct env *e, bool many, const char *const *extra)
{
	char opts[8192], rel[64];

	tl_fixture_standard(&e->t);
	if (many)
		tl_mkdir(e->t.lower[0], "many", 0755);
	for (int i = 0; many && i < MANY_FILES; i++) {
		snprintf(rel, sizeof(rel), "many/file-with-a-longish-name-%05d", i);
		tl_write(e->t.lower[0], rel, "x", 0644);
	}
	tl_tree_opts(&e->t, true, opts, sizeof(opts));
	tl_server_start(&e->s, e->t.root, e->t.state, opts, NULL, extra);
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

static void put_remove(struct env *e, struct tl_buf *b, uint32_t xid, const char *name)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_REMOVE, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, e->root, e->rootlen);
	tl_put_opaque(b, name, (uint32_t)strlen(name));
}

static void put_rename(struct env *e, struct tl_buf *b, uint32_t xid, const char *from,
		       const char *to)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_RENAME, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, e->root, e->rootlen);
	tl_put_opaque(b, from, (uint32_t)strlen(from));
	tl_put_opaque(b, e->root, e->rootlen);
	tl_put_opaque(b, to, (uint32_t)strlen(to));
}

/* CREATE EXCLUSIVE name with an 8-byte verifier. */
static void put_create_excl(struct env *e, struct tl_buf *b, uint32_t xid, const char *name,
			    uint64_t verf)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_CREATE, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, e->root, e->rootlen);
	tl_put_opaque(b, name, (uint32_t)strlen(name));
	tl_put_u32(b, 2); /* EXCLUSIVE */
	tl_put_u64(b, verf);
}

static uint32_t call_status(int fd, const struct tl_buf *b)
{
	uint8_t *rec;
	size_t n = tl_tcp_rpc(fd, b, &rec, 60000);
	uint32_t st = tl_nfs_status(rec, n, tl_buf_xid(b));

	free(rec);
	return st;
}

static uint32_t lookup(struct env *e, const char *name)
{
	struct tl_buf b = { 0 };
	uint32_t st;

	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, e->root, e->rootlen);
	tl_put_opaque(&b, name, (uint32_t)strlen(name));
	st = call_status(e->fd, &b);
	tl_buf_free(&b);
	return st;
}

/*
 * Replay b storm_size() times from 127.0.0.1, each on a new connection
 * (and every other one twice on it): every reply equals orig.
 */
static int storm_same_client(struct env *e, const struct tl_buf *b, const uint8_t *orig,
			     size_t olen, const char *what)
{
	int replays = 0;

	for (int i = 0; i < storm_size(); i++) {
		int fd = connect_from("127.0.0.1", e->s.port);

		for (int k = 0; k < 1 + (i & 1); k++) {
			uint8_t *rec;
			size_t n = tl_tcp_rpc(fd, b, &rec, 60000);

			ASSERTF(n == olen && memcmp(rec, orig, n) == 0,
				"%s: replay %d on a new connection differs from the original reply"
				" (status %u)", what, i, tl_nfs_status(rec, n, tl_buf_xid(b)));
			free(rec);
			replays++;
		}
		close(fd);
	}
	return replays;
}

/*
 * After completion. REMOVE x (OK); x is made again; the storm from the
 * original address gets OK and x stays (not run again); 127.0.0.2 sends
 * the same record: it runs, x is removed. RENAME a->b, then a made again:
 * replays OK, a stays; from 127.0.0.2 it runs (a renamed over b). CREATE
 * EXCLUSIVE c, c removed with a new xid: replays OK, c stays absent; from
 * 127.0.0.2 it runs and c exists.
 */
TEST_IMPL(drc_storm_after_completion)
{
	struct env e;
	struct tl_buf rm = { 0 }, mk = { 0 }, rn = { 0 }, cx = { 0 }, rm2 = { 0 };
	uint8_t *orig;
	size_t olen;
	int other, replays = 0;

	env_up(&e, false, NULL);
	other = connect_from("127.0.0.2", e.s.port);

	/* REMOVE */
	put_remove(&e, &rm, next_xid++, "upfile");
	olen = tl_tcp_rpc(e.fd, &rm, &orig, 60000);
	ASSERT_EQ(tl_nfs_status(orig, olen, tl_buf_xid(&rm)), NFS3_OK);
	put_create_excl(&e, &mk, next_xid++, "upfile", 1);
	ASSERT_EQ(call_status(e.fd, &mk), NFS3_OK);
	tl_buf_free(&mk);
	replays += storm_same_client(&e, &rm, orig, olen, "REMOVE");
	ASSERTF(lookup(&e, "upfile") == NFS3_OK, "a replayed REMOVE ran again");
	ASSERTF(call_status(other, &rm) == NFS3_OK, "REMOVE from 127.0.0.2 was not run");
	ASSERTF(lookup(&e, "upfile") == NFS3ERR_NOENT, "REMOVE from 127.0.0.2 was not run");
	free(orig);

	/* RENAME */
	put_rename(&e, &rn, next_xid++, "small", "renamed");
	olen = tl_tcp_rpc(e.fd, &rn, &orig, 60000);
	ASSERT_EQ(tl_nfs_status(orig, olen, tl_buf_xid(&rn)), NFS3_OK);
	put_create_excl(&e, &mk, next_xid++, "small", 2);
	ASSERT_EQ(call_status(e.fd, &mk), NFS3_OK);
	tl_buf_free(&mk);
	replays += storm_same_client(&e, &rn, orig, olen, "RENAME");
	ASSERTF(lookup(&e, "small") == NFS3_OK, "a replayed RENAME ran again");
	ASSERTF(call_status(other, &rn) == NFS3_OK, "RENAME from 127.0.0.2 was not run");
	ASSERTF(lookup(&e, "small") == NFS3ERR_NOENT, "RENAME from 127.0.0.2 was not run");
	ASSERT_EQ(lookup(&e, "renamed"), NFS3_OK);
	free(orig);

	/* CREATE EXCLUSIVE */
	put_create_excl(&e, &cx, next_xid++, "excl", 0x1122334455667788ull);
	olen = tl_tcp_rpc(e.fd, &cx, &orig, 60000);
	ASSERT_EQ(tl_nfs_status(orig, olen, tl_buf_xid(&cx)), NFS3_OK);
	put_remove(&e, &rm2, next_xid++, "excl");
	ASSERT_EQ(call_status(e.fd, &rm2), NFS3_OK);
	replays += storm_same_client(&e, &cx, orig, olen, "CREATE EXCLUSIVE");
	ASSERTF(lookup(&e, "excl") == NFS3ERR_NOENT, "a replayed CREATE EXCLUSIVE ran again");
	ASSERTF(call_status(other, &cx) == NFS3_OK, "CREATE EXCLUSIVE from 127.0.0.2 failed");
	ASSERTF(lookup(&e, "excl") == NFS3_OK, "CREATE EXCLUSIVE from 127.0.0.2 was not run");
	/* and 127.0.0.2's own replay is answered from its own entry */
	ASSERT_EQ(call_status(other, &cx), NFS3_OK);
	free(orig);

	printf("# %d replays from the original address answered from the cache; 3 calls from "
	       "127.0.0.2 executed afresh\n", replays);
	close(other);
	tl_buf_free(&rm);
	tl_buf_free(&rn);
	tl_buf_free(&cx);
	tl_buf_free(&rm2);
	env_down(&e);
	return 0;
}

static void put_readdirplus(struct tl_buf *b, uint32_t xid, const uint8_t *fh, uint32_t fhlen)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_READDIRPLUS, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, fh, fhlen);
	tl_put_u64(b, 0);
	tl_put_u64(b, 0);
	tl_put_u32(b, 1 << 20);
	tl_put_u32(b, 1 << 20);
}

/*
 * While in progress: one worker, kept busy by a backlog of slow calls; the
 * same REMOVE record arrives on N new connections from 127.0.0.1 and on
 * one from 127.0.0.2 while the original is queued. Every 127.0.0.1 copy
 * gets the original reply (OK: it ran once); the 127.0.0.2 copy runs on
 * its own after it and answers NOENT.
 */
TEST_IMPL(drc_storm_while_in_progress)
{
	enum { BACKLOG = 48, MAXN = 600 };
	static const char *const extra[] = { "--threads", "1", "-v", NULL };
	struct env e;
	struct tl_buf all = { 0 }, rm = { 0 }, lk = { 0 };
	uint8_t many[64], *rec, *orig = NULL;
	uint32_t manylen;
	size_t olen = 0;
	int n = storm_size(), fds[MAXN], other;
	char *log = NULL;

	if (n > MAXN)
		n = MAXN;
	env_up(&e, true, extra);
	tl_put_call(&lk, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&lk, e.root, e.rootlen);
	tl_put_opaque(&lk, "many", 4);
	{
		struct tl_reply r;
		struct tl_rd rd;

		tl_tcp_call(e.fd, &lk, &rec, &r);
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		ASSERT_EQ(tl_get_u32(&rd), 0);
		manylen = tl_get_opaque(&rd, many, 64);
		ASSERT(!rd.bad && manylen > 0);
		free(rec);
	}
	for (int i = 0; i < n; i++)
		fds[i] = connect_from("127.0.0.1", e.s.port);
	other = connect_from("127.0.0.2", e.s.port);
	for (int i = 0; i < BACKLOG; i++) {
		struct tl_buf b = { 0 };

		put_readdirplus(&b, 0xb000 + (uint32_t)i, many, manylen);
		tl_put_u32(&all, 0x80000000u | (uint32_t)b.len);
		tl_put_bytes(&all, b.p, b.len);
		tl_buf_free(&b);
	}
	for (size_t off = 0; off < all.len;) {
		ssize_t w = send(e.fd, all.p + off, all.len - off, MSG_NOSIGNAL);

		ASSERT(w > 0);
		off += (size_t)w;
	}
	{
		ssize_t r = tl_tcp_recv_record(e.fd, &rec, 60000);

		ASSERTF(r > 0, "no reply to the first call of the backlog");
		free(rec);
	}
	put_remove(&e, &rm, next_xid++, "upfile");
	for (int i = 0; i < n; i++)
		ASSERT(tl_tcp_send_record(fds[i], rm.p, rm.len) == 0);
	ASSERT(tl_tcp_send_record(other, rm.p, rm.len) == 0);
	for (int i = 0; i < n; i++) {
		ssize_t r = tl_tcp_recv_record(fds[i], &rec, 60000);

		ASSERTF(r > 0, "no reply on storm connection %d", i);
		ASSERTF(tl_nfs_status(rec, (size_t)r, tl_buf_xid(&rm)) == NFS3_OK,
			"storm connection %d: REMOVE ran again (status %u)", i,
			tl_nfs_status(rec, (size_t)r, tl_buf_xid(&rm)));
		if (!orig) {
			orig = rec;
			olen = (size_t)r;
			continue;
		}
		ASSERTF((size_t)r == olen && memcmp(rec, orig, olen) == 0,
			"storm connection %d: another reply than the first", i);
		free(rec);
	}
	{
		ssize_t r = tl_tcp_recv_record(other, &rec, 60000);

		ASSERTF(r > 0, "no reply to 127.0.0.2");
		ASSERTF(tl_nfs_status(rec, (size_t)r, tl_buf_xid(&rm)) == NFS3ERR_NOENT,
			"127.0.0.2 got status %u: replayed, not executed afresh",
			tl_nfs_status(rec, (size_t)r, tl_buf_xid(&rm)));
		free(rec);
	}
	for (int i = 1; i < BACKLOG; i++) {
		ssize_t r = tl_tcp_recv_record(e.fd, &rec, 60000);

		ASSERTF(r > 0, "READDIRPLUS reply %d of %d missing", i, BACKLOG);
		free(rec);
	}
	ASSERT_EQ(lookup(&e, "upfile"), NFS3ERR_NOENT);
	ASSERT(tl_read_file(e.s.log, &log) >= 0);
	ASSERTF(strstr(log, "waits for the original") != NULL,
		"no copy took the waiting path (backlog too short?)");
	printf("# %d copies of a queued REMOVE on new connections: one execution, one reply; "
	       "127.0.0.2's copy executed afresh (NOENT)\n", n);
	free(log);
	free(orig);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(other);
	tl_buf_free(&all);
	tl_buf_free(&rm);
	tl_buf_free(&lk);
	env_down(&e);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(drc_storm_after_completion, 120),
		TEST_ENTRY_TIMEOUT(drc_storm_while_in_progress, 120),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
