/*
 * console_body.c - the console's request bodies (console_body.h).
 *
 * jansson does the parsing (cs_json_parse_object: one object, no
 * duplicate names, no NUL in strings, nesting bounded); this file adds the
 * shape every route accepts, so that handlers see only members they can
 * read with body_str and body_uint, and no body makes them loop long.
 */
#include "console_body.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

json_t *
body_parse(const char *body, size_t len, char *err, size_t errlen)
{
	json_t     *o;
	const char *key;
	json_t     *v, *e;
	size_t      i;

	o = cs_json_parse_object(body, len, BODY_DEPTH_MAX, err, errlen);
	if (o == NULL) {
		return NULL;
	}
	if (json_object_size(o) > BODY_FIELDS_MAX) {
		snprintf(err, errlen, "malformed JSON: more than %u members",
		    BODY_FIELDS_MAX);
		goto bad;
	}
	json_object_foreach (o, key, v) {
		if (json_is_real(v)) {
			snprintf(err, errlen, "malformed JSON: numbers must be "
			    "integers");
			goto bad;
		}
		if (json_is_object(v)) {
			snprintf(err, errlen, "malformed JSON: \"%.64s\" may "
			    "not be an object", key);
			goto bad;
		}
		if (!json_is_array(v)) {
			continue;
		}
		if (json_array_size(v) > BODY_ARRAY_MAX) {
			snprintf(err, errlen, "malformed JSON: an array longer "
			    "than %u", BODY_ARRAY_MAX);
			goto bad;
		}
		json_array_foreach (v, i, e) {
			if (!json_is_string(e)) {
				snprintf(err, errlen, "malformed JSON: arrays "
				    "may hold strings only");
				goto bad;
			}
		}
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

const char *
body_unknown(const json_t *o, const char *const *names)
{
	const char *key;
	json_t     *v;

	json_object_foreach ((json_t *)o, key, v) {
		size_t k;
		for (k = 0; names[k] != NULL; k++) {
			if (strcmp(key, names[k]) == 0) {
				break;
			}
		}
		if (names[k] == NULL) {
			return key;
		}
	}
	return NULL;
}

bool
body_uint(const json_t *o, const char *key, uint64_t max, bool required,
    uint64_t def, uint64_t *out, char *err, size_t errlen)
{
	const json_t *f = json_object_get(o, key);

	if (f == NULL || json_is_null(f)) {
		if (required) {
			snprintf(err, errlen, "\"%s\" is required", key);
			return false;
		}
		*out = def;
		return true;
	}
	if (!json_is_integer(f) || json_integer_value(f) < 0 ||
	    (uint64_t)json_integer_value(f) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer 0..%" PRIu64,
		    key, max);
		return false;
	}
	*out = (uint64_t)json_integer_value(f);
	return true;
}

const char *
body_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}
