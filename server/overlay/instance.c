/*
 * instance.c - per-client instances of a templated export line: one
 * private upper and work area per value of {client}, {host} or {name}
 * over the line's shared lowers (docs/instances.md).
 *
 * Objects. The line's own struct onfs_export (export.c, tmpl set) holds the
 * lowers, the parent of the upper template (filesystem slot 0) and the
 * line's persistent key; it never serves. Each instance is a struct
 * onfs_export of its own (line set) that borrows the lowers and owns layer
 * 0, its work area (lock, scrub, read-only fallback), its caches, a handle
 * key derived from the line's key and its value (keyed SipHash: nothing on
 * disk), and an export id from a persistent per-line record.
 *
 * Lifecycle. dormant (no descriptors, no caches) -> live (caches; layer 0
 * open if the upper exists, else -1 and lookups skip it) -> settled (the
 * upper exists, created on the first mutation under the owner's
 * credentials, or never will: read-only, logged). Idle instances go back
 * to dormant (descriptors and caches released, data kept). Every change
 * of state happens under inst_lock with no call inside the instance:
 * calls count themselves in (active) and the changer raises quiesce and
 * waits for active to drop to 0 (Dekker-style with seq_cst atomics), so no
 * call ever sees a descriptor closed or a layer appear under it.
 *
 * The record (STATE/exports/LINE/instances, append-only text, fsync'ed):
 *   i ID VALUE            an instance and its export id
 *   m NAME ADDR MACHINE   a {name} mount: the client (address and AUTH_SYS
 *                         machine name, hex) that mounted NAME
 * It lives in the state directory, never in the template's parent, so a
 * client that only reads leaves nothing there.
 *
 * Threads: MNT and NFS calls run the enter/for_mount functions on pool
 * workers; the idle sweep runs on its own thread; line open/close on the
 * main thread. The by-id table is lock-free for readers (instances are
 * freed only when their line closes, after the loop has stopped).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/ctl.h"
#include "ovlnfsd/siphash.h"
#include "ovlnfsd/template.h"
#include "internal.h"

#define QUIESCE_WAIT_MS 30000

struct name_mount {
	char *name;
	char addr[64];
	char *machine; /* NUL-terminated as recorded */
};

struct onfs_inst_line {
	struct onfs_export *line; /* not owned */
	unsigned kind, max, idle;
	char *upper_tmpl, *work_tmpl;   /* owned */
	char *upper_parent, *work_parent; /* owned; as written before the placeholder */
	int work_parent_fd;             /* owned; the upper's is line->tmpl_parent_fd */
	char recfile[PATH_MAX];
	pthread_mutex_t lock;           /* insts, mounts and the record file */
	struct onfs_export **insts;     /* owned */
	size_t ninst, icap;
	struct name_mount *mounts;      /* owned */
	size_t nmounts, mcap;
};

/* Every instance by export id: readers take no lock. */
static _Atomic(struct onfs_export *) by_id[65536];
/* Export ids of plain exports and lines: never given to an instance. */
static _Atomic(unsigned char) reserved[65536 / 8];

/* The lines with instances, for the idle sweep and the logs. */
static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static struct onfs_inst_line *lines[16]; /* guarded by lines_lock */
static pthread_t sweeper;
static bool sweeper_running, sweeper_stop; /* guarded by lines_lock */
static pthread_cond_t sweeper_cond = PTHREAD_COND_INITIALIZER;

static long long now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

void onfs_inst_reserve_id(uint16_t id)
{
	struct onfs_export *ex = atomic_load(&by_id[id]);

	/* 1 in 65536 per pair: an export added after the instance took its id */
	if (ex)
		onfs_warn("export '%s': its export id %u is also that of an export opened after "
			  "it; its handles will answer STALE", ex->name, (unsigned)id);
	atomic_fetch_or(&reserved[id / 8], (unsigned char)(1u << (id % 8)));
}

static bool id_reserved(uint16_t id)
{
	return atomic_load(&reserved[id / 8]) & (1u << (id % 8));
}

/* --- directories under a template's parent --- */

/*
 * Create rel (a relative path of validated components) below dirfd, one
 * component at a time, never following a symlink: nothing can be created
 * outside the parent. The last component gets mode; the ones above 0755.
 * Returns an O_RDONLY descriptor of the last one, or -errno.
 */
static int mkdir_beneath(int dirfd, const char *rel, mode_t mode)
{
	char comp[NAME_MAX + 1];
	const char *p = rel;
	int cur = dup(dirfd), r;

	if (cur < 0)
		return -errno;
	while ((r = onfs_path_next(&p, comp)) > 0) {
		bool last = *p == '\0' || strspn(p, "/") == strlen(p);
		int next;

		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			r = -EACCES;
			break;
		}
		if (mkdirat(cur, comp, last ? mode : 0755) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = -errno;
			break;
		}
		close(cur);
		cur = next;
	}
	if (r < 0) {
		close(cur);
		return r;
	}
	return cur;
}

/* The part of an expanded path below its template's parent. */
static const char *below(const char *expanded, const char *parent)
{
	const char *p = expanded + strlen(parent);

	while (*p == '/')
		p++;
	return p;
}

/* --- one instance --- */

static void inst_free(struct onfs_export *ex)
{
	if (!ex)
		return;
	onfs_dir_cache_free(ex->dirs);
	onfs_node_cache_free(ex->nodes);
	onfs_attr_destroy_locks(ex);
	onfs_stack_close(ex);
	free(ex->stack_file);
	if (ex->layers[0].fd >= 0)
		close(ex->layers[0].fd);
	if (ex->lock_fd >= 0)
		close(ex->lock_fd);
	if (ex->work_fd >= 0)
		close(ex->work_fd);
	if (ex->index_fd >= 0)
		close(ex->index_fd);
	free(ex->layers[0].path);
	free(ex->layers[0].real);
	free(ex->name);
	free(ex->path);
	free(ex->inst_value);
	free(ex->inst_upper);
	free(ex->inst_work);
	free(ex);
}

/* gen_ns of a new instance: see inst_new */
static atomic_uint inst_gen_seed;

/* A dormant instance of line for value, with export id id. */
static int inst_new(struct onfs_inst_line *L, const char *value, uint16_t id,
		    struct onfs_export **out)
{
	struct onfs_export *line = L->line, *ex;
	char buf[PATH_MAX], key_in[16 + ONFS_TMPL_VALUE_MAX];
	uint64_t k0, k1;
	size_t vlen = strlen(value);

	ex = calloc(1, sizeof(*ex));
	if (!ex)
		return -ENOMEM;
	ex->lock_fd = ex->work_fd = ex->index_fd = ex->tmpl_parent_fd = -1;
	pthread_mutex_init(&ex->ns_lock, NULL);
	pthread_mutex_init(&ex->verf_lock, NULL);
	pthread_mutex_init(&ex->inst_lock, NULL);
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(ex->obj_lock); i++)
		pthread_mutex_init(&ex->obj_lock[i], NULL);
	onfs_attr_init_locks(ex);
	if (getrandom(ex->write_verf, sizeof(ex->write_verf), 0) != sizeof(ex->write_verf))
		goto out_nomem;
	ex->line = line;
	ex->id = id;
	/*
	 * The line's lookup cache, shared by its instances: an entry's key is
	 * a directory handle, and handles differ between instances (export
	 * id, keyed MAC). gen_ns starts 65,536 above the previous new
	 * instance's, so that the entries of a freed instance of the same
	 * value (the same handles) do not pass as this one's in their 0.9 s.
	 */
	ex->dcache = line->dcache;
	atomic_init(&ex->gen_ns, atomic_fetch_add(&inst_gen_seed, 1u << 16));
	/* the instance key: keyed hash of its value under the line's key */
	memcpy(key_in + 2, value, vlen);
	key_in[0] = 'i';
	key_in[1] = '0';
	k0 = onfs_siphash24(line->key, key_in, vlen + 2);
	key_in[1] = '1';
	k1 = onfs_siphash24(line->key, key_in, vlen + 2);
	memcpy(ex->key, &k0, 8);
	memcpy(ex->key + 8, &k1, 8);
	ex->fsid = onfs_siphash24(ex->key, "fsid", 4);
	ex->has_upper = true;
	ex->by_handle = line->by_handle;
	ex->no_chown = line->no_chown;
	ex->owner = line->owner;
	memcpy(ex->xattr_prefix, line->xattr_prefix, sizeof(ex->xattr_prefix));
	/* the lowers are borrowed (closed with the line); layer 0 is ours */
	memcpy(ex->layers, line->layers, sizeof(ex->layers));
	ex->nlayers = line->nlayers;
	memcpy(ex->fs_fd, line->fs_fd, sizeof(ex->fs_fd));
	memcpy(ex->fs_dev, line->fs_dev, sizeof(ex->fs_dev));
	memcpy(ex->fs_uuid, line->fs_uuid, sizeof(ex->fs_uuid));
	ex->numfs = line->numfs;
	ex->xino_shift = line->xino_shift;
	ex->layers[0].fd = -1;
	ex->inst_value = strdup(value);
	if (onfs_tmpl_expand(L->upper_tmpl, value, buf, sizeof(buf)) < 0)
		goto out_nomem;
	ex->inst_upper = strdup(buf);
	ex->layers[0].path = strdup(buf);
	/* decoded handles are located by real paths: never under an absent upper */
	ex->layers[0].real = strdup(buf);
	if (onfs_tmpl_expand(L->work_tmpl, value, buf, sizeof(buf)) < 0)
		goto out_nomem;
	ex->inst_work = strdup(buf);
	if (onfs_tmpl_expand(line->path, value, buf, sizeof(buf)) < 0)
		goto out_nomem;
	ex->path = strdup(buf);
	snprintf(buf, sizeof(buf), "%s/%s", line->name, value);
	ex->name = strdup(buf);
	/* committed layers of this instance (commit.c), beside the line's record */
	snprintf(buf, sizeof(buf), "%.*s/stack-%s", (int)(strrchr(L->recfile, '/') - L->recfile),
		 L->recfile, value);
	ex->stack_file = strdup(buf);
	atomic_init(&ex->base_version, atomic_load(&line->base_version));
	if (!ex->inst_value || !ex->inst_upper || !ex->layers[0].path || !ex->layers[0].real ||
	    !ex->inst_work || !ex->stack_file ||
	    !ex->path || !ex->name)
		goto out_nomem;
	/* the root identity fixed by a base move of the line (base.c) */
	onfs_base_load_root(ex);
	*out = ex;
	return 0;
out_nomem:
	inst_free(ex);
	return -ENOMEM;
}

/*
 * Take an existing upper (upfd) into use: its work area (created when
 * missing), the lock and the scrub. Any failure leaves the instance
 * read-only with the reason logged; other instances carry on.
 */
static void inst_attach(struct onfs_inst_line *L, struct onfs_export *ex, int upfd)
{
	char real[PATH_MAX], err[PATH_MAX + 256];
	struct stat st;
	int wfd;

	ex->readonly = true;
	if (fstat(upfd, &st) < 0 || st.st_dev != ex->fs_dev[ex->layers[0].fsidx]) {
		onfs_err("export '%s': upperdir '%s' is not on the filesystem of its template's "
			 "parent; served read-only", ex->name, ex->inst_upper);
		close(upfd);
		return;
	}
	if (realpath(ex->inst_upper, real)) {
		char *r = strdup(real);

		if (r) {
			free(ex->layers[0].real);
			ex->layers[0].real = r;
		}
	}
	wfd = mkdir_beneath(L->work_parent_fd, below(ex->inst_work, L->work_parent), 0700);
	if (wfd >= 0) {
		if (mkdirat(wfd, "ovlnfsd", 0700) < 0 && errno != EEXIST)
			onfs_warn("export '%s': cannot create '%s/ovlnfsd': %s", ex->name,
				  ex->inst_work, strerror(errno));
		close(wfd);
	}
	/* layer 0 must be in place for the lock check and the first-start marks */
	ex->layers[0].fd = upfd;
	if (wfd < 0) {
		onfs_err("export '%s' will be served READ-ONLY: cannot create workdir '%s': %s",
			 ex->name, ex->inst_work, strerror(-wfd));
		return;
	}
	if (onfs_workdir_setup(ex, ex->inst_work, err, sizeof(err)) < 0) {
		onfs_err("export '%s' will be served READ-ONLY: %s", ex->name, err);
		return;
	}
	ex->readonly = !ex->work_ok;
}

/* dormant -> live. inst_lock held, no call inside. */
static int inst_activate(struct onfs_inst_line *L, struct onfs_export *ex)
{
	int fd;

	if (!ex->nodes && onfs_node_cache_new(&ex->nodes) < 0)
		return -ENOMEM;
	if (!ex->dirs && onfs_dir_cache_new(&ex->dirs) < 0)
		return -ENOMEM;
	ex->readonly = false;
	{
		char err[PATH_MAX + 256];

		/* a commit cut short by a crash is finished; committed layers go in */
		if (onfs_commit_recover(ex, ex->inst_upper, ex->inst_work, err, sizeof(err)) < 0 ||
		    onfs_stack_open(ex, err, sizeof(err)) < 0) {
			onfs_err("export '%s': %s; served read-only", ex->name, err);
			onfs_stack_close(ex);
			ex->readonly = true;
			atomic_store(&ex->settled, true);
			atomic_store(&ex->live, true);
			return 0;
		}
	}
	fd = onfs_fs_open_beneath(L->line->tmpl_parent_fd, below(ex->inst_upper, L->upper_parent),
				  O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		inst_attach(L, ex, fd);
		atomic_store(&ex->settled, true);
	} else if (fd != -ENOENT) {
		onfs_err("export '%s': cannot open upperdir '%s': %s; served read-only", ex->name,
			 ex->inst_upper, strerror(-fd));
		ex->readonly = true;
		atomic_store(&ex->settled, true);
	} else {
		/* no upper yet: created on the first change (inst_materialize) */
		atomic_store(&ex->settled, false);
	}
	atomic_store(&ex->live, true);
	return 0;
}

/*
 * The first change: create the upper (with the top lower root's mode and
 * owner, so the root looks the same before and after) and the work area,
 * as the owner. inst_lock held, no call inside.
 */
static void inst_materialize(struct onfs_inst_line *L, struct onfs_export *ex)
{
	struct stat lst;
	int fd;

	if (fstat(ex->layers[1].fd, &lst) < 0)
		lst.st_mode = S_IFDIR | 0755;
	fd = mkdir_beneath(L->line->tmpl_parent_fd, below(ex->inst_upper, L->upper_parent),
			   lst.st_mode & 07777);
	if (fd < 0) {
		onfs_err("export '%s' will be served READ-ONLY: cannot create upperdir '%s': %s",
			 ex->name, ex->inst_upper, strerror(-fd));
		ex->readonly = true;
		atomic_store(&ex->settled, true);
		return;
	}
	if (lst.st_uid != ex->owner.uid || lst.st_gid != ex->owner.gid)
		if (fchown(fd, lst.st_uid, lst.st_gid) < 0 && ex->no_chown)
			onfs_upper_set_owner(fd, "", lst.st_uid, lst.st_gid, lst.st_mode);
	if (fchmod(fd, lst.st_mode & 07777) < 0)
		onfs_debug("export '%s': chmod of the new upper root: %s", ex->name,
			   strerror(errno));
	inst_attach(L, ex, fd);
	atomic_store(&ex->settled, true);
	/*
	 * The new upper is empty, so every cached node is still right except
	 * the root, the one directory that now has an upper part: build it
	 * afresh (it replaces the cached one). Other nodes stay cached: a
	 * decode from the handle alone is costlier, and fails where the
	 * layers are different mounts of one filesystem (docs/instances.md).
	 */
	{
		struct onfs_node *root;

		if (onfs_root(ex, &root) == 0)
			onfs_node_put(root);
		else
			onfs_node_cache_flush(ex);
	}
	onfs_dir_cache_free(ex->dirs);
	ex->dirs = NULL;
	if (onfs_dir_cache_new(&ex->dirs) < 0)
		ex->readonly = true; /* no memory: refuse changes rather than crash */
	/* and every cached attribute or listing read before is void (cache.c) */
	onfs_changed_ns(ex);
	onfs_info("export '%s': upper and work area created (%s, %s)%s", ex->name,
		  ex->inst_upper, ex->inst_work, ex->readonly ? "; READ-ONLY" : "");
}

/* live -> dormant: descriptors and caches go, the data stays. */
static void inst_release(struct onfs_export *ex)
{
	/* void whatever a cache (cache.c) read before, then drop the caches */
	onfs_changed_ns(ex);
	onfs_dir_cache_free(ex->dirs);
	ex->dirs = NULL;
	onfs_node_cache_free(ex->nodes);
	ex->nodes = NULL;
	if (ex->layers[0].fd >= 0)
		close(ex->layers[0].fd);
	ex->layers[0].fd = -1;
	if (ex->lock_fd >= 0)
		close(ex->lock_fd);
	if (ex->work_fd >= 0)
		close(ex->work_fd);
	if (ex->index_fd >= 0)
		close(ex->index_fd);
	ex->lock_fd = ex->work_fd = ex->index_fd = -1;
	ex->work_ok = false;
	onfs_stack_close(ex);
	atomic_store(&ex->settled, false);
	atomic_store(&ex->live, false);
}

/* Raise quiesce and wait until no call is inside; inst_lock held. */
bool onfs_quiesce(struct onfs_export *ex, bool wait)
{
	atomic_store(&ex->quiesce, true);
	for (int ms = 0; atomic_load(&ex->active) > 0; ms++) {
		struct timespec t = { 0, 1000000 };

		if (!wait || ms >= QUIESCE_WAIT_MS) {
			atomic_store(&ex->quiesce, false);
			return false;
		}
		nanosleep(&t, NULL);
	}
	return true;
}

static int inst_prepare(struct onfs_export *ex, bool for_write)
{
	struct onfs_inst_line *L = ex->line->tmpl;
	int ret = 0;

	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		return -EAGAIN;
	}
	ret = onfs_owner_enter(ex);
	if (ret == 0 && !atomic_load(&ex->live))
		ret = inst_activate(L, ex);
	if (ret == 0 && for_write && !atomic_load(&ex->settled))
		inst_materialize(L, ex);
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return ret;
}

static int inst_enter(struct onfs_export *ex, bool for_write)
{
	for (int tries = 0; tries < 4; tries++) {
		int ret;

		atomic_fetch_add(&ex->active, 1);
		if (!atomic_load(&ex->quiesce) && atomic_load(&ex->live) &&
		    (!for_write || atomic_load(&ex->settled))) {
			atomic_store(&ex->last_use, now_s());
			return 0;
		}
		atomic_fetch_sub(&ex->active, 1);
		ret = inst_prepare(ex, for_write);
		if (ret < 0)
			return ret;
	}
	return -EAGAIN;
}

bool onfs_instance_settled(const struct onfs_export *ex)
{
	return !ex->line || atomic_load(&ex->settled);
}

void onfs_instance_leave(struct onfs_export *ex)
{
	if (ex)
		atomic_fetch_sub(&ex->active, 1);
}

/*
 * A call into a plain export counts itself in as an instance's does, so a
 * reset or commit (commit.c) can swap its upper with no call inside. While
 * one runs (milliseconds: renames) the call waits, at most 2 s, then
 * answers JUKEBOX (-EAGAIN).
 */
int onfs_export_enter(struct onfs_export *ex)
{
	for (int ms = 0;; ms++) {
		struct timespec t = { 0, 1000000 };

		atomic_fetch_add(&ex->active, 1);
		if (!atomic_load(&ex->quiesce))
			return 0;
		atomic_fetch_sub(&ex->active, 1);
		if (ms >= 2000)
			return -EAGAIN;
		nanosleep(&t, NULL);
	}
}

/* --- the record --- */

static int record_append(struct onfs_inst_line *L, const char *line)
{
	int fd = open(L->recfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	size_t len = strlen(line);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, line, len) != (ssize_t)len || fdatasync(fd) < 0)
		ret = -EIO;
	close(fd);
	return ret;
}

static void hex_encode(const char *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[(unsigned char)in[i] >> 4];
		out[2 * i + 1] = hx[(unsigned char)in[i] & 15];
	}
	out[2 * len] = '\0';
	if (len == 0)
		strcpy(out, "-");
}

static int hex_decode(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in), i;

	if (strcmp(in, "-") == 0) {
		out[0] = '\0';
		return 0;
	}
	if (n % 2 || n / 2 >= cap)
		return -EINVAL;
	for (i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (char)v;
	}
	out[i] = '\0';
	return 0;
}

static struct onfs_export *find_value(struct onfs_inst_line *L, const char *value)
{
	for (size_t i = 0; i < L->ninst; i++)
		if (strcmp(L->insts[i]->inst_value, value) == 0)
			return L->insts[i];
	return NULL;
}

static int add_inst(struct onfs_inst_line *L, struct onfs_export *ex)
{
	if (L->ninst == L->icap) {
		size_t cap = L->icap ? L->icap * 2 : 16;
		struct onfs_export **n = realloc(L->insts, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		L->insts = n;
		L->icap = cap;
	}
	L->insts[L->ninst++] = ex;
	atomic_store(&by_id[ex->id], ex);
	return 0;
}

static bool mount_known(struct onfs_inst_line *L, const char *name,
			const struct onfs_client_id *who)
{
	for (size_t i = 0; i < L->nmounts; i++) {
		const struct name_mount *m = &L->mounts[i];

		if (strcmp(m->name, name) == 0 && strcmp(m->addr, who->addr) == 0 &&
		    strlen(m->machine) == who->machine_len &&
		    memcmp(m->machine, who->machine, who->machine_len) == 0)
			return true;
	}
	return false;
}

static int add_mount(struct onfs_inst_line *L, const char *name, const char *addr,
		     const char *machine)
{
	struct name_mount *m;

	if (L->nmounts == L->mcap) {
		size_t cap = L->mcap ? L->mcap * 2 : 16;
		struct name_mount *n = realloc(L->mounts, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		L->mounts = n;
		L->mcap = cap;
	}
	m = &L->mounts[L->nmounts];
	m->name = strdup(name);
	m->machine = strdup(machine);
	snprintf(m->addr, sizeof(m->addr), "%s", addr);
	if (!m->name || !m->machine) {
		free(m->name);
		free(m->machine);
		return -ENOMEM;
	}
	L->nmounts++;
	return 0;
}

static int load_record(struct onfs_inst_line *L, char *err, size_t errlen)
{
	FILE *f = fopen(L->recfile, "re");
	char line[1024];
	int lineno = 0;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "instance record '%s': %s", L->recfile, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char a[128], b[128], c[600];
		unsigned id;
		int n;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "i %u %127s%n", &id, a, &n) == 2 && line[n] == '\0' &&
		    id > 0 && id < 65536 && onfs_tmpl_value_ok(a, strlen(a))) {
			struct onfs_export *ex;

			if (find_value(L, a) || atomic_load(&by_id[id]))
				goto bad;
			if (inst_new(L, a, (uint16_t)id, &ex) < 0 || add_inst(L, ex) < 0)
				goto nomem;
			continue;
		}
		if (sscanf(line, "m %127s %127s %599s%n", a, b, c, &n) == 3 && line[n] == '\0') {
			char machine[300];

			if (hex_decode(c, machine, sizeof(machine)) < 0)
				goto bad;
			if (add_mount(L, a, b, machine) < 0)
				goto nomem;
			continue;
		}
bad:
		/* a torn last line after a crash is expected; say so and go on */
		onfs_warn("instance record '%s' line %d: ignored ('%.60s')", L->recfile, lineno, line);
	}
	fclose(f);
	return 0;
nomem:
	fclose(f);
	snprintf(err, errlen, "instance record '%s': out of memory", L->recfile);
	return -1;
}

/* --- the idle sweep --- */

static void sweep_line(struct onfs_inst_line *L, long long now)
{
	pthread_mutex_lock(&L->lock);
	for (size_t i = 0; i < L->ninst; i++) {
		struct onfs_export *ex = L->insts[i];

		if (!atomic_load(&ex->live) || atomic_load(&ex->active) > 0 ||
		    now - atomic_load(&ex->last_use) < (long long)L->idle)
			continue;
		if (pthread_mutex_trylock(&ex->inst_lock) != 0)
			continue;
		if (onfs_quiesce(ex, false)) {
			inst_release(ex);
			atomic_store(&ex->quiesce, false);
			onfs_info("export '%s': idle for %u s: descriptors and caches released",
				  ex->name, L->idle);
		}
		pthread_mutex_unlock(&ex->inst_lock);
	}
	pthread_mutex_unlock(&L->lock);
}

static void *sweeper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lines_lock);
	while (!sweeper_stop) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 1;
		pthread_cond_timedwait(&sweeper_cond, &lines_lock, &t);
		if (sweeper_stop)
			break;
		for (size_t i = 0; i < ONFS_ARRAY_SIZE(lines); i++)
			if (lines[i] && lines[i]->idle)
				sweep_line(lines[i], now_s());
	}
	pthread_mutex_unlock(&lines_lock);
	return NULL;
}

/* --- a line --- */

int onfs_inst_line_open(struct onfs_export *line, const struct onfs_export_conf *conf,
			const char *key_dir, char *err, size_t errlen)
{
	struct onfs_inst_line *L = calloc(1, sizeof(*L));
	char parent[PATH_MAX];
	size_t slot;

	if (!L) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	line->tmpl = L;
	L->line = line;
	L->kind = conf->tmpl;
	L->max = conf->max_instances;
	L->idle = conf->idle_timeout;
	L->work_parent_fd = -1;
	pthread_mutex_init(&L->lock, NULL);
	L->upper_tmpl = strdup(conf->upperdir);
	L->work_tmpl = strdup(conf->workdir);
	if (onfs_tmpl_parent(conf->upperdir, parent, sizeof(parent)) == 0)
		L->upper_parent = strdup(parent);
	if (onfs_tmpl_parent(conf->workdir, parent, sizeof(parent)) == 0)
		L->work_parent = strdup(parent);
	if (!L->upper_tmpl || !L->work_tmpl || !L->upper_parent || !L->work_parent) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	L->work_parent_fd = open(L->work_parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (L->work_parent_fd < 0) {
		snprintf(err, errlen, "workdir template '%s': parent '%s': %s", conf->workdir,
			 L->work_parent, strerror(errno));
		return -1;
	}
	snprintf(L->recfile, sizeof(L->recfile), "%s/instances", key_dir);
	if (load_record(L, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&lines_lock);
	for (slot = 0; slot < ONFS_ARRAY_SIZE(lines) && lines[slot]; slot++)
		;
	if (slot == ONFS_ARRAY_SIZE(lines)) {
		pthread_mutex_unlock(&lines_lock);
		snprintf(err, errlen, "too many templated exports");
		return -1;
	}
	lines[slot] = L;
	if (L->idle && !sweeper_running) {
		sweeper_stop = false;
		if (pthread_create(&sweeper, NULL, sweeper_main, NULL) == 0)
			sweeper_running = true;
		else
			onfs_warn("export '%s': cannot start the idle sweep; idle_timeout has no "
				  "effect", line->name);
	}
	pthread_mutex_unlock(&lines_lock);
	onfs_instance_log(line);
	return 0;
}

void onfs_inst_line_close(struct onfs_export *line)
{
	struct onfs_inst_line *L = line->tmpl;
	bool stop = false, any = false;

	if (!L)
		return;
	pthread_mutex_lock(&lines_lock);
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(lines); i++) {
		if (lines[i] == L)
			lines[i] = NULL;
		else if (lines[i])
			any = true;
	}
	if (!any && sweeper_running) {
		sweeper_stop = true;
		pthread_cond_broadcast(&sweeper_cond);
		stop = true;
		sweeper_running = false;
	}
	pthread_mutex_unlock(&lines_lock);
	if (stop)
		pthread_join(sweeper, NULL);
	for (size_t i = 0; i < L->ninst; i++) {
		atomic_store(&by_id[L->insts[i]->id], NULL);
		inst_free(L->insts[i]);
	}
	for (size_t i = 0; i < L->nmounts; i++) {
		free(L->mounts[i].name);
		free(L->mounts[i].machine);
	}
	if (L->work_parent_fd >= 0)
		close(L->work_parent_fd);
	free(L->mounts);
	free(L->insts);
	free(L->upper_tmpl);
	free(L->work_tmpl);
	free(L->upper_parent);
	free(L->work_parent);
	free(L);
	line->tmpl = NULL;
}

/* --- public: overlay.h --- */

bool onfs_export_templated(const struct onfs_export *ex)
{
	return ex->tmpl != NULL;
}

const struct onfs_export *onfs_export_line_of(const struct onfs_export *ex)
{
	return ex->line ? ex->line : ex;
}

unsigned onfs_export_template_kind(const struct onfs_export *ex)
{
	return ex->tmpl ? ex->tmpl->kind : 0;
}

/* Does who belong to instance ex? */
static bool belongs(struct onfs_export *ex, const struct onfs_client_id *who)
{
	struct onfs_inst_line *L = ex->line->tmpl;
	bool ok;

	switch (L->kind) {
	case ONFS_TMPL_CLIENT:
		return strcmp(who->addr, ex->inst_value) == 0;
	case ONFS_TMPL_HOST:
		return who->machine_len == strlen(ex->inst_value) &&
		       memcmp(who->machine, ex->inst_value, who->machine_len) == 0;
	case ONFS_TMPL_NAME:
		pthread_mutex_lock(&L->lock);
		ok = mount_known(L, ex->inst_value, who);
		pthread_mutex_unlock(&L->lock);
		return ok;
	default:
		return false;
	}
}

int onfs_instance_enter_id(uint16_t id, const struct onfs_client_id *who, bool for_write,
			   struct onfs_export **out)
{
	struct onfs_export *ex = atomic_load(&by_id[id]);
	int ret;

	if (!ex || !ex->line || !ex->line->tmpl)
		return -ESTALE;
	if (!belongs(ex, who)) {
		onfs_debug("export '%s': a handle of this instance from %s: STALE", ex->name,
			   who->addr);
		return -ESTALE;
	}
	ret = inst_enter(ex, for_write);
	if (ret < 0)
		return ret;
	*out = ex;
	return 0;
}

int onfs_instance_try_enter_id(uint16_t id, const struct onfs_client_id *who,
			       struct onfs_export **out)
{
	struct onfs_export *ex = atomic_load(&by_id[id]);

	if (!ex || !ex->line || !ex->line->tmpl)
		return -ESTALE;
	if (ex->line->tmpl->kind == ONFS_TMPL_NAME)
		return -EAGAIN;
	if (!belongs(ex, who))
		return -ESTALE;
	/* inst_enter's check, once: quiesce raised or not live means a wait */
	atomic_fetch_add(&ex->active, 1);
	if (atomic_load(&ex->quiesce) || !atomic_load(&ex->live)) {
		atomic_fetch_sub(&ex->active, 1);
		return -EAGAIN;
	}
	atomic_store(&ex->last_use, now_s());
	*out = ex;
	return 0;
}

static int machine_value(const struct onfs_client_id *who, char *out, size_t cap)
{
	if (!onfs_tmpl_value_ok(who->machine, who->machine_len) || who->machine_len >= cap)
		return -EACCES;
	memcpy(out, who->machine, who->machine_len);
	out[who->machine_len] = '\0';
	return 0;
}

/* Export ids are taken by every line: one allocation at a time. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;

/* A free export id: a keyed hash of the value first, then the next free one. */
static int alloc_id(struct onfs_inst_line *L, const char *value, uint16_t *out)
{
	uint16_t id = (uint16_t)onfs_siphash24(L->line->key, value, strlen(value));

	for (unsigned probes = 0; probes < 65536; probes++, id++) {
		if (id != 0 && !id_reserved(id) && !atomic_load(&by_id[id])) {
			*out = id;
			return 0;
		}
	}
	return -ENOSPC;
}

int onfs_instance_for_mount(struct onfs_export *line, const struct onfs_client_id *who,
			    const char *name, bool for_write, struct onfs_export **out)
{
	struct onfs_inst_line *L = line->tmpl;
	struct onfs_export *ex, *fresh = NULL;
	char value[ONFS_TMPL_VALUE_MAX + 1];
	char machine[ONFS_CLIENT_MACHINE_MAX + 1];
	char rec[2 * ONFS_CLIENT_MACHINE_MAX + 2 * ONFS_TMPL_VALUE_MAX + 160] = "";
	bool new_mount = false, id_locked = false;
	int ret = 0;

	switch (L->kind) {
	case ONFS_TMPL_CLIENT:
		if (!onfs_tmpl_value_ok(who->addr, strlen(who->addr)))
			ret = -EACCES;
		else
			snprintf(value, sizeof(value), "%s", who->addr);
		break;
	case ONFS_TMPL_HOST:
		ret = machine_value(who, value, sizeof(value));
		if (ret < 0)
			onfs_info("mount: export '%s': refused for %s: its AUTH_SYS machine name "
				  "('%.*s') is not a {host} value (1-%d bytes of A-Z a-z 0-9 . _ -)",
				  line->name, who->addr,
				  (int)(who->machine_len < 80 ? who->machine_len : 80), who->machine,
				  ONFS_TMPL_VALUE_MAX);
		break;
	case ONFS_TMPL_NAME:
		if (!name || !onfs_tmpl_value_ok(name, strlen(name))) {
			onfs_info("mount: export '%s': refused for %s: '%.80s' is not a {name} value "
				  "(1-%d bytes of A-Z a-z 0-9 . _ -)", line->name, who->addr,
				  name ? name : "", ONFS_TMPL_VALUE_MAX);
			ret = -EACCES;
		} else {
			snprintf(value, sizeof(value), "%s", name);
		}
		break;
	default:
		ret = -EACCES;
	}
	if (ret < 0)
		return ret;
	memcpy(machine, who->machine, who->machine_len);
	machine[who->machine_len] = '\0';

	pthread_mutex_lock(&L->lock);
	ex = find_value(L, value);
	if (!ex && L->max && L->ninst >= L->max) {
		onfs_warn("mount: export '%s': refused for %s: max_instances (%u) reached, no "
			  "instance for '%s'", line->name, who->addr, L->max, value);
		ret = -EACCES;
		goto out_unlock;
	}
	if (!ex) {
		uint16_t id;

		pthread_mutex_lock(&id_lock);
		id_locked = true;
		ret = alloc_id(L, value, &id);
		if (ret == 0)
			ret = inst_new(L, value, id, &fresh);
		if (ret < 0)
			goto out_unlock;
		snprintf(rec, sizeof(rec), "i %u %s\n", (unsigned)id, value);
	}
	if (L->kind == ONFS_TMPL_NAME && !mount_known(L, value, who)) {
		char hex[2 * ONFS_CLIENT_MACHINE_MAX + 2];

		hex_encode(machine, who->machine_len, hex);
		snprintf(rec + strlen(rec), sizeof(rec) - strlen(rec), "m %s %s %s\n", value,
			 who->addr, hex);
		new_mount = true;
	}
	/* one append and one sync for both lines: the instance exists once recorded */
	if (rec[0])
		ret = record_append(L, rec);
	if (ret == 0 && fresh) {
		ret = add_inst(L, fresh);
		if (ret == 0) {
			onfs_info("export '%s': new instance '%s' (export id %u; %zu in all)",
				  line->name, value, (unsigned)fresh->id, L->ninst);
			ex = fresh;
			fresh = NULL;
		}
	}
	if (ret == 0 && new_mount)
		ret = add_mount(L, value, who->addr, machine);
	if (ret < 0)
		onfs_err("export '%s': cannot record instance '%s' for %s in '%s': %s", line->name,
			 value, who->addr, L->recfile, strerror(-ret));
out_unlock:
	if (id_locked)
		pthread_mutex_unlock(&id_lock);
	pthread_mutex_unlock(&L->lock);
	inst_free(fresh);
	if (ret < 0)
		return ret;
	ret = inst_enter(ex, for_write);
	if (ret < 0)
		return ret;
	*out = ex;
	return 0;
}

void onfs_instance_log(const struct onfs_export *line)
{
	struct onfs_inst_line *L = line->tmpl;
	size_t live = 0, upper = 0;

	if (!L)
		return;
	pthread_mutex_lock(&L->lock);
	for (size_t i = 0; i < L->ninst; i++) {
		live += atomic_load(&L->insts[i]->live);
		upper += L->insts[i]->layers[0].fd >= 0;
	}
	onfs_info("export '%s' (%s): templated by %s: upperdir '%s', workdir '%s'; %zu "
		  "instance(s) (%zu live, %zu with an open upper); max_instances %u%s; "
		  "idle_timeout %u s%s",
		  line->name, line->path, onfs_tmpl_kind_name(L->kind), L->upper_tmpl,
		  L->work_tmpl, L->ninst, live, upper, L->max, L->max ? "" : " (no limit)",
		  L->idle, L->idle ? "" : " (never)");
	pthread_mutex_unlock(&L->lock);
}

/* --- the control socket (server/ctl.c, layers.c) --- */

size_t onfs_instance_list(struct onfs_export *line, struct onfs_export **out, size_t cap)
{
	struct onfs_inst_line *L = line->tmpl;
	size_t n = 0;

	if (!L)
		return 0;
	pthread_mutex_lock(&L->lock);
	for (size_t i = 0; i < L->ninst && n < cap; i++)
		out[n++] = L->insts[i];
	pthread_mutex_unlock(&L->lock);
	return n;
}

/*
 * Reset: the instance goes back to dormant with no upper. Under inst_lock
 * with no call inside: caches and descriptors go (inst_release), then the
 * index and the upper are renamed into workdir/ovlnfsd/trash/NAME (one
 * rename each, the upper last: it is the step the client sees). The next
 * change creates a fresh upper (inst_materialize). The trash is emptied by
 * the caller in the background, or by the work-area setup after a crash.
 */
/*
 * Freeze an instance for reset or commit: inst_lock taken, no call inside
 * (quiesce raised) and the owner's credentials on this thread. On success
 * the caller ends with quiesce lowered and inst_lock released; on failure
 * nothing is held and err says why.
 */
static int inst_freeze(struct onfs_export *ex, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&ex->inst_lock);
	if (!onfs_quiesce(ex, true)) {
		pthread_mutex_unlock(&ex->inst_lock);
		snprintf(err, errlen, "'%s': calls did not drain within %d s", ex->name,
			 QUIESCE_WAIT_MS / 1000);
		return -EAGAIN;
	}
	ret = onfs_owner_enter(ex);
	if (ret < 0) {
		snprintf(err, errlen, "'%s': cannot take the owner's credentials: %s", ex->name,
			 strerror(-ret));
		atomic_store(&ex->quiesce, false);
		pthread_mutex_unlock(&ex->inst_lock);
	}
	return ret;
}

static int instance_reset(struct onfs_export *ex, char *err, size_t errlen);

static int reset_any(struct onfs_export *ex, char *err, size_t errlen);

/* Whole against a base move or rebase (base.c's lock): a waiting base goes with the reset. */
int onfs_instance_reset(struct onfs_export *ex, char *err, size_t errlen)
{
	int ret;

	onfs_base_lock(true);
	ret = reset_any(ex, err, errlen);
	onfs_base_lock(false);
	return ret;
}

static int reset_any(struct onfs_export *ex, char *err, size_t errlen)
{
	int ret;

	if (ex->tmpl) {
		snprintf(err, errlen, "'%s' is a templated line: name one of its instances "
			 "(EXPORT/INSTANCE, see list)", ex->name);
		return -EINVAL;
	}
	if (!ex->line) {
		ret = onfs_reset_plain(ex, err, errlen);
		/* a new base waited for this upper: it goes with the reset */
		if (ret == 0 && ex->npend)
			ret = onfs_base_apply(ex, true, err, errlen);
		return ret;
	}
	ret = instance_reset(ex, err, errlen);
	if (ret == 0 && ex->npend)
		ret = onfs_base_apply(ex, true, err, errlen);
	return ret;
}

static int instance_reset(struct onfs_export *ex, char *err, size_t errlen)
{
	char trash[PATH_MAX], up[PATH_MAX + 16], ix[PATH_MAX + 16], idx[PATH_MAX];
	int ret = 0;

	ret = inst_freeze(ex, err, errlen);
	if (ret < 0)
		return ret;
	inst_release(ex);
	snprintf(trash, sizeof(trash), "%s/ovlnfsd/trash", ex->inst_work);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create '%s': %s", trash, strerror(errno));
		goto out;
	}
	onfs_trash_name(ex, trash, up, sizeof(up), "upper");
	onfs_trash_name(ex, trash, ix, sizeof(ix), "index");
	snprintf(idx, sizeof(idx), "%s/index", ex->inst_work);
	if (rename(idx, ix) < 0 && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot rename '%s' to '%s': %s", idx, ix, strerror(errno));
		goto out;
	}
	if (rename(ex->inst_upper, up) < 0 && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot rename '%s' to '%s': %s", ex->inst_upper, up,
			 strerror(errno));
		goto out;
	}
	/* the next upper records the base as it is then */
	snprintf(idx, sizeof(idx), "%s/ovlnfsd/base", ex->inst_work);
	if (unlink(idx) < 0 && errno != ENOENT)
		onfs_warn("export '%s': cannot remove '%s': %s", ex->name, idx, strerror(errno));
	onfs_info("export '%s': reset: upper moved to '%s', emptied in the background",
		  ex->name, up);
out:
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return ret;
}

const char *onfs_instance_upper(const struct onfs_export *ex)
{
	return ex->line ? ex->inst_upper : (ex->has_upper ? ex->layers[0].path : NULL);
}

const char *onfs_instance_work(const struct onfs_export *ex)
{
	return ex->inst_work;
}

/*
 * Commit of an instance: with no call inside, the instance goes dormant
 * (inst_release: caches and descriptors gone), the disk part runs
 * (commit.c), and the next call activates it over the new stack.
 */
int onfs_instance_commit(struct onfs_export *ex, const char *layers_dir, const char *layer,
			 char *err, size_t errlen)
{
	struct stat st;
	char *moved = NULL;
	int ret;

	ret = inst_freeze(ex, err, errlen);
	if (ret < 0)
		return ret;
	if (stat(ex->inst_upper, &st) < 0) {
		ret = -ENOENT;
		snprintf(err, errlen, "'%s' has no upper yet (upperdir '%s'): nothing to commit",
			 ex->name, ex->inst_upper);
		goto out;
	}
	/* live, so that the index and the view it gives can be read (commit.c) */
	if (!atomic_load(&ex->live)) {
		ret = inst_activate(ex->line->tmpl, ex);
		if (ret < 0)
			snprintf(err, errlen, "'%s': cannot activate it: %s", ex->name,
				 strerror(-ret));
	}
	if (ret == 0)
		ret = onfs_commit_prepare(ex, &moved, err, errlen) < 0 ? -EIO : 0;
	inst_release(ex);
	if (ret == 0)
		ret = onfs_commit_disk(ex, ex->inst_upper, ex->inst_work, layers_dir, layer, moved,
				       err, errlen);
	free(moved);
out:
	atomic_store(&ex->quiesce, false);
	pthread_mutex_unlock(&ex->inst_lock);
	return ret;
}

void onfs_inst_line_lock(struct onfs_export *line, bool lock)
{
	if (lock)
		pthread_mutex_lock(&line->tmpl->lock);
	else
		pthread_mutex_unlock(&line->tmpl->lock);
}
