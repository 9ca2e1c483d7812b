/*
 * drc.c - the duplicate request cache (see include/ovlnfsd/drc.h).
 *
 * Owns: struct onfs_drc, its entries (a fixed hash table of chains, an LRU
 * list of finished entries, a free list) and the reply copies.
 * Thread: the loop thread only; nothing here locks.
 * Never: does I/O, evicts an entry whose call still runs, or frees a
 * parked waiter (waiters belong to the caller and only pass through).
 *
 * Memory: entries are allocated on demand up to max_entries and recycled
 * through the free list, so a busy server does not malloc per call; a
 * reply above ONFS_DRC_INLINE bytes (none of the cached NFSv3 replies in
 * practice) gets its own allocation, counted in bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <netinet/in.h>

#include "ovlnfsd/drc.h"
#include "ovlnfsd/siphash.h"

/* RFC 1813 program and procedure numbers (no rpcgen header here). */
#define DRC_PROG_NFS 100003
#define DRC_NFS_VERS 3

struct onfs_drc_entry {
	struct onfs_drc_key key;
	uint32_t bucket;
	struct onfs_drc_entry *hnext;              /* bucket chain */
	struct onfs_drc_entry *lru_prev, *lru_next; /* finished entries, oldest first */
	uint64_t stamp_ms;                         /* finished or last replayed */
	bool done;
	struct onfs_drc_waiter *waiters, *waiters_tail; /* not owned */
	uint8_t *reply;                            /* inline_reply or owned heap copy */
	size_t reply_len;
	uint8_t inline_reply[ONFS_DRC_INLINE];
};

struct onfs_drc {
	struct onfs_drc_limits lim;
	uint8_t sipkey[16];
	struct onfs_drc_entry **buckets;  /* owned array; chains are owned */
	uint32_t nbuckets;               /* power of two */
	struct onfs_drc_entry *lru_head, *lru_tail;
	struct onfs_drc_entry *free_list; /* owned; linked by hnext */
	size_t nentries, nallocated, in_progress, bytes;
	struct onfs_drc_stats st;
};

bool onfs_drc_cacheable(uint32_t prog, uint32_t vers, uint32_t proc)
{
	/*
	 * Bit per NFSv3 procedure: SETATTR 2, CREATE 8, MKDIR 9, SYMLINK 10,
	 * MKNOD 11, REMOVE 12, RMDIR 13, RENAME 14, LINK 15. knfsd also keeps
	 * WRITE replies; a replayed WRITE rewrites the same bytes, so we do
	 * not spend a checksum of up to 1 MiB per WRITE on it.
	 */
	static const uint32_t mask = 1u << 2 | 1u << 8 | 1u << 9 | 1u << 10 | 1u << 11 |
				     1u << 12 | 1u << 13 | 1u << 14 | 1u << 15;

	return prog == DRC_PROG_NFS && vers == DRC_NFS_VERS && proc < 32 &&
	       (mask >> proc & 1u);
}

int onfs_drc_new(const struct onfs_drc_limits *lim, struct onfs_drc **out)
{
	struct onfs_drc *drc;
	uint32_t n = 1;

	*out = NULL;
	drc = calloc(1, sizeof(*drc));
	if (!drc)
		return -ENOMEM;
	if (lim)
		drc->lim = *lim;
	if (!drc->lim.max_entries)
		drc->lim.max_entries = ONFS_DRC_MAX_ENTRIES;
	if (!drc->lim.max_bytes)
		drc->lim.max_bytes = ONFS_DRC_MAX_BYTES;
	if (!drc->lim.max_age_ms)
		drc->lim.max_age_ms = ONFS_DRC_MAX_AGE_MS;
	while (n < drc->lim.max_entries && n < (1u << 20))
		n <<= 1;
	drc->nbuckets = n;
	drc->buckets = calloc(n, sizeof(*drc->buckets));
	if (!drc->buckets) {
		free(drc);
		return -ENOMEM;
	}
	/*
	 * A secret checksum key: a client cannot build two different argument
	 * blocks that collide on purpose. Without randomness a fixed key still
	 * gives a checksum, which is all knfsd has.
	 */
	if (getrandom(drc->sipkey, sizeof(drc->sipkey), GRND_NONBLOCK) != sizeof(drc->sipkey))
		memcpy(drc->sipkey, "ovlnfsd-drc-key!", sizeof(drc->sipkey));
	*out = drc;
	return 0;
}

static void reply_drop(struct onfs_drc *drc, struct onfs_drc_entry *e)
{
	if (e->reply && e->reply != e->inline_reply) {
		free(e->reply);
		drc->bytes -= e->reply_len;
	}
	e->reply = NULL;
	e->reply_len = 0;
}

void onfs_drc_free(struct onfs_drc *drc)
{
	struct onfs_drc_entry *e, *next;
	uint32_t i;

	if (!drc)
		return;
	for (i = 0; i < drc->nbuckets; i++) {
		for (e = drc->buckets[i]; e; e = next) {
			next = e->hnext;
			reply_drop(drc, e);
			free(e);
		}
	}
	for (e = drc->free_list; e; e = next) {
		next = e->hnext;
		free(e);
	}
	free(drc->buckets);
	free(drc);
}

static void put_addr(struct onfs_drc_key *k, const struct sockaddr *peer)
{
	if (!peer)
		return;
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)peer;

		k->addr[10] = k->addr[11] = 0xff;
		memcpy(&k->addr[12], &in->sin_addr, 4);
		k->port = ntohs(in->sin_port);
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)peer;

		/* a v4-mapped address is the same client as the plain IPv4 one */
		memcpy(k->addr, &in6->sin6_addr, 16);
		k->port = ntohs(in6->sin6_port);
	}
}

void onfs_drc_key_init(const struct onfs_drc *drc, struct onfs_drc_key *k,
		       const struct sockaddr *peer, bool tcp, uint32_t xid, uint32_t prog,
		       uint32_t vers, uint32_t proc, const void *args, size_t args_len)
{
	memset(k, 0, sizeof(*k));
	put_addr(k, peer);
	if (tcp)
		k->port = 0; /* a retransmit may come on a new connection */
	k->tcp = tcp ? 1 : 0;
	k->xid = xid;
	k->prog = prog;
	k->vers = vers;
	k->proc = proc;
	k->args_len = (uint32_t)args_len;
	k->args_sum = onfs_siphash24(drc->sipkey, args, args_len);
}

static uint32_t key_bucket(const struct onfs_drc *drc, const struct onfs_drc_key *k)
{
	return (uint32_t)onfs_siphash24(drc->sipkey, k, sizeof(*k)) & (drc->nbuckets - 1);
}

static void lru_unlink(struct onfs_drc *drc, struct onfs_drc_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		drc->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		drc->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_append(struct onfs_drc *drc, struct onfs_drc_entry *e)
{
	e->lru_next = NULL;
	e->lru_prev = drc->lru_tail;
	if (drc->lru_tail)
		drc->lru_tail->lru_next = e;
	else
		drc->lru_head = e;
	drc->lru_tail = e;
}

/* Unhash e, drop its reply and put it on the free list. */
static void entry_remove(struct onfs_drc *drc, struct onfs_drc_entry *e)
{
	struct onfs_drc_entry **pp = &drc->buckets[e->bucket];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (e->done)
		lru_unlink(drc, e);
	else
		drc->in_progress--;
	reply_drop(drc, e);
	drc->nentries--;
	e->hnext = drc->free_list;
	drc->free_list = e;
}

/* Finished entries older than max_age leave; the LRU is in stamp order. */
static void expire(struct onfs_drc *drc, uint64_t now_ms)
{
	while (drc->lru_head && now_ms >= drc->lru_head->stamp_ms &&
	       now_ms - drc->lru_head->stamp_ms >= drc->lim.max_age_ms) {
		entry_remove(drc, drc->lru_head);
		drc->st.evictions++;
	}
}

static struct onfs_drc_entry *entry_new(struct onfs_drc *drc)
{
	struct onfs_drc_entry *e;

	/* full: the least recently used finished entry makes room */
	while (drc->nentries >= drc->lim.max_entries && drc->lru_head) {
		entry_remove(drc, drc->lru_head);
		drc->st.evictions++;
	}
	if (drc->nentries >= drc->lim.max_entries)
		return NULL;
	e = drc->free_list;
	if (e) {
		drc->free_list = e->hnext;
	} else {
		e = malloc(sizeof(*e));
		if (!e)
			return NULL;
		drc->nallocated++;
	}
	memset(e, 0, offsetof(struct onfs_drc_entry, inline_reply));
	drc->nentries++;
	return e;
}

enum onfs_drc_verdict onfs_drc_lookup(struct onfs_drc *drc, const struct onfs_drc_key *k,
				      uint64_t now_ms, struct onfs_drc_waiter *waiter,
				      struct onfs_drc_entry **entry, const uint8_t **reply,
				      size_t *reply_len)
{
	struct onfs_drc_entry *e;
	uint32_t b;

	*entry = NULL;
	*reply = NULL;
	*reply_len = 0;
	expire(drc, now_ms);
	b = key_bucket(drc, k);
	for (e = drc->buckets[b]; e; e = e->hnext)
		if (memcmp(&e->key, k, sizeof(*k)) == 0)
			break;
	if (e && e->done) {
		/* a client still retransmitting keeps its answer alive */
		e->stamp_ms = now_ms;
		lru_unlink(drc, e);
		lru_append(drc, e);
		*reply = e->reply;
		*reply_len = e->reply_len;
		drc->st.hits++;
		return ONFS_DRC_REPLAY;
	}
	if (e) {
		waiter->next = NULL;
		if (e->waiters_tail)
			e->waiters_tail->next = waiter;
		else
			e->waiters = waiter;
		e->waiters_tail = waiter;
		drc->st.waits++;
		return ONFS_DRC_WAIT;
	}
	drc->st.misses++;
	e = entry_new(drc);
	if (!e) {
		drc->st.uncached++;
		return ONFS_DRC_MISS;
	}
	e->key = *k;
	e->bucket = b;
	e->hnext = drc->buckets[b];
	drc->buckets[b] = e;
	drc->in_progress++;
	*entry = e;
	return ONFS_DRC_MISS;
}

struct onfs_drc_waiter *onfs_drc_complete(struct onfs_drc *drc, struct onfs_drc_entry *e,
					  const uint8_t *reply, size_t reply_len,
					  uint64_t now_ms)
{
	struct onfs_drc_waiter *w = e->waiters;
	bool keep = reply && reply_len > 0;

	e->waiters = e->waiters_tail = NULL;
	if (keep && reply_len <= sizeof(e->inline_reply)) {
		e->reply = e->inline_reply;
	} else if (keep) {
		/* the byte cap: the oldest finished entries make room */
		while (drc->bytes + reply_len > drc->lim.max_bytes && drc->lru_head) {
			entry_remove(drc, drc->lru_head);
			drc->st.evictions++;
		}
		e->reply = drc->bytes + reply_len <= drc->lim.max_bytes ? malloc(reply_len) : NULL;
		if (e->reply)
			drc->bytes += reply_len;
		else
			keep = false;
	}
	if (!keep) {
		/* nothing to replay: the next retransmit runs again */
		e->reply = NULL;
		entry_remove(drc, e);
		return w;
	}
	memcpy(e->reply, reply, reply_len);
	e->reply_len = reply_len;
	e->done = true;
	e->stamp_ms = now_ms;
	drc->in_progress--;
	lru_append(drc, e);
	return w;
}

void onfs_drc_get_stats(const struct onfs_drc *drc, struct onfs_drc_stats *st)
{
	*st = drc->st;
	st->entries = drc->nentries;
	st->in_progress = drc->in_progress;
	st->bytes = drc->bytes + drc->nallocated * sizeof(struct onfs_drc_entry);
}
