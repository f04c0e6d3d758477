/*
 * Allocation wrappers for small internal objects.  They abort the process
 * on failure, because a worker that cannot allocate a few bytes cannot make
 * progress anyway.  Never size one of these by a length the network sent:
 * check and cap such lengths first.
 */
#ifndef UTIL_XMALLOC_H
#define UTIL_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

/* Abort with file and line: a broken invariant, never a peer's fault. */
#define fatal_invariant(msg) fatal_at(__FILE__, __LINE__, (msg))
void	 fatal_at(const char *, int, const char *) __attribute__((noreturn));

#endif
