/* Unit tests for wsframe: frame boundaries in a relayed WebSocket stream,
 * whatever the split of the bytes, and the close frames the gateway writes. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wsframe.h"

/* A stream of frames and, for each byte offset, whether a frame ends there
 * and whether a whole close frame has passed by then. */
typedef struct stream {
    uint8_t *b;
    size_t n, cap;
    bool *edge;   /* edge[k]: after k bytes the stream is between frames */
    bool *closed; /* closed[k]: a whole close frame lies within the first k bytes */
    bool seen_close;
} stream;

static void grow(stream *s, size_t more)
{
    if (s->n + more + 1 <= s->cap)
        return;
    size_t cap = (s->n + more + 1) * 2;
    s->b = realloc(s->b, cap);
    s->edge = realloc(s->edge, cap * sizeof(bool));
    s->closed = realloc(s->closed, cap * sizeof(bool));
    ck_assert(s->b && s->edge && s->closed);
    s->cap = cap;
}

static void put(stream *s, uint8_t v)
{
    grow(s, 1);
    s->b[s->n++] = v;
    s->edge[s->n] = false;
    s->closed[s->n] = s->seen_close;
}

/* One frame: FIN bit, opcode, payload of len bytes, masked when key != NULL.
 * The 7/16/64-bit length is the shortest that holds len unless wide forces
 * the 64-bit form (allowed on the wire, and trackers must not care). */
static void frame(stream *s, bool fin, uint8_t op, uint64_t len, const uint8_t *key, bool wide)
{
    put(s, (uint8_t)((fin ? 0x80 : 0) | op));
    uint8_t m = key ? 0x80 : 0;
    if (wide || len > 65535) {
        put(s, m | 127);
        for (int i = 7; i >= 0; i--)
            put(s, (uint8_t)(len >> (8 * i)));
    } else if (len > 125) {
        put(s, m | 126);
        put(s, (uint8_t)(len >> 8));
        put(s, (uint8_t)len);
    } else {
        put(s, (uint8_t)(m | len));
    }
    if (key)
        for (int i = 0; i < 4; i++)
            put(s, key[i]);
    for (uint64_t i = 0; i < len; i++)
        put(s, (uint8_t)(i * 31 + 7)); /* payload bytes that look like headers too */
    if (op == 0x8)
        s->seen_close = true;
    s->edge[s->n] = true;
    s->closed[s->n] = s->seen_close;
}

static const uint8_t KEY[4] = {0x81, 0x7e, 0x7f, 0x88};

/* Every length encoding, masked and not, a fragmented message with a ping and
 * a pong between its fragments, empty frames, then a close. */
static void build(stream *s)
{
    memset(s, 0, sizeof(*s));
    grow(s, 16);
    s->edge[0] = true;
    s->closed[0] = false;
    frame(s, true, 0x1, 0, NULL, false);
    frame(s, true, 0x1, 5, KEY, false);
    frame(s, true, 0x2, 125, NULL, false);
    frame(s, true, 0x2, 126, KEY, false);
    frame(s, true, 0x2, 300, NULL, false);
    frame(s, false, 0x1, 10, KEY, false); /* first fragment */
    frame(s, true, 0x9, 4, KEY, false);   /* ping between fragments */
    frame(s, false, 0x0, 200, KEY, false);
    frame(s, true, 0xA, 0, NULL, false); /* pong */
    frame(s, true, 0x0, 3, KEY, false);  /* last fragment */
    frame(s, true, 0x2, 7, NULL, true);  /* 64-bit form of a short length */
    frame(s, true, 0x2, 65536, KEY, false);
    frame(s, true, 0x9, 0, KEY, false);
    frame(s, true, 0x8, 2, NULL, false);
    frame(s, true, 0x1, 1, NULL, false); /* bytes after a close still frame */
}

static void drop(stream *s)
{
    free(s->b);
    free(s->edge);
    free(s->closed);
}

START_TEST(test_zero_value_is_never_a_boundary)
{
    wsf f;
    memset(&f, 0, sizeof(f));
    ck_assert(!wsf_at_boundary(&f));
    wsf_feed(&f, "\x81\x00", 2);
    ck_assert(!wsf_at_boundary(&f));
    ck_assert(!wsf_saw_close(&f));
    wsf_init(&f);
    ck_assert(wsf_at_boundary(&f));
    ck_assert(!wsf_saw_close(&f));
}
END_TEST

START_TEST(test_byte_at_a_time)
{
    stream s;
    build(&s);
    wsf f;
    wsf_init(&f);
    size_t edges = 0;
    for (size_t k = 0; k < s.n; k++) {
        ck_assert_msg(wsf_at_boundary(&f) == s.edge[k], "offset %zu", k);
        ck_assert_msg(wsf_saw_close(&f) == s.closed[k], "offset %zu", k);
        edges += s.edge[k];
        wsf_feed(&f, s.b + k, 1);
    }
    ck_assert(wsf_at_boundary(&f));
    ck_assert(wsf_saw_close(&f));
    ck_assert_uint_eq(edges, 15); /* the start and 14 frame ends before the last */
    drop(&s);
}
END_TEST

/* Two reads split the stream at every position: the state after the first
 * and after both must be what the byte-at-a-time walk says. */
START_TEST(test_split_at_every_position)
{
    stream s;
    build(&s);
    for (size_t i = 0; i <= s.n; i++) {
        wsf f;
        wsf_init(&f);
        wsf_feed(&f, s.b, i);
        ck_assert_msg(wsf_at_boundary(&f) == s.edge[i], "split %zu", i);
        ck_assert_msg(wsf_saw_close(&f) == s.closed[i], "split %zu", i);
        wsf_feed(&f, s.b + i, s.n - i);
        ck_assert_msg(wsf_at_boundary(&f) && wsf_saw_close(&f), "split %zu", i);
    }
    drop(&s);
}
END_TEST

/* Three reads of uneven sizes, as a socket might return them. */
START_TEST(test_three_way_splits)
{
    stream s;
    build(&s);
    for (size_t i = 0; i < s.n; i += 7) {
        for (size_t j = i; j <= s.n; j += 131) {
            wsf f;
            wsf_init(&f);
            wsf_feed(&f, s.b, i);
            wsf_feed(&f, s.b + i, j - i);
            ck_assert_msg(wsf_at_boundary(&f) == s.edge[j], "%zu/%zu", i, j);
            wsf_feed(&f, s.b + j, s.n - j);
            ck_assert(wsf_at_boundary(&f));
        }
    }
    drop(&s);
}
END_TEST

START_TEST(test_long_lengths)
{
    /* 64-bit length of 2^40: mid-payload after any amount short of it */
    const uint8_t big[] = {0x82, 0x7f, 0, 0, 0x01, 0, 0, 0, 0, 0};
    wsf f;
    wsf_init(&f);
    wsf_feed(&f, big, sizeof(big));
    ck_assert_int_eq(f.phase, WSF_PAYLOAD);
    ck_assert(f.left == (uint64_t)1 << 40);
    static uint8_t chunk[65536];
    for (int i = 0; i < 16; i++)
        wsf_feed(&f, chunk, sizeof(chunk));
    ck_assert(!wsf_at_boundary(&f));
    ck_assert(f.left == ((uint64_t)1 << 40) - 16 * sizeof(chunk));

    /* 16-bit length 0xffff, masked: ends exactly after 4 + 65535 more bytes */
    const uint8_t mid[] = {0x02, 0xfe, 0xff, 0xff, 1, 2, 3, 4};
    wsf_init(&f);
    wsf_feed(&f, mid, sizeof(mid));
    wsf_feed(&f, chunk, 65534);
    ck_assert(!wsf_at_boundary(&f));
    wsf_feed(&f, chunk, 1);
    ck_assert(wsf_at_boundary(&f));
    ck_assert(!wsf_saw_close(&f));

    /* the largest legal length, then one byte too far */
    const uint8_t top[] = {0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    wsf_init(&f);
    wsf_feed(&f, top, sizeof(top));
    ck_assert_int_eq(f.phase, WSF_PAYLOAD);
    const uint8_t bad[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00};
    wsf_init(&f);
    wsf_feed(&f, bad, sizeof(bad));
    ck_assert_int_eq(f.phase, WSF_LOST); /* and stays lost */
    ck_assert(!wsf_at_boundary(&f));
}
END_TEST

START_TEST(test_empty_masked_close_ends_at_its_key)
{
    const uint8_t c[] = {0x88, 0x80, 9, 9, 9, 9};
    wsf f;
    wsf_init(&f);
    wsf_feed(&f, c, 5);
    ck_assert(!wsf_at_boundary(&f));
    ck_assert(!wsf_saw_close(&f));
    wsf_feed(&f, c + 5, 1);
    ck_assert(wsf_at_boundary(&f));
    ck_assert(wsf_saw_close(&f));
    wsf_feed(&f, NULL, 0);
    ck_assert(wsf_at_boundary(&f));
}
END_TEST

static uint16_t parse_close(const uint8_t *b, size_t n, bool want_mask, char *reason)
{
    ck_assert_uint_ge(n, 4);
    ck_assert_uint_eq(b[0], 0x88);
    ck_assert_uint_eq((b[1] & 0x80) != 0, want_mask);
    size_t pl = b[1] & 0x7f;
    ck_assert_uint_le(pl, 125);
    size_t h = want_mask ? 6 : 2;
    ck_assert_uint_eq(n, h + pl);
    uint8_t p[125];
    for (size_t i = 0; i < pl; i++)
        p[i] = want_mask ? b[h + i] ^ b[2 + (i & 3)] : b[h + i];
    memcpy(reason, p + 2, pl - 2);
    reason[pl - 2] = '\0';
    return (uint16_t)(p[0] << 8 | p[1]);
}

START_TEST(test_close_frames)
{
    uint8_t out[WSF_CLOSE_MAX];
    char reason[128];
    size_t n = wsf_close_frame(out, sizeof(out), WSF_CLOSE_GOING_AWAY, "going away", NULL);
    ck_assert_uint_eq(n, 2 + 2 + 10);
    ck_assert_uint_eq(parse_close(out, n, false, reason), 1001);
    ck_assert_str_eq(reason, "going away");

    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    n = wsf_close_frame(out, sizeof(out), WSF_CLOSE_POLICY, "token expired", key);
    ck_assert_uint_eq(n, 6 + 2 + 13);
    ck_assert(memcmp(out + 2, key, 4) == 0);
    ck_assert(memcmp(out + 8, "token expired", 13) != 0); /* masked on the wire */
    ck_assert_uint_eq(parse_close(out, n, true, reason), 1008);
    ck_assert_str_eq(reason, "token expired");

    /* the tracker sees each as one whole close frame */
    wsf f;
    wsf_init(&f);
    wsf_feed(&f, out, n - 1);
    ck_assert(!wsf_saw_close(&f));
    wsf_feed(&f, out + n - 1, 1);
    ck_assert(wsf_saw_close(&f) && wsf_at_boundary(&f));

    /* no reason; an overlong one is cut; too small a buffer writes nothing */
    n = wsf_close_frame(out, sizeof(out), WSF_CLOSE_NORMAL, NULL, NULL);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(parse_close(out, n, false, reason), 1000);
    ck_assert_uint_eq(strlen(reason), 0);
    char longr[200];
    memset(longr, 'r', sizeof(longr) - 1);
    longr[sizeof(longr) - 1] = '\0';
    n = wsf_close_frame(out, sizeof(out), WSF_CLOSE_NORMAL, longr, key);
    ck_assert_uint_eq(n, WSF_CLOSE_MAX);
    parse_close(out, n, true, reason);
    ck_assert_uint_eq(strlen(reason), WSF_REASON_MAX);
    ck_assert_uint_eq(wsf_close_frame(out, WSF_CLOSE_MAX - 1, 1000, "x", NULL), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("wsframe");
    TCase *tc = tcase_create("frames");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zero_value_is_never_a_boundary);
    tcase_add_test(tc, test_byte_at_a_time);
    tcase_add_test(tc, test_split_at_every_position);
    tcase_add_test(tc, test_three_way_splits);
    tcase_add_test(tc, test_long_lengths);
    tcase_add_test(tc, test_empty_masked_close_ends_at_its_key);
    tcase_add_test(tc, test_close_frames);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
