/*
 * TLS with OpenSSL for both directions of the relay: the server context
 * behind STARTTLS (RFC 3207) and the client context for opportunistic TLS
 * to destinations, plus non-blocking read, write and handshake helpers
 * for a socket driven by libev.
 */
#ifndef ROUTER_TLS_H
#define ROUTER_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

enum tls_io {
	TLS_IO_OK,		/* done, or bytes transferred */
	TLS_IO_WANT_READ,	/* retry when the socket is readable */
	TLS_IO_WANT_WRITE,	/* retry when the socket is writable */
	TLS_IO_CLOSED,		/* the peer closed the connection */
	TLS_IO_ERROR,		/* protocol or I/O error: drop the connection */
};

/*
 * Server context with TLS 1.2 as the minimum.  Returns NULL with a
 * message in err when the certificate or key cannot be loaded or do not
 * match.
 */
SSL_CTX		*tls_server_ctx_new(const char *cert_file, const char *key_file,
		    char *err, size_t errsz);
/*
 * Client context for opportunistic TLS: TLS 1.2 or later, the system CA
 * store loaded so the result can be logged, but an unverified certificate
 * does not stop delivery.
 */
SSL_CTX		*tls_client_ctx_new(char *err, size_t errsz);

/*
 * Client session on the connected socket fd, for STARTTLS to the MX host
 * name host.  The name goes out as SNI (RFC 6066) when it is a host name
 * in letters, digits, '-', '_' and '.', and is the name the certificate
 * must carry for tls_peer_verified().  The session starts in connect
 * state: tls_handshake() drives it.  Returns NULL with a message in err.
 */
SSL		*tls_client_new(SSL_CTX *, int fd, const char *host, char *err,
		    size_t errsz);
/*
 * Check the peer certificate once the handshake is done.  Returns 1 when
 * it chains to a trusted CA and names the host given to tls_client_new(),
 * else 0 with *reason set to OpenSSL's description of the failure (a
 * static string).
 */
int		 tls_peer_verified(SSL *, const char **reason);

/* Run the handshake one step. */
enum tls_io	 tls_handshake(SSL *);
/* Read into buf; *n is set to the bytes read on TLS_IO_OK. */
enum tls_io	 tls_read(SSL *, void *buf, size_t len, size_t *n);
/* Write from buf; *n is set to the bytes written on TLS_IO_OK. */
enum tls_io	 tls_write(SSL *, const void *buf, size_t len, size_t *n);
/*
 * Send the close_notify alert, without waiting for the peer's, before the
 * socket closes.  A failure is ignored because the connection ends anyway.
 */
void		 tls_shutdown(SSL *);
/* Describe the session for logs and Received: "TLSv1.3:CIPHER". */
void		 tls_describe(SSL *, char *out, size_t outsz);
/*
 * The last OpenSSL error queue entry as text, or the system error of a
 * failed socket call when the queue is empty, and clear the queue.
 */
void		 tls_last_error(char *out, size_t outsz);

#endif
