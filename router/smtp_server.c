/*
 * Inbound SMTP sessions (RFC 5321, with PIPELINING, SIZE, 8BITMIME and
 * ENHANCEDSTATUSCODES).  A session reads commands one at a time; a command
 * that needs other servers (RCPT, DATA, the final dot) puts the session in
 * a waiting state, and reading resumes when the reply is known, so replies
 * always go out in order.
 *
 *   INIT --EHLO/HELO--> READY --MAIL--> MAIL --RCPT--> RCPT_WAIT --+
 *                         ^               ^                         |
 *                         |               +------ reply sent -------+
 *                         |               |
 *                         |             DATA --> DATA_WAIT --354--> DATA
 *                         |                                          |
 *                         +------- reply sent <-- END_WAIT <--"."----+
 *
 * Any state goes to CLOSING on QUIT, a timeout or an I/O error.
 *
 * This file holds the connection, the commands, the replies and TLS;
 * smtp_relay.c forwards the transaction to the destinations.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "auth.h"
#include "buf.h"
#include "idn.h"
#include "log.h"
#include "random.h"
#include "route.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "srs.h"
#include "str.h"
#include "tls.h"
#include "smtp_session.h"
#include "xmalloc.h"

static size_t smtp_nsessions;
static struct smtp_session *smtp_sessions;
static int smtp_shutting_down;
static struct ip_count *smtp_ip_table[SMTP_IP_BUCKETS];
static unsigned char smtp_ip_key[crypto_shorthash_KEYBYTES];
static int smtp_ip_key_set;

static void sess_close(struct smtp_session *, const char *reason);
static void sess_flush(struct smtp_session *);

static const char *
smtp_state_name(enum smtp_state st)
{
	switch (st) {
	case SMTP_S_INIT:	return "init";
	case SMTP_S_READY:	return "ready";
	case SMTP_S_MAIL:	return "mail";
	case SMTP_S_RCPT_WAIT:	return "rcpt-wait";
	case SMTP_S_DATA_WAIT:	return "data-wait";
	case SMTP_S_DATA:	return "data";
	case SMTP_S_AUTH_WAIT:	return "auth-wait";
	case SMTP_S_RELEASE:	return "release";
	case SMTP_S_END_WAIT:	return "end-wait";
	case SMTP_S_TLS_HANDSHAKE: return "tls-handshake";
	case SMTP_S_CLOSING:	return "closing";
	}
	fatal_invariant("unknown SMTP server state");
}

void
sess_set_state(struct smtp_session *s, enum smtp_state st)
{
	log_debug("sid=%s event=state from=%s to=%s", s->id,
	    smtp_state_name(s->state), smtp_state_name(st));
	/* RFC 5321 4.5.3.2: 3 minutes per data block, 5 per command. */
	if (st == SMTP_S_DATA || s->state == SMTP_S_DATA) {
		s->idle.repeat = st == SMTP_S_DATA &&
		    SMTP_DATA_TIMEOUT < s->cfg->idle_timeout ? SMTP_DATA_TIMEOUT :
		    s->cfg->idle_timeout;
		ev_timer_again(s->loop, &s->idle);
	}
	s->state = st;
}

size_t
smtp_server_sessions(void)
{
	return smtp_nsessions;
}

/* ---- replies ---- */

/* Bytes of the longest enhanced status code that struct smtp_reply stores. */
#define SESS_ENHANCED_MAX	(sizeof(((struct smtp_reply *)0)->enhanced) - 1)

/*
 * Queue "code enhanced text" with CRLF.  The text is cut at
 * SMTP_REPLY_TEXT_MAX - 1 bytes.  The line is assembled in place with a
 * single vsnprintf(), because every command sends a reply.
 */
void
sess_reply(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...)
{
	char line[SESS_ENHANCED_MAX + SMTP_REPLY_TEXT_MAX + 8];
	size_t len = 0, elen = strlen(enhanced);
	va_list ap;
	int n;

	if (code < 200 || code > 599 || elen > SESS_ENHANCED_MAX)
		fatal_invariant("reply code or enhanced code out of range");
	line[len++] = (char)('0' + code / 100);
	line[len++] = (char)('0' + code / 10 % 10);
	line[len++] = (char)('0' + code % 10);
	line[len++] = ' ';
	memcpy(line + len, enhanced, elen);
	len += elen;
	line[len++] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(line + len, SMTP_REPLY_TEXT_MAX, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < SMTP_REPLY_TEXT_MAX ? (size_t)n :
		    SMTP_REPLY_TEXT_MAX - 1;
	memcpy(line + len, "\r\n", 2);
	len += 2;
	/*
	 * Only 5xx replies count: 4xx ones (busy destinations, too many
	 * recipients) are no fault of the client's.
	 */
	if (code >= 500)
		s->nerrors++;
	if (buf_append(&s->out, line, len) < 0)
		s->nerrors = SMTP_MAX_ERRORS + 1;
}

/* Default enhanced code for a reply that came without one (RFC 3463). */
static const char *
smtp_default_enhanced(int code)
{
	if (code >= 500)
		return "5.0.0";
	if (code >= 400)
		return "4.0.0";
	return "2.0.0";
}

/*
 * Pass a destination's reply on to the sender.  The destination address
 * is replaced by the address the sender used, because the destination is
 * the domain owner's private mailbox.
 */
void
sess_reply_upstream(struct smtp_session *s, const struct smtp_reply *r,
    const char *private_addr)
{
	char text[SMTP_REPLY_TEXT_MAX];
	const char *enh = r->enhanced[0] ? r->enhanced :
	    smtp_default_enhanced(r->code);
	size_t plen = private_addr ? strlen(private_addr) : 0;
	size_t i, o = 0, n = strlen(r->text);

	for (i = 0; i < n && o + 1 < sizeof(text);) {
		if (plen > 0 && strncasecmp(r->text + i, private_addr,
		    plen) == 0) {
			o += snprintf(text + o, sizeof(text) - o, "%s",
			    s->rcpt_str);
			if (o >= sizeof(text))
				o = sizeof(text) - 1;
			i += plen;
			continue;
		}
		text[o++] = r->text[i++];
	}
	text[o] = '\0';
	sess_reply(s, r->code, enh, "%s%s", r->local ? "" :
	    "Destination server replied: ", text);
}

/* ---- commands ---- */

/* Return the argument after a verb and a ':' ("FROM:"), or NULL. */
static const char *
smtp_arg_after(const char *args, const char *keyword)
{
	size_t n = strlen(keyword);

	if (strncasecmp(args, keyword, n) != 0)
		return NULL;
	args += n;
	/* RFC 5321 has no space here, but many clients send one. */
	while (*args == ' ')
		args++;
	return args;
}

/*
 * Check a HELO/EHLO argument: a domain (letters, digits, '-', '.', and
 * '_', which many internal host names use) or an address literal of
 * RFC 5321 section 4.1.3.  It is copied into the Received header, so
 * nothing else may pass.
 */
static int
smtp_helo_valid(const char *arg, size_t n)
{
	unsigned char a[sizeof(struct in6_addr)];
	char lit[INET6_ADDRSTRLEN + 8];
	size_t i;

	if (arg[0] == '[') {
		if (n < 3 || arg[n - 1] != ']' || n - 2 >= sizeof(lit))
			return 0;
		memcpy(lit, arg + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, a) == 1;
		return inet_pton(AF_INET, lit, a) == 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return 0;
	}
	return 1;
}

static void
cmd_helo(struct smtp_session *s, const char *args, int esmtp)
{
	size_t n = strlen(args);

	if (n == 0 || n > 255) {
		sess_reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	if (!smtp_helo_valid(args, n)) {
		sess_reply(s, 501, "5.5.4", "Invalid domain name or address "
		    "literal (RFC 5321 section 4.1.4)");
		return;
	}
	sess_txn_reset(s, 0);
	str_copy(s->helo, args, sizeof(s->helo));
	s->esmtp = esmtp;
	sess_set_state(s, SMTP_S_READY);
	if (!esmtp) {
		buf_printf(&s->out, "250 %s\r\n", s->cfg->hostname);
		return;
	}
	buf_printf(&s->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %zu\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n%s250 ENHANCEDSTATUSCODES\r\n",
	    s->cfg->hostname, s->cfg->max_size,
	    s->cfg->tls_ctx != NULL && s->ssl == NULL ? "250-STARTTLS\r\n" :
	    "");
}

/* Parse MAIL parameters (RFC 1870 SIZE, RFC 6152 BODY). */
static int
cmd_mail_params(struct smtp_session *s, const char *p)
{
	char word[64];
	size_t n;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " ");
		if (n >= sizeof(word)) {
			sess_reply(s, 555, "5.5.4", "Unsupported MAIL parameter");
			return -1;
		}
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if (strncasecmp(word, "SIZE=", 5) == 0) {
			char *end;
			unsigned long long v = strtoull(word + 5, &end, 10);

			if (*end != '\0' || word[5] == '\0' || word[5] == '-') {
				sess_reply(s, 501, "5.5.4", "Invalid SIZE value");
				return -1;
			}
			if (v > s->cfg->max_size) {
				sess_reply(s, 552, "5.3.4", "Message too big, "
				    "the limit is %zu bytes", s->cfg->max_size);
				return -1;
			}
			s->declared_size = (size_t)v;
		} else if (strcasecmp(word, "BODY=8BITMIME") == 0)
			s->body_8bit = 1;
		else if (strcasecmp(word, "SMTPUTF8") == 0)
			s->smtputf8 = 1;
		else if (strcasecmp(word, "BODY=7BIT") == 0)
			s->body_8bit = 0;
		else {
			sess_reply(s, 555, "5.5.4", "Unsupported MAIL parameter");
			return -1;
		}
	}
	return 0;
}

/*
 * Format a decoded "local@domain" (the local part may hold any
 * character, as SRS returns it) as a wire address, quoting the local
 * part where needed.  The domain is whatever follows the last '@'.
 * Returns 0, or -1 if it is not a valid address.
 */
static int
smtp_join_decoded(const char *decoded, char *out, size_t outsz)
{
	const char *at = strrchr(decoded, '@');
	struct addr a, check;

	memset(&a, 0, sizeof(a));
	if (at == NULL || at == decoded ||
	    (size_t)(at - decoded) > ADDR_LOCAL_MAX ||
	    strlen(at + 1) > ADDR_DOMAIN_MAX)
		return -1;
	memcpy(a.local, decoded, (size_t)(at - decoded));
	str_copy(a.domain, at + 1, sizeof(a.domain));
	if (addr_format(&a, out, outsz) < 0)
		return -1;
	/* The result must parse back: this rejects CR, LF and bad domains. */
	if (addr_parse_mailbox(&check, out) != ADDR_OK)
		return -1;
	return 0;
}

/* Compute the envelope sender the destinations see (SRS). */
static int
cmd_mail_rewrite(struct smtp_session *s)
{
	char plain[SMTP_ADDR_BUF], rewritten[SMTP_ADDR_BUF];
	enum srs_result r;

	if (s->sender.null) {
		s->sender_fwd[0] = '\0';
		return 0;
	}
	snprintf(plain, sizeof(plain), "%s@%s", s->sender.local,
	    s->sender.domain);
	r = srs_forward(s->cfg->srs, plain, rewritten, sizeof(rewritten),
	    time(NULL));
	if (r == SRS_UNCHANGED) {
		addr_format(&s->sender, s->sender_fwd, sizeof(s->sender_fwd));
		return 0;
	}
	if (r != SRS_OK || smtp_join_decoded(rewritten, s->sender_fwd,
	    sizeof(s->sender_fwd)) < 0) {
		sess_reply(s, 553, "5.1.7", "Sender address cannot be "
		    "rewritten for forwarding (too long)");
		return -1;
	}
	return 0;
}

static int
smtp_has_8bit(const char *p)
{
	for (; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	return 0;
}

static void
cmd_mail(struct smtp_session *s, const char *args)
{
	const char *p;
	size_t end;
	enum addr_status st;

	if (s->state == SMTP_S_INIT) {
		sess_reply(s, 503, "5.5.1", "Send EHLO or HELO first");
		return;
	}
	if (s->state != SMTP_S_READY) {
		sess_reply(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	if ((p = smtp_arg_after(args, "FROM:")) == NULL) {
		sess_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	st = addr_parse_path(&s->sender, p, strlen(p), 1, &end);
	if (st != ADDR_OK) {
		sess_reply(s, st == ADDR_TOO_LONG ? 553 : 501,
		    st == ADDR_TOO_LONG ? "5.1.7" : "5.1.7",
		    "Invalid sender address");
		return;
	}
	if (p[end] != '\0' && p[end] != ' ') {
		sess_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	if (cmd_mail_params(s, p + end) < 0) {
		sess_txn_reset(s, 0);
		return;
	}
	/* RFC 6531 section 3.4: UTF-8 addresses need the SMTPUTF8 parameter. */
	if (!s->smtputf8 && (smtp_has_8bit(s->sender.local) ||
	    smtp_has_8bit(s->sender.domain))) {
		sess_reply(s, 553, "5.6.7", "Non-ASCII address needs the "
		    "SMTPUTF8 parameter");
		sess_txn_reset(s, 0);
		return;
	}
	if (cmd_mail_rewrite(s) < 0) {
		sess_txn_reset(s, 0);
		return;
	}
	if (s->cfg->auth != NULL) {
		char plain[SMTP_ADDR_BUF];

		if (s->sender.null)
			plain[0] = '\0';
		else
			snprintf(plain, sizeof(plain), "%s@%s", s->sender.local,
			    s->sender.domain);
		s->auth = auth_txn_new(s->cfg->auth, s->peer_ip, s->helo,
		    plain);
	}
	sess_set_state(s, SMTP_S_MAIL);
	sess_reply(s, 250, "2.1.0", "Sender ok");
}

/* RCPT to an SRS address of ours: a bounce on its way back. */
static void
cmd_rcpt_srs(struct smtp_session *s)
{
	char plain[SMTP_ADDR_BUF], orig[SMTP_ADDR_BUF], quoted[SMTP_ADDR_BUF];
	const char *dst = quoted;
	enum srs_result r;

	snprintf(plain, sizeof(plain), "%s@%s", s->rcpt.local,
	    s->rcpt.domain);
	r = srs_reverse(s->cfg->srs, plain, orig, sizeof(orig), time(NULL));
	if (r != SRS_OK) {
		sess_reply(s, 550, "5.1.1", "Invalid or expired SRS address");
		log_info("sid=%s event=rcpt result=srs-invalid reason=%s",
		    s->id, srs_result_str(r));
		return;
	}
	/* SRS works on the decoded form: quote the local part again. */
	if (smtp_join_decoded(orig, quoted, sizeof(quoted)) < 0) {
		sess_reply(s, 550, "5.1.1", "Invalid SRS address");
		return;
	}
	sess_rcpt_forward(s, &dst, 1);
}

/*
 * The relay's own postmaster (RFC 5321 section 4.5.1): mail to it goes to
 * the operator's --postmaster address.  Customer domains route their
 * postmaster through their own rules.
 */
static void
cmd_rcpt_postmaster(struct smtp_session *s)
{
	const char *dst = s->cfg->postmaster;

	snprintf(s->rcpt_str, sizeof(s->rcpt_str), "postmaster");
	if (dst == NULL) {
		/* NOTE: without --postmaster the relay has nowhere to send it. */
		sess_reply(s, 550, "5.1.1", "No postmaster address is "
		    "configured on this relay");
		return;
	}
	sess_rcpt_forward(s, &dst, 1);
}

static void
cmd_rcpt(struct smtp_session *s, const char *args)
{
	const char *p;
	size_t end;
	enum addr_status st;

	if (s->state != SMTP_S_MAIL) {
		sess_reply(s, 503, "5.5.1", "Send MAIL first");
		return;
	}
	if ((p = smtp_arg_after(args, "TO:")) == NULL) {
		sess_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (s->nrcpt_ok + s->nrcpt_drop >= s->cfg->max_rcpts) {
		sess_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	s->nrcpt_tried++;
	/* RFC 5321 section 4.1.1.3: "<Postmaster>" without a domain. */
	if (strcasecmp(p, "<postmaster>") == 0) {
		cmd_rcpt_postmaster(s);
		return;
	}
	st = addr_parse_path(&s->rcpt, p, strlen(p), 0, &end);
	if (st != ADDR_OK || (p[end] != '\0' && p[end] != ' ')) {
		sess_reply(s, st == ADDR_TOO_LONG ? 553 : 501, "5.1.3",
		    "Invalid recipient address");
		return;
	}
	if (p[end] != '\0') {
		sess_reply(s, 555, "5.5.4", "Unsupported RCPT parameter");
		return;
	}
	if (!s->smtputf8 && (smtp_has_8bit(s->rcpt.local) ||
	    smtp_has_8bit(s->rcpt.domain))) {
		sess_reply(s, 553, "5.6.7", "Non-ASCII address needs the "
		    "SMTPUTF8 parameter");
		return;
	}
	/* Rules live in a domain's zone: an address literal has none. */
	if (s->rcpt.domain[0] == '[') {
		sess_reply(s, 550, "5.7.1", "Relaying denied: this relay does "
		    "not route mail for address literals");
		return;
	}
	/* U-label and A-label spellings of a domain find the same rules. */
	if (idn_to_alabel(s->rcpt.domain, s->rcpt.domain,
	    sizeof(s->rcpt.domain)) < 0) {
		sess_reply(s, 553, "5.1.2", "Invalid internationalized domain "
		    "name");
		return;
	}
	addr_format(&s->rcpt, s->rcpt_str, sizeof(s->rcpt_str));
	if (strcasecmp(s->rcpt.local, "postmaster") == 0 &&
	    (strcasecmp(s->rcpt.domain, s->cfg->srs->domain) == 0 ||
	    strcasecmp(s->rcpt.domain, s->cfg->hostname) == 0)) {
		cmd_rcpt_postmaster(s);
		return;
	}
	if (strcasecmp(s->rcpt.domain, s->cfg->srs->domain) == 0) {
		cmd_rcpt_srs(s);
		return;
	}
	sess_set_state(s, SMTP_S_RCPT_WAIT);
	s->lookup = route_lookup(s->cfg->route, s->rcpt.local, s->rcpt.domain,
	    sess_route_done, s);
}

static void
cmd_data(struct smtp_session *s, const char *args)
{
	size_t i, kept = 0;

	if (args[0] != '\0') {
		sess_reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state != SMTP_S_MAIL) {
		sess_reply(s, 503, "5.5.1", "Send MAIL and RCPT first");
		return;
	}
	if (s->nrcpt_ok + s->nrcpt_drop == 0) {
		/* RFC 2920 section 3.1: never 354 without a valid recipient. */
		if (s->nrcpt_tried > 0)
			sess_reply(s, 554, "5.5.1", "No valid recipients");
		else
			sess_reply(s, 503, "5.5.1", "Send RCPT first");
		return;
	}
	/*
	 * A destination that accepted recipients and failed since then must
	 * fail the whole message, or those recipients would be lost.
	 */
	for (i = 0; i < s->nups; i++) {
		const struct upstream *up = s->ups[i];

		if (up->naccepted > 0 && up->state == UP_FAILED) {
			sess_reply_upstream(s, &up->reply, NULL);
			sess_txn_reset(s, 1);
			sess_set_state(s, SMTP_S_READY);
			return;
		}
	}
	/* Upstreams that accepted no recipient get no message. */
	for (i = 0; i < s->nups; i++) {
		struct upstream *up = s->ups[i];

		if (up->naccepted == 0 || up->state != UP_READY)
			sess_up_release(up, 1);
		else
			s->ups[kept++] = up;
	}
	s->nups = kept;
	sess_set_state(s, SMTP_S_DATA_WAIT);
	for (i = 0; i < s->nups; i++) {
		s->ups[i]->state = UP_DATA_WAIT;
		smtp_client_data(s->ups[i]->client);
	}
	if (s->auth != NULL && !auth_spf_done(s->auth))
		auth_wait_spf(s->auth, sess_spf_ready, s);
	sess_data_check_ready(s);
}

static void
cmd_rset(struct smtp_session *s, const char *args)
{
	sess_txn_reset(s, 1);
	if (s->state != SMTP_S_INIT)
		sess_set_state(s, SMTP_S_READY);
	sess_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_noop(struct smtp_session *s, const char *args)
{
	sess_reply(s, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_session *s, const char *args)
{
	sess_reply(s, 221, "2.0.0", "%s closing connection", s->cfg->hostname);
	sess_close(s, "quit");
}

static void
cmd_vrfy(struct smtp_session *s, const char *args)
{
	sess_reply(s, 252, "2.5.0", "Cannot verify the user, but will try "
	    "delivery");
}

/*
 * STARTTLS (RFC 3207).  Input that arrived after the command was sent in
 * the clear and is discarded, never executed inside TLS; after the
 * handshake the session starts over from the greeting state.
 */
static void
cmd_starttls(struct smtp_session *s, const char *args)
{
	if (args[0] != '\0') {
		sess_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->cfg->tls_ctx == NULL) {
		sess_reply(s, 502, "5.5.1", "STARTTLS not available");
		return;
	}
	if (s->ssl != NULL) {
		sess_reply(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (s->state != SMTP_S_INIT && s->state != SMTP_S_READY) {
		sess_reply(s, 503, "5.5.1", "STARTTLS not allowed during a "
		    "mail transaction");
		return;
	}
	if ((s->ssl = SSL_new(s->cfg->tls_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		sess_reply(s, 454, "4.7.0", "TLS not available due to a "
		    "temporary reason");
		if (s->ssl != NULL)
			SSL_free(s->ssl);
		s->ssl = NULL;
		return;
	}
	SSL_set_accept_state(s->ssl);
	if (buf_avail(&s->in) > 0) {
		log_info("sid=%s event=starttls-discard bytes=%zu", s->id,
		    buf_avail(&s->in));
		buf_consume(&s->in, buf_avail(&s->in));
	}
	/* The 220 goes out in the clear, before the handshake starts. */
	buf_printf(&s->out, "220 2.0.0 Ready to start TLS\r\n");
	sess_txn_reset(s, 0);
	s->helo[0] = '\0';
	s->esmtp = 0;
	sess_set_state(s, SMTP_S_TLS_HANDSHAKE);
	s->tls_plain_pending = 1;
}

static void
cmd_ehlo(struct smtp_session *s, const char *args)
{
	cmd_helo(s, args, 1);
}

static void
cmd_helo_plain(struct smtp_session *s, const char *args)
{
	cmd_helo(s, args, 0);
}

static const struct smtp_cmd {
	const char	*verb;
	void		(*fn)(struct smtp_session *, const char *);
} smtp_cmds[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo_plain },
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "QUIT", cmd_quit },
	{ "VRFY", cmd_vrfy },
	{ "STARTTLS", cmd_starttls },
};

static void
sess_dispatch(struct smtp_session *s, char *line)
{
	char verb[10], printable[64];
	size_t n = strcspn(line, " "), i;
	const char *args = line + n;

	while (*args == ' ')
		args++;
	ev_timer_again(s->loop, &s->idle);
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\r' || (unsigned char)line[i] < 0x20) {
			sess_reply(s, 500, "5.5.2", "Control character in "
			    "command");
			return;
		}
	if (n < sizeof(verb)) {
		memcpy(verb, line, n);
		verb[n] = '\0';
		for (i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++)
			if (strcasecmp(verb, smtp_cmds[i].verb) == 0) {
				smtp_cmds[i].fn(s, args);
				return;
			}
	}
	log_debug("sid=%s event=unknown-command verb=\"%s\"", s->id,
	    log_printable(printable, sizeof(printable), line, n));
	sess_reply(s, 500, "5.5.1", "Command unrecognized");
}

/* ---- input and output ---- */

static int
sess_waiting(const struct smtp_session *s)
{
	return s->state == SMTP_S_RCPT_WAIT || s->state == SMTP_S_DATA_WAIT ||
	    s->state == SMTP_S_END_WAIT || s->state == SMTP_S_TLS_HANDSHAKE ||
	    s->state == SMTP_S_AUTH_WAIT || s->state == SMTP_S_RELEASE ||
	    s->state == SMTP_S_CLOSING;
}

/*
 * Take one command line from the input buffer.  Returns 1 and the line
 * (CRLF removed, NUL-terminated) in line, 0 if no complete line is
 * buffered yet.  Lines longer than SMTP_LINE_MAX get 500 5.5.2 and are
 * skipped, before their end has even arrived.
 */
static int
sess_next_line(struct smtp_session *s, char line[SMTP_LINE_MAX + 1])
{
	const char *head = buf_head(&s->in);
	size_t avail = buf_avail(&s->in);
	/* An empty buffer may have no storage yet: no memchr on NULL. */
	const char *nl = avail > 0 ? memchr(head, '\n', avail) : NULL;
	size_t n;

	if (s->discarding_line) {
		if (nl == NULL) {
			buf_consume(&s->in, avail);
			return 0;
		}
		buf_consume(&s->in, (size_t)(nl - head) + 1);
		s->discarding_line = 0;
		return -1;
	}
	if (nl == NULL) {
		if (avail >= SMTP_LINE_MAX) {
			sess_reply(s, 500, "5.5.2", "Line too long, the limit "
			    "is %d octets", SMTP_LINE_MAX);
			buf_consume(&s->in, avail);
			s->discarding_line = 1;
		}
		return 0;
	}
	n = (size_t)(nl - head) + 1;
	if (n > SMTP_LINE_MAX) {
		sess_reply(s, 500, "5.5.2", "Line too long, the limit is %d "
		    "octets", SMTP_LINE_MAX);
		buf_consume(&s->in, n);
		return -1;
	}
	memcpy(line, head, n);
	buf_consume(&s->in, n);
	if (memchr(line, '\0', n) != NULL) {
		/* A NUL would cut the C string short and hide the rest. */
		sess_reply(s, 500, "5.5.2", "NUL character in command");
		return -1;
	}
	n--;			/* the LF */
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 1;
}

/*
 * Whether the session takes input now: not while it waits for a reply
 * from elsewhere, has a full input buffer or a destination that cannot
 * take more of the message.
 */
static int
sess_wants_input(const struct smtp_session *s)
{
	size_t i;

	if (s->state == SMTP_S_CLOSING || sess_waiting(s) ||
	    buf_room(&s->in) == 0)
		return 0;
	for (i = 0; i < s->nups; i++)
		if (s->ups[i]->blocked)
			return 0;
	return 1;
}

/*
 * Start the read watcher when the session takes input.  A session that
 * pauses keeps its watcher running, and sess_read_cb() stops it only if
 * input arrives during the pause.  With epoll, libev 4.33 leaves a stopped
 * descriptor registered, so a watcher stopped and started again around
 * each reply cost an epoll_ctl() that failed with EEXIST.
 */
static void
sess_update_watchers(struct smtp_session *s)
{
	int want_read = sess_wants_input(s);

	if (s->state == SMTP_S_TLS_HANDSHAKE)
		return;		/* the handshake drives the watchers */
	if (want_read && !ev_is_active(&s->rio))
		ev_io_start(s->loop, &s->rio);
	/* TLS may hold decrypted bytes the socket will not signal again. */
	if (want_read && s->ssl != NULL && SSL_pending(s->ssl) > 0)
		ev_feed_event(s->loop, &s->rio, EV_READ);
}

/*
 * Run commands and message data from the input buffer until the session
 * must wait, then send the replies gathered so far.
 */
void
sess_process(struct smtp_session *s)
{
	char line[SMTP_LINE_MAX + 1];
	int r;

	/*
	 * A command that completes at once calls back into here; the outer
	 * call carries on instead, so pipelined input cannot grow the stack.
	 */
	if (s->in_process)
		return;
	s->in_process = 1;
	while (s->state != SMTP_S_CLOSING) {
		if (smtp_shutting_down && (s->state == SMTP_S_INIT ||
		    s->state == SMTP_S_READY)) {
			buf_printf(&s->out, "421 4.3.2 %s Service shutting down, "
			    "closing connection\r\n", s->cfg->hostname);
			sess_close(s, "shutdown");
			break;
		}
		if (s->nerrors > SMTP_MAX_ERRORS && !sess_waiting(s) &&
		    s->state != SMTP_S_DATA) {
			buf_printf(&s->out, "421 4.7.0 %s Too many errors, "
			    "closing connection\r\n", s->cfg->hostname);
			sess_close(s, "too-many-errors");
			break;
		}
		if (s->state == SMTP_S_DATA) {
			if (!sess_data_input(s))
				break;
			continue;
		}
		if (sess_waiting(s))
			break;
		if ((r = sess_next_line(s, line)) == 0)
			break;
		if (r > 0)
			sess_dispatch(s, line);
	}
	s->in_process = 0;
	sess_flush(s);
	if (s->state != SMTP_S_CLOSING)
		sess_update_watchers(s);
	/* An idle session keeps no buffer memory between commands. */
	if (s->state != SMTP_S_DATA && buf_avail(&s->in) == 0)
		buf_free(&s->in);
	if (buf_avail(&s->out) == 0)
		buf_free(&s->out);
}

/*
 * Write one chunk of buffered output, through TLS when it is active.
 * Returns 1 if bytes were written, 0 if the socket must become ready
 * first (the watcher is set up), -1 after closing the session.
 */
static int
sess_write_some(struct smtp_session *s)
{
	size_t done = 0;
	ssize_t n;

	if (s->ssl != NULL && !s->tls_plain_pending) {
		switch (tls_write(s->ssl, buf_head(&s->out), buf_avail(&s->out),
		    &done)) {
		case TLS_IO_OK:
			buf_consume(&s->out, done);
			return 1;
		case TLS_IO_WANT_WRITE:
			ev_io_start(s->loop, &s->wio);
			return 0;
		case TLS_IO_WANT_READ:
			s->write_wants_read = 1;
			ev_io_start(s->loop, &s->rio);
			return 0;
		default:
			buf_reset(&s->out);
			sess_close(s, "tls-write-error");
			return -1;
		}
	}
	n = write(s->fd, buf_head(&s->out), buf_avail(&s->out));
	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		ev_io_start(s->loop, &s->wio);
		return 0;
	}
	if (n <= 0) {
		buf_reset(&s->out);
		sess_close(s, "write-error");
		return -1;
	}
	buf_consume(&s->out, (size_t)n);
	return 1;
}

static void sess_tls_step(struct smtp_session *);

static void
sess_flush(struct smtp_session *s)
{
	int r = 1;

	while (buf_avail(&s->out) > 0 && (r = sess_write_some(s)) > 0)
		;
	if (r < 0 || buf_avail(&s->out) > 0)
		return;
	if (ev_is_active(&s->wio) && !s->read_wants_write)
		ev_io_stop(s->loop, &s->wio);
	if (s->tls_plain_pending && s->state != SMTP_S_CLOSING) {
		/* The 220 is out: the handshake may start. */
		s->tls_plain_pending = 0;
		s->idle.repeat = s->cfg->idle_timeout < 30. ?
		    s->cfg->idle_timeout : 30.;
		ev_timer_again(s->loop, &s->idle);
		sess_tls_step(s);
	}
}

/* Advance the TLS handshake after STARTTLS. */
static void
sess_tls_step(struct smtp_session *s)
{
	char err[256];

	switch (tls_handshake(s->ssl)) {
	case TLS_IO_OK:
		tls_describe(s->ssl, s->tls_desc, sizeof(s->tls_desc));
		log_info("sid=%s event=tls-established tls=%s", s->id,
		    s->tls_desc);
		ev_io_stop(s->loop, &s->wio);
		s->idle.repeat = s->cfg->idle_timeout;
		ev_timer_again(s->loop, &s->idle);
		sess_set_state(s, SMTP_S_INIT);
		sess_process(s);
		return;
	case TLS_IO_WANT_READ:
		ev_io_stop(s->loop, &s->wio);
		ev_io_start(s->loop, &s->rio);
		return;
	case TLS_IO_WANT_WRITE:
		ev_io_stop(s->loop, &s->rio);
		ev_io_start(s->loop, &s->wio);
		return;
	default:
		tls_last_error(err, sizeof(err));
		log_info("sid=%s event=tls-failed error=\"%s\"", s->id, err);
		sess_close(s, "tls-handshake-failed");
		return;
	}
}

/*
 * Read what the socket has into the input buffer.  Returns the bytes
 * read, 0 when none are ready yet, -1 after closing the session.
 */
static ssize_t
sess_read_some(struct smtp_session *s, char *p, size_t room)
{
	size_t done = 0;
	ssize_t n;

	if (s->ssl != NULL) {
		switch (tls_read(s->ssl, p, room, &done)) {
		case TLS_IO_OK:
			return (ssize_t)done;
		case TLS_IO_WANT_READ:
			return 0;
		case TLS_IO_WANT_WRITE:
			s->read_wants_write = 1;
			ev_io_start(s->loop, &s->wio);
			return 0;
		case TLS_IO_CLOSED:
			sess_close(s, "client-closed");
			return -1;
		default:
			sess_close(s, "tls-read-error");
			return -1;
		}
	}
	n = read(s->fd, p, room);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		sess_close(s, n == 0 ? "client-closed" : "read-error");
		return -1;
	}
	return n;
}

static void
sess_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct smtp_session *s = w->data;
	size_t room = buf_room(&s->in);
	ssize_t n;
	char *p;

	if (s->state == SMTP_S_TLS_HANDSHAKE) {
		if (!s->tls_plain_pending)
			sess_tls_step(s);
		return;
	}
	if (s->write_wants_read) {
		s->write_wants_read = 0;
		sess_flush(s);
		if (s->state == SMTP_S_CLOSING)
			return;
	}
	if (!sess_wants_input(s)) {
		/* Input during a pause waits in the socket. */
		if (!s->write_wants_read)
			ev_io_stop(loop, w);
		return;
	}
	/* Command sessions keep a small buffer; DATA reads in large chunks. */
	if (s->state != SMTP_S_DATA && room > 4096)
		room = 4096;
	p = buf_reserve(&s->in, room);
	if ((n = sess_read_some(s, p, room)) <= 0)
		return;
	buf_commit(&s->in, (size_t)n);
	/*
	 * The timeouts run per command and per data block, not per byte, so
	 * a client trickling bytes cannot hold a session (slowloris).
	 */
	if (s->state == SMTP_S_DATA) {
		if (ev_now(loop) - s->data_started > SMTP_DATA_DEADLINE) {
			buf_printf(&s->out, "421 4.4.2 %s Message took too "
			    "long to send, closing connection\r\n",
			    s->cfg->hostname);
			sess_close(s, "data-deadline");
			return;
		}
		ev_timer_again(loop, &s->idle);
	}
	sess_process(s);
}

static void
sess_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct smtp_session *s = w->data;

	if (s->state == SMTP_S_TLS_HANDSHAKE) {
		if (s->tls_plain_pending)
			sess_flush(s);
		else
			sess_tls_step(s);
		return;
	}
	if (s->read_wants_write) {
		s->read_wants_write = 0;
		sess_read_cb(loop, &s->rio, EV_READ);
		if (s->state == SMTP_S_CLOSING && buf_avail(&s->out) > 0)
			return;
	}
	sess_flush(s);
	if (s->state == SMTP_S_CLOSING && buf_avail(&s->out) == 0) {
		ev_timer_stop(loop, &s->reaper);
		ev_timer_set(&s->reaper, 0., 0.);
		ev_timer_start(loop, &s->reaper);
	}
}

static void
sess_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	if (s->state == SMTP_S_TLS_HANDSHAKE) {
		sess_close(s, "tls-timeout");
		return;
	}
	if (sess_waiting(s) && s->state != SMTP_S_CLOSING) {
		/* The destinations' own timeouts bound these waits. */
		ev_timer_again(loop, w);
		return;
	}
	sess_reply(s, 421, "4.4.2", "%s timeout, closing connection",
	    s->cfg->hostname);
	sess_flush(s);
	sess_close(s, "timeout");
}

static void
sess_reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	/* Every watcher, whatever re-armed it since sess_close(). */
	ev_timer_stop(loop, &s->reaper);
	ev_timer_stop(loop, &s->deadline);
	ev_timer_stop(loop, &s->idle);
	ev_io_stop(loop, &s->rio);
	ev_io_stop(loop, &s->wio);
	if (s->ip != NULL)
		s->ip->n--;
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	if (s->fd != -1)
		close(s->fd);
	buf_free(&s->in);
	buf_free(&s->out);
	log_info("sid=%s event=disconnect reason=%s", s->id, s->end_reason);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		smtp_sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
	smtp_nsessions--;
}

/*
 * End the session: stop reading, release the transaction, and free the
 * session from a later loop iteration once pending replies are written,
 * because this may run inside one of the session's own callbacks.
 */
static void
sess_close(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_S_CLOSING)
		return;
	s->end_reason = reason;
	sess_txn_reset(s, 1);
	s->state = SMTP_S_CLOSING;
	s->tls_plain_pending = 0;
	ev_io_stop(s->loop, &s->rio);
	ev_timer_stop(s->loop, &s->idle);
	ev_timer_stop(s->loop, &s->deadline);
	sess_flush(s);
	/*
	 * With every reply written, close the socket now.  Otherwise the
	 * client's close wakes the loop once more, and libev spends an
	 * epoll_ctl() to drop the descriptor.
	 */
	if (buf_avail(&s->out) == 0) {
		ev_io_stop(s->loop, &s->wio);
		close(s->fd);
		s->fd = -1;
	}
	/* Give a last reply that could not be written yet 10 s to drain. */
	ev_timer_set(&s->reaper, buf_avail(&s->out) == 0 ? 0. : 10., 0.);
	ev_timer_start(s->loop, &s->reaper);
}

static void
sess_peer_ip(struct smtp_session *s, const struct sockaddr *sa)
{
	const void *src = NULL;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (src == NULL || str_inet_ntop(sa->sa_family, src, s->peer_ip,
	    sizeof(s->peer_ip)) == NULL)
		snprintf(s->peer_ip, sizeof(s->peer_ip), "unknown");
}

static void
sess_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	buf_printf(&s->out, "421 4.4.2 %s Session time limit reached, "
	    "closing connection\r\n", s->cfg->hostname);
	sess_close(s, "session-deadline");
}

/*
 * Find or add the counter of open sessions for ip.  Counters stay in the
 * table at zero, so the table has one entry per address seen.
 * NOTE: entries are never removed, so a worker that sees many distinct
 * client addresses keeps one small entry per address.
 */
static struct ip_count *
smtp_ip_get(const char *ip)
{
	unsigned char h[crypto_shorthash_BYTES];
	struct ip_count *c, **bucket;
	uint64_t idx;

	if (!smtp_ip_key_set) {
		crypto_shorthash_keygen(smtp_ip_key);
		smtp_ip_key_set = 1;
	}
	crypto_shorthash(h, (const unsigned char *)ip, strlen(ip), smtp_ip_key);
	memcpy(&idx, h, sizeof(idx));
	bucket = &smtp_ip_table[idx % SMTP_IP_BUCKETS];
	for (c = *bucket; c != NULL; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->next = *bucket;
	*bucket = c;
	return c;
}

/* Refuse a connection over a limit with 421 and close it at once. */
static int
smtp_over_limit(const struct smtp_server_config *cfg, int fd,
    struct ip_count *ip)
{
	char msg[320];
	const char *why;
	int n;

	if (cfg->max_sessions > 0 && smtp_nsessions >= cfg->max_sessions)
		why = "Too many connections";
	else if (cfg->max_per_ip > 0 && ip->n >= cfg->max_per_ip)
		why = "Too many connections from your address";
	else
		return 0;
	n = snprintf(msg, sizeof(msg), "421 4.7.0 %s %s, try again later\r\n",
	    cfg->hostname, why);
	/* The client gets the reply only if the socket takes it at once. */
	if (n > 0 && write(fd, msg, (size_t)n) < 0)
		log_debug("event=limit-reply-failed error=\"%s\"",
		    strerror(errno));
	close(fd);
	log_info("event=connection-refused reason=\"%s\"", why);
	return 1;
}

/*
 * Start a graceful stop.  Sessions outside a mail transaction get 421 and
 * are closed now.  The others finish their transaction first and then get
 * 421 in place of the next reply.
 */
void
smtp_server_shutdown(void)
{
	struct smtp_session *s, *next;

	smtp_shutting_down = 1;
	for (s = smtp_sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state != SMTP_S_CLOSING && !s->in_process)
			sess_process(s);
	}
}

void
smtp_server_accept(struct ev_loop *loop, const struct smtp_server_config *cfg,
    int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct smtp_session *s;
	unsigned char rnd[8];
	char ipbuf[LOG_ADDR_MAX];
	struct ip_count *ip;

	s = xcalloc(1, sizeof(*s));
	sess_peer_ip(s, sa);
	ip = smtp_ip_get(s->peer_ip);
	if (smtp_over_limit(cfg, fd, ip)) {
		free(s);
		return;
	}
	s->ip = ip;
	ip->n++;
	s->loop = loop;
	s->cfg = cfg;
	s->fd = fd;
	s->state = SMTP_S_INIT;
	random_buf(rnd, sizeof(rnd));
	sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
	buf_init(&s->in, SMTP_IN_CAP);
	buf_init(&s->out, SMTP_OUT_CAP);
	ev_io_init(&s->rio, sess_read_cb, fd, EV_READ);
	ev_io_init(&s->wio, sess_write_cb, fd, EV_WRITE);
	ev_init(&s->idle, sess_idle_cb);
	s->idle.repeat = cfg->idle_timeout;
	ev_timer_init(&s->reaper, sess_reap_cb, 0., 0.);
	ev_timer_init(&s->deadline, sess_deadline_cb, cfg->session_timeout, 0.);
	s->rio.data = s->wio.data = s->idle.data = s->reaper.data = s;
	s->deadline.data = s;
	if (cfg->session_timeout > 0)
		ev_timer_start(loop, &s->deadline);
	s->next = smtp_sessions;
	if (smtp_sessions != NULL)
		smtp_sessions->prev = s;
	smtp_sessions = s;
	smtp_nsessions++;

	log_info("sid=%s event=connect client=%s", s->id,
	    log_addr(ipbuf, s->peer_ip));
	/* RFC 2034 section 3: no enhanced code in the greeting or EHLO. */
	buf_printf(&s->out, "220 %s ESMTP ready\r\n", cfg->hostname);
	ev_timer_again(loop, &s->idle);
	sess_process(s);
}
