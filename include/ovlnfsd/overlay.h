/*
 * overlay.h - the merged view of one export instance: layers, handles,
 * lookup, attributes, reads and readdir (server/overlay/).
 *
 * Every function here may block on the filesystem: call them from pool
 * workers only, never from the loop thread. They are thread-safe; nodes are
 * refcounted and immutable once built. Errors are negative errno values,
 * plus the ONFS_E* values of common.h. Nothing here knows about XDR or RPC.
 *
 * Layer numbering inside an export: layer 0 is the upper layer when the
 * export has one, then the lowers top-down (lowerdir's leftmost first).
 */
#ifndef OVLNFSD_OVERLAY_H
#define OVLNFSD_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/statvfs.h>
#include <time.h>

#include "ovlnfsd/config.h"

#define ONFS_FH_MAX 64

struct onfs_export;
struct onfs_node;

/* An encoded NFS file handle (version, fs index, export id, fh, MAC). */
struct onfs_fh {
	uint32_t len;
	uint8_t data[ONFS_FH_MAX];
};

/* Attributes of a merged object, as the client sees them. */
struct onfs_attr {
	uint32_t mode;   /* S_IFMT type bits | permission bits */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;
	uint64_t used;   /* bytes allocated */
	uint32_t rdev_major, rdev_minor;
	uint64_t fsid;   /* one per export */
	uint64_t fileid; /* origin inode, xino style; stable across copy-up */
	struct timespec atime, mtime, ctime;
};

/* --- export instance (export.c) --- */

/*
 * Open the layers of one export line, load or create its handle key and
 * id, and report the handle mode in force. Returns 0 or -1 with err naming
 * the path or option at fault.
 */
int onfs_export_open(const struct onfs_export_conf *conf, const char *state_dir,
		     struct onfs_export **out, char *err, size_t errlen);
void onfs_export_close(struct onfs_export *ex);

const char *onfs_export_path(const struct onfs_export *ex); /* what clients mount */
const char *onfs_export_name(const struct onfs_export *ex);
uint16_t onfs_export_id(const struct onfs_export *ex);
uint64_t onfs_export_fsid(const struct onfs_export *ex);
/* True when mutations must answer NFS3ERR_ROFS. */
bool onfs_export_readonly(const struct onfs_export *ex);
/* The instance's NLM lock table (lock.h; thread-safe); never NULL once open. */
struct onfs_lock_table *onfs_export_locks(const struct onfs_export *ex);

/* --- per-client instances of a templated line (instance.c) --- */

#define ONFS_CLIENT_MACHINE_MAX 255

/* Who a call comes from, as the instance rules see it. */
struct onfs_client_id {
	char addr[64];      /* the {client} form of its address */
	char machine[ONFS_CLIENT_MACHINE_MAX + 1]; /* AUTH_SYS machine name, "" if none */
	size_t machine_len;
};

/* A line whose upperdir is a template: it serves only through instances. */
bool onfs_export_templated(const struct onfs_export *ex);
/* ONFS_TMPL_* of a templated line, else 0. */
unsigned onfs_export_template_kind(const struct onfs_export *ex);
/* The line an instance belongs to (its access rules), else ex itself. */
const struct onfs_export *onfs_export_line_of(const struct onfs_export *ex);

/*
 * MNT of a templated line: the instance for this client (name: the
 * {name} component of the mounted path), created and recorded if new.
 * -EACCES for a value that is not allowed or over max_instances (both
 * logged). On success the call is counted in: onfs_instance_leave after.
 * for_write makes sure the upper exists (a mutating call).
 */
int onfs_instance_for_mount(struct onfs_export *line, const struct onfs_client_id *who,
			    const char *name, bool for_write, struct onfs_export **out);
/*
 * The instance a handle's export id names, if who belongs to it (same
 * address for {client}, same machine name for {host}, a recorded mount of
 * that name by this address and machine name for {name}); -ESTALE else.
 * Counted in as above.
 */
int onfs_instance_enter_id(uint16_t id, const struct onfs_client_id *who, bool for_write,
			   struct onfs_export **out);
void onfs_instance_leave(struct onfs_export *ex);
/*
 * Loop thread: the same, for reads only and without ever waiting: the
 * instance is counted in only if it is live and no reset, rebase or
 * deactivation is under way; -EAGAIN otherwise, and for {name} lines
 * (their membership test takes the line's lock): the caller then queues
 * the call for a worker, which takes the usual way.
 */
int onfs_instance_try_enter_id(uint16_t id, const struct onfs_client_id *who,
			       struct onfs_export **out);
/*
 * A call into a plain export counts itself in (a reset or commit waits for
 * it to leave, with onfs_instance_leave); -EAGAIN when one ran for 2 s.
 */
int onfs_export_enter(struct onfs_export *ex);
/* Does the instance have its upper (or will never get one)? */
bool onfs_instance_settled(const struct onfs_export *ex);
/* One log line: the template, instances on record and live, limits. */
void onfs_instance_log(const struct onfs_export *line);

/* --- handles (handle.c) --- */

/*
 * Read the export id out of a handle without trusting it (the MAC is
 * checked by onfs_node_from_fh). Returns 0 or -ONFS_EBADHANDLE.
 */
int onfs_fh_export_id(const uint8_t *fh, size_t len, uint16_t *id);

/*
 * Resolve a handle of this export. -ONFS_EBADHANDLE for a wrong length or
 * version; -ESTALE for a failed MAC, another export's handle, or an object
 * that is gone or no longer visible in the merged view.
 */
int onfs_node_from_fh(struct onfs_export *ex, const uint8_t *fh, size_t len,
		      struct onfs_node **out);
const struct onfs_fh *onfs_node_fh(const struct onfs_node *n);
/*
 * The lock-table key of the object n names: its identity (the origin's
 * underlying handle), which copy-up and rename leave unchanged.
 */
struct onfs_lock_key;
void onfs_node_lock_key(const struct onfs_node *n, struct onfs_lock_key *k);
/*
 * The node of a handle if the export's node cache has it, touching memory
 * only (the loop thread may call it): 0, -ENOENT when not cached (resolve
 * it on a worker with onfs_node_from_fh), or the errors of a bad handle.
 */
int onfs_node_from_fh_cached(struct onfs_export *ex, const uint8_t *fh, size_t len,
			     struct onfs_node **out);
/*
 * Forget everything the export instance caches (nodes, directory
 * snapshots, attributes); anything being read concurrently is voided too.
 * For a change of the layer stack or anything else no generation covers.
 */
void onfs_export_caches_flush(struct onfs_export *ex);

struct onfs_node *onfs_node_get(struct onfs_node *n);
void onfs_node_put(struct onfs_node *n);

/* S_IFMT bits of the merged object. */
uint32_t onfs_node_type(const struct onfs_node *n);
/* Merged path relative to the export root, "" for the root (for logs). */
const char *onfs_node_path(const struct onfs_node *n);

/* --- lookup (lookup.c) --- */

int onfs_root(struct onfs_export *ex, struct onfs_node **out);

/*
 * Look a name up in a merged directory. "." is dir itself; ".." is its
 * parent, and the root's parent is the root. -ENOTDIR when dir is not a
 * directory, -ENOENT, -ENAMETOOLONG (> NAME_MAX), -EACCES for a name
 * containing '/' or an empty name.
 */
int onfs_lookup(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		struct onfs_node **out);

/*
 * Walk a slash-separated path relative to the export root ("" or "/" is
 * the root), for MOUNT. No symlink is followed. -ENOENT, -ENOTDIR.
 */
int onfs_walk(struct onfs_export *ex, const char *path, struct onfs_node **out);

/*
 * A lookup answered from the lookup cache (dcache.c), touching memory only
 * (the loop thread may call it): dfh is the directory's handle (checked
 * by the caller, its node in the node cache). 0 and the child's node when
 * a lookup since the last namespace change made through the export, at
 * most 0.9 s ago, found it and the node cache still has it; -ENOENT when
 * such a lookup found no such name; -EAGAIN when nothing is known (ask
 * onfs_lookup on a worker). "." and ".." are never cached.
 */
int onfs_lookup_cached(struct onfs_export *ex, const uint8_t *dfh, size_t dlen, const char *name,
		       struct onfs_node **out);

/* --- attributes and data (inode.c) --- */

int onfs_getattr(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *attr);
/*
 * The attributes last read by onfs_getattr (or READDIRPLUS) if no change
 * was made through the export since and they are at most 1 s old; memory
 * only (the loop thread may call it). false: ask onfs_getattr.
 */
bool onfs_getattr_cached(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *attr);

/* Symlink target into buf (not NUL-terminated); returns its length or
 * -EINVAL when n is not a symlink, -ENAMETOOLONG when cap is too small. */
ssize_t onfs_readlink(struct onfs_export *ex, struct onfs_node *n, char *buf, size_t cap);

/*
 * Read up to count bytes at off. Returns the byte count (short only at end
 * of file) and sets *eof when the read reached the end of the file.
 * -EISDIR for a directory, -EINVAL for other non-regular files.
 */
ssize_t onfs_read(struct onfs_export *ex, struct onfs_node *n, uint64_t off,
		  void *buf, size_t count, bool *eof);

/* statvfs of the layer the writes go to (upper, else the top lower). */
int onfs_statvfs(struct onfs_export *ex, struct onfs_node *n, struct statvfs *st);

/* --- readdir (readdir.c) --- */

struct onfs_dirent {
	const char *name;
	size_t namelen;
	uint64_t cookie; /* position AFTER this entry: resume from here */
	uint64_t fileid; /* equals GETATTR's fileid of the entry */
	/*
	 * onfs_readdirplus only, when plus is set: the entry's node (NULL if
	 * it vanished since the listing was taken) and its attributes (NULL
	 * if they could not be read). Borrowed for the callback's duration.
	 * plus unset ("." and ".."): the caller looks the entry up itself.
	 */
	bool plus;
	struct onfs_node *node;
	const struct onfs_attr *attr;
};

/*
 * Return 0 to take the entry and go on, 1 to stop WITHOUT taking it (the
 * reply is full), or a negative errno to abort.
 */
typedef int (*onfs_readdir_cb)(void *ctx, const struct onfs_dirent *de);

/*
 * List a merged directory from cookie (0: from the start; "." and ".." come
 * first). verf_in is the client's cookie verifier (all zero is accepted);
 * verf_out receives this directory's current verifier. *eof is set when
 * the listing ended without the callback stopping it.
 * -ENOTDIR, -ONFS_EBADCOOKIE for a cookie this directory cannot resume.
 * Cookies are stable positions: a listing interrupted by creates and
 * removes returns every surviving name exactly once.
 */
int onfs_readdir(struct onfs_export *ex, struct onfs_node *dir, uint64_t cookie,
		 const uint8_t verf_in[8], uint8_t verf_out[8], onfs_readdir_cb cb,
		 void *ctx, bool *eof);
/* The same with each entry's node and attributes (struct onfs_dirent plus). */
int onfs_readdirplus(struct onfs_export *ex, struct onfs_node *dir, uint64_t cookie,
		     const uint8_t verf_in[8], uint8_t verf_out[8], onfs_readdir_cb cb,
		     void *ctx, bool *eof);

/* --- the write path (copyup.c, dirops.c, data.c) ---
 *
 * Every change is made in the upper layer under the export owner's
 * credentials: lower objects are copied up first, removals of lower names
 * leave whiteouts, multi-step changes are prepared in workdir/work and
 * renamed into place. Permission checks against the CLIENT's identity are
 * the caller's (perm.h); these functions only enforce the overlay rules.
 * All return -EROFS on a read-only export.
 */

/* The owner of a created object: the client's (squashed) uid and gid. */
struct onfs_who {
	uint32_t uid, gid;
};

enum onfs_time_how { ONFS_TIME_KEEP = 0, ONFS_TIME_NOW, ONFS_TIME_SET };

/* What SETATTR (and CREATE/MKDIR/... initial attributes) change. */
struct onfs_sattr {
	bool set_mode, set_uid, set_gid, set_size;
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	uint64_t size;
	enum onfs_time_how atime_how, mtime_how;
	struct timespec atime, mtime;
};

/* Weak cache consistency data of one object around a change. */
struct onfs_wcc {
	bool have_pre;       /* pre-op attributes, taken under the object's lock */
	uint64_t pre_size;
	struct timespec pre_mtime, pre_ctime;
	bool have_post;
	struct onfs_attr post;
};

/*
 * SETATTR. guard_ctime (NULL: no guard) must equal the object's ctime or
 * the call fails with -ONFS_ENOTSYNC. A size change of a directory is
 * -EISDIR; of another non-regular file -EINVAL.
 */
int onfs_setattr(struct onfs_export *ex, struct onfs_node *n, const struct onfs_sattr *sa,
		 const struct timespec *guard_ctime, struct onfs_wcc *wcc);

enum onfs_stable { ONFS_UNSTABLE = 0, ONFS_DATA_SYNC = 1, ONFS_FILE_SYNC = 2 };

/* WRITE: returns the bytes written; DATA_SYNC/FILE_SYNC really sync. */
ssize_t onfs_write(struct onfs_export *ex, struct onfs_node *n, uint64_t off, const void *buf,
		   size_t count, enum onfs_stable stable, struct onfs_wcc *wcc);
/* COMMIT: fsync the object (a failure changes the write verifier). */
int onfs_commit(struct onfs_export *ex, struct onfs_node *n, struct onfs_wcc *wcc);
/* The export's write verifier: new at every start and after a lost write. */
void onfs_write_verf(struct onfs_export *ex, uint8_t verf[8]);

enum onfs_create_how { ONFS_CREATE_UNCHECKED = 0, ONFS_CREATE_GUARDED, ONFS_CREATE_EXCLUSIVE };

/*
 * CREATE of a regular file. UNCHECKED on an existing regular file applies
 * sa (a size of 0 truncates) and succeeds; GUARDED on an existing name is
 * -EEXIST; EXCLUSIVE stores verf in the times (as knfsd) so that a
 * retransmission with the same verifier succeeds and another is -EEXIST.
 */
int onfs_create(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		enum onfs_create_how how, const struct onfs_sattr *sa, const uint8_t verf[8],
		const struct onfs_who *who, struct onfs_node **out, struct onfs_wcc *dir_wcc);
int onfs_mkdir(struct onfs_export *ex, struct onfs_node *dir, const char *name,
	       const struct onfs_sattr *sa, const struct onfs_who *who, struct onfs_node **out,
	       struct onfs_wcc *dir_wcc);
int onfs_symlink(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		 const char *target, const struct onfs_sattr *sa, const struct onfs_who *who,
		 struct onfs_node **out, struct onfs_wcc *dir_wcc);
/* MKNOD: type is S_IFCHR, S_IFBLK, S_IFIFO or S_IFSOCK. */
int onfs_mknod(struct onfs_export *ex, struct onfs_node *dir, const char *name, uint32_t type,
	       uint32_t major, uint32_t minor, const struct onfs_sattr *sa,
	       const struct onfs_who *who, struct onfs_node **out, struct onfs_wcc *dir_wcc);
/* REMOVE of a non-directory (-EISDIR for a directory). */
int onfs_remove(struct onfs_export *ex, struct onfs_node *dir, const char *name,
		struct onfs_wcc *dir_wcc);
/* RMDIR: -ENOTEMPTY unless empty in the merged view; -ENOTDIR; "." -EINVAL. */
int onfs_rmdir(struct onfs_export *ex, struct onfs_node *dir, const char *name,
	       struct onfs_wcc *dir_wcc);
/*
 * RENAME, with Linux rename(2) semantics on the merged view: over an
 * existing target of a compatible type, -EINVAL for a directory into its
 * own subtree, a no-op for a name onto the same object.
 */
int onfs_rename(struct onfs_export *ex, struct onfs_node *fdir, const char *fname,
		struct onfs_node *tdir, const char *tname, struct onfs_wcc *fwcc,
		struct onfs_wcc *twcc);
/* LINK: a new name for a non-directory. */
int onfs_link(struct onfs_export *ex, struct onfs_node *n, struct onfs_node *dir,
	      const char *name, struct onfs_wcc *dir_wcc);

#endif
