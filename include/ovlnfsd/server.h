/*
 * server.h - the objects the request path shares: the server, one RPC call,
 * the per-program procedure tables.
 *
 * Threads: struct onfs_server and everything reached from it is owned by the
 * loop thread, except the const config and the exports (thread-safe, used by
 * workers). A struct onfs_call belongs to the loop until it is queued, to one
 * worker while its procedure runs, and to the loop again from after_work on.
 * Workers never touch sockets or loop objects.
 */
#ifndef OVLNFSD_SERVER_H
#define OVLNFSD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <rpc/rpc.h>
#include <uv.h>

#include "ovlnfsd/config.h"

struct onfs_export;
struct onfs_conn;
struct onfs_transport;
struct onfs_nlm;

#define ONFS_MAX_GROUPS 16
#define ONFS_MAX_EXPORTS 8

/* RPC auth flavors we use (RFC 5531). */
#define ONFS_AUTH_NONE 0
#define ONFS_AUTH_SYS 1

/* The caller's identity from the RPC credential (before squash). */
struct onfs_cred {
	uint32_t flavor; /* ONFS_AUTH_NONE or ONFS_AUTH_SYS */
	uint32_t uid, gid;
	uint32_t ngroups;
	uint32_t groups[ONFS_MAX_GROUPS];
	/* AUTH_SYS machine name (not NUL-terminated), for {host} instances */
	uint32_t machine_len;
	char machine[255];
};

struct onfs_server {
	uv_loop_t *loop;                  /* not owned (main.c) */
	const struct onfs_config *cfg;    /* not owned (main.c) */
	struct onfs_export *exports[ONFS_MAX_EXPORTS]; /* owned; closed by main.c */
	size_t nexports;
	uint16_t port;                    /* bound NFS/MOUNT/portmap port */
	struct onfs_transport *transport; /* owned by transport.c */
	struct onfs_nlm *nlm;             /* owned by nsm.c: the lock manager (nlm.h) */
	bool stopping;
};

struct onfs_call;

/*
 * One procedure. The dispatcher decodes args with xdr_args into a zeroed
 * buffer of args_size bytes, runs run() on a pool worker, and frees the
 * args with xdr_free afterwards; procedures never free their args.
 */
struct onfs_proc {
	const char *name;
	xdrproc_t xdr_args;
	size_t args_size;
	/*
	 * Encode the result body (everything after the accepted-reply header)
	 * into xdrs. Returns false only when encoding failed (the dispatcher
	 * then answers SYSTEM_ERR). Runs on a worker unless on_loop is set.
	 */
	bool (*run)(struct onfs_call *c, void *args, XDR *xdrs);
	/* Bytes the encoded result may need; NULL means 4096. */
	size_t (*reply_size)(const void *args);
	bool on_loop;      /* cheap and non-blocking: run on the loop thread */
	/*
	 * Optional, loop thread: answer from memory alone (caches) and return
	 * true, or encode nothing and return false; the call then goes to a
	 * worker and run() as usual. Never touches the filesystem.
	 */
	bool (*run_cached)(struct onfs_call *c, void *args, XDR *xdrs);
	bool auth_none_ok; /* AUTH_NONE accepted (NULL, MOUNT EXPORT, portmap) */
};

struct onfs_program {
	const char *name;
	uint32_t prog;
	uint32_t vers;     /* the one version served; others: PROG_MISMATCH vers..vers */
	const struct onfs_proc *procs; /* indexed by procedure number */
	uint32_t nprocs;
};

extern const struct onfs_program onfs_nfs3_program;   /* nfs3.c */
extern const struct onfs_program onfs_mount3_program; /* mount.c */
extern const struct onfs_program onfs_pmap2_program;  /* portmap.c */

/*
 * One RPC call, from its decoded header to its written reply. Allocated by
 * the transport per record, freed (buffers back to the pool) once the
 * reply is written or dropped.
 */
struct onfs_call {
	uv_work_t work;              /* pool hop; container_of gives the call */
	struct onfs_server *srv;     /* not owned */
	struct onfs_conn *conn;      /* counted reference; NULL for UDP */
	struct sockaddr_storage peer;/* client address (TCP and UDP) */
	int peer_len;
	uint16_t local_port;         /* which listener received it */
	uint64_t t_start;            /* uv_hrtime at arrival (metrics.c latency) */
	uint32_t xid, prog, vers, proc;
	struct onfs_cred cred;
	const struct onfs_proc *p;   /* not owned (static table) */
	void *args;                  /* owned; decoded args (xdr_free + free) */
	/*
	 * Set by a procedure that finds the caller's credential too weak for
	 * the export its handle names (a `secure` export and a source port
	 * >= 1024): the reply becomes AUTH_ERROR with this auth_stat.
	 */
	uint32_t auth_deny;
	/*
	 * The per-client instance this call is inside (server/instance.c),
	 * counted in until the procedure returns; NULL for plain exports.
	 */
	struct onfs_export *inst;

	uint8_t *rec;                /* owned; the whole record */
	size_t rec_len;
	size_t args_off;             /* where the procedure's args begin in rec */

	uint8_t *reply;              /* owned; RPC reply header + result body */
	size_t reply_cap, reply_len;
	/*
	 * Payload written after reply[0..reply_len) without a copy (READ
	 * data); the procedure encodes the opaque's length itself, the
	 * transport adds the XDR padding. data_buf owns the memory.
	 */
	void *data_buf;              /* owned; freed with the call */
	const uint8_t *data;
	size_t data_len;
};

/* Procedure helpers for READ: get a payload buffer of len bytes. */
void *onfs_call_data_alloc(struct onfs_call *c, size_t len);

/* The export a handle names, or NULL (the caller answers STALE/BADHANDLE). */
struct onfs_export *onfs_server_export_by_id(struct onfs_server *srv, uint16_t id);

/* --- instance.c: calls and per-client instances --- */
/*
 * The export a handle's id names for this call: a plain export, or the
 * instance of a templated line the caller belongs to (counted in; a
 * mutating procedure creates its upper first). NULL with *err: -ESTALE, or
 * -EXDEV for a second handle of another instance in one call.
 */
struct onfs_export *onfs_call_export(struct onfs_call *c, uint16_t id, int *err);
/*
 * Loop thread (run_cached): the same without waiting, for calls answered
 * from memory. A plain export is not counted in (its caches are flushed
 * under a reset, never freed); an instance is (c->inst, left by
 * onfs_call_leave), since an idle one is deactivated and its caches
 * freed. NULL: let a worker answer.
 */
struct onfs_export *onfs_call_export_cached(struct onfs_call *c, uint16_t id);
/* MNT of a templated line (mount.c); name: the {name} component or NULL. */
int onfs_call_mount_instance(struct onfs_call *c, struct onfs_export *line, const char *name,
			     struct onfs_export **out);
/* The procedure returned: leave the instance (dispatch.c). */
void onfs_call_leave(struct onfs_call *c);
/* Count the call into a plain export (MNT, NLM); onfs_call_leave at its end. */
int onfs_call_enter_export(struct onfs_call *c, struct onfs_export *ex);

/* --- transport.c --- */
/* Bind and listen (TCP+UDP on cfg listen, and the portmap listener). */
int onfs_transport_start(struct onfs_server *srv, char *err, size_t errlen);
/* Stop accepting; close all connections once in-flight calls finish. */
void onfs_transport_stop(struct onfs_server *srv);
/*
 * Loop thread: run c on the worker pool, now if a worker is free, else
 * when its connection's turn comes (round-robin between connections, so
 * that one connection's 64 queued calls do not stand before another's).
 * after runs on the loop once work has run, as with uv_queue_work.
 */
int onfs_transport_queue_work(struct onfs_call *c, uv_work_cb work, uv_after_work_cb after);

/* --- dispatch.c --- */
/*
 * Handle one complete record (loop thread). Takes ownership of rec. The
 * reply comes back through onfs_transport_send_reply (loop thread).
 */
void onfs_dispatch_record(struct onfs_server *srv, struct onfs_conn *conn,
			  const struct sockaddr *peer, int peer_len, uint16_t local_port,
			  uint8_t *rec, size_t rec_len);
void onfs_transport_send_reply(struct onfs_call *c);
void onfs_call_free(struct onfs_call *c);

#endif
