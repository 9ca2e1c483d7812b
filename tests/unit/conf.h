/*
 * conf.h - what the configuration's unit tests share (test-config.c,
 * test-template.c, test-checkconfig.c, test-nlm-config.c): config files
 * in a scratch directory, parse() for a command line, and CONF() to load
 * a file and check what its error says. It includes unit.h.
 */
#ifndef OVLNFSD_TESTS_UNIT_CONF_H
#define OVLNFSD_TESTS_UNIT_CONF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/config.h"
#include "unit.h"

static char conf_dir[64];
static int conf_seq;

/* conf_dir: a new directory /tmp/onfs-TEST-XXXXXX; 0, or -1 (said on stderr). */
static inline int conf_dir_make(const char *test)
{
	snprintf(conf_dir, sizeof(conf_dir), "/tmp/onfs-%s-XXXXXX", test);
	if (!mkdtemp(conf_dir)) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

/* Removes conf_dir and what is in it; not managing to is a failure. */
static inline void conf_dir_remove(void)
{
	char cmd[sizeof(conf_dir) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", conf_dir);
	CHECK(system(cmd) == 0);
}

/* Writes TEXT to conf_dir/NAME (NULL: a new cN.conf); returns its path (static buffer). */
static inline const char *conf_write(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	if (name)
		snprintf(path, sizeof(path), "%s/%s", conf_dir, name);
	else
		snprintf(path, sizeof(path), "%s/c%d.conf", conf_dir, ++conf_seq);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		FAIL("cannot write %s", path);
	return path;
}

static inline const char *conf_file(const char *text)
{
	return conf_write(NULL, text);
}

/* Parses a NULL-terminated argument list; returns onfs_config_parse_args' result. */
static inline int parse(struct onfs_config *cfg, char *err, size_t errlen, ...)
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

/*
 * LINE 0: the file at PATH loads. Else loading it fails, and the message
 * holds "PATH:LINE:" and every word. SRCFILE:SRCLINE, the caller's, is
 * where failures are reported.
 */
static inline void check_conf(const char *srcfile, int srcline, const char *path, int line,
			      const char *const *words, size_t nwords)
{
	struct onfs_config cfg;
	char err[2048] = "", want[300];
	int r;

	memset(&cfg, 0, sizeof(cfg));
	r = onfs_config_load_file(path, &cfg, err, sizeof(err));
	if (line == 0) {
		if (r != 0)
			unit_fail(srcfile, srcline, "want loaded, got '%s'", err);
		onfs_config_free(&cfg);
		return;
	}
	if (r != -1)
		unit_fail(srcfile, srcline, "config loaded, want an error");
	snprintf(want, sizeof(want), "%s:%d:", path, line);
	if (!strstr(err, want))
		unit_fail(srcfile, srcline, "error '%s' lacks '%s'", err, want);
	for (size_t i = 0; i < nwords; i++)
		if (!strstr(err, words[i]))
			unit_fail(srcfile, srcline, "error '%s' lacks '%s'", err, words[i]);
	onfs_config_free(&cfg);
}

#define CONF(path, line, ...)                                                             \
	do {                                                                              \
		const char *const _w[] = { "", __VA_ARGS__ };                             \
		check_conf(__FILE__, __LINE__, path, line, _w, sizeof(_w) / sizeof(_w[0])); \
	} while (0)

#endif
