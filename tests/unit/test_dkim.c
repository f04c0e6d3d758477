/*
 * Tests of the streaming DKIM verifier (router/dkim.c).
 *
 * Tables cover the tag-list and signature parsers, body and header
 * canonicalization and key records.  The vector tests verify the
 * messages in tests/vectors/dkim/ (see its README.md): messages signed
 * by python3-dkim and OpenDKIM, dkimpy's and Stalwart's data, and the
 * Mail::DKIM corpus with results expected under RFC 6376 and RFC 8301.
 * Each message is fed whole and in random chunk sizes, with key records
 * served by the DNS client in zone mode from a root zone this program
 * writes.  DNS failures use a mock resolver: a child process that binds
 * 127.0.0.1 and answers every query with SERVFAIL or not at all.  It is
 * a mock, not a DNS server.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>
#include <openssl/evp.h>

#include "check.h"
#include "dkim.h"
#include "dns.h"
#include "log.h"
#include "msghdr.h"

#define VECTORS		"tests/vectors/dkim"
#define STALWART_NOW	((time_t)1667843664)	/* upstream's pinned clock */

static char tmpdir[] = "/tmp/test_dkim.XXXXXX";

/*
 * Files and messages.
 */

/* Read a whole file; exits if it cannot be read.  Free the result. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *data;
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		perror(path);
		exit(1);
	}
	data = malloc((size_t)n + 1);
	if (data == NULL || fread(data, 1, (size_t)n, fp) != (size_t)n) {
		perror(path);
		exit(1);
	}
	data[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return data;
}

/* Convert bare LF line ends to CRLF.  Free the result. */
static char *
to_crlf(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* Replace the first occurrence of what in msg (same length only). */
static void
patch(char *msg, const char *what, const char *with)
{
	char *p = strstr(msg, what);

	if (p == NULL || strlen(what) != strlen(with)) {
		fprintf(stderr, "patch: \"%s\" not found\n", what);
		exit(1);
	}
	memcpy(p, with, strlen(with));
}

/*
 * Insert text before the first occurrence of where in msg (at the end when
 * where is NULL).  Free the result.
 */
static char *
insert(const char *msg, size_t len, const char *where, const char *text,
    size_t *outlen)
{
	const char *p = where != NULL ? strstr(msg, where) : msg + len;
	size_t at, n = strlen(text);
	char *out;

	if (p == NULL) {
		fprintf(stderr, "insert: \"%s\" not found\n", where);
		exit(1);
	}
	at = (size_t)(p - msg);
	out = malloc(len + n + 1);
	memcpy(out, msg, at);
	memcpy(out + at, text, n);
	memcpy(out + at + n, msg + at, len - at + 1);
	*outlen = len + n;
	return out;
}

/*
 * A root zone in zone mode: every name not in it is NXDOMAIN.
 */

struct zone {
	FILE	*fp;
	char	 path[128];
};

static void
zone_open(struct zone *z, const char *name)
{
	snprintf(z->path, sizeof(z->path), "%s/%s.zone", tmpdir, name);
	if ((z->fp = fopen(z->path, "w")) == NULL) {
		perror(z->path);
		exit(1);
	}
	fputs("$TTL 300\n. IN SOA ns.invalid. admin.invalid. 1 3600 900 "
	    "604800 300\n", z->fp);
}

/* Add a TXT record, the value split into strings of 255 bytes at most. */
static void
zone_txt(struct zone *z, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	size_t i;
	unsigned char c;

	fprintf(z->fp, "%.*s%s IN TXT", (int)nlen, name,
	    nlen > 0 && name[nlen - 1] == '.' ? "" : ".");
	if (vlen == 0)
		fputs(" \"\"", z->fp);
	for (i = 0; i < vlen; i++) {
		if (i % 255 == 0)
			fputs(i == 0 ? " \"" : "\" \"", z->fp);
		c = (unsigned char)value[i];
		if (c == '"' || c == '\\')
			fprintf(z->fp, "\\%c", c);
		else if (c < 32 || c > 126)
			fprintf(z->fp, "\\%03u", c);
		else
			fputc(c, z->fp);
	}
	fputs(vlen > 0 ? "\"\n" : "\n", z->fp);
}

/*
 * Add "NAME<sep>VALUE" lines of a file: sep is a TAB or any white space.
 * Lines starting with "#" and values "NXDOMAIN" or "~~...~~" (DNS errors
 * in Mail::DKIM's format) add nothing; the value "" is an empty string.
 */
static void
zone_add_lines(struct zone *z, const char *text, size_t len)
{
	const char *line = text, *end = text + len, *eol, *sep, *v;

	for (; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			eol = end;
		if (line == eol || *line == '#')
			continue;
		for (sep = line; sep < eol && !isspace((unsigned char)*sep);)
			sep++;
		for (v = sep; v < eol && isspace((unsigned char)*v);)
			v++;
		if (sep == eol || strncmp(v, "NXDOMAIN", 8) == 0 ||
		    strncmp(v, "~~", 2) == 0)
			continue;
		if (eol - v >= 2 && v[0] == '"' && v[1] == '"')
			zone_txt(z, line, (size_t)(sep - line), "", 0);
		else
			zone_txt(z, line, (size_t)(sep - line), v,
			    (size_t)(eol - v - (eol[-1] == '\r')));
	}
}

static void
zone_add_file(struct zone *z, const char *path)
{
	size_t len;
	char *text = read_file(path, &len);

	zone_add_lines(z, text, len);
	free(text);
}

/*
 * Test environment: a loop and a DNS client in zone mode or on a mock.
 */

struct env {
	struct ev_loop	*loop;
	struct dns_ctx	*dns;
};

static void
env_open(struct env *env, double timeout)
{
	struct dns_config config = { timeout, 1, 1000, 1 << 20 };

	env->loop = ev_loop_new(EVFLAG_AUTO);
	env->dns = dns_new(env->loop, &config);
}

static void
env_open_zone(struct env *env, struct zone *z)
{
	char err[256] = "";

	fclose(z->fp);
	env_open(env, 2.0);
	if (dns_add_zone_file(env->dns, z->path, err, sizeof(err)) != 0) {
		fprintf(stderr, "zone %s: %s\n", z->path, err);
		exit(1);
	}
}

static void
env_close(struct env *env)
{
	dns_free(env->dns);
	ev_loop_destroy(env->loop);
}

/*
 * Running the verifier.
 */

struct outcome {
	int			 calls;
	size_t			 count;
	struct dkim_sig_result	 res[DKIM_RESULTS_MAX];
	struct dkim_verifier	*free_in_cb;	/* freed by the callback */
};

static void
outcome_cb(void *arg, const struct dkim_sig_result *results, size_t count)
{
	struct outcome *o = arg;

	o->calls++;
	o->count = count;
	memcpy(o->res, results, count * sizeof(*results));
	if (o->free_in_cb != NULL)
		dkim_verifier_free(o->free_in_cb);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until the outcome has a call, for 15 seconds at most. */
static void
wait_outcome(struct env *env, struct outcome *o)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, 15., 0.);
	ev_timer_start(env->loop, &guard);
	while (o->calls == 0 && ev_is_active(&guard))
		ev_run(env->loop, EVRUN_ONCE);
	ev_timer_stop(env->loop, &guard);
}

static uint32_t
rand_next(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

/*
 * Feed msg to a new verifier in pieces: whole when seed is 0, otherwise
 * in random sizes from 1 byte to a few kilobytes.  Checks that the
 * callback comes from the loop, not from finish().
 */
static void
verify(struct env *env, const char *msg, size_t len, time_t now,
    uint32_t seed, struct outcome *o)
{
	struct dkim_options opts = { now, 0 };
	struct dkim_verifier *v = dkim_verifier_new(env->dns, env->loop,
	    &opts);
	size_t pos = 0, n;

	memset(o, 0, sizeof(*o));
	while (pos < len) {
		n = len - pos;
		if (seed != 0) {
			n = rand_next(&seed) % 4 == 0 ?
			    1 + rand_next(&seed) % 7 :
			    1 + rand_next(&seed) % 3000;
			if (n > len - pos)
				n = len - pos;
		}
		dkim_verifier_update(v, msg + pos, n);
		pos += n;
	}
	dkim_verifier_finish(v, outcome_cb, o);
	CHECK_INT(o->calls, 0);
	wait_outcome(env, o);
	CHECK_INT(o->calls, 1);
	dkim_verifier_free(v);
}

static uint32_t
seed_of(const char *label)
{
	uint32_t h = 2166136261u;

	for (; *label != '\0'; label++)
		h = (h ^ (unsigned char)*label) * 16777619u;
	return h != 0 ? h : 1;
}

static void
print_outcome(const char *label, const struct outcome *o)
{
	size_t i;

	for (i = 0; i < o->count; i++)
		fprintf(stderr, "  %s: sig %zu d=%s s=%s a=%s: %s (%s)\n",
		    label, i, o->res[i].domain, o->res[i].selector,
		    dkim_alg_str(o->res[i].alg),
		    dkim_result_str(o->res[i].result), o->res[i].reason);
}

/* Join the results (",") or the reasons ("|") of an outcome into out. */
static void
join_outcome(const struct outcome *o, int reasons, char *out, size_t outsz)
{
	size_t i, n = 0;

	const char *sep = reasons ? "|" : ",", *text;

	out[0] = '\0';
	for (i = 0; i < o->count && n < outsz; i++) {
		if (reasons)
			text = o->res[i].reason;
		else
			text = dkim_result_str(o->res[i].result);
		n += (size_t)snprintf(out + n, outsz - n, "%s%s",
		    i == 0 ? "" : sep, text);
	}
}

/*
 * Verify msg whole and in random chunks.  expected lists the result of
 * each signature in header order, comma-separated ("" for none), and
 * reasons, unless NULL, their reasons separated by "|".
 */
static void
check_vector(struct env *env, const char *label, const char *msg,
    size_t len, time_t now, const char *expected, const char *reasons)
{
	char got[512], why[2048];
	struct outcome o;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		verify(env, msg, len, now, pass ? seed_of(label) : 0, &o);
		join_outcome(&o, 0, got, sizeof(got));
		join_outcome(&o, 1, why, sizeof(why));
		if (strcmp(got, expected) != 0 ||
		    (reasons != NULL && strcmp(why, reasons) != 0)) {
			fprintf(stderr, "%s (%s): got \"%s\", want \"%s\"\n",
			    label, pass ? "chunked" : "whole", got, expected);
			print_outcome(label, &o);
		}
		CHECK_STR(got, expected);
		if (reasons != NULL)
			CHECK_STR(why, reasons);
	}
}

/*
 * Parser tables.
 */

static void
taglist_parse(void)
{
	static const struct {
		const char	*text;
		int		 ok;
		size_t		 count;
	} cases[] = {
		{ "", 1, 0 },
		{ "a=1", 1, 1 },
		{ "a=1;", 1, 1 },
		{ " a = 1 ; b=2 ;\r\n\tc=3 4 ; ", 1, 3 },
		{ "a=", 1, 1 },
		{ "a_b9=x", 1, 1 },
		{ "a=1;;b=2", 0, 0 },
		{ ";", 0, 0 },
		{ "a", 0, 0 },
		{ "a b=1", 0, 0 },
		{ "9a=1", 0, 0 },
		{ "_a=1", 0, 0 },
		{ "a=1; a=2", 0, 0 },
		{ "a=\x01", 0, 0 },
		{ "a=caf\xc3\xa9", 0, 0 },
		{ "=1", 0, 0 },
	};
	struct dkim_taglist tl;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		r = dkim_taglist_parse(&tl, cases[i].text,
		    strlen(cases[i].text));
		if ((r == 0) != cases[i].ok)
			fprintf(stderr, "tag-list \"%s\"\n", cases[i].text);
		CHECK_INT(r == 0, cases[i].ok);
		if (r == 0)
			CHECK_INT(tl.count, cases[i].count);
	}
}

static void
taglist_values(void)
{
	const char *text = " v=1; b = ab\r\n cd ;c=3 4\t";
	const struct dkim_tag *t;
	struct dkim_taglist tl;

	CHECK_INT(dkim_taglist_parse(&tl, text, strlen(text)), 0);
	t = dkim_taglist_get(&tl, "b");
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK_INT(t->value_len, 7);
	CHECK(strncmp(t->value, "ab\r\n cd", 7) == 0);
	CHECK_INT(t->raw_start, 9);
	CHECK(text[t->raw_end] == ';');
	t = dkim_taglist_get(&tl, "c");
	CHECK(t != NULL);
	if (t != NULL)
		CHECK_INT(t->value_len, 3);
	CHECK(dkim_taglist_get(&tl, "V") == NULL);
	/* 64 tags are accepted, 65 are not. */
	{
		char many[65 * 8];
		size_t i, n = 0;

		for (i = 0; i < 65; i++)
			n += (size_t)snprintf(many + n, sizeof(many) - n,
			    "t%zu=1;", i);
		CHECK_INT(dkim_taglist_parse(&tl, many, n), -1);
		CHECK_INT(dkim_taglist_parse(&tl, many, n - 6), 0);
		CHECK_INT(tl.count, DKIM_TAGS_MAX);
	}
}

#define SIG_B	"b=dGVzdA==; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"

static void
sig_parse_valid(void)
{
	const char *text = "v=1; a=rsa-sha256; c=relaxed/relaxed; "
	    "d=Example.ORG; s=sel.2024; h=From : To:subject; "
	    "i=al=69ce@Mail.example.org; l=123; t=1700000000; x=1700000001; "
	    "q=dns/txt; z=From:x; future=ignored; " SIG_B;
	struct dkim_sig sig;
	const char *reason = NULL;

	CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, text, strlen(text),
	    &reason), 0);
	CHECK(sig.alg == DKIM_ALG_RSA_SHA256);
	CHECK(sig.hcanon == DKIM_CANON_RELAXED);
	CHECK(sig.bcanon == DKIM_CANON_RELAXED);
	CHECK_STR(sig.domain, "example.org");
	CHECK_STR(sig.selector, "sel.2024");
	CHECK_STR(sig.identity, "alice@Mail.example.org");
	CHECK_INT(sig.h_count, 3);
	CHECK(strncmp(text + sig.h[1].off, "To", sig.h[1].len) == 0);
	CHECK_INT(sig.h[2].len, 7);
	CHECK(sig.has_l);
	CHECK_INT(sig.l, 123);
	CHECK(sig.has_t);
	CHECK_INT(sig.t, 1700000000);
	CHECK(sig.has_x);
	CHECK_INT(sig.x, 1700000001);
	CHECK_INT(sig.b_len, 4);
	CHECK(memcmp(sig.b, "test", 4) == 0);
	CHECK_STR(sig.b_prefix, "dGVzdA==");
	CHECK_INT(sig.bh_len, 32);
	CHECK(strncmp(text + sig.b_raw_start, "dGVzdA==", 8) == 0);
	CHECK(text[sig.b_raw_end] == ';');

	/* Defaults: c=simple/simple, i=@d, body canonicalization simple. */
	text = "v=1; a=ed25519-sha256; d=example.org; s=s; h=from; " SIG_B;
	CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, text, strlen(text),
	    &reason), 0);
	CHECK(sig.alg == DKIM_ALG_ED25519_SHA256);
	CHECK(sig.hcanon == DKIM_CANON_SIMPLE);
	CHECK(sig.bcanon == DKIM_CANON_SIMPLE);
	CHECK_STR(sig.identity, "@example.org");
	CHECK(!sig.has_l);
	CHECK(!sig.has_t);
	CHECK(!sig.has_x);
	text = "v=1; a=rsa-sha256; c=relaxed; d=example.org; s=s; h=from; "
	    SIG_B;
	CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, text, strlen(text),
	    &reason), 0);
	CHECK(sig.hcanon == DKIM_CANON_RELAXED);
	CHECK(sig.bcanon == DKIM_CANON_SIMPLE);
}

static void
sig_parse_invalid(void)
{
	static const struct {
		const char	*text;
		const char	*reason;
	} cases[] = {
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; b=dGVzdA==",
		    "signature missing required tag" },
		{ "a=rsa-sha256; d=e.org; s=s; h=from; " SIG_B,
		    "signature missing required tag" },
		{ "v=2; a=rsa-sha256; d=e.org; s=s; h=from; " SIG_B,
		    "incompatible signature version" },
		{ "v=1; a=rsa-md5; d=e.org; s=s; h=from; " SIG_B,
		    "unknown signature algorithm" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=to; " SIG_B,
		    "From field not signed" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from::to; " SIG_B,
		    "h= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; c=future; " SIG_B,
		    "c= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; c=simple/x; " SIG_B,
		    "c= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; q=http; " SIG_B,
		    "unsupported query method" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; l=-1; " SIG_B,
		    "l= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; t=12a; " SIG_B,
		    "t= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; t=1234567890123; "
		    SIG_B, "t= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; t=5; x=5; " SIG_B,
		    "x= is not later than t=" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; i=@other.org; "
		    SIG_B, "i= domain is not d= or a subdomain of it" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; i=@xe.org; "
		    SIG_B, "i= domain is not d= or a subdomain of it" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; i=nobody; " SIG_B,
		    "i= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; i=a=0A@e.org; "
		    SIG_B, "i= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e..org; s=s; h=from; " SIG_B,
		    "signature syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s/x; h=from; " SIG_B,
		    "signature syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; b=!!!; "
		    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		    "b= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; b=dGVzdA==; bh=a",
		    "bh= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; s=s; h=from; b=; "
		    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		    "b= tag syntax error" },
		{ "v=1; a=rsa-sha256; d=e.org; d=e.org; s=s; h=from; " SIG_B,
		    "signature syntax error" },
		{ "garbage", "signature syntax error" },
	};
	struct dkim_sig sig;
	const char *reason;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		reason = NULL;
		CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, cases[i].text,
		    strlen(cases[i].text), &reason), -1);
		if (reason == NULL || strcmp(reason, cases[i].reason) != 0)
			fprintf(stderr, "signature \"%s\"\n", cases[i].text);
		CHECK_STR(reason, cases[i].reason);
	}
}

/* A DKIM-Signature with too many h= names, and the names kept on error. */
static void
sig_parse_limits(void)
{
	char text[4096];
	struct dkim_sig sig;
	const char *reason;
	size_t i, n;

	n = (size_t)snprintf(text, sizeof(text),
	    "v=1; a=rsa-sha256; d=e.org; s=s; " SIG_B " h=from");
	for (i = 0; i < DKIM_H_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ":x%zu", i);
	CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, text, n, &reason), -1);
	CHECK_STR(reason, "h= tag lists too many fields");
	CHECK_STR(sig.domain, "e.org");
	CHECK_STR(sig.selector, "s");
	CHECK(sig.alg == DKIM_ALG_RSA_SHA256);
}

static void
sig_check_time(void)
{
	struct dkim_sig sig;
	const char *reason;

	memset(&sig, 0, sizeof(sig));
	sig.has_t = 1;
	sig.t = 1000000;
	CHECK_INT(dkim_sig_check_time(&sig, 1000000 - DKIM_CLOCK_SKEW,
	    &reason), 0);
	CHECK_INT(dkim_sig_check_time(&sig, 1000000 - DKIM_CLOCK_SKEW - 1,
	    &reason), -1);
	CHECK_STR(reason, "signature timestamp in the future");
	sig.has_x = 1;
	sig.x = 2000000;
	CHECK_INT(dkim_sig_check_time(&sig, 2000000 + DKIM_CLOCK_SKEW,
	    &reason), 0);
	CHECK_INT(dkim_sig_check_time(&sig, 2000000 + DKIM_CLOCK_SKEW + 1,
	    &reason), -1);
	CHECK_STR(reason, "signature expired");
}

/*
 * Canonicalization.
 */

static void
sha256(const void *p, size_t n, unsigned char out[DKIM_HASH_LEN])
{
	unsigned int len;

	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* Body hash of in, fed whole and one byte at a time, against want. */
static void
check_body(enum dkim_canon canon, const char *in, const char *want,
    int has_limit, uint64_t limit)
{
	struct dkim_body_hash b;
	unsigned char expect[DKIM_HASH_LEN];
	size_t i, len = strlen(in), want_len = strlen(want);
	int pass;

	sha256(want, has_limit && limit < want_len ? (size_t)limit : want_len,
	    expect);
	for (pass = 0; pass < 2; pass++) {
		dkim_body_hash_init(&b, canon, has_limit, limit);
		if (pass == 0)
			dkim_body_hash_update(&b, in, len);
		else
			for (i = 0; i < len; i++)
				dkim_body_hash_update(&b, in + i, 1);
		dkim_body_hash_final(&b);
		if (memcmp(b.digest, expect, DKIM_HASH_LEN) != 0)
			fprintf(stderr, "body %s \"%s\"\n",
			    canon == DKIM_CANON_SIMPLE ? "simple" : "relaxed",
			    in);
		CHECK(memcmp(b.digest, expect, DKIM_HASH_LEN) == 0);
		CHECK_INT(b.canon_len, want_len);
	}
}

static void
canon_body(void)
{
	static const struct {
		const char	*in, *simple, *relaxed;
	} cases[] = {
		{ "", "\r\n", "" },
		{ "\r\n", "\r\n", "" },
		{ "\r\n\r\n\r\n", "\r\n", "" },
		{ "a\r\n", "a\r\n", "a\r\n" },
		{ "a", "a\r\n", "a\r\n" },
		{ "a\r\n\r\n", "a\r\n", "a\r\n" },
		{ "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
		{ " a  b\t\r\n", " a  b\t\r\n", " a b\r\n" },
		{ "a \r\n \t\r\n", "a \r\n \t\r\n", "a\r\n" },
		{ "a\r\n \r\nb", "a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n" },
		{ "\t\r\n", "\t\r\n", "" },
		{ "a\rb\r\n", "a\rb\r\n", "a\rb\r\n" },
		{ "a\r", "a\r\r\n", "a\r\r\n" },
		{ "a\nb\r\n", "a\nb\r\n", "a\nb\r\n" },
		/* RFC 6376 section 3.4.5. */
		{ " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n",
		    " C\r\nD E\r\n" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		check_body(DKIM_CANON_SIMPLE, cases[i].in, cases[i].simple, 0,
		    0);
		check_body(DKIM_CANON_RELAXED, cases[i].in, cases[i].relaxed,
		    0, 0);
	}
}

static void
canon_body_limit(void)
{
	check_body(DKIM_CANON_SIMPLE, "abc\r\ndef\r\n", "abc\r\ndef\r\n", 1,
	    5);
	check_body(DKIM_CANON_RELAXED, "a  b\r\n\r\n", "a b\r\n", 1, 0);
	check_body(DKIM_CANON_SIMPLE, "", "\r\n", 1, 2);
	/* Held-back empty lines count only once text follows them. */
	check_body(DKIM_CANON_SIMPLE, "a\r\n\r\n\r\n", "a\r\n", 1, 3);
}

static void
check_header(enum dkim_canon canon, const char *in, size_t skip_off,
    size_t skip_len, int last, const char *want)
{
	struct dkim_hash h;
	unsigned char got[DKIM_HASH_LEN], expect[DKIM_HASH_LEN];

	dkim_hash_init(&h);
	dkim_canon_header(&h, canon, in, strlen(in), skip_off, skip_len, last);
	dkim_hash_final(&h, got);
	sha256(want, strlen(want), expect);
	if (memcmp(got, expect, DKIM_HASH_LEN) != 0)
		fprintf(stderr, "header \"%s\"\n", in);
	CHECK(memcmp(got, expect, DKIM_HASH_LEN) == 0);
}

static void
canon_header(void)
{
	check_header(DKIM_CANON_SIMPLE, "Subject: a  b\r\n", 0, 0, 0,
	    "Subject: a  b\r\n");
	check_header(DKIM_CANON_SIMPLE, "Subject: a  b\r\n", 0, 0, 1,
	    "Subject: a  b");
	check_header(DKIM_CANON_RELAXED, "SubJect : a  b \t\r\n", 0, 0, 0,
	    "subject:a b\r\n");
	check_header(DKIM_CANON_RELAXED, "X-A:\r\n\tfolded\r\n  value \r\n",
	    0, 0, 0, "x-a:folded value\r\n");
	check_header(DKIM_CANON_RELAXED, "X-Empty:   \r\n", 0, 0, 0,
	    "x-empty:\r\n");
	check_header(DKIM_CANON_RELAXED, "X-B: b=abc; c=d\r\n", 7, 3, 1,
	    "x-b:b=; c=d");
	check_header(DKIM_CANON_SIMPLE, "X-B: b=a\r\n bc; c=d\r\n", 7, 6, 1,
	    "X-B: b=; c=d");
	/* RFC 6376 section 3.4.5. */
	check_header(DKIM_CANON_RELAXED, "A: X\r\n", 0, 0, 0, "a:X\r\n");
	check_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", 0, 0, 0,
	    "b:Y Z\r\n");
}

/*
 * Key records.
 */

/* The RFC 8463 Appendix A keys (dkimpy's test.txt and brisbane). */
#define RSA1024_P \
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6" \
    "Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/" \
    "e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G" \
    "+2kryOTIKT+l/K4w3QIDAQAB"
#define ED_P	"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
/* Mail::DKIM's 512-bit test key. */
#define RSA512_P \
    "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALgSoqXVSEmfcIsOzw7oRuCCOwsmtX/S" \
    "JnTWxYyj2leFxfS/AVJ+dYfY+hXqMsT7l+MZvvh/R1WzN4MO/kI/7XsCAwEAAQ=="

static void
key_records(void)
{
	static const struct {
		const char	*alg;	/* signature a= */
		const char	*text;
		enum dkim_result result;
		const char	*reason;
	} cases[] = {
		{ "rsa-sha256", "v=DKIM1; k=rsa; p=" RSA1024_P, DKIM_PASS, "" },
		{ "rsa-sha256", "p=" RSA1024_P, DKIM_PASS, "" },
		{ "rsa-sha256", "v=DKIM1; h=sha1:sha256; s=email:*; t=y:s:q; "
		    "n=note; g=*; p=" RSA1024_P, DKIM_PASS, "" },
		{ "rsa-sha256", "v=DKIM1; p= " RSA1024_P " ", DKIM_PASS, "" },
		{ "ed25519-sha256", "v=DKIM1; k=ed25519; p=" ED_P, DKIM_PASS,
		    "" },
		{ "rsa-sha256", "k=rsa; v=DKIM1; p=" RSA1024_P, DKIM_PERMERROR,
		    "key record version is not DKIM1" },
		{ "rsa-sha256", "v=DKIM2; p=" RSA1024_P, DKIM_PERMERROR,
		    "key record version is not DKIM1" },
		{ "rsa-sha256", "v=DKIM1; h=sha1; p=" RSA1024_P,
		    DKIM_PERMERROR, "key record does not allow sha256" },
		{ "rsa-sha256", "v=DKIM1; k=dsa; p=" RSA1024_P,
		    DKIM_PERMERROR, "unknown key type" },
		{ "rsa-sha256", "v=DKIM1; k=ed25519; p=" ED_P, DKIM_PERMERROR,
		    "key type does not match the signature algorithm" },
		{ "ed25519-sha256", "v=DKIM1; p=" RSA1024_P, DKIM_PERMERROR,
		    "key type does not match the signature algorithm" },
		{ "rsa-sha256", "v=DKIM1; s=tlsrpt; p=" RSA1024_P,
		    DKIM_PERMERROR, "key record is not for email" },
		{ "rsa-sha256", "v=DKIM1; k=rsa; p=", DKIM_FAIL,
		    "key revoked" },
		{ "rsa-sha256", "v=DKIM1; k=rsa", DKIM_PERMERROR,
		    "key record without p=" },
		{ "rsa-sha256", "v=DKIM1; k=rsa; t; p=" RSA1024_P,
		    DKIM_PERMERROR, "key record syntax error" },
		{ "rsa-sha256", "v=DKIM1; p=@@@@", DKIM_PERMERROR,
		    "key record p= is not valid base64" },
		{ "rsa-sha256", "v=DKIM1; p=" ED_P, DKIM_PERMERROR,
		    "invalid RSA key" },
		{ "rsa-sha256", "v=DKIM1; p=" RSA512_P, DKIM_PERMERROR,
		    "RSA key shorter than 1024 bits" },
		{ "ed25519-sha256", "v=DKIM1; k=ed25519; p=" RSA512_P,
		    DKIM_PERMERROR, "Ed25519 key is not 32 bytes" },
		{ "rsa-sha256", "v=spf1 -all", DKIM_PERMERROR,
		    "key record without p=" },
		{ "rsa-sha256", "hello world", DKIM_PERMERROR,
		    "key record syntax error" },
	};
	char sigtext[256];
	struct dkim_sig sig;
	struct dkim_key key;
	enum dkim_result r;
	const char *reason;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(sigtext, sizeof(sigtext), "v=1; a=%s; d=e.org; s=s; "
		    "h=from; i=@e.org; " SIG_B, cases[i].alg);
		CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, sigtext,
		    strlen(sigtext), &reason), 0);
		r = dkim_key_parse(&key, &sig, cases[i].text,
		    strlen(cases[i].text), &reason);
		if (r != cases[i].result)
			fprintf(stderr, "key \"%.60s\": %s\n", cases[i].text,
			    reason);
		CHECK(r == cases[i].result);
		if (r != DKIM_PASS)
			CHECK_STR(reason, cases[i].reason);
		else
			CHECK(key.bits == 1024 || key.bits == 256);
		dkim_key_clear(&key);
	}
}

static void
key_flags(void)
{
	const char *sigtext = "v=1; a=rsa-sha256; d=e.org; s=s; h=from; "
	    "i=@sub.e.org; " SIG_B;
	const char *testing = "v=DKIM1; t=y; p=" RSA1024_P;
	const char *strict = "v=DKIM1; t=s; p=" RSA1024_P;
	struct dkim_sig sig;
	struct dkim_key key;
	const char *reason;

	CHECK_INT(dkim_sig_parse(&sig, DKIM_SIG_DKIM, sigtext,
	    strlen(sigtext), &reason), 0);
	CHECK(dkim_key_parse(&key, &sig, testing, strlen(testing), &reason) ==
	    DKIM_PASS);
	CHECK(key.testing);
	CHECK(!key.strict);
	CHECK_INT(key.bits, 1024);
	dkim_key_clear(&key);
	CHECK(dkim_key_parse(&key, &sig, strict, strlen(strict), &reason) ==
	    DKIM_PERMERROR);
	CHECK_STR(reason, "key has t=s but i= is a subdomain of d=");
	dkim_key_clear(&key);
}

/*
 * Vector sets.
 */

/* tests/vectors/dkim/signed: manifest rows "file expected time note". */
static void
vectors_signed(void)
{
	char path[256], *manifest, *line, *save, *msg;
	char file[128], expected[128], when[32];
	struct zone z;
	struct env env;
	size_t len, mlen, count = 0;

	zone_open(&z, "signed");
	zone_add_file(&z, VECTORS "/signed/records.tsv");
	env_open_zone(&env, &z);
	manifest = read_file(VECTORS "/signed/manifest.tsv", &mlen);
	for (line = strtok_r(manifest, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || sscanf(line,
		    "%127[^\t]\t%127[^\t]\t%31[^\t]", file, expected,
		    when) != 3)
			continue;
		snprintf(path, sizeof(path), VECTORS "/signed/%s", file);
		msg = read_file(path, &len);
		check_vector(&env, file, msg, len, strcmp(when, "now") == 0 ?
		    0 : (time_t)strtoll(when, NULL, 10), expected, NULL);
		free(msg);
		count++;
	}
	free(manifest);
	CHECK(count >= 100);
	env_close(&env);
}

/* Verify one message of the signed set after edit, expect one result. */
static void
check_edit(struct env *env, const char *file, const char *what,
    const char *with, const char *where, const char *text,
    enum dkim_result want, const char *reason)
{
	char path[256], *msg, *edited;
	struct outcome o;
	size_t len, elen;

	snprintf(path, sizeof(path), VECTORS "/signed/%s", file);
	msg = read_file(path, &len);
	if (what != NULL)
		patch(msg, what, with);
	edited = text != NULL ? insert(msg, len, where, text, &elen) :
	    strdup(msg);
	if (text == NULL)
		elen = len;
	verify(env, edited, elen, 0, seed_of(file), &o);
	if (o.count != 1 || o.res[0].result != want ||
	    strcmp(o.res[0].reason, reason) != 0) {
		fprintf(stderr, "edited %s: want %s (%s)\n", file,
		    dkim_result_str(want), reason);
		print_outcome(file, &o);
	}
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == want);
	CHECK_STR(o.res[0].reason, reason);
	free(msg);
	free(edited);
}

#define RR	"dkimpy-plain-relaxed-relaxed-rsa.eml"
#define SS	"dkimpy-plain-simple-simple-rsa.eml"
#define SUBJECT	"Subject: Streaming verification test"
#define TEXT	"This is a test."

/* Changes after signing, made to messages of the signed set. */
static void
tampering(void)
{
	struct zone z;
	struct env env;

	zone_open(&z, "tampering");
	zone_add_file(&z, VECTORS "/signed/records.tsv");
	env_open_zone(&env, &z);
	/* A changed signed header field or body. */
	check_edit(&env, RR, SUBJECT, "Subject: Streaming verification tesT",
	    NULL, NULL, DKIM_FAIL, "signature mismatch");
	check_edit(&env, SS, SUBJECT, "Subject: Streaming verification tesT",
	    NULL, NULL, DKIM_FAIL, "signature mismatch");
	check_edit(&env, RR, TEXT, "This is a tesT.", NULL, NULL, DKIM_FAIL,
	    "body hash mismatch");
	check_edit(&env, "dkimpy-plain-relaxed-relaxed-ed25519.eml", TEXT,
	    "This is a tesT.", NULL, NULL, DKIM_FAIL, "body hash mismatch");
	/* White space changes: relaxed tolerates them, simple does not. */
	check_edit(&env, RR, SUBJECT, "Subject:\tStreaming verification test",
	    NULL, NULL, DKIM_PASS, "signature verified");
	check_edit(&env, SS, SUBJECT, "Subject:\tStreaming verification test",
	    NULL, NULL, DKIM_FAIL, "signature mismatch");
	check_edit(&env, RR, TEXT, "This is\ta test.", NULL, NULL, DKIM_PASS,
	    "signature verified");
	check_edit(&env, RR, NULL, NULL, NULL, "\r\n\r\n", DKIM_PASS,
	    "signature verified");
	check_edit(&env, SS, TEXT, "This is\ta test.", NULL, NULL, DKIM_FAIL,
	    "body hash mismatch");
	/* Fields not signed may be added; a From below the signed one not. */
	check_edit(&env, RR, NULL, NULL, "From:", "X-Added: yes\r\n",
	    DKIM_PASS, "signature verified");
	check_edit(&env, RR, NULL, NULL, "To:", "From: mallory@example.com\r\n",
	    DKIM_FAIL, "signature mismatch");
	/* h= names From twice, so a From added above fails too. */
	check_edit(&env, "oversigned.eml", NULL, NULL, "DKIM-Signature:",
	    "From: mallory@example.com\r\n", DKIM_FAIL, "signature mismatch");
	check_edit(&env, "oversigned.eml", NULL, NULL, "DKIM-Signature:",
	    "Reply-To: mallory@example.com\r\n", DKIM_FAIL,
	    "signature mismatch");
	/* Text after the l= count is not covered, text without l= is. */
	check_edit(&env, "length.eml", NULL, NULL, NULL,
	    "Appended text\r\n", DKIM_PASS, "signature verified");
	check_edit(&env, RR, NULL, NULL, NULL, "Appended text\r\n", DKIM_FAIL,
	    "body hash mismatch");
	env_close(&env);
}

/* l= with text appended: the result flags the body as partly signed. */
static void
length_partial(void)
{
	char *msg, *longer;
	struct zone z;
	struct env env;
	struct outcome o;
	size_t len, llen;

	zone_open(&z, "length");
	zone_add_file(&z, VECTORS "/signed/records.tsv");
	env_open_zone(&env, &z);
	msg = read_file(VECTORS "/signed/length.eml", &len);
	verify(&env, msg, len, 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PASS);
	CHECK(!o.res[0].body_partial);
	longer = insert(msg, len, NULL, "More\r\n", &llen);
	verify(&env, longer, llen, 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PASS);
	CHECK(o.res[0].body_partial);
	/* A body shorter than l= is a permerror. */
	verify(&env, msg, len - strlen("This is a test.\r\n"), 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PERMERROR);
	CHECK_STR(o.res[0].reason, "l= is larger than the body");
	free(msg);
	free(longer);
	env_close(&env);
}

/* dkimpy's signed messages (LF line ends) and their key records. */
static void
vectors_dkimpy(void)
{
	static const struct {
		const char	*file, *expected;
	} cases[] = {
		{ "rfc6376.signed.msg", "pass,pass" },
		{ "ed25519test2.msg", "pass" },
		{ "test2.message", "pass" },
	};
	char path[256], *raw, *msg;
	struct zone z;
	struct env env;
	size_t i, rlen, len;

	zone_open(&z, "dkimpy");
	zone_add_file(&z, VECTORS "/dkimpy/records.tsv");
	env_open_zone(&env, &z);
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(path, sizeof(path), VECTORS "/dkimpy/%s",
		    cases[i].file);
		raw = read_file(path, &rlen);
		msg = to_crlf(raw, rlen, &len);
		check_vector(&env, cases[i].file, msg, len, 0,
		    cases[i].expected, NULL);
		free(raw);
		free(msg);
	}
	env_close(&env);
}

/*
 * Stalwart's messages: DNS lines, an empty line, then the message with LF
 * line ends.  Upstream checks them at STALWART_NOW, before 005.txt's x=
 * expires.  004.txt's t= is 5 hours after that time, so at STALWART_NOW
 * it is a timestamp in the future; at the current time it passes.
 */
static void
vectors_stalwart(void)
{
	static const struct {
		const char	*file, *expected;
		time_t		 now;
	} cases[] = {
		{ "001.txt", "pass,pass", STALWART_NOW },
		{ "002.txt", "pass", STALWART_NOW },
		{ "003.txt", "pass,pass", STALWART_NOW },
		{ "004.txt", "pass", 0 },
		{ "004.txt", "permerror", STALWART_NOW },
		{ "005.txt", "pass", STALWART_NOW },
		{ "005.txt", "permerror", 0 },
		{ "006.txt", "pass", STALWART_NOW },
	};
	char path[256], *raw, *msg, *body;
	struct zone z;
	struct env env;
	size_t i, rlen, len;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(path, sizeof(path), VECTORS "/stalwart/%s",
		    cases[i].file);
		raw = read_file(path, &rlen);
		body = strstr(raw, "\n\n");
		if (body == NULL)
			exit(1);
		zone_open(&z, "stalwart");
		zone_add_lines(&z, raw, (size_t)(body - raw));
		env_open_zone(&env, &z);
		msg = to_crlf(body + 2, rlen - (size_t)(body + 2 - raw), &len);
		check_vector(&env, cases[i].file, msg, len, cases[i].now,
		    cases[i].expected, NULL);
		env_close(&env);
		free(raw);
		free(msg);
	}
}

/*
 * The Mail::DKIM corpus with FAKE_DNS.dat.  mail-dkim/expected.tsv gives
 * per file the results and reasons under RFC 6376 and RFC 8301, which
 * differ from upstream's for most files (see the README there).
 */
static void
vectors_mail_dkim(void)
{
	char path[256], *table, *line, *save, *msg;
	char file[128], expected[256], reasons[1024];
	struct zone z;
	struct env env;
	size_t len, tlen, count = 0;

	zone_open(&z, "mail-dkim");
	zone_add_file(&z, VECTORS "/mail-dkim/FAKE_DNS.dat");
	env_open_zone(&env, &z);
	table = read_file(VECTORS "/mail-dkim/expected.tsv", &tlen);
	for (line = strtok_r(table, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || sscanf(line,
		    "%127[^\t]\t%255[^\t]\t%1023[^\t]", file, expected,
		    reasons) != 3)
			continue;
		if (strcmp(expected, "none") == 0)
			expected[0] = reasons[0] = '\0';
		snprintf(path, sizeof(path), VECTORS "/mail-dkim/corpus/%s",
		    file);
		msg = read_file(path, &len);
		check_vector(&env, file, msg, len, 0, expected, reasons);
		free(msg);
		count++;
	}
	free(table);
	CHECK_INT(count, 79);
	env_close(&env);
}

/*
 * The mock resolver: a child process on 127.0.0.1 that replies to each
 * query with SERVFAIL (the query echoed with QR and RCODE 2) or drops it.
 */

struct mock {
	pid_t	 pid;
	char	 addr[32];
};

static void
mock_serve(int fd, int answer)
{
	unsigned char pkt[4096];
	struct sockaddr_storage peer;
	socklen_t plen;
	ssize_t n;

	for (;;) {
		plen = sizeof(peer);
		n = recvfrom(fd, pkt, sizeof(pkt), 0,
		    (struct sockaddr *)&peer, &plen);
		if (n < 12 || !answer)
			continue;
		pkt[2] |= 0x80;
		pkt[3] = (unsigned char)((pkt[3] & 0xf0) | 0x80 | 2);
		sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&peer, plen);
	}
}

static void
mock_start(struct mock *m, int answer)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		perror("mock resolver on 127.0.0.1");
		exit(1);
	}
	snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d",
	    ntohs(sin.sin_port));
	if ((m->pid = fork()) == 0) {
		mock_serve(fd, answer);
		_exit(0);
	}
	close(fd);
}

static void
mock_stop(struct mock *m)
{
	kill(m->pid, SIGKILL);
	waitpid(m->pid, NULL, 0);
}

/* SERVFAIL and a timeout are temperror, never fail (RFC 6376 6.1.2). */
static void
dns_errors(void)
{
	static const struct {
		int		 answer;
		const char	*reason;
	} cases[] = {
		{ 1, "key lookup failed" },
		{ 0, "key lookup timed out" },
	};
	char *msg;
	struct env env;
	struct outcome o;
	struct mock m;
	size_t i, len;

	msg = read_file(VECTORS "/signed/" RR, &len);
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		mock_start(&m, cases[i].answer);
		env_open(&env, 0.3);
		CHECK_INT(dns_add_resolver(env.dns, m.addr), 0);
		verify(&env, msg, len, 0, 0, &o);
		CHECK_INT(o.count, 1);
		CHECK(o.res[0].result == DKIM_TEMPERROR);
		CHECK_STR(o.res[0].reason, cases[i].reason);
		CHECK_STR(o.res[0].domain, "example.org");
		CHECK_STR(o.res[0].selector, "rsa2048");
		env_close(&env);
		mock_stop(&m);
	}
	free(msg);
}

/* Open a zone-mode environment with the signed set's records. */
static void
env_open_signed(struct env *env, const char *extra)
{
	struct zone z;

	zone_open(&z, "signed-extra");
	zone_add_file(&z, VECTORS "/signed/records.tsv");
	if (extra != NULL)
		zone_add_lines(&z, extra, strlen(extra));
	env_open_zone(env, &z);
}

/* Several TXT records at the key name: the first usable one counts. */
static void
key_several_records(void)
{
	char *msg;
	struct env env;
	struct outcome o;
	size_t len;

	msg = read_file(VECTORS "/signed/key-missing.eml", &len);
	env_open_signed(&env, "missing._domainkey.example.org v=spf1 -all\n"
	    "missing._domainkey.example.org v=DKIM1; k=ed25519; p=" ED_P "\n");
	verify(&env, msg, len, 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PERMERROR);
	CHECK_STR(o.res[0].reason, "key record without p=");
	env_close(&env);
	env_open_signed(&env, "missing._domainkey.example.org v=spf1 -all\n"
	    "missing._domainkey.example.org v=DKIM1; p=" RSA1024_P "\n");
	verify(&env, msg, len, 0, 0, &o);
	/* The 1024-bit key is not the signer's: a usable key that fails. */
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_FAIL);
	CHECK(o.res[0].key_bits == 1024);
	env_close(&env);
	free(msg);
}

/* More DKIM-Signature fields than verified: the rest are neutral. */
static void
signature_limit(void)
{
	char *msg, *many, *end, *field;
	struct env env;
	struct outcome o;
	struct dkim_options opts = { 0, 3 };
	struct dkim_verifier *v;
	size_t i, len, flen, n = 0;

	msg = read_file(VECTORS "/signed/" RR, &len);
	end = strstr(msg, "\r\nFrom:");
	flen = (size_t)(end + 2 - msg);
	field = msg;
	many = malloc(12 * flen + len);
	for (i = 0; i < 11; i++, n += flen)
		memcpy(many + n, field, flen);
	memcpy(many + n, msg, len);
	n += len;
	env_open_signed(&env, NULL);
	verify(&env, many, n, 0, 0, &o);
	CHECK_INT(o.count, 12);
	for (i = 0; i < o.count; i++)
		CHECK(o.res[i].result == (i < DKIM_VERIFY_MAX ? DKIM_PASS :
		    DKIM_NEUTRAL));
	CHECK_STR(o.res[11].reason, "not verified: signature limit reached");
	/* verify_max lowers the limit. */
	memset(&o, 0, sizeof(o));
	v = dkim_verifier_new(env.dns, env.loop, &opts);
	dkim_verifier_update(v, many, n);
	dkim_verifier_finish(v, outcome_cb, &o);
	wait_outcome(&env, &o);
	dkim_verifier_free(v);
	CHECK_INT(o.count, 12);
	CHECK(o.res[2].result == DKIM_PASS);
	CHECK(o.res[3].result == DKIM_NEUTRAL);
	env_close(&env);
	free(many);
	free(msg);
}

/* A header section past the collector's limits is not verified. */
static void
header_overflow(void)
{
	char *msg, *big, *body;
	struct env env;
	struct outcome o;
	size_t i, len, n, hlen;

	msg = read_file(VECTORS "/signed/" RR, &len);
	body = strstr(msg, "\r\n\r\n") + 2;
	hlen = (size_t)(body - msg);
	big = malloc(len + MSGHDR_FIELDS_MAX * 16);
	memcpy(big, msg, hlen);
	n = hlen;
	for (i = 0; i < MSGHDR_FIELDS_MAX; i++)
		n += (size_t)sprintf(big + n, "X-N: %zu\r\n", i);
	memcpy(big + n, body, len - hlen);
	n += len - hlen;
	env_open_signed(&env, NULL);
	verify(&env, big, n, 0, seed_of("overflow"), &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_NEUTRAL);
	CHECK_STR(o.res[0].reason, "header section too large to verify");
	env_close(&env);
	free(big);
	free(msg);
}

/* Lifetime: an unsigned message, free before and inside the callback. */
static void
verifier_lifetime(void)
{
	const char *plain = "From: a@example.org\r\nSubject: x\r\n\r\nHi\r\n";
	struct env env;
	struct outcome o;
	struct dkim_verifier *v;
	char *msg;
	size_t len;

	env_open_signed(&env, NULL);
	verify(&env, plain, strlen(plain), 0, 3, &o);
	CHECK_INT(o.count, 0);

	/* The header section stays available to the other checks. */
	v = dkim_verifier_new(env.dns, env.loop, NULL);
	dkim_verifier_update(v, plain, 20);
	CHECK(!msghdr_done(dkim_verifier_header(v)));
	dkim_verifier_update(v, plain + 20, strlen(plain) - 20);
	CHECK(msghdr_done(dkim_verifier_header(v)));
	CHECK_INT(msghdr_count(dkim_verifier_header(v)), 2);
	CHECK_INT(msghdr_body_offset(dkim_verifier_header(v)),
	    strlen(plain) - 4);
	dkim_verifier_free(v);

	/* Freed with its lookup pending: no callback. */
	msg = read_file(VECTORS "/signed/" RR, &len);
	memset(&o, 0, sizeof(o));
	v = dkim_verifier_new(env.dns, env.loop, NULL);
	dkim_verifier_update(v, msg, len);
	dkim_verifier_finish(v, outcome_cb, &o);
	dkim_verifier_free(v);
	ev_run(env.loop, EVRUN_NOWAIT);
	ev_run(env.loop, EVRUN_NOWAIT);
	CHECK_INT(o.calls, 0);

	/* Freed by its own callback; update after finish is ignored. */
	memset(&o, 0, sizeof(o));
	v = dkim_verifier_new(env.dns, env.loop, NULL);
	dkim_verifier_update(v, msg, len);
	dkim_verifier_finish(v, outcome_cb, &o);
	dkim_verifier_update(v, "more", 4);
	o.free_in_cb = v;
	wait_outcome(&env, &o);
	CHECK_INT(o.calls, 1);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PASS);
	CHECK(o.res[0].key_bits == 2048);
	CHECK_STR(o.res[0].identity, "@example.org");
	CHECK(o.res[0].alg == DKIM_ALG_RSA_SHA256);
	CHECK_INT(strlen(o.res[0].b_prefix), DKIM_B_PREFIX);
	free(msg);
	env_close(&env);
}

/* t=y is reported with the result. */
static void
testing_flag(void)
{
	char *msg;
	struct env env;
	struct outcome o;
	size_t len;

	env_open_signed(&env, NULL);
	msg = read_file(VECTORS "/signed/testing.eml", &len);
	verify(&env, msg, len, 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(o.res[0].result == DKIM_PASS);
	CHECK(o.res[0].testing);
	free(msg);
	msg = read_file(VECTORS "/signed/" RR, &len);
	verify(&env, msg, len, 0, 0, &o);
	CHECK_INT(o.count, 1);
	CHECK(!o.res[0].testing);
	free(msg);
	env_close(&env);
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	log_init("test_dkim", LOG_LVL_WARN);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(taglist_parse);
	RUN(taglist_values);
	RUN(sig_parse_valid);
	RUN(sig_parse_invalid);
	RUN(sig_parse_limits);
	RUN(sig_check_time);
	RUN(canon_body);
	RUN(canon_body_limit);
	RUN(canon_header);
	RUN(key_records);
	RUN(key_flags);
	RUN(vectors_signed);
	RUN(tampering);
	RUN(length_partial);
	RUN(vectors_dkimpy);
	RUN(vectors_stalwart);
	RUN(vectors_mail_dkim);
	RUN(dns_errors);
	RUN(key_several_records);
	RUN(signature_limit);
	RUN(header_overflow);
	RUN(verifier_lifetime);
	RUN(testing_flag);
	nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	CHECK_SUMMARY();
}
