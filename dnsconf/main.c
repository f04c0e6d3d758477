/*
 * dnsconf, the domain owner's tool for ER1 rule records: makes keys,
 * signs a rules file into TXT records and prints every record a domain
 * publishes.  This file only dispatches to the commands in keygen.c and
 * sign.c.  Exit status: 0 ok, 1 bad input, 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "dnsconf.h"

struct dnsconf_command {
	const char	*name;
	int		(*run)(int, char **);
	const char	*summary;
};

static const struct dnsconf_command dnsconf_commands[] = {
	{ "keygen", cmd_keygen, "make a domain's signing key and salt" },
	{ "relay-keygen", cmd_relay_keygen, "make a relay's sealing key" },
	{ "sign", cmd_sign, "sign a rules file and print the zone records" },
	{ "label", cmd_label, "print the rule record name for an address" },
};

#define DNSCONF_NCOMMANDS \
	(sizeof(dnsconf_commands) / sizeof(dnsconf_commands[0]))

static void
dnsconf_help(FILE *out)
{
	size_t i;

	fputs("usage: dnsconf COMMAND [OPTIONS]\n"
	    "       dnsconf COMMAND -h\n\n"
	    "Commands:\n", out);
	for (i = 0; i < DNSCONF_NCOMMANDS; i++)
		fprintf(out, "  %-14s %s\n", dnsconf_commands[i].name,
		    dnsconf_commands[i].summary);
	fputs("\nSee dnsconf(8) and docs/records.md.\n", out);
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		dnsconf_help(stderr);
		return DNSCONF_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		dnsconf_help(stdout);
		return DNSCONF_EXIT_OK;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "dnsconf: libsodium failed to initialize\n");
		return DNSCONF_EXIT_INPUT;
	}
	for (i = 0; i < DNSCONF_NCOMMANDS; i++)
		if (strcmp(argv[1], dnsconf_commands[i].name) == 0)
			return dnsconf_commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "dnsconf: unknown command \"%s\"\n", argv[1]);
	dnsconf_help(stderr);
	return DNSCONF_EXIT_USAGE;
}
