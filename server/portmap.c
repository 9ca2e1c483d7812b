/*
 * portmap.c - the embedded portmapper, PMAP v2 (RFC 1833 section 3):
 * NULL, SET/UNSET (always FALSE: the table is fixed), GETPORT, DUMP.
 * CALLIT is not served (PROC_UNAVAIL): it would make us an amplifier.
 *
 * Owns: nothing; the mapping table is derived from srv->port.
 * Thread: the loop thread (every procedure is on_loop: no blocking call).
 * Never: blocks, or registers anything a client asks for.
 */
#include <stdbool.h>
#include <string.h>
#include <rpc/rpc.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/server.h"
#include "pmap2.h"

#define PMAP_NFS_PROG 100003
#define PMAP_MOUNT_PROG 100005
#define PMAP_NLM_PROG 100021 /* nlm.c */
#define PMAP_NSM_PROG 100024 /* nsm.c */

struct portmap_entry {
	uint32_t prog, vers;
};

/* What this server serves (the portmapper itself answers on the port the
 * question came in on, which also serves every program). */
static const struct portmap_entry portmap_table[] = {
	{ ONFS_PMAP_PROG, ONFS_PMAP_VERS },
	{ PMAP_NFS_PROG, 3 },
	{ PMAP_MOUNT_PROG, 3 },
	{ PMAP_NLM_PROG, 1 },
	{ PMAP_NLM_PROG, 3 },
	{ PMAP_NLM_PROG, 4 },
	{ PMAP_NSM_PROG, 1 },
};

static uint32_t portmap_port_of(const struct onfs_call *c, uint32_t prog)
{
	if (prog == ONFS_PMAP_PROG && c->local_port)
		return c->local_port;
	return c->srv->port;
}

static bool portmap_null(struct onfs_call *c, void *args, XDR *xdrs)
{
	(void)c;
	(void)args;
	(void)xdrs;
	return true;
}

static bool portmap_set_unset(struct onfs_call *c, void *args, XDR *xdrs)
{
	bool_t no = FALSE;

	(void)c;
	(void)args;
	return xdr_bool(xdrs, &no);
}

static bool portmap_getport(struct onfs_call *c, void *args, XDR *xdrs)
{
	const struct onfs_pmap_mapping *m = args;
	u_int port = 0;
	size_t i;

	if (m->prot == ONFS_IPPROTO_TCP || m->prot == ONFS_IPPROTO_UDP) {
		for (i = 0; i < ONFS_ARRAY_SIZE(portmap_table); i++) {
			if (portmap_table[i].prog == m->prog && portmap_table[i].vers == m->vers) {
				port = portmap_port_of(c, m->prog);
				break;
			}
		}
	}
	return xdr_u_int(xdrs, &port);
}

static bool portmap_dump(struct onfs_call *c, void *args, XDR *xdrs)
{
	struct onfs_pmap_list items[2 * ONFS_ARRAY_SIZE(portmap_table)];
	onfs_pmap_dump_res head = NULL;
	size_t i, n = 0;

	(void)args;
	/* Built back to front so the list reads in table order, TCP first. */
	for (i = ONFS_ARRAY_SIZE(portmap_table); i-- > 0;) {
		static const u_int prots[2] = { ONFS_IPPROTO_UDP, ONFS_IPPROTO_TCP };
		size_t k;

		for (k = 0; k < 2; k++) {
			struct onfs_pmap_list *it = &items[n++];

			it->map.prog = portmap_table[i].prog;
			it->map.vers = portmap_table[i].vers;
			it->map.prot = prots[k];
			it->map.port = portmap_port_of(c, portmap_table[i].prog);
			it->next = head;
			head = it;
		}
	}
	return xdr_onfs_pmap_dump_res(xdrs, &head);
}

static const struct onfs_proc pmap2_procs[] = {
	[ONFS_PMAPPROC_NULL] = {
		.name = "PMAP_NULL", .xdr_args = NULL, .args_size = 0,
		.run = portmap_null, .on_loop = true, .auth_none_ok = true,
	},
	[ONFS_PMAPPROC_SET] = {
		.name = "PMAP_SET", .xdr_args = (xdrproc_t)xdr_onfs_pmap_mapping,
		.args_size = sizeof(struct onfs_pmap_mapping),
		.run = portmap_set_unset, .on_loop = true, .auth_none_ok = true,
	},
	[ONFS_PMAPPROC_UNSET] = {
		.name = "PMAP_UNSET", .xdr_args = (xdrproc_t)xdr_onfs_pmap_mapping,
		.args_size = sizeof(struct onfs_pmap_mapping),
		.run = portmap_set_unset, .on_loop = true, .auth_none_ok = true,
	},
	[ONFS_PMAPPROC_GETPORT] = {
		.name = "PMAP_GETPORT", .xdr_args = (xdrproc_t)xdr_onfs_pmap_mapping,
		.args_size = sizeof(struct onfs_pmap_mapping),
		.run = portmap_getport, .on_loop = true, .auth_none_ok = true,
	},
	[ONFS_PMAPPROC_DUMP] = {
		.name = "PMAP_DUMP", .xdr_args = NULL, .args_size = 0,
		.run = portmap_dump, .on_loop = true, .auth_none_ok = true,
	},
	/* ONFS_PMAPPROC_CALLIT: not served (PROC_UNAVAIL) */
};

const struct onfs_program onfs_pmap2_program = {
	.name = "PMAP2",
	.prog = ONFS_PMAP_PROG,
	.vers = ONFS_PMAP_VERS,
	.procs = pmap2_procs,
	.nprocs = ONFS_ARRAY_SIZE(pmap2_procs),
};
