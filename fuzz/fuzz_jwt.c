/* libFuzzer target: token verification (security.md group A) with a fixed
 * test key (fuzz/keys/test-public.pem; the private half only signs seeds).
 * Properties: no input ever verifies (the seeds that carry a good signature
 * fail a claim check, and a mutation that changes signed bytes must break the
 * signature); claims are only handed out on JWT_OK; every status has a
 * reason; the base64url decoder is strict, so whatever it accepts re-encodes
 * to exactly the same text (case 14: one canonical form per byte string). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jwt.h"

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
