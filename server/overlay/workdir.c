/*
 * workdir.c - the export's work area (docs/architecture.md, "The work area"): the exclusive lock that
 * keeps a second server (or a live kernel overlay) off the same upper and
 * work directories, and the startup scrub of workdir/work.
 *
 * Runs once per export on the main thread at startup, before serving.
 * The scrub follows the kernel's ovl_workdir_cleanup:
 * entries of work/ are unlinked or removed; a directory that will not go
 * is emptied one level further down, where only non-directories and
 * empty directories are removed. If that is not enough, the export is
 * served read-only and the log names the path and the reason; other
 * exports carry on. It never touches workdir/index or a layer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "internal.h"

/*
 * A scrub that runs longer than a second (a crash left a big tree in
 * work/) says how far it is every few seconds: entries done, rate.
 * Startup (main thread), a reload (loop thread), or a per-client
 * instance's first use (a worker: several at once), so the progress state
 * is per thread.
 * ONFS_PROGRESS_MS=N in the environment sets both the second and the
 * few seconds to N ms (tests use 0 to see the lines on a small tree).
 */
static _Thread_local struct {
	const char *path;
	unsigned long long done;
	double t0, last;
	double after, every; /* seconds */
} scrub_pr;

static double scrub_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void scrub_progress(bool end)
{
	double now, el;

	if (!end && ++scrub_pr.done % 256 != 0)
		return; /* the clock only every 256 entries */
	now = scrub_now();
	el = now - scrub_pr.t0;
	if (el < scrub_pr.after || (!end && now - scrub_pr.last < scrub_pr.every))
		return;
	scrub_pr.last = now;
	onfs_info("scrub of '%s'%s: %llu entries done in %.1f s (%.0f/s)", scrub_pr.path,
		  end ? " finished" : "", scrub_pr.done, el,
		  el > 0 ? (double)scrub_pr.done / el : 0.0);
}

/* Remove every entry of dirfd; depth 0 is work/ itself. */
static int scrub_dir(int dirfd, int depth, char *why, size_t whylen, const char *path)
{
	DIR *d;
	struct dirent *e;
	int fd, ret = 0;

	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		char sub[PATH_MAX + NAME_MAX + 2];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		scrub_progress(false);
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT) {
				ret = -errno;
				snprintf(why, whylen, "cannot remove '%.3000s': %s", sub, strerror(errno));
			}
			continue;
		}
		if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			continue;
		if (depth >= 1) {
			/* the kernel's limit: a non-empty directory this deep stays */
			ret = -errno;
			snprintf(why, whylen, "cannot remove '%.3000s': %s", sub, strerror(errno));
			continue;
		}
		int sfd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0) {
			ret = -errno;
			snprintf(why, whylen, "cannot open '%.3000s': %s", sub, strerror(errno));
			continue;
		}
		int r = scrub_dir(sfd, depth + 1, why, whylen, sub);
		close(sfd);
		if (r < 0) {
			ret = r;
			continue;
		}
		if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			ret = -errno;
			snprintf(why, whylen, "cannot remove '%.3000s': %s", sub, strerror(errno));
		}
	}
	closedir(d);
	return ret;
}

/* Is a kernel overlay mounted with this upper or work directory? */
static bool kernel_overlay_uses(const char *upper, const char *work)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], opt[PATH_MAX + 16];
	bool busy = false;

	if (!f)
		return false;
	while (!busy && fgets(line, sizeof(line), f)) {
		const char *dash = strstr(line, " - overlay ");
		if (!dash)
			continue;
		snprintf(opt, sizeof(opt), "upperdir=%s,", upper);
		busy = strstr(dash, opt) != NULL;
		snprintf(opt, sizeof(opt), "upperdir=%s\n", upper);
		busy = busy || strstr(dash, opt) != NULL;
		snprintf(opt, sizeof(opt), "workdir=%s,", work);
		busy = busy || strstr(dash, opt) != NULL;
		snprintf(opt, sizeof(opt), "workdir=%s\n", work);
		busy = busy || strstr(dash, opt) != NULL;
	}
	fclose(f);
	return busy;
}

/*
 * What the kernel writes at its first index=on mount (docs/overlay.md, "The index"):
 * origin = the top lower root on the upper root, upper = the upper root on
 * index/. Written once when absent, so either side can mount the pair.
 */
static void mark_first_start(struct onfs_export *ex)
{
	uint8_t fb[21 + ONFS_FID_MAX], cur[21 + ONFS_FID_MAX];
	char attr[64];
	struct onfs_ident id = { 0 };
	size_t n;

	onfs_ovl_xattr(ex, "origin", attr, sizeof(attr));
	if (onfs_fs_getxattr(ex->layers[0].fd, attr, (char *)cur, sizeof(cur)) < 0 &&
	    onfs_fs_name_to_ident(ex->layers[1].fd, "", &id) == 0) {
		id.fsidx = ex->layers[1].fsidx;
		n = onfs_upper_encode_fb(ex, &id, false, fb);
		onfs_upper_set_ovl(ex, ex->layers[0].fd, "origin", fb, n);
	}
	onfs_ovl_xattr(ex, "upper", attr, sizeof(attr));
	if (onfs_fs_getxattr(ex->index_fd, attr, (char *)cur, sizeof(cur)) < 0 &&
	    onfs_fs_name_to_ident(ex->layers[0].fd, "", &id) == 0) {
		id.fsidx = ex->layers[0].fsidx;
		n = onfs_upper_encode_fb(ex, &id, true, fb);
		onfs_upper_set_ovl(ex, ex->index_fd, "upper", fb, n);
	}
}

/* Does the directory hold nothing but "." and ".."? (errors: not empty) */
static bool dir_empty(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	bool empty = true;
	DIR *d;

	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	while (empty && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

/*
 * index/ names its upper root ("upper" mark, mark_first_start). One that
 * names another directory is the index of an upper that a reset or commit
 * swapped out just before a crash (commit.c): it goes to the trash and a
 * fresh one takes its place, as the kernel refuses such a pair.
 */
static void index_check_owner(struct onfs_export *ex, const char *real)
{
	uint8_t fb[21 + ONFS_FID_MAX], cur[21 + ONFS_FID_MAX];
	char attr[64], from[PATH_MAX + 16], trash[PATH_MAX + 32], to[PATH_MAX + 96];
	struct onfs_ident id = { 0 };
	size_t n;
	int len;

	onfs_ovl_xattr(ex, "upper", attr, sizeof(attr));
	len = onfs_fs_getxattr(ex->index_fd, attr, (char *)cur, sizeof(cur));
	if (len <= 0 || onfs_fs_name_to_ident(ex->layers[0].fd, "", &id) < 0)
		return;
	id.fsidx = ex->layers[0].fsidx;
	n = onfs_upper_encode_fb(ex, &id, true, fb);
	if ((size_t)len == n && memcmp(cur, fb, n) == 0)
		return;
	snprintf(from, sizeof(from), "%s/index", real);
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", real);
	mkdir(trash, 0700);
	onfs_trash_name(ex, trash, to, sizeof(to), "index");
	if (rename(from, to) < 0) {
		onfs_warn("export '%s': '%s' belongs to another upper; cannot move it away: %s",
			  ex->name, from, strerror(errno));
		return;
	}
	onfs_warn("export '%s': '%s' belonged to another upper (a reset or commit cut short): "
		  "moved to '%s'", ex->name, from, to);
	close(ex->index_fd);
	ex->index_fd = -1;
	if (mkdir(from, ex->owner.uid == 0 ? 0 : 0700) == 0 || errno == EEXIST)
		ex->index_fd = open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ex->index_fd < 0) {
		onfs_err("export '%s' will be served READ-ONLY: cannot create '%s': %s", ex->name,
			 from, strerror(errno));
		ex->work_ok = false;
	}
}

/*
 * May copy-ups build regular files unnamed (copyup.c)? Only if work/ has
 * O_TMPFILE and such a file, once owned by a client, can be linked into
 * place through /proc/self/fd (fs.protected_hardlinks, a security module
 * or a missing /proc could refuse it). A refusal found here costs nothing;
 * found at a copy-up it would fail that copy-up. Otherwise named temps.
 */
static void probe_tmpfile(struct onfs_export *ex)
{
	char name[32];
	int fd = onfs_upper_tmpfile(ex, 0), r = 0;

	if (fd < 0) {
		onfs_info("export '%s': copy-ups use named temps in work/ (no O_TMPFILE: %s)",
			  ex->name, strerror(-fd));
		atomic_store(&ex->no_tmpfile, true);
		return;
	}
	onfs_upper_tmpname(ex, name, sizeof(name));
	if (!ex->no_chown && fchown(fd, 65534, 65534) < 0)
		r = -errno;
	if (r == 0)
		r = onfs_upper_link_tmpfile(fd, ex->work_fd, name);
	if (r < 0) {
		onfs_info("export '%s': copy-ups use named temps in work/ (an unnamed file "
			  "cannot be linked into place: %s)", ex->name, strerror(-r));
		atomic_store(&ex->no_tmpfile, true);
	} else {
		onfs_upper_unlink(ex->work_fd, name, 0);
	}
	close(fd);
}

int onfs_workdir_renew(struct onfs_export *ex, char *why, size_t whylen)
{
	int wfd = openat(ex->work_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (wfd < 0) {
		snprintf(why, whylen, "cannot open the work directory: %s", strerror(errno));
		return -1;
	}
	if (ex->index_fd >= 0)
		close(ex->index_fd);
	ex->index_fd = -1;
	if (mkdirat(wfd, "index", ex->owner.uid == 0 ? 0 : 0700) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "cannot create index/: %s", strerror(errno));
		close(wfd);
		return -1;
	}
	ex->index_fd = openat(wfd, "index", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ex->index_fd < 0) {
		snprintf(why, whylen, "cannot open index/: %s", strerror(errno));
		close(wfd);
		return -1;
	}
	atomic_store(&ex->index_used, !dir_empty(ex->index_fd));
	mark_first_start(ex);
	onfs_base_check(ex, wfd);
	close(wfd);
	return 0;
}

int onfs_workdir_setup(struct onfs_export *ex, const char *workdir, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], real[PATH_MAX], why[PATH_MAX + 128];
	int wfd, fd, ret;
	const char *test_no_tmpfile;

	if (!realpath(workdir, real)) {
		snprintf(err, errlen, "workdir '%s': %s", workdir, strerror(errno));
		return -1;
	}
	if (kernel_overlay_uses(ex->layers[0].real, real)) {
		snprintf(err, errlen, "upperdir '%s' / workdir '%s' are in use by a mounted kernel overlay",
			 ex->layers[0].path, workdir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ovlnfsd/lock", real);
	ex->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (ex->lock_fd < 0 && (errno == EROFS || errno == ENOENT)) {
		/* nobody can change a read-only filesystem: no lock, no writes */
		int e = errno;
		snprintf(why, sizeof(why), "cannot open '%s': %s", path, strerror(e));
		goto out_ro;
	}
	if (ex->lock_fd < 0) {
		snprintf(err, errlen, "cannot open lock file '%s': %s", path, strerror(errno));
		return -1;
	}
	if (flock(ex->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char holder[32] = "";
		ssize_t n = pread(ex->lock_fd, holder, sizeof(holder) - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		snprintf(err, errlen, "workdir '%s' is in use by another ovlnfsd (pid %s)", workdir,
			 holder[0] ? holder : "unknown");
		return -1;
	}
	{
		char pid[32];
		int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (ftruncate(ex->lock_fd, 0) < 0 || pwrite(ex->lock_fd, pid, (size_t)len, 0) != len)
			onfs_warn("cannot record our pid in '%s': %s", path, strerror(errno));
	}

	/* the scrub: failure makes this export read-only, never fatal */
	why[0] = '\0';
	wfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0) {
		snprintf(why, sizeof(why), "cannot open '%s': %s", real, strerror(errno));
		goto out_ro;
	}
	fd = openat(wfd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* as the kernel: mode 0000 (root needs no permission bits) */
		if (mkdirat(wfd, "work", ex->owner.uid == 0 ? 0 : 0700) < 0) {
			snprintf(why, sizeof(why), "cannot create '%s/work': %s", real, strerror(errno));
			close(wfd);
			goto out_ro;
		}
		fd = openat(wfd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot open '%s/work': %s", real, strerror(errno));
		close(wfd);
		goto out_ro;
	}
	snprintf(path, sizeof(path), "%s/work", real);
	scrub_pr.path = path;
	scrub_pr.done = 0;
	scrub_pr.t0 = scrub_pr.last = scrub_now();
	scrub_pr.after = 1.0;
	scrub_pr.every = 5.0;
	if (getenv("ONFS_PROGRESS_MS"))
		scrub_pr.after = scrub_pr.every = atof(getenv("ONFS_PROGRESS_MS")) / 1000.0;
	ret = scrub_dir(fd, 0, why, sizeof(why), path);
	scrub_progress(true);
	if (ret < 0) {
		close(fd);
		close(wfd);
		goto out_ro;
	}
	/* what a reset of an earlier run left (a crash while emptying it) */
	ret = onfs_trash_scrub(wfd, why, sizeof(why));
	if (ret < 0) {
		close(fd);
		close(wfd);
		goto out_ro;
	}
	/* index/ is kept as it is (persistent: origin -> upper, deletions) */
	if (mkdirat(wfd, "index", ex->owner.uid == 0 ? 0 : 0700) < 0 && errno != EEXIST) {
		snprintf(why, sizeof(why), "cannot create '%s/index': %s", real, strerror(errno));
		close(fd);
		close(wfd);
		goto out_ro;
	}
	ex->index_fd = openat(wfd, "index", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(wfd);
	if (ex->index_fd < 0) {
		snprintf(why, sizeof(why), "cannot open '%s/index': %s", real, strerror(errno));
		close(fd);
		goto out_ro;
	}
	ex->work_fd = fd;
	ex->work_ok = true;
	/* tests: copy-ups through named temps, as where O_TMPFILE is missing */
	test_no_tmpfile = getenv("OVLNFSD_TEST_NO_TMPFILE");
	if (test_no_tmpfile && *test_no_tmpfile)
		atomic_store(&ex->no_tmpfile, true);
	else
		probe_tmpfile(ex);
	index_check_owner(ex, real);
	atomic_store(&ex->index_used, !dir_empty(ex->index_fd));
	mark_first_start(ex);
	/* the lowers this upper is made against: recorded once, a change logged */
	wfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd >= 0) {
		onfs_base_check(ex, wfd);
		close(wfd);
	}
	return 0;
out_ro:
	onfs_err("export '%s' will be served READ-ONLY: work area not usable: %s", ex->name, why);
	ex->work_ok = false;
	return 0;
}
