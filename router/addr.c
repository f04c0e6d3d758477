/*
 * RFC 5321 path parsing.  The grammar (section 4.1.2):
 *
 *   Path        = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox     = Local-part "@" ( Domain / address-literal )
 *   Local-part  = Dot-string / Quoted-string
 *   Dot-string  = Atom *("." Atom)
 *   Quoted-string = DQUOTE *QcontentSMTP DQUOTE
 *   QcontentSMTP  = qtextSMTP / quoted-pairSMTP
 *
 * Non-ASCII octets are accepted in atoms and quoted strings, as RFC 6531
 * extends the grammar; whether they are allowed in a session is the SMTP
 * server's decision.
 */
#include <ctype.h>
#include <string.h>

#include "addr.h"

static int
addr_is_atext(unsigned char c)
{
	if (c >= 0x80)
		return 1;
	if (isalnum(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
addr_is_qtext(unsigned char c)
{
	/* %d32-33 / %d35-91 / %d93-126, plus UTF-8 octets */
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || c >= 0x80;
}

/* Skip a source route "@a,@b:".  Returns the new position or -1. */
static long
addr_skip_route(const char *s, size_t len, size_t i)
{
	if (i >= len || s[i] != '@')
		return (long)i;
	while (i < len) {
		if (s[i] != '@')
			return -1;
		i++;
		while (i < len && (isalnum((unsigned char)s[i]) ||
		    s[i] == '-' || s[i] == '.'))
			i++;
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == ':')
			return (long)(i + 1);
		return -1;
	}
	return -1;
}

/* Parse a local part into a->local.  Returns the new position or -1. */
static long
addr_parse_local(struct addr *a, const char *s, size_t len, size_t i,
    enum addr_status *st)
{
	size_t o = 0;

	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (++i >= len || s[i] < 32 || s[i] > 126)
					return -1;
				c = (unsigned char)s[i];
			} else if (!addr_is_qtext(c))
				return -1;
			if (o >= ADDR_LOCAL_MAX) {
				*st = ADDR_TOO_LONG;
				return -1;
			}
			a->local[o++] = (char)c;
		}
		if (i >= len)
			return -1;
		a->local[o] = '\0';
		return (long)(i + 1);
	}
	for (; i < len && s[i] != '@'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			/* No leading, trailing or doubled dots in a dot-string. */
			if (o == 0 || a->local[o - 1] == '.')
				return -1;
		} else if (!addr_is_atext(c))
			return -1;
		if (o >= ADDR_LOCAL_MAX) {
			*st = ADDR_TOO_LONG;
			return -1;
		}
		a->local[o++] = (char)c;
	}
	if (o == 0 || a->local[o - 1] == '.')
		return -1;
	a->local[o] = '\0';
	return (long)i;
}

/* Parse a domain or address literal up to '>'.  Returns position or -1. */
static long
addr_parse_domain(struct addr *a, const char *s, size_t len, size_t i,
    enum addr_status *st)
{
	size_t o = 0, label = 0;

	if (i < len && s[i] == '[') {
		for (; i < len && s[i] != ']'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c < 33 || c > 126 || (c == '[' && o > 0) ||
			    c == '\\')
				return -1;
			if (o >= ADDR_DOMAIN_MAX - 1) {
				*st = ADDR_TOO_LONG;
				return -1;
			}
			a->domain[o++] = (char)tolower(c);
		}
		if (i >= len)
			return -1;
		a->domain[o++] = ']';
		a->domain[o] = '\0';
		return (long)(i + 1);
	}
	for (; i < len && s[i] != '>'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			/* Empty labels, including a trailing dot, are invalid. */
			if (label == 0 || a->domain[o - 1] == '-')
				return -1;
			label = 0;
		} else if (isalnum(c) || c >= 0x80 || (c == '-' && label > 0)) {
			if (++label > 63)
				return -1;
		} else
			return -1;
		if (o >= ADDR_DOMAIN_MAX) {
			*st = ADDR_TOO_LONG;
			return -1;
		}
		a->domain[o++] = (char)tolower(c);
	}
	if (label == 0 || a->domain[o - 1] == '-')
		return -1;
	a->domain[o] = '\0';
	return (long)i;
}

enum addr_status
addr_parse_path(struct addr *a, const char *s, size_t len, int allow_null,
    size_t *end)
{
	enum addr_status st = ADDR_SYNTAX;
	long i;

	memset(a, 0, sizeof(*a));
	if (len < 2 || s[0] != '<')
		return ADDR_SYNTAX;
	if (s[1] == '>') {
		if (!allow_null)
			return ADDR_SYNTAX;
		a->null = 1;
		*end = 2;
		return ADDR_OK;
	}
	if ((i = addr_skip_route(s, len, 1)) < 0)
		return ADDR_SYNTAX;
	if ((i = addr_parse_local(a, s, len, (size_t)i, &st)) < 0)
		return st;
	if ((size_t)i >= len || s[i] != '@')
		return ADDR_SYNTAX;
	if ((i = addr_parse_domain(a, s, len, (size_t)i + 1, &st)) < 0)
		return st;
	if ((size_t)i >= len || s[i] != '>')
		return ADDR_SYNTAX;
	if ((size_t)i - 1 > ADDR_PATH_MAX)
		return ADDR_TOO_LONG;
	*end = (size_t)i + 1;
	return ADDR_OK;
}

int
addr_format_local(const char *local, char *out, size_t outsz)
{
	size_t i, o = 0, n = strlen(local);
	int dot_string = n > 0 && local[0] != '.' && local[n - 1] != '.';

	for (i = 0; dot_string && i < n; i++) {
		unsigned char c = (unsigned char)local[i];

		if (c == '.' ? local[i + 1] == '.' : !addr_is_atext(c))
			dot_string = 0;
	}
	if (dot_string) {
		if (n + 1 > outsz)
			return -1;
		memcpy(out, local, n + 1);
		return 0;
	}
	if (o + 1 > outsz)
		return -1;
	out[o++] = '"';
	for (i = 0; i < n; i++) {
		if (local[i] == '"' || local[i] == '\\') {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = local[i];
	}
	if (o + 2 > outsz)
		return -1;
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

int
addr_format(const struct addr *a, char *out, size_t outsz)
{
	size_t n;

	if (a->null) {
		if (outsz < 1)
			return -1;
		out[0] = '\0';
		return 0;
	}
	if (addr_format_local(a->local, out, outsz) < 0)
		return -1;
	n = strlen(out);
	if (n + 1 + strlen(a->domain) + 1 > outsz)
		return -1;
	out[n] = '@';
	strcpy(out + n + 1, a->domain);
	return 0;
}

enum addr_status
addr_parse_mailbox(struct addr *a, const char *s)
{
	char path[ADDR_PATH_MAX + 3];
	size_t n = strlen(s), end;
	enum addr_status st;

	if (n == 0) {
		memset(a, 0, sizeof(*a));
		a->null = 1;
		return ADDR_OK;
	}
	if (n > ADDR_PATH_MAX)
		return ADDR_TOO_LONG;
	path[0] = '<';
	memcpy(path + 1, s, n);
	path[n + 1] = '>';
	st = addr_parse_path(a, path, n + 2, 0, &end);
	if (st == ADDR_OK && end != n + 2)
		return ADDR_SYNTAX;
	return st;
}
