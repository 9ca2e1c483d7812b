/*
 * test-drc.c - the duplicate request cache on its own (server/drc.c):
 * which procedures are cached, what a key is made of (address, port for
 * UDP only, transport, xid, program, version, procedure, argument bytes),
 * replay of a finished call, parking retransmits behind a running
 * original, forgetting a call that produced no reply, age-out, the entry
 * and byte caps, LRU order; and onfs_call_secure_port (server/rpc.c).
 *
 * Single-threaded test process; touches no files and no network. Time is
 * passed in by hand.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/drc.h"
#include "ovlnfsd/rpc.h"
#include "unit.h"

#define NFS 100003
#define REMOVE 12

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(port);
	inet_pton(AF_INET, ip, &in.sin_addr);
	return in;
}

/* A key for a REMOVE of name from 10.0.0.1:port. */
static void key(const struct onfs_drc *drc, struct onfs_drc_key *k, bool tcp, uint16_t port,
		uint32_t xid, const char *name)
{
	struct sockaddr_in in = v4("10.0.0.1", port);

	onfs_drc_key_init(drc, k, (struct sockaddr *)&in, tcp, xid, NFS, 3, REMOVE, name,
			  strlen(name));
}

static enum onfs_drc_verdict look(struct onfs_drc *drc, const struct onfs_drc_key *k,
				  uint64_t now, struct onfs_drc_waiter *w,
				  struct onfs_drc_entry **e, const uint8_t **r, size_t *rl)
{
	struct onfs_drc_waiter dummy;

	return onfs_drc_lookup(drc, k, now, w ? w : &dummy, e, r, rl);
}

/* Run key k through the cache as a new call answered with reply "tag". */
static void run_call(struct onfs_drc *drc, const struct onfs_drc_key *k, uint64_t now,
		     const char *tag)
{
	struct onfs_drc_entry *e;
	const uint8_t *r;
	size_t rl;

	CHECK_EQ(look(drc, k, now, NULL, &e, &r, &rl), ONFS_DRC_MISS);
	CHECK(e != NULL);
	if (e)
		CHECK(onfs_drc_complete(drc, e, (const uint8_t *)tag, strlen(tag), now) == NULL);
}

/* k must replay exactly tag. */
static void expect_replay(struct onfs_drc *drc, const struct onfs_drc_key *k, uint64_t now,
			  const char *tag)
{
	struct onfs_drc_entry *e;
	const uint8_t *r;
	size_t rl;

	CHECK_EQ(look(drc, k, now, NULL, &e, &r, &rl), ONFS_DRC_REPLAY);
	CHECK(e == NULL);
	CHECK_EQ(rl, strlen(tag));
	CHECK(r && memcmp(r, tag, strlen(tag)) == 0);
}

/* k must be a new call; its entry is completed at once with "x". */
static void expect_miss(struct onfs_drc *drc, const struct onfs_drc_key *k, uint64_t now)
{
	run_call(drc, k, now, "x");
}

static struct onfs_drc *drc_make(size_t entries, size_t bytes, uint64_t age)
{
	struct onfs_drc_limits lim = { entries, bytes, age };
	struct onfs_drc *drc = NULL;

	if (onfs_drc_new(&lim, &drc) != 0 || !drc) {
		fprintf(stderr, "FAIL: onfs_drc_new\n");
		exit(1);
	}
	return drc;
}

static void drc_cacheable_procs(void)
{
	static const uint32_t yes[] = { 2, 8, 9, 10, 11, 12, 13, 14, 15 };
	static const uint32_t no[] = { 0, 1, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 40 };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(onfs_drc_cacheable(NFS, 3, yes[i]));
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!onfs_drc_cacheable(NFS, 3, no[i]));
	CHECK(!onfs_drc_cacheable(NFS, 2, REMOVE));
	CHECK(!onfs_drc_cacheable(100005, 3, REMOVE));
	CHECK(!onfs_drc_cacheable(100000, 2, 12));
}

static void drc_replays_original_reply(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 0);
	struct onfs_drc_key k;
	struct onfs_drc_stats st;

	key(drc, &k, true, 700, 0x1234, "victim");
	run_call(drc, &k, 1000, "reply-1");
	expect_replay(drc, &k, 1001, "reply-1");
	expect_replay(drc, &k, 5000, "reply-1");
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.entries, 1);
	CHECK_EQ(st.in_progress, 0);
	CHECK_EQ(st.hits, 2);
	CHECK_EQ(st.misses, 1);
	onfs_drc_free(drc);
}

static void drc_key_fields(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 0);
	struct onfs_drc_key k, o;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	key(drc, &k, true, 700, 1, "a");
	run_call(drc, &k, 0, "orig");

	/* TCP: another source port (a new connection) is the same client */
	key(drc, &o, true, 701, 1, "a");
	expect_replay(drc, &o, 1, "orig");
	/* same xid, other arguments: a new call */
	key(drc, &o, true, 700, 1, "b");
	expect_miss(drc, &o, 2);
	/* same bytes and length matter: "a" vs "a\0" */
	in = v4("10.0.0.1", 700);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in, true, 1, NFS, 3, REMOVE, "a\0", 2);
	expect_miss(drc, &o, 2);
	/* other xid */
	key(drc, &o, true, 700, 2, "a");
	expect_miss(drc, &o, 3);
	/* other procedure, version, program */
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in, true, 1, NFS, 3, 13, "a", 1);
	expect_miss(drc, &o, 4);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in, true, 1, NFS, 2, REMOVE, "a", 1);
	expect_miss(drc, &o, 4);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in, true, 1, 100005, 3, REMOVE, "a", 1);
	expect_miss(drc, &o, 4);
	/* another client: never its reply */
	in = v4("10.0.0.2", 700);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in, true, 1, NFS, 3, REMOVE, "a", 1);
	expect_miss(drc, &o, 5);
	/* UDP is another transport */
	key(drc, &o, false, 700, 1, "a");
	expect_miss(drc, &o, 6);
	/* UDP: the source port is part of the client */
	expect_replay(drc, &o, 7, "x");
	key(drc, &o, false, 701, 1, "a");
	expect_miss(drc, &o, 8);
	/* an IPv4-mapped IPv6 address is the IPv4 client */
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(900);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in6, true, 1, NFS, 3, REMOVE, "a", 1);
	expect_replay(drc, &o, 9, "orig");
	/* a real IPv6 client is not */
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	onfs_drc_key_init(drc, &o, (struct sockaddr *)&in6, true, 1, NFS, 3, REMOVE, "a", 1);
	expect_miss(drc, &o, 10);
	/* the original is still there */
	expect_replay(drc, &k, 11, "orig");
	onfs_drc_free(drc);
}

static void drc_retransmits_wait_for_original(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 0);
	struct onfs_drc_key k, other;
	struct onfs_drc_entry *e, *e2, *ex;
	struct onfs_drc_waiter w1, w2, w3, *w;
	struct onfs_drc_stats st;
	const uint8_t *r;
	size_t rl;

	key(drc, &k, true, 700, 9, "f");
	CHECK_EQ(look(drc, &k, 0, NULL, &e, &r, &rl), ONFS_DRC_MISS);
	CHECK(e != NULL);
	/* two retransmits (say, on new connections) while it runs */
	CHECK_EQ(look(drc, &k, 1, &w1, &ex, &r, &rl), ONFS_DRC_WAIT);
	CHECK(ex == NULL);
	key(drc, &other, true, 800, 9, "f");
	CHECK_EQ(look(drc, &other, 2, &w2, &ex, &r, &rl), ONFS_DRC_WAIT);
	/* an unrelated call still runs */
	key(drc, &other, true, 700, 10, "g");
	CHECK_EQ(look(drc, &other, 2, &w3, &e2, &r, &rl), ONFS_DRC_MISS);
	CHECK(e2 != NULL && e2 != e);
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.in_progress, 2);
	CHECK_EQ(st.waits, 2);

	/* the original finishes: both waiters, oldest first */
	w = onfs_drc_complete(drc, e, (const uint8_t *)"done", 4, 3);
	CHECK(w == &w1);
	CHECK(w && w->next == &w2);
	CHECK(w && w->next && w->next->next == NULL);
	expect_replay(drc, &k, 4, "done");
	CHECK(onfs_drc_complete(drc, e2, (const uint8_t *)"g", 1, 5) == NULL);
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.in_progress, 0);
	CHECK_EQ(st.entries, 2);
	onfs_drc_free(drc);
}

static void drc_no_reply_forgets_call(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 0);
	struct onfs_drc_key k;
	struct onfs_drc_entry *e, *ex;
	struct onfs_drc_waiter w1, *w;
	struct onfs_drc_stats st;
	const uint8_t *r;
	size_t rl;

	key(drc, &k, false, 1000, 3, "d");
	CHECK_EQ(look(drc, &k, 0, NULL, &e, &r, &rl), ONFS_DRC_MISS);
	CHECK_EQ(look(drc, &k, 0, &w1, &ex, &r, &rl), ONFS_DRC_WAIT);
	/* dropped (no reply): the waiter comes back, the entry goes */
	w = onfs_drc_complete(drc, e, NULL, 0, 1);
	CHECK(w == &w1 && w->next == NULL);
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.entries, 0);
	CHECK_EQ(st.in_progress, 0);
	/* the next retransmit runs */
	expect_miss(drc, &k, 2);
	expect_replay(drc, &k, 3, "x");
	onfs_drc_free(drc);
}

static void drc_ages_out(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 1000);
	struct onfs_drc_key a, b;
	struct onfs_drc_stats st;

	key(drc, &a, true, 1, 1, "a");
	key(drc, &b, true, 1, 2, "b");
	run_call(drc, &a, 0, "A");
	run_call(drc, &b, 500, "B");
	/* a replay keeps an entry young */
	expect_replay(drc, &a, 999, "A");
	/* b finished at 500: gone at 1500 */
	expect_miss(drc, &b, 1500);
	expect_replay(drc, &a, 1998, "A");
	expect_replay(drc, &a, 2997, "A");
	/* nobody asked for 1000 ms: everything is gone */
	expect_miss(drc, &a, 5000);
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.entries, 1); /* the one just made */
	onfs_drc_free(drc);
}

static void drc_entry_cap_lru(void)
{
	struct onfs_drc *drc = drc_make(3, 0, 0);
	struct onfs_drc_key k[5];
	struct onfs_drc_stats st;
	char name[8];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		key(drc, &k[i], true, 1, (uint32_t)(100 + i), name);
	}
	run_call(drc, &k[0], 0, "0");
	run_call(drc, &k[1], 1, "1");
	run_call(drc, &k[2], 2, "2");
	/* k0 used last: k1 is the least recently used */
	expect_replay(drc, &k[0], 3, "0");
	run_call(drc, &k[3], 4, "3");
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.entries, 3);
	CHECK_EQ(st.evictions, 1);
	expect_replay(drc, &k[0], 5, "0");
	expect_replay(drc, &k[2], 6, "2");
	expect_replay(drc, &k[3], 7, "3");
	/* k1 is gone: a new call (which evicts k0, now the oldest) */
	expect_miss(drc, &k[1], 8);
	expect_replay(drc, &k[2], 9, "2");
	onfs_drc_free(drc);
}

static void drc_running_calls_never_evicted(void)
{
	struct onfs_drc *drc = drc_make(2, 0, 0);
	struct onfs_drc_key a, b, c;
	struct onfs_drc_entry *ea, *eb, *ec;
	struct onfs_drc_stats st;
	const uint8_t *r;
	size_t rl;

	key(drc, &a, true, 1, 1, "a");
	key(drc, &b, true, 1, 2, "b");
	key(drc, &c, true, 1, 3, "c");
	CHECK_EQ(look(drc, &a, 0, NULL, &ea, &r, &rl), ONFS_DRC_MISS);
	CHECK_EQ(look(drc, &b, 0, NULL, &eb, &r, &rl), ONFS_DRC_MISS);
	CHECK(ea && eb);
	/* full of running calls: c runs uncached */
	CHECK_EQ(look(drc, &c, 0, NULL, &ec, &r, &rl), ONFS_DRC_MISS);
	CHECK(ec == NULL);
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.uncached, 1);
	CHECK_EQ(st.in_progress, 2);
	/* even long after, a running call stays */
	CHECK_EQ(look(drc, &a, 10000000, NULL, &ec, &r, &rl), ONFS_DRC_WAIT);
	if (ea)
		CHECK(onfs_drc_complete(drc, ea, (const uint8_t *)"A", 1, 10000001) != NULL);
	if (eb)
		onfs_drc_complete(drc, eb, (const uint8_t *)"B", 1, 10000001);
	expect_replay(drc, &a, 10000002, "A");
	expect_replay(drc, &b, 10000002, "B");
	onfs_drc_free(drc);
}

static void drc_byte_cap(void)
{
	struct onfs_drc *drc = drc_make(0, 1000, 0);
	struct onfs_drc_key a, b, c, d;
	struct onfs_drc_stats st;
	char big[601], huge[1201], small[] = "small";

	memset(big, 'B', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memset(huge, 'H', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = 0;
	key(drc, &a, true, 1, 1, "a");
	key(drc, &b, true, 1, 2, "b");
	key(drc, &c, true, 1, 3, "c");
	key(drc, &d, true, 1, 4, "d");
	run_call(drc, &a, 0, small); /* inline: costs no bytes */
	run_call(drc, &b, 1, big);
	expect_replay(drc, &b, 2, big);
	onfs_drc_get_stats(drc, &st);
	CHECK(st.bytes >= 600);
	/* a second big reply pushes out older entries until it fits */
	run_call(drc, &c, 3, big);
	expect_replay(drc, &c, 4, big);
	expect_miss(drc, &b, 5);
	/* above the whole cap: not kept, the next retransmit runs again */
	run_call(drc, &d, 6, huge);
	expect_miss(drc, &d, 7);
	onfs_drc_free(drc);
}

static void drc_many_entries(void)
{
	struct onfs_drc *drc = drc_make(0, 0, 0);
	struct onfs_drc_key k;
	struct onfs_drc_stats st;
	char name[16], tag[16];
	uint32_t i;

	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		snprintf(tag, sizeof(tag), "r%u", i);
		key(drc, &k, true, 1, i, name);
		run_call(drc, &k, i, tag);
	}
	onfs_drc_get_stats(drc, &st);
	CHECK_EQ(st.entries, ONFS_DRC_MAX_ENTRIES);
	CHECK_EQ(st.evictions, 10000 - ONFS_DRC_MAX_ENTRIES);
	for (i = 10000 - ONFS_DRC_MAX_ENTRIES; i < 10000; i += 97) {
		snprintf(name, sizeof(name), "f%u", i);
		snprintf(tag, sizeof(tag), "r%u", i);
		key(drc, &k, true, 1, i, name);
		expect_replay(drc, &k, 10000, tag);
	}
	onfs_drc_free(drc);
}

static void call_secure_port(void)
{
	struct onfs_call c;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	memset(&c, 0, sizeof(c));
	CHECK(!onfs_call_secure_port(&c)); /* unknown address */
	CHECK_EQ(onfs_call_peer_port(&c), 0);
	in = v4("127.0.0.1", 800);
	memcpy(&c.peer, &in, sizeof(in));
	c.peer_len = sizeof(in);
	CHECK(onfs_call_secure_port(&c));
	CHECK_EQ(onfs_call_peer_port(&c), 800);
	in = v4("127.0.0.1", 1023);
	memcpy(&c.peer, &in, sizeof(in));
	CHECK(onfs_call_secure_port(&c));
	in = v4("127.0.0.1", 1024);
	memcpy(&c.peer, &in, sizeof(in));
	CHECK(!onfs_call_secure_port(&c));
	in = v4("127.0.0.1", 40000);
	memcpy(&c.peer, &in, sizeof(in));
	CHECK(!onfs_call_secure_port(&c));
	CHECK_EQ(onfs_call_peer_port(&c), 40000);
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(111);
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	memcpy(&c.peer, &in6, sizeof(in6));
	c.peer_len = sizeof(in6);
	CHECK(onfs_call_secure_port(&c));
	in6.sin6_port = htons(2049);
	memcpy(&c.peer, &in6, sizeof(in6));
	CHECK(!onfs_call_secure_port(&c));
}

#define RUN(f) (unit_case = #f, f())

int main(void)
{
	RUN(drc_cacheable_procs);
	RUN(drc_replays_original_reply);
	RUN(drc_key_fields);
	RUN(drc_retransmits_wait_for_original);
	RUN(drc_no_reply_forgets_call);
	RUN(drc_ages_out);
	RUN(drc_entry_cap_lru);
	RUN(drc_running_calls_never_evicted);
	RUN(drc_byte_cap);
	RUN(drc_many_entries);
	RUN(call_secure_port);
	return unit_finish("drc");
}
