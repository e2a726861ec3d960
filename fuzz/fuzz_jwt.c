/* libFuzzer target: token verification (docs/security.md group A) with a fixed
 * test key (fuzz/keys/test-public.pem; the private half only signs seeds).
 * Properties: no input ever verifies (the seeds that carry a good signature
 * fail a claim check, and a mutation that changes signed bytes must break the
 * signature); claims are only handed out on JWT_OK; every status has a
 * reason; the base64url decoder is strict, so whatever it accepts re-encodes
 * to exactly the same text (case 14: one canonical form per byte string);
 * jnum_loadb agrees with json_loadb wherever json_loadb succeeds, and every
 * placeholder it makes holds an integer that json_loadb would have refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jnum.h"
#include "jwt.h"
#include "util.h"

static const char test_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApIPpsg0nMcsMM/7ge9id\n"
    "35FtD24YSevo5h+m7K3hoggBvNGaqAC3H2NTiQ0ijEia9rldnV57/e0RLC6ZjsTN\n"
    "yK4rJg8vqae0x6HJ5qtgXSUFXo9jav7N4TSMBAl35FpsvkaRAQXNzOXwd0QbFd8R\n"
    "eBlZ8f1A0YuXAvFqWiALS6OgaKOqgO8334Q6lHtro5tgavI5wOifNX2iKUEX54FO\n"
    "WA5MxAafgW2KQVUQ0C4c9RGKKfgNEKSuJqL1aJdEBBKRKSS8/FVXEwfo41U5+dms\n"
    "QXrq+auQKYTnZypMjHKk/Jni+zASzg+2UqZt2Y0RO4EJc0Cru0VIEt372Xg/CnJA\n"
    "7QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static jwt_key *key;

static void check_placeholders(const json_t *v, int depth)
{
    FUZZ_CHECK(depth < 200);
    size_t len = 0;
    const char *t = jnum_big_text(v, &len);
    if (t) {
        size_t i = t[0] == '-';
        FUZZ_CHECK(len - i >= 19 && t[i] >= '1' && t[i] <= '9');
        for (; i < len; i++)
            FUZZ_CHECK(t[i] >= '0' && t[i] <= '9');
    }
    if (json_is_array(v))
        for (size_t i = 0; i < json_array_size(v); i++)
            check_placeholders(json_array_get(v, i), depth + 1);
    if (json_is_object(v))
        for (void *it = json_object_iter(ag_unconst(v)); it;
             it = json_object_iter_next(ag_unconst(v), it))
            check_placeholders(json_object_iter_value(it), depth + 1);
}

static void check_jnum(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return;
    json_error_t e;
    json_t *plain = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    json_t *big = jnum_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    if (plain)
        FUZZ_CHECK(big && json_equal(plain, big));
    if (big)
        check_placeholders(big, 0);
    json_decref(plain);
    json_decref(big);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256] = "";
    if (jwt_key_from_pem(test_pub_pem, sizeof(test_pub_pem) - 1, &key, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_jwt: test key refused: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jwt_key *const keys[] = {key};
    const jwt_params p = {
        .keys = keys,
        .nkeys = 1,
        .issuer = "https://auth.example.test",
        .leeway = 60,
        .now = 1700000000,
        .max_token_bytes = 16384,
    };
    json_t *claims = NULL;
    jwt_status st = jwt_verify((const char *)data, size, &p, &claims);
    FUZZ_CHECK(st != JWT_OK);
    FUZZ_CHECK((unsigned)st < (unsigned)JWT_OK);
    FUZZ_CHECK(claims == NULL);
    const char *r = jwt_status_reason(st);
    FUZZ_CHECK(r != NULL && r[0] != '\0');
    json_decref(claims);

    /* the raw input, and the payload part of a token-shaped input */
    check_jnum(data, size);
    const char *d1 = memchr(data, '.', size);
    const char *d2 = d1 ? memchr(d1 + 1, '.', size - (size_t)(d1 + 1 - (const char *)data)) : NULL;
    if (d2 && d2 - d1 - 1 <= 4096) {
        unsigned char pl[4096 * 3 / 4 + 4];
        long pn = jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pl);
        if (pn >= 0)
            check_jnum(pl, (size_t)pn);
    }

    /* strict base64url: decode(x) accepted implies encode(decode(x)) == x */
    size_t n = size < 4096 ? size : 4096;
    unsigned char *dec = malloc(n * 3 / 4 + 1);
    char *enc = malloc(n + 8);
    FUZZ_CHECK(dec != NULL && enc != NULL);
    long dl = jwt_b64url_decode((const char *)data, n, dec);
    if (dl >= 0) {
        FUZZ_CHECK((size_t)dl <= n * 3 / 4);
        size_t el = jwt_b64url_encode(dec, (size_t)dl, enc);
        FUZZ_CHECK(el == n && memcmp(enc, data, n) == 0);
    }
    free(dec);
    free(enc);
    return 0;
}
