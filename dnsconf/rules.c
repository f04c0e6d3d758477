/*
 * Parser for dnsconf's rules file (grammar in rules.h and docs/dnsconf.8).
 * Each line is checked on its own, then the whole file for duplicate
 * addresses.  Addresses are compared the way the relay matches them:
 * local parts case-insensitively for ASCII letters, because the rule
 * label is a hash of the lower-cased local part.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"
#include "xmalloc.h"
#include "zone.h"

struct rules_cursor {
	const char	*p;
	const char	*end;
};

static int
rules_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void
rules_skip_wsp(struct rules_cursor *c)
{
	while (c->p < c->end && rules_is_wsp(*c->p))
		c->p++;
}

/* The next run of non-blank characters; sets *len. */
static const char *
rules_token(struct rules_cursor *c, size_t *len)
{
	const char *start;

	rules_skip_wsp(c);
	start = c->p;
	while (c->p < c->end && !rules_is_wsp(*c->p))
		c->p++;
	*len = (size_t)(c->p - start);
	return start;
}

static void
rules_trim(const char **s, size_t *len)
{
	while (*len > 0 && rules_is_wsp(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && rules_is_wsp((*s)[*len - 1]))
		(*len)--;
}

/* RFC 5322 atext: the characters of a dot-atom besides '.'. */
static int
rules_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
rules_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.' && s[i - 1] == '.')
			return 0;
		if (s[i] != '.' && !rules_atext(s[i]))
			return 0;
	}
	return 1;
}

int
rules_parse_address(struct rules_entry *e, const char *s, size_t len,
    const char *domain, char *err, size_t errsz)
{
	const char *at = memchr(s, '@', len);
	size_t local_len, domain_len;

	if (at == NULL || memchr(at + 1, '@', len - (size_t)(at - s) - 1)) {
		snprintf(err, errsz, "invalid address \"%.*s\": expected "
		    "local@%s", (int)len, s, domain);
		return -1;
	}
	local_len = (size_t)(at - s);
	domain_len = len - local_len - 1;
	if (domain_len != strlen(domain) ||
	    strncasecmp(at + 1, domain, domain_len) != 0) {
		snprintf(err, errsz, "address \"%.*s\" is not in domain %s",
		    (int)len, s, domain);
		return -1;
	}
	if (local_len == 1 && s[0] == '*') {
		e->catch_all = 1;
		return 0;
	}
	if (local_len > RULES_LOCAL_MAX) {
		snprintf(err, errsz, "local part of \"%.*s\" is longer than "
		    "%d bytes", (int)len, s, RULES_LOCAL_MAX);
		return -1;
	}
	if (!rules_dot_atom(s, local_len)) {
		snprintf(err, errsz, "invalid local part in \"%.*s\": use "
		    "letters, digits, dots and !#$%%&'*+-/=?^_`{|}~ "
		    "(quoted local parts are not supported)", (int)len, s);
		return -1;
	}
	memcpy(e->local, s, local_len);
	e->local[local_len] = '\0';
	return 0;
}

/* Check one destination of a forward rule. */
static int
rules_check_destination(const struct rules_entry *e, const char *s,
    size_t len, const char *domain, char *err, size_t errsz)
{
	char dest_domain[ZONE_DOMAIN_MAX + 1], copy[REC_MAX_ADDR + 1];
	const char *at;
	size_t i;

	if (len > REC_MAX_ADDR) {
		snprintf(err, errsz, "destination \"%.40s...\" is longer than "
		    "%d bytes", s, REC_MAX_ADDR);
		return -1;
	}
	if (!rec_addr_valid(s, len)) {
		snprintf(err, errsz, "invalid destination address \"%.*s\" "
		    "(separate addresses with commas)", (int)len, s);
		return -1;
	}
	at = memchr(s, '@', len);
	memcpy(copy, at + 1, len - (size_t)(at - s) - 1);
	copy[len - (size_t)(at - s) - 1] = '\0';
	if (zone_domain_normalize(dest_domain, copy) != 0) {
		snprintf(err, errsz, "invalid domain in destination \"%.*s\"",
		    (int)len, s);
		return -1;
	}
	if (strcmp(dest_domain, domain) == 0) {
		snprintf(err, errsz, "destination \"%.*s\" is in %s itself, "
		    "so mail would loop through the relay", (int)len, s,
		    domain);
		return -1;
	}
	for (i = 0; i < e->ndsts; i++) {
		if (strlen(e->dsts[i]) == len &&
		    strncasecmp(e->dsts[i], s, len) == 0) {
			snprintf(err, errsz, "duplicate destination \"%.*s\"",
			    (int)len, s);
			return -1;
		}
	}
	return 0;
}

/*
 * The relay forwards one transaction to at most RULES_MAX_DEST_DOMAINS
 * destination domains (one outbound session each), so a rule that needs
 * more could never be delivered.
 */
#define RULES_MAX_DEST_DOMAINS	8

static int
rules_check_domain_count(const struct rules_entry *e, char *err, size_t errsz)
{
	size_t i, j, distinct = 0;

	for (i = 0; i < e->ndsts; i++) {
		const char *di = strrchr(e->dsts[i], '@');

		for (j = 0; j < i; j++)
			if (strcasecmp(di, strrchr(e->dsts[j], '@')) == 0)
				break;
		if (j == i)
			distinct++;
	}
	if (distinct > RULES_MAX_DEST_DOMAINS) {
		snprintf(err, errsz, "destinations in %zu domains; the relay "
		    "forwards to at most %d domains at once", distinct,
		    RULES_MAX_DEST_DOMAINS);
		return -1;
	}
	return 0;
}

/* Parse "DEST[, DEST]..." after forward. */
static int
rules_parse_forward(struct rules_entry *e, const char *s, size_t len,
    const char *domain, char *err, size_t errsz)
{
	const char *end = s + len, *comma, *item;
	size_t item_len;

	if (len == 0) {
		snprintf(err, errsz, "forward needs at least one destination "
		    "address");
		return -1;
	}
	for (;;) {
		comma = memchr(s, ',', (size_t)(end - s));
		item = s;
		item_len = (size_t)((comma ? comma : end) - s);
		rules_trim(&item, &item_len);
		if (item_len == 0) {
			snprintf(err, errsz, "empty destination in the list");
			return -1;
		}
		if (e->ndsts == REC_MAX_DSTS) {
			snprintf(err, errsz, "more than %d destinations",
			    REC_MAX_DSTS);
			return -1;
		}
		if (rules_check_destination(e, item, item_len, domain, err,
		    errsz) != 0)
			return -1;
		e->dsts[e->ndsts++] = xstrndup(item, item_len);
		if (comma == NULL)
			return rules_check_domain_count(e, err, errsz);
		s = comma + 1;
	}
}

/* Parse the optional "TEXT" after reject; \" and \\ are the escapes. */
static int
rules_parse_reject(struct rules_entry *e, const char *s, size_t len,
    char *err, size_t errsz)
{
	size_t i, n = 0;

	if (len == 0)
		return 0;
	if (s[0] != '"') {
		snprintf(err, errsz, "reject text must be in double quotes");
		return -1;
	}
	for (i = 1; i < len && s[i] != '"'; i++) {
		if (s[i] == '\\' && i + 1 < len &&
		    (s[i + 1] == '"' || s[i + 1] == '\\'))
			i++;
		else if (s[i] == '\\') {
			snprintf(err, errsz, "invalid escape in reject text: "
			    "only \\\" and \\\\ are allowed");
			return -1;
		}
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			snprintf(err, errsz, "reject text must be printable "
			    "ASCII");
			return -1;
		}
		if (n == REC_MAX_MSG) {
			snprintf(err, errsz, "reject text is longer than %d "
			    "bytes", REC_MAX_MSG);
			return -1;
		}
		e->message[n++] = s[i];
	}
	if (i == len) {
		snprintf(err, errsz, "reject text has no closing quote");
		return -1;
	}
	if (i + 1 != len) {
		snprintf(err, errsz, "unexpected text after the reject text");
		return -1;
	}
	e->message[n] = '\0';
	return 0;
}

static int
rules_check_chars(const char *line, size_t len, char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(err, errsz, "invalid control character 0x%02x "
			    "at column %zu", c, i + 1);
			return -1;
		}
	}
	return 0;
}

/* Parse the action word and what follows it. */
static int
rules_parse_action(struct rules_entry *e, struct rules_cursor *c,
    const char *domain, char *err, size_t errsz)
{
	const char *word, *rest;
	size_t word_len, rest_len;

	word = rules_token(c, &word_len);
	rules_skip_wsp(c);
	rest = c->p;
	rest_len = (size_t)(c->end - c->p);
	rules_trim(&rest, &rest_len);
	if (word_len == 7 && memcmp(word, "forward", 7) == 0) {
		e->action = REC_ACT_FORWARD;
		return rules_parse_forward(e, rest, rest_len, domain, err,
		    errsz);
	}
	if (word_len == 6 && memcmp(word, "reject", 6) == 0) {
		e->action = REC_ACT_REJECT;
		return rules_parse_reject(e, rest, rest_len, err, errsz);
	}
	if (word_len == 4 && memcmp(word, "drop", 4) == 0) {
		e->action = REC_ACT_DROP;
		if (rest_len == 0)
			return 0;
		snprintf(err, errsz, "drop takes no arguments");
		return -1;
	}
	if (word_len == 0)
		snprintf(err, errsz, "missing action: expected forward, "
		    "reject or drop");
	else
		snprintf(err, errsz, "unknown action \"%.*s\": expected "
		    "forward, reject or drop", (int)word_len, word);
	return -1;
}

int
rules_parse_line(struct rules_entry *e, const char *line, size_t len,
    const char *domain, char *err, size_t errsz)
{
	struct rules_cursor c = { line, line + len };
	const char *addr;
	size_t addr_len;

	memset(e, 0, sizeof(*e));
	if (rules_check_chars(line, len, err, errsz) != 0)
		return -1;
	rules_skip_wsp(&c);
	if (c.p == c.end || *c.p == '#')
		return 0;
	addr = rules_token(&c, &addr_len);
	if (rules_parse_address(e, addr, addr_len, domain, err, errsz) != 0 ||
	    rules_parse_action(e, &c, domain, err, errsz) != 0) {
		rules_entry_free(e);
		return -1;
	}
	return 1;
}

void
rules_entry_free(struct rules_entry *e)
{
	size_t i;

	for (i = 0; i < e->ndsts; i++)
		free(e->dsts[i]);
	e->ndsts = 0;
}

void
rules_init(struct rules *r)
{
	memset(r, 0, sizeof(*r));
}

void
rules_free(struct rules *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		rules_entry_free(&r->v[i]);
	free(r->v);
	rules_init(r);
}

static void
rules_add(struct rules *r, const struct rules_entry *e)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = *e;
}

/* Compare the addresses of two rules the way the relay matches them. */
static int
rules_compare_address(const struct rules_entry *x, const struct rules_entry *y)
{
	if (x->catch_all != y->catch_all)
		return x->catch_all - y->catch_all;
	return strcasecmp(x->local, y->local);
}

/* qsort() order: by address, then by line. */
static int
rules_compare(const void *a, const void *b)
{
	const struct rules_entry *x = *(const struct rules_entry *const *)a;
	const struct rules_entry *y = *(const struct rules_entry *const *)b;
	int c;

	if ((c = rules_compare_address(x, y)) != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int
rules_report_duplicates(const struct rules *r, const char *name,
    const char *domain, FILE *errs)
{
	const struct rules_entry **sorted;
	size_t i, first = 0;
	int problems = 0;

	if (r->n < 2)
		return 0;
	sorted = xcalloc(r->n, sizeof(*sorted));
	for (i = 0; i < r->n; i++)
		sorted[i] = &r->v[i];
	qsort(sorted, r->n, sizeof(*sorted), rules_compare);
	for (i = 1; i < r->n; i++) {
		if (rules_compare_address(sorted[first], sorted[i]) != 0) {
			first = i;
			continue;
		}
		fprintf(errs, "%s:%u: duplicate rule for %s@%s (first at "
		    "line %u)\n", name, sorted[i]->line,
		    sorted[i]->catch_all ? "*" : sorted[i]->local, domain,
		    sorted[first]->line);
		problems++;
	}
	free(sorted);
	return problems;
}

/*
 * Read one line into buf without its newline, keeping at most
 * RULES_LINE_MAX bytes.  Returns the full length (so a value above
 * RULES_LINE_MAX means the line was cut), or -1 at the end of input.
 */
static long
rules_read_line(FILE *in, char buf[RULES_LINE_MAX])
{
	long len = 0;
	int ch;

	while ((ch = getc(in)) != EOF && ch != '\n') {
		if (len < RULES_LINE_MAX)
			buf[len] = (char)ch;
		len++;
	}
	if (ch == EOF && len == 0)
		return -1;
	if (len <= RULES_LINE_MAX && len > 0 && buf[len - 1] == '\r')
		len--;
	return len;
}

int
rules_parse_stream(struct rules *r, FILE *in, const char *name,
    const char *domain, FILE *errs)
{
	struct rules_entry e;
	char *line = xmalloc(RULES_LINE_MAX), err[512];
	unsigned lineno = 0;
	int problems = 0;
	long n;

	while ((n = rules_read_line(in, line)) >= 0) {
		lineno++;
		if (n > RULES_LINE_MAX) {
			fprintf(errs, "%s:%u: line longer than %d bytes\n",
			    name, lineno, RULES_LINE_MAX);
			problems++;
			continue;
		}
		switch (rules_parse_line(&e, line, (size_t)n, domain, err,
		    sizeof(err))) {
		case 1:
			e.line = lineno;
			rules_add(r, &e);
			break;
		case 0:
			break;
		default:
			fprintf(errs, "%s:%u: %s\n", name, lineno, err);
			problems++;
		}
	}
	if (ferror(in)) {
		fprintf(errs, "%s: read failed\n", name);
		problems++;
	}
	free(line);
	return problems + rules_report_duplicates(r, name, domain, errs);
}

int
rules_parse_file(struct rules *r, const char *path, const char *domain,
    FILE *errs)
{
	FILE *fp;
	int problems;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(errs, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	problems = rules_parse_stream(r, fp, path, domain, errs);
	fclose(fp);
	return problems;
}
