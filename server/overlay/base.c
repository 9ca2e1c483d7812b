/*
 * base.c - base updates under mounted clients (docs/operating.md, "Base
 * updates"): a plain export's lowerdir changed in the config and SIGHUP.
 *
 * An export whose upper holds nothing (or that has no upper) moves to the
 * new lowers at once: quiesced, the lower layers swapped, every cache
 * flushed, the base record taken again. An upper with content was made
 * against the old lowers and keeps them (pinned): the new ones are opened
 * and wait in ex->pend[] until a reset or `ovlnfsctl rebase --force`
 * (which first reports the upper's entries that shadow a path that
 * differs between the two bases). Never a silent mix.
 *
 * Handles: objects of the old base are STALE once it is out of use (they
 * no longer lie inside a layer of the export), objects of the new base
 * and of the upper resolve as usual; a file is never served from two
 * bases, since every node and cache is dropped at the move.
 *
 * The lowers taken out of use stay open until the export closes
 * (ex->retired): fs_fd[] may point at one of them (any descriptor on the
 * filesystem serves open_by_handle_at) and a listing may be reading a path.
 * New lowers must lie on filesystems the export already uses (handles
 * carry a filesystem index); anything else needs a restart, as before.
 *
 * Threads: pool workers only - set_base through basewatch.c's move queue
 * (SIGHUP, the base probe), rebase and reset through the control socket.
 * base_mu makes each of them whole against the others (pend[] and the
 * layers they change); it is taken before any export's inst_lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "internal.h"

static pthread_mutex_t base_mu = PTHREAD_MUTEX_INITIALIZER;

void onfs_base_lock(bool on)
{
	if (on)
		pthread_mutex_lock(&base_mu);
	else
		pthread_mutex_unlock(&base_mu);
}

static void free_layers(struct onfs_layer *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].fd >= 0)
			close(a[i].fd);
		free(a[i].path);
		free(a[i].real);
		memset(&a[i], 0, sizeof(a[i]));
		a[i].fd = -1;
	}
}

void onfs_base_free(struct onfs_export *ex)
{
	free_layers(ex->pend, ex->npend);
	ex->npend = 0;
	free_layers(ex->retired, ex->nretired);
	free(ex->retired);
	ex->retired = NULL;
	ex->nretired = 0;
}

static int open_lower(struct onfs_export *ex, const char *path, struct onfs_layer *l, char *err,
		      size_t errlen)
{
	char real[PATH_MAX];
	struct stat st;
	size_t i;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (!realpath(path, real)) {
		snprintf(err, errlen, "lowerdir '%s': %s", path, strerror(errno));
		return -1;
	}
	l->fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0 || fstat(l->fd, &st) < 0) {
		snprintf(err, errlen, "lowerdir '%s': %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < ex->numfs && ex->fs_dev[i] != st.st_dev; i++)
		;
	if (i == ex->numfs) {
		snprintf(err, errlen, "lowerdir '%s' is on a filesystem the export did not use "
			 "when it started: restart needed", path);
		return -1;
	}
	l->fsidx = (uint8_t)i;
	l->path = strdup(path);
	l->real = strdup(real);
	if (!l->path || !l->real) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Does the upper hold anything? (errors: yes, to stay on the safe side) */
static bool upper_has_content(struct onfs_export *ex)
{
	const char *up = onfs_instance_upper(ex);
	int fd;
	DIR *d;
	struct dirent *e;
	bool any = false;

	if (!ex->has_upper || !up)
		return false;
	fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT; /* an instance with no upper yet: nothing */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return true;
	}
	while (!any && (e = readdir(d)))
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return any;
}


/* The first original lower: after the upper and the committed layers. */
static size_t first_lower(const struct onfs_export *ex)
{
	size_t i = ex->has_upper ? 1 : 0;

	while (i < ex->nlayers && ex->layers[i].committed)
		i++;
	return i;
}

/* STATE/exports/NAME/stack.root (an instance: .../stack-VALUE.root) */
static bool root_file(const struct onfs_export *ex, char *out, size_t cap)
{
	return ex->stack_file && (size_t)snprintf(out, cap, "%s.root", ex->stack_file) < cap;
}

/* Make the parents of a file in the state directory. */
static void mkdir_parents(const char *file)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", file);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0700);
		*p = '/';
	}
}

void onfs_base_load_root(struct onfs_export *ex)
{
	char path[PATH_MAX];
	struct onfs_ident id;
	uint64_t ino;
	int fd;

	if (!root_file(ex, path, sizeof(path)))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (read(fd, &id, sizeof(id)) == sizeof(id) && read(fd, &ino, sizeof(ino)) == sizeof(ino) &&
	    id.len <= ONFS_FID_MAX && id.fsidx < ex->numfs) {
		ex->root_ident = id;
		ex->root_ino = ino;
		ex->root_fixed = true;
	}
	close(fd);
}

/*
 * Fix the root's identity as it is now, before the first move; recorded.
 * As onfs_root computes it (lookup.c): the first lower root that is not a
 * committed layer, by its kernel handle and inode number; no node is made
 * (a dormant instance has no cache).
 */
static void fix_root(struct onfs_export *ex)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct onfs_ident id = { 0 };
	struct stat st;
	size_t idl = first_lower(ex);
	int fd;

	if (ex->root_fixed || idl >= ex->nlayers ||
	    onfs_fs_name_to_ident(ex->layers[idl].fd, "", &id) < 0 ||
	    fstat(ex->layers[idl].fd, &st) < 0)
		return;
	id.fsidx = ex->layers[idl].fsidx;
	ex->root_ident = id;
	ex->root_ino = st.st_ino;
	ex->root_fixed = true;
	if (!root_file(ex, path, sizeof(path)))
		return;
	mkdir_parents(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, &ex->root_ident, sizeof(ex->root_ident)) != sizeof(ex->root_ident) ||
	    write(fd, &ex->root_ino, sizeof(ex->root_ino)) != sizeof(ex->root_ino) || fsync(fd) < 0 ||
	    rename(tmp, path) < 0)
		onfs_warn("export '%s': cannot record its root identity in '%s': %s (its root "
			  "handle changes at the next restart)", ex->name, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int onfs_base_apply(struct onfs_export *ex, bool lock, char *err, size_t errlen)
{
	size_t first = first_lower(ex), old = ex->nlayers - first;
	struct onfs_layer *r;
	char p[PATH_MAX + 32], why[PATH_MAX + 128] = "";

	if (ex->npend == 0) {
		snprintf(err, errlen, "'%s' is on its newest base (no new lowerdir waiting)",
			 ex->name);
		return -EINVAL;
	}
	if (first + ex->npend > ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "'%s': more than %d layers", ex->name, ONFS_MAX_LAYERS);
		return -ENOSPC;
	}
	/* an instance's lowers are its line's (borrowed): the line keeps them open */
	r = ex->line ? ex->retired : realloc(ex->retired, (ex->nretired + old) * sizeof(*r));
	if (!r && !ex->line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ex->retired = r;
	if (lock) {
		pthread_mutex_lock(&ex->inst_lock);
		if (!onfs_quiesce(ex, true)) {
			pthread_mutex_unlock(&ex->inst_lock);
			snprintf(err, errlen, "'%s': calls did not drain within 30 s", ex->name);
			return -EAGAIN;
		}
	}
	fix_root(ex);
	if (!ex->line) {
		memcpy(&ex->retired[ex->nretired], &ex->layers[first], old * sizeof(*r));
		ex->nretired += old;
	}
	memcpy(&ex->layers[first], ex->pend, ex->npend * sizeof(*r));
	ex->nlayers = first + ex->npend;
	memset(ex->pend, 0, sizeof(ex->pend));
	ex->npend = 0;
	atomic_fetch_add(&ex->base_version, 1);
	if (ex->has_upper && ex->work_ok && ex->inst_work && ex->work_fd >= 0) {
		/* the upper is now made against this base: record it */
		snprintf(p, sizeof(p), "%s/ovlnfsd/base", ex->inst_work);
		unlink(p);
		if (onfs_owner_enter(ex) < 0 || onfs_workdir_renew(ex, why, sizeof(why)) < 0)
			onfs_warn("export '%s': after the base move: %s", ex->name, why);
	} else if (ex->line && ex->inst_work) {
		/* a dormant instance records its base at its next setup */
		snprintf(p, sizeof(p), "%s/ovlnfsd/base", ex->inst_work);
		unlink(p);
	}
	if (ex->nodes) /* a dormant instance has no caches */
		onfs_export_caches_flush(ex);
	if (lock) {
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
	}
	onfs_info("export '%s': moved to base version %u (%zu lower layer(s), top '%s')",
		  ex->name, atomic_load(&ex->base_version), ex->nlayers - first,
		  ex->layers[first].path);
	return 0;
}

/*
 * A templated line: its lowers (in pend[]) replace the line's, which stay
 * open (retired: instances pinned to them borrow them); then each instance
 * with an empty upper takes the new ones at once, one with content waits
 * for them (pend[], borrowed from the line) until its reset or rebase.
 * Instances made from now on start on the new base. 0, or 1 when one or
 * more instances are pinned.
 */
static int line_set_base(struct onfs_export *line, char *err, size_t errlen)
{
	size_t old = line->nlayers - 1, n = line->npend, ninst, pinned = 0, moved = 0;
	struct onfs_export **insts;
	struct onfs_layer *r;

	if (1 + n > ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "'%s': more than %d layers", line->name, ONFS_MAX_LAYERS);
		return -1;
	}
	r = realloc(line->retired, (line->nretired + old) * sizeof(*r));
	insts = calloc(65536, sizeof(*insts));
	if (!r || !insts) {
		if (r)
			line->retired = r;
		free(insts);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	line->retired = r;
	onfs_inst_line_lock(line, true);
	memcpy(&line->retired[line->nretired], &line->layers[1], old * sizeof(*r));
	line->nretired += old;
	memcpy(&line->layers[1], line->pend, n * sizeof(*r));
	line->nlayers = 1 + n;
	memset(line->pend, 0, sizeof(line->pend));
	line->npend = 0;
	atomic_fetch_add(&line->base_version, 1);
	onfs_inst_line_lock(line, false);
	ninst = onfs_instance_list(line, insts, 65536);
	for (size_t i = 0; i < ninst; i++) {
		struct onfs_export *in = insts[i];
		size_t first;

		pthread_mutex_lock(&in->inst_lock);
		if (!onfs_quiesce(in, true)) {
			pthread_mutex_unlock(&in->inst_lock);
			onfs_warn("export '%s': calls did not drain: stays on its base", in->name);
			continue;
		}
		onfs_owner_enter(in);
		memcpy(in->pend, &line->layers[1], n * sizeof(*r));
		in->npend = n;
		if (upper_has_content(in)) {
			pinned++;
			onfs_warn("export '%s': keeps base version %u (its upper holds changes); the "
				  "new base waits for `ovlnfsctl reset` or `rebase --force`", in->name,
				  atomic_load(&in->base_version));
		} else {
			first = first_lower(in);
			(void)first;
			atomic_store(&in->base_version, atomic_load(&line->base_version) - 1);
			if (onfs_base_apply(in, false, err, errlen) == 0)
				moved++;
		}
		atomic_store(&in->quiesce, false);
		pthread_mutex_unlock(&in->inst_lock);
	}
	free(insts);
	onfs_info("export '%s': new base version %u: %zu instance(s) moved, %zu pinned to their "
		  "old base", line->name, atomic_load(&line->base_version), moved, pinned);
	return pinned ? 1 : 0;
}

static int set_base(struct onfs_export *ex, char *const *lowerdir, size_t nlower, char *err,
		    size_t errlen);

int onfs_export_set_base(struct onfs_export *ex, char *const *lowerdir, size_t nlower,
			 char *err, size_t errlen)
{
	int r;

	onfs_base_lock(true);
	r = set_base(ex, lowerdir, nlower, err, errlen);
	onfs_base_lock(false);
	return r;
}

static int set_base(struct onfs_export *ex, char *const *lowerdir, size_t nlower, char *err,
		    size_t errlen)
{
	size_t i;
	int r;

	if (ex->line) {
		snprintf(err, errlen, "'%s' is an instance: its line's lowerdir moves it", ex->name);
		return -1;
	}
	if (nlower == 0 || nlower > ONFS_MAX_LOWER) {
		snprintf(err, errlen, "'%s': %zu lower layers", ex->name, nlower);
		return -1;
	}
	if (onfs_owner_enter(ex) < 0) {
		snprintf(err, errlen, "'%s': cannot take the owner's credentials", ex->name);
		return -1;
	}
	free_layers(ex->pend, ex->npend);
	ex->npend = 0;
	for (i = 0; i < nlower; i++) {
		if (open_lower(ex, lowerdir[i], &ex->pend[i], err, errlen) < 0) {
			free_layers(ex->pend, i + 1);
			return -1;
		}
	}
	ex->npend = nlower;
	if (ex->tmpl)
		return line_set_base(ex, err, errlen);
	/*
	 * Look at the upper only once no call is inside: a copy-up in flight
	 * makes its first entry while we wait, and that entry was made against
	 * the old base.
	 */
	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': calls did not drain within 30 s", ex->name);
		return -1;
	}
	if (upper_has_content(ex)) {
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
		onfs_warn("export '%s': new lowerdir (top '%s') waits: its upper holds changes made "
			  "against base version %u, which it keeps until `ovlnfsctl reset` or "
			  "`ovlnfsctl rebase --force`", ex->name, lowerdir[0],
			  atomic_load(&ex->base_version));
		return 1;
	}
	r = onfs_base_apply(ex, false, err, errlen);
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return r < 0 ? -1 : 0;
}

unsigned onfs_layers_base_version(struct onfs_export *ex, bool *pinned)
{
	*pinned = ex->npend > 0;
	return atomic_load(&ex->base_version);
}

void onfs_layers_base_probe(struct onfs_export *ex)
{
	if (ex->tmpl || ex->line || !ex->has_upper)
		return;
	if (onfs_layers_base(ex) > 0)
		onfs_warn("export '%s': a lower layer's root is not the one its upper was made "
			  "against (device, inode or ctime changed: replaced or changed in place?); "
			  "served over the layers as they are now", ex->name);
}

size_t onfs_layers_base_snapshot(struct onfs_export *ex, int *fds, char **paths, size_t max)
{
	size_t n = 0;

	if (ex->line)
		return 0; /* an instance: its line is probed */
	for (size_t i = first_lower(ex); i < ex->nlayers && n < max; i++) {
		/* a dup, not the layer's fd: a base move may close that one */
		fds[n] = ex->layers[i].fd >= 0 ? fcntl(ex->layers[i].fd, F_DUPFD_CLOEXEC, 0) : -1;
		paths[n] = strdup(ex->layers[i].path);
		if (!paths[n]) {
			if (fds[n] >= 0)
				close(fds[n]);
			break;
		}
		n++;
	}
	return n;
}

void onfs_layers_base_flush(struct onfs_export *ex)
{
	struct onfs_export **insts;
	size_t n;

	if (!ex->tmpl) {
		onfs_export_caches_flush(ex);
		return;
	}
	insts = calloc(65536, sizeof(*insts));
	if (!insts)
		return;
	n = onfs_instance_list(ex, insts, 65536);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&insts[i]->inst_lock);
		if (insts[i]->nodes) /* a dormant instance has no caches */
			onfs_export_caches_flush(insts[i]);
		pthread_mutex_unlock(&insts[i]->inst_lock);
	}
	free(insts);
}

/* --- rebase: what the upper shadows of a change between the bases --- */

/* The first of n layers that holds rel (not followed); false: none. */
static bool stat_first(const struct onfs_layer *l, size_t n, const char *rel, struct stat *st)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].fd >= 0 && fstatat(l[i].fd, rel, st, AT_SYMLINK_NOFOLLOW) == 0)
			return true;
	return false;
}

struct rb_ctx {
	struct onfs_export *ex;
	const struct onfs_layer *old;
	size_t nold;
	bool json;
	struct onfs_buf *out;
	size_t n;
};

static void rb_walk(struct rb_ctx *c, int dfd, const char *rel, int depth)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct stat us, os, ns;
		bool o, n;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (fstatat(dirfd(d), e->d_name, &us, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		o = stat_first(c->old, c->nold, path, &os);
		n = stat_first(c->ex->pend, c->ex->npend, path, &ns);
		if (o != n || (o && ((os.st_mode & S_IFMT) != (ns.st_mode & S_IFMT) ||
				     (!S_ISDIR(os.st_mode) &&
				      (os.st_size != ns.st_size ||
				       os.st_mtim.tv_sec != ns.st_mtim.tv_sec ||
				       os.st_mtim.tv_nsec != ns.st_mtim.tv_nsec))))) {
			if (c->json) {
				onfs_buf_printf(c->out, "%s\n    ", c->n ? "," : "");
				onfs_buf_json_str(c->out, path);
			} else {
				onfs_buf_printf(c->out, "S  %s\n", path);
			}
			c->n++;
		}
		if (S_ISDIR(us.st_mode) && depth < 256) {
			int sfd = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sfd >= 0) {
				rb_walk(c, sfd, path, depth + 1);
				close(sfd);
			}
		}
	}
	closedir(d);
}

static int rebase(struct onfs_export *ex, bool force, bool json, struct onfs_buf *out,
		  char *err, size_t errlen);

int onfs_layers_rebase(struct onfs_export *ex, bool force, bool json, struct onfs_buf *out,
		       char *err, size_t errlen)
{
	int r;

	onfs_base_lock(true);
	r = rebase(ex, force, json, out, err, errlen);
	onfs_base_lock(false);
	return r;
}

static int rebase(struct onfs_export *ex, bool force, bool json, struct onfs_buf *out,
		  char *err, size_t errlen)
{
	size_t first;
	struct rb_ctx c = { .ex = ex, .json = json, .out = out };
	int r = 0;

	if (ex->tmpl) {
		snprintf(err, errlen, "'%s' is a templated line: name one of its instances "
			 "(EXPORT/INSTANCE, see list)", ex->name);
		return -EINVAL;
	}
	if (ex->npend == 0) {
		snprintf(err, errlen, "'%s' is on its newest base (no new lowerdir waiting)",
			 ex->name);
		return -EINVAL;
	}
	r = onfs_owner_enter(ex);
	if (r < 0) {
		snprintf(err, errlen, "'%s': cannot take the owner's credentials", ex->name);
		return r;
	}
	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': calls did not drain within 30 s", ex->name);
		return -EAGAIN;
	}
	first = first_lower(ex);
	c.old = &ex->layers[first];
	c.nold = ex->nlayers - first;
	onfs_buf_printf(out, "ok\n");
	if (json)
		onfs_buf_printf(out, "{\"shadowed\": [");
	{
		const char *up = onfs_instance_upper(ex);
		int ufd = up ? open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

		if (ufd >= 0) {
			rb_walk(&c, ufd, "", 0);
			close(ufd);
		}
	}
	if (force)
		r = onfs_base_apply(ex, false, err, errlen);
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	if (r < 0)
		return r;
	if (json)
		onfs_buf_printf(out, "%s], \"applied\": %s, \"base_version\": %u}\n",
				c.n ? "\n  " : "", force ? "true" : "false",
				atomic_load(&ex->base_version));
	else
		onfs_buf_printf(out, "%zu upper entr%s shadow%s a change of the base; %s\n", c.n,
				c.n == 1 ? "y" : "ies", c.n == 1 ? "s" : "",
				force ? "moved to the new base" : "not applied (--force applies it)");
	return out->oom ? -ENOMEM : 0;
}
