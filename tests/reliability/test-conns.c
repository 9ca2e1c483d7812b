/*
 * test-conns.c - many connections and hostile clients against a real
 * ovlnfsd: 1,000 idle plus 64 busy connections held at once; beyond
 * max_connections the longest-idle connection is closed (with a log line)
 * so that a new client is still served; a record announced and never
 * finished, one byte a second, a client that never reads its replies and
 * a flood of 1 MiB WRITEs, while another client's GETATTR keeps being
 * answered (its latencies are printed; the only bound is one a stalled
 * server would miss).
 *
 * Runs as a test process; each case starts and stops its own server by
 * PID. Raw RPC records (rawrpc.h), no libnfs. ONFS_LONG=1 makes the runs
 * longer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

#define PROG_NFS 100003
#define P_NULL 0
#define P_GETATTR 1
#define P_LOOKUP 3
#define P_READ 6
#define P_WRITE 7

#define IDLE_CONNS 1000
#define BUSY_CONNS 64
#define BIG_READ_FILE (4u << 20)
/* seconds: only a stalled server misses it (times ONFS_TEST_TIMEOUT_MULT) */
#define P99_BOUND p99_bound()

struct env {
	struct tl_tree t;
	struct tl_server s;
	int fd;
	uint8_t root[64];
	uint32_t rootlen;
};

static uint32_t next_xid = 0x71000;

static double p99_bound(void)
{
	const char *m = getenv("ONFS_TEST_TIMEOUT_MULT");

	return m && atoi(m) > 1 ? atoi(m) : 1.0;
}

static bool long_mode(void)
{
	const char *v = getenv("ONFS_LONG");

	return v && *v && strcmp(v, "0") != 0;
}

static void raise_nofile(unsigned want)
{
	struct rlimit rl;

	ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	if (rl.rlim_cur < want)
		RETURN_SKIP("RLIMIT_NOFILE hard limit %llu is below the %u descriptors needed",
			    (unsigned long long)rl.rlim_max, want);
}

static void env_up(struct env *e, const char *const *extra)
{
	char opts[8192];
	uint8_t *big = malloc(BIG_READ_FILE);

	ASSERT(big);
	for (size_t i = 0; i < BIG_READ_FILE; i++)
		big[i] = (uint8_t)(i * 131 + 7);
	tl_fixture_standard(&e->t);
	tl_write_buf(e->t.lower[0], "big4m", big, BIG_READ_FILE, 0644);
	tl_write(e->t.upper, "flood", "", 0666);
	free(big);
	tl_tree_opts(&e->t, true, opts, sizeof(opts));
	tl_server_start(&e->s, e->t.root, e->t.state, opts, NULL, extra);
	e->fd = tl_tcp_connect(e->s.port);
	ASSERTF(e->fd >= 0, "connect: %s", strerror(-e->fd));
	e->rootlen = tl_raw_mnt(e->fd, next_xid++, "/", e->root, sizeof(e->root));
}

static void env_down(struct env *e)
{
	close(e->fd);
	tl_server_stop(&e->s);
	tl_tree_free(&e->t);
}

static void put_getattr(struct env *e, struct tl_buf *b, uint32_t xid)
{
	tl_put_call(b, xid, 2, PROG_NFS, 3, P_GETATTR, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, e->root, e->rootlen);
}

/* One record framed with its mark, for writing several back to back. */
static void frame(struct tl_buf *out, const struct tl_buf *rec)
{
	tl_put_u32(out, 0x80000000u | (uint32_t)rec->len);
	tl_put_bytes(out, rec->p, rec->len);
}

/* A call on fd whose reply must be accepted SUCCESS with NFS status 0. */
static void call_ok(int fd, const struct tl_buf *b, const char *what)
{
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec;
	ssize_t n;

	ASSERTF(tl_tcp_send_record(fd, b->p, b->len) == 0, "%s: send", what);
	n = tl_tcp_recv_record(fd, &rec, 30000);
	ASSERTF(n > 0, "%s: no reply (%s)", what, n < 0 ? strerror((int)-n) : "eof");
	ASSERT(tl_reply_parse(rec, (size_t)n, &r) == 0);
	ASSERTF(r.accepted && r.accept_stat == TL_SUCCESS, "%s: accept_stat %u", what,
		r.accept_stat);
	if (b->len >= 24 && ntohl(*(const uint32_t *)(const void *)(b->p + 20)) != P_NULL) {
		rd = (struct tl_rd){ r.body, r.body_len, 0, false };
		ASSERTF(tl_get_u32(&rd) == 0 && !rd.bad, "%s: NFS status not OK", what);
	}
	free(rec);
}

static void null_call(int fd, const char *what)
{
	struct tl_buf b = { 0 };

	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_NULL, TL_AUTH_NONE, 0, 0, 0);
	call_ok(fd, &b, what);
	tl_buf_free(&b);
}

static double getattr_timed(struct env *e, int fd)
{
	struct tl_buf b = { 0 };
	double t0 = tl_now();

	put_getattr(e, &b, next_xid++);
	call_ok(fd, &b, "GETATTR");
	tl_buf_free(&b);
	return tl_now() - t0;
}

/* Still open: no EOF or reset pending (idle connections get no data). */
static bool still_open(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *lat, size_t n, double *p99_out)
{
	double p50, p99, max;

	ASSERT(n > 0);
	qsort(lat, n, sizeof(*lat), cmp_double);
	p50 = lat[n / 2];
	p99 = lat[n * 99 / 100];
	max = lat[n - 1];
	printf("# %s: %zu calls, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n, p50 * 1e3,
	       p99 * 1e3, max * 1e3);
	fflush(stdout);
	if (p99_out)
		*p99_out = p99;
}

static long server_rss_kib(pid_t pid)
{
	char path[64], *txt = NULL, *p;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (tl_read_file(path, &txt) < 0)
		return -1;
	p = strstr(txt, "VmRSS:");
	if (p)
		kib = strtol(p + 6, NULL, 10);
	free(txt);
	return kib;
}

static bool log_has(const struct tl_server *s, const char *needle)
{
	char *txt = NULL;
	bool found;

	if (tl_read_file(s->log, &txt) < 0)
		return false;
	found = strstr(txt, needle) != NULL;
	free(txt);
	return found;
}

static bool wait_log(const struct tl_server *s, const char *needle, double secs)
{
	double end = tl_now() + secs;

	while (tl_now() < end) {
		if (log_has(s, needle))
			return true;
		usleep(20000);
	}
	return log_has(s, needle);
}

/*
 * 1,000 idle and 64 busy connections at once under the default cap: none
 * is refused or closed, the busy ones keep being answered.
 */
TEST_IMPL(conns_thousand_idle_and_busy)
{
	struct env e;
	int *idle = calloc(IDLE_CONNS, sizeof(int)), busy[BUSY_CONNS];
	int rounds = long_mode() ? 400 : 40;
	size_t nlat = 0;
	double *lat = calloc((size_t)rounds * BUSY_CONNS, sizeof(double)), p99;
	struct tl_buf all = { 0 };
	long rss;

	ASSERT(idle && lat);
	raise_nofile(IDLE_CONNS + BUSY_CONNS + 256);
	env_up(&e, NULL);
	for (int i = 0; i < IDLE_CONNS; i++) {
		idle[i] = tl_tcp_connect(e.s.port);
		ASSERTF(idle[i] >= 0, "idle connection %d: %s", i, strerror(-idle[i]));
		null_call(idle[i], "NULL on an idle connection");
	}
	for (int i = 0; i < BUSY_CONNS; i++) {
		busy[i] = tl_tcp_connect(e.s.port);
		ASSERTF(busy[i] >= 0, "busy connection %d: %s", i, strerror(-busy[i]));
	}
	/* each round: a GETATTR on every busy connection at once, then the replies */
	for (int r = 0; r < rounds; r++) {
		double sent[BUSY_CONNS];

		for (int i = 0; i < BUSY_CONNS; i++) {
			struct tl_buf b = { 0 };

			put_getattr(&e, &b, next_xid++);
			sent[i] = tl_now();
			ASSERT(tl_tcp_send_record(busy[i], b.p, b.len) == 0);
			tl_buf_free(&b);
		}
		for (int i = 0; i < BUSY_CONNS; i++) {
			uint8_t *rec;
			ssize_t n = tl_tcp_recv_record(busy[i], &rec, 30000);

			ASSERTF(n > 0, "busy connection %d round %d: no reply", i, r);
			lat[nlat++] = tl_now() - sent[i];
			free(rec);
		}
	}
	rss = server_rss_kib(e.s.pid);
	for (int i = 0; i < IDLE_CONNS; i++)
		ASSERTF(still_open(idle[i]), "idle connection %d was closed under the cap", i);
	/* a new client is served too */
	{
		int fd = tl_tcp_connect(e.s.port);

		ASSERT(fd >= 0);
		null_call(fd, "NULL from a new client");
		close(fd);
	}
	printf("# held %d idle + %d busy connections; server RSS %ld KiB\n", IDLE_CONNS,
	       BUSY_CONNS, rss);
	report("GETATTR on 64 busy connections beside 1,000 idle", lat, nlat, &p99);
	ASSERTF(p99 < P99_BOUND, "GETATTR p99 %.3f s: the server stalled", p99);
	ASSERT(!log_has(&e.s, "too many connections"));
	for (int i = 0; i < IDLE_CONNS; i++)
		close(idle[i]);
	for (int i = 0; i < BUSY_CONNS; i++)
		close(busy[i]);
	tl_buf_free(&all);
	free(idle);
	free(lat);
	env_down(&e);
	return 0;
}

/*
 * At the cap, a new client evicts the longest-idle connection (a log line
 * says so); connections used since are kept; a connection with a call in
 * flight is never the one closed.
 */
TEST_IMPL(conns_cap_evicts_longest_idle)
{
	enum { CAP = 40 };
	static const char *const extra[] = { "--max-connections", "40", NULL };
	struct env e;
	int fds[CAP + 8];
	int n = 0;

	raise_nofile(CAP + 256);
	env_up(&e, extra); /* e.fd is connection 1 */
	for (n = 0; n < CAP - 1; n++) {
		fds[n] = tl_tcp_connect(e.s.port);
		ASSERT(fds[n] >= 0);
		null_call(fds[n], "NULL below the cap");
	}
	ASSERT(!log_has(&e.s, "too many connections"));
	/* e.fd was the first; make it recent so fds[0] is now the longest idle */
	usleep(20000);
	null_call(e.fd, "NULL on the first connection");
	for (int k = 0; k < 5; k++) {
		int fd = tl_tcp_connect(e.s.port);

		ASSERT(fd >= 0);
		null_call(fd, "NULL from a new client at the cap");
		fds[n++] = fd;
		ASSERTF(tl_tcp_wait_closed(fds[k], 5000) == 1,
			"connection %d (longest idle) was not closed to make room", k);
	}
	ASSERT(still_open(e.fd));
	for (int i = 5; i < n; i++)
		ASSERTF(still_open(fds[i]), "connection %d closed, not the longest idle", i);
	null_call(e.fd, "NULL on the first connection after evictions");
	ASSERT(wait_log(&e.s, "too many connections (max_connections 40): closing", 5));
	printf("# cap 40: 5 new clients served, the 5 longest-idle connections closed\n");
	for (int i = 5; i < n; i++)
		close(fds[i]);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	env_down(&e);
	return 0;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ASSERT(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* Send as much of buf[*off..len) as the socket takes now. */
static void pump(int fd, const struct tl_buf *buf, size_t *off)
{
	while (*off < buf->len) {
		ssize_t w = send(fd, buf->p + *off, buf->len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w <= 0)
			return;
		*off += (size_t)w;
	}
}

/* Read and discard whatever is there; false once the peer closed. */
static bool drain(int fd, size_t *got)
{
	static uint8_t sink[1 << 16];

	for (;;) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			return false;
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	}
}

static uint32_t lookup_fh(struct env *e, const char *name, uint8_t *fh)
{
	struct tl_buf b = { 0 };
	struct tl_reply r;
	struct tl_rd rd;
	uint8_t *rec;
	uint32_t len;

	tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(&b, e->root, e->rootlen);
	tl_put_opaque(&b, name, (uint32_t)strlen(name));
	tl_tcp_call(e->fd, &b, &rec, &r);
	rd = (struct tl_rd){ r.body, r.body_len, 0, false };
	ASSERT_EQ(tl_get_u32(&rd), 0);
	len = tl_get_opaque(&rd, fh, 64);
	ASSERT(!rd.bad && len > 0);
	free(rec);
	tl_buf_free(&b);
	return len;
}

/*
 * Hostile clients, all at once, with io_timeout 2 s: a record announced and
 * never finished, one byte a second, a client that sends READs of 1 MiB and
 * never reads the replies, and one that floods 1 MiB WRITEs (and does read
 * its replies). The first three are closed by the server; the flood is
 * served; a well-behaved client's GETATTR is answered throughout.
 */
TEST_IMPL(conns_hostile_clients_bounded)
{
	static const char *const extra[] = { "--io-timeout", "2", NULL };
	struct env e;
	double secs = long_mode() ? 60 : 8, end, next_byte;
	size_t nlat = 0, cap = 100000, off_nr = 0, off_fl = 0, got_fl = 0, got_nr = 0;
	double *lat = calloc(cap, sizeof(double)), p99;
	uint8_t bigfh[64], floodfh[64];
	uint32_t biglen, floodlen;
	struct tl_buf nr = { 0 }, fl = { 0 }, hdr = { 0 };
	int half, slow, nonreader, flood, probe;
	int rcvbuf = 4096, slow_sent = 0, flood_sent = 0, flood_max = long_mode() ? 4000 : 400;
	uint8_t *payload = malloc(1 << 20);
	long rss0, rss1;
	bool flood_open = true;

	ASSERT(lat && payload);
	memset(payload, 0x5a, 1 << 20);
	env_up(&e, extra);
	biglen = lookup_fh(&e, "big4m", bigfh);
	floodlen = lookup_fh(&e, "flood", floodfh);
	rss0 = server_rss_kib(e.s.pid);

	/* a record of 1000 bytes announced, 10 sent */
	half = tl_tcp_connect(e.s.port);
	ASSERT(half >= 0);
	tl_put_u32(&hdr, 0x80000000u | 1000);
	tl_put_bytes(&hdr, "0123456789", 10);
	ASSERT(send(half, hdr.p, hdr.len, MSG_NOSIGNAL) == (ssize_t)hdr.len);
	/* one byte a second of a 1000-byte record */
	slow = tl_tcp_connect(e.s.port);
	ASSERT(slow >= 0);
	/* READs of 1 MiB, replies never read; a small receive buffer */
	nonreader = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT(nonreader >= 0);
	setsockopt(nonreader, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	{
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)e.s.port) };

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(nonreader, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		ASSERT(connect(nonreader, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	}
	for (int i = 0; i < 256; i++) {
		struct tl_buf b = { 0 };

		tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_READ, TL_AUTH_SYS, 0, 0, 0);
		tl_put_opaque(&b, bigfh, biglen);
		tl_put_u64(&b, (uint64_t)(i % 4) << 20);
		tl_put_u32(&b, 1 << 20);
		frame(&nr, &b);
		tl_buf_free(&b);
	}
	/* the WRITE flood: one connection, 1 MiB UNSTABLE writes back to back */
	flood = tl_tcp_connect(e.s.port);
	ASSERT(flood >= 0);
	set_nonblock(flood);
	probe = tl_tcp_connect(e.s.port);
	ASSERT(probe >= 0);

	end = tl_now() + secs;
	next_byte = tl_now();
	while (tl_now() < end) {
		if (tl_now() >= next_byte && slow_sent < 1000) {
			uint8_t one = slow_sent == 0 ? 0x80 : (slow_sent < 4 ? 0 : 'x');

			if (slow_sent == 2)
				one = 0x03;
			if (slow_sent == 3)
				one = 0xe8;
			send(slow, &one, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			slow_sent++;
			next_byte += 1.0;
		}
		pump(nonreader, &nr, &off_nr);
		if (flood_open) {
			if (off_fl == fl.len && flood_sent < flood_max) {
				struct tl_buf b = { 0 };

				tl_buf_free(&fl);
				tl_put_call(&b, next_xid++, 2, PROG_NFS, 3, P_WRITE, TL_AUTH_SYS, 0,
					    0, 0);
				tl_put_opaque(&b, floodfh, floodlen);
				tl_put_u64(&b, (uint64_t)(flood_sent % 16) << 20);
				tl_put_u32(&b, 1 << 20);
				tl_put_u32(&b, 0); /* UNSTABLE */
				tl_put_opaque(&b, payload, 1 << 20);
				frame(&fl, &b);
				tl_buf_free(&b);
				off_fl = 0;
				flood_sent++;
			}
			pump(flood, &fl, &off_fl);
			flood_open = drain(flood, &got_fl);
		}
		if (nlat < cap)
			lat[nlat++] = getattr_timed(&e, probe);
		usleep(2000);
	}
	rss1 = server_rss_kib(e.s.pid);
	report("GETATTR beside hostile clients", lat, nlat, &p99);
	printf("# WRITE flood: %d x 1 MiB sent, %zu reply bytes read; non-reader: %zu request "
	       "bytes sent; slow client: %d bytes; server RSS %ld -> %ld KiB\n",
	       flood_sent, got_fl, off_nr, slow_sent, rss0, rss1);
	ASSERTF(p99 < P99_BOUND, "GETATTR p99 %.3f s: the server stalled", p99);
	ASSERTF(flood_open, "the WRITE flood connection was closed though it read its replies");
	ASSERTF(tl_tcp_wait_closed(half, 5000) == 1, "the half-sent record's connection is open");
	ASSERTF(tl_tcp_wait_closed(slow, 5000) == 1, "the one-byte-a-second connection is open");
	(void)got_nr;
	ASSERTF(tl_tcp_wait_closed(nonreader, 5000) == 1,
		"the connection that never reads its replies is open");
	ASSERT(log_has(&e.s, "a record still incomplete"));
	ASSERT(log_has(&e.s, "replies not taken"));
	/*
	 * Bounded memory: at most 64 calls in flight per connection, about
	 * 1 MiB each, on the flood and the non-reader: 128 MiB, plus slack.
	 * Sanitizer builds keep freed memory in a quarantine (256 MiB).
	 */
	{
		long bound = 192 * 1024;
		const char *m = getenv("ONFS_TEST_TIMEOUT_MULT");

		if (m && atoi(m) > 1) {
			bound += 256 * 1024;
			printf("# sanitizer build: RSS bound raised by the 256 MiB quarantine\n");
		}
		ASSERTF(rss1 < rss0 + bound, "server RSS grew from %ld to %ld KiB (bound +%ld)",
			rss0, rss1, bound);
	}
	getattr_timed(&e, probe);
	close(half);
	close(slow);
	close(nonreader);
	close(flood);
	close(probe);
	tl_buf_free(&nr);
	tl_buf_free(&fl);
	tl_buf_free(&hdr);
	free(payload);
	free(lat);
	env_down(&e);
	return 0;
}

/* ---------- fairness: one client's WRITE flood beside another's GETATTR ---------- */

#define FLOOD_INFLIGHT 64

/*
 * Count whole reply records in a byte stream (record marking, RFC 5531
 * section 11), across reads that split the marks.
 */
struct rec_counter {
	uint8_t hdr[4];
	unsigned hdr_have;
	uint32_t frag_left;
	bool last;
	uint64_t records;
};

static void count_records(struct rec_counter *rc, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (rc->frag_left == 0 && rc->hdr_have < 4) {
			rc->hdr[rc->hdr_have++] = *p++;
			n--;
			if (rc->hdr_have == 4) {
				uint32_t m = (uint32_t)rc->hdr[0] << 24 | (uint32_t)rc->hdr[1] << 16 |
					     (uint32_t)rc->hdr[2] << 8 | rc->hdr[3];

				rc->last = (m & 0x80000000u) != 0;
				rc->frag_left = m & 0x7fffffffu;
				if (rc->frag_left == 0) {
					rc->hdr_have = 0;
					rc->records += rc->last;
				}
			}
			continue;
		}
		{
			size_t take = n < rc->frag_left ? n : rc->frag_left;

			p += take;
			n -= take;
			rc->frag_left -= (uint32_t)take;
			if (rc->frag_left == 0) {
				rc->hdr_have = 0;
				rc->records += rc->last;
			}
		}
	}
}

static pid_t flood_pid;

static void flood_stop(void *arg)
{
	(void)arg;
	if (flood_pid > 0) {
		kill(flood_pid, SIGKILL);
		waitpid(flood_pid, NULL, 0);
		flood_pid = 0;
	}
}

/*
 * The flooding client (a child process, so that it keeps its 64 WRITEs in
 * flight whatever the prober does): UNSTABLE WRITEs of 1 MiB, a new one
 * sent as soon as a reply comes back, for secs seconds. Writes the number
 * of replies to out_fd. Exits 0 on success.
 */
static void flood_child(int port, const uint8_t *fh, uint32_t fhlen, double secs, int out_fd)
{
	struct rec_counter rc = { 0 };
	struct tl_buf wire[16];
	uint8_t *payload = malloc(1 << 20), sink[1 << 16];
	uint64_t sent = 0;
	size_t off = 0, cur = 0;
	bool have = false;
	double end;
	int fd = tl_tcp_connect(port);

	if (fd < 0 || !payload)
		_exit(2);
	memset(payload, 0x3c, 1 << 20);
	/* built once: the child's only work in the loop is sending */
	for (int i = 0; i < 16; i++) {
		struct tl_buf rec = { 0 };

		memset(&wire[i], 0, sizeof(wire[i]));
		tl_put_call(&rec, 0x7f000000u + (uint32_t)i, 2, PROG_NFS, 3, P_WRITE, TL_AUTH_SYS, 0,
			    0, 0);
		tl_put_opaque(&rec, fh, fhlen);
		tl_put_u64(&rec, (uint64_t)i << 20);
		tl_put_u32(&rec, 1 << 20);
		tl_put_u32(&rec, 0); /* UNSTABLE */
		tl_put_opaque(&rec, payload, 1 << 20);
		frame(&wire[i], &rec);
		tl_buf_free(&rec);
	}
	end = tl_now() + secs;
	while (tl_now() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (!have && sent - rc.records < FLOOD_INFLIGHT) {
			uint32_t xid = htonl(0x7f000000u + (uint32_t)sent);

			cur = sent % 16;
			memcpy(wire[cur].p + 4, &xid, 4); /* a fresh xid each time */
			off = 0;
			have = true;
			sent++;
		}
		if (have)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 50) < 0)
			_exit(3);
		if (pfd.revents & POLLOUT) {
			ssize_t w = send(fd, wire[cur].p + off, wire[cur].len - off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				_exit(4);
			if (off == wire[cur].len)
				have = false;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

			if (r == 0)
				_exit(5); /* the server closed a client that reads its replies */
			if (r > 0)
				count_records(&rc, sink, (size_t)r);
		}
	}
	{
		uint64_t got = rc.records;

		if (write(out_fd, &got, sizeof(got)) != (ssize_t)sizeof(got))
			_exit(6);
	}
	_exit(0);
}

static uint32_t put_lookup(struct env *e, struct tl_buf *b, const char *name)
{
	uint32_t xid = next_xid++;

	tl_put_call(b, xid, 2, PROG_NFS, 3, P_LOOKUP, TL_AUTH_SYS, 0, 0, 0);
	tl_put_opaque(b, e->root, e->rootlen);
	tl_put_opaque(b, name, (uint32_t)strlen(name));
	return xid;
}

static double lookup_timed(struct env *e, int fd)
{
	struct tl_buf b = { 0 };
	double t0 = tl_now();

	put_lookup(e, &b, "big4m");
	call_ok(fd, &b, "LOOKUP");
	tl_buf_free(&b);
	return tl_now() - t0;
}

/*
 * One client keeps 64 WRITEs of 1 MiB in flight (UNSTABLE, to its own
 * file) for 8 s (60 s long); another client's GETATTR of the root (answered
 * from the attribute cache on the loop) and LOOKUP (a trip through the
 * worker pool, queued behind the WRITEs) are timed meanwhile, and before
 * the flood for comparison. The p99s are printed (docs/reliability.md);
 * the assertion is only that every probe was answered within 2 s, which a
 * server that serves the flood first misses.
 */
TEST_IMPL(conns_write_flood_fairness)
{
	struct env e;
	double secs = long_mode() ? 60 : 8, end, bound = 2.0 * p99_bound();
	size_t cap = 200000, ng = 0, nl = 0, nb = 0;
	double *glat = calloc(cap, sizeof(double)), *llat = calloc(cap, sizeof(double));
	double *blat = calloc(cap, sizeof(double)), gp99, lp99, bp99;
	uint8_t floodfh[64];
	uint32_t floodlen;
	uint64_t replies = 0;
	int probe, pipefd[2], status, token;
	long rss0, rss1;

	ASSERT(glat && llat && blat);
	env_up(&e, NULL);
	floodlen = lookup_fh(&e, "flood", floodfh);
	probe = tl_tcp_connect(e.s.port);
	ASSERT(probe >= 0);
	/* the baseline: 1 s of the same probes on a quiet server */
	end = tl_now() + 1;
	while (tl_now() < end && nb < cap) {
		blat[nb++] = getattr_timed(&e, probe);
		usleep(2000);
	}
	rss0 = server_rss_kib(e.s.pid);
	ASSERT(pipe(pipefd) == 0);
	fflush(stdout);
	flood_pid = fork();
	ASSERT(flood_pid >= 0);
	if (flood_pid == 0) {
		close(pipefd[0]);
		flood_child(e.s.port, floodfh, floodlen, secs, pipefd[1]);
	}
	token = tl_cleanup_push(flood_stop, NULL);
	close(pipefd[1]);
	usleep(300000); /* let the flood fill its 64 slots */
	end = tl_now() + secs - 0.5;
	while (tl_now() < end && ng < cap) {
		glat[ng++] = getattr_timed(&e, probe);
		llat[nl++] = lookup_timed(&e, probe);
		usleep(2000);
	}
	rss1 = server_rss_kib(e.s.pid);
	ASSERT(waitpid(flood_pid, &status, 0) == flood_pid);
	flood_pid = 0;
	tl_cleanup_cancel(token);
	ASSERTF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"the flooding client failed (status 0x%x: 5 = closed by the server)", status);
	ASSERT(read(pipefd[0], &replies, sizeof(replies)) == (ssize_t)sizeof(replies));
	close(pipefd[0]);
	report("GETATTR on a quiet server (baseline)", blat, nb, &bp99);
	report("GETATTR beside 64 x 1 MiB WRITEs in flight", glat, ng, &gp99);
	report("LOOKUP beside 64 x 1 MiB WRITEs in flight", llat, nl, &lp99);
	printf("# WRITE flood: %llu x 1 MiB answered in %.0f s (%.0f MiB/s); server RSS %ld -> "
	       "%ld KiB\n",
	       (unsigned long long)replies, secs, replies / secs, rss0, rss1);
	/* served at all (a sanitizer build in a VM manages only a few MiB/s) */
	ASSERTF(replies > 0, "the flood got no reply: it was not served");
	ASSERTF(glat[ng - 1] < bound, "a GETATTR beside the flood took %.3f s", glat[ng - 1]);
	ASSERTF(llat[nl - 1] < bound, "a LOOKUP beside the flood took %.3f s", llat[nl - 1]);
	(void)gp99;
	(void)lp99;
	(void)bp99;
	close(probe);
	free(glat);
	free(llat);
	free(blat);
	env_down(&e);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		TEST_ENTRY_TIMEOUT(conns_thousand_idle_and_busy, 120),
		TEST_ENTRY_TIMEOUT(conns_cap_evicts_longest_idle, 60),
		TEST_ENTRY_TIMEOUT(conns_hostile_clients_bounded, 180),
		TEST_ENTRY_TIMEOUT(conns_write_flood_fairness, 180),
	};

	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
