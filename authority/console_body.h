/*
 * console_body.h - the console's request bodies: one JSON object, read by
 * jansson through cs_json_parse_object, whose members are strings,
 * integers, booleans, null or short arrays of strings, and the helpers the
 * route handlers read members with.
 *
 * Kept apart from the rest of the console (it needs only cs_json and
 * jansson) so that tests/fuzz/fuzz_console_body.c can feed it anything.
 * The caller has already refused bodies over CONSOLE_BODY_MAX (413).
 *
 * Thread-safety: none of these keep state.
 */
#ifndef CONSOLE_BODY_H
#define CONSOLE_BODY_H

#include "cs_json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BODY_DEPTH_MAX  2u  /* the object, and arrays in it */
#define BODY_FIELDS_MAX 16u /* members of the object */
#define BODY_ARRAY_MAX  64u /* strings in one array member */

/*
 * Parse body[0..len) and check its shape.  Returns a new reference to the
 * object, or NULL with err saying what was wrong (the text of the 400
 * answer).
 */
json_t *body_parse(const char *body, size_t len, char *err, size_t errlen);

/* The first member of o not among the NULL-terminated names, or NULL. */
const char *body_unknown(const json_t *o, const char *const *names);

/*
 * The unsigned integer member key of o, in [0, max], into *out; absent or
 * null: def, unless required.  false with err set when it is missing but
 * required, or not such an integer.
 */
bool body_uint(const json_t *o, const char *key, uint64_t max,
    bool required, uint64_t def, uint64_t *out, char *err, size_t errlen);

/* The string member key of o, or NULL when absent or not a string. */
const char *body_str(const json_t *o, const char *key);

#endif /* CONSOLE_BODY_H */
