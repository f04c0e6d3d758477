/*
 * Removal of Authentication-Results fields that claim the relay's own
 * authserv-id (see hdrfilter.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hdrfilter.h"

static const char hdrfilter_name[] = "authentication-results";
#define HDRFILTER_NAME_LEN	(sizeof(hdrfilter_name) - 1)

void
hdrfilter_init(struct hdrfilter *f, const char *authserv_id)
{
	f->done = 0;
	f->line_start = 1;
	f->mode = HDRFILTER_PASS;
	f->nheld = 0;
	f->removed = 0;
	snprintf(f->id, sizeof(f->id), "%s", authserv_id);
}

/* Skip white space, line ends and comments (nested, with quoted pairs). */
static size_t
hdrfilter_skip_cfws(const char *p, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (depth > 0) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '(')
				depth++;
			else if (p[i] == ')')
				depth--;
		} else if (p[i] == '(') {
			depth = 1;
		} else if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n') {
			break;
		}
	}
	return i;
}

int
hdrfilter_claims(const char *field, size_t len, const char *authserv_id)
{
	const char *colon = memchr(field, ':', len);
	char value[256];
	size_t i, n = 0;

	if (colon == NULL)
		return 0;
	i = hdrfilter_skip_cfws(field, len, (size_t)(colon - field) + 1);
	if (i < len && field[i] == '"') {
		for (i++; i < len && field[i] != '"'; i++) {
			if (field[i] == '\\' && i + 1 < len)
				i++;
			if (n + 1 >= sizeof(value))
				return 0;
			value[n++] = field[i];
		}
		if (i == len)
			return 0;	/* the quoted string goes on */
	} else {
		for (; i < len && field[i] != ' ' && field[i] != '\t' &&
		    field[i] != '\r' && field[i] != '\n' && field[i] != ';' &&
		    field[i] != '('; i++) {
			if (n + 1 >= sizeof(value))
				return 0;
			value[n++] = field[i];
		}
	}
	value[n] = '\0';
	return n > 0 && strcasecmp(value, authserv_id) == 0;
}

/* The held field ended: write it, or drop it when it claims the id. */
static size_t
hdrfilter_release(struct hdrfilter *f, char *out)
{
	size_t n = f->nheld;

	f->nheld = 0;
	if (hdrfilter_claims(f->held, n, f->id)) {
		f->removed++;
		f->mode = HDRFILTER_DROP;
		return 0;
	}
	memcpy(out, f->held, n);
	f->mode = HDRFILTER_PASS;
	return n;
}

/* Write the held bytes and copy the rest of the field. */
static size_t
hdrfilter_flush(struct hdrfilter *f, char *out)
{
	size_t n = f->nheld;

	memcpy(out, f->held, n);
	f->nheld = 0;
	f->mode = HDRFILTER_PASS;
	return n;
}

/* Non-zero while the held bytes may still start the field's name. */
static int
hdrfilter_name_ok(const struct hdrfilter *f, char c)
{
	size_t k = f->nheld;

	if (k < HDRFILTER_NAME_LEN)
		return tolower((unsigned char)c) == hdrfilter_name[k];
	return c == ' ' || c == '\t' || c == ':';
}

size_t
hdrfilter_run(struct hdrfilter *f, const char *in, size_t len, char *out)
{
	const char *lf;
	size_t i = 0, o = 0, n;
	char c;

	while (i < len) {
		if (f->done) {
			memcpy(out + o, in + i, len - i);
			return o + len - i;
		}
		c = in[i];
		if (f->line_start) {
			f->line_start = 0;
			if (c != ' ' && c != '\t') {
				/* The previous field ended. */
				if (f->mode == HDRFILTER_HOLD)
					o += hdrfilter_release(f, out + o);
				if (c == '\r' || c == '\n') {
					f->done = 1;
					continue;
				}
				f->mode = HDRFILTER_NAME;
			}
		}
		switch (f->mode) {
		case HDRFILTER_PASS:
		case HDRFILTER_DROP:
			/* The rest of the line in one go. */
			lf = memchr(in + i, '\n', len - i);
			n = lf != NULL ? (size_t)(lf - (in + i)) + 1 : len - i;
			if (f->mode == HDRFILTER_PASS) {
				memcpy(out + o, in + i, n);
				o += n;
			}
			i += n;
			f->line_start = lf != NULL;
			break;
		case HDRFILTER_NAME:
			if (!hdrfilter_name_ok(f, c)) {
				o += hdrfilter_flush(f, out + o);
				continue;	/* c is copied as PASS */
			}
			f->held[f->nheld++] = c;
			i++;
			if (c == ':')
				f->mode = HDRFILTER_HOLD;
			else if (f->nheld == sizeof(f->held))
				o += hdrfilter_flush(f, out + o);
			break;
		case HDRFILTER_HOLD:
			f->held[f->nheld++] = c;
			f->line_start = c == '\n';
			i++;
			/* Too long to hold: decide on what is there. */
			if (f->nheld == sizeof(f->held))
				o += hdrfilter_release(f, out + o);
			break;
		}
	}
	return o;
}

size_t
hdrfilter_finish(struct hdrfilter *f, char *out)
{
	size_t n = 0;

	if (f->mode == HDRFILTER_HOLD)
		n = hdrfilter_release(f, out);
	else if (f->mode == HDRFILTER_NAME)
		n = hdrfilter_flush(f, out);
	f->done = 1;
	return n;
}
