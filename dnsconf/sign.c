/*
 * "dnsconf sign" and "dnsconf label".  sign loads the signing key, the
 * relay keys and the rules, and signs one rule record per rule.  It
 * prints the domain record, the key records, the rule records and the MX
 * records as RFC 1035 master-file text with absolute owner names.
 * The output is built in memory first, so a problem anywhere means that
 * nothing at all reaches stdout and no half zone gets published.
 *
 * The printed comments never name an address: the rule names are salted
 * hashes precisely so that the zone does not list the addresses.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dnsconf.h"
#include "keys.h"
#include "rules.h"
#include "sign.h"
#include "xmalloc.h"
#include "zone.h"

/* Everything sign_run() loads before it signs. */
struct sign_ctx {
	char			 domain[ZONE_DOMAIN_MAX + 1];
	struct keys_signing	 key;
	struct rec_key		 published[REC_MAX_KEYS];
	size_t			 npublished;
	struct rec_key		 relays[REC_MAX_RELAYS];
	size_t			 nrelays;
	char			 mx[SIGN_MAX_MX][ZONE_DOMAIN_MAX + 1];
	struct rules		 rules;
	uint64_t		 expires;
};

/* A signed rule waiting to be printed in owner name order. */
struct sign_record {
	char	 owner[ZONE_DOMAIN_MAX + 2];
	char	*txt;
};

static int
sign_add_published(struct sign_ctx *c, const struct rec_key *key,
    const char *path, FILE *err)
{
	size_t i;

	for (i = 0; i < c->npublished; i++)
		if (c->published[i].kid == key->kid)
			return 0;	/* the signing key named again */
	if (c->npublished == REC_MAX_KEYS) {
		fprintf(err, "%s: more than %d keys to publish\n", path,
		    REC_MAX_KEYS);
		return -1;
	}
	c->published[c->npublished++] = *key;
	return 0;
}

/* Load one --publish-key file: same domain and salt as the signing key. */
static int
sign_load_publish_key(struct sign_ctx *c, const char *path, FILE *err)
{
	struct keys_public pub;
	char msg[512];

	if (keys_load_public(&pub, path, msg, sizeof(msg)) != 0) {
		fprintf(err, "%s\n", msg);
		return -1;
	}
	if (strcmp(pub.domain, c->domain) != 0) {
		fprintf(err, "%s: key is for %s, not %s\n", path, pub.domain,
		    c->domain);
		return -1;
	}
	if (sodium_memcmp(pub.salt, c->key.salt, REC_SALT_LEN) != 0) {
		fprintf(err, "%s: salt differs from the signing key's; make "
		    "keys for one domain with keygen --salt-from\n", path);
		return -1;
	}
	return sign_add_published(c, &pub.key, path, err);
}

static int
sign_load_relay(struct sign_ctx *c, const char *path, FILE *err)
{
	struct rec_key *k = &c->relays[c->nrelays];
	char msg[512];
	size_t i;

	if (keys_load_relay_public(k, path, msg, sizeof(msg)) != 0) {
		fprintf(err, "%s\n", msg);
		return -1;
	}
	for (i = 0; i < c->nrelays; i++) {
		if (c->relays[i].kid == k->kid) {
			fprintf(err, "%s: relay key %08" PRIx32 " given twice\n",
			    path, k->kid);
			return -1;
		}
	}
	c->nrelays++;
	return 0;
}

/* Load the keys and check the names given on the command line. */
static int
sign_load_keys(struct sign_ctx *c, const struct sign_opts *o, FILE *err)
{
	struct rec_key signing;
	char msg[512];
	size_t i;

	if (keys_load_signing(&c->key, o->key_path, msg, sizeof(msg)) != 0) {
		fprintf(err, "%s\n", msg);
		return -1;
	}
	if (strcmp(c->key.domain, c->domain) != 0) {
		fprintf(err, "%s: key is for %s, not %s\n", o->key_path,
		    c->key.domain, c->domain);
		return -1;
	}
	signing.kid = c->key.kid;
	memcpy(signing.pub, c->key.pub, sizeof(signing.pub));
	if (sign_add_published(c, &signing, o->key_path, err) != 0)
		return -1;
	for (i = 0; i < o->npublish; i++)
		if (sign_load_publish_key(c, o->publish_paths[i], err) != 0)
			return -1;
	for (i = 0; i < o->nrelays; i++)
		if (sign_load_relay(c, o->relay_paths[i], err) != 0)
			return -1;
	return 0;
}

static int
sign_load(struct sign_ctx *c, const struct sign_opts *o, uint64_t now,
    FILE *err)
{
	size_t i;

	if (zone_domain_normalize(c->domain, o->domain) != 0) {
		fprintf(err, "invalid domain \"%s\"\n", o->domain);
		return -1;
	}
	for (i = 0; i < o->nmx; i++) {
		if (zone_domain_normalize(c->mx[i], o->mx[i]) != 0) {
			fprintf(err, "invalid MX host \"%s\"\n", o->mx[i]);
			return -1;
		}
	}
	if (sign_load_keys(c, o, err) != 0)
		return -1;
	if (o->has_expires)
		c->expires = o->expires;
	else
		c->expires = now + (uint64_t)o->valid_days * 86400;
	if (c->expires <= now)
		fprintf(err, "warning: the rules expire at %" PRIu64 ", which "
		    "is not in the future; the relay will reject them\n",
		    c->expires);
	if (rules_parse_file(&c->rules, o->rules_path, c->domain, err) != 0)
		return -1;
	return 0;
}

/* Print one TXT record; owner is absolute. */
static void
sign_print_txt(FILE *out, const char *owner, uint32_t ttl, const char *txt)
{
	size_t len = strlen(txt), size = ZONE_TXT_QUOTED_MAX(len);
	char *quoted = xmalloc(size);

	if (zone_txt_quote(quoted, size, txt, len) != 0)
		fatal_invariant("ZONE_TXT_QUOTED_MAX too small");
	fprintf(out, "%s %" PRIu32 " IN TXT %s\n", owner, ttl, quoted);
	free(quoted);
}

static void
sign_print_header(FILE *out, const struct sign_ctx *c)
{
	char when[64] = "";
	struct tm tm;
	time_t t;

	if (c->expires <= (uint64_t)INT32_MAX * 1000) {
		t = (time_t)c->expires;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), " (%Y-%m-%d %H:%M:%S UTC)",
			    &tm);
	}
	fprintf(out, "; ER1 records for %s, printed by dnsconf sign.\n",
	    c->domain);
	fprintf(out, "; Rules signed with key %08" PRIx32 ", valid until "
	    "%" PRIu64 "%s.\n", c->key.kid, c->expires, when);
}

static void
sign_print_domain(FILE *out, const struct sign_ctx *c, uint32_t ttl)
{
	char owner[ZONE_DOMAIN_MAX + 8], txt[REC_MAX_TXT];
	size_t i;

	snprintf(owner, sizeof(owner), "_er.%s.", c->domain);
	if (rec_domain_format(txt, sizeof(txt), c->key.salt) != 0)
		fatal_invariant("domain record does not fit");
	fprintf(out, "\n; Domain policy record: the salt of the rule names.\n");
	sign_print_txt(out, owner, ttl, txt);
	fprintf(out, "\n; Key records: the keys that may sign rules.\n");
	for (i = 0; i < c->npublished; i++) {
		if (rec_key_format(txt, sizeof(txt), &c->published[i]) != 0)
			fatal_invariant("key record does not fit");
		sign_print_txt(out, owner, ttl, txt);
	}
}

/* Sign one rule into *rec.  Returns 0, or -1 after reporting why. */
static int
sign_rule(struct sign_record *rec, const struct sign_ctx *c,
    const struct rules_entry *e, const char *rules_path, FILE *err)
{
	char txt[REC_MAX_TXT + 1];

	if (rec_owner_name(rec->owner, sizeof(rec->owner), c->key.salt,
	    e->local, strlen(e->local), e->catch_all, c->domain) != 0) {
		fprintf(err, "%s:%u: rule name is longer than a domain name "
		    "may be\n", rules_path, e->line);
		return -1;
	}
	if (e->action == REC_ACT_FORWARD && c->nrelays == 0) {
		fprintf(err, "%s:%u: forward rules need at least one "
		    "--relay-pub\n", rules_path, e->line);
		return -1;
	}
	if (rec_rule_sign(txt, sizeof(txt), rec->owner, c->domain, c->key.kid,
	    c->key.sk, c->expires, e->action, (const char *const *)e->dsts,
	    e->ndsts, e->message, c->relays, c->nrelays) != 0) {
		fprintf(err, "%s:%u: record longer than %d bytes; use fewer "
		    "or shorter destinations, or fewer relay keys\n",
		    rules_path, e->line, REC_MAX_TXT);
		return -1;
	}
	rec->txt = xstrdup(txt);
	return 0;
}

static int
sign_record_compare(const void *a, const void *b)
{
	return strcmp(((const struct sign_record *)a)->owner,
	    ((const struct sign_record *)b)->owner);
}

/* Sign every rule and print them sorted by owner name.  Returns problems. */
static int
sign_print_rules(FILE *out, const struct sign_ctx *c, const char *rules_path,
    uint32_t ttl, FILE *err)
{
	struct sign_record *recs;
	size_t i;
	int problems = 0;

	if (c->rules.n == 0)
		return 0;
	recs = xcalloc(c->rules.n, sizeof(*recs));
	for (i = 0; i < c->rules.n; i++)
		if (sign_rule(&recs[i], c, &c->rules.v[i], rules_path,
		    err) != 0)
			problems++;
	if (problems == 0) {
		qsort(recs, c->rules.n, sizeof(*recs), sign_record_compare);
		fprintf(out, "\n; Rule records, one per address; each name is "
		    "a salted hash of the local part.\n");
		for (i = 0; i < c->rules.n; i++)
			sign_print_txt(out, recs[i].owner, ttl, recs[i].txt);
	}
	for (i = 0; i < c->rules.n; i++)
		free(recs[i].txt);
	free(recs);
	return problems;
}

static void
sign_print_mx(FILE *out, const struct sign_ctx *c, size_t nmx, uint32_t ttl)
{
	size_t i;

	if (nmx == 0)
		return;
	fprintf(out, "\n; MX records: mail for the domain goes to the "
	    "relay.\n");
	for (i = 0; i < nmx; i++)
		fprintf(out, "%s. %" PRIu32 " IN MX %zu %s.\n", c->domain, ttl,
		    10 * (i + 1), c->mx[i]);
}

int
sign_run(const struct sign_opts *o, uint64_t now, FILE *out, FILE *err)
{
	struct sign_ctx *c = xcalloc(1, sizeof(*c));
	char *text = NULL;
	size_t text_len = 0;
	FILE *mem = NULL;
	int rc = DNSCONF_EXIT_INPUT;

	rules_init(&c->rules);
	if (sign_load(c, o, now, err) != 0)
		goto out;
	if ((mem = open_memstream(&text, &text_len)) == NULL) {
		fprintf(err, "open_memstream failed: %s\n", strerror(errno));
		goto out;
	}
	sign_print_header(mem, c);
	sign_print_domain(mem, c, o->ttl);
	if (sign_print_rules(mem, c, o->rules_path, o->ttl, err) != 0)
		goto out;
	sign_print_mx(mem, c, o->nmx, o->ttl);
	if (fclose(mem) != 0) {
		mem = NULL;
		fprintf(err, "writing the output failed\n");
		goto out;
	}
	mem = NULL;
	if (fwrite(text, 1, text_len, out) != text_len || fflush(out) != 0) {
		fprintf(err, "writing the output failed: %s\n",
		    strerror(errno));
		goto out;
	}
	rc = DNSCONF_EXIT_OK;
out:
	if (mem != NULL)
		fclose(mem);
	free(text);
	rules_free(&c->rules);
	sodium_memzero(c, sizeof(*c));
	free(c);
	return rc;
}

/* ---- Command line ---- */

static const char sign_help[] =
"usage: dnsconf sign --domain DOMAIN --key FILE --rules FILE\n"
"                    [--relay-pub FILE]... [--publish-key FILE]...\n"
"                    [--mx HOST]... [--ttl SECONDS] [--valid DAYS]\n"
"                    [--expires UNIXTIME]\n"
"\n"
"Sign the rules for DOMAIN and print every record the domain publishes,\n"
"in zone file syntax: the domain record, the key records, one rule\n"
"record per rule and, with --mx, the MX records.\n"
"\n"
"  --domain DOMAIN      the domain the rules are for\n"
"  --key FILE           signing key (DOMAIN.key from dnsconf keygen)\n"
"  --rules FILE         rules file, one rule a line (see dnsconf(8))\n"
"  --relay-pub FILE     relay public key to seal destinations to\n"
"                       (relay.pub); repeat for several relays, up to 8\n"
"  --publish-key FILE   also publish this key (DOMAIN.pub), e.g. the\n"
"                       old or next key during a key rotation\n"
"  --mx HOST            add an MX record for HOST; repeat in order of\n"
"                       preference (10, 20, ...)\n"
"  --ttl SECONDS        TTL of every record (default 3600)\n"
"  --valid DAYS         rules expire DAYS days from now (default 30)\n"
"  --expires UNIXTIME   rules expire at this Unix time; overrides --valid\n"
"\n"
"Nothing is printed when any rule is invalid; each problem is reported\n"
"as FILE:LINE: reason.  Exit status: 0 ok, 1 bad input, 2 bad usage.\n";

/* Parse a decimal number in [min, max].  Returns 0 or -1. */
static int
sign_parse_number(uint64_t *out, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum sign_option {
	SIGN_OPT_DOMAIN = 256,
	SIGN_OPT_KEY,
	SIGN_OPT_RULES,
	SIGN_OPT_RELAY_PUB,
	SIGN_OPT_PUBLISH_KEY,
	SIGN_OPT_MX,
	SIGN_OPT_TTL,
	SIGN_OPT_VALID,
	SIGN_OPT_EXPIRES,
};

static const struct option sign_options[] = {
	{ "domain", required_argument, NULL, SIGN_OPT_DOMAIN },
	{ "key", required_argument, NULL, SIGN_OPT_KEY },
	{ "rules", required_argument, NULL, SIGN_OPT_RULES },
	{ "relay-pub", required_argument, NULL, SIGN_OPT_RELAY_PUB },
	{ "publish-key", required_argument, NULL, SIGN_OPT_PUBLISH_KEY },
	{ "mx", required_argument, NULL, SIGN_OPT_MX },
	{ "ttl", required_argument, NULL, SIGN_OPT_TTL },
	{ "valid", required_argument, NULL, SIGN_OPT_VALID },
	{ "expires", required_argument, NULL, SIGN_OPT_EXPIRES },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Store a repeatable option's value.  Returns 0 or a usage error. */
static int
sign_push(const char **list, size_t *n, size_t max, const char *value,
    const char *option)
{
	if (*n == max)
		return dnsconf_usage_error("sign", "at most %zu %s options",
		    max, option);
	list[(*n)++] = value;
	return 0;
}

static int
sign_number_option(uint64_t *out, const char *value, uint64_t min,
    uint64_t max, const char *option)
{
	if (sign_parse_number(out, value, min, max) == 0)
		return 0;
	return dnsconf_usage_error("sign", "invalid %s \"%s\": expected a "
	    "number from %" PRIu64 " to %" PRIu64, option, value, min, max);
}

/* Apply one option.  Returns 0, or the exit status for a usage error. */
static int
sign_option(struct sign_opts *o, int opt, const char *arg)
{
	uint64_t v = 0;
	int rc = 0;

	switch (opt) {
	case SIGN_OPT_DOMAIN: o->domain = arg; break;
	case SIGN_OPT_KEY: o->key_path = arg; break;
	case SIGN_OPT_RULES: o->rules_path = arg; break;
	case SIGN_OPT_RELAY_PUB:
		return sign_push(o->relay_paths, &o->nrelays, REC_MAX_RELAYS,
		    arg, "--relay-pub");
	case SIGN_OPT_PUBLISH_KEY:
		return sign_push(o->publish_paths, &o->npublish,
		    REC_MAX_KEYS - 1, arg, "--publish-key");
	case SIGN_OPT_MX:
		return sign_push(o->mx, &o->nmx, SIGN_MAX_MX, arg, "--mx");
	case SIGN_OPT_TTL:
		rc = sign_number_option(&v, arg, 0, INT32_MAX, "--ttl");
		o->ttl = (uint32_t)v;
		break;
	case SIGN_OPT_VALID:
		rc = sign_number_option(&v, arg, 1, SIGN_MAX_DAYS, "--valid");
		o->valid_days = (unsigned)v;
		break;
	case SIGN_OPT_EXPIRES:
		rc = sign_number_option(&o->expires, arg, 0, UINT64_MAX,
		    "--expires");
		o->has_expires = 1;
		break;
	default:
		fatal_invariant("sign option without a case");
	}
	return rc;
}

int
cmd_sign(int argc, char **argv)
{
	struct sign_opts o;
	int opt, rc;

	memset(&o, 0, sizeof(o));
	o.ttl = SIGN_DEFAULT_TTL;
	o.valid_days = SIGN_DEFAULT_DAYS;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", sign_options, NULL)) != -1) {
		if (opt == 'h') {
			fputs(sign_help, stdout);
			return DNSCONF_EXIT_OK;
		}
		if (opt == '?' || opt == ':')
			return dnsconf_usage_error("sign", "%s \"%s\"",
			    opt == '?' ? "unknown option" :
			    "missing value for", argv[optind - 1]);
		if ((rc = sign_option(&o, opt, optarg)) != 0)
			return rc;
	}
	if (optind != argc)
		return dnsconf_usage_error("sign", "unexpected argument "
		    "\"%s\"", argv[optind]);
	if (o.domain == NULL || o.key_path == NULL || o.rules_path == NULL)
		return dnsconf_usage_error("sign", "--domain, --key and "
		    "--rules are required");
	return sign_run(&o, (uint64_t)time(NULL), stdout, stderr);
}

/* ---- label ---- */

static const char label_help[] =
"usage: dnsconf label --domain DOMAIN --key FILE ADDRESS\n"
"\n"
"Print the owner name of the rule record for ADDRESS (local@DOMAIN, or\n"
"*@DOMAIN for the catch-all).  FILE is DOMAIN.key or DOMAIN.pub: only\n"
"the salt is read.\n";

static const struct option label_options[] = {
	{ "domain", required_argument, NULL, 'd' },
	{ "key", required_argument, NULL, 'k' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
label_print(const char *domain_arg, const char *key_path, const char *address)
{
	char domain[ZONE_DOMAIN_MAX + 1], key_domain[ZONE_DOMAIN_MAX + 1];
	char owner[ZONE_DOMAIN_MAX + 2], msg[512];
	unsigned char salt[REC_SALT_LEN];
	struct rules_entry e;

	if (zone_domain_normalize(domain, domain_arg) != 0) {
		fprintf(stderr, "dnsconf: invalid domain \"%s\"\n", domain_arg);
		return DNSCONF_EXIT_INPUT;
	}
	if (keys_load_salt(key_domain, salt, key_path, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "dnsconf: %s\n", msg);
		return DNSCONF_EXIT_INPUT;
	}
	if (strcmp(key_domain, domain) != 0) {
		fprintf(stderr, "dnsconf: %s: key is for %s, not %s\n",
		    key_path, key_domain, domain);
		return DNSCONF_EXIT_INPUT;
	}
	memset(&e, 0, sizeof(e));
	if (rules_parse_address(&e, address, strlen(address), domain, msg,
	    sizeof(msg)) != 0) {
		fprintf(stderr, "dnsconf: %s\n", msg);
		return DNSCONF_EXIT_INPUT;
	}
	if (rec_owner_name(owner, sizeof(owner), salt, e.local,
	    strlen(e.local), e.catch_all, domain) != 0) {
		fprintf(stderr, "dnsconf: rule name for %s is too long\n",
		    address);
		return DNSCONF_EXIT_INPUT;
	}
	printf("%s\n", owner);
	return DNSCONF_EXIT_OK;
}

int
cmd_label(int argc, char **argv)
{
	const char *domain = NULL, *key = NULL;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", label_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(label_help, stdout);
			return DNSCONF_EXIT_OK;
		case 'd':
			domain = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		default:
			return dnsconf_usage_error("label", "%s \"%s\"",
			    opt == '?' ? "unknown option" :
			    "missing value for", argv[optind - 1]);
		}
	}
	if (domain == NULL || key == NULL || optind != argc - 1)
		return dnsconf_usage_error("label", "--domain, --key and one "
		    "ADDRESS are required");
	return label_print(domain, key, argv[optind]);
}
