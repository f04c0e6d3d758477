/*
 * Formatting of the Authentication-Results header field (see authres.h).
 * A small writer appends "atoms" (text that must not be split: method=
 * result, one property, the reason) to a bounded buffer and folds the
 * line before an atom that would carry it past AUTHRES_FOLD_AT columns.
 * The grammar is RFC 8601 section 2.2; "value" is the token or
 * quoted-string of RFC 2045.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authres.h"

#define AUTHRES_FIELD	"Authentication-Results:"
#define AUTHRES_FOLD	"\r\n\t"
/* Room for a sanitized value written as a quoted string. */
#define AUTHRES_QUOTED_MAX	(2 * AUTHRES_VALUE_MAX + 3)

struct authres_writer {
	char	*out;
	size_t	 size;
	size_t	 len;
	size_t	 column;	/* characters on the current line */
	int	 overflow;
};

static void
authres_put(struct authres_writer *w, const char *s, size_t n)
{
	if (w->overflow || n >= w->size - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->out + w->len, s, n);
	w->len += n;
	w->out[w->len] = '\0';
	w->column += n;
}

static void
authres_fold(struct authres_writer *w)
{
	authres_put(w, AUTHRES_FOLD, strlen(AUTHRES_FOLD));
	w->column = 1;		/* the tab */
}

/*
 * Append an atom of n bytes after a space, or after a fold when the atom
 * would pass AUTHRES_FOLD_AT columns.
 */
static void
authres_atom(struct authres_writer *w, const char *s, size_t n)
{
	if (w->column + 1 + n > AUTHRES_FOLD_AT)
		authres_fold(w);
	else
		authres_put(w, " ", 1);
	authres_put(w, s, n);
}

/*
 * Grammar checks.
 */

static int
authres_is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

/* A Keyword of RFC 8601: letters, digits and '-' (n bytes of s). */
static int
authres_is_keyword(const char *s, size_t n)
{
	size_t i;

	if (s == NULL || n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!authres_is_ldh(s[i]))
			return 0;
	return 1;
}

/* "ptype.property", both keywords. */
static int
authres_is_prop_name(const char *s)
{
	const char *dot = s != NULL ? strchr(s, '.') : NULL;

	return dot != NULL && authres_is_keyword(s, (size_t)(dot - s)) &&
	    authres_is_keyword(dot + 1, strlen(dot + 1));
}

/* An RFC 2045 token character: printable ASCII except tspecials. */
static int
authres_is_token_char(char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static int
authres_is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!authres_is_token_char(*s))
			return 0;
	return 1;
}

/* A domain-name of RFC 6376: LDH labels joined by single dots. */
static int
authres_is_domain(const char *s, size_t n)
{
	size_t i, label = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (authres_is_ldh(s[i]))
			label++;
		else
			return 0;
	}
	return label > 0;
}

/* A dot-atom local part (RFC 5322 atext joined by single dots). */
static int
authres_is_dot_atom(const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (run == 0)
				return 0;
			run = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("!#$%&'*+-/=?^_`{|}~", s[i]) != NULL)
			run++;
		else
			return 0;
	}
	return run > 0;
}

/* [ [local-part] "@" ] domain-name, the unquoted pvalue of RFC 8601. */
static int
authres_is_address(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL)
		return 0;
	return (at == s || authres_is_dot_atom(s, (size_t)(at - s))) &&
	    authres_is_domain(at + 1, strlen(at + 1));
}

/*
 * Values.
 */

/*
 * Copy at most max bytes of in into out (max + 1 bytes), each byte that
 * is not printable ASCII or a space replaced with '?'.
 */
static void
authres_sanitize(const char *in, size_t max, char *out)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i < max; i++)
		out[i] = in[i] >= ' ' && in[i] < 0x7f ? in[i] : '?';
	out[i] = '\0';
}

/* Write s as a quoted string into out (AUTHRES_QUOTED_MAX bytes). */
static void
authres_quote(const char *s, char *out)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/*
 * Render a value: sanitized, then bare when it is a token (or, with
 * address set, an address), else quoted.  out has AUTHRES_QUOTED_MAX
 * bytes.
 */
static void
authres_value(const char *in, size_t max, int address, char *out)
{
	char clean[AUTHRES_VALUE_MAX + 1];

	authres_sanitize(in != NULL ? in : "", max, clean);
	if (authres_is_token(clean) || (address && authres_is_address(clean)))
		memcpy(out, clean, strlen(clean) + 1);
	else
		authres_quote(clean, out);
}

/*
 * The field.
 */

static int
authres_item_valid(const struct authres_item *item)
{
	size_t i;

	if (item->method == NULL || item->result == NULL ||
	    !authres_is_keyword(item->method, strlen(item->method)) ||
	    !authres_is_keyword(item->result, strlen(item->result)) ||
	    item->nprops > AUTHRES_PROPS_MAX)
		return 0;
	for (i = 0; i < item->nprops; i++)
		if (!authres_is_prop_name(item->props[i].name))
			return 0;
	return 1;
}

/* Append "name=value" as one atom. */
static void
authres_pair(struct authres_writer *w, const char *name, const char *value)
{
	char atom[AUTHRES_QUOTED_MAX + 64];
	int n = snprintf(atom, sizeof(atom), "%s=%s", name, value);

	if (n < 0 || (size_t)n >= sizeof(atom)) {
		w->overflow = 1;
		return;
	}
	authres_atom(w, atom, (size_t)n);
}

static void
authres_item(struct authres_writer *w, const struct authres_item *item)
{
	char value[AUTHRES_QUOTED_MAX];
	size_t i;

	authres_fold(w);
	authres_put(w, item->method, strlen(item->method));
	authres_put(w, "=", 1);
	authres_put(w, item->result, strlen(item->result));
	if (item->reason != NULL) {
		authres_value(item->reason, AUTHRES_REASON_MAX, 0, value);
		/* Always quoted, for a reader's sake; RFC 8601 allows both. */
		if (value[0] != '"') {
			char quoted[AUTHRES_QUOTED_MAX];

			authres_quote(value, quoted);
			memcpy(value, quoted, strlen(quoted) + 1);
		}
		authres_pair(w, "reason", value);
	}
	for (i = 0; i < item->nprops; i++) {
		authres_value(item->props[i].value, AUTHRES_VALUE_MAX, 1,
		    value);
		authres_pair(w, item->props[i].name, value);
	}
}

int
authres_format(char *out, size_t outsz, const char *authserv_id,
    const struct authres_item *items, size_t n)
{
	struct authres_writer w = { out, outsz, 0, 0, 0 };
	char id[AUTHRES_QUOTED_MAX];
	size_t i;

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	if (authserv_id == NULL || authserv_id[0] == '\0')
		return -1;
	for (i = 0; i < n; i++)
		if (!authres_item_valid(&items[i]))
			return -1;
	authres_value(authserv_id, AUTHRES_VALUE_MAX, 0, id);
	authres_put(&w, AUTHRES_FIELD, strlen(AUTHRES_FIELD));
	authres_atom(&w, id, strlen(id));
	authres_put(&w, ";", 1);
	if (n == 0)
		authres_atom(&w, "none", 4);
	for (i = 0; i < n; i++) {
		if (i > 0)
			authres_put(&w, ";", 1);
		authres_item(&w, &items[i]);
	}
	authres_put(&w, "\r\n", 2);
	if (w.overflow) {
		out[0] = '\0';
		return -1;
	}
	return (int)w.len;
}

/* ---- reading results ---- */

/*
 * Copy the value without comments into out, one space for each comment.
 * Semicolons inside quoted strings become spaces, so that splitting at
 * ';' finds only the separators of resinfo.
 */
static void
authres_strip(const char *in, char *out, size_t size)
{
	size_t n = 0;
	int depth = 0, quoted = 0;

	for (; *in != '\0' && n + 1 < size; in++) {
		if (quoted) {
			if (*in == '\\' && in[1] != '\0')
				in++;
			else if (*in == '"')
				quoted = 0;
			out[n++] = *in == ';' ? ' ' : *in;
		} else if (depth > 0) {
			if (*in == '\\' && in[1] != '\0')
				in++;
			else if (*in == '(')
				depth++;
			else if (*in == ')' && --depth == 0)
				out[n++] = ' ';
		} else if (*in == '(') {
			depth = 1;
		} else {
			if (*in == '"')
				quoted = 1;
			out[n++] = *in;
		}
	}
	out[n] = '\0';
}

/* Non-zero when s (white space at its start skipped) is "i=" digits. */
static int
authres_is_instance(const char *s)
{
	if (*s++ != 'i')
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s++ != '=')
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s))
		s++;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

int
authres_find_result(const char *value, const char *method, char *result,
    size_t size)
{
	char text[2048], *seg, *p, *save = NULL;
	size_t mlen = strlen(method), n, i;
	int skip = 2;

	authres_strip(value, text, sizeof(text));
	for (seg = strtok_r(text, ";", &save); seg != NULL;
	    seg = strtok_r(NULL, ";", &save)) {
		for (p = seg; *p == ' ' || *p == '\t'; p++)
			;
		/* "i=N" of an ARC-Authentication-Results, then the authserv-id. */
		if (skip > 0) {
			if (skip == 2 && !authres_is_instance(p))
				skip = 1;
			skip--;
			continue;
		}
		if (strncasecmp(p, method, mlen) != 0)
			continue;
		p += mlen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '/') {	/* a method version */
			for (p++; *p == ' ' || *p == '\t' ||
			    isdigit((unsigned char)*p); p++)
				;
		}
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		for (n = 0; authres_is_ldh(p[n]); n++)
			;
		if (n == 0)
			continue;
		if (n >= size) {
			if (size > 0)
				result[0] = '\0';
			return 1;
		}
		for (i = 0; i < n; i++)
			result[i] = (char)tolower((unsigned char)p[i]);
		result[n] = '\0';
		return 1;
	}
	return 0;
}
