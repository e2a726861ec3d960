#include "wsframe.h"

#include <string.h>

void wsf_init(wsf *f)
{
    memset(f, 0, sizeof(*f));
    f->phase = WSF_HEAD;
}

static void frame_done(wsf *f)
{
    if (f->op == 0x8)
        f->flags |= WSF_F_CLOSED;
    f->phase = WSF_HEAD;
}

/* The length is known: the mask key follows if the frame is masked, then the
 * payload (an empty frame ends right here). */
static void length_known(wsf *f)
{
    if (f->flags & WSF_F_MASKED) {
        f->phase = WSF_MASK;
        f->need = 4;
    } else if (f->left == 0) {
        frame_done(f);
    } else {
        f->phase = WSF_PAYLOAD;
    }
}

void wsf_feed_slow(wsf *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        switch ((wsf_phase)f->phase) {
        case WSF_PAYLOAD: {
            size_t k = f->left < n ? (size_t)f->left : n;
            f->left -= k;
            p += k;
            n -= k;
            if (f->left == 0)
                frame_done(f);
            break;
        }
        case WSF_HEAD:
            f->op = p[0] & 0x0f;
            f->phase = WSF_LEN;
            p++;
            n--;
            break;
        case WSF_LEN: {
            uint8_t b = p[0];
            p++;
            n--;
            f->flags = (uint8_t)((f->flags & ~WSF_F_MASKED) | (b & 0x80 ? WSF_F_MASKED : 0));
            uint8_t l = b & 0x7f;
            f->left = 0;
            if (l >= 126) {
                f->phase = WSF_EXT;
                f->need = l == 126 ? 2 : 8;
            } else {
                f->left = l;
                length_known(f);
            }
            break;
        }
        case WSF_EXT:
            f->left = f->left << 8 | p[0];
            p++;
            n--;
            if (--f->need == 0) {
                if (f->left >> 63) {
                    /* RFC 6455 5.2: the top bit must be 0. Not a frame. */
                    f->phase = WSF_LOST;
                    return;
                }
                length_known(f);
            }
            break;
        case WSF_MASK: {
            size_t k = f->need < n ? f->need : n;
            f->need = (uint8_t)(f->need - k);
            p += k;
            n -= k;
            if (f->need == 0) {
                if (f->left == 0)
                    frame_done(f);
                else
                    f->phase = WSF_PAYLOAD;
            }
            break;
        }
        case WSF_LOST:
        default:
            return;
        }
    }
}

size_t wsf_close_frame(uint8_t *out, size_t cap, uint16_t code, const char *reason,
                       const uint8_t *mask)
{
    if (cap < WSF_CLOSE_MAX)
        return 0;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > WSF_REASON_MAX)
        rl = WSF_REASON_MAX;
    size_t pl = 2 + rl;
    size_t h = 0;
    out[h++] = 0x80 | 0x8; /* FIN, close */
    out[h++] = (uint8_t)((mask ? 0x80 : 0) | pl);
    if (mask) {
        memcpy(out + h, mask, 4);
        h += 4;
    }
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (rl)
        memcpy(out + h + 2, reason, rl);
    if (mask)
        for (size_t i = 0; i < pl; i++)
            out[h + i] ^= mask[i & 3];
    return h + pl;
}
