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
#include "firmware.h"
#include "pipeline.h"

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

void
admin_store_msg(int rv, char *msg, size_t msglen)
{
	if (rv == CS_EEXHAUSTED) {
		cs_say(rv, msg, msglen, "the store is full: nothing was changed; "
		    STORE_FULL_TODO);
	} else {
		cs_say(rv, msg, msglen, "the store failed (%s): nothing was "
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
		return cs_say(CS_EINVAL, msg, msglen, "order id must be 1..%u "
		    "printable characters without spaces", STORE_ORDER_ID_MAX);
	}
	if (!store_id_ok(in->key_label, STORE_NAME_MAX)) {
		return cs_say(CS_EINVAL, msg, msglen, "a key label is required "
		    "(countersign-admin key list)");
	}
	if (in->quota == 0 || in->quota > UINT32_MAX) {
		return cs_say(CS_EINVAL, msg, msglen, "quota must be 1..%u",
		    UINT32_MAX);
	}
	if (in->uid_len < STORE_UID_MIN || in->uid_len > STORE_UID_MAX) {
		return cs_say(CS_EINVAL, msg, msglen, "uid length must be %u..%u "
		    "bytes", STORE_UID_MIN, STORE_UID_MAX);
	}
	if (in->n_cms > ADMIN_MAX_CMS) {
		return cs_say(CS_EINVAL, msg, msglen, "at most %u CMs per order",
		    ADMIN_MAX_CMS);
	}
	for (i = 0; i < in->n_cms; i++) {
		if (!store_id_ok(in->cms[i], STORE_NAME_MAX)) {
			return cs_say(CS_EINVAL, msg, msglen, "CM names are 1..%u "
			    "printable characters without spaces",
			    STORE_NAME_MAX);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(in->cms[i], in->cms[j]) == 0) {
				return cs_say(CS_EINVAL, msg, msglen, "CM %s is "
				    "given twice", in->cms[i]);
			}
		}
	}
	if (in->expires_unix_s != 0 && in->expires_unix_s <= now_s()) {
		return cs_say(CS_EINVAL, msg, msglen, "the expiry date is in the "
		    "past");
	}
	if (in->firmware_sha256.len != 0 &&
	    in->firmware_sha256.len != CS_SHA256_LEN) {
		return cs_say(CS_EINVAL, msg, msglen, "firmware digest must be a "
		    "32-byte SHA-256");
	}
	return CS_OK;
}

/*
 * What an order binds of its firmware, worked out before the write
 * transaction: the target profile, and the image with its digest.
 */
struct fw_plan {
	struct target t;
	bool          has_target;
	struct image  img;
	bool          has_image;
	uint8_t       digest[CS_SHA256_LEN];
};

static void
fw_plan_free(struct fw_plan *p)
{
	firmware_image_free(&p->img);
}

/* Check the target, the lock requirement and the image of a request. */
static int
fw_plan_make(firmware *fw, const char *target, bool require_lock,
    Countersign__V1__FirmwareSegment *const *segs, size_t nseg,
    const ProtobufCBinaryData *want, struct fw_plan *p, char *msg,
    size_t msglen)
{
	int rv;

	memset(p, 0, sizeof(*p));
	if (target == NULL || target[0] == '\0') {
		if (nseg > 0) {
			return cs_say(CS_EINVAL, msg, msglen, "an order that holds "
			    "its image needs a target (--target NAME): the image "
			    "is checked against the target's flash and record "
			    "area");
		}
		if (require_lock) {
			return cs_say(CS_EINVAL, msg, msglen, "--require-lock needs "
			    "a target (--target NAME) whose profile says how to "
			    "lock the part");
		}
		return CS_OK;
	}
	if (fw == NULL) {
		return cs_say(CS_EINVAL, msg, msglen, "this front end cannot bind "
		    "a target or an image: use countersign-admin order create");
	}
	if ((rv = firmware_target(fw, target, &p->t, msg, msglen)) != CS_OK) {
		return rv;
	}
	p->has_target = true;
	if (require_lock && !p->t.can_lock) {
		return cs_say(CS_EINVAL, msg, msglen, "target %s cannot be locked "
		    "(its profile has no [protect] section): an order on it "
		    "cannot require the lock", p->t.name);
	}
	if (nseg == 0) {
		return CS_OK;
	}
	if (firmware_key_label(fw) == NULL) {
		return cs_say(CS_EPRECOND, msg, msglen, "no firmware key is "
		    "configured ([hsm] firmware_key): an order cannot hold its "
		    "image.  Make one with countersign-keytool keygen --label "
		    "fw-key --alg aes256 and name it in [hsm] firmware_key, or "
		    "bind only the digest (--digest-only)");
	}
	if ((rv = firmware_image(&p->img, segs, nseg, msg, msglen)) != CS_OK) {
		return rv;
	}
	p->has_image = true;
	return firmware_check(&p->t, &p->img, want, p->digest, msg, msglen);
}

/*
 * Room for an image without touching the store's reserve, which only
 * device commits may use (pipeline.h): the span of the image twice (the
 * sealed chunks, and the copy-on-write pages of the transaction that
 * writes them) plus the reserve must be left in the map and on the disk.
 */
static int
fw_room(store *st, const struct fw_plan *p, char *msg, size_t msglen)
{
	uint64_t used, size, map_left, disk_left, need, span;

	if (!p->has_image) {
		return CS_OK;
	}
	span = (uint64_t)p->img.seg[p->img.nseg - 1].addr +
	    p->img.seg[p->img.nseg - 1].len - p->img.seg[0].addr;
	if (store_space(st, &used, &size) != CS_OK ||
	    store_room(st, &map_left, &disk_left) != CS_OK) {
		return store_err(CS_ESTORE, msg, msglen);
	}
	need = 2u * span + pipeline_reserve_bytes(size);
	if (map_left < need || disk_left < need) {
		return cs_say(CS_EEXHAUSTED, msg, msglen, "the store has no room "
		    "for an image of %" PRIu64 " bytes next to the reserve "
		    "kept for devices: nothing was changed; " STORE_FULL_TODO,
		    span);
	}
	return CS_OK;
}

int
admin_order_create(store *st, const char *actor,
    const Countersign__V1__CreateOrderRequest *in, StoredOrder **out,
    char *msg, size_t msglen)
{
	return admin_order_create_fw(st, NULL, actor, in, out, msg, msglen);
}

int
admin_order_create_fw(store *st, firmware *fw, const char *actor,
    const Countersign__V1__CreateOrderRequest *in, StoredOrder **out,
    char *msg, size_t msglen)
{
	StoredOrder    o   = COUNTERSIGN__V1__STORED_ORDER__INIT;
	StoredFirmware row;
	StoredOrder   *old = NULL;
	StoredKey     *k   = NULL;
	store_txn     *txn = NULL;
	struct fw_plan plan;
	uint8_t       *keep = NULL;
	char           product[16], quota[24], uidl[8], size[24];
	char           fw_hex[2 * CS_SHA256_LEN + 1];
	int            rv;

	*out = NULL;
	memset(&plan, 0, sizeof(plan));
	if ((rv = create_order_ok(in, msg, msglen)) != CS_OK) {
		return rv;
	}
	if (in->n_firmware_segments > 0 && in->n_cms == 0) {
		/* Without a CM list every CM's station could fetch it. */
		return cs_say(CS_EINVAL, msg, msglen, "an order that holds its "
		    "image must name the CMs whose stations may fetch it "
		    "(--cm CM, once per CM)");
	}
	if ((rv = fw_plan_make(fw, in->target, in->require_lock,
	         in->firmware_segments, in->n_firmware_segments,
	         &in->firmware_sha256, &plan, msg, msglen)) != CS_OK) {
		goto fail;
	}
	if ((rv = fw_room(st, &plan, msg, msglen)) != CS_OK) {
		goto fail;
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		store_err(rv, msg, msglen);
		goto fail;
	}
	rv = store_order_get(txn, in->order_id, &old);
	if (rv == CS_OK) {
		countersign__v1__stored_order__free_unpacked(old, NULL);
		rv = cs_say(CS_EEXIST, msg, msglen, "order %s exists; order ids "
		    "are never reused", in->order_id);
		goto fail;
	}
	if (rv != CS_ENOENT) {
		store_err(rv, msg, msglen);
		goto fail;
	}
	if ((rv = store_key_get(txn, in->key_label, &k)) != CS_OK) {
		if (rv == CS_ENOENT) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "key %s is not "
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
	o.target          = plan.has_target ? plan.t.name : (char *)"";
	o.require_lock    = in->require_lock;
	/* Sealing runs inside the write transaction (one HSM call for the
	 * data key, AES-GCM over at most 16 MiB): commits of devices wait for
	 * it, a fraction of a second for an officer's rare change, and the
	 * order and its image can never be half written. */
	if (plan.has_image) {
		o.firmware_sha256.data = plan.digest;
		o.firmware_sha256.len  = CS_SHA256_LEN;
		rv = firmware_seal(fw, txn, in->order_id, 1, &plan.t,
		    &plan.img, plan.digest, &row, &keep, msg, msglen);
		if (rv != CS_OK) {
			if (rv == CS_EEXHAUSTED || rv == CS_ESTORE ||
			    rv == CS_EIO) {
				store_err(rv, msg, msglen);
			}
			goto fail;
		}
	}
	snprintf(product, sizeof(product), "%u", in->product_id);
	snprintf(quota, sizeof(quota), "%" PRIu64, in->quota);
	snprintf(uidl, sizeof(uidl), "%u", in->uid_len);
	snprintf(size, sizeof(size), "%" PRIu64,
	    plan.has_image ? row.size : 0);
	cs_hex_encode(o.firmware_sha256.data, o.firmware_sha256.len, fw_hex,
	    sizeof(fw_hex));
	{
		const char *kv[] = {"order", in->order_id, "product", product,
		    "key", in->key_label, "quota", quota, "uid_len", uidl,
		    "firmware_sha256", fw_hex, "target", o.target,
		    "require_lock", o.require_lock ? "true" : "false",
		    "firmware_held", plan.has_image ? "true" : "false",
		    "firmware_size", size, NULL};

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
		store_err(rv, msg, msglen);
		goto fail;
	}
	cs_log_info(LOG_MOD, "order created order=%s target=%s held=%s by=%s",
	    in->order_id, o.target, plan.has_image ? "yes" : "no", actor);
	*out = msg_dup(&o.base);
	free(keep);
	fw_plan_free(&plan);
	if (*out == NULL) {
		return cs_say(CS_ENOMEM, msg, msglen, "out of memory (the order "
		    "was created)");
	}
	return CS_OK;
fail:
	store_txn_abort(txn);
	free(keep);
	fw_plan_free(&plan);
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
		return cs_say(CS_EINVAL, msg, msglen, "an order id is required");
	}
	rv = store_order_get(txn, order_id, o);
	if (rv == CS_ENOENT) {
		return cs_say(CS_ENOENT, msg, msglen, "no order %s "
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
		return cs_say(CS_EINVAL, msg, msglen, "give a non-zero change, "
		    "e.g. +100 or -20");
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = get_order(txn, order_id, &o, msg, msglen)) != CS_OK) {
		goto fail;
	}
	if (o->closed) {
		rv = cs_say(CS_EPRECOND, msg, msglen, "order %s is closed; its "
		    "quota can no longer change", o->order_id);
		goto fail;
	}
	if (delta < 0) {
		uint64_t d = (uint64_t)(-delta);

		if (d > o->quota || o->quota - d < o->issued) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "quota of order %s "
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
			rv = cs_say(CS_EINVAL, msg, msglen, "quota would exceed %u",
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
		rv = cs_say(CS_EPRECOND, msg, msglen, "order %s is already closed",
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

/* Withdraw o's held image in txn: chunks deleted, the row kept. */
static int
firmware_withdraw(store_txn *txn, StoredOrder *o, StoredFirmware *f,
    const char *actor, StoredOrder **out, char *msg, size_t msglen)
{
	char   ver[16], del[24];
	size_t deleted = 0;
	int    rv;

	if (f->withdrawn) {
		store_txn_abort(txn);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return cs_say(CS_EPRECOND, msg, msglen, "the image of order %s is "
		    "already withdrawn", f->order_id);
	}
	f->withdrawn = true;
	f->chunks    = 0;
	/* Nothing left to open: the wrapped key goes with the chunks. */
	free(f->wrapped_key.data);
	f->wrapped_key.data = NULL;
	f->wrapped_key.len  = 0;
	snprintf(ver, sizeof(ver), "%u", f->version);
	if ((rv = store_fwchunk_delete_all(txn, o->order_id, &deleted)) !=
	        CS_OK ||
	    (rv = store_firmware_put(txn, f)) != CS_OK) {
		store_txn_abort(txn);
		countersign__v1__stored_order__free_unpacked(o, NULL);
		return store_err(rv, msg, msglen);
	}
	snprintf(del, sizeof(del), "%zu", deleted);
	{
		const char *kv[] = {"order", o->order_id, "version", ver,
		    "chunks_deleted", del, NULL};

		return order_commit(txn, o, actor, "firmware.withdrawn", kv,
		    out, msg, msglen);
	}
}

int
admin_order_firmware(store *st, firmware *fw, const char *actor,
    const Countersign__V1__SetOrderFirmwareRequest *in, StoredOrder **out,
    char *msg, size_t msglen)
{
	StoredOrder    *o   = NULL;
	StoredFirmware *f   = NULL, row;
	store_txn      *txn = NULL;
	struct fw_plan  plan;
	uint8_t        *keep = NULL;
	uint32_t        version = 1;
	char            ver[16], prev[16], size[24], hex[2 * CS_SHA256_LEN + 1];
	int             rv;

	*out = NULL;
	memset(&plan, 0, sizeof(plan));
	if (in->withdraw == (in->n_firmware_segments > 0)) {
		return cs_say(CS_EINVAL, msg, msglen, "give either a new image "
		    "(--replace FILE) or --withdraw");
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = get_order(txn, in->order_id, &o, msg, msglen)) != CS_OK) {
		store_txn_abort(txn);
		return rv;
	}
	rv = store_firmware_get(txn, o->order_id, &f);
	if (rv != CS_OK && rv != CS_ENOENT) {
		store_err(rv, msg, msglen);
		goto fail;
	}
	if (in->withdraw) {
		if (f == NULL) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "order %s holds no "
			    "image (it binds %s): nothing to withdraw; close the "
			    "order to stop it (countersign-admin order close %s)",
			    o->order_id, o->firmware_sha256.len > 0
			        ? "only a digest" : "no firmware", o->order_id);
			goto fail;
		}
		rv = firmware_withdraw(txn, o, f, actor, out, msg, msglen);
		txn = NULL;
		o   = NULL;
		if (rv == CS_OK) {
			cs_log_info(LOG_MOD, "firmware withdrawn order=%s "
			    "version=%u by=%s", in->order_id, f->version, actor);
		}
		countersign__v1__stored_firmware__free_unpacked(f, NULL);
		return rv;
	}
	/* Replace: a new version under a new data key. */
	if (o->closed) {
		rv = cs_say(CS_EPRECOND, msg, msglen, "order %s is closed; its "
		    "image can no longer change", o->order_id);
		goto fail;
	}
	if (o->target == NULL || o->target[0] == '\0') {
		rv = cs_say(CS_EPRECOND, msg, msglen, "order %s is not bound to a "
		    "target, so an image cannot be checked for it; create a new "
		    "order with --target", o->order_id);
		goto fail;
	}
	/* The profile is loaded inside the transaction: an officer's change
	 * is rare, and the image is checked against one consistent order. */
	if ((rv = fw_plan_make(fw, o->target, o->require_lock,
	         in->firmware_segments, in->n_firmware_segments, NULL, &plan,
	         msg, msglen)) != CS_OK) {
		goto fail;
	}
	if ((rv = fw_room(st, &plan, msg, msglen)) != CS_OK) {
		goto fail;
	}
	if (f != NULL) {
		version = f->version + 1;
		if (f->version == UINT32_MAX) {
			rv = cs_say(CS_EPRECOND, msg, msglen, "order %s has used "
			    "every image version", o->order_id);
			goto fail;
		}
	}
	snprintf(prev, sizeof(prev), "%u", f != NULL ? f->version : 0u);
	if ((rv = store_fwchunk_delete_all(txn, o->order_id, NULL)) != CS_OK) {
		store_err(rv, msg, msglen);
		goto fail;
	}
	rv = firmware_seal(fw, txn, o->order_id, version, &plan.t, &plan.img,
	    plan.digest, &row, &keep, msg, msglen);
	if (rv != CS_OK) {
		if (rv == CS_EEXHAUSTED || rv == CS_ESTORE || rv == CS_EIO) {
			store_err(rv, msg, msglen);
		}
		goto fail;
	}
	/* The order binds the new digest from now on; records issued
	 * before keep the old one (a device is checked against its own). */
	free(o->firmware_sha256.data);
	if ((o->firmware_sha256.data = malloc(CS_SHA256_LEN)) == NULL) {
		o->firmware_sha256.len = 0;
		rv = cs_say(CS_ENOMEM, msg, msglen, "out of memory");
		goto fail;
	}
	memcpy(o->firmware_sha256.data, plan.digest, CS_SHA256_LEN);
	o->firmware_sha256.len = CS_SHA256_LEN;
	snprintf(ver, sizeof(ver), "%u", version);
	snprintf(size, sizeof(size), "%" PRIu64, row.size);
	cs_hex_encode(plan.digest, CS_SHA256_LEN, hex, sizeof(hex));
	{
		const char *kv[] = {"order", o->order_id, "version", ver,
		    "previous_version", prev, "firmware_sha256", hex,
		    "firmware_size", size, "target", o->target, NULL};

		rv  = order_commit(txn, o, actor, "firmware.replaced", kv, out,
		    msg, msglen);
		txn = NULL;
		o   = NULL;
	}
	if (rv == CS_OK) {
		cs_log_info(LOG_MOD, "firmware replaced order=%s version=%s "
		    "by=%s", in->order_id, ver, actor);
	}
	free(keep);
	fw_plan_free(&plan);
	if (f != NULL) {
		countersign__v1__stored_firmware__free_unpacked(f, NULL);
	}
	return rv;
fail:
	store_txn_abort(txn);
	if (o != NULL) {
		countersign__v1__stored_order__free_unpacked(o, NULL);
	}
	if (f != NULL) {
		countersign__v1__stored_firmware__free_unpacked(f, NULL);
	}
	free(keep);
	fw_plan_free(&plan);
	return rv;
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
		return cs_say(CS_EINVAL, msg, msglen, "a station name is required");
	}
	if ((rv = store_txn_begin(st, true, &txn)) != CS_OK) {
		return store_err(rv, msg, msglen);
	}
	if ((rv = store_station_get(txn, name, &s)) != CS_OK) {
		store_txn_abort(txn);
		if (rv == CS_ENOENT) {
			return cs_say(rv, msg, msglen, "no station %s "
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
		return cs_say(CS_EINVAL, msg, msglen, "a token name is required: "
		    "1..%u printable characters without spaces",
		    STORE_NAME_MAX);
	}
	if (strcmp(role, ADMIN_ROLE_VIEWER) != 0 &&
	    strcmp(role, ADMIN_ROLE_OFFICER) != 0) {
		return cs_say(CS_EINVAL, msg, msglen, "role must be viewer "
		    "(read-only) or officer (may change orders and stations)");
	}
	if (getrandom(tok, sizeof(tok), 0) != (ssize_t)sizeof(tok)) {
		return cs_say(CS_ECRYPTO, msg, msglen, "no random bytes from the "
		    "kernel");
	}
	if ((rv = cs_sha256(tok, sizeof(tok), hash)) != CS_OK) {
		cs_say(rv, msg, msglen, "cannot hash the token");
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
			rv = cs_say(CS_EEXIST, msg, msglen, "a token named %s "
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
