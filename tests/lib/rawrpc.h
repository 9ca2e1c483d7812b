/*
 * rawrpc.h - hand-built ONC RPC call records over plain TCP and UDP
 * sockets, for tests that must send what no well-behaved client sends
 * (bad versions, bad credentials, garbage arguments, odd fragmenting,
 * oversize records) and read the exact reply codes.
 *
 * No libnfs, no rpcgen, no libtirpc: bytes are written by hand, big endian.
 * Runs in the test process only.
 */
#ifndef OVLNFSD_TEST_RAWRPC_H
#define OVLNFSD_TEST_RAWRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Growable byte buffer for an XDR record. */
struct tl_buf {
	uint8_t *p;
	size_t len, cap;
};

void tl_buf_free(struct tl_buf *b);
void tl_put_u32(struct tl_buf *b, uint32_t v);
void tl_put_u64(struct tl_buf *b, uint64_t v);
/* Variable-length opaque/string: length, bytes, zero padding to 4. */
void tl_put_opaque(struct tl_buf *b, const void *data, uint32_t len);
/* Raw bytes, no length, no padding. */
void tl_put_bytes(struct tl_buf *b, const void *data, size_t len);

#define TL_AUTH_NONE 0
#define TL_AUTH_SYS 1

/*
 * Append a CALL header. flavor TL_AUTH_SYS writes an AUTH_SYS credential
 * (stamp, "test", uid, gid, ngroups gids 1000..) ; TL_AUTH_NONE an empty one.
 */
void tl_put_call(struct tl_buf *b, uint32_t xid, uint32_t rpcvers, uint32_t prog,
		 uint32_t vers, uint32_t proc, uint32_t flavor, uint32_t uid, uint32_t gid,
		 uint32_t ngroups);

/* A parsed reply. */
struct tl_reply {
	uint32_t xid;
	bool accepted;        /* MSG_ACCEPTED */
	uint32_t accept_stat; /* SUCCESS 0, PROG_UNAVAIL 1, PROG_MISMATCH 2,
				 PROC_UNAVAIL 3, GARBAGE_ARGS 4, SYSTEM_ERR 5 */
	uint32_t reject_stat; /* RPC_MISMATCH 0, AUTH_ERROR 1 */
	uint32_t low, high;   /* PROG_MISMATCH / RPC_MISMATCH */
	uint32_t auth_stat;   /* AUTH_ERROR */
	const uint8_t *body;  /* after accept_stat SUCCESS; points into the record */
	size_t body_len;
};

#define TL_SUCCESS 0
#define TL_PROG_UNAVAIL 1
#define TL_PROG_MISMATCH 2
#define TL_PROC_UNAVAIL 3
#define TL_GARBAGE_ARGS 4
#define TL_RPC_MISMATCH 0
#define TL_AUTH_ERROR 1
#define TL_AUTH_BADCRED 1
#define TL_AUTH_TOOWEAK 5

/* Returns 0, or -1 when the record is not a well-formed reply. */
int tl_reply_parse(const uint8_t *rec, size_t len, struct tl_reply *r);

/* Reader over a reply body. Reads past the end set ->bad. */
struct tl_rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};
uint32_t tl_get_u32(struct tl_rd *r);
uint64_t tl_get_u64(struct tl_rd *r);
/* Variable opaque: returns its length, copies up to cap bytes into out. */
uint32_t tl_get_opaque(struct tl_rd *r, void *out, size_t cap);

/* TCP to 127.0.0.1:port; -errno. */
int tl_tcp_connect(int port);
/* One record as a single last fragment. 0 or -errno. */
int tl_tcp_send_record(int fd, const void *rec, size_t len);
/*
 * One record split into fragments at the given cut offsets (ascending,
 * inside (0,len)); the last fragment has the last-fragment bit.
 */
int tl_tcp_send_fragments(int fd, const void *rec, size_t len, const size_t *cuts,
			  size_t ncuts);
/*
 * Read one whole record (all fragments) within timeout_ms. Returns its
 * length with *out malloc'd, 0 on orderly EOF, -errno (-ETIMEDOUT).
 */
ssize_t tl_tcp_recv_record(int fd, uint8_t **out, int timeout_ms);
/* Wait for the peer to close: 1 closed (EOF or reset), 0 still open after timeout. */
int tl_tcp_wait_closed(int fd, int timeout_ms);

/* One UDP datagram call and its reply (matching xid). Length or -errno. */
ssize_t tl_udp_call(int port, const void *req, size_t len, uint8_t *reply, size_t cap,
		    int timeout_ms);

/* Call over an existing TCP connection and parse the reply (asserts). */
void tl_tcp_call(int fd, const struct tl_buf *req, uint8_t **rec, struct tl_reply *r);

/*
 * Send req over TCP and read its reply record whole within timeout_ms
 * (asserts that one came). Returns its length; *rec is malloc'd.
 */
size_t tl_tcp_rpc(int fd, const struct tl_buf *req, uint8_t **rec, int timeout_ms);

/* The xid of a built call record (its first word). */
uint32_t tl_buf_xid(const struct tl_buf *b);

/*
 * The NFS status (the first word of the body) of an accepted SUCCESS reply
 * to xid; asserts that the record is one.
 */
uint32_t tl_nfs_status(const uint8_t *rec, size_t len, uint32_t xid);

/*
 * MOUNT v3 MNT of path over an existing TCP connection (AUTH_SYS root,
 * the given xid); asserts MNT3_OK and a handle of 1..cap bytes, which it
 * copies into fh. Returns the handle's length.
 */
uint32_t tl_raw_mnt(int fd, uint32_t xid, const char *path, uint8_t *fh, uint32_t cap);

#endif
