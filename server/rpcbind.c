/*
 * rpcbind.c - plain mounts find the server: `mount -t nfs HOST:/ /mnt` and
 * `nfs-ls nfs://HOST/` ask the portmapper on port 111 for the NFS and
 * MOUNT ports before anything else.
 *
 * When ovlnfsd listens on the standard NFS port (2049) and neither
 * --portmap ADDR:PORT nor --portmap off was given:
 *   - port 111 of the listen address is free and may be bound: the
 *     embedded portmapper (portmap.c) answers there, TCP and UDP;
 *   - port 111 is held (a system rpcbind): NFS v3 and MOUNT v3 are
 *     registered with it through libtirpc (rpcb_set, TCP and UDP, IPv6
 *     too when listening on "::") and unregistered at exit;
 *   - neither works (not privileged, no rpcbind): clients need port= and
 *     mountport=.
 * The startup log says which happened. Any other listen port (a test's
 * port 0, a second server) leaves port 111 alone: such a server is not
 * the one a plain mount should find.
 *
 * Main thread only: the plan before the transport starts, registration
 * after it (blocking RPC to the local rpcbind, before the loop runs) and
 * unregistration after the loop has stopped.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/config.h"
#include "ovlnfsd/daemon.h"

#define PMAP_PORT 111
#define NFS_PROG 100003
#define MOUNT_PROG 100005
#define NLM_PROG 100021

/* What a system rpcbind is told about: NFS v3, MOUNT v3 and the lock manager. */
static const struct {
	rpcprog_t prog;
	rpcvers_t vers;
} reg_progs[] = { { NFS_PROG, 3 }, { MOUNT_PROG, 3 }, { NLM_PROG, 1 }, { NLM_PROG, 3 },
		  { NLM_PROG, 4 } };
#define NREG_PROGS (sizeof(reg_progs) / sizeof(reg_progs[0]))

static struct {
	enum onfs_portmap_mode mode;
	int probe_err;             /* errno of the probe of port 111 */
	struct {
		char netid[8];
		rpcprog_t prog;
		rpcvers_t vers;
	} regs[2 * 2 * NREG_PROGS]; /* (v4 + v6) x (tcp + udp) x programs */                 /* what rpcbind took from us: only those are withdrawn */
	unsigned nregs;
	bool registered;
} pm;

/* Bind (and release) host:111 for type; 0 or -errno. */
static int probe(const char *host, int type)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST, .ai_socktype = type };
	struct addrinfo *res = NULL;
	int fd, r, one = 1, zero = 0;

	if (getaddrinfo(host, "111", &hints, &res) != 0 || !res)
		return -EINVAL;
	fd = socket(res->ai_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* as transport.c binds: a TIME_WAIT left by our own last run is no holder */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	r = bind(fd, res->ai_addr, res->ai_addrlen) < 0 ? -errno : 0;
	close(fd);
out:
	freeaddrinfo(res);
	return r;
}

enum onfs_portmap_mode onfs_portmap_plan(struct onfs_config *cfg)
{
	const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
	int r;

	pm.mode = ONFS_PORTMAP_NONE;
	if (cfg->portmap_host) {
		pm.mode = ONFS_PORTMAP_GIVEN;
		return pm.mode;
	}
	if (cfg->portmap_off || cfg->listen_port != ONFS_DEFAULT_PORT)
		return pm.mode;
	r = probe(host, SOCK_STREAM);
	if (r == 0)
		r = probe(host, SOCK_DGRAM);
	pm.probe_err = -r;
	if (r == 0) {
		cfg->portmap_host = strdup(host);
		if (!cfg->portmap_host)
			return pm.mode;
		cfg->portmap_port = PMAP_PORT;
		pm.mode = ONFS_PORTMAP_EMBEDDED;
	} else {
		/* held (EADDRINUSE), or not ours to bind (EACCES): a local rpcbind may be there */
		pm.mode = ONFS_PORTMAP_RPCBIND;
	}
	return pm.mode;
}

/* One rpcb_set for prog/vers on netid at host:port; false when refused. */
static bool reg(const char *netid, const char *host, uint16_t port, rpcprog_t prog,
		rpcvers_t vers)
{
	struct netconfig *nc = getnetconfigent(netid);
	struct sockaddr_storage ss;
	struct netbuf nb;
	bool ok = false;

	if (!nc)
		return false;
	memset(&ss, 0, sizeof(ss));
	if (strchr(netid, '6')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, strchr(host, ':') ? host : "::", &s6->sin6_addr) != 1)
			goto out;
		nb.len = nb.maxlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		/* "::" serves IPv4 too (V6ONLY off): register it as 0.0.0.0 */
		if (inet_pton(AF_INET, strchr(host, ':') ? "0.0.0.0" : host, &s4->sin_addr) != 1)
			goto out;
		nb.len = nb.maxlen = sizeof(*s4);
	}
	nb.buf = &ss;
	ok = rpcb_set(prog, vers, nc, &nb);
out:
	freenetconfigent(nc);
	return ok;
}

void onfs_portmap_announce(const struct onfs_server *srv)
{
	const struct onfs_config *cfg = srv->cfg;
	const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
	static const char *const v4[] = { "tcp", "udp" }, *const v6[] = { "tcp6", "udp6" };
	bool six = strchr(host, ':') != NULL;
	unsigned sets = 0;

	switch (pm.mode) {
	case ONFS_PORTMAP_GIVEN:
		onfs_info("portmap: answering on %s:%d as asked (--portmap/portmap =)",
			  cfg->portmap_host, cfg->portmap_port);
		return;
	case ONFS_PORTMAP_EMBEDDED:
		onfs_info("portmap: port 111 was free: answering portmap on %s:111 (tcp, udp); "
			  "plain `mount -t nfs -o vers=3 HOST:/` finds NFS and MOUNT", host);
		return;
	case ONFS_PORTMAP_NONE:
		if (cfg->portmap_off)
			onfs_info("portmap: off (--portmap off): clients need port=%u,mountport=%u",
				  (unsigned)srv->port, (unsigned)srv->port);
		else
			onfs_debug("portmap: not on port 111: listening on port %u, not %d",
				   (unsigned)srv->port, ONFS_DEFAULT_PORT);
		return;
	case ONFS_PORTMAP_RPCBIND:
		break;
	}
	for (unsigned f = 0; f < (six ? 2u : 1u); f++) {
		const char *const *ids = f ? v6 : v4;

		for (unsigned i = 0; i < 2 * NREG_PROGS; i++) {
			rpcprog_t prog = reg_progs[i / 2].prog;
			rpcvers_t vers = reg_progs[i / 2].vers;

			if (!reg(ids[i % 2], host, srv->port, prog, vers))
				continue;
			snprintf(pm.regs[pm.nregs].netid, sizeof(pm.regs[0].netid), "%s", ids[i % 2]);
			pm.regs[pm.nregs].prog = prog;
			pm.regs[pm.nregs++].vers = vers;
			sets++;
		}
	}
	if (sets == 0) {
		onfs_warn("portmap: port 111 of %s is not ours (%s) and no rpcbind took the "
			  "registration of NFS and MOUNT: clients need port=%u,mountport=%u "
			  "(or --portmap off to silence this)",
			  host, strerror(pm.probe_err), (unsigned)srv->port, (unsigned)srv->port);
		return;
	}
	pm.registered = true;
	onfs_info("portmap: port 111 is held by the system rpcbind: registered NFS v3, "
		  "MOUNT v3 and NLM v1/3/4 at port %u with it (%u of %u registrations, %s%s); "
		  "unregistered at exit",
		  (unsigned)srv->port, sets, (unsigned)((six ? 4 : 2) * NREG_PROGS),
		  six ? "tcp, udp, tcp6, udp6" : "tcp, udp",
		  sets < (six ? 4 : 2) * NREG_PROGS ? "; the others are held by another server" : "");
}

void onfs_portmap_withdraw(void)
{
	if (!pm.registered)
		return;
	for (unsigned i = 0; i < pm.nregs; i++) {
		struct netconfig *nc = getnetconfigent(pm.regs[i].netid);

		if (!nc)
			continue;
		rpcb_unset(pm.regs[i].prog, pm.regs[i].vers, nc);
		freenetconfigent(nc);
	}
	pm.nregs = 0;
	pm.registered = false;
	onfs_info("portmap: NFS, MOUNT and NLM unregistered from rpcbind");
}
