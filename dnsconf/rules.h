/*
 * The rules file that "dnsconf sign" reads: one rule a line,
 *
 *   ADDRESS  forward DEST[, DEST]...
 *   ADDRESS  reject ["TEXT"]
 *   ADDRESS  drop
 *
 * where ADDRESS is local@DOMAIN or *@DOMAIN (the catch-all).  Lines whose
 * first non-blank character is '#' are comments.  The parser checks
 * everything the relay will check, so a file that parses signs into
 * records the relay accepts.
 */
#ifndef DNSCONF_RULES_H
#define DNSCONF_RULES_H

#include <stddef.h>
#include <stdio.h>

#include "record.h"

#define RULES_LOCAL_MAX		64	/* RFC 5321 section 4.5.3.1.1 */
#define RULES_LINE_MAX		16384

struct rules_entry {
	unsigned	 line;
	int		 catch_all;
	char		 local[RULES_LOCAL_MAX + 1];	/* as written */
	enum rec_action	 action;
	size_t		 ndsts;
	char		*dsts[REC_MAX_DSTS];		/* owned */
	char		 message[REC_MAX_MSG + 1];	/* reject text or "" */
};

struct rules {
	struct rules_entry *v;
	size_t		 n;
	size_t		 cap;
};

void	rules_init(struct rules *);
void	rules_free(struct rules *);

/*
 * Parse one line (without its newline) for the domain (lower case, no
 * trailing dot).  Returns 1 with the rule in *e (free its dsts with
 * rules_entry_free()), 0 for a blank or comment line, or -1 with the
 * reason in err.
 */
int	rules_parse_line(struct rules_entry *e, const char *line, size_t len,
	    const char *domain, char *err, size_t errsz);
void	rules_entry_free(struct rules_entry *);

/*
 * Parse the address a rule is for, "local@DOMAIN" or "*@DOMAIN" (len
 * bytes at s), into e->local or e->catch_all.  Returns 0, or -1 with the
 * reason in err.
 */
int	rules_parse_address(struct rules_entry *e, const char *s, size_t len,
	    const char *domain, char *err, size_t errsz);

/*
 * Parse a rules file.  Every problem, duplicate rules included, is
 * reported on errs as "NAME:LINE: reason".  Returns the number of
 * problems: 0 means every rule is in r.
 */
int	rules_parse_stream(struct rules *r, FILE *in, const char *name,
	    const char *domain, FILE *errs);
int	rules_parse_file(struct rules *r, const char *path, const char *domain,
	    FILE *errs);

#endif
