/*
 * drc.h - the duplicate request cache (docs/architecture.md): a retransmitted
 * non-idempotent call is answered with the reply of its first execution,
 * and a retransmit that arrives while that first execution still runs
 * waits for it instead of running a second time.
 *
 * A call is identified by client address (IP and source port for UDP; IP
 * only for TCP, since a retransmit may come on a new connection), the
 * transport, xid, program, version, procedure, and the length and a keyed
 * checksum of its encoded arguments: never by xid alone, so another
 * client's reply (or another call that reuses an xid) is never replayed.
 *
 * Memory is bounded: at most max_entries entries and max_bytes bytes;
 * finished entries leave in LRU order and after max_age_ms. Entries whose
 * call still runs are never evicted (the transport's in-flight caps bound
 * them); when the cache is full of those, a new call simply runs uncached.
 *
 * Thread: the loop thread only (lookup before the call is queued, complete
 * in after_work), so there are no locks. No I/O; time comes from the
 * caller (uv_now), which keeps the logic testable on its own.
 */
#ifndef OVLNFSD_DRC_H
#define OVLNFSD_DRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ONFS_DRC_MAX_ENTRIES 4096
#define ONFS_DRC_MAX_BYTES (4u * 1024 * 1024)
#define ONFS_DRC_MAX_AGE_MS 120000
/* Replies up to this size live inside the entry (every cached NFSv3 reply). */
#define ONFS_DRC_INLINE 320

struct onfs_drc;
struct onfs_drc_entry;

/* Filled by onfs_drc_key_init; compared as a whole (no padding holes). */
struct onfs_drc_key {
	uint8_t addr[16];   /* IPv6, or IPv4 as ::ffff:a.b.c.d */
	uint16_t port;      /* UDP source port; 0 for TCP */
	uint16_t tcp;       /* 1 TCP, 0 UDP */
	uint32_t xid, prog, vers, proc;
	uint32_t args_len;
	uint64_t args_sum;  /* SipHash-2-4 of the encoded args, per-cache key */
};

/*
 * A call parked behind an in-progress original; embedded in the caller's
 * call object (no allocation). Handed back by onfs_drc_complete.
 */
struct onfs_drc_waiter {
	struct onfs_drc_waiter *next;
};

struct onfs_drc_limits {
	size_t max_entries; /* 0: ONFS_DRC_MAX_ENTRIES */
	size_t max_bytes;   /* 0: ONFS_DRC_MAX_BYTES */
	uint64_t max_age_ms;/* 0: ONFS_DRC_MAX_AGE_MS */
};

struct onfs_drc_stats {
	size_t entries, in_progress, bytes;
	uint64_t hits, waits, misses, evictions, uncached;
};

/* NULL limits: the defaults. 0 or -ENOMEM. */
int onfs_drc_new(const struct onfs_drc_limits *lim, struct onfs_drc **out);
/* Frees every entry; no entry may still be in progress. */
void onfs_drc_free(struct onfs_drc *drc);

/*
 * Whether replies of prog/vers/proc are cached: the NFSv3 procedures that
 * are not idempotent, as knfsd's RC_REPLBUFF list without WRITE (SETATTR,
 * CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK).
 */
bool onfs_drc_cacheable(uint32_t prog, uint32_t vers, uint32_t proc);

/*
 * Build a key. peer may be NULL (unknown address: all zero). args are the
 * bytes the argument decoder consumed.
 */
void onfs_drc_key_init(const struct onfs_drc *drc, struct onfs_drc_key *k,
		       const struct sockaddr *peer, bool tcp, uint32_t xid, uint32_t prog,
		       uint32_t vers, uint32_t proc, const void *args, size_t args_len);

enum onfs_drc_verdict {
	/*
	 * Not seen: run the call. *entry is the new in-progress entry to pass
	 * to onfs_drc_complete, or NULL when the cache is full (run uncached).
	 */
	ONFS_DRC_MISS,
	/* Answered before: the reply is *reply, *reply_len bytes, valid until the next DRC call. */
	ONFS_DRC_REPLAY,
	/* The original still runs: waiter is parked and comes back from onfs_drc_complete. */
	ONFS_DRC_WAIT,
};

enum onfs_drc_verdict onfs_drc_lookup(struct onfs_drc *drc, const struct onfs_drc_key *k,
				      uint64_t now_ms, struct onfs_drc_waiter *waiter,
				      struct onfs_drc_entry **entry, const uint8_t **reply,
				      size_t *reply_len);

/*
 * The original call of entry has its reply (reply_len 0: it produced none
 * and is dropped; the entry goes away so that the next retransmit runs).
 * Keeps a copy of the reply (if it fits the byte cap; else the entry goes
 * away) and returns the parked waiters, oldest first; the caller answers
 * each with the reply it passed here (or drops them when there is none).
 */
struct onfs_drc_waiter *onfs_drc_complete(struct onfs_drc *drc, struct onfs_drc_entry *entry,
					  const uint8_t *reply, size_t reply_len,
					  uint64_t now_ms);

void onfs_drc_get_stats(const struct onfs_drc *drc, struct onfs_drc_stats *st);

#endif
