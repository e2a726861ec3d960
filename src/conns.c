/* conns: see conns.h. One mutex: taken once per accept and once per close,
 * never per request. Per-address counts live in an open-addressing table that
 * grows; entries whose count drops to zero become tombstones reused later. */
#include "conns.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct ip_key {
    uint8_t fam; /* 0 = empty slot */
    uint8_t addr[16];
} ip_key;

typedef struct ip_ent {
    ip_key k;
    size_t n;
} ip_ent;

struct cn_budget {
    pthread_mutex_t mu;
    size_t max_total, max_per_ip;
    size_t open;
    ip_ent *tab;
    size_t cap, used; /* used: slots ever filled (live or tombstone) */
};

cn_budget *cn_new(size_t max_total, size_t max_per_ip)
{
    cn_budget *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->max_total = max_total ? max_total : SIZE_MAX;
    b->max_per_ip = max_per_ip;
    return b;
}

void cn_free(cn_budget *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->tab);
    free(b);
}

static bool key_of(const struct sockaddr *sa, ip_key *k)
{
    memset(k, 0, sizeof(*k));
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        k->fam = 4;
        memcpy(k->addr, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        k->fam = 6;
        memcpy(k->addr, &in6->sin6_addr, 16);
        return true;
    }
    return false;
}

/* The slot for k: its entry, or the first free one on its probe path. */
static ip_ent *find(cn_budget *b, const ip_key *k)
{
    size_t mask = b->cap - 1;
    size_t i = (size_t)ag_hash64(k, sizeof(*k), 0x5eed) & mask;
    ip_ent *spare = NULL;
    for (size_t probes = 0; probes < b->cap; probes++, i = (i + 1) & mask) {
        ip_ent *e = &b->tab[i];
        if (e->k.fam == 0)
            return spare ? spare : e;
        if (memcmp(&e->k, k, sizeof(*k)) == 0)
            return e;
        if (e->n == 0 && !spare)
            spare = e;
    }
    return spare;
}

static int grow(cn_budget *b)
{
    size_t ncap = b->cap ? b->cap * 2 : 64;
    ip_ent *old = b->tab;
    size_t ocap = b->cap;
    ip_ent *nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return -1;
    b->tab = nt;
    b->cap = ncap;
    b->used = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].k.fam == 0 || old[i].n == 0)
            continue; /* tombstones are dropped */
        ip_ent *e = find(b, &old[i].k);
        *e = old[i];
        b->used++;
    }
    free(old);
    return 0;
}

bool cn_has_room(cn_budget *b)
{
    pthread_mutex_lock(&b->mu);
    bool room = b->open < b->max_total;
    pthread_mutex_unlock(&b->mu);
    return room;
}

cn_verdict cn_take(cn_budget *b, const struct sockaddr *sa)
{
    cn_verdict v = CN_FULL;
    ip_key k;
    pthread_mutex_lock(&b->mu);
    if (b->open >= b->max_total)
        goto out;
    if (b->max_per_ip && key_of(sa, &k)) {
        if ((b->used + 1) * 2 > b->cap && grow(b) != 0)
            goto out; /* no memory: refuse rather than count wrong */
        ip_ent *e = find(b, &k);
        if (!e)
            goto out;
        if (e->k.fam != 0 && e->n >= b->max_per_ip) {
            v = CN_PER_IP;
            goto out;
        }
        if (e->k.fam == 0) {
            b->used++;
            e->k = k;
        } else if (e->n == 0 && memcmp(&e->k, &k, sizeof(k)) != 0) {
            e->k = k; /* a tombstone taken over */
        }
        e->n++;
    }
    b->open++;
    v = CN_TAKEN;
out:
    pthread_mutex_unlock(&b->mu);
    return v;
}

bool cn_release(cn_budget *b, const struct sockaddr *sa)
{
    ip_key k;
    pthread_mutex_lock(&b->mu);
    bool was_full = b->open >= b->max_total;
    if (b->open > 0)
        b->open--;
    if (b->max_per_ip && b->cap && key_of(sa, &k)) {
        ip_ent *e = find(b, &k);
        if (e && e->k.fam != 0 && memcmp(&e->k, &k, sizeof(k)) == 0 && e->n > 0)
            e->n--;
    }
    pthread_mutex_unlock(&b->mu);
    return was_full;
}

size_t cn_open(cn_budget *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->open;
    pthread_mutex_unlock(&b->mu);
    return n;
}
