/*
 * "dnsconf keygen" makes a domain owner's Ed25519 signing key and the
 * salt of the rule names; "dnsconf relay-keygen" makes a relay's X25519
 * key for sealed destinations.  File formats are in keys.h.
 */
#include <getopt.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>

#include <sodium.h>

#include "dnsconf.h"
#include "keys.h"
#include "zone.h"

static const char keygen_help[] =
"usage: dnsconf keygen --domain DOMAIN --out DIR [--salt-from FILE] [--force]\n"
"\n"
"Make a signing key for DOMAIN: DIR/DOMAIN.key (secret, mode 0600) and\n"
"DIR/DOMAIN.pub.  A new random salt for the rule names is made too.\n"
"\n"
"  --domain DOMAIN    the domain the key signs rules for\n"
"  --out DIR          directory to write the two files into\n"
"  --salt-from FILE   copy the salt from an existing DOMAIN.key or\n"
"                     DOMAIN.pub, so a new key keeps the rule names\n"
"                     (key rotation)\n"
"  --force            overwrite existing files\n";

static const char relay_keygen_help[] =
"usage: dnsconf relay-keygen --out DIR [--force]\n"
"\n"
"Make a relay key: DIR/relay.key (secret, mode 0600) for the relay and\n"
"DIR/relay.pub for domain owners (dnsconf sign --relay-pub).\n"
"\n"
"  --out DIR   directory to write the two files into\n"
"  --force     overwrite existing files\n";

enum keygen_option {
	KEYGEN_OPT_DOMAIN = 256,
	KEYGEN_OPT_OUT,
	KEYGEN_OPT_SALT_FROM,
	KEYGEN_OPT_FORCE,
};

static const struct option keygen_options[] = {
	{ "domain", required_argument, NULL, KEYGEN_OPT_DOMAIN },
	{ "out", required_argument, NULL, KEYGEN_OPT_OUT },
	{ "salt-from", required_argument, NULL, KEYGEN_OPT_SALT_FROM },
	{ "force", no_argument, NULL, KEYGEN_OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Options of both commands; relay-keygen accepts --out and --force only. */
struct keygen_args {
	const char	*domain;
	const char	*out;
	const char	*salt_from;
	int		 force;
	int		 help;
};

static int
keygen_parse(struct keygen_args *a, const char *cmd, int argc, char **argv)
{
	int opt;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", keygen_options,
	    NULL)) != -1) {
		switch (opt) {
		case 'h': a->help = 1; return 0;
		case KEYGEN_OPT_DOMAIN: a->domain = optarg; break;
		case KEYGEN_OPT_OUT: a->out = optarg; break;
		case KEYGEN_OPT_SALT_FROM: a->salt_from = optarg; break;
		case KEYGEN_OPT_FORCE: a->force = 1; break;
		default:
			return dnsconf_usage_error(cmd, "%s \"%s\"",
			    opt == '?' ? "unknown option" :
			    "missing value for", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return dnsconf_usage_error(cmd, "unexpected argument \"%s\"",
		    argv[optind]);
	if (a->out == NULL)
		return dnsconf_usage_error(cmd, "--out is required");
	/* Create the key directory, private to its owner, if it is missing. */
	if (mkdir(a->out, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "dnsconf %s: cannot create directory %s: %s\n",
		    cmd, a->out, strerror(errno));
		return 1;
	}
	return 0;
}

/* Fill k->salt, from --salt-from or at random.  0 or -1 after a report. */
static int
keygen_salt(struct keys_signing *k, const char *salt_from)
{
	char domain[ZONE_DOMAIN_MAX + 1], msg[512];

	if (salt_from == NULL) {
		randombytes_buf(k->salt, sizeof(k->salt));
		return 0;
	}
	if (keys_load_salt(domain, k->salt, salt_from, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "dnsconf: %s\n", msg);
		return -1;
	}
	if (strcmp(domain, k->domain) != 0) {
		fprintf(stderr, "dnsconf: %s: salt is for %s, not %s\n",
		    salt_from, domain, k->domain);
		return -1;
	}
	return 0;
}

int
cmd_keygen(int argc, char **argv)
{
	struct keygen_args a;
	struct keys_signing k;
	char msg[512];
	int rc;

	if ((rc = keygen_parse(&a, "keygen", argc, argv)) != 0)
		return rc;
	if (a.help) {
		fputs(keygen_help, stdout);
		return DNSCONF_EXIT_OK;
	}
	if (a.domain == NULL)
		return dnsconf_usage_error("keygen", "--domain is required");
	memset(&k, 0, sizeof(k));
	if (zone_domain_normalize(k.domain, a.domain) != 0) {
		fprintf(stderr, "dnsconf: invalid domain \"%s\"\n", a.domain);
		return DNSCONF_EXIT_INPUT;
	}
	if (keygen_salt(&k, a.salt_from) != 0)
		return DNSCONF_EXIT_INPUT;
	crypto_sign_keypair(k.pub, k.sk);
	k.kid = rec_kid(k.pub, sizeof(k.pub));
	rc = keys_write_signing(a.out, &k, a.force, msg, sizeof(msg));
	sodium_memzero(&k, sizeof(k));
	if (rc != 0) {
		fprintf(stderr, "dnsconf: %s\n", msg);
		return DNSCONF_EXIT_INPUT;
	}
	return DNSCONF_EXIT_OK;
}

int
cmd_relay_keygen(int argc, char **argv)
{
	struct keygen_args a;
	struct rec_relay_key k;
	char msg[512];
	int rc;

	if ((rc = keygen_parse(&a, "relay-keygen", argc, argv)) != 0)
		return rc;
	if (a.help) {
		fputs(relay_keygen_help, stdout);
		return DNSCONF_EXIT_OK;
	}
	if (a.domain != NULL || a.salt_from != NULL)
		return dnsconf_usage_error("relay-keygen", "only --out and "
		    "--force apply");
	crypto_box_keypair(k.pub, k.sec);
	k.kid = rec_kid(k.pub, sizeof(k.pub));
	rc = keys_write_relay(a.out, &k, a.force, msg, sizeof(msg));
	sodium_memzero(&k, sizeof(k));
	if (rc != 0) {
		fprintf(stderr, "dnsconf: %s\n", msg);
		return DNSCONF_EXIT_INPUT;
	}
	return DNSCONF_EXIT_OK;
}
