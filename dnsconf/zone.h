/*
 * Master-file output for dnsconf (RFC 1035 section 5 syntax): domain name
 * checks and quoting of TXT content as character-strings.  The records
 * themselves come from the record module.  This module only spells them,
 * so that a zone file loader such as NSD reads them back unchanged.
 */
#ifndef DNSCONF_ZONE_H
#define DNSCONF_ZONE_H

#include <stddef.h>

#define ZONE_DOMAIN_MAX		253	/* presentation, no trailing dot */
#define ZONE_STRING_MAX		255	/* bytes in one character-string */

/*
 * Check a host or domain name: labels of letters, digits and '-' (not at
 * either end), 1 to 63 bytes each, 253 bytes in all.  One trailing dot is
 * allowed.  Writes the name lower-cased without the dot into out.
 * Returns 0, or -1 if the name is invalid.
 */
int	zone_domain_normalize(char out[ZONE_DOMAIN_MAX + 1], const char *in);

/*
 * Write txt (len bytes) as quoted character-strings, each holding at most
 * ZONE_STRING_MAX bytes of content and separated by one space.  '"' and
 * '\' are escaped with '\', bytes outside printable ASCII as \DDD.  Empty
 * content gives "".  out is NUL-terminated.  Returns 0, or -1 if out is
 * too small.
 */
int	zone_txt_quote(char *out, size_t outsz, const char *txt, size_t len);

/* Bytes zone_txt_quote() needs at most for len bytes of content. */
#define ZONE_TXT_QUOTED_MAX(len) \
	((len) * 4 + ((len) / ZONE_STRING_MAX + 1) * 3 + 1)

#endif
