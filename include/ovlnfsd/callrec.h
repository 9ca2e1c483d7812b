/*
 * callrec.h - the call recorder (server/callrec.c): a debugging aid that
 * writes one line per NFS call served - the procedure and the merged path
 * of its object - to a file named by the environment variable
 * OVLNFSD_RECORD_CALLS. Off unless that variable is set at startup.
 */
#ifndef OVLNFSD_CALLREC_H
#define OVLNFSD_CALLREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onfs_call;
struct onfs_export;
struct onfs_node;

#define ONFS_CALLREC_ENV "OVLNFSD_RECORD_CALLS"

/* Set once by onfs_callrec_open before the loop runs; read-only afterwards. */
extern bool onfs_callrec_on;

/*
 * Start recording to path (created 0600, truncated; a symlink or a
 * non-regular file is refused). Returns 0, or -errno with err naming the
 * path and the reason. Main thread, before any call is served.
 */
int onfs_callrec_open(const char *path, char *err, size_t errlen);

/* Flush and close the record (main thread, at exit). No-op when off. */
void onfs_callrec_close(void);

/*
 * One line for call c: its procedure, n's merged path (with "/name"
 * appended when name is not NULL; n may be NULL for a handle that did not
 * resolve), the nfsstat3 answered, and offset/count when has_range.
 * Any thread; callers test onfs_callrec_on first.
 */
void onfs_callrec_put(const struct onfs_call *c, const struct onfs_export *ex,
		      const struct onfs_node *n, const char *name, unsigned status,
		      bool has_range, uint64_t offset, uint32_t count);

#endif
