/*
 * Unit tests for SRS (router/srs.c): every row of PostSRSd's vectors in
 * tests/vectors/srs/postsrsd-vectors.tsv, round trips, timestamp
 * boundaries, secret rotation, malformed and overlong input, and loading
 * the secret file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "log.h"
#include "srs.h"

#define VECTORS		"tests/vectors/srs/postsrsd-vectors.tsv"
#define VECTOR_NOW	((time_t)1577836860)	/* 2020-01-01 00:01:00 UTC */
#define DAY		86400
#define OUTSZ		2100

static char tmpdir[] = "/tmp/test_srs.XXXXXX";

/* Write content to a file in tmpdir and return its path (static). */
static const char *
write_file(const char *name, const char *content, size_t len, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL || fwrite(content, 1, len, f) != len || fclose(f) != 0)
		abort();
	chmod(path, mode);
	return path;
}

/*
 * Free the context in srs (a zeroed srs has none), then load one for
 * domain with the secrets in content.
 */
static int
load(struct srs *srs, const char *domain, const char *content, char *err,
    size_t errsz)
{
	const char *path = write_file("secrets", content, strlen(content),
	    0600);

	err[0] = '\0';
	srs_free(srs);
	return srs_init(srs, domain, path, err, errsz);
}

static void
load_ok(struct srs *srs, const char *content)
{
	char err[256];

	if (load(srs, "example.com", content, err, sizeof(err)) < 0) {
		fprintf(stderr, "srs_init: %s\n", err);
		abort();
	}
}

/* ---- the PostSRSd vectors ---- */

struct reply_map {
	const char	*text;		/* reply without NOTFOUND/PERM */
	enum srs_result	 result;
};

static const struct reply_map reply_map[] = {
	{ "Need not rewrite local domain.", SRS_UNCHANGED },
	{ "Not an SRS address.", SRS_NOT_SRS },
	{ "Time stamp out of date.", SRS_EXPIRED },
	{ "Hash invalid in SRS address.", SRS_BAD_HASH },
	{ "No hash in SRS0 address.", SRS_MALFORMED },
	{ "No timestamp in SRS0 address.", SRS_MALFORMED },
	{ "No host in SRS0 address.", SRS_MALFORMED },
	{ "No user in SRS0 address.", SRS_MALFORMED },
	{ "No domain.", SRS_MALFORMED },
	{ "Too big.", SRS_TOO_LONG },
};

static int
at_our_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && strcasecmp(at + 1, "example.com") == 0;
}

/*
 * Map a PostSRSd reply onto our result, with three deliberate
 * differences.  The empty input is the null sender (SRS_UNCHANGED).  An
 * SRS address at another domain is not ours to reverse (SRS_NOT_SRS),
 * and PostSRSd 2.2.2 and later pass it through too.  Forwarding applies
 * RFC 5321 length limits that PostSRSd does not, which check_vector()
 * handles.
 */
static enum srs_result
expected_result(const char *dir, const char *input, const char *reply)
{
	const char *text = strchr(reply, ' ');
	size_t i;

	if (strncmp(reply, "OK ", 3) == 0)
		return SRS_OK;
	if (text == NULL)
		return (enum srs_result)-1;
	text++;
	if (strcmp(text, "No domain.") == 0 && input[0] == '\0')
		return SRS_UNCHANGED;
	if (strcmp(dir, "reverse") == 0 && !at_our_domain(input))
		return SRS_NOT_SRS;
	for (i = 0; i < sizeof(reply_map) / sizeof(reply_map[0]); i++)
		if (strcmp(text, reply_map[i].text) == 0)
			return reply_map[i].result;
	return (enum srs_result)-1;
}

/* True when a forward result exceeds 254 characters or 64 in the local part. */
static int
over_rfc_limits(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return strlen(addr) > 254 || (at != NULL && at - addr > 64);
}

static void
check_vector(const struct srs *srs, int lineno, const char *dir,
    const char *input, const char *reply)
{
	char out[OUTSZ] = "", back[OUTSZ] = "";
	enum srs_result want = expected_result(dir, input, reply), got;
	int forward = strcmp(dir, "forward") == 0;
	const char *want_out = reply + 3;

	if (forward)
		got = srs_forward(srs, input, out, sizeof(out), VECTOR_NOW);
	else
		got = srs_reverse(srs, input, out, sizeof(out), VECTOR_NOW);

	if (want == SRS_OK && forward && over_rfc_limits(want_out)) {
		/* Too long for us, but the hash must still match theirs. */
		want = SRS_TOO_LONG;
		CHECK_INT(srs_reverse(srs, want_out, back, sizeof(back),
		    VECTOR_NOW), SRS_OK);
		CHECK_STR(back, input);
	}
	if (got != want)
		fprintf(stderr, "vector line %d: %s \"%.60s\": got %s, want "
		    "%s\n", lineno, dir, input, srs_result_str(got),
		    srs_result_str(want));
	CHECK_INT(got, want);
	if (want == SRS_OK && got == SRS_OK && strcmp(out, want_out) != 0)
		fprintf(stderr, "vector line %d: got \"%s\"\n", lineno, out);
	if (want == SRS_OK)
		CHECK_STR(out, want_out);
}

/* Split a TSV line in place into at most n fields. */
static int
split_tabs(char *line, char **fields, int n)
{
	int i = 0;

	line[strcspn(line, "\r\n")] = '\0';
	fields[i++] = line;
	while (i < n && (line = strchr(line, '\t')) != NULL) {
		*line++ = '\0';
		fields[i++] = line;
	}
	return i;
}

static void
test_postsrsd_vectors(void)
{
	static char line[4096];
	struct srs srs = { 0 };
	char *f[4];
	FILE *fp = fopen(VECTORS, "r");
	int lineno = 0, rows = 0, header = 0;

	CHECK(fp != NULL);
	if (fp == NULL)
		return;
	load_ok(&srs, "tops3cr3t\n");
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (line[0] == '#')
			continue;
		if (!header++)
			continue;	/* the column names */
		CHECK(split_tabs(line, f, 4) >= 3);
		if (strcmp(f[0], "forward") != 0 &&
		    strcmp(f[0], "reverse") != 0) {
			CHECK(!"direction is forward or reverse");
			continue;
		}
		check_vector(&srs, lineno, f[0], f[1], f[2]);
		rows++;
	}
	fclose(fp);
	CHECK(rows >= 27);
	srs_free(&srs);
}

/* ---- behaviour beyond the vectors ---- */

static void
test_vector_hashes_match(void)
{
	struct srs srs = { 0 };
	char out[OUTSZ];

	load_ok(&srs, "tops3cr3t\n");
	CHECK_INT(srs_forward(&srs, "test@otherdomain.com", out, sizeof(out),
	    VECTOR_NOW), SRS_OK);
	CHECK_STR(out, "SRS0=vmyz=2W=otherdomain.com=test@example.com");
	/* same day, last second */
	CHECK_INT(srs_forward(&srs, "test@otherdomain.com", out, sizeof(out),
	    VECTOR_NOW - 60 + DAY - 1), SRS_OK);
	CHECK_STR(out, "SRS0=vmyz=2W=otherdomain.com=test@example.com");
	srs_free(&srs);
}

/*
 * The keyed SHA-1 states give the hash of OpenSSL's one-shot HMAC() for
 * secrets shorter than, as long as and longer than the 64-byte block.
 */
static void
test_hash_matches_hmac(void)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	static const size_t lens[] = { 1, 20, 63, 64, 65, 100, 128 };
	/* lower-cased stamp, host and user of test@otherdomain.com */
	static const char data[] = "2wotherdomain.comtest";
	struct srs srs = { 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char secret[130], out[OUTSZ], want[5];
	size_t i, j;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (j = 0; j < lens[i]; j++)
			secret[j] = (char)('!' + (j * 7 + i) % 90);
		secret[lens[i]] = '\n';
		secret[lens[i] + 1] = '\0';
		load_ok(&srs, secret);
		CHECK(HMAC(EVP_sha1(), secret, (int)lens[i],
		    (const unsigned char *)data, strlen(data), md, &mdlen) !=
		    NULL);
		want[0] = b64url[md[0] >> 2];
		want[1] = b64url[((md[0] & 0x03) << 4) | (md[1] >> 4)];
		want[2] = b64url[((md[1] & 0x0f) << 2) | (md[2] >> 6)];
		want[3] = b64url[md[2] & 0x3f];
		want[4] = '\0';
		CHECK_INT(srs_forward(&srs, "test@otherdomain.com", out,
		    sizeof(out), VECTOR_NOW), SRS_OK);
		if (strncmp(out + 5, want, 4) != 0)
			fprintf(stderr, "secret of %zu bytes: got %s, want "
			    "hash %s\n", lens[i], out, want);
		CHECK(strncmp(out + 5, want, 4) == 0);
	}
	srs_free(&srs);
}

static void
round_trip(const struct srs *srs, const char *sender, time_t now)
{
	char fwd[OUTSZ], back[OUTSZ];

	CHECK_INT(srs_forward(srs, sender, fwd, sizeof(fwd), now), SRS_OK);
	CHECK_INT(srs_reverse(srs, fwd, back, sizeof(back), now), SRS_OK);
	CHECK_STR(back, sender);
}

static void
test_round_trips(void)
{
	struct srs srs = { 0 };
	time_t now = time(NULL);

	load_ok(&srs, "first secret\nsecond\n");
	round_trip(&srs, "alice@sender.example", now);
	round_trip(&srs, "Alice.Smith@Sender.Example", now);
	round_trip(&srs, "a+tag=x@sender.example", now);
	round_trip(&srs, "=@sender.example", now);
	round_trip(&srs, "with space@sender.example", now);
	round_trip(&srs, "at@sign@sender.example", now);	/* decoded */
	round_trip(&srs, "bob@[192.0.2.1]", now);
	round_trip(&srs, "SRS0=opaque@first.example", now);
	srs_free(&srs);
}

/* A foreign SRS0 address becomes SRS1 and reverses to the first hop. */
static void
test_srs1_chain(void)
{
	struct srs srs = { 0 };
	char fwd[OUTSZ], again[OUTSZ], back[OUTSZ];

	load_ok(&srs, "k\n");
	CHECK_INT(srs_forward(&srs, "SRS0=HHHH=TT=orig.example=u@hop1.example",
	    fwd, sizeof(fwd), VECTOR_NOW), SRS_OK);
	CHECK(strncmp(fwd, "SRS1=", 5) == 0);
	CHECK(strstr(fwd, "=hop1.example==HHHH=TT=orig.example=u@example.com")
	    != NULL);
	/* from an SRS1 at another domain, the first hop stays */
	CHECK_INT(srs_forward(&srs, "SRS1=zzzz=hop1.example==HHHH=TT=o=u@"
	    "hop2.example", again, sizeof(again), VECTOR_NOW), SRS_OK);
	CHECK(strstr(again, "=hop1.example==HHHH=TT=o=u@example.com") != NULL);
	/* any libsrs2 separator after the tag, any case */
	CHECK_INT(srs_forward(&srs, "srs1-x=first.example==y@second.example",
	    again, sizeof(again), VECTOR_NOW), SRS_OK);
	CHECK(strncmp(again, "SRS1=", 5) == 0);
	CHECK(strstr(again, "=first.example==y@example.com") != NULL);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_OK);
	CHECK_STR(back, "SRS0=HHHH=TT=orig.example=u@hop1.example");
	/* SRS1 carries no timestamp: it verifies years later */
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    VECTOR_NOW + 3000 * DAY), SRS_OK);
	/* the tag of the first hop comes back in upper case */
	CHECK_INT(srs_forward(&srs, "srs0+opaque@first.example", fwd,
	    sizeof(fwd), VECTOR_NOW), SRS_OK);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_OK);
	CHECK_STR(back, "SRS0+opaque@first.example");
	srs_free(&srs);
}

/* An SRS1 lookalike without host or opaque part is wrapped like any sender. */
static void
test_foreign_srs1_unparsed(void)
{
	struct srs srs = { 0 };
	char out[OUTSZ];

	load_ok(&srs, "k\n");
	CHECK_INT(srs_forward(&srs, "SRS1=abc@other.example", out,
	    sizeof(out), VECTOR_NOW), SRS_OK);
	CHECK(strncmp(out, "SRS0=", 5) == 0);
	CHECK(strstr(out, "=other.example=SRS1=abc@example.com") != NULL);
	CHECK_INT(srs_forward(&srs, "SRS1=h==u@other.example", out,
	    sizeof(out), VECTOR_NOW), SRS_OK);
	CHECK(strncmp(out, "SRS0=", 5) == 0);
	CHECK_INT(srs_forward(&srs, "SRS1=h=host=@other.example", out,
	    sizeof(out), VECTOR_NOW), SRS_OK);
	CHECK(strncmp(out, "SRS0=", 5) == 0);
	/* not a tag: no separator after SRS0 */
	CHECK_INT(srs_forward(&srs, "SRS0x@other.example", out, sizeof(out),
	    VECTOR_NOW), SRS_OK);
	CHECK(strncmp(out, "SRS0=", 5) == 0);
	srs_free(&srs);
}

static void
test_expiry_boundaries(void)
{
	struct srs srs = { 0 };
	time_t day0 = (VECTOR_NOW / DAY) * DAY;	/* start of a day */
	char fwd[OUTSZ], back[OUTSZ];

	load_ok(&srs, "k\n");
	CHECK_INT(srs_forward(&srs, "u@sender.example", fwd, sizeof(fwd),
	    day0 + DAY - 1), SRS_OK);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back), day0), SRS_OK);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    day0 + 21 * DAY + DAY - 1), SRS_OK);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back), day0 + 22 * DAY),
	    SRS_EXPIRED);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back), day0 - 1),
	    SRS_EXPIRED);	/* one day in the future */
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    day0 + 500 * DAY), SRS_EXPIRED);
	/* The 10-bit day number wraps after 1024 days, as in libsrs2. */
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    day0 + 1024 * DAY), SRS_OK);
	srs_free(&srs);
}

/* Timestamps around the wrap of the day number from 1023 to 0. */
static void
test_expiry_across_wrap(void)
{
	struct srs srs = { 0 };
	time_t wrap = (time_t)1024 * 18 * DAY;	/* day number 0 */
	char fwd[OUTSZ], back[OUTSZ];

	load_ok(&srs, "k\n");
	CHECK_INT(srs_forward(&srs, "u@sender.example", fwd, sizeof(fwd),
	    wrap - 3 * DAY), SRS_OK);
	CHECK(strstr(fwd, "=75=") != NULL);		/* day 1021 */
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    wrap + 18 * DAY), SRS_OK);
	CHECK_INT(srs_reverse(&srs, fwd, back, sizeof(back),
	    wrap + 19 * DAY), SRS_EXPIRED);
	srs_free(&srs);
}

static void
test_wrong_secret(void)
{
	struct srs a = { 0 }, b = { 0 };
	char fwd[OUTSZ], back[OUTSZ];

	load_ok(&a, "secret-a\n");
	load_ok(&b, "secret-b\n");
	CHECK_INT(srs_forward(&a, "u@sender.example", fwd, sizeof(fwd),
	    VECTOR_NOW), SRS_OK);
	CHECK_INT(srs_reverse(&b, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_BAD_HASH);
	CHECK_INT(srs_forward(&a, "SRS0=x@hop.example", fwd, sizeof(fwd),
	    VECTOR_NOW), SRS_OK);
	CHECK_INT(srs_reverse(&b, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_BAD_HASH);
	srs_free(&a);
	srs_free(&b);
}

/* After rotation the new first secret signs and the old one still verifies. */
static void
test_second_secret_verifies(void)
{
	struct srs old = { 0 }, rotated = { 0 };
	char fwd[OUTSZ], back[OUTSZ];

	load_ok(&old, "secret-a\n");
	load_ok(&rotated, "secret-b\r\n\r\nsecret-a\r\n");
	CHECK_INT(rotated.nsecrets, 2);
	CHECK_INT(srs_forward(&old, "u@sender.example", fwd, sizeof(fwd),
	    VECTOR_NOW), SRS_OK);
	CHECK_INT(srs_reverse(&rotated, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_OK);
	CHECK_STR(back, "u@sender.example");
	CHECK_INT(srs_forward(&rotated, "u@sender.example", fwd, sizeof(fwd),
	    VECTOR_NOW), SRS_OK);
	CHECK_INT(srs_reverse(&old, fwd, back, sizeof(back), VECTOR_NOW),
	    SRS_BAD_HASH);
	srs_free(&old);
	srs_free(&rotated);
}

/* A tampered field fails the hash even though the hash text is intact. */
static void
test_tampered_fields(void)
{
	struct srs srs = { 0 };
	char back[OUTSZ];
	static const char *const bad[] = {
		"SRS0=XjO9=2V=otherdomain.com=tesT2@example.com",
		"SRS0=XjO9=2W=otherdomain.com=test@example.com",
		"SRS0=XjO=2V=otherdomain.com=test@example.com",
		"SRS0=XjO9X=2V=otherdomain.com=test@example.com",
		"SRS1=JIBX=thirddomain.com==opaque+strinG2@example.com",
		"SRS1=JIBX=thirddomain.org==opaque+string@example.com",
	};
	size_t i;

	load_ok(&srs, "tops3cr3t\n");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (srs_reverse(&srs, bad[i], back, sizeof(back),
		    VECTOR_NOW) != SRS_BAD_HASH)
			fprintf(stderr, "tampered: %s\n", bad[i]);
		CHECK_INT(srs_reverse(&srs, bad[i], back, sizeof(back),
		    VECTOR_NOW), SRS_BAD_HASH);
	}
	srs_free(&srs);
}

/*
 * The hash covers host and user concatenated, as in libsrs2, so moving
 * characters across the '=' between them keeps it valid.
 */
static void
test_field_boundary_shift(void)
{
	struct srs srs = { 0 };
	char back[OUTSZ];

	load_ok(&srs, "tops3cr3t\n");
	CHECK_INT(srs_reverse(&srs, "SRS0=XjO9=2V=otherdomain.co=mtest@"
	    "example.com", back, sizeof(back), VECTOR_NOW), SRS_OK);
	CHECK_STR(back, "mtest@otherdomain.co");
	srs_free(&srs);
}

static void
test_mangled_reverse(void)
{
	struct srs srs = { 0 };
	char back[OUTSZ];
	static const struct {
		const char	*addr;
		enum srs_result	 want;
	} cases[] = {
		{ "", SRS_NOT_SRS },
		{ "example.com", SRS_NOT_SRS },
		{ "@example.com", SRS_NOT_SRS },
		{ "SRS0=XjO9=2V=otherdomain.com=test@", SRS_NOT_SRS },
		{ "SRS0=XjO9=2V=otherdomain.com=test@example.org",
		    SRS_NOT_SRS },
		{ "SRS0+XjO9=2V=otherdomain.com=test@example.com",
		    SRS_NOT_SRS },
		{ "SRS2=XjO9=2V=otherdomain.com=test@example.com",
		    SRS_NOT_SRS },
		{ "SRS0@example.com", SRS_NOT_SRS },
		{ "SRS0=@example.com", SRS_MALFORMED },
		{ "SRS0==2V=otherdomain.com=test@example.com", SRS_MALFORMED },
		{ "SRS0=XjO9==otherdomain.com=test@example.com",
		    SRS_MALFORMED },
		{ "SRS0=XjO9=2V==test@example.com", SRS_MALFORMED },
		{ "SRS0=XjO9=2V=otherdomain.com=@example.com",
		    SRS_MALFORMED },
		{ "SRS1=@example.com", SRS_MALFORMED },
		{ "SRS1=JIBX@example.com", SRS_MALFORMED },
		{ "SRS1=JIBX=thirddomain.com@example.com", SRS_MALFORMED },
		{ "SRS1=JIBX==x@example.com", SRS_MALFORMED },
		{ "SRS1=JIBX=thirddomain.com=@example.com", SRS_MALFORMED },
		{ "SRS0=XjO9=2V=otherdomain.com=test@example.com.", SRS_OK },
		{ "SRS0=XjO9=2V=otherdomain.com=test@EXAMPLE.com", SRS_OK },
	};
	size_t i;

	load_ok(&srs, "tops3cr3t\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum srs_result got = srs_reverse(&srs, cases[i].addr, back,
		    sizeof(back), VECTOR_NOW);

		if (got != cases[i].want)
			fprintf(stderr, "reverse \"%s\": got %s\n",
			    cases[i].addr, srs_result_str(got));
		CHECK_INT(got, cases[i].want);
	}
	srs_free(&srs);
}

static void
test_mangled_forward(void)
{
	struct srs srs = { 0 };
	char out[OUTSZ];
	static const struct {
		const char	*addr;
		enum srs_result	 want;
	} cases[] = {
		{ "", SRS_UNCHANGED },
		{ "user@example.com", SRS_UNCHANGED },
		{ "User@Example.COM.", SRS_UNCHANGED },
		{ "SRS1=a=b==c@example.com", SRS_UNCHANGED },
		{ "user", SRS_MALFORMED },
		{ "@sender.example", SRS_MALFORMED },
		{ "user@", SRS_MALFORMED },
		{ "user@bad=domain.example", SRS_MALFORMED },
		{ "user@sub.example.com", SRS_OK },
	};
	size_t i;

	load_ok(&srs, "k\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum srs_result got = srs_forward(&srs, cases[i].addr, out,
		    sizeof(out), VECTOR_NOW);

		if (got != cases[i].want)
			fprintf(stderr, "forward \"%s\": got %s\n",
			    cases[i].addr, srs_result_str(got));
		CHECK_INT(got, cases[i].want);
	}
	srs_free(&srs);
}

static void
test_null_sender(void)
{
	struct srs srs = { 0 };
	char out[OUTSZ] = "untouched";

	load_ok(&srs, "k\n");
	CHECK_INT(srs_forward(&srs, "", out, sizeof(out), VECTOR_NOW),
	    SRS_UNCHANGED);
	CHECK_STR(out, "untouched");
	CHECK_INT(srs_reverse(&srs, "", out, sizeof(out), VECTOR_NOW),
	    SRS_NOT_SRS);
	srs_free(&srs);
}

/*
 * The SRS0 local part is 14 characters plus host plus user, and may be up
 * to 128 octets (RFC 5321 section 4.5.3.1 asks for tolerance past 64).
 */
static void
test_local_part_limit(void)
{
	static const char u[] = "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu";
	struct srs srs = { 0 };
	char sender[256], out[OUTSZ];

	load_ok(&srs, "k\n");
	snprintf(sender, sizeof(sender), "%.*s@b.example", 105, u);
	CHECK_INT(srs_forward(&srs, sender, out, sizeof(out), VECTOR_NOW),
	    SRS_OK);
	CHECK_INT(strchr(out, '@') - out, 128);
	snprintf(sender, sizeof(sender), "%.*s@b.example", 106, u);
	CHECK_INT(srs_forward(&srs, sender, out, sizeof(out), VECTOR_NOW),
	    SRS_TOO_LONG);
	srs_free(&srs);
}

/* Fill buf with a domain name of len characters in labels of 63. */
static char *
make_domain(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '.' : 'd';
	buf[len] = '\0';
	return buf;
}

/* The result may have 254 characters, not 255. */
static void
test_path_limit(void)
{
	struct srs srs = { 0 };
	char err[256], out[OUTSZ], domain[256];
	const char *sender = "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuu@hhhhhhhhhhhh.example";

	/* 14 + 20 (host) + 30 (user) + 1 + 189 = 254 */
	CHECK_INT(load(&srs, make_domain(domain, 189), "k\n", err,
	    sizeof(err)), 0);
	CHECK_INT(srs_forward(&srs, sender, out, sizeof(out), VECTOR_NOW),
	    SRS_OK);
	CHECK_INT(strlen(out), 254);
	CHECK_INT(load(&srs, make_domain(domain, 190), "k\n", err,
	    sizeof(err)), 0);
	CHECK_INT(srs_forward(&srs, sender, out, sizeof(out), VECTOR_NOW),
	    SRS_TOO_LONG);
	srs_free(&srs);
}

static void
test_output_buffer(void)
{
	struct srs srs = { 0 };
	char out[OUTSZ];
	const char *want = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
	size_t n = strlen(want);

	load_ok(&srs, "tops3cr3t\n");
	CHECK_INT(srs_forward(&srs, "test@otherdomain.com", out, n + 1,
	    VECTOR_NOW), SRS_OK);
	CHECK_STR(out, want);
	CHECK_INT(srs_forward(&srs, "test@otherdomain.com", out, n,
	    VECTOR_NOW), SRS_TOO_LONG);
	CHECK_INT(srs_reverse(&srs, want, out, 21, VECTOR_NOW), SRS_OK);
	CHECK_STR(out, "test@otherdomain.com");
	CHECK_INT(srs_reverse(&srs, want, out, 20, VECTOR_NOW), SRS_TOO_LONG);
	CHECK_INT(srs_reverse(&srs, want, out, 0, VECTOR_NOW), SRS_TOO_LONG);
	srs_free(&srs);
}

static void
test_overlong_input(void)
{
	struct srs srs = { 0 };
	char big[2000], out[OUTSZ];

	load_ok(&srs, "k\n");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 13, "@example.com", 13);
	CHECK_INT(srs_reverse(&srs, big, out, sizeof(out), VECTOR_NOW),
	    SRS_MALFORMED);
	memcpy(big, "SRS0=", 5);
	CHECK_INT(srs_reverse(&srs, big, out, sizeof(out), VECTOR_NOW),
	    SRS_MALFORMED);
	memcpy(big + sizeof(big) - 13, "@sender.test", 13);
	CHECK_INT(srs_forward(&srs, big, out, sizeof(out), VECTOR_NOW),
	    SRS_TOO_LONG);
	srs_free(&srs);
}

static void
test_result_strings(void)
{
	int r;

	for (r = SRS_OK; r <= SRS_TOO_LONG; r++)
		CHECK(srs_result_str((enum srs_result)r) != NULL);
	CHECK_STR(srs_result_str(SRS_BAD_HASH), "invalid SRS hash");
	CHECK_STR(srs_result_str((enum srs_result)99), "unknown SRS result");
}

/* ---- srs_init ---- */

static void
test_init_secret_file(void)
{
	struct srs srs = { 0 };
	char err[256];

	CHECK_INT(load(&srs, "Relay.Example.", "\n\nfirst\r\n\nsecond", err,
	    sizeof(err)), 0);
	CHECK_STR(srs.domain, "relay.example");
	CHECK_INT(srs.nsecrets, 2);
	CHECK_INT(srs.secret_len[0], 5);
	CHECK(memcmp(srs.secret[0], "first", 5) == 0);
	CHECK_INT(srs.secret_len[1], 6);
	CHECK(memcmp(srs.secret[1], "second", 6) == 0);
	/* spaces are part of the secret */
	CHECK_INT(load(&srs, "relay.example", " s p \n", err, sizeof(err)), 0);
	CHECK_INT(srs.secret_len[0], 5);
	srs_free(&srs);
}

static void
test_init_secret_limits(void)
{
	struct srs srs = { 0 };
	char err[256], content[512];

	memset(content, 'x', 128);
	strcpy(content + 128, "\n");
	CHECK_INT(load(&srs, "relay.example", content, err, sizeof(err)), 0);
	CHECK_INT(srs.secret_len[0], 128);
	memset(content, 'x', 129);
	strcpy(content + 129, "\n");
	CHECK_INT(load(&srs, "relay.example", content, err, sizeof(err)), -1);
	CHECK(strstr(err, "line 1: secret longer than 128 bytes") != NULL);
	CHECK_INT(srs.nsecrets, 0);
	CHECK_INT(load(&srs, "relay.example", "1\n2\n3\n4\n5\n6\n7\n8\n", err,
	    sizeof(err)), 0);
	CHECK_INT(srs.nsecrets, 8);
	CHECK_INT(load(&srs, "relay.example", "1\n2\n3\n4\n5\n6\n7\n8\n9\n",
	    err, sizeof(err)), -1);
	CHECK(strstr(err, "more than 8 secrets") != NULL);
	CHECK_INT(load(&srs, "relay.example", "\r\n\n", err, sizeof(err)),
	    -1);
	CHECK(strstr(err, "no secret") != NULL);
	CHECK_INT(load(&srs, "relay.example", "", err, sizeof(err)), -1);
	CHECK(strstr(err, "no secret") != NULL);
	srs_free(&srs);
}

static void
test_init_errors(void)
{
	struct srs srs = { 0 };
	char err[256], path[300], big[300];
	const char *p;

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	CHECK_INT(srs_init(&srs, "relay.example", path, err, sizeof(err)), -1);
	CHECK(strstr(err, "open failed") != NULL);
	CHECK_INT(srs_init(&srs, "relay.example", tmpdir, err, sizeof(err)),
	    -1);
	CHECK(strstr(err, "not a regular file") != NULL);
	p = write_file("nul", "ab\0cd\n", 6, 0600);
	CHECK_INT(srs_init(&srs, "relay.example", p, err, sizeof(err)), -1);
	CHECK(strstr(err, "NUL") != NULL);

	CHECK_INT(load(&srs, "", "k\n", err, sizeof(err)), -1);
	CHECK(strstr(err, "invalid SRS domain") != NULL);
	CHECK_INT(load(&srs, ".", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, "a=b.example", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, "a@b.example", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, "a b.example", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, "a..b", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, ".a", "k\n", err, sizeof(err)), -1);
	CHECK_INT(load(&srs, make_domain(big, 254), "k\n", err, sizeof(err)),
	    -1);
	CHECK_INT(load(&srs, make_domain(big, 253), "k\n", err, sizeof(err)),
	    0);
	memset(big, 'd', 64);
	strcpy(big + 64, ".example");		/* a 64-character label */
	CHECK_INT(load(&srs, big, "k\n", err, sizeof(err)), -1);
	big[1] = '.';				/* labels of 1 and 62 */
	CHECK_INT(load(&srs, big, "k\n", err, sizeof(err)), 0);
	srs_free(&srs);
}

/* A world-readable file still loads, with a warning in the log. */
static void
test_init_world_readable(void)
{
	struct srs srs = { 0 };
	char err[256];
	const char *p = write_file("open", "k\n", 2, 0644);

	CHECK_INT(srs_init(&srs, "relay.example", p, err, sizeof(err)), 0);
	CHECK_INT(srs.nsecrets, 1);
	srs_free(&srs);
}

static void
remove_tmpdir(void)
{
	static const char *const names[] = { "secrets", "nul", "open" };
	char path[300];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_init("test_srs", LOG_LVL_ERR);
	RUN(test_postsrsd_vectors);
	RUN(test_vector_hashes_match);
	RUN(test_hash_matches_hmac);
	RUN(test_round_trips);
	RUN(test_srs1_chain);
	RUN(test_foreign_srs1_unparsed);
	RUN(test_expiry_boundaries);
	RUN(test_expiry_across_wrap);
	RUN(test_wrong_secret);
	RUN(test_second_secret_verifies);
	RUN(test_tampered_fields);
	RUN(test_field_boundary_shift);
	RUN(test_mangled_reverse);
	RUN(test_mangled_forward);
	RUN(test_null_sender);
	RUN(test_local_part_limit);
	RUN(test_path_limit);
	RUN(test_output_buffer);
	RUN(test_overlong_input);
	RUN(test_result_strings);
	RUN(test_init_secret_file);
	RUN(test_init_secret_limits);
	RUN(test_init_errors);
	RUN(test_init_world_readable);
	remove_tmpdir();
	CHECK_SUMMARY();
}
