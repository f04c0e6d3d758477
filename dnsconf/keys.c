/*
 * Reading and writing dnsconf's key files.  Secret files are created with
 * mode 0600 and O_EXCL, so keygen never overwrites a key by accident
 * (--force truncates instead), and every loaded key is checked for
 * consistency before it signs anything.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

#define KEYS_TEXT_MAX	1024

static int
keys_decode(unsigned char *out, size_t want, const char *value)
{
	return rec_base64_decode_exact(out, want, value, strlen(value));
}

static int
keys_decode_domain(char out[ZONE_DOMAIN_MAX + 1], const char *value,
    const char *path, char *err, size_t errsz)
{
	if (zone_domain_normalize(out, value) != 0) {
		snprintf(err, errsz, "%s: invalid domain \"%s\"", path, value);
		return -1;
	}
	return 0;
}

int
keys_load_signing(struct keys_signing *k, const char *path, char *err,
    size_t errsz)
{
	struct rec_keyfile_field f[] = {
		{ .name = "domain" }, { .name = "kid" }, { .name = "salt" },
		{ .name = "secret" },
	};
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (rec_keyfile_read(path, f, 4, err, errsz) != 0 ||
	    keys_decode_domain(k->domain, f[0].value, path, err, errsz) != 0)
		goto out;
	if (rec_kid_parse(&k->kid, f[1].value, strlen(f[1].value)) != 0 ||
	    keys_decode(k->salt, sizeof(k->salt), f[2].value) != 0 ||
	    keys_decode(k->sk, sizeof(k->sk), f[3].value) != 0) {
		snprintf(err, errsz, "%s: invalid kid, salt or secret value",
		    path);
		goto out;
	}
	/* libsodium's secret key is seed || public key: both must agree. */
	crypto_sign_seed_keypair(pk, sk, k->sk);
	if (sodium_memcmp(sk, k->sk, sizeof(sk)) != 0) {
		snprintf(err, errsz, "%s: secret is not a valid Ed25519 key",
		    path);
		goto out;
	}
	memcpy(k->pub, pk, sizeof(pk));
	if (rec_kid(k->pub, sizeof(k->pub)) != k->kid) {
		snprintf(err, errsz, "%s: kid does not match the key", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(f, sizeof(f));
	sodium_memzero(sk, sizeof(sk));
	if (rc != 0)
		sodium_memzero(k, sizeof(*k));
	return rc;
}

int
keys_load_public(struct keys_public *k, const char *path, char *err,
    size_t errsz)
{
	struct rec_keyfile_field f[] = {
		{ .name = "domain" }, { .name = "kid" }, { .name = "salt" },
		{ .name = "public" },
	};

	memset(k, 0, sizeof(*k));
	if (rec_keyfile_read(path, f, 4, err, errsz) != 0 ||
	    keys_decode_domain(k->domain, f[0].value, path, err, errsz) != 0)
		return -1;
	if (rec_kid_parse(&k->key.kid, f[1].value, strlen(f[1].value)) != 0 ||
	    keys_decode(k->salt, sizeof(k->salt), f[2].value) != 0 ||
	    keys_decode(k->key.pub, sizeof(k->key.pub), f[3].value) != 0) {
		snprintf(err, errsz, "%s: invalid kid, salt or public value",
		    path);
		return -1;
	}
	if (rec_kid(k->key.pub, sizeof(k->key.pub)) != k->key.kid) {
		snprintf(err, errsz, "%s: kid does not match the key", path);
		return -1;
	}
	return 0;
}

int
keys_load_salt(char domain[ZONE_DOMAIN_MAX + 1],
    unsigned char salt[REC_SALT_LEN], const char *path, char *err,
    size_t errsz)
{
	struct rec_keyfile_field f[] = {
		{ .name = "domain" }, { .name = "salt" },
	};

	if (rec_keyfile_read(path, f, 2, err, errsz) != 0 ||
	    keys_decode_domain(domain, f[0].value, path, err, errsz) != 0)
		return -1;
	if (keys_decode(salt, REC_SALT_LEN, f[1].value) != 0) {
		snprintf(err, errsz, "%s: invalid salt value", path);
		return -1;
	}
	return 0;
}

int
keys_load_relay_public(struct rec_key *k, const char *path, char *err,
    size_t errsz)
{
	struct rec_keyfile_field f[] = {
		{ .name = "kid" }, { .name = "public" },
	};

	memset(k, 0, sizeof(*k));
	if (rec_keyfile_read(path, f, 2, err, errsz) != 0)
		return -1;
	if (rec_kid_parse(&k->kid, f[0].value, strlen(f[0].value)) != 0 ||
	    keys_decode(k->pub, sizeof(k->pub), f[1].value) != 0) {
		snprintf(err, errsz, "%s: invalid kid or public value", path);
		return -1;
	}
	if (rec_kid(k->pub, sizeof(k->pub)) != k->kid) {
		snprintf(err, errsz, "%s: kid does not match the key", path);
		return -1;
	}
	return 0;
}

/* ---- Writing ---- */

static int
keys_open(const char *path, mode_t mode, int force, char *err, size_t errsz)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
	int fd;

	flags |= force ? O_TRUNC : O_EXCL;
	if ((fd = open(path, flags, mode)) < 0) {
		if (errno == EEXIST)
			snprintf(err, errsz, "%s: file exists; use --force "
			    "to overwrite it", path);
		else
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* An overwritten file keeps its old mode unless we set it. */
	if (force && fchmod(fd, mode) != 0) {
		snprintf(err, errsz, "%s: chmod failed: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
keys_write_all(int fd, const char *text, const char *path, char *err,
    size_t errsz)
{
	size_t len = strlen(text), off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errsz, "%s: write failed: %s", path,
			    strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * Write DIR/BASE.key with secret_text and DIR/BASE.pub with public_text.
 * Both files are opened before either is written, and a .key created
 * here is removed again when the .pub cannot be created.
 */
static int
keys_write_pair(const char *dir, const char *base, const char *secret_text,
    const char *public_text, int force, char *err, size_t errsz)
{
	char key_path[PATH_MAX], pub_path[PATH_MAX];
	int key_fd = -1, pub_fd = -1, rc = -1, n1, n2;

	n1 = snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, base);
	n2 = snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, base);
	if (n1 < 0 || (size_t)n1 >= sizeof(key_path) || n2 < 0 ||
	    (size_t)n2 >= sizeof(pub_path)) {
		snprintf(err, errsz, "%s: path too long", dir);
		return -1;
	}
	if ((key_fd = keys_open(key_path, 0600, force, err, errsz)) < 0)
		return -1;
	if ((pub_fd = keys_open(pub_path, 0644, force, err, errsz)) < 0) {
		if (!force)
			unlink(key_path);
		goto out;
	}
	if (keys_write_all(key_fd, secret_text, key_path, err, errsz) != 0 ||
	    keys_write_all(pub_fd, public_text, pub_path, err, errsz) != 0)
		goto out;
	rc = 0;
out:
	if (key_fd >= 0 && close(key_fd) != 0 && rc == 0) {
		snprintf(err, errsz, "%s: %s", key_path, strerror(errno));
		rc = -1;
	}
	if (pub_fd >= 0 && close(pub_fd) != 0 && rc == 0) {
		snprintf(err, errsz, "%s: %s", pub_path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static void
keys_base64(char *out, size_t outsz, const unsigned char *bin, size_t len)
{
	sodium_bin2base64(out, outsz, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

int
keys_write_signing(const char *dir, const struct keys_signing *k, int force,
    char *err, size_t errsz)
{
	char salt[64], pub[64], sk[128], secret_text[KEYS_TEXT_MAX];
	char public_text[KEYS_TEXT_MAX];
	int rc;

	keys_base64(salt, sizeof(salt), k->salt, sizeof(k->salt));
	keys_base64(pub, sizeof(pub), k->pub, sizeof(k->pub));
	keys_base64(sk, sizeof(sk), k->sk, sizeof(k->sk));
	snprintf(secret_text, sizeof(secret_text),
	    "# ER1 signing key for %s, written by dnsconf keygen.\n"
	    "# Keep this file secret: it signs the domain's rule records.\n"
	    "domain=%s\nkid=%08" PRIx32 "\nsalt=%s\nsecret=%s\n",
	    k->domain, k->domain, k->kid, salt, sk);
	snprintf(public_text, sizeof(public_text),
	    "# ER1 public key for %s, written by dnsconf keygen.\n"
	    "domain=%s\nkid=%08" PRIx32 "\nsalt=%s\npublic=%s\n",
	    k->domain, k->domain, k->kid, salt, pub);
	rc = keys_write_pair(dir, k->domain, secret_text, public_text, force,
	    err, errsz);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(secret_text, sizeof(secret_text));
	return rc;
}

int
keys_write_relay(const char *dir, const struct rec_relay_key *k, int force,
    char *err, size_t errsz)
{
	char pub[64], sec[64], secret_text[KEYS_TEXT_MAX];
	char public_text[KEYS_TEXT_MAX];
	int rc;

	keys_base64(pub, sizeof(pub), k->pub, sizeof(k->pub));
	keys_base64(sec, sizeof(sec), k->sec, sizeof(k->sec));
	snprintf(secret_text, sizeof(secret_text),
	    "# ER1 relay key (X25519), written by dnsconf relay-keygen.\n"
	    "# Keep this file secret: it opens the sealed destinations.\n"
	    "kid=%08" PRIx32 "\nsecret=%s\npublic=%s\n", k->kid, sec, pub);
	snprintf(public_text, sizeof(public_text),
	    "# ER1 relay public key, written by dnsconf relay-keygen.\n"
	    "# Domain owners seal destinations to it: dnsconf sign "
	    "--relay-pub FILE.\n"
	    "kid=%08" PRIx32 "\npublic=%s\n", k->kid, pub);
	rc = keys_write_pair(dir, "relay", secret_text, public_text, force,
	    err, errsz);
	sodium_memzero(sec, sizeof(sec));
	sodium_memzero(secret_text, sizeof(secret_text));
	return rc;
}
