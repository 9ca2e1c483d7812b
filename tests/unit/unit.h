/*
 * unit.h - the checks every unit test shares. CHECK, CHECK_EQ and CHECK_STR
 * count failures and go on (so one run shows every broken expectation);
 * FAIL reports a failure found by hand; unit_finish prints the verdict and
 * gives the exit status.
 */
#ifndef OVLNFSD_TESTS_UNIT_H
#define OVLNFSD_TESTS_UNIT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int failures;
static int checks;            /* made by the CHECK macros, for the verdict */
static const char *unit_case; /* the case running, named in messages when set */

/* One failure at file:line; the rest of the message is printf-style. */
static inline void __attribute__((format(printf, 3, 4)))
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	if (unit_case)
		fprintf(stderr, "%s: ", unit_case);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

#define FAIL(...) unit_fail(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond)                          \
	do {                                 \
		checks++;                    \
		if (!(cond))                 \
			FAIL("%s", #cond);   \
	} while (0)

/* Hex too: several callers compare bit masks. */
#define CHECK_EQ(a, b)                                                              \
	do {                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                 \
		checks++;                                                           \
		if (_a != _b)                                                       \
			FAIL("%s == %s: %lld != %lld (%#llx != %#llx)", #a, #b, _a, \
			     _b, _a, _b);                                           \
	} while (0)

#define CHECK_STR(got, want)                                                         \
	do {                                                                         \
		const char *_g = (got), *_w = (want);                                \
		checks++;                                                            \
		if (!_g || strcmp(_g, _w))                                           \
			FAIL("%s = '%s', want '%s'", #got, _g ? _g : "(null)", _w); \
	} while (0)

static inline int unit_finish(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d failure(s)\n", name, failures);
		return 1;
	}
	if (checks)
		printf("%s: ok (%d checks)\n", name, checks);
	else
		printf("%s: ok\n", name);
	return 0;
}

#endif
