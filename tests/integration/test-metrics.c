/*
 * test-metrics.c - `--metrics ADDR:PORT`: the server's Prometheus endpoint
 * scraped over real HTTP after real NFS traffic: requests by program,
 * procedure and status, latency histograms, bytes read and written,
 * copy-ups (count, bytes), connections, per-export read-only state and
 * upper size; NLM calls by procedure and lock status (libnfs's NLM calls);
 * 404 for other paths; `promtool check metrics` on the text when promtool
 * is installed (else a printed reason).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nfsc/libnfs-raw-nlm.h>

#include "nfsclient.h"
#include "testlib.h"

/* The port from the server's "metrics: ... http://127.0.0.1:PORT/metrics" line. */
static int metrics_port(const struct tl_server *s)
{
	double deadline = tl_now() + 30;

	for (;;) {
		char *txt = NULL, *p;
		int port = 0;

		if (tl_read_file(s->log, &txt) > 0 && (p = strstr(txt, "http://127.0.0.1:")))
			port = atoi(p + strlen("http://127.0.0.1:"));
		free(txt);
		if (port > 0)
			return port;
		ASSERTF(tl_now() < deadline, "no metrics address in the server log");
		usleep(20000);
	}
}

/* GET path; returns the whole response (headers and body), malloc'd. */
static char *http_get(int port, const char *path)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[256];
	size_t len = 0, cap = 65536;
	char *out = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	double deadline = tl_now() + 20;

	ASSERT(out && fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	ASSERTF(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		strerror(errno));
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	ASSERT(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		ASSERTF(tl_now() < deadline, "metrics response not complete within 20 s");
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (len + 1 >= cap) {
			cap *= 2;
			out = realloc(out, cap);
			ASSERT(out);
		}
		n = read(fd, out + len, cap - len - 1);
		ASSERT(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(fd);
	return out;
}

/* The value of the series that starts with exactly series + " ", or -1. */
static double value_of(const char *text, const char *series)
{
	size_t sl = strlen(series);

	for (const char *p = text; (p = strstr(p, series)) != NULL; p += sl) {
		if ((p == text || p[-1] == '\n') && p[sl] == ' ')
			return strtod(p + sl + 1, NULL);
	}
	return -1;
}

#define FILE_SIZE 100000

/* --- NLM calls through libnfs: a lock, a conflicting one, the unlock --- */

struct nlm_pend {
	bool done;
	int status;
	uint32_t stat;
};

static void nlm_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct nlm_pend *p = priv;

	(void)rpc;
	p->done = true;
	p->status = status;
	/* NLM4_LOCKres and NLM4_UNLOCKres: the cookie, then the status */
	if (status == RPC_STATUS_SUCCESS && data)
		p->stat = ((NLM4_LOCKres *)data)->status;
}

static void nlm_wait(struct rpc_context *rpc, struct nlm_pend *p, int queued)
{
	double deadline = tl_now() + 10;

	ASSERTF(queued == 0, "libnfs could not queue the call: %s", rpc_get_error(rpc));
	while (!p->done) {
		struct pollfd pfd = { rpc_get_fd(rpc), (short)rpc_which_events(rpc), 0 };
		int r = poll(&pfd, 1, 100);

		ASSERT(rpc_service(rpc, r > 0 ? pfd.revents : 0) >= 0 || p->done);
		ASSERTF(tl_now() < deadline, "libnfs NLM call: no answer");
	}
	ASSERTF(p->status == RPC_STATUS_SUCCESS, "libnfs NLM call failed: %s", rpc_get_error(rpc));
}

static void nlm_destroy(void *rpc)
{
	rpc_destroy_context(rpc);
}

/* svid 1 locks [0, 100), svid 2 is refused [50, 51), svid 1 unlocks. The
 * connection stays open (a second one for the scrape to count); the
 * caller destroys the context. */
static struct rpc_context *nlm_traffic(int port, const struct tl_fh *fh, int *tok)
{
	static char caller[] = "metrics-client", oh[] = "oh";
	struct rpc_context *rpc = rpc_init_context();
	struct nlm_pend p = { 0 };
	NLM4_LOCKargs la;
	NLM4_UNLOCKargs ua;

	ASSERT(rpc != NULL);
	*tok = tl_cleanup_push(nlm_destroy, rpc);
	nlm_wait(rpc, &p, rpc_connect_port_async(rpc, "127.0.0.1", port, NLM_PROGRAM, NLM_V4,
						  nlm_cb, &p));
	memset(&la, 0, sizeof(la));
	la.exclusive = 1;
	la.lock.caller_name = caller;
	la.lock.fh.data.data_len = fh->len;
	la.lock.fh.data.data_val = (char *)fh->data;
	la.lock.oh = oh;
	la.lock.svid = 1;
	la.lock.l_len = 100;
	memset(&p, 0, sizeof(p));
	nlm_wait(rpc, &p, rpc_nlm4_lock_async(rpc, nlm_cb, &la, &p));
	ASSERT_EQ(p.stat, NLM4_GRANTED);
	la.lock.svid = 2;
	la.lock.l_offset = 50;
	la.lock.l_len = 1;
	memset(&p, 0, sizeof(p));
	nlm_wait(rpc, &p, rpc_nlm4_lock_async(rpc, nlm_cb, &la, &p));
	ASSERT_EQ(p.stat, NLM4_DENIED);
	memset(&ua, 0, sizeof(ua));
	ua.lock = la.lock;
	ua.lock.svid = 1;
	ua.lock.l_offset = 0;
	ua.lock.l_len = 0;
	memset(&p, 0, sizeof(p));
	nlm_wait(rpc, &p, rpc_nlm4_unlock_async(rpc, nlm_cb, &ua, &p));
	ASSERT_EQ(p.stat, NLM4_GRANTED);
	return rpc;
}

TEST_IMPL(metrics_scrape)
{
	struct tl_tree t;
	struct tl_server s;
	struct tl_client c;
	struct tl_fh root, fh;
	char opts[8192];
	const char *extra[] = { "--metrics", "127.0.0.1:0", NULL };
	char *data = malloc(FILE_SIZE), *resp, *body;
	uint8_t buf[4096];
	uint32_t got = 0;
	bool eof = false;
	struct rpc_context *nlm_rpc;
	int port, nlm_tok;

	ASSERT(data);
	memset(data, 'a', FILE_SIZE);
	tl_tree_new(&t, 1);
	tl_write_buf(t.lower[0], "big", data, FILE_SIZE, 0644);
	tl_write(t.lower[0], "small", "0123456789", 0644);
	tl_tree_opts(&t, true, opts, sizeof(opts));
	tl_server_start(&s, t.root, t.state, opts, NULL, extra);
	port = metrics_port(&s);

	tl_client_connect(&c, s.port);
	ASSERT_NFS(tl_mnt(&c, "/", &root, NULL, NULL, 0), MNT3_OK);
	for (int i = 0; i < 3; i++)
		ASSERT_NFS(tl_nfs_getattr(&c, &root, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "absent", NULL, NULL), NFS3ERR_NOENT);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "small", &fh, NULL), NFS3_OK);
	ASSERT_NFS(tl_nfs_read(&c, &fh, 0, sizeof(buf), buf, &got, &eof), NFS3_OK);
	ASSERT_EQ(got, 10);
	ASSERT_NFS(tl_nfs_lookup(&c, &root, "big", &fh, NULL), NFS3_OK);
	/* a write to a lower file: one copy-up of FILE_SIZE bytes, 5 bytes written */
	ASSERT_NFS(tl_nfs_write(&c, &fh, 10, "hello", 5), NFS3_OK);
	/* removing a lower name: a whiteout in its directory and one in the index */
	ASSERT_NFS(tl_nfs_remove(&c, &root, "small"), NFS3_OK);
	nlm_rpc = nlm_traffic(s.port, &fh, &nlm_tok);

	resp = http_get(port, "/metrics");
	ASSERTF(!strncmp(resp, "HTTP/1.0 200 OK\r\n", 17), "response: %.200s", resp);
	ASSERT(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
	body = strstr(resp, "\r\n\r\n");
	ASSERT(body);
	body += 4;
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nfs3\",procedure=\"GETATTR\","
				 "status=\"NFS3_OK\"}"), 3);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nfs3\",procedure=\"LOOKUP\","
				 "status=\"NFS3ERR_NOENT\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nfs3\",procedure=\"LOOKUP\","
				 "status=\"NFS3_OK\"}"), 2);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"mount3\",procedure=\"MNT\","
				 "status=\"MNT3_OK\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_request_duration_seconds_count{program=\"nfs3\","
				 "procedure=\"GETATTR\"}"), 3);
	ASSERT_EQ(value_of(body, "ovlnfsd_request_duration_seconds_bucket{program=\"nfs3\","
				 "procedure=\"GETATTR\",le=\"+Inf\"}"), 3);
	ASSERT_EQ(value_of(body, "ovlnfsd_read_bytes_total"), 10);
	ASSERT_EQ(value_of(body, "ovlnfsd_written_bytes_total"), 5);
	ASSERT_EQ(value_of(body, "ovlnfsd_copyups_total"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_whiteouts_total"), 2);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nfs3\",procedure=\"REMOVE\","
				 "status=\"NFS3_OK\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_copyup_bytes_total"), FILE_SIZE);
	ASSERT(value_of(body, "ovlnfsd_copyup_seconds_total") >= 0);
	ASSERT_EQ(value_of(body, "ovlnfsd_connections_open"), 2); /* NFS and NLM */
	ASSERT(value_of(body, "ovlnfsd_connections_accepted_total") >= 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_connections_refused_total"), 0);
	ASSERT_EQ(value_of(body, "ovlnfsd_drc_hits_total"), 0);
	ASSERT_EQ(value_of(body, "ovlnfsd_export_read_only{export=\"default\"}"), 0);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nlm\",procedure=\"LOCK\","
				 "status=\"NLM4_GRANTED\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nlm\",procedure=\"LOCK\","
				 "status=\"NLM4_DENIED\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_requests_total{program=\"nlm\",procedure=\"UNLOCK\","
				 "status=\"NLM4_GRANTED\"}"), 1);
	ASSERT_EQ(value_of(body, "ovlnfsd_request_duration_seconds_count{program=\"nlm\","
				 "procedure=\"LOCK\"}"), 2);

	/* promtool's own parser and lint rules, when installed */
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		char path[PATH_MAX + 32], cmd[2 * PATH_MAX + 256];
		FILE *f;
		int rc;

		snprintf(path, sizeof(path), "%s/metrics.txt", t.root);
		f = fopen(path, "w");
		ASSERT(f && fputs(body, f) >= 0 && fclose(f) == 0);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' >'%s.out' 2>&1", path,
			 path);
		rc = system(cmd);
		if (rc != 0) {
			snprintf(cmd, sizeof(cmd), "cat '%s.out'", path);
			ASSERT(system(cmd) >= 0);
		}
		ASSERTF(rc == 0, "promtool check metrics failed (status %d)", rc);
		printf("promtool check metrics: clean\n");
	} else {
		printf("note: promtool is not installed (Debian package prometheus): "
		       "exposition not checked by promtool\n");
	}
	free(resp);

	/* the upper size: measured on a worker at start and refreshed at most every 30 s;
	 * the copy-up happened after the first walk, so only check that it is there */
	resp = http_get(port, "/metrics");
	ASSERTF(value_of(strstr(resp, "\r\n\r\n") + 4,
			 "ovlnfsd_export_upper_bytes{export=\"default\"}") >= 0,
		"no upper size: %s", resp);
	free(resp);

	tl_cleanup_cancel(nlm_tok);
	rpc_destroy_context(nlm_rpc);
	resp = http_get(port, "/nothing");
	ASSERTF(!strncmp(resp, "HTTP/1.0 404", 12), "response: %.200s", resp);
	free(resp);

	tl_client_close(&c);
	tl_server_stop(&s);
	tl_tree_free(&t);
	free(data);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(metrics_scrape, 120),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
