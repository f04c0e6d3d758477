/*
 * Capped byte buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->size = 0;
}

void
buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

size_t
buf_room(const struct buf *b)
{
	return b->cap - buf_avail(b);
}

char *
buf_reserve(struct buf *b, size_t n)
{
	size_t want;

	if (n > buf_room(b))
		return NULL;
	/* Slide unconsumed bytes to the front before growing. */
	if (b->off > 0 && b->len + n > b->size) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->size) {
		want = b->size ? b->size : 256;
		while (want < b->len + n)
			want *= 2;
		if (want > b->cap)
			want = b->cap;
		b->data = xrealloc(b->data, want);
		b->size = want;
	}
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	if (b->len + n > b->size)
		fatal_invariant("buf_commit past reservation");
	b->len += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	char *w = buf_reserve(b, n);

	if (w == NULL)
		return -1;
	memcpy(w, p, n);
	buf_commit(b, n);
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	return buf_append(b, tmp, (size_t)n);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > buf_avail(b))
		fatal_invariant("buf_consume past end");
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}
