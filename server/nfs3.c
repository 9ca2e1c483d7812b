/*
 * nfs3.c - the NFS version 3 program (RFC 1813): one short function per
 * procedure, each resolving its handles, asking the merged view
 * (overlay.h), mapping errors through errmap.c and encoding the RFC's
 * result with the rpcgen routines. READDIR and READDIRPLUS are encoded as
 * a stream while the directory is walked (rpcgen's list encoder recurses
 * once per entry); READ's payload leaves through the call's data buffer.
 *
 * Threads: NULL runs on the loop; so do GETATTR, ACCESS and LOOKUP when
 * the caches hold all they need (the *_cached variants: memory only, no
 * system call, else they decline and the call is queued); every other
 * procedure on a pool worker (they all touch the filesystem).
 * Never: frees its args (the dispatcher does), touches sockets or loop
 * objects, follows the client's identity into the kernel (permissions are
 * decided by perm.c against the merged attributes), or answers
 * NFS3ERR_NOTSUPP for a procedure.
 *
 * Mutating procedures resolve and check their handles and names, answer
 * NFS3ERR_ROFS on a read-only export, check the client's identity against
 * the merged attributes (perm.c, in Linux's order: lookup, then may_create
 * / may_delete / setattr rules) and only then ask the overlay's write
 * path, whose wcc data they return.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "nfs3.h"
#include "ovlnfsd/access.h"
#include "ovlnfsd/callrec.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/errmap.h"
#include "ovlnfsd/nfs3enc.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/perm.h"
#include "ovlnfsd/server.h"
#include "ovlnfsd/daemon.h" /* metrics counters */

/* rtmax, wtmax, READ's cap and the largest READDIR(PLUS) reply we build. */
#define NFS3_IO_MAX (1024u * 1024u)
#define NFS3_IO_MULT 4096u
#define NFS3_DTPREF (64u * 1024u)
/* Room for a READDIR(PLUS) reply's fixed part around the client's count. */
#define NFS3_DIR_SLACK 512u
#define NFS3_FATTR_XDR 84u
/* status + post_op_attr (with attributes) + symlink target + slack */
#define NFS3_READLINK_REPLY (4u + 4u + NFS3_FATTR_XDR + 4u + PATH_MAX + 64u)

/* The identity permission checks use: the export's squash rule (access.c). */
static void effective_cred(const struct onfs_call *c, struct onfs_export *ex,
			   struct onfs_cred *out)
{
	onfs_access_cred(c, ex, out);
}

static size_t xdr_pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* --- objects: a resolved handle, its export and its attributes --- */

struct nfs3_obj {
	struct onfs_export *ex;   /* not owned */
	struct onfs_node *n;      /* owned reference, or NULL */
	struct onfs_attr attr;
	bool have_attr;
};

static void obj_put(struct nfs3_obj *o)
{
	if (o->n)
		onfs_node_put(o->n);
	o->n = NULL;
}

/*
 * The call recorder (callrec.c), when on: one line for this call's object
 * o (name: a LOOKUP's name in it). A non-directory reached only through
 * its handle has no known path ("" is the root's): recorded as unresolved.
 */
static void record(const struct onfs_call *c, const struct nfs3_obj *o, const char *name,
		   int err, bool has_range, uint64_t offset, uint32_t count)
{
	const struct onfs_node *n = o->n;

	if (n && !*onfs_node_path(n) && !(o->have_attr && S_ISDIR(o->attr.mode)))
		n = NULL;
	onfs_callrec_put(c, o->ex, n, name, onfs_errmap_nfs3(err), has_range, offset, count);
}

/*
 * Handle -> export -> node -> attributes. A wrong length or version is
 * BADHANDLE; an unknown export, a failed MAC or a vanished object STALE.
 */
static int obj_get(struct onfs_call *c, const nfs_fh3 *fh, struct nfs3_obj *o)
{
	const uint8_t *data = (const uint8_t *)fh->data.data_val;
	size_t len = fh->data.data_len;
	uint16_t id;
	int err;

	memset(o, 0, sizeof(*o));
	if (len == 0 || len > ONFS_FH_MAX || !data) {
		err = -ONFS_EBADHANDLE;
		goto out;
	}
	err = onfs_fh_export_id(data, len, &id);
	if (err < 0)
		goto out;
	/* a plain export, or the caller's own per-client instance (instance.c) */
	o->ex = onfs_call_export(c, id, &err);
	if (!o->ex)
		goto out;
	err = onfs_node_from_fh(o->ex, data, len, &o->n);
	if (err < 0) {
		o->n = NULL;
		goto out;
	}
	/* a genuine handle (MAC checked) of an export this client may not use */
	err = onfs_access_check(c, o->ex);
	if (err < 0) {
		/* -EPERM: a `secure` export and an unprivileged source port */
		if (err == -EPERM)
			c->auth_deny = AUTH_TOOWEAK;
		obj_put(o);
		goto out;
	}
	err = onfs_getattr(o->ex, o->n, &o->attr);
	o->have_attr = err == 0;
out:
	/* these record themselves: the name looked up, the range read, the cookie */
	if (onfs_callrec_on && c->proc != NFSPROC3_LOOKUP && c->proc != NFSPROC3_READ &&
	    c->proc != NFSPROC3_READDIR && c->proc != NFSPROC3_READDIRPLUS)
		record(c, o, NULL, err, false, 0, 0);
	return err;
}

/* A child of a resolved directory, with its attributes. */
static int obj_lookup(const struct nfs3_obj *dir, const char *name, struct nfs3_obj *o)
{
	int err;

	memset(o, 0, sizeof(*o));
	o->ex = dir->ex;
	err = onfs_lookup(dir->ex, dir->n, name ? name : "", &o->n);
	if (err < 0) {
		o->n = NULL;
		goto out;
	}
	err = onfs_getattr(o->ex, o->n, &o->attr);
	o->have_attr = err == 0;
out:
	return err;
}

/* --- attribute encoding helpers --- */

static ftype3 mode_to_ftype3(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return NF3DIR;
	case S_IFBLK:
		return NF3BLK;
	case S_IFCHR:
		return NF3CHR;
	case S_IFLNK:
		return NF3LNK;
	case S_IFSOCK:
		return NF3SOCK;
	case S_IFIFO:
		return NF3FIFO;
	default:
		return NF3REG;
	}
}

static nfstime3 ts_to_nfstime3(const struct timespec *ts)
{
	nfstime3 t;

	t.seconds = (u_int)ts->tv_sec;
	t.nseconds = (u_int)ts->tv_nsec;
	return t;
}

static void fill_fattr3(const struct onfs_attr *a, fattr3 *f)
{
	f->type = mode_to_ftype3(a->mode);
	f->mode = a->mode & 07777;
	f->nlink = a->nlink;
	f->uid = a->uid;
	f->gid = a->gid;
	f->size = a->size;
	f->used = a->used;
	f->rdev.specdata1 = a->rdev_major;
	f->rdev.specdata2 = a->rdev_minor;
	f->fsid = a->fsid;
	f->fileid = a->fileid;
	f->atime = ts_to_nfstime3(&a->atime);
	f->mtime = ts_to_nfstime3(&a->mtime);
	f->ctime = ts_to_nfstime3(&a->ctime);
}

static void fill_post_op(const struct nfs3_obj *o, post_op_attr *p)
{
	p->attributes_follow = o->have_attr;
	if (o->have_attr)
		fill_fattr3(&o->attr, &p->post_op_attr_u.attributes);
}

/* Nothing was changed: no pre-op attributes, the ones read before as post-op. */
static void fill_wcc(const struct nfs3_obj *o, wcc_data *w)
{
	w->before.attributes_follow = FALSE;
	fill_post_op(o, &w->after);
}

/*
 * The wcc data of an object the overlay was asked to change: the pre-op
 * attributes it took under the object's lock, the post-op ones it read
 * after the change. When it took neither, it stopped before changing
 * anything and the attributes read before still hold.
 */
static void fill_wcc_ovl(const struct nfs3_obj *o, const struct onfs_wcc *ow, wcc_data *w)
{
	wcc_attr *pre = &w->before.pre_op_attr_u.attributes;

	if (!ow->have_pre && !ow->have_post) {
		fill_wcc(o, w);
		return;
	}
	w->before.attributes_follow = ow->have_pre;
	if (ow->have_pre) {
		pre->size = ow->pre_size;
		pre->mtime = ts_to_nfstime3(&ow->pre_mtime);
		pre->ctime = ts_to_nfstime3(&ow->pre_ctime);
	}
	w->after.attributes_follow = ow->have_post;
	if (ow->have_post)
		fill_fattr3(&ow->post, &w->after.post_op_attr_u.attributes);
}

/* The handle points into the node: valid while the reference is held. */
static void fill_fh(const struct onfs_node *n, nfs_fh3 *fh)
{
	const struct onfs_fh *f = onfs_node_fh(n);

	fh->data.data_len = f->len;
	fh->data.data_val = (char *)f->data;
}

/* --- checks shared by several procedures --- */

/* A name the RFC's dir ops accept (knfsd refuses the others while decoding). */
static int check_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || strchr(name, '/'))
		return -EACCES;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* The directory of a diropargs3: NOTDIR when the handle names something else. */
static int get_dir(struct onfs_call *c, const nfs_fh3 *fh, struct nfs3_obj *dir)
{
	int err = obj_get(c, fh, dir);

	if (err == 0 && !S_ISDIR(dir->attr.mode))
		err = -ENOTDIR;
	return err;
}

/* What READ and WRITE say about a non-regular file (knfsd's nfsd_mode_check). */
static int check_regular(const struct onfs_attr *a)
{
	if (S_ISREG(a->mode))
		return 0;
	return S_ISDIR(a->mode) ? -EISDIR : -EINVAL;
}

/* knfsd answers NFS3ERR_ROFS before it looks at any permission bit. */
static int check_writable(const struct nfs3_obj *o)
{
	return onfs_access_readonly(o->ex) ? -EROFS : 0;
}

static bool dot_or_dotdot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static bool same_object(const struct onfs_attr *a, const struct onfs_attr *b)
{
	return a->fileid == b->fileid && a->fsid == b->fsid &&
	       (a->mode & S_IFMT) == (b->mode & S_IFMT);
}

/*
 * Before a new name is made in dir, in Linux's order: search permission on
 * the directory, the lookup (an existing name, returned in old, is left to
 * the overlay's EEXIST or CREATE's rules: Linux answers EEXIST before it
 * asks for write permission), then write permission on the directory.
 */
static int check_create(const struct nfs3_obj *dir, const char *name,
			const struct onfs_cred *cred, struct nfs3_obj *old)
{
	int err;

	memset(old, 0, sizeof(*old));
	err = onfs_perm_check(&dir->attr, cred, ONFS_MAY_EXEC);
	/* root passes every check that could follow: spare the lookup */
	if (err < 0 || onfs_perm_is_root(cred))
		goto out;
	err = obj_lookup(dir, name, old);
	if (err == -ENOENT)
		err = onfs_perm_may_create(&dir->attr, cred);
out:
	return err;
}

/*
 * Before name leaves dir (REMOVE, RMDIR, RENAME's source): search
 * permission, the entry must exist (NOENT), then Linux's may_delete
 * (write permission on dir, the sticky rule). "." and ".." go straight to
 * the overlay, which answers them as rmdir(2)/unlink(2) do.
 */
static int check_delete(const struct nfs3_obj *dir, const char *name,
			const struct onfs_cred *cred, struct nfs3_obj *victim)
{
	int err;

	memset(victim, 0, sizeof(*victim));
	err = onfs_perm_check(&dir->attr, cred, ONFS_MAY_EXEC);
	if (err < 0 || dot_or_dotdot(name) || onfs_perm_is_root(cred))
		goto out;
	err = obj_lookup(dir, name, victim);
	if (err == 0 && !victim->have_attr)
		err = -ESTALE;
	if (err == 0)
		err = onfs_perm_may_delete(&dir->attr, &victim->attr, cred);
out:
	return err;
}

static void time_from3(time_how how, const nfstime3 *t, enum onfs_time_how *out_how,
		       struct timespec *out)
{
	*out_how = how == SET_TO_SERVER_TIME   ? ONFS_TIME_NOW
		   : how == SET_TO_CLIENT_TIME ? ONFS_TIME_SET
					       : ONFS_TIME_KEEP;
	if (*out_how == ONFS_TIME_SET) {
		out->tv_sec = t->seconds;
		out->tv_nsec = t->nseconds;
	}
}

/* sattr3 -> struct onfs_sattr; the mode keeps its permission bits only. */
static void sattr_from3(const sattr3 *s3, struct onfs_sattr *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->set_mode = s3->mode.set_it;
	if (sa->set_mode)
		sa->mode = s3->mode.set_mode3_u.mode & 07777;
	sa->set_uid = s3->uid.set_it;
	if (sa->set_uid)
		sa->uid = s3->uid.set_uid3_u.uid;
	sa->set_gid = s3->gid.set_it;
	if (sa->set_gid)
		sa->gid = s3->gid.set_gid3_u.gid;
	sa->set_size = s3->size.set_it;
	if (sa->set_size)
		sa->size = s3->size.set_size3_u.size;
	time_from3(s3->atime.set_it, &s3->atime.set_atime_u.atime, &sa->atime_how, &sa->atime);
	time_from3(s3->mtime.set_it, &s3->mtime.set_mtime_u.mtime, &sa->mtime_how, &sa->mtime);
}

/*
 * The initial attributes and the owner of an object cred creates in dir.
 * The object belongs to the caller. Its sattr's uid/gid apply for root
 * only: knfsd (nfsd_create_setattr) silently drops them for anyone else
 * ("Setting uid/gid works only for root. Irix appears to send along the
 * gid on create..."), so a non-root client can neither give an object
 * away nor fail because its client sent its own ids. Linux's
 * mode_strip_sgid applies to the mode.
 */
static void new_object_attrs(const struct nfs3_obj *dir, const struct onfs_cred *cred,
			     uint32_t type, struct onfs_sattr *sa, struct onfs_who *who)
{
	who->uid = cred->uid;
	who->gid = cred->gid;
	if (!onfs_perm_is_root(cred))
		sa->set_uid = sa->set_gid = false;
	if (sa->set_mode)
		sa->mode = onfs_perm_create_mode(&dir->attr, cred, type, sa->mode);
}

/* post_op_fh3 and post_op_attr of a created object (n may be NULL). */
static void fill_new(struct nfs3_obj *o, post_op_fh3 *fh, post_op_attr *attr)
{
	fh->handle_follows = FALSE;
	attr->attributes_follow = FALSE;
	if (!o->n)
		return;
	fh->handle_follows = TRUE;
	fill_fh(o->n, &fh->post_op_fh3_u.handle);
	o->have_attr = onfs_getattr(o->ex, o->n, &o->attr) == 0;
	fill_post_op(o, attr);
}

/* --- 0 NULL --- */

static bool nfs3_null(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

/* --- 1 GETATTR --- */

static bool nfs3_getattr(struct onfs_call *c, void *args, XDR *xdrs)
{
	GETATTR3args *a = args;
	GETATTR3res res;
	struct nfs3_obj o;
	bool ok;

	memset(&res, 0, sizeof(res));
	res.status = onfs_errmap_nfs3(obj_get(c, &a->object, &o));
	if (res.status == NFS3_OK)
		fill_fattr3(&o.attr, &res.GETATTR3res_u.resok.obj_attributes);
	ok = xdr_GETATTR3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/*
 * GETATTR and ACCESS on the loop thread from memory: the handle's node in
 * the node cache and its attributes fresh in the attribute cache (no
 * change made through the export since, read at most 1 s ago). Anything
 * else - not cached, a bad handle, a client this export refuses - goes to a
 * worker, which answers (and refills the caches) the usual way.
 */
static bool attr_cached(struct onfs_call *c, const nfs_fh3 *fh, struct onfs_export **exp,
			struct onfs_attr *at)
{
	const uint8_t *data = (const uint8_t *)fh->data.data_val;
	size_t len = fh->data.data_len;
	struct onfs_export *ex;
	struct onfs_node *n;
	uint16_t id;
	bool hit;

	if (len == 0 || len > ONFS_FH_MAX || !data || onfs_fh_export_id(data, len, &id) < 0)
		return false;
	/* recording: every call to a worker, which writes the record (callrec.c) */
	if (onfs_callrec_on)
		return false;
	/*
	 * A plain export, or the caller's own per-client instance when it is
	 * live (counted in until the call ends; anything that would wait - a
	 * dormant instance, a reset under way - goes to a worker).
	 */
	ex = onfs_call_export_cached(c, id);
	if (!ex || onfs_access_check(c, ex) < 0 || onfs_node_from_fh_cached(ex, data, len, &n) < 0)
		return false;
	hit = onfs_getattr_cached(ex, n, at);
	onfs_node_put(n);
	*exp = ex;
	return hit;
}

static bool nfs3_getattr_cached(struct onfs_call *c, void *args, XDR *xdrs)
{
	GETATTR3args *a = args;
	struct onfs_export *ex;
	struct onfs_attr at;
	GETATTR3res res;

	if (!attr_cached(c, &a->object, &ex, &at))
		return false;
	memset(&res, 0, sizeof(res));
	res.status = NFS3_OK;
	fill_fattr3(&at, &res.GETATTR3res_u.resok.obj_attributes);
	return xdr_GETATTR3res(xdrs, &res);
}

/* --- 2 SETATTR --- */

static bool sattr_empty(const struct onfs_sattr *sa)
{
	return !sa->set_mode && !sa->set_uid && !sa->set_gid && !sa->set_size &&
	       sa->atime_how == ONFS_TIME_KEEP && sa->mtime_how == ONFS_TIME_KEEP;
}

static bool nfs3_setattr(struct onfs_call *c, void *args, XDR *xdrs)
{
	SETATTR3args *a = args;
	SETATTR3res res;
	struct nfs3_obj o;
	struct onfs_cred cred;
	struct onfs_sattr sa;
	struct onfs_wcc wcc;
	struct timespec guard;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&wcc, 0, sizeof(wcc));
	sattr_from3(&a->new_attributes, &sa);
	err = obj_get(c, &a->object, &o);
	if (err == 0)
		err = check_writable(&o);
	/* knfsd's fh_verify(S_IFREG) for a size: ISDIR or INVAL first */
	if (err == 0 && sa.set_size)
		err = check_regular(&o.attr);
	if (err == 0) {
		effective_cred(c, o.ex, &cred);
		err = onfs_perm_setattr(&o.attr, &cred, &sa);
	}
	/* knfsd: nothing (left) to set is success, guard unchecked, no copy-up */
	if (err == 0 && sattr_empty(&sa))
		goto out_reply;
	if (err == 0) {
		guard.tv_sec = a->guard.sattrguard3_u.obj_ctime.seconds;
		guard.tv_nsec = a->guard.sattrguard3_u.obj_ctime.nseconds;
		err = onfs_setattr(o.ex, o.n, &sa, a->guard.check ? &guard : NULL, &wcc);
	}
out_reply:
	res.status = onfs_errmap_nfs3(err);
	/* resok and resfail are both just the wcc data */
	fill_wcc_ovl(&o, &wcc, &res.SETATTR3res_u.resok.obj_wcc);
	ok = xdr_SETATTR3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- 3 LOOKUP --- */

static bool nfs3_lookup(struct onfs_call *c, void *args, XDR *xdrs)
{
	LOOKUP3args *a = args;
	LOOKUP3res res;
	struct nfs3_obj dir, o;
	struct onfs_cred cred;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&o, 0, sizeof(o));
	err = get_dir(c, &a->what.dir, &dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = onfs_perm_check(&dir.attr, &cred, ONFS_MAY_EXEC);
	}
	if (err == 0)
		err = obj_lookup(&dir, a->what.name, &o);
	if (onfs_callrec_on)
		record(c, &dir, dir.n ? a->what.name : NULL, err, false, 0, 0);
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_fh(o.n, &res.LOOKUP3res_u.resok.object);
		fill_post_op(&o, &res.LOOKUP3res_u.resok.obj_attributes);
		fill_post_op(&dir, &res.LOOKUP3res_u.resok.dir_attributes);
	} else {
		fill_post_op(&dir, &res.LOOKUP3res_u.resfail.dir_attributes);
	}
	ok = xdr_LOOKUP3res(xdrs, &res);
	obj_put(&o);
	obj_put(&dir);
	return ok;
}

/*
 * LOOKUP on the loop thread from memory: the directory as attr_cached
 * finds it (node cache, fresh attributes, the client's access to the
 * export), the same search permission check as nfs3_lookup's, the name in
 * the lookup cache (dcache.c: no namespace change made through the export
 * since the worker's lookup, at most 0.9 s ago) and the child's node and
 * fresh attributes in the caches. The reply is the one nfs3_lookup would
 * build from the same state. "." and "..", names the lookup refuses, and
 * anything not cached go to a worker, which refills the caches.
 */
static bool nfs3_lookup_cached(struct onfs_call *c, void *args, XDR *xdrs)
{
	LOOKUP3args *a = args;
	const char *name = a->what.name;
	size_t len = name ? strlen(name) : 0;
	struct onfs_export *ex;
	struct onfs_attr dat, oat;
	struct onfs_node *n = NULL;
	struct onfs_cred cred;
	LOOKUP3res res;
	int err;
	bool ok;

	if (len == 0 || len > NAME_MAX || strchr(name, '/') || dot_or_dotdot(name) ||
	    !attr_cached(c, &a->what.dir, &ex, &dat) || !S_ISDIR(dat.mode))
		return false;
	effective_cred(c, ex, &cred);
	err = onfs_perm_check(&dat, &cred, ONFS_MAY_EXEC);
	if (err == 0) {
		err = onfs_lookup_cached(ex, (const uint8_t *)a->what.dir.data.data_val,
					 a->what.dir.data.data_len, name, &n);
		if (err == -EAGAIN)
			return false;
	}
	if (err == 0 && !onfs_getattr_cached(ex, n, &oat)) {
		onfs_node_put(n);
		return false;
	}
	memset(&res, 0, sizeof(res));
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_fh(n, &res.LOOKUP3res_u.resok.object);
		res.LOOKUP3res_u.resok.obj_attributes.attributes_follow = TRUE;
		fill_fattr3(&oat, &res.LOOKUP3res_u.resok.obj_attributes.post_op_attr_u.attributes);
		res.LOOKUP3res_u.resok.dir_attributes.attributes_follow = TRUE;
		fill_fattr3(&dat, &res.LOOKUP3res_u.resok.dir_attributes.post_op_attr_u.attributes);
	} else {
		res.LOOKUP3res_u.resfail.dir_attributes.attributes_follow = TRUE;
		fill_fattr3(&dat, &res.LOOKUP3res_u.resfail.dir_attributes.post_op_attr_u.attributes);
	}
	ok = xdr_LOOKUP3res(xdrs, &res);
	if (n)
		onfs_node_put(n);
	return ok;
}

/* --- 4 ACCESS --- */

static bool nfs3_access(struct onfs_call *c, void *args, XDR *xdrs)
{
	ACCESS3args *a = args;
	ACCESS3res res;
	struct nfs3_obj o;
	struct onfs_cred cred;
	bool ok;

	memset(&res, 0, sizeof(res));
	res.status = onfs_errmap_nfs3(obj_get(c, &a->object, &o));
	if (res.status == NFS3_OK) {
		effective_cred(c, o.ex, &cred);
		res.ACCESS3res_u.resok.access =
			onfs_perm_access(&o.attr, &cred, onfs_access_readonly(o.ex),
					 a->access);
	}
	/* resok and resfail both start with the post-op attributes */
	fill_post_op(&o, &res.ACCESS3res_u.resok.obj_attributes);
	ok = xdr_ACCESS3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* ACCESS from memory (see attr_cached): the same answer as nfs3_access's. */
static bool nfs3_access_cached(struct onfs_call *c, void *args, XDR *xdrs)
{
	ACCESS3args *a = args;
	ACCESS3res res;
	struct onfs_export *ex;
	struct onfs_attr at;
	struct onfs_cred cred;

	if (!attr_cached(c, &a->object, &ex, &at))
		return false;
	memset(&res, 0, sizeof(res));
	res.status = NFS3_OK;
	effective_cred(c, ex, &cred);
	res.ACCESS3res_u.resok.access =
		onfs_perm_access(&at, &cred, onfs_access_readonly(ex), a->access);
	res.ACCESS3res_u.resok.obj_attributes.attributes_follow = TRUE;
	fill_fattr3(&at, &res.ACCESS3res_u.resok.obj_attributes.post_op_attr_u.attributes);
	return xdr_ACCESS3res(xdrs, &res);
}

/* --- 5 READLINK --- */

static bool nfs3_readlink(struct onfs_call *c, void *args, XDR *xdrs)
{
	READLINK3args *a = args;
	READLINK3res res;
	struct nfs3_obj o;
	char target[PATH_MAX + 1];
	ssize_t len = 0;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	err = obj_get(c, &a->symlink, &o);
	if (err == 0 && !S_ISLNK(o.attr.mode))
		err = -EINVAL;
	if (err == 0) {
		len = onfs_readlink(o.ex, o.n, target, sizeof(target) - 1);
		err = len < 0 ? (int)len : 0;
	}
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		target[len] = '\0';
		res.READLINK3res_u.resok.data = target;
	}
	fill_post_op(&o, &res.READLINK3res_u.resok.symlink_attributes);
	ok = xdr_READLINK3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

static size_t nfs3_readlink_size(const void *args)
{
	(void)args;
	return NFS3_READLINK_REPLY;
}

/* --- 6 READ --- */

/*
 * The data leaves through c->data (no copy into the reply): encode
 * everything up to and including the opaque's length here, the transport
 * writes the bytes and their XDR padding.
 */
static bool nfs3_read(struct onfs_call *c, void *args, XDR *xdrs)
{
	READ3args *a = args;
	READ3res res;
	struct nfs3_obj o;
	struct onfs_cred cred;
	uint8_t none;
	void *buf = &none;
	size_t count = a->count < NFS3_IO_MAX ? a->count : NFS3_IO_MAX;
	ssize_t n = 0;
	bool eof = false;
	u_int len;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	err = obj_get(c, &a->file, &o);
	if (err == 0)
		err = check_regular(&o.attr);
	if (err == 0) {
		effective_cred(c, o.ex, &cred);
		err = onfs_perm_check(&o.attr, &cred, ONFS_MAY_READ | ONFS_MAY_OWNER_OVERRIDE |
							      ONFS_MAY_READ_IF_EXEC);
	}
	if (err == 0 && count > 0) {
		buf = onfs_call_data_alloc(c, count);
		if (!buf)
			err = -ENOMEM;
	}
	if (err == 0) {
		n = onfs_read(o.ex, o.n, a->offset, buf, count, &eof);
		err = n < 0 ? (int)n : 0;
	}
	if (onfs_callrec_on)
		record(c, &o, NULL, err, true, a->offset, a->count);
	res.status = onfs_errmap_nfs3(err);
	fill_post_op(&o, &res.READ3res_u.resok.file_attributes);
	if (res.status != NFS3_OK) {
		c->data = NULL;
		c->data_len = 0;
		ok = xdr_READ3res(xdrs, &res);
		goto out;
	}
	res.READ3res_u.resok.count = (count3)n;
	res.READ3res_u.resok.eof = eof;
	len = (u_int)n;
	ok = xdr_nfsstat3(xdrs, &res.status) &&
	     xdr_post_op_attr(xdrs, &res.READ3res_u.resok.file_attributes) &&
	     xdr_count3(xdrs, &res.READ3res_u.resok.count) &&
	     xdr_bool(xdrs, &res.READ3res_u.resok.eof) && xdr_u_int(xdrs, &len);
	if (ok && n > 0) {
		c->data = buf;
		c->data_len = (size_t)n;
		onfs_metrics_add(&onfs_metrics.bytes_read, (uint64_t)n);
	}
out:
	obj_put(&o);
	return ok;
}

/* --- 7 WRITE --- */

/*
 * Linux's file_remove_privs: a write by a caller without CAP_FSETID (not
 * root) drops setuid and executable-setgid. The server writes as the
 * export owner, so the kernel would not: the bits go here. wcc keeps its
 * pre-op attributes and gets the post-op ones of the last change.
 */
static void write_kill_priv(const struct nfs3_obj *o, const struct onfs_cred *cred,
			    struct onfs_wcc *wcc)
{
	struct onfs_sattr sa;
	struct onfs_wcc w2;

	memset(&sa, 0, sizeof(sa));
	memset(&w2, 0, sizeof(w2));
	if (!wcc->have_post || !onfs_perm_kill_priv(&wcc->post, cred, &sa.mode))
		return;
	sa.set_mode = true;
	if (onfs_setattr(o->ex, o->n, &sa, NULL, &w2) == 0 && w2.have_post)
		wcc->post = w2.post;
}

/*
 * WRITE's arguments without a copy of the payload: data_val points into
 * the call's record (c->rec, which lives until the call is freed, after
 * its args), where the memory stream holds it. xdr_bytes would allocate
 * (zeroed) and copy up to 1 MiB per WRITE on the loop thread: with the
 * socket's copy that was the largest cost of a WRITE (docs/benchmarks.md).
 * XDR_FREE frees the handle only; encoding is xdr_bytes' (tests, clients).
 */
static bool_t xdr_WRITE3args_inplace(XDR *xdrs, WRITE3args *a)
{
	u_int len;
	char *p;

	if (xdrs->x_op != XDR_DECODE) {
		if (xdrs->x_op == XDR_FREE) {
			a->data.data_val = NULL;
			a->data.data_len = 0;
		}
		return xdr_WRITE3args(xdrs, a);
	}
	if (!xdr_nfs_fh3(xdrs, &a->file) || !xdr_offset3(xdrs, &a->offset) ||
	    !xdr_count3(xdrs, &a->count) || !xdr_stable_how(xdrs, &a->stable) ||
	    !xdr_u_int(xdrs, &len) || len > NFS3_DATA_WIRE_MAX)
		return FALSE;
	/* the bytes and their padding, in place (NULL: not a memory stream) */
	p = (char *)xdr_inline(xdrs, (len + 3u) & ~3u);
	if (!p)
		return FALSE;
	a->data.data_val = p;
	a->data.data_len = len;
	return TRUE;
}

static bool nfs3_write(struct onfs_call *c, void *args, XDR *xdrs)
{
	WRITE3args *a = args;
	WRITE3res res;
	WRITE3resok *ok3 = &res.WRITE3res_u.resok;
	struct nfs3_obj o;
	struct onfs_cred cred;
	struct onfs_wcc wcc;
	/* knfsd writes DATA_SYNC and FILE_SYNC requests with RWF_SYNC and
	 * answers FILE_SYNC: what was done is then what is claimed */
	enum onfs_stable how = a->stable == UNSTABLE ? ONFS_UNSTABLE : ONFS_FILE_SYNC;
	ssize_t n = 0;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&wcc, 0, sizeof(wcc));
	err = obj_get(c, &a->file, &o);
	if (err == 0)
		err = check_regular(&o.attr);
	if (err == 0)
		err = check_writable(&o);
	if (err == 0) {
		effective_cred(c, o.ex, &cred);
		err = onfs_perm_check(&o.attr, &cred, ONFS_MAY_WRITE | ONFS_MAY_OWNER_OVERRIDE);
	}
	/* the payload must hold count bytes (knfsd refuses less) */
	if (err == 0 && a->count > a->data.data_len)
		err = -EINVAL;
	if (err == 0) {
		n = onfs_write(o.ex, o.n, a->offset, a->data.data_val, a->count, how, &wcc);
		err = n < 0 ? (int)n : 0;
	}
	if (err == 0)
		write_kill_priv(&o, &cred, &wcc);
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		onfs_metrics_add(&onfs_metrics.bytes_written, (uint64_t)n);
		ok3->count = (count3)n;
		ok3->committed = how == ONFS_UNSTABLE ? UNSTABLE : FILE_SYNC;
		onfs_write_verf(o.ex, (uint8_t *)ok3->verf);
	}
	/* resok starts with the wcc data, resfail is only that */
	fill_wcc_ovl(&o, &wcc, &ok3->file_wcc);
	ok = xdr_WRITE3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- 8 CREATE, 9 MKDIR, 10 SYMLINK, 11 MKNOD: a new name in a directory --- */

/* A directory operation's handle, then its name, then writability: knfsd's order. */
static int check_dirop(struct onfs_call *c, const diropargs3 *where, struct nfs3_obj *dir)
{
	int err = get_dir(c, &where->dir, dir);

	if (err == 0)
		err = check_name(where->name);
	if (err == 0)
		err = check_writable(dir);
	return err;
}

/*
 * CREATE: UNCHECKED and GUARDED with initial attributes, EXCLUSIVE with
 * the client's verifier (kept in the times by the overlay, so that a
 * retransmission succeeds). UNCHECKED on an existing file only applies a
 * size, which needs write permission on that file (knfsd's
 * nfsd_create_setattr -> nfsd_setattr).
 */
static bool nfs3_create(struct onfs_call *c, void *args, XDR *xdrs)
{
	CREATE3args *a = args;
	CREATE3res res;
	CREATE3resok *ok3 = &res.CREATE3res_u.resok;
	struct nfs3_obj dir, old, o;
	struct onfs_cred cred;
	struct onfs_sattr sa;
	struct onfs_who who;
	struct onfs_wcc wcc;
	enum onfs_create_how how;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&old, 0, sizeof(old));
	memset(&o, 0, sizeof(o));
	memset(&sa, 0, sizeof(sa));
	memset(&wcc, 0, sizeof(wcc));
	how = a->how.mode == EXCLUSIVE ? ONFS_CREATE_EXCLUSIVE
	      : a->how.mode == GUARDED ? ONFS_CREATE_GUARDED
				       : ONFS_CREATE_UNCHECKED;
	if (how != ONFS_CREATE_EXCLUSIVE)
		sattr_from3(&a->how.createhow3_u.obj_attributes, &sa);
	err = check_dirop(c, &a->where, &dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = check_create(&dir, a->where.name, &cred, &old);
	}
	if (err == 0 && old.n && how == ONFS_CREATE_UNCHECKED && sa.set_size &&
	    S_ISREG(old.attr.mode))
		err = onfs_perm_check(&old.attr, &cred, ONFS_MAY_WRITE | ONFS_MAY_OWNER_OVERRIDE);
	if (err == 0) {
		o.ex = dir.ex;
		new_object_attrs(&dir, &cred, S_IFREG, &sa, &who);
		err = onfs_create(dir.ex, dir.n, a->where.name, how, &sa,
				  (const uint8_t *)a->how.createhow3_u.verf, &who, &o.n, &wcc);
		if (err < 0)
			o.n = NULL;
	}
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_new(&o, &ok3->obj, &ok3->obj_attributes);
		fill_wcc_ovl(&dir, &wcc, &ok3->dir_wcc);
	} else {
		fill_wcc_ovl(&dir, &wcc, &res.CREATE3res_u.resfail.dir_wcc);
	}
	ok = xdr_CREATE3res(xdrs, &res);
	obj_put(&o);
	obj_put(&old);
	obj_put(&dir);
	return ok;
}

static bool nfs3_mkdir(struct onfs_call *c, void *args, XDR *xdrs)
{
	MKDIR3args *a = args;
	MKDIR3res res;
	MKDIR3resok *ok3 = &res.MKDIR3res_u.resok;
	struct nfs3_obj dir, old, o;
	struct onfs_cred cred;
	struct onfs_sattr sa;
	struct onfs_who who;
	struct onfs_wcc wcc;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&old, 0, sizeof(old));
	memset(&o, 0, sizeof(o));
	memset(&wcc, 0, sizeof(wcc));
	sattr_from3(&a->attributes, &sa);
	err = check_dirop(c, &a->where, &dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = check_create(&dir, a->where.name, &cred, &old);
	}
	if (err == 0) {
		o.ex = dir.ex;
		new_object_attrs(&dir, &cred, S_IFDIR, &sa, &who);
		err = onfs_mkdir(dir.ex, dir.n, a->where.name, &sa, &who, &o.n, &wcc);
		if (err < 0)
			o.n = NULL;
	}
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_new(&o, &ok3->obj, &ok3->obj_attributes);
		fill_wcc_ovl(&dir, &wcc, &ok3->dir_wcc);
	} else {
		fill_wcc_ovl(&dir, &wcc, &res.MKDIR3res_u.resfail.dir_wcc);
	}
	ok = xdr_MKDIR3res(xdrs, &res);
	obj_put(&o);
	obj_put(&old);
	obj_put(&dir);
	return ok;
}

static bool nfs3_symlink(struct onfs_call *c, void *args, XDR *xdrs)
{
	SYMLINK3args *a = args;
	SYMLINK3res res;
	SYMLINK3resok *ok3 = &res.SYMLINK3res_u.resok;
	struct nfs3_obj dir, old, o;
	struct onfs_cred cred;
	struct onfs_sattr sa;
	struct onfs_who who;
	struct onfs_wcc wcc;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&old, 0, sizeof(old));
	memset(&o, 0, sizeof(o));
	memset(&wcc, 0, sizeof(wcc));
	sattr_from3(&a->symlink.symlink_attributes, &sa);
	err = check_dirop(c, &a->where, &dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = check_create(&dir, a->where.name, &cred, &old);
	}
	if (err == 0) {
		o.ex = dir.ex;
		new_object_attrs(&dir, &cred, S_IFLNK, &sa, &who);
		err = onfs_symlink(dir.ex, dir.n, a->where.name,
				   a->symlink.symlink_data ? a->symlink.symlink_data : "", &sa,
				   &who, &o.n, &wcc);
		if (err < 0)
			o.n = NULL;
	}
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_new(&o, &ok3->obj, &ok3->obj_attributes);
		fill_wcc_ovl(&dir, &wcc, &ok3->dir_wcc);
	} else {
		fill_wcc_ovl(&dir, &wcc, &res.SYMLINK3res_u.resfail.dir_wcc);
	}
	ok = xdr_SYMLINK3res(xdrs, &res);
	obj_put(&o);
	obj_put(&old);
	obj_put(&dir);
	return ok;
}

/* ftype3 -> S_IFMT bits of the types MKNOD makes, 0 for the others. */
static uint32_t mknod_type(ftype3 t)
{
	switch (t) {
	case NF3CHR:
		return S_IFCHR;
	case NF3BLK:
		return S_IFBLK;
	case NF3SOCK:
		return S_IFSOCK;
	case NF3FIFO:
		return S_IFIFO;
	default:
		return 0;
	}
}

static bool nfs3_mknod(struct onfs_call *c, void *args, XDR *xdrs)
{
	MKNOD3args *a = args;
	MKNOD3res res;
	MKNOD3resok *ok3 = &res.MKNOD3res_u.resok;
	struct nfs3_obj dir, old, o;
	struct onfs_cred cred;
	struct onfs_sattr sa;
	struct onfs_who who;
	struct onfs_wcc wcc;
	uint32_t type = mknod_type(a->what.type), major = 0, minor = 0;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&old, 0, sizeof(old));
	memset(&o, 0, sizeof(o));
	memset(&sa, 0, sizeof(sa));
	memset(&wcc, 0, sizeof(wcc));
	if (type == S_IFCHR || type == S_IFBLK) {
		sattr_from3(&a->what.mknoddata3_u.device.dev_attributes, &sa);
		major = a->what.mknoddata3_u.device.spec.specdata1;
		minor = a->what.mknoddata3_u.device.spec.specdata2;
	} else if (type) {
		sattr_from3(&a->what.mknoddata3_u.pipe_attributes, &sa);
	}
	err = get_dir(c, &a->where.dir, &dir);
	if (err == 0)
		err = check_name(a->where.name);
	/* knfsd refuses a type MKNOD cannot make before it tries to create */
	if (err == 0 && !type)
		err = -ONFS_EBADTYPE;
	if (err == 0)
		err = check_writable(&dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = check_create(&dir, a->where.name, &cred, &old);
	}
	/* vfs_mknod: devices need CAP_MKNOD, after may_create */
	if (err == 0 && !old.n && (type == S_IFCHR || type == S_IFBLK) &&
	    !onfs_perm_is_root(&cred))
		err = -EPERM;
	if (err == 0) {
		o.ex = dir.ex;
		new_object_attrs(&dir, &cred, type, &sa, &who);
		err = onfs_mknod(dir.ex, dir.n, a->where.name, type, major, minor, &sa, &who,
				 &o.n, &wcc);
		if (err < 0)
			o.n = NULL;
	}
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		fill_new(&o, &ok3->obj, &ok3->obj_attributes);
		fill_wcc_ovl(&dir, &wcc, &ok3->dir_wcc);
	} else {
		fill_wcc_ovl(&dir, &wcc, &res.MKNOD3res_u.resfail.dir_wcc);
	}
	ok = xdr_MKNOD3res(xdrs, &res);
	obj_put(&o);
	obj_put(&old);
	obj_put(&dir);
	return ok;
}

/* --- 12 REMOVE, 13 RMDIR --- */

/* REMOVE and RMDIR: the permission checks, then the overlay's remove or rmdir. */
static int remove_common(struct onfs_call *c, const diropargs3 *what, bool rmdir,
			 struct nfs3_obj *dir, struct onfs_wcc *wcc)
{
	struct nfs3_obj victim;
	struct onfs_cred cred;
	int err;

	memset(&victim, 0, sizeof(victim));
	err = check_dirop(c, what, dir);
	if (err == 0) {
		effective_cred(c, dir->ex, &cred);
		err = check_delete(dir, what->name, &cred, &victim);
	}
	if (err == 0)
		err = rmdir ? onfs_rmdir(dir->ex, dir->n, what->name, wcc)
			    : onfs_remove(dir->ex, dir->n, what->name, wcc);
	obj_put(&victim);
	return err;
}

static bool nfs3_remove(struct onfs_call *c, void *args, XDR *xdrs)
{
	REMOVE3args *a = args;
	REMOVE3res res;
	struct nfs3_obj dir;
	struct onfs_wcc wcc;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&wcc, 0, sizeof(wcc));
	res.status = onfs_errmap_nfs3(remove_common(c, &a->object, false, &dir, &wcc));
	/* resok and resfail are both just the directory's wcc data */
	fill_wcc_ovl(&dir, &wcc, &res.REMOVE3res_u.resok.dir_wcc);
	ok = xdr_REMOVE3res(xdrs, &res);
	obj_put(&dir);
	return ok;
}

static bool nfs3_rmdir(struct onfs_call *c, void *args, XDR *xdrs)
{
	RMDIR3args *a = args;
	RMDIR3res res;
	struct nfs3_obj dir;
	struct onfs_wcc wcc;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&wcc, 0, sizeof(wcc));
	res.status = onfs_errmap_nfs3(remove_common(c, &a->object, true, &dir, &wcc));
	fill_wcc_ovl(&dir, &wcc, &res.RMDIR3res_u.resok.dir_wcc);
	ok = xdr_RMDIR3res(xdrs, &res);
	obj_put(&dir);
	return ok;
}

/* --- 14 RENAME --- */

/*
 * vfs_rename's checks: may_delete on the source, may_create (or
 * may_delete of what it replaces) on the target directory, and write
 * permission on a directory that moves to another parent (its ".."
 * changes). A rename of a name onto the same object is a no-op that needs
 * nothing more than the lookups; "." and ".." are the overlay's (EINVAL).
 */
static int check_rename(struct onfs_call *c, const struct nfs3_obj *from, const char *fname,
			const struct nfs3_obj *to, const char *tname)
{
	struct nfs3_obj src, dst;
	struct onfs_cred cred;
	int err = 0;

	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	if (dot_or_dotdot(fname) || dot_or_dotdot(tname))
		goto out;
	effective_cred(c, from->ex, &cred);
	if (onfs_perm_is_root(&cred))
		goto out; /* passes all of them: spare the lookups */
	err = onfs_perm_check(&from->attr, &cred, ONFS_MAY_EXEC);
	if (err == 0)
		err = obj_lookup(from, fname, &src);
	if (err == 0 && !src.have_attr)
		err = -ESTALE;
	if (err == 0)
		err = onfs_perm_check(&to->attr, &cred, ONFS_MAY_EXEC);
	if (err == 0) {
		err = obj_lookup(to, tname, &dst);
		if (err == 0 && !dst.have_attr)
			err = -ESTALE;
		if (err == -ENOENT) {
			obj_put(&dst);
			err = 0;
		}
	}
	if (err < 0 || (dst.n && same_object(&src.attr, &dst.attr)))
		goto out;
	err = onfs_perm_may_delete(&from->attr, &src.attr, &cred);
	if (err == 0)
		err = dst.n ? onfs_perm_may_delete(&to->attr, &dst.attr, &cred)
			    : onfs_perm_may_create(&to->attr, &cred);
	if (err == 0 && S_ISDIR(src.attr.mode) && !same_object(&from->attr, &to->attr))
		err = onfs_perm_check(&src.attr, &cred, ONFS_MAY_WRITE);
out:
	obj_put(&dst);
	obj_put(&src);
	return err;
}

static bool nfs3_rename(struct onfs_call *c, void *args, XDR *xdrs)
{
	RENAME3args *a = args;
	RENAME3res res;
	struct nfs3_obj from, to;
	struct onfs_wcc fwcc, twcc;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&to, 0, sizeof(to));
	memset(&fwcc, 0, sizeof(fwcc));
	memset(&twcc, 0, sizeof(twcc));
	err = get_dir(c, &a->from.dir, &from);
	if (err == 0)
		err = get_dir(c, &a->to.dir, &to);
	if (err == 0 && from.ex != to.ex)
		err = -EXDEV;
	if (err == 0)
		err = check_name(a->from.name);
	if (err == 0)
		err = check_name(a->to.name);
	if (err == 0)
		err = check_writable(&from);
	if (err == 0)
		err = check_rename(c, &from, a->from.name, &to, a->to.name);
	if (err == 0)
		err = onfs_rename(from.ex, from.n, a->from.name, to.n, a->to.name, &fwcc, &twcc);
	res.status = onfs_errmap_nfs3(err);
	/* resok and resfail: the same two wcc data */
	fill_wcc_ovl(&from, &fwcc, &res.RENAME3res_u.resok.fromdir_wcc);
	fill_wcc_ovl(&to, &twcc, &res.RENAME3res_u.resok.todir_wcc);
	ok = xdr_RENAME3res(xdrs, &res);
	obj_put(&to);
	obj_put(&from);
	return ok;
}

/* --- 15 LINK --- */

static bool nfs3_link(struct onfs_call *c, void *args, XDR *xdrs)
{
	LINK3args *a = args;
	LINK3res res;
	struct nfs3_obj file, dir, old;
	struct onfs_cred cred;
	struct onfs_wcc wcc;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&dir, 0, sizeof(dir));
	memset(&old, 0, sizeof(old));
	memset(&wcc, 0, sizeof(wcc));
	err = obj_get(c, &a->file, &file);
	if (err == 0)
		err = get_dir(c, &a->link.dir, &dir);
	if (err == 0 && file.ex != dir.ex)
		err = -EXDEV;
	if (err == 0)
		err = check_name(a->link.name);
	if (err == 0)
		err = check_writable(&dir);
	/* knfsd (nfsd_link): a directory is ISDIR before anything else */
	if (err == 0 && S_ISDIR(file.attr.mode))
		err = -EISDIR;
	/*
	 * linkat(2)'s order: search permission and the lookup (an existing
	 * name is the overlay's EEXIST), then may_linkat with
	 * fs.protected_hardlinks=1 (Debian's default; knfsd calls vfs_link
	 * without it, but the local oracle of issue 5 sees it and it is the
	 * safer rule for a shared tree), then may_create on the directory.
	 */
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = onfs_perm_check(&dir.attr, &cred, ONFS_MAY_EXEC);
	}
	if (err == 0 && !onfs_perm_is_root(&cred)) {
		err = obj_lookup(&dir, a->link.name, &old);
		if (err == -ENOENT)
			err = onfs_perm_may_link(&file.attr, &cred);
		if (err == 0 && !old.n)
			err = onfs_perm_may_create(&dir.attr, &cred);
	}
	if (err == 0)
		err = onfs_link(dir.ex, file.n, dir.n, a->link.name, &wcc);
	/* the link count changed, and file.n may name the lower copy: resolve again */
	if (err == 0) {
		obj_put(&file);
		if (obj_get(c, &a->file, &file) < 0)
			file.have_attr = false;
	}
	res.status = onfs_errmap_nfs3(err);
	/* resok and resfail: file attributes, then the directory's wcc data */
	fill_post_op(&file, &res.LINK3res_u.resok.file_attributes);
	fill_wcc_ovl(&dir, &wcc, &res.LINK3res_u.resok.linkdir_wcc);
	ok = xdr_LINK3res(xdrs, &res);
	obj_put(&old);
	obj_put(&dir);
	obj_put(&file);
	return ok;
}

/* --- 16 READDIR, 17 READDIRPLUS: streamed --- */

/*
 * Sizes follow knfsd (nfsd3_init_dirlist_pages): the client's count
 * (READDIR) or maxcount (READDIRPLUS), capped at 1 MiB, bounds the
 * entries plus the closing "no more entries" and eof words; the reply's
 * fixed head (status, directory attributes, verifier) is not counted.
 * READDIRPLUS's dircount is ignored, as knfsd and nfs-ganesha ignore it:
 * Linux sends maxcount / 8 there, which would waste most of the reply.
 */
struct dir_stream {
	struct onfs_export *ex;  /* not owned */
	struct onfs_node *dir;   /* not owned */
	XDR *xdrs;               /* positioned after the last entry */
	size_t left;             /* bytes the entries may still take */
	uint32_t nentries;
};

static size_t dir_budget(count3 count)
{
	size_t cap = count < NFS3_IO_MAX ? count : NFS3_IO_MAX;

	return cap > 8 ? cap - 8 : 0;
}

/* value_follows, fileid, name, cookie: the part READDIR and READDIRPLUS share. */
static size_t entry_head_size(const struct onfs_dirent *de)
{
	return 4 + 8 + 4 + xdr_pad4(de->namelen) + 8;
}

static bool encode_entry_head(XDR *xdrs, const struct onfs_dirent *de)
{
	bool_t more = TRUE;
	fileid3 fileid = de->fileid;
	cookie3 cookie = de->cookie;
	u_int len = (u_int)de->namelen;

	return xdr_bool(xdrs, &more) && xdr_fileid3(xdrs, &fileid) && xdr_u_int(xdrs, &len) &&
	       xdr_opaque(xdrs, (char *)de->name, len) && xdr_cookie3(xdrs, &cookie);
}

static int readdir_cb(void *ctx, const struct onfs_dirent *de)
{
	struct dir_stream *ds = ctx;
	size_t need = entry_head_size(de);
	uint8_t *p;

	if (need > ds->left)
		return 1;
	/* straight into the reply buffer (nfs3enc.c), else libtirpc's calls */
	p = (uint8_t *)xdr_inline(ds->xdrs, (u_int)need);
	if (p)
		onfs_nfs3_put_entry(p, de->fileid, de->name, de->namelen, de->cookie);
	else if (!encode_entry_head(ds->xdrs, de))
		return -ONFS_ESERVERFAULT;
	ds->left -= need;
	ds->nentries++;
	return 0;
}

/*
 * name_attributes and name_handle from a lookup of the name (also "." and
 * ".."); an entry that vanished since the listing goes without them.
 */
static int readdirplus_cb(void *ctx, const struct onfs_dirent *de)
{
	struct dir_stream *ds = ctx;
	struct nfs3_obj dir = { .ex = ds->ex, .n = ds->dir };
	struct nfs3_obj o;
	char name[NAME_MAX + 1];
	post_op_attr attr;
	post_op_fh3 fh;
	size_t need = entry_head_size(de);
	uint8_t *p;
	int ret = 0;

	memset(&o, 0, sizeof(o));
	memset(&attr, 0, sizeof(attr));
	memset(&fh, 0, sizeof(fh));
	if (de->plus) {
		/* looked up by onfs_readdirplus (borrowed node) */
		if (de->node) {
			if (de->attr) {
				attr.attributes_follow = TRUE;
				fill_fattr3(de->attr, &attr.post_op_attr_u.attributes);
			}
			fh.handle_follows = TRUE;
			fill_fh(de->node, &fh.post_op_fh3_u.handle);
		}
	} else if (de->namelen <= NAME_MAX) {
		memcpy(name, de->name, de->namelen);
		name[de->namelen] = '\0';
		if (obj_lookup(&dir, name, &o) == 0) {
			fill_post_op(&o, &attr);
			fh.handle_follows = TRUE;
			fill_fh(o.n, &fh.post_op_fh3_u.handle);
		}
	}
	need += 4 + (attr.attributes_follow ? NFS3_FATTR_XDR : 0);
	need += 4 + (fh.handle_follows ? 4 + xdr_pad4(fh.post_op_fh3_u.handle.data.data_len) : 0);
	if (need > ds->left) {
		ret = 1;
		goto out;
	}
	/* straight into the reply buffer (nfs3enc.c), else libtirpc's calls */
	p = (uint8_t *)xdr_inline(ds->xdrs, (u_int)need);
	if (p) {
		onfs_nfs3_put_entryplus(p, de->fileid, de->name, de->namelen, de->cookie,
					attr.attributes_follow ? &attr.post_op_attr_u.attributes : NULL,
					fh.handle_follows ? &fh.post_op_fh3_u.handle : NULL);
	} else if (!encode_entry_head(ds->xdrs, de) || !xdr_post_op_attr(ds->xdrs, &attr) ||
		   !xdr_post_op_fh3(ds->xdrs, &fh)) {
		ret = -ONFS_ESERVERFAULT;
		goto out;
	}
	ds->left -= need;
	ds->nentries++;
out:
	obj_put(&o);
	return ret;
}

/*
 * READDIR3res and READDIRPLUS3res share their layout up to the entries:
 * status, dir_attributes, cookieverf, entries..., FALSE, eof; and their
 * failure: status, dir_attributes. The head is encoded first with a zero
 * verifier that is rewritten once onfs_readdir has given the real one.
 */
static bool readdir_common(struct onfs_call *c, const nfs_fh3 *fh, cookie3 cookie,
			   const char *verf_in, count3 count, bool plus, XDR *xdrs)
{
	struct nfs3_obj dir;
	struct onfs_cred cred;
	struct dir_stream ds;
	post_op_attr dattr;
	nfsstat3 status;
	uint8_t verf[NFS3_COOKIEVERFSIZE] = { 0 };
	u_int start = xdr_getpos(xdrs), verf_pos = 0, end;
	bool_t no_more = FALSE, eof = FALSE;
	bool eof_seen = false;
	int err;
	bool ok;

	memset(&dattr, 0, sizeof(dattr));
	err = get_dir(c, fh, &dir);
	if (err == 0) {
		effective_cred(c, dir.ex, &cred);
		err = onfs_perm_check(&dir.attr, &cred, ONFS_MAY_READ);
	}
	fill_post_op(&dir, &dattr);
	if (err < 0)
		goto out_fail;

	status = NFS3_OK;
	if (!xdr_nfsstat3(xdrs, &status) || !xdr_post_op_attr(xdrs, &dattr)) {
		ok = false;
		goto out;
	}
	verf_pos = xdr_getpos(xdrs);
	if (!xdr_opaque(xdrs, (char *)verf, sizeof(verf))) {
		ok = false;
		goto out;
	}
	ds.ex = dir.ex;
	ds.dir = dir.n;
	ds.xdrs = xdrs;
	ds.left = dir_budget(count);
	ds.nentries = 0;
	err = (plus ? onfs_readdirplus : onfs_readdir)(dir.ex, dir.n, cookie,
						       (const uint8_t *)verf_in, verf,
						       plus ? readdirplus_cb : readdir_cb, &ds,
						       &eof_seen);
	if (err == 0 && ds.nentries == 0 && !eof_seen)
		err = -ONFS_ETOOSMALL;
	if (err < 0) {
		xdr_setpos(xdrs, start);
		goto out_fail;
	}
	eof = eof_seen;
	ok = xdr_bool(xdrs, &no_more) && xdr_bool(xdrs, &eof);
	if (!ok)
		goto out;
	end = xdr_getpos(xdrs);
	ok = xdr_setpos(xdrs, verf_pos) && xdr_opaque(xdrs, (char *)verf, sizeof(verf)) &&
	     xdr_setpos(xdrs, end);
	goto out;

out_fail:
	status = onfs_errmap_nfs3(err);
	ok = xdr_nfsstat3(xdrs, &status) && xdr_post_op_attr(xdrs, &dattr);
out:
	/* the range of a listing: the cookie it starts at and the client's count */
	if (onfs_callrec_on)
		record(c, &dir, NULL, err, true, cookie, count);
	obj_put(&dir);
	return ok;
}

static bool nfs3_readdir(struct onfs_call *c, void *args, XDR *xdrs)
{
	READDIR3args *a = args;

	return readdir_common(c, &a->dir, a->cookie, a->cookieverf, a->count, false, xdrs);
}

static size_t nfs3_readdir_size(const void *args)
{
	const READDIR3args *a = args;

	return (a->count < NFS3_IO_MAX ? a->count : NFS3_IO_MAX) + NFS3_DIR_SLACK;
}

static bool nfs3_readdirplus(struct onfs_call *c, void *args, XDR *xdrs)
{
	READDIRPLUS3args *a = args;

	return readdir_common(c, &a->dir, a->cookie, a->cookieverf, a->maxcount, true, xdrs);
}

static size_t nfs3_readdirplus_size(const void *args)
{
	const READDIRPLUS3args *a = args;

	return (a->maxcount < NFS3_IO_MAX ? a->maxcount : NFS3_IO_MAX) + NFS3_DIR_SLACK;
}

/* --- 18 FSSTAT --- */

static bool nfs3_fsstat(struct onfs_call *c, void *args, XDR *xdrs)
{
	FSSTAT3args *a = args;
	FSSTAT3res res;
	FSSTAT3resok *ok3 = &res.FSSTAT3res_u.resok;
	struct nfs3_obj o;
	struct statvfs st;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	err = obj_get(c, &a->fsroot, &o);
	if (err == 0)
		err = onfs_statvfs(o.ex, o.n, &st);
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK) {
		uint64_t bs = st.f_frsize ? st.f_frsize : st.f_bsize;

		ok3->tbytes = (uint64_t)st.f_blocks * bs;
		ok3->fbytes = (uint64_t)st.f_bfree * bs;
		ok3->abytes = (uint64_t)st.f_bavail * bs;
		ok3->tfiles = st.f_files;
		ok3->ffiles = st.f_ffree;
		ok3->afiles = st.f_favail;
		ok3->invarsec = 0; /* the layers can change under us at any time */
	}
	fill_post_op(&o, &ok3->obj_attributes);
	ok = xdr_FSSTAT3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- 19 FSINFO --- */

static bool nfs3_fsinfo(struct onfs_call *c, void *args, XDR *xdrs)
{
	FSINFO3args *a = args;
	FSINFO3res res;
	FSINFO3resok *ok3 = &res.FSINFO3res_u.resok;
	struct nfs3_obj o;
	bool ok;

	memset(&res, 0, sizeof(res));
	res.status = onfs_errmap_nfs3(obj_get(c, &a->fsroot, &o));
	if (res.status == NFS3_OK) {
		ok3->rtmax = NFS3_IO_MAX;
		ok3->rtpref = NFS3_IO_MAX;
		ok3->rtmult = NFS3_IO_MULT;
		ok3->wtmax = NFS3_IO_MAX;
		ok3->wtpref = NFS3_IO_MAX;
		ok3->wtmult = NFS3_IO_MULT;
		ok3->dtpref = NFS3_DTPREF;
		ok3->maxfilesize = (uint64_t)INT64_MAX;
		ok3->time_delta.seconds = 0;
		ok3->time_delta.nseconds = 1;
		ok3->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
	}
	fill_post_op(&o, &ok3->obj_attributes);
	ok = xdr_FSINFO3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- 20 PATHCONF --- */

static bool nfs3_pathconf(struct onfs_call *c, void *args, XDR *xdrs)
{
	PATHCONF3args *a = args;
	PATHCONF3res res;
	PATHCONF3resok *ok3 = &res.PATHCONF3res_u.resok;
	struct nfs3_obj o;
	bool ok;

	memset(&res, 0, sizeof(res));
	res.status = onfs_errmap_nfs3(obj_get(c, &a->object, &o));
	if (res.status == NFS3_OK) {
		/* knfsd's default "at least" value; the layers may allow more */
		ok3->linkmax = 255;
		ok3->name_max = NAME_MAX;
		ok3->no_trunc = TRUE;
		ok3->chown_restricted = TRUE;
		ok3->case_insensitive = FALSE;
		ok3->case_preserving = TRUE;
	}
	fill_post_op(&o, &ok3->obj_attributes);
	ok = xdr_PATHCONF3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- 21 COMMIT --- */

static bool nfs3_commit(struct onfs_call *c, void *args, XDR *xdrs)
{
	COMMIT3args *a = args;
	COMMIT3res res;
	struct nfs3_obj o;
	struct onfs_cred cred;
	struct onfs_wcc wcc;
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	memset(&wcc, 0, sizeof(wcc));
	err = obj_get(c, &a->file, &o);
	if (err == 0)
		err = check_regular(&o.attr);
	if (err == 0)
		err = check_writable(&o);
	/* knfsd: nfsd_file_acquire(NFSD_MAY_WRITE), which adds OWNER_OVERRIDE */
	if (err == 0) {
		effective_cred(c, o.ex, &cred);
		err = onfs_perm_check(&o.attr, &cred, ONFS_MAY_WRITE | ONFS_MAY_OWNER_OVERRIDE);
	}
	if (err == 0)
		err = onfs_commit(o.ex, o.n, &wcc);
	res.status = onfs_errmap_nfs3(err);
	if (res.status == NFS3_OK)
		onfs_write_verf(o.ex, (uint8_t *)res.COMMIT3res_u.resok.verf);
	fill_wcc_ovl(&o, &wcc, &res.COMMIT3res_u.resok.file_wcc);
	ok = xdr_COMMIT3res(xdrs, &res);
	obj_put(&o);
	return ok;
}

/* --- the table --- */

#define NFS3_PROC(nm, fn, argt, size_fn)                                       \
	{ .name = nm, .xdr_args = (xdrproc_t)xdr_##argt, .args_size = sizeof(argt), \
	  .run = fn, .reply_size = size_fn, .on_loop = false, .auth_none_ok = false }

static const struct onfs_proc nfs3_procs[] = {
	[NFSPROC3_NULL] = { .name = "NULL", .xdr_args = NULL, .args_size = 0,
			    .run = nfs3_null, .reply_size = NULL, .on_loop = true,
			    .auth_none_ok = true },
	[NFSPROC3_GETATTR] = { .name = "GETATTR", .xdr_args = (xdrproc_t)xdr_GETATTR3args,
			       .args_size = sizeof(GETATTR3args), .run = nfs3_getattr,
			       .run_cached = nfs3_getattr_cached },
	[NFSPROC3_SETATTR] = NFS3_PROC("SETATTR", nfs3_setattr, SETATTR3args, NULL),
	[NFSPROC3_LOOKUP] = { .name = "LOOKUP", .xdr_args = (xdrproc_t)xdr_LOOKUP3args,
			      .args_size = sizeof(LOOKUP3args), .run = nfs3_lookup,
			      .run_cached = nfs3_lookup_cached },
	[NFSPROC3_ACCESS] = { .name = "ACCESS", .xdr_args = (xdrproc_t)xdr_ACCESS3args,
			      .args_size = sizeof(ACCESS3args), .run = nfs3_access,
			      .run_cached = nfs3_access_cached },
	[NFSPROC3_READLINK] = NFS3_PROC("READLINK", nfs3_readlink, READLINK3args,
					nfs3_readlink_size),
	[NFSPROC3_READ] = NFS3_PROC("READ", nfs3_read, READ3args, NULL),
	[NFSPROC3_WRITE] = { .name = "WRITE", .xdr_args = (xdrproc_t)xdr_WRITE3args_inplace,
			     .args_size = sizeof(WRITE3args), .run = nfs3_write },
	[NFSPROC3_CREATE] = NFS3_PROC("CREATE", nfs3_create, CREATE3args, NULL),
	[NFSPROC3_MKDIR] = NFS3_PROC("MKDIR", nfs3_mkdir, MKDIR3args, NULL),
	[NFSPROC3_SYMLINK] = NFS3_PROC("SYMLINK", nfs3_symlink, SYMLINK3args, NULL),
	[NFSPROC3_MKNOD] = NFS3_PROC("MKNOD", nfs3_mknod, MKNOD3args, NULL),
	[NFSPROC3_REMOVE] = NFS3_PROC("REMOVE", nfs3_remove, REMOVE3args, NULL),
	[NFSPROC3_RMDIR] = NFS3_PROC("RMDIR", nfs3_rmdir, RMDIR3args, NULL),
	[NFSPROC3_RENAME] = NFS3_PROC("RENAME", nfs3_rename, RENAME3args, NULL),
	[NFSPROC3_LINK] = NFS3_PROC("LINK", nfs3_link, LINK3args, NULL),
	[NFSPROC3_READDIR] = NFS3_PROC("READDIR", nfs3_readdir, READDIR3args, nfs3_readdir_size),
	[NFSPROC3_READDIRPLUS] = NFS3_PROC("READDIRPLUS", nfs3_readdirplus, READDIRPLUS3args,
					   nfs3_readdirplus_size),
	[NFSPROC3_FSSTAT] = NFS3_PROC("FSSTAT", nfs3_fsstat, FSSTAT3args, NULL),
	[NFSPROC3_FSINFO] = NFS3_PROC("FSINFO", nfs3_fsinfo, FSINFO3args, NULL),
	[NFSPROC3_PATHCONF] = NFS3_PROC("PATHCONF", nfs3_pathconf, PATHCONF3args, NULL),
	[NFSPROC3_COMMIT] = NFS3_PROC("COMMIT", nfs3_commit, COMMIT3args, NULL),
};

const struct onfs_program onfs_nfs3_program = {
	.name = "nfs",
	.prog = NFS_PROGRAM,
	.vers = NFS_V3,
	.procs = nfs3_procs,
	.nprocs = ONFS_ARRAY_SIZE(nfs3_procs),
};
