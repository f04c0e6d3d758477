/*
 * Unit tests of dnsconf's library parts: TXT quoting and splitting at 255
 * bytes, name checks, the rules file parser with its error messages and
 * line numbers, key files, and "dnsconf sign" end to end.  The end-to-end
 * tests read the printed records back through ldns and verify them with
 * the record module, as the relay would.
 */
#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <sodium.h>

#include "check.h"
#include "dnsconf.h"
#include "keys.h"
#include "record.h"
#include "rules.h"
#include "sign.h"
#include "zone.h"

#define NOW	1700000000ULL

static char tmpdir[64];

/* A path in tmpdir, from a ring of buffers that outlives one test. */
static const char *
tmp_path(const char *name)
{
	static char path[32][128];
	static int next;

	next = (next + 1) % 32;
	snprintf(path[next], sizeof(path[next]), "%s/%s", tmpdir, name);
	return path[next];
}

static const char *
write_tmp(const char *name, const char *text)
{
	const char *path = tmp_path(name);
	FILE *fp = fopen(path, "w");

	CHECK(fp != NULL);
	if (fp != NULL) {
		fputs(text, fp);
		fclose(fp);
	}
	return path;
}

/* ---- TXT quoting ---- */

/* Quote n copies of byte c and count the character-strings. */
static int
quote_count(char c, size_t n, char *out, size_t outsz)
{
	char *txt = malloc(n + 1);
	int strings = 0;
	char *p;

	memset(txt, c, n);
	CHECK_INT(zone_txt_quote(out, outsz, txt, n), 0);
	for (p = out; (p = strstr(p, "\" \"")) != NULL; p += 3)
		strings++;
	free(txt);
	return strings + 1;
}

static void
test_txt_quote_split(void)
{
	static char out[4096];

	CHECK_INT(zone_txt_quote(out, sizeof(out), "", 0), 0);
	CHECK_STR(out, "\"\"");
	CHECK_INT(zone_txt_quote(out, sizeof(out), "v=ER1", 5), 0);
	CHECK_STR(out, "\"v=ER1\"");
	CHECK_INT(quote_count('a', 255, out, sizeof(out)), 1);
	CHECK_INT(strlen(out), 257);
	CHECK_INT(quote_count('a', 256, out, sizeof(out)), 2);
	CHECK_INT(strlen(out), 255 + 1 + 5);
	CHECK(strncmp(out + 256, "\" \"a\"", 5) == 0);
	CHECK_INT(quote_count('a', 510, out, sizeof(out)), 2);
	CHECK_INT(quote_count('a', 511, out, sizeof(out)), 3);
}

static void
test_txt_quote_escapes(void)
{
	char txt[300], out[2048];

	CHECK_INT(zone_txt_quote(out, sizeof(out), "a\"b\\c", 5), 0);
	CHECK_STR(out, "\"a\\\"b\\\\c\"");
	CHECK_INT(zone_txt_quote(out, sizeof(out), "\x01\xff", 2), 0);
	CHECK_STR(out, "\"\\001\\255\"");
	/* Escapes do not count toward the 255 bytes of a string. */
	memset(txt, '"', sizeof(txt));
	CHECK_INT(zone_txt_quote(out, sizeof(out), txt, 256), 0);
	CHECK_INT(strlen(out), 1 + 255 * 2 + 3 + 2 + 1);
	CHECK(strncmp(out + 511, "\" \"\\\"\"", 6) == 0);
	/* The size macro is enough in the worst case and exact fits work. */
	memset(txt, 0x01, sizeof(txt));
	CHECK_INT(zone_txt_quote(out, ZONE_TXT_QUOTED_MAX(300), txt, 300), 0);
	CHECK_INT(zone_txt_quote(out, strlen(out) + 1, txt, 300), 0);
	CHECK_INT(zone_txt_quote(out, strlen(out), txt, 300), -1);
	CHECK_INT(zone_txt_quote(out, 2, "", 0), -1);
}

/* ---- Names ---- */

static void
test_domain_normalize(void)
{
	static const struct {
		const char	*in;
		const char	*want;	/* NULL: invalid */
	} cases[] = {
		{ "example.com", "example.com" },
		{ "Example.COM.", "example.com" },
		{ "a-b.x1", "a-b.x1" },
		{ "localhost", "localhost" },
		{ "", NULL },
		{ ".", NULL },
		{ "a..b", NULL },
		{ ".a", NULL },
		{ "a.b..", NULL },
		{ "-a.b", NULL },
		{ "a-.b", NULL },
		{ "a.-b", NULL },
		{ "a.b-", NULL },
		{ "a_b.c", NULL },
		{ "a b.c", NULL },
		{ "a/b", NULL },
	};
	char out[ZONE_DOMAIN_MAX + 1], big[300];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = zone_domain_normalize(out, cases[i].in);

		if ((rc == 0) != (cases[i].want != NULL))
			fprintf(stderr, "  name \"%s\"\n", cases[i].in);
		CHECK_INT(rc, cases[i].want ? 0 : -1);
		if (rc == 0 && cases[i].want)
			CHECK_STR(out, cases[i].want);
	}
	memset(big, 'a', sizeof(big));
	big[63] = '\0';
	CHECK_INT(zone_domain_normalize(out, big), 0);
	big[63] = 'a';
	big[64] = '\0';
	CHECK_INT(zone_domain_normalize(out, big), -1);
	for (i = 0; i < 253; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[253] = '\0';
	CHECK_INT(zone_domain_normalize(out, big), 0);
	big[253] = '.';
	big[254] = 'a';
	big[255] = '\0';
	CHECK_INT(zone_domain_normalize(out, big), -1);
}

/* ---- Rules: one line ---- */

static void
test_rules_line_good(void)
{
	struct rules_entry e;
	char err[512];

	CHECK_INT(rules_parse_line(&e, "", 0, "example.com", err,
	    sizeof(err)), 0);
	CHECK_INT(rules_parse_line(&e, "  # comment", 11, "example.com", err,
	    sizeof(err)), 0);

#define LINE(s) rules_parse_line(&e, s, strlen(s), "example.com", err, \
	    sizeof(err))
	CHECK_INT(LINE("alice@example.com   forward alice@mailbox.example"), 1);
	CHECK_STR(e.local, "alice");
	CHECK_INT(e.catch_all, 0);
	CHECK_INT(e.action, REC_ACT_FORWARD);
	CHECK_INT(e.ndsts, 1);
	CHECK_STR(e.dsts[0], "alice@mailbox.example");
	rules_entry_free(&e);

	CHECK_INT(LINE("\tteam@Example.COM\tforward a@mailbox.example,"
	    "b@mailbox.example ,  c@other.example\t"), 1);
	CHECK_INT(e.ndsts, 3);
	CHECK_STR(e.dsts[1], "b@mailbox.example");
	CHECK_STR(e.dsts[2], "c@other.example");
	rules_entry_free(&e);

	CHECK_INT(LINE("old@example.com reject \"No longer \\\"here\\\" \\\\ "
	    "bye\""), 1);
	CHECK_INT(e.action, REC_ACT_REJECT);
	CHECK_STR(e.message, "No longer \"here\" \\ bye");
	CHECK_INT(LINE("old@example.com reject"), 1);
	CHECK_STR(e.message, "");
	CHECK_INT(LINE("noise@example.com drop"), 1);
	CHECK_INT(e.action, REC_ACT_DROP);
	CHECK_INT(LINE("*@example.com forward catchall@mailbox.example"), 1);
	CHECK_INT(e.catch_all, 1);
	rules_entry_free(&e);
	CHECK_INT(LINE("a.b+tag!#$%&'*/=?^_`{|}~-@example.com drop"), 1);
	CHECK_STR(e.local, "a.b+tag!#$%&'*/=?^_`{|}~-");
#undef LINE
}

struct rules_error_case {
	const char	*line;
	const char	*want;	/* part of the error message */
};

static const struct rules_error_case rules_error_cases[] = {
	{ "alice@example.com", "missing action" },
	{ "alice@example.com bounce", "unknown action \"bounce\"" },
	{ "alice@example.com Forward a@b.example", "unknown action" },
	{ "alice@example.com forward", "at least one destination" },
	{ "alice@example.com forward a@b.example,", "empty destination" },
	{ "alice@example.com forward ,a@b.example", "empty destination" },
	{ "alice@example.com forward a@b.example b@c.example",
	    "separate addresses with commas" },
	{ "alice@example.com forward a@b.example, a@B.example",
	    "duplicate destination" },
	{ "alice@example.com forward ab.example", "invalid destination" },
	{ "alice@example.com forward <a@b.example>", "invalid destination" },
	{ "alice@example.com forward a@b_c.example", "invalid domain" },
	{ "alice@example.com forward bob@example.com", "loop" },
	{ "alice@example.com forward bob@EXAMPLE.com.", "loop" },
	{ "alice@example.com reject No", "double quotes" },
	{ "alice@example.com reject \"open", "no closing quote" },
	{ "alice@example.com reject \"a\" b", "after the reject text" },
	{ "alice@example.com reject \"a\\n\"", "invalid escape" },
	{ "alice@example.com reject \"caf\xc3\xa9\"", "printable ASCII" },
	{ "alice@example.com drop now", "drop takes no arguments" },
	{ "alice@example.org drop", "not in domain example.com" },
	{ "alice@sub.example.com drop", "not in domain example.com" },
	{ "alice drop", "expected local@example.com" },
	{ "a@b@example.com drop", "expected local@example.com" },
	{ "@example.com drop", "invalid local part" },
	{ ".alice@example.com drop", "invalid local part" },
	{ "al..ice@example.com drop", "invalid local part" },
	{ "\"alice\"@example.com drop", "quoted local parts" },
	{ "al(ice@example.com drop", "invalid local part" },
	{ "alice@example.com\x01 drop", "control character 0x01 at column 18" },
};

static void
test_rules_line_errors(void)
{
	struct rules_entry e;
	char err[512], line[200];
	size_t i;

	for (i = 0; i < sizeof(rules_error_cases) /
	    sizeof(rules_error_cases[0]); i++) {
		const struct rules_error_case *c = &rules_error_cases[i];
		int rc;

		err[0] = '\0';
		rc = rules_parse_line(&e, c->line, strlen(c->line),
		    "example.com", err, sizeof(err));
		if (rc != -1 || strstr(err, c->want) == NULL)
			fprintf(stderr, "  line \"%s\": %d \"%s\"\n", c->line,
			    rc, err);
		CHECK_INT(rc, -1);
		CHECK(strstr(err, c->want) != NULL);
		CHECK_INT(e.ndsts, 0);
	}
	/* A local part of 64 bytes is allowed, 65 are not. */
	memset(line, 'a', 65);
	snprintf(line + 64, sizeof(line) - 64, "@example.com drop");
	CHECK_INT(rules_parse_line(&e, line, strlen(line), "example.com",
	    err, sizeof(err)), 1);
	memset(line, 'a', 65);
	snprintf(line + 65, sizeof(line) - 65, "@example.com drop");
	CHECK_INT(rules_parse_line(&e, line, strlen(line), "example.com",
	    err, sizeof(err)), -1);
	CHECK(strstr(err, "longer than 64 bytes") != NULL);
}

static void
test_rules_line_limits(void)
{
	struct rules_entry e;
	char err[512], *line = malloc(RULES_LINE_MAX);
	size_t i, len;

	/* REC_MAX_DSTS destinations, then one more. */
	len = (size_t)snprintf(line, RULES_LINE_MAX, "a@example.com forward");
	for (i = 0; i < REC_MAX_DSTS; i++)
		len += (size_t)snprintf(line + len, RULES_LINE_MAX - len,
		    "%s d%zu@mailbox.example", i ? "," : "", i);
	CHECK_INT(rules_parse_line(&e, line, len, "example.com", err,
	    sizeof(err)), 1);
	CHECK_INT(e.ndsts, REC_MAX_DSTS);
	rules_entry_free(&e);
	len += (size_t)snprintf(line + len, RULES_LINE_MAX - len,
	    ", x@mailbox.example");
	CHECK_INT(rules_parse_line(&e, line, len, "example.com", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "more than 32 destinations") != NULL);

	/* Reject text of REC_MAX_MSG bytes, then one more. */
	len = (size_t)snprintf(line, RULES_LINE_MAX, "a@example.com reject \"");
	memset(line + len, 'x', REC_MAX_MSG);
	len += REC_MAX_MSG;
	line[len++] = '"';
	CHECK_INT(rules_parse_line(&e, line, len, "example.com", err,
	    sizeof(err)), 1);
	CHECK_INT(strlen(e.message), REC_MAX_MSG);
	line[len - 1] = 'x';
	line[len++] = '"';
	CHECK_INT(rules_parse_line(&e, line, len, "example.com", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "longer than 200 bytes") != NULL);

	/* A destination longer than REC_MAX_ADDR. */
	len = (size_t)snprintf(line, RULES_LINE_MAX, "a@example.com forward ");
	memset(line + len, 'd', REC_MAX_ADDR);
	len += REC_MAX_ADDR;
	len += (size_t)snprintf(line + len, RULES_LINE_MAX - len, "@x.example");
	CHECK_INT(rules_parse_line(&e, line, len, "example.com", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "longer than 320 bytes") != NULL);
	free(line);
}

/* ---- Rules: whole files ---- */

static int
parse_text(struct rules *r, const char *text, char *errs, size_t errsz)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	FILE *err = fmemopen(errs, errsz, "w");
	int problems;

	rules_init(r);
	problems = rules_parse_stream(r, in, "rules.txt", "example.com", err);
	fclose(err);
	fclose(in);
	return problems;
}

static void
test_rules_file_good(void)
{
	static const char text[] =
	    "# rules for example.com\n"
	    "alice@example.com   forward alice@mailbox.example\n"
	    "\n"
	    "team@example.com    forward a@mailbox.example, b@mailbox.example\r\n"
	    "old@example.com     reject \"This address is no longer in use\"\n"
	    "noise@example.com   drop\n"
	    "*@example.com       forward catchall@mailbox.example";
	struct rules r;
	char errs[1024] = "";

	CHECK_INT(parse_text(&r, text, errs, sizeof(errs)), 0);
	CHECK_STR(errs, "");
	CHECK_INT(r.n, 5);
	CHECK_INT(r.v[0].line, 2);
	CHECK_INT(r.v[1].line, 4);
	CHECK_STR(r.v[1].dsts[1], "b@mailbox.example");
	CHECK_INT(r.v[4].line, 7);
	CHECK_INT(r.v[4].catch_all, 1);
	rules_free(&r);
}

static void
test_rules_file_errors(void)
{
	static const char text[] =
	    "alice@example.com forward alice@mailbox.example\n"
	    "bob@example.com bounce\n"
	    "# fine\n"
	    "ALICE@example.com drop\n"
	    "*@example.com drop\n"
	    "carol@example.org drop\n"
	    "*@EXAMPLE.COM reject\n"
	    "Alice@example.com reject\n";
	struct rules r;
	char errs[2048] = "";

	CHECK_INT(parse_text(&r, text, errs, sizeof(errs)), 5);
	CHECK(strstr(errs, "rules.txt:2: unknown action \"bounce\"") != NULL);
	CHECK(strstr(errs, "rules.txt:6: address \"carol@example.org\" is "
	    "not in domain example.com") != NULL);
	CHECK(strstr(errs, "rules.txt:4: duplicate rule for ALICE@example.com "
	    "(first at line 1)") != NULL);
	CHECK(strstr(errs, "rules.txt:8: duplicate rule for Alice@example.com "
	    "(first at line 1)") != NULL);
	CHECK(strstr(errs, "rules.txt:7: duplicate rule for *@example.com "
	    "(first at line 5)") != NULL);
	rules_free(&r);
}

static void
test_rules_file_long_line(void)
{
	char *text = malloc(RULES_LINE_MAX + 100), errs[512] = "";
	struct rules r;
	size_t len;

	len = (size_t)snprintf(text, RULES_LINE_MAX + 100, "a@example.com "
	    "drop\nb@example.com reject \"");
	memset(text + len, 'x', RULES_LINE_MAX);
	snprintf(text + len + RULES_LINE_MAX, 100, "\"\nc@example.com drop\n");
	CHECK_INT(parse_text(&r, text, errs, sizeof(errs)), 1);
	CHECK(strstr(errs, "rules.txt:2: line longer than 16384 bytes") !=
	    NULL);
	CHECK_INT(r.n, 2);
	rules_free(&r);
	free(text);
}

/* ---- Key files ---- */

static void
make_signing_key(struct keys_signing *k, const char *domain,
    unsigned char fill, unsigned char salt_fill)
{
	unsigned char seed[crypto_sign_SEEDBYTES];

	memset(k, 0, sizeof(*k));
	snprintf(k->domain, sizeof(k->domain), "%s", domain);
	memset(seed, fill, sizeof(seed));
	crypto_sign_seed_keypair(k->pub, k->sk, seed);
	k->kid = rec_kid(k->pub, sizeof(k->pub));
	memset(k->salt, salt_fill, sizeof(k->salt));
}

static void
test_keys_roundtrip(void)
{
	struct keys_signing k, loaded;
	struct keys_public pub;
	struct rec_relay_key relay, relay_loaded;
	struct rec_key relay_pub;
	unsigned char salt[REC_SALT_LEN];
	char err[512], domain[ZONE_DOMAIN_MAX + 1];
	struct stat st;

	make_signing_key(&k, "example.com", 0x01, 0x03);
	CHECK_INT(keys_write_signing(tmpdir, &k, 0, err, sizeof(err)), 0);
	CHECK_INT(stat(tmp_path("example.com.key"), &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(keys_write_signing(tmpdir, &k, 0, err, sizeof(err)), -1);
	CHECK(strstr(err, "file exists; use --force") != NULL);
	chmod(tmp_path("example.com.key"), 0644);
	CHECK_INT(keys_write_signing(tmpdir, &k, 1, err, sizeof(err)), 0);
	CHECK_INT(stat(tmp_path("example.com.key"), &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);

	CHECK_INT(keys_load_signing(&loaded, tmp_path("example.com.key"), err,
	    sizeof(err)), 0);
	CHECK_STR(loaded.domain, "example.com");
	CHECK_INT(loaded.kid, k.kid);
	CHECK(memcmp(loaded.sk, k.sk, sizeof(k.sk)) == 0);
	CHECK(memcmp(loaded.salt, k.salt, sizeof(k.salt)) == 0);
	CHECK_INT(keys_load_public(&pub, tmp_path("example.com.pub"), err,
	    sizeof(err)), 0);
	CHECK_INT(pub.key.kid, k.kid);
	CHECK(memcmp(pub.key.pub, k.pub, sizeof(k.pub)) == 0);
	CHECK_INT(keys_load_salt(domain, salt, tmp_path("example.com.pub"),
	    err, sizeof(err)), 0);
	CHECK(memcmp(salt, k.salt, sizeof(salt)) == 0);

	memset(relay.sec, 0x02, sizeof(relay.sec));
	crypto_scalarmult_base(relay.pub, relay.sec);
	relay.kid = rec_kid(relay.pub, sizeof(relay.pub));
	CHECK_INT(keys_write_relay(tmpdir, &relay, 0, err, sizeof(err)), 0);
	CHECK_INT(rec_relay_key_load(&relay_loaded, tmp_path("relay.key"), err,
	    sizeof(err)), 0);
	CHECK(memcmp(relay_loaded.sec, relay.sec, sizeof(relay.sec)) == 0);
	CHECK_INT(keys_load_relay_public(&relay_pub, tmp_path("relay.pub"),
	    err, sizeof(err)), 0);
	CHECK_INT(relay_pub.kid, relay.kid);
}

static void
test_keys_load_errors(void)
{
	struct keys_signing k;
	struct keys_public pub;
	char err[512];
	const char *path;

	path = write_tmp("bad.key", "domain=example.com\nkid=00000000\n"
	    "salt=AwMDAwMDAwMDAwMDAwMDAw==\nsecret=AAAA\n");
	CHECK_INT(keys_load_signing(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "invalid kid, salt or secret") != NULL);
	path = write_tmp("bad.key", "domain=exa mple.com\n");
	CHECK_INT(keys_load_signing(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "missing kid") != NULL);
	path = write_tmp("bad.pub", "domain=exa mple.com\nkid=00000000\n"
	    "salt=AwMDAwMDAwMDAwMDAwMDAw==\npublic=AAAA\n");
	CHECK_INT(keys_load_public(&pub, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "invalid domain \"exa mple.com\"") != NULL);
	/* A public key whose kid belongs to another key. */
	path = write_tmp("bad.pub", "domain=example.com\nkid=00000000\n"
	    "salt=AwMDAwMDAwMDAwMDAwMDAw==\n"
	    "public=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n");
	CHECK_INT(keys_load_public(&pub, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "kid does not match") != NULL);
}

/* ---- sign, end to end ---- */

/* The records of one sign run, read back with ldns. */
struct signed_zone {
	char	*text;
	char	 errs[4096];
	int	 rc;
};

static struct rec_relay_key test_relay;

static void
setup_sign_files(void)
{
	struct keys_signing k;
	char err[512];

	make_signing_key(&k, "example.com", 0x01, 0x03);
	keys_write_signing(tmpdir, &k, 1, err, sizeof(err));
	make_signing_key(&k, "example.com", 0x07, 0x03);
	snprintf(k.domain, sizeof(k.domain), "example.com");
	CHECK_INT(keys_write_signing(tmpdir, &k, 1, err, sizeof(err)), 0);
	rename(tmp_path("example.com.pub"), tmp_path("next.pub"));
	rename(tmp_path("example.com.key"), tmp_path("next.key"));
	make_signing_key(&k, "example.com", 0x08, 0x04);
	CHECK_INT(keys_write_signing(tmpdir, &k, 1, err, sizeof(err)), 0);
	rename(tmp_path("example.com.pub"), tmp_path("othersalt.pub"));
	make_signing_key(&k, "example.com", 0x01, 0x03);
	CHECK_INT(keys_write_signing(tmpdir, &k, 1, err, sizeof(err)), 0);
	memset(test_relay.sec, 0x02, sizeof(test_relay.sec));
	crypto_scalarmult_base(test_relay.pub, test_relay.sec);
	test_relay.kid = rec_kid(test_relay.pub, sizeof(test_relay.pub));
	CHECK_INT(keys_write_relay(tmpdir, &test_relay, 1, err, sizeof(err)),
	    0);
}

static void
run_sign(struct signed_zone *z, struct sign_opts *o, const char *rules)
{
	size_t len = 0;
	FILE *out, *err;

	o->domain = o->domain ? o->domain : "example.com";
	o->key_path = o->key_path ? o->key_path : tmp_path("example.com.key");
	o->rules_path = tmp_path("rules.txt");
	if (o->ttl == 0)
		o->ttl = 3600;
	if (o->valid_days == 0)
		o->valid_days = 30;
	write_tmp("rules.txt", rules);
	z->text = NULL;
	z->errs[0] = '\0';
	out = open_memstream(&z->text, &len);
	err = fmemopen(z->errs, sizeof(z->errs), "w");
	z->rc = sign_run(o, NOW, out, err);
	fclose(err);
	fclose(out);
}

/* Collect the joined TXT strings of every record owned by owner. */
static size_t
zone_txts(const char *text, const char *owner, char txts[][REC_MAX_TXT + 1],
    size_t max)
{
	char *copy = strdup(text), *line, *save = NULL;
	size_t n = 0, i;

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		ldns_rr *rr = NULL;
		char *name;

		if (line[0] == ';')
			continue;
		CHECK_INT(ldns_rr_new_frm_str(&rr, line, 0, NULL, NULL),
		    LDNS_STATUS_OK);
		if (rr == NULL)
			continue;
		name = ldns_rdf2str(ldns_rr_owner(rr));
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_TXT &&
		    strcasecmp(name, owner) == 0 && n < max) {
			txts[n][0] = '\0';
			for (i = 0; i < ldns_rr_rd_count(rr); i++) {
				ldns_rdf *rdf = ldns_rr_rdf(rr, i);

				strncat(txts[n], (const char *)ldns_rdf_data(rdf)
				    + 1, ldns_rdf_data(rdf)[0]);
			}
			n++;
		}
		free(name);
		ldns_rr_free(rr);
	}
	free(copy);
	return n;
}

static void
load_domain(struct rec_domain *d, const char *text)
{
	static char txts[8][REC_MAX_TXT + 1];
	const char *ptrs[8];
	size_t lens[8], n, i;

	n = zone_txts(text, "_er.example.com.", txts, 8);
	for (i = 0; i < n; i++) {
		ptrs[i] = txts[i];
		lens[i] = strlen(txts[i]);
	}
	CHECK_INT(rec_domain_parse(d, ptrs, lens, n), REC_OK);
}

/* Verify the rule for local (NULL: catch-all) as the relay would. */
static enum rec_status
verify_local(struct rec_rule *r, const char *text, const char *local,
    uint64_t now)
{
	static char txts[2][REC_MAX_TXT + 1];
	struct rec_domain d;
	char owner[300];

	load_domain(&d, text);
	rec_owner_name(owner, sizeof(owner), d.salt, local ? local : "",
	    local ? strlen(local) : 0, local == NULL, "example.com");
	if (zone_txts(text, owner, txts, 2) != 1)
		return REC_NONE;
	return rec_rule_verify(r, &d, owner, "example.com", txts[0],
	    strlen(txts[0]), &test_relay, now);
}

static const char sign_rules[] =
    "alice@example.com   forward alice@mailbox.example\n"
    "team@example.com    forward a@mailbox.example, b@mailbox.example\n"
    "old@example.com     reject \"This address is no longer in use\"\n"
    "noise@example.com   drop\n"
    "*@example.com       forward catchall@mailbox.example\n";

static void
test_sign_output(void)
{
	struct sign_opts o = { 0 };
	struct signed_zone z;
	struct rec_domain d;
	struct rec_rule r;

	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	o.mx[o.nmx++] = "mx1.relay.example";
	o.mx[o.nmx++] = "MX2.relay.example.";
	run_sign(&z, &o, sign_rules);
	CHECK_INT(z.rc, 0);
	CHECK_STR(z.errs, "");
	load_domain(&d, z.text);
	CHECK_INT(d.nkeys, 1);
	CHECK_INT(verify_local(&r, z.text, "alice", NOW), REC_OK);
	CHECK_INT(r.ndsts, 1);
	CHECK_STR(r.dsts[0], "alice@mailbox.example");
	CHECK_INT(r.expires, NOW + 30 * 86400);
	CHECK_INT(verify_local(&r, z.text, "Team", NOW), REC_OK);
	CHECK_INT(r.ndsts, 2);
	CHECK_STR(r.dsts[1], "b@mailbox.example");
	CHECK_INT(verify_local(&r, z.text, "old", NOW), REC_OK);
	CHECK_STR(r.message, "This address is no longer in use");
	CHECK_INT(verify_local(&r, z.text, "noise", NOW), REC_OK);
	CHECK_INT(r.action, REC_ACT_DROP);
	CHECK_INT(verify_local(&r, z.text, NULL, NOW), REC_OK);
	CHECK_STR(r.dsts[0], "catchall@mailbox.example");
	CHECK_INT(verify_local(&r, z.text, "nobody", NOW), REC_NONE);
	CHECK(strstr(z.text, "\nexample.com. 3600 IN MX 10 "
	    "mx1.relay.example.\n") != NULL);
	CHECK(strstr(z.text, "\nexample.com. 3600 IN MX 20 "
	    "mx2.relay.example.\n") != NULL);
	/* The output names no address, not even in comments. */
	CHECK(strstr(z.text, "alice") == NULL);
	CHECK(strstr(z.text, "mailbox") == NULL);
	CHECK(strstr(z.text, "noise") == NULL);
	free(z.text);
}

static void
test_sign_expiry_and_rotation(void)
{
	struct sign_opts o = { 0 };
	struct signed_zone z;
	struct rec_domain d;
	struct rec_rule r;
	struct keys_public next;
	char err[256];

	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	o.has_expires = 1;
	o.expires = NOW - 1;
	o.publish_paths[o.npublish++] = tmp_path("next.pub");
	o.publish_paths[o.npublish++] = tmp_path("example.com.pub");
	o.ttl = 300;
	run_sign(&z, &o, sign_rules);
	CHECK_INT(z.rc, 0);
	CHECK(strstr(z.errs, "warning: the rules expire at") != NULL);
	CHECK_INT(verify_local(&r, z.text, "alice", NOW), REC_EXPIRED);
	CHECK_INT(verify_local(&r, z.text, "alice", NOW - 1), REC_OK);
	CHECK(strstr(z.text, "._er.example.com. 300 IN TXT") != NULL);
	load_domain(&d, z.text);
	CHECK_INT(d.nkeys, 2);
	CHECK_INT(keys_load_public(&next, tmp_path("next.pub"), err,
	    sizeof(err)), 0);
	CHECK_INT(d.keys[1].kid, next.key.kid);
	free(z.text);

	/* Sign with the next key: same salt, so the same rule names. */
	memset(&o, 0, sizeof(o));
	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	o.key_path = tmp_path("next.key");
	o.publish_paths[o.npublish++] = tmp_path("example.com.pub");
	run_sign(&z, &o, sign_rules);
	CHECK_INT(z.rc, 0);
	CHECK_INT(verify_local(&r, z.text, "alice", NOW), REC_OK);
	CHECK_INT(r.kid, next.key.kid);
	free(z.text);
}

/* A problem means an error on stderr and nothing at all on stdout. */
static void
check_sign_fails(struct sign_opts *o, const char *rules, const char *want)
{
	struct signed_zone z;

	run_sign(&z, o, rules);
	CHECK_INT(z.rc, DNSCONF_EXIT_INPUT);
	CHECK_STR(z.text, "");
	if (strstr(z.errs, want) == NULL)
		fprintf(stderr, "  want \"%s\" in \"%s\"\n", want, z.errs);
	CHECK(strstr(z.errs, want) != NULL);
	free(z.text);
}

static void
test_sign_failures(void)
{
	struct sign_opts o = { 0 };
	char want[256];

	snprintf(want, sizeof(want), "%s:2: unknown action \"bounce\"",
	    tmp_path("rules.txt"));
	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	check_sign_fails(&o, "a@example.com drop\nb@example.com bounce\n",
	    want);
	snprintf(want, sizeof(want), "%s:1: forward rules need at least one "
	    "--relay-pub", tmp_path("rules.txt"));
	memset(&o, 0, sizeof(o));
	check_sign_fails(&o, sign_rules, want);

	memset(&o, 0, sizeof(o));
	o.publish_paths[o.npublish++] = tmp_path("othersalt.pub");
	check_sign_fails(&o, "a@example.com drop\n", "salt differs");
	memset(&o, 0, sizeof(o));
	o.domain = "example.org";
	check_sign_fails(&o, "a@example.org drop\n",
	    "key is for example.com, not example.org");
	memset(&o, 0, sizeof(o));
	o.domain = "exa mple.org";
	check_sign_fails(&o, "", "invalid domain");
	memset(&o, 0, sizeof(o));
	o.mx[o.nmx++] = "relay..example";
	check_sign_fails(&o, "", "invalid MX host \"relay..example\"");
	memset(&o, 0, sizeof(o));
	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	o.relay_paths[o.nrelays++] = tmp_path("relay.key");
	check_sign_fails(&o, "", "given twice");
	memset(&o, 0, sizeof(o));
	o.key_path = tmp_path("missing.key");
	check_sign_fails(&o, "", "missing.key: No such file");
}

/* A rule whose record does not fit REC_MAX_TXT is reported by line. */
static void
test_sign_record_too_large(void)
{
	struct sign_opts o = { 0 };
	char *rules = malloc(RULES_LINE_MAX), want[256];
	size_t len, i;

	len = (size_t)snprintf(rules, RULES_LINE_MAX, "a@example.com drop\n"
	    "b@example.com forward ");
	for (i = 0; i < REC_MAX_DSTS; i++)
		len += (size_t)snprintf(rules + len, RULES_LINE_MAX - len,
		    "%sd%02zu-%080d@mailbox.example", i ? ", " : "", i, 0);
	snprintf(rules + len, RULES_LINE_MAX - len, "\n");
	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	snprintf(want, sizeof(want), "%s:2: record longer than 4096 bytes",
	    tmp_path("rules.txt"));
	check_sign_fails(&o, rules, want);
	free(rules);
}

/*
 * The size budget of docs/records.md: a rule with one destination in a
 * DNS response (question and answer, no EDNS) fits 512 bytes.
 */
static void
test_sign_answer_size(void)
{
	struct sign_opts o = { 0 };
	struct signed_zone z;
	struct rec_domain d;
	char owner[300], *line, *copy, *save = NULL;
	ldns_pkt *pkt;
	ldns_rr *rr = NULL, *q;
	uint8_t *wire = NULL;
	size_t wire_len = 0;

	o.relay_paths[o.nrelays++] = tmp_path("relay.pub");
	run_sign(&z, &o, "alice@example.com forward alice@mailbox.example\n");
	CHECK_INT(z.rc, 0);
	load_domain(&d, z.text);
	rec_owner_name(owner, sizeof(owner), d.salt, "alice", 5, 0,
	    "example.com");
	copy = strdup(z.text);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, owner, strlen(owner)) == 0)
			break;
	CHECK(line != NULL);
	if (line == NULL || ldns_rr_new_frm_str(&rr, line, 0, NULL, NULL) !=
	    LDNS_STATUS_OK) {
		free(copy);
		free(z.text);
		return;
	}
	pkt = ldns_pkt_new();
	ldns_pkt_set_qr(pkt, 1);
	q = ldns_rr_clone(rr);
	ldns_rr_set_question(q, 1);
	ldns_pkt_push_rr(pkt, LDNS_SECTION_QUESTION, q);
	ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
	CHECK_INT(ldns_pkt2wire(&wire, pkt, &wire_len), LDNS_STATUS_OK);
	CHECK(wire_len > 300);
	CHECK(wire_len <= 512);
	printf("     one-destination rule answer: %zu bytes\n", wire_len);
	free(wire);
	ldns_pkt_free(pkt);
	free(copy);
	free(z.text);
}

static void
cleanup_tmpdir(void)
{
	static const char *const names[] = {
		"example.com.key", "example.com.pub", "next.key", "next.pub",
		"othersalt.pub", "relay.key", "relay.pub", "rules.txt",
		"bad.key", "bad.pub",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(tmp_path(names[i]));
	rmdir(tmpdir);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dnsconf.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	RUN(test_txt_quote_split);
	RUN(test_txt_quote_escapes);
	RUN(test_domain_normalize);
	RUN(test_rules_line_good);
	RUN(test_rules_line_errors);
	RUN(test_rules_line_limits);
	RUN(test_rules_file_good);
	RUN(test_rules_file_errors);
	RUN(test_rules_file_long_line);
	RUN(test_keys_roundtrip);
	RUN(test_keys_load_errors);
	setup_sign_files();
	RUN(test_sign_output);
	RUN(test_sign_expiry_and_rotation);
	RUN(test_sign_failures);
	RUN(test_sign_record_too_large);
	RUN(test_sign_answer_size);
	cleanup_tmpdir();
	CHECK_SUMMARY();
}
