/*
 * Tests of the SPF module (router/spf.c): the record parser and the
 * macro expander from tables, then whole checks on a libev loop with the
 * DNS client in zone mode, answering from a master file this program
 * writes.
 *
 * Lookups that must fail (SERVFAIL) go to a fake resolver inside this
 * program: a UDP socket on 127.0.0.1 served on the same loop, which
 * replies with records from a master file and with SERVFAIL for listed
 * names.
 *
 * With "--vectors FILE" the program also runs the RFC 7208 test suite
 * converted by tests/unit/run-spf-test into lines of tab-separated
 * fields:
 *
 *   scenario  ZONE-FILE
 *   timeout   NAME              (SERVFAIL for NAME, types without records)
 *   case      ID HELO HOST MAILFROM RESULT[,RESULT...] [EXPLANATION]
 *
 * A scenario with timeout lines runs against the fake resolver, the
 * others in zone mode.  An empty EXPLANATION field expects none.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>

#include "check.h"
#include "dns.h"
#include "log.h"
#include "spf.h"

#define MAX_TIMEOUT_NAMES	16

static struct ev_loop *loop;
static char tmpdir[64];
static char zone_path[96];

/*
 * The zone of the check tests.  Its apex is the root so that one file
 * contains the reverse-mapping names too.
 */
static const char zone_text[] =
    "$TTL 300\n"
    ".\tIN SOA ns.invalid. admin.invalid. 1 3600 900 604800 60\n"
    "$ORIGIN example.test.\n"
    "ip\tIN TXT \"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all\"\n"
    "ip\tIN TXT \"an unrelated TXT record\"\n"
    "split\tIN TXT \"v=spf1 \" \"ip4:192.0.2.1\" \" -all\"\n"
    "a\tIN TXT \"v=spf1 a/24 a:host.example.test//64 -all\"\n"
    "a\tIN A 198.51.100.7\n"
    "host\tIN AAAA 2001:db8:1::1\n"
    "mx\tIN TXT \"v=spf1 mx -all\"\n"
    "mx\tIN MX 20 mx2\n"
    "mx\tIN MX 10 mx1\n"
    "mx1\tIN A 192.0.2.101\n"
    "mx2\tIN A 192.0.2.102\n"
    "nullmx\tIN TXT \"v=spf1 mx ?all\"\n"
    "nullmx\tIN MX 0 .\n"
    "order\tIN TXT \"v=spf1 mx -all\"\n"
    "order\tIN MX 10 broken\n"
    "order\tIN MX 20 good\n"
    "reverse\tIN TXT \"v=spf1 mx -all\"\n"
    "reverse\tIN MX 10 good\n"
    "reverse\tIN MX 20 broken\n"
    "good\tIN A 192.0.2.10\n"
    "broken\tIN A 192.0.2.11\n"
    "inc\tIN TXT \"v=spf1 include:ip.example.test ~all\"\n"
    "redir\tIN TXT \"v=spf1 exp=no.example.test redirect=ip.example.test\"\n"
    "exp\tIN TXT \"v=spf1 -all exp=why.%{d}\"\n"
    "why.exp\tIN TXT \"%{i} is not one of %{d}'s servers (%{l}, %{C})\"\n"
    "macro\tIN TXT \"v=spf1 exists:%{ir}.%{l1r-}.lp.%{d} -all\"\n"
    "10.2.0.192.alice.lp.macro\tIN A 127.0.0.2\n"
    "loop\tIN TXT \"v=spf1 include:loop.example.test -all\"\n"
    "two\tIN TXT \"v=spf1 -all\"\n"
    "two\tIN TXT \"v=spf1 +all\"\n"
    "bad\tIN TXT \"v=spf1 ip4:192.0.2.0/24 -all moo\"\n"
    "ptr\tIN TXT \"v=spf1 ptr -all\"\n"
    "ptr\tIN A 192.0.2.10\n"
    "pmacro\tIN TXT \"v=spf1 -all exp=pmsg.example.test\"\n"
    "pmsg\tIN TXT \"from %{p}\"\n"
    "servfail\tIN TXT \"v=spf1 a:broken.example.test -all\"\n"
    "10.2.0.192.in-addr.arpa.\tIN PTR ptr.example.test.\n";

/*
 * A fake resolver on the test's own loop.
 */

struct fake {
	int		 fd;
	int		 port;
	ev_io		 io;
	ldns_rr_list	*rrs;
	ldns_rdf	*timeouts[MAX_TIMEOUT_NAMES];
	size_t		 ntimeouts;
	int		 broken;	/* SERVFAIL for timeouts[] always */
};

static ldns_rr_list *
zone_read(const char *path)
{
	ldns_zone *z = NULL;
	ldns_rr_list *rrs;
	FILE *fp = fopen(path, "r");
	ldns_status st;

	if (fp == NULL)
		return NULL;
	st = ldns_zone_new_frm_fp(&z, fp, NULL, 300, LDNS_RR_CLASS_IN);
	fclose(fp);
	if (st != LDNS_STATUS_OK)
		return NULL;
	rrs = ldns_rr_list_clone(ldns_zone_rrs(z));
	ldns_zone_deep_free(z);
	return rrs;
}

static int
fake_is_timeout(const struct fake *f, const ldns_rdf *name)
{
	size_t i;

	for (i = 0; i < f->ntimeouts; i++)
		if (ldns_dname_compare(f->timeouts[i], name) == 0)
			return 1;
	return 0;
}

static int
fake_name_exists(const struct fake *f, const ldns_rdf *name)
{
	const ldns_rdf *owner;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(f->rrs); i++) {
		owner = ldns_rr_owner(ldns_rr_list_rr(f->rrs, i));
		if (ldns_dname_compare(owner, name) == 0 ||
		    ldns_dname_is_subdomain(owner, name))
			return 1;
	}
	return 0;
}

/*
 * Add the records of name and type to reply, following CNAMEs.  Returns
 * the rcode: NOERROR, NXDOMAIN, or SERVFAIL for a listed name without
 * records of the type.
 */
static ldns_pkt_rcode
fake_resolve(const struct fake *f, const ldns_rdf *qname, ldns_rr_type type,
    ldns_pkt *reply)
{
	const ldns_rdf *name = qname;
	const ldns_rr *rr, *cname;
	size_t i, found;
	int hops;

	if (f->broken && fake_is_timeout(f, qname))
		return LDNS_RCODE_SERVFAIL;
	for (hops = 0; hops < 8; hops++) {
		found = 0;
		cname = NULL;
		for (i = 0; i < ldns_rr_list_rr_count(f->rrs); i++) {
			rr = ldns_rr_list_rr(f->rrs, i);
			if (ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
				continue;
			if (ldns_rr_get_type(rr) == type) {
				ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER,
				    ldns_rr_clone(rr));
				found++;
			} else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME)
				cname = rr;
		}
		if (found > 0)
			return LDNS_RCODE_NOERROR;
		if (cname == NULL)
			break;
		ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER,
		    ldns_rr_clone(cname));
		name = ldns_rr_rdf(cname, 0);
	}
	if (fake_is_timeout(f, name))
		return LDNS_RCODE_SERVFAIL;
	return fake_name_exists(f, name) ? LDNS_RCODE_NOERROR :
	    LDNS_RCODE_NXDOMAIN;
}

static void
fake_read_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct fake *f = w->data;
	struct sockaddr_storage peer;
	socklen_t peerlen = sizeof(peer);
	uint8_t buf[4096], *wire = NULL;
	ldns_pkt *query = NULL, *reply;
	const ldns_rr *q;
	ldns_pkt_rcode rcode;
	ssize_t n;
	size_t len;

	n = recvfrom(f->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer,
	    &peerlen);
	if (n <= 0 || ldns_wire2pkt(&query, buf, (size_t)n) != LDNS_STATUS_OK)
		return;
	q = ldns_rr_list_rr(ldns_pkt_question(query), 0);
	if (q == NULL) {
		ldns_pkt_free(query);
		return;
	}
	reply = ldns_pkt_new();
	ldns_pkt_set_id(reply, ldns_pkt_id(query));
	ldns_pkt_set_qr(reply, true);
	ldns_pkt_set_rd(reply, ldns_pkt_rd(query));
	ldns_pkt_set_ra(reply, true);
	ldns_pkt_push_rr(reply, LDNS_SECTION_QUESTION, ldns_rr_clone(q));
	rcode = fake_resolve(f, ldns_rr_owner(q), ldns_rr_get_type(q), reply);
	if (rcode == LDNS_RCODE_SERVFAIL) {
		ldns_rr_list_deep_free(ldns_pkt_answer(reply));
		ldns_pkt_set_answer(reply, ldns_rr_list_new());
		ldns_pkt_set_ancount(reply, 0);
	}
	ldns_pkt_set_rcode(reply, (uint8_t)rcode);
	if (ldns_pkt2wire(&wire, reply, &len) == LDNS_STATUS_OK)
		sendto(f->fd, wire, len, 0, (struct sockaddr *)&peer, peerlen);
	free(wire);
	ldns_pkt_free(reply);
	ldns_pkt_free(query);
}

/* Start a fake resolver serving the master file at path. */
static int
fake_start(struct fake *f, const char *path)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	if ((f->rrs = zone_read(path)) == NULL)
		return -1;
	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (f->fd == -1 || bind(f->fd, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1 ||
	    getsockname(f->fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	f->port = ntohs(sin.sin_port);
	ev_io_init(&f->io, fake_read_cb, f->fd, EV_READ);
	f->io.data = f;
	ev_io_start(loop, &f->io);
	return 0;
}

static void
fake_add_timeout(struct fake *f, const char *name)
{
	ldns_rdf *rdf = ldns_dname_new_frm_str(name);

	if (rdf != NULL && f->ntimeouts < MAX_TIMEOUT_NAMES)
		f->timeouts[f->ntimeouts++] = rdf;
	else
		ldns_rdf_deep_free(rdf);
}

static void
fake_stop(struct fake *f)
{
	size_t i;

	ev_io_stop(loop, &f->io);
	if (f->fd > 0)
		close(f->fd);
	ldns_rr_list_deep_free(f->rrs);
	for (i = 0; i < f->ntimeouts; i++)
		ldns_rdf_deep_free(f->timeouts[i]);
	f->ntimeouts = 0;
	f->rrs = NULL;
}

/*
 * Running checks.
 */

struct result {
	int			 calls;
	struct spf_outcome	 outcome;
};

static void
result_cb(void *arg, const struct spf_outcome *o)
{
	struct result *r = arg;

	r->calls++;
	r->outcome = *o;
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
}

/* Run the loop until *calls reaches want or limit seconds pass. */
static void
run_until(const int *calls, int want, double limit)
{
	double end = ev_time() + limit;
	ev_timer tick;

	/* The tick keeps ev_run() from returning at once with no watcher. */
	ev_timer_init(&tick, tick_cb, 0.05, 0.05);
	ev_timer_start(loop, &tick);
	while (*calls < want && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
}

/* A DNS context in zone mode on path, or on the fake resolver f. */
static struct dns_ctx *
dns_for(const char *path, const struct fake *f)
{
	struct dns_ctx *dns = dns_new(loop, NULL);
	char err[256], addr[64];

	if (f != NULL) {
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
		if (dns_add_resolver(dns, addr) == -1)
			fprintf(stderr, "cannot add resolver %s\n", addr);
	} else if (dns_add_zone_file(dns, path, err, sizeof(err)) == -1)
		fprintf(stderr, "cannot load zone: %s\n", err);
	return dns;
}

/* Run one check to its end on dns; returns the number of callbacks. */
static int
check_on(struct dns_ctx *dns, const char *ip, const char *helo,
    const char *sender, struct spf_outcome *out)
{
	struct result r;

	memset(&r, 0, sizeof(r));
	spf_check_start(dns, ip, helo, sender, "relay.example.net", result_cb,
	    &r);
	CHECK_INT(r.calls, 0);		/* never called back from start */
	run_until(&r.calls, 1, 10.0);
	*out = r.outcome;
	return r.calls;
}

/* Run one check against the test zone in zone mode. */
static enum spf_result
check_zone(const char *ip, const char *sender, struct spf_outcome *out)
{
	struct dns_ctx *dns = dns_for(zone_path, NULL);
	struct spf_outcome o;

	CHECK_INT(check_on(dns, ip, "helo.example.test", sender, &o), 1);
	dns_free(dns);
	if (out != NULL)
		*out = o;
	return o.result;
}

/*
 * Run one check against the test zone on the fake resolver, which
 * replies SERVFAIL to every lookup of the name broken (if not NULL).
 */
static enum spf_result
check_fake(const char *ip, const char *sender, const char *broken,
    struct spf_outcome *out)
{
	struct spf_outcome o;
	struct dns_ctx *dns;
	struct fake f;

	if (fake_start(&f, zone_path) == -1) {
		CHECK(!"fake resolver failed to start");
		return SPF_NONE;
	}
	if (broken != NULL) {
		fake_add_timeout(&f, broken);
		f.broken = 1;
	}
	dns = dns_for(NULL, &f);
	CHECK_INT(check_on(dns, ip, "helo.example.test", sender, &o), 1);
	dns_free(dns);
	fake_stop(&f);
	if (out != NULL)
		*out = o;
	return o.result;
}

#define CHECK_RESULT(got, want) \
	CHECK_STR(spf_result_str(got), spf_result_str(want))

/*
 * The record parser.
 */

static const struct {
	const char	*record;
	int		 mechanisms;	/* -1: a syntax error */
} parse_cases[] = {
	{ "v=spf1", 0 },
	{ "V=SpF1 -ALL", 1 },
	{ "v=spf1   ip4:192.0.2.0/24  -all  ", 2 },
	{ "v=spf1 ip4:192.0.2.1 ip4:0.0.0.0/0 ip6:2001:db8::/32 "
	    "ip6:::ffff:192.0.2.1/128", 4 },
	{ "v=spf1 a a/24 a//64 a/24//64 a:example.com/0 "
	    "a:foo:bar/baz.example.com", 6 },
	{ "v=spf1 mx mx:example.com mx:%{d}/24//64", 3 },
	{ "v=spf1 ptr ptr:example.com include:_spf.example.com "
	    "exists:%{ir}.%{v}._spf.%{d2}", 4 },
	{ "v=spf1 ?all ~all +all -all", 4 },
	{ "v=spf1 redirect=_spf.example.com exp=explain.%{d}", 0 },
	{ "v=spf1 moo.cow-far_out=man:dog/cat other=%{c}%%%_%- -all", 1 },
	{ "v=spf1 a:foo.example.xn--zckzah a:x.1-2 a:%{d}.example.com.", 3 },
	{ "v=spf1 exists:%{l}%%", 1 },
	{ "v=spf10", -1 },
	{ "v=spf1x -all", -1 },
	{ "spf1 -all", -1 },
	{ "v=spf1 -all.", -1 },
	{ "v=spf1 -all:foo", -1 },
	{ "v=spf1 -all/8", -1 },
	{ "v=spf1 moo", -1 },
	{ "v=spf1 =all", -1 },
	{ "v=spf1 1up=foo", -1 },
	{ "v=spf1 moo.cow/far_out=man", -1 },
	{ "v=spf1 redirect:example.com", -1 },
	{ "v=spf1 -redirect=example.com", -1 },
	{ "v=spf1 redirect=a.example redirect=b.example", -1 },
	{ "v=spf1 exp=a.example exp=b.example", -1 },
	{ "v=spf1 exp=", -1 },
	{ "v=spf1 redirect=-all", -1 },
	{ "v=spf1 foo=%abc", -1 },
	{ "v=spf1 ip4", -1 },
	{ "v=spf1 ip4:192.0.2", -1 },
	{ "v=spf1 ip4:192.0.2.1/33", -1 },
	{ "v=spf1 ip4:192.0.2.1/032", -1 },
	{ "v=spf1 ip4:192.0.2.01", -1 },
	{ "v=spf1 ip4:192.0.2.256", -1 },
	{ "v=spf1 ip4:192.0.2.1//32", -1 },
	{ "v=spf1 ip4:192.0.2.1:25", -1 },
	{ "v=spf1 ip6", -1 },
	{ "v=spf1 ip6::CAFE::BABE", -1 },
	{ "v=spf1 ip6:::1/129", -1 },
	{ "v=spf1 ip6:::1//64", -1 },
	{ "v=spf1 a/33", -1 },
	{ "v=spf1 a//129", -1 },
	{ "v=spf1 a/24/64", -1 },
	{ "v=spf1 a//64//64", -1 },
	{ "v=spf1 a:", -1 },
	{ "v=spf1 a:museum", -1 },
	{ "v=spf1 a:museum.", -1 },
	{ "v=spf1 a:abc.123", -1 },
	{ "v=spf1 a:example.-com", -1 },
	{ "v=spf1 a:example.com-", -1 },
	{ "v=spf1 a:example.com:8080", -1 },
	{ "v=spf1 a:%{d}com", -1 },
	{ "v=spf1 a:%{x}.example.com", -1 },
	{ "v=spf1 a:%{c}.example.com", -1 },
	{ "v=spf1 a:%{r}.example.com", -1 },
	{ "v=spf1 a:%{t}.example.com", -1 },
	{ "v=spf1 a:%{d0}.example.com", -1 },
	{ "v=spf1 a:%{d2x}.example.com", -1 },
	{ "v=spf1 a:%{d.example.com", -1 },
	{ "v=spf1 exists:%(ir).example.com", -1 },
	{ "v=spf1 exists:foo%", -1 },
	{ "v=spf1 include", -1 },
	{ "v=spf1 include:", -1 },
	{ "v=spf1 include:example.com/24", -1 },
	{ "v=spf1 exists", -1 },
	{ "v=spf1 exists:example.com/24", -1 },
	{ "v=spf1 ptr/0", -1 },
	{ "v=spf1 ptr:", -1 },
	{ "v=spf1 mx:", -1 },
	{ "v=spf1 ip4:192.0.2.1 -all moo", -1 },
};

static void
test_parse_table(void)
{
	struct spf_record *rec;
	char problem[128];
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		problem[0] = '\0';
		rec = spf_record_parse(parse_cases[i].record,
		    strlen(parse_cases[i].record), problem, sizeof(problem));
		if (parse_cases[i].mechanisms < 0) {
			if (rec != NULL)
				fprintf(stderr, "parsed: %s\n",
				    parse_cases[i].record);
			CHECK(rec == NULL);
			CHECK(problem[0] != '\0');
		} else {
			if (rec == NULL)
				fprintf(stderr, "not parsed: %s: %s\n",
				    parse_cases[i].record, problem);
			CHECK(rec != NULL);
			if (rec != NULL)
				CHECK_INT(spf_record_mechanisms(rec),
				    parse_cases[i].mechanisms);
		}
		spf_record_free(rec);
	}
}

static void
test_parse_bytes(void)
{
	static const char *const bad[] = {
		"v=spf1 a:example.com\r-all",
		"v=spf1 ip4:192.0.2.1\n -all",
		"v=spf1 a:\xef\xbb\xbf" "example.com -all",
		"v=spf1 \x96" "all",
		"v=spf1\t-all",
	};
	char problem[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(spf_record_parse(bad[i], strlen(bad[i]), problem,
		    sizeof(problem)) == NULL);
	/* A NUL byte inside the record. */
	CHECK(spf_record_parse("v=spf1 a:x.example\0 -all", 24, problem,
	    sizeof(problem)) == NULL);
}

static void
test_parse_limits(void)
{
	char text[SPF_RECORD_MAX + 64], problem[128];
	struct spf_record *rec;
	size_t len = 6, n;

	memcpy(text, "v=spf1", 6);
	for (n = 0; n < SPF_MAX_TERMS; n++) {
		memcpy(text + len, " ?all", 5);
		len += 5;
	}
	rec = spf_record_parse(text, len, problem, sizeof(problem));
	CHECK(rec != NULL);
	if (rec != NULL)
		CHECK_INT(spf_record_mechanisms(rec), SPF_MAX_TERMS);
	spf_record_free(rec);
	memcpy(text + len, " ?all", 5);
	CHECK(spf_record_parse(text, len + 5, problem, sizeof(problem)) ==
	    NULL);

	/* A record of exactly SPF_RECORD_MAX bytes parses, one more not. */
	memcpy(text, "v=spf1 ", 7);
	memset(text + 7, ' ', SPF_RECORD_MAX - 7);
	rec = spf_record_parse(text, SPF_RECORD_MAX, problem, sizeof(problem));
	CHECK(rec != NULL);
	spf_record_free(rec);
	text[SPF_RECORD_MAX] = ' ';
	CHECK(spf_record_parse(text, SPF_RECORD_MAX + 1, problem,
	    sizeof(problem)) == NULL);
}

/*
 * Macros: the examples of RFC 7208 section 7.4, with the sender
 * strong-bad@email.example.com, the client 192.0.2.3 or 2001:db8::cb01
 * and the validated name mx.example.org.
 */

static const struct spf_macro_vars rfc_vars = {
	.sender = "strong-bad@email.example.com",
	.local = "strong-bad",
	.sender_domain = "email.example.com",
	.domain = "email.example.com",
	.ip = "192.0.2.3",
	.validated = "mx.example.org",
	.ip_version = "in-addr",
	.helo = "mx.example.org",
	.client = "192.0.2.3",
	.receiver = "relay.example.net",
	.timestamp = 1700000000,
};

static const struct {
	const char	*in;
	const char	*out;
} macro_cases[] = {
	{ "%{s}", "strong-bad@email.example.com" },
	{ "%{o}", "email.example.com" },
	{ "%{d}", "email.example.com" },
	{ "%{d4}", "email.example.com" },
	{ "%{d3}", "email.example.com" },
	{ "%{d2}", "example.com" },
	{ "%{d1}", "com" },
	{ "%{dr}", "com.example.email" },
	{ "%{d2r}", "example.email" },
	{ "%{l}", "strong-bad" },
	{ "%{l-}", "strong.bad" },
	{ "%{lr}", "strong-bad" },
	{ "%{lr-}", "bad.strong" },
	{ "%{l1r-}", "strong" },
	{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
	{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
	{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
	    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
	{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
	    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
	{ "%{d2}.trusted-domains.example.net",
	    "example.com.trusted-domains.example.net" },
	{ "%{p}.%{h}", "mx.example.org.mx.example.org" },
	{ "%{d999}", "email.example.com" },
	{ "%{D2R}", "example.email" },
	{ "%{l-+=}", "strong.bad" },
	{ "%%%_%-", "% %20" },
	{ "%{S}", "strong-bad%40email.example.com" },
};

static void
test_macro_rfc_examples(void)
{
	char out[256];
	size_t i;
	int n;

	for (i = 0; i < sizeof(macro_cases) / sizeof(macro_cases[0]); i++) {
		n = spf_macro_expand(&rfc_vars, SPF_MACRO_DOMAIN,
		    macro_cases[i].in, strlen(macro_cases[i].in), out,
		    sizeof(out));
		CHECK_STR(out, macro_cases[i].out);
		CHECK_INT(n, strlen(macro_cases[i].out));
	}
}

static void
test_macro_explanation(void)
{
	static const char text[] = "%{c} at %{t} to %{r}: see %{L}";
	char out[256];

	CHECK_INT(spf_macro_expand(&rfc_vars, SPF_MACRO_DOMAIN, text,
	    strlen(text), out, sizeof(out)), SPF_MACRO_SYNTAX);
	CHECK(spf_macro_expand(&rfc_vars, SPF_MACRO_EXPLANATION, text,
	    strlen(text), out, sizeof(out)) > 0);
	CHECK_STR(out, "192.0.2.3 at 1700000000 to relay.example.net: "
	    "see strong-bad");
}

static void
test_macro_url_encoding(void)
{
	struct spf_macro_vars v = rfc_vars;
	char out[256];

	v.local = "~jack&jill=up-a_b3.c";
	CHECK(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "%{L}", 4, out,
	    sizeof(out)) > 0);
	CHECK_STR(out, "~jack%26jill%3Dup-a_b3.c");
	v.local = "a b/\xc3\xa9";
	CHECK(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "%{L}", 4, out,
	    sizeof(out)) > 0);
	CHECK_STR(out, "a%20b%2F%C3%A9");
}

static void
test_macro_errors(void)
{
	static const char *const bad[] = {
		"%", "%a", "%{", "%{d", "%{}", "%{x}", "%{d0}", "%{d2x}",
		"%{d!}", "a b", "%(d)", "\x01",
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(spf_macro_expand(&rfc_vars, SPF_MACRO_DOMAIN, bad[i],
		    strlen(bad[i]), out, sizeof(out)), SPF_MACRO_SYNTAX);
}

static void
test_macro_too_long(void)
{
	struct spf_macro_vars v = rfc_vars;
	char out[8], big[SPF_MACRO_VALUE_MAX + 2];

	CHECK_INT(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "%{s}", 4, out,
	    sizeof(out)), SPF_MACRO_TOO_LONG);
	CHECK_STR(out, "strong-");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	v.local = big;
	CHECK_INT(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "%{l}", 4, out,
	    sizeof(out)), SPF_MACRO_TOO_LONG);
	CHECK_INT(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "x", 1, out, 0),
	    SPF_MACRO_TOO_LONG);
}

static void
test_macro_ip6(void)
{
	struct spf_macro_vars v = rfc_vars;
	char out[128];

	/* The nibbles of 2001:db8::cb01 as spf.c writes them. */
	v.ip = "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "C.B.0.1";
	v.ip_version = "ip6";
	CHECK(spf_macro_expand(&v, SPF_MACRO_DOMAIN, "%{ir}.%{v}._spf.%{d2}",
	    21, out, sizeof(out)) > 0);
	CHECK(strcasecmp(out, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com") == 0);
}

/*
 * Whole checks.
 */

static void
test_check_ip_mechanisms(void)
{
	CHECK_RESULT(check_zone("192.0.2.10", "bob@ip.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("198.51.100.1", "bob@ip.example.test", NULL),
	    SPF_FAIL);
	CHECK_RESULT(check_zone("2001:db8::25", "bob@ip.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("::ffff:192.0.2.10", "bob@ip.example.test",
	    NULL), SPF_PASS);
	CHECK_RESULT(check_zone("2001:db9::1", "bob@IP.Example.Test.", NULL),
	    SPF_FAIL);
	CHECK_RESULT(check_zone("192.0.2.1", "bob@split.example.test", NULL),
	    SPF_PASS);
}

static void
test_check_a_and_mx(void)
{
	CHECK_RESULT(check_zone("198.51.100.200", "bob@a.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("2001:db8:1::ffff", "bob@a.example.test",
	    NULL), SPF_PASS);
	CHECK_RESULT(check_zone("2001:db8:2::1", "bob@a.example.test", NULL),
	    SPF_FAIL);
	CHECK_RESULT(check_zone("192.0.2.101", "bob@mx.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("192.0.2.102", "bob@mx.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("192.0.2.103", "bob@mx.example.test", NULL),
	    SPF_FAIL);
	CHECK_RESULT(check_zone("192.0.2.1", "bob@nullmx.example.test",
	    NULL), SPF_NEUTRAL);
}

static void
test_check_include_redirect(void)
{
	struct spf_outcome o;

	CHECK_RESULT(check_zone("192.0.2.10", "bob@inc.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("198.51.100.1", "bob@inc.example.test", NULL),
	    SPF_SOFTFAIL);
	CHECK_RESULT(check_zone("198.51.100.1", "bob@redir.example.test",
	    &o), SPF_FAIL);
	CHECK_STR(o.domain, "redir.example.test");
	CHECK_STR(o.explanation, "");	/* redirect drops the first exp= */
	CHECK_RESULT(check_zone("192.0.2.10", "bob@loop.example.test", &o),
	    SPF_PERMERROR);
	CHECK(strstr(o.problem, "DNS lookups") != NULL);
}

static void
test_check_explanation(void)
{
	struct spf_outcome o;

	CHECK_RESULT(check_zone("192.0.2.99", "bob@exp.example.test", &o),
	    SPF_FAIL);
	CHECK_STR(o.explanation, "192.0.2.99 is not one of exp.example.test's "
	    "servers (bob, 192.0.2.99)");
	CHECK_RESULT(check_zone("2001:db8::99", "@exp.example.test", &o),
	    SPF_FAIL);
	CHECK_STR(o.explanation, "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.9.9 is not one of exp.example.test's servers "
	    "(postmaster, 2001%3Adb8%3A%3A99)");
}

static void
test_check_macros_and_ptr(void)
{
	struct spf_outcome o;

	CHECK_RESULT(check_zone("192.0.2.10", "alice-smith@macro.example.test",
	    NULL), SPF_PASS);
	CHECK_RESULT(check_zone("192.0.2.11", "alice-smith@macro.example.test",
	    NULL), SPF_FAIL);
	CHECK_RESULT(check_zone("192.0.2.10", "bob@ptr.example.test", NULL),
	    SPF_PASS);
	CHECK_RESULT(check_zone("192.0.2.11", "bob@ptr.example.test", NULL),
	    SPF_FAIL);
	CHECK_RESULT(check_zone("192.0.2.10", "bob@pmacro.example.test", &o),
	    SPF_FAIL);
	CHECK_STR(o.explanation, "from ptr.example.test");
	CHECK_RESULT(check_zone("192.0.2.12", "bob@pmacro.example.test", &o),
	    SPF_FAIL);
	CHECK_STR(o.explanation, "from unknown");
}

static void
test_check_errors(void)
{
	struct spf_outcome o;

	CHECK_RESULT(check_zone("192.0.2.10", "bob@two.example.test", &o),
	    SPF_PERMERROR);
	CHECK(strstr(o.problem, "more than one") != NULL);
	CHECK_RESULT(check_zone("192.0.2.10", "bob@bad.example.test", &o),
	    SPF_PERMERROR);
	CHECK(strstr(o.problem, "moo") != NULL);
	CHECK_RESULT(check_zone("192.0.2.10", "bob@none.example.test", &o),
	    SPF_NONE);
	CHECK_STR(o.domain, "none.example.test");
}

static void
test_check_null_sender_and_input(void)
{
	struct spf_outcome o;
	struct dns_ctx *dns = dns_for(zone_path, NULL);
	char big[600];

	CHECK_INT(check_on(dns, "192.0.2.10", "ip.example.test", "", &o), 1);
	CHECK_RESULT(o.result, SPF_PASS);
	CHECK_STR(o.domain, "ip.example.test");
	CHECK_INT(check_on(dns, "192.0.2.10", "x@ip.example.test", "", &o), 1);
	CHECK_RESULT(o.result, SPF_NONE);
	CHECK_STR(o.domain, "x@ip.example.test");
	CHECK_INT(check_on(dns, "192.0.2.10", "x", "ip.example.test", &o), 1);
	CHECK_RESULT(o.result, SPF_PASS);
	CHECK_INT(check_on(dns, "192.0.2.10", "[192.0.2.10]", "", &o), 1);
	CHECK_RESULT(o.result, SPF_NONE);
	CHECK_INT(check_on(dns, "192.0.2.10", "x", "bob@localhost", &o), 1);
	CHECK_RESULT(o.result, SPF_NONE);
	CHECK_INT(check_on(dns, "192.0.2.10", "x", "bob@a..example.test", &o),
	    1);
	CHECK_RESULT(o.result, SPF_NONE);
	CHECK_INT(check_on(dns, "not an address", "x", "bob@ip.example.test",
	    &o), 1);
	CHECK_RESULT(o.result, SPF_NONE);
	CHECK(strstr(o.problem, "client address") != NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(check_on(dns, "192.0.2.10", big, "", &o), 1);
	CHECK_RESULT(o.result, SPF_NONE);
	dns_free(dns);
}

static void
test_check_servfail(void)
{
	struct spf_outcome o;

	CHECK_RESULT(check_fake("192.0.2.10", "bob@ip.example.test", NULL,
	    &o), SPF_PASS);
	CHECK_RESULT(check_fake("192.0.2.10", "bob@servfail.example.test",
	    "broken.example.test", &o), SPF_TEMPERROR);
	CHECK_RESULT(check_fake("192.0.2.10", "bob@ip.example.test",
	    "ip.example.test", &o), SPF_TEMPERROR);
	CHECK(strstr(o.problem, "DNS failure") != NULL);
	CHECK_RESULT(check_fake("192.0.2.10", "bob@gone.example.test",
	    "gone.example.test", &o), SPF_TEMPERROR);
}

/*
 * The MX hosts are looked up in parallel but decide in preference
 * order: a failing host before the matching one makes temperror.
 */
static void
test_check_mx_order(void)
{
	CHECK_RESULT(check_fake("192.0.2.10", "bob@order.example.test",
	    "broken.example.test", NULL), SPF_TEMPERROR);
	CHECK_RESULT(check_fake("192.0.2.10", "bob@reverse.example.test",
	    "broken.example.test", NULL), SPF_PASS);
}

static void
test_check_cancel(void)
{
	struct dns_ctx *dns = dns_for(zone_path, NULL);
	struct spf_check *check;
	struct result r;
	int steps, i;

	/* Cancel after 0 to 12 loop iterations: every state of a check. */
	for (steps = 0; steps <= 12; steps++) {
		memset(&r, 0, sizeof(r));
		check = spf_check_start(dns, "192.0.2.10",
		    "helo.example.test", "bob@pmacro.example.test",
		    NULL, result_cb, &r);
		for (i = 0; i < steps && r.calls == 0; i++)
			ev_run(loop, EVRUN_NOWAIT);
		if (r.calls == 0)
			spf_check_cancel(check);
		run_until(&r.calls, 2, 0.1);
		CHECK(r.calls <= 1);
	}
	spf_check_cancel(NULL);
	dns_free(dns);
}

struct cancel_self {
	struct spf_check	*check;
	int			 calls;
};

static void
cancel_in_cb(void *arg, const struct spf_outcome *o)
{
	struct cancel_self *cs = arg;

	spf_check_cancel(cs->check);	/* a no-op from its own callback */
	cs->calls++;
}

static void
test_check_cancel_in_callback(void)
{
	struct dns_ctx *dns = dns_for(zone_path, NULL);
	struct cancel_self cs = { NULL, 0 };

	cs.check = spf_check_start(dns, "192.0.2.10", "h.example.test",
	    "bob@ip.example.test", NULL, cancel_in_cb, &cs);
	run_until(&cs.calls, 1, 5.0);
	CHECK_INT(cs.calls, 1);
	dns_free(dns);
}

static void
test_result_names(void)
{
	CHECK_STR(spf_result_str(SPF_NONE), "none");
	CHECK_STR(spf_result_str(SPF_NEUTRAL), "neutral");
	CHECK_STR(spf_result_str(SPF_PASS), "pass");
	CHECK_STR(spf_result_str(SPF_FAIL), "fail");
	CHECK_STR(spf_result_str(SPF_SOFTFAIL), "softfail");
	CHECK_STR(spf_result_str(SPF_TEMPERROR), "temperror");
	CHECK_STR(spf_result_str(SPF_PERMERROR), "permerror");
}

/*
 * The RFC 7208 test suite.
 */

struct scenario {
	char	 zone[512];
	char	 timeouts[MAX_TIMEOUT_NAMES][256];
	size_t	 ntimeouts;
};

/* Split line at tabs into at most max fields; returns the count. */
static size_t
split_tabs(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line;

	line[strcspn(line, "\n")] = '\0';
	while (n < max) {
		fields[n++] = p;
		if ((p = strchr(p, '\t')) == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

/* Returns 1 if result is one of the comma-separated names in want. */
static int
result_listed(enum spf_result result, const char *want)
{
	const char *name = spf_result_str(result), *p = want;
	size_t len = strlen(name);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, len) == 0 && (p[len] == ',' ||
		    p[len] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	return 0;
}

static void
run_vector(const struct scenario *s, char **field, size_t nfields)
{
	const char *id = field[1], *want_exp = nfields > 6 ? field[6] : NULL;
	struct spf_outcome o;
	struct dns_ctx *dns;
	struct fake f;
	size_t i;
	int ok, calls;

	if (s->ntimeouts > 0) {
		if (fake_start(&f, s->zone) == -1) {
			printf("FAIL vector %s: fake resolver failed\n", id);
			check_failed++;
			return;
		}
		for (i = 0; i < s->ntimeouts; i++)
			fake_add_timeout(&f, s->timeouts[i]);
		dns = dns_for(NULL, &f);
	} else
		dns = dns_for(s->zone, NULL);
	calls = check_on(dns, field[3], field[2], field[4], &o);
	dns_free(dns);
	if (s->ntimeouts > 0)
		fake_stop(&f);
	ok = calls == 1 && result_listed(o.result, field[5]) &&
	    (want_exp == NULL || strcmp(o.explanation, want_exp) == 0);
	if (ok) {
		check_passed++;
		printf("ok   vector %s\n", id);
		return;
	}
	check_failed++;
	printf("FAIL vector %s: result %s, want %s; explanation \"%s\", "
	    "want \"%s\"; problem \"%s\"\n", id, spf_result_str(o.result),
	    field[5], o.explanation, want_exp != NULL ? want_exp : "(any)",
	    o.problem);
}

/* Run every case of the converted suite; returns -1 if unreadable. */
static int
run_vectors(const char *path)
{
	struct scenario *s = calloc(1, sizeof(*s));
	char line[4096], *field[8];
	size_t n, cases = 0;
	FILE *fp;

	if (s == NULL || (fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		free(s);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		n = split_tabs(line, field, 8);
		if (strcmp(field[0], "scenario") == 0 && n == 2) {
			memset(s, 0, sizeof(*s));
			snprintf(s->zone, sizeof(s->zone), "%s", field[1]);
		} else if (strcmp(field[0], "timeout") == 0 && n == 2 &&
		    s->ntimeouts < MAX_TIMEOUT_NAMES)
			snprintf(s->timeouts[s->ntimeouts++], 256, "%s",
			    field[1]);
		else if (strcmp(field[0], "case") == 0 && n >= 6) {
			run_vector(s, field, n);
			cases++;
		} else
			fprintf(stderr, "%s: line not understood\n", path);
	}
	fclose(fp);
	free(s);
	printf("%zu vectors run\n", cases);
	return cases > 0 ? 0 : -1;
}

/*
 * Set-up.
 */

static int
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *vectors = NULL;

	if (argc == 3 && strcmp(argv[1], "--vectors") == 0)
		vectors = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: test_spf [--vectors FILE]\n");
		return 2;
	}
	log_init("test_spf", LOG_LVL_WARN);
	loop = ev_loop_new(EVFLAG_AUTO);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_spf.XXXXXX");
	if (loop == NULL || mkdtemp(tmpdir) == NULL) {
		perror("test_spf: set-up");
		return 1;
	}
	snprintf(zone_path, sizeof(zone_path), "%s/zone", tmpdir);
	if (write_file(zone_path, zone_text) == -1) {
		perror(zone_path);
		return 1;
	}

	RUN(test_parse_table);
	RUN(test_parse_bytes);
	RUN(test_parse_limits);
	RUN(test_macro_rfc_examples);
	RUN(test_macro_explanation);
	RUN(test_macro_url_encoding);
	RUN(test_macro_errors);
	RUN(test_macro_too_long);
	RUN(test_macro_ip6);
	RUN(test_check_ip_mechanisms);
	RUN(test_check_a_and_mx);
	RUN(test_check_include_redirect);
	RUN(test_check_explanation);
	RUN(test_check_macros_and_ptr);
	RUN(test_check_errors);
	RUN(test_check_null_sender_and_input);
	RUN(test_check_servfail);
	RUN(test_check_mx_order);
	RUN(test_check_cancel);
	RUN(test_check_cancel_in_callback);
	RUN(test_result_names);
	if (vectors != NULL && run_vectors(vectors) == -1)
		check_failed++;

	unlink(zone_path);
	rmdir(tmpdir);
	ev_loop_destroy(loop);
	CHECK_SUMMARY();
}
