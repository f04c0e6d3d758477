/*
 * Public Suffix List rule set and Organizational Domain lookup (see
 * psl.h).  The rules live in an open-addressing hash table whose keys
 * point into one string arena.  A key carries flags: PSL_RULE ("co.uk" is
 * a rule), PSL_WILDCARD ("*.ck" is a rule: stored under "ck") and
 * PSL_EXCEPTION ("!www.ck" is a rule).  The table is filled once from the
 * trusted list file and only read afterwards, so peer-chosen names can
 * make a lookup no slower than the longest probe sequence of that table.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psl.h"
#include "xmalloc.h"

#define PSL_RULE	0x1
#define PSL_WILDCARD	0x2
#define PSL_EXCEPTION	0x4

#define PSL_LABEL_MAX	63
#define PSL_LABELS_MAX	128	/* a 253-byte name has at most 127 labels */
#define PSL_TABLE_MIN	16384
#define PSL_PRIVATE_MARK "===BEGIN PRIVATE DOMAINS==="

/* Punycode parameters, RFC 3492 section 5. */
#define PUNY_BASE	36
#define PUNY_TMIN	1
#define PUNY_TMAX	26
#define PUNY_SKEW	38
#define PUNY_DAMP	700
#define PUNY_BIAS	72
#define PUNY_N		128

struct psl_entry {
	uint32_t	 hash;
	uint32_t	 off;		/* key offset in the arena */
	uint16_t	 len;		/* 0: empty slot */
	uint8_t		 flags;
};

struct psl {
	struct psl_entry *table;
	size_t		 size;		/* slots, a power of two */
	size_t		 count;		/* keys stored */
	char		*arena;
	size_t		 arena_len;
	size_t		 arena_size;
	size_t		 skipped;	/* lines that were not valid rules */
};

/* FNV-1a: the keys come from the trusted list, not from peers. */
static uint32_t
psl_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct psl_entry *
psl_find(const struct psl *psl, const char *key, size_t len)
{
	uint32_t h = psl_hash(key, len);
	size_t i = h & (psl->size - 1);

	for (;;) {
		struct psl_entry *e = &psl->table[i];

		if (e->len == 0)
			return NULL;
		if (e->hash == h && e->len == len &&
		    memcmp(psl->arena + e->off, key, len) == 0)
			return e;
		i = (i + 1) & (psl->size - 1);
	}
}

/* The flags stored for key, 0 when the key is not in the table. */
static int
psl_flags(const struct psl *psl, const char *key, size_t len)
{
	const struct psl_entry *e = psl_find(psl, key, len);

	return e != NULL ? e->flags : 0;
}

static void
psl_place(struct psl_entry *table, size_t size, const struct psl_entry *e)
{
	size_t i = e->hash & (size - 1);

	while (table[i].len != 0)
		i = (i + 1) & (size - 1);
	table[i] = *e;
}

static void
psl_grow(struct psl *psl)
{
	size_t size = psl->size * 2, i;
	struct psl_entry *table = xcalloc(size, sizeof(*table));

	for (i = 0; i < psl->size; i++)
		if (psl->table[i].len != 0)
			psl_place(table, size, &psl->table[i]);
	free(psl->table);
	psl->table = table;
	psl->size = size;
}

/* Add flag to key.  Returns 0, or -1 when PSL_RULES_MAX keys are stored. */
static int
psl_insert(struct psl *psl, const char *key, size_t len, int flag)
{
	struct psl_entry *e = psl_find(psl, key, len), n;

	if (e != NULL) {
		e->flags |= (uint8_t)flag;
		return 0;
	}
	if (psl->count >= PSL_RULES_MAX)
		return -1;
	if ((psl->count + 1) * 2 > psl->size)
		psl_grow(psl);
	while (psl->arena_len + len > psl->arena_size) {
		psl->arena_size *= 2;
		psl->arena = xrealloc(psl->arena, psl->arena_size);
	}
	memcpy(psl->arena + psl->arena_len, key, len);
	n.hash = psl_hash(key, len);
	n.off = (uint32_t)psl->arena_len;
	n.len = (uint16_t)len;
	n.flags = (uint8_t)flag;
	psl_place(psl->table, psl->size, &n);
	psl->arena_len += len;
	psl->count++;
	return 0;
}

/*
 * UTF-8 and Punycode.
 */

/*
 * Decode one UTF-8 sequence at s (n bytes available) into *cp.  Returns
 * its length, or 0 when it is invalid (overlong, surrogate, above
 * U+10FFFF or cut short).
 */
static size_t
psl_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static uint32_t
puny_adapt(uint32_t delta, uint32_t npoints, int first)
{
	uint32_t k = 0;

	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / npoints;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static char
puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* Append c to out[*len] (capacity cap).  Returns -1 when full. */
static int
puny_put(char *out, size_t *len, size_t cap, char c)
{
	if (*len >= cap)
		return -1;
	out[(*len)++] = c;
	return 0;
}

/* Write the variable-length integer q with the given bias (RFC 3492 6.3). */
static int
puny_put_number(char *out, size_t *len, size_t cap, uint32_t q,
    uint32_t bias)
{
	uint32_t k, t;

	for (k = PUNY_BASE;; k += PUNY_BASE) {
		t = k <= bias ? PUNY_TMIN :
		    k >= bias + PUNY_TMAX ? PUNY_TMAX : k - bias;
		if (q < t)
			break;
		if (puny_put(out, len, cap,
		    puny_digit(t + (q - t) % (PUNY_BASE - t))) == -1)
			return -1;
		q = (q - t) / (PUNY_BASE - t);
	}
	return puny_put(out, len, cap, puny_digit(q));
}

/*
 * Encode the code points cps[0..n) with the Punycode algorithm of RFC
 * 3492 section 6.3 into out (capacity cap, not NUL-terminated).  Returns
 * the length written, or -1 when it does not fit.  n is at most
 * PSL_LABEL_MAX, so delta cannot overflow 32 bits.
 */
static int
puny_encode(const uint32_t *cps, size_t n, char *out, size_t cap)
{
	uint32_t next = PUNY_N, delta = 0, bias = PUNY_BIAS, m;
	size_t len = 0, h, b = 0, i;

	for (i = 0; i < n; i++)
		if (cps[i] < 0x80 && puny_put(out, &len, cap,
		    (char)cps[i]) == -1)
			return -1;
	h = b = len;
	if (b > 0 && puny_put(out, &len, cap, '-') == -1)
		return -1;
	while (h < n) {
		m = UINT32_MAX;
		for (i = 0; i < n; i++)
			if (cps[i] >= next && cps[i] < m)
				m = cps[i];
		delta += (m - next) * (uint32_t)(h + 1);
		next = m;
		for (i = 0; i < n; i++) {
			if (cps[i] < next)
				delta++;
			if (cps[i] != next)
				continue;
			if (puny_put_number(out, &len, cap, delta, bias) == -1)
				return -1;
			bias = puny_adapt(delta, (uint32_t)(h + 1), h == b);
			delta = 0;
			h++;
		}
		delta++;
		next++;
	}
	return (int)len;
}

/*
 * Convert one label (len bytes of UTF-8) to ASCII into out at *olen
 * (capacity cap).  Returns 0 or -1.
 */
static int
psl_label_to_ascii(const char *label, size_t len, char *out, size_t *olen,
    size_t cap)
{
	uint32_t cps[PSL_LABEL_MAX];
	size_t n = 0, i = 0, step;
	int ascii = 1, w;

	while (i < len) {
		if (n == PSL_LABEL_MAX)
			return -1;
		step = psl_utf8_decode((const unsigned char *)label + i,
		    len - i, &cps[n]);
		if (step == 0)
			return -1;
		if (cps[n] >= 'A' && cps[n] <= 'Z')
			cps[n] += 'a' - 'A';
		if (cps[n] >= 0x80)
			ascii = 0;
		i += step;
		n++;
	}
	if (ascii) {
		if (n > PSL_LABEL_MAX || *olen + n > cap)
			return -1;
		for (i = 0; i < n; i++)
			out[(*olen)++] = (char)cps[i];
		return 0;
	}
	if (*olen + 4 > cap)
		return -1;
	memcpy(out + *olen, "xn--", 4);
	w = puny_encode(cps, n, out + *olen + 4, cap - *olen - 4);
	if (w < 0 || 4 + (size_t)w > PSL_LABEL_MAX)
		return -1;
	*olen += 4 + (size_t)w;
	return 0;
}

int
psl_domain_to_ascii(const char *domain, char *out, size_t outsz)
{
	size_t len = strlen(domain), olen = 0, cap, start = 0, end;

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0)
		return -1;
	cap = outsz - 1 < PSL_NAME_MAX - 1 ? outsz - 1 : PSL_NAME_MAX - 1;
	while (start <= len) {
		const char *dot = memchr(domain + start, '.', len - start);

		end = dot != NULL ? (size_t)(dot - domain) : len;
		if (end == start ||
		    (start > 0 && puny_put(out, &olen, cap, '.') == -1) ||
		    psl_label_to_ascii(domain + start, end - start, out, &olen,
		    cap) == -1) {
			out[0] = '\0';
			return -1;
		}
		start = end + 1;
	}
	out[olen] = '\0';
	return 0;
}

/*
 * Loading.
 */

static int
psl_is_ascii(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/*
 * Add one rule (len bytes, without the line's comment or spaces) in its
 * UTF-8 form and, when that differs, its A-label form.  Returns 1 when
 * added, 0 when the text is not a valid rule, -1 when the table is full.
 */
static int
psl_add_rule(struct psl *psl, const char *rule, size_t len)
{
	char name[PSL_NAME_MAX], ascii[PSL_NAME_MAX];
	int flag = PSL_RULE;
	size_t i;

	if (len > 0 && rule[0] == '!') {
		flag = PSL_EXCEPTION;
		rule++;
		len--;
	} else if (len > 1 && rule[0] == '*' && rule[1] == '.') {
		flag = PSL_WILDCARD;
		rule += 2;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(name) || memchr(rule, '*', len) != NULL)
		return 0;
	for (i = 0; i < len; i++)
		name[i] = (char)(rule[i] >= 'A' && rule[i] <= 'Z' ?
		    rule[i] + ('a' - 'A') : rule[i]);
	name[len] = '\0';
	if (name[len - 1] == '.' ||
	    psl_domain_to_ascii(name, ascii, sizeof(ascii)) == -1)
		return 0;
	if (psl_insert(psl, name, len, flag) == -1)
		return -1;
	if (!psl_is_ascii(name, len) &&
	    psl_insert(psl, ascii, strlen(ascii), flag) == -1)
		return -1;
	return 1;
}

/*
 * Parse the list text (len bytes).  Returns 0, or -1 with a message in
 * err when the table fills up.
 */
static int
psl_parse(struct psl *psl, const char *text, size_t len, int flags,
    char *err, size_t errsz)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol != NULL ? eol : end;
		size_t n = 0;

		if (line_end - p >= 2 && p[0] == '/' && p[1] == '/') {
			if ((flags & PSL_ICANN_ONLY) &&
			    memmem(p, (size_t)(line_end - p), PSL_PRIVATE_MARK,
			    strlen(PSL_PRIVATE_MARK)) != NULL)
				return 0;
		} else {
			/* A rule ends at the first white space. */
			while (p + n < line_end && p[n] != ' ' && p[n] != '\t' &&
			    p[n] != '\r')
				n++;
			if (n > 0) {
				int r = psl_add_rule(psl, p, n);

				if (r == -1) {
					snprintf(err, errsz, "more than %d "
					    "public suffix rules", PSL_RULES_MAX);
					return -1;
				}
				if (r == 0)
					psl->skipped++;
			}
		}
		p = line_end + 1;
	}
	return 0;
}

/*
 * Read the whole file at path into a new buffer.  Returns it with its
 * length in *len, or NULL with a message in err.
 */
static char *
psl_read_file(const char *path, size_t *len, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	struct stat st;
	char *text;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uintmax_t)st.st_size > PSL_FILE_MAX) {
		snprintf(err, errsz, "%s: not a regular file of at most %u "
		    "bytes", path, PSL_FILE_MAX);
		fclose(fp);
		return NULL;
	}
	text = xmalloc((size_t)st.st_size + 1);
	*len = fread(text, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		snprintf(err, errsz, "%s: read failed", path);
		free(text);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	return text;
}

struct psl *
psl_load(const char *path, int flags, char *err, size_t errsz)
{
	struct psl *psl;
	size_t len = 0;
	char *text;

	if (path == NULL)
		path = PSL_DEFAULT_PATH;
	if ((text = psl_read_file(path, &len, err, errsz)) == NULL)
		return NULL;
	psl = xcalloc(1, sizeof(*psl));
	psl->size = PSL_TABLE_MIN;
	psl->table = xcalloc(psl->size, sizeof(*psl->table));
	psl->arena_size = 65536;
	psl->arena = xmalloc(psl->arena_size);
	if (psl_parse(psl, text, len, flags, err, errsz) == -1)
		goto fail;
	if (psl->count == 0) {
		snprintf(err, errsz, "%s: no public suffix rule found", path);
		goto fail;
	}
	free(text);
	return psl;

fail:
	free(text);
	psl_free(psl);
	return NULL;
}

void
psl_free(struct psl *psl)
{
	if (psl == NULL)
		return;
	free(psl->table);
	free(psl->arena);
	free(psl);
}

size_t
psl_rule_count(const struct psl *psl)
{
	return psl->count;
}

size_t
psl_skipped(const struct psl *psl)
{
	return psl->skipped;
}

/*
 * Lookup.
 */

/*
 * Copy domain into name, lower-cased in ASCII, without one trailing dot,
 * and record where each label starts.  Returns the label count, or 0 when
 * the name is empty, too long, or has an empty label.
 */
static size_t
psl_split(const char *domain, char name[PSL_NAME_MAX],
    size_t starts[PSL_LABELS_MAX], size_t *len)
{
	size_t n = strlen(domain), i, labels = 0;

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= PSL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = domain[i];

		name[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
		if (i == 0 || name[i - 1] == '.') {
			if (c == '.' || labels == PSL_LABELS_MAX)
				return 0;
			starts[labels++] = i;
		}
	}
	if (name[n - 1] == '.')
		return 0;
	name[n] = '\0';
	*len = n;
	return labels;
}

/*
 * The index of the label that starts the Organizational Domain, or -1
 * when the whole name is a public suffix.
 */
static int
psl_org_label(const struct psl *psl, const char *name, size_t len,
    const size_t *starts, size_t labels)
{
	size_t i;

	/* An exception rule wins over every other match. */
	for (i = 0; i < labels; i++)
		if (psl_flags(psl, name + starts[i], len - starts[i]) &
		    PSL_EXCEPTION)
			return (int)i;
	/* Else the longest match; "*" is the implicit rule for the TLD. */
	for (i = 0; i + 1 < labels; i++) {
		if ((psl_flags(psl, name + starts[i], len - starts[i]) &
		    PSL_RULE) ||
		    (psl_flags(psl, name + starts[i + 1],
		    len - starts[i + 1]) & PSL_WILDCARD))
			break;
	}
	return (int)i - 1;
}

int
psl_org_domain(const struct psl *psl, const char *domain, char *out,
    size_t outsz)
{
	char name[PSL_NAME_MAX];
	size_t starts[PSL_LABELS_MAX], labels, len = 0;
	int first;

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	if ((labels = psl_split(domain, name, starts, &len)) == 0)
		return -1;
	first = psl_org_label(psl, name, len, starts, labels);
	if (first < 0 || len - starts[first] >= outsz)
		return -1;
	memcpy(out, name + starts[first], len - starts[first] + 1);
	return 0;
}
