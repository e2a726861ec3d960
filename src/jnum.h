/* jnum: JSON integers beyond 64 bits, kept exactly as the token wrote them.
 *
 * jansson refuses an integer that does not fit json_int_t, and decoding every
 * integer as a double would lose digits; the PropelAuth libraries (JavaScript
 * and Python) accept both `exp: 99999999999999999999` and such a number in a
 * custom property. jnum_loadb parses like json_loadb but files each such
 * integer as a placeholder: a string made of a NUL byte followed by the
 * integer's text. A token's own strings can never hold NUL (a \u0000 escape
 * is refused, as json_loadb refuses it), so a placeholder cannot be forged.
 *
 * Every reader of a payload parsed this way must use jnum_is_string instead
 * of json_is_string, so a placeholder is never taken for a string, and
 * jnum_seconds for time claims. Pure: no I/O. */
#ifndef AG_JNUM_H
#define AG_JNUM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* json_loadb(text, len, flags, err) plus big integers as placeholders. */
json_t *jnum_loadb(const char *text, size_t len, size_t flags, json_error_t *err);

/* A placeholder for an integer beyond 64 bits? */
bool jnum_is_big(const json_t *v);
/* The integer's text (optional '-' then digits) and its length; NULL when v
 * is not a placeholder. */
const char *jnum_big_text(const json_t *v, size_t *len);
/* A JSON string of the token (never a placeholder). */
bool jnum_is_string(const json_t *v);
/* A JSON number as whole seconds, truncated toward zero like Python's int()
 * and saturating (a big integer is far past or far future). -1 when v is not
 * a number. */
int jnum_seconds(const json_t *v, int64_t *out);

#endif
