/*
 * dnsconf's key files.  A domain owner's signing key is in DOMAIN.key
 * (secret, mode 0600) with its public half in DOMAIN.pub.  A relay
 * operator's X25519 key is in relay.key, with relay.pub beside it.
 * The format is that of rec_keyfile_read(): "name=value" lines.
 */
#ifndef DNSCONF_KEYS_H
#define DNSCONF_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "record.h"
#include "zone.h"

/* DOMAIN.key: the Ed25519 key pair and the salt of the rule names. */
struct keys_signing {
	char		 domain[ZONE_DOMAIN_MAX + 1];
	uint32_t	 kid;
	unsigned char	 salt[REC_SALT_LEN];
	unsigned char	 pub[crypto_sign_PUBLICKEYBYTES];
	unsigned char	 sk[crypto_sign_SECRETKEYBYTES];
};

/* DOMAIN.pub: what may be published of a signing key. */
struct keys_public {
	char		 domain[ZONE_DOMAIN_MAX + 1];
	unsigned char	 salt[REC_SALT_LEN];
	struct rec_key	 key;
};

/*
 * Load DOMAIN.key and check that its parts agree: the public key inside
 * the secret key matches the seed, and kid matches the public key.
 * Returns 0, or -1 with a message in err.  Wipe the struct with
 * sodium_memzero() when done.
 */
int	keys_load_signing(struct keys_signing *, const char *path, char *err,
	    size_t errsz);

/* Load DOMAIN.pub (kid checked against the key).  0 or -1 with err. */
int	keys_load_public(struct keys_public *, const char *path, char *err,
	    size_t errsz);

/*
 * Read the domain and salt of a .key or .pub file, the fields both
 * share.  Returns 0 or -1 with err.
 */
int	keys_load_salt(char domain[ZONE_DOMAIN_MAX + 1],
	    unsigned char salt[REC_SALT_LEN], const char *path, char *err,
	    size_t errsz);

/* Load relay.pub (or relay.key, ignoring the secret).  0 or -1 with err. */
int	keys_load_relay_public(struct rec_key *, const char *path, char *err,
	    size_t errsz);

/*
 * Write DIR/DOMAIN.key (mode 0600) and DIR/DOMAIN.pub (mode 0644).
 * Without force neither file may exist yet (O_EXCL), and an existing
 * file is left alone.  Returns 0, or -1 with a message in err.
 */
int	keys_write_signing(const char *dir, const struct keys_signing *,
	    int force, char *err, size_t errsz);

/* Write DIR/relay.key (0600) and DIR/relay.pub (0644), as above. */
int	keys_write_relay(const char *dir, const struct rec_relay_key *,
	    int force, char *err, size_t errsz);

#endif
