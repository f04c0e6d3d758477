/*
 * DNSSEC validator of the relay (RFC 4033, 4034, 4035, 5155), between the
 * routing lookups (route.c) and the DNS client (dns.c).  ldns verifies
 * the signatures and computes DS digests, and this file decides which
 * records to trust.
 *
 * A lookup is a job with a stack of frames.  The top frame runs until it
 * finishes, and its result goes to the frame below, or until it waits
 * for a DNS answer fetched with dns_lookup_dnssec():
 *
 *   ANSWER(name, type)  fetch the answer, then CHECK it
 *   CHECK(answer)       for each RRset of the answer (each CNAME, then
 *                       the records or the proof that none exist):
 *                       KEYS of the zone that signed it, then verify the
 *                       RRSIGs or the NSEC/NSEC3 proof with those keys.
 *                       An RRset without any RRSIG needs a CLIMB.
 *   KEYS(zone)          the zone's DNSKEY RRset, authenticated by the
 *                       trust anchor at the zone, or else by DS(zone)
 *   DS(name)            fetch the DS RRset at name and CHECK it: present,
 *                       proven absent at a delegation (insecure), proven
 *                       absent because name is no zone cut, or unsigned
 *   CLIMB(name)         DS(name), then DS of each parent up to the trust
 *                       anchor, until a signed answer proves an unsigned
 *                       delegation (insecure) or a signed zone (bogus)
 *
 * So the chain of trust runs from each signer up through the DS RRsets
 * of its ancestors to the nearest trust anchor, and each step must
 * validate.  A signer must lie at or below that anchor, so data signed
 * by a zone above the anchor cannot pass as insecure.
 *
 * Results are cached by validated answer (name and type), by zone (the
 * zone keys) and by DS name, for the TTL of the records and never past
 * the expiration of the RRSIG records that validated them.  Bogus
 * results are cached for DNSSEC_BOGUS_TTL seconds.
 *
 * Everything an answer can make the validator do is bounded: frames,
 * DNS lookups and signature checks per job, RRSIG records tried per
 * RRset, keys tried per RRSIG, DNSKEY and DS records per zone, NSEC and
 * NSEC3 records per answer, and NSEC3 iterations.  A hostile zone can
 * publish many keys with one key tag and many RRSIGs, so that without
 * these bounds one answer would cost thousands of signature checks.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <ldns/ldns.h>
#include <openssl/evp.h>

#include "cache.h"
#include "dns.h"
#include "dnssec.h"
#include "log.h"
#include "xmalloc.h"

#define DNSSEC_MAX_ANCHORS	16	/* anchor names */
#define DNSSEC_MAX_ANCHOR_RRS	16	/* DS or DNSKEY records per name */
#define DNSSEC_MAX_FRAMES	24	/* depth of one job's stack */
#define DNSSEC_MAX_FETCHES	32	/* DNS lookups per job */
#define DNSSEC_MAX_CHECKS	64	/* key trials per job */
#define DNSSEC_MAX_STEPS	1024	/* frame steps per job */
#define DNSSEC_MAX_SIGS		4	/* RRSIG records tried per RRset */
#define DNSSEC_MAX_KEYS_PER_SIG	4	/* keys with the RRSIG's tag tried */
#define DNSSEC_MAX_DNSKEYS	16	/* DNSKEY records per zone */
#define DNSSEC_MAX_DS		16	/* DS records per delegation */
#define DNSSEC_MAX_DENIAL	16	/* NSEC or NSEC3 records per answer */
/*
 * NSEC3 proofs with more hash iterations count as insecure, which
 * RFC 9276 section 3.2 allows validators.  The value is this project's.
 */
#define DNSSEC_NSEC3_MAX_ITERATIONS 150
#define DNSSEC_NSEC3_HASH_LEN	20	/* SHA-1, the only NSEC3 hash */
#define DNSSEC_BOGUS_TTL	60	/* seconds */
#define DNSSEC_MAX_TTL		86400	/* seconds, as the DNS cache */
#define DNSSEC_NAME_TEXT	1024	/* a name in ldns presentation format */

#define DNSSEC_DEFAULT_CACHE_ENTRIES	10000
#define DNSSEC_DEFAULT_CACHE_BYTES	(16 * 1024 * 1024)

/* DS digest types (RFC 4034 appendix A.2, RFC 4509, RFC 6605). */
#define DNSSEC_DIGEST_SHA1	1
#define DNSSEC_DIGEST_SHA256	2
#define DNSSEC_DIGEST_SHA384	4

/* RDATA field counts of the records read here (RFC 4034, RFC 5155). */
#define DNSSEC_RRSIG_FIELDS	9
#define DNSSEC_DNSKEY_FIELDS	4
#define DNSSEC_DS_FIELDS	4
#define DNSSEC_NSEC_FIELDS	2
#define DNSSEC_NSEC3_FIELDS	6

struct dnssec_anchor {
	ldns_rdf	*name;
	ldns_rr_list	*rrs;		/* DS and DNSKEY records */
};

enum dnssec_ds {
	DS_NONE,		/* not a DS result */
	DS_PRESENT,		/* a validated DS RRset: a signed zone starts */
	DS_INSECURE,		/* proven unsigned delegation or parent */
	DS_NO_CUT,		/* proven: no delegation at the name */
	DS_UNSIGNED,		/* the answer carried no usable RRSIG */
};

enum dnssec_proof {
	PROOF_NONE,
	PROOF_DATA,		/* records, validated */
	PROOF_NXDOMAIN,
	PROOF_NODATA,
	PROOF_DELEGATION,	/* no DS at a delegation */
	/*
	 * No proof either way, so insecure: an NSEC3 opt-out span (which may
	 * hide an unsigned delegation), or NSEC3 hashing with more
	 * iterations than DNSSEC_NSEC3_MAX_ITERATIONS.
	 */
	PROOF_INSECURE,
	PROOF_UNSIGNED,		/* no RRSIG at all (CHECK without CLIMB) */
};

/* The result of a frame, handed to the frame below it. */
struct dnssec_result {
	enum dnssec_security	 security;
	enum dnssec_proof	 proof;		/* CHECK */
	enum dnssec_ds		 ds;		/* DS */
	ldns_rr_list		*rrs;		/* zone keys, or DS RRset */
	uint32_t		 ttl;		/* seconds it holds */
	const char		*reason;	/* static text */
};

/* A copy of one DNS answer. */
struct dnssec_msg {
	enum dns_status		 status;
	uint32_t		 ttl;
	ldns_rr_list		*rrs;
	ldns_rr_list		*cnames;
	ldns_rr_list		*sigs;
	ldns_rr_list		*authority;
};

enum dnssec_frame_kind {
	FRAME_ANSWER,
	FRAME_CHECK,
	FRAME_KEYS,
	FRAME_DS,
	FRAME_CLIMB,
};

enum dnssec_step {
	STEP_START,
	STEP_FETCHED,		/* ANSWER, KEYS, DS: msg holds the answer */
	STEP_CHECKED,		/* ANSWER, DS: child is the CHECK result */
	STEP_KEYS_DONE,		/* CHECK, CLIMB: child is a KEYS result */
	STEP_DS_DONE,		/* KEYS, CLIMB: child is a DS result */
	STEP_CLIMB_DONE,	/* CHECK, KEYS: child is a CLIMB result */
};

struct dnssec_frame {
	enum dnssec_frame_kind	 kind;
	enum dnssec_step	 step;
	ldns_rdf		*name;		/* looked up, zone or climbed */
	ldns_rr_type		 type;		/* ANSWER, CHECK */
	struct dnssec_msg	 msg;		/* ANSWER, KEYS, DS */
	const struct dnssec_msg	*check;		/* CHECK: the msg below */
	int			 no_climb;	/* CHECK: unsigned, no CLIMB */
	int			 cached;	/* out came from the cache */
	int			 anchored;	/* KEYS: trust is an anchor's */
	size_t			 set;		/* CHECK: RRset in progress */
	ldns_rdf		*zone;		/* signer, or CLIMB's anchor */
	ldns_rr_list		*trust;		/* KEYS: DS or anchor records */
	uint32_t		 trust_ttl;	/* KEYS */
	struct dnssec_result	 child;
	struct dnssec_result	 out;
};

enum dnssec_run {
	RUN_CONTINUE,		/* run the top frame again */
	RUN_WAIT,		/* a DNS lookup is out */
	RUN_DONE,		/* the top frame has its result */
};

enum dnssec_query_state {
	QUERY_QUEUED,		/* on ctx->queued, not started */
	QUERY_RUNNING,		/* on ctx->running */
	QUERY_CALLING,		/* its callback is running */
};

struct dnssec_query {
	struct dnssec_ctx	*ctx;
	enum dnssec_query_state	 state;
	dnssec_cb		*cb;
	void			*arg;
	struct dns_query	*dq;		/* the DNS lookup waited for */
	ldns_rdf		*qname;		/* NULL if invalid */
	ldns_rr_type		 qtype;
	size_t			 depth;
	unsigned		 fetches;
	unsigned		 checks;
	unsigned		 steps;
	uint64_t		 seq;
	struct dnssec_frame	 frames[DNSSEC_MAX_FRAMES];
	/* The result for the callback. */
	struct dnssec_result	 result;
	enum dns_status		 status;
	ldns_rr_list		*rrs;
	TAILQ_ENTRY(dnssec_query) entry;
};
TAILQ_HEAD(dnssec_query_list, dnssec_query);

struct dnssec_ctx {
	struct ev_loop		*loop;
	struct dns_ctx		*dns;
	enum dnssec_policy	 policy;
	struct dnssec_anchor	 anchors[DNSSEC_MAX_ANCHORS];
	size_t			 nanchors;
	struct cache		*cache;
	struct dnssec_query_list queued;
	struct dnssec_query_list running;
	uint64_t		 seq;
	ev_timer		 queue_timer;
	uint64_t		 checks;
};

/* A cached result: a validated answer, zone keys or a DS result. */
struct dnssec_entry {
	struct dnssec_result	 result;
	enum dns_status		 status;	/* answers */
	ldns_rr_list		*rrs;		/* answers: the records */
};

static const char *const dnssec_frame_names[] = {
	[FRAME_ANSWER] = "answer",
	[FRAME_CHECK] = "check",
	[FRAME_KEYS] = "keys",
	[FRAME_DS] = "ds",
	[FRAME_CLIMB] = "climb",
};

static const char *const dnssec_security_names[] = {
	[DNSSEC_SECURE] = "secure",
	[DNSSEC_INSECURE] = "insecure",
	[DNSSEC_BOGUS] = "bogus",
	[DNSSEC_UNVALIDATED] = "unvalidated",
};

static void	dnssec_job_run(struct dnssec_query *);

const char *
dnssec_security_name(enum dnssec_security security)
{
	if ((size_t)security >= sizeof(dnssec_security_names) /
	    sizeof(dnssec_security_names[0]))
		return "unknown";
	return dnssec_security_names[security];
}

static uint32_t
dnssec_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/*
 * Names and records.
 */

static ldns_rdf *
dnssec_rdf_clone(const ldns_rdf *rdf)
{
	ldns_rdf *clone = ldns_rdf_clone(rdf);

	if (clone == NULL)
		fatal_invariant("out of memory");
	return clone;
}

static ldns_rr_list *
dnssec_list_new(void)
{
	ldns_rr_list *list = ldns_rr_list_new();

	if (list == NULL)
		fatal_invariant("out of memory");
	return list;
}

/* Returns a deep copy of list, NULL for NULL.  Aborts without memory. */
static ldns_rr_list *
dnssec_list_clone(const ldns_rr_list *list)
{
	ldns_rr_list *clone;

	if (list == NULL)
		return NULL;
	if ((clone = ldns_rr_list_clone(list)) == NULL)
		fatal_invariant("out of memory");
	return clone;
}

/* Append rr to list without copying it. */
static void
dnssec_list_push(ldns_rr_list *list, const ldns_rr *rr)
{
	if (!ldns_rr_list_push_rr(list, (ldns_rr *)rr))
		fatal_invariant("out of memory");
}

/* Write name in presentation format into buf, which the result is. */
static const char *
dnssec_name_text(const ldns_rdf *name, char buf[DNSSEC_NAME_TEXT])
{
	char *text = name != NULL ? ldns_rdf2str(name) : NULL;

	snprintf(buf, DNSSEC_NAME_TEXT, "%s", text != NULL ? text : "?");
	free(text);
	return buf;
}

/* Returns 1 if name equals zone or lies below it. */
static int
dnssec_at_or_below(const ldns_rdf *name, const ldns_rdf *zone)
{
	return ldns_dname_compare(name, zone) == 0 ||
	    ldns_dname_is_subdomain(name, zone);
}

/* Returns the ancestor of name with labels labels, to be freed. */
static ldns_rdf *
dnssec_ancestor(const ldns_rdf *name, uint8_t labels)
{
	uint8_t count = ldns_dname_label_count(name);
	ldns_rdf *a;

	if (labels >= count)
		return dnssec_rdf_clone(name);
	if ((a = ldns_dname_clone_from(name, count - labels)) == NULL)
		fatal_invariant("out of memory");
	return a;
}

/* Returns "*." followed by name, to be freed, or NULL if too long. */
static ldns_rdf *
dnssec_wildcard(const ldns_rdf *name)
{
	ldns_rdf *wild = ldns_dname_new_frm_str("*");

	if (wild == NULL)
		fatal_invariant("out of memory");
	if (ldns_dname_cat(wild, name) != LDNS_STATUS_OK ||
	    ldns_rdf_size(wild) > LDNS_MAX_DOMAINLEN) {
		ldns_rdf_deep_free(wild);
		return NULL;
	}
	return wild;
}

static uint8_t
dnssec_u8(const ldns_rr *rr, size_t field)
{
	const ldns_rdf *rdf = ldns_rr_rdf(rr, field);

	return rdf != NULL && ldns_rdf_size(rdf) == 1 ?
	    ldns_rdf2native_int8(rdf) : 0;
}

static uint16_t
dnssec_u16(const ldns_rr *rr, size_t field)
{
	const ldns_rdf *rdf = ldns_rr_rdf(rr, field);

	return rdf != NULL && ldns_rdf_size(rdf) == 2 ?
	    ldns_rdf2native_int16(rdf) : 0;
}

static uint32_t
dnssec_u32(const ldns_rr *rr, size_t field)
{
	const ldns_rdf *rdf = ldns_rr_rdf(rr, field);

	return rdf != NULL && ldns_rdf_size(rdf) == 4 ?
	    ldns_rdf2native_int32(rdf) : 0;
}

/* Returns 1 if rr is a class IN record of type with fields fields. */
static int
dnssec_rr_shaped(const ldns_rr *rr, ldns_rr_type type, size_t fields)
{
	return ldns_rr_get_type(rr) == type &&
	    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
	    ldns_rr_owner(rr) != NULL && ldns_rr_rd_count(rr) == fields;
}

/* Algorithms that ldns 1.8 verifies and RFC 8624 lets a validator use. */
static int
dnssec_algorithm_supported(uint8_t alg)
{
	switch (alg) {
	case LDNS_RSASHA1:
	case LDNS_RSASHA1_NSEC3:
	case LDNS_RSASHA256:
	case LDNS_RSASHA512:
	case LDNS_ECDSAP256SHA256:
	case LDNS_ECDSAP384SHA384:
	case LDNS_ED25519:
	case LDNS_ED448:
		return 1;
	}
	return 0;
}

static int
dnssec_digest_supported(uint8_t digest)
{
	return digest == DNSSEC_DIGEST_SHA1 || digest == DNSSEC_DIGEST_SHA256 ||
	    digest == DNSSEC_DIGEST_SHA384;
}

/* Returns 1 if rr is a DNSKEY that may sign a zone (RFC 4034 2.1.1). */
static int
dnssec_zone_key(const ldns_rr *rr)
{
	uint16_t flags;

	if (!dnssec_rr_shaped(rr, LDNS_RR_TYPE_DNSKEY, DNSSEC_DNSKEY_FIELDS))
		return 0;
	flags = dnssec_u16(rr, 0);
	return (flags & LDNS_KEY_ZONE_KEY) != 0 &&
	    (flags & LDNS_KEY_REVOKE_KEY) == 0 && dnssec_u8(rr, 1) == 3;
}

/*
 * Returns 1 if rr has the type bit in its NSEC or NSEC3 bitmap, 0 when
 * it has no bitmap field.
 */
static int
dnssec_bitmap_has(const ldns_rr *rr, ldns_rr_type type)
{
	const ldns_rdf *bitmap = ldns_nsec_get_bitmap(rr);

	return bitmap != NULL && ldns_nsec_bitmap_covers_type(bitmap, type);
}

/* An NSEC or NSEC3 record at a delegation: NS, and no SOA. */
static int
dnssec_bitmap_delegation(const ldns_rr *rr)
{
	return dnssec_bitmap_has(rr, LDNS_RR_TYPE_NS) &&
	    !dnssec_bitmap_has(rr, LDNS_RR_TYPE_SOA);
}

/*
 * Returns the proof that an NSEC or NSEC3 record at the queried name
 * gives for type: PROOF_NODATA, or PROOF_DELEGATION for a DS at a
 * delegation.  It is PROOF_NONE when the record lists the type or a
 * CNAME, and when the record is the parent's at a delegation and the
 * type is not DS (RFC 4035 section 5.4).
 */
static enum dnssec_proof
dnssec_bitmap_nodata(const ldns_rr *rr, ldns_rr_type type)
{
	if (dnssec_bitmap_has(rr, type) ||
	    dnssec_bitmap_has(rr, LDNS_RR_TYPE_CNAME))
		return PROOF_NONE;
	if (dnssec_bitmap_delegation(rr))
		return type == LDNS_RR_TYPE_DS ? PROOF_DELEGATION : PROOF_NONE;
	return PROOF_NODATA;
}

/*
 * Answers.
 */

static void
dnssec_msg_clear(struct dnssec_msg *m)
{
	ldns_rr_list_deep_free(m->rrs);
	ldns_rr_list_deep_free(m->cnames);
	ldns_rr_list_deep_free(m->sigs);
	ldns_rr_list_deep_free(m->authority);
	memset(m, 0, sizeof(*m));
}

static void
dnssec_msg_copy(struct dnssec_msg *m, const struct dns_answer *a)
{
	dnssec_msg_clear(m);
	m->status = a->status;
	m->ttl = a->ttl;
	m->rrs = dnssec_list_clone(a->rrs);
	m->cnames = dnssec_list_clone(a->cnames);
	m->sigs = dnssec_list_clone(a->sigs);
	m->authority = dnssec_list_clone(a->authority);
	if (m->cnames == NULL)
		m->cnames = dnssec_list_new();
	if (m->sigs == NULL)
		m->sigs = dnssec_list_new();
	if (m->authority == NULL)
		m->authority = dnssec_list_new();
}

static int
dnssec_msg_failed(const struct dnssec_msg *m)
{
	return m->status == DNS_SERVFAIL || m->status == DNS_TIMEOUT;
}

/*
 * Results.
 */

static void
dnssec_result_clear(struct dnssec_result *r)
{
	ldns_rr_list_deep_free(r->rrs);
	memset(r, 0, sizeof(*r));
}

/* Move the result of the frame above into out, leaving child empty. */
static void
dnssec_result_take(struct dnssec_result *out, struct dnssec_result *child)
{
	dnssec_result_clear(out);
	*out = *child;
	memset(child, 0, sizeof(*child));
}

/* Finish f with security and reason. */
static enum dnssec_run
dnssec_finish(struct dnssec_frame *f, enum dnssec_security security,
    const char *reason)
{
	f->out.security = security;
	f->out.reason = reason;
	return RUN_DONE;
}

static enum dnssec_run
dnssec_bogus(struct dnssec_frame *f, const char *reason)
{
	return dnssec_finish(f, DNSSEC_BOGUS, reason);
}

/* Finish f with the failure of the frame above. */
static enum dnssec_run
dnssec_propagate(struct dnssec_frame *f)
{
	return dnssec_finish(f, f->child.security, f->child.reason);
}

/* Lower the security of an answer made of several parts. */
static void
dnssec_merge(struct dnssec_result *out, enum dnssec_security security)
{
	if (security == DNSSEC_INSECURE && out->security == DNSSEC_SECURE)
		out->security = DNSSEC_INSECURE;
}

/*
 * The cache.
 */

static void
dnssec_entry_free(void *value)
{
	struct dnssec_entry *e = value;

	ldns_rr_list_deep_free(e->result.rrs);
	ldns_rr_list_deep_free(e->rrs);
	free(e);
}

static size_t
dnssec_list_bytes(const ldns_rr_list *list)
{
	size_t i, size = 0;

	for (i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++)
		size += sizeof(ldns_rr) + 4 * sizeof(ldns_rdf) +
		    ldns_rr_uncompressed_size(ldns_rr_list_rr(list, i));
	return size;
}

/* Write the cache key "kind/name/type" into buf. */
static const char *
dnssec_cache_key(char buf[DNSSEC_NAME_TEXT + 32], const char *kind,
    const ldns_rdf *name, ldns_rr_type type)
{
	char text[DNSSEC_NAME_TEXT];

	snprintf(buf, DNSSEC_NAME_TEXT + 32, "%s/%s/%u", kind,
	    dnssec_name_text(name, text), (unsigned)type);
	return buf;
}

/*
 * Cache a copy of r (and of an answer's status and records) under key.
 * Bogus results live DNSSEC_BOGUS_TTL seconds, and unvalidated ones are
 * not cached.
 */
static void
dnssec_cache_store(struct dnssec_ctx *ctx, const char *key,
    const struct dnssec_result *r, enum dns_status status,
    const ldns_rr_list *rrs)
{
	struct dnssec_entry *e;
	uint32_t ttl = dnssec_min(r->ttl, DNSSEC_MAX_TTL);

	if (r->security == DNSSEC_UNVALIDATED)
		return;
	if (r->security == DNSSEC_BOGUS)
		ttl = DNSSEC_BOGUS_TTL;
	e = xcalloc(1, sizeof(*e));
	e->result = *r;
	e->result.rrs = dnssec_list_clone(r->rrs);
	e->status = status;
	e->rrs = dnssec_list_clone(rrs);
	cache_put(ctx->cache, key, e, sizeof(*e) + dnssec_list_bytes(e->rrs) +
	    dnssec_list_bytes(e->result.rrs), ev_now(ctx->loop), ttl);
}

/*
 * Fill out (and an answer's status and records) from the cache entry for
 * key, with the TTL that remains.  Returns 1, or 0 on a miss.
 */
static int
dnssec_cache_load(struct dnssec_ctx *ctx, const char *key,
    struct dnssec_result *out, enum dns_status *status, ldns_rr_list **rrs)
{
	struct dnssec_entry *e;
	double remaining = 0;

	e = cache_get(ctx->cache, key, ev_now(ctx->loop), &remaining);
	if (e == NULL)
		return 0;
	dnssec_result_clear(out);
	*out = e->result;
	out->rrs = dnssec_list_clone(e->result.rrs);
	out->ttl = remaining > 0 ? dnssec_min((uint32_t)remaining,
	    e->result.ttl) : 0;
	if (status != NULL)
		*status = e->status;
	if (rrs != NULL) {
		ldns_rr_list_deep_free(*rrs);
		*rrs = dnssec_list_clone(e->rrs);
	}
	log_debug("dnssec: cache hit key=%s security=%s", key,
	    dnssec_security_name(out->security));
	return 1;
}

/*
 * Trust anchors.
 */

/* Returns the anchor with the longest name at or above name, or NULL. */
static const struct dnssec_anchor *
dnssec_anchor_find(const struct dnssec_ctx *ctx, const ldns_rdf *name)
{
	const struct dnssec_anchor *a, *best = NULL;
	size_t i;

	for (i = 0; i < ctx->nanchors; i++) {
		a = &ctx->anchors[i];
		if (!dnssec_at_or_below(name, a->name))
			continue;
		if (best == NULL || ldns_dname_label_count(a->name) >
		    ldns_dname_label_count(best->name))
			best = a;
	}
	return best;
}

/* Check that rr can be a trust anchor.  Returns NULL or the problem. */
static const char *
dnssec_anchor_problem(const ldns_rr *rr)
{
	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
		return "trust anchor not of class IN";
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_DS)
		return ldns_rr_rd_count(rr) == DNSSEC_DS_FIELDS ? NULL :
		    "invalid DS record";
	if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_DNSKEY)
		return dnssec_zone_key(rr) ? NULL :
		    "DNSKEY trust anchor without the Zone Key flag, revoked, "
		    "or not of protocol 3";
	return "trust anchor not a DS or DNSKEY record";
}

/*
 * Add rr (taking ownership) to the anchor of its owner name.  Returns
 * NULL, or the problem with rr freed.
 */
static const char *
dnssec_anchor_add_rr(struct dnssec_ctx *ctx, ldns_rr *rr)
{
	const char *problem = dnssec_anchor_problem(rr);
	struct dnssec_anchor *a = NULL;
	size_t i;

	for (i = 0; problem == NULL && i < ctx->nanchors; i++)
		if (ldns_dname_compare(ctx->anchors[i].name,
		    ldns_rr_owner(rr)) == 0)
			a = &ctx->anchors[i];
	if (problem == NULL && a == NULL) {
		if (ctx->nanchors == DNSSEC_MAX_ANCHORS)
			problem = "too many trust anchor names (maximum 16)";
		else {
			a = &ctx->anchors[ctx->nanchors++];
			a->name = dnssec_rdf_clone(ldns_rr_owner(rr));
			ldns_dname2canonical(a->name);
			a->rrs = dnssec_list_new();
		}
	}
	if (problem == NULL &&
	    ldns_rr_list_rr_count(a->rrs) == DNSSEC_MAX_ANCHOR_RRS)
		problem = "too many trust anchor records for one name "
		    "(maximum 16)";
	if (problem != NULL) {
		ldns_rr_free(rr);
		return problem;
	}
	ldns_rr_set_ttl(rr, 0);
	dnssec_list_push(a->rrs, rr);
	return NULL;
}

int
dnssec_add_anchor(struct dnssec_ctx *ctx, const char *text, char *err,
    size_t errsz)
{
	const char *problem;
	ldns_rr *rr = NULL;
	ldns_status st;

	st = ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL);
	if (st != LDNS_STATUS_OK || rr == NULL) {
		snprintf(err, errsz, "invalid trust anchor: %s",
		    ldns_get_errorstr_by_id(st));
		return -1;
	}
	if ((problem = dnssec_anchor_add_rr(ctx, rr)) != NULL) {
		snprintf(err, errsz, "%s", problem);
		return -1;
	}
	return 0;
}

/*
 * Read every record of a master file into a new list, at most
 * DNSSEC_MAX_ANCHORS * DNSSEC_MAX_ANCHOR_RRS of them.  Returns it, or
 * NULL with "PATH:LINE: reason" in err.
 */
static ldns_rr_list *
dnssec_anchor_read(FILE *fp, const char *path, char *err, size_t errsz)
{
	ldns_rr_list *rrs = dnssec_list_new();
	ldns_rdf *origin = ldns_dname_new_frm_str("."), *prev = NULL;
	uint32_t ttl = 3600;
	const char *problem = NULL;
	ldns_status st;
	ldns_rr *rr;
	int line = 0;

	while (problem == NULL && !feof(fp)) {
		rr = NULL;
		st = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev, &line);
		if (st == LDNS_STATUS_SYNTAX_EMPTY ||
		    st == LDNS_STATUS_SYNTAX_TTL ||
		    st == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		if (st == LDNS_STATUS_SYNTAX_INCLUDE)
			problem = "$INCLUDE is not supported";
		else if (st != LDNS_STATUS_OK || rr == NULL)
			problem = ldns_get_errorstr_by_id(st);
		else if ((problem = dnssec_anchor_problem(rr)) != NULL)
			ldns_rr_free(rr);
		else if (ldns_rr_list_rr_count(rrs) ==
		    DNSSEC_MAX_ANCHORS * DNSSEC_MAX_ANCHOR_RRS) {
			problem = "too many trust anchor records (maximum 256)";
			ldns_rr_free(rr);
		} else
			dnssec_list_push(rrs, rr);
	}
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	if (problem == NULL && ldns_rr_list_rr_count(rrs) > 0)
		return rrs;
	if (problem != NULL)
		snprintf(err, errsz, "%s:%d: %s", path, line, problem);
	else
		snprintf(err, errsz, "%s: no DS or DNSKEY record", path);
	ldns_rr_list_deep_free(rrs);
	return NULL;
}

/*
 * Check that adding every record of rrs keeps the anchors within their
 * limits.  Returns NULL, or the problem.
 */
static const char *
dnssec_anchor_limits(const struct dnssec_ctx *ctx, const ldns_rr_list *rrs)
{
	size_t n = ldns_rr_list_rr_count(rrs), names = ctx->nanchors;
	size_t i, j, count;
	const ldns_rdf *owner;
	const ldns_rr *rr;
	int first;

	for (i = 0; i < n; i++) {
		owner = ldns_rr_owner(ldns_rr_list_rr(rrs, i));
		count = 0;
		first = 1;
		for (j = 0; j < n; j++) {
			rr = ldns_rr_list_rr(rrs, j);
			if (ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
				continue;
			first = first && j >= i;
			count++;
		}
		if (!first)
			continue;
		for (j = 0; j < ctx->nanchors; j++)
			if (ldns_dname_compare(ctx->anchors[j].name,
			    owner) == 0)
				break;
		if (j < ctx->nanchors)
			count += ldns_rr_list_rr_count(ctx->anchors[j].rrs);
		else
			names++;
		if (count > DNSSEC_MAX_ANCHOR_RRS)
			return "too many trust anchor records for one name "
			    "(maximum 16)";
	}
	return names > DNSSEC_MAX_ANCHORS ?
	    "too many trust anchor names (maximum 16)" : NULL;
}

int
dnssec_add_anchor_file(struct dnssec_ctx *ctx, const char *path, char *err,
    size_t errsz)
{
	const char *problem;
	ldns_rr_list *rrs;
	size_t i, n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	rrs = dnssec_anchor_read(fp, path, err, errsz);
	fclose(fp);
	if (rrs == NULL)
		return -1;
	if ((problem = dnssec_anchor_limits(ctx, rrs)) != NULL) {
		snprintf(err, errsz, "%s: %s", path, problem);
		ldns_rr_list_deep_free(rrs);
		return -1;
	}
	n = ldns_rr_list_rr_count(rrs);
	for (i = 0; i < n; i++)
		if (dnssec_anchor_add_rr(ctx, ldns_rr_list_rr(rrs, i)) != NULL)
			fatal_invariant("trust anchor rejected after check");
	ldns_rr_list_free(rrs);
	log_info("dnssec: trust anchors loaded path=%s records=%zu", path, n);
	return (int)n;
}

/*
 * Signatures.
 */

/*
 * Returns 1 if sig is an RRSIG record over the RRset of owner and type
 * whose label count is possible for owner, made by zone (any signer
 * when zone is NULL).
 */
static int
dnssec_sig_covers(const ldns_rr *sig, const ldns_rdf *owner,
    ldns_rr_type type, const ldns_rdf *zone)
{
	const ldns_rdf *signer;

	if (!dnssec_rr_shaped(sig, LDNS_RR_TYPE_RRSIG, DNSSEC_RRSIG_FIELDS))
		return 0;
	signer = ldns_rr_rrsig_signame(sig);
	return signer != NULL && ldns_rdf_get_type(signer) ==
	    LDNS_RDF_TYPE_DNAME &&
	    ldns_dname_compare(ldns_rr_owner(sig), owner) == 0 &&
	    dnssec_u16(sig, 0) == type &&
	    dnssec_u8(sig, 2) <= ldns_dname_label_count(owner) &&
	    (zone == NULL || ldns_dname_compare(signer, zone) == 0);
}

/*
 * Returns 1 if an RRSIG label count of labels shows that a wildcard made
 * the RRset at owner (RFC 4035 section 5.3.2).  A name that is itself
 * "*.something" counts one label fewer.
 */
static int
dnssec_expanded(const ldns_rdf *owner, uint8_t labels)
{
	uint8_t count = ldns_dname_label_count(owner);

	if (ldns_dname_is_wildcard(owner))
		count--;
	return labels < count;
}

/*
 * Put into out the keys of keys that may have made sig: those with its
 * key tag and algorithm, at most DNSSEC_MAX_KEYS_PER_SIG.
 */
static void
dnssec_keys_for_sig(const ldns_rr_list *keys, const ldns_rr *sig,
    ldns_rr_list *out)
{
	uint16_t tag = dnssec_u16(sig, 6);
	uint8_t alg = dnssec_u8(sig, 1);
	const ldns_rr *key;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(keys) &&
	    ldns_rr_list_rr_count(out) < DNSSEC_MAX_KEYS_PER_SIG; i++) {
		key = ldns_rr_list_rr(keys, i);
		if (dnssec_u8(key, 2) == alg && ldns_calc_keytag(key) == tag)
			dnssec_list_push(out, key);
	}
}

/*
 * Returns the seconds an RRset stays valid under sig: its smallest TTL,
 * capped by the TTL of sig, its original TTL and the time left until it
 * expires (RFC 4035 section 5.3.3).  The time is compared in serial
 * number arithmetic as in RFC 4034 section 3.1.5.
 */
static uint32_t
dnssec_sig_ttl(const ldns_rr_list *rrset, const ldns_rr *sig, time_t now)
{
	int32_t left = (int32_t)(dnssec_u32(sig, 4) - (uint32_t)now);
	uint32_t ttl = dnssec_min(dnssec_u32(sig, 3), ldns_rr_ttl(sig));
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(rrset); i++)
		ttl = dnssec_min(ttl, ldns_rr_ttl(ldns_rr_list_rr(rrset, i)));
	return left > 0 ? dnssec_min(ttl, (uint32_t)left) : 0;
}

/* Check sig over rrset with candidate keys.  Returns NULL or the reason. */
static const char *
dnssec_check_sig(struct dnssec_query *job, const ldns_rr_list *rrset,
    const ldns_rr *sig, const ldns_rr_list *candidates, time_t now)
{
	size_t n = ldns_rr_list_rr_count(candidates);
	ldns_rr_list *good;
	const char *reason;
	ldns_status st;

	if (n == 0)
		return "no DNSKEY with the key tag and algorithm of the RRSIG";
	if (job->checks + n > DNSSEC_MAX_CHECKS)
		return "too many signature checks for one validation";
	job->checks += n;
	job->ctx->checks += n;
	good = dnssec_list_new();
	st = ldns_verify_rrsig_keylist_time(rrset, sig, candidates, now, good);
	ldns_rr_list_free(good);
	if (st == LDNS_STATUS_OK)
		return NULL;
	reason = ldns_get_errorstr_by_id(st);
	return reason != NULL ? reason : "signature verification failed";
}

/*
 * Verify rrset, the records of one owner, type and class, with the
 * RRSIG records of sigs that zone made, each tried with the keys of keys
 * that carry its key tag and algorithm.  ldns checks the signature, the
 * type covered and the validity period.  Returns NULL, having lowered
 * *ttl and set *labels to the RRSIG's label count, or the reason of the
 * last failure.
 */
static const char *
dnssec_verify_rrset(struct dnssec_query *job, const ldns_rr_list *rrset,
    const ldns_rr_list *sigs, const ldns_rdf *zone, const ldns_rr_list *keys,
    uint32_t *ttl, uint8_t *labels)
{
	const ldns_rr *first = ldns_rr_list_rr(rrset, 0), *sig;
	const char *reason = "no RRSIG record by the zone's keys";
	ldns_rr_list *candidates;
	time_t now = time(NULL);
	size_t i, tried = 0;

	for (i = 0; i < ldns_rr_list_rr_count(sigs) &&
	    tried < DNSSEC_MAX_SIGS; i++) {
		sig = ldns_rr_list_rr(sigs, i);
		if (!dnssec_sig_covers(sig, ldns_rr_owner(first),
		    ldns_rr_get_type(first), zone))
			continue;
		tried++;
		candidates = dnssec_list_new();
		dnssec_keys_for_sig(keys, sig, candidates);
		reason = dnssec_check_sig(job, rrset, sig, candidates, now);
		ldns_rr_list_free(candidates);
		if (reason == NULL) {
			*ttl = dnssec_min(*ttl,
			    dnssec_sig_ttl(rrset, sig, now));
			*labels = dnssec_u8(sig, 2);
			return NULL;
		}
	}
	return reason;
}

/*
 * Trust: matching DNSKEY records to DS records or trust anchors.
 */

/* Returns 1 if trust has a SHA-256 or SHA-384 DS of a known algorithm. */
static int
dnssec_has_strong_ds(const ldns_rr_list *trust)
{
	const ldns_rr *t;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(trust); i++) {
		t = ldns_rr_list_rr(trust, i);
		if (dnssec_rr_shaped(t, LDNS_RR_TYPE_DS, DNSSEC_DS_FIELDS) &&
		    dnssec_algorithm_supported(dnssec_u8(t, 1)) &&
		    (dnssec_u8(t, 2) == DNSSEC_DIGEST_SHA256 ||
		    dnssec_u8(t, 2) == DNSSEC_DIGEST_SHA384))
			return 1;
	}
	return 0;
}

/*
 * Returns 1 if the validator uses trust record t: a DS of a supported
 * algorithm and digest, but no SHA-1 DS when a stronger one exists
 * (RFC 4509 section 3), or a DNSKEY anchor of a supported algorithm.
 */
static int
dnssec_trust_usable(const ldns_rr *t, int strong)
{
	if (dnssec_rr_shaped(t, LDNS_RR_TYPE_DNSKEY, DNSSEC_DNSKEY_FIELDS))
		return dnssec_algorithm_supported(dnssec_u8(t, 2));
	if (!dnssec_rr_shaped(t, LDNS_RR_TYPE_DS, DNSSEC_DS_FIELDS))
		return 0;
	return dnssec_algorithm_supported(dnssec_u8(t, 1)) &&
	    dnssec_digest_supported(dnssec_u8(t, 2)) &&
	    !(strong && dnssec_u8(t, 2) == DNSSEC_DIGEST_SHA1);
}

/* Returns 1 if trust record t authenticates the zone key key. */
static int
dnssec_trust_matches(const ldns_rr *t, const ldns_rr *key)
{
	size_t i;

	if (ldns_rr_get_type(t) == LDNS_RR_TYPE_DS)
		return dnssec_u8(t, 1) == dnssec_u8(key, 2) &&
		    dnssec_u16(t, 0) == ldns_calc_keytag(key) &&
		    ldns_rr_compare_ds(t, key);
	if (ldns_dname_compare(ldns_rr_owner(t), ldns_rr_owner(key)) != 0)
		return 0;
	for (i = 0; i < DNSSEC_DNSKEY_FIELDS; i++)
		if (ldns_rdf_compare(ldns_rr_rdf(t, i),
		    ldns_rr_rdf(key, i)) != 0)
			return 0;
	return 1;
}

/*
 * Put into out each key of keys that a usable record of trust (the
 * first DNSSEC_MAX_DS) authenticates.  Returns the number of usable
 * trust records, 0 when the validator implements none of their
 * algorithms and digests (RFC 4035 section 5.2: an insecure zone).
 */
static size_t
dnssec_match_trust(const ldns_rr_list *trust, const ldns_rr_list *keys,
    ldns_rr_list *out)
{
	int strong = dnssec_has_strong_ds(trust);
	const ldns_rr *t, *key;
	size_t i, j, used = 0;

	for (i = 0; i < ldns_rr_list_rr_count(trust) && i < DNSSEC_MAX_DS;
	    i++) {
		t = ldns_rr_list_rr(trust, i);
		if (!dnssec_trust_usable(t, strong))
			continue;
		used++;
		for (j = 0; j < ldns_rr_list_rr_count(keys); j++) {
			key = ldns_rr_list_rr(keys, j);
			if (dnssec_trust_matches(t, key) &&
			    !ldns_rr_list_contains_rr(out, key))
				dnssec_list_push(out, key);
		}
	}
	return used;
}

/*
 * Denial of existence: NSEC (RFC 4035 section 5.4) and NSEC3
 * (RFC 5155 section 8).
 */

/* The NSEC and NSEC3 records of an answer that passed verification. */
struct dnssec_denial {
	const ldns_rdf	*zone;
	ldns_rr_list	*nsecs;		/* not owned: records of the answer */
	ldns_rr_list	*nsec3s;
	uint32_t	 ttl;
	const char	*reason;	/* why the last record failed */
};

/* One usable NSEC3 record, its hashes decoded. */
struct dnssec_nsec3 {
	const ldns_rr	*rr;
	uint8_t		 owner[DNSSEC_NSEC3_HASH_LEN];
	uint8_t		 next[DNSSEC_NSEC3_HASH_LEN];
	int		 optout;
};

/* The NSEC3 records of one answer that share the first one's hashing. */
struct dnssec_nsec3_set {
	uint16_t		 iterations;
	uint8_t			 salt_len;
	const uint8_t		*salt;
	size_t			 n;
	struct dnssec_nsec3	 recs[DNSSEC_MAX_DENIAL];
};

/*
 * Returns 1 if rr is of type with fields fields, or one fewer: ldns 1.8
 * leaves out the type bitmap field when the bitmap lists no type, as the
 * NSEC3 record of an empty non-terminal does.
 */
static int
dnssec_denial_shaped(const ldns_rr *rr, ldns_rr_type type, size_t fields)
{
	return dnssec_rr_shaped(rr, type, fields) ||
	    dnssec_rr_shaped(rr, type, fields - 1);
}

/* Returns 1 if rr is an NSEC or NSEC3 record that zone may sign. */
static int
dnssec_denial_record(const ldns_rr *rr, const ldns_rdf *zone)
{
	ldns_rdf *parent;
	int ok;

	if (dnssec_denial_shaped(rr, LDNS_RR_TYPE_NSEC, DNSSEC_NSEC_FIELDS))
		return ldns_rdf_get_type(ldns_rr_rdf(rr, 0)) ==
		    LDNS_RDF_TYPE_DNAME &&
		    dnssec_at_or_below(ldns_rr_owner(rr), zone);
	if (!dnssec_denial_shaped(rr, LDNS_RR_TYPE_NSEC3,
	    DNSSEC_NSEC3_FIELDS))
		return 0;
	/* An NSEC3 owner is one hash label above the zone apex. */
	if ((parent = ldns_dname_left_chop(ldns_rr_owner(rr))) == NULL)
		return 0;
	ok = ldns_dname_compare(parent, zone) == 0;
	ldns_rdf_deep_free(parent);
	return ok;
}

/*
 * Fill d with the NSEC and NSEC3 records of authority that zone signed
 * with keys, each verified as an RRset of its own.  At most
 * DNSSEC_MAX_DENIAL records are tried.
 */
static void
dnssec_denial_collect(struct dnssec_query *job, struct dnssec_denial *d,
    const ldns_rr_list *authority, const ldns_rdf *zone,
    const ldns_rr_list *keys)
{
	ldns_rr_list *rrset = dnssec_list_new();
	const char *reason;
	const ldns_rr *rr;
	size_t i, tried = 0;
	uint8_t labels;

	memset(d, 0, sizeof(*d));
	d->zone = zone;
	d->nsecs = dnssec_list_new();
	d->nsec3s = dnssec_list_new();
	d->ttl = DNSSEC_MAX_TTL;
	d->reason = "no signed NSEC or NSEC3 record";
	for (i = 0; i < ldns_rr_list_rr_count(authority) &&
	    tried < DNSSEC_MAX_DENIAL; i++) {
		rr = ldns_rr_list_rr(authority, i);
		if (!dnssec_denial_record(rr, zone))
			continue;
		tried++;
		dnssec_list_push(rrset, rr);
		reason = dnssec_verify_rrset(job, rrset, authority, zone, keys,
		    &d->ttl, &labels);
		(void)ldns_rr_list_pop_rr(rrset);
		if (reason != NULL)
			d->reason = reason;
		else
			dnssec_list_push(ldns_rr_get_type(rr) ==
			    LDNS_RR_TYPE_NSEC ? d->nsecs : d->nsec3s, rr);
	}
	ldns_rr_list_free(rrset);
}

static void
dnssec_denial_free(struct dnssec_denial *d)
{
	ldns_rr_list_free(d->nsecs);
	ldns_rr_list_free(d->nsec3s);
}

static const ldns_rr *
dnssec_nsec_at(const ldns_rr_list *nsecs, const ldns_rdf *name)
{
	const ldns_rr *rr;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(nsecs); i++) {
		rr = ldns_rr_list_rr(nsecs, i);
		if (ldns_dname_compare(ldns_rr_owner(rr), name) == 0)
			return rr;
	}
	return NULL;
}

/*
 * Returns 1 if nsec proves that name does not exist.  Then name sorts
 * after the owner and before the next name in the canonical order of
 * RFC 4034 section 6.1, where the zone's last NSEC wraps to the apex.
 * An NSEC at a delegation (the parent's record) or at a DNAME above name
 * proves nothing, because the names below belong to another zone.
 */
static int
dnssec_nsec_covers(const ldns_rr *nsec, const ldns_rdf *name)
{
	const ldns_rdf *owner = ldns_rr_owner(nsec);
	const ldns_rdf *next = ldns_rr_rdf(nsec, 0);

	if (ldns_dname_compare(owner, name) >= 0)
		return 0;
	if (ldns_dname_compare(owner, next) < 0 &&
	    ldns_dname_compare(name, next) >= 0)
		return 0;
	if (ldns_dname_is_subdomain(name, owner) &&
	    (dnssec_bitmap_delegation(nsec) ||
	    dnssec_bitmap_has(nsec, LDNS_RR_TYPE_DNAME)))
		return 0;
	return 1;
}

static const ldns_rr *
dnssec_nsec_covering(const ldns_rr_list *nsecs, const ldns_rdf *name)
{
	const ldns_rr *rr;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(nsecs); i++) {
		rr = ldns_rr_list_rr(nsecs, i);
		if (dnssec_nsec_covers(rr, name))
			return rr;
	}
	return NULL;
}

/*
 * Returns the closest encloser that an NSEC covering name shows: the
 * longest ancestor of name at or above the NSEC's owner or next name,
 * and no higher than zone.  To be freed.
 */
static ldns_rdf *
dnssec_nsec_closest_encloser(const ldns_rr *nsec, const ldns_rdf *name,
    const ldns_rdf *zone)
{
	const ldns_rdf *owner = ldns_rr_owner(nsec);
	const ldns_rdf *next = ldns_rr_rdf(nsec, 0);
	int n, top = ldns_dname_label_count(zone);
	ldns_rdf *a;

	for (n = ldns_dname_label_count(name) - 1; n > top; n--) {
		a = dnssec_ancestor(name, (uint8_t)n);
		if (dnssec_at_or_below(owner, a) || dnssec_at_or_below(next, a))
			return a;
		ldns_rdf_deep_free(a);
	}
	return dnssec_rdf_clone(zone);
}

/*
 * Returns the NSEC proof for name and type.  NODATA is an NSEC at name
 * without the type, or an NSEC whose span contains descendants of name
 * (an empty non-terminal).  NXDOMAIN is an NSEC covering name and one
 * covering the wildcard at the closest encloser.  Wildcard NODATA is an
 * NSEC covering name and one at that wildcard without the type.
 */
static enum dnssec_proof
dnssec_nsec_deny(const ldns_rr_list *nsecs, const ldns_rdf *zone,
    const ldns_rdf *name, ldns_rr_type type, enum dns_status status)
{
	const ldns_rr *at = dnssec_nsec_at(nsecs, name), *cover;
	enum dnssec_proof proof = PROOF_NONE;
	ldns_rdf *ce, *wild;

	if (at != NULL)
		return status == DNS_NODATA ? dnssec_bitmap_nodata(at, type) :
		    PROOF_NONE;
	if ((cover = dnssec_nsec_covering(nsecs, name)) == NULL)
		return PROOF_NONE;
	if (ldns_dname_is_subdomain(ldns_rr_rdf(cover, 0), name))
		return status == DNS_NODATA ? PROOF_NODATA : PROOF_NONE;
	ce = dnssec_nsec_closest_encloser(cover, name, zone);
	if ((wild = dnssec_wildcard(ce)) != NULL) {
		at = dnssec_nsec_at(nsecs, wild);
		if (status == DNS_NXDOMAIN && at == NULL &&
		    dnssec_nsec_covering(nsecs, wild) != NULL)
			proof = PROOF_NXDOMAIN;
		else if (status == DNS_NODATA && at != NULL &&
		    dnssec_bitmap_nodata(at, type) == PROOF_NODATA)
			proof = PROOF_NODATA;
	}
	ldns_rdf_deep_free(wild);
	ldns_rdf_deep_free(ce);
	return proof;
}

/*
 * Hash name as NSEC3 does (RFC 5155 section 5): SHA-1 over the lower-case
 * wire form and the salt, then iterations more times over the hash and
 * the salt.  Returns 0, or -1 on failure.
 */
static int
dnssec_nsec3_hash(const struct dnssec_nsec3_set *set, const ldns_rdf *name,
    uint8_t out[DNSSEC_NSEC3_HASH_LEN])
{
	uint8_t buf[LDNS_MAX_DOMAINLEN + 256];
	size_t i, len = ldns_rdf_size(name);
	unsigned int mdlen;
	uint16_t k;

	if (len > LDNS_MAX_DOMAINLEN)
		return -1;
	memcpy(buf, ldns_rdf_data(name), len);
	/* Length octets are below 64, so only label bytes change. */
	for (i = 0; i < len; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] += 'a' - 'A';
	memcpy(buf + len, set->salt, set->salt_len);
	if (!EVP_Digest(buf, len + set->salt_len, out, &mdlen, EVP_sha1(),
	    NULL))
		return -1;
	for (k = 0; k < set->iterations; k++) {
		memcpy(buf, out, DNSSEC_NSEC3_HASH_LEN);
		memcpy(buf + DNSSEC_NSEC3_HASH_LEN, set->salt, set->salt_len);
		if (!EVP_Digest(buf, DNSSEC_NSEC3_HASH_LEN + set->salt_len, out,
		    &mdlen, EVP_sha1(), NULL))
			return -1;
	}
	return 0;
}

/*
 * Decode the first label of an NSEC3 owner name, base32hex without
 * padding (RFC 4648 section 7), into out.  Returns 0 if it is a SHA-1
 * hash, else -1.
 */
static int
dnssec_nsec3_owner_hash(const ldns_rr *rr, uint8_t out[DNSSEC_NSEC3_HASH_LEN])
{
	const uint8_t *label = ldns_rdf_data(ldns_rr_owner(rr));
	unsigned bits = 0, acc = 0, value;
	size_t i, n = 0;
	uint8_t c;

	/* 32 base32 characters carry exactly 160 bits. */
	if (ldns_rdf_size(ldns_rr_owner(rr)) < 33 || label[0] != 32)
		return -1;
	for (i = 1; i <= 32; i++) {
		c = label[i];
		if (c >= '0' && c <= '9')
			value = c - '0';
		else if (c >= 'a' && c <= 'v')
			value = c - 'a' + 10;
		else if (c >= 'A' && c <= 'V')
			value = c - 'A' + 10;
		else
			return -1;
		acc = (acc << 5 | value) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n == DNSSEC_NSEC3_HASH_LEN ? 0 : -1;
}

/*
 * Decode an NSEC3 record into e if it uses SHA-1, no flag but opt-out
 * (RFC 5155 section 8.2) and 20-byte hashes.  Returns 0 or -1.
 */
static int
dnssec_nsec3_decode(const ldns_rr *rr, struct dnssec_nsec3 *e)
{
	const ldns_rdf *salt = ldns_rr_rdf(rr, 3), *next = ldns_rr_rdf(rr, 4);
	uint8_t flags = dnssec_u8(rr, 1);

	if (dnssec_u8(rr, 0) != LDNS_SHA1 || (flags & ~1u) != 0 ||
	    ldns_rdf_size(salt) < 1 ||
	    ldns_rdf_data(salt)[0] + 1u != ldns_rdf_size(salt) ||
	    ldns_rdf_size(next) != DNSSEC_NSEC3_HASH_LEN + 1 ||
	    ldns_rdf_data(next)[0] != DNSSEC_NSEC3_HASH_LEN ||
	    dnssec_nsec3_owner_hash(rr, e->owner) == -1)
		return -1;
	memcpy(e->next, ldns_rdf_data(next) + 1, DNSSEC_NSEC3_HASH_LEN);
	e->rr = rr;
	e->optout = flags & 1;
	return 0;
}

/* Returns 1 if rr hashes with the salt and iterations of set. */
static int
dnssec_nsec3_same_params(const struct dnssec_nsec3_set *set,
    const ldns_rr *rr)
{
	const ldns_rdf *salt = ldns_rr_rdf(rr, 3);

	return dnssec_u16(rr, 2) == set->iterations &&
	    ldns_rdf_data(salt)[0] == set->salt_len &&
	    memcmp(ldns_rdf_data(salt) + 1, set->salt, set->salt_len) == 0;
}

/*
 * Fill set from the verified NSEC3 records: those that decode and share
 * the hashing of the first one that does.  Returns the number kept.
 */
static size_t
dnssec_nsec3_set_fill(struct dnssec_nsec3_set *set, const ldns_rr_list *rrs)
{
	struct dnssec_nsec3 e;
	const ldns_rr *rr;
	size_t i;

	memset(set, 0, sizeof(*set));
	for (i = 0; i < ldns_rr_list_rr_count(rrs) &&
	    set->n < DNSSEC_MAX_DENIAL; i++) {
		rr = ldns_rr_list_rr(rrs, i);
		if (dnssec_nsec3_decode(rr, &e) == -1)
			continue;
		if (set->n == 0) {
			set->iterations = dnssec_u16(rr, 2);
			set->salt_len = ldns_rdf_data(ldns_rr_rdf(rr, 3))[0];
			set->salt = ldns_rdf_data(ldns_rr_rdf(rr, 3)) + 1;
		} else if (!dnssec_nsec3_same_params(set, rr))
			continue;
		set->recs[set->n++] = e;
	}
	return set->n;
}

static const struct dnssec_nsec3 *
dnssec_nsec3_match(const struct dnssec_nsec3_set *set,
    const uint8_t hash[DNSSEC_NSEC3_HASH_LEN])
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (memcmp(set->recs[i].owner, hash,
		    DNSSEC_NSEC3_HASH_LEN) == 0)
			return &set->recs[i];
	return NULL;
}

/* Returns the NSEC3 record whose span contains hash, or NULL. */
static const struct dnssec_nsec3 *
dnssec_nsec3_cover(const struct dnssec_nsec3_set *set,
    const uint8_t hash[DNSSEC_NSEC3_HASH_LEN])
{
	const struct dnssec_nsec3 *e;
	int after_owner, before_next;
	size_t i;

	for (i = 0; i < set->n; i++) {
		e = &set->recs[i];
		after_owner = memcmp(hash, e->owner, DNSSEC_NSEC3_HASH_LEN) > 0;
		before_next = memcmp(hash, e->next, DNSSEC_NSEC3_HASH_LEN) < 0;
		if (memcmp(e->owner, e->next, DNSSEC_NSEC3_HASH_LEN) < 0 ?
		    after_owner && before_next : after_owner || before_next)
			return e;
	}
	return NULL;
}

/* The NSEC3 record matching name, or NULL. */
static const struct dnssec_nsec3 *
dnssec_nsec3_match_name(const struct dnssec_nsec3_set *set,
    const ldns_rdf *name)
{
	uint8_t hash[DNSSEC_NSEC3_HASH_LEN];

	if (dnssec_nsec3_hash(set, name, hash) == -1)
		return NULL;
	return dnssec_nsec3_match(set, hash);
}

/* The NSEC3 record covering name, or NULL. */
static const struct dnssec_nsec3 *
dnssec_nsec3_cover_name(const struct dnssec_nsec3_set *set,
    const ldns_rdf *name)
{
	uint8_t hash[DNSSEC_NSEC3_HASH_LEN];

	if (dnssec_nsec3_hash(set, name, hash) == -1)
		return NULL;
	return dnssec_nsec3_cover(set, hash);
}

/*
 * Find the closest encloser proof for name (RFC 5155 section 8.3).  The
 * closest encloser is the longest proper ancestor of name, no higher
 * than zone, with a matching NSEC3 record that is neither the parent's
 * at a delegation nor a DNAME.  An NSEC3 record must cover the next
 * closer name, and *nc_cover is set to it.  Returns the closest
 * encloser, to be freed, or NULL.
 */
static ldns_rdf *
dnssec_nsec3_closest_encloser(const struct dnssec_nsec3_set *set,
    const ldns_rdf *zone, const ldns_rdf *name,
    const struct dnssec_nsec3 **nc_cover)
{
	int n, top = ldns_dname_label_count(zone);
	const struct dnssec_nsec3 *m;
	ldns_rdf *ce, *nc;

	for (n = ldns_dname_label_count(name) - 1; n >= top; n--) {
		ce = dnssec_ancestor(name, (uint8_t)n);
		if ((m = dnssec_nsec3_match_name(set, ce)) == NULL) {
			ldns_rdf_deep_free(ce);
			continue;
		}
		nc = dnssec_ancestor(name, (uint8_t)(n + 1));
		*nc_cover = dnssec_nsec3_cover_name(set, nc);
		ldns_rdf_deep_free(nc);
		if (*nc_cover == NULL || dnssec_bitmap_delegation(m->rr) ||
		    dnssec_bitmap_has(m->rr, LDNS_RR_TYPE_DNAME)) {
			ldns_rdf_deep_free(ce);
			return NULL;
		}
		return ce;
	}
	return NULL;
}

/*
 * Returns the NSEC3 proof for name and type (RFC 5155 section 8).
 * NODATA is a matching NSEC3 without the type (8.5, 8.6).  The other
 * proofs start with a closest encloser proof, and then need an NSEC3
 * covering the wildcard (NXDOMAIN, 8.4), or matching the wildcard
 * without the type (wildcard NODATA, 8.7).  For DS an opt-out NSEC3
 * covering the next closer name is enough (8.6), and it makes the answer
 * insecure.  So does an opt-out span over the next closer name of an
 * NXDOMAIN answer.
 */
static enum dnssec_proof
dnssec_nsec3_deny(const struct dnssec_nsec3_set *set, const ldns_rdf *zone,
    const ldns_rdf *name, ldns_rr_type type, enum dns_status status)
{
	const struct dnssec_nsec3 *m, *nc_cover = NULL;
	enum dnssec_proof proof = PROOF_NONE;
	ldns_rdf *ce, *wild;

	if ((m = dnssec_nsec3_match_name(set, name)) != NULL)
		return status == DNS_NODATA ?
		    dnssec_bitmap_nodata(m->rr, type) : PROOF_NONE;
	ce = dnssec_nsec3_closest_encloser(set, zone, name, &nc_cover);
	if (ce == NULL)
		return PROOF_NONE;
	if (status == DNS_NODATA && type == LDNS_RR_TYPE_DS)
		proof = nc_cover->optout ? PROOF_INSECURE : PROOF_NONE;
	else if ((wild = dnssec_wildcard(ce)) != NULL) {
		m = dnssec_nsec3_match_name(set, wild);
		if (status == DNS_NXDOMAIN && m == NULL &&
		    dnssec_nsec3_cover_name(set, wild) != NULL)
			proof = nc_cover->optout ? PROOF_INSECURE :
			    PROOF_NXDOMAIN;
		else if (status == DNS_NODATA && m != NULL &&
		    dnssec_bitmap_nodata(m->rr, type) == PROOF_NODATA)
			proof = PROOF_NODATA;
		ldns_rdf_deep_free(wild);
	}
	ldns_rdf_deep_free(ce);
	return proof;
}

/*
 * Check the proof in d that name has no record of type (status
 * DNS_NODATA) or does not exist (DNS_NXDOMAIN).  Returns the proof, or
 * PROOF_NONE with *reason set.
 */
static enum dnssec_proof
dnssec_deny(const struct dnssec_denial *d, const ldns_rdf *name,
    ldns_rr_type type, enum dns_status status, const char **reason)
{
	struct dnssec_nsec3_set set;
	enum dnssec_proof proof;

	*reason = d->reason;
	if (ldns_rr_list_rr_count(d->nsecs) > 0) {
		proof = dnssec_nsec_deny(d->nsecs, d->zone, name, type, status);
	} else if (dnssec_nsec3_set_fill(&set, d->nsec3s) > 0) {
		if (set.iterations > DNSSEC_NSEC3_MAX_ITERATIONS)
			return PROOF_INSECURE;
		proof = dnssec_nsec3_deny(&set, d->zone, name, type, status);
	} else
		return PROOF_NONE;
	if (proof == PROOF_NONE)
		*reason = status == DNS_NXDOMAIN ?
		    "the NSEC or NSEC3 records do not prove that the name "
		    "does not exist" :
		    "the NSEC or NSEC3 records do not prove that the type "
		    "does not exist";
	return proof;
}

/*
 * Returns 1 if d proves that owner does not exist itself, which an
 * answer made from a wildcard needs.  labels is the RRSIG label count.
 * The proof is an NSEC covering owner (RFC 4035 section 5.3.4), or an
 * NSEC3 covering the next closer name (RFC 5155 section 8.8).
 */
static int
dnssec_wildcard_proven(const struct dnssec_denial *d, const ldns_rdf *owner,
    uint8_t labels)
{
	struct dnssec_nsec3_set set;
	ldns_rdf *nc;
	int proven;

	if (dnssec_nsec_covering(d->nsecs, owner) != NULL)
		return 1;
	if (dnssec_nsec3_set_fill(&set, d->nsec3s) == 0 ||
	    set.iterations > DNSSEC_NSEC3_MAX_ITERATIONS)
		return 0;
	nc = dnssec_ancestor(owner, labels + 1);
	proven = dnssec_nsec3_cover_name(&set, nc) != NULL;
	ldns_rdf_deep_free(nc);
	return proven;
}

/*
 * Frames.
 */

static void
dnssec_frame_clear(struct dnssec_frame *f)
{
	ldns_rdf_deep_free(f->name);
	ldns_rdf_deep_free(f->zone);
	ldns_rr_list_deep_free(f->trust);
	dnssec_msg_clear(&f->msg);
	dnssec_result_clear(&f->child);
	dnssec_result_clear(&f->out);
	memset(f, 0, sizeof(*f));
}

static void
dnssec_frame_init(struct dnssec_frame *f, enum dnssec_frame_kind kind,
    const ldns_rdf *name, ldns_rr_type type)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->step = STEP_START;
	f->name = dnssec_rdf_clone(name);
	f->type = type;
	f->out.security = DNSSEC_SECURE;
	f->out.ttl = DNSSEC_MAX_TTL;
}

/* The record type a new frame of kind above parent deals with. */
static ldns_rr_type
dnssec_frame_type(enum dnssec_frame_kind kind,
    const struct dnssec_frame *parent)
{
	switch (kind) {
	case FRAME_CHECK:
		return parent->type;
	case FRAME_KEYS:
		return LDNS_RR_TYPE_DNSKEY;
	case FRAME_DS:
		return LDNS_RR_TYPE_DS;
	default:
		return 0;
	}
}

/*
 * Start a frame of kind for name above parent, which waits for its
 * result.  A CHECK checks the answer in parent's msg.  Returns
 * RUN_CONTINUE, or RUN_DONE with parent bogus when the stack is full.
 */
static enum dnssec_run
dnssec_push(struct dnssec_query *job, struct dnssec_frame *parent,
    enum dnssec_frame_kind kind, const ldns_rdf *name)
{
	struct dnssec_frame *f;

	if (job->depth == DNSSEC_MAX_FRAMES)
		return dnssec_bogus(parent, "chain of trust too long");
	f = &job->frames[job->depth++];
	dnssec_frame_init(f, kind, name, dnssec_frame_type(kind, parent));
	if (kind == FRAME_CHECK) {
		f->check = &parent->msg;
		f->no_climb = parent->kind == FRAME_DS;
		f->out.ttl = dnssec_min(parent->msg.ttl, DNSSEC_MAX_TTL);
	}
	return RUN_CONTINUE;
}

static void
dnssec_fetch_cb(void *arg, const struct dns_answer *answer)
{
	struct dnssec_query *job = arg;

	job->dq = NULL;
	dnssec_msg_copy(&job->frames[job->depth - 1].msg, answer);
	dnssec_job_run(job);
}

/* Look up type at f's name into f->msg, within the job's budget. */
static enum dnssec_run
dnssec_fetch(struct dnssec_query *job, struct dnssec_frame *f,
    ldns_rr_type type)
{
	char text[DNSSEC_NAME_TEXT];

	if (job->fetches == DNSSEC_MAX_FETCHES)
		return dnssec_bogus(f,
		    "too many DNS lookups for one validation");
	job->fetches++;
	job->dq = dns_lookup_dnssec(job->ctx->dns,
	    dnssec_name_text(f->name, text), type, dnssec_fetch_cb, job);
	return RUN_WAIT;
}

/* Report a failed lookup of f's own answer. */
static enum dnssec_run
dnssec_fetch_failed(struct dnssec_frame *f, const char *what)
{
	f->out.ttl = 0;
	return dnssec_finish(f, DNSSEC_UNVALIDATED, what);
}

/*
 * ANSWER: the lookup's own name and type.
 */

static enum dnssec_run
dnssec_answer_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	char key[DNSSEC_NAME_TEXT + 32];

	switch (f->step) {
	case STEP_START:
		dnssec_cache_key(key, "answer", f->name, f->type);
		if (dnssec_cache_load(job->ctx, key, &f->out, &f->msg.status,
		    &f->msg.rrs)) {
			f->cached = 1;
			return RUN_DONE;
		}
		f->step = STEP_FETCHED;
		return dnssec_fetch(job, f, f->type);
	case STEP_FETCHED:
		if (dnssec_msg_failed(&f->msg))
			return dnssec_fetch_failed(f, "DNS lookup failed");
		f->step = STEP_CHECKED;
		return dnssec_push(job, f, FRAME_CHECK, f->name);
	case STEP_CHECKED:
		dnssec_result_take(&f->out, &f->child);
		return RUN_DONE;
	default:
		fatal_invariant("DNSSEC answer frame in an unknown step");
	}
}

/*
 * CHECK: the RRsets of an answer, one after the other.  Set i below the
 * number of CNAMEs is that CNAME record, the last set is the answer's
 * records or the proof that there are none.
 */

static size_t
dnssec_check_sets(const struct dnssec_frame *f)
{
	return ldns_rr_list_rr_count(f->check->cnames) + 1;
}

static int
dnssec_check_is_cname(const struct dnssec_frame *f)
{
	return f->set < ldns_rr_list_rr_count(f->check->cnames);
}

static int
dnssec_check_is_denial(const struct dnssec_frame *f)
{
	return !dnssec_check_is_cname(f) && f->check->status != DNS_OK;
}

/* The name the answer's records or their denial belong to. */
static const ldns_rdf *
dnssec_check_final_name(const struct dnssec_frame *f)
{
	size_t n = ldns_rr_list_rr_count(f->check->cnames);

	if (n == 0)
		return f->name;
	return ldns_rr_rdf(ldns_rr_list_rr(f->check->cnames, n - 1), 0);
}

/* Fill rrset with the records of the current positive set. */
static void
dnssec_check_rrset(const struct dnssec_frame *f, ldns_rr_list *rrset)
{
	size_t i;

	if (dnssec_check_is_cname(f)) {
		dnssec_list_push(rrset,
		    ldns_rr_list_rr(f->check->cnames, f->set));
		return;
	}
	for (i = 0; i < ldns_rr_list_rr_count(f->check->rrs); i++)
		dnssec_list_push(rrset, ldns_rr_list_rr(f->check->rrs, i));
}

/* The owner of the current set, or NULL for an empty answer. */
static const ldns_rdf *
dnssec_check_owner(const struct dnssec_frame *f)
{
	if (dnssec_check_is_cname(f))
		return ldns_rr_owner(ldns_rr_list_rr(f->check->cnames, f->set));
	if (dnssec_check_is_denial(f))
		return dnssec_check_final_name(f);
	if (ldns_rr_list_rr_count(f->check->rrs) == 0)
		return NULL;
	return ldns_rr_owner(ldns_rr_list_rr(f->check->rrs, 0));
}

/*
 * Returns 1 if a signer may sign data at owner under the anchor: at or
 * below the anchor, at or above owner, and above it for DS, which the
 * parent zone signs.
 */
static int
dnssec_signer_allowed(const ldns_rdf *signer, const ldns_rdf *owner,
    ldns_rr_type type, const ldns_rdf *anchor)
{
	return dnssec_at_or_below(signer, anchor) &&
	    dnssec_at_or_below(owner, signer) &&
	    !(type == LDNS_RR_TYPE_DS &&
	    ldns_dname_compare(signer, owner) == 0);
}

/*
 * Returns 1 if sig may validate the current set: an RRSIG over its
 * records, or for a denial over the SOA, NSEC or NSEC3 records of the
 * authority section.
 */
static int
dnssec_check_sig_relevant(const struct dnssec_frame *f, const ldns_rr *sig,
    const ldns_rdf *owner)
{
	uint16_t covered = dnssec_u16(sig, 0);
	ldns_rr_type type = dnssec_check_is_cname(f) ? LDNS_RR_TYPE_CNAME :
	    f->type;

	if (dnssec_check_is_denial(f))
		return covered == LDNS_RR_TYPE_SOA ||
		    covered == LDNS_RR_TYPE_NSEC ||
		    covered == LDNS_RR_TYPE_NSEC3;
	return covered == type &&
	    ldns_dname_compare(ldns_rr_owner(sig), owner) == 0;
}

/*
 * Returns the signer of the first RRSIG that may validate the current
 * set and whose signer the anchor allows, or NULL if there is none.
 */
static const ldns_rdf *
dnssec_check_signer(const struct dnssec_frame *f, const ldns_rdf *owner,
    const ldns_rdf *anchor)
{
	const ldns_rr_list *sigs = dnssec_check_is_denial(f) ?
	    f->check->authority : f->check->sigs;
	const ldns_rdf *signer;
	const ldns_rr *sig;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(sigs); i++) {
		sig = ldns_rr_list_rr(sigs, i);
		if (!dnssec_rr_shaped(sig, LDNS_RR_TYPE_RRSIG,
		    DNSSEC_RRSIG_FIELDS) ||
		    !dnssec_check_sig_relevant(f, sig, owner))
			continue;
		signer = ldns_rr_rrsig_signame(sig);
		if (ldns_rdf_get_type(signer) == LDNS_RDF_TYPE_DNAME &&
		    dnssec_signer_allowed(signer, owner, f->type, anchor))
			return signer;
	}
	return NULL;
}

/* Verify the current positive set with the zone's keys. */
static const char *
dnssec_check_verify_rrset(struct dnssec_query *job, struct dnssec_frame *f,
    const ldns_rr_list *keys)
{
	ldns_rr_list *rrset = dnssec_list_new();
	struct dnssec_denial d;
	const char *reason;
	uint8_t labels = 0;

	dnssec_check_rrset(f, rrset);
	reason = dnssec_verify_rrset(job, rrset, f->check->sigs, f->zone, keys,
	    &f->out.ttl, &labels);
	if (reason == NULL && dnssec_expanded(dnssec_check_owner(f), labels)) {
		dnssec_denial_collect(job, &d, f->check->authority, f->zone,
		    keys);
		if (!dnssec_wildcard_proven(&d, dnssec_check_owner(f), labels))
			reason = "wildcard answer without a proof that the "
			    "name does not exist";
		f->out.ttl = dnssec_min(f->out.ttl, d.ttl);
		dnssec_denial_free(&d);
	}
	if (reason == NULL && !dnssec_check_is_cname(f))
		f->out.proof = PROOF_DATA;
	ldns_rr_list_free(rrset);
	return reason;
}

/* Verify the proof that the answer's records do not exist. */
static const char *
dnssec_check_verify_denial(struct dnssec_query *job, struct dnssec_frame *f,
    const ldns_rr_list *keys)
{
	struct dnssec_denial d;
	enum dnssec_proof proof;
	const char *reason;

	dnssec_denial_collect(job, &d, f->check->authority, f->zone, keys);
	proof = dnssec_deny(&d, dnssec_check_final_name(f), f->type,
	    f->check->status, &reason);
	f->out.ttl = dnssec_min(f->out.ttl, d.ttl);
	dnssec_denial_free(&d);
	if (proof == PROOF_NONE)
		return reason;
	if (proof == PROOF_INSECURE)
		dnssec_merge(&f->out, DNSSEC_INSECURE);
	f->out.proof = proof;
	return NULL;
}

static enum dnssec_run
dnssec_check_next(struct dnssec_query *job, struct dnssec_frame *f)
{
	const struct dnssec_anchor *anchor;
	const ldns_rdf *owner, *signer;

	if (f->set == dnssec_check_sets(f))
		return RUN_DONE;
	if ((owner = dnssec_check_owner(f)) == NULL)
		return dnssec_bogus(f, "answer without records");
	if ((anchor = dnssec_anchor_find(job->ctx, owner)) == NULL) {
		dnssec_merge(&f->out, DNSSEC_INSECURE);
		f->set++;
		return RUN_CONTINUE;
	}
	signer = dnssec_check_signer(f, owner, anchor->name);
	if (signer == NULL && f->no_climb) {
		f->out.proof = PROOF_UNSIGNED;
		return dnssec_bogus(f, "no RRSIG record");
	}
	if (signer == NULL) {
		f->step = STEP_CLIMB_DONE;
		return dnssec_push(job, f, FRAME_CLIMB, owner);
	}
	ldns_rdf_deep_free(f->zone);
	f->zone = dnssec_rdf_clone(signer);
	f->step = STEP_KEYS_DONE;
	return dnssec_push(job, f, FRAME_KEYS, signer);
}

/* Go on with the next set, the current one being insecure or secure. */
static enum dnssec_run
dnssec_check_advance(struct dnssec_frame *f)
{
	dnssec_merge(&f->out, f->child.security);
	f->out.ttl = dnssec_min(f->out.ttl, f->child.ttl);
	dnssec_result_clear(&f->child);
	f->set++;
	f->step = STEP_START;
	return RUN_CONTINUE;
}

static enum dnssec_run
dnssec_check_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	const char *reason;

	switch (f->step) {
	case STEP_START:
		return dnssec_check_next(job, f);
	case STEP_KEYS_DONE:
		if (f->child.security == DNSSEC_SECURE) {
			reason = dnssec_check_is_denial(f) ?
			    dnssec_check_verify_denial(job, f, f->child.rrs) :
			    dnssec_check_verify_rrset(job, f, f->child.rrs);
			if (reason != NULL)
				return dnssec_bogus(f, reason);
		} else if (f->child.security != DNSSEC_INSECURE)
			return dnssec_propagate(f);
		return dnssec_check_advance(f);
	case STEP_CLIMB_DONE:
		if (f->child.security != DNSSEC_INSECURE)
			return dnssec_propagate(f);
		return dnssec_check_advance(f);
	default:
		fatal_invariant("DNSSEC check frame in an unknown step");
	}
}

/*
 * KEYS: the validated zone keys of the zone in f->name.
 */

/* Validate the fetched DNSKEY RRset with the trust records. */
static enum dnssec_run
dnssec_keys_validate(struct dnssec_query *job, struct dnssec_frame *f)
{
	const ldns_rr_list *rrs = f->msg.rrs;
	ldns_rr_list *zone_keys = dnssec_list_new();
	ldns_rr_list *trusted = dnssec_list_new();
	const char *reason = NULL;
	enum dnssec_security security = DNSSEC_SECURE;
	uint32_t ttl = f->trust_ttl;
	uint8_t labels;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (dnssec_zone_key(ldns_rr_list_rr(rrs, i)) &&
		    ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(rrs, i)),
		    f->name) == 0)
			dnssec_list_push(zone_keys, ldns_rr_list_rr(rrs, i));
	if (ldns_rr_list_rr_count(rrs) > DNSSEC_MAX_DNSKEYS)
		reason = "too many DNSKEY records (maximum 16)";
	else if (dnssec_match_trust(f->trust, zone_keys, trusted) == 0)
		security = DNSSEC_INSECURE;
	else if (ldns_rr_list_rr_count(trusted) == 0)
		reason = f->anchored ? "no DNSKEY matches the trust anchor" :
		    "no DNSKEY matches the DS records";
	else
		reason = dnssec_verify_rrset(job, rrs, f->msg.sigs, f->name,
		    trusted, &ttl, &labels);
	if (reason == NULL && security == DNSSEC_SECURE)
		f->out.rrs = dnssec_list_clone(zone_keys);
	f->out.ttl = ttl;
	ldns_rr_list_free(zone_keys);
	ldns_rr_list_free(trusted);
	if (reason != NULL)
		return dnssec_bogus(f, reason);
	return dnssec_finish(f, security, NULL);
}

static enum dnssec_run
dnssec_keys_start(struct dnssec_query *job, struct dnssec_frame *f)
{
	const struct dnssec_anchor *anchor;
	char key[DNSSEC_NAME_TEXT + 32];

	dnssec_cache_key(key, "keys", f->name, LDNS_RR_TYPE_DNSKEY);
	if (dnssec_cache_load(job->ctx, key, &f->out, NULL, NULL)) {
		f->cached = 1;
		return RUN_DONE;
	}
	if ((anchor = dnssec_anchor_find(job->ctx, f->name)) == NULL)
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	if (ldns_dname_compare(anchor->name, f->name) == 0) {
		f->trust = dnssec_list_clone(anchor->rrs);
		f->trust_ttl = DNSSEC_MAX_TTL;
		f->anchored = 1;
		f->step = STEP_FETCHED;
		return dnssec_fetch(job, f, LDNS_RR_TYPE_DNSKEY);
	}
	f->step = STEP_DS_DONE;
	return dnssec_push(job, f, FRAME_DS, f->name);
}

static enum dnssec_run
dnssec_keys_ds_done(struct dnssec_query *job, struct dnssec_frame *f)
{
	enum dnssec_run run;
	ldns_rdf *parent;

	switch (f->child.ds) {
	case DS_PRESENT:
		f->trust = f->child.rrs;
		f->child.rrs = NULL;
		f->trust_ttl = f->child.ttl;
		f->step = STEP_FETCHED;
		return dnssec_fetch(job, f, LDNS_RR_TYPE_DNSKEY);
	case DS_INSECURE:
		f->out.ttl = f->child.ttl;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	case DS_NO_CUT:
		return dnssec_bogus(f, "RRSIG signer name is not a zone apex");
	case DS_UNSIGNED:
		/* An unsigned DS answer needs a proof from higher up. */
		if ((parent = ldns_dname_left_chop(f->name)) == NULL)
			fatal_invariant("DS lookup of the root zone");
		f->step = STEP_CLIMB_DONE;
		run = dnssec_push(job, f, FRAME_CLIMB, parent);
		ldns_rdf_deep_free(parent);
		return run;
	default:
		return dnssec_propagate(f);
	}
}

static enum dnssec_run
dnssec_keys_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	switch (f->step) {
	case STEP_START:
		return dnssec_keys_start(job, f);
	case STEP_DS_DONE:
		return dnssec_keys_ds_done(job, f);
	case STEP_FETCHED:
		if (dnssec_msg_failed(&f->msg))
			return dnssec_fetch_failed(f, "DNSKEY lookup failed");
		if (f->msg.status != DNS_OK ||
		    ldns_rr_list_rr_count(f->msg.cnames) > 0)
			return dnssec_bogus(f,
			    "no DNSKEY RRset at the zone apex");
		return dnssec_keys_validate(job, f);
	case STEP_CLIMB_DONE:
		if (f->child.security != DNSSEC_INSECURE)
			return dnssec_propagate(f);
		f->out.ttl = f->child.ttl;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	default:
		fatal_invariant("DNSSEC keys frame in an unknown step");
	}
}

/*
 * DS: what the DS RRset at f->name says about a zone cut there.
 */

/* Turn the CHECK result of a DS answer into a DS result. */
static enum dnssec_run
dnssec_ds_checked(struct dnssec_frame *f)
{
	const struct dnssec_result *c = &f->child;

	f->out.ttl = c->ttl;
	if (c->proof == PROOF_UNSIGNED) {
		f->out.ds = DS_UNSIGNED;
		return dnssec_bogus(f, "DS answer without RRSIG records");
	}
	if (c->security == DNSSEC_INSECURE) {
		f->out.ds = DS_INSECURE;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	}
	if (c->security != DNSSEC_SECURE)
		return dnssec_propagate(f);
	switch (c->proof) {
	case PROOF_DATA:
		if (ldns_rr_list_rr_count(f->msg.rrs) > DNSSEC_MAX_DS)
			return dnssec_bogus(f,
			    "too many DS records (maximum 16)");
		f->out.ds = DS_PRESENT;
		f->out.rrs = dnssec_list_clone(f->msg.rrs);
		return dnssec_finish(f, DNSSEC_SECURE, NULL);
	case PROOF_DELEGATION:
		f->out.ds = DS_INSECURE;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	case PROOF_NXDOMAIN:
	case PROOF_NODATA:
		f->out.ds = DS_NO_CUT;
		return dnssec_finish(f, DNSSEC_SECURE, NULL);
	default:
		return dnssec_bogus(f, "DS answer without a usable proof");
	}
}

static enum dnssec_run
dnssec_ds_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	char key[DNSSEC_NAME_TEXT + 32];

	switch (f->step) {
	case STEP_START:
		dnssec_cache_key(key, "ds", f->name, LDNS_RR_TYPE_DS);
		if (dnssec_cache_load(job->ctx, key, &f->out, NULL, NULL)) {
			f->cached = 1;
			return RUN_DONE;
		}
		f->step = STEP_FETCHED;
		return dnssec_fetch(job, f, LDNS_RR_TYPE_DS);
	case STEP_FETCHED:
		if (dnssec_msg_failed(&f->msg))
			return dnssec_fetch_failed(f, "DS lookup failed");
		if (ldns_rr_list_rr_count(f->msg.cnames) > 0)
			return dnssec_bogus(f,
			    "CNAME record at a DS owner name");
		f->step = STEP_CHECKED;
		return dnssec_push(job, f, FRAME_CHECK, f->name);
	case STEP_CHECKED:
		return dnssec_ds_checked(f);
	default:
		fatal_invariant("DNSSEC DS frame in an unknown step");
	}
}

/*
 * CLIMB: from f->name up to the trust anchor in f->zone, look for the
 * unsigned delegation that makes unsigned data insecure.
 */

static enum dnssec_run
dnssec_climb_start(struct dnssec_query *job, struct dnssec_frame *f)
{
	const struct dnssec_anchor *anchor;

	if (f->zone == NULL) {
		if ((anchor = dnssec_anchor_find(job->ctx, f->name)) == NULL)
			return dnssec_finish(f, DNSSEC_INSECURE, NULL);
		f->zone = dnssec_rdf_clone(anchor->name);
	}
	/* At the anchor, only an anchor of unknown algorithms is insecure. */
	if (!ldns_dname_is_subdomain(f->name, f->zone)) {
		f->step = STEP_KEYS_DONE;
		return dnssec_push(job, f, FRAME_KEYS, f->name);
	}
	f->step = STEP_DS_DONE;
	return dnssec_push(job, f, FRAME_DS, f->name);
}

static enum dnssec_run
dnssec_climb_ds_done(struct dnssec_query *job, struct dnssec_frame *f)
{
	ldns_rdf *parent;

	switch (f->child.ds) {
	case DS_UNSIGNED:
		if ((parent = ldns_dname_left_chop(f->name)) == NULL)
			fatal_invariant("climb above the root zone");
		ldns_rdf_deep_free(f->name);
		f->name = parent;
		dnssec_result_clear(&f->child);
		f->step = STEP_START;
		return RUN_CONTINUE;
	case DS_INSECURE:
		f->out.ttl = f->child.ttl;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	case DS_PRESENT:
		/* Signed, unless by algorithms the validator lacks. */
		dnssec_result_clear(&f->child);
		f->step = STEP_KEYS_DONE;
		return dnssec_push(job, f, FRAME_KEYS, f->name);
	case DS_NO_CUT:
		return dnssec_bogus(f, "no RRSIG record in a signed zone");
	default:
		return dnssec_propagate(f);
	}
}

static enum dnssec_run
dnssec_climb_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	switch (f->step) {
	case STEP_START:
		return dnssec_climb_start(job, f);
	case STEP_DS_DONE:
		return dnssec_climb_ds_done(job, f);
	case STEP_KEYS_DONE:
		if (f->child.security == DNSSEC_SECURE)
			return dnssec_bogus(f,
			    "no RRSIG record in a signed zone");
		if (f->child.security != DNSSEC_INSECURE)
			return dnssec_propagate(f);
		f->out.ttl = f->child.ttl;
		return dnssec_finish(f, DNSSEC_INSECURE, NULL);
	default:
		fatal_invariant("DNSSEC climb frame in an unknown step");
	}
}

static enum dnssec_run
dnssec_frame_step(struct dnssec_query *job, struct dnssec_frame *f)
{
	switch (f->kind) {
	case FRAME_ANSWER:
		return dnssec_answer_step(job, f);
	case FRAME_CHECK:
		return dnssec_check_step(job, f);
	case FRAME_KEYS:
		return dnssec_keys_step(job, f);
	case FRAME_DS:
		return dnssec_ds_step(job, f);
	case FRAME_CLIMB:
		return dnssec_climb_step(job, f);
	default:
		fatal_invariant("DNSSEC frame of an unknown kind");
	}
}

/* Cache what a finished ANSWER, KEYS or DS frame found. */
static void
dnssec_frame_store(struct dnssec_query *job, const struct dnssec_frame *f)
{
	char key[DNSSEC_NAME_TEXT + 32];

	if (f->cached)
		return;
	switch (f->kind) {
	case FRAME_ANSWER:
		dnssec_cache_key(key, "answer", f->name, f->type);
		dnssec_cache_store(job->ctx, key, &f->out, f->msg.status,
		    f->msg.rrs);
		break;
	case FRAME_KEYS:
		dnssec_cache_key(key, "keys", f->name, LDNS_RR_TYPE_DNSKEY);
		dnssec_cache_store(job->ctx, key, &f->out, DNS_OK, NULL);
		break;
	case FRAME_DS:
		dnssec_cache_key(key, "ds", f->name, LDNS_RR_TYPE_DS);
		dnssec_cache_store(job->ctx, key, &f->out, DNS_OK, NULL);
		break;
	default:
		break;
	}
}

/* Remove the finished top frame and hand its result to the one below. */
static void
dnssec_pop(struct dnssec_query *job)
{
	struct dnssec_frame *f = &job->frames[job->depth - 1], *below;
	char text[DNSSEC_NAME_TEXT];

	log_debug("dnssec: frame done kind=%s name=%s security=%s "
	    "reason=\"%s\"", dnssec_frame_names[f->kind],
	    dnssec_name_text(f->name, text),
	    dnssec_security_name(f->out.security),
	    f->out.reason != NULL ? f->out.reason : "");
	dnssec_frame_store(job, f);
	if (job->depth == 1) {
		job->result = f->out;
		job->status = f->msg.status;
		job->rrs = f->msg.rrs;
		f->msg.rrs = NULL;
	} else {
		below = &job->frames[job->depth - 2];
		dnssec_result_clear(&below->child);
		below->child = f->out;
	}
	memset(&f->out, 0, sizeof(f->out));
	dnssec_frame_clear(f);
	job->depth--;
}

/*
 * Jobs.
 */

static void
dnssec_job_free(struct dnssec_query *job)
{
	while (job->depth > 0)
		dnssec_frame_clear(&job->frames[--job->depth]);
	dnssec_result_clear(&job->result);
	ldns_rr_list_deep_free(job->rrs);
	ldns_rdf_deep_free(job->qname);
	free(job);
}

/* Call back with the job's result, then free it. */
static void
dnssec_job_deliver(struct dnssec_query *job)
{
	struct dnssec_answer answer;
	struct dns_answer dns;
	char text[DNSSEC_NAME_TEXT];

	memset(&dns, 0, sizeof(dns));
	dns.status = job->status;
	dns.ttl = job->result.ttl;
	if (job->result.security == DNSSEC_BOGUS ||
	    (job->result.security == DNSSEC_UNVALIDATED &&
	    dns.status != DNS_TIMEOUT))
		dns.status = DNS_SERVFAIL;
	if (dns.status == DNS_SERVFAIL || dns.status == DNS_TIMEOUT)
		dns.ttl = 0;
	dns.rrs = dns.status == DNS_OK ? job->rrs : NULL;
	dns.secure = job->result.security == DNSSEC_SECURE;
	answer.dns = &dns;
	answer.security = job->result.security;
	answer.reason = job->result.reason;
	if (answer.security == DNSSEC_BOGUS)
		log_notice("dnssec: validation failed name=%s type=%u "
		    "reason=\"%s\"", dnssec_name_text(job->qname, text),
		    (unsigned)job->qtype, answer.reason != NULL ?
		    answer.reason : "");
	TAILQ_REMOVE(&job->ctx->running, job, entry);
	job->state = QUERY_CALLING;
	job->cb(job->arg, &answer);
	dnssec_job_free(job);
}

/* Run the job's frames until it waits for DNS or has its result. */
static void
dnssec_job_run(struct dnssec_query *job)
{
	struct dnssec_frame *f;
	enum dnssec_run run;

	while (job->depth > 0) {
		f = &job->frames[job->depth - 1];
		if (++job->steps > DNSSEC_MAX_STEPS)
			run = dnssec_bogus(f, "too many validation steps");
		else
			run = dnssec_frame_step(job, f);
		if (run == RUN_WAIT)
			return;
		if (run == RUN_DONE)
			dnssec_pop(job);
	}
	dnssec_job_deliver(job);
}

static void
dnssec_queue_start(struct dnssec_ctx *ctx)
{
	if (ev_is_active(&ctx->queue_timer))
		return;
	ev_timer_set(&ctx->queue_timer, 0., 0.);
	ev_timer_start(ctx->loop, &ctx->queue_timer);
}

/*
 * Start the jobs that were queued when the timer fired.  Jobs queued by
 * the callbacks wait for the next round.
 */
static void
dnssec_queue_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dnssec_ctx *ctx = w->data;
	uint64_t last = ctx->seq;
	struct dnssec_query *job;

	while ((job = TAILQ_FIRST(&ctx->queued)) != NULL && job->seq <= last) {
		TAILQ_REMOVE(&ctx->queued, job, entry);
		job->state = QUERY_RUNNING;
		TAILQ_INSERT_TAIL(&ctx->running, job, entry);
		dnssec_job_run(job);
	}
	if (!TAILQ_EMPTY(&ctx->queued))
		dnssec_queue_start(ctx);
}

/*
 * The context and the lookup entry points.
 */

struct dnssec_ctx *
dnssec_new(struct ev_loop *loop, struct dns_ctx *dns,
    const struct dnssec_config *config)
{
	struct dnssec_ctx *ctx = xcalloc(1, sizeof(*ctx));
	size_t entries = DNSSEC_DEFAULT_CACHE_ENTRIES;
	size_t bytes = DNSSEC_DEFAULT_CACHE_BYTES;

	ctx->loop = loop;
	ctx->dns = dns;
	if (config != NULL) {
		ctx->policy = config->policy;
		if (config->cache_max_entries > 0)
			entries = config->cache_max_entries;
		if (config->cache_max_bytes > 0)
			bytes = config->cache_max_bytes;
	}
	ctx->cache = cache_new(entries, bytes, dnssec_entry_free);
	TAILQ_INIT(&ctx->queued);
	TAILQ_INIT(&ctx->running);
	ev_init(&ctx->queue_timer, dnssec_queue_cb);
	ctx->queue_timer.data = ctx;
	return ctx;
}

void
dnssec_free(struct dnssec_ctx *ctx)
{
	struct dnssec_query *job;
	size_t i;

	if (ctx == NULL)
		return;
	ev_timer_stop(ctx->loop, &ctx->queue_timer);
	while ((job = TAILQ_FIRST(&ctx->queued)) != NULL) {
		TAILQ_REMOVE(&ctx->queued, job, entry);
		dnssec_job_free(job);
	}
	while ((job = TAILQ_FIRST(&ctx->running)) != NULL) {
		TAILQ_REMOVE(&ctx->running, job, entry);
		dns_cancel(job->dq);
		dnssec_job_free(job);
	}
	cache_free(ctx->cache);
	for (i = 0; i < ctx->nanchors; i++) {
		ldns_rdf_deep_free(ctx->anchors[i].name);
		ldns_rr_list_deep_free(ctx->anchors[i].rrs);
	}
	free(ctx);
}

struct dnssec_query *
dnssec_lookup(struct dnssec_ctx *ctx, const char *name, ldns_rr_type type,
    dnssec_cb *cb, void *arg)
{
	struct dnssec_query *job = xcalloc(1, sizeof(*job));

	job->ctx = ctx;
	job->cb = cb;
	job->arg = arg;
	job->qtype = type;
	if (name == NULL || strlen(name) >= DNSSEC_NAME_TEXT ||
	    ldns_str2rdf_dname(&job->qname, name) != LDNS_STATUS_OK ||
	    job->qname == NULL) {
		job->status = DNS_SERVFAIL;
		job->result.security = DNSSEC_UNVALIDATED;
		job->result.reason = "invalid name";
	} else {
		ldns_dname2canonical(job->qname);
		dnssec_frame_init(&job->frames[0], FRAME_ANSWER, job->qname,
		    type);
		job->depth = 1;
	}
	job->state = QUERY_QUEUED;
	job->seq = ++ctx->seq;
	TAILQ_INSERT_TAIL(&ctx->queued, job, entry);
	dnssec_queue_start(ctx);
	return job;
}

void
dnssec_cancel(struct dnssec_query *job)
{
	if (job == NULL)
		return;
	switch (job->state) {
	case QUERY_QUEUED:
		TAILQ_REMOVE(&job->ctx->queued, job, entry);
		break;
	case QUERY_RUNNING:
		TAILQ_REMOVE(&job->ctx->running, job, entry);
		dns_cancel(job->dq);
		break;
	case QUERY_CALLING:
		/* dnssec_job_deliver() frees it when the callback returns. */
		return;
	default:
		fatal_invariant("DNSSEC query in an unknown state");
	}
	dnssec_job_free(job);
}

int
dnssec_policy_rejects(const struct dnssec_ctx *ctx,
    enum dnssec_security security)
{
	if (security == DNSSEC_BOGUS)
		return 1;
	return security == DNSSEC_INSECURE &&
	    ctx->policy == DNSSEC_POLICY_REQUIRE;
}

uint64_t
dnssec_signature_checks(const struct dnssec_ctx *ctx)
{
	return ctx->checks;
}
