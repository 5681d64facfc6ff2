/*
 * authority_service.c - handlers of countersign.v1.Authority.
 *
 * Everything from the network is checked here before it goes further:
 * string lengths and characters, byte-field lengths, the session token.
 * Every handler calls its closure exactly once.
 */
#include "authority_service.h"

#include "cs_auth.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "order_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MOD "authority"

static void
on_ping(Countersign__V1__Authority_Service *base,
    const Countersign__V1__PingRequest *in,
    Countersign__V1__PingResponse_Closure closure, void *data)
{
	struct authority_service     *svc = (struct authority_service *)base;
	Countersign__V1__PingResponse out =
	    COUNTERSIGN__V1__PING_RESPONSE__INIT;
	struct timespec               ts;

	if (in->payload.len > AUTHORITY_MAX_PING_PAYLOAD) {
		cs_rpc_req_fail(data, CS_EINVAL, "ping payload of %zu bytes "
		    "exceeds %u bytes", in->payload.len,
		    AUTHORITY_MAX_PING_PAYLOAD);
		closure(NULL, data);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	out.authority_id = (char *)svc->authority_id;
	out.version      = (char *)CS_VERSION;
	out.time_unix_ms =
	    (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	out.payload = in->payload;
	closure(&out, data);
}

/* Not every build of the service has the store (transport tests). */
static bool
need_store(struct authority_service *svc, void *data)
{
	if (svc->st == NULL || svc->sessions == NULL || svc->pipeline == NULL) {
		cs_rpc_req_fail(data, CS_EUNIMPL, "this authority does not sign");
		return false;
	}
	return true;
}

/*
 * Audit a failed authentication (best effort: it is logged either way).
 * The station name is the one in the peer's verified certificate
 * (name_is_peer), so it is the actor; repeats of one station and reason
 * collapse into one event per interval (pipeline_tick).
 */
static void
auth_refused(struct authority_service *svc, const char *station,
    const char *reason, void *data)
{
	const char *peer  = cs_rpc_req_peer(data);
	const char *named = cs_rpc_req_peer_info(data)->tls_name;
	char        actor[128];
	const char *kv[] = {"station", station, "reason", reason, "peer", peer,
	    NULL};

	/* Without a certificate name (a listener without client TLS) the
	 * name is only a claim: the address is the actor then. */
	if (named != NULL && named[0] != '\0') {
		snprintf(actor, sizeof(actor), "station:%s", station);
	} else {
		snprintf(actor, sizeof(actor), "peer:%s", peer);
	}
	cs_log_warn(LOG_MOD, "authentication refused station=%s reason=%s "
	    "peer=%s", station, reason, peer);
	if (pipeline_audit(svc->pipeline, actor, "auth.refused", kv) !=
	    CS_OK) {
		cs_log_error(LOG_MOD, "refused authentication not audited "
		    "station=%s", station);
	}
}

/* CS_OK when name is an enrolled, enabled station; CS_EPERM when it is
 * disabled, CS_EUNAUTH when it is not enrolled. */
static int
station_enabled(struct authority_service *svc, const char *name)
{
	StoredStation *s = NULL;
	store_txn     *txn;
	int            rv;

	if ((rv = store_txn_begin(svc->st, false, &txn)) != CS_OK) {
		return rv;
	}
	rv = store_station_get(txn, name, &s);
	store_txn_abort(txn);
	if (rv == CS_OK) {
		rv = s->enabled ? CS_OK : CS_EPERM;
		countersign__v1__stored_station__free_unpacked(s, NULL);
	}
	return rv == CS_ENOENT ? CS_EUNAUTH : rv;
}

/*
 * The station name a request claims must be the one its connection's
 * client certificate carries (the station CA writes the enrolled name as
 * the CN): a station can speak only for itself.  False (and the call
 * failed) when they differ.
 */
static bool
name_is_peer(void *data, const char *name)
{
	const struct cs_srv_peer *peer = cs_rpc_req_peer_info(data);

	if (peer->tls_name[0] == '\0' || strcmp(peer->tls_name, name) == 0) {
		return true;
	}
	cs_log_warn(LOG_MOD, "station name refused claimed=%s certificate=%s "
	    "peer=%s", name, peer->tls_name, peer->addr);
	cs_rpc_req_fail(data, CS_EPERM, "this connection's certificate is "
	    "station %s's: it cannot speak for station %s (check [station] "
	    "name and cert)", peer->tls_name, name);
	return false;
}

static void
on_hello(Countersign__V1__Authority_Service *base,
    const Countersign__V1__HelloRequest *in,
    Countersign__V1__HelloResponse_Closure closure, void *data)
{
	struct authority_service      *svc = (struct authority_service *)base;
	Countersign__V1__HelloResponse out =
	    COUNTERSIGN__V1__HELLO_RESPONSE__INIT;
	uint8_t                        ch[CS_AUTH_CHALLENGE_LEN];
	int                            rv;

	if (!need_store(svc, data)) {
		closure(NULL, data);
		return;
	}
	if (!store_id_ok(in->station_name, CS_AUTH_NAME_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "station_name must be 1..%u "
		    "printable characters without spaces", CS_AUTH_NAME_MAX);
		closure(NULL, data);
		return;
	}
	if (!name_is_peer(data, in->station_name)) {
		closure(NULL, data);
		return;
	}
	/* Only enrolled, enabled stations get challenges.  (Every peer here
	 * holds a certificate of the station CA.) */
	if ((rv = station_enabled(svc, in->station_name)) != CS_OK) {
		if (rv == CS_EPERM) {
			/* A disabled station still trying: the officer wants
			 * to know.  Made-up names are only logged. */
			auth_refused(svc, in->station_name, "disabled", data);
		} else {
			cs_log_warn(LOG_MOD, "hello refused station=%s peer=%s "
			    "err=%s", in->station_name, cs_rpc_req_peer(data),
			    cs_strerror(rv));
		}
		/* Unknown and disabled look alike from outside: names cannot
		 * be enumerated. */
		cs_rpc_req_fail(data, rv == CS_EPERM || rv == CS_EUNAUTH
		        ? CS_EPERM : rv,
		    rv == CS_EPERM || rv == CS_EUNAUTH
		        ? "station %s is not enrolled or is disabled; ask the "
		          "OEM"
		        : "cannot check station %s; try again",
		    in->station_name);
		closure(NULL, data);
		return;
	}
	if ((rv = sessions_challenge(svc->sessions,
	         cs_rpc_req_peer_info(data)->conn_id, in->station_name, ch)) !=
	    CS_OK) {
		cs_rpc_req_fail(data, rv, rv == CS_EUNAVAIL
		        ? "too many authentications in progress; try again in "
		          "a few seconds"
		        : "cannot make a challenge");
		closure(NULL, data);
		return;
	}
	out.challenge.data = ch;
	out.challenge.len  = sizeof(ch);
	out.authority_id   = (char *)svc->authority_id;
	closure(&out, data);
}

/* Check the station's answer; fills cm on success. */
static int
check_answer(struct authority_service *svc,
    const Countersign__V1__AuthenticateRequest *in, char *cm, size_t cmlen,
    const char **reason)
{
	StoredStation *s = NULL;
	store_txn     *txn;
	uint8_t        msg[CS_AUTH_MSG_MAX], pub[CS_P256_POINT_LEN];
	size_t         mlen, plen = sizeof(pub);
	cs_alg         alg;
	int            rv;

	if ((rv = store_txn_begin(svc->st, false, &txn)) != CS_OK) {
		*reason = "store";
		return rv;
	}
	rv = store_station_get(txn, in->station_name, &s);
	store_txn_abort(txn);
	if (rv == CS_ENOENT) {
		*reason = "not-enrolled";
		return CS_EUNAUTH;
	}
	if (rv != CS_OK) {
		*reason = "store";
		return rv;
	}
	if (!s->enabled) {
		*reason = "disabled";
		rv      = CS_EPERM;
	} else if (cs_spki_decode(s->public_key_der.data,
	               s->public_key_der.len, &alg, pub, &plen) != CS_OK ||
	    alg != CS_ALG_P256) {
		*reason = "no-key";
		rv      = CS_EUNAUTH;
	} else if (cs_auth_message(svc->authority_id, in->station_name,
	               in->challenge.data, msg, sizeof(msg), &mlen) != CS_OK ||
	    cs_verify(alg, pub, plen, msg, mlen, in->signature.data) !=
	        CS_OK) {
		*reason = "bad-signature";
		rv      = CS_EUNAUTH;
	} else {
		snprintf(cm, cmlen, "%s", s->cm);
		rv = CS_OK;
	}
	countersign__v1__stored_station__free_unpacked(s, NULL);
	return rv;
}

static void
on_authenticate(Countersign__V1__Authority_Service *base,
    const Countersign__V1__AuthenticateRequest *in,
    Countersign__V1__AuthenticateResponse_Closure closure, void *data)
{
	struct authority_service *svc = (struct authority_service *)base;
	Countersign__V1__AuthenticateResponse out =
	    COUNTERSIGN__V1__AUTHENTICATE_RESPONSE__INIT;
	uint8_t     token[CS_AUTH_TOKEN_LEN];
	char        cm[CS_AUTH_NAME_MAX + 1];
	const char *reason = "bad-challenge";
	unsigned    ttl    = 0;
	int         rv;

	if (!need_store(svc, data)) {
		closure(NULL, data);
		return;
	}
	if (!store_id_ok(in->station_name, CS_AUTH_NAME_MAX) ||
	    in->challenge.len != CS_AUTH_CHALLENGE_LEN ||
	    in->signature.len != CS_SIG_LEN) {
		cs_rpc_req_fail(data, CS_EINVAL, "Authenticate needs a station "
		    "name, the %u-byte challenge from Hello and a %u-byte "
		    "signature", CS_AUTH_CHALLENGE_LEN, CS_SIG_LEN);
		closure(NULL, data);
		return;
	}
	if (!name_is_peer(data, in->station_name)) {
		closure(NULL, data);
		return;
	}
	rv = sessions_take_challenge(svc->sessions,
	    cs_rpc_req_peer_info(data)->conn_id, in->station_name,
	    in->challenge.data);
	if (rv == CS_OK) {
		rv = check_answer(svc, in, cm, sizeof(cm), &reason);
	}
	if (rv != CS_OK) {
		if (strcmp(reason, "store") == 0) {
			cs_rpc_req_fail(data, rv, "the authority's store failed; "
			    "try again");
		} else {
			/* An unknown challenge proves nothing about anyone and
			 * costs the sender nothing: logged, not audited. */
			if (strcmp(reason, "bad-challenge") != 0) {
				auth_refused(svc, in->station_name, reason, data);
			} else {
				cs_log_warn(LOG_MOD, "authentication refused "
				    "station=%s reason=%s peer=%s",
				    in->station_name, reason,
				    cs_rpc_req_peer(data));
			}
			if (rv == CS_EPERM) {
				cs_rpc_req_fail(data, rv, "station %s is disabled; "
				    "ask the OEM to enable it",
				    in->station_name);
			} else if (strcmp(reason, "bad-challenge") == 0) {
				cs_rpc_req_fail(data, rv, "challenge unknown, used "
				    "or expired; start again with Hello");
			} else {
				cs_rpc_req_fail(data, rv, "station %s could not be "
				    "authenticated (%s); is it enrolled, and is "
				    "[station] key the key its certificate was "
				    "issued for?", in->station_name, reason);
			}
		}
		closure(NULL, data);
		return;
	}
	/* The token exists before the station is marked seen, so that a
	 * disable committed in between (which revokes tokens after its
	 * commit) cannot miss it: station_seen re-reads `enabled`. */
	if ((rv = sessions_issue(svc->sessions,
	         cs_rpc_req_peer_info(data)->conn_id, in->station_name, cm,
	         token, &ttl)) != CS_OK ||
	    (rv = pipeline_station_seen(svc->pipeline, in->station_name)) !=
	        CS_OK) {
		/* Disabled meanwhile: all its sessions end.  Otherwise only
		 * the one just issued on this connection. */
		if (rv == CS_EPERM || rv == CS_ENOENT) {
			sessions_revoke(svc->sessions, in->station_name);
		} else {
			sessions_forget_conn(svc->sessions,
			    cs_rpc_req_peer_info(data)->conn_id);
		}
		if (rv == CS_EPERM || rv == CS_ENOENT) {
			cs_rpc_req_fail(data, CS_EPERM, "station %s is disabled; "
			    "ask the OEM to enable it", in->station_name);
		} else if (rv == CS_EEXHAUSTED) {
			cs_rpc_req_fail(data, rv, "the authority's store is "
			    "full; nothing was recorded; " STORE_FULL_TODO);
		} else {
			cs_rpc_req_fail(data, rv, "cannot open a session; try "
			    "again");
		}
		closure(NULL, data);
		cs_wipe(token, sizeof(token));
		return;
	}
	cs_log_info(LOG_MOD, "station authenticated station=%s cm=%s peer=%s",
	    in->station_name, cm, cs_rpc_req_peer(data));
	out.token.data = token;
	out.token.len  = sizeof(token);
	out.ttl_s      = ttl;
	closure(&out, data);
	cs_wipe(token, sizeof(token));
}

/* The caller's session, or a failed call. */
static bool
session_of(struct authority_service *svc, void *data,
    struct pipeline_who *who)
{
	struct session_info info;
	const uint8_t      *tok;
	size_t              len;

	if (!need_store(svc, data)) {
		return false;
	}
	tok = cs_rpc_req_token(data, &len);
	if (sessions_check(svc->sessions, cs_rpc_req_peer_info(data)->conn_id,
	        tok, len, &info) != CS_OK) {
		cs_rpc_req_fail(data, CS_EUNAUTH, "no valid session: the token "
		    "is missing, expired, revoked or from another connection; "
		    "authenticate again (Hello, Authenticate)");
		return false;
	}
	memset(who, 0, sizeof(*who));
	memcpy(who->station, info.station, sizeof(who->station));
	memcpy(who->cm, info.cm, sizeof(who->cm));
	return true;
}

/* Check and copy order id and UID off the wire. */
static bool
order_uid_in(void *data, const char *order_id, const ProtobufCBinaryData *uid,
    char *oid, uint8_t *u, size_t *ulen)
{
	if (!store_id_ok(order_id, STORE_ORDER_ID_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "order_id must be 1..%u "
		    "printable characters without spaces", STORE_ORDER_ID_MAX);
		return false;
	}
	if (uid->len < STORE_UID_MIN || uid->len > STORE_UID_MAX) {
		cs_rpc_req_fail(data, CS_EINVAL, "UID of %zu bytes: a UID has "
		    "%u..%u bytes", uid->len, STORE_UID_MIN, STORE_UID_MAX);
		return false;
	}
	strcpy(oid, order_id);
	memcpy(u, uid->data, uid->len);
	*ulen = uid->len;
	return true;
}

static void
on_sign(Countersign__V1__Authority_Service *base,
    const Countersign__V1__SignRequest *in,
    Countersign__V1__SignResponse_Closure closure, void *data)
{
	struct authority_service    *svc = (struct authority_service *)base;
	Countersign__V1__SignResponse out =
	    COUNTERSIGN__V1__SIGN_RESPONSE__INIT;
	struct pipeline_sign_req     req;
	struct pipeline_sign_res     res;
	char                         msg[512] = "";
	int                          rv;

	memset(&req, 0, sizeof(req));
	if (!session_of(svc, data, &req.who) ||
	    !order_uid_in(data, in->order_id, &in->uid, req.order_id, req.uid,
	        &req.uid_len)) {
		closure(NULL, data);
		return;
	}
	if (in->firmware_sha256.len != 0 &&
	    in->firmware_sha256.len != CS_SHA256_LEN) {
		cs_rpc_req_fail(data, CS_EINVAL, "firmware_sha256 must be empty "
		    "or %u bytes (SHA-256)", CS_SHA256_LEN);
		closure(NULL, data);
		return;
	}
	if (in->firmware_sha256.len != 0) {
		memcpy(req.firmware_sha256, in->firmware_sha256.data,
		    CS_SHA256_LEN);
	}
	req.firmware_sha256_len = in->firmware_sha256.len;
	rv = pipeline_sign(svc->pipeline, &req, &res, msg, sizeof(msg));
	if (rv != CS_OK) {
		cs_log_info(LOG_MOD, "sign refused station=%s order=%s err=%s "
		    "msg=\"%s\"", req.who.station, req.order_id,
		    cs_strerror(rv), msg);
		cs_rpc_req_fail(data, rv, "%s", msg);
		closure(NULL, data);
		return;
	}
	out.record.data = res.record;
	out.record.len  = res.record_len;
	out.serial      = res.serial;
	out.reissued    = res.reissued;
	out.remaining   = res.remaining;
	closure(&out, data);
}

/* Read an order a station may see. */
static int
station_order(struct authority_service *svc, const struct pipeline_who *who,
    const char *order_id, StoredOrder **o)
{
	store_txn *txn;
	size_t     i;
	int        rv;

	if ((rv = store_txn_begin(svc->st, false, &txn)) != CS_OK) {
		return rv;
	}
	rv = store_order_get(txn, order_id, o);
	store_txn_abort(txn);
	if (rv != CS_OK || (*o)->n_cms == 0) {
		return rv;
	}
	for (i = 0; i < (*o)->n_cms; i++) {
		if (strcmp((*o)->cms[i], who->cm) == 0) {
			return CS_OK;
		}
	}
	countersign__v1__stored_order__free_unpacked(*o, NULL);
	*o = NULL;
	return CS_EPERM;
}

static void
on_get_order(Countersign__V1__Authority_Service *base,
    const Countersign__V1__GetOrderRequest *in,
    Countersign__V1__GetOrderResponse_Closure closure, void *data)
{
	struct authority_service        *svc = (struct authority_service *)base;
	Countersign__V1__GetOrderResponse out =
	    COUNTERSIGN__V1__GET_ORDER_RESPONSE__INIT;
	Countersign__V1__OrderStatus     os;
	struct pipeline_who              who;
	StoredOrder                     *o   = NULL;
	store_txn                       *txn = NULL;
	int                              rv;

	if (!session_of(svc, data, &who)) {
		closure(NULL, data);
		return;
	}
	if (!store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "order_id must be 1..%u "
		    "printable characters without spaces", STORE_ORDER_ID_MAX);
		closure(NULL, data);
		return;
	}
	if ((rv = station_order(svc, &who, in->order_id, &o)) != CS_OK) {
		cs_rpc_req_fail(data, rv,
		    rv == CS_ENOENT ? "order %s is not known to this authority"
		    : rv == CS_EPERM
		        ? "order %s is not for this station's CM"
		        : "cannot read order %s; try again",
		    in->order_id);
		closure(NULL, data);
		return;
	}
	order_view(&os, o);
	/* Whether the order holds an image the station must fetch. */
	if ((rv = store_txn_begin(svc->st, false, &txn)) == CS_OK) {
		rv = order_view_firmware(&os, txn);
		store_txn_abort(txn);
	}
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv, "cannot read order %s; try again",
		    in->order_id);
		closure(NULL, data);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return;
	}
	out.order = &os;
	closure(&out, data);
	countersign__v1__stored_order__free_unpacked(o, NULL);
}

static void
on_report(Countersign__V1__Authority_Service *base,
    const Countersign__V1__ReportRequest *in,
    Countersign__V1__ReportResponse_Closure closure, void *data)
{
	struct authority_service      *svc = (struct authority_service *)base;
	Countersign__V1__ReportResponse out =
	    COUNTERSIGN__V1__REPORT_RESPONSE__INIT;
	Countersign__V1__OrderStatus   os;
	struct pipeline_report_req     req;
	StoredOrder                   *o = NULL;
	char                           msg[512] = "";
	size_t                         i, dlen;
	int                            rv;

	memset(&req, 0, sizeof(req));
	if (!session_of(svc, data, &req.who) ||
	    !order_uid_in(data, in->order_id, &in->uid, req.order_id, req.uid,
	        &req.uid_len)) {
		closure(NULL, data);
		return;
	}
	switch (in->outcome) {
	case COUNTERSIGN__V1__OUTCOME__OUTCOME_PROGRAMMED:
		req.outcome = PIPELINE_PROGRAMMED;
		break;
	case COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED:
		req.outcome = PIPELINE_FAILED;
		break;
	case COUNTERSIGN__V1__OUTCOME__OUTCOME_VERIFY_FAILED:
		req.outcome = PIPELINE_VERIFY_FAILED;
		break;
	default:
		cs_rpc_req_fail(data, CS_EINVAL, "outcome must be programmed, "
		    "failed or verify-failed");
		closure(NULL, data);
		return;
	}
	/* The detail goes into the audit log: printable ASCII, refused
	 * whole otherwise, never rewritten or cut. */
	dlen = in->detail != NULL ? strlen(in->detail) : 0;
	for (i = 0; i < dlen && in->detail[i] >= 0x20 && in->detail[i] < 0x7f;
	    i++) {
	}
	if (dlen > AUTHORITY_MAX_DETAIL || i < dlen) {
		cs_rpc_req_fail(data, CS_EINVAL, "detail must be at most %u "
		    "printable ASCII characters (0x20-0x7e); nothing was "
		    "recorded", AUTHORITY_MAX_DETAIL);
		closure(NULL, data);
		return;
	}
	memcpy(req.detail, in->detail, dlen);
	req.locked           = in->locked;
	req.firmware_checked = in->firmware_checked;
	rv = pipeline_report(svc->pipeline, &req, &o, msg, sizeof(msg));
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv, "%s", msg);
		closure(NULL, data);
		return;
	}
	if (o != NULL) {
		order_view(&os, o);
		out.order = &os;
	}
	closure(&out, data);
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* GetFirmware                                                          */

/*
 * Audit a refused fetch (collapsed per station, type and reason through
 * the pipeline's audit_limit: a station cannot fill the store with them).
 */
static void
fetch_refused(struct authority_service *svc, const struct pipeline_who *who,
    const char *order_id, const char *reason)
{
	char        actor[STORE_AUDIT_ACTOR_MAX];
	const char *kv[] = {"station", who->station, "cm", who->cm, "order",
	    order_id, "reason", reason, NULL};

	snprintf(actor, sizeof(actor), "station:%s", who->station);
	cs_log_warn(LOG_MOD, "firmware fetch refused station=%s cm=%s "
	    "order=%s reason=%s", who->station, who->cm, order_id, reason);
	if (pipeline_audit(svc->pipeline, actor, "firmware.refused", kv) !=
	    CS_OK) {
		cs_log_error(LOG_MOD, "refused fetch not audited station=%s",
		    who->station);
	}
}

/*
 * The start of a fetch (offset 0) is audited before any byte goes out:
 * "firmware.fetch" with station, order, version and digest, grouped per
 * station, order and version, so a station that fetches again and again
 * writes one event and one summary with a count per interval.  Only the
 * connection that started a fetch gets its later chunks.
 */
static int
fetch_audit(struct authority_service *svc, const struct pipeline_who *who,
    const StoredFirmware *f)
{
	char        actor[STORE_AUDIT_ACTOR_MAX], ver[16];
	char        hex[2 * CS_SHA256_LEN + 1] = "";
	const char *kv[] = {"station", who->station, "cm", who->cm, "order",
	    f->order_id, "version", ver, "firmware_sha256", hex, NULL};

	snprintf(actor, sizeof(actor), "station:%s", who->station);
	snprintf(ver, sizeof(ver), "%u", f->version);
	if (f->sha256.len == CS_SHA256_LEN) {
		cs_hex_encode(f->sha256.data, f->sha256.len, hex, sizeof(hex));
	}
	return pipeline_audit(svc->pipeline, actor, "firmware.fetch", kv);
}

/* The order and its firmware row, as a station may fetch them. */
static int
fetch_rows(struct authority_service *svc, const struct pipeline_who *who,
    const char *order_id, store_txn *txn, StoredFirmware **f, void *data)
{
	StoredOrder *o = NULL;
	size_t       i;
	bool         cm_ok;
	int          rv;

	rv = store_order_get(txn, order_id, &o);
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv, rv == CS_ENOENT
		        ? "order %s is not known to this authority"
		        : "cannot read order %s; try again", order_id);
		return rv;
	}
	cm_ok = o->n_cms == 0;
	for (i = 0; i < o->n_cms && !cm_ok; i++) {
		cm_ok = strcmp(o->cms[i], who->cm) == 0;
	}
	if (!cm_ok) {
		rv = CS_EPERM;
		fetch_refused(svc, who, order_id, "cm-not-allowed");
		cs_rpc_req_fail(data, rv, "order %s is not for this station's "
		    "CM", order_id);
	} else if (o->closed || (o->expires_unix_s != 0 &&
	               (uint64_t)time(NULL) >= o->expires_unix_s)) {
		rv = CS_EPRECOND;
		cs_rpc_req_fail(data, rv, "order %s is %s: its image is no "
		    "longer served", order_id, o->closed ? "closed" : "expired");
	}
	countersign__v1__stored_order__free_unpacked(o, NULL);
	if (rv != CS_OK) {
		return rv;
	}
	rv = store_firmware_get(txn, order_id, f);
	if (rv == CS_ENOENT) {
		cs_rpc_req_fail(data, CS_EPRECOND, "order %s holds no image "
		    "(it binds %s): program the image you were given",
		    order_id, "at most a digest");
		return CS_EPRECOND;
	}
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv, "cannot read order %s; try again",
		    order_id);
		return rv;
	}
	if ((*f)->withdrawn) {
		cs_rpc_req_fail(data, CS_EPRECOND, "the order's firmware was "
		    "withdrawn by the officer");
		return CS_EPRECOND;
	}
	return CS_OK;
}

static void
on_get_firmware(Countersign__V1__Authority_Service *base,
    const Countersign__V1__GetFirmwareRequest *in,
    Countersign__V1__GetFirmwareResponse_Closure closure, void *data)
{
	struct authority_service *svc = (struct authority_service *)base;
	Countersign__V1__GetFirmwareResponse out =
	    COUNTERSIGN__V1__GET_FIRMWARE_RESPONSE__INIT;
	struct pipeline_who who;
	StoredFirmware     *f   = NULL;
	store_txn          *txn = NULL;
	uint8_t            *buf = NULL;
	uint64_t            conn = cs_rpc_req_peer_info(data)->conn_id;
	uint32_t            index;
	size_t              len = 0;
	int                 rv;

	if (!session_of(svc, data, &who)) {
		goto done;
	}
	if (svc->fw == NULL) {
		cs_rpc_req_fail(data, CS_EUNIMPL, "this authority holds no "
		    "firmware images");
		goto done;
	}
	if (!store_id_ok(in->order_id, STORE_ORDER_ID_MAX)) {
		cs_rpc_req_fail(data, CS_EINVAL, "order_id must be 1..%u "
		    "printable characters without spaces", STORE_ORDER_ID_MAX);
		goto done;
	}
	if ((rv = store_txn_begin(svc->st, false, &txn)) != CS_OK) {
		cs_rpc_req_fail(data, rv, "the authority's store failed; try "
		    "again");
		goto done;
	}
	if (fetch_rows(svc, &who, in->order_id, txn, &f, data) != CS_OK) {
		goto done;
	}
	if (in->version != 0 && in->version != f->version) {
		cs_rpc_req_fail(data, CS_EPRECOND, "the order's firmware was "
		    "replaced (now version %u): fetch it again", f->version);
		goto done;
	}
	if (f->chunk_size == 0 || in->offset % f->chunk_size != 0 ||
	    in->offset >= f->size) {
		cs_rpc_req_fail(data, CS_EINVAL, "offset %llu is not a chunk "
		    "of the image: ask for multiples of %u below %llu",
		    (unsigned long long)in->offset, f->chunk_size,
		    (unsigned long long)f->size);
		goto done;
	}
	index = (uint32_t)(in->offset / f->chunk_size);
	if (index == 0) {
		bool log;

		/* A budget of starts per station, then audited durably
		 * (never collapsed) before a byte leaves. */
		if (!firmware_fetch_admit(svc->fw, who.station, &log)) {
			if (log) {
				cs_log_warn(LOG_MOD, "firmware fetches refused: "
				    "the station started too many station=%s "
				    "order=%s", who.station, f->order_id);
			}
			cs_rpc_req_fail(data, CS_EUNAVAIL, "station %s started "
			    "more than %u fetches of firmware recently (one "
			    "more every %u s): try again later", who.station,
			    FIRMWARE_FETCH_BURST, FIRMWARE_FETCH_REFILL_S);
			goto done;
		}
		if ((rv = fetch_audit(svc, &who, f)) != CS_OK) {
			cs_log_error(LOG_MOD, "firmware fetch not audited, "
			    "refused station=%s order=%s err=%s", who.station,
			    f->order_id, cs_strerror(rv));
			cs_rpc_req_fail(data, rv == CS_EEXHAUSTED ? rv
			                                         : CS_EUNAVAIL,
			    "the fetch could not be recorded; try again later");
			goto done;
		}
		if (sessions_fetch_begin(svc->sessions, conn, f->order_id,
		        f->version) != CS_OK) {
			cs_rpc_req_fail(data, CS_EUNAUTH, "this connection's "
			    "session ended; authenticate again");
			goto done;
		}
		cs_log_info(LOG_MOD, "firmware fetch station=%s order=%s "
		    "version=%u", who.station, f->order_id, f->version);
	} else if (sessions_fetch_next(svc->sessions, conn, f->order_id,
	               f->version, in->offset) != CS_OK) {
		cs_rpc_req_fail(data, CS_EPRECOND, "start the fetch of order "
		    "%s at offset 0 on this connection (then ask for each "
		    "chunk once, in order)", f->order_id);
		goto done;
	}
	if ((buf = malloc(FIRMWARE_CHUNK)) == NULL) {
		cs_rpc_req_fail(data, CS_ENOMEM, "out of memory; try again");
		goto done;
	}
	rv = firmware_chunk(svc->fw, txn, f, index, buf, &len);
	if (rv != CS_OK) {
		cs_rpc_req_fail(data, rv == CS_EHSM ? CS_EHSM : CS_ECRYPTO,
		    rv == CS_EHSM
		        ? "the HSM cannot open the image now; try again"
		        : "the stored image of order %s failed its integrity "
		          "check; the OEM must replace it", f->order_id);
		goto done;
	}
	out.version               = f->version;
	out.base_addr             = f->base_addr;
	out.size                  = f->size;
	out.offset                = in->offset;
	out.data.data             = buf;
	out.data.len              = len;
	out.firmware_sha256       = f->sha256;
	out.target                = f->target;
	store_txn_abort(txn);
	txn = NULL;
	closure(&out, data);
	cs_wipe(buf, FIRMWARE_CHUNK);
	free(buf);
	countersign__v1__stored_firmware__free_unpacked(f, NULL);
	return;
done:
	store_txn_abort(txn);
	if (f != NULL) {
		countersign__v1__stored_firmware__free_unpacked(f, NULL);
	}
	free(buf);
	closure(NULL, data);
}

void
authority_service_init(struct authority_service *svc, const char *id,
    store *st, sessions *ss, pipeline *pl)
{
	countersign__v1__authority__init(&svc->base, NULL);
	svc->base.ping         = on_ping;
	svc->base.hello        = on_hello;
	svc->base.authenticate = on_authenticate;
	svc->base.get_order    = on_get_order;
	svc->base.sign         = on_sign;
	svc->base.report       = on_report;
	svc->base.get_firmware = on_get_firmware;
	svc->authority_id      = id;
	svc->st                = st;
	svc->sessions          = ss;
	svc->pipeline          = pl;
}
