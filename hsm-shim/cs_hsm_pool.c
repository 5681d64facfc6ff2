/*
 * cs_hsm_pool.c - the HSM shim's token and sessions: finding the token by
 * label, logging in, the pool of logged in sessions that signing borrows
 * from, and recovery when the token or its sessions go away (cs_hsm.c says
 * why it works this way).  Split from cs_hsm.c to keep recovery in one
 * place.
 */
#include "cs_hsm.h"
#include "cs_err.h"
#include "cs_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Last: it includes the PKCS#11 header, whose lowercase macros (value,
 * count, parameter, ...) would break any header after it.
 */
#include "cs_hsm_impl.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void
deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000u;
	ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool
time_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* A token label as shown to people: trailing blanks cut, odd bytes '?'. */
static void
token_label_str(const CK_UTF8CHAR *in, char out[HSM_TOKEN_LABEL_LEN + 1])
{
	size_t n = HSM_TOKEN_LABEL_LEN;

	while (n > 0 && in[n - 1] == ' ') {
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? (char)in[i] : '?';
	}
	out[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Token, sessions, login                                              */

int
hsm_p11_initialize(cs_hsm *h, char *err, size_t errlen)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV                rv;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv         = h->p11->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* Someone else in this process initialised the module. */
		h->owns_init = false;
		return CS_OK;
	}
	if (rv != CKR_OK) {
		cs_log_error("hsm", "C_Initialize failed ckr=%s(0x%lx) "
		    "module=%s", hsm_ckr_name(rv), (unsigned long)rv,
		    h->module);
		snprintf(err, errlen, "PKCS#11 module %s failed to initialise "
		    "(%s); check its configuration", h->module,
		    hsm_ckr_name(rv));
		return CS_EHSM;
	}
	h->owns_init = true;
	return CS_OK;
}

/*
 * Find the slot whose token carries our label.  CS_ENOENT with the labels
 * seen in err when there is none; CS_EPERM when its PIN is locked.
 */
static int
find_slot(cs_hsm *h, CK_SLOT_ID *out, char *err, size_t errlen)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG    n     = 0;
	CK_UTF8CHAR want[HSM_TOKEN_LABEL_LEN];
	CK_FLAGS    flags = 0;
	char        seen[256] = "";
	size_t      seen_len  = 0;
	unsigned    found     = 0;
	CK_RV       rv;
	int         ret = CS_OK;

	memset(want, ' ', sizeof(want));
	memcpy(want, h->token, strlen(h->token));

	if ((rv = h->p11->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK) {
		goto fail;
	}
	if (n > HSM_SLOTS_MAX) {
		n = HSM_SLOTS_MAX;
	}
	if ((slots = calloc(n > 0 ? n : 1, sizeof(*slots))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return CS_ENOMEM;
	}
	if ((rv = h->p11->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		goto fail;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char          shown[HSM_TOKEN_LABEL_LEN + 1];

		if (h->p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
			continue; /* a slot in trouble is not ours to judge */
		}
		if (memcmp(ti.label, want, sizeof(want)) == 0) {
			*out  = slots[i];
			flags = ti.flags;
			found++;
			continue;
		}
		if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0) {
			continue;
		}
		token_label_str(ti.label, shown);
		int m = snprintf(seen + seen_len, sizeof(seen) - seen_len,
		    "%s\"%s\"", seen_len > 0 ? ", " : "", shown);
		if (m > 0 && (size_t)m < sizeof(seen) - seen_len) {
			seen_len += (size_t)m;
		}
	}
	if (found == 0) {
		snprintf(err, errlen, "no token labelled \"%s\" in %s "
		    "(tokens present: %s)", h->token, h->module,
		    seen_len > 0 ? seen : "none");
		ret = CS_ENOENT;
	} else if (found > 1) {
		snprintf(err, errlen, "%u tokens are labelled \"%s\"; token "
		    "labels must be unique", found, h->token);
		ret = CS_EINVAL;
	} else if (flags & CKF_USER_PIN_LOCKED) {
		snprintf(err, errlen, "PIN locked: the security officer must "
		    "reset it (softhsm2-util / the HSM's admin tool); token "
		    "\"%s\"", h->token);
		ret = CS_EPERM;
	} else if ((flags & CKF_USER_PIN_INITIALIZED) == 0) {
		snprintf(err, errlen, "token \"%s\" has no user PIN yet; the "
		    "security officer must initialise it", h->token);
		ret = CS_EPRECOND;
	}
	free(slots);
	return ret;
fail:
	free(slots);
	cs_log_error("hsm", "C_GetSlotList failed ckr=%s(0x%lx)",
	    hsm_ckr_name(rv), (unsigned long)rv);
	snprintf(err, errlen, "cannot list the slots of %s (%s)", h->module,
	    hsm_ckr_name(rv));
	return CS_EHSM;
}

/*
 * Log in.  A PIN error (incorrect, invalid, wrong length, expired, locked)
 * is final: a real HSM locks its user PIN after a few wrong attempts, so
 * once the token has refused the PIN no later recovery tries it again
 * (cs_hsm_pin_refused() tells; an operator must act and restart).
 */
static int
login(cs_hsm *h, CK_SESSION_HANDLE s, char *err, size_t errlen)
{
	CK_RV rv;

	if (__atomic_load_n(&h->pin_refused, __ATOMIC_ACQUIRE)) {
		snprintf(err, errlen, "the token \"%s\" refused the PIN "
		    "before; not trying it again (fix the PIN, then restart)",
		    h->token);
		return CS_EPERM;
	}
	rv = h->p11->C_Login(s, CKU_USER, (CK_UTF8CHAR *)h->pin, h->pin_len);
	if (hsm_ckr_to_err(rv) == CS_EPERM) {
		__atomic_store_n(&h->pin_refused, true, __ATOMIC_RELEASE);
	}

	switch (rv) {
	case CKR_OK:
	case CKR_USER_ALREADY_LOGGED_IN: /* login is per application */
		return CS_OK;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		snprintf(err, errlen, "wrong PIN for token \"%s\"", h->token);
		break;
	case CKR_PIN_LOCKED:
		snprintf(err, errlen, "PIN locked: the security officer must "
		    "reset it (softhsm2-util / the HSM's admin tool); token "
		    "\"%s\"", h->token);
		break;
	case CKR_PIN_EXPIRED:
		snprintf(err, errlen, "the PIN of token \"%s\" has expired; "
		    "set a new one with the HSM's admin tool", h->token);
		break;
	default:
		snprintf(err, errlen, "login to token \"%s\" failed (%s)",
		    h->token, hsm_ckr_name(rv));
		break;
	}
	cs_log_error("hsm", "C_Login failed ckr=%s(0x%lx) token=%s",
	    hsm_ckr_name(rv), (unsigned long)rv, h->token);
	return hsm_ckr_to_err(rv);
}

/*
 * Find the token, open h->nsess sessions into sess[] and log in.  On
 * failure nothing stays open.
 */
int
hsm_connect_token(cs_hsm *h, CK_SESSION_HANDLE *sess, char *err, size_t errlen)
{
	CK_SLOT_ID slot = 0;
	unsigned   n    = 0;
	CK_RV      rv   = CKR_OK;
	int        ret;

	if ((ret = find_slot(h, &slot, err, errlen)) != CS_OK) {
		return ret;
	}
	for (n = 0; n < h->nsess; n++) {
		rv = h->p11->C_OpenSession(slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess[n]);
		if (rv != CKR_OK) {
			cs_log_error("hsm", "C_OpenSession failed "
			    "ckr=%s(0x%lx) token=%s", hsm_ckr_name(rv),
			    (unsigned long)rv, h->token);
			snprintf(err, errlen, "cannot open a session on token "
			    "\"%s\" (%s)", h->token, hsm_ckr_name(rv));
			ret = hsm_ckr_to_err(rv);
			goto fail;
		}
		if (n == 0 && (ret = login(h, sess[0], err, errlen)) != 0) {
			n = 1;
			goto fail;
		}
	}
	h->slot = slot;
	return CS_OK;
fail:
	while (n > 0) {
		h->p11->C_CloseSession(sess[--n]);
	}
	return ret;
}

/*
 * Replace every session: close them all, find the token again, open and
 * log in.  If that fails and no session is in use (quiet), finalize and
 * initialize the module once more, which makes it rescan its tokens.
 *
 * Not quiet means a call has been running for longer than wait_ms (a hung
 * HSM): its session is closed under it.  PKCS#11 allows that from another
 * thread, and there is no other way forward, but not every module copes
 * (SoftHSM 2.6.1 does not: see tests/unit/hsm_test.c).
 */
static int
reconnect(cs_hsm *h, CK_SESSION_HANDLE *sess, bool quiet, bool first)
{
	char  err[512];
	CK_RV rv;
	int   ret;

	rv = h->p11->C_CloseAllSessions(h->slot);
	if (rv != CKR_OK) {
		cs_log_debug("hsm", "C_CloseAllSessions ckr=%s(0x%lx)",
		    hsm_ckr_name(rv), (unsigned long)rv);
	}
	ret = hsm_connect_token(h, sess, err, sizeof(err));
	if (ret != CS_OK && ret != CS_EPERM && quiet) {
		if (first) {
			cs_log_info("hsm", "re-initialising the PKCS#11 "
			    "module token=%s module=%s", h->token, h->module);
		}
		if (h->owns_init) {
			h->p11->C_Finalize(NULL);
			h->owns_init = false;
		}
		if (hsm_p11_initialize(h, err, sizeof(err)) == CS_OK) {
			ret = hsm_connect_token(h, sess, err, sizeof(err));
		}
	}
	if (ret != CS_OK) {
		/* Once per outage; the attempts that follow say nothing. */
		if (first) {
			cs_log_error("hsm", "token not usable, will retry on "
			    "later calls: %s err=%s", err, cs_errname(ret));
		}
		return ret == CS_EPERM ? CS_EPERM : CS_EHSM;
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* The session pool                                                    */

static void
kc_clear(cs_hsm *h)
{
	pthread_rwlock_wrlock(&h->klock);
	memset(h->keys, 0, sizeof(h->keys));
	pthread_rwlock_unlock(&h->klock);
}

/*
 * Called with mtx held by the one borrower that found the pool broken;
 * returns with mtx held.  Other borrowers wait on cv meanwhile.  After a
 * failure, further attempts wait an exponentially growing pause
 * (HSM_BACKOFF_*): while the token is away, borrowers fail fast instead
 * of finalizing and initializing the module in a tight loop.
 */
static int
pool_recover_locked(cs_hsm *h)
{
	CK_SESSION_HANDLE fresh[HSM_SESSIONS_MAX];
	struct timespec   deadline;
	bool              quiet, first;
	int               rv;

	h->recovering = true;
	h->gen++; /* sessions still lent out are stale from now on */
	h->nidle = 0;
	/* Let calls in flight finish before sessions are closed under them
	 * and, above all, before the module may be finalized. */
	deadline_after(&deadline, h->wait_ms);
	while (h->lent > 0) {
		h->waiters++;
		int w = pthread_cond_timedwait(&h->cv, &h->mtx, &deadline);
		h->waiters--;
		if (w == ETIMEDOUT) {
			break;
		}
	}
	quiet = h->lent == 0;
	first = h->backoff_ms == 0;
	pthread_mutex_unlock(&h->mtx);

	kc_clear(h);
	rv = reconnect(h, fresh, quiet, first);

	pthread_mutex_lock(&h->mtx);
	h->recovering = false;
	if (rv == CS_OK) {
		memcpy(h->idle, fresh, h->nsess * sizeof(fresh[0]));
		h->nidle      = h->nsess;
		h->broken     = false;
		h->backoff_ms = 0;
		cs_log_info("hsm", "sessions re-opened token=%s sessions=%u",
		    h->token, h->nsess);
	} else {
		h->recover_fails++;
		h->recover_rv = rv;
		h->backoff_ms = first ? HSM_BACKOFF_MIN_MS
		                      : h->backoff_ms * 2;
		if (h->backoff_ms > HSM_BACKOFF_MAX_MS) {
			h->backoff_ms = HSM_BACKOFF_MAX_MS;
		}
		deadline_after(&h->retry_at, h->backoff_ms);
	}
	pthread_cond_broadcast(&h->cv);
	return rv;
}

/* Borrow a session, recovering the pool first if it is broken. */
int
hsm_op_begin(cs_hsm *h, struct hsm_op *op)
{
	struct timespec deadline;
	unsigned long   fails;
	int             rv = CS_OK;

	op->h   = h;
	op->ckr = CKR_OK;
	op->fn  = NULL;
	pthread_mutex_lock(&h->mtx);
	if (!h->broken && h->nidle > 0) { /* the common case */
		op->s   = h->idle[--h->nidle];
		op->gen = h->gen;
		h->lent++;
		pthread_mutex_unlock(&h->mtx);
		return CS_OK;
	}
	deadline_after(&deadline, h->wait_ms);
	fails = h->recover_fails;
	for (;;) {
		if (h->broken && !h->recovering) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (h->backoff_ms > 0 &&
			    time_before(&now, &h->retry_at)) {
				rv = h->recover_rv; /* too soon to try again */
				break;
			}
			if ((rv = pool_recover_locked(h)) != CS_OK) {
				break;
			}
			continue;
		}
		if (!h->broken && h->nidle > 0) {
			op->s   = h->idle[--h->nidle];
			op->gen = h->gen;
			h->lent++;
			break;
		}
		if (h->recover_fails != fails) {
			rv = h->recover_rv; /* someone else just tried */
			break;
		}
		h->waiters++;
		int w = pthread_cond_timedwait(&h->cv, &h->mtx, &deadline);
		h->waiters--;
		if (w == ETIMEDOUT) {
			rv = h->broken ? CS_EHSM : CS_ETIMEDOUT;
			if (rv == CS_ETIMEDOUT) {
				cs_log_warn("hsm", "no free session within "
				    "wait_ms=%u token=%s sessions=%u",
				    h->wait_ms, h->token, h->nsess);
			}
			break;
		}
	}
	pthread_mutex_unlock(&h->mtx);
	return rv;
}

/*
 * Give the session back.  label names the key for the log line of a
 * failure.  Returns true when the failure is worth one retry after
 * recovery.
 */
bool
hsm_op_end(struct hsm_op *op, const char *label)
{
	cs_hsm *h    = op->h;
	bool    lost = op->ckr != CKR_OK && hsm_ckr_lost(op->ckr);

	if (op->ckr != CKR_OK) {
		cs_log_warn("hsm", "%s failed ckr=%s(0x%lx) token=%s key=%s%s",
		    op->fn, hsm_ckr_name(op->ckr), (unsigned long)op->ckr,
		    h->token, label != NULL ? label : "-",
		    lost ? " (re-opening sessions)" : "");
	}
	pthread_mutex_lock(&h->mtx);
	h->lent--;
	if (op->gen == h->gen) {
		h->broken = h->broken || lost;
		h->idle[h->nidle++] = op->s;
	}
	/* else: recovery already closed it */
	if (h->waiters > 0) {
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mtx);
	return lost && hsm_ckr_retry(op->ckr);
}

