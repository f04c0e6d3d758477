/*
 * Streaming DKIM verification (see dkim.h), in four parts:
 *
 *   parsing      tag-lists, DKIM-Signature and ARC signature fields
 *   hashing      header and body canonicalization into SHA-256
 *   keys         key records from DNS and the signature check
 *   verifier     the streaming driver and its result callback
 *
 * A verifier goes through these steps:
 *
 *   update()     header bytes until the empty line; then every signature
 *                is parsed, its header input hashed and its key lookup
 *                started
 *   update()     body bytes, canonicalized and hashed per body hash
 *   finish()     the body hashes are finished
 *   report       once no lookup is pending: from a zero timer, or from the
 *                DNS callback of the last lookup
 *
 * Every signature ends with one result.  Errors found before the key
 * lookup (syntax, rsa-sha1, limits, expiry) settle it at once, and then
 * no lookup starts for it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "dkim.h"
#include "log.h"
#include "xmalloc.h"

/* Maximum key record length, all TXT strings joined. */
#define DKIM_KEY_TEXT_MAX	8192
#define DKIM_KEY_BYTES_MAX	2048	/* decoded p= */
#define DKIM_RSA_BITS_MIN	1024	/* RFC 8301 section 3.2 */
#define DKIM_RSA_BITS_MAX	8192
#define DKIM_ED25519_SIG_LEN	64
#define DKIM_INSTANCE_MAX	50	/* RFC 8617 section 4.2.1 */

static const char *const dkim_result_names[] = {
	[DKIM_PASS] = "pass",
	[DKIM_FAIL] = "fail",
	[DKIM_NEUTRAL] = "neutral",
	[DKIM_POLICY] = "policy",
	[DKIM_TEMPERROR] = "temperror",
	[DKIM_PERMERROR] = "permerror",
};

static const char *const dkim_alg_names[] = {
	[DKIM_ALG_UNKNOWN] = "unknown",
	[DKIM_ALG_RSA_SHA256] = "rsa-sha256",
	[DKIM_ALG_ED25519_SHA256] = "ed25519-sha256",
	[DKIM_ALG_RSA_SHA1] = "rsa-sha1",
};

const char *
dkim_result_str(enum dkim_result r)
{
	if ((size_t)r >= sizeof(dkim_result_names) / sizeof(*dkim_result_names))
		return "unknown";
	return dkim_result_names[r];
}

const char *
dkim_alg_str(enum dkim_alg a)
{
	if ((size_t)a >= sizeof(dkim_alg_names) / sizeof(*dkim_alg_names))
		return "unknown";
	return dkim_alg_names[a];
}

/*
 * Parsing
 */

static int
dkim_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* FWS in a field value: white space and the line ends of folding. */
static int
dkim_is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* VALCHAR of RFC 6376 section 3.2: printable ASCII except ";". */
static int
dkim_is_valchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

static size_t
dkim_skip_fws(const char *s, size_t pos, size_t len)
{
	while (pos < len && dkim_is_fws((unsigned char)s[pos]))
		pos++;
	return pos;
}

/* Compare a span with a literal, ignoring case (ABNF literals). */
static int
dkim_span_is(const char *p, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(p, lit, len) == 0;
}

/* Parse one tag-spec at *pos; on success *pos is at the ";" or the end. */
static int
dkim_tag_parse(struct dkim_tag *t, const char *s, size_t len, size_t *pos)
{
	size_t p = *pos, vend;

	if (!isalpha((unsigned char)s[p]))
		return -1;
	t->name = s + p;
	while (p < len && (isalnum((unsigned char)s[p]) || s[p] == '_'))
		p++;
	t->name_len = (size_t)(s + p - t->name);
	p = dkim_skip_fws(s, p, len);
	if (p == len || s[p] != '=')
		return -1;
	t->raw_start = ++p;
	p = dkim_skip_fws(s, p, len);
	t->value = s + p;
	for (vend = p; p < len && s[p] != ';'; p++) {
		if (dkim_is_valchar((unsigned char)s[p]))
			vend = p + 1;
		else if (!dkim_is_fws((unsigned char)s[p]))
			return -1;
	}
	t->value_len = (size_t)(s + vend - t->value);
	t->raw_end = p;
	*pos = p;
	return 0;
}

static int
dkim_tag_repeats(const struct dkim_taglist *tl, const struct dkim_tag *t)
{
	size_t i;

	for (i = 0; i < tl->count; i++)
		if (tl->tags[i].name_len == t->name_len &&
		    memcmp(tl->tags[i].name, t->name, t->name_len) == 0)
			return 1;
	return 0;
}

int
dkim_taglist_parse(struct dkim_taglist *tl, const char *s, size_t len)
{
	struct dkim_tag t;
	size_t pos = 0;

	tl->count = 0;
	for (;;) {
		pos = dkim_skip_fws(s, pos, len);
		if (pos == len)
			return 0;	/* end, possibly after a final ";" */
		if (dkim_tag_parse(&t, s, len, &pos) < 0)
			return -1;
		if (dkim_tag_repeats(tl, &t) || tl->count == DKIM_TAGS_MAX)
			return -1;
		tl->tags[tl->count++] = t;
		if (pos == len)
			return 0;
		pos++;		/* the ";" */
	}
}

const struct dkim_tag *
dkim_taglist_get(const struct dkim_taglist *tl, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < tl->count; i++)
		if (tl->tags[i].name_len == n &&
		    memcmp(tl->tags[i].name, name, n) == 0)
			return &tl->tags[i];
	return NULL;
}

static int
dkim_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode base64 text, ignoring FWS, with or without "=" padding.
 * Returns 0 with the length in *outlen, or -1 when the text is invalid or
 * decodes to more than outsz bytes.
 */
static int
dkim_base64_decode(const char *s, size_t len, unsigned char *out,
    size_t outsz, size_t *outlen)
{
	uint32_t acc = 0;
	size_t i, n = 0, chars = 0, pad = 0;
	int bits = 0, v;

	for (i = 0; i < len; i++) {
		if (dkim_is_fws((unsigned char)s[i]))
			continue;
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = dkim_b64_value((unsigned char)s[i])) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		chars++;
		if (bits >= 8) {
			bits -= 8;
			if (n == outsz)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (chars % 4 == 1 || pad > 2 || (pad > 0 && (chars + pad) % 4 != 0))
		return -1;
	*outlen = n;
	return 0;
}

static int
dkim_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)toupper(c);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode a dkim-quoted-printable value (RFC 6376 section 2.11), FWS
 * ignored, into a NUL-terminated string.  Returns 0, or -1 when the text
 * is invalid, decodes to a control character or does not fit.
 */
static int
dkim_qp_decode(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i, n = 0;
	int hi, lo;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (dkim_is_fws(c))
			continue;
		if (c == '=') {
			if (len - i < 3)
				return -1;
			hi = dkim_hex_value((unsigned char)s[i + 1]);
			lo = dkim_hex_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || n + 1 >= outsz)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/*
 * Check a domain name (d=, s=, the domain of i=): dot-separated labels of
 * letters, digits, "-" and "_", each 1 to 63 bytes, at most max bytes in
 * all.  Copy it, lowercased when lower is set, into out (max + 1 bytes).
 */
static int
dkim_copy_domain(char *out, size_t max, const char *p, size_t len, int lower)
{
	size_t i, label = 0;
	unsigned char c;

	if (len == 0 || len > max)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)p[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = lower ? (char)tolower(c) : (char)c;
	}
	out[len] = '\0';
	return label == 0 ? -1 : 0;
}

/* Parse 1 to maxdigits decimal digits; larger values clamp at UINT64_MAX. */
static int
dkim_parse_uint(const struct dkim_tag *t, size_t maxdigits, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (t->value_len == 0 || t->value_len > maxdigits)
		return -1;
	for (i = 0; i < t->value_len; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + (uint64_t)(t->value[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Find the next element of a colon-separated list in t's value, FWS
 * around elements trimmed.  *pos starts at 0 and moves past the element.
 * Returns 0 with the element in *p and *len, or -1 at the end.
 */
static int
dkim_list_next(const struct dkim_tag *t, size_t *pos, const char **p,
    size_t *len)
{
	const char *s = t->value;
	size_t start, end;

	if (*pos > t->value_len)
		return -1;
	start = dkim_skip_fws(s, *pos, t->value_len);
	end = start;
	while (end < t->value_len && s[end] != ':')
		end++;
	*pos = end + 1;
	*p = s + start;
	while (end > start && dkim_is_fws((unsigned char)s[end - 1]))
		end--;
	*len = end - start;
	return 0;
}

/* Non-zero when the colon-separated list in t contains lit (any case). */
static int
dkim_list_has(const struct dkim_tag *t, const char *lit)
{
	const char *p;
	size_t pos = 0, len;

	while (dkim_list_next(t, &pos, &p, &len) == 0)
		if (dkim_span_is(p, len, lit))
			return 1;
	return 0;
}

static enum dkim_alg
dkim_alg_parse(const struct dkim_tag *t)
{
	if (dkim_span_is(t->value, t->value_len, "rsa-sha256"))
		return DKIM_ALG_RSA_SHA256;
	if (dkim_span_is(t->value, t->value_len, "ed25519-sha256"))
		return DKIM_ALG_ED25519_SHA256;
	if (dkim_span_is(t->value, t->value_len, "rsa-sha1"))
		return DKIM_ALG_RSA_SHA1;
	return DKIM_ALG_UNKNOWN;
}

static int
dkim_canon_parse_one(const char *p, size_t len, enum dkim_canon *out)
{
	if (dkim_span_is(p, len, "simple"))
		*out = DKIM_CANON_SIMPLE;
	else if (dkim_span_is(p, len, "relaxed"))
		*out = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

/* c= "header[/body]"; the body part defaults to simple (section 3.5). */
static int
dkim_canon_parse(struct dkim_sig *sig, const struct dkim_tag *t)
{
	const char *slash = memchr(t->value, '/', t->value_len);
	size_t hlen = slash ? (size_t)(slash - t->value) : t->value_len;

	sig->bcanon = DKIM_CANON_SIMPLE;
	if (dkim_canon_parse_one(t->value, hlen, &sig->hcanon) < 0)
		return -1;
	if (slash == NULL)
		return 0;
	return dkim_canon_parse_one(slash + 1, t->value_len - hlen - 1,
	    &sig->bcanon);
}

/* h=: field names separated by ":", From required unless an ARC-Seal. */
static int
dkim_h_parse(struct dkim_sig *sig, const struct dkim_tag *t,
    const char *value, const char **reason)
{
	const char *p;
	size_t pos = 0, len, i;
	int from = 0;

	*reason = "h= tag syntax error";
	while (dkim_list_next(t, &pos, &p, &len) == 0) {
		if (len == 0)
			return -1;
		for (i = 0; i < len; i++)
			if (!isgraph((unsigned char)p[i]))
				return -1;
		if (sig->h_count == DKIM_H_MAX) {
			*reason = "h= tag lists too many fields";
			return -1;
		}
		sig->h[sig->h_count].off = (uint32_t)(p - value);
		sig->h[sig->h_count].len = (uint32_t)len;
		sig->h_count++;
		from |= dkim_span_is(p, len, "from");
	}
	if (!from) {
		*reason = "From field not signed";
		return -1;
	}
	return 0;
}

/*
 * i= of DKIM: "[local-part]@domain", dkim-quoted-printable, whose domain
 * is d= or a subdomain of it (section 6.1.1).  Without i=, "@" d=.
 */
static int
dkim_identity_parse(struct dkim_sig *sig, const struct dkim_tag *t,
    const char **reason)
{
	char domain[DKIM_DOMAIN_MAX + 1];
	const char *at;
	size_t dlen, len;

	if (t == NULL) {
		snprintf(sig->identity, sizeof(sig->identity), "@%s",
		    sig->domain);
		return 0;
	}
	*reason = "i= tag syntax error";
	if (dkim_qp_decode(t->value, t->value_len, sig->identity,
	    sizeof(sig->identity)) < 0 ||
	    (at = strrchr(sig->identity, '@')) == NULL)
		return -1;
	len = strlen(at + 1);
	if (dkim_copy_domain(domain, DKIM_DOMAIN_MAX, at + 1, len, 1) < 0)
		return -1;
	*reason = "i= domain is not d= or a subdomain of it";
	dlen = strlen(sig->domain);
	if (strcmp(domain, sig->domain) == 0)
		return 0;
	if (len > dlen && domain[len - dlen - 1] == '.' &&
	    strcmp(domain + len - dlen, sig->domain) == 0)
		return 0;
	return -1;
}

/* ARC i=: the instance number, 1 to 50 (RFC 8617 section 4.2.1). */
static int
dkim_instance_parse(struct dkim_sig *sig, const struct dkim_tag *t)
{
	uint64_t v;

	if (t == NULL || dkim_parse_uint(t, 2, &v) < 0 || v < 1 ||
	    v > DKIM_INSTANCE_MAX)
		return -1;
	sig->instance = (unsigned)v;
	return 0;
}

static int
dkim_cv_parse(struct dkim_sig *sig, const struct dkim_tag *t)
{
	if (t == NULL)
		return -1;
	if (dkim_span_is(t->value, t->value_len, "none"))
		sig->cv = DKIM_CV_NONE;
	else if (dkim_span_is(t->value, t->value_len, "pass"))
		sig->cv = DKIM_CV_PASS;
	else if (dkim_span_is(t->value, t->value_len, "fail"))
		sig->cv = DKIM_CV_FAIL;
	else
		return -1;
	return 0;
}

/*
 * d=, s= and a=, copied when valid so that a report can name them.
 * Returns -1 when one of them or b= is missing or invalid.
 */
static int
dkim_sig_parse_names(struct dkim_sig *sig, const struct dkim_taglist *tl,
    const char **reason)
{
	const struct dkim_tag *d = dkim_taglist_get(tl, "d");
	const struct dkim_tag *s = dkim_taglist_get(tl, "s");
	const struct dkim_tag *a = dkim_taglist_get(tl, "a");

	if (a != NULL)
		sig->alg = dkim_alg_parse(a);
	if (d != NULL && dkim_copy_domain(sig->domain, DKIM_DOMAIN_MAX,
	    d->value, d->value_len, 1) < 0)
		sig->domain[0] = '\0';
	if (s != NULL && dkim_copy_domain(sig->selector, DKIM_DOMAIN_MAX,
	    s->value, s->value_len, 0) < 0)
		sig->selector[0] = '\0';
	*reason = "signature missing required tag";
	if (d == NULL || s == NULL || a == NULL ||
	    dkim_taglist_get(tl, "b") == NULL)
		return -1;
	*reason = "signature syntax error";
	if (sig->domain[0] == '\0' || sig->selector[0] == '\0')
		return -1;
	*reason = "unknown signature algorithm";
	if (sig->alg == DKIM_ALG_UNKNOWN)
		return -1;
	return 0;
}

/* b=: decoded, and where its value lies for the header hash. */
static int
dkim_b_parse(struct dkim_sig *sig, const struct dkim_tag *t,
    const char **reason)
{
	size_t i, n = 0;

	*reason = "b= tag syntax error";
	if (dkim_base64_decode(t->value, t->value_len, sig->b, sizeof(sig->b),
	    &sig->b_len) < 0 || sig->b_len == 0)
		return -1;
	for (i = 0; i < t->value_len && n < DKIM_B_PREFIX; i++)
		if (!dkim_is_fws((unsigned char)t->value[i]))
			sig->b_prefix[n++] = t->value[i];
	sig->b_prefix[n] = '\0';
	sig->b_raw_start = t->raw_start;
	sig->b_raw_end = t->raw_end;
	return 0;
}

/* The tags of DKIM-Signature and ARC-Message-Signature only. */
static int
dkim_sig_parse_message_tags(struct dkim_sig *sig,
    const struct dkim_taglist *tl, const char *value, const char **reason)
{
	const struct dkim_tag *t;
	unsigned char bh[64];

	*reason = "signature missing required tag";
	if ((t = dkim_taglist_get(tl, "bh")) == NULL)
		return -1;
	*reason = "bh= tag syntax error";
	if (dkim_base64_decode(t->value, t->value_len, bh, sizeof(bh),
	    &sig->bh_len) < 0)
		return -1;
	memcpy(sig->bh, bh, sig->bh_len < DKIM_HASH_LEN ? sig->bh_len :
	    DKIM_HASH_LEN);
	*reason = "signature missing required tag";
	if ((t = dkim_taglist_get(tl, "h")) == NULL)
		return -1;
	if (dkim_h_parse(sig, t, value, reason) < 0)
		return -1;
	*reason = "c= tag syntax error";
	if ((t = dkim_taglist_get(tl, "c")) != NULL &&
	    dkim_canon_parse(sig, t) < 0)
		return -1;
	*reason = "l= tag syntax error";
	if ((t = dkim_taglist_get(tl, "l")) != NULL) {
		if (dkim_parse_uint(t, 76, &sig->l) < 0)
			return -1;
		sig->has_l = 1;
	}
	*reason = "unsupported query method";
	if ((t = dkim_taglist_get(tl, "q")) != NULL &&
	    !dkim_list_has(t, "dns/txt"))
		return -1;
	return 0;
}

/* t= and x=: 1 to 12 digits each, x= later than t= (section 3.5). */
static int
dkim_sig_parse_times(struct dkim_sig *sig, const struct dkim_taglist *tl,
    const char **reason)
{
	const struct dkim_tag *t;

	*reason = "t= tag syntax error";
	if ((t = dkim_taglist_get(tl, "t")) != NULL) {
		if (dkim_parse_uint(t, 12, &sig->t) < 0)
			return -1;
		sig->has_t = 1;
	}
	*reason = "x= tag syntax error";
	if ((t = dkim_taglist_get(tl, "x")) != NULL) {
		if (dkim_parse_uint(t, 12, &sig->x) < 0)
			return -1;
		sig->has_x = 1;
	}
	*reason = "x= is not later than t=";
	if (sig->has_t && sig->has_x && sig->x <= sig->t)
		return -1;
	return 0;
}

/* v= of DKIM-Signature: required, and "1" (section 3.5). */
static int
dkim_sig_parse_version(const struct dkim_taglist *tl, const char **reason)
{
	const struct dkim_tag *t = dkim_taglist_get(tl, "v");

	*reason = "signature missing required tag";
	if (t == NULL)
		return -1;
	*reason = "incompatible signature version";
	return dkim_span_is(t->value, t->value_len, "1") ? 0 : -1;
}

/* The tags that differ between DKIM-Signature, AMS and ARC-Seal. */
static int
dkim_sig_parse_kind(struct dkim_sig *sig, const struct dkim_taglist *tl,
    const char **reason)
{
	switch (sig->kind) {
	case DKIM_SIG_DKIM:
		return dkim_identity_parse(sig, dkim_taglist_get(tl, "i"),
		    reason);
	case DKIM_SIG_AMS:
		*reason = "i= tag missing or not an ARC instance";
		return dkim_instance_parse(sig, dkim_taglist_get(tl, "i"));
	case DKIM_SIG_SEAL:
		*reason = "i= tag missing or not an ARC instance";
		if (dkim_instance_parse(sig, dkim_taglist_get(tl, "i")) < 0)
			return -1;
		*reason = "cv= tag missing or invalid";
		if (dkim_cv_parse(sig, dkim_taglist_get(tl, "cv")) < 0)
			return -1;
		/* RFC 8617 section 4.1.3: h= is not allowed in an ARC-Seal. */
		*reason = "h= tag in ARC-Seal";
		return dkim_taglist_get(tl, "h") != NULL ? -1 : 0;
	}
	fatal_invariant("unknown signature kind");
}

int
dkim_sig_parse(struct dkim_sig *sig, enum dkim_sig_kind kind,
    const char *value, size_t len, const char **reason)
{
	struct dkim_taglist tl;

	memset(sig, 0, sizeof(*sig));
	sig->kind = kind;
	sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
	*reason = "signature syntax error";
	if (dkim_taglist_parse(&tl, value, len) < 0)
		return -1;
	/* d=, s= and a= first: the report names them if a later tag fails. */
	if (dkim_sig_parse_names(sig, &tl, reason) < 0)
		return -1;
	if (kind == DKIM_SIG_DKIM && dkim_sig_parse_version(&tl, reason) < 0)
		return -1;
	if (dkim_b_parse(sig, dkim_taglist_get(&tl, "b"), reason) < 0)
		return -1;
	if (kind != DKIM_SIG_SEAL &&
	    dkim_sig_parse_message_tags(sig, &tl, value, reason) < 0)
		return -1;
	if (dkim_sig_parse_times(sig, &tl, reason) < 0)
		return -1;
	return dkim_sig_parse_kind(sig, &tl, reason);
}

int
dkim_sig_check_time(const struct dkim_sig *sig, time_t now,
    const char **reason)
{
	uint64_t n = now > 0 ? (uint64_t)now : 0;

	if (sig->has_t && sig->t > n + DKIM_CLOCK_SKEW) {
		*reason = "signature timestamp in the future";
		return -1;
	}
	if (sig->has_x && sig->x + DKIM_CLOCK_SKEW < n) {
		*reason = "signature expired";
		return -1;
	}
	return 0;
}

int
dkim_key_name(const struct dkim_sig *sig, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s._domainkey.%s", sig->selector,
	    sig->domain);

	if (n < 0 || (size_t)n >= outsz || n > DKIM_DOMAIN_MAX)
		return -1;
	return 0;
}

/*
 * Hashing
 */

void
dkim_hash_init(struct dkim_hash *h)
{
	h->len = 0;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(),
	    NULL) != 1)
		fatal_invariant("SHA-256 digest initialisation failed");
}

static void
dkim_hash_flush(struct dkim_hash *h)
{
	if (h->len > 0 && EVP_DigestUpdate(h->ctx, h->buf, h->len) != 1)
		fatal_invariant("SHA-256 digest update failed");
	h->len = 0;
}

void
dkim_hash_put(struct dkim_hash *h, const void *p, size_t n)
{
	if (n > sizeof(h->buf) - h->len) {
		dkim_hash_flush(h);
		if (n >= sizeof(h->buf)) {
			if (EVP_DigestUpdate(h->ctx, p, n) != 1)
				fatal_invariant("SHA-256 digest update failed");
			return;
		}
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

static void
dkim_hash_putc(struct dkim_hash *h, char c)
{
	if (h->len == sizeof(h->buf))
		dkim_hash_flush(h);
	h->buf[h->len++] = (unsigned char)c;
}

void
dkim_hash_final(struct dkim_hash *h, unsigned char out[DKIM_HASH_LEN])
{
	unsigned int n = 0;

	dkim_hash_flush(h);
	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != DKIM_HASH_LEN)
		fatal_invariant("SHA-256 digest finalisation failed");
	dkim_hash_clear(h);
}

void
dkim_hash_clear(struct dkim_hash *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	h->len = 0;
}

/*
 * Relaxed header canonicalization (section 3.4.2) of one contiguous
 * field without its final line end: name lowercased, white space around
 * the colon removed, folding CRLFs removed, white space runs reduced to
 * one SP, trailing white space removed.
 */
static void
dkim_canon_header_relaxed(struct dkim_hash *h, const char *p, size_t len)
{
	const char *colon = memchr(p, ':', len);
	size_t i, name_end = colon ? (size_t)(colon - p) : len;
	int started = 0, space = 0;

	for (i = 0; i < name_end; i++)
		if (!dkim_is_wsp((unsigned char)p[i]))
			dkim_hash_putc(h, (char)tolower((unsigned char)p[i]));
	if (colon == NULL)
		return;
	dkim_hash_putc(h, ':');
	for (i = name_end + 1; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			i++;
			continue;
		}
		if (dkim_is_wsp((unsigned char)p[i])) {
			space = started;
			continue;
		}
		if (space)
			dkim_hash_putc(h, ' ');
		space = 0;
		started = 1;
		dkim_hash_putc(h, p[i]);
	}
}

void
dkim_canon_header(struct dkim_hash *h, enum dkim_canon canon,
    const char *raw, size_t len, size_t skip_off, size_t skip_len, int last)
{
	char *copy = NULL;
	size_t n = len;

	if (skip_off > len || skip_len > len - skip_off)
		fatal_invariant("skipped span outside the header field");
	if (skip_len > 0) {
		copy = xmalloc(len - skip_len);
		memcpy(copy, raw, skip_off);
		memcpy(copy + skip_off, raw + skip_off + skip_len,
		    len - skip_off - skip_len);
		raw = copy;
		n = len - skip_len;
	}
	if (canon == DKIM_CANON_SIMPLE) {
		if (last && n > 0 && raw[n - 1] == '\n')
			n--;
		if (last && n > 0 && raw[n - 1] == '\r')
			n--;
		dkim_hash_put(h, raw, n);
	} else {
		if (n > 0 && raw[n - 1] == '\n')
			n--;
		if (n > 0 && raw[n - 1] == '\r')
			n--;
		dkim_canon_header_relaxed(h, raw, n);
		if (!last)
			dkim_hash_put(h, "\r\n", 2);
	}
	free(copy);
}

/*
 * The field that h= entry names next: the bottom-most one with that name
 * not used yet (section 5.4.2), marked used.  MSGHDR_NONE if none is
 * left, and then the entry adds nothing to the hash.
 */
static size_t
dkim_select_field(const struct msghdr_section *hdr, const char *name,
    size_t len, unsigned char *used)
{
	const char *fname;
	size_t i, flen;

	for (i = msghdr_count(hdr); i-- > 0;) {
		if (used[i / 8] & (1u << (i % 8)))
			continue;
		fname = msghdr_name(hdr, i, &flen);
		if (flen == len && strncasecmp(fname, name, len) == 0) {
			used[i / 8] |= (unsigned char)(1u << (i % 8));
			return i;
		}
	}
	return MSGHDR_NONE;
}

void
dkim_sig_header_digest(const struct msghdr_section *hdr, size_t sig_field,
    const struct dkim_sig *sig, unsigned char out[DKIM_HASH_LEN])
{
	unsigned char used[MSGHDR_FIELDS_MAX / 8 + 1];
	struct dkim_hash h;
	const char *raw, *value;
	size_t i, f, len, vlen, value_off;

	memset(used, 0, sizeof(used));
	value = msghdr_raw_value(hdr, sig_field, &vlen);
	dkim_hash_init(&h);
	for (i = 0; i < sig->h_count; i++) {
		f = dkim_select_field(hdr, value + sig->h[i].off,
		    sig->h[i].len, used);
		if (f == MSGHDR_NONE)
			continue;
		raw = msghdr_raw(hdr, f, &len);
		dkim_canon_header(&h, sig->hcanon, raw, len, 0, 0, 0);
	}
	raw = msghdr_raw(hdr, sig_field, &len);
	value_off = (size_t)(value - raw);
	dkim_canon_header(&h, sig->hcanon, raw, len,
	    value_off + sig->b_raw_start, sig->b_raw_end - sig->b_raw_start,
	    1);
	dkim_hash_final(&h, out);
}

void
dkim_body_hash_init(struct dkim_body_hash *b, enum dkim_canon canon,
    int has_limit, uint64_t limit)
{
	memset(b, 0, sizeof(*b));
	b->canon = canon;
	b->has_limit = has_limit;
	b->limit = limit;
	dkim_hash_init(&b->hash);
}

/* Hash canonical body bytes, up to l= when there is one. */
static void
dkim_body_emit(struct dkim_body_hash *b, const char *p, size_t n)
{
	size_t take = n;

	b->canon_len += n;
	if (b->has_limit && b->limit - b->hashed < take)
		take = (size_t)(b->limit - b->hashed);
	if (take > 0)
		dkim_hash_put(&b->hash, p, take);
	b->hashed += take;
}

/* Emit the empty lines held back: text follows, so they are not trailing. */
static void
dkim_body_line_start(struct dkim_body_hash *b)
{
	for (; b->empty_lines > 0; b->empty_lines--)
		dkim_body_emit(b, "\r\n", 2);
}

static void
dkim_body_line_end(struct dkim_body_hash *b)
{
	if (b->line_bytes)
		dkim_body_emit(b, "\r\n", 2);
	else
		b->empty_lines++;
	b->line_bytes = 0;
	b->wsp = 0;
}

/* Emit n bytes of line content (no CR, and no WSP when relaxed). */
static void
dkim_body_text(struct dkim_body_hash *b, const char *p, size_t n)
{
	if (!b->line_bytes)
		dkim_body_line_start(b);
	if (b->wsp)
		dkim_body_emit(b, " ", 1);
	b->wsp = 0;
	dkim_body_emit(b, p, n);
	b->line_bytes = 1;
}

/* The length of the run at p that the canonicalization passes unchanged. */
static size_t
dkim_body_run(const struct dkim_body_hash *b, const char *p, size_t n)
{
	const char *cr;
	size_t i;

	if (b->canon == DKIM_CANON_SIMPLE) {
		cr = memchr(p, '\r', n);
		return cr != NULL ? (size_t)(cr - p) : n;
	}
	for (i = 0; i < n; i++)
		if (p[i] == '\r' || dkim_is_wsp((unsigned char)p[i]))
			break;
	return i;
}

void
dkim_body_hash_update(struct dkim_body_hash *b, const char *p, size_t n)
{
	size_t i = 0, run;

	while (i < n) {
		if (b->cr) {
			b->cr = 0;
			if (p[i] == '\n') {
				dkim_body_line_end(b);
				i++;
				continue;
			}
			dkim_body_text(b, "\r", 1);	/* a bare CR is text */
		}
		if (p[i] == '\r') {
			b->cr = 1;
			i++;
		} else if (b->canon == DKIM_CANON_RELAXED &&
		    dkim_is_wsp((unsigned char)p[i])) {
			b->wsp = 1;
			i++;
		} else {
			run = dkim_body_run(b, p + i, n - i);
			dkim_body_text(b, p + i, run);
			i += run;
		}
	}
}

void
dkim_body_hash_final(struct dkim_body_hash *b)
{
	if (b->done)
		return;
	if (b->cr) {
		b->cr = 0;
		dkim_body_text(b, "\r", 1);
	}
	/* A last line without a line end gets one (sections 3.4.3, 3.4.4). */
	if (b->line_bytes)
		dkim_body_emit(b, "\r\n", 2);
	/* An empty simple body is one CRLF; an empty relaxed body is empty. */
	if (b->canon == DKIM_CANON_SIMPLE && b->canon_len == 0)
		dkim_body_emit(b, "\r\n", 2);
	dkim_hash_final(&b->hash, b->digest);
	b->done = 1;
}

void
dkim_body_hash_clear(struct dkim_body_hash *b)
{
	dkim_hash_clear(&b->hash);
}

/*
 * Keys
 */

void
dkim_key_clear(struct dkim_key *key)
{
	EVP_PKEY_free(key->rsa);
	memset(key, 0, sizeof(*key));
}

/* SubjectPublicKeyInfo, or a bare RSAPublicKey as some records carry. */
static enum dkim_result
dkim_key_load_rsa(struct dkim_key *key, const unsigned char *der, size_t len,
    const char **reason)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey;

	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	if (pkey == NULL) {
		p = der;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	}
	*reason = "invalid RSA key";
	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return DKIM_PERMERROR;
	}
	key->rsa = pkey;
	key->bits = (unsigned)EVP_PKEY_get_bits(pkey);
	if (key->bits < DKIM_RSA_BITS_MIN) {
		*reason = "RSA key shorter than 1024 bits";
		return DKIM_PERMERROR;
	}
	if (key->bits > DKIM_RSA_BITS_MAX) {
		*reason = "RSA key longer than 8192 bits";
		return DKIM_PERMERROR;
	}
	return DKIM_PASS;
}

/* p=: empty means revoked; otherwise the key for the k= type. */
static enum dkim_result
dkim_key_load_data(struct dkim_key *key, const struct dkim_tag *p,
    const char **reason)
{
	unsigned char der[DKIM_KEY_BYTES_MAX];
	size_t len;

	/* Section 6.1.2 step 7: a failed signature check. */
	*reason = "key revoked";
	if (p->value_len == 0)
		return DKIM_FAIL;
	*reason = "key record p= is not valid base64";
	if (dkim_base64_decode(p->value, p->value_len, der, sizeof(der),
	    &len) < 0)
		return DKIM_PERMERROR;
	if (key->alg == DKIM_ALG_RSA_SHA256)
		return dkim_key_load_rsa(key, der, len, reason);
	/* RFC 8463 section 4.2: the raw 32-byte public key. */
	*reason = "Ed25519 key is not 32 bytes";
	if (len != sizeof(key->ed25519))
		return DKIM_PERMERROR;
	memcpy(key->ed25519, der, len);
	key->bits = 256;
	return DKIM_PASS;
}

/* v=, h=, k= and s= (section 3.6.1) against the signature. */
static enum dkim_result
dkim_key_check_tags(struct dkim_key *key, const struct dkim_sig *sig,
    const struct dkim_taglist *tl, const char **reason)
{
	const struct dkim_tag *t;

	t = dkim_taglist_get(tl, "v");
	*reason = "key record version is not DKIM1";
	if (t != NULL && (t != &tl->tags[0] ||
	    t->value_len != 5 || memcmp(t->value, "DKIM1", 5) != 0))
		return DKIM_PERMERROR;
	*reason = "key record does not allow sha256";
	if ((t = dkim_taglist_get(tl, "h")) != NULL &&
	    !dkim_list_has(t, "sha256"))
		return DKIM_PERMERROR;
	key->alg = DKIM_ALG_RSA_SHA256;
	if ((t = dkim_taglist_get(tl, "k")) != NULL &&
	    !dkim_span_is(t->value, t->value_len, "rsa")) {
		*reason = "unknown key type";
		if (!dkim_span_is(t->value, t->value_len, "ed25519"))
			return DKIM_PERMERROR;
		key->alg = DKIM_ALG_ED25519_SHA256;
	}
	*reason = "key type does not match the signature algorithm";
	if (key->alg != sig->alg)
		return DKIM_PERMERROR;
	*reason = "key record is not for email";
	if ((t = dkim_taglist_get(tl, "s")) != NULL &&
	    !dkim_list_has(t, "*") && !dkim_list_has(t, "email"))
		return DKIM_PERMERROR;
	if ((t = dkim_taglist_get(tl, "t")) != NULL) {
		key->testing = dkim_list_has(t, "y");
		key->strict = dkim_list_has(t, "s");
	}
	return DKIM_PASS;
}

/* t=s: the i= domain must be d= itself, not a subdomain of it. */
static int
dkim_key_strict_ok(const struct dkim_sig *sig)
{
	const char *at = strrchr(sig->identity, '@');

	return sig->kind != DKIM_SIG_DKIM ||
	    (at != NULL && strcasecmp(at + 1, sig->domain) == 0);
}

enum dkim_result
dkim_key_parse(struct dkim_key *key, const struct dkim_sig *sig,
    const char *txt, size_t len, const char **reason)
{
	struct dkim_taglist tl;
	enum dkim_result r;

	memset(key, 0, sizeof(*key));
	*reason = "key record syntax error";
	if (dkim_taglist_parse(&tl, txt, len) < 0)
		return DKIM_PERMERROR;
	/* p= is required: without it the record is a syntax error. */
	*reason = "key record without p=";
	if (dkim_taglist_get(&tl, "p") == NULL)
		return DKIM_PERMERROR;
	r = dkim_key_check_tags(key, sig, &tl, reason);
	if (r == DKIM_PASS)
		r = dkim_key_load_data(key, dkim_taglist_get(&tl, "p"), reason);
	if (r == DKIM_PASS && key->strict && !dkim_key_strict_ok(sig)) {
		*reason = "key has t=s but i= is a subdomain of d=";
		r = DKIM_PERMERROR;
	}
	if (r != DKIM_PASS) {
		dkim_key_clear(key);
		return r;
	}
	return DKIM_PASS;
}

/*
 * Join the character-strings of a TXT record into out.  Returns the
 * length, or -1 if the record is not TXT, is malformed or is too long.
 */
static long
dkim_txt_join(const ldns_rr *rr, char *out, size_t outsz)
{
	const ldns_rdf *rdf;
	const uint8_t *d;
	size_t i, n = 0, size;

	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT)
		return -1;
	for (i = 0; i < ldns_rr_rd_count(rr); i++) {
		rdf = ldns_rr_rdf(rr, i);
		if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_STR)
			return -1;
		d = ldns_rdf_data(rdf);
		size = ldns_rdf_size(rdf);
		if (size < 1 || (size_t)d[0] != size - 1 || d[0] > outsz - n)
			return -1;
		memcpy(out + n, d + 1, d[0]);
		n += d[0];
	}
	return (long)n;
}

enum dkim_result
dkim_key_load(struct dkim_key *key, const struct dkim_sig *sig,
    const struct dns_answer *answer, const char **reason)
{
	char txt[DKIM_KEY_TEXT_MAX];
	enum dkim_result r, first = DKIM_PERMERROR;
	const char *first_reason = "no key record for signature";
	size_t i, count;
	long len;

	memset(key, 0, sizeof(*key));
	switch (answer->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		*reason = "no key record for signature";
		return DKIM_PERMERROR;
	case DNS_SERVFAIL:
		*reason = "key lookup failed";
		return DKIM_TEMPERROR;
	case DNS_TIMEOUT:
		*reason = "key lookup timed out";
		return DKIM_TEMPERROR;
	}
	/* Section 6.1.2 step 4: try each record, report the first's error. */
	count = answer->rrs != NULL ? ldns_rr_list_rr_count(answer->rrs) : 0;
	for (i = 0; i < count; i++) {
		len = dkim_txt_join(ldns_rr_list_rr(answer->rrs, i), txt,
		    sizeof(txt));
		if (len < 0) {
			r = DKIM_PERMERROR;
			*reason = "key record too long or malformed";
		} else {
			r = dkim_key_parse(key, sig, txt, (size_t)len, reason);
		}
		if (r == DKIM_PASS)
			return r;
		if (i == 0) {
			first = r;
			first_reason = *reason;
		}
	}
	*reason = first_reason;
	return first;
}

static int
dkim_verify_rsa(EVP_PKEY *pkey, const struct dkim_sig *sig,
    const unsigned char digest[DKIM_HASH_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	int ok = 0;

	if (ctx == NULL)
		fatal_invariant("EVP_PKEY_CTX_new failed");
	if (EVP_PKEY_verify_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)
		ok = EVP_PKEY_verify(ctx, sig->b, sig->b_len, digest,
		    DKIM_HASH_LEN) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

enum dkim_result
dkim_verify_digest(const struct dkim_key *key, const struct dkim_sig *sig,
    const unsigned char digest[DKIM_HASH_LEN])
{
	if (key->alg == DKIM_ALG_RSA_SHA256 && key->rsa != NULL)
		return dkim_verify_rsa(key->rsa, sig, digest) ? DKIM_PASS :
		    DKIM_FAIL;
	if (key->alg != DKIM_ALG_ED25519_SHA256 ||
	    sig->b_len != DKIM_ED25519_SIG_LEN)
		return DKIM_FAIL;
	if (sodium_init() < 0)
		fatal_invariant("sodium_init failed");
	/* RFC 8463 section 3: Ed25519 over the SHA-256 digest itself. */
	return crypto_sign_verify_detached(sig->b, digest, DKIM_HASH_LEN,
	    key->ed25519) == 0 ? DKIM_PASS : DKIM_FAIL;
}

/*
 * Verifier
 */

/* One DKIM-Signature field and its progress. */
struct dkim_vsig {
	struct dkim_verifier	*v;
	size_t			 field;		/* index in the header */
	struct dkim_sig		 sig;
	struct dkim_sig_result	 res;
	int			 settled;	/* res is final already */
	struct dkim_body_hash	*body;
	struct dns_query	*query;		/* pending key lookup */
	struct dkim_key		 key;
	enum dkim_result	 key_result;
	const char		*key_reason;
	unsigned char		 digest[DKIM_HASH_LEN];	/* header hash */
};

struct dkim_verifier {
	struct dns_ctx		*dns;
	struct ev_loop		*loop;
	time_t			 now;		/* fixed, or 0 for the clock */
	unsigned		 verify_max;
	struct msghdr_section		 hdr;
	int			 header_done;
	int			 finished;
	struct dkim_vsig	*sigs;
	size_t			 nsigs;
	size_t			 verifying;	/* signatures with a lookup */
	/*
	 * One body hash per distinct (body canonicalization, l=), each
	 * allocated when a signature needs it.
	 */
	struct dkim_body_hash	*bodies[DKIM_VERIFY_MAX];
	size_t			 nbodies;
	size_t			 pending;	/* key lookups not answered */
	dkim_cb			*cb;
	void			*cb_arg;
	ev_timer		 timer;
};

static void dkim_timer_cb(struct ev_loop *, ev_timer *, int);

struct dkim_verifier *
dkim_verifier_new(struct dns_ctx *dns, struct ev_loop *loop,
    const struct dkim_options *opts)
{
	struct dkim_verifier *v = xcalloc(1, sizeof(*v));

	v->dns = dns;
	v->loop = loop;
	v->verify_max = DKIM_VERIFY_MAX;
	if (opts != NULL) {
		v->now = opts->now;
		if (opts->verify_max > 0 && opts->verify_max < DKIM_VERIFY_MAX)
			v->verify_max = opts->verify_max;
	}
	msghdr_init(&v->hdr);
	ev_timer_init(&v->timer, dkim_timer_cb, 0., 0.);
	v->timer.data = v;
	return v;
}

static void
dkim_settle(struct dkim_vsig *vs, enum dkim_result r, const char *reason)
{
	vs->res.result = r;
	vs->res.reason = reason;
	vs->settled = 1;
}

/* The body hash for sig's body canonicalization and l=, shared. */
static struct dkim_body_hash *
dkim_body_for(struct dkim_verifier *v, const struct dkim_sig *sig)
{
	struct dkim_body_hash *b;
	size_t i;

	for (i = 0; i < v->nbodies; i++) {
		b = v->bodies[i];
		if (b->canon == sig->bcanon && b->has_limit == sig->has_l &&
		    (!sig->has_l || b->limit == sig->l))
			return b;
	}
	if (v->nbodies == DKIM_VERIFY_MAX)
		fatal_invariant("more body hashes than verified signatures");
	b = xcalloc(1, sizeof(*b));
	v->bodies[v->nbodies++] = b;
	dkim_body_hash_init(b, sig->bcanon, sig->has_l, sig->l);
	return b;
}

static void
dkim_key_cb(void *arg, const struct dns_answer *answer)
{
	struct dkim_vsig *vs = arg;
	struct dkim_verifier *v = vs->v;

	vs->query = NULL;
	vs->key_result = dkim_key_load(&vs->key, &vs->sig, answer,
	    &vs->key_reason);
	v->pending--;
	if (v->finished && v->pending == 0)
		dkim_timer_cb(v->loop, &v->timer, 0);
}

/* Copy what the report names from a parsed (maybe partly) signature. */
static void
dkim_vsig_describe(struct dkim_vsig *vs)
{
	struct dkim_sig_result *res = &vs->res;

	res->alg = vs->sig.alg;
	memcpy(res->domain, vs->sig.domain, sizeof(res->domain));
	memcpy(res->selector, vs->sig.selector, sizeof(res->selector));
	memcpy(res->identity, vs->sig.identity, sizeof(res->identity));
	memcpy(res->b_prefix, vs->sig.b_prefix, sizeof(res->b_prefix));
}

/*
 * Decide whether a parsed signature goes on to its key lookup.  Returns
 * NULL if so, or the reason it is settled now with the result in *r.
 */
static const char *
dkim_vsig_check(struct dkim_verifier *v, struct dkim_vsig *vs, time_t now,
    char *name, size_t namesz, enum dkim_result *r)
{
	const char *reason;

	*r = DKIM_PERMERROR;
	if (vs->sig.alg == DKIM_ALG_RSA_SHA1)
		return "rsa-sha1 is not accepted (RFC 8301)";
	if (dkim_sig_check_time(&vs->sig, now, &reason) < 0)
		return reason;
	if (dkim_key_name(&vs->sig, name, namesz) < 0)
		return "key name too long";
	*r = DKIM_NEUTRAL;
	if (msghdr_overflow(&v->hdr))
		return "header section too large to verify";
	if (v->verifying == v->verify_max)
		return "not verified: signature limit reached";
	return NULL;
}

/*
 * Parse the signature in field i and, when nothing rules it out, hash its
 * header input and start its key lookup.
 */
static void
dkim_vsig_start(struct dkim_verifier *v, struct dkim_vsig *vs, size_t i,
    time_t now)
{
	char name[DKIM_DOMAIN_MAX + 1];
	const char *value, *reason;
	enum dkim_result r;
	size_t len;

	vs->v = v;
	vs->field = i;
	value = msghdr_raw_value(&v->hdr, i, &len);
	if (dkim_sig_parse(&vs->sig, DKIM_SIG_DKIM, value, len, &reason) < 0)
		r = DKIM_PERMERROR;
	else
		reason = dkim_vsig_check(v, vs, now, name, sizeof(name), &r);
	dkim_vsig_describe(vs);
	if (reason != NULL) {
		dkim_settle(vs, r, reason);
		return;
	}
	v->verifying++;
	dkim_sig_header_digest(&v->hdr, i, &vs->sig, vs->digest);
	vs->body = dkim_body_for(v, &vs->sig);
	v->pending++;
	vs->query = dns_lookup(v->dns, name, LDNS_RR_TYPE_TXT, dkim_key_cb,
	    vs);
}

static void
dkim_header_done(struct dkim_verifier *v)
{
	time_t now = v->now != 0 ? v->now : time(NULL);
	size_t i, n = 0;

	v->header_done = 1;
	for (i = msghdr_find(&v->hdr, "DKIM-Signature", 0);
	    i != MSGHDR_NONE && n < DKIM_RESULTS_MAX;
	    i = msghdr_find(&v->hdr, "DKIM-Signature", i + 1))
		n++;
	if (n == 0)
		return;
	v->sigs = xcalloc(n, sizeof(*v->sigs));
	for (i = msghdr_find(&v->hdr, "DKIM-Signature", 0);
	    i != MSGHDR_NONE && v->nsigs < n;
	    i = msghdr_find(&v->hdr, "DKIM-Signature", i + 1))
		dkim_vsig_start(v, &v->sigs[v->nsigs++], i, now);
}

void
dkim_verifier_update(struct dkim_verifier *v, const char *p, size_t len)
{
	size_t n, i;

	if (v->finished)
		return;
	if (!v->header_done) {
		n = msghdr_update(&v->hdr, p, len);
		p += n;
		len -= n;
		if (!msghdr_done(&v->hdr))
			return;
		dkim_header_done(v);
	}
	for (i = 0; i < v->nbodies && len > 0; i++)
		dkim_body_hash_update(v->bodies[i], p, len);
}

/*
 * Compute the result of a signature whose key lookup has completed.
 * Returns the reason, with the result in *r.
 */
static const char *
dkim_vsig_verify(struct dkim_vsig *vs, enum dkim_result *r)
{
	const struct dkim_body_hash *b = vs->body;

	*r = vs->key_result;
	if (vs->key_result != DKIM_PASS)
		return vs->key_reason;
	*r = DKIM_PERMERROR;
	if (vs->sig.has_l && vs->sig.l > b->canon_len)
		return "l= is larger than the body";
	*r = DKIM_FAIL;
	if (vs->sig.bh_len != DKIM_HASH_LEN ||
	    memcmp(vs->sig.bh, b->digest, DKIM_HASH_LEN) != 0)
		return "body hash mismatch";
	if (dkim_verify_digest(&vs->key, &vs->sig, vs->digest) != DKIM_PASS)
		return "signature mismatch";
	*r = DKIM_PASS;
	return "signature verified";
}

static void
dkim_vsig_finish(struct dkim_vsig *vs)
{
	enum dkim_result r;
	const char *reason = dkim_vsig_verify(vs, &r);

	vs->res.key_bits = vs->key.bits;
	vs->res.testing = vs->key.testing;
	vs->res.body_partial = vs->sig.has_l &&
	    vs->sig.l < vs->body->canon_len;
	dkim_settle(vs, r, reason);
}

/*
 * Report every result through the callback, once.  The callback may free
 * the verifier, so nothing touches it afterwards.
 */
static void
dkim_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dkim_verifier *v = w->data;
	struct dkim_sig_result *results;
	size_t i, n = v->nsigs;

	ev_timer_stop(loop, w);
	/* Never NULL, also for no results, so callers may copy from it. */
	results = xcalloc(n > 0 ? n : 1, sizeof(*results));
	for (i = 0; i < n; i++) {
		if (!v->sigs[i].settled)
			dkim_vsig_finish(&v->sigs[i]);
		results[i] = v->sigs[i].res;
	}
	v->cb(v->cb_arg, results, n);
	free(results);
}

void
dkim_verifier_finish(struct dkim_verifier *v, dkim_cb *cb, void *arg)
{
	size_t i;

	if (v->finished)
		return;
	v->finished = 1;
	v->cb = cb;
	v->cb_arg = arg;
	if (!v->header_done) {
		msghdr_finish(&v->hdr);
		dkim_header_done(v);
	}
	for (i = 0; i < v->nbodies; i++)
		dkim_body_hash_final(v->bodies[i]);
	if (v->pending == 0)
		ev_timer_start(v->loop, &v->timer);
}

void
dkim_verifier_free(struct dkim_verifier *v)
{
	size_t i;

	if (v == NULL)
		return;
	ev_timer_stop(v->loop, &v->timer);
	for (i = 0; i < v->nsigs; i++) {
		if (v->sigs[i].query != NULL)
			dns_cancel(v->sigs[i].query);
		dkim_key_clear(&v->sigs[i].key);
	}
	for (i = 0; i < v->nbodies; i++) {
		dkim_body_hash_clear(v->bodies[i]);
		free(v->bodies[i]);
	}
	free(v->sigs);
	msghdr_free(&v->hdr);
	free(v);
}

const struct msghdr_section *
dkim_verifier_header(const struct dkim_verifier *v)
{
	return &v->hdr;
}
