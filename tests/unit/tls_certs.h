/*
 * Certificates made at test time for the TLS tests: a CA, and keys with
 * certificates for host names, issued by that CA or self-signed.  Keys
 * are P-256 because they take far less time to generate than RSA keys.
 * The helpers live in a header because the Makefile builds each unit test
 * from its own source file.
 */
#ifndef TESTS_TLS_CERTS_H
#define TESTS_TLS_CERTS_H

#include <stdio.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct test_cert {
	EVP_PKEY	*key;
	X509		*cert;
};

/* Add the extension nid, in OpenSSL configuration syntax.  Returns 0 or -1. */
static int
test_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* Add the extensions of a CA, or of a server certificate for host. */
static int
test_cert_add_exts(X509 *cert, X509 *issuer, const char *host, int is_ca)
{
	char san[300];

	if (is_ca)
		return test_cert_add_ext(cert, issuer, NID_basic_constraints,
		    "critical,CA:TRUE") == 0 &&
		    test_cert_add_ext(cert, issuer, NID_key_usage,
		    "critical,keyCertSign,cRLSign") == 0 &&
		    test_cert_add_ext(cert, issuer, NID_subject_key_identifier,
		    "hash") == 0 ? 0 : -1;
	snprintf(san, sizeof(san), "DNS:%s", host);
	return test_cert_add_ext(cert, issuer, NID_basic_constraints,
	    "CA:FALSE") == 0 &&
	    test_cert_add_ext(cert, issuer, NID_subject_alt_name, san) == 0 &&
	    test_cert_add_ext(cert, issuer, NID_ext_key_usage,
	    "serverAuth") == 0 ? 0 : -1;
}

static void
test_cert_free(struct test_cert *c)
{
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	c->cert = NULL;
	c->key = NULL;
}

/*
 * Make a key and a certificate named host (subject CN and, unless is_ca,
 * the DNS name of subjectAltName), valid from an hour ago for a day.  It
 * is signed by issuer, or self-signed when issuer is NULL.  Returns 0, or
 * -1 with nothing left to free.
 */
static int
test_cert_make(struct test_cert *out, const char *host,
    const struct test_cert *issuer, int is_ca)
{
	static long serial = 1;
	X509_NAME *name;
	X509 *issuer_cert;

	out->key = EVP_EC_gen("P-256");
	out->cert = X509_new();
	if (out->key == NULL || out->cert == NULL)
		goto fail;
	issuer_cert = issuer != NULL ? issuer->cert : out->cert;
	name = X509_get_subject_name(out->cert);
	if (X509_set_version(out->cert, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(out->cert), serial++) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(out->cert), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(out->cert), 86400) == NULL ||
	    X509_set_pubkey(out->cert, out->key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(out->cert,
	    X509_get_subject_name(issuer_cert)) != 1)
		goto fail;
	if (test_cert_add_exts(out->cert, issuer_cert, host, is_ca) == -1)
		goto fail;
	if (X509_sign(out->cert, issuer != NULL ? issuer->key : out->key,
	    EVP_sha256()) == 0)
		goto fail;
	return 0;
fail:
	test_cert_free(out);
	return -1;
}

/*
 * Write the certificate and the key as PEM, the key readable by its
 * owner only.  Returns 0 or -1.
 */
static int
test_cert_write(const struct test_cert *c, const char *cert_path,
    const char *key_path)
{
	FILE *f;
	int ok;

	if ((f = fopen(cert_path, "w")) == NULL)
		return -1;
	ok = PEM_write_X509(f, c->cert);
	if (fclose(f) != 0 || ok != 1)
		return -1;
	if ((f = fopen(key_path, "w")) == NULL)
		return -1;
	fchmod(fileno(f), 0600);
	ok = PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || ok != 1)
		return -1;
	return 0;
}

#endif
