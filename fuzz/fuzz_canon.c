/* libFuzzer target: the path canonicalizer (docs/security.md section 2 item 2).
 * Input: first byte selects the options (bit 0 resolve dot segments, bit 1
 * merge slashes), the rest is a raw request-target. Properties on success:
 * the output starts with '/', has no "//", no "." or ".." segment, no NUL,
 * control, space, '#', '?' or '\'; every escape is upper-case and one the
 * normalizer would keep; canonicalizing the output again gives the same bytes
 * under every option set (so the strict mode accepts whatever a lenient mode
 * produced); every segment decodes once without error; the capacity bound is
 * tight. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "canon.h"
#include "fuzz_common.h"

#define CAP 8192

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower-case hex is a property violation in canonical output */
}

static void check_output(const char *o, size_t n)
{
    FUZZ_CHECK(n >= 1 && n < CAP);
    FUZZ_CHECK(o[0] == '/');
    FUZZ_CHECK(o[n] == '\0');
    FUZZ_CHECK(strlen(o) == n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)o[i];
        FUZZ_CHECK(c >= 0x21 && c != 0x7f);
        FUZZ_CHECK(c != '#' && c != '?' && c != '\\');
        if (c == '/')
            FUZZ_CHECK(i + 1 >= n || o[i + 1] != '/');
        if (c == '%') {
            FUZZ_CHECK(i + 2 < n);
            int hi = hexv((unsigned char)o[i + 1]), lo = hexv((unsigned char)o[i + 2]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            int v = hi * 16 + lo;
            FUZZ_CHECK(!is_unreserved((unsigned char)v));
            FUZZ_CHECK(v >= 0x20 && v != 0x7f && v != '/' && v != '\\');
        }
    }
    /* no dot segments: walk the segments */
    size_t s = 1;
    while (s <= n) {
        size_t e = s;
        while (e < n && o[e] != '/')
            e++;
        size_t len = e - s;
        FUZZ_CHECK(!(len == 1 && o[s] == '.'));
        FUZZ_CHECK(!(len == 2 && o[s] == '.' && o[s + 1] == '.'));
        char dec[CAP];
        size_t dl = 0;
        FUZZ_CHECK(canon_decode_segment(o + s, len, dec, sizeof(dec), &dl) == 0);
        FUZZ_CHECK(dl <= len);
        s = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[CAP], again[CAP];
    if (size < 1)
        return 0;
    canon_opts o = {(data[0] & 1) != 0, (data[0] & 2) != 0};
    const char *raw = (const char *)data + 1;
    size_t len = size - 1;

    size_t n = 0, ql = 0;
    const char *q = NULL, *why = NULL;
    int rc = canon_target(raw, len, &o, out, sizeof(out), &n, &q, &ql, &why);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && why != NULL && n == 0 && q == NULL && ql == 0);
        return 0;
    }
    FUZZ_CHECK(why == NULL);
    check_output(out, n);
    if (q) {
        FUZZ_CHECK(q > raw && q + ql == raw + len && q[-1] == '?');
        FUZZ_CHECK(memchr(raw, '?', (size_t)(q - raw) - 1) == NULL);
    } else {
        FUZZ_CHECK(ql == 0 && memchr(raw, '?', len) == NULL);
    }

    static const canon_opts modes[] = {{false, false}, {true, false}, {false, true}, {true, true}};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        size_t n2 = 0;
        const char *q2 = NULL, *why2 = NULL;
        FUZZ_CHECK(canon_target(out, n, &modes[m], again, sizeof(again), &n2, &q2, NULL, &why2) ==
                   0);
        FUZZ_CHECK(n2 == n && memcmp(again, out, n) == 0 && q2 == NULL);
    }

    /* capacity: n bytes never suffice; n + 1 do unless ".." resolution
     * needed room for segments it later removed (the input length always
     * suffices, and callers size the buffer from the input bound) */
    size_t n3 = 0;
    if (!o.resolve_dot_segments)
        FUZZ_CHECK(canon_target(raw, len, &o, again, n + 1, &n3, NULL, NULL, &why) == 0 && n3 == n);
    /* raw UTF-8 and raw '"<>[]^`{|}' are written as %XX: at most 3x */
    FUZZ_CHECK(n <= 3 * len);
    FUZZ_CHECK(canon_target(raw, len, &o, again, n, &n3, NULL, NULL, &why) == -1);
    FUZZ_CHECK(strcmp(why, "limit_uri") == 0);
    return 0;
}
