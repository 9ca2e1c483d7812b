/*
 * test-oracle-writes.c - differential oracle for the write path: the kernel
 * overlayfs (index=on,nfs_export=on,redirect_dir=on) is the reference.
 *
 * Each scenario is a set of layers plus a sequence of operations. The
 * layers are built once (side A) and copied with `cp -a` (side B, trusted.*
 * xattrs kept). Then:
 *   (a) A is mounted with `mount -t overlay`, the operations run as
 *       syscalls, the merged tree is recorded, the overlay is unmounted;
 *   (b) ovlnfsd serves B, the same operations run through libnfs (the sync
 *       high-level API; handle checks through the raw test client), the
 *       merged tree is recorded, the server is stopped by PID.
 * Compared: (1) the errno of every step, (2) the merged trees (names,
 * types, modes, owners, sizes, contents, link targets, rdev, nlink of
 * non-directories, mtimes that came from the layers), (3) the upper and
 * work directories on disk (types, whiteouts, modes, owners, nlink,
 * contents, holes of big files, every xattr; trusted.overlay.origin /
 * upper values and index entry names decoded to the layer object they
 * name, since the two copies have different inode numbers), (4) the
 * B upper written by ovlnfsd mounted by the kernel (same options) gives
 * the kernel tree of (2) again, and (5) the A upper written by the kernel
 * served by ovlnfsd gives it too.
 *
 * Differences allowed by design (normalised, documented here):
 *   - whiteouts: any mode/owner/nlink (the kernel shares one inode between
 *     its whiteouts, ovlnfsd makes fresh ones; docs/overlay.md);
 *   - temp names "#N" in index/ (the kernel's shared whiteout lives there
 *     with index=on; ovlnfsd uses work/): ignored;
 *   - trusted.overlay.uuid: ignored;
 *   - workdir entries other than work/ and index/ (ovlnfsd's workdir/ovlnfsd
 *     holding its lock, key and export id): ignored;
 *   - index/ entries are compared by the object their name decodes to and
 *     by kind (file / dir / whiteout), not by raw name;
 *   - directory mtimes/ctimes and times of objects created during the
 *     scenario (they differ in time by construction);
 *   - trusted.overlay.impure: the kernel sets it eagerly (even on parents
 *     of objects it copies up only to remove them) and drops it lazily at
 *     readdir (the kernel's impure rule); compared is only that every upper dir
 *     holding an entry with origin or redirect carries it;
 *   - the mount-time xattrs (origin=fh(lower root) on the upper root,
 *     upper=fh(upper root) on index/) are compared by s31a only;
 *   - nlink of a file after a kernel remount: an indexed copy-up of a lower
 *     file with nlink 1 reads the upper nlink (+1 for the index link) after
 *     a remount and 1 before (ovl_get_nlink ignores the nlink xattr then);
 *     where the kernel view comes from a remount, kernel = ovlnfsd + 1 is
 *     accepted for files;
 *   - protocol: NFSv3 has no open(), so "open O_RDWR without writing"
 *     (a kernel copy-up trigger) cannot be expressed and is not in any
 *     scenario; no rename flags (NOREPLACE/EXCHANGE/WHITEOUT), no xattr
 *     calls (xattr copy-up is checked through a chmod of a file carrying
 *     user.* xattrs); RENAME of a directory onto a non-empty directory may
 *     answer NFS3ERR_EXIST where the kernel says ENOTEMPTY (RFC 1813
 *     allows both).
 * work/ must be empty on both sides after unmount / server stop (except
 * in the scenario whose leftover makes both read-only).
 *
 * Debugging: ONFS_OW_VERBOSE=1 prints every step's result on both sides;
 * ONFS_OW_KEEP=1 keeps the temp tree; ONFS_OW_SELFTEST=1 runs the kernel
 * on side B too (the comparison must then find nothing); `--dump DIR`
 * prints the normalised disk dump of DIR (layers l0..l2, upper, work).
 *
 * Runs as root in a forked test process per scenario; unmounts in every
 * path (cleanup stack); every server it starts is stopped by PID.
 * Includes libnfs headers (never rpcgen's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

#define NLOWER 3
#define OLD_TIME 1500000000L   /* every layer object gets this mtime */
#define BIG_SIZE (3u << 20)
#define SPARSE_SIZE (8u << 20)

/* ------------------------------------------------------------------ */
/* recorded trees                                                      */
/* ------------------------------------------------------------------ */

struct ent {
	char *path;
	bool whiteout;
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t size, nlink, rdev;
	int64_t mt_s;
	uint32_t mt_ns;
	char *target;
	uint8_t *data;
	size_t len;
	int holes;       /* -1 not measured, 0/1 */
	char *xattrs;    /* disk dumps only */
};

struct tree {
	struct ent *e;
	size_t n, cap;
};

static struct ent *tree_add(struct tree *t, const char *path)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 128;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		ASSERT(t->e != NULL);
	}
	memset(&t->e[t->n], 0, sizeof(t->e[0]));
	t->e[t->n].path = strdup(path);
	t->e[t->n].holes = -1;
	return &t->e[t->n++];
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].target);
		free(t->e[i].data);
		free(t->e[i].xattrs);
	}
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static void tree_sort(struct tree *t)
{
	qsort(t->e, t->n, sizeof(t->e[0]), ent_cmp);
}

static char *relj(const char *dir, const char *name)
{
	char *p;

	ASSERT(asprintf(&p, "%s%s%s", dir, *dir ? "/" : "", name) > 0);
	return p;
}

/* A short printable description of a data difference. */
static void data_diff(const struct ent *a, const struct ent *b, char *out, size_t len)
{
	size_t i = 0, n = a->len < b->len ? a->len : b->len;

	while (i < n && a->data[i] == b->data[i])
		i++;
	snprintf(out, len, "contents differ at byte %zu (lengths %zu/%zu)", i, a->len, b->len);
}

/* CMP_NLINK_REMOUNT: the kernel view was taken after a remount, where an
 * indexed copy-up of a lower file with nlink 1 reads the upper nlink (one
 * more, for the index link) instead of 1 (ovl_get_nlink ignores the nlink
 * xattr then); allowed: kernel nlink == ovlnfsd nlink + 1 for files. */
enum { CMP_MERGED = 1, CMP_DISK = 2, CMP_NLINK_REMOUNT = 4 };

static bool old_time(int64_t s)
{
	return s < 1600000000L;
}

#define MAX_DIFFS 6

static void add_diff(char *msg, size_t len, int *nd, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_diff(char *msg, size_t len, int *nd, const char *fmt, ...)
{
	size_t used = strlen(msg);
	va_list ap;

	if (*nd == MAX_DIFFS)
		snprintf(msg + used, len - used, " | ...");
	if (*nd >= MAX_DIFFS) {
		(*nd)++;
		return;
	}
	if (*nd && used + 3 < len) {
		snprintf(msg + used, len - used, " | ");
		used += 3;
	}
	va_start(ap, fmt);
	vsnprintf(msg + used, len - used, fmt, ap);
	va_end(ap);
	(*nd)++;
}

/* The differences of two sorted trees (the first MAX_DIFFS), or "". */
static void tree_diff(struct tree *a, struct tree *b, const char *an, const char *bn,
		      int kind, char *msg, size_t len)
{
	size_t i = 0, j = 0;
	int nd = 0;

	msg[0] = 0;
	tree_sort(a);
	tree_sort(b);
	while (i < a->n || j < b->n) {
		const struct ent *x = i < a->n ? &a->e[i] : NULL;
		const struct ent *y = j < b->n ? &b->e[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->path, y->path);
		char d[1024];

		if (c < 0) {
			add_diff(msg, len, &nd, "'%s' only in %s", x->path, an);
			i++;
			continue;
		}
		if (c > 0) {
			add_diff(msg, len, &nd, "'%s' only in %s", y->path, bn);
			j++;
			continue;
		}
		d[0] = 0;
		if (x->whiteout != y->whiteout)
			snprintf(d, sizeof(d), "whiteout %d vs %d", x->whiteout, y->whiteout);
		else if (!x->whiteout && x->mode != y->mode)
			snprintf(d, sizeof(d), "mode 0%o vs 0%o", x->mode, y->mode);
		else if (!x->whiteout && (x->uid != y->uid || x->gid != y->gid))
			snprintf(d, sizeof(d), "owner %u:%u vs %u:%u", x->uid, x->gid, y->uid,
				 y->gid);
		else if (!S_ISDIR(x->mode) && x->size != y->size)
			snprintf(d, sizeof(d), "size %llu vs %llu", (unsigned long long)x->size,
				 (unsigned long long)y->size);
		else if (!x->whiteout && x->rdev != y->rdev)
			snprintf(d, sizeof(d), "rdev %llx vs %llx", (unsigned long long)x->rdev,
				 (unsigned long long)y->rdev);
		else if (!x->whiteout && ((kind & CMP_DISK) || !S_ISDIR(x->mode)) &&
			 x->nlink != y->nlink &&
			 !((kind & CMP_NLINK_REMOUNT) && S_ISREG(x->mode) &&
			   x->nlink == y->nlink + 1))
			snprintf(d, sizeof(d), "nlink %llu vs %llu", (unsigned long long)x->nlink,
				 (unsigned long long)y->nlink);
		else if ((x->target || y->target) &&
			 (!x->target || !y->target || strcmp(x->target, y->target) != 0))
			snprintf(d, sizeof(d), "link target '%s' vs '%s'",
				 x->target ? x->target : "-", y->target ? y->target : "-");
		else if (x->len != y->len ||
			 (x->len && memcmp(x->data, y->data, x->len) != 0))
			data_diff(x, y, d, sizeof(d));
		else if (!S_ISDIR(x->mode) && !x->whiteout &&
			 (old_time(x->mt_s) || old_time(y->mt_s)) &&
			 (x->mt_s != y->mt_s || x->mt_ns != y->mt_ns))
			snprintf(d, sizeof(d), "mtime %lld.%09u vs %lld.%09u",
				 (long long)x->mt_s, x->mt_ns, (long long)y->mt_s, y->mt_ns);
		else if (x->holes >= 0 && y->holes >= 0 && x->holes != y->holes)
			snprintf(d, sizeof(d), "holes %d vs %d", x->holes, y->holes);
		else if ((x->xattrs || y->xattrs) &&
			 strcmp(x->xattrs ? x->xattrs : "", y->xattrs ? y->xattrs : "") != 0)
			snprintf(d, sizeof(d), "xattrs {%.400s} vs {%.400s}",
				 x->xattrs ? x->xattrs : "", y->xattrs ? y->xattrs : "");
		if (d[0])
			add_diff(msg, len, &nd, "'%s': %s", x->path, d);
		i++;
		j++;
	}
	if (nd) {
		size_t used = strlen(msg);
		snprintf(msg + used, len - used, " (%s vs %s)", an, bn);
	}
}

/* ------------------------------------------------------------------ */
/* walking a local tree (kernel mount) and an NFS tree                 */
/* ------------------------------------------------------------------ */

static void read_local(const char *abs, struct ent *e)
{
	char *data = NULL;
	ssize_t n = tl_read_file(abs, &data);

	ASSERTF(n >= 0, "read '%s': %s", abs, strerror((int)-n));
	e->data = (uint8_t *)data;
	e->len = (size_t)n;
}

static void fill_from_stat(struct ent *e, const struct stat *st)
{
	e->mode = st->st_mode & (S_IFMT | 07777);
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size;
	e->nlink = st->st_nlink;
	e->rdev = (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) ? st->st_rdev : 0;
	e->mt_s = st->st_mtim.tv_sec;
	e->mt_ns = (uint32_t)st->st_mtim.tv_nsec;
}

static void walk_local(const char *mnt, const char *rel, struct tree *t, int depth)
{
	char abs[PATH_MAX];
	struct stat st;
	struct ent *e;

	ASSERTF(depth < 40, "tree too deep at '%s'", rel);
	tl_join(abs, sizeof(abs), mnt, rel);
	if (lstat(abs, &st) != 0) {
		/* recorded as a difference, not a crash of the comparison */
		e = tree_add(t, rel);
		ASSERT(asprintf(&e->target, "(lstat failed: %s)", strerror(errno)) > 0);
		return;
	}
	e = tree_add(t, rel);
	fill_from_stat(e, &st);
	if (S_ISLNK(st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(abs, buf, sizeof(buf) - 1);
		ASSERTF(n >= 0, "readlink '%s': %s", abs, strerror(errno));
		buf[n] = 0;
		e->target = strdup(buf);
	} else if (S_ISREG(st.st_mode)) {
		read_local(abs, e);
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(abs);
		struct dirent *de;
		char **names = NULL;
		size_t nn = 0;

		ASSERTF(d != NULL, "opendir '%s': %s", abs, strerror(errno));
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			names = realloc(names, (nn + 1) * sizeof(*names));
			names[nn++] = strdup(de->d_name);
		}
		closedir(d);
		for (size_t i = 0; i < nn; i++) {
			char *r = relj(rel, names[i]);
			walk_local(mnt, r, t, depth + 1);
			free(r);
			free(names[i]);
		}
		free(names);
	}
}

static void nfs_abs(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "/%s", rel);
}

static void walk_nfs(struct nfs_context *nfs, const char *rel, struct tree *t, int depth)
{
	char p[PATH_MAX];
	struct nfs_stat_64 st;
	struct ent *e;
	int r;

	ASSERTF(depth < 40, "tree too deep at '%s'", rel);
	nfs_abs(p, sizeof(p), rel);
	r = nfs_lstat64(nfs, p, &st);
	ASSERTF(r == 0, "nfs lstat '%s': %s", p, nfs_get_error(nfs));
	e = tree_add(t, rel);
	e->mode = (uint32_t)st.nfs_mode & (S_IFMT | 07777);
	e->uid = (uint32_t)st.nfs_uid;
	e->gid = (uint32_t)st.nfs_gid;
	e->size = S_ISDIR(e->mode) ? 0 : st.nfs_size;
	e->nlink = st.nfs_nlink;
	e->rdev = (S_ISCHR(e->mode) || S_ISBLK(e->mode)) ? st.nfs_rdev : 0;
	e->mt_s = (int64_t)st.nfs_mtime;
	e->mt_ns = (uint32_t)st.nfs_mtime_nsec;
	if (S_ISLNK(e->mode)) {
		char buf[PATH_MAX];
		memset(buf, 0, sizeof(buf));
		r = nfs_readlink(nfs, p, buf, sizeof(buf) - 1);
		ASSERTF(r == 0, "nfs readlink '%s': %s", p, nfs_get_error(nfs));
		e->target = strdup(buf);
	} else if (S_ISREG(e->mode)) {
		struct nfsfh *fh;
		uint64_t off = 0;

		r = nfs_open(nfs, p, O_RDONLY, &fh);
		ASSERTF(r == 0, "nfs open '%s': %s", p, nfs_get_error(nfs));
		e->data = malloc(st.nfs_size + 1);
		ASSERT(e->data != NULL);
		while (off < st.nfs_size) {
			uint64_t want = st.nfs_size - off;
			if (want > 1 << 20)
				want = 1 << 20;
			r = nfs_pread(nfs, fh, off, want, e->data + off);
			ASSERTF(r > 0, "nfs read '%s' at %llu: %s", p, (unsigned long long)off,
				r < 0 ? nfs_get_error(nfs) : "EOF");
			off += (uint64_t)r;
		}
		e->len = (size_t)off;
		nfs_close(nfs, fh);
	} else if (S_ISDIR(e->mode)) {
		struct nfsdir *d;
		struct nfsdirent *de;
		char **names = NULL;
		size_t nn = 0;

		r = nfs_opendir(nfs, p, &d);
		ASSERTF(r == 0, "nfs opendir '%s': %s", p, nfs_get_error(nfs));
		while ((de = nfs_readdir(nfs, d)) != NULL) {
			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				continue;
			names = realloc(names, (nn + 1) * sizeof(*names));
			names[nn++] = strdup(de->name);
		}
		nfs_closedir(nfs, d);
		for (size_t i = 0; i < nn; i++) {
			char *r2 = relj(rel, names[i]);
			walk_nfs(nfs, r2, t, depth + 1);
			free(r2);
			free(names[i]);
		}
		free(names);
	}
}

/* ------------------------------------------------------------------ */
/* on-disk dumps with decoded overlay file handles                     */
/* ------------------------------------------------------------------ */

struct fhmap_ent {
	int type;
	unsigned len;
	unsigned char fid[64];
	char *name;
};

struct fhmap {
	struct fhmap_ent *e;
	size_t n, cap;
};

static const char *fhmap_root_tag;
static struct fhmap *fhmap_cur;
static size_t fhmap_root_len;

static int fhmap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct {
		struct file_handle h;
		unsigned char buf[MAX_HANDLE_SZ];
	} fh;
	int mnt;
	struct fhmap *m = fhmap_cur;

	(void)st;
	(void)flag;
	(void)ftw;
	fh.h.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, path, &fh.h, &mnt, 0) != 0)
		return 0;
	if (fh.h.handle_bytes > sizeof(m->e[0].fid))
		return 0;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		ASSERT(m->e != NULL);
	}
	m->e[m->n].type = fh.h.handle_type;
	m->e[m->n].len = fh.h.handle_bytes;
	memcpy(m->e[m->n].fid, fh.h.f_handle, fh.h.handle_bytes);
	ASSERT(asprintf(&m->e[m->n].name, "%s:/%s", fhmap_root_tag,
			path + fhmap_root_len + (path[fhmap_root_len] == '/')) > 0);
	m->n++;
	return 0;
}

static void fhmap_add_layer(struct fhmap *m, const char *root, const char *tag)
{
	fhmap_cur = m;
	fhmap_root_tag = tag;
	fhmap_root_len = strlen(root);
	nftw(root, fhmap_one, 32, FTW_PHYS | FTW_MOUNT);
}

static void fhmap_free(struct fhmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].name);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

static void hexs(char *out, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = 0;
}

/* An ovl_fb as "<layer object>{flags,type,uuid}". */
static char *decode_fb(const struct fhmap *m, const unsigned char *b, size_t n)
{
	char hx[512], uu[40];
	char *s;

	if (n < 21 || n > 200 || b[0] != 0 || b[1] != 0xfb || b[2] != n) {
		hexs(hx, b, n < 200 ? n : 200);
		ASSERT(asprintf(&s, "raw:%s", hx) > 0);
		return s;
	}
	hexs(uu, b + 5, 16);
	if (!strcmp(uu, "00000000000000000000000000000000"))
		strcpy(uu, "0");
	for (size_t i = 0; i < m->n; i++) {
		if (m->e[i].type == b[4] && m->e[i].len == n - 21 &&
		    memcmp(m->e[i].fid, b + 21, n - 21) == 0) {
			ASSERT(asprintf(&s, "%s{f%x,t%d,u%s}", m->e[i].name, b[3], b[4], uu) > 0);
			return s;
		}
	}
	hexs(hx, b + 21, n - 21);
	ASSERT(asprintf(&s, "unknown-fid:%s{f%x,t%d,u%s}", hx, b[3], b[4], uu) > 0);
	return s;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *xattr_string(const struct fhmap *m, const char *abs)
{
	char list[8192], *names[64], *out = NULL;
	size_t nn = 0, olen = 0;
	ssize_t n = llistxattr(abs, list, sizeof(list));
	FILE *f;

	if (n <= 0)
		return strdup("");
	for (char *p = list; p < list + n && nn < 64; p += strlen(p) + 1)
		names[nn++] = p;
	qsort(names, nn, sizeof(names[0]), str_cmp);
	f = open_memstream(&out, &olen);
	ASSERT(f != NULL);
	for (size_t i = 0; i < nn; i++) {
		unsigned char val[4096];
		ssize_t vl;
		bool printable = true;

		if (!strcmp(names[i], "trusted.overlay.uuid"))
			continue;
		vl = lgetxattr(abs, names[i], val, sizeof(val));
		if (vl < 0)
			vl = 0;
		if (!strcmp(names[i], "trusted.overlay.origin") ||
		    !strcmp(names[i], "trusted.overlay.upper")) {
			char *d = decode_fb(m, val, (size_t)vl);
			fprintf(f, "%s=%s;", names[i] + 8, d);
			free(d);
			continue;
		}
		for (ssize_t k = 0; k < vl; k++)
			if (val[k] < 0x20 || val[k] > 0x7e)
				printable = false;
		if (printable) {
			fprintf(f, "%s=%.*s;", names[i] + (strncmp(names[i], "trusted.", 8) ? 0 : 8),
				(int)vl, (char *)val);
		} else {
			char hx[8200];
			hexs(hx, val, (size_t)vl);
			fprintf(f, "%s=0x%s;", names[i], hx);
		}
	}
	fclose(f);
	return out;
}

static int unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return (int)(n / 2);
}

static void dump_entry(const struct fhmap *m, const char *abs, const char *name,
		       struct tree *t)
{
	struct stat st;
	struct ent *e;

	ASSERTF(lstat(abs, &st) == 0, "lstat '%s': %s", abs, strerror(errno));
	e = tree_add(t, name);
	fill_from_stat(e, &st);
	e->whiteout = S_ISCHR(st.st_mode) && st.st_rdev == 0;
	if (e->whiteout) {
		e->mode = S_IFCHR;
		e->uid = e->gid = 0;
		e->nlink = 0;
	}
	if (S_ISDIR(st.st_mode))
		e->mt_s = 0, e->mt_ns = 0; /* dir times: not compared */
	if (S_ISLNK(st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(abs, buf, sizeof(buf) - 1);
		ASSERT(n >= 0);
		buf[n] = 0;
		e->target = strdup(buf);
	} else if (S_ISREG(st.st_mode)) {
		read_local(abs, e);
		if (st.st_size >= (1 << 20))
			e->holes = (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size;
	}
	e->xattrs = xattr_string(m, abs);
}

static void dump_dir(const struct fhmap *m, const char *base, const char *rel,
		     const char *tag, struct tree *t, int depth)
{
	char abs[PATH_MAX];
	DIR *d;
	struct dirent *de;

	ASSERT(depth < 40);
	tl_join(abs, sizeof(abs), base, rel);
	d = opendir(abs);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *r, *name, child[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = relj(rel, de->d_name);
		tl_join(child, sizeof(child), base, r);
		ASSERT(asprintf(&name, "%s/%s", tag, r) > 0);
		dump_entry(m, child, name, t);
		free(name);
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			dump_dir(m, base, r, tag, t, depth + 1);
		free(r);
	}
	closedir(d);
}

/* X/upper as upper/..., X/work/work as work/..., X/work/index entries by
 * the object they name. */
static void dump_disk(const char *X, struct tree *t)
{
	char p[PATH_MAX], l[16];
	struct fhmap m = { 0 };
	DIR *d;
	struct dirent *de;

	for (int i = 0; i < NLOWER; i++) {
		snprintf(l, sizeof(l), "l%d", i);
		tl_join(p, sizeof(p), X, l);
		snprintf(l, sizeof(l), "L%d", i);
		fhmap_add_layer(&m, p, l);
	}
	tl_join(p, sizeof(p), X, "upper");
	fhmap_add_layer(&m, p, "U");

	dump_entry(&m, p, "upper", t);
	dump_dir(&m, p, "", "upper", t, 0);
	tl_join(p, sizeof(p), X, "work/work");
	dump_dir(&m, p, "", "work", t, 0);
	tl_join(p, sizeof(p), X, "work/index");
	d = opendir(p);
	if (d) {
		dump_entry(&m, p, "index", t);
		while ((de = readdir(d)) != NULL) {
			unsigned char fb[256];
			char abs[PATH_MAX], *name, *dec;
			int n;

			if (de->d_name[0] == '.' || de->d_name[0] == '#')
				continue;
			tl_join(abs, sizeof(abs), p, de->d_name);
			n = unhex(de->d_name, fb, sizeof(fb));
			if (n > 0)
				dec = decode_fb(&m, fb, (size_t)n);
			else
				dec = strdup(de->d_name);
			ASSERT(asprintf(&name, "index/%s", dec) > 0);
			dump_entry(&m, abs, name, t);
			free(name);
			free(dec);
		}
		closedir(d);
	}
	fhmap_free(&m);
}

/* Remove the "name=...;" item starting with prefix; true if it was there. */
static bool drop_item(char *xs, const char *prefix)
{
	size_t pl = strlen(prefix);

	for (char *p = xs; p && *p;) {
		char *end = strchr(p, ';');
		if (!strncmp(p, prefix, pl)) {
			if (end)
				memmove(p, end + 1, strlen(end + 1) + 1);
			else
				*p = 0;
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool parent_is(const char *path, const char *dir)
{
	size_t dl = strlen(dir);
	const char *slash = strrchr(path, '/');

	return slash && (size_t)(slash - path) == dl && !strncmp(path, dir, dl);
}

/*
 * Normalise a disk dump:
 *  - impure: the kernel sets it eagerly (also on parents of objects it
 *    copies up only to remove them) and removes it lazily at readdir
 *    (the kernel's impure rule), so its mere presence is not compared; what is
 *    compared is that every upper dir holding an entry with origin or
 *    redirect has it ("impure-needed:present" / ":MISSING");
 *  - unless strict_mount: the mount-time xattrs (origin on the upper root,
 *    upper on index/) are dropped; scenario s31a compares them.
 */
static void normalize_dump(struct tree *t, bool strict_mount)
{
	for (size_t i = 0; i < t->n; i++) {
		struct ent *e = &t->e[i];
		bool had, needed = false;
		char *nx;

		if (!e->xattrs)
			continue;
		if (!strict_mount && !strcmp(e->path, "upper"))
			drop_item(e->xattrs, "overlay.origin=");
		if (!strict_mount && !strcmp(e->path, "index"))
			drop_item(e->xattrs, "overlay.upper=");
		if (!S_ISDIR(e->mode) || strncmp(e->path, "upper", 5))
			continue;
		had = drop_item(e->xattrs, "overlay.impure=");
		for (size_t j = 0; j < t->n && !needed; j++)
			if (parent_is(t->e[j].path, e->path) && t->e[j].xattrs &&
			    (strstr(t->e[j].xattrs, "overlay.origin=") ||
			     strstr(t->e[j].xattrs, "overlay.redirect=")))
				needed = true;
		if (!needed)
			continue;
		ASSERT(asprintf(&nx, "%simpure-needed:%s;", e->xattrs,
				had ? "present" : "MISSING") > 0);
		free(e->xattrs);
		e->xattrs = nx;
	}
}

/* Names left in X/work/work (the work dir proper). */
static int work_leftovers(const char *X, char *first, size_t len)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int n = 0;

	first[0] = 0;
	tl_join(p, sizeof(p), X, "work/work");
	d = opendir(p);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!n)
			snprintf(first, len, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ */
/* operations                                                          */
/* ------------------------------------------------------------------ */

enum opkind {
	OP_END,
	OP_WRITE,      /* a at n: data (open O_WRONLY, pwrite) */
	OP_CREATE,     /* a mode: create (O_CREAT|O_WRONLY|O_TRUNC) + data */
	OP_CREATE_EXCL,
	OP_OPEN_TRUNC, /* open(a, O_WRONLY|O_TRUNC) */
	OP_READ,       /* open(a, O_RDONLY), read */
	OP_TRUNCATE,   /* truncate(a, n) */
	OP_UNLINK,
	OP_RMDIR,
	OP_MKDIR,      /* a mode */
	OP_RENAME,     /* a -> b */
	OP_LINK,       /* a -> new name b */
	OP_SYMLINK,    /* b -> target a */
	OP_MKNOD,      /* a mode (with type) rdev n */
	OP_CHMOD,      /* a mode */
	OP_LCHOWN,     /* a uid n>>16, gid n&0xffff */
	OP_UTIMES,     /* a: atime=mtime=n (follows) */
	OP_LUTIMES,
	OP_INO_SAVE,   /* remember the inode number of a */
	OP_INO_SAME,   /* a has the remembered inode number: 0 or EBADE */
	OP_FH_SAVE,    /* remember the file handle of a */
	OP_FH_SAME,    /* a has the remembered handle: 0 or EBADE */
	OP_FH_CHECK,   /* the remembered handle still works: 0 or its errno */
	OP_RESTART,    /* kernel: umount + mount; ovlnfsd: stop + start + reconnect */
};

struct op {
	enum opkind k;
	const char *a, *b;
	unsigned mode;
	long long n;
	const char *data;
	int uid; /* run as uid:uid when > 0 */
};

#define O_END { OP_END, NULL, NULL, 0, 0, NULL, 0 }
#define W(p, off, d) { OP_WRITE, p, NULL, 0, off, d, 0 }
#define CR(p, m, d) { OP_CREATE, p, NULL, m, 0, d, 0 }
#define CRX(p, m) { OP_CREATE_EXCL, p, NULL, m, 0, "", 0 }
#define OTRUNC(p) { OP_OPEN_TRUNC, p, NULL, 0, 0, NULL, 0 }
#define RD(p) { OP_READ, p, NULL, 0, 0, NULL, 0 }
#define TRUNC(p, n) { OP_TRUNCATE, p, NULL, 0, n, NULL, 0 }
#define UNL(p) { OP_UNLINK, p, NULL, 0, 0, NULL, 0 }
#define RMD(p) { OP_RMDIR, p, NULL, 0, 0, NULL, 0 }
#define MKD(p, m) { OP_MKDIR, p, NULL, m, 0, NULL, 0 }
#define REN(a, b) { OP_RENAME, a, b, 0, 0, NULL, 0 }
#define LNK(a, b) { OP_LINK, a, b, 0, 0, NULL, 0 }
#define SYM(t, p) { OP_SYMLINK, t, p, 0, 0, NULL, 0 }
#define MKN(p, m, dev) { OP_MKNOD, p, NULL, m, dev, NULL, 0 }
#define CHM(p, m) { OP_CHMOD, p, NULL, m, 0, NULL, 0 }
#define CHO(p, u, g) { OP_LCHOWN, p, NULL, 0, ((long long)(u) << 16) | (g), NULL, 0 }
#define UTI(p, t) { OP_UTIMES, p, NULL, 0, t, NULL, 0 }
#define LUTI(p, t) { OP_LUTIMES, p, NULL, 0, t, NULL, 0 }
#define INOSAVE(p) { OP_INO_SAVE, p, NULL, 0, 0, NULL, 0 }
#define INOSAME(p) { OP_INO_SAME, p, NULL, 0, 0, NULL, 0 }
#define FHSAVE(p) { OP_FH_SAVE, p, NULL, 0, 0, NULL, 0 }
#define FHSAME(p) { OP_FH_SAME, p, NULL, 0, 0, NULL, 0 }
#define FHCHECK() { OP_FH_CHECK, "(saved)", NULL, 0, 0, NULL, 0 }
#define RESTART() { OP_RESTART, "(all)", NULL, 0, 0, NULL, 0 }

static const char *op_name(enum opkind k)
{
	static const char *const n[] = { "end", "write", "create", "create-excl",
		"open-trunc", "read", "truncate", "unlink", "rmdir", "mkdir", "rename",
		"link", "symlink", "mknod", "chmod", "lchown", "utimes", "lutimes",
		"ino-save", "ino-same", "fh-save", "fh-same", "fh-check", "restart" };
	return n[k];
}

/* ---------- the kernel side ---------- */

static int kmount(const char *X, const char *mnt, int *tok);
static void kumount(const char *mnt, int tok);

struct kside {
	const char *mnt;
	const char *X;
	int *tok;
	ino_t ino;
	struct {
		struct file_handle h;
		unsigned char buf[MAX_HANDLE_SZ];
	} fh;
	bool have_fh;
};

static int k_run(struct kside *ks, const struct op *o)
{
	char a[PATH_MAX], b[PATH_MAX];
	int r = 0, fd;
	gid_t groups[64];
	int ngroups = 0;

	tl_join(a, sizeof(a), ks->mnt, o->a);
	if (o->b)
		tl_join(b, sizeof(b), ks->mnt, o->b);
	if (o->uid > 0) {
		ngroups = getgroups(64, groups);
		ASSERT(ngroups >= 0);
		ASSERT(setgroups(0, NULL) == 0);
		setfsgid((gid_t)o->uid);
		setfsuid((uid_t)o->uid);
	}
	errno = 0;
	switch (o->k) {
	case OP_WRITE:
		fd = open(a, O_WRONLY);
		if (fd < 0) {
			r = errno;
			break;
		}
		if (pwrite(fd, o->data, strlen(o->data), o->n) < 0)
			r = errno;
		close(fd);
		break;
	case OP_CREATE:
	case OP_CREATE_EXCL:
		fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | (o->k == OP_CREATE_EXCL ? O_EXCL : 0),
			  o->mode);
		if (fd < 0) {
			r = errno;
			break;
		}
		if (o->data && *o->data && write(fd, o->data, strlen(o->data)) < 0)
			r = errno;
		close(fd);
		break;
	case OP_OPEN_TRUNC:
		fd = open(a, O_WRONLY | O_TRUNC);
		if (fd < 0)
			r = errno;
		else
			close(fd);
		break;
	case OP_READ: {
		char buf[4096];
		fd = open(a, O_RDONLY);
		if (fd < 0) {
			r = errno;
			break;
		}
		if (read(fd, buf, sizeof(buf)) < 0)
			r = errno;
		close(fd);
		break;
	}
	case OP_TRUNCATE:
		r = truncate(a, o->n) ? errno : 0;
		break;
	case OP_UNLINK:
		r = unlink(a) ? errno : 0;
		break;
	case OP_RMDIR:
		r = rmdir(a) ? errno : 0;
		break;
	case OP_MKDIR:
		r = mkdir(a, o->mode) ? errno : 0;
		break;
	case OP_RENAME:
		r = rename(a, b) ? errno : 0;
		break;
	case OP_LINK:
		r = link(a, b) ? errno : 0;
		break;
	case OP_SYMLINK:
		r = symlink(o->a, b) ? errno : 0;
		break;
	case OP_MKNOD:
		r = mknod(a, o->mode, (dev_t)o->n) ? errno : 0;
		break;
	case OP_CHMOD:
		r = chmod(a, o->mode) ? errno : 0;
		break;
	case OP_LCHOWN:
		r = lchown(a, (uid_t)(o->n >> 16), (gid_t)(o->n & 0xffff)) ? errno : 0;
		break;
	case OP_UTIMES:
	case OP_LUTIMES: {
		struct timespec ts[2] = { { o->n, 0 }, { o->n, 0 } };
		r = utimensat(AT_FDCWD, a, ts, o->k == OP_LUTIMES ? AT_SYMLINK_NOFOLLOW : 0)
			    ? errno : 0;
		break;
	}
	case OP_INO_SAVE:
	case OP_INO_SAME: {
		struct stat st;
		if (lstat(a, &st)) {
			r = errno;
			break;
		}
		if (o->k == OP_INO_SAVE)
			ks->ino = st.st_ino;
		else
			r = st.st_ino == ks->ino ? 0 : EBADE;
		break;
	}
	case OP_FH_SAVE:
	case OP_FH_SAME: {
		struct {
			struct file_handle h;
			unsigned char buf[MAX_HANDLE_SZ];
		} fh;
		int mid;
		fh.h.handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, a, &fh.h, &mid, 0)) {
			r = errno;
			break;
		}
		if (o->k == OP_FH_SAVE) {
			memcpy(&ks->fh, &fh, sizeof(fh));
			ks->have_fh = true;
		} else {
			r = (fh.h.handle_bytes == ks->fh.h.handle_bytes &&
			     fh.h.handle_type == ks->fh.h.handle_type &&
			     !memcmp(fh.h.f_handle, ks->fh.h.f_handle, fh.h.handle_bytes))
				    ? 0 : EBADE;
		}
		break;
	}
	case OP_FH_CHECK: {
		int mfd = open(ks->mnt, O_RDONLY | O_DIRECTORY);
		ASSERT(mfd >= 0 && ks->have_fh);
		fd = open_by_handle_at(mfd, &ks->fh.h, O_PATH);
		r = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		close(mfd);
		break;
	}
	case OP_RESTART:
		kumount(ks->mnt, *ks->tok);
		r = -kmount(ks->X, ks->mnt, ks->tok);
		ASSERTF(r == 0, "kernel remount: %s", strerror(r));
		break;
	case OP_END:
		break;
	}
	if (o->uid > 0) {
		setfsuid(0);
		setfsgid(0);
		ASSERT(setgroups((size_t)ngroups, groups) == 0);
	}
	return r;
}

/* ---------- the NFS side ---------- */

struct nside {
	struct tl_server *srv;
	const char *logdir, *statedir, *opts;
	struct nfs_context *nfs;
	struct nfs_url *url;
	struct tl_client raw;
	struct tl_fh root;
	uint64_t ino;
	struct tl_fh fh;
	bool have_fh;
};

static void n_connect(struct nside *ns, int port)
{
	char url[256];

	ns->nfs = nfs_init_context();
	ASSERT(ns->nfs != NULL);
	snprintf(url, sizeof(url), "nfs://127.0.0.1/?nfsport=%d&mountport=%d&version=3", port,
		 port);
	ns->url = nfs_parse_url_dir(ns->nfs, url);
	ASSERTF(ns->url != NULL, "parse url: %s", nfs_get_error(ns->nfs));
	ASSERTF(nfs_mount(ns->nfs, ns->url->server, ns->url->path) == 0, "nfs_mount: %s",
		nfs_get_error(ns->nfs));
	tl_client_mount(&ns->raw, port, "/", &ns->root);
}

static void n_close(struct nside *ns)
{
	nfs_umount(ns->nfs);
	nfs_destroy_url(ns->url);
	nfs_destroy_context(ns->nfs);
	tl_client_close(&ns->raw);
}

static int neg(int r)
{
	return r < 0 ? -r : 0;
}

/* nfsstat3 -> errno, for the raw handle calls. */
static int nfsstat_errno(int st)
{
	switch (st) {
	case 0: return 0;
	case 70: return ESTALE;
	case 10001: return EBADF;
	case -1: return EIO;
	default: return st; /* NFS3ERR_* below 100 are the errno numbers */
	}
}

static int n_run(struct nside *ns, const struct op *o)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct nfs_context *nfs = ns->nfs;
	struct nfsfh *fh = NULL;
	int r = 0;

	nfs_abs(a, sizeof(a), o->a);
	if (o->b)
		nfs_abs(b, sizeof(b), o->b);
	if (o->uid > 0) {
		nfs_set_uid(nfs, o->uid);
		nfs_set_gid(nfs, o->uid);
	}
	switch (o->k) {
	case OP_WRITE:
		r = nfs_open(nfs, a, O_WRONLY, &fh);
		if (r == 0) {
			int w = nfs_pwrite(nfs, fh, (uint64_t)o->n, strlen(o->data), o->data);
			r = w < 0 ? w : 0;
			nfs_close(nfs, fh);
		}
		break;
	case OP_CREATE:
	case OP_CREATE_EXCL:
		r = nfs_create(nfs, a, O_WRONLY | (o->k == OP_CREATE_EXCL ? O_EXCL : 0),
			       (int)o->mode, &fh);
		if (r == 0) {
			if (o->data && *o->data) {
				int w = nfs_pwrite(nfs, fh, 0, strlen(o->data), o->data);
				r = w < 0 ? w : 0;
			}
			nfs_close(nfs, fh);
		}
		break;
	case OP_OPEN_TRUNC:
		r = nfs_open(nfs, a, O_WRONLY | O_TRUNC, &fh);
		if (r == 0)
			nfs_close(nfs, fh);
		break;
	case OP_READ:
		r = nfs_open(nfs, a, O_RDONLY, &fh);
		if (r == 0) {
			char buf[4096];
			int n = nfs_pread(nfs, fh, 0, sizeof(buf), buf);
			r = n < 0 ? n : 0;
			nfs_close(nfs, fh);
		}
		break;
	case OP_TRUNCATE:
		r = nfs_truncate(nfs, a, (uint64_t)o->n);
		break;
	case OP_UNLINK:
		r = nfs_unlink(nfs, a);
		break;
	case OP_RMDIR:
		r = nfs_rmdir(nfs, a);
		break;
	case OP_MKDIR:
		r = nfs_mkdir2(nfs, a, (int)o->mode);
		break;
	case OP_RENAME:
		r = nfs_rename(nfs, a, b);
		break;
	case OP_LINK:
		r = nfs_link(nfs, a, b);
		break;
	case OP_SYMLINK:
		r = nfs_symlink(nfs, o->a, b);
		break;
	case OP_MKNOD:
		r = nfs_mknod(nfs, a, (int)o->mode, (int)o->n);
		break;
	case OP_CHMOD:
		r = nfs_chmod(nfs, a, (int)o->mode);
		break;
	case OP_LCHOWN:
		r = nfs_lchown(nfs, a, (int)(o->n >> 16), (int)(o->n & 0xffff));
		break;
	case OP_UTIMES:
	case OP_LUTIMES: {
		struct timeval tv[2] = { { o->n, 0 }, { o->n, 0 } };
		r = o->k == OP_UTIMES ? nfs_utimes(nfs, a, tv) : nfs_lutimes(nfs, a, tv);
		break;
	}
	case OP_INO_SAVE:
	case OP_INO_SAME: {
		struct nfs_stat_64 st;
		r = nfs_lstat64(nfs, a, &st);
		if (r)
			break;
		if (o->k == OP_INO_SAVE)
			ns->ino = st.nfs_ino;
		else
			r = st.nfs_ino == ns->ino ? 0 : -EBADE;
		break;
	}
	case OP_FH_SAVE:
	case OP_FH_SAME: {
		struct tl_fh f;
		int st = tl_nfs_walk(&ns->raw, &ns->root, o->a, &f, NULL);
		if (st) {
			r = -nfsstat_errno(st);
			break;
		}
		if (o->k == OP_FH_SAVE) {
			ns->fh = f;
			ns->have_fh = true;
		} else {
			r = (f.len == ns->fh.len && !memcmp(f.data, ns->fh.data, f.len)) ? 0
											      : -EBADE;
		}
		break;
	}
	case OP_FH_CHECK: {
		fattr3 at;
		ASSERT(ns->have_fh);
		r = -nfsstat_errno(tl_nfs_getattr(&ns->raw, &ns->fh, &at));
		break;
	}
	case OP_RESTART:
		n_close(ns);
		tl_server_stop(ns->srv);
		tl_server_start(ns->srv, ns->logdir, ns->statedir, ns->opts, NULL, NULL);
		n_connect(ns, ns->srv->port);
		nfs = ns->nfs;
		break;
	case OP_END:
		break;
	}
	if (o->uid > 0) {
		nfs_set_uid(nfs, 0);
		nfs_set_gid(nfs, 0);
	}
	return neg(r);
}

/* Protocol-level differences allowed between the two errnos. */
static bool errno_equiv(const struct op *o, int k, int n)
{
	if (k == n)
		return true;
	/* RFC 1813: RENAME onto a non-empty directory may give EXIST. */
	if (o->k == OP_RENAME && k == ENOTEMPTY && n == EEXIST)
		return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* layers                                                              */
/* ------------------------------------------------------------------ */

static void set_user_xattr(const char *base, const char *rel, const char *n, const char *v)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(lsetxattr(p, n, v, strlen(v), 0) == 0, "setxattr %s: %s", p, strerror(errno));
}

static void mk_special(const char *base, const char *rel, mode_t mode, dev_t dev)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(mknod(p, mode, dev) == 0, "mknod %s: %s", p, strerror(errno));
	ASSERT(chmod(p, mode & 07777) == 0);
}

static void mk_link(const char *base, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	tl_join(a, sizeof(a), base, from);
	tl_join(b, sizeof(b), base, to);
	ASSERTF(link(a, b) == 0, "link %s: %s", b, strerror(errno));
}

static void write_pattern(const char *base, const char *rel, size_t size)
{
	char p[PATH_MAX];
	unsigned char *buf = malloc(size);
	int fd;

	ASSERT(buf != NULL);
	for (size_t i = 0; i < size; i++)
		buf[i] = (unsigned char)((i * 7 + i / 251) & 0xff);
	tl_join(p, sizeof(p), base, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT(fd >= 0);
	ASSERT(write(fd, buf, size) == (ssize_t)size);
	close(fd);
	free(buf);
}

static void write_sparse(const char *base, const char *rel)
{
	char p[PATH_MAX];
	int fd;

	tl_join(p, sizeof(p), base, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT(fd >= 0);
	ASSERT(pwrite(fd, "head", 4, 0) == 4);
	ASSERT(pwrite(fd, "tail", 4, SPARSE_SIZE - 4) == 4);
	close(fd);
}

/*
 * The standard layers (X/l0 top, l1 middle, l2 bottom, X/upper):
 *   l2: f g(0600 1000:1000) hl1=hl2 sym->f fifo cdev(1,3) d/{x,y} e/(0750)
 *       m/a deep/a/b/c/file big sparse xf(user.* xattrs) dd/sub/inner
 *       ne/a r1 r2 wo wdir/z pub/(0777)/own o/hidden xw/{xname,keep}
 *       mw/{p,q} gone
 *   l1: o/ opaque=y o/mid; xw/ opaque=x xw/xname xattr-whiteout;
 *       mw/q whiteout; gone whiteout
 *   l0: m/b top
 *   upper: uf ud/u1, whiteouts wo and wdir
 */
static void build_std(const char *X)
{
	char l0[PATH_MAX], l1[PATH_MAX], l2[PATH_MAX], up[PATH_MAX];

	tl_join(l0, sizeof(l0), X, "l0");
	tl_join(l1, sizeof(l1), X, "l1");
	tl_join(l2, sizeof(l2), X, "l2");
	tl_join(up, sizeof(up), X, "upper");

	tl_write(l2, "f", "lower-f\n", 0644);
	tl_write(l2, "g", "lower-g\n", 0600);
	tl_chown(l2, "g", 1000, 1000);
	tl_write(l2, "hl1", "hardlinked\n", 0644);
	mk_link(l2, "hl1", "hl2");
	tl_symlink(l2, "sym", "f");
	mk_special(l2, "fifo", S_IFIFO | 0640, 0);
	mk_special(l2, "cdev", S_IFCHR | 0666, makedev(1, 3));
	tl_mkdir(l2, "d", 0755);
	tl_write(l2, "d/x", "x", 0644);
	tl_write(l2, "d/y", "y", 0644);
	tl_mkdir(l2, "e", 0750);
	tl_mkdir(l2, "m", 0755);
	tl_write(l2, "m/a", "a", 0644);
	tl_mkdir_p(l2, "deep/a/b/c");
	tl_write(l2, "deep/a/b/c/file", "deep\n", 0644);
	write_pattern(l2, "big", BIG_SIZE);
	write_sparse(l2, "sparse");
	tl_write(l2, "xf", "xattr file\n", 0640);
	set_user_xattr(l2, "xf", "user.test", "val");
	set_user_xattr(l2, "xf", "user.other", "2");
	tl_mkdir_p(l2, "dd/sub");
	tl_write(l2, "dd/sub/inner", "inner", 0644);
	tl_mkdir(l2, "ne", 0755);
	tl_write(l2, "ne/a", "ne-a", 0644);
	tl_write(l2, "r1", "r1-data", 0644);
	tl_write(l2, "r2", "r2-data", 0644);
	tl_write(l2, "wo", "was here", 0644);
	tl_mkdir(l2, "wdir", 0755);
	tl_write(l2, "wdir/z", "z", 0644);
	tl_mkdir(l2, "pub", 0777);
	tl_write(l2, "pub/own", "own", 0644);
	tl_mkdir(l2, "o", 0755);
	tl_write(l2, "o/hidden", "hidden", 0644);
	tl_mkdir(l2, "xw", 0755);
	tl_write(l2, "xw/xname", "xn", 0644);
	tl_write(l2, "xw/keep", "keep", 0644);
	tl_mkdir(l2, "mw", 0755);
	tl_write(l2, "mw/p", "p", 0644);
	tl_write(l2, "mw/q", "q", 0644);
	tl_write(l2, "gone", "gone", 0644);

	tl_mkdir(l1, "o", 0755);
	tl_opaque(l1, "o");
	tl_write(l1, "o/mid", "mid", 0644);
	tl_mkdir(l1, "xw", 0755);
	tl_xwhiteout_parent(l1, "xw");
	tl_xwhiteout(l1, "xw/xname");
	tl_mkdir(l1, "mw", 0755);
	tl_whiteout(l1, "mw/q");
	tl_whiteout(l1, "gone");

	tl_mkdir(l0, "m", 0755);
	tl_write(l0, "m/b", "b", 0644);
	tl_write(l0, "top", "top file\n", 0644);

	tl_write(up, "uf", "upper file\n", 0644);
	tl_mkdir(up, "ud", 0755);
	tl_write(up, "ud/u1", "u1", 0644);
	tl_whiteout(up, "wo");
	tl_whiteout(up, "wdir");
}

static int settime_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct timespec ts[2] = { { OLD_TIME, 0 }, { OLD_TIME, 0 } };

	(void)st;
	(void)flag;
	(void)ftw;
	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* ------------------------------------------------------------------ */
/* scenarios                                                           */
/* ------------------------------------------------------------------ */

/*
 * SC_KERNEL_NLINK: the kernel's live nlink of an indexed alias depends on
 * whether its inode was re-instantiated (checked by hand on 6.18: `ln f
 * f_link; rm f` shows 1 with f_link's inode cached and 2 without, the
 * upper nlink counting the index link); ovlnfsd reports the number of
 * names. Allowed: kernel == ovlnfsd + 1 for files, as after a remount.
 */
enum { SC_WORK_RO = 1, SC_STRICT_MOUNT = 2, SC_KERNEL_NLINK = 4 };

struct scenario {
	const char *name;
	const char *what;
	const struct op *ops;
	void (*prework)(const char *workdir); /* after the copy, both sides */
	int flags;
};

static void prework_d1_f(const char *w)
{
	tl_mkdir_p(w, "work/d1");
	tl_write(w, "work/d1/f", "leftover", 0644);
	tl_whiteout(w, "work/wh");
}

static void prework_d1_d2_f(const char *w)
{
	tl_mkdir_p(w, "work/d1/d2");
	tl_write(w, "work/d1/d2/f", "leftover", 0644);
}

#define OPS(...) ((const struct op[]){ __VA_ARGS__, O_END })

static struct op as_uid(struct op o, int uid)
{
	o.uid = uid;
	return o;
}

/* Ops running as uid 1000 need a non-constant initialiser; use a helper
 * table built at startup for those two scenarios. */
static struct op ops_uid_create[4];
static struct op ops_uid_denied[5];

static void init_uid_ops(void)
{
	ops_uid_create[0] = as_uid((struct op)CR("pub/mine", 0644, "mine"), 1000);
	ops_uid_create[1] = as_uid((struct op)MKD("pub/mydir", 0755), 1000);
	ops_uid_create[2] = as_uid((struct op)UNL("pub/own"), 1000);
	ops_uid_create[3] = (struct op)O_END;
	ops_uid_denied[0] = as_uid((struct op)W("f", 0, "no"), 1000);
	ops_uid_denied[1] = as_uid((struct op)UNL("d/x"), 1000);
	ops_uid_denied[2] = as_uid((struct op)CHM("f", 0777), 1000);
	ops_uid_denied[3] = as_uid((struct op)W("g", 0, "mine"), 1000);
	ops_uid_denied[4] = (struct op)O_END;
}

static const struct scenario scenarios[] = {
	/* ---- the kernel overlay's behaviours, one scenario each ---- */
	{ "s01_unlink_lower_file", "whiteout; parents get origin+impure",
	  OPS(UNL("f"), UNL("deep/a/b/c/file"), UNL("m/b")), NULL, 0 },
	{ "s02_rmdir_empty_lower_dir", "whiteout", OPS(RMD("e")), NULL, 0 },
	{ "s03_rmdir_nonempty_lower_dir", "ENOTEMPTY",
	  OPS(RMD("d"), RMD("m"), RMD("ud")), NULL, 0 },
	{ "s04_empty_lower_dir_then_rmdir", "one whiteout",
	  OPS(UNL("d/x"), UNL("d/y"), RMD("d")), NULL, 0 },
	{ "s05_rmdir_mkdir_opaque", "opaque y, empty",
	  OPS(RMD("e"), MKD("e", 0700), UNL("d/x"), UNL("d/y"), RMD("d"), MKD("d", 0755),
	      CR("d/new", 0644, "new")), NULL, 0 },
	{ "s06_creat_over_whiteout", "plain file",
	  OPS(CR("wo", 0600, "new wo"), UNL("f"), CR("f", 0644, "recreated")), NULL, 0 },
	{ "s07_mkdir_in_merged_dir", "index/redirect on: opaque",
	  OPS(MKD("m/new", 0755), MKD("new", 0711), MKD("ud/new", 0755)), NULL, 0 },
	{ "s08a_chmod_copyup", "keeps times",
	  OPS(CHM("f", 0600), CHM("g", 0640), CHM("d", 0700)), NULL, 0 },
	{ "s08b_lchown_symlink", "copy-up of the link itself",
	  OPS(CHO("sym", 1000, 1000)), NULL, 0 },
	{ "s08c_utimes", "copy-up with the new times",
	  OPS(UTI("f", 1234567890), UTI("sym", 1300000000), LUTI("sym", 1200000000)), NULL, 0 },
	{ "s08d_xattr_copyup", "user.* xattrs copied up (via chmod)",
	  OPS(CHM("xf", 0644)), NULL, 0 },
	{ "s09_open_modes", "O_RDONLY no copy-up; O_TRUNC size 0 (O_RDWR: no NFS equivalent)",
	  OPS(RD("f"), RD("g"), OTRUNC("top"), OTRUNC("big")), NULL, 0 },
	{ "s10_sparse_copyup", "holes kept", OPS(CHM("sparse", 0600)), NULL, 0 },
	{ "s11_rename_lower_dir", "redirect relative",
	  OPS(REN("d", "d2"), CR("d2/z", 0644, "z")), NULL, 0 },
	{ "s12_rename_dir_cross_dir", "absolute redirect, kept after moving back",
	  OPS(REN("d", "ud/d"), REN("ud/d", "d")), NULL, 0 },
	{ "s14_rename_lower_file", "whiteout at old name, origin kept",
	  OPS(INOSAVE("f"), REN("f", "f2"), INOSAME("f2")), NULL, 0 },
	{ "s15_rename_lower_over_lower", "whiteout, target replaced",
	  OPS(REN("r1", "r2")), NULL, 0 },
	{ "s16_rename_onto_whiteout", "rename onto a whiteout name (NOREPLACE: no NFS flag)",
	  OPS(REN("f", "wo"), REN("e", "wdir")), NULL, 0 },
	{ "s18_upper_dir_into_merged_parent", "opaque",
	  OPS(REN("ud", "m/ud"), MKD("nd", 0755), CR("nd/f", 0644, "f"), REN("nd", "d/nd")),
	  NULL, 0 },
	{ "s19_dir_over_dirs", "over non-empty merged: ENOTEMPTY; over empty lower: ok",
	  OPS(REN("dd", "ne"), REN("dd", "m"), REN("dd", "e")), NULL, 0 },
	{ "s20_mknod_c00", "EPERM", OPS(MKN("cw", S_IFCHR | 0644, 0)), NULL, 0 },
	{ "s21_link_hardlinked_lower", "index + nlink",
	  OPS(LNK("hl1", "hl3"), LNK("hl2", "d/hl4")), NULL, 0 },
	{ "s22_unlink_indexed_alias", "nlink right",
	  OPS(CHM("hl1", 0600), UNL("hl2"), LNK("hl1", "hl5"), UNL("hl1")), NULL, 0 },
	{ "s23_readdir_merged_impure", "dedup, whiteouts hidden",
	  OPS(REN("f", "m/f3"), CR("m/new", 0644, "n"), UNL("m/a"), REN("top", "m/b")), NULL, 0 },
	{ "s24_ino_stable_across_copyup", "st_ino / fileid unchanged",
	  OPS(INOSAVE("f"), W("f", 0, "L"), INOSAME("f"), INOSAVE("d"), CR("d/n", 0644, "n"),
	      INOSAME("d"), INOSAVE("deep/a/b"), CHM("deep/a/b/c/file", 0600),
	      INOSAME("deep/a/b")), NULL, 0 },
	{ "s25_uid1000_creates_in_0777_dir", "owner 1000; whiteout the mounter's",
	  ops_uid_create, NULL, 0 },
	{ "s26_uid1000_denied", "EACCES, no copy-up", ops_uid_denied, NULL, 0 },
	{ "s27a_work_leftover_depth1", "work/d1/f: cleaned, rw",
	  OPS(UNL("f"), CR("n", 0644, "n")), prework_d1_f, 0 },
	{ "s27b_work_leftover_depth2", "work/d1/d2/f: read-only",
	  OPS(UNL("f"), CR("n", 0644, "n")), prework_d1_d2_f, SC_WORK_RO },
	{ "s28_three_layers", "middle whiteout/opaque; xattr-whiteout dir",
	  OPS(CR("o/new", 0644, "n"), UNL("o/mid"), UNL("xw/keep"), RMD("xw"), UNL("mw/p"),
	      RMD("mw"), CR("gone", 0644, "back")), NULL, 0 },
	{ "s29_fh_across_copyup_and_unlink", "same fh; ESTALE after unlink",
	  OPS(FHSAVE("f"), W("f", 0, "X"), FHSAME("f"), UNL("f"), FHCHECK(), FHSAVE("d/x"),
	      REN("d", "d9"), FHSAME("d9/x"), FHCHECK()), NULL, 0 },
	{ "s29b_fh_across_restart", "handles and inode numbers survive a restart",
	  OPS(FHSAVE("d/x"), INOSAVE("d/x"), REN("d", "d9"), CHM("d9/x", 0600), RESTART(),
	      FHCHECK(), FHSAME("d9/x"), INOSAME("d9/x"), FHSAVE("hl1"), LNK("hl1", "m/hl9"),
	      UNL("hl1"), RESTART(), FHCHECK(), FHSAME("m/hl9"), FHSAVE("m/b"), UNL("m/b"),
	      RESTART(), FHCHECK()), NULL, 0 },
	{ "s31a_mount_time_xattrs", "origin=fh(lower root) on the upper root, upper=fh(upper"
	  " root) on index/ (docs/overlay.md)", OPS(CHM("f", 0600)), NULL, SC_STRICT_MOUNT },
	/* ---- our own ---- */
	{ "w01_copyup_each_type", "file, dir, symlink, fifo, char device",
	  OPS(CHO("f", 1, 2), CHO("e", 3, 4), CHO("sym", 5, 6), CHO("fifo", 7, 8),
	      CHO("cdev", 9, 10)), NULL, 0 },
	{ "w02_setattr_lower_dir", "chmod/chown/utimes of a lower dir",
	  OPS(CHM("d", 0701), CHO("d", 1000, 1000), UTI("d", 1400000000), UTI("m", 1400000000)),
	  NULL, 0 },
	{ "w03_truncate_lower", "shrink and extend",
	  OPS(TRUNC("f", 3), TRUNC("g", 100000), TRUNC("big", 1000)), NULL, 0 },
	{ "w04_write_middle_of_lower", "partial write after copy-up",
	  OPS(W("big", (1 << 20) + 3, "hello in the middle"), W("f", 2, "XY")), NULL, 0 },
	{ "w05_sparse_write", "write into a hole",
	  OPS(W("sparse", 5 << 20, "five MiB")), NULL, 0 },
	{ "w06_rename_over_existing", "lower over upper, upper over lower",
	  OPS(REN("f", "uf"), REN("ud/u1", "g"), REN("r1", "top")), NULL, 0 },
	{ "w07_rename_into_other_dir", "file into lower dir, deep dir",
	  OPS(REN("f", "d/f"), REN("g", "deep/a/b/c/g"), REN("uf", "m/uf")), NULL, 0 },
	{ "w08_rename_dir_twice", "redirect kept relative",
	  OPS(REN("d", "d2"), REN("d2", "d3"), REN("dd", "ud/dd"), REN("ud/dd", "dd2")),
	  NULL, 0 },
	{ "w09_rmdir_merged_only_whiteouts", "clears the whiteouts",
	  OPS(UNL("m/a"), UNL("m/b"), RMD("m"), MKD("m", 0755)), NULL, 0 },
	{ "w10_mkdir_rmdir_mkdir", "pure upper: no opaque",
	  OPS(MKD("n", 0755), RMD("n"), MKD("n", 0700), MKD("n/sub", 0755), RMD("n/sub")),
	  NULL, 0 },
	{ "w11_create_after_remove", "file and dir names",
	  OPS(UNL("f"), CR("f", 0600, "new f"), RMD("e"), CR("e", 0644, "file now"),
	      UNL("sym"), MKD("sym", 0755)), NULL, 0 },
	{ "w12_link_lower_then_unlink", "index alias",
	  OPS(LNK("f", "f_link"), UNL("f"), W("f_link", 0, "W")), NULL, SC_KERNEL_NLINK },
	{ "w13_symlink_over_whiteout", "symlink replaces the whiteout",
	  OPS(SYM("some/target", "wo"), UNL("f"), SYM("uf", "f")), NULL, 0 },
	{ "w14_mknod_fifo", "fifo in merged parent and root",
	  OPS(MKN("m/ff", S_IFIFO | 0640, 0), MKN("ff", S_IFIFO | 0600, 0),
	      MKN("wo", S_IFIFO | 0644, 0)), NULL, 0 },
	{ "w15_deep_copyup", "parents copied up first",
	  OPS(W("deep/a/b/c/file", 0, "DEEP"), CR("deep/a/new", 0644, "n")), NULL, 0 },
	{ "w16a_errors_exist", "EEXIST on lower and upper names",
	  OPS(CRX("f", 0644), MKD("d", 0755), MKD("uf", 0755), MKD("f", 0755)), NULL, 0 },
	{ "w16b_errors_type", "ENOTDIR / EISDIR on lower objects",
	  OPS(RMD("f"), UNL("d"), CR("f/x", 0644, "x")), NULL, 0 },
	{ "w16c_errors_noent", "ENOENT on whiteouts and missing names",
	  OPS(UNL("wo"), UNL("gone"), REN("nonexist", "x"), LNK("nope", "x"), RMD("wdir")),
	  NULL, 0 },
	{ "w16d_errors_rename", "EINVAL into own subtree, EISDIR file over dir",
	  OPS(REN("dd", "dd/sub/x"), REN("f", "d"), REN("d", "f")), NULL, 0 },
	{ "w17a_rename_onto_itself", "no-op, nothing copied up",
	  OPS(REN("f", "f"), REN("d", "d")), NULL, 0 },
	{ "w17b_rename_onto_own_hardlink", "no-op (same inode), nothing copied up",
	  OPS(REN("hl1", "hl2")), NULL, 0 },
	{ "w18_hardlinked_lower_write", "both names see the write (index)",
	  OPS(W("hl1", 0, "HARD"), CHM("hl2", 0600)), NULL, 0 },
	{ "w19_link_upper_into_merged", "link of pure-upper file",
	  OPS(LNK("uf", "m/uflink"), LNK("ud/u1", "d/u1link"), UNL("uf")), NULL, 0 },
	{ "w20_rmdir_merged_middle_whiteouts", "whiteouts in a middle layer",
	  OPS(RMD("mw"), UNL("mw/p"), RMD("mw"), MKD("mw", 0755)), NULL, 0 },
	{ "w21_rename_dir_over_whiteout_and_back", "redirect, whiteout moves",
	  OPS(REN("d", "wdir"), REN("wdir", "d"), REN("o", "o2")), NULL, 0 },
	{ "w22_setattr_upper_and_copied", "chmod of upper file; chmod twice",
	  OPS(CHM("uf", 0600), CHM("f", 0600), CHM("f", 0640), UTI("f", 1000000000)), NULL, 0 },
};

/* the skipped section-9 items, printed with their reason */
static const char *const skipped[] = {
	"s13 nofollow remount: needs redirect_dir=nofollow, not this mount",
	"s17 RENAME_EXCHANGE / RENAME_WHITEOUT: no NFSv3 equivalent",
	"s30 userxattr: needs userxattr, not this mount",
	("(s8 setxattr, s9 O_RDWR, s16 NOREPLACE: no NFSv3 equivalent; covered by the"
	 " chmod/O_TRUNC/plain-rename parts)"),
	"(s31 cross-mount: done in every scenario, steps 4 and 5)",
};

/* ------------------------------------------------------------------ */
/* running one scenario                                                */
/* ------------------------------------------------------------------ */

/* The same options for both: ovlnfsd takes the kernel's. */
static void side_opts(const char *X, char *buf, size_t len, bool kernel)
{
	(void)kernel;
	snprintf(buf, len,
		 "lowerdir=%.700s/l0:%.700s/l1:%.700s/l2,upperdir=%.700s/upper,workdir=%.700s/work,"
		 "index=on,nfs_export=on,redirect_dir=on", X, X, X, X, X);
}

static void umount_cleanup(void *arg)
{
	umount2(arg, MNT_DETACH);
	free(arg);
}

static int kmount(const char *X, const char *mnt, int *tok)
{
	char opts[4 * PATH_MAX];

	side_opts(X, opts, sizeof(opts), true);
	/* EBUSY ("upperdir is in-use"): the previous overlay on this upper
	 * may still be going away after its umount; retry for a while */
	for (int tries = 0; mount("overlay", mnt, "overlay", 0, opts) != 0; tries++) {
		if (errno != EBUSY || tries >= 50)
			return -errno;
		usleep(100000);
	}
	*tok = tl_cleanup_push(umount_cleanup, strdup(mnt));
	return 0;
}

static void kumount(const char *mnt, int tok)
{
	ASSERTF(umount2(mnt, 0) == 0, "umount %s: %s", mnt, strerror(errno));
	tl_cleanup_cancel(tok);
}

static void dmesg_tail(char *out, size_t len)
{
	FILE *p = popen("dmesg 2>/dev/null | grep -i overlay | tail -n 2 | tr '\\n' ' '", "r");
	size_t n = 0;

	out[0] = 0;
	if (!p)
		return;
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	pclose(p);
}

static void sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ASSERTF(system(cmd) == 0, "command failed: %s", cmd);
}

struct diffs {
	char first[9000];
	int nfail;
};

static void note(struct diffs *d, const char *fmt, ...)
{
	char buf[9000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stdout, "#   %s\n", buf);
	if (!d->nfail)
		snprintf(d->first, sizeof(d->first), "%s", buf);
	d->nfail++;
}

static bool kernel_overlay_usable(void)
{
	static int cached = -1;
	char root[] = "/tmp/onfs-ow-probe-XXXXXX";
	char mnt[PATH_MAX];
	int r;

	if (cached >= 0)
		return cached;
	if (!mkdtemp(root))
		return false;
	sh("mkdir -p %s/l0 %s/l1 %s/l2 %s/upper %s/work %s/mnt", root, root, root, root, root,
	   root);
	tl_join(mnt, sizeof(mnt), root, "mnt");
	{
		char opts[4 * PATH_MAX];
		side_opts(root, opts, sizeof(opts), true);
		r = mount("overlay", mnt, "overlay", 0, opts);
		if (r == 0)
			umount2(mnt, 0);
	}
	tl_rmtree(root);
	cached = r == 0;
	return cached;
}

static void run_scenario(const struct scenario *sc)
{
	struct tl_tree t;
	char A[PATH_MAX], B[PATH_MAX], mntA[PATH_MAX], mntB[PATH_MAX], opts[4 * PATH_MAX];
	char msg[8192], w1[256], w2[256];
	struct tree kt = { 0 }, nt = { 0 }, da = { 0 }, db = { 0 }, kb = { 0 }, na = { 0 };
	struct tree kt2 = { 0 };
	struct diffs df = { .nfail = 0 };
	int kerr[64], nerr[64], nops = 0, tok, r;
	struct tl_server s;

	if (geteuid() != 0)
		RETURN_SKIP_CI("not root: cannot mount overlayfs or set trusted.* xattrs");
	if (!kernel_overlay_usable())
		RETURN_SKIP_CI("mount -t overlay with index=on,nfs_export=on,redirect_dir=on fails here");
	fprintf(stdout, "# %s: %s\n", sc->name, sc->what);
	umask(022);
	tl_tree_new(&t, 0);
	if (getenv("ONFS_OW_KEEP")) { /* debugging: keep the tree */
		tl_cleanup_cancel(t.cleanup_token);
		fprintf(stdout, "# kept: %s\n", t.root);
	}
	/* uid 1000 steps must be able to reach the mount point */
	ASSERT(chmod(t.root, 0711) == 0);
	tl_join(A, sizeof(A), t.root, "A");
	tl_join(B, sizeof(B), t.root, "B");
	sh("mkdir -p %s/l0 %s/l1 %s/l2 %s/upper %s/work", A, A, A, A, A);
	build_std(A);
	nftw(A, settime_one, 32, FTW_PHYS);
	sh("cp -a %s %s", A, B);
	if (sc->prework) {
		char w[PATH_MAX];
		tl_join(w, sizeof(w), A, "work");
		sc->prework(w);
		tl_join(w, sizeof(w), B, "work");
		sc->prework(w);
	}
	sh("mkdir %s/mnt %s/mnt", A, B);
	tl_join(mntA, sizeof(mntA), A, "mnt");
	tl_join(mntB, sizeof(mntB), B, "mnt");

	/* (a) the kernel on A; modes of the steps are exact (no umask, as
	 * over NFS where the client applies it) */
	umask(0);
	r = kmount(A, mntA, &tok);
	if (r < 0) {
		dmesg_tail(msg, sizeof(msg));
		tl_fail(__FILE__, __LINE__, "kernel mount of A failed: %s (%s)", strerror(-r), msg);
	}
	{
		struct kside ks = { .mnt = mntA, .X = A, .tok = &tok };
		for (nops = 0; sc->ops[nops].k != OP_END; nops++)
			kerr[nops] = k_run(&ks, &sc->ops[nops]);
	}
	walk_local(mntA, "", &kt, 0);
	kumount(mntA, tok);

	/* (b) ovlnfsd on B (ONFS_OW_SELFTEST=1: the kernel again, to check
	 * that the comparison itself finds two kernel runs equal) */
	if (getenv("ONFS_OW_SELFTEST")) {
		r = kmount(B, mntB, &tok);
		ASSERTF(r == 0, "kernel mount of B: %s", strerror(-r));
		struct kside ks = { .mnt = mntB, .X = B, .tok = &tok };
		for (int i = 0; i < nops; i++)
			nerr[i] = k_run(&ks, &sc->ops[i]);
		walk_local(mntB, "", &nt, 0);
		kumount(mntB, tok);
	} else {
	side_opts(B, opts, sizeof(opts), false);
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	{
		struct nside ns = { .srv = &s, .logdir = t.root, .statedir = t.state,
				    .opts = opts };
		n_connect(&ns, s.port);
		for (int i = 0; i < nops; i++)
			nerr[i] = n_run(&ns, &sc->ops[i]);
		walk_nfs(ns.nfs, "", &nt, 0);
		n_close(&ns);
	}
	tl_server_stop(&s);
	}
	umask(022);

	/* (1) errno of every step */
	for (int i = 0; i < nops; i++) {
		const struct op *o = &sc->ops[i];
		if (getenv("ONFS_OW_VERBOSE"))
			fprintf(stdout, "#   step %d %s(%s%s%s): kernel %s, ovlnfsd %s\n", i + 1,
				op_name(o->k), o->a, o->b ? ", " : "", o->b ? o->b : "",
				kerr[i] ? strerror(kerr[i]) : "ok", nerr[i] ? strerror(nerr[i]) : "ok");
		if (!errno_equiv(o, kerr[i], nerr[i]))
			note(&df, "(1) step %d %s(%s%s%s)%s: kernel %s, ovlnfsd %s", i + 1,
			     op_name(o->k), o->a, o->b ? ", " : "", o->b ? o->b : "",
			     o->uid ? " as 1000" : "", kerr[i] ? strerror(kerr[i]) : "ok",
			     nerr[i] ? strerror(nerr[i]) : "ok");
	}
	/* (2) merged trees */
	{
		bool restarted = false;
		for (int i = 0; i < nops; i++)
			restarted |= sc->ops[i].k == OP_RESTART;
		tree_diff(&kt, &nt, "kernel", "ovlnfsd",
			  CMP_MERGED | (restarted || (sc->flags & SC_KERNEL_NLINK)
					? CMP_NLINK_REMOUNT : 0), msg, sizeof(msg));
	}
	if (msg[0])
		note(&df, "(2) merged tree: %s", msg);
	/* (3) upper + work on disk */
	dump_disk(A, &da);
	dump_disk(B, &db);
	normalize_dump(&da, sc->flags & SC_STRICT_MOUNT);
	normalize_dump(&db, sc->flags & SC_STRICT_MOUNT);
	tree_diff(&da, &db, "kernel", "ovlnfsd", CMP_DISK, msg, sizeof(msg));
	if (msg[0])
		note(&df, "(3) disk: %s", msg);
	{
		int n1 = work_leftovers(A, w1, sizeof(w1)), n2 = work_leftovers(B, w2, sizeof(w2));
		if (!(sc->flags & SC_WORK_RO)) {
			if (n1)
				note(&df, "(3) kernel left %d entries in work/ (first '%s')", n1, w1);
			if (n2)
				note(&df, "(3) ovlnfsd left %d entries in work/ (first '%s')", n2, w2);
		}
	}
	/* The kernel's own view of A after a remount: the reference for (4).
	 * It differs from the live view of (2) by design in one way: an
	 * indexed copy-up of a lower file with nlink 1 reads nlink 2 after a
	 * remount (ovl_get_nlink falls back to the upper nlink, which counts
	 * the index link), 1 before. */
	r = kmount(A, mntA, &tok);
	if (r < 0) {
		dmesg_tail(msg, sizeof(msg));
		note(&df, "(4) kernel remount of its own A failed: %s (dmesg: %s)", strerror(-r),
		     msg);
	} else {
		walk_local(mntA, "", &kt2, 0);
		kumount(mntA, tok);
	}
	/* (4) the ovlnfsd-written upper under the kernel */
	r = kmount(B, mntB, &tok);
	if (r < 0) {
		dmesg_tail(msg, sizeof(msg));
		note(&df, "(4) kernel mount of the ovlnfsd-written upper failed: %s (dmesg: %s)",
		     strerror(-r), msg);
	} else {
		walk_local(mntB, "", &kb, 0);
		kumount(mntB, tok);
		tree_diff(&kt2, &kb, "kernel on A", "kernel on B", CMP_MERGED, msg, sizeof(msg));
		if (msg[0])
			note(&df, "(4) ovlnfsd-written upper under the kernel: %s", msg);
	}
	/* (5) the kernel-written upper served by ovlnfsd: equal to the
	 * kernel's live view or to its view after a remount (nlink above) */
	side_opts(A, opts, sizeof(opts), false);
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	{
		struct nside ns = { .srv = &s };
		n_connect(&ns, s.port);
		walk_nfs(ns.nfs, "", &na, 0);
		n_close(&ns);
	}
	tl_server_stop(&s);
	tree_diff(&kt, &na, "kernel", "ovlnfsd on A", CMP_MERGED, msg, sizeof(msg));
	if (msg[0]) {
		char msg2[8192];
		tree_diff(&kt2, &na, "kernel remounted", "ovlnfsd on A",
			  CMP_MERGED | CMP_NLINK_REMOUNT, msg2, sizeof(msg2));
		if (msg2[0])
			note(&df, "(5) kernel-written upper served by ovlnfsd: %s", msg);
	}

	tree_free(&kt);
	tree_free(&nt);
	tree_free(&da);
	tree_free(&db);
	tree_free(&kb);
	tree_free(&na);
	tree_free(&kt2);
	if (df.nfail)
		tl_fail(__FILE__, __LINE__, "%d difference(s); first: %s", df.nfail, df.first);
	tl_tree_free(&t);
}

/* ---------- the case table: one case per scenario ---------- */

#define NSC (sizeof(scenarios) / sizeof(scenarios[0]))

static int run_by_index(size_t i)
{
	run_scenario(&scenarios[i]);
	return 0;
}

#define SC_FN(i) \
	static int sc_##i(void) { return (size_t)(i) < NSC ? run_by_index(i) : 0; }
SC_FN(0) SC_FN(1) SC_FN(2) SC_FN(3) SC_FN(4) SC_FN(5) SC_FN(6) SC_FN(7) SC_FN(8) SC_FN(9)
SC_FN(10) SC_FN(11) SC_FN(12) SC_FN(13) SC_FN(14) SC_FN(15) SC_FN(16) SC_FN(17) SC_FN(18)
SC_FN(19) SC_FN(20) SC_FN(21) SC_FN(22) SC_FN(23) SC_FN(24) SC_FN(25) SC_FN(26) SC_FN(27)
SC_FN(28) SC_FN(29) SC_FN(30) SC_FN(31) SC_FN(32) SC_FN(33) SC_FN(34) SC_FN(35) SC_FN(36)
SC_FN(37) SC_FN(38) SC_FN(39) SC_FN(40) SC_FN(41) SC_FN(42) SC_FN(43) SC_FN(44) SC_FN(45)
SC_FN(46) SC_FN(47) SC_FN(48) SC_FN(49) SC_FN(50) SC_FN(51) SC_FN(52) SC_FN(53) SC_FN(54)
SC_FN(55) SC_FN(56) SC_FN(57) SC_FN(58) SC_FN(59) SC_FN(60) SC_FN(61) SC_FN(62) SC_FN(63)

static int (*const sc_fns[])(void) = {
	sc_0, sc_1, sc_2, sc_3, sc_4, sc_5, sc_6, sc_7, sc_8, sc_9, sc_10, sc_11, sc_12,
	sc_13, sc_14, sc_15, sc_16, sc_17, sc_18, sc_19, sc_20, sc_21, sc_22, sc_23, sc_24,
	sc_25, sc_26, sc_27, sc_28, sc_29, sc_30, sc_31, sc_32, sc_33, sc_34, sc_35, sc_36,
	sc_37, sc_38, sc_39, sc_40, sc_41, sc_42, sc_43, sc_44, sc_45, sc_46, sc_47, sc_48,
	sc_49, sc_50, sc_51, sc_52, sc_53, sc_54, sc_55, sc_56, sc_57, sc_58, sc_59,
	sc_60, sc_61, sc_62, sc_63,
};

int main(int argc, char **argv)
{
	struct tl_case cases[TL_ARRAY_SIZE(sc_fns)];
	size_t n = 0;

	_Static_assert(NSC <= TL_ARRAY_SIZE(sc_fns), "add SC_FN entries");
	if (argc == 3 && !strcmp(argv[1], "--dump")) { /* debugging aid */
		struct tree t = { 0 };
		dump_disk(argv[2], &t);
		tree_sort(&t);
		for (size_t i = 0; i < t.n; i++)
			printf("%s %o %u:%u n%llu s%llu {%s}\n", t.e[i].path, t.e[i].mode,
			       t.e[i].uid, t.e[i].gid, (unsigned long long)t.e[i].nlink,
			       (unsigned long long)t.e[i].size, t.e[i].xattrs);
		return 0;
	}
	init_uid_ops();
	for (size_t i = 0; i < TL_ARRAY_SIZE(skipped); i++)
		fprintf(stdout, "# not run: %s\n", skipped[i]);
	for (size_t i = 0; i < NSC; i++) {
		cases[n].name = scenarios[i].name;
		cases[n].fn = sc_fns[i];
		cases[n].timeout_s = 120;
		n++;
	}
	fprintf(stdout, "# %zu scenarios\n", n);
	return tl_run(argc, argv, cases, n);
}
