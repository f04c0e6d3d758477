/*
 * MX resolution for the outbound SMTP client: turns a destination domain
 * into the ordered list of addresses to try (RFC 5321 section 5.1).
 *
 * The MX records are sorted by preference, with ties in random order.  A
 * domain without MX records (NODATA) gets the implicit MX: the domain
 * itself at preference 0.  A single "MX 0 ." is a null MX (RFC 7505): the
 * domain accepts no mail.  For each of at most MX_HOSTS_MAX hosts both the
 * AAAA and the A records are looked up in parallel.  The targets list
 * keeps the preference order of the hosts, and alternates the addresses of
 * each host IPv6, IPv4, IPv6, IPv4, as RFC 8305 section 4 interleaves
 * families.  So a host with broken IPv6 costs one failed try, not all.
 * Duplicate addresses are dropped, and the list stops at MX_TARGETS_MAX.
 */
#ifndef ROUTER_MX_H
#define ROUTER_MX_H

#include <stddef.h>

#include <ldns/ldns.h>

struct dns_ctx;

#define MX_HOSTS_MAX	10	/* MX hosts whose addresses are looked up */
#define MX_TARGETS_MAX	20	/* addresses tried, over all hosts */
#define MX_NAME_MAX	254	/* a host name without the root dot, plus NUL */

enum mx_status {
	MX_OK,		/* targets holds at least one address */
	MX_NULL,	/* the domain publishes a null MX: it takes no mail */
	MX_NXDOMAIN,	/* the domain does not exist */
	MX_TEMPFAIL,	/* a lookup failed (SERVFAIL, timeout) and no address was found */
	MX_NOADDR,	/* no MX host has an address */
};

/* One MX host as it came from the MX records. */
struct mx_host {
	char	 name[MX_NAME_MAX];	/* exchange, without the trailing dot */
	int	 preference;
};

/* One address to try. */
struct mx_target {
	char		 host[MX_NAME_MAX];	/* the MX host it belongs to */
	int		 preference;
	int		 family;	/* AF_INET6 or AF_INET */
	unsigned char	 addr[16];	/* network byte order; 4 bytes for AF_INET */
};

struct mx_result {
	enum mx_status		 status;
	int			 implicit;	/* no MX records: the domain itself */
	size_t			 ntargets;
	const struct mx_target	*targets;	/* valid during the callback only */
};

typedef void mx_cb(void *arg, const struct mx_result *);

struct mx_lookup;

/*
 * Start resolving the mail exchangers of domain (a host name, with or
 * without the trailing dot).  The callback runs exactly once, from the
 * event loop and never from inside this call, unless mx_cancel() comes
 * first.  The lookup frees itself after the callback returns, so the
 * callback must not cancel it.  Returns NULL, with no callback to follow,
 * when domain is not a host name (letters, digits, "-", "_" and dots,
 * at most 253 bytes).
 */
struct mx_lookup *mx_resolve(struct dns_ctx *, const char *domain,
		    mx_cb *, void *arg);
/* Stop a lookup whose callback has not run yet, and free it. */
void		 mx_cancel(struct mx_lookup *);

/*
 * Select the hosts of an MX answer: at most max of them, sorted by
 * preference with ties shuffled, duplicates and malformed records
 * skipped.  Records whose exchange is the root (".") are never hosts.
 * Returns MX_NULL for a null MX (a single record "0 ."), MX_OK with
 * *nhosts > 0, or MX_NOADDR when no usable host remains.
 */
enum mx_status	 mx_select_hosts(const ldns_rr_list *, struct mx_host *hosts,
		    size_t max, size_t *nhosts);

#endif
