/*
 * Outbound SMTP: one session to the mail exchanger of one destination
 * domain, carrying one transaction on behalf of an inbound session.
 *
 * The owner drives it with commands and learns each outcome from one
 * callback.  smtp_client_new() resolves the MX (RFC 5321 section 5.1,
 * implicit MX, null MX per RFC 7505), connects to each address in turn
 * until one greets, sends EHLO (HELO as fallback) and MAIL FROM, and
 * reports SMTP_CLIENT_READY or SMTP_CLIENT_FAILED.  Then the owner sends
 * RCPTs, DATA, streams the already dot-stuffed message bytes with
 * smtp_client_write(), and ends with smtp_client_end() (the final dot) or
 * smtp_client_abort() (close without the dot, so nothing is delivered).
 */
#ifndef ROUTER_SMTP_CLIENT_H
#define ROUTER_SMTP_CLIENT_H

#include <stddef.h>

#include <ev.h>

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

typedef void smtp_client_cb(void *arg, enum smtp_client_event,
    const struct smtp_reply *);

struct smtp_client_config {
	const char	*hostname;	/* our EHLO name */
	int		 port;		/* destination port, default 25 */
	double		 connect_timeout;	/* seconds */
	double		 command_timeout;	/* seconds, per reply */
	double		 data_end_timeout;	/* seconds, reply to the dot */
	size_t		 out_high_water;	/* bytes buffered before backpressure */
};

struct smtp_client;

/*
 * Start a session to the MX of domain and send MAIL FROM:<mail_from>
 * ("" for the null sender) with SIZE=size when size > 0 and the server
 * offers SIZE, and BODY=8BITMIME when body_8bit and the server offers it.
 * The callback never runs from inside this call.
 */
struct smtp_client *smtp_client_new(struct ev_loop *, struct dns_ctx *,
		    const struct smtp_client_config *, const char *domain,
		    const char *mail_from, size_t size, int body_8bit,
		    smtp_client_cb *, void *arg);
/* Queue RCPT TO:<addr>; answered by one SMTP_CLIENT_RCPT event. */
void		 smtp_client_rcpt(struct smtp_client *, const char *addr);
/* Send DATA; answered by SMTP_CLIENT_DATA. */
void		 smtp_client_data(struct smtp_client *);
/*
 * Queue message bytes (dot-stuffed, CRLF line ends) after a 354.
 * Returns the bytes still free below the high-water mark; at zero the
 * owner stops reading its own peer until SMTP_CLIENT_DRAIN.
 */
size_t		 smtp_client_write(struct smtp_client *, const void *, size_t);
/* Send the final ".\r\n"; answered by SMTP_CLIENT_END. */
void		 smtp_client_end(struct smtp_client *);
/* Send QUIT if idle, then close and free; no further callbacks. */
void		 smtp_client_quit(struct smtp_client *);
/* Close at once without the final dot and free; no further callbacks. */
void		 smtp_client_abort(struct smtp_client *);

/* Peer's EHLO name from its greeting, for loop detection ("" if none). */
const char	*smtp_client_peer_name(const struct smtp_client *);

#endif
