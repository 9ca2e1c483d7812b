/*
 * idmap.c - the persistent identity map of rootless handle mode
 * (docs/architecture.md, "Handles and identity"): without CAP_DAC_READ_SEARCH a handle cannot be opened by the
 * kernel, so every identity the server hands out is recorded with where
 * it was last seen (its parent's identity and its name) in an LMDB store
 * in workdir/ovlnfsd/ (or the state directory for an export without a
 * workdir). Decoding walks those records from the root and verifies each
 * step with a real lookup: the map is a hint, never trusted.
 *
 * Any worker thread (LMDB with MDB_NOTLS: read transactions are not tied
 * to threads). Writes happen only when a record is new or changed.
 * Durability: MDB_NOSYNC; the map is synced when the export closes, so a
 * crash may forget the most recent records (those handles go STALE).
 */
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct onfs_idmap {
	MDB_env *env;
	MDB_dbi dbi;
};

static size_t ident_len(const struct onfs_ident *id)
{
	return 3u + id->len;
}

int onfs_idmap_open(struct onfs_export *ex, const char *dir, char *err, size_t errlen)
{
	struct onfs_idmap *m = calloc(1, sizeof(*m));
	char path[4200];
	MDB_txn *txn;
	int rc;

	if (!m)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/handles.mdb", dir);
	rc = mdb_env_create(&m->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(m->env, (size_t)1 << 30);
	if (rc == 0)
		rc = mdb_env_open(m->env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOSYNC, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &m->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0) {
		snprintf(err, errlen, "identity map '%s': %s", path, mdb_strerror(rc));
		if (m->env)
			mdb_env_close(m->env);
		free(m);
		return -1;
	}
	ex->idmap = m;
	return 0;
}

void onfs_idmap_close(struct onfs_export *ex)
{
	struct onfs_idmap *m = ex->idmap;

	if (!m)
		return;
	mdb_env_sync(m->env, 1);
	mdb_env_close(m->env);
	free(m);
	ex->idmap = NULL;
}

/* Record that id was seen as name inside parent (when new or changed). */
void onfs_idmap_record(struct onfs_export *ex, const struct onfs_ident *id,
		       const struct onfs_ident *parent, const char *name)
{
	struct onfs_idmap *m = ex->idmap;
	size_t pl = ident_len(parent), nl = strlen(name);
	uint8_t val[3 + ONFS_FID_MAX + 256];
	MDB_val k = { ident_len(id), (void *)id }, v;
	MDB_txn *txn;

	if (!m || pl + nl > sizeof(val))
		return;
	memcpy(val, parent, pl);
	memcpy(val + pl, name, nl);
	if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn) == 0) {
		bool same = mdb_get(txn, m->dbi, &k, &v) == 0 && v.mv_size == pl + nl &&
			    memcmp(v.mv_data, val, pl + nl) == 0;
		mdb_txn_abort(txn);
		if (same)
			return;
	}
	v.mv_size = pl + nl;
	v.mv_data = val;
	if (mdb_txn_begin(m->env, NULL, 0, &txn) != 0)
		return;
	if (mdb_put(txn, m->dbi, &k, &v, 0) != 0 || mdb_txn_commit(txn) != 0) {
		onfs_warn("export '%s': cannot record a handle in the identity map", ex->name);
		return;
	}
}

/* Where was id last seen? 0 with parent and name, or -ENOENT. */
static int idmap_get(struct onfs_export *ex, const struct onfs_ident *id,
		     struct onfs_ident *parent, char *name)
{
	struct onfs_idmap *m = ex->idmap;
	MDB_val k = { ident_len(id), (void *)id }, v;
	MDB_txn *txn;
	int ret = -ENOENT;

	if (!m || mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn) != 0)
		return -ENOENT;
	if (mdb_get(txn, m->dbi, &k, &v) == 0 && v.mv_size >= 3) {
		const uint8_t *p = v.mv_data;
		size_t pl = 3u + p[2];

		if (pl <= v.mv_size && p[2] <= ONFS_FID_MAX && v.mv_size - pl <= NAME_MAX) {
			memset(parent, 0, sizeof(*parent));
			memcpy(parent, p, pl);
			memcpy(name, p + pl, v.mv_size - pl);
			name[v.mv_size - pl] = '\0';
			ret = 0;
		}
	}
	mdb_txn_abort(txn);
	return ret;
}

/*
 * Resolve an identity from the map: the chain of parents up to the root,
 * each step a real lookup whose identity must match. -ESTALE otherwise.
 * Iterative and on the heap: a tree may be thousands of levels deep
 * (docs/overlay.md, "Deep trees").
 */
int onfs_idmap_resolve(struct onfs_export *ex, const struct onfs_ident *id, int depth,
		       struct onfs_node **out)
{
	enum { MAX_DEPTH = 1 << 15 };
	struct step {
		struct onfs_ident id;
		char name[NAME_MAX + 1];
	} *chain = NULL;
	struct onfs_ident cur = *id;
	struct onfs_node *root, *p, *n;
	size_t k = 0, cap = 0;
	int ret;

	(void)depth;
	ret = onfs_root(ex, &root);
	if (ret < 0)
		return ret;
	/* id, its parent, ... up to (not including) the root */
	while (!onfs_ident_eq(&root->ident, &cur)) {
		if (k == cap) {
			struct step *nc = cap < MAX_DEPTH ? realloc(chain, (cap ? cap * 2 : 16) *
								   sizeof(*chain)) : NULL;
			if (!nc) {
				ret = -ESTALE;
				goto out;
			}
			chain = nc;
			cap = cap ? cap * 2 : 16;
		}
		chain[k].id = cur;
		if (idmap_get(ex, &cur, &cur, chain[k].name) < 0) {
			ret = -ESTALE;
			goto out;
		}
		k++;
	}
	p = onfs_node_get(root);
	while (k > 0) {
		k--;
		ret = onfs_lookup(ex, p, chain[k].name, &n);
		onfs_node_put(p);
		if (ret < 0) {
			ret = -ESTALE;
			goto out;
		}
		if (!onfs_ident_eq(&n->ident, &chain[k].id)) {
			onfs_node_put(n);
			ret = -ESTALE;
			goto out;
		}
		p = n;
	}
	*out = p;
	ret = 0;
out:
	onfs_node_put(root);
	free(chain);
	return ret;
}
