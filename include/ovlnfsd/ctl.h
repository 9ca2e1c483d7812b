/*
 * ctl.h - the control socket (server/ctl.c) and what it asks of the
 * overlay (server/overlay/layers.c, instance.c): listing, the diff of an
 * upper against its lowers, reset of a per-client instance.
 *
 * Threads: onfs_ctl_start/stop on the loop thread. Every onfs_layers_*
 * and onfs_instance_* function here may block: pool workers only.
 */
#ifndef OVLNFSD_CTL_H
#define OVLNFSD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onfs_server;
struct onfs_export;

/* STATE/ctl.sock, mode 0600; -1 with err naming the path on failure. */
int onfs_ctl_start(struct onfs_server *srv, char *err, size_t errlen);
void onfs_ctl_stop(struct onfs_server *srv);

/* A growable text buffer for replies. */
struct onfs_buf {
	char *p;
	size_t len, cap;
	bool oom;
};
void onfs_buf_printf(struct onfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included. */
void onfs_buf_json_str(struct onfs_buf *b, const char *s);

/* --- instance.c --- */
/* The instances of a templated line (none for other exports). */
size_t onfs_instance_list(struct onfs_export *line, struct onfs_export **out, size_t cap);
/* Quiesce, release, move index and upper into the trash: O(1). -errno + err.
 * A plain export gets a fresh empty upper in the same step (commit.c). */
int onfs_instance_reset(struct onfs_export *ex, char *err, size_t errlen);
/*
 * Commit (server/overlay/commit.c): the upper of a plain export or an
 * instance becomes the read-only layer layers_dir/layer, on top of its
 * lowers, and an empty upper takes its place; renames only (one
 * filesystem). -errno with err.
 */
int onfs_layers_commit(struct onfs_export *ex, const char *layers_dir, const char *layer,
		       char *err, size_t errlen);
/*
 * Base moves (server/overlay/base.c). set_base (SIGHUP and the base probe,
 * on a worker through basewatch.c's onfs_base_move):
 * lowerdir of a plain export changed; moved at once when its upper holds
 * nothing, else pinned to the old base with the new one waiting. 0 moved,
 * 1 pinned, -1 with err (kept as it is). rebase: the upper's entries that
 * shadow a path that differs between the old and the new base, one line
 * each ("S  PATH"); applied only with force. -errno with err.
 */
int onfs_export_set_base(struct onfs_export *ex, char *const *lowerdir, size_t nlower,
			 char *err, size_t errlen);
int onfs_layers_rebase(struct onfs_export *ex, bool force, bool json, struct onfs_buf *out,
		       char *err, size_t errlen);
/* base version in use, and whether a newer one waits (pinned upper) */
unsigned onfs_layers_base_version(struct onfs_export *ex, bool *pinned);
/* The root identities of the lowers changed since the record (a base replaced in place)? Logged. */
void onfs_layers_base_probe(struct onfs_export *ex);
/*
 * Loop: the configured lowers (not committed ones) of a plain export or a
 * templated line, top first: a dup of each root's fd (-1: none) and a copy
 * of its path, both the caller's. Returns how many; 0 for instances.
 */
size_t onfs_layers_base_snapshot(struct onfs_export *ex, int *fds, char **paths, size_t max);
/* Worker: flush the caches of a plain export, or of every instance of a line. */
void onfs_layers_base_flush(struct onfs_export *ex);
/* The upper directory (NULL: none) and work directory of an export. */
const char *onfs_instance_upper(const struct onfs_export *ex);
const char *onfs_instance_work(const struct onfs_export *ex);

/* --- layers.c --- */
struct onfs_layers_info {
	const char *kind;      /* "export", "template", "instance" */
	const char *upper;     /* NULL: none */
	const char *lowers[16];
	size_t nlowers;
	bool readonly;
	const char *ro_reason; /* NULL when writable */
	long long idle_s;      /* seconds since the last call; -1: unknown */
	bool live;
};
void onfs_layers_info(struct onfs_export *ex, struct onfs_layers_info *out);
/* Bytes and objects in the upper (0, 0 without one). */
void onfs_layers_usage(struct onfs_export *ex, uint64_t *bytes, uint64_t *objects);
/* One entry per change of the upper against the lowers; json or text lines. */
int onfs_layers_diff(struct onfs_export *ex, bool json, struct onfs_buf *out);
/*
 * The base an upper was made against: workdir/ovlnfsd/base. check (at the
 * work-area setup; wfd the work directory) records it when missing and
 * logs a change; base returns 0 same, 1 changed, -ENOENT no record.
 */
void onfs_base_check(struct onfs_export *ex, int wfd);
int onfs_layers_base(struct onfs_export *ex);
/* Remove what this process's resets put in workdir/ovlnfsd/trash. */
void onfs_layers_trash_empty(struct onfs_export *ex);
/* DIR/reset-RUN-N-KIND: a fresh trash name of this process run. */
void onfs_trash_name(struct onfs_export *ex, const char *dir, char *out, size_t cap,
		     const char *kind);
/*
 * Work-area setup (workdir.c): remove what resets of an earlier run left
 * in workdir/ovlnfsd/trash (a crash during the background emptying).
 * wfd is the work directory. Returns 0 or -errno with why filled.
 */
int onfs_trash_scrub(int wfd, char *why, size_t whylen);

#endif
