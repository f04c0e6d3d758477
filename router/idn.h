/*
 * Internationalized domain names: the A-label (ASCII, "xn--") form of a
 * domain for DNS lookups, with IDNA2008 and the UTS #46 mapping as GNU
 * libidn2 implements them, so U-label and A-label spellings of one domain
 * find the same records.
 */
#ifndef ROUTER_IDN_H
#define ROUTER_IDN_H

#include <stddef.h>

/*
 * Write the lower-case A-label form of domain (UTF-8) into out.  ASCII
 * domains are only lower-cased.  Returns 0, or -1 if the domain is not a
 * valid IDNA2008 name or does not fit.
 */
int	idn_to_alabel(const char *domain, char *out, size_t outsz);

/* Non-zero if s holds a byte outside ASCII. */
int	idn_has_utf8(const char *s);

#endif
