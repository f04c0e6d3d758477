/*
 * DMARC evaluation (see dmarc.h).  The file has four parts: the record
 * parser, alignment and evaluation (pure functions, no DNS), the
 * asynchronous check that discovers the record in DNS, and the parser of
 * the From field that yields the author domains.
 *
 * The check is a two-step state machine:
 *
 *   start --> LOOKUP_FROM --(no DMARC record, org differs)--> LOOKUP_ORG
 *                 |                                              |
 *                 +--(record, none, error)--> callback <---------+
 *
 * A DNS failure at either step ends the check with DMARC_TEMPERROR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "dmarc.h"
#include "dns.h"
#include "log.h"
#include "psl.h"
#include "random.h"
#include "str.h"
#include "xmalloc.h"

#define DMARC_PREFIX		"_dmarc."
#define DMARC_DNS_NAME_MAX	253
#define DMARC_RESULT_MAX	16	/* bytes kept of an SPF or DKIM result */
#define DMARC_COMMENT_DEPTH_MAX	32

/* Tags whose repetition is detected; bit positions in a mask. */
enum dmarc_tag {
	DMARC_TAG_V,
	DMARC_TAG_P,
	DMARC_TAG_SP,
	DMARC_TAG_ADKIM,
	DMARC_TAG_ASPF,
	DMARC_TAG_PCT,
	DMARC_TAG_RUA,
	DMARC_TAG_RUF,
	DMARC_TAG_FO,
	DMARC_TAG_RF,
	DMARC_TAG_RI,
	DMARC_TAG_OTHER,
};

static const char *const dmarc_tag_names[] = {
	[DMARC_TAG_V] = "v",
	[DMARC_TAG_P] = "p",
	[DMARC_TAG_SP] = "sp",
	[DMARC_TAG_ADKIM] = "adkim",
	[DMARC_TAG_ASPF] = "aspf",
	[DMARC_TAG_PCT] = "pct",
	[DMARC_TAG_RUA] = "rua",
	[DMARC_TAG_RUF] = "ruf",
	[DMARC_TAG_FO] = "fo",
	[DMARC_TAG_RF] = "rf",
	[DMARC_TAG_RI] = "ri",
};

static const char *const dmarc_status_names[] = {
	[DMARC_NONE] = "none",
	[DMARC_PASS] = "pass",
	[DMARC_FAIL] = "fail",
	[DMARC_TEMPERROR] = "temperror",
	[DMARC_PERMERROR] = "permerror",
};

static const char *const dmarc_policy_names[] = {
	[DMARC_POLICY_NONE] = "none",
	[DMARC_POLICY_QUARANTINE] = "quarantine",
	[DMARC_POLICY_REJECT] = "reject",
};

/* A piece of a string that is not NUL-terminated. */
struct dmarc_span {
	const char	*p;
	size_t		 len;
};

const char *
dmarc_status_str(enum dmarc_status s)
{
	if ((size_t)s >= sizeof(dmarc_status_names) /
	    sizeof(dmarc_status_names[0]))
		return "unknown";
	return dmarc_status_names[s];
}

const char *
dmarc_policy_str(enum dmarc_policy p)
{
	if ((size_t)p >= sizeof(dmarc_policy_names) /
	    sizeof(dmarc_policy_names[0]))
		return "unknown";
	return dmarc_policy_names[p];
}

enum dmarc_policy
dmarc_policy_stricter(enum dmarc_policy a, enum dmarc_policy b)
{
	return a > b ? a : b;
}

/*
 * Record parsing.
 */

static int
dmarc_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static struct dmarc_span
dmarc_trim(struct dmarc_span s)
{
	while (s.len > 0 && dmarc_is_wsp(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && dmarc_is_wsp(s.p[s.len - 1]))
		s.len--;
	return s;
}

static int
dmarc_span_is(struct dmarc_span s, const char *word)
{
	return s.len == strlen(word) && strncasecmp(s.p, word, s.len) == 0;
}

/*
 * Split s at its first ';' into *spec and *rest.  Returns 0 when s is
 * empty (nothing left), 1 otherwise.
 */
static int
dmarc_next_spec(struct dmarc_span *s, struct dmarc_span *spec)
{
	const char *semi;

	if (s->len == 0)
		return 0;
	semi = memchr(s->p, ';', s->len);
	spec->p = s->p;
	spec->len = semi != NULL ? (size_t)(semi - s->p) : s->len;
	s->p += spec->len;
	s->len -= spec->len;
	if (semi != NULL) {
		s->p++;
		s->len--;
	}
	return 1;
}

/*
 * Split one tag-spec into a trimmed name and value.  Returns -1 when it
 * has no '=' or an empty name.
 */
static int
dmarc_split_spec(struct dmarc_span spec, struct dmarc_span *name,
    struct dmarc_span *value)
{
	const char *eq = memchr(spec.p, '=', spec.len);

	if (eq == NULL)
		return -1;
	name->p = spec.p;
	name->len = (size_t)(eq - spec.p);
	*name = dmarc_trim(*name);
	value->p = eq + 1;
	value->len = spec.len - (size_t)(eq - spec.p) - 1;
	*value = dmarc_trim(*value);
	return name->len > 0 ? 0 : -1;
}

static enum dmarc_tag
dmarc_tag_of(struct dmarc_span name)
{
	size_t i;

	for (i = 0; i < DMARC_TAG_OTHER; i++)
		if (dmarc_span_is(name, dmarc_tag_names[i]))
			return (enum dmarc_tag)i;
	return DMARC_TAG_OTHER;
}

/* Parse a p or sp value.  Returns 0, or -1 when it is not a keyword. */
static int
dmarc_parse_policy(struct dmarc_span v, enum dmarc_policy *out)
{
	if (dmarc_span_is(v, "none"))
		*out = DMARC_POLICY_NONE;
	else if (dmarc_span_is(v, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (dmarc_span_is(v, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* Parse adkim or aspf; an invalid value keeps the default (relaxed). */
static enum dmarc_align
dmarc_parse_align(struct dmarc_span v)
{
	return dmarc_span_is(v, "s") ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
}

/* Parse pct: 1 to 3 digits, at most 100; anything else gives 100. */
static unsigned
dmarc_parse_pct(struct dmarc_span v)
{
	unsigned n = 0;
	size_t i;

	if (v.len == 0 || v.len > 3)
		return 100;
	for (i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return 100;
		n = n * 10 + (unsigned)(v.p[i] - '0');
	}
	return n <= 100 ? n : 100;
}

/* A URI character other than the list separators ',' and '!'. */
static int
dmarc_is_uri_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("-._~:/?#[]@$&'()*+;=%", c) != NULL);
}

/*
 * Whether one element of a DMARC URI list is valid: an RFC 3986 scheme,
 * ':', at least one URI character, and an optional size limit
 * ("!" digits and one of k, m, g, t).
 */
static int
dmarc_uri_valid(struct dmarc_span u)
{
	size_t i = 0, scheme;

	while (i < u.len && ((u.p[i] >= 'a' && u.p[i] <= 'z') ||
	    (u.p[i] >= 'A' && u.p[i] <= 'Z') ||
	    (i > 0 && ((u.p[i] >= '0' && u.p[i] <= '9') ||
	    u.p[i] == '+' || u.p[i] == '-' || u.p[i] == '.'))))
		i++;
	scheme = i;
	if (scheme == 0 || i >= u.len || u.p[i++] != ':')
		return 0;
	while (i < u.len && dmarc_is_uri_char(u.p[i]))
		i++;
	if (i == scheme + 1)
		return 0;
	if (i < u.len && u.p[i] == '!') {
		size_t digits = ++i;

		while (i < u.len && u.p[i] >= '0' && u.p[i] <= '9')
			i++;
		if (i == digits)
			return 0;
		if (i < u.len && strchr("kmgtKMGT", u.p[i]) != NULL)
			i++;
	}
	return i == u.len;
}

/* Whether a rua list contains at least one valid URI. */
static int
dmarc_uri_list_valid(struct dmarc_span v)
{
	while (v.len > 0) {
		const char *comma = memchr(v.p, ',', v.len);
		struct dmarc_span u = { v.p, comma ? (size_t)(comma - v.p) :
		    v.len };

		if (dmarc_uri_valid(dmarc_trim(u)))
			return 1;
		v.p += u.len;
		v.len -= u.len;
		if (comma != NULL) {
			v.p++;
			v.len--;
		}
	}
	return 0;
}

/* Whether the first tag-spec is exactly v=DMARC1 (WSP allowed around =). */
static int
dmarc_is_version_spec(struct dmarc_span spec)
{
	struct dmarc_span name, value;

	if (dmarc_split_spec(spec, &name, &value) == -1)
		return 0;
	return dmarc_span_is(name, "v") && value.len == 6 &&
	    memcmp(value.p, "DMARC1", 6) == 0;
}

/* The result of the tags after v, before the p/sp rules of 6.6.3. */
struct dmarc_tags {
	int		 p_valid;
	int		 sp_invalid;
	int		 repeated;
};

static void
dmarc_apply_tag(struct dmarc_record *rec, struct dmarc_tags *t,
    enum dmarc_tag tag, struct dmarc_span value)
{
	switch (tag) {
	case DMARC_TAG_P:
		t->p_valid = dmarc_parse_policy(value, &rec->p) == 0;
		break;
	case DMARC_TAG_SP:
		rec->sp_set = dmarc_parse_policy(value, &rec->sp) == 0;
		t->sp_invalid = !rec->sp_set;
		break;
	case DMARC_TAG_ADKIM:
		rec->adkim = dmarc_parse_align(value);
		break;
	case DMARC_TAG_ASPF:
		rec->aspf = dmarc_parse_align(value);
		break;
	case DMARC_TAG_PCT:
		rec->pct = dmarc_parse_pct(value);
		break;
	case DMARC_TAG_RUA:
		rec->rua_valid = dmarc_uri_list_valid(value);
		break;
	default:
		/* Reporting tags (ruf, fo, rf, ri) and unknown tags. */
		break;
	}
}

enum dmarc_parse_status
dmarc_record_parse(struct dmarc_record *out, const char *txt, size_t len)
{
	struct dmarc_span rest = { txt, len }, spec, name, value;
	struct dmarc_record rec;
	struct dmarc_tags t = { 0, 0, 0 };
	unsigned seen = 1u << DMARC_TAG_V;
	enum dmarc_tag tag;

	if (!dmarc_next_spec(&rest, &spec) || !dmarc_is_version_spec(spec))
		return DMARC_PARSE_NOT_DMARC;
	memset(&rec, 0, sizeof(rec));
	rec.pct = 100;
	while (dmarc_next_spec(&rest, &spec)) {
		if (dmarc_trim(spec).len == 0 ||
		    dmarc_split_spec(spec, &name, &value) == -1)
			continue;	/* an empty or broken tag-spec */
		tag = dmarc_tag_of(name);
		if (tag != DMARC_TAG_OTHER) {
			if (seen & (1u << tag))
				t.repeated = 1;
			seen |= 1u << tag;
		}
		dmarc_apply_tag(&rec, &t, tag, value);
	}
	if (t.repeated)
		return DMARC_PARSE_INVALID;
	if (!t.p_valid || t.sp_invalid) {
		if (!rec.rua_valid)
			return DMARC_PARSE_INVALID;
		rec.p_fallback = 1;
		rec.p = DMARC_POLICY_NONE;
		rec.sp_set = 0;
	}
	if (!rec.sp_set)
		rec.sp = rec.p;
	*out = rec;
	return DMARC_PARSE_OK;
}

/*
 * Alignment and evaluation.
 */

/*
 * Write the ASCII form of a domain name into out (DMARC_DOMAIN_MAX
 * bytes).  Returns 0, or -1 when it is not a domain name: only letters,
 * digits, '-' and '_' in labels of at most 63 octets.
 */
static int
dmarc_normalize(const char *domain, char out[DMARC_DOMAIN_MAX])
{
	size_t i;

	if (domain == NULL ||
	    psl_domain_to_ascii(domain, out, DMARC_DOMAIN_MAX) == -1)
		return -1;
	for (i = 0; out[i] != '\0'; i++) {
		char c = out[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.')) {
			out[0] = '\0';
			return -1;
		}
	}
	return 0;
}

/* The Organizational Domain of an ASCII domain, or the domain itself. */
static void
dmarc_org_of(const struct psl *psl, const char *domain,
    char out[DMARC_DOMAIN_MAX])
{
	if (psl_org_domain(psl, domain, out, DMARC_DOMAIN_MAX) == -1)
		str_copy(out, domain, DMARC_DOMAIN_MAX);
}

int
dmarc_aligned(const struct psl *psl, const char *a, const char *b,
    enum dmarc_align mode)
{
	char na[DMARC_DOMAIN_MAX], nb[DMARC_DOMAIN_MAX];
	char oa[DMARC_DOMAIN_MAX], ob[DMARC_DOMAIN_MAX];

	if (dmarc_normalize(a, na) == -1 || dmarc_normalize(b, nb) == -1)
		return 0;
	if (strcmp(na, nb) == 0)
		return 1;
	if (mode == DMARC_ALIGN_STRICT)
		return 0;
	dmarc_org_of(psl, na, oa);
	dmarc_org_of(psl, nb, ob);
	return strcmp(oa, ob) == 0;
}

static int
dmarc_is_pass(const char *result)
{
	return result != NULL && strcasecmp(result, "pass") == 0;
}

static int
dmarc_dkim_aligned(const struct psl *psl, const char *from,
    const struct dmarc_record *rec, const struct dmarc_auth *auth)
{
	size_t i, n = auth->ndkim < DMARC_DKIM_MAX ? auth->ndkim :
	    DMARC_DKIM_MAX;

	for (i = 0; i < n; i++)
		if (dmarc_is_pass(auth->dkim[i].result) &&
		    dmarc_aligned(psl, auth->dkim[i].domain, from, rec->adkim))
			return 1;
	return 0;
}

static const char *
dmarc_pass_reason(int spf, int dkim)
{
	if (spf && dkim)
		return "aligned SPF and DKIM pass";
	return spf ? "aligned SPF pass" : "aligned DKIM pass";
}

/* Lower a failing message's policy when the pct draw excludes it. */
static void
dmarc_sample(const struct dmarc_record *rec, const struct dmarc_auth *auth,
    struct dmarc_result *res)
{
	uint32_t draw;

	res->policy = res->requested;
	if (res->requested == DMARC_POLICY_NONE || rec->pct >= 100)
		return;
	draw = auth->pct_draw != NULL ? *auth->pct_draw % 100 :
	    random_uniform(100);
	if (draw < rec->pct)
		return;
	res->sampled_out = 1;
	res->policy = res->requested == DMARC_POLICY_REJECT ?
	    DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

/* Fill the domain fields of res; the rest is zeroed. */
static void
dmarc_result_init(struct dmarc_result *res, const struct psl *psl,
    const char *from_domain, const char *record_domain)
{
	memset(res, 0, sizeof(*res));
	str_copy(res->from_domain, from_domain, sizeof(res->from_domain));
	dmarc_org_of(psl, from_domain, res->org_domain);
	if (record_domain != NULL)
		str_copy(res->record_domain, record_domain,
		    sizeof(res->record_domain));
}

void
dmarc_evaluate(const struct psl *psl, const char *from_domain,
    const char *record_domain, const struct dmarc_record *rec,
    const struct dmarc_auth *auth, struct dmarc_result *res)
{
	dmarc_result_init(res, psl, from_domain, record_domain);
	res->record = *rec;
	res->spf_aligned = dmarc_is_pass(auth->spf_result) &&
	    dmarc_aligned(psl, auth->spf_domain, from_domain, rec->aspf);
	res->dkim_aligned = dmarc_dkim_aligned(psl, from_domain, rec, auth);
	res->used_sp = strcasecmp(record_domain, from_domain) != 0 &&
	    rec->sp_set;
	res->requested = res->used_sp ? rec->sp : rec->p;
	if (res->spf_aligned || res->dkim_aligned) {
		res->status = DMARC_PASS;
		res->reason = dmarc_pass_reason(res->spf_aligned,
		    res->dkim_aligned);
		return;
	}
	res->status = DMARC_FAIL;
	res->reason = "no aligned SPF or DKIM pass";
	dmarc_sample(rec, auth, res);
}

/*
 * The asynchronous check.
 */

enum dmarc_step {
	DMARC_STEP_FROM,	/* TXT _dmarc.FROM-DOMAIN */
	DMARC_STEP_ORG,		/* TXT _dmarc.ORG-DOMAIN */
};

struct dmarc_check {
	struct dns_ctx		*dns;
	const struct psl	*psl;
	dmarc_cb		*cb;
	void			*arg;
	struct dns_query	*query;		/* NULL once answered */
	enum dmarc_step		 step;
	char			 from[DMARC_DOMAIN_MAX];
	char			 org[DMARC_DOMAIN_MAX];
	/* auth with its strings copied into the buffers below. */
	struct dmarc_auth	 auth;
	char			 spf_result[DMARC_RESULT_MAX];
	char			 spf_domain[DMARC_DOMAIN_MAX];
	/* auth.ndkim entries each, allocated when there are DKIM results. */
	char			(*dkim_domain)[DMARC_DOMAIN_MAX];
	char			(*dkim_result)[DMARC_RESULT_MAX];
	uint32_t		 draw;
};

static void	dmarc_on_answer(void *, const struct dns_answer *);

/* Copy src into buf and return buf, or NULL for a NULL src. */
static const char *
dmarc_copy(char *buf, size_t size, const char *src)
{
	if (src == NULL)
		return NULL;
	str_copy(buf, src, size);
	return buf;
}

static void
dmarc_copy_auth(struct dmarc_check *chk, const struct dmarc_auth *auth)
{
	size_t i;

	chk->auth.spf_result = dmarc_copy(chk->spf_result,
	    sizeof(chk->spf_result), auth->spf_result);
	chk->auth.spf_domain = dmarc_copy(chk->spf_domain,
	    sizeof(chk->spf_domain), auth->spf_domain);
	chk->auth.ndkim = auth->ndkim < DMARC_DKIM_MAX ? auth->ndkim :
	    DMARC_DKIM_MAX;
	if (chk->auth.ndkim > 0) {
		chk->dkim_domain = xcalloc(chk->auth.ndkim,
		    sizeof(chk->dkim_domain[0]));
		chk->dkim_result = xcalloc(chk->auth.ndkim,
		    sizeof(chk->dkim_result[0]));
	}
	for (i = 0; i < chk->auth.ndkim; i++) {
		chk->auth.dkim[i].domain = dmarc_copy(chk->dkim_domain[i],
		    DMARC_DOMAIN_MAX, auth->dkim[i].domain);
		chk->auth.dkim[i].result = dmarc_copy(chk->dkim_result[i],
		    DMARC_RESULT_MAX, auth->dkim[i].result);
	}
	if (auth->pct_draw != NULL) {
		chk->draw = *auth->pct_draw;
		chk->auth.pct_draw = &chk->draw;
	}
}

/* Whether _dmarc.DOMAIN fits in a DNS name. */
static int
dmarc_name_fits(const char *domain)
{
	return strlen(DMARC_PREFIX) + strlen(domain) <= DMARC_DNS_NAME_MAX;
}

static void
dmarc_lookup(struct dmarc_check *chk, enum dmarc_step step)
{
	/* Room for any domain; dmarc_name_fits() keeps it under 254. */
	char name[sizeof(DMARC_PREFIX) + DMARC_DOMAIN_MAX + 1];

	chk->step = step;
	snprintf(name, sizeof(name), DMARC_PREFIX "%s.",
	    step == DMARC_STEP_FROM ? chk->from : chk->org);
	chk->query = dns_lookup(chk->dns, name, LDNS_RR_TYPE_TXT,
	    dmarc_on_answer, chk);
}

static void
dmarc_check_free(struct dmarc_check *chk)
{
	free(chk->dkim_domain);
	free(chk->dkim_result);
	free(chk);
}

struct dmarc_check *
dmarc_check_start(struct dns_ctx *dns, const struct psl *psl,
    const char *from_domain, const struct dmarc_auth *auth, dmarc_cb *cb,
    void *arg)
{
	struct dmarc_check *chk;
	char from[DMARC_DOMAIN_MAX], org[DMARC_DOMAIN_MAX];

	if (psl == NULL)
		fatal_invariant("DMARC check without a public suffix list");
	if (dmarc_normalize(from_domain, from) == -1)
		return NULL;
	dmarc_org_of(psl, from, org);
	if (!dmarc_name_fits(org))
		return NULL;
	chk = xcalloc(1, sizeof(*chk));
	chk->dns = dns;
	chk->psl = psl;
	chk->cb = cb;
	chk->arg = arg;
	memcpy(chk->from, from, sizeof(from));
	memcpy(chk->org, org, sizeof(org));
	dmarc_copy_auth(chk, auth);
	/* A name too long for DNS has no record: go on at the org domain. */
	dmarc_lookup(chk, dmarc_name_fits(from) ? DMARC_STEP_FROM :
	    DMARC_STEP_ORG);
	return chk;
}

void
dmarc_cancel(struct dmarc_check *chk)
{
	if (chk == NULL)
		return;
	if (chk->query != NULL)
		dns_cancel(chk->query);
	dmarc_check_free(chk);
}

/* Run the callback with a result that has no record, and free chk. */
static void
dmarc_finish_plain(struct dmarc_check *chk, enum dmarc_status status,
    const char *record_domain, const char *reason)
{
	struct dmarc_result res;

	dmarc_result_init(&res, chk->psl, chk->from, record_domain);
	res.status = status;
	res.reason = reason;
	log_debug("dmarc: domain=%s result=%s reason=\"%s\"", chk->from,
	    dmarc_status_str(status), reason);
	chk->cb(chk->arg, &res);
	dmarc_check_free(chk);
}

static void
dmarc_finish_record(struct dmarc_check *chk, const char *record_domain,
    const struct dmarc_record *rec)
{
	struct dmarc_result res;

	dmarc_evaluate(chk->psl, chk->from, record_domain, rec, &chk->auth,
	    &res);
	log_debug("dmarc: domain=%s record=%s result=%s policy=%s "
	    "reason=\"%s\"", chk->from, record_domain,
	    dmarc_status_str(res.status), dmarc_policy_str(res.policy),
	    res.reason);
	chk->cb(chk->arg, &res);
	dmarc_check_free(chk);
}

/*
 * Join the character-strings of one TXT record into a new buffer of
 * *len bytes (bounded by the record's RDATA, at most 65535 bytes).
 * Returns NULL when the record is malformed.
 */
static char *
dmarc_join_txt(const ldns_rr *rr, size_t *len)
{
	size_t i, total = 0;
	char *text;

	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT)
		return NULL;
	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *rdf = ldns_rr_rdf(rr, i);

		/* A character-string is a length octet and that many bytes. */
		if (ldns_rdf_size(rdf) < 1 ||
		    (size_t)ldns_rdf_data(rdf)[0] + 1 != ldns_rdf_size(rdf))
			return NULL;
		total += ldns_rdf_size(rdf) - 1;
	}
	text = xmalloc(total + 1);
	*len = 0;
	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *rdf = ldns_rr_rdf(rr, i);

		memcpy(text + *len, ldns_rdf_data(rdf) + 1,
		    ldns_rdf_size(rdf) - 1);
		*len += ldns_rdf_size(rdf) - 1;
	}
	text[*len] = '\0';
	return text;
}

/*
 * Parse the TXT records of an answer.  Returns the number of DMARC
 * records (valid or not) and the parse status of the first in *first.
 */
static size_t
dmarc_scan_records(const ldns_rr_list *rrs, struct dmarc_record *rec,
    enum dmarc_parse_status *first)
{
	size_t i, n = 0, len = 0;

	for (i = 0; rrs != NULL && i < ldns_rr_list_rr_count(rrs); i++) {
		char *text = dmarc_join_txt(ldns_rr_list_rr(rrs, i), &len);
		struct dmarc_record tmp;
		enum dmarc_parse_status st;

		if (text == NULL)
			continue;
		st = dmarc_record_parse(&tmp, text, len);
		free(text);
		if (st == DMARC_PARSE_NOT_DMARC)
			continue;
		if (n++ == 0) {
			*first = st;
			*rec = tmp;
		}
	}
	return n;
}

static void
dmarc_on_answer(void *arg, const struct dns_answer *ans)
{
	struct dmarc_check *chk = arg;
	const char *domain = chk->step == DMARC_STEP_FROM ? chk->from :
	    chk->org;
	enum dmarc_parse_status st = DMARC_PARSE_NOT_DMARC;
	struct dmarc_record rec;
	size_t n = 0;

	chk->query = NULL;
	if (ans->status == DNS_SERVFAIL || ans->status == DNS_TIMEOUT) {
		dmarc_finish_plain(chk, DMARC_TEMPERROR, NULL,
		    "DMARC record lookup failed");
		return;
	}
	if (ans->status == DNS_OK)
		n = dmarc_scan_records(ans->rrs, &rec, &st);
	if (n > 1)
		dmarc_finish_plain(chk, DMARC_PERMERROR, domain,
		    "several DMARC records");
	else if (n == 1 && st == DMARC_PARSE_INVALID)
		dmarc_finish_plain(chk, DMARC_PERMERROR, domain,
		    "invalid DMARC record");
	else if (n == 1)
		dmarc_finish_record(chk, domain, &rec);
	else if (chk->step == DMARC_STEP_FROM && strcmp(chk->from,
	    chk->org) != 0)
		dmarc_lookup(chk, DMARC_STEP_ORG);
	else
		dmarc_finish_plain(chk, DMARC_NONE, NULL, "no DMARC record");
}

/*
 * The From field (RFC 5322 section 3.4).
 *
 * A lexer turns the field into tokens and skips white space and comments
 * (CFWS).  A recursive-descent parser over the tokens finds the domain of
 * every mailbox.  Nothing is allocated, because the tokens point into the
 * field.
 */

enum from_tok {
	FROM_TOK_END,
	FROM_TOK_ATOM,		/* atext and '.', so a dot-atom is one token */
	FROM_TOK_QSTRING,
	FROM_TOK_LITERAL,	/* [domain literal] */
	FROM_TOK_SPECIAL,	/* one of < > @ , ; : */
	FROM_TOK_ERROR,
};

struct from_token {
	enum from_tok	 type;
	const char	*p;
	size_t		 len;
};

struct from_parser {
	const char		*p;
	const char		*end;
	struct from_token	 tok;
	struct dmarc_from	*out;
	size_t			 mailboxes;
};

/* atext of RFC 5322 3.2.3, UTF-8 bytes (RFC 6532), and '.'. */
static int
from_is_atom_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* Skip a comment at fp->p (on its '(').  Returns 0, or -1 if malformed. */
static int
from_skip_comment(struct from_parser *fp)
{
	int depth = 0;

	while (fp->p < fp->end) {
		char c = *fp->p++;

		if (c == '\\') {
			if (fp->p == fp->end)
				return -1;
			fp->p++;
		} else if (c == '(') {
			if (++depth > DMARC_COMMENT_DEPTH_MAX)
				return -1;
		} else if (c == ')') {
			if (--depth == 0)
				return 0;
		} else if (c == '\0')
			return -1;
	}
	return -1;
}

/* Skip folding white space and comments.  Returns 0, or -1. */
static int
from_skip_cfws(struct from_parser *fp)
{
	while (fp->p < fp->end) {
		char c = *fp->p;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			fp->p++;
		else if (c == '(') {
			if (from_skip_comment(fp) == -1)
				return -1;
		} else
			break;
	}
	return 0;
}

/*
 * Scan a quoted string or a domain literal from its opening character up
 * to the closing one, honouring backslash escapes.  Returns 0, or -1.
 */
static int
from_scan_delimited(struct from_parser *fp, char close)
{
	fp->p++;
	while (fp->p < fp->end) {
		char c = *fp->p++;

		if (c == '\\') {
			if (fp->p == fp->end)
				return -1;
			fp->p++;
		} else if (c == close)
			return 0;
		else if (c == '\0' || (close == ']' && c == '['))
			return -1;
	}
	return -1;
}

/* Read the next token into fp->tok. */
static void
from_next(struct from_parser *fp)
{
	struct from_token *t = &fp->tok;
	unsigned char c;

	t->type = FROM_TOK_ERROR;
	if (from_skip_cfws(fp) == -1)
		return;
	t->p = fp->p;
	t->len = 0;
	if (fp->p == fp->end) {
		t->type = FROM_TOK_END;
		return;
	}
	c = (unsigned char)*fp->p;
	if (c != '\0' && strchr("<>@,;:", c) != NULL) {
		fp->p++;
		t->type = FROM_TOK_SPECIAL;
	} else if (c == '"' || c == '[') {
		if (from_scan_delimited(fp, c == '"' ? '"' : ']') == -1)
			return;
		t->type = c == '"' ? FROM_TOK_QSTRING : FROM_TOK_LITERAL;
	} else if (from_is_atom_char(c)) {
		while (fp->p < fp->end &&
		    from_is_atom_char((unsigned char)*fp->p))
			fp->p++;
		t->type = FROM_TOK_ATOM;
	} else
		return;		/* ')', ']', '\\' or a control character */
	t->len = (size_t)(fp->p - t->p);
}

static int
from_is_special(const struct from_parser *fp, char c)
{
	return fp->tok.type == FROM_TOK_SPECIAL && fp->tok.p[0] == c;
}

static int
from_is_word(const struct from_parser *fp)
{
	return fp->tok.type == FROM_TOK_ATOM ||
	    fp->tok.type == FROM_TOK_QSTRING;
}

/* Skip a run of words (a phrase or a local part).  Returns the count. */
static size_t
from_skip_words(struct from_parser *fp)
{
	size_t n = 0;

	while (from_is_word(fp)) {
		n++;
		from_next(fp);
	}
	return n;
}

/* Record one author domain, lower-cased and as A-labels. */
static int
from_add_domain(struct from_parser *fp, const char *p, size_t len)
{
	struct dmarc_from *out = fp->out;
	char raw[DMARC_DOMAIN_MAX * 4], domain[DMARC_DOMAIN_MAX];
	size_t i;

	if (len >= sizeof(raw))
		return -1;
	memcpy(raw, p, len);
	raw[len] = '\0';
	if (dmarc_normalize(raw, domain) == -1)
		return -1;
	fp->mailboxes++;
	for (i = 0; i < out->ndomains; i++)
		if (strcmp(out->domains[i], domain) == 0)
			return 0;
	if (out->ndomains == DMARC_FROM_DOMAINS_MAX) {
		out->truncated = 1;
		return 0;
	}
	memcpy(out->domains[out->ndomains++], domain, sizeof(domain));
	return 0;
}

/* After the local part: "@" domain.  Returns 0, or -1. */
static int
from_parse_at_domain(struct from_parser *fp)
{
	const struct from_token *t = &fp->tok;

	if (!from_is_special(fp, '@'))
		return -1;
	from_next(fp);
	/* A domain literal names no DNS domain that DMARC could use. */
	if (t->type != FROM_TOK_ATOM || t->p[0] == '.' ||
	    from_add_domain(fp, t->p, t->len) == -1)
		return -1;
	from_next(fp);
	return 0;
}

/* Skip an obsolete route ("@a,@b:") at the start of an angle-addr. */
static int
from_skip_route(struct from_parser *fp)
{
	if (!from_is_special(fp, '@'))
		return 0;
	while (fp->tok.type != FROM_TOK_END && !from_is_special(fp, ':')) {
		if (fp->tok.type == FROM_TOK_ERROR ||
		    from_is_special(fp, '>'))
			return -1;
		from_next(fp);
	}
	if (!from_is_special(fp, ':'))
		return -1;
	from_next(fp);
	return 0;
}

/* "<" [route] addr-spec ">", on the '<'.  Returns 0, or -1. */
static int
from_parse_angle(struct from_parser *fp)
{
	from_next(fp);
	if (from_skip_route(fp) == -1 || from_skip_words(fp) == 0 ||
	    from_parse_at_domain(fp) == -1 || !from_is_special(fp, '>'))
		return -1;
	from_next(fp);
	return 0;
}

static int	from_parse_group(struct from_parser *);

/*
 * One address: [display-name] angle-addr, addr-spec, or a group when
 * allow_group is set.  Returns 0, or -1.
 */
static int
from_parse_address(struct from_parser *fp, int allow_group)
{
	size_t words = from_skip_words(fp);

	if (from_is_special(fp, '<'))
		return from_parse_angle(fp);
	if (from_is_special(fp, ':') && words > 0 && allow_group)
		return from_parse_group(fp);
	if (words > 0)
		return from_parse_at_domain(fp);
	return -1;
}

/* display-name ":" [mailbox-list] ";", after the name.  Returns 0, -1. */
static int
from_parse_group(struct from_parser *fp)
{
	from_next(fp);
	for (;;) {
		if (from_is_special(fp, ';')) {
			from_next(fp);
			return 0;
		}
		if (from_is_special(fp, ',')) {
			from_next(fp);
			continue;
		}
		if (from_parse_address(fp, 0) == -1)
			return -1;
		if (!from_is_special(fp, ',') && !from_is_special(fp, ';'))
			return -1;
	}
}

/* address-list, with the empty elements that obs-addr-list allows. */
static int
from_parse_list(struct from_parser *fp)
{
	from_next(fp);
	for (;;) {
		if (fp->tok.type == FROM_TOK_END)
			return 0;
		if (from_is_special(fp, ',')) {
			from_next(fp);
			continue;
		}
		if (from_parse_address(fp, 1) == -1)
			return -1;
		if (fp->tok.type != FROM_TOK_END && !from_is_special(fp, ','))
			return -1;
	}
}

enum dmarc_from_status
dmarc_from_parse(struct dmarc_from *out, const char *const *values,
    const size_t *lens, size_t n)
{
	struct from_parser fp;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return out->status = DMARC_FROM_MISSING;
	if (n > 1)
		return out->status = DMARC_FROM_MULTIPLE_FIELDS;
	len = lens != NULL ? lens[0] : strlen(values[0]);
	memset(&fp, 0, sizeof(fp));
	fp.p = values[0];
	fp.end = values[0] + len;
	fp.out = out;
	if (len > DMARC_FROM_FIELD_MAX || from_parse_list(&fp) == -1 ||
	    fp.mailboxes == 0) {
		memset(out, 0, sizeof(*out));
		return out->status = DMARC_FROM_UNPARSEABLE;
	}
	out->status = out->ndomains > 1 || out->truncated ?
	    DMARC_FROM_MULTIPLE_DOMAINS : DMARC_FROM_OK;
	return out->status;
}
