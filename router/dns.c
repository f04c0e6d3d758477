/*
 * Asynchronous DNS client of the relay, on the worker's libev loop.  Rule
 * and key TXT records, MX and address lookups and the sender checks all
 * go through dns_lookup().
 *
 * A lookup is a struct dns_query, the handle the caller holds.  One of
 * three sources answers it: the answer cache, the zones loaded with
 * dns_add_zone_file(), or a flight (struct dns_flight), which is one
 * query on the wire shared by every lookup of the same name and type.
 * All answers reach the callers through the ready list, which a
 * zero-delay timer drains, so no callback runs inside dns_lookup().
 *
 * dns_lookup_dnssec() lookups set the DO and CD bits and keep the RRSIG,
 * NSEC and NSEC3 records that a validator needs.  Their cache keys end
 * in "/dnssec", so they never share a flight or a cache entry with
 * dns_lookup(), whose answers lack those records.
 *
 * A flight makes tries.  Each try sends the query with a fresh random ID
 * from a fresh UDP socket to the next resolver in turn, and every
 * resolver gets up to `attempts` tries.  The states of one try:
 *
 *   dns_flight_next_try()
 *        | query sent over UDP
 *        v
 *   FLIGHT_UDP_WAIT ----- answer with TC set ----> FLIGHT_TCP_WRITE
 *        |    |                                          | query written
 *        |    |                                          v
 *        |    |                                    FLIGHT_TCP_READ
 *        |    |                                          |
 *        |    +---- NOERROR or NXDOMAIN answer <---------+
 *        |              -> dns_flight_finish(): cache it, wake the waiters
 *        |
 *        +---- timeout, port unreachable, error rcode, TCP failure
 *                   -> dns_flight_next_try()
 *
 * With no try left the flight ends in DNS_SERVFAIL if some resolver
 * answered with an error, else in DNS_TIMEOUT.  A resolver that answered
 * with an error (SERVFAIL, REFUSED, NOTIMP, FORMERR and the like) or
 * failed over TCP gets no further try for that flight.
 *
 * Datagrams that do not match the query (source address and port, ID,
 * QR bit, question) are dropped and the try keeps waiting, so an off-path
 * attacker has to guess the source port and the ID of a live query.
 *
 * SERVFAIL and timeouts are never cached.  Negative answers are cached
 * for the RFC 2308 negative TTL, and not at all when the answer carries
 * no SOA record.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>
#include <sodium.h>

#include "cache.h"
#include "dns.h"
#include "log.h"
#include "random.h"
#include "xmalloc.h"

#define DNS_MAX_RESOLVERS	8
#define DNS_DEFAULT_PORT	"53"
/* EDNS0 UDP payload size from DNS Flag Day 2020: no IP fragmentation. */
#define DNS_EDNS_UDP_SIZE	1232
#define DNS_MAX_CNAME_HOPS	8
#define DNS_MAX_TTL		86400	/* seconds; caps every TTL reported */
#define DNS_MAX_NAME_TEXT	253	/* characters, without the final dot */
#define DNS_MAX_ATTEMPTS	16
/* Each flight uses one socket, so this also bounds the descriptors. */
#define DNS_MAX_FLIGHTS		4096
#define DNS_FLIGHT_BUCKETS	1024
/* Datagrams read per readiness event, so a flood cannot starve the loop. */
#define DNS_UDP_READS_PER_EVENT	64
#define DNS_CACHE_SWEEP_INTERVAL 60.0	/* seconds between cache_expire() */
#define DNS_ZONE_DEFAULT_TTL	3600	/* for zone files without $TTL */
#define DNS_TYPE_TEXT_MAX	16

#define DNS_DEFAULT_TIMEOUT	2.0
#define DNS_DEFAULT_ATTEMPTS	2
#define DNS_DEFAULT_CACHE_ENTRIES 100000
#define DNS_DEFAULT_CACHE_BYTES	(64 * 1024 * 1024)

struct dns_resolver {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			 text[INET6_ADDRSTRLEN + 16];	/* for logs */
};

/*
 * An answer shared by reference between the cache, the flight that made
 * it and the queries waiting to be called back.
 */
struct dns_result {
	unsigned		 refs;
	enum dns_status		 status;
	ldns_rr_list		*rrs;		/* NULL unless DNS_OK */
	uint32_t		 ttl;		/* seconds, at most DNS_MAX_TTL */
	int			 secure;
	/* DNSSEC lookups only, see struct dns_answer; else NULL. */
	ldns_rr_list		*cnames;
	ldns_rr_list		*sigs;
	ldns_rr_list		*authority;
};

enum dns_query_state {
	QUERY_WAITING,		/* on its flight's waiter list */
	QUERY_READY,		/* on the ready list with a result */
	QUERY_CALLING,		/* its callback is running */
};

struct dns_query {
	struct dns_ctx		*ctx;
	enum dns_query_state	 state;
	struct dns_flight	*flight;	/* while QUERY_WAITING */
	struct dns_result	*result;	/* from QUERY_READY on */
	uint32_t		 ttl;		/* reported to the callback */
	uint64_t		 seq;		/* order on the ready list */
	dns_cb			*cb;
	void			*arg;
	TAILQ_ENTRY(dns_query)	 entry;
};
TAILQ_HEAD(dns_query_list, dns_query);

enum dns_flight_state {
	FLIGHT_IDLE,		/* between tries, no socket */
	FLIGHT_UDP_WAIT,
	FLIGHT_TCP_WRITE,
	FLIGHT_TCP_READ,
};

struct dns_flight {
	struct dns_ctx		*ctx;
	char			*key;		/* cache key, "name/type" */
	ldns_rdf		*qname;		/* lower case */
	ldns_rr_type		 qtype;
	int			 dnssec;	/* query with DO and CD */
	enum dns_flight_state	 state;
	int			 try;		/* index of the current try */
	unsigned		 resolver;	/* resolver of the current try */
	unsigned		 failed;	/* bit set per resolver out */
	uint16_t		 id;
	uint8_t			*wire;		/* query, from ldns_pkt2wire() */
	size_t			 wirelen;
	int			 fd;
	ev_io			 io;
	ev_timer		 timer;

	/* TCP: length-prefixed query out, length and answer in. */
	uint8_t			*tcp_out;
	size_t			 tcp_outlen;
	size_t			 tcp_done;	/* bytes of the current part */
	uint8_t			 tcp_hdr[2];
	uint8_t			*tcp_msg;	/* at most 65535 bytes */
	size_t			 tcp_msglen;

	struct dns_query_list	 waiters;
	LIST_ENTRY(dns_flight)	 bucket;
};
LIST_HEAD(dns_flight_list, dns_flight);

struct dns_zone {
	ldns_rr_list		*rrs;		/* every record, SOA included */
	const ldns_rdf		*apex;
	uint32_t		 negative_ttl;
};

struct dns_ctx {
	struct ev_loop		*loop;
	struct dns_config	 config;
	struct dns_resolver	 resolvers[DNS_MAX_RESOLVERS];
	unsigned		 nresolvers;
	struct dns_zone		*zones;
	size_t			 nzones;
	struct cache		*cache;
	double			 last_sweep;
	struct dns_flight_list	 flights[DNS_FLIGHT_BUCKETS];
	size_t			 nflights;
	unsigned char		 bucket_key[crypto_shorthash_KEYBYTES];
	struct dns_query_list	 ready;
	uint64_t		 ready_seq;
	ev_timer		 ready_timer;
	uint64_t		 queries_sent;
	uint8_t			 rbuf[65536];	/* one UDP datagram */
};

static const char *const dns_status_names[] = {
	[DNS_OK] = "ok",
	[DNS_NXDOMAIN] = "nxdomain",
	[DNS_NODATA] = "nodata",
	[DNS_SERVFAIL] = "servfail",
	[DNS_TIMEOUT] = "timeout",
};

static const char *const dns_flight_state_names[] = {
	[FLIGHT_IDLE] = "idle",
	[FLIGHT_UDP_WAIT] = "udp-wait",
	[FLIGHT_TCP_WRITE] = "tcp-write",
	[FLIGHT_TCP_READ] = "tcp-read",
};

static void	dns_flight_next_try(struct dns_flight *);

static uint32_t
dns_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static const char *
dns_type_name(ldns_rr_type type, char buf[DNS_TYPE_TEXT_MAX])
{
	const ldns_rr_descriptor *d = ldns_rr_descript(type);

	if (d != NULL && d->_name != NULL)
		return d->_name;
	snprintf(buf, DNS_TYPE_TEXT_MAX, "TYPE%u", (unsigned)type);
	return buf;
}

static const char *
dns_rcode_name(ldns_pkt_rcode rcode)
{
	const ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, rcode);

	return lt != NULL && lt->name != NULL ? lt->name : "unknown";
}

static ldns_rr_list *
dns_rr_list_new(void)
{
	ldns_rr_list *list = ldns_rr_list_new();

	if (list == NULL)
		fatal_invariant("out of memory");
	return list;
}

/* Append a copy of rr to list.  Aborts when memory runs out. */
static void
dns_rr_list_push_clone(ldns_rr_list *list, const ldns_rr *rr)
{
	ldns_rr *clone = ldns_rr_clone(rr);

	if (clone == NULL || !ldns_rr_list_push_rr(list, clone))
		fatal_invariant("out of memory");
}

/*
 * Results.
 */

/* Create a result with one reference.  It takes ownership of rrs. */
static struct dns_result *
dns_result_new(enum dns_status status, ldns_rr_list *rrs, uint32_t ttl,
    int secure)
{
	struct dns_result *r = xcalloc(1, sizeof(*r));

	r->refs = 1;
	r->status = status;
	r->rrs = rrs;
	r->ttl = dns_min(ttl, DNS_MAX_TTL);
	r->secure = secure;
	return r;
}

static void
dns_result_unref(struct dns_result *r)
{
	if (r == NULL)
		return;
	if (r->refs == 0)
		fatal_invariant("DNS result released twice");
	if (--r->refs > 0)
		return;
	ldns_rr_list_deep_free(r->rrs);
	ldns_rr_list_deep_free(r->cnames);
	ldns_rr_list_deep_free(r->sigs);
	ldns_rr_list_deep_free(r->authority);
	free(r);
}

static void
dns_result_cache_free(void *value)
{
	dns_result_unref(value);
}

/* Estimate the heap bytes that the records of a list use, 0 for NULL. */
static size_t
dns_rr_list_size(const ldns_rr_list *list)
{
	size_t i, size = 0;
	const ldns_rr *rr;

	for (i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++) {
		rr = ldns_rr_list_rr(list, i);
		size += sizeof(ldns_rr) + ldns_rr_uncompressed_size(rr) +
		    ldns_rr_rd_count(rr) * (sizeof(ldns_rdf) + sizeof(void *));
	}
	return size;
}

/* Estimate the heap bytes a cached result and its key hold. */
static size_t
dns_result_size(const struct dns_result *r, const char *key)
{
	return sizeof(*r) + strlen(key) + 1 + dns_rr_list_size(r->rrs) +
	    dns_rr_list_size(r->cnames) + dns_rr_list_size(r->sigs) +
	    dns_rr_list_size(r->authority);
}

/*
 * Append to out a copy of each class IN record of the given type that
 * name owns in list, and lower *ttl to the smallest TTL among them.
 * Returns the CNAME record that name owns in list, or NULL.
 */
static const ldns_rr *
dns_collect(const ldns_rr_list *list, const ldns_rdf *name,
    ldns_rr_type type, ldns_rr_list *out, uint32_t *ttl)
{
	const ldns_rr *rr, *cname = NULL;
	size_t i;

	for (i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++) {
		rr = ldns_rr_list_rr(list, i);
		if (rr == NULL || ldns_rr_owner(rr) == NULL ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
		    ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
			continue;
		if (ldns_rr_get_type(rr) == type) {
			dns_rr_list_push_clone(out, rr);
			*ttl = dns_min(*ttl, ldns_rr_ttl(rr));
		} else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
		    cname == NULL)
			cname = rr;
	}
	return cname;
}

/* Returns the target name of a CNAME record, or NULL if it has none. */
static const ldns_rdf *
dns_cname_target(const ldns_rr *cname)
{
	const ldns_rdf *target = ldns_rr_rdf(cname, 0);

	if (target == NULL || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME)
		return NULL;
	return target;
}

/*
 * Returns the negative-answer TTL of RFC 2308 section 5 for an SOA
 * record: the smaller of its TTL and its MINIMUM field, or 0 if the
 * record has no usable MINIMUM field.
 */
static uint32_t
dns_soa_negative_ttl(const ldns_rr *soa)
{
	const ldns_rdf *minimum;

	if (ldns_rr_rd_count(soa) != 7)
		return 0;
	minimum = ldns_rr_rdf(soa, 6);
	if (minimum == NULL || ldns_rdf_size(minimum) != 4)
		return 0;
	return dns_min(ldns_rr_ttl(soa), ldns_rdf2native_int32(minimum));
}

/*
 * Returns the negative TTL from the first class IN SOA record of an
 * authority section, or 0 (so the answer is not cached) without one.
 */
static uint32_t
dns_negative_ttl(const ldns_rr_list *authority)
{
	const ldns_rr *rr;
	size_t i;

	for (i = 0; authority != NULL &&
	    i < ldns_rr_list_rr_count(authority); i++) {
		rr = ldns_rr_list_rr(authority, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
		    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN)
			return dns_soa_negative_ttl(rr);
	}
	return 0;
}

/*
 * Turn a NOERROR or NXDOMAIN response to a query for qname and qtype into
 * a result.  The CNAME chain in the answer section is followed for up to
 * DNS_MAX_CNAME_HOPS records.  A longer chain or a CNAME without a target
 * gives DNS_SERVFAIL.  The caller keeps pkt.
 */
static struct dns_result *
dns_result_from_packet(const ldns_rdf *qname, ldns_rr_type qtype,
    const ldns_pkt *pkt)
{
	const ldns_rr_list *answer = ldns_pkt_answer(pkt);
	ldns_rr_list *rrs = dns_rr_list_new();
	const ldns_rdf *name = qname;
	const ldns_rr *cname;
	uint32_t ttl = DNS_MAX_TTL;
	enum dns_status status;
	int hops;

	for (hops = 0;; hops++) {
		cname = dns_collect(answer, name, qtype, rrs, &ttl);
		if (ldns_rr_list_rr_count(rrs) > 0)
			return dns_result_new(DNS_OK, rrs, ttl, ldns_pkt_ad(pkt));
		if (cname == NULL || qtype == LDNS_RR_TYPE_CNAME)
			break;
		if (hops == DNS_MAX_CNAME_HOPS ||
		    (name = dns_cname_target(cname)) == NULL) {
			log_notice("dns: answer rejected reason=\"%s\"",
			    hops == DNS_MAX_CNAME_HOPS ?
			    "CNAME chain longer than 8 records" :
			    "CNAME record without a target name");
			ldns_rr_list_free(rrs);
			return dns_result_new(DNS_SERVFAIL, NULL, 0, 0);
		}
		ttl = dns_min(ttl, ldns_rr_ttl(cname));
	}
	ldns_rr_list_free(rrs);
	status = ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NXDOMAIN ?
	    DNS_NXDOMAIN : DNS_NODATA;
	ttl = dns_min(ttl, dns_negative_ttl(ldns_pkt_authority(pkt)));
	return dns_result_new(status, NULL, ttl, ldns_pkt_ad(pkt));
}

/* Returns the first class IN record of type that name owns in list. */
static const ldns_rr *
dns_find(const ldns_rr_list *list, const ldns_rdf *name, ldns_rr_type type)
{
	const ldns_rr *rr;
	size_t i;

	for (i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++) {
		rr = ldns_rr_list_rr(list, i);
		if (ldns_rr_get_type(rr) == type &&
		    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
		    ldns_rr_owner(rr) != NULL &&
		    ldns_dname_compare(ldns_rr_owner(rr), name) == 0)
			return rr;
	}
	return NULL;
}

/*
 * Append to out a copy of each CNAME record that leads from qname to the
 * owner of the answer, the chain that dns_result_from_packet() follows.
 */
static void
dns_collect_cnames(const ldns_rr_list *answer, const ldns_rdf *qname,
    ldns_rr_type qtype, ldns_rr_list *out)
{
	const ldns_rdf *name = qname, *target;
	const ldns_rr *cname;
	int hops;

	for (hops = 0; hops < DNS_MAX_CNAME_HOPS &&
	    qtype != LDNS_RR_TYPE_CNAME; hops++) {
		if (dns_find(answer, name, qtype) != NULL)
			return;
		cname = dns_find(answer, name, LDNS_RR_TYPE_CNAME);
		if (cname == NULL || (target = dns_cname_target(cname)) == NULL)
			return;
		dns_rr_list_push_clone(out, cname);
		name = target;
	}
}

/* Returns 1 if name is qname or the target of a record in cnames. */
static int
dns_on_chain(const ldns_rdf *name, const ldns_rdf *qname,
    const ldns_rr_list *cnames)
{
	const ldns_rdf *target;
	size_t i;

	if (ldns_dname_compare(name, qname) == 0)
		return 1;
	for (i = 0; i < ldns_rr_list_rr_count(cnames); i++) {
		target = dns_cname_target(ldns_rr_list_rr(cnames, i));
		if (target != NULL && ldns_dname_compare(name, target) == 0)
			return 1;
	}
	return 0;
}

static int
dns_is_denial_type(ldns_rr_type type)
{
	return type == LDNS_RR_TYPE_SOA || type == LDNS_RR_TYPE_NSEC ||
	    type == LDNS_RR_TYPE_NSEC3 || type == LDNS_RR_TYPE_RRSIG;
}

/*
 * Copy into a result of a DNSSEC query the records of pkt that a
 * validator needs (see struct dns_answer).  A failure gets none.  The
 * caller keeps pkt, whose size bounds the lists.
 */
static void
dns_result_add_dnssec(struct dns_result *r, const ldns_rdf *qname,
    ldns_rr_type qtype, const ldns_pkt *pkt)
{
	const ldns_rr_list *answer = ldns_pkt_answer(pkt);
	const ldns_rr_list *authority = ldns_pkt_authority(pkt);
	const ldns_rr *rr;
	size_t i;

	if (r->status == DNS_SERVFAIL || r->status == DNS_TIMEOUT)
		return;
	r->cnames = dns_rr_list_new();
	r->sigs = dns_rr_list_new();
	r->authority = dns_rr_list_new();
	dns_collect_cnames(answer, qname, qtype, r->cnames);
	for (i = 0; answer != NULL && i < ldns_rr_list_rr_count(answer); i++) {
		rr = ldns_rr_list_rr(answer, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG &&
		    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
		    ldns_rr_owner(rr) != NULL &&
		    dns_on_chain(ldns_rr_owner(rr), qname, r->cnames))
			dns_rr_list_push_clone(r->sigs, rr);
	}
	for (i = 0; authority != NULL &&
	    i < ldns_rr_list_rr_count(authority); i++) {
		rr = ldns_rr_list_rr(authority, i);
		if (dns_is_denial_type(ldns_rr_get_type(rr)) &&
		    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
		    ldns_rr_owner(rr) != NULL)
			dns_rr_list_push_clone(r->authority, rr);
	}
}

/*
 * Names and keys.
 */

/*
 * Parse a lookup name, with or without the final dot, into a lower-case
 * dname and the cache key "name/type", where name has no final dot ("."
 * stays for the root).  Rejects empty names, names longer than 253
 * characters without the final dot, and names that ldns cannot parse,
 * such as those with a label over 63 octets.  Returns 0 with both
 * outputs allocated, or -1 with neither.
 */
static int
dns_name_parse(const char *text, ldns_rr_type type, ldns_rdf **dname,
    char **key)
{
	ldns_rdf *rdf = NULL;
	size_t len = strlen(text);
	char *canon;

	if (len > 0 && text[len - 1] == '.')
		len--;
	if ((len == 0 && strcmp(text, ".") != 0) || len > DNS_MAX_NAME_TEXT)
		return -1;
	if (ldns_str2rdf_dname(&rdf, text) != LDNS_STATUS_OK || rdf == NULL)
		return -1;
	ldns_dname2canonical(rdf);
	if ((canon = ldns_rdf2str(rdf)) == NULL) {
		ldns_rdf_deep_free(rdf);
		return -1;
	}
	len = strlen(canon);
	if (len > 1 && canon[len - 1] == '.')
		canon[len - 1] = '\0';
	*key = xmalloc(strlen(canon) + 8);
	snprintf(*key, strlen(canon) + 8, "%s/%u", canon, (unsigned)type);
	free(canon);
	*dname = rdf;
	return 0;
}

/* Write "/type" in decimal, NUL-terminated, as dns_name_parse() does. */
static void
dns_key_type(char *out, unsigned type)
{
	char digits[5];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + type % 10);
		type /= 10;
	} while (type > 0 && n < sizeof(digits));
	*out++ = '/';
	while (n > 0)
		*out++ = digits[--n];
	*out = '\0';
}

/*
 * Return the cache key for a name that needs no escaping (letters,
 * digits, '-' and '_' in labels of 1 to 63 octets), the same key
 * dns_name_parse() would build, or NULL for any other name.
 */
static char *
dns_plain_key(const char *text, ldns_rr_type type)
{
	size_t len = strlen(text), i, label = 0;
	char *key;

	if (len > 0 && text[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_MAX_NAME_TEXT)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '.') {
			if (label == 0)
				return NULL;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return NULL;
		} else
			return NULL;
	}
	/* "/" and at most 5 digits of a 16-bit type, then the NUL. */
	key = xmalloc(len + 8);
	for (i = 0; i < len; i++)
		key[i] = (char)tolower((unsigned char)text[i]);
	dns_key_type(key + len, (unsigned)type & 0xffff);
	return key;
}

/*
 * The ready list: answers waiting to be called back.
 */

static void
dns_ready_start(struct dns_ctx *ctx)
{
	if (ev_is_active(&ctx->ready_timer))
		return;
	ev_timer_set(&ctx->ready_timer, 0., 0.);
	ev_timer_start(ctx->loop, &ctx->ready_timer);
}

/* Queue q to be called back with r and ttl, taking a reference to r. */
static void
dns_query_ready(struct dns_query *q, struct dns_result *r, uint32_t ttl)
{
	struct dns_ctx *ctx = q->ctx;

	r->refs++;
	q->result = r;
	q->ttl = ttl;
	q->flight = NULL;
	q->state = QUERY_READY;
	q->seq = ++ctx->ready_seq;
	TAILQ_INSERT_TAIL(&ctx->ready, q, entry);
	dns_ready_start(ctx);
}

static void
dns_query_fail(struct dns_query *q, enum dns_status status)
{
	struct dns_result *r = dns_result_new(status, NULL, 0, 0);

	dns_query_ready(q, r, 0);
	dns_result_unref(r);
}

static void
dns_query_deliver(struct dns_query *q)
{
	struct dns_result *r = q->result;
	struct dns_answer answer;

	answer.status = r->status;
	answer.rrs = r->status == DNS_OK ? r->rrs : NULL;
	answer.ttl = q->ttl;
	answer.secure = r->secure;
	answer.cnames = r->cnames;
	answer.sigs = r->sigs;
	answer.authority = r->authority;
	q->state = QUERY_CALLING;
	q->cb(q->arg, &answer);
	dns_result_unref(r);
	free(q);
}

/*
 * Call back every query that was ready when the timer fired.  Queries that
 * the callbacks make ready wait for the next round, so a callback that
 * looks up a cached name again cannot keep this loop going.
 */
static void
dns_ready_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_ctx *ctx = w->data;
	uint64_t last = ctx->ready_seq;
	struct dns_query *q;

	while ((q = TAILQ_FIRST(&ctx->ready)) != NULL && q->seq <= last) {
		TAILQ_REMOVE(&ctx->ready, q, entry);
		dns_query_deliver(q);
	}
}

/*
 * The cache.
 */

/* Cache r under key unless it is a failure or has a zero TTL. */
static void
dns_cache_store(struct dns_ctx *ctx, const char *key, struct dns_result *r)
{
	double now = ev_now(ctx->loop);

	if (r->status == DNS_SERVFAIL || r->status == DNS_TIMEOUT ||
	    r->ttl == 0)
		return;
	if (now - ctx->last_sweep >= DNS_CACHE_SWEEP_INTERVAL) {
		cache_expire(ctx->cache, now);
		ctx->last_sweep = now;
	}
	r->refs++;
	cache_put(ctx->cache, key, r, dns_result_size(r, key), now, r->ttl);
}

/* Queue q with the cached answer for key.  Returns 1, or 0 on a miss. */
static int
dns_lookup_cache(struct dns_query *q, const char *key)
{
	struct dns_ctx *ctx = q->ctx;
	struct dns_result *r;
	double remaining = 0;

	r = cache_get(ctx->cache, key, ev_now(ctx->loop), &remaining);
	if (r == NULL)
		return 0;
	if (remaining < 0)
		remaining = 0;
	dns_query_ready(q, r, dns_min((uint32_t)remaining, r->ttl));
	log_debug("dns: cache hit key=%s status=%s ttl=%u", key,
	    dns_status_names[r->status], q->ttl);
	return 1;
}

/*
 * Flights.
 */

static struct dns_flight_list *
dns_flight_bucket(struct dns_ctx *ctx, const char *key)
{
	unsigned char hash[crypto_shorthash_BYTES];
	uint64_t value;

	/* A keyed hash, so names chosen by peers cannot fill one bucket. */
	crypto_shorthash(hash, (const unsigned char *)key, strlen(key),
	    ctx->bucket_key);
	memcpy(&value, hash, sizeof(value));
	return &ctx->flights[value % DNS_FLIGHT_BUCKETS];
}

static struct dns_flight *
dns_flight_find(struct dns_flight_list *bucket, const char *key)
{
	struct dns_flight *f;

	LIST_FOREACH(f, bucket, bucket)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

static void
dns_flight_set_state(struct dns_flight *f, enum dns_flight_state state)
{
	log_debug("dns: flight key=%s id=%u state=%s->%s", f->key, f->id,
	    dns_flight_state_names[f->state], dns_flight_state_names[state]);
	f->state = state;
}

static void
dns_flight_io_cb(struct ev_loop *, ev_io *, int);
static void
dns_flight_timeout_cb(struct ev_loop *, ev_timer *, int);

/* Create a flight for key, taking ownership of key and qname. */
static struct dns_flight *
dns_flight_new(struct dns_ctx *ctx, struct dns_flight_list *bucket,
    char *key, ldns_rdf *qname, ldns_rr_type qtype, int dnssec)
{
	struct dns_flight *f = xcalloc(1, sizeof(*f));

	f->ctx = ctx;
	f->key = key;
	f->qname = qname;
	f->qtype = qtype;
	f->dnssec = dnssec;
	f->state = FLIGHT_IDLE;
	f->try = -1;
	f->fd = -1;
	TAILQ_INIT(&f->waiters);
	ev_init(&f->io, dns_flight_io_cb);
	f->io.data = f;
	ev_init(&f->timer, dns_flight_timeout_cb);
	f->timer.data = f;
	LIST_INSERT_HEAD(bucket, f, bucket);
	ctx->nflights++;
	return f;
}

/* Stop the watchers and release the socket and TCP buffers of a try. */
static void
dns_flight_close(struct dns_flight *f)
{
	ev_io_stop(f->ctx->loop, &f->io);
	ev_timer_stop(f->ctx->loop, &f->timer);
	if (f->fd != -1)
		close(f->fd);
	f->fd = -1;
	free(f->tcp_out);
	free(f->tcp_msg);
	f->tcp_out = f->tcp_msg = NULL;
	f->tcp_outlen = f->tcp_msglen = f->tcp_done = 0;
	if (f->state != FLIGHT_IDLE)
		dns_flight_set_state(f, FLIGHT_IDLE);
}

/* Free a flight whose waiters have all been moved or freed. */
static void
dns_flight_free(struct dns_flight *f)
{
	if (!TAILQ_EMPTY(&f->waiters))
		fatal_invariant("DNS flight freed with waiters");
	dns_flight_close(f);
	LIST_REMOVE(f, bucket);
	f->ctx->nflights--;
	free(f->key);
	ldns_rdf_deep_free(f->qname);
	free(f->wire);
	free(f);
}

/*
 * End a flight with r (taking over the caller's reference): cache it,
 * queue every waiter with it, and free the flight.  Safe from the
 * flight's own watcher callbacks, because both watchers are stopped
 * before the memory goes.
 */
static void
dns_flight_finish(struct dns_flight *f, struct dns_result *r)
{
	struct dns_query *q;

	log_debug("dns: answer key=%s status=%s ttl=%u records=%zu", f->key,
	    dns_status_names[r->status], r->ttl,
	    r->rrs != NULL ? ldns_rr_list_rr_count(r->rrs) : (size_t)0);
	dns_cache_store(f->ctx, f->key, r);
	while ((q = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, q, entry);
		dns_query_ready(q, r, r->ttl);
	}
	dns_result_unref(r);
	dns_flight_free(f);
}

/* Build the query of the next try, with a fresh ID.  Returns 0 or -1. */
static int
dns_flight_build_query(struct dns_flight *f)
{
	ldns_rdf *qname = ldns_rdf_clone(f->qname);
	ldns_pkt *pkt;
	ldns_status st;

	if (qname == NULL)
		return -1;
	pkt = ldns_pkt_query_new(qname, f->qtype, LDNS_RR_CLASS_IN, LDNS_RD);
	if (pkt == NULL)
		return -1;
	f->id = (uint16_t)random_uniform(65536);
	ldns_pkt_set_id(pkt, f->id);
	/* AD in a query asks a validating resolver to report AD (RFC 6840). */
	ldns_pkt_set_ad(pkt, true);
	ldns_pkt_set_edns_udp_size(pkt, DNS_EDNS_UDP_SIZE);
	if (f->dnssec) {
		ldns_pkt_set_edns_do(pkt, true);
		ldns_pkt_set_cd(pkt, true);
	}
	free(f->wire);
	f->wire = NULL;
	st = ldns_pkt2wire(&f->wire, pkt, &f->wirelen);
	ldns_pkt_free(pkt);
	if (st != LDNS_STATUS_OK) {
		log_warn("dns: building query failed key=%s error=%s", f->key,
		    ldns_get_errorstr_by_id(st));
		return -1;
	}
	return 0;
}

static void
dns_flight_watch(struct dns_flight *f, int fd, int events)
{
	f->fd = fd;
	ev_io_set(&f->io, fd, events);
	ev_io_start(f->ctx->loop, &f->io);
	ev_timer_set(&f->timer, f->ctx->config.timeout, 0.);
	ev_timer_start(f->ctx->loop, &f->timer);
}

/*
 * Send the query over UDP to resolver ri.  Returns 0, or -1 on a local
 * error (logged) with no socket left open.
 */
static int
dns_flight_send_udp(struct dns_flight *f, unsigned ri)
{
	const struct dns_resolver *res = &f->ctx->resolvers[ri];
	char tbuf[DNS_TYPE_TEXT_MAX];
	int fd;

	f->resolver = ri;
	if (dns_flight_build_query(f) == -1)
		return -1;
	fd = socket(res->addr.ss_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("dns: socket failed error=%s", strerror(errno));
		return -1;
	}
	/*
	 * connect() makes the kernel pick a random source port and drop
	 * datagrams from other addresses.  The source is still checked on
	 * receipt.
	 */
	if (connect(fd, (const struct sockaddr *)&res->addr,
	    res->addrlen) == -1 ||
	    send(fd, f->wire, f->wirelen, 0) == -1) {
		log_warn("dns: sending query failed resolver=%s error=%s",
		    res->text, strerror(errno));
		close(fd);
		return -1;
	}
	f->ctx->queries_sent++;
	log_debug("dns: query id=%u key=%s type=%s resolver=%s "
	    "transport=udp try=%d", f->id, f->key,
	    dns_type_name(f->qtype, tbuf), res->text, f->try + 1);
	dns_flight_watch(f, fd, EV_READ);
	dns_flight_set_state(f, FLIGHT_UDP_WAIT);
	return 0;
}

/*
 * Start the next try: the next resolver in turn that has not answered
 * with an error, for as long as tries are left.  Without one, end the
 * flight with DNS_SERVFAIL if some resolver answered with an error and
 * DNS_TIMEOUT otherwise.  May free the flight.
 */
static void
dns_flight_next_try(struct dns_flight *f)
{
	struct dns_ctx *ctx = f->ctx;
	int total = (int)ctx->nresolvers * ctx->config.attempts;
	unsigned ri;

	dns_flight_close(f);
	while (++f->try < total) {
		ri = (unsigned)f->try % ctx->nresolvers;
		if (f->failed & (1u << ri))
			continue;
		if (dns_flight_send_udp(f, ri) == 0)
			return;
	}
	dns_flight_finish(f, dns_result_new(f->failed != 0 ? DNS_SERVFAIL :
	    DNS_TIMEOUT, NULL, 0, 0));
}

/* Give up on the current resolver for this flight and move on. */
static void
dns_flight_resolver_failed(struct dns_flight *f, const char *reason)
{
	log_warn("dns: resolver failed resolver=%s id=%u reason=\"%s\"",
	    f->ctx->resolvers[f->resolver].text, f->id, reason);
	f->failed |= 1u << f->resolver;
	dns_flight_next_try(f);
}

static void
dns_flight_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns_flight *f = w->data;

	log_warn("dns: resolver timed out resolver=%s id=%u transport=%s "
	    "timeout=%.1fs", f->ctx->resolvers[f->resolver].text, f->id,
	    f->state == FLIGHT_UDP_WAIT ? "udp" : "tcp",
	    f->ctx->config.timeout);
	/* Over UDP a datagram may have been lost; over TCP it was not. */
	if (f->state != FLIGHT_UDP_WAIT)
		f->failed |= 1u << f->resolver;
	dns_flight_next_try(f);
}

/* Returns 1 if pkt answers the flight's current query, else 0. */
static int
dns_answer_matches(const struct dns_flight *f, const ldns_pkt *pkt)
{
	const ldns_rr_list *question = ldns_pkt_question(pkt);
	const ldns_rr *rr;

	if (ldns_pkt_id(pkt) != f->id || !ldns_pkt_qr(pkt) ||
	    ldns_pkt_get_opcode(pkt) != LDNS_PACKET_QUERY)
		return 0;
	if (question == NULL || ldns_rr_list_rr_count(question) != 1)
		return 0;
	rr = ldns_rr_list_rr(question, 0);
	return rr != NULL && ldns_rr_owner(rr) != NULL &&
	    ldns_dname_compare(ldns_rr_owner(rr), f->qname) == 0 &&
	    ldns_rr_get_type(rr) == f->qtype &&
	    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN;
}

static void	dns_flight_start_tcp(struct dns_flight *);

/*
 * Act on one answer of len bytes to the current try.  Returns -1 when
 * the answer is malformed or does not match the query, leaving the
 * flight as it was, and 0 when the answer was used, in which case the
 * flight may have been freed.
 */
static int
dns_flight_answer(struct dns_flight *f, const uint8_t *wire, size_t len,
    int over_tcp)
{
	ldns_pkt *pkt = NULL;
	ldns_pkt_rcode rcode;
	ldns_status st;
	struct dns_result *r;

	if ((st = ldns_wire2pkt(&pkt, wire, len)) != LDNS_STATUS_OK) {
		log_debug("dns: malformed answer dropped id=%u error=%s",
		    f->id, ldns_get_errorstr_by_id(st));
		return -1;
	}
	if (!dns_answer_matches(f, pkt)) {
		log_debug("dns: answer not matching the query dropped id=%u "
		    "answer_id=%u", f->id, ldns_pkt_id(pkt));
		ldns_pkt_free(pkt);
		return -1;
	}
	if (ldns_pkt_tc(pkt)) {
		ldns_pkt_free(pkt);
		if (over_tcp)
			dns_flight_resolver_failed(f, "truncated answer over TCP");
		else
			dns_flight_start_tcp(f);
		return 0;
	}
	rcode = ldns_pkt_get_rcode(pkt);
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
		log_notice("dns: resolver returned an error resolver=%s id=%u "
		    "rcode=%s", f->ctx->resolvers[f->resolver].text, f->id,
		    dns_rcode_name(rcode));
		ldns_pkt_free(pkt);
		f->failed |= 1u << f->resolver;
		dns_flight_next_try(f);
		return 0;
	}
	r = dns_result_from_packet(f->qname, f->qtype, pkt);
	if (f->dnssec)
		dns_result_add_dnssec(r, f->qname, f->qtype, pkt);
	ldns_pkt_free(pkt);
	dns_flight_finish(f, r);
	return 0;
}

static int
dns_sockaddr_equal(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET && alen >= sizeof(*a4)) {
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6 && alen >= sizeof(*a6)) {
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	}
	return 0;
}

/* Read the datagrams waiting on the UDP socket until one answers. */
static void
dns_flight_read_udp(struct dns_flight *f)
{
	const struct dns_resolver *res = &f->ctx->resolvers[f->resolver];
	uint8_t *buf = f->ctx->rbuf;
	struct sockaddr_storage from;
	socklen_t fromlen;
	ssize_t n;
	int i;

	for (i = 0; i < DNS_UDP_READS_PER_EVENT; i++) {
		fromlen = sizeof(from);
		n = recvfrom(f->fd, buf, sizeof(f->ctx->rbuf), 0,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		if (n == -1) {
			/* ECONNREFUSED: an ICMP port unreachable came back. */
			log_warn("dns: receiving answer failed resolver=%s "
			    "id=%u error=%s", res->text, f->id,
			    strerror(errno));
			dns_flight_next_try(f);
			return;
		}
		if (!dns_sockaddr_equal(&from, fromlen, &res->addr)) {
			log_debug("dns: datagram from another source dropped "
			    "id=%u", f->id);
			continue;
		}
		if (dns_flight_answer(f, buf, (size_t)n, 0) == 0)
			return;
	}
}

/*
 * TCP, after an answer with the TC bit: the same query to the same
 * resolver, prefixed with its length (RFC 1035 section 4.2.2).
 */

static void
dns_flight_start_tcp(struct dns_flight *f)
{
	const struct dns_resolver *res = &f->ctx->resolvers[f->resolver];
	int fd;

	dns_flight_close(f);
	fd = socket(res->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		dns_flight_resolver_failed(f, strerror(errno));
		return;
	}
	if (connect(fd, (const struct sockaddr *)&res->addr,
	    res->addrlen) == -1 && errno != EINPROGRESS) {
		close(fd);
		dns_flight_resolver_failed(f, strerror(errno));
		return;
	}
	f->tcp_outlen = f->wirelen + 2;
	f->tcp_out = xmalloc(f->tcp_outlen);
	f->tcp_out[0] = (uint8_t)(f->wirelen >> 8);
	f->tcp_out[1] = (uint8_t)(f->wirelen & 0xff);
	memcpy(f->tcp_out + 2, f->wire, f->wirelen);
	f->tcp_done = 0;
	f->ctx->queries_sent++;
	log_debug("dns: answer truncated, query id=%u key=%s resolver=%s "
	    "transport=tcp", f->id, f->key, res->text);
	dns_flight_watch(f, fd, EV_WRITE);
	dns_flight_set_state(f, FLIGHT_TCP_WRITE);
}

static void
dns_flight_write_tcp(struct dns_flight *f)
{
	ssize_t n;

	n = send(f->fd, f->tcp_out + f->tcp_done, f->tcp_outlen - f->tcp_done,
	    MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n == -1) {
		dns_flight_resolver_failed(f, strerror(errno));
		return;
	}
	f->tcp_done += (size_t)n;
	if (f->tcp_done < f->tcp_outlen)
		return;
	/* The timer keeps running: one timeout covers the whole exchange. */
	ev_io_stop(f->ctx->loop, &f->io);
	ev_io_set(&f->io, f->fd, EV_READ);
	ev_io_start(f->ctx->loop, &f->io);
	f->tcp_done = 0;
	dns_flight_set_state(f, FLIGHT_TCP_READ);
}

/*
 * Read the 2-byte length, then the answer.  The buffer is sized by the
 * length the peer sent, which the 16-bit field caps at 65535 bytes.
 */
static void
dns_flight_read_tcp(struct dns_flight *f)
{
	uint8_t *dst;
	size_t want;
	ssize_t n;

	for (;;) {
		dst = f->tcp_msg == NULL ? f->tcp_hdr : f->tcp_msg;
		want = f->tcp_msg == NULL ? sizeof(f->tcp_hdr) : f->tcp_msglen;
		n = recv(f->fd, dst + f->tcp_done, want - f->tcp_done, 0);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		if (n <= 0) {
			dns_flight_resolver_failed(f, n == 0 ?
			    "connection closed before the answer was complete" :
			    strerror(errno));
			return;
		}
		f->tcp_done += (size_t)n;
		if (f->tcp_done < want)
			continue;
		f->tcp_done = 0;
		if (f->tcp_msg != NULL)
			break;
		f->tcp_msglen = (size_t)f->tcp_hdr[0] << 8 | f->tcp_hdr[1];
		if (f->tcp_msglen < LDNS_HEADER_SIZE) {
			dns_flight_resolver_failed(f, "answer too short");
			return;
		}
		f->tcp_msg = xmalloc(f->tcp_msglen);
	}
	if (dns_flight_answer(f, f->tcp_msg, f->tcp_msglen, 1) == -1)
		dns_flight_resolver_failed(f, "invalid answer over TCP");
}

static void
dns_flight_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_flight *f = w->data;

	switch (f->state) {
	case FLIGHT_UDP_WAIT:
		dns_flight_read_udp(f);
		break;
	case FLIGHT_TCP_WRITE:
		dns_flight_write_tcp(f);
		break;
	case FLIGHT_TCP_READ:
		dns_flight_read_tcp(f);
		break;
	default:
		fatal_invariant("DNS socket event in a state without socket");
	}
}

static void
dns_query_wait(struct dns_query *q, struct dns_flight *f)
{
	q->state = QUERY_WAITING;
	q->flight = f;
	TAILQ_INSERT_TAIL(&f->waiters, q, entry);
}

/*
 * Join the flight for key or start one, taking ownership of key and
 * qname.  Without a resolver, or with DNS_MAX_FLIGHTS flights already
 * running, q gets DNS_SERVFAIL.
 */
static void
dns_lookup_network(struct dns_query *q, char *key, ldns_rdf *qname,
    ldns_rr_type qtype, int dnssec)
{
	struct dns_ctx *ctx = q->ctx;
	struct dns_flight_list *bucket = dns_flight_bucket(ctx, key);
	struct dns_flight *f = dns_flight_find(bucket, key);

	if (f == NULL && (ctx->nresolvers == 0 ||
	    ctx->nflights >= DNS_MAX_FLIGHTS)) {
		log_warn("dns: lookup not started key=%s reason=\"%s\"", key,
		    ctx->nresolvers == 0 ? "no resolver configured" :
		    "too many queries in flight");
		free(key);
		ldns_rdf_deep_free(qname);
		dns_query_fail(q, DNS_SERVFAIL);
		return;
	}
	if (f != NULL) {
		log_debug("dns: lookup joins the query in flight key=%s", key);
		free(key);
		ldns_rdf_deep_free(qname);
		dns_query_wait(q, f);
		return;
	}
	f = dns_flight_new(ctx, bucket, key, qname, qtype, dnssec);
	dns_query_wait(q, f);
	dns_flight_next_try(f);
}

/*
 * Zone mode.
 */

/* Returns the loaded zone with the longest apex at or above name. */
static const struct dns_zone *
dns_zone_find(const struct dns_ctx *ctx, const ldns_rdf *name)
{
	const struct dns_zone *z, *best = NULL;
	size_t i;

	for (i = 0; i < ctx->nzones; i++) {
		z = &ctx->zones[i];
		if (ldns_dname_compare(name, z->apex) != 0 &&
		    !ldns_dname_is_subdomain(name, z->apex))
			continue;
		if (best == NULL || ldns_dname_label_count(z->apex) >
		    ldns_dname_label_count(best->apex))
			best = z;
	}
	return best;
}

/* Returns 1 if name owns records in z or is an empty non-terminal. */
static int
dns_zone_has_name(const struct dns_zone *z, const ldns_rdf *name)
{
	const ldns_rdf *owner;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(z->rrs); i++) {
		owner = ldns_rr_owner(ldns_rr_list_rr(z->rrs, i));
		if (ldns_dname_compare(owner, name) == 0 ||
		    ldns_dname_is_subdomain(owner, name))
			return 1;
	}
	return 0;
}

/*
 * Answer qname and qtype from the loaded zones, following CNAMEs into
 * any loaded zone, and append a copy of each CNAME record followed to
 * cnames unless it is NULL.  A name under no loaded zone gets
 * DNS_NXDOMAIN with a TTL of 0.
 *
 * NOTE: every step scans all records of the zone, which suits the small
 * zones of tests and demos.  Wildcards and delegations are not interpreted.
 */
static struct dns_result *
dns_zone_resolve(const struct dns_ctx *ctx, const ldns_rdf *qname,
    ldns_rr_type qtype, ldns_rr_list *cnames)
{
	ldns_rr_list *rrs = dns_rr_list_new();
	const ldns_rdf *name = qname;
	const struct dns_zone *z;
	const ldns_rr *cname;
	enum dns_status status;
	uint32_t ttl = DNS_MAX_TTL;
	int hops;

	for (hops = 0;; hops++) {
		if ((z = dns_zone_find(ctx, name)) == NULL) {
			ldns_rr_list_free(rrs);
			return dns_result_new(DNS_NXDOMAIN, NULL, 0, 0);
		}
		cname = dns_collect(z->rrs, name, qtype, rrs, &ttl);
		if (ldns_rr_list_rr_count(rrs) > 0)
			return dns_result_new(DNS_OK, rrs, ttl, 0);
		if (cname == NULL || qtype == LDNS_RR_TYPE_CNAME)
			break;
		if (hops == DNS_MAX_CNAME_HOPS ||
		    (name = dns_cname_target(cname)) == NULL) {
			ldns_rr_list_free(rrs);
			return dns_result_new(DNS_SERVFAIL, NULL, 0, 0);
		}
		ttl = dns_min(ttl, ldns_rr_ttl(cname));
		if (cnames != NULL)
			dns_rr_list_push_clone(cnames, cname);
	}
	ldns_rr_list_free(rrs);
	status = dns_zone_has_name(z, name) ? DNS_NODATA : DNS_NXDOMAIN;
	return dns_result_new(status, NULL, dns_min(ttl, z->negative_ttl), 0);
}

/* Append to out the RRSIG records that name owns in the loaded zones. */
static void
dns_zone_collect_sigs(const struct dns_ctx *ctx, const ldns_rdf *name,
    ldns_rr_list *out)
{
	const struct dns_zone *z = dns_zone_find(ctx, name);
	uint32_t ttl = DNS_MAX_TTL;

	if (z != NULL)
		(void)dns_collect(z->rrs, name, LDNS_RR_TYPE_RRSIG, out, &ttl);
}

/*
 * Give a zone answer to a DNSSEC lookup its cnames (taking ownership)
 * and the RRSIG records of the names on the chain.
 *
 * NOTE: authority stays empty, so a validator cannot prove a negative
 * zone answer.  Zone files are local data that need no validation.
 */
static void
dns_zone_add_dnssec(const struct dns_ctx *ctx, struct dns_result *r,
    const ldns_rdf *qname, ldns_rr_list *cnames)
{
	size_t i;

	if (r->status == DNS_SERVFAIL) {
		ldns_rr_list_deep_free(cnames);
		return;
	}
	r->cnames = cnames;
	r->sigs = dns_rr_list_new();
	r->authority = dns_rr_list_new();
	dns_zone_collect_sigs(ctx, qname, r->sigs);
	for (i = 0; i < ldns_rr_list_rr_count(cnames); i++)
		dns_zone_collect_sigs(ctx,
		    dns_cname_target(ldns_rr_list_rr(cnames, i)), r->sigs);
}

static void
dns_lookup_zone(struct dns_query *q, const char *key, const ldns_rdf *qname,
    ldns_rr_type qtype, int dnssec)
{
	ldns_rr_list *cnames = dnssec ? dns_rr_list_new() : NULL;
	struct dns_result *r = dns_zone_resolve(q->ctx, qname, qtype, cnames);

	if (dnssec)
		dns_zone_add_dnssec(q->ctx, r, qname, cnames);
	else
		/* Zone answers are cached too: resolving scans the zone. */
		dns_cache_store(q->ctx, key, r);

	log_debug("dns: zone answer status=%s ttl=%u",
	    dns_status_names[r->status], r->ttl);
	dns_query_ready(q, r, r->ttl);
	dns_result_unref(r);
}

/* Format "PATH: WHAT NAME" into err. */
static void
dns_zone_error(char *err, size_t errsz, const char *path, const char *what,
    const ldns_rdf *name)
{
	char *text = name != NULL ? ldns_rdf2str(name) : NULL;

	snprintf(err, errsz, "%s: %s %s", path, what,
	    text != NULL ? text : "");
	free(text);
}

/*
 * Read the records of a master file into a new list, SOA included, and
 * point *soa at the SOA record in it.  Records are read one at a time
 * with ldns_rr_new_frm_fp_l(), the parser behind ldns_zone_new_frm_fp(),
 * because ldns 1.8.3's ldns_zone_new_frm_fp() leaks the records read so
 * far when it meets a syntax error.  A record without a TTL gets the
 * $TTL value (RFC 2308), or DNS_ZONE_DEFAULT_TTL before any $TTL.
 * Returns the list, or NULL with "PATH:LINE: error" in err.
 */
static ldns_rr_list *
dns_zone_read(FILE *fp, const char *path, const ldns_rr **soa, char *err,
    size_t errsz)
{
	ldns_rr_list *rrs = dns_rr_list_new();
	ldns_rdf *origin = ldns_dname_new_frm_str("."), *prev = NULL;
	uint32_t ttl = DNS_ZONE_DEFAULT_TTL;
	const char *problem = NULL;
	ldns_status st;
	ldns_rr *rr;
	int line = 0;

	*soa = NULL;
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
		else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
		    *soa != NULL) {
			problem = "second SOA record";
			ldns_rr_free(rr);
		} else {
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
				*soa = rr;
			if (!ldns_rr_list_push_rr(rrs, rr))
				fatal_invariant("out of memory");
		}
	}
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	if (problem == NULL && *soa != NULL)
		return rrs;
	if (problem != NULL)
		snprintf(err, errsz, "%s:%d: %s", path, line, problem);
	else
		snprintf(err, errsz, "%s: no SOA record", path);
	ldns_rr_list_deep_free(rrs);
	return NULL;
}

/*
 * Check the records of a zone with apex: every record is of class IN and
 * at or below the apex, and no loaded zone has the same apex.  Returns 0,
 * or -1 with a message in err.
 */
static int
dns_zone_check(const struct dns_ctx *ctx, const ldns_rr_list *rrs,
    const ldns_rdf *apex, const char *path, char *err, size_t errsz)
{
	const ldns_rdf *owner;
	const ldns_rr *rr;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		rr = ldns_rr_list_rr(rrs, i);
		owner = ldns_rr_owner(rr);
		if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
			dns_zone_error(err, errsz, path,
			    "record not of class IN at", owner);
			return -1;
		}
		if (ldns_dname_compare(owner, apex) != 0 &&
		    !ldns_dname_is_subdomain(owner, apex)) {
			dns_zone_error(err, errsz, path,
			    "record outside the zone apex at", owner);
			return -1;
		}
	}
	for (i = 0; i < ctx->nzones; i++)
		if (ldns_dname_compare(ctx->zones[i].apex, apex) == 0) {
			dns_zone_error(err, errsz, path,
			    "zone already loaded:", apex);
			return -1;
		}
	return 0;
}

int
dns_add_zone_file(struct dns_ctx *ctx, const char *path, char *err,
    size_t errsz)
{
	const ldns_rr *soa;
	ldns_rr_list *rrs;
	struct dns_zone *z;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	rrs = dns_zone_read(fp, path, &soa, err, errsz);
	fclose(fp);
	if (rrs == NULL)
		return -1;
	if (dns_zone_check(ctx, rrs, ldns_rr_owner(soa), path, err,
	    errsz) == -1) {
		ldns_rr_list_deep_free(rrs);
		return -1;
	}
	ctx->zones = xrealloc(ctx->zones,
	    (ctx->nzones + 1) * sizeof(*ctx->zones));
	z = &ctx->zones[ctx->nzones++];
	z->rrs = rrs;
	z->apex = ldns_rr_owner(soa);
	z->negative_ttl = dns_soa_negative_ttl(soa);
	log_info("dns: zone loaded path=%s records=%zu", path,
	    ldns_rr_list_rr_count(rrs));
	return 0;
}

/*
 * Resolvers.
 */

/* Returns 0 if port is a decimal number from 1 to 65535, else -1. */
static int
dns_port_check(const char *port)
{
	unsigned long value = 0;
	size_t i;

	for (i = 0; port[i] != '\0'; i++) {
		if (i == 5 || port[i] < '0' || port[i] > '9')
			return -1;
		value = value * 10 + (unsigned long)(port[i] - '0');
	}
	return i > 0 && value >= 1 && value <= 65535 ? 0 : -1;
}

/* Fill res from a numeric host and port.  Returns 0 or -1. */
static int
dns_resolver_set(struct dns_resolver *res, const char *host,
    const char *port)
{
	struct addrinfo hints, *ai = NULL;
	char htext[NI_MAXHOST], ptext[NI_MAXSERV];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		return -1;
	if (ai->ai_addrlen > sizeof(res->addr) ||
	    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) {
		freeaddrinfo(ai);
		return -1;
	}
	memset(res, 0, sizeof(*res));
	memcpy(&res->addr, ai->ai_addr, ai->ai_addrlen);
	res->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (getnameinfo((struct sockaddr *)&res->addr, res->addrlen, htext,
	    sizeof(htext), ptext, sizeof(ptext),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -1;
	snprintf(res->text, sizeof(res->text),
	    res->addr.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", htext,
	    ptext);
	return 0;
}

/* Parse "ADDR", "IPV4:PORT" or "[IPV6]:PORT" into res.  Returns 0 or -1. */
static int
dns_resolver_parse(const char *text, struct dns_resolver *res)
{
	char host[NI_MAXHOST];
	const char *start = text, *end, *port = DNS_DEFAULT_PORT;
	const char *colon = strchr(text, ':');
	size_t len;

	if (text[0] == '[') {
		if ((end = strchr(text, ']')) == NULL)
			return -1;
		start = text + 1;
		len = (size_t)(end - start);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		len = (size_t)(colon - text);
		port = colon + 1;
	} else
		len = strlen(text);
	if (len == 0 || len >= sizeof(host) || dns_port_check(port) == -1)
		return -1;
	memcpy(host, start, len);
	host[len] = '\0';
	return dns_resolver_set(res, host, port);
}

int
dns_add_resolver(struct dns_ctx *ctx, const char *addrport)
{
	struct dns_resolver res;
	char text[64];

	log_printable(text, sizeof(text), addrport, strlen(addrport));
	if (ctx->nresolvers == DNS_MAX_RESOLVERS) {
		log_warn("dns: resolver ignored, the maximum is %d "
		    "resolver=%s", DNS_MAX_RESOLVERS, text);
		return -1;
	}
	if (dns_resolver_parse(addrport, &res) == -1) {
		log_warn("dns: invalid resolver address resolver=%s", text);
		return -1;
	}
	ctx->resolvers[ctx->nresolvers++] = res;
	log_debug("dns: resolver added resolver=%s", res.text);
	return 0;
}

int
dns_add_resolv_conf(struct dns_ctx *ctx, const char *path)
{
	char line[512], *word, *addr, *save = NULL;
	int c, added = 0;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		log_warn("dns: reading resolver configuration failed path=%s "
		    "error=%s", path, strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		/* Skip the rest of an overlong line instead of reading it as a new line. */
		if (strchr(line, '\n') == NULL)
			while ((c = fgetc(fp)) != EOF && c != '\n')
				;
		word = strtok_r(line, " \t\r\n", &save);
		if (word == NULL || strcmp(word, "nameserver") != 0)
			continue;
		addr = strtok_r(NULL, " \t\r\n", &save);
		if (addr != NULL && dns_add_resolver(ctx, addr) == 0)
			added++;
	}
	fclose(fp);
	return added;
}

/*
 * The context and the lookup entry points.
 */

struct dns_ctx *
dns_new(struct ev_loop *loop, const struct dns_config *config)
{
	struct dns_ctx *ctx;
	size_t i;

	if (sodium_init() < 0)
		fatal_invariant("libsodium initialisation failed");
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->loop = loop;
	if (config != NULL)
		ctx->config = *config;
	if (!(ctx->config.timeout > 0))
		ctx->config.timeout = DNS_DEFAULT_TIMEOUT;
	if (ctx->config.attempts <= 0)
		ctx->config.attempts = DNS_DEFAULT_ATTEMPTS;
	if (ctx->config.attempts > DNS_MAX_ATTEMPTS)
		ctx->config.attempts = DNS_MAX_ATTEMPTS;
	if (ctx->config.cache_max_entries == 0)
		ctx->config.cache_max_entries = DNS_DEFAULT_CACHE_ENTRIES;
	if (ctx->config.cache_max_bytes == 0)
		ctx->config.cache_max_bytes = DNS_DEFAULT_CACHE_BYTES;
	ctx->cache = cache_new(ctx->config.cache_max_entries,
	    ctx->config.cache_max_bytes, dns_result_cache_free);
	ctx->last_sweep = ev_now(loop);
	for (i = 0; i < DNS_FLIGHT_BUCKETS; i++)
		LIST_INIT(&ctx->flights[i]);
	randombytes_buf(ctx->bucket_key, sizeof(ctx->bucket_key));
	TAILQ_INIT(&ctx->ready);
	ev_init(&ctx->ready_timer, dns_ready_cb);
	ctx->ready_timer.data = ctx;
	return ctx;
}

void
dns_free(struct dns_ctx *ctx)
{
	struct dns_flight *f;
	struct dns_query *q;
	size_t i;

	if (ctx == NULL)
		return;
	ev_timer_stop(ctx->loop, &ctx->ready_timer);
	while ((q = TAILQ_FIRST(&ctx->ready)) != NULL) {
		TAILQ_REMOVE(&ctx->ready, q, entry);
		dns_result_unref(q->result);
		free(q);
	}
	for (i = 0; i < DNS_FLIGHT_BUCKETS; i++)
		while ((f = LIST_FIRST(&ctx->flights[i])) != NULL) {
			while ((q = TAILQ_FIRST(&f->waiters)) != NULL) {
				TAILQ_REMOVE(&f->waiters, q, entry);
				free(q);
			}
			dns_flight_free(f);
		}
	cache_free(ctx->cache);
	for (i = 0; i < ctx->nzones; i++)
		ldns_rr_list_deep_free(ctx->zones[i].rrs);
	free(ctx->zones);
	free(ctx);
}

/* Append "/dnssec" to a cache key allocated with malloc(). */
static char *
dns_key_dnssec(char *key)
{
	static const char suffix[] = "/dnssec";
	size_t len = strlen(key);

	key = xrealloc(key, len + sizeof(suffix));
	memcpy(key + len, suffix, sizeof(suffix));
	return key;
}

static struct dns_query *
dns_lookup_start(struct dns_ctx *ctx, const char *name, ldns_rr_type type,
    int dnssec, dns_cb *cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	char text[DNS_MAX_NAME_TEXT + 2], tbuf[DNS_TYPE_TEXT_MAX];
	ldns_rdf *qname = NULL;
	char *key = NULL;

	q->ctx = ctx;
	q->cb = cb;
	q->arg = arg;
	/* A warm cache answers without parsing the name with ldns. */
	if (!dnssec && name != NULL &&
	    (key = dns_plain_key(name, type)) != NULL) {
		if (dns_lookup_cache(q, key) != 0) {
			free(key);
			return q;
		}
		free(key);
		key = NULL;
	}
	if (name == NULL || dns_name_parse(name, type, &qname, &key) == -1) {
		log_debug("dns: invalid name name=%s type=%s",
		    name != NULL ? log_printable(text, sizeof(text), name,
		    strlen(name)) : "(null)", dns_type_name(type, tbuf));
		dns_query_fail(q, DNS_SERVFAIL);
		return q;
	}
	if (dnssec)
		key = dns_key_dnssec(key);
	log_debug("dns: lookup key=%s type=%s", key, dns_type_name(type, tbuf));
	if (ctx->nzones > 0)
		dns_lookup_zone(q, key, qname, type, dnssec);
	else if (dns_lookup_cache(q, key) == 0) {
		dns_lookup_network(q, key, qname, type, dnssec);
		return q;
	}
	free(key);
	ldns_rdf_deep_free(qname);
	return q;
}

struct dns_query *
dns_lookup(struct dns_ctx *ctx, const char *name, ldns_rr_type type,
    dns_cb *cb, void *arg)
{
	return dns_lookup_start(ctx, name, type, 0, cb, arg);
}

struct dns_query *
dns_lookup_dnssec(struct dns_ctx *ctx, const char *name, ldns_rr_type type,
    dns_cb *cb, void *arg)
{
	return dns_lookup_start(ctx, name, type, 1, cb, arg);
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	switch (q->state) {
	case QUERY_WAITING:
		/* The flight goes on without waiters and fills the cache. */
		TAILQ_REMOVE(&q->flight->waiters, q, entry);
		break;
	case QUERY_READY:
		TAILQ_REMOVE(&q->ctx->ready, q, entry);
		dns_result_unref(q->result);
		break;
	case QUERY_CALLING:
		/* dns_query_deliver() frees it when the callback returns. */
		return;
	default:
		fatal_invariant("DNS query in an unknown state");
	}
	free(q);
}

uint64_t
dns_queries_sent(const struct dns_ctx *ctx)
{
	return ctx->queries_sent;
}
