/*
 * config.c - the command line (DESIGN section 1) and the kernel overlay
 * option string, turned into a struct onfs_config that is read-only once
 * main.c has it.
 *
 * Runs on the main thread before the loop and the pool exist. Never logs
 * (errors go back in err, naming the option at fault) and never touches the
 * filesystem: whether paths exist is checked by onfs_export_open.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"

#ifndef ONFS_VERSION
#define ONFS_VERSION "unknown"
#endif

#define ONFS_MIN_MAX_RECORD 8192
#define ONFS_MAX_MAX_RECORD (256u * 1024 * 1024)
#define ONFS_MAX_THREADS 1024

static const char usage_text[] =
	"usage: ovlnfsd [OPTIONS]\n"
	"       ovlnfsd -o lowerdir=LOWER[:LOWER...][,upperdir=UPPER,workdir=WORK] [OPTIONS]\n"
	"       ovlnfsd -c CONFIG_FILE [OPTIONS]\n"
	"\n"
	"Serve an overlay (lower/upper) directory tree over NFSv3 and MOUNT v3.\n"
	"Without -o or -c: build ./demo-overlay and serve it (demo mode).\n"
	"\n"
	"  -o OPTS               kernel overlay options: lowerdir= (':' separated, leftmost\n"
	"                        is the top layer, '\\:' escapes a colon, '\\,' a comma),\n"
	"                        upperdir= and workdir= (both or neither; neither: read-only)\n"
	"  -c FILE               configuration file (not supported yet)\n"
	"  --listen ADDR:PORT    NFS, MOUNT and portmap address (default 127.0.0.1:2049;\n"
	"                        [::]:PORT for IPv6; port 0 picks a free port)\n"
	"  --portmap ADDR:PORT   also answer portmap (PMAP v2) there, normally port 111\n"
	"  --export PATH         path clients mount (default /)\n"
	"  --port-file FILE      write the bound port to FILE once listening\n"
	"  --state-dir DIR       persistent state (default " ONFS_DEFAULT_STATE_DIR ")\n"
	"  --threads N           worker threads (default 4)\n"
	"  --max-record BYTES    largest RPC record accepted (default 1052672)\n"
	"  -f, --foreground      stay in the foreground, log to stderr\n"
	"  -v, --verbose         more log (repeatable)\n"
	"  -h, --help            this text\n"
	"  -V, --version         print the version\n";

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

/* --- host:port --- */

static int parse_port(const char *s, int *port)
{
	char *end;
	long v;

	if (*s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int onfs_config_parse_hostport(const char *s, char **host, int *port)
{
	const char *colon;
	char *h = NULL;
	unsigned char addr[16];
	int p;
	int ret = -1;

	if (!s || !*s)
		goto out;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			goto out;
		h = strndup(s + 1, (size_t)(close - s - 1));
		if (!h)
			goto out;
		if (inet_pton(AF_INET6, h, addr) != 1)
			goto out_free;
		if (parse_port(close + 2, &p) < 0)
			goto out_free;
	} else if ((colon = strchr(s, ':')) != NULL) {
		if (strchr(colon + 1, ':'))
			goto out; /* bare IPv6 needs brackets */
		h = strndup(s, (size_t)(colon - s));
		if (!h)
			goto out;
		if (inet_pton(AF_INET, h, addr) != 1)
			goto out_free;
		if (parse_port(colon + 1, &p) < 0)
			goto out_free;
	} else {
		if (parse_port(s, &p) < 0)
			goto out;
		h = strdup("127.0.0.1");
		if (!h)
			goto out;
	}
	*host = h;
	*port = p;
	ret = 0;
	goto out;
out_free:
	free(h);
out:
	return ret;
}

/* --- overlay option string --- */

/*
 * Copy s[0..len) into a new string, removing the backslash of "\:", "\,"
 * and "\\". Splitting has already happened on unescaped separators.
 */
static char *unescape(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len &&
		    (s[i + 1] == ':' || s[i + 1] == ',' || s[i + 1] == '\\'))
			i++;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* Length of the next field of s ending at an unescaped sep (or the end). */
static size_t field_len(const char *s, size_t len, char sep)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
			continue;
		}
		if (s[i] == sep)
			break;
	}
	return i;
}

/* what names the value in messages: "-o: 'lowerdir'" or "lowerdir". */
static int parse_lowerdir(const char *v, size_t vlen, struct onfs_export_conf *ec,
			  const char *what, char *err, size_t errlen)
{
	size_t pos = 0;

	if (vlen == 0)
		return fail(err, errlen, "%s is empty", what);
	while (pos <= vlen) {
		size_t n = field_len(v + pos, vlen - pos, ':');

		if (n == 0)
			return fail(err, errlen, "%s has an empty layer", what);
		if (ec->nlower == ONFS_MAX_LOWER)
			return fail(err, errlen, "%s has more than %d layers", what,
				    ONFS_MAX_LOWER);
		ec->lowerdir[ec->nlower] = unescape(v + pos, n);
		if (!ec->lowerdir[ec->nlower])
			return fail(err, errlen, "out of memory");
		ec->nlower++;
		pos += n + 1;
	}
	return 0;
}

/*
 * Kernel options whose effect ovlnfsd always has (DESIGN section 3); any
 * other value of these keys asks for a behaviour ovlnfsd does not offer.
 */
static const struct {
	const char *key;
	const char *values[3];
} fixed_opts[] = {
	{ "index", { "on", NULL } },
	{ "nfs_export", { "on", NULL } },
	{ "redirect_dir", { "on", "follow", NULL } },
	{ "xino", { "auto", "on", NULL } },
	{ "metacopy", { "off", NULL } },
};

static int check_fixed_opt(const char *key, size_t klen, const char *val, size_t vlen,
			   bool *known, char *err, size_t errlen)
{
	*known = false;
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(fixed_opts); i++) {
		if (strlen(fixed_opts[i].key) != klen || memcmp(fixed_opts[i].key, key, klen))
			continue;
		*known = true;
		for (size_t j = 0; fixed_opts[i].values[j]; j++) {
			if (strlen(fixed_opts[i].values[j]) == vlen &&
			    !memcmp(fixed_opts[i].values[j], val, vlen))
				return 0;
		}
		return fail(err, errlen,
			    "-o: '%.*s=%.*s' is not supported (ovlnfsd always behaves as %s=%s)",
			    (int)klen, key, (int)vlen, val, fixed_opts[i].key,
			    fixed_opts[i].values[0]);
	}
	return 0;
}

static void export_conf_free(struct onfs_export_conf *ec)
{
	free(ec->name);
	free(ec->path);
	for (size_t i = 0; i < ec->nlower; i++)
		free(ec->lowerdir[i]);
	free(ec->upperdir);
	free(ec->workdir);
	free(ec->owner);
	free(ec->clients);
	memset(ec, 0, sizeof(*ec));
}

int onfs_config_parse_overlay_opts(const char *opts, struct onfs_export_conf *ec,
				   char *err, size_t errlen)
{
	size_t len = opts ? strlen(opts) : 0;
	size_t pos = 0;
	int ret = -1;

	if (len == 0) {
		fail(err, errlen, "-o: empty option string (need at least lowerdir=)");
		goto out;
	}
	while (pos <= len) {
		const char *item = opts + pos;
		size_t n = field_len(item, len - pos, ',');
		size_t klen = field_len(item, n, '=');
		const char *val = item + klen + 1;
		size_t vlen = klen < n ? n - klen - 1 : 0;
		bool known;

		pos += n + 1;
		if (n == 0)
			continue; /* "a,,b" and a trailing comma, as the kernel */
		if (klen == n) {
			fail(err, errlen, "-o: unknown option '%.*s'", (int)n, item);
			goto out_free;
		}
		if (klen == 8 && !memcmp(item, "lowerdir", 8)) {
			if (ec->nlower) {
				fail(err, errlen, "-o: 'lowerdir' given twice");
				goto out_free;
			}
			if (parse_lowerdir(val, vlen, ec, "-o: 'lowerdir'", err, errlen) < 0)
				goto out_free;
		} else if ((klen == 8 && !memcmp(item, "upperdir", 8)) ||
			   (klen == 7 && !memcmp(item, "workdir", 7))) {
			char **dst = klen == 8 ? &ec->upperdir : &ec->workdir;

			if (*dst) {
				fail(err, errlen, "-o: '%.*s' given twice", (int)klen, item);
				goto out_free;
			}
			if (vlen == 0) {
				fail(err, errlen, "-o: '%.*s' is empty", (int)klen, item);
				goto out_free;
			}
			*dst = unescape(val, vlen);
			if (!*dst) {
				fail(err, errlen, "-o: out of memory");
				goto out_free;
			}
		} else {
			if (check_fixed_opt(item, klen, val, vlen, &known, err, errlen) < 0)
				goto out_free;
			if (!known) {
				fail(err, errlen, "-o: unknown option '%.*s'", (int)klen, item);
				goto out_free;
			}
		}
	}
	if (ec->nlower == 0) {
		fail(err, errlen, "-o: 'lowerdir' is missing");
		goto out_free;
	}
	if (ec->upperdir && !ec->workdir) {
		fail(err, errlen, "-o: 'upperdir' needs 'workdir'");
		goto out_free;
	}
	if (ec->workdir && !ec->upperdir) {
		fail(err, errlen, "-o: 'workdir' needs 'upperdir'");
		goto out_free;
	}
	ret = 0;
	goto out;
out_free:
	for (size_t i = 0; i < ec->nlower; i++) {
		free(ec->lowerdir[i]);
		ec->lowerdir[i] = NULL;
	}
	ec->nlower = 0;
	free(ec->upperdir);
	free(ec->workdir);
	ec->upperdir = ec->workdir = NULL;
out:
	return ret;
}

/* --- --export PATH --- */

/*
 * Absolute, without "." or ".." components; repeated and trailing slashes
 * are dropped. Returns a new string or NULL (errno EINVAL or ENOMEM).
 */
static char *normalize_export_path(const char *p)
{
	size_t len = strlen(p);
	char *out;
	size_t o = 0;

	if (p[0] != '/') {
		errno = EINVAL;
		return NULL;
	}
	out = malloc(len + 2);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n;

		while (p[i] == '/')
			i++;
		n = strcspn(p + i, "/");
		if (n == 0)
			break;
		if ((n == 1 && p[i] == '.') || (n == 2 && p[i] == '.' && p[i + 1] == '.')) {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* --- argv --- */

enum opt_id {
	OPT_OVERLAY, OPT_CONFIG, OPT_LISTEN, OPT_PORTMAP, OPT_EXPORT, OPT_PORT_FILE,
	OPT_STATE_DIR, OPT_THREADS, OPT_MAX_RECORD, OPT_FOREGROUND, OPT_VERBOSE,
	OPT_HELP, OPT_VERSION,
};

static const struct {
	char shortname; /* 0: long only */
	const char *longname; /* NULL: short only */
	bool has_arg;
	enum opt_id id;
} options[] = {
	{ 'o', NULL, true, OPT_OVERLAY },
	{ 'c', "config", true, OPT_CONFIG },
	{ 0, "listen", true, OPT_LISTEN },
	{ 0, "portmap", true, OPT_PORTMAP },
	{ 0, "export", true, OPT_EXPORT },
	{ 0, "port-file", true, OPT_PORT_FILE },
	{ 0, "state-dir", true, OPT_STATE_DIR },
	{ 0, "threads", true, OPT_THREADS },
	{ 0, "max-record", true, OPT_MAX_RECORD },
	{ 'f', "foreground", false, OPT_FOREGROUND },
	{ 'v', "verbose", false, OPT_VERBOSE },
	{ 'h', "help", false, OPT_HELP },
	{ 'V', "version", false, OPT_VERSION },
};

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'k' || *end == 'K') {
		if (v > max / 1024)
			return -1;
		v *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		if (v > max / (1024 * 1024))
			return -1;
		v *= 1024 * 1024;
		end++;
	}
	if (*end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int replace_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

/* Apply one option; name is how the user spelled it, for messages. */
static int apply_opt(struct onfs_config *cfg, enum opt_id id, const char *name,
		     const char *arg, const char **overlay_opts, char **export_path,
		     bool *state_dir_set, char *err, size_t errlen)
{
	unsigned long long v;
	char *host = NULL;
	int port;

	switch (id) {
	case OPT_OVERLAY:
		if (*overlay_opts)
			return fail(err, errlen, "option '%s' given twice (use -c for several exports)",
				    name);
		*overlay_opts = arg;
		return 0;
	case OPT_CONFIG:
		return fail(err, errlen, "option '%s': config files are not supported yet", name);
	case OPT_LISTEN:
	case OPT_PORTMAP:
		if (onfs_config_parse_hostport(arg, &host, &port) < 0)
			return fail(err, errlen,
				    "option '%s': invalid address '%s' (want ADDR:PORT, [IPV6]:PORT or PORT)",
				    name, arg);
		if (id == OPT_LISTEN) {
			free(cfg->listen_host);
			cfg->listen_host = host;
			cfg->listen_port = port;
		} else {
			free(cfg->portmap_host);
			cfg->portmap_host = host;
			cfg->portmap_port = port;
		}
		return 0;
	case OPT_EXPORT:
		free(*export_path);
		*export_path = normalize_export_path(arg);
		if (!*export_path)
			return fail(err, errlen,
				    "option '%s': '%s' must be an absolute path without '.' or '..'",
				    name, arg);
		return 0;
	case OPT_PORT_FILE:
		if (!*arg)
			return fail(err, errlen, "option '%s': empty file name", name);
		if (replace_str(&cfg->port_file, arg) < 0)
			return fail(err, errlen, "out of memory");
		return 0;
	case OPT_STATE_DIR:
		if (!*arg)
			return fail(err, errlen, "option '%s': empty directory name", name);
		if (replace_str(&cfg->state_dir, arg) < 0)
			return fail(err, errlen, "out of memory");
		*state_dir_set = true;
		return 0;
	case OPT_THREADS:
		if (parse_uint(arg, ONFS_MAX_THREADS, &v) < 0 || v == 0)
			return fail(err, errlen, "option '%s': '%s' is not a number from 1 to %d",
				    name, arg, ONFS_MAX_THREADS);
		cfg->threads = (int)v;
		return 0;
	case OPT_MAX_RECORD:
		if (parse_uint(arg, ONFS_MAX_MAX_RECORD, &v) < 0 || v < ONFS_MIN_MAX_RECORD)
			return fail(err, errlen,
				    "option '%s': '%s' is not a size from %d to %u bytes",
				    name, arg, ONFS_MIN_MAX_RECORD, ONFS_MAX_MAX_RECORD);
		cfg->max_record = (size_t)v;
		return 0;
	case OPT_FOREGROUND:
		cfg->foreground = true;
		return 0;
	case OPT_VERBOSE:
		cfg->verbose++;
		return 0;
	case OPT_HELP:
		fputs(usage_text, stdout);
		return 1;
	case OPT_VERSION:
		printf("ovlnfsd %s\n", ONFS_VERSION);
		return 1;
	}
	return fail(err, errlen, "option '%s': internal error", name);
}

static int set_defaults(struct onfs_config *cfg)
{
	cfg->listen_host = strdup("127.0.0.1");
	cfg->listen_port = ONFS_DEFAULT_PORT;
	cfg->threads = 4;
	cfg->max_record = ONFS_DEFAULT_MAX_RECORD;
	return cfg->listen_host ? 0 : -1;
}

int onfs_config_parse_args(int argc, char **argv, struct onfs_config *cfg,
			   char *err, size_t errlen)
{
	const char *overlay_opts = NULL;
	char *export_path = NULL;
	bool state_dir_set = false;
	struct onfs_export_conf *ec;
	int ret = -1;
	int r;

	if (set_defaults(cfg) < 0) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
			/* --name, --name=value, --name value */
			const char *eq = strchr(a + 2, '=');
			size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			size_t k;

			for (k = 0; k < ONFS_ARRAY_SIZE(options); k++) {
				if (options[k].longname && strlen(options[k].longname) == nlen &&
				    !memcmp(options[k].longname, a + 2, nlen))
					break;
			}
			if (k == ONFS_ARRAY_SIZE(options)) {
				fail(err, errlen, "unknown option '%.*s' (see --help)",
				     (int)(nlen + 2), a);
				goto out;
			}
			char name[64];
			const char *arg = NULL;

			snprintf(name, sizeof(name), "--%s", options[k].longname);
			if (options[k].has_arg) {
				if (eq) {
					arg = eq + 1;
				} else if (i + 1 < argc) {
					arg = argv[++i];
				} else {
					fail(err, errlen, "option '%s' needs an argument", name);
					goto out;
				}
			} else if (eq) {
				fail(err, errlen, "option '%s' takes no argument", name);
				goto out;
			}
			r = apply_opt(cfg, options[k].id, name, arg, &overlay_opts, &export_path,
				      &state_dir_set, err, errlen);
			if (r != 0) {
				ret = r;
				goto out;
			}
		} else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
			/* -fv, -o OPTS, -oOPTS */
			for (const char *c = a + 1; *c; c++) {
				char name[3] = { '-', *c, '\0' };
				const char *arg = NULL;
				size_t k;

				for (k = 0; k < ONFS_ARRAY_SIZE(options); k++) {
					if (options[k].shortname == *c)
						break;
				}
				if (k == ONFS_ARRAY_SIZE(options)) {
					fail(err, errlen, "unknown option '-%c' (see --help)", *c);
					goto out;
				}
				if (options[k].has_arg) {
					if (c[1]) {
						arg = c + 1;
					} else if (i + 1 < argc) {
						arg = argv[++i];
					} else {
						fail(err, errlen, "option '%s' needs an argument", name);
						goto out;
					}
				}
				r = apply_opt(cfg, options[k].id, name, arg, &overlay_opts,
					      &export_path, &state_dir_set, err, errlen);
				if (r != 0) {
					ret = r;
					goto out;
				}
				if (arg)
					break;
			}
		} else if (!strcmp(a, "--")) {
			if (i + 1 < argc) {
				fail(err, errlen, "unexpected argument '%s'", argv[i + 1]);
				goto out;
			}
			break;
		} else {
			fail(err, errlen, "unexpected argument '%s' (see --help)", a);
			goto out;
		}
	}

	ec = &cfg->exports[0];
	if (overlay_opts) {
		if (onfs_config_parse_overlay_opts(overlay_opts, ec, err, errlen) < 0)
			goto out;
		ec->name = strdup("default");
	} else {
		/* demo mode: onfs_demo_setup fills the layers and the state dir */
		cfg->demo = true;
		ec->name = strdup("demo");
	}
	ec->path = export_path ? export_path : strdup("/");
	export_path = NULL;
	cfg->nexports = 1;
	if (!ec->name || !ec->path) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (!state_dir_set && !cfg->demo) {
		cfg->state_dir = strdup(ONFS_DEFAULT_STATE_DIR);
		if (!cfg->state_dir) {
			fail(err, errlen, "out of memory");
			goto out;
		}
	}
	ret = 0;
out:
	free(export_path);
	return ret;
}

void onfs_config_free(struct onfs_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->listen_host);
	free(cfg->portmap_host);
	free(cfg->port_file);
	free(cfg->state_dir);
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(cfg->exports); i++)
		export_conf_free(&cfg->exports[i]);
	memset(cfg, 0, sizeof(*cfg));
}
