/*
 * ARC sealing (RFC 8617 section 5.1).  When the relay forwards a
 * message it may add its own ARC set on top of it, so that a later
 * receiver can read the authentication results this relay found, signed
 * by the relay's domain.  The set is three header fields, written in
 * this order:
 *
 *   ARC-Seal                    i=N, cv=, signs the ARC sets 1 to N
 *   ARC-Message-Signature       i=N, a DKIM-like signature of the message
 *   ARC-Authentication-Results  i=N, the relay's Authentication-Results
 *
 * The message signature needs the body hash and the results need the
 * DKIM and DMARC outcomes, so a seal can only be computed after the last
 * byte.  The router therefore seals only in hold mode, where it keeps
 * each message in memory until the verdict; see docs/authentication.md.
 *
 *   arc_seal_input_init()     before the first byte
 *   arc_seal_input_update()   message bytes, dot-stuffing removed
 *   arc_seal()                after the last byte: writes the set
 *   arc_seal_input_free()
 *
 * The header section is the one the DKIM verifier collects for the same
 * message (bounded as in msghdr.h), so it is not stored twice.  The
 * input itself keeps one running body hash and never the body.
 */
#ifndef ROUTER_ARCSEAL_H
#define ROUTER_ARCSEAL_H

#include <stddef.h>
#include <time.h>

#include "arc.h"
#include "buf.h"
#include "dkim.h"
#include "msghdr.h"

struct arc_sealer;

/*
 * Load the private key (PEM: RSA of 1024 to 8192 bits, or Ed25519) for
 * signing as d=domain, s=selector.  Returns NULL with a message in err
 * when the file cannot be read, contains another kind of key, or the
 * domain or selector is not a DNS name.
 */
struct arc_sealer *arc_sealer_load(const char *keyfile, const char *domain,
		    const char *selector, char *err, size_t errsz);
void		 arc_sealer_free(struct arc_sealer *);
/*
 * Non-zero when s is a DNS name usable as d= or s=: labels of letters,
 * digits, '-' and '_' of 1 to 63 bytes, no label starting or ending with
 * '-', at most 253 bytes, no trailing dot.
 */
int		 arc_seal_dns_name(const char *s);
const char	*arc_sealer_domain(const struct arc_sealer *);

struct arc_seal_input {
	struct dkim_body_hash	 body;		/* relaxed, the whole body */
	uint64_t		 bytes;		/* message bytes fed so far */
	int			 finished;
};

void		 arc_seal_input_init(struct arc_seal_input *);
/*
 * Feed plain message bytes (CRLF line ends, dot-stuffing removed).  hdr
 * is the header section collected from the same bytes, and must already
 * have been fed these: its end tells where the body starts.
 */
void		 arc_seal_input_update(struct arc_seal_input *,
		    const struct msghdr_section *hdr, const char *, size_t);
void		 arc_seal_input_free(struct arc_seal_input *);

/*
 * Append the new ARC set for the message fed to in (which is finished
 * by this call) to out, each field ending in CRLF.  hdr is its complete
 * header section.  authres is the
 * relay's whole Authentication-Results field ("Authentication-Results:
 * id; ..." with its CRLF); its value becomes the value of the new
 * ARC-Authentication-Results after "i=N; ".  chain is the result of
 * verifying the chain the message arrived with; it sets cv=.  now is
 * the t= value.
 *
 * Returns 0, or -1 with a static reason in *skip_reason and nothing
 * appended when the message must not or cannot be sealed: its newest ARC-Seal
 * has cv=fail (the chain has ended, RFC 8617 section 5.1), it has 50
 * ARC sets already (section 4.2.1), its header section exceeded the
 * limits of msghdr.h, or signing failed.
 */
int		 arc_seal(const struct arc_sealer *, struct arc_seal_input *in,
		    const struct msghdr_section *hdr,
		    const char *authres, size_t authres_len,
		    enum arc_result chain, time_t now, struct buf *out,
		    const char **skip_reason);

#endif
