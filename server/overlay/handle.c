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
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ovlnfsd/siphash.h"
#include "internal.h"

/* at most 16k cached nodes (about 7 MiB with their paths; docs/caching.md) */
#define CACHE_BUCKETS 4096
#define CACHE_WAYS 4 /* entries kept per bucket */

struct onfs_node_cache {
	pthread_mutex_t lock;
	/* a bucket's entries are packed at its front: slot[b][0] is set iff any is */
	struct onfs_node *slot[CACHE_BUCKETS][CACHE_WAYS]; /* counted references */
	/* bit b set iff bucket b may hold an entry: a flush visits only those */
	uint64_t used[CACHE_BUCKETS / 64];
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
	int fd = atomic_load(&n->fd), wfd = atomic_load(&n->wfd);

	if (fd >= 0)
		close(fd);
	if (wfd >= 0 && wfd != fd) /* copy-up may put one descriptor in both */
		close(wfd);
	/* every cached descriptor was counted in the budget */
	if (fd >= 0)
		atomic_fetch_sub(&onfs_fd_cached, 1);
	if (wfd >= 0)
		atomic_fetch_sub(&onfs_fd_cached, 1);
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

/* --- descriptor budget --- */

/*
 * Nodes keep descriptors for speed; the cache holds up to 64k nodes, more
 * than a default RLIMIT_NOFILE. Descriptors kept in nodes are counted
 * process-wide and capped at half the soft limit (raised to the hard
 * limit at startup); beyond it, operations open and close as they go.
 */
atomic_long onfs_fd_cached;
static long fd_limit;

void onfs_fd_budget_init(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
		fd_limit = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur / 2;
	} else {
		fd_limit = 512;
	}
}

bool onfs_fd_budget_take(struct onfs_export *ex)
{
	(void)ex;
	if (atomic_fetch_add(&onfs_fd_cached, 1) < fd_limit)
		return true;
	atomic_fetch_sub(&onfs_fd_cached, 1);
	return false;
}

void onfs_fd_budget_give(struct onfs_export *ex)
{
	(void)ex;
	atomic_fetch_sub(&onfs_fd_cached, 1);
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

/*
 * A cached node is used for ONFS_ATTR_TTL_NS after its lookup: its parts
 * (which layers hold it) may change on disk, and resolving the handle
 * again within that bound finds such a change (docs/caching.md).
 */
static struct onfs_node *cache_get(struct onfs_node_cache *c, const uint8_t *fh, size_t len)
{
	struct onfs_node *n = NULL, **s;
	uint64_t now = onfs_now_ns();
	size_t w;

	pthread_mutex_lock(&c->lock);
	s = c->slot[bucket_of(fh, len)];
	for (w = 0; w < CACHE_WAYS; w++) {
		if (s[w] && s[w]->fh.len == len && memcmp(s[w]->fh.data, fh, len) == 0) {
			if (now - s[w]->born >= ONFS_ATTR_TTL_NS)
				break; /* resolved afresh, then replaced by cache_put */
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
	size_t b = bucket_of(n->fh.data, n->fh.len), w;

	pthread_mutex_lock(&c->lock);
	s = c->slot[b];
	for (w = 0; w < CACHE_WAYS - 1; w++)
		if (s[w] && s[w]->fh.len == n->fh.len &&
		    memcmp(s[w]->fh.data, n->fh.data, n->fh.len) == 0)
			break;
	old = s[w];
	memmove(s + 1, s, w * sizeof(*s));
	s[0] = onfs_node_get(n);
	c->used[b / 64] |= UINT64_C(1) << (b % 64);
	pthread_mutex_unlock(&c->lock);
	onfs_node_put(old);
}

void onfs_node_cache_drop(struct onfs_export *ex, const struct onfs_fh *fh)
{
	struct onfs_node_cache *c = ex->nodes;
	struct onfs_node *old = NULL, **s;

	pthread_mutex_lock(&c->lock);
	s = c->slot[bucket_of(fh->data, fh->len)];
	for (size_t w = 0; w < CACHE_WAYS; w++) {
		if (s[w] && s[w]->fh.len == fh->len && memcmp(s[w]->fh.data, fh->data, fh->len) == 0) {
			old = s[w];
			memmove(s + w, s + w + 1, (CACHE_WAYS - 1 - w) * sizeof(*s));
			s[CACHE_WAYS - 1] = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	onfs_node_put(old);
}

/*
 * Forget every cached node: after a directory moves, the paths of the
 * nodes below it are wrong. Rare (directory renames, base moves, commits),
 * and only costs re-resolution. The references are dropped outside the
 * lock in batches on the stack: no allocation (a 128 KiB array per flush
 * was an mmap and munmap each time), no failure path.
 */
#define FLUSH_BATCH 64

void onfs_node_cache_flush(struct onfs_export *ex)
{
	struct onfs_node_cache *c = ex->nodes;
	struct onfs_node *batch[FLUSH_BATCH];
	size_t i = 0, k;

	/* only the buckets marked used: the cost follows the entries, not the table */
	do {
		k = 0;
		pthread_mutex_lock(&c->lock);
		for (; i < ONFS_ARRAY_SIZE(c->used); i++) {
			while (c->used[i] && k + CACHE_WAYS <= FLUSH_BATCH) {
				size_t b = i * 64 + (size_t)__builtin_ctzll(c->used[i]);

				for (size_t w = 0; w < CACHE_WAYS && c->slot[b][w]; w++) {
					batch[k++] = c->slot[b][w];
					c->slot[b][w] = NULL;
				}
				c->used[i] &= c->used[i] - 1;
			}
			if (c->used[i])
				break; /* the batch is full: drop it, then go on here */
		}
		pthread_mutex_unlock(&c->lock);
		for (size_t j = 0; j < k; j++)
			onfs_node_put(batch[j]);
	} while (i < ONFS_ARRAY_SIZE(c->used));
}

/* --- decoding --- */

static int real_path_of(int fd, char *real, size_t cap);

/*
 * Which layer on filesystem fsidx holds this real path? Longest root wins.
 * The layers' roots are compared by the paths they had when opened; when
 * none matches, by where their descriptors are now: a layer directory
 * renamed while served (a base replaced in place, the old tree kept for an
 * export pinned to it) still holds its objects.
 */
static const struct onfs_layer *layer_of(const struct onfs_export *ex, uint8_t fsidx,
					 const char *real, const char **rel)
{
	const struct onfs_layer *best = NULL;
	size_t bestlen = 0;
	char *now = NULL;

	for (int pass = 0; pass < 2 && !best; pass++) {
		if (pass == 1 && !(now = malloc(PATH_MAX)))
			break;
		for (size_t i = 0; i < ex->nlayers; i++) {
			const struct onfs_layer *l = &ex->layers[i];
			const char *root = l->real;
			size_t n;

			if (l->fsidx != fsidx)
				continue;
			if (pass == 1 && (l->fd < 0 || real_path_of(l->fd, now, PATH_MAX) < 0 ||
					  !strcmp(now, l->real)))
				continue; /* unchanged: pass 0 said no */
			if (pass == 1)
				root = now;
			n = strlen(root);
			if (n < bestlen)
				continue;
			if (strcmp(root, "/") == 0)
				n = 0;
			if (strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0')) {
				best = l;
				bestlen = n;
			}
		}
	}
	free(now);
	if (best) {
		*rel = real + bestlen;
		while (**rel == '/')
			(*rel)++;
	}
	return best;
}

/* Where does a decoded object live? Its real path (/proc), when it fits in cap. */
static int real_path_of(int fd, char *real, size_t cap)
{
	char proc[64];
	ssize_t rl;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rl = readlink(proc, real, cap - 1);
	if (rl < 0)
		return -errno;
	if (rl == 0 || (size_t)rl >= cap - 1)
		return -ENAMETOOLONG;
	real[rl] = '\0';
	return 0;
}

/* Is st the root of a layer on filesystem fsidx? */
static const struct onfs_layer *layer_root(const struct onfs_export *ex, uint8_t fsidx,
					   const struct stat *st)
{
	struct stat lst;

	for (size_t i = 0; i < ex->nlayers; i++) {
		const struct onfs_layer *l = &ex->layers[i];

		if (l->fsidx == fsidx && l->fd >= 0 && fstat(l->fd, &lst) == 0 &&
		    lst.st_dev == st->st_dev && lst.st_ino == st->st_ino)
			return l;
	}
	return NULL;
}

/* Prepend name to the path *acc (malloc'd, "" at first). */
static int prepend(char **acc, const char *name)
{
	size_t nl = strlen(name), al = strlen(*acc);
	char *p = malloc(nl + al + 2);

	if (!p)
		return -ENOMEM;
	memcpy(p, name, nl);
	if (al) {
		p[nl] = '/';
		memcpy(p + nl + 1, *acc, al + 1);
	} else {
		p[nl] = '\0';
	}
	free(*acc);
	*acc = p;
	return 0;
}

/*
 * A directory whose path is too long for /proc (the kernel's d_path
 * stops at PATH_MAX): walk up with ".." from it, finding each name in its
 * parent by inode (as getcwd does), until a layer root, or an ancestor
 * whose path /proc can give, is reached. Bounded.
 */
static int locate_dir_up(struct onfs_export *ex, uint8_t fsidx, int fd,
			 const struct onfs_layer **lay, char **rel)
{
	enum { MAX_UP = 1 << 16 };
	char *acc = strdup(""), *real = malloc(PATH_MAX);
	struct stat st, pst, est;
	int cur = dup(fd), ret = -ESTALE;

	if (!acc || !real || cur < 0) {
		ret = -ENOMEM;
		goto out;
	}
	for (int up = 0; up < MAX_UP; up++) {
		const struct onfs_layer *l;
		struct dirent *e;
		const char *r;
		bool found = false;
		int pfd, dfd;
		DIR *d;

		if (fstat(cur, &st) < 0)
			break;
		l = layer_root(ex, fsidx, &st);
		if (l) {
			*lay = l;
			*rel = acc;
			acc = NULL;
			ret = 0;
			break;
		}
		if (up > 0 && real_path_of(cur, real, PATH_MAX) == 0) {
			/* short enough now: the rest as for any object */
			l = layer_of(ex, fsidx, real, &r);
			if (!l)
				break;
			if (*r && prepend(&acc, r) < 0) {
				ret = -ENOMEM;
				break;
			}
			*lay = l;
			*rel = acc;
			acc = NULL;
			ret = 0;
			break;
		}
		pfd = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0)
			break;
		if (fstat(pfd, &pst) < 0 || (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino)) {
			close(pfd); /* the filesystem's root: in no layer */
			break;
		}
		dfd = dup(pfd);
		d = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (!d && dfd >= 0)
			close(dfd);
		while (d && (e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
			    (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
				continue;
			if (fstatat(pfd, e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
			    est.st_dev == st.st_dev && est.st_ino == st.st_ino) {
				found = prepend(&acc, e->d_name) == 0;
				break;
			}
		}
		if (d)
			closedir(d);
		close(cur);
		cur = pfd;
		if (!found)
			break;
	}
out:
	if (cur >= 0)
		close(cur);
	free(acc);
	free(real);
	return ret;
}

/*
 * A regular file whose path is too long for /proc/self/fd: its memory
 * map's line in /proc/self/maps spells the path at any length (the
 * kernel grows that buffer). "\012" there stands for a newline.
 */
static int long_path_of_file(int fd, char **out)
{
	char proc[64], *buf = NULL, *line, *path = NULL;
	size_t cap = 1 << 16, len = 0;
	void *map = MAP_FAILED;
	int rfd, mfd = -1, ret = -ESTALE;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rfd < 0)
		return -ESTALE;
	map = mmap(NULL, 1, PROT_READ, MAP_SHARED, rfd, 0);
	if (map == MAP_FAILED)
		goto out;
	mfd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	buf = malloc(cap);
	if (mfd < 0 || !buf)
		goto out;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		n = read(mfd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	snprintf(proc, sizeof(proc), "%lx-", (unsigned long)map);
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char *end, *p, *w;
		int field = 0;

		if (strncmp(line, proc, strlen(proc)) != 0)
			continue;
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		/* address perms offset dev inode, then spaces, then the path */
		for (p = line; *p && field < 5; field++) {
			while (*p && *p != ' ')
				p++;
			while (*p == ' ')
				p++;
		}
		if (*p != '/')
			break;
		path = strdup(p);
		if (!path)
			break;
		for (p = w = path; *p;) {
			if (strncmp(p, "\\012", 4) == 0) {
				*w++ = '\n';
				p += 4;
			} else {
				*w++ = *p++;
			}
		}
		*w = '\0';
		ret = 0;
		break;
	}
out:
	if (mfd >= 0)
		close(mfd);
	if (map != MAP_FAILED)
		munmap(map, 1);
	close(rfd);
	free(buf);
	if (ret == 0)
		*out = path;
	return ret;
}

int onfs_locate(struct onfs_export *ex, uint8_t fsidx, int fd, const struct onfs_layer **lay,
		char **rel)
{
	char *real = malloc(PATH_MAX), *longp = NULL;
	const struct onfs_layer *l = NULL;
	const char *r = NULL;
	struct stat st;
	int ret;

	if (!real)
		return -ENOMEM;
	ret = real_path_of(fd, real, PATH_MAX);
	if (ret == 0) {
		l = layer_of(ex, fsidx, real, &r);
	} else if (ret == -ENAMETOOLONG && fstat(fd, &st) == 0) {
		/* deeper than /proc can say (docs/overlay.md, "Deep trees") */
		if (S_ISDIR(st.st_mode)) {
			free(real);
			return locate_dir_up(ex, fsidx, fd, lay, rel);
		}
		if (S_ISREG(st.st_mode) && long_path_of_file(fd, &longp) == 0)
			l = layer_of(ex, fsidx, longp, &r);
	}
	ret = -ESTALE;
	if (l) {
		*rel = strdup(r);
		*lay = l;
		ret = *rel ? 0 : -ENOMEM;
	}
	free(longp);
	free(real);
	return ret;
}

/*
 * A node for a lower origin reached without a name (through the index, or
 * after its directory moved): one part, path unknown, non-directory only.
 */
static int unnamed_node(struct onfs_export *ex, const struct onfs_ident *id, uint8_t layer,
			const char *rel, uint32_t type, uint64_t ino, struct onfs_node **out)
{
	struct onfs_node *n = calloc(1, sizeof(*n) + sizeof(struct onfs_part));

	if (!n)
		return -ENOMEM;
	atomic_init(&n->ref, 1);
	atomic_init(&n->fd, -1);
	atomic_init(&n->wfd, -1);
	n->path = strdup("");
	n->parts[0].rel = strdup(rel);
	if (!n->path || !n->parts[0].rel) {
		onfs_node_free(n);
		return -ENOMEM;
	}
	n->parts[0].layer = layer;
	n->nparts = 1;
	n->type = type;
	n->ident = *id;
	n->ident_lower = true;
	n->unnamed = true;
	n->born = onfs_now_ns();
	n->fileid = onfs_export_fileid(ex, id->fsidx, ino);
	onfs_fh_encode(ex, &n->ident, &n->fh);
	onfs_node_cache_put(ex, n);
	*out = n;
	return 0;
}

/*
 * A copied-up origin is found through the index (nfs_export format):
 * a whiteout means deleted (STALE); a directory names its upper copy in
 * its upper xattr; a non-directory is a hard link of the upper copy.
 * -ENOENT when the index says nothing about this identity.
 */
static int from_index(struct onfs_export *ex, const struct onfs_ident *id,
		      struct onfs_node **out)
{
	char idx[2 * (21 + ONFS_FID_MAX) + 1], attr[64], *rel = NULL;
	const struct onfs_layer *lay;
	uint8_t fb[21 + ONFS_FID_MAX];
	struct onfs_ident uid = { 0 };
	struct onfs_node *n;
	struct stat st;
	uint64_t ino;
	uint32_t type;
	int fd, len, ret;

	if (ex->index_fd < 0)
		return -ENOENT;
	onfs_upper_index_name(ex, id, idx, sizeof(idx));
	if (!idx[0] || fstatat(ex->index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -ENOENT;
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
		return -ESTALE;
	if (S_ISDIR(st.st_mode)) {
		onfs_ovl_xattr(ex, "upper", attr, sizeof(attr));
		len = onfs_fs_getxattr_at(ex->index_fd, idx, attr, (char *)fb, sizeof(fb));
		if (len < 22 || fb[1] != 0xfb || fb[2] != len || !ex->has_upper)
			return -ENOENT;
		uid.fsidx = ex->layers[0].fsidx;
		uid.type = fb[4];
		uid.len = (uint8_t)(len - 21);
		memcpy(uid.fid, fb + 21, uid.len);
		fd = onfs_fs_open_ident(ex->fs_fd[uid.fsidx], &uid, O_PATH);
		if (fd < 0)
			return -ESTALE;
		ret = onfs_locate(ex, uid.fsidx, fd, &lay, &rel);
		close(fd);
		if (ret < 0)
			return -ESTALE;
		ret = onfs_walk(ex, rel, &n);
		free(rel);
		if (ret < 0)
			return -ESTALE;
		if (!onfs_ident_eq(&n->ident, id)) {
			onfs_node_put(n);
			return -ESTALE;
		}
		*out = n;
		return 0;
	}
	/* a non-directory: serve the upper inode through its index name; its
	 * fileid is the origin's inode number, as for any copied-up object */
	ino = st.st_ino;
	type = st.st_mode & S_IFMT;
	fd = onfs_fs_open_ident(ex->fs_fd[id->fsidx], id, O_PATH);
	if (fd >= 0 && fstat(fd, &st) == 0)
		ino = st.st_ino;
	if (fd >= 0)
		close(fd);
	return unnamed_node(ex, id, ONFS_LAYER_INDEX, idx, type, ino, out);
}

/*
 * Is the directory that held rel no longer at its path in the merged view
 * (renamed away)? Then its entries moved with it. If it is still there,
 * the name itself is gone (whited out): STALE.
 */
static bool parent_moved(struct onfs_export *ex, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	struct onfs_node *p;
	size_t len = slash ? (size_t)(slash - rel) : 0;
	char *parent;
	int ret;

	if (len == 0)
		return false; /* the root never moves */
	parent = strndup(rel, len);
	if (!parent)
		return false;
	ret = onfs_walk(ex, parent, &p);
	free(parent);
	if (ret < 0)
		return true;
	onfs_node_put(p);
	return false;
}

/*
 * Find where the lower directory dirname(rel) shows in the merged view now
 * that it was renamed: walk the upper layer's directories breadth first,
 * tracking which lower path each one stands for (its name, or its
 * redirect, docs/overlay.md "Lookup"), until one stands for it. Bounded.
 */
struct reloc_ent {
	char *upper; /* merged (= upper) path */
	char *lower; /* the lower path it stands for */
};

static int relocate(struct onfs_export *ex, const struct onfs_ident *id, const char *rel,
		    bool isdir, struct onfs_node **out)
{
	enum { MAX_DIRS = 200000 };
	const char *slash = strrchr(rel, '/');
	/* a directory is looked for itself; a file by its directory */
	size_t plen = isdir ? strlen(rel) : slash ? (size_t)(slash - rel) : 0;
	struct reloc_ent *q = NULL;
	size_t head = 0, tail = 0, cap = 1024, bestlen = 0;
	char attr[64], redir[PATH_MAX], *best = NULL;
	bool exact = false;
	int ret = -ENOENT;

	if (!ex->has_upper || plen == 0)
		return -ENOENT;
	onfs_ovl_xattr(ex, "redirect", attr, sizeof(attr));
	q = malloc(sizeof(*q) * cap);
	if (!q)
		return -ENOMEM;
	q[tail++] = (struct reloc_ent){ strdup(""), strdup("") };
	while (head < tail && !exact && tail < MAX_DIRS) {
		struct reloc_ent cur = q[head++];
		int dfd = cur.upper ? onfs_fs_open_beneath(ex->layers[0].fd, cur.upper,
							   O_RDONLY | O_DIRECTORY) : -ENOMEM;
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		struct dirent *e;

		if (!d && dfd >= 0)
			close(dfd);
		while (d && cur.lower && (e = readdir(d)) && !exact) {
			char *up = NULL, *low = NULL;
			size_t ll;
			int n;

			if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			/* the lower path this upper directory stands for (its redirect) */
			n = onfs_fs_getxattr_at(dirfd(d), e->d_name, attr, redir, sizeof(redir) - 1);
			if (n > 0) {
				redir[n] = '\0';
				if (redir[0] == '/')
					low = strdup(redir + 1);
				else if (cur.lower[0] && asprintf(&low, "%s/%s", cur.lower, redir) < 0)
					low = NULL;
				else if (!cur.lower[0])
					low = strdup(redir);
			} else if (cur.lower[0]) {
				if (asprintf(&low, "%s/%s", cur.lower, e->d_name) < 0)
					low = NULL;
			} else {
				low = strdup(e->d_name);
			}
			if (cur.upper[0]) {
				if (asprintf(&up, "%s/%s", cur.upper, e->d_name) < 0)
					up = NULL;
			} else {
				up = strdup(e->d_name);
			}
			if (!up || !low) {
				free(up);
				free(low);
				continue;
			}
			/* the deepest upper directory standing for an ancestor (or itself) */
			ll = strlen(low);
			if (ll <= plen && strncmp(low, rel, ll) == 0 && (ll == plen || rel[ll] == '/') &&
			    ll > bestlen) {
				free(best);
				best = NULL;
				if (asprintf(&best, "%s%.*s", up, (int)(plen - ll), rel + ll) < 0)
					best = NULL;
				bestlen = ll;
				exact = ll == plen;
			}
			if (tail == cap) {
				struct reloc_ent *nq = realloc(q, sizeof(*q) * cap * 2);
				if (!nq) {
					free(up);
					free(low);
					break;
				}
				q = nq;
				cap *= 2;
			}
			q[tail++] = (struct reloc_ent){ up, low };
		}
		if (d)
			closedir(d);
		free(cur.upper);
		free(cur.lower);
	}
	for (size_t i = head; i < tail; i++) {
		free(q[i].upper);
		free(q[i].lower);
	}
	free(q);
	if (best) {
		struct onfs_node *n;
		char *path = NULL;

		if ((isdir ? asprintf(&path, "%s", best)
			   : asprintf(&path, "%s/%s", best, rel + plen + 1)) > 0 &&
		    onfs_walk(ex, path, &n) == 0) {
			if (onfs_ident_eq(&n->ident, id)) {
				*out = n;
				ret = 0;
			} else {
				onfs_node_put(n);
			}
		}
		free(path);
		free(best);
	}
	return ret;
}

static int unnamed_lower(struct onfs_export *ex, const struct onfs_ident *id,
			 const struct onfs_layer *lay, const char *rel, struct onfs_node **out)
{
	struct stat st;
	int fd = onfs_fs_open_beneath(lay->fd, rel, O_PATH); /* any depth */
	int ret = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : 0;

	if (fd >= 0)
		close(fd);
	if (ret < 0 || S_ISDIR(st.st_mode))
		return -ESTALE;
	return unnamed_node(ex, id, (uint8_t)(lay - ex->layers), rel, st.st_mode & S_IFMT,
			    st.st_ino, out);
}

int onfs_fh_decode_ident(struct onfs_export *ex, const struct onfs_ident *id,
			 struct onfs_node **out)
{
	struct onfs_fh fh;

	onfs_fh_encode(ex, id, &fh);
	onfs_node_cache_drop(ex, &fh);
	return onfs_node_from_fh(ex, fh.data, fh.len, out);
}

/* The checks of a handle that need no filesystem: 0 or -errno. */
static int fh_check(struct onfs_export *ex, const uint8_t *fh, size_t len)
{
	uint16_t exid;
	uint8_t mac[8];
	int ret;

	ret = onfs_fh_export_id(fh, len, &exid);
	if (ret < 0)
		return ret;
	put_le64(mac, onfs_siphash24(ex->key, fh, len - ONFS_FH_MAC));
	if (exid != ex->id || memcmp(mac, fh + len - ONFS_FH_MAC, ONFS_FH_MAC) != 0 ||
	    fh[1] >= ex->numfs)
		return -ESTALE;
	return 0;
}

int onfs_node_from_fh_cached(struct onfs_export *ex, const uint8_t *fh, size_t len,
			     struct onfs_node **out)
{
	int ret = fh_check(ex, fh, len);

	if (ret < 0)
		return ret;
	*out = cache_get(ex->nodes, fh, len);
	return *out ? 0 : -ENOENT;
}

static int moved(struct onfs_export *ex, const struct onfs_ident *idp,
		 const struct onfs_layer *lay, const char *rel, bool isdir, struct onfs_node **out);

/*
 * A decoded object's merged node without a walk from the root: its
 * directory in its layer names, by its handle, the merged directory when
 * that layer holds the directory's identity (a lower-only directory, or
 * the topmost lower part of a merged one); when the node cache has that
 * directory, one lookup of the name in it, whose identity must be the
 * handle's. -ENOENT: not so (the caller walks).
 */
static int via_parent(struct onfs_export *ex, const struct onfs_layer *lay, const char *rel,
		      const struct onfs_ident *id, struct onfs_node **out)
{
	const char *slash = strrchr(rel, '/');
	struct onfs_ident pid = { 0 };
	struct onfs_node *dir, *n;
	struct onfs_fh fh;
	char *pdir;
	int pfd, ret;

	if (!slash || lay->fd < 0)
		return -ENOENT; /* in a layer root: the walk is the root and one name */
	pdir = strndup(rel, (size_t)(slash - rel));
	if (!pdir)
		return -ENOENT;
	pfd = onfs_fs_open_beneath(lay->fd, pdir, O_PATH | O_DIRECTORY);
	free(pdir);
	if (pfd < 0)
		return -ENOENT;
	ret = onfs_fs_name_to_ident(pfd, "", &pid);
	close(pfd);
	if (ret < 0)
		return -ENOENT;
	pid.fsidx = lay->fsidx;
	onfs_fh_encode(ex, &pid, &fh);
	dir = cache_get(ex->nodes, fh.data, fh.len);
	if (!dir)
		return -ENOENT;
	ret = S_ISDIR(dir->type) ? onfs_lookup(ex, dir, slash + 1, &n) : -ENOTDIR;
	onfs_node_put(dir);
	if (ret < 0)
		return -ENOENT;
	if (!onfs_ident_eq(&n->ident, id)) {
		onfs_node_put(n);
		return -ENOENT;
	}
	*out = n;
	return 0;
}

int onfs_node_from_fh(struct onfs_export *ex, const uint8_t *fh, size_t len,
		      struct onfs_node **out)
{
	const struct onfs_layer *lay;
	struct onfs_ident id;
	struct onfs_node *n;
	char *rel = NULL;
	struct stat st;
	bool isdir;
	int fd, ret;

	ret = fh_check(ex, fh, len);
	if (ret < 0)
		return ret;
	/* a request works on one export: its owner's credentials from here on */
	ret = onfs_owner_enter(ex);
	if (ret < 0)
		return ret;

	n = cache_get(ex->nodes, fh, len);
	if (n) {
		*out = n;
		return 0;
	}
	memset(&id, 0, sizeof(id));
	id.fsidx = fh[1];
	id.type = fh[4];
	id.len = fh[5];
	memcpy(id.fid, fh + ONFS_FH_HDR, id.len);
	if (!ex->by_handle)
		return onfs_idmap_resolve(ex, &id, 0, out);
	/* the root of a base the export moved away from is still its root (base.c) */
	if (ex->root_fixed && onfs_ident_eq(&id, &ex->root_ident))
		return onfs_root(ex, out);
	ret = from_index(ex, &id, out);
	if (ret != -ENOENT)
		return ret;
	fd = onfs_fs_open_ident(ex->fs_fd[id.fsidx], &id, O_PATH);
	if (fd < 0)
		return -ESTALE;
	isdir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	/*
	 * The decoded object must lie inside one of this export's layers, and
	 * the merged lookup of that path must find this very identity: a
	 * hidden, renamed-away or foreign object is STALE, never another one.
	 */
	ret = onfs_locate(ex, id.fsidx, fd, &lay, &rel);
	close(fd);
	if (ret < 0)
		return -ESTALE;
	if (!isdir && via_parent(ex, lay, rel, &id, &n) == 0) {
		free(rel);
		*out = n;
		return 0;
	}
	ret = onfs_walk(ex, rel, &n);
	if (ret == 0 && onfs_ident_eq(&n->ident, &id)) {
		free(rel);
		*out = n;
		return 0;
	}
	if (ret == 0)
		onfs_node_put(n);
	ret = moved(ex, &id, lay, rel, isdir, out);
	free(rel);
	return ret;
}

/*
 * The rest of onfs_node_from_fh: an object found in a layer whose merged
 * lookup by path did not find it.
 */
static int moved(struct onfs_export *ex, const struct onfs_ident *idp,
		 const struct onfs_layer *lay, const char *rel, bool isdir, struct onfs_node **out)
{
	const struct onfs_ident id = *idp;
	int ret;

	if (lay->upper)
		return -ESTALE;
	/* copied up, then moved, then committed: the index that knew is gone (commit.c) */
	if (!isdir && onfs_commit_find(ex, &id, out) == 0)
		return 0;
	if (isdir)
		return relocate(ex, &id, rel, true, out) == 0 ? 0 : -ESTALE;
	if (!parent_moved(ex, rel))
		return -ESTALE;
	ret = relocate(ex, &id, rel, false, out);
	if (ret != -ENOENT)
		return ret;
	return unnamed_lower(ex, &id, lay, rel, out);
}
