/*
 * Asynchronous DNS client on the libev loop.  Queries are built and parsed
 * with ldns's wire-format functions and sent over UDP to the configured
 * resolvers, with TCP when an answer is truncated, per-try timeouts,
 * retries across resolvers, and one shared query for concurrent lookups
 * of the same name and type.  Answers, positive and negative (RFC 2308),
 * are cached by TTL in a cache bounded in entries and bytes.
 *
 * In zone mode (dns_add_zone_file) lookups are answered from local zone
 * files instead and no packet is sent.
 */
#ifndef ROUTER_DNS_H
#define ROUTER_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <ldns/ldns.h>

enum dns_status {
	DNS_OK,			/* rrs holds at least one record */
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_NODATA,		/* the name exists, no record of that type */
	DNS_SERVFAIL,		/* server failure, refusal or bad answer */
	DNS_TIMEOUT,		/* no answer from any resolver in time */
};

struct dns_answer {
	enum dns_status	 status;
	/*
	 * Records of the requested type owned by the requested name (after
	 * following CNAMEs), NULL unless status is DNS_OK.  Owned by the DNS
	 * module and valid only during the callback: clone what you keep.
	 */
	const ldns_rr_list *rrs;
	uint32_t	 ttl;	/* remaining TTL; negative TTL for NXDOMAIN/NODATA */
	int		 secure;	/* answer carried the AD bit (informational) */

	/*
	 * The records a DNSSEC validator needs, filled by dns_lookup_dnssec()
	 * and NULL after dns_lookup().  Owned like rrs.
	 *   cnames     the CNAME records followed from the name, in order
	 *   sigs       the answer section's RRSIG records owned by the name
	 *              or by a CNAME target
	 *   authority  the authority section's SOA, NSEC, NSEC3 and RRSIG
	 *              records: denial of existence for negative answers,
	 *              and for answers expanded from a wildcard
	 * Each is a list, possibly empty, for every status but DNS_SERVFAIL
	 * and DNS_TIMEOUT.
	 */
	const ldns_rr_list *cnames;
	const ldns_rr_list *sigs;
	const ldns_rr_list *authority;
};

typedef void dns_cb(void *arg, const struct dns_answer *);

struct dns_ctx;
struct dns_query;

struct dns_config {
	double		 timeout;	/* seconds per try, default 2 */
	int		 attempts;	/* tries per resolver, default 2 */
	size_t		 cache_max_entries;	/* default 100000 */
	size_t		 cache_max_bytes;	/* default 64 MiB */
};

/* A NULL config or zero fields take the defaults above. */
struct dns_ctx	*dns_new(struct ev_loop *, const struct dns_config *);
/*
 * Free the context with its cache and zones.  Lookups still pending are
 * dropped without a callback.  Must not be called from a DNS callback.
 */
void		 dns_free(struct dns_ctx *);

/*
 * "ADDR", "ADDR:PORT", "[V6ADDR]:PORT", numeric addresses only.  Returns
 * 0, or -1 if the text is invalid or 8 resolvers are already set.
 */
int		 dns_add_resolver(struct dns_ctx *, const char *addrport);
/*
 * Read the nameserver lines of a resolv.conf file.  Returns the count
 * added, 0 when the file cannot be read (a warning is logged).
 */
int		 dns_add_resolv_conf(struct dns_ctx *, const char *path);
/*
 * Load a master file (RFC 1035 syntax, absolute names or $ORIGIN).  Once
 * a zone file is loaded, every lookup is answered locally: names under a
 * loaded zone's apex from its records, other names with NXDOMAIN.
 * $INCLUDE is not supported.  Returns 0, or -1 with a message in err,
 * "PATH:LINE: reason" for a syntax error.
 */
int		 dns_add_zone_file(struct dns_ctx *, const char *path,
		    char *err, size_t errsz);

/*
 * Start a lookup of name (absolute or relative to the root) and type.
 * The callback runs exactly once, from the event loop and never from
 * inside dns_lookup(), unless the query is cancelled first.  Returns a
 * handle that stays valid until the callback returns or dns_cancel().
 * A name that ldns cannot parse, longer than 253 characters or with a
 * label over 63 octets gets DNS_SERVFAIL without a query.
 */
struct dns_query *dns_lookup(struct dns_ctx *, const char *name,
		    ldns_rr_type type, dns_cb *cb, void *arg);
/*
 * Like dns_lookup(), for a DNSSEC validator: the query sets the DO bit
 * (RFC 3225), so that servers add RRSIG, NSEC and NSEC3 records, and the
 * CD bit (RFC 4035 section 3.2.2), so that a validating resolver passes
 * on data that it would reject and the caller's own trust anchors
 * decide.  The answer carries cnames, sigs and authority.  These lookups
 * have their own cache entries and flights, apart from dns_lookup()'s.
 *
 * In zone mode sigs holds the zone file's RRSIG records for a positive
 * answer, but authority stays empty.
 */
struct dns_query *dns_lookup_dnssec(struct dns_ctx *, const char *name,
		    ldns_rr_type type, dns_cb *cb, void *arg);
/*
 * Drop one lookup: its callback will not run.  The query on the wire, if
 * any, goes on for the other lookups and still fills the cache.  A no-op
 * from inside the lookup's own callback.
 */
void		 dns_cancel(struct dns_query *);

/* Queries sent on the wire since start (for tests and statistics). */
uint64_t	 dns_queries_sent(const struct dns_ctx *);

#endif
