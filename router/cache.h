/*
 * A TTL cache from string keys to opaque values, bounded both in entries
 * and in bytes, with least-recently-used eviction.  Not thread-safe: each
 * worker process has its own.
 */
#ifndef ROUTER_CACHE_H
#define ROUTER_CACHE_H

#include <stddef.h>

struct cache;

/* Frees a value when it is replaced, expires or is evicted. */
typedef void cache_free_fn(void *value);

struct cache	*cache_new(size_t max_entries, size_t max_bytes,
		    cache_free_fn *);
void		 cache_free(struct cache *);

/*
 * Insert or replace key with value, valid until now + ttl seconds.
 * size is the caller's estimate of the bytes the value uses.  The cache
 * owns value from now on, and frees it at once when ttl is not positive
 * or the entry alone exceeds max_bytes.
 */
void		 cache_put(struct cache *, const char *key, void *value,
		    size_t size, double now, double ttl);
/*
 * Return the value for key, or NULL if absent or expired, and mark the
 * entry most recently used.  *remaining is set to the seconds left when
 * non-NULL.  The value stays owned by the
 * cache and is valid until the next cache_put() or cache_expire().
 */
void		*cache_get(struct cache *, const char *key, double now,
		    double *remaining);
void		 cache_expire(struct cache *, double now);
size_t		 cache_entries(const struct cache *);
/* Sum of cache_entry_bytes() over the entries stored. */
size_t		 cache_bytes(const struct cache *);
/*
 * Bytes one entry counts against max_bytes: the key with its NUL, size,
 * and the fixed per-entry overhead.  SIZE_MAX if the sum overflows.
 */
size_t		 cache_entry_bytes(size_t key_len, size_t size);

#endif
