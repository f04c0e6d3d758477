/*
 * Mail addresses as RFC 5321 section 4.1.2 defines them: parsing of the
 * reverse-path and forward-path arguments of MAIL and RCPT, and
 * formatting back into the canonical wire form.
 */
#ifndef ROUTER_ADDR_H
#define ROUTER_ADDR_H

#include <stddef.h>

/*
 * RFC 5321 section 4.5.3.1.1 sets 64 octets, and section 4.5.3.1 asks
 * for tolerance beyond such limits where possible: SRS addresses of
 * forwarders, and bounce addresses of bulk senders, are often longer.
 * 128 accepts those; the path limit of 256 octets still holds.
 */
#define ADDR_LOCAL_MAX	128
#define ADDR_DOMAIN_MAX	255	/* RFC 5321 section 4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* RFC 5321 section 4.5.3.1.3 */

/* A parsed mailbox.  An empty local part and domain is the null path. */
struct addr {
	char	local[ADDR_LOCAL_MAX + 1];	/* decoded: quotes removed */
	char	domain[ADDR_DOMAIN_MAX + 1];	/* lower case */
	int	null;				/* "<>" */
};

enum addr_status {
	ADDR_OK,
	ADDR_SYNTAX,		/* not a path by the grammar */
	ADDR_TOO_LONG,		/* a part exceeds the RFC 5321 limits */
};

/*
 * Parse a path "<...>" at the start of s (length len).  allow_null
 * accepts "<>".  Source routes ("<@a,@b:user@d>") are accepted and
 * ignored.  On ADDR_OK *end is set to the offset just past '>', where
 * ESMTP parameters may follow.
 */
enum addr_status addr_parse_path(struct addr *, const char *s, size_t len,
	    int allow_null, size_t *end);

/*
 * Write "local@domain" into out, quoting the local part when it is not a
 * dot-string (RFC 5321 section 4.1.2).  Returns 0, or -1 if out is too
 * small.  The null path is written as "".
 */
int	addr_format(const struct addr *, char *out, size_t outsz);
/* Format a decoded local part the same way (no domain). */
int	addr_format_local(const char *local, char *out, size_t outsz);

/*
 * Split "local@domain" as stored in rules and SRS results (local part
 * possibly quoted) into a struct addr.  Returns ADDR_OK or an error.
 */
enum addr_status addr_parse_mailbox(struct addr *, const char *s);

#endif
