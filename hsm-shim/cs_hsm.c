/*
 * cs_hsm.c - the HSM shim: one PKCS#11 module, one token, a pool of logged
 * in sessions, a label -> handle cache, and recovery when the token or
 * its sessions go away (see cs_hsm.h for the contract).
 *
 * Why it looks the way it does:
 *
 * - Only this module's files include the PKCS#11 header, through
 *   cs_hsm_impl.h (it #defines common lowercase words such as value and
 *   count), and it comes last.
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
 *
 * This file holds the CKR_* translation, the PIN, and opening and closing
 * the shim; cs_hsm_pool.c the token, its sessions, the pool and recovery;
 * cs_hsm_keys.c key objects, signing, listing and key generation.
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

/*
 * Last: it includes the PKCS#11 header, whose lowercase macros (value,
 * count, parameter, ...) would break any header after it.
 */
#include "cs_hsm_impl.h"

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
const char *
hsm_ckr_name(CK_RV rv)
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

int
hsm_ckr_to_err(CK_RV rv)
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
bool
hsm_ckr_lost(CK_RV rv)
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
bool
hsm_ckr_retry(CK_RV rv)
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
int
hsm_op_fail(struct hsm_op *op, const char *fn, CK_RV rv)
{
	if (op->ckr == CKR_OK) {
		op->ckr = rv;
		op->fn  = fn;
	}
	return hsm_ckr_to_err(rv);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* Key labels: 1..64 bytes of printable ASCII.  Returns the length or 0. */
size_t
hsm_label_len(const char *label)
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
		    "(C_GetFunctionList: %s)", h->module, hsm_ckr_name(rv));
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
	    (rv = hsm_p11_initialize(h, err, errlen)) != CS_OK ||
	    (rv = hsm_connect_token(h, h->idle, err, errlen)) != CS_OK) {
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

