#include "jnum.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Text of an integer that fits int64_t, without the sign. */
static const char int64_max_text[] = "9223372036854775807";
static const char int64_min_text[] = "9223372036854775808";

/* Length of the number token at s[0..len) (s[0] is '-' or a digit), and
 * whether it is an integer too large for json_int_t. A token jansson would
 * refuse anyway (leading zero, bare '-') is never called big, so it stays
 * refused. */
static size_t number_token(const char *s, size_t len, bool *big)
{
    size_t i = 0;
    bool neg = s[0] == '-';
    *big = false;
    if (neg)
        i++;
    size_t d0 = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t nd = i - d0;
    bool integer = true;
    while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                       s[i] == '+' || s[i] == '-')) {
        integer = false;
        i++;
    }
    if (!integer || nd == 0 || (s[d0] == '0' && nd > 1))
        return i;
    const char *lim = neg ? int64_min_text : int64_max_text;
    size_t limlen = sizeof(int64_max_text) - 1;
    *big = nd > limlen || (nd == limlen && memcmp(s + d0, lim, limlen) > 0);
    return i;
}

json_t *jnum_loadb(const char *text, size_t len, size_t flags, json_error_t *err)
{
    json_t *v = NULL;
    ag_buf b;
    ag_buf_init(&b);
    size_t nbig = 0;
    bool in_str = false, nul_escape = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\') {
                if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
                    nul_escape = true;
                i++;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            bool big;
            size_t n = number_token(text + i, len - i, &big);
            nbig += big;
            i += n - 1;
        }
    }
    if (nbig == 0) {
        v = json_loadb(text, len, flags, err);
        goto out;
    }
    if (nul_escape) {
        /* The placeholders need JSON_ALLOW_NUL; without this refusal a token
         * string could pose as one. json_loadb refuses \u0000 the same way. */
        if (err)
            snprintf(err->text, sizeof(err->text), "\\u0000 is not allowed");
        goto out;
    }
    in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\') {
                if (ag_buf_append(&b, text + i, i + 1 < len ? 2 : 1) != 0)
                    goto oom;
                i++;
                continue;
            }
            if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            bool big;
            size_t n = number_token(text + i, len - i, &big);
            if (big) {
                if (ag_buf_puts(&b, "\"\\u0000") != 0 || ag_buf_append(&b, text + i, n) != 0 ||
                    ag_buf_append(&b, "\"", 1) != 0)
                    goto oom;
            } else if (ag_buf_append(&b, text + i, n) != 0) {
                goto oom;
            }
            i += n - 1;
            continue;
        }
        if (ag_buf_append(&b, &c, 1) != 0)
            goto oom;
    }
    v = json_loadb(b.p, b.len, flags | JSON_ALLOW_NUL, err);
    goto out;
oom:
    if (err)
        snprintf(err->text, sizeof(err->text), "out of memory");
out:
    ag_buf_free(&b);
    return v;
}

bool jnum_is_big(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) >= 2 && json_string_value(v)[0] == '\0';
}

const char *jnum_big_text(const json_t *v, size_t *len)
{
    if (!jnum_is_big(v)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = json_string_length(v) - 1;
    return json_string_value(v) + 1;
}

bool jnum_is_string(const json_t *v)
{
    return json_is_string(v) && !jnum_is_big(v);
}

int jnum_seconds(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        *out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
        return 0;
    }
    if (jnum_is_big(v)) {
        *out = jnum_big_text(v, NULL)[0] == '-' ? INT64_MIN : INT64_MAX;
        return 0;
    }
    return -1;
}
