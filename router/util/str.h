/*
 * String helpers for per-message paths, where snprintf() and inet_ntop()
 * would run the whole printf machinery for a copy or four numbers.
 */
#ifndef UTIL_STR_H
#define UTIL_STR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Copy src into dst of size bytes, cut to fit and NUL-terminated when
 * size > 0, as BSD strlcpy() does.  Returns strlen(src), so a result of
 * size or more means the copy was cut.
 */
size_t		 str_copy(char *dst, const char *src, size_t size);
/*
 * inet_ntop() with the same output and errors, which writes IPv4
 * addresses itself instead of through sprintf().
 */
const char	*str_inet_ntop(int af, const void *src, char *dst,
		    socklen_t size);

#endif
