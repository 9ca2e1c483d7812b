/*
 * commit.c - operations on a whole layer stack (docs/instances.md,
 * docs/operating.md): reset of a plain export, commit of an upper into a
 * new read-only layer, and the stack of committed layers an export or
 * instance carries from then on.
 *
 * Reset of a plain export: an empty directory is built in
 * workdir/ovlnfsd/trash and exchanged with the upper in one
 * renameat2(RENAME_EXCHANGE): the old upper is in the trash, the upper
 * path never missing. index/ follows it into the trash (a crash between
 * the two leaves an index whose "upper" mark names another directory: the
 * work-area setup moves it away, workdir.c).
 *
 * Commit: the upper is renamed to LAYERS/LAYER (one filesystem: a
 * rename, whatever the size) and a fresh upper takes its place. The steps
 * are written first to workdir/ovlnfsd/commit (a journal, fsync'ed and
 * renamed into place); each step is idempotent, and a server killed in
 * the middle rolls the journal forward before it opens the upper again.
 * The stack of committed layers lives in the state directory
 * (STATE/exports/NAME/stack, STATE/exports/LINE/stack-VALUE for an
 * instance), one "layer PATH" line per layer, top first.
 *
 * Objects keep their handles and fileids across a commit: a committed
 * layer counts for identities as it did when it was the upper (lookup.c,
 * ONFS_LAYER_WAS_UPPER), and the kernel file handle of an object created
 * in the upper does not change when its directory is renamed.
 *
 * Threads: pool workers (the control socket's requests) and, for the
 * recovery and the stack, the thread that opens an export or activates
 * an instance. The caller holds inst_lock with no call inside (quiesce).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "internal.h"

#define JOURNAL "ovlnfsd/commit"

/* Write text to path atomically: temp file, fsync, rename, fsync of the directory. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX + 32], dir[PATH_MAX];
	size_t len = strlen(text);
	char *slash;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* The whole of a small text file, NUL-terminated; -errno. */
static int read_text(const char *path, struct onfs_buf *b)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		char chunk[1024];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		onfs_buf_printf(b, "%.*s", (int)n, chunk);
	}
	close(fd);
	if (!b->p)
		onfs_buf_printf(b, "%s", "");
	return b->oom ? -ENOMEM : 0;
}

/* --- the stack of committed layers --- */

static int insert_layer(struct onfs_export *ex, size_t pos, const char *path, char *err,
			size_t errlen)
{
	struct onfs_layer l = { 0 };
	char real[PATH_MAX];
	struct stat st;

	if (ex->nlayers >= ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "committed layer '%s': more than %d layers", path,
			 ONFS_MAX_LAYERS);
		return -1;
	}
	if (!realpath(path, real)) {
		snprintf(err, errlen, "committed layer '%s': %s", path, strerror(errno));
		return -1;
	}
	l.fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l.fd < 0 || fstat(l.fd, &st) < 0) {
		snprintf(err, errlen, "committed layer '%s': %s", path, strerror(errno));
		if (l.fd >= 0)
			close(l.fd);
		return -1;
	}
	/* handles carry a filesystem index: a committed layer is on the upper's */
	if (st.st_dev != ex->fs_dev[ex->layers[0].fsidx]) {
		snprintf(err, errlen, "committed layer '%s' is not on the filesystem of the "
			 "upper layer", path);
		close(l.fd);
		return -1;
	}
	l.path = strdup(path);
	l.real = strdup(real);
	if (!l.path || !l.real) {
		free(l.path);
		free(l.real);
		close(l.fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	l.fsidx = ex->layers[0].fsidx;
	l.committed = true;
	memmove(&ex->layers[pos + 1], &ex->layers[pos], (ex->nlayers - pos) * sizeof(l));
	ex->layers[pos] = l;
	ex->nlayers++;
	return 0;
}

int onfs_stack_open(struct onfs_export *ex, char *err, size_t errlen)
{
	struct onfs_buf b = { 0 };
	size_t pos = 1;
	char *save = NULL, *line;
	int r;

	if (!ex->stack_file)
		return 0;
	r = read_text(ex->stack_file, &b);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		snprintf(err, errlen, "layer stack '%s': %s", ex->stack_file, strerror(-r));
		free(b.p);
		return -1;
	}
	for (line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "layer /", 7) != 0) {
			onfs_warn("layer stack '%s': ignored line '%.80s'", ex->stack_file, line);
			continue;
		}
		if (insert_layer(ex, pos, line + 6, err, errlen) < 0) {
			free(b.p);
			return -1;
		}
		pos++;
	}
	free(b.p);
	return 0;
}

void onfs_stack_close(struct onfs_export *ex)
{
	for (size_t i = ex->nlayers; i-- > 0;) {
		if (!ex->layers[i].committed)
			continue;
		if (ex->layers[i].fd >= 0)
			close(ex->layers[i].fd);
		free(ex->layers[i].path);
		free(ex->layers[i].real);
		memmove(&ex->layers[i], &ex->layers[i + 1],
			(ex->nlayers - i - 1) * sizeof(ex->layers[0]));
		ex->nlayers--;
		memset(&ex->layers[ex->nlayers], 0, sizeof(ex->layers[0]));
	}
}

/* --- commit: the journal and its steps --- */

/* Make the parents of the stack file (the state directory's exports/NAME). */
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

/*
 * Every step once, whatever was done before a crash: the upper becomes
 * dst, fresh (or a new directory) the upper, index/ goes to the trash,
 * dst goes on top of the stack file, the base record is dropped (recorded
 * again against the new stack), and last the journal goes.
 */
static int roll_forward(struct onfs_export *ex, const char *upper, const char *work,
			const char *dst, const char *fresh, char *err, size_t errlen)
{
	char path[PATH_MAX + 64], trash[PATH_MAX + 32], ix[PATH_MAX + 96], want[PATH_MAX + 16];
	struct onfs_buf stack = { 0 }, text = { 0 };
	struct stat st;
	int r;

	if (lstat(dst, &st) < 0 && errno == ENOENT && rename(upper, dst) < 0) {
		snprintf(err, errlen, "cannot rename upper '%s' to '%s': %s", upper, dst,
			 strerror(errno));
		return -errno;
	}
	if (lstat(upper, &st) < 0 && errno == ENOENT && rename(fresh, upper) < 0) {
		struct stat ds;

		if (errno != ENOENT || stat(dst, &ds) < 0 || mkdir(upper, ds.st_mode & 07777) < 0) {
			snprintf(err, errlen, "cannot put a new upper at '%s': %s", upper,
				 strerror(errno));
			return -errno;
		}
		if (chown(upper, ds.st_uid, ds.st_gid) < 0)
			onfs_debug("commit: chown of the new upper '%s': %s", upper, strerror(errno));
	}
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", work);
	mkdir(trash, 0700);
	onfs_trash_name(ex, trash, ix, sizeof(ix), "index");
	snprintf(path, sizeof(path), "%s/index", work);
	if (rename(path, ix) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot move '%s' to '%s': %s", path, ix, strerror(errno));
		return -errno;
	}
	snprintf(want, sizeof(want), "layer %s\n", dst);
	r = read_text(ex->stack_file, &stack);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "layer stack '%s': %s", ex->stack_file, strerror(-r));
		free(stack.p);
		return r;
	}
	if (!stack.p || strncmp(stack.p, want, strlen(want)) != 0) {
		onfs_buf_printf(&text, "%s%s", want, stack.p ? stack.p : "");
		mkdir_parents(ex->stack_file);
		r = text.oom ? -ENOMEM : write_atomic(ex->stack_file, text.p);
		free(text.p);
		if (r < 0) {
			snprintf(err, errlen, "cannot write layer stack '%s': %s", ex->stack_file,
				 strerror(-r));
			free(stack.p);
			return r;
		}
	}
	free(stack.p);
	snprintf(path, sizeof(path), "%s/ovlnfsd/base", work);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" JOURNAL, work);
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the commit journal '%s': %s", path,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

int onfs_commit_recover(struct onfs_export *ex, const char *upper, const char *work, char *err,
			size_t errlen)
{
	char path[PATH_MAX + 32], *dst, *fresh, *nl;
	struct onfs_buf j = { 0 };
	int r;

	if (!work || !ex->stack_file)
		return 0;
	snprintf(path, sizeof(path), "%s/" JOURNAL, work);
	r = read_text(path, &j);
	/* no journal (or no work area at all: its setup says why, later) */
	if (r == -ENOENT || r == -ENOTDIR) {
		free(j.p);
		return 0;
	}
	dst = j.p ? strstr(j.p, "layer ") : NULL;
	fresh = j.p ? strstr(j.p, "\nfresh ") : NULL;
	if (r < 0 || !dst || dst != j.p || !fresh) {
		snprintf(err, errlen, "commit journal '%s' unreadable: %s", path,
			 r < 0 ? strerror(-r) : "bad format");
		free(j.p);
		return -1;
	}
	*fresh = '\0';
	dst += 6;
	fresh += 7;
	nl = strchr(fresh, '\n');
	if (nl)
		*nl = '\0';
	onfs_warn("export '%s': finishing a commit cut short (journal '%s'): layer '%s'",
		  ex->name, path, dst);
	r = roll_forward(ex, upper, work, dst, fresh, err, errlen);
	free(j.p);
	return r < 0 ? -1 : 0;
}

static bool layer_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Is a (a real path) b or below it? */
static bool within(const char *a, const char *b)
{
	size_t lb = strlen(b);

	return strncmp(a, b, lb) == 0 && (a[lb] == '\0' || a[lb] == '/');
}

int onfs_commit_disk(struct onfs_export *ex, const char *upper, const char *work,
		     const char *layers_dir, const char *layer, char *err, size_t errlen)
{
	char dst[PATH_MAX], fresh[PATH_MAX + 96], trash[PATH_MAX + 32], jp[PATH_MAX + 32];
	char rl[PATH_MAX], ru[PATH_MAX], rw[PATH_MAX], owner[64];
	struct onfs_buf j = { 0 }, stack = { 0 };
	struct stat ls, us, st;
	struct timespec times[2];
	size_t ncommitted = 0;
	ssize_t on;
	int r;

	if (!layers_dir) {
		snprintf(err, errlen, "no layers directory configured ('layers = DIR' in the "
			 "[server] section of the config file)");
		return -EINVAL;
	}
	if (!layer_name_ok(layer)) {
		snprintf(err, errlen, "'%s' is not a layer name (1-128 of A-Z a-z 0-9 . _ -)",
			 layer);
		return -EINVAL;
	}
	if (!ex->by_handle || !work || !ex->stack_file) {
		snprintf(err, errlen, "'%s': commit needs kernel file handles "
			 "(CAP_DAC_READ_SEARCH) and a work area", ex->name);
		return -EINVAL;
	}
	if (!realpath(layers_dir, rl) || stat(rl, &ls) < 0 || !S_ISDIR(ls.st_mode)) {
		snprintf(err, errlen, "layers directory '%s': %s", layers_dir,
			 errno ? strerror(errno) : "not a directory");
		return -ENOENT;
	}
	if (!realpath(upper, ru) || stat(ru, &us) < 0 || !realpath(work, rw)) {
		snprintf(err, errlen, "upper '%s': %s", upper, strerror(errno));
		return -ENOENT;
	}
	if (ls.st_dev != us.st_dev) {
		snprintf(err, errlen, "layers directory '%s' is on another filesystem than the "
			 "upper '%s': a commit renames the upper, it never copies it", layers_dir,
			 upper);
		return -EXDEV;
	}
	if (within(rl, ru) || within(rl, rw) || within(ru, rl)) {
		snprintf(err, errlen, "layers directory '%s' overlaps the upper '%s' or the "
			 "workdir '%s'", layers_dir, upper, work);
		return -EINVAL;
	}
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", rl, layer) >= sizeof(dst)) {
		snprintf(err, errlen, "layer path too long");
		return -ENAMETOOLONG;
	}
	if (lstat(dst, &st) == 0 || errno != ENOENT) {
		snprintf(err, errlen, "layer '%s' already exists", dst);
		return -EEXIST;
	}
	if (read_text(ex->stack_file, &stack) == 0)
		for (const char *p = stack.p; (p = strstr(p, "layer ")); p++)
			ncommitted++;
	free(stack.p);
	/* an instance is dormant here: its layers are the line's, without its stack */
	if (ex->nlayers + (ex->line ? ncommitted : 0) + 1 > ONFS_MAX_LAYERS) {
		snprintf(err, errlen, "'%s' has %d layers already", ex->name, ONFS_MAX_LAYERS);
		return -ENOSPC;
	}
	/* the fresh upper root looks like the old one: mode, owner, times */
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", work);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create '%s': %s", trash, strerror(errno));
		return -errno;
	}
	onfs_trash_name(ex, trash, fresh, sizeof(fresh), "fresh");
	if (mkdir(fresh, us.st_mode & 07777) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", fresh, strerror(errno));
		return -errno;
	}
	if (chmod(fresh, us.st_mode & 07777) < 0 ||
	    ((us.st_uid != ex->owner.uid || us.st_gid != ex->owner.gid) &&
	     chown(fresh, us.st_uid, us.st_gid) < 0 && !ex->no_chown))
		onfs_debug("commit: attributes of '%s': %s", fresh, strerror(errno));
	on = getxattr(ru, ONFS_OWNER_XATTR, owner, sizeof(owner));
	if (on > 0)
		setxattr(fresh, ONFS_OWNER_XATTR, owner, (size_t)on, 0);
	times[0] = us.st_atim;
	times[1] = us.st_mtim;
	utimensat(AT_FDCWD, fresh, times, 0);

	onfs_buf_printf(&j, "layer %s\nfresh %s\n", dst, fresh);
	snprintf(jp, sizeof(jp), "%s/" JOURNAL, work);
	r = j.oom ? -ENOMEM : write_atomic(jp, j.p);
	free(j.p);
	if (r < 0) {
		rmdir(fresh);
		snprintf(err, errlen, "cannot write the commit journal '%s': %s", jp, strerror(-r));
		return r;
	}
	r = roll_forward(ex, upper, work, dst, fresh, err, errlen);
	if (r == 0)
		onfs_info("export '%s': committed: upper '%s' is now layer '%s' (top lower), a "
			  "new empty upper in its place", ex->name, upper, dst);
	return r;
}

/* --- plain exports --- */

/* The upper root (layers[0].fd keeps its number: fs_fd[] may point at it). */
static int reopen_upper(struct onfs_export *ex, char *err, size_t errlen)
{
	int fd = open(ex->layers[0].real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || dup3(fd, ex->layers[0].fd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot open the new upper '%s': %s", ex->layers[0].real,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Quiesce a plain export (inst_lock taken); 0 or -errno with err. */
static int plain_begin(struct onfs_export *ex, const char *what, char *err, size_t errlen)
{
	int r;

	if (!ex->has_upper || ex->layers[0].fd < 0) {
		snprintf(err, errlen, "'%s' has no upper layer: nothing to %s", ex->name, what);
		return -EINVAL;
	}
	if (!ex->work_ok || !ex->inst_work) {
		snprintf(err, errlen, "'%s' is read-only (its work area is not usable)", ex->name);
		return -EROFS;
	}
	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': calls did not drain within 30 s", ex->name);
		return -EAGAIN;
	}
	r = onfs_owner_enter(ex);
	if (r < 0) {
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': cannot take the owner's credentials: %s", ex->name,
			 strerror(-r));
	}
	return r;
}

/* The new stack is in place: index, marks, base record, and every cache void. */
static void plain_end(struct onfs_export *ex)
{
	char why[PATH_MAX + 128] = "";

	if (onfs_workdir_renew(ex, why, sizeof(why)) < 0) {
		onfs_err("export '%s' is now READ-ONLY: %s", ex->name, why);
		ex->readonly = true;
	}
	onfs_export_caches_flush(ex);
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
}

int onfs_reset_plain(struct onfs_export *ex, char *err, size_t errlen)
{
	char trash[PATH_MAX + 32], up[PATH_MAX + 96], ix[PATH_MAX + 96], p[PATH_MAX + 32];
	struct stat lst;
	int r, fd;

	r = plain_begin(ex, "reset", err, errlen);
	if (r < 0)
		return r;
	/* the pristine root: the top lower root's mode and owner, as a new upper's */
	if (fstat(ex->layers[1].fd, &lst) < 0)
		lst.st_mode = S_IFDIR | 0755;
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", ex->inst_work);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", trash, strerror(errno));
		goto out_unlock;
	}
	onfs_trash_name(ex, trash, up, sizeof(up), "upper");
	if (mkdir(up, lst.st_mode & 07777) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", up, strerror(errno));
		goto out_unlock;
	}
	fd = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (lst.st_uid != ex->owner.uid || lst.st_gid != ex->owner.gid)
			if (fchown(fd, lst.st_uid, lst.st_gid) < 0 && ex->no_chown)
				onfs_upper_set_owner(fd, "", lst.st_uid, lst.st_gid, lst.st_mode);
		if (fchmod(fd, lst.st_mode & 07777) < 0)
			onfs_debug("reset: chmod of '%s': %s", up, strerror(errno));
		close(fd);
	}
	/* the one step the clients see: the upper path never goes missing */
	if (renameat2(AT_FDCWD, up, AT_FDCWD, ex->layers[0].real, RENAME_EXCHANGE) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot exchange '%s' with the upper '%s': %s", up,
			 ex->layers[0].real, strerror(errno));
		rmdir(up);
		goto out_unlock;
	}
	onfs_trash_name(ex, trash, ix, sizeof(ix), "index");
	snprintf(p, sizeof(p), "%s/index", ex->inst_work);
	if (rename(p, ix) < 0 && errno != ENOENT)
		onfs_warn("export '%s': reset: cannot move '%s' to the trash: %s", ex->name, p,
			  strerror(errno));
	/* the next base record is taken against the layers as they are now */
	snprintf(p, sizeof(p), "%s/ovlnfsd/base", ex->inst_work);
	unlink(p);
	if (reopen_upper(ex, err, errlen) < 0) {
		r = -EIO;
		ex->readonly = true;
	}
	onfs_info("export '%s': reset: upper moved to '%s', emptied in the background", ex->name,
		  up);
	plain_end(ex);
	return r;
out_unlock:
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return r;
}

int onfs_layers_commit(struct onfs_export *ex, const char *layers_dir, const char *layer,
		       char *err, size_t errlen)
{
	char dst[PATH_MAX + 8], real[PATH_MAX], jp[PATH_MAX + 32];
	struct stat st;
	int r;

	if (ex->tmpl) {
		snprintf(err, errlen, "'%s' is a templated line: name one of its instances "
			 "(EXPORT/INSTANCE, see list)", ex->name);
		return -EINVAL;
	}
	if (ex->line)
		return onfs_instance_commit(ex, layers_dir, layer, err, errlen);
	r = plain_begin(ex, "commit", err, errlen);
	if (r < 0)
		return r;
	r = onfs_commit_disk(ex, ex->layers[0].path, ex->inst_work, layers_dir, layer, err,
			     errlen);
	if (r < 0) {
		snprintf(jp, sizeof(jp), "%s/" JOURNAL, ex->inst_work);
		if (stat(jp, &st) == 0) {
			/* half done: nothing more is written until a restart finishes it */
			onfs_err("export '%s' is now READ-ONLY: commit cut short (%s); the next "
				 "start finishes it", ex->name, err);
			ex->readonly = true;
		}
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
		return r;
	}
	snprintf(dst, sizeof(dst), "%s/%s", realpath(layers_dir, real) ? real : layers_dir,
		 layer);
	if (reopen_upper(ex, err, errlen) < 0 || insert_layer(ex, 1, dst, err, errlen) < 0) {
		onfs_err("export '%s' is now READ-ONLY: after its commit: %s", ex->name, err);
		ex->readonly = true;
		r = -EIO;
	}
	plain_end(ex);
	return r;
}
