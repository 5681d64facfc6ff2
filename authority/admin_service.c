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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD "admin"

#define ACTOR_MAX 96u

/* The wire form of stored events [0, n): arrays allocated in one go. */
struct audit_views {
	Countersign__V1__AuditEvent               *ev;
	Countersign__V1__AuditEvent              **ptrs;
	Countersign__V1__AuditEvent__FieldsEntry  *fe;
	Countersign__V1__AuditEvent__FieldsEntry **fptrs;
};

/*
 * One call of an Admin method.  Every handler has the same shape (see
 * ADMIN_HANDLER below): the caller's credentials are checked, the
 * method's run_<method> fills the reply or returns an error with msg
 * saying what was wrong and what to do, the reply (or the error) is sent,
 * and then what the reply pointed into, kept here, is freed.  So a run
 * function states only what its method does.
 */
struct admin_call {
	struct admin_service *svc;
	void                 *data; /* the cs_rpc request */
	char                  actor[ACTOR_MAX];
	char                  msg[512];
	store_txn            *txn;  /* a read transaction, ended at the end */
	/* What the reply points into. */
	ProtobufCMessage     *kept; /* one stored message */
	void                 *list; /* a store listing of n messages */
	size_t                n;
	void                 *views; /* the reply's views of the listing */
	void                **ptrs;
	union {
		Countersign__V1__OrderStatus order;
		Countersign__V1__StationInfo station;
		Countersign__V1__KeyInfo     key;
	} one;                       /* the reply's view of one record */
	struct audit_views   audit;
	struct station_cert  cert;   /* EnrollStation's new certificate */
	struct cs_hsm_key    hsm_key; /* AddKey's key */
	char                *text;   /* heap text, freed */
	char                 token[ADMIN_TOKEN_HEX + 1]; /* wiped */
};

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

static int
say(struct admin_call *c, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Say why the call fails; returns rv. */
static int
say(struct admin_call *c, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return rv;
}

/* The call fails for a store error: say what it means; returns rv. */
static int
store_said(struct admin_call *c, int rv)
{
	admin_store_msg(rv, c->msg, sizeof(c->msg));
	return rv;
}

/*
 * Is the caller allowed?  Fills actor; CS_EPERM (and msg) otherwise.
 */
static int
admin_peer(struct admin_call *c)
{
	const struct cs_srv_peer *peer = cs_rpc_req_peer_info(c->data);
	uint64_t                  uid  = UINT64_MAX;
	struct passwd             pw, *res = NULL;
	char                      buf[1024];

	if (!peer->has_cred) {
		return say(c, CS_EPERM, "the admin API is served on the local "
		    "ipc socket only");
	}
	uid = peer->uid;
	if (uid != 0 && uid != (uint64_t)geteuid()) {
		cs_log_warn(LOG_MOD, "admin call refused uid=%" PRIu64, uid);
		return say(c, CS_EPERM, "uid %" PRIu64 " may not administer "
		    "this authority: run countersign-admin as root or as the "
		    "authority's user (uid %u)", uid, (unsigned)geteuid());
	}
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL) {
		snprintf(c->actor, sizeof(c->actor), "admin:%s", pw.pw_name);
	} else {
		snprintf(c->actor, sizeof(c->actor), "admin:uid=%" PRIu64, uid);
	}
	return CS_OK;
}

/* Start a call: nothing kept yet; then check the caller. */
static int
admin_call_begin(struct admin_call *c, Countersign__V1__Admin_Service *base,
    void *data)
{
	memset(c, 0, sizeof(*c));
	c->svc  = (struct admin_service *)base;
	c->data = data;
	return admin_peer(c);
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
end_txn(struct admin_call *c)
{
	if (c->txn != NULL) {
		store_txn_abort(c->txn);
		c->txn = NULL;
	}
}

/*
 * End a call: send out (rv CS_OK) or fail it with msg, then free what
 * the reply pointed into.
 */
static void
admin_call_end(struct admin_call *c, int rv, const ProtobufCMessage *out,
    ProtobufCClosure closure)
{
	if (rv == CS_OK) {
		closure(out, c->data);
	} else {
		cs_rpc_req_fail(c->data, rv, "%s", c->msg);
		closure(NULL, c->data);
	}
	end_txn(c);
	if (c->kept != NULL) {
		protobuf_c_message_free_unpacked(c->kept, NULL);
	}
	store_list_free(c->list, c->n);
	free(c->ptrs);
	free(c->views);
	audit_views_free(&c->audit);
	free(c->cert.cert_pem);
	free(c->text);
	cs_wipe(c->token, sizeof(c->token));
}

static int
read_txn(struct admin_call *c)
{
	int rv = store_txn_begin(c->svc->st, false, &c->txn);

	if (rv != CS_OK) {
		c->txn = NULL;
		return store_said(c, rv);
	}
	return CS_OK;
}

/*
 * Store rec and its audit event (type, kv) in one write transaction,
 * unless exists finds a record under its name there already: then
 * CS_EEXIST and exists's message.  Returns CS_OK once committed.
 */
typedef int (*admin_exists_fn)(struct admin_call *c, store_txn *txn,
    const void *rec);
typedef int (*admin_put_fn)(store_txn *txn, const void *rec);

static int
put_new(struct admin_call *c, const void *rec, admin_exists_fn exists,
    admin_put_fn put, const char *type, const char *const *kv)
{
	store_txn *txn;
	int        rv;

	if ((rv = store_txn_begin(c->svc->st, true, &txn)) != CS_OK) {
		return store_said(c, rv);
	}
	if ((rv = exists(c, txn, rec)) != CS_OK) {
		store_txn_abort(txn);
		return rv;
	}
	if ((rv = put(txn, rec)) != CS_OK ||
	    (rv = store_audit_append(txn, c->actor, type, kv, NULL)) !=
	        CS_OK) {
		store_txn_abort(txn);
		return store_said(c, rv);
	}
	if ((rv = store_txn_commit(txn)) != CS_OK) {
		return store_said(c, rv);
	}
	return CS_OK;
}

/* The reply's n views, of size bytes each and zeroed, in c->ptrs. */
static int
make_views(struct admin_call *c, size_t n, size_t size)
{
	size_t i;

	if (n == 0) {
		return CS_OK;
	}
	if ((c->views = calloc(n, size)) == NULL ||
	    (c->ptrs = calloc(n, sizeof(*c->ptrs))) == NULL) {
		return say(c, CS_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		c->ptrs[i] = (char *)c->views + i * size;
	}
	return CS_OK;
}

/*
 * Keep list (n messages; rv says how the store's listing in c->txn went,
 * which ends here) and make the reply's views of it, size bytes each.
 */
static int
listed(struct admin_call *c, int rv, void *list, size_t n, size_t size)
{
	end_txn(c);
	c->list = list;
	c->n    = n;
	if (rv != CS_OK) {
		return store_said(c, rv);
	}
	return make_views(c, n, size);
}

/* ------------------------------------------------------------------ */
/* Orders                                                              */
/* ------------------------------------------------------------------ */

/* The firmware fields of the views os[0..n), read in a transaction of
 * their own. */
static int
view_firmware(struct admin_call *c, Countersign__V1__OrderStatus **os,
    size_t n)
{
	store_txn *txn;
	size_t     i;
	int        rv;

	if ((rv = store_txn_begin(c->svc->st, false, &txn)) != CS_OK) {
		return store_said(c, rv);
	}
	for (i = 0; i < n && rv == CS_OK; i++) {
		rv = order_view_firmware(os[i], txn);
	}
	store_txn_abort(txn);
	return rv != CS_OK ? store_said(c, rv) : CS_OK;
}

/* The reply's view of stored order o, which is kept for it. */
static int
show_order(struct admin_call *c, StoredOrder *o,
    Countersign__V1__OrderStatus **dst)
{
	Countersign__V1__OrderStatus *os = &c->one.order;

	c->kept = &o->base;
	order_view(os, o);
	*dst = os;
	return view_firmware(c, &os, 1);
}

static int
run_create_order(struct admin_call *c,
    const Countersign__V1__CreateOrderRequest *in,
    Countersign__V1__OrderReply *out)
{
	StoredOrder *o = NULL;
	int          rv;

	if ((rv = admin_order_create_fw(c->svc->st, c->svc->fw, c->actor, in,
	         &o, c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	return show_order(c, o, &out->order);
}

static int
run_set_order_firmware(struct admin_call *c,
    const Countersign__V1__SetOrderFirmwareRequest *in,
    Countersign__V1__OrderReply *out)
{
	StoredOrder *o = NULL;
	int          rv;

	if ((rv = admin_order_firmware(c->svc->st, c->svc->fw, c->actor, in,
	         &o, c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	return show_order(c, o, &out->order);
}

static int
run_list_orders(struct admin_call *c,
    const Countersign__V1__ListOrdersRequest *in,
    Countersign__V1__ListOrdersReply *out)
{
	StoredOrder **list = NULL;
	size_t        n    = 0, i;
	int           rv;

	(void)in;
	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	rv = store_order_list(c->txn, &list, &n);
	if ((rv = listed(c, rv, list, n, sizeof(**out->orders))) != CS_OK) {
		return rv;
	}
	out->n_orders = n;
	out->orders   = (Countersign__V1__OrderStatus **)c->ptrs;
	for (i = 0; i < n; i++) {
		order_view(out->orders[i], list[i]);
	}
	return view_firmware(c, out->orders, n);
}

static int
run_show_order(struct admin_call *c,
    const Countersign__V1__ShowOrderRequest *in,
    Countersign__V1__OrderReply *out)
{
	StoredOrder *o = NULL;
	int          rv;

	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	if (!store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		return say(c, CS_EINVAL, "an order id is required");
	}
	rv = store_order_get(c->txn, in->order_id, &o);
	if (rv == CS_ENOENT) {
		return say(c, rv, "no order %s (countersign-admin order list)",
		    in->order_id);
	}
	if (rv != CS_OK) {
		return store_said(c, rv);
	}
	end_txn(c);
	return show_order(c, o, &out->order);
}

static int
run_adjust_quota(struct admin_call *c,
    const Countersign__V1__AdjustQuotaRequest *in,
    Countersign__V1__OrderReply *out)
{
	StoredOrder *o = NULL;
	int          rv;

	if ((rv = admin_order_quota(c->svc->st, c->actor, in->order_id,
	         in->delta, &o, c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	return show_order(c, o, &out->order);
}

static int
run_close_order(struct admin_call *c,
    const Countersign__V1__CloseOrderRequest *in,
    Countersign__V1__OrderReply *out)
{
	StoredOrder *o = NULL;
	int          rv;

	if ((rv = admin_order_close(c->svc->st, c->actor, in->order_id, &o,
	         c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	return show_order(c, o, &out->order);
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

/* put_new's check for EnrollStation: the name was taken meanwhile. */
static int
station_exists(struct admin_call *c, store_txn *txn, const void *rec)
{
	const StoredStation *s    = rec;
	StoredStation       *prev = NULL;

	if (store_station_get(txn, s->name, &prev) != CS_OK) {
		return CS_OK;
	}
	countersign__v1__stored_station__free_unpacked(prev, NULL);
	return say(c, CS_EEXIST, "station %s was enrolled meanwhile",
	    s->name);
}

static int
station_put(store_txn *txn, const void *rec)
{
	return store_station_put(txn, rec);
}

/* Refuse a taken station name (before the HSM does any work). */
static int
station_name_free(struct admin_call *c, const char *name)
{
	StoredStation *prev = NULL;
	int            rv;

	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	rv = store_station_get(c->txn, name, &prev);
	end_txn(c);
	if (rv != CS_OK) {
		return CS_OK;
	}
	countersign__v1__stored_station__free_unpacked(prev, NULL);
	return say(c, CS_EEXIST, "station %s is already enrolled; enroll a "
	    "replacement under a new name and disable this one", name);
}

static int
run_enroll_station(struct admin_call *c,
    const Countersign__V1__EnrollStationRequest *in,
    Countersign__V1__EnrollStationReply *out)
{
	struct station_cert *cert = &c->cert;
	StoredStation        s    = COUNTERSIGN__V1__STORED_STATION__INIT;
	char                 err[256], fp[2 * CS_SHA256_LEN + 1];
	unsigned             days = in->days;
	int                  rv;

	if (!store_id_ok(in->name, STORE_NAME_MAX) ||
	    !store_id_ok(in->cm, STORE_NAME_MAX)) {
		return say(c, CS_EINVAL, "station name and CM are 1..%u "
		    "printable characters without spaces", STORE_NAME_MAX);
	}
	if (days == 0) {
		days = STATION_CERT_DAYS_DEFAULT;
	}
	if (days > STATION_CERT_DAYS_MAX) {
		return say(c, CS_EINVAL, "a station certificate is valid for "
		    "at most %u days", STATION_CERT_DAYS_MAX);
	}
	if (c->svc->ca == NULL) {
		return say(c, CS_EPRECOND, "this authority has no station CA: "
		    "configure [hsm] and run countersign-admin ca init");
	}
	if ((rv = station_name_free(c, in->name)) != CS_OK) {
		return rv;
	}
	err[0] = '\0';
	rv = station_ca_issue(c->svc->ca, (const char *)in->csr_pem.data,
	    in->csr_pem.len, in->name, in->cm, days, cert, err, sizeof(err));
	if (rv != CS_OK) {
		return say(c, rv, "cannot issue a certificate: %s",
		    err[0] != '\0' ? err : cs_strerror(rv));
	}
	s.name                = in->name;
	s.cm                  = in->cm;
	s.enabled             = true;
	s.enrolled_unix_s     = now_s();
	s.cert_sha256.data    = cert->cert_sha256;
	s.cert_sha256.len     = sizeof(cert->cert_sha256);
	s.public_key_der.data = cert->spki;
	s.public_key_der.len  = cert->spki_len;
	s.cert_serial.data    = cert->serial;
	s.cert_serial.len     = cert->serial_len;
	cs_hex_encode(cert->cert_sha256, sizeof(cert->cert_sha256), fp,
	    sizeof(fp));
	{
		const char *kv[] = {"station", in->name, "cm", in->cm,
		    "cert_sha256", fp, NULL};

		if ((rv = put_new(c, &s, station_exists, station_put,
		         "station.enrolled", kv)) != CS_OK) {
			return rv;
		}
	}
	cs_log_info(LOG_MOD, "station enrolled station=%s cm=%s cert=%s by=%s",
	    in->name, in->cm, fp, c->actor);
	station_view(&c->one.station, &s);
	out->cert_pem.data = (uint8_t *)cert->cert_pem;
	out->cert_pem.len  = strlen(cert->cert_pem);
	out->station       = &c->one.station;
	return CS_OK;
}

static int
run_list_stations(struct admin_call *c,
    const Countersign__V1__ListStationsRequest *in,
    Countersign__V1__ListStationsReply *out)
{
	StoredStation **list = NULL;
	size_t          n    = 0, i;
	int             rv;

	(void)in;
	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	rv = store_station_list(c->txn, &list, &n);
	if ((rv = listed(c, rv, list, n, sizeof(**out->stations))) != CS_OK) {
		return rv;
	}
	out->n_stations = n;
	out->stations   = (Countersign__V1__StationInfo **)c->ptrs;
	for (i = 0; i < n; i++) {
		station_view(out->stations[i], list[i]);
	}
	return CS_OK;
}

static int
run_set_station_enabled(struct admin_call *c,
    const Countersign__V1__SetStationEnabledRequest *in,
    Countersign__V1__StationReply *out)
{
	StoredStation *s = NULL;
	int            rv;

	if ((rv = admin_station_set_enabled(c->svc->st, c->svc->sessions,
	         c->svc->rev, c->actor, in->name, in->enabled, &s, c->msg,
	         sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	c->kept = &s->base;
	station_view(&c->one.station, s);
	out->station = &c->one.station;
	return CS_OK;
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

/* put_new's check for AddKey: keys are never replaced. */
static int
key_exists(struct admin_call *c, store_txn *txn, const void *rec)
{
	const StoredKey *k    = rec;
	StoredKey       *prev = NULL;
	bool             same;

	if (store_key_get(txn, k->label, &prev) != CS_OK) {
		return CS_OK;
	}
	same = prev->key_id.len == CS_KEY_ID_LEN &&
	    memcmp(prev->key_id.data, k->key_id.data, CS_KEY_ID_LEN) == 0;
	countersign__v1__stored_key__free_unpacked(prev, NULL);
	return say(c, CS_EEXIST, same
	        ? "key %s is already registered"
	        : "a different key is registered as %s; keys are never "
	          "replaced: give the new key another label",
	    k->label);
}

static int
key_put(store_txn *txn, const void *rec)
{
	return store_key_put(txn, rec);
}

static int
run_add_key(struct admin_call *c, const Countersign__V1__AddKeyRequest *in,
    Countersign__V1__KeyReply *out)
{
	struct cs_hsm_key *hk = &c->hsm_key;
	StoredKey          k  = COUNTERSIGN__V1__STORED_KEY__INIT;
	char               kid[2 * CS_KEY_ID_LEN + 1];
	int                rv;

	if (!store_id_ok(in->label, STORE_NAME_MAX)) {
		return say(c, CS_EINVAL, "a key label is required");
	}
	if (c->svc->hsm == NULL) {
		return say(c, CS_EPRECOND, "this authority has no HSM "
		    "configured ([hsm] in its configuration)");
	}
	if ((rv = cs_hsm_key(c->svc->hsm, in->label, hk)) != CS_OK) {
		return say(c, rv, rv == CS_ENOENT
		        ? "no key pair labelled %s on the token; make it with "
		          "countersign-keytool keygen"
		        : "cannot read key %s from the HSM (see the authority's "
		          "log)",
		    in->label);
	}
	k.label               = in->label;
	k.algorithm           = (char *)cs_alg_name(hk->alg);
	k.key_id.data         = hk->key_id;
	k.key_id.len          = CS_KEY_ID_LEN;
	k.public_key_der.data = hk->spki;
	k.public_key_der.len  = hk->spki_len;
	cs_hex_encode(hk->key_id, CS_KEY_ID_LEN, kid, sizeof(kid));
	{
		const char *kv[] = {"label", in->label, "algorithm", k.algorithm,
		    "key_id", kid, NULL};

		if ((rv = put_new(c, &k, key_exists, key_put, "key.added",
		         kv)) != CS_OK) {
			return rv;
		}
	}
	pipeline_forget_key(c->svc->pipeline, in->label);
	cs_log_info(LOG_MOD, "key added label=%s key_id=%s by=%s", in->label,
	    kid, c->actor);
	key_view(&c->one.key, &k);
	out->key = &c->one.key;
	return CS_OK;
}

static int
run_list_keys(struct admin_call *c, const Countersign__V1__ListKeysRequest *in,
    Countersign__V1__ListKeysReply *out)
{
	StoredKey **list = NULL;
	size_t      n    = 0, i;
	int         rv;

	(void)in;
	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	rv = store_key_list(c->txn, &list, &n);
	if ((rv = listed(c, rv, list, n, sizeof(**out->keys))) != CS_OK) {
		return rv;
	}
	out->n_keys = n;
	out->keys   = (Countersign__V1__KeyInfo **)c->ptrs;
	for (i = 0; i < n; i++) {
		key_view(out->keys[i], list[i]);
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Devices                                                             */
/* ------------------------------------------------------------------ */

static void
device_view(Countersign__V1__DeviceInfo *di, const StoredDevice *d,
    store_txn *txn)
{
	StoredOrder *o = NULL;

	countersign__v1__device_info__init(di);
	di->uid           = d->uid;
	di->order_id      = d->order_id;
	di->station       = d->station;
	di->serial        = d->serial;
	di->issued_unix_s = d->issued_unix_s;
	di->record        = d->record;
	di->state         = d->state;
	di->lock             = d->lock;
	di->firmware_checked = d->firmware_checked;
	if (store_order_get(txn, d->order_id, &o) == CS_OK) {
		di->product_id = o->product_id;
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
}

static int
run_show_device(struct admin_call *c,
    const Countersign__V1__ShowDeviceRequest *in,
    Countersign__V1__DeviceReply *out)
{
	StoredDevice **list = NULL, *one = NULL;
	size_t         n    = 0, i;
	int            rv;

	if (in->uid.len < STORE_UID_MIN || in->uid.len > STORE_UID_MAX) {
		return say(c, CS_EINVAL, "a UID has %u..%u bytes",
		    STORE_UID_MIN, STORE_UID_MAX);
	}
	if (in->order_id[0] != '\0' &&
	    !store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		return say(c, CS_EINVAL, "malformed order id");
	}
	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	if (in->order_id[0] != '\0') {
		rv = store_device_get(c->txn, in->order_id, in->uid.data,
		    in->uid.len, &one);
		if (rv == CS_OK) {
			c->kept = &one->base;
			list    = &one;
			n       = 1;
		}
	} else {
		rv = store_device_find(c->txn, in->uid.data, in->uid.len, &list,
		    &n);
		c->list = list;
		c->n    = n;
	}
	if (rv == CS_ENOENT) {
		return say(c, rv, "no record was issued for this UID%s%s",
		    in->order_id[0] != '\0' ? " in order " : "", in->order_id);
	}
	if (rv != CS_OK) {
		return store_said(c, rv);
	}
	if ((rv = make_views(c, n, sizeof(**out->devices))) != CS_OK) {
		return rv;
	}
	out->n_devices = n;
	out->devices   = (Countersign__V1__DeviceInfo **)c->ptrs;
	for (i = 0; i < n; i++) {
		device_view(out->devices[i], list[i], c->txn);
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Audit and statistics                                                */
/* ------------------------------------------------------------------ */

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

static int
run_list_audit(struct admin_call *c,
    const Countersign__V1__ListAuditRequest *in,
    Countersign__V1__ListAuditReply *out)
{
	StoredAuditEvent **ev = NULL;
	size_t             n  = 0, keep, total = 0;
	int                rv;

	rv      = store_audit_list(c->svc->st, in->since_seq, in->limit, &ev, &n);
	c->list = ev;
	c->n    = n;
	if (rv != CS_OK) {
		return store_said(c, rv);
	}
	/* Keep one reply well under the client's limit; the caller pages on
	 * with since_seq. */
	for (keep = 0; keep < n; keep++) {
		total += protobuf_c_message_get_packed_size(&ev[keep]->base) + 8;
		if (total > ADMIN_AUDIT_REPLY_MAX && keep > 0) {
			break;
		}
	}
	if (audit_views(&c->audit, ev, keep) != CS_OK) {
		return say(c, CS_ENOMEM, "out of memory");
	}
	out->n_events = keep;
	out->events   = c->audit.ptrs;
	return CS_OK;
}

static int
run_verify_audit(struct admin_call *c,
    const Countersign__V1__VerifyAuditRequest *in,
    Countersign__V1__VerifyAuditReply *out)
{
	uint64_t good = 0, bad = 0;
	int      rv;

	(void)in;
	rv = store_audit_verify(c->svc->st, &good, &bad);
	if (rv != CS_OK && rv != CS_ECRYPTO) {
		return store_said(c, rv);
	}
	if (rv == CS_ECRYPTO) {
		cs_log_error(LOG_MOD, "audit chain broken first_bad=%" PRIu64
		    " verified_up_to=%" PRIu64, bad, good);
	}
	out->intact         = rv == CS_OK;
	out->verified_up_to = good;
	out->first_bad_seq  = bad;
	return CS_OK;
}

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
run_stats(struct admin_call *c, const Countersign__V1__StatsRequest *in,
    Countersign__V1__StatsReply *out)
{
	struct pipeline_stats ps;

	(void)in;
	pipeline_stats_get(c->svc->pipeline, &ps);
	out->uptime_ms            = monotonic_ms() - c->svc->started_ms;
	out->records_issued       = ps.records_issued;
	out->records_reissued     = ps.records_reissued;
	out->refusals             = ps.refusals;
	out->commits              = ps.commits;
	out->commit_batch_max     = ps.commit_batch_max;
	out->hsm_signatures       = ps.hsm_signatures;
	out->hsm_errors           = ps.hsm_errors;
	out->signatures_discarded = ps.signatures_discarded;
	out->sessions_held        = sessions_held(c->svc->sessions);
	return CS_OK;
}

static int
run_station_crl(struct admin_call *c,
    const Countersign__V1__StationCrlRequest *in,
    Countersign__V1__StationCrlReply *out)
{
	int rv;

	(void)in;
	if ((rv = revocation_crl_pem(c->svc->rev, &c->text)) == CS_ENOENT) {
		return say(c, CS_EPRECOND, "this authority issues no CRL: it has "
		    "no station CA (configure [hsm] and run countersign-admin "
		    "ca init)");
	}
	if (rv != CS_OK) {
		return say(c, rv, "cannot read the CRL");
	}
	out->pem = c->text;
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* Admin tokens                                                        */
/* ------------------------------------------------------------------ */

static int
run_create_token(struct admin_call *c,
    const Countersign__V1__CreateTokenRequest *in,
    Countersign__V1__CreateTokenReply *out)
{
	int rv;

	if ((rv = admin_token_create(c->svc->st, c->actor, in->name, in->role,
	         c->token, c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	out->token = c->token;
	out->name  = in->name;
	out->role  = in->role;
	return CS_OK;
}

static int
run_disable_token(struct admin_call *c,
    const Countersign__V1__DisableTokenRequest *in,
    Countersign__V1__DisableTokenReply *out)
{
	unsigned n = 0;
	int      rv;

	if ((rv = admin_token_disable(c->svc->st, c->actor, in->name, &n,
	         c->msg, sizeof(c->msg))) != CS_OK) {
		return rv;
	}
	out->disabled = n;
	return CS_OK;
}

static int
run_list_tokens(struct admin_call *c,
    const Countersign__V1__ListTokensRequest *in,
    Countersign__V1__ListTokensReply *out)
{
	StoredToken **list = NULL;
	size_t        n    = 0, i;
	int           rv;

	(void)in;
	if ((rv = read_txn(c)) != CS_OK) {
		return rv;
	}
	rv = store_token_list(c->txn, &list, &n);
	if ((rv = listed(c, rv, list, n, sizeof(**out->tokens))) != CS_OK) {
		return rv;
	}
	out->n_tokens = n;
	out->tokens   = (Countersign__V1__TokenInfo **)c->ptrs;
	for (i = 0; i < n; i++) {
		Countersign__V1__TokenInfo *ti = out->tokens[i];

		countersign__v1__token_info__init(ti);
		ti->name           = list[i]->name;
		ti->role           = list[i]->role;
		ti->created_unix_s = list[i]->created_unix_s;
		ti->disabled       = list[i]->disabled;
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* The handlers                                                        */
/* ------------------------------------------------------------------ */

/*
 * The methods of countersign.v1.Admin: the generated name of the handler
 * (and of its run_ function), request and reply types, and the reply's
 * lower-case name.  One list makes every handler and admin_service_init's
 * table, in the way libuv makes its error enum from one list.
 */
#define ADMIN_METHODS(X)                                                      \
	X(create_order, CreateOrderRequest, OrderReply, order_reply)          \
	X(list_orders, ListOrdersRequest, ListOrdersReply, list_orders_reply) \
	X(show_order, ShowOrderRequest, OrderReply, order_reply)              \
	X(adjust_quota, AdjustQuotaRequest, OrderReply, order_reply)          \
	X(close_order, CloseOrderRequest, OrderReply, order_reply)            \
	X(set_order_firmware, SetOrderFirmwareRequest, OrderReply,            \
	    order_reply)                                                      \
	X(enroll_station, EnrollStationRequest, EnrollStationReply,           \
	    enroll_station_reply)                                             \
	X(list_stations, ListStationsRequest, ListStationsReply,              \
	    list_stations_reply)                                              \
	X(set_station_enabled, SetStationEnabledRequest, StationReply,        \
	    station_reply)                                                    \
	X(add_key, AddKeyRequest, KeyReply, key_reply)                        \
	X(list_keys, ListKeysRequest, ListKeysReply, list_keys_reply)         \
	X(show_device, ShowDeviceRequest, DeviceReply, device_reply)          \
	X(list_audit, ListAuditRequest, ListAuditReply, list_audit_reply)     \
	X(verify_audit, VerifyAuditRequest, VerifyAuditReply,                 \
	    verify_audit_reply)                                               \
	X(stats, StatsRequest, StatsReply, stats_reply)                       \
	X(station_crl, StationCrlRequest, StationCrlReply, station_crl_reply) \
	X(disable_token, DisableTokenRequest, DisableTokenReply,              \
	    disable_token_reply)                                              \
	X(create_token, CreateTokenRequest, CreateTokenReply,                 \
	    create_token_reply)                                               \
	X(list_tokens, ListTokensRequest, ListTokensReply, list_tokens_reply)

/*
 * The one handler shape.  The closure is the generic one cs_rpc passed
 * to the service's invoke, which protobuf-c cast to the typed one; it is
 * cast back to what it is.
 */
#define ADMIN_HANDLER(m, Req, Rep, rep)                                       \
	static void                                                           \
	on_##m(Countersign__V1__Admin_Service *base,                          \
	    const Countersign__V1__##Req *in,                                 \
	    Countersign__V1__##Rep##_Closure closure, void *data)             \
	{                                                                     \
		struct admin_call      c;                                     \
		Countersign__V1__##Rep out;                                   \
		int                    rv;                                    \
                                                                              \
		countersign__v1__##rep##__init(&out);                         \
		if ((rv = admin_call_begin(&c, base, data)) == CS_OK) {       \
			rv = run_##m(&c, in, &out);                           \
		}                                                             \
		admin_call_end(&c, rv, &out.base, (ProtobufCClosure)closure); \
	}

ADMIN_METHODS(ADMIN_HANDLER)

#define ADMIN_SET_HANDLER(m, Req, Rep, rep) svc->base.m = on_##m;

void
admin_service_init(struct admin_service *svc, store *st, cs_hsm *hsm,
    station_ca *ca, sessions *ss, pipeline *pl)
{
	countersign__v1__admin__init(&svc->base, NULL);
	ADMIN_METHODS(ADMIN_SET_HANDLER)
	svc->st         = st;
	svc->hsm        = hsm;
	svc->ca         = ca;
	svc->sessions   = ss;
	svc->pipeline   = pl;
	svc->started_ms = monotonic_ms();
}
