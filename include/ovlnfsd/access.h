/*
 * access.h - who may reach an export and as whom (server/access.c): the
 * client address lists (CIDR, IPv4 and IPv6), the `secure` source-port
 * rule, ro/rw per export line, and squash (root|all|none, as knfsd's
 * nfsd_setuser).
 *
 * The rules of each export instance are one immutable object, published
 * with an atomic pointer swap (SIGHUP reload on the loop thread) and read
 * without locks by any thread. Retired rule objects are kept until
 * onfs_access_cleanup (they are tiny, and a worker may still hold one).
 */
#ifndef OVLNFSD_ACCESS_H
#define OVLNFSD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ovlnfsd/config.h"
#include "ovlnfsd/server.h"

struct onfs_export;

/* At most this many entries in one clients= list (bounds MOUNT EXPORT). */
#define ONFS_ACCESS_MAX_CLIENTS 64

/* Immutable once published. */
struct onfs_access_rules {
	struct onfs_cidr *clients; /* owned copy; nclients 0: every client */
	size_t nclients;
	bool readonly;             /* access=ro */
	enum onfs_squash squash;
	uint32_t anonuid, anongid;
	bool secure;               /* source port < 1024 required */
	struct onfs_access_rules *retired_next; /* access.c's list of old rules */
};

/* --- pure functions (any thread) --- */

/*
 * Parse "10.0.0.0/8", "::1", "fe80::/10", "192.168.1.7" (a bare address
 * is /32 or /128). Host bits must be zero ("10.0.0.1/8" is refused, as a
 * typo guard). Returns 0 or -EINVAL.
 */
int onfs_cidr_parse(const char *s, struct onfs_cidr *out);

/*
 * Does the address match? An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * what a dual-stack listener reports for an IPv4 client) matches IPv4
 * entries as the IPv4 address it carries.
 */
bool onfs_cidr_match(const struct onfs_cidr *c, const struct sockaddr *sa);

/*
 * Parse a clients= list (comma and/or whitespace separated) into a
 * malloc'd array. Returns 0, or -EINVAL with the offending entry copied
 * into bad, -E2BIG for more than ONFS_ACCESS_MAX_CLIENTS entries, or
 * -ENOMEM. An empty list is -EINVAL.
 */
int onfs_access_parse_clients(const char *list, struct onfs_cidr **out, size_t *n,
			      char *bad, size_t badlen);

/* The default clients list of a config-file export: 127.0.0.0/8 and ::1. */
int onfs_access_default_clients(struct onfs_cidr **out, size_t *n);

/* Is this address one of r's clients? */
bool onfs_access_client_ok(const struct onfs_access_rules *r, const struct sockaddr *sa);
/* Does the source port satisfy `secure` (always true without it)? */
bool onfs_access_port_ok(const struct onfs_access_rules *r, const struct sockaddr *sa);

/*
 * The identity permission checks and created objects use, after squash
 * (knfsd's nfsd_setuser): all -> anonuid/anongid with no supplementary
 * groups; root -> uid 0 becomes anonuid, gid 0 anongid, and a group 0 in
 * the supplementary list anongid (knfsd maps each independently: a
 * non-root uid with gid 0 loses group 0 too); none -> as sent.
 */
void onfs_access_squash(const struct onfs_access_rules *r, const struct onfs_cred *in,
			struct onfs_cred *out);

/* --- the rules of export instances --- */

/* A new rules object from an export line (copies what it needs). NULL: ENOMEM. */
struct onfs_access_rules *onfs_access_rules_new(const struct onfs_export_conf *ec);

/*
 * Publish rules for ex, replacing (atomically) any earlier ones, which are
 * retired, not freed. Takes ownership of r. Main/loop thread only.
 * Returns 0 or -ENOSPC (more than ONFS_MAX_EXPORTS instances).
 */
int onfs_access_publish(const struct onfs_export *ex, struct onfs_access_rules *r);

/*
 * The rules in force for ex (any thread, no lock). An instance that was
 * never published gets the -o defaults: every client, rw as the layers
 * allow, no squash, not secure.
 */
const struct onfs_access_rules *onfs_access_rules_of(const struct onfs_export *ex);

/* Free every published and retired rules object (after the pool has stopped). */
void onfs_access_cleanup(void);

/* --- what the procedures call (worker or loop thread) --- */

/*
 * May this call's client use ex? 0; -EACCES for an address outside the
 * export's clients; -EPERM for `secure` with a source port >= 1024 (knfsd
 * answers NFS3ERR_PERM there; MOUNT answers MNT3ERR_ACCES for both).
 */
int onfs_access_check(const struct onfs_call *c, const struct onfs_export *ex);

/* c's credential after ex's squash rule. */
void onfs_access_cred(const struct onfs_call *c, const struct onfs_export *ex,
		      struct onfs_cred *out);

/* True when mutations must answer NFS3ERR_ROFS: the layers or access=ro. */
bool onfs_access_readonly(const struct onfs_export *ex);

#endif
