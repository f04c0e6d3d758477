/*
 * Tests of the ARC chain verifier (router/arc.c) and of the sealer
 * (router/arcseal.c), whose chains the verifier must accept.
 *
 * The vectors are in tests/vectors/dkim/arc/ (see the README.md one level
 * up): the ValiMail validation suite converted to files, chains signed
 * with python3-dkim's ARC signer, and Stalwart's two messages.  Each
 * message is fed whole and in random chunk sizes, with key records served
 * by the DNS client in zone mode from a root zone this program writes.
 * The DNS failure case uses a mock resolver: a child process on 127.0.0.1
 * that replies to every query with SERVFAIL.  It is a mock, not a DNS
 * server.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "arc.h"
#include "arcseal.h"
#include "msghdr.h"
#include "check.h"
#include "dns.h"
#include "log.h"

#define VECTORS		"tests/vectors/dkim"
#define ARC_VECTORS	VECTORS "/arc"

static char tmpdir[] = "/tmp/test_arc.XXXXXX";

/* Read a whole file; exits if it cannot be read.  Free the result. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *data;
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		perror(path);
		exit(1);
	}
	data = malloc((size_t)n + 1);
	if (data == NULL || fread(data, 1, (size_t)n, fp) != (size_t)n) {
		perror(path);
		exit(1);
	}
	data[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return data;
}

/* Convert bare LF line ends to CRLF.  Free the result. */
static char *
to_crlf(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/*
 * A root zone in zone mode, filled from "NAME VALUE" lines (a TAB or
 * white space between them).
 */
static void
zone_write(const char *path, const char *text, size_t len)
{
	const char *line = text, *end = text + len, *eol, *sep, *v, *p;
	FILE *fp = fopen(path, "w");
	size_t i;

	if (fp == NULL) {
		perror(path);
		exit(1);
	}
	fputs("$TTL 300\n. IN SOA ns.invalid. admin.invalid. 1 3600 900 "
	    "604800 300\n", fp);
	for (; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			eol = end;
		if (line == eol || *line == '#')
			continue;
		for (sep = line; sep < eol && !isspace((unsigned char)*sep);)
			sep++;
		for (v = sep; v < eol && isspace((unsigned char)*v);)
			v++;
		fprintf(fp, "%.*s. IN TXT", (int)(sep - line), line);
		for (p = v, i = 0; p < eol; p++, i++) {
			if (i % 255 == 0)
				fputs(i == 0 ? " \"" : "\" \"", fp);
			if (*p == '"' || *p == '\\')
				fputc('\\', fp);
			fputc(*p, fp);
		}
		fputs(p > v ? "\"\n" : " \"\"\n", fp);
	}
	fclose(fp);
}

struct env {
	struct ev_loop	*loop;
	struct dns_ctx	*dns;
};

static void
env_open(struct env *env, double timeout)
{
	struct dns_config config = { timeout, 1, 1000, 1 << 20 };

	env->loop = ev_loop_new(EVFLAG_AUTO);
	env->dns = dns_new(env->loop, &config);
}

/* A zone-mode environment with the key records in text. */
static void
env_open_records(struct env *env, const char *text, size_t len)
{
	char path[128], err[256] = "";

	snprintf(path, sizeof(path), "%s/keys.zone", tmpdir);
	zone_write(path, text, len);
	env_open(env, 2.0);
	if (dns_add_zone_file(env->dns, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "zone %s: %s\n", path, err);
		exit(1);
	}
}

static void
env_open_file(struct env *env, const char *records)
{
	size_t len;
	char *text = read_file(records, &len);

	env_open_records(env, text, len);
	free(text);
}

static void
env_close(struct env *env)
{
	dns_free(env->dns);
	ev_loop_destroy(env->loop);
}

struct outcome {
	int			 calls;
	struct arc_chain_result	 res;
	struct arc_verifier	*free_in_cb;
};

static void
outcome_cb(void *arg, const struct arc_chain_result *res)
{
	struct outcome *o = arg;

	o->calls++;
	o->res = *res;
	if (o->free_in_cb != NULL)
		arc_verifier_free(o->free_in_cb);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void
wait_outcome(struct env *env, struct outcome *o)
{
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, 15., 0.);
	ev_timer_start(env->loop, &guard);
	while (o->calls == 0 && ev_is_active(&guard))
		ev_run(env->loop, EVRUN_ONCE);
	ev_timer_stop(env->loop, &guard);
}

static uint32_t
rand_next(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

static uint32_t
seed_of(const char *label)
{
	uint32_t h = 2166136261u;

	for (; *label != '\0'; label++)
		h = (h ^ (unsigned char)*label) * 16777619u;
	return h != 0 ? h : 1;
}

/* Feed msg whole (seed 0) or in random pieces, then wait for the result. */
static void
verify(struct env *env, const char *msg, size_t len, time_t now,
    uint32_t seed, struct outcome *o)
{
	struct arc_verifier *v = arc_verifier_new(env->dns, env->loop, now);
	size_t pos = 0, n;

	memset(o, 0, sizeof(*o));
	while (pos < len) {
		n = len - pos;
		if (seed != 0) {
			n = rand_next(&seed) % 4 == 0 ?
			    1 + rand_next(&seed) % 7 :
			    1 + rand_next(&seed) % 3000;
			if (n > len - pos)
				n = len - pos;
		}
		arc_verifier_update(v, msg + pos, n);
		pos += n;
	}
	arc_verifier_finish(v, outcome_cb, o);
	CHECK_INT(o->calls, 0);
	wait_outcome(env, o);
	CHECK_INT(o->calls, 1);
	arc_verifier_free(v);
}

/* Verify whole and chunked; reason NULL skips the reason check. */
static void
check_chain(struct env *env, const char *label, const char *msg, size_t len,
    time_t now, const char *expected, int oldest, const char *reason)
{
	struct outcome o;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		verify(env, msg, len, now, pass ? seed_of(label) : 0, &o);
		if (strcmp(arc_result_str(o.res.result), expected) != 0 ||
		    (oldest >= 0 && o.res.oldest_pass != (unsigned)oldest) ||
		    (reason != NULL && strcmp(o.res.reason, reason) != 0))
			fprintf(stderr, "%s (%s): got %s oldest-pass %u (%s), "
			    "want %s\n", label, pass ? "chunked" : "whole",
			    arc_result_str(o.res.result), o.res.oldest_pass,
			    o.res.reason, expected);
		CHECK_STR(arc_result_str(o.res.result), expected);
		if (oldest >= 0)
			CHECK_INT(o.res.oldest_pass, oldest);
		if (reason != NULL)
			CHECK_STR(o.res.reason, reason);
	}
}

static void
aar_instance(void)
{
	static const struct {
		const char	*value;
		unsigned	 instance;
	} cases[] = {
		{ "i=1; example.org; spf=pass", 1 },
		{ " i = 12 ;example.org", 12 },
		{ "\r\n\ti=50;", 50 },
		{ "i=51; x", 0 },
		{ "i=0; x", 0 },
		{ "i=; x", 0 },
		{ "i=1 example.org", 0 },
		{ "i=1", 0 },
		{ "example.org; i=1;", 0 },
		{ "I=1; x", 0 },
		{ "i=123; x", 0 },
		{ "i=a; x", 0 },
		{ "", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		if (arc_aar_instance(cases[i].value, strlen(cases[i].value)) !=
		    cases[i].instance)
			fprintf(stderr, "AAR \"%s\"\n", cases[i].value);
		CHECK_INT(arc_aar_instance(cases[i].value,
		    strlen(cases[i].value)), cases[i].instance);
	}
}

/* The ValiMail suite: manifest rows "file scenario upstream expected". */
static void
vectors_validation(void)
{
	char path[256], *manifest, *line, *save, *msg;
	char file[128], upstream[32], expected[32];
	struct env env;
	size_t len, mlen, count = 0;
	int scenario, open = -1;

	manifest = read_file(ARC_VECTORS "/validation/manifest.tsv", &mlen);
	for (line = strtok_r(manifest, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || sscanf(line,
		    "%127[^\t]\t%d\t%31[^\t]\t%31[^\t\n]", file, &scenario,
		    upstream, expected) != 4)
			continue;
		if (scenario != open) {
			if (open >= 0)
				env_close(&env);
			snprintf(path, sizeof(path), ARC_VECTORS
			    "/validation/records-%d.tsv", scenario);
			env_open_file(&env, path);
			open = scenario;
		}
		snprintf(path, sizeof(path), ARC_VECTORS "/validation/%s",
		    file);
		msg = read_file(path, &len);
		check_chain(&env, file, msg, len, 0, expected, -1, NULL);
		free(msg);
		count++;
	}
	if (open >= 0)
		env_close(&env);
	free(manifest);
	CHECK_INT(count, 175);
}

/* Chains signed by python3-dkim, with oldest-pass and reasons. */
static void
vectors_signed(void)
{
	char path[256], *manifest, *line, *save, *msg;
	char file[128], expected[32], reason[160];
	struct env env;
	size_t len, mlen, count = 0;
	int oldest;

	env_open_file(&env, VECTORS "/signed/records.tsv");
	manifest = read_file(ARC_VECTORS "/signed/manifest.tsv", &mlen);
	for (line = strtok_r(manifest, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || sscanf(line,
		    "%127[^\t]\t%31[^\t]\t%d\t%159[^\t]", file, expected,
		    &oldest, reason) != 4)
			continue;
		if (strcmp(reason, "-") == 0)
			reason[0] = '\0';
		snprintf(path, sizeof(path), ARC_VECTORS "/signed/%s", file);
		msg = read_file(path, &len);
		check_chain(&env, file, msg, len, 0, expected, oldest, reason);
		free(msg);
		count++;
	}
	free(manifest);
	CHECK_INT(count, 7);
	env_close(&env);
}

/*
 * Stalwart's messages: DNS lines, an empty line, then the message with LF
 * line ends.  002.txt seals with ed25519-sha256 (RFC 8463), which this
 * verifier accepts as DKIM does.
 */
static void
vectors_stalwart(void)
{
	static const char *const files[] = { "001.txt", "002.txt" };
	char path[256], *raw, *msg, *body;
	struct env env;
	size_t i, rlen, len;

	for (i = 0; i < sizeof(files) / sizeof(*files); i++) {
		snprintf(path, sizeof(path), ARC_VECTORS "/stalwart/%s",
		    files[i]);
		raw = read_file(path, &rlen);
		body = strstr(raw, "\n\n");
		if (body == NULL)
			exit(1);
		env_open_records(&env, raw, (size_t)(body - raw));
		msg = to_crlf(body + 2, rlen - (size_t)(body + 2 - raw), &len);
		check_chain(&env, files[i], msg, len, 0, "pass", -1, "");
		env_close(&env);
		free(raw);
		free(msg);
	}
}

static pid_t
mock_servfail(char *addr, size_t addrsz)
{
	struct sockaddr_in sin;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(sin), plen;
	unsigned char pkt[4096];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	ssize_t n;
	pid_t pid;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		perror("mock resolver on 127.0.0.1");
		exit(1);
	}
	snprintf(addr, addrsz, "127.0.0.1:%d", ntohs(sin.sin_port));
	if ((pid = fork()) != 0) {
		close(fd);
		return pid;
	}
	for (;;) {
		plen = sizeof(peer);
		n = recvfrom(fd, pkt, sizeof(pkt), 0,
		    (struct sockaddr *)&peer, &plen);
		if (n < 12)
			continue;
		pkt[2] |= 0x80;
		pkt[3] = (unsigned char)((pkt[3] & 0xf0) | 0x80 | 2);
		sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&peer, plen);
	}
}

/* A failed key lookup is a fail too (RFC 8617 section 5.2.1). */
static void
dns_servfail(void)
{
	char addr[32], *msg;
	struct env env;
	struct outcome o;
	size_t len;
	pid_t pid = mock_servfail(addr, sizeof(addr));

	msg = read_file(ARC_VECTORS "/signed/hop2.eml", &len);
	env_open(&env, 0.3);
	CHECK_INT(dns_add_resolver(env.dns, addr), 0);
	verify(&env, msg, len, 0, 0, &o);
	CHECK_STR(arc_result_str(o.res.result), "fail");
	CHECK_STR(o.res.reason, "ARC-Message-Signature i=2: key lookup failed");
	CHECK_INT(o.res.instances, 2);
	env_close(&env);
	free(msg);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Structure failures need no lookup; an unsealed message gives none. */
static void
chain_structure(void)
{
	static const struct {
		const char	*header;
		const char	*result;
		const char	*reason;
	} cases[] = {
		{ "", "none", "" },
		{ "ARC-Authentication-Results: i=1; x.example; spf=pass\r\n",
		    "fail", "ARC set i=1 has no ARC-Message-Signature" },
		{ "ARC-Authentication-Results: i=51; x.example; spf=pass\r\n",
		    "fail", "ARC-Authentication-Results without a valid i= tag" },
		{ "ARC-Authentication-Results: i=2; x.example; spf=pass\r\n",
		    "fail", "ARC set i=1 is missing" },
		{ "ARC-Authentication-Results: i=1; x.example; spf=pass\r\n"
		    "ARC-Authentication-Results: i=1; y.example; spf=pass\r\n",
		    "fail", "more than one ARC-Authentication-Results with i=1" },
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=fail; d=example.org; "
		    "s=rsa2048; b=dGVzdA==\r\n", "fail",
		    "ARC-Seal i=1 has cv=fail" },
		{ "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; "
		    "s=rsa2048; h=from; b=dGVzdA==\r\n", "fail",
		    "invalid ARC-Seal: h= tag in ARC-Seal" },
	};
	const char *rest = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
	char msg[1024];
	struct env env;
	struct outcome o;
	size_t i;

	env_open_file(&env, VECTORS "/signed/records.tsv");
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(msg, sizeof(msg), "%s%s", cases[i].header, rest);
		check_chain(&env, cases[i].header, msg, strlen(msg), 0,
		    cases[i].result, 0, cases[i].reason);
	}
	/* Two sets whose second seal has cv=none. */
	{
		char *hop2, *bad;
		size_t len;

		hop2 = read_file(ARC_VECTORS "/signed/hop2.eml", &len);
		bad = strstr(hop2, "cv=pass");
		memcpy(bad, "cv=none", 7);
		verify(&env, hop2, len, 0, 0, &o);
		CHECK_STR(arc_result_str(o.res.result), "fail");
		CHECK_STR(o.res.reason, "ARC-Seal i=2 has cv=none");
		free(hop2);
	}
	env_close(&env);
}

/* Free before the callback and from inside it. */
static void
verifier_lifetime(void)
{
	char *msg;
	struct env env;
	struct outcome o;
	struct arc_verifier *v;
	size_t len;

	env_open_file(&env, VECTORS "/signed/records.tsv");
	msg = read_file(ARC_VECTORS "/signed/hop3.eml", &len);
	memset(&o, 0, sizeof(o));
	v = arc_verifier_new(env.dns, env.loop, 0);
	arc_verifier_update(v, msg, len);
	arc_verifier_finish(v, outcome_cb, &o);
	arc_verifier_free(v);
	ev_run(env.loop, EVRUN_NOWAIT);
	ev_run(env.loop, EVRUN_NOWAIT);
	CHECK_INT(o.calls, 0);

	memset(&o, 0, sizeof(o));
	v = arc_verifier_new(env.dns, env.loop, 0);
	arc_verifier_update(v, msg, len);
	arc_verifier_finish(v, outcome_cb, &o);
	o.free_in_cb = v;
	wait_outcome(&env, &o);
	CHECK_INT(o.calls, 1);
	CHECK_STR(arc_result_str(o.res.result), "pass");
	CHECK_INT(o.res.instances, 3);
	CHECK_STR(o.res.domain, "example.org");
	free(msg);
	env_close(&env);
}

/* ---- sealing (router/arcseal.c) ---- */

/*
 * A fresh key of type "RSA" or "ED25519" written as PEM to path, and
 * its DKIM key record (RFC 6376 section 3.6.1; RFC 8463 section 4 for
 * Ed25519: p= is the raw 32-byte public key) into rec.
 */
static void
seal_key(const char *type, const char *path, char *rec, size_t recsz)
{
	EVP_PKEY *key = strcmp(type, "RSA") == 0 ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char pub[1024], *p = pub;
	char b64[1500];
	size_t n = sizeof(pub);
	FILE *fp = fopen(path, "w");
	int len;

	if (key == NULL || fp == NULL ||
	    !PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)) {
		fprintf(stderr, "cannot make a %s key in %s\n", type, path);
		exit(1);
	}
	fclose(fp);
	if (strcmp(type, "RSA") == 0)
		len = i2d_PUBKEY(key, &p);
	else
		len = EVP_PKEY_get_raw_public_key(key, pub, &n) ? (int)n : -1;
	if (len <= 0)
		exit(1);
	EVP_EncodeBlock((unsigned char *)b64, pub, len);
	snprintf(rec, recsz, "v=DKIM1; k=%s; p=%s",
	    strcmp(type, "RSA") == 0 ? "rsa" : "ed25519", b64);
	EVP_PKEY_free(key);
}

/*
 * Seal msg as the given chain result and return the sealed message (the
 * new set on top), or NULL when arc_seal() refused with *skip_reason.
 */
static char *
seal_message(const struct arc_sealer *sealer, const char *msg, size_t len,
    enum arc_result chain, size_t *outlen, const char **skip_reason)
{
	static const char ar[] = "Authentication-Results: relay.example;\r\n"
	    "\tspf=pass smtp.mailfrom=sender.example;\r\n"
	    "\tdkim=none\r\n";
	struct msghdr_section hdr;
	struct arc_seal_input in;
	struct buf out;
	char *sealed;
	size_t i, n;
	int ok;

	/* The header is collected as the DKIM verifier does in the router. */
	msghdr_init(&hdr);
	arc_seal_input_init(&in);
	/* In pieces of 7 bytes: the header and body split anywhere. */
	for (i = 0; i < len; i += n) {
		n = len - i < 7 ? len - i : 7;
		msghdr_update(&hdr, msg + i, n);
		arc_seal_input_update(&in, &hdr, msg + i, n);
	}
	msghdr_finish(&hdr);
	buf_init(&out, 1 << 20);
	ok = arc_seal(sealer, &in, &hdr, ar, strlen(ar), chain, time(NULL),
	    &out, skip_reason) == 0;
	arc_seal_input_free(&in);
	msghdr_free(&hdr);
	if (!ok) {
		buf_free(&out);
		return NULL;
	}
	buf_append(&out, msg, len);
	sealed = malloc(buf_avail(&out) + 1);
	memcpy(sealed, buf_head(&out), buf_avail(&out));
	sealed[buf_avail(&out)] = '\0';
	*outlen = buf_avail(&out);
	buf_free(&out);
	return sealed;
}

/*
 * RFC 8617 section 5.1: the first seal has cv=none, each later one
 * cv=pass over a passing chain, and the verifier of section 5.2 accepts
 * every chain so built.  Run for an RSA and an Ed25519 key.
 */
static void
seal_chain(const char *type)
{
	const char *msg = "From: Alice <alice@sender.example>\r\n"
	    "To: bob@example.com\r\nSubject: sealed\r\n"
	    "Subject: twice\r\n\r\nline one  \r\n\r\n.leading dot\r\n\r\n\r\n";
	char path[128], rec[1600], zone[1800];
	struct arc_sealer *sealer;
	struct outcome o;
	struct env env;
	const char *skip_reason = NULL;
	char *m1, *m2, *m3, err[256];
	size_t l1, l2, l3;

	snprintf(path, sizeof(path), "%s/arc-%s.pem", tmpdir, type);
	seal_key(type, path, rec, sizeof(rec));
	snprintf(zone, sizeof(zone), "sel._domainkey.relay.example %s\n", rec);
	env_open_records(&env, zone, strlen(zone));
	sealer = arc_sealer_load(path, "relay.example", "sel", err,
	    sizeof(err));
	CHECK(sealer != NULL);
	if (sealer == NULL) {
		fprintf(stderr, "%s\n", err);
		env_close(&env);
		return;
	}
	m1 = seal_message(sealer, msg, strlen(msg), ARC_NONE, &l1, &skip_reason);
	CHECK(m1 != NULL);
	if (m1 == NULL)
		return;
	CHECK(strncmp(m1, "ARC-Seal: i=1; a=", 17) == 0);
	CHECK(strstr(m1, "cv=none") != NULL);
	CHECK(strstr(m1, "ARC-Authentication-Results: i=1; relay.example;")
	    != NULL);
	CHECK(strstr(m1, "h=from:subject:subject:to") != NULL);
	verify(&env, m1, l1, 0, 0, &o);
	CHECK_STR(arc_result_str(o.res.result), "pass");
	CHECK_INT(o.res.instances, 1);
	CHECK_STR(o.res.domain, "relay.example");

	m2 = seal_message(sealer, m1, l1, ARC_PASS, &l2, &skip_reason);
	CHECK(m2 != NULL);
	if (m2 == NULL)
		return;
	CHECK(strncmp(m2, "ARC-Seal: i=2;", 14) == 0);
	CHECK(strstr(m2, "cv=pass") != NULL);
	verify(&env, m2, l2, 0, 0, &o);
	CHECK_STR(arc_result_str(o.res.result), "pass");
	CHECK_INT(o.res.instances, 2);
	CHECK_INT(o.res.oldest_pass, 0);

	/* A changed body breaks AMS i=1 and AMS i=2 alike. */
	m2[l2 - 3] = 'X';
	verify(&env, m2, l2, 0, 0, &o);
	CHECK_STR(arc_result_str(o.res.result), "fail");

	/*
	 * A failed chain (section 5.1.2): the seal has cv=fail and covers
	 * only its own set.  Section 5.2 then fails the chain, and no seal
	 * follows one with cv=fail.
	 */
	m3 = seal_message(sealer, m2, l2, ARC_FAIL, &l3, &skip_reason);
	CHECK(m3 != NULL);
	if (m3 == NULL)
		return;
	CHECK(strncmp(m3, "ARC-Seal: i=3;", 14) == 0);
	CHECK(strstr(m3, "cv=fail") != NULL);
	verify(&env, m3, l3, 0, 0, &o);
	CHECK_STR(arc_result_str(o.res.result), "fail");
	CHECK_STR(o.res.reason, "ARC-Seal i=3 has cv=fail");
	skip_reason = NULL;
	free(seal_message(sealer, m3, l3, ARC_FAIL, &l1, &skip_reason));
	CHECK_STR(skip_reason, "the chain ended with cv=fail");
	free(m1);
	free(m2);
	free(m3);
	arc_sealer_free(sealer);
	env_close(&env);
}

static void
seal_chain_rsa(void)
{
	seal_chain("RSA");
}

static void
seal_chain_ed25519(void)
{
	seal_chain("ED25519");
}

/* RFC 8617 section 4.2.1: 50 sets at most, and the 50th still verifies. */
static void
seal_instance_limit(void)
{
	char path[128], rec[1600], zone[1800], err[256];
	const char *skip_reason = NULL;
	struct arc_sealer *sealer;
	struct outcome o;
	struct env env;
	char *msg, *next;
	size_t len, i;

	snprintf(path, sizeof(path), "%s/arc-limit.pem", tmpdir);
	seal_key("ED25519", path, rec, sizeof(rec));
	snprintf(zone, sizeof(zone), "s2._domainkey.relay.example %s\n", rec);
	env_open_records(&env, zone, strlen(zone));
	sealer = arc_sealer_load(path, "relay.example", "s2", err,
	    sizeof(err));
	msg = strdup("From: a@sender.example\r\n\r\nbody\r\n");
	len = strlen(msg);
	for (i = 1; i <= 50 && msg != NULL; i++) {
		next = seal_message(sealer, msg, len,
		    i == 1 ? ARC_NONE : ARC_PASS, &len, &skip_reason);
		free(msg);
		msg = next;
	}
	CHECK(msg != NULL);
	if (msg != NULL) {
		verify(&env, msg, len, 0, 0, &o);
		CHECK_STR(arc_result_str(o.res.result), "pass");
		CHECK_INT(o.res.instances, 50);
		CHECK(seal_message(sealer, msg, len, ARC_PASS, &len, &skip_reason) ==
		    NULL);
		CHECK_STR(skip_reason, "the chain has 50 ARC sets already");
	}
	free(msg);
	arc_sealer_free(sealer);
	env_close(&env);
}

/*
 * A message without a body, with and without the empty line: the body
 * hash is that of an empty body (RFC 6376 section 3.4.4), and the chain
 * verifies.
 */
static void
seal_no_body(void)
{
	static const char *const msgs[] = {
		"From: a@sender.example\r\nSubject: no body\r\n",
		"From: a@sender.example\r\nSubject: no body\r\n\r\n",
	};
	char path[128], rec[1600], zone[1800], err[256];
	const char *skip_reason = NULL;
	struct arc_sealer *sealer;
	struct outcome o;
	struct env env;
	char *sealed;
	size_t len, i;

	snprintf(path, sizeof(path), "%s/arc-nobody.pem", tmpdir);
	seal_key("ED25519", path, rec, sizeof(rec));
	snprintf(zone, sizeof(zone), "s3._domainkey.relay.example %s\n", rec);
	env_open_records(&env, zone, strlen(zone));
	sealer = arc_sealer_load(path, "relay.example", "s3", err,
	    sizeof(err));
	CHECK(sealer != NULL);
	for (i = 0; sealer != NULL && i < sizeof(msgs) / sizeof(msgs[0]);
	    i++) {
		sealed = seal_message(sealer, msgs[i], strlen(msgs[i]), ARC_NONE,
		    &len, &skip_reason);
		CHECK(sealed != NULL);
		if (sealed == NULL)
			continue;
		verify(&env, sealed, len, 0, 0, &o);
		CHECK_STR(arc_result_str(o.res.result), "pass");
		free(sealed);
	}
	arc_sealer_free(sealer);
	env_close(&env);
}

/* Keys and names the sealer must refuse at start-up. */
static void
seal_load_errors(void)
{
	char path[128], rec[1600], err[256];
	EVP_PKEY *weak;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/arc-ok.pem", tmpdir);
	seal_key("RSA", path, rec, sizeof(rec));
	CHECK(arc_sealer_load(path, "bad domain", "sel", err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "is not a domain name") != NULL);
	CHECK(arc_sealer_load(path, "relay.example", "", err,
	    sizeof(err)) == NULL);
	CHECK(arc_sealer_load(path, "relay..example", "sel", err,
	    sizeof(err)) == NULL);
	CHECK(arc_sealer_load("/nonexistent/key.pem", "relay.example", "sel",
	    err, sizeof(err)) == NULL);
	CHECK(strstr(err, "No such file") != NULL);
	/* RFC 8301 section 3.2: RSA keys under 1024 bits are not valid. */
	snprintf(path, sizeof(path), "%s/arc-weak.pem", tmpdir);
	weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	fp = fopen(path, "w");
	PEM_write_PrivateKey(fp, weak, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	EVP_PKEY_free(weak);
	CHECK(arc_sealer_load(path, "relay.example", "sel", err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "768 bits") != NULL);
	snprintf(path, sizeof(path), "%s/arc-text.pem", tmpdir);
	fp = fopen(path, "w");
	fputs("not a key\n", fp);
	fclose(fp);
	CHECK(arc_sealer_load(path, "relay.example", "sel", err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "not a PEM private key") != NULL);
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	log_init("test_arc", LOG_LVL_WARN);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(aar_instance);
	RUN(vectors_validation);
	RUN(vectors_signed);
	RUN(vectors_stalwart);
	RUN(dns_servfail);
	RUN(chain_structure);
	RUN(verifier_lifetime);
	RUN(seal_chain_rsa);
	RUN(seal_chain_ed25519);
	RUN(seal_instance_limit);
	RUN(seal_no_body);
	RUN(seal_load_errors);
	nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	CHECK_SUMMARY();
}
