/*
 * cs_hsm_impl.h - what the pieces of the HSM shim share: the PKCS#11
 * header, the limits, struct cs_hsm with its session pool and key cache,
 * the borrowed-session record and the functions one piece calls in
 * another.  Only cs_hsm.c, cs_hsm_pool.c, cs_hsm_keys.c and
 * cs_hsm_secret.c include it; cs_hsm.h is the module's interface and
 * stays free of PKCS#11.
 */
#ifndef CS_HSM_IMPL_H
#define CS_HSM_IMPL_H

#include "cs_hsm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Last: it defines lowercase macros (value, count, parameter, ...). */
#include <p11-kit/pkcs11.h>

#define HSM_SESSIONS_DEFAULT 2u
#define HSM_SESSIONS_MAX     64u
#define HSM_WAIT_DEFAULT_MS  5000u
#define HSM_WAIT_MAX_MS      600000u
#define HSM_PIN_MAX          255u /* bytes; SoftHSM's and most HSMs' limit */
#define HSM_LABEL_MAX        64u  /* key labels, bytes */
#define HSM_TOKEN_LABEL_LEN  32u  /* CK_TOKEN_INFO.label, blank padded */
#define HSM_SLOTS_MAX        1024u
#define HSM_KEY_CACHE        16u  /* cached label -> handle entries */
#define HSM_ATTR_MAX         128u /* CKA_EC_POINT / CKA_EC_PARAMS buffer */
#define HSM_LIST_MAX         4096u /* private keys listed at most */
#define HSM_MSG_MAX          ((size_t)64 << 20) /* Ed25519 message */
#define HSM_SIG_BUF          128u /* room for any signature of ours */
#define HSM_BACKOFF_MIN_MS   20u   /* first pause after a failed recovery */
#define HSM_BACKOFF_MAX_MS   1000u /* longest pause between attempts */

struct hsm_cached_key {
	char             label[HSM_LABEL_MAX + 1];
	CK_OBJECT_HANDLE obj;
	cs_alg           alg;
	unsigned         gen; /* pool generation the handle was found in */
	bool             used;
};

struct cs_hsm {
	void             *dl;
	CK_FUNCTION_LIST *p11;
	bool              owns_init; /* our C_Initialize: ours to finalize */
	char             *module;
	char              token[HSM_TOKEN_LABEL_LEN + 1];
	CK_SLOT_ID        slot;

	char  *pin; /* page of its own: mlock'ed, wiped at close */
	size_t pin_len;
	size_t pin_map;

	/* The pool.  mtx guards everything from here to klock. */
	pthread_mutex_t    mtx;
	pthread_cond_t     cv; /* a session came back, or recovery ended */
	unsigned           nsess;
	unsigned           wait_ms;
	CK_SESSION_HANDLE *idle;
	unsigned           nidle;
	unsigned           lent;
	unsigned           waiters;
	unsigned           gen;    /* bumped when all sessions are replaced */
	bool               broken; /* next borrower must recover first */
	bool               pin_refused; /* atomic: the token refused the PIN;
	                                   never log in with it again */
	bool               recovering;
	unsigned long      recover_fails; /* failed recoveries so far */
	int                recover_rv;    /* the last one's error */
	unsigned           backoff_ms;    /* pause after the last failure */
	struct timespec    retry_at;      /* no new attempt before this */

	pthread_rwlock_t      klock;
	struct hsm_cached_key keys[HSM_KEY_CACHE];
	unsigned              kc_next; /* next entry to evict */

	bool locks_ok;
};

/* One borrowed session and what went wrong with it. */
struct hsm_op {
	cs_hsm           *h;
	CK_SESSION_HANDLE s;
	unsigned          gen;
	CK_RV             ckr; /* first failing PKCS#11 result, or CKR_OK */
	const char       *fn;  /* the function that returned it */
};

/* ------------------------------------------------------------------ */
/* cs_hsm.c: CKR_* translation and labels. */

/* The symbolic name of a PKCS#11 result, for log lines. */
const char *hsm_ckr_name(CK_RV rv);
/* The cs_err for a PKCS#11 result. */
int hsm_ckr_to_err(CK_RV rv);
/* Results that mean our sessions, our login or the token are gone. */
bool hsm_ckr_lost(CK_RV rv);
/* Of those, the ones worth one transparent retry after recovery. */
bool hsm_ckr_retry(CK_RV rv);
/* Record a failing call in op; returns its cs_err. */
int hsm_op_fail(struct hsm_op *op, const char *fn, CK_RV rv);
/* Key labels: 1..64 bytes of printable ASCII.  Returns the length or 0. */
size_t hsm_label_len(const char *label);

/* cs_hsm_pool.c: the token, its sessions and the pool. */

/* C_Initialize, noting whether the initialisation is ours to finalize. */
int hsm_p11_initialize(cs_hsm *h, char *err, size_t errlen);
/*
 * Find the token, open h->nsess sessions into sess[] and log in.  On
 * failure nothing stays open.
 */
int hsm_connect_token(cs_hsm *h, CK_SESSION_HANDLE *sess, char *err,
    size_t errlen);
/* Borrow a session, recovering the pool first if it is broken. */
int hsm_op_begin(cs_hsm *h, struct hsm_op *op);
/*
 * Give the session back.  label names the key for the log line of a
 * failure.  Returns true when the failure is worth one retry after
 * recovery.
 */
bool hsm_op_end(struct hsm_op *op, const char *label);

#endif /* CS_HSM_IMPL_H */
