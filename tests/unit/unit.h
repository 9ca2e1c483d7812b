/*
 * unit.h - the checks the unit tests share: CHECK/CHECK_EQ count failures
 * and go on (so one run shows every broken expectation), unit_finish
 * prints the verdict and gives the exit status.
 */
#ifndef OVLNFSD_TESTS_UNIT_H
#define OVLNFSD_TESTS_UNIT_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                   \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                             \
	do {                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                \
		if (_a != _b) {                                                    \
			fprintf(stderr, "%s:%d: FAIL: %s == %s: %lld != %lld\n",   \
				__FILE__, __LINE__, #a, #b, _a, _b);               \
			failures++;                                                \
		}                                                                  \
	} while (0)

static inline int unit_finish(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d failure(s)\n", name, failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

#endif
