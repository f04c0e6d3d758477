/*
 * A per-process pool of random bytes (see random.h).  Each byte is handed
 * out once and wiped from the pool as it goes.
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "random.h"
#include "xmalloc.h"

#define RANDOM_POOL_SIZE	256

static unsigned char random_pool[RANDOM_POOL_SIZE];
static size_t random_left;	/* unused bytes at the end of the pool */
static int random_atfork_set;

/* Drop the bytes inherited from the parent process. */
static void
random_forget(void)
{
	sodium_memzero(random_pool, sizeof(random_pool));
	random_left = 0;
}

void
random_buf(void *out, size_t len)
{
	unsigned char *p = out;
	size_t n;

	if (!random_atfork_set) {
		if (pthread_atfork(NULL, NULL, random_forget) != 0)
			fatal_invariant("pthread_atfork failed");
		random_atfork_set = 1;
	}
	/* Requests as large as the pool bypass it. */
	if (len >= sizeof(random_pool)) {
		randombytes_buf(out, len);
		return;
	}
	while (len > 0) {
		if (random_left == 0) {
			randombytes_buf(random_pool, sizeof(random_pool));
			random_left = sizeof(random_pool);
		}
		n = len < random_left ? len : random_left;
		memcpy(p, random_pool + sizeof(random_pool) - random_left, n);
		sodium_memzero(random_pool + sizeof(random_pool) - random_left,
		    n);
		random_left -= n;
		p += n;
		len -= n;
	}
}

uint32_t
random_u32(void)
{
	uint32_t v;

	random_buf(&v, sizeof(v));
	return v;
}

/*
 * Draw until the value is at least 2^32 mod upper_bound, so that every
 * remainder is equally likely.
 */
uint32_t
random_uniform(uint32_t upper_bound)
{
	uint32_t min, v;

	if (upper_bound < 2)
		return 0;
	min = (1U + ~upper_bound) % upper_bound;
	do
		v = random_u32();
	while (v < min);
	return v % upper_bound;
}
