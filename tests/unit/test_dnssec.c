/*
 * Tests of the DNSSEC validator (router/dnssec.c), of dns_lookup_dnssec()
 * (router/dns.c) and of validated routing through route_lookup().
 *
 * The program makes keys with ldns-keygen, signs zones with ldns-signzone
 * and serves them with NSD (/usr/sbin/nsd) on 127.0.0.1 at a free port,
 * all in a temporary directory.  The zones:
 *
 *   test.              signed with NSEC, the parent of the zones below;
 *                      the DS record of its KSK is the usual trust anchor
 *   good.test          signed, ER1 records with a rule for alice and a
 *                      catch-all
 *   altered.test       signed, then its key record and alice's rule
 *                      replaced by an attacker's, without new RRSIGs
 *   expired.test       signed with RRSIGs that expired in 2020
 *   soon.test          signed with RRSIGs that expire in two minutes
 *   nosig.test         signed, then the RRSIG of the _er TXT RRset removed
 *   badds.test         signed, but test. holds the DS of another key
 *   plain.test         unsigned, delegated without DS
 *   nsec3.test         signed with NSEC3, a catch-all and no alice rule;
 *                      it delegates plain.nsec3.test without DS
 *   plain.nsec3.test   unsigned
 *
 * good.test and nsec3.test also hold a wildcard TXT record at *.wild, and
 * good.test a CNAME from alias to _er.
 *
 * A forging proxy, a child process between the client and NSD, plays
 * the attacker on the path: for one name it sends NSD's answer for a
 * decoy name instead (a real NXDOMAIN with real NSEC records that do
 * not cover the name), or the real answer without its authority section.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <ldns/ldns.h>
#include <sodium.h>

#include "check.h"
#include "dns.h"
#include "dnssec.h"
#include "log.h"
#include "record.h"
#include "route.h"

#define NSD_PATH	"/usr/sbin/nsd"
#define KEYGEN_PATH	"/usr/bin/ldns-keygen"
#define SIGNZONE_PATH	"/usr/bin/ldns-signzone"
#define KEY_BASE_MAX	128
#define ZONE_TEXT_MAX	16384

static char tmpdir[64];
static pid_t nsd_pid = -1;
static int nsd_port;
static char nsd_addr[32];
static struct ev_loop *loop;
static struct dns_ctx *dns;

/* Trust anchor files, relative to tmpdir. */
static char anchor_test_ds[KEY_BASE_MAX + 8];	/* DS of test.'s KSK */
static char anchor_good_key[KEY_BASE_MAX + 8];	/* DNSKEY of good.test */
static char anchor_wrong_ds[KEY_BASE_MAX + 8];	/* DS of an unused key */
static char anchor_other_key[KEY_BASE_MAX + 8];	/* DNSKEY of other.example */

/* The ER1 keys: the domains' signing key, an attacker's, the relay's. */
static unsigned char owner_pk[crypto_sign_PUBLICKEYBYTES];
static unsigned char owner_sk[crypto_sign_SECRETKEYBYTES];
static unsigned char evil_pk[crypto_sign_PUBLICKEYBYTES];
static unsigned char evil_sk[crypto_sign_SECRETKEYBYTES];
static unsigned char salt[REC_SALT_LEN];
static struct rec_relay_key relay_key;

static const char *const zone_names[] = {
	"test", "good.test", "altered.test", "expired.test", "soon.test",
	"nosig.test", "badds.test", "plain.test", "nsec3.test",
	"plain.nsec3.test",
};

/*
 * Files and tools.
 */

static void
path_of(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", tmpdir, name);
}

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	path_of(path, sizeof(path), name);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
}

/* Returns the contents of a file in tmpdir, to be freed. */
static char *
read_file(const char *name)
{
	char path[256], *text;
	long len;
	FILE *fp;

	path_of(path, sizeof(path), name);
	if ((fp = fopen(path, "r")) == NULL) {
		perror(path);
		exit(1);
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	if (text == NULL || fread(text, 1, (size_t)len, fp) != (size_t)len) {
		perror(path);
		exit(1);
	}
	fclose(fp);
	return text;
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

/*
 * Run a program in tmpdir with its output in out (first line, without
 * the newline) and its errors in tools.log.  Returns 0 if it exited
 * with status 0.
 */
static int
run_tool(char *const argv[], char *out, size_t outsz)
{
	int fds[2], status, logfd;
	char path[256];
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	path_of(path, sizeof(path), "tools.log");
	if (pipe(fds) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		logfd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (chdir(tmpdir) == -1 || logfd == -1 ||
		    dup2(fds[1], 1) == -1 || dup2(logfd, 2) == -1)
			_exit(127);
		close(fds[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while (len + 1 < outsz &&
	    (n = read(fds[0], out + len, outsz - len - 1)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	out[strcspn(out, "\n")] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Make a key pair for zone and write its base name, Kzone.+alg+tag, to base. */
static void
keygen(char base[KEY_BASE_MAX], const char *alg, const char *bits, int ksk,
    const char *zone)
{
	char *argv[12];
	int i = 0;

	argv[i++] = KEYGEN_PATH;
	argv[i++] = "-r";
	argv[i++] = "/dev/urandom";
	argv[i++] = "-a";
	argv[i++] = (char *)alg;
	if (bits != NULL) {
		argv[i++] = "-b";
		argv[i++] = (char *)bits;
	}
	if (ksk)
		argv[i++] = "-k";
	argv[i++] = (char *)zone;
	argv[i] = NULL;
	if (run_tool(argv, base, KEY_BASE_MAX) == -1 || base[0] == '\0') {
		fprintf(stderr, "ldns-keygen failed for %s; see %s/tools.log\n",
		    zone, tmpdir);
		exit(1);
	}
}

/* RRSIG validity periods for signzone(). */
enum validity {
	VALID_DEFAULT,		/* ldns-signzone's: four weeks from now */
	VALID_EXPIRED,		/* 2019 to 2020 */
	VALID_SOON,		/* until two minutes from now */
};

/*
 * Sign NAME.zone into NAME.signed with the keys, NSEC3 when nsec3 is
 * set, with RRSIGs valid for the period given.
 */
static void
signzone(const char *name, const char *key1, const char *key2, int nsec3,
    enum validity validity)
{
	char in[128], out[128], line[64], soon[32], *argv[16];
	int i = 0;

	snprintf(in, sizeof(in), "%s.zone", name);
	snprintf(out, sizeof(out), "%s.signed", name);
	argv[i++] = SIGNZONE_PATH;
	if (nsec3) {
		argv[i++] = "-n";
		argv[i++] = "-t";
		argv[i++] = "0";
	}
	if (validity == VALID_EXPIRED) {
		argv[i++] = "-i";
		argv[i++] = "20190101000000";
		argv[i++] = "-e";
		argv[i++] = "20200101000000";
	} else if (validity == VALID_SOON) {
		snprintf(soon, sizeof(soon), "%lld",
		    (long long)time(NULL) + 120);
		argv[i++] = "-e";
		argv[i++] = soon;
	}
	argv[i++] = "-f";
	argv[i++] = out;
	argv[i++] = in;
	argv[i++] = (char *)key1;
	if (key2 != NULL)
		argv[i++] = (char *)key2;
	argv[i] = NULL;
	if (run_tool(argv, line, sizeof(line)) == -1) {
		fprintf(stderr, "ldns-signzone failed for %s; "
		    "see %s/tools.log\n", name, tmpdir);
		exit(1);
	}
}

/*
 * Rewrite NAME.signed without the lines that start with prefix and
 * contain needle, then append extra.
 */
static void
edit_signed(const char *name, const char *prefix, const char *needle,
    const char *extra)
{
	char file[128], *text, *line, *save = NULL;
	static char out[1 << 20];
	size_t len = 0;

	snprintf(file, sizeof(file), "%s.signed", name);
	text = read_file(file);
	out[0] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, prefix, strlen(prefix)) == 0 &&
		    strstr(line, needle) != NULL)
			continue;
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\n",
		    line);
	}
	snprintf(out + len, sizeof(out) - len, "%s", extra);
	write_file(file, out);
	free(text);
}

/* Append the first line of a file in tmpdir (a .ds file) to buf. */
static void
append_file_line(char *buf, size_t bufsz, const char *name)
{
	char *text = read_file(name);
	size_t len = strlen(buf);

	text[strcspn(text, "\n")] = '\0';
	snprintf(buf + len, bufsz - len, "%s\n", text);
	free(text);
}

/*
 * ER1 records.
 */

/* Append TXT content as quoted strings of at most 255 bytes to buf. */
static void
append_txt(char *buf, size_t bufsz, const char *owner, const char *content)
{
	size_t len = strlen(buf), off, n, total = strlen(content);

	len += (size_t)snprintf(buf + len, bufsz - len, "%s 300 IN TXT", owner);
	for (off = 0; off < total; off += n) {
		n = total - off < 255 ? total - off : 255;
		len += (size_t)snprintf(buf + len, bufsz - len, " \"%.*s\"",
		    (int)n, content + off);
	}
	snprintf(buf + len, bufsz - len, "\n");
}

static void
rule_owner(char out[300], const char *local, int catch_all,
    const char *domain)
{
	if (rec_owner_name(out, 300, salt, local, strlen(local), catch_all,
	    domain) == -1) {
		fprintf(stderr, "rec_owner_name failed\n");
		exit(1);
	}
}

/* Append a forward rule for local (or the catch-all) to buf. */
static void
append_rule(char *buf, size_t bufsz, const char *domain, const char *local,
    int catch_all, const char *dst, const unsigned char *pk,
    const unsigned char *sk)
{
	struct rec_key relay_pub;
	char owner[300], txt[REC_MAX_TXT];
	const char *dsts[1] = { dst };

	relay_pub.kid = relay_key.kid;
	memcpy(relay_pub.pub, relay_key.pub, sizeof(relay_pub.pub));
	rule_owner(owner, local, catch_all, domain);
	if (rec_rule_sign(txt, sizeof(txt), owner, domain,
	    rec_kid(pk, crypto_sign_PUBLICKEYBYTES), sk,
	    (uint64_t)time(NULL) + 30 * 86400, REC_ACT_FORWARD, dsts, 1, NULL,
	    &relay_pub, 1) == -1) {
		fprintf(stderr, "rec_rule_sign failed\n");
		exit(1);
	}
	append_txt(buf, bufsz, owner, txt);
}

/* Append the key record of pk at _er.domain to buf. */
static void
append_key(char *buf, size_t bufsz, const char *domain,
    const unsigned char *pk)
{
	struct rec_key key;
	char owner[300], txt[REC_MAX_TXT];

	key.kid = rec_kid(pk, crypto_sign_PUBLICKEYBYTES);
	memcpy(key.pub, pk, sizeof(key.pub));
	rec_key_format(txt, sizeof(txt), &key);
	snprintf(owner, sizeof(owner), "_er.%s.", domain);
	append_txt(buf, bufsz, owner, txt);
}

/*
 * Write NAME.zone: SOA, NS, the ER1 domain and key records, a rule for
 * alice unless with_alice is 0, and a catch-all.
 */
static void
write_er1_zone(const char *domain, int with_alice, const char *extra)
{
	char text[ZONE_TEXT_MAX], owner[300], txt[REC_MAX_TXT], file[128];

	snprintf(text, sizeof(text),
	    "$ORIGIN %s.\n$TTL 300\n"
	    "@ IN SOA ns.test. admin.test. 1 3600 900 604800 120\n"
	    "@ IN NS ns.test.\n%s", domain, extra);
	rec_domain_format(txt, sizeof(txt), salt);
	snprintf(owner, sizeof(owner), "_er.%s.", domain);
	append_txt(text, sizeof(text), owner, txt);
	append_key(text, sizeof(text), domain, owner_pk);
	if (with_alice)
		append_rule(text, sizeof(text), domain, "alice", 0,
		    "alice@mailbox.example", owner_pk, owner_sk);
	append_rule(text, sizeof(text), domain, "", 1,
	    "catchall@mailbox.example", owner_pk, owner_sk);
	snprintf(file, sizeof(file), "%s.zone", domain);
	write_file(file, text);
}

/* Replace altered.test's key and alice rule with an attacker's. */
static void
alter_zone(void)
{
	char extra[ZONE_TEXT_MAX] = "", owner[300];

	append_key(extra, sizeof(extra), "altered.test", evil_pk);
	append_rule(extra, sizeof(extra), "altered.test", "alice", 0,
	    "attacker@evil.example", evil_pk, evil_sk);
	edit_signed("altered.test", "_er.altered.test.", "t=key", "");
	rule_owner(owner, "alice", 0, "altered.test");
	edit_signed("altered.test", owner, "\tTXT\t", extra);
}

/* Serve an unsigned zone: NSD reads every zone from NAME.signed. */
static void
rename_zone(const char *name)
{
	char from[256], to[256], file[128];

	snprintf(file, sizeof(file), "%s.zone", name);
	path_of(from, sizeof(from), file);
	snprintf(file, sizeof(file), "%s.signed", name);
	path_of(to, sizeof(to), file);
	if (rename(from, to) == -1) {
		perror(from);
		exit(1);
	}
}

/* Append the delegation of every child zone of test. to parent. */
static void
add_delegations(char *parent, size_t size)
{
	size_t i, len;

	for (i = 1; i < sizeof(zone_names) / sizeof(zone_names[0]); i++) {
		if (strcmp(zone_names[i], "plain.nsec3.test") == 0)
			continue;
		len = strlen(parent);
		snprintf(parent + len, size - len, "%s. IN NS ns.test.\n",
		    zone_names[i]);
	}
}

/* Sign good.test with a KSK and a ZSK, and add its DS to parent. */
static void
make_good_zone(char *parent, size_t size)
{
	char ksk[KEY_BASE_MAX], zsk[KEY_BASE_MAX], file[KEY_BASE_MAX + 8];

	keygen(ksk, "ED25519", NULL, 1, "good.test.");
	keygen(zsk, "ED25519", NULL, 0, "good.test.");
	write_er1_zone("good.test", 1,
	    "*.wild IN TXT \"wildcard\"\nalias IN CNAME _er\n");
	signzone("good.test", ksk, zsk, 0, VALID_DEFAULT);
	snprintf(file, sizeof(file), "%s.ds", ksk);
	append_file_line(parent, size, file);
	snprintf(anchor_good_key, sizeof(anchor_good_key), "%s.key", ksk);
}

/* Make the zones that fail validation, and add their DS to parent. */
static void
make_broken_zones(char *parent, size_t size)
{
	static const struct {
		const char	*name;
		enum validity	 validity;
	} children[] = {
		{ "altered.test", VALID_DEFAULT },
		{ "expired.test", VALID_EXPIRED },
		{ "soon.test", VALID_SOON },
		{ "nosig.test", VALID_DEFAULT },
	};
	char ksk[KEY_BASE_MAX], unused[KEY_BASE_MAX], file[KEY_BASE_MAX + 8];
	size_t i;

	for (i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		snprintf(file, sizeof(file), "%s.", children[i].name);
		keygen(ksk, "ECDSAP256SHA256", NULL, 1, file);
		write_er1_zone(children[i].name, 1, "");
		signzone(children[i].name, ksk, NULL, 0, children[i].validity);
		snprintf(file, sizeof(file), "%s.ds", ksk);
		append_file_line(parent, size, file);
	}
	alter_zone();
	edit_signed("nosig.test", "_er.nosig.test.", "\tRRSIG\tTXT ", "");

	/* badds.test is signed with one key, and test. has another's DS. */
	keygen(ksk, "ECDSAP256SHA256", NULL, 1, "badds.test.");
	keygen(unused, "ECDSAP256SHA256", NULL, 1, "badds.test.");
	write_er1_zone("badds.test", 1, "");
	signzone("badds.test", ksk, NULL, 0, VALID_DEFAULT);
	snprintf(file, sizeof(file), "%s.ds", unused);
	append_file_line(parent, size, file);
}

/* Make nsec3.test (DS in parent) and the unsigned zones. */
static void
make_nsec3_and_unsigned_zones(char *parent, size_t size)
{
	char ksk[KEY_BASE_MAX], file[KEY_BASE_MAX + 8];

	keygen(ksk, "RSASHA256", "2048", 1, "nsec3.test.");
	write_er1_zone("nsec3.test", 0,
	    "plain IN NS ns.test.\n*.wild IN TXT \"wildcard\"\n");
	signzone("nsec3.test", ksk, NULL, 1, VALID_DEFAULT);
	snprintf(file, sizeof(file), "%s.ds", ksk);
	append_file_line(parent, size, file);

	write_er1_zone("plain.test", 1, "");
	write_er1_zone("plain.nsec3.test", 1, "");
	rename_zone("plain.test");
	rename_zone("plain.nsec3.test");
}

/* Make every key, zone and anchor file. */
static void
make_zones(void)
{
	char ksk[KEY_BASE_MAX], zsk[KEY_BASE_MAX], unused[KEY_BASE_MAX];
	char parent[ZONE_TEXT_MAX];

	snprintf(parent, sizeof(parent),
	    "$ORIGIN test.\n$TTL 300\n"
	    "@ IN SOA ns.test. admin.test. 1 3600 900 604800 120\n"
	    "@ IN NS ns\nns IN A 127.0.0.1\n");
	add_delegations(parent, sizeof(parent));
	make_good_zone(parent, sizeof(parent));
	make_broken_zones(parent, sizeof(parent));
	make_nsec3_and_unsigned_zones(parent, sizeof(parent));

	keygen(ksk, "ECDSAP256SHA256", NULL, 1, "test.");
	keygen(zsk, "ECDSAP256SHA256", NULL, 0, "test.");
	write_file("test.zone", parent);
	signzone("test", ksk, zsk, 0, VALID_DEFAULT);
	snprintf(anchor_test_ds, sizeof(anchor_test_ds), "%s.ds", ksk);

	keygen(unused, "ECDSAP256SHA256", NULL, 1, "test.");
	snprintf(anchor_wrong_ds, sizeof(anchor_wrong_ds), "%s.ds", unused);
	keygen(unused, "ED25519", NULL, 1, "other.example.");
	snprintf(anchor_other_key, sizeof(anchor_other_key), "%s.key", unused);
}

/*
 * NSD.
 */

/* Returns a port that is free for UDP and TCP on 127.0.0.1, or 0. */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int udp, tcp, port = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(udp, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(udp, (struct sockaddr *)&sin, &len) == 0 &&
	    bind(tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		port = ntohs(sin.sin_port);
	close(udp);
	close(tcp);
	return port;
}

static int
tcp_port_open(int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void
nsd_write_conf(void)
{
	char conf[4096];
	size_t i, len;

	len = (size_t)snprintf(conf, sizeof(conf),
	    "server:\n"
	    "  ip-address: 127.0.0.1@%d\n"
	    "  port: %d\n"
	    "  pidfile: \"%s/nsd.pid\"\n"
	    "  zonesdir: \"%s\"\n"
	    "  zonelistfile: \"%s/zone.list\"\n"
	    "  xfrdfile: \"%s/xfrd.state\"\n"
	    "  xfrdir: \"%s\"\n"
	    "  username: \"\"\n"
	    "  database: \"\"\n"
	    "  chroot: \"\"\n"
	    "  server-count: 1\n"
	    "remote-control:\n"
	    "  control-enable: no\n",
	    nsd_port, nsd_port, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	for (i = 0; i < sizeof(zone_names) / sizeof(zone_names[0]); i++)
		len += (size_t)snprintf(conf + len, sizeof(conf) - len,
		    "zone:\n  name: %s\n  zonefile: %s.signed\n",
		    zone_names[i], zone_names[i]);
	write_file("nsd.conf", conf);
}

/*
 * Start NSD in the foreground as a child on a free port.  Returns 0 once
 * it listens, or -1 if it exited or did not listen within 10 seconds.
 */
static int
nsd_start_once(void)
{
	char conf[128], log[128];
	double end;
	int status;

	if ((nsd_port = free_port()) == 0)
		return -1;
	snprintf(nsd_addr, sizeof(nsd_addr), "127.0.0.1:%d", nsd_port);
	nsd_write_conf();
	path_of(conf, sizeof(conf), "nsd.conf");
	path_of(log, sizeof(log), "nsd.log");
	if ((nsd_pid = fork()) == -1)
		return -1;
	if (nsd_pid == 0) {
		if (freopen(log, "w", stderr) == NULL ||
		    freopen("/dev/null", "r", stdin) == NULL)
			_exit(127);
		execl(NSD_PATH, "nsd", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (end = ev_time() + 10; ev_time() < end; usleep(50000)) {
		if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid) {
			nsd_pid = -1;
			return -1;
		}
		if (tcp_port_open(nsd_port))
			return 0;
	}
	kill(nsd_pid, SIGTERM);
	waitpid(nsd_pid, NULL, 0);
	nsd_pid = -1;
	return -1;
}

/* Start NSD, trying other ports when another program takes the first. */
static int
nsd_start(void)
{
	int i;

	for (i = 0; i < 5; i++)
		if (nsd_start_once() == 0)
			return 0;
	return -1;
}

static void
nsd_stop(void)
{
	if (nsd_pid <= 0)
		return;
	kill(nsd_pid, SIGTERM);
	waitpid(nsd_pid, NULL, 0);
	nsd_pid = -1;
}

/*
 * The forging proxy.
 */

enum forge_mode {
	FORGE_DECOY,		/* answer target with NSD's answer for decoy */
	FORGE_NO_AUTHORITY,	/* answer target without authority records */
};

struct forge {
	pid_t	pid;
	char	addr[32];
};

/* Send a query to NSD on fd and return its parsed answer, or NULL. */
static ldns_pkt *
forge_ask(int fd, const ldns_pkt *query)
{
	static uint8_t buf[65536];
	ldns_pkt *answer = NULL;
	uint8_t *wire = NULL;
	size_t len;
	ssize_t n;

	if (ldns_pkt2wire(&wire, query, &len) != LDNS_STATUS_OK)
		return NULL;
	n = send(fd, wire, len, 0) == -1 ? -1 : recv(fd, buf, sizeof(buf), 0);
	free(wire);
	if (n <= 0 || ldns_wire2pkt(&answer, buf, (size_t)n) != LDNS_STATUS_OK)
		return NULL;
	return answer;
}

/* Set the name of a packet's question. */
static void
forge_set_qname(ldns_pkt *pkt, const ldns_rdf *name)
{
	ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);

	ldns_rdf_deep_free(ldns_rr_owner(q));
	ldns_rr_set_owner(q, ldns_rdf_clone(name));
}

/* Answer one query: forged for target, passed through for the rest. */
static ldns_pkt *
forge_answer(int upstream, ldns_pkt *query, enum forge_mode mode,
    const ldns_rdf *target, const ldns_rdf *decoy)
{
	const ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(query), 0);
	int forged = q != NULL &&
	    ldns_dname_compare(ldns_rr_owner(q), target) == 0;
	ldns_pkt *answer;

	if (forged && mode == FORGE_DECOY)
		forge_set_qname(query, decoy);
	if ((answer = forge_ask(upstream, query)) == NULL || !forged)
		return answer;
	if (mode == FORGE_DECOY)
		forge_set_qname(answer, target);
	else {
		ldns_rr_list_deep_free(ldns_pkt_authority(answer));
		ldns_pkt_set_authority(answer, ldns_rr_list_new());
		ldns_pkt_set_nscount(answer, 0);
	}
	return answer;
}

/* The proxy's loop, in the child: UDP from fd to NSD and back. */
static void
forge_serve(int fd, enum forge_mode mode, const char *target,
    const char *decoy)
{
	struct sockaddr_in nsd;
	struct sockaddr_storage peer;
	struct timeval tv = { .tv_sec = 2 };
	ldns_rdf *t = ldns_dname_new_frm_str(target);
	ldns_rdf *d = ldns_dname_new_frm_str(decoy);
	ldns_pkt *query, *answer;
	static uint8_t buf[65536];
	uint8_t *wire;
	socklen_t plen;
	size_t len;
	ssize_t n;
	int up = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&nsd, 0, sizeof(nsd));
	nsd.sin_family = AF_INET;
	nsd.sin_port = htons(nsd_port);
	nsd.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(up, (struct sockaddr *)&nsd, sizeof(nsd)) == -1 ||
	    setsockopt(up, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		_exit(2);
	for (;;) {
		plen = sizeof(peer);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer,
		    &plen);
		query = NULL;
		if (n <= 0 || ldns_wire2pkt(&query, buf, (size_t)n) !=
		    LDNS_STATUS_OK)
			continue;
		answer = forge_answer(up, query, mode, t, d);
		wire = NULL;
		if (answer != NULL &&
		    ldns_pkt2wire(&wire, answer, &len) == LDNS_STATUS_OK)
			sendto(fd, wire, len, 0, (struct sockaddr *)&peer,
			    plen);
		free(wire);
		ldns_pkt_free(answer);
		ldns_pkt_free(query);
	}
}

/* Start a forging proxy on 127.0.0.1.  Returns 0 or -1. */
static int
forge_start(struct forge *f, enum forge_mode mode, const char *target,
    const char *decoy)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1 ||
	    (f->pid = fork()) == -1) {
		close(fd);
		return -1;
	}
	if (f->pid == 0)
		forge_serve(fd, mode, target, decoy);
	close(fd);
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	return 0;
}

static void
forge_stop(struct forge *f)
{
	kill(f->pid, SIGTERM);
	waitpid(f->pid, NULL, 0);
}

/*
 * The event loop and callbacks.
 */

static void
noop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
}

/* Run the loop until *calls reaches want or limit seconds have passed. */
static void
run_until(const int *calls, int want, double limit)
{
	double end = ev_time() + limit;
	ev_timer tick;

	/* The tick keeps ev_run() from returning at once with no watcher. */
	ev_timer_init(&tick, noop_cb, 0.05, 0.05);
	ev_timer_start(loop, &tick);
	while (*calls < want && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
}

struct vresult {
	int			 calls;
	enum dnssec_security	 security;
	enum dns_status		 status;
	uint32_t		 ttl;
	size_t			 nrrs;
	char			 reason[256];
};

static void
vresult_cb(void *arg, const struct dnssec_answer *ans)
{
	struct vresult *r = arg;

	r->calls++;
	r->security = ans->security;
	r->status = ans->dns->status;
	r->ttl = ans->dns->ttl;
	r->nrrs = ans->dns->rrs != NULL ?
	    ldns_rr_list_rr_count(ans->dns->rrs) : 0;
	snprintf(r->reason, sizeof(r->reason), "%s",
	    ans->reason != NULL ? ans->reason : "");
}

/* A validator with the trust anchors of one file in tmpdir, or none. */
static struct dnssec_ctx *
validator(const char *anchor_file, enum dnssec_policy policy)
{
	struct dnssec_config config = { .policy = policy };
	struct dnssec_ctx *v = dnssec_new(loop, dns, &config);
	char path[256], err[512];

	if (anchor_file != NULL) {
		path_of(path, sizeof(path), anchor_file);
		if (dnssec_add_anchor_file(v, path, err, sizeof(err)) < 1) {
			fprintf(stderr, "anchor %s: %s\n", path, err);
			exit(1);
		}
	}
	return v;
}

/* Validate name and type with v and wait for the answer (10 s at most). */
static void
validate(struct dnssec_ctx *v, const char *name, ldns_rr_type type,
    struct vresult *r)
{
	memset(r, 0, sizeof(*r));
	dnssec_lookup(v, name, type, vresult_cb, r);
	CHECK_INT(r->calls, 0);
	run_until(&r->calls, 1, 10.0);
	CHECK_INT(r->calls, 1);
}

/* Validate name and type with a fresh validator with one anchor file. */
static void
validate_with(const char *anchor_file, const char *name, ldns_rr_type type,
    struct vresult *r)
{
	struct dnssec_ctx *v = validator(anchor_file, DNSSEC_POLICY_VALIDATE);

	validate(v, name, type, r);
	dnssec_free(v);
}

/*
 * Trust anchors.
 */

static void
anchor_text_errors(void)
{
	struct dnssec_ctx *v = dnssec_new(loop, dns, NULL);
	char err[256];

	err[0] = '\0';
	CHECK_INT(dnssec_add_anchor(v, "example. IN A 192.0.2.1", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "not a DS or DNSKEY") != NULL);
	CHECK_INT(dnssec_add_anchor(v, "example. IN DNSKEY 0 3 15 "
	    "746rpWg00/0kegmKIX2KpPwb4tn7djSuvh/jE8gWsTY=", err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "Zone Key flag") != NULL);
	CHECK_INT(dnssec_add_anchor(v, "example. IN DS nonsense", err,
	    sizeof(err)), -1);
	CHECK_INT(dnssec_add_anchor(v, "example. IN DS 57144 15 2 "
	    "b77658657cb06b5a4362f5c87ef2033193dfbf79fbacd2ee2d0ff62f30f10f0a",
	    err, sizeof(err)), 0);
	dnssec_free(v);
}

static void
anchor_file_forms(void)
{
	struct dnssec_ctx *v = dnssec_new(loop, dns, NULL);
	char path[256], err[256];

	write_file("anchors.ok",
	    "; a comment\n$ORIGIN example.\n$TTL 60\n"
	    "@ IN DS 57144 15 2 "
	    "b77658657cb06b5a4362f5c87ef2033193dfbf79fbacd2ee2d0ff62f30f10f0a\n"
	    "sub IN DNSKEY 257 3 15 "
	    "746rpWg00/0kegmKIX2KpPwb4tn7djSuvh/jE8gWsTY=\n");
	path_of(path, sizeof(path), "anchors.ok");
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), 2);

	write_file("anchors.bad", "example. IN DS 57144 15 2 "
	    "b77658657cb06b5a4362f5c87ef2033193dfbf79fbacd2ee2d0ff62f30f10f0a\n"
	    "example. IN A 192.0.2.1\n");
	path_of(path, sizeof(path), "anchors.bad");
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "anchors.bad:2:") != NULL);

	write_file("anchors.empty", "; nothing\n");
	path_of(path, sizeof(path), "anchors.empty");
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "no DS or DNSKEY record") != NULL);

	path_of(path, sizeof(path), "anchors.missing");
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "anchors.missing") != NULL);
	dnssec_free(v);
}

static void
anchor_file_limits(void)
{
	struct dnssec_ctx *v = dnssec_new(loop, dns, NULL);
	char text[8192], path[256], err[256];
	size_t i, len = 0;

	/* 17 names: one more than the limit, and nothing gets added. */
	for (i = 0; i < 17; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "n%zu.example. IN DS 1 15 2 "
		    "b77658657cb06b5a4362f5c87ef2033193dfbf79fbacd2ee2d0ff62f"
		    "30f10f0a\n", i);
	write_file("anchors.many", text);
	path_of(path, sizeof(path), "anchors.many");
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "too many trust anchor names") != NULL);
	CHECK_INT(dnssec_add_anchor_file(v, path, err, sizeof(err)), -1);
	dnssec_free(v);
}

/*
 * dns_lookup_dnssec().
 */

struct dresult {
	int		 calls;
	enum dns_status	 status;
	size_t		 nrrs;
	int		 have_lists;
	size_t		 nsigs;
	size_t		 nauthority;
	size_t		 nnsec;
};

static size_t
count_type(const ldns_rr_list *list, ldns_rr_type type)
{
	size_t i, n = 0;

	for (i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(list, i)) == type)
			n++;
	return n;
}

static void
dresult_cb(void *arg, const struct dns_answer *ans)
{
	struct dresult *r = arg;

	r->calls++;
	r->status = ans->status;
	r->nrrs = ans->rrs != NULL ? ldns_rr_list_rr_count(ans->rrs) : 0;
	r->have_lists = ans->sigs != NULL && ans->cnames != NULL &&
	    ans->authority != NULL;
	r->nsigs = count_type(ans->sigs, LDNS_RR_TYPE_RRSIG);
	r->nauthority = ans->authority != NULL ?
	    ldns_rr_list_rr_count(ans->authority) : 0;
	r->nnsec = count_type(ans->authority, LDNS_RR_TYPE_NSEC);
}

static void
dns_lookup_dnssec_records(void)
{
	struct dresult r;

	memset(&r, 0, sizeof(r));
	dns_lookup_dnssec(dns, "_er.good.test", LDNS_RR_TYPE_TXT, dresult_cb,
	    &r);
	run_until(&r.calls, 1, 5.0);
	CHECK_INT(r.calls, 1);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.nrrs, 2);
	CHECK(r.have_lists);
	CHECK_INT(r.nsigs, 1);

	memset(&r, 0, sizeof(r));
	dns_lookup_dnssec(dns, "nobody._er.good.test", LDNS_RR_TYPE_TXT,
	    dresult_cb, &r);
	run_until(&r.calls, 1, 5.0);
	CHECK_INT(r.status, DNS_NXDOMAIN);
	CHECK(r.have_lists);
	CHECK(r.nnsec >= 1);
	CHECK(r.nauthority > r.nnsec);

	/* A lookup without DNSSEC has no lists and its own cache entry. */
	memset(&r, 0, sizeof(r));
	dns_lookup(dns, "_er.good.test", LDNS_RR_TYPE_TXT, dresult_cb, &r);
	run_until(&r.calls, 1, 5.0);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.nrrs, 2);
	CHECK(!r.have_lists);
}

/*
 * Validation.
 */

static void
secure_with_parent_anchor(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.nrrs, 2);
	CHECK(r.ttl > 0);
	CHECK(r.ttl <= 300);
}

static void
secure_with_own_dnskey_anchor(void)
{
	struct vresult r;

	validate_with(anchor_good_key, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 2);
}

static void
secure_denial_nsec(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "nobody._er.good.test",
	    LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NXDOMAIN);
	validate_with(anchor_test_ds, "_er.good.test", LDNS_RR_TYPE_A, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NODATA);
	/* The DS of a name inside a zone: NODATA from the zone itself. */
	validate_with(anchor_test_ds, "_er.good.test", LDNS_RR_TYPE_DS, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NODATA);
}

static void
secure_nsec3(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.nsec3.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 2);
	validate_with(anchor_test_ds, "nobody._er.nsec3.test",
	    LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NXDOMAIN);
	validate_with(anchor_test_ds, "_er.nsec3.test", LDNS_RR_TYPE_A, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NODATA);
}

static void
bogus_altered_record(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.altered.test", LDNS_RR_TYPE_TXT,
	    &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK_INT(r.status, DNS_SERVFAIL);
	CHECK_INT(r.nrrs, 0);
	CHECK_INT(r.ttl, 0);
}

static void
bogus_expired_signature(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.expired.test", LDNS_RR_TYPE_TXT,
	    &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK(strstr(r.reason, "expired") != NULL);
}

static void
ttl_capped_by_expiration(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.soon.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK(r.ttl > 0);
	CHECK(r.ttl <= 120);
}

static void
bogus_missing_signature(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.nosig.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK(strstr(r.reason, "no RRSIG record in a signed zone") != NULL);
}

static void
bogus_ds_mismatch(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.badds.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK_STR(r.reason, "no DNSKEY matches the DS records");
}

static void
bogus_anchor_mismatch(void)
{
	struct vresult r;

	validate_with(anchor_wrong_ds, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK_STR(r.reason, "no DNSKEY matches the trust anchor");
	validate_with(anchor_wrong_ds, "_er.plain.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
}

static void
secure_wildcard_and_cname(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "x.wild.good.test", LDNS_RR_TYPE_TXT,
	    &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 1);
	validate_with(anchor_test_ds, "x.wild.nsec3.test", LDNS_RR_TYPE_TXT,
	    &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 1);
	/* The wildcard has no A record: a wildcard NODATA proof. */
	validate_with(anchor_test_ds, "x.wild.good.test", LDNS_RR_TYPE_A, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.status, DNS_NODATA);
	validate_with(anchor_test_ds, "alias.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 2);
}

/* Validate name TXT through a forging proxy, then stop the proxy. */
static void
validate_forged(enum forge_mode mode, const char *target, const char *decoy,
    struct vresult *r)
{
	struct dns_ctx *path = dns_new(loop, NULL);
	struct dnssec_config config = { .policy = DNSSEC_POLICY_VALIDATE };
	struct dnssec_ctx *v = dnssec_new(loop, path, &config);
	char file[256], err[256];
	struct forge f;

	memset(r, 0, sizeof(*r));
	if (forge_start(&f, mode, target, decoy) == -1) {
		CHECK(!"forging proxy started");
		return;
	}
	dns_add_resolver(path, f.addr);
	path_of(file, sizeof(file), anchor_test_ds);
	CHECK_INT(dnssec_add_anchor_file(v, file, err, sizeof(err)), 1);
	validate(v, target, LDNS_RR_TYPE_TXT, r);
	forge_stop(&f);
	dnssec_free(v);
	dns_free(path);
}

static void
bogus_forged_denial(void)
{
	char owner[300];
	struct vresult r;

	/* alice's rule exists; NXDOMAIN and NSECs come from another name. */
	rule_owner(owner, "alice", 0, "good.test");
	validate_forged(FORGE_DECOY, owner, "nobody._er.good.test.", &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK_INT(r.status, DNS_SERVFAIL);
	CHECK(strstr(r.reason, "do not prove that the name does not exist") !=
	    NULL);
	validate_forged(FORGE_NO_AUTHORITY, "x.wild.good.test.", "", &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK(strstr(r.reason, "wildcard answer without a proof") != NULL);
	validate_forged(FORGE_NO_AUTHORITY, "nobody._er.good.test.", "", &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
}

static void
insecure_unsigned_delegation(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.plain.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.nrrs, 2);
	validate_with(anchor_test_ds, "nobody._er.plain.test",
	    LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
	CHECK_INT(r.status, DNS_NXDOMAIN);
}

static void
insecure_nsec3_delegation(void)
{
	struct vresult r;

	validate_with(anchor_test_ds, "_er.plain.nsec3.test",
	    LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
	CHECK_INT(r.nrrs, 2);
}

static void
insecure_outside_anchor(void)
{
	struct vresult r;

	validate_with(anchor_other_key, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
	CHECK_INT(r.nrrs, 2);
	/* An anchor at good.test leaves its sibling plain.test uncovered. */
	validate_with(anchor_good_key, "_er.plain.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
}

static void
insecure_unknown_algorithm(void)
{
	struct vresult r;

	/* DSA (algorithm 3) is one that validators must not use (RFC 8624). */
	write_file("anchors.dsa", "test. IN DS 12345 3 2 "
	    "b77658657cb06b5a4362f5c87ef2033193dfbf79fbacd2ee2d0ff62f"
	    "30f10f0a\n");
	validate_with("anchors.dsa", "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "insecure");
	CHECK_INT(r.nrrs, 2);
}

static void
validation_cached(void)
{
	struct dnssec_ctx *v = validator(anchor_test_ds,
	    DNSSEC_POLICY_VALIDATE);
	struct vresult r;
	uint64_t checks, queries;

	validate(v, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	checks = dnssec_signature_checks(v);
	queries = dns_queries_sent(dns);
	CHECK(checks >= 3);
	validate(v, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK_INT(r.nrrs, 2);
	CHECK_INT(dnssec_signature_checks(v), checks);
	CHECK_INT(dns_queries_sent(dns), queries);
	/* A sibling name reuses the cached keys: only its proof is checked. */
	validate(v, "nobody._er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "secure");
	CHECK(dnssec_signature_checks(v) - checks <= 3);
	/* Bogus results are cached too. */
	validate(v, "_er.altered.test", LDNS_RR_TYPE_TXT, &r);
	checks = dnssec_signature_checks(v);
	validate(v, "_er.altered.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "bogus");
	CHECK_INT(dnssec_signature_checks(v), checks);
	dnssec_free(v);
}

static void
lookup_failures(void)
{
	struct dns_config config = { .timeout = 0.3, .attempts = 1 };
	struct dns_ctx *down = dns_new(loop, &config);
	struct dnssec_ctx *v = validator(anchor_test_ds,
	    DNSSEC_POLICY_VALIDATE);
	struct dnssec_config vconfig = { .policy = DNSSEC_POLICY_VALIDATE };
	struct dnssec_ctx *vdown = dnssec_new(loop, down, &vconfig);
	struct vresult r;
	char path[256], err[256];

	validate(v, "bad..name", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "unvalidated");
	CHECK_INT(r.status, DNS_SERVFAIL);

	/* Nothing listens on port 9 of 127.0.0.1. */
	dns_add_resolver(down, "127.0.0.1:9");
	path_of(path, sizeof(path), anchor_test_ds);
	CHECK(dnssec_add_anchor_file(vdown, path, err, sizeof(err)) == 1);
	validate(vdown, "_er.good.test", LDNS_RR_TYPE_TXT, &r);
	CHECK_STR(dnssec_security_name(r.security), "unvalidated");
	CHECK(r.status == DNS_SERVFAIL || r.status == DNS_TIMEOUT);
	CHECK_INT(r.nrrs, 0);
	dnssec_free(vdown);
	dnssec_free(v);
	dns_free(down);
}

static void
cancelled_lookups(void)
{
	struct dnssec_ctx *v = validator(anchor_test_ds,
	    DNSSEC_POLICY_VALIDATE);
	struct vresult r1, r2;
	struct dnssec_query *q;
	ev_timer tick;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	/* Cancelled before it starts, and while it waits for DNS. */
	q = dnssec_lookup(v, "_er.expired.test", LDNS_RR_TYPE_TXT, vresult_cb,
	    &r1);
	dnssec_cancel(q);
	q = dnssec_lookup(v, "_er.nsec3.test", LDNS_RR_TYPE_TXT, vresult_cb,
	    &r2);
	ev_timer_init(&tick, noop_cb, 0.01, 0.);
	ev_timer_start(loop, &tick);
	ev_run(loop, EVRUN_ONCE);
	dnssec_cancel(q);
	run_until(&r2.calls, 1, 1.0);
	CHECK_INT(r1.calls, 0);
	CHECK_INT(r2.calls, 0);
	/* A context freed with a lookup running drops it. */
	dnssec_lookup(v, "_er.badds.test", LDNS_RR_TYPE_TXT, vresult_cb, &r1);
	ev_timer_start(loop, &tick);
	ev_run(loop, EVRUN_ONCE);
	dnssec_free(v);
	run_until(&r1.calls, 1, 0.5);
	CHECK_INT(r1.calls, 0);
}

static void
policy_decisions(void)
{
	struct dnssec_config require = { .policy = DNSSEC_POLICY_REQUIRE };
	struct dnssec_ctx *v = dnssec_new(loop, dns, NULL);
	struct dnssec_ctx *strict = dnssec_new(loop, dns, &require);

	CHECK_INT(dnssec_policy_rejects(v, DNSSEC_SECURE), 0);
	CHECK_INT(dnssec_policy_rejects(v, DNSSEC_INSECURE), 0);
	CHECK_INT(dnssec_policy_rejects(v, DNSSEC_BOGUS), 1);
	CHECK_INT(dnssec_policy_rejects(v, DNSSEC_UNVALIDATED), 0);
	CHECK_INT(dnssec_policy_rejects(strict, DNSSEC_SECURE), 0);
	CHECK_INT(dnssec_policy_rejects(strict, DNSSEC_INSECURE), 1);
	CHECK_INT(dnssec_policy_rejects(strict, DNSSEC_BOGUS), 1);
	dnssec_free(strict);
	dnssec_free(v);
}

/*
 * Routing through route_lookup().
 */

struct rresult {
	int			 calls;
	enum route_verdict	 verdict;
	char			 enhanced[16];
	char			 dst[REC_MAX_ADDR + 1];
};

static void
rresult_cb(void *arg, const struct route_result *res)
{
	struct rresult *r = arg;

	r->calls++;
	r->verdict = res->verdict;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s",
	    res->enhanced != NULL ? res->enhanced : "");
	snprintf(r->dst, sizeof(r->dst), "%s", res->rule != NULL &&
	    res->rule->ndsts > 0 ? res->rule->dsts[0] : "");
}

/*
 * Route local@domain with a fresh route context, validated by a fresh
 * validator with anchor_file unless it is NULL.
 */
static void
route_with(const char *anchor_file, enum dnssec_policy policy,
    const char *local, const char *domain, struct rresult *r)
{
	struct route_ctx *route = route_new(loop, dns, &relay_key, 1, 1000,
	    1 << 20);
	struct dnssec_ctx *v = NULL;

	if (anchor_file != NULL) {
		v = validator(anchor_file, policy);
		route_set_dnssec(route, v);
	}
	memset(r, 0, sizeof(*r));
	route_lookup(route, local, domain, rresult_cb, r);
	run_until(&r->calls, 1, 10.0);
	CHECK_INT(r->calls, 1);
	route_free(route);
	dnssec_free(v);
}

static void
route_secure_forward(void)
{
	struct rresult r;

	route_with(anchor_test_ds, DNSSEC_POLICY_REQUIRE, "alice", "good.test",
	    &r);
	CHECK_INT(r.verdict, ROUTE_FORWARD);
	CHECK_STR(r.dst, "alice@mailbox.example");
	/* No rule for bob: the signed NXDOMAIN leads to the catch-all. */
	route_with(anchor_test_ds, DNSSEC_POLICY_REQUIRE, "bob", "good.test",
	    &r);
	CHECK_INT(r.verdict, ROUTE_FORWARD);
	CHECK_STR(r.dst, "catchall@mailbox.example");
	route_with(anchor_test_ds, DNSSEC_POLICY_REQUIRE, "alice", "nsec3.test",
	    &r);
	CHECK_INT(r.verdict, ROUTE_FORWARD);
	CHECK_STR(r.dst, "catchall@mailbox.example");
}

static void
route_secure_not_ours(void)
{
	struct rresult r;

	route_with(anchor_test_ds, DNSSEC_POLICY_REQUIRE, "alice",
	    "unknown.good.test", &r);
	CHECK_INT(r.verdict, ROUTE_NOT_OURS);
}

static void
route_bogus_tempfails(void)
{
	struct rresult r;

	/* Without validation the attacker's key and rule take the mail... */
	route_with(NULL, DNSSEC_POLICY_VALIDATE, "alice", "altered.test", &r);
	CHECK_INT(r.verdict, ROUTE_FORWARD);
	CHECK_STR(r.dst, "attacker@evil.example");
	/* ...with validation the sender gets 451 4.7.5 and retries. */
	route_with(anchor_test_ds, DNSSEC_POLICY_VALIDATE, "alice",
	    "altered.test", &r);
	CHECK_INT(r.verdict, ROUTE_TEMPFAIL);
	CHECK_STR(r.enhanced, "4.7.5");
	route_with(anchor_test_ds, DNSSEC_POLICY_VALIDATE, "alice",
	    "expired.test", &r);
	CHECK_INT(r.verdict, ROUTE_TEMPFAIL);
	CHECK_STR(r.enhanced, "4.7.5");
	route_with(anchor_wrong_ds, DNSSEC_POLICY_VALIDATE, "alice",
	    "good.test", &r);
	CHECK_INT(r.verdict, ROUTE_TEMPFAIL);
	CHECK_STR(r.enhanced, "4.7.5");
}

static void
route_insecure_policy(void)
{
	struct rresult r;

	route_with(anchor_test_ds, DNSSEC_POLICY_VALIDATE, "alice",
	    "plain.test", &r);
	CHECK_INT(r.verdict, ROUTE_FORWARD);
	CHECK_STR(r.dst, "alice@mailbox.example");
	route_with(anchor_test_ds, DNSSEC_POLICY_REQUIRE, "alice",
	    "plain.test", &r);
	CHECK_INT(r.verdict, ROUTE_TEMPFAIL);
	CHECK_STR(r.enhanced, "4.7.5");
}

/* Make the ER1 keys and every zone.  Returns 0, or -1 without a tool. */
static int
setup(void)
{
	const char *tools[] = { NSD_PATH, KEYGEN_PATH, SIGNZONE_PATH };
	size_t i;

	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (access(tools[i], X_OK) == -1) {
			fprintf(stderr, "%s: %s\n", tools[i], strerror(errno));
			return -1;
		}
	crypto_sign_keypair(owner_pk, owner_sk);
	crypto_sign_keypair(evil_pk, evil_sk);
	randombytes_buf(salt, sizeof(salt));
	crypto_box_keypair(relay_key.pub, relay_key.sec);
	relay_key.kid = rec_kid(relay_key.pub, sizeof(relay_key.pub));
	make_zones();
	return 0;
}

int
main(void)
{
	int ready;

	log_init("test_dnssec", getenv("TEST_DNSSEC_DEBUG") != NULL ?
	    LOG_LVL_DEBUG : LOG_LVL_ERR);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dnssec.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	loop = EV_DEFAULT;
	dns = dns_new(loop, &(struct dns_config){ .timeout = 2.,
	    .attempts = 2 });
	ready = setup() == 0 && nsd_start() == 0;
	if (!ready)
		fprintf(stderr, "NSD or the zones are not ready; see %s\n",
		    tmpdir);
	else
		dns_add_resolver(dns, nsd_addr);

	RUN(anchor_text_errors);
	RUN(anchor_file_forms);
	RUN(anchor_file_limits);
	RUN(policy_decisions);
	RUN(dns_lookup_dnssec_records);
	RUN(secure_with_parent_anchor);
	RUN(secure_with_own_dnskey_anchor);
	RUN(secure_denial_nsec);
	RUN(secure_nsec3);
	RUN(bogus_altered_record);
	RUN(bogus_expired_signature);
	RUN(ttl_capped_by_expiration);
	RUN(bogus_missing_signature);
	RUN(bogus_ds_mismatch);
	RUN(bogus_anchor_mismatch);
	RUN(secure_wildcard_and_cname);
	RUN(bogus_forged_denial);
	RUN(insecure_unsigned_delegation);
	RUN(insecure_nsec3_delegation);
	RUN(insecure_outside_anchor);
	RUN(insecure_unknown_algorithm);
	RUN(validation_cached);
	RUN(lookup_failures);
	RUN(cancelled_lookups);
	RUN(route_secure_forward);
	RUN(route_secure_not_ours);
	RUN(route_bogus_tempfails);
	RUN(route_insecure_policy);

	nsd_stop();
	dns_free(dns);
	/* Keep the directory when something failed, for its logs. */
	if (ready && check_failed == 0)
		nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	CHECK_SUMMARY();
}
