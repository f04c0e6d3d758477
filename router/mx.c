/*
 * MX resolution for the outbound SMTP client (see mx.h): one MX query,
 * then AAAA and A queries for every selected host in parallel, then one
 * ordered list of addresses handed to the caller.
 *
 * NOTE: the result waits for the address lookups of every host, so a slow
 * answer for a backup MX delays the first connection by up to the DNS
 * client's timeout.  With a warm cache all of them return at once.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "mx.h"
#include "random.h"
#include "xmalloc.h"

/* The AAAA or A query of one host, and the addresses it returned. */
struct mx_addr_query {
	struct mx_lookup	*lookup;
	struct dns_query	*query;	/* NULL once answered */
	int			 family;
	enum dns_status		 status;
	size_t			 naddrs;
	unsigned char		 addrs[MX_TARGETS_MAX][16];
};

struct mx_lookup {
	struct dns_ctx		*dns;
	mx_cb			*cb;
	void			*arg;
	char			 domain[MX_NAME_MAX];
	struct dns_query	*mx_query;	/* NULL once answered */
	struct mx_host		*hosts;		/* nhosts, from the MX answer */
	size_t			 nhosts;
	int			 implicit;
	/*
	 * nhosts entries, allocated when the address queries start.
	 * [host][0] is the AAAA query and [host][1] the A query.
	 */
	struct mx_addr_query	(*addr_queries)[2];
	size_t			 outstanding;
};

/* A candidate host during selection, with its random tie-break key. */
struct mx_candidate {
	struct mx_host	 host;
	uint32_t	 tiebreak;
};

static void	mx_on_mx_answer(void *, const struct dns_answer *);
static void	mx_on_addr_answer(void *, const struct dns_answer *);

/*
 * Copy a domain name rdf into out as text without the trailing dot, as
 * ldns_rdf2str() of ldns 1.8.3 writes it: '.', ';', '(', ')' and '\' in
 * a label become "\X", and bytes outside printable ASCII "\DDD".
 * Returns 0, or -1 when the rdf is not a name or does not fit.
 */
static int
mx_dname_to_text(const ldns_rdf *rdf, char *out, size_t outsz)
{
	const uint8_t *d;
	size_t size, pos = 0, o = 0, n, i;
	unsigned char c;

	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -1;
	d = ldns_rdf_data(rdf);
	size = ldns_rdf_size(rdf);
	if (size == 0 || size > LDNS_MAX_DOMAINLEN)
		return -1;
	if (size == 1) {
		/* The root keeps its dot. */
		if (outsz < 2)
			return -1;
		memcpy(out, ".", 2);
		return 0;
	}
	while (pos < size && (n = d[pos]) != 0) {
		if (pos + 1 + n > size)
			return -1;
		if (o > 0) {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = '.';
		}
		for (i = 0; i < n; i++) {
			c = d[pos + 1 + i];
			if (c == '.' || c == ';' || c == '(' || c == ')' ||
			    c == '\\') {
				if (o + 2 >= outsz)
					return -1;
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c <= 0x20 || c >= 0x7f) {
				if (o + 4 >= outsz)
					return -1;
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			} else {
				if (o + 1 >= outsz)
					return -1;
				out[o++] = (char)c;
			}
		}
		pos += 1 + n;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

static int
mx_candidate_before(const struct mx_candidate *a, const struct mx_candidate *b)
{
	if (a->host.preference != b->host.preference)
		return a->host.preference < b->host.preference;
	return a->tiebreak < b->tiebreak;
}

/*
 * Insert cand into the sorted array best[0..*n) of capacity max, dropping
 * the last entry when full.  A host already listed keeps the better
 * (lower) preference.
 */
static void
mx_candidate_insert(struct mx_candidate *best, size_t *n, size_t max,
    const struct mx_candidate *cand)
{
	size_t i, pos;

	for (i = 0; i < *n; i++) {
		if (strcasecmp(best[i].host.name, cand->host.name) != 0)
			continue;
		if (best[i].host.preference <= cand->host.preference)
			return;
		memmove(&best[i], &best[i + 1], (*n - i - 1) * sizeof(*best));
		(*n)--;
		break;
	}
	for (pos = 0; pos < *n; pos++)
		if (mx_candidate_before(cand, &best[pos]))
			break;
	if (pos == max)
		return;
	if (*n == max)
		(*n)--;
	memmove(&best[pos + 1], &best[pos], (*n - pos) * sizeof(*best));
	best[pos] = *cand;
	(*n)++;
}

/*
 * Decode one MX record into cand.  Returns 1 for a usable host, 0 for an
 * exchange of "." (with *root_pref set to its preference), -1 when
 * malformed.
 */
static int
mx_decode_record(const ldns_rr *rr, struct mx_candidate *cand, int *root_pref)
{
	const ldns_rdf *pref, *exchange;

	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_MX || ldns_rr_rd_count(rr) != 2)
		return -1;
	pref = ldns_rr_mx_preference(rr);
	exchange = ldns_rr_mx_exchange(rr);
	if (pref == NULL || ldns_rdf_get_type(pref) != LDNS_RDF_TYPE_INT16 ||
	    ldns_rdf_size(pref) != 2 || exchange == NULL ||
	    ldns_rdf_get_type(exchange) != LDNS_RDF_TYPE_DNAME)
		return -1;
	if (ldns_rdf_size(exchange) == 1) {
		*root_pref = ldns_rdf2native_int16(pref);
		return 0;
	}
	memset(cand, 0, sizeof(*cand));
	cand->host.preference = ldns_rdf2native_int16(pref);
	if (mx_dname_to_text(exchange, cand->host.name,
	    sizeof(cand->host.name)) == -1)
		return -1;
	cand->tiebreak = random_u32();
	return 1;
}

enum mx_status
mx_select_hosts(const ldns_rr_list *rrs, struct mx_host *hosts, size_t max,
    size_t *nhosts)
{
	struct mx_candidate best[MX_HOSTS_MAX], cand;
	size_t i, count, n = 0;
	int root_pref = -1;

	if (max > MX_HOSTS_MAX)
		max = MX_HOSTS_MAX;
	count = rrs ? ldns_rr_list_rr_count(rrs) : 0;
	for (i = 0; i < count; i++) {
		if (mx_decode_record(ldns_rr_list_rr(rrs, i), &cand,
		    &root_pref) == 1)
			mx_candidate_insert(best, &n, max, &cand);
	}
	*nhosts = n;
	for (i = 0; i < n; i++)
		hosts[i] = best[i].host;
	if (count == 1 && root_pref == 0)
		return MX_NULL;
	return n > 0 ? MX_OK : MX_NOADDR;
}

static void
mx_free(struct mx_lookup *lookup)
{
	free(lookup->hosts);
	free(lookup->addr_queries);
	free(lookup);
}

/* Hand the result to the caller, then free the lookup. */
static void
mx_finish(struct mx_lookup *lookup, enum mx_status status,
    const struct mx_target *targets, size_t ntargets)
{
	struct mx_result result;

	memset(&result, 0, sizeof(result));
	result.status = status;
	result.implicit = lookup->implicit;
	result.targets = targets;
	result.ntargets = ntargets;
	lookup->cb(lookup->arg, &result);
	mx_free(lookup);
}

static int
mx_target_known(const struct mx_target *targets, size_t n, int family,
    const unsigned char *addr)
{
	size_t i, len = family == AF_INET6 ? 16 : 4;

	for (i = 0; i < n; i++)
		if (targets[i].family == family &&
		    memcmp(targets[i].addr, addr, len) == 0)
			return 1;
	return 0;
}

/* Append the addresses of host h, alternating IPv6 and IPv4. */
static void
mx_add_host_targets(const struct mx_lookup *lookup, size_t h,
    struct mx_target *targets, size_t *n)
{
	const struct mx_addr_query *v6 = &lookup->addr_queries[h][0];
	const struct mx_addr_query *v4 = &lookup->addr_queries[h][1];
	const struct mx_addr_query *q;
	size_t i, k;

	for (i = 0; i < MX_TARGETS_MAX && *n < MX_TARGETS_MAX; i++) {
		for (k = 0; k < 2 && *n < MX_TARGETS_MAX; k++) {
			q = k == 0 ? v6 : v4;
			if (i >= q->naddrs ||
			    mx_target_known(targets, *n, q->family, q->addrs[i]))
				continue;
			memset(&targets[*n], 0, sizeof(targets[*n]));
			memcpy(targets[*n].host, lookup->hosts[h].name,
			    sizeof(targets[*n].host));
			targets[*n].preference = lookup->hosts[h].preference;
			targets[*n].family = q->family;
			memcpy(targets[*n].addr, q->addrs[i],
			    q->family == AF_INET6 ? 16 : 4);
			(*n)++;
		}
	}
}

/* Build the target list once every address query has its answer. */
static void
mx_complete(struct mx_lookup *lookup)
{
	struct mx_target targets[MX_TARGETS_MAX];
	size_t h, n = 0;
	int tempfail = 0;
	enum dns_status s;

	for (h = 0; h < lookup->nhosts; h++) {
		mx_add_host_targets(lookup, h, targets, &n);
		s = lookup->addr_queries[h][0].status;
		tempfail |= s == DNS_SERVFAIL || s == DNS_TIMEOUT;
		s = lookup->addr_queries[h][1].status;
		tempfail |= s == DNS_SERVFAIL || s == DNS_TIMEOUT;
	}
	if (n > 0)
		mx_finish(lookup, MX_OK, targets, n);
	else
		mx_finish(lookup, tempfail ? MX_TEMPFAIL : MX_NOADDR, NULL, 0);
}

/* Start the AAAA and A queries of every selected host. */
static void
mx_start_addr_queries(struct mx_lookup *lookup)
{
	struct mx_addr_query *q;
	size_t h, k;

	lookup->addr_queries = xcalloc(lookup->nhosts,
	    sizeof(lookup->addr_queries[0]));
	for (h = 0; h < lookup->nhosts; h++) {
		for (k = 0; k < 2; k++) {
			q = &lookup->addr_queries[h][k];
			memset(q, 0, sizeof(*q));
			q->lookup = lookup;
			q->family = k == 0 ? AF_INET6 : AF_INET;
			q->status = DNS_SERVFAIL;
			q->query = dns_lookup(lookup->dns, lookup->hosts[h].name,
			    k == 0 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A,
			    mx_on_addr_answer, q);
			if (q->query == NULL)
				fatal_invariant("dns_lookup returned no query");
			lookup->outstanding++;
		}
	}
}

static void
mx_on_mx_answer(void *arg, const struct dns_answer *answer)
{
	struct mx_lookup *lookup = arg;
	struct mx_host hosts[MX_HOSTS_MAX];
	enum mx_status status;
	size_t nhosts = 0;

	lookup->mx_query = NULL;
	switch (answer->status) {
	case DNS_OK:
		status = mx_select_hosts(answer->rrs, hosts, MX_HOSTS_MAX,
		    &nhosts);
		if (status != MX_OK) {
			mx_finish(lookup, status, NULL, 0);
			return;
		}
		break;
	case DNS_NODATA:
		/* RFC 5321 section 5.1: no MX, so the domain is its own MX. */
		memcpy(hosts[0].name, lookup->domain, sizeof(hosts[0].name));
		hosts[0].preference = 0;
		nhosts = 1;
		lookup->implicit = 1;
		break;
	case DNS_NXDOMAIN:
		mx_finish(lookup, MX_NXDOMAIN, NULL, 0);
		return;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
		mx_finish(lookup, MX_TEMPFAIL, NULL, 0);
		return;
	default:
		fatal_invariant("unknown DNS status");
	}
	lookup->hosts = xcalloc(nhosts, sizeof(lookup->hosts[0]));
	memcpy(lookup->hosts, hosts, nhosts * sizeof(hosts[0]));
	lookup->nhosts = nhosts;
	mx_start_addr_queries(lookup);
}

/* Copy the addresses of one A or AAAA answer into q. */
static void
mx_store_addrs(struct mx_addr_query *q, const ldns_rr_list *rrs)
{
	ldns_rr_type want = q->family == AF_INET6 ?
	    LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A;
	size_t i, len = q->family == AF_INET6 ? 16 : 4;
	const ldns_rr *rr;
	const ldns_rdf *rdf;

	for (i = 0; rrs && i < ldns_rr_list_rr_count(rrs) &&
	    q->naddrs < MX_TARGETS_MAX; i++) {
		rr = ldns_rr_list_rr(rrs, i);
		if (ldns_rr_get_type(rr) != want || ldns_rr_rd_count(rr) != 1)
			continue;
		rdf = ldns_rr_rdf(rr, 0);
		if (rdf == NULL || ldns_rdf_size(rdf) != len)
			continue;
		memcpy(q->addrs[q->naddrs++], ldns_rdf_data(rdf), len);
	}
}

static void
mx_on_addr_answer(void *arg, const struct dns_answer *answer)
{
	struct mx_addr_query *q = arg;
	struct mx_lookup *lookup = q->lookup;

	q->query = NULL;
	q->status = answer->status;
	if (answer->status == DNS_OK)
		mx_store_addrs(q, answer->rrs);
	if (--lookup->outstanding == 0)
		mx_complete(lookup);
}

/* Letters, digits, hyphen, dot and underscore: a host name in A-labels. */
static int
mx_hostname_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

struct mx_lookup *
mx_resolve(struct dns_ctx *dns, const char *domain, mx_cb *cb, void *arg)
{
	struct mx_lookup *lookup;
	ldns_rdf *name;
	size_t i, len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len >= MX_NAME_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		if (!mx_hostname_char((unsigned char)domain[i]))
			return NULL;
	name = ldns_dname_new_frm_str(domain);
	if (name == NULL)
		return NULL;
	ldns_rdf_deep_free(name);

	lookup = xcalloc(1, sizeof(*lookup));
	lookup->dns = dns;
	lookup->cb = cb;
	lookup->arg = arg;
	memcpy(lookup->domain, domain, len);
	lookup->domain[len] = '\0';
	lookup->mx_query = dns_lookup(dns, lookup->domain, LDNS_RR_TYPE_MX,
	    mx_on_mx_answer, lookup);
	if (lookup->mx_query == NULL)
		fatal_invariant("dns_lookup returned no query");
	return lookup;
}

void
mx_cancel(struct mx_lookup *lookup)
{
	size_t h, k;

	if (lookup->mx_query != NULL)
		dns_cancel(lookup->mx_query);
	for (h = 0; lookup->addr_queries != NULL && h < lookup->nhosts; h++)
		for (k = 0; k < 2; k++)
			if (lookup->addr_queries[h][k].query != NULL)
				dns_cancel(lookup->addr_queries[h][k].query);
	mx_free(lookup);
}
