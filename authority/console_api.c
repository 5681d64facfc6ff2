/*
 * console_api.c - the console's JSON API for orders, stations and devices
 * (docs/console.md): one handler per route of console.c's table, which
 * has already checked sign-in, role, CSRF and the body's shape.
 *
 * Reads use one read transaction each.  Changes go through admin_core,
 * the same code as the Admin service, which audits them; a change it
 * refuses is audited here as console.refused (console_change_failed).
 * The dashboard's rate and alerts come from the pipeline's in-memory
 * counters (since the authority started); per-order issued counts come
 * from the store.
 */
#include "console_impl.h"

#include "admin_core.h"
#include "console_body.h"
#include "countersign/verify.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "order_view.h"

#include <stdlib.h>
#include <string.h>

static void
order_json(struct cs_json *j, const StoredOrder *o, console *c)
{
	Countersign__V1__OrderStatus os;
	store_txn                   *txn;

	order_view(&os, o);
	/* Whether it holds its image: a row of its own (a short read). */
	if (store_txn_begin(c->st, false, &txn) == CS_OK) {
		(void)order_view_firmware(&os, txn);
		store_txn_abort(txn);
	}
	cs_json_open(j, NULL);
	cs_json_str(j, "order_id", os.order_id);
	cs_json_u64(j, "product_id", os.product_id);
	cs_json_str(j, "key_label", os.key_label);
	cs_json_u64(j, "quota", os.quota);
	cs_json_u64(j, "issued", os.issued);
	cs_json_u64(j, "confirmed", os.confirmed);
	cs_json_u64(j, "failed", os.failed);
	cs_json_u64(j, "remaining", os.remaining);
	cs_json_u64(j, "uid_len", os.uid_len);
	cs_json_bool(j, "active", os.active);
	cs_json_bool(j, "closed", os.closed);
	cs_json_u64(j, "expires_unix_s", os.expires_unix_s);
	cs_json_array(j, "cms");
	for (size_t i = 0; i < os.n_cms; i++) {
		cs_json_str(j, NULL, os.cms[i]);
	}
	cs_json_end(j);
	cs_json_bytes(j, "firmware_sha256", os.firmware_sha256.data,
	    os.firmware_sha256.len);
	cs_json_bool(j, "firmware_held", os.firmware_held);
	cs_json_u64(j, "firmware_version", os.firmware_version);
	cs_json_bool(j, "firmware_withdrawn", os.firmware_withdrawn);
	cs_json_str(j, "target", os.target);
	cs_json_bool(j, "require_lock", os.require_lock);
	cs_json_u64(j, "unlocked", os.unlocked);
	cs_json_u64(j, "created_unix_s", os.created_unix_s);
	cs_json_close(j);
}

static void
station_json(struct cs_json *j, const StoredStation *s, bool full)
{
	cs_json_open(j, NULL);
	cs_json_str(j, "name", s->name);
	cs_json_str(j, "cm", s->cm);
	cs_json_bool(j, "enabled", s->enabled);
	if (full) {
		cs_json_u64(j, "enrolled_unix_s", s->enrolled_unix_s);
	}
	cs_json_u64(j, "last_seen_unix_s", s->last_seen_unix_s);
	cs_json_close(j);
}

/* Reply with one order. */
static void
reply_order(struct resp *r, const StoredOrder *o, uint16_t status,
    console *c)
{
	struct jbody b;

	if (jbody_begin(&b, r)) {
		order_json(&b.j, o, c);
		jbody_end(&b, r, status);
	}
}

static void
orders_json(struct cs_json *j, StoredOrder **list, size_t n, console *c)
{
	cs_json_array(j, "orders");
	for (size_t i = 0; i < n; i++) {
		order_json(j, list[i], c);
	}
	cs_json_end(j);
}

void
console_api_orders(console *c, const struct console_req *q, struct resp *r)
{
	StoredOrder **list = NULL;
	store_txn    *txn;
	struct jbody  b;
	size_t        n = 0;
	int           rv;

	(void)q;
	if (!console_read_begin(c, &txn, r)) {
		return;
	}
	rv = store_order_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot list orders (%s)", cs_strerror(rv));
		return;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		orders_json(&b.j, list, n, c);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_order_list_free(list, n);
}

void
console_api_order(console *c, const struct console_req *q, struct resp *r)
{
	const char  *id = q->arg;
	StoredOrder *o  = NULL;
	store_txn   *txn;
	int          rv;

	if (!store_id_ok(id, STORE_ORDER_ID_MAX)) {
		resp_error(r, 404, "no such order");
		return;
	}
	if (!console_read_begin(c, &txn, r)) {
		return;
	}
	rv = store_order_get(txn, id, &o);
	store_txn_abort(txn);
	if (rv == CS_ENOENT) {
		resp_error(r, 404, "no order %s", id);
		return;
	}
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot read the order (%s)", cs_strerror(rv));
		return;
	}
	reply_order(r, o, 200, c);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

void
console_api_stations(console *c, const struct console_req *q,
    struct resp *r)
{
	StoredStation **list = NULL;
	store_txn      *txn;
	struct jbody    b;
	size_t          n = 0;
	int             rv;

	(void)q;
	if (!console_read_begin(c, &txn, r)) {
		return;
	}
	rv = store_station_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		resp_error(r, 500, "cannot list stations (%s)", cs_strerror(rv));
		return;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_array(&b.j, "stations");
		for (size_t i = 0; i < n; i++) {
			station_json(&b.j, list[i], true);
		}
		cs_json_end(&b.j);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_station_list_free(list, n);
}

bool
console_overview_get(console *c, struct console_overview *v,
    struct resp *r)
{
	store_txn *txn;
	int        rv;

	memset(v, 0, sizeof(*v));
	if ((v->m = malloc(sizeof(*v->m))) == NULL) {
		resp_error(r, 500, "out of memory");
		return false;
	}
	pipeline_metrics_get(c->pl, v->m);
	if (!console_read_begin(c, &txn, r)) {
		console_overview_free(v);
		return false;
	}
	if ((rv = store_order_list(txn, &v->orders, &v->no)) != CS_OK ||
	    (rv = store_station_list(txn, &v->stations, &v->ns)) != CS_OK) {
		store_txn_abort(txn);
		console_overview_free(v);
		resp_error(r, 500, "cannot read the store (%s)", cs_strerror(rv));
		return false;
	}
	store_txn_abort(txn);
	return true;
}

void
console_overview_free(struct console_overview *v)
{
	store_order_list_free(v->orders, v->no);
	store_station_list_free(v->stations, v->ns);
	free(v->m);
	memset(v, 0, sizeof(*v));
}

void
console_api_dashboard(console *c, const struct console_req *q,
    struct resp *r)
{
	struct console_overview  v;
	struct pipeline_metrics *m;
	struct jbody             b;
	uint64_t                 minute = console_now_s() / 60u, clones = 0;

	(void)q;
	if (!console_overview_get(c, &v, r)) {
		return;
	}
	m = v.m;
	for (size_t i = 0; i < m->n_reasons; i++) {
		if (strcmp(m->refusals[i].reason, "clone") == 0) {
			clones = m->refusals[i].n;
		}
	}
	if (!jbody_begin(&b, r)) {
		goto out;
	}
	cs_json_open(&b.j, NULL);
	orders_json(&b.j, v.orders, v.no, c);
	/* the last 60 minutes, oldest first, the current one last */
	cs_json_array(&b.j, "rate");
	for (uint64_t k = PIPELINE_RATE_MINUTES; k-- > 0;) {
		uint64_t mi   = minute - k;
		size_t   slot = (size_t)(mi % PIPELINE_RATE_MINUTES);

		cs_json_open(&b.j, NULL);
		cs_json_u64(&b.j, "t", mi * 60u);
		cs_json_u64(&b.j, "n",
		    m->rate_minute[slot] == mi ? m->rate_n[slot] : 0);
		cs_json_close(&b.j);
	}
	cs_json_end(&b.j);
	cs_json_array(&b.j, "stations");
	for (size_t i = 0; i < v.ns; i++) {
		station_json(&b.j, v.stations[i], false);
	}
	cs_json_end(&b.j);
	cs_json_open(&b.j, "alerts");
	cs_json_u64(&b.j, "clones", clones);
	cs_json_open(&b.j, "refusals");
	for (size_t i = 0; i < m->n_reasons; i++) {
		cs_json_u64(&b.j, m->refusals[i].reason, m->refusals[i].n);
	}
	cs_json_close(&b.j);
	cs_json_close(&b.j);
	cs_json_close(&b.j);
	jbody_end(&b, r, 200);
out:
	console_overview_free(&v);
}

/* Verify a stored record as a device would: against the order's key and
 * product.  "ok" or the verifier's reason. */
static const char *
device_verify(store_txn *txn, const StoredDevice *d, uint32_t *product)
{
	StoredOrder         *o = NULL;
	StoredKey           *k = NULL;
	struct cs_trust_key  tk;
	struct cs_verify_trust trust;
	uint8_t              pub[CS_P256_POINT_LEN];
	size_t               pub_len = 0;
	cs_alg               alg;
	cs_verify_result     vr;
	const char          *res;

	*product = 0;
	if (store_order_get(txn, d->order_id, &o) != CS_OK) {
		return "order-unknown";
	}
	*product = o->product_id;
	if (store_key_get(txn, o->key_label, &k) != CS_OK) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return "key-unknown";
	}
	if (k->key_id.len != CS_KEY_ID_LEN ||
	    cs_spki_decode(k->public_key_der.data, k->public_key_der.len,
	        &alg, pub, &pub_len) != CS_OK) {
		res = "key-unusable";
		goto out;
	}
	memset(&tk, 0, sizeof(tk));
	tk.alg     = (uint8_t)alg;
	tk.key_id  = k->key_id.data;
	tk.pub     = pub;
	tk.pub_len = pub_len;
	memset(&trust, 0, sizeof(trust));
	trust.keys            = &tk;
	trust.n_keys          = 1;
	trust.product_id      = o->product_id;
	trust.firmware_digest = o->firmware_sha256.len == CS_SHA256_LEN
	    ? o->firmware_sha256.data
	    : NULL;
	vr  = cs_verify_record(d->record.data, d->record.len, d->uid.data,
	    d->uid.len, &trust, NULL);
	res = CS_VERIFY_AUTHORIZED(vr) ? "ok" : cs_verify_name(vr);
out:
	countersign__v1__stored_key__free_unpacked(k, NULL);
	countersign__v1__stored_order__free_unpacked(o, NULL);
	return res;
}

void
console_api_devices(console *c, const struct console_req *q,
    struct resp *r)
{
	StoredDevice **list = NULL;
	store_txn     *txn;
	struct jbody   b;
	char           hex[QUERY_VALUE_MAX];
	uint8_t        uid[STORE_UID_MAX];
	size_t         uid_len = 0, n = 0;
	bool           bad     = false;
	int            rv;

	if (!console_query_get(q->query, "uid", hex, sizeof(hex), &bad) ||
	    cs_hex_decode(hex, uid, sizeof(uid), &uid_len) != CS_OK) {
		resp_error(r, 400, "give uid=HEX: the device UID, %u..%u bytes "
		    "in hex", STORE_UID_MIN, STORE_UID_MAX);
		return;
	}
	if (!console_read_begin(c, &txn, r)) {
		return;
	}
	rv = store_device_find(txn, uid, uid_len, &list, &n);
	if (rv != CS_OK && rv != CS_ENOENT) {
		store_txn_abort(txn);
		resp_error(r, 500, "cannot read devices (%s)", cs_strerror(rv));
		return;
	}
	if (rv == CS_ENOENT) {
		n = 0;
	}
	if (jbody_begin(&b, r)) {
		cs_json_open(&b.j, NULL);
		cs_json_array(&b.j, "devices");
		for (size_t i = 0; i < n; i++) {
			const StoredDevice *d = list[i];
			uint32_t            product;
			const char         *v = device_verify(txn, d, &product);

			cs_json_open(&b.j, NULL);
			cs_json_bytes(&b.j, "uid", d->uid.data, d->uid.len);
			cs_json_str(&b.j, "order_id", d->order_id);
			cs_json_u64(&b.j, "product_id", product);
			cs_json_str(&b.j, "station", d->station);
			cs_json_u64(&b.j, "serial", d->serial);
			cs_json_u64(&b.j, "issued_unix_s", d->issued_unix_s);
			cs_json_str(&b.j, "state", d->state);
			cs_json_str(&b.j, "lock", d->lock);
			cs_json_bool(&b.j, "firmware_checked",
			    d->firmware_checked);
			cs_json_bytes(&b.j, "record", d->record.data,
			    d->record.len);
			cs_json_str(&b.j, "verify", v);
			cs_json_close(&b.j);
		}
		cs_json_end(&b.j);
		cs_json_close(&b.j);
		jbody_end(&b, r, 200);
	}
	store_txn_abort(txn);
	store_device_list_free(list, n);
}

/* The answer to a change of an order: the order as it now is, or the
 * refusal of admin_core (audited). */
static void
order_changed(console *c, const struct console_req *q, int rv,
    StoredOrder *out, const char *msg, uint16_t status, struct resp *r)
{
	if (rv != CS_OK) {
		console_change_failed(c, q, rv, msg, r);
		return;
	}
	reply_order(r, out, status, c);
	countersign__v1__stored_order__free_unpacked(out, NULL);
}

void
console_api_order_create(console *c, const struct console_req *q,
    struct resp *r)
{
	static const char *const names[] = {"order_id", "product_id",
	    "key_label", "quota", "uid_len", "cms", "expires_unix_s",
	    "firmware_sha256", NULL};
	Countersign__V1__CreateOrderRequest in =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	const json_t *o   = q->body;
	const json_t *cms = json_object_get(o, "cms");
	const char   *bad = body_unknown(o, names), *fw;
	const char   *cm[BODY_ARRAY_MAX];
	size_t        n_cm = 0;
	StoredOrder  *out  = NULL;
	uint8_t       fwd[CS_SHA256_LEN];
	size_t        fwl = 0;
	uint64_t      product, quota, uid_len, expires;
	char          msg[512];
	int           rv;

	if (bad != NULL) {
		resp_error(r, 400, "unknown member \"%.64s\"", bad);
		return;
	}
	if (!body_uint(o, "product_id", UINT32_MAX, true, 0, &product, msg,
	        sizeof(msg)) ||
	    !body_uint(o, "quota", UINT32_MAX, true, 0, &quota, msg,
	        sizeof(msg)) ||
	    !body_uint(o, "uid_len", STORE_UID_MAX, true, 0, &uid_len, msg,
	        sizeof(msg)) ||
	    !body_uint(o, "expires_unix_s", UINT64_MAX, false, 0, &expires,
	        msg, sizeof(msg))) {
		resp_error(r, 400, "%s", msg);
		return;
	}
	if (body_str(o, "order_id") == NULL ||
	    body_str(o, "key_label") == NULL) {
		resp_error(r, 400, "\"order_id\" and \"key_label\" are required "
		    "strings");
		return;
	}
	if (cms != NULL && !json_is_array(cms) && !json_is_null(cms)) {
		resp_error(r, 400, "\"cms\" must be an array of CM names");
		return;
	}
	for (; json_is_array(cms) && n_cm < json_array_size(cms); n_cm++) {
		cm[n_cm] = json_string_value(json_array_get(cms, n_cm));
	}
	fw = body_str(o, "firmware_sha256");
	if (fw != NULL && fw[0] != '\0' &&
	    (cs_hex_decode(fw, fwd, sizeof(fwd), &fwl) != CS_OK ||
	        fwl != sizeof(fwd))) {
		resp_error(r, 400, "\"firmware_sha256\" must be 64 hex digits");
		return;
	}
	in.order_id             = (char *)body_str(o, "order_id");
	in.key_label            = (char *)body_str(o, "key_label");
	in.product_id           = (uint32_t)product;
	in.quota                = quota;
	in.uid_len              = (uint32_t)uid_len;
	in.expires_unix_s       = expires;
	in.n_cms                = n_cm;
	in.cms                  = n_cm > 0 ? (char **)cm : NULL;
	in.firmware_sha256.data = fwd;
	in.firmware_sha256.len  = fwl;
	rv = admin_order_create(c->st, q->who.actor, &in, &out, msg,
	    sizeof(msg));
	order_changed(c, q, rv, out, msg, 201, r);
}

void
console_api_order_quota(console *c, const struct console_req *q,
    struct resp *r)
{
	static const char *const names[] = {"delta", NULL};
	const json_t *d   = json_object_get(q->body, "delta");
	StoredOrder  *out = NULL;
	char          msg[512];
	int64_t       delta;
	int           rv;

	if (body_unknown(q->body, names) != NULL || !json_is_integer(d) ||
	    json_integer_value(d) == 0 ||
	    json_integer_value(d) > (json_int_t)UINT32_MAX ||
	    json_integer_value(d) < -(json_int_t)UINT32_MAX) {
		resp_error(r, 400, "send {\"delta\": N}: a non-zero change, "
		    "e.g. 100 or -20");
		return;
	}
	delta = (int64_t)json_integer_value(d);
	rv    = admin_order_quota(c->st, q->who.actor, q->arg, delta, &out,
	       msg, sizeof(msg));
	order_changed(c, q, rv, out, msg, 200, r);
}

void
console_api_order_close(console *c, const struct console_req *q,
    struct resp *r)
{
	StoredOrder *out = NULL;
	char         msg[512];
	int          rv;

	rv = admin_order_close(c->st, q->who.actor, q->arg, &out, msg,
	    sizeof(msg));
	order_changed(c, q, rv, out, msg, 200, r);
}

/* Enable or disable the station q->arg (q->action says which). */
static void
station_set_enabled(console *c, const struct console_req *q, bool enable,
    struct resp *r)
{
	StoredStation *s = NULL;
	struct jbody   b;
	char           msg[512];
	int            rv;

	rv = admin_station_set_enabled(c->st, c->ss, c->rev, q->who.actor,
	    q->arg, enable, &s, msg, sizeof(msg));
	if (rv != CS_OK) {
		console_change_failed(c, q, rv, msg, r);
		return;
	}
	if (jbody_begin(&b, r)) {
		station_json(&b.j, s, true);
		jbody_end(&b, r, 200);
	}
	countersign__v1__stored_station__free_unpacked(s, NULL);
}

void
console_api_station_enable(console *c, const struct console_req *q,
    struct resp *r)
{
	station_set_enabled(c, q, true, r);
}

void
console_api_station_disable(console *c, const struct console_req *q,
    struct resp *r)
{
	station_set_enabled(c, q, false, r);
}
