/*
 * test-drc.c - the duplicate request cache of a real ovlnfsd, driven with
 * hand-built RPC records: a retransmitted REMOVE or GUARDED CREATE gets
 * the original reply (not NOENT/EXIST), on the same or a new TCP
 * connection; the same xid with other arguments is a new call; a UDP
 * retransmit is keyed by source port; a retransmit that arrives while the
 * original is still queued waits for it and the call runs once. Also the
 * argument decoder's bounds and its refusal of names holding a NUL
 * (GARBAGE_ARGS, as knfsd).
 *
 * Runs as a test process; each case starts and stops its own server by
 * PID. No libnfs, no rpcgen: every byte is written here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
#define PROG_MOUNT 100005

/* NFSv3 procedures and statuses used here (RFC 1813). */
#define P_LOOKUP 3
#define P_READ 6
#define P_WRITE 7
#define P_CREATE 8
#define P_SYMLINK 10
#define P_REMOVE 12
#define P_RENAME 14
#define P_READDIRPLUS 17
#define NFS3_OK 0
#define NFS3ERR_NOENT 2
#define NFS3ERR_EXIST 17
#define NFS3ERR_NAMETOOLONG 63

#define MANY_FILES 2000

struct env {
	struct tl_tree t;
	struct tl_server s;
	int fd;
	uint8_t root[64];
	uint32_t rootlen;
};

static uint32_t next_xid = 0x51000;

/* The standard fixture; with many, "many/" holds MANY_FILES names in the lower. */
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

/* The accept_stat of a reply (asserts MSG_ACCEPTED). */
static uint32_t accept_stat(const uint8_t *rec, size_t len)
{
	struct tl_reply r;

	ASSERT(tl_reply_parse(rec, len, &r) == 0);
	ASSERTF(r.accepted, "denied: reject_stat %u", r.reject_stat);
	return r.accept_stat;
}

static void put_diropargs(struct tl_buf *b, const uint8_t *fh, uint32_t fhlen,
			  const void *name, uint32_t namelen)
{
	tl_put_opaque(b, fh, fhlen);
	tl_put_opaque(b, name, namelen);
}

static void put_remove(struct env *e, struct tl_buf *b, uint32_t xid, const char *name)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_REMOVE, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(b, e->root, e->rootlen, name, (uint32_t)strlen(name));
}

/* CREATE GUARDED name, mode 0644. */
static void put_create(struct env *e, struct tl_buf *b, uint32_t xid, const void *name,
		       uint32_t namelen)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_CREATE, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(b, e->root, e->rootlen, name, namelen);
	tl_put_u32(b, 1);      /* GUARDED */
	tl_put_u32(b, 1);      /* set_mode */
	tl_put_u32(b, 0644);
	tl_put_u32(b, 0);      /* uid */
	tl_put_u32(b, 0);      /* gid */
	tl_put_u32(b, 0);      /* size */
	tl_put_u32(b, 0);      /* atime DONT_CHANGE */
	tl_put_u32(b, 0);      /* mtime DONT_CHANGE */
}

/* LOOKUP name in the root: its status; the handle into fh when given. */
static uint32_t lookup(struct env *e, const char *name, uint8_t *fh, uint32_t *fhlen)
{
	struct tl_buf b = { 0 };
	uint32_t xid = next_xid++, st;
	uint8_t *rec;
	size_t n;

	tl_put_call(&b, xid, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e->root, e->rootlen, name, (uint32_t)strlen(name));
	n = tl_tcp_rpc(e->fd, &b, &rec, 30000);
	st = tl_nfs_status(rec, n, xid);
	if (st == NFS3_OK && fh) {
		struct tl_reply r;
		struct tl_rd rd;

		ASSERT(tl_reply_parse(rec, n, &r) == 0);
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		tl_get_u32(&rd);
		*fhlen = tl_get_opaque(&rd, fh, 64);
		ASSERT(!rd.bad && *fhlen > 0);
	}
	free(rec);
	tl_buf_free(&b);
	return st;
}

/* Send b and check the reply: status want; a copy of the record in *out. */
static size_t expect_status(int fd, const struct tl_buf *b, uint32_t want, uint8_t **out,
			    const char *what)
{
	size_t n = tl_tcp_rpc(fd, b, out, 30000);
	uint32_t st = tl_nfs_status(*out, n, tl_buf_xid(b));
	ASSERTF(st == want, "%s: status %u, want %u", what, st, want);
	return n;
}

TEST_IMPL(drc_tcp_retransmit_gets_original_reply)
{
	struct env e;
	struct tl_buf rm = { 0 }, cr = { 0 }, cr2 = { 0 };
	uint8_t *r1, *r2, *r3;
	size_t n1, n2, n3;
	int fd2;

	env_up(&e, false, NULL);
	ASSERT_EQ(lookup(&e, "upfile", NULL, NULL), NFS3_OK);

	/* REMOVE, then the same record again: OK twice, byte for byte */
	put_remove(&e, &rm, next_xid++, "upfile");
	n1 = expect_status(e.fd, &rm, NFS3_OK, &r1, "REMOVE upfile");
	n2 = expect_status(e.fd, &rm, NFS3_OK, &r2, "retransmitted REMOVE upfile");
	ASSERT(n1 == n2 && memcmp(r1, r2, n1) == 0);
	/* a retransmit on a new connection (the client reconnected) */
	fd2 = tl_tcp_connect(e.s.port);
	ASSERT(fd2 >= 0);
	n3 = expect_status(fd2, &rm, NFS3_OK, &r3, "REMOVE upfile on a new connection");
	ASSERT(n1 == n3 && memcmp(r1, r3, n1) == 0);
	free(r1);
	free(r2);
	free(r3);
	/* it really ran once: the name is gone */
	ASSERT_EQ(lookup(&e, "upfile", NULL, NULL), NFS3ERR_NOENT);

	/* GUARDED CREATE retransmitted: OK, not EXIST */
	put_create(&e, &cr, next_xid++, "fresh", 5);
	n1 = expect_status(e.fd, &cr, NFS3_OK, &r1, "CREATE GUARDED fresh");
	n2 = expect_status(e.fd, &cr, NFS3_OK, &r2, "retransmitted CREATE GUARDED fresh");
	ASSERT(n1 == n2 && memcmp(r1, r2, n1) == 0);
	n3 = expect_status(fd2, &cr, NFS3_OK, &r3, "CREATE GUARDED on a new connection");
	ASSERT(n1 == n3 && memcmp(r1, r3, n1) == 0);
	free(r1);
	free(r2);
	free(r3);
	/* a new call (new xid) for the same name does run: EXIST */
	put_create(&e, &cr2, next_xid++, "fresh", 5);
	expect_status(e.fd, &cr2, NFS3ERR_EXIST, &r1, "CREATE GUARDED fresh, new xid");
	free(r1);
	ASSERT_EQ(lookup(&e, "fresh", NULL, NULL), NFS3_OK);

	close(fd2);
	tl_buf_free(&rm);
	tl_buf_free(&cr);
	tl_buf_free(&cr2);
	env_down(&e);
	return 0;
}

TEST_IMPL(drc_same_xid_other_args_is_new_call)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint32_t xid = next_xid++;
	uint8_t *rec;

	env_up(&e, false, NULL);
	put_remove(&e, &b, xid, "small");
	expect_status(e.fd, &b, NFS3_OK, &rec, "REMOVE small");
	free(rec);
	tl_buf_free(&b);
	/* same xid, another name that does not exist: a replay would say OK */
	put_remove(&e, &b, xid, "no-such-name");
	expect_status(e.fd, &b, NFS3ERR_NOENT, &rec, "REMOVE no-such-name, same xid");
	free(rec);
	tl_buf_free(&b);
	/* same xid, a name that exists: it is really removed */
	put_remove(&e, &b, xid, "empty");
	expect_status(e.fd, &b, NFS3_OK, &rec, "REMOVE empty, same xid");
	free(rec);
	tl_buf_free(&b);
	ASSERT_EQ(lookup(&e, "empty", NULL, NULL), NFS3ERR_NOENT);
	/* CREATE with the xid of the REMOVE: a new call too */
	put_create(&e, &b, xid, "made", 4);
	expect_status(e.fd, &b, NFS3_OK, &rec, "CREATE made, same xid");
	free(rec);
	tl_buf_free(&b);
	ASSERT_EQ(lookup(&e, "made", NULL, NULL), NFS3_OK);
	env_down(&e);
	return 0;
}

/* One datagram from socket fd (connected to the server), its reply. */
static ssize_t udp_rpc(int fd, const struct tl_buf *b, uint8_t *reply, size_t cap)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (send(fd, b->p, b->len, 0) != (ssize_t)b->len)
		return -errno;
	if (poll(&pfd, 1, 10000) != 1)
		return -ETIMEDOUT;
	return recv(fd, reply, cap, 0);
}

static int udp_socket(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

TEST_IMPL(drc_udp_keyed_by_source_port)
{
	struct env e;
	struct tl_buf b = { 0 };
	static uint8_t r1[65536], r2[65536], r3[65536];
	ssize_t n1, n2, n3;
	uint32_t xid = next_xid++;
	int u1, u2;

	env_up(&e, false, NULL);
	u1 = udp_socket(e.s.port);
	u2 = udp_socket(e.s.port);
	put_create(&e, &b, xid, "udpfile", 7);
	n1 = udp_rpc(u1, &b, r1, sizeof(r1));
	ASSERTF(n1 > 0, "UDP CREATE: %s", strerror((int)-n1));
	ASSERT_EQ(tl_nfs_status(r1, (size_t)n1, xid), NFS3_OK);
	/* the same socket retransmits: the original reply */
	n2 = udp_rpc(u1, &b, r2, sizeof(r2));
	ASSERT(n2 == n1 && memcmp(r1, r2, (size_t)n1) == 0);
	/* another source port is another client: the call runs, EXIST */
	n3 = udp_rpc(u2, &b, r3, sizeof(r3));
	ASSERTF(n3 > 0, "UDP CREATE from another port: %s", strerror((int)-n3));
	ASSERT_EQ(tl_nfs_status(r3, (size_t)n3, xid), NFS3ERR_EXIST);
	close(u1);
	close(u2);
	tl_buf_free(&b);
	env_down(&e);
	return 0;
}

/* READDIRPLUS of dir from cookie 0 (a slow call: MANY_FILES entries). */
static void put_readdirplus(struct tl_buf *b, uint32_t xid, const uint8_t *fh, uint32_t fhlen)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_READDIRPLUS, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, fh, fhlen);
	tl_put_u64(b, 0);
	tl_put_u64(b, 0);
	tl_put_u32(b, 1 << 20); /* dircount */
	tl_put_u32(b, 1 << 20); /* maxcount */
}

/*
 * One worker thread kept busy by a backlog of slow calls on a third
 * connection: the CREATE sent on connection A is still queued when its
 * retransmit arrives on connection B, so B must wait for A's result and
 * the file is created once (a second run would answer EXIST).
 */
TEST_IMPL(drc_retransmit_while_running_waits)
{
	enum { BACKLOG = 48 };
	static const char *const extra[] = { "--threads", "1", "-v", NULL };
	struct env e;
	struct tl_buf all = { 0 }, cr = { 0 };
	uint8_t many[64], *ra, *rb;
	uint32_t manylen, xid = next_xid++;
	size_t na, nb;
	int fa, fb;
	char *log = NULL;

	env_up(&e, true, extra);
	ASSERT_EQ(lookup(&e, "many", many, &manylen), NFS3_OK);
	fa = tl_tcp_connect(e.s.port);
	fb = tl_tcp_connect(e.s.port);
	ASSERT(fa >= 0 && fb >= 0);

	for (int i = 0; i < BACKLOG; i++) {
		struct tl_buf b = { 0 };

		put_readdirplus(&b, 0x7000 + (uint32_t)i, many, manylen);
		tl_put_u32(&all, 0x80000000u | (uint32_t)b.len);
		tl_put_bytes(&all, b.p, b.len);
		tl_buf_free(&b);
	}
	for (size_t off = 0; off < all.len;) {
		ssize_t w = send(e.fd, all.p + off, all.len - off, MSG_NOSIGNAL);

		ASSERT(w > 0);
		off += (size_t)w;
	}
	/*
	 * The backlog is queued before the CREATE arrives: wait for its first
	 * reply. The loop reads the small records of the backlog in one go,
	 * so once one of them has been answered all are queued behind the
	 * single worker (no guess at how long that takes).
	 */
	{
		uint8_t *first;
		ssize_t n = tl_tcp_recv_record(e.fd, &first, 60000);

		ASSERTF(n > 0, "no reply to the first call of the backlog");
		free(first);
	}
	put_create(&e, &cr, xid, "raced", 5);
	ASSERT(tl_tcp_send_record(fa, cr.p, cr.len) == 0);
	ASSERT(tl_tcp_send_record(fb, cr.p, cr.len) == 0);

	{
		ssize_t n = tl_tcp_recv_record(fa, &ra, 60000);

		ASSERTF(n > 0, "no reply on connection A");
		na = (size_t)n;
		n = tl_tcp_recv_record(fb, &rb, 60000);
		ASSERTF(n > 0, "no reply on connection B");
		nb = (size_t)n;
	}
	ASSERT_EQ(tl_nfs_status(ra, na, xid), NFS3_OK);
	ASSERTF(tl_nfs_status(rb, nb, xid) == NFS3_OK,
		"the retransmit ran a second time (status %u)", tl_nfs_status(rb, nb, xid));
	ASSERT(na == nb && memcmp(ra, rb, na) == 0);
	free(ra);
	free(rb);

	/* the rest of the backlog's replies all come */
	for (int i = 1; i < BACKLOG; i++) {
		uint8_t *rec;
		ssize_t n = tl_tcp_recv_record(e.fd, &rec, 60000);

		ASSERTF(n > 0, "READDIRPLUS reply %d of %d missing", i, BACKLOG);
		free(rec);
	}
	ASSERT_EQ(lookup(&e, "raced", NULL, NULL), NFS3_OK);
	/* the retransmit took the waiting path, not the replay of a finished call */
	ASSERT(tl_read_file(e.s.log, &log) >= 0);
	ASSERTF(strstr(log, "waits for the original") != NULL,
		"the retransmit did not wait for a running original (backlog too short?)");
	free(log);
	close(fa);
	close(fb);
	tl_buf_free(&all);
	tl_buf_free(&cr);
	env_down(&e);
	return 0;
}

TEST_IMPL(xdr_name_with_nul_is_garbage)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec;
	size_t n;

	env_up(&e, false, NULL);
	/* "upfile\0x" would decode as "upfile" */
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, "upfile\0x", 8);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	/* a trailing NUL too */
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_REMOVE, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, "upfile\0", 7);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	ASSERT_EQ(lookup(&e, "upfile", NULL, NULL), NFS3_OK);
	/* CREATE "a\0b" must not create "a" */
	put_create(&e, &b, next_xid++, "a\0b", 3);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	ASSERT_EQ(lookup(&e, "a", NULL, NULL), NFS3ERR_NOENT);
	/* RENAME's second name */
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_RENAME, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, "small", 5);
	put_diropargs(&b, e.root, e.rootlen, "x\0y", 3);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	ASSERT_EQ(lookup(&e, "small", NULL, NULL), NFS3_OK);
	/* MOUNT's path: "/\0etc" is not "/" */
	tl_put_call(&b, next_xid++, 2, PROG_MOUNT, 3, 1, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, "/\0etc", 5);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	/* a plain name still works on the same connection */
	ASSERT_EQ(lookup(&e, "small", NULL, NULL), NFS3_OK);
	env_down(&e);
	return 0;
}

TEST_IMPL(xdr_length_bounds)
{
	struct env e;
	struct tl_buf b = { 0 };
	uint8_t *rec, fh[64];
	uint32_t fhlen, xid;
	static char name[2048];
	size_t n;

	env_up(&e, false, NULL);
	memset(name, 'n', sizeof(name));
	/* 300 bytes: decodes, and the procedure answers NAMETOOLONG */
	xid = next_xid++;
	tl_put_call(&b, xid, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, name, 300);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(tl_nfs_status(rec, n, xid), NFS3ERR_NAMETOOLONG);
	free(rec);
	tl_buf_free(&b);
	/* above the wire bound (1024), bytes present: GARBAGE_ARGS */
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, name, 1025);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	/* WRITE claiming ~2 GiB of data in a small record */
	ASSERT_EQ(lookup(&e, "small", fh, &fhlen), NFS3_OK);
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_WRITE, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, fh, fhlen);
	tl_put_u64(&b, 0);
	tl_put_u32(&b, 16);
	tl_put_u32(&b, 2); /* FILE_SYNC */
	tl_put_u32(&b, 0x7ffffff0);
	tl_put_bytes(&b, "0123456789abcdef", 16);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	/* SYMLINK target above 4096 bytes */
	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_SYMLINK, TL_AUTH_SYS, 0, 0, 0);
	put_diropargs(&b, e.root, e.rootlen, "sl", 2);
	for (int i = 0; i < 6; i++)
		tl_put_u32(&b, 0); /* sattr3: nothing set */
	tl_put_u32(&b, 0x40000000);
	tl_put_bytes(&b, name, 64);
	n = tl_tcp_rpc(e.fd, &b, &rec, 30000);
	ASSERT_EQ(accept_stat(rec, n), TL_GARBAGE_ARGS);
	free(rec);
	tl_buf_free(&b);
	/* the connection survives */
	ASSERT_EQ(lookup(&e, "small", NULL, NULL), NFS3_OK);
	env_down(&e);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(drc_tcp_retransmit_gets_original_reply),
	TEST_ENTRY(drc_same_xid_other_args_is_new_call),
	TEST_ENTRY(drc_udp_keyed_by_source_port),
	TEST_ENTRY_TIMEOUT(drc_retransmit_while_running_waits, 180),
	TEST_ENTRY(xdr_name_with_nul_is_garbage),
	TEST_ENTRY(xdr_length_bounds),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
