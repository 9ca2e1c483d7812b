/*
 * test-deep.c - deep trees (issue 17, "Deep trees"): every operation at a
 * depth where the client's path is about PATH_MAX (4,096 bytes) and beyond
 * it, with the layers themselves under a long server path, so that the
 * layer root plus the client's path is longer than any system call takes.
 * A lower layer holds a tree 45 levels (4,545 bytes) deep: writing its
 * deepest file copies up the file and all 45 of its ancestor directories.
 * Another holds 40 levels (4,040 bytes); ten more levels are made through
 * NFS (5,050 bytes), and at both
 * depths CREATE, WRITE, READ, SETATTR, LINK, SYMLINK, READLINK, RENAME
 * (within a directory and across deep directories), MKDIR, RMDIR, REMOVE,
 * READDIRPLUS and LOOKUP of ".." are checked; the server is restarted and
 * the handles taken before still decode at depth (directories, upper
 * files, copied-up and never-copied lower files); finally the kernel
 * overlay mounts the same layers and must show the same deep tree (walked
 * with openat: the kernel's paths stop at PATH_MAX too).
 *
 * The test builds and reads deep trees with *at calls from directory
 * descriptors only. Each case starts its own server and stops it by PID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

#define COMP_LEN 100   /* bytes per path component */
#define LOWER_DEPTH 40 /* 40 x 101 = 4,040 bytes of client path */
#define DEEP_DEPTH 50  /* 5,050 bytes: beyond PATH_MAX */
#define COPYUP_DEPTH 45 /* 4,545 bytes: a lower tree deeper than PATH_MAX */

static const char lower_data[] = "lower-file-at-depth\n";

struct deep {
	char top[64];         /* mkdtemp: removed at the end */
	char base[PATH_MAX];  /* top + a long path: the layers live here */
	char lower[PATH_MAX + 16];
	char upper[PATH_MAX + 16];
	char work[PATH_MAX + 16];
	char state[128];
	char opts[4 * PATH_MAX];
	struct tl_server s;
	int token;
};

/* Component i (1-based) of the deep chain: 100 bytes. */
static void comp(int i, char out[COMP_LEN + 1])
{
	int n = snprintf(out, COMP_LEN + 1, "level-%03d-", i);

	memset(out + n, 'd', (size_t)(COMP_LEN - n));
	out[COMP_LEN] = '\0';
}

static void rm_top(void *arg)
{
	/* GNU rm walks by descriptors: deep trees are fine */
	char cmd[PATH_MAX + 32];
	int rc;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (const char *)arg);
	rc = system(cmd);
	(void)rc;
	free(arg);
}

static void mkdir_or_fail(const char *p)
{
	ASSERTF(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

/*
 * Open (creating when asked) the chain of components from..to below
 * dirfd, one component at a time. Returns the deepest directory's fd.
 */
static int walk_at(int dirfd, int from, int to, bool create)
{
	char name[COMP_LEN + 1];
	int fd = dup(dirfd);

	ASSERT(fd >= 0);
	for (int i = from; i <= to; i++) {
		int nfd;

		comp(i, name);
		if (create)
			ASSERTF(mkdirat(fd, name, 0755) == 0 || errno == EEXIST, "mkdirat level %d: %s", i,
				strerror(errno));
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ASSERTF(nfd >= 0, "openat level %d: %s", i, strerror(errno));
		close(fd);
		fd = nfd;
	}
	return fd;
}

static void write_at(int dirfd, const char *name, const char *data)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ASSERTF(fd >= 0, "create %s: %s", name, strerror(errno));
	ASSERT(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
	close(fd);
}

static void deep_setup(struct deep *d, int lower_depth)
{
	char tmpl[] = "/tmp/onfs-deep-XXXXXX", *p;
	int lfd, fd;

	memset(d, 0, sizeof(*d));
	ASSERT(mkdtemp(tmpl) != NULL);
	snprintf(d->top, sizeof(d->top), "%s", tmpl);
	d->token = tl_cleanup_push(rm_top, strdup(d->top));
	/* the layers' own path: about 260 bytes */
	p = d->base;
	p += sprintf(p, "%s", d->top);
	for (int i = 0; i < 4; i++) {
		p += sprintf(p, "/server-side-path-%d-", i);
		memset(p, 's', 40);
		p += 40;
		*p = '\0';
		mkdir_or_fail(d->base);
	}
	ASSERTF(strlen(d->base) > 200, "base path %zu bytes", strlen(d->base));
	snprintf(d->lower, sizeof(d->lower), "%s/lower", d->base);
	snprintf(d->upper, sizeof(d->upper), "%s/upper", d->base);
	snprintf(d->work, sizeof(d->work), "%s/work", d->base);
	snprintf(d->state, sizeof(d->state), "%s/state", d->top);
	mkdir_or_fail(d->lower);
	mkdir_or_fail(d->upper);
	mkdir_or_fail(d->work);
	mkdir_or_fail(d->state);
	/* the lower's deep tree: lf, lf2 and lsub/inner at its bottom */
	lfd = open(d->lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT(lfd >= 0);
	fd = walk_at(lfd, 1, lower_depth, true);
	write_at(fd, "lf", lower_data);
	write_at(fd, "lf2", "second lower file\n");
	ASSERT(mkdirat(fd, "lsub", 0755) == 0);
	{
		int sfd = openat(fd, "lsub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT(sfd >= 0);
		write_at(sfd, "inner", "inner lower file\n");
		close(sfd);
	}
	close(fd);
	close(lfd);
	snprintf(d->opts, sizeof(d->opts), "lowerdir=%s,upperdir=%s,workdir=%s", d->lower,
		 d->upper, d->work);
}

static void deep_start(struct deep *d)
{
	tl_server_start(&d->s, d->top, d->state, d->opts, NULL, NULL);
}

/* LOOKUP components from..to below dir. */
static void nfs_walk_levels(struct tl_client *c, const struct tl_fh *dir, int from, int to,
			    struct tl_fh *out)
{
	char name[COMP_LEN + 1];
	struct tl_fh cur = *dir;

	for (int i = from; i <= to; i++) {
		comp(i, name);
		ASSERT_NFS(tl_nfs_lookup(c, &cur, name, &cur, NULL), NFS3_OK);
	}
	*out = cur;
}

static void read_expect(struct tl_client *c, const struct tl_fh *fh, const char *want)
{
	char buf[256];
	uint32_t got = 0;
	bool eof = false;

	ASSERT_NFS(tl_nfs_read(c, fh, 0, sizeof(buf) - 1, buf, &got, &eof), NFS3_OK);
	buf[got] = '\0';
	ASSERT_STREQ(buf, want);
}

/* The names READDIRPLUS lists in dir (every entry with attributes and a handle). */
static char *list_plus(struct tl_client *c, const struct tl_fh *dir)
{
	uint8_t verf[8] = { 0 };
	uint64_t cookie = 0;
	char *names = calloc(1, 1);
	size_t len = 0;

	for (int pages = 0; pages < 100; pages++) {
		struct tl_dirpage pg;

		ASSERT_NFS(tl_nfs_readdirplus(c, dir, cookie, verf, 8192, 65536, &pg), NFS3_OK);
		for (size_t i = 0; i < pg.n; i++) {
			const char *n = pg.e[i].name;
			if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
				continue;
			ASSERTF(pg.e[i].has_attr && pg.e[i].has_fh, "entry %s without attr/handle", n);
			names = realloc(names, len + strlen(n) + 2);
			len += (size_t)sprintf(names + len, "%s,", n);
			cookie = pg.e[i].cookie;
		}
		memcpy(verf, pg.verf, 8);
		bool eof = pg.eof;
		tl_dirpage_free(&pg);
		if (eof)
			return names;
	}
	tl_fail(__FILE__, __LINE__, "READDIRPLUS did not end");
}

static bool listed(const char *names, const char *name)
{
	size_t l = strlen(name);

	for (const char *p = names; (p = strstr(p, name)); p++)
		if ((p == names || p[-1] == ',') && p[l] == ',')
			return true;
	return false;
}

/* Every operation in the deep directory dir (tag: what the file says). */
static void ops_at(struct tl_client *c, const struct tl_fh *dir, const char *tag)
{
	struct tl_fh f, l, s, sub, dd;
	fattr3 a;
	char buf[64], *names;

	ASSERT_NFS(tl_nfs_create(c, dir, "file"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "file", &f, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_write(c, &f, 0, tag, (uint32_t)strlen(tag)), NFS3_OK);
	read_expect(c, &f, tag);
	ASSERT_NFS(tl_nfs_setattr_mode(c, &f, 0600), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(c, &f, &a), NFS3_OK);
	ASSERT_EQ(a.mode & 07777, 0600);
	ASSERT_NFS(tl_nfs_link(c, &f, dir, "hardlink"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "hardlink", &l, &a), NFS3_OK);
	ASSERT_EQ(a.nlink, 2);
	read_expect(c, &l, tag);
	ASSERT_NFS(tl_nfs_symlink(c, dir, "sym", "file"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "sym", &s, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_readlink(c, &s, buf, sizeof(buf)), NFS3_OK);
	ASSERT_STREQ(buf, "file");
	ASSERT_NFS(tl_nfs_rename(c, dir, "file", dir, "renamed"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "file", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "renamed", &f, NULL), NFS3_OK);
	read_expect(c, &f, tag);
	ASSERT_NFS(tl_nfs_mkdir(c, dir, "sub"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, dir, "sub", &sub, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(c, &sub, "..", &dd, NULL), NFS3_OK);
	ASSERT_EQ(dd.len, dir->len);
	ASSERT(memcmp(dd.data, dir->data, dir->len) == 0);
	ASSERT_NFS(tl_nfs_create(c, &sub, "x"), NFS3_OK);
	ASSERT_NFS(tl_nfs_rmdir(c, dir, "sub"), NFS3ERR_NOTEMPTY);
	ASSERT_NFS(tl_nfs_remove(c, &sub, "x"), NFS3_OK);
	ASSERT_NFS(tl_nfs_rmdir(c, dir, "sub"), NFS3_OK);
	names = list_plus(c, dir);
	ASSERTF(listed(names, "renamed") && listed(names, "hardlink") && listed(names, "sym") &&
		!listed(names, "file") && !listed(names, "sub"), "listing: %s", names);
	free(names);
	ASSERT_NFS(tl_nfs_remove(c, dir, "hardlink"), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(c, &f, &a), NFS3_OK);
	ASSERT_EQ(a.nlink, 1);
}

/* The lower file at depth 45 is written: it and its 45 ancestors copy up. */
TEST_IMPL(deep_copyup_lower)
{
	struct deep d;
	struct tl_client c;
	struct tl_fh root, dl, lf, lsub;
	char name[COMP_LEN + 1], v[128];
	int ufd, fd;

	deep_setup(&d, COPYUP_DEPTH);
	deep_start(&d);
	tl_client_mount(&c, d.s.port, "/", &root);
	nfs_walk_levels(&c, &root, 1, COPYUP_DEPTH, &dl);
	ASSERT_NFS(tl_nfs_lookup(&c, &dl, "lf", &lf, NULL), NFS3_OK);
	read_expect(&c, &lf, lower_data);
	ASSERT_NFS(tl_nfs_write(&c, &lf, 0, "LOWER", 5), NFS3_OK);
	read_expect(&c, &lf, "LOWER-file-at-depth\n");
	/* a create in a lower directory one level further copies that one up too */
	ASSERT_NFS(tl_nfs_lookup(&c, &dl, "lsub", &lsub, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &lsub, "new"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &lsub, "inner", NULL, NULL), NFS3_OK);
	tl_client_close(&c);
	tl_server_stop(&d.s);

	/* on disk: every ancestor is in the upper layer with its origin */
	ufd = open(d.upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT(ufd >= 0);
	fd = dup(ufd);
	for (int i = 1; i <= COPYUP_DEPTH; i++) {
		int nfd;

		comp(i, name);
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ASSERTF(nfd >= 0, "upper level %d: %s", i, strerror(errno));
		close(fd);
		fd = nfd;
		ASSERTF(fgetxattr(fd, "trusted.overlay.origin", v, sizeof(v)) > 0,
			"upper level %d has no origin", i);
	}
	{
		int ffd = openat(fd, "lf", O_RDONLY | O_CLOEXEC);
		char buf[64] = { 0 };

		ASSERT(ffd >= 0);
		ASSERT(fgetxattr(ffd, "trusted.overlay.origin", v, sizeof(v)) > 0);
		ASSERT(read(ffd, buf, sizeof(buf) - 1) == (ssize_t)strlen(lower_data));
		ASSERT_STREQ(buf, "LOWER-file-at-depth\n");
		close(ffd);
	}
	ASSERT(faccessat(fd, "lsub/new", F_OK, AT_SYMLINK_NOFOLLOW) == 0);
	ASSERT(faccessat(fd, "lf2", F_OK, AT_SYMLINK_NOFOLLOW) < 0); /* not copied */
	close(fd);
	close(ufd);
	return 0;
}

struct snap {
	char names[4096];
	char renamed[64];
};

/* Names of a directory fd (sorted is not needed: compared as sets). */
static bool dir_has(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static void umount_cleanup(void *arg)
{
	umount2(arg, MNT_DETACH);
	free(arg);
}

TEST_IMPL(deep_all_ops_restart_kernel)
{
	struct deep d;
	struct tl_client c;
	struct tl_fh root, d40, d50, d49, keep, inner, lf2, up, upd;
	char name[COMP_LEN + 1], *n40, *n50;
	fattr3 a;

	deep_setup(&d, LOWER_DEPTH);
	deep_start(&d);
	tl_client_mount(&c, d.s.port, "/", &root);
	nfs_walk_levels(&c, &root, 1, LOWER_DEPTH, &d40);
	/* ten levels more through NFS: the client's path passes 4,096 bytes */
	d50 = d40;
	for (int i = LOWER_DEPTH + 1; i <= DEEP_DEPTH; i++) {
		comp(i, name);
		if (i == DEEP_DEPTH)
			d49 = d50;
		ASSERT_NFS(tl_nfs_mkdir(&c, &d50, name), NFS3_OK);
		ASSERT_NFS(tl_nfs_lookup(&c, &d50, name, &d50, NULL), NFS3_OK);
	}
	{
		struct tl_fh dd;
		ASSERT_NFS(tl_nfs_lookup(&c, &d50, "..", &dd, NULL), NFS3_OK);
		ASSERT(dd.len == d49.len && memcmp(dd.data, d49.data, dd.len) == 0);
	}
	ops_at(&c, &d40, "at depth 40\n");
	ops_at(&c, &d50, "at depth 50\n");
	/* across deep directories: a file both ways, an upper directory */
	ASSERT_NFS(tl_nfs_rename(&c, &d50, "renamed", &d40, "from50"), NFS3_OK);
	ASSERT_NFS(tl_nfs_rename(&c, &d40, "lf", &d50, "lf-moved"), NFS3_OK); /* a lower file */
	ASSERT_NFS(tl_nfs_mkdir(&c, &d50, "updir"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &d50, "updir", &upd, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &upd, "in-updir"), NFS3_OK);
	ASSERT_NFS(tl_nfs_rename(&c, &d50, "updir", &d40, "updir-moved"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &d40, "updir-moved", &upd, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &upd, "in-updir", NULL, NULL), NFS3_OK);
	/*
	 * A lower directory moved to another deep directory needs an absolute
	 * redirect of its 4,000-byte lower path: longer than the kernel's
	 * redirect_max (256), so EXDEV as from the kernel overlay (mv copies).
	 */
	ASSERT_NFS(tl_nfs_rename(&c, &d40, "lsub", &d50, "lsub-moved"), NFS3ERR_XDEV);
	ASSERT_NFS(tl_nfs_lookup(&c, &d40, "from50", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &d50, "lf-moved", &up, NULL), NFS3_OK);
	read_expect(&c, &up, lower_data);
	/* handles to keep across the restart */
	ASSERT_NFS(tl_nfs_create(&c, &d50, "keep"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &d50, "keep", &keep, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_write(&c, &keep, 0, "kept\n", 5), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &d40, "lf2", &lf2, NULL), NFS3_OK); /* never copied up */
	{
		struct tl_fh lsub;
		ASSERT_NFS(tl_nfs_lookup(&c, &d40, "lsub", &lsub, NULL), NFS3_OK);
		ASSERT_NFS(tl_nfs_lookup(&c, &lsub, "inner", &inner, NULL), NFS3_OK);
	}
	n40 = list_plus(&c, &d40);
	n50 = list_plus(&c, &d50);
	tl_client_close(&c);
	tl_server_stop(&d.s);

	/* a restart: the handles from before decode at depth */
	deep_start(&d);
	tl_client_connect(&c, d.s.port);
	ASSERT_NFS(tl_nfs_getattr(&c, &d50, &a), NFS3_OK); /* an upper directory, 5,050 bytes */
	ASSERT_EQ(a.type, NF3DIR);
	ASSERT_NFS(tl_nfs_getattr(&c, &d40, &a), NFS3_OK); /* a copied-up lower directory */
	ASSERT_EQ(a.type, NF3DIR);
	read_expect(&c, &keep, "kept\n");                    /* an upper file */
	read_expect(&c, &lf2, "second lower file\n");        /* a lower file */
	read_expect(&c, &inner, "inner lower file\n");       /* a lower file, depth 41 */
	read_expect(&c, &up, lower_data);                     /* copied up and moved */
	ASSERT_NFS(tl_nfs_lookup(&c, &d50, "keep", NULL, NULL), NFS3_OK);
	{
		char *again = list_plus(&c, &d50);
		ASSERT_STREQ(again, n50);
		free(again);
	}
	/* a write after the restart, at depth, through an old handle */
	ASSERT_NFS(tl_nfs_write(&c, &lf2, 0, "S", 1), NFS3_OK);
	read_expect(&c, &lf2, "Second lower file\n");
	free(n40);
	n40 = list_plus(&c, &d40);
	tl_client_close(&c);
	tl_server_stop(&d.s);

	/* the kernel overlay on the same layers shows the same deep tree */
	{
		char mnt[128], kopts[5 * PATH_MAX];
		int mfd, k40, k50, tok;

		snprintf(mnt, sizeof(mnt), "%s/mnt", d.top);
		mkdir_or_fail(mnt);
		snprintf(kopts, sizeof(kopts), "%s,index=on,nfs_export=on,redirect_dir=on", d.opts);
		if (mount("overlay", mnt, "overlay", MS_RDONLY, kopts) != 0)
			RETURN_SKIP_CI("kernel overlay mount: %s (the NFS checks passed)",
				       strerror(errno));
		tok = tl_cleanup_push(umount_cleanup, strdup(mnt));
		mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT(mfd >= 0);
		k40 = walk_at(mfd, 1, LOWER_DEPTH, false);
		k50 = walk_at(k40, LOWER_DEPTH + 1, DEEP_DEPTH, false);
		/* what NFS listed is what the kernel sees, and nothing else */
		for (int pass = 0; pass < 2; pass++) {
			int kfd = pass ? k50 : k40;
			char *names = pass ? n50 : n40, *save = NULL, *copy = strdup(names);
			int count = 0, kcount = 0;
			DIR *dd;
			struct dirent *e;

			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				ASSERTF(dir_has(kfd, t), "kernel overlay lacks '%s' at depth %d", t,
					pass ? 50 : 40);
				count++;
			}
			free(copy);
			dd = fdopendir(dup(kfd));
			ASSERT(dd);
			while ((e = readdir(dd)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					kcount++;
			closedir(dd);
			ASSERTF(kcount == count, "depth %d: kernel lists %d, NFS listed %d (%s)",
				pass ? 50 : 40, kcount, count, names);
		}
		{
			char buf[64] = { 0 };
			int ffd = openat(k50, "lf-moved", O_RDONLY | O_CLOEXEC);
			ASSERT(ffd >= 0 && read(ffd, buf, sizeof(buf) - 1) > 0);
			ASSERT_STREQ(buf, lower_data);
			close(ffd);
			memset(buf, 0, sizeof(buf));
			ffd = openat(k40, "lf2", O_RDONLY | O_CLOEXEC);
			ASSERT(ffd >= 0 && read(ffd, buf, sizeof(buf) - 1) > 0);
			ASSERT_STREQ(buf, "Second lower file\n");
			close(ffd);
			memset(buf, 0, sizeof(buf));
			ffd = openat(k40, "updir-moved/in-updir", O_RDONLY | O_CLOEXEC);
			ASSERT(ffd >= 0);
			close(ffd);
		}
		close(k50);
		close(k40);
		close(mfd);
		ASSERTF(umount2(mnt, 0) == 0, "umount: %s", strerror(errno));
		tl_cleanup_cancel(tok);
	}
	free(n40);
	free(n50);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(deep_copyup_lower, 300),
		TEST_ENTRY_TIMEOUT(deep_all_ops_restart_kernel, 600),
	};

	if (geteuid() != 0) {
		/* trusted.overlay.* xattrs and the kernel overlay need root */
		printf("SKIP all: needs root (trusted.* xattrs)\n");
		return 77;
	}
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
