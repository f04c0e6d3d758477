/*
 * Sender Rewriting Scheme, compatible with the SRS0/SRS1 forms of
 * libsrs2 and PostSRSd: 4-character base64 HMAC-SHA1 hash, 2-character
 * base32 day timestamp, '=' separator.
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
 *   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@srs-domain
 */
#ifndef ROUTER_SRS_H
#define ROUTER_SRS_H

#include <stddef.h>
#include <time.h>

#include <openssl/types.h>

#define SRS_MAX_SECRETS	8
#define SRS_MAX_AGE_DAYS 21

struct srs {
	/* secrets[0] signs; all verify (rotation) */
	unsigned char	 secret[SRS_MAX_SECRETS][128];
	size_t		 secret_len[SRS_MAX_SECRETS];
	size_t		 nsecrets;
	char		 domain[256];	/* lower case, no trailing dot */
	/*
	 * SHA-1 states after the inner and the outer padded key block of
	 * each secret, so HMAC-SHA1 (RFC 2104) needs no key setup per hash.
	 * srs_init() makes them and srs_free() frees them.  A copy of the
	 * struct shares them.
	 */
	EVP_MD_CTX	*inner[SRS_MAX_SECRETS];
	EVP_MD_CTX	*outer[SRS_MAX_SECRETS];
	/* Scratch state of the hash in progress: one thread at a time. */
	EVP_MD_CTX	*work;
};

enum srs_result {
	SRS_OK,			/* out holds the rewritten address */
	SRS_UNCHANGED,		/* null sender, or already ours: use as is */
	SRS_NOT_SRS,		/* reverse: not an SRS address */
	SRS_BAD_HASH,		/* reverse: hash does not verify */
	SRS_EXPIRED,		/* reverse: timestamp too old or in the future */
	SRS_MALFORMED,		/* input cannot be parsed */
	SRS_TOO_LONG,		/* result would not fit out or RFC 5321 limits */
};

/*
 * Load secrets from a file, one per line (first line signs).  Returns 0,
 * or -1 with a message in err.  A loaded context needs srs_free().
 */
int	srs_init(struct srs *, const char *domain, const char *secret_file,
	    char *err, size_t errsz);
/* Free the HMAC states and clear the secrets.  A zeroed struct is fine. */
void	srs_free(struct srs *);
/* Rewrite envelope sender "local@domain" ("" is the null sender). */
enum srs_result srs_forward(const struct srs *, const char *sender,
	    char *out, size_t outsz, time_t now);
/* Recover the address an SRS address at our domain stands for. */
enum srs_result srs_reverse(const struct srs *, const char *addr,
	    char *out, size_t outsz, time_t now);
const char *srs_result_str(enum srs_result);

#endif
