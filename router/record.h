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

#endif
