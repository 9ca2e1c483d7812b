/*
 * test-writes.c - the mutating NFSv3 procedures (SETATTR, WRITE, CREATE,
 * MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK, COMMIT) against a
 * real ovlnfsd on a loopback port: success and error paths, the client's
 * identity (uid 0 and uid 1000/1001 clients), WCC data, write verifiers,
 * and what the overlay left on disk (copy-ups with their origin xattr,
 * whiteouts, opaque directories, redirects), handles across copy-up,
 * rename and restart.
 *
 * Runs as a test process; each case starts its own server on a temp tree
 * and stops it by PID. Includes libnfs headers (never rpcgen's). The
 * libnfs raw API is driven through small synchronous wrappers here that
 * keep the whole reply (handles, wcc data, verifiers); one case uses the
 * high-level API.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

/* ---------- environment ---------- */

struct env {
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root;
	char opts[8192];
	bool rw;
};

static int chmodat_exact(const char *base, const char *rel, unsigned mode)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), base, rel);
	return chmod(p, mode);
}

/*
 * The tree every case starts from (one lower l0, upper empty):
 *   l0: f "lower-f" 0644 0:0, g "lower-g" 0644, d/ 0755 {x, y}, e/ (empty),
 *       mine "mine" 0600 1000:1000, ro/ 0755 0:0 {inner},
 *       tmp/ 01777 0:0 {his 1001:1001, hers 1000:1000}, open/ 0777 0:0,
 *       ld/ 0755 {sub/{deep}, f2}, suid 04755 0:0 "suid"
 */
static void tree_build(struct tl_tree *t)
{
	const char *l = t->lower[0];

	tl_write(l, "f", "lower-f", 0644);
	tl_write(l, "g", "lower-g", 0644);
	tl_mkdir(l, "d", 0755);
	tl_write(l, "d/x", "x", 0644);
	tl_write(l, "d/y", "y", 0644);
	tl_mkdir(l, "e", 0755);
	tl_write(l, "mine", "mine", 0600);
	tl_chown(l, "mine", 1000, 1000);
	tl_mkdir(l, "ro", 0755);
	tl_write(l, "ro/inner", "inner", 0644);
	tl_mkdir(l, "tmp", 01777);
	tl_write(l, "tmp/his", "his", 0644);
	tl_chown(l, "tmp/his", 1001, 1001);
	tl_write(l, "tmp/hers", "hers", 0644);
	tl_chown(l, "tmp/hers", 1000, 1000);
	tl_mkdir(l, "open", 0777);
	tl_mkdir(l, "ld", 0755);
	tl_mkdir(l, "ld/sub", 0755);
	tl_write(l, "ld/sub/deep", "deep", 0644);
	tl_write(l, "ld/f2", "f2", 0644);
	tl_write(l, "suid", "suid", 04755);
	/* tl_mkdir/tl_write take the mode through the umask: set it exactly */
	ASSERT(chmodat_exact(l, "tmp", 01777) == 0);
	ASSERT(chmodat_exact(l, "open", 0777) == 0);
	ASSERT(chmodat_exact(l, "suid", 04755) == 0);
}

static void env_start(struct env *e)
{
	if (e->rw)
		tl_tree_opts(&e->t, true, e->opts, sizeof(e->opts));
	else
		tl_tree_opts(&e->t, false, e->opts, sizeof(e->opts));
	tl_server_start(&e->s, e->t.root, e->t.state, e->opts, NULL, NULL);
	tl_client_mount(&e->c, e->s.port, "/", &e->root);
}

static void env_up(struct env *e, bool rw)
{
	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 1);
	tree_build(&e->t);
	e->rw = rw;
	env_start(e);
}

/* Stop and start the server on the same layers; the client reconnects. */
static void env_restart(struct env *e)
{
	struct tl_fh old = e->root;

	tl_client_close(&e->c);
	tl_server_stop(&e->s);
	env_start(e);
	ASSERT_EQ(old.len, e->root.len);
	ASSERT(memcmp(old.data, e->root.data, old.len) == 0);
}

static void env_down(struct env *e)
{
	tl_client_close(&e->c);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

static void walk_ok(struct env *e, const char *path, struct tl_fh *fh, fattr3 *attr)
{
	int st = tl_nfs_walk(&e->c, &e->root, path, fh, attr);

	ASSERTF(st == NFS3_OK, "LOOKUP path '%s': %s", path, tl_nfsstat_name(st));
}

static void as(struct env *e, int uid, int gid)
{
	tl_client_set_ids(&e->c, uid, gid);
}

/* ---------- on-disk checks ---------- */

static bool upper_exists(const struct env *e, const char *rel, struct stat *st)
{
	char p[PATH_MAX];
	struct stat sb;

	tl_join(p, sizeof(p), e->t.upper, rel);
	return lstat(p, st ? st : &sb) == 0;
}

static ssize_t upper_xattr(const struct env *e, const char *rel, const char *name, char *buf,
			   size_t len)
{
	char p[PATH_MAX];

	tl_join(p, sizeof(p), e->t.upper, rel);
	return lgetxattr(p, name, buf, len);
}

static bool upper_is_whiteout(const struct env *e, const char *rel)
{
	struct stat st;

	return upper_exists(e, rel, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

/* ---------- synchronous raw calls that keep the whole reply ---------- */

struct wres {
	int status;
	wcc_data wcc;    /* the (first) object's wcc data */
	wcc_data wcc2;   /* RENAME's target directory */
	bool has_fh;     /* a created object's handle */
	struct tl_fh fh;
	post_op_attr obj; /* a created object's attributes, LINK's file attributes */
	uint32_t count;
	int committed;
	uint8_t verf[8];
};

struct wpending {
	bool done;
	int proc;
	struct wres *r;
};

static void fh_from(struct tl_fh *fh, const nfs_fh3 *n)
{
	memset(fh, 0, sizeof(*fh));
	fh->len = n->data.data_len <= sizeof(fh->data) ? n->data.data_len : sizeof(fh->data);
	memcpy(fh->data, n->data.data_val, fh->len);
}

static void fh_to(nfs_fh3 *n, const struct tl_fh *fh)
{
	n->data.data_len = fh->len;
	n->data.data_val = (char *)fh->data;
}

static void new_obj(struct wres *r, const post_op_fh3 *fh, const post_op_attr *attr)
{
	r->has_fh = fh->handle_follows;
	if (r->has_fh)
		fh_from(&r->fh, &fh->post_op_fh3_u.handle);
	r->obj = *attr;
}

/* Copy what the test needs out of libnfs's decoded reply. */
static void wcb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct wpending *p = priv;
	struct wres *r = p->r;

	(void)rpc;
	p->done = true;
	r->status = -1;
	if (status != RPC_STATUS_SUCCESS || !data)
		return;
	r->status = (int)*(uint32_t *)data;
	switch (p->proc) {
	case NFS3_SETATTR:
		r->wcc = ((SETATTR3res *)data)->SETATTR3res_u.resok.obj_wcc;
		break;
	case NFS3_WRITE: {
		WRITE3res *w = data;
		if (w->status == NFS3_OK) {
			r->wcc = w->WRITE3res_u.resok.file_wcc;
			r->count = w->WRITE3res_u.resok.count;
			r->committed = w->WRITE3res_u.resok.committed;
			memcpy(r->verf, w->WRITE3res_u.resok.verf, 8);
		} else {
			r->wcc = w->WRITE3res_u.resfail.file_wcc;
		}
		break;
	}
	case NFS3_COMMIT: {
		COMMIT3res *w = data;
		if (w->status == NFS3_OK) {
			r->wcc = w->COMMIT3res_u.resok.file_wcc;
			memcpy(r->verf, w->COMMIT3res_u.resok.verf, 8);
		} else {
			r->wcc = w->COMMIT3res_u.resfail.file_wcc;
		}
		break;
	}
	case NFS3_CREATE: {
		CREATE3res *w = data;
		if (w->status == NFS3_OK) {
			new_obj(r, &w->CREATE3res_u.resok.obj,
				&w->CREATE3res_u.resok.obj_attributes);
			r->wcc = w->CREATE3res_u.resok.dir_wcc;
		} else {
			r->wcc = w->CREATE3res_u.resfail.dir_wcc;
		}
		break;
	}
	case NFS3_MKDIR: {
		MKDIR3res *w = data;
		if (w->status == NFS3_OK) {
			new_obj(r, &w->MKDIR3res_u.resok.obj, &w->MKDIR3res_u.resok.obj_attributes);
			r->wcc = w->MKDIR3res_u.resok.dir_wcc;
		} else {
			r->wcc = w->MKDIR3res_u.resfail.dir_wcc;
		}
		break;
	}
	case NFS3_SYMLINK: {
		SYMLINK3res *w = data;
		if (w->status == NFS3_OK) {
			new_obj(r, &w->SYMLINK3res_u.resok.obj,
				&w->SYMLINK3res_u.resok.obj_attributes);
			r->wcc = w->SYMLINK3res_u.resok.dir_wcc;
		} else {
			r->wcc = w->SYMLINK3res_u.resfail.dir_wcc;
		}
		break;
	}
	case NFS3_MKNOD: {
		MKNOD3res *w = data;
		if (w->status == NFS3_OK) {
			new_obj(r, &w->MKNOD3res_u.resok.obj, &w->MKNOD3res_u.resok.obj_attributes);
			r->wcc = w->MKNOD3res_u.resok.dir_wcc;
		} else {
			r->wcc = w->MKNOD3res_u.resfail.dir_wcc;
		}
		break;
	}
	case NFS3_REMOVE:
		r->wcc = ((REMOVE3res *)data)->REMOVE3res_u.resok.dir_wcc;
		break;
	case NFS3_RMDIR:
		r->wcc = ((RMDIR3res *)data)->RMDIR3res_u.resok.dir_wcc;
		break;
	case NFS3_RENAME:
		r->wcc = ((RENAME3res *)data)->RENAME3res_u.resok.fromdir_wcc;
		r->wcc2 = ((RENAME3res *)data)->RENAME3res_u.resok.todir_wcc;
		break;
	case NFS3_LINK:
		r->obj = ((LINK3res *)data)->LINK3res_u.resok.file_attributes;
		r->wcc = ((LINK3res *)data)->LINK3res_u.resok.linkdir_wcc;
		break;
	default:
		break;
	}
}

static int wwait(struct tl_client *c, struct wpending *p, int queued)
{
	double deadline = tl_now() + 60.0;

	ASSERTF(queued == 0, "could not queue the call: %s", rpc_get_error(c->rpc));
	while (!p->done) {
		struct pollfd pfd = { .fd = rpc_get_fd(c->rpc),
				      .events = (short)rpc_which_events(c->rpc) };
		int n = poll(&pfd, 1, 100);

		ASSERT(n >= 0 || errno == EINTR);
		ASSERTF(rpc_service(c->rpc, n > 0 ? pfd.revents : 0) >= 0 || p->done,
			"rpc_service: %s", rpc_get_error(c->rpc));
		ASSERTF(p->done || tl_now() < deadline, "no reply within 60 s");
	}
	return p->r->status;
}

#define WCALL(c, r, procnum, fn, args)                                        \
	({                                                                     \
		struct wpending _p = { .proc = (procnum), .r = (r) };          \
		memset((r), 0, sizeof(*(r)));                                  \
		wwait((c), &_p, fn((c)->rpc, wcb, (args), &_p));               \
	})

static sattr3 sattr_none(void)
{
	sattr3 s;

	memset(&s, 0, sizeof(s));
	return s;
}

static sattr3 sattr_mode(uint32_t mode)
{
	sattr3 s = sattr_none();

	s.mode.set_it = 1;
	s.mode.set_mode3_u.mode = mode;
	return s;
}

static int w_setattr(struct tl_client *c, const struct tl_fh *fh, const sattr3 *sa,
		     const nfstime3 *guard, struct wres *r)
{
	SETATTR3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.object, fh);
	a.new_attributes = *sa;
	if (guard) {
		a.guard.check = 1;
		a.guard.sattrguard3_u.obj_ctime = *guard;
	}
	return WCALL(c, r, NFS3_SETATTR, rpc_nfs3_setattr_async, &a);
}

static int w_write(struct tl_client *c, const struct tl_fh *fh, uint64_t off, const char *data,
		   stable_how how, struct wres *r)
{
	WRITE3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.file, fh);
	a.offset = off;
	a.count = (count3)strlen(data);
	a.stable = how;
	a.data.data_len = a.count;
	a.data.data_val = (char *)data;
	return WCALL(c, r, NFS3_WRITE, rpc_nfs3_write_async, &a);
}

static int w_commit(struct tl_client *c, const struct tl_fh *fh, struct wres *r)
{
	COMMIT3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.file, fh);
	return WCALL(c, r, NFS3_COMMIT, rpc_nfs3_commit_async, &a);
}

static int w_create(struct tl_client *c, const struct tl_fh *dir, const char *name,
		    createmode3 mode, const sattr3 *sa, const char *verf, struct wres *r)
{
	CREATE3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.how.mode = mode;
	if (mode == EXCLUSIVE)
		memcpy(a.how.createhow3_u.verf, verf, 8);
	else if (sa)
		a.how.createhow3_u.obj_attributes = *sa;
	return WCALL(c, r, NFS3_CREATE, rpc_nfs3_create_async, &a);
}

static int w_mkdir(struct tl_client *c, const struct tl_fh *dir, const char *name,
		   const sattr3 *sa, struct wres *r)
{
	MKDIR3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.where.dir, dir);
	a.where.name = (char *)name;
	if (sa)
		a.attributes = *sa;
	return WCALL(c, r, NFS3_MKDIR, rpc_nfs3_mkdir_async, &a);
}

static int w_symlink(struct tl_client *c, const struct tl_fh *dir, const char *name,
		     const char *target, struct wres *r)
{
	SYMLINK3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.symlink.symlink_data = (char *)target;
	return WCALL(c, r, NFS3_SYMLINK, rpc_nfs3_symlink_async, &a);
}

static int w_mknod(struct tl_client *c, const struct tl_fh *dir, const char *name, ftype3 type,
		   uint32_t major, uint32_t minor, struct wres *r)
{
	MKNOD3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.what.type = type;
	if (type == NF3CHR || type == NF3BLK) {
		a.what.mknoddata3_u.chr_device.spec.specdata1 = major;
		a.what.mknoddata3_u.chr_device.spec.specdata2 = minor;
		a.what.mknoddata3_u.chr_device.dev_attributes = sattr_mode(0640);
	} else if (type == NF3FIFO || type == NF3SOCK) {
		a.what.mknoddata3_u.pipe_attributes = sattr_mode(0640);
	}
	return WCALL(c, r, NFS3_MKNOD, rpc_nfs3_mknod_async, &a);
}

static int w_remove(struct tl_client *c, const struct tl_fh *dir, const char *name,
		    struct wres *r)
{
	REMOVE3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.object.dir, dir);
	a.object.name = (char *)name;
	return WCALL(c, r, NFS3_REMOVE, rpc_nfs3_remove_async, &a);
}

static int w_rmdir(struct tl_client *c, const struct tl_fh *dir, const char *name,
		   struct wres *r)
{
	RMDIR3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.object.dir, dir);
	a.object.name = (char *)name;
	return WCALL(c, r, NFS3_RMDIR, rpc_nfs3_rmdir_async, &a);
}

static int w_rename(struct tl_client *c, const struct tl_fh *from, const char *fname,
		    const struct tl_fh *to, const char *tname, struct wres *r)
{
	RENAME3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.from.dir, from);
	a.from.name = (char *)fname;
	fh_to(&a.to.dir, to);
	a.to.name = (char *)tname;
	return WCALL(c, r, NFS3_RENAME, rpc_nfs3_rename_async, &a);
}

static int w_link(struct tl_client *c, const struct tl_fh *file, const struct tl_fh *dir,
		  const char *name, struct wres *r)
{
	LINK3args a;

	memset(&a, 0, sizeof(a));
	fh_to(&a.file, file);
	fh_to(&a.link.dir, dir);
	a.link.name = (char *)name;
	return WCALL(c, r, NFS3_LINK, rpc_nfs3_link_async, &a);
}

/* The wcc data of a successful change: pre-op and post-op attributes. */
static void assert_wcc(const wcc_data *w, const char *what)
{
	ASSERTF(w->before.attributes_follow, "%s: no pre-op attributes", what);
	ASSERTF(w->after.attributes_follow, "%s: no post-op attributes", what);
}

static void read_is(struct env *e, const struct tl_fh *fh, const char *want)
{
	char buf[4096];
	uint32_t got;
	bool eof;

	ASSERT_NFS(tl_nfs_read(&e->c, fh, 0, sizeof(buf) - 1, buf, &got, &eof), NFS3_OK);
	ASSERT(got < sizeof(buf));
	buf[got] = 0;
	ASSERT_STREQ(buf, want);
}

static bool same_fh(const struct tl_fh *a, const struct tl_fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* ---------- SETATTR ---------- */

TEST_IMPL(setattr_mode_size_times_guard)
{
	struct env e;
	struct tl_fh f, d;
	struct wres r;
	fattr3 a, b;
	sattr3 s;
	nfstime3 bad;
	char x[256];
	struct stat st;

	env_up(&e, true);
	walk_ok(&e, "f", &f, &a);

	/* chmod of a lower file copies it up, origin recorded */
	ASSERT_NFS(w_setattr(&e.c, &f, &(sattr3){ .mode = { 1, { 0600 } } }, NULL, &r), NFS3_OK);
	assert_wcc(&r.wcc, "SETATTR mode");
	ASSERT_EQ(r.wcc.before.pre_op_attr_u.attributes.size, 7);
	ASSERT_EQ(r.wcc.after.post_op_attr_u.attributes.mode, 0600);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERT_EQ(b.mode, 0600);
	ASSERT_EQ(b.fileid, a.fileid);
	ASSERT(upper_exists(&e, "f", &st));
	ASSERT_EQ(st.st_mode & 07777, 0600);
	ASSERTF(upper_xattr(&e, "f", "trusted.overlay.origin", x, sizeof(x)) > 0,
		"copied-up f has no trusted.overlay.origin");

	/* truncate */
	s = sattr_none();
	s.size.set_it = 1;
	s.size.set_size3_u.size = 3;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3_OK);
	ASSERT_EQ(r.wcc.before.pre_op_attr_u.attributes.size, 7);
	ASSERT_EQ(r.wcc.after.post_op_attr_u.attributes.size, 3);
	read_is(&e, &f, "low");

	/* a client time, then the server's time */
	s = sattr_none();
	s.mtime.set_it = SET_TO_CLIENT_TIME;
	s.mtime.set_mtime_u.mtime.seconds = 1000000000;
	s.mtime.set_mtime_u.mtime.nseconds = 123456789;
	s.atime.set_it = SET_TO_CLIENT_TIME;
	s.atime.set_atime_u.atime.seconds = 999999999;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERT_EQ(b.mtime.seconds, 1000000000);
	ASSERT_EQ(b.mtime.nseconds, 123456789);
	ASSERT_EQ(b.atime.seconds, 999999999);
	s = sattr_none();
	s.mtime.set_it = SET_TO_SERVER_TIME;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERTF(labs((long)b.mtime.seconds - (long)time(NULL)) < 60,
		"SET_TO_SERVER_TIME: mtime %u", b.mtime.seconds);

	/* the guard: a wrong ctime is NOT_SYNC and changes nothing, the right one works */
	bad = b.ctime;
	bad.seconds -= 10;
	ASSERT_NFS(w_setattr(&e.c, &f, &(sattr3){ .mode = { 1, { 0644 } } }, &bad, &r),
		   NFS3ERR_NOT_SYNC);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &a), NFS3_OK);
	ASSERT_EQ(a.mode, 0600);
	ASSERT_NFS(w_setattr(&e.c, &f, &(sattr3){ .mode = { 1, { 0644 } } }, &a.ctime, &r),
		   NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &a), NFS3_OK);
	ASSERT_EQ(a.mode, 0644);

	/* a size on a directory or a symlink */
	walk_ok(&e, "d", &d, NULL);
	s = sattr_none();
	s.size.set_it = 1;
	ASSERT_NFS(w_setattr(&e.c, &d, &s, NULL, &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_symlink(&e.c, &e.root, "sl", "f", &r), NFS3_OK);
	f = r.fh;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3ERR_INVAL);

	/* chmod of a lower directory copies it up only */
	ASSERT_NFS(w_setattr(&e.c, &d, &(sattr3){ .mode = { 1, { 0700 } } }, NULL, &r), NFS3_OK);
	ASSERT(upper_exists(&e, "d", &st));
	ASSERT(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	ASSERT(!upper_exists(&e, "d/x", NULL));
	env_down(&e);
	return 0;
}

/* ---------- WRITE and COMMIT ---------- */

TEST_IMPL(write_stable_verf_restart)
{
	struct env e;
	struct tl_fh f, d, sl;
	struct wres r;
	uint8_t verf[8];
	char x[256];
	fattr3 a, b;

	env_up(&e, true);
	walk_ok(&e, "f", &f, &a);
	ASSERT_NFS(w_write(&e.c, &f, 0, "UPPER", UNSTABLE, &r), NFS3_OK);
	ASSERT_EQ(r.count, 5);
	ASSERT_EQ(r.committed, UNSTABLE);
	assert_wcc(&r.wcc, "WRITE");
	ASSERT_EQ(r.wcc.before.pre_op_attr_u.attributes.size, 7);
	memcpy(verf, r.verf, 8);
	read_is(&e, &f, "UPPER-f");
	/* copied up with its origin; the lower file untouched */
	ASSERTF(upper_xattr(&e, "f", "trusted.overlay.origin", x, sizeof(x)) > 0,
		"written f has no trusted.overlay.origin in the upper layer");
	{
		char *lower;
		char p[PATH_MAX];
		tl_join(p, sizeof(p), e.t.lower[0], "f");
		ASSERT(tl_read_file(p, &lower) == 7);
		ASSERT_STREQ(lower, "lower-f");
		free(lower);
	}
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERT_EQ(b.fileid, a.fileid);

	ASSERT_NFS(w_write(&e.c, &f, 7, "+sync", FILE_SYNC, &r), NFS3_OK);
	ASSERT_EQ(r.committed, FILE_SYNC);
	ASSERT(memcmp(r.verf, verf, 8) == 0);
	ASSERT_NFS(w_write(&e.c, &f, 12, "+data", DATA_SYNC, &r), NFS3_OK);
	ASSERT_EQ(r.committed, FILE_SYNC);
	ASSERT(memcmp(r.verf, verf, 8) == 0);
	ASSERT_EQ(r.wcc.after.post_op_attr_u.attributes.size, 17);
	read_is(&e, &f, "UPPER-f+sync+data");
	ASSERT_NFS(w_commit(&e.c, &f, &r), NFS3_OK);
	assert_wcc(&r.wcc, "COMMIT");
	ASSERT(memcmp(r.verf, verf, 8) == 0);

	/* beyond the end leaves a hole read as zeros */
	ASSERT_NFS(w_write(&e.c, &f, 20, "Z", UNSTABLE, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERT_EQ(b.size, 21);

	/* errors: directory, symlink */
	walk_ok(&e, "d", &d, NULL);
	ASSERT_NFS(w_write(&e.c, &d, 0, "x", UNSTABLE, &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_symlink(&e.c, &e.root, "sl", "f", &r), NFS3_OK);
	sl = r.fh;
	ASSERT_NFS(w_write(&e.c, &sl, 0, "x", UNSTABLE, &r), NFS3ERR_INVAL);
	ASSERT_NFS(w_commit(&e.c, &d, &r), NFS3ERR_ISDIR);

	/* a restart: new verifier, same handles, same data */
	env_restart(&e);
	ASSERT_NFS(w_write(&e.c, &f, 0, "u", UNSTABLE, &r), NFS3_OK);
	ASSERTF(memcmp(r.verf, verf, 8) != 0, "write verifier unchanged across a restart");
	memcpy(verf, r.verf, 8);
	ASSERT_NFS(w_commit(&e.c, &f, &r), NFS3_OK);
	ASSERT(memcmp(r.verf, verf, 8) == 0);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK);
	ASSERT_EQ(b.fileid, a.fileid);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &sl, x, sizeof(x)), NFS3_OK);
	ASSERT_STREQ(x, "f");
	env_down(&e);
	return 0;
}

/* ---------- CREATE ---------- */

TEST_IMPL(create_modes_and_errors)
{
	struct env e;
	struct tl_fh d, f, n1;
	struct wres r;
	fattr3 a, b;
	sattr3 s;
	char name[300];
	struct stat st;

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	s = sattr_mode(0640);
	ASSERT_NFS(w_create(&e.c, &d, "n1", UNCHECKED, &s, NULL, &r), NFS3_OK);
	ASSERT(r.has_fh);
	ASSERT(r.obj.attributes_follow);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3REG);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.mode, 0640);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.size, 0);
	assert_wcc(&r.wcc, "CREATE");
	n1 = r.fh;
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "n1", &f, &a), NFS3_OK);
	ASSERT(same_fh(&f, &n1));
	/* the parent was copied up, the new file is in the upper layer */
	ASSERT(upper_exists(&e, "d/n1", &st) && S_ISREG(st.st_mode));
	ASSERT_EQ(st.st_uid, 0);

	ASSERT_NFS(w_create(&e.c, &d, "n1", GUARDED, &s, NULL, &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_create(&e.c, &d, "x", GUARDED, &s, NULL, &r), NFS3ERR_EXIST);
	/* UNCHECKED on an existing lower file with size 0 truncates it */
	s = sattr_none();
	s.size.set_it = 1;
	ASSERT_NFS(w_create(&e.c, &d, "x", UNCHECKED, &s, NULL, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "x", NULL, &b), NFS3_OK);
	ASSERT_EQ(b.size, 0);
	/* UNCHECKED on a directory */
	ASSERT_NFS(w_create(&e.c, &e.root, "e", UNCHECKED, NULL, NULL, &r), NFS3ERR_EXIST);

	/* EXCLUSIVE: a retransmission succeeds, another verifier is EXIST */
	ASSERT_NFS(w_create(&e.c, &d, "ex", EXCLUSIVE, NULL, "verf-one", &r), NFS3_OK);
	ASSERT(r.has_fh);
	f = r.fh;
	ASSERT_NFS(w_create(&e.c, &d, "ex", EXCLUSIVE, NULL, "verf-one", &r), NFS3_OK);
	ASSERT(r.has_fh && same_fh(&r.fh, &f));
	ASSERT_NFS(w_create(&e.c, &d, "ex", EXCLUSIVE, NULL, "verf-two", &r), NFS3ERR_EXIST);
	{
		/* a CREATE builds its file in work/ before it knows whether the
		 * name exists: none of those files may stay behind */
		char wk[PATH_MAX];

		tl_join(wk, sizeof(wk), e.t.work, "work");
		ASSERT_EQ(tl_count_entries(wk), 0);
	}
	/* the client then sets the real times */
	s = sattr_none();
	s.mtime.set_it = SET_TO_SERVER_TIME;
	s.atime.set_it = SET_TO_SERVER_TIME;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3_OK);

	/* errors */
	memset(name, 'n', 256);
	name[256] = 0;
	ASSERT_NFS(w_create(&e.c, &d, name, UNCHECKED, NULL, NULL, &r), NFS3ERR_NAMETOOLONG);
	walk_ok(&e, "f", &f, NULL);
	ASSERT_NFS(w_create(&e.c, &f, "in-a-file", UNCHECKED, NULL, NULL, &r), NFS3ERR_NOTDIR);
	ASSERT_NFS(w_create(&e.c, &d, "a/b", UNCHECKED, NULL, NULL, &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_create(&e.c, &d, ".", GUARDED, NULL, NULL, &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_create(&e.c, &d, "..", UNCHECKED, NULL, NULL, &r), NFS3ERR_EXIST);
	ASSERT(!upper_exists(&e, "d/a", NULL));
	env_down(&e);
	return 0;
}

/* ---------- MKDIR, SYMLINK, MKNOD ---------- */

TEST_IMPL(mkdir_symlink_mknod)
{
	struct env e;
	struct tl_fh d, nd, f, open;
	struct wres r;
	char buf[256];
	sattr3 s = sattr_mode(0750);
	struct stat st;

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	ASSERT_NFS(w_mkdir(&e.c, &d, "nd", &s, &r), NFS3_OK);
	assert_wcc(&r.wcc, "MKDIR");
	ASSERT(r.has_fh && r.obj.attributes_follow);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3DIR);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.mode, 0750);
	nd = r.fh;
	ASSERT_NFS(w_create(&e.c, &nd, "inside", GUARDED, NULL, NULL, &r), NFS3_OK);
	ASSERT_NFS(w_mkdir(&e.c, &d, "nd", &s, &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_mkdir(&e.c, &d, "x", &s, &r), NFS3ERR_EXIST);
	/* in a merged parent the new directory is opaque (docs/overlay.md, "Namespace changes") */
	ASSERT(upper_exists(&e, "d/nd", &st) && S_ISDIR(st.st_mode));

	ASSERT_NFS(w_symlink(&e.c, &d, "sl", "../f", &r), NFS3_OK);
	assert_wcc(&r.wcc, "SYMLINK");
	ASSERT(r.has_fh);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3LNK);
	ASSERT_NFS(tl_nfs_readlink(&e.c, &r.fh, buf, sizeof(buf)), NFS3_OK);
	ASSERT_STREQ(buf, "../f");
	ASSERT_NFS(w_symlink(&e.c, &d, "sl", "other", &r), NFS3ERR_EXIST);

	ASSERT_NFS(w_mknod(&e.c, &d, "fifo", NF3FIFO, 0, 0, &r), NFS3_OK);
	assert_wcc(&r.wcc, "MKNOD");
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3FIFO);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.mode, 0640);
	ASSERT_NFS(w_mknod(&e.c, &d, "sock", NF3SOCK, 0, 0, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3SOCK);
	ASSERT_NFS(w_mknod(&e.c, &d, "null", NF3CHR, 1, 3, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3CHR);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.rdev.specdata1, 1);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.rdev.specdata2, 3);
	ASSERT(upper_exists(&e, "d/null", &st) && S_ISCHR(st.st_mode));
	ASSERT_EQ(st.st_rdev, makedev(1, 3));
	ASSERT_NFS(w_mknod(&e.c, &d, "blk", NF3BLK, 7, 0, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.type, NF3BLK);
	ASSERT_NFS(w_mknod(&e.c, &d, "reg", NF3REG, 0, 0, &r), NFS3ERR_BADTYPE);
	ASSERT_NFS(w_mknod(&e.c, &d, "dir", NF3DIR, 0, 0, &r), NFS3ERR_BADTYPE);
	ASSERT_NFS(w_mknod(&e.c, &d, "lnk", NF3LNK, 0, 0, &r), NFS3ERR_BADTYPE);
	ASSERT(!upper_exists(&e, "d/reg", NULL));
	ASSERT_NFS(w_mknod(&e.c, &d, "fifo", NF3FIFO, 0, 0, &r), NFS3ERR_EXIST);

	/* devices only for root; FIFOs for anyone who may write the directory */
	walk_ok(&e, "open", &open, NULL);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_mknod(&e.c, &open, "null", NF3CHR, 1, 3, &r), NFS3ERR_PERM);
	ASSERT_NFS(w_mknod(&e.c, &open, "fifo", NF3FIFO, 0, 0, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1000);
	ASSERT(!upper_exists(&e, "open/null", NULL));
	walk_ok(&e, "f", &f, NULL);
	ASSERT_NFS(w_mkdir(&e.c, &f, "x", &s, &r), NFS3ERR_NOTDIR);
	env_down(&e);
	return 0;
}

/* ---------- REMOVE, RMDIR ---------- */

TEST_IMPL(remove_rmdir_whiteouts_opaque)
{
	struct env e;
	struct tl_fh d, x, e2, ld;
	struct wres r;
	struct tl_dirpage pg;
	uint8_t zero[8] = { 0 };
	char v[16];
	ssize_t n;

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "d/x", &x, NULL);
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3_OK);
	assert_wcc(&r.wcc, "REMOVE");
	ASSERTF(upper_is_whiteout(&e, "d/x"), "REMOVE of a lower file left no whiteout");
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "x", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &x, NULL), NFS3ERR_STALE);
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3ERR_NOENT);
	/* create over the whiteout, read it back, remove again */
	ASSERT_NFS(w_create(&e.c, &d, "x", GUARDED, NULL, NULL, &r), NFS3_OK);
	x = r.fh;
	ASSERT_NFS(w_write(&e.c, &x, 0, "new-x", FILE_SYNC, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "x", &x, NULL), NFS3_OK);
	read_is(&e, &x, "new-x");
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3_OK);
	ASSERT(upper_is_whiteout(&e, "d/x"));

	/* type errors and names */
	ASSERT_NFS(w_remove(&e.c, &e.root, "d", &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "f", &r), NFS3ERR_NOTDIR);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "d", &r), NFS3ERR_NOTEMPTY);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "nothing", &r), NFS3ERR_NOENT);
	ASSERT_NFS(w_rmdir(&e.c, &d, ".", &r), NFS3ERR_INVAL);
	walk_ok(&e, "f", &x, NULL);
	ASSERT_NFS(w_remove(&e.c, &x, "a", &r), NFS3ERR_NOTDIR);

	/* a merged directory emptied through NFS can go: whiteout, then MKDIR: opaque */
	ASSERT_NFS(w_remove(&e.c, &d, "y", &r), NFS3_OK);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "d", &r), NFS3_OK);
	assert_wcc(&r.wcc, "RMDIR");
	ASSERTF(upper_is_whiteout(&e, "d"), "RMDIR of a lower dir left no whiteout");
	ASSERT_NFS(tl_nfs_getattr(&e.c, &d, NULL), NFS3ERR_STALE);
	ASSERT_NFS(w_mkdir(&e.c, &e.root, "d", NULL, &r), NFS3_OK);
	d = r.fh;
	n = upper_xattr(&e, "d", "trusted.overlay.opaque", v, sizeof(v));
	ASSERTF(n == 1 && v[0] == 'y', "MKDIR over a whiteout: not opaque (%zd)", n);
	ASSERT_NFS(tl_nfs_readdir(&e.c, &d, 0, zero, 4096, &pg), NFS3_OK);
	ASSERT_EQ(pg.n, 2); /* "." and ".." only: the lower x and y stay hidden */
	tl_dirpage_free(&pg);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "y", NULL, NULL), NFS3ERR_NOENT);

	/* an empty lower dir, and a lower dir with a subdirectory */
	walk_ok(&e, "e", &e2, NULL);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "e", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &e2, NULL), NFS3ERR_STALE);
	walk_ok(&e, "ld", &ld, NULL);
	ASSERT_NFS(w_rmdir(&e.c, &ld, "sub", &r), NFS3ERR_NOTEMPTY);
	env_down(&e);
	return 0;
}

/* ---------- RENAME ---------- */

TEST_IMPL(rename_files_dirs_and_errors)
{
	struct env e;
	struct tl_fh d, f, g, ld, sub, deep, open, nd;
	struct wres r;
	fattr3 a, b;
	char v[PATH_MAX];
	ssize_t n;

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "f", &f, &a);
	walk_ok(&e, "g", &g, NULL);
	/* a lower file across directories: copy-up, whiteout at the old name */
	ASSERT_NFS(w_rename(&e.c, &e.root, "f", &d, "f-moved", &r), NFS3_OK);
	assert_wcc(&r.wcc, "RENAME from");
	assert_wcc(&r.wcc2, "RENAME to");
	ASSERT(upper_is_whiteout(&e, "f"));
	ASSERT(upper_exists(&e, "d/f-moved", NULL));
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &b), NFS3_OK); /* handle survives the rename */
	ASSERT_EQ(b.fileid, a.fileid);
	read_is(&e, &f, "lower-f");
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "f", NULL, NULL), NFS3ERR_NOENT);

	/* over an existing file: the target's handle goes stale */
	ASSERT_NFS(w_rename(&e.c, &d, "f-moved", &e.root, "g", &r), NFS3_OK);
	read_is(&e, &f, "lower-f");
	ASSERT_NFS(tl_nfs_getattr(&e.c, &g, NULL), NFS3ERR_STALE);
	/* a name onto itself, and onto another name of the same file */
	ASSERT_NFS(w_rename(&e.c, &e.root, "g", &e.root, "g", &r), NFS3_OK);
	read_is(&e, &f, "lower-f");

	/* a lower directory with content: no XDEV, a redirect, content follows */
	walk_ok(&e, "ld", &ld, NULL);
	walk_ok(&e, "ld/sub/deep", &deep, NULL);
	ASSERT_NFS(w_rename(&e.c, &e.root, "ld", &e.root, "ld2", &r), NFS3_OK);
	n = upper_xattr(&e, "ld2", "trusted.overlay.redirect", v, sizeof(v) - 1);
	ASSERTF(n > 0, "renamed lower dir has no redirect");
	ASSERT_NFS(tl_nfs_lookup(&e.c, &e.root, "ld", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "ld2/sub/deep", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &ld, NULL), NFS3_OK);
	read_is(&e, &deep, "deep");
	/* and into another directory */
	walk_ok(&e, "ld2/sub", &sub, NULL);
	ASSERT_NFS(w_rename(&e.c, &ld, "sub", &d, "sub-moved", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_walk(&e.c, &e.root, "d/sub-moved/deep", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &sub, NULL), NFS3_OK);
	read_is(&e, &deep, "deep");

	/* errors */
	ASSERT_NFS(w_mkdir(&e.c, &ld, "inner", NULL, &r), NFS3_OK);
	nd = r.fh;
	ASSERT_NFS(w_rename(&e.c, &e.root, "ld2", &nd, "loop", &r), NFS3ERR_INVAL);
	ASSERT_NFS(w_rename(&e.c, &e.root, "ld2", &ld, "self", &r), NFS3ERR_INVAL);
	ASSERT_NFS(w_rename(&e.c, &e.root, "nothing", &e.root, "x", &r), NFS3ERR_NOENT);
	ASSERT_NFS(w_rename(&e.c, &e.root, "g", &e.root, "d", &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_rename(&e.c, &e.root, "e", &e.root, "g", &r), NFS3ERR_NOTDIR);
	ASSERT_NFS(w_rename(&e.c, &e.root, "e", &e.root, "d", &r), NFS3ERR_NOTEMPTY);
	ASSERT_NFS(w_rename(&e.c, &e.root, ".", &e.root, "z", &r), NFS3ERR_INVAL);
	/* a directory onto an empty directory */
	walk_ok(&e, "open", &open, NULL);
	ASSERT_NFS(w_rename(&e.c, &e.root, "e", &e.root, "open", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &open, NULL), NFS3ERR_STALE);

	/* handles after a restart */
	env_restart(&e);
	read_is(&e, &f, "lower-f");
	read_is(&e, &deep, "deep");
	ASSERT_NFS(tl_nfs_getattr(&e.c, &ld, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &sub, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &g, NULL), NFS3ERR_STALE);
	env_down(&e);
	return 0;
}

/* ---------- LINK ---------- */

TEST_IMPL(link_lower_file_and_errors)
{
	struct env e;
	struct tl_fh f, d, h;
	struct wres r;
	fattr3 a;

	env_up(&e, true);
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "d", &d, NULL);
	ASSERT_NFS(w_link(&e.c, &f, &d, "hard", &r), NFS3_OK);
	assert_wcc(&r.wcc, "LINK");
	ASSERT(r.obj.attributes_follow);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.nlink, 2);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "hard", &h, &a), NFS3_OK);
	ASSERT_EQ(a.nlink, 2);
	ASSERT_NFS(w_write(&e.c, &h, 0, "HARD", FILE_SYNC, &r), NFS3_OK);
	read_is(&e, &f, "HARDr-f");
	ASSERT_NFS(w_link(&e.c, &f, &d, "hard", &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_link(&e.c, &d, &e.root, "dirlink", &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_link(&e.c, &f, &f, "x", &r), NFS3ERR_NOTDIR);
	env_down(&e);
	return 0;
}

/*
 * The other name keeps a hard-linked file when one name goes: the
 * origin's handle stays valid (without a lookup first, and after a
 * restart), and the index entry is not a whiteout (the kernel cleans an
 * index entry only at the last unlink).
 */
TEST_IMPL(link_survives_remove_of_other_name)
{
	struct env e;
	struct tl_fh f, d, h;
	struct wres r;
	fattr3 a;

	env_up(&e, true);
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "d", &d, NULL);
	ASSERT_NFS(w_link(&e.c, &f, &d, "hard", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "hard", &h, NULL), NFS3_OK);
	ASSERT_NFS(w_remove(&e.c, &e.root, "f", &r), NFS3_OK);
	/* no index entry (f's, and d's since its copy-up) is a whiteout while d/hard lives */
	{
		char idx[PATH_MAX];
		struct dirent *de;
		DIR *dp;
		int n = 0;

		tl_join(idx, sizeof(idx), e.t.work, "index");
		dp = opendir(idx);
		ASSERT(dp != NULL);
		while ((de = readdir(dp))) {
			char p[2 * PATH_MAX];
			struct stat st;

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", idx, de->d_name);
			ASSERT(lstat(p, &st) == 0);
			ASSERTF(!S_ISCHR(st.st_mode), "index/%s is a whiteout after REMOVE of one "
				"of two names", de->d_name);
			n++;
		}
		closedir(dp);
		ASSERT(n >= 1);
	}
	ASSERT_NFS(tl_nfs_getattr(&e.c, &h, &a), NFS3_OK);
	ASSERT_EQ(a.nlink, 1);
	env_restart(&e);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &h, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "hard", NULL, NULL), NFS3_OK);
	read_is(&e, &h, "lower-f");
	env_down(&e);
	return 0;
}

/* ---------- more rules ---------- */

static bool time_eq(nfstime3 a, nfstime3 b)
{
	return a.seconds == b.seconds && a.nseconds == b.nseconds;
}

/* Pre-op attributes are those of the object just before the change. */
TEST_IMPL(wcc_pre_is_before_the_change)
{
	struct env e;
	struct tl_fh d, f, d2;
	struct wres r;
	fattr3 before;
	const wcc_attr *pre;

	env_up(&e, true);
	walk_ok(&e, "d", &d, &before);
	tl_set_mtime(e.t.lower[0], "d", 1000000, 5);
	/* a change made on the disk shows within the attribute cache's 1 s */
	for (double t0 = tl_now();;) {
		ASSERT_NFS(tl_nfs_getattr(&e.c, &d, &before), NFS3_OK);
		if (before.mtime.seconds == 1000000 || tl_now() - t0 > 3.0)
			break;
		poll(NULL, 0, 20);
	}
	ASSERT_EQ(before.mtime.seconds, 1000000);
	ASSERT_NFS(w_create(&e.c, &d, "n", GUARDED, NULL, NULL, &r), NFS3_OK);
	pre = &r.wcc.before.pre_op_attr_u.attributes;
	ASSERT(r.wcc.before.attributes_follow);
	ASSERT(time_eq(pre->mtime, before.mtime));
	ASSERT(time_eq(pre->ctime, before.ctime));
	ASSERT_EQ(pre->size, before.size);
	ASSERT(r.wcc.after.attributes_follow);
	ASSERT(!time_eq(r.wcc.after.post_op_attr_u.attributes.mtime, before.mtime));

	ASSERT_NFS(tl_nfs_getattr(&e.c, &d, &before), NFS3_OK);
	ASSERT_NFS(w_remove(&e.c, &d, "n", &r), NFS3_OK);
	ASSERT(time_eq(r.wcc.before.pre_op_attr_u.attributes.ctime, before.ctime));

	walk_ok(&e, "g", &f, &before);
	ASSERT_NFS(w_write(&e.c, &f, 100, "tail", UNSTABLE, &r), NFS3_OK);
	ASSERT_EQ(r.wcc.before.pre_op_attr_u.attributes.size, 7);
	ASSERT(time_eq(r.wcc.before.pre_op_attr_u.attributes.mtime, before.mtime));
	ASSERT_EQ(r.wcc.after.post_op_attr_u.attributes.size, 104);

	/* RENAME: both directories */
	walk_ok(&e, "e", &d2, NULL);
	ASSERT_NFS(w_rename(&e.c, &d, "y", &d2, "y", &r), NFS3_OK);
	assert_wcc(&r.wcc, "RENAME from");
	assert_wcc(&r.wcc2, "RENAME to");
	ASSERT(r.wcc.after.post_op_attr_u.attributes.fileid !=
	       r.wcc2.after.post_op_attr_u.attributes.fileid);
	/* a failure still carries the directory's attributes */
	ASSERT_NFS(w_mkdir(&e.c, &d, "x", NULL, &r), NFS3ERR_EXIST);
	ASSERT(r.wcc.after.attributes_follow);
	env_down(&e);
	return 0;
}

TEST_IMPL(names_too_long_and_bad)
{
	struct env e;
	struct tl_fh d, f;
	struct wres r;
	char name[300];

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "f", &f, NULL);
	memset(name, 'q', 256);
	name[256] = 0;
	ASSERT_NFS(w_mkdir(&e.c, &d, name, NULL, &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_symlink(&e.c, &d, name, "t", &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_mknod(&e.c, &d, name, NF3FIFO, 0, 0, &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_remove(&e.c, &d, name, &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_rmdir(&e.c, &d, name, &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_rename(&e.c, &d, "x", &d, name, &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_rename(&e.c, &d, name, &d, "x2", &r), NFS3ERR_NAMETOOLONG);
	ASSERT_NFS(w_link(&e.c, &f, &d, name, &r), NFS3ERR_NAMETOOLONG);
	/* 255 is fine */
	name[255] = 0;
	ASSERT_NFS(w_create(&e.c, &d, name, GUARDED, NULL, NULL, &r), NFS3_OK);
	ASSERT_NFS(w_remove(&e.c, &d, name, &r), NFS3_OK);
	/* empty names and slashes */
	ASSERT_NFS(w_mkdir(&e.c, &d, "", NULL, &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_rename(&e.c, &d, "x", &d, "a/b", &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_symlink(&e.c, &d, "emptytarget", "", &r), NFS3ERR_INVAL);
	ASSERT(!upper_exists(&e, "d/emptytarget", NULL));
	ASSERT_NFS(w_link(&e.c, &f, &d, "..", &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_remove(&e.c, &d, "..", &r), NFS3ERR_ISDIR);
	ASSERT_NFS(w_rmdir(&e.c, &d, "..", &r), NFS3ERR_NOTEMPTY);
	env_down(&e);
	return 0;
}

TEST_IMPL(setgid_dirs_and_moving_dirs)
{
	struct env e;
	struct tl_fh open, sg, sub, e2, mine;
	struct wres r;
	sattr3 s;

	env_up(&e, true);
	walk_ok(&e, "open", &open, NULL);
	walk_ok(&e, "e", &e2, NULL);
	/* a setgid directory of group 50 */
	s = sattr_mode(02777);
	s.gid.set_it = 1;
	s.gid.set_gid3_u.gid = 50;
	ASSERT_NFS(w_mkdir(&e.c, &open, "sg", &s, &r), NFS3_OK);
	sg = r.fh;
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.gid, 50);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.mode, 02777);
	as(&e, 1000, 1000);
	/* new objects take the directory's group; directories keep setgid */
	ASSERT_NFS(w_mkdir(&e.c, &sg, "child", NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1000);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.gid, 50);
	ASSERTF(r.obj.post_op_attr_u.attributes.mode & 02000, "subdir lost setgid (0%o)",
		r.obj.post_op_attr_u.attributes.mode);
	/* mode_strip_sgid: g+sx asked by a non-member loses the setgid bit */
	s = sattr_mode(02755);
	ASSERT_NFS(w_create(&e.c, &sg, "exe", GUARDED, &s, NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.gid, 50);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.mode, 0755);

	/* a directory that moves to another parent needs write permission on itself */
	as(&e, 0, 0);
	s = sattr_mode(0755);
	ASSERT_NFS(w_mkdir(&e.c, &open, "rootdir", &s, &r), NFS3_OK);
	sub = r.fh;
	as(&e, 1000, 1000);
	ASSERT_NFS(w_mkdir(&e.c, &open, "mydir", NULL, &r), NFS3_OK);
	mine = r.fh;
	ASSERT_NFS(w_rename(&e.c, &open, "rootdir", &mine, "moved", &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_rename(&e.c, &open, "rootdir", &open, "renamed", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &sub, NULL), NFS3_OK);
	/* into a directory the caller may not write */
	ASSERT_NFS(w_rename(&e.c, &open, "mydir", &e2, "mydir", &r), NFS3ERR_ACCES);
	env_down(&e);
	return 0;
}

TEST_IMPL(setattr_nothing_copies_nothing)
{
	struct env e;
	struct tl_fh f, l;
	struct wres r;
	sattr3 s = sattr_none();
	nfstime3 bad = { 1, 1 };

	env_up(&e, true);
	tl_symlink(e.t.lower[0], "lnk", "f");
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "lnk", &l, NULL);
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3_OK);
	ASSERT_NFS(w_setattr(&e.c, &f, &s, &bad, &r), NFS3_OK);
	ASSERT(r.wcc.after.attributes_follow);
	/* a symlink's mode is ignored (knfsd), so nothing is left to do */
	ASSERT_NFS(w_setattr(&e.c, &l, &(sattr3){ .mode = { 1, { 0600 } } }, NULL, &r), NFS3_OK);
	ASSERT(!upper_exists(&e, "f", NULL));
	ASSERT(!upper_exists(&e, "lnk", NULL));
	env_down(&e);
	return 0;
}

TEST_IMPL(large_write_and_user_exclusive)
{
	struct env e;
	struct tl_fh open, n;
	struct wres r;
	char *big = malloc(1024 * 1024 + 1);
	char *back = malloc(1024 * 1024);
	uint32_t got, off = 0;
	bool eof = false;

	ASSERT(big && back);
	for (size_t i = 0; i < 1024 * 1024; i++)
		big[i] = (char)('a' + i % 26);
	big[1024 * 1024] = 0;
	env_up(&e, true);
	walk_ok(&e, "open", &open, NULL);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_create(&e.c, &open, "x", EXCLUSIVE, NULL, "12345678", &r), NFS3_OK);
	n = r.fh;
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1000);
	ASSERT_NFS(w_create(&e.c, &open, "x", EXCLUSIVE, NULL, "12345678", &r), NFS3_OK);
	ASSERT(same_fh(&r.fh, &n));
	ASSERT_NFS(w_create(&e.c, &open, "x", EXCLUSIVE, NULL, "87654321", &r), NFS3ERR_EXIST);
	ASSERT_NFS(w_write(&e.c, &n, 0, big, UNSTABLE, &r), NFS3_OK);
	ASSERT_EQ(r.count, 1024 * 1024);
	ASSERT_NFS(w_commit(&e.c, &n, &r), NFS3_OK);
	while (!eof && off < 1024 * 1024) {
		ASSERT_NFS(tl_nfs_read(&e.c, &n, off, 1024 * 1024 - off, back + off, &got, &eof),
			   NFS3_OK);
		ASSERT(got > 0 && got != UINT32_MAX);
		off += got;
	}
	ASSERT_EQ(off, 1024 * 1024);
	ASSERT(memcmp(back, big, 1024 * 1024) == 0);
	free(big);
	free(back);
	env_down(&e);
	return 0;
}

/* Renaming over a whiteout, and onto a lower-only name, hides the lower object. */
TEST_IMPL(rename_over_whiteout_and_lower_name)
{
	struct env e;
	struct tl_fh d, y;
	struct wres r;

	env_up(&e, true);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "d/y", &y, NULL);
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3_OK);
	ASSERT(upper_is_whiteout(&e, "d/x"));
	ASSERT_NFS(w_create(&e.c, &d, "n", GUARDED, NULL, NULL, &r), NFS3_OK);
	ASSERT_NFS(w_rename(&e.c, &d, "n", &d, "x", &r), NFS3_OK);
	ASSERT(upper_exists(&e, "d/x", NULL) && !upper_is_whiteout(&e, "d/x"));
	ASSERT(!upper_exists(&e, "d/n", NULL) || !upper_is_whiteout(&e, "d/n"));
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "n", NULL, NULL), NFS3ERR_NOENT);
	/* onto the lower-only y: y's handle goes stale, x's content shows there */
	ASSERT_NFS(w_rename(&e.c, &d, "x", &d, "y", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &y, NULL), NFS3ERR_STALE);
	ASSERT_NFS(tl_nfs_lookup(&e.c, &d, "y", &y, NULL), NFS3_OK);
	read_is(&e, &y, "");
	ASSERT(upper_is_whiteout(&e, "d/x"));
	env_down(&e);
	return 0;
}

/* ---------- two exports ---------- */

/* LINK and RENAME between two exports: XDEV, nothing changed. */
TEST_IMPL(xdev_between_exports)
{
	struct tl_tree t;
	struct tl_server srv;
	struct tl_client c;
	struct tl_fh ra, rb, f;
	struct wres r;
	char conf[PATH_MAX], text[8 * PATH_MAX], ua[PATH_MAX], ub[PATH_MAX], wa[PATH_MAX],
		wb[PATH_MAX];
	const char *extra[] = { "-c", conf, NULL };
	FILE *fp;

	tl_tree_new(&t, 2);
	tl_write(t.lower[0], "fa", "in a", 0644);
	tl_write(t.lower[1], "fb", "in b", 0644);
	tl_mkdir(t.root, "ua", 0755);
	tl_mkdir(t.root, "wa", 0755);
	tl_mkdir(t.root, "ub", 0755);
	tl_mkdir(t.root, "wb", 0755);
	tl_join(ua, sizeof(ua), t.root, "ua");
	tl_join(wa, sizeof(wa), t.root, "wa");
	tl_join(ub, sizeof(ub), t.root, "ub");
	tl_join(wb, sizeof(wb), t.root, "wb");
	snprintf(text, sizeof(text),
		 "[export a]\npath = /a\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		 "squash = none\n\n"
		 "[export b]\npath = /b\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		 "squash = none\n",
		 t.lower[0], ua, wa, t.lower[1], ub, wb);
	tl_join(conf, sizeof(conf), t.root, "ovlnfsd.conf");
	fp = fopen(conf, "w");
	ASSERT(fp != NULL);
	ASSERT(fputs(text, fp) >= 0);
	ASSERT(fclose(fp) == 0);
	tl_server_start(&srv, t.root, t.state, NULL, NULL, extra);
	tl_client_mount(&c, srv.port, "/a", &ra);
	ASSERT_NFS(tl_mnt(&c, "/b", &rb, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &ra, "fa", &f, NULL), NFS3_OK);
	ASSERT_NFS(w_link(&c, &f, &rb, "linked", &r), NFS3ERR_XDEV);
	ASSERT_NFS(w_rename(&c, &ra, "fa", &rb, "moved", &r), NFS3ERR_XDEV);
	ASSERT_NFS(tl_nfs_lookup(&c, &rb, "linked", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(&c, &rb, "moved", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(&c, &ra, "fa", NULL, NULL), NFS3_OK);
	/* inside one export both work */
	ASSERT_NFS(w_link(&c, &f, &ra, "linked", &r), NFS3_OK);
	ASSERT_NFS(w_rename(&c, &ra, "fa", &ra, "moved", &r), NFS3_OK);
	tl_client_close(&c);
	tl_server_stop(&srv);
	tl_tree_free(&t);
	return 0;
}

/* ---------- read-only export ---------- */

TEST_IMPL(rofs_without_upper)
{
	struct env e;
	struct tl_fh f, d;
	struct wres r;
	uint32_t g;

	env_up(&e, false);
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "d", &d, NULL);
	ASSERT_NFS(w_setattr(&e.c, &f, &(sattr3){ .mode = { 1, { 0600 } } }, NULL, &r),
		   NFS3ERR_ROFS);
	ASSERT(r.wcc.after.attributes_follow);
	ASSERT_NFS(w_write(&e.c, &f, 0, "x", UNSTABLE, &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_create(&e.c, &d, "n", UNCHECKED, NULL, NULL, &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_mkdir(&e.c, &d, "n", NULL, &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_symlink(&e.c, &d, "n", "t", &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_mknod(&e.c, &d, "n", NF3FIFO, 0, 0, &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_rmdir(&e.c, &e.root, "e", &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_rename(&e.c, &d, "x", &d, "z", &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_link(&e.c, &f, &d, "h", &r), NFS3ERR_ROFS);
	ASSERT_NFS(w_commit(&e.c, &f, &r), NFS3ERR_ROFS);
	/* a uid-1000 client gets ROFS too, before any permission check (knfsd) */
	as(&e, 1000, 1000);
	ASSERT_NFS(w_write(&e.c, &f, 0, "x", UNSTABLE, &r), NFS3ERR_ROFS);
	as(&e, 0, 0);
	ASSERT_NFS(tl_nfs_access(&e.c, &d, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE), 0);
	read_is(&e, &f, "lower-f");
	env_down(&e);
	return 0;
}

TEST_IMPL(access_on_writable_export)
{
	struct env e;
	struct tl_fh f, d, mine;
	uint32_t g;

	env_up(&e, true);
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "mine", &mine, NULL);
	ASSERT_NFS(tl_nfs_access(&e.c, &d, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE),
		  ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
	ASSERT_NFS(tl_nfs_access(&e.c, &f, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_MODIFY | ACCESS3_EXTEND), ACCESS3_MODIFY | ACCESS3_EXTEND);
	as(&e, 1000, 1000);
	ASSERT_NFS(tl_nfs_access(&e.c, &f, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_MODIFY | ACCESS3_EXTEND), 0);
	ASSERT_NFS(tl_nfs_access(&e.c, &d, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE), 0);
	ASSERT_NFS(tl_nfs_access(&e.c, &mine, 0x3f, &g), NFS3_OK);
	ASSERT_EQ(g & (ACCESS3_READ | ACCESS3_MODIFY), ACCESS3_READ | ACCESS3_MODIFY);
	env_down(&e);
	return 0;
}

/* ---------- the client's identity ---------- */

TEST_IMPL(perm_uid1000_denied_nothing_copied_up)
{
	struct env e;
	struct tl_fh f, ro, root_fh;
	struct wres r;
	sattr3 s;

	env_up(&e, true);
	walk_ok(&e, "f", &f, NULL);
	walk_ok(&e, "ro", &ro, NULL);
	root_fh = e.root;
	as(&e, 1000, 1000);
	ASSERT_NFS(w_write(&e.c, &f, 0, "x", FILE_SYNC, &r), NFS3ERR_ACCES);
	ASSERT(!upper_exists(&e, "f", NULL));
	ASSERT_NFS(w_create(&e.c, &ro, "n", UNCHECKED, NULL, NULL, &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_mkdir(&e.c, &ro, "n", NULL, &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_symlink(&e.c, &ro, "n", "t", &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_mknod(&e.c, &ro, "n", NF3FIFO, 0, 0, &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_remove(&e.c, &ro, "inner", &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_rename(&e.c, &ro, "inner", &ro, "z", &r), NFS3ERR_ACCES);
	ASSERT_NFS(w_link(&e.c, &f, &ro, "h", &r), NFS3ERR_PERM); /* protected_hardlinks */
	ASSERT_NFS(w_commit(&e.c, &f, &r), NFS3ERR_ACCES);
	/* an existing name: EXIST before the write permission (Linux's order) */
	ASSERT_NFS(w_mkdir(&e.c, &ro, "inner", NULL, &r), NFS3ERR_EXIST);
	ASSERTF(!upper_exists(&e, "ro", NULL), "a refused change copied the directory up");
	ASSERT(!upper_exists(&e, "f", NULL));
	/* SETATTR: chmod, chown, client times by a non-owner: PERM; size, server time: ACCES */
	ASSERT_NFS(w_setattr(&e.c, &f, &(sattr3){ .mode = { 1, { 0666 } } }, NULL, &r),
		   NFS3ERR_PERM);
	s = sattr_none();
	s.uid.set_it = 1;
	s.uid.set_uid3_u.uid = 1000;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3ERR_PERM);
	s = sattr_none();
	s.mtime.set_it = SET_TO_CLIENT_TIME;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3ERR_PERM);
	s = sattr_none();
	s.mtime.set_it = SET_TO_SERVER_TIME;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3ERR_ACCES);
	s = sattr_none();
	s.size.set_it = 1;
	ASSERT_NFS(w_setattr(&e.c, &f, &s, NULL, &r), NFS3ERR_ACCES);
	ASSERT(!upper_exists(&e, "f", NULL));
	/* the root directory 0755 0:0 */
	ASSERT_NFS(w_create(&e.c, &root_fh, "n", UNCHECKED, NULL, NULL, &r), NFS3ERR_ACCES);
	ASSERT(!upper_exists(&e, "n", NULL));
	env_down(&e);
	return 0;
}

TEST_IMPL(perm_owner_rules)
{
	struct env e;
	struct tl_fh mine, open, n, suid;
	struct wres r;
	sattr3 s;
	struct stat st;
	fattr3 a;

	env_up(&e, true);
	walk_ok(&e, "mine", &mine, NULL);
	walk_ok(&e, "open", &open, NULL);
	walk_ok(&e, "suid", &suid, NULL);
	as(&e, 1000, 1000);
	/* the owner may chmod, even to 0444, and still write (knfsd's owner override) */
	ASSERT_NFS(w_setattr(&e.c, &mine, &(sattr3){ .mode = { 1, { 0444 } } }, NULL, &r),
		   NFS3_OK);
	ASSERT_NFS(w_write(&e.c, &mine, 0, "MINE", FILE_SYNC, &r), NFS3_OK);
	ASSERT_NFS(w_commit(&e.c, &mine, &r), NFS3_OK);
	/* times to a client time, server time */
	s = sattr_none();
	s.mtime.set_it = SET_TO_CLIENT_TIME;
	s.mtime.set_mtime_u.mtime.seconds = 12345;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3_OK);
	s.mtime.set_it = SET_TO_SERVER_TIME;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3_OK);
	/* chown away: PERM; to itself: fine; chgrp to a group it is not in: PERM */
	s = sattr_none();
	s.uid.set_it = 1;
	s.uid.set_uid3_u.uid = 0;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3ERR_PERM);
	s.uid.set_uid3_u.uid = 1000;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3_OK);
	s = sattr_none();
	s.gid.set_it = 1;
	s.gid.set_gid3_u.gid = 0;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3ERR_PERM);
	/* chmod g+s on a file whose group the caller is not in: setgid dropped */
	as(&e, 0, 0);
	s = sattr_none();
	s.gid.set_it = 1;
	s.gid.set_gid3_u.gid = 50;
	ASSERT_NFS(w_setattr(&e.c, &mine, &s, NULL, &r), NFS3_OK);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_setattr(&e.c, &mine, &(sattr3){ .mode = { 1, { 02755 } } }, NULL, &r),
		   NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &mine, &a), NFS3_OK);
	ASSERT_EQ(a.mode, 0755);

	/* created objects belong to the caller; a non-root sattr uid/gid is ignored (knfsd) */
	s = sattr_mode(0644);
	s.uid.set_it = 1;
	s.uid.set_uid3_u.uid = 0;
	s.gid.set_it = 1;
	s.gid.set_gid3_u.gid = 0;
	ASSERT_NFS(w_create(&e.c, &open, "by1000", GUARDED, &s, NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1000);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.gid, 1000);
	ASSERT(upper_exists(&e, "open/by1000", &st));
	ASSERT_EQ(st.st_uid, 1000);
	ASSERT_EQ(st.st_gid, 1000);
	n = r.fh;
	ASSERT_NFS(w_write(&e.c, &n, 0, "data", UNSTABLE, &r), NFS3_OK);
	ASSERT_NFS(w_mkdir(&e.c, &open, "dir1000", NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1000);
	/* root may give a created object away */
	as(&e, 0, 0);
	ASSERT_NFS(w_create(&e.c, &open, "by-root", GUARDED, &s, NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 0);
	s.uid.set_uid3_u.uid = 1234;
	s.gid.set_gid3_u.gid = 4321;
	ASSERT_NFS(w_create(&e.c, &open, "given", GUARDED, &s, NULL, &r), NFS3_OK);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.uid, 1234);
	ASSERT_EQ(r.obj.post_op_attr_u.attributes.gid, 4321);

	/* a write by a non-root client drops setuid; root's chown drops it too */
	as(&e, 1000, 1000);
	ASSERT_NFS(w_write(&e.c, &suid, 0, "x", FILE_SYNC, &r), NFS3ERR_ACCES); /* 04755 root */
	as(&e, 0, 0);
	ASSERT_NFS(w_setattr(&e.c, &suid, &(sattr3){ .mode = { 1, { 04777 } } }, NULL, &r),
		   NFS3_OK);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_write(&e.c, &suid, 0, "x", FILE_SYNC, &r), NFS3_OK);
	ASSERT_EQ(r.wcc.after.post_op_attr_u.attributes.mode, 0777);
	as(&e, 0, 0);
	ASSERT_NFS(w_setattr(&e.c, &suid, &(sattr3){ .mode = { 1, { 04755 } } }, NULL, &r),
		   NFS3_OK);
	s = sattr_none();
	s.uid.set_it = 1;
	s.uid.set_uid3_u.uid = 1000;
	ASSERT_NFS(w_setattr(&e.c, &suid, &s, NULL, &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &suid, &a), NFS3_OK);
	ASSERT_EQ(a.uid, 1000);
	ASSERT_EQ(a.mode, 0755);
	env_down(&e);
	return 0;
}

TEST_IMPL(perm_sticky_directory)
{
	struct env e;
	struct tl_fh tmp, open, st;
	struct wres r;

	env_up(&e, true);
	walk_ok(&e, "tmp", &tmp, NULL);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_remove(&e.c, &tmp, "his", &r), NFS3ERR_PERM);
	ASSERT_NFS(w_rename(&e.c, &tmp, "his", &tmp, "stolen", &r), NFS3ERR_PERM);
	/* nor replace his by a rename of her own file */
	ASSERT_NFS(w_rename(&e.c, &tmp, "hers", &tmp, "his", &r), NFS3ERR_PERM);
	ASSERT(!upper_exists(&e, "tmp/his", NULL));
	ASSERT_NFS(w_rename(&e.c, &tmp, "hers", &tmp, "hers2", &r), NFS3_OK);
	ASSERT_NFS(w_create(&e.c, &tmp, "new", GUARDED, NULL, NULL, &r), NFS3_OK);
	ASSERT_NFS(w_remove(&e.c, &tmp, "new", &r), NFS3_OK);
	as(&e, 1001, 1001);
	ASSERT_NFS(w_remove(&e.c, &tmp, "hers2", &r), NFS3ERR_PERM);
	ASSERT_NFS(w_remove(&e.c, &tmp, "his", &r), NFS3_OK);
	ASSERT(upper_is_whiteout(&e, "tmp/his"));
	as(&e, 0, 0);
	ASSERT_NFS(w_remove(&e.c, &tmp, "hers2", &r), NFS3_OK);
	/* the directory's owner may remove anyone's entry */
	walk_ok(&e, "open", &open, NULL);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_mkdir(&e.c, &open, "st", &(sattr3){ .mode = { 1, { 01777 } } }, &r),
		   NFS3_OK);
	st = r.fh;
	as(&e, 1001, 1001);
	ASSERT_NFS(w_create(&e.c, &st, "f1001", GUARDED, NULL, NULL, &r), NFS3_OK);
	as(&e, 1002, 1002);
	ASSERT_NFS(w_remove(&e.c, &st, "f1001", &r), NFS3ERR_PERM);
	as(&e, 1000, 1000);
	ASSERT_NFS(w_remove(&e.c, &st, "f1001", &r), NFS3_OK);
	env_down(&e);
	return 0;
}

/* ---------- handles and the high-level API ---------- */

TEST_IMPL(handles_across_copyup_and_restart)
{
	struct env e;
	struct tl_fh f, n, d, x;
	struct wres r;
	fattr3 a0, a;

	env_up(&e, true);
	walk_ok(&e, "f", &f, &a0);
	walk_ok(&e, "d", &d, NULL);
	walk_ok(&e, "d/x", &x, NULL);
	ASSERT_NFS(w_write(&e.c, &f, 0, "COPY", FILE_SYNC, &r), NFS3_OK);
	ASSERT_NFS(w_create(&e.c, &d, "n", GUARDED, NULL, NULL, &r), NFS3_OK);
	n = r.fh;
	ASSERT_NFS(w_write(&e.c, &n, 0, "fresh", FILE_SYNC, &r), NFS3_OK);
	ASSERT_NFS(w_remove(&e.c, &d, "x", &r), NFS3_OK);
	env_restart(&e);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &f, &a), NFS3_OK);
	ASSERT_EQ(a.fileid, a0.fileid);
	read_is(&e, &f, "COPYr-f");
	read_is(&e, &n, "fresh");
	ASSERT_NFS(tl_nfs_getattr(&e.c, &x, NULL), NFS3ERR_STALE);
	ASSERT_NFS(w_write(&e.c, &x, 0, "z", UNSTABLE, &r), NFS3ERR_STALE);
	ASSERT_NFS(w_remove(&e.c, &d, "n", &r), NFS3_OK);
	ASSERT_NFS(tl_nfs_getattr(&e.c, &n, NULL), NFS3ERR_STALE);
	env_down(&e);
	return 0;
}

TEST_IMPL(highlevel_file_lifecycle)
{
	struct env e;
	struct nfs_context *nfs;
	struct nfs_url *u;
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 st;
	char url[256], buf[64];
	int n;

	env_up(&e, true);
	nfs = nfs_init_context();
	ASSERT(nfs != NULL);
	snprintf(url, sizeof(url), "nfs://127.0.0.1/?nfsport=%d&mountport=%d&version=3",
		 e.s.port, e.s.port);
	u = nfs_parse_url_dir(nfs, url);
	ASSERTF(u != NULL, "parse url: %s", nfs_get_error(nfs));
	ASSERTF(nfs_mount(nfs, u->server, u->path) == 0, "nfs_mount: %s", nfs_get_error(nfs));
	ASSERTF(nfs_mkdir(nfs, "/hl") == 0, "mkdir: %s", nfs_get_error(nfs));
	ASSERTF(nfs_creat(nfs, "/hl/file", 0640, &fh) == 0, "creat: %s", nfs_get_error(nfs));
	ASSERT(nfs_write(nfs, fh, 11, "hello world") == 11);
	ASSERT(nfs_fsync(nfs, fh) == 0);
	nfs_close(nfs, fh);
	ASSERT(nfs_rename(nfs, "/hl/file", "/hl/renamed") == 0);
	ASSERT(nfs_stat64(nfs, "/hl/renamed", &st) == 0);
	ASSERT_EQ(st.nfs_size, 11);
	ASSERT_EQ(st.nfs_mode & 07777, 0640);
	ASSERT(nfs_open(nfs, "/hl/renamed", O_RDONLY, &fh) == 0);
	n = nfs_read(nfs, fh, sizeof(buf), buf);
	nfs_close(nfs, fh);
	ASSERT_EQ(n, 11);
	ASSERT(memcmp(buf, "hello world", 11) == 0);
	ASSERT(nfs_truncate(nfs, "/f", 2) == 0);
	ASSERT(nfs_stat64(nfs, "/f", &st) == 0);
	ASSERT_EQ(st.nfs_size, 2);
	ASSERT(nfs_unlink(nfs, "/hl/renamed") == 0);
	ASSERT(nfs_rmdir(nfs, "/hl") == 0);
	ASSERT(nfs_rmdir(nfs, "/d") != 0); /* not empty */
	ASSERT(nfs_symlink(nfs, "f", "/slink") == 0);
	nfs_umount(nfs);
	nfs_destroy_url(u);
	nfs_destroy_context(nfs);
	ASSERT(!upper_exists(&e, "hl", NULL));
	ASSERT(upper_exists(&e, "slink", NULL));
	env_down(&e);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(setattr_mode_size_times_guard),
	TEST_ENTRY(write_stable_verf_restart),
	TEST_ENTRY(create_modes_and_errors),
	TEST_ENTRY(mkdir_symlink_mknod),
	TEST_ENTRY(remove_rmdir_whiteouts_opaque),
	TEST_ENTRY(rename_files_dirs_and_errors),
	TEST_ENTRY(link_lower_file_and_errors),
	TEST_ENTRY(link_survives_remove_of_other_name),
	TEST_ENTRY(rofs_without_upper),
	TEST_ENTRY(access_on_writable_export),
	TEST_ENTRY(perm_uid1000_denied_nothing_copied_up),
	TEST_ENTRY(perm_owner_rules),
	TEST_ENTRY(perm_sticky_directory),
	TEST_ENTRY(handles_across_copyup_and_restart),
	TEST_ENTRY(highlevel_file_lifecycle),
	TEST_ENTRY(wcc_pre_is_before_the_change),
	TEST_ENTRY(names_too_long_and_bad),
	TEST_ENTRY(setgid_dirs_and_moving_dirs),
	TEST_ENTRY(setattr_nothing_copies_nothing),
	TEST_ENTRY(large_write_and_user_exclusive),
	TEST_ENTRY(rename_over_whiteout_and_lower_name),
	TEST_ENTRY(xdev_between_exports),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
