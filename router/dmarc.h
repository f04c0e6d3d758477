/*
 * DMARC (RFC 7489) for inbound mail: the author domain from the From
 * header field, policy discovery in DNS, identifier alignment of the SPF
 * and DKIM results, and the policy to apply after pct sampling.
 *
 * Intended use by the SMTP server: extract the author domain with
 * dmarc_from_parse() once the header is in, start dmarc_check_start()
 * with the SPF result of the MAIL FROM (or HELO) identity and the DKIM
 * results of the message, and keep back the final "." of DATA until the
 * callback returns the policy to apply.  SPF and DKIM results come in as
 * plain strings ("pass", "fail", ...), so this module does not depend on
 * the SPF or DKIM code.
 *
 * Policy discovery (RFC 7489 section 6.6.3): TXT _dmarc.FROM-DOMAIN; if
 * no record there starts with "v=DMARC1", TXT _dmarc.ORG-DOMAIN, where
 * ORG-DOMAIN is the Organizational Domain from the Public Suffix List.
 * Results:
 *   DMARC_NONE       no DMARC record: DMARC does not apply.
 *   DMARC_PASS       an aligned SPF or DKIM pass.
 *   DMARC_FAIL       a record and no aligned pass: apply policy.
 *   DMARC_TEMPERROR  a DNS lookup failed (SERVFAIL, timeout): never a
 *                    reason for a permanent rejection; policy is none.
 *   DMARC_PERMERROR  several DMARC records, or a record whose p (or sp)
 *                    is invalid and has no valid rua, or that repeats a
 *                    tag.  RFC 7489 applies no DMARC processing then, so
 *                    policy is none.
 */
#ifndef ROUTER_DMARC_H
#define ROUTER_DMARC_H

#include <stddef.h>
#include <stdint.h>

struct dns_ctx;
struct psl;

#define DMARC_DKIM_MAX		8	/* DKIM results taken into account */
#define DMARC_DOMAIN_MAX	254	/* a domain name plus NUL */
#define DMARC_FROM_DOMAINS_MAX	8	/* distinct author domains returned */
#define DMARC_FROM_FIELD_MAX	65536	/* bytes of one From field value */

enum dmarc_status {
	DMARC_NONE,
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};

/* Ordered from the mildest to the strictest. */
enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_align {
	DMARC_ALIGN_RELAXED,	/* same Organizational Domain */
	DMARC_ALIGN_STRICT,	/* same domain */
};

/* One DKIM signature's result, as the DKIM verifier reported it. */
struct dmarc_dkim {
	const char	*domain;	/* the signature's d= */
	const char	*result;	/* "pass", "fail", "neutral", ... */
};

/* The authentication results that DMARC builds on. */
struct dmarc_auth {
	const char	*spf_result;	/* "pass", "fail", ...; NULL: none */
	/* The SPF-checked domain: MAIL FROM's, or HELO's for a null sender. */
	const char	*spf_domain;
	size_t		 ndkim;		/* at most DMARC_DKIM_MAX are read */
	struct dmarc_dkim dkim[DMARC_DKIM_MAX];
	/*
	 * The pct sampling draw, 0 to 99: the policy applies when the draw
	 * is below pct.  NULL draws with randombytes_uniform(); tests point
	 * it at a fixed value.
	 */
	const uint32_t	*pct_draw;
};

/* A parsed DMARC record; only the tags that affect delivery are kept. */
struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;		/* equals p unless sp_set */
	int		 sp_set;	/* an sp tag with a valid value */
	/*
	 * p was missing or invalid, or sp invalid, but rua contained a
	 * valid URI, so the record acts as "v=DMARC1; p=none" (RFC 7489
	 * section 6.6.3).
	 */
	int		 p_fallback;
	enum dmarc_align adkim;		/* default relaxed */
	enum dmarc_align aspf;		/* default relaxed */
	unsigned	 pct;		/* 0 to 100, default 100 */
	int		 rua_valid;	/* rua holds a syntactically valid URI */
};

enum dmarc_parse_status {
	DMARC_PARSE_OK,
	DMARC_PARSE_NOT_DMARC,	/* does not start with v=DMARC1: ignore it */
	DMARC_PARSE_INVALID,	/* a DMARC record that gives no policy */
};

/*
 * Parse the text of one TXT record (its strings joined, len bytes, not
 * NUL-terminated) into rec.  Tag names and the keyword values of p, sp,
 * adkim and aspf are case-insensitive, as in the ABNF of RFC 7489
 * section 6.4, but "DMARC1" must match exactly and v must be the first
 * tag.  Unknown tags are ignored.  An invalid adkim, aspf or pct takes
 * its default.  A tag given twice makes the record invalid, as in the
 * DKIM tag-list syntax that DMARC records follow.  rec is filled only
 * for DMARC_PARSE_OK.
 */
enum dmarc_parse_status dmarc_record_parse(struct dmarc_record *rec,
		    const char *txt, size_t len);

/*
 * Whether domains a and b are aligned in mode (RFC 7489 section 3.1):
 * equal, or in relaxed mode with the same Organizational Domain.  A
 * domain that is itself a public suffix is its own Organizational
 * Domain here, so "net" aligns only with "net".  Case and one trailing
 * dot are ignored; U-labels compare as their A-labels.  A name that is
 * not a domain name aligns with nothing.
 */
int		 dmarc_aligned(const struct psl *, const char *a,
		    const char *b, enum dmarc_align mode);

/* The outcome of one DMARC check, valid during the callback only. */
struct dmarc_result {
	enum dmarc_status status;
	enum dmarc_policy policy;	/* to apply, after pct sampling */
	enum dmarc_policy requested;	/* p or sp of the record */
	int		 used_sp;	/* requested came from sp */
	int		 sampled_out;	/* pct lowered policy below requested */
	int		 spf_aligned;	/* SPF passed for an aligned domain */
	int		 dkim_aligned;	/* a DKIM pass for an aligned d= */
	char		 from_domain[DMARC_DOMAIN_MAX];
	char		 org_domain[DMARC_DOMAIN_MAX];
	/* Where the record was found; "" for DMARC_NONE, TEMPERROR. */
	char		 record_domain[DMARC_DOMAIN_MAX];
	struct dmarc_record record;	/* for DMARC_PASS and DMARC_FAIL */
	const char	*reason;	/* a short static text for logs */
};

/*
 * Evaluate the record found at record_domain for a message whose author
 * domain is from_domain (both A-labels or ASCII).  sp applies when the
 * record was found at the Organizational Domain of a different
 * from_domain.  A failing message with p or sp above none is sampled with
 * pct (RFC 7489 section 6.6.4): when the draw excludes it, reject becomes
 * quarantine and quarantine becomes none.  Fills every field of res.
 */
void		 dmarc_evaluate(const struct psl *, const char *from_domain,
		    const char *record_domain, const struct dmarc_record *,
		    const struct dmarc_auth *, struct dmarc_result *res);

typedef void dmarc_cb(void *arg, const struct dmarc_result *);

struct dmarc_check;

/*
 * Start the DMARC check of a message whose author domain is from_domain.
 * auth is copied.  The callback runs exactly once, from the event loop
 * and never from inside this call, unless dmarc_cancel() comes first.
 * The check frees itself after the callback returns, so the callback must
 * not cancel it.  Returns NULL, with no callback to follow, when
 * from_domain is not a domain name (letters, digits, "-", "_", U-labels;
 * at most 253 bytes as A-labels) or its _dmarc name would be too long for
 * DNS even at the Organizational Domain: the caller then treats the
 * message as DMARC_PERMERROR.  psl must not be NULL.
 */
struct dmarc_check *dmarc_check_start(struct dns_ctx *, const struct psl *,
		    const char *from_domain, const struct dmarc_auth *,
		    dmarc_cb *, void *arg);
/* Stop a check whose callback has not run yet, and free it. */
void		 dmarc_cancel(struct dmarc_check *);

const char	*dmarc_status_str(enum dmarc_status);	/* "pass", ... */
const char	*dmarc_policy_str(enum dmarc_policy);	/* "reject", ... */
enum dmarc_policy dmarc_policy_stricter(enum dmarc_policy,
		    enum dmarc_policy);

/*
 * The author domain (RFC 7489 section 6.6.1).
 *
 * Suggested handling of each status by the caller:
 *   DMARC_FROM_OK                one domain: check it.
 *   DMARC_FROM_MISSING           no From field: RFC 5322 forbids this and
 *                                RFC 7489 says such messages are
 *                                typically rejected.
 *   DMARC_FROM_MULTIPLE_FIELDS   several From fields: the same.
 *   DMARC_FROM_MULTIPLE_DOMAINS  several authors in different domains:
 *                                check each domain and apply the strictest
 *                                policy of the failing checks, as RFC 7489
 *                                section 6.6.1 describes.  When truncated
 *                                is set, more domains than
 *                                DMARC_FROM_DOMAINS_MAX were listed.
 *   DMARC_FROM_UNPARSEABLE       a syntax error, no mailbox at all (only
 *                                a display name or empty groups), a
 *                                domain literal, or a field longer than
 *                                DMARC_FROM_FIELD_MAX: DMARC cannot be
 *                                applied, so local policy decides
 *                                whether to reject or deliver.
 */
enum dmarc_from_status {
	DMARC_FROM_OK,
	DMARC_FROM_MISSING,
	DMARC_FROM_MULTIPLE_FIELDS,
	DMARC_FROM_MULTIPLE_DOMAINS,
	DMARC_FROM_UNPARSEABLE,
};

struct dmarc_from {
	enum dmarc_from_status status;
	size_t		 ndomains;	/* distinct domains, in order of use */
	int		 truncated;	/* more than DMARC_FROM_DOMAINS_MAX */
	/* Lower-case ASCII, U-labels converted to A-labels. */
	char		 domains[DMARC_FROM_DOMAINS_MAX][DMARC_DOMAIN_MAX];
};

/*
 * Extract the author domains from the values of a message's From fields.
 * A value is the text after "From:", with any folding CRLF still in it.
 * lens[i] is the length of values[i], or lens is NULL for NUL-terminated
 * values.  The parser reads the RFC 5322 address-list of section 3.4:
 * display names, quoted strings, comments, angle addresses with an
 * obsolete route, and groups, with UTF-8 allowed as in RFC 6532.  Fills
 * out and returns out->status.
 */
enum dmarc_from_status dmarc_from_parse(struct dmarc_from *out,
		    const char *const *values, const size_t *lens, size_t n);

#endif
