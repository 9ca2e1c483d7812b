/*
 * mount.c - the MOUNT version 3 program (RFC 1813 Appendix I): NULL, MNT,
 * DUMP, UMNT, UMNTALL, EXPORT, and the list of mounts DUMP reports.
 *
 * Threads: NULL and EXPORT run on the loop (memory only; the export list
 * only grows, on the loop, by a SIGHUP reload, and the access rules are
 * read through access.c's lock-free table); MNT runs on a pool worker (it
 * walks the merged tree); DUMP, UMNT and UMNTALL on workers too. The mount list is the one
 * piece of mutable state here; it is shared by every worker and guarded by
 * mount_lock, which is never held across a filesystem call.
 * Never: frees its args, touches sockets, or hands out a handle for a path
 * outside an export (paths are normalised lexically before they are
 * matched, and symlinks met on the way are followed only inside the
 * merged view of the export: mount_resolve).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mount3.h"
#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/errmap.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"
#include "ovlnfsd/template.h"

/* DUMP is informational (clients forget to UMNT): keep it bounded. */
#define MOUNT_LIST_MAX 1024
#define MOUNT_HOST_MAX 64 /* an IPv6 address in text, with room */

struct mount_entry {
	struct mount_entry *next; /* owned by the list */
	char host[MOUNT_HOST_MAX];
	char path[];              /* normalised */
};

/*
 * The mount list is process-wide: DUMP must show mounts made through any
 * listener, and struct onfs_server has no slot for it. Informational only
 * (RFC 1813: "the server may not be able to keep it accurate").
 */
static pthread_mutex_t mount_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mount_entry *mount_list; /* guarded by mount_lock */
static size_t mount_count;             /* guarded by mount_lock */

/* --- paths --- */

/*
 * Normalise a path lexically into out: "/" + components with one slash
 * between them, "." dropped, ".." removes the previous component, no
 * trailing slash; a relative or empty path is taken from "/". Lexical is
 * exact here because the merged view follows no symlink. Returns 0,
 * -EACCES (".." climbing above "/": an attempt to leave the exports) or
 * -ENAMETOOLONG.
 */
static int mount_normalize(const char *in, char *out, size_t cap)
{
	size_t len = 0;
	const char *p = in;
	int err = 0;

	if (cap < 2) {
		err = -ENAMETOOLONG;
		goto out;
	}
	/* libnfs mounts the parent of a file URL, "" for a file at the top */
	if (!p)
		p = "";
	while (*p) {
		const char *comp;
		size_t clen;

		while (*p == '/')
			p++;
		comp = p;
		while (*p && *p != '/')
			p++;
		clen = (size_t)(p - comp);
		if (clen == 0 || (clen == 1 && comp[0] == '.'))
			continue;
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			if (len == 0) {
				err = -EACCES;
				goto out;
			}
			while (len > 0 && out[--len] != '/')
				;
			out[len] = '\0';
			continue;
		}
		if (len + 1 + clen + 1 > cap) {
			err = -ENAMETOOLONG;
			goto out;
		}
		out[len++] = '/';
		memcpy(out + len, comp, clen);
		len += clen;
		out[len] = '\0';
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
out:
	return err;
}

/*
 * The export that holds path (normalised), the longest export path that
 * is path itself or a directory above it; *rest is what follows it,
 * relative ("" for the export root). NULL when no export holds path.
 */
static struct onfs_export *mount_find_export(struct onfs_server *srv, const char *path,
					     const char **rest)
{
	struct onfs_export *best = NULL;
	size_t best_len = 0;
	char ep[MNTPATHLEN + 1];
	size_t nexports = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);

	for (size_t i = 0; i < nexports; i++) {
		char tp[MNTPATHLEN + 1];
		size_t elen;

		if (!srv->exports[i])
			continue;
		/* path = /DIR/{name}: the export holds /DIR, the name is the next component */
		snprintf(tp, sizeof(tp), "%s", onfs_export_path(srv->exports[i]));
		if (onfs_export_template_kind(srv->exports[i]) == ONFS_TMPL_NAME &&
		    strlen(tp) > 7 && strcmp(tp + strlen(tp) - 7, "/{name}") == 0)
			tp[strlen(tp) - 7] = '\0';
		if (mount_normalize(tp, ep, sizeof(ep)) < 0)
			continue;
		elen = strlen(ep);
		if (elen == 1) /* "/" holds everything */
			elen = 0;
		else if (strncmp(path, ep, elen) != 0 || (path[elen] != '\0' && path[elen] != '/'))
			continue;
		if (!best || elen > best_len) {
			best = srv->exports[i];
			best_len = elen;
		}
	}
	if (best) {
		*rest = path + best_len;
		while (**rest == '/')
			(*rest)++;
	}
	return best;
}

static void mount_peer_name(const struct onfs_call *c, char *out, size_t cap);

#define MOUNT_MAX_SYMLINKS 40 /* as the kernel's path walk (ELOOP) */

/* Next component of *p into comp: 1, 0 at the end, -ENAMETOOLONG. */
static int mount_next_comp(const char **p, char comp[NAME_MAX + 1])
{
	const char *s = *p + strspn(*p, "/");
	size_t n = strcspn(s, "/");

	*p = s + n;
	if (n == 0)
		return 0;
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, s, n);
	comp[n] = '\0';
	return 1;
}

/*
 * Walk rest (relative to the export root) following symlinks inside the
 * merged view, as Linux's mountd resolves the path with realpath(3): MNT
 * of EXPORT/link/sub with link -> dir mounts EXPORT/dir/sub. A relative
 * target resolves from the link's directory; an absolute one from the
 * export root (the layers are a tree of their own: a diskless root's
 * "/usr/lib" means its own /usr/lib). A target whose ".." climbs above
 * the export root leads outside the export: -EACCES, logged. More than
 * MOUNT_MAX_SYMLINKS links: -ELOOP. Worker thread (filesystem calls).
 */
static int mount_resolve(const struct onfs_call *c, struct onfs_export *ex, const char *path,
			 const char *rest, struct onfs_node **out)
{
	char *todo = NULL, *done = NULL, *tmp = NULL;
	char comp[NAME_MAX + 1];
	char target[PATH_MAX];
	struct onfs_node *cur = NULL, *next = NULL;
	size_t cap = 2 * PATH_MAX + MNTPATHLEN + 4;
	const char *p;
	int links = 0;
	int err;

	todo = malloc(cap);
	done = malloc(cap);
	tmp = malloc(cap);
	if (!todo || !done || !tmp) {
		err = -ENOMEM;
		goto out;
	}
	snprintf(todo, cap, "%s", rest);
	done[0] = '\0';
	err = onfs_root(ex, &cur);
	if (err < 0)
		goto out;
	p = todo;
	while ((err = mount_next_comp(&p, comp)) > 0) {
		ssize_t tlen;
		size_t dlen = strlen(done);

		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *slash;

			if (dlen == 0) {
				err = -EACCES; /* only a symlink target gets here: rest is normalised */
				goto out_outside;
			}
			slash = strrchr(done, '/');
			*(slash ? slash : done) = '\0';
			onfs_node_put(cur);
			cur = NULL;
			err = onfs_walk(ex, done, &cur);
			if (err < 0)
				goto out;
			continue;
		}
		err = onfs_lookup(ex, cur, comp, &next);
		if (err < 0)
			goto out;
		if (!S_ISLNK(onfs_node_type(next))) {
			if (dlen + 1 + strlen(comp) + 1 > cap) {
				err = -ENAMETOOLONG;
				goto out;
			}
			snprintf(done + dlen, cap - dlen, "%s%s", dlen ? "/" : "", comp);
			onfs_node_put(cur);
			cur = next;
			next = NULL;
			continue;
		}
		if (++links > MOUNT_MAX_SYMLINKS) {
			mount_peer_name(c, comp, sizeof(comp));
			onfs_info("mount: MNT '%s' from %s refused: more than %d symlinks (a loop?)",
				  path, comp, MOUNT_MAX_SYMLINKS);
			err = -ELOOP;
			goto out;
		}
		tlen = onfs_readlink(ex, next, target, sizeof(target) - 1);
		onfs_node_put(next);
		next = NULL;
		if (tlen < 0) {
			err = (int)tlen;
			goto out;
		}
		target[tlen] = '\0';
		onfs_debug("mount: MNT '%s': '%s%s%s' -> '%s'", path, done, dlen ? "/" : "", comp,
			   target);
		/* the rest of the path now goes on after the target */
		if (strlen(target) + 1 + strlen(p) + 1 > cap) {
			err = -ENAMETOOLONG;
			goto out;
		}
		{
			size_t tl = strlen(target), pl = strlen(p);

			memcpy(tmp, target, tl);
			tmp[tl] = '/';
			memcpy(tmp + tl + 1, p, pl + 1);
			memcpy(todo, tmp, tl + pl + 2);
		}
		p = todo;
		if (target[0] == '/') {
			done[0] = '\0';
			onfs_node_put(cur);
			cur = NULL;
			err = onfs_root(ex, &cur);
			if (err < 0)
				goto out;
		}
	}
	if (err < 0)
		goto out;
	*out = cur;
	cur = NULL;
	err = 0;
	goto out;
out_outside:
	mount_peer_name(c, comp, sizeof(comp));
	onfs_info("mount: MNT '%s' from %s refused: a symlink on the way leads outside export "
		  "'%s' (%s)", path, comp, onfs_export_name(ex), onfs_export_path(ex));
out:
	if (next)
		onfs_node_put(next);
	if (cur)
		onfs_node_put(cur);
	free(todo);
	free(done);
	free(tmp);
	return err;
}

/* The client's address as DUMP shows it. */
static void mount_peer_name(const struct onfs_call *c, char *out, size_t cap)
{
	const struct sockaddr_storage *ss = &c->peer;

	out[0] = '\0';
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)cap);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
			  (socklen_t)cap);
	if (!out[0])
		snprintf(out, cap, "unknown");
}

/* --- the mount list --- */

static void mount_list_add(const char *host, const char *path)
{
	struct mount_entry *e;
	size_t plen = strlen(path);

	pthread_mutex_lock(&mount_lock);
	for (e = mount_list; e; e = e->next)
		if (strcmp(e->host, host) == 0 && strcmp(e->path, path) == 0)
			goto out_unlock;
	if (mount_count >= MOUNT_LIST_MAX)
		goto out_unlock;
	e = malloc(sizeof(*e) + plen + 1);
	if (!e)
		goto out_unlock;
	snprintf(e->host, sizeof(e->host), "%s", host);
	memcpy(e->path, path, plen + 1);
	e->next = mount_list;
	mount_list = e;
	mount_count++;
out_unlock:
	pthread_mutex_unlock(&mount_lock);
}

/* Remove host's entries for path, or all of host's when path is NULL. */
static void mount_list_remove(const char *host, const char *path)
{
	struct mount_entry **pp, *e;

	pthread_mutex_lock(&mount_lock);
	pp = &mount_list;
	while ((e = *pp)) {
		if (strcmp(e->host, host) == 0 && (!path || strcmp(e->path, path) == 0)) {
			*pp = e->next;
			free(e);
			mount_count--;
		} else {
			pp = &e->next;
		}
	}
	pthread_mutex_unlock(&mount_lock);
}

static size_t xdr_string_size(size_t len)
{
	return 4 + ((len + 3) & ~(size_t)3);
}

/* --- 0 NULL --- */

static bool mount3_null(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

/* --- 1 MNT --- */

/*
 * A templated line serves through the caller's own instance: by address,
 * AUTH_SYS machine name, or the {name} component that follows the line's
 * path (then *rest moves past it). Refusals (bad value, max_instances) are
 * logged where they are decided and answer MNT3ERR_ACCES.
 */
static int mount_instance(struct onfs_call *c, const char *path, struct onfs_export **ex,
			  const char **rest)
{
	char name[NAME_MAX + 1], host[MOUNT_HOST_MAX];
	const char *nm = NULL;
	struct onfs_export *inst;
	int err;

	if (onfs_export_template_kind(*ex) == ONFS_TMPL_NAME) {
		size_t len = strcspn(*rest, "/");

		if (len == 0 || len > NAME_MAX) {
			mount_peer_name(c, host, sizeof(host));
			onfs_info("mount: MNT '%s' from %s refused: export '%s' serves one instance "
				  "per name below it (mount %s/NAME)", path, host,
				  onfs_export_name(*ex), path);
			return -EACCES;
		}
		memcpy(name, *rest, len);
		name[len] = '\0';
		nm = name;
		*rest += len;
		while (**rest == '/')
			(*rest)++;
	}
	err = onfs_call_mount_instance(c, *ex, nm, &inst);
	if (err < 0)
		return err;
	*ex = inst;
	return 0;
}

/*
 * A path that no export holds answers MNT3ERR_NOENT: the client's view of
 * this server is the exports, and there the path does not exist (knfsd's
 * mountd says ACCES, which mount.nfs reports as "access denied" and sends
 * people hunting for permission problems). A client outside the export's
 * clients, or a `secure` export called from a source port >= 1024 (knfsd's
 * "illegal port"), gets MNT3ERR_ACCES: both are logged, since a refused
 * mount is what an operator debugs.
 */
static bool mount3_mnt(struct onfs_call *c, void *args, XDR *xdrs)
{
	dirpath *dp = args;
	mountres3 res;
	char path[MNTPATHLEN + 1];
	char host[MOUNT_HOST_MAX];
	struct onfs_export *ex = NULL;
	struct onfs_node *n = NULL;
	const char *rest = "";
	int flavors[] = { ONFS_AUTH_SYS };
	int err;
	bool ok;

	memset(&res, 0, sizeof(res));
	err = mount_normalize(*dp, path, sizeof(path));
	if (err == 0) {
		ex = mount_find_export(c->srv, path, &rest);
		if (!ex)
			err = -ENOENT;
	}
	if (err == 0) {
		err = onfs_access_check(c, ex);
		if (err < 0) {
			mount_peer_name(c, host, sizeof(host));
			onfs_info("mount: MNT '%s' from %s refused: %s", path, host,
				  err == -EPERM ? "illegal port (export is secure: source port "
						  "must be < 1024)"
						: "not a client of this export");
			err = -EACCES;
		}
	}
	if (err == 0 && onfs_export_templated(ex))
		err = mount_instance(c, path, &ex, &rest);
	else if (err == 0)
		err = onfs_call_enter_export(c, ex);
	if (err == 0)
		err = mount_resolve(c, ex, path, rest, &n);
	if (err == 0 && !S_ISDIR(onfs_node_type(n)))
		err = -ENOTDIR;
	res.fhs_status = onfs_errmap_mount3(err);
	if (res.fhs_status == MNT3_OK) {
		const struct onfs_fh *fh = onfs_node_fh(n);

		res.mountres3_u.mountinfo.fhandle.fhandle3_len = fh->len;
		res.mountres3_u.mountinfo.fhandle.fhandle3_val = (char *)fh->data;
		res.mountres3_u.mountinfo.auth_flavors.auth_flavors_len = ONFS_ARRAY_SIZE(flavors);
		res.mountres3_u.mountinfo.auth_flavors.auth_flavors_val = flavors;
		mount_peer_name(c, host, sizeof(host));
		mount_list_add(host, path);
		onfs_debug("mount: %s mounted %s", host, path);
	} else {
		onfs_debug("mount: MNT '%s' refused: %d", *dp ? *dp : "", err);
	}
	ok = xdr_mountres3(xdrs, &res);
	if (n)
		onfs_node_put(n);
	return ok;
}

/* --- 2 DUMP: hand-encoded (rpcgen's mountlist encoder recurses per entry) --- */

static bool mount3_dump(struct onfs_call *c, void *args, XDR *xdrs)
{
	struct mount_entry *e;
	bool_t more = TRUE, last = FALSE;
	bool ok = true;

	(void)args;
	pthread_mutex_lock(&mount_lock);
	for (e = mount_list; e && ok; e = e->next) {
		char *host = e->host, *path = e->path;
		size_t need = 4 + xdr_string_size(strlen(host)) + xdr_string_size(strlen(path));

		/* the list may have grown since reply_size: stop where it is full */
		if (xdr_getpos(xdrs) + need + 4 > c->reply_cap)
			break;
		ok = xdr_bool(xdrs, &more) && xdr_name(xdrs, &host) && xdr_dirpath(xdrs, &path);
	}
	pthread_mutex_unlock(&mount_lock);
	return ok && xdr_bool(xdrs, &last);
}

static size_t mount3_dump_size(const void *args)
{
	struct mount_entry *e;
	size_t size = 64;

	(void)args;
	pthread_mutex_lock(&mount_lock);
	for (e = mount_list; e; e = e->next)
		size += 4 + xdr_string_size(strlen(e->host)) + xdr_string_size(strlen(e->path));
	pthread_mutex_unlock(&mount_lock);
	return size;
}

/* --- 3 UMNT, 4 UMNTALL: void results --- */

static bool mount3_umnt(struct onfs_call *c, void *args, XDR *xdrs)
{
	dirpath *dp = args;
	char path[MNTPATHLEN + 1];
	char host[MOUNT_HOST_MAX];

	(void)xdrs;
	mount_peer_name(c, host, sizeof(host));
	if (mount_normalize(*dp, path, sizeof(path)) == 0)
		mount_list_remove(host, path);
	return true;
}

static bool mount3_umntall(struct onfs_call *c, void *args, XDR *xdrs)
{
	char host[MOUNT_HOST_MAX];

	(void)args;
	(void)xdrs;
	mount_peer_name(c, host, sizeof(host));
	mount_list_remove(host, NULL);
	return true;
}

/* --- 5 EXPORT --- */

/*
 * Every export with its client groups: the clients= entries as written
 * ("*" for an export open to every client: -o and the demo). Hand-encoded:
 * the group lists live in access.c's rules objects, read without a lock.
 */
static bool mount3_export(struct onfs_call *c, void *args, XDR *xdrs)
{
	size_t n = __atomic_load_n(&c->srv->nexports, __ATOMIC_ACQUIRE);
	bool_t more = TRUE, last = FALSE;
	bool ok = true;

	(void)args;
	if (n > ONFS_MAX_EXPORTS)
		n = ONFS_MAX_EXPORTS;
	for (size_t i = 0; i < n && ok; i++) {
		struct onfs_export *ex = c->srv->exports[i];
		const struct onfs_access_rules *r;
		char *dir, *any = "*";

		if (!ex)
			continue;
		r = onfs_access_rules_of(ex);
		dir = (char *)onfs_export_path(ex);
		ok = xdr_bool(xdrs, &more) && xdr_dirpath(xdrs, &dir);
		if (r->nclients == 0)
			ok = ok && xdr_bool(xdrs, &more) && xdr_name(xdrs, &any);
		for (size_t g = 0; ok && g < r->nclients; g++) {
			char *name = (char *)r->clients[g].text;

			ok = xdr_bool(xdrs, &more) && xdr_name(xdrs, &name);
		}
		ok = ok && xdr_bool(xdrs, &last);
	}
	return ok && xdr_bool(xdrs, &last);
}

static size_t mount3_export_size(const void *args)
{
	/* rules may change between this and the encoding: size for the worst */
	(void)args;
	return ONFS_MAX_EXPORTS * (4 + xdr_string_size(MNTPATHLEN) + 4) +
	       ONFS_MAX_EXPORTS * ONFS_ACCESS_MAX_CLIENTS *
		       (4 + xdr_string_size(sizeof(((struct onfs_cidr *)0)->text))) +
	       64;
}

/* --- the table --- */

static const struct onfs_proc mount3_procs[] = {
	[MOUNTPROC3_NULL] = { .name = "MOUNT NULL", .run = mount3_null, .on_loop = true,
			      .auth_none_ok = true },
	[MOUNTPROC3_MNT] = { .name = "MNT", .xdr_args = (xdrproc_t)xdr_dirpath,
			     .args_size = sizeof(dirpath), .run = mount3_mnt },
	[MOUNTPROC3_DUMP] = { .name = "DUMP", .run = mount3_dump,
			      .reply_size = mount3_dump_size },
	[MOUNTPROC3_UMNT] = { .name = "UMNT", .xdr_args = (xdrproc_t)xdr_dirpath,
			      .args_size = sizeof(dirpath), .run = mount3_umnt },
	[MOUNTPROC3_UMNTALL] = { .name = "UMNTALL", .run = mount3_umntall },
	[MOUNTPROC3_EXPORT] = { .name = "EXPORT", .run = mount3_export,
				.reply_size = mount3_export_size, .on_loop = true,
				.auth_none_ok = true },
};

const struct onfs_program onfs_mount3_program = {
	.name = "mount",
	.prog = MOUNT_PROGRAM,
	.vers = MOUNT_V3,
	.procs = mount3_procs,
	.nprocs = ONFS_ARRAY_SIZE(mount3_procs),
};
