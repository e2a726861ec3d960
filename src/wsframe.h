/* wsframe: where RFC 6455 frames begin and end in a byte stream that is
 * relayed, not parsed. A tunnel feeds each direction's bytes as they are read
 * (any split, one byte at a time or megabytes at once) and asks two things
 * when the gateway wants to end it: is this direction between two frames (a
 * close frame of our own can go in without corrupting a frame the peer is
 * receiving), and has a whole close frame passed (the peer's close handshake
 * is already under way, or the peer has answered ours).
 *
 * Only headers are looked at: FIN/opcode byte, mask bit and 7/16/64-bit
 * length, the 4-byte mask key if masked; payload bytes are skipped by count,
 * so the cost is per frame, not per byte. Payloads are never unmasked or
 * validated. A stream that cannot be WebSocket (a 64-bit length with its top
 * bit set) loses sync for good.
 *
 * Fail closed by construction: the zero value is "lost" (never at a boundary,
 * so nothing is ever written into a stream the tracker was not started on);
 * wsf_init puts a tracker at the start of a stream. No I/O, no allocation. */
#ifndef AG_WSFRAME_H
#define AG_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum wsf_phase {
    WSF_LOST = 0, /* not a WebSocket stream, or never started */
    WSF_HEAD,     /* between frames: the next byte is FIN/RSV/opcode */
    WSF_LEN,      /* mask bit and 7-bit length */
    WSF_EXT,      /* 16- or 64-bit length, big-endian */
    WSF_MASK,     /* the 4-byte mask key */
    WSF_PAYLOAD,  /* payload bytes to skip */
} wsf_phase;

typedef struct wsf {
    uint64_t left; /* payload bytes still to come (WSF_PAYLOAD; length so far in WSF_EXT) */
    uint8_t phase; /* wsf_phase */
    uint8_t need;  /* length or mask bytes still to come (WSF_EXT, WSF_MASK) */
    uint8_t op;    /* opcode of the frame in progress */
    uint8_t flags; /* WSF_F_* */
} wsf;

enum {
    WSF_F_MASKED = 1, /* the frame in progress is masked */
    WSF_F_CLOSED = 2, /* a whole close frame (opcode 8) has passed; sticky */
};

/* The largest close frame wsf_close_frame writes: 2-byte head, 4-byte mask
 * key, 2-byte code and a reason of at most WSF_REASON_MAX bytes. */
#define WSF_REASON_MAX 64
#define WSF_CLOSE_MAX (2 + 4 + 2 + WSF_REASON_MAX)

/* RFC 6455 section 7.4.1 status codes the gateway sends. */
#define WSF_CLOSE_NORMAL 1000
#define WSF_CLOSE_GOING_AWAY 1001
#define WSF_CLOSE_POLICY 1008

void wsf_init(wsf *f);

void wsf_feed_slow(wsf *f, const uint8_t *p, size_t n);

/* Account for n more bytes of the stream. The common case (bytes inside a
 * payload) is a subtraction here; headers go out of line. */
static inline void wsf_feed(wsf *f, const void *p, size_t n)
{
    if (f->phase == WSF_PAYLOAD && n < f->left) {
        f->left -= n;
        return;
    }
    wsf_feed_slow(f, p, n);
}

/* Between two frames (also between the fragments of a message, where RFC
 * 6455 allows control frames). */
static inline bool wsf_at_boundary(const wsf *f)
{
    return f->phase == WSF_HEAD;
}

static inline bool wsf_saw_close(const wsf *f)
{
    return (f->flags & WSF_F_CLOSED) != 0;
}

/* Write a close frame with code and reason (truncated to WSF_REASON_MAX
 * bytes) into out. mask NULL: unmasked, as a server sends; otherwise the
 * frame is masked with those 4 bytes, as a client must. Returns its length,
 * or 0 when cap < WSF_CLOSE_MAX. */
size_t wsf_close_frame(uint8_t *out, size_t cap, uint16_t code, const char *reason,
                       const uint8_t *mask);

#endif
