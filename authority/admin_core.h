/*
 * admin_core.h - the changes an officer can make (orders, quotas, station
 * enable/disable, admin tokens), shared by the Admin RPC service
 * (admin_service.c) and the web console (console.c) so that both front
 * ends check, store and audit a change exactly the same way.
 *
 * Each function runs one write transaction that commits the change with
 * its audit event (actor as given: "admin:<user>" or "console:<token>").
 * On failure nothing is changed, and msg (msglen bytes) says what was
 * wrong and what to do.  Errors: CS_EINVAL (bad argument), CS_ENOENT (no
 * such order/station), CS_EEXIST, CS_EPRECOND (state forbids it),
 * CS_EEXHAUSTED (store full), CS_ESTORE/CS_EIO/CS_ENOMEM.
 * Thread-safe (the store serialises write transactions).
 */
#ifndef ADMIN_CORE_H
#define ADMIN_CORE_H

#include "countersign/v1/admin.pb-c.h"
#include "firmware.h"
#include "revocation.h"
#include "sessions.h"
#include "cs_crypto.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An admin token: 32 random bytes, shown as 64 hex digits. */
#define ADMIN_TOKEN_BYTES 32u
#define ADMIN_TOKEN_HEX   (2u * ADMIN_TOKEN_BYTES)

/* Longest list of CMs in an order. */
#define ADMIN_MAX_CMS 32u

/* Roles of admin tokens. */
#define ADMIN_ROLE_VIEWER  "viewer"
#define ADMIN_ROLE_OFFICER "officer"

/*
 * Create an order.  *out (free with
 * countersign__v1__stored_order__free_unpacked) is the stored order.
 */
int admin_order_create(store *st, const char *actor,
    const Countersign__V1__CreateOrderRequest *req, StoredOrder **out,
    char *msg, size_t msglen);

/*
 * The same with the firmware an order binds: in->target is loaded by name
 * from fw's profile directories; require_lock needs a profile that can
 * lock; firmware_segments are checked against the target, their digest
 * (which must equal firmware_sha256 when both are given) becomes the
 * order's, and the image is sealed and stored with the order, in the one
 * transaction.  fw NULL (the console): target, image and require_lock are
 * refused.
 */
int admin_order_create_fw(store *st, firmware *fw, const char *actor,
    const Countersign__V1__CreateOrderRequest *in, StoredOrder **out,
    char *msg, size_t msglen);

/*
 * Replace an order's held image (a new version under a new data key; the
 * old chunks deleted and the order's digest changed in the same
 * transaction; audited "firmware.replaced") or withdraw it (chunks
 * deleted, the firmware row kept with withdrawn = true: Sign refuses the
 * order from then on; audited "firmware.withdrawn").  A replace needs an
 * open order bound to a target; it may follow a withdraw.  *out as above.
 */
int admin_order_firmware(store *st, firmware *fw, const char *actor,
    const Countersign__V1__SetOrderFirmwareRequest *in, StoredOrder **out,
    char *msg, size_t msglen);

/* Change an order's quota by delta (non-zero); *out as above. */
int admin_order_quota(store *st, const char *actor, const char *order_id,
    int64_t delta, StoredOrder **out, char *msg, size_t msglen);

/* Close an order for good; *out as above. */
int admin_order_close(store *st, const char *actor, const char *order_id,
    StoredOrder **out, char *msg, size_t msglen);

/*
 * Enable or disable a station; disabling revokes its sessions in ss
 * (may be NULL); either re-issues the station CRL through rev (may be
 * NULL), which also closes a disabled station's connections.  *out freed
 * with countersign__v1__stored_station__free_unpacked.
 */
int admin_station_set_enabled(store *st, sessions *ss, revocation *rev,
    const char *actor,
    const char *name, bool enabled, StoredStation **out, char *msg,
    size_t msglen);

/*
 * Make an admin token for name (store_id_ok, unique) and role (viewer or
 * officer): 32 random bytes, of which only the SHA-256 is stored.
 * token_hex receives the token (shown once).  Audited "token.created".
 */
int admin_token_create(store *st, const char *actor, const char *name,
    const char *role, char token_hex[ADMIN_TOKEN_HEX + 1], char *msg,
    size_t msglen);

/*
 * Find the token given as 64 hex digits (by its SHA-256), in a read
 * transaction.  *out freed with
 * countersign__v1__stored_token__free_unpacked.  Errors: CS_EINVAL (not
 * 64 hex digits), CS_ENOENT (unknown), CS_EPERM (disabled), store errors.
 */
int admin_token_lookup(store *st, const char *token_hex, StoredToken **out);

/*
 * Disable every token called name (audited "token.disabled").  *n gets how
 * many were enabled before.  Errors: CS_ENOENT (no token of that name),
 * CS_EINVAL, store errors; msg says what to do.
 */
int admin_token_disable(store *st, const char *actor, const char *name,
    unsigned *n, char *msg, size_t msglen);

/* The store key of a token: SHA-256 of its 32 bytes (token_hex is its 64
 * hex digits).  CS_OK or CS_EINVAL (not a token), CS_ECRYPTO. */
int admin_token_hash(const char *token_hex, uint8_t hash[CS_SHA256_LEN]);

/* Write the operator's message for a store error rv into msg. */
void admin_store_msg(int rv, char *msg, size_t msglen);

#endif /* ADMIN_CORE_H */
