#include "metrics.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tun.h"

/* Label strings longer than this are cut: they come from configuration, and a
 * scrape must stay small whatever an operator names a route. */
#define MET_LABEL_MAX 128

/* Per-shard series tables. The slot count stays at about twice the series cap
 * so linear probing stays short even when the table is full. */
#define REQ_SLOTS 8192
#define REQ_MAX_SERIES 4096
#define REQ_OTHER_RESERVE 256 /* extra room for route="other" series */
#define UPE_SLOTS 512
#define UPE_MAX_SERIES 256

/* Latency buckets (seconds): sub-millisecond for cached decisions, up to the
 * slowest upstream anyone should tolerate. */
static const double k_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const char *const k_bound_txt[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                          "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                          "1",      "2.5",   "5",      "10"};
#define NBUCKETS (sizeof(k_bounds) / sizeof(k_bounds[0]))

/* Histogram label values are a closed set so the series count is fixed. */
static const char *const k_decisions[] = {"allow", "deny", "reject", "error", "aborted", "other"};
#define NDEC (sizeof(k_decisions) / sizeof(k_decisions[0]))
#define DEC_OTHER (NDEC - 1)

typedef struct mkey {
    const char *s[3];
    size_t len[3];
    int num;
    uint64_t hash;
} mkey;

/* A labelled counter. Immutable after publication except for count, so a
 * reader that acquire-loads the slot pointer sees complete strings. */
typedef struct mseries {
    _Atomic uint64_t count;
    uint64_t hash;
    int num;
    size_t len[3];
    const char *s[3];
    char data[]; /* the three strings, each NUL-terminated */
} mseries;

typedef struct mtable {
    _Atomic(mseries *) *slots;
    size_t mask;
    atomic_size_t n; /* series inserted (or being inserted) */
} mtable;

typedef struct mhist {
    _Atomic uint64_t b[NBUCKETS + 1]; /* non-cumulative; the last is > 10 s */
    _Atomic uint64_t sum_ns;
} mhist;

/* One per worker (plus one shared). Aligned so two workers never write the
 * same cache line. */
typedef struct mshard {
    alignas(64) mtable req;
    mtable upe;
    mseries *req_other; /* catch-all once even the reserve is used */
    mseries *upe_other;
    mhist req_dur[NDEC];
    mhist up_dur;
    _Atomic uint64_t cache_hit, cache_miss;
    _Atomic int64_t conns;
} mshard;

static _Atomic(mshard *) g_shards;
static int g_nshards;
static _Atomic uint64_t g_reload_ok, g_reload_err;

static size_t label_len(const char *s)
{
    return s ? strnlen(s, MET_LABEL_MAX) : 0;
}

static void key_set(mkey *k, const char *a, const char *b, const char *c, int num)
{
    const char *v[3] = {a, b, c};
    uint64_t h = 0x6d65747269637321ULL ^ (uint64_t)(uint32_t)num;
    for (int i = 0; i < 3; i++) {
        k->s[i] = v[i] ? v[i] : "";
        k->len[i] = label_len(k->s[i]);
        /* Mixing the length keeps ("ab","c") and ("a","bc") apart. */
        h = ag_hash64(k->s[i], k->len[i], h + k->len[i]);
    }
    k->num = num;
    k->hash = h;
}

static bool series_eq(const mseries *s, const mkey *k)
{
    if (s->hash != k->hash || s->num != k->num)
        return false;
    for (int i = 0; i < 3; i++)
        if (s->len[i] != k->len[i] || memcmp(s->s[i], k->s[i], k->len[i]) != 0)
            return false;
    return true;
}

static mseries *series_new(const mkey *k)
{
    size_t total = k->len[0] + k->len[1] + k->len[2] + 3;
    mseries *s = malloc(sizeof(*s) + total);
    if (!s)
        return NULL;
    atomic_init(&s->count, 0);
    s->hash = k->hash;
    s->num = k->num;
    char *p = s->data;
    for (int i = 0; i < 3; i++) {
        memcpy(p, k->s[i], k->len[i]);
        p[k->len[i]] = '\0';
        s->s[i] = p;
        s->len[i] = k->len[i];
        p += k->len[i] + 1;
    }
    return s;
}

static int table_init(mtable *t, size_t slots)
{
    t->slots = calloc(slots, sizeof(*t->slots));
    if (!t->slots)
        return -1;
    for (size_t i = 0; i < slots; i++)
        atomic_init(&t->slots[i], NULL);
    t->mask = slots - 1;
    atomic_init(&t->n, 0);
    return 0;
}

static void table_free(mtable *t)
{
    if (!t->slots)
        return;
    for (size_t i = 0; i <= t->mask; i++)
        free(atomic_load_explicit(&t->slots[i], memory_order_relaxed));
    free(t->slots);
    t->slots = NULL;
}

/* Finds the series for k, inserting it while fewer than limit series exist;
 * NULL when the table is full (or out of memory). Slots are published with a
 * compare-and-swap, so this is safe even if two threads share a shard; in the
 * normal case only the owner writes and the CAS never fails. Linear probing
 * without deletion means an empty slot proves k is absent. */
static mseries *table_get(mtable *t, const mkey *k, size_t limit)
{
    mseries *fresh = NULL;
    mseries *found = NULL;
    bool reserved = false;
    size_t i = (size_t)k->hash & t->mask;
    for (size_t probes = 0; probes <= t->mask; probes++, i = (i + 1) & t->mask) {
        mseries *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (!s) {
            if (!fresh) {
                reserved = true;
                if (atomic_fetch_add_explicit(&t->n, 1, memory_order_relaxed) >= limit)
                    goto out;
                fresh = series_new(k);
                if (!fresh)
                    goto out;
            }
            mseries *expected = NULL;
            if (atomic_compare_exchange_strong_explicit(
                    &t->slots[i], &expected, fresh, memory_order_release, memory_order_acquire)) {
                found = fresh;
                fresh = NULL;
                reserved = false; /* the reservation is now a real series */
                goto out;
            }
            s = expected;
        }
        if (series_eq(s, k)) {
            found = s;
            goto out;
        }
    }
out:
    /* A reservation that did not become a series must not eat capacity. */
    if (reserved)
        atomic_fetch_sub_explicit(&t->n, 1, memory_order_relaxed);
    free(fresh);
    return found;
}

static inline void ctr_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t ctr_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void hist_observe(mhist *h, double v)
{
    if (!(v >= 0)) /* negative or NaN: a clock oddity, count it as instant */
        v = 0;
    size_t i = 0;
    while (i < NBUCKETS && v > k_bounds[i])
        i++;
    ctr_add(&h->b[i], 1);
    /* Cap one observation at ~11 days so the nanosecond sum cannot wrap. */
    ctr_add(&h->sum_ns, v < 1e6 ? (uint64_t)(v * 1e9) : (uint64_t)1e15);
}

static mshard *shard_for(int idx)
{
    mshard *sh = atomic_load_explicit(&g_shards, memory_order_acquire);
    if (!sh)
        return NULL;
    /* An out-of-range index lands on the shared shard rather than nowhere. */
    if (idx < 0 || idx >= g_nshards)
        idx = g_nshards - 1;
    return &sh[idx];
}

static void shards_free(mshard *sh, int n)
{
    if (!sh)
        return;
    for (int i = 0; i < n; i++) {
        table_free(&sh[i].req);
        table_free(&sh[i].upe);
        free(sh[i].req_other);
        free(sh[i].upe_other);
    }
    free(sh);
}

int met_init(int nshards)
{
    int rc = -1;
    mshard *sh = NULL;
    if (nshards < 1 || nshards > 4096 || atomic_load(&g_shards) != NULL)
        goto out;
    sh = aligned_alloc(alignof(mshard), sizeof(mshard) * (size_t)nshards);
    if (!sh)
        goto out;
    memset(sh, 0, sizeof(mshard) * (size_t)nshards);
    for (int i = 0; i < nshards; i++) {
        mshard *s = &sh[i];
        mkey k;
        if (table_init(&s->req, REQ_SLOTS) != 0 || table_init(&s->upe, UPE_SLOTS) != 0)
            goto out;
        /* status -1 marks the catch-all; real statuses are clamped to 0..999. */
        key_set(&k, "other", "other", "other", -1);
        s->req_other = series_new(&k);
        key_set(&k, "other", "other", "", 0);
        s->upe_other = series_new(&k);
        if (!s->req_other || !s->upe_other)
            goto out;
    }
    g_nshards = nshards;
    atomic_store(&g_reload_ok, 0);
    atomic_store(&g_reload_err, 0);
    atomic_store_explicit(&g_shards, sh, memory_order_release);
    sh = NULL;
    rc = 0;
out:
    /* Shards were zeroed first, so half-built ones free cleanly. */
    shards_free(sh, nshards);
    return rc;
}

void met_shutdown(void)
{
    mshard *sh = atomic_exchange(&g_shards, NULL);
    shards_free(sh, g_nshards);
    g_nshards = 0;
}

static size_t decision_index(const char *d)
{
    for (size_t i = 0; d && i < DEC_OTHER; i++)
        if (strcmp(d, k_decisions[i]) == 0)
            return i;
    return DEC_OTHER;
}

static const char *or_none(const char *s)
{
    return s && *s ? s : "none";
}

/* A forward-auth decision's series: the status with this bit set (never a
 * status, so the two modes never share a series); rendered as the status and
 * mode="forward_auth". Proxy series carry no mode label, as before. */
#define MODE_FA_BIT (1 << 16)

static void request_add(int shard, const char *route, int status, int mode_bit,
                        const char *decision, const char *reason, double duration_s,
                        double upstream_s);

void met_request(int shard, const char *route, int status, const char *decision, const char *reason,
                 double duration_s, double upstream_s)
{
    request_add(shard, route, status, 0, decision, reason, duration_s, upstream_s);
}

void met_request_forward_auth(int shard, const char *route, int status, const char *decision,
                              const char *reason, double duration_s)
{
    request_add(shard, route, status, MODE_FA_BIT, decision, reason, duration_s, -1.0);
}

static void request_add(int shard, const char *route, int status, int mode_bit,
                        const char *decision, const char *reason, double duration_s,
                        double upstream_s)
{
    mshard *sh = shard_for(shard);
    if (!sh)
        return;
    if (status < 0 || status > 999)
        status = 0;
    status |= mode_bit;
    size_t di = decision_index(decision);
    const char *dec = k_decisions[di];
    mkey k;
    key_set(&k, or_none(route), dec, or_none(reason), status);
    mseries *s = table_get(&sh->req, &k, REQ_MAX_SERIES);
    if (!s) {
        key_set(&k, "other", dec, or_none(reason), status);
        s = table_get(&sh->req, &k, REQ_MAX_SERIES + REQ_OTHER_RESERVE);
    }
    if (!s)
        s = sh->req_other;
    ctr_add(&s->count, 1);
    hist_observe(&sh->req_dur[di], duration_s);
    if (upstream_s >= 0)
        hist_observe(&sh->up_dur, upstream_s);
}

void met_upstream_error(int shard, const char *upstream, const char *reason)
{
    mshard *sh = shard_for(shard);
    if (!sh)
        return;
    mkey k;
    key_set(&k, or_none(upstream), or_none(reason), "", 0);
    mseries *s = table_get(&sh->upe, &k, UPE_MAX_SERIES);
    ctr_add(&(s ? s : sh->upe_other)->count, 1);
}

void met_cache(int shard, bool hit)
{
    mshard *sh = shard_for(shard);
    if (sh)
        ctr_add(hit ? &sh->cache_hit : &sh->cache_miss, 1);
}

void met_connections(int shard, int delta)
{
    mshard *sh = shard_for(shard);
    if (sh)
        atomic_fetch_add_explicit(&sh->conns, delta, memory_order_relaxed);
}

/* Tunnels are few and long-lived: process-wide counters are enough. */
static _Atomic int64_t g_tun_open;
static _Atomic uint64_t g_tun_up, g_tun_down, g_tun_closed[TUN_CAUSE__COUNT];

void met_tunnel_opened(void)
{
    atomic_fetch_add_explicit(&g_tun_open, 1, memory_order_relaxed);
}

void met_tunnel_closed(int cause, uint64_t bytes_up, uint64_t bytes_down)
{
    if (cause < 0 || cause >= TUN_CAUSE__COUNT)
        cause = TUN_CAUSE_UNSET;
    atomic_fetch_sub_explicit(&g_tun_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_tun_up, bytes_up, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_tun_down, bytes_down, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_tun_closed[cause], 1, memory_order_relaxed);
}

static int put_family(ag_buf *b, const char *name, const char *type, const char *help);

static int render_tunnels(ag_buf *out)
{
    int64_t open = atomic_load_explicit(&g_tun_open, memory_order_relaxed);
    int rc = put_family(out, "authgate_tunnels_open", "gauge", "WebSocket tunnels currently open.");
    rc |= ag_buf_printf(out, "authgate_tunnels_open %" PRId64 "\n", open < 0 ? 0 : open);
    rc |= put_family(out, "authgate_tunnel_bytes_total", "counter",
                     "Bytes relayed through tunnels, by direction, counted at close.");
    rc |= ag_buf_printf(out, "authgate_tunnel_bytes_total{direction=\"up\"} %" PRIu64 "\n",
                        atomic_load_explicit(&g_tun_up, memory_order_relaxed));
    rc |= ag_buf_printf(out, "authgate_tunnel_bytes_total{direction=\"down\"} %" PRIu64 "\n",
                        atomic_load_explicit(&g_tun_down, memory_order_relaxed));
    rc |= put_family(out, "authgate_tunnel_closes_total", "counter", "Tunnels closed, by cause.");
    for (int c = 1; c < TUN_CAUSE__COUNT; c++)
        rc |= ag_buf_printf(out, "authgate_tunnel_closes_total{cause=\"%s\"} %" PRIu64 "\n",
                            tun_cause_name((tun_cause)c),
                            atomic_load_explicit(&g_tun_closed[c], memory_order_relaxed));
    return rc;
}

void met_reload(bool ok)
{
    ctr_add(ok ? &g_reload_ok : &g_reload_err, 1);
}

/* ---- rendering ---- */

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes are not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    size_t n;
    uint32_t c, min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        n = 2, c = s[0] & 0x1Fu, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3, c = s[0] & 0x0Fu, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4, c = s[0] & 0x07u, min = 0x10000;
    else
        return 0;
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

/* A label value per the text format: backslash, quote and newline escaped.
 * The format requires UTF-8, so invalid bytes become '?'; other control
 * characters also become '?' because some scrapers split on them. */
static int put_label(ag_buf *b, const char *name, const char *s, size_t len, bool first)
{
    const unsigned char *u = (const unsigned char *)s;
    int rc = ag_buf_printf(b, "%s%s=\"", first ? "" : ",", name);
    for (size_t i = 0; i < len && rc == 0;) {
        unsigned char c = u[i];
        size_t n = 1;
        if (c == '\\')
            rc = ag_buf_append(b, "\\\\", 2);
        else if (c == '"')
            rc = ag_buf_append(b, "\\\"", 2);
        else if (c == '\n')
            rc = ag_buf_append(b, "\\n", 2);
        else if (c < 0x20 || c == 0x7f)
            rc = ag_buf_append(b, "?", 1);
        else if (c < 0x80)
            rc = ag_buf_append(b, s + i, 1);
        else if ((n = utf8_seq(u + i, len - i)) == 0) {
            n = 1;
            rc = ag_buf_append(b, "?", 1);
        } else
            rc = ag_buf_append(b, s + i, n);
        i += n;
    }
    return rc | ag_buf_append(b, "\"", 1);
}

static int put_label_str(ag_buf *b, const char *name, const char *s, bool first)
{
    return put_label(b, name, s ? s : "", label_len(s), first);
}

static int put_family(ag_buf *b, const char *name, const char *type, const char *help)
{
    return ag_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct msample {
    const mseries *s;
    uint64_t count;
} msample;

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Order: first label, number (status), then the other two labels. */
static int cmp_sample(const void *pa, const void *pb)
{
    const mseries *a = ((const msample *)pa)->s, *b = ((const msample *)pb)->s;
    int c = cmp_bytes(a->s[0], a->len[0], b->s[0], b->len[0]);
    if (c == 0)
        c = a->num < b->num ? -1 : a->num > b->num ? 1 : 0;
    for (int i = 1; c == 0 && i < 3; i++)
        c = cmp_bytes(a->s[i], a->len[i], b->s[i], b->len[i]);
    return c;
}

/* Gathers every series of one table kind across shards, sorted, with equal
 * label sets (one per shard that saw them) summed into the first. Returns the
 * number of distinct samples, or -1 on allocation failure. */
static long collect(mshard *sh, int nsh, bool upe, msample **out)
{
    size_t cap = 0, n = 0;
    for (int i = 0; i < nsh; i++) {
        mtable *t = upe ? &sh[i].upe : &sh[i].req;
        cap += t->mask + 2; /* every slot plus the catch-all */
    }
    msample *v = malloc(cap * sizeof(*v));
    if (!v)
        return -1;
    for (int i = 0; i < nsh; i++) {
        mtable *t = upe ? &sh[i].upe : &sh[i].req;
        for (size_t j = 0; j <= t->mask; j++) {
            mseries *s = atomic_load_explicit(&t->slots[j], memory_order_acquire);
            if (s)
                v[n++] = (msample){s, ctr_get(&s->count)};
        }
        mseries *o = upe ? sh[i].upe_other : sh[i].req_other;
        uint64_t oc = ctr_get(&o->count);
        if (oc > 0)
            v[n++] = (msample){o, oc};
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_sample);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && cmp_sample(&v[m - 1], &v[i]) == 0)
            v[m - 1].count += v[i].count;
        else
            v[m++] = v[i];
    }
    *out = v;
    return (long)m;
}

static int render_requests(ag_buf *b, mshard *sh, int nsh)
{
    msample *v = NULL;
    int rc = put_family(b, "authgate_requests_total", "counter",
                        "Finished requests by route template, status, decision and reason.");
    long n = sh ? collect(sh, nsh, false, &v) : 0;
    if (n < 0)
        return -1;
    for (long i = 0; i < n && rc == 0; i++) {
        const mseries *s = v[i].s;
        rc |= ag_buf_puts(b, "authgate_requests_total{");
        rc |= put_label(b, "route", s->s[0], s->len[0], true);
        if (s->num < 0)
            rc |= ag_buf_puts(b, ",status=\"other\"");
        else
            rc |= ag_buf_printf(b, ",status=\"%d\"", s->num & ~MODE_FA_BIT);
        rc |= put_label(b, "decision", s->s[1], s->len[1], false);
        rc |= put_label(b, "reason", s->s[2], s->len[2], false);
        if (s->num >= 0 && (s->num & MODE_FA_BIT))
            rc |= ag_buf_puts(b, ",mode=\"forward_auth\"");
        rc |= ag_buf_printf(b, "} %" PRIu64 "\n", v[i].count);
    }
    free(v);
    return rc;
}

static int render_upstream_errors(ag_buf *b, mshard *sh, int nsh)
{
    msample *v = NULL;
    int rc = put_family(b, "authgate_upstream_errors_total", "counter",
                        "Failed upstream exchanges by upstream name and reason.");
    long n = sh ? collect(sh, nsh, true, &v) : 0;
    if (n < 0)
        return -1;
    for (long i = 0; i < n && rc == 0; i++) {
        const mseries *s = v[i].s;
        rc |= ag_buf_puts(b, "authgate_upstream_errors_total{");
        rc |= put_label(b, "upstream", s->s[0], s->len[0], true);
        rc |= put_label(b, "reason", s->s[1], s->len[1], false);
        rc |= ag_buf_printf(b, "} %" PRIu64 "\n", v[i].count);
    }
    free(v);
    return rc;
}

/* One histogram series; label is NULL for the unlabelled one. Buckets are
 * summed over shards first, and _count is derived from them, so le="+Inf"
 * always equals _count even while workers keep recording. */
static int render_hist(ag_buf *b, const char *name, const char *label, const char *value,
                       mshard *sh, int nsh, size_t di, bool always)
{
    uint64_t bk[NBUCKETS + 1] = {0}, sum_ns = 0, total = 0;
    for (int i = 0; sh && i < nsh; i++) {
        mhist *h = di == NDEC ? &sh[i].up_dur : &sh[i].req_dur[di];
        for (size_t j = 0; j <= NBUCKETS; j++)
            bk[j] += ctr_get(&h->b[j]);
        sum_ns += ctr_get(&h->sum_ns);
    }
    for (size_t j = 0; j <= NBUCKETS; j++)
        total += bk[j];
    if (total == 0 && !always)
        return 0;
    char lab[64] = "";
    if (label)
        snprintf(lab, sizeof(lab), "%s=\"%s\",", label, value);
    int rc = 0;
    uint64_t cum = 0;
    for (size_t j = 0; j < NBUCKETS; j++) {
        cum += bk[j];
        rc |= ag_buf_printf(b, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, lab, k_bound_txt[j],
                            cum);
    }
    rc |= ag_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, lab, total);
    if (label)
        snprintf(lab, sizeof(lab), "{%s=\"%s\"}", label, value);
    rc |= ag_buf_printf(b, "%s_sum%s %.9g\n", name, lab, (double)sum_ns / 1e9);
    rc |= ag_buf_printf(b, "%s_count%s %" PRIu64 "\n", name, lab, total);
    return rc;
}

int met_render(ag_buf *out, const met_gauges *g)
{
    int rc = 0;
    mshard *sh = atomic_load_explicit(&g_shards, memory_order_acquire);
    int nsh = sh ? g_nshards : 0;

    if (g) {
        rc |= put_family(out, "authgate_build_info", "gauge",
                         "Always 1; labels carry the version and the loaded policy hash.");
        rc |= ag_buf_puts(out, "authgate_build_info{");
        rc |= put_label_str(out, "version", g->version ? g->version : "unknown", true);
        rc |= put_label_str(out, "policy_hash", g->policy_hash, false);
        rc |= ag_buf_puts(out, "} 1\n");
    }

    rc |= render_requests(out, sh, nsh);

    rc |= put_family(out, "authgate_request_duration_seconds", "histogram",
                     "Whole-request latency, from request line to response completion.");
    for (size_t d = 0; d < NDEC; d++)
        rc |= render_hist(out, "authgate_request_duration_seconds", "decision", k_decisions[d], sh,
                          nsh, d, d != DEC_OTHER);

    rc |= put_family(out, "authgate_upstream_duration_seconds", "histogram",
                     "Upstream part of proxied requests (until response headers).");
    rc |= render_hist(out, "authgate_upstream_duration_seconds", NULL, NULL, sh, nsh, NDEC, true);

    rc |= render_upstream_errors(out, sh, nsh);

    uint64_t hits = 0, misses = 0;
    int64_t conns = 0;
    for (int i = 0; i < nsh; i++) {
        hits += ctr_get(&sh[i].cache_hit);
        misses += ctr_get(&sh[i].cache_miss);
        conns += atomic_load_explicit(&sh[i].conns, memory_order_relaxed);
    }
    rc |= put_family(out, "authgate_token_cache_hits_total", "counter",
                     "Token verifications answered from the verified-token cache.");
    rc |= ag_buf_printf(out, "authgate_token_cache_hits_total %" PRIu64 "\n", hits);
    rc |= put_family(out, "authgate_token_cache_misses_total", "counter",
                     "Token verifications that had to check the signature.");
    rc |= ag_buf_printf(out, "authgate_token_cache_misses_total %" PRIu64 "\n", misses);
    rc |= put_family(out, "authgate_open_connections", "gauge",
                     "Client connections currently open on the public listener.");
    rc |= ag_buf_printf(out, "authgate_open_connections %" PRId64 "\n", conns < 0 ? 0 : conns);
    rc |= render_tunnels(out);

    rc |= put_family(out, "authgate_reloads_total", "counter",
                     "Policy reloads by result; on error the previous policy stays active.");
    rc |= ag_buf_printf(out, "authgate_reloads_total{result=\"ok\"} %" PRIu64 "\n",
                        ctr_get(&g_reload_ok));
    rc |= ag_buf_printf(out, "authgate_reloads_total{result=\"error\"} %" PRIu64 "\n",
                        ctr_get(&g_reload_err));

    if (g) {
        rc |= put_family(out, "authgate_keys_ready", "gauge",
                         "1 when a verification key is loaded and usable.");
        rc |= ag_buf_printf(out, "authgate_keys_ready %d\n", g->keys_ready ? 1 : 0);
        rc |= put_family(out, "authgate_key_age_seconds", "gauge",
                         "Seconds since the verification key was last (re)loaded.");
        if (g->key_loaded_at > 0) {
            int64_t age = ag_now_wall() - g->key_loaded_at;
            rc |= ag_buf_printf(out, "authgate_key_age_seconds %" PRId64 "\n", age < 0 ? 0 : age);
        }
        rc |= put_family(out, "authgate_key_refresh_total", "counter",
                         "Key (re)load attempts by result.");
        rc |= ag_buf_printf(out, "authgate_key_refresh_total{result=\"ok\"} %" PRIu64 "\n",
                            g->key_refresh_ok);
        rc |= ag_buf_printf(out, "authgate_key_refresh_total{result=\"error\"} %" PRIu64 "\n",
                            g->key_refresh_failures);
        rc |= put_family(out, "authgate_policy_loaded_timestamp_seconds", "gauge",
                         "Unix time the active policy was loaded.");
        if (g->policy_loaded_at > 0)
            rc |= ag_buf_printf(out, "authgate_policy_loaded_timestamp_seconds %" PRId64 "\n",
                                g->policy_loaded_at);
    }
    return rc == 0 ? 0 : -1;
}
