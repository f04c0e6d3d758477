/*
 * String copies for hot paths, where snprintf(dst, size, "%s", src)
 * would run the whole printf machinery.
 */
#ifndef UTIL_STR_H
#define UTIL_STR_H

#include <stddef.h>

/*
 * Copy src into dst of size bytes, cut to fit and NUL-terminated when
 * size > 0, as BSD strlcpy() does.  Returns strlen(src), so a result of
 * size or more means the copy was cut.
 */
size_t	 str_copy(char *dst, const char *src, size_t size);

#endif
