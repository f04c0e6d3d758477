/*
 * Routing lookups.  Each lookup is a small state machine driven by DNS
 * callbacks:
 *
 *   DOMAIN  --_er.DOMAIN answered-->  RULE(0) --NXDOMAIN/NODATA--> RULE(1) ...
 *     |                                 |
 *     +--> NOT_OURS / TEMPFAIL          +--> verdict (FORWARD, REJECT,
 *                                            DROP, NO_RULE, TEMPFAIL)
 *
 * The candidates are tried in order: the full local part, the local part
 * without its "+tag", then the catch-all.
 *
 * With a DNSSEC validator set (route_set_dnssec), each TXT lookup goes
 * through it: a bogus answer, or an insecure one when the policy
 * requires DNSSEC, ends the lookup with 451 4.7.5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "dns.h"
#include "dnssec.h"
#include "log.h"
#include "route.h"
#include "str.h"
#include "xmalloc.h"

#define ROUTE_MAX_CANDIDATES	3
#define ROUTE_MAX_RRS		16	/* TXT records considered per name */

struct route_ctx {
	struct ev_loop		*loop;
	struct dns_ctx		*dns;
	const struct rec_relay_key *relay_keys;
	size_t			 nrelay_keys;
	struct cache		*rules;
	/*
	 * Parsed domain records by domain, kept for the TTL of the DNS
	 * answer they came from, so that a cached answer is not parsed
	 * again for every message.
	 */
	struct cache		*domains;
	struct dnssec_ctx	*dnssec;	/* NULL: no validation */
};

struct route_candidate {
	char	local[REC_MAX_ADDR + 1];
	int	catch_all;
};

struct route_lookup {
	struct route_ctx	*ctx;
	route_cb		*cb;
	void			*arg;
	struct dns_query	*query;
	struct dnssec_query	*vquery;	/* a lookup through dnssec */
	dns_cb			*handler;	/* receives vquery's answer */
	char			 domain[256];
	struct rec_domain	 dom;
	struct route_candidate	 cand[ROUTE_MAX_CANDIDATES];
	size_t			 ncand;
	size_t			 idx;
	char			 owner[300];
};

static void route_rule_free(void *);
static void route_query(struct route_lookup *, const char *, dns_cb *);
static void route_domain_answer(void *, const struct dns_answer *);
static void route_rule_answer(void *, const struct dns_answer *);
static void route_next_candidate(struct route_lookup *);

struct route_ctx *
route_new(struct ev_loop *loop, struct dns_ctx *dns,
    const struct rec_relay_key *relay_keys, size_t nrelay_keys,
    size_t max_entries, size_t max_bytes)
{
	struct route_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->loop = loop;
	ctx->dns = dns;
	ctx->relay_keys = relay_keys;
	ctx->nrelay_keys = nrelay_keys;
	ctx->rules = cache_new(max_entries, max_bytes, route_rule_free);
	ctx->domains = cache_new(max_entries, max_bytes / 4, free);
	return ctx;
}

void
route_set_dnssec(struct route_ctx *ctx, struct dnssec_ctx *dnssec)
{
	ctx->dnssec = dnssec;
}

void
route_free(struct route_ctx *ctx)
{
	if (ctx == NULL)
		return;
	cache_free(ctx->rules);
	cache_free(ctx->domains);
	free(ctx);
}

static void
route_rule_free(void *p)
{
	struct route_rule *r = p;
	size_t i;

	for (i = 0; i < r->ndsts; i++)
		free(r->dsts[i]);
	free(r->dsts);
	free(r->message);
	free(r);
}

/* Report the verdict and free the lookup. */
static void
route_finish(struct route_lookup *lk, enum route_verdict verdict,
    const struct route_rule *rule, const char *enhanced, const char *reason)
{
	struct route_result res = {
		.verdict = verdict,
		.rule = rule,
		.enhanced = enhanced,
		.reason = reason,
	};

	lk->cb(lk->arg, &res);
	free(lk);
}

static enum route_verdict
route_verdict_of(const struct route_rule *rule)
{
	switch (rule->action) {
	case REC_ACT_FORWARD:
		return ROUTE_FORWARD;
	case REC_ACT_REJECT:
		return ROUTE_REJECT;
	case REC_ACT_DROP:
		return ROUTE_DROP;
	}
	fatal_invariant("rule with unknown action");
}

static void
route_tempfail_dns(struct route_lookup *lk, const struct dns_answer *ans)
{
	if (ans->status == DNS_TIMEOUT)
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.4.3",
		    "DNS lookup of the routing rules timed out");
	else
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.4.3",
		    "DNS lookup of the routing rules failed");
}

/*
 * Pass a validated answer on to the lookup's handler, unless the DNSSEC
 * policy rejects it.
 */
static void
route_validated(void *arg, const struct dnssec_answer *ans)
{
	struct route_lookup *lk = arg;

	lk->vquery = NULL;
	if (dnssec_policy_rejects(lk->ctx->dnssec, ans->security)) {
		log_warn("event=route-dnssec-rejected domain=%s security=%s "
		    "reason=\"%s\"", lk->domain,
		    dnssec_security_name(ans->security),
		    ans->reason != NULL ? ans->reason : "not signed");
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.7.5",
		    ans->security == DNSSEC_BOGUS ?
		    "DNSSEC validation of the routing records failed" :
		    "The routing records are not DNSSEC-signed");
		return;
	}
	lk->handler(lk, ans->dns);
}

/* Look up the TXT records at name for handler, validated if configured. */
static void
route_query(struct route_lookup *lk, const char *name, dns_cb *handler)
{
	if (lk->ctx->dnssec == NULL) {
		lk->query = dns_lookup(lk->ctx->dns, name, LDNS_RR_TYPE_TXT,
		    handler, lk);
		return;
	}
	lk->handler = handler;
	lk->vquery = dnssec_lookup(lk->ctx->dnssec, name, LDNS_RR_TYPE_TXT,
	    route_validated, lk);
}

struct route_lookup *
route_lookup(struct route_ctx *ctx, const char *local, const char *domain,
    route_cb *cb, void *arg)
{
	struct route_lookup *lk = xcalloc(1, sizeof(*lk));
	char name[300];
	const char *plus;

	lk->ctx = ctx;
	lk->cb = cb;
	lk->arg = arg;
	str_copy(lk->domain, domain, sizeof(lk->domain));

	str_copy(lk->cand[lk->ncand++].local, local, REC_MAX_ADDR + 1);
	plus = strchr(local, '+');
	if (plus != NULL && plus != local)
		snprintf(lk->cand[lk->ncand++].local, REC_MAX_ADDR + 1, "%.*s",
		    (int)(plus - local), local);
	lk->cand[lk->ncand++].catch_all = 1;

	snprintf(name, sizeof(name), "_er.%s.", domain);
	route_query(lk, name, route_domain_answer);
	return lk;
}

void
route_cancel(struct route_lookup *lk)
{
	if (lk == NULL)
		return;
	if (lk->query != NULL)
		dns_cancel(lk->query);
	if (lk->vquery != NULL)
		dnssec_cancel(lk->vquery);
	free(lk);
}

/*
 * Join the character-strings of each TXT record in rrs into bufs, at most
 * ROUTE_MAX_RRS records of at most REC_MAX_TXT bytes each.  Longer records
 * are skipped, and *oversize is set if one of them is an ER1 record.
 * Returns the number of records stored.
 */
static size_t
route_join_txt(const ldns_rr_list *rrs, char bufs[][REC_MAX_TXT],
    size_t lens[], int *oversize)
{
	size_t i, j, n = 0;

	*oversize = 0;
	for (i = 0; i < ldns_rr_list_rr_count(rrs) && n < ROUTE_MAX_RRS; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i);
		size_t len = 0;
		int fits = 1;

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT)
			continue;
		for (j = 0; j < ldns_rr_rd_count(rr) && fits; j++) {
			const ldns_rdf *rdf = ldns_rr_rdf(rr, j);
			const uint8_t *d = ldns_rdf_data(rdf);
			size_t sz = ldns_rdf_size(rdf);

			/* A character-string is a length octet and that many bytes. */
			if (sz < 1 || (size_t)d[0] + 1 != sz ||
			    len + d[0] > REC_MAX_TXT) {
				/* An ER1 record too long to hold is malformed. */
				if (len >= 5 && memcmp(bufs[n], "v=ER1", 5) == 0)
					*oversize = 1;
				fits = 0;
				break;
			}
			memcpy(bufs[n] + len, d + 1, d[0]);
			len += d[0];
		}
		if (!fits)
			continue;
		lens[n++] = len;
	}
	return n;
}

static void
route_domain_answer(void *arg, const struct dns_answer *ans)
{
	/* Scratch space: each worker is single-threaded. */
	static char bufs[ROUTE_MAX_RRS][REC_MAX_TXT];
	struct route_lookup *lk = arg;
	const char *ptrs[ROUTE_MAX_RRS];
	size_t lens[ROUTE_MAX_RRS], n, i;
	struct rec_domain *dom;
	enum rec_status st;
	double now;
	int oversize;

	lk->query = NULL;
	switch (ans->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		route_finish(lk, ROUTE_NOT_OURS, NULL, NULL, NULL);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		route_tempfail_dns(lk, ans);
		return;
	}
	now = ev_now(lk->ctx->loop);
	if ((dom = cache_get(lk->ctx->domains, lk->domain, now, NULL)) !=
	    NULL) {
		lk->dom = *dom;
		lk->idx = 0;
		route_next_candidate(lk);
		return;
	}
	n = route_join_txt(ans->rrs, bufs, lens, &oversize);
	for (i = 0; i < n; i++)
		ptrs[i] = bufs[i];
	st = oversize ? REC_MALFORMED : rec_domain_parse(&lk->dom, ptrs, lens,
	    n);
	if (st == REC_OK) {
		dom = xmalloc(sizeof(*dom));
		*dom = lk->dom;
		cache_put(lk->ctx->domains, lk->domain, dom, sizeof(*dom), now,
		    ans->ttl);
	}
	if (st == REC_NONE) {
		route_finish(lk, ROUTE_NOT_OURS, NULL, NULL, NULL);
		return;
	}
	if (st != REC_OK) {
		log_warn("event=route-domain-record domain=%s status=%s",
		    lk->domain, rec_status_str(st));
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.3.5",
		    "The domain's routing record is invalid");
		return;
	}
	lk->idx = 0;
	route_next_candidate(lk);
}

/* Look up the rule for candidate lk->idx, from the cache or DNS. */
static void
route_next_candidate(struct route_lookup *lk)
{
	struct route_candidate *c;
	char label[REC_LABEL_LEN + 1];
	struct route_rule *rule;

	if (lk->idx >= lk->ncand) {
		route_finish(lk, ROUTE_NO_RULE, NULL, NULL, NULL);
		return;
	}
	c = &lk->cand[lk->idx];
	rec_label(label, lk->dom.salt, c->local, strlen(c->local),
	    c->catch_all);
	snprintf(lk->owner, sizeof(lk->owner), "%s._er.%s.", label,
	    lk->domain);
	rule = cache_get(lk->ctx->rules, lk->owner, ev_now(lk->ctx->loop),
	    NULL);
	if (rule != NULL) {
		route_finish(lk, route_verdict_of(rule), rule, NULL, NULL);
		return;
	}
	route_query(lk, lk->owner, route_rule_answer);
}

/* Copy a verified rule into its compact cached form. */
static struct route_rule *
route_rule_new(const struct rec_rule *r, size_t *size)
{
	struct route_rule *rule = xcalloc(1, sizeof(*rule));
	size_t i;

	rule->action = r->action;
	rule->message = xstrdup(r->message);
	rule->ndsts = r->ndsts;
	rule->dsts = xcalloc(r->ndsts ? r->ndsts : 1, sizeof(char *));
	*size = sizeof(*rule) + strlen(r->message) + 1 +
	    r->ndsts * sizeof(char *);
	for (i = 0; i < r->ndsts; i++) {
		rule->dsts[i] = xstrdup(r->dsts[i]);
		*size += strlen(r->dsts[i]) + 1;
	}
	return rule;
}

static void
route_rule_tempfail(struct route_lookup *lk, enum rec_status st)
{
	log_warn("event=route-rule-invalid domain=%s owner=%s status=%s",
	    lk->domain, lk->owner, rec_status_str(st));
	if (st == REC_EXPIRED)
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.7.5",
		    "The routing rule for this address has expired");
	else
		route_finish(lk, ROUTE_TEMPFAIL, NULL, "4.7.5",
		    "The routing rule for this address failed verification");
}

/*
 * Verify one rule record with each of the relay's keys in turn: during a
 * relay key rotation a record may be sealed to the old or the new key.
 */
static enum rec_status
route_verify_any_key(struct route_lookup *lk, struct rec_rule *rr,
    const char *txt, size_t len, uint64_t now)
{
	enum rec_status st = REC_NOT_FOR_RELAY;
	size_t k;

	for (k = 0; k < lk->ctx->nrelay_keys; k++) {
		st = rec_rule_verify(rr, &lk->dom, lk->owner, lk->domain, txt,
		    len, &lk->ctx->relay_keys[k], now);
		if (st != REC_NOT_FOR_RELAY)
			break;
	}
	return st;
}

static void
route_rule_answer(void *arg, const struct dns_answer *ans)
{
	static char bufs[ROUTE_MAX_RRS][REC_MAX_TXT];
	static struct rec_rule rr;
	struct route_lookup *lk = arg;
	size_t lens[ROUTE_MAX_RRS], n, i, size;
	enum rec_status st = REC_NONE, first = REC_NONE;
	int oversize;
	struct route_rule *rule;
	uint64_t now = (uint64_t)time(NULL);
	double ttl;

	lk->query = NULL;
	switch (ans->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		lk->idx++;
		route_next_candidate(lk);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		route_tempfail_dns(lk, ans);
		return;
	}
	n = route_join_txt(ans->rrs, bufs, lens, &oversize);
	if (oversize)
		first = REC_MALFORMED;
	for (i = 0; i < n && st != REC_OK; i++) {
		st = route_verify_any_key(lk, &rr, bufs[i], lens[i], now);
		if (st != REC_OK && first == REC_NONE)
			first = st;
	}
	if (st != REC_OK) {
		if (first == REC_NONE) {
			/* TXT records that are not ER1 rules: no rule here. */
			lk->idx++;
			route_next_candidate(lk);
			return;
		}
		route_rule_tempfail(lk, first);
		return;
	}
	rule = route_rule_new(&rr, &size);
	ttl = ans->ttl;
	if (rr.expires - now < ttl)
		ttl = (double)(rr.expires - now);
	cache_put(lk->ctx->rules, lk->owner, rule, size,
	    ev_now(lk->ctx->loop), ttl);
	/* The cache may drop an entry that cannot fit; look it up again. */
	rule = cache_get(lk->ctx->rules, lk->owner, ev_now(lk->ctx->loop), NULL);
	if (rule == NULL) {
		rule = route_rule_new(&rr, &size);
		route_finish(lk, route_verdict_of(rule), rule, NULL, NULL);
		route_rule_free(rule);
		return;
	}
	route_finish(lk, route_verdict_of(rule), rule, NULL, NULL);
}
