/*
 * OpenSSL glue.  Sockets stay non-blocking; every call maps OpenSSL's
 * SSL_ERROR_WANT_* results to the event the caller must wait for.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

void
tls_last_error(char *out, size_t outsz)
{
	unsigned long e = ERR_get_error();

	if (e == 0 && errno != 0)
		snprintf(out, outsz, "%s", strerror(errno));
	else if (e == 0)
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

/*
 * Whether name suits SNI: letters, digits, '-', '_' and '.', not empty,
 * and not an IPv4 literal, which RFC 6066 section 3 rules out.  A last
 * label of digits only marks the literal, since no top-level domain is
 * all digits.
 */
static int
tls_sni_name(const char *name)
{
	size_t i, len = strlen(name), last = 0;
	int digits_only = 1;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			last = i + 1;
			digits_only = 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (c < '0' || c > '9')
			digits_only = 0;
	}
	return last < len && !digits_only;
}

SSL *
tls_client_new(SSL_CTX *ctx, int fd, const char *host, char *err,
    size_t errsz)
{
	SSL *ssl;

	ERR_clear_error();
	errno = 0;
	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	if (SSL_set_fd(ssl, fd) != 1)
		goto fail;
	/* The certificate check that tls_peer_verified() reports. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, host) != 1)
		goto fail;
	if (tls_sni_name(host) && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto fail;
	SSL_set_connect_state(ssl);
	return ssl;
fail:
	tls_last_error(err, errsz);
	SSL_free(ssl);
	return NULL;
}

int
tls_peer_verified(SSL *ssl, const char **reason)
{
	long result;

	if (SSL_get0_peer_certificate(ssl) == NULL) {
		*reason = "no peer certificate";
		return 0;
	}
	/*
	 * The client context verifies with SSL_VERIFY_NONE, so OpenSSL
	 * records the first failure here instead of ending the handshake.
	 */
	result = SSL_get_verify_result(ssl);
	if (result != X509_V_OK) {
		*reason = X509_verify_cert_error_string(result);
		return 0;
	}
	*reason = "ok";
	return 1;
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
	errno = 0;
	return tls_result(ssl, SSL_do_handshake(ssl));
}

enum tls_io
tls_read(SSL *ssl, void *buf, size_t len, size_t *n)
{
	enum tls_io r;

	ERR_clear_error();
	errno = 0;
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
	errno = 0;
	r = tls_result(ssl, SSL_write_ex(ssl, buf, len, n) == 1 ? 1 : 0);
	if (r != TLS_IO_OK)
		*n = 0;
	return r;
}

void
tls_shutdown(SSL *ssl)
{
	ERR_clear_error();
	SSL_shutdown(ssl);
	ERR_clear_error();
}

void
tls_describe(SSL *ssl, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s:%s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}
