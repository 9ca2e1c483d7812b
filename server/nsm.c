/*
 * nsm.c - the status monitor half of the lock manager: the server's NSM
 * state number, the records of clients holding locks (STATE/nsm/sm/), the
 * SM_NOTIFY sent to each recorded client after a restart with the grace
 * period that goes with it, and the NSM program (100024 v1) that receives
 * a rebooted client's SM_NOTIFY and releases its locks.
 *
 * knfsd splits this between lockd and a separate rpc.statd; ovlnfsd is
 * both, on its one port, registered in its embedded portmapper, so a
 * client's statd reaches it the same way.
 *
 * Owns: struct onfs_nlm (srv->nlm) and its hosts; the files under
 * STATE/nsm/: "state" (the state number: odd while serving, even after a
 * clean stop, as NSM requires), sm/ (one file per host that holds or
 * waits for a lock on an export with locking = on) and sm.bak/ (hosts of
 * the previous run still to be told).
 * Thread: onfs_nlm_start on the main thread before the loop runs;
 * onfs_nlm_stop/free on the loop thread; monitor/unmonitor and SM_NOTIFY
 * on pool workers (they write and sync files); the rest any thread.
 * Never: blocks the loop on the disk while serving.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/overlay.h"
#include "sm_inter.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool onfs_nlm_in_grace(struct onfs_nlm *nlm)
{
	int64_t end;

	if (!nlm)
		return false;
	end = __atomic_load_n(&nlm->grace_end_ms, __ATOMIC_RELAXED);
	return end != 0 && mono_ms() < end;
}

void onfs_nlm_norm_addr(const struct sockaddr *in, socklen_t len, struct sockaddr_storage *out,
			socklen_t *outlen)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)in;

	memset(out, 0, sizeof(*out));
	*outlen = 0;
	if (len <= 0 || (size_t)len > sizeof(*out))
		return;
	if (in->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		*outlen = sizeof(*s4);
		return;
	}
	memcpy(out, in, (size_t)len);
	*outlen = len;
}

bool onfs_nlm_addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
	return false;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const void *src = ss->ss_family == AF_INET6 ?
				  (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
				  (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, src, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

struct onfs_nlm_host *onfs_nlm_host_get(struct onfs_nlm *nlm, const char *name,
					const struct sockaddr *peer, socklen_t len)
{
	struct onfs_nlm_host *h;
	struct sockaddr_storage norm;
	socklen_t normlen;
	unsigned same_addr = 0;

	if (!name || strlen(name) > ONFS_NLM_NAME_MAX || !peer || len <= 0 ||
	    (size_t)len > sizeof(h->addr))
		return NULL;
	onfs_nlm_norm_addr(peer, len, &norm, &normlen);
	peer = (const struct sockaddr *)&norm;
	len = normlen;
	pthread_mutex_lock(&nlm->mu);
	for (h = nlm->hosts; h; h = h->next) {
		if (onfs_nlm_addr_eq(&h->addr, peer)) {
			if (strcmp(h->name, name) == 0)
				goto out;
			same_addr++;
		}
	}
	/* one address cannot fill the table by inventing names */
	if (nlm->nhosts >= ONFS_NLM_MAX_HOSTS || same_addr >= ONFS_NLM_NAMES_PER_ADDR) {
		h = NULL;
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out;
	h->id = ++nlm->next_host;
	snprintf(h->name, sizeof(h->name), "%s", name);
	memcpy(&h->addr, peer, (size_t)len);
	h->addrlen = len;
	if (h->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&h->addr)->sin_port = 0;
	else if (h->addr.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&h->addr)->sin6_port = 0;
	pthread_mutex_init(&h->mu, NULL);
	h->next = nlm->hosts;
	nlm->hosts = h;
	nlm->nhosts++;
out:
	pthread_mutex_unlock(&nlm->mu);
	return h;
}

/* STATE/nsm/sm/ADDR_HASH: the address, then a hash of the name (names may hold anything). */
static void record_path(struct onfs_nlm *nlm, const struct onfs_nlm_host *h, char *buf,
			size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	uint64_t hash = 1469598103934665603ull;

	for (const char *p = h->name; *p; p++)
		hash = (hash ^ (uint8_t)*p) * 1099511628211ull;
	addr_text(&h->addr, a, sizeof(a));
	snprintf(buf, cap, "%s/sm/%s_%016llx", nlm->dir, a, (unsigned long long)hash);
}

static int write_file_sync(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text);
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int onfs_nsm_monitor(struct onfs_nlm *nlm, struct onfs_nlm_host *h)
{
	char path[PATH_MAX], text[ONFS_NLM_NAME_MAX + 64], a[INET6_ADDRSTRLEN];
	int err;

	if (h->monitored || !nlm->dir)
		return 0;
	record_path(nlm, h, path, sizeof(path));
	addr_text(&h->addr, a, sizeof(a));
	snprintf(text, sizeof(text), "%s %s\n", a, h->name);
	err = write_file_sync(path, text);
	if (err < 0) {
		onfs_err("nsm: cannot record lock holder %s (%s) in '%s': %s", h->name, a, path,
			 strerror(-err));
		return err;
	}
	h->monitored = true;
	onfs_debug("nsm: monitoring %s (%s)", h->name, a);
	return 0;
}

static size_t host_count(struct onfs_nlm *nlm, uint32_t host)
{
	struct onfs_server *srv = nlm->srv;
	size_t n = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE), count = 0;

	for (size_t i = 0; i < n; i++)
		if (srv->exports[i])
			count += onfs_lock_host_count(onfs_export_locks(srv->exports[i]), host);
	return count;
}

void onfs_nsm_maybe_unmonitor(struct onfs_nlm *nlm, struct onfs_nlm_host *h)
{
	char path[PATH_MAX];

	if (!h || !__atomic_load_n(&h->monitored, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&h->mu);
	if (h->monitored && host_count(nlm, h->id) == 0) {
		record_path(nlm, h, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			onfs_warn("nsm: cannot remove '%s': %s", path, strerror(errno));
		h->monitored = false;
		onfs_debug("nsm: %s holds no lock any more", h->name);
	}
	pthread_mutex_unlock(&h->mu);
}

void onfs_nlm_free_host(struct onfs_nlm *nlm, struct onfs_nlm_host *h)
{
	struct onfs_server *srv = nlm->srv;
	size_t n = __atomic_load_n(&srv->nexports, __ATOMIC_ACQUIRE);

	for (size_t i = 0; i < n; i++) {
		struct onfs_lock_table *t;
		struct onfs_lock_grant *g = NULL;

		if (!srv->exports[i])
			continue;
		t = onfs_export_locks(srv->exports[i]);
		onfs_lock_free_host(t, h->id, &g);
		onfs_nlm_send_grants(nlm, t, g);
	}
	onfs_nsm_maybe_unmonitor(nlm, h);
}

/* --- startup: state number, the hosts to notify, grace --- */

static int mkdir_p1(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int read_state(const char *path, int32_t *state)
{
	char buf[32] = "";
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*state = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	*state = (int32_t)strtol(buf, NULL, 10);
	return 0;
}

static int write_state(struct onfs_nlm *nlm, int32_t state)
{
	char path[PATH_MAX], text[32];

	snprintf(path, sizeof(path), "%s/state", nlm->dir);
	snprintf(text, sizeof(text), "%d\n", state);
	return write_file_sync(path, text);
}

/*
 * The name we give in SM_NOTIFY: the address of ours the kernel would
 * send from to reach the peer. A client's statd matches it against the
 * server it monitors by resolving both to addresses, so an address always
 * matches where a host name the client cannot resolve would not. With no
 * route, the configured listen address or our host name.
 */
static void notify_name(struct onfs_nlm *nlm, const struct sockaddr_storage *dst,
			socklen_t dstlen, char *out, size_t cap)
{
	struct sockaddr_storage me;
	struct sockaddr_storage to = *dst;
	socklen_t len = sizeof(me);
	int fd;

	snprintf(out, cap, "%s", nlm->myname);
	if (to.ss_family == AF_INET)
		((struct sockaddr_in *)&to)->sin_port = htons(111);
	else
		((struct sockaddr_in6 *)&to)->sin6_port = htons(111);
	fd = socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* a UDP connect sends nothing: it only picks the route and source */
	if (connect(fd, (struct sockaddr *)&to, dstlen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
	    !(me.ss_family == AF_INET6 &&
	      IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&me)->sin6_addr)))
		addr_text(&me, out, cap);
	close(fd);
}

/* Build and queue SM_NOTIFY {mon_name = our name, state} to the statd at addr. */
static void queue_notify(struct onfs_nlm *nlm, const char *addr, const char *record)
{
	char name[INET6_ADDRSTRLEN + 256];
	struct onfs_stat_chge args = { .mon_name = name, .state = nlm->state };
	uint8_t buf[ONFS_NLM_NAME_MAX + 64];
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct onfs_out *o;
	XDR xdrs;
	u_int len;

	memset(&dst, 0, sizeof(dst));
	if (uv_ip4_addr(addr, 0, &a4) == 0) {
		memcpy(&dst, &a4, sizeof(a4));
		dstlen = sizeof(a4);
	} else if (uv_ip6_addr(addr, 0, &a6) == 0) {
		memcpy(&dst, &a6, sizeof(a6));
		dstlen = sizeof(a6);
	} else {
		onfs_warn("nsm: '%s': not an address; not notified", record);
		return;
	}
	notify_name(nlm, &dst, dstlen, name, sizeof(name));
	xdrmem_create(&xdrs, (char *)buf, sizeof(buf), XDR_ENCODE);
	if (!xdr_onfs_stat_chge(&xdrs, &args)) {
		xdr_destroy(&xdrs);
		return;
	}
	len = xdr_getpos(&xdrs);
	xdr_destroy(&xdrs);
	o = onfs_out_new(len);
	if (!o)
		return;
	memcpy(o->args, buf, len);
	o->len = len;
	o->kind = ONFS_OUT_NOTIFY;
	o->prog = ONFS_SM_PROG;
	o->vers = ONFS_SM_VERS;
	o->proc = ONFS_SM_NOTIFY;
	o->dst = dst;
	o->dstlen = dstlen;
	o->record = strdup(record);
	onfs_rpcout_submit(nlm, o);
}

/*
 * Move the previous run's records from sm/ to sm.bak/, then queue a
 * notify for every record in sm.bak/ (including those a crash left there).
 * Returns how many hosts are to be told.
 */
static size_t notify_previous(struct onfs_nlm *nlm)
{
	char sm[PATH_MAX], bak[PATH_MAX], from[2 * PATH_MAX], to[2 * PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(sm, sizeof(sm), "%s/sm", nlm->dir);
	snprintf(bak, sizeof(bak), "%s/sm.bak", nlm->dir);
	d = opendir(sm);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp"))
				continue;
			snprintf(from, sizeof(from), "%s/%s", sm, de->d_name);
			snprintf(to, sizeof(to), "%s/%s", bak, de->d_name);
			if (rename(from, to) < 0)
				onfs_warn("nsm: cannot move '%s' to '%s': %s", from, to,
					  strerror(errno));
		}
		closedir(d);
	}
	d = opendir(bak);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *text = NULL, *sp;
		size_t cap = 0;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(from, sizeof(from), "%s/%s", bak, de->d_name);
		if (strstr(de->d_name, ".tmp")) {
			unlink(from);
			continue;
		}
		f = fopen(from, "re");
		if (!f)
			continue;
		if (getline(&text, &cap, f) > 0 && (sp = strchr(text, ' '))) {
			*sp = 0;
			sp[strcspn(sp + 1, "\n") + 1] = 0;
			onfs_info("nsm: notifying %s (%s) of our restart (state %d)", sp + 1, text,
				  nlm->state);
			queue_notify(nlm, text, from);
			n++;
		}
		free(text);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* STATE/nsm, its sm/ and sm.bak/, and the next state number. 0 or -1 with why. */
static int nsm_setup(struct onfs_nlm *nlm, const char *state_dir, char *why, size_t cap)
{
	char path[PATH_MAX];
	int32_t old;
	int r;

	if (asprintf(&nlm->dir, "%s/nsm", state_dir) < 0) {
		nlm->dir = NULL;
		snprintf(why, cap, "out of memory");
		return -1;
	}
	if ((r = mkdir_p1(state_dir)) < 0 || (r = mkdir_p1(nlm->dir)) < 0) {
		snprintf(why, cap, "cannot create '%s': %s", nlm->dir, strerror(-r));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/sm", nlm->dir);
	if ((r = mkdir_p1(path)) == 0) {
		snprintf(path, sizeof(path), "%s/sm.bak", nlm->dir);
		r = mkdir_p1(path);
	}
	if (r < 0) {
		snprintf(why, cap, "cannot create '%s': %s", path, strerror(-r));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/state", nlm->dir);
	if ((r = read_state(path, &old)) < 0) {
		snprintf(why, cap, "cannot read '%s': %s", path, strerror(-r));
		return -1;
	}
	/* NSM: odd while up; each restart a new, larger odd number */
	nlm->state = (old & 1) ? old + 2 : old + 1;
	if (nlm->state <= 0)
		nlm->state = 1;
	if ((r = write_state(nlm, nlm->state)) < 0) {
		snprintf(why, cap, "cannot write '%s': %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

int onfs_nlm_start(struct onfs_server *srv, char *err, size_t errlen)
{
	const struct onfs_config *cfg = srv->cfg;
	struct onfs_nlm *nlm = calloc(1, sizeof(*nlm));
	char why[PATH_MAX + 128];
	size_t holders;
	int grace;

	if (!nlm) {
		snprintf(err, errlen, "lock manager: out of memory");
		return -1;
	}
	srv->nlm = nlm;
	nlm->srv = srv;
	pthread_mutex_init(&nlm->mu, NULL);
	if (cfg->listen_host && strcmp(cfg->listen_host, "0.0.0.0") != 0 &&
	    strcmp(cfg->listen_host, "::") != 0)
		snprintf(nlm->myname, sizeof(nlm->myname), "%s", cfg->listen_host);
	else if (gethostname(nlm->myname, sizeof(nlm->myname) - 1) < 0)
		snprintf(nlm->myname, sizeof(nlm->myname), "ovlnfsd");
	if (nsm_setup(nlm, cfg->state_dir, why, sizeof(why)) < 0) {
		/* locks still work; what a restart needs cannot be kept */
		onfs_warn("lock manager: %s: locks are served without restart recovery "
			  "(no holder records, no SM_NOTIFY after a restart)", why);
		free(nlm->dir);
		nlm->dir = NULL;
		nlm->state = 1;
	}
	if (onfs_rpcout_start(nlm, err, errlen) < 0)
		return -1;
	holders = nlm->dir ? notify_previous(nlm) : 0;
	grace = cfg->grace >= 0 ? cfg->grace : ONFS_NLM_DEFAULT_GRACE;
	if (holders > 0 && grace > 0) {
		nlm->grace_end_ms = mono_ms() + (int64_t)grace * 1000;
		onfs_info("nlm: grace period of %d s: %zu client(s) held locks before the restart; "
			  "only reclaims are granted until it ends", grace, holders);
	}
	for (size_t i = 0; i < srv->nexports; i++) {
		struct onfs_export *ex = srv->exports[i];
		enum onfs_locking m = onfs_lock_table_mode(onfs_export_locks(ex));

		if (m == ONFS_LOCKING_OFF)
			onfs_info("export '%s': locking = off: NLM requests are answered "
				  "denied_nolocks (clients must mount with nolock)",
				  onfs_export_name(ex));
		else if (m == ONFS_LOCKING_LOCAL)
			onfs_info("export '%s': locking = local: locks are not recorded for "
				  "restart recovery (no NSM)", onfs_export_name(ex));
	}
	onfs_info("nlm: NLM v1/v3/v4 and NSM v1 served, state %d, name '%s'", nlm->state,
		  nlm->myname);
	return 0;
}

void onfs_nlm_stop(struct onfs_server *srv)
{
	struct onfs_nlm *nlm = srv->nlm;

	if (!nlm)
		return;
	onfs_rpcout_stop(nlm);
	/* a clean stop: the state number goes even (a small sync write, once) */
	if (nlm->dir && nlm->state > 0)
		write_state(nlm, nlm->state + 1);
}

void onfs_nlm_free(struct onfs_server *srv)
{
	struct onfs_nlm *nlm = srv->nlm;

	if (!nlm)
		return;
	while (nlm->hosts) {
		struct onfs_nlm_host *h = nlm->hosts;

		nlm->hosts = h->next;
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
	pthread_mutex_destroy(&nlm->mu);
	free(nlm->dir);
	free(nlm);
	srv->nlm = NULL;
}

/* --- the NSM program: what a peer's statd sends us --- */

static bool nsm_null(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

/* SM_STAT asks whether we would monitor a host: we monitor only our own clients. */
static bool nsm_stat(struct onfs_call *c, void *args, XDR *xdrs)
{
	struct onfs_sm_stat_res res = { ONFS_STAT_FAIL, c->srv->nlm ? c->srv->nlm->state : 0 };

	(void)args;
	return xdr_onfs_sm_stat_res(xdrs, &res);
}

/* A client restarted: everything it held is gone (worker: may remove records). */
static bool nsm_notify(struct onfs_call *c, void *args, XDR *xdrs)
{
	const struct onfs_stat_chge *a = args;
	struct onfs_nlm *nlm = c->srv->nlm;
	struct onfs_nlm_host *hits[64];
	struct sockaddr_storage from;
	socklen_t fromlen;
	size_t n = 0;

	(void)xdrs;
	if (!nlm)
		return true;
	pthread_mutex_lock(&nlm->mu);
	/*
	 * The hosts at the address the notice comes from, whatever name they
	 * gave (a client's statd may call itself otherwise than its lockd).
	 * A name alone is not enough: anyone could send it.
	 */
	onfs_nlm_norm_addr((const struct sockaddr *)&c->peer, (socklen_t)c->peer_len, &from,
			   &fromlen);
	for (struct onfs_nlm_host *h = nlm->hosts; h && n < ONFS_ARRAY_SIZE(hits); h = h->next)
		if (fromlen > 0 && onfs_nlm_addr_eq(&h->addr, (const struct sockaddr *)&from))
			hits[n++] = h;
	pthread_mutex_unlock(&nlm->mu);
	onfs_info("nsm: SM_NOTIFY: %s restarted (state %d): releasing the locks of %zu client(s)",
		  a->mon_name ? a->mon_name : "?", a->state, n);
	for (size_t i = 0; i < n; i++)
		onfs_nlm_free_host(nlm, hits[i]);
	return true;
}

static const struct onfs_proc nsm1_procs[] = {
	[ONFS_SM_NULL] = { .name = "SM_NULL", .run = nsm_null, .on_loop = true,
			   .auth_none_ok = true },
	[ONFS_SM_STAT] = { .name = "SM_STAT", .xdr_args = (xdrproc_t)xdr_onfs_sm_name,
			   .args_size = sizeof(struct onfs_sm_name), .run = nsm_stat,
			   .on_loop = true, .auth_none_ok = true },
	[ONFS_SM_NOTIFY] = { .name = "SM_NOTIFY", .xdr_args = (xdrproc_t)xdr_onfs_stat_chge,
			     .args_size = sizeof(struct onfs_stat_chge), .run = nsm_notify,
			     .on_loop = false, .auth_none_ok = true },
};

const struct onfs_program onfs_nsm1_program = {
	.name = "NSM1",
	.prog = ONFS_SM_PROG,
	.vers = ONFS_SM_VERS,
	.procs = nsm1_procs,
	.nprocs = ONFS_ARRAY_SIZE(nsm1_procs),
};
