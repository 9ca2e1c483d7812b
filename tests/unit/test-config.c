/*
 * test-config.c - command line and overlay option parsing (server/config.c):
 * host:port forms, "\:" and "\," escapes, defaults, and that every error
 * names the option at fault.
 *
 * Single-threaded test process; no network. Only the demo case touches
 * files, in its own directory under /tmp, removed at the end.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/config.h"

static int failures;

#define CHECK(c)                                                                 \
	do {                                                                     \
		if (!(c)) {                                                      \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                              \
		}                                                                \
	} while (0)

#define CHECK_STR(got, want)                                                     \
	do {                                                                     \
		const char *_g = (got), *_w = (want);                            \
		if (!_g || strcmp(_g, _w)) {                                     \
			fprintf(stderr, "FAIL %s:%d: %s = '%s', want '%s'\n",    \
				__FILE__, __LINE__, #got, _g ? _g : "(null)", _w); \
			failures++;                                              \
		}                                                                \
	} while (0)

/* Parse a NULL-terminated argument list; returns parse_args' result. */
static int parse(struct onfs_config *cfg, char *err, size_t errlen, ...)
{
	char *argv[32] = { "ovlnfsd" };
	int argc = 1;
	va_list ap;
	char *a;

	memset(cfg, 0, sizeof(*cfg));
	err[0] = '\0';
	va_start(ap, errlen);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return onfs_config_parse_args(argc, argv, cfg, err, errlen);
}

/* The parse fails and its message contains every given word. */
#define CHECK_FAILS(words, ...)                                                  \
	do {                                                                     \
		struct onfs_config _c;                                           \
		char _e[512];                                                    \
		const char *_w[] = words;                                        \
		int _r = parse(&_c, _e, sizeof(_e), __VA_ARGS__, NULL);          \
		if (_r != -1) {                                                  \
			fprintf(stderr, "FAIL %s:%d: parse returned %d, want -1\n", \
				__FILE__, __LINE__, _r);                         \
			failures++;                                              \
		}                                                                \
		for (size_t _i = 0; _i < sizeof(_w) / sizeof(_w[0]); _i++) {    \
			if (!strstr(_e, _w[_i])) {                               \
				fprintf(stderr, "FAIL %s:%d: error '%s' lacks '%s'\n", \
					__FILE__, __LINE__, _e, _w[_i]);         \
				failures++;                                      \
			}                                                        \
		}                                                                \
		onfs_config_free(&_c);                                           \
	} while (0)
#define W(...) { __VA_ARGS__ }

static void config_hostport_forms(void)
{
	static const struct {
		const char *in;
		const char *host;
		int port;
	} good[] = {
		{ "127.0.0.1:2049", "127.0.0.1", 2049 },
		{ "0.0.0.0:0", "0.0.0.0", 0 },
		{ "[::1]:2049", "::1", 2049 },
		{ "[::]:65535", "::", 65535 },
		{ "[fe80::1]:111", "fe80::1", 111 },
		{ "2049", "127.0.0.1", 2049 },
		{ "0", "127.0.0.1", 0 },
	};
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:12a", "::1:2049", "[::1]2049", "[::1]", "[::1:2049",
		"[zz::]:1", "localhost:2049", "1.2.3:4", ":2049", "[127.0.0.1]:1",
		"70000", "+1",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *host = NULL;
		int port = -1;

		CHECK(onfs_config_parse_hostport(good[i].in, &host, &port) == 0);
		CHECK_STR(host, good[i].host);
		if (port != good[i].port) {
			fprintf(stderr, "FAIL: '%s' port %d want %d\n", good[i].in, port,
				good[i].port);
			failures++;
		}
		free(host);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *host = NULL;
		int port = -1;

		if (onfs_config_parse_hostport(bad[i], &host, &port) != -1) {
			fprintf(stderr, "FAIL: '%s' accepted as host '%s' port %d\n", bad[i],
				host ? host : "(null)", port);
			failures++;
			free(host);
		}
	}
}

static void free_ec(struct onfs_export_conf *ec)
{
	for (size_t i = 0; i < ec->nlower; i++)
		free(ec->lowerdir[i]);
	free(ec->upperdir);
	free(ec->workdir);
	free(ec->name);
	free(ec->path);
	memset(ec, 0, sizeof(*ec));
}

static void config_overlay_opts_escapes(void)
{
	struct onfs_export_conf ec = { 0 };
	char err[256];

	CHECK(onfs_config_parse_overlay_opts("lowerdir=/a\\:b:/c\\,d:/e\\\\f,upperdir=/u\\,x,workdir=/w\\:y",
					     &ec, err, sizeof(err)) == 0);
	CHECK(ec.nlower == 3);
	CHECK_STR(ec.lowerdir[0], "/a:b");
	CHECK_STR(ec.lowerdir[1], "/c,d");
	CHECK_STR(ec.lowerdir[2], "/e\\f");
	CHECK_STR(ec.upperdir, "/u,x");
	CHECK_STR(ec.workdir, "/w:y");
	free_ec(&ec);

	/* leftmost is the top layer; lower-only is a read-only export */
	CHECK(onfs_config_parse_overlay_opts("lowerdir=/top:/mid:/bottom", &ec, err,
					     sizeof(err)) == 0);
	CHECK(ec.nlower == 3);
	CHECK_STR(ec.lowerdir[0], "/top");
	CHECK_STR(ec.lowerdir[2], "/bottom");
	CHECK(ec.upperdir == NULL && ec.workdir == NULL);
	free_ec(&ec);

	/* the kernel options whose behaviour ovlnfsd always has */
	CHECK(onfs_config_parse_overlay_opts("lowerdir=/l,index=on,nfs_export=on,xino=auto,redirect_dir=on",
					     &ec, err, sizeof(err)) == 0);
	CHECK(ec.nlower == 1);
	free_ec(&ec);
}

static void check_opts_fail(const char *opts, const char *word)
{
	struct onfs_export_conf ec = { 0 };
	char err[256] = "";

	if (onfs_config_parse_overlay_opts(opts, &ec, err, sizeof(err)) != -1) {
		fprintf(stderr, "FAIL: -o '%s' accepted\n", opts);
		failures++;
	} else if (!strstr(err, word)) {
		fprintf(stderr, "FAIL: -o '%s': error '%s' lacks '%s'\n", opts, err, word);
		failures++;
	}
	/* a failed parse leaves nothing allocated in ec */
	CHECK(ec.nlower == 0 && ec.upperdir == NULL && ec.workdir == NULL);
	free_ec(&ec);
}

static void config_overlay_opts_errors(void)
{
	check_opts_fail("lowerdir=/l,bogus=1", "'bogus'");
	check_opts_fail("lowerdir=/l,userxattr", "'userxattr'");
	check_opts_fail("lowerdir=/l,upperdir=/u", "'workdir'");
	check_opts_fail("lowerdir=/l,workdir=/w", "'upperdir'");
	check_opts_fail("upperdir=/u,workdir=/w", "'lowerdir'");
	check_opts_fail("lowerdir=", "'lowerdir'");
	check_opts_fail("lowerdir=/a::/b", "'lowerdir'");
	check_opts_fail("lowerdir=/a:", "'lowerdir'");
	check_opts_fail("lowerdir=/a,lowerdir=/b", "'lowerdir'");
	check_opts_fail("lowerdir=/a,upperdir=,workdir=/w", "'upperdir'");
	check_opts_fail("lowerdir=/l,index=off", "index");
	check_opts_fail("", "lowerdir");
}

static void config_defaults_demo(void)
{
	struct onfs_config cfg;
	char err[512];

	CHECK(parse(&cfg, err, sizeof(err), NULL) == 0);
	CHECK(cfg.demo);
	CHECK_STR(cfg.listen_host, "127.0.0.1");
	CHECK(cfg.listen_port == 2049);
	CHECK(cfg.portmap_host == NULL);
	CHECK(cfg.port_file == NULL);
	CHECK(cfg.threads == 4);
	CHECK(cfg.max_record == ONFS_DEFAULT_MAX_RECORD);
	CHECK(!cfg.foreground && cfg.verbose == 0);
	CHECK(cfg.nexports == 1);
	CHECK_STR(cfg.exports[0].path, "/");
	CHECK(cfg.exports[0].nlower == 0); /* onfs_demo_setup fills the layers */
	CHECK(cfg.state_dir == NULL);      /* ... and the demo state dir */
	onfs_config_free(&cfg);
}

static void config_overlay_export(void)
{
	struct onfs_config cfg;
	char err[512];

	CHECK(parse(&cfg, err, sizeof(err), "-o", "lowerdir=/l1:/l2,upperdir=/u,workdir=/w",
		    "--listen", "[::]:0", "--portmap=0.0.0.0:111", "--export", "//srv//data/",
		    "--port-file", "/tmp/p", "--state-dir=/tmp/s", "-fvv", "--threads", "8",
		    "--max-record", "2M", NULL) == 0);
	if (err[0])
		fprintf(stderr, "note: %s\n", err);
	CHECK(!cfg.demo);
	CHECK(cfg.nexports == 1);
	CHECK(cfg.exports[0].nlower == 2);
	CHECK_STR(cfg.exports[0].lowerdir[1], "/l2");
	CHECK_STR(cfg.exports[0].upperdir, "/u");
	CHECK_STR(cfg.exports[0].path, "/srv/data");
	CHECK_STR(cfg.listen_host, "::");
	CHECK(cfg.listen_port == 0);
	CHECK_STR(cfg.portmap_host, "0.0.0.0");
	CHECK(cfg.portmap_port == 111);
	CHECK_STR(cfg.port_file, "/tmp/p");
	CHECK_STR(cfg.state_dir, "/tmp/s");
	CHECK(cfg.foreground);
	CHECK(cfg.verbose == 2);
	CHECK(cfg.threads == 8);
	CHECK(cfg.max_record == 2 * 1024 * 1024);
	onfs_config_free(&cfg);

	/* -oOPTS glued, default state dir outside demo mode */
	CHECK(parse(&cfg, err, sizeof(err), "-olowerdir=/x", "-v", NULL) == 0);
	CHECK(!cfg.demo);
	CHECK_STR(cfg.exports[0].lowerdir[0], "/x");
	CHECK_STR(cfg.state_dir, ONFS_DEFAULT_STATE_DIR);
	CHECK(cfg.verbose == 1);
	onfs_config_free(&cfg);
}

static void config_errors_name_the_option(void)
{
	CHECK_FAILS(W("--listen"), "--listen", "1.2.3.4");
	CHECK_FAILS(W("--listen"), "--listen=localhost:1");
	CHECK_FAILS(W("--listen", "needs an argument"), "--listen");
	CHECK_FAILS(W("--portmap"), "--portmap", "::1:111");
	CHECK_FAILS(W("--export", "relative"), "--export", "relative");
	CHECK_FAILS(W("--export"), "--export", "/a/../b");
	CHECK_FAILS(W("--export"), "--export", "/a/./b");
	CHECK_FAILS(W("--threads"), "--threads", "0");
	CHECK_FAILS(W("--threads"), "--threads", "four");
	CHECK_FAILS(W("--max-record"), "--max-record", "100");
	CHECK_FAILS(W("--max-record"), "--max-record", "99999999999999999999");
	CHECK_FAILS(W("-c", "not supported yet"), "-c", "/etc/ovlnfsd.conf");
	CHECK_FAILS(W("--config", "not supported yet"), "--config=/etc/ovlnfsd.conf");
	CHECK_FAILS(W("--bogus"), "--bogus");
	CHECK_FAILS(W("--bogus"), "--bogus=1");
	CHECK_FAILS(W("-x"), "-fx");
	CHECK_FAILS(W("-o", "twice"), "-o", "lowerdir=/a", "-o", "lowerdir=/b");
	CHECK_FAILS(W("-o", "'nope'"), "-o", "lowerdir=/a,nope=1");
	CHECK_FAILS(W("-o", "'workdir'"), "-o", "lowerdir=/a,upperdir=/u");
	CHECK_FAILS(W("-o", "needs an argument"), "-o");
	CHECK_FAILS(W("--foreground", "no argument"), "--foreground=yes");
	CHECK_FAILS(W("'stray'"), "stray");
	CHECK_FAILS(W("--port-file"), "--port-file", "");
}

static void config_help_and_version_exit_zero(void)
{
	struct onfs_config cfg;
	char err[512];
	int saved = dup(STDOUT_FILENO);
	FILE *devnull = fopen("/dev/null", "w");

	/* keep the usage text out of the test log */
	fflush(stdout);
	if (devnull)
		dup2(fileno(devnull), STDOUT_FILENO);
	CHECK(parse(&cfg, err, sizeof(err), "--help", NULL) == 1);
	onfs_config_free(&cfg);
	CHECK(parse(&cfg, err, sizeof(err), "-h", NULL) == 1);
	onfs_config_free(&cfg);
	CHECK(parse(&cfg, err, sizeof(err), "--version", NULL) == 1);
	onfs_config_free(&cfg);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
	}
	if (devnull)
		fclose(devnull);
}

static bool is_file_mode(const char *root, const char *rel, mode_t mode)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (lstat(p, &st) < 0) {
		fprintf(stderr, "note: lstat '%s' failed\n", p);
		return false;
	}
	return (st.st_mode & (S_IFMT | 07777)) == mode;
}

static void config_demo_setup_builds_once(void)
{
	char tmpl[] = "/tmp/onfs-test-config-XXXXXX";
	char *top = mkdtemp(tmpl);
	char dir[256], p[4096], val[8];
	struct onfs_config cfg;
	char err[512];
	struct stat st;
	ssize_t n;

	CHECK(top != NULL);
	if (!top)
		return;
	snprintf(dir, sizeof(dir), "%s/demo", top);

	memset(&cfg, 0, sizeof(cfg));
	CHECK(onfs_demo_setup(dir, &cfg, err, sizeof(err)) == 0);
	CHECK(cfg.nexports == 1);
	CHECK_STR(cfg.exports[0].name, "demo");
	CHECK_STR(cfg.exports[0].path, "/");
	CHECK(cfg.exports[0].nlower == 2);
	snprintf(p, sizeof(p), "%s/lower1", dir);
	CHECK_STR(cfg.exports[0].lowerdir[0], p);
	snprintf(p, sizeof(p), "%s/lower2", dir);
	CHECK_STR(cfg.exports[0].lowerdir[1], p);
	snprintf(p, sizeof(p), "%s/upper", dir);
	CHECK_STR(cfg.exports[0].upperdir, p);
	snprintf(p, sizeof(p), "%s/work", dir);
	CHECK_STR(cfg.exports[0].workdir, p);
	snprintf(p, sizeof(p), "%s/state", dir);
	CHECK_STR(cfg.state_dir, p);
	onfs_config_free(&cfg);

	CHECK(is_file_mode(dir, "lower1/bin/hello.sh", S_IFREG | 0755));
	CHECK(is_file_mode(dir, "lower1/etc/motd", S_IFREG | 0644));
	CHECK(is_file_mode(dir, "lower2/etc/motd", S_IFREG | 0644));
	CHECK(is_file_mode(dir, "lower2/docs/old.txt", S_IFREG | 0644));
	CHECK(is_file_mode(dir, "lower2/readme-link", S_IFLNK | 0777));
	CHECK(is_file_mode(dir, "upper/upper.txt", S_IFREG | 0644));
	snprintf(p, sizeof(p), "%s/upper/docs/old.txt", dir);
	if (geteuid() == 0) {
		/* the whiteout: a 0/0 character device */
		CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
		snprintf(p, sizeof(p), "%s/upper/data", dir);
		n = lgetxattr(p, "trusted.overlay.opaque", val, sizeof(val));
		CHECK(n == 1 && val[0] == 'y');
	} else {
		fprintf(stderr, "note: not root, whiteout and trusted xattr not checked\n");
	}

	/* a second setup keeps what the user changed: the tree is theirs now */
	snprintf(p, sizeof(p), "%s/upper/upper.txt", dir);
	CHECK(unlink(p) == 0);
	memset(&cfg, 0, sizeof(cfg));
	CHECK(onfs_demo_setup(dir, &cfg, err, sizeof(err)) == 0);
	CHECK(cfg.exports[0].nlower == 2);
	CHECK(access(p, F_OK) != 0);
	onfs_config_free(&cfg);

	/* an explicit --state-dir wins over the demo's */
	CHECK(parse(&cfg, err, sizeof(err), "--state-dir", "/tmp/elsewhere", NULL) == 0);
	CHECK(onfs_demo_setup(dir, &cfg, err, sizeof(err)) == 0);
	CHECK_STR(cfg.state_dir, "/tmp/elsewhere");
	onfs_config_free(&cfg);

	/* a path that cannot be a directory: the error names it */
	snprintf(p, sizeof(p), "%s/upper/data/only-upper.txt/x", dir);
	memset(&cfg, 0, sizeof(cfg));
	CHECK(onfs_demo_setup(p, &cfg, err, sizeof(err)) == -1);
	CHECK(strstr(err, p) != NULL);
	onfs_config_free(&cfg);

	snprintf(p, sizeof(p), "rm -rf '%s'", top);
	CHECK(system(p) == 0);
}

int main(void)
{
	config_hostport_forms();
	config_overlay_opts_escapes();
	config_overlay_opts_errors();
	config_defaults_demo();
	config_overlay_export();
	config_errors_name_the_option();
	config_help_and_version_exit_zero();
	config_demo_setup_builds_once();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok config (all checks passed)\n");
	return 0;
}
