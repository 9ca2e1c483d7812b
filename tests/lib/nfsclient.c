/*
 * nfsclient.c - synchronous libnfs raw-API calls for the tests (see
 * nfsclient.h). Each call queues one request, then polls the context's
 * socket until the callback ran or a deadline passed; the callback copies
 * the result out before libnfs frees it.
 *
 * Runs in the test process. Includes libnfs headers only (no rpcgen).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nfsclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

/* Generous: ASan builds and a 100k-entry directory on a busy CI machine. */
#define CALL_TIMEOUT_S 60.0

static _Thread_local char last_err[512]; /* per client thread */

struct pending {
	bool done;
	int result;               /* status, or -1 */
	char err[256];
	/* Copies the decoded reply out; returns the status. NULL: status only. */
	int (*copy)(void *data, void *out);
	void *out;
};

static void generic_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct pending *p = priv;

	(void)rpc;
	p->done = true;
	if (status == RPC_STATUS_SUCCESS) {
		if (p->copy)
			p->result = p->copy(data, p->out);
		else
			p->result = data ? (int)*(uint32_t *)data : -1;
		return;
	}
	p->result = -1;
	snprintf(p->err, sizeof(p->err), "%s",
		 status == RPC_STATUS_ERROR && data ? (const char *)data
		 : status == RPC_STATUS_CANCEL ? "cancelled"
		 : status == RPC_STATUS_TIMEOUT ? "rpc timeout" : "rpc failure");
}

static int wait_for(struct tl_client *c, struct pending *p, int queued)
{
	double deadline = tl_now() + CALL_TIMEOUT_S;

	if (queued != 0) {
		snprintf(c->err, sizeof(c->err), "could not queue the call: %s",
			 rpc_get_error(c->rpc));
		goto out_err;
	}
	while (!p->done) {
		struct pollfd pfd = { .fd = rpc_get_fd(c->rpc),
				      .events = (short)rpc_which_events(c->rpc) };
		int r;

		if (pfd.fd < 0) {
			snprintf(c->err, sizeof(c->err), "not connected");
			goto out_err;
		}
		r = poll(&pfd, 1, 100);
		if (r < 0 && errno != EINTR) {
			snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
			goto out_err;
		}
		if (rpc_service(c->rpc, r > 0 ? pfd.revents : 0) < 0 && !p->done) {
			snprintf(c->err, sizeof(c->err), "rpc_service: %s",
				 rpc_get_error(c->rpc));
			goto out_err;
		}
		if (!p->done && tl_now() > deadline) {
			snprintf(c->err, sizeof(c->err), "no reply within %.0f s",
				 CALL_TIMEOUT_S);
			goto out_err;
		}
	}
	if (p->result < 0) {
		snprintf(c->err, sizeof(c->err), "%s", p->err);
		snprintf(last_err, sizeof(last_err), "%s", p->err);
	}
	return p->result;
out_err:
	snprintf(last_err, sizeof(last_err), "%s", c->err);
	if (queued == 0 && !p->done) {
		/*
		 * The call is still queued in libnfs with p (on the caller's
		 * stack) as its callback data: cancel it now, while p lives
		 * (destroying the context calls back with CANCEL), and go on
		 * with an unconnected context, on which every later call fails
		 * cleanly instead of writing into a dead stack frame.
		 */
		rpc_destroy_context(c->rpc);
		c->rpc = rpc_init_context();
		ASSERT(c->rpc != NULL);
	}
	return -1;
}

void tl_client_connect(struct tl_client *c, int port)
{
	struct pending p = { 0 };

	memset(c, 0, sizeof(*c));
	c->port = port;
	c->rpc = rpc_init_context();
	ASSERT(c->rpc != NULL);
	ASSERTF(wait_for(c, &p,
			 rpc_connect_port_async(c->rpc, "127.0.0.1", port, NFS_PROGRAM, NFS_V3,
						generic_cb, &p)) >= -1 &&
			p.done && p.err[0] == 0,
		"connect to 127.0.0.1:%d: %s%s", port, c->err, p.err);
}

void tl_client_close(struct tl_client *c)
{
	if (c->rpc)
		rpc_destroy_context(c->rpc);
	c->rpc = NULL;
}

void tl_client_set_ids(struct tl_client *c, int uid, int gid)
{
	rpc_set_uid(c->rpc, uid);
	rpc_set_gid(c->rpc, gid);
}

static void to_nfs(nfs_fh3 *n, const struct tl_fh *fh)
{
	n->data.data_len = fh->len;
	n->data.data_val = (char *)fh->data;
}

static void from_nfs(struct tl_fh *fh, const nfs_fh3 *n)
{
	memset(fh, 0, sizeof(*fh));
	fh->len = n->data.data_len <= sizeof(fh->data) ? n->data.data_len : sizeof(fh->data);
	memcpy(fh->data, n->data.data_val, fh->len);
}

/* ---------- NFS ---------- */

/* NULL-like procedures have no result body: a reply at all is success. */
static int copy_null_status(void *data, void *out)
{
	(void)data;
	(void)out;
	return 0;
}

int tl_nfs_null(struct tl_client *c)
{
	struct pending p = { .copy = copy_null_status };

	return wait_for(c, &p, rpc_nfs3_null_async(c->rpc, generic_cb, &p));
}

static int copy_getattr(void *data, void *out)
{
	GETATTR3res *res = data;

	if (res->status == NFS3_OK && out)
		*(fattr3 *)out = res->GETATTR3res_u.resok.obj_attributes;
	return res->status;
}

int tl_nfs_getattr(struct tl_client *c, const struct tl_fh *fh, fattr3 *attr)
{
	struct pending p = { .copy = copy_getattr, .out = attr };
	GETATTR3args a;

	to_nfs(&a.object, fh);
	return wait_for(c, &p, rpc_nfs3_getattr_async(c->rpc, generic_cb, &a, &p));
}

struct lookup_out {
	struct tl_fh *fh;
	fattr3 *attr;
};

static int copy_lookup(void *data, void *out)
{
	LOOKUP3res *res = data;
	struct lookup_out *o = out;

	if (res->status == NFS3_OK) {
		if (o->fh)
			from_nfs(o->fh, &res->LOOKUP3res_u.resok.object);
		if (o->attr) {
			memset(o->attr, 0, sizeof(*o->attr));
			if (res->LOOKUP3res_u.resok.obj_attributes.attributes_follow)
				*o->attr = res->LOOKUP3res_u.resok.obj_attributes.post_op_attr_u
						   .attributes;
		}
	}
	return res->status;
}

int tl_nfs_lookup(struct tl_client *c, const struct tl_fh *dir, const char *name,
		  struct tl_fh *out, fattr3 *attr)
{
	struct lookup_out o = { out, attr };
	struct pending p = { .copy = copy_lookup, .out = &o };
	LOOKUP3args a;

	to_nfs(&a.what.dir, dir);
	a.what.name = (char *)name;
	return wait_for(c, &p, rpc_nfs3_lookup_async(c->rpc, generic_cb, &a, &p));
}

static int copy_access(void *data, void *out)
{
	ACCESS3res *res = data;

	if (res->status == NFS3_OK && out)
		*(uint32_t *)out = res->ACCESS3res_u.resok.access;
	return res->status;
}

int tl_nfs_access(struct tl_client *c, const struct tl_fh *fh, uint32_t want,
		  uint32_t *granted)
{
	struct pending p = { .copy = copy_access, .out = granted };
	ACCESS3args a;

	to_nfs(&a.object, fh);
	a.access = want;
	return wait_for(c, &p, rpc_nfs3_access_async(c->rpc, generic_cb, &a, &p));
}

struct strbuf {
	char *buf;
	size_t len;
};

static int copy_readlink(void *data, void *out)
{
	READLINK3res *res = data;
	struct strbuf *b = out;

	if (res->status == NFS3_OK && b->len > 0)
		snprintf(b->buf, b->len, "%s",
			 res->READLINK3res_u.resok.data ? res->READLINK3res_u.resok.data : "");
	return res->status;
}

int tl_nfs_readlink(struct tl_client *c, const struct tl_fh *fh, char *buf, size_t len)
{
	struct strbuf b = { buf, len };
	struct pending p = { .copy = copy_readlink, .out = &b };
	READLINK3args a;

	if (len)
		buf[0] = 0;
	to_nfs(&a.symlink, fh);
	return wait_for(c, &p, rpc_nfs3_readlink_async(c->rpc, generic_cb, &a, &p));
}

struct read_out {
	void *buf;
	uint32_t cap;
	uint32_t *got;
	bool *eof;
};

static int copy_read(void *data, void *out)
{
	READ3res *res = data;
	struct read_out *o = out;

	if (res->status == NFS3_OK) {
		uint32_t n = res->READ3res_u.resok.data.data_len;
		if (n > o->cap)
			n = o->cap; /* the test sees count != data length below */
		memcpy(o->buf, res->READ3res_u.resok.data.data_val, n);
		*o->got = res->READ3res_u.resok.count;
		if (res->READ3res_u.resok.count != res->READ3res_u.resok.data.data_len)
			*o->got = UINT32_MAX; /* count and data disagree: flag it */
		*o->eof = res->READ3res_u.resok.eof != 0;
	}
	return res->status;
}

int tl_nfs_read(struct tl_client *c, const struct tl_fh *fh, uint64_t off, uint32_t count,
		void *buf, uint32_t *got, bool *eof)
{
	struct read_out o = { buf, count, got, eof };
	struct pending p = { .copy = copy_read, .out = &o };
	READ3args a;

	*got = 0;
	*eof = false;
	to_nfs(&a.file, fh);
	a.offset = off;
	a.count = count;
	return wait_for(c, &p, rpc_nfs3_read_async(c->rpc, generic_cb, &a, &p));
}

static void page_add(struct tl_dirpage *pg, const char *name, uint64_t fileid,
		     uint64_t cookie)
{
	struct tl_dirent *e;

	if ((pg->n & (pg->n - 1)) == 0 || pg->n == 0) {
		size_t cap = pg->n ? pg->n * 2 : 16;
		struct tl_dirent *ne = realloc(pg->e, cap * sizeof(*ne));
		ASSERT(ne != NULL);
		pg->e = ne;
	}
	e = &pg->e[pg->n++];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name ? name : "");
	ASSERT(e->name != NULL);
	e->fileid = fileid;
	e->cookie = cookie;
}

static int copy_readdir(void *data, void *out)
{
	READDIR3res *res = data;
	struct tl_dirpage *pg = out;

	if (res->status != NFS3_OK)
		return res->status;
	memcpy(pg->verf, res->READDIR3res_u.resok.cookieverf, 8);
	pg->eof = res->READDIR3res_u.resok.reply.eof != 0;
	for (entry3 *p = res->READDIR3res_u.resok.reply.entries; p;) {
		entry3 e;
		memcpy(&e, p, sizeof(e)); /* possibly misaligned: see copy_export */
		page_add(pg, e.name, e.fileid, e.cookie);
		p = e.nextentry;
	}
	return res->status;
}

int tl_nfs_readdir(struct tl_client *c, const struct tl_fh *dir, uint64_t cookie,
		   const uint8_t verf[8], uint32_t count, struct tl_dirpage *out)
{
	struct pending p = { .copy = copy_readdir, .out = out };
	READDIR3args a;

	memset(out, 0, sizeof(*out));
	to_nfs(&a.dir, dir);
	a.cookie = cookie;
	memcpy(a.cookieverf, verf, 8);
	a.count = count;
	return wait_for(c, &p, rpc_nfs3_readdir_async(c->rpc, generic_cb, &a, &p));
}

static int copy_readdirplus(void *data, void *out)
{
	READDIRPLUS3res *res = data;
	struct tl_dirpage *pg = out;

	if (res->status != NFS3_OK)
		return res->status;
	memcpy(pg->verf, res->READDIRPLUS3res_u.resok.cookieverf, 8);
	pg->eof = res->READDIRPLUS3res_u.resok.reply.eof != 0;
	for (entryplus3 *p = res->READDIRPLUS3res_u.resok.reply.entries; p;) {
		struct tl_dirent *d;
		entryplus3 e;

		memcpy(&e, p, sizeof(e)); /* possibly misaligned: see copy_export */
		page_add(pg, e.name, e.fileid, e.cookie);
		d = &pg->e[pg->n - 1];
		if (e.name_attributes.attributes_follow) {
			d->has_attr = true;
			d->attr = e.name_attributes.post_op_attr_u.attributes;
		}
		if (e.name_handle.handle_follows) {
			d->has_fh = true;
			from_nfs(&d->fh, &e.name_handle.post_op_fh3_u.handle);
		}
		p = e.nextentry;
	}
	return res->status;
}

int tl_nfs_readdirplus(struct tl_client *c, const struct tl_fh *dir, uint64_t cookie,
		       const uint8_t verf[8], uint32_t dircount, uint32_t maxcount,
		       struct tl_dirpage *out)
{
	struct pending p = { .copy = copy_readdirplus, .out = out };
	READDIRPLUS3args a;

	memset(out, 0, sizeof(*out));
	to_nfs(&a.dir, dir);
	a.cookie = cookie;
	memcpy(a.cookieverf, verf, 8);
	a.dircount = dircount;
	a.maxcount = maxcount;
	return wait_for(c, &p, rpc_nfs3_readdirplus_async(c->rpc, generic_cb, &a, &p));
}

void tl_dirpage_free(struct tl_dirpage *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		free(pg->e[i].name);
	free(pg->e);
	memset(pg, 0, sizeof(*pg));
}

static int copy_fsstat(void *data, void *out)
{
	FSSTAT3res *res = data;

	if (res->status == NFS3_OK)
		*(FSSTAT3resok *)out = res->FSSTAT3res_u.resok;
	return res->status;
}

int tl_nfs_fsstat(struct tl_client *c, const struct tl_fh *fh, FSSTAT3resok *out)
{
	struct pending p = { .copy = copy_fsstat, .out = out };
	FSSTAT3args a;

	memset(out, 0, sizeof(*out));
	to_nfs(&a.fsroot, fh);
	return wait_for(c, &p, rpc_nfs3_fsstat_async(c->rpc, generic_cb, &a, &p));
}

static int copy_fsinfo(void *data, void *out)
{
	FSINFO3res *res = data;

	if (res->status == NFS3_OK)
		*(FSINFO3resok *)out = res->FSINFO3res_u.resok;
	return res->status;
}

int tl_nfs_fsinfo(struct tl_client *c, const struct tl_fh *fh, FSINFO3resok *out)
{
	struct pending p = { .copy = copy_fsinfo, .out = out };
	FSINFO3args a;

	memset(out, 0, sizeof(*out));
	to_nfs(&a.fsroot, fh);
	return wait_for(c, &p, rpc_nfs3_fsinfo_async(c->rpc, generic_cb, &a, &p));
}

static int copy_pathconf(void *data, void *out)
{
	PATHCONF3res *res = data;

	if (res->status == NFS3_OK)
		*(PATHCONF3resok *)out = res->PATHCONF3res_u.resok;
	return res->status;
}

int tl_nfs_pathconf(struct tl_client *c, const struct tl_fh *fh, PATHCONF3resok *out)
{
	struct pending p = { .copy = copy_pathconf, .out = out };
	PATHCONF3args a;

	memset(out, 0, sizeof(*out));
	to_nfs(&a.object, fh);
	return wait_for(c, &p, rpc_nfs3_pathconf_async(c->rpc, generic_cb, &a, &p));
}

/* ---------- mutating procedures: status only ---------- */

int tl_nfs_setattr_mode(struct tl_client *c, const struct tl_fh *fh, uint32_t mode)
{
	struct pending p = { 0 };
	SETATTR3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.object, fh);
	a.new_attributes.mode.set_it = 1;
	a.new_attributes.mode.set_mode3_u.mode = mode;
	return wait_for(c, &p, rpc_nfs3_setattr_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_write(struct tl_client *c, const struct tl_fh *fh, uint64_t off,
		 const void *data, uint32_t len)
{
	struct pending p = { 0 };
	WRITE3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.file, fh);
	a.offset = off;
	a.count = len;
	a.stable = FILE_SYNC;
	a.data.data_len = len;
	a.data.data_val = (char *)data;
	return wait_for(c, &p, rpc_nfs3_write_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_create(struct tl_client *c, const struct tl_fh *dir, const char *name)
{
	struct pending p = { 0 };
	CREATE3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.how.mode = UNCHECKED;
	a.how.createhow3_u.obj_attributes.mode.set_it = 1;
	a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
	return wait_for(c, &p, rpc_nfs3_create_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_mkdir(struct tl_client *c, const struct tl_fh *dir, const char *name)
{
	struct pending p = { 0 };
	MKDIR3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.attributes.mode.set_it = 1;
	a.attributes.mode.set_mode3_u.mode = 0755;
	return wait_for(c, &p, rpc_nfs3_mkdir_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_symlink(struct tl_client *c, const struct tl_fh *dir, const char *name,
		   const char *target)
{
	struct pending p = { 0 };
	SYMLINK3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.symlink.symlink_data = (char *)target;
	return wait_for(c, &p, rpc_nfs3_symlink_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_mknod_fifo(struct tl_client *c, const struct tl_fh *dir, const char *name)
{
	struct pending p = { 0 };
	MKNOD3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.where.dir, dir);
	a.where.name = (char *)name;
	a.what.type = NF3FIFO;
	return wait_for(c, &p, rpc_nfs3_mknod_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_remove(struct tl_client *c, const struct tl_fh *dir, const char *name)
{
	struct pending p = { 0 };
	REMOVE3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.object.dir, dir);
	a.object.name = (char *)name;
	return wait_for(c, &p, rpc_nfs3_remove_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_rmdir(struct tl_client *c, const struct tl_fh *dir, const char *name)
{
	struct pending p = { 0 };
	RMDIR3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.object.dir, dir);
	a.object.name = (char *)name;
	return wait_for(c, &p, rpc_nfs3_rmdir_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_rename(struct tl_client *c, const struct tl_fh *from, const char *fname,
		  const struct tl_fh *to, const char *tname)
{
	struct pending p = { 0 };
	RENAME3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.from.dir, from);
	a.from.name = (char *)fname;
	to_nfs(&a.to.dir, to);
	a.to.name = (char *)tname;
	return wait_for(c, &p, rpc_nfs3_rename_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_link(struct tl_client *c, const struct tl_fh *file, const struct tl_fh *dir,
		const char *name)
{
	struct pending p = { 0 };
	LINK3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.file, file);
	to_nfs(&a.link.dir, dir);
	a.link.name = (char *)name;
	return wait_for(c, &p, rpc_nfs3_link_async(c->rpc, generic_cb, &a, &p));
}

int tl_nfs_commit(struct tl_client *c, const struct tl_fh *fh)
{
	struct pending p = { 0 };
	COMMIT3args a;

	memset(&a, 0, sizeof(a));
	to_nfs(&a.file, fh);
	return wait_for(c, &p, rpc_nfs3_commit_async(c->rpc, generic_cb, &a, &p));
}

/* ---------- MOUNT ---------- */

struct mnt_out {
	struct tl_fh *fh;
	int *flavors;
	int *nflavors;
	int maxflavors;
};

static int copy_mnt(void *data, void *out)
{
	mountres3 *res = data;
	struct mnt_out *o = out;

	if (res->fhs_status == MNT3_OK) {
		mountres3_ok *ok = &res->mountres3_u.mountinfo;
		if (o->fh) {
			memset(o->fh, 0, sizeof(*o->fh));
			o->fh->len = ok->fhandle.fhandle3_len <= sizeof(o->fh->data)
					     ? ok->fhandle.fhandle3_len
					     : sizeof(o->fh->data);
			memcpy(o->fh->data, ok->fhandle.fhandle3_val, o->fh->len);
		}
		if (o->nflavors) {
			int n = (int)ok->auth_flavors.auth_flavors_len;
			*o->nflavors = n;
			for (int i = 0; i < n && i < o->maxflavors; i++)
				o->flavors[i] = ok->auth_flavors.auth_flavors_val[i];
		}
	}
	return res->fhs_status;
}

int tl_mnt(struct tl_client *c, const char *path, struct tl_fh *out, int *flavors,
	   int *nflavors, int maxflavors)
{
	struct mnt_out o = { out, flavors, nflavors, maxflavors };
	struct pending p = { .copy = copy_mnt, .out = &o };

	return wait_for(c, &p,
			rpc_mount3_mnt_async(c->rpc, generic_cb, (char *)path, &p));
}

int tl_mount_null(struct tl_client *c)
{
	struct pending p = { .copy = copy_null_status };

	return wait_for(c, &p, rpc_mount3_null_async(c->rpc, generic_cb, &p));
}

struct strv_out {
	char ***v;
	int *n;
};

/*
 * libnfs's decoder may place list nodes at 4-byte aligned addresses;
 * nodes are copied out with memcpy so that UBSan's alignment check holds.
 */
static int copy_export(void *data, void *out)
{
	struct strv_out *o = out;
	exports ex = NULL;
	int n = 0, i = 0;

	if (data)
		memcpy(&ex, data, sizeof(ex));
	for (exports e = ex; e && n < 10000; n++) {
		struct exportnode node;
		memcpy(&node, e, sizeof(node));
		e = node.ex_next;
	}
	*o->v = calloc((size_t)n + 1, sizeof(char *));
	ASSERT(*o->v != NULL);
	for (exports e = ex; e && i < n;) {
		struct exportnode node;
		memcpy(&node, e, sizeof(node));
		(*o->v)[i++] = strdup(node.ex_dir ? node.ex_dir : "");
		e = node.ex_next;
	}
	*o->n = n;
	return 0;
}

int tl_mount_export(struct tl_client *c, char ***dirs, int *n)
{
	struct strv_out o = { dirs, n };
	struct pending p = { .copy = copy_export, .out = &o };

	*dirs = NULL;
	*n = 0;
	return wait_for(c, &p, rpc_mount3_export_async(c->rpc, generic_cb, &p));
}

static int copy_dump(void *data, void *out)
{
	mountlist ml = NULL;
	int n = 0;

	if (data)
		memcpy(&ml, data, sizeof(ml));
	while (ml && n < 10000) {
		struct mountbody node;
		memcpy(&node, ml, sizeof(node));
		ml = node.ml_next;
		n++;
	}
	*(int *)out = n;
	return 0;
}

int tl_mount_dump(struct tl_client *c, int *n)
{
	struct pending p = { .copy = copy_dump, .out = n };

	*n = 0;
	return wait_for(c, &p, rpc_mount3_dump_async(c->rpc, generic_cb, &p));
}

int tl_umnt(struct tl_client *c, const char *path)
{
	struct pending p = { .copy = copy_null_status };

	return wait_for(c, &p, rpc_mount3_umnt_async(c->rpc, generic_cb, (char *)path, &p));
}

int tl_umntall(struct tl_client *c)
{
	struct pending p = { .copy = copy_null_status };

	return wait_for(c, &p, rpc_mount3_umntall_async(c->rpc, generic_cb, &p));
}

void tl_strv_free(char **v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* ---------- PMAP ---------- */

static int copy_getport(void *data, void *out)
{
	*(uint32_t *)out = data ? *(uint32_t *)data : 0;
	return 0;
}

int tl_pmap_getport(struct tl_client *c, uint32_t prog, uint32_t vers, uint32_t prot,
		    uint32_t *port)
{
	struct pending p = { .copy = copy_getport, .out = port };

	*port = 0;
	return wait_for(c, &p, rpc_pmap2_getport_async(c->rpc, (int)prog, (int)vers,
						       (int)prot, generic_cb, &p));
}

/* ---------- misc ---------- */

void tl_client_mount(struct tl_client *c, int port, const char *path, struct tl_fh *root)
{
	int st;

	tl_client_connect(c, port);
	st = tl_mnt(c, path ? path : "/", root, NULL, NULL, 0);
	ASSERTF(st == MNT3_OK, "MNT '%s' on port %d: %s", path ? path : "/", port,
		st < 0 ? c->err : "failed");
	ASSERT(root->len > 0 && root->len <= 64);
}

int tl_nfs_walk(struct tl_client *c, const struct tl_fh *dir, const char *path,
		struct tl_fh *out, fattr3 *attr)
{
	char buf[4096];
	struct tl_fh cur = *dir;
	char *save = NULL;
	int st = NFS3_OK;

	snprintf(buf, sizeof(buf), "%s", path);
	if (attr) {
		st = tl_nfs_getattr(c, &cur, attr);
		if (st != NFS3_OK)
			return st;
	}
	for (char *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		struct tl_fh next;

		st = tl_nfs_lookup(c, &cur, tok, &next, attr);
		if (st != NFS3_OK)
			return st;
		cur = next;
	}
	if (out)
		*out = cur;
	return st;
}

struct nfs_context *tl_hl_mount(int port, const char *path)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *u;
	char url[512];

	ASSERT(nfs != NULL);
	nfs_set_autoreconnect(nfs, 0);
	nfs_set_timeout(nfs, (int)(CALL_TIMEOUT_S * 1000));
	snprintf(url, sizeof(url), "nfs://127.0.0.1%s?nfsport=%d&mountport=%d&version=3",
		 path && *path ? path : "/", port, port);
	u = nfs_parse_url_dir(nfs, url);
	ASSERTF(u != NULL, "parse url '%s': %s", url, nfs_get_error(nfs));
	ASSERTF(nfs_mount(nfs, u->server, u->path) == 0, "nfs_mount '%s': %s", url,
		nfs_get_error(nfs));
	nfs_destroy_url(u);
	return nfs;
}

void tl_hl_close(struct nfs_context *nfs)
{
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
}

const char *tl_nfsstat_name(int st)
{
	static char buf[600];

	switch (st) {
	case -1:
		snprintf(buf, sizeof(buf), "RPC error (%s)", last_err);
		return buf;
	case NFS3_OK: return "NFS3_OK";
	case NFS3ERR_PERM: return "PERM";
	case NFS3ERR_NOENT: return "NOENT";
	case NFS3ERR_IO: return "IO";
	case NFS3ERR_NXIO: return "NXIO";
	case NFS3ERR_ACCES: return "ACCES";
	case NFS3ERR_EXIST: return "EXIST";
	case NFS3ERR_XDEV: return "XDEV";
	case NFS3ERR_NODEV: return "NODEV";
	case NFS3ERR_NOTDIR: return "NOTDIR";
	case NFS3ERR_ISDIR: return "ISDIR";
	case NFS3ERR_INVAL: return "INVAL";
	case NFS3ERR_FBIG: return "FBIG";
	case NFS3ERR_NOSPC: return "NOSPC";
	case NFS3ERR_ROFS: return "ROFS";
	case NFS3ERR_MLINK: return "MLINK";
	case NFS3ERR_NAMETOOLONG: return "NAMETOOLONG";
	case NFS3ERR_NOTEMPTY: return "NOTEMPTY";
	case NFS3ERR_DQUOT: return "DQUOT";
	case NFS3ERR_STALE: return "STALE";
	case NFS3ERR_REMOTE: return "REMOTE";
	case NFS3ERR_BADHANDLE: return "BADHANDLE";
	case NFS3ERR_NOT_SYNC: return "NOT_SYNC";
	case NFS3ERR_BAD_COOKIE: return "BAD_COOKIE";
	case NFS3ERR_NOTSUPP: return "NOTSUPP";
	case NFS3ERR_TOOSMALL: return "TOOSMALL";
	case NFS3ERR_SERVERFAULT: return "SERVERFAULT";
	case NFS3ERR_BADTYPE: return "BADTYPE";
	case NFS3ERR_JUKEBOX: return "JUKEBOX";
	default:
		snprintf(buf, sizeof(buf), "status %d", st);
		return buf;
	}
}
