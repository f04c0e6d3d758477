/*
 * router: the relay daemon.  Parses the command line, loads the relay key
 * and SRS secrets, sets up the DNS client (resolvers or zone files), binds
 * the listening sockets and runs the libev loop until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "addr.h"
#include "arcseal.h"
#include "auth.h"
#include "dns.h"
#include "dnssec.h"
#include "log.h"
#include "psl.h"
#include "record.h"
#include "route.h"
#include "smtp_server.h"
#include "srs.h"
#include "tls.h"
#include "xmalloc.h"

#define MAX_LISTEN	16
#define MAX_ZONES	64
#define MAX_RESOLVERS	8
#define MAX_WORKERS	64
#define MAX_RELAY_KEYS	4
#define MAX_ANCHORS	8
/* Largest --max-size: 4 GiB, so that bounds derived from it cannot wrap. */
#define MAX_MESSAGE_SIZE	(4ULL << 30)
#define MAX_HOLD_MEMORY		(1ULL << 40)
#define DEFAULT_HOLD_MEMORY	(512ULL << 20)

struct listener {
	ev_io	 io;
	int	 fd;
	const struct smtp_server_config *cfg;
};

/* The state of one worker process: its own loop, DNS client and caches. */
struct worker {
	struct ev_loop		*loop;
	struct smtp_server_config cfg;
	struct listener		 listeners[MAX_LISTEN];
	size_t			 nlisteners;
	ev_signal		 sigterm, sigint, sighup;
	ev_timer		 drain;
	double			 drain_deadline;
};

struct options {
	const char	*listen[MAX_LISTEN];
	size_t		 nlisten;
	const char	*zones[MAX_ZONES];
	size_t		 nzones;
	const char	*resolvers[MAX_RESOLVERS];
	size_t		 nresolvers;
	const char	*hostname;
	const char	*relay_keys[MAX_RELAY_KEYS];
	size_t		 nrelay_keys;
	const char	*srs_domain;
	const char	*srs_secret;
	int		 smtp_port;
	size_t		 max_size;
	int		 log_addresses;
	int		 verbose;
	long		 workers;
	const char	*user;
	double		 shutdown_timeout;
	const char	*tls_cert;
	const char	*tls_key;
	size_t		 max_sessions;
	size_t		 max_per_ip;
	double		 timeout;
	int		 normalize_bare_eol;
	const char	*trust_anchors[MAX_ANCHORS];
	size_t		 ntrust_anchors;
	enum dnssec_policy dnssec_policy;
	struct auth_policy auth;
	const char	*psl_file;
	const char	*postmaster;
	int		 hold;
	size_t		 hold_memory;
	const char	*arc_key;
	const char	*arc_domain;
	const char	*arc_selector;
};

static void
usage(FILE *out)
{
	fprintf(out,
"usage: router --listen ADDR:PORT [--listen ...] [--hostname NAME]\n"
"              --relay-key FILE... --srs-domain DOMAIN --srs-secret FILE\n"
"              [--resolver ADDR[:PORT]]... [--zone FILE]... [--smtp-port PORT]\n"
"              [--max-size BYTES] [--workers N] [--user NAME]\n"
"              [--shutdown-timeout SECONDS] [--tls-cert FILE --tls-key FILE]\n"
"              [--max-sessions N] [--max-per-ip N] [--timeout SECONDS]\n"
"              [--bare-eol reject|normalize] [--trust-anchor FILE]...\n"
"              [--dnssec validate|require] [--no-auth-checks]\n"
"              [--no-authentication-results] [--psl FILE]\n"
"              [--dmarc-reject ACTION] [--dmarc-quarantine ACTION]\n"
"              [--spf-fail ACTION] [--unauthenticated ACTION]\n"
"              [--hold] [--hold-memory BYTES]\n"
"              [--arc-key FILE --arc-domain DOMAIN --arc-selector NAME]\n"
"              [--arc-trusted-sealer DOMAIN]...\n"
"              [--postmaster ADDRESS] [--log-addresses] [-v]\n"
"\n"
"  --listen ADDR:PORT     address to accept SMTP on (repeatable; IPv6 as [::1]:25)\n"
"  --hostname NAME        name used in the greeting, EHLO and Received headers\n"
"                         (default: the system's host name)\n"
"  --relay-key FILE       relay key pair from \"dnsconf relay-keygen\";\n"
"                         repeatable while rotating keys, the first is current\n"
"  --srs-domain DOMAIN    domain of rewritten senders; its MX points at this relay\n"
"  --srs-secret FILE      HMAC secrets for SRS, one per line, the first signs\n"
"  --resolver ADDR[:PORT] DNS server to query (repeatable; default: the\n"
"                         nameservers of /etc/resolv.conf)\n"
"  --zone FILE            answer lookups from this zone file instead of DNS\n"
"                         (repeatable)\n"
"  --smtp-port PORT       TCP port of destination mail exchangers (default 25)\n"
"  --max-size BYTES       largest message accepted (default 26214400)\n"
"  --workers N            worker processes (default: one per online CPU)\n"
"  --user NAME            user to switch to after binding the ports\n"
"  --shutdown-timeout S   on SIGTERM, seconds to let sessions finish (default 30)\n"
"  --tls-cert FILE        PEM certificate chain; enables STARTTLS\n"
"  --tls-key FILE         PEM private key of the certificate\n"
"  --max-sessions N       sessions per worker before 421 (default 20000)\n"
"  --max-per-ip N         sessions per client address and worker (default 50)\n"
"  --timeout SECONDS      wait for the client's next command (default 300,\n"
"                         RFC 5321 section 4.5.3.2.7); data blocks get 180\n"
"                         or this, whichever is shorter\n"
"  --bare-eol ACTION      a bare CR or LF in DATA: \"reject\" the message\n"
"                         (default) or \"normalize\" it to CRLF\n"
"  --trust-anchor FILE    DNSSEC trust anchors (DS or DNSKEY records in\n"
"                         master-file syntax); validates the routing records\n"
"  --dnssec POLICY        with trust anchors: \"validate\" (default) accepts\n"
"                         secure and provably unsigned zones, \"require\"\n"
"                         accepts secure zones only\n"
"  --no-auth-checks       skip SPF, DKIM and DMARC on incoming mail\n"
"  --no-authentication-results\n"
"                         do not prepend an Authentication-Results header\n"
"  --psl FILE             public suffix list for DMARC (default\n"
"                         " PSL_DEFAULT_PATH ")\n"
"  --dmarc-reject ACTION  \"reject\" (default) or \"accept\" mail failing\n"
"                         DMARC under its domain's p=reject\n"
"  --dmarc-quarantine ACTION\n"
"                         \"accept\" (default) or \"reject\" mail failing\n"
"                         DMARC under p=quarantine\n"
"  --spf-fail ACTION      \"reject\" (default) or \"accept\" an SPF fail\n"
"                         without a DKIM pass aligned with the From domain\n"
"  --unauthenticated ACTION\n"
"                         \"accept\" (default) or \"reject\" mail that\n"
"                         passes neither SPF nor DKIM\n"
"  --hold                 keep each message in memory (up to --max-size) until\n"
"                         it is authenticated, so that Authentication-Results\n"
"                         carries the DKIM, DMARC and ARC results too\n"
"  --hold-memory BYTES    message bytes all held messages of a worker may\n"
"                         take; past it new data gets 452 (default 536870912)\n"
"  --arc-key FILE         PEM private key (RSA or Ed25519) to ARC-seal\n"
"                         forwarded mail with; implies --hold\n"
"  --arc-domain DOMAIN    d= of the ARC seal (with --arc-key)\n"
"  --arc-selector NAME    s= of the ARC seal; the public key is published at\n"
"                         NAME._domainkey.DOMAIN (with --arc-key)\n"
"  --arc-trusted-sealer DOMAIN\n"
"                         accept mail that fails a check here when its ARC\n"
"                         chain passes, its newest seal is from DOMAIN and\n"
"                         that seal's results say pass (repeatable)\n"
"  --postmaster ADDRESS   where mail to postmaster of this relay goes\n"
"  --log-addresses        log mail addresses and client IPs in plain text\n"
"                         (default: keyed hashes)\n"
"  -v                     log debug messages\n"
"  -h, --help             show this help\n");
}

static int
parse_action(const char *s, enum auth_action *out)
{
	if (strcmp(s, "accept") == 0)
		*out = AUTH_ACCEPT;
	else if (strcmp(s, "reject") == 0)
		*out = AUTH_REJECT;
	else
		return -1;
	return 0;
}

static int
parse_count(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (*s == '\0' || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -1;
	*out = (size_t)v;
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	const char *name;
	int dnssec_policy_given = 0;
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "relay-key", required_argument, NULL, 'k' },
		{ "srs-domain", required_argument, NULL, 'd' },
		{ "srs-secret", required_argument, NULL, 's' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "zone", required_argument, NULL, 'z' },
		{ "smtp-port", required_argument, NULL, 'p' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "log-addresses", no_argument, NULL, 'A' },
		{ "workers", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "shutdown-timeout", required_argument, NULL, 'T' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "max-sessions", required_argument, NULL, 'S' },
		{ "max-per-ip", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 't' },
		{ "bare-eol", required_argument, NULL, 'B' },
		{ "trust-anchor", required_argument, NULL, 'a' },
		{ "dnssec", required_argument, NULL, 'D' },
		{ "no-auth-checks", no_argument, NULL, 1000 },
		{ "no-authentication-results", no_argument, NULL, 1001 },
		{ "psl", required_argument, NULL, 1002 },
		{ "postmaster", required_argument, NULL, 1007 },
		{ "dmarc-reject", required_argument, NULL, 1003 },
		{ "dmarc-quarantine", required_argument, NULL, 1004 },
		{ "spf-fail", required_argument, NULL, 1005 },
		{ "unauthenticated", required_argument, NULL, 1006 },
		{ "hold", no_argument, NULL, 1008 },
		{ "hold-memory", required_argument, NULL, 1013 },
		{ "arc-key", required_argument, NULL, 1009 },
		{ "arc-domain", required_argument, NULL, 1010 },
		{ "arc-selector", required_argument, NULL, 1011 },
		{ "arc-trusted-sealer", required_argument, NULL, 1012 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->smtp_port = 25;
	o->max_size = 25 * 1024 * 1024;
	o->workers = sysconf(_SC_NPROCESSORS_ONLN);
	if (o->workers < 1)
		o->workers = 1;
	o->shutdown_timeout = 30.;
	o->timeout = 300.;
	o->hold_memory = DEFAULT_HOLD_MEMORY;
	/* The reasons for these defaults are in docs/authentication.md. */
	o->auth.enabled = 1;
	o->auth.add_header = 1;
	o->auth.dmarc_reject = AUTH_REJECT;
	o->auth.dmarc_quarantine = AUTH_ACCEPT;
	o->auth.spf_fail = AUTH_REJECT;
	o->auth.unauthenticated = AUTH_ACCEPT;
	o->max_sessions = 20000;
	o->max_per_ip = 50;
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (o->nlisten >= MAX_LISTEN)
				goto toomany;
			o->listen[o->nlisten++] = optarg;
			break;
		case 'z':
			if (o->nzones >= MAX_ZONES)
				goto toomany;
			o->zones[o->nzones++] = optarg;
			break;
		case 'r':
			if (o->nresolvers >= MAX_RESOLVERS)
				goto toomany;
			o->resolvers[o->nresolvers++] = optarg;
			break;
		case 'H': o->hostname = optarg; break;
		case 'k':
			if (o->nrelay_keys >= MAX_RELAY_KEYS)
				goto toomany;
			o->relay_keys[o->nrelay_keys++] = optarg;
			break;
		case 'd': o->srs_domain = optarg; break;
		case 's': o->srs_secret = optarg; break;
		case 'A': o->log_addresses = 1; break;
		case 'u': o->user = optarg; break;
		case 'C': o->tls_cert = optarg; break;
		case 'K': o->tls_key = optarg; break;
		case 'S':
		case 'P':
			if (parse_count(optarg, c == 'S' ? &o->max_sessions :
			    &o->max_per_ip) < 0) {
				fprintf(stderr, "router: invalid --%s \"%s\": "
				    "expected a count\n", c == 'S' ?
				    "max-sessions" : "max-per-ip", optarg);
				return -1;
			}
			break;
		case 'w':
			o->workers = strtol(optarg, &end, 10);
			if (*end != '\0' || o->workers < 1 ||
			    o->workers > MAX_WORKERS) {
				fprintf(stderr, "router: invalid --workers \"%s\": "
				    "expected 1-%d\n", optarg, MAX_WORKERS);
				return -1;
			}
			break;
		case 1000: o->auth.enabled = 0; break;
		case 1001: o->auth.add_header = 0; break;
		case 1002: o->psl_file = optarg; break;
		case 1007: o->postmaster = optarg; break;
		case 1008: o->hold = 1; break;
		case 1013:
			errno = 0;
			o->hold_memory = (size_t)strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)optarg[0]) || *end != '\0' ||
			    errno != 0 || o->hold_memory == 0 ||
			    o->hold_memory > MAX_HOLD_MEMORY) {
				fprintf(stderr, "router: invalid --hold-memory "
				    "\"%s\": expected a byte count from 1 to "
				    "%llu\n", optarg,
				    (unsigned long long)MAX_HOLD_MEMORY);
				return -1;
			}
			break;
		case 1009: o->arc_key = optarg; break;
		case 1010: o->arc_domain = optarg; break;
		case 1011: o->arc_selector = optarg; break;
		case 1012:
			if (o->auth.narc_trusted >= AUTH_ARC_TRUSTED_MAX)
				goto toomany;
			if (!arc_seal_dns_name(optarg)) {
				fprintf(stderr, "router: invalid "
				    "--arc-trusted-sealer \"%s\": expected a "
				    "domain name without a final dot\n", optarg);
				return -1;
			}
			o->auth.arc_trusted[o->auth.narc_trusted++] = optarg;
			break;
		case 1003:
		case 1004:
		case 1005:
		case 1006:
			if (parse_action(optarg, c == 1003 ? &o->auth.dmarc_reject :
			    c == 1004 ? &o->auth.dmarc_quarantine :
			    c == 1005 ? &o->auth.spf_fail :
			    &o->auth.unauthenticated) < 0) {
				fprintf(stderr, "router: invalid action \"%s\": "
				    "expected accept or reject\n", optarg);
				return -1;
			}
			break;
		case 'a':
			if (o->ntrust_anchors >= MAX_ANCHORS)
				goto toomany;
			o->trust_anchors[o->ntrust_anchors++] = optarg;
			break;
		case 'D':
			if (strcmp(optarg, "validate") == 0)
				o->dnssec_policy = DNSSEC_POLICY_VALIDATE;
			else if (strcmp(optarg, "require") == 0)
				o->dnssec_policy = DNSSEC_POLICY_REQUIRE;
			else {
				fprintf(stderr, "router: invalid --dnssec \"%s\": "
				    "expected validate or require\n", optarg);
				return -1;
			}
			dnssec_policy_given = 1;
			break;
		case 'B':
			if (strcmp(optarg, "reject") == 0)
				o->normalize_bare_eol = 0;
			else if (strcmp(optarg, "normalize") == 0)
				o->normalize_bare_eol = 1;
			else {
				fprintf(stderr, "router: invalid --bare-eol \"%s\": "
				    "expected reject or normalize\n", optarg);
				return -1;
			}
			break;
		case 't':
			o->timeout = strtod(optarg, &end);
			if (*end != '\0' || o->timeout <= 0) {
				fprintf(stderr, "router: invalid --timeout \"%s\": "
				    "expected seconds\n", optarg);
				return -1;
			}
			break;
		case 'T':
			o->shutdown_timeout = strtod(optarg, &end);
			if (*end != '\0' || o->shutdown_timeout < 0) {
				fprintf(stderr, "router: invalid --shutdown-timeout "
				    "\"%s\": expected seconds\n", optarg);
				return -1;
			}
			break;
		case 'v': o->verbose = 1; break;
		case 'p':
			o->smtp_port = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || o->smtp_port < 1 ||
			    o->smtp_port > 65535) {
				fprintf(stderr, "router: invalid --smtp-port "
				    "\"%s\": expected 1-65535\n", optarg);
				return -1;
			}
			break;
		case 'm':
			errno = 0;
			o->max_size = (size_t)strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)optarg[0]) || *end != '\0' ||
			    errno != 0 || o->max_size == 0 ||
			    o->max_size > MAX_MESSAGE_SIZE) {
				fprintf(stderr, "router: invalid --max-size "
				    "\"%s\": expected a byte count from 1 to "
				    "%llu\n", optarg,
				    (unsigned long long)MAX_MESSAGE_SIZE);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "router: unexpected argument \"%s\"\n",
		    argv[optind]);
		return -1;
	}
	if (o->nlisten == 0 || o->nrelay_keys == 0 ||
	    o->srs_domain == NULL || o->srs_secret == NULL) {
		fprintf(stderr, "router: --listen, --relay-key, --srs-domain "
		    "and --srs-secret are required (see router -h)\n");
		return -1;
	}
	if (dnssec_policy_given && o->ntrust_anchors == 0) {
		fprintf(stderr, "router: --dnssec needs --trust-anchor\n");
		return -1;
	}
	/* Zone-mode answers carry no NSEC records, so nothing can be validated. */
	if (o->ntrust_anchors > 0 && o->nzones > 0) {
		fprintf(stderr, "router: --trust-anchor cannot be used with "
		    "--zone\n");
		return -1;
	}
	if (o->postmaster != NULL) {
		struct addr pm;

		if (addr_parse_mailbox(&pm, o->postmaster) != ADDR_OK ||
		    pm.null) {
			fprintf(stderr, "router: invalid --postmaster \"%s\": "
			    "expected local@domain\n", o->postmaster);
			return -1;
		}
	}
	if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
		fprintf(stderr, "router: --tls-cert and --tls-key go together\n");
		return -1;
	}
	if ((o->arc_key != NULL) != (o->arc_domain != NULL) ||
	    (o->arc_key != NULL) != (o->arc_selector != NULL)) {
		fprintf(stderr, "router: --arc-key, --arc-domain and "
		    "--arc-selector go together\n");
		return -1;
	}
	if (o->arc_key != NULL)
		o->hold = 1;	/* a seal needs the whole message */
	if (o->hold && o->hold_memory < o->max_size) {
		fprintf(stderr, "router: --hold-memory (%zu) is smaller than "
		    "--max-size (%zu): the largest messages could never be "
		    "held\n", o->hold_memory, o->max_size);
		return -1;
	}
	if ((o->hold || o->auth.narc_trusted > 0) && !o->auth.enabled) {
		fprintf(stderr, "router: --hold, --arc-key and "
		    "--arc-trusted-sealer need the authentication checks; "
		    "remove --no-auth-checks\n");
		return -1;
	}
	return 0;
toomany:
	switch (c) {
	case 'l': name = "listen"; break;
	case 'z': name = "zone"; break;
	case 'k': name = "relay-key"; break;
	case 'a': name = "trust-anchor"; break;
	case 1012: name = "arc-trusted-sealer"; break;
	default: name = "resolver"; break;
	}
	fprintf(stderr, "router: too many --%s options\n", name);
	return -1;
}

/* Parse "ADDR:PORT", "[V6]:PORT" into a socket address. */
static int
parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs = spec;
	size_t hl;
	long port;
	char *end;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		hs = spec + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - spec);
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/*
 * Open one listening socket for spec.  SO_REUSEPORT lets every worker
 * bind its own socket to the same address, and the kernel spreads new
 * connections over them.
 */
static int
open_listener(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	if (parse_listen(spec, &ss, &len) < 0) {
		fprintf(stderr, "router: invalid --listen \"%s\": expected "
		    "ADDR:PORT or [IPV6]:PORT\n", spec);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "router: socket for %s: %s\n", spec,
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 512) < 0) {
		fprintf(stderr, "router: cannot listen on %s: %s\n", spec,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A descriptor held back so a connection can be refused when none is left. */
static int accept_spare_fd = -1;

/*
 * Out of descriptors: a pending connection keeps the listening socket
 * readable, so leaving it would spin.  Free the spare descriptor, accept
 * the connection, reply 421 and close it.  Returns 0 if one was refused.
 */
static int
accept_refuse(struct ev_loop *loop, struct listener *l)
{
	static const char msg[] = "421 4.3.2 Too many connections, try again "
	    "later\r\n";
	static ev_tstamp last_log;
	int fd, saved = errno;

	if (accept_spare_fd < 0)
		return -1;
	close(accept_spare_fd);
	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, msg, sizeof(msg) - 1) < 0)
			log_debug("event=refuse-reply-failed");
		close(fd);
	}
	accept_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ev_now(loop) - last_log >= 1.) {
		last_log = ev_now(loop);
		log_warn("event=connection-refused error=\"%s\" "
		    "hint=\"raise the descriptor limit or lower --max-sessions\"",
		    strerror(saved));
	}
	errno = saved;
	return fd >= 0 ? 0 : -1;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = (struct listener *)w;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, i;

	/* Take a bounded batch per wakeup so one listener cannot starve others. */
	for (i = 0; i < 64; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) &&
			    accept_refuse(loop, l) == 0)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("event=accept-failed error=\"%s\"",
				    strerror(errno));
			return;
		}
		smtp_server_accept(loop, l->cfg, fd, (struct sockaddr *)&ss, len);
	}
}

static int
setup_dns(struct dns_ctx *dns, const struct options *o)
{
	char err[512];
	size_t i;

	for (i = 0; i < o->nzones; i++)
		if (dns_add_zone_file(dns, o->zones[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "router: zone file %s: %s\n",
			    o->zones[i], err);
			return -1;
		}
	for (i = 0; i < o->nresolvers; i++)
		if (dns_add_resolver(dns, o->resolvers[i]) < 0) {
			fprintf(stderr, "router: invalid --resolver \"%s\": "
			    "expected ADDR or ADDR:PORT\n", o->resolvers[i]);
			return -1;
		}
	if (o->nzones == 0 && o->nresolvers == 0 &&
	    dns_add_resolv_conf(dns, "/etc/resolv.conf") <= 0) {
		fprintf(stderr, "router: no --resolver given and no nameserver "
		    "in /etc/resolv.conf\n");
		return -1;
	}
	return 0;
}

/*
 * Build the DNSSEC validator with the trust anchor files.  Returns NULL
 * after logging when a file cannot be read.
 */
static struct dnssec_ctx *
setup_dnssec(struct ev_loop *loop, struct dns_ctx *dns,
    const struct options *o)
{
	struct dnssec_ctx *ctx;
	char err[512];
	size_t i;

	ctx = dnssec_new(loop, dns, &(struct dnssec_config){
	    .policy = o->dnssec_policy });
	for (i = 0; i < o->ntrust_anchors; i++)
		if (dnssec_add_anchor_file(ctx, o->trust_anchors[i], err,
		    sizeof(err)) < 0) {
			log_err("event=load-failed file=%s error=\"%s\"",
			    o->trust_anchors[i], err);
			dnssec_free(ctx);
			return NULL;
		}
	return ctx;
}

/* Switch to user after the ports are bound.  Returns 0 or -1. */
static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user == NULL) {
		if (geteuid() == 0)
			log_warn("event=running-as-root hint=\"use --user\"");
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "router: unknown user \"%s\"\n", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "router: cannot switch to user %s: %s\n", user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "router: could regain root after switching "
		    "to %s\n", user);
		return -1;
	}
	log_notice("event=privileges-dropped user=%s", user);
	return 0;
}

/*
 * Load the relay key, the SRS secrets and the TLS certificate; on SIGHUP
 * too, where a failure keeps the old ones.  Returns 0 or -1.
 */
static int
load_secrets(const struct options *o, struct rec_relay_key *keys,
    struct srs *srs, SSL_CTX **tls_ctx)
{
	struct rec_relay_key k[MAX_RELAY_KEYS];
	static struct srs t;
	SSL_CTX *ctx = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < o->nrelay_keys; i++)
		if (rec_relay_key_load(&k[i], o->relay_keys[i], err,
		    sizeof(err)) < 0) {
			log_err("event=load-failed file=%s error=\"%s\"",
			    o->relay_keys[i], err);
			sodium_memzero(k, sizeof(k));
			return -1;
		}
	if (srs_init(&t, o->srs_domain, o->srs_secret, err, sizeof(err)) < 0) {
		log_err("event=load-failed file=%s error=\"%s\"", o->srs_secret,
		    err);
		return -1;
	}
	if (o->tls_cert != NULL && (ctx = tls_server_ctx_new(o->tls_cert,
	    o->tls_key, err, sizeof(err))) == NULL) {
		log_err("event=load-failed file=%s error=\"%s\"", o->tls_cert,
		    err);
		srs_free(&t);
		return -1;
	}
	/* Sessions hold their own reference to the context they use. */
	if (*tls_ctx != NULL)
		SSL_CTX_free(*tls_ctx);
	*tls_ctx = ctx;
	memcpy(keys, k, o->nrelay_keys * sizeof(k[0]));
	srs_free(srs);
	*srs = t;
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(&t, sizeof(t));
	log_set_addr_key(srs->secret[0], srs->secret_len[0], o->log_addresses);
	return 0;
}

/*
 * Load the zone files and parse the resolvers once before forking, so a
 * bad file or address stops startup instead of every worker.
 */
static int
check_dns(const struct options *o)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct dns_ctx *dns = dns_new(loop, NULL);
	int r = setup_dns(dns, o);

	dns_free(dns);
	ev_loop_destroy(loop);
	return r;
}

/*
 * Raise the descriptor limit to the hard limit: each session needs one,
 * plus one per destination it forwards to.  Warn when the session limit
 * cannot be met.
 */
static void
raise_fd_limit(const struct options *o)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && o->max_sessions * 2 > rl.rlim_cur)
		log_warn("event=fd-limit-low limit=%llu max-sessions=%zu "
		    "hint=\"raise the descriptor limit or lower --max-sessions\"",
		    (unsigned long long)rl.rlim_cur, o->max_sessions);
}

/*
 * Refuse an address another process listens on: SO_REUSEPORT would
 * otherwise let this router silently share its connections.
 */
static int
probe_listen(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1, r;

	if (parse_listen(spec, &ss, &len) < 0)
		return 0;	/* open_listener() reports it */
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	r = bind(fd, (struct sockaddr *)&ss, len);
	close(fd);
	if (r < 0 && errno == EADDRINUSE) {
		fprintf(stderr, "router: cannot listen on %s: address already "
		    "in use\n", spec);
		return -1;
	}
	return 0;
}

/* Read the trust anchors once before forking, so a bad file stops startup. */
static int
check_anchors(const struct options *o)
{
	struct ev_loop *loop;
	struct dns_ctx *dns;
	struct dnssec_ctx *ctx;

	if (o->ntrust_anchors == 0)
		return 0;
	loop = ev_loop_new(EVFLAG_AUTO);
	dns = dns_new(loop, NULL);
	ctx = setup_dnssec(loop, dns, o);
	if (ctx != NULL)
		dnssec_free(ctx);
	dns_free(dns);
	ev_loop_destroy(loop);
	return ctx != NULL ? 0 : -1;
}

static const struct options *worker_opts;
static struct rec_relay_key worker_keys[MAX_RELAY_KEYS];
static struct srs worker_srs;
static SSL_CTX *worker_tls;
static struct psl *worker_psl;

static void
worker_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct worker *wk = w->data;

	if (smtp_server_sessions() == 0 || ev_now(loop) >= wk->drain_deadline) {
		log_notice("event=stopped sessions-left=%zu",
		    smtp_server_sessions());
		ev_break(loop, EVBREAK_ALL);
	}
}

/*
 * SIGTERM: stop accepting and let the sessions in flight finish, up to
 * the shutdown timeout.
 */
static void
worker_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct worker *wk = w->data;
	size_t i;

	if (ev_is_active(&wk->drain))
		return;
	log_notice("event=stopping signal=%d sessions=%zu", w->signum,
	    smtp_server_sessions());
	for (i = 0; i < wk->nlisteners; i++) {
		ev_io_stop(loop, &wk->listeners[i].io);
		close(wk->listeners[i].fd);
	}
	smtp_server_shutdown();
	wk->drain_deadline = ev_now(loop) + worker_opts->shutdown_timeout;
	ev_timer_init(&wk->drain, worker_drain_cb, 0., 0.2);
	wk->drain.data = wk;
	ev_timer_start(loop, &wk->drain);
}

static void
worker_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct worker *wk = w->data;

	if (load_secrets(worker_opts, worker_keys, &worker_srs,
	    &worker_tls) == 0) {
		wk->cfg.tls_ctx = worker_tls;
		log_notice("event=reloaded");
	}
}

/* Run one worker's event loop on the given listening sockets. */
static int
worker_run(const struct options *o, const int *fds, size_t nfds)
{
	static struct worker wk;
	struct dnssec_ctx *dnssec = NULL;
	struct dns_ctx *dns;
	char err[256];
	size_t i;

	worker_opts = o;
	wk.loop = EV_DEFAULT;
	accept_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	dns = dns_new(wk.loop, &(struct dns_config){ .timeout = 2.,
	    .attempts = 2, .cache_max_entries = 100000,
	    .cache_max_bytes = 64 << 20 });
	if (setup_dns(dns, o) < 0)
		return 1;
	wk.cfg.hostname = o->hostname;
	wk.cfg.postmaster = o->postmaster;
	wk.cfg.max_size = o->max_size;
	wk.cfg.max_rcpts = 100;
	wk.cfg.idle_timeout = o->timeout;
	wk.cfg.session_timeout = 3600.;
	wk.cfg.max_sessions = o->max_sessions;
	wk.cfg.max_per_ip = o->max_per_ip;
	wk.cfg.normalize_bare_eol = o->normalize_bare_eol;
	wk.cfg.hold = o->hold;
	wk.cfg.hold_budget = o->hold_memory;
	wk.cfg.client.hostname = o->hostname;
	wk.cfg.client.port = o->smtp_port;
	wk.cfg.client.connect_timeout = 30.;
	wk.cfg.client.command_timeout = 60.;
	wk.cfg.client.data_end_timeout = 300.;
	wk.cfg.client.out_high_water = 256 * 1024;
	/* A short wait: enough for the next message of a busy sender. */
	wk.cfg.client.reuse_idle = 2.;
	wk.cfg.srs = &worker_srs;
	wk.cfg.tls_ctx = worker_tls;
	/* Opportunistic TLS to destinations; without it delivery goes on. */
	wk.cfg.client.tls_ctx = tls_client_ctx_new(err, sizeof(err));
	if (wk.cfg.client.tls_ctx == NULL)
		log_warn("event=tls-client-unavailable error=\"%s\"", err);
	wk.cfg.dns = dns;
	wk.cfg.route = route_new(wk.loop, dns, worker_keys, o->nrelay_keys,
	    100000, 64 << 20);
	if (o->ntrust_anchors > 0) {
		if ((dnssec = setup_dnssec(wk.loop, dns, o)) == NULL)
			return 1;
		route_set_dnssec(wk.cfg.route, dnssec);
	}
	if (o->auth.enabled)
		wk.cfg.auth = auth_ctx_new(wk.loop, dns, worker_psl, &o->auth,
		    o->hostname);

	for (i = 0; i < nfds; i++) {
		struct listener *l = &wk.listeners[wk.nlisteners++];

		l->fd = fds[i];
		l->cfg = &wk.cfg;
		ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
		ev_io_start(wk.loop, &l->io);
	}
	ev_signal_init(&wk.sigterm, worker_stop_cb, SIGTERM);
	ev_signal_init(&wk.sigint, worker_stop_cb, SIGINT);
	ev_signal_init(&wk.sighup, worker_hup_cb, SIGHUP);
	wk.sigterm.data = wk.sigint.data = wk.sighup.data = &wk;
	ev_signal_start(wk.loop, &wk.sigterm);
	ev_signal_start(wk.loop, &wk.sigint);
	ev_signal_start(wk.loop, &wk.sighup);
	ev_run(wk.loop, 0);
	if (wk.cfg.client.tls_ctx != NULL)
		SSL_CTX_free(wk.cfg.client.tls_ctx);
	auth_ctx_free(wk.cfg.auth);
	route_free(wk.cfg.route);
	if (dnssec != NULL)
		dnssec_free(dnssec);
	dns_free(dns);
	return 0;
}

static pid_t worker_pids[MAX_WORKERS];
static volatile sig_atomic_t supervisor_stop, supervisor_hup;

static void
supervisor_signal(int sig)
{
	if (sig == SIGHUP)
		supervisor_hup = 1;
	else
		supervisor_stop = sig;
}

static pid_t
spawn_worker(const struct options *o, int (*fds)[MAX_LISTEN], long idx)
{
	pid_t pid = fork();
	size_t i;
	long w;

	if (pid != 0)
		return pid;
	log_after_fork();
	/* A worker whose supervisor is gone stops too, and never lingers. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	/* Keep only this worker's sockets. */
	for (w = 0; w < o->workers; w++)
		for (i = 0; i < o->nlisten && w != idx; i++)
			close(fds[w][i]);
	_exit(worker_run(o, fds[idx], o->nlisten));
}

/*
 * The supervisor forks the workers, passes SIGTERM and SIGHUP on to them,
 * and starts a new worker if one dies.
 */
static int
supervise(const struct options *o, int (*fds)[MAX_LISTEN])
{
	struct sigaction sa;
	int status, alive = 0, exit_code = 0, stop_sent = 0;
	long w;
	pid_t pid;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = supervisor_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (w = 0; w < o->workers; w++) {
		if ((worker_pids[w] = spawn_worker(o, fds, w)) < 0) {
			log_err("event=fork-failed error=\"%s\"", strerror(errno));
			return 1;
		}
		alive++;
	}
	while (alive > 0) {
		/*
		 * Poll rather than block in waitpid(): a signal that arrives
		 * just before a blocking call would otherwise wait for the
		 * next worker to exit before it is passed on.
		 */
		if ((supervisor_stop && !stop_sent) || supervisor_hup) {
			for (w = 0; w < o->workers; w++)
				if (worker_pids[w] > 0)
					kill(worker_pids[w], supervisor_stop ?
					    SIGTERM : SIGHUP);
			stop_sent = supervisor_stop != 0;
			supervisor_hup = 0;
		}
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0 || (pid < 0 && errno == EINTR)) {
			usleep(100000);
			continue;
		}
		if (pid < 0)
			break;
		for (w = 0; w < o->workers; w++) {
			if (worker_pids[w] != pid)
				continue;
			worker_pids[w] = 0;
			alive--;
			if (supervisor_stop)
				break;
			if (WIFEXITED(status)) {
				/* A worker that gave up would give up again. */
				log_err("event=worker-exited pid=%ld exit=%d",
				    (long)pid, WEXITSTATUS(status));
				supervisor_stop = SIGTERM;	/* stops the others */
				exit_code = 1;
				break;
			}
			log_err("event=worker-died pid=%ld signal=%d", (long)pid,
			    WTERMSIG(status));
			sleep(1);
			if (supervisor_stop)
				break;
			if ((worker_pids[w] = spawn_worker(o, fds, w)) > 0)
				alive++;
		}
	}
	return exit_code;
}

int
main(int argc, char **argv)
{
	static int fds[MAX_WORKERS][MAX_LISTEN];
	static struct options o;
	char hostbuf[256], err[512];
	size_t i;
	long w;

	if (sodium_init() < 0) {
		fprintf(stderr, "router: libsodium initialisation failed\n");
		return 1;
	}
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	log_init("router", o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (o.hostname == NULL) {
		if (gethostname(hostbuf, sizeof(hostbuf)) < 0)
			snprintf(hostbuf, sizeof(hostbuf), "localhost");
		hostbuf[sizeof(hostbuf) - 1] = '\0';
		o.hostname = hostbuf;
	}
	if (load_secrets(&o, worker_keys, &worker_srs, &worker_tls) < 0)
		return 1;
	if (check_anchors(&o) < 0 || check_dns(&o) < 0)
		return 1;
	/* Loaded as root, before privileges are dropped; kept until exit. */
	if (o.arc_key != NULL && (o.auth.sealer = arc_sealer_load(o.arc_key,
	    o.arc_domain, o.arc_selector, err, sizeof(err))) == NULL) {
		fprintf(stderr, "router: --arc-key: %s\n", err);
		return 1;
	}
	raise_fd_limit(&o);
	/* Loaded once: the workers share the pages until they write. */
	if (o.auth.enabled && (worker_psl = psl_load(o.psl_file, 0, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "router: public suffix list %s: %s\n",
		    o.psl_file ? o.psl_file : PSL_DEFAULT_PATH, err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < o.nlisten; i++)
		if (probe_listen(o.listen[i]) < 0)
			return 1;
	for (w = 0; w < o.workers; w++)
		for (i = 0; i < o.nlisten; i++)
			if ((fds[w][i] = open_listener(o.listen[i])) < 0)
				return 1;
	if (drop_privileges(o.user) < 0)
		return 1;
	for (i = 0; i < o.nlisten; i++)
		log_notice("event=listen address=%s", o.listen[i]);
	log_notice("event=start hostname=%s srs-domain=%s relay-kid=%08x "
	    "workers=%ld hold=%s arc-seal=%s", o.hostname, worker_srs.domain,
	    worker_keys[0].kid, o.workers, o.hold ? "yes" : "no",
	    o.auth.sealer != NULL ? arc_sealer_domain(o.auth.sealer) : "no");
	if (o.workers == 1)
		return worker_run(&o, fds[0], o.nlisten);
	return supervise(&o, fds);
}
