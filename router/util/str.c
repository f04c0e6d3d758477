#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "str.h"

size_t
str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src), n;

	if (size > 0) {
		n = len < size ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

const char *
str_inet_ntop(int af, const void *src, char *dst, socklen_t size)
{
	const unsigned char *b = src;
	char text[INET_ADDRSTRLEN];
	size_t o = 0, i;

	if (af != AF_INET)
		return inet_ntop(af, src, dst, size);
	for (i = 0; i < 4; i++) {
		if (b[i] >= 100)
			text[o++] = (char)('0' + b[i] / 100);
		if (b[i] >= 10)
			text[o++] = (char)('0' + b[i] / 10 % 10);
		text[o++] = (char)('0' + b[i] % 10);
		text[o++] = i < 3 ? '.' : '\0';
	}
	if (o > size) {
		errno = ENOSPC;
		return NULL;
	}
	memcpy(dst, text, o);
	return dst;
}
