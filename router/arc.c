/*
 * ARC chain verification (see arc.h), built on the DKIM building blocks.
 *
 *   update()     header bytes until the empty line; then the ARC sets
 *                are collected, parsed and checked for structure, the
 *                header inputs hashed and the key lookups started
 *   update()     body bytes, hashed for the ARC-Message-Signatures
 *   finish()     the body hashes are finished
 *   report       once no lookup is pending: the newest AMS, then every
 *                ARC-Seal, newest first, then the older AMSs for the
 *                oldest-pass value
 *
 * A structural failure (missing, repeated or invalid fields, wrong cv=
 * values) settles the result at once, and then no lookup starts.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arc.h"
#include "dkim.h"
#include "log.h"
#include "msghdr.h"
#include "xmalloc.h"

enum arc_kind {
	ARC_AAR,
	ARC_AMS,
	ARC_SEAL,
};

static const char *const arc_field_names[] = {
	[ARC_AAR] = "ARC-Authentication-Results",
	[ARC_AMS] = "ARC-Message-Signature",
	[ARC_SEAL] = "ARC-Seal",
};

static const char *const arc_result_names[] = {
	[ARC_NONE] = "none",
	[ARC_PASS] = "pass",
	[ARC_FAIL] = "fail",
};

/* One ARC-Message-Signature or ARC-Seal and its progress. */
struct arc_sig {
	struct arc_verifier	*v;
	size_t			 field;
	struct dkim_sig		 sig;
	struct dns_query	*query;		/* pending key lookup */
	int			 looked_up;	/* a lookup was started */
	struct dkim_key		 key;
	enum dkim_result	 key_result;
	const char		*key_reason;
	unsigned char		 digest[DKIM_HASH_LEN];	/* header hash */
	struct dkim_body_hash	*body;		/* AMS only, NULL if none */
};

/* The fields of one instance; counts catch repeated fields. */
struct arc_set {
	unsigned		 count[3];	/* by enum arc_kind */
	size_t			 aar;		/* field index */
	struct arc_sig		 ams, seal;
};

struct arc_verifier {
	struct dns_ctx		*dns;
	struct ev_loop		*loop;
	time_t			 now;
	struct msghdr_section	 hdr;
	int			 header_done;
	int			 finished;
	/* Sets by instance, allocated as their fields are found. */
	struct arc_set		*sets[ARC_INSTANCE_MAX + 1];
	struct arc_chain_result	 res;
	int			 settled;	/* res is final already */
	/*
	 * One body hash per distinct (body canonicalization, l=) of the
	 * ARC-Message-Signatures, each allocated when one needs it.
	 */
	struct dkim_body_hash	*bodies[ARC_BODY_HASHES];
	size_t			 nbodies;
	size_t			 pending;
	arc_cb			*cb;
	void			*cb_arg;
	ev_timer		 timer;
};

static void arc_timer_cb(struct ev_loop *, ev_timer *, int);

const char *
arc_result_str(enum arc_result r)
{
	if ((size_t)r >= sizeof(arc_result_names) / sizeof(*arc_result_names))
		return "unknown";
	return arc_result_names[r];
}

static int
arc_is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

unsigned
arc_aar_instance(const char *value, size_t len)
{
	size_t pos = 0;
	unsigned n = 0, digits = 0;

	while (pos < len && arc_is_fws((unsigned char)value[pos]))
		pos++;
	if (pos == len || value[pos++] != 'i')
		return 0;
	while (pos < len && arc_is_fws((unsigned char)value[pos]))
		pos++;
	if (pos == len || value[pos++] != '=')
		return 0;
	while (pos < len && arc_is_fws((unsigned char)value[pos]))
		pos++;
	for (; pos < len && isdigit((unsigned char)value[pos]); pos++)
		if (++digits > 2)
			return 0;
		else
			n = n * 10 + (unsigned)(value[pos] - '0');
	while (pos < len && arc_is_fws((unsigned char)value[pos]))
		pos++;
	if (digits == 0 || pos == len || value[pos] != ';' || n < 1 ||
	    n > ARC_INSTANCE_MAX)
		return 0;
	return n;
}

struct arc_verifier *
arc_verifier_new(struct dns_ctx *dns, struct ev_loop *loop, time_t now)
{
	struct arc_verifier *v = xcalloc(1, sizeof(*v));

	v->dns = dns;
	v->loop = loop;
	v->now = now;
	msghdr_init(&v->hdr);
	ev_timer_init(&v->timer, arc_timer_cb, 0., 0.);
	v->timer.data = v;
	return v;
}

/* Settle the chain as fail (or none) with a formatted reason. */
static void
arc_settle(struct arc_verifier *v, enum arc_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
arc_settle(struct arc_verifier *v, enum arc_result r, const char *fmt, ...)
{
	va_list ap;

	v->res.result = r;
	va_start(ap, fmt);
	vsnprintf(v->res.reason, sizeof(v->res.reason), fmt, ap);
	va_end(ap);
	v->settled = 1;
}

/* The kind of ARC field i, or -1 if it is not an ARC field. */
static int
arc_field_kind(const struct msghdr_section *hdr, size_t i)
{
	int k;

	for (k = ARC_AAR; k <= ARC_SEAL; k++)
		if (msghdr_name_is(hdr, i, arc_field_names[k]))
			return k;
	return -1;
}

/*
 * Non-zero when an AMS signs ARC-Seal fields.  RFC 8617 section 4.1.2 bars
 * an AMS from signing any ARC header field, but that is the sealer's
 * rule: only ARC-Seal is rejected here, as the AS of the same set is
 * added after the AMS, so such a signature cannot verify as intended.
 * NOTE: the ValiMail suite's AMSs sign ARC-Authentication-Results and
 * are expected to pass, which a check of all three names would fail.
 */
static int
arc_signs_seals(const struct dkim_sig *sig, const char *value)
{
	const char *name = arc_field_names[ARC_SEAL];
	size_t i;

	for (i = 0; i < sig->h_count; i++)
		if (strlen(name) == sig->h[i].len &&
		    strncasecmp(value + sig->h[i].off, name, sig->h[i].len) == 0)
			return 1;
	return 0;
}

/*
 * Parse ARC field i of kind k into its set.  Returns the instance, or 0
 * with the chain settled as fail.
 */
static unsigned
arc_add_field(struct arc_verifier *v, size_t i, int k)
{
	struct dkim_sig sig;
	struct arc_sig *as;
	const char *value, *reason;
	unsigned inst;
	size_t len;

	value = msghdr_raw_value(&v->hdr, i, &len);
	if (k == ARC_AAR) {
		if ((inst = arc_aar_instance(value, len)) == 0)
			arc_settle(v, ARC_FAIL, "%s without a valid i= tag",
			    arc_field_names[k]);
	} else if (dkim_sig_parse(&sig, k == ARC_AMS ? DKIM_SIG_AMS :
	    DKIM_SIG_SEAL, value, len, &reason) < 0) {
		arc_settle(v, ARC_FAIL, "invalid %s: %s", arc_field_names[k],
		    reason);
		inst = 0;
	} else if (k == ARC_AMS && arc_signs_seals(&sig, value)) {
		arc_settle(v, ARC_FAIL, "invalid %s: h= names ARC-Seal",
		    arc_field_names[k]);
		inst = 0;
	} else {
		inst = sig.instance;
	}
	if (inst == 0)
		return 0;
	if (v->sets[inst] == NULL)
		v->sets[inst] = xcalloc(1, sizeof(*v->sets[inst]));
	if (v->sets[inst]->count[k]++ > 0) {
		arc_settle(v, ARC_FAIL, "more than one %s with i=%u",
		    arc_field_names[k], inst);
		return 0;
	}
	if (k == ARC_AAR) {
		v->sets[inst]->aar = i;
		return inst;
	}
	as = k == ARC_AMS ? &v->sets[inst]->ams : &v->sets[inst]->seal;
	as->v = v;
	as->field = i;
	as->sig = sig;
	return inst;
}

/*
 * Collect the ARC sets (section 5.2 step 1).  Returns the highest
 * instance, 0 when the result is settled (none, or fail).
 */
static unsigned
arc_collect(struct arc_verifier *v)
{
	size_t i, fields = 0;
	unsigned inst, n = 0;
	int k;

	for (i = 0; i < msghdr_count(&v->hdr) && !v->settled; i++) {
		if ((k = arc_field_kind(&v->hdr, i)) < 0)
			continue;
		fields++;
		if ((inst = arc_add_field(v, i, k)) > n)
			n = inst;
	}
	if (v->settled)
		return 0;
	if (fields == 0) {
		arc_settle(v, ARC_NONE, "%s", "");
		return 0;
	}
	if (msghdr_overflow(&v->hdr)) {
		arc_settle(v, ARC_FAIL, "header section too large to verify");
		return 0;
	}
	return n;
}

/*
 * Check the structure of a chain of n sets (section 5.2 steps 2 and 3).
 * Returns 0, or -1 with the chain settled as fail.
 */
static int
arc_check_structure(struct arc_verifier *v, unsigned n)
{
	static const char *const cv_names[] = { "none", "pass", "fail" };
	struct arc_set *s;
	enum dkim_cv want;
	unsigned i;
	int k;

	if (v->sets[n]->count[ARC_SEAL] == 1 &&
	    v->sets[n]->seal.sig.cv == DKIM_CV_FAIL) {
		arc_settle(v, ARC_FAIL, "ARC-Seal i=%u has cv=fail", n);
		return -1;
	}
	for (i = 1; i <= n; i++) {
		if ((s = v->sets[i]) == NULL) {
			arc_settle(v, ARC_FAIL, "ARC set i=%u is missing", i);
			return -1;
		}
		for (k = ARC_AAR; k <= ARC_SEAL; k++)
			if (s->count[k] != 1) {
				arc_settle(v, ARC_FAIL, "ARC set i=%u has no %s",
				    i, arc_field_names[k]);
				return -1;
			}
		want = i == 1 ? DKIM_CV_NONE : DKIM_CV_PASS;
		if (s->seal.sig.cv != want) {
			arc_settle(v, ARC_FAIL, "ARC-Seal i=%u has cv=%s", i,
			    cv_names[s->seal.sig.cv]);
			return -1;
		}
	}
	return 0;
}

/*
 * Compute the header hash input of ARC-Seal i (section 5.1.1): the sets 1
 * to i in order, each as AAR, AMS, AS, all with relaxed canonicalization,
 * the AS of set i without its b= value and line end.
 */
static void
arc_seal_digest(struct arc_verifier *v, unsigned i,
    unsigned char out[DKIM_HASH_LEN])
{
	const struct dkim_sig *sig = &v->sets[i]->seal.sig;
	struct dkim_hash h;
	const char *raw, *value;
	size_t k, len, vlen, fields[3];
	unsigned j;

	dkim_hash_init(&h);
	for (j = 1; j <= i; j++) {
		fields[0] = v->sets[j]->aar;
		fields[1] = v->sets[j]->ams.field;
		fields[2] = v->sets[j]->seal.field;
		for (k = 0; k < 3; k++) {
			raw = msghdr_raw(&v->hdr, fields[k], &len);
			if (j < i || k < 2) {
				dkim_canon_header(&h, DKIM_CANON_RELAXED, raw,
				    len, 0, 0, 0);
				continue;
			}
			value = msghdr_raw_value(&v->hdr, fields[k], &vlen);
			dkim_canon_header(&h, DKIM_CANON_RELAXED, raw, len,
			    (size_t)(value - raw) + sig->b_raw_start,
			    sig->b_raw_end - sig->b_raw_start, 1);
		}
	}
	dkim_hash_final(&h, out);
}

/* The body hash for an AMS, shared by equal ones; NULL when none is left. */
static struct dkim_body_hash *
arc_body_for(struct arc_verifier *v, const struct dkim_sig *sig)
{
	struct dkim_body_hash *b;
	size_t i;

	for (i = 0; i < v->nbodies; i++) {
		b = v->bodies[i];
		if (b->canon == sig->bcanon && b->has_limit == sig->has_l &&
		    (!sig->has_l || b->limit == sig->l))
			return b;
	}
	if (v->nbodies == ARC_BODY_HASHES)
		return NULL;
	b = xcalloc(1, sizeof(*b));
	v->bodies[v->nbodies++] = b;
	dkim_body_hash_init(b, sig->bcanon, sig->has_l, sig->l);
	return b;
}

static void
arc_key_cb(void *arg, const struct dns_answer *answer)
{
	struct arc_sig *as = arg;
	struct arc_verifier *v = as->v;

	as->query = NULL;
	as->key_result = dkim_key_load(&as->key, &as->sig, answer,
	    &as->key_reason);
	v->pending--;
	if (v->finished && v->pending == 0)
		arc_timer_cb(v->loop, &v->timer, 0);
}

/*
 * Start the key lookup of one signature, unless it is ruled out before.
 * Then key_result and key_reason record why, and the check fails.
 */
static void
arc_sig_start(struct arc_verifier *v, struct arc_sig *as)
{
	char name[DKIM_DOMAIN_MAX + 1];

	as->key_result = DKIM_PERMERROR;
	if (as->sig.alg == DKIM_ALG_RSA_SHA1) {
		as->key_reason = "rsa-sha1 is not accepted (RFC 8301)";
		return;
	}
	if (dkim_sig_check_time(&as->sig, v->now != 0 ? v->now : time(NULL),
	    &as->key_reason) < 0)
		return;
	if (dkim_key_name(&as->sig, name, sizeof(name)) < 0) {
		as->key_reason = "key name too long";
		return;
	}
	as->looked_up = 1;
	v->pending++;
	as->query = dns_lookup(v->dns, name, LDNS_RR_TYPE_TXT, arc_key_cb,
	    as);
}

/* Hash the header inputs and start every lookup of a chain of n sets. */
static void
arc_start(struct arc_verifier *v, unsigned n)
{
	struct arc_sig *ams;
	unsigned i;

	v->res.instances = n;
	memcpy(v->res.domain, v->sets[n]->seal.sig.domain,
	    sizeof(v->res.domain));
	/* Newest first, so that the newest AMS surely gets a body hash. */
	for (i = n; i >= 1; i--) {
		ams = &v->sets[i]->ams;
		dkim_sig_header_digest(&v->hdr, ams->field, &ams->sig,
		    ams->digest);
		ams->body = arc_body_for(v, &ams->sig);
		arc_seal_digest(v, i, v->sets[i]->seal.digest);
		arc_sig_start(v, ams);
		arc_sig_start(v, &v->sets[i]->seal);
	}
}

static void
arc_header_done(struct arc_verifier *v)
{
	unsigned n;

	v->header_done = 1;
	if ((n = arc_collect(v)) == 0 || arc_check_structure(v, n) < 0)
		return;
	arc_start(v, n);
}

void
arc_verifier_update(struct arc_verifier *v, const char *p, size_t len)
{
	size_t n, i;

	if (v->finished)
		return;
	if (!v->header_done) {
		n = msghdr_update(&v->hdr, p, len);
		p += n;
		len -= n;
		if (!msghdr_done(&v->hdr))
			return;
		arc_header_done(v);
	}
	for (i = 0; i < v->nbodies && len > 0; i++)
		dkim_body_hash_update(v->bodies[i], p, len);
}

/*
 * Check one signature whose lookup has completed.  Returns DKIM_PASS, or
 * another result with the reason in *reason.
 */
static enum dkim_result
arc_sig_verify(const struct arc_sig *as, int message, const char **reason)
{
	const struct dkim_body_hash *b = as->body;

	*reason = as->key_reason;
	if (as->key_result != DKIM_PASS)
		return as->key_result;
	if (message) {
		*reason = "body not hashed: too many distinct AMS body hashes";
		if (b == NULL)
			return DKIM_NEUTRAL;
		*reason = "l= is larger than the body";
		if (as->sig.has_l && as->sig.l > b->canon_len)
			return DKIM_PERMERROR;
		*reason = "body hash mismatch";
		if (as->sig.bh_len != DKIM_HASH_LEN ||
		    memcmp(as->sig.bh, b->digest, DKIM_HASH_LEN) != 0)
			return DKIM_FAIL;
	}
	*reason = "signature mismatch";
	return dkim_verify_digest(&as->key, &as->sig, as->digest);
}

/* Section 5.2 steps 5 to 7: the oldest AMS from which all verify. */
static unsigned
arc_oldest_pass(const struct arc_verifier *v, unsigned n)
{
	const char *reason;
	unsigned i;

	for (i = n - 1; i >= 1; i--)
		if (arc_sig_verify(&v->sets[i]->ams, 1, &reason) != DKIM_PASS)
			return i + 1;
	return 0;
}

/*
 * Steps 4 and 6: the newest AMS, then every seal, newest first.  Any
 * error, a failed key lookup too, is a fail (section 5.2.1).
 */
static void
arc_evaluate(struct arc_verifier *v)
{
	unsigned n = v->res.instances, i;
	enum dkim_result r;
	const char *reason;

	if ((r = arc_sig_verify(&v->sets[n]->ams, 1, &reason)) != DKIM_PASS) {
		v->res.dns_error = r == DKIM_TEMPERROR;
		arc_settle(v, ARC_FAIL, "ARC-Message-Signature i=%u: %s", n,
		    reason);
		return;
	}
	for (i = n; i >= 1; i--)
		if ((r = arc_sig_verify(&v->sets[i]->seal, 0, &reason)) !=
		    DKIM_PASS) {
			v->res.dns_error = r == DKIM_TEMPERROR;
			arc_settle(v, ARC_FAIL, "ARC-Seal i=%u: %s", i, reason);
			return;
		}
	v->res.oldest_pass = arc_oldest_pass(v, n);
	msghdr_value(&v->hdr, v->sets[n]->aar, v->res.aar, sizeof(v->res.aar));
	arc_settle(v, ARC_PASS, "%s", "");
}

/* Report the result once; the callback may free the verifier. */
static void
arc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct arc_verifier *v = w->data;
	struct arc_chain_result res;

	ev_timer_stop(loop, w);
	if (!v->settled)
		arc_evaluate(v);
	res = v->res;
	v->cb(v->cb_arg, &res);
}

void
arc_verifier_finish(struct arc_verifier *v, arc_cb *cb, void *arg)
{
	size_t i;

	if (v->finished)
		return;
	v->finished = 1;
	v->cb = cb;
	v->cb_arg = arg;
	if (!v->header_done) {
		msghdr_finish(&v->hdr);
		arc_header_done(v);
	}
	for (i = 0; i < v->nbodies; i++)
		dkim_body_hash_final(v->bodies[i]);
	if (v->pending == 0)
		ev_timer_start(v->loop, &v->timer);
}

static void
arc_sig_clear(struct arc_sig *as)
{
	if (as->query != NULL)
		dns_cancel(as->query);
	dkim_key_clear(&as->key);
}

void
arc_verifier_free(struct arc_verifier *v)
{
	size_t i;

	if (v == NULL)
		return;
	ev_timer_stop(v->loop, &v->timer);
	for (i = 1; i <= ARC_INSTANCE_MAX; i++) {
		if (v->sets[i] == NULL)
			continue;
		arc_sig_clear(&v->sets[i]->ams);
		arc_sig_clear(&v->sets[i]->seal);
		free(v->sets[i]);
	}
	for (i = 0; i < v->nbodies; i++) {
		dkim_body_hash_clear(v->bodies[i]);
		free(v->bodies[i]);
	}
	msghdr_free(&v->hdr);
	free(v);
}
