/*
 * dcache.c - the lookup cache of an export (docs/caching.md, "LOOKUP
 * without the thread hop"): (directory handle, name) -> the child's
 * handle, or "no such name". A worker's onfs_lookup stores what it found;
 * the loop thread answers a LOOKUP from it, the child's node from the node
 * cache (handle.c) and the attributes from the attribute cache (cache.c).
 *
 * An entry is used only while the export's gen_ns is the one loaded
 * before the lookup read the disk (no namespace change made through the
 * export since: create, remove, rename, link, copy-up all bump it) and for
 * at most ONFS_ATTR_TTL_NS after that load (a change made directly on a
 * layer shows within 1 s, as for nodes and attributes).
 *
 * A fixed table: DC_BUCKETS x DC_WAYS entries, LRU per bucket, no
 * allocation after the table. Handles and names that do not fit an entry
 * are not cached (their LOOKUPs go to a worker as before).
 *
 * Any thread. onfs_lookup_cached touches only memory (the loop thread
 * calls it); the lock is a leaf held for a few hundred bytes of copying.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ovlnfsd/siphash.h"

/*
 * 8,192 entries (1 MiB): an entry serves only a name looked up again
 * within 0.9 s, so more would pay only above 9,000 distinct names a
 * second; the memory counts against the 32 MiB peak (docs/caching.md).
 */
#define DC_BUCKETS 2048
#define DC_WAYS 4
/* handles of kernel file handles up to 22 bytes (ext4 8, xfs 8-16, btrfs 20) */
#define DC_FH 36
/* names up to 39 bytes (the recorded boot's longest is 30); longer: a worker */
#define DC_NAME 40

struct dc_entry {
	uint64_t born;  /* monotonic ns loaded before the lookup read; 0: empty */
	unsigned gen_ns; /* ex->gen_ns loaded before the lookup read */
	uint8_t dlen;   /* directory handle length */
	uint8_t clen;   /* child handle length; 0: no such name (ENOENT) */
	uint8_t nlen;   /* name length */
	uint8_t dfh[DC_FH];
	uint8_t cfh[DC_FH];
	char name[DC_NAME];
};
_Static_assert(sizeof(struct dc_entry) == 128, "an entry is two cache lines");

struct onfs_dcache {
	pthread_mutex_t lock;
	struct dc_entry e[DC_BUCKETS][DC_WAYS]; /* [0] most recently used */
};

int onfs_dcache_new(struct onfs_dcache **out)
{
	struct onfs_dcache *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void onfs_dcache_free(struct onfs_dcache *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Keyed (clients choose names): the directory handle's MAC and the name. */
static size_t bucket_of(const struct onfs_export *ex, const uint8_t *dfh, size_t dlen,
			const char *name, size_t nlen)
{
	uint8_t buf[ONFS_FH_MAC + DC_NAME];

	memcpy(buf, dfh + dlen - ONFS_FH_MAC, ONFS_FH_MAC);
	memcpy(buf + ONFS_FH_MAC, name, nlen);
	return (size_t)(onfs_siphash24(ex->key, buf, ONFS_FH_MAC + nlen) % DC_BUCKETS);
}

static bool same_key(const struct dc_entry *e, const uint8_t *dfh, size_t dlen, const char *name,
		     size_t nlen)
{
	return e->born && e->dlen == dlen && e->nlen == nlen && memcmp(e->dfh, dfh, dlen) == 0 &&
	       memcmp(e->name, name, nlen) == 0;
}

static bool fits(size_t dlen, size_t nlen)
{
	return dlen >= ONFS_FH_MAC && dlen <= DC_FH && nlen > 0 && nlen < DC_NAME;
}

void onfs_dcache_store(struct onfs_export *ex, const struct onfs_node *dir, const char *name,
		       const struct onfs_node *child, unsigned gen_ns, uint64_t born)
{
	struct onfs_dcache *d = ex->dcache;
	size_t dlen = dir->fh.len, nlen = strlen(name), b, w;
	struct dc_entry *s, ne;

	if (!d || !fits(dlen, nlen) || (child && child->fh.len > DC_FH) || born == 0)
		return;
	memset(&ne, 0, sizeof(ne));
	ne.born = born;
	ne.gen_ns = gen_ns;
	ne.dlen = (uint8_t)dlen;
	ne.nlen = (uint8_t)nlen;
	memcpy(ne.dfh, dir->fh.data, dlen);
	memcpy(ne.name, name, nlen);
	if (child) {
		ne.clen = (uint8_t)child->fh.len;
		memcpy(ne.cfh, child->fh.data, child->fh.len);
	}
	b = bucket_of(ex, dir->fh.data, dlen, name, nlen);
	pthread_mutex_lock(&d->lock);
	s = d->e[b];
	/* the same key's entry, else the least recently used one, goes */
	for (w = 0; w < DC_WAYS - 1; w++)
		if (same_key(&s[w], ne.dfh, dlen, name, nlen))
			break;
	/* keep a newer read (another worker may have been faster) */
	if (!same_key(&s[w], ne.dfh, dlen, name, nlen) || s[w].born <= born) {
		memmove(s + 1, s, w * sizeof(*s));
		s[0] = ne;
	}
	pthread_mutex_unlock(&d->lock);
}

int onfs_lookup_cached(struct onfs_export *ex, const uint8_t *dfh, size_t dlen, const char *name,
		       struct onfs_node **out)
{
	struct onfs_dcache *d = ex->dcache;
	size_t nlen = strlen(name), b, w, clen = 0;
	uint8_t cfh[DC_FH];
	unsigned gen;
	uint64_t now;
	int ret = -EAGAIN;
	struct dc_entry *s;

	if (!d || !fits(dlen, nlen))
		return -EAGAIN;
	b = bucket_of(ex, dfh, dlen, name, nlen);
	gen = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	now = onfs_now_ns();
	pthread_mutex_lock(&d->lock);
	s = d->e[b];
	for (w = 0; w < DC_WAYS; w++) {
		if (!same_key(&s[w], dfh, dlen, name, nlen))
			continue;
		if (s[w].gen_ns == gen && now - s[w].born < ONFS_ATTR_TTL_NS) {
			struct dc_entry hit = s[w];

			clen = hit.clen;
			memcpy(cfh, hit.cfh, clen);
			memmove(s + 1, s, w * sizeof(*s));
			s[0] = hit;
			ret = clen ? 0 : -ENOENT;
		}
		break;
	}
	pthread_mutex_unlock(&d->lock);
	if (ret == 0 && onfs_node_from_fh_cached(ex, cfh, clen, out) < 0)
		ret = -EAGAIN; /* the node went: the worker resolves it */
	return ret;
}
