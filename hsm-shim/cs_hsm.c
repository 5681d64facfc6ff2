/*
 * cs_hsm.c - the HSM shim: one PKCS#11 module, one token, a pool of logged
 * in sessions, a label -> handle cache, and recovery when the token or
 * its sessions go away (see cs_hsm.h for the contract).
 *
 * Why it looks the way it does:
 *
 * - Only this file includes the PKCS#11 header (it #defines common
 *   lowercase words such as value and count), and it includes it last.
 * - The token is found by its label, blank-padded to 32 bytes as
 *   CK_TOKEN_INFO stores it, never by slot number: SoftHSM and real HSMs
 *   renumber slots.
 * - Signing is the hot path.  It takes a session from the pool (one mutex),
 *   finds the key handle in a small cache (one read lock), and calls
 *   C_SignInit + C_Sign.  Token object handles are valid across all
 *   sessions of the application, so the cache is keyed by label alone; it
 *   is tagged with the pool generation and emptied on recovery, because a
 *   module may renumber handles once all sessions were closed (SoftHSM
 *   does).
 * - Recovery: a call that fails with a "sessions or token lost" code marks
 *   the pool broken; the next borrower closes all sessions, finds the
 *   token again, opens new sessions and logs in.  If the token cannot be
 *   found that way, the module is finalized and initialized again (SoftHSM,
 *   like many modules, only rescans its tokens in C_Initialize).  Calls
 *   that failed because a handle went stale are retried once, transparently,
 *   after recovery; the others return CS_EHSM.
 * - The user PIN stays in memory for the re-login that recovery needs.
 *   That is a trade-off: an unattended authority must survive an HSM
 *   restart without an operator typing the PIN again, and the PIN is
 *   already in a file on the same host.  It is kept in its own page,
 *   locked into RAM (mlock, no swap), excluded from core dumps
 *   (MADV_DONTDUMP), and wiped in cs_hsm_close.
 */
#include "cs_hsm.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* DER of the curve parameters (CKA_EC_PARAMS) we know. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
/* What pkcs11-tool (OpenSC 0.23) writes: PrintableString "edwards25519". */
static const uint8_t str_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
    'd', 's', '2', '5', '5', '1', '9'};

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
/* CKR_* names and their translation                                   */

#define HSM_CKR_LIST(X)                                                       \
	X(CKR_OK)                                                             \
	X(CKR_CANCEL)                                                         \
	X(CKR_HOST_MEMORY)                                                    \
	X(CKR_SLOT_ID_INVALID)                                                \
	X(CKR_GENERAL_ERROR)                                                  \
	X(CKR_FUNCTION_FAILED)                                                \
	X(CKR_ARGUMENTS_BAD)                                                  \
	X(CKR_NO_EVENT)                                                       \
	X(CKR_NEED_TO_CREATE_THREADS)                                         \
	X(CKR_CANT_LOCK)                                                      \
	X(CKR_ATTRIBUTE_READ_ONLY)                                            \
	X(CKR_ATTRIBUTE_SENSITIVE)                                            \
	X(CKR_ATTRIBUTE_TYPE_INVALID)                                         \
	X(CKR_ATTRIBUTE_VALUE_INVALID)                                        \
	X(CKR_ACTION_PROHIBITED)                                              \
	X(CKR_DATA_INVALID)                                                   \
	X(CKR_DATA_LEN_RANGE)                                                 \
	X(CKR_DEVICE_ERROR)                                                   \
	X(CKR_DEVICE_MEMORY)                                                  \
	X(CKR_DEVICE_REMOVED)                                                 \
	X(CKR_FUNCTION_CANCELED)                                              \
	X(CKR_FUNCTION_NOT_PARALLEL)                                          \
	X(CKR_FUNCTION_NOT_SUPPORTED)                                         \
	X(CKR_KEY_HANDLE_INVALID)                                             \
	X(CKR_KEY_SIZE_RANGE)                                                 \
	X(CKR_KEY_TYPE_INCONSISTENT)                                          \
	X(CKR_KEY_FUNCTION_NOT_PERMITTED)                                     \
	X(CKR_MECHANISM_INVALID)                                              \
	X(CKR_MECHANISM_PARAM_INVALID)                                        \
	X(CKR_OBJECT_HANDLE_INVALID)                                          \
	X(CKR_OPERATION_ACTIVE)                                               \
	X(CKR_OPERATION_NOT_INITIALIZED)                                      \
	X(CKR_PIN_INCORRECT)                                                  \
	X(CKR_PIN_INVALID)                                                    \
	X(CKR_PIN_LEN_RANGE)                                                  \
	X(CKR_PIN_EXPIRED)                                                    \
	X(CKR_PIN_LOCKED)                                                     \
	X(CKR_SESSION_CLOSED)                                                 \
	X(CKR_SESSION_COUNT)                                                  \
	X(CKR_SESSION_HANDLE_INVALID)                                         \
	X(CKR_SESSION_PARALLEL_NOT_SUPPORTED)                                 \
	X(CKR_SESSION_READ_ONLY)                                              \
	X(CKR_SESSION_EXISTS)                                                 \
	X(CKR_SESSION_READ_ONLY_EXISTS)                                       \
	X(CKR_SESSION_READ_WRITE_SO_EXISTS)                                   \
	X(CKR_SIGNATURE_INVALID)                                              \
	X(CKR_SIGNATURE_LEN_RANGE)                                            \
	X(CKR_TEMPLATE_INCOMPLETE)                                            \
	X(CKR_TEMPLATE_INCONSISTENT)                                          \
	X(CKR_TOKEN_NOT_PRESENT)                                              \
	X(CKR_TOKEN_NOT_RECOGNIZED)                                           \
	X(CKR_TOKEN_WRITE_PROTECTED)                                          \
	X(CKR_USER_ALREADY_LOGGED_IN)                                         \
	X(CKR_USER_NOT_LOGGED_IN)                                             \
	X(CKR_USER_PIN_NOT_INITIALIZED)                                       \
	X(CKR_USER_TYPE_INVALID)                                              \
	X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)                                 \
	X(CKR_USER_TOO_MANY_TYPES)                                            \
	X(CKR_RANDOM_SEED_NOT_SUPPORTED)                                      \
	X(CKR_RANDOM_NO_RNG)                                                  \
	X(CKR_DOMAIN_PARAMS_INVALID)                                          \
	X(CKR_CURVE_NOT_SUPPORTED)                                            \
	X(CKR_BUFFER_TOO_SMALL)                                               \
	X(CKR_INFORMATION_SENSITIVE)                                          \
	X(CKR_CRYPTOKI_NOT_INITIALIZED)                                       \
	X(CKR_CRYPTOKI_ALREADY_INITIALIZED)                                   \
	X(CKR_MUTEX_BAD)                                                      \
	X(CKR_MUTEX_NOT_LOCKED)                                               \
	X(CKR_FIPS_SELF_TEST_FAILED)                                          \
	X(CKR_LIBRARY_LOAD_FAILED)                                            \
	X(CKR_PIN_TOO_WEAK)                                                   \
	X(CKR_PUBLIC_KEY_INVALID)                                             \
	X(CKR_FUNCTION_REJECTED)

/* The symbolic name of a PKCS#11 result, for log lines. */
static const char *
ckr_name(CK_RV rv)
{
	switch (rv) {
#define HSM_CKR_CASE(name)                                                    \
	case name:                                                            \
		return #name;
		HSM_CKR_LIST(HSM_CKR_CASE)
#undef HSM_CKR_CASE
	}
	return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
}

static int
ckr_to_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return CS_OK;
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_MEMORY:
		return CS_ENOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
		return CS_EPERM;
	case CKR_ARGUMENTS_BAD:
	case CKR_DATA_INVALID:
	case CKR_DATA_LEN_RANGE:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_DOMAIN_PARAMS_INVALID:
	case CKR_CURVE_NOT_SUPPORTED:
		return CS_EINVAL;
	default:
		return CS_EHSM;
	}
}

/* Results that mean our sessions, our login or the token are gone. */
static bool
ckr_lost(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_DEVICE_ERROR:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_SLOT_ID_INVALID:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_OPERATION_ACTIVE: /* a session left in a state we never
				      leave one in: replace it */
		return true;
	default:
		return false;
	}
}

/*
 * Of those, the ones where the operation itself was fine and only a handle
 * went stale: worth one transparent retry after recovery.  A removed or
 * failing device is reported to the caller.
 */
static bool
ckr_retry(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OPERATION_ACTIVE:
		return true;
	default:
		return false;
	}
}

/* Record a failing call in op; returns its cs_err. */
static int
op_fail(struct hsm_op *op, const char *fn, CK_RV rv)
{
	if (op->ckr == CKR_OK) {
		op->ckr = rv;
		op->fn  = fn;
	}
	return ckr_to_err(rv);
}

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

/* Key labels: 1..64 bytes of printable ASCII.  Returns the length or 0. */
static size_t
label_len(const char *label)
{
	size_t n = 0;

	if (label == NULL) {
		return 0;
	}
	for (; label[n] != '\0'; n++) {
		if (n >= HSM_LABEL_MAX || label[n] < 0x20 || label[n] > 0x7e) {
			return 0;
		}
	}
	return n;
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

static bool
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* ------------------------------------------------------------------ */
/* The PIN                                                             */

/*
 * Read the PIN straight into its locked page: from the first line of
 * o->pin_file, or from the environment variable named o->pin_env.
 */
static int
pin_load(cs_hsm *h, const struct cs_hsm_opts *o, char *err, size_t errlen)
{
	long   page = sysconf(_SC_PAGESIZE);
	size_t n    = 0;
	int    fd   = -1;
	int    rv   = CS_OK;

	h->pin_map = page > 0 ? (size_t)page : 4096u;
	h->pin = mmap(NULL, h->pin_map, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->pin == MAP_FAILED) {
		h->pin = NULL;
		snprintf(err, errlen, "cannot allocate memory for the PIN");
		return CS_ENOMEM;
	}
	if (mlock(h->pin, h->pin_map) != 0) {
		cs_log_warn("hsm", "cannot lock the PIN in memory, it may be "
		    "swapped out errno=%d", errno);
	}
	(void)madvise(h->pin, h->pin_map, MADV_DONTDUMP);

	if (o->pin_file != NULL) {
		struct stat st;

		fd = open(o->pin_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rv = errno == ENOENT ? CS_ENOENT : CS_EPERM;
			snprintf(err, errlen, "cannot open PIN file %s: %s",
			    o->pin_file, strerror(errno));
			goto out;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			rv = CS_EINVAL;
			snprintf(err, errlen, "PIN file %s is not a regular "
			    "file", o->pin_file);
			goto out;
		}
		if ((st.st_mode & 077) != 0) {
			rv = CS_EPERM;
			snprintf(err, errlen, "PIN file %s may be read by group "
			    "or others (mode %04o): chmod 600 %s", o->pin_file,
			    (unsigned)(st.st_mode & 07777), o->pin_file);
			goto out;
		}
		/* Up to one byte more than a PIN and its line end. */
		while (n < HSM_PIN_MAX + 2) {
			ssize_t r = read(fd, h->pin + n, HSM_PIN_MAX + 2 - n);
			if (r < 0 && errno == EINTR) {
				continue;
			}
			if (r < 0) {
				rv = CS_EIO;
				snprintf(err, errlen, "cannot read PIN file "
				    "%s: %s", o->pin_file, strerror(errno));
				goto out;
			}
			if (r == 0) {
				break;
			}
			n += (size_t)r;
		}
	} else {
		const char *v = getenv(o->pin_env);
		if (v == NULL || v[0] == '\0') {
			rv = CS_ENOENT;
			snprintf(err, errlen, "environment variable %s with "
			    "the PIN is not set", o->pin_env);
			goto out;
		}
		n = strnlen(v, HSM_PIN_MAX + 2);
		memcpy(h->pin, v, n);
	}
	/* The PIN is the first line, without its line end. */
	char *nl = memchr(h->pin, '\n', n);
	if (nl != NULL) {
		n = (size_t)(nl - h->pin);
	}
	if (n > 0 && h->pin[n - 1] == '\r') {
		n--;
	}
	if (n > HSM_PIN_MAX) {
		rv = CS_EINVAL;
		snprintf(err, errlen, "the PIN in %s is longer than %u bytes",
		    o->pin_file != NULL ? o->pin_file : o->pin_env,
		    HSM_PIN_MAX);
		goto out;
	}
	if (n == 0) {
		rv = CS_EINVAL;
		snprintf(err, errlen, "the PIN in %s is empty",
		    o->pin_file != NULL ? o->pin_file : o->pin_env);
		goto out;
	}
	h->pin_len = n;
out:
	if (fd >= 0) {
		close(fd);
	}
	/* Whatever follows the first line is no business of ours. */
	cs_wipe(h->pin + h->pin_len, h->pin_map - h->pin_len);
	return rv;
}

static void
pin_free(cs_hsm *h)
{
	if (h->pin != NULL) {
		cs_wipe(h->pin, h->pin_map);
		munlock(h->pin, h->pin_map);
		munmap(h->pin, h->pin_map);
		h->pin     = NULL;
		h->pin_len = 0;
	}
}

/* ------------------------------------------------------------------ */
/* Token, sessions, login                                              */

static int
p11_initialize(cs_hsm *h, char *err, size_t errlen)
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
		    "module=%s", ckr_name(rv), (unsigned long)rv, h->module);
		snprintf(err, errlen, "PKCS#11 module %s failed to initialise "
		    "(%s); check its configuration", h->module, ckr_name(rv));
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
	    ckr_name(rv), (unsigned long)rv);
	snprintf(err, errlen, "cannot list the slots of %s (%s)", h->module,
	    ckr_name(rv));
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
	if (ckr_to_err(rv) == CS_EPERM) {
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
		    h->token, ckr_name(rv));
		break;
	}
	cs_log_error("hsm", "C_Login failed ckr=%s(0x%lx) token=%s",
	    ckr_name(rv), (unsigned long)rv, h->token);
	return ckr_to_err(rv);
}

/*
 * Find the token, open h->nsess sessions into sess[] and log in.  On
 * failure nothing stays open.
 */
static int
connect_token(cs_hsm *h, CK_SESSION_HANDLE *sess, char *err, size_t errlen)
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
			    "ckr=%s(0x%lx) token=%s", ckr_name(rv),
			    (unsigned long)rv, h->token);
			snprintf(err, errlen, "cannot open a session on token "
			    "\"%s\" (%s)", h->token, ckr_name(rv));
			ret = ckr_to_err(rv);
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
		    ckr_name(rv), (unsigned long)rv);
	}
	ret = connect_token(h, sess, err, sizeof(err));
	if (ret != CS_OK && ret != CS_EPERM && quiet) {
		if (first) {
			cs_log_info("hsm", "re-initialising the PKCS#11 "
			    "module token=%s module=%s", h->token, h->module);
		}
		if (h->owns_init) {
			h->p11->C_Finalize(NULL);
			h->owns_init = false;
		}
		if (p11_initialize(h, err, sizeof(err)) == CS_OK) {
			ret = connect_token(h, sess, err, sizeof(err));
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
static int
op_begin(cs_hsm *h, struct hsm_op *op)
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
static bool
op_end(struct hsm_op *op, const char *label)
{
	cs_hsm *h    = op->h;
	bool    lost = op->ckr != CKR_OK && ckr_lost(op->ckr);

	if (op->ckr != CKR_OK) {
		cs_log_warn("hsm", "%s failed ckr=%s(0x%lx) token=%s key=%s%s",
		    op->fn, ckr_name(op->ckr), (unsigned long)op->ckr,
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
	return lost && ckr_retry(op->ckr);
}

/* ------------------------------------------------------------------ */
/* Objects                                                             */

/*
 * Find the one object of class cls labelled label.  CS_ENOENT when there
 * is none, CS_EPRECOND when the label is ambiguous.
 */
static int
find_object(struct hsm_op *op, CK_OBJECT_CLASS cls, const char *label,
    CK_OBJECT_HANDLE *obj)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  found[2];
	CK_ULONG          n = 0;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_LABEL, (void *)label, strlen(label)},
        };
	CK_RV rv;

	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 2)) != CKR_OK) {
		return op_fail(op, "C_FindObjectsInit", rv);
	}
	rv = p11->C_FindObjects(op->s, found, 2, &n);
	CK_RV fin = p11->C_FindObjectsFinal(op->s);
	if (rv != CKR_OK) {
		return op_fail(op, "C_FindObjects", rv);
	}
	if (fin != CKR_OK) {
		return op_fail(op, "C_FindObjectsFinal", fin);
	}
	if (n == 0 && cls == CKO_PRIVATE_KEY) {
		/* Private objects are invisible without a login.  A session
		 * that lost it must not make a key look missing. */
		CK_SESSION_INFO si;
		rv = p11->C_GetSessionInfo(op->s, &si);
		if (rv != CKR_OK) {
			return op_fail(op, "C_GetSessionInfo", rv);
		}
		if (si.state != CKS_RO_USER_FUNCTIONS &&
		    si.state != CKS_RW_USER_FUNCTIONS) {
			return op_fail(op, "C_FindObjects",
			    CKR_USER_NOT_LOGGED_IN);
		}
	}
	if (n == 0) {
		return CS_ENOENT;
	}
	if (n > 1) {
		cs_log_warn("hsm", "label is ambiguous, several objects carry "
		    "it key=%s token=%s", label, op->h->token);
		return CS_EPRECOND;
	}
	*obj = found[0];
	return CS_OK;
}

/* The algorithm of a key object, CS_ALG_NONE for any other kind. */
static int
object_alg(struct hsm_op *op, CK_OBJECT_HANDLE obj, cs_alg *alg)
{
	CK_KEY_TYPE  kt = 0;
	uint8_t      params[HSM_ATTR_MAX];
	CK_ATTRIBUTE a  = {CKA_KEY_TYPE, &kt, sizeof(kt)};
	CK_RV        rv;

	*alg = CS_ALG_NONE;
	rv   = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv != CKR_OK) {
		return op_fail(op, "C_GetAttributeValue", rv);
	}
	if (kt != CKK_EC && kt != CKK_EC_EDWARDS) {
		return CS_OK;
	}
	a = (CK_ATTRIBUTE){CKA_EC_PARAMS, params, sizeof(params)};
	rv = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_BUFFER_TOO_SMALL) {
		return CS_OK; /* not a curve of ours */
	}
	if (rv != CKR_OK) {
		return op_fail(op, "C_GetAttributeValue", rv);
	}
	if (kt == CKK_EC &&
	    bytes_eq(params, a.ulValueLen, oid_p256, sizeof(oid_p256))) {
		*alg = CS_ALG_P256;
	} else if (kt == CKK_EC_EDWARDS &&
	    (bytes_eq(params, a.ulValueLen, oid_ed25519,
		 sizeof(oid_ed25519)) ||
		bytes_eq(params, a.ulValueLen, str_ed25519,
		    sizeof(str_ed25519)))) {
		*alg = CS_ALG_ED25519;
	}
	return CS_OK;
}

/*
 * The private key labelled label: from the cache when it holds an entry of
 * this pool generation, from the token otherwise.
 */
static int
key_handle(struct hsm_op *op, const char *label, CK_OBJECT_HANDLE *obj,
    cs_alg *alg)
{
	cs_hsm *h = op->h;
	int     rv;

	pthread_rwlock_rdlock(&h->klock);
	for (unsigned i = 0; i < HSM_KEY_CACHE; i++) {
		struct hsm_cached_key *k = &h->keys[i];
		if (k->used && k->gen == op->gen &&
		    strcmp(k->label, label) == 0) {
			*obj = k->obj;
			*alg = k->alg;
			pthread_rwlock_unlock(&h->klock);
			return CS_OK;
		}
	}
	pthread_rwlock_unlock(&h->klock);

	if ((rv = find_object(op, CKO_PRIVATE_KEY, label, obj)) != CS_OK ||
	    (rv = object_alg(op, *obj, alg)) != CS_OK) {
		return rv;
	}

	/* Reuse this label's entry, else a free or stale one, else evict. */
	pthread_rwlock_wrlock(&h->klock);
	struct hsm_cached_key *slot = NULL;
	for (unsigned i = 0; i < HSM_KEY_CACHE && slot == NULL; i++) {
		if (h->keys[i].used && strcmp(h->keys[i].label, label) == 0) {
			slot = &h->keys[i];
		}
	}
	for (unsigned i = 0; i < HSM_KEY_CACHE && slot == NULL; i++) {
		if (!h->keys[i].used || h->keys[i].gen != op->gen) {
			slot = &h->keys[i];
		}
	}
	if (slot == NULL) {
		slot       = &h->keys[h->kc_next];
		h->kc_next = (h->kc_next + 1) % HSM_KEY_CACHE;
	}
	snprintf(slot->label, sizeof(slot->label), "%s", label);
	slot->obj  = *obj;
	slot->alg  = *alg;
	slot->gen  = op->gen;
	slot->used = true;
	pthread_rwlock_unlock(&h->klock);
	return CS_OK;
}

/*
 * CKA_EC_POINT comes as a DER OCTET STRING (04 41 04||X||Y for P-256,
 * 04 20 ||32 bytes for Ed25519).  Some modules return the bare key; its
 * length tells the two forms apart, so both are accepted, nothing else.
 */
static int
ec_point_unwrap(cs_alg alg, const uint8_t *in, size_t n, uint8_t *pub,
    size_t *pub_len)
{
	size_t want = alg == CS_ALG_P256 ? CS_P256_POINT_LEN
	                                 : CS_ED25519_PUB_LEN;

	if (n == want + 2 && in[0] == 0x04 && in[1] == want) {
		in += 2;
	} else if (n != want) {
		return CS_EINVAL;
	}
	if (alg == CS_ALG_P256 && in[0] != 0x04) {
		return CS_EINVAL; /* compressed or hybrid point */
	}
	memcpy(pub, in, want);
	*pub_len = want;
	return CS_OK;
}

static int
read_bool(struct hsm_op *op, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    bool *out)
{
	CK_BBOOL     b = CK_FALSE;
	CK_ATTRIBUTE a = {type, &b, sizeof(b)};
	CK_RV        rv;

	rv = op->h->p11->C_GetAttributeValue(op->s, obj, &a, 1);
	if (rv != CKR_OK) {
		return op_fail(op, "C_GetAttributeValue", rv);
	}
	*out = b == CK_TRUE;
	return CS_OK;
}

/*
 * Everything cs_hsm_key reports about the private key priv, labelled
 * label.  A key of another algorithm is described with CS_ALG_NONE.
 */
static int
key_describe(struct hsm_op *op, CK_OBJECT_HANDLE priv, const char *label,
    struct cs_hsm_key *key)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  pubobj;
	uint8_t           point[HSM_ATTR_MAX];
	CK_ATTRIBUTE      a = {CKA_EC_POINT, point, sizeof(point)};
	CK_RV             rv = CKR_ATTRIBUTE_TYPE_INVALID;
	int               ret;

	memset(key, 0, sizeof(*key));
	snprintf(key->label, sizeof(key->label), "%s", label);
	if ((ret = object_alg(op, priv, &key->alg)) != CS_OK ||
	    (ret = read_bool(op, priv, CKA_SENSITIVE, &key->sensitive)) !=
		CS_OK ||
	    (ret = read_bool(op, priv, CKA_EXTRACTABLE, &key->extractable)) !=
		CS_OK) {
		return ret;
	}
	if (key->alg == CS_ALG_NONE) {
		return CS_OK;
	}
	/* The public key object; failing that, some modules put the point
	 * on the private key too. */
	ret = find_object(op, CKO_PUBLIC_KEY, label, &pubobj);
	if (ret == CS_OK) {
		rv = p11->C_GetAttributeValue(op->s, pubobj, &a, 1);
		if (ckr_lost(rv)) {
			return op_fail(op, "C_GetAttributeValue", rv);
		}
	} else if (ret != CS_ENOENT) {
		return ret;
	}
	if (rv != CKR_OK) {
		a  = (CK_ATTRIBUTE){CKA_EC_POINT, point, sizeof(point)};
		rv = p11->C_GetAttributeValue(op->s, priv, &a, 1);
	}
	if (rv != CKR_OK) {
		if (ckr_lost(rv)) {
			return op_fail(op, "C_GetAttributeValue", rv);
		}
		cs_log_warn("hsm", "no public key (CKA_EC_POINT) for key "
		    "key=%s token=%s ckr=%s", label, op->h->token,
		    ckr_name(rv));
		return CS_ENOENT;
	}
	if (ec_point_unwrap(key->alg, point, a.ulValueLen, key->pub,
		&key->pub_len) != CS_OK) {
		cs_log_warn("hsm", "CKA_EC_POINT has an unexpected encoding "
		    "key=%s token=%s len=%lu", label, op->h->token,
		    (unsigned long)a.ulValueLen);
		return CS_EHSM;
	}
	if ((ret = cs_spki_encode(key->alg, key->pub, key->pub_len, key->spki,
		 sizeof(key->spki), &key->spki_len)) != CS_OK) {
		return ret == CS_EINVAL ? CS_EHSM : ret;
	}
	return cs_key_id(key->spki, key->spki_len, key->key_id);
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

static void
hsm_free(cs_hsm *h)
{
	if (h->p11 != NULL && h->owns_init) {
		if (h->nidle > 0) {
			h->p11->C_Logout(h->idle[0]);
		}
		h->p11->C_CloseAllSessions(h->slot);
		h->p11->C_Finalize(NULL);
	} else if (h->p11 != NULL) {
		/* Shared initialisation: close only what is ours. */
		for (unsigned i = 0; i < h->nidle; i++) {
			h->p11->C_CloseSession(h->idle[i]);
		}
	}
	if (h->dl != NULL) {
		dlclose(h->dl);
	}
	pin_free(h);
	if (h->locks_ok) {
		pthread_mutex_destroy(&h->mtx);
		pthread_cond_destroy(&h->cv);
		pthread_rwlock_destroy(&h->klock);
	}
	free(h->idle);
	free(h->module);
	free(h);
}

static int
load_module(cs_hsm *h, char *err, size_t errlen)
{
	CK_C_GetFunctionList get;
	struct stat          st;
	CK_RV                rv;

	if (stat(h->module, &st) != 0) {
		snprintf(err, errlen, "PKCS#11 module %s not found: %s; check "
		    "the module path", h->module, strerror(errno));
		return CS_ENOENT;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "PKCS#11 module %s is not a file",
		    h->module);
		return CS_EINVAL;
	}
	/* A name without a slash would make dlopen search the library
	 * path instead of opening the file that was just checked. */
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s%s",
		strchr(h->module, '/') != NULL ? "" : "./", h->module) >=
	    sizeof(path)) {
		snprintf(err, errlen, "PKCS#11 module path too long");
		return CS_EINVAL;
	}
	h->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h->dl == NULL) {
		const char *why = dlerror();
		snprintf(err, errlen, "%s is not a PKCS#11 module (cannot "
		    "load it: %s)", h->module, why != NULL ? why : "?");
		return CS_EINVAL;
	}
	/* POSIX's dlsym returns void *; a function pointer is what it is. */
	*(void **)&get = dlsym(h->dl, "C_GetFunctionList");
	if (get == NULL) {
		snprintf(err, errlen, "%s is not a PKCS#11 module (it has no "
		    "C_GetFunctionList)", h->module);
		return CS_EINVAL;
	}
	if ((rv = get(&h->p11)) != CKR_OK || h->p11 == NULL) {
		h->p11 = NULL;
		snprintf(err, errlen, "%s is not a usable PKCS#11 module "
		    "(C_GetFunctionList: %s)", h->module, ckr_name(rv));
		return CS_EINVAL;
	}
	if (h->p11->version.major < 2) {
		snprintf(err, errlen, "%s implements PKCS#11 %u.%u; 2.x or "
		    "later is needed", h->module, h->p11->version.major,
		    h->p11->version.minor);
		h->p11 = NULL;
		return CS_EINVAL;
	}
	return CS_OK;
}

static int
check_opts(const struct cs_hsm_opts *o, char *err, size_t errlen)
{
	if (o->module == NULL || o->module[0] == '\0') {
		snprintf(err, errlen, "no PKCS#11 module given");
		return CS_EINVAL;
	}
	if (o->token == NULL || o->token[0] == '\0') {
		snprintf(err, errlen, "no token label given");
		return CS_EINVAL;
	}
	if (strlen(o->token) > HSM_TOKEN_LABEL_LEN) {
		snprintf(err, errlen, "token label \"%s\" is longer than %u "
		    "bytes", o->token, HSM_TOKEN_LABEL_LEN);
		return CS_EINVAL;
	}
	if ((o->pin_file == NULL) == (o->pin_env == NULL)) {
		snprintf(err, errlen, "give the PIN either in a file or in an "
		    "environment variable (exactly one)");
		return CS_EINVAL;
	}
	if (o->sessions > HSM_SESSIONS_MAX) {
		snprintf(err, errlen, "at most %u sessions", HSM_SESSIONS_MAX);
		return CS_EINVAL;
	}
	if (o->wait_ms > HSM_WAIT_MAX_MS) {
		snprintf(err, errlen, "wait_ms is at most %u",
		    HSM_WAIT_MAX_MS);
		return CS_EINVAL;
	}
	return CS_OK;
}

static int
init_locks(cs_hsm *h)
{
	pthread_condattr_t ca;

	if (pthread_condattr_init(&ca) != 0) {
		return CS_ENOMEM;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&h->mtx, NULL) != 0) {
		pthread_condattr_destroy(&ca);
		return CS_ENOMEM;
	}
	if (pthread_cond_init(&h->cv, &ca) != 0) {
		pthread_mutex_destroy(&h->mtx);
		pthread_condattr_destroy(&ca);
		return CS_ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	if (pthread_rwlock_init(&h->klock, NULL) != 0) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mtx);
		return CS_ENOMEM;
	}
	h->locks_ok = true;
	return CS_OK;
}

int
cs_hsm_open(cs_hsm **out, const struct cs_hsm_opts *o, char *err,
    size_t errlen)
{
	char    scratch[8];
	cs_hsm *h  = NULL;
	int     rv = CS_OK;

	if (err == NULL || errlen == 0) {
		err    = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (out == NULL || o == NULL) {
		snprintf(err, errlen, "invalid argument");
		return CS_EINVAL;
	}
	*out = NULL;
	if ((rv = check_opts(o, err, errlen)) != CS_OK) {
		return rv;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->module = strdup(o->module)) == NULL) {
		rv = CS_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(h->token, sizeof(h->token), "%s", o->token);
	h->nsess   = o->sessions != 0 ? o->sessions : HSM_SESSIONS_DEFAULT;
	h->wait_ms = o->wait_ms != 0 ? o->wait_ms : HSM_WAIT_DEFAULT_MS;
	if ((h->idle = calloc(h->nsess, sizeof(*h->idle))) == NULL ||
	    (rv = init_locks(h)) != CS_OK) {
		rv = CS_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((rv = load_module(h, err, errlen)) != CS_OK ||
	    (rv = pin_load(h, o, err, errlen)) != CS_OK ||
	    (rv = p11_initialize(h, err, errlen)) != CS_OK ||
	    (rv = connect_token(h, h->idle, err, errlen)) != CS_OK) {
		goto out;
	}
	h->nidle = h->nsess;
	cs_log_info("hsm", "token ready token=%s slot=%lu sessions=%u "
	    "module=%s", h->token, (unsigned long)h->slot, h->nsess,
	    h->module);
	*out = h;
	h    = NULL;
out:
	if (h != NULL) {
		hsm_free(h);
	}
	return rv;
}

void
cs_hsm_close(cs_hsm *h)
{
	if (h != NULL) {
		hsm_free(h);
	}
}

unsigned
cs_hsm_sessions(const cs_hsm *h)
{
	return h != NULL ? h->nsess : 0;
}

const char *
cs_hsm_token(const cs_hsm *h)
{
	return h != NULL ? h->token : "";
}

static int
sign_once(struct hsm_op *op, const char *label, cs_alg expect,
    const uint8_t *msg, size_t len, uint8_t sig[CS_SIG_LEN])
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj;
	CK_MECHANISM      mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE           buf[HSM_SIG_BUF];
	CK_ULONG          n = sizeof(buf);
	cs_alg            alg;
	CK_RV             rv;
	int               ret;

	if ((ret = key_handle(op, label, &obj, &alg)) != CS_OK) {
		return ret;
	}
	if (alg == CS_ALG_NONE || (expect != CS_ALG_NONE && expect != alg)) {
		cs_log_debug("hsm", "key has another algorithm key=%s alg=%s "
		    "expected=%s", label, cs_alg_name(alg),
		    cs_alg_name(expect));
		return CS_EINVAL;
	}
	if (alg == CS_ALG_P256 && len != CS_SHA256_LEN) {
		return CS_EINVAL; /* CKM_ECDSA signs a digest, not a message */
	}
	if (alg == CS_ALG_ED25519) {
		mech.mechanism = CKM_EDDSA;
	}
	if ((rv = p11->C_SignInit(op->s, &mech, obj)) != CKR_OK) {
		return op_fail(op, "C_SignInit", rv);
	}
	if ((rv = p11->C_Sign(op->s, (CK_BYTE *)msg, len, buf, &n)) !=
	    CKR_OK) {
		return op_fail(op, "C_Sign", rv);
	}
	if (n != CS_SIG_LEN) {
		cs_log_error("hsm", "signature has an unexpected length "
		    "key=%s len=%lu", label, (unsigned long)n);
		return CS_EHSM;
	}
	memcpy(sig, buf, CS_SIG_LEN);
	return CS_OK;
}

int
cs_hsm_sign(cs_hsm *h, const char *label, cs_alg expect, const uint8_t *msg,
    size_t len, uint8_t sig[CS_SIG_LEN])
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || label_len(label) == 0 || (msg == NULL && len > 0) ||
	    sig == NULL || len > HSM_MSG_MAX) {
		return CS_EINVAL;
	}
	for (int attempt = 0;; attempt++) {
		if ((rv = op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = sign_once(&op, label, expect, msg, len, sig);
		if (!op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

int
cs_hsm_key(cs_hsm *h, const char *label, struct cs_hsm_key *key)
{
	struct hsm_op    op;
	CK_OBJECT_HANDLE priv;
	int              rv;

	if (h == NULL || label_len(label) == 0 || key == NULL) {
		return CS_EINVAL;
	}
	for (int attempt = 0;; attempt++) {
		if ((rv = op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = find_object(&op, CKO_PRIVATE_KEY, label, &priv);
		if (rv == CS_OK) {
			rv = key_describe(&op, priv, label, key);
		}
		if (rv == CS_OK && key->alg == CS_ALG_NONE) {
			rv = CS_EINVAL; /* a key, but not one we can use */
		}
		if (!op_end(&op, label) || attempt > 0) {
			return rv;
		}
	}
}

/* Find every private key that may sign; *objs is malloc'ed. */
static int
find_signing_keys(struct hsm_op *op, CK_OBJECT_HANDLE **objs, size_t *n)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_CLASS   cls = CKO_PRIVATE_KEY;
	CK_BBOOL          yes = CK_TRUE;
	CK_ATTRIBUTE      tmpl[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_SIGN, &yes, sizeof(yes)},
        };
	CK_OBJECT_HANDLE *all = NULL;
	CK_ULONG          got = 0;
	size_t            cap = 64, count = 0;
	CK_RV             rv;
	int               ret = CS_OK;

	if ((all = malloc(cap * sizeof(*all))) == NULL) {
		return CS_ENOMEM;
	}
	if ((rv = p11->C_FindObjectsInit(op->s, tmpl, 2)) != CKR_OK) {
		free(all);
		return op_fail(op, "C_FindObjectsInit", rv);
	}
	for (;;) {
		if (count == cap) {
			CK_OBJECT_HANDLE *more;
			if (cap >= HSM_LIST_MAX) {
				cs_log_warn("hsm", "more keys than listed "
				    "token=%s listed=%zu", op->h->token,
				    count);
				break;
			}
			more = realloc(all, 2 * cap * sizeof(*all));
			if (more == NULL) {
				ret = CS_ENOMEM;
				break;
			}
			all = more;
			cap *= 2;
		}
		rv = p11->C_FindObjects(op->s, all + count, cap - count,
		    &got);
		if (rv != CKR_OK) {
			ret = op_fail(op, "C_FindObjects", rv);
			break;
		}
		if (got == 0) {
			break;
		}
		count += got;
	}
	rv = p11->C_FindObjectsFinal(op->s);
	if (ret == CS_OK && rv != CKR_OK) {
		ret = op_fail(op, "C_FindObjectsFinal", rv);
	}
	if (ret != CS_OK) {
		free(all);
		return ret;
	}
	*objs = all;
	*n    = count;
	return CS_OK;
}

static int
list_once(struct hsm_op *op, struct cs_hsm_key **keys, size_t *n)
{
	CK_OBJECT_HANDLE  *objs = NULL;
	struct cs_hsm_key *out  = NULL;
	size_t             nobj = 0, count = 0;
	int                rv;

	if ((rv = find_signing_keys(op, &objs, &nobj)) != CS_OK) {
		return rv;
	}
	if ((out = calloc(nobj > 0 ? nobj : 1, sizeof(*out))) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nobj; i++) {
		char         label[HSM_LABEL_MAX + 1];
		CK_ATTRIBUTE a = {CKA_LABEL, label, HSM_LABEL_MAX};
		CK_RV        r;

		r = op->h->p11->C_GetAttributeValue(op->s, objs[i], &a, 1);
		if (r != CKR_OK && ckr_lost(r)) {
			rv = op_fail(op, "C_GetAttributeValue", r);
			goto out;
		}
		if (r != CKR_OK || a.ulValueLen > HSM_LABEL_MAX) {
			continue; /* no label, or one longer than ours */
		}
		label[a.ulValueLen] = '\0';
		if (label_len(label) != a.ulValueLen) {
			cs_log_info("hsm", "skipping a key whose label is "
			    "empty or not printable ASCII token=%s",
			    op->h->token);
			continue;
		}
		rv = key_describe(op, objs[i], label, &out[count]);
		if (rv != CS_OK && op->ckr != CKR_OK) {
			goto out; /* the token failed: give up */
		}
		if (rv == CS_OK) {
			count++;
		}
	}
	rv    = CS_OK;
	*keys = out;
	*n    = count;
	out   = NULL;
out:
	free(out);
	free(objs);
	return rv;
}

int
cs_hsm_list(cs_hsm *h, struct cs_hsm_key **keys, size_t *n)
{
	struct hsm_op op;
	int           rv;

	if (h == NULL || keys == NULL || n == NULL) {
		return CS_EINVAL;
	}
	*keys = NULL;
	*n    = 0;
	for (int attempt = 0;; attempt++) {
		if ((rv = op_begin(h, &op)) != CS_OK) {
			return rv;
		}
		rv = list_once(&op, keys, n);
		if (!op_end(&op, NULL) || attempt > 0) {
			return rv;
		}
	}
}

static int
keygen_once(struct hsm_op *op, const char *label, cs_alg alg,
    struct cs_hsm_key *key)
{
	CK_FUNCTION_LIST *p11 = op->h->p11;
	CK_OBJECT_HANDLE  obj, pub, priv;
	CK_BBOOL          yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM      mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	const uint8_t    *params     = oid_p256;
	CK_ULONG          params_len = sizeof(oid_p256);
	size_t            llen       = strlen(label);
	CK_RV             rv;
	int               ret;

	if (alg == CS_ALG_ED25519) {
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		params         = oid_ed25519;
		params_len     = sizeof(oid_ed25519);
	}
	/* Never two keys under one label: a label names one key for life. */
	ret = find_object(op, CKO_PRIVATE_KEY, label, &obj);
	if (ret == CS_ENOENT) {
		ret = find_object(op, CKO_PUBLIC_KEY, label, &obj);
	}
	if (ret == CS_OK || ret == CS_EPRECOND) {
		return CS_EEXIST;
	}
	if (ret != CS_ENOENT) {
		return ret;
	}

	CK_ATTRIBUTE pub_tmpl[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_ENCRYPT, &no, sizeof(no)},
	    {CKA_WRAP, &no, sizeof(no)},
	    {CKA_DERIVE, &no, sizeof(no)},
	    {CKA_EC_PARAMS, (void *)params, params_len},
	    {CKA_LABEL, (void *)label, llen},
	};
	CK_ATTRIBUTE priv_tmpl[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_DECRYPT, &no, sizeof(no)},
	    {CKA_UNWRAP, &no, sizeof(no)},
	    {CKA_DERIVE, &no, sizeof(no)},
	    {CKA_LABEL, (void *)label, llen},
	};
	rv = p11->C_GenerateKeyPair(op->s, &mech, pub_tmpl,
	    sizeof(pub_tmpl) / sizeof(pub_tmpl[0]), priv_tmpl,
	    sizeof(priv_tmpl) / sizeof(priv_tmpl[0]), &pub, &priv);
	if (rv != CKR_OK) {
		return op_fail(op, "C_GenerateKeyPair", rv);
	}
	if ((ret = key_describe(op, priv, label, key)) != CS_OK ||
	    key->alg != alg) {
		/* A key we cannot describe is of no use: take it away. */
		cs_log_error("hsm", "generated key unusable, destroying it "
		    "key=%s token=%s", label, op->h->token);
		p11->C_DestroyObject(op->s, priv);
		p11->C_DestroyObject(op->s, pub);
		return ret != CS_OK ? ret : CS_EHSM;
	}
	/* CKA_ID = key id, so that other PKCS#11 tools pair the two halves
	 * and show the project's key id.  Nice to have, not essential. */
	CK_ATTRIBUTE id = {CKA_ID, key->key_id, CS_KEY_ID_LEN};
	if ((rv = p11->C_SetAttributeValue(op->s, priv, &id, 1)) != CKR_OK ||
	    (rv = p11->C_SetAttributeValue(op->s, pub, &id, 1)) != CKR_OK) {
		cs_log_warn("hsm", "cannot set CKA_ID key=%s ckr=%s", label,
		    ckr_name(rv));
	}
	cs_log_info("hsm", "key generated key=%s alg=%s token=%s", label,
	    cs_alg_name(alg), op->h->token);
	return CS_OK;
}

int
cs_hsm_keygen(cs_hsm *h, const char *label, cs_alg alg,
    struct cs_hsm_key *key)
{
	struct cs_hsm_key scratch;
	struct hsm_op     op;
	int               rv;

	if (h == NULL || label_len(label) == 0 ||
	    (alg != CS_ALG_P256 && alg != CS_ALG_ED25519)) {
		return CS_EINVAL;
	}
	if (key == NULL) {
		key = &scratch;
	}
	/* No transparent retry: had the key been made before the failure, a
	 * second attempt would only report that the label exists. */
	if ((rv = op_begin(h, &op)) != CS_OK) {
		return rv;
	}
	rv = keygen_once(&op, label, alg, key);
	op_end(&op, label);
	return rv;
}

bool
cs_hsm_pin_refused(cs_hsm *h)
{
	return h != NULL && __atomic_load_n(&h->pin_refused, __ATOMIC_ACQUIRE);
}
