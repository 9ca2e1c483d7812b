/*
 * test-nlm-config.c - the lock manager's configuration: `locking =
 * on|off|local` per export, `grace = SECONDS` in [server], `--grace` on
 * the command line (which wins over the file), and the errors that name
 * the file, line and key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovlnfsd/config.h"
#include "ovlnfsd/lock.h"
#include "conf.h"

static const char *base =
	"[export a]\npath = /a\nlowerdir = /nonexistent-a\n%s\n"
	"[export b]\npath = /b\nlowerdir = /nonexistent-b\n";

static int load(const char *server, const char *exportkey, struct onfs_config *cfg, char *err,
		size_t errlen)
{
	char text[1024];

	snprintf(text, sizeof(text), "[server]\n%s\n", server);
	snprintf(text + strlen(text), sizeof(text) - strlen(text), base, exportkey);
	memset(cfg, 0, sizeof(*cfg));
	cfg->grace = -1;
	err[0] = 0;
	return onfs_config_load_file(conf_write("c.conf", text), cfg, err, errlen);
}

int main(void)
{
	struct onfs_config cfg;
	char err[512];
	static const char *const modes[] = { "on", "off", "local" };

	if (conf_dir_make("nlmconf") < 0)
		return 1;
	for (int i = 0; i < 3; i++) {
		char key[64];

		snprintf(key, sizeof(key), "locking = %s", modes[i]);
		CHECK_EQ(load("", key, &cfg, err, sizeof(err)), 0);
		CHECK_EQ(cfg.exports[0].locking, i); /* ONFS_LOCKING_ON, OFF, LOCAL */
		CHECK_EQ(cfg.exports[1].locking, ONFS_LOCKING_ON);
		CHECK_EQ(cfg.grace, -1);
		onfs_config_free(&cfg);
	}
	CHECK_EQ(load("", "locking = maybe", &cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "c.conf:6") && strstr(err, "locking") && strstr(err, "maybe"));
	if (!strstr(err, "c.conf:6"))
		fprintf(stderr, "error was: %s\n", err);
	onfs_config_free(&cfg);

	CHECK_EQ(load("grace = 15", "", &cfg, err, sizeof(err)), 0);
	CHECK_EQ(cfg.grace, 15);
	onfs_config_free(&cfg);
	CHECK_EQ(load("grace = 0", "", &cfg, err, sizeof(err)), 0);
	CHECK_EQ(cfg.grace, 0);
	onfs_config_free(&cfg);
	CHECK_EQ(load("grace = soon", "", &cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "c.conf:2") && strstr(err, "grace"));
	onfs_config_free(&cfg);

	/* the command line: --grace, and its errors */
	{
		char *argv[] = { "ovlnfsd", "-o", "lowerdir=/x", "--grace", "7", NULL };
		char *bad[] = { "ovlnfsd", "-o", "lowerdir=/x", "--grace", "-1", NULL };
		char *none[] = { "ovlnfsd", "-o", "lowerdir=/x", NULL };

		memset(&cfg, 0, sizeof(cfg));
		CHECK_EQ(onfs_config_parse_args(5, argv, &cfg, err, sizeof(err)), 0);
		CHECK_EQ(cfg.grace, 7);
		CHECK_EQ(cfg.exports[0].locking, ONFS_LOCKING_ON);
		onfs_config_free(&cfg);
		memset(&cfg, 0, sizeof(cfg));
		CHECK_EQ(onfs_config_parse_args(5, bad, &cfg, err, sizeof(err)), -1);
		CHECK(strstr(err, "--grace") != NULL);
		onfs_config_free(&cfg);
		memset(&cfg, 0, sizeof(cfg));
		CHECK_EQ(onfs_config_parse_args(3, none, &cfg, err, sizeof(err)), 0);
		CHECK_EQ(cfg.grace, -1); /* the default (90 s) applies */
		onfs_config_free(&cfg);
	}
	/* --grace wins over the file's grace */
	{
		const char *path = conf_write("d.conf", "[server]\ngrace = 30\n[export a]\npath = /\n"
					"lowerdir = /nonexistent\n");
		char *argv[] = { "ovlnfsd", "-c", (char *)path, "--grace", "2", NULL };
		char *argv2[] = { "ovlnfsd", "-c", (char *)path, NULL };

		memset(&cfg, 0, sizeof(cfg));
		CHECK_EQ(onfs_config_parse_args(5, argv, &cfg, err, sizeof(err)), 0);
		CHECK_EQ(cfg.grace, 2);
		onfs_config_free(&cfg);
		memset(&cfg, 0, sizeof(cfg));
		CHECK_EQ(onfs_config_parse_args(3, argv2, &cfg, err, sizeof(err)), 0);
		CHECK_EQ(cfg.grace, 30);
		onfs_config_free(&cfg);
	}
	conf_dir_remove();
	return unit_finish("nlm-config");
}
