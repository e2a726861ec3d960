/* canon: see canon.h. The one place that decides what a request path means.
 *
 * Rules (docs/security.md group C, issue 4):
 * - origin-form only; the request never names a host (case 37);
 * - the raw target is scanned first for bytes that make it unparseable: '#'
 *   (libcurl would drop what follows, case 32), controls and DEL (case 29),
 *   space (case 36 files it under path_bad_encoding), invalid UTF-8;
 * - each segment is normalized: %XX of unreserved characters decoded, other
 *   escapes kept with upper-case hex, everything else byte-exact. Escapes that
 *   decode to a separator or a control are refused rather than kept, because
 *   some upstream will decode them (cases 27, 29);
 * - dot segments (after the decode above, so %2e counts) are refused or
 *   resolved; climbing above the root is always refused (cases 25, 26);
 * - empty segments are refused or merged; a trailing slash is not an empty
 *   segment but part of the path (cases 30, 34).
 * The output therefore contains no '.'/'..' segment, no "//", no escape that
 * the normalizer would change, so canon(canon(x)) == canon(x).
 *
 * Beyond docs/security.md's list: a segment that is "." or ".." before a ';'
 * (path_semicolon) and raw bytes >= 0x80 that are not valid UTF-8
 * (path_bad_utf8) are refused too. Valid raw UTF-8 and the printable ASCII
 * that may not appear raw in a path ("<>[]^`{|} and '"') are written as
 * upper-case %XX, so `/caf\xc3\xa9` and `/caf%C3%A9` are one path (the
 * upstream decodes both to the same bytes; routing must not tell them apart).
 * Such escaping can make the output up to three times the input; output
 * that does not fit `cap` is limit_uri (the gate sizes cap from
 * max_uri_bytes + 1 and refuses longer targets first). */
#include "canon.h"
#include "util.h"

#include <string.h>

static const canon_opts default_opts = {false, false};

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Printable ASCII that RFC 3986 never allows raw in a path and that carries no
 * delimiter meaning, so escaping it changes nothing for any decoder. */
static bool must_escape(unsigned char c)
{
    return c == '"' || c == '<' || c == '>' || c == '[' || c == ']' || c == '^' || c == '`' ||
           c == '{' || c == '|' || c == '}';
}

/* Decode the escape at s[i] ('%' already seen). Returns the byte or -1 when the
 * two hex digits are not there. */
static int escape_at(const char *s, size_t len, size_t i)
{
    if (len < 3 || i > len - 3)
        return -1;
    int hi = ag_hexval((unsigned char)s[i + 1]);
    int lo = ag_hexval((unsigned char)s[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

/* Length of the valid UTF-8 sequence starting at s[i] (lead byte >= 0x80), or 0
 * when it is malformed: overlong forms, surrogates and code points above
 * U+10FFFF are refused because some decoders map them onto ASCII. */
static size_t utf8_len(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xbf)
            return 0;
    return n;
}

/* First pass over the whole target: bytes that are never legal in a
 * request-target, wherever they are. */
static const char *scan_raw(const char *raw, size_t len, size_t path_len)
{
    const unsigned char *s = (const unsigned char *)raw;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '#')
            return "path_fragment";
        if (c == ' ')
            return "path_bad_encoding";
        if (is_ctl(c))
            return "path_control_char";
        if (c >= 0x80 && i < path_len) {
            size_t n = utf8_len(s, path_len, i);
            if (n == 0)
                return "path_bad_utf8";
            i += n - 1;
        }
    }
    return NULL;
}

/* Tomcat and other servlet containers strip ";params" from a segment before
 * resolving dots, so "..;" climbs there while it is an ordinary segment here
 * (the "/public/..;/admin" bypass class). seg is normalized already, so the
 * delimiter is a raw ';' or a kept "%3B". */
static bool dot_before_params(const char *seg, size_t n)
{
    size_t k = 0;
    while (k < n && seg[k] != ';' &&
           !(seg[k] == '%' && k + 2 < n && seg[k + 1] == '3' && seg[k + 2] == 'B'))
        k++;
    if (k == n)
        return false;
    return (k == 1 && seg[0] == '.') || (k == 2 && seg[0] == '.' && seg[1] == '.');
}

int canon_target(const char *raw, size_t len, const canon_opts *opts, char *out, size_t cap,
                 size_t *out_len, const char **query, size_t *query_len, const char **reason)
{
    int rc = -1;
    const char *why = "path_not_origin_form";
    size_t n = 0;
    const char *q = NULL;
    size_t qlen = 0;

    if (!opts)
        opts = &default_opts;
    if (!raw || len == 0 || raw[0] != '/')
        goto out;

    size_t plen = 0;
    while (plen < len && raw[plen] != '?')
        plen++;
    why = scan_raw(raw, len, plen);
    if (why)
        goto out;
    why = "limit_uri";
    if (!out || cap < 2)
        goto out;

    /* Segments start after each '/'; raw[0] is the leading '/'. Each one is
     * written as "/" + normalized bytes at out[start..n), then judged. */
    size_t i = 1;
    for (;;) {
        size_t start = n;
        if (n + 1 >= cap)
            goto out;
        out[n++] = '/';
        while (i < plen && raw[i] != '/') {
            unsigned char c = (unsigned char)raw[i];
            if (c == '\\') {
                why = "path_encoded_separator";
                goto out;
            }
            if (c == '%') {
                int v = escape_at(raw, plen, i);
                if (v < 0) {
                    why = "path_bad_encoding";
                    goto out;
                }
                if (v == '/' || v == '\\') {
                    why = "path_encoded_separator";
                    goto out;
                }
                if (is_ctl((unsigned char)v)) {
                    why = "path_control_char";
                    goto out;
                }
                if (is_unreserved((unsigned char)v)) {
                    if (n + 1 >= cap)
                        goto out;
                    out[n++] = (char)v;
                } else {
                    static const char hex[] = "0123456789ABCDEF";
                    if (n + 3 >= cap)
                        goto out;
                    out[n++] = '%';
                    out[n++] = hex[v >> 4];
                    out[n++] = hex[v & 15];
                }
                i += 3;
                continue;
            }
            if (c >= 0x80 || must_escape(c)) {
                /* Raw and escaped spellings of the same byte must route alike:
                 * libcurl escapes raw bytes >= 0x80 on the wire anyway, and the
                 * upstream decodes both, so the canonical form is the escape. */
                static const char hex[] = "0123456789ABCDEF";
                if (n + 3 >= cap)
                    goto out;
                out[n++] = '%';
                out[n++] = hex[c >> 4];
                out[n++] = hex[c & 15];
                i++;
                continue;
            }
            if (n + 1 >= cap)
                goto out;
            out[n++] = (char)c;
            i++;
        }
        bool last = i >= plen;
        const char *seg = out + start + 1;
        size_t slen = n - start - 1;

        if (slen == 0) {
            if (!last) {
                if (!opts->merge_slashes) {
                    why = "path_empty_segment";
                    goto out;
                }
                n = start;
            }
        } else if ((slen == 1 && seg[0] == '.') || (slen == 2 && seg[0] == '.' && seg[1] == '.')) {
            if (!opts->resolve_dot_segments) {
                why = "path_dot_segment";
                goto out;
            }
            n = start;
            if (slen == 2) {
                if (n == 0) {
                    /* above the root: never resolvable */
                    why = "path_dot_segment";
                    goto out;
                }
                while (out[n - 1] != '/')
                    n--;
                n--;
            }
            /* a dot segment at the end leaves the directory: "/a/.." is "/" */
            if (last)
                out[n++] = '/';
        } else if (dot_before_params(seg, slen)) {
            why = "path_semicolon";
            goto out;
        }
        if (last)
            break;
        i++; /* the '/' */
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    if (plen < len) {
        q = raw + plen + 1;
        qlen = len - plen - 1;
    }
    why = NULL;
    rc = 0;
out:
    if (rc != 0) {
        n = 0;
        if (out && cap > 0)
            out[0] = '\0';
    }
    if (out_len)
        *out_len = n;
    if (query)
        *query = q;
    if (query_len)
        *query_len = qlen;
    if (reason)
        *reason = why;
    return rc;
}

int canon_decode_segment(const char *seg, size_t len, char *out, size_t cap, size_t *out_len)
{
    int rc = -1;
    size_t n = 0;
    if (!out || cap == 0 || (!seg && len > 0))
        goto out;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)seg[i];
        if (c == '%') {
            c = escape_at(seg, len, i);
            if (c < 0)
                goto out;
            i += 2;
        }
        if (is_ctl((unsigned char)c))
            goto out;
        if (n + 1 >= cap)
            goto out;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    rc = 0;
out:
    if (rc != 0) {
        n = 0;
        if (out && cap > 0)
            out[0] = '\0';
    }
    if (out_len)
        *out_len = n;
    return rc;
}

/* ---- query ---------------------------------------------------------------- */

/* Streaming decoder for one query component: '+' is a space, %XX once.
 * Callers have already checked every escape with canon_query_check. */
typedef struct qdec {
    const char *s;
    size_t len, i;
} qdec;

static int qdec_next(qdec *d)
{
    if (d->i >= d->len)
        return -1;
    int c = (unsigned char)d->s[d->i];
    if (c == '+') {
        c = ' ';
        d->i++;
    } else if (c == '%') {
        c = escape_at(d->s, d->len, d->i);
        d->i += 3;
    } else {
        d->i++;
    }
    return c;
}

static bool key_exact(const char *k, size_t klen, const char *name, size_t nlen)
{
    qdec d = {k, klen, 0};
    size_t j = 0;
    int c;
    while ((c = qdec_next(&d)) >= 0) {
        if (j >= nlen || (unsigned char)name[j] != c)
            return false;
        j++;
    }
    return j == nlen;
}

static int fold_char(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 'a';
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return c;
    return -1;
}

/* Look-alike keys: equal once case and every non-alphanumeric byte are
 * ignored. Catches what other parsers fold together: letter case (MHD,
 * ASP.NET), '.'/' ' -> '_' and "name[]" (PHP), a NUL that ends a C string. */
static bool key_loose(const char *k, size_t klen, const char *name, size_t nlen)
{
    qdec d = {k, klen, 0};
    size_t j = 0;
    int c;
    while ((c = qdec_next(&d)) >= 0) {
        int f = fold_char(c);
        if (f < 0)
            continue;
        while (j < nlen && fold_char((unsigned char)name[j]) < 0)
            j++;
        if (j >= nlen || fold_char((unsigned char)name[j]) != f)
            return false;
        j++;
    }
    while (j < nlen && fold_char((unsigned char)name[j]) < 0)
        j++;
    return j == nlen;
}

int canon_query_check(const char *query, size_t qlen, const char **reason)
{
    const char *why = NULL;
    for (size_t i = 0; i < qlen && !why; i++) {
        unsigned char c = (unsigned char)query[i];
        if (c == '#')
            why = "path_fragment";
        else if (c == ' ')
            why = "query_bad_encoding";
        else if (is_ctl(c))
            why = "query_control_char";
        else if (c == '%' && escape_at(query, qlen, i) < 0)
            why = "query_bad_encoding";
    }
    /* Encoded controls (%0A, %00) are allowed here: the query is forwarded
     * raw, and the only values authgate decodes (canon_query_get) refuse them. */
    if (reason)
        *reason = why;
    return why ? -1 : 0;
}

canon_qstatus canon_query_get(const char *query, size_t qlen, const char *name, char *out,
                              size_t cap, size_t *out_len)
{
    canon_qstatus st = CANON_Q_MALFORMED;
    size_t n = 0;
    size_t exact = 0, loose = 0;
    const char *val = NULL;
    size_t vlen = 0;
    bool has_value = false;

    if (!name || !out || cap == 0 || (!query && qlen > 0))
        goto out;
    size_t nlen = strlen(name);
    if (canon_query_check(query, qlen, NULL) != 0)
        goto out;

    size_t i = 0;
    while (i <= qlen && qlen > 0) {
        size_t b = i;
        while (i < qlen && query[i] != '&')
            i++;
        size_t e = i++;
        if (e == b)
            continue;
        size_t k = b;
        while (k < e && query[k] != '=')
            k++;
        if (key_exact(query + b, k - b, name, nlen)) {
            exact++;
            has_value = k < e;
            val = has_value ? query + k + 1 : NULL;
            vlen = has_value ? e - k - 1 : 0;
        } else if (key_loose(query + b, k - b, name, nlen)) {
            loose++;
        }
        /* Parsers that also split on ';' (Python before 3.9.2, some Java
         * stacks) see more pairs inside this one; any of them naming the
         * parameter is a second, unauthorized source. */
        for (size_t s = b; s < e; s++) {
            if (query[s] != ';')
                continue;
            size_t sb = s + 1, se = sb;
            while (se < e && query[se] != ';' && query[se] != '=')
                se++;
            if (key_loose(query + sb, se - sb, name, nlen))
                loose++;
        }
    }

    if (exact == 0) {
        st = CANON_Q_ABSENT;
        goto out;
    }
    if (exact > 1 || loose > 0) {
        st = CANON_Q_AMBIGUOUS;
        goto out;
    }
    /* `?org_id` and `?org_id=` both mean "no org id" (case 43: 403
     * org_id_missing), so an empty value is reported as absent. */
    if (!has_value || vlen == 0) {
        st = CANON_Q_ABSENT;
        goto out;
    }
    qdec d = {val, vlen, 0};
    int c;
    while ((c = qdec_next(&d)) >= 0) {
        /* a decoded NUL would cut the value short in any C consumer */
        if (is_ctl((unsigned char)c) || n + 1 >= cap) {
            n = 0;
            goto out;
        }
        out[n++] = (char)c;
    }
    st = CANON_Q_FOUND;
out:
    if (st != CANON_Q_FOUND)
        n = 0;
    if (out && cap > 0)
        out[n] = '\0';
    if (out_len)
        *out_len = n;
    return st;
}
