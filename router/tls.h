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

/* Run the handshake one step. */
enum tls_io	 tls_handshake(SSL *);
/* Read into buf; *n is set to the bytes read on TLS_IO_OK. */
enum tls_io	 tls_read(SSL *, void *buf, size_t len, size_t *n);
/* Write from buf; *n is set to the bytes written on TLS_IO_OK. */
enum tls_io	 tls_write(SSL *, const void *buf, size_t len, size_t *n);
/* Describe the session for logs and Received: "TLSv1.3:CIPHER". */
void		 tls_describe(SSL *, char *out, size_t outsz);
/* The last OpenSSL error queue entry as text, and clear the queue. */
void		 tls_last_error(char *out, size_t outsz);

#endif
