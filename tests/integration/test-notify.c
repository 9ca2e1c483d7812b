/*
 * test-notify.c - Type=notify: the server talks to a real NOTIFY_SOCKET (a
 * unix datagram socket this test binds, as systemd does): READY=1 with a
 * STATUS= line once it serves, STATUS= updated when a client connects,
 * RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.
 * Skips (with the reason) when the build has no libsystemd.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fixture.h"
#include "rawrpc.h"
#include "testlib.h"

struct note_sock {
	int fd;
	char path[PATH_MAX + 16];
};

static void note_sock_open(struct note_sock *n, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int one = 1;

	snprintf(n->path, sizeof(n->path), "%s/notify", dir);
	ASSERT(strlen(n->path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, n->path);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT(n->fd >= 0);
	ASSERTF(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", n->path,
		strerror(errno));
	/* sd_notify sends credentials; accept them as systemd does */
	setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	ASSERT(setenv("NOTIFY_SOCKET", n->path, 1) == 0);
}

/*
 * Read datagrams until one contains want (all of the message's lines are
 * appended to seen). Bounded: fails after timeout_s.
 */
static void wait_note(struct note_sock *n, const char *want, char *seen, size_t cap,
		      int timeout_s)
{
	double deadline = tl_now() + timeout_s;

	for (;;) {
		struct pollfd p = { .fd = n->fd, .events = POLLIN };
		char buf[1024];
		ssize_t r;
		int left = (int)((deadline - tl_now()) * 1000);

		ASSERTF(left > 0, "no notification with '%s' within %d s; got: %s", want,
			timeout_s, seen);
		if (poll(&p, 1, left) <= 0)
			continue;
		r = recv(n->fd, buf, sizeof(buf) - 1, 0);
		ASSERT(r >= 0);
		buf[r] = '\0';
		if (strlen(seen) + (size_t)r + 3 < cap) {
			strcat(seen, buf);
			strcat(seen, " | ");
		}
		if (strstr(buf, want))
			return;
	}
}

TEST_IMPL(notify_ready_reload_stop)
{
	struct tl_tree t;
	struct tl_server s;
	struct note_sock n;
	char conf[PATH_MAX + 64], text[8 * PATH_MAX], seen[8192] = "";
	const char *extra[] = { "-c", conf, NULL };
	int fd;

	if (!strcmp(getenv("ONFS_HAVE_SYSTEMD") ? getenv("ONFS_HAVE_SYSTEMD") : "1", "0"))
		RETURN_SKIP("built without libsystemd (-Dsystemd): sd_notify is a no-op");
	tl_fixture_standard(&t);
	note_sock_open(&n, t.root);
	snprintf(conf, sizeof(conf), "%s/ovlnfsd.conf", t.root);
	snprintf(text, sizeof(text),
		 "[export one]\npath = /\nlowerdir = %s:%s\nupperdir = %s\nworkdir = %s\n",
		 t.lower[0], t.lower[1], t.upper, t.work);
	tl_write("/", conf + 1, text, 0644);

	tl_server_start(&s, t.root, t.state, NULL, NULL, extra);
	wait_note(&n, "READY=1", seen, sizeof(seen), 60);
	ASSERTF(strstr(seen, "STATUS=Serving 1 export(s)") &&
		strstr(seen, "0 client connection(s)"), "READY=1 without the status: %s", seen);

	/* a client connects: the status follows within the refresh period */
	fd = tl_tcp_connect(s.port);
	ASSERT(fd >= 0);
	wait_note(&n, "1 client connection(s)", seen, sizeof(seen), 30);

	/* SIGHUP: RELOADING=1, then READY=1 once the file is re-read */
	seen[0] = '\0';
	ASSERT(kill(s.pid, SIGHUP) == 0);
	wait_note(&n, "RELOADING=1", seen, sizeof(seen), 30);
	ASSERTF(strstr(seen, "MONOTONIC_USEC="), "RELOADING=1 without MONOTONIC_USEC: %s", seen);
	wait_note(&n, "READY=1", seen, sizeof(seen), 30);
	close(fd);

	/* SIGTERM: STOPPING=1 (the datagram waits in the socket after the exit) */
	seen[0] = '\0';
	tl_server_stop(&s);
	wait_note(&n, "STOPPING=1", seen, sizeof(seen), 5);

	close(n.fd);
	unlink(n.path);
	unsetenv("NOTIFY_SOCKET");
	tl_tree_free(&t);
	return 0;
}

static const struct tl_case cases[] = {
	TEST_ENTRY_TIMEOUT(notify_ready_reload_stop, 180),
};

int main(int argc, char **argv)
{
	return tl_run(argc, argv, cases, TL_ARRAY_SIZE(cases));
}
