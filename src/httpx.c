/* httpx: see httpx.h. Small, pure grammar checks; every function treats its
 * input as attacker bytes with an explicit length. */
#include "httpx.h"
#include "util.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Eight bytes at a time: every request runs these over a token of a few
 * kilobytes. A word with any byte below n (n <= 128), or equal to DEL, is
 * flagged; only flagged words are looked at byte by byte. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline bool word_suspect(uint64_t w, unsigned n)
{
    uint64_t lt = (w - ONES * n) & ~w & HIGHS;
    uint64_t d = w ^ (ONES * 0x7f);
    uint64_t del = (d - ONES) & ~d & HIGHS;
    return (lt | del) != 0;
}

/* Length of the prefix of v whose bytes are all >= n and not DEL. */
static size_t clean_prefix(const char *v, size_t len, unsigned n)
{
    size_t i = 0;
#ifdef __SSE2__
    /* Sixteen bytes at a time where the CPU has it (every x86-64 does): a
     * many-org token is 40 KB and is checked twice per request. */
    const __m128i vn = _mm_set1_epi8((char)n), vdel = _mm_set1_epi8(0x7f);
    while (i + 16 <= len) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(v + i));
        __m128i ge = _mm_cmpeq_epi8(_mm_max_epu8(c, vn), c); /* c >= n, unsigned */
        __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(c, vdel), ge);
        if (_mm_movemask_epi8(ok) != 0xffff)
            break;
        i += 16;
    }
#endif
    while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        if (word_suspect(w, n))
            break;
        i += 8;
    }
    while (i < len) {
        unsigned char c = (unsigned char)v[i];
        if (c < n || c == 0x7f)
            break;
        i++;
    }
    return i;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Bearer grammar (docs/semantics.md section 5, docs/security.md case B22).
 * The reference is FastAPI's HTTPBearer: it splits the value at the
 * first space (str.partition), compares the scheme caselessly with "bearer",
 * then strips whitespace around the credentials; PropelAuth then requires the
 * credentials to be a single word. Consequences we reproduce:
 *   - the separator must start with a space: "Bearer\t<tok>" has no space, so
 *     its scheme is "Bearer\t<tok>" and it fails (case 22 lists it as 401);
 *   - after that first space, further spaces and tabs are skipped
 *     ("Bearer  <tok>", "Bearer \t<tok>" pass), as FastAPI's strip() does;
 *   - OWS around the whole value is ignored (servers trim it; MHD keeps
 *     trailing whitespace, so we trim here);
 *   - the token is one non-empty run without whitespace or control bytes
 *     ("Bearer a b", "Bearer a, Bearer b" fail).
 * Every failure has the one reason code "auth_header_invalid" (docs/semantics.md
 * section 5): the distinction between a malformed value and
 * another scheme changes no decision (both are 401, or anonymous on optional
 * routes), so it is not worth a second code. */
int hx_parse_bearer(const char *v, size_t len, const char **tok, size_t *tok_len,
                    const char **reason)
{
    int rc = -1;
    const char *t = NULL;
    size_t tl = 0;
    if (!v)
        goto out;
    size_t b = 0, e = len;
    while (b < e && is_ows((unsigned char)v[b]))
        b++;
    while (e > b && is_ows((unsigned char)v[e - 1]))
        e--;
    static const char scheme[] = "bearer";
    const size_t slen = sizeof(scheme) - 1;
    if (e - b < slen + 2 || v[b + slen] != ' ')
        goto out;
    for (size_t i = 0; i < slen; i++)
        if (lower((unsigned char)v[b + i]) != scheme[i])
            goto out;
    /* Between scheme and token only spaces: a TAB there is refused, as the
     * libraries do (their split is on ' '), so no token reaches the verifier
     * with a prefix they would not have stripped. */
    size_t p = b + slen + 1;
    while (p < e && v[p] == ' ')
        p++;
    if (p == e)
        goto out;
    if (p + clean_prefix(v + p, e - p, 0x21) != e)
        goto out;
    t = v + p;
    tl = e - p;
    rc = 0;
out:
    if (tok)
        *tok = t;
    if (tok_len)
        *tok_len = tl;
    if (reason)
        *reason = rc == 0 ? NULL : "auth_header_invalid";
    return rc;
}

/* tchar as a bit per byte value: every header name of every request goes
 * through it, and '-' is in most of them. */
static const uint64_t k_tchar[4] = {
    /* 0x00-0x3f: ! # $ % & ' * + - . 0-9 */
    0x03ff6cfa00000000ull,
    /* 0x40-0x7f: A-Z ^ _ ` a-z | ~ */
    0x57ffffffc7fffffeull,
    0,
    0,
};

static bool is_tchar(unsigned char c)
{
    return (k_tchar[c >> 6] >> (c & 63)) & 1;
}

bool hx_is_token(const char *s, size_t len)
{
    if (!s || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool hx_valid_header_name(const char *name, size_t len)
{
    return hx_is_token(name, len);
}

/* field-value = *( VCHAR / obs-text / SP / HTAB ). An empty value is valid
 * grammar; how it is handed to libcurl ("Name;" vs "Name:") is the
 * forwarder's business. */
bool hx_valid_header_value(const char *v, size_t len)
{
    if (!v && len > 0)
        return false;
    size_t start = clean_prefix(v, len, 0x20);
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

bool hx_valid_request_id(const char *v, size_t len)
{
    if (!v || len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

void hx_request_id(const char *v, size_t len, uint64_t *state, char *out)
{
    if (v && hx_valid_request_id(v, len)) {
        memcpy(out, v, len);
        out[len] = '\0';
        return;
    }
    if (*state == 0 && ag_random(state, sizeof(*state)) != 0)
        *state = ag_now_mono_ns() | 1;
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int w = 0; w < 3; w++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        uint32_t x = (uint32_t)(*state >> 16);
        for (int b = 0; b < 8; b++)
            out[k++] = hex[(x >> (28 - 4 * b)) & 15];
    }
    out[k] = '\0';
}

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", HX_M_GET},       {"HEAD", HX_M_HEAD},   {"POST", HX_M_POST},       {"PUT", HX_M_PUT},
    {"DELETE", HX_M_DELETE}, {"PATCH", HX_M_PATCH}, {"OPTIONS", HX_M_OPTIONS},
};

unsigned hx_method_bit(const char *m)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

/* Truncates at cap - 1 (NUL-terminated); the full list is 43 bytes, so a
 * 64-byte buffer never truncates. Returns the length written. */
size_t hx_methods_format(unsigned mask, char *out, size_t cap)
{
    size_t n = 0;
    if (!out || cap == 0)
        return 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!(mask & methods[i].bit))
            continue;
        const char *parts[2] = {n > 0 ? ", " : "", methods[i].name};
        for (size_t p = 0; p < 2; p++)
            for (const char *s = parts[p]; *s && n + 1 < cap; s++)
                out[n++] = *s;
    }
    out[n] = '\0';
    return n;
}

int hx_resp_framing(const char *hdrs, size_t len, int64_t *content_length, bool *chunked)
{
    const char *p = hdrs ? hdrs : "";
    const char *end = p + (hdrs ? len : 0);
    int64_t cl = -1;
    bool te = false;
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t nlen = (size_t)(colon - line), vlen = (size_t)(ve - v);
            if (ag_streq_ci(line, nlen, "content-length")) {
                int64_t n = 0;
                if (vlen == 0)
                    return -1;
                for (const char *q = v; q < ve; q++) {
                    if (*q < '0' || *q > '9' || n > (INT64_MAX - 9) / 10)
                        return -1;
                    n = n * 10 + (*q - '0');
                }
                if (cl >= 0 && cl != n)
                    return -1;
                cl = n;
            } else if (ag_streq_ci(line, nlen, "transfer-encoding")) {
                if (te || vlen != 7 || !ag_streq_ci(v, 7, "chunked"))
                    return -1;
                te = true;
            }
        }
        line = eol + 1;
    }
    if (te && cl >= 0)
        return -1;
    *content_length = cl;
    *chunked = te;
    return 0;
}
