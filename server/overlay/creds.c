/*
 * creds.c - the export owner's credentials (docs/architecture.md, overlayfs'
 * creator_cred): captured once when the export is set up, and put in
 * force on a worker thread before it touches that export's layers.
 *
 * Per thread: setfsuid/setfsgid and the raw setgroups syscall change only
 * the calling thread (glibc's setgroups() would change every thread). A
 * worker switches at most once per request, and only when the export's
 * owner differs from what the thread has in force. Never called on the
 * loop thread.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/*
 * What this thread has in force, by value (an export may be closed and
 * another allocated at the same address); !cur_set: the process's own.
 */
static __thread struct onfs_owner cur_owner;
static __thread bool cur_set;

int onfs_owner_capture(struct onfs_owner *o, const char *user, char *err, size_t errlen)
{
	memset(o, 0, sizeof(o[0]));
	if (!user) {
		int n;
		o->uid = geteuid();
		o->gid = getegid();
		n = getgroups((int)ONFS_ARRAY_SIZE(o->groups), o->groups);
		o->ngroups = n > 0 ? (size_t)n : 0;
		o->process = true;
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	char *end;
	unsigned long id = strtoul(user, &end, 10);

	if (!pw && *end == '\0')
		pw = getpwuid((uid_t)id);
	if (!pw) {
		snprintf(err, errlen, "owner '%s': no such user", user);
		return -1;
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid()) {
		snprintf(err, errlen, "owner '%s': only root may act as another user", user);
		return -1;
	}
	o->uid = pw->pw_uid;
	o->gid = pw->pw_gid;
	int n = (int)ONFS_ARRAY_SIZE(o->groups);
	if (getgrouplist(pw->pw_name, pw->pw_gid, o->groups, &n) < 0)
		n = 0;
	o->ngroups = (size_t)n;
	o->process = o->uid == geteuid() && o->gid == getegid();
	return 0;
}

static int apply(const struct onfs_owner *o)
{
	/* setfsuid reports the previous value; check by asking again */
	setfsgid(o->gid);
	setfsuid(o->uid);
	if ((uid_t)setfsuid((uid_t)-1) != o->uid || (gid_t)setfsgid((gid_t)-1) != o->gid)
		return -EPERM;
	if (syscall(SYS_setgroups, o->ngroups, o->groups) < 0 && geteuid() == 0)
		return -errno;
	return 0;
}

static bool same(const struct onfs_owner *a, const struct onfs_owner *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->ngroups == b->ngroups &&
	       memcmp(a->groups, b->groups, a->ngroups * sizeof(gid_t)) == 0;
}

int onfs_owner_enter(struct onfs_export *ex)
{
	const struct onfs_owner *o = &ex->owner;
	int ret;

	if (!cur_set && o->process)
		return 0; /* the thread already runs as the process */
	if (cur_set && same(&cur_owner, o))
		return 0;
	ret = apply(o);
	if (ret < 0) {
		onfs_err("export '%s': cannot switch to the owner's credentials: %s", ex->name,
			 strerror(-ret));
		return ret;
	}
	cur_owner = *o;
	cur_set = true;
	return 0;
}
