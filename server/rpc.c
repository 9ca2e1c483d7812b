/*
 * rpc.c - ONC RPC v2 call-header and credential decoding, reply-header
 * encoding (RFC 5531).
 *
 * Owns: nothing (pure functions over caller buffers).
 * Thread: any; the loop thread decodes headers, workers encode the
 * accepted header in front of their results.
 * Never: allocates, does I/O, or trusts a length from the wire before
 * checking it against the bytes present and the protocol limits.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <rpc/rpc.h>

#include "ovlnfsd/rpc.h"

/* Big-endian reader over the record; every read checks the bytes left. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
	     r->p[3];
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
	if (r->left < n)
		return false;
	r->p += n;
	r->left -= n;
	return true;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/*
 * AUTH_SYS body (RFC 5531 appendix A): stamp, machinename<255>, uid, gid,
 * gids<16>. Trailing bytes inside the body are tolerated.
 */
static bool parse_auth_sys(const uint8_t *body, size_t len, struct onfs_cred *cred)
{
	struct rd r = { body, len };
	uint32_t stamp, namelen, n, i;

	if (!rd_u32(&r, &stamp) || !rd_u32(&r, &namelen))
		return false;
	if (namelen > ONFS_RPC_MAX_MACHINENAME || namelen > sizeof(cred->machine) ||
	    r.left < pad4(namelen))
		return false;
	/* kept for {host} instances (server/instance.c) */
	memcpy(cred->machine, r.p, namelen);
	cred->machine_len = namelen;
	if (!rd_skip(&r, pad4(namelen)))
		return false;
	if (!rd_u32(&r, &cred->uid) || !rd_u32(&r, &cred->gid) || !rd_u32(&r, &n))
		return false;
	if (n > ONFS_MAX_GROUPS)
		return false;
	for (i = 0; i < n; i++)
		if (!rd_u32(&r, &cred->groups[i]))
			return false;
	cred->ngroups = n;
	cred->flavor = ONFS_AUTH_SYS;
	return true;
}

enum onfs_rpc_verdict onfs_rpc_decode_call(const uint8_t *rec, size_t len,
					   struct onfs_rpc_hdr *h, uint32_t *auth_stat)
{
	struct rd r = { rec, len };
	uint32_t mtype, flavor, blen, vflavor, vlen;
	const uint8_t *body;
	enum onfs_rpc_verdict v = ONFS_RPC_DROP;

	memset(h, 0, sizeof(*h));
	*auth_stat = AUTH_OK;

	if (!rd_u32(&r, &h->xid) || !rd_u32(&r, &mtype) || mtype != ONFS_RPC_MSG_CALL)
		goto out;
	if (!rd_u32(&r, &h->rpcvers))
		goto out;
	if (h->rpcvers != ONFS_RPC_VERS) {
		v = ONFS_RPC_BAD_RPCVERS;
		goto out;
	}
	if (!rd_u32(&r, &h->prog) || !rd_u32(&r, &h->vers) || !rd_u32(&r, &h->proc))
		goto out;

	/* From here on the caller can be told what is wrong. */
	v = ONFS_RPC_AUTH_ERROR;
	*auth_stat = AUTH_BADCRED;
	if (!rd_u32(&r, &flavor) || !rd_u32(&r, &blen))
		goto out;
	if (blen > ONFS_RPC_MAX_AUTH_BYTES || r.left < pad4(blen))
		goto out;
	body = r.p;
	rd_skip(&r, pad4(blen));
	switch (flavor) {
	case ONFS_AUTH_NONE:
		h->cred.flavor = ONFS_AUTH_NONE;
		break;
	case ONFS_AUTH_SYS:
		if (!parse_auth_sys(body, blen, &h->cred))
			goto out;
		break;
	case 2: /* AUTH_SHORT: we keep no shorthand; the client must resend in full */
		*auth_stat = AUTH_REJECTEDCRED;
		goto out;
	default: /* AUTH_DH, RPCSEC_GSS, ...: not served */
		goto out;
	}

	*auth_stat = AUTH_BADVERF;
	if (!rd_u32(&r, &vflavor) || !rd_u32(&r, &vlen))
		goto out;
	if (vflavor != ONFS_AUTH_NONE || vlen > ONFS_RPC_MAX_AUTH_BYTES ||
	    !rd_skip(&r, pad4(vlen)))
		goto out;

	*auth_stat = AUTH_OK;
	h->args_off = len - r.left;
	v = ONFS_RPC_OK;
out:
	return v;
}

uint16_t onfs_call_peer_port(const struct onfs_call *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;

	if (c->peer_len <= 0)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

bool onfs_call_secure_port(const struct onfs_call *c)
{
	uint16_t port = onfs_call_peer_port(c);

	/* port 0 is no source port a client can send from: unknown */
	return port > 0 && port < 1024;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int put_words(uint8_t *buf, size_t cap, const uint32_t *w, size_t n)
{
	size_t i;

	if (cap < n * 4)
		return -ENOSPC;
	for (i = 0; i < n; i++)
		put_u32(buf + 4 * i, w[i]);
	return (int)(n * 4);
}

int onfs_rpc_encode_accepted(uint8_t *buf, size_t cap, uint32_t xid, uint32_t accept_stat,
			     uint32_t low, uint32_t high)
{
	uint32_t w[8] = { xid, ONFS_RPC_MSG_REPLY, MSG_ACCEPTED, ONFS_AUTH_NONE, 0,
			  accept_stat, low, high };

	return put_words(buf, cap, w, accept_stat == PROG_MISMATCH ? 8 : 6);
}

int onfs_rpc_encode_rpc_mismatch(uint8_t *buf, size_t cap, uint32_t xid)
{
	uint32_t w[6] = { xid, ONFS_RPC_MSG_REPLY, MSG_DENIED, RPC_MISMATCH,
			  ONFS_RPC_VERS, ONFS_RPC_VERS };

	return put_words(buf, cap, w, 6);
}

int onfs_rpc_encode_auth_error(uint8_t *buf, size_t cap, uint32_t xid, uint32_t auth_stat)
{
	uint32_t w[5] = { xid, ONFS_RPC_MSG_REPLY, MSG_DENIED, AUTH_ERROR, auth_stat };

	return put_words(buf, cap, w, 5);
}

bool onfs_rpc_xdr_accepted(XDR *xdrs, uint32_t xid, uint32_t accept_stat, uint32_t low,
			   uint32_t high)
{
	u_int w[8] = { xid, ONFS_RPC_MSG_REPLY, MSG_ACCEPTED, ONFS_AUTH_NONE, 0, accept_stat,
		       low, high };
	size_t i, n = accept_stat == PROG_MISMATCH ? 8 : 6;

	for (i = 0; i < n; i++)
		if (!xdr_u_int(xdrs, &w[i]))
			return false;
	return true;
}
