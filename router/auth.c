/*
 * Inbound authentication of a transaction.  The steps and when they run:
 *
 *   MAIL   auth_txn_new:   SPF check starts (at most 20 s, RFC 7208
 *                          section 4.6.4)
 *   DATA   auth_wait_spf:  the header needs the SPF result
 *          auth_data:      dot-stuffing removed, bytes fed to DKIM
 *   "."    auth_finish:    DKIM key lookups end, the From field is read,
 *                          DMARC policy is looked up, the verdict follows
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arc.h"
#include "arcseal.h"
#include "auth.h"
#include "authres.h"
#include "dkim.h"
#include "dmarc.h"
#include "log.h"
#include "msghdr.h"
#include "spf.h"
#include "xmalloc.h"

#define AUTH_SPF_TIMEOUT	20.	/* RFC 7208 section 4.6.4: at least 20 s */
#define AUTH_FROM_FIELDS_MAX	8
/* DKIM results written into Authentication-Results; the log has all. */
#define AUTH_HEADER_DKIM_MAX	8

struct auth_ctx {
	struct ev_loop		*loop;
	struct dns_ctx		*dns;
	const struct psl	*psl;
	struct auth_policy	 policy;
	char			 hostname[256];
};

struct auth_txn {
	struct auth_ctx		*ctx;
	char			 ip[64];
	char			 helo[256];
	char			 sender[330];

	struct spf_check	*spf;
	int			 spf_done;
	struct spf_outcome	 spf_out;
	ev_timer		 spf_timer;
	void			(*spf_wait_cb)(void *);
	void			*spf_wait_arg;

	struct dkim_verifier	*dkim;
	int			 line_start;	/* next byte starts a line */
	struct dkim_sig_result	*dkim_res;	/* allocated with the results */
	size_t			 ndkim;

	struct arc_verifier	*arc;
	struct arc_chain_result	 arc_res;
	int			 arc_ran;
	struct arc_seal_input	*seal;		/* with a sealer only */
	/* A trusted sealer's results overrode a failure here. */
	int			 arc_override;

	struct dmarc_check	*dmarc;
	struct dmarc_result	 dmarc_res;
	int			 dmarc_ran;
	char			 from_domain[DMARC_DOMAIN_MAX];

	auth_cb			*cb;
	void			*arg;
	ev_timer		 defer;		/* runs a callback from the loop */
	struct auth_verdict	 verdict;
	int			 decided;	/* verdict and results final */
};

struct auth_ctx *
auth_ctx_new(struct ev_loop *loop, struct dns_ctx *dns, const struct psl *psl,
    const struct auth_policy *policy, const char *hostname)
{
	struct auth_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->loop = loop;
	ctx->dns = dns;
	ctx->psl = psl;
	ctx->policy = *policy;
	snprintf(ctx->hostname, sizeof(ctx->hostname), "%s", hostname);
	return ctx;
}

void
auth_ctx_free(struct auth_ctx *ctx)
{
	free(ctx);
}

const struct auth_policy *
auth_ctx_policy(const struct auth_ctx *ctx)
{
	return &ctx->policy;
}

/* ---- SPF ---- */

static void
auth_spf_finished(struct auth_txn *t)
{
	void (*cb)(void *) = t->spf_wait_cb;

	t->spf_done = 1;
	t->spf = NULL;
	ev_timer_stop(t->ctx->loop, &t->spf_timer);
	if (cb != NULL) {
		t->spf_wait_cb = NULL;
		cb(t->spf_wait_arg);
	}
}

static void
auth_spf_cb(void *arg, const struct spf_outcome *out)
{
	struct auth_txn *t = arg;

	t->spf_out = *out;
	auth_spf_finished(t);
}

static void
auth_spf_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct auth_txn *t = w->data;

	spf_check_cancel(t->spf);
	memset(&t->spf_out, 0, sizeof(t->spf_out));
	t->spf_out.result = SPF_TEMPERROR;
	snprintf(t->spf_out.problem, sizeof(t->spf_out.problem),
	    "SPF evaluation timed out");
	auth_spf_finished(t);
}

static void
auth_defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct auth_txn *t = w->data;
	void (*cb)(void *) = t->spf_wait_cb;

	if (cb != NULL && t->spf_done) {
		t->spf_wait_cb = NULL;
		cb(t->spf_wait_arg);
	}
}

struct auth_txn *
auth_txn_new(struct auth_ctx *ctx, const char *client_ip, const char *helo,
    const char *sender)
{
	struct auth_txn *t = xcalloc(1, sizeof(*t));

	t->ctx = ctx;
	snprintf(t->ip, sizeof(t->ip), "%s", client_ip);
	snprintf(t->helo, sizeof(t->helo), "%s", helo);
	snprintf(t->sender, sizeof(t->sender), "%s", sender);
	t->line_start = 1;
	ev_timer_init(&t->spf_timer, auth_spf_timeout, AUTH_SPF_TIMEOUT, 0.);
	ev_timer_init(&t->defer, auth_defer_cb, 0., 0.);
	t->spf_timer.data = t->defer.data = t;
	t->spf = spf_check_start(ctx->dns, client_ip, helo, sender,
	    ctx->hostname, auth_spf_cb, t);
	ev_timer_start(ctx->loop, &t->spf_timer);
	return t;
}

void
auth_txn_free(struct auth_txn *t)
{
	if (t == NULL)
		return;
	if (t->spf != NULL)
		spf_check_cancel(t->spf);
	if (t->dmarc != NULL)
		dmarc_cancel(t->dmarc);
	if (t->dkim != NULL)
		dkim_verifier_free(t->dkim);
	if (t->arc != NULL)
		arc_verifier_free(t->arc);
	if (t->seal != NULL) {
		arc_seal_input_free(t->seal);
		free(t->seal);
	}
	ev_timer_stop(t->ctx->loop, &t->spf_timer);
	ev_timer_stop(t->ctx->loop, &t->defer);
	free(t->dkim_res);
	free(t);
}

int
auth_spf_done(const struct auth_txn *t)
{
	return t->spf_done;
}

void
auth_wait_spf(struct auth_txn *t, void (*cb)(void *), void *arg)
{
	t->spf_wait_cb = cb;
	t->spf_wait_arg = arg;
	if (t->spf_done)
		ev_timer_start(t->ctx->loop, &t->defer);
}

/* The SPF result as an RFC 8601 result with its identity. */
static void
auth_item_spf(const struct auth_txn *t, struct authres_item *item)
{
	item->method = "spf";
	item->result = spf_result_str(t->spf_out.result);
	item->nprops = 1;
	if (t->sender[0] != '\0') {
		item->props[0].name = "smtp.mailfrom";
		item->props[0].value = t->sender;
	} else {
		item->props[0].name = "smtp.helo";
		item->props[0].value = t->helo;
	}
}

/*
 * Every result once the verdict is known (RFC 8601 section 2.7: dkim
 * with header.d, header.s and header.b of RFC 6008; dmarc with
 * header.from, RFC 7489 section 11.2; arc with smtp.remote-ip and
 * header.oldest-pass, RFC 8617 section 10.1).  Returns the item count.
 */
static size_t
auth_items_all(const struct auth_txn *t, struct authres_item *items,
    char *oldest, size_t oldestsz)
{
	const struct dkim_sig_result *r;
	struct authres_item *it;
	size_t n = 0, i;

	auth_item_spf(t, &items[n++]);
	for (i = 0; i < t->ndkim && i < AUTH_HEADER_DKIM_MAX; i++) {
		r = &t->dkim_res[i];
		it = &items[n++];
		it->method = "dkim";
		it->result = dkim_result_str(r->result);
		if (r->testing)
			it->reason = "key in test mode (t=y)";
		else if (r->result != DKIM_PASS)
			it->reason = r->reason;
		it->props[it->nprops].name = "header.d";
		it->props[it->nprops++].value = r->domain;
		it->props[it->nprops].name = "header.s";
		it->props[it->nprops++].value = r->selector;
		if (r->b_prefix[0] != '\0') {
			it->props[it->nprops].name = "header.b";
			it->props[it->nprops++].value = r->b_prefix;
		}
	}
	if (t->ndkim == 0) {
		items[n].method = "dkim";
		items[n++].result = "none";
	}
	it = &items[n++];
	it->method = "dmarc";
	if (t->dmarc_ran) {
		it->result = dmarc_status_str(t->dmarc_res.status);
		it->props[it->nprops].name = "header.from";
		it->props[it->nprops++].value = t->dmarc_res.from_domain;
	} else
		it->result = t->from_domain[0] != '\0' ? "permerror" : "none";
	if (t->arc_override)
		it->reason = "failure overridden by a trusted ARC sealer";
	it = &items[n++];
	it->method = "arc";
	it->result = t->arc_ran ? arc_result_str(t->arc_res.result) : "none";
	if (t->arc_ran && t->arc_res.result == ARC_FAIL)
		it->reason = t->arc_res.reason;
	it->props[it->nprops].name = "smtp.remote-ip";
	it->props[it->nprops++].value = t->ip;
	if (t->arc_ran && t->arc_res.result == ARC_PASS &&
	    t->arc_res.oldest_pass > 0) {
		snprintf(oldest, oldestsz, "%u", t->arc_res.oldest_pass);
		it->props[it->nprops].name = "header.oldest-pass";
		it->props[it->nprops++].value = oldest;
	}
	return n;
}

/*
 * Write the header field with every result, whether or not it is added.
 * Each value is at most AUTHRES_VALUE_MAX bytes, so eight DKIM results
 * with long d= and s= values can pass AUTH_HEADER_MAX: DKIM results are
 * then left out from the last until the field fits, so that the relay's
 * field is never missing.
 */
static size_t
auth_header_all(const struct auth_txn *t, char *out, size_t outsz)
{
	struct authres_item items[AUTH_HEADER_DKIM_MAX + 3];
	char oldest[16];
	size_t n, ndkim, i;
	int len;

	memset(items, 0, sizeof(items));
	n = auth_items_all(t, items, oldest, sizeof(oldest));
	ndkim = t->ndkim < AUTH_HEADER_DKIM_MAX ? t->ndkim :
	    AUTH_HEADER_DKIM_MAX;
	while ((len = authres_format(out, outsz, t->ctx->hostname, items,
	    n)) < 0 && ndkim > 1) {
		/* items[1 .. ndkim] are the DKIM results. */
		for (i = ndkim; i + 1 < n; i++)
			items[i] = items[i + 1];
		n--;
		ndkim--;
	}
	return len > 0 ? (size_t)len : 0;
}

size_t
auth_header(const struct auth_txn *t, char *out, size_t outsz)
{
	struct authres_item item;
	int n;

	if (!t->ctx->policy.add_header || !t->spf_done)
		return 0;
	if (t->decided)
		return auth_header_all(t, out, outsz);
	memset(&item, 0, sizeof(item));
	auth_item_spf(t, &item);
	n = authres_format(out, outsz, t->ctx->hostname, &item, 1);
	return n > 0 ? (size_t)n : 0;
}

int
auth_seal(struct auth_txn *t, struct buf *out, const char **skip_reason)
{
	char results[AUTH_HEADER_MAX];
	size_t n;

	if (t->ctx->policy.sealer == NULL || t->seal == NULL)
		return 0;
	if (!t->decided || t->verdict.reject)
		fatal_invariant("ARC seal before an accepting verdict");
	if ((n = auth_header_all(t, results, sizeof(results))) == 0) {
		*skip_reason = "results do not fit a header field";
		return -1;
	}
	if (arc_seal(t->ctx->policy.sealer, t->seal,
	    dkim_verifier_header(t->dkim), results, n,
	    t->arc_ran ? t->arc_res.result : ARC_NONE, time(NULL), out,
	    skip_reason) < 0)
		return -1;
	return 1;
}

/* ---- DKIM ---- */

static void
auth_verifiers_start(struct auth_txn *t)
{
	if (t->dkim == NULL)
		t->dkim = dkim_verifier_new(t->ctx->dns, t->ctx->loop, NULL);
	if (t->arc == NULL)
		t->arc = arc_verifier_new(t->ctx->dns, t->ctx->loop, 0);
	if (t->seal == NULL && t->ctx->policy.sealer != NULL) {
		t->seal = xmalloc(sizeof(*t->seal));
		arc_seal_input_init(t->seal);
	}
}

static void
auth_feed(struct auth_txn *t, const char *data, size_t len)
{
	dkim_verifier_update(t->dkim, data, len);
	arc_verifier_update(t->arc, data, len);
	if (t->seal != NULL)
		arc_seal_input_update(t->seal, dkim_verifier_header(t->dkim),
		    data, len);
}

void
auth_data(struct auth_txn *t, const char *data, size_t len)
{
	const char *lf;
	size_t i = 0, from = 0;

	auth_verifiers_start(t);
	/*
	 * Remove dot-stuffing: DKIM covers the message, not its transport.
	 * Only the first byte of each line can be a stuffed dot.
	 */
	while (i < len) {
		if (t->line_start && data[i] == '.') {
			if (i > from)
				auth_feed(t, data + from, i - from);
			from = i + 1;
		}
		lf = memchr(data + i, '\n', len - i);
		t->line_start = lf != NULL;
		i = lf != NULL ? (size_t)(lf - data) + 1 : len;
	}
	if (len > from)
		auth_feed(t, data + from, len - from);
}

/* ---- the verdict ---- */

static int
auth_dkim_pass(const struct dkim_sig_result *r)
{
	return r->result == DKIM_PASS && !r->testing;
}

static void
auth_summary(struct auth_txn *t)
{
	struct auth_verdict *v = &t->verdict;
	const char *dkim;
	size_t i, n;
	int pass = 0;

	for (i = 0; i < t->ndkim; i++)
		pass |= auth_dkim_pass(&t->dkim_res[i]);
	if (t->ndkim == 0)
		dkim = "none";
	else if (pass)
		dkim = "pass";
	else
		dkim = "fail";
	n = (size_t)snprintf(v->summary, sizeof(v->summary),
	    "spf=%s dkim=%s", spf_result_str(t->spf_out.result), dkim);
	if (n < sizeof(v->summary))
		snprintf(v->summary + n, sizeof(v->summary) - n,
		    " dmarc=%s arc=%s", t->dmarc_ran ?
		    dmarc_status_str(t->dmarc_res.status) : "none",
		    t->arc_ran ? arc_result_str(t->arc_res.result) : "none");
}

static void
auth_reject(struct auth_txn *t, const char *enhanced, const char *fmt,
    const char *arg)
{
	t->verdict.reject = 1;
	t->verdict.code = 550;
	t->verdict.enhanced = enhanced;
	snprintf(t->verdict.text, sizeof(t->verdict.text), fmt, arg);
}

/* Non-zero when domain is one of the operator's trusted ARC sealers. */
static int
auth_trusted_sealer(const struct auth_txn *t, const char *domain)
{
	const struct auth_policy *p = &t->ctx->policy;
	size_t i;

	for (i = 0; i < p->narc_trusted; i++)
		if (strcasecmp(p->arc_trusted[i], domain) == 0)
			return 1;
	return 0;
}

/*
 * Non-zero when a sealer the operator trusts vouches for the message
 * (RFC 8617 section 7.2 leaves this to local policy): the chain passes,
 * the newest ARC-Seal has a trusted d=, and that hop's
 * ARC-Authentication-Results record dmarc=pass, or with dmarc_only
 * unset also spf=pass or dkim=pass.
 */
static int
auth_arc_vouches(const struct auth_txn *t, int dmarc_only)
{
	static const char *const methods[] = { "dmarc", "spf", "dkim" };
	char result[16];
	size_t i;

	if (!t->arc_ran || t->arc_res.result != ARC_PASS ||
	    !auth_trusted_sealer(t, t->arc_res.domain))
		return 0;
	for (i = 0; i < (dmarc_only ? 1 : 3); i++)
		if (authres_find_result(t->arc_res.aar, methods[i], result,
		    sizeof(result)) && strcmp(result, "pass") == 0)
			return 1;
	return 0;
}

/*
 * Return non-zero when a DNS failure left open a result that could have
 * let the message through.  That is a DKIM signature or SPF check that
 * ended in temperror, or a trusted sealer's chain that failed on a key
 * lookup.  With aligned set, only domains aligned with the From domain
 * count (RFC 7489 section 3.1).
 */
static int
auth_dns_doubt(const struct auth_txn *t, int aligned)
{
	const struct dkim_sig_result *r;
	size_t i;

	for (i = 0; i < t->ndkim; i++) {
		r = &t->dkim_res[i];
		if (r->result == DKIM_TEMPERROR && !r->testing && (!aligned ||
		    (t->from_domain[0] != '\0' && dmarc_aligned(t->ctx->psl,
		    r->domain, t->from_domain, DMARC_ALIGN_RELAXED))))
			return 1;
	}
	if (t->spf_out.result == SPF_TEMPERROR && (!aligned ||
	    (t->from_domain[0] != '\0' && t->spf_out.domain[0] != '\0' &&
	    dmarc_aligned(t->ctx->psl, t->spf_out.domain, t->from_domain,
	    DMARC_ALIGN_RELAXED))))
		return 1;
	return t->arc_ran && t->arc_res.result == ARC_FAIL &&
	    t->arc_res.dns_error && auth_trusted_sealer(t, t->arc_res.domain);
}

/*
 * Answer 451 instead of a rejection that a DNS failure may have caused:
 * the sender retries, and a DNS failure never becomes a permanent
 * refusal.  RFC 3463: X.4.3 is a directory server failure.
 */
static void
auth_defer(struct auth_txn *t)
{
	t->verdict.reject = 1;
	t->verdict.code = 451;
	t->verdict.enhanced = "4.4.3";
	snprintf(t->verdict.text, sizeof(t->verdict.text), "Temporary DNS "
	    "failure while authenticating the message; try again later");
}

/*
 * Returns non-zero when a rejecting rule is overridden by a trusted
 * sealer, and records that for the results.
 */
static int
auth_overridden(struct auth_txn *t, int dmarc_only)
{
	if (!auth_arc_vouches(t, dmarc_only))
		return 0;
	t->arc_override = 1;
	return 1;
}

/* Apply the operator's policy to the results. */
static void
auth_decide(struct auth_txn *t)
{
	const struct auth_policy *p = &t->ctx->policy;
	const struct dmarc_result *d = &t->dmarc_res;
	int dkim_pass = 0, dkim_aligned = 0;
	size_t i;

	for (i = 0; i < t->ndkim; i++) {
		if (!auth_dkim_pass(&t->dkim_res[i]))
			continue;
		dkim_pass = 1;
		if (t->from_domain[0] != '\0' && dmarc_aligned(t->ctx->psl,
		    t->dkim_res[i].domain, t->from_domain, DMARC_ALIGN_RELAXED))
			dkim_aligned = 1;
	}
	if (t->dmarc_ran && d->status == DMARC_FAIL &&
	    ((d->policy == DMARC_POLICY_REJECT &&
	    p->dmarc_reject == AUTH_REJECT) ||
	    (d->policy == DMARC_POLICY_QUARANTINE &&
	    p->dmarc_quarantine == AUTH_REJECT)) && !auth_overridden(t, 1)) {
		if (auth_dns_doubt(t, 1))
			auth_defer(t);
		else
			auth_reject(t, "5.7.1", "Message rejected: it fails "
			    "the DMARC policy of %s", d->from_domain);
		return;
	}
	if (t->spf_out.result == SPF_FAIL && !dkim_aligned &&
	    p->spf_fail == AUTH_REJECT && !auth_overridden(t, 0)) {
		if (auth_dns_doubt(t, 1))
			auth_defer(t);
		else	/* RFC 7372 section 3.2: 5.7.23 for an SPF failure. */
			auth_reject(t, "5.7.23", "SPF check failed for %s",
			    t->spf_out.domain);
		return;
	}
	if (t->spf_out.result != SPF_PASS && !dkim_pass &&
	    p->unauthenticated == AUTH_REJECT && !auth_overridden(t, 0)) {
		if (auth_dns_doubt(t, 0))
			auth_defer(t);
		else
			auth_reject(t, "5.7.26", "Message rejected: %s",
			    "neither SPF nor DKIM authenticates the sender");
	}
}

static void
auth_done(struct auth_txn *t)
{
	auth_cb *cb = t->cb;
	size_t n;

	auth_summary(t);
	if (!t->verdict.reject)
		auth_decide(t);
	n = strlen(t->verdict.summary);
	if (t->arc_override)
		snprintf(t->verdict.summary + n, sizeof(t->verdict.summary) - n,
		    " arc-override=%s", t->arc_res.domain);
	t->decided = 1;
	t->cb = NULL;
	cb(t->arg, &t->verdict);
}

static void
auth_dmarc_cb(void *arg, const struct dmarc_result *res)
{
	struct auth_txn *t = arg;

	t->dmarc = NULL;
	t->dmarc_res = *res;
	t->dmarc_ran = 1;
	auth_done(t);
}

/*
 * Read the author domain.  RFC 7489 section 6.6.1: a message without a
 * From field, with several, or with several author domains is rejected;
 * RFC 5322 section 3.6 allows exactly one From field.  Returns 0, or -1
 * after setting a rejecting verdict.
 */
static int
auth_from_domain(struct auth_txn *t)
{
	const struct msghdr_section *h = dkim_verifier_header(t->dkim);
	const char *values[AUTH_FROM_FIELDS_MAX];
	size_t lens[AUTH_FROM_FIELDS_MAX], n = 0, i = 0;
	struct dmarc_from from;

	while (h != NULL && n < AUTH_FROM_FIELDS_MAX &&
	    (i = msghdr_find(h, "From", i)) != MSGHDR_NONE) {
		values[n] = msghdr_raw_value(h, i, &lens[n]);
		n++;
		i++;
	}
	switch (dmarc_from_parse(&from, values, lens, n)) {
	case DMARC_FROM_OK:
		snprintf(t->from_domain, sizeof(t->from_domain), "%s",
		    from.domains[0]);
		return 0;
	case DMARC_FROM_MISSING:
		auth_reject(t, "5.7.1", "Message has no From header field%s",
		    " (RFC 5322 section 3.6)");
		return -1;
	case DMARC_FROM_MULTIPLE_FIELDS:
		auth_reject(t, "5.7.1", "Message has more than one From header "
		    "field%s", " (RFC 5322 section 3.6)");
		return -1;
	case DMARC_FROM_MULTIPLE_DOMAINS:
		auth_reject(t, "5.7.1", "From header field names authors in "
		    "several domains%s", "");
		return -1;
	case DMARC_FROM_UNPARSEABLE:
		break;
	}
	auth_reject(t, "5.7.1", "From header field cannot be parsed%s", "");
	return -1;
}

static void auth_arc_cb(void *, const struct arc_chain_result *);

static void
auth_dkim_cb(void *arg, const struct dkim_sig_result *results, size_t count)
{
	struct auth_txn *t = arg;

	t->ndkim = count < DKIM_RESULTS_MAX ? count : DKIM_RESULTS_MAX;
	if (t->ndkim > 0) {
		t->dkim_res = xcalloc(t->ndkim, sizeof(results[0]));
		memcpy(t->dkim_res, results, t->ndkim * sizeof(results[0]));
	}
	arc_verifier_finish(t->arc, auth_arc_cb, t);
}

/*
 * The ARC chain (RFC 8617) is verified; a passing chain from a trusted
 * sealer may override a failure in auth_decide().
 */
static void
auth_arc_cb(void *arg, const struct arc_chain_result *res)
{
	struct auth_txn *t = arg;
	struct dmarc_auth a;
	size_t i;

	t->arc_res = *res;
	t->arc_ran = 1;
	if (auth_from_domain(t) < 0) {
		auth_done(t);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.spf_result = spf_result_str(t->spf_out.result);
	a.spf_domain = t->spf_out.domain;
	for (i = 0; i < t->ndkim && a.ndkim < DMARC_DKIM_MAX; i++) {
		if (t->dkim_res[i].testing)
			continue;
		a.dkim[a.ndkim].domain = t->dkim_res[i].domain;
		a.dkim[a.ndkim].result = dkim_result_str(t->dkim_res[i].result);
		a.ndkim++;
	}
	t->dmarc = dmarc_check_start(t->ctx->dns, t->ctx->psl, t->from_domain,
	    &a, auth_dmarc_cb, t);
	if (t->dmarc == NULL) {
		/* An invalid From domain: dmarc.h counts it as permerror. */
		log_info("event=dmarc-invalid-domain");
		auth_done(t);
	}
}

static void
auth_finish_after_spf(void *arg)
{
	struct auth_txn *t = arg;

	auth_verifiers_start(t);
	dkim_verifier_finish(t->dkim, auth_dkim_cb, t);
}

void
auth_finish(struct auth_txn *t, auth_cb *cb, void *arg)
{
	t->cb = cb;
	t->arg = arg;
	memset(&t->verdict, 0, sizeof(t->verdict));
	auth_wait_spf(t, auth_finish_after_spf, t);
}
