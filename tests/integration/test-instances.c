/*
 * test-instances.c - per-client upper layers ("instances") through one
 * templated export, against a real ovlnfsd on loopback with libnfs
 * clients that leave from distinct source addresses (127.0.0.2, ...;
 * srcaddr.h) and send chosen AUTH_SYS machine names:
 *
 *   build farm      clients write the same paths at once, each reads back
 *                   its own data, every crossed handle (and RENAME/LINK
 *                   across instances) is STALE, the lower is unchanged
 *   read-only       a client that only reads leaves nothing on disk; its
 *                   first change creates upper and work
 *   restart         every instance's data and handles survive a restart
 *   {name}          /clients/NAME instances behind one address, told apart
 *                   by the mount record; bad names refused; SIGHUP log
 *   {host}          instances by AUTH_SYS machine name; bad names refused
 *   bad templates   startup refusals naming the export and the value
 *   max_instances   MNT3ERR_ACCES beyond it, logged; nothing created
 *   idle_timeout    descriptors released, back on the next request (a
 *                   GETATTR, which a live instance answers on the loop)
 *   cached attrs    GETATTR from an instance's caches: a change through
 *                   another connection of the client shows at once, none in
 *                   another client's instance; crossed handles STALE
 *   kernel overlay  an instance's upper mounted by Linux overlayfs over the
 *                   same lower shows the tree the client saw
 *   1,000 live      one client, 1,000 names, a file written in each
 *   SIGHUP          a templated export added to the config file is served
 *   read-only       one instance's unusable work area (no directory, lock
 *   fallback        held elsewhere) makes it read-only, logged; others write
 *
 * Runs as a test process; every case starts its own server on a temp tree
 * and stops it by PID. Includes libnfs headers (never rpcgen's).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsclient.h"
#include "srcaddr.h"
#include "testlib.h"

/* snprintf that fails the case instead of truncating */
#define FMT(buf, ...) ASSERT(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

#define NCLIENTS 4
#define PATTERN_LEN (64 * 1024)

struct ienv {
	struct tl_tree t;
	struct tl_server s;
	char clients[PATH_MAX]; /* the templates' parent */
	char conf[PATH_MAX];
	char opts[PATH_MAX * 6];
};

/* Lower: f, out/ (0777), etc/hostname, sub/deep/g. Template parent: clients/. */
static void ienv_tree(struct ienv *e)
{
	char p[PATH_MAX];

	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 1);
	tl_write(e->t.lower[0], "f", "base-f", 0644);
	tl_mkdir(e->t.lower[0], "out", 0777);
	tl_join(p, sizeof(p), e->t.lower[0], "out");
	ASSERT(chmod(p, 0777) == 0);
	tl_mkdir(e->t.lower[0], "etc", 0755);
	tl_write(e->t.lower[0], "etc/hostname", "base\n", 0644);
	tl_mkdir_p(e->t.lower[0], "sub/deep");
	tl_write(e->t.lower[0], "sub/deep/g", "base-g", 0644);
	tl_join(e->clients, sizeof(e->clients), e->t.root, "clients");
	ASSERT(mkdir(e->clients, 0755) == 0);
	tl_join(e->conf, sizeof(e->conf), e->t.root, "ovlnfsd.conf");
}

/* The {client} farm: -o with templates under clients/, plus extra options. */
static void farm_start(struct ienv *e, const char *kind, const char *extra)
{
	snprintf(e->opts, sizeof(e->opts),
		 "lowerdir=%s,upperdir=%s/%s/upper,workdir=%s/%s/work%s%s", e->t.lower[0],
		 e->clients, kind, e->clients, kind, extra ? "," : "", extra ? extra : "");
	tl_server_start(&e->s, e->t.root, e->t.state, e->opts, NULL, NULL);
}

static void conf_start(struct ienv *e)
{
	const char *extra[] = { "-c", e->conf, NULL };

	tl_server_start(&e->s, e->t.root, e->t.state, NULL, NULL, extra);
}

static void write_conf(struct ienv *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_conf(struct ienv *e, const char *fmt, ...)
{
	char tmp[PATH_MAX + 8];
	va_list ap;
	FILE *f;

	FMT(tmp, "%s.tmp", e->conf);
	f = fopen(tmp, "w");
	ASSERT(f != NULL);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ASSERT(fclose(f) == 0);
	ASSERT(rename(tmp, e->conf) == 0);
}

static int log_count(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(s->log, &txt) > 0)
		for (char *p = txt; (p = strstr(p, needle)) != NULL; p += strlen(needle))
			n++;
	free(txt);
	return n;
}

/* Entries in a directory, "." and ".." not counted. */
static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void src_of(int i, char *out, size_t cap)
{
	snprintf(out, cap, "127.0.0.%d", i + 2);
}

/* Connect from src as machine and MNT path; asserts MNT3_OK and the source. */
static void mount_as(struct ienv *e, struct tl_client *c, const char *src, const char *machine,
		     const char *path, struct tl_fh *root)
{
	char local[64];
	int st;

	tl_client_connect_as(c, e->s.port, src, machine);
	if (src) {
		tl_client_local_addr(c, local, sizeof(local));
		ASSERTF(strcmp(local, src) == 0, "client socket is on %s, want %s", local, src);
	}
	st = tl_mnt(c, path, root, NULL, NULL, 0);
	ASSERTF(st == MNT3_OK, "MNT '%s' from %s (%s): %d %s", path, src ? src : "default",
		machine ? machine : "-", st, st < 0 ? c->err : "");
}

static int mnt_status(struct ienv *e, const char *src, const char *machine, const char *path)
{
	struct tl_client c;
	struct tl_fh root;
	int st;

	tl_client_connect_as(&c, e->s.port, src, machine);
	st = tl_mnt(&c, path, &root, NULL, NULL, 0);
	tl_client_close(&c);
	return st;
}

/* The data client i writes: its own byte pattern. */
static void pattern(int i, uint8_t *buf, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(k * 7 + (size_t)i * 31 + 1);
}

/* CREATE dir/name (UNCHECKED) and return its handle. */
static int create_get(struct tl_client *c, const struct tl_fh *dir, const char *name,
		      struct tl_fh *out)
{
	int st = tl_nfs_create(c, dir, name);

	if (st != NFS3_OK)
		return st;
	return tl_nfs_lookup(c, dir, name, out, NULL);
}

static void read_all(struct tl_client *c, const struct tl_fh *fh, uint8_t *buf, size_t cap,
		     size_t *got_out)
{
	size_t got = 0;
	bool eof = false;

	while (!eof && got < cap) {
		uint32_t n = 0;
		int st = tl_nfs_read(c, fh, got, (uint32_t)(cap - got > 32768 ? 32768 : cap - got),
				     buf + got, &n, &eof);

		ASSERTF(st == NFS3_OK, "READ: %s", tl_nfsstat_name(st));
		got += n;
		if (n == 0)
			break;
	}
	*got_out = got;
}

/*
 * One build agent (a forked child): from src, write out/result with its
 * pattern in chunks, churn a scratch file and a rename, read back. Exits
 * 0 when everything it read was its own.
 */
static void agent(struct ienv *e, int i)
{
	static uint8_t want[PATTERN_LEN], got[PATTERN_LEN];
	struct tl_client c;
	struct tl_fh root, out, res, tmp;
	char src[32];
	size_t n;

	alarm(120);
	src_of(i, src, sizeof(src));
	pattern(i, want, sizeof(want));
	mount_as(e, &c, src, NULL, "/", &root);
	ASSERT(tl_nfs_lookup(&c, &root, "out", &out, NULL) == NFS3_OK);
	for (int round = 0; round < 5; round++) {
		ASSERT(create_get(&c, &out, "result", &res) == NFS3_OK);
		for (size_t off = 0; off < PATTERN_LEN; off += 8192)
			ASSERT(tl_nfs_write(&c, &res, off, want + off, 8192) == NFS3_OK);
		ASSERT(create_get(&c, &out, "scratch", &tmp) == NFS3_OK);
		ASSERT(tl_nfs_write(&c, &tmp, 0, src, (uint32_t)strlen(src)) == NFS3_OK);
		ASSERT(tl_nfs_rename(&c, &out, "scratch", &out, "scratch2") == NFS3_OK);
		ASSERT(tl_nfs_remove(&c, &out, "scratch2") == NFS3_OK);
		/* the same lower file, copied up by every client at once */
		ASSERT(tl_nfs_lookup(&c, &root, "f", &tmp, NULL) == NFS3_OK);
		ASSERT(tl_nfs_write(&c, &tmp, 0, src, (uint32_t)strlen(src)) == NFS3_OK);
		read_all(&c, &res, got, sizeof(got), &n);
		ASSERT_EQ(n, PATTERN_LEN);
		ASSERT(memcmp(got, want, PATTERN_LEN) == 0);
	}
	tl_client_close(&c);
}

/* Every call of c on another instance's handles is STALE. */
static void check_crossed(struct tl_client *c, const struct tl_fh *own_root,
			  const struct tl_fh *root, const struct tl_fh *file,
			  const struct tl_fh *lower_file)
{
	fattr3 a;
	struct tl_fh x;
	uint8_t buf[16];
	uint32_t n;
	bool eof;
	struct tl_dirpage page = { 0 };
	uint8_t verf[8] = { 0 };

	ASSERT_EQ(tl_nfs_getattr(c, root, &a), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(c, file, &a), NFS3ERR_STALE);
	/* the same lower object, minted for another instance */
	ASSERT_EQ(tl_nfs_getattr(c, lower_file, &a), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_read(c, lower_file, 0, sizeof(buf), buf, &n, &eof), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_lookup(c, root, "out", &x, NULL), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_read(c, file, 0, sizeof(buf), buf, &n, &eof), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_write(c, file, 0, "x", 1), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_setattr_mode(c, file, 0600), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_create(c, root, "intruder"), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_remove(c, root, "f"), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_readdir(c, root, 0, verf, 4096, &page), NFS3ERR_STALE);
	tl_dirpage_free(&page);
	/* RENAME and LINK across instances, either side foreign */
	ASSERT_EQ(tl_nfs_rename(c, own_root, "f", root, "stolen"), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_rename(c, root, "f", own_root, "stolen"), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_link(c, file, own_root, "stolen"), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_link(c, lower_file, own_root, "stolen"), NFS3ERR_STALE);
}

TEST_IMPL(instances_build_farm)
{
	static uint8_t want[PATTERN_LEN], got[PATTERN_LEN];
	struct ienv e;
	struct tl_client c[NCLIENTS];
	struct tl_fh root[NCLIENTS], res[NCLIENTS], f[NCLIENTS], out;
	pid_t pid[NCLIENTS];
	char src[32], p[PATH_MAX];
	char *txt = NULL;
	size_t n;

	ienv_tree(&e);
	farm_start(&e, "{client}", NULL);
	ASSERT(log_count(&e.s, "templated by {client}") == 1);
	/* every agent at once, in its own process */
	for (int i = 0; i < NCLIENTS; i++) {
		fflush(stdout);
		pid[i] = fork();
		ASSERT(pid[i] >= 0);
		if (pid[i] == 0) {
			agent(&e, i);
			_exit(0);
		}
	}
	for (int i = 0; i < NCLIENTS; i++) {
		int status;

		ASSERT(waitpid(pid[i], &status, 0) == pid[i]);
		ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "agent %d: status %d", i,
			status);
	}
	/* on disk: one upper per client, each with its own data; the lower untouched */
	for (int i = 0; i < NCLIENTS; i++) {
		src_of(i, src, sizeof(src));
		FMT(p, "%s/%s/upper/out/result", e.clients, src);
		ASSERT_EQ(tl_read_file(p, &txt), PATTERN_LEN);
		pattern(i, want, sizeof(want));
		ASSERTF(memcmp(txt, want, PATTERN_LEN) == 0, "%s holds another client's data", p);
		free(txt);
		FMT(p, "%s/%s/upper/f", e.clients, src);
		ASSERT(tl_read_file(p, &txt) >= 0);
		ASSERTF(strncmp(txt, src, strlen(src)) == 0, "%s: '%s'", p, txt);
		free(txt);
	}
	ASSERT_EQ(dir_entries(e.clients), NCLIENTS);
	tl_join(p, sizeof(p), e.t.lower[0], "out");
	ASSERT_EQ(dir_entries(p), 0);
	tl_join(p, sizeof(p), e.t.lower[0], "f");
	ASSERT(tl_read_file(p, &txt) >= 0);
	ASSERT_STREQ(txt, "base-f");
	free(txt);
	/* each client reads back its own data through the server */
	for (int i = 0; i < NCLIENTS; i++) {
		src_of(i, src, sizeof(src));
		mount_as(&e, &c[i], src, NULL, "/", &root[i]);
		ASSERT(tl_nfs_walk(&c[i], &root[i], "out/result", &res[i], NULL) == NFS3_OK);
		ASSERT(tl_nfs_lookup(&c[i], &root[i], "f", &f[i], NULL) == NFS3_OK);
		read_all(&c[i], &res[i], got, sizeof(got), &n);
		pattern(i, want, sizeof(want));
		ASSERT_EQ(n, PATTERN_LEN);
		ASSERT(memcmp(got, want, PATTERN_LEN) == 0);
	}
	/* handles differ per instance, even of the same lower object */
	for (int i = 1; i < NCLIENTS; i++) {
		ASSERT(root[i].len != root[0].len || memcmp(root[i].data, root[0].data, root[0].len));
		ASSERT(f[i].len != f[0].len || memcmp(f[i].data, f[0].data, f[0].len));
	}
	/* every crossed handle is STALE */
	for (int i = 0; i < NCLIENTS; i++)
		for (int j = 0; j < NCLIENTS; j++)
			if (i != j)
				check_crossed(&c[i], &root[i], &root[j], &res[j], &f[j]);
	/* and nothing crossed: every client still sees only its own data */
	for (int i = 0; i < NCLIENTS; i++) {
		ASSERT(tl_nfs_lookup(&c[i], &root[i], "stolen", &out, NULL) == NFS3ERR_NOENT);
		ASSERT(tl_nfs_lookup(&c[i], &root[i], "intruder", &out, NULL) == NFS3ERR_NOENT);
		read_all(&c[i], &res[i], got, sizeof(got), &n);
		pattern(i, want, sizeof(want));
		ASSERT(n == PATTERN_LEN && memcmp(got, want, PATTERN_LEN) == 0);
		tl_client_close(&c[i]);
	}
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(instances_readonly_client_leaves_nothing)
{
	struct ienv e;
	struct tl_client c;
	struct tl_fh root, f, sub;
	struct tl_dirpage page = { 0 };
	uint8_t verf[8] = { 0 }, buf[64];
	uint32_t n, granted = 0;
	bool eof;
	fattr3 a, lower_root;
	FSSTAT3resok fs;
	struct stat st;
	char p[PATH_MAX];

	ienv_tree(&e);
	farm_start(&e, "{client}", NULL);
	mount_as(&e, &c, "127.0.0.2", NULL, "/", &root);
	ASSERT(tl_nfs_getattr(&c, &root, &lower_root) == NFS3_OK);
	ASSERT(tl_nfs_readdirplus(&c, &root, 0, verf, 4096, 32768, &page) == NFS3_OK);
	ASSERT(page.n >= 4);
	tl_dirpage_free(&page);
	ASSERT(tl_nfs_lookup(&c, &root, "f", &f, &a) == NFS3_OK);
	ASSERT(tl_nfs_read(&c, &f, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "base-f", 6) == 0);
	ASSERT(tl_nfs_walk(&c, &root, "sub/deep", &sub, NULL) == NFS3_OK);
	ASSERT(tl_nfs_access(&c, &f, 0x3f, &granted) == NFS3_OK);
	ASSERTF(granted & 0x04, "ACCESS grants no MODIFY before the upper exists: %#x", granted);
	ASSERT(tl_nfs_fsstat(&c, &root, &fs) == NFS3_OK);
	ASSERT_EQ(dir_entries(e.clients), 0);
	/* the first real change creates this client's upper and work, nobody else's */
	ASSERT(tl_nfs_create(&c, &sub, "new") == NFS3_OK);
	ASSERT_EQ(dir_entries(e.clients), 1);
	FMT(p, "%s/127.0.0.2/upper/sub/deep/new", e.clients);
	ASSERT(stat(p, &st) == 0);
	FMT(p, "%s/127.0.0.2/work/work", e.clients);
	ASSERT(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
	/* the root looks the same as before (mode, owner of the lower root) */
	ASSERT(tl_nfs_getattr(&c, &root, &a) == NFS3_OK);
	ASSERT_EQ(a.mode, lower_root.mode);
	ASSERT_EQ(a.uid, lower_root.uid);
	ASSERT_EQ(a.fileid, lower_root.fileid);
	/* and handles minted before the upper existed still work */
	ASSERT(tl_nfs_read(&c, &f, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "base-f", 6) == 0);
	ASSERT(tl_nfs_lookup(&c, &root, "sub", &sub, NULL) == NFS3_OK);
	ASSERT(tl_nfs_walk(&c, &sub, "deep/new", &f, NULL) == NFS3_OK);
	/* a READDIR of the root sees a name created there after the upper came */
	ASSERT(tl_nfs_create(&c, &root, "top") == NFS3_OK);
	ASSERT(tl_nfs_readdir(&c, &root, 0, verf, 8192, &page) == NFS3_OK);
	{
		bool seen = false;

		for (size_t i = 0; i < page.n; i++)
			seen = seen || strcmp(page.e[i].name, "top") == 0;
		ASSERT(seen);
	}
	tl_dirpage_free(&page);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(instances_restart_keeps_data_and_handles)
{
	struct ienv e;
	struct tl_client c[2], rc;
	struct tl_fh root[2], file[2], low[2], rroot, rlow;
	char src[32], buf[64], want[64];
	uint32_t n;
	bool eof;
	fattr3 a;

	ienv_tree(&e);
	farm_start(&e, "{client}", NULL);
	for (int i = 0; i < 2; i++) {
		src_of(i, src, sizeof(src));
		mount_as(&e, &c[i], src, NULL, "/", &root[i]);
		ASSERT(tl_nfs_walk(&c[i], &root[i], "sub/deep/g", &low[i], NULL) == NFS3_OK);
		ASSERT(create_get(&c[i], &root[i], "mine", &file[i]) == NFS3_OK);
		FMT(want, "data of %s", src);
		ASSERT(tl_nfs_write(&c[i], &file[i], 0, want, (uint32_t)strlen(want)) == NFS3_OK);
		tl_client_close(&c[i]);
	}
	/* a third client only reads: it keeps its handles too, with nothing on disk */
	mount_as(&e, &rc, "127.0.0.9", NULL, "/", &rroot);
	ASSERT(tl_nfs_walk(&rc, &rroot, "sub/deep/g", &rlow, NULL) == NFS3_OK);
	tl_client_close(&rc);
	tl_server_stop(&e.s);

	tl_server_start(&e.s, e.t.root, e.t.state, e.opts, NULL, NULL);
	ASSERTF(log_count(&e.s, "3 instance(s)") == 1, "startup log does not count 3 instances");
	/* no MNT: the clients go on with the handles they hold */
	tl_client_connect_as(&rc, e.s.port, "127.0.0.9", NULL);
	ASSERT(tl_nfs_read(&rc, &rlow, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "base-g", 6) == 0);
	ASSERT(tl_nfs_getattr(&rc, &rroot, &a) == NFS3_OK);
	tl_client_close(&rc);
	ASSERT_EQ(dir_entries(e.clients), 2);
	for (int i = 0; i < 2; i++) {
		src_of(i, src, sizeof(src));
		tl_client_connect_as(&c[i], e.s.port, src, NULL);
		ASSERT(tl_nfs_getattr(&c[i], &root[i], &a) == NFS3_OK);
		FMT(want, "data of %s", src);
		ASSERT(tl_nfs_read(&c[i], &file[i], 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
		ASSERT(n == strlen(want) && memcmp(buf, want, n) == 0);
		ASSERT(tl_nfs_read(&c[i], &low[i], 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
		ASSERT(n == 6 && memcmp(buf, "base-g", 6) == 0);
	}
	ASSERT_EQ(tl_nfs_getattr(&c[0], &file[1], &a), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&c[1], &root[0], &a), NFS3ERR_STALE);
	for (int i = 0; i < 2; i++)
		tl_client_close(&c[i]);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(instances_name_behind_one_address)
{
	struct ienv e;
	struct tl_client a, b, a2;
	struct tl_fh ra, rb, ha, hb, etc, x;
	char p[PATH_MAX], buf[64], longname[80];
	char *txt = NULL;
	uint32_t n;
	bool eof;
	fattr3 at;

	ienv_tree(&e);
	write_conf(&e,
		   "[export farm]\npath = /clients/{name}\nlowerdir = %s\n"
		   "upperdir = %s/{name}/upper\nworkdir = %s/{name}/work\n"
		   "clients = 127.0.0.0/8\nsquash = none\n",
		   e.t.lower[0], e.clients, e.clients);
	conf_start(&e);
	ASSERT(log_count(&e.s, "templated by {name}") == 1);
	/* two machines behind one address (NAT), told apart by their names */
	mount_as(&e, &a, "127.0.0.2", "vm-a", "/clients/alpha", &ra);
	mount_as(&e, &b, "127.0.0.2", "vm-b", "/clients/beta", &rb);
	ASSERT(tl_nfs_walk(&a, &ra, "etc/hostname", &ha, NULL) == NFS3_OK);
	ASSERT(tl_nfs_walk(&b, &rb, "etc/hostname", &hb, NULL) == NFS3_OK);
	ASSERT(tl_nfs_setattr_mode(&a, &ha, 0644) == NFS3_OK);
	ASSERT(tl_nfs_write(&a, &ha, 0, "alpha\n", 6) == NFS3_OK);
	ASSERT(tl_nfs_write(&b, &hb, 0, "beta\n", 5) == NFS3_OK);
	ASSERT(tl_nfs_read(&a, &ha, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "alpha\n", 6) == 0);
	ASSERT(tl_nfs_read(&b, &hb, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 5 && memcmp(buf, "beta\n", 5) == 0);
	FMT(p, "%s/alpha/upper/etc/hostname", e.clients);
	ASSERT(tl_read_file(p, &txt) == 6 && strcmp(txt, "alpha\n") == 0);
	free(txt);
	/* a client that did not mount a name gets STALE for its handles */
	ASSERT_EQ(tl_nfs_getattr(&a, &hb, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&b, &ra, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_lookup(&b, &ra, "etc", &x, NULL), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_rename(&a, &ra, "f", &rb, "f2"), NFS3ERR_STALE);
	/* the same machine name from another address is another client */
	tl_client_connect_as(&a2, e.s.port, "127.0.0.3", "vm-a");
	ASSERT_EQ(tl_nfs_getattr(&a2, &ra, &at), NFS3ERR_STALE);
	tl_client_close(&a2);
	/* a subdirectory of an instance */
	mount_as(&e, &a2, "127.0.0.2", "vm-a", "/clients/alpha/etc", &etc);
	ASSERT(tl_nfs_lookup(&a2, &etc, "hostname", &x, NULL) == NFS3_OK);
	ASSERT(x.len == ha.len && memcmp(x.data, ha.data, ha.len) == 0);
	tl_client_close(&a2);
	/* refused names: MNT3ERR_ACCES, logged, nothing created */
	memset(longname, 'n', 65);
	longname[65] = '\0';
	FMT(p, "/clients/%s", longname);
	ASSERT_EQ(mnt_status(&e, "127.0.0.4", "vm-c", p), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.4", "vm-c", "/clients/bad!name"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.4", "vm-c", "/clients/a b"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.4", "vm-c", "/clients"), MNT3ERR_ACCES);
	/* ".." is resolved lexically before: /clients/x/../.. leaves the export */
	ASSERT(mnt_status(&e, "127.0.0.4", "vm-c", "/clients/x/../..") != MNT3_OK);
	ASSERT(log_count(&e.s, "is not a {name} value") >= 3);
	ASSERT_EQ(dir_entries(e.clients), 2);
	/* SIGHUP says again what is templated and how many instances exist */
	ASSERT(kill(e.s.pid, SIGHUP) == 0);
	for (double end = tl_now() + 20; log_count(&e.s, "templated by {name}") < 2;) {
		ASSERTF(tl_now() < end, "no instance summary after SIGHUP");
		usleep(50000);
	}
	ASSERT(log_count(&e.s, "2 instance(s)") >= 1);
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	/* after a restart the mount record still says who mounted what */
	conf_start(&e);
	tl_client_connect_as(&a, e.s.port, "127.0.0.2", "vm-a");
	tl_client_connect_as(&b, e.s.port, "127.0.0.2", "vm-b");
	ASSERT(tl_nfs_read(&a, &ha, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "alpha\n", 6) == 0);
	ASSERT(tl_nfs_read(&b, &hb, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 5 && memcmp(buf, "beta\n", 5) == 0);
	ASSERT_EQ(tl_nfs_getattr(&a, &hb, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&b, &ha, &at), NFS3ERR_STALE);
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(instances_host_machine_name)
{
	struct ienv e;
	struct tl_client a, b;
	struct tl_fh ra, rb, fa, fb;
	char p[PATH_MAX], longname[80];
	fattr3 at;
	struct stat st;

	ienv_tree(&e);
	farm_start(&e, "{host}", NULL);
	mount_as(&e, &a, "127.0.0.2", "builder-1", "/", &ra);
	mount_as(&e, &b, "127.0.0.2", "builder-2", "/", &rb);
	ASSERT(create_get(&a, &ra, "job", &fa) == NFS3_OK);
	ASSERT(create_get(&b, &rb, "job", &fb) == NFS3_OK);
	ASSERT(tl_nfs_write(&a, &fa, 0, "one", 3) == NFS3_OK);
	ASSERT(tl_nfs_write(&b, &fb, 0, "two!", 4) == NFS3_OK);
	ASSERT(tl_nfs_getattr(&a, &fa, &at) == NFS3_OK && at.size == 3);
	ASSERT(tl_nfs_getattr(&b, &fb, &at) == NFS3_OK && at.size == 4);
	ASSERT_EQ(tl_nfs_getattr(&a, &fb, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&b, &ra, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_link(&a, &fa, &rb, "x"), NFS3ERR_STALE);
	FMT(p, "%s/builder-1/upper/job", e.clients);
	ASSERT(stat(p, &st) == 0 && st.st_size == 3);
	FMT(p, "%s/builder-2/upper/job", e.clients);
	ASSERT(stat(p, &st) == 0 && st.st_size == 4);
	/* machine names that are no {host} value */
	memset(longname, 'h', 65);
	longname[65] = '\0';
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", longname, "/"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", "a/b", "/"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", "..", "/"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", "", "/"), MNT3ERR_ACCES);
	ASSERT(log_count(&e.s, "is not a {host} value") == 4);
	ASSERT_EQ(dir_entries(e.clients), 2);
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Run the server with -o opts (or -c conf when opts is NULL); it must fail to start. */
static int run_bad(struct ienv *e, const char *opts, char *out, size_t cap)
{
	const char *bin = getenv("ONFS_SERVER");
	char portfile[PATH_MAX], logp[PATH_MAX];
	char *txt = NULL;
	int status = 0;
	pid_t pid;

	ASSERT(bin != NULL);
	tl_join(portfile, sizeof(portfile), e->t.root, "port");
	tl_join(logp, sizeof(logp), e->t.root, "bad.log");
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		alarm(30);
		if (opts)
			execl(bin, bin, "-o", opts, "--listen", "127.0.0.1:0", "--port-file",
			      portfile, "--state-dir", e->t.state, "-f", (char *)NULL);
		else
			execl(bin, bin, "-c", e->conf, "--listen", "127.0.0.1:0", "--port-file",
			      portfile, "--state-dir", e->t.state, "-f", (char *)NULL);
		_exit(127);
	}
	ASSERT(waitpid(pid, &status, 0) == pid);
	ASSERT(access(portfile, F_OK) != 0);
	out[0] = '\0';
	if (tl_read_file(logp, &txt) > 0)
		snprintf(out, cap, "%s", txt);
	free(txt);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST_IMPL(instances_bad_templates_refused_at_startup)
{
	struct ienv e;
	char opts[PATH_MAX * 6], out[4096], ro[PATH_MAX];

	ienv_tree(&e);
	/* the template's parent does not exist */
	FMT(opts, "lowerdir=%s,upperdir=%s/nope/{client}/u,workdir=%s/nope/{client}/w",
		 e.t.lower[0], e.t.root, e.t.root);
	ASSERT_EQ(run_bad(&e, opts, out, sizeof(out)), 1);
	ASSERTF(strstr(out, "export 'default'") && strstr(out, "/nope/{client}/u") &&
			strstr(out, "parent directory"), "%s", out);
	/* not writable by the export's owner (who may traverse the tree) */
	ASSERT(chmod(e.t.root, 0755) == 0);
	tl_join(ro, sizeof(ro), e.t.root, "ro");
	ASSERT(mkdir(ro, 0755) == 0);
	write_conf(&e, "[export farm]\npath = /farm\nlowerdir = %s\nowner = nobody\n"
		   "upperdir = %s/{client}/u\nworkdir = %s/{client}/w\n",
		   e.t.lower[0], ro, ro);
	ASSERT_EQ(run_bad(&e, NULL, out, sizeof(out)), 1);
	ASSERTF(strstr(out, "export 'farm'") && strstr(out, "not writable by the export's owner"),
		"%s", out);
	/* an expansion that reaches into a lower layer */
	FMT(opts, "lowerdir=%s,upperdir=%s/{client}/u,workdir=%s/{client}/w",
		 e.t.lower[0], e.t.root, e.t.root);
	ASSERT_EQ(run_bad(&e, opts, out, sizeof(out)), 1);
	ASSERTF(strstr(out, "can expand to or around lowerdir"), "%s", out);
	/* two exports whose templates meet */
	write_conf(&e, "[export a]\npath = /a\nlowerdir = %s\n"
		   "upperdir = %s/{client}/u\nworkdir = %s/{client}/w\n\n"
		   "[export b]\npath = /b\nlowerdir = %s\n"
		   "upperdir = %s/{host}/u\nworkdir = %s/hw/{host}\n",
		   e.t.lower[0], e.clients, e.clients, e.t.lower[0], e.clients, e.t.root);
	ASSERT_EQ(run_bad(&e, NULL, out, sizeof(out)), 2);
	ASSERTF(strstr(out, "export 'b'") && strstr(out, "can expand to the same directory"),
		"%s", out);
	/* a workdir with another placeholder (-o) */
	FMT(opts, "lowerdir=%s,upperdir=%s/{client}/u,workdir=%s/{host}/w",
		 e.t.lower[0], e.clients, e.clients);
	ASSERT_EQ(run_bad(&e, opts, out, sizeof(out)), 2);
	ASSERTF(strstr(out, "same placeholder"), "%s", out);
	/* nothing was created anywhere */
	ASSERT_EQ(dir_entries(e.clients), 0);
	ASSERT_EQ(dir_entries(ro), 0);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(instances_max_instances)
{
	struct ienv e;
	struct tl_client c;
	struct tl_fh root;

	ienv_tree(&e);
	farm_start(&e, "{client}", "max_instances=2");
	ASSERT_EQ(mnt_status(&e, "127.0.0.2", NULL, "/"), MNT3_OK);
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", NULL, "/"), MNT3_OK);
	ASSERT_EQ(mnt_status(&e, "127.0.0.4", NULL, "/"), MNT3ERR_ACCES);
	ASSERT_EQ(log_count(&e.s, "max_instances (2) reached"), 1);
	/* the ones that exist go on, also after a restart */
	mount_as(&e, &c, "127.0.0.2", NULL, "/", &root);
	ASSERT(tl_nfs_create(&c, &root, "x") == NFS3_OK);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_server_start(&e.s, e.t.root, e.t.state, e.opts, NULL, NULL);
	ASSERT_EQ(mnt_status(&e, "127.0.0.5", NULL, "/"), MNT3ERR_ACCES);
	ASSERT_EQ(mnt_status(&e, "127.0.0.3", NULL, "/"), MNT3_OK);
	ASSERT_EQ(dir_entries(e.clients), 1);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Does the server hold a descriptor on path (or below it)? */
static bool server_holds(const struct tl_server *s, const char *path)
{
	char dir[64], link[PATH_MAX + 64], target[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	FMT(dir, "/proc/%d/fd", (int)s->pid);
	d = opendir(dir);
	ASSERT(d != NULL);
	while (!found && (de = readdir(d))) {
		ssize_t n;

		FMT(link, "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strncmp(target, path, strlen(path)) == 0;
	}
	closedir(d);
	return found;
}

TEST_IMPL(instances_idle_release_and_come_back)
{
	struct ienv e;
	struct tl_client c;
	struct tl_fh root, f;
	char p[PATH_MAX], buf[16];
	uint32_t n;
	bool eof;
	fattr3 at;

	ienv_tree(&e);
	farm_start(&e, "{client}", "idle_timeout=1");
	mount_as(&e, &c, "127.0.0.2", NULL, "/", &root);
	ASSERT(create_get(&c, &root, "kept", &f) == NFS3_OK);
	ASSERT(tl_nfs_write(&c, &f, 0, "kept", 4) == NFS3_OK);
	FMT(p, "%s/127.0.0.2/", e.clients);
	ASSERTF(server_holds(&e.s, p), "no descriptor under %s while in use", p);
	for (double end = tl_now() + 15; server_holds(&e.s, p);) {
		ASSERTF(tl_now() < end, "descriptors under %s not released when idle", p);
		usleep(100000);
	}
	ASSERT(log_count(&e.s, "descriptors and caches released") >= 1);
	/* a GETATTR (answered on the loop when the instance is live) of the
	 * released one brings it back through a worker */
	ASSERT(tl_nfs_getattr(&c, &f, &at) == NFS3_OK);
	ASSERT(at.size == 4 && at.type == NF3REG);
	/* the next request brings it back, same handles, same data */
	ASSERT(tl_nfs_read(&c, &f, 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
	ASSERT(n == 4 && memcmp(buf, "kept", 4) == 0);
	ASSERT(tl_nfs_write(&c, &f, 4, "+more", 5) == NFS3_OK);
	ASSERT(server_holds(&e.s, p));
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* A {client} farm with two connections of 127.0.0.2 (a1, a2) and one of 127.0.0.3 (b). */
static void farm3_up(struct ienv *e, struct tl_client *a1, struct tl_client *a2,
		     struct tl_client *b, struct tl_fh *ra1, struct tl_fh *ra2, struct tl_fh *rb)
{
	ienv_tree(e);
	farm_start(e, "{client}", NULL);
	mount_as(e, a1, "127.0.0.2", NULL, "/", ra1);
	mount_as(e, a2, "127.0.0.2", NULL, "/", ra2);
	mount_as(e, b, "127.0.0.3", NULL, "/", rb);
}

static void farm3_down(struct ienv *e, struct tl_client *a1, struct tl_client *a2,
		       struct tl_client *b)
{
	tl_client_close(a1);
	tl_client_close(a2);
	tl_client_close(b);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

/*
 * GETATTR of a live instance is answered on the loop from its caches:
 * a change made through another connection of the same client shows in
 * the very next GETATTR, and nothing of it shows in another client's
 * instance of the same lower file (whose attributes are cached too).
 */
TEST_IMPL(instances_cached_attrs_per_instance)
{
	struct ienv e;
	struct tl_client a1, a2, b;
	struct tl_fh ra1, ra2, rb, fa1, fa2, fb;
	fattr3 at;

	farm3_up(&e, &a1, &a2, &b, &ra1, &ra2, &rb);
	ASSERT(tl_nfs_lookup(&a1, &ra1, "f", &fa1, NULL) == NFS3_OK);
	ASSERT(tl_nfs_lookup(&a2, &ra2, "f", &fa2, NULL) == NFS3_OK);
	ASSERT(tl_nfs_lookup(&b, &rb, "f", &fb, NULL) == NFS3_OK);
	ASSERT(fa1.len == fa2.len && memcmp(fa1.data, fa2.data, fa1.len) == 0);
	/* the caches warm: the same answer three times over */
	for (int i = 0; i < 3; i++) {
		ASSERT(tl_nfs_getattr(&a1, &fa1, &at) == NFS3_OK);
		ASSERT(at.mode == 0644 && at.size == 6);
		ASSERT(tl_nfs_getattr(&b, &fb, &at) == NFS3_OK);
		ASSERT(at.mode == 0644 && at.size == 6);
	}
	/* changed through the other connection of the same client: copy-up */
	ASSERT(tl_nfs_setattr_mode(&a2, &fa2, 0600) == NFS3_OK);
	ASSERT(tl_nfs_write(&a2, &fa2, 0, "0123456789", 10) == NFS3_OK);
	ASSERT(tl_nfs_getattr(&a1, &fa1, &at) == NFS3_OK);
	ASSERTF(at.mode == 0600 && at.size == 10, "stale attributes after the change: mode %o size %llu",
		(unsigned)at.mode, (unsigned long long)at.size);
	/* the other instance still has the base's file */
	ASSERT(tl_nfs_getattr(&b, &fb, &at) == NFS3_OK);
	ASSERTF(at.mode == 0644 && at.size == 6, "another instance's change shows: mode %o size %llu",
		(unsigned)at.mode, (unsigned long long)at.size);
	/* and crossed handles stay STALE, cached or not */
	ASSERT_EQ(tl_nfs_getattr(&b, &fa1, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&a1, &fb, &at), NFS3ERR_STALE);
	farm3_down(&e, &a1, &a2, &b);
	return 0;
}

/*
 * The lookup cache is shared by a line's instances: a name's answer in one
 * instance is never another's, and a change through one connection of a
 * client shows at once on its other connection (the same instance), while
 * another client's instance keeps its own view.
 */
TEST_IMPL(instances_lookup_cache_per_instance)
{
	struct ienv e;
	struct tl_client a1, a2, b;
	struct tl_fh ra1, ra2, rb, fa, fb, x;

	farm3_up(&e, &a1, &a2, &b, &ra1, &ra2, &rb);
	/* twice each: the second answer may come from the cache */
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(tl_nfs_lookup(&a1, &ra1, "born", NULL, NULL), NFS3ERR_NOENT);
		ASSERT_EQ(tl_nfs_lookup(&b, &rb, "born", NULL, NULL), NFS3ERR_NOENT);
		ASSERT_EQ(tl_nfs_lookup(&a1, &ra1, "f", &fa, NULL), NFS3_OK);
		ASSERT_EQ(tl_nfs_lookup(&b, &rb, "f", &fb, NULL), NFS3_OK);
	}
	ASSERT(fa.len != fb.len || memcmp(fa.data, fb.data, fa.len) != 0);
	/* A's other connection creates and removes: A sees it at once, B never */
	ASSERT_EQ(tl_nfs_create(&a2, &ra2, "born"), NFS3_OK);
	ASSERT_EQ(tl_nfs_remove(&a2, &ra2, "f"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a1, &ra1, "born", &x, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a1, &ra1, "f", NULL, NULL), NFS3ERR_NOENT);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(tl_nfs_lookup(&b, &rb, "born", NULL, NULL), NFS3ERR_NOENT);
		ASSERT_EQ(tl_nfs_lookup(&b, &rb, "f", &x, NULL), NFS3_OK);
		ASSERT(x.len == fb.len && memcmp(x.data, fb.data, x.len) == 0);
	}
	/* and B's change is B's alone */
	ASSERT_EQ(tl_nfs_create(&b, &rb, "only-b"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&b, &rb, "only-b", NULL, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a1, &ra1, "only-b", NULL, NULL), NFS3ERR_NOENT);
	/* a directory handle of another instance is STALE, cached or not */
	ASSERT_EQ(tl_nfs_lookup(&b, &ra1, "born", NULL, NULL), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_lookup(&a1, &rb, "f", NULL, NULL), NFS3ERR_STALE);
	farm3_down(&e, &a1, &a2, &b);
	return 0;
}

/* "name:size:content" lines of a tree, sorted by name (a small listing). */
static void snapshot(const char *root, const char *rel, char *out, size_t cap)
{
	char p[PATH_MAX], sub[PATH_MAX];
	struct dirent **ents;
	int n;

	FMT(p, "%s/%s", root, rel);
	n = scandir(p, &ents, NULL, alphasort);
	ASSERTF(n >= 0, "scandir %s: %s", p, strerror(errno));
	for (int i = 0; i < n; i++) {
		struct stat st;
		char *txt = NULL;

		if (!strcmp(ents[i]->d_name, ".") || !strcmp(ents[i]->d_name, "..")) {
			free(ents[i]);
			continue;
		}
		FMT(sub, "%s%s%s", rel, rel[0] ? "/" : "", ents[i]->d_name);
		FMT(p, "%s/%s", root, sub);
		ASSERT(lstat(p, &st) == 0);
		if (S_ISREG(st.st_mode))
			ASSERT(tl_read_file(p, &txt) >= 0);
		snprintf(out + strlen(out), cap - strlen(out), "%s:%o:%s\n", sub,
			 (unsigned)st.st_mode, txt ? txt : "");
		free(txt);
		if (S_ISDIR(st.st_mode))
			snapshot(root, sub, out, cap);
		free(ents[i]);
	}
	free(ents);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The same listing through NFS: names, modes, contents. */
static void nfs_snapshot(struct tl_client *c, const struct tl_fh *dir, const char *rel,
			 char *out, size_t cap)
{
	struct tl_dirpage page = { 0 };
	uint8_t verf[8] = { 0 };
	char **names;
	size_t k = 0;

	ASSERT(tl_nfs_readdir(c, dir, 0, verf, 32768, &page) == NFS3_OK && page.eof);
	names = calloc(page.n + 1, sizeof(*names));
	for (size_t i = 0; i < page.n; i++)
		if (strcmp(page.e[i].name, ".") && strcmp(page.e[i].name, ".."))
			names[k++] = strdup(page.e[i].name);
	tl_dirpage_free(&page);
	qsort(names, k, sizeof(*names), cmp_name);
	for (size_t i = 0; i < k; i++) {
		struct tl_fh fh;
		fattr3 a;
		char sub[PATH_MAX], buf[256] = "";
		uint32_t n = 0;
		bool eof;

		ASSERT(tl_nfs_lookup(c, dir, names[i], &fh, &a) == NFS3_OK);
		if (a.type == NF3REG) {
			ASSERT(tl_nfs_read(c, &fh, 0, sizeof(buf) - 1, buf, &n, &eof) == NFS3_OK);
			buf[n] = '\0';
		}
		FMT(sub, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
		snprintf(out + strlen(out), cap - strlen(out), "%s:%o:%s\n", sub,
			 (unsigned)(a.mode | (a.type == NF3DIR ? S_IFDIR
					      : a.type == NF3LNK ? S_IFLNK : S_IFREG)),
			 buf);
		if (a.type == NF3DIR)
			nfs_snapshot(c, &fh, sub, out, cap);
		free(names[i]);
	}
	free(names);
}

TEST_IMPL(instances_upper_mounts_under_kernel_overlay)
{
	static char via_nfs[65536], via_kernel[65536];
	struct ienv e;
	struct tl_client c;
	struct tl_fh root, sub, f;
	char mnt[PATH_MAX], opts[PATH_MAX * 6];

	if (geteuid() != 0)
		RETURN_SKIP("mounting a kernel overlay needs root");
	ienv_tree(&e);
	farm_start(&e, "{client}", NULL);
	mount_as(&e, &c, "127.0.0.2", NULL, "/", &root);
	ASSERT(tl_nfs_lookup(&c, &root, "sub", &sub, NULL) == NFS3_OK);
	ASSERT(create_get(&c, &sub, "made", &f) == NFS3_OK);
	ASSERT(tl_nfs_write(&c, &f, 0, "by nfs", 6) == NFS3_OK);
	ASSERT(tl_nfs_remove(&c, &root, "f") == NFS3_OK);            /* whiteout */
	ASSERT(tl_nfs_rename(&c, &root, "etc", &root, "etc2") == NFS3_OK); /* redirect */
	ASSERT(tl_nfs_mkdir(&c, &root, "newdir") == NFS3_OK);
	nfs_snapshot(&c, &root, "", via_nfs, sizeof(via_nfs));
	tl_client_close(&c);
	tl_server_stop(&e.s); /* releases the work area lock */

	tl_join(mnt, sizeof(mnt), e.t.root, "mnt");
	ASSERT(mkdir(mnt, 0755) == 0);
	snprintf(opts, sizeof(opts),
		 "lowerdir=%s,upperdir=%s/127.0.0.2/upper,workdir=%s/127.0.0.2/work,"
		 "index=on,redirect_dir=on,nfs_export=on",
		 e.t.lower[0], e.clients, e.clients);
	if (mount("overlay", mnt, "overlay", 0, opts) < 0) {
		int err = errno;

		tl_tree_free(&e.t);
		RETURN_SKIP("kernel overlay mount failed: %s", strerror(err));
	}
	snapshot(mnt, "", via_kernel, sizeof(via_kernel));
	ASSERT(umount(mnt) == 0);
	ASSERTF(strcmp(via_nfs, via_kernel) == 0, "NFS view:\n%s\nkernel view:\n%s", via_nfs,
		via_kernel);
	ASSERT(strstr(via_kernel, "sub/made:100644:by nfs") != NULL);
	ASSERT(strstr(via_kernel, "etc2/hostname") != NULL);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * One instance's work area unusable (a file where its workdir goes; another
 * holder of its lock): that instance is served read-only with the reason
 * logged, the others carry on.
 */
TEST_IMPL(instances_readonly_fallback_is_per_instance)
{
	struct ienv e;
	struct tl_client a, b, d;
	struct tl_fh ra, rb, rd;
	char p[PATH_MAX];
	int lock;

	ienv_tree(&e);
	/* 127.0.0.2: its workdir path is taken by a file */
	FMT(p, "%s/127.0.0.2", e.clients);
	ASSERT(mkdir(p, 0755) == 0);
	tl_write(e.clients, "127.0.0.2/work", "not a directory", 0644);
	/* 127.0.0.4: an existing upper whose work area lock someone else holds */
	tl_mkdir_p(e.clients, "127.0.0.4/upper");
	tl_mkdir_p(e.clients, "127.0.0.4/work/ovlnfsd");
	FMT(p, "%s/127.0.0.4/work/ovlnfsd/lock", e.clients);
	lock = open(p, O_RDWR | O_CREAT, 0600);
	ASSERT(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0);
	farm_start(&e, "{client}", NULL);
	mount_as(&e, &a, "127.0.0.2", NULL, "/", &ra);
	mount_as(&e, &b, "127.0.0.3", NULL, "/", &rb);
	mount_as(&e, &d, "127.0.0.4", NULL, "/", &rd);
	ASSERT_EQ(tl_nfs_create(&a, &ra, "x"), NFS3ERR_ROFS);
	ASSERT_EQ(tl_nfs_create(&d, &rd, "x"), NFS3ERR_ROFS);
	ASSERT_EQ(tl_nfs_create(&b, &rb, "x"), NFS3_OK);
	ASSERT(log_count(&e.s, "'default/127.0.0.2' will be served READ-ONLY") == 1);
	ASSERT(log_count(&e.s, "'default/127.0.0.4' will be served READ-ONLY") == 1);
	ASSERT(log_count(&e.s, "in use by another ovlnfsd") == 1);
	/* reads go on in the read-only instances */
	ASSERT(tl_nfs_lookup(&a, &ra, "f", NULL, NULL) == NFS3_OK);
	ASSERT(tl_nfs_lookup(&d, &rd, "f", NULL, NULL) == NFS3_OK);
	tl_client_close(&a);
	tl_client_close(&b);
	tl_client_close(&d);
	close(lock);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* A templated export added to the config file is served after SIGHUP. */
TEST_IMPL(instances_sighup_adds_templated_export)
{
	struct ienv e;
	struct tl_client c;
	struct tl_fh root, f;

	ienv_tree(&e);
	write_conf(&e, "[export base]\npath = /base\nlowerdir = %s\nclients = 127.0.0.0/8\n",
		   e.t.lower[0]);
	conf_start(&e);
	ASSERT_EQ(mnt_status(&e, "127.0.0.2", NULL, "/farm"), MNT3ERR_NOENT);
	write_conf(&e,
		   "[export base]\npath = /base\nlowerdir = %s\nclients = 127.0.0.0/8\n\n"
		   "[export farm]\npath = /farm\nlowerdir = %s\n"
		   "upperdir = %s/{client}/upper\nworkdir = %s/{client}/work\n"
		   "clients = 127.0.0.0/8\nsquash = none\n",
		   e.t.lower[0], e.t.lower[0], e.clients, e.clients);
	ASSERT(kill(e.s.pid, SIGHUP) == 0);
	for (double end = tl_now() + 20; log_count(&e.s, "export(s) updated") < 1;) {
		ASSERTF(tl_now() < end, "no reload outcome logged");
		usleep(50000);
	}
	ASSERT_EQ(log_count(&e.s, "templated by {client}"), 2); /* opened, then the summary */
	mount_as(&e, &c, "127.0.0.3", NULL, "/farm", &root);
	ASSERT(create_get(&c, &root, "after-reload", &f) == NFS3_OK);
	tl_client_close(&c);
	ASSERT_EQ(dir_entries(e.clients), 1);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* VmRSS of the server, KiB (0 if unknown). */
static long rss_kib(const struct tl_server *s)
{
	char path[64], *txt = NULL, *p;
	long v = 0;

	FMT(path, "/proc/%d/status", (int)s->pid);
	if (tl_read_file(path, &txt) > 0 && (p = strstr(txt, "VmRSS:")))
		v = strtol(p + 6, NULL, 10);
	free(txt);
	return v;
}

/*
 * 1,000 live instances: one client mounts 1,000 names and writes in each;
 * every instance keeps its own file, and the first one's handles still
 * work at the end (nothing is evicted, no descriptor runs out).
 */
TEST_IMPL(instances_thousand_live)
{
	enum { N = 1000 };
	static struct tl_fh roots[N], files[N];
	struct ienv e;
	struct tl_client c;
	char path[64], want[32], buf[32];
	uint32_t n;
	bool eof;
	long rss0;
	double mnt_s = 0;

	ienv_tree(&e);
	write_conf(&e,
		   "[export farm]\npath = /clients/{name}\nlowerdir = %s\n"
		   "upperdir = %s/{name}/upper\nworkdir = %s/{name}/work\n"
		   "clients = 127.0.0.0/8\nsquash = none\nmax_instances = %d\n",
		   e.t.lower[0], e.clients, e.clients, N);
	conf_start(&e);
	rss0 = rss_kib(&e.s);
	tl_client_connect_as(&c, e.s.port, "127.0.0.2", "many");
	for (int i = 0; i < N; i++) {
		double t0 = tl_now();

		FMT(path, "/clients/n%04d", i);
		ASSERTF(tl_mnt(&c, path, &roots[i], NULL, NULL, 0) == MNT3_OK, "MNT %s", path);
		mnt_s += tl_now() - t0;
		ASSERT(create_get(&c, &roots[i], "mine", &files[i]) == NFS3_OK);
		FMT(want, "n%04d", i);
		ASSERT(tl_nfs_write(&c, &files[i], 0, want, (uint32_t)strlen(want)) == NFS3_OK);
	}
	ASSERT_EQ(dir_entries(e.clients), N);
	/* informational (speed and size belong to the benchmark): */
	printf("# server RSS %ld KiB at start, %ld KiB with %d live instances (%ld KiB each); "
	       "MNT of a new name %.2f ms on average\n", rss0, rss_kib(&e.s), N,
	       (rss_kib(&e.s) - rss0) / N, mnt_s * 1000 / N);
	ASSERT_EQ(mnt_status(&e, "127.0.0.2", "many", "/clients/one-more"), MNT3ERR_ACCES);
	for (int i = 0; i < N; i += 37) {
		FMT(want, "n%04d", i);
		ASSERT(tl_nfs_read(&c, &files[i], 0, sizeof(buf), buf, &n, &eof) == NFS3_OK);
		ASSERT(n == strlen(want) && memcmp(buf, want, n) == 0);
	}
	/* one name's handles are not another name's, even for the same client */
	ASSERT(files[0].len != files[1].len || memcmp(files[0].data, files[1].data, files[0].len));
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(instances_build_farm, 300),
	TEST_ENTRY(instances_readonly_client_leaves_nothing),
	TEST_ENTRY(instances_restart_keeps_data_and_handles),
	TEST_ENTRY(instances_name_behind_one_address),
	TEST_ENTRY(instances_host_machine_name),
	TEST_ENTRY(instances_bad_templates_refused_at_startup),
	TEST_ENTRY(instances_max_instances),
	TEST_ENTRY(instances_idle_release_and_come_back),
	TEST_ENTRY(instances_cached_attrs_per_instance),
	TEST_ENTRY(instances_lookup_cache_per_instance),
	TEST_ENTRY(instances_upper_mounts_under_kernel_overlay),
	TEST_ENTRY_TIMEOUT(instances_thousand_live, 300),
	TEST_ENTRY(instances_sighup_adds_templated_export),
	TEST_ENTRY(instances_readonly_fallback_is_per_instance),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
