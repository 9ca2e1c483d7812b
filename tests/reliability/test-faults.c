/*
 * test-faults.c - the upper file system failing under a real ovlnfsd:
 * EIO, ENOSPC and EDQUOT in the middle of copy-ups (small and bigger
 * files), WRITEs (FILE_SYNC and UNSTABLE), COMMIT, CREATE and MKDIR.
 * The failures come from faultinj.c, an LD_PRELOAD shim that fails chosen
 * calls (pwrite, copy_file_range, fsync, renameat2, mkdirat, an open for
 * writing, ...) on files under chosen paths after N successes, steered
 * through a control file while the server runs. (A real full file system
 * is test-nospc.c's business, in the integration suite.)
 *
 * For every fault: the client gets NFS3ERR_IO / NOSPC / DQUOT for that
 * operation; nothing half made is visible (no name in the upper layer,
 * workdir/work empty); a second client is served meanwhile (GETATTR,
 * LOOKUP, READ checked, READDIR, a FILE_SYNC WRITE to a file the fault
 * does not cover); every FILE_SYNC or COMMITted byte is still there; a
 * failed sync changes the write verifier (the unstable data it covered
 * may be gone). Once the fault is lifted every operation works. Then the
 * server is stopped and started again without the shim: the data is
 * intact, work/ is empty, and the kernel overlay mounts the layers and
 * shows the tree ovlnfsd showed (names, types, modes, sizes, contents).
 *
 * The bigger file is 8 MiB (100 MiB with ONFS_LONG=1). Needs root for
 * the kernel overlay mount; that last comparison skips with the reason
 * otherwise (fails under REQUIRE_ALL=1). Starts and stops its servers by
 * PID.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsclient.h"
#include "testlib.h"

#define SMALL 4096u
#define RO_SIZE (64u * 1024)
#define CHUNK (64u * 1024)
#define ACKED_MAX (512u * 1024)

static struct tl_tree t;
static char ctl[PATH_MAX], faultlog[PATH_MAX], upper_acked[PATH_MAX];
static uint8_t acked[ACKED_MAX]; /* what the client holds as acknowledged */
static size_t acked_len;

static bool long_mode(void)
{
	const char *v = getenv("ONFS_LONG");

	return v && *v && strcmp(v, "0") != 0;
}

static uint8_t pat(unsigned seed, uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)seed;
}

static void fill(uint8_t *p, size_t len, unsigned seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(seed, off + i);
}

/* ---------- steering the shim ---------- */

/* Replace the control file (a rename, so the shim sees a new inode). */
static void fault_set(const char *rules)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", ctl);
	f = fopen(tmp, "w");
	ASSERT(f != NULL);
	fputs(rules, f);
	ASSERT(fclose(f) == 0);
	ASSERT(rename(tmp, ctl) == 0);
}

static void fault_arm(const char *ops, const char *err, int after, int count, const char *prefix)
{
	char line[4 * PATH_MAX];

	snprintf(line, sizeof(line), "%s %s %d %d %s\n", ops, err, after, count, prefix);
	fault_set(line);
}

static void fault_lift(void)
{
	fault_set("");
}

static int faults_fired(void)
{
	char *txt = NULL;
	int n = 0;

	if (tl_read_file(faultlog, &txt) < 0)
		return 0;
	for (char *p = txt; *p; p++)
		n += *p == '\n';
	free(txt);
	return n;
}

/* ---------- calls the shared wrappers do not have ---------- */

struct wres {
	bool done;
	int status;
	uint32_t committed;
	uint8_t verf[8];
};

static void wres_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct wres *w = priv;

	(void)rpc;
	w->done = true;
	w->status = -1;
	if (status != RPC_STATUS_SUCCESS || !data)
		return;
	if (w->committed == 100) { /* COMMIT */
		COMMIT3res *r = data;

		w->status = (int)r->status;
		if (r->status == NFS3_OK)
			memcpy(w->verf, r->COMMIT3res_u.resok.verf, 8);
		return;
	}
	{
		WRITE3res *r = data;

		w->status = (int)r->status;
		if (r->status == NFS3_OK) {
			w->committed = r->WRITE3res_u.resok.committed;
			memcpy(w->verf, r->WRITE3res_u.resok.verf, 8);
		}
	}
}

static int wait_wres(struct tl_client *c, struct wres *w, int queued)
{
	double deadline = tl_now() + 60;

	ASSERTF(queued == 0, "cannot queue the call: %s", rpc_get_error(c->rpc));
	while (!w->done) {
		struct pollfd pfd = { .fd = rpc_get_fd(c->rpc),
				      .events = (short)rpc_which_events(c->rpc) };
		int r = poll(&pfd, 1, 100);

		ASSERTF(rpc_service(c->rpc, r > 0 ? pfd.revents : 0) >= 0 || w->done,
			"rpc_service: %s", rpc_get_error(c->rpc));
		ASSERTF(tl_now() < deadline, "no reply within 60 s");
	}
	return w->status;
}

/* WRITE with a chosen stability; *verf gets the reply's verifier. */
static int write_stable(struct tl_client *c, const struct tl_fh *fh, uint64_t off,
			const void *data, uint32_t len, int stable, uint8_t verf[8])
{
	struct wres w = { 0 };
	WRITE3args a;
	int st;

	memset(&a, 0, sizeof(a));
	a.file.data.data_len = fh->len;
	a.file.data.data_val = (char *)fh->data;
	a.offset = off;
	a.count = len;
	a.stable = (stable_how)stable;
	a.data.data_len = len;
	a.data.data_val = (char *)data;
	st = wait_wres(c, &w, rpc_nfs3_write_async(c->rpc, wres_cb, &a, &w));
	if (st == NFS3_OK) {
		ASSERTF((int)w.committed >= stable, "WRITE answered committed %u for stable %d",
			w.committed, stable);
		if (verf)
			memcpy(verf, w.verf, 8);
	}
	return st;
}

static int commit_verf(struct tl_client *c, const struct tl_fh *fh, uint8_t verf[8])
{
	struct wres w = { .committed = 100 };
	COMMIT3args a;
	int st;

	memset(&a, 0, sizeof(a));
	a.file.data.data_len = fh->len;
	a.file.data.data_val = (char *)fh->data;
	st = wait_wres(c, &w, rpc_nfs3_commit_async(c->rpc, wres_cb, &a, &w));
	if (st == NFS3_OK && verf)
		memcpy(verf, w.verf, 8);
	return st;
}

/* Read a whole file through NFS (size from GETATTR) into a malloc'd buffer. */
static uint8_t *nfs_slurp(struct tl_client *c, const struct tl_fh *fh, uint64_t *size)
{
	fattr3 a;
	uint8_t *buf;
	uint64_t off = 0;

	ASSERT_NFS(tl_nfs_getattr(c, fh, &a), NFS3_OK);
	*size = a.size;
	buf = malloc(a.size ? a.size : 1);
	ASSERT(buf != NULL);
	while (off < a.size) {
		uint32_t got = 0, want = a.size - off > (1u << 20) ? (1u << 20) : (uint32_t)(a.size - off);
		bool eof = false;

		ASSERT_NFS(tl_nfs_read(c, fh, off, want, buf + off, &got, &eof), NFS3_OK);
		ASSERTF(got > 0 || eof, "READ at %llu returned nothing", (unsigned long long)off);
		if (got == 0)
			break;
		off += got;
	}
	ASSERT_EQ(off, a.size);
	return buf;
}

/* ---------- checks ---------- */


static void work_clean(const char *when)
{
	char p[PATH_MAX];
	int n;

	tl_join(p, sizeof(p), t.work, "work");
	n = tl_count_entries(p);
	ASSERTF(n == 0, "%s: workdir/work holds %d entries (a half-made object)", when, n);
}

static void upper_absent(const char *rel, const char *when)
{
	char p[PATH_MAX];
	struct stat st;

	tl_join(p, sizeof(p), t.upper, rel);
	ASSERTF(lstat(p, &st) < 0 && errno == ENOENT, "%s: upper/%s is visible", when, rel);
}

/* The acknowledged bytes of "acked", read through client c. */
static void acked_intact(struct tl_client *c, const struct tl_fh *fh, const char *when)
{
	uint64_t size;
	uint8_t *got = nfs_slurp(c, fh, &size);

	ASSERTF(size >= acked_len, "%s: acked is %llu bytes, %zu were acknowledged", when,
		(unsigned long long)size, acked_len);
	ASSERTF(memcmp(got, acked, acked_len) == 0, "%s: acknowledged bytes of acked differ", when);
	free(got);
}

static uint64_t bystander_calls;

/*
 * The other client, while a fault is armed: GETATTR, LOOKUP, READ (the
 * bytes checked), READDIR and a FILE_SYNC WRITE to a file the fault does
 * not cover.
 */
static void bystander(struct tl_client *b, const struct tl_fh *root, const struct tl_fh *other,
		      const char *when)
{
	struct tl_fh ro;
	struct tl_dirpage pg;
	uint8_t buf[RO_SIZE], want[RO_SIZE], zero[8] = { 0 };
	uint32_t got = 0;
	bool eof;

	ASSERTF(tl_nfs_getattr(b, root, NULL) == NFS3_OK, "%s: GETATTR of another client", when);
	ASSERTF(tl_nfs_lookup(b, root, "ro", &ro, NULL) == NFS3_OK, "%s: LOOKUP", when);
	ASSERTF(tl_nfs_read(b, &ro, 0, RO_SIZE, buf, &got, &eof) == NFS3_OK && got == RO_SIZE,
		"%s: READ of another client", when);
	fill(want, RO_SIZE, 7, 0);
	ASSERTF(memcmp(buf, want, RO_SIZE) == 0, "%s: READ returned wrong bytes", when);
	ASSERTF(tl_nfs_readdir(b, root, 0, zero, 8192, &pg) == NFS3_OK && pg.n > 3,
		"%s: READDIR of another client", when);
	tl_dirpage_free(&pg);
	if (other) {
		fill(buf, 512, 9, 0);
		ASSERTF(tl_nfs_write(b, other, 0, buf, 512) == NFS3_OK,
			"%s: another client's WRITE to a file the fault does not cover", when);
	}
	bystander_calls += other ? 5 : 4;
}

/* ---------- the tree as a list of lines, through NFS and on disk ---------- */

struct lines {
	char **v;
	size_t n, cap;
};

static void lines_add(struct lines *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		ASSERT(l->v != NULL);
	}
	l->v[l->n] = strdup(s);
	ASSERT(l->v[l->n] != NULL);
	l->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void nfs_tree(struct tl_client *c, const struct tl_fh *dir, const char *rel,
		     struct lines *out)
{
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	bool eof = false;

	while (!eof) {
		struct tl_dirpage pg;

		ASSERT_NFS(tl_nfs_readdirplus(c, dir, cookie, verf, 8192, 65536, &pg), NFS3_OK);
		for (size_t i = 0; i < pg.n; i++) {
			struct tl_dirent *e = &pg.e[i];
			char path[PATH_MAX], line[PATH_MAX + 128];
			uint64_t sum = 0, size = 0;

			cookie = e->cookie;
			if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
				continue;
			ASSERT(e->has_attr && e->has_fh);
			snprintf(path, sizeof(path), "%s/%s", rel, e->name);
			if (e->attr.type == NF3REG) {
				uint8_t *d = nfs_slurp(c, &e->fh, &size);

				sum = fnv(d, size);
				free(d);
			}
			snprintf(line, sizeof(line), "%s type %d mode %o size %llu sum %016llx", path,
				 e->attr.type == NF3REG ? 1 : e->attr.type == NF3DIR ? 2 : 9,
				 e->attr.mode & 07777,
				 (unsigned long long)(e->attr.type == NF3DIR ? 0 : e->attr.size),
				 (unsigned long long)sum);
			lines_add(out, line);
			if (e->attr.type == NF3DIR)
				nfs_tree(c, &e->fh, path, out);
		}
		memcpy(verf, pg.verf, 8);
		eof = pg.eof;
		tl_dirpage_free(&pg);
	}
}

static void fs_tree(const char *base, const char *rel, struct lines *out)
{
	char dirpath[PATH_MAX];
	DIR *d;
	struct dirent *de;

	snprintf(dirpath, sizeof(dirpath), "%s%s", base, rel);
	d = opendir(dirpath);
	ASSERTF(d != NULL, "opendir %s: %s", dirpath, strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX], full[2 * PATH_MAX], line[PATH_MAX + 128];
		struct stat st;
		uint64_t sum = 0;
		int type;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", rel, de->d_name);
		snprintf(full, sizeof(full), "%s%s", base, path);
		ASSERT(lstat(full, &st) == 0);
		type = S_ISREG(st.st_mode) ? 1 : S_ISDIR(st.st_mode) ? 2 : 9;
		if (type == 1) {
			char *data = NULL;
			ssize_t n = tl_read_file(full, &data);

			ASSERTF(n == st.st_size, "kernel view: reading %s", path);
			sum = fnv((const uint8_t *)data, (size_t)n);
			free(data);
		}
		snprintf(line, sizeof(line), "%s type %d mode %o size %llu sum %016llx", path, type,
			 st.st_mode & 07777, (unsigned long long)(type == 2 ? 0 : st.st_size),
			 (unsigned long long)sum);
		lines_add(out, line);
		if (type == 2)
			fs_tree(base, path, out);
	}
	closedir(d);
}

static char mnt[PATH_MAX];

static void umount_mnt(void *arg)
{
	(void)arg;
	umount2(mnt, MNT_DETACH);
}

/* ---------- the case ---------- */

/* Start a server under the shim: with -o opts, or (opts NULL) with extra arguments. */
static void start_shimmed(struct tl_server *s, const char *opts, const char *const *extra)
{
	const char *shim = getenv("ONFS_FAULTINJ");
	char asan[1024];
	const char *old_asan = getenv("ASAN_OPTIONS");

	ASSERTF(shim && *shim, "ONFS_FAULTINJ (the fault injection shim) is not set");
	ASSERTF(access(shim, R_OK) == 0, "ONFS_FAULTINJ '%s': %s", shim, strerror(errno));
	setenv("LD_PRELOAD", shim, 1);
	setenv("ONFAULT_CTL", ctl, 1);
	setenv("ONFAULT_LOG", faultlog, 1);
	/* a sanitizer build's runtime insists on coming first; the shim goes before it */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
		 old_asan && *old_asan ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	tl_server_start(s, t.root, t.state, opts, NULL, extra);
	unsetenv("LD_PRELOAD");
	if (old_asan)
		setenv("ASAN_OPTIONS", old_asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
}

static void start_server(struct tl_server *s, bool with_shim)
{
	char opts[8192];

	tl_tree_opts(&t, true, opts, sizeof(opts));
	if (with_shim)
		start_shimmed(s, opts, NULL);
	else
		tl_server_start(s, t.root, t.state, opts, NULL, NULL);
}

/* Arm one fault, run one call, expect want; nothing half made; bystander served. */
#define EXPECT_FAULT(call, want, what)                                                        \
	do {                                                                                  \
		int _before = faults_fired(), _st = (call);                                   \
		ASSERTF(_st == (want), "%s: got %s, want %s", what, tl_nfsstat_name(_st),     \
			tl_nfsstat_name(want));                                               \
		ASSERTF(faults_fired() > _before, "%s: the injected fault never fired", what); \
		bystander(&b, &root_b, &other_b, what);                                       \
		work_clean(what);                                                             \
		fault_lift();                                                                 \
		nfaults++;                                                                    \
		printf("# %-52s -> %s\n", what, tl_nfsstat_name(_st));                        \
	} while (0)

TEST_IMPL(faults_eio_enospc_mid_copyup_and_write)
{
	struct tl_server s;
	struct tl_client a, b;
	struct tl_fh root, root_b, other_b, fh_acked, fh_small, fh_bigger, fh_cfs, fh_ren, fh, dir;
	uint64_t bigger_size = long_mode() ? (100ull << 20) : (8ull << 20), size;
	uint8_t *big, buf[CHUNK], v0[8], v1[8], v2[8];
	char prefix[3 * PATH_MAX], uprefix[3 * PATH_MAX];
	int nfaults = 0;
	double t0 = tl_now();

	tl_tree_new(&t, 1);
	tl_join(ctl, sizeof(ctl), t.root, "faults.ctl");
	tl_join(faultlog, sizeof(faultlog), t.root, "faults.log");
	tl_join(upper_acked, sizeof(upper_acked), t.upper, "acked");
	/* the lower layer: files to copy up, one to read */
	big = malloc(bigger_size);
	ASSERT(big != NULL);
	fill(big, bigger_size, 1, 0);
	tl_write_buf(t.lower[0], "bigger", big, bigger_size, 0644);
	tl_write_buf(t.lower[0], "small", big, SMALL, 0644);
	tl_write_buf(t.lower[0], "cfs", big, SMALL, 0644);
	tl_write_buf(t.lower[0], "ren", big, SMALL, 0644);
	fill(buf, RO_SIZE, 7, 0);
	tl_write_buf(t.lower[0], "ro", buf, RO_SIZE, 0644);
	tl_mkdir(t.lower[0], "ldir", 0755);
	tl_write(t.lower[0], "ldir/f", "lower\n", 0644);
	tl_write(t.upper, "other", "", 0644);
	fault_lift();
	/* new objects and copies are built in workdir/work: faults there only */
	snprintf(prefix, sizeof(prefix), "%s", t.work);

	start_server(&s, true);
	tl_client_mount(&a, s.port, "/", &root);
	tl_client_mount(&b, s.port, "/", &root_b);
	ASSERT_NFS(tl_nfs_lookup(&b, &root_b, "other", &other_b, NULL), NFS3_OK);

	/* acknowledged data: FILE_SYNC, then UNSTABLE + COMMIT */
	ASSERT_NFS(tl_nfs_create(&a, &root, "acked"), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "acked", &fh_acked, NULL), NFS3_OK);
	fill(acked, CHUNK, 2, 0);
	ASSERT_NFS(write_stable(&a, &fh_acked, 0, acked, CHUNK, FILE_SYNC, v0), NFS3_OK);
	fill(acked + CHUNK, CHUNK, 2, CHUNK);
	ASSERT_NFS(write_stable(&a, &fh_acked, CHUNK, acked + CHUNK, CHUNK, UNSTABLE, v0), NFS3_OK);
	ASSERT_NFS(commit_verf(&a, &fh_acked, v1), NFS3_OK);
	ASSERT(memcmp(v0, v1, 8) == 0);
	acked_len = 2 * CHUNK;

	/* WRITE: the data write itself fails (this file only: "other" stays writable) */
	fill(buf, CHUNK, 3, 0);
	fault_arm("pwrite", "EIO", 0, 0, upper_acked);
	EXPECT_FAULT(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, FILE_SYNC, NULL),
		     NFS3ERR_IO, "WRITE FILE_SYNC, pwrite EIO");
	fault_arm("pwrite", "ENOSPC", 0, 0, upper_acked);
	EXPECT_FAULT(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, UNSTABLE, NULL),
		     NFS3ERR_NOSPC, "WRITE UNSTABLE, pwrite ENOSPC");
	fault_arm("pwrite", "EDQUOT", 0, 0, upper_acked);
	EXPECT_FAULT(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, FILE_SYNC, NULL),
		     NFS3ERR_DQUOT, "WRITE FILE_SYNC, pwrite EDQUOT");
	acked_intact(&b, &fh_acked, "after the failed writes");

	/*
	 * A FILE_SYNC WRITE whose fsync fails: the earlier UNSTABLE write to
	 * the same file may have been lost with it, so the verifier must
	 * change before the next COMMIT can claim that write is safe.
	 */
	ASSERT_NFS(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, UNSTABLE, v0), NFS3_OK);
	fault_arm("fsync,fdatasync", "EIO", 0, 1, upper_acked);
	EXPECT_FAULT(write_stable(&a, &fh_acked, acked_len + CHUNK, buf, CHUNK, FILE_SYNC, NULL),
		     NFS3ERR_IO, "WRITE FILE_SYNC, fsync EIO");
	ASSERT_NFS(commit_verf(&a, &fh_acked, v1), NFS3_OK);
	ASSERTF(memcmp(v0, v1, 8) != 0,
		"a FILE_SYNC WRITE's fsync failed, yet COMMIT kept the write verifier of the "
		"UNSTABLE write before it");
	/* as a client does on a new verifier: send the unstable data again */
	memcpy(acked + acked_len, buf, CHUNK);
	ASSERT_NFS(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, FILE_SYNC, NULL), NFS3_OK);
	acked_len += CHUNK;

	/* COMMIT whose fsync fails: IO, and the next COMMIT has a new verifier */
	fill(buf, CHUNK, 4, 0);
	ASSERT_NFS(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, UNSTABLE, v0), NFS3_OK);
	fault_arm("fsync", "EIO", 0, 1, upper_acked);
	EXPECT_FAULT(commit_verf(&a, &fh_acked, NULL), NFS3ERR_IO, "COMMIT, fsync EIO");
	ASSERT_NFS(commit_verf(&a, &fh_acked, v2), NFS3_OK);
	ASSERTF(memcmp(v0, v2, 8) != 0, "COMMIT failed, yet the verifier did not change");
	memcpy(acked + acked_len, buf, CHUNK);
	ASSERT_NFS(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, FILE_SYNC, NULL), NFS3_OK);
	acked_len += CHUNK;
	acked_intact(&b, &fh_acked, "after the failed syncs");

	/* copy-ups: the data copy fails (small: at once; bigger: after 3 MiB) */
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "small", &fh_small, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "bigger", &fh_bigger, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "cfs", &fh_cfs, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "ren", &fh_ren, NULL), NFS3_OK);
	fill(buf, 100, 5, 0);
	fault_arm("copy_file_range,pwrite", "EIO", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_write(&a, &fh_small, 10, buf, 100), NFS3ERR_IO,
		     "copy-up of 4 KiB, data copy EIO");
	upper_absent("small", "copy-up of small");
	fault_arm("copy_file_range,pwrite", "EIO", 3, 0, prefix);
	EXPECT_FAULT(tl_nfs_write(&a, &fh_bigger, 10, buf, 100), NFS3ERR_IO,
		     "copy-up of the bigger file, EIO after 3 MiB");
	upper_absent("bigger", "copy-up of bigger");
	fault_arm("copy_file_range,pwrite", "ENOSPC", 2, 0, prefix);
	EXPECT_FAULT(tl_nfs_write(&a, &fh_bigger, 10, buf, 100), NFS3ERR_NOSPC,
		     "copy-up of the bigger file, ENOSPC after 2 MiB");
	upper_absent("bigger", "copy-up of bigger");
	fault_arm("fsync", "EIO", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_setattr_mode(&a, &fh_cfs, 0600), NFS3ERR_IO,
		     "copy-up (SETATTR), fsync of the copy EIO");
	upper_absent("cfs", "copy-up of cfs");
	/*
	 * A regular file is built unnamed (O_TMPFILE) and linked into place,
	 * so the link's target is in the upper directory; a named temp is
	 * renamed from work/ (OVLNFSD_TEST_NO_TMPFILE, or no O_TMPFILE).
	 */
	snprintf(uprefix, sizeof(uprefix), "%s:%s", t.work, t.upper);
	fault_arm("renameat,linkat", "EIO", 0, 0, uprefix);
	EXPECT_FAULT(tl_nfs_setattr_mode(&a, &fh_ren, 0600), NFS3ERR_IO,
		     "copy-up (SETATTR), link or rename into place EIO");
	upper_absent("ren", "copy-up of ren");

	/* namespace: CREATE and MKDIR (one in a lower directory: its copy-up first) */
	fault_arm("openw", "EIO", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_create(&a, &root, "newfile"), NFS3ERR_IO, "CREATE, open EIO");
	ASSERT_NFS(tl_nfs_lookup(&b, &root_b, "newfile", NULL, NULL), NFS3ERR_NOENT);
	fault_arm("renameat", "ENOSPC", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_create(&a, &root, "newfile"), NFS3ERR_NOSPC, "CREATE, rename ENOSPC");
	ASSERT_NFS(tl_nfs_lookup(&b, &root_b, "newfile", NULL, NULL), NFS3ERR_NOENT);
	fault_arm("mkdirat", "EIO", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_mkdir(&a, &root, "newdir"), NFS3ERR_IO, "MKDIR, mkdir EIO");
	ASSERT_NFS(tl_nfs_lookup(&b, &root_b, "newdir", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "ldir", &dir, NULL), NFS3_OK);
	fault_arm("mkdirat", "EDQUOT", 0, 0, prefix);
	EXPECT_FAULT(tl_nfs_mkdir(&a, &dir, "sub"), NFS3ERR_DQUOT,
		     "MKDIR in a lower dir, mkdir EDQUOT");
	upper_absent("ldir/sub", "MKDIR in ldir");
	ASSERT_NFS(tl_nfs_lookup(&b, &root_b, "ldir", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&b, &fh, "sub", NULL, NULL), NFS3ERR_NOENT);
	acked_intact(&b, &fh_acked, "after every fault");

	/* space is back: every operation works */
	fill(buf, 100, 5, 0);
	ASSERT_NFS(tl_nfs_write(&a, &fh_small, 10, buf, 100), NFS3_OK);
	ASSERT_NFS(tl_nfs_write(&a, &fh_bigger, 10, buf, 100), NFS3_OK);
	memcpy(big + 10, buf, 100);
	ASSERT_NFS(tl_nfs_setattr_mode(&a, &fh_cfs, 0600), NFS3_OK);
	ASSERT_NFS(tl_nfs_setattr_mode(&a, &fh_ren, 0640), NFS3_OK);
	ASSERT_NFS(tl_nfs_create(&a, &root, "newfile"), NFS3_OK);
	ASSERT_NFS(tl_nfs_mkdir(&a, &root, "newdir"), NFS3_OK);
	ASSERT_NFS(tl_nfs_mkdir(&a, &dir, "sub"), NFS3_OK);
	fill(buf, CHUNK, 6, 0);
	ASSERT_NFS(write_stable(&a, &fh_acked, acked_len, buf, CHUNK, FILE_SYNC, NULL), NFS3_OK);
	memcpy(acked + acked_len, buf, CHUNK);
	acked_len += CHUNK;
	{
		uint8_t *got = nfs_slurp(&b, &fh_bigger, &size);

		ASSERT_EQ(size, bigger_size);
		ASSERTF(memcmp(got, big, bigger_size) == 0, "bigger after its copy-up differs");
		free(got);
	}
	acked_intact(&b, &fh_acked, "once the faults are lifted");
	work_clean("once the faults are lifted");

	/* a restart, without the shim */
	tl_client_close(&a);
	tl_client_close(&b);
	tl_server_stop(&s);
	work_clean("after the stop");
	start_server(&s, false);
	work_clean("after the restart");
	tl_client_mount(&a, s.port, "/", &root);
	ASSERT_NFS(tl_nfs_lookup(&a, &root, "acked", &fh_acked, NULL), NFS3_OK);
	acked_intact(&a, &fh_acked, "after the restart");
	{
		struct lines via_nfs = { 0 }, via_kernel = { 0 };
		char opts[8192];

		nfs_tree(&a, &root, "", &via_nfs);
		tl_client_close(&a);
		tl_server_stop(&s);
		qsort(via_nfs.v, via_nfs.n, sizeof(char *), cmp_str);
		tl_join(mnt, sizeof(mnt), t.root, "mnt");
		tl_mkdir(t.root, "mnt", 0755);
		tl_tree_opts(&t, true, opts, sizeof(opts));
		strncat(opts, ",index=on,nfs_export=on,redirect_dir=on", sizeof(opts) - strlen(opts) - 1);
		if (mount("overlay", mnt, "overlay", 0, opts) < 0)
			RETURN_SKIP_CI("cannot mount the kernel overlay to compare (%s): needs root "
				       "and overlayfs", strerror(errno));
		{
			int tok = tl_cleanup_push(umount_mnt, NULL);

			fs_tree(mnt, "", &via_kernel);
			ASSERT(umount2(mnt, 0) == 0);
			tl_cleanup_cancel(tok);
		}
		qsort(via_kernel.v, via_kernel.n, sizeof(char *), cmp_str);
		for (size_t i = 0; i < via_nfs.n || i < via_kernel.n; i++) {
			const char *x = i < via_nfs.n ? via_nfs.v[i] : "(none)";
			const char *y = i < via_kernel.n ? via_kernel.v[i] : "(none)";

			ASSERTF(strcmp(x, y) == 0, "ovlnfsd shows '%s', the kernel overlay '%s'", x, y);
		}
		printf("# the kernel overlay shows the same %zu entries as ovlnfsd\n", via_nfs.n);
		lines_free(&via_nfs);
		lines_free(&via_kernel);
	}
	work_clean("after the kernel mount");
	printf("# faults: %d injected (%d fired in the shim), each answered with its error; "
	       "%llu bystander calls answered meanwhile; %zu acknowledged bytes verified after "
	       "each fault, after the lift and after a restart; bigger file %llu MiB; %.1f s\n",
	       nfaults, faults_fired(), (unsigned long long)bystander_calls, acked_len,
	       (unsigned long long)(bigger_size >> 20), tl_now() - t0);
	free(big);
	tl_tree_free(&t);
	return 0;
}

/* ---------- a base move while a slow copy-up is in flight ---------- */

#define STALL_MS 3000
/* a bystander's call that takes longer than this was held by a blocked loop */
#define BYSTANDER_BOUND_S 1.5

struct slow_writer {
	int port;
	int status;
};

static void *slow_writer_main(void *arg)
{
	struct slow_writer *w = arg;
	struct tl_client c;
	struct tl_fh root, fh;

	tl_client_connect(&c, w->port);
	w->status = -1;
	if (tl_mnt(&c, "/a", &root, NULL, NULL, 0) == MNT3_OK &&
	    tl_nfs_lookup(&c, &root, "f", &fh, NULL) == NFS3_OK)
		w->status = tl_nfs_write(&c, &fh, 0, "X", 1); /* the copy-up is held STALL_MS */
	tl_client_close(&c);
	return NULL;
}

static void base_conf(const char *conf, const char *lower)
{
	FILE *f = fopen(conf, "w");

	ASSERT(f != NULL);
	fprintf(f, "[export a]\npath = /a\nlowerdir = %s\nupperdir = %s\nworkdir = %s\n"
		"squash = none\n[export b]\npath = /b\nlowerdir = %s\n", lower, t.upper, t.work,
		lower);
	ASSERT(fclose(f) == 0);
}

static bool log_has(const struct tl_server *s, const char *what)
{
	char *txt = NULL;
	bool yes;

	if (tl_read_file(s->log, &txt) < 0)
		return false;
	yes = strstr(txt, what) != NULL;
	free(txt);
	return yes;
}

/*
 * A base move (a new lowerdir + SIGHUP) waits for the export's calls to
 * drain, so it runs on a worker: while it waits behind a first WRITE whose
 * copy-up the shim holds for 3 s (a slow disk, not a fault), another
 * client is served on another export without delay; a server that drained
 * on its loop answered nobody for those 3 s. And the move decides only
 * after the drain: the copy-up gave /a's upper content made against the
 * old base, so /a is pinned to it (never moved under the new file), while
 * /b, with no upper, moves.
 */
TEST_IMPL(faults_base_move_off_the_loop)
{
	struct tl_server s;
	struct tl_client b;
	struct tl_fh root_b, fh;
	struct slow_writer w;
	pthread_t th;
	char v2[PATH_MAX], conf[PATH_MAX], rule[2 * PATH_MAX], buf[16];
	const char *extra[] = { "-c", conf, NULL };
	double t0, worst = 0;
	uint32_t got;
	bool eof;
	int served = 0;

	tl_tree_new(&t, 1);
	tl_join(ctl, sizeof(ctl), t.root, "faults.ctl");
	tl_join(faultlog, sizeof(faultlog), t.root, "faults.log");
	tl_join(v2, sizeof(v2), t.root, "base-v2");
	tl_join(conf, sizeof(conf), t.root, "ovlnfsd.conf");
	tl_write(t.lower[0], "f", "old-base", 0666);
	ASSERT(mkdir(v2, 0755) == 0);
	tl_write(v2, "f", "new-base", 0666);
	base_conf(conf, t.lower[0]);
	start_shimmed(&s, NULL, extra);
	tl_client_connect(&b, s.port);
	ASSERT_EQ(tl_mnt(&b, "/b", &root_b, NULL, NULL, 0), MNT3_OK);
	/* the first call into the work area (the copy-up's) is held STALL_MS */
	snprintf(rule, sizeof(rule), "any STALL%d 0 1 %s\n", STALL_MS, t.work);
	fault_set(rule);
	w.port = s.port;
	ASSERT(pthread_create(&th, NULL, slow_writer_main, &w) == 0);
	t0 = tl_now();
	while (faults_fired() == 0) {
		ASSERTF(tl_now() - t0 < 10, "the copy-up never reached the work area");
		usleep(10000);
	}
	/* the base update, while the copy-up is held */
	base_conf(conf, v2);
	ASSERT(kill(s.pid, SIGHUP) == 0);
	t0 = tl_now();
	while (tl_now() - t0 < STALL_MS / 1000.0 * 0.8) {
		double c0 = tl_now(), d;
		int st = tl_nfs_lookup(&b, &root_b, "f", &fh, NULL);

		d = tl_now() - c0;
		ASSERTF(st == NFS3_OK || st == NFS3ERR_STALE || st == NFS3ERR_JUKEBOX,
			"bystander LOOKUP on /b: %s", tl_nfsstat_name(st));
		worst = d > worst ? d : worst;
		served++;
		usleep(20000);
	}
	printf("# %d bystander LOOKUPs during the held copy-up and the move's drain, slowest "
	       "%.1f ms\n", served, worst * 1e3);
	ASSERTF(worst < BYSTANDER_BOUND_S,
		"a bystander waited %.2f s: the base move blocked the loop", worst);
	ASSERT(pthread_join(th, NULL) == 0);
	ASSERTF(w.status == NFS3_OK, "the held WRITE: %s", tl_nfsstat_name(w.status));
	/* /a: its upper got content during the drain, so it stays on the old base */
	t0 = tl_now();
	while (!log_has(&s, "export 'a': new lowerdir") || !log_has(&s, "export 'b': moved")) {
		ASSERTF(tl_now() - t0 < 30, "the moves never ended (server log)");
		usleep(50000);
	}
	ASSERTF(!log_has(&s, "export 'a': moved"), "/a moved under its copied-up file");
	{
		struct tl_client a;
		struct tl_fh root_a, fa;

		tl_client_connect(&a, s.port);
		ASSERT_EQ(tl_mnt(&a, "/a", &root_a, NULL, NULL, 0), MNT3_OK);
		ASSERT_EQ(tl_nfs_lookup(&a, &root_a, "f", &fa, NULL), NFS3_OK);
		ASSERT_EQ(tl_nfs_read(&a, &fa, 0, 8, buf, &got, &eof), NFS3_OK);
		ASSERTF(got == 8 && !memcmp(buf, "Xld-base", 8), "/a f: '%.*s'", (int)got, buf);
		tl_client_close(&a);
	}
	ASSERT_EQ(tl_nfs_lookup(&b, &root_b, "f", &fh, NULL), NFS3_OK);
	ASSERT_EQ(tl_nfs_read(&b, &fh, 0, 8, buf, &got, &eof), NFS3_OK);
	ASSERTF(got == 8 && !memcmp(buf, "new-base", 8), "/b f: '%.*s'", (int)got, buf);
	tl_client_close(&b);
	tl_server_stop(&s);
	tl_tree_free(&t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(faults_eio_enospc_mid_copyup_and_write, 900),
		TEST_ENTRY_TIMEOUT(faults_base_move_off_the_loop, 120),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
