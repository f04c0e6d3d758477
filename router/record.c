/*
 * The rule record format, version ER1 (docs/records.md is the
 * specification).  The relay uses this module to parse the domain and key
 * records at _er.DOMAIN, to verify a rule record and to open its sealed
 * destinations.  dnsconf uses it to derive labels, format records and
 * sign rules.  Everything here is pure computation on bounded buffers except
 * the key file reader.
 *
 * A record is a TXT tag list, "v=ER1; t=KIND; name=value; ...".  Parsing
 * runs in two steps: rec_tags_collect() splits the tag list and keeps the
 * first occurrence of each known tag, then a parser per record kind
 * checks which tags must, may or must not be present and decodes values.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <ldns/ldns.h>
#include <sodium.h>

#include "record.h"

/* Domain separation prefixes; each is hashed or signed with its NUL. */
#define REC_SIG_PREFIX		"ER1 rule signature"
#define REC_DST_PREFIX		"ER1 dst"
#define REC_LOCAL_PREFIX	"ER1 local"
#define REC_CATCH_ALL_PREFIX	"ER1 catch-all"

#define REC_LABEL_HASH_LEN	16
#define REC_KEYFILE_LINE_MAX	1024
#define REC_DOMAIN_MAX		253	/* presentation, no trailing dot */

static const char *const rec_status_names[] = {
	[REC_OK] = "ok",
	[REC_NONE] = "no record",
	[REC_MALFORMED] = "malformed record",
	[REC_UNKNOWN_KEY] = "unknown key id",
	[REC_BAD_SIGNATURE] = "bad signature",
	[REC_EXPIRED] = "expired",
	[REC_NOT_FOR_RELAY] = "not sealed to this relay",
	[REC_DECRYPT_FAILED] = "destination does not decrypt",
};

const char *
rec_status_str(enum rec_status status)
{
	size_t n = sizeof(rec_status_names) / sizeof(rec_status_names[0]);

	if ((size_t)status >= n || rec_status_names[status] == NULL)
		return "unknown status";
	return rec_status_names[status];
}

/* ---- Encodings ---- */

uint32_t
rec_kid(const unsigned char *pub, size_t len)
{
	unsigned char h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), pub, len, NULL, 0);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

int
rec_kid_parse(uint32_t *kid, const char *in, size_t inlen)
{
	uint32_t v = 0;
	size_t i;

	if (inlen != 8)
		return -1;
	for (i = 0; i < inlen; i++) {
		if (in[i] >= '0' && in[i] <= '9')
			v = v << 4 | (uint32_t)(in[i] - '0');
		else if (in[i] >= 'a' && in[i] <= 'f')
			v = v << 4 | (uint32_t)(in[i] - 'a' + 10);
		else
			return -1;
	}
	*kid = v;
	return 0;
}

/*
 * Decode standard padded base64 of 1 to outsz bytes.  The whole input
 * must be consumed, and libsodium rejects non-zero padding bits, so each
 * value has exactly one accepted spelling.  Returns 0 or -1.
 */
static int
rec_base64_decode(unsigned char *out, size_t outsz, size_t *outlen,
    const char *in, size_t inlen)
{
	const char *end;

	if (inlen == 0)
		return -1;
	if (sodium_base642bin(out, outsz, in, inlen, NULL, outlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return end == in + inlen && *outlen > 0 ? 0 : -1;
}

int
rec_base64_decode_exact(unsigned char *out, size_t want, const char *in,
    size_t inlen)
{
	size_t got;

	if (rec_base64_decode(out, want, &got, in, inlen) != 0)
		return -1;
	return got == want ? 0 : -1;
}

/* RFC 4648 section 6 base32 with the lower-case alphabet, no padding. */
static void
rec_base32(char *out, const unsigned char *in, size_t len)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint32_t acc = 0;
	int bits = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		acc = (acc << 8 | in[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			*out++ = alphabet[(acc >> bits) & 0x1f];
		}
	}
	if (bits > 0)
		*out++ = alphabet[(acc << (5 - bits)) & 0x1f];
	*out = '\0';
}

/*
 * Append-only writer over a fixed buffer.  A write past the end sets
 * overflow and is dropped, so callers check once at the end.
 */
struct rec_writer {
	unsigned char	*data;
	size_t		 cap;
	size_t		 len;
	int		 overflow;
};

static void
rec_put(struct rec_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void
rec_put_uint(struct rec_writer *w, uint64_t v, size_t bytes)
{
	unsigned char b[8];
	size_t i;

	for (i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	rec_put(w, b, bytes);
}

/* A u16 length prefix followed by the bytes. */
static void
rec_put_lv(struct rec_writer *w, const void *p, size_t n)
{
	if (n > 0xffff) {
		w->overflow = 1;
		return;
	}
	rec_put_uint(w, n, 2);
	rec_put(w, p, n);
}

/* Append a NUL-terminated string without its NUL. */
static void
rec_puts(struct rec_writer *w, const char *s)
{
	rec_put(w, s, strlen(s));
}

static void
rec_put_base64(struct rec_writer *w, const unsigned char *bin, size_t len)
{
	size_t need = sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_ORIGINAL);

	if (w->overflow || need > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	sodium_bin2base64((char *)w->data + w->len, need, bin, len,
	    sodium_base64_VARIANT_ORIGINAL);
	w->len += need - 1;	/* keep the NUL outside the text */
}

/* Finish a text writer: NUL-terminate.  Returns 0 or -1 on overflow. */
static int
rec_put_end(struct rec_writer *w)
{
	rec_put(w, "", 1);
	return w->overflow ? -1 : 0;
}

/*
 * Copy domain lower-cased and without a trailing dot into out.  Returns
 * the length, or -1 when it is empty or longer than REC_DOMAIN_MAX.
 */
static long
rec_domain_normalize(char out[REC_DOMAIN_MAX + 1], const char *domain)
{
	size_t len = strlen(domain), i;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > REC_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ?
		    domain[i] - 'A' + 'a' : domain[i]);
	out[len] = '\0';
	return (long)len;
}

/* ---- Tag lists ---- */

struct rec_tag {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

struct rec_tag_iter {
	const char	*p;
	const char	*end;
};

static int
rec_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Read the next "name=value" of a tag list.  Spaces and tabs around a
 * tag are skipped; a value is printable ASCII without ';'.  A trailing
 * ';' is allowed, an empty tag between two ';' is not.  Returns 1 with
 * the tag in *tag, 0 at the end, or -1 on a syntax error.
 */
static int
rec_tag_next(struct rec_tag_iter *it, struct rec_tag *tag)
{
	const char *p = it->p, *end = it->end;

	while (p < end && rec_is_wsp(*p))
		p++;
	if (p == end) {
		it->p = p;
		return 0;
	}
	tag->name = p;
	if (*p < 'a' || *p > 'z')
		return -1;
	while (p < end && ((*p >= 'a' && *p <= 'z') ||
	    (*p >= '0' && *p <= '9') || *p == '_'))
		p++;
	tag->name_len = (size_t)(p - tag->name);
	if (p == end || *p != '=')
		return -1;
	tag->value = ++p;
	for (; p < end && *p != ';'; p++)
		if (*p != '\t' && (*p < 0x20 || *p > 0x7e))
			return -1;
	tag->value_len = (size_t)(p - tag->value);
	while (tag->value_len > 0 &&
	    rec_is_wsp(tag->value[tag->value_len - 1]))
		tag->value_len--;
	if (memchr(tag->value, '\t', tag->value_len) != NULL)
		return -1;
	it->p = p < end ? p + 1 : p;
	return 1;
}

static int
rec_tag_equals(const char *s, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

enum rec_tag_id {
	REC_TAG_V,
	REC_TAG_T,
	REC_TAG_SALT,
	REC_TAG_KID,
	REC_TAG_ALG,
	REC_TAG_PUB,
	REC_TAG_EXP,
	REC_TAG_ACT,
	REC_TAG_DST,
	REC_TAG_MSG,
	REC_TAG_SIG,
	REC_TAG_COUNT,
};

static const char *const rec_tag_names[REC_TAG_COUNT] = {
	[REC_TAG_V] = "v",
	[REC_TAG_T] = "t",
	[REC_TAG_SALT] = "salt",
	[REC_TAG_KID] = "kid",
	[REC_TAG_ALG] = "alg",
	[REC_TAG_PUB] = "pub",
	[REC_TAG_EXP] = "exp",
	[REC_TAG_ACT] = "act",
	[REC_TAG_DST] = "dst",
	[REC_TAG_MSG] = "msg",
	[REC_TAG_SIG] = "sig",
};

/* The known tags of one record: the first of each, and every dst. */
struct rec_tagset {
	struct rec_tag	 tag[REC_TAG_COUNT];
	unsigned	 count[REC_TAG_COUNT];
	struct rec_tag	 dst[REC_MAX_RELAYS];
};

static int
rec_tag_lookup(const struct rec_tag *tag)
{
	int id;

	for (id = 0; id < REC_TAG_COUNT; id++)
		if (rec_tag_equals(tag->name, tag->name_len,
		    rec_tag_names[id]))
			return id;
	return -1;
}

static int
rec_tagset_is(const struct rec_tagset *ts, enum rec_tag_id id,
    const char *want)
{
	return ts->count[id] > 0 && rec_tag_equals(ts->tag[id].value,
	    ts->tag[id].value_len, want);
}

/*
 * Split an ER1 tag list into ts.  A record whose first tag is not
 * exactly "v=ER1" is not ours (another version or another use of TXT)
 * and gives REC_NONE.  An ER1 record gives REC_MALFORMED when it is
 * longer than REC_MAX_TXT, has a syntax error, repeats a tag other than
 * dst, or has more than REC_MAX_RELAYS dst tags.  Unknown tags are
 * skipped.  Returns REC_OK otherwise.
 */
static enum rec_status
rec_tags_collect(struct rec_tagset *ts, const char *txt, size_t len)
{
	struct rec_tag_iter it = { txt, txt + len };
	struct rec_tag tag;
	int rc, id, first = 1;

	memset(ts, 0, sizeof(*ts));
	while ((rc = rec_tag_next(&it, &tag)) == 1) {
		if (first && (!rec_tag_equals(tag.name, tag.name_len, "v") ||
		    !rec_tag_equals(tag.value, tag.value_len, "ER1")))
			return REC_NONE;
		if (first && len > REC_MAX_TXT)
			return REC_MALFORMED;
		first = 0;
		if ((id = rec_tag_lookup(&tag)) < 0)
			continue;
		if (id == REC_TAG_DST) {
			if (ts->count[id] == REC_MAX_RELAYS)
				return REC_MALFORMED;
			ts->dst[ts->count[id]] = tag;
		} else if (ts->count[id] > 0)
			return REC_MALFORMED;
		if (ts->count[id] == 0)
			ts->tag[id] = tag;
		ts->count[id]++;
	}
	if (first)
		return REC_NONE;
	return rc == 0 ? REC_OK : REC_MALFORMED;
}

/* ---- Domain and key records ---- */

/*
 * Decode a key record into key.  Returns REC_OK, REC_NONE for a key of
 * another algorithm (ignored, so a later algorithm can be published
 * beside Ed25519) or REC_MALFORMED.
 */
static enum rec_status
rec_key_decode(struct rec_key *key, const struct rec_tagset *ts)
{
	const struct rec_tag *kid = &ts->tag[REC_TAG_KID];
	const struct rec_tag *pub = &ts->tag[REC_TAG_PUB];

	if (!ts->count[REC_TAG_KID] || !ts->count[REC_TAG_ALG] ||
	    !ts->count[REC_TAG_PUB])
		return REC_MALFORMED;
	if (!rec_tagset_is(ts, REC_TAG_ALG, "ed25519"))
		return REC_NONE;
	if (rec_kid_parse(&key->kid, kid->value, kid->value_len) != 0)
		return REC_MALFORMED;
	if (rec_base64_decode_exact(key->pub, sizeof(key->pub), pub->value,
	    pub->value_len) != 0)
		return REC_MALFORMED;
	if (rec_kid(key->pub, sizeof(key->pub)) != key->kid)
		return REC_MALFORMED;
	return REC_OK;
}

/*
 * Add a decoded key to d.  Keys past REC_MAX_KEYS and exact duplicates
 * are dropped.  Two different keys with one kid are REC_MALFORMED,
 * because a rule names its key by kid alone.
 */
static enum rec_status
rec_domain_add_key(struct rec_domain *d, const struct rec_key *key)
{
	size_t i;

	for (i = 0; i < d->nkeys; i++) {
		if (d->keys[i].kid != key->kid)
			continue;
		if (memcmp(d->keys[i].pub, key->pub, sizeof(key->pub)) != 0)
			return REC_MALFORMED;
		return REC_OK;
	}
	if (d->nkeys < REC_MAX_KEYS)
		d->keys[d->nkeys++] = *key;
	return REC_OK;
}

/* Apply one ER1 record of the _er.DOMAIN RRset to d. */
static enum rec_status
rec_domain_apply(struct rec_domain *d, int *have_salt,
    const struct rec_tagset *ts)
{
	const struct rec_tag *salt = &ts->tag[REC_TAG_SALT];
	struct rec_key key;
	enum rec_status st;

	if (!ts->count[REC_TAG_T])
		return REC_MALFORMED;
	if (rec_tagset_is(ts, REC_TAG_T, "domain")) {
		if (*have_salt || !ts->count[REC_TAG_SALT])
			return REC_MALFORMED;
		if (rec_base64_decode_exact(d->salt, sizeof(d->salt),
		    salt->value, salt->value_len) != 0)
			return REC_MALFORMED;
		*have_salt = 1;
		return REC_OK;
	}
	if (rec_tagset_is(ts, REC_TAG_T, "key")) {
		st = rec_key_decode(&key, ts);
		if (st == REC_NONE)
			return REC_OK;
		if (st != REC_OK)
			return st;
		return rec_domain_add_key(d, &key);
	}
	return REC_OK;		/* another kind of record: not ours here */
}

enum rec_status
rec_domain_parse(struct rec_domain *d, const char *const *txts,
    const size_t *lens, size_t n)
{
	struct rec_tagset ts;
	enum rec_status st;
	int have_salt = 0;
	size_t i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < n; i++) {
		st = rec_tags_collect(&ts, txts[i], lens[i]);
		if (st == REC_NONE)
			continue;
		if (st == REC_OK)
			st = rec_domain_apply(d, &have_salt, &ts);
		if (st != REC_OK) {
			memset(d, 0, sizeof(*d));
			return REC_MALFORMED;
		}
	}
	if (!have_salt) {
		memset(d, 0, sizeof(*d));
		return REC_NONE;
	}
	return REC_OK;
}

int
rec_domain_format(char *out, size_t outsz,
    const unsigned char salt[REC_SALT_LEN])
{
	struct rec_writer w = { (unsigned char *)out, outsz, 0, 0 };

	rec_puts(&w, "v=ER1; t=domain; salt=");
	rec_put_base64(&w, salt, REC_SALT_LEN);
	return rec_put_end(&w);
}

int
rec_key_format(char *out, size_t outsz, const struct rec_key *key)
{
	struct rec_writer w = { (unsigned char *)out, outsz, 0, 0 };
	char kid[9];

	snprintf(kid, sizeof(kid), "%08" PRIx32, key->kid);
	rec_puts(&w, "v=ER1; t=key; kid=");
	rec_puts(&w, kid);
	rec_puts(&w, "; alg=ed25519; pub=");
	rec_put_base64(&w, key->pub, sizeof(key->pub));
	return rec_put_end(&w);
}

/* ---- Labels and owner names ---- */

void
rec_label(char out[REC_LABEL_LEN + 1], const unsigned char salt[REC_SALT_LEN],
    const char *local, size_t len, int catch_all)
{
	crypto_generichash_state state;
	unsigned char h[REC_LABEL_HASH_LEN], chunk[64];
	size_t i, n;

	crypto_generichash_init(&state, salt, REC_SALT_LEN, sizeof(h));
	if (catch_all) {
		crypto_generichash_update(&state,
		    (const unsigned char *)REC_CATCH_ALL_PREFIX,
		    sizeof(REC_CATCH_ALL_PREFIX));
	} else {
		crypto_generichash_update(&state,
		    (const unsigned char *)REC_LOCAL_PREFIX,
		    sizeof(REC_LOCAL_PREFIX));
		/* Lower-case in chunks, so any length works without copies. */
		while (len > 0) {
			n = len < sizeof(chunk) ? len : sizeof(chunk);
			for (i = 0; i < n; i++)
				chunk[i] = (unsigned char)(local[i] >= 'A' &&
				    local[i] <= 'Z' ? local[i] - 'A' + 'a' :
				    local[i]);
			crypto_generichash_update(&state, chunk, n);
			local += n;
			len -= n;
		}
	}
	crypto_generichash_final(&state, h, sizeof(h));
	rec_base32(out, h, sizeof(h));
}

int
rec_owner_name(char *out, size_t outsz, const unsigned char salt[REC_SALT_LEN],
    const char *local, size_t len, int catch_all, const char *domain)
{
	char label[REC_LABEL_LEN + 1], dom[REC_DOMAIN_MAX + 1];
	long dlen;
	int n;

	if ((dlen = rec_domain_normalize(dom, domain)) < 0)
		return -1;
	if (REC_LABEL_LEN + sizeof("._er.") - 1 + (size_t)dlen >
	    REC_DOMAIN_MAX)
		return -1;
	rec_label(label, salt, local, len, catch_all);
	n = snprintf(out, outsz, "%s._er.%s.", label, dom);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/*
 * Convert owner (presentation format) into lower-cased, absolute wire
 * format.  Returns the length, or -1 when it is not a valid name.
 */
static long
rec_owner_wire(unsigned char out[LDNS_MAX_DOMAINLEN], const char *owner)
{
	ldns_rdf *rdf = NULL;
	size_t len;

	if (ldns_str2rdf_dname(&rdf, owner) != LDNS_STATUS_OK || rdf == NULL)
		return -1;
	ldns_dname2canonical(rdf);
	len = ldns_rdf_size(rdf);
	if (len > LDNS_MAX_DOMAINLEN) {
		ldns_rdf_deep_free(rdf);
		return -1;
	}
	memcpy(out, ldns_rdf_data(rdf), len);
	ldns_rdf_deep_free(rdf);
	return (long)len;
}

/* ---- Rule records: parsing and the signed message ---- */

/* Decimal Unix time without sign or leading zeros, up to 2^64-1. */
static int
rec_exp_parse(uint64_t *out, const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static const char *const rec_action_names[] = {
	[REC_ACT_FORWARD] = "forward",
	[REC_ACT_REJECT] = "reject",
	[REC_ACT_DROP] = "drop",
};

static int
rec_action_parse(enum rec_action *act, const struct rec_tag *tag)
{
	int a;

	for (a = REC_ACT_FORWARD; a <= REC_ACT_DROP; a++) {
		if (rec_tag_equals(tag->value, tag->value_len,
		    rec_action_names[a])) {
			*act = (enum rec_action)a;
			return 0;
		}
	}
	return -1;
}

static int
rec_text_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Decode one "RELAYKID:BASE64" dst value into f. */
static int
rec_sealed_decode(struct rec_rule_fields *f, const struct rec_tag *tag)
{
	struct rec_sealed *s = &f->sealed[f->nsealed];
	const char *colon;
	size_t i;

	colon = memchr(tag->value, ':', tag->value_len);
	if (colon == NULL || rec_kid_parse(&s->relay_kid, tag->value,
	    (size_t)(colon - tag->value)) != 0)
		return -1;
	for (i = 0; i < f->nsealed; i++)
		if (f->sealed[i].relay_kid == s->relay_kid)
			return -1;
	s->off = f->boxes_len;
	colon++;
	if (rec_base64_decode(f->boxes + s->off, sizeof(f->boxes) - s->off,
	    &s->len, colon, tag->value_len - (size_t)(colon - tag->value))
	    != 0)
		return -1;
	if (s->len <= crypto_box_SEALBYTES)
		return -1;
	f->boxes_len += s->len;
	f->nsealed++;
	return 0;
}

/* Decode and check the action-specific tags: dst and msg. */
static int
rec_rule_decode_action(struct rec_rule_fields *f, const struct rec_tagset *ts)
{
	const struct rec_tag *msg = &ts->tag[REC_TAG_MSG];
	size_t i;

	if (f->action != REC_ACT_FORWARD && ts->count[REC_TAG_DST] > 0)
		return -1;
	if (f->action != REC_ACT_REJECT && ts->count[REC_TAG_MSG] > 0)
		return -1;
	if (f->action == REC_ACT_FORWARD && ts->count[REC_TAG_DST] == 0)
		return -1;
	for (i = 0; i < ts->count[REC_TAG_DST]; i++)
		if (rec_sealed_decode(f, &ts->dst[i]) != 0)
			return -1;
	if (ts->count[REC_TAG_MSG] > 0) {
		if (rec_base64_decode((unsigned char *)f->message,
		    REC_MAX_MSG, &f->msg_len, msg->value, msg->value_len) != 0)
			return -1;
		if (!rec_text_printable(f->message, f->msg_len))
			return -1;
		f->message[f->msg_len] = '\0';
	}
	return 0;
}

enum rec_status
rec_rule_parse(struct rec_rule_fields *f, const char *txt, size_t len)
{
	struct rec_tagset ts;
	enum rec_status st;

	memset(f, 0, sizeof(*f));
	if ((st = rec_tags_collect(&ts, txt, len)) != REC_OK)
		return st;
	if (!ts.count[REC_TAG_T])
		return REC_MALFORMED;
	if (!rec_tagset_is(&ts, REC_TAG_T, "rule"))
		return REC_NONE;
	if (!ts.count[REC_TAG_KID] || !ts.count[REC_TAG_EXP] ||
	    !ts.count[REC_TAG_ACT] || !ts.count[REC_TAG_SIG])
		goto malformed;
	if (rec_kid_parse(&f->kid, ts.tag[REC_TAG_KID].value,
	    ts.tag[REC_TAG_KID].value_len) != 0 ||
	    rec_exp_parse(&f->expires, ts.tag[REC_TAG_EXP].value,
	    ts.tag[REC_TAG_EXP].value_len) != 0 ||
	    rec_action_parse(&f->action, &ts.tag[REC_TAG_ACT]) != 0 ||
	    rec_base64_decode_exact(f->sig, sizeof(f->sig),
	    ts.tag[REC_TAG_SIG].value, ts.tag[REC_TAG_SIG].value_len) != 0)
		goto malformed;
	if (rec_rule_decode_action(f, &ts) != 0)
		goto malformed;
	return REC_OK;
malformed:
	memset(f, 0, sizeof(*f));
	return REC_MALFORMED;
}

long
rec_rule_message(const struct rec_rule_fields *f, const char *owner,
    unsigned char *out, size_t outsz)
{
	struct rec_writer w = { out, outsz, 0, 0 };
	unsigned char wire[LDNS_MAX_DOMAINLEN];
	long wire_len;
	size_t i;

	if ((wire_len = rec_owner_wire(wire, owner)) < 0)
		return -1;
	rec_put(&w, REC_SIG_PREFIX, sizeof(REC_SIG_PREFIX));
	rec_put_lv(&w, wire, (size_t)wire_len);
	rec_put_uint(&w, f->kid, 4);
	rec_put_uint(&w, f->expires, 8);
	rec_put_uint(&w, f->action, 1);
	rec_put_uint(&w, f->nsealed, 1);
	for (i = 0; i < f->nsealed; i++) {
		rec_put_uint(&w, f->sealed[i].relay_kid, 4);
		rec_put_lv(&w, f->boxes + f->sealed[i].off, f->sealed[i].len);
	}
	rec_put_lv(&w, f->message, f->msg_len);
	return w.overflow ? -1 : (long)w.len;
}

/* ---- Rule records: verification ---- */

int
rec_addr_valid(const char *addr, size_t len)
{
	size_t i, at = 0, nat = 0;

	if (len == 0 || len > REC_MAX_ADDR)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c < 0x20 || c == 0x7f || c == ' ' || c == '<' ||
		    c == '>' || c == ',')
			return 0;
		if (c == '@') {
			at = i;
			nat++;
		}
	}
	return nat == 1 && at > 0 && at < len - 1;
}

/*
 * Check a decrypted destination list ("ER1 dst" NUL domain NUL addresses
 * joined by LF) and copy the addresses into r.  The domain inside must
 * equal the domain the rule was looked up for.  Returns REC_OK or
 * REC_DECRYPT_FAILED.
 */
static enum rec_status
rec_dst_decode(struct rec_rule *r, const unsigned char *plain, size_t len,
    const char *domain)
{
	char dom[REC_DOMAIN_MAX + 1];
	const char *p = (const char *)plain, *end = p + len, *nl;
	long dlen;
	size_t alen;

	if ((dlen = rec_domain_normalize(dom, domain)) < 0)
		return REC_DECRYPT_FAILED;
	if (len < sizeof(REC_DST_PREFIX) ||
	    memcmp(p, REC_DST_PREFIX, sizeof(REC_DST_PREFIX)) != 0)
		return REC_DECRYPT_FAILED;
	p += sizeof(REC_DST_PREFIX);
	if ((size_t)(end - p) < (size_t)dlen + 1 ||
	    memcmp(p, dom, (size_t)dlen) != 0 || p[dlen] != '\0')
		return REC_DECRYPT_FAILED;
	p += dlen + 1;
	if (p == end)
		return REC_DECRYPT_FAILED;
	while (p <= end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		alen = (size_t)((nl ? nl : end) - p);
		if (r->ndsts == REC_MAX_DSTS || !rec_addr_valid(p, alen))
			return REC_DECRYPT_FAILED;
		memcpy(r->dsts[r->ndsts], p, alen);
		r->dsts[r->ndsts++][alen] = '\0';
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return REC_OK;
}

static enum rec_status
rec_rule_open(struct rec_rule *r, const struct rec_rule_fields *f,
    const char *domain, const struct rec_relay_key *relay)
{
	unsigned char plain[REC_MAX_TXT];
	const struct rec_sealed *s = NULL;
	enum rec_status st;
	size_t i;

	for (i = 0; relay != NULL && i < f->nsealed; i++)
		if (f->sealed[i].relay_kid == relay->kid)
			s = &f->sealed[i];
	if (s == NULL)
		return REC_NOT_FOR_RELAY;
	if (crypto_box_seal_open(plain, f->boxes + s->off, s->len,
	    relay->pub, relay->sec) != 0)
		return REC_DECRYPT_FAILED;
	st = rec_dst_decode(r, plain, s->len - crypto_box_SEALBYTES, domain);
	sodium_memzero(plain, sizeof(plain));
	return st;
}

static const struct rec_key *
rec_domain_find_key(const struct rec_domain *d, uint32_t kid)
{
	size_t i;

	for (i = 0; i < d->nkeys; i++)
		if (d->keys[i].kid == kid)
			return &d->keys[i];
	return NULL;
}

/*
 * The checks run in the order of docs/records.md: parse, key lookup,
 * signature, expiry, then the sealed destination.  An expired record
 * with a bad signature therefore reports REC_BAD_SIGNATURE.
 */
enum rec_status
rec_rule_verify(struct rec_rule *r, const struct rec_domain *d,
    const char *owner, const char *domain, const char *txt, size_t len,
    const struct rec_relay_key *relay, uint64_t now)
{
	struct rec_rule_fields f;
	unsigned char m[REC_MAX_SIGNED];
	const struct rec_key *key;
	enum rec_status st;
	long mlen;

	memset(r, 0, sizeof(*r));
	if ((st = rec_rule_parse(&f, txt, len)) != REC_OK)
		return st;
	if ((key = rec_domain_find_key(d, f.kid)) == NULL)
		return REC_UNKNOWN_KEY;
	if ((mlen = rec_rule_message(&f, owner, m, sizeof(m))) < 0)
		return REC_MALFORMED;
	if (crypto_sign_verify_detached(f.sig, m, (unsigned long long)mlen,
	    key->pub) != 0)
		return REC_BAD_SIGNATURE;
	if (now > f.expires)
		return REC_EXPIRED;
	r->kid = f.kid;
	r->expires = f.expires;
	r->action = f.action;
	memcpy(r->message, f.message, sizeof(r->message));
	if (f.action != REC_ACT_FORWARD)
		return REC_OK;
	if ((st = rec_rule_open(r, &f, domain, relay)) != REC_OK)
		memset(r, 0, sizeof(*r));
	return st;
}

/* ---- Rule records: signing ---- */

/* Write "ER1 dst" NUL domain NUL addresses-joined-by-LF.  Returns length. */
static long
rec_dst_encode(unsigned char *out, size_t outsz, const char *domain,
    const char *const *dsts, size_t ndsts)
{
	struct rec_writer w = { out, outsz, 0, 0 };
	char dom[REC_DOMAIN_MAX + 1];
	long dlen;
	size_t i;

	if ((dlen = rec_domain_normalize(dom, domain)) < 0)
		return -1;
	rec_put(&w, REC_DST_PREFIX, sizeof(REC_DST_PREFIX));
	rec_put(&w, dom, (size_t)dlen + 1);
	for (i = 0; i < ndsts; i++) {
		if (!rec_addr_valid(dsts[i], strlen(dsts[i])))
			return -1;
		if (i > 0)
			rec_put(&w, "\n", 1);
		rec_puts(&w, dsts[i]);
	}
	return w.overflow ? -1 : (long)w.len;
}

/* Seal the destination list to every relay key into f. */
static int
rec_rule_seal(struct rec_rule_fields *f, const char *domain,
    const char *const *dsts, size_t ndsts, const struct rec_key *relays,
    size_t nrelays)
{
	unsigned char plain[REC_MAX_TXT];
	long plen;
	size_t i, j;

	if (ndsts == 0 || ndsts > REC_MAX_DSTS || nrelays == 0 ||
	    nrelays > REC_MAX_RELAYS)
		return -1;
	plen = rec_dst_encode(plain, sizeof(plain), domain, dsts, ndsts);
	if (plen < 0)
		return -1;
	for (i = 0; i < nrelays; i++) {
		struct rec_sealed *s = &f->sealed[i];

		if (rec_kid(relays[i].pub, sizeof(relays[i].pub)) !=
		    relays[i].kid)
			return -1;
		for (j = 0; j < i; j++)
			if (relays[j].kid == relays[i].kid)
				return -1;
		s->relay_kid = relays[i].kid;
		s->off = f->boxes_len;
		s->len = (size_t)plen + crypto_box_SEALBYTES;
		if (s->len > sizeof(f->boxes) - s->off)
			return -1;
		crypto_box_seal(f->boxes + s->off, plain,
		    (unsigned long long)plen, relays[i].pub);
		f->boxes_len += s->len;
		f->nsealed++;
	}
	sodium_memzero(plain, sizeof(plain));
	return 0;
}

/* Format the TXT content of a rule whose fields are all set. */
static int
rec_rule_format(char *out, size_t outsz, const struct rec_rule_fields *f)
{
	struct rec_writer w = { (unsigned char *)out, outsz, 0, 0 };
	char num[32];
	size_t i;

	snprintf(num, sizeof(num), "%08" PRIx32, f->kid);
	rec_puts(&w, "v=ER1; t=rule; kid=");
	rec_puts(&w, num);
	snprintf(num, sizeof(num), "%" PRIu64, f->expires);
	rec_puts(&w, "; exp=");
	rec_puts(&w, num);
	rec_puts(&w, "; act=");
	rec_puts(&w, rec_action_names[f->action]);
	for (i = 0; i < f->nsealed; i++) {
		snprintf(num, sizeof(num), "%08" PRIx32, f->sealed[i].relay_kid);
		rec_puts(&w, "; dst=");
		rec_puts(&w, num);
		rec_puts(&w, ":");
		rec_put_base64(&w, f->boxes + f->sealed[i].off,
		    f->sealed[i].len);
	}
	if (f->msg_len > 0) {
		rec_puts(&w, "; msg=");
		rec_put_base64(&w, (const unsigned char *)f->message,
		    f->msg_len);
	}
	rec_puts(&w, "; sig=");
	rec_put_base64(&w, f->sig, sizeof(f->sig));
	if (w.len > REC_MAX_TXT)
		return -1;
	return rec_put_end(&w);
}

/*
 * A reject rule may carry a message; forward needs destinations and relay
 * keys, the others take neither.  The check mirrors the parser, so that
 * dnsconf never prints a record the relay would call malformed.
 */
int
rec_rule_sign(char *out, size_t outsz, const char *owner, const char *domain,
    uint32_t kid, const unsigned char sk[crypto_sign_SECRETKEYBYTES],
    uint64_t expires, enum rec_action action, const char *const *dsts,
    size_t ndsts, const char *message, const struct rec_key *relay_pubs,
    size_t nrelays)
{
	struct rec_rule_fields f;
	unsigned char m[REC_MAX_SIGNED];
	size_t msg_len = message ? strlen(message) : 0;
	long mlen;

	memset(&f, 0, sizeof(f));
	f.kid = kid;
	f.expires = expires;
	f.action = action;
	if (action < REC_ACT_FORWARD || action > REC_ACT_DROP)
		return -1;
	if (action == REC_ACT_FORWARD) {
		if (rec_rule_seal(&f, domain, dsts, ndsts, relay_pubs,
		    nrelays) != 0)
			return -1;
	} else if (ndsts > 0)
		return -1;
	if (msg_len > 0) {
		if (action != REC_ACT_REJECT || msg_len > REC_MAX_MSG ||
		    !rec_text_printable(message, msg_len))
			return -1;
		memcpy(f.message, message, msg_len + 1);
		f.msg_len = msg_len;
	}
	if ((mlen = rec_rule_message(&f, owner, m, sizeof(m))) < 0)
		return -1;
	crypto_sign_detached(f.sig, NULL, m, (unsigned long long)mlen, sk);
	return rec_rule_format(out, outsz, &f);
}

/* ---- Key files ---- */

static void
rec_trim(char **s)
{
	char *p = *s, *e;

	while (rec_is_wsp(*p))
		p++;
	e = p + strlen(p);
	while (e > p && (rec_is_wsp(e[-1]) || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	*e = '\0';
	*s = p;
}

/* Store one "name=value" line into the matching field.  0 or -1. */
static int
rec_keyfile_line(char *line, struct rec_keyfile_field *fields, size_t n,
    const char *path, unsigned lineno, char *err, size_t errsz)
{
	char *name = line, *value, *eq;
	size_t i;

	rec_trim(&name);
	if (*name == '\0' || *name == '#')
		return 0;
	if ((eq = strchr(name, '=')) == NULL) {
		snprintf(err, errsz, "%s:%u: expected name=value", path, lineno);
		return -1;
	}
	*eq = '\0';
	value = eq + 1;
	rec_trim(&name);
	rec_trim(&value);
	for (i = 0; i < n && strcmp(fields[i].name, name) != 0; i++)
		;
	if (i == n)
		return 0;
	if (fields[i].found) {
		snprintf(err, errsz, "%s:%u: duplicate %s", path, lineno, name);
		return -1;
	}
	if (strlen(value) >= sizeof(fields[i].value)) {
		snprintf(err, errsz, "%s:%u: value of %s too long", path,
		    lineno, name);
		return -1;
	}
	strcpy(fields[i].value, value);
	fields[i].found = 1;
	return 0;
}

int
rec_keyfile_read(const char *path, struct rec_keyfile_field *fields, size_t n,
    char *err, size_t errsz)
{
	char line[REC_KEYFILE_LINE_MAX];
	unsigned lineno = 0;
	FILE *fp;
	size_t i;
	int rc = -1;

	for (i = 0; i < n; i++) {
		fields[i].found = 0;
		fields[i].value[0] = '\0';
	}
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errsz, "%s:%u: line too long", path,
			    lineno);
			goto out;
		}
		if (rec_keyfile_line(line, fields, n, path, lineno, err,
		    errsz) != 0)
			goto out;
	}
	if (ferror(fp)) {
		snprintf(err, errsz, "%s: read failed", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!fields[i].found) {
			snprintf(err, errsz, "%s: missing %s", path,
			    fields[i].name);
			goto out;
		}
	}
	rc = 0;
out:
	sodium_memzero(line, sizeof(line));
	fclose(fp);
	return rc;
}

/*
 * The file must not be accessible to other users (group access is
 * allowed, for a group that runs the relay).  Returns 0, or -1 with a
 * message naming the fix.
 */
static int
rec_relay_key_check_mode(const char *path, char *err, size_t errsz)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & S_IRWXO) {
		snprintf(err, errsz, "%s: accessible by other users; "
		    "run chmod 600 %s", path, path);
		return -1;
	}
	return 0;
}

int
rec_relay_key_load(struct rec_relay_key *k, const char *path, char *err,
    size_t errsz)
{
	struct rec_keyfile_field f[] = {
		{ .name = "kid" }, { .name = "secret" }, { .name = "public" },
	};
	unsigned char derived[crypto_box_PUBLICKEYBYTES];
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (rec_relay_key_check_mode(path, err, errsz) != 0 ||
	    rec_keyfile_read(path, f, 3, err, errsz) != 0)
		goto out;
	if (rec_kid_parse(&k->kid, f[0].value, strlen(f[0].value)) != 0 ||
	    rec_base64_decode_exact(k->sec, sizeof(k->sec), f[1].value,
	    strlen(f[1].value)) != 0 ||
	    rec_base64_decode_exact(k->pub, sizeof(k->pub), f[2].value,
	    strlen(f[2].value)) != 0) {
		snprintf(err, errsz, "%s: invalid kid, secret or public value",
		    path);
		goto out;
	}
	if (crypto_scalarmult_base(derived, k->sec) != 0 ||
	    sodium_memcmp(derived, k->pub, sizeof(derived)) != 0) {
		snprintf(err, errsz, "%s: public does not match secret", path);
		goto out;
	}
	if (rec_kid(k->pub, sizeof(k->pub)) != k->kid) {
		snprintf(err, errsz, "%s: kid does not match public", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(f, sizeof(f));
	if (rc != 0)
		sodium_memzero(k, sizeof(*k));
	return rc;
}
