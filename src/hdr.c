/* hdr: see hdr.h. The table is the only list of judged names; the index over
 * it is built once (pthread_once) so a lookup is one pass over the name plus
 * a probe or two. */
#include "hdr.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

typedef struct row {
    const char *name; /* canonical, lower case; a trailing '-' makes it a prefix */
    unsigned flags;
} row;

#define FWD_GW (HDR_F_FORWARDED | HDR_F_GW_SET)

/* Forwarded class: every header a common backend or framework reads as the
 * client's address, scheme, host, port or original URL. The first group is
 * what the gateway stripped before this table existed; the second group is
 * the same class by judgement (Symfony, Rails/Rack, Django, Spring, IIS URL
 * Rewrite, nginx realip, Envoy, Cloudflare, Akamai, Fastly and similar
 * frameworks read them), stripped for the same reason: a client copy fakes
 * the peer or re-routes the request behind the gateway. */
static const row rows[] = {
    /* hop-by-hop (RFC 9110 7.6.1, RFC 9113 8.2.2) */
    {"connection", HDR_F_HOP},
    {"keep-alive", HDR_F_HOP},
    {"proxy-connection", HDR_F_HOP},
    {"proxy-authenticate", HDR_F_HOP},
    {"proxy-authorization", HDR_F_HOP},
    {"te", HDR_F_HOP},
    {"trailer", HDR_F_HOP},
    {"trailers", HDR_F_HOP},
    {"transfer-encoding", HDR_F_HOP | HDR_F_FRAMING},
    {"upgrade", HDR_F_HOP},
    {"http2-settings", HDR_F_HOP},
    /* Any Proxy-* as before; in normal form this also covers a bare "Proxy",
     * which CGI exposes as HTTP_PROXY (httpoxy). */
    {"proxy-", HDR_F_HOP},
    /* framing and target */
    {"content-length", HDR_F_FRAMING},
    {"host", HDR_F_HOST},
    /* identity defaults; configured names are added by fwd */
    {"x-user", HDR_F_IDENTITY},
    {"x-org", HDR_F_IDENTITY},
    /* forwarded, set by the gateway too */
    {"x-forwarded-for", FWD_GW},
    {"x-forwarded-proto", FWD_GW},
    {"x-forwarded-host", FWD_GW},
    /* forwarded, stripped before this table existed */
    {"forwarded", HDR_F_FORWARDED},
    {"x-real-ip", HDR_F_FORWARDED},
    {"x-original-url", HDR_F_FORWARDED},
    {"x-rewrite-url", HDR_F_FORWARDED},
    {"x-envoy-original-path", HDR_F_FORWARDED},
    {"x-forwarded-uri", HDR_F_FORWARDED},
    {"x-forwarded-prefix", HDR_F_FORWARDED},
    {"x-forwarded-port", HDR_F_FORWARDED},
    /* forwarded, same class by judgement (see above) */
    {"x-client-ip", HDR_F_FORWARDED},
    {"true-client-ip", HDR_F_FORWARDED},
    {"cf-connecting-ip", HDR_F_FORWARDED},
    {"fastly-client-ip", HDR_F_FORWARDED},
    {"x-cluster-client-ip", HDR_F_FORWARDED},
    {"x-original-forwarded-for", HDR_F_FORWARDED},
    {"forwarded-for", HDR_F_FORWARDED},
    {"x-forwarded", HDR_F_FORWARDED},
    {"x-envoy-external-address", HDR_F_FORWARDED},
    {"x-originating-ip", HDR_F_FORWARDED},
    {"x-remote-ip", HDR_F_FORWARDED},
    {"x-remote-addr", HDR_F_FORWARDED},
    {"x-forwarded-server", HDR_F_FORWARDED},
    {"x-forwarded-scheme", HDR_F_FORWARDED},
    {"x-forwarded-ssl", HDR_F_FORWARDED},
    {"x-forwarded-protocol", HDR_F_FORWARDED},
    {"x-url-scheme", HDR_F_FORWARDED},
    {"front-end-https", HDR_F_FORWARDED},
    {"x-original-host", HDR_F_FORWARDED},
    {"x-original-uri", HDR_F_FORWARDED},
    {"x-forwarded-path", HDR_F_FORWARDED},
    /* the forward-auth dialects' original method (fauth.c reads them only
     * from trusted peers; a backend behind the proxy must never see a
     * client's copy either) */
    {"x-original-method", HDR_F_FORWARDED},
    {"x-forwarded-method", HDR_F_FORWARDED},
    /* set or handled by the gateway */
    {"x-request-id", HDR_F_GW_SET | HDR_F_GW_RESP},
    {"expect", HDR_F_EXPECT},
    {"x-authgate-", HDR_F_INTERNAL},
    {"authorization", HDR_F_AUTHZ},
    /* no rule, noted */
    {"content-type", HDR_F_CTYPE},
    {"accept", HDR_F_ACCEPT},
};

#define NROWS AG_ARRAY_LEN(rows)
#define NSLOTS 256 /* power of two, well above NROWS */
#define NPREFIX 4

/* Normal forms of the rows, the hash index over exact rows, and the prefix
 * rows. Written once under pthread_once, read-only afterwards. */
static struct {
    char norm[NROWS][32];
    uint8_t nlen[NROWS];
    uint8_t slot[NSLOTS]; /* row index + 1; 0 = empty */
    size_t prefix[NPREFIX];
    size_t nprefix;
    size_t maxlen;
} ix;
static pthread_once_t ix_once = PTHREAD_ONCE_INIT;

static inline int fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 'a';
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return c;
    return -1;
}

size_t hdr_norm(const char *name, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; name && i < len; i++) {
        int c = fold((unsigned char)name[i]);
        if (c < 0)
            continue;
        if (out && n + 1 < cap)
            out[n] = (char)c;
        n++;
    }
    if (out && cap > 0)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void build_index(void)
{
    _Static_assert(NROWS < 255, "slot holds index + 1 in a byte");
    for (size_t i = 0; i < NROWS; i++) {
        size_t l = strlen(rows[i].name);
        size_t n = hdr_norm(rows[i].name, l, ix.norm[i], sizeof(ix.norm[i]));
        ix.nlen[i] = (uint8_t)n;
        if (rows[i].name[l - 1] == '-') {
            if (ix.nprefix < NPREFIX)
                ix.prefix[ix.nprefix++] = i;
            continue;
        }
        if (n > ix.maxlen)
            ix.maxlen = n;
        uint32_t s = hash(ix.norm[i], n) & (NSLOTS - 1);
        while (ix.slot[s])
            s = (s + 1) & (NSLOTS - 1);
        ix.slot[s] = (uint8_t)(i + 1);
    }
}

/* The raw name is the row's name, case aside: same length, and byte for
 * byte equal or differing only in ASCII case. */
static bool spelled(const char *name, size_t len, const char *canon)
{
    return name && ag_streq_ci(name, len, canon);
}

unsigned hdr_flags_norm(const char *norm, size_t nlen, const char *name, size_t len)
{
    pthread_once(&ix_once, build_index);
    unsigned f = 0;
    if (nlen <= ix.maxlen) {
        uint32_t s = hash(norm, nlen) & (NSLOTS - 1);
        for (; ix.slot[s]; s = (s + 1) & (NSLOTS - 1)) {
            size_t i = ix.slot[s] - 1u;
            if (ix.nlen[i] == nlen && memcmp(ix.norm[i], norm, nlen) == 0) {
                f = rows[i].flags;
                if (spelled(name, len, rows[i].name))
                    f |= HDR_F_EXACT;
                break;
            }
        }
    }
    for (size_t k = 0; k < ix.nprefix; k++) {
        size_t i = ix.prefix[k];
        if (nlen >= ix.nlen[i] && memcmp(norm, ix.norm[i], ix.nlen[i]) == 0)
            f |= rows[i].flags;
    }
    return f;
}

unsigned hdr_flags(const char *name, size_t len)
{
    char norm[HDR_NORM_MAX];
    size_t n = hdr_norm(name, len, norm, sizeof(norm));
    return hdr_flags_norm(norm, n, name, len);
}

/* Next byte of a name's normal form at or after *i, or -1 at the end. */
static int next_folded(const char *s, size_t len, size_t *i)
{
    while (*i < len) {
        int c = fold((unsigned char)s[(*i)++]);
        if (c >= 0)
            return c;
    }
    return -1;
}

/* Compares a[0..alen) with b[0..blen) in normal form as both are read: no
 * copy, so no length limit on either. A name with no letters or digits names
 * nothing and equals nothing. */
static bool norm_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, k = 0, same = 0;
    int ca, cb;
    for (;;) {
        ca = next_folded(a, alen, &i);
        cb = next_folded(b, blen, &k);
        if (ca != cb || ca < 0)
            break;
        same++;
    }
    return ca < 0 && cb < 0 && same > 0;
}

bool hdr_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return a && b && norm_eq(a, alen, b, blen);
}

bool hdr_conn_lists(const char *value, size_t vlen, const char *name, size_t len)
{
    if (!value || !name)
        return false;
    for (size_t i = 0; i < vlen; i++) {
        size_t te = i;
        while (te < vlen && value[te] != ',')
            te++;
        if (norm_eq(value + i, te - i, name, len))
            return true;
        i = te;
    }
    return false;
}

const char *hdr_row(size_t i, unsigned *flags)
{
    if (i >= NROWS)
        return NULL;
    if (flags)
        *flags = rows[i].flags;
    return rows[i].name;
}
