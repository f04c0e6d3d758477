/*
 * Unit tests of the ER1 record module (router/record.c): the tag list
 * parsers, labels, signing and verification with every rec_status, the
 * key files, and the test vectors of docs/records.md, read from
 * tests/vectors/records/er1.txt.  Run from the repository root.
 */
#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "record.h"

#define VECTOR_FILE	"tests/vectors/records/er1.txt"
#define RECORDS_DOC	"docs/records.md"
#define NOW		1700000000ULL
#define LATER		(NOW + 86400)

/* Fixed keys: Ed25519 seed 0x01..., X25519 secrets 0x02... and 0x05... */
static unsigned char sign_pk[crypto_sign_PUBLICKEYBYTES];
static unsigned char sign_sk[crypto_sign_SECRETKEYBYTES];
static struct rec_key sign_key;
static struct rec_relay_key relay_a, relay_b;
static struct rec_key relay_a_pub, relay_b_pub;
static unsigned char salt[REC_SALT_LEN];
static struct rec_domain domain_keys;

static void
make_relay(struct rec_relay_key *k, struct rec_key *pub, unsigned char fill)
{
	memset(k->sec, fill, sizeof(k->sec));
	crypto_scalarmult_base(k->pub, k->sec);
	k->kid = rec_kid(k->pub, sizeof(k->pub));
	pub->kid = k->kid;
	memcpy(pub->pub, k->pub, sizeof(pub->pub));
}

static void
setup_keys(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES];

	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
	sign_key.kid = rec_kid(sign_pk, sizeof(sign_pk));
	memcpy(sign_key.pub, sign_pk, sizeof(sign_pk));
	make_relay(&relay_a, &relay_a_pub, 0x02);
	make_relay(&relay_b, &relay_b_pub, 0x05);
	memset(salt, 0x03, sizeof(salt));
	memset(&domain_keys, 0, sizeof(domain_keys));
	memcpy(domain_keys.salt, salt, sizeof(salt));
	domain_keys.nkeys = 1;
	domain_keys.keys[0] = sign_key;
}

static const char *owner_alice = "w52e6jqyww5j5duxwbytwxeciy._er.example.com.";

/* Sign a rule at owner_alice for example.com, expiring at LATER. */
static void
sign_alice(char *out, size_t outsz, enum rec_action act,
    const char *const *dsts, size_t ndsts, const char *msg,
    const struct rec_key *relays, size_t nrelays)
{
	int rc = rec_rule_sign(out, outsz, owner_alice, "example.com",
	    sign_key.kid, sign_sk, LATER, act, dsts, ndsts, msg, relays,
	    nrelays);

	CHECK_INT(rc, 0);
}

static enum rec_status
verify_alice(struct rec_rule *r, const char *txt, uint64_t now)
{
	return rec_rule_verify(r, &domain_keys, owner_alice, "example.com",
	    txt, strlen(txt), &relay_a, now);
}

/* Copy in to out with the first "from" replaced by "to". */
static char *
replace(char *out, size_t outsz, const char *in, const char *from,
    const char *to)
{
	const char *at = strstr(in, from);

	if (at == NULL) {
		snprintf(out, outsz, "%s", in);
		return out;
	}
	snprintf(out, outsz, "%.*s%s%s", (int)(at - in), in, to,
	    at + strlen(from));
	return out;
}

static void
base64(char *out, size_t outsz, const void *bin, size_t len)
{
	sodium_bin2base64(out, outsz, bin, len,
	    sodium_base64_VARIANT_ORIGINAL);
}

/* Flip one bit of the base64 character at the start of the value of tag. */
static void
tamper_value(char *rec, const char *tag, size_t skip)
{
	char *p = strstr(rec, tag);

	CHECK(p != NULL);
	if (p == NULL)
		return;
	p += strlen(tag) + skip;
	*p = *p == 'A' ? 'B' : 'A';
}

/* ---- Tag list and domain records ---- */

struct domain_case {
	const char	*name;
	const char	*txts[4];
	enum rec_status	 want;
	size_t		 nkeys;
};

#define SALT_B64	"AwMDAwMDAwMDAwMDAwMDAw=="
#define DOMAIN_REC	"v=ER1; t=domain; salt=" SALT_B64
#define KEY_REC		"v=ER1; t=key; kid=c5e21ab1; alg=ed25519; " \
			    "pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="

static const struct domain_case domain_cases[] = {
	{ "domain and key", { DOMAIN_REC, KEY_REC }, REC_OK, 1 },
	{ "key first", { KEY_REC, DOMAIN_REC }, REC_OK, 1 },
	{ "domain only", { DOMAIN_REC }, REC_OK, 0 },
	{ "duplicate key kept once", { DOMAIN_REC, KEY_REC, KEY_REC },
	    REC_OK, 1 },
	{ "other TXT ignored", { "v=spf1 -all", "hello world", DOMAIN_REC,
	    KEY_REC }, REC_OK, 1 },
	{ "tabs and trailing semicolon", { "\tv=ER1 ;\tt=domain ; salt="
	    SALT_B64 " ;  " }, REC_OK, 0 },
	{ "unknown tag ignored", { "v=ER1; t=domain; x9=what ever; salt="
	    SALT_B64 }, REC_OK, 0 },
	{ "unknown kind ignored", { DOMAIN_REC, "v=ER1; t=future; a=b" },
	    REC_OK, 0 },
	{ "other algorithm ignored", { DOMAIN_REC, "v=ER1; t=key; "
	    "kid=00000000; alg=ed448; pub=AAAA" }, REC_OK, 0 },
	{ "rule at apex ignored", { DOMAIN_REC, "v=ER1; t=rule; kid=x" },
	    REC_OK, 0 },
	{ "nothing", { NULL }, REC_NONE, 0 },
	{ "keys without domain record", { KEY_REC }, REC_NONE, 0 },
	{ "other version", { "v=ER2; t=domain; salt=" SALT_B64 }, REC_NONE,
	    0 },
	{ "version not first", { "t=domain; v=ER1; salt=" SALT_B64 },
	    REC_NONE, 0 },
	{ "version lower case", { "v=er1; t=domain; salt=" SALT_B64 },
	    REC_NONE, 0 },
	{ "two domain records", { DOMAIN_REC, DOMAIN_REC }, REC_MALFORMED,
	    0 },
	{ "missing salt", { "v=ER1; t=domain" }, REC_MALFORMED, 0 },
	{ "missing kind", { "v=ER1; salt=" SALT_B64 }, REC_MALFORMED, 0 },
	{ "salt bad base64", { "v=ER1; t=domain; salt=AwMD*wMDAwMDAwMDAw==" },
	    REC_MALFORMED, 0 },
	{ "salt 15 bytes", { "v=ER1; t=domain; salt=AwMDAwMDAwMDAwMDAwMD" },
	    REC_MALFORMED, 0 },
	{ "salt 17 bytes", { "v=ER1; t=domain; salt=AwMDAwMDAwMDAwMDAwMDAwM=" },
	    REC_MALFORMED, 0 },
	{ "salt padding bits set", { "v=ER1; t=domain; "
	    "salt=AwMDAwMDAwMDAwMDAwMDAx==" }, REC_MALFORMED, 0 },
	{ "salt repeated", { DOMAIN_REC "; salt=" SALT_B64 }, REC_MALFORMED,
	    0 },
	{ "version repeated", { "v=ER1; v=ER1; t=domain; salt=" SALT_B64 },
	    REC_MALFORMED, 0 },
	{ "empty tag", { "v=ER1;; t=domain; salt=" SALT_B64 }, REC_MALFORMED,
	    0 },
	{ "upper-case tag name", { "v=ER1; t=domain; Salt=" SALT_B64 },
	    REC_MALFORMED, 0 },
	{ "tag without value sign", { "v=ER1; t=domain; salt" },
	    REC_MALFORMED, 0 },
	{ "control character", { "v=ER1; t=domain\x01; salt=" SALT_B64 },
	    REC_MALFORMED, 0 },
	{ "tab inside value", { "v=ER1; t=domain; salt=AwMD\tAwMDAwMDAwMDAw==" },
	    REC_MALFORMED, 0 },
	{ "key missing kid", { DOMAIN_REC, "v=ER1; t=key; alg=ed25519; "
	    "pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=" },
	    REC_MALFORMED, 0 },
	{ "key missing pub", { DOMAIN_REC, "v=ER1; t=key; kid=c5e21ab1; "
	    "alg=ed25519" }, REC_MALFORMED, 0 },
	{ "key missing alg", { DOMAIN_REC, "v=ER1; t=key; kid=c5e21ab1; "
	    "pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=" },
	    REC_MALFORMED, 0 },
	{ "key kid upper case", { DOMAIN_REC, "v=ER1; t=key; kid=C5E21AB1; "
	    "alg=ed25519; pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=" },
	    REC_MALFORMED, 0 },
	{ "key kid mismatch", { DOMAIN_REC, "v=ER1; t=key; kid=c5e21ab2; "
	    "alg=ed25519; pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=" },
	    REC_MALFORMED, 0 },
	{ "key pub 31 bytes", { DOMAIN_REC, "v=ER1; t=key; kid=c5e21ab1; "
	    "alg=ed25519; pub=iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPbw==" },
	    REC_MALFORMED, 0 },
};

static void
test_domain_parse_table(void)
{
	struct rec_domain d;
	size_t i, n, lens[4];

	for (i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++) {
		const struct domain_case *c = &domain_cases[i];
		enum rec_status st;

		for (n = 0; n < 4 && c->txts[n] != NULL; n++)
			lens[n] = strlen(c->txts[n]);
		st = rec_domain_parse(&d, c->txts, lens, n);
		if (st != c->want || d.nkeys != c->nkeys)
			fprintf(stderr, "  domain case \"%s\"\n", c->name);
		CHECK_INT(st, c->want);
		CHECK_INT(d.nkeys, c->nkeys);
	}
}

static void
test_domain_parse_values(void)
{
	const char *txts[] = { KEY_REC, DOMAIN_REC };
	size_t lens[] = { strlen(KEY_REC), strlen(DOMAIN_REC) };
	struct rec_domain d;

	CHECK_INT(rec_domain_parse(&d, txts, lens, 2), REC_OK);
	CHECK(memcmp(d.salt, salt, sizeof(salt)) == 0);
	CHECK_INT(d.keys[0].kid, 0xc5e21ab1);
	CHECK(memcmp(d.keys[0].pub, sign_pk, sizeof(sign_pk)) == 0);
}

static void
test_domain_parse_key_limit(void)
{
	char recs[REC_MAX_KEYS + 3][256];
	const char *txts[REC_MAX_KEYS + 3];
	size_t lens[REC_MAX_KEYS + 3], i;
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	struct rec_key k;
	struct rec_domain d;

	snprintf(recs[0], sizeof(recs[0]), "%s", DOMAIN_REC);
	for (i = 1; i < REC_MAX_KEYS + 3; i++) {
		crypto_sign_keypair(k.pub, sk);
		k.kid = rec_kid(k.pub, sizeof(k.pub));
		CHECK_INT(rec_key_format(recs[i], sizeof(recs[i]), &k), 0);
	}
	for (i = 0; i < REC_MAX_KEYS + 3; i++) {
		txts[i] = recs[i];
		lens[i] = strlen(recs[i]);
	}
	CHECK_INT(rec_domain_parse(&d, txts, lens, REC_MAX_KEYS + 3), REC_OK);
	CHECK_INT(d.nkeys, REC_MAX_KEYS);
}

static void
test_domain_parse_oversize(void)
{
	char *big = malloc(REC_MAX_TXT + 100);
	const char *txts[2];
	size_t lens[2];
	struct rec_domain d;

	snprintf(big, REC_MAX_TXT + 100, "%s; x=", DOMAIN_REC);
	memset(big + strlen(big), 'a', REC_MAX_TXT + 99 - strlen(big));
	big[REC_MAX_TXT + 99] = '\0';
	txts[0] = big;
	lens[0] = strlen(big);
	CHECK_INT(rec_domain_parse(&d, txts, lens, 1), REC_MALFORMED);
	/* The same length in a record that is not ER1 is ignored. */
	big[2] = '2';
	txts[1] = DOMAIN_REC;
	lens[1] = strlen(DOMAIN_REC);
	CHECK_INT(rec_domain_parse(&d, txts, lens, 2), REC_OK);
	free(big);
}

/* ---- Labels ---- */

static void
test_label_properties(void)
{
	char a[REC_LABEL_LEN + 1], b[REC_LABEL_LEN + 1];
	char long_local[300];
	size_t i;

	rec_label(a, salt, "alice", 5, 0);
	CHECK_INT(strlen(a), REC_LABEL_LEN);
	for (i = 0; i < REC_LABEL_LEN; i++)
		CHECK((a[i] >= 'a' && a[i] <= 'z') ||
		    (a[i] >= '2' && a[i] <= '7'));
	rec_label(b, salt, "ALICE", 5, 0);
	CHECK_STR(b, a);
	rec_label(b, salt, "alice+tag", 9, 0);
	CHECK(strcmp(a, b) != 0);
	/* The catch-all ignores local and differs from the empty local part. */
	rec_label(a, salt, "", 0, 1);
	rec_label(b, salt, "anything", 8, 1);
	CHECK_STR(b, a);
	rec_label(b, salt, "", 0, 0);
	CHECK(strcmp(a, b) != 0);
	/* Lower-casing in chunks gives the same label as one piece would. */
	memset(long_local, 'A', sizeof(long_local));
	rec_label(a, salt, long_local, sizeof(long_local), 0);
	memset(long_local, 'a', sizeof(long_local));
	rec_label(b, salt, long_local, sizeof(long_local), 0);
	CHECK_STR(b, a);
	/* Another salt gives another label. */
	salt[0] ^= 1;
	rec_label(b, salt, long_local, sizeof(long_local), 0);
	salt[0] ^= 1;
	CHECK(strcmp(a, b) != 0);
}

static void
test_owner_name(void)
{
	char out[300], big[260];

	CHECK_INT(rec_owner_name(out, sizeof(out), salt, "Alice", 5, 0,
	    "Example.COM."), 0);
	CHECK_STR(out, owner_alice);
	CHECK_INT(rec_owner_name(out, 20, salt, "alice", 5, 0, "example.com"),
	    -1);
	memset(big, 'a', sizeof(big));
	big[222] = '\0';
	CHECK_INT(rec_owner_name(out, sizeof(out), salt, "a", 1, 0, big), 0);
	CHECK_INT(strlen(out), 254);
	big[222] = 'a';
	big[223] = '\0';
	CHECK_INT(rec_owner_name(out, sizeof(out), salt, "a", 1, 0, big), -1);
}

/* ---- Rule records: parsing ---- */

static void
test_rule_parse_good(void)
{
	const char *dsts[] = { "a@mailbox.example" };
	struct rec_key relays[] = { relay_a_pub, relay_b_pub };
	struct rec_rule_fields f;
	char rec[REC_MAX_TXT + 1];

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 1, NULL, relays, 2);
	CHECK_INT(rec_rule_parse(&f, rec, strlen(rec)), REC_OK);
	CHECK_INT(f.kid, sign_key.kid);
	CHECK_INT(f.expires, LATER);
	CHECK_INT(f.action, REC_ACT_FORWARD);
	CHECK_INT(f.nsealed, 2);
	CHECK_INT(f.sealed[0].relay_kid, relay_a.kid);
	CHECK_INT(f.sealed[1].relay_kid, relay_b.kid);
	CHECK_INT(f.sealed[0].len, crypto_box_SEALBYTES + 8 + 12 + 17);
	CHECK_INT(f.msg_len, 0);

	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0, "Gone.", NULL, 0);
	CHECK_INT(rec_rule_parse(&f, rec, strlen(rec)), REC_OK);
	CHECK_INT(f.action, REC_ACT_REJECT);
	CHECK_STR(f.message, "Gone.");
	CHECK_INT(f.nsealed, 0);
}

struct rule_case {
	const char	*name;
	const char	*from;		/* replaced in a signed reject rule */
	const char	*to;
	enum rec_status	 want;
};

static const struct rule_case rule_cases[] = {
	{ "unchanged", "", "", REC_OK },
	{ "unknown tag", "; sig=", "; zz=1; sig=", REC_OK },
	{ "other version", "v=ER1", "v=ER2", REC_NONE },
	{ "key record kind", "t=rule", "t=key", REC_NONE },
	{ "unknown kind", "t=rule", "t=rules", REC_NONE },
	{ "missing kind", "t=rule; ", "", REC_MALFORMED },
	{ "missing kid", "kid=c5e21ab1; ", "", REC_MALFORMED },
	{ "missing exp", "exp=", "xp=", REC_MALFORMED },
	{ "missing act", "act=reject; ", "", REC_MALFORMED },
	{ "missing sig", "; sig=", "; sg=", REC_MALFORMED },
	{ "kid too short", "kid=c5e21ab1", "kid=c5e21ab", REC_MALFORMED },
	{ "kid not hex", "kid=c5e21ab1", "kid=c5e21abg", REC_MALFORMED },
	{ "exp leading zero", "exp=", "exp=0", REC_MALFORMED },
	{ "exp not a number", "exp=", "exp=-", REC_MALFORMED },
	{ "exp overflow", "exp=1700086400", "exp=18446744073709551616",
	    REC_MALFORMED },
	{ "unknown action", "act=reject", "act=bounce", REC_MALFORMED },
	{ "action upper case", "act=reject", "act=REJECT", REC_MALFORMED },
	{ "repeated exp", "; act=", "; exp=1; act=", REC_MALFORMED },
	{ "repeated sig", "; act=", "; sig=AAAA; act=", REC_MALFORMED },
	{ "msg bad base64", "msg=R29u", "msg=R2*u", REC_MALFORMED },
	{ "msg empty", "msg=R29uZS4=", "msg=", REC_MALFORMED },
	{ "msg control character", "msg=R29uZS4=", "msg=R28KZS4=",
	    REC_MALFORMED },
	{ "dst on reject", "; sig=", "; dst=f20f6a39:AAAA; sig=",
	    REC_MALFORMED },
	{ "sig without padding", "==", "", REC_MALFORMED },
	{ "sig bad base64", "; sig=", "; sig=*", REC_MALFORMED },
};

static void
test_rule_parse_table(void)
{
	struct rec_rule_fields f;
	char rec[REC_MAX_TXT + 1], edited[REC_MAX_TXT + 64];
	size_t i;

	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0, "Gone.", NULL, 0);
	for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		const struct rule_case *c = &rule_cases[i];
		enum rec_status st;

		if (*c->from != '\0')
			CHECK(strstr(rec, c->from) != NULL);
		replace(edited, sizeof(edited), rec, c->from, c->to);
		st = rec_rule_parse(&f, edited, strlen(edited));
		if (st != c->want)
			fprintf(stderr, "  rule case \"%s\": %s\n", c->name,
			    edited);
		CHECK_INT(st, c->want);
	}
}

static void
test_rule_parse_action_tags(void)
{
	const char *dsts[] = { "a@mailbox.example" };
	struct rec_rule_fields f;
	char rec[REC_MAX_TXT + 1], edited[REC_MAX_TXT + 64], dst[400];
	char *p;

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 1, NULL,
	    &relay_a_pub, 1);
	/* msg on forward, forward without dst, dst without colon. */
	replace(edited, sizeof(edited), rec, "; sig=", "; msg=R29uZS4=; sig=");
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	p = strstr(rec, "; dst=");
	snprintf(dst, sizeof(dst), "%.*s", (int)(strstr(p, "; sig=") - p), p);
	replace(edited, sizeof(edited), rec, dst, "");
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	replace(edited, sizeof(edited), rec, "f20f6a39:", "f20f6a39");
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	/* The same relay kid twice. */
	p = strstr(rec, "; sig=");
	snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(p - rec), rec, dst,
	    p);
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	/* A box shorter than a sealed box can be. */
	replace(edited, sizeof(edited), rec, dst, "; dst=f20f6a39:AAAA");
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	/* A drop rule with a message. */
	sign_alice(rec, sizeof(rec), REC_ACT_DROP, NULL, 0, NULL, NULL, 0);
	replace(edited, sizeof(edited), rec, "; sig=", "; msg=R29uZS4=; sig=");
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
}

static void
test_rule_parse_limits(void)
{
	char msg[REC_MAX_MSG + 2], b64[400], rec[REC_MAX_TXT + 1];
	char edited[REC_MAX_TXT + 600], *big;
	struct rec_rule_fields f;
	size_t i;

	/* REC_MAX_MSG bytes of text parse, one more do not. */
	memset(msg, 'x', sizeof(msg));
	msg[REC_MAX_MSG] = '\0';
	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0, msg, NULL, 0);
	CHECK_INT(rec_rule_parse(&f, rec, strlen(rec)), REC_OK);
	msg[REC_MAX_MSG] = 'x';
	msg[REC_MAX_MSG + 1] = '\0';
	base64(b64, sizeof(b64), msg, strlen(msg));
	snprintf(edited, sizeof(edited), "v=ER1; t=rule; kid=c5e21ab1; "
	    "exp=1; act=reject; msg=%s; sig=%s", b64, strstr(rec, "sig=") + 4);
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	/* More than REC_MAX_RELAYS dst tags. */
	snprintf(edited, sizeof(edited), "v=ER1; t=rule; kid=c5e21ab1; "
	    "exp=1; act=forward");
	for (i = 0; i <= REC_MAX_RELAYS; i++)
		snprintf(edited + strlen(edited), sizeof(edited) - strlen(edited),
		    "; dst=%08zx:%s", i, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	strcat(edited, "; sig=");
	strcat(edited, strstr(rec, "sig=") + 4);
	CHECK_INT(rec_rule_parse(&f, edited, strlen(edited)), REC_MALFORMED);
	/* A record longer than REC_MAX_TXT. */
	big = malloc(REC_MAX_TXT + 2);
	strcpy(big, rec);
	strcat(big, "; pad=");
	memset(big + strlen(big), 'p', REC_MAX_TXT + 1 - strlen(big));
	big[REC_MAX_TXT + 1] = '\0';
	CHECK_INT(rec_rule_parse(&f, big, strlen(big)), REC_MALFORMED);
	free(big);
}

/* ---- Sign, then verify ---- */

static void
test_sign_verify_forward(void)
{
	const char *dsts[] = { "a@mailbox.example", "B.Two@mail.example",
	    "c+x@[192.0.2.1]" };
	struct rec_key relays[] = { relay_b_pub, relay_a_pub };
	char rec[REC_MAX_TXT + 1];
	struct rec_rule r;

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 3, NULL, relays, 2);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_INT(r.action, REC_ACT_FORWARD);
	CHECK_INT(r.kid, sign_key.kid);
	CHECK_INT(r.expires, LATER);
	CHECK_INT(r.ndsts, 3);
	CHECK_STR(r.dsts[0], "a@mailbox.example");
	CHECK_STR(r.dsts[1], "B.Two@mail.example");
	CHECK_STR(r.dsts[2], "c+x@[192.0.2.1]");
	/* The second relay opens its own copy. */
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner_alice, "example.com",
	    rec, strlen(rec), &relay_b, NOW), REC_OK);
	CHECK_INT(r.ndsts, 3);
	/* The owner and domain compare without regard to case or root dot. */
	CHECK_INT(rec_rule_verify(&r, &domain_keys,
	    "W52E6JQYWW5J5DUXWBYTWXECIY._ER.EXAMPLE.COM", "Example.Com.",
	    rec, strlen(rec), &relay_a, NOW), REC_OK);
}

static void
test_sign_verify_reject_drop(void)
{
	char rec[REC_MAX_TXT + 1];
	struct rec_rule r;

	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0,
	    "No longer in use", NULL, 0);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_INT(r.action, REC_ACT_REJECT);
	CHECK_STR(r.message, "No longer in use");
	CHECK_INT(r.ndsts, 0);
	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0, NULL, NULL, 0);
	CHECK(strstr(rec, "msg=") == NULL);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_STR(r.message, "");
	sign_alice(rec, sizeof(rec), REC_ACT_DROP, NULL, 0, NULL, NULL, 0);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_INT(r.action, REC_ACT_DROP);
	/* Drop and reject need no relay key. */
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner_alice, "example.com",
	    rec, strlen(rec), NULL, NOW), REC_OK);
}

static void
test_sign_rejects_bad_input(void)
{
	const char *good[] = { "a@mailbox.example" };
	const char *bad[] = { "a b@mailbox.example" };
	struct rec_key wrong = relay_a_pub;
	struct rec_key twice[] = { relay_a_pub, relay_a_pub };
	char rec[REC_MAX_TXT + 1], msg[REC_MAX_MSG + 2];
	const char *owner = owner_alice;

#define SIGN(act, d, n, m, rel, nrel) rec_rule_sign(rec, sizeof(rec), owner, \
	    "example.com", sign_key.kid, sign_sk, LATER, act, d, n, m, rel, nrel)
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 1, NULL, &relay_a_pub, 1), 0);
	CHECK_INT(SIGN(REC_ACT_FORWARD, bad, 1, NULL, &relay_a_pub, 1), -1);
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 0, NULL, &relay_a_pub, 1), -1);
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 1, NULL, NULL, 0), -1);
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 1, NULL, twice, 2), -1);
	wrong.kid ^= 1;
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 1, NULL, &wrong, 1), -1);
	CHECK_INT(SIGN(REC_ACT_FORWARD, good, 1, "text", &relay_a_pub, 1), -1);
	CHECK_INT(SIGN(REC_ACT_DROP, good, 1, NULL, NULL, 0), -1);
	CHECK_INT(SIGN(REC_ACT_DROP, NULL, 0, "text", NULL, 0), -1);
	CHECK_INT(SIGN(REC_ACT_REJECT, NULL, 0, "tab\there", NULL, 0), -1);
	memset(msg, 'x', sizeof(msg));
	msg[REC_MAX_MSG + 1] = '\0';
	CHECK_INT(SIGN(REC_ACT_REJECT, NULL, 0, msg, NULL, 0), -1);
	CHECK_INT(SIGN((enum rec_action)4, NULL, 0, NULL, NULL, 0), -1);
	owner = "a..b.";
	CHECK_INT(SIGN(REC_ACT_DROP, NULL, 0, NULL, NULL, 0), -1);
	/* Too small an output buffer. */
	owner = owner_alice;
	CHECK_INT(rec_rule_sign(rec, 100, owner, "example.com", sign_key.kid,
	    sign_sk, LATER, REC_ACT_DROP, NULL, 0, NULL, NULL, 0), -1);
#undef SIGN
}

/* ---- Every rec_status from rec_rule_verify() ---- */

static void
test_verify_tampered_fields(void)
{
	const char *dsts[] = { "a@mailbox.example" };
	char rec[REC_MAX_TXT + 1], bad[REC_MAX_TXT + 64];
	struct rec_rule r;

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 1, NULL,
	    &relay_a_pub, 1);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);

	replace(bad, sizeof(bad), rec, "exp=1700086400", "exp=1700086401");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	snprintf(bad, sizeof(bad), "%s", rec);
	tamper_value(bad, "; dst=f20f6a39:", 5);
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	snprintf(bad, sizeof(bad), "%s", rec);
	tamper_value(bad, "; sig=", 10);
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	replace(bad, sizeof(bad), rec, "dst=f20f6a39", "dst=f20f6a3a");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	replace(bad, sizeof(bad), rec, "kid=c5e21ab1", "kid=c5e21ab2");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_UNKNOWN_KEY);
	CHECK_INT(r.ndsts, 0);

	sign_alice(rec, sizeof(rec), REC_ACT_REJECT, NULL, 0, "Gone.", NULL, 0);
	replace(bad, sizeof(bad), rec, "msg=R29uZS4=", "msg=R29uZS8=");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	replace(bad, sizeof(bad), rec, "act=reject; msg=R29uZS4=", "act=drop");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
	sign_alice(rec, sizeof(rec), REC_ACT_DROP, NULL, 0, NULL, NULL, 0);
	replace(bad, sizeof(bad), rec, "act=drop", "act=reject");
	CHECK_INT(verify_alice(&r, bad, NOW), REC_BAD_SIGNATURE);
}

static void
test_verify_moved_and_expired(void)
{
	const char *dsts[] = { "a@mailbox.example" };
	char rec[REC_MAX_TXT + 1];
	struct rec_rule r;
	struct rec_domain no_keys = domain_keys;

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 1, NULL,
	    &relay_a_pub, 1);
	CHECK_INT(rec_rule_verify(&r, &domain_keys,
	    "mvz7mowymr22xhzgaefzvhdtne._er.example.com.", "example.com", rec,
	    strlen(rec), &relay_a, NOW), REC_BAD_SIGNATURE);
	CHECK_INT(rec_rule_verify(&r, &domain_keys,
	    "w52e6jqyww5j5duxwbytwxeciy._er.example.net.", "example.net", rec,
	    strlen(rec), &relay_a, NOW), REC_BAD_SIGNATURE);
	CHECK_INT(verify_alice(&r, rec, LATER), REC_OK);
	CHECK_INT(verify_alice(&r, rec, LATER + 1), REC_EXPIRED);
	CHECK_INT(r.ndsts, 0);
	no_keys.nkeys = 0;
	CHECK_INT(rec_rule_verify(&r, &no_keys, owner_alice, "example.com",
	    rec, strlen(rec), &relay_a, NOW), REC_UNKNOWN_KEY);
	/* An owner that is not a domain name cannot be verified. */
	CHECK_INT(rec_rule_verify(&r, &domain_keys, "a..b", "example.com",
	    rec, strlen(rec), &relay_a, NOW), REC_MALFORMED);
}

static void
test_verify_other_relay(void)
{
	const char *dsts[] = { "a@mailbox.example" };
	char rec[REC_MAX_TXT + 1];
	struct rec_rule r;

	sign_alice(rec, sizeof(rec), REC_ACT_FORWARD, dsts, 1, NULL,
	    &relay_b_pub, 1);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_NOT_FOR_RELAY);
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner_alice, "example.com",
	    rec, strlen(rec), NULL, NOW), REC_NOT_FOR_RELAY);
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner_alice, "example.com",
	    rec, strlen(rec), &relay_b, NOW), REC_OK);
}

/*
 * Build and sign a forward rule at owner_alice whose one sealed copy is
 * plain sealed to seal_to but labelled with relay kid label_kid.
 */
static void
craft_forward(char *out, size_t outsz, const void *plain, size_t plen,
    const struct rec_key *seal_to, uint32_t label_kid)
{
	struct rec_rule_fields f;
	unsigned char m[REC_MAX_SIGNED];
	char box64[REC_MAX_TXT], sig64[100];
	long mlen;
	int n;

	memset(&f, 0, sizeof(f));
	f.kid = sign_key.kid;
	f.expires = LATER;
	f.action = REC_ACT_FORWARD;
	f.nsealed = 1;
	f.sealed[0].relay_kid = label_kid;
	f.sealed[0].len = plen + crypto_box_SEALBYTES;
	crypto_box_seal(f.boxes, plain, plen, seal_to->pub);
	mlen = rec_rule_message(&f, owner_alice, m, sizeof(m));
	CHECK(mlen > 0);
	crypto_sign_detached(f.sig, NULL, m, (unsigned long long)mlen,
	    sign_sk);
	base64(box64, sizeof(box64), f.boxes, f.sealed[0].len);
	base64(sig64, sizeof(sig64), f.sig, sizeof(f.sig));
	n = snprintf(out, outsz, "v=ER1; t=rule; kid=%08" PRIx32 "; exp=%llu; "
	    "act=forward; dst=%08" PRIx32 ":%s; sig=%s", f.kid,
	    (unsigned long long)LATER, label_kid, box64, sig64);
	CHECK(n > 0);
	CHECK((size_t)n < outsz);
}

#define PLAIN(s)	s, sizeof(s) - 1

static void
test_verify_sealed_content(void)
{
	static const struct {
		const char	*name;
		const char	*plain;
		size_t		 len;
		enum rec_status	 want;
	} cases[] = {
		{ "good", PLAIN("ER1 dst\0example.com\0a@x.example\nb@y.example"),
		    REC_OK },
		{ "wrong domain", PLAIN("ER1 dst\0example.org\0a@x.example"),
		    REC_DECRYPT_FAILED },
		{ "domain upper case", PLAIN("ER1 dst\0Example.com\0a@x.example"),
		    REC_DECRYPT_FAILED },
		{ "domain with dot", PLAIN("ER1 dst\0example.com.\0a@x.example"),
		    REC_DECRYPT_FAILED },
		{ "wrong prefix", PLAIN("ER2 dst\0example.com\0a@x.example"),
		    REC_DECRYPT_FAILED },
		{ "no addresses", PLAIN("ER1 dst\0example.com\0"),
		    REC_DECRYPT_FAILED },
		{ "no domain end", PLAIN("ER1 dst\0example.com"),
		    REC_DECRYPT_FAILED },
		{ "trailing newline", PLAIN("ER1 dst\0example.com\0a@x.example\n"),
		    REC_DECRYPT_FAILED },
		{ "empty line", PLAIN("ER1 dst\0example.com\0a@x\n\nb@y"),
		    REC_DECRYPT_FAILED },
		{ "no at sign", PLAIN("ER1 dst\0example.com\0ax.example"),
		    REC_DECRYPT_FAILED },
		{ "two at signs", PLAIN("ER1 dst\0example.com\0a@b@x.example"),
		    REC_DECRYPT_FAILED },
		{ "empty local", PLAIN("ER1 dst\0example.com\0@x.example"),
		    REC_DECRYPT_FAILED },
		{ "empty domain", PLAIN("ER1 dst\0example.com\0a@"),
		    REC_DECRYPT_FAILED },
		{ "space", PLAIN("ER1 dst\0example.com\0a b@x.example"),
		    REC_DECRYPT_FAILED },
		{ "angle bracket", PLAIN("ER1 dst\0example.com\0<a@x.example>"),
		    REC_DECRYPT_FAILED },
		{ "comma", PLAIN("ER1 dst\0example.com\0a@x,b@y"),
		    REC_DECRYPT_FAILED },
		{ "carriage return", PLAIN("ER1 dst\0example.com\0a@x\r"),
		    REC_DECRYPT_FAILED },
		{ "NUL byte", PLAIN("ER1 dst\0example.com\0a@x\0"),
		    REC_DECRYPT_FAILED },
	};
	char rec[REC_MAX_TXT + 1];
	struct rec_rule r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum rec_status st;

		craft_forward(rec, sizeof(rec), cases[i].plain, cases[i].len,
		    &relay_a_pub, relay_a.kid);
		st = verify_alice(&r, rec, NOW);
		if (st != cases[i].want)
			fprintf(stderr, "  sealed case \"%s\"\n", cases[i].name);
		CHECK_INT(st, cases[i].want);
	}
	/* Sealed to relay B but labelled for relay A: does not open. */
	craft_forward(rec, sizeof(rec),
	    PLAIN("ER1 dst\0example.com\0a@x.example"), &relay_b_pub,
	    relay_a.kid);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_DECRYPT_FAILED);
	CHECK_INT(r.ndsts, 0);
}

static void
test_verify_destination_limits(void)
{
	char plain[REC_MAX_TXT], rec[REC_MAX_TXT + 1], addr[REC_MAX_ADDR + 2];
	size_t len, i;
	struct rec_rule r;

	/* REC_MAX_DSTS addresses open, one more does not. */
	len = (size_t)snprintf(plain, sizeof(plain), "ER1 dst%cexample.com%c",
	    0, 0);
	for (i = 0; i < REC_MAX_DSTS; i++)
		len += (size_t)snprintf(plain + len, sizeof(plain) - len,
		    "%sa%zu@x.example", i ? "\n" : "", i);
	craft_forward(rec, sizeof(rec), plain, len, &relay_a_pub, relay_a.kid);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_INT(r.ndsts, REC_MAX_DSTS);
	CHECK_STR(r.dsts[REC_MAX_DSTS - 1], "a31@x.example");
	len += (size_t)snprintf(plain + len, sizeof(plain) - len, "\nz@x");
	craft_forward(rec, sizeof(rec), plain, len, &relay_a_pub, relay_a.kid);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_DECRYPT_FAILED);

	/* An address of REC_MAX_ADDR bytes opens, one more does not. */
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + REC_MAX_ADDR - 4, "@x.y", 4);
	addr[REC_MAX_ADDR] = '\0';
	len = (size_t)snprintf(plain, sizeof(plain), "ER1 dst%cexample.com%c%s",
	    0, 0, addr);
	craft_forward(rec, sizeof(rec), plain, len, &relay_a_pub, relay_a.kid);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_OK);
	CHECK_STR(r.dsts[0], addr);
	CHECK_INT(rec_addr_valid(addr, REC_MAX_ADDR), 1);
	memmove(addr + 1, addr, REC_MAX_ADDR + 1);
	len = (size_t)snprintf(plain, sizeof(plain), "ER1 dst%cexample.com%c%s",
	    0, 0, addr);
	craft_forward(rec, sizeof(rec), plain, len, &relay_a_pub, relay_a.kid);
	CHECK_INT(verify_alice(&r, rec, NOW), REC_DECRYPT_FAILED);
}

static void
test_status_strings(void)
{
	int s;

	for (s = REC_OK; s <= REC_DECRYPT_FAILED; s++)
		CHECK(strcmp(rec_status_str((enum rec_status)s),
		    "unknown status") != 0);
	CHECK_STR(rec_status_str(REC_EXPIRED), "expired");
	CHECK_STR(rec_status_str((enum rec_status)99), "unknown status");
}

/* ---- Key files ---- */

static char tmpdir[64];

static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp == NULL)
		return path;
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
	return path;
}

static void
relay_key_text(char *out, size_t outsz, const struct rec_relay_key *k,
    uint32_t kid)
{
	char sec[64], pub[64];

	base64(sec, sizeof(sec), k->sec, sizeof(k->sec));
	base64(pub, sizeof(pub), k->pub, sizeof(k->pub));
	snprintf(out, outsz, "# comment\n\n kid = %08" PRIx32 " \nsecret=%s\n"
	    "public=%s\nfuture=ignored\n", kid, sec, pub);
}

static void
test_relay_key_load(void)
{
	struct rec_relay_key k;
	char text[512], err[256], other[512];
	const char *path;

	relay_key_text(text, sizeof(text), &relay_a, relay_a.kid);
	path = write_file("relay.key", text, 0600);
	CHECK_INT(rec_relay_key_load(&k, path, err, sizeof(err)), 0);
	CHECK_INT(k.kid, relay_a.kid);
	CHECK(memcmp(k.sec, relay_a.sec, sizeof(k.sec)) == 0);
	CHECK(memcmp(k.pub, relay_a.pub, sizeof(k.pub)) == 0);

	path = write_file("relay.key", text, 0644);
	CHECK_INT(rec_relay_key_load(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "chmod 600") != NULL);

	relay_key_text(text, sizeof(text), &relay_a, relay_a.kid ^ 1);
	path = write_file("relay.key", text, 0600);
	CHECK_INT(rec_relay_key_load(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "kid does not match") != NULL);

	/* The public half of another key. */
	relay_key_text(text, sizeof(text), &relay_a, relay_a.kid);
	relay_key_text(other, sizeof(other), &relay_b, relay_a.kid);
	strcpy(strstr(text, "public="), strstr(other, "public="));
	path = write_file("relay.key", text, 0600);
	CHECK_INT(rec_relay_key_load(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "public does not match secret") != NULL);

	path = write_file("relay.key", "kid=00000000\nsecret=AAAA\n", 0600);
	CHECK_INT(rec_relay_key_load(&k, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "missing public") != NULL);

	CHECK_INT(rec_relay_key_load(&k, "/nonexistent/relay.key", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "/nonexistent/relay.key") != NULL);
}

static void
test_keyfile_read(void)
{
	struct rec_keyfile_field f[] = { { .name = "a" }, { .name = "b" } };
	char err[256], line[2000];
	const char *path;

	path = write_file("k", "# c\na=1\n  b =  two words \n", 0600);
	CHECK_INT(rec_keyfile_read(path, f, 2, err, sizeof(err)), 0);
	CHECK_STR(f[0].value, "1");
	CHECK_STR(f[1].value, "two words");

	path = write_file("k", "a=1\nb=2\na=3\n", 0600);
	CHECK_INT(rec_keyfile_read(path, f, 2, err, sizeof(err)), -1);
	CHECK(strstr(err, ":3: duplicate a") != NULL);

	path = write_file("k", "a=1\nb\n", 0600);
	CHECK_INT(rec_keyfile_read(path, f, 2, err, sizeof(err)), -1);
	CHECK(strstr(err, ":2: expected name=value") != NULL);

	memset(line, 'x', sizeof(line));
	memcpy(line, "a=", 2);
	line[sizeof(line) - 1] = '\0';
	path = write_file("k", line, 0600);
	CHECK_INT(rec_keyfile_read(path, f, 2, err, sizeof(err)), -1);
	CHECK(strstr(err, "line too long") != NULL);

	line[400] = '\0';
	path = write_file("k", line, 0600);
	CHECK_INT(rec_keyfile_read(path, f, 1, err, sizeof(err)), -1);
	CHECK(strstr(err, "value of a too long") != NULL);
}

/* ---- Test vectors ---- */

#define VEC_MAX		64
#define VEC_VALUE_MAX	2048

struct vectors {
	size_t	 n;
	char	 name[VEC_MAX][32];
	char	 value[VEC_MAX][VEC_VALUE_MAX];
};

static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long len;

	if (fp == NULL) {
		fprintf(stderr, "cannot open %s: run from the repository root\n",
		    path);
		return NULL;
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	if (fread(text, 1, (size_t)len, fp) != (size_t)len) {
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
}

/* Parse the vector file format described at its top. */
static int
load_vectors(struct vectors *v, const char *text)
{
	const char *p = text, *nl, *eq;
	size_t len;

	v->n = 0;
	for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		len = (size_t)(nl - p);
		if (len == 0 || *p == '#')
			continue;
		if (*p == ' ') {
			while (*p == ' ')
				p++;
			if (v->n == 0 || strlen(v->value[v->n - 1]) +
			    (size_t)(nl - p) >= VEC_VALUE_MAX)
				return -1;
			strncat(v->value[v->n - 1], p, (size_t)(nl - p));
			continue;
		}
		eq = strstr(p, " =");
		if (eq == NULL || eq > nl || v->n == VEC_MAX ||
		    (size_t)(eq - p) >= sizeof(v->name[0]))
			return -1;
		snprintf(v->name[v->n], sizeof(v->name[0]), "%.*s",
		    (int)(eq - p), p);
		eq += 2;
		if (*eq == ' ')
			eq++;
		snprintf(v->value[v->n], VEC_VALUE_MAX, "%.*s",
		    (int)(nl - eq), eq);
		v->n++;
	}
	return 0;
}

/* The nth value (from 0) named name, or "" when there is none. */
static const char *
vec(const struct vectors *v, const char *name, int nth)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (strcmp(v->name[i], name) == 0 && nth-- == 0)
			return v->value[i];
	fprintf(stderr, "  vector %s missing\n", name);
	return "";
}

static void
hex(char *out, const unsigned char *bin, size_t len)
{
	sodium_bin2hex(out, len * 2 + 1, bin, len);
}

static void
check_vector_hex(const struct vectors *v, const char *name,
    const unsigned char *bin, size_t len)
{
	char h[VEC_VALUE_MAX];

	if (len * 2 >= sizeof(h)) {
		CHECK(!"vector too long");
		return;
	}
	hex(h, bin, len);
	CHECK_STR(h, vec(v, name, 0));
}

static void
check_vector_keys(const struct vectors *v)
{
	char kid[9];

	check_vector_hex(v, "ed25519_public", sign_pk, sizeof(sign_pk));
	snprintf(kid, sizeof(kid), "%08" PRIx32, sign_key.kid);
	CHECK_STR(kid, vec(v, "kid", 0));
	check_vector_hex(v, "x25519_public", relay_a.pub, sizeof(relay_a.pub));
	snprintf(kid, sizeof(kid), "%08" PRIx32, relay_a.kid);
	CHECK_STR(kid, vec(v, "relay_kid", 0));
	check_vector_hex(v, "salt", salt, sizeof(salt));
	check_vector_hex(v, "ed25519_seed", sign_sk, crypto_sign_SEEDBYTES);
	check_vector_hex(v, "x25519_secret", relay_a.sec, sizeof(relay_a.sec));
}

static void
check_vector_records(const struct vectors *v)
{
	char label[REC_LABEL_LEN + 1], txt[REC_MAX_TXT];

	rec_label(label, salt, "alice", 5, 0);
	CHECK_STR(label, vec(v, "label_alice", 0));
	rec_label(label, salt, "Alice", 5, 0);
	CHECK_STR(label, vec(v, "label_Alice", 0));
	rec_label(label, salt, NULL, 0, 1);
	CHECK_STR(label, vec(v, "label_catch_all", 0));
	CHECK_INT(rec_domain_format(txt, sizeof(txt), salt), 0);
	CHECK_STR(txt, vec(v, "domain_record", 0));
	CHECK_INT(rec_key_format(txt, sizeof(txt), &sign_key), 0);
	CHECK_STR(txt, vec(v, "key_record", 0));
}

/* Check M and the signature of a vector rule from its parsed fields. */
static void
check_vector_message(const struct vectors *v, const char *kind,
    const char *record, const char *owner)
{
	struct rec_rule_fields f;
	unsigned char m[REC_MAX_SIGNED], sig[crypto_sign_BYTES];
	char name[32];
	long mlen;

	CHECK_INT(rec_rule_parse(&f, record, strlen(record)), REC_OK);
	mlen = rec_rule_message(&f, owner, m, sizeof(m));
	CHECK(mlen > 0);
	if (mlen <= 0)
		return;
	snprintf(name, sizeof(name), "%s_m", kind);
	check_vector_hex(v, name, m, (size_t)mlen);
	crypto_sign_detached(sig, NULL, m, (unsigned long long)mlen, sign_sk);
	snprintf(name, sizeof(name), "%s_sig", kind);
	check_vector_hex(v, name, sig, sizeof(sig));
	CHECK(memcmp(sig, f.sig, sizeof(sig)) == 0);
}

static void
check_vector_reject(const struct vectors *v)
{
	const char *owner = vec(v, "reject_owner", 0);
	char rec[REC_MAX_TXT + 1], label[REC_LABEL_LEN + 1];
	uint64_t exp = strtoull(vec(v, "reject_expires", 0), NULL, 10);
	struct rec_rule r;

	rec_label(label, salt, "old", 3, 0);
	CHECK(strncmp(owner, label, REC_LABEL_LEN) == 0);
	/* Ed25519 is deterministic and a reject rule seals nothing. */
	CHECK_INT(rec_rule_sign(rec, sizeof(rec), owner, "example.com",
	    sign_key.kid, sign_sk, exp, REC_ACT_REJECT, NULL, 0,
	    vec(v, "reject_text", 0), NULL, 0), 0);
	CHECK_STR(rec, vec(v, "reject_record", 0));
	check_vector_message(v, "reject", vec(v, "reject_record", 0), owner);
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner, "example.com",
	    rec, strlen(rec), NULL, exp), REC_OK);
	CHECK_STR(r.message, vec(v, "reject_text", 0));
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner, "example.com",
	    rec, strlen(rec), NULL, exp + 1), REC_EXPIRED);
}

static void
check_vector_forward(const struct vectors *v)
{
	const char *owner = vec(v, "forward_owner", 0);
	const char *rec = vec(v, "forward_record", 0);
	uint64_t exp = strtoull(vec(v, "forward_expires", 0), NULL, 10);
	struct rec_rule r;

	CHECK(strncmp(owner, vec(v, "label_alice", 0), REC_LABEL_LEN) == 0);
	check_vector_message(v, "forward", rec, owner);
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner, "example.com",
	    rec, strlen(rec), &relay_a, exp), REC_OK);
	CHECK_INT(r.action, REC_ACT_FORWARD);
	CHECK_INT(r.expires, exp);
	CHECK_INT(r.ndsts, 2);
	CHECK_STR(r.dsts[0], vec(v, "forward_dst", 0));
	CHECK_STR(r.dsts[1], vec(v, "forward_dst", 1));
	CHECK_INT(rec_rule_verify(&r, &domain_keys, owner, "example.com",
	    rec, strlen(rec), &relay_b, exp), REC_NOT_FOR_RELAY);
}

/* Every line of the vector file must appear as a line of the doc. */
static void
check_vectors_in_doc(const char *vectors_text)
{
	char *doc = read_all(RECORDS_DOC), line[VEC_VALUE_MAX + 2];
	const char *p = vectors_text, *nl;

	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	for (; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		if (nl == p)
			continue;
		snprintf(line, sizeof(line), "\n%.*s\n", (int)(nl - p), p);
		if (strstr(doc, line) == NULL)
			fprintf(stderr, "  not in %s:%s", RECORDS_DOC, line);
		CHECK(strstr(doc, line) != NULL);
	}
	free(doc);
}

static void
test_vectors(void)
{
	static struct vectors v;
	char *text = read_all(VECTOR_FILE);

	CHECK(text != NULL);
	if (text == NULL)
		return;
	CHECK_INT(load_vectors(&v, text), 0);
	CHECK_STR(vec(&v, "domain", 0), "example.com");
	check_vector_keys(&v);
	check_vector_records(&v);
	check_vector_reject(&v);
	check_vector_forward(&v);
	check_vectors_in_doc(text);
	free(text);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_record.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	setup_keys();
	RUN(test_status_strings);
	RUN(test_domain_parse_table);
	RUN(test_domain_parse_values);
	RUN(test_domain_parse_key_limit);
	RUN(test_domain_parse_oversize);
	RUN(test_label_properties);
	RUN(test_owner_name);
	RUN(test_rule_parse_good);
	RUN(test_rule_parse_table);
	RUN(test_rule_parse_action_tags);
	RUN(test_rule_parse_limits);
	RUN(test_sign_verify_forward);
	RUN(test_sign_verify_reject_drop);
	RUN(test_sign_rejects_bad_input);
	RUN(test_verify_tampered_fields);
	RUN(test_verify_moved_and_expired);
	RUN(test_verify_other_relay);
	RUN(test_verify_sealed_content);
	RUN(test_verify_destination_limits);
	RUN(test_relay_key_load);
	RUN(test_keyfile_read);
	RUN(test_vectors);
	unlink(write_file("k", "", 0600));
	unlink(write_file("relay.key", "", 0600));
	rmdir(tmpdir);
	CHECK_SUMMARY();
}
