/* libFuzzer target: the WebSocket frame tracker. Properties: the state after
 * a stream does not depend on how the stream was split into reads (one read,
 * three reads at input-chosen points, one byte at a time); "a close frame has
 * passed" never turns back off and a lost tracker stays lost; wherever the
 * tracker is between frames, a close frame the gateway writes (masked or not,
 * any code, any reason) is seen as exactly one whole close frame ending at its
 * last byte. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "wsframe.h"

static bool same(const wsf *a, const wsf *b)
{
    return a->phase == b->phase && a->left == b->left && a->need == b->need && a->op == b->op &&
           a->flags == b->flags;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t i = (size_t)data[0] << 8 | data[1];
    uint8_t knob = data[2];
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    i %= n + 1;
    size_t j = i + (n - i) / 2;

    wsf one, three, bytes;
    wsf_init(&one);
    wsf_init(&three);
    wsf_init(&bytes);
    wsf_feed(&one, p, n);
    wsf_feed(&three, p, i);
    wsf_feed(&three, p + i, j - i);
    wsf_feed(&three, p + j, n - j);
    bool closed = false, lost = false;
    for (size_t k = 0; k < n; k++) {
        wsf_feed(&bytes, p + k, 1);
        FUZZ_CHECK(!closed || wsf_saw_close(&bytes));
        FUZZ_CHECK(!lost || bytes.phase == WSF_LOST);
        closed = wsf_saw_close(&bytes);
        lost = bytes.phase == WSF_LOST;
        FUZZ_CHECK(!lost || !wsf_at_boundary(&bytes));
    }
    FUZZ_CHECK(same(&one, &three));
    FUZZ_CHECK(same(&one, &bytes));

    if (wsf_at_boundary(&one)) {
        uint8_t fr[WSF_CLOSE_MAX];
        char reason[WSF_REASON_MAX + 8];
        size_t rl = (size_t)(knob & 0x7f) % sizeof(reason);
        memset(reason, 'a' + (knob % 26), rl);
        reason[rl] = '\0';
        const uint8_t mask[4] = {p[0], data[0], data[1], knob};
        size_t fl = wsf_close_frame(fr, sizeof(fr), (uint16_t)(i * 7 + 1000), reason,
                                    (knob & 0x80) ? mask : NULL);
        FUZZ_CHECK(fl > 0 && fl <= WSF_CLOSE_MAX);
        wsf w = one;
        w.flags &= (uint8_t)~WSF_F_CLOSED;
        wsf_feed(&w, fr, fl - 1);
        FUZZ_CHECK(!wsf_saw_close(&w) && !wsf_at_boundary(&w));
        wsf_feed(&w, fr + fl - 1, 1);
        FUZZ_CHECK(wsf_saw_close(&w) && wsf_at_boundary(&w));
    }
    return 0;
}
