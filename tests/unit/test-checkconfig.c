/*
 * test-checkconfig.c - onfs_config_check_file (--check-config): every error
 * of a file is reported, each with the file and its own line, and parsing
 * goes on after each; a valid file reports nothing. The binary's exit
 * status and output are checked by tests/integration/test-check-config.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovlnfsd/config.h"
#include "conf.h"

struct seen {
	char msgs[32][512];
	int n;
};

static void collect(void *ctx, const char *msg)
{
	struct seen *s = ctx;

	if (s->n < 32)
		snprintf(s->msgs[s->n], sizeof(s->msgs[0]), "%s", msg);
	s->n++;
}

/* msgs[i] starts with "PATH:LINE:" and contains what. */
static void check_msg(const struct seen *s, int i, const char *path, int line, const char *what)
{
	char want[320];

	snprintf(want, sizeof(want), "%s:%d:", path, line);
	if (i >= s->n || strncmp(s->msgs[i], want, strlen(want)) != 0 ||
	    !strstr(s->msgs[i], what)) {
		FAIL("error %d: want '%s ... %s', got '%s'", i, want, what,
		     i < s->n ? s->msgs[i] : "(none)");
	}
}

static void test_every_error(void)
{
	struct onfs_config cfg = { 0 };
	struct seen s = { .n = 0 };
	const char *p = conf_write("bad.conf",
		"[server]\n"                       /* 1 */
		"listen = nowhere\n"               /* 2 */
		"threads = 0\n"                    /* 3 */
		"this line has no equals sign\n"   /* 4 */
		"[export a]\n"                     /* 5 */
		"path = /a\n"                      /* 6 */
		"lowerdir = /l\n"                  /* 7 */
		"squash = maybe\n"                 /* 8 */
		"colour = blue\n"                  /* 9 */
		"[export a]\n"                     /* 10 */
		"path = /b\n"                      /* 11: not checked: its header was refused */
		"[bogus]\n"                        /* 12 */
		"[export c]\n"                     /* 13 */
		"path = /c\n"                      /* 14 */
		"lowerdir = relative\n"            /* 15 */
		"[export d]\n"                     /* 16 */
		"path = /d\n");                    /* 17, and d lacks lowerdir (line 16) */
	int n = onfs_config_check_file(p, &cfg, collect, &s);

	CHECK_EQ(n, 9);
	CHECK_EQ(s.n, 9);
	check_msg(&s, 0, p, 2, "[server] listen: invalid address 'nowhere'");
	check_msg(&s, 1, p, 3, "[server] threads:");
	check_msg(&s, 2, p, 4, "syntax error");
	check_msg(&s, 3, p, 8, "[export a] squash: 'maybe'");
	check_msg(&s, 4, p, 9, "[export a] colour: unknown key");
	check_msg(&s, 5, p, 10, "[export a] given twice (first at line 5)");
	check_msg(&s, 6, p, 12, "unknown section [bogus]");
	check_msg(&s, 7, p, 15, "[export c] lowerdir: layer 'relative' must be an absolute path");
	check_msg(&s, 8, p, 16, "[export d] lowerdir: missing");
	onfs_config_free(&cfg);
}

static void test_valid_file(void)
{
	struct onfs_config cfg = { 0 };
	struct seen s = { .n = 0 };
	const char *p = conf_write("good.conf",
		"[server]\nlisten = 0.0.0.0:2049\n"
		"[export a]\npath = /a\nlowerdir = /l1:\n  /l2\nupperdir = /u\nworkdir = /w\n"
		"[export b]\npath = /b\nlowerdir = /l1\nclients = 10.0.0.0/8\n");

	CHECK_EQ(onfs_config_check_file(p, &cfg, collect, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(cfg.nexports, 2);
	CHECK_EQ(cfg.exports[0].nlower, 2);
	onfs_config_free(&cfg);
}

static void test_missing_file(void)
{
	struct onfs_config cfg = { 0 };
	struct seen s = { .n = 0 };
	char p[300];

	snprintf(p, sizeof(p), "%s/absent.conf", conf_dir);
	CHECK_EQ(onfs_config_check_file(p, &cfg, collect, &s), 1);
	CHECK(s.n == 1 && strstr(s.msgs[0], "absent.conf") && strstr(s.msgs[0], "No such file"));
	onfs_config_free(&cfg);
}

/*
 * A line of \v or \f alone is blank to libinih (isspace), so to the loader:
 * the checker must not call it a syntax error (a fuzz-config finding).
 */
static void test_vt_ff_blank(void)
{
	struct onfs_config cfg = { 0 };
	struct seen s = { .n = 0 };
	char err[512];
	const char *p = conf_write("vt.conf", "[export a]\npath = /a\n\v\nlowerdir = /l\n\f\n");

	CHECK_EQ(onfs_config_load_file(p, &cfg, err, sizeof(err)), 0);
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ(onfs_config_check_file(p, &cfg, collect, &s), 0);
	CHECK_EQ(s.n, 0);
	onfs_config_free(&cfg);
}

/* The ordinary loader still stops at (and names) the first error. */
static void test_loader_first_error(void)
{
	struct onfs_config cfg = { 0 };
	char err[512];
	const char *p = conf_write("two.conf", "[server]\nthreads = 0\nlisten = x\n"
					       "[export a]\npath=/\nlowerdir=/l\n");

	CHECK(onfs_config_load_file(p, &cfg, err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2: [server] threads") != NULL);
	onfs_config_free(&cfg);
}

/* portmap = off (file) and --portmap off (command line; wins over the file) */
static void test_portmap_off(void)
{
	struct onfs_config cfg = { 0 };
	char err[512];
	const char *p = conf_write("pm.conf", "[server]\nportmap = off\n"
					      "[export a]\npath=/\nlowerdir=/l\n");
	char *argv1[] = { "ovlnfsd", "-c", (char *)p, NULL };
	char *argv2[] = { "ovlnfsd", "-o", "lowerdir=/l", "--portmap", "off", NULL };
	char *argv3[] = { "ovlnfsd", "-c", (char *)p, "--portmap", "0.0.0.0:111", NULL };

	CHECK_EQ(onfs_config_parse_args(3, argv1, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.portmap_off && !cfg.portmap_host);
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ(onfs_config_parse_args(5, argv2, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.portmap_off && !cfg.portmap_host);
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ(onfs_config_parse_args(5, argv3, &cfg, err, sizeof(err)), 0);
	CHECK(!cfg.portmap_off && cfg.portmap_host && cfg.portmap_port == 111);
	onfs_config_free(&cfg);
}

/* metrics = ADDR:PORT (file) and --metrics (command line; wins over the file) */
static void test_metrics_key(void)
{
	struct onfs_config cfg = { 0 };
	char err[512];
	const char *p = conf_write("m.conf", "[server]\nmetrics = 127.0.0.1:9469\n"
					     "[export a]\npath=/\nlowerdir=/l\n");
	const char *bad = NULL;
	char *argv1[] = { "ovlnfsd", "-c", (char *)p, NULL };
	char *argv2[] = { "ovlnfsd", "-c", (char *)p, "--metrics", "[::1]:0", NULL };
	char *argv3[] = { "ovlnfsd", "-o", "lowerdir=/l", "--metrics", "nowhere", NULL };

	CHECK_EQ(onfs_config_parse_args(3, argv1, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.metrics_host && !strcmp(cfg.metrics_host, "127.0.0.1") && cfg.metrics_port == 9469);
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ(onfs_config_parse_args(5, argv2, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.metrics_host && !strcmp(cfg.metrics_host, "::1") && cfg.metrics_port == 0);
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	CHECK(onfs_config_parse_args(5, argv3, &cfg, err, sizeof(err)) < 0);
	CHECK(strstr(err, "--metrics") && strstr(err, "nowhere"));
	onfs_config_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	bad = conf_write("mbad.conf", "[server]\nmetrics = x:y\n[export a]\npath=/\nlowerdir=/l\n");
	CHECK(onfs_config_load_file(bad, &cfg, err, sizeof(err)) < 0);
	CHECK(strstr(err, ":2: [server] metrics: invalid address 'x:y'") != NULL);
	onfs_config_free(&cfg);
}

int main(void)
{
	if (conf_dir_make("checkconfig") < 0)
		return 1;
	test_every_error();
	test_valid_file();
	test_missing_file();
	test_vt_ff_blank();
	test_loader_first_error();
	test_portmap_off();
	test_metrics_key();
	conf_dir_remove();
	return unit_finish("checkconfig");
}
