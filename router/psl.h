/*
 * Public Suffix List and the Organizational Domain of RFC 7489 section
 * 3.2, used by DMARC (dmarc.c) for relaxed identifier alignment and for
 * policy discovery at the Organizational Domain.
 *
 * The list is read once at startup from the file that Debian's
 * publicsuffix package installs (PSL_DEFAULT_PATH) into a hash set of
 * rules: plain rules ("co.uk"), wildcard rules ("*.ck") and exception
 * rules ("!www.ck").  Rules written with non-ASCII labels are stored both
 * as UTF-8 and as A-labels (Punycode, RFC 3492), so a domain matches in
 * either form.  Lookups follow the algorithm published with the list at
 * publicsuffix.org: an exception rule wins, else the matching rule with
 * the most labels, else the implicit rule "*".
 */
#ifndef ROUTER_PSL_H
#define ROUTER_PSL_H

#include <stddef.h>

#define PSL_DEFAULT_PATH	"/usr/share/publicsuffix/public_suffix_list.dat"
#define PSL_FILE_MAX		(8u << 20)	/* bytes read from the list file */
#define PSL_RULES_MAX		200000	/* rules kept, both forms counted */
#define PSL_NAME_MAX		254	/* a domain name plus NUL */

/*
 * PSL_ICANN_ONLY skips the section after "===BEGIN PRIVATE DOMAINS===".
 * By default both sections are used: a private entry such as github.io
 * marks a name under which unrelated parties register names, so one of
 * them must neither align with nor set DMARC policy for another.
 */
#define PSL_ICANN_ONLY		0x1

struct psl;

/*
 * Read the list at path (PSL_DEFAULT_PATH when NULL).  Returns the rule
 * set, to be freed with psl_free(), or NULL with a message in err when
 * the file cannot be read, is larger than PSL_FILE_MAX, holds more than
 * PSL_RULES_MAX rules or no rule at all.  Lines that are not valid rules
 * are skipped and counted in psl_skipped().
 */
struct psl	*psl_load(const char *path, int flags, char *err, size_t errsz);
void		 psl_free(struct psl *);
size_t		 psl_rule_count(const struct psl *);
size_t		 psl_skipped(const struct psl *);

/*
 * Write the Organizational Domain (the registrable domain: the public
 * suffix plus one label) of domain into out, lower-cased in ASCII.
 * domain may end in one dot, which is dropped.  Returns 0, or -1 with
 * out set to "" when domain is empty, starts with a dot, has an empty
 * label, is longer than PSL_NAME_MAX - 1 bytes, is itself a public
 * suffix, or the result does not fit outsz.
 * NOTE: only ASCII letters are case-folded; a U-label must already be in
 * the lower-case, NFC form that the list uses (IDNA2008 mapping is not
 * done here).
 */
int		 psl_org_domain(const struct psl *, const char *domain,
		    char *out, size_t outsz);

/*
 * Convert each non-ASCII label of a UTF-8 domain name into its A-label
 * ("xn--" and Punycode) and lower-case ASCII letters.  Returns 0, or -1
 * when the input is not valid UTF-8, has an empty label (other than one
 * trailing dot, which is dropped), a label longer than 63 octets after
 * conversion, or the result does not fit outsz or PSL_NAME_MAX.
 */
int		 psl_domain_to_ascii(const char *domain, char *out,
		    size_t outsz);

#endif
