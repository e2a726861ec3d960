/* tcache: per-worker cache of verified tokens (see tcache.h for the contract).
 *
 * Layout: a fixed array of entries (allocated once, so the count bound is also
 * the memory bound for bookkeeping), a power-of-two bucket array of chains, and
 * an intrusive doubly linked LRU list, all linked by 32-bit indices. The bucket
 * is chosen by a seeded hash of the signature segment only, which is cheap and
 * as unpredictable as the signature; a hit is then confirmed by comparing the
 * whole stored token. */
#include "tcache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TC_NIL UINT32_MAX
#define TC_MAX_ENTRIES ((size_t)1 << 22)

typedef struct tc_entry {
    uint64_t hash;
    uint64_t gen;
    int64_t exp;
    char *tok;
    size_t len;
    id_user *user;
    uint32_t chain; /* next in bucket, or next free */
    uint32_t prev;  /* LRU neighbours; head is most recent */
    uint32_t next;
} tc_entry;

struct tc_cache {
    tc_entry *ents;
    uint32_t *buckets;
    size_t nbuckets; /* power of two */
    size_t max_entries;
    size_t max_bytes;
    size_t count;
    size_t bytes;
    uint32_t free_head;
    uint32_t lru_head;
    uint32_t lru_tail;
    uint64_t seed;
    uint64_t hits;
    uint64_t misses;
};

tc_cache *tc_new(size_t max_entries, size_t max_bytes)
{
    tc_cache *c = NULL;
    tc_cache *ret = NULL;

    if (max_entries == 0 || max_bytes == 0)
        goto out;
    if (max_entries > TC_MAX_ENTRIES)
        max_entries = TC_MAX_ENTRIES;
    c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->nbuckets = 16;
    while (c->nbuckets < max_entries)
        c->nbuckets *= 2;
    c->ents = calloc(max_entries, sizeof(*c->ents));
    c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
    if (!c->ents || !c->buckets)
        goto out;
    if (ag_random(&c->seed, sizeof(c->seed)) != 0)
        goto out;
    for (size_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = TC_NIL;
    for (size_t i = 0; i < max_entries; i++)
        c->ents[i].chain = i + 1 < max_entries ? (uint32_t)(i + 1) : TC_NIL;
    c->free_head = 0;
    c->lru_head = c->lru_tail = TC_NIL;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    ret = c;
    c = NULL;
out:
    if (c) {
        free(c->ents);
        free(c->buckets);
        free(c);
    }
    return ret;
}

/* Hash of the signature segment (after the last '.'); the whole token when
 * there is none, which never happens for a verified token. */
static uint64_t tok_hash(const tc_cache *c, const char *tok, size_t len)
{
    size_t i = len;
    while (i > 0 && tok[i - 1] != '.')
        i--;
    if (i == 0 || i == len)
        return ag_hash64(tok, len, c->seed);
    return ag_hash64(tok + i, len - i, c->seed);
}

static void lru_unlink(tc_cache *c, uint32_t i)
{
    tc_entry *e = &c->ents[i];
    if (e->prev != TC_NIL)
        c->ents[e->prev].next = e->next;
    else
        c->lru_head = e->next;
    if (e->next != TC_NIL)
        c->ents[e->next].prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = TC_NIL;
}

static void lru_push_front(tc_cache *c, uint32_t i)
{
    tc_entry *e = &c->ents[i];
    e->prev = TC_NIL;
    e->next = c->lru_head;
    if (c->lru_head != TC_NIL)
        c->ents[c->lru_head].prev = i;
    c->lru_head = i;
    if (c->lru_tail == TC_NIL)
        c->lru_tail = i;
}

static void entry_remove(tc_cache *c, uint32_t i)
{
    tc_entry *e = &c->ents[i];
    uint32_t *link = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*link != i)
        link = &c->ents[*link].chain;
    *link = e->chain;
    lru_unlink(c, i);
    /* The copy is a bearer credential: do not leave it in freed memory. */
    explicit_bzero(e->tok, e->len);
    free(e->tok);
    id_user_unref(e->user);
    c->bytes -= e->len;
    c->count--;
    memset(e, 0, sizeof(*e));
    e->chain = c->free_head;
    c->free_head = i;
}

static uint32_t entry_find(const tc_cache *c, uint64_t h, const char *tok, size_t len)
{
    uint32_t i = c->buckets[h & (c->nbuckets - 1)];
    while (i != TC_NIL) {
        const tc_entry *e = &c->ents[i];
        if (e->hash == h && e->len == len && memcmp(e->tok, tok, len) == 0)
            return i;
        i = e->chain;
    }
    return TC_NIL;
}

id_user *tc_get(tc_cache *c, const char *tok, size_t len, uint64_t key_generation, int64_t now)
{
    if (!c || !tok || len == 0)
        return NULL;
    uint64_t h = tok_hash(c, tok, len);
    uint32_t i = entry_find(c, h, tok, len);
    if (i == TC_NIL) {
        c->misses++;
        return NULL;
    }
    tc_entry *e = &c->ents[i];
    /* Expire at exp itself, without the verifier's leeway: never more lenient
     * than verification, and a token near its end just gets verified again. */
    if (e->gen != key_generation || e->exp <= now) {
        entry_remove(c, i);
        c->misses++;
        return NULL;
    }
    lru_unlink(c, i);
    lru_push_front(c, i);
    c->hits++;
    return id_user_ref(e->user);
}

void tc_put(tc_cache *c, const char *tok, size_t len, uint64_t key_generation, id_user *u)
{
    if (!c || !tok || !u || len == 0 || len > c->max_bytes)
        return;
    uint64_t h = tok_hash(c, tok, len);
    uint32_t i = entry_find(c, h, tok, len);
    if (i != TC_NIL) {
        tc_entry *e = &c->ents[i];
        id_user *old = e->user;
        e->user = id_user_ref(u);
        id_user_unref(old);
        e->gen = key_generation;
        e->exp = id_user_exp(u);
        lru_unlink(c, i);
        lru_push_front(c, i);
        return;
    }
    char *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, tok, len);
    while (c->lru_tail != TC_NIL && (c->count >= c->max_entries || c->bytes + len > c->max_bytes))
        entry_remove(c, c->lru_tail);
    i = c->free_head;
    tc_entry *e = &c->ents[i];
    c->free_head = e->chain;
    e->hash = h;
    e->gen = key_generation;
    e->exp = id_user_exp(u);
    e->tok = copy;
    e->len = len;
    e->user = id_user_ref(u);
    uint32_t *b = &c->buckets[h & (c->nbuckets - 1)];
    e->chain = *b;
    *b = i;
    lru_push_front(c, i);
    c->count++;
    c->bytes += len;
}

void tc_stats(const tc_cache *c, uint64_t *hits, uint64_t *misses, size_t *entries)
{
    if (hits)
        *hits = c ? c->hits : 0;
    if (misses)
        *misses = c ? c->misses : 0;
    if (entries)
        *entries = c ? c->count : 0;
}

void tc_free(tc_cache *c)
{
    if (!c)
        return;
    while (c->lru_tail != TC_NIL)
        entry_remove(c, c->lru_tail);
    free(c->ents);
    free(c->buckets);
    free(c);
}
