/*
 * Sender Rewriting Scheme for the relay.  smtp_server.c rewrites each
 * envelope sender with srs_forward() before forwarding, so SPF passes at
 * the destination, and turns bounces addressed to the SRS domain back into
 * the original sender with srs_reverse().
 *
 * The address forms match libsrs2 and PostSRSd 2.x (checked against
 * PostSRSd's own test vectors in tests/vectors/srs/):
 *
 *   SRS0=HHHH=TT=host=user@srs-domain
 *	HHHH is the first 4 base64 characters of
 *	HMAC-SHA1(secret, lower(TT + host + user)), TT the day number
 *	(unix time / 86400) mod 1024 in 2 base32 characters (A-Z, 2-7).
 *   SRS1=HHHH=first-host==opaque@srs-domain
 *	made from a sender that is already an SRS0 or SRS1 address of
 *	another forwarder.  HHHH covers lower(first-host + "=opaque"), and
 *	the reverse is SRS0=opaque@first-host, which that forwarder verifies.
 *
 * Both functions work on the decoded form of the local part (without the
 * quotes and backslashes of an RFC 5321 quoted string) and return the
 * decoded form, so the caller quotes the result where it needs quoting.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "log.h"
#include "srs.h"
#include "xmalloc.h"

#define SRS_HASH_LEN		4
#define SRS_STAMP_LEN		2
#define SRS_DAY_SECONDS		86400
#define SRS_STAMP_DAYS		1024	/* 2 base32 characters: 10 bits */
/* Far above RFC 5321's 254, so long addresses still parse, but bounded. */
#define SRS_INPUT_MAX		1024
#define SRS_PATH_MAX		254	/* RFC 5321 4.5.3.1.3, without <> */
/*
 * RFC 5321 4.5.3.1.1 says 64, but an SRS address wraps the whole sender
 * and most servers take longer local parts: 128, as the address parser.
 */
#define SRS_LOCAL_MAX		128
#define SRS_DOMAIN_MAX		253
#define SRS_LABEL_MAX		63
#define SRS_SECRET_FILE_MAX	65536
#define SRS_SECRET_MAX		sizeof(((struct srs *)0)->secret[0])
#define SRS_SHA1_BLOCK		64	/* bytes of a SHA-1 input block */

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/*
 * PostSRSd 2.2.6 and later emit base64url, and so do we.  Hashes in the
 * classic alphabet ('+' and '/') verify as well.
 */
static const char srs_base64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A piece of a string that is not NUL-terminated. */
struct srs_span {
	const char	*p;
	size_t		 len;
};

static const char *const srs_result_text[] = {
	[SRS_OK] = "ok",
	[SRS_UNCHANGED] = "unchanged",
	[SRS_NOT_SRS] = "not an SRS address",
	[SRS_BAD_HASH] = "invalid SRS hash",
	[SRS_EXPIRED] = "SRS timestamp expired or in the future",
	[SRS_MALFORMED] = "malformed address",
	[SRS_TOO_LONG] = "address too long",
};

const char *
srs_result_str(enum srs_result r)
{
	if ((size_t)r >= sizeof(srs_result_text) / sizeof(srs_result_text[0]))
		return "unknown SRS result";
	return srs_result_text[r];
}

static struct srs_span
srs_span_of(const char *p, size_t len)
{
	struct srs_span s = { p, len };

	return s;
}

static int
srs_span_starts_with(struct srs_span s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.len >= n && strncasecmp(s.p, prefix, n) == 0;
}

/*
 * Split s at its first '=' into *field and *rest.  Returns -1 when there
 * is no '=' or the field before it is empty.
 */
static int
srs_span_field(struct srs_span s, struct srs_span *field,
    struct srs_span *rest)
{
	const char *eq = memchr(s.p, '=', s.len);

	if (eq == NULL || eq == s.p)
		return -1;
	*field = srs_span_of(s.p, (size_t)(eq - s.p));
	*rest = srs_span_of(eq + 1, s.len - field->len - 1);
	return 0;
}

/*
 * Split addr (at most SRS_INPUT_MAX bytes) at its last '@'.  Returns -1
 * when there is no '@' or either side is empty.
 */
static int
srs_split_addr(const char *addr, size_t len, struct srs_span *local,
    struct srs_span *domain)
{
	const char *at = memrchr(addr, '@', len);

	if (at == NULL || at == addr || at == addr + len - 1)
		return -1;
	*local = srs_span_of(addr, (size_t)(at - addr));
	*domain = srs_span_of(at + 1, len - local->len - 1);
	return 0;
}

/* Compare domain with ours, ignoring case and one trailing dot. */
static int
srs_is_our_domain(const struct srs *srs, struct srs_span domain)
{
	if (domain.len > 0 && domain.p[domain.len - 1] == '.')
		domain.len--;
	return domain.len == strlen(srs->domain) &&
	    strncasecmp(domain.p, srs->domain, domain.len) == 0;
}

/*
 * Compute the 4-character hash of the concatenated parts, lower-cased,
 * under secret number idx.  The parts come from an address of at most
 * SRS_INPUT_MAX bytes plus a 2-character timestamp.
 * NOTE: as in libsrs2, nothing separates the parts, so characters can move
 * between host and user of an SRS0 address without changing the hash.
 * Verifying addresses that libsrs2-style signers made requires this.
 */
static void
srs_hash(const struct srs *srs, size_t idx, const struct srs_span *parts,
    size_t nparts, char out[SRS_HASH_LEN])
{
	unsigned char data[SRS_INPUT_MAX + SRS_STAMP_LEN];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t len = 0, i, j;

	for (i = 0; i < nparts; i++) {
		if (parts[i].len > sizeof(data) - len)
			fatal_invariant("SRS hash input exceeds its bound");
		for (j = 0; j < parts[i].len; j++)
			data[len++] = (unsigned char)tolower(
			    (unsigned char)parts[i].p[j]);
	}
	if (idx >= srs->nsecrets || srs->inner[idx] == NULL ||
	    srs->outer[idx] == NULL || srs->work == NULL)
		fatal_invariant("SRS secret used before srs_init()");
	/* HMAC = H(K ^ opad || H(K ^ ipad || data)), from the keyed states. */
	if (!EVP_MD_CTX_copy_ex(srs->work, srs->inner[idx]) ||
	    !EVP_DigestUpdate(srs->work, data, len) ||
	    !EVP_DigestFinal_ex(srs->work, md, &mdlen) ||
	    !EVP_MD_CTX_copy_ex(srs->work, srs->outer[idx]) ||
	    !EVP_DigestUpdate(srs->work, md, mdlen) ||
	    !EVP_DigestFinal_ex(srs->work, md, &mdlen) || mdlen < 3)
		fatal_invariant("HMAC-SHA1 failed");

	/* The first 24 bits of the MAC give exactly 4 base64 characters. */
	out[0] = srs_base64url[md[0] >> 2];
	out[1] = srs_base64url[((md[0] & 0x03) << 4) | (md[1] >> 4)];
	out[2] = srs_base64url[((md[1] & 0x0f) << 2) | (md[2] >> 6)];
	out[3] = srs_base64url[md[2] & 0x3f];
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(data, len);
}

/* Fold case and the classic base64 alphabet onto lower-case base64url. */
static void
srs_hash_fold(char *h)
{
	size_t i;

	for (i = 0; i < SRS_HASH_LEN; i++) {
		if (h[i] == '+')
			h[i] = '-';
		else if (h[i] == '/')
			h[i] = '_';
		else
			h[i] = (char)tolower((unsigned char)h[i]);
	}
}

/*
 * Check hash against every secret.  The comparison ignores case because
 * libsrs2 does the same: some MTAs lower-case local parts on the way.
 * NOTE: folding case leaves about 21 of the 24 bits of the hash.
 */
static int
srs_hash_verify(const struct srs *srs, struct srs_span hash,
    const struct srs_span *parts, size_t nparts)
{
	char got[SRS_HASH_LEN], want[SRS_HASH_LEN];
	size_t i;
	int ok = 0;

	if (hash.len != SRS_HASH_LEN)
		return 0;
	memcpy(got, hash.p, SRS_HASH_LEN);
	srs_hash_fold(got);
	for (i = 0; i < srs->nsecrets; i++) {
		srs_hash(srs, i, parts, nparts, want);
		srs_hash_fold(want);
		ok |= CRYPTO_memcmp(got, want, SRS_HASH_LEN) == 0;
	}
	return ok;
}

static void
srs_stamp_make(time_t now, char out[SRS_STAMP_LEN])
{
	long long day = (long long)(now / SRS_DAY_SECONDS) % SRS_STAMP_DAYS;

	if (day < 0)
		day += SRS_STAMP_DAYS;
	out[0] = srs_base32[(day >> 5) & 31];
	out[1] = srs_base32[day & 31];
}

/*
 * Check a timestamp: valid when it names today or one of the
 * SRS_MAX_AGE_DAYS days before.  Day numbers wrap every 1024 days, so a
 * timestamp d days in the future reads as 1024 - d days old and fails
 * unless d > 1002, as in libsrs2.  Returns SRS_OK, SRS_EXPIRED or
 * SRS_MALFORMED.
 */
static enum srs_result
srs_stamp_check(struct srs_span stamp, time_t now)
{
	long long then = 0, today, age;
	const char *c;
	size_t i;

	if (stamp.len != SRS_STAMP_LEN)
		return SRS_MALFORMED;
	for (i = 0; i < SRS_STAMP_LEN; i++) {
		c = strchr(srs_base32, toupper((unsigned char)stamp.p[i]));
		if (c == NULL || *c == '\0')
			return SRS_MALFORMED;
		then = then * 32 + (c - srs_base32);
	}
	today = (long long)(now / SRS_DAY_SECONDS) % SRS_STAMP_DAYS;
	if (today < 0)
		today += SRS_STAMP_DAYS;
	age = (today - then + SRS_STAMP_DAYS) % SRS_STAMP_DAYS;
	return age <= SRS_MAX_AGE_DAYS ? SRS_OK : SRS_EXPIRED;
}

/*
 * An output buffer that records overflow instead of truncating silently,
 * and where the local part ends, for the RFC 5321 length checks.
 */
struct srs_out {
	char	 buf[2 * SRS_INPUT_MAX];
	size_t	 len;
	size_t	 local_len;
	int	 overflow;
};

static void
srs_out_add(struct srs_out *o, const char *p, size_t len)
{
	if (len > sizeof(o->buf) - 1 - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

static void
srs_out_span(struct srs_out *o, struct srs_span s)
{
	srs_out_add(o, s.p, s.len);
}

static void
srs_out_str(struct srs_out *o, const char *s)
{
	srs_out_add(o, s, strlen(s));
}

/* Close the local part with "@domain". */
static void
srs_out_domain(struct srs_out *o, const char *domain)
{
	o->local_len = o->len;
	srs_out_str(o, "@");
	srs_out_str(o, domain);
}

/*
 * Copy a finished address to out.  limits selects the RFC 5321 length
 * checks, which forwarding applies and reversing does not.
 */
static enum srs_result
srs_out_finish(const struct srs_out *o, int limits, char *out, size_t outsz)
{
	if (o->overflow || o->len >= outsz)
		return SRS_TOO_LONG;
	if (limits && (o->len > SRS_PATH_MAX || o->local_len > SRS_LOCAL_MAX))
		return SRS_TOO_LONG;
	memcpy(out, o->buf, o->len + 1);
	return SRS_OK;
}

/* SRS1 tag or SRS0 tag, any case, followed by a libsrs2 separator. */
static int
srs_has_tag(struct srs_span local, const char *tag)
{
	return srs_span_starts_with(local, tag) && local.len > 4 &&
	    (local.p[4] == '=' || local.p[4] == '+' || local.p[4] == '-');
}

/*
 * Rewrite a sender that another forwarder already rewrote.  For SRS0 the
 * opaque part is everything after the tag, separator included, and the
 * first hop is the sender's domain.  For SRS1 both come from the address
 * itself and the foreign hash is dropped.  Returns -1 for an SRS1 address
 * without a first-hop host or opaque part.
 */
static int
srs_forward_srs1(const struct srs *srs, struct srs_span local,
    struct srs_span domain, struct srs_out *o)
{
	struct srs_span host = domain, opaque, hash, rest, parts[2];
	char h[SRS_HASH_LEN];

	opaque = srs_span_of(local.p + 4, local.len - 4);
	if (srs_has_tag(local, "SRS1")) {
		/* SRS1<sep>hash=host=opaque, where opaque usually starts with
		 * the separator of the first hop's SRS0 tag */
		rest = srs_span_of(local.p + 5, local.len - 5);
		if (srs_span_field(rest, &hash, &rest) < 0 ||
		    srs_span_field(rest, &host, &rest) < 0 || rest.len == 0)
			return -1;
		opaque = rest;
	}
	parts[0] = host;
	parts[1] = opaque;
	srs_hash(srs, 0, parts, 2, h);
	srs_out_str(o, "SRS1=");
	srs_out_add(o, h, SRS_HASH_LEN);
	srs_out_str(o, "=");
	srs_out_span(o, host);
	srs_out_str(o, "=");
	srs_out_span(o, opaque);
	srs_out_domain(o, srs->domain);
	return 0;
}

static void
srs_forward_srs0(const struct srs *srs, struct srs_span local,
    struct srs_span domain, time_t now, struct srs_out *o)
{
	char stamp[SRS_STAMP_LEN], h[SRS_HASH_LEN];
	struct srs_span parts[3];

	srs_stamp_make(now, stamp);
	parts[0] = srs_span_of(stamp, SRS_STAMP_LEN);
	parts[1] = domain;
	parts[2] = local;
	srs_hash(srs, 0, parts, 3, h);
	srs_out_str(o, "SRS0=");
	srs_out_add(o, h, SRS_HASH_LEN);
	srs_out_str(o, "=");
	srs_out_add(o, stamp, SRS_STAMP_LEN);
	srs_out_str(o, "=");
	srs_out_span(o, domain);
	srs_out_str(o, "=");
	srs_out_span(o, local);
	srs_out_domain(o, srs->domain);
}

/*
 * Rewrite sender ("local@domain", decoded) into out.  Returns SRS_OK,
 * SRS_UNCHANGED for the null sender "" and for senders already at our
 * domain, SRS_MALFORMED for an address without local part or domain, or
 * with '=' in the domain (it could not be reversed), and SRS_TOO_LONG
 * when the input exceeds 1024 bytes or the result would exceed 254
 * characters, 64 in the local part, or outsz.  A foreign SRS1 address
 * that cannot be parsed is wrapped in SRS0 like any other sender.
 */
enum srs_result
srs_forward(const struct srs *srs, const char *sender, char *out,
    size_t outsz, time_t now)
{
	size_t len = strnlen(sender, SRS_INPUT_MAX + 1);
	struct srs_span local, domain;
	struct srs_out o = { .len = 0 };

	if (len == 0)
		return SRS_UNCHANGED;
	if (len > SRS_INPUT_MAX)
		return SRS_TOO_LONG;
	if (srs_split_addr(sender, len, &local, &domain) < 0 ||
	    memchr(domain.p, '=', domain.len) != NULL)
		return SRS_MALFORMED;
	if (srs_is_our_domain(srs, domain))
		return SRS_UNCHANGED;

	if (!(srs_has_tag(local, "SRS0") || srs_has_tag(local, "SRS1")) ||
	    srs_forward_srs1(srs, local, domain, &o) < 0) {
		o = (struct srs_out){ .len = 0 };
		srs_forward_srs0(srs, local, domain, now, &o);
	}
	return srs_out_finish(&o, 1, out, outsz);
}

/* SRS0=hash=stamp=host=user: recover user@host. */
static enum srs_result
srs_reverse_srs0(const struct srs *srs, struct srs_span rest, time_t now,
    struct srs_out *o)
{
	struct srs_span hash, stamp, host, parts[3];
	enum srs_result r;

	if (srs_span_field(rest, &hash, &rest) < 0 ||
	    srs_span_field(rest, &stamp, &rest) < 0 ||
	    srs_span_field(rest, &host, &rest) < 0 || rest.len == 0)
		return SRS_MALFORMED;
	parts[0] = stamp;
	parts[1] = host;
	parts[2] = rest;
	/* Hash before timestamp: a forged address is SRS_BAD_HASH at any age. */
	if (!srs_hash_verify(srs, hash, parts, 3))
		return SRS_BAD_HASH;
	if ((r = srs_stamp_check(stamp, now)) != SRS_OK)
		return r;
	srs_out_span(o, rest);
	srs_out_str(o, "@");
	srs_out_span(o, host);
	return SRS_OK;
}

/* SRS1=hash=host=opaque: recover SRS0opaque@host for the first hop. */
static enum srs_result
srs_reverse_srs1(const struct srs *srs, struct srs_span rest,
    struct srs_out *o)
{
	struct srs_span hash, host, parts[2];

	if (srs_span_field(rest, &hash, &rest) < 0 ||
	    srs_span_field(rest, &host, &rest) < 0 || rest.len == 0)
		return SRS_MALFORMED;
	parts[0] = host;
	parts[1] = rest;
	if (!srs_hash_verify(srs, hash, parts, 2))
		return SRS_BAD_HASH;
	srs_out_str(o, "SRS0");
	srs_out_span(o, rest);
	srs_out_str(o, "@");
	srs_out_span(o, host);
	return SRS_OK;
}

/*
 * Recover the address that addr, an SRS address at our domain, stands
 * for.  Tags and hash compare case-insensitively, and the output keeps
 * the case of the input.  Returns one of:
 *   SRS_OK	   out contains the address
 *   SRS_NOT_SRS   addr is not at our domain or its local part does not
 *		   start with "SRS0=" or "SRS1="
 *   SRS_MALFORMED a field is missing or empty, or addr exceeds 1024 bytes
 *   SRS_BAD_HASH  no secret verifies the hash
 *   SRS_EXPIRED   SRS0 only, because SRS1 carries no timestamp
 *   SRS_TOO_LONG  the result does not fit outsz
 */
enum srs_result
srs_reverse(const struct srs *srs, const char *addr, char *out,
    size_t outsz, time_t now)
{
	size_t len = strnlen(addr, SRS_INPUT_MAX + 1);
	struct srs_span local, domain, rest;
	struct srs_out o = { .len = 0 };
	enum srs_result r;

	if (len > SRS_INPUT_MAX)
		return SRS_MALFORMED;
	if (srs_split_addr(addr, len, &local, &domain) < 0 ||
	    !srs_is_our_domain(srs, domain))
		return SRS_NOT_SRS;
	rest = srs_span_of(local.p + 5, local.len >= 5 ? local.len - 5 : 0);
	if (srs_span_starts_with(local, "SRS0="))
		r = srs_reverse_srs0(srs, rest, now, &o);
	else if (srs_span_starts_with(local, "SRS1="))
		r = srs_reverse_srs1(srs, rest, &o);
	else
		return SRS_NOT_SRS;
	if (r != SRS_OK)
		return r;
	return srs_out_finish(&o, 0, out, outsz);
}

/*
 * Store the SRS domain lower-cased, without a trailing dot.  Returns -1
 * with a message in err unless the name has 1 to 253 characters in
 * labels of 1 to 63, and none of the characters that would break the
 * address forms ('@', '=', space, controls).
 */
static int
srs_set_domain(struct srs *srs, const char *domain, char *err, size_t errsz)
{
	size_t len = strnlen(domain, SRS_DOMAIN_MAX + 2), i, label = 0;
	unsigned char c;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > SRS_DOMAIN_MAX)
		goto bad_length;
	for (i = 0; i < len; i++) {
		c = (unsigned char)domain[i];
		if (c <= ' ' || c >= 0x7f || c == '@' || c == '=') {
			snprintf(err, errsz, "invalid SRS domain \"%.64s\": "
			    "character %zu is not allowed", domain, i + 1);
			return -1;
		}
		label = c == '.' ? 0 : label + 1;
		if ((c == '.' && (i == 0 || domain[i - 1] == '.')) ||
		    label > SRS_LABEL_MAX)
			goto bad_length;
		srs->domain[i] = (char)tolower(c);
	}
	srs->domain[len] = '\0';
	return 0;

bad_length:
	snprintf(err, errsz, "invalid SRS domain \"%.64s\": expected 1 to %d "
	    "characters in labels of 1 to %d", domain, SRS_DOMAIN_MAX,
	    SRS_LABEL_MAX);
	return -1;
}

/*
 * Add one line of the secret file (CR and LF already removed).  Empty
 * lines are skipped.  Returns -1 with a message in err.
 */
static int
srs_add_secret(struct srs *srs, const char *line, size_t len, int lineno,
    const char *path, char *err, size_t errsz)
{
	if (len == 0)
		return 0;
	if (len > SRS_SECRET_MAX) {
		snprintf(err, errsz, "%s line %d: secret longer than %zu bytes",
		    path, lineno, SRS_SECRET_MAX);
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		snprintf(err, errsz, "%s line %d: secret contains a NUL byte",
		    path, lineno);
		return -1;
	}
	if (srs->nsecrets == SRS_MAX_SECRETS) {
		snprintf(err, errsz, "%s: more than %d secrets", path,
		    SRS_MAX_SECRETS);
		return -1;
	}
	memcpy(srs->secret[srs->nsecrets], line, len);
	srs->secret_len[srs->nsecrets] = len;
	srs->nsecrets++;
	return 0;
}

/* Split the file contents into lines and add each as a secret. */
static int
srs_parse_secrets(struct srs *srs, const char *buf, size_t size,
    const char *path, char *err, size_t errsz)
{
	const char *line = buf, *nl;
	size_t len;
	int lineno = 1;

	while (line < buf + size) {
		nl = memchr(line, '\n', (size_t)(buf + size - line));
		len = nl != NULL ? (size_t)(nl - line) :
		    (size_t)(buf + size - line);
		while (len > 0 && line[len - 1] == '\r')
			len--;
		if (srs_add_secret(srs, line, len, lineno, path, err,
		    errsz) < 0)
			return -1;
		if (nl == NULL)
			break;
		line = nl + 1;
		lineno++;
	}
	if (srs->nsecrets == 0) {
		snprintf(err, errsz, "%s: no secret (expected one per line)",
		    path);
		return -1;
	}
	return 0;
}

/*
 * Read the whole secret file, at most SRS_SECRET_FILE_MAX bytes, into buf
 * and set *size.  Warns when the file is readable by every user.
 */
static int
srs_read_file(const char *path, char *buf, size_t bufsz, size_t *size,
    char *err, size_t errsz)
{
	struct stat st;
	ssize_t n;
	int fd, ret = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errsz, "%s: open failed: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & S_IROTH)
		log_warn("srs: secret file is world-readable path=%s "
		    "hint=\"chmod o-r\"", path);
	*size = 0;
	while ((n = read(fd, buf + *size, bufsz - *size)) > 0)
		*size += (size_t)n;
	if (n < 0) {
		snprintf(err, errsz, "%s: read failed: %s", path,
		    strerror(errno));
		goto out;
	}
	if (*size == bufsz) {
		snprintf(err, errsz, "%s: larger than %zu bytes", path,
		    bufsz - 1);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* Start a SHA-1 state with the block key ^ pad (RFC 2104). */
static EVP_MD_CTX *
srs_keyed_state(const unsigned char key[SRS_SHA1_BLOCK], unsigned char pad)
{
	unsigned char block[SRS_SHA1_BLOCK];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t i;
	int ok;

	for (i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ pad;
	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
	    EVP_DigestUpdate(ctx, block, sizeof(block));
	OPENSSL_cleanse(block, sizeof(block));
	if (!ok) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Key HMAC-SHA1 with every secret once, so that a hash costs two SHA-1
 * state copies instead of a new HMAC context.  Returns -1 with a message
 * in err.
 */
static int
srs_prepare_keys(struct srs *srs, char *err, size_t errsz)
{
	unsigned char key[SRS_SHA1_BLOCK] = { 0 };
	size_t i;
	int ret = -1;

	if ((srs->work = EVP_MD_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < srs->nsecrets; i++) {
		memset(key, 0, sizeof(key));
		/* A key longer than a block is replaced by its hash. */
		if (srs->secret_len[i] > sizeof(key)) {
			if (!EVP_Digest(srs->secret[i], srs->secret_len[i], key,
			    NULL, EVP_sha1(), NULL))
				goto out;
		} else
			memcpy(key, srs->secret[i], srs->secret_len[i]);
		srs->inner[i] = srs_keyed_state(key, 0x36);
		srs->outer[i] = srs_keyed_state(key, 0x5c);
		if (srs->inner[i] == NULL || srs->outer[i] == NULL)
			goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (ret < 0)
		snprintf(err, errsz, "HMAC-SHA1 setup failed");
	return ret;
}

void
srs_free(struct srs *srs)
{
	size_t i;

	for (i = 0; i < SRS_MAX_SECRETS; i++) {
		EVP_MD_CTX_free(srs->inner[i]);
		EVP_MD_CTX_free(srs->outer[i]);
	}
	EVP_MD_CTX_free(srs->work);
	sodium_memzero(srs, sizeof(*srs));
}

/*
 * Load the secrets, one per line with CR and LF stripped and empty lines
 * skipped: the first signs, all verify.  Each may be up to 128 bytes and
 * is used as is (spaces included) as the HMAC key.  Returns 0, or -1
 * with a message in err and srs cleared.
 */
int
srs_init(struct srs *srs, const char *domain, const char *secret_file,
    char *err, size_t errsz)
{
	size_t bufsz = SRS_SECRET_FILE_MAX + 1, size = 0;
	char *buf = xmalloc(bufsz);
	int ret = -1;

	sodium_memzero(srs, sizeof(*srs));
	if (srs_set_domain(srs, domain, err, errsz) < 0)
		goto out;
	if (srs_read_file(secret_file, buf, bufsz, &size, err, errsz) < 0)
		goto out;
	if (srs_parse_secrets(srs, buf, size, secret_file, err, errsz) < 0)
		goto out;
	if (srs_prepare_keys(srs, err, errsz) < 0)
		goto out;
	ret = 0;
out:
	sodium_memzero(buf, bufsz);
	free(buf);
	if (ret < 0)
		srs_free(srs);
	return ret;
}
