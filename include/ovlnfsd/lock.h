/*
 * lock.h - the byte-range lock table of one export instance
 * (server/lock.c): advisory POSIX-style locks per owner, share
 * reservations, and the queue of blocked waiters. Pure bookkeeping in
 * memory: no I/O, no RPC, no knowledge of NLM's wire format.
 *
 * Keys are the bytes of a file's handle IDENTITY (onfs_node_lock_key),
 * which stay the same across copy-up and rename, so a lock follows the
 * file. An owner is (host, svid): host is a number the lock manager gives
 * each client (nlm.c), svid the client's process id; as in Linux's lockd
 * the opaque "oh" does not take part in lock ownership (it does for share
 * reservations, which have no svid).
 *
 * Thread-safe: every function takes the table's own mutex and never
 * blocks on anything else, so it may be called from the loop thread and
 * from pool workers alike. Ranges are inclusive [start, end];
 * ONFS_LOCK_EOF as end means "to the end of the file, however large".
 */
#ifndef OVLNFSD_LOCK_H
#define OVLNFSD_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ONFS_LOCK_EOF UINT64_MAX
#define ONFS_LOCK_KEY_MAX 64
/* Bounds per host and table: a client cannot make the table grow without limit. */
#define ONFS_LOCK_MAX_WAITERS_PER_HOST 64
#define ONFS_LOCK_MAX_LOCKS_PER_HOST 4096

enum onfs_locking { ONFS_LOCKING_ON = 0, ONFS_LOCKING_OFF, ONFS_LOCKING_LOCAL };

struct onfs_lock_table;

struct onfs_lock_key {
	uint8_t len;
	uint8_t b[ONFS_LOCK_KEY_MAX];
};

struct onfs_lock_owner {
	uint32_t host;
	uint32_t svid;
};

struct onfs_lock_range {
	uint64_t start, end; /* inclusive; end ONFS_LOCK_EOF: to end of file */
	bool excl;
};

/* A conflicting holder, for TEST's answer. */
struct onfs_lock_holder {
	struct onfs_lock_owner owner;
	struct onfs_lock_range range;
};

/*
 * A waiter that became the holder of its lock (after an unlock or a
 * release elsewhere): the caller sends the GRANTED callback and frees it
 * with onfs_lock_grant_free. data is the opaque the waiter was queued
 * with (now the caller's).
 */
struct onfs_lock_grant {
	struct onfs_lock_grant *next;
	struct onfs_lock_key key;
	struct onfs_lock_owner owner;
	struct onfs_lock_range range;
	void *data;
};

enum onfs_lock_result {
	ONFS_LOCK_GRANTED = 0,
	ONFS_LOCK_DENIED,   /* conflict, not queued */
	ONFS_LOCK_BLOCKED,  /* conflict, queued: a grant comes later */
	ONFS_LOCK_NOLOCKS,  /* a bound was reached */
};

/* data_free frees a waiter's data when the waiter goes away ungranted. */
struct onfs_lock_table *onfs_lock_table_new(enum onfs_locking mode,
					    void (*data_free)(void *data));
void onfs_lock_table_free(struct onfs_lock_table *t);
enum onfs_locking onfs_lock_table_mode(const struct onfs_lock_table *t);

/*
 * TEST: 0 when owner could take the lock, -EAGAIN with *h the first
 * conflicting lock otherwise.
 */
int onfs_lock_test(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		   const struct onfs_lock_owner *o, const struct onfs_lock_range *r,
		   struct onfs_lock_holder *h);

/*
 * LOCK: take (or convert: upgrade, downgrade, extend, shrink) owner's lock
 * over r. On a conflict with block set the request is queued with data
 * (BLOCKED; a repeat of a queued request is BLOCKED again and its data is
 * freed); data is freed on every other result.
 */
enum onfs_lock_result onfs_lock_lock(struct onfs_lock_table *t, const struct onfs_lock_key *k,
				     const struct onfs_lock_owner *o,
				     const struct onfs_lock_range *r, bool block, void *data,
				     struct onfs_lock_grant **grants);

/* UNLOCK owner's locks over r (none is fine); waiters now free are granted. */
void onfs_lock_unlock(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		      const struct onfs_lock_owner *o, const struct onfs_lock_range *r,
		      struct onfs_lock_grant **grants);

/* CANCEL a queued request (same owner, range and type). True when one was found. */
bool onfs_lock_cancel(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		      const struct onfs_lock_owner *o, const struct onfs_lock_range *r);

/* SHARE/UNSHARE (DOS share modes, bits 1 read, 2 write). 0 or -EAGAIN. */
int onfs_lock_share(struct onfs_lock_table *t, const struct onfs_lock_key *k, uint32_t host,
		    const void *oh, size_t ohlen, unsigned mode, unsigned access);
void onfs_lock_unshare(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		       uint32_t host, const void *oh, size_t ohlen);

/* Drop everything host holds or waits for (FREE_ALL, a reboot, a dead host). */
void onfs_lock_free_host(struct onfs_lock_table *t, uint32_t host,
			 struct onfs_lock_grant **grants);

/* Locks + waiters + shares of host in this table. */
size_t onfs_lock_host_count(struct onfs_lock_table *t, uint32_t host);

/* Free a list of grants (data included, with the table's data_free). */
void onfs_lock_grant_free(struct onfs_lock_table *t, struct onfs_lock_grant *g);

#endif
