/*
 * test-ctl.c - ovlnfsctl against a running ovlnfsd (server/ctl.c,
 * docs/operating.md): a {client} farm on loopback, clients from
 * 127.0.0.2 and 127.0.0.3 (srcaddr.c), ovlnfsctl run as a child
 * ($ONFS_CTL) with --state-dir of the test's state directory.
 *
 *   list / diff      round trip, tables and --json (python3 -m json.tool)
 *   reset            while another client writes: upper-only handles STALE,
 *                    base handles (also copied-up ones) read the base, the
 *                    other instance untouched, the trash emptied
 *   reset + kill -9  the trash left by a killed server is removed when the
 *                    instance's work area is set up again; nothing of the
 *                    old upper is visible
 *   refusal          the socket is 0600 in a 0700 directory; opened up, the
 *                    server still refuses uid 65534 (SO_PEERCRED)
 *   reset plain      a plain export under load; kill -9 after it and at the
 *                    crash point between its two renames
 *   commit           plain and instance, under load: every handle and fileid
 *                    kept, stacked commits, restart, another export on the
 *                    layer; kill -9 after one and at a crash point mid-way;
 *                    renamed copy-ups and hard links (what only the index
 *                    knew) after a commit, also in a kernel overlay mount;
 *                    kill -9 at random points of ten real commits
 *   base update      lowerdir + SIGHUP under ten libnfs clients (every file
 *                    read holds one version), pinned uppers, rebase; the
 *                    same for the instances of a templated line
 *   base replaced    a lower renamed over in place: the periodic probe logs it
 *                    once and serves the new tree; for a templated line the
 *                    instance with an empty upper moves, a written one stays
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "nfsclient.h"
#include "srcaddr.h"
#include "testlib.h"

#define FMT(buf, ...) snprintf(buf, sizeof(buf), __VA_ARGS__)

struct cenv {
	struct tl_tree t;
	struct tl_server s;
	char clients[PATH_MAX];
	char conf[PATH_MAX];
	char layers[PATH_MAX];
};

static void cenv_server(struct cenv *e)
{
	const char *extra[] = { "-c", e->conf, NULL };

	tl_server_start(&e->s, e->t.root, e->t.state, NULL, NULL, extra);
}

static void cenv_start(struct cenv *e)
{
	memset(e, 0, sizeof(*e));
	tl_tree_new(&e->t, 1);
	tl_write(e->t.lower[0], "f", "base-f", 0666);
	tl_mkdir(e->t.lower[0], "etc", 0777);
	tl_write(e->t.lower[0], "etc/hostname", "base\n", 0644);
	tl_mkdir_p(e->t.lower[0], "sub/deep");
	tl_write(e->t.lower[0], "sub/deep/g", "base-g", 0644);
	tl_join(e->clients, sizeof(e->clients), e->t.root, "clients");
	ASSERT(mkdir(e->clients, 0755) == 0);
	tl_join(e->conf, sizeof(e->conf), e->t.root, "ovlnfsd.conf");
	tl_join(e->layers, sizeof(e->layers), e->t.root, "layers");
	ASSERT(mkdir(e->layers, 0755) == 0);
	{
		FILE *f = fopen(e->conf, "w");

		ASSERT(f);
		fprintf(f, "[server]\nlayers = %s\n", e->layers);
		fprintf(f, "[export farm]\npath = /\nlowerdir = %s\nupperdir = %s/{client}/upper\n"
			"workdir = %s/{client}/work\nsquash = none\n"
			"[export plain]\npath = /plain\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
			"squash = none\n", e->t.lower[0], e->clients, e->clients, e->t.lower[0],
			e->t.upper, e->t.work);
		ASSERT(fclose(f) == 0);
	}
	cenv_server(e);
}

static void mount_as(struct cenv *e, struct tl_client *c, const char *src, struct tl_fh *root)
{
	int st;

	tl_client_connect_as(c, e->s.port, src, NULL);
	st = tl_mnt(c, "/", root, NULL, NULL, 0);
	ASSERTF(st == MNT3_OK, "MNT from %s: %d %s", src, st, st < 0 ? c->err : "");
}

/*
 * Run ovlnfsctl [--json] ARGS as uid (-1: ourselves); out gets stdout and
 * stderr. Returns the exit status (-1 when it did not exit normally).
 */
static int ctl_as(struct cenv *e, long uid, char **out, const char *a1, const char *a2,
		  const char *a3)
{
	const char *bin = getenv("ONFS_CTL");
	char path[PATH_MAX], *txt = NULL;
	int st;
	pid_t pid;

	ASSERTF(bin, "ONFS_CTL is not set");
	tl_join(path, sizeof(path), e->t.root, "ctl.out");
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		FILE *f = freopen(path, "w", stdout);

		if (!f || dup2(fileno(stdout), 2) < 0)
			_exit(126);
		if (uid >= 0 && (setgroups(0, NULL) < 0 || setgid((gid_t)uid) < 0 ||
				 setuid((uid_t)uid) < 0))
			_exit(125);
		execl(bin, bin, "--state-dir", e->t.state, a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	ASSERT(waitpid(pid, &st, 0) == pid);
	ASSERT(tl_read_file(path, &txt) >= 0);
	*out = txt;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int ctl(struct cenv *e, char **out, const char *a1, const char *a2, const char *a3)
{
	return ctl_as(e, -1, out, a1, a2, a3);
}

/* ovlnfsctl [--json] commit NAME LAYER */
static int ctl_commit(struct cenv *e, char **out, bool json, const char *name, const char *layer)
{
	const char *bin = getenv("ONFS_CTL");
	char path[PATH_MAX], *txt = NULL;
	int st;
	pid_t pid;

	ASSERTF(bin, "ONFS_CTL is not set");
	tl_join(path, sizeof(path), e->t.root, "ctl.out");
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		FILE *f = freopen(path, "w", stdout);

		if (!f || dup2(fileno(stdout), 2) < 0)
			_exit(126);
		if (json)
			execl(bin, bin, "--state-dir", e->t.state, "--json", "commit", name, layer,
			      (char *)NULL);
		else
			execl(bin, bin, "--state-dir", e->t.state, "commit", name, layer,
			      (char *)NULL);
		_exit(127);
	}
	ASSERT(waitpid(pid, &st, 0) == pid);
	ASSERT(tl_read_file(path, &txt) >= 0);
	*out = txt;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Is text valid JSON? (python3 -m json.tool) */
static bool json_ok(struct cenv *e, const char *text)
{
	char path[PATH_MAX], cmd[PATH_MAX * 2 + 64];
	FILE *f;

	tl_join(path, sizeof(path), e->t.root, "ctl.json");
	f = fopen(path, "w");
	ASSERT(f);
	fputs(text, f);
	fclose(f);
	FMT(cmd, "python3 -m json.tool '%s' >/dev/null", path);
	return system(cmd) == 0;
}

static int trash_entries(struct cenv *e, const char *src)
{
	char p[PATH_MAX * 2];
	DIR *d;
	struct dirent *de;
	int n = 0;

	FMT(p, "%s/%s/work/ovlnfsd/trash", e->clients, src);
	d = opendir(p);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void make_changes(struct tl_client *c, const struct tl_fh *root)
{
	struct tl_fh f;

	ASSERT_EQ(tl_nfs_create(c, root, "new"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(c, root, "new", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(c, &f, 0, "new-data", 8), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(c, root, "f", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(c, &f, 0, "CHANGED", 7), NFS3_OK);
	ASSERT_EQ(tl_nfs_mkdir(c, root, "d"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(c, root, "etc", &f, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_remove(c, &f, "hostname"), NFS3_OK);
}

TEST_IMPL(ctl_list_diff)
{
	struct cenv e;
	struct tl_client a, b;
	struct tl_fh ra, rb;
	char *out = NULL;

	cenv_start(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	mount_as(&e, &b, "127.0.0.3", &rb);
	make_changes(&a, &ra);
	ASSERT_EQ(tl_nfs_create(&b, &rb, "only-b"), NFS3_OK);

	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(strstr(out, "NAME") && strstr(out, "farm/127.0.0.2") &&
		strstr(out, "farm/127.0.0.3") && strstr(out, e.t.lower[0]),
		"list: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(json_ok(&e, out), "list --json is not JSON: %s", out);
	ASSERTF(strstr(out, "\"name\": \"farm/127.0.0.2\"") &&
		strstr(out, "\"kind\": \"instance\"") && strstr(out, "\"upper_objects\": "),
		"list --json: %s", out);
	free(out);

	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.2", NULL), 0);
	ASSERTF(strstr(out, "A  new\n") && strstr(out, "M  f\n") && strstr(out, "A  d\n") &&
		strstr(out, "D  etc/hostname\n") && !strstr(out, "only-b") &&
		!strstr(out, "sub"), "diff: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "--json", "diff", "farm/127.0.0.2"), 0);
	ASSERTF(json_ok(&e, out), "diff --json is not JSON: %s", out);
	ASSERTF(strstr(out, "{\"status\": \"D\", \"path\": \"etc/hostname\"}"), "diff --json: %s",
		out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.3", NULL), 0);
	ASSERTF(strcmp(out, "A  only-b\n") == 0, "diff of b: %s", out);
	free(out);

	/* a plain export: diff and list work, reset is refused with the reason */
	{
		struct tl_client pc;
		struct tl_fh pr;
		int st;

		tl_client_connect_as(&pc, e.s.port, "127.0.0.4", NULL);
		st = tl_mnt(&pc, "/plain", &pr, NULL, NULL, 0);
		ASSERT_EQ(st, MNT3_OK);
		ASSERT_EQ(tl_nfs_create(&pc, &pr, "plain-new"), NFS3_OK);
		tl_client_close(&pc);
	}
	ASSERT_EQ(ctl(&e, &out, "diff", "plain", NULL), 0);
	ASSERTF(strcmp(out, "A  plain-new\n") == 0, "diff plain: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(json_ok(&e, out) && strstr(out, "\"name\": \"plain\", \"kind\": \"export\""),
		"%s", out);
	free(out);

	/* failures: one line on stderr, non-zero */
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/10.9.9.9", NULL), 1);
	ASSERTF(strstr(out, "no export or instance named 'farm/10.9.9.9'") &&
		strchr(out, '\n') == out + strlen(out) - 1, "%s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "frobnicate", NULL, NULL), 2);
	free(out);
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	{
		char t[PATH_MAX * 2];
		struct stat st;

		FMT(t, "%s/ctl.sock", e.t.state);
		ASSERTF(lstat(t, &st) < 0 && errno == ENOENT, "ctl.sock left after the stop");
	}
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 1);
	ASSERTF(strstr(out, "cannot connect"), "%s", out);
	free(out);
	tl_tree_free(&e.t);
	return 0;
}

struct writer {
	struct cenv *e;
	struct tl_client c;
	struct tl_fh root;
	atomic_bool stop;
	int rounds, errors;
};

/* The reset instance's own client writes one base file during the reset. */
struct self_writer {
	struct tl_client c;
	struct tl_fh f;
	atomic_bool stop;
	int rounds, errors, last_err;
};

static void *self_writer_main(void *arg)
{
	struct self_writer *w = arg;
	double t0 = tl_now();

	for (int i = 0; i < 2000 && !atomic_load(&w->stop) && tl_now() - t0 < 20; i++) {
		int st = tl_nfs_write(&w->c, &w->f, 0, "SELF", 4);

		if (st != NFS3_OK) {
			w->errors++;
			w->last_err = st;
		}
		w->rounds++;
	}
	return NULL;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	double t0 = tl_now();
	struct tl_fh f;
	char name[32], data[64];

	/* bounded: 2000 rounds or 20 s */
	for (int i = 0; i < 2000 && !atomic_load(&w->stop) && tl_now() - t0 < 20; i++) {
		snprintf(name, sizeof(name), "w%d", i % 50);
		snprintf(data, sizeof(data), "round %d", i);
		if (tl_nfs_create(&w->c, &w->root, name) != NFS3_OK ||
		    tl_nfs_lookup(&w->c, &w->root, name, &f, NULL) != NFS3_OK ||
		    tl_nfs_write(&w->c, &f, 0, data, (uint32_t)strlen(data)) != NFS3_OK)
			w->errors++;
		w->rounds++;
	}
	return NULL;
}

TEST_IMPL(ctl_reset)
{
	struct cenv e;
	struct tl_client a;
	struct tl_fh ra, fnew, ff, fg, fd;
	struct writer w = { 0 };
	struct self_writer sw = { 0 };
	pthread_t th, th2;
	char *out = NULL, buf[64], up[PATH_MAX * 2];
	uint32_t n;
	bool eof;
	fattr3 at;
	struct stat st;

	cenv_start(&e);
	w.e = &e;
	mount_as(&e, &a, "127.0.0.2", &ra);
	mount_as(&e, &w.c, "127.0.0.3", &w.root);
	make_changes(&a, &ra);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "new", &fnew, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "f", &ff, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "d", &fd, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_walk(&a, &ra, "sub/deep/g", &fg, NULL), NFS3_OK);
	/* silly-renamed leftovers go with the upper */
	ASSERT_EQ(tl_nfs_create(&a, &ra, ".nfs000000000001"), NFS3_OK);

	ASSERT(pthread_create(&th, NULL, writer_main, &w) == 0);
	/* a second connection of the same client (same address) writes f */
	tl_client_connect_as(&sw.c, e.s.port, "127.0.0.2", NULL);
	sw.f = ff;
	ASSERT(pthread_create(&th2, NULL, self_writer_main, &sw) == 0);
	usleep(50000);
	ASSERT_EQ(ctl(&e, &out, "reset", "farm/127.0.0.2", NULL), 0);
	ASSERTF(strstr(out, "reset"), "%s", out);
	free(out);
	usleep(50000);
	atomic_store(&w.stop, true);
	atomic_store(&sw.stop, true);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	ASSERTF(w.rounds > 0 && w.errors == 0, "the other client: %d errors in %d rounds",
		w.errors, w.rounds);
	/* the base file's handle survives the reset: every write lands somewhere valid */
	ASSERTF(sw.rounds > 0 && sw.errors == 0, "the reset client: %d errors in %d rounds "
		"(last %d)", sw.errors, sw.rounds, sw.last_err);
	tl_client_close(&sw.c);
	/* its writes after the reset went to a fresh copy-up: stop them, then reset again */
	ASSERT_EQ(ctl(&e, &out, "reset", "farm/127.0.0.2", NULL), 0);
	free(out);

	/* upper-only objects: STALE; base objects (also copied-up f): the base */
	ASSERT_EQ(tl_nfs_getattr(&a, &fnew, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&a, &fd, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_read(&a, &ff, 0, sizeof(buf), buf, &n, &eof), NFS3_OK);
	ASSERTF(n == 6 && memcmp(buf, "base-f", 6) == 0, "f after reset: %.*s", (int)n, buf);
	ASSERT_EQ(tl_nfs_read(&a, &fg, 0, sizeof(buf), buf, &n, &eof), NFS3_OK);
	ASSERT(n == 6 && memcmp(buf, "base-g", 6) == 0);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "new", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, ".nfs000000000001", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_walk(&a, &ra, "etc/hostname", NULL, NULL), NFS3_OK);
	FMT(up, "%s/127.0.0.2/upper", e.clients);
	ASSERTF(lstat(up, &st) < 0 && errno == ENOENT, "the old upper is still at '%s'", up);

	/* the background empties the trash (bounded wait) */
	for (int i = 0; i < 100 && trash_entries(&e, "127.0.0.2") > 0; i++)
		usleep(100000);
	ASSERT_EQ(trash_entries(&e, "127.0.0.2"), 0);

	/* the other instance kept everything */
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.3", NULL), 0);
	ASSERTF(strstr(out, "A  w0\n"), "diff of the other client: %s", out);
	free(out);
	/* the reset instance writes again, on a fresh upper; diff sees only that */
	ASSERT_EQ(tl_nfs_create(&a, &ra, "after"), NFS3_OK);
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.2", NULL), 0);
	ASSERTF(strcmp(out, "A  after\n") == 0, "diff after reset: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "--json", "reset", "farm/127.0.0.2"), 0);
	ASSERTF(json_ok(&e, out), "reset --json: %s", out);
	free(out);
	/* a templated line itself, or an unknown name, cannot be reset */
	ASSERT_EQ(ctl(&e, &out, "reset", "farm", NULL), 1);
	free(out);
	tl_client_close(&a);
	tl_client_close(&w.c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(ctl_reset_kill9)
{
	struct cenv e;
	struct tl_client a;
	struct tl_fh ra, dir;
	char *out = NULL, p[PATH_MAX * 2], name[32];

	cenv_start(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	ASSERT_EQ(tl_nfs_mkdir(&a, &ra, "big"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "big", &dir, NULL), NFS3_OK);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ASSERT_EQ(tl_nfs_create(&a, &dir, name), NFS3_OK);
	}
	tl_client_close(&a);
	ASSERT_EQ(ctl(&e, &out, "reset", "farm/127.0.0.2", NULL), 0);
	free(out);
	/* kill -9 at once: the background emptying may be anywhere */
	tl_server_kill(&e.s);
	/* as a crash in the middle would leave it: a deep tree in the trash */
	FMT(p, "%s/127.0.0.2/work/ovlnfsd/trash", e.clients);
	mkdir(p, 0700);
	FMT(p, "%s/127.0.0.2/work/ovlnfsd/trash/reset-00000000-7-upper", e.clients);
	ASSERT(mkdir(p, 0755) == 0);
	tl_mkdir_p(p, "x/y/z");
	tl_write(p, "x/y/z/file", "old", 0644);
	tl_write(p, "x/top", "old", 0644);
	ASSERT(trash_entries(&e, "127.0.0.2") >= 1);

	cenv_server(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "big", NULL, NULL), NFS3ERR_NOENT);
	/* the first change sets the work area up again: the scrub takes the trash */
	ASSERT_EQ(tl_nfs_create(&a, &ra, "again"), NFS3_OK);
	ASSERT_EQ(trash_entries(&e, "127.0.0.2"), 0);
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.2", NULL), 0);
	ASSERTF(strcmp(out, "A  again\n") == 0, "diff: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(!strstr(out, "(read-only"), "an instance went read-only: %s", out);
	free(out);
	tl_client_close(&a);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

TEST_IMPL(ctl_refuse_other_uid)
{
	struct cenv e;
	char *out = NULL, p[PATH_MAX * 2];
	struct stat st;

	cenv_start(&e);
	if (geteuid() != 0) {
		tl_server_stop(&e.s);
		tl_tree_free(&e.t);
		RETURN_SKIP("needs root to run ovlnfsctl as uid 65534");
	}
	FMT(p, "%s/ctl.sock", e.t.state);
	ASSERTF(stat(p, &st) == 0, "stat '%s': %s", p, strerror(errno));
	ASSERTF((st.st_mode & 0777) == 0600 && st.st_uid == geteuid(), "ctl.sock mode %o",
		st.st_mode & 0777);
	ASSERT_EQ(ctl_as(&e, 65534, &out, "list", NULL, NULL), 1);
	ASSERTF(strstr(out, "Permission denied"), "as nobody: %s", out);
	free(out);
	/* opened up by mistake: the server's own check still refuses */
	ASSERT(chmod(e.t.root, 0755) == 0 && chmod(e.t.state, 0755) == 0 && chmod(p, 0666) == 0);
	ASSERT_EQ(ctl_as(&e, 65534, &out, "list", NULL, NULL), 1);
	ASSERTF(strstr(out, "permission denied: uid 65534") && !strstr(out, "NAME"),
		"as nobody through an open socket: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	free(out);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * Every upper records its base (workdir/ovlnfsd/base); a lower changed in
 * place (here: an entry added at its root) shows in list and in the log;
 * a reset drops the record and the next upper records the base as it is.
 */
TEST_IMPL(ctl_base_record)
{
	struct cenv e;
	struct tl_client a;
	struct tl_fh ra;
	char *out = NULL, *txt = NULL, p[PATH_MAX * 2];

	cenv_start(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	ASSERT_EQ(tl_nfs_create(&a, &ra, "x"), NFS3_OK);
	FMT(p, "%s/127.0.0.2/work/ovlnfsd/base", e.clients);
	ASSERTF(tl_read_file(p, &txt) > 0 && strstr(txt, e.t.lower[0]) &&
		strncmp(txt, "layer ", 6) == 0, "base record: %s", txt ? txt : "(none)");
	free(txt);
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(json_ok(&e, out) && strstr(out, "\"base_changed\": false"), "%s", out);
	free(out);
	usleep(20000); /* a ctime tick apart */
	tl_write(e.t.lower[0], "added-to-base", "new", 0644);
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(strstr(out, "\"base_changed\": true"), "%s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(strstr(out, "base changed since the upper was made"), "%s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "reset", "farm/127.0.0.2", NULL), 0);
	free(out);
	ASSERT_EQ(tl_nfs_create(&a, &ra, "y"), NFS3_OK);
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(strstr(out, "\"base_changed\": false"), "after reset: %s", out);
	free(out);
	tl_client_close(&a);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

static bool log_has(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	bool found = tl_read_file(s->log, &txt) > 0 && strstr(txt, needle);

	free(txt);
	return found;
}

/* Entries of a directory on disk (0 when it is missing). */
static int dir_entries(const char *p)
{
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void expect_read(struct tl_client *c, const struct tl_fh *fh, const char *want)
{
	char buf[256];
	uint32_t n = 0;
	bool eof;
	int st = tl_nfs_read(c, fh, 0, sizeof(buf), buf, &n, &eof);

	ASSERTF(st == NFS3_OK && n == strlen(want) && memcmp(buf, want, n) == 0,
		"read: status %d, '%.*s', want '%s'", st, (int)n, buf, want);
}

static uint64_t fileid_of(struct tl_client *c, const struct tl_fh *fh)
{
	fattr3 at;
	int st = tl_nfs_getattr(c, fh, &at);

	ASSERTF(st == NFS3_OK, "GETATTR: %s", tl_nfsstat_name(st));
	return at.fileid;
}

/*
 * Reset of a plain export, with its own client writing a base file and a
 * farm client writing its instance: the upper is swapped for an empty one
 * in one step; upper-only handles STALE, base handles read the base.
 */
TEST_IMPL(ctl_reset_plain)
{
	struct cenv e;
	struct tl_client p;
	struct tl_fh pr, fnew, ff, fd, fg, root2;
	struct writer w = { 0 };
	struct self_writer sw = { 0 };
	pthread_t th, th2;
	char *out = NULL, trash[PATH_MAX * 2];
	fattr3 at;
	uint64_t root_id;
	int st;

	cenv_start(&e);
	w.e = &e;
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	mount_as(&e, &w.c, "127.0.0.3", &w.root);
	make_changes(&p, &pr);
	root_id = fileid_of(&p, &pr);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "new", &fnew, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "f", &ff, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "d", &fd, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "sub/deep/g", &fg, NULL), NFS3_OK);

	ASSERT(pthread_create(&th, NULL, writer_main, &w) == 0);
	tl_client_connect_as(&sw.c, e.s.port, "127.0.0.4", NULL);
	sw.f = ff;
	ASSERT(pthread_create(&th2, NULL, self_writer_main, &sw) == 0);
	usleep(50000);
	ASSERT_EQ(ctl(&e, &out, "reset", "plain", NULL), 0);
	ASSERTF(strstr(out, "plain: reset"), "%s", out);
	free(out);
	usleep(50000);
	atomic_store(&w.stop, true);
	atomic_store(&sw.stop, true);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	ASSERTF(w.rounds > 0 && w.errors == 0, "the farm client: %d errors in %d rounds",
		w.errors, w.rounds);
	ASSERTF(sw.rounds > 0 && sw.errors == 0, "the plain client: %d errors in %d rounds "
		"(last %d)", sw.errors, sw.rounds, sw.last_err);
	tl_client_close(&sw.c);
	ASSERT_EQ(ctl(&e, &out, "reset", "plain", NULL), 0);
	free(out);

	ASSERT_EQ(tl_nfs_getattr(&p, &fnew, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_getattr(&p, &fd, &at), NFS3ERR_STALE);
	expect_read(&p, &ff, "base-f");
	expect_read(&p, &fg, "base-g");
	ASSERT_EQ(fileid_of(&p, &pr), root_id);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "new", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "etc/hostname", NULL, NULL), NFS3_OK);
	ASSERTF(dir_entries(e.t.upper) == 0, "the upper '%s' is not empty", e.t.upper);
	FMT(trash, "%s/ovlnfsd/trash", e.t.work);
	for (int i = 0; i < 100 && dir_entries(trash) > 0; i++)
		usleep(100000);
	ASSERT_EQ(dir_entries(trash), 0);
	/* the farm's instance kept its changes */
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.3", NULL), 0);
	ASSERTF(strstr(out, "A  w0\n"), "%s", out);
	free(out);
	/* the plain export writes on, on the fresh upper; a new mount gets the same root */
	ASSERT_EQ(tl_nfs_create(&p, &pr, "after"), NFS3_OK);
	ASSERT_EQ(ctl(&e, &out, "diff", "plain", NULL), 0);
	ASSERTF(strcmp(out, "A  after\n") == 0, "diff after reset: %s", out);
	free(out);
	st = tl_mnt(&p, "/plain", &root2, NULL, NULL, 0);
	ASSERT_EQ(st, MNT3_OK);
	ASSERT(root2.len == pr.len && memcmp(root2.data, pr.data, pr.len) == 0);
	ASSERT_EQ(ctl(&e, &out, "--json", "reset", "plain"), 0);
	ASSERTF(json_ok(&e, out), "reset --json: %s", out);
	free(out);
	tl_client_close(&p);
	tl_client_close(&w.c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

struct seen {
	const char *path;
	struct tl_fh fh;
	uint64_t fileid;
};

/* Handles and fileids of a set of paths; again: all the same (never STALE). */
static void seen_take(struct tl_client *c, const struct tl_fh *root, struct seen *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!v[i].path[0])
			v[i].fh = *root;
		else
			ASSERTF(tl_nfs_walk(c, root, v[i].path, &v[i].fh, NULL) == NFS3_OK, "walk %s",
				v[i].path);
		v[i].fileid = fileid_of(c, &v[i].fh);
	}
}

static void seen_check(struct tl_client *c, const struct tl_fh *root, const struct seen *v,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct tl_fh again;
		fattr3 at;
		int st = tl_nfs_getattr(c, &v[i].fh, &at);

		ASSERTF(st == NFS3_OK, "'%s': old handle: %s", v[i].path, tl_nfsstat_name(st));
		ASSERTF(at.fileid == v[i].fileid, "'%s': fileid %llu, was %llu", v[i].path,
			(unsigned long long)at.fileid, (unsigned long long)v[i].fileid);
		if (!v[i].path[0])
			continue;
		ASSERT_EQ(tl_nfs_walk(c, root, v[i].path, &again, NULL), NFS3_OK);
		ASSERTF(again.len == v[i].fh.len && !memcmp(again.data, v[i].fh.data, again.len),
			"'%s': LOOKUP gives another handle", v[i].path);
	}
}

/* What make_changes + more leave: the paths whose handles must survive a commit. */
static void commit_changes(struct tl_client *c, const struct tl_fh *root)
{
	struct tl_fh d, x;

	make_changes(c, root);
	ASSERT_EQ(tl_nfs_lookup(c, root, "d", &d, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_create(c, &d, "x"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(c, &d, "x", &x, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(c, &x, 0, "x-data", 6), NFS3_OK);
	ASSERT_EQ(tl_nfs_rename(c, root, "new", root, "renamed"), NFS3_OK);
	/* a base directory that gets an upper part (copied up), and one below it */
	ASSERT_EQ(tl_nfs_walk(c, root, "sub/deep", &d, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_create(c, &d, "y"), NFS3_OK);
}

#define SEEN_PATHS                                                                      \
	{ { .path = "" }, { .path = "renamed" }, { .path = "f" }, { .path = "d" },              \
	  { .path = "d/x" }, { .path = "etc" }, { .path = "sub" }, { .path = "sub/deep" },      \
	  { .path = "sub/deep/g" }, { .path = "sub/deep/y" } }

/*
 * Commit of a plain export under load (its own client writing a base
 * file, a farm client writing): the upper becomes layers/L1, every handle
 * and fileid stays, the content stays, an empty upper continues; a second
 * commit stacks; the stack survives a restart; another export names the
 * committed layer as a lower.
 */
TEST_IMPL(ctl_commit_plain)
{
	struct cenv e;
	struct tl_client p, o;
	struct tl_fh pr, orr, fh;
	struct writer w = { 0 };
	struct self_writer sw = { 0 };
	struct seen v[] = SEEN_PATHS;
	pthread_t th, th2;
	char *out = NULL, path[PATH_MAX * 2], *txt = NULL;
	FILE *f;

	cenv_start(&e);
	w.e = &e;
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	mount_as(&e, &w.c, "127.0.0.3", &w.root);
	commit_changes(&p, &pr);
	seen_take(&p, &pr, v, TL_ARRAY_SIZE(v));

	ASSERT(pthread_create(&th, NULL, writer_main, &w) == 0);
	tl_client_connect_as(&sw.c, e.s.port, "127.0.0.4", NULL);
	sw.f = v[2].fh; /* f */
	ASSERT(pthread_create(&th2, NULL, self_writer_main, &sw) == 0);
	usleep(50000);
	ASSERT_EQ(ctl_commit(&e, &out, false, "plain", "L1"), 0);
	ASSERTF(strstr(out, "committed as layer"), "%s", out);
	free(out);
	usleep(50000);
	atomic_store(&w.stop, true);
	atomic_store(&sw.stop, true);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	ASSERTF(w.rounds > 0 && w.errors == 0, "the farm client: %d errors in %d rounds",
		w.errors, w.rounds);
	ASSERTF(sw.rounds > 0 && sw.errors == 0, "the plain client: %d errors in %d rounds "
		"(last %d)", sw.errors, sw.rounds, sw.last_err);
	tl_client_close(&sw.c);

	/* the client sees what it saw: handles, fileids, data, the deletion */
	seen_check(&p, &pr, v, TL_ARRAY_SIZE(v));
	expect_read(&p, &v[1].fh, "new-data");
	expect_read(&p, &v[4].fh, "x-data");
	ASSERT_EQ(tl_nfs_read(&p, &v[2].fh, 0, 4, path, &(uint32_t){ 0 }, &(bool){ 0 }), NFS3_OK);
	ASSERT(memcmp(path, "SELF", 4) == 0);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "etc/hostname", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "new", NULL, NULL), NFS3ERR_NOENT);
	/* on disk: the layer holds the old upper, the upper holds at most f (the writer) */
	FMT(path, "%s/L1/renamed", e.layers);
	ASSERTF(access(path, F_OK) == 0, "'%s' missing", path);
	FMT(path, "%s/L1/d/x", e.layers);
	ASSERTF(access(path, F_OK) == 0, "'%s' missing", path);
	FMT(path, "%s/renamed", e.t.upper);
	ASSERTF(access(path, F_OK) < 0, "'%s' still in the upper", path);
	FMT(path, "%s/ovlnfsd/commit", e.t.work);
	ASSERTF(access(path, F_OK) < 0, "the commit journal is still there");

	/* writes go on over the new stack: a copy-up from L1, same handle */
	ASSERT_EQ(tl_nfs_write(&p, &v[1].fh, 0, "post", 4), NFS3_OK);
	expect_read(&p, &v[1].fh, "postdata");
	ASSERT_EQ(tl_nfs_remove(&p, &v[3].fh, "x"), NFS3_OK);
	seen_check(&p, &pr, v, 4);
	ASSERT_EQ(ctl(&e, &out, "diff", "plain", NULL), 0);
	ASSERTF(strstr(out, "M  renamed\n") && strstr(out, "D  d/x\n") && !strstr(out, "A  "),
		"diff after commit: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(strstr(out, "L1:"), "list: %s", out);
	free(out);

	/* refusals: a name taken, a bad name, a templated line, no such export */
	ASSERT_EQ(ctl_commit(&e, &out, false, "plain", "L1"), 1);
	ASSERTF(strstr(out, "already exists") && strchr(out, '\n') == out + strlen(out) - 1,
		"%s", out);
	free(out);
	ASSERT_EQ(ctl_commit(&e, &out, false, "plain", ".."), 1);
	free(out);
	ASSERT_EQ(ctl_commit(&e, &out, false, "farm", "LX"), 1);
	ASSERTF(strstr(out, "templated line"), "%s", out);
	free(out);
	/* a second commit stacks on top (--json) */
	ASSERT_EQ(ctl_commit(&e, &out, true, "plain", "L2"), 0);
	ASSERTF(json_ok(&e, out) && strstr(out, "\"layer\": \"L2\""), "%s", out);
	free(out);
	seen_check(&p, &pr, v, 4);
	expect_read(&p, &v[1].fh, "postdata");
	FMT(path, "%s/exports/plain/stack", e.t.state);
	ASSERT(tl_read_file(path, &txt) > 0);
	ASSERTF(strstr(txt, "/L2\nlayer ") && strstr(txt, "/L1\n") && strstr(txt, "/L2") < strstr(txt, "/L1"),
		"stack: %s", txt);
	free(txt);

	/* a restart keeps the stack; another export names L1 as a lower */
	tl_client_close(&p);
	tl_client_close(&w.c);
	tl_server_stop(&e.s);
	f = fopen(e.conf, "a");
	ASSERT(f);
	fprintf(f, "[export other]\npath = /other\nlowerdir = %s/L1:%s\n", e.layers,
		e.t.lower[0]);
	ASSERT(fclose(f) == 0);
	cenv_server(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	seen_check(&p, &pr, v, 4);
	expect_read(&p, &v[1].fh, "postdata");
	ASSERT_EQ(tl_nfs_lookup(&p, &v[3].fh, "x", NULL, NULL), NFS3ERR_NOENT);
	tl_client_connect_as(&o, e.s.port, "127.0.0.5", NULL);
	ASSERT_EQ(tl_mnt(&o, "/other", &orr, NULL, NULL, 0), MNT3_OK);
	ASSERT_EQ(tl_nfs_lookup(&o, &orr, "renamed", &fh, NULL), NFS3_OK);
	expect_read(&o, &fh, "new-data");
	ASSERT_EQ(tl_nfs_walk(&o, &orr, "etc/hostname", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_walk(&o, &orr, "d/x", NULL, NULL), NFS3_OK);
	tl_client_close(&o);
	tl_client_close(&p);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * kill -9 and commits: a server killed right after a commit comes back on
 * the new stack; a commit cut short after its first step (the upper
 * renamed to the layer, journal written, no new upper yet: what a crash
 * there leaves) is finished at the next start - no half state.
 */
TEST_IMPL(ctl_commit_kill9)
{
	struct cenv e;
	struct tl_client p;
	struct tl_fh pr;
	struct seen v[] = { { .path = "" }, { .path = "a" }, { .path = "dd" }, { .path = "f" } };
	char *out = NULL, path[PATH_MAX * 2], real[PATH_MAX], *txt = NULL;
	FILE *f;

	cenv_start(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	ASSERT_EQ(tl_nfs_create(&p, &pr, "a"), NFS3_OK);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "a", &v[1].fh, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&p, &v[1].fh, 0, "A-data", 6), NFS3_OK);
	ASSERT_EQ(tl_nfs_mkdir(&p, &pr, "dd"), NFS3_OK);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "f", &v[3].fh, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&p, &v[3].fh, 0, "F", 1), NFS3_OK);
	seen_take(&p, &pr, v, TL_ARRAY_SIZE(v));
	ASSERT_EQ(ctl_commit(&e, &out, false, "plain", "K1"), 0);
	free(out);
	tl_client_close(&p);
	tl_server_kill(&e.s);
	cenv_server(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	seen_check(&p, &pr, v, TL_ARRAY_SIZE(v));
	expect_read(&p, &v[1].fh, "A-data");
	expect_read(&p, &v[3].fh, "Fase-f");
	ASSERT_EQ(tl_nfs_create(&p, &pr, "b"), NFS3_OK);
	tl_client_close(&p);

	/* the crash point: upper renamed to the layer, the journal written, nothing more */
	tl_server_kill(&e.s);
	ASSERT(realpath(e.layers, real));
	FMT(path, "%s/K2", real);
	ASSERT(rename(e.t.upper, path) == 0);
	FMT(path, "%s/ovlnfsd/commit", e.t.work);
	f = fopen(path, "w");
	ASSERT(f);
	fprintf(f, "layer %s/K2\nfresh %s/ovlnfsd/trash/reset-00000000-9-fresh\n", real, e.t.work);
	ASSERT(fclose(f) == 0);
	cenv_server(&e);
	ASSERTF(access(path, F_OK) < 0, "the journal is still there after the restart");
	ASSERTF(access(e.t.upper, F_OK) == 0 && dir_entries(e.t.upper) == 0,
		"no empty upper at '%s' after the restart", e.t.upper);
	FMT(path, "%s/exports/plain/stack", e.t.state);
	ASSERT(tl_read_file(path, &txt) > 0);
	ASSERTF(strncmp(txt, "layer ", 6) == 0 && strstr(txt, "/K2\n") && strstr(txt, "/K1\n"),
		"stack: %s", txt);
	free(txt);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	seen_check(&p, &pr, v, TL_ARRAY_SIZE(v));
	expect_read(&p, &v[1].fh, "A-data");
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "b", NULL, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_create(&p, &pr, "c"), NFS3_OK);
	ASSERT_EQ(ctl(&e, &out, "diff", "plain", NULL), 0);
	ASSERTF(strcmp(out, "A  c\n") == 0, "diff: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(!strstr(out, "(read-only"), "read-only after the recovery: %s", out);
	free(out);
	tl_client_close(&p);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Commit of a per-client instance: same view and handles, its own stack, kept across a restart. */
TEST_IMPL(ctl_commit_instance)
{
	struct cenv e;
	struct tl_client a, b;
	struct tl_fh ra, rb;
	struct seen v[] = SEEN_PATHS;
	char *out = NULL, path[PATH_MAX * 2];

	cenv_start(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	mount_as(&e, &b, "127.0.0.3", &rb);
	commit_changes(&a, &ra);
	seen_take(&a, &ra, v, TL_ARRAY_SIZE(v));
	ASSERT_EQ(ctl_commit(&e, &out, false, "farm/127.0.0.2", "I1"), 0);
	free(out);
	seen_check(&a, &ra, v, TL_ARRAY_SIZE(v));
	expect_read(&a, &v[1].fh, "new-data");
	expect_read(&a, &v[2].fh, "CHANGED");
	ASSERT_EQ(tl_nfs_walk(&a, &ra, "etc/hostname", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_write(&a, &v[1].fh, 0, "post", 4), NFS3_OK);
	expect_read(&a, &v[1].fh, "postdata");
	ASSERT_EQ(ctl(&e, &out, "diff", "farm/127.0.0.2", NULL), 0);
	ASSERTF(strcmp(out, "M  renamed\n") == 0, "diff: %s", out);
	free(out);
	/* the other instance is not on that stack */
	ASSERT_EQ(tl_nfs_lookup(&b, &rb, "renamed", NULL, NULL), NFS3ERR_NOENT);
	FMT(path, "%s/exports/farm/stack-127.0.0.2", e.t.state);
	ASSERTF(access(path, F_OK) == 0, "'%s' missing", path);
	/* a reset keeps the committed layer: it drops only what came after */
	ASSERT_EQ(ctl(&e, &out, "reset", "farm/127.0.0.2", NULL), 0);
	free(out);
	expect_read(&a, &v[1].fh, "new-data");
	seen_check(&a, &ra, v, TL_ARRAY_SIZE(v));
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	cenv_server(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	seen_check(&a, &ra, v, TL_ARRAY_SIZE(v));
	expect_read(&a, &v[4].fh, "x-data");
	tl_client_close(&a);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* Read a file on disk (the kernel overlay mount of ctl_commit_index); NULL when it fails. */
static char *disk_text(const char *dir, const char *rel)
{
	char p[PATH_MAX * 2], *txt = NULL;

	FMT(p, "%s/%s", dir, rel);
	return tl_read_file(p, &txt) >= 0 ? txt : NULL;
}

/*
 * What only the index knew before a commit: a lower file copied up and
 * then renamed (its handle names the lower origin; the index found its
 * copy) keeps decoding after the commit and after a restart; a hard-linked
 * lower file copied up through one name shows the new content under every
 * name after the commit - through ovlnfsd and through a kernel overlay
 * mount of the new stack, which never reads an index in a lower.
 */
TEST_IMPL(ctl_commit_index)
{
	struct cenv e;
	struct tl_client p, a;
	struct tl_fh pr, fm, fh1, fh2, fh3, nd, again, ra, fa, fa1, fa2;
	char *out = NULL, path[PATH_MAX * 2], p2[PATH_MAX * 2], mnt[PATH_MAX], opts[PATH_MAX * 4];
	struct stat s1, s2;
	uint64_t mid, hid;

	cenv_start(&e);
	tl_write(e.t.lower[0], "mv1", "mv-base", 0666);
	tl_write(e.t.lower[0], "h1", "hl-base", 0666);
	tl_mkdir(e.t.lower[0], "hd", 0777);
	FMT(path, "%s/h1", e.t.lower[0]);
	FMT(p2, "%s/h2", e.t.lower[0]);
	ASSERT(link(path, p2) == 0);
	FMT(p2, "%s/hd/h3", e.t.lower[0]);
	ASSERT(link(path, p2) == 0);
	usleep(1100000); /* past the attribute time of the root's listing */
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	/* copied up, then renamed into a new directory */
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "mv1", &fm, NULL), NFS3_OK);
	mid = fileid_of(&p, &fm);
	ASSERT_EQ(tl_nfs_write(&p, &fm, 0, "NEW", 3), NFS3_OK);
	ASSERT_EQ(tl_nfs_mkdir(&p, &pr, "nd"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "nd", &nd, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_rename(&p, &pr, "mv1", &nd, "mv2"), NFS3_OK);
	/* a hard link copied up through one of its three names */
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "h1", &fh1, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&p, &fh1, 0, "HL-NEW!", 7), NFS3_OK);
	hid = fileid_of(&p, &fh1);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "h2", &fh2, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "hd/h3", &fh3, NULL), NFS3_OK);
	expect_read(&p, &fh2, "HL-NEW!");
	expect_read(&p, &fh3, "HL-NEW!");
	expect_read(&p, &fm, "NEWbase");

	ASSERT_EQ(ctl_commit(&e, &out, false, "plain", "C1"), 0);
	free(out);
	/* through ovlnfsd: the old handles (caches flushed by the commit) and fresh lookups */
	expect_read(&p, &fm, "NEWbase");
	ASSERT_EQ(fileid_of(&p, &fm), mid);
	expect_read(&p, &fh1, "HL-NEW!");
	expect_read(&p, &fh2, "HL-NEW!");
	expect_read(&p, &fh3, "HL-NEW!");
	ASSERT_EQ(fileid_of(&p, &fh2), hid);
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "nd/mv2", &again, NULL), NFS3_OK);
	ASSERT(again.len == fm.len && memcmp(again.data, fm.data, fm.len) == 0);
	expect_read(&p, &again, "NEWbase");
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "hd/h3", &again, NULL), NFS3_OK);
	expect_read(&p, &again, "HL-NEW!");
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "mv1", NULL, NULL), NFS3ERR_NOENT);
	/* on disk: the layer alone holds the new content under every name */
	FMT(path, "%s/C1/h1", e.layers);
	FMT(p2, "%s/C1/h2", e.layers);
	ASSERTF(stat(path, &s1) == 0 && stat(p2, &s2) == 0 && s1.st_ino == s2.st_ino,
		"'%s' and '%s' are not one inode in the layer", path, p2);
	FMT(p2, "%s/C1/hd/h3", e.layers);
	ASSERTF(stat(p2, &s2) == 0 && s1.st_ino == s2.st_ino, "'%s' is not linked", p2);
	FMT(path, "%s/exports/plain/stack", e.t.state);
	ASSERT(tl_read_file(path, &out) > 0);
	ASSERTF(strstr(out, "\nmoved "), "no moved line in the stack: %s", out);
	free(out);

	/* a kernel overlay mount of the new stack as the reference */
	tl_join(mnt, sizeof(mnt), e.t.root, "kmnt");
	ASSERT(mkdir(mnt, 0755) == 0);
	FMT(opts, "mount -t overlay overlay -o 'lowerdir=%s/C1:%s' '%s' 2>&1", e.layers,
	    e.t.lower[0], mnt);
	if (system(opts) != 0) {
		printf("# kernel overlay reference skipped: '%s' failed (no overlayfs or "
		       "no CAP_SYS_ADMIN)\n", opts);
	} else {
		const char *names[] = { "h1", "h2", "hd/h3" };

		for (size_t i = 0; i < TL_ARRAY_SIZE(names); i++) {
			char *t = disk_text(mnt, names[i]);

			ASSERTF(t && strcmp(t, "HL-NEW!") == 0, "kernel overlay: %s is '%s'",
				names[i], t ? t : "(unreadable)");
			free(t);
		}
		out = disk_text(mnt, "nd/mv2");
		ASSERTF(out && strcmp(out, "NEWbase") == 0, "kernel overlay: nd/mv2 is '%s'",
			out ? out : "(unreadable)");
		free(out);
		out = disk_text(mnt, "mv1");
		ASSERTF(!out, "kernel overlay: mv1 still shows");
		FMT(opts, "umount '%s'", mnt);
		ASSERT(system(opts) == 0);
	}

	/* the same through a per-client instance */
	mount_as(&e, &a, "127.0.0.2", &ra);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "mv1", &fa, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&a, &fa, 0, "INS", 3), NFS3_OK);
	ASSERT_EQ(tl_nfs_rename(&a, &ra, "mv1", &ra, "mv9"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "h2", &fa2, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&a, &fa2, 0, "INST-H!", 7), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&a, &ra, "h1", &fa1, NULL), NFS3_OK);
	ASSERT_EQ(ctl_commit(&e, &out, false, "farm/127.0.0.2", "I9"), 0);
	free(out);
	expect_read(&a, &fa, "INSbase");
	expect_read(&a, &fa1, "INST-H!");
	ASSERT_EQ(tl_nfs_walk(&a, &ra, "hd/h3", &again, NULL), NFS3_OK);
	expect_read(&a, &again, "INST-H!");
	FMT(path, "%s/I9/h1", e.layers);
	FMT(p2, "%s/I9/h2", e.layers);
	ASSERTF(stat(path, &s1) == 0 && stat(p2, &s2) == 0 && s1.st_ino == s2.st_ino,
		"'%s' and '%s' are not one inode in the layer", path, p2);
	tl_client_close(&a);

	/* after a restart (no cache, no index of that time): the same */
	tl_client_close(&p);
	tl_server_stop(&e.s);
	cenv_server(&e);
	mount_as(&e, &a, "127.0.0.2", &ra);
	expect_read(&a, &fa, "INSbase");
	expect_read(&a, &fa1, "INST-H!");
	tl_client_close(&a);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	expect_read(&p, &fm, "NEWbase");
	ASSERT_EQ(fileid_of(&p, &fm), mid);
	expect_read(&p, &fh2, "HL-NEW!");
	expect_read(&p, &fh3, "HL-NEW!");
	/* and it takes writes again (a copy-up from the committed layer) */
	ASSERT_EQ(tl_nfs_write(&p, &fm, 0, "AGAIN", 5), NFS3_OK);
	expect_read(&p, &fm, "AGAINse");
	ASSERT_EQ(tl_nfs_walk(&p, &pr, "nd/mv2", &again, NULL), NFS3_OK);
	expect_read(&p, &again, "AGAINse");
	tl_client_close(&p);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * kill -9 at a random point of a real commit, ten times: the server
 * sleeps before each step of a live commit (OVLNFSD_TEST_COMMIT_DELAY_MS,
 * test-only) and is killed 0..KR_SPAN ms after the request. After the
 * restart the commit happened entirely (layer present, upper empty, all
 * content there, handles decode) or not at all (upper intact); the work
 * area's temp dir is empty, no journal is left, the trash empties.
 */
#define KR_ROUNDS 10
#define KR_DELAY_MS 25
#define KR_SPAN 150

TEST_IMPL(ctl_commit_kill_random)
{
	struct cenv e;
	struct tl_client p;
	struct tl_fh pr, fh[KR_ROUNDS], ff;
	char *out = NULL, path[PATH_MAX * 2], name[32], data[32], real[PATH_MAX], opts[16];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int done = 0, undone = 0, recovered = 0;

	srand(seed);
	printf("# seed %u\n", seed);
	snprintf(opts, sizeof(opts), "%d", KR_DELAY_MS);
	setenv("OVLNFSD_TEST_COMMIT_DELAY_MS", opts, 1);
	cenv_start(&e); /* and every restart below: the knob stays set until the end */
	ASSERT(realpath(e.layers, real));
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "f", &ff, NULL), NFS3_OK);
	for (int i = 0; i < KR_ROUNDS; i++) {
		int delay = rand() % (KR_SPAN + 1), st;
		struct stat lst;
		bool layer;
		pid_t pid;

		/* something new in the upper, and a copy-up */
		FMT(name, "r%d", i);
		FMT(data, "R%d", i);
		ASSERT_EQ(tl_nfs_create(&p, &pr, name), NFS3_OK);
		ASSERT_EQ(tl_nfs_lookup(&p, &pr, name, &fh[i], NULL), NFS3_OK);
		ASSERT_EQ(tl_nfs_write(&p, &fh[i], 0, data, (uint32_t)strlen(data)), NFS3_OK);
		ASSERT_EQ(tl_nfs_write(&p, &ff, (uint64_t)i, "*", 1), NFS3_OK);
		tl_client_close(&p);

		FMT(name, "KR%d", i);
		pid = fork();
		ASSERT(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0) {
				dup2(null, 1);
				dup2(null, 2);
			}
			execl(getenv("ONFS_CTL"), "ovlnfsctl", "--state-dir", e.t.state, "commit",
			      "plain", name, (char *)NULL);
			_exit(127);
		}
		usleep((useconds_t)delay * 1000);
		tl_server_kill(&e.s);
		ASSERT(waitpid(pid, &st, 0) == pid);
		cenv_server(&e);
		if (log_has(&e.s, "finishing a commit cut short"))
			recovered++;

		/* all or nothing */
		FMT(path, "%s/%s", real, name);
		layer = lstat(path, &lst) == 0;
		FMT(path, "%s/r%d", e.t.upper, i);
		if (layer) {
			done++;
			ASSERTF(dir_entries(e.t.upper) == 0, "round %d (kill at %d ms): layer %s "
				"made, but the upper is not empty", i, delay, name);
			FMT(path, "%s/exports/plain/stack", e.t.state);
			ASSERT(tl_read_file(path, &out) > 0);
			FMT(path, "layer %s/%s\n", real, name);
			ASSERTF(strncmp(out, path, strlen(path)) == 0, "round %d (kill at %d ms): "
				"layer %s is not on top of the stack: %s", i, delay, name, out);
			free(out);
		} else {
			undone++;
			ASSERTF(access(path, F_OK) == 0, "round %d (kill at %d ms): no layer %s, "
				"and '%s' is gone from the upper", i, delay, name, path);
		}
		FMT(path, "%s/ovlnfsd/commit", e.t.work);
		ASSERTF(access(path, F_OK) < 0, "round %d: the journal is left", i);
		FMT(path, "%s/work", e.t.work);
		ASSERTF(dir_entries(path) == 0, "round %d: '%s' is not empty", i, path);
		/* what the client sees: every file of every round, handles decode */
		tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
		for (int k = 0; k <= i; k++) {
			FMT(data, "R%d", k);
			expect_read(&p, &fh[k], data);
			FMT(name, "r%d", k);
			ASSERT_EQ(tl_nfs_lookup(&p, &pr, name, NULL, NULL), NFS3_OK);
		}
		{
			char want[32];

			FMT(want, "%.*s%s", i + 1, "**********", &"base-f"[i + 1 < 6 ? i + 1 : 6]);
			expect_read(&p, &ff, want);
		}
		ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
		ASSERTF(!strstr(out, "(read-only"), "round %d: read-only: %s", i, out);
		free(out);
	}
	printf("# %d commits completed (%d of them by the restart), %d cut off before their "
	       "journal\n", done, recovered, undone);
	FMT(path, "%s/ovlnfsd/trash", e.t.work);
	for (int i = 0; i < 100 && dir_entries(path) > 0; i++)
		usleep(100000);
	ASSERTF(dir_entries(path) == 0, "the trash '%s' is not emptied", path);
	tl_client_close(&p);
	tl_server_stop(&e.s);
	unsetenv("OVLNFSD_TEST_COMMIT_DELAY_MS");
	tl_tree_free(&e.t);
	return 0;
}

/* --- a base update under ten mounted clients --- */

#define BU_FILES 4
#define BU_SIZE (48 * 1024)
#define BU_CHUNK 8192

/* base directory of version v: files fileN, every byte '0' + v */
static void bu_base(const char *dir, int v)
{
	char name[32], *data = malloc(BU_SIZE + 1);

	ASSERT(data);
	memset(data, '0' + v, BU_SIZE);
	data[BU_SIZE] = '\0';
	ASSERT(mkdir(dir, 0755) == 0);
	for (int i = 0; i < BU_FILES; i++) {
		snprintf(name, sizeof(name), "file%d", i);
		tl_write(dir, name, data, 0644);
	}
	free(data);
}

struct bu_client {
	struct tl_client c;
	struct tl_fh root;
	const char *path, *src;
	int port;
	bool writer;
	atomic_bool *stop;
	int id;
	/* results */
	int files_read, mixed, stale, other_err, last_err;
	int seen[3]; /* whole files read per version (1, 2; 0: the writer's copy-up) */
};

/* Read one file whole through one handle: its version, or -1 mixed, -2 STALE, -3 error. */
static int bu_read_file(struct bu_client *b, const char *name)
{
	struct tl_fh fh;
	char buf[BU_CHUNK];
	int ver = 0, st;

	st = tl_nfs_lookup(&b->c, &b->root, name, &fh, NULL);
	if (st != NFS3_OK)
		return st == NFS3ERR_STALE ? -2 : (b->last_err = st, -3);
	for (uint64_t off = 0; off < BU_SIZE; off += BU_CHUNK) {
		uint32_t n = 0;
		bool eof;

		st = tl_nfs_read(&b->c, &fh, off, BU_CHUNK, buf, &n, &eof);
		if (st == NFS3ERR_STALE)
			return -2;
		if (st != NFS3_OK || n == 0)
			return b->last_err = st, -3;
		for (uint32_t i = 0; i < n; i++) {
			int v = buf[i] == 'W' ? 3 : buf[i] - '0';

			if (ver == 0)
				ver = v;
			if (v != ver)
				return -1;
		}
	}
	return ver;
}

static void *bu_main(void *arg)
{
	struct bu_client *b = arg;
	double t0 = tl_now();
	char name[32], own[32], data[64];

	snprintf(own, sizeof(own), "own%d", b->id);
	/* bounded: 400 rounds or 30 s */
	for (int i = 0; i < 400 && !atomic_load(b->stop) && tl_now() - t0 < 30; i++) {
		int v;

		snprintf(name, sizeof(name), "file%d", i % BU_FILES);
		v = bu_read_file(b, name);
		if (v == -1)
			b->mixed++;
		else if (v == -2)
			b->stale++;
		else if (v == -3)
			b->other_err++;
		else {
			b->files_read++;
			b->seen[v == 3 ? 0 : v]++;
		}
		if (b->writer) {
			struct tl_fh fh;

			snprintf(data, sizeof(data), "client %d round %d", b->id, i);
			if (tl_nfs_create(&b->c, &b->root, own) != NFS3_OK ||
			    tl_nfs_lookup(&b->c, &b->root, own, &fh, NULL) != NFS3_OK ||
			    tl_nfs_write(&b->c, &fh, 0, data, (uint32_t)strlen(data)) != NFS3_OK)
				b->other_err++;
		}
	}
	return NULL;
}

static unsigned json_version(const char *out, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"name\": \"%s\"", name);
	p = strstr(out, key);
	ASSERTF(p, "no %s in %s", name, out);
	p = strstr(p, "\"base_version\": ");
	ASSERT(p);
	return (unsigned)atoi(p + 16);
}

/*
 * lowerdir changed + SIGHUP while ten libnfs clients read (and two write):
 * /ro (no upper) and /empty (an upper nobody wrote) move to the new base at
 * once; /rw (its upper written) stays on the old base, pinned, until
 * rebase --force. Every file a client reads whole through one handle holds
 * one version; a handle of the old base answers STALE, never EIO.
 */
TEST_IMPL(ctl_base_update)
{
	struct cenv e;
	char v1[PATH_MAX * 2], v2[PATH_MAX * 2], up[3][PATH_MAX * 2], wk[3][PATH_MAX * 2];
	struct bu_client cl[10];
	pthread_t th[10];
	atomic_bool stop = false;
	char *out = NULL;
	FILE *f;
	int seen_v2_ro = 0, seen_v2_rw = 0;

	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	FMT(v1, "%s/base-v1", e.t.root);
	FMT(v2, "%s/base-v2", e.t.root);
	bu_base(v1, 1);
	usleep(30000); /* the new base's files have other mtimes (rebase compares them) */
	bu_base(v2, 2);
	for (int i = 0; i < 3; i++) {
		FMT(up[i], "%s/up%d", e.t.root, i);
		FMT(wk[i], "%s/wk%d", e.t.root, i);
		ASSERT(mkdir(up[i], 0755) == 0 && mkdir(wk[i], 0755) == 0);
	}
	tl_join(e.conf, sizeof(e.conf), e.t.root, "ovlnfsd.conf");
	for (int pass = 1; pass <= 2; pass++) {
		const char *b = pass == 1 ? v1 : v2;

		f = fopen(e.conf, "w");
		ASSERT(f);
		fprintf(f, "[export ro]\npath = /ro\nlowerdir = %s\n"
			"[export empty]\npath = /empty\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
			"squash = none\n"
			"[export rw]\npath = /rw\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
			"squash = none\n", b, b, up[1], wk[1], b, up[2], wk[2]);
		ASSERT(fclose(f) == 0);
		if (pass == 2)
			break;
		cenv_server(&e);
		for (int i = 0; i < 10; i++) {
			char src[32];

			memset(&cl[i], 0, sizeof(cl[i]));
			cl[i].id = i;
			cl[i].stop = &stop;
			cl[i].path = i < 6 ? "/ro" : i < 8 ? "/empty" : "/rw";
			cl[i].writer = i >= 8;
			snprintf(src, sizeof(src), "127.0.0.%d", 10 + i);
			tl_client_connect_as(&cl[i].c, e.s.port, src, NULL);
			ASSERT_EQ(tl_mnt(&cl[i].c, cl[i].path, &cl[i].root, NULL, NULL, 0), MNT3_OK);
		}
		/* one base file of /rw is changed through NFS: what rebase reports */
		{
			struct tl_fh fh;
			char w[BU_SIZE];

			memset(w, 'W', sizeof(w));
			ASSERT_EQ(tl_nfs_lookup(&cl[8].c, &cl[8].root, "file0", &fh, NULL), NFS3_OK);
			ASSERT_EQ(tl_nfs_write(&cl[8].c, &fh, 0, w, sizeof(w)), NFS3_OK);
		}
		for (int i = 0; i < 10; i++)
			ASSERT(pthread_create(&th[i], NULL, bu_main, &cl[i]) == 0);
		usleep(300000);
	}
	/* the base update: the config now names v2 everywhere (moved on workers, one by one) */
	ASSERT(kill(e.s.pid, SIGHUP) == 0);
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
		if (json_version(out, "ro") == 2 && json_version(out, "empty") == 2 &&
		    strstr(out, "\"base_pinned\": true"))
			break;
		free(out);
		out = NULL;
		usleep(50000);
	}
	ASSERTF(out && json_version(out, "ro") == 2 && json_version(out, "empty") == 2 &&
		json_version(out, "rw") == 1 && strstr(out, "\"base_pinned\": true"),
		"after SIGHUP: %s", out ? out : "");
	free(out);
	usleep(500000);
	atomic_store(&stop, true);
	for (int i = 0; i < 10; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 10; i++) {
		struct bu_client *b = &cl[i];

		ASSERTF(b->mixed == 0, "client %d (%s): %d files with two versions", i, b->path,
			b->mixed);
		ASSERTF(b->other_err == 0, "client %d (%s): %d errors (last %s)", i, b->path,
			b->other_err, tl_nfsstat_name(b->last_err));
		ASSERTF(b->files_read > 0, "client %d read nothing", i);
		if (i < 8)
			seen_v2_ro += b->seen[2];
		else
			seen_v2_rw += b->seen[2];
		printf("# client %d %s: %d files (v1 %d, v2 %d, own copy %d), %d STALE\n", i,
		       b->path, b->files_read, b->seen[1], b->seen[2], b->seen[0], b->stale);
	}
	ASSERTF(seen_v2_ro > 0, "no reader of /ro or /empty saw the new base");
	ASSERTF(seen_v2_rw == 0, "a client of the pinned /rw read the new base");
	/* rebase: the report, then --force */
	ASSERT_EQ(ctl(&e, &out, "rebase", "rw", NULL), 0);
	ASSERTF(strstr(out, "S  file0\n") && !strstr(out, "own8") && strstr(out, "not applied"),
		"rebase: %s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "--json", "rebase", "rw"), 0);
	ASSERTF(json_ok(&e, out) && strstr(out, "\"applied\": false"), "%s", out);
	free(out);
	ASSERT_EQ(ctl(&e, &out, "rebase", "ro", NULL), 1);
	ASSERTF(strstr(out, "newest base"), "%s", out);
	free(out);
	{
		const char *bin = getenv("ONFS_CTL");
		char cmd[PATH_MAX * 3];

		FMT(cmd, "'%s' --state-dir '%s' rebase rw --force >/dev/null", bin, e.t.state);
		ASSERT(system(cmd) == 0);
	}
	ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
	ASSERTF(json_version(out, "rw") == 2 && !strstr(out, "\"base_pinned\": true"), "%s", out);
	free(out);
	/* the writer's copy stays; the other files are v2 now */
	cl[9].seen[2] = 0;
	ASSERT_EQ(bu_read_file(&cl[9], "file1"), 2);
	ASSERT_EQ(bu_read_file(&cl[9], "file0"), 3);
	for (int i = 0; i < 10; i++)
		tl_client_close(&cl[i].c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * kill -9 around a plain reset: right after one (the trash may be half
 * emptied), and at the crash point between its two renames (the upper
 * exchanged for an empty one, index/ not yet moved: the index names
 * another upper), then restart: the old upper's objects are gone, base
 * objects read the base, the stray index is moved away, writes work.
 */
TEST_IMPL(ctl_reset_plain_kill9)
{
	struct cenv e;
	struct tl_client p;
	struct tl_fh pr, ff, fnew, dir;
	char *out = NULL, path[PATH_MAX * 2], name[32];
	fattr3 at;

	cenv_start(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&p, "/plain", &pr, NULL, NULL, 0), MNT3_OK);
	ASSERT_EQ(tl_nfs_mkdir(&p, &pr, "big"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "big", &dir, NULL), NFS3_OK);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ASSERT_EQ(tl_nfs_create(&p, &dir, name), NFS3_OK);
	}
	ASSERT_EQ(ctl(&e, &out, "reset", "plain", NULL), 0);
	free(out);
	tl_server_kill(&e.s);
	tl_client_close(&p);
	cenv_server(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "big", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_EQ(tl_nfs_getattr(&p, &dir, &at), NFS3ERR_STALE);
	FMT(path, "%s/ovlnfsd/trash", e.t.work);
	ASSERT_EQ(dir_entries(path), 0);

	/* changes with index entries (a copy-up), then the crash point by hand */
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "f", &ff, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_write(&p, &ff, 0, "CHANGED", 7), NFS3_OK);
	ASSERT_EQ(tl_nfs_create(&p, &pr, "new"), NFS3_OK);
	ASSERT_EQ(tl_nfs_lookup(&p, &pr, "new", &fnew, NULL), NFS3_OK);
	FMT(path, "%s/index", e.t.work);
	ASSERTF(dir_entries(path) > 0, "no index entry after a copy-up");
	tl_server_kill(&e.s);
	FMT(path, "%s/ovlnfsd/trash", e.t.work);
	mkdir(path, 0700);
	FMT(path, "%s/ovlnfsd/trash/reset-00000000-3-upper", e.t.work);
	ASSERT(rename(e.t.upper, path) == 0);
	ASSERT(mkdir(e.t.upper, 0755) == 0);
	tl_client_close(&p);
	cenv_server(&e);
	tl_client_connect_as(&p, e.s.port, "127.0.0.4", NULL);
	ASSERTF(log_has(&e.s, "belonged to another upper"), "the stray index was not noticed");
	FMT(path, "%s/index", e.t.work);
	ASSERT_EQ(dir_entries(path), 0);
	expect_read(&p, &ff, "base-f");
	ASSERT_EQ(tl_nfs_getattr(&p, &fnew, &at), NFS3ERR_STALE);
	ASSERT_EQ(tl_nfs_write(&p, &ff, 0, "AGAIN", 5), NFS3_OK);
	expect_read(&p, &ff, "AGAINf");
	ASSERT_EQ(ctl(&e, &out, "diff", "plain", NULL), 0);
	ASSERTF(strcmp(out, "M  f\n") == 0, "diff: %s", out);
	free(out);
	tl_client_close(&p);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * A templated line's lowerdir changed + SIGHUP: the instance whose client
 * only read moves at once (its root handle kept, also across a restart),
 * the one whose client wrote stays on the old base until rebase --force;
 * an instance made after the reload starts on the new base.
 */
TEST_IMPL(ctl_base_update_instances)
{
	struct cenv e;
	char v1[PATH_MAX * 2], v2[PATH_MAX * 2], clients[PATH_MAX * 2];
	struct bu_client a = { 0 }, b = { 0 }, c = { 0 };
	struct tl_fh old1, fh;
	char *out = NULL;
	fattr3 at;
	FILE *f;

	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	FMT(v1, "%s/base-v1", e.t.root);
	FMT(v2, "%s/base-v2", e.t.root);
	FMT(clients, "%s/clients", e.t.root);
	bu_base(v1, 1);
	usleep(30000);
	bu_base(v2, 2);
	ASSERT(mkdir(clients, 0755) == 0);
	tl_join(e.conf, sizeof(e.conf), e.t.root, "ovlnfsd.conf");
	for (int pass = 1; pass <= 2; pass++) {
		f = fopen(e.conf, "w");
		ASSERT(f);
		fprintf(f, "[export farm]\npath = /\nlowerdir = %s\nupperdir = %s/{client}/upper\n"
			"workdir = %s/{client}/work\nsquash = none\n", pass == 1 ? v1 : v2,
			clients, clients);
		ASSERT(fclose(f) == 0);
		if (pass == 2)
			break;
		cenv_server(&e);
		tl_client_connect_as(&a.c, e.s.port, "127.0.0.2", NULL);
		ASSERT_EQ(tl_mnt(&a.c, "/", &a.root, NULL, NULL, 0), MNT3_OK);
		tl_client_connect_as(&b.c, e.s.port, "127.0.0.3", NULL);
		ASSERT_EQ(tl_mnt(&b.c, "/", &b.root, NULL, NULL, 0), MNT3_OK);
		ASSERT_EQ(bu_read_file(&a, "file1"), 1);
		ASSERT_EQ(tl_nfs_lookup(&a.c, &a.root, "file1", &old1, NULL), NFS3_OK);
		ASSERT_EQ(tl_nfs_create(&b.c, &b.root, "mine"), NFS3_OK);
		ASSERT_EQ(bu_read_file(&b, "file1"), 1);
	}
	ASSERT(kill(e.s.pid, SIGHUP) == 0);
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(ctl(&e, &out, "--json", "list", NULL), 0);
		if (json_version(out, "farm") == 2 && json_version(out, "farm/127.0.0.2") == 2 &&
		    strstr(out, "\"base_pinned\": true"))
			break; /* the line and its instances moved (on a worker) */
		free(out);
		out = NULL;
		usleep(50000);
	}
	ASSERTF(out && json_version(out, "farm") == 2 && json_version(out, "farm/127.0.0.2") == 2 &&
		json_version(out, "farm/127.0.0.3") == 1, "after SIGHUP: %s", out ? out : "");
	free(out);
	/* the reader: new base through its old root handle; the old file handle STALE */
	ASSERT_EQ(bu_read_file(&a, "file1"), 2);
	ASSERT_EQ(tl_nfs_getattr(&a.c, &old1, &at), NFS3ERR_STALE);
	/* the writer: pinned */
	ASSERT_EQ(bu_read_file(&b, "file1"), 1);
	ASSERT_EQ(ctl(&e, &out, "list", NULL, NULL), 0);
	ASSERTF(strstr(out, "pinned to base v1"), "%s", out);
	free(out);
	/* a new instance: the new base */
	tl_client_connect_as(&c.c, e.s.port, "127.0.0.4", NULL);
	ASSERT_EQ(tl_mnt(&c.c, "/", &c.root, NULL, NULL, 0), MNT3_OK);
	ASSERT_EQ(bu_read_file(&c, "file2"), 2);
	/* rebase of the writer: report, then --force */
	ASSERT_EQ(ctl(&e, &out, "rebase", "farm/127.0.0.3", NULL), 0);
	ASSERTF(strstr(out, "0 upper entries") && strstr(out, "not applied"), "%s", out);
	free(out);
	{
		char cmd[PATH_MAX * 3];

		FMT(cmd, "'%s' --state-dir '%s' rebase farm/127.0.0.3 --force >/dev/null",
		    getenv("ONFS_CTL"), e.t.state);
		ASSERT(system(cmd) == 0);
	}
	ASSERT_EQ(bu_read_file(&b, "file1"), 2);
	ASSERT_EQ(tl_nfs_lookup(&b.c, &b.root, "mine", &fh, NULL), NFS3_OK);
	/* a restart on v2: the moved instances keep their root handles */
	tl_client_close(&a.c);
	tl_client_close(&b.c);
	tl_client_close(&c.c);
	tl_server_stop(&e.s);
	cenv_server(&e);
	tl_client_connect_as(&a.c, e.s.port, "127.0.0.2", NULL);
	ASSERT_EQ(bu_read_file(&a, "file3"), 2);
	tl_client_connect_as(&b.c, e.s.port, "127.0.0.3", NULL);
	ASSERT_EQ(tl_nfs_lookup(&b.c, &b.root, "mine", NULL, NULL), NFS3_OK);
	tl_client_close(&a.c);
	tl_client_close(&b.c);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/* How many times needle is in the server's log. */
static int log_count(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(s->log, &txt) > 0)
		for (const char *p = txt; (p = strstr(p, needle)); p += strlen(needle))
			n++;
	free(txt);
	return n;
}

/* A new image built next to the lower (its f holding content), renamed over its path. */
static void replace_in_place(const char *lower, const char *content, const char *away_suffix)
{
	char fresh[PATH_MAX + 8], away[PATH_MAX + 16];

	FMT(fresh, "%s.new", lower);
	FMT(away, "%s%s", lower, away_suffix);
	ASSERT(mkdir(fresh, 0755) == 0);
	tl_write(fresh, "f", content, 0644);
	ASSERT(rename(lower, away) == 0);
	ASSERT(rename(fresh, lower) == 0);
}

/*
 * A lower directory replaced in place (a new tree renamed over the old
 * path) under a mounted client: the periodic probe (base_check_interval = 1)
 * logs it once, names the export and the layer, and moves the export to
 * the layers as they are now; the old file handle is STALE or reads the
 * old file whole, a fresh LOOKUP reads the new one.
 */
TEST_IMPL(ctl_base_replaced)
{
	struct cenv e;
	struct tl_client a;
	struct tl_fh root, fh_old, fh_new;
	char needle[PATH_MAX + 96];
	char buf[64];
	uint32_t n = 0;
	bool eof;
	int st, i;

	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	tl_write(e.t.lower[0], "f", "old-f", 0644);
	tl_join(e.conf, sizeof(e.conf), e.t.root, "ovlnfsd.conf");
	{
		FILE *f = fopen(e.conf, "w");

		ASSERT(f);
		fprintf(f, "[server]\nbase_check_interval = 1\n"
			"[export plain]\npath = /\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
			"squash = none\n", e.t.lower[0], e.t.upper, e.t.work);
		ASSERT(fclose(f) == 0);
	}
	cenv_server(&e);
	mount_as(&e, &a, "127.0.0.2", &root);
	ASSERT_EQ(tl_nfs_lookup(&a, &root, "f", &fh_old, NULL), NFS3_OK);
	expect_read(&a, &fh_old, "old-f");

	/* the new image built next to the old one, then renamed over its path */
	replace_in_place(e.t.lower[0], "new-content-f", ".old");

	FMT(needle, "export 'plain': lower layer '%s' was replaced in place", e.t.lower[0]);
	for (i = 0; i < 200 && log_count(&e.s, needle) == 0; i++)
		usleep(50000);
	ASSERTF(log_count(&e.s, needle) == 1, "no warning '%s' within 10 s", needle);
	sleep(3); /* three more probes: the state is unchanged, nothing more is said */
	ASSERT_EQ(log_count(&e.s, needle), 1);

	/* a fresh lookup: the new file, whole */
	ASSERT_EQ(tl_nfs_lookup(&a, &root, "f", &fh_new, NULL), NFS3_OK);
	expect_read(&a, &fh_new, "new-content-f");
	/* the old handle: STALE, or the old file whole; never EIO, never a mix */
	st = tl_nfs_read(&a, &fh_old, 0, sizeof(buf), buf, &n, &eof);
	ASSERTF(st == NFS3ERR_STALE || (st == NFS3_OK && n == 5 && !memcmp(buf, "old-f", 5)),
		"old handle: status %d, '%.*s'", st, (int)n, buf);

	/* replaced again: said again, once */
	replace_in_place(e.t.lower[0], "third", ".old2");
	for (i = 0; i < 200 && log_count(&e.s, needle) < 2; i++)
		usleep(50000);
	ASSERT_EQ(log_count(&e.s, needle), 2);
	ASSERT_EQ(tl_nfs_lookup(&a, &root, "f", &fh_new, NULL), NFS3_OK);
	expect_read(&a, &fh_new, "third");

	/* an entry added at the top of the root served: seen, the new name served */
	FMT(needle, "export 'plain': lower layer '%s' changed at its top in place",
	    e.t.lower[0]);
	usleep(20000); /* a ctime tick apart */
	tl_write(e.t.lower[0], "added", "added", 0644);
	for (i = 0; i < 200 && log_count(&e.s, needle) == 0; i++)
		usleep(50000);
	ASSERTF(log_count(&e.s, needle) == 1, "no line '%s' within 10 s", needle);
	ASSERT_EQ(tl_nfs_lookup(&a, &root, "added", &fh_new, NULL), NFS3_OK);
	expect_read(&a, &fh_new, "added");

	tl_client_close(&a);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

/*
 * The lower of a templated line renamed over in place: the probe moves the
 * line as a SIGHUP with a new lowerdir does - the instance whose upper is
 * empty reads the new tree, the one that wrote stays on the old base.
 */
TEST_IMPL(ctl_base_replaced_template)
{
	struct cenv e;
	struct tl_client a, b;
	struct tl_fh root_a, root_b, fh;
	char needle[PATH_MAX + 96], clients[PATH_MAX];
	int i;

	memset(&e, 0, sizeof(e));
	tl_tree_new(&e.t, 1);
	tl_write(e.t.lower[0], "f", "old-f", 0644);
	tl_join(e.conf, sizeof(e.conf), e.t.root, "ovlnfsd.conf");
	tl_join(clients, sizeof(clients), e.t.root, "clients");
	ASSERT(mkdir(clients, 0755) == 0);
	{
		FILE *f = fopen(e.conf, "w");

		ASSERT(f);
		fprintf(f, "[server]\nbase_check_interval = 1\n"
			"[export farm]\npath = /\nlowerdir = %s\nupperdir = %s/{client}/upper\n"
			"workdir = %s/{client}/work\nsquash = none\n", e.t.lower[0], clients,
			clients);
		ASSERT(fclose(f) == 0);
	}
	cenv_server(&e);
	mount_as(&e, &a, "127.0.0.2", &root_a);
	mount_as(&e, &b, "127.0.0.3", &root_b);
	ASSERT_EQ(tl_nfs_lookup(&a, &root_a, "f", &fh, NULL), NFS3_OK);
	expect_read(&a, &fh, "old-f");
	ASSERT_EQ(tl_nfs_create(&b, &root_b, "mine"), NFS3_OK); /* b's upper: changes */
	ASSERT_EQ(tl_nfs_lookup(&b, &root_b, "f", &fh, NULL), NFS3_OK);
	expect_read(&b, &fh, "old-f");

	replace_in_place(e.t.lower[0], "new-content-f", ".old");

	FMT(needle, "export 'farm': lower layer '%s' was replaced in place", e.t.lower[0]);
	for (i = 0; i < 200 && log_count(&e.s, "instance(s) moved, 1 pinned") == 0; i++)
		usleep(50000);
	ASSERTF(log_count(&e.s, needle) == 1, "no warning '%s' within 10 s", needle);
	ASSERTF(log_count(&e.s, "1 instance(s) moved, 1 pinned") == 1,
		"the line's move: not one instance moved and one pinned");
	ASSERT_EQ(tl_nfs_lookup(&a, &root_a, "f", &fh, NULL), NFS3_OK);
	expect_read(&a, &fh, "new-content-f");
	ASSERT_EQ(tl_nfs_lookup(&b, &root_b, "f", &fh, NULL), NFS3_OK);
	expect_read(&b, &fh, "old-f");
	sleep(3); /* three more probes: the state is unchanged, nothing more is said */
	ASSERT_EQ(log_count(&e.s, needle), 1);

	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&e.s);
	tl_tree_free(&e.t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY(ctl_list_diff),
		TEST_ENTRY(ctl_reset),
		TEST_ENTRY(ctl_reset_kill9),
		TEST_ENTRY(ctl_refuse_other_uid),
		TEST_ENTRY(ctl_base_record),
		TEST_ENTRY(ctl_reset_plain),
		TEST_ENTRY(ctl_commit_plain),
		TEST_ENTRY(ctl_commit_kill9),
		TEST_ENTRY(ctl_commit_instance),
		TEST_ENTRY(ctl_commit_index),
		TEST_ENTRY(ctl_commit_kill_random),
		TEST_ENTRY(ctl_base_update),
		TEST_ENTRY(ctl_reset_plain_kill9),
		TEST_ENTRY(ctl_base_update_instances),
		TEST_ENTRY(ctl_base_replaced),
		TEST_ENTRY(ctl_base_replaced_template),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
