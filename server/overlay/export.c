/*
 * export.c - one export instance: opens and checks its layers, finds the
 * filesystems they live on, loads or creates the persistent handle key and
 * export id, and decides the handle mode.
 *
 * onfs_export_open runs on the main thread before the loop starts (it may
 * block); the accessors are read-only and any thread may call them.
 * It never writes inside a layer; the key lives in workdir/ovlnfsd/ or,
 * for an export without a workdir, under the state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ovlnfsd/siphash.h"
#include "ovlnfsd/template.h"
#include "internal.h"
#include "ovlnfsd/lock.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* mkdir -p with mode 0700 for the directories we create. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

/* True when a is b or lies below it (both real paths). */
static bool path_within(const char *a, const char *b)
{
	size_t lb = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, lb) == 0 && (a[lb] == '\0' || a[lb] == '/');
}

/*
 * Read dir/name (exactly len bytes) or create it with random bytes, mode
 * 0600, atomically (write a temp file, link it into place).
 */
static int load_or_create(const char *dir, const char *name, void *out, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	ssize_t n;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, out, len);
		close(fd);
		return n == (ssize_t)len ? 0 : -EINVAL;
	}
	if (errno != ENOENT)
		return -errno;
	if (getrandom(out, len, 0) != (ssize_t)len)
		return -EIO;
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, out, len) != (ssize_t)len || fsync(fd) < 0)
		ret = -EIO;
	close(fd);
	if (ret == 0 && link(tmp, path) < 0) {
		ret = -errno;
		if (ret == -EEXIST) { /* lost a race with another starter: use theirs */
			unlink(tmp);
			return load_or_create(dir, name, out, len);
		}
	}
	unlink(tmp);
	return ret;
}

static int open_layer(struct onfs_export *ex, const char *path, bool upper,
		      const char *what, char *err, size_t errlen)
{
	struct onfs_layer *l = &ex->layers[ex->nlayers];
	struct stat st;
	char real[PATH_MAX];
	size_t i;

	if (!realpath(path, real))
		return fail(err, errlen, "%s '%s': %s", what, path, strerror(errno));
	/* not O_PATH: open_by_handle_at refuses an O_PATH mount descriptor */
	l->fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0)
		return fail(err, errlen, "%s '%s': %s", what, path, strerror(errno));
	ex->nlayers++;
	if (fstat(l->fd, &st) < 0)
		return fail(err, errlen, "%s '%s': %s", what, path, strerror(errno));
	l->path = strdup(path);
	l->real = strdup(real);
	l->upper = upper;
	if (!l->path || !l->real)
		return fail(err, errlen, "%s '%s': out of memory", what, path);
	for (i = 0; i < ex->numfs; i++)
		if (ex->fs_dev[i] == st.st_dev)
			break;
	if (i == ex->numfs) {
		ex->fs_dev[i] = st.st_dev;
		ex->fs_fd[i] = l->fd;
		ex->numfs++;
	}
	l->fsidx = (uint8_t)i;
	return 0;
}

/* Where the key and id live: workdir/ovlnfsd, else state_dir/exports/NAME. */
static int key_dir(const struct onfs_export_conf *conf, const char *state_dir,
		   char *out, size_t cap)
{
	if (conf->workdir)
		snprintf(out, cap, "%s/ovlnfsd", conf->workdir);
	else
		snprintf(out, cap, "%s/exports/%s", state_dir ? state_dir : ONFS_DEFAULT_STATE_DIR,
			 conf->name ? conf->name : "default");
	return mkdir_p(out);
}

static int check_layers(struct onfs_export *ex, const struct onfs_export_conf *conf,
			char *err, size_t errlen)
{
	char work[PATH_MAX];
	struct stat st;
	size_t i;

	if (!conf->upperdir)
		return 0;
	if (!realpath(conf->workdir, work))
		return fail(err, errlen, "workdir '%s': %s", conf->workdir, strerror(errno));
	if (stat(work, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(err, errlen, "workdir '%s': not a directory", conf->workdir);
	if (st.st_dev != ex->fs_dev[ex->layers[0].fsidx])
		return fail(err, errlen, "upperdir '%s' and workdir '%s' are on different filesystems",
			    conf->upperdir, conf->workdir);
	if (path_within(work, ex->layers[0].real))
		return fail(err, errlen, "workdir '%s' is inside upperdir '%s'", conf->workdir,
			    conf->upperdir);
	if (path_within(ex->layers[0].real, work))
		return fail(err, errlen, "upperdir '%s' is inside workdir '%s'", conf->upperdir,
			    conf->workdir);
	for (i = 1; i < ex->nlayers; i++)
		if (path_within(ex->layers[0].real, ex->layers[i].real) ||
		    path_within(ex->layers[i].real, ex->layers[0].real))
			return fail(err, errlen, "upperdir '%s' and lowerdir '%s' overlap",
				    conf->upperdir, ex->layers[i].path);
	return 0;
}

/*
 * A templated line: the parents of its upper and work templates must exist
 * and be writable by the owner (its instances' directories are created
 * there), on one filesystem, and no expansion may reach into a lower
 * layer. Layer 0 stands for the instances' uppers: fd -1, but the
 * filesystem slot is taken now, so an instance numbers its filesystems (and
 * so its handles and fileids) the same before and after its upper exists.
 */
static int open_template(struct onfs_export *ex, const struct onfs_export_conf *conf,
			 char *err, size_t errlen)
{
	struct onfs_layer *l = &ex->layers[0];
	const char *tmpl[2] = { conf->upperdir, conf->workdir };
	static const char *const what[2] = { "upperdir", "workdir" };
	char parent[PATH_MAX], real[2][PATH_MAX];
	struct stat st[2];
	size_t i;

	for (i = 0; i < 2; i++) {
		if (onfs_tmpl_parent(tmpl[i], parent, sizeof(parent)) < 0)
			return fail(err, errlen, "%s template '%s': no directory above its "
				    "placeholder", what[i], tmpl[i]);
		if (!realpath(parent, real[i]) || stat(real[i], &st[i]) < 0)
			return fail(err, errlen, "%s template '%s': parent directory '%s': %s",
				    what[i], tmpl[i], parent, strerror(errno));
		if (!S_ISDIR(st[i].st_mode))
			return fail(err, errlen, "%s template '%s': parent '%s' is not a directory",
				    what[i], tmpl[i], parent);
		/* as the owner (fsuid): AT_EACCESS checks the credentials in force */
		if (faccessat(AT_FDCWD, real[i], W_OK | X_OK, AT_EACCESS) < 0)
			return fail(err, errlen, "%s template '%s': parent '%s' is not writable by "
				    "the export's owner: %s", what[i], tmpl[i], parent,
				    strerror(errno));
	}
	if (st[0].st_dev != st[1].st_dev)
		return fail(err, errlen, "upperdir template '%s' and workdir template '%s' have "
			    "their parents on different filesystems", conf->upperdir, conf->workdir);
	ex->tmpl_parent_fd = open(real[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ex->tmpl_parent_fd < 0)
		return fail(err, errlen, "upperdir template '%s': parent '%s': %s", conf->upperdir,
			    real[0], strerror(errno));
	l->fd = -1;
	l->upper = true;
	l->path = strdup(conf->upperdir);
	l->real = strdup(real[0]);
	if (!l->path || !l->real)
		return fail(err, errlen, "out of memory");
	ex->nlayers = 1;
	ex->has_upper = true;
	ex->fs_dev[0] = st[0].st_dev;
	ex->fs_fd[0] = ex->tmpl_parent_fd;
	ex->numfs = 1;
	l->fsidx = 0;
	return 0;
}

/* No expansion of a template may be, hold or lie inside a lower layer. */
static int check_template_lowers(struct onfs_export *ex, const struct onfs_export_conf *conf,
				 char *err, size_t errlen)
{
	const char *tmpl[2] = { conf->upperdir, conf->workdir };
	char parent[PATH_MAX], real[PATH_MAX], exp[PATH_MAX * 2];

	for (size_t t = 0; t < 2; t++) {
		if (onfs_tmpl_parent(tmpl[t], parent, sizeof(parent)) < 0 ||
		    !realpath(parent, real))
			continue;
		/* the template with its parent resolved, as the lowers are */
		snprintf(exp, sizeof(exp), "%s%s", real, tmpl[t] + strlen(parent));
		for (size_t i = 1; i < ex->nlayers; i++)
			if (onfs_tmpl_may_overlap(exp, ex->layers[i].real))
				return fail(err, errlen, "%s template '%s' can expand to or around "
					    "lowerdir '%s'", t ? "workdir" : "upperdir", tmpl[t],
					    ex->layers[i].path);
	}
	return 0;
}

/* Can we decode handles (CAP_DAC_READ_SEARCH)? Try on the first layer root. */
static bool probe_by_handle(struct onfs_export *ex)
{
	const struct onfs_layer *l = &ex->layers[ex->layers[0].fd < 0 ? 1 : 0];
	struct onfs_ident id;
	int fd;

	if (onfs_fs_name_to_ident(l->fd, "", &id) < 0)
		return false;
	fd = onfs_fs_open_ident(ex->fs_fd[l->fsidx], &id, O_PATH);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int onfs_export_open(const struct onfs_export_conf *conf, const char *state_dir,
		     struct onfs_export **out, char *err, size_t errlen)
{
	struct onfs_export *ex;
	struct onfs_ident id;
	char dir[PATH_MAX];
	size_t i;
	int ret;

	if (conf->nlower == 0)
		return fail(err, errlen, "lowerdir: at least one lower layer is required");
	onfs_fd_budget_init();
	if (!conf->upperdir != !conf->workdir)
		return fail(err, errlen, "%s: upperdir and workdir go together",
			    conf->upperdir ? "workdir" : "upperdir");
	ex = calloc(1, sizeof(*ex));
	if (!ex)
		return fail(err, errlen, "out of memory");
	ex->lock_fd = -1;
	ex->work_fd = -1;
	ex->index_fd = -1;
	ex->tmpl_parent_fd = -1;
	atomic_init(&ex->base_version, 1);
	pthread_mutex_init(&ex->ns_lock, NULL);
	pthread_mutex_init(&ex->inst_lock, NULL);
	pthread_mutex_init(&ex->verf_lock, NULL);
	for (i = 0; i < ONFS_ARRAY_SIZE(ex->obj_lock); i++)
		pthread_mutex_init(&ex->obj_lock[i], NULL);
	onfs_attr_init_locks(ex);
	if (getrandom(ex->write_verf, sizeof(ex->write_verf), 0) != sizeof(ex->write_verf)) {
		free(ex);
		return fail(err, errlen, "cannot get random bytes for the write verifier");
	}
	ex->name = strdup(conf->name ? conf->name : "default");
	ex->path = strdup(conf->path ? conf->path : "/");
	if (!ex->name || !ex->path) {
		ret = fail(err, errlen, "out of memory");
		goto out_free;
	}
	if (onfs_owner_capture(&ex->owner, conf->owner, err, errlen) < 0)
		goto out_free;
	/* everything below touches the layers: as the owner */
	if (onfs_owner_enter(ex) < 0) {
		fail(err, errlen, "owner '%s': cannot switch credentials", conf->owner);
		goto out_free;
	}
	if (!conf->tmpl) {
		/* committed layers (commit.c) and base moves (base.c): STATE/exports/NAME/ */
		snprintf(dir, sizeof(dir), "%s/exports/%s/stack",
			 state_dir ? state_dir : ONFS_DEFAULT_STATE_DIR, ex->name);
		ex->stack_file = strdup(dir);
	}
	if (conf->tmpl) {
		if (open_template(ex, conf, err, errlen) < 0)
			goto out_free;
	} else if (conf->upperdir) {
		ex->has_upper = true;
		ex->inst_work = strdup(conf->workdir);
		if (!ex->stack_file || !ex->inst_work) {
			fail(err, errlen, "out of memory");
			goto out_free;
		}
		/* a commit cut short by a crash is finished before the upper is opened */
		if (onfs_commit_recover(ex, conf->upperdir, conf->workdir, err, errlen) < 0)
			goto out_free;
		if (open_layer(ex, conf->upperdir, true, "upperdir", err, errlen) < 0)
			goto out_free;
	}
	for (i = 0; i < conf->nlower; i++)
		if (open_layer(ex, conf->lowerdir[i], false, "lowerdir", err, errlen) < 0)
			goto out_free;
	if (conf->upperdir && !conf->tmpl && onfs_stack_open(ex, err, errlen) < 0)
		goto out_free;
	if (!conf->tmpl)
		onfs_base_load_root(ex);
	if (conf->tmpl ? check_template_lowers(ex, conf, err, errlen) < 0
		       : check_layers(ex, conf, err, errlen) < 0)
		goto out_free;
	for (i = 0; i < ex->nlayers; i++) {
		if (ex->layers[i].fd < 0)
			continue;
		ret = onfs_fs_name_to_ident(ex->layers[i].fd, "", &id);
		if (ret < 0) {
			fail(err, errlen, "%s '%s': filesystem cannot encode file handles (%s)",
			     ex->layers[i].upper ? "upperdir" : "lowerdir", ex->layers[i].path,
			     strerror(-ret));
			goto out_free;
		}
	}
	/*
	 * xino: with one filesystem, inode numbers are unique already; with
	 * several, the filesystem index goes into the high bits, as the kernel
	 * does with xino=auto: ino | fsidx << (65 - xino_bits), where xino_bits
	 * holds numfs - 1 plus one bit (docs/overlay.md, "Origins and inode numbers").
	 */
	if (ex->numfs > 1) {
		unsigned bits = 1;
		while ((1u << bits) <= ex->numfs - 1)
			bits++;
		ex->xino_shift = 64 - bits;
	}
	snprintf(ex->xattr_prefix, sizeof(ex->xattr_prefix), "%s",
		 geteuid() == 0 ? "trusted.overlay." : "user.overlay.");

	if (conf->tmpl) {
		/* the line's key: each instance's is derived from it and its value */
		struct onfs_export_conf line = *conf;
		line.workdir = NULL;
		ret = key_dir(&line, state_dir, dir, sizeof(dir));
	} else {
		ret = key_dir(conf, state_dir, dir, sizeof(dir));
	}
	if (ret == -EROFS && conf->workdir && !conf->tmpl) {
		/* a read-only upper filesystem: served read-only, key in the state dir */
		struct onfs_export_conf ro = *conf;
		ro.workdir = NULL;
		onfs_warn("export '%s': workdir '%s' is on a read-only filesystem; "
			  "keeping its handle key under the state directory", ex->name, conf->workdir);
		ret = key_dir(&ro, state_dir, dir, sizeof(dir));
	}
	if (ret < 0) {
		fail(err, errlen, "cannot create key directory '%s': %s", dir, strerror(-ret));
		goto out_free;
	}
	ret = load_or_create(dir, "handle-key", ex->key, sizeof(ex->key));
	if (ret == 0)
		ret = load_or_create(dir, "export-id", &ex->id, sizeof(ex->id));
	if (ret < 0) {
		fail(err, errlen, "cannot read or create the handle key in '%s': %s", dir,
		     strerror(-ret));
		goto out_free;
	}
	if (ex->id == 0)
		ex->id = 1;
	ex->fsid = onfs_siphash24(ex->key, "fsid", 4);
	ex->by_handle = probe_by_handle(ex);
	if (!ex->by_handle && conf->tmpl) {
		fail(err, errlen, "upperdir template '%s': per-client instances need kernel file "
		     "handles (CAP_DAC_READ_SEARCH); the rootless identity map is not per instance",
		     conf->upperdir);
		goto out_free;
	}
	if (!ex->by_handle && onfs_idmap_open(ex, dir, err, errlen) < 0)
		goto out_free;
	/* without CAP_CHOWN for the owner, client-visible owners go to an xattr */
	ex->no_chown = !(geteuid() == 0 && ex->owner.uid == 0);
	for (i = 0; i < ex->numfs; i++)
		onfs_upper_fs_uuid(ex->fs_fd[i], ex->fs_uuid[i]);
	if (conf->workdir && !conf->tmpl && onfs_workdir_setup(ex, conf->workdir, err, errlen) < 0)
		goto out_free;
	ex->readonly = !ex->has_upper || !ex->work_ok;
	ex->locks = onfs_lock_table_new((enum onfs_locking)conf->locking, free);
	if (!ex->locks || onfs_node_cache_new(&ex->nodes) < 0 ||
	    onfs_dir_cache_new(&ex->dirs) < 0 ||
	    /* a templated line's is shared by its instances (instance.c) */
	    onfs_dcache_new(&ex->dcache) < 0) {
		fail(err, errlen, "out of memory");
		goto out_free;
	}
	onfs_inst_reserve_id(ex->id);
	if (conf->tmpl) {
		if (onfs_inst_line_open(ex, conf, dir, err, errlen) < 0)
			goto out_free;
		onfs_info("export '%s' (%s): %zu lower layer(s), per-client upper template, "
			  "line id %u", ex->name, ex->path, ex->nlayers - 1, ex->id);
		*out = ex;
		return 0;
	}
	onfs_info("export '%s' (%s): %zu layer(s) on %zu filesystem(s), id %u, %s, handle mode: %s",
		  ex->name, ex->path, ex->nlayers, ex->numfs, ex->id,
		  !ex->has_upper ? "read-only (no upper layer)"
		  : ex->work_ok ? "read-write, work area scrubbed"
				: "READ-ONLY (work area not usable)",
		  ex->by_handle ? "kernel file handles (persistent across restarts)"
				: "rootless: no CAP_DAC_READ_SEARCH, handles resolved through the "
				  "persistent identity map");
	*out = ex;
	return 0;

out_free:
	onfs_export_close(ex);
	return -1;
}

void onfs_export_close(struct onfs_export *ex)
{
	size_t i;

	if (!ex)
		return;
	if (ex->tmpl)
		onfs_inst_line_close(ex);
	if (ex->tmpl_parent_fd >= 0)
		close(ex->tmpl_parent_fd);
	onfs_dir_cache_free(ex->dirs);
	onfs_node_cache_free(ex->nodes);
	onfs_dcache_free(ex->dcache);
	onfs_lock_table_free(ex->locks);
	onfs_attr_destroy_locks(ex);
	onfs_idmap_close(ex);
	for (i = 0; i < ex->nlayers; i++) {
		if (ex->layers[i].fd >= 0)
			close(ex->layers[i].fd);
		free(ex->layers[i].path);
		free(ex->layers[i].real);
		free(ex->layers[i].moved);
	}
	if (ex->lock_fd >= 0)
		close(ex->lock_fd);
	if (ex->work_fd >= 0)
		close(ex->work_fd);
	if (ex->index_fd >= 0)
		close(ex->index_fd);
	onfs_base_free(ex);
	free(ex->stack_file);
	free(ex->inst_work);
	free(ex->name);
	free(ex->path);
	free(ex);
}

const char *onfs_export_path(const struct onfs_export *ex) { return ex->path; }
const char *onfs_export_name(const struct onfs_export *ex) { return ex->name; }
uint16_t onfs_export_id(const struct onfs_export *ex) { return ex->id; }
uint64_t onfs_export_fsid(const struct onfs_export *ex) { return ex->fsid; }
bool onfs_export_readonly(const struct onfs_export *ex) { return ex->readonly; }

uint64_t onfs_export_fileid(const struct onfs_export *ex, uint8_t fsidx, uint64_t ino)
{
	if (ex->xino_shift == 0 || fsidx == 0)
		return ino;
	return ino | ((uint64_t)fsidx << ex->xino_shift);
}

void onfs_ovl_xattr(const struct onfs_export *ex, const char *attr, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", ex->xattr_prefix, attr);
}
