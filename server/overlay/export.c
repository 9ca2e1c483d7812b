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
#include "internal.h"

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

/* Can we decode handles (CAP_DAC_READ_SEARCH)? Try on the first layer root. */
static bool probe_by_handle(struct onfs_export *ex)
{
	struct onfs_ident id;
	int fd;

	if (onfs_fs_name_to_ident(ex->layers[0].fd, "", &id) < 0)
		return false;
	fd = onfs_fs_open_ident(ex->fs_fd[ex->layers[0].fsidx], &id, O_PATH);
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
	pthread_mutex_init(&ex->ns_lock, NULL);
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
	if (conf->upperdir) {
		ex->has_upper = true;
		if (open_layer(ex, conf->upperdir, true, "upperdir", err, errlen) < 0)
			goto out_free;
	}
	for (i = 0; i < conf->nlower; i++)
		if (open_layer(ex, conf->lowerdir[i], false, "lowerdir", err, errlen) < 0)
			goto out_free;
	if (check_layers(ex, conf, err, errlen) < 0)
		goto out_free;
	for (i = 0; i < ex->nlayers; i++) {
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
	 * holds numfs - 1 plus one bit (OVERLAY.md rule 42).
	 */
	if (ex->numfs > 1) {
		unsigned bits = 1;
		while ((1u << bits) <= ex->numfs - 1)
			bits++;
		ex->xino_shift = 64 - bits;
	}
	snprintf(ex->xattr_prefix, sizeof(ex->xattr_prefix), "%s",
		 geteuid() == 0 ? "trusted.overlay." : "user.overlay.");

	ret = key_dir(conf, state_dir, dir, sizeof(dir));
	if (ret == -EROFS && conf->workdir) {
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
	if (!ex->by_handle && onfs_idmap_open(ex, dir, err, errlen) < 0)
		goto out_free;
	/* without CAP_CHOWN for the owner, client-visible owners go to an xattr */
	ex->no_chown = !(geteuid() == 0 && ex->owner.uid == 0);
	for (i = 0; i < ex->numfs; i++)
		onfs_upper_fs_uuid(ex->fs_fd[i], ex->fs_uuid[i]);
	if (conf->workdir && onfs_workdir_setup(ex, conf->workdir, err, errlen) < 0)
		goto out_free;
	ex->readonly = !ex->has_upper || !ex->work_ok;
	if (onfs_node_cache_new(&ex->nodes) < 0 || onfs_dir_cache_new(&ex->dirs) < 0) {
		fail(err, errlen, "out of memory");
		goto out_free;
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
	onfs_dir_cache_free(ex->dirs);
	onfs_node_cache_free(ex->nodes);
	onfs_attr_destroy_locks(ex);
	onfs_idmap_close(ex);
	for (i = 0; i < ex->nlayers; i++) {
		if (ex->layers[i].fd >= 0)
			close(ex->layers[i].fd);
		free(ex->layers[i].path);
		free(ex->layers[i].real);
	}
	if (ex->lock_fd >= 0)
		close(ex->lock_fd);
	if (ex->work_fd >= 0)
		close(ex->work_fd);
	if (ex->index_fd >= 0)
		close(ex->index_fd);
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
