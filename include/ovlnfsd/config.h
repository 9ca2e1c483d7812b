/*
 * config.h - the server's configuration, built once at startup from the
 * command line (config.c) and then read-only for every thread.
 *
 * An "export line" (struct onfs_export_conf) is what the user wrote; an
 * "export instance" (struct onfs_export, overlay.h) is the object that owns
 * the layers, key, caches and locks. A plain line makes one instance; a
 * line whose upperdir is a template ({client}, {host}, {name}) owns one
 * instance per value (server/instance.c).
 */
#ifndef OVLNFSD_CONFIG_H
#define OVLNFSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ONFS_MAX_LOWER 64
#define ONFS_DEFAULT_PORT 2049
#define ONFS_DEFAULT_MAX_RECORD (1024 * 1024 + 4096)
/*
 * Worker threads. Sync-bound calls (CREATE, FILE_SYNC WRITE, COMMIT,
 * copy-up) spend most of their time in fsync, and the filesystem's
 * journal commits all fsyncs waiting at once together: more workers, more
 * fsyncs per commit (docs/operating.md, "Worker threads").
 */
#define ONFS_DEFAULT_THREADS 16
#define ONFS_DEFAULT_STATE_DIR "/var/lib/ovlnfsd"
#define ONFS_DEFAULT_ANON_ID 65534

/* squash= of an export line (access.c applies it). */
enum onfs_squash { ONFS_SQUASH_ROOT = 0, ONFS_SQUASH_ALL, ONFS_SQUASH_NONE };

/* One entry of clients=: an address and a prefix length. */
struct onfs_cidr {
	int family;       /* AF_INET or AF_INET6 */
	unsigned prefix;  /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network byte order, host bits zero */
	char text[64];    /* as the user wrote it, for MOUNT EXPORT and logs */
};

struct onfs_export_conf {
	char *name;        /* owned; "default" for the -o export */
	char *path;        /* owned; the path clients mount, e.g. "/" */
	char *lowerdir[ONFS_MAX_LOWER]; /* owned; [0] is the TOP lower layer */
	size_t nlower;
	char *upperdir;    /* owned; NULL: read-only export */
	char *workdir;     /* owned; NULL iff upperdir is NULL */
	char *owner;       /* owned; user whose credentials touch the layers; NULL: the process's */
	/* access rules (config file; -o and the demo: every client, no squash) */
	struct onfs_cidr *clients; /* owned; nclients 0: every client */
	size_t nclients;
	bool readonly;     /* access=ro */
	enum onfs_squash squash;
	uint32_t anonuid, anongid;
	bool secure;       /* require a source port < 1024 */
	int locking;       /* enum onfs_locking (lock.h): locking = on (0) | off | local */
	int line;          /* line of its [export NAME] header in the config file; 0: none */
	/*
	 * Per-client upper layers (template.h): upperdir and workdir (and a
	 * path ending in /{name}) may hold one kind of placeholder; each value
	 * is an instance with its own upper and work area.
	 */
	unsigned tmpl;          /* ONFS_TMPL_* kind; 0: one upper for every client */
	unsigned max_instances; /* 0: no limit */
	unsigned idle_timeout;  /* seconds without a request before release; 0: never */
};

struct onfs_config {
	char *listen_host;   /* owned; "127.0.0.1", "0.0.0.0", "::" ... */
	int listen_port;     /* 0: pick a free port */
	char *portmap_host;  /* owned; NULL: no separate portmap listener */
	int portmap_port;
	bool portmap_off;    /* --portmap off: never port 111 (rpcbind.c) */
	char *metrics_host;  /* owned; --metrics / metrics =; NULL: no metrics endpoint */
	int metrics_port;
	char *port_file;     /* owned; NULL: none */
	char *state_dir;     /* owned */
	char *layers_dir;    /* owned; [server] layers: where commit puts layers; NULL: none */
	bool foreground;
	int verbose;         /* count of -v */
	int threads;         /* worker pool size (UV_THREADPOOL_SIZE) */
	size_t max_record;   /* TCP record cap, bytes */
	unsigned max_connections; /* TCP connection cap; 0: 4096 fitted to RLIMIT_NOFILE */
	int io_timeout;      /* seconds for a record to arrive / a reply to be taken; 0: 30 */
	int grace;           /* NLM grace period after a restart, seconds; -1: default */
	int base_check_interval; /* seconds between lower-root probes; 0: off; -1: default */
	bool demo;           /* no -o/-c given: build and serve ./demo-overlay */
	char *config_file;   /* owned; -c FILE (kept for SIGHUP), NULL: none */
	bool check_config;   /* --check-config: check config_file, serve nothing */
	struct onfs_export_conf exports[8]; /* owned */
	size_t nexports;
};

/*
 * Parse argv into *cfg (zeroed by the caller). Returns 0, 1 when the caller
 * should exit 0 (--help, --version: already printed), or -1 with a message
 * naming the option at fault in err.
 */
int onfs_config_parse_args(int argc, char **argv, struct onfs_config *cfg,
			   char *err, size_t errlen);

/*
 * Parse a kernel overlay option string ("lowerdir=A:B,upperdir=U,workdir=W")
 * into *ec. Colons in lowerdir may be escaped as "\:" (and commas as "\,").
 * Returns 0 or -1 with err naming the option at fault.
 */
int onfs_config_parse_overlay_opts(const char *opts, struct onfs_export_conf *ec,
				   char *err, size_t errlen);

/*
 * Read an INI config file (README.md, "Configuration file") into *cfg (zeroed by the
 * caller): [server] listen, portmap, threads, log, verbose, state_dir,
 * max_record, port_file; one [export NAME] per export. Validates every
 * value and the export set (unique names, paths and upper layers).
 * Returns 0 or -1 with err naming the file, the line and the key at fault.
 * Used at startup (through onfs_config_parse_args) and by SIGHUP reload.
 */
int onfs_config_load_file(const char *path, struct onfs_config *cfg, char *err,
			  size_t errlen);

/*
 * --check-config: like onfs_config_load_file, but every error is passed to
 * report ("FILE:LINE: [SECTION] KEY: message") and parsing goes on.
 * Returns the number of errors (0: the file is valid).
 */
int onfs_config_check_file(const char *path, struct onfs_config *cfg,
			   void (*report)(void *ctx, const char *msg), void *ctx);

/*
 * --check-config FILE: the file (every error) and the directories it
 * names, checked without creating or serving anything (checkconfig.c).
 * Prints errors to stderr and a summary to stdout; returns 0 or 1.
 */
int onfs_check_config(const char *path);

/* True when two export lines serve different layers (reload needs a restart). */
bool onfs_config_layers_differ(const struct onfs_export_conf *a,
			       const struct onfs_export_conf *b);

/* Parse "ADDR:PORT", "[v6]:PORT" or "PORT". Returns 0 or -1. host is malloc'd. */
int onfs_config_parse_hostport(const char *s, char **host, int *port);

void onfs_config_free(struct onfs_config *cfg);

/*
 * The template rules of one export line (placeholders, path /X/{name},
 * upper and work alike and apart, max_instances and idle_timeout only with
 * a template); sets ec->tmpl. Returns 0 or -1 with err naming the export
 * and the value, and *key the key at fault.
 */
int onfs_config_check_templates(struct onfs_export_conf *ec, const char **key, char *err,
				size_t errlen);

/*
 * Can two export lines' upper or work templates expand to the same
 * directory (or one inside the other), or their paths to the same path?
 * Returns 0 or -1 with err naming both exports and values.
 */
int onfs_config_check_template_pair(const struct onfs_export_conf *a,
				    const struct onfs_export_conf *b, const char **key,
				    char *err, size_t errlen);

/*
 * Create the demo overlay under dir (two lower layers and an upper with a
 * whiteout and an opaque directory) if it does not exist yet, and fill
 * cfg->exports[0] to serve it. Returns 0 or -1 with err naming the path.
 */
int onfs_demo_setup(const char *dir, struct onfs_config *cfg, char *err, size_t errlen);

#endif
