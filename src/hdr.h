/* hdr: the one table of header names the gateway judges, and the one name
 * normaliser every rule compares with. Pure, no allocation after the table's
 * one-time index build.
 *
 * Normal form: lower-case ASCII letters and digits only; every other byte is
 * dropped ("X-Forwarded-For", "x_forwarded_for", "X.Forwarded.For" and
 * "XForwardedFor" are all "xforwardedfor"). Backends disagree on how they map
 * header names to variables (WSGI/CGI/Rack turn '-' into '_', some strip
 * punctuation), so a client name that any of them could read as a name we
 * judge must be judged like it. Requests and responses use the same form. */
#ifndef AG_HDR_H
#define AG_HDR_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a normal form that can equal any table name or configured name:
 * configured names whose normal form does not fit are refused by fwd. */
#define HDR_NORM_MAX 128

/* Writes the normal form of name into out (truncated at cap - 1, always
 * NUL-terminated when cap > 0) and returns its FULL length, which may exceed
 * cap - 1: a caller compares lengths before bytes, so a truncated long name
 * never equals a short one. */
size_t hdr_norm(const char *name, size_t len, char *out, size_t cap);

/* Classes of a name; a name may be in several. Rules built on them live in
 * fwd (what is forwarded) and config (which names may be configured). */
enum {
    HDR_F_HOP = 1u << 0,       /* hop-by-hop: never crosses us, either direction */
    HDR_F_FRAMING = 1u << 1,   /* message framing: we choose it on each side */
    HDR_F_HOST = 1u << 2,      /* rewritten from the upstream URL */
    HDR_F_IDENTITY = 1u << 3,  /* identity names we inject (defaults X-User, X-Org) */
    HDR_F_FORWARDED = 1u << 4, /* client address / original URL: trusted only when
                                  trust_forwarded_headers, and only spelled exactly */
    HDR_F_GW_SET = 1u << 5,    /* the gateway sends its own value */
    HDR_F_EXPECT = 1u << 6,    /* Expect: the gateway answers 100-continue itself */
    HDR_F_INTERNAL = 1u << 7,  /* X-Authgate-* prefix: ours, never from a client */
    HDR_F_AUTHZ = 1u << 8,     /* Authorization: forwarded only when configured */
    HDR_F_CTYPE = 1u << 9,     /* no rule: noted so libcurl adds no default */
    HDR_F_ACCEPT = 1u << 10,   /* no rule: noted so libcurl adds no default */
    HDR_F_GW_RESP = 1u << 11,  /* the gateway sends its own value on every response */
    /* The name is spelled as the table's name (case aside), not a look-alike
     * that only normalises to it. Set only together with a class bit. */
    HDR_F_EXACT = 1u << 15,
};

/* Never relayed from an upstream response to the client. HDR_F_GW_RESP:
 * the client gets the gateway's value only, never a second one. */
#define HDR_RESP_DROP (HDR_F_HOP | HDR_F_FRAMING | HDR_F_HOST | HDR_F_GW_RESP)
/* Never copied from a client request, whatever the configuration. The
 * forwarded class and Authorization depend on it, and HDR_F_GW_SET drops a
 * client copy unless the name is also in the forwarded class (see fwd). */
#define HDR_REQ_DROP                                                                               \
    (HDR_F_HOP | HDR_F_FRAMING | HDR_F_HOST | HDR_F_IDENTITY | HDR_F_EXPECT | HDR_F_INTERNAL)

/* Names with a rule on the request side: a client's copy is dropped,
 * replaced by the gateway's, or passed only under a setting. The
 * configuration refuses them as the org id's header source, since that
 * source must be a header the upstream receives as the client sent it. */
#define HDR_REQ_RULED (HDR_REQ_DROP | HDR_F_GW_SET | HDR_F_FORWARDED | HDR_F_AUTHZ)

/* Flags of a raw name (0 for a name in no class). Thread-safe; no malloc. */
unsigned hdr_flags(const char *name, size_t len);
/* The same for a name already in normal form: nlen is hdr_norm's full length
 * and norm holds its first min(nlen, HDR_NORM_MAX - 1) bytes (a longer name
 * can only match a prefix row). The raw name gives HDR_F_EXACT (NULL: never). */
unsigned hdr_flags_norm(const char *norm, size_t nlen, const char *name, size_t len);

/* Are two names the same in normal form? A name without letters or digits
 * equals nothing (not even itself): it could only match by accident. */
bool hdr_name_eq(const char *a, size_t alen, const char *b, size_t blen);

/* Does a Connection field value (comma-separated tokens, OWS around them) list
 * the header name? RFC 9110 7.6.1: such fields are hop-by-hop for this hop.
 * Compared in normal form, so "Connection: x_foo" also removes "X-Foo". */
bool hdr_conn_lists(const char *value, size_t vlen, const char *name, size_t len);

/* Table introspection for tests and docs: row i's canonical (lower-case) name
 * and flags; NULL past the end. Prefix rows end in '-' ("proxy-"). */
const char *hdr_row(size_t i, unsigned *flags);

#endif
