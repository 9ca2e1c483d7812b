/*
 * cache.c - what an export remembers between requests, and when it must
 * forget it (docs/caching.md). Three caches, all per export instance:
 *
 *   - the node cache (handle.c): handle -> merged node;
 *   - the directory snapshots (readdir.c), each with the nodes of the
 *     entries READDIRPLUS looked up;
 *   - the attributes last read for a node (here: struct onfs_node cattr).
 *
 * Changes made through the export void them by generation counters
 * (struct onfs_gen in internal.h); changes made directly on a layer are
 * noticed by the directories' change state (mtime, ctime, size, inode of
 * every part) where a directory is involved, and otherwise within
 * ONFS_ATTR_TTL_NS (0.9 s: within 1 s), the time attributes are served from memory.
 *
 * Any thread. onfs_getattr_cached and onfs_node_from_fh_cached touch only
 * memory, so the loop thread may call them.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

uint64_t onfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The handle's MAC is a keyed hash of the identity: its slot. */
static size_t gen_slot(const struct onfs_node *n)
{
	uint64_t h = 0;

	if (n->fh.len >= ONFS_FH_MAC)
		memcpy(&h, n->fh.data + n->fh.len - ONFS_FH_MAC, sizeof(h));
	return (size_t)(h % ONFS_GEN_SLOTS);
}

static pthread_mutex_t *attr_lock(struct onfs_export *ex, const struct onfs_node *n)
{
	return &ex->attr_lock[((uintptr_t)n >> 6) % ONFS_ATTR_LOCKS];
}

void onfs_gen_load(struct onfs_export *ex, const struct onfs_node *n, struct onfs_gen *g)
{
	g->ns = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	g->obj = atomic_load_explicit(&ex->gen_obj[gen_slot(n)], memory_order_acquire);
}

bool onfs_gen_current(struct onfs_export *ex, const struct onfs_node *n, const struct onfs_gen *g)
{
	struct onfs_gen now;

	onfs_gen_load(ex, n, &now);
	return now.ns == g->ns && now.obj == g->obj;
}

void onfs_gen_begin(struct onfs_export *ex, struct onfs_gen *b)
{
	b->ns = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	b->data = atomic_load_explicit(&ex->gen_data, memory_order_acquire);
	b->obj = 0;
}

bool onfs_gen_since(struct onfs_export *ex, const struct onfs_node *n, const struct onfs_gen *b,
		    struct onfs_gen *g)
{
	onfs_gen_load(ex, n, g);
	/* no data change anywhere since b: n's slot value is the one at b */
	return g->ns == b->ns &&
	       atomic_load_explicit(&ex->gen_data, memory_order_acquire) == b->data;
}

void onfs_changed_ns(struct onfs_export *ex)
{
	atomic_fetch_add_explicit(&ex->gen_ns, 1, memory_order_acq_rel);
}

void onfs_changed_obj(struct onfs_export *ex, const struct onfs_node *n)
{
	atomic_fetch_add_explicit(&ex->gen_obj[gen_slot(n)], 1, memory_order_acq_rel);
	atomic_fetch_add_explicit(&ex->gen_data, 1, memory_order_acq_rel);
}

void onfs_attr_init_locks(struct onfs_export *ex)
{
	for (size_t i = 0; i < ONFS_ATTR_LOCKS; i++)
		pthread_mutex_init(&ex->attr_lock[i], NULL);
}

void onfs_attr_destroy_locks(struct onfs_export *ex)
{
	for (size_t i = 0; i < ONFS_ATTR_LOCKS; i++)
		pthread_mutex_destroy(&ex->attr_lock[i]);
}

void onfs_attr_store(struct onfs_export *ex, struct onfs_node *n, const struct onfs_gen *g,
		     const struct onfs_attr *a)
{
	pthread_mutex_t *l = attr_lock(ex, n);
	uint64_t now = onfs_now_ns();

	pthread_mutex_lock(l);
	/* keep a newer read (another thread may have been faster) */
	if (!n->cattr_ok || n->cattr_at <= now) {
		n->cattr = *a;
		n->cattr_gen = *g;
		n->cattr_at = now;
		n->cattr_ok = true;
	}
	pthread_mutex_unlock(l);
}

bool onfs_getattr_cached(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *a)
{
	return onfs_getattr_cached_at(ex, n, a, onfs_now_ns());
}

/* The same with the clock read by the caller (a listing reads it once per batch). */
bool onfs_getattr_cached_at(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *a,
			    uint64_t now)
{
	pthread_mutex_t *l = attr_lock(ex, n);
	bool ok;

	pthread_mutex_lock(l);
	ok = n->cattr_ok && now - n->cattr_at < ONFS_ATTR_TTL_NS &&
	     onfs_gen_current(ex, n, &n->cattr_gen);
	if (ok)
		*a = n->cattr;
	pthread_mutex_unlock(l);
	return ok;
}

void onfs_export_caches_flush(struct onfs_export *ex)
{
	/* first the generation: whatever is being read right now is void too */
	onfs_changed_ns(ex);
	onfs_node_cache_flush(ex);
	onfs_dir_cache_flush(ex->dirs);
}
