/*
 * config.c - the command line (README.md, "Usage") and the kernel overlay
 * option string, turned into a struct onfs_config that is read-only once
 * main.c has it.
 *
 * The config file (-c, INI through libinih): [server] and [export NAME]
 * sections into the same struct; every error names the file, the line and
 * the key at fault.
 *
 * Runs on the main thread (startup, and SIGHUP reload on the loop thread).
 * Never logs (errors go back in err, naming the option at fault) and never
 * touches the filesystem beyond reading the config file: whether paths
 * exist is checked by onfs_export_open.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/template.h"
#include "ovlnfsd/lock.h"

#ifndef ONFS_VERSION
#define ONFS_VERSION "unknown"
#endif

#define ONFS_MIN_MAX_RECORD 8192
#define ONFS_MAX_MAX_RECORD (256u * 1024 * 1024)
#define ONFS_MAX_THREADS 1024
#define ONFS_MAX_GRACE 3600
#define ONFS_MAX_BASE_CHECK 86400
#define ONFS_MAX_MAX_CONNS 1000000
#define ONFS_MAX_IO_TIMEOUT 3600

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
	"                        upperdir= and workdir= (both or neither; neither: read-only;\n"
	"                        {client}, {host} or {name} in both: one upper per client),\n"
	"                        max_instances=N, idle_timeout=SECONDS (templates only)\n"
	"  -c FILE               configuration file (INI: [server], [export NAME]...);\n"
	"                        SIGHUP reloads it. Not with -o or --export\n"
	"  --listen ADDR:PORT    NFS, MOUNT and portmap address (default 127.0.0.1:2049;\n"
	"                        [::]:PORT for IPv6; port 0 picks a free port)\n"
	"  --portmap ADDR:PORT   also answer portmap (PMAP v2) there; 'off': never use\n"
	"                        port 111 (default on port 2049: answer on LISTEN:111 when\n"
	"                        it is free, else register with the system rpcbind)\n"
	"  --export PATH         path clients mount (default /)\n"
	"  --port-file FILE      write the bound port to FILE once listening\n"
	"  --state-dir DIR       persistent state (default " ONFS_DEFAULT_STATE_DIR ")\n"
	"  --threads N           worker threads (default 16)\n"
	"  --max-record BYTES    largest RPC record accepted (default 1052672)\n"
	"  --max-connections N   TCP connections held at once; beyond it the longest-idle\n"
	"                        one is closed (default: 4096, lowered to fit the\n"
	"                        descriptor limit)\n"
	"  --io-timeout SECONDS  a record must arrive, a queued reply be taken, within\n"
	"                        this, else the connection is closed (default 30)\n"
	"  --metrics ADDR:PORT   serve Prometheus metrics over HTTP there (/metrics)\n"
	"  --check-config        with -c FILE: check the file (every error with its line)\n"
	"                        and the directories it names, serve nothing; exit 0 or 1\n"
	"  --grace SECONDS       NLM grace period after a restart with lock holders\n"
	"                        recorded (default 90)\n"
	"  -f, --foreground      stay in the foreground, log to stderr\n"
	"  -v, --verbose         more log (repeatable)\n"
	"  -h, --help            this text\n"
	"  -V, --version         print the version\n";

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int parse_uint_plain(const char *s, unsigned long long max, unsigned long long *out);

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
 * Kernel options whose effect ovlnfsd always has (docs/overlay.md); any
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
		} else if ((klen == 13 && !memcmp(item, "max_instances", 13)) ||
			   (klen == 12 && !memcmp(item, "idle_timeout", 12))) {
			char num[32];
			unsigned long long v;
			bool mi = klen == 13;

			snprintf(num, sizeof(num), "%.*s", (int)(vlen < 31 ? vlen : 31), val);
			if (vlen > 30 ||
			    parse_uint_plain(num, mi ? 1000000 : 365ull * 86400, &v) < 0) {
				fail(err, errlen, "-o: '%.*s=%.*s' is not a number from 0 to %s",
				     (int)klen, item, (int)vlen, val,
				     mi ? "1000000" : "31536000 (seconds)");
				goto out_free;
			}
			if (mi)
				ec->max_instances = (unsigned)v;
			else
				ec->idle_timeout = (unsigned)v;
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
	OPT_HELP, OPT_VERSION, OPT_CHECK_CONFIG, OPT_METRICS, OPT_GRACE,
	OPT_MAX_CONNS, OPT_IO_TIMEOUT,
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
	{ 0, "grace", true, OPT_GRACE },
	{ 0, "max-connections", true, OPT_MAX_CONNS },
	{ 0, "io-timeout", true, OPT_IO_TIMEOUT },
	{ 'f', "foreground", false, OPT_FOREGROUND },
	{ 'v', "verbose", false, OPT_VERBOSE },
	{ 'h', "help", false, OPT_HELP },
	{ 'V', "version", false, OPT_VERSION },
	{ 0, "check-config", false, OPT_CHECK_CONFIG },
	{ 0, "metrics", true, OPT_METRICS },
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

/* A plain decimal number (no size suffix) up to max. */
static int parse_uint_plain(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* --metrics / metrics = ADDR:PORT (metrics.c); a bare PORT is loopback. */
static int set_metrics(struct onfs_config *cfg, const char *v)
{
	char *host = NULL;
	int port;

	if (onfs_config_parse_hostport(v, &host, &port) < 0)
		return -1;
	free(cfg->metrics_host);
	cfg->metrics_host = host;
	cfg->metrics_port = port;
	return 0;
}

/* "off" for --portmap / portmap =: no portmapper at all (rpcbind.c). */
static bool portmap_off(struct onfs_config *cfg, const char *v)
{
	if (strcmp(v, "off") != 0)
		return false;
	free(cfg->portmap_host);
	cfg->portmap_host = NULL;
	cfg->portmap_off = true;
	return true;
}

/* --- the config file (-c FILE) --- */

/*
 * libinih reads the file through cfg_reader below, which also counts lines
 * (the library's handler gets no line number), spots section headers (so
 * that an [export NAME] without keys still exists and errors can name its
 * line) and continuation lines (a long lowerdir or clients value may go on
 * over indented lines: libinih's lines are at most INI_MAX_LINE bytes).
 */
enum ini_key {
	K_PATH = 1u << 0, K_LOWER = 1u << 1, K_UPPER = 1u << 2, K_WORK = 1u << 3,
	K_CLIENTS = 1u << 4, K_ACCESS = 1u << 5, K_SQUASH = 1u << 6, K_ANONUID = 1u << 7,
	K_ANONGID = 1u << 8, K_SECURE = 1u << 9, K_OWNER = 1u << 10,
	K_MAX_INST = 1u << 11, K_IDLE = 1u << 12, K_LOCKING = 1u << 13,
	/* [server] */
	K_LISTEN = 1u << 16, K_PORTMAP = 1u << 17, K_THREADS = 1u << 18, K_LOG = 1u << 19,
	K_VERBOSE = 1u << 20, K_STATE_DIR = 1u << 21, K_MAX_RECORD = 1u << 22,
	K_PORT_FILE = 1u << 23, K_METRICS = 1u << 24, K_GRACE = 1u << 25,
	K_MAX_CONNS = 1u << 26, K_IO_TIMEOUT = 1u << 27, K_LAYERS = 1u << 28,
	K_BASE_CHECK = 1u << 29,
};

static const struct {
	const char *name;
	enum ini_key key;
	bool server; /* a [server] key; else an [export] key */
} ini_keys[] = {
	{ "path", K_PATH, false }, { "lowerdir", K_LOWER, false },
	{ "upperdir", K_UPPER, false }, { "workdir", K_WORK, false },
	{ "clients", K_CLIENTS, false }, { "access", K_ACCESS, false },
	{ "squash", K_SQUASH, false }, { "anonuid", K_ANONUID, false },
	{ "anongid", K_ANONGID, false }, { "secure", K_SECURE, false },
	{ "owner", K_OWNER, false }, { "locking", K_LOCKING, false },
	{ "max_instances", K_MAX_INST, false }, { "idle_timeout", K_IDLE, false },
	{ "listen", K_LISTEN, true }, { "portmap", K_PORTMAP, true },
	{ "threads", K_THREADS, true }, { "log", K_LOG, true }, { "verbose", K_VERBOSE, true },
	{ "state_dir", K_STATE_DIR, true }, { "max_record", K_MAX_RECORD, true },
	{ "port_file", K_PORT_FILE, true }, { "metrics", K_METRICS, true }, { "grace", K_GRACE, true },
	{ "max_connections", K_MAX_CONNS, true }, { "io_timeout", K_IO_TIMEOUT, true },
	{ "layers", K_LAYERS, true }, { "base_check_interval", K_BASE_CHECK, true },
};

struct ini_state {
	const char *file;
	FILE *f;
	char *buf;            /* owned; getline's buffer */
	size_t bufcap;
	int line;             /* number of the line libinih is working on */
	bool cont;            /* that line is a continuation (starts with blanks) */
	bool in_server;       /* current section is [server] */
	int server_line;      /* 0: no [server] yet */
	struct onfs_export_conf *ex; /* current [export]; NULL in [server] or before */
	struct onfs_config *cfg;
	unsigned seen[ONFS_MAX_EXPORTS + 1]; /* keys given per export; [ONFS_MAX_EXPORTS]: server */
	int key_line[ONFS_MAX_EXPORTS][14];  /* line of each export key (bit index) */
	char *raw_lower[ONFS_MAX_EXPORTS];   /* owned; lowerdir text incl. continuations */
	char *raw_clients[ONFS_MAX_EXPORTS]; /* owned */
	char *err;
	size_t errlen;
	int err_line;         /* 0: no error recorded yet */
	/* --check-config: every error goes to report() and parsing goes on */
	void (*report)(void *ctx, const char *msg);
	void *report_ctx;
	int nerrors;
	bool skip_section;    /* its header was refused: its keys are not checked */
	size_t finish_idx;    /* the export ini_finish is checking */
};

static int ini_fail(struct ini_state *st, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Record the first error only: "FILE:LINE: [SECTION] KEY: message". */
static int ini_fail(struct ini_state *st, int line, const char *key, const char *fmt, ...)
{
	char msg[512];
	char sect[160] = "";
	va_list ap;

	if (st->err_line)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->ex)
		snprintf(sect, sizeof(sect), " [export %s]", st->ex->name);
	else if (st->in_server)
		snprintf(sect, sizeof(sect), " [server]");
	snprintf(st->err, st->errlen, "%s:%d:%s%s%s%s %s", st->file, line, sect,
		 key ? " " : "", key ? key : "", key ? ":" : "", msg);
	if (st->report) {
		st->report(st->report_ctx, st->err);
		st->nerrors++;
		return 0;
	}
	st->err_line = line;
	return 0; /* libinih: handler error */
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* A section header line: switch the current section (errors recorded). */
static void ini_header(struct ini_state *st, char *start)
{
	char *close = strchr(start, ']');
	char *name;

	if (!close)
		return; /* libinih reports the syntax error */
	*close = '\0';
	name = trim(start + 1);
	st->ex = NULL;
	st->in_server = false;
	if (strcmp(name, "server") == 0) {
		if (st->server_line) {
			ini_fail(st, st->line, NULL, "[server] given twice (first at line %d)",
				 st->server_line);
			return;
		}
		st->in_server = true;
		st->server_line = st->line;
		return;
	}
	if (strncmp(name, "export", 6) == 0 && (name[6] == ' ' || name[6] == '\t')) {
		struct onfs_config *cfg = st->cfg;
		struct onfs_export_conf *ec;

		name = trim(name + 6);
		if (!*name || strpbrk(name, " \t")) {
			ini_fail(st, st->line, NULL,
				 "bad section name: want [export NAME] with a NAME without blanks");
			return;
		}
		for (size_t i = 0; i < cfg->nexports; i++) {
			if (strcmp(cfg->exports[i].name, name) == 0) {
				ini_fail(st, st->line, NULL,
					 "[export %s] given twice (first at line %d)", name,
					 cfg->exports[i].line);
				return;
			}
		}
		if (cfg->nexports == ONFS_MAX_EXPORTS) {
			ini_fail(st, st->line, NULL, "more than %d exports", ONFS_MAX_EXPORTS);
			return;
		}
		ec = &cfg->exports[cfg->nexports];
		ec->name = strdup(name);
		if (!ec->name) {
			ini_fail(st, st->line, NULL, "out of memory");
			return;
		}
		ec->line = st->line;
		ec->squash = ONFS_SQUASH_ROOT;
		ec->anonuid = ec->anongid = ONFS_DEFAULT_ANON_ID;
		cfg->nexports++;
		st->ex = ec;
		return;
	}
	ini_fail(st, st->line, NULL, "unknown section [%s] (want [server] or [export NAME])",
		 name);
}

/* Past the blanks as libinih skips them: isspace(), so \v and \f too. */
static const char *skip_blank(const char *t)
{
	while (*t && isspace((unsigned char)*t))
		t++;
	return t;
}

/*
 * --check-config: libinih reports only the first syntax error, so lines
 * that are neither blank, a comment, a section, a continuation nor
 * KEY = VALUE are found here, each one.
 */
static void check_syntax(struct ini_state *st, const char *line)
{
	const char *t;
	int saved_ex_in_server = st->in_server;
	struct onfs_export_conf *saved_ex = st->ex;

	/*
	 * Blank as libinih sees it: isspace(), so \v and \f too. Skipping
	 * only " \t\r\n" made --check-config refuse a line of "\v" that the
	 * loader (libinih) takes for empty (found by fuzz-config).
	 */
	t = skip_blank(line);
	if (!*t || *t == ';' || *t == '#' || st->cont)
		return;
	if (*t == '[' ? strchr(t, ']') != NULL : strpbrk(t, "=:") != NULL)
		return;
	st->ex = NULL;
	st->in_server = false;
	ini_fail(st, st->line, NULL, "syntax error (want KEY = VALUE or [SECTION])");
	st->ex = saved_ex;
	st->in_server = saved_ex_in_server;
}

static char *cfg_reader(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	ssize_t n;
	char *start;

	n = getline(&st->buf, &st->bufcap, st->f);
	if (n < 0)
		return NULL;
	st->line++;
	start = st->buf;
	if (st->line == 1 && (unsigned char)start[0] == 0xef &&
	    (unsigned char)start[1] == 0xbb && (unsigned char)start[2] == 0xbf)
		start += 3;
	st->cont = false;
	if (n >= num) {
		ini_fail(st, st->line, NULL,
			 "line longer than %d characters (continue a long value on indented lines)",
			 num - 2);
		str[0] = '\0';
		return str;
	}
	memcpy(str, st->buf, (size_t)n + 1);
	if (isspace((unsigned char)start[0])) {
		/* indented as libinih sees it */
		const char *t = skip_blank(start);

		st->cont = *t && *t != ';' && *t != '#';
	} else {
		char *t = start;

		if (*t == '[') {
			char tmp[1024];

			snprintf(tmp, sizeof(tmp), "%s", t);
			ini_header(st, tmp);
			st->skip_section = !st->ex && !st->in_server;
		}
	}
	if (st->report)
		check_syntax(st, start);
	return str;
}

static int parse_yesno(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ONFS_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int parse_id(const char *v, uint32_t *out)
{
	unsigned long long n;

	if (parse_uint_plain(v, 4294967294ull, &n) < 0)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/* Append a continuation to *raw with sep between. */
static int append_raw(char **raw, const char *sep, const char *v)
{
	size_t a = *raw ? strlen(*raw) : 0;
	char *n = malloc(a + strlen(sep) + strlen(v) + 1);

	if (!n)
		return -1;
	snprintf(n, a + strlen(sep) + strlen(v) + 1, "%s%s%s", *raw ? *raw : "",
		 *raw ? sep : "", v);
	free(*raw);
	*raw = n;
	return 0;
}

static int absolute_path(const char *v)
{
	return v[0] == '/';
}

static int ini_export_key(struct ini_state *st, enum ini_key k, unsigned bit, const char *name,
			  const char *v)
{
	struct onfs_export_conf *ec = st->ex;
	size_t idx = (size_t)(ec - st->cfg->exports);

	switch (k) {
	case K_PATH:
		free(ec->path);
		ec->path = normalize_export_path(v);
		if (!ec->path)
			return ini_fail(st, st->line, name,
					"'%s' must be an absolute path without '.' or '..'", v);
		return 1;
	case K_LOWER: {
		/* parsed by ini_finish, once continuation lines are in */
		const char *raw = st->raw_lower[idx];
		bool open_end = raw && raw[0] && raw[strlen(raw) - 1] == ':';

		if (append_raw(&st->raw_lower[idx], open_end ? "" : ":", v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	}
	case K_UPPER:
	case K_WORK:
		if (!absolute_path(v))
			return ini_fail(st, st->line, name, "'%s' must be an absolute path", v);
		if (replace_str(k == K_UPPER ? &ec->upperdir : &ec->workdir, v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	case K_CLIENTS:
		if (append_raw(&st->raw_clients[idx], " ", v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	case K_ACCESS:
		if (strcmp(v, "ro") == 0)
			ec->readonly = true;
		else if (strcmp(v, "rw") == 0)
			ec->readonly = false;
		else
			return ini_fail(st, st->line, name, "'%s': want ro or rw", v);
		return 1;
	case K_SQUASH:
		if (strcmp(v, "root") == 0)
			ec->squash = ONFS_SQUASH_ROOT;
		else if (strcmp(v, "all") == 0)
			ec->squash = ONFS_SQUASH_ALL;
		else if (strcmp(v, "none") == 0)
			ec->squash = ONFS_SQUASH_NONE;
		else
			return ini_fail(st, st->line, name, "'%s': want root, all or none", v);
		return 1;
	case K_ANONUID:
	case K_ANONGID:
		if (parse_id(v, k == K_ANONUID ? &ec->anonuid : &ec->anongid) < 0)
			return ini_fail(st, st->line, name,
					"'%s' is not a number from 0 to 4294967294", v);
		return 1;
	case K_SECURE:
		if (parse_yesno(v, &ec->secure) < 0)
			return ini_fail(st, st->line, name, "'%s': want yes or no", v);
		return 1;
	case K_MAX_INST:
	case K_IDLE: {
		unsigned long long n;

		if (parse_uint_plain(v, k == K_MAX_INST ? 1000000 : 365ull * 86400, &n) < 0)
			return ini_fail(st, st->line, name, "'%s' is not a number from 0 to %s", v,
					k == K_MAX_INST ? "1000000" : "31536000 (seconds)");
		if (k == K_MAX_INST)
			ec->max_instances = (unsigned)n;
		else
			ec->idle_timeout = (unsigned)n;
		return 1;
	}
	case K_LOCKING:
		if (strcmp(v, "on") == 0)
			ec->locking = ONFS_LOCKING_ON;
		else if (strcmp(v, "off") == 0)
			ec->locking = ONFS_LOCKING_OFF;
		else if (strcmp(v, "local") == 0)
			ec->locking = ONFS_LOCKING_LOCAL;
		else
			return ini_fail(st, st->line, name, "'%s': want on, off or local", v);
		return 1;
	case K_OWNER:
		if (!*v)
			return ini_fail(st, st->line, name, "empty user name");
		if (replace_str(&ec->owner, v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	default:
		break;
	}
	(void)bit;
	return ini_fail(st, st->line, name, "internal error");
}

static int ini_server_key(struct ini_state *st, enum ini_key k, const char *name, const char *v)
{
	struct onfs_config *cfg = st->cfg;
	unsigned long long n;
	char *host = NULL;
	int port;

	switch (k) {
	case K_LISTEN:
	case K_PORTMAP:
		if (k == K_PORTMAP && portmap_off(cfg, v))
			return 1;
		if (onfs_config_parse_hostport(v, &host, &port) < 0)
			return ini_fail(st, st->line, name,
					"invalid address '%s' (want ADDR:PORT, [IPV6]:PORT or PORT)",
					v);
		if (k == K_LISTEN) {
			free(cfg->listen_host);
			cfg->listen_host = host;
			cfg->listen_port = port;
		} else {
			free(cfg->portmap_host);
			cfg->portmap_host = host;
			cfg->portmap_port = port;
		}
		return 1;
	case K_METRICS:
		if (set_metrics(cfg, v) < 0)
			return ini_fail(st, st->line, name,
					"invalid address '%s' (want ADDR:PORT or [IPV6]:PORT)", v);
		return 1;
	case K_THREADS:
		if (parse_uint(v, ONFS_MAX_THREADS, &n) < 0 || n == 0)
			return ini_fail(st, st->line, name, "'%s' is not a number from 1 to %d", v,
					ONFS_MAX_THREADS);
		cfg->threads = (int)n;
		return 1;
	case K_LOG:
		if (strcmp(v, "error") == 0)
			cfg->verbose = ONFS_LOG_ERR - ONFS_LOG_INFO;
		else if (strcmp(v, "warn") == 0 || strcmp(v, "warning") == 0)
			cfg->verbose = ONFS_LOG_WARN - ONFS_LOG_INFO;
		else if (strcmp(v, "info") == 0)
			cfg->verbose = 0;
		else if (strcmp(v, "debug") == 0)
			cfg->verbose = ONFS_LOG_DEBUG - ONFS_LOG_INFO;
		else
			return ini_fail(st, st->line, name, "'%s': want error, warn, info or debug",
					v);
		return 1;
	case K_VERBOSE:
		if (parse_uint_plain(v, 9, &n) < 0)
			return ini_fail(st, st->line, name, "'%s' is not a number from 0 to 9", v);
		cfg->verbose = (int)n;
		return 1;
	case K_LAYERS:
		if (v[0] != '/')
			return ini_fail(st, st->line, name, "'%s' is not an absolute path", v);
		if (replace_str(&cfg->layers_dir, v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	case K_STATE_DIR:
	case K_PORT_FILE:
		if (!*v)
			return ini_fail(st, st->line, name, "empty path");
		if (replace_str(k == K_STATE_DIR ? &cfg->state_dir : &cfg->port_file, v) < 0)
			return ini_fail(st, st->line, name, "out of memory");
		return 1;
	case K_MAX_RECORD:
		if (parse_uint(v, ONFS_MAX_MAX_RECORD, &n) < 0 || n < ONFS_MIN_MAX_RECORD)
			return ini_fail(st, st->line, name, "'%s' is not a size from %d to %u bytes",
					v, ONFS_MIN_MAX_RECORD, ONFS_MAX_MAX_RECORD);
		cfg->max_record = (size_t)n;
		return 1;
	case K_MAX_CONNS:
		if (parse_uint_plain(v, ONFS_MAX_MAX_CONNS, &n) < 0 || n == 0)
			return ini_fail(st, st->line, name, "'%s' is not a number from 1 to %d",
					v, ONFS_MAX_MAX_CONNS);
		cfg->max_connections = (unsigned)n;
		return 1;
	case K_IO_TIMEOUT:
		if (parse_uint_plain(v, ONFS_MAX_IO_TIMEOUT, &n) < 0 || n == 0)
			return ini_fail(st, st->line, name,
					"'%s' is not a number of seconds from 1 to %d", v,
					ONFS_MAX_IO_TIMEOUT);
		cfg->io_timeout = (int)n;
		return 1;
	case K_GRACE:
		if (parse_uint_plain(v, ONFS_MAX_GRACE, &n) < 0)
			return ini_fail(st, st->line, name, "'%s' is not a number of seconds from 0 to %d",
					v, ONFS_MAX_GRACE);
		cfg->grace = (int)n;
		return 1;
	case K_BASE_CHECK:
		if (parse_uint_plain(v, ONFS_MAX_BASE_CHECK, &n) < 0)
			return ini_fail(st, st->line, name,
					"'%s' is not a number of seconds from 0 (off) to %d", v,
					ONFS_MAX_BASE_CHECK);
		cfg->base_check_interval = (int)n;
		return 1;
	default:
		break;
	}
	return ini_fail(st, st->line, name, "internal error");
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	size_t k;
	unsigned *seen;
	unsigned bit = 0;

	(void)section; /* the reader tracks sections itself */
	if (st->err_line || st->skip_section)
		return 1; /* report the first error only */
	if (!st->ex && !st->in_server)
		return ini_fail(st, st->line, name,
				"key outside a section (start with [server] or [export NAME])");
	for (k = 0; k < ONFS_ARRAY_SIZE(ini_keys); k++)
		if (strcmp(ini_keys[k].name, name) == 0)
			break;
	if (k == ONFS_ARRAY_SIZE(ini_keys) || ini_keys[k].server != st->in_server)
		return ini_fail(st, st->line, name, "unknown key in %s",
				st->in_server ? "[server]" : "an [export] section");
	seen = st->ex ? &st->seen[st->ex - st->cfg->exports] : &st->seen[ONFS_MAX_EXPORTS];
	if (*seen & ini_keys[k].key) {
		/* a continuation line: only lists go on */
		if (!st->cont || (ini_keys[k].key != K_LOWER && ini_keys[k].key != K_CLIENTS))
			return ini_fail(st, st->line, name, "given twice");
	}
	*seen |= ini_keys[k].key;
	if (st->in_server)
		return ini_server_key(st, ini_keys[k].key, name, value);
	while (!(ini_keys[k].key & (1u << bit)))
		bit++;
	if (!(st->cont && st->key_line[st->ex - st->cfg->exports][bit]))
		st->key_line[st->ex - st->cfg->exports][bit] = st->line;
	return ini_export_key(st, ini_keys[k].key, bit, name, value);
}

static bool same_path(const char *a, const char *b)
{
	size_t la, lb;

	if (!a || !b)
		return false;
	la = strlen(a);
	lb = strlen(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

static int key_bit(enum ini_key k)
{
	int bit = 0;

	while (!((unsigned)k & (1u << bit)))
		bit++;
	return bit;
}

/* lowerdir and clients of export i, continuation lines included. */
static int finish_lists(struct ini_state *st, size_t i)
{
	struct onfs_export_conf *ec = &st->cfg->exports[i];
	const char *raw = st->raw_lower[i];
	int line = st->key_line[i][key_bit(K_LOWER)];
	char bad[160];
	char err[256];
	int r;

	if (parse_lowerdir(raw, strlen(raw), ec, "the value", err, sizeof(err)) < 0) {
		ini_fail(st, line, "lowerdir", "%s", err);
		return -1;
	}
	for (size_t l = 0; l < ec->nlower; l++) {
		if (!absolute_path(ec->lowerdir[l])) {
			ini_fail(st, line, "lowerdir", "layer '%s' must be an absolute path",
				 ec->lowerdir[l]);
			return -1;
		}
	}
	raw = st->raw_clients[i];
	if (!raw)
		return 0;
	line = st->key_line[i][key_bit(K_CLIENTS)];
	r = onfs_access_parse_clients(raw, &ec->clients, &ec->nclients, bad, sizeof(bad));
	if (r == -ENOMEM) {
		ini_fail(st, line, "clients", "out of memory");
		return -1;
	}
	if (r == -E2BIG) {
		ini_fail(st, line, "clients", "more than %d entries", ONFS_ACCESS_MAX_CLIENTS);
		return -1;
	}
	if (r < 0 && !bad[0]) {
		ini_fail(st, line, "clients", "empty list");
		return -1;
	}
	if (r < 0) {
		ini_fail(st, line, "clients",
			 "'%s' is not an address or ADDRESS/PREFIX (IPv4 or IPv6, host bits zero)",
			 bad);
		return -1;
	}
	return 0;
}

/* The line of a key named by the template checks. */
static int tmpl_key_line(const int *kl, const char *key, int fallback)
{
	static const struct {
		const char *name;
		enum ini_key k;
	} m[] = { { "upperdir", K_UPPER }, { "workdir", K_WORK }, { "path", K_PATH },
		  { "max_instances", K_MAX_INST }, { "idle_timeout", K_IDLE } };

	for (size_t i = 0; key && i < ONFS_ARRAY_SIZE(m); i++)
		if (strcmp(m[i].name, key) == 0 && kl[key_bit(m[i].k)])
			return kl[key_bit(m[i].k)];
	return fallback;
}

/*
 * After the whole file: defaults, required keys, cross-export rules, for
 * the exports from first on (--check-config goes on after a bad one).
 */
static int ini_finish(struct ini_state *st, size_t first)
{
	struct onfs_config *cfg = st->cfg;

	if (cfg->nexports == 0 && first == 0) {
		st->ex = NULL;
		st->in_server = false;
		return ini_fail(st, st->line ? st->line : 1, NULL,
				"no [export NAME] section: nothing to serve");
	}
	for (size_t i = first; i < cfg->nexports; i++) {
		struct onfs_export_conf *ec = &cfg->exports[i];
		unsigned seen = st->seen[i];
		int *kl = st->key_line[i];

		st->finish_idx = i;
		st->ex = ec;
		st->in_server = false;
		if (!(seen & K_PATH))
			return ini_fail(st, ec->line, "path", "missing (the path clients mount)");
		if (!(seen & K_LOWER))
			return ini_fail(st, ec->line, "lowerdir", "missing");
		if (finish_lists(st, i) < 0)
			return -1;
		if ((seen & K_UPPER) && !(seen & K_WORK))
			return ini_fail(st, kl[key_bit(K_UPPER)], "upperdir", "needs workdir");
		if ((seen & K_WORK) && !(seen & K_UPPER))
			return ini_fail(st, kl[key_bit(K_WORK)], "workdir", "needs upperdir");
		if (!(seen & K_ACCESS))
			ec->readonly = !ec->upperdir;
		else if (!ec->readonly && !ec->upperdir)
			return ini_fail(st, kl[key_bit(K_ACCESS)], "access",
					"rw needs upperdir and workdir");
		if (!(seen & K_CLIENTS) && !ec->nclients &&
		    onfs_access_default_clients(&ec->clients, &ec->nclients) < 0)
			return ini_fail(st, ec->line, "clients", "out of memory");
		{
			const char *key = NULL;
			char terr[1024];

			if (onfs_config_check_templates(ec, &key, terr, sizeof(terr)) < 0)
				return ini_fail(st, tmpl_key_line(kl, key, ec->line), key, "%s", terr);
			for (size_t j = 0; j < i; j++)
				if (onfs_config_check_template_pair(ec, &cfg->exports[j], &key, terr,
								    sizeof(terr)) < 0)
					return ini_fail(st, tmpl_key_line(kl, key, ec->line), key,
							"%s", terr);
		}
		for (size_t j = 0; j < i; j++) {
			const struct onfs_export_conf *o = &cfg->exports[j];
			static const struct {
				const char *key;
				enum ini_key k;
			} uniq[] = { { "path", K_PATH }, { "upperdir", K_UPPER },
				     { "workdir", K_WORK } };

			for (size_t u = 0; u < ONFS_ARRAY_SIZE(uniq); u++) {
				const char *a = u == 0 ? ec->path : u == 1 ? ec->upperdir : ec->workdir;
				const char *b = u == 0 ? o->path : u == 1 ? o->upperdir : o->workdir;

				if (same_path(a, b))
					return ini_fail(st, kl[key_bit(uniq[u].k)], uniq[u].key,
							"'%s' is also the %s of [export %s] (line %d)",
							a, uniq[u].key, o->name,
							st->key_line[j][key_bit(uniq[u].k)]);
			}
			if (same_path(ec->upperdir, o->workdir) || same_path(ec->workdir, o->upperdir))
				return ini_fail(st, kl[key_bit(K_UPPER)], "upperdir",
						"[export %s] and [export %s] share a directory as "
						"upper and work", ec->name, o->name);
		}
	}
	return 0;
}

/*
 * Load path into cfg. Without report: stop at the first error (in err).
 * With report: report every error found (file and line each) and return
 * how many there were.
 */
static int load_file(const char *path, struct onfs_config *cfg, char *err, size_t errlen,
		     void (*report)(void *ctx, const char *msg), void *ctx)
{
	struct ini_state st;
	int r;
	int ret = -1;

	memset(&st, 0, sizeof(st));
	st.file = path;
	st.cfg = cfg;
	st.err = err;
	st.errlen = errlen;
	st.report = report;
	st.report_ctx = ctx;
	if (err && errlen)
		err[0] = '\0';
	st.f = fopen(path, "re");
	if (!st.f) {
		fail(err, errlen, "config file '%s': %s", path, strerror(errno));
		if (report) {
			report(ctx, err);
			ret = 1;
		}
		goto out;
	}
	r = ini_parse_stream(cfg_reader, &st, cfg_handler, &st);
	if (ferror(st.f)) {
		fail(err, errlen, "config file '%s': read error", path);
		if (report) {
			report(ctx, err);
			ret = st.nerrors + 1;
		}
		goto out_close;
	}
	if (r > 0 && (report ? st.nerrors == 0 : !st.err_line || r < st.err_line)) {
		st.err_line = 0;
		st.ex = NULL;
		st.in_server = false;
		ini_fail(&st, r, NULL, "syntax error (want KEY = VALUE or [SECTION])");
	}
	if (r < 0) {
		fail(err, errlen, "config file '%s': out of memory", path);
		if (report) {
			report(ctx, err);
			ret = st.nerrors + 1;
		}
		goto out_close;
	}
	if (report) {
		size_t first = 0;

		for (;;) {
			int before = st.nerrors;

			st.finish_idx = cfg->nexports;
			ini_finish(&st, first);
			if (st.nerrors == before || st.finish_idx + 1 >= cfg->nexports)
				break;
			first = st.finish_idx + 1;
		}
		ret = st.nerrors;
		goto out_close;
	}
	if (st.err_line)
		goto out_close;
	if (ini_finish(&st, 0) < 0 || st.err_line)
		goto out_close;
	ret = 0;
out_close:
	fclose(st.f);
out:
	for (size_t i = 0; i < ONFS_MAX_EXPORTS; i++) {
		free(st.raw_lower[i]);
		free(st.raw_clients[i]);
	}
	free(st.buf);
	return ret;
}

int onfs_config_load_file(const char *path, struct onfs_config *cfg, char *err, size_t errlen)
{
	return load_file(path, cfg, err, errlen, NULL, NULL);
}

int onfs_config_check_file(const char *path, struct onfs_config *cfg,
			   void (*report)(void *ctx, const char *msg), void *ctx)
{
	char err[1024];

	return load_file(path, cfg, err, sizeof(err), report, ctx);
}

static bool str_differ(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

bool onfs_config_layers_differ(const struct onfs_export_conf *a,
			       const struct onfs_export_conf *b)
{
	if (a->nlower != b->nlower || str_differ(a->path, b->path) ||
	    str_differ(a->upperdir, b->upperdir) || str_differ(a->workdir, b->workdir) ||
	    str_differ(a->owner, b->owner) || a->tmpl != b->tmpl ||
	    a->max_instances != b->max_instances || a->idle_timeout != b->idle_timeout)
		return true;
	for (size_t i = 0; i < a->nlower; i++)
		if (str_differ(a->lowerdir[i], b->lowerdir[i]))
			return true;
	return false;
}

/* Apply one option; name is how the user spelled it, for messages. */
struct argv_state {
	const char *overlay_opts;
	char *export_path; /* owned */
	const char *config;
	/* given on the command line: wins over the config file's [server] */
	bool state_dir_set, listen_set, portmap_set, threads_set, max_record_set,
		verbose_set, port_file_set, metrics_set, grace_set,
		max_conns_set, io_timeout_set;
};

static int apply_opt(struct onfs_config *cfg, enum opt_id id, const char *name,
		     const char *arg, struct argv_state *as, char *err, size_t errlen)
{
	unsigned long long v;
	char *host = NULL;
	int port;

	switch (id) {
	case OPT_OVERLAY:
		if (as->overlay_opts)
			return fail(err, errlen, "option '%s' given twice (use -c for several exports)",
				    name);
		as->overlay_opts = arg;
		return 0;
	case OPT_CONFIG:
		if (as->config)
			return fail(err, errlen, "option '%s' given twice", name);
		if (!*arg)
			return fail(err, errlen, "option '%s': empty file name", name);
		as->config = arg;
		return 0;
	case OPT_LISTEN:
	case OPT_PORTMAP:
		if (id == OPT_PORTMAP && portmap_off(cfg, arg)) {
			as->portmap_set = true;
			return 0;
		}
		if (onfs_config_parse_hostport(arg, &host, &port) < 0)
			return fail(err, errlen,
				    "option '%s': invalid address '%s' (want ADDR:PORT, [IPV6]:PORT or PORT)",
				    name, arg);
		if (id == OPT_LISTEN) {
			free(cfg->listen_host);
			cfg->listen_host = host;
			cfg->listen_port = port;
			as->listen_set = true;
		} else {
			free(cfg->portmap_host);
			cfg->portmap_host = host;
			cfg->portmap_port = port;
			cfg->portmap_off = false;
			as->portmap_set = true;
		}
		return 0;
	case OPT_EXPORT:
		free(as->export_path);
		as->export_path = normalize_export_path(arg);
		if (!as->export_path)
			return fail(err, errlen,
				    "option '%s': '%s' must be an absolute path without '.' or '..'",
				    name, arg);
		return 0;
	case OPT_PORT_FILE:
		if (!*arg)
			return fail(err, errlen, "option '%s': empty file name", name);
		if (replace_str(&cfg->port_file, arg) < 0)
			return fail(err, errlen, "out of memory");
		as->port_file_set = true;
		return 0;
	case OPT_STATE_DIR:
		if (!*arg)
			return fail(err, errlen, "option '%s': empty directory name", name);
		if (replace_str(&cfg->state_dir, arg) < 0)
			return fail(err, errlen, "out of memory");
		as->state_dir_set = true;
		return 0;
	case OPT_THREADS:
		if (parse_uint(arg, ONFS_MAX_THREADS, &v) < 0 || v == 0)
			return fail(err, errlen, "option '%s': '%s' is not a number from 1 to %d",
				    name, arg, ONFS_MAX_THREADS);
		cfg->threads = (int)v;
		as->threads_set = true;
		return 0;
	case OPT_MAX_RECORD:
		if (parse_uint(arg, ONFS_MAX_MAX_RECORD, &v) < 0 || v < ONFS_MIN_MAX_RECORD)
			return fail(err, errlen,
				    "option '%s': '%s' is not a size from %d to %u bytes",
				    name, arg, ONFS_MIN_MAX_RECORD, ONFS_MAX_MAX_RECORD);
		cfg->max_record = (size_t)v;
		as->max_record_set = true;
		return 0;
	case OPT_MAX_CONNS:
		if (parse_uint_plain(arg, ONFS_MAX_MAX_CONNS, &v) < 0 || v == 0)
			return fail(err, errlen, "option '%s': '%s' is not a number from 1 to %d",
				    name, arg, ONFS_MAX_MAX_CONNS);
		cfg->max_connections = (unsigned)v;
		as->max_conns_set = true;
		return 0;
	case OPT_IO_TIMEOUT:
		if (parse_uint_plain(arg, ONFS_MAX_IO_TIMEOUT, &v) < 0 || v == 0)
			return fail(err, errlen,
				    "option '%s': '%s' is not a number of seconds from 1 to %d",
				    name, arg, ONFS_MAX_IO_TIMEOUT);
		cfg->io_timeout = (int)v;
		as->io_timeout_set = true;
		return 0;
	case OPT_GRACE:
		if (parse_uint_plain(arg, ONFS_MAX_GRACE, &v) < 0)
			return fail(err, errlen,
				    "option '%s': '%s' is not a number of seconds from 0 to %d",
				    name, arg, ONFS_MAX_GRACE);
		cfg->grace = (int)v;
		as->grace_set = true;
		return 0;
	case OPT_FOREGROUND:
		cfg->foreground = true;
		return 0;
	case OPT_VERBOSE:
		cfg->verbose++;
		as->verbose_set = true;
		return 0;
	case OPT_HELP:
		fputs(usage_text, stdout);
		return 1;
	case OPT_VERSION:
		printf("ovlnfsd %s\n", ONFS_VERSION);
		return 1;
	case OPT_CHECK_CONFIG:
		cfg->check_config = true;
		return 0;
	case OPT_METRICS:
		if (set_metrics(cfg, arg) < 0)
			return fail(err, errlen,
				    "option '%s': invalid address '%s' (want ADDR:PORT or [IPV6]:PORT)",
				    name, arg);
		as->metrics_set = true;
		return 0;
	}
	return fail(err, errlen, "option '%s': internal error", name);
}

static int set_defaults(struct onfs_config *cfg)
{
	cfg->listen_host = strdup("127.0.0.1");
	cfg->listen_port = ONFS_DEFAULT_PORT;
	cfg->threads = ONFS_DEFAULT_THREADS;
	cfg->max_record = ONFS_DEFAULT_MAX_RECORD;
	cfg->grace = -1;
	cfg->base_check_interval = -1;
	return cfg->listen_host ? 0 : -1;
}

/*
 * -c FILE: read it, then let what the command line gave win over its
 * [server] keys. The exports come from the file only.
 */
static int merge_config_file(struct onfs_config *cfg, const struct argv_state *as, char *err,
			     size_t errlen)
{
	struct onfs_config f = { 0 };
	int ret = -1;

	f.listen_port = -1;
	f.threads = 0;
	f.max_record = 0;
	f.grace = -1;
	f.base_check_interval = -1;
	if (onfs_config_load_file(as->config, &f, err, errlen) < 0)
		goto out;
	cfg->config_file = strdup(as->config);
	if (!cfg->config_file) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (!as->listen_set && f.listen_host) {
		free(cfg->listen_host);
		cfg->listen_host = f.listen_host;
		cfg->listen_port = f.listen_port;
		f.listen_host = NULL;
	}
	if (!as->portmap_set && f.portmap_host) {
		free(cfg->portmap_host);
		cfg->portmap_host = f.portmap_host;
		cfg->portmap_port = f.portmap_port;
		f.portmap_host = NULL;
	}
	if (!as->portmap_set && f.portmap_off)
		cfg->portmap_off = true;
	if (!as->metrics_set && f.metrics_host) {
		cfg->metrics_host = f.metrics_host;
		cfg->metrics_port = f.metrics_port;
		f.metrics_host = NULL;
	}
	if (!as->threads_set && f.threads)
		cfg->threads = f.threads;
	if (!as->max_record_set && f.max_record)
		cfg->max_record = f.max_record;
	if (!as->grace_set && f.grace >= 0)
		cfg->grace = f.grace;
	if (f.base_check_interval >= 0)
		cfg->base_check_interval = f.base_check_interval;
	if (!as->max_conns_set && f.max_connections)
		cfg->max_connections = f.max_connections;
	if (!as->io_timeout_set && f.io_timeout)
		cfg->io_timeout = f.io_timeout;
	if (!as->verbose_set)
		cfg->verbose = f.verbose;
	if (!as->port_file_set && f.port_file) {
		cfg->port_file = f.port_file;
		f.port_file = NULL;
	}
	if (f.layers_dir) {
		cfg->layers_dir = f.layers_dir;
		f.layers_dir = NULL;
	}
	if (!as->state_dir_set) {
		free(cfg->state_dir);
		cfg->state_dir = f.state_dir ? f.state_dir : strdup(ONFS_DEFAULT_STATE_DIR);
		f.state_dir = NULL;
		if (!cfg->state_dir) {
			fail(err, errlen, "out of memory");
			goto out;
		}
	}
	memcpy(cfg->exports, f.exports, sizeof(f.exports));
	cfg->nexports = f.nexports;
	memset(f.exports, 0, sizeof(f.exports));
	f.nexports = 0;
	ret = 0;
out:
	onfs_config_free(&f);
	return ret;
}

int onfs_config_parse_args(int argc, char **argv, struct onfs_config *cfg,
			   char *err, size_t errlen)
{
	struct argv_state as = { 0 };
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
			r = apply_opt(cfg, options[k].id, name, arg, &as, err, errlen);
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
				r = apply_opt(cfg, options[k].id, name, arg, &as, err, errlen);
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

	if (cfg->check_config) {
		/* checkconfig.c reads the file itself, reporting every error */
		if (!as.config || as.overlay_opts) {
			fail(err, errlen, "option '--check-config' needs -c FILE (and no -o)");
			goto out;
		}
		cfg->config_file = strdup(as.config);
		if (!cfg->config_file) {
			fail(err, errlen, "out of memory");
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (as.config) {
		if (as.overlay_opts) {
			fail(err, errlen, "options '-c' and '-o' cannot be used together "
			     "(put the layers in an [export] section)");
			goto out;
		}
		if (as.export_path) {
			fail(err, errlen, "option '--export' applies to -o only "
			     "(the config file sets path= per export)");
			goto out;
		}
		if (merge_config_file(cfg, &as, err, errlen) < 0)
			goto out;
		ret = 0;
		goto out;
	}
	ec = &cfg->exports[0];
	if (as.overlay_opts) {
		if (onfs_config_parse_overlay_opts(as.overlay_opts, ec, err, errlen) < 0)
			goto out;
		ec->name = strdup("default");
	} else {
		/* demo mode: onfs_demo_setup fills the layers and the state dir */
		cfg->demo = true;
		ec->name = strdup("demo");
	}
	/* -o and the demo: every client the listener hears, identities as sent */
	ec->squash = ONFS_SQUASH_NONE;
	ec->anonuid = ec->anongid = ONFS_DEFAULT_ANON_ID;
	ec->path = as.export_path ? as.export_path : strdup("/");
	as.export_path = NULL;
	cfg->nexports = 1;
	if (!ec->name || !ec->path) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (!cfg->demo) {
		const char *key;
		char terr[1024];

		if (onfs_config_check_templates(ec, &key, terr, sizeof(terr)) < 0) {
			fail(err, errlen, "%s: %s", strcmp(key, "path") == 0 ? "--export" : "-o",
			     terr);
			goto out;
		}
	}
	if (!as.state_dir_set && !cfg->demo) {
		cfg->state_dir = strdup(ONFS_DEFAULT_STATE_DIR);
		if (!cfg->state_dir) {
			fail(err, errlen, "out of memory");
			goto out;
		}
	}
	ret = 0;
out:
	free(as.export_path);
	return ret;
}

/* --- per-client templates --- */

/* Exactly one bit set? */
static bool one_kind(unsigned k)
{
	return k && !(k & (k - 1));
}

int onfs_config_check_templates(struct onfs_export_conf *ec, const char **key, char *err,
				size_t errlen)
{
	const char *name = ec->name ? ec->name : "default";
	char bad[64];
	int ku, kw, kp;

	*key = "upperdir";
	ku = onfs_tmpl_kinds(ec->upperdir, bad, sizeof(bad));
	if (ku < 0)
		return fail(err, errlen, "export '%s': upperdir '%s': '%s' is not a placeholder "
			    "(use {client}, {host} or {name})", name, ec->upperdir, bad);
	*key = "workdir";
	kw = onfs_tmpl_kinds(ec->workdir, bad, sizeof(bad));
	if (kw < 0)
		return fail(err, errlen, "export '%s': workdir '%s': '%s' is not a placeholder "
			    "(use {client}, {host} or {name})", name, ec->workdir, bad);
	*key = "path";
	kp = onfs_tmpl_kinds(ec->path, bad, sizeof(bad));
	if (kp < 0)
		return fail(err, errlen, "export '%s': path '%s': '%s' is not a placeholder "
			    "(a path may end in /{name})", name, ec->path, bad);
	ec->tmpl = (unsigned)ku;
	*key = "upperdir";
	if (ku && !one_kind((unsigned)ku))
		return fail(err, errlen, "export '%s': upperdir '%s' uses several kinds of "
			    "placeholder; use one of {client}, {host} or {name}", name, ec->upperdir);
	if (ku && ec->upperdir[0] != '/')
		return fail(err, errlen, "export '%s': upperdir '%s' must be an absolute path",
			    name, ec->upperdir);
	*key = "workdir";
	if (ku != kw)
		return fail(err, errlen, "export '%s': workdir '%s' must use the same placeholder "
			    "as upperdir '%s'", name, ec->workdir ? ec->workdir : "",
			    ec->upperdir ? ec->upperdir : "");
	if (ku && ec->workdir[0] != '/')
		return fail(err, errlen, "export '%s': workdir '%s' must be an absolute path",
			    name, ec->workdir);
	*key = "path";
	if (kp) {
		const char *last = strrchr(ec->path, '/');

		if (kp != (int)ONFS_TMPL_NAME || !last || strcmp(last, "/{name}") != 0 ||
		    strchr(ec->path, '{') != last + 1 || last == ec->path)
			return fail(err, errlen, "export '%s': path '%s': a path template is "
				    "/DIR/{name} ({name} the last component, nothing else "
				    "templated)", name, ec->path);
		if (ku != (int)ONFS_TMPL_NAME)
			return fail(err, errlen, "export '%s': path '%s' needs upperdir and "
				    "workdir templates with {name}", name, ec->path);
	}
	*key = "upperdir";
	if (ku == (int)ONFS_TMPL_NAME && kp != (int)ONFS_TMPL_NAME)
		return fail(err, errlen, "export '%s': upperdir '%s' uses {name}: the path must "
			    "end in /{name} (e.g. path = /clients/{name})", name, ec->upperdir);
	if (ku && onfs_tmpl_may_overlap(ec->upperdir, ec->workdir))
		return fail(err, errlen, "export '%s': upperdir '%s' and workdir '%s' can expand "
			    "to the same directory or one inside the other (for two clients)",
			    name, ec->upperdir, ec->workdir);
	if (!ku && (ec->max_instances || ec->idle_timeout)) {
		*key = ec->max_instances ? "max_instances" : "idle_timeout";
		return fail(err, errlen, "export '%s': %s applies only to an upperdir template "
			    "({client}, {host} or {name})", name, *key);
	}
	return 0;
}

int onfs_config_check_template_pair(const struct onfs_export_conf *a,
				    const struct onfs_export_conf *b, const char **key,
				    char *err, size_t errlen)
{
	const char *da[2] = { a->upperdir, a->workdir }, *db[2] = { b->upperdir, b->workdir };
	static const char *const what[2] = { "upperdir", "workdir" };

	if (!a->tmpl && !b->tmpl)
		return 0;
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 2; j++) {
			if (!da[i] || !db[j] || !onfs_tmpl_may_overlap(da[i], db[j]))
				continue;
			*key = what[i];
			return fail(err, errlen, "export '%s': %s '%s' and the %s '%s' of export "
				    "'%s' can expand to the same directory (or one inside the "
				    "other)", a->name, what[i], da[i], what[j], db[j], b->name);
		}
	}
	if ((onfs_tmpl_kinds(a->path, NULL, 0) > 0 || onfs_tmpl_kinds(b->path, NULL, 0) > 0) &&
	    a->path && b->path && onfs_tmpl_may_equal(a->path, b->path)) {
		*key = "path";
		return fail(err, errlen, "export '%s': path '%s' and the path '%s' of export '%s' "
			    "can name the same directory", a->name, a->path, b->path, b->name);
	}
	return 0;
}

void onfs_config_free(struct onfs_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->listen_host);
	free(cfg->portmap_host);
	free(cfg->metrics_host);
	free(cfg->port_file);
	free(cfg->state_dir);
	free(cfg->layers_dir);
	free(cfg->config_file);
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(cfg->exports); i++)
		export_conf_free(&cfg->exports[i]);
	memset(cfg, 0, sizeof(*cfg));
}
