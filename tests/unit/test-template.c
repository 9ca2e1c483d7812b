/*
 * test-template.c - per-client layer templates (server/template.c) and
 * their config rules (server/config.c): placeholders, values, expansion,
 * the template parent, the overlap check, {client} of IPv4/IPv6/mapped
 * addresses, and config files / -o lines that must load or fail with a
 * message naming the export, the key's line and the value.
 *
 * Single-threaded test process; no network. Config files go to a temp
 * directory under /tmp, removed at the end.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovlnfsd/config.h"
#include "ovlnfsd/template.h"
#include "conf.h"

static void template_kinds(void)
{
	char bad[64];

	CHECK_EQ(onfs_tmpl_kinds("/srv/up", bad, sizeof(bad)), 0);
	CHECK_EQ(onfs_tmpl_kinds("/srv/{client}/up", bad, sizeof(bad)), ONFS_TMPL_CLIENT);
	CHECK_EQ(onfs_tmpl_kinds("/srv/{host}", bad, sizeof(bad)), ONFS_TMPL_HOST);
	CHECK_EQ(onfs_tmpl_kinds("/srv/n-{name}/u", bad, sizeof(bad)), ONFS_TMPL_NAME);
	CHECK_EQ(onfs_tmpl_kinds("/srv/{client}/{host}", bad, sizeof(bad)),
		 ONFS_TMPL_CLIENT | ONFS_TMPL_HOST);
	CHECK_EQ(onfs_tmpl_kinds("/srv/{clients}/up", bad, sizeof(bad)), -1);
	CHECK_STR(bad, "{clients}");
	CHECK_EQ(onfs_tmpl_kinds("/srv/x}", bad, sizeof(bad)), -1);
	CHECK_EQ(onfs_tmpl_kinds("/srv/{", bad, sizeof(bad)), -1);
}

static void template_values(void)
{
	char v65[66];

	CHECK(onfs_tmpl_value_ok("node-1.lab_2", 12));
	CHECK(onfs_tmpl_value_ok("127.0.0.2", 9));
	CHECK(onfs_tmpl_value_ok("fe80--1", 7));
	CHECK(!onfs_tmpl_value_ok("", 0));
	CHECK(!onfs_tmpl_value_ok(".", 1));
	CHECK(!onfs_tmpl_value_ok("..", 2));
	CHECK(!onfs_tmpl_value_ok("a/b", 3));
	CHECK(!onfs_tmpl_value_ok("a b", 3));
	CHECK(!onfs_tmpl_value_ok("a\0b", 3));
	CHECK(!onfs_tmpl_value_ok("{x}", 3));
	memset(v65, 'a', 65);
	v65[65] = '\0';
	CHECK(onfs_tmpl_value_ok(v65, 64));
	CHECK(!onfs_tmpl_value_ok(v65, 65));
}

static void template_client_value(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	char out[64];

	inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
	CHECK_EQ(onfs_tmpl_client_value((struct sockaddr *)&in, out, sizeof(out)), 0);
	CHECK_STR(out, "127.0.0.2");
	inet_pton(AF_INET6, "fd00::1:2", &in6.sin6_addr);
	CHECK_EQ(onfs_tmpl_client_value((struct sockaddr *)&in6, out, sizeof(out)), 0);
	CHECK_STR(out, "fd00--1-2");
	CHECK(onfs_tmpl_value_ok(out, strlen(out)));
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
	CHECK_EQ(onfs_tmpl_client_value((struct sockaddr *)&in6, out, sizeof(out)), 0);
	CHECK_STR(out, "10.1.2.3");
	CHECK(onfs_tmpl_client_value((struct sockaddr *)&in6, out, 4) < 0);
}

static void template_expand_parent(void)
{
	char out[128];

	CHECK_EQ(onfs_tmpl_expand("/srv/{client}/up", "10.0.0.1", out, sizeof(out)), 0);
	CHECK_STR(out, "/srv/10.0.0.1/up");
	CHECK_EQ(onfs_tmpl_expand("/srv/{name}/{name}-w", "a", out, sizeof(out)), 0);
	CHECK_STR(out, "/srv/a/a-w");
	CHECK(onfs_tmpl_expand("/srv/{name}", "abcdefgh", out, 8) < 0);
	CHECK_EQ(onfs_tmpl_parent("/srv/c/{client}/upper", out, sizeof(out)), 0);
	CHECK_STR(out, "/srv/c");
	CHECK_EQ(onfs_tmpl_parent("/srv/c/up-{host}", out, sizeof(out)), 0);
	CHECK_STR(out, "/srv/c");
	CHECK_EQ(onfs_tmpl_parent("/{name}", out, sizeof(out)), 0);
	CHECK_STR(out, "/");
	CHECK(onfs_tmpl_parent("/srv/plain", out, sizeof(out)) < 0);
}

static void template_overlap(void)
{
	/* different subtrees, or literal parts that never meet */
	CHECK(!onfs_tmpl_may_overlap("/srv/{client}/upper", "/srv/{client}/work"));
	CHECK(!onfs_tmpl_may_overlap("/srv/up/{client}", "/srv/work/{client}"));
	CHECK(!onfs_tmpl_may_overlap("/a/{client}", "/b/{host}"));
	/* one client's work is another client's upper: "a-w" */
	CHECK(onfs_tmpl_may_overlap("/srv/x/{client}", "/srv/x/{client}-w"));
	/* the same template twice, two kinds over one directory */
	CHECK(onfs_tmpl_may_overlap("/srv/{client}", "/srv/{host}"));
	/* a plain directory a value can reach, and one inside an expansion */
	CHECK(onfs_tmpl_may_overlap("/srv/{client}/upper", "/srv/node7/upper"));
	CHECK(onfs_tmpl_may_overlap("/srv/{client}", "/srv/x/y/z"));
	CHECK(onfs_tmpl_may_overlap("/srv/{client}/upper", "/srv"));
	CHECK(!onfs_tmpl_may_overlap("/srv/{client}/upper", "/srv/a/b/upper"));
	/* trailing and doubled slashes do not matter */
	CHECK(onfs_tmpl_may_overlap("/srv//{name}/", "/srv/{name}"));
	CHECK(onfs_tmpl_may_overlap("/", "/srv/{client}"));
	CHECK(onfs_tmpl_may_equal("/clients/{name}", "/clients/x"));
	CHECK(!onfs_tmpl_may_equal("/clients/{name}", "/clients/x/y"));
	CHECK(!onfs_tmpl_may_equal("/clients/{name}", "/"));
}

/* --- config files --- */

static void template_config_file(void)
{
	struct onfs_config cfg;
	char err[1024];
	const char *p;

	/* a good one: every kind, limits */
	p = conf_file("[export farm]\npath = /farm\nlowerdir = /base\n"
		      "upperdir = /srv/c/{client}/upper\nworkdir = /srv/c/{client}/work\n"
		      "max_instances = 100\nidle_timeout = 600\n\n"
		      "[export hosts]\npath = /hosts\nlowerdir = /base\n"
		      "upperdir = /srv/h/{host}\nworkdir = /srv/hw/{host}\n\n"
		      "[export named]\npath = /clients/{name}\nlowerdir = /base\n"
		      "upperdir = /srv/n/{name}/u\nworkdir = /srv/n/{name}/w\n");
	CONF(p, 0);
	memset(&cfg, 0, sizeof(cfg));
	CHECK_EQ(onfs_config_load_file(p, &cfg, err, sizeof(err)), 0);
	CHECK_EQ(cfg.nexports, 3);
	CHECK_EQ(cfg.exports[0].tmpl, ONFS_TMPL_CLIENT);
	CHECK_EQ(cfg.exports[0].max_instances, 100);
	CHECK_EQ(cfg.exports[0].idle_timeout, 600);
	CHECK_EQ(cfg.exports[1].tmpl, ONFS_TMPL_HOST);
	CHECK_EQ(cfg.exports[2].tmpl, ONFS_TMPL_NAME);
	CHECK_STR(cfg.exports[2].path, "/clients/{name}");
	onfs_config_free(&cfg);

	/* an unknown placeholder: named with the export and the value */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{ip}/u\nworkdir = /srv/{ip}/w\n");
	CONF(p, 4, "export 'a'", "upperdir '/srv/{ip}/u'", "'{ip}'");
	/* workdir with another placeholder, or none */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/u\nworkdir = /srv/{host}/w\n");
	CONF(p, 5, "workdir '/srv/{host}/w' must use the same placeholder", "/srv/{client}/u");
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/u\nworkdir = /srv/work\n");
	CONF(p, 5, "export 'a'", "same placeholder");
	/* two kinds in one upper */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/{host}\nworkdir = /srv/w/{client}/{host}\n");
	CONF(p, 4, "several kinds");
	/* upper and work of one export can meet (client "x-w") */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}\nworkdir = /srv/{client}-w\n");
	CONF(p, 4, "can expand to the same directory", "/srv/{client}-w");
	/* {name} needs the path, and the path needs {name} uppers */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{name}/u\nworkdir = /srv/{name}/w\n");
	CONF(p, 4, "must end in /{name}");
	p = conf_file("[export a]\npath = /clients/{name}\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/u\nworkdir = /srv/{client}/w\n");
	CONF(p, 2, "path '/clients/{name}' needs upperdir and workdir templates with {name}");
	p = conf_file("[export a]\npath = /c/{name}/x\nlowerdir = /b\n"
		      "upperdir = /srv/{name}/u\nworkdir = /srv/{name}/w\n");
	CONF(p, 2, "/DIR/{name}");
	p = conf_file("[export a]\npath = /{name}\nlowerdir = /b\n"
		      "upperdir = /srv/{name}/u\nworkdir = /srv/{name}/w\n");
	CONF(p, 2, "/DIR/{name}");
	/* limits without a template */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\nupperdir = /u\nworkdir = /w\n"
		      "max_instances = 3\n");
	CONF(p, 6, "max_instances applies only to an upperdir template");
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\nupperdir = /u\nworkdir = /w\n"
		      "idle_timeout = x\n");
	CONF(p, 6, "'x' is not a number");
	/* two exports whose templates can meet */
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/u\nworkdir = /srv/{client}/w\n\n"
		      "[export b]\npath = /b\nlowerdir = /b\n"
		      "upperdir = /srv/{host}/u\nworkdir = /other/hw/{host}\n");
	CONF(p, 10, "export 'b'", "upperdir '/srv/{host}/u'", "export 'a'",
	     "can expand to the same directory");
	p = conf_file("[export a]\npath = /a\nlowerdir = /b\n"
		      "upperdir = /srv/{client}/u\nworkdir = /srv/{client}/w\n\n"
		      "[export b]\npath = /b\nlowerdir = /b\n"
		      "upperdir = /srv/10.0.0.1/w\nworkdir = /other/w\n");
	CONF(p, 10, "export 'b'", "'/srv/10.0.0.1/w'", "workdir '/srv/{client}/w'");
	/* a {name} path another export's path can equal */
	p = conf_file("[export a]\npath = /clients/{name}\nlowerdir = /b\n"
		      "upperdir = /srv/{name}/u\nworkdir = /srv/{name}/w\n\n"
		      "[export b]\npath = /clients/x\nlowerdir = /b\n");
	CONF(p, 8, "path '/clients/x'", "can name the same directory");
}

static void template_overlay_opts(void)
{
	struct onfs_config cfg;
	char err[1024];

	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/{client}/u,workdir=/s/{client}/w,"
		       "max_instances=5,idle_timeout=30", NULL), 0);
	CHECK_EQ(cfg.exports[0].tmpl, ONFS_TMPL_CLIENT);
	CHECK_EQ(cfg.exports[0].max_instances, 5);
	CHECK_EQ(cfg.exports[0].idle_timeout, 30);
	onfs_config_free(&cfg);

	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/{name}/u,workdir=/s/{name}/w", "--export",
		       "/clients/{name}", NULL), 0);
	CHECK_EQ(cfg.exports[0].tmpl, ONFS_TMPL_NAME);
	onfs_config_free(&cfg);

	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/{client}/u,workdir=/s/{host}/w", NULL), -1);
	CHECK(strstr(err, "-o:") && strstr(err, "same placeholder"));
	onfs_config_free(&cfg);
	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/u,workdir=/s/w,max_instances=3", NULL), -1);
	CHECK(strstr(err, "max_instances applies only"));
	onfs_config_free(&cfg);
	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/{client}/u,workdir=/s/{client}/w,"
		       "max_instances=lots", NULL), -1);
	CHECK(strstr(err, "max_instances=lots"));
	onfs_config_free(&cfg);
	CHECK_EQ(parse(&cfg, err, sizeof(err), "-o",
		       "lowerdir=/b,upperdir=/s/{name}/u,workdir=/s/{name}/w", NULL), -1);
	CHECK(strstr(err, "must end in /{name}"));
	onfs_config_free(&cfg);
}

int main(void)
{
	if (conf_dir_make("test-template") < 0)
		return 1;
	template_kinds();
	template_values();
	template_client_value();
	template_expand_parent();
	template_overlap();
	template_config_file();
	template_overlay_opts();
	conf_dir_remove();
	return unit_finish("template");
}
