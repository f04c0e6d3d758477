/*
 * TTL cache: string keys to opaque values, used by the DNS client and the
 * rule lookups of the relay.  Each worker process owns its caches, so
 * nothing here locks.
 *
 * Three structures index the same entries:
 *
 *   - a hash table with chained buckets.  The hash is SipHash
 *     (libsodium's crypto_shorthash) under a random key drawn per cache,
 *     so a peer that picks the names we look up cannot force collisions.
 *     The table doubles when the load factor passes 3/4.
 *   - a doubly linked list in recency order (head is most recently used),
 *     which picks the victim when the cache is over a bound.
 *   - a binary min-heap on expiry time, so cache_expire() and cache_put()
 *     drop expired entries without walking live ones.
 *
 * An entry is live while now < expires: a TTL of 0 is never returned.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cache.h"
#include "xmalloc.h"

#define CACHE_MIN_BUCKETS	16
#define CACHE_MIN_HEAP		16

struct cache_entry {
	struct cache_entry	*bucket_next;
	struct cache_entry	*lru_prev;	/* towards the head (newer) */
	struct cache_entry	*lru_next;	/* towards the tail (older) */
	uint64_t		 hash;
	double			 expires;
	size_t			 heap_index;
	size_t			 bytes;		/* what the entry counts */
	void			*value;
	size_t			 key_len;
	char			 key[];		/* NUL-terminated copy */
};

struct cache {
	struct cache_entry	**buckets;
	size_t			 nbuckets;	/* a power of two */
	struct cache_entry	*lru_head;
	struct cache_entry	*lru_tail;
	struct cache_entry	**heap;
	size_t			 heap_len;
	size_t			 heap_cap;
	size_t			 nentries;
	size_t			 nbytes;
	size_t			 max_entries;
	size_t			 max_bytes;
	cache_free_fn		*free_value;
	unsigned char		 hash_key[crypto_shorthash_KEYBYTES];
};

/*
 * Return the bytes an entry with a key of key_len and a value of size
 * counts against max_bytes, or SIZE_MAX if the sum overflows.
 */
size_t
cache_entry_bytes(size_t key_len, size_t size)
{
	size_t fixed = sizeof(struct cache_entry) + key_len + 1;

	if (key_len > SIZE_MAX - sizeof(struct cache_entry) - 1 ||
	    size > SIZE_MAX - fixed)
		return SIZE_MAX;
	return fixed + size;
}

/*
 * Create an empty cache.  free_value may be NULL when the cache should
 * never free values.  Aborts if libsodium cannot be initialised.
 */
struct cache *
cache_new(size_t max_entries, size_t max_bytes, cache_free_fn *free_value)
{
	struct cache *c;

	if (sodium_init() < 0)
		fatal_invariant("sodium_init failed");
	c = xcalloc(1, sizeof(*c));
	c->nbuckets = CACHE_MIN_BUCKETS;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	c->free_value = free_value;
	crypto_shorthash_keygen(c->hash_key);
	return c;
}

static uint64_t
cache_hash(const struct cache *c, const char *key, size_t key_len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)key, key_len, c->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static struct cache_entry **
cache_bucket(const struct cache *c, uint64_t hash)
{
	return &c->buckets[hash & (c->nbuckets - 1)];
}

static struct cache_entry *
cache_find(const struct cache *c, const char *key, size_t key_len,
    uint64_t hash)
{
	struct cache_entry *e;

	for (e = *cache_bucket(c, hash); e != NULL; e = e->bucket_next)
		if (e->hash == hash && e->key_len == key_len &&
		    memcmp(e->key, key, key_len) == 0)
			return e;
	return NULL;
}

/* Double the bucket array.  Entries keep their hash, so this only relinks. */
static void
cache_grow(struct cache *c)
{
	struct cache_entry **old = c->buckets, *e, *next, **b;
	size_t oldn = c->nbuckets, i;

	if (c->nbuckets > SIZE_MAX / 2 / sizeof(*c->buckets))
		return;
	c->nbuckets *= 2;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	for (i = 0; i < oldn; i++) {
		for (e = old[i]; e != NULL; e = next) {
			next = e->bucket_next;
			b = cache_bucket(c, e->hash);
			e->bucket_next = *b;
			*b = e;
		}
	}
	free(old);
}

static void
cache_bucket_unlink(struct cache *c, struct cache_entry *e)
{
	struct cache_entry **p = cache_bucket(c, e->hash);

	while (*p != e) {
		if (*p == NULL)
			fatal_invariant("cache entry missing from its bucket");
		p = &(*p)->bucket_next;
	}
	*p = e->bucket_next;
}

static void
cache_lru_unlink(struct cache *c, struct cache_entry *e)
{
	if (e->lru_prev != NULL)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next != NULL)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
cache_lru_push_head(struct cache *c, struct cache_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lru_prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

static void
cache_heap_set(struct cache *c, size_t i, struct cache_entry *e)
{
	c->heap[i] = e;
	e->heap_index = i;
}

static void
cache_heap_up(struct cache *c, size_t i)
{
	struct cache_entry *e = c->heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (c->heap[parent]->expires <= e->expires)
			break;
		cache_heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	cache_heap_set(c, i, e);
}

static void
cache_heap_down(struct cache *c, size_t i)
{
	struct cache_entry *e = c->heap[i];
	size_t child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= c->heap_len)
			break;
		if (child + 1 < c->heap_len &&
		    c->heap[child + 1]->expires < c->heap[child]->expires)
			child++;
		if (e->expires <= c->heap[child]->expires)
			break;
		cache_heap_set(c, i, c->heap[child]);
		i = child;
	}
	cache_heap_set(c, i, e);
}

/* Restore heap order after the entry at i changed or was replaced. */
static void
cache_heap_fix(struct cache *c, size_t i)
{
	if (i > 0 && c->heap[i]->expires < c->heap[(i - 1) / 2]->expires)
		cache_heap_up(c, i);
	else
		cache_heap_down(c, i);
}

static void
cache_heap_insert(struct cache *c, struct cache_entry *e)
{
	if (c->heap_len == c->heap_cap) {
		c->heap_cap = c->heap_cap ? c->heap_cap * 2 : CACHE_MIN_HEAP;
		if (c->heap_cap > SIZE_MAX / sizeof(*c->heap))
			fatal_invariant("cache heap size overflow");
		c->heap = xrealloc(c->heap, c->heap_cap * sizeof(*c->heap));
	}
	cache_heap_set(c, c->heap_len, e);
	c->heap_len++;
	cache_heap_up(c, c->heap_len - 1);
}

static void
cache_heap_remove(struct cache *c, struct cache_entry *e)
{
	size_t i = e->heap_index;

	c->heap_len--;
	if (i == c->heap_len)
		return;
	cache_heap_set(c, i, c->heap[c->heap_len]);
	cache_heap_fix(c, i);
}

/*
 * Unlink e from every index and free the entry.  Returns its value, which
 * the caller now owns.
 */
static void *
cache_detach(struct cache *c, struct cache_entry *e)
{
	void *value = e->value;

	cache_bucket_unlink(c, e);
	cache_lru_unlink(c, e);
	cache_heap_remove(c, e);
	c->nentries--;
	c->nbytes -= e->bytes;
	free(e);
	return value;
}

static void
cache_discard_value(struct cache *c, void *value)
{
	if (c->free_value != NULL)
		c->free_value(value);
}

static void
cache_remove(struct cache *c, struct cache_entry *e)
{
	cache_discard_value(c, cache_detach(c, e));
}

static void
cache_drop_expired(struct cache *c, double now)
{
	while (c->heap_len > 0 && !(now < c->heap[0]->expires))
		cache_remove(c, c->heap[0]);
}

/*
 * Evict least recently used entries until extra_entries more entries,
 * counting extra_bytes in total, fit within both bounds.
 */
static void
cache_make_room(struct cache *c, size_t extra_entries, size_t extra_bytes)
{
	while (c->lru_tail != NULL &&
	    (c->nentries + extra_entries > c->max_entries ||
	    c->nbytes > c->max_bytes - extra_bytes))
		cache_remove(c, c->lru_tail);
}

/* Replace the value of an existing entry in place. */
static void
cache_replace(struct cache *c, struct cache_entry *e, void *value,
    size_t bytes, double now, double expires)
{
	if (e->value != value)
		cache_discard_value(c, e->value);
	e->value = value;
	c->nbytes = c->nbytes - e->bytes + bytes;
	e->bytes = bytes;
	e->expires = expires;
	cache_heap_fix(c, e->heap_index);
	cache_lru_unlink(c, e);
	cache_lru_push_head(c, e);
	cache_drop_expired(c, now);
	/* e is now the most recently used, so it goes last, and alone it fits. */
	cache_make_room(c, 0, 0);
}

static void
cache_insert(struct cache *c, const char *key, size_t key_len, uint64_t hash,
    void *value, size_t bytes, double now, double expires)
{
	struct cache_entry *e, **b;

	cache_drop_expired(c, now);
	cache_make_room(c, 1, bytes);
	e = xmalloc(sizeof(*e) + key_len + 1);
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, key_len + 1);
	e->key_len = key_len;
	e->hash = hash;
	e->value = value;
	e->bytes = bytes;
	e->expires = expires;

	b = cache_bucket(c, hash);
	e->bucket_next = *b;
	*b = e;
	cache_lru_push_head(c, e);
	c->nentries++;
	c->nbytes += bytes;
	cache_heap_insert(c, e);
	if (c->nentries > c->nbuckets / 4 * 3)
		cache_grow(c);
}

/*
 * Insert or replace key.  The value is freed at once, and any older
 * entry for key removed, when it could never be returned: ttl not
 * positive (or NaN), or the entry alone exceeds max_bytes or
 * max_entries is 0.  Expired entries go first when room is needed, then
 * the least recently used ones.
 */
void
cache_put(struct cache *c, const char *key, void *value, size_t size,
    double now, double ttl)
{
	size_t key_len = strlen(key), bytes;
	uint64_t hash = cache_hash(c, key, key_len);
	struct cache_entry *e = cache_find(c, key, key_len, hash);
	void *old;

	bytes = cache_entry_bytes(key_len, size);
	if (!(ttl > 0) || isnan(now) || bytes > c->max_bytes ||
	    c->max_entries == 0) {
		old = e != NULL ? cache_detach(c, e) : NULL;
		if (old != NULL && old != value)
			cache_discard_value(c, old);
		cache_discard_value(c, value);
		return;
	}
	if (e != NULL)
		cache_replace(c, e, value, bytes, now, now + ttl);
	else
		cache_insert(c, key, key_len, hash, value, bytes, now,
		    now + ttl);
}

/*
 * Return the live value for key and make it the most recently used, or
 * NULL.  An expired entry found here is removed.  *remaining, when not
 * NULL, receives the seconds left, or 0 with a NULL return.
 */
void *
cache_get(struct cache *c, const char *key, double now, double *remaining)
{
	size_t key_len = strlen(key);
	struct cache_entry *e;

	if (remaining != NULL)
		*remaining = 0;
	e = cache_find(c, key, key_len, cache_hash(c, key, key_len));
	if (e == NULL)
		return NULL;
	if (!(now < e->expires)) {
		cache_remove(c, e);
		return NULL;
	}
	cache_lru_unlink(c, e);
	cache_lru_push_head(c, e);
	if (remaining != NULL)
		*remaining = e->expires - now;
	return e->value;
}

/* Remove every entry whose expiry time is at or before now. */
void
cache_expire(struct cache *c, double now)
{
	cache_drop_expired(c, now);
}

size_t
cache_entries(const struct cache *c)
{
	return c->nentries;
}

size_t
cache_bytes(const struct cache *c)
{
	return c->nbytes;
}

/* Free every value, then the cache.  NULL is accepted. */
void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	while (c->lru_tail != NULL)
		cache_remove(c, c->lru_tail);
	free(c->heap);
	free(c->buckets);
	sodium_memzero(c->hash_key, sizeof(c->hash_key));
	free(c);
}
