/*
 * Random numbers for identifiers: session ids, DNS query ids and the
 * MX tie-break.  They come from libsodium's generator through a small
 * per-process pool, so that a message costs no getrandom() call of its
 * own.  A child made with fork() discards the pool it inherited, so no
 * two processes hand out the same bytes.  Keys come from libsodium
 * directly, not from this pool.
 */
#ifndef UTIL_RANDOM_H
#define UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

void		 random_buf(void *, size_t);
uint32_t	 random_u32(void);
/* A uniform value below upper_bound, or 0 when upper_bound < 2. */
uint32_t	 random_uniform(uint32_t upper_bound);

#endif
