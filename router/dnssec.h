/*
 * DNSSEC validation (RFC 4033, 4034, 4035 and 5155) of the answers the
 * routing lookups act on, on the worker's libev loop.  dnssec_lookup()
 * fetches an answer with dns_lookup_dnssec(), walks the chain of trust
 * from the zone that signed it up to a configured trust anchor, and
 * reports the answer with its security status.  ldns does the
 * cryptography.
 *
 * Trust anchors are DS or DNSKEY records for any zone: the root's in
 * production, a test zone's own in tests.  Names under no anchor are
 * insecure.
 */
#ifndef ROUTER_DNSSEC_H
#define ROUTER_DNSSEC_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <ldns/ldns.h>

#include "dns.h"

enum dnssec_security {
	/* Validated from a trust anchor: the records or the denial. */
	DNSSEC_SECURE,
	/*
	 * No trust anchor covers the name, or a signed zone above it proves
	 * that the delegation to the name's zone carries no DS record (or
	 * only DS records of algorithms this validator does not implement).
	 */
	DNSSEC_INSECURE,
	/*
	 * Validation failed: a bad or expired signature, a missing
	 * signature in a signed zone, a DNSKEY that matches no DS record or
	 * trust anchor, a negative answer without a valid proof, or a
	 * chain longer than the validator's limits.
	 */
	DNSSEC_BOGUS,
	/*
	 * A DNS lookup of the answer or of the chain failed before the
	 * answer could be validated: the status is DNS_SERVFAIL or
	 * DNS_TIMEOUT.
	 */
	DNSSEC_UNVALIDATED,
};

enum dnssec_policy {
	DNSSEC_POLICY_VALIDATE,	/* act on secure and insecure answers */
	DNSSEC_POLICY_REQUIRE,	/* act on secure answers only */
};

struct dnssec_answer {
	/*
	 * The answer as dns_lookup() would report it, valid during the
	 * callback only.  Its TTL is lowered to the time the validation
	 * holds: no later than the expiry of the RRSIG records used.  For
	 * DNSSEC_BOGUS the status is DNS_SERVFAIL and rrs is NULL, so a
	 * caller that ignores security treats it as a lookup failure.
	 * secure is 1 for DNSSEC_SECURE.  cnames, sigs and authority are
	 * NULL.
	 */
	const struct dns_answer	*dns;
	enum dnssec_security	 security;
	const char		*reason;	/* BOGUS, UNVALIDATED: why */
};

typedef void dnssec_cb(void *arg, const struct dnssec_answer *);

struct dnssec_ctx;
struct dnssec_query;

struct dnssec_config {
	enum dnssec_policy	 policy;
	size_t			 cache_max_entries;	/* default 10000 */
	size_t			 cache_max_bytes;	/* default 16 MiB */
};

/* A NULL config or zero fields take the defaults above. */
struct dnssec_ctx	*dnssec_new(struct ev_loop *, struct dns_ctx *,
			    const struct dnssec_config *);
/*
 * Free the context, its anchors and its cache.  Validations still
 * running are dropped without a callback.  Must not be called from a
 * dnssec callback.
 */
void			 dnssec_free(struct dnssec_ctx *);

/*
 * Add one trust anchor, a DS or DNSKEY record in presentation format
 * with an absolute owner name ("example.com. IN DS 2371 13 2 ...").  A
 * DNSKEY anchor must have the Zone Key flag.  Returns 0, or -1 with a
 * message in err.
 */
int			 dnssec_add_anchor(struct dnssec_ctx *,
			    const char *text, char *err, size_t errsz);
/*
 * Read trust anchors from a master file (RFC 1035 syntax with $ORIGIN
 * and $TTL) of DS and DNSKEY records only, the format of Unbound's
 * trust-anchor-file.  Returns the number of records added, or
 * -1 with "PATH:LINE: reason" in err, in which case none is added.
 */
int			 dnssec_add_anchor_file(struct dnssec_ctx *,
			    const char *path, char *err, size_t errsz);

/*
 * Look up name and type and validate the answer.  The callback runs
 * exactly once, from the event loop and never from inside
 * dnssec_lookup(), unless the lookup is cancelled first.  The handle
 * stays valid until the callback returns or dnssec_cancel().
 */
struct dnssec_query	*dnssec_lookup(struct dnssec_ctx *, const char *name,
			    ldns_rr_type type, dnssec_cb *cb, void *arg);
/* Drop one lookup: its callback will not run.  A no-op from inside it. */
void			 dnssec_cancel(struct dnssec_query *);

/*
 * Returns 1 if the configured policy forbids acting on an answer of
 * this security: DNSSEC_BOGUS always, DNSSEC_INSECURE under
 * DNSSEC_POLICY_REQUIRE.  Otherwise 0, DNSSEC_UNVALIDATED included,
 * whose status is a lookup failure that callers handle as such.
 */
int			 dnssec_policy_rejects(const struct dnssec_ctx *,
			    enum dnssec_security);

const char		*dnssec_security_name(enum dnssec_security);

/* Signature checks made since start (for tests and statistics). */
uint64_t		 dnssec_signature_checks(const struct dnssec_ctx *);

#endif
