/*
 * admin_core.c - the officer's changes, shared by the Admin RPC service
 * and the web console (admin_core.h).  The checks and messages are the
 * ones admin_service.c has always given; only where they are reported
 * (an RPC status or an HTTP error) differs between the front ends.
 */
#include "admin_core.h"

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define LOG_MOD "admin"

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

static int
say(int rv, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write the message and return rv. */
static int
say(int rv, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg != NULL && msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return rv;
}

void
admin_store_msg(int rv, char *msg, size_t msglen)
{
	if (rv == CS_EEXHAUSTED) {
		say(rv, msg, msglen, "the store is full: nothing was changed; "
		    STORE_FULL_TODO);
	} else {
		say(rv, msg, msglen, "the store failed (%s): nothing was "
		    "changed; see the authority's log", cs_strerror(rv));
	}
}

static int
store_err(int rv, char *msg, size_t msglen)
{
	admin_store_msg(rv, msg, msglen);
	return rv;
}

/* A deep copy of m through its encoding (the caller's message may point
 * into a request). */
static void *
msg_dup(const ProtobufCMessage *m)
{
	size_t   n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n + 1);
	void    *c;

	if (b == NULL) {
		return NULL;
	}
	protobuf_c_message_pack(m, b);
	c = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
	free(b);
	return c;
}

static int
create_order_ok(const Countersign__V1__CreateOrderRequest *in, char *msg,
    size_t msglen)
{
	size_t i, j;

	if (!store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		return say(CS_EINVAL, msg, msglen, "order id must be 1..%u "
		    "printable characters without spaces", STORE_ORDER_ID_MAX);
	}
	if (!store_id_ok(in->key_label, STORE_NAME_MAX)) {
		return say(CS_EINVAL, msg, msglen, "a key label is required "
		    "(countersign-admin key list)");
	}
	if (in->quota == 0 || in->quota > UINT32_MAX) {
		return say(CS_EINVAL, msg, msglen, "quota must be 1..%u",
		    UINT32_MAX);
	}
	if (in->uid_len < STORE_UID_MIN || in->uid_len > STORE_UID_MAX) {
		return say(CS_EINVAL, msg, msglen, "uid length must be %u..%u "
		    "bytes", STORE_UID_MIN, STORE_UID_MAX);
	}
	if (in->n_cms > ADMIN_MAX_CMS) {
		return say(CS_EINVAL, msg, msglen, "at most %u CMs per order",
		    ADMIN_MAX_CMS);
	}
	for (i = 0; i < in->n_cms; i++) {
		if (!store_id_ok(in->cms[i], STORE_NAME_MAX)) {
			return say(CS_EINVAL, msg, msglen, "CM names are 1..%u "
			    "printable characters without spaces",
			    STORE_NAME_MAX);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(in->cms[i], in->cms[j]) == 0) {
				return say(CS_EINVAL, msg, msglen, "CM %s is "
				    "given twice", in->cms[i]);
			}
		}
	}
	if (in->expires_unix_s != 0 && in->expires_unix_s <= now_s()) {
		return say(CS_EINVAL, msg, msglen, "the expiry date is in the "
		    "past");
	}
	if (in->firmware_sha256.len != 0 &&
	    in->firmware_sha256.len != CS_SHA256_LEN) {
		return say(CS_EINVAL, msg, msglen, "firmware digest must be a "
		    "32-byte SHA-256");
	}
	return CS_OK;
}

int
admin_order_create(store *st, const char *actor,
    const Countersign__V1__CreateOrderRequest *in, StoredOrder **out,
    char *msg, size_t msglen)
{
	StoredOrder o   = COUNTERSIGN__V1__STORED_ORDER__INIT;
	StoredOrder *old = NULL;
	StoredKey   *k   = NULL;
	store_txn   *txn = NULL;
	char         product[16], quota[24], uidl[8];
	char         fw[2 * CS_SHA256_LEN + 1];
	int          rv;

	*out = NULL;
	if ((rv = create_order_ok(in, msg, msglen)) != CS_OK) {
		return rv;
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	rv = store_order_get(txn, in->order_id, &old);
	if (rv == CS_OK) {
		countersign__v1__stored_order__free_unpacked(old, NULL);
		rv = say(CS_EEXIST, msg, msglen, "order %s exists; order ids "
		    "are never reused", in->order_id);
		goto fail;
	}
	if (rv != CS_ENOENT) {
		store_err(rv, msg, msglen);
		goto fail;
	}
	if ((rv = store_key_get(txn, in->key_label, &k)) != CS_OK) {
		if (rv == CS_ENOENT) {
			rv = say(CS_EPRECOND, msg, msglen, "key %s is not "
			    "registered; register it first: countersign-admin "
			    "key add --label %s", in->key_label, in->key_label);
		} else {
			store_err(rv, msg, msglen);
		}
		goto fail;
	}
	countersign__v1__stored_key__free_unpacked(k, NULL);
	o.order_id        = in->order_id;
	o.product_id      = in->product_id;
	o.key_label       = in->key_label;
	o.quota           = in->quota;
	o.uid_len         = in->uid_len;
	o.n_cms           = in->n_cms;
	o.cms             = in->cms;
	o.expires_unix_s  = in->expires_unix_s;
	o.firmware_sha256 = in->firmware_sha256;
	o.created_unix_s  = now_s();
	snprintf(product, sizeof(product), "%u", in->product_id);
	snprintf(quota, sizeof(quota), "%" PRIu64, in->quota);
	snprintf(uidl, sizeof(uidl), "%u", in->uid_len);
	cs_hex_encode(in->firmware_sha256.data, in->firmware_sha256.len, fw,
	    sizeof(fw));
	{
		const char *kv[] = {"order", in->order_id, "product", product,
		    "key", in->key_label, "quota", quota, "uid_len", uidl,
		    "firmware_sha256", fw, NULL};

		if ((rv = store_order_put(txn, &o)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, "order.created", kv,
		         NULL)) != CS_OK) {
			store_err(rv, msg, msglen);
			goto fail;
		}
	}
	rv  = store_txn_commit(txn);
	txn = NULL;
	if (rv != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	cs_log_info(LOG_MOD, "order created order=%s by=%s", in->order_id,
	    actor);
	if ((*out = msg_dup(&o.base)) == NULL) {
		return say(CS_ENOMEM, msg, msglen, "out of memory (the order "
		    "was created)");
	}
	return CS_OK;
fail:
	store_txn_abort(txn);
	return rv;
}

/* Read order_id in txn; on failure the message says why. */
static int
get_order(store_txn *txn, const char *order_id, StoredOrder **o, char *msg,
    size_t msglen)
{
	int rv;

	*o = NULL;
	if (!store_id_ok(order_id, STORE_ORDER_ID_MAX)) {
		return say(CS_EINVAL, msg, msglen, "an order id is required");
	}
	rv = store_order_get(txn, order_id, o);
	if (rv == CS_ENOENT) {
		return say(CS_ENOENT, msg, msglen, "no order %s "
		    "(countersign-admin order list)", order_id);
	}
	if (rv != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	return CS_OK;
}

/* Put o and its audit event, commit; on success *out = o. */
static int
order_commit(store_txn *txn, StoredOrder *o, const char *actor,
    const char *type, const char *const *kv, StoredOrder **out, char *msg,
    size_t msglen)
{
	int rv;

	if ((rv = store_order_put(txn, o)) != CS_OK ||
	    (rv = store_audit_append(txn, actor, type, kv, NULL)) != CS_OK) {
		store_txn_abort(txn);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return store_err(rv, msg, msglen);
	}
	if ((rv = store_txn_commit(txn)) != CS_OK) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return store_err(rv, msg, msglen);
	}
	*out = o;
	return CS_OK;
}

int
admin_order_quota(store *st, const char *actor, const char *order_id,
    int64_t delta, StoredOrder **out, char *msg, size_t msglen)
{
	StoredOrder *o = NULL;
	store_txn   *txn;
	char         from[24], to[24], dl[24];
	uint64_t     nq;
	int          rv;

	*out = NULL;
	if (delta == 0 || delta == INT64_MIN) {
		return say(CS_EINVAL, msg, msglen, "give a non-zero change, "
		    "e.g. +100 or -20");
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = get_order(txn, order_id, &o, msg, msglen)) != CS_OK) {
		goto fail;
	}
	if (o->closed) {
		rv = say(CS_EPRECOND, msg, msglen, "order %s is closed; its "
		    "quota can no longer change", o->order_id);
		goto fail;
	}
	if (delta < 0) {
		uint64_t d = (uint64_t)(-delta);

		if (d > o->quota || o->quota - d < o->issued) {
			rv = say(CS_EPRECOND, msg, msglen, "quota of order %s "
			    "cannot go below the %" PRIu64 " records already "
			    "issued (quota %" PRIu64 ", at most -%" PRIu64 ")",
			    o->order_id, o->issued, o->quota,
			    o->quota - o->issued);
			goto fail;
		}
		nq = o->quota - d;
	} else {
		if ((uint64_t)delta > UINT32_MAX - o->quota ||
		    o->quota > UINT32_MAX) {
			rv = say(CS_EINVAL, msg, msglen, "quota would exceed %u",
			    UINT32_MAX);
			goto fail;
		}
		nq = o->quota + (uint64_t)delta;
	}
	snprintf(from, sizeof(from), "%" PRIu64, o->quota);
	snprintf(to, sizeof(to), "%" PRIu64, nq);
	snprintf(dl, sizeof(dl), "%+" PRId64, delta);
	o->quota = nq;
	{
		const char *kv[] = {"order", o->order_id, "from", from, "to", to,
		    "delta", dl, NULL};

		if ((rv = order_commit(txn, o, actor, "order.quota", kv, out,
		         msg, msglen)) != CS_OK) {
			return rv;
		}
	}
	cs_log_info(LOG_MOD, "quota changed order=%s from=%s to=%s by=%s",
	    order_id, from, to, actor);
	return CS_OK;
fail:
	store_txn_abort(txn);
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
	return rv;
}

int
admin_order_close(store *st, const char *actor, const char *order_id,
    StoredOrder **out, char *msg, size_t msglen)
{
	StoredOrder *o = NULL;
	store_txn   *txn;
	char         issued[24];
	int          rv;

	*out = NULL;
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = get_order(txn, order_id, &o, msg, msglen)) != CS_OK) {
		store_txn_abort(txn);
		return rv;
	}
	if (o->closed) {
		store_txn_abort(txn);
		rv = say(CS_EPRECOND, msg, msglen, "order %s is already closed",
		    o->order_id);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return rv;
	}
	o->closed = true;
	snprintf(issued, sizeof(issued), "%" PRIu64, o->issued);
	{
		const char *kv[] = {"order", o->order_id, "issued", issued, NULL};

		if ((rv = order_commit(txn, o, actor, "order.closed", kv, out,
		         msg, msglen)) != CS_OK) {
			return rv;
		}
	}
	cs_log_info(LOG_MOD, "order closed order=%s by=%s", order_id, actor);
	return CS_OK;
}

int
admin_station_set_enabled(store *st, sessions *ss, revocation *rev,
    const char *actor,
    const char *name, bool enabled, StoredStation **out, char *msg,
    size_t msglen)
{
	StoredStation *s = NULL;
	store_txn     *txn;
	const char    *type;
	unsigned       killed = 0;
	int            rv;

	*out = NULL;
	if (!store_id_ok(name, STORE_NAME_MAX)) {
		return say(CS_EINVAL, msg, msglen, "a station name is required");
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = store_station_get(txn, name, &s)) != CS_OK) {
		store_txn_abort(txn);
		if (rv == CS_ENOENT) {
			return say(rv, msg, msglen, "no station %s "
			    "(countersign-admin station list)", name);
		}
		return store_err(rv, msg, msglen);
	}
	s->enabled = enabled;
	if (!enabled) {
		s->disabled_unix_s = (uint64_t)time(NULL);
	}
	type = enabled ? "station.enabled" : "station.disabled";
	{
		const char *kv[] = {"station", s->name, "cm", s->cm, NULL};

		if ((rv = store_station_put(txn, s)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, type, kv, NULL)) !=
		        CS_OK) {
			store_txn_abort(txn);
			countersign__v1__stored_station__free_unpacked(s, NULL);
			return store_err(rv, msg, msglen);
		}
	}
	if ((rv = store_txn_commit(txn)) != CS_OK) {
		countersign__v1__stored_station__free_unpacked(s, NULL);
		return store_err(rv, msg, msglen);
	}
	/* After the commit: a station that slips a request in between is
	 * still stopped by the pipeline, which re-reads `enabled`. */
	if (!enabled && ss != NULL) {
		killed = sessions_revoke(ss, s->name);
	}
	(void)revocation_station_changed(rev, s->name, enabled);
	cs_log_info(LOG_MOD, "%s station=%s sessions_revoked=%u by=%s", type,
	    s->name, killed, actor);
	*out = s;
	return CS_OK;
}

int
admin_token_create(store *st, const char *actor, const char *name,
    const char *role, char token_hex[ADMIN_TOKEN_HEX + 1], char *msg,
    size_t msglen)
{
	StoredToken   t = COUNTERSIGN__V1__STORED_TOKEN__INIT;
	StoredToken **list = NULL;
	store_txn    *txn  = NULL;
	uint8_t       tok[ADMIN_TOKEN_BYTES], hash[CS_SHA256_LEN];
	size_t        n = 0, i;
	int           rv;

	token_hex[0] = '\0';
	if (!store_id_ok(name, STORE_NAME_MAX)) {
		return say(CS_EINVAL, msg, msglen, "a token name is required: "
		    "1..%u printable characters without spaces",
		    STORE_NAME_MAX);
	}
	if (strcmp(role, ADMIN_ROLE_VIEWER) != 0 &&
	    strcmp(role, ADMIN_ROLE_OFFICER) != 0) {
		return say(CS_EINVAL, msg, msglen, "role must be viewer "
		    "(read-only) or officer (may change orders and stations)");
	}
	if (getrandom(tok, sizeof(tok), 0) != (ssize_t)sizeof(tok)) {
		return say(CS_ECRYPTO, msg, msglen, "no random bytes from the "
		    "kernel");
	}
	if ((rv = cs_sha256(tok, sizeof(tok), hash)) != CS_OK) {
		say(rv, msg, msglen, "cannot hash the token");
		goto out;
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		store_err(rv, msg, msglen);
		goto out;
	}
	if ((rv = store_token_list(txn, &list, &n)) != CS_OK) {
		store_err(rv, msg, msglen);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->name, name) == 0) {
			rv = say(CS_EEXIST, msg, msglen, "a token named %s "
			    "exists; choose another name", name);
			goto out;
		}
	}
	t.name           = (char *)name;
	t.role           = (char *)role;
	t.created_unix_s = now_s();
	{
		const char *kv[] = {"name", name, "role", role, NULL};

		if ((rv = store_token_put(txn, hash, &t)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, "token.created", kv,
		         NULL)) != CS_OK) {
			store_err(rv, msg, msglen);
			goto out;
		}
	}
	rv  = store_txn_commit(txn);
	txn = NULL;
	if (rv != CS_OK) {
		store_err(rv, msg, msglen);
		goto out;
	}
	cs_hex_encode(tok, sizeof(tok), token_hex, ADMIN_TOKEN_HEX + 1);
	cs_log_info(LOG_MOD, "token created name=%s role=%s by=%s", name,
	    role, actor);
out:
	store_txn_abort(txn);
	store_token_list_free(list, n);
	cs_wipe(tok, sizeof(tok));
	return rv;
}

int
admin_token_hash(const char *token_hex, uint8_t hash[CS_SHA256_LEN])
{
	uint8_t tok[ADMIN_TOKEN_BYTES];
	size_t  len = 0;
	int     rv;

	if (token_hex == NULL || strlen(token_hex) != ADMIN_TOKEN_HEX ||
	    cs_hex_decode(token_hex, tok, sizeof(tok), &len) != CS_OK ||
	    len != sizeof(tok)) {
		return CS_EINVAL;
	}
	rv = cs_sha256(tok, sizeof(tok), hash);
	cs_wipe(tok, sizeof(tok));
	return rv;
}

int
admin_token_lookup(store *st, const char *token_hex, StoredToken **out)
{
	uint8_t    hash[CS_SHA256_LEN];
	store_txn *txn;
	int        rv;

	*out = NULL;
	if ((rv = admin_token_hash(token_hex, hash)) != CS_OK) {
		return rv;
	}
	if ((rv = store_txn_begin(st, false, &txn)) != CS_OK) {
		return rv;
	}
	rv = store_token_get(txn, hash, out);
	store_txn_abort(txn);
	if (rv == CS_OK && (*out)->disabled) {
		countersign__v1__stored_token__free_unpacked(*out, NULL);
		*out = NULL;
		return CS_EPERM;
	}
	return rv;
}

int
admin_token_disable(store *st, const char *actor, const char *name,
    unsigned *n, char *msg, size_t msglen)
{
	store_txn *txn;
	unsigned   found = 0;
	char       num[16];
	int        rv;

	*n = 0;
	if (!store_id_ok(name, STORE_NAME_MAX)) {
		snprintf(msg, msglen, "a token name is required");
		return CS_EINVAL;
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		admin_store_msg(rv, msg, msglen);
		return rv;
	}
	if ((rv = store_token_disable(txn, name, &found, n)) != CS_OK) {
		admin_store_msg(rv, msg, msglen);
		store_txn_abort(txn);
		return rv;
	}
	if (found == 0) {
		snprintf(msg, msglen, "no token called %s (countersign-admin "
		    "token list)", name);
		store_txn_abort(txn);
		return CS_ENOENT;
	}
	snprintf(num, sizeof(num), "%u", *n);
	{
		const char *kv[] = {"name", name, "disabled", num, NULL};

		if ((rv = store_audit_append(txn, actor, "token.disabled", kv,
		         NULL)) != CS_OK) {
			admin_store_msg(rv, msg, msglen);
			store_txn_abort(txn);
			return rv;
		}
	}
	if ((rv = store_txn_commit(txn)) != CS_OK) {
		admin_store_msg(rv, msg, msglen);
	}
	return rv;
}
