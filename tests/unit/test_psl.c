/*
 * Tests of the Public Suffix List module (router/psl.c).  The conformance
 * vectors published with the list (tests/vectors/dmarc/psl/, read from
 * the repository root) run against the list of Debian's publicsuffix
 * package.  Small lists written by the test cover wildcard, exception and
 * private rules.  A-label conversion and load errors have their own tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "psl.h"

#define TESTS_TXT	"tests/vectors/dmarc/psl/tests.txt"
#define TEST_PSL_TXT	"tests/vectors/dmarc/psl/test_psl.txt"

static char tmpdir[64];

static struct psl *
load_system_list(void)
{
	char err[256] = "";
	struct psl *psl = psl_load(NULL, 0, err, sizeof(err));

	if (psl == NULL)
		fprintf(stderr, "loading the public suffix list failed: %s "
		    "(install the publicsuffix package)\n", err);
	return psl;
}

/* Write text to a file in tmpdir and return its path in a static buffer. */
static const char *
write_list(const char *name, const char *text)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

/*
 * Check one vector: want is the registrable domain, or NULL for "null".
 * A NULL domain stands for the vectors' null input, which the C API
 * expresses as the empty string.
 */
static void
check_vector(const struct psl *psl, const char *domain, const char *want,
    int line)
{
	char out[PSL_NAME_MAX] = "x";
	int rc = psl_org_domain(psl, domain != NULL ? domain : "", out,
	    sizeof(out));

	if (want == NULL) {
		if (rc != -1 || out[0] != '\0')
			fprintf(stderr, "line %d: %s gave \"%s\", want null\n",
			    line, domain ? domain : "null", out);
		CHECK_INT(rc, -1);
		CHECK_STR(out, "");
		return;
	}
	if (rc != 0 || strcmp(out, want) != 0)
		fprintf(stderr, "line %d: %s gave \"%s\", want \"%s\"\n", line,
		    domain ? domain : "null", out, want);
	CHECK_INT(rc, 0);
	CHECK_STR(out, want);
}

/*
 * Conformance vectors.
 */

static void
psl_vectors_tests_txt(void)
{
	struct psl *psl = load_system_list();
	FILE *fp = fopen(TESTS_TXT, "r");
	char line[512], domain[256], want[256];
	int lineno = 0, checked = 0;

	CHECK(psl != NULL);
	CHECK(fp != NULL);
	if (psl == NULL || fp == NULL)
		goto out;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strncmp(line, "//", 2) == 0 ||
		    sscanf(line, "%255s %255s", domain, want) != 2)
			continue;
		check_vector(psl, strcmp(domain, "null") == 0 ? NULL : domain,
		    strcmp(want, "null") == 0 ? NULL : want, lineno);
		checked++;
	}
	CHECK_INT(checked, 78);
out:
	if (fp != NULL)
		fclose(fp);
	psl_free(psl);
}

/* Parse "'text'" or "null" at p into out; returns 1, 0 for null, -1. */
static int
parse_js_arg(const char *p, char *out, size_t outsz)
{
	const char *end;

	while (*p == ' ')
		p++;
	if (strncmp(p, "null", 4) == 0)
		return 0;
	if (*p != '\'' || (end = strchr(p + 1, '\'')) == NULL ||
	    (size_t)(end - p - 1) >= outsz)
		return -1;
	memcpy(out, p + 1, (size_t)(end - p - 1));
	out[end - p - 1] = '\0';
	return 1;
}

static void
psl_vectors_test_psl_txt(void)
{
	struct psl *psl = load_system_list();
	FILE *fp = fopen(TEST_PSL_TXT, "r");
	char line[512], domain[256], want[256];
	int lineno = 0, checked = 0, d, w;
	const char *comma;

	CHECK(psl != NULL);
	CHECK(fp != NULL);
	if (psl == NULL || fp == NULL)
		goto out;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strncmp(line, "checkPublicSuffix(", 18) != 0)
			continue;
		d = parse_js_arg(line + 18, domain, sizeof(domain));
		/* The first argument ends at the first comma outside quotes. */
		comma = d == 1 ? strchr(line + 18 + strlen(domain) + 2, ',') :
		    strchr(line + 18, ',');
		CHECK(d >= 0);
		CHECK(comma != NULL);
		if (d < 0 || comma == NULL)
			continue;
		w = parse_js_arg(comma + 1, want, sizeof(want));
		CHECK(w >= 0);
		check_vector(psl, d == 1 ? domain : NULL, w == 1 ? want : NULL,
		    lineno);
		checked++;
	}
	/* 82 vectors, 4 of them commented out upstream. */
	CHECK_INT(checked, 78);
out:
	if (fp != NULL)
		fclose(fp);
	psl_free(psl);
}

/*
 * Lists written by the test.
 */

static const char small_list[] =
    "// A test list.\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "*.ck\n"
    "!www.ck\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "jp\n"
    "kawasaki.jp\n"
    "COM.EXAMPLE trailing words are ignored\n"
    "公司.cn\n"
    "a.*.b\n"
    "bad..rule\n"
    ".leading.dot\n"
    "trailing.dot.\n"
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io\n"
    "// ===END PRIVATE DOMAINS===\n";

static void
check_org(const struct psl *psl, const char *domain, const char *want)
{
	check_vector(psl, domain, want, 0);
}

static void
psl_small_list_rules(void)
{
	char err[256] = "";
	struct psl *psl = psl_load(write_list("small.dat", small_list), 0,
	    err, sizeof(err));

	CHECK(psl != NULL);
	if (psl == NULL)
		return;
	/* 11 rules, plus the A-label form of 公司.cn. */
	CHECK_INT(psl_rule_count(psl), 12);
	CHECK_INT(psl_skipped(psl), 4);

	check_org(psl, "mail.example.com", "example.com");
	check_org(psl, "a.b.example.co.uk", "example.co.uk");
	check_org(psl, "co.uk", NULL);
	check_org(psl, "b.test.ck", "b.test.ck");
	check_org(psl, "test.ck", NULL);
	check_org(psl, "a.www.ck", "www.ck");
	check_org(psl, "www.ck", "www.ck");
	check_org(psl, "x.y.kawasaki.jp", "x.y.kawasaki.jp");
	check_org(psl, "a.city.kawasaki.jp", "city.kawasaki.jp");
	check_org(psl, "x.y.com.example", "y.com.example");
	check_org(psl, "a.b.xn--55qx5d.cn", "b.xn--55qx5d.cn");
	check_org(psl, "a.食狮.公司.cn", "食狮.公司.cn");
	check_org(psl, "foo.github.io", "foo.github.io");
	check_org(psl, "a.foo.github.io", "foo.github.io");
	/* Not listed: the implicit "*" rule makes the TLD the suffix. */
	check_org(psl, "a.b.unlisted", "b.unlisted");
	psl_free(psl);
}

static void
psl_icann_only_flag(void)
{
	char err[256] = "";
	struct psl *psl = psl_load(write_list("small.dat", small_list),
	    PSL_ICANN_ONLY, err, sizeof(err));

	CHECK(psl != NULL);
	if (psl == NULL)
		return;
	CHECK_INT(psl_rule_count(psl), 11);
	check_org(psl, "a.foo.github.io", "github.io");
	check_org(psl, "mail.example.com", "example.com");
	psl_free(psl);
}

static void
psl_input_forms(void)
{
	char err[256] = "", out[PSL_NAME_MAX], name[400];
	struct psl *psl = psl_load(write_list("small.dat", small_list), 0,
	    err, sizeof(err));

	CHECK(psl != NULL);
	if (psl == NULL)
		return;
	check_org(psl, "Mail.Example.COM.", "example.com");
	check_org(psl, "", NULL);
	check_org(psl, ".", NULL);
	check_org(psl, "example..com", NULL);
	check_org(psl, ".example.com", NULL);
	check_org(psl, "example.com..", NULL);

	/* 253 bytes is the longest name; 254 is refused. */
	memset(name, 'a', sizeof(name));
	memcpy(name + 253 - 12, ".example.com", 13);
	name[253 - 12 - 60] = '.';
	name[253 - 12 - 120] = '.';
	name[253 - 12 - 180] = '.';
	name[253 - 12 - 240] = '.';
	CHECK_INT(strlen(name), 253);
	CHECK_INT(psl_org_domain(psl, name, out, sizeof(out)), 0);
	CHECK_STR(out, "example.com");
	memmove(name + 1, name, 254);
	CHECK_INT(strlen(name), 254);
	CHECK_INT(psl_org_domain(psl, name, out, sizeof(out)), -1);

	/* The result must fit the output buffer. */
	CHECK_INT(psl_org_domain(psl, "a.example.com", out, 12), 0);
	CHECK_STR(out, "example.com");
	CHECK_INT(psl_org_domain(psl, "a.example.com", out, 11), -1);
	CHECK_STR(out, "");
	psl_free(psl);
}

static void
psl_load_errors(void)
{
	char err[256] = "";

	CHECK(psl_load("/nonexistent/psl.dat", 0, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/psl.dat") != NULL);

	err[0] = '\0';
	CHECK(psl_load(write_list("empty.dat", "// only comments\n\n"), 0, err,
	    sizeof(err)) == NULL);
	CHECK(strstr(err, "no public suffix rule") != NULL);

	err[0] = '\0';
	CHECK(psl_load(tmpdir, 0, err, sizeof(err)) == NULL);
	CHECK(err[0] != '\0');
}

/*
 * A-label conversion.
 */

static void
check_ascii(const char *in, const char *want)
{
	char out[PSL_NAME_MAX] = "x";
	int rc = psl_domain_to_ascii(in, out, sizeof(out));

	if (want == NULL) {
		CHECK_INT(rc, -1);
		CHECK_STR(out, "");
		return;
	}
	CHECK_INT(rc, 0);
	CHECK_STR(out, want);
}

static void
psl_to_ascii(void)
{
	char label[100];

	check_ascii("Example.COM", "example.com");
	check_ascii("example.com.", "example.com");
	check_ascii("食狮.公司.cn", "xn--85x722f.xn--55qx5d.cn");
	check_ascii("www.中国", "www.xn--fiqs8s");
	/* RFC 3492 section 7.1 sample (L) and a mixed-case label. */
	check_ascii("3年B組金八先生", "xn--3b-ww4c5e180e575a65lsy2b");
	check_ascii("bücher.example", "xn--bcher-kva.example");
	check_ascii("Bücher", "xn--bcher-kva");
	check_ascii("", NULL);
	check_ascii(".", NULL);
	check_ascii("a..b", NULL);
	check_ascii("\xff.com", NULL);
	check_ascii("\xc3\x28.com", NULL);
	check_ascii("\xed\xa0\x80.com", NULL);	/* a surrogate */
	check_ascii("\xc0\xaf.com", NULL);	/* overlong */

	memset(label, 'a', 63);
	label[63] = '\0';
	check_ascii(label, label);
	label[63] = 'a';
	label[64] = '\0';
	check_ascii(label, NULL);
}

int
main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_psl.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(psl_vectors_tests_txt);
	RUN(psl_vectors_test_psl_txt);
	RUN(psl_small_list_rules);
	RUN(psl_icann_only_flag);
	RUN(psl_input_forms);
	RUN(psl_load_errors);
	RUN(psl_to_ascii);
	unlink(write_list("small.dat", ""));
	unlink(write_list("empty.dat", ""));
	rmdir(tmpdir);
	CHECK_SUMMARY();
}
