/*
 * nfsclient.h - synchronous wrappers over the libnfs raw API (NFSv3, MOUNT
 * v3, PMAP v2) for the integration and oracle tests: one TCP connection to
 * the server's single port, each call waits (bounded) for its reply and
 * copies what the test needs out of libnfs's buffers.
 *
 * Includes libnfs headers: never include this next to rpcgen's "nfs3.h".
 * Runs in the test process only.
 */
#ifndef OVLNFSD_TEST_NFSCLIENT_H
#define OVLNFSD_TEST_NFSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-portmap.h>

/* A handle as bytes; room for more than 64 so tests can forge long ones. */
struct tl_fh {
	uint32_t len;
	uint8_t data[128];
};

struct tl_client {
	struct rpc_context *rpc; /* owned */
	int port;
	char err[512];           /* last RPC-level error */
};

/* Connect to 127.0.0.1:port (asserts). uid/gid for AUTH_SYS: 0/0 unless set. */
void tl_client_connect(struct tl_client *c, int port);
void tl_client_close(struct tl_client *c);
/* AUTH_SYS identity for later calls. */
void tl_client_set_ids(struct tl_client *c, int uid, int gid);

/*
 * Every call returns the procedure's status (nfsstat3 / mountstat3, >= 0),
 * or -1 when the call failed at the RPC level (the reason in c->err: a
 * denied or non-SUCCESS accepted reply, a closed connection, a timeout).
 */
int tl_nfs_null(struct tl_client *c);
int tl_nfs_getattr(struct tl_client *c, const struct tl_fh *fh, fattr3 *attr);
/* attr may be NULL; out may be NULL. */
int tl_nfs_lookup(struct tl_client *c, const struct tl_fh *dir, const char *name,
		  struct tl_fh *out, fattr3 *attr);
int tl_nfs_access(struct tl_client *c, const struct tl_fh *fh, uint32_t want,
		  uint32_t *granted);
/* Copies the target NUL-terminated into buf. */
int tl_nfs_readlink(struct tl_client *c, const struct tl_fh *fh, char *buf, size_t len);
/* buf must hold count bytes; *got gets the byte count, *eof the flag. */
int tl_nfs_read(struct tl_client *c, const struct tl_fh *fh, uint64_t off, uint32_t count,
		void *buf, uint32_t *got, bool *eof);

struct tl_dirent {
	char *name;       /* owned */
	uint64_t fileid;
	uint64_t cookie;
	bool has_attr;    /* READDIRPLUS only */
	fattr3 attr;
	bool has_fh;
	struct tl_fh fh;
};

struct tl_dirpage {
	struct tl_dirent *e; /* owned */
	size_t n;
	uint8_t verf[8];
	bool eof;
};

int tl_nfs_readdir(struct tl_client *c, const struct tl_fh *dir, uint64_t cookie,
		   const uint8_t verf[8], uint32_t count, struct tl_dirpage *out);
int tl_nfs_readdirplus(struct tl_client *c, const struct tl_fh *dir, uint64_t cookie,
		       const uint8_t verf[8], uint32_t dircount, uint32_t maxcount,
		       struct tl_dirpage *out);
void tl_dirpage_free(struct tl_dirpage *p);

int tl_nfs_fsstat(struct tl_client *c, const struct tl_fh *fh, FSSTAT3resok *out);
int tl_nfs_fsinfo(struct tl_client *c, const struct tl_fh *fh, FSINFO3resok *out);
int tl_nfs_pathconf(struct tl_client *c, const struct tl_fh *fh, PATHCONF3resok *out);

/* Mutating procedures: only the status is kept. */
int tl_nfs_setattr_mode(struct tl_client *c, const struct tl_fh *fh, uint32_t mode);
int tl_nfs_write(struct tl_client *c, const struct tl_fh *fh, uint64_t off,
		 const void *data, uint32_t len);
int tl_nfs_create(struct tl_client *c, const struct tl_fh *dir, const char *name);
int tl_nfs_mkdir(struct tl_client *c, const struct tl_fh *dir, const char *name);
int tl_nfs_symlink(struct tl_client *c, const struct tl_fh *dir, const char *name,
		   const char *target);
int tl_nfs_mknod_fifo(struct tl_client *c, const struct tl_fh *dir, const char *name);
int tl_nfs_remove(struct tl_client *c, const struct tl_fh *dir, const char *name);
int tl_nfs_rmdir(struct tl_client *c, const struct tl_fh *dir, const char *name);
int tl_nfs_rename(struct tl_client *c, const struct tl_fh *from, const char *fname,
		  const struct tl_fh *to, const char *tname);
int tl_nfs_link(struct tl_client *c, const struct tl_fh *file, const struct tl_fh *dir,
		const char *name);
int tl_nfs_commit(struct tl_client *c, const struct tl_fh *fh);

/* MOUNT v3. flavors may be NULL. */
int tl_mnt(struct tl_client *c, const char *path, struct tl_fh *out, int *flavors,
	   int *nflavors, int maxflavors);
int tl_mount_null(struct tl_client *c);
/* dirs: malloc'd array of malloc'd strings (free with tl_strv_free). */
int tl_mount_export(struct tl_client *c, char ***dirs, int *n);
int tl_mount_dump(struct tl_client *c, int *n);
int tl_umnt(struct tl_client *c, const char *path);
int tl_umntall(struct tl_client *c);
void tl_strv_free(char **v, int n);

/* PMAP v2 GETPORT (prot 6 tcp, 17 udp). */
int tl_pmap_getport(struct tl_client *c, uint32_t prog, uint32_t vers, uint32_t prot,
		    uint32_t *port);

/* Connect and MNT "/" (or path): the common first step of a case. */
void tl_client_mount(struct tl_client *c, int port, const char *path, struct tl_fh *root);

/* LOOKUP each component of a slash-separated path from dir. Returns the
 * first non-OK status. */
int tl_nfs_walk(struct tl_client *c, const struct tl_fh *dir, const char *path,
		struct tl_fh *out, fattr3 *attr);

/*
 * High-level libnfs context mounted on 127.0.0.1:port at path (asserts),
 * with reconnects off and a per-call timeout, so that a dead server fails
 * the case instead of hanging it. Close with tl_hl_close.
 */
struct nfs_context *tl_hl_mount(int port, const char *path);
void tl_hl_close(struct nfs_context *nfs);

const char *tl_nfsstat_name(int st);

#define ASSERT_NFS(call, want)                                                   \
	do {                                                                     \
		int _st = (call);                                                \
		int _w = (want);                                                 \
		if (_st != _w)                                                   \
			tl_fail(__FILE__, __LINE__, "%s: got %s, want %s", #call, \
				tl_nfsstat_name(_st), tl_nfsstat_name(_w));      \
	} while (0)

#endif
