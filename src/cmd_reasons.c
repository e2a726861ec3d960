/* authgate reasons (not in the usage text): the reason table as the binary
 * holds it, one tab-separated row per code (reason, status, error class,
 * log level, metric decision label; "-" for none). The docs tests read it so
 * that docs/ cannot name a reason the binary does not emit. */
#include <stdio.h>

#include "cmds.h"
#include "reason.h"

static const char *level_name(log_level l)
{
    switch (l) {
    case LOG_ERROR:
        return "error";
    case LOG_WARN:
        return "warn";
    case LOG_INFO:
        return "info";
    case LOG_DEBUG:
        return "debug";
    }
    return "?";
}

int cmd_reasons(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: authgate reasons\n");
        return 2;
    }
    for (int i = 0; i < AR__COUNT; i++) {
        const reason_row *r = reason_row_of((ag_reason)i);
        printf("%s\t%d\t%s\t%s\t%s\n", r->name, r->status, r->error ? r->error : "-",
               level_name(r->level), r->label);
    }
    return 0;
}
