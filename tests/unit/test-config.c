/*
 * test-config.c - command line and overlay option parsing (server/config.c):
 * host:port forms, "\:" and "\," escapes, defaults, and that every error
 * names the option at fault.
 *
 * Single-threaded test process; no network. Only the demo case touches
 * files, in its own directory under /tmp, removed at the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/config.h"
#include "ovlnfsd/server.h"
#include "conf.h"


/* The parse fails and its message contains every given word. */
#define CHECK_FAILS(words, ...)                                                  \
	do {                                                                     \
		struct onfs_config _c;                                           \
		char _e[512];                                                    \
		const char *_w[] = words;                                        \
		int _r = parse(&_c, _e, sizeof(_e), __VA_ARGS__, NULL);          \
		if (_r != -1)                                                    \
			FAIL("parse returned %d, want -1", _r);                  \
		for (size_t _i = 0; _i < sizeof(_w) / sizeof(_w[0]); _i++) {    \
			if (!strstr(_e, _w[_i]))                                 \
				FAIL("error '%s' lacks '%s'", _e, _w[_i]);       \
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
			FAIL("'%s' port %d want %d", good[i].in, port, good[i].port);
		}
		free(host);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *host = NULL;
		int port = -1;

		if (onfs_config_parse_hostport(bad[i], &host, &port) != -1) {
			FAIL("'%s' accepted as host '%s' port %d", bad[i],
			     host ? host : "(null)", port);
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
		FAIL("-o '%s' accepted", opts);
	} else if (!strstr(err, word)) {
		FAIL("-o '%s': error '%s' lacks '%s'", opts, err, word);
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
	CHECK(cfg.threads == ONFS_DEFAULT_THREADS);
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
		    "--max-record", "2M", "--max-connections", "100", "--io-timeout=5", NULL) == 0);
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
	CHECK(cfg.max_connections == 100);
	CHECK(cfg.io_timeout == 5);
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
	CHECK_FAILS(W("--max-connections"), "--max-connections", "0");
	CHECK_FAILS(W("--max-connections"), "--max-connections", "many");
	CHECK_FAILS(W("--io-timeout"), "--io-timeout", "0");
	CHECK_FAILS(W("--io-timeout"), "--io-timeout", "3601");
	CHECK_FAILS(W("--max-record"), "--max-record", "99999999999999999999");
	CHECK_FAILS(W("/nonexistent/ovlnfsd.conf", "No such file"), "-c", "/nonexistent/ovlnfsd.conf");
	CHECK_FAILS(W("/nonexistent/x.conf"), "--config=/nonexistent/x.conf");
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

/* --- the config file (-c) --- */

/* Loading text fails; the message holds "FILE:LINE:" and every word. */
#define CONF_FAILS(text, line, ...) CONF(conf_file(text), line, __VA_ARGS__)

/* Load the config file at path into cfg (zeroed first); the error printed on failure. */
static bool load_ok(const char *path, struct onfs_config *cfg)
{
	char err[1024] = "";

	memset(cfg, 0, sizeof(*cfg));
	if (onfs_config_load_file(path, cfg, err, sizeof(err)) == 0)
		return true;
	fprintf(stderr, "  (error: %s)\n", err);
	return false;
}

static void config_file_full(void)
{
	struct onfs_config cfg;
	const struct onfs_export_conf *a, *b;
	const char *path = conf_file(
		"; a comment\n"
		"# another\n"
		"[server]\n"
		"listen = 0.0.0.0:2050\n"
		"portmap = 111\n"
		"threads = 3\n"
		"log = debug\n"
		"state_dir = /var/lib/x\n"
		"max_record = 2M\n"
		"max_connections = 2000\n"
		"io_timeout = 7\n"
		"base_check_interval = 30\n"
		"\n"
		"[export base]\n"
		"path = /base/\n"
		"lowerdir = /l/a\\:b:/l/c\n"
		"clients = 10.0.0.0/8, ::1 192.168.1.7\n"
		"\n"
		"[export rw]\n"
		"path = /rw\n"
		"lowerdir = /l/one:\n"
		"    /l/two\n"
		"  /l/three\n"
		"upperdir = /u\n"
		"workdir = /w\n"
		"squash = all\n"
		"anonuid = 1000\n"
		"anongid = 0\n"
		"secure = yes\n"
		"owner = nobody\n"
		"clients = 127.0.0.0/8\n"
		"  fe80::/10\n"
		"\n"
		"[export ro2]\n"
		"path = /ro2\n"
		"lowerdir = /l/a\n"
		"upperdir = /u2\n"
		"workdir = /w2\n"
		"access = ro\n"
		"squash = none\n");

	CHECK(load_ok(path, &cfg));
	CHECK_STR(cfg.listen_host, "0.0.0.0");
	CHECK(cfg.listen_port == 2050);
	CHECK_STR(cfg.portmap_host, "127.0.0.1");
	CHECK(cfg.portmap_port == 111);
	CHECK(cfg.threads == 3);
	CHECK(cfg.verbose == 1);
	CHECK_STR(cfg.state_dir, "/var/lib/x");
	CHECK(cfg.max_record == 2u * 1024 * 1024);
	CHECK(cfg.max_connections == 2000);
	CHECK(cfg.io_timeout == 7);
	CHECK(cfg.base_check_interval == 30);
	CHECK(cfg.nexports == 3);
	a = &cfg.exports[0];
	b = &cfg.exports[1];
	CHECK_STR(a->name, "base");
	CHECK_STR(a->path, "/base");
	CHECK(a->nlower == 2);
	CHECK_STR(a->lowerdir[0], "/l/a:b");
	CHECK_STR(a->lowerdir[1], "/l/c");
	CHECK(a->upperdir == NULL && a->workdir == NULL);
	CHECK(a->readonly); /* no upper: ro by default */
	CHECK(a->squash == ONFS_SQUASH_ROOT);
	CHECK(a->anonuid == 65534 && a->anongid == 65534);
	CHECK(!a->secure);
	CHECK(a->owner == NULL);
	CHECK(a->nclients == 3);
	if (a->nclients == 3) {
		CHECK_STR(a->clients[0].text, "10.0.0.0/8");
		CHECK_STR(a->clients[1].text, "::1");
		CHECK_STR(a->clients[2].text, "192.168.1.7");
	}
	CHECK(a->line == 14);
	CHECK_STR(b->name, "rw");
	CHECK(b->nlower == 3);
	CHECK_STR(b->lowerdir[0], "/l/one");
	CHECK_STR(b->lowerdir[1], "/l/two");
	CHECK_STR(b->lowerdir[2], "/l/three");
	CHECK_STR(b->upperdir, "/u");
	CHECK_STR(b->workdir, "/w");
	CHECK(!b->readonly); /* upper given: rw by default */
	CHECK(b->squash == ONFS_SQUASH_ALL);
	CHECK(b->anonuid == 1000 && b->anongid == 0);
	CHECK(b->secure);
	CHECK_STR(b->owner, "nobody");
	CHECK(b->nclients == 2);
	CHECK(cfg.exports[2].readonly && cfg.exports[2].squash == ONFS_SQUASH_NONE);
	onfs_config_free(&cfg);
}

/*
 * A continuation line is indented with any blank libinih skips (isspace):
 * \v and \f as well as space and tab. A lowerdir continued after "\f"
 * was refused as "given twice" (the loader took it for a new line).
 */
static void config_continuation_blanks(void)
{
	struct onfs_config cfg;
	const char *path = conf_file("[export a]\n"
				     "path = /a\n"
				     "lowerdir = /l/one:\n"
				     "\f/l/two:\n"
				     "\v\t/l/three\n");

	CHECK(load_ok(path, &cfg));
	CHECK(cfg.nexports == 1 && cfg.exports[0].nlower == 3);
	if (cfg.nexports == 1 && cfg.exports[0].nlower == 3) {
		CHECK_STR(cfg.exports[0].lowerdir[1], "/l/two");
		CHECK_STR(cfg.exports[0].lowerdir[2], "/l/three");
	}
	onfs_config_free(&cfg);
	/* a key that is not a list still may not go on */
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nupperdir=/u\n\f/x\n", 5, "upperdir",
		   "given twice");
}

static void config_file_defaults(void)
{
	struct onfs_config cfg;
	const char *path = conf_file("[export only]\npath=/\nlowerdir=/l\n");

	CHECK(load_ok(path, &cfg));
	CHECK(cfg.nexports == 1);
	/* default clients: loopback only */
	CHECK(cfg.exports[0].nclients == 2);
	if (cfg.exports[0].nclients == 2) {
		CHECK_STR(cfg.exports[0].clients[0].text, "127.0.0.0/8");
		CHECK_STR(cfg.exports[0].clients[1].text, "::1");
	}
	CHECK(cfg.exports[0].readonly);
	CHECK(cfg.exports[0].squash == ONFS_SQUASH_ROOT);
	onfs_config_free(&cfg);
}

static void config_file_errors(void)
{
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nbogus = 1\n", 4, "[export a]", "bogus",
		   "unknown key");
	CONF_FAILS("[server]\nlisten = localhost:1\n[export a]\npath=/\nlowerdir=/l\n", 2,
		   "[server]", "listen", "localhost:1");
	CONF_FAILS("[server]\nthreads = 0\n", 2, "threads");
	CONF_FAILS("[server]\nbase_check_interval = soon\n", 2, "base_check_interval", "soon");
	CONF_FAILS("[server]\nbase_check_interval = 90000\n", 2, "base_check_interval", "86400");
	CONF_FAILS("[server]\nlog = loud\n", 2, "log", "loud");
	CONF_FAILS("[server]\npath = /\n", 2, "path", "unknown key in [server]");
	CONF_FAILS("path = /\n", 1, "path", "outside a section");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nthis line is junk\n", 4, "syntax error");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\n[exports b]\n", 4, "unknown section",
		   "exports b");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\n[export a]\n", 4, "[export a]", "twice",
		   "line 1");
	CONF_FAILS("[server]\n[export a]\npath=/\nlowerdir=/l\n[server]\n", 5, "[server]", "twice");
	CONF_FAILS("[export]\npath=/\n", 1, "export NAME");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\npath=/x\n", 4, "path", "given twice");
	CONF_FAILS("[export a]\npath=relative\nlowerdir=/l\n", 2, "path", "absolute");
	CONF_FAILS("[export a]\npath=/a/../b\nlowerdir=/l\n", 2, "path");
	CONF_FAILS("[export a]\nlowerdir=/l\n", 1, "[export a]", "path", "missing");
	CONF_FAILS("[export a]\npath=/\n", 1, "[export a]", "lowerdir", "missing");
	CONF_FAILS("[export a]\npath=/\n\nlowerdir=/l::/m\n", 4, "lowerdir", "empty layer");
	CONF_FAILS("[export a]\npath=/\nlowerdir=l\n", 3, "lowerdir", "absolute");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nupperdir=/u\n", 4, "upperdir", "workdir");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nworkdir=/w\n", 4, "workdir", "upperdir");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nupperdir=u\nworkdir=/w\n", 4, "upperdir",
		   "absolute");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\naccess=rw\n", 4, "access", "upperdir");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\naccess=write\n", 4, "access", "write");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nsquash=some\n", 4, "squash", "some");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nanonuid=-1\n", 4, "anonuid");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nanongid=4294967295\n", 4, "anongid");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nanongid=12abc\n", 4, "anongid");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nsecure=maybe\n", 4, "secure", "maybe");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nclients=10.0.0.0/8 10.0.0.1/8\n", 4,
		   "clients", "10.0.0.1/8");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nclients=10.0.0.0/8\n  ::1/200\n", 4, "clients",
		   "::1/200");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nclients=*\n", 4, "clients", "'*'");
	CONF_FAILS("[export a]\npath=/\nlowerdir=/l\nowner=\n", 4, "owner", "empty");
	CONF_FAILS("[server]\nthreads=2\n", 2, "no [export");
	CONF_FAILS("", 1, "no [export");
	/* duplicates name both exports */
	CONF_FAILS("[export a]\npath=/x\nlowerdir=/l\n[export b]\npath=/x/\nlowerdir=/m\n", 5,
		   "[export b]", "path", "[export a]", "line 2");
	CONF_FAILS("[export a]\npath=/x\nlowerdir=/l\nupperdir=/u\nworkdir=/w\n"
		   "[export b]\npath=/y\nlowerdir=/l\nupperdir=/u/\nworkdir=/w2\n", 9,
		   "[export b]", "upperdir", "[export a]", "line 4");
	CONF_FAILS("[export a]\npath=/x\nlowerdir=/l\nupperdir=/u\nworkdir=/w\n"
		   "[export b]\npath=/y\nlowerdir=/l\nupperdir=/u2\nworkdir=/w\n", 10,
		   "[export b]", "workdir", "[export a]");
	CONF_FAILS("[export a]\npath=/x\nlowerdir=/l\nupperdir=/u\nworkdir=/w\n"
		   "[export b]\npath=/y\nlowerdir=/l\nupperdir=/w\nworkdir=/u\n", 9,
		   "[export b]", "[export a]", "share");
	{
		/* a line over libinih's limit is named, not silently cut */
		char text[600];
		int n = snprintf(text, sizeof(text), "[export a]\npath=/\nlowerdir=/");

		memset(text + n, 'x', 300);
		snprintf(text + n + 300, sizeof(text) - (size_t)n - 300, "\n");
		CONF_FAILS(text, 3, "longer than", "indented");
	}
	{
		char text[4096];
		int n = 0;

		for (int i = 0; i < ONFS_MAX_EXPORTS + 1; i++)
			n += snprintf(text + n, sizeof(text) - (size_t)n,
				      "[export e%d]\npath=/e%d\nlowerdir=/l\n", i, i);
		CONF_FAILS(text, 3 * ONFS_MAX_EXPORTS + 1, "more than");
	}
}

static void config_file_argv(void)
{
	struct onfs_config cfg;
	char err[1024];
	const char *path = conf_file("[server]\nlisten = 0.0.0.0:2050\nthreads = 7\n"
				     "[export a]\npath=/a\nlowerdir=/l\n");
	char p[256];

	snprintf(p, sizeof(p), "%s", path);
	/* the command line wins over [server]; exports come from the file */
	CHECK(parse(&cfg, err, sizeof(err), "-c", p, "--listen", "127.0.0.1:0", NULL) == 0);
	CHECK_STR(cfg.listen_host, "127.0.0.1");
	CHECK(cfg.listen_port == 0);
	CHECK(cfg.threads == 7);
	CHECK(!cfg.demo);
	CHECK_STR(cfg.config_file, p);
	CHECK(cfg.nexports == 1 && strcmp(cfg.exports[0].name, "a") == 0);
	CHECK_STR(cfg.state_dir, "/var/lib/ovlnfsd");
	onfs_config_free(&cfg);

	CHECK_FAILS(W("-c", "-o", "together"), "-c", p, "-o", "lowerdir=/l");
	CHECK_FAILS(W("--export", "-o"), "-c", p, "--export", "/x");
	CHECK_FAILS(W("-c", "twice"), "-c", p, "-c", p);
	path = conf_file("[export a]\npath=/\nlowerdir=/l\nbad=1\n");
	snprintf(p, sizeof(p), "%s", path);
	CHECK_FAILS(W(":4:", "bad"), "-c", p);

	/* -o keeps serving every client with identities as sent */
	CHECK(parse(&cfg, err, sizeof(err), "-o", "lowerdir=/l", NULL) == 0);
	CHECK(cfg.exports[0].nclients == 0);
	CHECK(cfg.exports[0].squash == ONFS_SQUASH_NONE);
	CHECK(!cfg.exports[0].readonly);
	onfs_config_free(&cfg);
}

static void config_layers_differ(void)
{
	struct onfs_export_conf a = { 0 }, b = { 0 };
	char *la[] = { "/l1", "/l2" }, *lb[] = { "/l1", "/l3" };

	a.path = b.path = "/x";
	a.lowerdir[0] = la[0];
	a.lowerdir[1] = la[1];
	b.lowerdir[0] = la[0];
	b.lowerdir[1] = la[1];
	a.nlower = b.nlower = 2;
	CHECK(!onfs_config_layers_differ(&a, &b));
	b.squash = ONFS_SQUASH_ALL; /* rules are not layers */
	b.readonly = true;
	CHECK(!onfs_config_layers_differ(&a, &b));
	b.lowerdir[1] = lb[1];
	CHECK(onfs_config_layers_differ(&a, &b));
	b.lowerdir[1] = la[1];
	b.upperdir = "/u";
	CHECK(onfs_config_layers_differ(&a, &b));
	b.upperdir = NULL;
	b.path = "/y";
	CHECK(onfs_config_layers_differ(&a, &b));
	b.path = "/x";
	b.owner = "nobody";
	CHECK(onfs_config_layers_differ(&a, &b));
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
	if (conf_dir_make("test-config") < 0)
		return 1;
	config_file_full();
	config_file_defaults();
	config_file_errors();
	config_continuation_blanks();
	config_file_argv();
	config_layers_differ();
	conf_dir_remove();
	return unit_finish("config");
}
