/*
 * Forwarding for an inbound session: every destination domain of a
 * transaction gets one outbound session (an "upstream").  The reply to RCPT
 * is the destinations' reply, DATA is streamed to every upstream as it
 * arrives, and the final dot gets its reply only once every upstream has
 * replied to its own final dot, after the authentication verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "auth.h"
#include "hdrfilter.h"
#include "idn.h"
#include "log.h"
#include "route.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "xmalloc.h"
#include "smtp_session.h"

/* ---- upstreams ---- */

static void
sess_ops_free(struct smtp_session *s)
{
	free(s->ops);
	s->ops = NULL;
	s->nops = 0;
}

void
sess_up_release(struct upstream *up, int abort)
{
	if (up->client != NULL) {
		if (abort)
			smtp_client_abort(up->client);
		else
			smtp_client_quit(up->client);
	}
	free(up);
}

/* Message bytes held by all sessions of this worker in hold mode. */
static size_t held_total;

static size_t
held_budget_left(const struct smtp_session *s)
{
	return held_total < s->cfg->hold_budget ?
	    s->cfg->hold_budget - held_total : 0;
}

/* Free the held message data and give its bytes back to the budget. */
static void
sess_held_free(struct smtp_session *s)
{
	held_total -= buf_avail(&s->held);
	buf_free(&s->held);
}

/*
 * Reset the transaction: cancel a pending lookup and let every upstream
 * go, aborting those that must not deliver.  Called on RSET, after the
 * final reply, on errors and at teardown.
 */
void
sess_txn_reset(struct smtp_session *s, int abort)
{
	size_t i;

	if (s->lookup != NULL) {
		route_cancel(s->lookup);
		s->lookup = NULL;
	}
	auth_txn_free(s->auth);
	s->auth = NULL;
	s->auth_summary[0] = '\0';
	for (i = 0; i < s->nups; i++)
		sess_up_release(s->ups[i], abort);
	s->nups = 0;
	sess_ops_free(s);
	memset(&s->sender, 0, sizeof(s->sender));
	s->sender_fwd[0] = '\0';
	s->first_rcpt[0] = '\0';
	s->declared_size = 0;
	s->body_8bit = 0;
	s->smtputf8 = 0;
	s->nrcpt_tried = s->nrcpt_ok = s->nrcpt_drop = 0;
	s->too_big = 0;
	s->hold_full = 0;
	s->upstream_lost = 0;
	buf_free(&s->held_head);
	sess_held_free(s);
	free(s->hdrf);
	s->hdrf = NULL;
}

static struct upstream *
sess_up_find(struct smtp_session *s, const char *domain)
{
	struct upstream *up;
	size_t i;

	for (i = 0; i < s->nups; i++)
		if (strcmp(s->ups[i]->domain, domain) == 0)
			return s->ups[i];
	if (s->nups >= SMTP_MAX_UPSTREAMS ||
	    s->nups_opened >= SMTP_MAX_SESSION_UPSTREAMS)
		return NULL;
	/*
	 * Bounded per session, so one connection repeating MAIL, RCPT and
	 * RSET cannot make the relay open connections without end.
	 */
	s->nups_opened++;
	up = xcalloc(1, sizeof(*up));
	up->sess = s;
	up->state = UP_CONNECTING;
	snprintf(up->domain, sizeof(up->domain), "%s", domain);
	s->ups[s->nups++] = up;
	up->client = smtp_client_new(s->loop, s->cfg->dns, &s->cfg->client,
	    domain, s->sender_fwd, s->declared_size, s->body_8bit,
	    sess_up_event, up);
	if (s->smtputf8)
		smtp_client_want_smtputf8(up->client);
	return up;
}

/* ---- RCPT completion ---- */

/* Reply to the RCPT in progress once every destination has replied. */
static void
sess_rcpt_check_done(struct smtp_session *s)
{
	const struct rcpt_op *bad = NULL;
	size_t i;

	if (s->state != SMTP_S_RCPT_WAIT)
		return;
	for (i = 0; i < s->nops; i++) {
		const struct rcpt_op *op = &s->ops[i];

		if (!op->done)
			return;
		if (op->reply.code >= 400 && (bad == NULL ||
		    (op->reply.code < 500 && bad->reply.code >= 500)))
			bad = op;
	}
	if (bad != NULL) {
		/*
		 * NOTE: a destination that accepted this recipient while
		 * another refused it keeps the RCPT; if its upstream also
		 * carries other recipients it gets the message too.
		 */
		sess_reply_upstream(s, &bad->reply, bad->dst);
		log_info("sid=%s event=rcpt result=refused code=%d", s->id,
		    bad->reply.code);
	} else {
		for (i = 0; i < s->nops; i++)
			s->ops[i].up->naccepted++;
		s->nrcpt_ok++;
		if (s->first_rcpt[0] == '\0')
			snprintf(s->first_rcpt, sizeof(s->first_rcpt), "%s",
			    s->rcpt_str);
		sess_reply(s, 250, "2.1.5", "Recipient ok, forwarded to %zu "
		    "destination%s", s->nops, s->nops == 1 ? "" : "s");
		/* The message line counts the destinations; refusals stay info. */
		log_debug("sid=%s event=rcpt result=accepted destinations=%zu",
		    s->id, s->nops);
	}
	sess_ops_free(s);
	sess_set_state(s, SMTP_S_MAIL);
	sess_process(s);
}

static void
sess_op_complete(struct rcpt_op *op, const struct smtp_reply *r)
{
	op->done = 1;
	op->reply = *r;
}

static void
sess_make_reply(struct smtp_reply *r, int code, const char *enh,
    const char *text)
{
	memset(r, 0, sizeof(*r));
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enh);
	snprintf(r->text, sizeof(r->text), "%s", text);
	r->local = 1;
}

/*
 * Send one destination's RCPT, unless its address needs SMTPUTF8 and the
 * destination did not take it: then the recipient fails in session with
 * 550 5.6.7 (RFC 6531 section 3.4), and no bounce is ever needed.
 */
static void
sess_op_send(struct smtp_session *s, struct rcpt_op *op)
{
	struct smtp_reply r;

	op->sent = 1;
	if ((idn_has_utf8(op->dst) || idn_has_utf8(s->sender_fwd)) &&
	    !smtp_client_smtputf8(op->up->client)) {
		sess_make_reply(&r, 550, "5.6.7", "The destination server does "
		    "not support SMTPUTF8, which this address needs");
		sess_op_complete(op, &r);
		return;
	}
	smtp_client_rcpt(op->up->client, op->dst);
}

/* Send the RCPTs queued for an upstream that just became ready. */
static void
sess_up_send_rcpts(struct smtp_session *s, struct upstream *up)
{
	size_t i;

	for (i = 0; i < s->nops; i++) {
		struct rcpt_op *op = &s->ops[i];

		if (op->up == up && !op->sent && !op->done)
			sess_op_send(s, op);
	}
}

/* Complete every unanswered op of an upstream with its failure. */
static void
sess_up_fail_ops(struct smtp_session *s, struct upstream *up)
{
	size_t i;

	for (i = 0; i < s->nops; i++)
		if (s->ops[i].up == up && !s->ops[i].done)
			sess_op_complete(&s->ops[i], &up->reply);
}


/* Start forwarding the current RCPT to its destinations. */
void
sess_rcpt_forward(struct smtp_session *s, const char *const *dsts,
    size_t ndsts)
{
	struct addr d;
	size_t i;

	sess_ops_free(s);
	/* Sized per RCPT: an idle session keeps no room for destinations. */
	s->ops = xcalloc(ndsts < SMTP_MAX_OPS ? ndsts : SMTP_MAX_OPS,
	    sizeof(*s->ops));
	for (i = 0; i < ndsts && i < SMTP_MAX_OPS; i++) {
		struct rcpt_op *op = &s->ops[s->nops++];

		memset(op, 0, sizeof(*op));
		/* Only a parsed and re-formatted address goes on the wire. */
		if (addr_parse_mailbox(&d, dsts[i]) != ADDR_OK || d.null ||
		    addr_format(&d, op->dst, sizeof(op->dst)) < 0) {
			struct smtp_reply r;

			sess_make_reply(&r, 451, "4.3.5",
			    "Invalid destination in the routing rule");
			sess_op_complete(op, &r);
			continue;
		}
		/* The destination's MX is looked up by its A-label form. */
		if (idn_to_alabel(d.domain, d.domain, sizeof(d.domain)) < 0 ||
		    addr_format(&d, op->dst, sizeof(op->dst)) < 0) {
			struct smtp_reply r;

			sess_make_reply(&r, 451, "4.3.5",
			    "Invalid destination domain in the routing rule");
			sess_op_complete(op, &r);
			continue;
		}
		op->up = sess_up_find(s, d.domain);
		if (op->up == NULL) {
			struct smtp_reply r;

			if (s->nups_opened >= SMTP_MAX_SESSION_UPSTREAMS)
				sess_make_reply(&r, 452, "4.5.3", "Too many "
				    "destinations in one session, send this "
				    "recipient again in a new session");
			else
				sess_make_reply(&r, 452, "4.5.3", "Too many "
				    "destination domains in one transaction, "
				    "send this recipient again in a new "
				    "transaction");
			sess_op_complete(op, &r);
			continue;
		}
		switch (op->up->state) {
		case UP_READY:
			sess_op_send(s, op);
			break;
		case UP_FAILED:
			sess_op_complete(op, &op->up->reply);
			break;
		case UP_CONNECTING:
			/*
			 * The client sends it right behind MAIL when the
			 * server offers PIPELINING, saving a round trip.  A
			 * UTF-8 address waits for READY, because only the
			 * EHLO reply shows whether SMTPUTF8 is offered.
			 */
			if (!idn_has_utf8(op->dst) &&
			    !idn_has_utf8(s->sender_fwd)) {
				op->sent = 1;
				smtp_client_rcpt(op->up->client, op->dst);
			}
			break;
		default:
			break;	/* sent when the upstream is ready */
		}
	}
	sess_set_state(s, SMTP_S_RCPT_WAIT);
	sess_rcpt_check_done(s);
}

void
sess_route_done(void *arg, const struct route_result *res)
{
	struct smtp_session *s = arg;
	const struct route_rule *rule = res->rule;

	s->lookup = NULL;
	switch (res->verdict) {
	case ROUTE_FORWARD:
		sess_rcpt_forward(s, (const char *const *)rule->dsts,
		    rule->ndsts);
		return;
	case ROUTE_REJECT:
		sess_reply(s, 550, "5.2.1", "%s", rule->message[0] ?
		    rule->message : "This address does not accept mail");
		log_info("sid=%s event=rcpt result=rule-reject", s->id);
		break;
	case ROUTE_DROP:
		s->nrcpt_drop++;
		if (s->first_rcpt[0] == '\0')
			snprintf(s->first_rcpt, sizeof(s->first_rcpt), "%s",
			    s->rcpt_str);
		sess_reply(s, 250, "2.1.5", "Recipient ok");
		log_info("sid=%s event=rcpt result=rule-drop", s->id);
		break;
	case ROUTE_NO_RULE:
		sess_reply(s, 550, "5.1.1", "No such recipient here");
		log_info("sid=%s event=rcpt result=no-rule", s->id);
		break;
	case ROUTE_NOT_OURS:
		sess_reply(s, 550, "5.7.1", "Relaying denied: this relay does "
		    "not route mail for that domain");
		log_info("sid=%s event=rcpt result=not-ours", s->id);
		break;
	case ROUTE_TEMPFAIL:
		sess_reply(s, 451, res->enhanced, "%s, try again later",
		    res->reason);
		log_info("sid=%s event=rcpt result=tempfail reason=\"%s\"",
		    s->id, res->reason);
		break;
	}
	sess_set_state(s, SMTP_S_MAIL);
	sess_process(s);
}

/* ---- DATA ---- */

/* The "with" protocol of a Received field (RFC 3848). */
static const char *
sess_protocol(const struct smtp_session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->smtputf8)	/* RFC 6531 section 3.7.3 */
		return s->ssl != NULL ? "UTF8SMTPS" : "UTF8SMTP";
	return s->ssl != NULL ? "ESMTPS" : "ESMTP";
}

/* Format the Received field (RFC 5321 section 4.4) into out; 0 if none. */
static size_t
sess_received(struct smtp_session *s, char *out, size_t outsz)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (s->nrcpt_ok + s->nrcpt_drop == 1)
		n = snprintf(out, outsz, "Received: from %s ([%s])\r\n"
		    "\tby %s with %s id %s\r\n\tfor <%s>; %s\r\n", s->helo,
		    s->peer_ip, s->cfg->hostname, sess_protocol(s),
		    s->id, s->first_rcpt, date);
	else
		n = snprintf(out, outsz, "Received: from %s ([%s])\r\n"
		    "\tby %s with %s id %s; %s\r\n", s->helo, s->peer_ip,
		    s->cfg->hostname, sess_protocol(s), s->id, date);
	return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}

/*
 * Write the fields added in front of the message to a destination:
 * Authentication-Results (RFC 8601 section 5) above Received.
 */
static void
sess_write_head(struct smtp_session *s, struct upstream *up)
{
	char hdr[AUTH_HEADER_MAX];
	size_t n;

	if (s->auth != NULL &&
	    (n = auth_header(s->auth, hdr, sizeof(hdr))) > 0)
		smtp_client_write(up->client, hdr, n);
	if ((n = sess_received(s, hdr, sizeof(hdr))) > 0)
		smtp_client_write(up->client, hdr, n);
}

void
sess_spf_ready(void *arg)
{
	sess_data_check_ready(arg);
}

/* All upstreams replied to DATA: start the message or reject it. */
void
sess_data_check_ready(struct smtp_session *s)
{
	const struct upstream *bad = NULL;
	size_t i;

	if (s->state != SMTP_S_DATA_WAIT)
		return;
	if (s->auth != NULL && !auth_spf_done(s->auth))
		return;		/* the header carries the SPF result */
	for (i = 0; i < s->nups; i++) {
		const struct upstream *up = s->ups[i];

		if (up->state == UP_DATA_WAIT)
			return;
		if (up->state == UP_FAILED && (bad == NULL ||
		    (up->reply.code < 500 && bad->reply.code >= 500)))
			bad = up;
	}
	if (bad != NULL) {
		sess_reply_upstream(s, &bad->reply, NULL);
		log_info("sid=%s event=data result=refused code=%d", s->id,
		    bad->reply.code);
		sess_txn_reset(s, 1);
		sess_set_state(s, SMTP_S_READY);
		sess_process(s);
		return;
	}
	if (s->cfg->hold) {
		/*
		 * The data as it goes out is at most twice the message bytes
		 * (dot-stuffing, bare LF made CRLF), and one chunk may pass
		 * the limit before the upstreams are closed.
		 */
		buf_init(&s->held, 2 * s->cfg->max_size +
		    DATA_SCAN_OUT(SMTP_IN_CAP));
	} else {
		for (i = 0; i < s->nups; i++)
			sess_write_head(s, s->ups[i]);
	}
	data_scan_init(&s->scan);
	if (s->hdrf == NULL)
		s->hdrf = xmalloc(sizeof(*s->hdrf));
	hdrfilter_init(s->hdrf, s->cfg->hostname);
	s->data_started = ev_now(s->loop);
	s->scan.normalize = s->cfg->normalize_bare_eol;
	sess_reply(s, 354, "2.0.0", "Start mail input; end with "
	    "<CRLF>.<CRLF>");
	sess_set_state(s, SMTP_S_DATA);
	sess_process(s);
}

/* Non-zero if the message has a bare CR or LF and those are refused. */
static int
sess_bare_refused(const struct smtp_session *s)
{
	return !s->scan.normalize && (s->scan.bare_cr || s->scan.bare_lf);
}

/*
 * Non-zero if the sender declared SMTPUTF8, the header section contains
 * UTF-8 (RFC 6532) and a destination took MAIL without SMTPUTF8: such a
 * message must not be delivered there (RFC 6531 section 3.4).
 */
static int
sess_utf8_refused(const struct smtp_session *s)
{
	size_t i;

	if (!s->smtputf8 || !s->scan.header_8bit)
		return 0;
	for (i = 0; i < s->nups; i++)
		if (s->ups[i]->client != NULL &&
		    !smtp_client_smtputf8(s->ups[i]->client))
			return 1;
	return 0;
}

/* Reply for a destination lost while the message was on its way. */
static void
sess_reply_lost(struct smtp_session *s)
{
	const struct upstream *bad = NULL;
	size_t i;

	for (i = 0; i < s->nups && bad == NULL; i++)
		if (s->ups[i]->state == UP_FAILED)
			bad = s->ups[i];
	if (bad != NULL)
		sess_reply_upstream(s, &bad->reply, NULL);
	else
		sess_reply(s, 451, "4.4.2", "Connection to the destination lost");
}

/* Refuse the message: the destinations are closed without the dot. */
static void
sess_message_refused(struct smtp_session *s)
{
	log_info("sid=%s event=message result=refused bytes=%llu", s->id,
	    (unsigned long long)s->scan.bytes);
	sess_txn_reset(s, 1);
	sess_set_state(s, SMTP_S_READY);
}

static void
sess_send_dots(struct smtp_session *s)
{
	size_t i;

	sess_set_state(s, SMTP_S_END_WAIT);
	for (i = 0; i < s->nups; i++) {
		s->ups[i]->state = UP_END_WAIT;
		smtp_client_end(s->ups[i]->client);
	}
}

/* Bytes handed to a destination's buffer at a time in hold mode. */
#define SMTP_RELEASE_PIECE	(64 * 1024)

/*
 * Hold mode: write the fields added in front of the message and the held
 * data to every destination, as far as each one's buffer allows, and
 * send the dots once all of it is written.  Runs again on each DRAIN.
 */
static void
sess_release_pump(struct smtp_session *s)
{
	const struct buf *part;
	size_t i, total, at, n;
	struct upstream *up;
	int done = 1;

	if (s->state != SMTP_S_RELEASE)
		return;
	if (s->upstream_lost) {
		sess_reply_lost(s);
		sess_message_refused(s);
		sess_process(s);
		return;
	}
	total = buf_avail(&s->held_head) + buf_avail(&s->held);
	for (i = 0; i < s->nups; i++) {
		up = s->ups[i];
		while (!up->blocked && up->sent < total) {
			at = up->sent;
			part = &s->held_head;
			if (at >= buf_avail(part)) {
				at -= buf_avail(part);
				part = &s->held;
			}
			n = buf_avail(part) - at;
			if (n > SMTP_RELEASE_PIECE)
				n = SMTP_RELEASE_PIECE;
			if (smtp_client_write(up->client, buf_head(part) + at,
			    n) == 0)
				up->blocked = 1;
			up->sent += n;
		}
		if (up->sent < total)
			done = 0;
	}
	if (done) {
		sess_held_free(s);
		sess_send_dots(s);
	}
}

/*
 * Hold mode, after an accepting verdict: put the relay's ARC set,
 * Authentication-Results with every result, and Received in front of the
 * held message, then release it.
 */
static void
sess_release(struct smtp_session *s)
{
	char hdr[AUTH_HEADER_MAX];
	const char *skip_reason = NULL;
	size_t i, n;

	buf_init(&s->held_head, 64 * 1024);
	if (s->auth != NULL) {
		n = strlen(s->auth_summary);
		switch (auth_seal(s->auth, &s->held_head, &skip_reason)) {
		case 1:
			snprintf(s->auth_summary + n,
			    sizeof(s->auth_summary) - n, " arc-sealed=yes");
			break;
		case -1:
			log_info("sid=%s event=arc-seal result=skipped "
			    "reason=\"%s\"", s->id, skip_reason);
			snprintf(s->auth_summary + n,
			    sizeof(s->auth_summary) - n, " arc-sealed=no");
			break;
		}
		if ((n = auth_header(s->auth, hdr, sizeof(hdr))) > 0)
			buf_append(&s->held_head, hdr, n);
	}
	if ((n = sess_received(s, hdr, sizeof(hdr))) > 0)
		buf_append(&s->held_head, hdr, n);
	for (i = 0; i < s->nups; i++)
		s->ups[i]->sent = 0;
	sess_set_state(s, SMTP_S_RELEASE);
	sess_release_pump(s);
}

/* The message may go: release it in hold mode, else send the dots. */
static void
sess_deliver(struct smtp_session *s)
{
	if (s->cfg->hold)
		sess_release(s);
	else
		sess_send_dots(s);
}

/*
 * The authentication verdict: refuse the message before any destination
 * has the final dot (RFC 7489 section 6.6.2 prefers rejection during the
 * SMTP session), or send the dots.
 */
static void
sess_auth_done(void *arg, const struct auth_verdict *v)
{
	struct smtp_session *s = arg;
	const char *verdict = "accept";

	if (v->reject)
		verdict = v->code >= 500 ? "reject" : "defer";
	/* An accepted message's results go on its event=message line. */
	log_msg(v->reject ? LOG_LVL_INFO : LOG_LVL_DEBUG,
	    "sid=%s event=authentication %s verdict=%s", s->id, v->summary,
	    verdict);
	snprintf(s->auth_summary, sizeof(s->auth_summary), " %s", v->summary);
	if (v->reject) {
		sess_reply(s, v->code, v->enhanced, "%s", v->text);
		sess_message_refused(s);
	} else if (s->upstream_lost) {
		sess_reply_lost(s);
		sess_message_refused(s);
	} else {
		sess_deliver(s);
		return;
	}
	sess_process(s);
}

/* The final dot arrived: send it on, or refuse the message. */
static void
sess_data_end(struct smtp_session *s)
{
	if (sess_bare_refused(s) || s->too_big || s->hold_full ||
	    s->upstream_lost || s->scan.long_line ||
	    s->scan.received > SMTP_MAX_RECEIVED || sess_utf8_refused(s)) {
		if (sess_utf8_refused(s))
			sess_reply(s, 550, "5.6.7", "The message has UTF-8 "
			    "header fields and a destination server does not "
			    "support SMTPUTF8");
		else if (s->scan.received > SMTP_MAX_RECEIVED)
			sess_reply(s, 554, "5.4.6", "Mail loop: more than %d "
			    "Received header fields", SMTP_MAX_RECEIVED);
		else if (s->hold_full)
			sess_reply(s, 452, "4.3.1", "Insufficient system "
			    "storage: too many messages in progress, try "
			    "again later");
		else if (s->too_big)
			sess_reply(s, 552, "5.3.4", "Message too big, the limit "
			    "is %zu bytes", s->cfg->max_size);
		else if (s->upstream_lost)
			sess_reply_lost(s);
		else if (s->scan.long_line)
			sess_reply(s, 550, "5.6.0", "Message has a line longer "
			    "than %d octets (RFC 5321 section 4.5.3.1.6)",
			    DATA_LINE_MAX);
		else
			sess_reply(s, 550, "5.6.0", "Message contains a bare "
			    "CR or LF; lines must end with CRLF (RFC 5321 "
			    "section 2.3.8)");
		sess_message_refused(s);
		return;
	}
	if (s->nups == 0) {
		/* Only "drop" recipients: accept and discard. */
		sess_reply(s, 250, "2.0.0", "Ok");
		log_info("sid=%s event=message result=dropped bytes=%llu",
		    s->id, (unsigned long long)s->scan.bytes);
		sess_txn_reset(s, 0);
		sess_set_state(s, SMTP_S_READY);
		return;
	}
	if (s->auth != NULL) {
		sess_set_state(s, SMTP_S_AUTH_WAIT);
		auth_finish(s->auth, sess_auth_done, s);
		return;
	}
	sess_deliver(s);
}

/* Every upstream replied to the final dot: reply to the sender. */
static void
sess_end_check_done(struct smtp_session *s)
{
	const struct upstream *bad = NULL;
	size_t i;

	if (s->state != SMTP_S_END_WAIT)
		return;
	for (i = 0; i < s->nups; i++) {
		const struct upstream *up = s->ups[i];

		if (up->state == UP_END_WAIT)
			return;
		if (up->reply.code >= 400 && (bad == NULL ||
		    (up->reply.code < 500 && bad->reply.code >= 500)))
			bad = up;
	}
	if (bad != NULL)
		sess_reply_upstream(s, &bad->reply, NULL);
	else if (s->nups == 1)
		sess_reply_upstream(s, &s->ups[0]->reply, NULL);
	else
		sess_reply(s, 250, "2.0.0", "Ok: accepted by all %zu "
		    "destinations", s->nups);
	log_info("sid=%s event=message result=%s bytes=%llu destinations=%zu "
	    "bare-eol-normalized=%lu%s", s->id, bad ? "refused" : "delivered",
	    (unsigned long long)s->scan.bytes, s->nups, s->scan.normalized,
	    s->auth_summary);
	sess_txn_reset(s, 0);
	sess_set_state(s, SMTP_S_READY);
	sess_process(s);
}

/*
 * Feed buffered input to the DATA scanner and the upstreams.  Returns 1
 * if input was consumed, 0 if the session must wait (no input, or an
 * upstream is above its high-water mark).
 */
int
sess_data_input(struct smtp_session *s)
{
	static char chunk[DATA_SCAN_OUT(SMTP_IN_CAP)];
	static char filtered[HDRFILTER_OUT(DATA_SCAN_OUT(SMTP_IN_CAP))];
	const char *data;
	size_t used, outlen, i;
	int done;

	if (buf_avail(&s->in) == 0)
		return 0;
	for (i = 0; i < s->nups; i++)
		if (s->ups[i]->blocked)
			return 0;
	used = data_scan(&s->scan, buf_head(&s->in), buf_avail(&s->in),
	    chunk, &outlen, &done);
	buf_consume(&s->in, used);
	data = chunk;
	if (!s->hdrf->done) {
		/* RFC 8601 section 5: no field may claim this relay's id. */
		outlen = hdrfilter_run(s->hdrf, chunk, outlen, filtered);
		if (done)
			outlen += hdrfilter_finish(s->hdrf, filtered + outlen);
		data = filtered;
		if (s->hdrf->done && s->hdrf->removed > 0)
			log_info("sid=%s event=authres-removed fields=%u", s->id,
			    s->hdrf->removed);
	}
	if (s->scan.bytes > s->cfg->max_size && !s->too_big) {
		s->too_big = 1;
		/* Close the upstreams without the dot: nothing is delivered. */
		for (i = 0; i < s->nups; i++)
			sess_up_release(s->ups[i], 1);
		s->nups = 0;
	}
	if ((sess_bare_refused(s) || s->scan.long_line ||
	    s->scan.received > SMTP_MAX_RECEIVED) && s->nups > 0) {
		for (i = 0; i < s->nups; i++)
			sess_up_release(s->ups[i], 1);
		s->nups = 0;
	}
	if (s->auth != NULL && outlen > 0 && s->nups > 0)
		auth_data(s->auth, data, outlen);
	if (s->cfg->hold) {
		if (s->nups > 0 && outlen > held_budget_left(s)) {
			/* Nothing is delivered: the sender retries later. */
			s->hold_full = 1;
			for (i = 0; i < s->nups; i++)
				sess_up_release(s->ups[i], 1);
			s->nups = 0;
			sess_held_free(s);
			log_warn("sid=%s event=hold-budget-exhausted held=%zu "
			    "budget=%zu", s->id, held_total,
			    s->cfg->hold_budget);
		}
		if (s->nups > 0 && outlen > 0) {
			if (buf_append(&s->held, data, outlen) < 0)
				fatal_invariant("held message past its bound");
			held_total += outlen;
		}
		if (done)
			sess_data_end(s);
		return 1;
	}
	for (i = 0; i < s->nups && !s->too_big; i++) {
		struct upstream *up = s->ups[i];

		if (up->state == UP_DATA && outlen > 0 &&
		    smtp_client_write(up->client, data, outlen) == 0)
			up->blocked = 1;
	}
	if (done)
		sess_data_end(s);
	return 1;
}

/* ---- upstream events ---- */

/* Replace a reply that has no meaning at this point of the dialogue. */
static void
sess_invalid_reply(struct smtp_reply *r)
{
	sess_make_reply(r, 451, "4.4.2", "Invalid reply from the destination "
	    "server");
}

static struct rcpt_op *
sess_next_sent_op(struct smtp_session *s, struct upstream *up)
{
	size_t i;

	for (i = 0; i < s->nops; i++)
		if (s->ops[i].up == up && s->ops[i].sent && !s->ops[i].done)
			return &s->ops[i];
	return NULL;
}

static void
sess_up_failed(struct smtp_session *s, struct upstream *up,
    const struct smtp_reply *r)
{
	up->reply = *r;
	up->state = UP_FAILED;
	up->blocked = 0;
	switch (s->state) {
	case SMTP_S_RCPT_WAIT:
		sess_up_fail_ops(s, up);
		sess_rcpt_check_done(s);
		break;
	case SMTP_S_DATA_WAIT:
		sess_data_check_ready(s);
		break;
	case SMTP_S_DATA:
		s->upstream_lost = 1;
		sess_process(s);
		break;
	case SMTP_S_AUTH_WAIT:
		s->upstream_lost = 1;	/* answered with the verdict */
		break;
	case SMTP_S_RELEASE:
		s->upstream_lost = 1;
		sess_release_pump(s);
		break;
	case SMTP_S_END_WAIT:
		sess_end_check_done(s);
		break;
	default:
		break;
	}
}

void
sess_up_event(void *arg, enum smtp_client_event ev, const struct smtp_reply *r)
{
	struct upstream *up = arg;
	struct smtp_session *s = up->sess;
	struct rcpt_op *op;

	switch (ev) {
	case SMTP_CLIENT_READY:
		up->state = UP_READY;
		sess_up_send_rcpts(s, up);
		sess_rcpt_check_done(s);
		break;
	case SMTP_CLIENT_FAILED:
	case SMTP_CLIENT_LOST:
		up->client = NULL;	/* the client frees itself */
		sess_up_failed(s, up, r);
		break;
	case SMTP_CLIENT_RCPT:
		if ((op = sess_next_sent_op(s, up)) == NULL)
			fatal_invariant("RCPT reply without a pending RCPT");
		sess_op_complete(op, r);
		if (r->code < 200 || (r->code >= 300 && r->code < 400))
			sess_invalid_reply(&op->reply);
		sess_rcpt_check_done(s);
		break;
	case SMTP_CLIENT_DATA:
		if (r->code == 354)
			up->state = UP_DATA;
		else {
			/* RFC 5321 section 4.3.2: only 354 lets data follow. */
			up->reply = *r;
			if (r->code < 400)
				sess_invalid_reply(&up->reply);
			up->state = UP_FAILED;
		}
		sess_data_check_ready(s);
		break;
	case SMTP_CLIENT_DRAIN:
		up->blocked = 0;
		if (s->state == SMTP_S_RELEASE)
			sess_release_pump(s);
		else
			sess_process(s);
		break;
	case SMTP_CLIENT_END:
		up->reply = *r;
		if (r->code < 200 || (r->code >= 300 && r->code < 400))
			sess_invalid_reply(&up->reply);
		up->state = UP_DONE;
		sess_end_check_done(s);
		break;
	}
}
