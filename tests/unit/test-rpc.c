/*
 * test-rpc.c - the RPC layer: call-header and credential decoding and
 * reply-header encoding (server/rpc.c), then the whole request path
 * (server/transport.c, dispatch.c, portmap.c) on a loopback port: the
 * server runs on a libuv loop in this process, a plain blocking socket
 * client drives it from a second thread.
 *
 * The loopback cases bind 127.0.0.1 port 0 only and stop the transport
 * (and join the loop thread) before returning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "ovlnfsd/config.h"
#include "ovlnfsd/recmark.h"
#include "ovlnfsd/rpc.h"
#include "ovlnfsd/server.h"
#include "unit.h"


/* ------------------------------------------------------------ building calls */

struct msg {
	uint8_t b[4096];
	size_t len;
};

static void w32(struct msg *m, uint32_t v)
{
	m->b[m->len++] = (uint8_t)(v >> 24);
	m->b[m->len++] = (uint8_t)(v >> 16);
	m->b[m->len++] = (uint8_t)(v >> 8);
	m->b[m->len++] = (uint8_t)v;
}

static void wbytes(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->len, p, n);
	m->len += n;
	while (m->len & 3)
		m->b[m->len++] = 0;
}

static uint32_t r32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* xid, CALL, rpcvers, prog, vers, proc */
static void call_start(struct msg *m, uint32_t xid, uint32_t rpcvers, uint32_t prog,
		       uint32_t vers, uint32_t proc)
{
	m->len = 0;
	w32(m, xid);
	w32(m, 0);
	w32(m, rpcvers);
	w32(m, prog);
	w32(m, vers);
	w32(m, proc);
}

/* AUTH_SYS credential with ngroups groups (1000+i), then an AUTH_NONE verifier. */
static void cred_sys(struct msg *m, const char *host, uint32_t uid, uint32_t gid,
		     uint32_t ngroups)
{
	size_t lenpos, i;
	uint32_t blen;

	w32(m, 1);
	lenpos = m->len;
	w32(m, 0);
	w32(m, 12345); /* stamp */
	w32(m, (uint32_t)strlen(host));
	wbytes(m, host, strlen(host));
	w32(m, uid);
	w32(m, gid);
	w32(m, ngroups);
	for (i = 0; i < ngroups; i++)
		w32(m, 1000 + (uint32_t)i);
	blen = (uint32_t)(m->len - lenpos - 4);
	m->b[lenpos] = (uint8_t)(blen >> 24);
	m->b[lenpos + 1] = (uint8_t)(blen >> 16);
	m->b[lenpos + 2] = (uint8_t)(blen >> 8);
	m->b[lenpos + 3] = (uint8_t)blen;
	w32(m, 0); /* verifier AUTH_NONE */
	w32(m, 0);
}

static void cred_none(struct msg *m)
{
	w32(m, 0);
	w32(m, 0);
	w32(m, 0);
	w32(m, 0);
}

/* ------------------------------------------------------------ header decode */

static void test_rpc_decode_good_auth_sys(void)
{
	struct msg m;
	struct onfs_rpc_hdr h;
	uint32_t st;
	size_t args;

	call_start(&m, 0xdeadbeef, 2, 100003, 3, 1);
	cred_sys(&m, "client.example", 1001, 100, 3);
	args = m.len;
	w32(&m, 0x11223344); /* procedure args */
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_OK);
	CHECK_EQ(h.xid, 0xdeadbeef);
	CHECK_EQ(h.prog, 100003);
	CHECK_EQ(h.vers, 3);
	CHECK_EQ(h.proc, 1);
	CHECK_EQ(h.cred.flavor, ONFS_AUTH_SYS);
	CHECK_EQ(h.cred.uid, 1001);
	CHECK_EQ(h.cred.gid, 100);
	CHECK_EQ(h.cred.ngroups, 3);
	CHECK_EQ(h.cred.groups[0], 1000);
	CHECK_EQ(h.cred.groups[2], 1002);
	CHECK_EQ(h.args_off, args);
	CHECK_EQ(st, AUTH_OK);

	/* a machine name of exactly 255 bytes is fine */
	{
		char host[256];

		memset(host, 'h', 255);
		host[255] = 0;
		call_start(&m, 1, 2, 100003, 3, 0);
		cred_sys(&m, host, 0, 0, 0);
		CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_OK);
		CHECK_EQ(h.args_off, m.len);
		host[254] = 0;
		call_start(&m, 1, 2, 100003, 3, 0);
		cred_sys(&m, "", 0, 0, 0);
		CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_OK);
	}
}

static void test_rpc_decode_groups_limit(void)
{
	struct msg m;
	struct onfs_rpc_hdr h;
	uint32_t st;

	call_start(&m, 7, 2, 100003, 3, 1);
	cred_sys(&m, "h", 0, 0, 16);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_OK);
	CHECK_EQ(h.cred.ngroups, 16);
	CHECK_EQ(h.cred.groups[15], 1015);

	call_start(&m, 7, 2, 100003, 3, 1);
	cred_sys(&m, "h", 0, 0, 17);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK_EQ(st, AUTH_BADCRED);
	CHECK_EQ(h.xid, 7);
}

static void test_rpc_decode_bad_creds(void)
{
	struct msg m;
	struct onfs_rpc_hdr h;
	uint32_t st;
	char host[300];

	/* machine name of 256 bytes */
	memset(host, 'x', 256);
	host[256] = 0;
	call_start(&m, 8, 2, 100003, 3, 1);
	cred_sys(&m, host, 0, 0, 0);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK_EQ(st, AUTH_BADCRED);

	/* credential body over 400 bytes */
	call_start(&m, 8, 2, 100003, 3, 1);
	w32(&m, 1);
	w32(&m, 404);
	memset(m.b + m.len, 0, 404);
	m.len += 404;
	w32(&m, 0);
	w32(&m, 0);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK_EQ(st, AUTH_BADCRED);

	/* AUTH_SYS body shorter than its fields */
	call_start(&m, 8, 2, 100003, 3, 1);
	w32(&m, 1);
	w32(&m, 8);
	w32(&m, 0);
	w32(&m, 0);
	w32(&m, 0);
	w32(&m, 0);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK_EQ(st, AUTH_BADCRED);

	/* unknown flavor (RPCSEC_GSS) */
	call_start(&m, 8, 2, 100003, 3, 1);
	w32(&m, 6);
	w32(&m, 0);
	w32(&m, 0);
	w32(&m, 0);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK(st == AUTH_BADCRED || st == AUTH_REJECTEDCRED);

	/* verifier of another flavor */
	call_start(&m, 8, 2, 100003, 3, 1);
	w32(&m, 0);
	w32(&m, 0);
	w32(&m, 1);
	w32(&m, 0);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_AUTH_ERROR);
	CHECK_EQ(st, AUTH_BADVERF);

	/* AUTH_NONE */
	call_start(&m, 9, 2, 100005, 3, 5);
	cred_none(&m);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_OK);
	CHECK_EQ(h.cred.flavor, ONFS_AUTH_NONE);
	CHECK_EQ(h.args_off, m.len);
}

static void test_rpc_decode_bad_rpcvers(void)
{
	struct msg m;
	struct onfs_rpc_hdr h;
	uint32_t st;

	call_start(&m, 0x55, 3, 100003, 3, 0);
	cred_none(&m);
	CHECK_EQ(onfs_rpc_decode_call(m.b, m.len, &h, &st), ONFS_RPC_BAD_RPCVERS);
	CHECK_EQ(h.xid, 0x55);
	/* the version is judged before anything after it is read */
	CHECK_EQ(onfs_rpc_decode_call(m.b, 12, &h, &st), ONFS_RPC_BAD_RPCVERS);
}

static void test_rpc_decode_truncated(void)
{
	struct msg m;
	struct onfs_rpc_hdr h;
	uint32_t st;
	size_t full, i;

	call_start(&m, 0x77, 2, 100003, 3, 4);
	cred_sys(&m, "trunc", 5, 6, 2);
	full = m.len;
	for (i = 0; i < full; i++) {
		enum onfs_rpc_verdict v = onfs_rpc_decode_call(m.b, i, &h, &st);

		/* too short for prog/vers/proc: no reply; later: AUTH_ERROR */
		if (i < 24)
			CHECK_EQ(v, ONFS_RPC_DROP);
		else
			CHECK_EQ(v, ONFS_RPC_AUTH_ERROR);
	}
	CHECK_EQ(onfs_rpc_decode_call(m.b, full, &h, &st), ONFS_RPC_OK);

	/* a REPLY is not a call */
	m.b[7] = 1;
	CHECK_EQ(onfs_rpc_decode_call(m.b, full, &h, &st), ONFS_RPC_DROP);
}

/* ------------------------------------------------------------ reply encode */

static void check_words(const uint8_t *b, int n, const uint32_t *w, int nw)
{
	int i;

	CHECK_EQ(n, nw * 4);
	if (n != nw * 4)
		return;
	for (i = 0; i < nw; i++)
		CHECK_EQ(r32(b + 4 * i), w[i]);
}

static void test_rpc_encode_replies(void)
{
	uint8_t b[64];
	int n;

	{
		static const uint32_t w[] = { 0x01020304, 1, 0, 0, 0, 0 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 0x01020304, SUCCESS, 9, 9);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 5, 1, 0, 0, 0, 2, 3, 3 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 5, PROG_MISMATCH, 3, 3);
		check_words(b, n, w, 8);
	}
	{
		static const uint32_t w[] = { 6, 1, 0, 0, 0, 1 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 6, PROG_UNAVAIL, 0, 0);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 7, 1, 0, 0, 0, 3 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 7, PROC_UNAVAIL, 0, 0);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 8, 1, 0, 0, 0, 4 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 8, GARBAGE_ARGS, 0, 0);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 9, 1, 0, 0, 0, 5 };

		n = onfs_rpc_encode_accepted(b, sizeof(b), 9, SYSTEM_ERR, 0, 0);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 10, 1, 1, 0, 2, 2 };

		n = onfs_rpc_encode_rpc_mismatch(b, sizeof(b), 10);
		check_words(b, n, w, 6);
	}
	{
		static const uint32_t w[] = { 11, 1, 1, 1, 5 };

		n = onfs_rpc_encode_auth_error(b, sizeof(b), 11, AUTH_TOOWEAK);
		check_words(b, n, w, 5);
	}
	CHECK_EQ(onfs_rpc_encode_accepted(b, 20, 1, SUCCESS, 0, 0), -ENOSPC);
	CHECK_EQ(onfs_rpc_encode_accepted(b, 31, 1, PROG_MISMATCH, 3, 3), -ENOSPC);

	/* the XDR-stream form writes the same bytes */
	{
		XDR x;
		uint8_t b2[64];

		xdrmem_create(&x, (char *)b2, sizeof(b2), XDR_ENCODE);
		CHECK(onfs_rpc_xdr_accepted(&x, 5, PROG_MISMATCH, 3, 3));
		CHECK_EQ(xdr_getpos(&x), 32);
		n = onfs_rpc_encode_accepted(b, sizeof(b), 5, PROG_MISMATCH, 3, 3);
		CHECK(memcmp(b, b2, 32) == 0);
		xdr_destroy(&x);
	}
}

/* ------------------------------------------------------------ loopback server */

struct lb {
	uv_loop_t loop;
	uv_async_t stop;
	struct onfs_config cfg;
	struct onfs_server srv;
	pthread_t thread;
};

static void lb_stop_cb(uv_async_t *a)
{
	struct lb *lb = a->data;

	onfs_transport_stop(&lb->srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void *lb_thread(void *arg)
{
	struct lb *lb = arg;

	uv_run(&lb->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int lb_start(struct lb *lb, const char *pm_host, int pm_port)
{
	char err[256];
	int r;

	memset(lb, 0, sizeof(*lb));
	uv_loop_init(&lb->loop);
	lb->cfg.listen_host = (char *)"127.0.0.1";
	lb->cfg.listen_port = 0;
	lb->cfg.portmap_host = (char *)pm_host;
	lb->cfg.portmap_port = pm_port;
	lb->cfg.max_record = 8192;
	lb->srv.loop = &lb->loop;
	lb->srv.cfg = &lb->cfg;
	r = onfs_transport_start(&lb->srv, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "transport start: %s\n", err);
		uv_loop_close(&lb->loop);
		return r;
	}
	uv_async_init(&lb->loop, &lb->stop, lb_stop_cb);
	lb->stop.data = lb;
	pthread_create(&lb->thread, NULL, lb_thread, lb);
	return 0;
}

/* Stop from the loop thread, wait for the loop to run out of handles. */
static void lb_stop(struct lb *lb)
{
	uv_async_send(&lb->stop);
	pthread_join(lb->thread, NULL);
	CHECK(lb->srv.transport == NULL);
	CHECK_EQ(uv_loop_close(&lb->loop), 0);
}

static int tcp_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);

		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_record(int fd, const struct msg *m)
{
	uint8_t mark[4];

	onfs_recmark_encode(mark, (uint32_t)m->len, 1);
	if (write_all(fd, mark, 4) < 0)
		return -1;
	return write_all(fd, m->b, m->len);
}

/* One reply record (single fragment expected from this server). */
static int recv_record(int fd, struct msg *m)
{
	uint8_t mark[4];
	uint32_t len;

	if (read_all(fd, mark, 4) < 0)
		return -1;
	len = r32(mark);
	CHECK(len & 0x80000000u);
	len &= 0x7fffffff;
	if (len > sizeof(m->b))
		return -1;
	m->len = len;
	return read_all(fd, m->b, len);
}

/* Send one call, read one reply; -1 on a transport failure. */
static int roundtrip(int fd, const struct msg *call, struct msg *reply)
{
	if (send_record(fd, call) < 0)
		return -1;
	return recv_record(fd, reply);
}

/* Accepted reply: returns accept_stat, checks xid and the AUTH_NONE verf. */
static long accepted_stat(const struct msg *r, uint32_t xid)
{
	if (r->len < 24)
		return -1;
	CHECK_EQ(r32(r->b), xid);
	CHECK_EQ(r32(r->b + 4), 1);
	if (r32(r->b + 8) != 0)
		return -2; /* denied */
	CHECK_EQ(r32(r->b + 12), 0);
	CHECK_EQ(r32(r->b + 16), 0);
	return r32(r->b + 20);
}

static void getport_call(struct msg *m, uint32_t xid, uint32_t prog, uint32_t vers,
			 uint32_t prot)
{
	call_start(m, xid, 2, 100000, 2, 3);
	cred_none(m);
	w32(m, prog);
	w32(m, vers);
	w32(m, prot);
	w32(m, 0);
}

static void test_rpc_loopback_programs(struct lb *lb, int fd)
{
	struct msg c, r;
	int port = lb->srv.port;

	/* PMAP NULL */
	call_start(&c, 1, 2, 100000, 2, 0);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 1), SUCCESS);
	CHECK_EQ(r.len, 24);

	/* GETPORT: NFS v3 tcp/udp, MOUNT v3, the portmapper, NFS v4 (none) */
	getport_call(&c, 2, 100003, 3, 6);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 2), SUCCESS);
	CHECK_EQ(r.len, 28);
	CHECK_EQ(r32(r.b + 24), port);
	getport_call(&c, 3, 100005, 3, 17);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r32(r.b + 24), port);
	getport_call(&c, 4, 100000, 2, 6);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r32(r.b + 24), port);
	getport_call(&c, 5, 100003, 4, 6);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r32(r.b + 24), 0);
	getport_call(&c, 6, 100003, 3, 132); /* SCTP */
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r32(r.b + 24), 0);

	/* DUMP: a list of (prog, vers, prot, port) with NFS v3 tcp in it */
	call_start(&c, 7, 2, 100000, 2, 4);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 7), SUCCESS);
	{
		size_t off = 24;
		int entries = 0, nfs_tcp = 0;

		while (off + 4 <= r.len && r32(r.b + off)) {
			if (off + 20 > r.len)
				break;
			if (r32(r.b + off + 4) == 100003 && r32(r.b + off + 8) == 3 &&
			    r32(r.b + off + 12) == 6 && r32(r.b + off + 16) == (uint32_t)port)
				nfs_tcp++;
			entries++;
			off += 20;
		}
		CHECK_EQ(off + 4, r.len); /* ends with FALSE */
		CHECK_EQ(entries, 14); /* portmap, NFS, MOUNT, NLM 1/3/4, NSM: TCP and UDP */
		CHECK_EQ(nfs_tcp, 1);
	}

	/* SET answers FALSE */
	call_start(&c, 8, 2, 100000, 2, 1);
	cred_none(&c);
	w32(&c, 200000);
	w32(&c, 1);
	w32(&c, 6);
	w32(&c, 999);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 8), SUCCESS);
	CHECK_EQ(r32(r.b + 24), 0);

	/* NFS v2 and v4: PROG_MISMATCH 3..3; portmap v3/v4: 2..2 */
	{
		static const uint32_t v[][3] = { { 100003, 2, 3 }, { 100003, 4, 3 },
						 { 100005, 1, 3 }, { 100000, 4, 2 } };
		size_t i;

		for (i = 0; i < 4; i++) {
			call_start(&c, 20 + (uint32_t)i, 2, v[i][0], v[i][1], 0);
			cred_none(&c);
			CHECK_EQ(roundtrip(fd, &c, &r), 0);
			CHECK_EQ(accepted_stat(&r, 20 + (uint32_t)i), PROG_MISMATCH);
			CHECK_EQ(r.len, 32);
			CHECK_EQ(r32(r.b + 24), v[i][2]);
			CHECK_EQ(r32(r.b + 28), v[i][2]);
		}
	}

	/* unknown program (rquota) */
	call_start(&c, 30, 2, 100011, 1, 0);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 30), PROG_UNAVAIL);

	/* CALLIT and a procedure number past the table */
	call_start(&c, 31, 2, 100000, 2, 5);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 31), PROC_UNAVAIL);
	call_start(&c, 32, 2, 100003, 3, 22);
	cred_sys(&c, "h", 0, 0, 0);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 32), PROC_UNAVAIL);

	/* GETPORT with its arguments cut short */
	call_start(&c, 33, 2, 100000, 2, 3);
	cred_none(&c);
	w32(&c, 100003);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 33), GARBAGE_ARGS);

	/* rpcvers 3: MSG_DENIED RPC_MISMATCH 2..2 */
	call_start(&c, 34, 3, 100000, 2, 0);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r.len, 24);
	CHECK_EQ(r32(r.b), 34);
	CHECK_EQ(r32(r.b + 8), 1);
	CHECK_EQ(r32(r.b + 12), 0);
	CHECK_EQ(r32(r.b + 16), 2);
	CHECK_EQ(r32(r.b + 20), 2);

	/* 17 groups: AUTH_ERROR AUTH_BADCRED */
	call_start(&c, 35, 2, 100003, 3, 0);
	cred_sys(&c, "h", 0, 0, 17);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r.len, 20);
	CHECK_EQ(r32(r.b + 8), 1);
	CHECK_EQ(r32(r.b + 12), 1);
	CHECK_EQ(r32(r.b + 16), AUTH_BADCRED);

	/* AUTH_NONE is fine for NFS NULL, too weak for GETATTR */
	call_start(&c, 36, 2, 100003, 3, 0);
	cred_none(&c);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 36), SUCCESS);
	call_start(&c, 37, 2, 100003, 3, 1);
	cred_none(&c);
	w32(&c, 8);
	w32(&c, 0);
	w32(&c, 0);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r.len, 20);
	CHECK_EQ(r32(r.b + 8), 1);
	CHECK_EQ(r32(r.b + 12), 1);
	CHECK_EQ(r32(r.b + 16), AUTH_TOOWEAK);

	/* NFS NULL with AUTH_SYS (runs wherever the table says) */
	call_start(&c, 38, 2, 100003, 3, 0);
	cred_sys(&c, "h", 1000, 1000, 2);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 38), SUCCESS);
	CHECK_EQ(r.len, 24);
}

/* A multi-fragment call, sent one byte per write. */
static void test_rpc_loopback_fragments(struct lb *lb, int fd)
{
	struct msg c, r;
	uint8_t wire[256];
	size_t n = 0, i, cut;

	getport_call(&c, 40, 100003, 3, 6);
	cut = 13;
	onfs_recmark_encode(wire + n, (uint32_t)cut, 0);
	n += 4;
	memcpy(wire + n, c.b, cut);
	n += cut;
	onfs_recmark_encode(wire + n, 0, 0);
	n += 4;
	onfs_recmark_encode(wire + n, (uint32_t)(c.len - cut), 1);
	n += 4;
	memcpy(wire + n, c.b + cut, c.len - cut);
	n += c.len - cut;
	for (i = 0; i < n; i++) {
		CHECK_EQ(write_all(fd, wire + i, 1), 0);
		if (i % 16 == 0)
			usleep(1000);
	}
	CHECK_EQ(recv_record(fd, &r), 0);
	CHECK_EQ(accepted_stat(&r, 40), SUCCESS);
	CHECK_EQ(r32(r.b + 24), lb->srv.port);
}

/* 200 calls in one write: more than the in-flight cap; every xid answered. */
static void test_rpc_loopback_pipeline(int fd)
{
	static uint8_t wire[200 * 64];
	static uint8_t seen[200];
	struct msg c, r;
	size_t n = 0;
	uint32_t i;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 200; i++) {
		getport_call(&c, 1000 + i, 100005, 3, 6);
		onfs_recmark_encode(wire + n, (uint32_t)c.len, 1);
		memcpy(wire + n + 4, c.b, c.len);
		n += 4 + c.len;
	}
	CHECK_EQ(write_all(fd, wire, n), 0);
	for (i = 0; i < 200; i++) {
		uint32_t xid;

		if (recv_record(fd, &r) < 0) {
			CHECK(!"reply missing");
			break;
		}
		xid = r32(r.b);
		CHECK(xid >= 1000 && xid < 1200);
		if (xid >= 1000 && xid < 1200) {
			CHECK(!seen[xid - 1000]);
			seen[xid - 1000] = 1;
		}
	}
}

static void test_rpc_loopback_udp(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	struct msg c, r;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getport_call(&c, 50, 100003, 3, 17);
	n = sendto(fd, c.b, c.len, 0, (struct sockaddr *)&sin, sizeof(sin));
	CHECK_EQ(n, (ssize_t)c.len);
	n = recv(fd, r.b, sizeof(r.b), 0);
	CHECK_EQ(n, 28);
	if (n == 28) {
		r.len = (size_t)n;
		CHECK_EQ(accepted_stat(&r, 50), SUCCESS);
		CHECK_EQ(r32(r.b + 24), port);
	}
	/* unknown program over UDP */
	call_start(&c, 51, 2, 400000, 1, 0);
	cred_none(&c);
	n = sendto(fd, c.b, c.len, 0, (struct sockaddr *)&sin, sizeof(sin));
	n = recv(fd, r.b, sizeof(r.b), 0);
	CHECK_EQ(n, 24);
	if (n == 24) {
		r.len = (size_t)n;
		CHECK_EQ(accepted_stat(&r, 51), PROG_UNAVAIL);
	}
	close(fd);
}

/* A record above max_record closes the connection without a reply. */
static void test_rpc_loopback_cap(int port)
{
	uint8_t mark[4], junk[64] = { 0 }, b;
	int fd = tcp_connect(port);
	ssize_t n;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	onfs_recmark_encode(mark, 9000, 1);
	CHECK_EQ(write_all(fd, mark, 4), 0);
	write_all(fd, junk, sizeof(junk));
	/*
	 * Closed by the server, no reply: EOF, or a reset when the server
	 * closed with our junk still unread in its receive buffer.
	 */
	n = read(fd, &b, 1);
	CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
	close(fd);
}

/*
 * Calls that run on the worker pool (NFS GETATTR of a made-up handle: the
 * answer is an error status, but it is a SUCCESS reply) finishing after
 * their connection is gone: the replies are dropped, nothing leaks or
 * crashes, and the server keeps serving.
 */
static void test_rpc_loopback_close_in_flight(int port)
{
	static uint8_t wire[100 * 128];
	struct msg c, r;
	size_t n = 0;
	uint32_t i;
	int round, fd;

	for (i = 0; i < 100; i++) {
		call_start(&c, 2000 + i, 2, 100003, 3, 1);
		cred_sys(&c, "h", 1000, 1000, 1);
		w32(&c, 32);
		memset(c.b + c.len, 0x5a, 32);
		c.len += 32;
		onfs_recmark_encode(wire + n, (uint32_t)c.len, 1);
		memcpy(wire + n + 4, c.b, c.len);
		n += 4 + c.len;
	}
	for (round = 0; round < 20; round++) {
		fd = tcp_connect(port);
		CHECK(fd >= 0);
		if (fd < 0)
			return;
		CHECK_EQ(write_all(fd, wire, n), 0);
		if (round & 1) {
			/* take a few replies first */
			CHECK_EQ(recv_record(fd, &r), 0);
			CHECK_EQ(accepted_stat(&r, r32(r.b)), SUCCESS);
		}
		close(fd);
	}
	/* still serving, and a pool call answers */
	fd = tcp_connect(port);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	call_start(&c, 3000, 2, 100003, 3, 1);
	cred_sys(&c, "h", 1000, 1000, 1);
	w32(&c, 32);
	memset(c.b + c.len, 0x5a, 32);
	c.len += 32;
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 3000), SUCCESS);
	CHECK_EQ(r.len, 28); /* GETATTR3res: an error status, no body */
	CHECK(r32(r.b + 24) != 0);
	close(fd);
}

/* A client that shuts down its sending side still gets every reply. */
static void test_rpc_loopback_half_close(int port)
{
	struct msg c, r;
	uint32_t i;
	int fd = tcp_connect(port), got = 0;
	char b;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	for (i = 0; i < 10; i++) {
		call_start(&c, 4000 + i, 2, 100003, 3, 1);
		cred_sys(&c, "h", 1000, 1000, 1);
		w32(&c, 32);
		memset(c.b + c.len, 0x5a, 32);
		c.len += 32;
		CHECK_EQ(send_record(fd, &c), 0);
	}
	shutdown(fd, SHUT_WR);
	for (i = 0; i < 10; i++) {
		if (recv_record(fd, &r) < 0)
			break;
		got++;
	}
	CHECK_EQ(got, 10);
	CHECK_EQ(read(fd, &b, 1), 0); /* then the server closes */
	close(fd);
}

static void test_rpc_loopback(void)
{
	struct lb lb;
	int fd, idle;

	if (lb_start(&lb, NULL, 0) < 0) {
		CHECK(!"cannot start a loopback transport");
		return;
	}
	CHECK(lb.srv.port > 0);
	fd = tcp_connect(lb.srv.port);
	CHECK(fd >= 0);
	idle = tcp_connect(lb.srv.port); /* left open: stop must close it */
	CHECK(idle >= 0);
	if (fd >= 0) {
		test_rpc_loopback_programs(&lb, fd);
		test_rpc_loopback_fragments(&lb, fd);
		test_rpc_loopback_pipeline(fd);
		close(fd);
	}
	test_rpc_loopback_udp(lb.srv.port);
	test_rpc_loopback_cap(lb.srv.port);
	test_rpc_loopback_close_in_flight(lb.srv.port);
	test_rpc_loopback_half_close(lb.srv.port);
	lb_stop(&lb);
	if (idle >= 0) {
		char b;

		CHECK_EQ(read(idle, &b, 1), 0);
		close(idle);
	}
}

/* The portmap listener on IPv6 loopback serves the same programs, over TCP
 * and UDP; GETPORT names the NFS port for NFS and its own port for itself. */
static void test_rpc_loopback_ipv6_portmap(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	socklen_t slen = sizeof(s6);
	struct timeval tv = { 5, 0 };
	struct msg c, r;
	struct lb lb;
	int probe, fd, pm_port;
	ssize_t n;

	inet_pton(AF_INET6, "::1", &s6.sin6_addr);
	probe = socket(AF_INET6, SOCK_STREAM, 0);
	if (probe < 0 || bind(probe, (struct sockaddr *)&s6, sizeof(s6)) < 0 ||
	    getsockname(probe, (struct sockaddr *)&s6, &slen) < 0) {
		printf("SKIP rpc_loopback_ipv6_portmap: no IPv6 loopback here\n");
		if (probe >= 0)
			close(probe);
		return;
	}
	/* a port that was free a moment ago (the server binds it just after) */
	pm_port = ntohs(s6.sin6_port);
	close(probe);
	if (lb_start(&lb, "::1", pm_port) < 0) {
		CHECK(!"cannot start with an IPv6 portmap listener");
		return;
	}

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CHECK_EQ(connect(fd, (struct sockaddr *)&s6, sizeof(s6)), 0);
	getport_call(&c, 60, 100003, 3, 6);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(accepted_stat(&r, 60), SUCCESS);
	CHECK_EQ(r32(r.b + 24), lb.srv.port);
	getport_call(&c, 61, 100000, 2, 6);
	CHECK_EQ(roundtrip(fd, &c, &r), 0);
	CHECK_EQ(r32(r.b + 24), pm_port);
	close(fd);

	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getport_call(&c, 62, 100005, 3, 17);
	n = sendto(fd, c.b, c.len, 0, (struct sockaddr *)&s6, sizeof(s6));
	CHECK_EQ(n, (ssize_t)c.len);
	n = recv(fd, r.b, sizeof(r.b), 0);
	CHECK_EQ(n, 28);
	if (n == 28) {
		r.len = 28;
		CHECK_EQ(accepted_stat(&r, 62), SUCCESS);
		CHECK_EQ(r32(r.b + 24), lb.srv.port);
	}
	close(fd);
	lb_stop(&lb);
}

int main(void)
{
	/* the server closes sockets under the client on purpose (cap test) */
	signal(SIGPIPE, SIG_IGN);
	test_rpc_decode_good_auth_sys();
	test_rpc_decode_groups_limit();
	test_rpc_decode_bad_creds();
	test_rpc_decode_bad_rpcvers();
	test_rpc_decode_truncated();
	test_rpc_encode_replies();
	test_rpc_loopback();
	test_rpc_loopback_ipv6_portmap();
	return unit_finish("rpc");
}
