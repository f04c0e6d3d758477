/*
 * The rule record format, version ER1: parsing and verification for the
 * relay, key handling and signing for dnsconf.  docs/records.md is the
 * specification; this module is its reference implementation.
 *
 * Records live in TXT RRsets of the customer's zone:
 *   _er.DOMAIN          the domain record (salt) and one key record per
 *                       published Ed25519 key
 *   LABEL._er.DOMAIN    one signed rule; LABEL is a salted hash of the
 *                       local part, so the zone does not list addresses
 *
 * Callers must have run sodium_init(), which also seeds the random
 * source that sealing uses.
 */
#ifndef ROUTER_RECORD_H
#define ROUTER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define REC_SALT_LEN		16
#define REC_LABEL_LEN		26	/* base32 of a 128-bit hash */
#define REC_MAX_KEYS		8	/* key records honoured per domain */
#define REC_MAX_DSTS		32	/* destinations per rule */
#define REC_MAX_RELAYS		8	/* sealed copies per rule */
#define REC_MAX_MSG		200	/* reject text, printable ASCII */
#define REC_MAX_ADDR		320	/* one destination address */
#define REC_MAX_TXT		4096	/* one joined TXT record */

enum rec_status {
	REC_OK,
	REC_NONE,		/* no ER1 record of the wanted kind */
	REC_MALFORMED,		/* syntax error in the record */
	REC_UNKNOWN_KEY,	/* kid names no published key */
	REC_BAD_SIGNATURE,
	REC_EXPIRED,
	REC_NOT_FOR_RELAY,	/* no sealed copy for this relay's key */
	REC_DECRYPT_FAILED,	/* sealed box does not open, or bad content */
};

enum rec_action {
	REC_ACT_FORWARD = 1,
	REC_ACT_REJECT = 2,
	REC_ACT_DROP = 3,
};

struct rec_key {
	uint32_t	 kid;
	unsigned char	 pub[crypto_sign_PUBLICKEYBYTES];
};

/* What _er.DOMAIN says: the salt and the published keys. */
struct rec_domain {
	unsigned char	 salt[REC_SALT_LEN];
	size_t		 nkeys;
	struct rec_key	 keys[REC_MAX_KEYS];
};

/* A verified rule with its destinations decrypted. */
struct rec_rule {
	uint32_t	 kid;
	uint64_t	 expires;	/* Unix time */
	enum rec_action	 action;
	char		 message[REC_MAX_MSG + 1];	/* reject text */
	size_t		 ndsts;
	char		 dsts[REC_MAX_DSTS][REC_MAX_ADDR + 1];
};

/* The relay's X25519 key pair for opening sealed destinations. */
struct rec_relay_key {
	uint32_t	 kid;
	unsigned char	 pub[crypto_box_PUBLICKEYBYTES];
	unsigned char	 sec[crypto_box_SECRETKEYBYTES];
};

const char	*rec_status_str(enum rec_status);

/* Key id: the first 4 bytes of BLAKE2b-256 of the public key. */
uint32_t	 rec_kid(const unsigned char *pub, size_t len);

/*
 * Parse the TXT records found at _er.DOMAIN.  txts[i] is the i-th record
 * with its character-strings already joined, lens[i] its length.  Records
 * that are not ER1 are ignored.  Returns REC_OK, REC_NONE (no ER1 domain
 * record) or REC_MALFORMED.
 */
enum rec_status	 rec_domain_parse(struct rec_domain *,
		    const char *const *txts, const size_t *lens, size_t n);

/*
 * Write the owner label for a local part (NUL-terminated, lower case,
 * REC_LABEL_LEN characters) into out.  catch_all non-zero gives the
 * catch-all label and ignores local.  local is the decoded local part
 * (quotes removed); it is lower-cased here for ASCII letters.
 */
void		 rec_label(char out[REC_LABEL_LEN + 1],
		    const unsigned char salt[REC_SALT_LEN],
		    const char *local, size_t len, int catch_all);

/*
 * Verify one rule record found at owner (absolute, e.g.
 * "LABEL._er.example.com.") for domain ("example.com") and decrypt its
 * destinations with the relay key.  now is Unix time.
 */
enum rec_status	 rec_rule_verify(struct rec_rule *,
		    const struct rec_domain *, const char *owner,
		    const char *domain, const char *txt, size_t len,
		    const struct rec_relay_key *, uint64_t now);

/*
 * Build a signed rule record for dnsconf.  Writes the TXT content
 * (unsplit) into out.  relay_pubs are the relay keys to seal the
 * destinations to.  Returns 0, or -1 when it does not fit.
 */
int		 rec_rule_sign(char *out, size_t outsz, const char *owner,
		    const char *domain, uint32_t kid,
		    const unsigned char sk[crypto_sign_SECRETKEYBYTES],
		    uint64_t expires, enum rec_action,
		    const char *const *dsts, size_t ndsts, const char *message,
		    const struct rec_key *relay_pubs, size_t nrelays);

/* Load a relay key file written by "dnsconf relay-keygen".  0 or -1. */
int		 rec_relay_key_load(struct rec_relay_key *, const char *path,
		    char *err, size_t errsz);

/*
 * The fields of one rule record as written, before verification: what
 * rec_rule_parse() decodes and rec_rule_message() turns into the signed
 * bytes.  Sealed destinations are stored in boxes[] and located by
 * offset, so the struct may be copied.
 */
struct rec_sealed {
	uint32_t	 relay_kid;
	size_t		 off;		/* into boxes[] */
	size_t		 len;
};

struct rec_rule_fields {
	uint32_t	 kid;
	uint64_t	 expires;
	enum rec_action	 action;
	size_t		 nsealed;
	struct rec_sealed sealed[REC_MAX_RELAYS];
	size_t		 boxes_len;
	unsigned char	 boxes[REC_MAX_TXT];
	size_t		 msg_len;
	char		 message[REC_MAX_MSG + 1];
	unsigned char	 sig[crypto_sign_BYTES];
};

/* Largest signed message: every field at its maximum. */
#define REC_MAX_SIGNED	(19 + 2 + 255 + 4 + 8 + 1 + 1 + \
			    REC_MAX_RELAYS * 6 + REC_MAX_TXT + 2 + REC_MAX_MSG)

/*
 * Decode one rule record (character-strings joined) without verifying
 * it.  Returns REC_OK, REC_NONE (not an ER1 rule record: another version,
 * another record kind or not a tag list) or REC_MALFORMED.
 */
enum rec_status	 rec_rule_parse(struct rec_rule_fields *, const char *txt,
		    size_t len);

/*
 * Build the signed message M of docs/records.md for a rule at owner (a
 * domain name in presentation format; it is taken as absolute and
 * lower-cased).  Writes at most outsz bytes; REC_MAX_SIGNED always
 * suffices.  Returns the length, or -1 if owner is not a valid name or
 * out is too small.
 */
long		 rec_rule_message(const struct rec_rule_fields *,
		    const char *owner, unsigned char *out, size_t outsz);

/*
 * Write the absolute owner name of a rule, "LABEL._er.DOMAIN.", into out.
 * domain may carry a trailing dot; it is lower-cased.  Arguments local,
 * len and catch_all are those of rec_label().  Returns 0, or -1 when out
 * is too small or the name would exceed 253 characters.
 */
int		 rec_owner_name(char *out, size_t outsz,
		    const unsigned char salt[REC_SALT_LEN], const char *local,
		    size_t len, int catch_all, const char *domain);

/*
 * Format the domain record and a key record (TXT content, unsplit) into
 * out.  Returns 0, or -1 when out is too small.
 */
int		 rec_domain_format(char *out, size_t outsz,
		    const unsigned char salt[REC_SALT_LEN]);
int		 rec_key_format(char *out, size_t outsz, const struct rec_key *);

/*
 * Check one destination address as the relay does: 1 to REC_MAX_ADDR
 * bytes, exactly one '@' with text on both sides, and no control
 * characters, spaces, '<', '>' or ','.  Returns 1 if valid, else 0.
 */
int		 rec_addr_valid(const char *addr, size_t len);

/*
 * Key files: text, one "name=value" a line, '#' starts a comment line.
 * rec_keyfile_read() fills the value of every field listed; each must
 * occur exactly once (names not listed are ignored).  Returns 0, or -1
 * with "PATH:LINE: reason" or "PATH: reason" in err.
 */
#define REC_KEYFILE_VALUE_MAX	256
struct rec_keyfile_field {
	const char	*name;
	char		 value[REC_KEYFILE_VALUE_MAX];
	int		 found;
};

int		 rec_keyfile_read(const char *path,
		    struct rec_keyfile_field *, size_t n, char *err,
		    size_t errsz);

/*
 * Decode standard base64 (RFC 4648 section 4, padded, no whitespace) of
 * exactly want bytes.  Returns 0, or -1 on any other input.
 */
int		 rec_base64_decode_exact(unsigned char *out, size_t want,
		    const char *in, size_t inlen);

/* Parse 8 lower-case hex digits into *kid.  Returns 0 or -1. */
int		 rec_kid_parse(uint32_t *kid, const char *in, size_t inlen);

#endif
