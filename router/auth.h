/*
 * Inbound authentication of one mail transaction: SPF (RFC 7208) from
 * MAIL FROM, DKIM (RFC 6376) computed while the message streams through,
 * and DMARC (RFC 7489) at the final dot, turned into a verdict by the
 * operator's policy.  The SMTP server calls in at MAIL, at DATA, with
 * every chunk of message data, and at the final dot, and holds the dot
 * back until the verdict is known.
 *
 * While the message streams, the Authentication-Results header that goes
 * out in front of it can only carry what is known before the data: the
 * SPF result.  DKIM and DMARC are still verified and enforced.  In hold
 * mode the router keeps the message until the verdict, so the header
 * carries every result and an ARC set can be added (arcseal.h).
 */
#ifndef ROUTER_AUTH_H
#define ROUTER_AUTH_H

#include <stddef.h>

#include <ev.h>

struct arc_sealer;
struct buf;
struct dns_ctx;
struct psl;

/* Maximum number of trusted ARC sealers. */
#define AUTH_ARC_TRUSTED_MAX	32
/* Room for the Authentication-Results field auth_header() writes. */
#define AUTH_HEADER_MAX		8192

enum auth_action {
	AUTH_ACCEPT,
	AUTH_REJECT,
};

struct auth_policy {
	int		 enabled;	/* run the checks at all */
	int		 add_header;	/* prepend Authentication-Results */
	/* DMARC fail under p=reject (after pct): reject by default. */
	enum auth_action dmarc_reject;
	/* DMARC fail under p=quarantine: accept by default. */
	enum auth_action dmarc_quarantine;
	/* SPF fail and no DKIM pass aligned with the From domain. */
	enum auth_action spf_fail;
	/* Neither SPF nor any DKIM signature passed. */
	enum auth_action unauthenticated;
	/* Seal with this key (hold mode only); NULL for no sealing. */
	const struct arc_sealer *sealer;
	/*
	 * Domains (d= of the newest ARC-Seal) whose passing chain may
	 * override a failure here when their results record a pass.
	 */
	const char	*arc_trusted[AUTH_ARC_TRUSTED_MAX];
	size_t		 narc_trusted;
};

struct auth_ctx;
struct auth_txn;

/* The verdict at the final dot. */
struct auth_verdict {
	int		 reject;	/* refuse the message */
	int		 code;		/* 550 when rejecting */
	const char	*enhanced;	/* "5.7.1", ... */
	char		 text[512];
	/* For the log line: the results in RFC 8601 words. */
	char		 summary[256];
};

typedef void auth_cb(void *arg, const struct auth_verdict *);

/*
 * One per worker.  psl may be NULL, then DMARC treats every domain as
 * its own organizational domain.
 */
struct auth_ctx	*auth_ctx_new(struct ev_loop *, struct dns_ctx *,
		    const struct psl *, const struct auth_policy *,
		    const char *hostname);
void		 auth_ctx_free(struct auth_ctx *);
const struct auth_policy *auth_ctx_policy(const struct auth_ctx *);

/*
 * Start a transaction at MAIL FROM: the SPF check runs at once.  sender
 * is "local@domain" or "" for the null sender.
 */
struct auth_txn	*auth_txn_new(struct auth_ctx *, const char *client_ip,
		    const char *helo, const char *sender);
void		 auth_txn_free(struct auth_txn *);

/*
 * Call cb once the SPF result is known (from the event loop, never from
 * inside this call).  Used before DATA so the header can carry it.
 */
void		 auth_wait_spf(struct auth_txn *, void (*cb)(void *), void *);
int		 auth_spf_done(const struct auth_txn *);

/*
 * Write the Authentication-Results header field (with CRLF) into out:
 * the SPF result before the verdict, every result after it.  Returns its
 * length, or 0 when there is none to add.
 */
size_t		 auth_header(const struct auth_txn *, char *out, size_t outsz);

/*
 * After an accepting verdict, append the relay's ARC set (ARC-Seal,
 * ARC-Message-Signature, ARC-Authentication-Results) to out when the
 * policy has a sealer.  Returns 1 when a set was added, 0 when there is
 * no sealer, and -1 with a static reason in *skip_reason when
 * arc_seal() did not seal the message.
 */
int		 auth_seal(struct auth_txn *, struct buf *out,
		    const char **skip_reason);

/* Message data as it goes out: dot-stuffed, CRLF lines, end marker not included. */
void		 auth_data(struct auth_txn *, const char *data, size_t len);

/*
 * The data is complete: finish DKIM, evaluate DMARC and the policy, and
 * call cb with the verdict (from the event loop).
 */
void		 auth_finish(struct auth_txn *, auth_cb *, void *);

#endif
