/*
 * nlm.h - the lock manager of one server: NLM versions 1, 3 and 4
 * (server/nlm.c), the status monitor NSM (server/nsm.c: hosts, their
 * records in the state directory, the state number, the grace period,
 * SM_NOTIFY in both directions) and the outgoing calls both make
 * (server/rpcout.c: GRANTED callbacks, _RES replies to _MSG calls,
 * SM_NOTIFY, each found through the peer's portmapper).
 *
 * Threads: procedures that name a file run on pool workers (resolving a
 * handle may touch the disk; recording a new lock holder writes and syncs
 * a file). The lock tables (lock.h) are in memory under their own mutex;
 * nothing here blocks the loop. Outgoing calls are queued from any thread
 * and sent by the loop (uv_async_t, libuv UDP sockets, a retransmit
 * timer).
 */
#ifndef OVLNFSD_NLM_H
#define OVLNFSD_NLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>
#include <uv.h>

#include "ovlnfsd/lock.h"
#include "ovlnfsd/server.h"

#define ONFS_NLM_PROG_NUM 100021
#define ONFS_NSM_PROG_NUM 100024
#define ONFS_NLM_DEFAULT_GRACE 90
#define ONFS_NLM_MAX_HOSTS 1024
#define ONFS_NLM_NAMES_PER_ADDR 16
#define ONFS_NLM_NAME_MAX 1024

extern const struct onfs_program onfs_nlm1_program; /* nlm.c */
extern const struct onfs_program onfs_nlm3_program;
extern const struct onfs_program onfs_nlm4_program;
extern const struct onfs_program onfs_nsm1_program; /* nsm.c */

/* A client of the lock manager: (caller_name, address). Never freed while serving. */
struct onfs_nlm_host {
	struct onfs_nlm_host *next;
	uint32_t id;
	char name[ONFS_NLM_NAME_MAX + 1];
	struct sockaddr_storage addr; /* port 0 */
	socklen_t addrlen;
	pthread_mutex_t mu;   /* held across "record the holder" and the lock it protects */
	bool monitored;       /* a record is in STATE/nsm/sm/ */
};

/* What to do when an outgoing call ends. */
enum onfs_out_kind {
	ONFS_OUT_RES = 0,
	ONFS_OUT_GRANTED,
	ONFS_OUT_NOTIFY,
	ONFS_OUT_CONFIRM, /* not a call: stop the GRANTED of (table, key, owner) */
};

/* An outgoing call, built on any thread and handed to onfs_rpcout_submit. */
struct onfs_out {
	struct onfs_out *next;
	enum onfs_out_kind kind;
	struct sockaddr_storage dst;      /* the peer; port 0: ask its portmapper */
	socklen_t dstlen;
	struct sockaddr_storage fallback; /* where the request came from over UDP; family 0: none */
	socklen_t fallbacklen;
	uint32_t prog, vers, proc;
	/* GRANTED: the lock to release when the client never takes it */
	struct onfs_lock_table *table;
	struct onfs_lock_key key;
	struct onfs_lock_owner owner;
	struct onfs_lock_range range;
	uint8_t cookie[8];
	/* NOTIFY: the record to remove once told (malloc'd path, or NULL) */
	char *record;
	/* loop-side state (rpcout.c) */
	uint32_t xid;
	int tries;
	uint64_t due;          /* uv_now of the next retransmit */
	bool asking_port;
	bool unreachable;      /* GRANTED with no address to call: wait for a poll */
	size_t len;
	uint8_t args[];        /* XDR-encoded arguments */
};

struct onfs_nlm {
	struct onfs_server *srv;
	pthread_mutex_t mu;           /* hosts, outbox */
	struct onfs_nlm_host *hosts;
	uint32_t nhosts, next_host;
	int64_t grace_end_ms;         /* CLOCK_MONOTONIC ms; 0: no grace period */
	int32_t state;                /* our NSM state number (odd while up) */
	char *dir;                    /* STATE/nsm */
	char myname[256];             /* mon_name and caller_name we send */
	/* loop thread */
	uv_async_t async;
	struct onfs_out *outbox;      /* under mu */
	uv_udp_t udp4, udp6;
	bool have6, started;
	uv_timer_t timer;
	struct onfs_out *pending;
	uint32_t next_xid;
	uint32_t next_cookie;
};

/* --- nsm.c --- */
/*
 * Main thread, before serving: read and bump the state number, move the
 * recorded holders aside for SM_NOTIFY, open the grace period when there
 * were any, log what locking each export has, and start rpcout. 0 or -1
 * with err naming the path at fault.
 */
int onfs_nlm_start(struct onfs_server *srv, char *err, size_t errlen);
/* Loop thread, at stop: close the sockets and timer, mark the state number even. */
void onfs_nlm_stop(struct onfs_server *srv);
/* After the loop has ended: free what is left. */
void onfs_nlm_free(struct onfs_server *srv);
/* Any thread. */
bool onfs_nlm_in_grace(struct onfs_nlm *nlm);
/*
 * Copy a peer address, an IPv4-mapped IPv6 one (a dual-stack listener's
 * view of an IPv4 client) turned into plain IPv4, so that it compares
 * equal to the client's other connections and can be called back.
 */
void onfs_nlm_norm_addr(const struct sockaddr *in, socklen_t len, struct sockaddr_storage *out,
			socklen_t *outlen);
/* Same address (the ports are not compared). */
bool onfs_nlm_addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b);
/* The host for (name, peer), created on first use; NULL when too many. Any thread. */
struct onfs_nlm_host *onfs_nlm_host_get(struct onfs_nlm *nlm, const char *name,
					const struct sockaddr *peer, socklen_t len);
/* Record h as a lock holder (write and sync its file). Worker; h->mu held. 0 or -errno. */
int onfs_nsm_monitor(struct onfs_nlm *nlm, struct onfs_nlm_host *h);
/* When h holds nothing any more in any export, remove its record. Worker. */
void onfs_nsm_maybe_unmonitor(struct onfs_nlm *nlm, struct onfs_nlm_host *h);
/* Release everything h holds in every export (reboot, FREE_ALL). Worker. */
void onfs_nlm_free_host(struct onfs_nlm *nlm, struct onfs_nlm_host *h);

/* --- nlm.c --- */
/* Send the GRANTED callbacks of a list of grants (any thread); frees the list. */
void onfs_nlm_send_grants(struct onfs_nlm *nlm, struct onfs_lock_table *t,
			  struct onfs_lock_grant *g);

/* --- rpcout.c (loop-side engine; submit from any thread) --- */
int onfs_rpcout_start(struct onfs_nlm *nlm, char *err, size_t errlen);
void onfs_rpcout_stop(struct onfs_nlm *nlm);
/* Takes ownership of o. */
void onfs_rpcout_submit(struct onfs_nlm *nlm, struct onfs_out *o);
/* A new outgoing call with room for len argument bytes (zeroed); NULL on ENOMEM. */
struct onfs_out *onfs_out_new(size_t len);
void onfs_out_free(struct onfs_out *o);
/* GRANTED_RES arrived (loop thread): the callback with this cookie is answered. */
void onfs_rpcout_granted_res(struct onfs_nlm *nlm, const uint8_t *cookie, size_t len,
			     uint32_t stat);

#endif
