/*
 * template.c - per-client layer templates: placeholders, values, expansion
 * and the overlap check (template.h).
 *
 * Pure string functions, any thread. The overlap check treats a template
 * as a tiny regular expression (a placeholder is one or more characters of
 * the value set, which never holds '/') and asks whether two of them, or
 * one and the other's subtree, share a string: a product walk over both
 * token lists, memoised, linear in the product of their lengths.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovlnfsd/template.h"

static const struct {
	const char *text;
	unsigned kind;
} placeholders[] = {
	{ "{client}", ONFS_TMPL_CLIENT },
	{ "{host}", ONFS_TMPL_HOST },
	{ "{name}", ONFS_TMPL_NAME },
};

/* The placeholder at s, or 0; *len gets its length. */
static unsigned placeholder_at(const char *s, size_t *len)
{
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
		size_t l = strlen(placeholders[i].text);

		if (strncmp(s, placeholders[i].text, l) == 0) {
			*len = l;
			return placeholders[i].kind;
		}
	}
	return 0;
}

int onfs_tmpl_kinds(const char *s, char *bad, size_t badlen)
{
	unsigned kinds = 0;
	size_t len;

	if (!s)
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned k;

		if (*p != '{' && *p != '}')
			continue;
		k = *p == '{' ? placeholder_at(p, &len) : 0;
		if (!k) {
			size_t l = strcspn(p + 1, "{}/") + 1;

			if (p[l] == '}')
				l++;
			if (bad && badlen)
				snprintf(bad, badlen, "%.*s", (int)l, p);
			return -1;
		}
		kinds |= k;
		p += len - 1;
	}
	return (int)kinds;
}

const char *onfs_tmpl_kind_name(unsigned kind)
{
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
		if (placeholders[i].kind == kind)
			return placeholders[i].text;
	return "{?}";
}

static bool value_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool onfs_tmpl_value_ok(const char *v, size_t len)
{
	if (!v || len == 0 || len > ONFS_TMPL_VALUE_MAX)
		return false;
	if ((len == 1 && v[0] == '.') || (len == 2 && v[0] == '.' && v[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!value_char(v[i]))
			return false;
	return true;
}

int onfs_tmpl_client_value(const struct sockaddr *sa, char *out, size_t cap)
{
	char buf[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (!inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)))
			return -EINVAL;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		/* a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			if (!inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof(buf)))
				return -EINVAL;
		} else {
			if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)))
				return -EINVAL;
			for (char *p = buf; *p; p++)
				if (*p == ':')
					*p = '-';
		}
	} else {
		return -EINVAL;
	}
	if (strlen(buf) >= cap)
		return -EINVAL;
	memcpy(out, buf, strlen(buf) + 1);
	return 0;
}

int onfs_tmpl_expand(const char *s, const char *value, char *out, size_t cap)
{
	size_t o = 0, vlen = strlen(value), len;

	for (const char *p = s; *p;) {
		if (*p == '{' && placeholder_at(p, &len)) {
			if (o + vlen >= cap)
				return -ENAMETOOLONG;
			memcpy(out + o, value, vlen);
			o += vlen;
			p += len;
			continue;
		}
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		out[o++] = *p++;
	}
	if (o >= cap)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}

int onfs_tmpl_parent(const char *s, char *out, size_t cap)
{
	const char *first = strchr(s, '{');
	size_t len;

	if (!first || onfs_tmpl_kinds(s, NULL, 0) <= 0)
		return -EINVAL;
	/* back to the slash that starts the placeholder's component */
	while (first > s && first[-1] != '/')
		first--;
	len = (size_t)(first - s);
	while (len > 1 && s[len - 1] == '/')
		len--;
	if (len == 0 || len >= cap)
		return -EINVAL;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* --- the overlap check --- */

enum tok_kind { T_LIT, T_VAL, T_VAL_STAR, T_ANY_STAR };

struct tok {
	enum tok_kind kind;
	char c;
};

/*
 * Tokens of a path: literals, a placeholder as VAL VAL*, repeated and
 * trailing slashes dropped; sub adds "/" ANY* (a directory inside it).
 */
static struct tok *tokenize(const char *s, bool sub, size_t *n)
{
	size_t cap = strlen(s) * 2 + 4, k = 0, len;
	struct tok *t = malloc(cap * sizeof(*t));

	if (!t)
		return NULL;
	for (const char *p = s; *p;) {
		if (*p == '{' && placeholder_at(p, &len)) {
			t[k++] = (struct tok){ T_VAL, 0 };
			t[k++] = (struct tok){ T_VAL_STAR, 0 };
			p += len;
			continue;
		}
		if (*p == '/' && k > 0 && t[k - 1].kind == T_LIT && t[k - 1].c == '/') {
			p++;
			continue;
		}
		t[k++] = (struct tok){ T_LIT, *p++ };
	}
	while (k > 1 && t[k - 1].kind == T_LIT && t[k - 1].c == '/')
		k--;
	if (sub) {
		t[k++] = (struct tok){ T_LIT, '/' };
		t[k++] = (struct tok){ T_ANY_STAR, 0 };
	}
	*n = k;
	return t;
}

/* Can one character of token a also be one of token b? */
static bool chars_meet(const struct tok *a, const struct tok *b)
{
	bool a_any = a->kind == T_ANY_STAR, b_any = b->kind == T_ANY_STAR;
	bool a_val = a->kind == T_VAL || a->kind == T_VAL_STAR;
	bool b_val = b->kind == T_VAL || b->kind == T_VAL_STAR;

	if (a_any || b_any)
		return true;
	if (a_val && b_val)
		return true;
	if (a_val)
		return value_char(b->c);
	if (b_val)
		return value_char(a->c);
	return a->c == b->c;
}

struct meet {
	const struct tok *a, *b;
	size_t na, nb;
	uint8_t *memo; /* 0 unknown, 1 no, 2 yes */
};

static bool is_star(const struct tok *t)
{
	return t->kind == T_VAL_STAR || t->kind == T_ANY_STAR;
}

/* Do a[i..] and b[j..] share a string? */
static bool meet_at(struct meet *m, size_t i, size_t j)
{
	uint8_t *slot = &m->memo[i * (m->nb + 1) + j];
	bool yes = false;

	if (*slot)
		return *slot == 2;
	if (i == m->na && j == m->nb) {
		yes = true;
	} else if (i < m->na && is_star(&m->a[i]) && meet_at(m, i + 1, j)) {
		yes = true;
	} else if (j < m->nb && is_star(&m->b[j]) && meet_at(m, i, j + 1)) {
		yes = true;
	} else if (i < m->na && j < m->nb && chars_meet(&m->a[i], &m->b[j])) {
		bool sa = is_star(&m->a[i]), sb = is_star(&m->b[j]);

		/*
		 * One common character. Both stars staying put is never needed:
		 * whichever star ends first leaves the other to cover the rest.
		 */
		if (!(sa && sb))
			yes = meet_at(m, sa ? i : i + 1, sb ? j : j + 1);
	}
	*slot = yes ? 2 : 1;
	return yes;
}

static bool meet(const char *a, bool asub, const char *b, bool bsub)
{
	struct meet m = { 0 };
	bool yes = true; /* out of memory or absurd lengths: refuse the pair */

	m.a = tokenize(a, asub, &m.na);
	m.b = tokenize(b, bsub, &m.nb);
	if (m.a && m.b && (m.na + 1) * (m.nb + 1) <= 16u * 1024 * 1024) {
		m.memo = calloc((m.na + 1) * (m.nb + 1), 1);
		if (m.memo)
			yes = meet_at(&m, 0, 0);
	}
	free(m.memo);
	free((void *)m.a);
	free((void *)m.b);
	return yes;
}

static bool is_root(const char *s)
{
	while (*s == '/')
		s++;
	return *s == '\0';
}

bool onfs_tmpl_may_overlap(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	if (is_root(a) || is_root(b))
		return true;
	return meet(a, false, b, false) || meet(a, true, b, false) || meet(a, false, b, true);
}

bool onfs_tmpl_may_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	return meet(a, false, b, false);
}
