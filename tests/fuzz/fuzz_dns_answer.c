/*
 * Fuzz target for the answer side of the DNS client (router/dns.c): the
 * checks that match an answer to its query and the reading of the
 * answer, authority and CNAME chain into a result.  The input is one DNS
 * message as it would arrive from a resolver.
 *
 * The file includes dns.c to reach its static functions, so it links
 * without router/dns.o.  "make fuzz" builds it as build/fuzz/fuzz_dns_answer.
 *
 * or with -DFUZZ_STANDALONE and any compiler to replay files given as
 * arguments.
 */
#include "dns.c"

/* Check what dns_result_from_packet() promises about a result. */
static void
fuzz_check_result(const struct dns_result *r, ldns_rr_type qtype)
{
	size_t i;

	if (r->ttl > DNS_MAX_TTL)
		abort();
	if (r->status != DNS_OK) {
		if (r->rrs != NULL)
			abort();
		return;
	}
	if (r->rrs == NULL || ldns_rr_list_rr_count(r->rrs) == 0)
		abort();
	for (i = 0; i < ldns_rr_list_rr_count(r->rrs); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(r->rrs, i)) != qtype)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_flight f;
	struct dns_result *r;
	const ldns_rr *question;
	ldns_pkt *pkt = NULL;

	log_set_level(LOG_LVL_ERR);
	if (ldns_wire2pkt(&pkt, data, size) != LDNS_STATUS_OK)
		return 0;
	/*
	 * Pose as the query that this message answers, so matching passes
	 * whenever the message has one well-formed question.
	 */
	memset(&f, 0, sizeof(f));
	f.id = ldns_pkt_id(pkt);
	question = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	if (question != NULL && ldns_rr_owner(question) != NULL) {
		f.qname = ldns_rr_owner(question);
		f.qtype = ldns_rr_get_type(question);
		(void)dns_answer_matches(&f, pkt);
		r = dns_result_from_packet(f.qname, f.qtype, pkt);
		fuzz_check_result(r, f.qtype);
		dns_result_unref(r);
	}
	ldns_pkt_free(pkt);
	return 0;
}

#ifdef FUZZ_STANDALONE
int
main(int argc, char **argv)
{
	static uint8_t buf[65536];
	size_t n;
	FILE *fp;
	int i;

	for (i = 1; i < argc; i++) {
		if ((fp = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
	}
	return 0;
}
#endif
