/*
 * rpc.h - the ONC RPC layer (RFC 5531) between the transport and the
 * procedure tables: call-header and credential decoding, reply-header
 * encoding (server/rpc.c), and what server/dispatch.c and
 * server/transport.c share privately (the call wrapper, buffer pool and
 * connection references).
 *
 * rpc.c functions are pure (no I/O, no global state): any thread. The
 * dispatch/transport parts are loop-thread only unless a comment says
 * otherwise.
 */
#ifndef OVLNFSD_RPC_H
#define OVLNFSD_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <rpc/rpc.h>
#include <uv.h>

#include "ovlnfsd/drc.h"
#include "ovlnfsd/server.h"

#define ONFS_RPC_VERS 2
#define ONFS_RPC_MSG_CALL 0
#define ONFS_RPC_MSG_REPLY 1
#define ONFS_RPC_MAX_AUTH_BYTES 400   /* opaque_auth body limit */
#define ONFS_RPC_MAX_MACHINENAME 255

/* Largest reply header we encode (accepted PROG_MISMATCH: 8 words). */
#define ONFS_RPC_REPLY_HDR_MAX 32
/* Accepted SUCCESS header: xid, REPLY, MSG_ACCEPTED, verf(0,0), SUCCESS. */
#define ONFS_RPC_ACCEPTED_HDR_LEN 24

/* --- rpc.c: call header --- */

struct onfs_rpc_hdr {
	uint32_t xid;
	uint32_t rpcvers;
	uint32_t prog, vers, proc;
	struct onfs_cred cred;
	size_t args_off;  /* offset of the procedure arguments in the record */
};

enum onfs_rpc_verdict {
	ONFS_RPC_OK = 0,        /* header fine: look the program up */
	ONFS_RPC_DROP,          /* not a call or too short to answer: no reply */
	ONFS_RPC_BAD_RPCVERS,   /* answer MSG_DENIED RPC_MISMATCH 2..2 */
	ONFS_RPC_AUTH_ERROR,    /* answer MSG_DENIED AUTH_ERROR *auth_stat */
};

/*
 * Decode the call header of one record: xid, CALL, rpcvers, prog, vers,
 * proc, credential (AUTH_NONE, or AUTH_SYS with a machine name of at most
 * 255 bytes and at most 16 groups) and verifier (AUTH_NONE only). Fills *h
 * as far as it got (xid is valid for every verdict but DROP) and sets
 * *auth_stat (enum auth_stat) for ONFS_RPC_AUTH_ERROR.
 */
enum onfs_rpc_verdict onfs_rpc_decode_call(const uint8_t *rec, size_t len,
					   struct onfs_rpc_hdr *h, uint32_t *auth_stat);

/*
 * Whether the call came from a privileged source port (below 1024), the
 * test behind the "secure" export option; false when the address is
 * unknown. Any thread. Mechanism only: whether to require it is the
 * export's policy.
 */
bool onfs_call_secure_port(const struct onfs_call *c);
/* The client's source port (host order), 0 when unknown. Any thread. */
uint16_t onfs_call_peer_port(const struct onfs_call *c);

/* --- rpc.c: reply headers; each returns the bytes written or -ENOSPC --- */

/*
 * MSG_ACCEPTED with an AUTH_NONE verifier and accept_stat (enum
 * accept_stat); for PROG_MISMATCH, low and high follow (ignored otherwise).
 */
int onfs_rpc_encode_accepted(uint8_t *buf, size_t cap, uint32_t xid, uint32_t accept_stat,
			     uint32_t low, uint32_t high);
/* MSG_DENIED RPC_MISMATCH 2..2. */
int onfs_rpc_encode_rpc_mismatch(uint8_t *buf, size_t cap, uint32_t xid);
/* MSG_DENIED AUTH_ERROR auth_stat. */
int onfs_rpc_encode_auth_error(uint8_t *buf, size_t cap, uint32_t xid, uint32_t auth_stat);
/* Same as onfs_rpc_encode_accepted but onto an XDR_ENCODE stream. */
bool onfs_rpc_xdr_accepted(XDR *xdrs, uint32_t xid, uint32_t accept_stat, uint32_t low,
			   uint32_t high);

/* --- dispatch.c <-> transport.c --- */

#define ONFS_ARGS_INLINE 512

/*
 * What the transport needs per call besides struct onfs_call: the write or
 * send request and the bytes of the record mark and XDR padding. Every
 * struct onfs_call is the first member of one of these (container_of).
 */
struct onfs_call_ext {
	struct onfs_call c;
	union {
		uv_write_t write;      /* TCP */
		uv_udp_send_t send;    /* UDP */
	} req;
	uint8_t mark[4];               /* TCP record mark of the reply */
	/*
	 * Duplicate request cache (loop thread): the in-progress entry this
	 * call completes in after_work (not owned; NULL: not cached), and
	 * the link that parks a retransmit behind its running original.
	 */
	struct onfs_drc_entry *drc_entry;
	struct onfs_drc_waiter drc_wait;
	struct onfs_call_ext *next_free; /* pool free list (loop thread) */
	size_t data_cap;               /* bytes at c.data_buf; ONFS_DATA_POOL_SIZE: pooled */
	/* c.args points here when args_size fits: no malloc per call */
	union {
		max_align_t align;
		uint8_t b[ONFS_ARGS_INLINE];
	} args_inline;
};

/* A free list of calls and standard-size reply buffers (loop thread). */
#define ONFS_POOL_REPLY_SIZE (4096 + ONFS_RPC_REPLY_HDR_MAX)
#define ONFS_POOL_MAX_FREE 256

struct onfs_reply_buf {
	struct onfs_reply_buf *next;
};

/*
 * READ payloads above ONFS_DATA_POOL_MIN get a recycled buffer of
 * ONFS_DATA_POOL_SIZE bytes (already faulted in); workers take them, the
 * loop gives them back, hence the lock.
 */
#define ONFS_DATA_POOL_MIN (64 * 1024)
#define ONFS_DATA_POOL_SIZE (1024 * 1024)
#define ONFS_DATA_POOL_MAX 16

struct onfs_call_pool {
	struct onfs_call_ext *free_calls;    /* owned */
	struct onfs_reply_buf *free_replies; /* owned; ONFS_POOL_REPLY_SIZE each */
	unsigned nfree_calls, nfree_replies;
	size_t live;                         /* calls allocated and not yet freed */
	uv_mutex_t data_lock;                /* guards free_data, nfree_data */
	void *free_data[ONFS_DATA_POOL_MAX]; /* owned; ONFS_DATA_POOL_SIZE each */
	unsigned nfree_data;
};

int onfs_call_pool_init(struct onfs_call_pool *pool);
void onfs_call_pool_destroy(struct onfs_call_pool *pool);

/* Allocate a call (zeroed) for srv; NULL on ENOMEM. */
struct onfs_call *onfs_call_alloc(struct onfs_server *srv);

/* The transport's pool for srv, or NULL when running without a transport. */
struct onfs_call_pool *onfs_transport_pool(struct onfs_server *srv);
/* The transport's duplicate request cache, or NULL (none: calls run uncached). */
struct onfs_drc *onfs_transport_drc(struct onfs_server *srv);

/* A connection reference held by each TCP call (transport.c). */
void onfs_transport_conn_get(struct onfs_conn *conn);
void onfs_transport_conn_put(struct onfs_conn *conn);
/* Called by onfs_call_free once a call is gone (lets stop finish). */
void onfs_transport_call_gone(struct onfs_server *srv);

/* Run a call's procedure and build its reply in c->reply (worker or loop). */
void onfs_dispatch_run(struct onfs_call *c);

#endif
