/*
 * test-overlay.c - the merged view on real layers in a temp directory,
 * driven through overlay.h directly: lookup rules (docs/overlay.md), handle
 * encode/decode and its failures (docs/architecture.md), readdir cookies (docs/decisions.md,
 * §7). Needs root for whiteouts (mknod c 0 0) and trusted.* xattrs; skips
 * with a printed reason otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/overlay.h"
#include "../../server/overlay/internal.h"
#include "unit.h"

static char root[256];

static void mk(const char *rel, const char *content)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (!content) {
		if (mkdir(p, 0755) < 0 && errno != EEXIST) { perror(p); exit(1); }
		return;
	}
	FILE *f = fopen(p, "w");
	if (!f) { perror(p); exit(1); }
	fputs(content, f);
	fclose(f);
}

static void wh(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (mknod(p, S_IFCHR | 0, makedev(0, 0)) < 0) { perror(p); exit(1); }
}

static void xset(const char *rel, const char *name, const char *val)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (lsetxattr(p, name, val, strlen(val), 0) < 0) { perror(p); exit(1); }
}

static struct onfs_export *open_export(void)
{
	struct onfs_export_conf c = { 0 };
	struct onfs_export *ex = NULL;
	char l1[300], l2[300], l3[300], up[300], wk[300], st[300], err[512];

	snprintf(l1, sizeof(l1), "%s/l1", root);
	snprintf(l2, sizeof(l2), "%s/l2", root);
	snprintf(l3, sizeof(l3), "%s/l3", root);
	snprintf(up, sizeof(up), "%s/up", root);
	snprintf(wk, sizeof(wk), "%s/work", root);
	snprintf(st, sizeof(st), "%s/state", root);
	c.name = "t";
	c.path = "/";
	c.lowerdir[0] = l1;
	c.lowerdir[1] = l2;
	c.lowerdir[2] = l3;
	c.nlower = 3;
	c.upperdir = up;
	c.workdir = wk;
	if (onfs_export_open(&c, st, &ex, err, sizeof(err)) < 0) {
		fprintf(stderr, "export: %s\n", err);
		exit(1);
	}
	return ex;
}

static int lookup_path(struct onfs_export *ex, const char *path, struct onfs_node **out)
{
	return onfs_walk(ex, path, out);
}

struct names {
	char *v[4096];
	uint64_t cookie[4096];
	size_t n;
	size_t limit; /* stop after this many per call */
	size_t taken;
};

static int collect(void *ctx, const struct onfs_dirent *de)
{
	struct names *nm = ctx;
	if (nm->taken >= nm->limit || nm->n >= 4096)
		return 1;
	nm->v[nm->n] = strndup(de->name, de->namelen);
	nm->cookie[nm->n] = de->cookie;
	nm->n++;
	nm->taken++;
	return 0;
}

static bool has(const struct names *nm, const char *name)
{
	for (size_t i = 0; i < nm->n; i++)
		if (strcmp(nm->v[i], name) == 0)
			return true;
	return false;
}

static size_t count_of(const struct names *nm, const char *name)
{
	size_t c = 0;
	for (size_t i = 0; i < nm->n; i++)
		c += strcmp(nm->v[i], name) == 0;
	return c;
}

/* List dir completely, `per` entries per call; optional hook between calls. */
static int list_all(struct onfs_export *ex, struct onfs_node *dir, size_t per, struct names *nm,
		    void (*between)(int call))
{
	uint8_t verf[8] = { 0 }, vout[8];
	uint64_t cookie = 0;
	bool eof = false;
	int calls = 0, ret;

	memset(nm, 0, sizeof(*nm));
	nm->limit = per;
	while (!eof) {
		nm->taken = 0;
		ret = onfs_readdir(ex, dir, cookie, verf, vout, collect, nm, &eof);
		if (ret < 0)
			return ret;
		if (nm->n)
			cookie = nm->cookie[nm->n - 1];
		memcpy(verf, vout, 8);
		if (between)
			between(calls);
		if (++calls > 100000)
			return -ELOOP;
	}
	return 0;
}

static void free_names(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	nm->n = 0;
}

static void churn(int call)
{
	char rel[600];
	/* between calls: remove one name, add one new name, in the upper */
	snprintf(rel, sizeof(rel), "up/big/n%03d", call);
	mk(rel, "x");
	snprintf(rel, sizeof(rel), "%s/up/big/f%03d", root, 199 - call);
	unlink(rel);
}

int main(void)
{
	struct onfs_export *ex;
	struct onfs_node *n, *m, *r;
	struct onfs_attr a, b;
	struct names nm;
	uint8_t fh[ONFS_FH_MAX];
	size_t fhlen;

	if (geteuid() != 0) {
		printf("SKIP: test-overlay needs root (whiteouts are char devices 0/0, trusted.* xattrs)\n");
		return 77;
	}
	snprintf(root, sizeof(root), "/tmp/onfs-ovl-XXXXXX");
	if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
	mk("l1", NULL); mk("l2", NULL); mk("l3", NULL); mk("up", NULL); mk("work", NULL);
	/* bottom layer l3 */
	mk("l3/a", "l3a"); mk("l3/only3", "3"); mk("l3/d", NULL); mk("l3/d/x3", "x3");
	mk("l3/op", NULL); mk("l3/op/hidden", "h"); mk("l3/fd", NULL); mk("l3/fd/inner", "i");
	mk("l3/xw", NULL); mk("l3/xw/gone", "g");
	/* middle l2 */
	mk("l2/a", "l2a"); mk("l2/d", NULL); mk("l2/d/x2", "x2"); wh("l2/only3");
	mk("l2/fd", "file above dir");
	/* l2/xw: xattr whiteout for gone, parent marked opaque=x */
	mk("l2/xw", NULL); mk("l2/xw/gone", ""); xset("l2/xw/gone", "trusted.overlay.whiteout", "y");
	xset("l2/xw", "trusted.overlay.opaque", "x"); mk("l2/xw/kept", "k");
	/* top lower l1 */
	mk("l1/d", NULL); mk("l1/d/x1", "x1"); mk("l1/renamed", NULL);
	/* upper */
	mk("up/a", "upper a"); mk("up/d", NULL); wh("up/d/x2"); mk("up/d/xu", "xu");
	mk("up/op", NULL); xset("up/op", "trusted.overlay.opaque", "y"); mk("up/op/new", "n");
	mk("up/big", NULL);
	for (int i = 0; i < 200; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "up/big/f%03d", i);
		mk(rel, "b");
	}
	/* redirect: upper dir "moved" shows l3's d content under a new name */
	mk("up/moved", NULL); xset("up/moved", "trusted.overlay.redirect", "d");
	mk("up/absmv", NULL); xset("up/absmv", "trusted.overlay.redirect", "/d");

	ex = open_export();

	/* upper wins */
	CHECK(lookup_path(ex, "a", &n) == 0);
	{
		char buf[32] = { 0 };
		bool eof = false;
		CHECK(onfs_read(ex, n, 0, buf, sizeof(buf), &eof) == 7 && eof);
		CHECK(strcmp(buf, "upper a") == 0);
	}
	onfs_node_put(n);
	/* a whiteout in a middle layer hides the bottom one */
	CHECK(lookup_path(ex, "only3", &n) == -ENOENT);
	/* merged dir: x1, x3, xu visible, x2 whited out in upper */
	CHECK(lookup_path(ex, "d", &n) == 0);
	CHECK(onfs_getattr(ex, n, &a) == 0 && S_ISDIR(a.mode) && a.nlink == 1);
	CHECK(onfs_lookup(ex, n, "x1", &m) == 0); onfs_node_put(m);
	CHECK(onfs_lookup(ex, n, "x3", &m) == 0); onfs_node_put(m);
	CHECK(onfs_lookup(ex, n, "xu", &m) == 0); onfs_node_put(m);
	CHECK(onfs_lookup(ex, n, "x2", &m) == -ENOENT);
	CHECK(list_all(ex, n, 1, &nm, NULL) == 0);
	CHECK(nm.n == 5 && has(&nm, ".") && has(&nm, "..") && has(&nm, "x1") && has(&nm, "x3") &&
	      has(&nm, "xu") && !has(&nm, "x2"));
	free_names(&nm);
	/* "..": of d is the root; of the root is the root */
	CHECK(onfs_lookup(ex, n, "..", &m) == 0);
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(memcmp(onfs_node_fh(m)->data, onfs_node_fh(r)->data, onfs_node_fh(r)->len) == 0);
	onfs_node_put(m);
	CHECK(onfs_lookup(ex, r, "..", &m) == 0);
	CHECK(onfs_node_fh(m)->len == onfs_node_fh(r)->len &&
	      memcmp(onfs_node_fh(m)->data, onfs_node_fh(r)->data, onfs_node_fh(r)->len) == 0);
	onfs_node_put(m);
	onfs_node_put(r);
	onfs_node_put(n);
	/* opaque dir stops the descent */
	CHECK(lookup_path(ex, "op/hidden", &n) == -ENOENT);
	CHECK(lookup_path(ex, "op/new", &n) == 0); onfs_node_put(n);
	/* a file above a dir hides it */
	CHECK(lookup_path(ex, "fd", &n) == 0);
	CHECK(onfs_getattr(ex, n, &a) == 0 && S_ISREG(a.mode));
	onfs_node_put(n);
	CHECK(lookup_path(ex, "fd/inner", &n) == -ENOTDIR);
	/* xattr whiteout in an opaque=x dir */
	CHECK(lookup_path(ex, "xw/gone", &n) == -ENOENT);
	CHECK(lookup_path(ex, "xw/kept", &n) == 0); onfs_node_put(n);
	CHECK(lookup_path(ex, "xw", &n) == 0);
	CHECK(list_all(ex, n, 2, &nm, NULL) == 0);
	CHECK(has(&nm, "kept") && !has(&nm, "gone"));
	free_names(&nm);
	onfs_node_put(n);
	/* redirects: relative and absolute show the lower "d" */
	CHECK(lookup_path(ex, "moved/x1", &n) == 0); onfs_node_put(n);
	CHECK(lookup_path(ex, "moved/x3", &n) == 0); onfs_node_put(n);
	CHECK(lookup_path(ex, "absmv/x3", &n) == 0); onfs_node_put(n);
	/* names */
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(onfs_lookup(ex, r, "a/b", &n) == -EACCES);
	CHECK(onfs_lookup(ex, r, "", &n) == -EACCES);
	{
		char longname[300];
		memset(longname, 'n', 256);
		longname[256] = 0;
		CHECK(onfs_lookup(ex, r, longname, &n) == -ENAMETOOLONG);
	}
	CHECK(lookup_path(ex, "a", &n) == 0);
	CHECK(onfs_lookup(ex, n, "x", &m) == -ENOTDIR);

	/* handles: round trip, tamper, truncate */
	fhlen = onfs_node_fh(n)->len;
	CHECK(fhlen <= ONFS_FH_MAX);
	memcpy(fh, onfs_node_fh(n)->data, fhlen);
	CHECK(onfs_getattr(ex, n, &a) == 0);
	CHECK(onfs_node_from_fh(ex, fh, fhlen, &m) == 0);
	CHECK(onfs_getattr(ex, m, &b) == 0 && a.fileid == b.fileid);
	onfs_node_put(m);
	for (size_t i = 0; i < fhlen; i++) {
		fh[i] ^= 0x01;
		int ret = onfs_node_from_fh(ex, fh, fhlen, &m);
		CHECK(ret == -ESTALE || ret == -ONFS_EBADHANDLE);
		if (i != 0 && i != 5)
			CHECK(ret == -ESTALE);
		if (ret == 0)
			onfs_node_put(m);
		fh[i] ^= 0x01;
	}
	CHECK(onfs_node_from_fh(ex, fh, fhlen - 1, &m) == -ONFS_EBADHANDLE);
	CHECK(onfs_node_from_fh(ex, fh, 3, &m) == -ONFS_EBADHANDLE);

	/* the caches (docs/caching.md): memory-only decode and attributes,
	 * and the flush that forgets them */
	CHECK(onfs_node_from_fh_cached(ex, fh, fhlen, &m) == 0);
	CHECK(onfs_getattr_cached(ex, m, &b) && b.fileid == a.fileid && b.size == a.size);
	onfs_node_put(m);
	fh[fhlen - 1] ^= 0x01;
	CHECK(onfs_node_from_fh_cached(ex, fh, fhlen, &m) == -ESTALE);
	fh[fhlen - 1] ^= 0x01;
	onfs_export_caches_flush(ex);
	CHECK(onfs_node_from_fh_cached(ex, fh, fhlen, &m) == -ENOENT);
	CHECK(!onfs_getattr_cached(ex, n, &b)); /* the flush voided n's attributes */
	CHECK(onfs_node_from_fh(ex, fh, fhlen, &m) == 0); /* resolved afresh */
	CHECK(onfs_getattr(ex, m, &b) == 0 && b.fileid == a.fileid);
	onfs_node_put(m);
	CHECK(onfs_node_from_fh_cached(ex, fh, fhlen, &m) == 0);
	CHECK(onfs_getattr_cached(ex, m, &b) && b.fileid == a.fileid);
	onfs_node_put(m);
	onfs_node_put(n);
	onfs_node_put(r);

	/* handles survive a restart (new export instance, empty caches) */
	CHECK(lookup_path(ex, "d/x3", &n) == 0);
	fhlen = onfs_node_fh(n)->len;
	memcpy(fh, onfs_node_fh(n)->data, fhlen);
	onfs_node_put(n);
	CHECK(lookup_path(ex, "d", &n) == 0);
	uint8_t dfh[ONFS_FH_MAX];
	size_t dfhlen = onfs_node_fh(n)->len;
	memcpy(dfh, onfs_node_fh(n)->data, dfhlen);
	onfs_node_put(n);
	onfs_export_close(ex);
	ex = open_export();
	n = NULL;
	CHECK(onfs_node_from_fh(ex, fh, fhlen, &n) == 0);
	if (n) {
		CHECK(strcmp(onfs_node_path(n), "d/x3") == 0);
		onfs_node_put(n);
	}
	n = NULL;
	CHECK(onfs_node_from_fh(ex, dfh, dfhlen, &n) == 0);
	if (n) {
		CHECK(strcmp(onfs_node_path(n), "d") == 0);
		onfs_node_put(n);
	}
	/* a hidden object's handle is STALE after its whiteout appears */
	{
		char p[512];
		snprintf(p, sizeof(p), "%s/up/d/x3", root);
		CHECK(mknod(p, S_IFCHR, makedev(0, 0)) == 0);
		onfs_export_close(ex);
		ex = open_export();
		CHECK(onfs_node_from_fh(ex, fh, fhlen, &n) == -ESTALE);
	}

	/* readdir: every name once, cookies never 0 and never repeated, with
	 * names removed and added between calls */
	CHECK(lookup_path(ex, "big", &n) == 0);
	CHECK(list_all(ex, n, 7, &nm, NULL) == 0);
	CHECK(nm.n == 202);
	for (size_t i = 0; i < nm.n; i++) {
		CHECK(nm.cookie[i] != 0 && nm.cookie[i] < (1ULL << 63));
		CHECK(count_of(&nm, nm.v[i]) == 1);
		if (i)
			CHECK(nm.cookie[i] > nm.cookie[i - 1]);
	}
	free_names(&nm);
	CHECK(list_all(ex, n, 5, &nm, churn) == 0);
	{
		/* f000..f(199-calls) that survived all must appear exactly once */
		size_t seen = 0;
		for (int i = 0; i < 200; i++) {
			char name[16], p[512];
			snprintf(name, sizeof(name), "f%03d", i);
			snprintf(p, sizeof(p), "%s/up/big/%s", root, name);
			if (access(p, F_OK) == 0) {
				CHECK(count_of(&nm, name) == 1);
				seen++;
			}
		}
		CHECK(seen > 100);
		for (size_t i = 0; i < nm.n; i++)
			CHECK(count_of(&nm, nm.v[i]) == 1);
	}
	free_names(&nm);
	/* a verifier of another directory cannot be resumed */
	{
		uint8_t bad[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, vout[8];
		bool eof;
		memset(&nm, 0, sizeof(nm));
		nm.limit = 1000;
		CHECK(onfs_readdir(ex, n, 12345, bad, vout, collect, &nm, &eof) == -ONFS_EBADCOOKIE);
		CHECK(onfs_readdir(ex, n, 1ULL << 63, bad, vout, collect, &nm, &eof) == -ONFS_EBADCOOKIE);
		free_names(&nm);
	}
	onfs_node_put(n);
	CHECK(lookup_path(ex, "a", &n) == 0);
	{
		uint8_t z[8] = { 0 }, vout[8];
		bool eof;
		CHECK(onfs_readdir(ex, n, 0, z, vout, collect, &nm, &eof) == -ENOTDIR);
	}
	onfs_node_put(n);
	onfs_export_close(ex);

	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", root);
	}
	return unit_finish("overlay");
}
