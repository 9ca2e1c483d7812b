/*
 * lock.c - the byte-range lock table of one export instance (lock.h):
 * POSIX-style advisory locks per owner with split, merge, upgrade and
 * downgrade, the FIFO of blocked waiters, and DOS share reservations.
 *
 * Owns: the table, its files (one entry per lock key with anything on
 * it), their locks, waiters (and the waiters' data until granted) and
 * shares.
 * Thread: any; one mutex per table guards everything, held only for
 * in-memory work (the lock manager calls in from the loop and from pool
 * workers).
 * Never: does I/O, blocks with the mutex held, or lets one host queue
 * more than ONFS_LOCK_MAX_WAITERS_PER_HOST waiters or hold more than
 * ONFS_LOCK_MAX_LOCKS_PER_HOST locks.
 *
 * Invariant: the locks of one owner on one file never overlap, and two of
 * its locks of the same type are never adjacent (they are merged).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "ovlnfsd/lock.h"

#define NBUCKETS 256

struct lk {
	struct lk *next;
	struct onfs_lock_owner owner;
	struct onfs_lock_range r;
};

struct waiter {
	struct waiter *next;
	struct onfs_lock_owner owner;
	struct onfs_lock_range r;
	void *data;
};

struct shr {
	struct shr *next;
	uint32_t host;
	unsigned mode, access;
	size_t ohlen;
	uint8_t oh[];
};

struct lfile {
	struct lfile *next;
	struct onfs_lock_key key;
	struct lk *locks;
	struct waiter *waiters; /* FIFO: oldest first */
	struct shr *shares;
};

struct onfs_lock_table {
	pthread_mutex_t mu;
	enum onfs_locking mode;
	void (*data_free)(void *data);
	struct lfile *buckets[NBUCKETS];
};

static unsigned key_hash(const struct onfs_lock_key *k)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < k->len; i++)
		h = (h ^ k->b[i]) * 16777619u;
	return h % NBUCKETS;
}

static bool key_eq(const struct onfs_lock_key *a, const struct onfs_lock_key *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static bool owner_eq(const struct onfs_lock_owner *a, const struct onfs_lock_owner *b)
{
	return a->host == b->host && a->svid == b->svid;
}

static bool overlaps(const struct onfs_lock_range *a, const struct onfs_lock_range *b)
{
	return a->start <= b->end && b->start <= a->end;
}

static bool adjacent(const struct onfs_lock_range *a, const struct onfs_lock_range *b)
{
	return (a->end != ONFS_LOCK_EOF && a->end + 1 == b->start) ||
	       (b->end != ONFS_LOCK_EOF && b->end + 1 == a->start);
}

struct onfs_lock_table *onfs_lock_table_new(enum onfs_locking mode,
					    void (*data_free)(void *data))
{
	struct onfs_lock_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->mode = mode;
	t->data_free = data_free;
	return t;
}

static void waiter_free(struct onfs_lock_table *t, struct waiter *w)
{
	if (w->data && t->data_free)
		t->data_free(w->data);
	free(w);
}

static void file_free(struct onfs_lock_table *t, struct lfile *f)
{
	while (f->locks) {
		struct lk *l = f->locks;

		f->locks = l->next;
		free(l);
	}
	while (f->waiters) {
		struct waiter *w = f->waiters;

		f->waiters = w->next;
		waiter_free(t, w);
	}
	while (f->shares) {
		struct shr *s = f->shares;

		f->shares = s->next;
		free(s);
	}
	free(f);
}

void onfs_lock_table_free(struct onfs_lock_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		while (t->buckets[i]) {
			struct lfile *f = t->buckets[i];

			t->buckets[i] = f->next;
			file_free(t, f);
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

enum onfs_locking onfs_lock_table_mode(const struct onfs_lock_table *t)
{
	return t ? t->mode : ONFS_LOCKING_OFF;
}

/* The file entry of k; created when create is set (NULL: not there, or ENOMEM). */
static struct lfile *file_get(struct onfs_lock_table *t, const struct onfs_lock_key *k,
			      bool create)
{
	struct lfile **b = &t->buckets[key_hash(k)];
	struct lfile *f;

	for (f = *b; f; f = f->next)
		if (key_eq(&f->key, k))
			return f;
	if (!create)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->key = *k;
	f->next = *b;
	*b = f;
	return f;
}

/* Free the entry when nothing is left on it. */
static void file_maybe_drop(struct onfs_lock_table *t, struct lfile *f)
{
	struct lfile **p;

	if (f->locks || f->waiters || f->shares)
		return;
	for (p = &t->buckets[key_hash(&f->key)]; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			free(f);
			return;
		}
	}
}

static const struct lk *find_conflict(const struct lfile *f, const struct onfs_lock_owner *o,
				      const struct onfs_lock_range *r)
{
	for (const struct lk *l = f->locks; l; l = l->next)
		if (!owner_eq(&l->owner, o) && (l->r.excl || r->excl) && overlaps(&l->r, r))
			return l;
	return NULL;
}

static size_t host_locks(const struct onfs_lock_table *t, uint32_t host, size_t *waiters)
{
	size_t n = 0, w = 0;

	for (size_t i = 0; i < NBUCKETS; i++) {
		for (const struct lfile *f = t->buckets[i]; f; f = f->next) {
			for (const struct lk *l = f->locks; l; l = l->next)
				n += l->owner.host == host;
			for (const struct waiter *x = f->waiters; x; x = x->next)
				w += x->owner.host == host;
			for (const struct shr *s = f->shares; s; s = s->next)
				n += s->host == host;
		}
	}
	if (waiters)
		*waiters = w;
	return n;
}

/*
 * Remove owner's locks over r, keeping the parts outside it. With set,
 * also absorb same-type locks that overlap or touch r into *merged.
 * Splitting needs at most two new entries; they are allocated first so a
 * failure changes nothing.
 */
static int carve(struct lfile *f, const struct onfs_lock_owner *o,
		 const struct onfs_lock_range *r, bool set, struct onfs_lock_range *merged)
{
	struct lk **p = &f->locks;
	struct lk *spare[2] = { malloc(sizeof(struct lk)), malloc(sizeof(struct lk)) };
	int nspare = 2;
	int ret = 0;

	if (!spare[0] || !spare[1]) {
		ret = -ENOMEM;
		goto out;
	}
	while (*p) {
		struct lk *l = *p;

		if (!owner_eq(&l->owner, o)) {
			p = &l->next;
			continue;
		}
		if (set && l->r.excl == r->excl && (overlaps(&l->r, r) || adjacent(&l->r, r))) {
			if (l->r.start < merged->start)
				merged->start = l->r.start;
			if (l->r.end > merged->end)
				merged->end = l->r.end;
			*p = l->next;
			free(l);
			continue;
		}
		if (!overlaps(&l->r, r)) {
			p = &l->next;
			continue;
		}
		/* l overlaps r: keep what lies outside r */
		if (l->r.start < r->start && l->r.end > r->end) {
			/* r is strictly inside l: split in two (only one such l exists) */
			struct lk *tail = spare[--nspare];

			tail->owner = l->owner;
			tail->r = l->r;
			tail->r.start = r->end + 1;
			tail->next = l->next;
			l->r.end = r->start - 1;
			l->next = tail;
			p = &tail->next;
			continue;
		}
		if (l->r.start < r->start) {
			l->r.end = r->start - 1;
			p = &l->next;
			continue;
		}
		if (l->r.end > r->end) {
			l->r.start = r->end + 1;
			p = &l->next;
			continue;
		}
		*p = l->next;
		free(l);
	}
out:
	while (nspare > 0)
		free(spare[--nspare]);
	return ret;
}

/* Set owner's lock over r (no conflict checked here). */
static int set_lock(struct lfile *f, const struct onfs_lock_owner *o,
		    const struct onfs_lock_range *r)
{
	struct onfs_lock_range merged = *r;
	struct lk *l = malloc(sizeof(*l));
	int err;

	if (!l)
		return -ENOMEM;
	err = carve(f, o, r, true, &merged);
	if (err < 0) {
		free(l);
		return err;
	}
	l->owner = *o;
	l->r = merged;
	l->next = f->locks;
	f->locks = l;
	return 0;
}

/* Grant every waiter of f that no longer conflicts, oldest first. */
static void wake(struct lfile *f, struct onfs_lock_grant **grants)
{
	struct waiter **p = &f->waiters;

	while (*p) {
		struct waiter *w = *p;
		struct onfs_lock_grant *g;

		if (find_conflict(f, &w->owner, &w->r)) {
			p = &w->next;
			continue;
		}
		g = calloc(1, sizeof(*g));
		if (!g || set_lock(f, &w->owner, &w->r) < 0) {
			/* out of memory: leave it queued, the client polls again */
			free(g);
			p = &w->next;
			continue;
		}
		g->key = f->key;
		g->owner = w->owner;
		g->range = w->r;
		g->data = w->data;
		g->next = *grants;
		*grants = g;
		*p = w->next;
		free(w);
	}
}

int onfs_lock_test(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		   const struct onfs_lock_owner *o, const struct onfs_lock_range *r,
		   struct onfs_lock_holder *h)
{
	struct lfile *f;
	const struct lk *l = NULL;

	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, false);
	if (f)
		l = find_conflict(f, o, r);
	if (l) {
		h->owner = l->owner;
		h->range = l->r;
	}
	pthread_mutex_unlock(&t->mu);
	return l ? -EAGAIN : 0;
}

enum onfs_lock_result onfs_lock_lock(struct onfs_lock_table *t, const struct onfs_lock_key *k,
				     const struct onfs_lock_owner *o,
				     const struct onfs_lock_range *r, bool block, void *data,
				     struct onfs_lock_grant **grants)
{
	enum onfs_lock_result res;
	struct lfile *f;
	struct waiter *w;
	size_t nw = 0;

	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, true);
	if (!f) {
		res = ONFS_LOCK_NOLOCKS;
		goto out;
	}
	if (!find_conflict(f, o, r)) {
		if (host_locks(t, o->host, NULL) >= ONFS_LOCK_MAX_LOCKS_PER_HOST) {
			res = ONFS_LOCK_NOLOCKS;
			goto out_drop;
		}
		res = set_lock(f, o, r) < 0 ? ONFS_LOCK_NOLOCKS : ONFS_LOCK_GRANTED;
		/* a downgrade or shrink may free a waiter */
		if (res == ONFS_LOCK_GRANTED)
			wake(f, grants);
		goto out_drop;
	}
	if (!block) {
		res = ONFS_LOCK_DENIED;
		goto out_drop;
	}
	for (w = f->waiters; w; w = w->next) {
		if (owner_eq(&w->owner, o) && w->r.start == r->start && w->r.end == r->end &&
		    w->r.excl == r->excl) {
			/* the client asks again (its poll, or a retransmit) */
			res = ONFS_LOCK_BLOCKED;
			goto out_drop;
		}
	}
	host_locks(t, o->host, &nw);
	if (nw >= ONFS_LOCK_MAX_WAITERS_PER_HOST) {
		res = ONFS_LOCK_NOLOCKS;
		goto out_drop;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		res = ONFS_LOCK_NOLOCKS;
		goto out_drop;
	}
	w->owner = *o;
	w->r = *r;
	w->data = data;
	data = NULL;
	/* append: FIFO */
	{
		struct waiter **p = &f->waiters;

		while (*p)
			p = &(*p)->next;
		*p = w;
	}
	res = ONFS_LOCK_BLOCKED;
out_drop:
	file_maybe_drop(t, f);
out:
	pthread_mutex_unlock(&t->mu);
	if (data && t->data_free)
		t->data_free(data);
	return res;
}

void onfs_lock_unlock(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		      const struct onfs_lock_owner *o, const struct onfs_lock_range *r,
		      struct onfs_lock_grant **grants)
{
	struct lfile *f;

	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, false);
	if (f) {
		struct onfs_lock_range unused = *r;

		/*
		 * Unlocking inside a lock needs one spare entry; without memory
		 * the whole lock stays (the client sees the unlock fail only as
		 * a lock it still holds, as after a lost reply).
		 */
		(void)carve(f, o, r, false, &unused);
		wake(f, grants);
		file_maybe_drop(t, f);
	}
	pthread_mutex_unlock(&t->mu);
}

bool onfs_lock_cancel(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		      const struct onfs_lock_owner *o, const struct onfs_lock_range *r)
{
	struct lfile *f;
	struct waiter *found = NULL;

	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, false);
	if (f) {
		for (struct waiter **p = &f->waiters; *p; p = &(*p)->next) {
			struct waiter *w = *p;

			if (owner_eq(&w->owner, o) && w->r.start == r->start &&
			    w->r.end == r->end && w->r.excl == r->excl) {
				*p = w->next;
				found = w;
				break;
			}
		}
		file_maybe_drop(t, f);
	}
	pthread_mutex_unlock(&t->mu);
	if (found)
		waiter_free(t, found);
	return found != NULL;
}

int onfs_lock_share(struct onfs_lock_table *t, const struct onfs_lock_key *k, uint32_t host,
		    const void *oh, size_t ohlen, unsigned mode, unsigned access)
{
	struct lfile *f;
	struct shr *s;
	int ret = 0;

	/* an empty netobj decodes as NULL: memcmp/memcpy want a pointer */
	if (!oh)
		oh = "";
	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, true);
	if (!f) {
		ret = -ENOMEM;
		goto out;
	}
	for (s = f->shares; s; s = s->next) {
		bool mine = s->host == host && s->ohlen == ohlen && !memcmp(s->oh, oh, ohlen);

		if (mine)
			continue;
		/* what one asks to do, the other denies, either way round */
		if ((access & s->mode) || (mode & s->access)) {
			ret = -EAGAIN;
			goto out_drop;
		}
	}
	if (host_locks(t, host, NULL) >= ONFS_LOCK_MAX_LOCKS_PER_HOST) {
		ret = -ENOLCK;
		goto out_drop;
	}
	for (s = f->shares; s; s = s->next) {
		if (s->host == host && s->ohlen == ohlen && !memcmp(s->oh, oh, ohlen)) {
			s->mode = mode;
			s->access = access;
			goto out_drop;
		}
	}
	s = malloc(sizeof(*s) + ohlen);
	if (!s) {
		ret = -ENOMEM;
		goto out_drop;
	}
	s->host = host;
	s->mode = mode;
	s->access = access;
	s->ohlen = ohlen;
	memcpy(s->oh, oh, ohlen);
	s->next = f->shares;
	f->shares = s;
out_drop:
	file_maybe_drop(t, f);
out:
	pthread_mutex_unlock(&t->mu);
	return ret;
}

void onfs_lock_unshare(struct onfs_lock_table *t, const struct onfs_lock_key *k,
		       uint32_t host, const void *oh, size_t ohlen)
{
	struct lfile *f;

	if (!oh)
		oh = ""; /* an empty netobj (see onfs_lock_share) */
	pthread_mutex_lock(&t->mu);
	f = file_get(t, k, false);
	if (f) {
		for (struct shr **p = &f->shares; *p; p = &(*p)->next) {
			struct shr *s = *p;

			if (s->host == host && s->ohlen == ohlen && !memcmp(s->oh, oh, ohlen)) {
				*p = s->next;
				free(s);
				break;
			}
		}
		file_maybe_drop(t, f);
	}
	pthread_mutex_unlock(&t->mu);
}

void onfs_lock_free_host(struct onfs_lock_table *t, uint32_t host,
			 struct onfs_lock_grant **grants)
{
	struct waiter *dead = NULL;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct lfile *f = t->buckets[i];

		while (f) {
			struct lfile *next = f->next;
			bool changed = false;

			for (struct lk **p = &f->locks; *p;) {
				if ((*p)->owner.host == host) {
					struct lk *l = *p;

					*p = l->next;
					free(l);
					changed = true;
				} else {
					p = &(*p)->next;
				}
			}
			for (struct waiter **p = &f->waiters; *p;) {
				if ((*p)->owner.host == host) {
					struct waiter *w = *p;

					*p = w->next;
					w->next = dead;
					dead = w;
				} else {
					p = &(*p)->next;
				}
			}
			for (struct shr **p = &f->shares; *p;) {
				if ((*p)->host == host) {
					struct shr *s = *p;

					*p = s->next;
					free(s);
				} else {
					p = &(*p)->next;
				}
			}
			if (changed)
				wake(f, grants);
			file_maybe_drop(t, f);
			f = next;
		}
	}
	pthread_mutex_unlock(&t->mu);
	while (dead) {
		struct waiter *w = dead;

		dead = w->next;
		waiter_free(t, w);
	}
}

size_t onfs_lock_host_count(struct onfs_lock_table *t, uint32_t host)
{
	size_t n, w = 0;

	pthread_mutex_lock(&t->mu);
	n = host_locks(t, host, &w);
	pthread_mutex_unlock(&t->mu);
	return n + w;
}

void onfs_lock_grant_free(struct onfs_lock_table *t, struct onfs_lock_grant *g)
{
	while (g) {
		struct onfs_lock_grant *next = g->next;

		if (g->data && t->data_free)
			t->data_free(g->data);
		free(g);
		g = next;
	}
}
