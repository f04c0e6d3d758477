/*
 * Outbound SMTP client: one session to the mail exchanger of one
 * destination domain, driven by an inbound session that relays in real
 * time (see smtp_client.h for the interface).
 *
 * Entering a state sends its command, and the reply handler of the state
 * picks the next one.  The path of a delivered message:
 *
 *   new() --> MX
 *              | addresses found
 *              v
 *   +-----> CONNECT <------------------+
 *   |          | connected             |
 *   |          v                       |
 *   +------ GREETING                   | host trouble:
 *   |          | 2xx                   | next address
 *   |          v                       |
 *   +------- EHLO ---5xx---> HELO -----+
 *              | 2xx           | 2xx
 *              v               |
 *             MAIL <-----------+
 *              | 2xx: READY
 *              v
 *             RCPT   RCPT and DATA commands wait in a FIFO
 *              | DATA 354
 *              v
 *             BODY   the owner streams the message
 *              | end()
 *              v
 *             DOT
 *              | reply: END
 *              v
 *             DONE --quit()--> QUIT --written, close or timeout--> freed
 *              | quit() after a 2xx to the dot, with reuse_idle set
 *              v
 *             parked, until smtp_client_new() for the same domain takes
 *             it back to MAIL, or the server closes it, or it has been
 *             idle for reuse_idle seconds (then QUIT)
 *
 * When the reply to EHLO offers STARTTLS, the configuration has a client
 * TLS context and the connection is still in plaintext, the session takes
 * a detour before MAIL (RFC 3207):
 *
 *   EHLO --2xx--> STARTTLS --220--> TLS --handshake done--> EHLO
 *                    | 4xx, 5xx
 *                    v
 *                   MAIL, in plaintext on the same connection
 *
 * The second EHLO's reply replaces the capabilities of the first, and its
 * STARTTLS keyword is ignored.
 *
 * On "host trouble" the next address of the MX list is tried.  Host
 * trouble is a refused or timed out connect, a 4xx or 5xx greeting or
 * HELO, a 4xx EHLO, a reply to STARTTLS other than 220, 4xx or 5xx, a
 * failed or timed out TLS handshake, a lost connection or a malformed
 * reply.  The other edges:
 *
 *   MX: null MX, NXDOMAIN, DNS failure, no address   -> CLOSED, FAILED
 *   CONNECT to HELO: host trouble, no address left   -> CLOSED, FAILED
 *   GREETING to HELO: the peer calls itself by our
 *     name; EHLO: the message exceeds SIZE           -> DONE, FAILED
 *   MAIL: rejected                                   -> DONE, FAILED
 *   MAIL: timeout, lost connection, bad reply        -> CLOSED, FAILED
 *   RCPT: DATA rejected                              -> DONE, DATA event
 *   RCPT, BODY, DOT: timeout, lost, bad reply        -> CLOSED, LOST
 *   after FAILED or LOST: DONE -> QUIT, CLOSED -> freed
 *   quit() in RCPT with no command in flight         -> QUIT
 *   quit() elsewhere, abort() anywhere               -> closed and freed
 *
 * All reads and writes go through a transport: the socket in plaintext,
 * OpenSSL once TLS is up.  OpenSSL may make a write wait for the socket to
 * become readable and a read wait for it to become writable, so each
 * watcher callback first resumes the operation that waits for its event.
 * The read watcher runs as long as the connection does.
 *
 * In RCPT the commands queued by smtp_client_rcpt() and smtp_client_data()
 * wait in a FIFO.  With PIPELINING they all go out at once and the replies
 * are matched to them in order.  Without it each command waits for the
 * previous reply.  Output is gathered in one buffer and written from an ev_prepare
 * watcher, which runs after every callback of the loop iteration and
 * before the loop sleeps, so a burst of commands or message chunks leaves
 * in one write().  Message bytes wait until SC_BODY_BATCH of them have
 * gathered or the final dot follows.  An ev_io write watcher runs only
 * while the socket does not take everything.
 *
 * A client is freed only outside its own watcher callbacks: quit() and
 * abort() from inside one stop every watcher and mark it dead, and the
 * outermost callback frees it on the way out.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "dns.h"
#include "log.h"
#include "mx.h"
#include "random.h"
#include "smtp_client.h"
#include "str.h"
#include "tls.h"
#include "xmalloc.h"

#define SC_DEFAULT_PORT			25
#define SC_DEFAULT_CONNECT_TIMEOUT	30.0
#define SC_DEFAULT_COMMAND_TIMEOUT	60.0
#define SC_DEFAULT_DATA_END_TIMEOUT	300.0
#define SC_DEFAULT_HIGH_WATER		(256 * 1024)
#define SC_QUIT_TIMEOUT_MAX		10.0	/* to write QUIT */
/*
 * Message bytes gathered before a write.  A short message then leaves
 * with the final dot in one write() instead of a write per piece.
 */
#define SC_BODY_BATCH			(16 * 1024)
/* Idle connections kept for reuse per process. */
#define SC_IDLE_MAX			64
/* Seconds for the reply to MAIL on a reused connection; then a new one. */
#define SC_REUSE_MAIL_TIMEOUT		10.
#define SC_INPUT_CAP			8192	/* replies are read line by line */
#define SC_NAME_MAX			256

enum sc_state {
	SC_STATE_MX,		/* waiting for the MX and address lookups */
	SC_STATE_CONNECT,	/* non-blocking connect in progress */
	SC_STATE_GREETING,	/* waiting for the 220 */
	SC_STATE_EHLO,
	SC_STATE_HELO,
	SC_STATE_STARTTLS,	/* STARTTLS sent, waiting for the 220 */
	SC_STATE_TLS,		/* TLS handshake in progress */
	SC_STATE_MAIL,
	SC_STATE_RCPT,		/* after READY: RCPT and DATA in the FIFO */
	SC_STATE_BODY,		/* after 354: the owner streams the message */
	SC_STATE_DOT,		/* final dot sent, waiting for its reply */
	SC_STATE_DONE,		/* connected, nothing more to send but QUIT */
	SC_STATE_QUIT,		/* QUIT queued by quit(); no more callbacks */
	SC_STATE_CLOSED,	/* no connection; FAILED or LOST was reported */
};

static const char *const sc_state_names[] = {
	[SC_STATE_MX] = "mx",
	[SC_STATE_CONNECT] = "connect",
	[SC_STATE_GREETING] = "greeting",
	[SC_STATE_EHLO] = "ehlo",
	[SC_STATE_HELO] = "helo",
	[SC_STATE_STARTTLS] = "starttls",
	[SC_STATE_TLS] = "tls",
	[SC_STATE_MAIL] = "mail",
	[SC_STATE_RCPT] = "rcpt",
	[SC_STATE_BODY] = "body",
	[SC_STATE_DOT] = "dot",
	[SC_STATE_DONE] = "done",
	[SC_STATE_QUIT] = "quit",
	[SC_STATE_CLOSED] = "closed",
};

/* Local failures, each with the reply the owner gets and a log reason. */
enum sc_error {
	SC_ERR_NULL_MX,
	SC_ERR_NXDOMAIN,
	SC_ERR_NO_ADDRESS,
	SC_ERR_BAD_DOMAIN,
	SC_ERR_DNS,
	SC_ERR_NO_ANSWER,
	SC_ERR_LOST,
	SC_ERR_TIMEOUT,
	SC_ERR_PROTOCOL,
	SC_ERR_TLS,
	SC_ERR_SIZE,
	SC_ERR_SMTPUTF8,
	SC_ERR_LOOP,
};

static const struct {
	int		 code;
	const char	*enhanced;
	const char	*text;
	const char	*reason;
} sc_errors[] = {
	[SC_ERR_NULL_MX] = { 556, "5.1.10",
	    "destination domain accepts no mail (null MX)", "null-mx" },
	[SC_ERR_NXDOMAIN] = { 451, "4.4.4",
	    "destination domain not found in DNS", "nxdomain" },
	[SC_ERR_NO_ADDRESS] = { 451, "4.4.4",
	    "no address found for the destination mail servers",
	    "no-address" },
	[SC_ERR_BAD_DOMAIN] = { 451, "4.4.4",
	    "invalid destination domain", "invalid-domain" },
	[SC_ERR_DNS] = { 451, "4.4.3",
	    "DNS lookup of the destination mail servers failed, try again later",
	    "dns-failure" },
	[SC_ERR_NO_ANSWER] = { 451, "4.4.1",
	    "no answer from the destination mail servers", "no-answer" },
	[SC_ERR_LOST] = { 451, "4.4.2",
	    "connection to the destination mail server lost",
	    "connection-lost" },
	[SC_ERR_TIMEOUT] = { 451, "4.4.2",
	    "destination mail server timed out", "timeout" },
	[SC_ERR_PROTOCOL] = { 451, "4.4.2",
	    "invalid reply from the destination mail server",
	    "protocol-error" },
	[SC_ERR_TLS] = { 451, "4.4.2",
	    "TLS handshake with the destination mail server failed",
	    "tls-failed" },
	[SC_ERR_SIZE] = { 552, "5.3.4",
	    "message exceeds the destination server's size limit", "size" },
	[SC_ERR_SMTPUTF8] = { 550, "5.6.7",
	    "destination server does not support SMTPUTF8, which the "
	    "envelope sender needs", "no-smtputf8" },
	[SC_ERR_LOOP] = { 554, "5.4.6",
	    "mail loop: destination MX is this relay", "mail-loop" },
};

enum sc_cmd_kind {
	SC_CMD_RCPT,
	SC_CMD_DATA,
};

/* A queued RCPT or DATA. */
struct sc_cmd {
	enum sc_cmd_kind	 kind;
	char			*line;	/* command with CRLF; NULL once sent */
	char			*rcpt;		/* the address, RCPT only */
};

struct smtp_client {
	struct ev_loop		*loop;
	struct dns_ctx		*dns;
	struct smtp_client_config cfg;	/* defaults filled in */
	char			*hostname;
	char			 id[16];
	char			 domain[MX_NAME_MAX];
	char			*mail_from;
	size_t			 size;
	int			 body_8bit;
	int			 want_smtputf8;	/* the sender declared SMTPUTF8 */
	int			 sent_smtputf8;	/* MAIL carried SMTPUTF8 */
	smtp_client_cb		*cb;	/* NULL after quit() or abort() */
	void			*arg;
	enum sc_state		 state;

	/* Lifetime: freed by the outermost callback once dead. */
	int			 busy;
	int			 dead;

	/* Resolution and the addresses left to try. */
	struct mx_lookup	*mx;
	enum sc_error		 mx_error;	/* a failure reported from MX */
	struct mx_target	*targets;	/* copied from the MX result */
	size_t			 ntargets;
	size_t			 next_target;
	const struct mx_target	*target;	/* the one being tried */

	/*
	 * Outcome of the hosts tried so far, for the final FAILED reply.
	 * Each reply is allocated when a host first fails that way.
	 */
	int			 all_5xx;
	struct smtp_reply	*last_5xx;
	struct smtp_reply	*last_4xx;
	struct smtp_reply	*last_local;

	/* The connection. */
	int			 fd;
	unsigned		 conn_gen;	/* bumped when a connection closes */
	char			 addr_text[INET6_ADDRSTRLEN];
	ev_io			 read_w;
	ev_io			 write_w;
	ev_timer		 timer;
	ev_prepare		 flush_w;
	struct buf		 in;
	struct buf		 out;
	struct smtp_reply_parser parser;
	struct smtp_ehlo	 ehlo;
	char			 peer_name[SC_NAME_MAX];	/* from the greeting */
	char			 ehlo_name[SC_NAME_MAX];	/* from the EHLO reply */

	/* TLS after STARTTLS, reset when the connection closes. */
	SSL			*ssl;	/* NULL while in plaintext */
	char			 tls_desc[96];	/* "" until the handshake is done */
	int			 tls_verified;
	const char		*tls_reason;	/* why not verified, static */
	int			 write_wants_read;	/* TLS write waits for input */
	int			 read_wants_write;	/* TLS read waits for output room */

	/* The transaction. */
	struct sc_cmd		*cmds;
	size_t			 ncmds;
	size_t			 cmds_size;
	size_t			 cmd_head;	/* first command not answered */
	size_t			 cmd_sent;	/* first command not sent */
	int			 data_queued;
	int			 above_high_water;
	char			 body_tail[2];	/* last two bytes written */
	int			 end_ok;	/* the final dot got a 2xx */

	/* Reuse of the connection for a later transaction. */
	struct smtp_client	*idle_prev, *idle_next;
	int			 parked;	/* idle, owned by no one */
	int			 reuse_start;	/* MAIL is due from the loop */
	int			 reused;	/* no reply yet since reuse */
	int			 reuse_mail;	/* MAIL went over a reused connection */
};

/* Idle connections, most recently parked first. */
static struct smtp_client *sc_idle;
static size_t sc_nidle;

static void	sc_on_read(struct ev_loop *, ev_io *, int);
static void	sc_on_write(struct ev_loop *, ev_io *, int);
static void	sc_on_timer(struct ev_loop *, ev_timer *, int);
static void	sc_on_flush(struct ev_loop *, ev_prepare *, int);
static void	sc_connect_next(struct smtp_client *);
static void	sc_enter(struct smtp_client *, enum sc_state);
static void	sc_trouble(struct smtp_client *, enum sc_error, const char *);
static void	sc_send_commands(struct smtp_client *);
static void	sc_unpark(struct smtp_client *);
static void	sc_begin_mail(struct smtp_client *);

/*
 * Reply parsing.
 */

void
smtp_reply_begin(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

/*
 * Return the length of an RFC 3463 enhanced status code at the start of
 * text, or 0 when there is none.  The syntax is "class.subject.detail":
 * class 2, 4 or 5, subject and detail of 1 to 3 digits, then a space or
 * the end of the line.
 */
static size_t
sc_enhanced_code_len(const char *text, size_t len)
{
	size_t i = 0, part, digits;

	if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') ||
	    text[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < len && digits < 4 &&
		    text[i] >= '0' && text[i] <= '9'; digits++)
			i++;
		if (digits == 0 || digits > 3)
			return 0;
		if (part == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && text[i] != ' ')
		return 0;
	return i;
}

/* Append peer text to the reply, joined by a space, made printable. */
static void
sc_reply_append_text(struct smtp_reply_parser *p, const char *text,
    size_t len)
{
	size_t i;
	unsigned char ch;

	if (p->textlen > 0 && len > 0 &&
	    p->textlen + 1 < sizeof(p->reply.text))
		p->reply.text[p->textlen++] = ' ';
	for (i = 0; i < len && p->textlen + 1 < sizeof(p->reply.text); i++) {
		ch = (unsigned char)text[i];
		p->reply.text[p->textlen++] =
		    (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	p->reply.text[p->textlen] = '\0';
}

/* Split off an enhanced code: record it from the first line, drop repeats. */
static void
sc_reply_take_enhanced(struct smtp_reply_parser *p, const char **text,
    size_t *len)
{
	size_t elen = sc_enhanced_code_len(*text, *len);

	if (elen == 0)
		return;
	if (p->lines == 0) {
		/* A class other than the code's first digit is plain text. */
		if ((*text)[0] != '0' + p->reply.code / 100)
			return;
		memcpy(p->reply.enhanced, *text, elen);
		p->reply.enhanced[elen] = '\0';
	} else if (strlen(p->reply.enhanced) != elen ||
	    memcmp(p->reply.enhanced, *text, elen) != 0) {
		return;
	}
	*text += elen;
	*len -= elen;
	while (*len > 0 && **text == ' ') {
		(*text)++;
		(*len)--;
	}
}

enum smtp_reply_status
smtp_reply_line(struct smtp_reply_parser *p, const char *line, size_t len)
{
	const char *text;
	size_t textlen;
	int code, last;

	if (p->lines >= SMTP_REPLY_LINES_MAX || len > SMTP_REPLY_LINE_MAX - 2)
		return SMTP_REPLY_TOO_LARGE;
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return SMTP_REPLY_MALFORMED;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_REPLY_MALFORMED;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (p->lines > 0 && code != p->reply.code)
		return SMTP_REPLY_MALFORMED;
	p->reply.code = code;
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	textlen = len > 4 ? len - 4 : 0;
	sc_reply_take_enhanced(p, &text, &textlen);
	sc_reply_append_text(p, text, textlen);
	p->lines++;
	return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

/*
 * Parse the SIZE parameter: decimal digits, at most 20 of them.
 * Returns the value, or 0 (no limit) when absent or malformed.
 */
static unsigned long long
sc_ehlo_size_param(const char *text, size_t len)
{
	unsigned long long value = 0;
	size_t i;

	if (len == 0 || len > 20)
		return 0;
	for (i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return 0;
		if (value > (~0ULL - 9) / 10)
			return 0;
		value = value * 10 + (unsigned long long)(text[i] - '0');
	}
	return value;
}

void
smtp_ehlo_keyword(struct smtp_ehlo *ehlo, const char *text, size_t len)
{
	size_t kwlen = 0, off;

	while (kwlen < len && text[kwlen] != ' ')
		kwlen++;
#define SC_KEYWORD_IS(k) (kwlen == sizeof(k) - 1 && \
	    strncasecmp(text, (k), kwlen) == 0)
	if (SC_KEYWORD_IS("PIPELINING"))
		ehlo->pipelining = 1;
	else if (SC_KEYWORD_IS("8BITMIME"))
		ehlo->eightbitmime = 1;
	else if (SC_KEYWORD_IS("STARTTLS"))
		ehlo->starttls = 1;
	else if (SC_KEYWORD_IS("SMTPUTF8"))
		ehlo->smtputf8 = 1;
	else if (SC_KEYWORD_IS("SIZE")) {
		ehlo->size = 1;
		off = kwlen;
		while (off < len && text[off] == ' ')
			off++;
		ehlo->size_max = sc_ehlo_size_param(text + off, len - off);
	}
#undef SC_KEYWORD_IS
}

/*
 * States, replies and events.
 */

static const char *
sc_state_name(enum sc_state state)
{
	if ((size_t)state >= sizeof(sc_state_names) / sizeof(sc_state_names[0]))
		fatal_invariant("unknown smtp_client state");
	return sc_state_names[state];
}

static void
sc_set_state(struct smtp_client *c, enum sc_state state)
{
	log_debug("session=%s state=%s next=%s", c->id,
	    sc_state_name(c->state), sc_state_name(state));
	c->state = state;
}

static void
sc_local_reply(struct smtp_reply *r, enum sc_error err)
{
	memset(r, 0, sizeof(*r));
	r->code = sc_errors[err].code;
	str_copy(r->enhanced, sc_errors[err].enhanced, sizeof(r->enhanced));
	str_copy(r->text, sc_errors[err].text, sizeof(r->text));
	r->local = 1;
}

/* Call the owner.  Returns 0 when the owner freed the client meanwhile. */
static int
sc_emit(struct smtp_client *c, enum smtp_client_event ev,
    const struct smtp_reply *r)
{
	if (c->cb != NULL)
		c->cb(c->arg, ev, r);
	return !c->dead;
}

/* Log a success, which is routine, at debug level and a failure at info. */
static enum log_level
sc_outcome_level(const struct smtp_reply *r)
{
	return r->code >= 400 ? LOG_LVL_INFO : LOG_LVL_DEBUG;
}

static void
sc_log_outcome(struct smtp_client *c, const char *event,
    const struct smtp_reply *r, const char *extra)
{
	log_msg(sc_outcome_level(r),
	    "session=%s domain=%s event=%s reply=\"%d%s%s %.200s\"%s%s",
	    c->id, c->domain, event, r->code, r->enhanced[0] ? " " : "",
	    r->enhanced, r->text, r->local ? " local=1" : "",
	    extra ? extra : "");
}

/*
 * Lifetime.
 */

static void
sc_stop_watchers(struct smtp_client *c)
{
	ev_io_stop(c->loop, &c->read_w);
	ev_io_stop(c->loop, &c->write_w);
	ev_timer_stop(c->loop, &c->timer);
	ev_prepare_stop(c->loop, &c->flush_w);
}

/* Close the connection, if any, and forget everything tied to it. */
static void
sc_close_conn(struct smtp_client *c)
{
	sc_stop_watchers(c);
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	c->tls_desc[0] = '\0';
	c->tls_verified = 0;
	c->tls_reason = NULL;
	c->write_wants_read = c->read_wants_write = 0;
	c->conn_gen++;
	buf_reset(&c->in);
	buf_reset(&c->out);
	smtp_reply_begin(&c->parser);
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	c->ehlo_name[0] = '\0';
}

static void
sc_free_cmds(struct smtp_client *c)
{
	size_t i;

	for (i = 0; i < c->ncmds; i++) {
		free(c->cmds[i].line);
		free(c->cmds[i].rcpt);
	}
	free(c->cmds);
	c->cmds = NULL;
	c->ncmds = c->cmds_size = c->cmd_head = c->cmd_sent = 0;
}

static void
sc_free(struct smtp_client *c)
{
	if (c->parked)
		sc_unpark(c);
	sc_close_conn(c);
	if (c->mx != NULL)
		mx_cancel(c->mx);
	sc_free_cmds(c);
	buf_free(&c->in);
	buf_free(&c->out);
	SSL_CTX_free(c->cfg.tls_ctx);
	free(c->targets);
	free(c->last_5xx);
	free(c->last_4xx);
	free(c->last_local);
	free(c->hostname);
	free(c->mail_from);
	free(c);
}

/*
 * Stop all activity and free the client, or, inside one of its callbacks,
 * mark it dead for the outermost callback to free.
 */
static void
sc_release(struct smtp_client *c, const char *reason)
{
	log_debug("session=%s closed state=%s reason=%s", c->id,
	    sc_state_name(c->state), reason);
	c->cb = NULL;
	sc_close_conn(c);
	if (c->mx != NULL) {
		mx_cancel(c->mx);
		c->mx = NULL;
	}
	if (c->busy > 0)
		c->dead = 1;
	else
		sc_free(c);
}

static void
sc_cb_enter(struct smtp_client *c)
{
	c->busy++;
}

static void
sc_cb_leave(struct smtp_client *c)
{
	if (--c->busy == 0 && c->dead)
		sc_free(c);
}

/*
 * Timers.
 */

static void
sc_timer_arm(struct smtp_client *c, double seconds)
{
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, seconds, 0.);
	ev_timer_start(c->loop, &c->timer);
}

/*
 * Whether output is on its way out: a write is scheduled, or waits for
 * the socket.  Message bytes gathered for a later write do not count.
 */
static int
sc_output_pending(const struct smtp_client *c)
{
	return buf_avail(&c->out) > 0 && (ev_is_active(&c->flush_w) ||
	    ev_is_active(&c->write_w) || c->write_wants_read);
}

/*
 * Set the timer for the transaction states.  It runs while a reply is due
 * or output is on its way out, and restarts on every reply and every
 * write that made progress.
 */
static void
sc_timer_update(struct smtp_client *c)
{
	double quit_wait;

	switch (c->state) {
	case SC_STATE_RCPT:
	case SC_STATE_BODY:
		if (c->cmd_head < c->cmd_sent || sc_output_pending(c))
			sc_timer_arm(c, c->cfg.command_timeout);
		else
			ev_timer_stop(c->loop, &c->timer);
		break;
	case SC_STATE_DOT:
		sc_timer_arm(c, c->cfg.data_end_timeout);
		break;
	case SC_STATE_QUIT:
		quit_wait = c->cfg.command_timeout;
		if (quit_wait > SC_QUIT_TIMEOUT_MAX)
			quit_wait = SC_QUIT_TIMEOUT_MAX;
		sc_timer_arm(c, quit_wait);
		break;
	case SC_STATE_DONE:
		ev_timer_stop(c->loop, &c->timer);
		break;
	case SC_STATE_MX:
	case SC_STATE_CONNECT:
	case SC_STATE_GREETING:
	case SC_STATE_EHLO:
	case SC_STATE_HELO:
	case SC_STATE_STARTTLS:
	case SC_STATE_TLS:
	case SC_STATE_MAIL:
	case SC_STATE_CLOSED:
		/* These states arm their timer on entry. */
		break;
	default:
		fatal_invariant("unknown smtp_client state");
	}
}

/*
 * Output.
 */

/* Schedule a write of the output buffer before the loop sleeps. */
static void
sc_flush_soon(struct smtp_client *c)
{
	if (!ev_is_active(&c->flush_w) && !ev_is_active(&c->write_w))
		ev_prepare_start(c->loop, &c->flush_w);
}

/* Append a command line (CRLF added) and schedule the write. */
static void
sc_send_line(struct smtp_client *c, const char *fmt, ...)
{
	char line[SMTP_REPLY_LINE_MAX + SMTP_CLIENT_ADDR_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		fatal_invariant("SMTP command line too long");
	memcpy(line + n, "\r\n", 2);
	if (buf_append(&c->out, line, (size_t)n + 2) == -1)
		fatal_invariant("output buffer full at a command");
	sc_flush_soon(c);
}

/* Report DRAIN once the buffer has fallen below half the high-water mark. */
static int
sc_check_drain(struct smtp_client *c)
{
	if (!c->above_high_water ||
	    buf_avail(&c->out) >= c->cfg.out_high_water / 2)
		return 1;
	c->above_high_water = 0;
	return sc_emit(c, SMTP_CLIENT_DRAIN, NULL);
}

/*
 * The transport: the socket in plaintext, OpenSSL once TLS is up.  Both
 * directions report with enum tls_io, and TLS_IO_ERROR comes with a
 * description in err.
 */

/* Write from the output buffer; *n is the byte count on TLS_IO_OK. */
static enum tls_io
sc_transport_write(struct smtp_client *c, size_t *n, char *err,
    size_t errsz)
{
	enum tls_io io;
	ssize_t sent;

	*n = 0;
	if (c->ssl != NULL) {
		io = tls_write(c->ssl, buf_head(&c->out), buf_avail(&c->out), n);
		if (io == TLS_IO_ERROR)
			tls_last_error(err, errsz);
		return io;
	}
	do
		sent = send(c->fd, buf_head(&c->out), buf_avail(&c->out),
		    MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent > 0) {
		*n = (size_t)sent;
		return TLS_IO_OK;
	}
	if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return TLS_IO_WANT_WRITE;
	snprintf(err, errsz, "%s", sent < 0 ? strerror(errno) : "write");
	return TLS_IO_ERROR;
}

/* Read into p; *n is the byte count on TLS_IO_OK. */
static enum tls_io
sc_transport_read(struct smtp_client *c, char *p, size_t room, size_t *n,
    char *err, size_t errsz)
{
	enum tls_io io;
	ssize_t got;

	*n = 0;
	if (c->ssl != NULL) {
		io = tls_read(c->ssl, p, room, n);
		if (io == TLS_IO_ERROR)
			tls_last_error(err, errsz);
		return io;
	}
	got = recv(c->fd, p, room, 0);
	if (got > 0) {
		*n = (size_t)got;
		return TLS_IO_OK;
	}
	if (got == 0)
		return TLS_IO_CLOSED;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return TLS_IO_WANT_READ;
	snprintf(err, errsz, "%s", strerror(errno));
	return TLS_IO_ERROR;
}

/*
 * Write as much of the output buffer as the transport takes.  The write
 * watcher runs while the transport waits for room, or while a TLS read
 * waits for it.  A TLS write that waits for input resumes from the read
 * watcher.
 *
 * NOTE: no unit test reaches a TLS write that waits for input or a TLS
 * read that waits for room, because the mock server cannot make OpenSSL
 * return those on demand.
 */
static void
sc_flush(struct smtp_client *c)
{
	enum tls_io io = TLS_IO_OK;
	char err[256];
	size_t n;
	int progress = 0;

again:
	c->write_wants_read = 0;
	while (buf_avail(&c->out) > 0) {
		io = sc_transport_write(c, &n, err, sizeof(err));
		if (io != TLS_IO_OK)
			break;
		buf_consume(&c->out, n);
		progress = 1;
	}
	if (io == TLS_IO_ERROR || io == TLS_IO_CLOSED) {
		sc_trouble(c, SC_ERR_LOST,
		    io == TLS_IO_CLOSED ? "closed by peer" : err);
		return;
	}
	if (c->state == SC_STATE_QUIT && buf_avail(&c->out) == 0) {
		/*
		 * The transaction is over, so the reply to QUIT changes
		 * nothing.  Close without waiting for it, as Postfix 3.7
		 * does by default (smtp_skip_quit_response = yes), which
		 * saves a wakeup and a read per message.
		 */
		if (c->ssl != NULL)
			tls_shutdown(c->ssl);
		sc_release(c, "quit");
		return;
	}
	c->write_wants_read = io == TLS_IO_WANT_READ;
	if (io == TLS_IO_WANT_WRITE || c->read_wants_write)
		ev_io_start(c->loop, &c->write_w);
	else
		ev_io_stop(c->loop, &c->write_w);
	if (progress) {
		sc_timer_update(c);
		if (!sc_check_drain(c) || c->fd == -1)
			return;
		/*
		 * The DRAIN callback may have written more.  A prepare watcher
		 * started from inside its own callback would run only after
		 * the loop has blocked, so write it now.
		 */
		if (buf_avail(&c->out) > 0 && !ev_is_active(&c->write_w)) {
			ev_prepare_stop(c->loop, &c->flush_w);
			progress = 0;
			goto again;
		}
	}
}

/*
 * Connecting.
 */

static socklen_t
sc_target_sockaddr(const struct smtp_client *c, const struct mx_target *t,
    struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (t->family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)c->cfg.port);
		memcpy(&sin6->sin6_addr, t->addr, 16);
		return sizeof(*sin6);
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)c->cfg.port);
	memcpy(&sin->sin_addr, t->addr, 4);
	return sizeof(*sin);
}

/*
 * Start a non-blocking connect to t.  Returns 0 when it completed or is in
 * progress, with *in_progress set in the second case, or -1 with errno on
 * failure.
 */
static int
sc_start_connect(struct smtp_client *c, const struct mx_target *t,
    int *in_progress)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sc_target_sockaddr(c, t, &ss);
	int one = 1, saved;

	c->fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	*in_progress = 0;
	if (connect(c->fd, (struct sockaddr *)&ss, sslen) == 0)
		return 0;
	if (errno == EINPROGRESS) {
		*in_progress = 1;
		return 0;
	}
fail:
	saved = errno;
	close(c->fd);
	c->fd = -1;
	errno = saved;
	return -1;
}

/* Start reading from the freshly connected socket and wait for the 220. */
static void
sc_connected(struct smtp_client *c)
{
	ev_io_stop(c->loop, &c->write_w);
	ev_io_set(&c->read_w, c->fd, EV_READ);
	ev_io_set(&c->write_w, c->fd, EV_WRITE);
	ev_io_start(c->loop, &c->read_w);
	c->peer_name[0] = '\0';
	sc_enter(c, SC_STATE_GREETING);
}

/* Choose the FAILED reply once every address has been tried. */
static void
sc_exhausted_reply(const struct smtp_client *c, struct smtp_reply *r)
{
	if (c->all_5xx && c->last_5xx != NULL)
		*r = *c->last_5xx;
	else if (c->last_4xx != NULL)
		*r = *c->last_4xx;
	else if (c->last_local != NULL)
		*r = *c->last_local;
	else
		sc_local_reply(r, SC_ERR_NO_ANSWER);
}

/* Format " reason=... detail=..." for an outcome line. */
static const char *
sc_reason_text(char *out, size_t outsz, const char *reason,
    const char *detail)
{
	if (detail != NULL)
		snprintf(out, outsz, " reason=%s detail=\"%s\"", reason, detail);
	else
		snprintf(out, outsz, " reason=%s", reason);
	return out;
}

/*
 * Let the client go after FAILED or LOST, as the interface promises: the
 * owner may already have called quit() or abort() from the callback.  A
 * connection that is still up gets a QUIT first.
 */
static void
sc_release_after_failure(struct smtp_client *c, const char *reason)
{
	if (c->dead)
		return;
	c->cb = NULL;
	if (c->state == SC_STATE_DONE)
		sc_enter(c, SC_STATE_QUIT);
	else if (c->state == SC_STATE_CLOSED)
		sc_release(c, reason);
}

/* Report FAILED with the connection closed; detail goes to the log. */
static void
sc_fail_closed(struct smtp_client *c, const struct smtp_reply *r,
    const char *reason, const char *detail)
{
	char extra[160];

	sc_close_conn(c);
	sc_set_state(c, SC_STATE_CLOSED);
	sc_log_outcome(c, "failed", r,
	    sc_reason_text(extra, sizeof(extra), reason, detail));
	sc_emit(c, SMTP_CLIENT_FAILED, r);
	sc_release_after_failure(c, reason);
}

/* Report FAILED while the connection is still up, to be closed by QUIT. */
static void
sc_fail_connected(struct smtp_client *c, const struct smtp_reply *r,
    const char *reason)
{
	char extra[160];

	sc_set_state(c, SC_STATE_DONE);
	ev_timer_stop(c->loop, &c->timer);
	sc_log_outcome(c, "failed", r,
	    sc_reason_text(extra, sizeof(extra), reason, NULL));
	sc_emit(c, SMTP_CLIENT_FAILED, r);
	sc_release_after_failure(c, reason);
}

/* Log why the current host failed; detail may be NULL. */
static void
sc_log_host_failed(const struct smtp_client *c, const struct smtp_reply *r,
    const char *detail)
{
	log_info("session=%s host failed mx=%s addr=%s state=%s "
	    "reply=\"%d%s%s %.200s\"%s%s%s", c->id, c->target->host,
	    c->addr_text, sc_state_name(c->state), r->code,
	    r->enhanced[0] ? " " : "", r->enhanced, r->text,
	    detail ? " detail=\"" : "", detail ? detail : "",
	    detail ? "\"" : "");
}

/* Keep a copy of r in *slot, allocating it the first time. */
static void
sc_keep_reply(struct smtp_reply **slot, const struct smtp_reply *r)
{
	if (*slot == NULL)
		*slot = xmalloc(sizeof(**slot));
	**slot = *r;
}

/* Record the failure of the current host for the final FAILED reply. */
static void
sc_record_host_failure(struct smtp_client *c, const struct smtp_reply *r)
{
	if (!r->local && r->code / 100 == 5) {
		sc_keep_reply(&c->last_5xx, r);
		return;
	}
	c->all_5xx = 0;
	if (!r->local && r->code / 100 == 4)
		sc_keep_reply(&c->last_4xx, r);
	else if (r->local)
		sc_keep_reply(&c->last_local, r);
}

/* Connect to the next address that accepts a connect, or report FAILED. */
static void
sc_connect_next(struct smtp_client *c)
{
	struct smtp_reply r;
	int in_progress;

	while (c->next_target < c->ntargets) {
		if (c->state != SC_STATE_CONNECT)
			sc_set_state(c, SC_STATE_CONNECT);
		c->target = &c->targets[c->next_target++];
		str_inet_ntop(c->target->family, c->target->addr, c->addr_text,
		    sizeof(c->addr_text));
		log_debug("session=%s domain=%s connecting mx=%s addr=%s port=%d",
		    c->id, c->domain, c->target->host, c->addr_text,
		    c->cfg.port);
		if (sc_start_connect(c, c->target, &in_progress) == -1) {
			sc_local_reply(&r, SC_ERR_NO_ANSWER);
			sc_log_host_failed(c, &r, strerror(errno));
			sc_record_host_failure(c, &r);
			continue;
		}
		if (!in_progress) {
			sc_connected(c);
			return;
		}
		ev_io_set(&c->write_w, c->fd, EV_WRITE);
		ev_io_start(c->loop, &c->write_w);
		sc_timer_arm(c, c->cfg.connect_timeout);
		return;
	}
	sc_exhausted_reply(c, &r);
	sc_fail_closed(c, &r, "all-hosts-failed", NULL);
}

/*
 * Give up on the current host, remember why, and try the next address.
 * r is the host's reply, or a local one; detail goes to the log.
 */
static void
sc_try_next(struct smtp_client *c, const struct smtp_reply *r,
    const char *detail)
{
	sc_log_host_failed(c, r, detail);
	sc_record_host_failure(c, r);
	sc_close_conn(c);
	c->reused = c->reuse_mail = 0;	/* the next connection is new */
	sc_connect_next(c);
}

/* Finish a connect that was in progress. */
static void
sc_connect_done(struct smtp_client *c)
{
	struct smtp_reply r;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		sc_local_reply(&r, SC_ERR_NO_ANSWER);
		sc_try_next(c, &r, strerror(err));
		return;
	}
	ev_timer_stop(c->loop, &c->timer);
	sc_connected(c);
}

/*
 * Handle a failure of the connection by state.  Before MAIL the next
 * address is tried, at MAIL the session fails, and in the transaction it
 * is lost.  detail goes to the log only.
 */
static void
sc_trouble(struct smtp_client *c, enum sc_error err, const char *detail)
{
	struct smtp_reply r;
	char extra[160];

	switch (c->state) {
	case SC_STATE_CONNECT:
	case SC_STATE_GREETING:
	case SC_STATE_EHLO:
	case SC_STATE_HELO:
	case SC_STATE_STARTTLS:
		sc_local_reply(&r, err == SC_ERR_TIMEOUT ? SC_ERR_NO_ANSWER : err);
		sc_try_next(c, &r, detail);
		break;
	case SC_STATE_TLS:
		/* Whatever went wrong, the detail says; the owner hears TLS. */
		sc_local_reply(&r, SC_ERR_TLS);
		sc_try_next(c, &r, detail);
		break;
	case SC_STATE_MAIL:
		sc_local_reply(&r, err);
		if (c->reused) {
			/*
			 * The idle connection was closed under MAIL: start
			 * over on a new one, commands and all.
			 */
			c->reused = c->reuse_mail = 0;
			c->cmd_sent = c->cmd_head;
			sc_try_next(c, &r, detail);
			break;
		}
		sc_fail_closed(c, &r, sc_errors[err].reason, detail);
		break;
	case SC_STATE_RCPT:
	case SC_STATE_BODY:
	case SC_STATE_DOT:
		sc_local_reply(&r, err);
		sc_close_conn(c);
		sc_set_state(c, SC_STATE_CLOSED);
		sc_log_outcome(c, "lost", &r, sc_reason_text(extra,
		    sizeof(extra), sc_errors[err].reason, detail));
		sc_emit(c, SMTP_CLIENT_LOST, &r);
		sc_release_after_failure(c, sc_errors[err].reason);
		break;
	case SC_STATE_DONE:
		/* The owner has had its END or DATA reply: no event is due. */
		log_debug("session=%s closed after the transaction reason=%s",
		    c->id, sc_errors[err].reason);
		sc_close_conn(c);
		sc_set_state(c, SC_STATE_CLOSED);
		break;
	case SC_STATE_QUIT:
		sc_release(c, sc_errors[err].reason);
		break;
	case SC_STATE_MX:
	case SC_STATE_CLOSED:
	default:
		fatal_invariant("connection trouble without a connection");
	}
}

/*
 * MX resolution.
 */

static void
sc_on_mx(void *arg, const struct mx_result *res)
{
	struct smtp_client *c = arg;
	struct smtp_reply r;
	enum sc_error err;

	sc_cb_enter(c);
	c->mx = NULL;
	switch (res->status) {
	case MX_OK:
		if (res->ntargets == 0 || res->ntargets > MX_TARGETS_MAX)
			fatal_invariant("MX result with no target or too many");
		c->targets = xcalloc(res->ntargets, sizeof(c->targets[0]));
		c->ntargets = res->ntargets;
		memcpy(c->targets, res->targets,
		    res->ntargets * sizeof(c->targets[0]));
		sc_connect_next(c);
		goto out;
	case MX_NULL:
		err = SC_ERR_NULL_MX;
		break;
	case MX_NXDOMAIN:
		err = SC_ERR_NXDOMAIN;
		break;
	case MX_TEMPFAIL:
		err = SC_ERR_DNS;
		break;
	case MX_NOADDR:
		err = SC_ERR_NO_ADDRESS;
		break;
	default:
		fatal_invariant("unknown MX status");
	}
	sc_local_reply(&r, err);
	sc_fail_closed(c, &r, sc_errors[err].reason, NULL);
out:
	sc_cb_leave(c);
}

/*
 * Replies, by state.
 */

/* Copy the first word of a reply's first line (after the code). */
static void
sc_first_word(char *out, size_t outsz, const char *line, size_t len)
{
	size_t start = 4, end;

	out[0] = '\0';
	if (len <= start)
		return;
	for (end = start; end < len && line[end] != ' '; end++)
		;
	log_printable(out, outsz, line + start, end - start);
}

/* Whether the peer called itself by our own host name. */
static int
sc_names_us(const struct smtp_client *c, const char *name)
{
	size_t a = strlen(name), b = strlen(c->hostname);

	if (a > 0 && name[a - 1] == '.')
		a--;
	if (b > 0 && c->hostname[b - 1] == '.')
		b--;
	return a > 0 && a == b && strncasecmp(name, c->hostname, a) == 0;
}

static void
sc_reply_greeting(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_reply loop;

	if (r->code / 100 != 2) {
		sc_try_next(c, r, NULL);
		return;
	}
	if (sc_names_us(c, c->peer_name)) {
		sc_local_reply(&loop, SC_ERR_LOOP);
		sc_fail_connected(c, &loop, sc_errors[SC_ERR_LOOP].reason);
		return;
	}
	sc_enter(c, SC_STATE_EHLO);
}

static int
sc_has_utf8(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/*
 * Check the message size against the server's SIZE and the sender's need
 * for SMTPUTF8, then send MAIL.
 */
static void
sc_begin_mail(struct smtp_client *c)
{
	struct smtp_reply r;

	if (c->ehlo.size && c->ehlo.size_max > 0 &&
	    (unsigned long long)c->size > c->ehlo.size_max) {
		sc_local_reply(&r, SC_ERR_SIZE);
		sc_fail_connected(c, &r, sc_errors[SC_ERR_SIZE].reason);
		return;
	}
	/* RFC 6531 section 3.4: a UTF-8 sender cannot go without SMTPUTF8. */
	if (c->want_smtputf8 && !c->ehlo.smtputf8 &&
	    sc_has_utf8(c->mail_from)) {
		sc_local_reply(&r, SC_ERR_SMTPUTF8);
		sc_fail_connected(c, &r, sc_errors[SC_ERR_SMTPUTF8].reason);
		return;
	}
	sc_enter(c, SC_STATE_MAIL);
}

/* Whether this EHLO reply leads to STARTTLS. */
static int
sc_want_starttls(const struct smtp_client *c)
{
	return c->state == SC_STATE_EHLO && c->ehlo.starttls &&
	    c->cfg.tls_ctx != NULL && c->ssl == NULL;
}

/* After a 250 to EHLO or HELO: check for a loop, then STARTTLS or MAIL. */
static void
sc_reply_hello_ok(struct smtp_client *c)
{
	struct smtp_reply r;

	if (sc_names_us(c, c->ehlo_name)) {
		sc_local_reply(&r, SC_ERR_LOOP);
		sc_fail_connected(c, &r, sc_errors[SC_ERR_LOOP].reason);
		return;
	}
	if (sc_want_starttls(c))
		sc_enter(c, SC_STATE_STARTTLS);
	else
		sc_begin_mail(c);
}

static void
sc_reply_ehlo(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code / 100 == 2)
		sc_reply_hello_ok(c);
	else if (r->code / 100 == 5) {
		/* A server without extensions rejects EHLO with 5xx. */
		memset(&c->ehlo, 0, sizeof(c->ehlo));
		sc_enter(c, SC_STATE_HELO);
	} else
		sc_try_next(c, r, NULL);
}

static void
sc_reply_helo(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code / 100 == 2)
		sc_reply_hello_ok(c);
	else
		sc_try_next(c, r, NULL);
}

/*
 * The handshake is done: log what it gave, forget the capabilities from
 * before TLS, as RFC 3207 section 4.2 requires, and send EHLO again.
 */
static void
sc_tls_established(struct smtp_client *c)
{
	const char *reason;

	ev_io_stop(c->loop, &c->write_w);
	tls_describe(c->ssl, c->tls_desc, sizeof(c->tls_desc));
	c->tls_verified = tls_peer_verified(c->ssl, &reason);
	c->tls_reason = reason;
	/*
	 * NOTE: an unverified certificate is only logged, because no policy
	 * (MTA-STS, DANE) requires verification yet.
	 */
	if (c->tls_verified)
		log_info("session=%s domain=%s tls established mx=%s tls=%s "
		    "verified=yes", c->id, c->domain, c->target->host,
		    c->tls_desc);
	else
		log_info("session=%s domain=%s tls established mx=%s tls=%s "
		    "verified=no reason=\"%s\"", c->id, c->domain,
		    c->target->host, c->tls_desc, reason);
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	c->ehlo_name[0] = '\0';
	smtp_reply_begin(&c->parser);
	sc_enter(c, SC_STATE_EHLO);
}

/* Advance the handshake; the watcher callbacks call it again. */
static void
sc_tls_step(struct smtp_client *c)
{
	char err[256];

	switch (tls_handshake(c->ssl)) {
	case TLS_IO_OK:
		sc_tls_established(c);
		break;
	case TLS_IO_WANT_READ:
		/* The read watcher runs throughout the connection. */
		ev_io_stop(c->loop, &c->write_w);
		break;
	case TLS_IO_WANT_WRITE:
		ev_io_start(c->loop, &c->write_w);
		break;
	case TLS_IO_CLOSED:
		sc_trouble(c, SC_ERR_TLS, "closed by peer");
		break;
	default:
		tls_last_error(err, sizeof(err));
		sc_trouble(c, SC_ERR_TLS, err);
	}
}

/*
 * Start the handshake after the 220.  Bytes that came after the 220 were
 * sent before TLS, so anyone on the path could have injected them: they
 * are dropped, never read as replies inside TLS.  Bytes that arrive later
 * reach OpenSSL, which fails the handshake because they are no TLS record.
 */
static void
sc_start_tls(struct smtp_client *c)
{
	char err[256];

	if (buf_avail(&c->out) > 0)
		fatal_invariant("output pending at the TLS handshake");
	if (buf_avail(&c->in) > 0) {
		log_info("session=%s domain=%s starttls discarded mx=%s "
		    "bytes=%zu", c->id, c->domain, c->target->host,
		    buf_avail(&c->in));
		buf_reset(&c->in);
	}
	ev_prepare_stop(c->loop, &c->flush_w);
	sc_enter(c, SC_STATE_TLS);
	c->ssl = tls_client_new(c->cfg.tls_ctx, c->fd, c->target->host, err,
	    sizeof(err));
	if (c->ssl == NULL) {
		sc_trouble(c, SC_ERR_TLS, err);
		return;
	}
	sc_tls_step(c);
}

/* A 220 starts TLS; a 4xx or 5xx leaves the session in plaintext. */
static void
sc_reply_starttls(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code == 220) {
		sc_start_tls(c);
		return;
	}
	if (r->code / 100 != 4 && r->code / 100 != 5) {
		sc_trouble(c, SC_ERR_PROTOCOL, "unexpected reply to STARTTLS");
		return;
	}
	log_info("session=%s domain=%s starttls rejected mx=%s "
	    "reply=\"%d%s%s %.200s\" tls=none", c->id, c->domain,
	    c->target->host, r->code, r->enhanced[0] ? " " : "", r->enhanced,
	    r->text);
	sc_begin_mail(c);
}

static void
sc_reply_mail(struct smtp_client *c, const struct smtp_reply *r)
{
	char extra[120];

	if (r->code / 100 != 2 && c->reuse_mail) {
		/*
		 * A server may limit the messages per connection and reject
		 * MAIL on a reused one with a 4xx or even a 5xx.  Start over
		 * on a new connection, and report the reply given there.
		 */
		c->reuse_mail = 0;
		c->cmd_sent = c->cmd_head;
		sc_try_next(c, r, "MAIL refused on a reused connection");
		return;
	}
	c->reuse_mail = 0;
	if (r->code / 100 != 2) {
		sc_fail_connected(c, r, "mail-rejected");
		return;
	}
	ev_timer_stop(c->loop, &c->timer);
	sc_enter(c, SC_STATE_RCPT);
	snprintf(extra, sizeof(extra), " tls=%s",
	    c->tls_desc[0] ? c->tls_desc : "none");
	sc_log_outcome(c, "ready", r, extra);
	if (!sc_emit(c, SMTP_CLIENT_READY, r))
		return;
	/* Send what was queued before READY; arm the timer for replies due. */
	sc_send_commands(c);
}

/*
 * Send queued commands: all of them with PIPELINING, else one at a time.
 * DATA ends a group (RFC 2920 section 3.1), and nothing follows it before
 * its reply anyway.
 */
static void
sc_send_commands(struct smtp_client *c)
{
	struct sc_cmd *cmd;

	/* Queued before READY: they go out behind MAIL, or after its reply. */
	if (c->state != SC_STATE_RCPT &&
	    (c->state != SC_STATE_MAIL || !c->ehlo.pipelining))
		return;
	while (c->cmd_sent < c->ncmds &&
	    (c->ehlo.pipelining || c->cmd_head == c->cmd_sent)) {
		cmd = &c->cmds[c->cmd_sent++];
		/* The line stays until the end: a reused connection may resend it. */
		if (buf_append(&c->out, cmd->line, strlen(cmd->line)) == -1)
			fatal_invariant("output buffer full at a command");
		if (cmd->kind == SC_CMD_DATA)
			break;
	}
	sc_flush_soon(c);
	sc_timer_update(c);
}

/* A reply to the oldest RCPT or DATA in flight. */
static void
sc_reply_command(struct smtp_client *c, const struct smtp_reply *r)
{
	struct sc_cmd *cmd;
	char extra[LOG_ADDR_MAX + 8], rcpt[LOG_ADDR_MAX];

	if (c->cmd_head == c->cmd_sent) {
		log_info("session=%s unexpected reply=\"%d %.200s\"", c->id,
		    r->code, r->text);
		sc_trouble(c, SC_ERR_PROTOCOL, "reply without a command");
		return;
	}
	cmd = &c->cmds[c->cmd_head++];
	if (cmd->kind == SC_CMD_RCPT) {
		/* The keyed hash of the address costs more than the line. */
		if (log_enabled(sc_outcome_level(r))) {
			snprintf(extra, sizeof(extra), " rcpt=%s",
			    log_addr(rcpt, cmd->rcpt));
			sc_log_outcome(c, "rcpt", r, extra);
		}
		if (!sc_emit(c, SMTP_CLIENT_RCPT, r))
			return;
		sc_send_commands(c);
		return;
	}
	sc_enter(c, r->code == 354 ? SC_STATE_BODY : SC_STATE_DONE);
	sc_timer_update(c);
	sc_log_outcome(c, "data", r, NULL);
	sc_emit(c, SMTP_CLIENT_DATA, r);
}

static void
sc_reply_dot(struct smtp_client *c, const struct smtp_reply *r)
{
	c->end_ok = r->code / 100 == 2;
	sc_enter(c, SC_STATE_DONE);
	sc_log_outcome(c, "end", r, NULL);
	sc_emit(c, SMTP_CLIENT_END, r);
}

/* Dispatch a complete reply to the handler of the current state. */
static void
sc_on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	c->reused = 0;
	switch (c->state) {
	case SC_STATE_GREETING:
		sc_reply_greeting(c, r);
		break;
	case SC_STATE_EHLO:
		sc_reply_ehlo(c, r);
		break;
	case SC_STATE_HELO:
		sc_reply_helo(c, r);
		break;
	case SC_STATE_STARTTLS:
		sc_reply_starttls(c, r);
		break;
	case SC_STATE_MAIL:
		sc_reply_mail(c, r);
		break;
	case SC_STATE_RCPT:
	case SC_STATE_BODY:
		sc_reply_command(c, r);
		break;
	case SC_STATE_DOT:
		sc_reply_dot(c, r);
		break;
	case SC_STATE_DONE:
		sc_trouble(c, SC_ERR_PROTOCOL, "reply after the transaction");
		break;
	case SC_STATE_QUIT:
		if (c->ssl != NULL)
			tls_shutdown(c->ssl);
		sc_release(c, "quit");
		break;
	case SC_STATE_TLS:
		fatal_invariant("reply read during the TLS handshake");
		break;
	case SC_STATE_MX:
	case SC_STATE_CONNECT:
	case SC_STATE_CLOSED:
	default:
		fatal_invariant("reply in a state without a connection");
	}
}

/*
 * Input.
 */

/* Feed one line (without CRLF) to the reply parser. */
static void
sc_on_line(struct smtp_client *c, const char *line, size_t len)
{
	struct smtp_reply r;
	enum smtp_reply_status st;
	size_t line_no = c->parser.lines;

	st = smtp_reply_line(&c->parser, line, len);
	if (st == SMTP_REPLY_MALFORMED || st == SMTP_REPLY_TOO_LARGE) {
		sc_trouble(c, SC_ERR_PROTOCOL, st == SMTP_REPLY_MALFORMED ?
		    "malformed reply line" : "reply too long");
		return;
	}
	if (line_no == 0 && c->state == SC_STATE_GREETING)
		sc_first_word(c->peer_name, sizeof(c->peer_name), line, len);
	else if (line_no == 0 && (c->state == SC_STATE_EHLO ||
	    c->state == SC_STATE_HELO))
		sc_first_word(c->ehlo_name, sizeof(c->ehlo_name), line, len);
	else if (c->state == SC_STATE_EHLO && len > 4)
		smtp_ehlo_keyword(&c->ehlo, line + 4, len - 4);
	if (st == SMTP_REPLY_DONE) {
		r = c->parser.reply;
		smtp_reply_begin(&c->parser);
		sc_on_reply(c, &r);
	}
}

/*
 * Split the input into lines and handle each, stopping when the handling
 * closed the connection or freed the client.  A line may be at most
 * SMTP_REPLY_LINE_MAX bytes with its line end, and the limit applies
 * before the line end arrives.  Each line leaves the buffer before it is
 * handled, so a handler may drop what follows it (after STARTTLS).
 */
static void
sc_process_input(struct smtp_client *c)
{
	char line[SMTP_REPLY_LINE_MAX];
	const char *head, *nl;
	size_t scan, len;
	unsigned gen = c->conn_gen;

	while (buf_avail(&c->in) > 0) {
		head = buf_head(&c->in);
		scan = buf_avail(&c->in);
		if (scan > SMTP_REPLY_LINE_MAX)
			scan = SMTP_REPLY_LINE_MAX;
		nl = memchr(head, '\n', scan);
		if (nl == NULL) {
			if (buf_avail(&c->in) >= SMTP_REPLY_LINE_MAX)
				sc_trouble(c, SC_ERR_PROTOCOL, "reply line too long");
			return;
		}
		len = (size_t)(nl - head);
		memcpy(line, head, len);
		buf_consume(&c->in, len + 1);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		sc_on_line(c, line, len);
		if (c->dead || c->conn_gen != gen)
			return;
	}
}

/*
 * Read what the transport has and handle the complete lines.  TLS may
 * hold decrypted bytes that did not fit, and the socket will not signal
 * them again, so they are read in the same call.
 */
static void
sc_read(struct smtp_client *c)
{
	unsigned gen = c->conn_gen;
	enum tls_io io;
	char err[256], *p;
	size_t room, n;

	c->read_wants_write = 0;
	do {
		room = buf_room(&c->in);
		p = buf_reserve(&c->in, room);
		if (p == NULL || room == 0)
			fatal_invariant("reply buffer full");
		io = sc_transport_read(c, p, room, &n, err, sizeof(err));
		switch (io) {
		case TLS_IO_OK:
			break;
		case TLS_IO_WANT_READ:
			return;
		case TLS_IO_WANT_WRITE:
			c->read_wants_write = 1;
			ev_io_start(c->loop, &c->write_w);
			return;
		case TLS_IO_CLOSED:
			sc_trouble(c, SC_ERR_LOST, "closed by peer");
			return;
		default:
			sc_trouble(c, SC_ERR_LOST, err);
			return;
		}
		buf_commit(&c->in, n);
		sc_process_input(c);
		if (c->dead || c->conn_gen != gen)
			return;
	} while (c->ssl != NULL && c->state != SC_STATE_TLS &&
	    SSL_pending(c->ssl) > 0);
}

/*
 * Watcher callbacks.
 */

static void
sc_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct smtp_client *c = w->data;
	unsigned gen = c->conn_gen;

	if (c->parked) {
		/* A 421 or the end of the connection: it cannot be reused. */
		sc_unpark(c);
		sc_release(c, "idle connection closed by the server");
		return;
	}
	sc_cb_enter(c);
	if (c->state == SC_STATE_TLS) {
		sc_tls_step(c);
	} else {
		if (c->write_wants_read)
			sc_flush(c);
		if (!c->dead && c->conn_gen == gen)
			sc_read(c);
	}
	sc_cb_leave(c);
}

static void
sc_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct smtp_client *c = w->data;
	unsigned gen = c->conn_gen;

	sc_cb_enter(c);
	if (c->state == SC_STATE_CONNECT) {
		sc_connect_done(c);
	} else if (c->state == SC_STATE_TLS) {
		sc_tls_step(c);
	} else {
		if (c->read_wants_write)
			sc_read(c);
		if (!c->dead && c->conn_gen == gen)
			sc_flush(c);
	}
	sc_cb_leave(c);
}

static void
sc_on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct smtp_client *c = w->data;

	sc_cb_enter(c);
	ev_prepare_stop(loop, w);
	if (c->reuse_start) {
		/* From the loop: MAIL's checks may report a failure. */
		c->reuse_start = 0;
		sc_begin_mail(c);
		/* A stalled reused connection is given up on sooner. */
		if (!c->dead && c->state == SC_STATE_MAIL &&
		    c->cfg.command_timeout > SC_REUSE_MAIL_TIMEOUT)
			sc_timer_arm(c, SC_REUSE_MAIL_TIMEOUT);
	}
	if (!c->dead && c->fd != -1)
		sc_flush(c);
	sc_cb_leave(c);
}

static void
sc_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_client *c = w->data;
	struct smtp_reply r;

	sc_cb_enter(c);
	if (c->parked) {
		/* Idle for reuse_idle seconds: send QUIT. */
		sc_unpark(c);
		sc_enter(c, SC_STATE_QUIT);
	} else if (c->state == SC_STATE_MX) {
		/* A failure found inside smtp_client_new(), reported now. */
		sc_local_reply(&r, c->mx_error);
		sc_fail_closed(c, &r, sc_errors[c->mx_error].reason, NULL);
	} else {
		sc_trouble(c, SC_ERR_TIMEOUT, "timed out");
	}
	sc_cb_leave(c);
}

/*
 * Entering a state sends its command.
 */

static void
sc_send_mail(struct smtp_client *c)
{
	char params[64] = "";
	size_t off = 0;

	if (c->size > 0 && c->ehlo.size)
		off += (size_t)snprintf(params, sizeof(params), " SIZE=%zu",
		    c->size);
	/*
	 * NOTE: 8-bit data goes to a server without 8BITMIME too, as most
	 * relays do, rather than being refused or converted.
	 */
	if (c->body_8bit && c->ehlo.eightbitmime)
		off += (size_t)snprintf(params + off, sizeof(params) - off,
		    " BODY=8BITMIME");
	/* RFC 6531 section 3.4: only to a server that offers it. */
	c->sent_smtputf8 = c->want_smtputf8 && c->ehlo.smtputf8;
	if (c->sent_smtputf8 && off < sizeof(params))
		snprintf(params + off, sizeof(params) - off, " SMTPUTF8");
	sc_send_line(c, "MAIL FROM:<%s>%s", c->mail_from, params);
}

static void
sc_send_dot(struct smtp_client *c)
{
	static const char crlf_dot[] = "\r\n.\r\n";
	int at_line_start = memcmp(c->body_tail, "\r\n", 2) == 0;
	const char *dot = at_line_start ? crlf_dot + 2 : crlf_dot;

	if (buf_append(&c->out, dot, strlen(dot)) == -1)
		fatal_invariant("output buffer full at the final dot");
	sc_flush_soon(c);
}

static void
sc_enter(struct smtp_client *c, enum sc_state state)
{
	sc_set_state(c, state);
	switch (state) {
	case SC_STATE_GREETING:
		sc_timer_arm(c, c->cfg.command_timeout);
		break;
	case SC_STATE_EHLO:
		sc_send_line(c, "EHLO %s", c->hostname);
		sc_timer_arm(c, c->cfg.command_timeout);
		break;
	case SC_STATE_HELO:
		sc_send_line(c, "HELO %s", c->hostname);
		sc_timer_arm(c, c->cfg.command_timeout);
		break;
	case SC_STATE_STARTTLS:
		sc_send_line(c, "STARTTLS");
		sc_timer_arm(c, c->cfg.command_timeout);
		break;
	case SC_STATE_TLS:
		/* The handshake gets the time of one command. */
		sc_timer_arm(c, c->cfg.command_timeout);
		break;
	case SC_STATE_MAIL:
		sc_send_mail(c);
		sc_timer_arm(c, c->cfg.command_timeout);
		/* RFC 2920 section 3.1: RCPT may follow MAIL in one group. */
		sc_send_commands(c);
		break;
	case SC_STATE_DOT:
		sc_send_dot(c);
		sc_timer_update(c);
		break;
	case SC_STATE_QUIT:
		sc_send_line(c, "QUIT");
		sc_timer_update(c);
		break;
	case SC_STATE_MX:
	case SC_STATE_CONNECT:
	case SC_STATE_RCPT:
	case SC_STATE_BODY:
	case SC_STATE_DONE:
	case SC_STATE_CLOSED:
		break;
	default:
		fatal_invariant("unknown smtp_client state");
	}
}

/*
 * The interface.
 */

/*
 * Abort unless addr is safe to put on a command line.  '<' and '>' may
 * appear inside a quoted local part (RFC 5321 section 4.1.2), so only
 * control characters and the length are checked: the caller passes
 * addresses its own parser formatted.
 */
static void
sc_check_address(const char *addr)
{
	size_t i, len = strlen(addr);

	if (len > SMTP_CLIENT_ADDR_MAX)
		fatal_invariant("address too long for the SMTP client");
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)addr[i];

		if (ch < 0x20 || ch == 0x7f)
			fatal_invariant("invalid byte in an address");
	}
}

static void
sc_config_defaults(struct smtp_client_config *cfg)
{
	if (cfg->hostname == NULL || cfg->hostname[0] == '\0')
		fatal_invariant("smtp_client_config.hostname is required");
	if (cfg->port <= 0 || cfg->port > 65535)
		cfg->port = SC_DEFAULT_PORT;
	if (cfg->connect_timeout <= 0)
		cfg->connect_timeout = SC_DEFAULT_CONNECT_TIMEOUT;
	if (cfg->command_timeout <= 0)
		cfg->command_timeout = SC_DEFAULT_COMMAND_TIMEOUT;
	if (cfg->data_end_timeout <= 0)
		cfg->data_end_timeout = SC_DEFAULT_DATA_END_TIMEOUT;
	if (cfg->out_high_water == 0)
		cfg->out_high_water = SC_DEFAULT_HIGH_WATER;
}

static void
sc_init_watchers(struct smtp_client *c)
{
	ev_io_init(&c->read_w, sc_on_read, -1, EV_READ);
	ev_io_init(&c->write_w, sc_on_write, -1, EV_WRITE);
	ev_timer_init(&c->timer, sc_on_timer, 0., 0.);
	ev_prepare_init(&c->flush_w, sc_on_flush);
	c->read_w.data = c->write_w.data = c->timer.data = c->flush_w.data = c;
}

/*
 * Connection reuse.  After a delivered message the owner's quit() parks
 * the client, connection and all, instead of sending QUIT.  The next
 * smtp_client_new() for the same domain takes it and starts with MAIL,
 * which saves the TCP handshake, the greeting and EHLO.  A parked client
 * closes when the server sends anything (a 421 or the end of the
 * connection) and sends QUIT after cfg.reuse_idle seconds.  If the server
 * closes it just as it is reused, before a reply to MAIL, the client
 * starts over on a new connection, from the first MX host.
 */
static void
sc_unpark(struct smtp_client *c)
{
	if (c->idle_prev != NULL)
		c->idle_prev->idle_next = c->idle_next;
	else
		sc_idle = c->idle_next;
	if (c->idle_next != NULL)
		c->idle_next->idle_prev = c->idle_prev;
	c->idle_prev = c->idle_next = NULL;
	c->parked = 0;
	sc_nidle--;
}

/* Park c if its connection can carry another transaction; 1 if parked. */
static int
sc_park(struct smtp_client *c)
{
	if (c->cfg.reuse_idle <= 0 || !c->end_ok || c->fd == -1 ||
	    buf_avail(&c->in) > 0 || buf_avail(&c->out) > 0 ||
	    sc_nidle >= SC_IDLE_MAX)
		return 0;
	c->cb = NULL;
	c->arg = NULL;
	sc_free_cmds(c);
	c->data_queued = 0;
	c->above_high_water = 0;
	c->end_ok = 0;
	c->parked = 1;
	c->idle_prev = NULL;
	c->idle_next = sc_idle;
	if (sc_idle != NULL)
		sc_idle->idle_prev = c;
	sc_idle = c;
	sc_nidle++;
	ev_io_start(c->loop, &c->read_w);
	sc_timer_arm(c, c->cfg.reuse_idle);
	log_debug("session=%s parked mx=%s", c->id, c->target->host);
	return 1;
}

/*
 * Take a parked client for domain whose connection suits a message of
 * size bytes, or return NULL.
 */
static struct smtp_client *
sc_take(const char *domain, const struct smtp_client_config *cfg,
    size_t size)
{
	struct smtp_client *c;

	for (c = sc_idle; c != NULL; c = c->idle_next) {
		if (c->cfg.port != cfg->port || c->cfg.tls_ctx != cfg->tls_ctx ||
		    strcasecmp(c->domain, domain) != 0 ||
		    strcmp(c->hostname, cfg->hostname) != 0)
			continue;
		if (c->ehlo.size && c->ehlo.size_max > 0 &&
		    (unsigned long long)size > c->ehlo.size_max)
			continue;
		sc_unpark(c);
		ev_timer_stop(c->loop, &c->timer);
		return c;
	}
	return NULL;
}

/* Start a new transaction on a parked connection. */
static void
sc_reuse(struct smtp_client *c, const char *mail_from, size_t size,
    int body_8bit, smtp_client_cb *cb, void *arg)
{
	unsigned char rnd[5];
	char old_id[sizeof(c->id)];

	memcpy(old_id, c->id, sizeof(old_id));
	random_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->id, sizeof(c->id), rnd, sizeof(rnd));
	free(c->mail_from);
	c->mail_from = xstrdup(mail_from);
	c->size = size;
	c->body_8bit = body_8bit;
	c->want_smtputf8 = c->sent_smtputf8 = 0;
	c->cb = cb;
	c->arg = arg;
	c->all_5xx = 1;
	free(c->last_5xx);
	free(c->last_4xx);
	free(c->last_local);
	c->last_5xx = c->last_4xx = c->last_local = NULL;
	memcpy(c->body_tail, "\r\n", 2);
	/* A connection lost before MAIL's reply starts over at the first host. */
	c->next_target = 0;
	c->reused = 1;
	c->reuse_mail = 1;
	c->reuse_start = 1;
	/* A state before MAIL: RCPTs queue, and trouble tries the next host. */
	sc_set_state(c, SC_STATE_EHLO);
	sc_timer_arm(c, c->cfg.command_timeout);
	ev_prepare_start(c->loop, &c->flush_w);
	log_debug("session=%s domain=%s reuses the connection of session=%s "
	    "mx=%s", c->id, c->domain, old_id, c->target->host);
}

struct smtp_client *
smtp_client_new(struct ev_loop *loop, struct dns_ctx *dns,
    const struct smtp_client_config *cfg, const char *domain,
    const char *mail_from, size_t size, int body_8bit, smtp_client_cb *cb,
    void *arg)
{
	struct smtp_client *c;
	unsigned char rnd[5];
	char log_from[LOG_ADDR_MAX];

	sc_check_address(mail_from);
	if (cfg->reuse_idle > 0 && (c = sc_take(domain, cfg, size)) != NULL) {
		sc_reuse(c, mail_from, size, body_8bit, cb, arg);
		return c;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->dns = dns;
	c->cfg = *cfg;
	sc_config_defaults(&c->cfg);
	c->hostname = xstrdup(c->cfg.hostname);
	c->cfg.hostname = c->hostname;
	if (c->cfg.tls_ctx != NULL)
		SSL_CTX_up_ref(c->cfg.tls_ctx);
	random_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->id, sizeof(c->id), rnd, sizeof(rnd));
	log_printable(c->domain, sizeof(c->domain), domain, strlen(domain));
	c->mail_from = xstrdup(mail_from);
	c->size = size;
	c->body_8bit = body_8bit;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	c->all_5xx = 1;
	memcpy(c->body_tail, "\r\n", 2);
	buf_init(&c->in, SC_INPUT_CAP);
	buf_init(&c->out, c->cfg.out_high_water + SMTP_CLIENT_WRITE_MAX +
	    SMTP_REPLY_LINE_MAX);
	sc_init_watchers(c);
	c->state = SC_STATE_MX;

	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("session=%s domain=%s start from=%s size=%zu",
		    c->id, c->domain, log_addr(log_from, mail_from), size);
	c->mx = mx_resolve(dns, domain, sc_on_mx, c);
	if (c->mx == NULL) {
		/* Report from the loop: never call back from inside new(). */
		c->mx_error = SC_ERR_BAD_DOMAIN;
		sc_timer_arm(c, 0.);
	}
	return c;
}

/* Append a command to the FIFO; the caller then sends what it may. */
static struct sc_cmd *
sc_queue_cmd(struct smtp_client *c, enum sc_cmd_kind kind)
{
	struct sc_cmd *cmd;

	if (c->ncmds == c->cmds_size) {
		c->cmds_size = c->cmds_size ? c->cmds_size * 2 : 8;
		c->cmds = xrealloc(c->cmds, c->cmds_size * sizeof(*c->cmds));
	}
	cmd = &c->cmds[c->ncmds++];
	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = kind;
	return cmd;
}

void
smtp_client_rcpt(struct smtp_client *c, const char *addr)
{
	struct sc_cmd *cmd;
	size_t len;

	/* Allowed from creation on: until MAIL is out, it is queued. */
	if (c->state > SC_STATE_RCPT || c->data_queued)
		fatal_invariant("smtp_client_rcpt after the RCPT phase");
	sc_check_address(addr);
	cmd = sc_queue_cmd(c, SC_CMD_RCPT);
	len = strlen(addr) + sizeof("RCPT TO:<>\r\n");
	cmd->line = xmalloc(len);
	snprintf(cmd->line, len, "RCPT TO:<%s>\r\n", addr);
	cmd->rcpt = xstrdup(addr);
	sc_send_commands(c);
}

void
smtp_client_data(struct smtp_client *c)
{
	struct sc_cmd *cmd;

	if (c->state != SC_STATE_RCPT || c->data_queued)
		fatal_invariant("smtp_client_data outside the RCPT phase");
	c->data_queued = 1;
	cmd = sc_queue_cmd(c, SC_CMD_DATA);
	cmd->line = xstrdup("DATA\r\n");
	sc_send_commands(c);
}

size_t
smtp_client_write(struct smtp_client *c, const void *data, size_t len)
{
	const char *p = data;
	size_t avail;

	if (c->state != SC_STATE_BODY)
		fatal_invariant("smtp_client_write outside the message body");
	if (len > 0) {
		if (buf_append(&c->out, data, len) == -1)
			fatal_invariant("smtp_client_write past the buffer cap");
		if (len >= 2)
			memcpy(c->body_tail, p + len - 2, 2);
		else {
			c->body_tail[0] = c->body_tail[1];
			c->body_tail[1] = p[0];
		}
		if (buf_avail(&c->out) >= SC_BODY_BATCH)
			sc_flush_soon(c);
		sc_timer_update(c);
	}
	avail = buf_avail(&c->out);
	if (avail >= c->cfg.out_high_water) {
		c->above_high_water = 1;
		return 0;
	}
	return c->cfg.out_high_water - avail;
}

void
smtp_client_end(struct smtp_client *c)
{
	if (c->state != SC_STATE_BODY)
		fatal_invariant("smtp_client_end outside the message body");
	sc_enter(c, SC_STATE_DOT);
}

void
smtp_client_quit(struct smtp_client *c)
{
	int idle = c->state == SC_STATE_DONE ||
	    (c->state == SC_STATE_RCPT && c->cmd_head == c->ncmds);

	if (c->state == SC_STATE_QUIT || c->dead)
		fatal_invariant("smtp_client_quit on a closing client");
	if (c->state == SC_STATE_DONE && sc_park(c))
		return;
	if (!idle) {
		sc_release(c, "quit");
		return;
	}
	c->cb = NULL;
	sc_enter(c, SC_STATE_QUIT);
}

void
smtp_client_abort(struct smtp_client *c)
{
	if (c->state == SC_STATE_QUIT || c->dead)
		fatal_invariant("smtp_client_abort on a closing client");
	sc_release(c, "abort");
}

const char *
smtp_client_peer_name(const struct smtp_client *c)
{
	return c->peer_name;
}

const char *
smtp_client_id(const struct smtp_client *c)
{
	return c->id;
}

const char *
smtp_client_tls(const struct smtp_client *c)
{
	return c->tls_desc;
}

void
smtp_client_want_smtputf8(struct smtp_client *c)
{
	c->want_smtputf8 = 1;
}

int
smtp_client_smtputf8(const struct smtp_client *c)
{
	return c->sent_smtputf8;
}

int
smtp_client_tls_verified(const struct smtp_client *c, const char **reason)
{
	if (reason != NULL)
		*reason = c->tls_desc[0] != '\0' ? c->tls_reason : "no TLS";
	return c->tls_desc[0] != '\0' && c->tls_verified;
}
