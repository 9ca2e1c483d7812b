/*
 * rawrpc.c - hand-built RPC records over TCP/UDP for protocol-level tests
 * (see rawrpc.h).
 *
 * Runs in the test process; blocking sockets with poll() deadlines, so no
 * call can hang a test. Never includes libnfs, rpcgen or libtirpc headers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rawrpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

void tl_buf_free(struct tl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void reserve(struct tl_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *np = realloc(b->p, cap);
	ASSERT(np != NULL);
	b->p = np;
	b->cap = cap;
}

void tl_put_bytes(struct tl_buf *b, const void *data, size_t len)
{
	reserve(b, len);
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

void tl_put_u32(struct tl_buf *b, uint32_t v)
{
	uint32_t be = htonl(v);

	tl_put_bytes(b, &be, 4);
}

void tl_put_u64(struct tl_buf *b, uint64_t v)
{
	tl_put_u32(b, (uint32_t)(v >> 32));
	tl_put_u32(b, (uint32_t)v);
}

void tl_put_opaque(struct tl_buf *b, const void *data, uint32_t len)
{
	static const uint8_t zero[4];

	tl_put_u32(b, len);
	tl_put_bytes(b, data, len);
	tl_put_bytes(b, zero, (4 - (len & 3)) & 3);
}

void tl_put_call(struct tl_buf *b, uint32_t xid, uint32_t rpcvers, uint32_t prog,
		 uint32_t vers, uint32_t proc, uint32_t flavor, uint32_t uid, uint32_t gid,
		 uint32_t ngroups)
{
	tl_put_u32(b, xid);
	tl_put_u32(b, 0); /* CALL */
	tl_put_u32(b, rpcvers);
	tl_put_u32(b, prog);
	tl_put_u32(b, vers);
	tl_put_u32(b, proc);
	if (flavor == TL_AUTH_SYS) {
		struct tl_buf cred = { 0 };

		tl_put_u32(&cred, 12345);            /* stamp */
		tl_put_opaque(&cred, "test", 4);      /* machine name */
		tl_put_u32(&cred, uid);
		tl_put_u32(&cred, gid);
		tl_put_u32(&cred, ngroups);
		for (uint32_t i = 0; i < ngroups; i++)
			tl_put_u32(&cred, 1000 + i);
		tl_put_u32(b, TL_AUTH_SYS);
		tl_put_opaque(b, cred.p, (uint32_t)cred.len);
		tl_buf_free(&cred);
	} else {
		tl_put_u32(b, flavor);
		tl_put_u32(b, 0);
	}
	tl_put_u32(b, TL_AUTH_NONE); /* verifier */
	tl_put_u32(b, 0);
}

uint32_t tl_get_u32(struct tl_rd *r)
{
	uint32_t v;

	if (r->bad || r->len - r->off < 4) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p + r->off, 4);
	r->off += 4;
	return ntohl(v);
}

uint64_t tl_get_u64(struct tl_rd *r)
{
	uint64_t hi = tl_get_u32(r);

	return (hi << 32) | tl_get_u32(r);
}

uint32_t tl_get_opaque(struct tl_rd *r, void *out, size_t cap)
{
	uint32_t len = tl_get_u32(r);
	size_t padded = ((size_t)len + 3) & ~(size_t)3;

	if (r->bad || r->len - r->off < padded) {
		r->bad = true;
		return 0;
	}
	if (out)
		memcpy(out, r->p + r->off, len < cap ? len : cap);
	r->off += padded;
	return len;
}

int tl_reply_parse(const uint8_t *rec, size_t len, struct tl_reply *out)
{
	struct tl_rd r = { rec, len, 0, false };

	memset(out, 0, sizeof(*out));
	out->xid = tl_get_u32(&r);
	if (tl_get_u32(&r) != 1) /* REPLY */
		return -1;
	switch (tl_get_u32(&r)) {
	case 0: /* MSG_ACCEPTED */
		out->accepted = true;
		tl_get_u32(&r);                 /* verifier flavor */
		tl_get_opaque(&r, NULL, 0);     /* verifier body */
		out->accept_stat = tl_get_u32(&r);
		if (out->accept_stat == TL_PROG_MISMATCH) {
			out->low = tl_get_u32(&r);
			out->high = tl_get_u32(&r);
		}
		if (out->accept_stat == TL_SUCCESS) {
			out->body = rec + r.off;
			out->body_len = len - r.off;
		}
		break;
	case 1: /* MSG_DENIED */
		out->reject_stat = tl_get_u32(&r);
		if (out->reject_stat == TL_RPC_MISMATCH) {
			out->low = tl_get_u32(&r);
			out->high = tl_get_u32(&r);
		} else {
			out->auth_stat = tl_get_u32(&r);
		}
		break;
	default:
		return -1;
	}
	return r.bad ? -1 : 0;
}

int tl_tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* a record goes out as mark + body: no Nagle wait for the body */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

static int send_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pfd, 1, 10000) <= 0)
			return -ETIMEDOUT;
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int tl_tcp_send_fragments(int fd, const void *rec, size_t len, const size_t *cuts,
			  size_t ncuts)
{
	const uint8_t *p = rec;
	size_t start = 0;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		uint32_t hdr = (uint32_t)(end - start);
		int r;

		if (i == ncuts)
			hdr |= 0x80000000u;
		hdr = htonl(hdr);
		r = send_all(fd, &hdr, 4);
		if (r == 0)
			r = send_all(fd, p + start, end - start);
		if (r < 0)
			return r;
		start = end;
	}
	return 0;
}

int tl_tcp_send_record(int fd, const void *rec, size_t len)
{
	return tl_tcp_send_fragments(fd, rec, len, NULL, 0);
}

static int recv_all(int fd, void *buf, size_t len, double deadline)
{
	uint8_t *p = buf;

	while (len > 0) {
		int ms = (int)((deadline - tl_now()) * 1000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (ms <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, ms) == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, 0);
		if (n == 0)
			return 1; /* EOF */
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t tl_tcp_recv_record(int fd, uint8_t **out, int timeout_ms)
{
	double deadline = tl_now() + timeout_ms / 1000.0;
	uint8_t *rec = NULL;
	size_t len = 0;
	bool last = false;

	*out = NULL;
	while (!last) {
		uint32_t hdr;
		size_t flen;
		uint8_t *nr;
		int r = recv_all(fd, &hdr, 4, deadline);

		if (r != 0) {
			free(rec);
			return r == 1 ? 0 : r;
		}
		hdr = ntohl(hdr);
		last = (hdr & 0x80000000u) != 0;
		flen = hdr & 0x7fffffffu;
		if (len + flen > (64u << 20)) {
			free(rec);
			return -EMSGSIZE;
		}
		nr = realloc(rec, len + flen + 1);
		if (!nr) {
			free(rec);
			return -ENOMEM;
		}
		rec = nr;
		r = recv_all(fd, rec + len, flen, deadline);
		if (r != 0) {
			free(rec);
			return r == 1 ? -ECONNRESET : r;
		}
		len += flen;
	}
	*out = rec;
	return (ssize_t)len;
}

int tl_tcp_wait_closed(int fd, int timeout_ms)
{
	double deadline = tl_now() + timeout_ms / 1000.0;
	uint8_t buf[4096];

	for (;;) {
		int ms = (int)((deadline - tl_now()) * 1000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (ms <= 0)
			return 0;
		if (poll(&pfd, 1, ms) == 0)
			return 0;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 1;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return 1; /* reset */
		/* Data (a reply?) is not a close; keep draining. */
	}
}

ssize_t tl_udp_call(int port, const void *req, size_t len, uint8_t *reply, size_t cap,
		    int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	double deadline = tl_now() + timeout_ms / 1000.0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint32_t xid;
	ssize_t ret = -ETIMEDOUT;

	if (fd < 0)
		return -errno;
	memcpy(&xid, req, 4);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, len, 0) != (ssize_t)len) {
		ret = -errno;
		goto out_close;
	}
	for (;;) {
		int ms = (int)((deadline - tl_now()) * 1000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (ms <= 0 || poll(&pfd, 1, ms) == 0)
			break;
		n = recv(fd, reply, cap, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n >= 4 && memcmp(reply, &xid, 4) == 0) {
			ret = n;
			break;
		}
	}
out_close:
	close(fd);
	return ret;
}

void tl_tcp_call(int fd, const struct tl_buf *req, uint8_t **rec, struct tl_reply *r)
{
	ssize_t n;

	ASSERTF(tl_tcp_send_record(fd, req->p, req->len) == 0, "send failed");
	n = tl_tcp_recv_record(fd, rec, 30000);
	ASSERTF(n > 0, "no reply record (%s)", n == 0 ? "connection closed" : strerror((int)-n));
	ASSERTF(tl_reply_parse(*rec, (size_t)n, r) == 0, "malformed reply record (%zd bytes)",
		n);
}

size_t tl_tcp_rpc(int fd, const struct tl_buf *req, uint8_t **rec, int timeout_ms)
{
	ssize_t n;

	ASSERTF(tl_tcp_send_record(fd, req->p, req->len) == 0, "send failed");
	n = tl_tcp_recv_record(fd, rec, timeout_ms);
	ASSERTF(n > 0, "no reply: %s", n < 0 ? strerror((int)-n) : "eof");
	return (size_t)n;
}

uint32_t tl_buf_xid(const struct tl_buf *b)
{
	uint32_t x;

	ASSERT(b->len >= 4);
	memcpy(&x, b->p, 4);
	return ntohl(x);
}

uint32_t tl_nfs_status(const uint8_t *rec, size_t len, uint32_t xid)
{
	struct tl_reply r;
	struct tl_rd rd;
	uint32_t st;

	ASSERTF(tl_reply_parse(rec, len, &r) == 0, "malformed reply record (%zu bytes)", len);
	ASSERT_EQ(r.xid, xid);
	ASSERTF(r.accepted && r.accept_stat == TL_SUCCESS, "accept_stat %u (accepted %d)",
		r.accept_stat, r.accepted);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	st = tl_get_u32(&rd);
	ASSERT(!rd.bad);
	return st;
}

uint32_t tl_raw_mnt(int fd, uint32_t xid, const char *path, uint8_t *fh, uint32_t cap)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec;
	uint32_t len;

	tl_put_call(&b, xid, 2, 100005 /* MOUNT */, 3, 1 /* MNT */, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, path, (uint32_t)strlen(path));
	tl_tcp_call(fd, &b, &rec, &r);
	ASSERTF(r.accepted && r.accept_stat == TL_SUCCESS,
		"MNT %s: accepted %d accept_stat %u reject_stat %u auth_stat %u", path, r.accepted,
		r.accept_stat, r.reject_stat, r.auth_stat);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	ASSERTF(tl_get_u32(&rd) == 0, "MNT %s: not MNT3_OK", path);
	len = tl_get_opaque(&rd, fh, cap);
	ASSERTF(!rd.bad && len > 0 && len <= cap, "MNT %s: handle of %u bytes", path, len);
	free(rec);
	tl_buf_free(&b);
	return len;
}
