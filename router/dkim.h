/*
 * Streaming DKIM verification (RFC 6376, with RFC 8301 and RFC 8463) for
 * the inbound checks.  The relay forwards a message while it arrives, so
 * the verifier is fed the message in pieces and never stores the body:
 *
 *   dkim_verifier_new()      before the first byte
 *   dkim_verifier_update()   for each piece, header then body, any size
 *   dkim_verifier_finish()   after the last byte; the callback follows
 *   dkim_verifier_free()     at any time, also from the callback
 *
 * When the header section is complete, every DKIM-Signature field is
 * parsed and the key lookups (selector._domainkey.domain TXT) start at
 * once, so DNS runs while the body streams.  The body is canonicalized
 * and hashed on the way, one hash per distinct (canonicalization, l=)
 * pair.  Algorithms: rsa-sha256 and ed25519-sha256.  rsa-sha1 is reported
 * as permerror without being checked, and RSA keys under 1024 bits too,
 * because RFC 8301 says verifiers must not consider them valid.
 *
 * The lower part of this header exposes the building blocks (tag-list
 * parser, canonicalization, key records, signature checks) that the ARC
 * verifier in arc.c shares.
 */
#ifndef ROUTER_DKIM_H
#define ROUTER_DKIM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>
#include <openssl/evp.h>

#include "dns.h"
#include "msghdr.h"

/* Signatures verified per message; further ones are reported neutral. */
#define DKIM_VERIFY_MAX		8
/* Results reported per message; DKIM-Signature fields past it are ignored. */
#define DKIM_RESULTS_MAX	32
/* Seconds of clock difference allowed for the t= and x= tags. */
#define DKIM_CLOCK_SKEW		300
#define DKIM_DOMAIN_MAX		253	/* d= and s=, as DNS names */
#define DKIM_IDENTITY_MAX	320
/* First characters of b= kept for header.b (RFC 6008). */
#define DKIM_B_PREFIX		8

/* Result names of RFC 8601 section 2.7.1. */
enum dkim_result {
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

enum dkim_alg {
	DKIM_ALG_UNKNOWN,
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,
};

/* The outcome for one DKIM-Signature field, in header order. */
struct dkim_sig_result {
	enum dkim_result result;
	const char	*reason;		/* short static text */
	enum dkim_alg	 alg;
	char		 domain[DKIM_DOMAIN_MAX + 1];	/* d=, "" if unknown */
	char		 selector[DKIM_DOMAIN_MAX + 1];	/* s= */
	/* i=, decoded from dkim-quoted-printable */
	char		 identity[DKIM_IDENTITY_MAX + 1];
	char		 b_prefix[DKIM_B_PREFIX + 1];	/* start of b= */
	unsigned	 key_bits;		/* 0 unless a key was loaded */
	/*
	 * The key record has t=y: the domain is testing DKIM, and RFC 6376
	 * says to treat the message like an unsigned one whatever result.
	 */
	int		 testing;
	/* l= covered less than the whole canonical body. */
	int		 body_partial;
};

/*
 * Called once per verifier with one result per DKIM-Signature field (up
 * to DKIM_RESULTS_MAX), count 0 for an unsigned message.  The results
 * are valid only during the call.
 */
typedef void dkim_cb(void *arg, const struct dkim_sig_result *results,
    size_t count);

struct dkim_options {
	/* Verification time in seconds since the epoch; 0 for the clock. */
	time_t		 now;
	/* Signatures verified; 0 for DKIM_VERIFY_MAX. */
	unsigned	 verify_max;
};

struct dkim_verifier;

/*
 * Create a verifier.  Key lookups go through dns; the loop runs the
 * callback when no lookup is left to wait for.  opts may be NULL.
 */
struct dkim_verifier *dkim_verifier_new(struct dns_ctx *, struct ev_loop *,
		    const struct dkim_options *);
/*
 * Feed the next len bytes of the message: plain message bytes with CRLF
 * line ends and dot-stuffing removed.  Calls after dkim_verifier_finish()
 * are ignored.
 */
void		 dkim_verifier_update(struct dkim_verifier *, const char *,
		    size_t len);
/*
 * End of message.  cb runs once, from the event loop and never from
 * inside this call, when the key lookups have answered (the DNS client's
 * timeouts bound the wait).
 */
void		 dkim_verifier_finish(struct dkim_verifier *, dkim_cb *cb,
		    void *arg);
/*
 * Free the verifier and cancel its lookups; the callback will not run.
 * Allowed from inside the callback.
 */
void		 dkim_verifier_free(struct dkim_verifier *);
/*
 * The header section collected so far, for the other checks (DMARC
 * reads From:).  Complete once the body started or after finish.
 */
const struct msghdr_section *dkim_verifier_header(const struct dkim_verifier *);

const char	*dkim_result_str(enum dkim_result);
const char	*dkim_alg_str(enum dkim_alg);

/*
 * Building blocks shared with arc.c.
 */

/* RFC 6376 section 3.2 tag-list: "tag=value; ..." */
#define DKIM_TAGS_MAX		64

struct dkim_tag {
	const char	*name;
	size_t		 name_len;
	const char	*value;		/* FWS at both ends trimmed */
	size_t		 value_len;
	/* From just after "=" to the ";" or the end: what b= removal drops. */
	size_t		 raw_start, raw_end;	/* offsets in the list */
};

struct dkim_taglist {
	struct dkim_tag	 tags[DKIM_TAGS_MAX];
	size_t		 count;
};

/*
 * Parse a tag-list of len bytes.  Returns 0, or -1 when the syntax is
 * invalid, a tag name repeats or there are more than DKIM_TAGS_MAX tags.
 * The tags point into s.
 */
int		 dkim_taglist_parse(struct dkim_taglist *, const char *s,
		    size_t len);
/* The tag named name (case-sensitive, as tag names are), or NULL. */
const struct dkim_tag *dkim_taglist_get(const struct dkim_taglist *,
		    const char *name);

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

/* Which header field a signature is: it decides the tags it must have. */
enum dkim_sig_kind {
	DKIM_SIG_DKIM,		/* DKIM-Signature */
	DKIM_SIG_AMS,		/* ARC-Message-Signature (RFC 8617 4.1.2) */
	DKIM_SIG_SEAL,		/* ARC-Seal (RFC 8617 4.1.3) */
};

/* ARC-Seal cv= values (RFC 8617 4.1.3). */
enum dkim_cv {
	DKIM_CV_NONE,
	DKIM_CV_PASS,
	DKIM_CV_FAIL,
};

#define DKIM_H_MAX		128	/* names in h= */
#define DKIM_SIG_BYTES_MAX	1024	/* b= of an RSA 8192-bit key */
#define DKIM_HASH_LEN		32	/* SHA-256 */

struct dkim_span {
	uint32_t	 off, len;
};

/* A parsed signature field.  Offsets refer to the parsed field value. */
struct dkim_sig {
	enum dkim_sig_kind kind;
	enum dkim_alg	 alg;
	enum dkim_canon	 hcanon, bcanon;
	char		 domain[DKIM_DOMAIN_MAX + 1];
	char		 selector[DKIM_DOMAIN_MAX + 1];
	char		 identity[DKIM_IDENTITY_MAX + 1];	/* DKIM i= */
	unsigned	 instance;			/* ARC i= */
	enum dkim_cv	 cv;				/* ARC-Seal cv= */
	unsigned char	 b[DKIM_SIG_BYTES_MAX];
	size_t		 b_len;
	char		 b_prefix[DKIM_B_PREFIX + 1];
	unsigned char	 bh[DKIM_HASH_LEN];
	size_t		 bh_len;	/* wrong lengths fail as a mismatch */
	struct dkim_span h[DKIM_H_MAX];
	size_t		 h_count;
	size_t		 b_raw_start, b_raw_end;	/* b= value to remove */
	int		 has_l;
	uint64_t	 l;
	int		 has_t, has_x;
	uint64_t	 t, x;
};

/*
 * Parse a signature field's raw value (after the colon, folding kept).
 * Returns 0, or -1 with a static explanation in *reason for a field the
 * RFC says to reject as permerror.  On error, the fields parsed before
 * the failing tag (d=, s=, a= when valid) are still filled in for the
 * report.  Time checks are separate: see dkim_sig_check_time().
 */
int		 dkim_sig_parse(struct dkim_sig *, enum dkim_sig_kind,
		    const char *value, size_t len, const char **reason);
/* Returns 0, or -1 with *reason when t= or x= rule out the signature. */
int		 dkim_sig_check_time(const struct dkim_sig *, time_t now,
		    const char **reason);
/*
 * Write the key's DNS name, selector._domainkey.domain, into out.
 * Returns 0, or -1 if it would be longer than a DNS name may be.
 */
int		 dkim_key_name(const struct dkim_sig *, char *out,
		    size_t outsz);

/* A SHA-256 stream fed through a small buffer. */
struct dkim_hash {
	EVP_MD_CTX	*ctx;
	size_t		 len;
	unsigned char	 buf[2048];
};

void		 dkim_hash_init(struct dkim_hash *);
void		 dkim_hash_put(struct dkim_hash *, const void *, size_t);
void		 dkim_hash_final(struct dkim_hash *,
		    unsigned char out[DKIM_HASH_LEN]);
/* Release the context of a hash that will not be finished. */
void		 dkim_hash_clear(struct dkim_hash *);

/*
 * Canonicalize one raw header field (RFC 6376 section 3.4.1 and 3.4.2)
 * into h.  The skip_len bytes at skip_off of the field are left out (the
 * b= value of the signature being checked); pass 0 and 0 for none.  With
 * last set, the field's line end is left out, as for the signature field
 * itself.
 */
void		 dkim_canon_header(struct dkim_hash *, enum dkim_canon,
		    const char *raw, size_t len, size_t skip_off,
		    size_t skip_len, int last);

/*
 * Compute the SHA-256 digest of the header hash input (RFC 6376 section
 * 3.7) of sig, parsed from field sig_field of hdr: the fields named in h=,
 * each taken bottom-up, then the signature field itself without its b=
 * value and line end.
 */
void		 dkim_sig_header_digest(const struct msghdr_section *,
		    size_t sig_field, const struct dkim_sig *,
		    unsigned char out[DKIM_HASH_LEN]);

/* Streaming body canonicalization and hash (RFC 6376 3.4.3 to 3.4.5). */
struct dkim_body_hash {
	enum dkim_canon	 canon;
	int		 has_limit;
	uint64_t	 limit;		/* l= */
	uint64_t	 hashed;	/* canonical bytes hashed */
	uint64_t	 canon_len;	/* canonical body length so far */
	uint64_t	 empty_lines;	/* held back until text follows */
	int		 line_bytes;	/* the current line has content */
	int		 cr;		/* a CR is held back */
	int		 wsp;		/* relaxed: white space held back */
	int		 done;
	struct dkim_hash hash;
	unsigned char	 digest[DKIM_HASH_LEN];
};

void		 dkim_body_hash_init(struct dkim_body_hash *, enum dkim_canon,
		    int has_limit, uint64_t limit);
void		 dkim_body_hash_update(struct dkim_body_hash *, const char *,
		    size_t);
/* Finish the hash into digest; canon_len is then the whole body's. */
void		 dkim_body_hash_final(struct dkim_body_hash *);
void		 dkim_body_hash_clear(struct dkim_body_hash *);

/* A public key from a key record (RFC 6376 section 3.6.1). */
struct dkim_key {
	enum dkim_alg	 alg;		/* RSA_SHA256 or ED25519_SHA256 */
	EVP_PKEY	*rsa;
	unsigned char	 ed25519[32];
	unsigned	 bits;
	int		 testing;	/* t=y */
	int		 strict;	/* t=s */
};

/*
 * Load the key for sig from a TXT answer.  Returns DKIM_PASS with the
 * key loaded, or the result to report with a static *reason: temperror
 * for a DNS failure, permerror for no key or an unusable key record,
 * fail for a revoked key (empty p=).
 */
enum dkim_result dkim_key_load(struct dkim_key *, const struct dkim_sig *,
		    const struct dns_answer *, const char **reason);
/* Parse one key record's text; results as dkim_key_load(). */
enum dkim_result dkim_key_parse(struct dkim_key *, const struct dkim_sig *,
		    const char *txt, size_t len, const char **reason);
void		 dkim_key_clear(struct dkim_key *);

/*
 * Check sig's b= against the SHA-256 digest of the header hash input.
 * Returns DKIM_PASS or DKIM_FAIL.
 */
enum dkim_result dkim_verify_digest(const struct dkim_key *,
		    const struct dkim_sig *,
		    const unsigned char digest[DKIM_HASH_LEN]);

#endif
