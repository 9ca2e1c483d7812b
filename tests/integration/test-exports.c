/*
 * test-exports.c - a real ovlnfsd started with a config file (-c): several
 * exports, MOUNT EXPORT with client groups, MNT per export, clients=
 * (MNT3ERR_ACCES, NFS3ERR_ACCES for a handle obtained earlier), secure=yes
 * (unprivileged source port refused, privileged accepted), squash
 * root|all|none (owner of created files on disk, ACCESS bits), SIGHUP
 * reload (access=ro takes effect, new exports served, a bad file keeps the
 * old rules), and a bad config file (exit status, message, nothing served).
 *
 * Runs as a test process; every case starts its own server on a temp tree
 * and stops it by PID. Includes libnfs headers (never rpcgen's); MOUNT
 * EXPORT and the secure-port calls are hand-built records (rawrpc.h) so
 * that the source port and the exact reply are under the test's control.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nfsclient.h"
#include "rawrpc.h"
#include "testlib.h"

#define MOUNT_PROG 100005
#define NFS_PROG 100003
#define MNT3_OK 0
#define MNT3ERR_NOENT 2
#define MNT3ERR_ACCES 13

/* ---------- environment ---------- */

struct xenv {
	struct tl_tree t;
	struct tl_server s;
	char conf[PATH_MAX];
};

/*
 * Layers: lower l0 = base content (f, pub/ 0777, secret 0600 0:0), lower
 * l1 = a second tree for a second export; upper/work for the rw export.
 */
static void xenv_tree(struct xenv *e)
{
	char p[PATH_MAX];

	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 2);
	tl_write(e->t.lower[0], "f", "base-f", 0644);
	tl_mkdir(e->t.lower[0], "pub", 0777);
	tl_join(p, sizeof(p), e->t.lower[0], "pub");
	ASSERT(chmod(p, 0777) == 0);
	tl_write(e->t.lower[0], "secret", "secret", 0600);
	tl_write(e->t.lower[1], "g", "other-g", 0644);
	tl_join(e->conf, sizeof(e->conf), e->t.root, "ovlnfsd.conf");
}

/* Write the config file atomically (a reload never reads half a file). */
static void write_conf(struct xenv *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void write_conf(struct xenv *e, const char *fmt, ...)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	va_list ap;

	snprintf(tmp, sizeof(tmp), "%s.tmp", e->conf);
	f = fopen(tmp, "w");
	ASSERT(f != NULL);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ASSERT(fclose(f) == 0);
	ASSERT(rename(tmp, e->conf) == 0);
}

/* The usual two exports: /base (l0 read-only) and /rw (l0 + upper). */
static void write_two(struct xenv *e, const char *base_extra, const char *rw_extra)
{
	write_conf(e,
		   "[server]\nthreads = 2\n\n"
		   "[export base]\npath = /base\nlowerdir = %s\nclients = 127.0.0.0/8, ::1\n%s\n"
		   "[export rw]\npath = /rw\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		   "clients = 127.0.0.1 10.0.0.0/8\n%s\n",
		   e->t.lower[0], base_extra ? base_extra : "", e->t.lower[0], e->t.upper,
		   e->t.work, rw_extra ? rw_extra : "");
}

static void xenv_start(struct xenv *e)
{
	const char *extra[] = { "-c", e->conf, NULL };

	tl_server_start(&e->s, e->t.root, e->t.state, NULL, NULL, extra);
}

static int log_count(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(s->log, &txt) > 0) {
		for (char *p = txt; (p = strstr(p, needle)) != NULL; p += strlen(needle))
			n++;
	}
	free(txt);
	return n;
}

/* SIGHUP and wait until the server logged the reload's outcome; true when it applied. */
static bool reload(struct xenv *e)
{
	int ok0 = log_count(&e->s, "export(s) updated");
	int bad0 = log_count(&e->s, "keeping the current");
	double deadline = tl_now() + 30;

	ASSERT(kill(e->s.pid, SIGHUP) == 0);
	for (;;) {
		if (log_count(&e->s, "export(s) updated") > ok0)
			return true;
		if (log_count(&e->s, "keeping the current") > bad0)
			return false;
		ASSERTF(tl_now() < deadline, "no reload outcome in the log");
		usleep(10000);
	}
}

/* ---------- raw RPC over a socket with a chosen source port ---------- */

/* TCP to 127.0.0.1:port from src_port (0: any); -errno. */
static int raw_connect_from(int port, int src_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	int err;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (src_port) {
		a.sin_port = htons((uint16_t)src_port);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			goto fail;
	}
	a.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* A connection from a privileged port (< 1024), or skip when we may not bind one. */
static int raw_connect_privileged(int port)
{
	static int next = 1023;

	for (int tries = 0; tries < 200; tries++) {
		int fd = raw_connect_from(port, next);

		next = next > 700 ? next - 1 : 1023;
		if (fd >= 0)
			return fd;
		if (fd == -EACCES || fd == -EPERM)
			RETURN_SKIP("cannot bind a privileged port (not root)");
	}
	tl_fail(__FILE__, __LINE__, "no free privileged source port");
}

/* The local port of a connected socket. */
static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	return ntohs(a.sin_port);
}

static uint32_t next_xid = 0x5000;

/* MNT path; returns the mountstat3 (fh filled when OK), or -1 for an RPC error. */
static int raw_mnt(int fd, const char *path, struct tl_fh *fh)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec = NULL;
	int st;

	tl_put_call(&b, next_xid++, 2, MOUNT_PROG, 3, 1, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, path, (uint32_t)strlen(path));
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	if (!r.accepted && r.reject_stat == 1 && r.auth_stat == 5) {
		free(rec);
		return -2; /* AUTH_ERROR, AUTH_TOOWEAK */
	}
	if (!r.accepted || r.accept_stat != TL_SUCCESS) {
		free(rec);
		return -1;
	}
	rd = (struct tl_rd){ .p = r.body, .len = r.body_len };
	st = (int)tl_get_u32(&rd);
	if (st == MNT3_OK && fh) {
		fh->len = tl_get_opaque(&rd, fh->data, sizeof(fh->data));
		ASSERT(!rd.bad && fh->len <= 64);
	}
	free(rec);
	return st;
}

/* NFS GETATTR; returns the nfsstat3, or -1 for an RPC-level refusal. */
static int raw_getattr(int fd, const struct tl_fh *fh, uint32_t flavor)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec = NULL;
	int st;

	tl_put_call(&b, next_xid++, 2, NFS_PROG, 3, 1, flavor, 0, 0, 0);
	tl_put_opaque(&b, fh->data, fh->len);
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	if (!r.accepted && r.reject_stat == 1 && r.auth_stat == 5) {
		free(rec);
		return -2; /* AUTH_ERROR, AUTH_TOOWEAK */
	}
	if (!r.accepted || r.accept_stat != TL_SUCCESS) {
		free(rec);
		return -1;
	}
	rd = (struct tl_rd){ .p = r.body, .len = r.body_len };
	st = (int)tl_get_u32(&rd);
	free(rec);
	return st;
}

/*
 * MOUNT EXPORT as text: "PATH GROUP,GROUP;PATH ...;" (AUTH_NONE, as
 * showmount sends it).
 */
static void raw_export(int port, char *out, size_t cap)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec = NULL;
	size_t len = 0;
	int fd = tl_tcp_connect(port);

	ASSERT(fd >= 0);
	out[0] = '\0';
	tl_put_call(&b, next_xid++, 2, MOUNT_PROG, 3, 5, TL_AUTH_NONE, 0, 0, 0);
	tl_tcp_call(fd, &b, &rec, &r);
	tl_buf_free(&b);
	ASSERT(r.accepted && r.accept_stat == TL_SUCCESS);
	rd = (struct tl_rd){ .p = r.body, .len = r.body_len };
	while (tl_get_u32(&rd) && !rd.bad) {
		char s[1100];
		uint32_t n = tl_get_opaque(&rd, s, sizeof(s) - 1);
		bool first = true;

		s[n < sizeof(s) - 1 ? n : sizeof(s) - 1] = '\0';
		len += (size_t)snprintf(out + len, cap - len, "%s ", s);
		while (tl_get_u32(&rd) && !rd.bad) {
			n = tl_get_opaque(&rd, s, sizeof(s) - 1);
			s[n < sizeof(s) - 1 ? n : sizeof(s) - 1] = '\0';
			len += (size_t)snprintf(out + len, cap - len, "%s%s", first ? "" : ",", s);
			first = false;
		}
		len += (size_t)snprintf(out + len, cap - len, ";");
		ASSERT(len < cap);
	}
	ASSERT(!rd.bad);
	free(rec);
	close(fd);
}

static void stat_owner(const char *base, const char *rel, unsigned *uid, unsigned *gid)
{
	char p[PATH_MAX];
	struct stat st;

	tl_join(p, sizeof(p), base, rel);
	ASSERTF(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
	*uid = st.st_uid;
	*gid = st.st_gid;
}

/* ---------- cases ---------- */

/* Two exports: EXPORT lists both with their groups; MNT of each; ro vs rw. */
TEST_IMPL(exports_two_listed_and_mounted)
{
	struct xenv e;
	struct tl_client c;
	struct tl_fh base, rw, fh;
	char list[4096];

	xenv_tree(&e);
	write_two(&e, NULL, "squash = none\n");
	xenv_start(&e);
	raw_export(e.s.port, list, sizeof(list));
	ASSERTF(strcmp(list, "/base 127.0.0.0/8,::1;/rw 127.0.0.1,10.0.0.0/8;") == 0,
		"EXPORT: '%s'", list);

	tl_client_connect(&c, e.s.port);
	ASSERT_NFS(tl_mnt(&c, "/base", &base, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_mnt(&c, "/rw", &rw, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_mnt(&c, "/other", &fh, NULL, NULL, 0), MNT3ERR_NOENT);
	/* different exports, different handles (and fsids) */
	ASSERT(base.len != rw.len || memcmp(base.data, rw.data, base.len) != 0);
	ASSERT_NFS(tl_nfs_lookup(&c, &base, "f", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &base, "new"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_create(&c, &rw, "new"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &base, "new", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(&c, &rw, "new", NULL, NULL), NFS3_OK);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * clients=10.0.0.0/8 leaves loopback outside: MNT is ACCES. A handle the
 * client got while it was allowed turns ACCES once a reload excludes it.
 */
TEST_IMPL(exports_client_outside_refused)
{
	struct xenv e;
	struct tl_client c;
	struct tl_fh root, f, fh;
	fattr3 attr;

	xenv_tree(&e);
	write_conf(&e,
		   "[export open]\npath = /open\nlowerdir = %s\n\n"
		   "[export far]\npath = /far\nlowerdir = %s\nclients = 10.0.0.0/8\n",
		   e.t.lower[0], e.t.lower[1]);
	xenv_start(&e);
	tl_client_connect(&c, e.s.port);
	ASSERT_NFS(tl_mnt(&c, "/far", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_NFS(tl_mnt(&c, "/far/sub", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT(log_count(&e.s, "not a client of this export") >= 1);
	ASSERT_NFS(tl_mnt(&c, "/open", &root, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "f", &f, NULL), NFS3_OK);

	/* now exclude loopback from /open too */
	write_conf(&e,
		   "[export open]\npath = /open\nlowerdir = %s\nclients = 10.0.0.0/8 ::2\n\n"
		   "[export far]\npath = /far\nlowerdir = %s\nclients = 10.0.0.0/8\n",
		   e.t.lower[0], e.t.lower[1]);
	ASSERT(reload(&e));
	ASSERT_NFS(tl_nfs_getattr(&c, &f, &attr), NFS3ERR_ACCES);
	ASSERT_NFS(tl_nfs_getattr(&c, &root, &attr), NFS3ERR_ACCES);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "f", NULL, NULL), NFS3ERR_ACCES);
	ASSERT_NFS(tl_nfs_access(&c, &f, 1, NULL), NFS3ERR_ACCES);
	ASSERT_NFS(tl_mnt(&c, "/open", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	ASSERT_NFS(tl_nfs_null(&c), NFS3_OK);

	/* and back in */
	write_conf(&e, "[export open]\npath = /open\nlowerdir = %s\n", e.t.lower[0]);
	ASSERT(reload(&e));
	ASSERT_NFS(tl_nfs_getattr(&c, &f, &attr), NFS3_OK);
	/* /far left the file: still served (restart needed), still refused */
	ASSERT(log_count(&e.s, "export 'far' is no longer in") == 1);
	ASSERT_NFS(tl_mnt(&c, "/far", &fh, NULL, NULL, 0), MNT3ERR_ACCES);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* secure=yes: a source port >= 1024 is refused (MNT ACCES, NFS AUTH_TOOWEAK); < 1024 works. */
TEST_IMPL(exports_secure_port)
{
	struct xenv e;
	struct tl_fh root;
	int fd;

	xenv_tree(&e);
	write_conf(&e, "[export s]\npath = /\nlowerdir = %s\nsecure = yes\n", e.t.lower[0]);
	xenv_start(&e);

	fd = raw_connect_privileged(e.s.port);
	ASSERT(local_port(fd) < 1024);
	ASSERT_EQ(raw_mnt(fd, "/", &root), MNT3_OK);
	ASSERT_EQ(raw_getattr(fd, &root, TL_AUTH_SYS), NFS3_OK);
	close(fd);

	fd = raw_connect_from(e.s.port, 0);
	ASSERT(fd >= 0);
	ASSERT(local_port(fd) >= 1024);
	ASSERT_EQ(raw_mnt(fd, "/", NULL), MNT3ERR_ACCES);
	ASSERT(log_count(&e.s, "illegal port") >= 1);
	/* an unprivileged port on a secure export: AUTH_ERROR AUTH_TOOWEAK (issue 5) */
	ASSERT_EQ(raw_getattr(fd, &root, TL_AUTH_SYS), -2);
	/* AUTH_NONE never gets that far: the dispatcher refuses it, TOOWEAK too */
	ASSERT_EQ(raw_getattr(fd, &root, TL_AUTH_NONE), -2);
	close(fd);

	/* secure off by reload: the unprivileged port works */
	write_conf(&e, "[export s]\npath = /\nlowerdir = %s\n", e.t.lower[0]);
	ASSERT(reload(&e));
	fd = raw_connect_from(e.s.port, 0);
	ASSERT(fd >= 0);
	ASSERT_EQ(raw_getattr(fd, &root, TL_AUTH_SYS), NFS3_OK);
	ASSERT_EQ(raw_mnt(fd, "/", NULL), MNT3_OK);
	close(fd);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Create pub/NAME as (uid, gid) on an export with squash; return the owner on disk. */
static void squash_case(const char *squash_lines, int uid, int gid, unsigned want_uid,
			unsigned want_gid, bool root_reads_secret)
{
	struct xenv e;
	struct tl_client c;
	struct tl_fh root, pub, secret;
	unsigned u, g;
	uint32_t granted = 0;

	xenv_tree(&e);
	write_conf(&e,
		   "[export w]\npath = /\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n%s\n",
		   e.t.lower[0], e.t.upper, e.t.work, squash_lines);
	xenv_start(&e);
	tl_client_connect(&c, e.s.port);
	tl_client_set_ids(&c, uid, gid);
	ASSERT_NFS(tl_mnt(&c, "/", &root, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "pub", &pub, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &pub, "made"), NFS3_OK);
	ASSERT_NFS(tl_nfs_mkdir(&c, &pub, "dir"), NFS3_OK);
	stat_owner(e.t.upper, "pub/made", &u, &g);
	ASSERT_EQ(u, want_uid);
	ASSERT_EQ(g, want_gid);
	stat_owner(e.t.upper, "pub/dir", &u, &g);
	ASSERT_EQ(u, want_uid);
	ASSERT_EQ(g, want_gid);
	/* ACCESS answers for the squashed identity: secret is 0600 0:0 */
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "secret", &secret, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_access(&c, &secret, 0x1, &granted), NFS3_OK);
	ASSERT_EQ((granted & 0x1) != 0, root_reads_secret);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
}

TEST_IMPL(exports_squash_root_default)
{
	squash_case("", 0, 0, 65534, 65534, false);
	return 0;
}

TEST_IMPL(exports_squash_root_anon_ids)
{
	squash_case("squash = root\nanonuid = 1234\nanongid = 4321\n", 0, 0, 1234, 4321, false);
	/* a non-root caller keeps its identity under squash=root */
	squash_case("squash = root\n", 1000, 1000, 1000, 1000, false);
	return 0;
}

TEST_IMPL(exports_squash_none)
{
	squash_case("squash = none\n", 0, 0, 0, 0, true);
	return 0;
}

TEST_IMPL(exports_squash_all)
{
	squash_case("squash = all\n", 1000, 1000, 65534, 65534, false);
	return 0;
}

/* access=ro by reload: mutations ROFS; a bad reload keeps serving with the old rules. */
TEST_IMPL(exports_reload_access_and_bad_file)
{
	struct xenv e;
	struct tl_client c;
	struct tl_fh base, rw, fh;
	uint32_t granted = 0;
	char list[4096];

	xenv_tree(&e);
	write_two(&e, NULL, "squash = none\n");
	xenv_start(&e);
	tl_client_connect(&c, e.s.port);
	ASSERT_NFS(tl_mnt(&c, "/base", &base, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_mnt(&c, "/rw", &rw, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &rw, "before"), NFS3_OK);
	ASSERT_NFS(tl_nfs_access(&c, &rw, 0x4, &granted), NFS3_OK);
	ASSERT(granted & 0x4);

	write_two(&e, NULL, "squash = none\naccess = ro\n");
	ASSERT(reload(&e));
	ASSERT_NFS(tl_nfs_create(&c, &rw, "after"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_mkdir(&c, &rw, "afterdir"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_remove(&c, &rw, "before"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_lookup(&c, &rw, "before", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_write(&c, &fh, 0, "x", 1), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_access(&c, &rw, 0x4, &granted), NFS3_OK);
	ASSERT(!(granted & 0x4));

	/* a broken file: logged with file:line:key, old rules (ro) stay */
	write_conf(&e, "[export rw]\npath = /rw\nlowerdir = %s\nsquash = sometimes\n",
		   e.t.lower[0]);
	ASSERT(kill(e.s.pid, SIGHUP) == 0);
	{
		double deadline = tl_now() + 30;

		while (log_count(&e.s, "keeping the current configuration") == 0) {
			ASSERTF(tl_now() < deadline, "bad reload not logged");
			usleep(10000);
		}
	}
	ASSERT(log_count(&e.s, "ovlnfsd.conf:4: [export rw] squash:") == 1);
	ASSERT_NFS(tl_nfs_null(&c), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &rw, "after"), NFS3ERR_ROFS);
	ASSERT_NFS(tl_nfs_lookup(&c, &base, "f", NULL, NULL), NFS3_OK);
	raw_export(e.s.port, list, sizeof(list));
	ASSERTF(strcmp(list, "/base 127.0.0.0/8,::1;/rw 127.0.0.1,10.0.0.0/8;") == 0,
		"EXPORT: '%s'", list);

	/* rw again, and a new export appears */
	write_conf(&e,
		   "[export base]\npath = /base\nlowerdir = %s\n"
		   "[export rw]\npath = /rw\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		   "squash = none\nclients = 127.0.0.1\n"
		   "[export more]\npath = /more\nlowerdir = %s\nclients = 127.0.0.0/31\n",
		   e.t.lower[0], e.t.lower[0], e.t.upper, e.t.work, e.t.lower[1]);
	ASSERT(reload(&e));
	ASSERT_NFS(tl_nfs_create(&c, &rw, "after"), NFS3_OK);
	ASSERT_NFS(tl_mnt(&c, "/more", &fh, NULL, NULL, 0), MNT3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &fh, "g", NULL, NULL), NFS3_OK);
	raw_export(e.s.port, list, sizeof(list));
	ASSERTF(strcmp(list, "/base 127.0.0.0/8,::1;/rw 127.0.0.1;/more 127.0.0.0/31;") == 0,
		"EXPORT: '%s'", list);

	/* a changed path is not applied: restart needed, export unchanged (a changed
	 * lowerdir alone is a base update: test-ctl.c, ctl_base_update) */
	write_conf(&e,
		   "[export base]\npath = /base-moved\nlowerdir = %s\n"
		   "[export rw]\npath = /rw\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		   "squash = none\naccess = ro\n"
		   "[export more]\npath = /more\nlowerdir = %s\nclients = 127.0.0.0/31\n",
		   e.t.lower[0], e.t.lower[0], e.t.upper, e.t.work, e.t.lower[1]);
	ASSERT(reload(&e));
	ASSERT(log_count(&e.s, "export 'base': path, layers or owner changed") == 1);
	ASSERT_NFS(tl_nfs_lookup(&c, &base, "f", NULL, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&c, &rw, "after2"), NFS3ERR_ROFS);
	tl_client_close(&c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Run the server with a config and no port file; returns the exit status and the output. */
static int run_bad(struct xenv *e, char *out, size_t cap)
{
	const char *bin = getenv("ONFS_SERVER");
	char portfile[PATH_MAX], logp[PATH_MAX];
	int status = 0;
	pid_t pid;
	char *txt = NULL;

	ASSERT(bin != NULL);
	tl_join(portfile, sizeof(portfile), e->t.root, "port");
	tl_join(logp, sizeof(logp), e->t.root, "bad.log");
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin, bin, "-c", e->conf, "--listen", "127.0.0.1:0", "--port-file", portfile,
		      "--state-dir", e->t.state, "-f", (char *)NULL);
		_exit(127);
	}
	ASSERT(waitpid(pid, &status, 0) == pid);
	ASSERT(access(portfile, F_OK) != 0); /* never listened */
	out[0] = '\0';
	if (tl_read_file(logp, &txt) > 0)
		snprintf(out, cap, "%s", txt);
	free(txt);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST_IMPL(exports_bad_config_exits)
{
	struct xenv e;
	char out[4096];
	int rc;

	xenv_tree(&e);
	write_conf(&e, "[export a]\npath = /a\nlowerdir = %s\nclients = 10.0.0.0/8 nonsense\n",
		   e.t.lower[0]);
	rc = run_bad(&e, out, sizeof(out));
	ASSERT(rc != 0);
	ASSERTF(strstr(out, "ovlnfsd.conf:4: [export a] clients: 'nonsense'") != NULL, "%s", out);

	write_two(&e, NULL, NULL);
	{
		/* same upper twice */
		static char text[32768];
		char *txt = NULL;

		ASSERT(tl_read_file(e.conf, &txt) > 0);
		snprintf(text, sizeof(text),
			 "%s[export again]\npath = /again\nlowerdir = %s\nupperdir = %s\nworkdir = %s/x\n",
			 txt, e.t.lower[1], e.t.upper, e.t.work);
		free(txt);
		write_conf(&e, "%s", text);
	}
	rc = run_bad(&e, out, sizeof(out));
	ASSERT(rc != 0);
	ASSERTF(strstr(out, "[export again] upperdir:") && strstr(out, "[export rw]"), "%s", out);

	/* a layer that does not exist: named, nothing served */
	write_conf(&e, "[export a]\npath = /a\nlowerdir = %s/missing\n", e.t.root);
	rc = run_bad(&e, out, sizeof(out));
	ASSERT(rc != 0);
	ASSERTF(strstr(out, "missing") != NULL, "%s", out);

	/* -c with -o */
	{
		const char *bin = getenv("ONFS_SERVER");
		char cmd[PATH_MAX * 3];

		snprintf(cmd, sizeof(cmd), "'%s' -c '%s' -o lowerdir=/tmp >/dev/null 2>&1", bin,
			 e.conf);
		rc = system(cmd);
		ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
	}
	tl_tree_free(&e.t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY(exports_two_listed_and_mounted),
	TEST_ENTRY(exports_client_outside_refused),
	TEST_ENTRY(exports_secure_port),
	TEST_ENTRY(exports_squash_root_default),
	TEST_ENTRY(exports_squash_root_anon_ids),
	TEST_ENTRY(exports_squash_none),
	TEST_ENTRY(exports_squash_all),
	TEST_ENTRY_TIMEOUT(exports_reload_access_and_bad_file, 120),
	TEST_ENTRY(exports_bad_config_exits),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
