/*
 * Unit tests for the string helpers (router/util/str.c): str_copy()
 * against strlcpy() semantics, and str_inet_ntop() against inet_ntop().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "str.h"

static void
test_copy_fits_and_cuts(void)
{
	char dst[8];

	memset(dst, 'x', sizeof(dst));
	CHECK_INT(str_copy(dst, "abc", sizeof(dst)), 3);
	CHECK_STR(dst, "abc");
	CHECK_INT(str_copy(dst, "1234567", sizeof(dst)), 7);
	CHECK_STR(dst, "1234567");
	CHECK_INT(str_copy(dst, "12345678", sizeof(dst)), 8);
	CHECK_STR(dst, "1234567");
	CHECK_INT(str_copy(dst, "", sizeof(dst)), 0);
	CHECK_STR(dst, "");
	dst[0] = 'x';
	CHECK_INT(str_copy(dst, "abc", 0), 3);
	CHECK(dst[0] == 'x');
	CHECK_INT(str_copy(dst, "abc", 1), 3);
	CHECK_STR(dst, "");
}

/* Every byte value in every position, and pseudo-random addresses. */
static void
test_inet_ntop_ipv4_matches(void)
{
	unsigned char a[4];
	char got[INET_ADDRSTRLEN], want[INET_ADDRSTRLEN];
	uint32_t x = 2463534242u;
	int i, pos, mismatches = 0;

	for (i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		memcpy(a, &x, 4);
		if (i < 4 * 256) {
			pos = i / 256;
			memset(a, pos % 2 ? 0 : 255, 4);
			a[pos] = (unsigned char)(i % 256);
		}
		if (str_inet_ntop(AF_INET, a, got, sizeof(got)) == NULL ||
		    inet_ntop(AF_INET, a, want, sizeof(want)) == NULL ||
		    strcmp(got, want) != 0)
			mismatches++;
	}
	CHECK_INT(mismatches, 0);
}

static void
test_inet_ntop_ipv4_room(void)
{
	static const unsigned char a[4] = { 192, 0, 2, 1 };
	static const unsigned char b[4] = { 255, 255, 255, 255 };
	char dst[INET_ADDRSTRLEN];

	CHECK(str_inet_ntop(AF_INET, a, dst, 10) == dst);
	CHECK_STR(dst, "192.0.2.1");
	errno = 0;
	CHECK(str_inet_ntop(AF_INET, a, dst, 9) == NULL);
	CHECK_INT(errno, ENOSPC);
	CHECK(str_inet_ntop(AF_INET, b, dst, sizeof(dst)) == dst);
	CHECK_STR(dst, "255.255.255.255");
	CHECK(str_inet_ntop(AF_INET, b, dst, 15) == NULL);
}

static void
test_inet_ntop_ipv6_passes_through(void)
{
	unsigned char a[16];
	char dst[INET6_ADDRSTRLEN];

	CHECK_INT(inet_pton(AF_INET6, "2001:db8::1", a), 1);
	CHECK(str_inet_ntop(AF_INET6, a, dst, sizeof(dst)) == dst);
	CHECK_STR(dst, "2001:db8::1");
	errno = 0;
	CHECK(str_inet_ntop(AF_INET6, a, dst, 5) == NULL);
	CHECK_INT(errno, ENOSPC);
	CHECK(str_inet_ntop(99, a, dst, sizeof(dst)) == NULL);
	CHECK_INT(errno, EAFNOSUPPORT);
}

int
main(void)
{
	RUN(test_copy_fits_and_cuts);
	RUN(test_inet_ntop_ipv4_matches);
	RUN(test_inet_ntop_ipv4_room);
	RUN(test_inet_ntop_ipv6_passes_through);
	CHECK_SUMMARY();
}
