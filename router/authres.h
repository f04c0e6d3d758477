/*
 * The Authentication-Results header field (RFC 8601), for the relay to
 * prepend to a forwarded message so it records the SPF, DKIM, DMARC and
 * ARC results under the relay's own authserv-id.
 *
 * Output form: folded with CRLF and a tab, each result on its own line,
 * and a longer result folded again before 78 characters.  One property
 * longer than a line (a 256-byte value) stays whole on a line of its own.
 *
 *   Authentication-Results: relay.example;
 *   	spf=pass smtp.mailfrom=sender.example;
 *   	dkim=pass header.d=sender.example header.s=sel;
 *   	dmarc=pass header.from=sender.example
 *
 * Property values and reasons may come from the peer (a MAIL FROM
 * domain, a d= tag), so they are sanitized: at most AUTHRES_VALUE_MAX or
 * AUTHRES_REASON_MAX bytes are kept, every byte that is not printable
 * ASCII (CR, LF, other controls, DEL, 8-bit bytes) becomes '?', and a
 * value that is neither a token nor an address is written as a quoted
 * string.  So no peer text can end the header field or start another.
 */
#ifndef ROUTER_AUTHRES_H
#define ROUTER_AUTHRES_H

#include <stddef.h>

#define AUTHRES_PROPS_MAX	8	/* properties per result */
#define AUTHRES_VALUE_MAX	256	/* bytes kept of a property value */
#define AUTHRES_REASON_MAX	128	/* bytes kept of a reason */
#define AUTHRES_FOLD_AT		78	/* fold before a line passes this */

/* One property: "smtp.mailfrom", "header.d", "policy.dmarc", ... */
struct authres_prop {
	const char	*name;		/* ptype "." property, both keywords */
	const char	*value;		/* any text; sanitized on output */
};

/* One result: method=result [reason="..."] properties. */
struct authres_item {
	const char	*method;	/* "spf", "dkim", "dmarc", "arc" */
	const char	*result;	/* "pass", "fail", "none", ... */
	const char	*reason;	/* NULL for none; sanitized on output */
	size_t		 nprops;
	struct authres_prop props[AUTHRES_PROPS_MAX];
};

/*
 * Write the whole header field, from "Authentication-Results:" to the
 * final CRLF, into out (outsz bytes, NUL-terminated).  With n == 0 the
 * field contains the no-result form "; none".  authserv_id (the relay's host name)
 * is sanitized like a value.  Returns the length written, or -1 with out
 * set to "" when it does not fit, authserv_id is empty, a method, result
 * or property name is not a keyword (letters, digits, '-'; a property
 * name is two of them joined by '.'), or nprops exceeds
 * AUTHRES_PROPS_MAX.  Those last cases are the caller's bugs, not the
 * peer's: peer text goes only into values and reasons.
 */
int		 authres_format(char *out, size_t outsz,
		    const char *authserv_id, const struct authres_item *items,
		    size_t n);

/*
 * Find the first result for method in an unfolded Authentication-Results
 * or ARC-Authentication-Results value ("id; spf=pass ...; dmarc=fail
 * ...") and copy its result keyword, lower-cased, into result.  The
 * authserv-id (after "i=N" in an ARC-Authentication-Results) is never
 * read as a result.  Comments,
 * quoted strings and a method version ("dkim/1=pass") are handled as RFC
 * 8601 section 2.2 allows.  Returns 1 when found, 0 when not, and an
 * empty result for a keyword that does not fit.
 */
int		 authres_find_result(const char *value, const char *method,
		    char *result, size_t size);

#endif
