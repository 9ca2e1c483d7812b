/*
 * readdir.c - listing merged directories (docs/overlay.md, "Listing") with
 * cookies that survive changes (docs/decisions.md, "READDIR cookies").
 *
 * A listing is a snapshot: the union of the parts' names, upper first, the
 * first occurrence wins, whiteouts and the names they hide dropped. Each
 * name's cookie is a keyed 63-bit hash of the name, and the snapshot is
 * sorted by cookie, so a cookie is a stable position: resuming means
 * "the first name whose cookie is greater", which returns every surviving
 * name exactly once even when names come and go between calls, and costs
 * a binary search, not a rescan (a 100k-entry directory lists in linear
 * time overall). Cookies 1 and 2 are "." and ".."; 0 is the start; bit 63
 * is never set in a hash cookie (a streamed listing's cookies have it).
 *
 * The cookie verifier is 4 bytes naming the directory and 4 bytes of its
 * change state. A cookie with a foreign verifier cannot be resumed
 * (BAD_COOKIE); a changed state alone is accepted, as knfsd does, because
 * hash positions stay valid (be lenient, never loop clients).
 *
 * Snapshots are kept in a small per-export cache keyed by the directory's
 * identity and rebuilt when its change state differs. Pool workers only.
 *
 * A big directory of one part (a single layer) is streamed instead: its
 * entries as getdents64 gives them, each one's cookie the part's own
 * d_off with bit 63 set (stream_list). No snapshot is built and none is
 * kept: a snapshot of such a directory could keep no nodes anyway, and
 * building one meant reading and sorting every name on every listing.
 * A cookie's bit 63 decides how a listing goes on, so a listing never
 * mixes the two kinds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/siphash.h"
#include "internal.h"

#define DIR_CACHE_SLOTS 8
/* ... and at most this many bytes, except for the newest snapshot */
#define DIR_CACHE_BYTES (8u << 20)
/*
 * READDIRPLUS keeps the nodes it looked up in the snapshot, so the next
 * listing of an unchanged directory needs no lookups: for snapshots of at
 * most SNAP_NODES_MAX entries, and at most CACHE_NODES_MAX nodes held by
 * all snapshots of an export together (a bound on memory; the rest are
 * looked up every time).
 */
#define SNAP_NODES_MAX 16384
#define CACHE_NODES_MAX 16384
#define COOKIE_DOT 1
#define COOKIE_DOTDOT 2
#define COOKIE_FIRST 3
#define COOKIE_MAX 0x7fffffffffffffffULL
/* a streamed listing's cookie: the part's d_off (never negative) | this */
#define COOKIE_STREAM (1ULL << 63)
/*
 * A one-part directory at least this big (st_size: bytes on ext4 and xfs,
 * 20 per entry on tmpfs) is streamed: more entries than SNAP_NODES_MAX
 * with names of any length on ext4. OVLNFSD_TEST_STREAM_MIN_BYTES
 * overrides it, so that the tests can stream small directories.
 */
#define STREAM_MIN_BYTES (1u << 20)

/*
 * 16 bytes per entry (a 1,000,000-entry listing must fit in a few tens of
 * MiB): the cookie, the low half of the inode number, and where the
 * entry's record starts in the names arena. A record is
 *   [name length][layer][flags][high half of the inode, if REC_INOHI][name]
 * (not NUL-terminated).
 */
struct dent {
	uint64_t cookie;
	uint32_t ino_lo;
	uint32_t rec;
};

#define REC_HIDDEN 0x01 /* a whiteout: hides lower names, not listed */
#define REC_INOHI 0x02
/* an upper name that a lower part of the directory has too (a merged
 * directory, or a copy-up of the lower one): its fileid needs a lookup */
#define REC_SHADOW 0x04
/* a directory (or of unknown type): may be merged through a redirect */
#define REC_DIR 0x08
#define REC_HDR 3

struct snap {
	atomic_int ref;
	struct onfs_ident ident;
	uint64_t change;
	/*
	 * Built so soon after the directory's last change that another change
	 * in the same timestamp tick would leave the change state as it is:
	 * then used for ONFS_ATTR_TTL_NS only (docs/caching.md).
	 */
	bool racy;
	uint64_t built_at; /* monotonic ns */
	struct dent *ents; /* owned; sorted by cookie once built */
	size_t n, cap;
	char *names;       /* owned; arena of names, not NUL-terminated */
	size_t names_len, names_cap;
	uint32_t *set;     /* owned; open-addressing index into ents, +1; 0 empty */
	size_t xwh;        /* xattr whiteouts seen: the kernel's rmdir calls those not empty */
	size_t set_cap;
	/*
	 * READDIRPLUS: the entries' nodes by index (counted references), valid
	 * while the export's gen_ns is nodes_gen; under nlock.
	 */
	pthread_mutex_t nlock;
	struct onfs_node **nodes;
	unsigned nodes_gen;
	size_t nheld;
	struct onfs_dir_cache *dc; /* whose held count the nodes are in */
};

struct onfs_dir_cache {
	atomic_long held; /* nodes held by all snapshots */
	uint64_t stream_min; /* STREAM_MIN_BYTES, or the test override */
	pthread_mutex_t lock;
	struct snap *slot[DIR_CACHE_SLOTS]; /* counted references */
	uint64_t used[DIR_CACHE_SLOTS];
	uint64_t clock;
};

int onfs_dir_cache_new(struct onfs_dir_cache **out)
{
	struct onfs_dir_cache *c = calloc(1, sizeof(*c));
	const char *v = getenv("OVLNFSD_TEST_STREAM_MIN_BYTES");

	if (!c)
		return -ENOMEM;
	c->stream_min = v && *v ? strtoull(v, NULL, 10) : STREAM_MIN_BYTES;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

/* Drop the nodes a snapshot holds; nlock held. */
static void snap_drop_nodes(struct snap *s)
{
	if (!s->nodes)
		return;
	for (size_t i = 0; i < s->n && s->nheld; i++) {
		if (s->nodes[i]) {
			onfs_node_put(s->nodes[i]);
			s->nodes[i] = NULL;
			s->nheld--;
			atomic_fetch_sub(&s->dc->held, 1);
		}
	}
}

static void snap_put(struct snap *s)
{
	if (s && atomic_fetch_sub(&s->ref, 1) == 1) {
		snap_drop_nodes(s);
		free(s->nodes);
		pthread_mutex_destroy(&s->nlock);
		free(s->ents);
		free(s->names);
		free(s->set);
		free(s);
	}
}

void onfs_dir_cache_free(struct onfs_dir_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
		snap_put(c->slot[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void onfs_dir_cache_flush(struct onfs_dir_cache *c)
{
	struct snap *old[DIR_CACHE_SLOTS];

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
		old[i] = c->slot[i];
		c->slot[i] = NULL;
		c->used[i] = 0;
	}
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
		snap_put(old[i]);
}

static struct snap *cache_get(struct onfs_dir_cache *c, const struct onfs_ident *id,
			      uint64_t change)
{
	struct snap *s = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
		if (c->slot[i] && c->slot[i]->change == change && onfs_ident_eq(&c->slot[i]->ident, id) &&
		    (!c->slot[i]->racy || onfs_now_ns() - c->slot[i]->built_at < ONFS_ATTR_TTL_NS)) {
			s = c->slot[i];
			atomic_fetch_add(&s->ref, 1);
			c->used[i] = ++c->clock;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

/*
 * Memory a cached snapshot holds: entries and names (fixed once built).
 * Node arrays are bounded apart (SNAP_NODES_MAX entries, 8 slots).
 */
static size_t snap_bytes(const struct snap *s)
{
	return s->cap * sizeof(struct dent) + s->names_cap;
}

static void cache_put(struct onfs_dir_cache *c, struct snap *s)
{
	struct snap *old;
	size_t victim = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
		if (c->slot[i] && onfs_ident_eq(&c->slot[i]->ident, &s->ident)) {
			victim = i; /* replace the older snapshot of this directory */
			break;
		}
		if (c->used[i] < c->used[victim])
			victim = i;
	}
	struct snap *evicted[DIR_CACHE_SLOTS] = { NULL };
	size_t nev = 0, total;

	old = c->slot[victim];
	atomic_fetch_add(&s->ref, 1);
	c->slot[victim] = s;
	c->used[victim] = ++c->clock;
	/*
	 * A byte bound besides the slot count: the newest snapshot stays
	 * whatever its size (a listing in progress needs it), older ones go,
	 * least recently used first, until the cache holds DIR_CACHE_BYTES.
	 */
	for (;;) {
		size_t lru = DIR_CACHE_SLOTS;

		total = 0;
		for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
			if (!c->slot[i])
				continue;
			total += snap_bytes(c->slot[i]);
			if (c->slot[i] != s && (lru == DIR_CACHE_SLOTS || c->used[i] < c->used[lru]))
				lru = i;
		}
		if (total <= DIR_CACHE_BYTES || lru == DIR_CACHE_SLOTS)
			break;
		evicted[nev++] = c->slot[lru];
		c->slot[lru] = NULL;
		c->used[lru] = 0;
	}
	pthread_mutex_unlock(&c->lock);
	snap_put(old);
	for (size_t i = 0; i < nev; i++)
		snap_put(evicted[i]);
}

uint64_t onfs_readdir_cookie(const uint8_t key[16], const char *name, size_t len)
{
	uint64_t h = onfs_siphash24(key, name, len) & COOKIE_MAX;

	/* leave room below for ".", ".." and above for collision bumps */
	if (h < COOKIE_FIRST)
		h += COOKIE_FIRST;
	if (h > COOKIE_MAX - 4096)
		h -= 4096;
	return h;
}

static int set_grow(struct snap *s)
{
	size_t cap = s->set_cap ? s->set_cap * 2 : 1024;
	uint32_t *set = calloc(cap, sizeof(*set));

	if (!set)
		return -ENOMEM;
	for (size_t i = 0; i < s->set_cap; i++) {
		uint32_t v = s->set[i];
		if (!v)
			continue;
		size_t j = s->ents[v - 1].cookie & (cap - 1);
		while (set[j])
			j = (j + 1) & (cap - 1);
		set[j] = v;
	}
	free(s->set);
	s->set = set;
	s->set_cap = cap;
	return 0;
}

static const uint8_t *dent_rec(const struct snap *s, const struct dent *d)
{
	return (const uint8_t *)s->names + d->rec;
}

static const char *dent_name(const struct snap *s, const struct dent *d, size_t *len)
{
	const uint8_t *r = dent_rec(s, d);

	*len = r[0];
	return (const char *)r + REC_HDR + ((r[2] & REC_INOHI) ? 4 : 0);
}

static uint8_t dent_layer(const struct snap *s, const struct dent *d)
{
	return dent_rec(s, d)[1];
}

static bool dent_hidden(const struct snap *s, const struct dent *d)
{
	return dent_rec(s, d)[2] & REC_HIDDEN;
}

/* an upper entry whose fileid may not be its own inode number */
static bool dent_maybe_origin(const struct snap *s, const struct dent *d)
{
	return dent_rec(s, d)[2] & (REC_SHADOW | REC_DIR);
}

static uint64_t dent_ino(const struct snap *s, const struct dent *d)
{
	const uint8_t *r = dent_rec(s, d);
	uint32_t hi = 0;

	if (r[2] & REC_INOHI)
		memcpy(&hi, r + REC_HDR, sizeof(hi));
	return (uint64_t)hi << 32 | d->ino_lo;
}

/*
 * Add a name unless an upper layer already had it. Returns 1 if added.
 * A directory of one part has no duplicates: no index (dedupe false),
 * which saves 4-8 bytes per entry while a big listing is built.
 */
static int snap_add(struct snap *s, const uint8_t key[16], const char *name, size_t len,
		    uint64_t ino, uint8_t layer, bool hidden, bool dir, bool dedupe)
{
	uint64_t cookie = onfs_readdir_cookie(key, name, len);
	size_t j = 0;

	if (dedupe) {
		if ((s->n + 1) * 2 > s->set_cap && set_grow(s) < 0)
			return -ENOMEM;
		for (j = cookie & (s->set_cap - 1); s->set[j]; j = (j + 1) & (s->set_cap - 1)) {
			const struct dent *d = &s->ents[s->set[j] - 1];
			size_t dl;
			const char *dn = dent_name(s, d, &dl);

			if (d->cookie == cookie && dl == len && memcmp(dn, name, len) == 0) {
				((uint8_t *)s->names)[d->rec + 2] |= REC_SHADOW;
				return 0;
			}
		}
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct dent *e = realloc(s->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		s->ents = e;
		s->cap = cap;
	}
	if (s->names_len + REC_HDR + 4 + len > s->names_cap) {
		size_t cap = s->names_cap ? s->names_cap * 2 : 16384;
		while (cap < s->names_len + REC_HDR + 4 + len)
			cap *= 2;
		char *p = realloc(s->names, cap);
		if (!p)
			return -ENOMEM;
		s->names = p;
		s->names_cap = cap;
	}
	if (s->names_len + REC_HDR + 4 + len > UINT32_MAX)
		return -ENOMEM;
	{
		uint8_t *r = (uint8_t *)s->names + s->names_len;
		uint32_t hi = (uint32_t)(ino >> 32);
		size_t off = REC_HDR;

		r[0] = (uint8_t)len;
		r[1] = layer;
		r[2] = (hidden ? REC_HIDDEN : 0) | (hi ? REC_INOHI : 0) | (dir ? REC_DIR : 0);
		if (hi) {
			memcpy(r + off, &hi, sizeof(hi));
			off += sizeof(hi);
		}
		memcpy(r + off, name, len);
		s->ents[s->n] = (struct dent){ .cookie = cookie, .ino_lo = (uint32_t)ino,
					       .rec = (uint32_t)s->names_len };
		s->names_len += off + len;
	}
	s->n++;
	if (dedupe)
		s->set[j] = (uint32_t)s->n;
	return 1;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static char ovl_opaque(struct onfs_export *ex, int fd)
{
	char name[64], v[4];

	onfs_ovl_xattr(ex, "opaque", name, sizeof(name));
	return onfs_fs_getxattr(fd, name, v, sizeof(v)) >= 1 ? v[0] : 0;
}

static int read_part(struct onfs_export *ex, struct snap *s, int fd, uint8_t layer, bool dedupe)
{
	enum { BUFSZ = 65536 };
	char *buf = malloc(BUFSZ);
	bool wh_xattr = ovl_opaque(ex, fd) == 'x';
	long n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = syscall(SYS_getdents64, fd, buf, BUFSZ);
		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			break;
		}
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			const char *name = d->d_name;
			size_t len = strlen(name);
			bool hidden = false;
			struct stat st;

			off += d->d_reclen;
			if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
				continue;
			if (d->d_type == DT_CHR || d->d_type == DT_UNKNOWN ||
			    (wh_xattr && d->d_type == DT_REG)) {
				if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
					hidden = onfs_is_whiteout(ex, fd, name, &st, wh_xattr);
				if (hidden && S_ISREG(st.st_mode))
					s->xwh++;
			}
			ret = snap_add(s, ex->key, name, len, d->d_ino, layer, hidden,
				       d->d_type == DT_DIR || d->d_type == DT_UNKNOWN, dedupe);
			if (ret < 0)
				goto out;
		}
	}
out:
	free(buf);
	return ret < 0 ? ret : 0;
}

/*
 * Sort by cookie in place. glibc's qsort is a merge sort with a copy of
 * the whole array: for a 1,000,000-entry directory that doubled the peak
 * memory of a listing. Cookies are keyed hashes, so a plain quicksort
 * (median of three, the smaller half first, insertion sort for short
 * runs) has no bad inputs to fear; its stack depth is O(log n).
 */
static void dent_swap(struct dent *a, struct dent *b)
{
	struct dent t = *a;

	*a = *b;
	*b = t;
}

static void dent_sort(struct dent *e, size_t n)
{
	while (n > 16) {
		size_t mid = n / 2, i = 0, j = n - 1;
		uint64_t pivot;

		if (e[mid].cookie < e[0].cookie)
			dent_swap(&e[mid], &e[0]);
		if (e[n - 1].cookie < e[0].cookie)
			dent_swap(&e[n - 1], &e[0]);
		if (e[n - 1].cookie < e[mid].cookie)
			dent_swap(&e[n - 1], &e[mid]);
		pivot = e[mid].cookie;
		/* Hoare partition: [0, j] <= pivot <= [j + 1, n) */
		for (;;) {
			while (e[i].cookie < pivot)
				i++;
			while (e[j].cookie > pivot)
				j--;
			if (i >= j)
				break;
			dent_swap(&e[i], &e[j]);
			i++;
			j--;
		}
		if (j + 1 < n - j - 1) {
			dent_sort(e, j + 1);
			e += j + 1;
			n -= j + 1;
		} else {
			dent_sort(e + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && e[k].cookie < e[k - 1].cookie; k--)
			dent_swap(&e[k], &e[k - 1]);
}

/*
 * Records in cookie order, so that a listing reads the names arena front
 * to back instead of at random (a cache miss per entry in a repeated
 * listing of a 10,000-entry directory). Only for snapshots that keep
 * nodes: a bigger one would need a second arena at its peak; without the
 * memory the order just stays as read.
 */
static void snap_relayout(struct snap *s)
{
	char *names;
	size_t off = 0;

	if (s->n < 2 || s->n > SNAP_NODES_MAX)
		return;
	names = malloc(s->names_len);
	if (!names)
		return;
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *r = dent_rec(s, &s->ents[i]);
		size_t len = REC_HDR + ((r[2] & REC_INOHI) ? 4 : 0) + r[0];

		memcpy(names + off, r, len);
		s->ents[i].rec = (uint32_t)off;
		off += len;
	}
	free(s->names);
	s->names = names;
	s->names_len = off;
	s->names_cap = s->names_len;
}

static int snap_build(struct onfs_export *ex, struct onfs_node *dir, const int *fds,
		      uint64_t change, struct snap **out)
{
	struct snap *s = calloc(1, sizeof(*s));
	size_t i, k;
	int ret;

	if (!s)
		return -ENOMEM;
	atomic_init(&s->ref, 1);
	pthread_mutex_init(&s->nlock, NULL);
	s->dc = ex->dirs;
	s->ident = dir->ident;
	s->change = change;
	for (i = 0; i < dir->nparts; i++) {
		ret = read_part(ex, s, fds[i], dir->parts[i].layer, dir->nparts > 1);
		if (ret < 0) {
			snap_put(s);
			return ret;
		}
	}
	free(s->set);
	s->set = NULL;
	s->set_cap = 0;
	for (i = 0, k = 0; i < s->n; i++)
		if (!dent_hidden(s, &s->ents[i]))
			s->ents[k++] = s->ents[i];
	s->n = k;
	if (s->n > 1) /* an empty directory has no array at all */
		dent_sort(s->ents, s->n);
	/* equal hashes (rare): bump so cookies never repeat in a listing */
	for (i = 1; i < s->n; i++)
		if (s->ents[i].cookie <= s->ents[i - 1].cookie)
			s->ents[i].cookie = s->ents[i - 1].cookie + 1;
	snap_relayout(s);
	*out = s;
	return 0;
}

int onfs_dir_is_empty(struct onfs_export *ex, struct onfs_node *dir)
{
	int fds[ONFS_MAX_LAYERS] = { 0 };
	struct snap *s = NULL;
	size_t i, nfd = 0;
	int ret = 0;

	for (i = 0; i < dir->nparts; i++) {
		fds[nfd] = onfs_part_open(ex, &dir->parts[i], O_RDONLY | O_DIRECTORY);
		if (fds[nfd] < 0) {
			ret = fds[nfd];
			goto out;
		}
		nfd++;
	}
	ret = snap_build(ex, dir, fds, 0, &s);
	if (ret == 0)
		ret = s->n == 0 && s->xwh == 0;
out:
	snap_put(s);
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	return ret;
}

/* Longer than any filesystem timestamp tick (jiffies, 1-10 ms). */
#define RACY_NS 50000000ULL

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * fileid of an entry, equal to what GETATTR of its lookup reports. Only an
 * upper entry can differ from its layer's inode number: when it carries an
 * origin (a copy-up, or a move of a lower or merged object: overlayfs then
 * marks the upper directory impure, as we do) or when it is a directory
 * merged with a lower one, by the same name (REC_SHADOW) or through a
 * redirect (any directory: REC_DIR). Those are looked up; every other
 * entry - the new upper files of a merged directory - is its native
 * number, as the kernel's readdir reports it.
 * "impure" is the upper part's xattr read by this call, not a node's
 * flag from its lookup, which a later copy-up into it leaves stale.
 */
static uint64_t entry_fileid(struct onfs_export *ex, struct onfs_node *dir, const struct snap *s,
			     const struct dent *d, const char *name, bool impure)
{
	uint8_t layer = dent_layer(s, d);
	uint64_t ino = dent_ino(s, d);

	struct onfs_node *child;
	uint64_t id;

	if (!ONFS_LAYER_WAS_UPPER(ex, layer) || (!impure && !dent_maybe_origin(s, d)))
		return onfs_export_fileid(ex, ex->layers[layer].fsidx, ino);
	if (onfs_lookup(ex, dir, name, &child) < 0)
		return onfs_export_fileid(ex, ex->layers[layer].fsidx, ino);
	id = child->fileid;
	onfs_node_put(child);
	return id;
}

/*
 * READDIRPLUS: from here on the snapshot's nodes are those looked up under
 * the export's current namespace generation (older ones are dropped).
 * Returns that generation.
 */
static unsigned snap_nodes_begin(struct onfs_export *ex, struct snap *s)
{
	unsigned g = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);

	pthread_mutex_lock(&s->nlock);
	if (s->nodes_gen != g || !s->nodes) {
		snap_drop_nodes(s);
		s->nodes_gen = g;
		if (!s->nodes && s->n > 0 && s->n <= SNAP_NODES_MAX)
			s->nodes = calloc(s->n, sizeof(*s->nodes)); /* NULL: none kept */
	}
	pthread_mutex_unlock(&s->nlock);
	return g;
}

/*
 * The nodes kept for entries i..i+cnt-1 (counted references, NULL where
 * none was kept under generation g): one lock for a batch of entries, and
 * the nodes' reference counts touched together, not one cache miss after
 * the other.
 */
static void snap_nodes_get(struct snap *s, size_t i, size_t cnt, unsigned g,
			   struct onfs_node **out)
{
	pthread_mutex_lock(&s->nlock);
	for (size_t k = 0; k < cnt; k++)
		out[k] = s->nodes && s->nodes_gen == g && s->nodes[i + k] ?
				 onfs_node_get(s->nodes[i + k]) : NULL;
	pthread_mutex_unlock(&s->nlock);
}

/* Keep n for entry i, looked up under generation g, within the bounds. */
static void snap_node_set(struct snap *s, size_t i, unsigned g, struct onfs_node *n)
{
	struct onfs_node *old = NULL;

	pthread_mutex_lock(&s->nlock);
	if (s->nodes && s->nodes_gen == g) {
		old = s->nodes[i];
		if (old || atomic_fetch_add(&s->dc->held, 1) < CACHE_NODES_MAX) {
			s->nodes[i] = onfs_node_get(n);
			if (!old)
				s->nheld++;
		} else {
			atomic_fetch_sub(&s->dc->held, 1);
		}
	}
	pthread_mutex_unlock(&s->nlock);
	onfs_node_put(old);
}

/*
 * Fresh attributes of a kept node: one fstatat of its name in the open
 * directory part when that is where its top part lives (and it is still
 * the same inode), else onfs_getattr.
 */
static int refresh_attr(struct onfs_export *ex, struct onfs_node *dir, const int *fds,
			struct onfs_node *n, const char *name, struct onfs_attr *at)
{
	const struct onfs_part *p = &n->parts[0];
	size_t nl = strlen(name);

	for (size_t k = 0; k < dir->nparts && n->top_ino; k++) {
		const struct onfs_part *dp = &dir->parts[k];
		size_t dl = strlen(dp->rel);
		struct onfs_gen g;
		struct stat st;

		if (dp->layer != p->layer || strlen(p->rel) != (dl ? dl + 1 : 0) + nl ||
		    memcmp(p->rel, dp->rel, dl) != 0 || (dl && p->rel[dl] != '/') ||
		    memcmp(p->rel + (dl ? dl + 1 : 0), name, nl) != 0)
			continue;
		onfs_gen_load(ex, n, &g);
		if (fstatat(fds[k], name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == n->top_ino &&
		    onfs_attr_from_stat(ex, n, &st, &g, at))
			return 0;
		break;
	}
	return onfs_getattr(ex, n, at);
}

/*
 * One READDIRPLUS entry: its node (kept: the snapshot's, a reference the
 * caller gives) and attributes from the attribute cache when still valid
 * at now, else a lookup in the open directory parts whose stat gives the
 * attributes too (no open of the entry).
 */
static void entry_plus(struct onfs_export *ex, struct onfs_node *dir, const int *fds,
		       const bool *xwh, struct snap *s, size_t i, unsigned g0, const char *name,
		       struct onfs_node *kept, uint64_t now, struct onfs_node **np,
		       struct onfs_attr *at, bool *have_attr)
{
	struct onfs_node *n = kept;
	struct onfs_gen b, g;
	struct stat st;

	if (n) {
		if (onfs_getattr_cached_at(ex, n, at, now) ||
		    refresh_attr(ex, dir, fds, n, name, at) == 0) {
			*np = n;
			*have_attr = true;
			return;
		}
		onfs_node_put(n);
		n = NULL;
	}
	onfs_gen_begin(ex, &b);
	/*
	 * The entries of a directory too big to keep nodes for are not put in
	 * the node cache either: a listing of a million names would otherwise
	 * push every other node out (and fill memory); their handles are
	 * resolved on use, as after a restart.
	 */
	if (onfs_lookup_at(ex, dir, fds, xwh, name, s->n <= SNAP_NODES_MAX, &st, &n) < 0) {
		*np = NULL; /* vanished since the snapshot */
		return;
	}
	*have_attr = (onfs_gen_since(ex, n, &b, &g) && onfs_attr_from_stat(ex, n, &st, &g, at)) ||
		     onfs_getattr(ex, n, at) == 0;
	/* kept only when no namespace change came between snapshot and lookup */
	if (*have_attr && b.ns == g0)
		snap_node_set(s, i, g0, n);
	*np = n;
}

/*
 * The node and attributes of a streamed entry: a lookup in the open
 * directory parts whose stat gives the attributes too, as for a new entry
 * of a snapshot (entry_plus); nothing is kept. -ENOENT: the name is not in
 * the merged view (gone, or a whiteout).
 */
static int stream_entry(struct onfs_export *ex, struct onfs_node *dir, const int *fds,
			const bool *xwh, const char *name, struct onfs_node **np,
			struct onfs_attr *at, bool *have_attr)
{
	struct onfs_node *n;
	struct onfs_gen b, g;
	struct stat st;
	int ret;

	onfs_gen_begin(ex, &b);
	ret = onfs_lookup_at(ex, dir, fds, xwh, name, false, &st, &n);
	if (ret < 0)
		return ret;
	*have_attr = (onfs_gen_since(ex, n, &b, &g) && onfs_attr_from_stat(ex, n, &st, &g, at)) ||
		     onfs_getattr(ex, n, at) == 0;
	*np = n;
	return 0;
}

/*
 * The lookups of a streamed READDIRPLUS are two system calls per entry
 * (fstatat, name_to_handle_at) and nearly all of its time; they are
 * independent, so they are done in batches by the worker and one helper
 * thread together, each taking the next entry of the batch until none is
 * left. The helper serves one batch at a time, process-wide; a listing
 * that finds it busy (or cannot start it) does its batch alone.
 */
#define STREAM_BATCH 32

struct stream_ent {
	const char *name;  /* in the getdents64 buffer */
	uint64_t cookie;
	uint64_t ino;
	bool isdir;
	int ret;           /* stream_entry's */
	struct onfs_node *node;
	struct onfs_attr at;
	bool have_attr;
};

struct stream_batch {
	struct onfs_export *ex;
	struct onfs_node *dir;
	const int *fds;
	const bool *xwh;
	struct stream_ent *e;
	size_t n;
	atomic_size_t next; /* the next entry to take */
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t posted, done;
	struct stream_batch *batch; /* posted, not yet finished; under lock */
	bool taken;                 /* the helper has begun on batch */
	bool up;                    /* the thread runs */
} helper = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER,
	     .posted = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

static void batch_run(struct stream_batch *b)
{
	size_t i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->n) {
		struct stream_ent *e = &b->e[i];

		e->ret = stream_entry(b->ex, b->dir, b->fds, b->xwh, e->name, &e->node, &e->at,
				      &e->have_attr);
	}
}

static void *helper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&helper.lock);
	for (;;) {
		struct stream_batch *b;

		while (!helper.batch || helper.taken)
			pthread_cond_wait(&helper.posted, &helper.lock);
		b = helper.batch;
		helper.taken = true;
		pthread_mutex_unlock(&helper.lock);
		/* the export owner's credentials, as the worker has them */
		if (onfs_owner_enter(b->ex) == 0)
			batch_run(b);
		pthread_mutex_lock(&helper.lock);
		helper.batch = NULL;
		helper.taken = false;
		pthread_cond_broadcast(&helper.done);
	}
	return NULL;
}

static void helper_start(void)
{
	pthread_attr_t a;
	pthread_t t;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	helper.up = pthread_create(&t, &a, helper_main, NULL) == 0;
	pthread_attr_destroy(&a);
}

/* The lookups of b's entries, with the helper when it is free. */
static void batch_lookup(struct stream_batch *b)
{
	bool posted = false;

	pthread_once(&helper.once, helper_start);
	if (helper.up && b->n > 1) {
		pthread_mutex_lock(&helper.lock);
		if (!helper.batch) {
			helper.batch = b;
			posted = true;
			pthread_cond_signal(&helper.posted);
		}
		pthread_mutex_unlock(&helper.lock);
	}
	batch_run(b);
	if (!posted)
		return;
	pthread_mutex_lock(&helper.lock);
	if (helper.batch == b && !helper.taken)
		helper.batch = NULL; /* all done before the helper woke */
	while (helper.batch == b)
		pthread_cond_wait(&helper.done, &helper.lock);
	pthread_mutex_unlock(&helper.lock);
}

/*
 * A streamed listing from cookie (0-2: from the start) over the
 * directory's part fds[nfd - 1]: the entries getdents64 gives after the
 * position the cookie names, each one's cookie its d_off with bit 63 set.
 * d_off is the filesystem's own resumable position (ext4: the name's hash;
 * what knfsd hands out as cookies), so entries created or removed between
 * calls do not move the others.
 *
 * That part is the directory's only one when the listing starts. When the
 * directory has become merged since (an upper part made by a copy-up or a
 * create in it), the listing goes on over its bottom part, the one it
 * began in (lower layers do not change), and every name is looked up in
 * the merged view: a whiteout or a removal drops it, a copied-up name is
 * listed as its upper object. Names that only the new upper part holds
 * were created after the listing began; NFS does not promise them.
 *
 * The getdents64 buffer is small: what a call reads and cannot send is
 * read again by the next call.
 */
static int stream_list(struct onfs_export *ex, struct onfs_node *dir, const int *fds,
		       size_t nfd, uint64_t cookie, bool plus, bool impure, onfs_readdir_cb cb,
		       void *ctx, bool *eof)
{
	enum { BUFSZ = 8192 };
	int fd = fds[nfd - 1];
	uint8_t layer = dir->parts[nfd - 1].layer;
	bool merged = nfd > 1, wh_xattr;
	bool xwh[ONFS_MAX_LAYERS] = { false };
	off_t pos = cookie > COOKIE_DOTDOT ? (off_t)(cookie & ~COOKIE_STREAM) : 0;
	struct stream_ent *e;
	char *buf;
	size_t k = 0, j;
	int ret = 0;

	for (size_t i = 0; i < nfd; i++)
		xwh[i] = ovl_opaque(ex, fds[i]) == 'x';
	wh_xattr = xwh[nfd - 1];
	if (lseek(fd, pos, SEEK_SET) < 0)
		return errno == EINVAL ? -ONFS_EBADCOOKIE : -errno;
	buf = malloc(BUFSZ);
	e = calloc(STREAM_BATCH, sizeof(*e));
	if (!buf || !e) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, BUFSZ);

		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			*eof = n == 0;
			break;
		}
		for (long off = 0; off < n;) {
			/* the next batch of entries of this buffer */
			for (k = 0; off < n && k < STREAM_BATCH;) {
				struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
				const char *name = d->d_name;
				size_t len = strlen(name);

				off += d->d_reclen;
				if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
					continue;
				/* the whiteout test of read_part; a lookup makes its own */
				if (!merged && !plus &&
				    (d->d_type == DT_CHR || d->d_type == DT_UNKNOWN ||
				     (wh_xattr && d->d_type == DT_REG))) {
					struct stat st;

					if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					    onfs_is_whiteout(ex, fd, name, &st, wh_xattr))
						continue;
				}
				e[k++] = (struct stream_ent){
					.name = name, .cookie = (uint64_t)d->d_off | COOKIE_STREAM,
					.ino = d->d_ino,
					.isdir = d->d_type == DT_DIR || d->d_type == DT_UNKNOWN };
			}
			if (plus || merged) {
				struct stream_batch b = { .ex = ex, .dir = dir, .fds = fds, .xwh = xwh,
							  .e = e, .n = k };

				atomic_init(&b.next, 0);
				batch_lookup(&b);
			} else if (ONFS_LAYER_WAS_UPPER(ex, layer)) {
				/*
				 * fileid as entry_fileid finds it: an upper entry that
				 * may carry an origin (an impure part, or a directory)
				 * is looked up, every other one is its native number
				 */
				for (j = 0; j < k; j++)
					if (impure || e[j].isdir)
						e[j].ret = stream_entry(ex, dir, fds, xwh, e[j].name,
									&e[j].node, &e[j].at,
									&e[j].have_attr);
			}
			for (j = 0; j < k; j++) {
				struct onfs_dirent de;

				/* gone since getdents64, or hidden in the merged view;
				 * any other failure: the entry without attributes */
				if (e[j].ret == -ENOENT)
					continue;
				de = (struct onfs_dirent){
					.name = e[j].name, .namelen = strlen(e[j].name),
					.cookie = e[j].cookie,
					.fileid = e[j].node ? e[j].node->fileid
							    : onfs_export_fileid(ex, ex->layers[layer].fsidx,
										 e[j].ino) };
				if (plus) {
					de.plus = true;
					de.node = e[j].node;
					de.attr = e[j].have_attr ? &e[j].at : NULL;
				}
				ret = cb(ctx, &de);
				onfs_node_put(e[j].node);
				e[j].node = NULL;
				if (ret != 0)
					goto out;
			}
			k = 0;
		}
	}
out:
	for (j = 0; e && j < k; j++)
		onfs_node_put(e[j].node);
	free(e);
	free(buf);
	return ret < 0 ? ret : 0;
}

/*
 * Kept nodes are fetched this many at a time; the attribute cache's clock
 * is read once per batch, so an attribute may be served for the time it
 * takes to encode that many entries beyond ONFS_ATTR_TTL_NS (microseconds).
 */
#define KEPT_BATCH 32

static int readdir_common(struct onfs_export *ex, struct onfs_node *dir, uint64_t cookie,
			  const uint8_t verf_in[8], uint8_t verf_out[8], onfs_readdir_cb cb,
			  void *ctx, bool *eof, bool plus)
{
	static const uint8_t zero[8];
	int fds[ONFS_MAX_LAYERS];
	struct onfs_dirent de;
	struct onfs_node *parent;
	struct snap *s = NULL;
	bool xwh[ONFS_MAX_LAYERS] = { false };
	bool impure = false;
	uint64_t change = 0, key, newest = 0, size = 0;
	bool stream;
	struct onfs_gen dgen;
	struct timespec real;
	unsigned g0 = 0;
	size_t i, nfd = 0, lo, hi;
	char name[NAME_MAX + 1];
	struct onfs_node *kept[KEPT_BATCH];
	size_t kept_at = 0, kept_n = 0;
	uint64_t now = 0;
	int ret = 0;

	*eof = false;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	/* before the reads: a change of this directory through the export
	 * bumps its slot afterwards, so a snapshot keyed by it is rebuilt */
	onfs_gen_load(ex, dir, &dgen);
	for (i = 0; i < dir->nparts; i++) {
		struct stat st;

		fds[nfd] = onfs_part_open(ex, &dir->parts[i], O_RDONLY | O_DIRECTORY);
		if (fds[nfd] < 0) {
			ret = fds[nfd] == -ENOENT ? -ESTALE : fds[nfd];
			goto out;
		}
		nfd++;
		if (fstat(fds[i], &st) < 0) {
			ret = -errno;
			goto out;
		}
		change = change * 1000003 ^ (uint64_t)st.st_ino;
		change = change * 1000003 ^ ((uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec);
		change = change * 1000003 ^ ((uint64_t)st.st_ctim.tv_sec * 1000000000ULL + (uint64_t)st.st_ctim.tv_nsec);
		change = change * 1000003 ^ (uint64_t)st.st_size;
		size = (uint64_t)st.st_size;
		if (ts_ns(&st.st_mtim) > newest)
			newest = ts_ns(&st.st_mtim);
		if (ts_ns(&st.st_ctim) > newest)
			newest = ts_ns(&st.st_ctim);
	}
	key = change ^ ((uint64_t)dgen.obj + 1) * 0x9e3779b97f4a7c15ULL;
	put_be32(verf_out, (uint32_t)onfs_siphash24(ex->key, &dir->ident, 3u + dir->ident.len));
	put_be32(verf_out + 4, (uint32_t)(change ^ (change >> 32)));
	if (cookie != 0 && memcmp(verf_in, zero, 8) != 0 && memcmp(verf_in, verf_out, 4) != 0) {
		ret = -ONFS_EBADCOOKIE;
		goto out;
	}

	/*
	 * A listing that started streamed goes on streamed (its cookies say
	 * so); a new one streams a big directory of one part.
	 */
	stream = nfd > 0 && ((cookie & COOKIE_STREAM) ||
		 (cookie <= COOKIE_DOTDOT && nfd == 1 && size >= ex->dirs->stream_min));
	s = stream ? NULL : cache_get(ex->dirs, &dir->ident, key);
	if (!s && !stream) {
		clock_gettime(CLOCK_REALTIME, &real);
		ret = snap_build(ex, dir, fds, key, &s);
		if (ret < 0)
			goto out;
		s->built_at = onfs_now_ns();
		/* timestamps tick coarsely: a change within RACY_NS of the build
		 * might share its tick with a later one (docs/caching.md) */
		s->racy = newest + RACY_NS >= ts_ns(&real);
		cache_put(ex->dirs, s);
	}

	if (cookie < COOKIE_DOT) {
		de = (struct onfs_dirent){ .name = ".", .namelen = 1, .cookie = COOKIE_DOT,
					   .fileid = dir->fileid };
		ret = cb(ctx, &de);
		if (ret != 0)
			goto out_stop;
	}
	if (cookie < COOKIE_DOTDOT) {
		ret = onfs_lookup(ex, dir, "..", &parent);
		if (ret < 0)
			goto out;
		de = (struct onfs_dirent){ .name = "..", .namelen = 2, .cookie = COOKIE_DOTDOT,
					   .fileid = parent->fileid };
		onfs_node_put(parent);
		ret = cb(ctx, &de);
		if (ret != 0)
			goto out_stop;
	}
	for (i = 0; i < nfd; i++) {
		/* a committed layer (commit.c) keeps the marks it had as the upper */
		if (ONFS_LAYER_WAS_UPPER(ex, dir->parts[i].layer)) {
			char an[64], v[4];

			onfs_ovl_xattr(ex, "impure", an, sizeof(an));
			impure = impure ||
				 (onfs_fs_getxattr(fds[i], an, v, sizeof(v)) >= 1 && v[0] == 'y');
		}
	}
	if (stream) {
		ret = stream_list(ex, dir, fds, nfd, cookie, plus, impure, cb, ctx, eof);
		goto out;
	}
	/* first entry whose cookie is greater than the one we resume from */
	lo = 0;
	hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ents[mid].cookie <= cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (plus) {
		g0 = snap_nodes_begin(ex, s);
		/* once per call, not per empty regular file: opaque=x parts */
		for (i = 0; i < nfd; i++)
			xwh[i] = ovl_opaque(ex, fds[i]) == 'x';
	}
	for (i = lo; i < s->n; i++) {
		const struct dent *d = &s->ents[i];
		struct onfs_node *n = NULL;
		struct onfs_attr at;
		bool have_attr = false;
		size_t dnl;
		const char *dn = dent_name(s, d, &dnl);

		if (plus && kept_at == kept_n) {
			/* the next batch of kept nodes, and the clock for their
			 * attributes' age (read per batch, not per entry) */
			kept_n = s->n - i < KEPT_BATCH ? s->n - i : KEPT_BATCH;
			kept_at = 0;
			snap_nodes_get(s, i, kept_n, g0, kept);
			now = onfs_now_ns();
		}
		memcpy(name, dn, dnl);
		name[dnl] = '\0';
		de = (struct onfs_dirent){ .name = name, .namelen = dnl, .cookie = d->cookie };
		if (plus) {
			struct onfs_node *k = kept[kept_at];

			kept[kept_at++] = NULL; /* its reference goes to entry_plus */
			entry_plus(ex, dir, fds, xwh, s, i, g0, name, k, now, &n, &at, &have_attr);
			de.plus = true;
			de.node = n;
			de.attr = have_attr ? &at : NULL;
			de.fileid = n ? n->fileid : entry_fileid(ex, dir, s, d, name, impure);
		} else {
			de.fileid = entry_fileid(ex, dir, s, d, name, impure);
		}
		ret = cb(ctx, &de);
		onfs_node_put(n);
		if (ret != 0)
			goto out_stop;
	}
	*eof = true;
	ret = 0;
	goto out;
out_stop:
	if (ret > 0)
		ret = 0;
out:
	for (; kept_at < kept_n; kept_at++)
		onfs_node_put(kept[kept_at]);
	snap_put(s);
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	return ret;
}

int onfs_readdir(struct onfs_export *ex, struct onfs_node *dir, uint64_t cookie,
		 const uint8_t verf_in[8], uint8_t verf_out[8], onfs_readdir_cb cb, void *ctx,
		 bool *eof)
{
	return readdir_common(ex, dir, cookie, verf_in, verf_out, cb, ctx, eof, false);
}

int onfs_readdirplus(struct onfs_export *ex, struct onfs_node *dir, uint64_t cookie,
		     const uint8_t verf_in[8], uint8_t verf_out[8], onfs_readdir_cb cb,
		     void *ctx, bool *eof)
{
	return readdir_common(ex, dir, cookie, verf_in, verf_out, cb, ctx, eof, true);
}
