/*
 * internal.h - private to the files of server/overlay/: the export instance, layers,
 * nodes and the on-disk names of overlayfs. Nothing outside server/overlay/
 * includes this file.
 *
 * Threads: struct onfs_export is immutable after onfs_export_open except
 * for the caches, which carry their own mutexes. Nodes are immutable once
 * published; only their refcount and lazily opened fd change (atomics).
 */
#ifndef OVLNFSD_OVERLAY_INTERNAL_H
#define OVLNFSD_OVERLAY_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/overlay.h"

#define ONFS_MAX_LAYERS (ONFS_MAX_LOWER + 1)

/*
 * Handle layout (all inside ONFS_FH_MAX = 64 bytes):
 *   [0]      version (ONFS_FH_VERSION)
 *   [1]      fs index of the identity object (0..numfs-1)
 *   [2..3]   export id, big endian
 *   [4]      fh_type of the underlying handle (name_to_handle_at)
 *   [5]      length N of the underlying handle
 *   [6..6+N) underlying handle bytes
 *   [6+N..)  8-byte MAC: SipHash-2-4 under the export key over [0..6+N)
 * No boot time, st_dev or mount id: a handle survives restarts.
 */
#define ONFS_FH_VERSION 1
#define ONFS_FH_HDR 6
#define ONFS_FH_MAC 8
#define ONFS_FID_MAX (ONFS_FH_MAX - ONFS_FH_HDR - ONFS_FH_MAC)

/* The identity of an object: its origin's underlying handle. */
struct onfs_ident {
	uint8_t fsidx;
	uint8_t type;
	uint8_t len;
	uint8_t fid[ONFS_FID_MAX];
};

static inline bool onfs_ident_eq(const struct onfs_ident *a, const struct onfs_ident *b)
{
	return a->fsidx == b->fsidx && a->type == b->type && a->len == b->len &&
	       memcmp(a->fid, b->fid, a->len) == 0;
}

struct onfs_layer {
	char *path;      /* owned; as configured */
	char *real;      /* owned; realpath, for locating decoded handles */
	int fd;          /* owned; O_RDONLY|O_DIRECTORY on the layer root */
	uint8_t fsidx;   /* which filesystem (index into export fs_fd) */
	bool upper;
	/*
	 * A layer made by `ovlnfsctl commit` from this export's upper
	 * (commit.c): read-only now, but its objects keep the identity they
	 * had in the upper (an origin xattr counts, a directory's identity is
	 * its original lower part, else its oldest committed part). Owned by
	 * the export (an instance too), never by a templated line.
	 */
	bool committed;
	/*
	 * A committed layer: "NAME INO" lines (commit.c), the index entries of
	 * copied-up lower files that no longer show at their lower path and
	 * the inode of their copy in this layer; owned, NULL when none.
	 */
	char *moved;
};

/* Was layer i an upper of this export (the upper, or a committed one)? */
#define ONFS_LAYER_WAS_UPPER(ex, i) ((ex)->layers[(i)].upper || (ex)->layers[(i)].committed)

/* The export owner's captured credentials (creds.c). */
struct onfs_owner {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	size_t ngroups;
	bool process; /* the same as the server process's own */
};

/*
 * Cache generations (cache.c). gen_ns is bumped by every namespace change
 * made through the export (anything done under ns_lock: create, remove,
 * rename, link, copy-up): every cached lookup and attribute taken before
 * it is void. gen_obj[] is bumped, per slot of an object's handle, by a
 * change of that object's data or attributes (WRITE, SETATTR). A reader
 * loads the generations BEFORE it reads the disk and stores them with
 * what it read; a writer bumps AFTER its change: a cached value whose
 * generations are still current was read after the last change.
 */
#define ONFS_GEN_SLOTS 1024
#define ONFS_ATTR_LOCKS 16
/*
 * How long attributes read from disk (and nodes resolved from it) are
 * served without looking again: a change made directly on a layer shows
 * within 1 s (this, plus the time to answer), below the Linux client's
 * smallest default attribute cache time (acregmin 3 s).
 */
#define ONFS_ATTR_TTL_NS 900000000ULL

struct onfs_gen {
	unsigned ns, obj;
	unsigned data; /* gen_data: onfs_gen_begin/onfs_gen_since only */
};

struct onfs_node_cache; /* handle.c */
struct onfs_idmap;      /* idmap.c */
struct onfs_dir_cache;  /* readdir.c */
struct onfs_dcache;     /* dcache.c */

struct onfs_export {
	char *name;          /* owned */
	char *path;          /* owned; the mount path clients use */
	uint16_t id;
	uint64_t fsid;
	bool readonly;
	bool has_upper;      /* layers[0] is the upper layer */
	bool by_handle;      /* open_by_handle_at works: handles survive restarts */
	bool work_ok;        /* work area locked and scrubbed: mutations possible */
	int lock_fd;         /* owned; flock'ed workdir/ovlnfsd/lock, -1 if none */
	int work_fd;         /* owned; workdir/work, -1 if none */
	int index_fd;        /* owned; workdir/index, -1 if none */
	/*
	 * index/ may hold something (found at startup, or set before this
	 * server links a copy-up into it): only then does a lookup of a lower
	 * non-directory probe index/ for an upper copy (one fstatat per entry
	 * of a listing saved while the index is empty).
	 */
	atomic_bool index_used;
	atomic_uint tmp_counter; /* temp names "#%x" in work/ */
	atomic_bool no_tmpfile;  /* set by workdir.c's probe: named temps only */
	/*
	 * Locks of the write path. ns_lock serialises namespace changes of the
	 * export (create, remove, rename, link, the final rename of a copy-up);
	 * obj_lock[] stripes by identity so an object is copied up once and its
	 * pre-op attributes are taken atomically with its change. Order:
	 * obj_lock before ns_lock. Reads take neither.
	 */
	pthread_mutex_t ns_lock;
	pthread_mutex_t obj_lock[64];
	uint8_t fs_uuid[ONFS_MAX_LAYERS][16];
	struct onfs_owner owner; /* captured at setup; every layer access runs as it */
	struct onfs_idmap *idmap; /* owned; rootless handle mode only, else NULL */
	bool no_chown;       /* the owner cannot chown: owners live in user.ovlnfsd.owner */
	uint8_t write_verf[8];
	pthread_mutex_t verf_lock;
	struct onfs_layer layers[ONFS_MAX_LAYERS];
	size_t nlayers;
	int fs_fd[ONFS_MAX_LAYERS]; /* not owned: a layer fd on each filesystem */
	dev_t fs_dev[ONFS_MAX_LAYERS];
	size_t numfs;
	unsigned xino_shift; /* 0: one filesystem, inode numbers used as they are */
	uint8_t key[16];     /* handle MAC and cookie key, persistent */
	char xattr_prefix[20]; /* "trusted.overlay." or "user.overlay." */
	struct onfs_node_cache *nodes; /* owned */
	struct onfs_dir_cache *dirs;   /* owned */
	struct onfs_dcache *dcache;    /* owned; an instance borrows its line's */
	/*
	 * Per-client instances (instance.c). A templated line's own object
	 * (tmpl set) never serves: it holds the shared lowers and the line's
	 * key. An instance (line set) borrows them and owns layers[0], its
	 * work area and caches; layers[0].fd is -1 until its upper exists
	 * (lookups then skip layer 0; the numbering stays the same).
	 */
	struct onfs_inst_line *tmpl;  /* owned; a templated line: its instances */
	struct onfs_export *line;     /* not owned; an instance: its line's object */
	char *inst_value;             /* owned; the placeholder's value */
	char *inst_upper, *inst_work; /* owned; the expanded directories */
	int tmpl_parent_fd;           /* line: owned; the upper template's parent, -1 */
	pthread_mutex_t inst_lock;    /* activation, creation of the upper, release */
	atomic_bool quiesce;          /* inst_lock holder waits for active == 0 */
	atomic_bool live;             /* caches (and an existing upper) open */
	atomic_bool settled;          /* the upper exists, or never will (read-only) */
	atomic_int active;            /* calls inside the instance */
	atomic_llong last_use;        /* monotonic seconds of the last call */
	char *stack_file;   /* owned; STATE/.../stack: committed layers (commit.c); NULL none */
	/*
	 * Base moves (base.c, plain exports): a new lowerdir given on SIGHUP
	 * waits in pend[] while the upper holds content made against the old
	 * one (pinned), until a reset or `ovlnfsctl rebase --force`. Lowers
	 * taken out of use stay open in retired[] (fs_fd[] may point at one,
	 * a listing may still read a path) until the export closes.
	 */
	struct onfs_layer pend[ONFS_MAX_LOWER]; /* owned */
	size_t npend;
	struct onfs_layer *retired;             /* owned */
	size_t nretired;
	atomic_uint base_version;               /* 1 at open, +1 per move */
	/*
	 * The root's identity and fileid, fixed at the first base move (and
	 * kept in STATE/.../stack.root): the root is the one object every
	 * client holds, and it must not go STALE when the lowers change.
	 */
	bool root_fixed;
	struct onfs_ident root_ident;
	uint64_t root_ino;
	struct onfs_lock_table *locks; /* owned; NLM byte-range locks (server/lock.c) */
	atomic_uint gen_ns;            /* cache.c: see struct onfs_gen */
	atomic_uint gen_obj[ONFS_GEN_SLOTS];
	atomic_uint gen_data;          /* bumped with any gen_obj[] slot */
	/*
	 * Bumped (under ns_lock, after the change) when a directory is
	 * removed or moved through the export: a node born under the same
	 * value still names what its path names (copy-up's fast path). A new
	 * directory changes no existing path: a name it takes was absent, or
	 * a whiteout whose removal bumped already.
	 */
	atomic_uint gen_dirs;
	pthread_mutex_t attr_lock[ONFS_ATTR_LOCKS]; /* guard nodes' cattr */
};

/* parts[].layer of an object reached through workdir/index (path unknown) */
#define ONFS_LAYER_INDEX 255

/* One layer's part of a merged object: the path inside that layer. */
struct onfs_part {
	uint8_t layer;
	char *rel;      /* owned; "" is the layer root */
};

struct onfs_node {
	atomic_int ref;
	atomic_int fd;  /* lazily opened descriptor of parts[0], -1 if none */
	atomic_int wfd; /* lazily opened O_RDWR descriptor of an upper regular file */
	struct onfs_fh fh;
	struct onfs_ident ident;
	uint32_t type;  /* S_IFMT */
	uint64_t fileid;
	char *path;     /* owned; merged path, "" for the root */
	bool impure;    /* upper dir part may hold entries with an origin */
	bool ident_lower; /* the identity (origin) is a lower object */
	bool unnamed;   /* reached through the index: path unknown, non-dir only */
	bool wh_xattr;  /* a part is marked opaque=x: xattr whiteouts inside */
	/* cache.c: the attributes last read, under ex->attr_lock[] */
	bool cattr_ok;
	struct onfs_gen cattr_gen;
	uint64_t cattr_at;        /* monotonic ns of the read */
	uint64_t top_ino;         /* inode number of parts[0] when looked up, 0 unknown */
	uint64_t born;            /* monotonic ns of the lookup that made it */
	unsigned born_dgen;       /* ex->gen_dirs loaded before that lookup read */
	/*
	 * ex->gen_ns loaded before that lookup read; born_gen_ok: a merged
	 * lookup made it in a parent that was itself current (the root, or a
	 * born_gen_ok parent whose born_gen was still current then). A
	 * lookup in this directory is cached (dcache.c) only while gen_ns is
	 * still born_gen: its parts are not outdated by a namespace change
	 * made through the export since (a copy-up of the directory or of an
	 * ancestor, a move of one of them).
	 */
	unsigned born_gen;
	bool born_gen_ok;
	struct onfs_attr cattr;
	uint8_t nparts;
	struct onfs_part parts[]; /* top layer first */
};

/* --- instance.c --- */
/* Register a templated line (export.c, at the end of onfs_export_open). */
int onfs_inst_line_open(struct onfs_export *line, const struct onfs_export_conf *conf,
			const char *key_dir, char *err, size_t errlen);
void onfs_inst_line_close(struct onfs_export *line);
/* Every export id in use, so instances never take one (export.c). */
void onfs_inst_reserve_id(uint16_t id);

/*
 * Raise quiesce and wait until no call is inside (inst_lock held); false
 * when calls did not drain (wait: within 30 s, else at once). Plain
 * exports count their calls too (onfs_export_enter).
 */
bool onfs_quiesce(struct onfs_export *ex, bool wait);

/* --- commit.c: reset of a plain export, commit, the committed stack --- */
/* Roll a commit cut short by a crash forward (its journal is work/ovlnfsd/commit);
 * before the upper is opened. 0, or -1 with err. */
int onfs_commit_recover(struct onfs_export *ex, const char *upper, const char *work, char *err,
			size_t errlen);
/* Insert the committed layers of ex->stack_file below layer 0. 0, or -1 with err. */
int onfs_stack_open(struct onfs_export *ex, char *err, size_t errlen);
/* Close the committed layers again (an instance going dormant). */
void onfs_stack_close(struct onfs_export *ex);
int onfs_reset_plain(struct onfs_export *ex, char *err, size_t errlen);
/* instance.c: quiesce, go dormant, onfs_commit_disk; the next call activates. */
int onfs_instance_commit(struct onfs_export *ex, const char *layers_dir, const char *layer,
			 char *err, size_t errlen);
/* The disk part of a commit (journal, renames, stack file); quiesced, as the owner.
 * moved: what onfs_commit_prepare returned (may be NULL). */
int onfs_commit_disk(struct onfs_export *ex, const char *upper, const char *work,
		     const char *layers_dir, const char *layer, const char *moved, char *err,
		     size_t errlen);
/* Before a commit, on the live export (quiesced, as the owner): make the
 * upper show what the index showed (link-ups), and list the copied-up
 * files that moved (*moved, owned by the caller). 0, or -1 with err. */
int onfs_commit_prepare(struct onfs_export *ex, char **moved, char *err, size_t errlen);
/* A lower non-directory identity whose copy moved inside a committed layer. */
int onfs_commit_find(struct onfs_export *ex, const struct onfs_ident *id, struct onfs_node **out);

/* --- base.c --- */
/* Move to the waiting base (pend[]); quiesced by the caller or here (lock: take inst_lock). */
int onfs_base_apply(struct onfs_export *ex, bool lock, char *err, size_t errlen);
void onfs_base_free(struct onfs_export *ex);
/* The process-wide lock of base moves, rebases and resets (taken before any inst_lock). */
void onfs_base_lock(bool on);
/* instance.c: a templated line's lock (its instances and inst_new's copy of its layers) */
void onfs_inst_line_lock(struct onfs_export *line, bool lock);
/* At open: the fixed root identity of an earlier base move, if recorded. */
void onfs_base_load_root(struct onfs_export *ex);

/* --- workdir.c --- */
/* A fresh index/ after the upper was replaced (reset, commit): marks, base record. */
int onfs_workdir_renew(struct onfs_export *ex, char *why, size_t whylen);

/* --- fsops.c: thin syscall wrappers, -errno --- */
int onfs_fs_open_beneath(int dirfd, const char *rel, int flags);
int onfs_fs_getxattr(int fd, const char *name, char *buf, size_t cap);
int onfs_fs_getxattr_at(int dirfd, const char *name, const char *xattr, char *buf, size_t cap);
int onfs_fs_name_to_ident(int dirfd, const char *name, struct onfs_ident *id);
int onfs_fs_open_ident(int mountfd, const struct onfs_ident *id, int flags);

/* --- export.c --- */
uint64_t onfs_export_fileid(const struct onfs_export *ex, uint8_t fsidx, uint64_t ino);
/* Full xattr name for an overlay attribute ("opaque", "origin", ...). */
void onfs_ovl_xattr(const struct onfs_export *ex, const char *attr, char *out, size_t cap);

/* --- creds.c --- */
int onfs_owner_capture(struct onfs_owner *o, const char *user, char *err, size_t errlen);
/* Put ex's owner in force on this thread (a no-op when already). */
int onfs_owner_enter(struct onfs_export *ex);

/* --- idmap.c: persistent identity map of rootless handle mode --- */
int onfs_idmap_open(struct onfs_export *ex, const char *dir, char *err, size_t errlen);
void onfs_idmap_close(struct onfs_export *ex);
void onfs_idmap_record(struct onfs_export *ex, const struct onfs_ident *id,
		       const struct onfs_ident *parent, const char *name);
int onfs_idmap_resolve(struct onfs_export *ex, const struct onfs_ident *id, int depth,
		       struct onfs_node **out);

/* --- workdir.c --- */
/*
 * Lock and scrub the work area. Returns -1 with err for a fatal startup
 * error (in use by another server or kernel overlay); 0 otherwise, with
 * ex->work_ok false (and the reason logged) when the export must be
 * served read-only.
 */
int onfs_workdir_setup(struct onfs_export *ex, const char *workdir, char *err, size_t errlen);

/* --- handle.c --- */
void onfs_fh_encode(const struct onfs_export *ex, const struct onfs_ident *id, struct onfs_fh *fh);
int onfs_node_cache_new(struct onfs_node_cache **out);
/* Remember n, replacing an older node of the same handle. */
void onfs_node_cache_put(struct onfs_export *ex, struct onfs_node *n);
void onfs_node_cache_free(struct onfs_node_cache *c);
void onfs_node_free(struct onfs_node *n);

/* --- lookup.c --- */
/* Is this stat (of name in a layer dir) a whiteout? */
bool onfs_is_whiteout(struct onfs_export *ex, int dirfd, const char *name,
		      const struct stat *st, bool wh_xattr);
/* Open parts[0] of a node (O_PATH, beneath its layer root). */
int onfs_node_open(struct onfs_export *ex, struct onfs_node *n, int flags);
int onfs_part_open(struct onfs_export *ex, const struct onfs_part *p, int flags);

/* --- upper.c: every write to the upper layer and work area --- */
void onfs_upper_tmpname(struct onfs_export *ex, char *buf, size_t cap);
int onfs_upper_mkdir(int dirfd, const char *name, mode_t mode);
int onfs_upper_unlink(int dirfd, const char *name, int flags);
int onfs_upper_rename(int fdir, const char *from, int tdir, const char *to, unsigned flags);
int onfs_upper_whiteout_tmp(struct onfs_export *ex, char *tmp, size_t cap);
int onfs_upper_tmpdir(struct onfs_export *ex, char *tmp, size_t cap);
int onfs_upper_setxattr(int fd, const char *name, const void *v, size_t len);
int onfs_upper_set_ovl(struct onfs_export *ex, int fd, const char *attr, const void *v, size_t len);
int onfs_upper_remove_ovl(struct onfs_export *ex, int fd, const char *attr);
void onfs_upper_fs_uuid(int fd, uint8_t uuid[16]);
size_t onfs_upper_encode_fb(const struct onfs_export *ex, const struct onfs_ident *id,
			    bool upper, uint8_t *out);
void onfs_upper_index_name(const struct onfs_export *ex, const struct onfs_ident *id, char *out,
			   size_t cap);
int onfs_upper_mark_impure(struct onfs_export *ex, int dirfd);
#define ONFS_OWNER_XATTR "user.ovlnfsd.owner"
int onfs_upper_tmpfile(struct onfs_export *ex, mode_t mode);
int onfs_upper_link_tmpfile(int fd, int dirfd, const char *name);
int onfs_upper_set_owner(int dirfd, const char *name, uint32_t uid, uint32_t gid, uint32_t mode);
int onfs_owner_xattr_get(int fd, uint32_t *uid, uint32_t *gid, uint32_t *mode);

/* --- copyup.c --- */
/* A directory was removed or moved (ns_lock held, after the change). */
static inline void onfs_changed_dirs(struct onfs_export *ex)
{
	atomic_fetch_add_explicit(&ex->gen_dirs, 1, memory_order_acq_rel);
}
/* The upper directory at a merged path, copying up missing ancestors; ns_lock held. */
int onfs_copyup_dir_path(struct onfs_export *ex, const char *path, int *fd_out);
/* Copy a node up (no-op when it has an upper part); returns the fresh node. */
int onfs_copyup(struct onfs_export *ex, struct onfs_node *n, bool with_data,
		struct onfs_node **out);
pthread_mutex_t *onfs_obj_lock(struct onfs_export *ex, const struct onfs_ident *id);

/*
 * handle.c: where the object open as fd (on filesystem fsidx) lies in the
 * export's layers: *lay and *rel (malloc'd, "" for a layer root). Works
 * for paths longer than PATH_MAX (walking up with ".." from a directory,
 * the memory map for a regular file); -ESTALE when it lies in no layer
 * or cannot be placed.
 */
int onfs_locate(struct onfs_export *ex, uint8_t fsidx, int fd, const struct onfs_layer **lay,
		char **rel);

/* --- handle.c: the descriptor budget of cached node fds --- */
extern atomic_long onfs_fd_cached;
void onfs_fd_budget_init(void);
bool onfs_fd_budget_take(struct onfs_export *ex);
void onfs_fd_budget_give(struct onfs_export *ex);

/* --- handle.c / lookup.c helpers for the write path --- */
void onfs_node_cache_drop(struct onfs_export *ex, const struct onfs_fh *fh);
/* Resolve an identity afresh (cache entry dropped first). */
int onfs_fh_decode_ident(struct onfs_export *ex, const struct onfs_ident *id,
			 struct onfs_node **out);
void onfs_node_cache_flush(struct onfs_export *ex);
/* Does any lower part of dir hold a visible (non-whiteout) object named name? */
bool onfs_lower_has(struct onfs_export *ex, struct onfs_node *dir, const char *name);
/* Is a directory empty in the merged view? 1 yes, 0 no, -errno */
int onfs_dir_is_empty(struct onfs_export *ex, struct onfs_node *dir);

/* --- lookup.c --- */
/*
 * onfs_lookup of a plain name (not "." or "..") with the directory's parts
 * already open: pfds[i] is dir->parts[i] opened O_RDONLY|O_DIRECTORY (not
 * closed here; -1: not open), saving an open and a close per part.
 * pxwh (may be NULL) says per part whether it is marked opaque=x, as the
 * caller read it. cache: put the node in the node cache (as onfs_lookup
 * does). top_st (may be NULL) gets the stat of the result's top part,
 * read by this lookup.
 */
int onfs_lookup_at(struct onfs_export *ex, struct onfs_node *dir, const int *pfds,
		   const bool *pxwh, const char *name, bool cache, struct stat *top_st,
		   struct onfs_node **out);
/*
 * The next component of a slash-separated path into comp; advances *path.
 * 1: a component, 0: the end, -ENAMETOOLONG: a component over NAME_MAX.
 */
int onfs_path_next(const char **path, char comp[NAME_MAX + 1]);

/* --- cache.c --- */
uint64_t onfs_now_ns(void);
/* onfs_getattr_cached with the caller's clock reading (a listing reads it per batch) */
bool onfs_getattr_cached_at(struct onfs_export *ex, struct onfs_node *n, struct onfs_attr *a,
			    uint64_t now);
/* The generations to store with something about to be read from disk. */
void onfs_gen_load(struct onfs_export *ex, const struct onfs_node *n, struct onfs_gen *g);
bool onfs_gen_current(struct onfs_export *ex, const struct onfs_node *n, const struct onfs_gen *g);
/*
 * For a read whose node is known only afterwards (a lookup): begin before
 * it; since() afterwards fills g for n and says whether g is usable (no
 * change made through the export in between).
 */
void onfs_gen_begin(struct onfs_export *ex, struct onfs_gen *b);
bool onfs_gen_since(struct onfs_export *ex, const struct onfs_node *n, const struct onfs_gen *b,
		    struct onfs_gen *g);
/* A namespace change is complete (call with ns_lock still held). */
void onfs_changed_ns(struct onfs_export *ex);
/* n's data or attributes changed (call before its lock is released). */
void onfs_changed_obj(struct onfs_export *ex, const struct onfs_node *n);
void onfs_attr_store(struct onfs_export *ex, struct onfs_node *n, const struct onfs_gen *g,
		     const struct onfs_attr *a);
void onfs_attr_init_locks(struct onfs_export *ex);
/* inode.c: n's attributes from a fresh stat of its top part, stored with g;
 * false when they need more than the stat (an xattr): use onfs_getattr. */
bool onfs_attr_from_stat(struct onfs_export *ex, struct onfs_node *n, const struct stat *st,
			 const struct onfs_gen *g, struct onfs_attr *a);
void onfs_attr_destroy_locks(struct onfs_export *ex);

/* --- readdir.c --- */
/* The cookie of a name: a keyed 63-bit hash, never 0, 1 or 2. */
uint64_t onfs_readdir_cookie(const uint8_t key[16], const char *name, size_t len);
/*
 * dcache.c: the lookup cache. store: what a lookup of name in dir found
 * (child, or NULL for ENOENT), with ex->gen_ns and the monotonic time
 * both loaded before that lookup read the disk.
 */
int onfs_dcache_new(struct onfs_dcache **out);
void onfs_dcache_free(struct onfs_dcache *d);
void onfs_dcache_store(struct onfs_export *ex, const struct onfs_node *dir, const char *name,
		       const struct onfs_node *child, unsigned gen_ns, uint64_t born);
int onfs_dir_cache_new(struct onfs_dir_cache **out);
void onfs_dir_cache_free(struct onfs_dir_cache *c);
void onfs_dir_cache_flush(struct onfs_dir_cache *c);

#endif
