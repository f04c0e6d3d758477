/*
 * The inbound SMTP session, shared by the two files that implement it:
 * smtp_server.c (connection, commands, replies, TLS) and smtp_relay.c
 * (the outbound sessions a transaction fans out to, DATA streaming and
 * the answers to RCPT and the final dot).  Not for other modules: they
 * use smtp_server.h.
 */
#ifndef ROUTER_SMTP_SESSION_H
#define ROUTER_SMTP_SESSION_H

#include <arpa/inet.h>
#include <stddef.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "buf.h"
#include "route.h"
#include "smtp_client.h"
#include "smtp_data.h"
#include "smtp_server.h"

struct auth_txn;
struct hdrfilter;

#define SMTP_LINE_MAX		512	/* command line, RFC 5321 4.5.3.1.4 */
#define SMTP_IN_CAP		65536
#define SMTP_OUT_CAP		65536
#define SMTP_MAX_UPSTREAMS	8	/* destination domains per transaction */
#define SMTP_MAX_SESSION_UPSTREAMS 100	/* outbound sessions per inbound one */
#define SMTP_MAX_OPS		32	/* destinations of one RCPT */
#define SMTP_MAX_RECEIVED	50	/* Received fields before a loop is assumed */
#define SMTP_MAX_ERRORS		20	/* error replies before the session ends */
#define SMTP_DATA_TIMEOUT	180.	/* between data blocks, RFC 5321 4.5.3.2.6 */
#define SMTP_DATA_DEADLINE	600.	/* for the whole message data */
#define SMTP_IP_BUCKETS		1024
#define SMTP_ADDR_BUF		512	/* a formatted address, quoting included */

enum smtp_state {
	SMTP_S_INIT,
	SMTP_S_READY,
	SMTP_S_MAIL,
	SMTP_S_RCPT_WAIT,
	SMTP_S_DATA_WAIT,
	SMTP_S_DATA,
	SMTP_S_AUTH_WAIT,
	SMTP_S_RELEASE,		/* hold mode: the held message goes out */
	SMTP_S_END_WAIT,
	SMTP_S_TLS_HANDSHAKE,
	SMTP_S_CLOSING,
};

enum upstream_state {
	UP_CONNECTING,
	UP_READY,
	UP_DATA_WAIT,
	UP_DATA,
	UP_END_WAIT,
	UP_DONE,		/* answered the final dot */
	UP_FAILED,		/* reply holds the failure */
};

struct smtp_session;

struct upstream {
	struct smtp_session	*sess;
	struct smtp_client	*client;
	enum upstream_state	 state;
	char			 domain[ADDR_DOMAIN_MAX + 1];
	size_t			 naccepted;	/* recipients accepted here */
	int			 blocked;	/* output above high water */
	size_t			 sent;		/* hold mode: bytes written */
	struct smtp_reply	 reply;		/* failure, or answer to "." */
};

/* One destination of the RCPT being processed. */
struct rcpt_op {
	struct upstream		*up;
	char			 dst[SMTP_ADDR_BUF];
	int			 sent;
	int			 done;
	struct smtp_reply	 reply;
};

struct smtp_session {
	struct smtp_session	*prev, *next;	/* all sessions of this worker */
	struct ev_loop		*loop;
	const struct smtp_server_config *cfg;
	int			 fd;
	char			 id[17];
	char			 peer_ip[INET6_ADDRSTRLEN];
	enum smtp_state		 state;
	const char		*end_reason;
	ev_io			 rio, wio;
	ev_timer		 idle;
	ev_timer		 reaper;
	struct buf		 in, out;
	int			 discarding_line;	/* skipping an overlong line */
	int			 in_process;	/* sess_process() is running */
	unsigned		 nerrors;	/* 4xx and 5xx replies sent */
	ev_timer		 deadline;	/* whole session */
	struct ip_count		*ip;
	int			 esmtp;
	char			 helo[256];
	SSL			*ssl;		/* after STARTTLS */
	int			 read_wants_write;	/* TLS read needs EV_WRITE */
	int			 write_wants_read;	/* TLS write needs EV_READ */
	int			 tls_plain_pending;	/* 220 not yet written */
	char			 tls_desc[96];

	/* The transaction. */
	struct auth_txn		*auth;		/* SPF, DKIM, DMARC; NULL if off */
	char			 auth_summary[272];	/* " spf=... dkim=..." */
	struct addr		 sender;
	char			 sender_fwd[SMTP_ADDR_BUF];	/* SRS form */
	size_t			 declared_size;
	int			 body_8bit;
	int			 smtputf8;	/* MAIL carried SMTPUTF8 (RFC 6531) */
	size_t			 nrcpt_tried;
	size_t			 nrcpt_ok;
	size_t			 nrcpt_drop;
	char			 first_rcpt[SMTP_ADDR_BUF];
	struct upstream		*ups[SMTP_MAX_UPSTREAMS];
	size_t			 nups_opened;	/* over the whole session */
	size_t			 nups;

	/* The RCPT in progress. */
	struct addr		 rcpt;
	char			 rcpt_str[SMTP_ADDR_BUF];
	struct route_lookup	*lookup;
	struct rcpt_op		*ops;		/* allocated per RCPT */
	size_t			 nops;

	/* DATA */
	struct data_scan	 scan;
	double			 data_started;	/* ev_now() at the 354 */
	int			 too_big;
	int			 hold_full;	/* the worker's hold budget ran out */
	int			 upstream_lost;
	/*
	 * Hold mode: the header fields added in front of the message, and
	 * the message data as it goes out (dot-stuffed, without the final
	 * dot), bounded by the size limit.
	 */
	struct buf		 held_head;
	struct buf		 held;
	/* Drops forged Authentication-Results fields; NULL outside DATA. */
	struct hdrfilter	*hdrf;
};

/* Open sessions per client address, to enforce the per-client limit. */
struct ip_count {
	struct ip_count	*next;
	unsigned	 n;
	char		 ip[INET6_ADDRSTRLEN];
};


/* smtp_server.c */
void	sess_set_state(struct smtp_session *, enum smtp_state);
void	sess_reply(struct smtp_session *, int code, const char *enhanced,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	sess_reply_upstream(struct smtp_session *, const struct smtp_reply *,
	    const char *private_addr);
void	sess_process(struct smtp_session *);

/* smtp_relay.c */
void	sess_up_release(struct upstream *, int abort);
void	sess_txn_reset(struct smtp_session *, int abort);
void	sess_rcpt_forward(struct smtp_session *, const char *const *dsts,
	    size_t ndsts);
void	sess_route_done(void *arg, const struct route_result *);
void	sess_spf_ready(void *arg);
void	sess_data_check_ready(struct smtp_session *);
int	sess_data_input(struct smtp_session *);
void	sess_up_event(void *arg, enum smtp_client_event,
	    const struct smtp_reply *);

#endif
