/*
 * test-lock.c - the lock table (server/lock.c) on its own: a random walk
 * of locks and unlocks by several owners checked byte by byte against a
 * brute-force model (split, merge, upgrade, downgrade, ranges to the end
 * of the file), then the waiter queue (FIFO grants, repeats, CANCEL, the
 * per-host bound), share reservations and freeing a host.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/lock.h"
#include "unit.h"

#define NB 65 /* bytes 0..63, and [64, EOF) as one more "byte" */
#define NOWN 4

static int freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

static const struct onfs_lock_owner owners[NOWN] = { { 1, 1 }, { 1, 2 }, { 2, 1 }, { 3, 7 } };
static int model[NOWN][NB]; /* 0 none, 1 shared, 2 exclusive */

static struct onfs_lock_range rng(unsigned start, unsigned len, bool excl)
{
	struct onfs_lock_range r = { start, len ? start + len - 1 : ONFS_LOCK_EOF, excl };

	return r;
}

static bool model_conflict(int who, unsigned start, unsigned len, bool excl)
{
	unsigned end = len ? start + len - 1 : NB - 1;

	for (int o = 0; o < NOWN; o++) {
		if (o == who)
			continue;
		for (unsigned i = start; i <= end; i++)
			if (model[o][i] == 2 || (model[o][i] == 1 && excl))
				return true;
	}
	return false;
}

static void model_set(int who, unsigned start, unsigned len, int v)
{
	unsigned end = len ? start + len - 1 : NB - 1;

	for (unsigned i = start; i <= end; i++)
		model[who][i] = v;
}

/* Probe every byte for every owner, shared and exclusive, against the model. */
static int check_all(struct onfs_lock_table *t, const struct onfs_lock_key *k)
{
	int bad = 0;

	for (int o = 0; o < NOWN; o++) {
		for (unsigned i = 0; i < NB; i++) {
			for (int ex = 0; ex < 2; ex++) {
				struct onfs_lock_range r = { i, i == NB - 1 ? ONFS_LOCK_EOF : i,
							     ex };
				struct onfs_lock_holder h;
				bool want = model_conflict(o, i, i == NB - 1 ? 0 : 1, ex);
				bool got = onfs_lock_test(t, k, &owners[o], &r, &h) == -EAGAIN;

				if (want != got)
					bad++;
			}
		}
	}
	return bad;
}

static void random_walk(void)
{
	struct onfs_lock_table *t = onfs_lock_table_new(ONFS_LOCKING_ON, count_free);
	struct onfs_lock_key k = { 3, { 1, 2, 3 } };
	unsigned seed = 12345;
	int bad = 0;

	memset(model, 0, sizeof(model));
	for (int step = 0; step < 3000 && bad == 0; step++) {
		int who = (int)(rand_r(&seed) % NOWN);
		unsigned start = (unsigned)rand_r(&seed) % 64;
		unsigned len = (unsigned)rand_r(&seed) % 8 == 0 ? 0 :
			       1 + (unsigned)rand_r(&seed) % (64 - start);
		bool excl = rand_r(&seed) & 1;
		struct onfs_lock_range r = rng(start, len, excl);
		struct onfs_lock_grant *g = NULL;

		if (rand_r(&seed) % 3 == 0) {
			onfs_lock_unlock(t, &k, &owners[who], &r, &g);
			model_set(who, start, len, 0);
		} else {
			bool conflict = model_conflict(who, start, len, excl);
			enum onfs_lock_result res =
				onfs_lock_lock(t, &k, &owners[who], &r, false, NULL, &g);

			CHECK_EQ(res, conflict ? ONFS_LOCK_DENIED : ONFS_LOCK_GRANTED);
			if (!conflict)
				model_set(who, start, len, excl ? 2 : 1);
		}
		CHECK(g == NULL); /* nobody waits in this walk */
		if (step % 50 == 0)
			bad += check_all(t, &k);
	}
	bad += check_all(t, &k);
	CHECK_EQ(bad, 0);
	/* everything released: the table is empty again */
	for (int o = 0; o < NOWN; o++) {
		struct onfs_lock_range all = rng(0, 0, false);
		struct onfs_lock_grant *g = NULL;

		onfs_lock_unlock(t, &k, &owners[o], &all, &g);
	}
	for (int o = 0; o < NOWN; o++)
		CHECK_EQ(onfs_lock_host_count(t, owners[o].host), 0);
	onfs_lock_table_free(t);
}

static void waiters(void)
{
	struct onfs_lock_table *t = onfs_lock_table_new(ONFS_LOCKING_ON, count_free);
	struct onfs_lock_key k = { 2, { 9, 9 } }, k2 = { 2, { 9, 8 } };
	struct onfs_lock_owner a = { 1, 1 }, b = { 2, 1 }, c = { 3, 1 };
	struct onfs_lock_range all = rng(0, 0, true), part = rng(10, 5, true);
	struct onfs_lock_grant *g = NULL;
	int *d1 = malloc(sizeof(int)), *d2 = malloc(sizeof(int)), *d3 = malloc(sizeof(int));
	int n;

	*d1 = 1, *d2 = 2, *d3 = 3;
	freed = 0;
	CHECK_EQ(onfs_lock_lock(t, &k, &a, &all, true, NULL, &g), ONFS_LOCK_GRANTED);
	CHECK_EQ(onfs_lock_lock(t, &k, &b, &part, true, d1, &g), ONFS_LOCK_BLOCKED);
	/* the same request again: BLOCKED, its new data freed, one waiter */
	CHECK_EQ(onfs_lock_lock(t, &k, &b, &part, true, d2, &g), ONFS_LOCK_BLOCKED);
	CHECK_EQ(freed, 1);
	CHECK_EQ(onfs_lock_lock(t, &k, &c, &part, true, d3, &g), ONFS_LOCK_BLOCKED);
	CHECK_EQ(onfs_lock_host_count(t, 2), 1);
	/* A lets go of the tail only: both still wait on [10,15) */
	{
		struct onfs_lock_range tail = rng(20, 0, true);

		onfs_lock_unlock(t, &k, &a, &tail, &g);
		CHECK(g == NULL);
	}
	onfs_lock_unlock(t, &k, &a, &all, &g);
	/* FIFO: B first; C still conflicts with B's new lock */
	CHECK(g != NULL && g->next == NULL);
	if (g) {
		CHECK_EQ(g->owner.host, 2);
		CHECK_EQ(*(int *)g->data, 1);
		CHECK_EQ(g->range.start, 10);
		CHECK_EQ(g->range.end, 14);
	}
	onfs_lock_grant_free(t, g);
	g = NULL;
	/* CANCEL C, then B unlocks: nobody left to grant */
	CHECK(onfs_lock_cancel(t, &k, &c, &part));
	CHECK(!onfs_lock_cancel(t, &k, &c, &part));
	onfs_lock_unlock(t, &k, &b, &part, &g);
	CHECK(g == NULL);

	/* the per-host bound on waiters */
	CHECK_EQ(onfs_lock_lock(t, &k2, &a, &all, false, NULL, &g), ONFS_LOCK_GRANTED);
	n = 0;
	for (unsigned i = 0; i < ONFS_LOCK_MAX_WAITERS_PER_HOST + 5; i++) {
		struct onfs_lock_owner o = { 5, i };

		n += onfs_lock_lock(t, &k2, &o, &all, true, malloc(4), &g) == ONFS_LOCK_BLOCKED;
	}
	CHECK_EQ(n, ONFS_LOCK_MAX_WAITERS_PER_HOST);
	/* freeing host 1 grants the first waiter of host 5; freeing host 5 drops the rest */
	onfs_lock_free_host(t, 1, &g);
	CHECK(g != NULL && g->owner.host == 5 && g->owner.svid == 0);
	onfs_lock_grant_free(t, g);
	g = NULL;
	onfs_lock_free_host(t, 5, &g);
	CHECK(g == NULL);
	CHECK_EQ(onfs_lock_host_count(t, 5), 0);
	onfs_lock_table_free(t);
}

static void shares(void)
{
	struct onfs_lock_table *t = onfs_lock_table_new(ONFS_LOCKING_ON, free);
	struct onfs_lock_key k = { 1, { 4 } };

	/* A reads and denies writers */
	CHECK_EQ(onfs_lock_share(t, &k, 1, "a", 1, 2, 1), 0);
	CHECK_EQ(onfs_lock_share(t, &k, 2, "b", 1, 0, 2), -EAGAIN);
	CHECK_EQ(onfs_lock_share(t, &k, 2, "b", 1, 0, 1), 0);
	/* B now reads: A may not deny reading */
	CHECK_EQ(onfs_lock_share(t, &k, 1, "a2", 2, 1, 1), -EAGAIN);
	onfs_lock_unshare(t, &k, 1, "a", 1);
	CHECK_EQ(onfs_lock_share(t, &k, 3, "c", 1, 0, 3), 0);
	CHECK_EQ(onfs_lock_host_count(t, 1), 0);
	onfs_lock_table_free(t);
}

int main(void)
{
	random_walk();
	waiters();
	shares();
	return unit_finish("lock");
}
