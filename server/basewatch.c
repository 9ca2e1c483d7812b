/*
 * basewatch.c - the periodic base probe: a lower directory replaced in
 * place under running clients (an image rebuilt next to the old one and
 * renamed over it, rsync --delete-after of a whole tree into a new
 * directory) is noticed without an operator's SIGHUP.
 *
 * Every [server] base_check_interval seconds (0: off) the loop takes a
 * snapshot of the configured lowers of each plain export and templated
 * line (a dup of each root's fd and its path) and queues ONE job on the
 * worker pool; a tick while the
 * job runs is skipped. The job stats each path and the dup'd root: when
 * the path now names another directory than the one served, the loop
 * (after the job) logs one warning naming the export and the layer and
 * moves the export to the layers as they are now, as a SIGHUP with a new
 * lowerdir does (base.c: at once with an empty upper, else pinned until
 * reset/rebase), then flushes the export's caches. The identity last seen
 * at each path is kept, so a state that stays different (a pinned upper)
 * is logged once, and again only when the path changes again. A root
 * still served whose ctime moved (entries added or removed at its top in
 * place) gets an info line and a cache flush.
 *
 * The timer and its bookkeeping are the loop's; the job touches only its
 * own snapshot (no export state).
 *
 * Base moves, the probe's and SIGHUP's (main.c), open the new lowers and
 * wait for the export's calls to drain (up to 30 s): blocking work, so
 * they run on the pool too (onfs_base_move), one at a time in the order
 * asked (a FIFO owned by the loop), and base.c's own lock keeps them apart
 * from a rebase or reset arriving through the control socket. No probe is
 * taken while a move is queued or running (the snapshot reads the layers
 * a move replaces).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "ovlnfsd/basewatch.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/ctl.h"
#include "ovlnfsd/overlay.h"

#define BASE_CHECK_DEFAULT_S 10

struct seen_id {
	dev_t dev;
	ino_t ino;
	bool valid;
};

/* The root served at a layer slot and its ctime, as last seen. */
struct seen_held {
	struct seen_id id;
	struct timespec ctime;
};

struct snap_layer {
	char *path;  /* owned */
	int fd;      /* owned dup of the root served; -1: none */
	struct seen_id now;  /* what the path names (job) */
	struct seen_id held; /* what is served (job) */
	struct timespec held_ctime;
};

struct snap_export {
	struct onfs_export *ex;
	size_t idx;
	size_t n;
	struct snap_layer l[ONFS_MAX_LOWER];
};

static struct {
	struct onfs_server *srv;
	uv_timer_t timer;
	uv_work_t work;
	bool on;
	bool busy;
	struct snap_export *snap; /* owned while busy */
	size_t nsnap;
	struct seen_id last[ONFS_MAX_EXPORTS][ONFS_MAX_LOWER];
	struct seen_held held[ONFS_MAX_EXPORTS][ONFS_MAX_LOWER];
} bw;

/* one base move: queued on the loop, run on a worker */
struct base_move {
	uv_work_t work;
	struct base_move *next;
	struct onfs_export *ex;
	char *lower[ONFS_MAX_LOWER];
	size_t n;
	bool flush; /* flush the export's caches after (the probe's moves) */
	int r;
	char err[PATH_MAX + 128];
	void (*done)(void *arg, struct onfs_export *ex, char *const *lower, size_t n, int r,
		     const char *err);
	void *arg;
};

static struct {
	uv_loop_t *loop;
	struct base_move *head, *tail; /* head: running (when running) */
	bool running;
} mv;

static void snap_free(void)
{
	for (size_t i = 0; i < bw.nsnap; i++)
		for (size_t j = 0; j < bw.snap[i].n; j++) {
			free(bw.snap[i].l[j].path);
			if (bw.snap[i].l[j].fd >= 0)
				close(bw.snap[i].l[j].fd);
		}
	free(bw.snap);
	bw.snap = NULL;
	bw.nsnap = 0;
}

static void probe_work(uv_work_t *w)
{
	(void)w;
	for (size_t i = 0; i < bw.nsnap; i++)
		for (size_t j = 0; j < bw.snap[i].n; j++) {
			struct snap_layer *l = &bw.snap[i].l[j];
			struct stat st;

			if (stat(l->path, &st) == 0 && S_ISDIR(st.st_mode))
				l->now = (struct seen_id){ st.st_dev, st.st_ino, true };
			if (l->fd >= 0 && fstat(l->fd, &st) == 0) {
				l->held = (struct seen_id){ st.st_dev, st.st_ino, true };
				l->held_ctime = st.st_ctim;
			}
		}
}

static bool same(const struct seen_id *a, const struct seen_id *b)
{
	return a->valid == b->valid && (!a->valid || (a->dev == b->dev && a->ino == b->ino));
}

/* The probe's move ended (loop). */
static void probe_moved(void *arg, struct onfs_export *ex, char *const *lower, size_t n, int r,
			const char *err)
{
	(void)arg;
	(void)lower;
	(void)n;
	if (r < 0)
		onfs_warn("export '%s': cannot move to the replaced lower layers: %s; serving the "
			  "old ones", onfs_export_name(ex), err);
}

static void move_work(uv_work_t *w)
{
	struct base_move *m = w->data;

	m->r = m->n ? onfs_export_set_base(m->ex, m->lower, m->n, m->err, sizeof(m->err)) : 0;
	if (m->flush)
		onfs_layers_base_flush(m->ex);
}

static void move_free(struct base_move *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->lower[i]);
	free(m);
}

static void move_next(void);

static void move_after(uv_work_t *w, int status)
{
	struct base_move *m = w->data;

	if (status < 0) {
		m->r = -1;
		snprintf(m->err, sizeof(m->err), "not run: %s", uv_strerror(status));
	}
	mv.running = false;
	mv.head = m->next;
	if (!mv.head)
		mv.tail = NULL;
	if (m->done)
		m->done(m->arg, m->ex, m->lower, m->n, m->r, m->err);
	move_free(m);
	move_next();
}

static void move_next(void)
{
	while (mv.head && !mv.running) {
		struct base_move *m = mv.head;

		m->work.data = m;
		if (uv_queue_work(mv.loop, &m->work, move_work, move_after) == 0) {
			mv.running = true;
			return;
		}
		mv.head = m->next;
		if (!mv.head)
			mv.tail = NULL;
		if (m->done)
			m->done(m->arg, m->ex, m->lower, m->n, -1, "the worker pool refused the job");
		move_free(m);
	}
}

int onfs_base_move(uv_loop_t *loop, struct onfs_export *ex, char *const *lower, size_t n,
		   bool flush,
		   void (*done)(void *arg, struct onfs_export *ex, char *const *lower, size_t n,
				int r, const char *err),
		   void *arg)
{
	struct base_move *m = calloc(1, sizeof(*m));

	if (!m || n > ONFS_MAX_LOWER) {
		free(m);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		m->lower[i] = strdup(lower[i]);
		if (!m->lower[i]) {
			m->n = i;
			move_free(m);
			return -1;
		}
	}
	m->n = n;
	m->ex = ex;
	m->flush = flush;
	m->done = done;
	m->arg = arg;
	mv.loop = loop;
	if (mv.tail)
		mv.tail->next = m;
	else
		mv.head = m;
	mv.tail = m;
	move_next();
	return 0;
}

bool onfs_base_move_pending(const struct onfs_export *ex, char *const *lower, size_t n)
{
	for (const struct base_move *m = mv.head; m; m = m->next) {
		size_t i;

		if (m->ex != ex || (lower && m->n != n))
			continue;
		for (i = 0; lower && i < n && !strcmp(m->lower[i], lower[i]); i++)
			;
		if (!lower || i == n)
			return true;
	}
	return false;
}

static void probe_done(uv_work_t *w, int status)
{
	struct onfs_server *srv = bw.srv;

	(void)w;
	bw.busy = false;
	if (status < 0 || srv->stopping)
		goto out;
	for (size_t i = 0; i < bw.nsnap; i++) {
		struct snap_export *s = &bw.snap[i];
		char *paths[ONFS_MAX_LOWER];
		bool changed = false, flush = false;

		if (srv->exports[s->idx] != s->ex)
			continue;
		for (size_t j = 0; j < s->n; j++) {
			struct snap_layer *l = &s->l[j];
			struct seen_id *last = &bw.last[s->idx][j];

			paths[j] = l->path;
			if (l->held.valid) {
				struct seen_held *h = &bw.held[s->idx][j];

				/* the same root, changed at its top (entries added, removed) */
				if (same(&h->id, &l->held) &&
				    (h->ctime.tv_sec != l->held_ctime.tv_sec ||
				     h->ctime.tv_nsec != l->held_ctime.tv_nsec)) {
					onfs_info("export '%s': lower layer '%s' changed at its top "
						  "in place; caches flushed",
						  onfs_export_name(s->ex), l->path);
					flush = true;
				}
				h->id = l->held;
				h->ctime = l->held_ctime;
			}
			/* gone for now (mid-swap): wait for the new one */
			if (!l->now.valid || !l->held.valid || same(&l->now, &l->held)) {
				if (l->now.valid && same(&l->now, &l->held))
					*last = l->now;
				continue;
			}
			if (same(&l->now, last))
				continue; /* already said, and still so (pinned) */
			*last = l->now;
			changed = true;
			onfs_warn("export '%s': lower layer '%s' was replaced in place (its path now "
				  "names another directory: device %llu inode %llu, served: %llu "
				  "%llu); moving to the layers as they are now",
				  onfs_export_name(s->ex), l->path, (unsigned long long)l->now.dev,
				  (unsigned long long)l->now.ino, (unsigned long long)l->held.dev,
				  (unsigned long long)l->held.ino);
		}
		if (!changed) {
			/* a line's instances are flushed under their locks: on a worker */
			if (flush && onfs_export_templated(s->ex))
				(void)onfs_base_move(srv->loop, s->ex, NULL, 0, true, NULL, NULL);
			else if (flush)
				onfs_export_caches_flush(s->ex);
			continue;
		}
		if (onfs_base_move(srv->loop, s->ex, paths, s->n, true, probe_moved, NULL) < 0)
			onfs_warn("export '%s': cannot move to the replaced lower layers: out of "
				  "memory; serving the old ones", onfs_export_name(s->ex));
	}
out:
	snap_free();
}

static void tick(uv_timer_t *t)
{
	struct onfs_server *srv = t->data;
	size_t nex = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);

	if (bw.busy || mv.head || srv->stopping || nex == 0)
		return; /* one job at a time, none during a move: this tick is skipped */
	bw.snap = calloc(nex, sizeof(*bw.snap));
	if (!bw.snap)
		return;
	for (size_t i = 0; i < nex && i < ONFS_MAX_EXPORTS; i++) {
		struct snap_export *s = &bw.snap[bw.nsnap];
		int fds[ONFS_MAX_LOWER];
		char *paths[ONFS_MAX_LOWER];

		if (!srv->exports[i])
			continue;
		s->n = onfs_layers_base_snapshot(srv->exports[i], fds, paths, ONFS_MAX_LOWER);
		if (s->n == 0)
			continue;
		s->ex = srv->exports[i];
		s->idx = i;
		for (size_t j = 0; j < s->n; j++)
			s->l[j] = (struct snap_layer){ .path = paths[j], .fd = fds[j] };
		bw.nsnap++;
	}
	if (bw.nsnap == 0 || uv_queue_work(srv->loop, &bw.work, probe_work, probe_done) < 0) {
		snap_free();
		return;
	}
	bw.busy = true;
}

int onfs_basewatch_interval(const struct onfs_config *cfg)
{
	return cfg->base_check_interval < 0 ? BASE_CHECK_DEFAULT_S : cfg->base_check_interval;
}

void onfs_basewatch_start(struct onfs_server *srv)
{
	uint64_t ms = (uint64_t)onfs_basewatch_interval(srv->cfg) * 1000;

	bw.srv = srv;
	if (ms == 0 || bw.on || uv_timer_init(srv->loop, &bw.timer) != 0)
		return;
	bw.timer.data = srv;
	uv_timer_start(&bw.timer, tick, ms, ms);
	uv_unref((uv_handle_t *)&bw.timer); /* never keeps the loop alive alone */
	bw.on = true;
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

void onfs_basewatch_stop(void)
{
	if (!bw.on)
		return;
	uv_timer_stop(&bw.timer);
	uv_close((uv_handle_t *)&bw.timer, timer_closed);
	bw.on = false;
	/* a job in flight ends in probe_done, which sees stopping and frees its snapshot */
}
