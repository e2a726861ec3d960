/* libFuzzer target: the query lookup (docs/security.md group D).
 * Input: first byte picks the parameter name, the rest is a raw query.
 * Properties: a query canon_query_check refuses is MALFORMED for the lookup;
 * FOUND means a non-empty, NUL-terminated value without control bytes that
 * fits the buffer; anything else leaves an empty buffer; and the answer does
 * not depend on how the query is encoded: re-encoding every byte except the
 * delimiters (& = ; + and existing escapes) gives the same status and value
 * ("duplicate detection is independent of encoding", §4 item 2). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "fuzz_common.h"

#define VCAP 256

static const char *const names[] = {"org_id", "orgId", "org", "a"};

static size_t reencode(const char *q, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef"; /* lower case on purpose */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c == '%') {
            memcpy(out + o, q + i, 3); /* valid: the caller checked */
            o += 3;
            i += 2;
        } else if (c == '&' || c == '=' || c == ';' || c == '+') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
    const char *q = (const char *)data + 1;
    size_t qlen = size - 1;

    char v[VCAP];
    size_t vl = 12345;
    const char *why = NULL;
    int ck = canon_query_check(q, qlen, &why);
    FUZZ_CHECK((ck == 0) == (why == NULL));
    canon_qstatus st = canon_query_get(q, qlen, name, v, sizeof(v), &vl);
    FUZZ_CHECK(st >= CANON_Q_ABSENT && st <= CANON_Q_MALFORMED);
    if (ck != 0)
        FUZZ_CHECK(st == CANON_Q_MALFORMED);
    if (st == CANON_Q_FOUND) {
        FUZZ_CHECK(vl > 0 && vl < sizeof(v) && v[vl] == '\0');
        for (size_t i = 0; i < vl; i++)
            FUZZ_CHECK((unsigned char)v[i] >= 0x20 && (unsigned char)v[i] != 0x7f);
    } else {
        FUZZ_CHECK(vl == 0 && v[0] == '\0');
    }
    if (ck != 0)
        return 0;

    char *q2 = malloc(qlen * 3 + 1);
    FUZZ_CHECK(q2 != NULL);
    size_t q2len = reencode(q, qlen, q2);
    char v2[VCAP];
    size_t vl2 = 0;
    FUZZ_CHECK(canon_query_check(q2, q2len, NULL) == 0);
    canon_qstatus st2 = canon_query_get(q2, q2len, name, v2, sizeof(v2), &vl2);
    FUZZ_CHECK(st2 == st);
    FUZZ_CHECK(vl2 == vl && memcmp(v, v2, vl) == 0);
    free(q2);
    return 0;
}
