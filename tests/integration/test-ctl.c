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
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
	{
		FILE *f = fopen(e->conf, "w");

		ASSERT(f);
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
	ASSERT_EQ(ctl(&e, &out, "reset", "plain", NULL), 1);
	ASSERTF(strstr(out, "is not an instance"), "reset plain: %s", out);
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

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY(ctl_list_diff),
		TEST_ENTRY(ctl_reset),
		TEST_ENTRY(ctl_reset_kill9),
		TEST_ENTRY(ctl_refuse_other_uid),
		TEST_ENTRY(ctl_base_record),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
