/*
 * checkconfig.c - `ovlnfsd --check-config -c FILE`: for ExecStartPre= and
 * for operators. Reports every error of the file (config.c, each with its
 * file and line), then checks what can be checked without changing
 * anything: every layer exists and is a directory, upper and work sit on
 * one filesystem and do not nest, the upper layer overlaps no lower layer,
 * the owner user exists. Errors about a directory name the line of the
 * [export NAME] header of the export that uses it.
 *
 * Main thread, before any loop exists. Never creates, opens for writing,
 * locks or binds anything: a running server may own the same layers.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "ovlnfsd/config.h"

struct check_ctx {
	const char *file;
	int nerrors;
	int nwarnings;
};

/*
 * The line of the section starting at header that names text (a layer
 * path), else the line of key, else the header's own line: config.c keeps
 * only section lines once the file is read.
 */
static int find_line(const char *file, int header, const char *key, const char *text)
{
	FILE *f = fopen(file, "re");
	char *buf = NULL;
	size_t cap = 0;
	int line = 0, key_line = 0, text_line = 0;
	size_t klen = strlen(key);

	if (!f)
		return header;
	while (getline(&buf, &cap, f) >= 0) {
		const char *t = buf + strspn(buf, " \t");

		if (++line <= header)
			continue;
		if (*t == '[')
			break;
		if (*t == ';' || *t == '#')
			continue;
		if (!key_line && !strncmp(t, key, klen) && strchr(" \t=:", t[klen]))
			key_line = line;
		if (key_line && !text_line && text && strstr(buf, text))
			text_line = line;
	}
	free(buf);
	fclose(f);
	return text_line ? text_line : key_line ? key_line : header;
}

static void report_cb(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "ovlnfsd: error: %s\n", msg);
}

static void check_err(struct check_ctx *c, const struct onfs_export_conf *ec, const char *key,
		      const char *text, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* text: the value at fault (to find its line), or NULL. */
static void check_err(struct check_ctx *c, const struct onfs_export_conf *ec, const char *key,
		      const char *text, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ovlnfsd: error: %s:%d: [export %s] %s: %s\n", c->file,
		find_line(c->file, ec->line, key, text), ec->name, key, msg);
	c->nerrors++;
}

/* True when a is b or lies below it (both real paths). */
static bool path_within(const char *a, const char *b)
{
	size_t lb = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, lb) == 0 && (a[lb] == '\0' || a[lb] == '/');
}

/* A directory the server must be able to read; real gets its real path. */
static bool check_dir(struct check_ctx *c, const struct onfs_export_conf *ec, const char *key,
		      const char *path, char *real, struct stat *st)
{
	if (path[0] != '/')
		return false; /* config.c reported it */
	if (!realpath(path, real)) {
		check_err(c, ec, key, path, "'%s': %s", path, strerror(errno));
		return false;
	}
	if (stat(real, st) < 0) {
		check_err(c, ec, key, path, "'%s': %s", path, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st->st_mode)) {
		check_err(c, ec, key, path, "'%s' is not a directory", path);
		return false;
	}
	if (access(real, R_OK | X_OK) < 0) {
		check_err(c, ec, key, path, "'%s': %s", path, strerror(errno));
		return false;
	}
	return true;
}

static void check_export(struct check_ctx *c, const struct onfs_export_conf *ec)
{
	char (*lower)[PATH_MAX] = calloc(ec->nlower ? ec->nlower : 1, PATH_MAX);
	bool *lower_ok = calloc(ec->nlower ? ec->nlower : 1, sizeof(bool));
	char upper[PATH_MAX], work[PATH_MAX];
	struct stat ust, wst, st;

	if (!lower || !lower_ok) {
		check_err(c, ec, "lowerdir", NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ec->nlower; i++)
		lower_ok[i] = check_dir(c, ec, "lowerdir", ec->lowerdir[i], lower[i], &st);
	if (ec->upperdir && ec->workdir) {
		bool uok = check_dir(c, ec, "upperdir", ec->upperdir, upper, &ust);
		bool wok = check_dir(c, ec, "workdir", ec->workdir, work, &wst);

		if (uok && access(upper, W_OK) < 0)
			check_err(c, ec, "upperdir", NULL, "'%s': %s", ec->upperdir, strerror(errno));
		if (wok && access(work, W_OK) < 0)
			check_err(c, ec, "workdir", NULL, "'%s': %s", ec->workdir, strerror(errno));
		if (uok && wok) {
			if (ust.st_dev != wst.st_dev)
				check_err(c, ec, "workdir", NULL,
					  "'%s' and upperdir '%s' are on different filesystems",
					  ec->workdir, ec->upperdir);
			else if (path_within(work, upper))
				check_err(c, ec, "workdir", NULL, "'%s' is inside upperdir '%s'",
					  ec->workdir, ec->upperdir);
			else if (path_within(upper, work))
				check_err(c, ec, "upperdir", NULL, "'%s' is inside workdir '%s'",
					  ec->upperdir, ec->workdir);
		}
		for (size_t i = 0; uok && i < ec->nlower; i++)
			if (lower_ok[i] && (path_within(upper, lower[i]) ||
					    path_within(lower[i], upper)))
				check_err(c, ec, "upperdir", NULL, "'%s' and lowerdir '%s' overlap",
					  ec->upperdir, ec->lowerdir[i]);
	}
	if (ec->owner) {
		char *end;
		unsigned long uid = strtoul(ec->owner, &end, 10);
		struct passwd *pw = *end ? getpwnam(ec->owner) : getpwuid((uid_t)uid);

		if (!pw)
			check_err(c, ec, "owner", NULL, "'%s': no such user", ec->owner);
		else if (pw->pw_uid != geteuid() && geteuid() != 0)
			check_err(c, ec, "owner", NULL, "'%s': only root may act as another user",
				  ec->owner);
	}
out:
	free(lower);
	free(lower_ok);
}

int onfs_check_config(const char *path)
{
	struct onfs_config cfg = { 0 };
	struct check_ctx c = { .file = path };
	struct stat st;
	int n;

	n = onfs_config_check_file(path, &cfg, report_cb, &c);
	c.nerrors = n;
	/* a file that cannot be read has no exports to look at */
	for (size_t i = 0; i < cfg.nexports; i++)
		if (cfg.exports[i].name)
			check_export(&c, &cfg.exports[i]);
	if (cfg.state_dir && stat(cfg.state_dir, &st) < 0) {
		printf("%s: note: state_dir '%s' does not exist yet (ovlnfsd creates it)\n", path,
		       cfg.state_dir);
		c.nwarnings++;
	}
	if (c.nerrors) {
		fprintf(stderr, "ovlnfsd: %s: %d error(s)\n", path, c.nerrors);
	} else {
		printf("%s: OK: %zu export(s):", path, cfg.nexports);
		for (size_t i = 0; i < cfg.nexports; i++)
			printf(" %s (%s, %s)", cfg.exports[i].name, cfg.exports[i].path,
			       cfg.exports[i].upperdir ? "rw layers" : "read-only");
		printf("\n");
	}
	onfs_config_free(&cfg);
	return c.nerrors ? 1 : 0;
}
