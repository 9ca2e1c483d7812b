/*
 * lookup.c - the merged view's name lookup (docs/overlay.md, "Lookup"): upper wins, a
 * whiteout ends the search, a non-directory hides everything below it, a
 * directory stacks with the directories below it until one is opaque, and
 * redirects (relative or absolute) move the search in the layers below.
 * It also decides each node's identity (docs/architecture.md: the origin) and fileid.
 *
 * Pool workers only. Never follows a symlink (fsops.c resolves beneath
 * the layer roots) and never writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (!p)
		return NULL;
	if (la == 0) {
		memcpy(p, b, lb + 1);
	} else {
		memcpy(p, a, la);
		p[la] = '/';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

int onfs_part_open(struct onfs_export *ex, const struct onfs_part *p, int flags)
{
	if (p->layer == ONFS_LAYER_INDEX)
		return onfs_fs_open_beneath(ex->index_fd, p->rel, flags);
	return onfs_fs_open_beneath(ex->layers[p->layer].fd, p->rel, flags);
}

int onfs_node_open(struct onfs_export *ex, struct onfs_node *n, int flags)
{
	return onfs_part_open(ex, &n->parts[0], flags);
}

/* First byte of an overlay xattr on fd, 0 when absent. */
static char ovl_flag(struct onfs_export *ex, int fd, const char *attr)
{
	char name[64], v[8];

	onfs_ovl_xattr(ex, attr, name, sizeof(name));
	if (onfs_fs_getxattr(fd, name, v, sizeof(v)) < 1)
		return 0;
	return v[0];
}

/* The same for the entry name in dirfd (not followed): one lgetxattr. */
static char ovl_flag_at(struct onfs_export *ex, int dirfd, const char *name, const char *attr)
{
	char xname[64], v[8];

	onfs_ovl_xattr(ex, attr, xname, sizeof(xname));
	if (onfs_fs_getxattr_at(dirfd, name, xname, v, sizeof(v)) < 1)
		return 0;
	return v[0];
}

bool onfs_is_whiteout(struct onfs_export *ex, int dirfd, const char *name,
		      const struct stat *st, bool wh_xattr)
{
	char attr[64], v[4];

	if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
		return true;
	/* xattr whiteouts count only in a directory marked opaque=x, as the kernel's */
	if (wh_xattr && S_ISREG(st->st_mode) && st->st_size == 0) {
		onfs_ovl_xattr(ex, "whiteout", attr, sizeof(attr));
		return onfs_fs_getxattr_at(dirfd, name, attr, v, sizeof(v)) >= 0;
	}
	return false;
}

/*
 * The identity of an upper non-directory with an origin xattr: the lower
 * object it was copied up from (kernel ovl_fb format, docs/overlay.md).
 * Returns 0 and fills id/ino, or -ENOENT when there is no usable origin.
 */
static int origin_ident(struct onfs_export *ex, int dirfd, const char *name, uint32_t type,
			struct onfs_ident *id, uint64_t *ino)
{
	char attr[64];
	uint8_t fb[21 + ONFS_FID_MAX];
	struct stat st;
	int n, fd;

	onfs_ovl_xattr(ex, "origin", attr, sizeof(attr));
	n = onfs_fs_getxattr_at(dirfd, name, attr, (char *)fb, sizeof(fb));
	if (n < 22 || fb[0] != 0 || fb[1] != 0xfb || fb[2] != n)
		return -ENOENT;
	id->type = fb[4];
	id->len = (uint8_t)(n - 21);
	memcpy(id->fid, fb + 21, id->len);
	if (!ex->by_handle) {
		/*
		 * rootless: the origin cannot be opened; it names the lower
		 * filesystem by uuid (else the first lower layer's), and the
		 * caller finds its inode number below (rootless_origin_ino)
		 */
		id->fsidx = ex->layers[ex->has_upper ? 1 : 0].fsidx;
		for (size_t f = 0; f < ex->numfs; f++)
			if (memcmp(fb + 5, ex->fs_uuid[f], 16) == 0 && f != ex->layers[0].fsidx) {
				id->fsidx = (uint8_t)f;
				break;
			}
		*ino = 0;
		return 0;
	}
	for (size_t f = 0; f < ex->numfs; f++) {
		id->fsidx = (uint8_t)f;
		fd = onfs_fs_open_ident(ex->fs_fd[f], id, O_PATH);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != type) {
			close(fd);
			continue;
		}
		/* With several filesystems a handle could decode on the wrong
		 * one: make sure the object lies inside a lower layer. */
		if (ex->numfs > 1) {
			const struct onfs_layer *lay = NULL;
			char *rel = NULL;
			bool inside = onfs_locate(ex, (uint8_t)f, fd, &lay, &rel) == 0 && !lay->upper;

			free(rel);
			if (!inside) {
				close(fd);
				continue;
			}
		}
		close(fd);
		*ino = st.st_ino;
		return 0;
	}
	return -ENOENT;
}

struct found {
	struct onfs_part part;
	struct stat st;
};

static void use_index_copy(struct onfs_export *ex, struct found *f, const struct onfs_ident *id)
{
	char idx[2 * (21 + ONFS_FID_MAX) + 1];
	struct stat st;
	char *rel;

	onfs_upper_index_name(ex, id, idx, sizeof(idx));
	if (!idx[0] || fstatat(ex->index_fd, idx, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (st.st_mode & S_IFMT) != (f->st.st_mode & S_IFMT))
		return; /* none, or a whiteout: the lower object is what we have */
	rel = strdup(idx);
	if (!rel)
		return;
	free(f->part.rel);
	f->part.rel = rel;
	f->part.layer = ONFS_LAYER_INDEX;
	f->st = st;
}

static int make_node(struct onfs_export *ex, const char *path, struct found *f, size_t nf,
		     const struct onfs_ident *id, bool id_lower, uint64_t ino, bool impure,
		     bool wh_xattr, bool cache, unsigned dgen, unsigned ngen, bool ngen_ok,
		     struct onfs_node **out)
{
	struct onfs_node *n = calloc(1, sizeof(*n) + nf * sizeof(struct onfs_part));

	if (!n)
		return -ENOMEM;
	atomic_init(&n->ref, 1);
	atomic_init(&n->fd, -1);
	atomic_init(&n->wfd, -1);
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return -ENOMEM;
	}
	n->type = f[0].st.st_mode & S_IFMT;
	n->top_ino = f[0].st.st_ino;
	n->born = onfs_now_ns();
	n->born_dgen = dgen;
	n->born_gen = ngen;
	n->born_gen_ok = ngen_ok;
	n->ident = *id;
	n->ident_lower = id_lower;
	n->fileid = onfs_export_fileid(ex, id->fsidx, ino);
	n->impure = impure;
	n->wh_xattr = wh_xattr;
	n->nparts = (uint8_t)nf;
	for (size_t i = 0; i < nf; i++) {
		n->parts[i] = f[i].part; /* takes ownership of rel */
		f[i].part.rel = NULL;
	}
	onfs_fh_encode(ex, &n->ident, &n->fh);
	if (cache)
		onfs_node_cache_put(ex, n);
	*out = n;
	return 0;
}

static void free_found(struct found *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++)
		free(f[i].part.rel);
}

/*
 * Rootless: the inode number of an upper file's origin, found as the same
 * name in the parent's lower parts with the same file handle (fileid stays
 * stable across copy-up); the upper's own number when it moved.
 */
static uint64_t rootless_origin_ino(struct onfs_export *ex, const struct onfs_node *dir,
				    size_t from, const char *name, const struct onfs_ident *id,
				    uint64_t fallback)
{
	for (size_t i = from; i < dir->nparts; i++) {
		struct onfs_ident lid;
		struct stat st;
		int pfd = onfs_part_open(ex, &dir->parts[i], O_PATH | O_DIRECTORY);
		bool match;

		if (pfd < 0)
			continue;
		match = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			onfs_fs_name_to_ident(pfd, name, &lid) == 0 && lid.type == id->type &&
			lid.len == id->len && memcmp(lid.fid, id->fid, id->len) == 0;
		close(pfd);
		if (match)
			return st.st_ino;
	}
	return fallback;
}

/* Which part names a directory: 1 upper, 2 committed layer, 3 plain lower. */
static int id_rank(const struct onfs_export *ex, size_t layer)
{
	return ex->layers[layer].upper ? 1 : ex->layers[layer].committed ? 2 : 3;
}

/*
 * The search of one name below a parent's stack. "where" is the path of
 * the candidate in its layer; the parent directory is opened beneath the
 * layer root, then the name is stat'ed without following it.
 */
/* A parent descriptor of lookup_child: closed unless the caller lent it. */
static void put_pfd(int pfd, int borrowed)
{
	if (pfd != borrowed)
		close(pfd);
}

static int lookup_child(struct onfs_export *ex, const struct onfs_node *dir, const char *name,
			bool cache, const int *pfds, const bool *pxwh, struct stat *top_st,
			struct onfs_node **out)
{
	struct found f[ONFS_MAX_LAYERS];
	struct onfs_ident id = { 0 };
	char redirect[PATH_MAX], attr[64];
	char *cur = NULL;      /* owned: name to look up in the parent's parts */
	char *abs = NULL;      /* owned: absolute redirect (no leading '/') */
	size_t nf = 0, pi = 0, next_abs = 0;
	uint64_t ino = 0;
	bool have_id = false, impure = false, wh_xattr = false, id_lower = false;
	int have_rank = 0;
	char *path = NULL;
	/* the path is as good as the parent's: see onfs_export.gen_dirs */
	unsigned dgen = dir->born_dgen;
	unsigned ngen = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	/* likewise its parts: found in the parent's, which may be outdated */
	bool ngen_ok = dir->born_gen_ok && dir->born_gen == ngen;
	int ret = 0;

	cur = strdup(name);
	if (!cur)
		return -ENOMEM;
	for (;;) {
		struct stat st;
		char *where, *base, *pdir;
		size_t layer;
		int pfd, borrowed = -1;
		bool pwh = false, known_xwh = false, xwh = false;

		if (abs) {
			if (next_abs >= ex->nlayers)
				break;
			layer = next_abs++;
			where = strdup(abs);
		} else {
			if (pi >= dir->nparts)
				break;
			layer = dir->parts[pi].layer;
			pwh = dir->wh_xattr;
			where = join(dir->parts[pi].rel, cur);
			if (pfds)
				borrowed = pfds[pi]; /* the caller's open directory part */
			if (pxwh && borrowed >= 0) {
				known_xwh = true; /* the caller read its opaque xattr */
				xwh = pxwh[pi];
			}
			pi++;
		}
		if (!where) {
			ret = -ENOMEM;
			goto out;
		}
		base = strrchr(where, '/');
		if (base) {
			*base++ = '\0';
			pdir = where;
		} else {
			base = where;
			pdir = "";
		}
		pfd = borrowed >= 0 ? borrowed
				    : onfs_fs_open_beneath(ex->layers[layer].fd, pdir, O_PATH | O_DIRECTORY);
		if (pfd < 0) {
			free(where);
			if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
				continue;
			ret = pfd;
			goto out;
		}
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			put_pfd(pfd, borrowed);
			free(where);
			if (ret == -ENOENT || ret == -ENOTDIR) {
				ret = 0;
				continue;
			}
			goto out;
		}
		if (onfs_is_whiteout(ex, pfd, base, &st,
				     pwh || (S_ISREG(st.st_mode) && st.st_size == 0 &&
					     (known_xwh ? xwh
							: ovl_flag(ex, pfd, "opaque") == 'x')))) {
			put_pfd(pfd, borrowed);
			free(where);
			break;
		}
		if (nf > 0 && !S_ISDIR(st.st_mode)) { /* non-dir below a dir: ignored, stop */
			put_pfd(pfd, borrowed);
			free(where);
			break;
		}
		/* record this part; where becomes its rel path */
		if (base != where)
			base[-1] = '/';
		f[nf].part.layer = (uint8_t)layer;
		f[nf].part.rel = where;
		f[nf].st = st;
		nf++;

		if (!S_ISDIR(st.st_mode)) {
			/* the result: identity is the origin if it was copied up */
			if (ONFS_LAYER_WAS_UPPER(ex, layer) &&
			    origin_ident(ex, pfd, base, st.st_mode & S_IFMT, &id, &ino) == 0) {
				have_id = true;
				id_lower = true;
				if (ino == 0)
					ino = rootless_origin_ino(ex, dir, pi, cur, &id, st.st_ino);
			} else {
				ret = onfs_fs_name_to_ident(pfd, base, &id);
				id.fsidx = ex->layers[layer].fsidx;
				ino = st.st_ino;
				have_id = ret == 0;
				id_lower = !ex->layers[layer].upper;
			}
			put_pfd(pfd, borrowed);
			if (ret < 0)
				goto out;
			/*
			 * A lower non-directory may have been copied up without a
			 * name (through a handle, after its directory moved): the
			 * index entry is then its upper copy (index=on lookup).
			 */
			if (id_lower && !ex->layers[layer].upper && ex->index_fd >= 0 &&
			    atomic_load(&ex->index_used))
				use_index_copy(ex, &f[0], &id);
			break;
		}
		/*
		 * The directory's handle and xattrs by its name in pfd (no open
		 * of it: name_to_handle_at and lgetxattr do not follow the name,
		 * which fstatat just saw as a directory).
		 */
		/*
		 * a directory's identity: the topmost lower part, else the upper;
		 * committed layers (commit.c) count as they did when they were the
		 * upper: below a plain lower part, else the oldest (bottom) one
		 */
		if (!have_id || id_rank(ex, layer) > have_rank ||
		    (id_rank(ex, layer) == 2 && have_rank == 2)) {
			have_rank = id_rank(ex, layer);
			ret = onfs_fs_name_to_ident(pfd, base, &id);
			if (ret < 0) {
				put_pfd(pfd, borrowed);
				goto out;
			}
			id.fsidx = ex->layers[layer].fsidx;
			ino = st.st_ino;
			have_id = true;
			id_lower = !ex->layers[layer].upper;
		}
		{
			char op = ovl_flag_at(ex, pfd, base, "opaque");
			if (op == 'x')
				wh_xattr = true;
			if (ONFS_LAYER_WAS_UPPER(ex, layer) &&
			    ovl_flag_at(ex, pfd, base, "impure") == 'y')
				impure = true;
			if (op == 'y') {
				put_pfd(pfd, borrowed);
				break;
			}
		}
		/* a redirect moves the search in the layers below (docs/overlay.md, "Lookup") */
		onfs_ovl_xattr(ex, "redirect", attr, sizeof(attr));
		ret = onfs_fs_getxattr_at(pfd, base, attr, redirect, sizeof(redirect) - 1);
		put_pfd(pfd, borrowed);
		if (ret > 0) {
			redirect[ret] = '\0';
			if (redirect[0] == '/') {
				char *p = redirect;
				while (*p == '/')
					p++;
				free(abs);
				abs = strdup(p);
				next_abs = layer + 1;
			} else if (!strchr(redirect, '/')) {
				if (abs) { /* relative inside an absolute walk: a sibling */
					char *slash = strrchr(abs, '/');
					char *n2;
					if (slash) {
						*slash = '\0';
						n2 = join(abs, redirect);
					} else {
						n2 = strdup(redirect);
					}
					free(abs);
					abs = n2;
				} else {
					free(cur);
					cur = strdup(redirect);
				}
			}
			if ((abs == NULL && cur == NULL) || (redirect[0] == '/' && !abs)) {
				ret = -ENOMEM;
				goto out;
			}
		}
		ret = 0;
	}
	if (nf == 0) {
		ret = -ENOENT;
		goto out;
	}
	path = join(dir->path, name);
	if (!path) {
		ret = -ENOMEM;
		goto out;
	}
	if (top_st)
		*top_st = f[0].st;
	ret = make_node(ex, path, f, nf, &id, id_lower, ino, impure, wh_xattr, cache, dgen, ngen,
			ngen_ok, out);
	if (ret == 0 && cache && ex->idmap)
		onfs_idmap_record(ex, &id, &dir->ident, name);
out:
	free_found(f, nf);
	free(path);
	free(cur);
	free(abs);
	return ret;
}

int onfs_root(struct onfs_export *ex, struct onfs_node **out)
{
	struct found f[ONFS_MAX_LAYERS];
	struct onfs_ident id = { 0 };
	size_t i, nf = 0, idl, fidl = 0;
	bool impure = false, wh_xattr = false;
	unsigned dgen = atomic_load_explicit(&ex->gen_dirs, memory_order_acquire);
	unsigned ngen = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	int ret;

	/* MOUNT and the walks start here: the owner's credentials */
	ret = onfs_owner_enter(ex);
	if (ret < 0)
		return ret;
	/* identity: the top lower root (the upper root's origin); committed layers
	 * (commit.c) are skipped, so the root keeps its handle across a commit */
	idl = ex->has_upper ? 1 : 0;
	while (idl + 1 < ex->nlayers && ex->layers[idl].committed)
		idl++;
	ret = onfs_fs_name_to_ident(ex->layers[idl].fd, "", &id);
	if (ret < 0)
		return ret;
	id.fsidx = ex->layers[idl].fsidx;
	for (i = 0; i < ex->nlayers; i++) {
		/* an instance whose upper does not exist yet (instance.c) */
		if (ex->layers[i].fd < 0)
			continue;
		if (i == idl)
			fidl = nf;
		if (fstat(ex->layers[i].fd, &f[nf].st) < 0) {
			ret = -errno;
			goto out;
		}
		f[nf].part.layer = (uint8_t)i;
		f[nf].part.rel = strdup("");
		if (!f[nf].part.rel) {
			ret = -ENOMEM;
			goto out;
		}
		nf++;
		if (ovl_flag(ex, ex->layers[i].fd, "opaque") == 'x')
			wh_xattr = true;
		if (ONFS_LAYER_WAS_UPPER(ex, i) && ovl_flag(ex, ex->layers[i].fd, "impure") == 'y')
			impure = true;
	}
	/* after a base move the root keeps its first identity (base.c) */
	ret = make_node(ex, "", f, nf, ex->root_fixed ? &ex->root_ident : &id, true,
			ex->root_fixed ? ex->root_ino : f[fidl].st.st_ino, impure, wh_xattr, true,
			dgen, ngen, true, out);
out:
	free_found(f, nf);
	return ret;
}

int onfs_lookup(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		struct onfs_node **out)
{
	size_t len = strlen(name);
	uint64_t born;
	unsigned gen;
	int ret;

	if (len == 0 || strchr(name, '/'))
		return -EACCES;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	if (strcmp(name, ".") == 0) {
		*out = onfs_node_get(dir);
		return 0;
	}
	if (strcmp(name, "..") == 0) {
		/* merged paths may be longer than PATH_MAX: the parent on the heap */
		const char *slash = strrchr(dir->path, '/');
		size_t pl = slash ? (size_t)(slash - dir->path) : 0;
		char *parent;

		if (dir->path[0] == '\0' || pl == 0)
			return onfs_root(ex, out);
		parent = strndup(dir->path, pl);
		if (!parent)
			return -ENOMEM;
		ret = onfs_walk(ex, parent, out);
		free(parent);
		return ret;
	}
	/*
	 * For the lookup cache: the generation and the time BEFORE the disk
	 * reads, and only in a directory node no namespace change has
	 * outdated (else the answer of a stale node would be kept for others).
	 */
	gen = atomic_load_explicit(&ex->gen_ns, memory_order_acquire);
	if (!ex->dcache || !dir->born_gen_ok || dir->born_gen != gen)
		return lookup_child(ex, dir, name, true, NULL, NULL, NULL, out);
	born = onfs_now_ns();
	ret = lookup_child(ex, dir, name, true, NULL, NULL, NULL, out);
	if (ret == 0 || ret == -ENOENT)
		onfs_dcache_store(ex, dir, name, ret == 0 ? *out : NULL, gen, born);
	return ret;
}

bool onfs_lower_has(struct onfs_export *ex, struct onfs_node *dir, const char *name)
{
	struct onfs_node *view, *n;
	size_t k = 0;
	int ret;

	view = calloc(1, sizeof(*view) + dir->nparts * sizeof(struct onfs_part));
	if (!view)
		return true; /* err on the side of a whiteout */
	*view = (struct onfs_node){ .type = dir->type, .path = dir->path,
				    .wh_xattr = dir->wh_xattr };
	for (size_t i = 0; i < dir->nparts; i++)
		if (dir->parts[i].layer != ONFS_LAYER_INDEX && !ex->layers[dir->parts[i].layer].upper)
			view->parts[k++] = dir->parts[i]; /* borrowed rel */
	view->nparts = (uint8_t)k;
	ret = k ? lookup_child(ex, view, name, false, NULL, NULL, NULL, &n) : -ENOENT;
	free(view);
	if (ret == 0)
		onfs_node_put(n);
	return ret != -ENOENT;
}

int onfs_lookup_at(struct onfs_export *ex, struct onfs_node *dir, const int *pfds,
		   const bool *pxwh, const char *name, bool cache, struct stat *top_st,
		   struct onfs_node **out)
{
	if (!S_ISDIR(dir->type))
		return -ENOTDIR;
	return lookup_child(ex, dir, name, cache, pfds, pxwh, top_st, out);
}

int onfs_path_next(const char **path, char comp[NAME_MAX + 1])
{
	const char *p = *path, *e;

	while (*p == '/')
		p++;
	if (!*p) {
		*path = p;
		return 0;
	}
	e = strchr(p, '/');
	if (!e)
		e = p + strlen(p);
	if ((size_t)(e - p) > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, p, (size_t)(e - p));
	comp[e - p] = '\0';
	*path = e;
	return 1;
}

int onfs_walk(struct onfs_export *ex, const char *path, struct onfs_node **out)
{
	struct onfs_node *cur, *next;
	char comp[NAME_MAX + 1];
	int ret;

	ret = onfs_root(ex, &cur);
	if (ret < 0)
		return ret;
	while ((ret = onfs_path_next(&path, comp)) > 0) {
		ret = onfs_lookup(ex, cur, comp, &next);
		onfs_node_put(cur);
		if (ret < 0)
			return ret;
		cur = next;
	}
	if (ret < 0) {
		onfs_node_put(cur);
		return ret;
	}
	*out = cur;
	return 0;
}
