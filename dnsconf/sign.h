/*
 * "dnsconf sign": turn a rules file and keys into the records a domain
 * publishes, as master-file text.  sign_run() does the work on open
 * streams so that tests can drive it without a process.
 */
#ifndef DNSCONF_SIGN_H
#define DNSCONF_SIGN_H

#include <stdint.h>
#include <stdio.h>

#include "record.h"

#define SIGN_MAX_MX		16
#define SIGN_DEFAULT_TTL	3600
#define SIGN_DEFAULT_DAYS	30
#define SIGN_MAX_DAYS		3650

struct sign_opts {
	const char	*domain;
	const char	*key_path;
	const char	*rules_path;
	const char	*relay_paths[REC_MAX_RELAYS];
	size_t		 nrelays;
	const char	*publish_paths[REC_MAX_KEYS];
	size_t		 npublish;
	const char	*mx[SIGN_MAX_MX];
	size_t		 nmx;
	uint32_t	 ttl;
	unsigned	 valid_days;
	int		 has_expires;
	uint64_t	 expires;	/* Unix time, when has_expires */
};

/*
 * Sign and print.  now is the Unix time the validity period starts at.
 * On success everything goes to out and 0 is returned.  On any problem
 * each one is reported on err, nothing at all is written to out, and
 * DNSCONF_EXIT_INPUT is returned.
 */
int	sign_run(const struct sign_opts *, uint64_t now, FILE *out, FILE *err);

#endif
