/*
 * Inbound SMTP: the session a sending MTA holds with the relay.  Each
 * accepted recipient is forwarded in real time through one outbound
 * session per destination domain (smtp_client.h); the sender is answered
 * only with the destinations' answers.
 */
#ifndef ROUTER_SMTP_SERVER_H
#define ROUTER_SMTP_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "smtp_client.h"

struct auth_ctx;
struct dns_ctx;
struct route_ctx;
struct srs;

struct smtp_server_config {
	const char		*hostname;
	const char		*postmaster;	/* where postmaster mail goes, or NULL */
	size_t			 max_size;	/* message bytes, SIZE limit */
	size_t			 max_rcpts;	/* recipients per transaction */
	double			 idle_timeout;	/* seconds waiting for the client */
	double			 session_timeout;	/* seconds per session, 0: none */
	size_t			 max_sessions;	/* per worker, 0: no limit */
	size_t			 max_per_ip;	/* per client address and worker */
	int			 normalize_bare_eol;	/* else refuse bare CR/LF */
	/* Keep each message in memory until the verdict (needs auth). */
	int			 hold;
	size_t			 hold_budget;	/* bytes held per worker at most */
	struct smtp_client_config client;
	const struct srs	*srs;
	struct route_ctx	*route;
	struct dns_ctx		*dns;
	SSL_CTX			*tls_ctx;	/* NULL: no STARTTLS */
	struct auth_ctx		*auth;		/* NULL: no SPF, DKIM, DMARC */
};

/*
 * Start a session on an accepted, non-blocking socket.  The session owns
 * fd from now on and frees itself when it ends.
 */
void	smtp_server_accept(struct ev_loop *, const struct smtp_server_config *,
	    int fd, const struct sockaddr *, socklen_t);

/* Close idle sessions with 421; the others after their transaction. */
void	smtp_server_shutdown(void);

/* Sessions currently open in this process. */
size_t	smtp_server_sessions(void);

#endif
