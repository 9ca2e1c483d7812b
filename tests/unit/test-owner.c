/*
 * test-owner.c - docs/architecture.md, "Credentials": every layer access runs under the export
 * owner's captured credentials. An export whose owner is "nobody" cannot
 * read a lower file nobody cannot read, nor write where nobody cannot,
 * whoever the client is; an export owned by root can. Needs root (to
 * act as another user); skips with a reason otherwise.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovlnfsd/overlay.h"
#include "unit.h"

static char root[128];

static struct onfs_export *open_ex(const char *owner, const char *name)
{
	struct onfs_export_conf c = { 0 };
	struct onfs_export *ex = NULL;
	char l[200], u[200], w[200], err[512];

	snprintf(l, sizeof(l), "%s/l", root);
	snprintf(u, sizeof(u), "%s/u-%s", root, name);
	snprintf(w, sizeof(w), "%s/w-%s", root, name);
	c.name = (char *)name;
	c.path = "/";
	c.lowerdir[0] = l;
	c.nlower = 1;
	c.upperdir = u;
	c.workdir = w;
	c.owner = (char *)owner;
	if (onfs_export_open(&c, root, &ex, err, sizeof(err)) < 0) {
		fprintf(stderr, "export: %s\n", err);
		exit(1);
	}
	return ex;
}

int main(void)
{
	struct onfs_export *ex;
	struct onfs_node *r, *n;
	struct onfs_who who = { 0, 0 };
	char buf[64], cmd[512];
	bool eof;

	if (geteuid() != 0 || !getpwnam("nobody")) {
		printf("SKIP: test-owner needs root and a 'nobody' user\n");
		return 77;
	}
	snprintf(root, sizeof(root), "/tmp/onfs-own-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && chmod 755 . && mkdir -p l u-root w-root u-nobody w-nobody && "
		 "echo secret > l/secret && chmod 600 l/secret && echo pub > l/pub && "
		 "chmod 644 l/pub && chown nobody u-nobody w-nobody", root);
	if (system(cmd) != 0)
		return 1;

	/* owned by nobody: the layers are touched as nobody */
	ex = open_ex("nobody", "nobody");
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(onfs_lookup(ex, r, "secret", &n) == 0);
	CHECK(onfs_read(ex, n, 0, buf, sizeof(buf), &eof) == -EACCES);
	onfs_node_put(n);
	CHECK(onfs_lookup(ex, r, "pub", &n) == 0);
	CHECK(onfs_read(ex, n, 0, buf, sizeof(buf), &eof) == 4);
	/* a copy-up of a file nobody may read fails, nothing appears */
	struct onfs_sattr sa = { .set_mode = true, .mode = 0644 };
	onfs_node_put(n);
	CHECK(onfs_lookup(ex, r, "secret", &n) == 0);
	CHECK(onfs_setattr(ex, n, &sa, NULL, NULL) == -EACCES);
	onfs_node_put(n);
	snprintf(cmd, sizeof(cmd), "test ! -e %s/u-nobody/secret", root);
	CHECK(system(cmd) == 0);
	onfs_node_put(r);
	onfs_export_close(ex);

	/* owned by root (the process): the same reads work */
	ex = open_ex(NULL, "root");
	CHECK(onfs_root(ex, &r) == 0);
	CHECK(onfs_lookup(ex, r, "secret", &n) == 0);
	CHECK(onfs_read(ex, n, 0, buf, sizeof(buf), &eof) == 7);
	onfs_node_put(n);
	who.uid = 1234;
	who.gid = 1234;
	CHECK(onfs_create(ex, r, "new", ONFS_CREATE_GUARDED, NULL, NULL, &who, &n, NULL) == 0);
	onfs_node_put(n);
	snprintf(cmd, sizeof(cmd), "test \"$(stat -c %%u:%%g %s/u-root/new)\" = 1234:1234", root);
	CHECK(system(cmd) == 0);
	onfs_node_put(r);
	onfs_export_close(ex);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: cleanup failed\n");
	return unit_finish("owner");
}
