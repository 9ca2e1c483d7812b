/*
 * srcaddr.c - see srcaddr.h: connect()/bind() interposed in the test
 * executable so that libnfs sockets leave from a chosen loopback address.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "srcaddr.h"
#include "testlib.h"

static struct in_addr src;
static int src_set;

void tl_src_addr_set(const char *addr)
{
	src_set = addr != NULL;
	if (addr)
		ASSERTF(inet_pton(AF_INET, addr, &src) == 1, "bad source address '%s'", addr);
}

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static bind_fn real_bind(void)
{
	static bind_fn fn;

	if (!fn)
		fn = (bind_fn)dlsym(RTLD_NEXT, "bind");
	return fn;
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (src_set && sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
	    ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY)) {
		/* libnfs binds a reserved port on INADDR_ANY when run as root */
		struct sockaddr_in b = *(const struct sockaddr_in *)sa;

		b.sin_addr = src;
		return real_bind()(fd, (struct sockaddr *)&b, sizeof(b));
	}
	return real_bind()(fd, sa, len);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);

	if (!real)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	if (src_set && sa && sa->sa_family == AF_INET) {
		struct sockaddr_in cur;
		socklen_t cl = sizeof(cur);

		if (getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 && cur.sin_port == 0) {
			struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr = src };

			if (real_bind()(fd, (struct sockaddr *)&b, sizeof(b)) < 0)
				return -1;
		}
	}
	return real(fd, sa, len);
}

void tl_client_connect_as(struct tl_client *c, int port, const char *src_addr,
			  const char *machine)
{
	tl_src_addr_set(src_addr);
	tl_client_connect(c, port);
	tl_src_addr_set(NULL);
	if (machine) {
		struct AUTH *a = libnfs_authunix_create(machine, 0, 0, 0, NULL);

		ASSERT(a != NULL);
		rpc_set_auth(c->rpc, a);
	}
}

void tl_client_local_addr(struct tl_client *c, char *out, size_t cap)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	out[0] = '\0';
	if (getsockname(rpc_get_fd(c->rpc), (struct sockaddr *)&sa, &len) == 0 &&
	    sa.sin_family == AF_INET)
		inet_ntop(AF_INET, &sa.sin_addr, out, (socklen_t)cap);
}
