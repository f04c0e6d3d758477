/*
 * Byte buffers with a hard capacity.  A buffer grows on demand up to its
 * cap and never beyond it: buf_append() reports the overflow instead of
 * reallocating, so a peer can never make a buffer larger than the cap.
 */
#ifndef UTIL_BUF_H
#define UTIL_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 off;		/* start of unconsumed bytes */
	size_t	 len;		/* end of valid bytes */
	size_t	 size;		/* allocated */
	size_t	 cap;		/* maximum allocation */
};

void	 buf_init(struct buf *, size_t cap);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);

/* Bytes available to read, and a pointer to them. */
static inline size_t buf_avail(const struct buf *b) { return b->len - b->off; }
/* NULL while nothing was ever stored: no offset is added to NULL. */
static inline char *buf_head(const struct buf *b)
{
	return b->data == NULL ? NULL : b->data + b->off;
}
/* Room left before the cap is reached. */
size_t	 buf_room(const struct buf *);

/* Append n bytes.  Returns 0, or -1 (nothing appended) past the cap. */
int	 buf_append(struct buf *, const void *, size_t);
int	 buf_printf(struct buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Make room for at least n more bytes; returns the write pointer or NULL. */
char	*buf_reserve(struct buf *, size_t n);
/* Mark n bytes written after buf_reserve(). */
void	 buf_commit(struct buf *, size_t n);
/* Drop n consumed bytes from the front. */
void	 buf_consume(struct buf *, size_t n);

#endif
