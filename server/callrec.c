/*
 * callrec.c - the call recorder: with OVLNFSD_RECORD_CALLS=FILE in the
 * environment at startup, every NFS call a worker serves adds one line
 *   SECONDS CLIENT EXPORT PROC PATH STATUS [OFFSET COUNT]
 * to FILE: seconds since the recording started (monotonic), the client's
 * address, the export's name, the procedure, the merged path of the
 * object ("/" is the export root; LOOKUP: the path looked up, found or
 * not; "-" for a handle that did not resolve), the nfsstat3 answered, and
 * for READ the offset and count asked for (READDIR, READDIRPLUS:
 * the cookie and the count). Bytes of a path outside
 * printable ASCII, space and '%' are written as %XX, so a line always
 * splits on blanks. tests/bench/record-trace.sh turns such a record into
 * a boot trace.
 *
 * Owns: the FILE and its buffer, under rec_lock. Threads: open and close
 * on the main thread (before serving, at exit); onfs_callrec_put on any
 * worker. The loop thread never writes here: with recording on, GETATTR
 * is not answered from the cache on the loop (nfs3.c) but goes to a
 * worker like every other call.
 *
 * Why a file of paths and not a packet capture: handles are opaque on the
 * wire, and only the server knows which merged path a handle names.
 * Cost when off: one test of a bool per call. The file is created 0600
 * with O_NOFOLLOW: it names every path clients touched, which only the
 * server's own user may read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ovlnfsd/callrec.h"
#include "ovlnfsd/common.h"
#include "ovlnfsd/overlay.h"
#include "ovlnfsd/server.h"

/* A large buffer: a boot records tens of thousands of lines in seconds. */
#define CALLREC_BUF (1024u * 1024u)

bool onfs_callrec_on;

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *rec_file;  /* under rec_lock */
static char *rec_buf;   /* the FILE's buffer, freed after fclose */
static struct timespec rec_t0;

int onfs_callrec_open(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s=%s: cannot create: %s", ONFS_CALLREC_ENV, path,
			 strerror(e));
		return -e;
	}
	/* An existing file keeps its mode on O_CREAT: make it private too. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fchmod(fd, 0600) < 0) {
		e = errno ? errno : EINVAL;
		snprintf(err, errlen, "%s=%s: not a regular file this user can make private",
			 ONFS_CALLREC_ENV, path);
		goto out_close;
	}
	rec_buf = malloc(CALLREC_BUF);
	rec_file = rec_buf ? fdopen(fd, "w") : NULL;
	if (!rec_file) {
		e = ENOMEM;
		snprintf(err, errlen, "%s=%s: out of memory", ONFS_CALLREC_ENV, path);
		free(rec_buf);
		rec_buf = NULL;
		goto out_close;
	}
	setvbuf(rec_file, rec_buf, _IOFBF, CALLREC_BUF);
	clock_gettime(CLOCK_MONOTONIC, &rec_t0);
	fprintf(rec_file, "# ovlnfsd call record: SECONDS CLIENT EXPORT PROC PATH STATUS [OFFSET COUNT]\n");
	onfs_callrec_on = true;
	return 0;
out_close:
	close(fd);
	return -e;
}

void onfs_callrec_close(void)
{
	pthread_mutex_lock(&rec_lock);
	if (rec_file) {
		if (fclose(rec_file) != 0)
			onfs_warn("%s: writing the call record failed: %s", ONFS_CALLREC_ENV,
				  strerror(errno));
		rec_file = NULL;
	}
	free(rec_buf);
	rec_buf = NULL;
	pthread_mutex_unlock(&rec_lock);
}

/* Append s to out[*len..cap), escaping what would break a blank-split line. */
static void put_escaped(char *out, size_t cap, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s && *len + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= ' ' || ch >= 0x7f || ch == '%') {
			out[(*len)++] = '%';
			out[(*len)++] = hex[ch >> 4];
			out[(*len)++] = hex[ch & 15];
		} else {
			out[(*len)++] = (char)ch;
		}
	}
}

static void peer_str(const struct onfs_call *c, char *out, size_t cap)
{
	const struct sockaddr_storage *ss = &c->peer;

	snprintf(out, cap, "-");
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)cap);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
			  (socklen_t)cap);
}

void onfs_callrec_put(const struct onfs_call *c, const struct onfs_export *ex,
		      const struct onfs_node *n, const char *name, unsigned status,
		      bool has_range, uint64_t offset, uint32_t count)
{
	char line[2 * 4096 + 256], peer[64];
	struct timespec now;
	size_t len = 0;
	const char *p;
	int k;

	clock_gettime(CLOCK_MONOTONIC, &now);
	peer_str(c, peer, sizeof(peer));
	k = snprintf(line, sizeof(line), "%.6f %s ",
		     (double)(now.tv_sec - rec_t0.tv_sec) + (now.tv_nsec - rec_t0.tv_nsec) / 1e9,
		     peer);
	if (k < 0)
		return;
	len = (size_t)k;
	put_escaped(line, sizeof(line), &len, ex ? onfs_export_name(ex) : "-");
	k = snprintf(line + len, sizeof(line) - len, " %s ", c->p ? c->p->name : "?");
	if (k < 0 || (size_t)k >= sizeof(line) - len)
		return;
	len += (size_t)k;
	if (!n) {
		line[len++] = '-';
	} else {
		/* "" is the root; other paths are relative to it ("usr/lib") */
		p = onfs_node_path(n);
		line[len++] = '/';
		put_escaped(line, sizeof(line), &len, p);
		if (name) {
			if (*p)
				line[len++] = '/';
			put_escaped(line, sizeof(line), &len, name);
		}
	}
	if (has_range)
		k = snprintf(line + len, sizeof(line) - len, " %u %" PRIu64 " %" PRIu32 "\n",
			     status, offset, count);
	else
		k = snprintf(line + len, sizeof(line) - len, " %u\n", status);
	if (k < 0 || (size_t)k >= sizeof(line) - len)
		return;
	len += (size_t)k;
	pthread_mutex_lock(&rec_lock);
	if (rec_file)
		fwrite(line, 1, len, rec_file);
	pthread_mutex_unlock(&rec_lock);
}
