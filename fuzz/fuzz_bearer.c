/* libFuzzer target: the Authorization grammar and the header helpers.
 * Properties: an accepted value yields a non-empty token inside the input
 * with no whitespace or control byte, and "Bearer " + token parses back to
 * the same token; hdr_norm emits only [a-z0-9] and is stable, a name is
 * judged (hdr_flags, hdr_name_eq) as its normal form, so trailing whitespace
 * changes nothing; a valid header name is never a value with CR/LF/NUL. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hdr.h"
#include "httpx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    const char *tok = NULL, *why = NULL;
    size_t tl = 0;
    int rc = hx_parse_bearer(v, size, &tok, &tl, &why);
    if (rc == 0) {
        FUZZ_CHECK(why == NULL && tok != NULL && tl > 0);
        FUZZ_CHECK(tok >= v && tok + tl <= v + size);
        for (size_t i = 0; i < tl; i++)
            FUZZ_CHECK((unsigned char)tok[i] > 0x20 && (unsigned char)tok[i] != 0x7f);
        char *again = malloc(tl + 7);
        FUZZ_CHECK(again != NULL);
        memcpy(again, "Bearer ", 7);
        memcpy(again + 7, tok, tl);
        const char *t2 = NULL;
        size_t tl2 = 0;
        FUZZ_CHECK(hx_parse_bearer(again, tl + 7, &t2, &tl2, NULL) == 0);
        FUZZ_CHECK(tl2 == tl && memcmp(t2, tok, tl) == 0);
        free(again);
    } else {
        FUZZ_CHECK(rc == -1 && why != NULL && tok == NULL && tl == 0);
    }

    char f[HDR_NORM_MAX], f2[HDR_NORM_MAX];
    size_t fl = hdr_norm(v, size, f, sizeof(f));
    size_t kept = fl < sizeof(f) ? fl : sizeof(f) - 1;
    FUZZ_CHECK(f[kept] == '\0' && strlen(f) == kept);
    for (size_t i = 0; i < kept; i++)
        FUZZ_CHECK((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= '0' && f[i] <= '9'));
    FUZZ_CHECK(hdr_norm(f, kept, f2, sizeof(f2)) == kept && memcmp(f, f2, kept) == 0);

    unsigned flags = hdr_flags(v, size) & ~(unsigned)HDR_F_EXACT;
    FUZZ_CHECK((hdr_flags_norm(f, fl, NULL, 0) & ~(unsigned)HDR_F_EXACT) == flags);
    if (fl < sizeof(f))
        FUZZ_CHECK(hdr_name_eq(v, size, f, fl) == (fl > 0));
    size_t trimmed = size;
    while (trimmed > 0 && (v[trimmed - 1] == ' ' || v[trimmed - 1] == '\t'))
        trimmed--;
    FUZZ_CHECK((hdr_flags(v, trimmed) & ~(unsigned)HDR_F_EXACT) == flags);

    if (hx_valid_header_name(v, size)) {
        FUZZ_CHECK(size > 0);
        FUZZ_CHECK(memchr(v, ':', size) == NULL && memchr(v, ' ', size) == NULL);
    }
    if (hx_valid_header_value(v, size))
        FUZZ_CHECK(memchr(v, '\r', size) == NULL && memchr(v, '\n', size) == NULL &&
                   memchr(v, '\0', size) == NULL);
    if (hx_valid_request_id(v, size))
        FUZZ_CHECK(size >= 1 && size <= 128 && hx_valid_header_value(v, size));

    /* methods: only exact NUL-terminated names have a bit */
    char m[16];
    size_t ml = size < sizeof(m) - 1 ? size : sizeof(m) - 1;
    memcpy(m, v, ml);
    m[ml] = '\0';
    unsigned bit = hx_method_bit(m);
    FUZZ_CHECK(bit == 0 || (bit & (bit - 1)) == 0);
    if (bit) {
        char fmt[64];
        hx_methods_format(bit, fmt, sizeof(fmt));
        FUZZ_CHECK(strcmp(fmt, m) == 0);
    }
    return 0;
}
