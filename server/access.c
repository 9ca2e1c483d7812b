/*
 * access.c - who may reach an export and as whom: client address lists
 * (CIDR), the `secure` source-port rule, access=ro, squash; and the table
 * of rules in force per export instance.
 *
 * Threads: the parsers and matchers are pure (any thread). The table is
 * written by the main/loop thread only (startup, SIGHUP reload) and read
 * by every thread without a lock: a slot's rules pointer is swapped with a
 * release store and read with an acquire load. Rules replaced by a reload
 * are retired onto a list, never freed while serving (a worker may still
 * be reading them); onfs_access_cleanup frees them at exit.
 * Never: touches the filesystem, blocks, or logs per request except for
 * refusals at debug level.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/access.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/overlay.h"

#define SECURE_PORT_MAX 1023

/* --- CIDR --- */

int onfs_cidr_parse(const char *s, struct onfs_cidr *out)
{
	char addr[64];
	const char *slash;
	size_t alen;
	unsigned long prefix;
	unsigned max;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!s || !*s || strlen(s) >= sizeof(out->text))
		goto out;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		goto out;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		goto out;
	}
	prefix = max;
	if (slash) {
		char *end;

		if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3)
			goto out;
		prefix = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || prefix > max)
			goto out;
	}
	out->prefix = (unsigned)prefix;
	/* host bits must be zero: "10.0.0.1/8" is more likely a typo than a wish */
	for (unsigned bit = out->prefix; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
			goto out;
	snprintf(out->text, sizeof(out->text), "%s", s);
	ret = 0;
out:
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((a[full] & mask) != (b[full] & mask))
			return false;
	}
	return true;
}

bool onfs_cidr_match(const struct onfs_cidr *c, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a;
	int family;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		family = AF_INET6;
		if (c->family == AF_INET && memcmp(a, v4mapped, 12) == 0) {
			a += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	return family == c->family && prefix_equal(a, c->addr, c->prefix);
}

int onfs_access_parse_clients(const char *list, struct onfs_cidr **out, size_t *n,
			      char *bad, size_t badlen)
{
	static const char seps[] = ", \t\r\n";
	struct onfs_cidr *v = NULL;
	size_t count = 0, cap = 0;
	const char *p = list ? list : "";
	int ret = -EINVAL;

	if (bad && badlen)
		bad[0] = '\0';
	for (;;) {
		char item[128];
		size_t len;

		p += strspn(p, seps);
		if (!*p)
			break;
		len = strcspn(p, seps);
		if (len >= sizeof(item)) {
			if (bad && badlen)
				snprintf(bad, badlen, "%.*s", (int)len, p);
			goto out_free;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		p += len;
		if (count == ONFS_ACCESS_MAX_CLIENTS) {
			ret = -E2BIG;
			goto out_free;
		}
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct onfs_cidr *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				ret = -ENOMEM;
				goto out_free;
			}
			v = nv;
			cap = ncap;
		}
		if (onfs_cidr_parse(item, &v[count]) < 0) {
			if (bad && badlen)
				snprintf(bad, badlen, "%s", item);
			goto out_free;
		}
		count++;
	}
	if (count == 0)
		goto out_free;
	*out = v;
	*n = count;
	return 0;
out_free:
	free(v);
	return ret;
}

int onfs_access_default_clients(struct onfs_cidr **out, size_t *n)
{
	return onfs_access_parse_clients("127.0.0.0/8 ::1", out, n, NULL, 0);
}

bool onfs_access_client_ok(const struct onfs_access_rules *r, const struct sockaddr *sa)
{
	if (r->nclients == 0)
		return true;
	for (size_t i = 0; i < r->nclients; i++)
		if (onfs_cidr_match(&r->clients[i], sa))
			return true;
	return false;
}

bool onfs_access_port_ok(const struct onfs_access_rules *r, const struct sockaddr *sa)
{
	unsigned port;

	if (!r->secure)
		return true;
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	else
		return false;
	return port <= SECURE_PORT_MAX;
}

void onfs_access_squash(const struct onfs_access_rules *r, const struct onfs_cred *in,
			struct onfs_cred *out)
{
	*out = *in;
	switch (r->squash) {
	case ONFS_SQUASH_ALL:
		out->uid = r->anonuid;
		out->gid = r->anongid;
		out->ngroups = 0;
		break;
	case ONFS_SQUASH_ROOT:
		/* knfsd nfsd_setuser: uid, gid and each group 0 map independently */
		if (out->uid == 0)
			out->uid = r->anonuid;
		if (out->gid == 0)
			out->gid = r->anongid;
		for (uint32_t i = 0; i < out->ngroups && i < ONFS_MAX_GROUPS; i++)
			if (out->groups[i] == 0)
				out->groups[i] = r->anongid;
		break;
	case ONFS_SQUASH_NONE:
		break;
	}
}

/* --- rules objects --- */

struct onfs_access_rules *onfs_access_rules_new(const struct onfs_export_conf *ec)
{
	struct onfs_access_rules *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (ec->nclients) {
		r->clients = malloc(ec->nclients * sizeof(*r->clients));
		if (!r->clients) {
			free(r);
			return NULL;
		}
		memcpy(r->clients, ec->clients, ec->nclients * sizeof(*r->clients));
		r->nclients = ec->nclients;
	}
	r->readonly = ec->readonly;
	r->squash = ec->squash;
	r->anonuid = ec->anonuid;
	r->anongid = ec->anongid;
	r->secure = ec->secure;
	return r;
}

static void rules_free(struct onfs_access_rules *r)
{
	if (!r)
		return;
	free(r->clients);
	free(r);
}

/* --- the table --- */

struct rules_slot {
	_Atomic(const struct onfs_export *) ex;
	_Atomic(struct onfs_access_rules *) rules;
};

static struct rules_slot slots[ONFS_MAX_EXPORTS];
static struct onfs_access_rules *retired; /* main/loop thread only */

static const struct onfs_access_rules default_rules = {
	.squash = ONFS_SQUASH_NONE,
	.anonuid = ONFS_DEFAULT_ANON_ID,
	.anongid = ONFS_DEFAULT_ANON_ID,
};

int onfs_access_publish(const struct onfs_export *ex, struct onfs_access_rules *r)
{
	struct rules_slot *free_slot = NULL;

	for (size_t i = 0; i < ONFS_ARRAY_SIZE(slots); i++) {
		const struct onfs_export *cur = atomic_load_explicit(&slots[i].ex,
								     memory_order_relaxed);

		if (cur == ex) {
			struct onfs_access_rules *old =
				atomic_exchange_explicit(&slots[i].rules, r, memory_order_acq_rel);

			if (old) {
				old->retired_next = retired;
				retired = old;
			}
			return 0;
		}
		if (!cur && !free_slot)
			free_slot = &slots[i];
	}
	if (!free_slot) {
		rules_free(r);
		return -ENOSPC;
	}
	/* rules first: a reader that sees the export sees its rules */
	atomic_store_explicit(&free_slot->rules, r, memory_order_release);
	atomic_store_explicit(&free_slot->ex, ex, memory_order_release);
	return 0;
}

const struct onfs_access_rules *onfs_access_rules_of(const struct onfs_export *ex)
{
	/* a per-client instance follows its line's rules */
	ex = onfs_export_line_of(ex);
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(slots); i++) {
		if (atomic_load_explicit(&slots[i].ex, memory_order_acquire) == ex) {
			const struct onfs_access_rules *r =
				atomic_load_explicit(&slots[i].rules, memory_order_acquire);

			return r ? r : &default_rules;
		}
	}
	return &default_rules;
}

void onfs_access_cleanup(void)
{
	for (size_t i = 0; i < ONFS_ARRAY_SIZE(slots); i++) {
		rules_free(atomic_exchange(&slots[i].rules, NULL));
		atomic_store(&slots[i].ex, NULL);
	}
	while (retired) {
		struct onfs_access_rules *next = retired->retired_next;

		rules_free(retired);
		retired = next;
	}
}

/* --- per call --- */

static void peer_text(const struct onfs_call *c, char *out, size_t cap)
{
	const struct sockaddr_storage *ss = &c->peer;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
	}
	snprintf(out, cap, "%s port %u", host, port);
}

int onfs_access_check(const struct onfs_call *c, const struct onfs_export *ex)
{
	const struct onfs_access_rules *r = onfs_access_rules_of(ex);
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	char who[INET6_ADDRSTRLEN + 16];

	if (!onfs_access_client_ok(r, sa)) {
		if (onfs_log_verbosity >= ONFS_LOG_DEBUG) {
			peer_text(c, who, sizeof(who));
			onfs_debug("access: %s is not a client of export '%s'", who,
				   onfs_export_name(ex));
		}
		return -EACCES;
	}
	if (!onfs_access_port_ok(r, sa)) {
		if (onfs_log_verbosity >= ONFS_LOG_DEBUG) {
			peer_text(c, who, sizeof(who));
			onfs_debug("access: illegal port: %s (export '%s' is secure)", who,
				   onfs_export_name(ex));
		}
		return -EPERM;
	}
	return 0;
}

void onfs_access_cred(const struct onfs_call *c, const struct onfs_export *ex,
		      struct onfs_cred *out)
{
	onfs_access_squash(onfs_access_rules_of(ex), &c->cred, out);
}

bool onfs_access_readonly(const struct onfs_export *ex)
{
	return onfs_export_readonly(ex) || onfs_access_rules_of(ex)->readonly;
}
