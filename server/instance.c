/*
 * instance.c - calls and per-client instances: who a call comes from (its
 * address in {client} form and its AUTH_SYS machine name), which export a
 * handle's id names for that caller, and which procedures change the tree
 * (their instance gets its upper before any node is resolved). The
 * instances themselves live in server/overlay/instance.c.
 *
 * Threads: pool workers (MNT and NFS procedures), and the worker's end of
 * onfs_dispatch_run for onfs_call_leave. No state of its own.
 */
#include <errno.h>
#include <string.h>

#include "nfs3.h"
#include "ovlnfsd/access.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"
#include "ovlnfsd/template.h"

static void call_who(const struct onfs_call *c, struct onfs_client_id *who)
{
	memset(who, 0, sizeof(*who));
	if (onfs_tmpl_client_value((const struct sockaddr *)&c->peer, who->addr,
				   sizeof(who->addr)) < 0)
		strcpy(who->addr, "unknown");
	if (c->cred.flavor == ONFS_AUTH_SYS) {
		who->machine_len = c->cred.machine_len < sizeof(who->machine) - 1
					   ? c->cred.machine_len
					   : sizeof(who->machine) - 1;
		memcpy(who->machine, c->cred.machine, who->machine_len);
	}
}

/* Procedures that change the tree: their instance needs its upper. */
static bool call_mutates(const struct onfs_call *c)
{
	if (c->prog != NFS_PROGRAM)
		return false;
	switch (c->proc) {
	case NFSPROC3_SETATTR:
	case NFSPROC3_WRITE:
	case NFSPROC3_CREATE:
	case NFSPROC3_MKDIR:
	case NFSPROC3_SYMLINK:
	case NFSPROC3_MKNOD:
	case NFSPROC3_REMOVE:
	case NFSPROC3_RMDIR:
	case NFSPROC3_RENAME:
	case NFSPROC3_LINK:
	case NFSPROC3_COMMIT:
		return true;
	default:
		return false;
	}
}


struct onfs_export *onfs_call_export(struct onfs_call *c, uint16_t id, int *err)
{
	struct onfs_export *ex = onfs_server_export_by_id(c->srv, id);
	struct onfs_client_id who;
	int ret;

	if (ex && !onfs_export_templated(ex)) {
		/* counted in once per call: a reset or commit waits for it (commit.c) */
		if (c->inst == ex)
			return ex;
		if (c->inst) {
			*err = -EXDEV;
			return NULL;
		}
		ret = onfs_export_enter(ex);
		if (ret < 0) {
			*err = ret;
			return NULL;
		}
		c->inst = ex;
		return ex;
	}
	/* a line's own id is never in a handle: only instances answer */
	call_who(c, &who);
	ret = onfs_instance_enter_id(id, &who, false, &ex);
	if (ret == 0 && !c->inst && call_mutates(c) && !onfs_instance_settled(ex) &&
	    !onfs_access_rules_of(ex)->readonly) {
		/* the first change: the upper is created before any node is resolved */
		onfs_instance_leave(ex);
		ret = onfs_instance_enter_id(id, &who, true, &ex);
	}
	if (ret < 0) {
		*err = ret;
		return NULL;
	}
	if (c->inst && c->inst != ex) {
		/* RENAME and LINK never cross instances (nor exports) */
		onfs_instance_leave(ex);
		*err = -EXDEV;
		return NULL;
	}
	if (c->inst)
		onfs_instance_leave(ex); /* counted once per call */
	else
		c->inst = ex;
	return ex;
}

struct onfs_export *onfs_call_export_cached(struct onfs_call *c, uint16_t id)
{
	struct onfs_export *ex = onfs_server_export_by_id(c->srv, id);
	struct onfs_client_id who;

	if (ex)
		return onfs_export_templated(ex) ? NULL : ex;
	if (c->inst)
		return NULL;
	call_who(c, &who);
	if (onfs_instance_try_enter_id(id, &who, &ex) < 0)
		return NULL;
	c->inst = ex;
	return ex;
}

int onfs_call_mount_instance(struct onfs_call *c, struct onfs_export *line, const char *name,
			     struct onfs_export **out)
{
	struct onfs_client_id who;
	int ret;

	call_who(c, &who);
	ret = onfs_instance_for_mount(line, &who, name, false, out);
	if (ret == 0) {
		if (c->inst)
			onfs_instance_leave(c->inst);
		c->inst = *out;
	}
	return ret;
}

void onfs_call_leave(struct onfs_call *c)
{
	if (c->inst) {
		onfs_instance_leave(c->inst);
		c->inst = NULL;
	}
}

int onfs_call_enter_export(struct onfs_call *c, struct onfs_export *ex)
{
	int ret;

	if (onfs_export_templated(ex) || c->inst == ex)
		return 0;
	ret = onfs_export_enter(ex);
	if (ret < 0)
		return ret;
	if (c->inst)
		onfs_instance_leave(c->inst);
	c->inst = ex;
	return 0;
}
