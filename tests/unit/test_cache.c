/*
 * Unit tests for the TTL cache (router/cache.c): lookup, replacement,
 * expiry boundaries, LRU eviction by count and by bytes, ownership of
 * values, and growth of the hash table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "check.h"

/* Every value is a heap-allocated int, counted and summed when freed. */
static int freed_count;
static long long freed_sum;

static void
count_free(void *value)
{
	int *v = value;

	freed_count++;
	freed_sum += *v;
	free(v);
}

static int *
new_value(int n)
{
	int *v = malloc(sizeof(*v));

	if (v == NULL)
		abort();
	*v = n;
	return v;
}

static void
reset_counts(void)
{
	freed_count = 0;
	freed_sum = 0;
}

static int
value_of(struct cache *c, const char *key, double now)
{
	int *v = cache_get(c, key, now, NULL);

	return v == NULL ? -1 : *v;
}

static void
test_put_get(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);
	char key[] = "a.example.";

	reset_counts();
	cache_put(c, key, new_value(1), 4, 100, 60);
	key[0] = 'b';		/* the cache must have copied the key */
	cache_put(c, key, new_value(2), 4, 100, 60);
	CHECK_INT(value_of(c, "a.example.", 100), 1);
	CHECK_INT(value_of(c, "b.example.", 100), 2);
	CHECK(cache_get(c, "c.example.", 100, NULL) == NULL);
	CHECK(cache_get(c, "", 100, NULL) == NULL);
	CHECK_INT(cache_entries(c), 2);
	CHECK_INT(cache_bytes(c), 2 * cache_entry_bytes(10, 4));
	cache_free(c);
	CHECK_INT(freed_count, 2);
	CHECK_INT(freed_sum, 3);
}

static void
test_empty_key(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);

	reset_counts();
	cache_put(c, "", new_value(7), 0, 0, 1);
	CHECK_INT(value_of(c, "", 0), 7);
	cache_free(c);
	CHECK_INT(freed_count, 1);
}

static void
test_replace(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);
	double left;

	reset_counts();
	cache_put(c, "k", new_value(1), 100, 0, 10);
	cache_put(c, "k", new_value(2), 5, 0, 30);
	CHECK_INT(freed_count, 1);
	CHECK_INT(freed_sum, 1);
	CHECK_INT(cache_entries(c), 1);
	CHECK_INT(cache_bytes(c), cache_entry_bytes(1, 5));
	CHECK_INT(value_of(c, "k", 20), 2);	/* the new TTL applies */
	CHECK(cache_get(c, "k", 29, &left) != NULL);
	CHECK(left == 1);
	cache_free(c);
	CHECK_INT(freed_count, 2);
	CHECK_INT(freed_sum, 3);
}

/* Putting the pointer the cache already contains must not free it. */
static void
test_replace_same_pointer(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);
	int *v = new_value(5);

	reset_counts();
	cache_put(c, "k", v, 4, 0, 10);
	cache_put(c, "k", v, 4, 0, 20);
	CHECK_INT(freed_count, 0);
	CHECK_INT(value_of(c, "k", 15), 5);
	cache_put(c, "k", v, 4, 0, 0);		/* ttl 0 drops it, once */
	CHECK_INT(freed_count, 1);
	CHECK_INT(cache_entries(c), 0);
	cache_free(c);
	CHECK_INT(freed_count, 1);
}

static void
test_expiry_boundary(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);
	double left = -1;

	reset_counts();
	cache_put(c, "k", new_value(1), 4, 1000.0, 60.0);
	CHECK_INT(value_of(c, "k", 1059.999), 1);
	CHECK(cache_get(c, "k", 1060.0, &left) == NULL);
	CHECK(left == 0);
	CHECK_INT(freed_count, 1);		/* removed by the get */
	CHECK_INT(cache_entries(c), 0);
	CHECK_INT(cache_bytes(c), 0);
	cache_free(c);
	CHECK_INT(freed_count, 1);
}

static void
test_ttl_zero(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);

	reset_counts();
	cache_put(c, "zero", new_value(1), 4, 50, 0);
	CHECK_INT(freed_count, 1);
	CHECK(cache_get(c, "zero", 50, NULL) == NULL);
	cache_put(c, "negative", new_value(2), 4, 50, -5);
	CHECK_INT(freed_count, 2);
	cache_put(c, "k", new_value(3), 4, 50, 10);
	cache_put(c, "k", new_value(4), 4, 50, 0);	/* withdraws the old */
	CHECK_INT(freed_count, 4);
	CHECK(cache_get(c, "k", 50, NULL) == NULL);
	CHECK_INT(cache_entries(c), 0);
	cache_free(c);
	CHECK_INT(freed_sum, 10);
}

static void
test_remaining_ttl(void)
{
	struct cache *c = cache_new(10, 1 << 20, count_free);
	double left = -1;

	reset_counts();
	cache_put(c, "k", new_value(1), 4, 10.5, 300);
	CHECK(cache_get(c, "k", 10.5, &left) != NULL);
	CHECK(left == 300);
	CHECK(cache_get(c, "k", 200.5, &left) != NULL);
	CHECK(left == 110);
	CHECK(cache_get(c, "missing", 200.5, &left) == NULL);
	CHECK(left == 0);
	cache_free(c);
}

static void
test_expire_sweep(void)
{
	struct cache *c = cache_new(100, 1 << 20, count_free);
	char key[16];
	int i;

	reset_counts();
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cache_put(c, key, new_value(i), 1, 0, i + 1);
	}
	cache_expire(c, 10);		/* ttl 1..10 are gone */
	CHECK_INT(cache_entries(c), 40);
	CHECK_INT(freed_count, 10);
	CHECK_INT(freed_sum, 45);
	CHECK(cache_get(c, "k9", 10, NULL) == NULL);
	CHECK_INT(value_of(c, "k10", 10), 10);
	cache_expire(c, 1000);
	CHECK_INT(cache_entries(c), 0);
	CHECK_INT(cache_bytes(c), 0);
	CHECK_INT(freed_count, 50);
	cache_free(c);
	CHECK_INT(freed_count, 50);
}

static void
test_lru_by_count(void)
{
	struct cache *c = cache_new(3, 1 << 20, count_free);

	reset_counts();
	cache_put(c, "a", new_value(1), 1, 0, 100);
	cache_put(c, "b", new_value(2), 1, 0, 100);
	cache_put(c, "c", new_value(3), 1, 0, 100);
	CHECK_INT(value_of(c, "a", 1), 1);	/* a becomes most recent */
	cache_put(c, "d", new_value(4), 1, 1, 100);
	CHECK_INT(cache_entries(c), 3);
	CHECK_INT(freed_count, 1);
	CHECK_INT(freed_sum, 2);		/* b was least recent */
	CHECK(cache_get(c, "b", 1, NULL) == NULL);
	CHECK_INT(value_of(c, "a", 1), 1);
	CHECK_INT(value_of(c, "c", 1), 3);
	CHECK_INT(value_of(c, "d", 1), 4);
	cache_put(c, "e", new_value(5), 1, 1, 100);
	CHECK(cache_get(c, "a", 1, NULL) == NULL);
	cache_free(c);
	CHECK_INT(freed_count, 5);
	CHECK_INT(freed_sum, 15);
}

/* Room is made from expired entries before live ones are evicted. */
static void
test_expired_evicted_first(void)
{
	struct cache *c = cache_new(2, 1 << 20, count_free);

	reset_counts();
	cache_put(c, "old", new_value(1), 1, 0, 100);
	cache_put(c, "short", new_value(2), 1, 0, 5);
	CHECK_INT(value_of(c, "old", 1), 1);
	CHECK_INT(value_of(c, "short", 1), 2);	/* old is now the LRU */
	cache_put(c, "new", new_value(3), 1, 10, 100);
	CHECK_INT(freed_sum, 2);
	CHECK_INT(value_of(c, "old", 10), 1);
	CHECK_INT(value_of(c, "new", 10), 3);
	cache_free(c);
}

static void
test_lru_by_bytes(void)
{
	size_t one = cache_entry_bytes(1, 100);
	struct cache *c = cache_new(100, 3 * one, count_free);

	reset_counts();
	cache_put(c, "a", new_value(1), 100, 0, 100);
	cache_put(c, "b", new_value(2), 100, 0, 100);
	cache_put(c, "c", new_value(3), 100, 0, 100);
	CHECK_INT(cache_bytes(c), 3 * one);
	CHECK_INT(freed_count, 0);
	CHECK_INT(value_of(c, "a", 0), 1);
	/* one byte more than the room left: b goes */
	cache_put(c, "d", new_value(4), 1, 0, 100);
	CHECK_INT(freed_sum, 2);
	CHECK_INT(cache_entries(c), 3);
	CHECK(cache_bytes(c) <= 3 * one);
	/* a value worth two entries evicts the two least recent */
	cache_put(c, "e", new_value(5), 100 + one, 0, 100);
	CHECK_INT(freed_sum, 2 + 3 + 1);
	CHECK_INT(value_of(c, "d", 0), 4);
	CHECK_INT(value_of(c, "e", 0), 5);
	CHECK(cache_bytes(c) <= 3 * one);
	cache_free(c);
	CHECK_INT(freed_count, 5);
}

/* Growing an entry in place evicts others, never the entry itself. */
static void
test_replace_grows(void)
{
	size_t one = cache_entry_bytes(1, 100);
	struct cache *c = cache_new(100, 3 * one, count_free);

	reset_counts();
	cache_put(c, "a", new_value(1), 100, 0, 100);
	cache_put(c, "b", new_value(2), 100, 0, 100);
	cache_put(c, "c", new_value(3), 100, 0, 100);
	cache_put(c, "a", new_value(10), 100 + 2 * one, 0, 100);
	CHECK_INT(cache_entries(c), 1);
	CHECK_INT(value_of(c, "a", 0), 10);
	CHECK_INT(freed_sum, 1 + 2 + 3);
	cache_free(c);
}

static void
test_oversize_value(void)
{
	size_t max = cache_entry_bytes(1, 100);
	struct cache *c = cache_new(10, max, count_free);

	reset_counts();
	cache_put(c, "k", new_value(1), 100, 0, 100);	/* exactly fits */
	CHECK_INT(value_of(c, "k", 0), 1);
	cache_put(c, "x", new_value(2), 101, 0, 100);	/* one byte too many */
	CHECK_INT(freed_count, 1);
	CHECK_INT(freed_sum, 2);
	CHECK(cache_get(c, "x", 0, NULL) == NULL);
	CHECK_INT(value_of(c, "k", 0), 1);	/* nothing evicted for it */
	cache_put(c, "k", new_value(3), SIZE_MAX, 0, 100);
	CHECK_INT(freed_count, 3);		/* new and old value both */
	CHECK(cache_get(c, "k", 0, NULL) == NULL);
	CHECK_INT(cache_entries(c), 0);
	CHECK_INT(cache_bytes(c), 0);
	cache_free(c);
	CHECK_INT(freed_sum, 6);
}

static void
test_zero_bounds(void)
{
	struct cache *c = cache_new(0, 1 << 20, count_free);

	reset_counts();
	cache_put(c, "k", new_value(1), 1, 0, 100);
	CHECK_INT(freed_count, 1);
	CHECK_INT(cache_entries(c), 0);
	cache_free(c);
	c = cache_new(10, 0, count_free);
	cache_put(c, "k", new_value(1), 0, 0, 100);
	CHECK_INT(freed_count, 2);
	cache_free(c);
}

static void
test_null_free_fn(void)
{
	struct cache *c = cache_new(2, 1 << 20, NULL);
	static int a = 1, b = 2, d = 3;

	cache_put(c, "a", &a, 1, 0, 10);
	cache_put(c, "b", &b, 1, 0, 10);
	cache_put(c, "d", &d, 1, 0, 10);
	CHECK(cache_get(c, "a", 0, NULL) == NULL);
	CHECK(cache_get(c, "d", 0, NULL) == &d);
	cache_free(c);
	cache_free(NULL);
}

/*
 * Random operations checked against a linear-scan model of the same
 * policy, so heap and list bookkeeping errors show up as a mismatch.
 */
#define MODEL_KEYS 24

struct model_entry {
	int		 present;
	int		 value;
	double		 expires;
	unsigned long	 last_use;
	size_t		 bytes;
};

struct model {
	struct model_entry	 e[MODEL_KEYS];
	size_t			 max_entries, max_bytes;
	unsigned long		 clock;
};

static size_t
model_count(const struct model *m, size_t *bytes)
{
	size_t i, n = 0;

	*bytes = 0;
	for (i = 0; i < MODEL_KEYS; i++)
		if (m->e[i].present) {
			n++;
			*bytes += m->e[i].bytes;
		}
	return n;
}

static void
model_drop_expired(struct model *m, double now)
{
	size_t i;

	for (i = 0; i < MODEL_KEYS; i++)
		if (m->e[i].present && !(now < m->e[i].expires))
			m->e[i].present = 0;
}

static void
model_make_room(struct model *m, size_t extra_entries, size_t extra_bytes)
{
	size_t i, lru, n, bytes;

	for (;;) {
		n = model_count(m, &bytes);
		if (n == 0 || (n + extra_entries <= m->max_entries &&
		    bytes + extra_bytes <= m->max_bytes))
			return;
		lru = MODEL_KEYS;
		for (i = 0; i < MODEL_KEYS; i++)
			if (m->e[i].present && (lru == MODEL_KEYS ||
			    m->e[i].last_use < m->e[lru].last_use))
				lru = i;
		m->e[lru].present = 0;
	}
}

static void
model_put(struct model *m, size_t k, int value, size_t bytes, double now,
    double ttl)
{
	struct model_entry *e = &m->e[k];

	if (!(ttl > 0) || bytes > m->max_bytes) {
		e->present = 0;
		return;
	}
	if (!e->present) {
		model_drop_expired(m, now);
		model_make_room(m, 1, bytes);
	}
	e->present = 1;
	e->value = value;
	e->bytes = bytes;
	e->expires = now + ttl;
	e->last_use = ++m->clock;
	model_drop_expired(m, now);
	model_make_room(m, 0, 0);
}

static int
model_get(struct model *m, size_t k, double now)
{
	struct model_entry *e = &m->e[k];

	if (!e->present)
		return -1;
	if (!(now < e->expires)) {
		e->present = 0;
		return -1;
	}
	e->last_use = ++m->clock;
	return e->value;
}

static void
test_random_against_model(void)
{
	struct model m = { .max_entries = 10 };
	struct cache *c;
	char key[8];
	double now = 0;
	size_t k, bytes, nmodel, mismatches = 0;
	int i, op, puts = 0;

	m.max_bytes = 8 * cache_entry_bytes(2, 50);
	c = cache_new(m.max_entries, m.max_bytes, count_free);
	reset_counts();
	srand(12345);
	for (i = 0; i < 200000; i++) {
		k = (size_t)rand() % MODEL_KEYS;
		snprintf(key, sizeof(key), "%02zu", k);
		op = rand() % 10;
		if (op < 4) {
			size_t size = (size_t)rand() % 120;
			double ttl = rand() % 40 - 2;

			cache_put(c, key, new_value(i), size, now, ttl);
			model_put(&m, k, i, cache_entry_bytes(2, size), now,
			    ttl);
			puts++;
		} else if (op < 9) {
			mismatches += value_of(c, key, now) !=
			    model_get(&m, k, now);
		} else {
			cache_expire(c, now);
			model_drop_expired(&m, now);
		}
		nmodel = model_count(&m, &bytes);
		mismatches += cache_entries(c) != nmodel;
		mismatches += cache_bytes(c) != bytes;
		now += rand() % 3;
	}
	CHECK_INT(mismatches, 0);
	cache_free(c);
	CHECK_INT(freed_count, puts);
}

#define MANY 100000

static void
test_many_keys(void)
{
	struct cache *c = cache_new(MANY, SIZE_MAX, count_free);
	char key[32];
	int i, found = 0;

	reset_counts();
	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "host%d.example.", i);
		cache_put(c, key, new_value(i), 8, 0, 1000 + i % 7);
	}
	CHECK_INT(cache_entries(c), MANY);
	CHECK_INT(freed_count, 0);
	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "host%d.example.", i);
		found += value_of(c, key, 1) == i;
	}
	CHECK_INT(found, MANY);
	/* one more evicts exactly the least recently used: host0 */
	cache_put(c, "extra.", new_value(-1), 8, 1, 1000);
	CHECK_INT(cache_entries(c), MANY);
	CHECK_INT(freed_count, 1);
	CHECK_INT(freed_sum, 0);
	CHECK(cache_get(c, "host0.example.", 1, NULL) == NULL);
	CHECK_INT(value_of(c, "host1.example.", 1), 1);
	cache_expire(c, 1003);		/* i % 7 in 0..3 expire */
	CHECK(cache_entries(c) < MANY / 7 * 4);
	CHECK(cache_get(c, "host3.example.", 1003, NULL) == NULL);
	CHECK_INT(value_of(c, "host4.example.", 1003), 4);
	cache_free(c);
	CHECK_INT(freed_count, MANY + 1);
	CHECK_INT(freed_sum, (long long)MANY * (MANY - 1) / 2 - 1);
}

int
main(void)
{
	RUN(test_put_get);
	RUN(test_empty_key);
	RUN(test_replace);
	RUN(test_replace_same_pointer);
	RUN(test_expiry_boundary);
	RUN(test_ttl_zero);
	RUN(test_remaining_ttl);
	RUN(test_expire_sweep);
	RUN(test_lru_by_count);
	RUN(test_expired_evicted_first);
	RUN(test_lru_by_bytes);
	RUN(test_replace_grows);
	RUN(test_oversize_value);
	RUN(test_zero_bounds);
	RUN(test_null_free_fn);
	RUN(test_many_keys);
	RUN(test_random_against_model);
	CHECK_SUMMARY();
}
