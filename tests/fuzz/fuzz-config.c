/*
 * fuzz-config.c - libFuzzer target for the configuration parsers
 * (server/config.c over inih, and the template rules of server/template.c
 * it applies): the INI file as startup and SIGHUP reload read it, the same
 * file as --check-config reads it (every error reported, parsing goes on),
 * the kernel overlay option string of -o, ADDR:PORT values, and the
 * command line. Also linked with replay.c into an ordinary test that
 * replays the corpus.
 *
 * Input: byte 0 selects what the rest is:
 *   0  an INI file (written to a memfd, then loaded and checked through
 *      its /proc/self/fd name: no disk file, no writeback per input)
 *   1  an overlay option string ("lowerdir=...,upperdir=...,workdir=...")
 *   2  a host:port value
 *   3  a command line, arguments separated by NUL bytes; -c/--config and
 *      --check-config are left out (they would read a file the fuzzer
 *      names, such as a device that never ends)
 * Nothing is created or served; every parse is freed (LeakSanitizer).
 *
 * Single-threaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char conf_path[64];
static int conf_fd = -1;

static void count_report(void *ctx, const char *msg)
{
	/* every message names the file (the only checked-in promise) */
	if (!strstr(msg, conf_path))
		abort();
	(*(size_t *)ctx)++;
}

static void fuzz_file(const uint8_t *p, size_t len)
{
	struct onfs_config cfg;
	char err[1024];
	size_t nreport = 0;
	int r1, r2;

	if (conf_fd < 0) {
		/*
		 * One memory file for the whole run, opened by the loader by
		 * name like any file: a temporary file on disk cost a
		 * truncate and a writeback per input.
		 */
		conf_fd = memfd_create("onfs-fuzz-conf", MFD_CLOEXEC);
		if (conf_fd < 0)
			abort();
		snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	}
	if (ftruncate(conf_fd, 0) < 0)
		abort();
	for (size_t off = 0; off < len;) {
		ssize_t w = pwrite(conf_fd, p + off, len - off, (off_t)off);

		if (w <= 0)
			abort();
		off += (size_t)w;
	}

	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	r1 = onfs_config_load_file(conf_path, &cfg, err, sizeof(err));
	if (r1 < 0 && !err[0])
		abort(); /* an error must say what is wrong */
	if (r1 == 0 && cfg.nexports > ONFS_ARRAY_SIZE(cfg.exports))
		abort();
	onfs_config_free(&cfg);

	memset(&cfg, 0, sizeof(cfg));
	r2 = onfs_config_check_file(conf_path, &cfg, count_report, &nreport);
	/* the checker finds an error exactly when the loader refuses */
	if ((r1 < 0) != (r2 > 0) || (size_t)r2 != nreport)
		abort();
	onfs_config_free(&cfg);
}

static char *cstr(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static void fuzz_overlay(const uint8_t *p, size_t len)
{
	struct onfs_config cfg;
	char err[512];
	char *s = cstr(p, len);

	memset(&cfg, 0, sizeof(cfg));
	cfg.nexports = 1; /* so onfs_config_free frees what the parse kept */
	if (onfs_config_parse_overlay_opts(s, &cfg.exports[0], err, sizeof(err)) == 0 &&
	    cfg.exports[0].nlower > ONFS_MAX_LOWER)
		abort();
	onfs_config_free(&cfg);
	free(s);
}

static void fuzz_hostport(const uint8_t *p, size_t len)
{
	char *s = cstr(p, len), *host = NULL;
	int port = -1;

	if (onfs_config_parse_hostport(s, &host, &port) == 0 && (port < 0 || port > 65535))
		abort();
	free(host);
	free(s);
}

static bool reads_a_file(const char *a)
{
	if (a[0] != '-')
		return false;
	if (a[1] == '-')
		return strncmp(a, "--c", 3) == 0;
	return strchr(a, 'c') != NULL;
}

static void fuzz_argv(const uint8_t *p, size_t len)
{
	char *buf = cstr(p, len);
	char *argv[33];
	int argc = 0;
	size_t i = 0;
	struct onfs_config cfg;
	char err[1024];

	argv[argc++] = (char *)"ovlnfsd";
	while (i <= len && argc < 32) {
		char *a = buf + i;

		i += strlen(a) + 1;
		if (!reads_a_file(a))
			argv[argc++] = a;
	}
	argv[argc] = NULL;
	memset(&cfg, 0, sizeof(cfg));
	/* --help and --version print to stdout: keep the fuzzer's output readable */
	if (onfs_config_parse_args(argc, argv, &cfg, err, sizeof(err)) < 0 && !err[0])
		abort();
	onfs_config_free(&cfg);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	onfs_log_verbosity = -1;
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_file(data + 1, size - 1);
		break;
	case 1:
		fuzz_overlay(data + 1, size - 1);
		break;
	case 2:
		fuzz_hostport(data + 1, size - 1);
		break;
	default:
		fuzz_argv(data + 1, size - 1);
		break;
	}
	return 0;
}
