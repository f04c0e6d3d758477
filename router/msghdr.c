/*
 * Header section collection from a streamed message (see msghdr.h).
 *
 * Bytes are stored as they arrive, one line at a time, and a line is
 * classified only at its end.  An empty line ends the header section and
 * is dropped from the stored bytes.  A line that starts with white space
 * continues the open field, whose bytes it already follows.  Any other
 * line starts a new field.  When a limit is reached the line in progress
 * is dropped, and so is an open field that it continues, so that every
 * stored field is complete.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msghdr.h"
#include "xmalloc.h"

static int
msghdr_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

void
msghdr_init(struct msghdr_section *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->data, MSGHDR_BYTES_MAX);
	h->line_stored = 1;
}

void
msghdr_free(struct msghdr_section *h)
{
	buf_free(&h->data);
	free(h->fields);
	h->fields = NULL;
	h->nfields = h->fields_size = 0;
}

/*
 * Drop the current line's stored bytes and store nothing more.  An open
 * field stays stored here; msghdr_line_end() drops it if the line turns
 * out to continue it.
 */
static void
msghdr_set_overflow(struct msghdr_section *h, size_t stored)
{
	h->data.len -= stored;
	h->line_stored = 0;
	h->overflow = 1;
}

/* Append n bytes of the current line (no LF except as the last byte). */
static void
msghdr_line_bytes(struct msghdr_section *h, const char *p, size_t n)
{
	if (h->line_len == 0)
		h->line_first = (unsigned char)p[0];
	if (h->line_stored && buf_append(&h->data, p, n) < 0)
		msghdr_set_overflow(h, h->line_len);
	h->line_len += n;
	h->header_bytes += n;
}

/*
 * Set the name and value offset of field f from its first line: the
 * bytes before the colon, less trailing white space (RFC 5322 obsolete
 * syntax allows it), made of printable US-ASCII.  A line without a colon
 * or with an invalid name gets name_len 0.
 */
static void
msghdr_parse_name(struct msghdr_section *h, struct msghdr_field *f)
{
	const char *p = h->data.data + f->off;
	const char *colon = memchr(p, ':', f->len);
	size_t n, i;

	f->name_len = 0;
	f->value_off = 0;
	if (colon == NULL)
		return;
	n = (size_t)(colon - p);
	while (n > 0 && msghdr_is_wsp((unsigned char)p[n - 1]))
		n--;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126)
			return;
	f->name_len = n;
	f->value_off = (size_t)(colon - p) + 1;
}

/*
 * Store the just-completed line (its bytes end data) as a new field.
 * Returns the field, or NULL when the field limit was reached.
 */
static struct msghdr_field *
msghdr_new_field(struct msghdr_section *h)
{
	struct msghdr_field *f;

	if (h->nfields == MSGHDR_FIELDS_MAX) {
		msghdr_set_overflow(h, h->line_len);
		h->open = 0;
		return NULL;
	}
	if (h->nfields == h->fields_size) {
		h->fields_size = h->fields_size ? h->fields_size * 2 : 32;
		if (h->fields_size > MSGHDR_FIELDS_MAX)
			h->fields_size = MSGHDR_FIELDS_MAX;
		h->fields = xrealloc(h->fields,
		    h->fields_size * sizeof(*h->fields));
	}
	f = &h->fields[h->nfields++];
	f->off = h->data.len - h->line_len;
	f->len = h->line_len;
	msghdr_parse_name(h, f);
	h->open = 1;
	return f;
}

/* A continuation line: extend the open field, or drop it after overflow. */
static void
msghdr_continue_field(struct msghdr_section *h)
{
	struct msghdr_field *f;

	if (!h->line_stored) {
		if (h->open) {
			f = &h->fields[--h->nfields];
			h->data.len = f->off;
			h->open = 0;
		}
		return;
	}
	if (!h->open) {
		/* White space before the first field: keep it, nameless. */
		f = msghdr_new_field(h);
		if (f != NULL) {
			f->name_len = 0;
			f->value_off = 0;
		}
		return;
	}
	h->fields[h->nfields - 1].len += h->line_len;
}

static void
msghdr_line_end(struct msghdr_section *h)
{
	int empty = h->line_len == 1 ||
	    (h->line_len == 2 && h->line_first == '\r');

	if (empty) {
		if (h->line_stored)
			h->data.len -= h->line_len;
		h->open = 0;
		h->done = 1;
	} else if (msghdr_is_wsp(h->line_first)) {
		msghdr_continue_field(h);
	} else {
		h->open = 0;
		if (h->line_stored)
			msghdr_new_field(h);
	}
	h->line_len = 0;
	h->line_stored = !h->overflow;
}

size_t
msghdr_update(struct msghdr_section *h, const char *bytes, size_t len)
{
	const char *lf;
	size_t pos = 0, n;

	while (pos < len && !h->done) {
		lf = memchr(bytes + pos, '\n', len - pos);
		n = lf != NULL ? (size_t)(lf - (bytes + pos)) + 1 : len - pos;
		msghdr_line_bytes(h, bytes + pos, n);
		pos += n;
		if (lf != NULL)
			msghdr_line_end(h);
	}
	return pos;
}

void
msghdr_finish(struct msghdr_section *h)
{
	if (h->done)
		return;
	/* An unterminated last line is a field line, never the empty line. */
	if (h->line_len > 0) {
		if (msghdr_is_wsp(h->line_first))
			msghdr_continue_field(h);
		else if (h->line_stored)
			msghdr_new_field(h);
	}
	h->line_len = 0;
	h->open = 0;
	h->done = 1;
}

int
msghdr_done(const struct msghdr_section *h)
{
	return h->done;
}

int
msghdr_overflow(const struct msghdr_section *h)
{
	return h->overflow;
}

uint64_t
msghdr_body_offset(const struct msghdr_section *h)
{
	return h->header_bytes;
}

size_t
msghdr_count(const struct msghdr_section *h)
{
	return h->nfields;
}

const char *
msghdr_raw(const struct msghdr_section *h, size_t i, size_t *len)
{
	*len = h->fields[i].len;
	return h->data.data + h->fields[i].off;
}

const char *
msghdr_name(const struct msghdr_section *h, size_t i, size_t *len)
{
	*len = h->fields[i].name_len;
	return h->data.data + h->fields[i].off;
}

const char *
msghdr_raw_value(const struct msghdr_section *h, size_t i, size_t *len)
{
	const struct msghdr_field *f = &h->fields[i];
	const char *p = h->data.data + f->off + f->value_off;
	size_t n = f->len - f->value_off;

	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	*len = n;
	return p;
}

int
msghdr_name_is(const struct msghdr_section *h, size_t i, const char *name)
{
	const struct msghdr_field *f = &h->fields[i];
	size_t n = strlen(name);

	return f->name_len == n && n > 0 &&
	    strncasecmp(h->data.data + f->off, name, n) == 0;
}

size_t
msghdr_find(const struct msghdr_section *h, const char *name, size_t from)
{
	size_t i;

	for (i = from; i < h->nfields; i++)
		if (msghdr_name_is(h, i, name))
			return i;
	return MSGHDR_NONE;
}

size_t
msghdr_value(const struct msghdr_section *h, size_t i, char *out, size_t outsz)
{
	const char *p;
	size_t len, k, n = 0;

	p = msghdr_raw_value(h, i, &len);
	while (len > 0 && (msghdr_is_wsp((unsigned char)p[len - 1]) ||
	    p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	for (k = 0; k < len; k++) {
		if (p[k] == '\r' || p[k] == '\n')
			continue;
		if (n == 0 && msghdr_is_wsp((unsigned char)p[k]))
			continue;
		if (n + 1 < outsz)
			out[n] = p[k];
		n++;
	}
	if (outsz > 0)
		out[n < outsz ? n : outsz - 1] = '\0';
	return n;
}
