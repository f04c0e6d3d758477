/*
 * Outbound SMTP: one session to the mail exchanger of one destination
 * domain, carrying one transaction on behalf of an inbound session.
 *
 * The owner drives it with commands and learns each outcome from one
 * callback.  smtp_client_new() resolves the MX (RFC 5321 section 5.1,
 * implicit MX, null MX per RFC 7505) and connects to each address in turn
 * until one greets.  It sends EHLO (HELO as fallback), then STARTTLS when
 * the server offers it and the configuration has a client TLS context,
 * then MAIL FROM, and reports SMTP_CLIENT_READY or SMTP_CLIENT_FAILED.
 * TLS is opportunistic (RFC 3207): a rejected STARTTLS goes on in
 * plaintext and an unverified certificate is only logged.  A failed
 * handshake leaves the connection unusable, so the client moves on to the
 * next address rather than retry the host without TLS.  Then the owner
 * sends RCPTs, DATA, streams the already dot-stuffed message bytes with
 * smtp_client_write(), and ends with smtp_client_end() (the final dot) or
 * smtp_client_abort() (close without the dot, so nothing is delivered).
 */
#ifndef ROUTER_SMTP_CLIENT_H
#define ROUTER_SMTP_CLIENT_H

#include <stddef.h>

#include <ev.h>
#include <openssl/ssl.h>

struct dns_ctx;

#define SMTP_REPLY_TEXT_MAX	512

/* A reply from the destination, or one made up for a local failure. */
struct smtp_reply {
	int	 code;		/* 250, 451, ... */
	char	 enhanced[16];	/* "2.1.5", or "" when the server sent none */
	char	 text[SMTP_REPLY_TEXT_MAX];	/* printable, lines joined by ' ' */
	int	 local;		/* made up by the relay, not sent by the peer */
};

enum smtp_client_event {
	SMTP_CLIENT_READY,	/* MAIL FROM accepted (reply is its reply) */
	SMTP_CLIENT_FAILED,	/* session failed before or at MAIL; reply says why */
	SMTP_CLIENT_RCPT,	/* reply to one smtp_client_rcpt(), in order */
	SMTP_CLIENT_DATA,	/* reply to DATA (354 or a refusal) */
	SMTP_CLIENT_DRAIN,	/* output buffer fell below the low-water mark */
	SMTP_CLIENT_END,	/* reply to the final dot */
	SMTP_CLIENT_LOST,	/* connection lost or timed out mid-transaction */
};
/*
 * After SMTP_CLIENT_FAILED or SMTP_CLIENT_LOST the client frees itself
 * once the callback returns (after a QUIT when the connection is still
 * up): the owner must not use it again.  Calling smtp_client_quit() or
 * smtp_client_abort() from inside that callback is allowed.
 */

typedef void smtp_client_cb(void *arg, enum smtp_client_event,
    const struct smtp_reply *);

/*
 * Zero in a numeric field selects its default.  command_timeout is shorter
 * than the 5 minutes RFC 5321 section 4.5.3.2 suggests for MAIL and RCPT,
 * because a sender is waiting on the other side of the relay.
 * data_end_timeout stays below the 10 minutes that the sender waits for
 * the reply to its own final dot, so the sender hears our 451 first.
 */
struct smtp_client_config {
	const char	*hostname;	/* our EHLO name, required */
	int		 port;		/* destination port, default 25 */
	double		 connect_timeout;	/* seconds, default 30 */
	double		 command_timeout;	/* seconds per reply, default 60 */
	double		 data_end_timeout;	/* seconds, reply to the dot, default 300 */
	size_t		 out_high_water;	/* bytes buffered before backpressure,
						   default 256 KiB */
	SSL_CTX		*tls_ctx;	/* from tls_client_ctx_new(); NULL: no
					   STARTTLS.  Each client holds a
					   reference of its own. */
	/*
	 * Seconds a connection stays open after a delivered message, for
	 * the next transaction to the same domain; 0 (the default) closes
	 * it with QUIT at once.
	 */
	double		 reuse_idle;
};

/* Bytes that one smtp_client_write() may add beyond the high-water mark. */
#define SMTP_CLIENT_WRITE_MAX	(1024 * 1024)
/* Maximum address length, in bytes, for smtp_client_new() and _rcpt(). */
#define SMTP_CLIENT_ADDR_MAX	512

struct smtp_client;

/*
 * Start a session to the MX of domain and send MAIL FROM:<mail_from>
 * ("" for the null sender) with SIZE=size when size > 0 and the server
 * offers SIZE, and BODY=8BITMIME when body_8bit and the server offers it.
 * The callback never runs from inside this call.
 *
 * Addresses (here and in smtp_client_rcpt()) come without angle brackets,
 * at most SMTP_CLIENT_ADDR_MAX bytes, without control characters or
 * "<>": the caller has parsed them already, so anything else is a broken
 * invariant and aborts, because it could inject a command.
 *
 * Local failures give SMTP_CLIENT_FAILED with reply->local set:
 * 556 5.1.10 null MX; 451 4.4.4 no such domain or no address for its MX;
 * 451 4.4.3 DNS failure; 451 4.4.1 no MX host answered; 451 4.4.2
 * connection lost, protocol error or failed TLS handshake; 552 5.3.4
 * message larger than the server's SIZE; 554 5.4.6 the MX is this relay
 * (mail loop).  Once every address has been tried, the owner gets the
 * last 5xx if every host rejected the greeting or HELO with 5xx.
 * Otherwise it gets the last 4xx from a host, or else the last local
 * failure.
 */
struct smtp_client *smtp_client_new(struct ev_loop *, struct dns_ctx *,
		    const struct smtp_client_config *, const char *domain,
		    const char *mail_from, size_t size, int body_8bit,
		    smtp_client_cb *, void *arg);
/*
 * Queue RCPT TO:<addr>, whose reply comes as one SMTP_CLIENT_RCPT.  Valid
 * from smtp_client_new() until smtp_client_data().  With PIPELINING the
 * commands go out together, the first ones right behind MAIL FROM, and
 * the replies come back in order after SMTP_CLIENT_READY; without it
 * they wait for READY and each RCPT waits for the previous reply.
 */
void		 smtp_client_rcpt(struct smtp_client *, const char *addr);
/* Send DATA, whose reply comes as SMTP_CLIENT_DATA. */
void		 smtp_client_data(struct smtp_client *);
/*
 * Queue message bytes (dot-stuffed, CRLF line ends) after a 354.
 * Returns the bytes still free below the high-water mark.  At zero the
 * owner stops reading its own peer until SMTP_CLIENT_DRAIN, which comes
 * once the buffer is below half the mark.  One call may pass the mark by
 * at most SMTP_CLIENT_WRITE_MAX bytes, and more is a broken invariant.
 */
size_t		 smtp_client_write(struct smtp_client *, const void *, size_t);
/*
 * Send the final ".\r\n" (after a CRLF if the message did not end with
 * one), whose reply comes as SMTP_CLIENT_END.
 */
void		 smtp_client_end(struct smtp_client *);
/*
 * Ask for SMTPUTF8 on MAIL (RFC 6531) when the destination offers it.  If
 * it does not and the envelope sender holds UTF-8, the session fails with
 * a local 550 5.6.7 before MAIL.  Call right after smtp_client_new(),
 * before the loop runs again.
 */
void		 smtp_client_want_smtputf8(struct smtp_client *);
/* Non-zero once MAIL was sent with SMTPUTF8. */
int		 smtp_client_smtputf8(const struct smtp_client *);

/*
 * Send QUIT if idle, then close and free; no further callbacks.  The
 * connection closes once QUIT is written, without waiting for its
 * reply.  With a command or the message in flight it closes at once, as
 * abort does.
 * Safe to call from inside the callback.
 */
void		 smtp_client_quit(struct smtp_client *);
/*
 * Close at once without the final dot and free; no further callbacks.
 * Safe to call from inside the callback.
 */
void		 smtp_client_abort(struct smtp_client *);

/* Peer's EHLO name from its greeting, for loop detection ("" if none). */
const char	*smtp_client_peer_name(const struct smtp_client *);
/* Session id that this client's log lines carry, for the owner's logs. */
const char	*smtp_client_id(const struct smtp_client *);
/*
 * TLS protocol version and cipher of the connection
 * ("TLSv1.3:TLS_AES_256_GCM_SHA384"), or "" while it is in plaintext.
 */
const char	*smtp_client_tls(const struct smtp_client *);
/*
 * Whether the destination's certificate chains to a trusted CA and names
 * the MX host: 1, or 0 with *reason (when reason is not NULL) set to a
 * static description, also without TLS.
 */
int		 smtp_client_tls_verified(const struct smtp_client *,
		    const char **reason);

/*
 * Reply parsing, exposed for the unit tests.  A reply is fed one line at
 * a time, without its CRLF.  Lines may be at most 1000 bytes with the
 * CRLF (RFC 5321 section 4.5.3.1.5), a reply at most
 * SMTP_REPLY_LINES_MAX lines.  Every line must carry the same 3-digit
 * code, 2xx to 5xx.  An enhanced status code (RFC 3463) on the first line
 * goes to reply.enhanced, and is removed from the text of every line that
 * repeats it.
 */
#define SMTP_REPLY_LINE_MAX	1000	/* bytes, CRLF included */
#define SMTP_REPLY_LINES_MAX	100

enum smtp_reply_status {
	SMTP_REPLY_DONE,	/* last line parsed: reply is complete */
	SMTP_REPLY_MORE,	/* continuation line parsed ("250-") */
	SMTP_REPLY_MALFORMED,	/* bad code, separator or code mismatch */
	SMTP_REPLY_TOO_LARGE,	/* line or line count over the limit */
};

struct smtp_reply_parser {
	struct smtp_reply	 reply;
	size_t			 lines;	/* lines parsed so far */
	size_t			 textlen;
};

void		 smtp_reply_begin(struct smtp_reply_parser *);
enum smtp_reply_status smtp_reply_line(struct smtp_reply_parser *,
		    const char *line, size_t len);

/* Service extensions from an EHLO reply (RFC 5321 section 4.1.1.1). */
struct smtp_ehlo {
	int			 pipelining;	/* RFC 2920 */
	int			 eightbitmime;	/* RFC 6152 */
	int			 starttls;	/* RFC 3207 */
	int			 smtputf8;	/* RFC 6531 */
	int			 size;		/* RFC 1870 SIZE offered */
	unsigned long long	 size_max;	/* its limit; 0 for none */
};

/*
 * Record the extension named by one EHLO line after the first (text
 * after "250-" or "250 ", without CRLF).  Unknown keywords are ignored.
 */
void		 smtp_ehlo_keyword(struct smtp_ehlo *, const char *text,
		    size_t len);

#endif
