/*
 * admin_service.c - handlers of countersign.v1.Admin (admin_service.h).
 *
 * Who may call: the ipc socket's peer credentials, as the kernel reports
 * them (SO_PEERCRED, taken by cs_srv at accept), must be root or the
 * user the authority runs as.  The audit actor is "admin:<user>".
 */
#include "admin_service.h"

#include "admin_core.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "order_view.h"

#include <nng/nng.h>
#include <nng/transport/ipc/ipc.h>

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD "admin"

#define ACTOR_MAX 96u

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

/*
 * Is the caller allowed?  Fills actor.  Fails the call otherwise (and the
 * handler calls its closure with NULL).
 */
static bool
admin_peer(void *data, char *actor, size_t len)
{
	const struct cs_srv_peer *peer = cs_rpc_req_peer_info(data);
	uint64_t                  uid  = UINT64_MAX;
	struct passwd             pw, *res = NULL;
	char                      buf[1024];

	if (!peer->has_cred) {
		cs_rpc_req_fail(data, CS_EPERM, "the admin API is served on the "
		    "local ipc socket only");
		return false;
	}
	uid = peer->uid;
	if (uid != 0 && uid != (uint64_t)geteuid()) {
		cs_log_warn(LOG_MOD, "admin call refused uid=%" PRIu64, uid);
		cs_rpc_req_fail(data, CS_EPERM, "uid %" PRIu64 " may not "
		    "administer this authority: run countersign-admin as root "
		    "or as the authority's user (uid %u)", uid,
		    (unsigned)geteuid());
		return false;
	}
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL) {
		snprintf(actor, len, "admin:%s", pw.pw_name);
	} else {
		snprintf(actor, len, "admin:uid=%" PRIu64, uid);
	}
	return true;
}

/* Fail the call for a store error and say what it means. */
static void
store_fail(void *data, int rv)
{
	if (rv == CS_EEXHAUSTED) {
		cs_rpc_req_fail(data, rv, "the store is full: nothing was "
		    "changed; " STORE_FULL_TODO);
	} else {
		cs_rpc_req_fail(data, rv, "the store failed (%s): nothing was "
		    "changed; see the authority's log", cs_strerror(rv));
	}
}

static int
read_txn(struct admin_service *svc, void *data, store_txn **txn)
{
	int rv = store_txn_begin(svc->st, false, txn);

	if (rv != CS_OK) {
		store_fail(data, rv);
	}
	return rv;
}

static int
write_txn(struct admin_service *svc, void *data, store_txn **txn)
{
	int rv = store_txn_begin(svc->st, true, txn);

	if (rv != CS_OK) {
		store_fail(data, rv);
	}
	return rv;
}

/* Commit; on failure the call fails.  Returns rv. */
static int
commit(store_txn *txn, void *data)
{
	int rv = store_txn_commit(txn);

	if (rv != CS_OK) {
		store_fail(data, rv);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Orders                                                              */
/* ------------------------------------------------------------------ */

static void
reply_order(Countersign__V1__OrderReply_Closure closure, void *data,
    const StoredOrder *o)
{
	Countersign__V1__OrderReply  out = COUNTERSIGN__V1__ORDER_REPLY__INIT;
	Countersign__V1__OrderStatus os;

	order_view(&os, o);
	out.order = &os;
	closure(&out, data);
}

/* Report a failed change from admin_core: its message, its code. */
static void
core_fail(void *data, int rv, const char *msg)
{
	cs_rpc_req_fail(data, rv, "%s", msg);
}

static void
on_create_order(Countersign__V1__Admin_Service *base,
    const Countersign__V1__CreateOrderRequest *in,
    Countersign__V1__OrderReply_Closure closure, void *data)
{
	struct admin_service *svc = (struct admin_service *)base;
	StoredOrder          *o   = NULL;
	char                  actor[ACTOR_MAX], msg[512];
	int                   rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_order_create(svc->st, actor, in, &o, msg, sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	reply_order(closure, data, o);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

static void
on_list_orders(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ListOrdersRequest *in,
    Countersign__V1__ListOrdersReply_Closure closure, void *data)
{
	struct admin_service          *svc = (struct admin_service *)base;
	Countersign__V1__ListOrdersReply out =
	    COUNTERSIGN__V1__LIST_ORDERS_REPLY__INIT;
	Countersign__V1__OrderStatus    *views = NULL, **ptrs = NULL;
	StoredOrder                    **list  = NULL;
	store_txn                       *txn;
	char                             actor[ACTOR_MAX];
	size_t                           n = 0, i;
	int                              rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor)) ||
	    read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_order_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	if (n > 0 && ((views = calloc(n, sizeof(*views))) == NULL ||
	                 (ptrs = calloc(n, sizeof(*ptrs))) == NULL)) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
		goto out;
	}
	for (i = 0; i < n; i++) {
		order_view(&views[i], list[i]);
		ptrs[i] = &views[i];
	}
	out.n_orders = n;
	out.orders   = ptrs;
	closure(&out, data);
out:
	free(ptrs);
	free(views);
	store_order_list_free(list, n);
}

/* Read order id for a handler; fails the call when missing. */
static StoredOrder *
get_order(store_txn *txn, void *data, const char *order_id)
{
	StoredOrder *o = NULL;
	int          rv;

	if (!store_id_ok(order_id, STORE_ORDER_ID_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "an order id is required");
		return NULL;
	}
	rv = store_order_get(txn, order_id, &o);
	if (rv == CS_ENOENT) {
		cs_rpc_req_fail(data, CS_ENOENT, "no order %s (countersign-admin "
		    "order list)", order_id);
		return NULL;
	}
	if (rv != CS_OK) {
		store_fail(data, rv);
		return NULL;
	}
	return o;
}

static void
on_show_order(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ShowOrderRequest *in,
    Countersign__V1__OrderReply_Closure closure, void *data)
{
	struct admin_service *svc = (struct admin_service *)base;
	StoredOrder          *o;
	store_txn            *txn;
	char                  actor[ACTOR_MAX];

	if (!admin_peer(data, actor, sizeof(actor)) ||
	    read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	o = get_order(txn, data, in->order_id);
	store_txn_abort(txn);
	if (o == NULL) {
		closure(NULL, data);
		return;
	}
	reply_order(closure, data, o);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

static void
on_adjust_quota(Countersign__V1__Admin_Service *base,
    const Countersign__V1__AdjustQuotaRequest *in,
    Countersign__V1__OrderReply_Closure closure, void *data)
{
	struct admin_service *svc = (struct admin_service *)base;
	StoredOrder          *o   = NULL;
	char                  actor[ACTOR_MAX], msg[512];
	int                   rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_order_quota(svc->st, actor, in->order_id, in->delta, &o,
	    msg, sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	reply_order(closure, data, o);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

static void
on_close_order(Countersign__V1__Admin_Service *base,
    const Countersign__V1__CloseOrderRequest *in,
    Countersign__V1__OrderReply_Closure closure, void *data)
{
	struct admin_service *svc = (struct admin_service *)base;
	StoredOrder          *o   = NULL;
	char                  actor[ACTOR_MAX], msg[512];
	int                   rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_order_close(svc->st, actor, in->order_id, &o, msg,
	    sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	reply_order(closure, data, o);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

/* ------------------------------------------------------------------ */
/* Stations                                                            */
/* ------------------------------------------------------------------ */

static void
station_view(Countersign__V1__StationInfo *si, const StoredStation *s)
{
	countersign__v1__station_info__init(si);
	si->name             = s->name;
	si->cm               = s->cm;
	si->enabled          = s->enabled;
	si->enrolled_unix_s  = s->enrolled_unix_s;
	si->last_seen_unix_s = s->last_seen_unix_s;
	si->cert_sha256      = s->cert_sha256;
	si->public_key_der   = s->public_key_der;
}

static void
on_enroll_station(Countersign__V1__Admin_Service *base,
    const Countersign__V1__EnrollStationRequest *in,
    Countersign__V1__EnrollStationReply_Closure closure, void *data)
{
	struct admin_service *svc = (struct admin_service *)base;
	Countersign__V1__EnrollStationReply out =
	    COUNTERSIGN__V1__ENROLL_STATION_REPLY__INIT;
	Countersign__V1__StationInfo si;
	StoredStation                s    = COUNTERSIGN__V1__STORED_STATION__INIT;
	StoredStation               *prev = NULL;
	struct station_cert          cert;
	store_txn                   *txn  = NULL;
	char                         actor[ACTOR_MAX], err[256];
	char                         fp[2 * CS_SHA256_LEN + 1];
	unsigned                     days = in->days;
	int                          rv;

	memset(&cert, 0, sizeof(cert));
	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	if (!store_id_ok(in->name, STORE_NAME_MAX) ||
	    !store_id_ok(in->cm, STORE_NAME_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "station name and CM are 1..%u "
		    "printable characters without spaces", STORE_NAME_MAX);
		closure(NULL, data);
		return;
	}
	if (days == 0) {
		days = STATION_CERT_DAYS_DEFAULT;
	}
	if (days > STATION_CERT_DAYS_MAX) {
		cs_rpc_req_fail(data, CS_EINVAL, "a station certificate is valid "
		    "for at most %u days", STATION_CERT_DAYS_MAX);
		closure(NULL, data);
		return;
	}
	if (svc->ca == NULL) {
		cs_rpc_req_fail(data, CS_EPRECOND, "this authority has no station "
		    "CA: configure [hsm] and run countersign-admin ca init");
		closure(NULL, data);
		return;
	}
	/* Refuse a taken name before the HSM does any work. */
	if (read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_station_get(txn, in->name, &prev);
	store_txn_abort(txn);
	if (rv == CS_OK) {
		countersign__v1__stored_station__free_unpacked(prev, NULL);
		cs_rpc_req_fail(data, CS_EEXIST, "station %s is already enrolled; "
		    "enroll a replacement under a new name and disable this one",
		    in->name);
		closure(NULL, data);
		return;
	}
	err[0] = '\0';
	rv = station_ca_issue(svc->ca, (const char *)in->csr_pem.data,
	    in->csr_pem.len, in->name, in->cm, days, &cert, err, sizeof(err));
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv, "cannot issue a certificate: %s",
		    err[0] != '\0' ? err : cs_strerror(rv));
		closure(NULL, data);
		return;
	}
	s.name                = in->name;
	s.cm                  = in->cm;
	s.enabled             = true;
	s.enrolled_unix_s     = now_s();
	s.cert_sha256.data    = cert.cert_sha256;
	s.cert_sha256.len     = sizeof(cert.cert_sha256);
	s.public_key_der.data = cert.spki;
	s.public_key_der.len  = cert.spki_len;
	s.cert_serial.data    = cert.serial;
	s.cert_serial.len     = cert.serial_len;
	cs_hex_encode(cert.cert_sha256, sizeof(cert.cert_sha256), fp,
	    sizeof(fp));
	if (write_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		goto out;
	}
	rv = store_station_get(txn, in->name, &prev);
	if (rv == CS_OK) {
		countersign__v1__stored_station__free_unpacked(prev, NULL);
		cs_rpc_req_fail(data, CS_EEXIST, "station %s was enrolled "
		    "meanwhile", in->name);
		store_txn_abort(txn);
		closure(NULL, data);
		goto out;
	}
	{
		const char *kv[] = {"station", in->name, "cm", in->cm,
		    "cert_sha256", fp, NULL};

		if ((rv = store_station_put(txn, &s)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, "station.enrolled", kv,
		         NULL)) != CS_OK) {
			store_fail(data, rv);
			store_txn_abort(txn);
			closure(NULL, data);
			goto out;
		}
	}
	if (commit(txn, data) != CS_OK) {
		closure(NULL, data);
		goto out;
	}
	cs_log_info(LOG_MOD, "station enrolled station=%s cm=%s cert=%s by=%s",
	    in->name, in->cm, fp, actor);
	station_view(&si, &s);
	out.cert_pem.data = (uint8_t *)cert.cert_pem;
	out.cert_pem.len  = strlen(cert.cert_pem);
	out.station       = &si;
	closure(&out, data);
out:
	free(cert.cert_pem);
}

static void
on_list_stations(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ListStationsRequest *in,
    Countersign__V1__ListStationsReply_Closure closure, void *data)
{
	struct admin_service            *svc = (struct admin_service *)base;
	Countersign__V1__ListStationsReply out =
	    COUNTERSIGN__V1__LIST_STATIONS_REPLY__INIT;
	Countersign__V1__StationInfo      *views = NULL, **ptrs = NULL;
	StoredStation                    **list  = NULL;
	store_txn                         *txn;
	char                               actor[ACTOR_MAX];
	size_t                             n = 0, i;
	int                                rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor)) ||
	    read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_station_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	if (n > 0 && ((views = calloc(n, sizeof(*views))) == NULL ||
	                 (ptrs = calloc(n, sizeof(*ptrs))) == NULL)) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
		goto out;
	}
	for (i = 0; i < n; i++) {
		station_view(&views[i], list[i]);
		ptrs[i] = &views[i];
	}
	out.n_stations = n;
	out.stations   = ptrs;
	closure(&out, data);
out:
	free(ptrs);
	free(views);
	store_station_list_free(list, n);
}

static void
on_set_station_enabled(Countersign__V1__Admin_Service *base,
    const Countersign__V1__SetStationEnabledRequest *in,
    Countersign__V1__StationReply_Closure closure, void *data)
{
	struct admin_service        *svc = (struct admin_service *)base;
	Countersign__V1__StationReply out = COUNTERSIGN__V1__STATION_REPLY__INIT;
	Countersign__V1__StationInfo si;
	StoredStation               *s = NULL;
	char                         actor[ACTOR_MAX], msg[512];
	int                          rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_station_set_enabled(svc->st, svc->sessions, svc->rev,
	    actor,
	    in->name, in->enabled, &s, msg, sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	station_view(&si, s);
	out.station = &si;
	closure(&out, data);
	countersign__v1__stored_station__free_unpacked(s, NULL);
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static void
key_view(Countersign__V1__KeyInfo *ki, const StoredKey *k)
{
	countersign__v1__key_info__init(ki);
	ki->label          = k->label;
	ki->algorithm      = k->algorithm;
	ki->key_id         = k->key_id;
	ki->public_key_der = k->public_key_der;
}

static void
on_add_key(Countersign__V1__Admin_Service *base,
    const Countersign__V1__AddKeyRequest *in,
    Countersign__V1__KeyReply_Closure closure, void *data)
{
	struct admin_service    *svc = (struct admin_service *)base;
	Countersign__V1__KeyReply out = COUNTERSIGN__V1__KEY_REPLY__INIT;
	Countersign__V1__KeyInfo  ki;
	StoredKey                 k    = COUNTERSIGN__V1__STORED_KEY__INIT;
	StoredKey                *prev = NULL;
	struct cs_hsm_key         hk;
	store_txn                *txn;
	char                      actor[ACTOR_MAX], kid[2 * CS_KEY_ID_LEN + 1];
	int                       rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	if (!store_id_ok(in->label, STORE_NAME_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "a key label is required");
		closure(NULL, data);
		return;
	}
	if (svc->hsm == NULL) {
		cs_rpc_req_fail(data, CS_EPRECOND, "this authority has no HSM "
		    "configured ([hsm] in its configuration)");
		closure(NULL, data);
		return;
	}
	if ((rv = cs_hsm_key(svc->hsm, in->label, &hk)) != CS_OK) {
		cs_rpc_req_fail(data, rv, rv == CS_ENOENT
		        ? "no key pair labelled %s on the token; make it with "
		          "countersign-keytool keygen"
		        : "cannot read key %s from the HSM (see the authority's "
		          "log)",
		    in->label);
		closure(NULL, data);
		return;
	}
	k.label               = in->label;
	k.algorithm           = (char *)cs_alg_name(hk.alg);
	k.key_id.data         = hk.key_id;
	k.key_id.len          = CS_KEY_ID_LEN;
	k.public_key_der.data = hk.spki;
	k.public_key_der.len  = hk.spki_len;
	cs_hex_encode(hk.key_id, CS_KEY_ID_LEN, kid, sizeof(kid));
	if (write_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_key_get(txn, in->label, &prev);
	if (rv == CS_OK) {
		bool same = prev->key_id.len == CS_KEY_ID_LEN &&
		    memcmp(prev->key_id.data, hk.key_id, CS_KEY_ID_LEN) == 0;

		countersign__v1__stored_key__free_unpacked(prev, NULL);
		cs_rpc_req_fail(data, CS_EEXIST, same
		        ? "key %s is already registered"
		        : "a different key is registered as %s; keys are never "
		          "replaced: give the new key another label",
		    in->label);
		store_txn_abort(txn);
		closure(NULL, data);
		return;
	}
	{
		const char *kv[] = {"label", in->label, "algorithm", k.algorithm,
		    "key_id", kid, NULL};

		if ((rv = store_key_put(txn, &k)) != CS_OK ||
		    (rv = store_audit_append(txn, actor, "key.added", kv,
		         NULL)) != CS_OK) {
			store_fail(data, rv);
			store_txn_abort(txn);
			closure(NULL, data);
			return;
		}
	}
	if (commit(txn, data) != CS_OK) {
		closure(NULL, data);
		return;
	}
	pipeline_forget_key(svc->pipeline, in->label);
	cs_log_info(LOG_MOD, "key added label=%s key_id=%s by=%s", in->label,
	    kid, actor);
	key_view(&ki, &k);
	out.key = &ki;
	closure(&out, data);
}

static void
on_list_keys(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ListKeysRequest *in,
    Countersign__V1__ListKeysReply_Closure closure, void *data)
{
	struct admin_service        *svc = (struct admin_service *)base;
	Countersign__V1__ListKeysReply out =
	    COUNTERSIGN__V1__LIST_KEYS_REPLY__INIT;
	Countersign__V1__KeyInfo      *views = NULL, **ptrs = NULL;
	StoredKey                    **list  = NULL;
	store_txn                     *txn;
	char                           actor[ACTOR_MAX];
	size_t                         n = 0, i;
	int                            rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor)) ||
	    read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_key_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	if (n > 0 && ((views = calloc(n, sizeof(*views))) == NULL ||
	                 (ptrs = calloc(n, sizeof(*ptrs))) == NULL)) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
		goto out;
	}
	for (i = 0; i < n; i++) {
		key_view(&views[i], list[i]);
		ptrs[i] = &views[i];
	}
	out.n_keys = n;
	out.keys   = ptrs;
	closure(&out, data);
out:
	free(ptrs);
	free(views);
	store_key_list_free(list, n);
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */
/* ------------------------------------------------------------------ */

static void
on_show_device(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ShowDeviceRequest *in,
    Countersign__V1__DeviceReply_Closure closure, void *data)
{
	struct admin_service       *svc = (struct admin_service *)base;
	Countersign__V1__DeviceReply out = COUNTERSIGN__V1__DEVICE_REPLY__INIT;
	Countersign__V1__DeviceInfo *views = NULL, **ptrs = NULL;
	StoredDevice               **list = NULL, *one = NULL;
	store_txn                   *txn;
	char                         actor[ACTOR_MAX];
	size_t                       n = 0, i;
	int                          rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	if (in->uid.len < STORE_UID_MIN || in->uid.len > STORE_UID_MAX) {
		cs_rpc_req_fail(data, CS_EINVAL, "a UID has %u..%u bytes",
		    STORE_UID_MIN, STORE_UID_MAX);
		closure(NULL, data);
		return;
	}
	if (in->order_id[0] != '\0' &&
	    !store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "malformed order id");
		closure(NULL, data);
		return;
	}
	if (read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	if (in->order_id[0] != '\0') {
		rv = store_device_get(txn, in->order_id, in->uid.data,
		    in->uid.len, &one);
		if (rv == CS_OK) {
			list = &one;
			n    = 1;
		}
	} else {
		rv = store_device_find(txn, in->uid.data, in->uid.len, &list,
		    &n);
	}
	if (rv != CS_OK) {
		store_txn_abort(txn);
		if (rv == CS_ENOENT) {
			cs_rpc_req_fail(data, rv, "no record was issued for this "
			    "UID%s%s", in->order_id[0] != '\0' ? " in order " : "",
			    in->order_id);
		} else {
			store_fail(data, rv);
		}
		closure(NULL, data);
		return;
	}
	if ((views = calloc(n, sizeof(*views))) == NULL ||
	    (ptrs = calloc(n, sizeof(*ptrs))) == NULL) {
		store_txn_abort(txn);
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
		goto out;
	}
	for (i = 0; i < n; i++) {
		StoredOrder *o = NULL;

		countersign__v1__device_info__init(&views[i]);
		views[i].uid           = list[i]->uid;
		views[i].order_id      = list[i]->order_id;
		views[i].station       = list[i]->station;
		views[i].serial        = list[i]->serial;
		views[i].issued_unix_s = list[i]->issued_unix_s;
		views[i].record        = list[i]->record;
		views[i].state         = list[i]->state;
		if (store_order_get(txn, list[i]->order_id, &o) == CS_OK) {
			views[i].product_id = o->product_id;
			countersign__v1__stored_order__free_unpacked(o, NULL);
		}
		ptrs[i] = &views[i];
	}
	store_txn_abort(txn);
	out.n_devices = n;
	out.devices   = ptrs;
	closure(&out, data);
out:
	free(ptrs);
	free(views);
	if (one != NULL) {
		countersign__v1__stored_device__free_unpacked(one, NULL);
	} else {
		store_device_list_free(list, n);
	}
}

/* ------------------------------------------------------------------ */
/* Audit and statistics                                                */
/* ------------------------------------------------------------------ */

/* The wire form of stored events [0, n): arrays allocated in one go. */
struct audit_views {
	Countersign__V1__AuditEvent               *ev;
	Countersign__V1__AuditEvent              **ptrs;
	Countersign__V1__AuditEvent__FieldsEntry  *fe;
	Countersign__V1__AuditEvent__FieldsEntry **fptrs;
};

static int
audit_views(struct audit_views *v, StoredAuditEvent **ev, size_t n)
{
	size_t i, j, nf = 0, f = 0;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < n; i++) {
		nf += ev[i]->n_fields;
	}
	if ((v->ev = calloc(n + 1, sizeof(*v->ev))) == NULL ||
	    (v->ptrs = calloc(n + 1, sizeof(*v->ptrs))) == NULL ||
	    (v->fe = calloc(nf + 1, sizeof(*v->fe))) == NULL ||
	    (v->fptrs = calloc(nf + 1, sizeof(*v->fptrs))) == NULL) {
		return CS_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		Countersign__V1__AuditEvent *e = &v->ev[i];

		countersign__v1__audit_event__init(e);
		e->seq          = ev[i]->seq;
		e->time_unix_ms = ev[i]->time_unix_ms;
		e->actor        = ev[i]->actor;
		e->type         = ev[i]->type;
		e->prev_hash    = ev[i]->prev_hash;
		e->hash         = ev[i]->hash;
		e->n_fields     = ev[i]->n_fields;
		e->fields       = &v->fptrs[f];
		for (j = 0; j < ev[i]->n_fields; j++, f++) {
			countersign__v1__audit_event__fields_entry__init(
			    &v->fe[f]);
			v->fe[f].key   = ev[i]->fields[j]->key;
			v->fe[f].value = ev[i]->fields[j]->value;
			v->fptrs[f]    = &v->fe[f];
		}
		v->ptrs[i] = e;
	}
	return CS_OK;
}

static void
audit_views_free(struct audit_views *v)
{
	free(v->fptrs);
	free(v->fe);
	free(v->ptrs);
	free(v->ev);
}

static void
on_list_audit(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ListAuditRequest *in,
    Countersign__V1__ListAuditReply_Closure closure, void *data)
{
	struct admin_service           *svc = (struct admin_service *)base;
	Countersign__V1__ListAuditReply out =
	    COUNTERSIGN__V1__LIST_AUDIT_REPLY__INIT;
	struct audit_views              v;
	StoredAuditEvent              **ev = NULL;
	char                            actor[ACTOR_MAX];
	size_t                          n = 0, keep, total = 0;
	int                             rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = store_audit_list(svc->st, in->since_seq, in->limit, &ev, &n);
	if (rv != CS_OK) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	/* Keep one reply well under the client's limit; the caller pages on
	 * with since_seq. */
	for (keep = 0; keep < n; keep++) {
		total += protobuf_c_message_get_packed_size(&ev[keep]->base) + 8;
		if (total > ADMIN_AUDIT_REPLY_MAX && keep > 0) {
			break;
		}
	}
	if (audit_views(&v, ev, keep) != CS_OK) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
	} else {
		out.n_events = keep;
		out.events   = v.ptrs;
		closure(&out, data);
	}
	audit_views_free(&v);
	store_audit_list_free(ev, n);
}

static void
on_verify_audit(Countersign__V1__Admin_Service *base,
    const Countersign__V1__VerifyAuditRequest *in,
    Countersign__V1__VerifyAuditReply_Closure closure, void *data)
{
	struct admin_service            *svc = (struct admin_service *)base;
	Countersign__V1__VerifyAuditReply out =
	    COUNTERSIGN__V1__VERIFY_AUDIT_REPLY__INIT;
	char                              actor[ACTOR_MAX];
	uint64_t                          good = 0, bad = 0;
	int                               rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = store_audit_verify(svc->st, &good, &bad);
	if (rv != CS_OK && rv != CS_ECRYPTO) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	if (rv == CS_ECRYPTO) {
		cs_log_error(LOG_MOD, "audit chain broken first_bad=%" PRIu64
		    " verified_up_to=%" PRIu64, bad, good);
	}
	out.intact         = rv == CS_OK;
	out.verified_up_to = good;
	out.first_bad_seq  = bad;
	closure(&out, data);
}

static void
on_stats(Countersign__V1__Admin_Service *base,
    const Countersign__V1__StatsRequest *in,
    Countersign__V1__StatsReply_Closure closure, void *data)
{
	struct admin_service      *svc = (struct admin_service *)base;
	Countersign__V1__StatsReply out = COUNTERSIGN__V1__STATS_REPLY__INIT;
	struct pipeline_stats      ps;
	struct timespec            ts;
	char                       actor[ACTOR_MAX];

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	pipeline_stats_get(svc->pipeline, &ps);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	out.uptime_ms = (uint64_t)ts.tv_sec * 1000u +
	    (uint64_t)ts.tv_nsec / 1000000u - svc->started_ms;
	out.records_issued       = ps.records_issued;
	out.records_reissued     = ps.records_reissued;
	out.refusals             = ps.refusals;
	out.commits              = ps.commits;
	out.commit_batch_max     = ps.commit_batch_max;
	out.hsm_signatures       = ps.hsm_signatures;
	out.hsm_errors           = ps.hsm_errors;
	out.signatures_discarded = ps.signatures_discarded;
	closure(&out, data);
}

static void
on_station_crl(Countersign__V1__Admin_Service *base,
    const Countersign__V1__StationCrlRequest *in,
    Countersign__V1__StationCrlReply_Closure closure, void *data)
{
	struct admin_service           *svc = (struct admin_service *)base;
	Countersign__V1__StationCrlReply out =
	    COUNTERSIGN__V1__STATION_CRL_REPLY__INIT;
	char                            actor[ACTOR_MAX];
	char                           *pem = NULL;
	int                             rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	if ((rv = revocation_crl_pem(svc->rev, &pem)) != CS_OK) {
		cs_rpc_req_fail(data, rv == CS_ENOENT ? CS_EPRECOND : rv,
		    rv == CS_ENOENT ? "this authority issues no CRL: it has no "
		    "station CA (configure [hsm] and run countersign-admin ca "
		    "init)" : "cannot read the CRL");
		closure(NULL, data);
		return;
	}
	out.pem = pem;
	closure(&out, data);
	free(pem);
}

/* ------------------------------------------------------------------ */
/* Admin tokens                                                        */
/* ------------------------------------------------------------------ */

static void
on_create_token(Countersign__V1__Admin_Service *base,
    const Countersign__V1__CreateTokenRequest *in,
    Countersign__V1__CreateTokenReply_Closure closure, void *data)
{
	struct admin_service            *svc = (struct admin_service *)base;
	Countersign__V1__CreateTokenReply out =
	    COUNTERSIGN__V1__CREATE_TOKEN_REPLY__INIT;
	char actor[ACTOR_MAX], msg[512], tok[ADMIN_TOKEN_HEX + 1];
	int  rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_token_create(svc->st, actor, in->name, in->role, tok, msg,
	    sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	out.token = tok;
	out.name  = in->name;
	out.role  = in->role;
	closure(&out, data);
	cs_wipe(tok, sizeof(tok));
}

static void
on_disable_token(Countersign__V1__Admin_Service *base,
    const Countersign__V1__DisableTokenRequest *in,
    Countersign__V1__DisableTokenReply_Closure closure, void *data)
{
	struct admin_service             *svc = (struct admin_service *)base;
	Countersign__V1__DisableTokenReply out =
	    COUNTERSIGN__V1__DISABLE_TOKEN_REPLY__INIT;
	char     actor[ACTOR_MAX], msg[512];
	unsigned n = 0;
	int      rv;

	if (!admin_peer(data, actor, sizeof(actor))) {
		closure(NULL, data);
		return;
	}
	rv = admin_token_disable(svc->st, actor, in->name, &n, msg,
	    sizeof(msg));
	if (rv != CS_OK) {
		core_fail(data, rv, msg);
		closure(NULL, data);
		return;
	}
	out.disabled = n;
	closure(&out, data);
}

static void
on_list_tokens(Countersign__V1__Admin_Service *base,
    const Countersign__V1__ListTokensRequest *in,
    Countersign__V1__ListTokensReply_Closure closure, void *data)
{
	struct admin_service           *svc = (struct admin_service *)base;
	Countersign__V1__ListTokensReply out =
	    COUNTERSIGN__V1__LIST_TOKENS_REPLY__INIT;
	Countersign__V1__TokenInfo      *views = NULL, **ptrs = NULL;
	StoredToken                    **list  = NULL;
	store_txn                       *txn;
	char                             actor[ACTOR_MAX];
	size_t                           n = 0, i;
	int                              rv;

	(void)in;
	if (!admin_peer(data, actor, sizeof(actor)) ||
	    read_txn(svc, data, &txn) != CS_OK) {
		closure(NULL, data);
		return;
	}
	rv = store_token_list(txn, &list, &n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		store_fail(data, rv);
		closure(NULL, data);
		return;
	}
	if (n > 0 && ((views = calloc(n, sizeof(*views))) == NULL ||
	                 (ptrs = calloc(n, sizeof(*ptrs))) == NULL)) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory");
		closure(NULL, data);
		goto out;
	}
	for (i = 0; i < n; i++) {
		countersign__v1__token_info__init(&views[i]);
		views[i].name           = list[i]->name;
		views[i].role           = list[i]->role;
		views[i].created_unix_s = list[i]->created_unix_s;
		views[i].disabled       = list[i]->disabled;
		ptrs[i]                 = &views[i];
	}
	out.n_tokens = n;
	out.tokens   = ptrs;
	closure(&out, data);
out:
	free(ptrs);
	free(views);
	store_token_list_free(list, n);
}

void
admin_service_init(struct admin_service *svc, store *st, cs_hsm *hsm,
    station_ca *ca, sessions *ss, pipeline *pl)
{
	struct timespec ts;

	countersign__v1__admin__init(&svc->base, NULL);
	svc->base.create_order        = on_create_order;
	svc->base.list_orders         = on_list_orders;
	svc->base.show_order          = on_show_order;
	svc->base.adjust_quota        = on_adjust_quota;
	svc->base.close_order         = on_close_order;
	svc->base.enroll_station      = on_enroll_station;
	svc->base.list_stations       = on_list_stations;
	svc->base.set_station_enabled = on_set_station_enabled;
	svc->base.add_key             = on_add_key;
	svc->base.list_keys           = on_list_keys;
	svc->base.show_device         = on_show_device;
	svc->base.list_audit          = on_list_audit;
	svc->base.verify_audit        = on_verify_audit;
	svc->base.stats               = on_stats;
	svc->base.station_crl         = on_station_crl;
	svc->base.disable_token       = on_disable_token;
	svc->base.create_token        = on_create_token;
	svc->base.list_tokens         = on_list_tokens;
	svc->st                       = st;
	svc->hsm                      = hsm;
	svc->ca                       = ca;
	svc->sessions                 = ss;
	svc->pipeline                 = pl;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	svc->started_ms =
	    (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
