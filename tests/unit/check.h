/*
 * A minimal table-friendly unit test harness.  Each test file defines
 * test functions, lists them in main() with RUN(), and ends with
 * CHECK_SUMMARY(), which prints "N passed, N failed" and sets the exit code.
 *
 * CHECK(cond) records one assertion; a failing one prints file, line and
 * the condition but lets the test go on, so one run shows every failure.
 */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_current_failed;
static const char *check_current = "";

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FAIL %s: %s:%d: %s\n", check_current,	\
		    __FILE__, __LINE__, #cond);				\
		check_current_failed = 1;				\
	}								\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *check_g = (got), *check_w = (want);			\
	if (check_g == NULL || strcmp(check_g, check_w) != 0) {		\
		fprintf(stderr, "FAIL %s: %s:%d: %s is \"%s\", want \"%s\"\n", \
		    check_current, __FILE__, __LINE__, #got,		\
		    check_g ? check_g : "(null)", check_w);		\
		check_current_failed = 1;				\
	}								\
} while (0)

#define CHECK_INT(got, want) do {					\
	long long check_g = (long long)(got), check_w = (long long)(want); \
	if (check_g != check_w) {					\
		fprintf(stderr, "FAIL %s: %s:%d: %s is %lld, want %lld\n", \
		    check_current, __FILE__, __LINE__, #got, check_g, check_w); \
		check_current_failed = 1;				\
	}								\
} while (0)

#define RUN(fn) do {							\
	check_current = #fn;						\
	check_current_failed = 0;					\
	fn();								\
	if (check_current_failed)					\
		check_failed++;						\
	else								\
		check_passed++;						\
	printf("%s %s\n", check_current_failed ? "FAIL" : "ok  ", #fn);	\
} while (0)

#define CHECK_SUMMARY() do {						\
	printf("%d passed, %d failed\n", check_passed, check_failed);	\
	return check_failed ? 1 : 0;					\
} while (0)

#endif
