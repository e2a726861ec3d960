/* tcache: a cache of verified tokens, so a token seen again skips base64, RSA
 * and the JSON parse (docs/security.md case A21;
 * docs/performance.md).
 *
 * One cache per worker thread: nothing here locks, and a cache must never be
 * touched by two threads at once. The id_user values it hands out are
 * reference counted atomically, so they may outlive the cache and cross threads.
 *
 * Only successful verifications may be put in. An entry is found only by the
 * exact token bytes (the whole token is compared, not just a hash or the
 * signature part: a valid signature can be replayed with another payload, and
 * base64 has look-alike spellings), only under the key generation it was
 * verified with (a rotation invalidates everything), and only while
 * exp > now. Memory is bounded by an entry count and by the bytes of stored
 * token copies; the least recently used entry is evicted first. */
#ifndef AG_TCACHE_H
#define AG_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"

typedef struct tc_cache tc_cache;

/* max_entries and max_bytes (sum of stored token lengths) must be > 0.
 * NULL on allocation failure or if the kernel gives no random seed. */
tc_cache *tc_new(size_t max_entries, size_t max_bytes);
void tc_free(tc_cache *c); /* NULL ok; drops the cache's user references */

/* A new reference to the cached user for exactly these token bytes, or NULL.
 * Expired entries and entries of another key generation are dropped here. */
id_user *tc_get(tc_cache *c, const char *tok, size_t len, uint64_t key_generation, int64_t now);

/* Remember a verified token; the cache takes its own reference on u. A token
 * larger than max_bytes is not stored. Failure to store is silent (it is a cache). */
void tc_put(tc_cache *c, const char *tok, size_t len, uint64_t key_generation, id_user *u);

void tc_stats(const tc_cache *c, uint64_t *hits, uint64_t *misses, size_t *entries);

#endif
