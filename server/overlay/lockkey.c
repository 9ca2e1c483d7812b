/*
 * lockkey.c - what the lock manager needs from an export instance: its
 * lock table, and the key a lock on a node is filed under.
 *
 * The key is the node's identity (struct onfs_ident: the origin object's
 * underlying handle and filesystem index), not its path or layer: a lower
 * file locked by one client and then copied up by another keeps its key,
 * so the lock still holds; a rename changes nothing either.
 * Thread: any (reads immutable fields).
 */
#include <string.h>

#include "internal.h"
#include "ovlnfsd/lock.h"

struct onfs_lock_table *onfs_export_locks(const struct onfs_export *ex)
{
	return ex->locks;
}

void onfs_node_lock_key(const struct onfs_node *n, struct onfs_lock_key *k)
{
	const struct onfs_ident *id = &n->ident;

	_Static_assert(3 + ONFS_FID_MAX <= ONFS_LOCK_KEY_MAX, "lock key too small");
	memset(k, 0, sizeof(*k));
	k->b[0] = id->fsidx;
	k->b[1] = id->type;
	k->b[2] = id->len;
	memcpy(k->b + 3, id->fid, id->len);
	k->len = (uint8_t)(3 + id->len);
}
