/*
 * Routing: turn a recipient address into a verdict by looking up the
 * domain's ER1 records (docs/records.md) with the asynchronous DNS client.
 *
 *   _er.DOMAIN TXT          salt and keys; absent means "not ours"
 *   LABEL._er.DOMAIN TXT    the rule for local+tag, then local, then the
 *                           catch-all, the first that exists
 *
 * Verified rules are cached by owner name for min(TTL, expiry), so a warm
 * relay neither sends a query nor verifies a signature per message.
 */
#ifndef ROUTER_ROUTE_H
#define ROUTER_ROUTE_H

#include <stddef.h>

#include <ev.h>

#include "record.h"

struct dns_ctx;
struct dnssec_ctx;
struct route_ctx;
struct route_lookup;

enum route_verdict {
	ROUTE_FORWARD,		/* rule->dsts are the destinations */
	ROUTE_REJECT,		/* rule->message is the owner's text */
	ROUTE_DROP,		/* accept and discard */
	ROUTE_NO_RULE,		/* no rule and no catch-all: 550 5.1.1 */
	ROUTE_NOT_OURS,		/* the domain publishes no ER1 records: 550 5.7.1 */
	ROUTE_TEMPFAIL,		/* DNS failure or an invalid record: 451 */
};

/* A verified rule as cached: only what forwarding needs. */
struct route_rule {
	enum rec_action	 action;
	char		*message;	/* reject text, may be "" */
	size_t		 ndsts;
	char		**dsts;		/* "local@domain", local part as stored */
};

struct route_result {
	enum route_verdict	 verdict;
	const struct route_rule	*rule;	/* FORWARD, REJECT, DROP; valid during the callback */
	const char		*enhanced;	/* TEMPFAIL: RFC 3463 code, e.g. "4.4.3" */
	const char		*reason;	/* TEMPFAIL: text for the reply and log */
};

typedef void route_cb(void *arg, const struct route_result *);

/* relay_keys: the relay's key pairs, tried in order (key rotation). */
struct route_ctx *route_new(struct ev_loop *, struct dns_ctx *,
		    const struct rec_relay_key *relay_keys, size_t nrelay_keys,
		    size_t cache_max_entries, size_t cache_max_bytes);
void		 route_free(struct route_ctx *);
/*
 * Validate every routing lookup with dnssec from now on (NULL turns
 * validation off).  The route context does not own dnssec.
 */
void		 route_set_dnssec(struct route_ctx *, struct dnssec_ctx *);

/*
 * Look up the rule for local@domain (local decoded, domain lower case).
 * The callback runs exactly once from the event loop unless cancelled.
 */
struct route_lookup *route_lookup(struct route_ctx *, const char *local,
		    const char *domain, route_cb *, void *arg);
void		 route_cancel(struct route_lookup *);

#endif
