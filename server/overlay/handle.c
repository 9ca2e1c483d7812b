/*
 * handle.c - NFS file handles of an export: encoding with a MAC, decoding
 * back to a merged node, and the handle -> node cache.
 *
 * Any worker thread. The cache has one mutex; it is for speed only: an
 * entry may be dropped at any time and decoding falls back to
 * open_by_handle_at plus a merged lookup that verifies the identity.
 * A handle is checked (length, version, export id, MAC) before any
 * filesystem call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovlnfsd/siphash.h"
#include "internal.h"

#define CACHE_BUCKETS 16384
#define CACHE_WAYS 4 /* entries kept per bucket: at most 64k cached nodes */

struct onfs_node_cache {
	pthread_mutex_t lock;
	struct onfs_node *slot[CACHE_BUCKETS][CACHE_WAYS]; /* counted references */
};

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void onfs_fh_encode(const struct onfs_export *ex, const struct onfs_ident *id, struct onfs_fh *fh)
{
	size_t body = ONFS_FH_HDR + id->len;

	fh->data[0] = ONFS_FH_VERSION;
	fh->data[1] = id->fsidx;
	put_be16(fh->data + 2, ex->id);
	fh->data[4] = id->type;
	fh->data[5] = id->len;
	memcpy(fh->data + ONFS_FH_HDR, id->fid, id->len);
	put_le64(fh->data + body, onfs_siphash24(ex->key, fh->data, body));
	fh->len = (uint32_t)(body + ONFS_FH_MAC);
}

int onfs_fh_export_id(const uint8_t *fh, size_t len, uint16_t *id)
{
	if (len < ONFS_FH_HDR + ONFS_FH_MAC || len > ONFS_FH_MAX || fh[0] != ONFS_FH_VERSION ||
	    (size_t)ONFS_FH_HDR + fh[5] + ONFS_FH_MAC != len)
		return -ONFS_EBADHANDLE;
	*id = (uint16_t)(fh[2] << 8 | fh[3]);
	return 0;
}

const struct onfs_fh *onfs_node_fh(const struct onfs_node *n) { return &n->fh; }
uint32_t onfs_node_type(const struct onfs_node *n) { return n->type; }
const char *onfs_node_path(const struct onfs_node *n) { return n->path; }

struct onfs_node *onfs_node_get(struct onfs_node *n)
{
	atomic_fetch_add(&n->ref, 1);
	return n;
}

void onfs_node_free(struct onfs_node *n)
{
	int fd = atomic_load(&n->fd);

	if (fd >= 0)
		close(fd);
	for (unsigned i = 0; i < n->nparts; i++)
		free(n->parts[i].rel);
	free(n->path);
	free(n);
}

void onfs_node_put(struct onfs_node *n)
{
	if (n && atomic_fetch_sub(&n->ref, 1) == 1)
		onfs_node_free(n);
}

/* --- cache --- */

int onfs_node_cache_new(struct onfs_node_cache **out)
{
	struct onfs_node_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void onfs_node_cache_free(struct onfs_node_cache *c)
{
	if (!c)
		return;
	for (size_t b = 0; b < CACHE_BUCKETS; b++)
		for (size_t w = 0; w < CACHE_WAYS; w++)
			onfs_node_put(c->slot[b][w]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static size_t bucket_of(const uint8_t *fh, size_t len)
{
	/* The MAC is the last 8 bytes and already a keyed hash of the rest. */
	uint64_t h = 0;

	memcpy(&h, fh + len - ONFS_FH_MAC, sizeof(h));
	return (size_t)(h % CACHE_BUCKETS);
}

static struct onfs_node *cache_get(struct onfs_node_cache *c, const uint8_t *fh, size_t len)
{
	struct onfs_node *n = NULL, **s;
	size_t w;

	pthread_mutex_lock(&c->lock);
	s = c->slot[bucket_of(fh, len)];
	for (w = 0; w < CACHE_WAYS; w++) {
		if (s[w] && s[w]->fh.len == len && memcmp(s[w]->fh.data, fh, len) == 0) {
			n = onfs_node_get(s[w]);
			/* move to the front: the last way is evicted first */
			memmove(s + 1, s, w * sizeof(*s));
			s[0] = n;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

void onfs_node_cache_put(struct onfs_export *ex, struct onfs_node *n)
{
	struct onfs_node_cache *c = ex->nodes;
	struct onfs_node *old, **s;
	size_t w;

	pthread_mutex_lock(&c->lock);
	s = c->slot[bucket_of(n->fh.data, n->fh.len)];
	for (w = 0; w < CACHE_WAYS - 1; w++)
		if (s[w] && s[w]->fh.len == n->fh.len &&
		    memcmp(s[w]->fh.data, n->fh.data, n->fh.len) == 0)
			break;
	old = s[w];
	memmove(s + 1, s, w * sizeof(*s));
	s[0] = onfs_node_get(n);
	pthread_mutex_unlock(&c->lock);
	onfs_node_put(old);
}

/* --- decoding --- */

/* Which layer on filesystem fsidx holds this real path? Longest root wins. */
static const struct onfs_layer *layer_of(const struct onfs_export *ex, uint8_t fsidx,
					 const char *real, const char **rel)
{
	const struct onfs_layer *best = NULL;
	size_t bestlen = 0;

	for (size_t i = 0; i < ex->nlayers; i++) {
		const struct onfs_layer *l = &ex->layers[i];
		size_t n = strlen(l->real);

		if (l->fsidx != fsidx || n < bestlen)
			continue;
		if (strcmp(l->real, "/") == 0)
			n = 0;
		if (strncmp(real, l->real, n) == 0 && (real[n] == '/' || real[n] == '\0')) {
			best = l;
			bestlen = n;
		}
	}
	if (best) {
		*rel = real + bestlen;
		while (**rel == '/')
			(*rel)++;
	}
	return best;
}

static bool ident_eq(const struct onfs_ident *a, const struct onfs_ident *b)
{
	return a->fsidx == b->fsidx && a->type == b->type && a->len == b->len &&
	       memcmp(a->fid, b->fid, a->len) == 0;
}

int onfs_node_from_fh(struct onfs_export *ex, const uint8_t *fh, size_t len,
		      struct onfs_node **out)
{
	struct onfs_ident id;
	struct onfs_node *n;
	char proc[64], real[PATH_MAX];
	const char *rel;
	uint16_t exid;
	uint8_t mac[8];
	ssize_t rl;
	int fd, ret;

	ret = onfs_fh_export_id(fh, len, &exid);
	if (ret < 0)
		return ret;
	put_le64(mac, onfs_siphash24(ex->key, fh, len - ONFS_FH_MAC));
	if (exid != ex->id || memcmp(mac, fh + len - ONFS_FH_MAC, ONFS_FH_MAC) != 0 ||
	    fh[1] >= ex->numfs)
		return -ESTALE;

	n = cache_get(ex->nodes, fh, len);
	if (n) {
		*out = n;
		return 0;
	}
	if (!ex->by_handle)
		return -ESTALE;

	id.fsidx = fh[1];
	id.type = fh[4];
	id.len = fh[5];
	memcpy(id.fid, fh + ONFS_FH_HDR, id.len);
	fd = onfs_fs_open_ident(ex->fs_fd[id.fsidx], &id, O_PATH);
	if (fd < 0)
		return -ESTALE;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rl = readlink(proc, real, sizeof(real) - 1);
	close(fd);
	if (rl <= 0)
		return -ESTALE;
	real[rl] = '\0';
	/*
	 * The decoded object must lie inside one of this export's layers, and
	 * the merged lookup of that path must find this very identity: a
	 * hidden, renamed-away or foreign object is STALE, never another one.
	 */
	if (!layer_of(ex, id.fsidx, real, &rel))
		return -ESTALE;
	ret = onfs_walk(ex, rel, &n);
	if (ret < 0)
		return -ESTALE;
	if (!ident_eq(&n->ident, &id)) {
		onfs_node_put(n);
		return -ESTALE;
	}
	*out = n;
	return 0;
}
