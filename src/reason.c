#include "reason.h"

#include <string.h>

static const reason_row rows[AR__COUNT] = {
#define AG_REASON_ROW(e, n, s, err, lvl, lab) [AR_##e] = {n, s, err, lvl, lab},
    AG_REASONS(AG_REASON_ROW)
#undef AG_REASON_ROW
};

const reason_row *reason_row_of(ag_reason r)
{
    if ((unsigned)r >= AR__COUNT)
        r = AR_INTERNAL;
    return &rows[r];
}

const char *reason_name(ag_reason r)
{
    return reason_row_of(r)->name;
}

int reason_status(ag_reason r)
{
    return reason_row_of(r)->status;
}

const char *reason_error(ag_reason r)
{
    return reason_row_of(r)->error;
}

bool reason_forwards(ag_reason r)
{
    return r == AR_OK || r == AR_TOKEN_INVALID_IGNORED || r == AR_UPGRADE_NOT_TUNNELLED;
}

bool reason_from_name(const char *name, ag_reason *out)
{
    *out = AR_INTERNAL;
    if (!name)
        return false;
    for (int i = 0; i < AR__COUNT; i++) {
        if (strcmp(rows[i].name, name) == 0) {
            *out = (ag_reason)i;
            return true;
        }
    }
    return false;
}
