/*
 * nlmguest.c - what the busybox guest of guest.sh lacks for NFS locking, built
 * static on the host and run by the guest from the export (no compiler
 * and no nfs-utils in the guest).
 *
 *   nlmguest rpcbind          a minimal portmapper (PMAP v2, rpcbind v3/v4
 *                             SET/UNSET/GETADDR) on 127.0.0.1:111 and a
 *                             status monitor (NSM v1: MON answers success)
 *                             registered there, TCP and UDP, in the
 *                             background. The kernel's lockd registers with
 *                             the first and asks the second to monitor the
 *                             server before every first lock (without them
 *                             a `lock` mount gets ENOLCK).
 *   nlmguest try FILE [sh]    fcntl F_SETLK (exclusive, or shared): exit 0
 *                             when granted, 1 when another holds it
 *                             (EAGAIN/EACCES), 2 on any other error
 *   nlmguest hold FILE SECS [sh]  F_SETLKW, print "held", sleep, exit
 *   nlmguest wait FILE        F_SETLKW; prints how long it waited
 *   nlmguest flock FILE       flock(LOCK_EX|LOCK_NB): 0, 1 (EWOULDBLOCK), 2
 *   nlmguest flockhold FILE SECS  flock(LOCK_EX), print "held", sleep
 *   nlmguest lockwrite FILE TEXT  lock, append TEXT, fsync, unlock (dpkg's way)
 *
 * Guest side only; never run on the host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---------- locks ---------- */

static int lockit(const char *path, int cmd, int type)
{
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET };
	int fd = open(path, O_RDWR | O_CREAT, 0666);

	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	if (fcntl(fd, cmd, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			exit(1);
		fprintf(stderr, "fcntl %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------- rpcbind + statd ---------- */

struct reg {
	uint32_t prog, vers, prot, port;
};
static struct reg regs[64];
static int nregs;
static int statd_port;

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void reg_set(uint32_t prog, uint32_t vers, uint32_t prot, uint32_t port)
{
	for (int i = 0; i < nregs; i++) {
		if (regs[i].prog == prog && regs[i].vers == vers && regs[i].prot == prot) {
			regs[i].port = port;
			return;
		}
	}
	if (nregs < 64)
		regs[nregs++] = (struct reg){ prog, vers, prot, port };
}

static uint32_t reg_get(uint32_t prog, uint32_t vers, uint32_t prot)
{
	for (int i = 0; i < nregs; i++)
		if (regs[i].prog == prog && regs[i].vers == vers && regs[i].prot == prot)
			return regs[i].port;
	return 0;
}

/* An XDR string at *off: copies up to cap-1 bytes, advances *off. */
static int get_str(const uint8_t *a, size_t len, size_t *off, char *out, size_t cap)
{
	uint32_t n;

	if (*off + 4 > len)
		return -1;
	n = get32(a + *off);
	*off += 4;
	if (*off + n > len)
		return -1;
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)a + *off);
	*off += (n + 3) & ~3u;
	return 0;
}

/* Answer one call record; returns the reply length (0: no reply). */
static size_t handle(const uint8_t *rec, size_t len, uint8_t *out)
{
	uint32_t xid, prog, vers, proc, n;
	size_t off = 24, o = 0;
	const uint8_t *a;
	size_t alen;

	if (len < 40 || get32(rec + 4) != 0)
		return 0;
	xid = get32(rec);
	prog = get32(rec + 12);
	vers = get32(rec + 16);
	proc = get32(rec + 20);
	n = get32(rec + off + 4);
	off += 8 + ((n + 3) & ~3u);
	if (off + 8 > len)
		return 0;
	n = get32(rec + off + 4);
	off += 8 + ((n + 3) & ~3u);
	if (off > len)
		return 0;
	a = rec + off;
	alen = len - off;
	put32(out, xid);
	put32(out + 4, 1);
	put32(out + 8, 0);
	put32(out + 12, 0);
	put32(out + 16, 0);
	o = 20;
#define OK() (put32(out + o, 0), o += 4)
	if (prog == 100000 && vers == 2) {
		OK();
		if (proc == 1 || proc == 2) { /* SET, UNSET */
			if (alen < 16)
				return 0;
			if (proc == 1)
				reg_set(get32(a), get32(a + 4), get32(a + 8), get32(a + 12));
			put32(out + o, 1), o += 4;
		} else if (proc == 3) { /* GETPORT */
			if (alen < 16)
				return 0;
			put32(out + o, reg_get(get32(a), get32(a + 4), get32(a + 8))), o += 4;
		} else if (proc == 4) { /* DUMP: empty */
			put32(out + o, 0), o += 4;
		}
		return o;
	}
	if (prog == 100000 && (vers == 3 || vers == 4)) {
		char netid[16], addr[64], owner[64];
		size_t p = 8;
		uint32_t prot;
		unsigned h1, h2, h3, h4, p1, p2;

		OK();
		if (proc == 0)
			return o;
		if (alen < 8 || get_str(a, alen, &p, netid, sizeof(netid)) ||
		    get_str(a, alen, &p, addr, sizeof(addr)) ||
		    get_str(a, alen, &p, owner, sizeof(owner)))
			return 0;
		prot = strncmp(netid, "tcp", 3) == 0 ? 6 : 17;
		if (proc == 1 || proc == 2) { /* SET, UNSET */
			if (proc == 1 && sscanf(addr, "%u.%u.%u.%u.%u.%u", &h1, &h2, &h3, &h4, &p1,
						&p2) == 6)
				reg_set(get32(a), get32(a + 4), prot, p1 * 256 + p2);
			put32(out + o, 1), o += 4;
		} else if (proc == 3) { /* GETADDR */
			uint32_t port = reg_get(get32(a), get32(a + 4), prot);
			char ua[64] = "";
			size_t l;

			if (port)
				snprintf(ua, sizeof(ua), "127.0.0.1.%u.%u", port >> 8, port & 255);
			l = strlen(ua);
			put32(out + o, (uint32_t)l), o += 4;
			memset(out + o, 0, (l + 3) & ~3u);
			memcpy(out + o, ua, l);
			o += (l + 3) & ~3u;
		}
		return o;
	}
	if (prog == 100024 && vers == 1) {
		OK();
		if (proc == 1 || proc == 2) { /* STAT, MON: stat_succ, state 1 */
			put32(out + o, 0), o += 4;
			put32(out + o, 1), o += 4;
		} else if (proc == 3 || proc == 4) { /* UNMON, UNMON_ALL: state */
			put32(out + o, 1), o += 4;
		}
		return o;
	}
	put32(out + o, 1), o += 4; /* PROG_UNAVAIL */
	return o;
}

static int listen_on(int type, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, type, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		fprintf(stderr, "nlmguest: bind 127.0.0.1:%d: %s\n", port, strerror(errno));
		exit(2);
	}
	return fd;
}

static int port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t l = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &l);
	return ntohs(sa.sin_port);
}

#define MAXC 32

static void serve(void)
{
	int lfd[4] = { listen_on(SOCK_DGRAM, 111), listen_on(SOCK_STREAM, 111),
		       listen_on(SOCK_DGRAM, 0), listen_on(SOCK_STREAM, 0) };
	int conns[MAXC];
	int nconn = 0;
	static uint8_t rec[65536], out[1024];

	statd_port = port_of(lfd[2]);
	reg_set(100000, 2, 6, 111);
	reg_set(100000, 2, 17, 111);
	reg_set(100024, 1, 17, (uint32_t)port_of(lfd[2]));
	reg_set(100024, 1, 6, (uint32_t)port_of(lfd[3]));
	for (;;) {
		struct pollfd p[4 + MAXC];
		int n = 0;

		for (int i = 0; i < 4; i++)
			p[n++] = (struct pollfd){ lfd[i], POLLIN, 0 };
		for (int i = 0; i < nconn; i++)
			p[n++] = (struct pollfd){ conns[i], POLLIN, 0 };
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		for (int i = 0; i < 4; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			if (i == 0 || i == 2) {
				struct sockaddr_in from;
				socklen_t fl = sizeof(from);
				ssize_t r = recvfrom(lfd[i], rec, sizeof(rec), 0,
						     (struct sockaddr *)&from, &fl);
				size_t ol = r > 0 ? handle(rec, (size_t)r, out) : 0;

				if (ol)
					sendto(lfd[i], out, ol, 0, (struct sockaddr *)&from, fl);
			} else {
				int c = accept(lfd[i], NULL, NULL);

				if (c >= 0 && nconn < MAXC)
					conns[nconn++] = c;
				else if (c >= 0)
					close(c);
			}
		}
		for (int i = 0; i < nconn; i++) {
			uint8_t mark[4];
			uint32_t len;
			size_t got = 0, ol;
			int dead = 0;

			if (!(p[4 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			/* one record in one fragment, as the kernel sends them */
			if (recv(conns[i], mark, 4, MSG_WAITALL) != 4)
				dead = 1;
			len = dead ? 0 : get32(mark) & 0x7fffffffu;
			if (!dead && len > sizeof(rec))
				dead = 1;
			while (!dead && got < len) {
				ssize_t r = recv(conns[i], rec + got, len - got, 0);

				if (r <= 0)
					dead = 1;
				else
					got += (size_t)r;
			}
			if (!dead && (ol = handle(rec, len, out + 4)) > 0) {
				put32(out, 0x80000000u | (uint32_t)ol);
				if (send(conns[i], out, ol + 4, 0) < 0)
					dead = 1;
			}
			if (dead) {
				close(conns[i]);
				conns[i--] = conns[--nconn];
			}
		}
	}
}

int main(int argc, char **argv)
{
	int fd;

	if (argc >= 2 && strcmp(argv[1], "rpcbind") == 0) {
		pid_t pid = fork();

		if (pid == 0) {
			setsid();
			serve();
		}
		usleep(300 * 1000);
		return pid > 0 ? 0 : 2;
	}
	if (argc >= 3 && strcmp(argv[1], "try") == 0) {
		fd = lockit(argv[2], F_SETLK, argc > 3 ? F_RDLCK : F_WRLCK);
		close(fd);
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "hold") == 0) {
		fd = lockit(argv[2], F_SETLKW, argc > 4 ? F_RDLCK : F_WRLCK);
		printf("held\n");
		fflush(stdout);
		sleep((unsigned)atoi(argv[3]));
		close(fd);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "wait") == 0) {
		double t0 = now();

		fd = lockit(argv[2], F_SETLKW, F_WRLCK);
		printf("waited %.1f s\n", now() - t0);
		close(fd);
		return 0;
	}
	if (argc >= 3 && (strcmp(argv[1], "flock") == 0 || strcmp(argv[1], "flockhold") == 0)) {
		int hold = strcmp(argv[1], "flockhold") == 0;

		fd = open(argv[2], O_RDWR | O_CREAT, 0666);
		if (fd < 0)
			return 2;
		if (flock(fd, hold ? LOCK_EX : LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return 1;
			fprintf(stderr, "flock %s: %s\n", argv[2], strerror(errno));
			return 2;
		}
		if (hold) {
			printf("held\n");
			fflush(stdout);
			sleep(argc > 3 ? (unsigned)atoi(argv[3]) : 5);
		}
		close(fd);
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "lockwrite") == 0) {
		fd = lockit(argv[2], F_SETLKW, F_WRLCK);
		if (lseek(fd, 0, SEEK_END) < 0 || write(fd, argv[3], strlen(argv[3])) < 0 ||
		    write(fd, "\n", 1) < 0 || fsync(fd) < 0)
			return 2;
		close(fd);
		return 0;
	}
	fprintf(stderr, "usage: nlmguest rpcbind | try FILE [sh] | hold FILE SECS [sh] | "
			"wait FILE | flock FILE | flockhold FILE SECS | lockwrite FILE TEXT\n");
	return 64;
}
