/*
 * test-access.c - server/access.c: CIDR parsing and matching (IPv4, IPv6,
 * /0 /32 /128 edges, IPv4-mapped IPv6 peers), the secure-port rule,
 * squash root|all|none (as knfsd's nfsd_setuser), and the lock-free rules
 * table (publish, replace, defaults for an unpublished export).
 *
 * Single-threaded; no network, no files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/access.h"
#include "unit.h"


static struct sockaddr_storage sa_of(const char *addr, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			abort();
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			abort();
	}
	return ss;
}

static bool match(const char *cidr, const char *addr)
{
	struct onfs_cidr c;
	struct sockaddr_storage ss = sa_of(addr, 1000);

	if (onfs_cidr_parse(cidr, &c) != 0) {
		FAIL("'%s' did not parse", cidr);
		return false;
	}
	return onfs_cidr_match(&c, (struct sockaddr *)&ss);
}

static void access_cidr_parse(void)
{
	static const char *const good[] = {
		"10.0.0.0/8", "127.0.0.1", "0.0.0.0/0", "192.168.1.7/32", "::1", "::/0",
		"fe80::/10", "2001:db8::/32", "2001:db8::1/128", "::ffff:10.0.0.0/104",
	};
	static const char *const bad[] = {
		"", "10.0.0.1/8", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/-1",
		"/8", "localhost", "10.0.0", "10.0.0.0/8x", "fe80::1/10", "1.2.3.4/+8",
		"10.0.0.0/0008", "*",
	};
	struct onfs_cidr c;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (onfs_cidr_parse(good[i], &c) != 0) {
			FAIL("'%s' refused", good[i]);
		} else {
			CHECK(strcmp(c.text, good[i]) == 0);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (onfs_cidr_parse(bad[i], &c) != -EINVAL) {
			FAIL("'%s' accepted", bad[i]);
		}
	}
	CHECK(onfs_cidr_parse("10.0.0.0/8", &c) == 0 && c.family == AF_INET && c.prefix == 8);
	CHECK(onfs_cidr_parse("::1", &c) == 0 && c.family == AF_INET6 && c.prefix == 128);
	CHECK(onfs_cidr_parse("1.2.3.4", &c) == 0 && c.prefix == 32);
}

static void access_cidr_match(void)
{
	/* IPv4 */
	CHECK(match("10.0.0.0/8", "10.0.0.1"));
	CHECK(match("10.0.0.0/8", "10.255.255.255"));
	CHECK(!match("10.0.0.0/8", "11.0.0.0"));
	CHECK(!match("10.0.0.0/8", "9.255.255.255"));
	CHECK(match("192.168.1.0/25", "192.168.1.127"));
	CHECK(!match("192.168.1.0/25", "192.168.1.128"));
	CHECK(match("0.0.0.0/0", "1.2.3.4"));
	CHECK(match("0.0.0.0/0", "255.255.255.255"));
	CHECK(match("192.168.1.7/32", "192.168.1.7"));
	CHECK(!match("192.168.1.7/32", "192.168.1.6"));
	CHECK(match("127.0.0.1", "127.0.0.1"));
	CHECK(!match("127.0.0.1", "127.0.0.2"));
	/* IPv6 */
	CHECK(match("::1", "::1"));
	CHECK(!match("::1", "::2"));
	CHECK(match("::/0", "2001:db8::1"));
	CHECK(match("fe80::/10", "febf:ffff::1"));
	CHECK(!match("fe80::/10", "fec0::1"));
	CHECK(match("2001:db8::1/128", "2001:db8::1"));
	CHECK(!match("2001:db8::1/128", "2001:db8::2"));
	/* families do not mix, except a v4-mapped peer against a v4 entry */
	CHECK(!match("::/0", "10.0.0.1"));
	CHECK(!match("0.0.0.0/0", "::1"));
	CHECK(match("10.0.0.0/8", "::ffff:10.1.2.3"));
	CHECK(!match("10.0.0.0/8", "::ffff:11.1.2.3"));
	CHECK(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	CHECK(!match("0.0.0.0/0", "::10.0.0.1")); /* v4-compatible is not v4-mapped */
	CHECK(match("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"));
}

static void access_clients_list(void)
{
	struct onfs_cidr *v = NULL;
	size_t n = 0;
	char bad[64];
	char big[4096];
	size_t len = 0;

	CHECK(onfs_access_parse_clients("10.0.0.0/8, ::1  192.168.0.0/16,,\t2001:db8::/32", &v, &n,
					bad, sizeof(bad)) == 0);
	CHECK(n == 4);
	CHECK(n == 4 && strcmp(v[1].text, "::1") == 0 && strcmp(v[3].text, "2001:db8::/32") == 0);
	free(v);
	v = NULL;
	CHECK(onfs_access_parse_clients("10.0.0.0/8 bogus ::1", &v, &n, bad, sizeof(bad)) == -EINVAL);
	CHECK(strcmp(bad, "bogus") == 0);
	CHECK(v == NULL);
	CHECK(onfs_access_parse_clients(" , ", &v, &n, bad, sizeof(bad)) == -EINVAL);
	CHECK(bad[0] == '\0');
	for (int i = 0; i < ONFS_ACCESS_MAX_CLIENTS + 1; i++)
		len += (size_t)snprintf(big + len, sizeof(big) - len, "10.0.%d.0/24 ", i);
	CHECK(onfs_access_parse_clients(big, &v, &n, bad, sizeof(bad)) == -E2BIG);
	CHECK(onfs_access_default_clients(&v, &n) == 0);
	CHECK(n == 2);
	{
		struct onfs_access_rules r = { .clients = v, .nclients = n };
		struct sockaddr_storage lo4 = sa_of("127.0.0.1", 5000);
		struct sockaddr_storage lo4b = sa_of("127.1.2.3", 5000);
		struct sockaddr_storage lo6 = sa_of("::1", 5000);
		struct sockaddr_storage other = sa_of("10.0.0.1", 5000);
		struct sockaddr_storage other6 = sa_of("2001:db8::1", 5000);

		CHECK(onfs_access_client_ok(&r, (struct sockaddr *)&lo4));
		CHECK(onfs_access_client_ok(&r, (struct sockaddr *)&lo4b));
		CHECK(onfs_access_client_ok(&r, (struct sockaddr *)&lo6));
		CHECK(!onfs_access_client_ok(&r, (struct sockaddr *)&other));
		CHECK(!onfs_access_client_ok(&r, (struct sockaddr *)&other6));
		r.nclients = 0; /* -o: every client */
		CHECK(onfs_access_client_ok(&r, (struct sockaddr *)&other));
	}
	free(v);
}

static void access_secure_port(void)
{
	struct onfs_access_rules r = { .secure = false };
	struct sockaddr_storage p1023 = sa_of("127.0.0.1", 1023);
	struct sockaddr_storage p1024 = sa_of("127.0.0.1", 1024);
	struct sockaddr_storage p6_700 = sa_of("::1", 700);
	struct sockaddr_storage p6_40000 = sa_of("::1", 40000);

	CHECK(onfs_access_port_ok(&r, (struct sockaddr *)&p1024));
	r.secure = true;
	CHECK(onfs_access_port_ok(&r, (struct sockaddr *)&p1023));
	CHECK(!onfs_access_port_ok(&r, (struct sockaddr *)&p1024));
	CHECK(onfs_access_port_ok(&r, (struct sockaddr *)&p6_700));
	CHECK(!onfs_access_port_ok(&r, (struct sockaddr *)&p6_40000));
}

static struct onfs_cred mkcred(uint32_t uid, uint32_t gid, uint32_t ngroups, const uint32_t *g)
{
	struct onfs_cred c = { .flavor = ONFS_AUTH_SYS, .uid = uid, .gid = gid,
			       .ngroups = ngroups };

	if (ngroups)
		memcpy(c.groups, g, ngroups * sizeof(*g));
	return c;
}

static void access_squash(void)
{
	struct onfs_access_rules r = { .anonuid = 65534, .anongid = 65533 };
	const uint32_t g[] = { 0, 10, 0, 20 };
	struct onfs_cred in, out;

	/* root: uid 0, gid 0 and every group 0 map, each on its own (knfsd) */
	r.squash = ONFS_SQUASH_ROOT;
	in = mkcred(0, 0, 4, g);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 65534 && out.gid == 65533 && out.ngroups == 4);
	CHECK(out.groups[0] == 65533 && out.groups[1] == 10 && out.groups[2] == 65533 &&
	      out.groups[3] == 20);
	in = mkcred(1000, 0, 2, g);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 1000 && out.gid == 65533 && out.groups[0] == 65533);
	in = mkcred(1000, 1000, 2, g + 1);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 1000 && out.gid == 1000 && out.ngroups == 2 && out.groups[0] == 10 &&
	      out.groups[1] == 65533);
	in = mkcred(0, 5, 0, NULL);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 65534 && out.gid == 5);

	/* all: everyone is anon, no supplementary groups */
	r.squash = ONFS_SQUASH_ALL;
	in = mkcred(1000, 1000, 2, g + 1);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 65534 && out.gid == 65533 && out.ngroups == 0);
	in = mkcred(0, 0, 4, g);
	onfs_access_squash(&r, &in, &out);
	CHECK(out.uid == 65534 && out.gid == 65533 && out.ngroups == 0);

	/* none: as sent */
	r.squash = ONFS_SQUASH_NONE;
	in = mkcred(0, 0, 4, g);
	onfs_access_squash(&r, &in, &out);
	CHECK(memcmp(&in, &out, sizeof(in)) == 0);
}

static void access_table(void)
{
	/* any distinct addresses serve as export identities: the table never dereferences them */
	static char ex_a, ex_b;
	const struct onfs_export *a = (const struct onfs_export *)&ex_a;
	const struct onfs_export *b = (const struct onfs_export *)&ex_b;
	struct onfs_export_conf ec = { 0 };
	struct onfs_cidr c;
	const struct onfs_access_rules *r, *r_old;

	/* unpublished: the -o defaults */
	r = onfs_access_rules_of(a);
	CHECK(r->nclients == 0 && r->squash == ONFS_SQUASH_NONE && !r->readonly && !r->secure);

	CHECK(onfs_cidr_parse("10.0.0.0/8", &c) == 0);
	ec.clients = &c;
	ec.nclients = 1;
	ec.readonly = true;
	ec.squash = ONFS_SQUASH_ALL;
	ec.anonuid = 7;
	ec.anongid = 8;
	ec.secure = true;
	CHECK(onfs_access_publish(a, onfs_access_rules_new(&ec)) == 0);
	r_old = onfs_access_rules_of(a);
	CHECK(r_old->nclients == 1 && r_old->clients != &c && r_old->readonly &&
	      r_old->squash == ONFS_SQUASH_ALL && r_old->anonuid == 7 && r_old->anongid == 8 &&
	      r_old->secure);
	/* b is untouched */
	CHECK(onfs_access_rules_of(b)->nclients == 0);

	/* replace: the old object stays readable (retired, not freed) */
	ec.readonly = false;
	ec.squash = ONFS_SQUASH_ROOT;
	CHECK(onfs_access_publish(a, onfs_access_rules_new(&ec)) == 0);
	r = onfs_access_rules_of(a);
	CHECK(r != r_old && !r->readonly && r->squash == ONFS_SQUASH_ROOT);
	CHECK(r_old->readonly && r_old->nclients == 1 && strcmp(r_old->clients[0].text,
								   "10.0.0.0/8") == 0);

	/* at most ONFS_MAX_EXPORTS instances */
	{
		static char more[ONFS_MAX_EXPORTS + 1];
		int last = 0;

		for (int i = 0; i < ONFS_MAX_EXPORTS + 1; i++)
			last = onfs_access_publish((const struct onfs_export *)&more[i],
						   onfs_access_rules_new(&ec));
		CHECK(last == -ENOSPC);
	}
	onfs_access_cleanup();
	CHECK(onfs_access_rules_of(a)->nclients == 0);
}

int main(void)
{
	access_cidr_parse();
	access_cidr_match();
	access_clients_list();
	access_secure_port();
	access_squash();
	access_table();
	return unit_finish("access");
}
