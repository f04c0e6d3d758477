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
