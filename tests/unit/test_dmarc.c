/*
 * Tests of DMARC (router/dmarc.c): the record parser, identifier
 * alignment, evaluation with injected pct draws, the From field parser,
 * and policy discovery through the DNS client.
 *
 * Policy discovery runs in the DNS client's zone mode, on zone files this
 * program writes into a temporary directory.  DNS failures come from a
 * mock resolver: a child process bound to 127.0.0.1 that answers SERVFAIL
 * (or NXDOMAIN for one name), or never answers.  It is a mock, not a DNS
 * server.
 *
 * The transcribed vectors of tests/vectors/dmarc/cases/ are read from the
 * repository root; NOTICE there lists where this code gives other results
 * than their source projects, and why.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>

#include "check.h"
#include "dmarc.h"
#include "dns.h"
#include "log.h"
#include "psl.h"

#define CASES_DIR	"tests/vectors/dmarc/cases/"

static char tmpdir[64];
static struct psl *psl;

/*
 * Record parsing.
 */

struct parse_case {
	const char		*record;
	enum dmarc_parse_status	 status;
	enum dmarc_policy	 p;
	enum dmarc_policy	 sp;
	int			 sp_set;
	int			 p_fallback;
	enum dmarc_align	 adkim;
	enum dmarc_align	 aspf;
	unsigned		 pct;
};

#define R DMARC_ALIGN_RELAXED
#define S DMARC_ALIGN_STRICT
#define PN DMARC_POLICY_NONE
#define PQ DMARC_POLICY_QUARANTINE
#define PR DMARC_POLICY_REJECT
#define OK DMARC_PARSE_OK
#define NOT DMARC_PARSE_NOT_DMARC
#define BAD DMARC_PARSE_INVALID
/* The fields of a record that does not parse are not compared. */
#define NO_FIELDS PN, PN, 0, 0, R, R, 0

static const struct parse_case parse_cases[] = {
	{ "v=DMARC1; p=reject", OK, PR, PR, 0, 0, R, R, 100 },
	{ "v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20",
	    OK, PQ, PN, 1, 0, S, S, 20 },
	{ "v = DMARC1 ; p = reject ; sp = quarantine ;", OK, PR, PQ, 1, 0,
	    R, R, 100 },
	{ "v=DMARC1; P=Reject; ADKIM=S", OK, PR, PR, 0, 0, S, R, 100 },
	{ "v=DMARC1;\tp=none;;; pct=0", OK, PN, PN, 0, 0, R, R, 0 },
	{ "v=DMARC1; p=reject; pct=100", OK, PR, PR, 0, 0, R, R, 100 },
	/* Invalid adkim, aspf and pct fall back to their defaults. */
	{ "v=DMARC1; p=reject; adkim=x; aspf=; pct=101", OK, PR, PR, 0, 0,
	    R, R, 100 },
	{ "v=DMARC1; p=reject; pct=-1", OK, PR, PR, 0, 0, R, R, 100 },
	{ "v=DMARC1; p=reject; pct=1000", OK, PR, PR, 0, 0, R, R, 100 },
	{ "v=DMARC1; p=reject; pct=5x", OK, PR, PR, 0, 0, R, R, 100 },
	/* Unknown tags and broken tag-specs are ignored. */
	{ "v=DMARC1; p=reject; foo=bar; junk; =x", OK, PR, PR, 0, 0, R, R,
	    100 },
	/* Invalid or missing p (or invalid sp) with a valid rua: p=none. */
	{ "v=DMARC1; rua=mailto:d@example.org", OK, PN, PN, 0, 1, R, R, 100 },
	{ "v=DMARC1; p=bogus; rua=mailto:d@example.org!10m", OK, PN, PN, 0, 1,
	    R, R, 100 },
	{ "v=DMARC1; p=reject; sp=bogus; rua=x:y, mailto:d@example.org", OK,
	    PN, PN, 0, 1, R, R, 100 },
	{ "v=DMARC1; p=reject; sp=bogus; rua=ftp://example.org", OK, PN, PN,
	    0, 1, R, R, 100 },
	/* ... and without one: no policy at all. */
	{ "v=DMARC1", BAD, NO_FIELDS },
	{ "v=DMARC1;", BAD, NO_FIELDS },
	{ "v=DMARC1; p=", BAD, NO_FIELDS },
	{ "v=DMARC1; p=reject; sp=bogus", BAD, NO_FIELDS },
	{ "v=DMARC1; p=bogus; rua=notauri", BAD, NO_FIELDS },
	{ "v=DMARC1; p=bogus; rua=mailto:", BAD, NO_FIELDS },
	{ "v=DMARC1; p=bogus; rua=mailto:a@b!", BAD, NO_FIELDS },
	{ "v=DMARC1; p=bogus; rua=1a:x", BAD, NO_FIELDS },
	{ "v=DMARC1; p=rejected", BAD, NO_FIELDS },
	/* A repeated tag makes the record invalid. */
	{ "v=DMARC1; p=none; p=reject", BAD, NO_FIELDS },
	{ "v=DMARC1; p=reject; v=DMARC1", BAD, NO_FIELDS },
	{ "v=DMARC1; p=reject; pct=10; PCT=20", BAD, NO_FIELDS },
	/* Not DMARC records: ignored during discovery. */
	{ "", NOT, NO_FIELDS },
	{ "v=spf1 -all", NOT, NO_FIELDS },
	{ "v=DMARC2; p=reject", NOT, NO_FIELDS },
	{ "v=dmarc1; p=reject", NOT, NO_FIELDS },
	{ "v=DMARC1p=reject", NOT, NO_FIELDS },
	{ "p=reject; v=DMARC1", NOT, NO_FIELDS },
	{ "x v=DMARC1; p=reject", NOT, NO_FIELDS },
	{ "v:DMARC1; p=reject", NOT, NO_FIELDS },
};

static void
dmarc_record_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct dmarc_record rec;
		enum dmarc_parse_status st;

		memset(&rec, 0xff, sizeof(rec));
		st = dmarc_record_parse(&rec, c->record, strlen(c->record));
		if (st != c->status)
			fprintf(stderr, "record \"%s\"\n", c->record);
		CHECK_INT(st, c->status);
		if (st != DMARC_PARSE_OK || c->status != DMARC_PARSE_OK)
			continue;
		CHECK_INT(rec.p, c->p);
		CHECK_INT(rec.sp, c->sp);
		CHECK_INT(rec.sp_set, c->sp_set);
		CHECK_INT(rec.p_fallback, c->p_fallback);
		CHECK_INT(rec.adkim, c->adkim);
		CHECK_INT(rec.aspf, c->aspf);
		CHECK_INT(rec.pct, c->pct);
	}
}

static void
dmarc_record_not_terminated(void)
{
	struct dmarc_record rec;
	const char text[] = "v=DMARC1; p=reject; sp=none";

	/* The length, not a NUL, ends the record: "sp=no" is invalid. */
	CHECK_INT(dmarc_record_parse(&rec, text, sizeof(text) - 3),
	    DMARC_PARSE_INVALID);
	CHECK_INT(dmarc_record_parse(&rec, text, sizeof(text) - 1),
	    DMARC_PARSE_OK);
	CHECK_INT(rec.sp, DMARC_POLICY_NONE);
}

/*
 * Read the tab-separated rows of a vector file (lines starting with '#'
 * and the column header skipped) and call fn on each.  Returns the count.
 */
static int
read_tsv(const char *name, void (*fn)(char **cols, int ncols))
{
	char path[256], line[2048], *cols[16], *p;
	int ncols, rows = 0, header = 1;
	FILE *fp;

	snprintf(path, sizeof(path), CASES_DIR "%s", name);
	if ((fp = fopen(path, "r")) == NULL) {
		perror(path);
		CHECK(fp != NULL);
		return 0;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (header) {
			header = 0;
			continue;
		}
		ncols = 0;
		for (p = line; ncols < 16; ) {
			cols[ncols++] = p;
			if ((p = strchr(p, '\t')) == NULL)
				break;
			*p++ = '\0';
		}
		fn(cols, ncols);
		rows++;
	}
	fclose(fp);
	return rows;
}

/*
 * OpenDMARC's parse status of each case, mapped onto RFC 7489 as this
 * parser reads it (NOTICE explains each difference).
 */
static enum dmarc_parse_status
opendmarc_expected(int n, const char *status)
{
	switch (n) {
	case 5:		/* p=n: not a keyword of the RFC 7489 grammar */
	case 8:		/* p=bob */
	case 9:		/* sp=bob */
	case 15:	/* no p */
		return DMARC_PARSE_INVALID;
	case 10: case 11: case 12: case 13: case 14: case 19:
		/* Invalid adkim, aspf, rf, ri, pct: defaults apply. */
		return DMARC_PARSE_OK;
	default:
		break;
	}
	if (strcmp(status, "DMARC_PARSE_OKAY") == 0)
		return DMARC_PARSE_OK;
	return DMARC_PARSE_NOT_DMARC;	/* empty, bad version */
}

static void
opendmarc_parse_row(char **cols, int ncols)
{
	struct dmarc_record rec;
	enum dmarc_parse_status want, got;

	CHECK(ncols >= 3);
	if (ncols < 3)
		return;
	want = opendmarc_expected(atoi(cols[0]), cols[2]);
	got = dmarc_record_parse(&rec, cols[1], strlen(cols[1]));
	if (got != want)
		fprintf(stderr, "opendmarc case %s: \"%s\"\n", cols[0], cols[1]);
	CHECK_INT(got, want);
}

static void
dmarc_record_opendmarc_vectors(void)
{
	CHECK_INT(read_tsv("opendmarc-record-parse.tsv", opendmarc_parse_row),
	    19);
}

/*
 * Alignment.
 */

static void
opendmarc_align_row(char **cols, int ncols)
{
	enum dmarc_align mode;
	int want, n;

	CHECK(ncols >= 5);
	if (ncols < 5)
		return;
	n = atoi(cols[0]);
	mode = strcmp(cols[3], "strict") == 0 ? DMARC_ALIGN_STRICT :
	    DMARC_ALIGN_RELAXED;
	/* Cases 5 and 6: no stripping of stray dots here. */
	want = n == 5 || n == 6 ? 0 : strcmp(cols[4], "yes") == 0;
	if (dmarc_aligned(psl, cols[1], cols[2], mode) != want)
		fprintf(stderr, "opendmarc alignment case %d\n", n);
	CHECK_INT(dmarc_aligned(psl, cols[1], cols[2], mode), want);
}

static void
dmarc_align_opendmarc_vectors(void)
{
	CHECK_INT(read_tsv("opendmarc-alignment.tsv", opendmarc_align_row),
	    10);
}

struct align_case {
	const char	*a;
	const char	*b;
	int		 strict;
	int		 relaxed;
};

/*
 * Own cases, and the spf_align and dkim_align rows of
 * mail-dmarc-alignment-and-from.tsv (transcribed: their inputs are prose).
 */
static const struct align_case align_cases[] = {
	{ "example.com", "example.COM", 1, 1 },
	{ "mail.example.com", "example.com", 0, 1 },
	{ "mail.exUmple.com", "example.com", 0, 0 },
	{ "mail.exaNple.com", "example.com", 0, 0 },
	{ "net", "net", 1, 1 },
	{ "example.net", "net", 0, 0 },
	{ "a.example.co.uk", "b.example.co.uk", 0, 1 },
	{ "example.co.uk", "other.co.uk", 0, 0 },
	{ "co.uk", "example.co.uk", 0, 0 },
	{ "example.com.", "example.com", 1, 1 },
	{ "a.b.c.example.com", "example.com", 0, 1 },
	{ "foo.github.io", "bar.github.io", 0, 0 },
	{ "x.foo.github.io", "foo.github.io", 0, 1 },
	{ "bücher.example", "xn--bcher-kva.example", 1, 1 },
	{ "", "", 0, 0 },
	{ "example..com", "example..com", 0, 0 },
	{ "exa mple.com", "exa mple.com", 0, 0 },
	{ "[192.0.2.1]", "[192.0.2.1]", 0, 0 },
};

static void
dmarc_align_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(align_cases) / sizeof(align_cases[0]); i++) {
		const struct align_case *c = &align_cases[i];

		if (dmarc_aligned(psl, c->a, c->b, DMARC_ALIGN_STRICT) !=
		    c->strict || dmarc_aligned(psl, c->a, c->b,
		    DMARC_ALIGN_RELAXED) != c->relaxed)
			fprintf(stderr, "alignment of %s and %s\n", c->a, c->b);
		CHECK_INT(dmarc_aligned(psl, c->a, c->b, DMARC_ALIGN_STRICT),
		    c->strict);
		CHECK_INT(dmarc_aligned(psl, c->a, c->b, DMARC_ALIGN_RELAXED),
		    c->relaxed);
		CHECK_INT(dmarc_aligned(psl, c->b, c->a, DMARC_ALIGN_RELAXED),
		    c->relaxed);
	}
	CHECK_INT(dmarc_aligned(psl, NULL, "example.com", DMARC_ALIGN_RELAXED),
	    0);
}

/*
 * Evaluation without DNS.
 */

static struct dmarc_record
record_of(const char *text)
{
	struct dmarc_record rec;

	memset(&rec, 0, sizeof(rec));
	CHECK_INT(dmarc_record_parse(&rec, text, strlen(text)),
	    DMARC_PARSE_OK);
	return rec;
}

static void
dmarc_evaluate_alignment(void)
{
	struct dmarc_record relaxed = record_of("v=DMARC1; p=reject");
	struct dmarc_record strict = record_of(
	    "v=DMARC1; p=reject; adkim=s; aspf=s");
	struct dmarc_auth auth;
	struct dmarc_result res;

	/* SPF pass for a subdomain: aligned only in relaxed mode. */
	memset(&auth, 0, sizeof(auth));
	auth.spf_result = "pass";
	auth.spf_domain = "bounce.example.com";
	dmarc_evaluate(psl, "example.com", "example.com", &relaxed, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_PASS);
	CHECK_INT(res.spf_aligned, 1);
	CHECK_INT(res.dkim_aligned, 0);
	CHECK_INT(res.policy, DMARC_POLICY_NONE);
	CHECK_INT(res.requested, DMARC_POLICY_REJECT);
	CHECK_STR(res.reason, "aligned SPF pass");
	dmarc_evaluate(psl, "example.com", "example.com", &strict, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_FAIL);
	CHECK_INT(res.policy, DMARC_POLICY_REJECT);
	CHECK_STR(res.reason, "no aligned SPF or DKIM pass");

	/* SPF softfail counts for nothing, whatever the domain. */
	auth.spf_result = "softfail";
	auth.spf_domain = "example.com";
	dmarc_evaluate(psl, "example.com", "example.com", &relaxed, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_FAIL);

	/* Only passing DKIM signatures count; the result is caseless. */
	auth.ndkim = 3;
	auth.dkim[0].domain = "example.com";
	auth.dkim[0].result = "fail";
	auth.dkim[1].domain = "mailing-list.example";
	auth.dkim[1].result = "pass";
	auth.dkim[2].domain = "news.example.com";
	auth.dkim[2].result = "PASS";
	dmarc_evaluate(psl, "example.com", "example.com", &relaxed, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_PASS);
	CHECK_INT(res.dkim_aligned, 1);
	CHECK_INT(res.spf_aligned, 0);
	CHECK_STR(res.reason, "aligned DKIM pass");
	dmarc_evaluate(psl, "example.com", "example.com", &strict, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_FAIL);

	/* Both aligned. */
	auth.spf_result = "pass";
	auth.dkim[0].result = "pass";
	dmarc_evaluate(psl, "example.com", "example.com", &strict, &auth,
	    &res);
	CHECK_INT(res.status, DMARC_PASS);
	CHECK_STR(res.reason, "aligned SPF and DKIM pass");
}

static void
dmarc_evaluate_dkim_limit(void)
{
	struct dmarc_record rec = record_of("v=DMARC1; p=reject");
	struct dmarc_auth auth;
	struct dmarc_result res;
	size_t i;

	memset(&auth, 0, sizeof(auth));
	for (i = 0; i < DMARC_DKIM_MAX; i++) {
		auth.dkim[i].domain = "other.example";
		auth.dkim[i].result = "pass";
	}
	/* ndkim beyond DMARC_DKIM_MAX reads no more than the array. */
	auth.ndkim = 1000;
	dmarc_evaluate(psl, "example.com", "example.com", &rec, &auth, &res);
	CHECK_INT(res.status, DMARC_FAIL);
	auth.dkim[DMARC_DKIM_MAX - 1].domain = "example.com";
	dmarc_evaluate(psl, "example.com", "example.com", &rec, &auth, &res);
	CHECK_INT(res.status, DMARC_PASS);
	/* Missing values never align. */
	auth.dkim[DMARC_DKIM_MAX - 1].domain = NULL;
	auth.spf_result = "pass";
	auth.spf_domain = NULL;
	dmarc_evaluate(psl, "example.com", "example.com", &rec, &auth, &res);
	CHECK_INT(res.status, DMARC_FAIL);
}

struct pct_case {
	const char		*record;
	uint32_t		 draw;
	enum dmarc_policy	 policy;
	int			 sampled_out;
};

static const struct pct_case pct_cases[] = {
	{ "v=DMARC1; p=reject; pct=50", 0, PR, 0 },
	{ "v=DMARC1; p=reject; pct=50", 49, PR, 0 },
	{ "v=DMARC1; p=reject; pct=50", 50, PQ, 1 },
	{ "v=DMARC1; p=reject; pct=50", 99, PQ, 1 },
	{ "v=DMARC1; p=quarantine; pct=50", 49, PQ, 0 },
	{ "v=DMARC1; p=quarantine; pct=50", 50, PN, 1 },
	{ "v=DMARC1; p=reject; pct=0", 0, PQ, 1 },
	{ "v=DMARC1; p=quarantine; pct=0", 0, PN, 1 },
	{ "v=DMARC1; p=reject; pct=100", 99, PR, 0 },
	{ "v=DMARC1; p=reject", 99, PR, 0 },
	{ "v=DMARC1; p=reject; pct=1", 0, PR, 0 },
	{ "v=DMARC1; p=reject; pct=1", 1, PQ, 1 },
	{ "v=DMARC1; p=none; pct=0", 0, PN, 0 },
	/* Draws of 100 and above are taken modulo 100. */
	{ "v=DMARC1; p=reject; pct=50", 149, PR, 0 },
};

static void
dmarc_evaluate_pct_draws(void)
{
	struct dmarc_auth auth;
	struct dmarc_result res;
	size_t i;

	memset(&auth, 0, sizeof(auth));
	for (i = 0; i < sizeof(pct_cases) / sizeof(pct_cases[0]); i++) {
		const struct pct_case *c = &pct_cases[i];
		struct dmarc_record rec = record_of(c->record);

		auth.pct_draw = &c->draw;
		dmarc_evaluate(psl, "example.com", "example.com", &rec, &auth,
		    &res);
		if (res.policy != c->policy)
			fprintf(stderr, "\"%s\" draw %u\n", c->record, c->draw);
		CHECK_INT(res.status, DMARC_FAIL);
		CHECK_INT(res.policy, c->policy);
		CHECK_INT(res.sampled_out, c->sampled_out);
	}
}

static void
dmarc_evaluate_pct_random(void)
{
	struct dmarc_record rec = record_of("v=DMARC1; p=reject; pct=50");
	struct dmarc_auth auth;
	struct dmarc_result res;
	int i, rejected = 0;

	memset(&auth, 0, sizeof(auth));
	for (i = 0; i < 1000; i++) {
		dmarc_evaluate(psl, "example.com", "example.com", &rec, &auth,
		    &res);
		CHECK(res.policy == DMARC_POLICY_REJECT ||
		    res.policy == DMARC_POLICY_QUARANTINE);
		rejected += res.policy == DMARC_POLICY_REJECT;
	}
	/* 1000 fair draws: outside 350..650 has odds below 1e-20. */
	CHECK(rejected > 350);
	CHECK(rejected < 650);
}

static void
dmarc_evaluate_sp_choice(void)
{
	struct dmarc_record rec = record_of(
	    "v=DMARC1; p=reject; sp=quarantine");
	struct dmarc_record no_sp = record_of("v=DMARC1; p=quarantine");
	struct dmarc_auth auth;
	struct dmarc_result res;

	memset(&auth, 0, sizeof(auth));
	/* Record at the Organizational Domain of a subdomain: sp. */
	dmarc_evaluate(psl, "a.example.com", "example.com", &rec, &auth, &res);
	CHECK_INT(res.used_sp, 1);
	CHECK_INT(res.policy, DMARC_POLICY_QUARANTINE);
	CHECK_STR(res.from_domain, "a.example.com");
	CHECK_STR(res.org_domain, "example.com");
	CHECK_STR(res.record_domain, "example.com");
	/* Record at the author domain itself: p, even for a subdomain. */
	dmarc_evaluate(psl, "a.example.com", "a.example.com", &rec, &auth,
	    &res);
	CHECK_INT(res.used_sp, 0);
	CHECK_INT(res.policy, DMARC_POLICY_REJECT);
	/* No sp: p applies to subdomains too. */
	dmarc_evaluate(psl, "a.example.com", "example.com", &no_sp, &auth,
	    &res);
	CHECK_INT(res.used_sp, 0);
	CHECK_INT(res.policy, DMARC_POLICY_QUARANTINE);
}

static void
dmarc_strings_and_order(void)
{
	CHECK_STR(dmarc_status_str(DMARC_NONE), "none");
	CHECK_STR(dmarc_status_str(DMARC_PASS), "pass");
	CHECK_STR(dmarc_status_str(DMARC_FAIL), "fail");
	CHECK_STR(dmarc_status_str(DMARC_TEMPERROR), "temperror");
	CHECK_STR(dmarc_status_str(DMARC_PERMERROR), "permerror");
	CHECK_STR(dmarc_status_str((enum dmarc_status)99), "unknown");
	CHECK_STR(dmarc_policy_str(DMARC_POLICY_NONE), "none");
	CHECK_STR(dmarc_policy_str(DMARC_POLICY_QUARANTINE), "quarantine");
	CHECK_STR(dmarc_policy_str(DMARC_POLICY_REJECT), "reject");
	CHECK_INT(dmarc_policy_stricter(PN, PQ), PQ);
	CHECK_INT(dmarc_policy_stricter(PR, PQ), PR);
	CHECK_INT(dmarc_policy_stricter(PN, PN), PN);
}

/*
 * The From field.
 */

struct from_case {
	const char		*value;
	enum dmarc_from_status	 status;
	const char		*domain1;
	const char		*domain2;
};

#define FOK DMARC_FROM_OK
#define FMULTI DMARC_FROM_MULTIPLE_DOMAINS
#define FBAD DMARC_FROM_UNPARSEABLE

static const struct from_case from_cases[] = {
	{ "user@example.com", FOK, "example.com", NULL },
	{ " Joe Q. Public <john.q.public@Example.COM>", FOK, "example.com",
	    NULL },
	{ "\"Joe, Q. Public\" <joe@example.com>", FOK, "example.com", NULL },
	{ "\"quoted \\\" <x@evil.example>\" <joe@example.com>", FOK,
	    "example.com", NULL },
	{ "(comment <x@evil.example>) joe@example.com (Joe (nested))", FOK,
	    "example.com", NULL },
	{ "Joe\r\n <joe@example.com>", FOK, "example.com", NULL },
	{ "\"odd local\"@example.com", FOK, "example.com", NULL },
	{ "<@route.example,@other.example:joe@example.com>", FOK,
	    "example.com", NULL },
	{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    FOK, "silly.test", NULL },
	{ "a@example.com, B <b@EXAMPLE.com>", FOK, "example.com", NULL },
	{ "group: a@example.com, b@example.com;", FOK, "example.com", NULL },
	{ "undisclosed:;, joe@example.com", FOK, "example.com", NULL },
	{ "a@example.com,,b@example.com,", FOK, "example.com", NULL },
	{ "Jöe <joe@bücher.example>", FOK, "xn--bcher-kva.example", NULL },
	{ "joe@example.com.", FOK, "example.com", NULL },
	{ "a@example.com, b@example.org", FMULTI, "example.com",
	    "example.org" },
	{ "team: a@one.example;, b@two.example", FMULTI, "one.example",
	    "two.example" },
	/* Unparseable: no mailbox, bad syntax, domain literals, junk. */
	{ "", FBAD, NULL, NULL },
	{ "   ", FBAD, NULL, NULL },
	{ "\"Test 1.1.5\"", FBAD, NULL, NULL },
	{ "Joe", FBAD, NULL, NULL },
	{ "Joe, a@example.com", FBAD, NULL, NULL },
	{ "undisclosed-recipients:;", FBAD, NULL, NULL },
	{ "joe@", FBAD, NULL, NULL },
	{ "@example.com", FBAD, NULL, NULL },
	{ "<>", FBAD, NULL, NULL },
	{ "<joe@example.com", FBAD, NULL, NULL },
	{ "joe@example.com>", FBAD, NULL, NULL },
	{ "joe@[192.0.2.1]", FBAD, NULL, NULL },
	{ "joe@example..com", FBAD, NULL, NULL },
	{ "joe@.example.com", FBAD, NULL, NULL },
	{ "joe@exa!mple.com", FBAD, NULL, NULL },
	{ "joe@example.com junk", FBAD, NULL, NULL },
	{ "joe@example . com", FBAD, NULL, NULL },
	{ "\"unterminated@example.com", FBAD, NULL, NULL },
	{ "(unterminated joe@example.com", FBAD, NULL, NULL },
	{ "joe@example.com)", FBAD, NULL, NULL },
	{ "grp: a@example.com", FBAD, NULL, NULL },
	{ "a: b: c@example.com;;", FBAD, NULL, NULL },
	{ "joe\\@example.com", FBAD, NULL, NULL },
	{ "joe@exam\x01ple.com", FBAD, NULL, NULL },
	{ "<a@example.com> <b@example.com>", FBAD, NULL, NULL },
	{ "a@b@example.com", FBAD, NULL, NULL },
};

static void
check_from(const char *value, size_t len, enum dmarc_from_status status,
    const char *d1, const char *d2)
{
	struct dmarc_from from;
	const char *values[1] = { value };
	size_t lens[1] = { len };

	if (dmarc_from_parse(&from, values, lens, 1) != status)
		fprintf(stderr, "From value \"%s\"\n", value);
	CHECK_INT(from.status, status);
	if (status == DMARC_FROM_UNPARSEABLE) {
		CHECK_INT(from.ndomains, 0);
		return;
	}
	CHECK_INT(from.ndomains, d2 != NULL ? 2 : 1);
	CHECK_STR(from.domains[0], d1);
	if (d2 != NULL)
		CHECK_STR(from.domains[1], d2);
}

static void
dmarc_from_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		const struct from_case *c = &from_cases[i];

		check_from(c->value, strlen(c->value), c->status, c->domain1,
		    c->domain2);
	}
}

static void
dmarc_from_field_counts(void)
{
	struct dmarc_from from;
	const char *values[2] = { "a@example.com", "b@example.com" };

	CHECK_INT(dmarc_from_parse(&from, values, NULL, 0), DMARC_FROM_MISSING);
	CHECK_INT(dmarc_from_parse(&from, values, NULL, 2),
	    DMARC_FROM_MULTIPLE_FIELDS);
	CHECK_INT(dmarc_from_parse(&from, values, NULL, 1), DMARC_FROM_OK);
	CHECK_STR(from.domains[0], "example.com");
}

static void
dmarc_from_bounds(void)
{
	char *big = malloc(DMARC_FROM_FIELD_MAX + 2);
	char text[64], many[1024] = "";
	struct dmarc_from from;
	const char *values[1] = { many };
	int i;

	/* The length ends the value; a NUL inside it is invalid. */
	check_from("a@example.com, b@example.org", 13, DMARC_FROM_OK,
	    "example.com", NULL);
	check_from("a@exa\0mple.com", 14, DMARC_FROM_UNPARSEABLE, NULL, NULL);

	/* More distinct domains than DMARC_FROM_DOMAINS_MAX: truncated. */
	for (i = 0; i < DMARC_FROM_DOMAINS_MAX + 2; i++) {
		snprintf(text, sizeof(text), "%sa@d%d.example", i ? "," : "",
		    i);
		strcat(many, text);
	}
	CHECK_INT(dmarc_from_parse(&from, values, NULL, 1),
	    DMARC_FROM_MULTIPLE_DOMAINS);
	CHECK_INT(from.ndomains, DMARC_FROM_DOMAINS_MAX);
	CHECK_INT(from.truncated, 1);

	/* A field over DMARC_FROM_FIELD_MAX bytes is not parsed. */
	memset(big, ' ', DMARC_FROM_FIELD_MAX + 1);
	memcpy(big, "a@example.com", 13);
	big[DMARC_FROM_FIELD_MAX + 1] = '\0';
	check_from(big, DMARC_FROM_FIELD_MAX, DMARC_FROM_OK, "example.com",
	    NULL);
	check_from(big, DMARC_FROM_FIELD_MAX + 1, DMARC_FROM_UNPARSEABLE, NULL,
	    NULL);

	/* Deeply nested comments are refused, not recursed into. */
	memset(big, '(', 10000);
	memset(big + 10000, ')', 10000);
	strcpy(big + 20000, "a@example.com");
	check_from(big, strlen(big), DMARC_FROM_UNPARSEABLE, NULL, NULL);
	strcpy(big, "((((()))))a@example.com");
	check_from(big, strlen(big), DMARC_FROM_OK, "example.com", NULL);
	free(big);
}

/* The from_domain rows of mail-dmarc-alignment-and-from.tsv. */
static void
mail_dmarc_from_row(char **cols, int ncols)
{
	const char *value = cols[1];
	struct dmarc_from from;
	const char *values[1];

	if (strcmp(cols[0], "from_domain") != 0)
		return;
	CHECK(ncols >= 4);
	if (ncols < 4)
		return;
	/* The vectors give some values with the field name in front. */
	if (strncmp(value, "From:", 5) == 0)
		value += 5;
	values[0] = value;
	dmarc_from_parse(&from, values, NULL, 1);
	if (cols[3][0] == '\0') {
		/* Out of DMARC scope there: several domains, or none here. */
		CHECK(from.status == DMARC_FROM_MULTIPLE_DOMAINS ||
		    from.status == DMARC_FROM_UNPARSEABLE);
		return;
	}
	CHECK_INT(from.status, DMARC_FROM_OK);
	CHECK_STR(from.domains[0], cols[3]);
}

static void
dmarc_from_mail_dmarc_vectors(void)
{
	CHECK_INT(read_tsv("mail-dmarc-alignment-and-from.tsv",
	    mail_dmarc_from_row), 19);
}

/*
 * Policy discovery through the DNS client.
 */

struct env {
	struct ev_loop	*loop;
	struct dns_ctx	*dns;
};

struct outcome {
	int			 calls;
	struct dmarc_result	 res;
};

static void
outcome_cb(void *arg, const struct dmarc_result *res)
{
	struct outcome *o = arg;

	o->calls++;
	o->res = *res;
}

static void
noop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

static void
run_until(struct ev_loop *loop, const int *calls, double limit)
{
	double end = ev_time() + limit;
	ev_timer tick;

	ev_timer_init(&tick, noop_cb, 0.05, 0.05);
	ev_timer_start(loop, &tick);
	while (*calls == 0 && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
}

static void
env_open(struct env *env, double timeout)
{
	struct dns_config config = { timeout, 1, 1000, 1 << 20 };

	env->loop = ev_loop_new(EVFLAG_AUTO);
	env->dns = dns_new(env->loop, &config);
}

/* A context in zone mode with one zone file holding text. */
static void
env_open_zone(struct env *env, const char *text)
{
	char path[128], err[256] = "";
	FILE *fp;

	env_open(env, 1.0);
	snprintf(path, sizeof(path), "%s/test.zone", tmpdir);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	CHECK_INT(dns_add_zone_file(env->dns, path, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	unlink(path);
}

static void
env_close(struct env *env)
{
	dns_free(env->dns);
	ev_loop_destroy(env->loop);
}

/* Run one check to its callback; o->calls records whether it ran. */
static void
run_check(struct env *env, const char *from, const struct dmarc_auth *auth,
    struct outcome *o)
{
	struct dmarc_check *chk;

	memset(o, 0, sizeof(*o));
	chk = dmarc_check_start(env->dns, psl, from, auth, outcome_cb, o);
	CHECK(chk != NULL);
	if (chk == NULL)
		return;
	CHECK_INT(o->calls, 0);
	run_until(env->loop, &o->calls, 5.0);
	CHECK_INT(o->calls, 1);
}

#define ZONE_HEAD(origin)						\
	"$ORIGIN " origin "\n$TTL 300\n"				\
	"@ IN SOA ns.example.org. admin.example.org. 1 3600 900 604800 60\n" \
	"@ IN NS ns.example.org.\n"

static const char discovery_zone[] =
    ZONE_HEAD("example.org.")
    "_dmarc IN TXT \"v=DMARC1; p=reject; sp=quarantine\"\n"
    "_dmarc IN TXT \"v=spf1 -all\"\n"
    "own IN A 192.0.2.1\n"
    "_dmarc.own IN TXT \"v=DMARC1; \" \"p=none; sp=reject\"\n"
    "_dmarc.multi IN TXT \"v=DMARC1; p=none\"\n"
    "_dmarc.multi IN TXT \"v=DMARC1; p=reject\"\n"
    "_dmarc.broken IN TXT \"v=DMARC1; p=bogus\"\n"
    "_dmarc.fallback IN TXT \"v=DMARC1; p=bogus; rua=mailto:r@example.org\"\n"
    "_dmarc.notdmarc IN TXT \"v=spf1 -all\"\n"
    "_dmarc.pct IN TXT \"v=DMARC1; p=reject; pct=30\"\n";

static void
dmarc_discovery_from_domain(void)
{
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;

	memset(&auth, 0, sizeof(auth));
	env_open_zone(&env, discovery_zone);

	/* The record of the author domain itself: p, split strings joined. */
	run_check(&env, "own.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK_INT(o.res.used_sp, 0);
	CHECK_STR(o.res.record_domain, "own.example.org");

	/* The org domain, whose _dmarc also contains an SPF record. */
	run_check(&env, "Example.ORG.", &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_INT(o.res.policy, DMARC_POLICY_REJECT);
	CHECK_STR(o.res.from_domain, "example.org");
	CHECK_STR(o.res.record_domain, "example.org");

	/* An aligned DKIM pass. */
	auth.ndkim = 1;
	auth.dkim[0].domain = "mail.example.org";
	auth.dkim[0].result = "pass";
	run_check(&env, "example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_PASS);
	CHECK_INT(o.res.dkim_aligned, 1);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	env_close(&env);
}

static void
dmarc_discovery_org_fallback(void)
{
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;
	uint32_t draw = 99;

	memset(&auth, 0, sizeof(auth));
	env_open_zone(&env, discovery_zone);

	/* No _dmarc at a.b.example.org: sp of the org record. */
	run_check(&env, "a.b.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_INT(o.res.used_sp, 1);
	CHECK_INT(o.res.policy, DMARC_POLICY_QUARANTINE);
	CHECK_STR(o.res.record_domain, "example.org");
	CHECK_STR(o.res.org_domain, "example.org");

	/* Only a non-DMARC record at the author domain: the same. */
	run_check(&env, "notdmarc.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_INT(o.res.used_sp, 1);
	CHECK_STR(o.res.record_domain, "example.org");

	/* pct at the author domain, with an injected draw. */
	auth.pct_draw = &draw;
	run_check(&env, "pct.example.org", &auth, &o);
	CHECK_INT(o.res.requested, DMARC_POLICY_REJECT);
	CHECK_INT(o.res.policy, DMARC_POLICY_QUARANTINE);
	CHECK_INT(o.res.sampled_out, 1);
	draw = 29;
	run_check(&env, "pct.example.org", &auth, &o);
	CHECK_INT(o.res.policy, DMARC_POLICY_REJECT);
	env_close(&env);
}

static void
dmarc_discovery_errors(void)
{
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;

	memset(&auth, 0, sizeof(auth));
	env_open_zone(&env, discovery_zone);

	run_check(&env, "multi.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_PERMERROR);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK_STR(o.res.reason, "several DMARC records");
	CHECK_STR(o.res.record_domain, "multi.example.org");

	/* An invalid record is found: no fallback to the org domain. */
	run_check(&env, "broken.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_PERMERROR);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK_STR(o.res.reason, "invalid DMARC record");

	run_check(&env, "fallback.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_INT(o.res.record.p_fallback, 1);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);

	/* No record anywhere. */
	run_check(&env, "sub.example.net", &auth, &o);
	CHECK_INT(o.res.status, DMARC_NONE);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK_STR(o.res.record_domain, "");
	CHECK_STR(o.res.reason, "no DMARC record");
	run_check(&env, "example.net", &auth, &o);
	CHECK_INT(o.res.status, DMARC_NONE);
	/* A public suffix is its own Organizational Domain. */
	run_check(&env, "co.uk", &auth, &o);
	CHECK_INT(o.res.status, DMARC_NONE);
	CHECK_STR(o.res.org_domain, "co.uk");
	env_close(&env);
}

static void
dmarc_discovery_bad_domains(void)
{
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;
	char name[300];
	int i;

	memset(&auth, 0, sizeof(auth));
	env_open_zone(&env, discovery_zone);
	memset(&o, 0, sizeof(o));
	CHECK(dmarc_check_start(env.dns, psl, "", &auth, outcome_cb, &o) ==
	    NULL);
	CHECK(dmarc_check_start(env.dns, psl, "exa mple.org", &auth,
	    outcome_cb, &o) == NULL);
	CHECK(dmarc_check_start(env.dns, psl, "[192.0.2.1]", &auth,
	    outcome_cb, &o) == NULL);
	CHECK(dmarc_check_start(env.dns, psl, "a..example.org", &auth,
	    outcome_cb, &o) == NULL);

	/* _dmarc.FROM would pass 253 bytes: the org domain is asked. */
	name[0] = '\0';
	for (i = 0; i < 4; i++)
		strcat(name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(name, "example.org");
	CHECK_INT(strlen(name), 251);
	run_check(&env, name, &auth, &o);
	CHECK_INT(o.res.status, DMARC_FAIL);
	CHECK_STR(o.res.record_domain, "example.org");
	CHECK_INT(o.res.used_sp, 1);
	env_close(&env);
}

static void
dmarc_discovery_cancel(void)
{
	struct env env;
	struct dmarc_auth auth;
	struct dmarc_check *chk;
	struct outcome o;
	char spf_domain[32] = "example.org";

	memset(&auth, 0, sizeof(auth));
	memset(&o, 0, sizeof(o));
	env_open_zone(&env, discovery_zone);
	chk = dmarc_check_start(env.dns, psl, "example.org", &auth,
	    outcome_cb, &o);
	CHECK(chk != NULL);
	dmarc_cancel(chk);
	run_until(env.loop, &o.calls, 0.3);
	CHECK_INT(o.calls, 0);

	/* auth is copied at the start: the caller's buffers may change. */
	auth.spf_result = "pass";
	auth.spf_domain = spf_domain;
	chk = dmarc_check_start(env.dns, psl, "example.org", &auth,
	    outcome_cb, &o);
	strcpy(spf_domain, "evil.example");
	auth.spf_result = "fail";
	run_until(env.loop, &o.calls, 5.0);
	CHECK_INT(o.calls, 1);
	CHECK_INT(o.res.status, DMARC_PASS);
	CHECK_INT(o.res.spf_aligned, 1);
	env_close(&env);
}

/*
 * The evaluation cases of stalwart-mail-auth-dmarc.tsv (transcribed: their
 * columns are prose), each with its record in a zone of its own.
 */
struct stalwart_case {
	int			 n;
	const char		*record;
	const char		*from;
	const char		*spf_result;
	const char		*spf_domain;
	const char		*dkim_result;
	const char		*dkim_domain;
	enum dmarc_status	 status;
	int			 spf_aligned;
	int			 dkim_aligned;
	enum dmarc_policy	 requested;
};

static const struct stalwart_case stalwart_cases[] = {
	{ 1, "v=DMARC1; p=reject; aspf=s; adkim=s; fo=1; "
	    "rua=mailto:d@example.org", "example.org", "pass", "example.org",
	    "pass", "example.org", DMARC_PASS, 1, 1, PR },
	{ 2, "v=DMARC1; p=reject; aspf=r; adkim=r; fo=1; "
	    "rua=mailto:d@example.org", "example.org", "pass",
	    "subdomain.example.org", "pass", "subdomain.example.org",
	    DMARC_PASS, 1, 1, PR },
	{ 3, "v=DMARC1; p=reject; aspf=s; adkim=s; fo=1; "
	    "rua=mailto:d@example.org", "example.org", "pass",
	    "subdomain.example.org", "pass", "subdomain.example.org",
	    DMARC_FAIL, 0, 0, PR },
	{ 4, "v=DMARC1; p=reject; aspf=s; adkim=s; fo=1; "
	    "rua=mailto:d@example.org", "example.org", "fail", "example.org",
	    "fail", "example.org", DMARC_FAIL, 0, 0, PR },
	{ 5, "v=DMARC1; p=reject; sp=quarantine; np=none", "example.org",
	    "pass", NULL, NULL, NULL, DMARC_FAIL, 0, 0, PR },
	{ 6, "v=DMARC1; p=reject; sp=quarantine; np=none", "sub.example.org",
	    "pass", NULL, NULL, NULL, DMARC_FAIL, 0, 0, PQ },
	/* DMARCbis would apply np=none; RFC 7489 applies sp. */
	{ 7, "v=DMARC1; p=reject; sp=quarantine; np=none",
	    "ghost.example.org", "pass", NULL, NULL, NULL, DMARC_FAIL, 0, 0,
	    PQ },
	{ 8, "v=DMARC1; rua=mailto:d@example.org", "example.org", "pass",
	    NULL, NULL, NULL, DMARC_FAIL, 0, 0, PN },
	{ 9, NULL, "nothing.example", "pass", NULL, NULL, NULL, DMARC_NONE,
	    0, 0, PN },
};

static void
run_stalwart_case(const struct stalwart_case *c)
{
	char zone[1024];
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;
	uint32_t draw = 0;

	snprintf(zone, sizeof(zone), "%s%s%s%s", ZONE_HEAD("example.org.")
	    "sub IN A 192.0.2.1\n", c->record ? "_dmarc IN TXT \"" : "",
	    c->record ? c->record : "", c->record ? "\"\n" : "");
	env_open_zone(&env, zone);
	memset(&auth, 0, sizeof(auth));
	auth.spf_result = c->spf_result;
	auth.spf_domain = c->spf_domain;
	auth.ndkim = c->dkim_result != NULL;
	auth.dkim[0].result = c->dkim_result;
	auth.dkim[0].domain = c->dkim_domain;
	auth.pct_draw = &draw;
	run_check(&env, c->from, &auth, &o);
	if (o.res.status != c->status || o.res.requested != c->requested)
		fprintf(stderr, "stalwart case %d\n", c->n);
	CHECK_INT(o.res.status, c->status);
	CHECK_INT(o.res.spf_aligned, c->spf_aligned);
	CHECK_INT(o.res.dkim_aligned, c->dkim_aligned);
	CHECK_INT(o.res.requested, c->requested);
	CHECK_INT(o.res.policy, c->status == DMARC_FAIL ? c->requested : PN);
	env_close(&env);
}

static void
dmarc_stalwart_vectors(void)
{
	size_t i;

	for (i = 0; i < sizeof(stalwart_cases) / sizeof(stalwart_cases[0]);
	    i++)
		run_stalwart_case(&stalwart_cases[i]);
}

/*
 * DNS failures, from a mock resolver.
 */

enum mock_mode {
	MOCK_SERVFAIL,		/* SERVFAIL, except NXDOMAIN for MOCK_NX_NAME */
	MOCK_SILENT,		/* never answer */
};

#define MOCK_NX_NAME	"_dmarc.nx.example.org."

struct mock {
	pid_t	 pid;
	char	 addr[32];
};

static void
mock_answer(int fd)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	uint8_t buf[4096], *wire = NULL;
	ldns_pkt *query = NULL, *reply;
	ldns_rr *soa = NULL;
	const ldns_rr *q;
	char *qname;
	size_t wlen;
	ssize_t n;

	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
	if (n <= 0 || ldns_wire2pkt(&query, buf, (size_t)n) != LDNS_STATUS_OK)
		return;
	q = ldns_rr_list_rr(ldns_pkt_question(query), 0);
	reply = ldns_pkt_new();
	ldns_pkt_set_id(reply, ldns_pkt_id(query));
	ldns_pkt_set_qr(reply, true);
	ldns_pkt_set_ra(reply, true);
	ldns_pkt_set_rcode(reply, LDNS_RCODE_SERVFAIL);
	if (q != NULL) {
		ldns_pkt_push_rr(reply, LDNS_SECTION_QUESTION, ldns_rr_clone(q));
		qname = ldns_rdf2str(ldns_rr_owner(q));
		if (qname != NULL && strcasecmp(qname, MOCK_NX_NAME) == 0 &&
		    ldns_rr_new_frm_str(&soa, "example.org. 60 IN SOA ns. "
		    "admin. 1 3600 900 604800 60", 0, NULL, NULL) ==
		    LDNS_STATUS_OK) {
			ldns_pkt_set_rcode(reply, LDNS_RCODE_NXDOMAIN);
			ldns_pkt_push_rr(reply, LDNS_SECTION_AUTHORITY, soa);
		}
		free(qname);
	}
	if (ldns_pkt2wire(&wire, reply, &wlen) == LDNS_STATUS_OK)
		sendto(fd, wire, wlen, 0, (struct sockaddr *)&peer, plen);
	free(wire);
	ldns_pkt_free(reply);
	ldns_pkt_free(query);
}

static void
mock_start(struct mock *m, enum mock_mode mode)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("mock resolver on 127.0.0.1");
		exit(1);
	}
	snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d",
	    ntohs(sin.sin_port));
	if ((m->pid = fork()) == 0) {
		for (;;) {
			if (mode == MOCK_SILENT)
				pause();
			else
				mock_answer(fd);
		}
	}
	close(fd);
}

static void
mock_stop(struct mock *m)
{
	kill(m->pid, SIGKILL);
	waitpid(m->pid, NULL, 0);
}

static void
dmarc_dns_servfail_temperror(void)
{
	struct mock m;
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;

	memset(&auth, 0, sizeof(auth));
	auth.spf_result = "pass";
	auth.spf_domain = "example.org";
	mock_start(&m, MOCK_SERVFAIL);
	env_open(&env, 0.5);
	CHECK_INT(dns_add_resolver(env.dns, m.addr), 0);

	/* Even with an aligned pass, a failed lookup is a temperror. */
	run_check(&env, "example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_TEMPERROR);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK_STR(o.res.reason, "DMARC record lookup failed");

	/* NXDOMAIN at the author domain, then SERVFAIL at the org domain. */
	run_check(&env, "nx.example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_TEMPERROR);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	CHECK(dns_queries_sent(env.dns) >= 3);
	env_close(&env);
	mock_stop(&m);
}

static void
dmarc_dns_timeout_temperror(void)
{
	struct mock m;
	struct env env;
	struct dmarc_auth auth;
	struct outcome o;

	memset(&auth, 0, sizeof(auth));
	mock_start(&m, MOCK_SILENT);
	env_open(&env, 0.2);
	CHECK_INT(dns_add_resolver(env.dns, m.addr), 0);
	run_check(&env, "example.org", &auth, &o);
	CHECK_INT(o.res.status, DMARC_TEMPERROR);
	CHECK_INT(o.res.policy, DMARC_POLICY_NONE);
	env_close(&env);
	mock_stop(&m);
}

int
main(void)
{
	char err[256] = "";

	log_init("test_dmarc", LOG_LVL_WARN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dmarc.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((psl = psl_load(NULL, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "loading the public suffix list failed: %s "
		    "(install the publicsuffix package)\n", err);
		return 1;
	}

	RUN(dmarc_record_table);
	RUN(dmarc_record_not_terminated);
	RUN(dmarc_record_opendmarc_vectors);
	RUN(dmarc_align_opendmarc_vectors);
	RUN(dmarc_align_table);
	RUN(dmarc_evaluate_alignment);
	RUN(dmarc_evaluate_dkim_limit);
	RUN(dmarc_evaluate_pct_draws);
	RUN(dmarc_evaluate_pct_random);
	RUN(dmarc_evaluate_sp_choice);
	RUN(dmarc_strings_and_order);
	RUN(dmarc_from_table);
	RUN(dmarc_from_field_counts);
	RUN(dmarc_from_bounds);
	RUN(dmarc_from_mail_dmarc_vectors);
	RUN(dmarc_discovery_from_domain);
	RUN(dmarc_discovery_org_fallback);
	RUN(dmarc_discovery_errors);
	RUN(dmarc_discovery_bad_domains);
	RUN(dmarc_discovery_cancel);
	RUN(dmarc_stalwart_vectors);
	RUN(dmarc_dns_servfail_temperror);
	RUN(dmarc_dns_timeout_temperror);

	psl_free(psl);
	rmdir(tmpdir);
	CHECK_SUMMARY();
}
