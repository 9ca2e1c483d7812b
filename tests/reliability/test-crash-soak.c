/*
 * test-crash-soak.c - kill -9 at random points of a mixed mutation
 * workload, restarting each time. Three clients (TCP from 127.0.0.1,
 * 127.0.0.2, 127.0.0.3, raw RPC) take turns: WRITE FILE_SYNC and UNSTABLE
 * (+ COMMIT) to data files that start in the lower layer (two of 4 KiB,
 * one of 2 MiB and one of 8 MiB; 8 and 100 MiB with ONFS_LONG=1: small and
 * larger copy-ups), and CREATE, MKDIR, RMDIR,
 * REMOVE, RENAME, LINK, SYMLINK, SETATTR (mode: a copy-up of lower files)
 * in a directory with lower and upper entries. A seeded generator
 * (ONFS_CRASH_SOAK_SEED, default the clock; printed) picks the operations,
 * which ones are hit, and whether the kill comes 0-3 ms into the call or
 * right after its reply. After every restart:
 *   - workdir/work is empty;
 *   - every name holds what the model says (type, mode, symlink target,
 *     size); the interrupted call's names may be in the before or the after
 *     state, nothing else;
 *   - every FILE_SYNC or COMMITted byte of the data files is there; bytes
 *     of UNSTABLE writes not committed may be old or new, and the write
 *     verifier has changed;
 *   - every handle the clients hold answers GETATTR with the same fileid
 *     and type, or STALE: never another object.
 * At the end the server is stopped and the kernel overlay mounts the
 * layers and shows the same names, types, modes, targets and data.
 * Default 50 kills; 1,000 with ONFS_LONG=1; ONFS_CRASH_SOAK_KILLS=N sets
 * the number (the ThreadSanitizer stage of tests/run-all.sh runs fewer).
 *
 * Runs as root in a forked test process; spawns and kills its own server
 * processes by PID (a cleanup kills the current one on failure).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
enum { P_GETATTR = 1, P_SETATTR = 2, P_LOOKUP = 3, P_READLINK = 5, P_READ = 6, P_WRITE = 7,
       P_CREATE = 8, P_MKDIR = 9, P_SYMLINK = 10, P_REMOVE = 12, P_RMDIR = 13, P_RENAME = 14,
       P_LINK = 15, P_COMMIT = 21 };
#define NFS3_OK 0
#define NFS3ERR_NOENT 2
#define NFS3ERR_STALE 70

#define NCLIENTS 3
#define NDATA 4
#define NNAMES 16
#define MAXHANDLES 512

enum ty { T_NONE = 0, T_REG = 1, T_DIR = 2, T_LNK = 5 };

struct ent {
	enum ty type;
	unsigned mode;
	uint64_t size;
	char target[32];
};

struct held {
	uint8_t fh[64];
	uint32_t fhlen;
	uint64_t fileid;
	uint32_t type;
};

static pid_t cur_pid;
static int cur_port;
static char logdir[PATH_MAX], statedir[PATH_MAX], ovl_opts[8192];
static int fds[NCLIENTS];
static uint8_t rootfh[64], nsfh[64];
static uint32_t rootlen, nslen;
static uint32_t next_xid = 0x5c000000;
static struct held handles[MAXHANDLES];
static int nhandles;

static uint64_t data_size[NDATA] = { 4096, 4096, 2u << 20, 8u << 20 }; /* long: 8, 100 MiB */
static uint8_t *durable[NDATA], *uncertain[NDATA];
static uint8_t data_fh[NDATA][64];
static uint32_t data_fhlen[NDATA];
static bool unstable_pending[NDATA];
static uint64_t last_verf;
static bool have_verf;

static struct ent model[NNAMES];

static void kill_current(void *arg)
{
	(void)arg;
	if (cur_pid > 0) {
		kill(cur_pid, SIGKILL);
		waitpid(cur_pid, NULL, 0);
		cur_pid = 0;
	}
}

static void server_spawn(int seq)
{
	char portfile[PATH_MAX], log[PATH_MAX];
	const char *bin = getenv("ONFS_SERVER");
	double deadline;
	pid_t pid;

	ASSERTF(bin && *bin, "ONFS_SERVER is not set");
	snprintf(portfile, sizeof(portfile), "%.3000s/port-%d", logdir, seq);
	snprintf(log, sizeof(log), "%.3000s/server-%d.log", logdir, seq % 4);
	fflush(stdout);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "-o", ovl_opts, "--listen", "127.0.0.1:0", "--port-file",
		      portfile, "--state-dir", statedir, "-f", (char *)NULL);
		_exit(127);
	}
	cur_pid = pid;
	deadline = tl_now() + 60;
	for (;;) {
		char *txt = NULL;
		ssize_t n = tl_read_file(portfile, &txt);
		int status;

		if (n > 0 && txt[n - 1] == '\n') {
			cur_port = atoi(txt);
			free(txt);
			break;
		}
		free(txt);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char *l = NULL;

			cur_pid = 0;
			tl_read_file(log, &l);
			tl_fail(__FILE__, __LINE__, "server %d did not start (status 0x%x): %s", seq,
				status, l ? l : "");
		}
		ASSERTF(tl_now() < deadline, "server wrote no port file in 60 s");
		usleep(2000);
	}
	unlink(portfile);
}

static void server_kill(void)
{
	kill(cur_pid, SIGKILL);
	waitpid(cur_pid, NULL, 0);
	cur_pid = 0;
}

static void server_term(void)
{
	int status = 0;
	double deadline = tl_now() + 30;

	ASSERT(kill(cur_pid, SIGTERM) == 0);
	while (waitpid(cur_pid, &status, WNOHANG) != cur_pid) {
		ASSERTF(tl_now() < deadline, "server did not stop on SIGTERM");
		usleep(5000);
	}
	cur_pid = 0;
	ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "server exit status 0x%x", status);
}

static int connect_from(const char *src, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in me = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT(fd >= 0);
	ASSERT(inet_pton(AF_INET, src, &me.sin_addr) == 1);
	ASSERTF(bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0, "bind %s: %s", src,
		strerror(errno));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	ASSERTF(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		strerror(errno));
	return fd;
}

/* ---------- calls ---------- */

struct res {
	uint8_t *rec;
	struct tl_rd rd;
	uint32_t status;
};

static void begin(struct tl_buf *b, uint32_t proc)
{
	tl_put_call(b, next_xid++, 2, PROG_NFS, 3, proc, TL_AUTH_SYS, 0, 0, 0);
}

/* Send and wait for the reply; false when the connection died (a kill). */
static bool rpc(int fd, const struct tl_buf *b, struct res *r)
{
	struct tl_reply rep;
	ssize_t n;

	r->rec = NULL;
	if (tl_tcp_send_record(fd, b->p, b->len) < 0)
		return false;
	n = tl_tcp_recv_record(fd, &r->rec, 60000);
	if (n <= 0)
		return false;
	ASSERT(tl_reply_parse(r->rec, (size_t)n, &rep) == 0);
	ASSERTF(rep.accepted && rep.accept_stat == TL_SUCCESS, "accept_stat %u", rep.accept_stat);
	r->rd = (struct tl_rd){ rep.body, rep.body_len, 0, false };
	r->status = tl_get_u32(&r->rd);
	return true;
}

static void rpc_must(int fd, const struct tl_buf *b, struct res *r, const char *what)
{
	ASSERTF(rpc(fd, b, r), "%s: no reply from a server that was not killed", what);
}

struct fattr {
	uint32_t type, mode;
	uint64_t size, fileid;
};

static void get_fattr(struct tl_rd *rd, struct fattr *a)
{
	a->type = tl_get_u32(rd);
	a->mode = tl_get_u32(rd) & 07777;
	tl_get_u32(rd);
	tl_get_u32(rd);
	tl_get_u32(rd);
	a->size = tl_get_u64(rd);
	tl_get_u64(rd);
	tl_get_u32(rd);
	tl_get_u32(rd);
	tl_get_u64(rd);
	a->fileid = tl_get_u64(rd);
	for (int i = 0; i < 6; i++)
		tl_get_u32(rd);
}

static bool post_op_attr(struct tl_rd *rd, struct fattr *a)
{
	if (!tl_get_u32(rd))
		return false;
	get_fattr(rd, a);
	return true;
}

static void skip_wcc(struct tl_rd *rd)
{
	struct fattr a;

	if (tl_get_u32(rd)) {
		tl_get_u64(rd);
		for (int i = 0; i < 4; i++)
			tl_get_u32(rd);
	}
	post_op_attr(rd, &a);
}

static void hold(const uint8_t *fh, uint32_t len, const struct fattr *a)
{
	for (int i = 0; i < nhandles; i++)
		if (handles[i].fhlen == len && memcmp(handles[i].fh, fh, len) == 0)
			return;
	if (nhandles == MAXHANDLES)
		return;
	memcpy(handles[nhandles].fh, fh, len);
	handles[nhandles].fhlen = len;
	handles[nhandles].fileid = a->fileid;
	handles[nhandles].type = a->type;
	nhandles++;
}

/* LOOKUP name in dir: status; the handle and attributes when OK (held). */
static uint32_t lookup(const uint8_t *dir, uint32_t dirlen, const char *name, uint8_t *fh,
		       uint32_t *fhlen, struct fattr *a)
{
	struct tl_buf b = { 0 };
	struct res r;
	uint32_t st;
	uint8_t lfh[64];
	uint32_t llen;

	begin(&b, P_LOOKUP);
	tl_put_opaque(&b, dir, dirlen);
	tl_put_opaque(&b, name, (uint32_t)strlen(name));
	rpc_must(fds[0], &b, &r, "LOOKUP");
	st = r.status;
	if (st == NFS3_OK) {
		llen = tl_get_opaque(&r.rd, lfh, 64);
		ASSERTF(post_op_attr(&r.rd, a) && !r.rd.bad, "LOOKUP %s: no attributes", name);
		hold(lfh, llen, a);
		if (fh) {
			memcpy(fh, lfh, llen);
			*fhlen = llen;
		}
	}
	free(r.rec);
	tl_buf_free(&b);
	return st;
}

static void name_of(int i, char *buf, size_t len)
{
	snprintf(buf, len, "n%02u", (unsigned)i % 100u);
}

/* Connect the clients, mount, find ns/ and the data files. */
static void clients_up(void)
{
	static const char *const src[NCLIENTS] = { "127.0.0.1", "127.0.0.2", "127.0.0.3" };
	struct fattr a;

	for (int c = 0; c < NCLIENTS; c++)
		fds[c] = connect_from(src[c], cur_port);
	rootlen = tl_raw_mnt(fds[0], next_xid++, "/", rootfh, sizeof(rootfh));
	ASSERT_EQ(lookup(rootfh, rootlen, "ns", nsfh, &nslen, &a), NFS3_OK);
	for (int i = 0; i < NDATA; i++) {
		char name[8];

		snprintf(name, sizeof(name), "w%d", i);
		ASSERT_EQ(lookup(rootfh, rootlen, name, data_fh[i], &data_fhlen[i], &a), NFS3_OK);
		ASSERT_EQ(a.size, data_size[i]);
	}
}

static void clients_down(void)
{
	for (int c = 0; c < NCLIENTS; c++)
		close(fds[c]);
}

/* ---------- the model check ---------- */

static bool ent_matches(const struct ent *want, int i)
{
	char name[16];
	uint8_t fh[64];
	uint32_t fhlen, st;
	struct fattr a;

	name_of(i, name, sizeof(name));
	st = lookup(nsfh, nslen, name, fh, &fhlen, &a);
	if (want->type == T_NONE)
		return st == NFS3ERR_NOENT;
	if (st != NFS3_OK || a.type != (uint32_t)want->type)
		return false;
	if (want->type == T_REG && (a.mode != want->mode || a.size != want->size))
		return false;
	if (want->type == T_LNK) {
		struct tl_buf b = { 0 };
		struct res r;
		char tgt[64] = "";
		struct fattr la;

		begin(&b, P_READLINK);
		tl_put_opaque(&b, fh, fhlen);
		rpc_must(fds[0], &b, &r, "READLINK");
		tl_buf_free(&b);
		if (r.status == NFS3_OK) {
			post_op_attr(&r.rd, &la);
			tl_get_opaque(&r.rd, tgt, sizeof(tgt) - 1);
		}
		free(r.rec);
		if (r.status != NFS3_OK || strcmp(tgt, want->target) != 0)
			return false;
	}
	return true;
}

static const char *ty_name(enum ty t)
{
	return t == T_NONE ? "absent" : t == T_REG ? "file" : t == T_DIR ? "dir" : "symlink";
}

/* The names: each as the model says, or (the interrupted call's) either state. */
static void check_names(const struct ent *after, const bool *touched, const char *when)
{
	for (int i = 0; i < NNAMES; i++) {
		if (ent_matches(&model[i], i))
			continue;
		if (touched && touched[i] && ent_matches(&after[i], i)) {
			model[i] = after[i];
			continue;
		}
		tl_fail(__FILE__, __LINE__, "%s: n%02d is not %s%s%s (mode %o size %llu)", when, i,
			ty_name(model[i].type), touched && touched[i] ? " nor " : "",
			touched && touched[i] ? ty_name(after[i].type) : "", model[i].mode,
			(unsigned long long)model[i].size);
	}
}

static void read_file(int d, uint8_t *out)
{
	for (uint64_t off = 0; off < data_size[d];) {
		struct tl_buf b = { 0 };
		struct res r;
		struct fattr a;
		uint32_t want = (uint32_t)(data_size[d] - off < (1u << 20) ? data_size[d] - off
									 : 1u << 20);
		uint32_t count, dlen;

		begin(&b, P_READ);
		tl_put_opaque(&b, data_fh[d], data_fhlen[d]);
		tl_put_u64(&b, off);
		tl_put_u32(&b, want);
		rpc_must(fds[1], &b, &r, "READ");
		ASSERTF(r.status == NFS3_OK, "READ w%d at %llu: status %u", d,
			(unsigned long long)off, r.status);
		post_op_attr(&r.rd, &a);
		count = tl_get_u32(&r.rd);
		tl_get_u32(&r.rd);
		dlen = tl_get_u32(&r.rd);
		ASSERT(!r.rd.bad && dlen == count && count > 0 && r.rd.off + dlen <= r.rd.len);
		memcpy(out + off, r.rd.p + r.rd.off, dlen);
		off += dlen;
		free(r.rec);
		tl_buf_free(&b);
	}
}

static uint64_t bytes_verified;

static void check_data(const char *when)
{
	for (int d = 0; d < NDATA; d++) {
		uint8_t *got = malloc(data_size[d]);

		ASSERT(got);
		read_file(d, got);
		for (uint64_t i = 0; i < data_size[d]; i++) {
			if (uncertain[d][i])
				continue;
			ASSERTF(got[i] == durable[d][i],
				"%s: w%d byte %llu is %u, a stable write left %u there", when, d,
				(unsigned long long)i, got[i], durable[d][i]);
			bytes_verified++;
		}
		memcpy(durable[d], got, data_size[d]);
		memset(uncertain[d], 0, data_size[d]);
		free(got);
	}
}

static void check_handles(const char *when)
{
	for (int i = 0; i < nhandles; i++) {
		struct tl_buf b = { 0 };
		struct res r;
		struct fattr a;

		begin(&b, P_GETATTR);
		tl_put_opaque(&b, handles[i].fh, handles[i].fhlen);
		rpc_must(fds[2], &b, &r, "GETATTR");
		if (r.status == NFS3_OK) {
			get_fattr(&r.rd, &a);
			ASSERTF(a.fileid == handles[i].fileid && a.type == handles[i].type,
				"%s: held handle %d now names fileid %llu type %u, was %llu type %u",
				when, i, (unsigned long long)a.fileid, a.type,
				(unsigned long long)handles[i].fileid, handles[i].type);
		} else {
			ASSERTF(r.status == NFS3ERR_STALE, "%s: held handle %d: status %u", when, i,
				r.status);
		}
		free(r.rec);
		tl_buf_free(&b);
	}
}

static void work_must_be_empty(const char *work, const char *when)
{
	char p[PATH_MAX];
	DIR *dir;
	struct dirent *de;

	tl_join(p, sizeof(p), work, "work");
	dir = opendir(p);
	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		closedir(dir);
		tl_fail(__FILE__, __LINE__, "%s: work/%s left after the startup scrub", when,
			de->d_name);
	}
	closedir(dir);
}

/* ---------- operations ---------- */

static void put_sattr_mode(struct tl_buf *b, unsigned mode)
{
	tl_put_u32(b, 1);
	tl_put_u32(b, mode);
	for (int i = 0; i < 5; i++)
		tl_put_u32(b, 0); /* uid, gid, size unset; atime, mtime DONT_CHANGE */
}

static int pick(enum ty t)
{
	int start = rand() % NNAMES;

	for (int k = 0; k < NNAMES; k++) {
		int i = (start + k) % NNAMES;

		if (model[i].type == t)
			return i;
	}
	return -1;
}

/*
 * Build one random operation whose expected outcome (OK) the model knows;
 * after[] is the model once it has run, touched[] the names it changes.
 * Returns -1 when no such operation fits the model now, else 0; a WRITE
 * sets *dfile, *off and *len.
 */
static int build_op(struct tl_buf *b, struct ent *after, bool *touched, const char **what,
		    int *dfile, uint64_t *off, uint32_t *len, uint8_t **payload, bool *stable,
		    bool *commit)
{
	char na[16], nb[16];
	int r = rand() % 12, i, j;

	memcpy(after, model, sizeof(model));
	memset(touched, 0, NNAMES * sizeof(bool));
	*dfile = -1;
	*commit = false;
	if (r < 3) {
		int d = rand() % NDATA;
		uint32_t maxlen = data_size[d] > (1u << 20) ? (rand() % 4 ? 65536 : 1u << 20) : 1024;

		*dfile = d;
		*len = 1 + (uint32_t)(rand() % maxlen);
		*off = (uint64_t)rand() % (data_size[d] - *len + 1);
		*stable = rand() % 2;
		*commit = !*stable && rand() % 2;
		*payload = malloc(*len);
		ASSERT(*payload);
		for (uint32_t k = 0; k < *len; k++)
			(*payload)[k] = (uint8_t)rand();
		begin(b, P_WRITE);
		tl_put_opaque(b, data_fh[d], data_fhlen[d]);
		tl_put_u64(b, *off);
		tl_put_u32(b, *len);
		tl_put_u32(b, *stable ? 2 : 0);
		tl_put_opaque(b, *payload, *len);
		*what = *stable ? "WRITE FILE_SYNC" : "WRITE UNSTABLE";
		return 0;
	}
	switch (r) {
	case 3: /* CREATE */
	case 4: /* MKDIR */
	case 5: /* SYMLINK */
		i = pick(T_NONE);
		if (i < 0)
			return -1;
		name_of(i, na, sizeof(na));
		touched[i] = true;
		begin(b, r == 3 ? P_CREATE : r == 4 ? P_MKDIR : P_SYMLINK);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, na, 3);
		if (r == 3) {
			tl_put_u32(b, 1); /* GUARDED */
			put_sattr_mode(b, 0640);
			after[i] = (struct ent){ T_REG, 0640, 0, "" };
			*what = "CREATE";
		} else if (r == 4) {
			put_sattr_mode(b, 0755);
			after[i] = (struct ent){ T_DIR, 0755, 0, "" };
			*what = "MKDIR";
		} else {
			after[i] = (struct ent){ T_LNK, 0777, 0, "" };
			snprintf(after[i].target, sizeof(after[i].target), "target-%d", rand() % 1000);
			put_sattr_mode(b, 0777);
			tl_put_opaque(b, after[i].target, (uint32_t)strlen(after[i].target));
			*what = "SYMLINK";
		}
		return 0;
	case 6: /* REMOVE a file or symlink */
		i = pick(rand() % 2 ? T_REG : T_LNK);
		if (i < 0)
			return -1;
		name_of(i, na, sizeof(na));
		touched[i] = true;
		after[i] = (struct ent){ 0 };
		begin(b, P_REMOVE);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, na, 3);
		*what = "REMOVE";
		return 0;
	case 7: /* RMDIR (ours are empty) */
		i = pick(T_DIR);
		if (i < 0)
			return -1;
		name_of(i, na, sizeof(na));
		touched[i] = true;
		after[i] = (struct ent){ 0 };
		begin(b, P_RMDIR);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, na, 3);
		*what = "RMDIR";
		return 0;
	case 8: /* RENAME a file or symlink onto a free name or another file */
	case 9:
		i = pick(rand() % 3 ? T_REG : T_LNK);
		j = pick(r == 8 ? T_NONE : T_REG);
		if (i < 0 || j < 0 || i == j)
			return -1;
		name_of(i, na, sizeof(na));
		name_of(j, nb, sizeof(nb));
		if (r == 9) { /* two names of one file: rename does nothing (POSIX) */
			uint8_t fh[64];
			uint32_t fhlen;
			struct fattr a1, a2;

			ASSERT_EQ(lookup(nsfh, nslen, na, fh, &fhlen, &a1), NFS3_OK);
			ASSERT_EQ(lookup(nsfh, nslen, nb, fh, &fhlen, &a2), NFS3_OK);
			if (a1.fileid == a2.fileid)
				return -1;
		}
		touched[i] = touched[j] = true;
		after[j] = model[i];
		after[i] = (struct ent){ 0 };
		begin(b, P_RENAME);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, na, 3);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, nb, 3);
		*what = "RENAME";
		return 0;
	case 10: { /* LINK a file to a free name */
		uint8_t fh[64];
		uint32_t fhlen;
		struct fattr a;

		i = pick(T_REG);
		j = pick(T_NONE);
		if (i < 0 || j < 0)
			return -1;
		name_of(i, na, sizeof(na));
		name_of(j, nb, sizeof(nb));
		ASSERT_EQ(lookup(nsfh, nslen, na, fh, &fhlen, &a), NFS3_OK);
		touched[j] = true;
		after[j] = model[i];
		begin(b, P_LINK);
		tl_put_opaque(b, fh, fhlen);
		tl_put_opaque(b, nsfh, nslen);
		tl_put_opaque(b, nb, 3);
		*what = "LINK";
		return 0;
	}
	default: { /* SETATTR mode of a file: a copy-up when it is a lower one */
		uint8_t fh[64];
		uint32_t fhlen;
		struct fattr a;
		unsigned mode = rand() % 2 ? 0600 : 0644;

		i = pick(T_REG);
		if (i < 0)
			return -1;
		name_of(i, na, sizeof(na));
		ASSERT_EQ(lookup(nsfh, nslen, na, fh, &fhlen, &a), NFS3_OK);
		/* hard links share the mode: every name of that file changes */
		for (int k = 0; k < NNAMES; k++) {
			char nk[16];
			uint8_t kfh[64];
			uint32_t kl;
			struct fattr ka;

			if (model[k].type != T_REG)
				continue;
			name_of(k, nk, sizeof(nk));
			if (lookup(nsfh, nslen, nk, kfh, &kl, &ka) == NFS3_OK &&
			    ka.fileid == a.fileid) {
				touched[k] = true;
				after[k].mode = mode;
			}
		}
		begin(b, P_SETATTR);
		tl_put_opaque(b, fh, fhlen);
		put_sattr_mode(b, mode);
		tl_put_u32(b, 0); /* no guard */
		*what = "SETATTR";
		return 0;
	}
	}
}

static void umount_cleanup(void *arg)
{
	umount2(arg, MNT_DETACH);
	free(arg);
}

TEST_IMPL(crash_soak_kill9_random_points)
{
	const char *lv = getenv("ONFS_LONG"), *sv = getenv("ONFS_CRASH_SOAK_SEED");
	const char *kv = getenv("ONFS_CRASH_SOAK_KILLS");
	bool lng = lv && *lv && strcmp(lv, "0") != 0;
	int want_kills = kv && atoi(kv) > 0 ? atoi(kv) : lng ? 1000 : 50;
	int kills = 0, seq = 0, ops = 0, acked_kills = 0;
	int verf_changes = 0;
	unsigned seed = sv ? (unsigned)strtoul(sv, NULL, 0) : (unsigned)time(NULL);
	struct tl_tree t;
	struct ent after[NNAMES];
	bool touched[NNAMES];
	double t0 = tl_now(), tm_mark, tm_ops = 0, tm_spawn = 0, tm_check = 0;
	char mnt[PATH_MAX];

	if (geteuid() != 0)
		RETURN_SKIP_CI("not root: trusted.* xattrs and overlay mounts need root");
	if (lng) {
		data_size[2] = 8u << 20;
		data_size[3] = 100u << 20;
	}
	printf("# crash soak: seed %u (ONFS_CRASH_SOAK_SEED repeats it), %d kills\n", seed,
	       want_kills);
	fflush(stdout);
	srand(seed);
	tl_tree_new(&t, 1);
	tl_mkdir(t.lower[0], "ns", 0755);
	for (int d = 0; d < NDATA; d++) {
		char name[8];

		durable[d] = malloc(data_size[d]);
		uncertain[d] = calloc(1, data_size[d]);
		ASSERT(durable[d] && uncertain[d]);
		for (uint64_t i = 0; i < data_size[d]; i++)
			durable[d][i] = (uint8_t)(i * 29 + (uint64_t)d);
		snprintf(name, sizeof(name), "w%d", d);
		tl_write_buf(t.lower[0], name, durable[d], data_size[d], 0666);
	}
	/* lower entries in ns/: files of 4 KiB and 2 MiB, a dir, a symlink */
	for (int i = 0; i < 6; i++) {
		char name[16];
		size_t sz = i % 2 ? 2u << 20 : 4096;
		char *buf = malloc(sz);

		ASSERT(buf);
		memset(buf, 'a' + i, sz);
		snprintf(name, sizeof(name), "ns/n%02d", i);
		tl_write_buf(t.lower[0], name, buf, sz, 0644);
		model[i] = (struct ent){ T_REG, 0644, sz, "" };
		free(buf);
	}
	tl_mkdir(t.lower[0], "ns/n06", 0755);
	model[6] = (struct ent){ T_DIR, 0755, 0, "" };
	tl_symlink(t.lower[0], "ns/n07", "lower-target");
	model[7] = (struct ent){ T_LNK, 0777, 0, "lower-target" };
	snprintf(logdir, sizeof(logdir), "%s", t.root);
	snprintf(statedir, sizeof(statedir), "%s", t.state);
	snprintf(ovl_opts, sizeof(ovl_opts),
		 "lowerdir=%.1000s,upperdir=%.1000s,workdir=%.1000s,index=on,nfs_export=on,"
		 "redirect_dir=on", t.lower[0], t.upper, t.work);
	tl_cleanup_push(kill_current, NULL);
	server_spawn(seq++);
	clients_up();
	tm_mark = tl_now();

	while (kills < want_kills) {
		struct tl_buf b = { 0 };
		struct res r;
		const char *what = "?";
		int dfile, c = rand() % NCLIENTS;
		uint64_t off = 0;
		uint32_t len = 0;
		uint8_t *payload = NULL;
		bool stable = false, commit = false, replied;
		int mode = rand() % 8; /* 0: kill during, 1: kill after the reply */
		char when[128];

		ASSERTF(tl_now() - t0 < (lng ? 7200 : 600), "crash soak over its time bound");
		if (build_op(&b, after, touched, &what, &dfile, &off, &len, &payload, &stable,
			     &commit) < 0) {
			tl_buf_free(&b);
			continue;
		}
		ops++;
		if (mode == 0) {
			/* kill 0-3 ms into the call: the reply may or may not come */
			ASSERT(tl_tcp_send_record(fds[c], b.p, b.len) == 0);
			usleep((useconds_t)(rand() % 3000));
			server_kill();
			replied = false;
		} else {
			rpc_must(fds[c], &b, &r, what);
			ASSERTF(r.status == NFS3_OK, "%s (op %d): status %u", what, ops, r.status);
			replied = true;
			if (dfile >= 0) {
				uint32_t count, committed;
				uint64_t verf;

				skip_wcc(&r.rd);
				count = tl_get_u32(&r.rd);
				committed = tl_get_u32(&r.rd);
				verf = tl_get_u64(&r.rd);
				ASSERT(!r.rd.bad && count == len);
				if (have_verf && verf != last_verf)
					tl_fail(__FILE__, __LINE__,
						"the write verifier changed without a restart");
				last_verf = verf;
				have_verf = true;
				if (committed == 2 || stable) {
					memcpy(durable[dfile] + off, payload, len);
					memset(uncertain[dfile] + off, 0, len);
				} else {
					memset(uncertain[dfile] + off, 1, len);
					unstable_pending[dfile] = true;
				}
			}
			free(r.rec);
			if (dfile >= 0 && commit) {
				struct tl_buf cb = { 0 };
				struct res cr;

				begin(&cb, P_COMMIT);
				tl_put_opaque(&cb, data_fh[dfile], data_fhlen[dfile]);
				tl_put_u64(&cb, 0);
				tl_put_u32(&cb, 0);
				rpc_must(fds[c], &cb, &cr, "COMMIT");
				ASSERTF(cr.status == NFS3_OK, "COMMIT: status %u", cr.status);
				skip_wcc(&cr.rd);
				ASSERTF(tl_get_u64(&cr.rd) == last_verf,
					"COMMIT verifier differs from the WRITE's without a restart");
				/* committed: the whole file's unstable bytes are now stable */
				free(cr.rec);
				tl_buf_free(&cb);
				memcpy(durable[dfile] + off, payload, len);
				memset(uncertain[dfile] + off, 0, len);
				/* other unstable ranges were committed too: reread them later */
			}
			if (dfile < 0)
				memcpy(model, after, sizeof(model));
			if (mode == 1)
				server_kill();
		}
		if (dfile >= 0 && !replied)
			memset(uncertain[dfile] + off, 1, len);
		free(payload);
		tl_buf_free(&b);
		if (cur_pid != 0)
			continue; /* no kill this time */
		kills++;
		if (replied)
			acked_kills++;
		clients_down();
		tm_ops += tl_now() - tm_mark;
		tm_mark = tl_now();
		server_spawn(seq++);
		tm_spawn += tl_now() - tm_mark;
		tm_mark = tl_now();
		snprintf(when, sizeof(when), "restart %d (seed %u) after %s (%s)", kills, seed, what,
			 replied ? "killed after the reply" : "killed during the call");
		work_must_be_empty(t.work, when);
		clients_up();
		check_names(after, replied ? NULL : touched, when);
		check_data(when);
		check_handles(when);
		/* the verifier of the new instance differs from the old one */
		{
			struct tl_buf cb = { 0 };
			struct res cr;
			uint64_t v;

			begin(&cb, P_COMMIT);
			tl_put_opaque(&cb, data_fh[0], data_fhlen[0]);
			tl_put_u64(&cb, 0);
			tl_put_u32(&cb, 0);
			rpc_must(fds[0], &cb, &cr, "COMMIT");
			ASSERT_EQ(cr.status, NFS3_OK);
			skip_wcc(&cr.rd);
			v = tl_get_u64(&cr.rd);
			ASSERTF(!have_verf || v != last_verf,
				"%s: the write verifier did not change across the restart", when);
			if (have_verf)
				verf_changes++;
			last_verf = v;
			have_verf = true;
			free(cr.rec);
			tl_buf_free(&cb);
		}
		memset(unstable_pending, 0, sizeof(unstable_pending));
		tm_check += tl_now() - tm_mark;
		tm_mark = tl_now();
	}
	printf("# time: operations %.1f s, restarts %.1f s, checks %.1f s\n", tm_ops, tm_spawn,
	       tm_check);

	printf("# crash soak: %d ops, %d kills (%d after the reply), %llu stable bytes verified, "
	       "%d handles held and checked after every restart, %d verifier changes, %.1f s\n",
	       ops, kills, acked_kills, (unsigned long long)bytes_verified, nhandles, verf_changes,
	       tl_now() - t0);
	fflush(stdout);

	/* the final state through ovlnfsd, then through the kernel overlay */
	check_names(after, NULL, "final");
	check_data("final");
	clients_down();
	server_term();
	work_must_be_empty(t.work, "after the final stop");
	tl_join(mnt, sizeof(mnt), t.root, "mnt");
	tl_mkdir(t.root, "mnt", 0755);
	ASSERTF(mount("overlay", mnt, "overlay", 0, ovl_opts) == 0,
		"kernel overlay mount of the result: %s", strerror(errno));
	{
		int tok = tl_cleanup_push(umount_cleanup, strdup(mnt));

		for (int i = 0; i < NNAMES; i++) {
			char rel[32], p[PATH_MAX], tgt[64];
			struct stat st;
			int rc;

			snprintf(rel, sizeof(rel), "ns/n%02d", i);
			tl_join(p, sizeof(p), mnt, rel);
			rc = lstat(p, &st);
			if (model[i].type == T_NONE) {
				ASSERTF(rc < 0 && errno == ENOENT, "kernel view: %s exists", rel);
				continue;
			}
			ASSERTF(rc == 0, "kernel view: %s missing", rel);
			if (model[i].type == T_REG) {
				ASSERTF(S_ISREG(st.st_mode) && (st.st_mode & 07777) == model[i].mode &&
						(uint64_t)st.st_size == model[i].size,
					"kernel view: %s mode %o size %lld", rel, st.st_mode,
					(long long)st.st_size);
			} else if (model[i].type == T_DIR) {
				ASSERTF(S_ISDIR(st.st_mode), "kernel view: %s not a dir", rel);
			} else {
				ssize_t n = readlink(p, tgt, sizeof(tgt) - 1);

				ASSERTF(S_ISLNK(st.st_mode) && n > 0, "kernel view: %s not a link", rel);
				tgt[n] = 0;
				ASSERT_STREQ(tgt, model[i].target);
			}
		}
		for (int d = 0; d < NDATA; d++) {
			char rel[8], p[PATH_MAX];
			char *got = NULL;

			snprintf(rel, sizeof(rel), "w%d", d);
			tl_join(p, sizeof(p), mnt, rel);
			ASSERTF(tl_read_file(p, &got) == (ssize_t)data_size[d], "kernel view: %s size",
				rel);
			ASSERTF(memcmp(got, durable[d], data_size[d]) == 0,
				"kernel view: %s differs from what ovlnfsd served", rel);
			free(got);
		}
		ASSERTF(umount2(mnt, 0) == 0, "umount: %s", strerror(errno));
		tl_cleanup_cancel(tok);
	}
	printf("# the kernel overlay mounts the result and shows the same names and data\n");
	for (int d = 0; d < NDATA; d++) {
		free(durable[d]);
		free(uncertain[d]);
	}
	tl_tree_free(&t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(crash_soak_kill9_random_points, 7200),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
