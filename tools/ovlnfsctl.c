/*
 * ovlnfsctl.c - the operator's tool: talks to a running ovlnfsd over
 * STATE/ctl.sock (server/ctl.c, docs/operating.md). One request line, one
 * reply; "ok" on the first line then the body, or "error: REASON".
 *
 * Exit status: 0 on success, 1 with a one-line reason on stderr for any
 * failure (the server's refusal, no server, bad usage: 2).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_STATE_DIR "/var/lib/ovlnfsd"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ovlnfsctl [--state-dir DIR] [--json] COMMAND [ARG]\n"
		"  list                      exports and instances, their uppers and bases\n"
		"  diff EXPORT[/INSTANCE]    what the upper changes: A added, M modified,\n"
		"                            D deleted, R replaced or renamed directory\n"
		"  reset EXPORT[/INSTANCE]   throw the upper's changes away (O(1))\n"
		"  commit EXPORT[/INSTANCE] LAYER\n"
		"                            the upper becomes the read-only layer LAYER\n"
		"                            (under the server's layers directory), an\n"
		"                            empty upper continues on top of it\n"
		"  rebase EXPORT [--force]   the upper's entries that shadow a change of the\n"
		"                            waiting new base; --force moves to it\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = DEFAULT_STATE_DIR;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[4096], *buf = NULL, *body;
	size_t len = 0, cap = 0;
	bool json = false, force = false;
	const char *third = NULL; /* commit's LAYER, rebase's "force" */
	int o, fd, n;

	while ((o = getopt_long(argc, argv, "s:jfh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			state = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ovlnfsctl: error: no command (list, diff, reset, commit)\n");
		return 2;
	}
	if (strcmp(argv[optind], "list") == 0) {
		if (argc - optind != 1) {
			fprintf(stderr, "ovlnfsctl: error: list takes no argument\n");
			return 2;
		}
	} else if (strcmp(argv[optind], "diff") == 0 || strcmp(argv[optind], "reset") == 0) {
		if (argc - optind != 2 || strpbrk(argv[optind + 1], " \t\n") ||
		    !strcmp(argv[optind + 1], "json")) {
			fprintf(stderr, "ovlnfsctl: error: %s takes one EXPORT[/INSTANCE]\n",
				argv[optind]);
			return 2;
		}
	} else if (strcmp(argv[optind], "rebase") == 0) {
		if (argc - optind != 2 || strpbrk(argv[optind + 1], " \t\n") ||
		    !strcmp(argv[optind + 1], "json")) {
			fprintf(stderr, "ovlnfsctl: error: rebase takes one EXPORT [--force]\n");
			return 2;
		}
		if (force)
			third = "force";
	} else if (strcmp(argv[optind], "commit") == 0) {
		if (argc - optind != 3 || strpbrk(argv[optind + 1], " \t\n") ||
		    strpbrk(argv[optind + 2], " \t\n/") || !strcmp(argv[optind + 1], "json") ||
		    !strcmp(argv[optind + 2], "json")) {
			fprintf(stderr, "ovlnfsctl: error: commit takes EXPORT[/INSTANCE] LAYER "
				"(a name, no '/')\n");
			return 2;
		}
	} else {
		fprintf(stderr, "ovlnfsctl: error: unknown command '%s' (list, diff, reset, "
			"commit)\n", argv[optind]);
		return 2;
	}
	if (argc - optind > 2)
		third = argv[optind + 2];
	n = snprintf(req, sizeof(req), "%s%s%s%s%s%s\n", argv[optind], argc - optind > 1 ? " " : "",
		     argc - optind > 1 ? argv[optind + 1] : "", third ? " " : "",
		     third ? third : "", json ? " json" : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fprintf(stderr, "ovlnfsctl: error: argument too long\n");
		return 2;
	}
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ctl.sock", state) >=
	    sizeof(sa.sun_path)) {
		fprintf(stderr, "ovlnfsctl: error: '%s/ctl.sock': path too long\n", state);
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "ovlnfsctl: error: cannot connect to '%s': %s (is ovlnfsd running "
			"with this --state-dir?)\n", sa.sun_path, strerror(errno));
		return 1;
	}
	if (write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "ovlnfsctl: error: sending to '%s': %s\n", sa.sun_path,
			strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2 + 8192);
			if (!nb) {
				fprintf(stderr, "ovlnfsctl: error: out of memory\n");
				return 1;
			}
			buf = nb;
			cap = cap * 2 + 8192;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "ovlnfsctl: error: reading from '%s': %s\n", sa.sun_path,
				strerror(errno));
			return 1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!buf || len == 0) {
		fprintf(stderr, "ovlnfsctl: error: '%s' closed the connection without a reply\n",
			sa.sun_path);
		free(buf);
		return 1;
	}
	buf[len] = '\0';
	if (strncmp(buf, "ok\n", 3) != 0) {
		char *nl = strchr(buf, '\n');

		if (nl)
			*nl = '\0';
		fprintf(stderr, "ovlnfsctl: %s\n", buf);
		free(buf);
		return 1;
	}
	body = buf + 3;
	fputs(body, stdout);
	free(buf);
	return fflush(stdout) == 0 ? 0 : 1;
}
