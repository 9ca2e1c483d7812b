/*
 * template.h - per-client layer templates (server/template.c): the
 * placeholders {client}, {host} and {name} in an export's upperdir, workdir
 * and path, the values they may take, their expansion, and the check that
 * two templates can never expand to the same directory.
 *
 * Pure functions on strings: no filesystem access, any thread.
 */
#ifndef OVLNFSD_TEMPLATE_H
#define OVLNFSD_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The placeholders, as bits (a template uses exactly one kind). */
#define ONFS_TMPL_CLIENT 1u /* the client's address */
#define ONFS_TMPL_HOST 2u   /* the AUTH_SYS machine name */
#define ONFS_TMPL_NAME 4u   /* the last component of the mounted path */

/* The longest value a placeholder takes (an IPv6 address in text fits). */
#define ONFS_TMPL_VALUE_MAX 64

/*
 * The placeholders s uses, as a bit set (0: a plain path). -1 when s holds
 * a '{' or '}' that is not one of the three placeholders; bad then gets
 * the offending text.
 */
int onfs_tmpl_kinds(const char *s, char *bad, size_t badlen);

/* "{client}", "{host}" or "{name}" for one kind bit. */
const char *onfs_tmpl_kind_name(unsigned kind);

/*
 * Is v a value a placeholder may take: 1..ONFS_TMPL_VALUE_MAX bytes of
 * [A-Za-z0-9._-], and not "." or "..". Everything else would escape the
 * template's parent or be ambiguous, and is refused.
 */
bool onfs_tmpl_value_ok(const char *v, size_t len);

/*
 * The {client} value of an address: IPv4 dotted (also for an IPv4-mapped
 * IPv6 address), IPv6 in its short form with ':' written as '-'.
 * Returns 0 or -EINVAL.
 */
int onfs_tmpl_client_value(const struct sockaddr *sa, char *out, size_t cap);

/* Expand every placeholder of s with value. 0 or -ENAMETOOLONG. */
int onfs_tmpl_expand(const char *s, const char *value, char *out, size_t cap);

/*
 * The directory that holds the expansions: the directory part of s up to
 * the component with the first placeholder ("/srv/c/{client}/upper" gives
 * "/srv/c"). 0, or -EINVAL for a plain path.
 */
int onfs_tmpl_parent(const char *s, char *out, size_t cap);

/*
 * Can a and b (templates or plain absolute paths) expand to the same
 * directory, or one to a directory inside the other, for some values of
 * their placeholders? Placeholders are taken as independent (two clients'
 * values), so the answer errs on the side of "yes".
 */
bool onfs_tmpl_may_overlap(const char *a, const char *b);

/* Can a and b expand to the same path (not counting one inside the other)? */
bool onfs_tmpl_may_equal(const char *a, const char *b);

#endif
