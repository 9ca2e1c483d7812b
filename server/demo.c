/*
 * demo.c - builds ./demo-overlay (two lower layers, an upper layer with a
 * whiteout and an opaque directory, a work dir and a state dir) and fills
 * the config to serve it: what `ovlnfsd` with no -o/-c shows.
 *
 * Main thread, at startup, before the loop runs. Creates files only under
 * the demo directory, and only the first time: once the marker file
 * exists the tree belongs to the user (and to clients) and is never
 * touched again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"

#define DEMO_MARKER ".ovlnfsd-demo"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct demo {
	char root[PATH_MAX];
	char *err;
	size_t errlen;
};

static int demo_path(struct demo *d, const char *rel, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s", d->root, rel);

	if (n < 0 || (size_t)n >= cap)
		return fail(d->err, d->errlen, "path too long: '%s/%s'", d->root, rel);
	return 0;
}

static int demo_mkdir(struct demo *d, const char *rel)
{
	char p[PATH_MAX];

	if (demo_path(d, rel, p, sizeof(p)) < 0)
		return -1;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return fail(d->err, d->errlen, "cannot create directory '%s': %s", p,
			    strerror(errno));
	return 0;
}

static int demo_file(struct demo *d, const char *rel, mode_t mode, const char *text)
{
	char p[PATH_MAX];
	size_t len = strlen(text);
	int fd;
	int ret = -1;

	if (demo_path(d, rel, p, sizeof(p)) < 0)
		goto out;
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		fail(d->err, d->errlen, "cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len) {
		fail(d->err, d->errlen, "cannot write '%s': %s", p, strerror(errno));
		goto out_close;
	}
	/* the umask must not change what the demo shows */
	if (fchmod(fd, mode) < 0) {
		fail(d->err, d->errlen, "cannot chmod '%s': %s", p, strerror(errno));
		goto out_close;
	}
	ret = 0;
out_close:
	close(fd);
out:
	return ret;
}

static int demo_symlink(struct demo *d, const char *rel, const char *target)
{
	char p[PATH_MAX];

	if (demo_path(d, rel, p, sizeof(p)) < 0)
		return -1;
	if (symlink(target, p) < 0 && errno != EEXIST)
		return fail(d->err, d->errlen, "cannot create symlink '%s': %s", p,
			    strerror(errno));
	return 0;
}

/* A whiteout is a 0/0 character device; mknod needs CAP_MKNOD. */
static void demo_whiteout(struct demo *d, const char *rel)
{
	char p[PATH_MAX];

	if (demo_path(d, rel, p, sizeof(p)) < 0) {
		onfs_warn("%s", d->err);
		return;
	}
	if (mknod(p, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
		onfs_warn("demo: cannot create whiteout '%s': %s (needs root); skipped", p,
			  strerror(errno));
}

/* trusted.* when privileged (as the kernel), user.* (userxattr) otherwise. */
static void demo_opaque(struct demo *d, const char *rel)
{
	const char *name = geteuid() == 0 ? "trusted.overlay.opaque" : "user.overlay.opaque";
	char p[PATH_MAX];

	if (demo_path(d, rel, p, sizeof(p)) < 0) {
		onfs_warn("%s", d->err);
		return;
	}
	if (lsetxattr(p, name, "y", 1, 0) < 0)
		onfs_warn("demo: cannot set %s on '%s': %s; the directory is not opaque", name,
			  p, strerror(errno));
}

static int demo_build(struct demo *d)
{
	static const char *const dirs[] = {
		"lower2", "lower2/etc", "lower2/docs", "lower2/data", "lower2/shadowed",
		"lower1", "lower1/etc", "lower1/bin", "lower1/data",
		"upper", "upper/docs", "upper/data", "work",
	};
	int ret = -1;

	for (size_t i = 0; i < ONFS_ARRAY_SIZE(dirs); i++) {
		if (demo_mkdir(d, dirs[i]) < 0)
			goto out;
	}

	/* lower2: the bottom layer */
	if (demo_file(d, "lower2/README.txt", 0644,
		      "This is the ovlnfsd demo overlay.\n"
		      "\n"
		      "Layers, top to bottom: upper, lower1, lower2.\n"
		      "- etc/motd comes from lower1 (it hides lower2's copy)\n"
		      "- etc/hostname comes from lower2 (etc/ is merged)\n"
		      "- docs/old.txt is hidden by a whiteout in upper\n"
		      "- data/ is opaque in upper: lower files there are hidden\n"
		      "- shadowed is a file in lower1 hiding lower2's directory\n") < 0 ||
	    demo_file(d, "lower2/etc/hostname", 0644, "ovlnfsd-demo\n") < 0 ||
	    demo_file(d, "lower2/etc/motd", 0644, "motd from lower2 (you should not see this)\n") < 0 ||
	    demo_file(d, "lower2/docs/old.txt", 0644, "old notes (whiteout in upper hides this)\n") < 0 ||
	    demo_file(d, "lower2/docs/guide.txt", 0644, "the guide, from lower2\n") < 0 ||
	    demo_file(d, "lower2/data/numbers.txt", 0644, "1\n2\n3\n4\n5\n") < 0 ||
	    demo_file(d, "lower2/data/letters.txt", 0644, "a\nb\nc\n") < 0 ||
	    demo_file(d, "lower2/shadowed/inside.txt", 0644, "hidden by lower1/shadowed\n") < 0 ||
	    demo_symlink(d, "lower2/readme-link", "README.txt") < 0)
		goto out;

	/* lower1: the top lower layer */
	if (demo_file(d, "lower1/etc/motd", 0644, "Welcome to the ovlnfsd demo (motd from lower1)\n") < 0 ||
	    demo_file(d, "lower1/etc/issue", 0644, "ovlnfsd demo, lower1\n") < 0 ||
	    demo_file(d, "lower1/bin/hello.sh", 0755, "#!/bin/sh\necho hello from lower1\n") < 0 ||
	    demo_file(d, "lower1/data/from-lower1.txt", 0644, "lower1 data (hidden: data/ is opaque in upper)\n") < 0 ||
	    demo_file(d, "lower1/shadowed", 0644, "a file in lower1 hiding lower2's directory\n") < 0)
		goto out;

	/* upper: a file, a whiteout, an opaque directory */
	if (demo_file(d, "upper/upper.txt", 0644, "this file lives in the upper layer\n") < 0 ||
	    demo_file(d, "upper/data/only-upper.txt", 0644, "the only file in the opaque data/\n") < 0)
		goto out;
	demo_whiteout(d, "upper/docs/old.txt");
	demo_opaque(d, "upper/data");
	ret = 0;
out:
	return ret;
}

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

int onfs_demo_setup(const char *dir, struct onfs_config *cfg, char *err, size_t errlen)
{
	struct demo d = { .err = err, .errlen = errlen };
	struct onfs_export_conf *ec = &cfg->exports[0];
	char marker[PATH_MAX];
	int ret = -1;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fail(err, errlen, "cannot create directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (!realpath(dir, d.root)) {
		fail(err, errlen, "cannot resolve '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (demo_mkdir(&d, "state") < 0 || demo_path(&d, DEMO_MARKER, marker, sizeof(marker)) < 0)
		goto out;
	if (access(marker, F_OK) < 0) {
		int fd;

		if (demo_build(&d) < 0)
			goto out;
		fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			fail(err, errlen, "cannot create '%s': %s", marker, strerror(errno));
			goto out;
		}
		close(fd);
		onfs_info("demo: created %s", d.root);
	}

	/* the export line: everything owned by cfg, freed by onfs_config_free */
	for (size_t i = 0; i < ec->nlower; i++) {
		free(ec->lowerdir[i]);
		ec->lowerdir[i] = NULL;
	}
	free(ec->upperdir);
	free(ec->workdir);
	ec->lowerdir[0] = join(d.root, "lower1");
	ec->lowerdir[1] = join(d.root, "lower2");
	ec->nlower = 2;
	ec->upperdir = join(d.root, "upper");
	ec->workdir = join(d.root, "work");
	if (!ec->name)
		ec->name = strdup("demo");
	if (!ec->path)
		ec->path = strdup("/");
	if (cfg->nexports == 0)
		cfg->nexports = 1;
	if (!cfg->state_dir)
		cfg->state_dir = join(d.root, "state");
	if (!ec->lowerdir[0] || !ec->lowerdir[1] || !ec->upperdir || !ec->workdir ||
	    !ec->name || !ec->path || !cfg->state_dir) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	return ret;
}
