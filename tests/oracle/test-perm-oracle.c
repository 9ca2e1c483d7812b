/*
 * test-perm-oracle.c - "the client decides" (issue 5), with Linux as the
 * oracle: the same operations as several client identities (root; the
 * owner; a member of the file's group through a supplementary group; a
 * stranger) run on the kernel overlay (in a child with those credentials:
 * setgroups + setresgid + setresuid) and through ovlnfsd (AUTH_SYS with
 * the same uid, gid and groups, no squash), on identical copies of the
 * layers. Every errno must be equal. Needs root; skips with the reason
 * when the overlay cannot be mounted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-zdr.h>

#include "nfsclient.h"
#include "testlib.h"

struct who {
	const char *name;
	uint32_t uid, gid, ngroups, groups[2];
};

static const struct who whos[] = {
	{ "root", 0, 0, 0, { 0 } },
	{ "owner", 1000, 1000, 0, { 0 } },
	{ "group", 1002, 1002, 1, { 1001 } }, /* in 1001 by a supplementary group */
	{ "other", 1003, 1003, 0, { 0 } },
};

enum op { READ_F, WRITE_F, CREATE, UNLINK, CHMOD, UTIMES, MKDIR, RENAME, NOPS };
static const char *op_names[] = { "read", "write", "create", "unlink", "chmod", "utimes",
				  "mkdir", "rename" };

/* Objects per case (dir, file): every identity gets its own copies. */
struct target {
	const char *dir;  /* directory the name lives in */
	const char *file; /* file in it (suffixed by the identity) */
};

static const struct target targets[] = {
	{ "pub", "f644" },     /* 0777 dir, root 0644 file */
	{ "priv", "g660" },    /* 0750 1000:1001 dir, 1000:1001 0660 file */
	{ "sticky", "o600" },  /* 1777 dir, 1000:1000 0600 file */
	{ "priv", "o600" },
};

static void build(const char *lower)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir pub priv sticky && chmod 777 pub && chmod 750 priv && "
		 "chown 1000:1001 priv && chmod 1777 sticky && "
		 "for w in root owner group other; do "
		 "  for d in pub priv sticky; do "
		 "    echo data > $d/f644.$w && chmod 644 $d/f644.$w; "
		 "    echo data > $d/g660.$w && chown 1000:1001 $d/g660.$w && chmod 660 $d/g660.$w; "
		 "    echo data > $d/o600.$w && chown 1000:1000 $d/o600.$w && chmod 600 $d/o600.$w; "
		 "  done; "
		 "done", lower);
	ASSERT(system(cmd) == 0);
}

/* The operation on a local path; returns 0 or errno. */
static int do_local(enum op op, const char *mnt, const struct target *t, const char *w)
{
	char p[3 * PATH_MAX], q[3 * PATH_MAX];
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	int fd;

	snprintf(p, sizeof(p), "%s/%s/%s.%s", mnt, t->dir, t->file, w);
	switch (op) {
	case READ_F:
		fd = open(p, O_RDONLY);
		if (fd < 0)
			return errno;
		close(fd);
		return 0;
	case WRITE_F:
		fd = open(p, O_WRONLY | O_APPEND);
		if (fd < 0)
			return errno;
		if (write(fd, "x", 1) != 1) {
			int e = errno;
			close(fd);
			return e;
		}
		close(fd);
		return 0;
	case CREATE:
		snprintf(q, sizeof(q), "%s/%s/new.%s.%s", mnt, t->dir, t->file, w);
		fd = open(q, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			return errno;
		close(fd);
		return 0;
	case UNLINK:
		return unlink(p) < 0 ? errno : 0;
	case CHMOD:
		return chmod(p, 0640) < 0 ? errno : 0;
	case UTIMES:
		return utimensat(AT_FDCWD, p, ts, 0) < 0 ? errno : 0;
	case MKDIR:
		snprintf(q, sizeof(q), "%s/%s/d.%s.%s", mnt, t->dir, t->file, w);
		return mkdir(q, 0755) < 0 ? errno : 0;
	case RENAME:
		snprintf(q, sizeof(q), "%s/%s/mv.%s.%s", mnt, t->dir, t->file, w);
		return rename(p, q) < 0 ? errno : 0;
	default:
		return EINVAL;
	}
}

/* In a child with the identity's credentials. */
static int kernel_op(enum op op, const char *mnt, const struct target *t, const struct who *w)
{
	int status;
	pid_t pid = fork();

	ASSERT(pid >= 0);
	if (pid == 0) {
		gid_t g[2] = { w->groups[0], w->groups[1] };
		if (setgroups(w->ngroups, g) < 0 || setresgid(w->gid, w->gid, w->gid) < 0 ||
		    setresuid(w->uid, w->uid, w->uid) < 0)
			_exit(255);
		_exit(do_local(op, mnt, t, w->name));
	}
	ASSERT(waitpid(pid, &status, 0) == pid);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 255);
	return WEXITSTATUS(status);
}

static int nfs_op(struct nfs_context *nfs, enum op op, const struct target *t, const char *w)
{
	char p[1024], q[1024];
	struct nfsfh *fh;
	struct timeval tv[2] = { { 1000000, 0 }, { 1000000, 0 } };
	int r;

	snprintf(p, sizeof(p), "/%s/%s.%s", t->dir, t->file, w);
	switch (op) {
	case READ_F:
		r = nfs_open(nfs, p, O_RDONLY, &fh);
		if (r == 0)
			nfs_close(nfs, fh);
		return -r;
	case WRITE_F:
		r = nfs_open(nfs, p, O_WRONLY, &fh);
		if (r == 0) {
			uint64_t end;
			r = nfs_lseek(nfs, fh, 0, SEEK_END, &end);
			if (r == 0)
				r = nfs_write(nfs, fh, 1, "x") == 1 ? 0 : -EIO;
			nfs_close(nfs, fh);
		}
		return r < 0 ? -r : 0;
	case CREATE:
		snprintf(q, sizeof(q), "/%s/new.%s.%s", t->dir, t->file, w);
		r = nfs_create(nfs, q, O_EXCL, 0644, &fh);
		if (r == 0)
			nfs_close(nfs, fh);
		return -r;
	case UNLINK:
		return -nfs_unlink(nfs, p);
	case CHMOD:
		return -nfs_chmod(nfs, p, 0640);
	case UTIMES:
		return -nfs_utimes(nfs, p, tv);
	case MKDIR:
		snprintf(q, sizeof(q), "/%s/d.%s.%s", t->dir, t->file, w);
		return -nfs_mkdir(nfs, q);
	case RENAME:
		snprintf(q, sizeof(q), "/%s/mv.%s.%s", t->dir, t->file, w);
		return -nfs_rename(nfs, p, q);
	default:
		return EINVAL;
	}
}

TEST_IMPL(perm_matrix_matches_linux)
{
	struct tl_tree a, b;
	struct tl_server s;
	char mnt[PATH_MAX], opts[4 * PATH_MAX], cmd[4 * PATH_MAX + 64];
	int diffs = 0, checked = 0, denied = 0;

	tl_tree_new(&a, 1);
	tl_tree_new(&b, 1);
	build(a.lower[0]);
	build(b.lower[0]);
	/* the kernel reference */
	tl_join(mnt, sizeof(mnt), a.root, "mnt");
	ASSERT(mkdir(mnt, 0755) == 0);
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s,index=on,nfs_export=on,"
		 "redirect_dir=on", a.lower[0], a.upper, a.work);
	if (mount("overlay", mnt, "overlay", 0, opts) < 0)
		RETURN_SKIP_CI("cannot mount the kernel overlay (%s)", strerror(errno));
	snprintf(cmd, sizeof(cmd), "chmod 755 '%s' '%s'", a.root, b.root);
	ASSERT(system(cmd) == 0);

	tl_tree_opts(&b, true, opts, sizeof(opts));
	tl_server_start(&s, b.root, b.state, opts, NULL, NULL);
	for (size_t wi = 0; wi < TL_ARRAY_SIZE(whos); wi++) {
		const struct who *w = &whos[wi];
		struct nfs_context *nfs = tl_hl_mount(s.port, "/");

		rpc_set_auth(nfs_get_rpc_context(nfs),
			     libnfs_authunix_create("perm", w->uid, w->gid, w->ngroups,
						    (uint32_t *)w->groups));
		for (size_t ti = 0; ti < TL_ARRAY_SIZE(targets); ti++) {
			for (int op = 0; op < NOPS; op++) {
				int ke = kernel_op(op, mnt, &targets[ti], w);
				int ne = nfs_op(nfs, op, &targets[ti], w->name);
				checked++;
				denied += ke != 0;
				if (ke != ne) {
					diffs++;
					printf("# %s %s %s/%s: kernel %s, ovlnfsd %s\n", w->name,
					       op_names[op], targets[ti].dir, targets[ti].file,
					       ke ? strerror(ke) : "ok", ne ? strerror(ne) : "ok");
				}
			}
		}
		tl_hl_close(nfs);
	}
	tl_server_stop(&s);
	umount2(mnt, MNT_DETACH);
	printf("# %d operations compared (%d refused by Linux), %d differences\n", checked,
	       denied, diffs);
	ASSERTF(diffs == 0, "%d of %d operations differ from Linux", diffs, checked);
	/* a matrix that allows or refuses everything proves nothing */
	ASSERTF(denied >= 16 && checked - denied >= 16, "only %d of %d refused", denied, checked);
	tl_tree_free(&a);
	tl_tree_free(&b);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(perm_matrix_matches_linux, 300),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
