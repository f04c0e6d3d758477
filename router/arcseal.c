/*
 * ARC sealing (see arcseal.h), built on the DKIM building blocks of
 * dkim.c: relaxed canonicalization, the body hash and SHA-256.
 *
 *   collect    the ARC fields of the message by instance, to find N and
 *              the sets the new seal covers
 *   AAR        "i=N; " and the value of the relay's Authentication-Results
 *   AMS        h= lists the usual author fields as often as they occur
 *              (at most ARC_SEAL_FIELD_COPIES times each), c=relaxed/relaxed
 *   AS         over the sets 1 to N in order, or over set N alone when
 *              the chain failed (RFC 8617 section 5.1.2)
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "arcseal.h"
#include "log.h"
#include "xmalloc.h"

/* Copies of one field name signed, and names in h= in all. */
#define ARC_SEAL_FIELD_COPIES	4
#define ARC_SEAL_NAMES_MAX	64
#define ARC_SEAL_FOLD		72	/* base64 characters per line */

struct arc_sealer {
	EVP_PKEY	*key;
	enum dkim_alg	 alg;
	char		 domain[DKIM_DOMAIN_MAX + 1];
	char		 selector[DKIM_DOMAIN_MAX + 1];
};

/*
 * The fields the ARC-Message-Signature covers: those RFC 6376 section
 * 5.4.1 names as the ones to sign, and DKIM-Signature, so that a later
 * hop can tell the signatures were there.  Never Authentication-Results
 * (RFC 8617 section 4.1.2) nor any ARC field.
 */
static const char *const arc_seal_names[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "resent-date",
	"resent-from", "resent-to", "resent-cc", "in-reply-to", "references",
	"list-id", "list-help", "list-unsubscribe", "list-subscribe",
	"list-post", "list-owner", "list-archive", "message-id",
	"mime-version", "content-type", "content-transfer-encoding",
	"dkim-signature",
};

enum { SEAL_AAR, SEAL_AMS, SEAL_AS };

static const char *const arc_seal_fields[] = {
	[SEAL_AAR] = "ARC-Authentication-Results",
	[SEAL_AMS] = "ARC-Message-Signature",
	[SEAL_AS] = "ARC-Seal",
};

/* The ARC fields of the message with one instance. */
struct seal_set {
	unsigned	 count[3];
	size_t		 field[3];
	enum dkim_cv	 cv;
};

int
arc_seal_dns_name(const char *s)
{
	size_t i, n = strlen(s), label = 0;

	if (n == 0 || n > DKIM_DOMAIN_MAX || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			/* No empty label, and none that ends with a hyphen. */
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return 0;
		if (label == 0 && s[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return s[n - 1] != '-';
}

/* Refuse to prompt for a pass phrase: the key must be stored decrypted. */
static int
arc_seal_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	*(int *)arg = 1;
	return -1;
}

struct arc_sealer *
arc_sealer_load(const char *keyfile, const char *domain, const char *selector,
    char *err, size_t errsz)
{
	struct arc_sealer *s;
	EVP_PKEY *key;
	FILE *f;
	int bits, encrypted = 0;

	if (!arc_seal_dns_name(domain)) {
		snprintf(err, errsz, "ARC domain \"%s\" is not a domain name",
		    domain);
		return NULL;
	}
	if (!arc_seal_dns_name(selector)) {
		snprintf(err, errsz, "ARC selector \"%s\" is not a DNS name",
		    selector);
		return NULL;
	}
	if (strlen(selector) + strlen("._domainkey.") + strlen(domain) >
	    DKIM_DOMAIN_MAX) {
		snprintf(err, errsz, "ARC key name %s._domainkey.%s is too "
		    "long for DNS", selector, domain);
		return NULL;
	}
	if ((f = fopen(keyfile, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", keyfile, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(f, NULL, arc_seal_no_passphrase, &encrypted);
	fclose(f);
	if (key == NULL) {
		snprintf(err, errsz, encrypted ? "%s: the key is encrypted; "
		    "store it decrypted (openssl pkey -in FILE -out FILE2)" :
		    "%s: not a PEM private key", keyfile);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->key = key;
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(key);
		/* RFC 8301 section 3.2: verifiers reject keys under 1024 bits. */
		if (bits < 1024 ||
		    EVP_PKEY_get_size(key) > DKIM_SIG_BYTES_MAX) {
			snprintf(err, errsz, "%s: RSA key of %d bits; 1024 to "
			    "8192 bits are usable", keyfile, bits);
			arc_sealer_free(s);
			return NULL;
		}
		s->alg = DKIM_ALG_RSA_SHA256;
		break;
	case EVP_PKEY_ED25519:
		s->alg = DKIM_ALG_ED25519_SHA256;
		break;
	default:
		snprintf(err, errsz, "%s: neither an RSA nor an Ed25519 key",
		    keyfile);
		arc_sealer_free(s);
		return NULL;
	}
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	snprintf(s->selector, sizeof(s->selector), "%s", selector);
	return s;
}

void
arc_sealer_free(struct arc_sealer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

const char *
arc_sealer_domain(const struct arc_sealer *s)
{
	return s->domain;
}

/* ---- input ---- */

void
arc_seal_input_init(struct arc_seal_input *in)
{
	memset(in, 0, sizeof(*in));
	dkim_body_hash_init(&in->body, DKIM_CANON_RELAXED, 0, 0);
}

void
arc_seal_input_update(struct arc_seal_input *in,
    const struct msghdr_section *hdr, const char *p, size_t len)
{
	uint64_t start = in->bytes, body;
	size_t skip;

	in->bytes += len;
	if (in->finished || !msghdr_done(hdr))
		return;
	/* Hash only the bytes past the empty line that ends the header. */
	body = msghdr_body_offset(hdr);
	if (in->bytes <= body)
		return;
	skip = body > start ? (size_t)(body - start) : 0;
	dkim_body_hash_update(&in->body, p + skip, len - skip);
}

static void
arc_seal_input_finish(struct arc_seal_input *in)
{
	if (in->finished)
		return;
	in->finished = 1;
	dkim_body_hash_final(&in->body);
}

void
arc_seal_input_free(struct arc_seal_input *in)
{
	if (!in->finished)
		dkim_body_hash_clear(&in->body);
	in->finished = 1;
}

/* ---- the existing chain ---- */

/*
 * Sort the ARC fields by instance.  Returns the highest instance, and
 * sets *broken when a field has no usable instance or cv= or a set is
 * incomplete, which makes the new seal's cv=fail.
 */
static unsigned
arc_seal_collect(const struct msghdr_section *hdr, struct seal_set *sets,
    int *broken)
{
	struct dkim_sig *sig = xmalloc(sizeof(*sig));
	const char *value, *reason;
	unsigned inst, n = 0, j;
	size_t i, len;
	int k;

	*broken = 0;
	for (i = 0; i < msghdr_count(hdr); i++) {
		for (k = SEAL_AAR; k <= SEAL_AS; k++)
			if (msghdr_name_is(hdr, i, arc_seal_fields[k]))
				break;
		if (k > SEAL_AS)
			continue;
		value = msghdr_raw_value(hdr, i, &len);
		if (k == SEAL_AAR)
			inst = arc_aar_instance(value, len);
		else if (dkim_sig_parse(sig, k == SEAL_AMS ? DKIM_SIG_AMS :
		    DKIM_SIG_SEAL, value, len, &reason) == 0)
			inst = sig->instance;
		else
			inst = 0;
		if (inst == 0 || inst > ARC_INSTANCE_MAX) {
			*broken = 1;
			continue;
		}
		if (sets[inst].count[k]++ == 0)
			sets[inst].field[k] = i;
		if (k == SEAL_AS)
			sets[inst].cv = sig->cv;
		if (inst > n)
			n = inst;
	}
	free(sig);
	for (j = 1; j <= n; j++)
		for (k = SEAL_AAR; k <= SEAL_AS; k++)
			if (sets[j].count[k] != 1)
				*broken = 1;
	return n;
}

/* ---- signing ---- */

static const char *
arc_seal_alg(const struct arc_sealer *s)
{
	return s->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" :
	    "rsa-sha256";
}

/*
 * Sign the SHA-256 digest of the header hash input and append b= as
 * folded base64.  RFC 8463 section 3: Ed25519 signs the digest itself.
 */
static int
arc_seal_sign(const struct arc_sealer *s, const unsigned char *digest,
    struct buf *out)
{
	unsigned char sig[DKIM_SIG_BYTES_MAX];
	char b64[(DKIM_SIG_BYTES_MAX + 2) / 3 * 4 + 1];
	size_t siglen = sizeof(sig), n, i;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	int ok = 0;

	if (s->alg == DKIM_ALG_RSA_SHA256) {
		ok = (pctx = EVP_PKEY_CTX_new(s->key, NULL)) != NULL &&
		    EVP_PKEY_sign_init(pctx) > 0 &&
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 &&
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) > 0 &&
		    EVP_PKEY_sign(pctx, sig, &siglen, digest,
		    DKIM_HASH_LEN) > 0;
		EVP_PKEY_CTX_free(pctx);
	} else {
		ok = (mctx = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(mctx, NULL, NULL, NULL, s->key) > 0 &&
		    EVP_DigestSign(mctx, sig, &siglen, digest,
		    DKIM_HASH_LEN) > 0;
		EVP_MD_CTX_free(mctx);
	}
	if (!ok || siglen > sizeof(sig))
		return -1;
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
	for (i = 0; i < n; i += ARC_SEAL_FOLD) {
		if (i > 0 && buf_append(out, "\r\n\t ", 4) < 0)
			return -1;
		if (buf_append(out, b64 + i, n - i < ARC_SEAL_FOLD ? n - i :
		    ARC_SEAL_FOLD) < 0)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}

/* The count of fields named name, capped at ARC_SEAL_FIELD_COPIES. */
static unsigned
arc_seal_copies(const struct msghdr_section *hdr, const char *name)
{
	size_t i = 0;
	unsigned n = 0;

	while (n < ARC_SEAL_FIELD_COPIES &&
	    (i = msghdr_find(hdr, name, i)) != MSGHDR_NONE) {
		n++;
		i++;
	}
	return n;
}

/*
 * Append the ARC-Message-Signature up to "b=" to f and hash the fields h=
 * names (RFC 6376 section 5.4.2: repeated names take the fields bottom
 * up), then the new field itself.  Returns 0, or -1 when f is full.
 */
static int
arc_seal_ams(const struct arc_sealer *s, const struct arc_seal_input *in,
    const struct msghdr_section *hdr, unsigned inst, time_t now,
    struct buf *f, unsigned char *digest)
{
	const char *name, *raw;
	char bh64[(DKIM_HASH_LEN + 2) / 3 * 4 + 1];
	size_t k, len, at, line, start = f->len, names = 0;
	unsigned copies, c;
	struct dkim_hash h;
	int bad = 0;

	EVP_EncodeBlock((unsigned char *)bh64, in->body.digest, DKIM_HASH_LEN);
	bad |= buf_printf(f, "ARC-Message-Signature: i=%u; a=%s; "
	    "c=relaxed/relaxed;\r\n\td=%s; s=%s; t=%lld;\r\n\th=", inst,
	    arc_seal_alg(s), s->domain, s->selector, (long long)now);
	dkim_hash_init(&h);
	line = 3;
	for (k = 0; k < sizeof(arc_seal_names) / sizeof(arc_seal_names[0]);
	    k++) {
		name = arc_seal_names[k];
		copies = arc_seal_copies(hdr, name);
		/* Sign From even when absent, so that none can be added. */
		if (copies == 0 && strcmp(name, "from") == 0)
			copies = 1;
		at = msghdr_count(hdr);
		for (c = 0; c < copies && names < ARC_SEAL_NAMES_MAX; c++) {
			if (names++ > 0) {
				if (line + strlen(name) > 70) {
					bad |= buf_append(f, "\r\n\t", 3);
					line = 1;
				}
				bad |= buf_append(f, ":", 1);
				line++;
			}
			bad |= buf_append(f, name, strlen(name));
			line += strlen(name);
			while (at > 0 && !msghdr_name_is(hdr, at - 1, name))
				at--;
			if (at == 0)
				continue;	/* absent: hashes nothing */
			raw = msghdr_raw(hdr, --at, &len);
			dkim_canon_header(&h, DKIM_CANON_RELAXED, raw, len,
			    0, 0, 0);
		}
	}
	bad |= buf_printf(f, ";\r\n\tbh=%s;\r\n\tb=", bh64);
	if (!bad)
		dkim_canon_header(&h, DKIM_CANON_RELAXED, f->data + start,
		    f->len - start, 0, 0, 1);
	dkim_hash_final(&h, digest);
	return bad ? -1 : 0;
}

int
arc_seal(const struct arc_sealer *s, struct arc_seal_input *in,
    const struct msghdr_section *hdr, const char *authres, size_t authres_len, enum arc_result chain,
    time_t now, struct buf *out, const char **skip_reason)
{
	static const char prefix[] = "Authentication-Results:";
	struct seal_set sets[ARC_INSTANCE_MAX + 1];
	unsigned char digest[DKIM_HASH_LEN];
	const char *cv, *raw;
	struct dkim_hash h;
	struct buf f;
	size_t aar_off, ams_off, as_off, len, k;
	unsigned n, j;
	int broken, bad = 0;

	arc_seal_input_finish(in);
	if (msghdr_overflow(hdr)) {
		*skip_reason = "header section too large to seal";
		return -1;
	}
	if (authres_len <= sizeof(prefix) - 1 ||
	    strncasecmp(authres, prefix, sizeof(prefix) - 1) != 0) {
		*skip_reason = "no Authentication-Results to seal";
		return -1;
	}
	memset(sets, 0, sizeof(sets));
	n = arc_seal_collect(hdr, sets, &broken);
	if (n >= ARC_INSTANCE_MAX) {
		*skip_reason = "the chain has 50 ARC sets already";
		return -1;
	}
	if (n > 0 && sets[n].count[SEAL_AS] == 1 &&
	    sets[n].cv == DKIM_CV_FAIL) {
		*skip_reason = "the chain ended with cv=fail";
		return -1;
	}
	if (n == 0 && !broken)
		cv = "none";
	else if (chain == ARC_PASS && !broken && n > 0)
		cv = "pass";
	else
		cv = "fail";

	/* Built in sealing order, written out in reverse: AS, AMS, AAR. */
	buf_init(&f, authres_len + 32 * 1024);
	aar_off = 0;
	bad |= buf_printf(&f, "ARC-Authentication-Results: i=%u;", n + 1);
	bad |= buf_append(&f, authres + sizeof(prefix) - 1,
	    authres_len - (sizeof(prefix) - 1));
	ams_off = f.len;
	if (bad || arc_seal_ams(s, in, hdr, n + 1, now, &f, digest) < 0 ||
	    arc_seal_sign(s, digest, &f) < 0)
		goto fail;
	as_off = f.len;

	dkim_hash_init(&h);
	/* Section 5.1.2: a failed chain's seal covers only its own set. */
	for (j = 1; j <= n && strcmp(cv, "fail") != 0; j++)
		for (k = SEAL_AAR; k <= SEAL_AS; k++) {
			raw = msghdr_raw(hdr, sets[j].field[k], &len);
			dkim_canon_header(&h, DKIM_CANON_RELAXED, raw, len,
			    0, 0, 0);
		}
	dkim_canon_header(&h, DKIM_CANON_RELAXED, f.data + aar_off,
	    ams_off - aar_off, 0, 0, 0);
	dkim_canon_header(&h, DKIM_CANON_RELAXED, f.data + ams_off,
	    as_off - ams_off, 0, 0, 0);
	bad |= buf_printf(&f, "ARC-Seal: i=%u; a=%s; t=%lld; cv=%s;\r\n\t"
	    "d=%s; s=%s;\r\n\tb=", n + 1, arc_seal_alg(s), (long long)now,
	    cv, s->domain, s->selector);
	if (!bad)
		dkim_canon_header(&h, DKIM_CANON_RELAXED, f.data + as_off,
		    f.len - as_off, 0, 0, 1);
	dkim_hash_final(&h, digest);
	if (bad || arc_seal_sign(s, digest, &f) < 0 || buf_room(out) < f.len ||
	    buf_append(out, f.data + as_off, f.len - as_off) < 0 ||
	    buf_append(out, f.data + ams_off, as_off - ams_off) < 0 ||
	    buf_append(out, f.data + aar_off, ams_off - aar_off) < 0)
		goto fail;
	buf_free(&f);
	return 0;
fail:
	buf_free(&f);
	*skip_reason = "signing failed";
	return -1;
}
