/*
 * test-oracle.c - the kernel's overlayfs is the oracle: the same layers
 * (three lowers, an upper with whiteouts, opaque dirs, xattr whiteouts in
 * a lower under an opaque=x parent, and an upper the kernel itself wrote:
 * redirects from renamed lower dirs, copy-ups, kernel whiteouts, a dir
 * re-created over a whiteout) are mounted with `mount -t overlay` and
 * served by ovlnfsd; both trees are walked (the kernel mount through the
 * filesystem, ovlnfsd through libnfs) and must be equal: names, types,
 * sizes, modes, owners, link targets, file contents, file mtimes.
 *
 * The kernel mount and ovlnfsd never use the layers at the same time: the
 * kernel tree is recorded, the overlay unmounted, then ovlnfsd serves the
 * very same layers (copies would carry X.origin xattrs pointing at the
 * original inodes, which an index=on-style server rightly refuses to merge).
 *
 * Runs as root in a test process; unmounts in every path (cleanup stack),
 * stops its server by PID. Skips, with the reason, only when the overlay
 * mount itself fails. Includes libnfs headers (never rpcgen's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

/* ---------- one recorded tree ---------- */

struct ent {
	char *path;      /* relative, "" for the root */
	uint32_t mode;   /* S_IFMT | 07777 */
	uint32_t uid, gid;
	uint64_t size;
	int64_t mtime_s;
	uint32_t mtime_ns;
	char *target;    /* symlinks */
	uint8_t *data;   /* regular files */
	size_t datalen;
};

struct tree {
	struct ent *e;
	size_t n, cap;
};

static struct ent *tree_add(struct tree *t)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 128;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		ASSERT(t->e != NULL);
	}
	memset(&t->e[t->n], 0, sizeof(t->e[0]));
	return &t->e[t->n++];
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].target);
		free(t->e[i].data);
	}
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static char *join_rel(const char *dir, const char *name)
{
	char *p;

	ASSERT(asprintf(&p, "%s%s%s", dir, *dir ? "/" : "", name) > 0);
	return p;
}

/* ---------- walking the kernel mount ---------- */

static void walk_kernel(const char *mnt, const char *rel, struct tree *t, int depth)
{
	char abs[PATH_MAX];
	struct stat st;
	struct ent *e;

	ASSERTF(depth < 32, "tree too deep at '%s'", rel);
	tl_join(abs, sizeof(abs), mnt, rel);
	ASSERTF(lstat(abs, &st) == 0, "lstat '%s': %s", abs, strerror(errno));
	e = tree_add(t);
	e->path = strdup(rel);
	e->mode = st.st_mode & (S_IFMT | 07777);
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->size = S_ISDIR(st.st_mode) ? 0 : (uint64_t)st.st_size;
	e->mtime_s = st.st_mtim.tv_sec;
	e->mtime_ns = (uint32_t)st.st_mtim.tv_nsec;
	if (S_ISLNK(st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(abs, buf, sizeof(buf) - 1);
		ASSERTF(n >= 0, "readlink '%s': %s", abs, strerror(errno));
		buf[n] = 0;
		e->target = strdup(buf);
	} else if (S_ISREG(st.st_mode)) {
		char *data;
		ssize_t n = tl_read_file(abs, &data);
		ASSERTF(n >= 0, "read '%s': %s", abs, strerror((int)-n));
		e->data = (uint8_t *)data;
		e->datalen = (size_t)n;
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
			ASSERT(names != NULL);
			names[nn++] = strdup(de->d_name);
		}
		closedir(d);
		/* recursion appends; copy out what we need first */
		for (size_t i = 0; i < nn; i++) {
			char *child = join_rel(rel, names[i]);
			walk_kernel(mnt, child, t, depth + 1);
			free(child);
			free(names[i]);
		}
		free(names);
	}
}

/* ---------- walking ovlnfsd through libnfs ---------- */

static void walk_nfs(struct nfs_context *nfs, const char *rel, struct tree *t, int depth)
{
	char path[PATH_MAX];
	struct nfs_stat_64 st;
	struct ent *e;

	ASSERTF(depth < 32, "tree too deep at '%s'", rel);
	snprintf(path, sizeof(path), "/%s", rel);
	ASSERTF(nfs_lstat64(nfs, path, &st) == 0, "NFS lstat '%s': %s", path,
		nfs_get_error(nfs));
	e = tree_add(t);
	e->path = strdup(rel);
	e->mode = (uint32_t)st.nfs_mode & (S_IFMT | 07777);
	e->uid = (uint32_t)st.nfs_uid;
	e->gid = (uint32_t)st.nfs_gid;
	e->size = S_ISDIR(e->mode) ? 0 : st.nfs_size;
	e->mtime_s = (int64_t)st.nfs_mtime;
	e->mtime_ns = (uint32_t)st.nfs_mtime_nsec;
	if (S_ISLNK(e->mode)) {
		char buf[PATH_MAX];
		memset(buf, 0, sizeof(buf));
		ASSERTF(nfs_readlink(nfs, path, buf, sizeof(buf) - 1) == 0, "NFS readlink '%s': %s",
			path, nfs_get_error(nfs));
		e->target = strdup(buf);
	} else if (S_ISREG(e->mode)) {
		struct nfsfh *fh;
		size_t cap = st.nfs_size + 1, len = 0;
		uint8_t *data = malloc(cap + 65536);

		ASSERT(data != NULL);
		ASSERTF(nfs_open(nfs, path, O_RDONLY, &fh) == 0, "NFS open '%s': %s", path,
			nfs_get_error(nfs));
		for (int guard = 0; guard < 100000; guard++) {
			int n = nfs_pread(nfs, fh, len, 65536, data + len);
			ASSERTF(n >= 0, "NFS read '%s': %s", path, nfs_get_error(nfs));
			if (n == 0)
				break;
			len += (size_t)n;
			ASSERTF(len <= cap, "NFS read '%s': more data than the size %llu", path,
				(unsigned long long)st.nfs_size);
		}
		nfs_close(nfs, fh);
		e->data = data;
		e->datalen = len;
	} else if (S_ISDIR(e->mode)) {
		struct nfsdir *d;
		struct nfsdirent *de;
		char **names = NULL;
		size_t nn = 0;

		ASSERTF(nfs_opendir(nfs, path, &d) == 0, "NFS opendir '%s': %s", path,
			nfs_get_error(nfs));
		while ((de = nfs_readdir(nfs, d)) != NULL) {
			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				continue;
			names = realloc(names, (nn + 1) * sizeof(*names));
			ASSERT(names != NULL);
			names[nn++] = strdup(de->name);
		}
		nfs_closedir(nfs, d);
		for (size_t i = 0; i < nn; i++) {
			char *child = join_rel(rel, names[i]);
			walk_nfs(nfs, child, t, depth + 1);
			free(child);
			free(names[i]);
		}
		free(names);
	}
}

/* ---------- compare ---------- */

static void compare(struct tree *k, struct tree *o)
{
	size_t i = 0, j = 0;
	int ndiff = 0;

	qsort(k->e, k->n, sizeof(*k->e), ent_cmp);
	qsort(o->e, o->n, sizeof(*o->e), ent_cmp);
	while ((i < k->n || j < o->n) && ndiff < 30) {
		int c = i >= k->n ? 1 : j >= o->n ? -1 : strcmp(k->e[i].path, o->e[j].path);
		if (c < 0) {
			printf("# DIFF '/%s': in the kernel overlay only\n", k->e[i].path);
			ndiff++;
			i++;
			continue;
		}
		if (c > 0) {
			printf("# DIFF '/%s': served by ovlnfsd only\n", o->e[j].path);
			ndiff++;
			j++;
			continue;
		}
		struct ent *a = &k->e[i++], *b = &o->e[j++];
		if (a->mode != b->mode) {
			printf("# DIFF '/%s': mode kernel 0%o ovlnfsd 0%o\n", a->path, a->mode,
			       b->mode);
			ndiff++;
		}
		if (a->uid != b->uid || a->gid != b->gid) {
			printf("# DIFF '/%s': owner kernel %u:%u ovlnfsd %u:%u\n", a->path, a->uid,
			       a->gid, b->uid, b->gid);
			ndiff++;
		}
		if (a->size != b->size) {
			printf("# DIFF '/%s': size kernel %llu ovlnfsd %llu\n", a->path,
			       (unsigned long long)a->size, (unsigned long long)b->size);
			ndiff++;
		}
		if (!S_ISDIR(a->mode) && (a->mtime_s != b->mtime_s || a->mtime_ns != b->mtime_ns)) {
			printf("# DIFF '/%s': mtime kernel %lld.%09u ovlnfsd %lld.%09u\n", a->path,
			       (long long)a->mtime_s, a->mtime_ns, (long long)b->mtime_s, b->mtime_ns);
			ndiff++;
		}
		if ((a->target || b->target) &&
		    (!a->target || !b->target || strcmp(a->target, b->target) != 0)) {
			printf("# DIFF '/%s': link target kernel '%s' ovlnfsd '%s'\n", a->path,
			       a->target ? a->target : "(none)", b->target ? b->target : "(none)");
			ndiff++;
		}
		if (S_ISREG(a->mode) && S_ISREG(b->mode) &&
		    (a->datalen != b->datalen || memcmp(a->data, b->data, a->datalen) != 0)) {
			printf("# DIFF '/%s': contents differ (kernel %zu bytes, ovlnfsd %zu)\n",
			       a->path, a->datalen, b->datalen);
			ndiff++;
		}
	}
	ASSERTF(ndiff == 0, "%d difference(s) between the kernel overlay and ovlnfsd (listed above)",
		ndiff);
	ASSERT_EQ(k->n, o->n);
}

/* ---------- layers ---------- */

static void umount_cleanup(void *arg)
{
	umount2(arg, MNT_DETACH);
	free(arg);
}

/* Mount the overlay; returns a cleanup token, or -1 with errno set. */
static int kmount(const char *mnt, const char *opts)
{
	if (mount("overlay", mnt, "overlay", 0, opts) != 0)
		return -1;
	return tl_cleanup_push(umount_cleanup, strdup(mnt));
}

static void kumount(const char *mnt, int token)
{
	tl_cleanup_cancel(token);
	ASSERTF(umount(mnt) == 0, "umount '%s': %s", mnt, strerror(errno));
}

static void kernel_opts(const struct tl_tree *t, char *buf, size_t len)
{
	tl_tree_opts(t, true, buf, len);
	ASSERT(strlen(buf) + 20 < len);
	strcat(buf, ",redirect_dir=on");
}

static void build_layers(struct tl_tree *t)
{
	const char *l0 = t->lower[0], *l1 = t->lower[1], *l2 = t->lower[2], *up = t->upper;
	char longname[256], p[PATH_MAX];
	uint8_t *big;

	/* bottom */
	tl_mkdir(l2, "common", 0755);
	tl_write(l2, "common/f2", "l2", 0644);
	tl_write(l2, "common/f1", "f1 from l2", 0644);
	tl_write(l2, "common/shared", "l2-shared", 0644);
	tl_write(l2, "common/only2", "only2", 0644);
	tl_mkdir(l2, "common/sub2", 0750);
	tl_write(l2, "common/sub2/deep", "deep2", 0444);
	tl_mkdir(l2, "opq", 0755);
	tl_write(l2, "opq/a", "a2", 0644);
	tl_write(l2, "opq/b", "b2", 0644);
	tl_mkdir(l2, "fod", 0755);
	tl_write(l2, "fod/inner", "inner", 0644);
	tl_write(l2, "dof", "file in l2", 0644);
	tl_mkdir(l2, "xw", 0755);
	tl_write(l2, "xw/x1", "x1", 0644);
	tl_write(l2, "xw/x2", "x2", 0644);
	tl_write(l2, "xw/x3", "x3", 0644);
	tl_mkdir(l2, "mvsrc", 0755);
	tl_write(l2, "mvsrc/m1", "m1", 0644);
	tl_mkdir(l2, "mvsrc/msub", 0755);
	tl_write(l2, "mvsrc/msub/m2", "m2", 0600);
	tl_mkdir_p(l2, "deep/inner");
	tl_write(l2, "deep/inner/z", "z", 0644);
	tl_write(l2, "deep/stay", "stay", 0644);
	tl_write(l2, "rmme", "rm", 0644);
	tl_mkdir(l2, "rmdir_me", 0755);
	tl_mkdir(l2, "recreate", 0755);
	tl_write(l2, "recreate/old", "old", 0644);
	tl_write(l2, "exec", "#!/bin/sh\necho hi\n", 0755);
	tl_write(l2, "private", "private", 0600);
	tl_write(l2, "owned", "owned", 0640);
	tl_chown(l2, "owned", 1234, 5678);
	tl_write(l2, "setuid", "su", 04755);
	tl_mkdir(l2, "sticky", 01777);
	tl_symlink(l2, "abs_link", "/etc/passwd");
	tl_symlink(l2, "rel_link", "common/f2");
	tl_symlink(l2, "dangling", "nope/nothing");
	tl_join(p, sizeof(p), l2, "fifo");
	ASSERT(mkfifo(p, 0644) == 0);
	tl_join(p, sizeof(p), l2, "nulldev");
	ASSERT(mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0);
	tl_write(l2, "empty", "", 0644);
	big = malloc(300 * 1024 + 7);
	ASSERT(big != NULL);
	for (size_t i = 0; i < 300 * 1024 + 7; i++)
		big[i] = (uint8_t)(i * 31 + i / 4093);
	tl_write_buf(l2, "big", big, 300 * 1024 + 7, 0644);
	free(big);
	tl_write(l2, "hl1", "hardlinked", 0644);
	{
		char a[PATH_MAX], b[PATH_MAX];
		tl_join(a, sizeof(a), l2, "hl1");
		tl_join(b, sizeof(b), l2, "hl2");
		ASSERT(link(a, b) == 0);
	}
	tl_write(l2, "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9", "unicode", 0644);
	tl_write(l2, "a b c", "spaces", 0644);
	memset(longname, 'L', 255);
	longname[255] = 0;
	tl_write(l2, longname, "long", 0644);
	tl_set_mtime(l2, "common/f2", 1400000000, 987654321);

	/* middle */
	tl_mkdir(l1, "common", 0755);
	tl_write(l1, "common/f1", "l1", 0644);
	tl_write(l1, "common/shared", "l1-shared", 0644);
	tl_whiteout(l1, "common/only2");
	tl_mkdir(l1, "opq", 0700);
	tl_opaque(l1, "opq");
	tl_write(l1, "opq/c", "c1", 0644);
	tl_write(l1, "fod", "file wins", 0644);
	tl_mkdir(l1, "dof", 0755);
	tl_write(l1, "dof/x", "x", 0644);
	tl_mkdir(l1, "xw", 0755);
	tl_xwhiteout_parent(l1, "xw");
	tl_xwhiteout(l1, "xw/x1");
	tl_mkdir(l1, "l1only", 0755);
	tl_write(l1, "l1only/q", "q", 0644);

	/* top lower */
	tl_mkdir(l0, "common", 0755);
	tl_write(l0, "common/f0", "l0", 0644);
	tl_write(l0, "common/shared", "l0-shared", 0644);
	tl_mkdir(l0, "xw", 0755);
	tl_whiteout(l0, "xw/x2");
	tl_write(l0, "l0only", "l0only", 0644);

	/* upper, hand-made part */
	tl_mkdir(up, "common", 0755);
	tl_write(up, "common/fu", "up", 0644);
	tl_write(up, "common/shared", "up-shared", 0600);
	tl_whiteout(up, "common/f1");
	tl_mkdir(up, "uonly", 0711);
	tl_write(up, "uonly/u", "u", 0644);
}

/* Let the kernel write part of the upper: redirects, copy-ups, whiteouts. */
static void kernel_writes(const char *m)
{
	char a[PATH_MAX], b[PATH_MAX];
	int fd;

	tl_join(a, sizeof(a), m, "mvsrc");
	tl_join(b, sizeof(b), m, "mvdst");
	ASSERTF(rename(a, b) == 0, "kernel rename of a lower dir (redirect_dir=on): %s",
		strerror(errno));
	tl_join(a, sizeof(a), m, "deep/inner");
	tl_join(b, sizeof(b), m, "moved_inner");
	ASSERTF(rename(a, b) == 0, "kernel cross-dir rename of a lower dir: %s", strerror(errno));
	tl_join(a, sizeof(a), m, "rmme");
	ASSERT(unlink(a) == 0);
	tl_join(a, sizeof(a), m, "rmdir_me");
	ASSERT(rmdir(a) == 0);
	tl_join(a, sizeof(a), m, "recreate/old");
	ASSERT(unlink(a) == 0);
	tl_join(a, sizeof(a), m, "recreate");
	ASSERT(rmdir(a) == 0);
	ASSERT(mkdir(a, 0755) == 0);
	tl_write(m, "recreate/new", "new", 0644);
	tl_join(a, sizeof(a), m, "common/f2");
	fd = open(a, O_WRONLY | O_APPEND);
	ASSERT(fd >= 0);
	ASSERT(write(fd, "+k", 2) == 2);
	close(fd);
	tl_join(a, sizeof(a), m, "common/f0");
	ASSERT(chmod(a, 0600) == 0);
	tl_write(m, "newfile", "kernel", 0644);
	tl_join(a, sizeof(a), m, "newdir");
	ASSERT(mkdir(a, 0755) == 0);
	tl_symlink(m, "newlink", "newfile");
	tl_join(a, sizeof(a), m, "l0only");
	tl_join(b, sizeof(b), m, "l0renamed");
	ASSERT(rename(a, b) == 0);
	tl_join(a, sizeof(a), m, "mvdst/m1");
	ASSERT(unlink(a) == 0);
}

static const struct ent *tree_find(const struct tree *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].path, path) == 0)
			return &t->e[i];
	return NULL;
}

/* The oracle itself must show the rules at work, or the comparison proves
 * little: check a few landmarks in the kernel's view. */
static void sanity_kernel_tree(const struct tree *k, bool kernel_wrote)
{
	static const char *const present[] = { "common/f0", "common/f2", "common/fu",
					       "opq/c", "xw/x3", "dof/x", "l1only/q",
					       "common/sub2/deep", NULL };
	static const char *const absent[] = { "common/f1", "common/only2", "opq/a", "xw/x1",
					      "xw/x2", "fod/inner", NULL };
	static const char *const kpresent[] = { "mvdst/msub/m2", "moved_inner/z", "recreate/new",
						"newfile", "newlink", "l0renamed", NULL };
	static const char *const kabsent[] = { "mvsrc", "deep/inner", "rmme", "rmdir_me",
					       "recreate/old", "l0only", "mvdst/m1", NULL };
	const struct ent *e;

	for (int i = 0; present[i]; i++)
		ASSERTF(tree_find(k, present[i]), "kernel view lacks '%s'", present[i]);
	for (int i = 0; absent[i]; i++)
		ASSERTF(!tree_find(k, absent[i]), "kernel view shows hidden '%s'", absent[i]);
	e = tree_find(k, "fod");
	ASSERT(e && S_ISREG(e->mode));
	e = tree_find(k, "dof");
	ASSERT(e && S_ISDIR(e->mode));
	e = tree_find(k, "common/shared");
	ASSERT(e && e->datalen == 9 && memcmp(e->data, "up-shared", 9) == 0);
	if (!kernel_wrote)
		return;
	for (int i = 0; kpresent[i]; i++)
		ASSERTF(tree_find(k, kpresent[i]), "kernel view lacks '%s'", kpresent[i]);
	for (int i = 0; kabsent[i]; i++)
		ASSERTF(!tree_find(k, kabsent[i]), "kernel view shows '%s'", kabsent[i]);
}

/* What the kernel wrote into the upper: a relative and an absolute
 * redirect, an opaque re-created dir. */
static void sanity_kernel_upper(const struct tl_tree *t)
{
	char p[PATH_MAX], v[PATH_MAX];
	ssize_t n;

	tl_join(p, sizeof(p), t->upper, "mvdst");
	n = lgetxattr(p, "trusted.overlay.redirect", v, sizeof(v) - 1);
	ASSERTF(n > 0, "the kernel wrote no redirect on upper/mvdst: %s", strerror(errno));
	v[n] = 0;
	ASSERT_STREQ(v, "mvsrc");
	tl_join(p, sizeof(p), t->upper, "moved_inner");
	n = lgetxattr(p, "trusted.overlay.redirect", v, sizeof(v) - 1);
	ASSERTF(n > 0, "the kernel wrote no redirect on upper/moved_inner: %s",
		strerror(errno));
	v[n] = 0;
	ASSERT_STREQ(v, "/deep/inner");
	tl_join(p, sizeof(p), t->upper, "recreate");
	n = lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v) - 1);
	ASSERTF(n == 1 && v[0] == 'y', "upper/recreate is not opaque");
}

TEST_IMPL(oracle_merged_tree_equals_kernel)
{
	struct tl_tree t;
	struct tl_server s;
	struct tree kt = { 0 }, ot = { 0 };
	char mnt[PATH_MAX], opts[8192];
	int tok;

	if (geteuid() != 0)
		RETURN_SKIP_CI("not root: cannot mount overlayfs");
	tl_tree_new(&t, 3);
	tl_join(mnt, sizeof(mnt), t.root, "mnt");
	tl_mkdir(t.root, "mnt", 0755);
	build_layers(&t);
	kernel_opts(&t, opts, sizeof(opts));

	/* 1. the kernel writes part of the upper */
	tok = kmount(mnt, opts);
	if (tok < 0)
		RETURN_SKIP_CI("mount -t overlay failed: %s (opts %s)", strerror(errno), opts);
	kernel_writes(mnt);
	kumount(mnt, tok);

	/* 2. the kernel's merged view, recorded */
	tok = kmount(mnt, opts);
	ASSERTF(tok >= 0, "second overlay mount failed: %s", strerror(errno));
	walk_kernel(mnt, "", &kt, 0);
	kumount(mnt, tok);
	ASSERTF(kt.n > 40, "kernel tree has only %zu entries", kt.n);
	sanity_kernel_upper(&t);
	sanity_kernel_tree(&kt, true);

	/* 3. ovlnfsd on the same layers, walked through libnfs */
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	{
		struct nfs_context *nfs = tl_hl_mount(s.port, "/");
		walk_nfs(nfs, "", &ot, 0);
		tl_hl_close(nfs);
	}
	tl_server_stop(&s);

	compare(&kt, &ot);
	tree_free(&kt);
	tree_free(&ot);
	tl_tree_free(&t);
	return 0;
}

/* The same comparison on a purely hand-made set of layers (no kernel
 * writes), served by ovlnfsd read-only (lowers only). */
TEST_IMPL(oracle_lower_only_equals_kernel)
{
	struct tl_tree t;
	struct tl_server s;
	struct tree kt = { 0 }, ot = { 0 };
	char mnt[PATH_MAX], opts[8192];
	int tok;

	if (geteuid() != 0)
		RETURN_SKIP_CI("not root: cannot mount overlayfs");
	tl_tree_new(&t, 3);
	tl_join(mnt, sizeof(mnt), t.root, "mnt");
	tl_mkdir(t.root, "mnt", 0755);
	build_layers(&t);
	/* lower-only: upper becomes the top lower */
	tl_tree_opts_ro_view(&t, opts, sizeof(opts));
	tok = kmount(mnt, opts);
	if (tok < 0)
		RETURN_SKIP_CI("mount -t overlay (lower only) failed: %s", strerror(errno));
	walk_kernel(mnt, "", &kt, 0);
	kumount(mnt, tok);
	sanity_kernel_tree(&kt, false);

	tl_server_start(&s, t.root, t.state, opts, NULL, NULL);
	{
		struct nfs_context *nfs = tl_hl_mount(s.port, "/");
		walk_nfs(nfs, "", &ot, 0);
		tl_hl_close(nfs);
	}
	tl_server_stop(&s);
	compare(&kt, &ot);
	tree_free(&kt);
	tree_free(&ot);
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(oracle_merged_tree_equals_kernel, 300),
	TEST_ENTRY_TIMEOUT(oracle_lower_only_equals_kernel, 300),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
