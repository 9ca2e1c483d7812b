/*
 * fuzz-server.h - a real server for the fuzz targets that need one: two
 * exports over a small overlay built in a temporary directory (lower
 * layers with files, a directory and a symlink; an upper with a file), the
 * lock manager started (NSM state in the same directory), access rules
 * published, no sockets but the lock manager's own UDP ones. Calls go
 * through onfs_dispatch_record exactly as the transport hands them over,
 * and the loop runs until the call is freed (its reply is built, then
 * dropped: there is no connection).
 *
 * Handles: the fuzzer cannot forge a handle's MAC, so every 4-byte
 * sequence FE ED 48 n in an argument body is replaced by the XDR opaque of
 * the n-th known handle (n modulo the table: root, files, directory,
 * symlink of each export), which lets the procedures reach the filesystem.
 *
 * Included by one fuzz target each (static functions); single-threaded
 * driver, the procedures run on the libuv pool as in the server.
 * The temporary directory is removed at exit.
 */
#ifndef FUZZ_SERVER_H
#define FUZZ_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/rpc.h"
#include "ovlnfsd/server.h"

#define FUZZ_MAX_FH 32
#define FUZZ_FH_MAGIC0 0xFE
#define FUZZ_FH_MAGIC1 0xED
#define FUZZ_FH_MAGIC2 0x48

struct fuzz_srv {
	char dir[64];
	uv_loop_t loop;
	struct onfs_config cfg;
	struct onfs_server srv;
	struct onfs_fh fh[FUZZ_MAX_FH];
	size_t nfh;
	uint32_t xid;
};

static struct fuzz_srv fuzz_S;

static void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz-server: %s: %s\n", what, strerror(errno));
	abort();
}

static void fuzz_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, 0666) < 0)
		fuzz_die(path);
}

static void fuzz_mkdir(const char *path, mode_t mode)
{
	if ((mkdir(path, mode) < 0 && errno != EEXIST) || chmod(path, mode) < 0)
		fuzz_die(path);
}

static void fuzz_rm_tree(void)
{
	char cmd[128];

	if (fuzz_S.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_S.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz-server: could not remove %s\n", fuzz_S.dir);
	}
}

static void fuzz_collect(struct onfs_export *ex, const char *path)
{
	struct onfs_node *n;

	if (fuzz_S.nfh >= FUZZ_MAX_FH || onfs_walk(ex, path, &n) < 0)
		return;
	fuzz_S.fh[fuzz_S.nfh++] = *onfs_node_fh(n);
	onfs_node_put(n);
}

/* Build the tree and the server once; later calls return it. */
static struct onfs_server *fuzz_server(void)
{
	static const char *const paths[] = { "", "a.txt", "dir", "dir/b.txt", "sym", "u.txt",
					     "dir/sub", "big" };
	static int ready;
	char p[256], conf[2048], err[1024];
	const char *d;
	size_t i;

	if (ready)
		return &fuzz_S.srv;
	onfs_log_verbosity = -1; /* the server's log would drown the fuzzer's */
	snprintf(fuzz_S.dir, sizeof(fuzz_S.dir), "/tmp/onfs-fuzz-XXXXXX");
	if (!mkdtemp(fuzz_S.dir))
		fuzz_die("mkdtemp");
	atexit(fuzz_rm_tree);
	d = fuzz_S.dir;
	const char *dirs[] = { "l1", "l2", "l1/dir", "l1/dir/sub", "l2/dir", "up", "wk", "st",
			       "ro" };
	for (i = 0; i < ONFS_ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", d, dirs[i]);
		/* the tree writable by anyone: calls as uid 1000 reach the write path too */
		fuzz_mkdir(p, strcmp(dirs[i], "wk") == 0 || strcmp(dirs[i], "st") == 0 ? 0700 : 0777);
	}
	snprintf(p, sizeof(p), "%s/l1/a.txt", d);
	fuzz_write_file(p, "lower one\n");
	snprintf(p, sizeof(p), "%s/l2/dir/b.txt", d);
	fuzz_write_file(p, "lower two\n");
	snprintf(p, sizeof(p), "%s/l1/big", d);
	fuzz_write_file(p, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
	snprintf(p, sizeof(p), "%s/up/u.txt", d);
	fuzz_write_file(p, "upper\n");
	snprintf(p, sizeof(p), "%s/l1/sym", d);
	if (symlink("a.txt", p) < 0 && errno != EEXIST)
		fuzz_die(p);
	snprintf(p, sizeof(p), "%s/ro/a.txt", d);
	fuzz_write_file(p, "read-only\n");

	snprintf(conf, sizeof(conf),
		 "[server]\nlisten = 127.0.0.1:0\nstate_dir = %s/st\ngrace = 0\n"
		 "[export rw]\npath = /rw\nlowerdir = %s/l2:%s/l1\nupperdir = %s/up\n"
		 "workdir = %s/wk\nsquash = none\nclients = 127.0.0.0/8\n"
		 "[export ro]\npath = /ro\nlowerdir = %s/ro\nlocking = local\nsecure = yes\n",
		 d, d, d, d, d, d);
	snprintf(p, sizeof(p), "%s/conf.ini", d);
	fuzz_write_file(p, conf);
	if (onfs_config_load_file(p, &fuzz_S.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-server: %s\n", err);
		abort();
	}
	if (uv_loop_init(&fuzz_S.loop) < 0)
		fuzz_die("uv_loop_init");
	fuzz_S.srv.loop = &fuzz_S.loop;
	fuzz_S.srv.cfg = &fuzz_S.cfg;
	for (i = 0; i < fuzz_S.cfg.nexports; i++) {
		struct onfs_access_rules *r;

		if (onfs_export_open(&fuzz_S.cfg.exports[i], fuzz_S.cfg.state_dir,
				     &fuzz_S.srv.exports[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz-server: export: %s\n", err);
			abort();
		}
		fuzz_S.srv.nexports++;
		r = onfs_access_rules_new(&fuzz_S.cfg.exports[i]);
		if (!r || onfs_access_publish(fuzz_S.srv.exports[i], r) < 0)
			fuzz_die("access rules");
	}
	if (onfs_nlm_start(&fuzz_S.srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-server: %s\n", err);
		abort();
	}
	for (i = 0; i < fuzz_S.srv.nexports; i++)
		for (size_t k = 0; k < ONFS_ARRAY_SIZE(paths); k++)
			fuzz_collect(fuzz_S.srv.exports[i], paths[k]);
	if (fuzz_S.nfh < 8)
		fuzz_die("too few handles");
	ready = 1;
	return &fuzz_S.srv;
}

/* Run the loop until no request (pool work, UDP send) is pending. */
static void fuzz_drain(void)
{
	int guard = 0;

	while (fuzz_S.loop.active_reqs.count > 0 && guard++ < 100000)
		uv_run(&fuzz_S.loop, UV_RUN_ONCE);
	uv_run(&fuzz_S.loop, UV_RUN_NOWAIT);
}

/*
 * Copy in into out (cap bytes), replacing each FE ED 48 n by the XDR opaque
 * of the n-th known handle. Returns the length written.
 */
static size_t fuzz_subst_fh(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t i = 0, o = 0;

	while (i < len && o < cap) {
		if (i + 4 <= len && in[i] == FUZZ_FH_MAGIC0 && in[i + 1] == FUZZ_FH_MAGIC1 &&
		    in[i + 2] == FUZZ_FH_MAGIC2 && o + 4 + ONFS_FH_MAX <= cap) {
			const struct onfs_fh *fh = &fuzz_S.fh[in[i + 3] % fuzz_S.nfh];
			uint32_t be = htonl(fh->len);
			size_t padded = (fh->len + 3) & ~(size_t)3;

			memcpy(out + o, &be, 4);
			memset(out + o + 4, 0, padded);
			memcpy(out + o + 4, fh->data, fh->len);
			o += 4 + padded;
			i += 4;
			continue;
		}
		out[o++] = in[i++];
	}
	return o;
}

/*
 * One call: flags bit 0 AUTH_NONE (else AUTH_SYS), bit 1 uid/gid 1000
 * (else 0), bit 2 an unprivileged source port, bit 3 IPv6 ::1 peer.
 */
static void fuzz_call(uint32_t prog, uint32_t vers, uint32_t proc, uint8_t flags,
		      const uint8_t *args, size_t args_len)
{
	struct onfs_server *srv = fuzz_server();
	size_t cap = 256 + args_len * 2 + 4 * ONFS_FH_MAX, n = 0;
	uint8_t *rec = malloc(cap);
	uint32_t w[32];
	size_t nw = 0;
	struct sockaddr_storage ss;
	int sslen;

	if (!rec)
		abort();
	w[nw++] = htonl(++fuzz_S.xid);
	w[nw++] = htonl(0); /* CALL */
	w[nw++] = htonl(2);
	w[nw++] = htonl(prog);
	w[nw++] = htonl(vers);
	w[nw++] = htonl(proc);
	if (flags & 1) {
		w[nw++] = 0;
		w[nw++] = 0;
	} else {
		uint32_t id = flags & 2 ? 1000 : 0;

		w[nw++] = htonl(ONFS_AUTH_SYS);
		w[nw++] = htonl(4 + 4 + 4 + 4 + 4 + 4 + 4);
		w[nw++] = htonl(0x1234);    /* stamp */
		w[nw++] = htonl(4);         /* machine name "fuzz" */
		memcpy(&w[nw++], "fuzz", 4);
		w[nw++] = htonl(id);
		w[nw++] = htonl(id);
		w[nw++] = htonl(1);
		w[nw++] = htonl(27);
	}
	w[nw++] = 0; /* verifier AUTH_NONE */
	w[nw++] = 0;
	memcpy(rec, w, nw * 4);
	n = nw * 4;
	n += fuzz_subst_fh(args, args_len, rec + n, cap - n);

	memset(&ss, 0, sizeof(ss));
	if (flags & 8) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(flags & 4 ? 40000 : 800);
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(flags & 4 ? 40000 : 800);
		sslen = sizeof(*s4);
	}
	onfs_dispatch_record(srv, NULL, (const struct sockaddr *)&ss, sslen, 2049, rec, n);
	fuzz_drain();
}

/* A whole record as the transport would hand it over. */
static inline void fuzz_record(const uint8_t *data, size_t len)
{
	struct onfs_server *srv = fuzz_server();
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(800) };
	uint8_t *rec = malloc(len ? len : 1);

	if (!rec)
		abort();
	memcpy(rec, data, len);
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	onfs_dispatch_record(srv, NULL, (const struct sockaddr *)&peer, sizeof(peer), 2049, rec,
			     len);
	fuzz_drain();
}

/*
 * A call to one of the programs of tab: data[0] picks the program,
 * data[1] the procedure (one past the last is PROC_UNAVAIL), data[2] the
 * flags of fuzz_call, the rest is the argument body.
 */
static inline void fuzz_prog_call(const struct onfs_program *const *tab, size_t ntab,
			   const uint8_t *data, size_t size)
{
	const struct onfs_program *prog;

	if (size < 3)
		return;
	prog = tab[data[0] % ntab];
	fuzz_call(prog->prog, prog->vers, data[1] % (prog->nprocs + 1), data[2], data + 3,
		  size - 3);
}

#endif
