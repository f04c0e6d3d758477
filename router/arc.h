/*
 * Streaming verification of an Authenticated Received Chain (RFC 8617
 * section 5.2) for the inbound checks.  Like the DKIM verifier, which
 * provides the tag-list parser, canonicalization, key records and
 * signature checks, it is fed the message in pieces and keeps only the
 * header section:
 *
 *   arc_verifier_new()      before the first byte
 *   arc_verifier_update()   for each piece, header then body, any size
 *   arc_verifier_finish()   after the last byte; the callback follows
 *   arc_verifier_free()     at any time, also from the callback
 *
 * When the header section is complete, the ARC sets are collected and
 * their structure checked, and the key lookups of every ARC-Seal and
 * ARC-Message-Signature start at once.  The result is the chain
 * validation status: none (no ARC field), pass or fail, plus the
 * "oldest-pass" instance of section 5.2.
 */
#ifndef ROUTER_ARC_H
#define ROUTER_ARC_H

#include <stddef.h>
#include <time.h>

#include <ev.h>

#include "dkim.h"
#include "dns.h"

/* Maximum ARC sets in a chain (RFC 8617 section 4.2.1). */
#define ARC_INSTANCE_MAX	50
/* Body hashes per message, for the ARC-Message-Signatures checked. */
#define ARC_BODY_HASHES		8
/* Bytes kept of the newest ARC-Authentication-Results value. */
#define ARC_AAR_MAX		1024

/*
 * Chain validation status.  There is no temporary error: RFC 8617
 * section 5.2.1 makes every error, DNS failures included, a fail.
 */
enum arc_result {
	ARC_NONE,		/* no ARC header field at all */
	ARC_PASS,
	ARC_FAIL,
};

struct arc_chain_result {
	enum arc_result	 result;
	char		 reason[160];		/* what failed, or "" */
	unsigned	 instances;		/* ARC sets, 0 with none */
	/*
	 * With pass: the lowest instance from which every
	 * ARC-Message-Signature up to the newest verifies, or 0 when all of
	 * them do (RFC 8617 section 5.2 steps 5 to 7).
	 */
	unsigned	 oldest_pass;
	char		 domain[DKIM_DOMAIN_MAX + 1];	/* d= of the newest seal */
	/*
	 * With fail: a key lookup failed for DNS reasons (temperror), so
	 * the chain might pass later.
	 */
	int		 dns_error;
	/*
	 * With pass: the unfolded value of the newest
	 * ARC-Authentication-Results, truncated to fit, for a local policy
	 * that trusts the sealer's results (RFC 8617 section 7.2).
	 */
	char		 aar[ARC_AAR_MAX];
};

/* Called once per verifier; the result is valid only during the call. */
typedef void arc_cb(void *arg, const struct arc_chain_result *);

struct arc_verifier;

/*
 * Create a verifier.  now is the verification time in seconds since the
 * epoch, or 0 for the clock.
 */
struct arc_verifier *arc_verifier_new(struct dns_ctx *, struct ev_loop *,
		    time_t now);
/*
 * Feed the next len bytes of the message: plain message bytes with CRLF
 * line ends and dot-stuffing removed.  Ignored after finish.
 */
void		 arc_verifier_update(struct arc_verifier *, const char *,
		    size_t len);
/*
 * End of message.  cb runs once, from the event loop and never from
 * inside this call, when the key lookups have completed.
 */
void		 arc_verifier_finish(struct arc_verifier *, arc_cb *cb,
		    void *arg);
/*
 * Free the verifier and cancel its lookups; the callback will not run.
 * Allowed from inside the callback.
 */
void		 arc_verifier_free(struct arc_verifier *);

const char	*arc_result_str(enum arc_result);

/*
 * Parse the instance of an ARC-Authentication-Results value: "i=" 1 to 50
 * followed by ";" (RFC 8617 section 4.1.1), FWS allowed around each part.
 * Returns the instance, or 0 if the value does not start that way.
 */
unsigned	 arc_aar_instance(const char *value, size_t len);

#endif
