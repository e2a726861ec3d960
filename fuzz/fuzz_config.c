/* libFuzzer target: the YAML configuration loader (docs/security.md case 89:
 * alias bombs, huge scalars, duplicate keys, tags). Properties: no crash, no
 * leak (LeakSanitizer runs after every input), and the result is coherent:
 * success means a config and no errors, failure means no config and at least
 * one error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the loader takes a length, but a NUL after it catches readers that
     * assume one without making the input itself NUL-terminated */
    char *yaml = malloc(size + 1);
    FUZZ_CHECK(yaml != NULL);
    memcpy(yaml, data, size);
    yaml[size] = '\0';
    cfg_config *cfg = NULL;
    cfg_diags d;
    memset(&d, 0, sizeof(d));
    int rc = cfg_load_string("fuzz.yaml", yaml, size, &cfg, &d);
    if (rc == 0) {
        FUZZ_CHECK(cfg != NULL);
        FUZZ_CHECK(d.nerrors == 0);
    } else {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(cfg == NULL);
        FUZZ_CHECK(d.nerrors > 0 && d.errors != NULL && d.errors[0] != NULL);
    }
    if (cfg)
        cfg_free(cfg);
    cfg_diags_free(&d);
    free(yaml);
    return 0;
}
