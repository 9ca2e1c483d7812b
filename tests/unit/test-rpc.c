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

static int failures;

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                \
		}                                                                  \
	} while (0)
#define CHECK_EQ(a, b)                                                             \
	do {                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                \
		if (_a != _b) {                                                    \
			fprintf(stderr, "FAIL %s:%d: %s == %s: %lld != %lld\n",    \
				__FILE__, __LINE__, #a, #b, _a, _b);               \
			failures++;                                                \
		}                                                                  \
	} while (0)

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

static void rpc_decode_good_auth_sys(void)
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

static void rpc_decode_groups_limit(void)
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

static void rpc_decode_bad_creds(void)
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

static void rpc_decode_bad_rpcvers(void)
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

static void rpc_decode_truncated(void)
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

static void rpc_encode_replies(void)
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
