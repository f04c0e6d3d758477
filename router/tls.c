/*
 * OpenSSL glue.  Sockets stay non-blocking; every call maps OpenSSL's
 * SSL_ERROR_WANT_* results to the event the caller must wait for.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"

void
tls_last_error(char *out, size_t outsz)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, outsz, "unknown TLS error");
	else
		ERR_error_string_n(e, out, outsz);
	ERR_clear_error();
}

static SSL_CTX *
tls_ctx_common(const SSL_METHOD *method, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		tls_last_error(err, errsz);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * Output buffers move when they grow, and writes may be partial
	 * like write(2).
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	return ctx;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, char *err,
    size_t errsz)
{
	SSL_CTX *ctx = tls_ctx_common(TLS_server_method(), err, errsz);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_last_error(err, errsz);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tls_client_ctx_new(char *err, size_t errsz)
{
	SSL_CTX *ctx = tls_ctx_common(TLS_client_method(), err, errsz);

	if (ctx == NULL)
		return NULL;
	/* Verification is recorded, not enforced: opportunistic TLS. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		ERR_clear_error();
	return ctx;
}

static enum tls_io
tls_result(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_NONE:
		return TLS_IO_OK;
	case SSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_IO_CLOSED;
	default:
		return TLS_IO_ERROR;
	}
}

enum tls_io
tls_handshake(SSL *ssl)
{
	ERR_clear_error();
	return tls_result(ssl, SSL_do_handshake(ssl));
}

enum tls_io
tls_read(SSL *ssl, void *buf, size_t len, size_t *n)
{
	enum tls_io r;

	ERR_clear_error();
	r = tls_result(ssl, SSL_read_ex(ssl, buf, len, n) == 1 ? 1 : 0);
	if (r != TLS_IO_OK)
		*n = 0;
	return r;
}

enum tls_io
tls_write(SSL *ssl, const void *buf, size_t len, size_t *n)
{
	enum tls_io r;

	ERR_clear_error();
	r = tls_result(ssl, SSL_write_ex(ssl, buf, len, n) == 1 ? 1 : 0);
	if (r != TLS_IO_OK)
		*n = 0;
	return r;
}

void
tls_describe(SSL *ssl, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s:%s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}
