/*
 * station_session.c - the station's authenticated session with the
 * authority (station_session.h).
 *
 * TLS already proves which station is calling, but the authority also
 * asks for a signature over a fresh challenge (cs_auth.h): the session
 * token it hands out is then bound to a proof made with the station key
 * now, not only to a certificate presented at some handshake.  The key is
 * read from its file for each authentication and wiped right after, so it
 * sits in this process's memory only for the moment it is used.
 */
#include "station_session.h"
#include "countersign/v1/authority.pb-c.h"
#include "cs_auth.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "cs_tls.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define P256_LEN      32u
#define ECDSA_DER_MAX 72u /* SEQUENCE of two 33-byte INTEGERs */

struct station_session {
	cs_rpc_client  *cli;
	char           *name; /* this station's enrolled name */
	char           *key;  /* path of its private key, PEM */
	char           *authority_id; /* the id it must have, or NULL */
	/* Held while authenticating, and briefly by every call to read
	 * auth_gen: a call that fails UNAUTHENTICATED re-authenticates only
	 * if nobody has done so since it read auth_gen. */
	pthread_mutex_t mtx;
	uint64_t        auth_gen;
};

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

/* The host part of tls+tcp://host:port, without IPv6 brackets. */
static int
url_host(const char *url, char *host, size_t len)
{
	const char *p = strstr(url, "://");
	const char *end;

	if (p == NULL) {
		return CS_EADDR;
	}
	p += 3;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL || end == p || (size_t)(end - p) >= len) {
		return CS_EADDR;
	}
	memcpy(host, p, (size_t)(end - p));
	host[end - p] = '\0';
	return CS_OK;
}

int
station_connect(const struct station_config *cfg, cs_rpc_client **out,
    char *err, size_t errlen)
{
	nng_tls_config *tls = NULL;
	char            host[256];
	int             rv;

	if (url_host(cfg->authority_url, host, sizeof(host)) != CS_OK) {
		snprintf(err, errlen, "cannot read a host name in "
		    "authority_url %s", cfg->authority_url);
		return CS_ECONFIG;
	}
	struct cs_tls_files f = {
	    .cert        = cfg->cert,
	    .key         = cfg->key,
	    .ca          = cfg->ca,
	    .server_name = host,
	};
	if ((rv = cs_tls_config_make(&tls, NNG_TLS_MODE_CLIENT,
	    NNG_TLS_AUTH_MODE_REQUIRED, &f)) != CS_OK) {
		snprintf(err, errlen, "the station's TLS files cannot be "
		    "used (%s); check [station] cert, key and ca",
		    cs_strerror(rv));
		return rv == CS_ENOMEM ? rv : CS_ECONFIG;
	}
	struct cs_rpc_client_opts co = {
	    .url        = cfg->authority_url,
	    .tls        = tls,
	    .timeout_ms = cfg->timeout_ms,
	    .wait       = true,
	};
	rv = cs_rpc_client_open(out, &co, err, errlen);
	nng_tls_config_free(tls); /* the dialer holds its own reference */
	return rv;
}

/* ------------------------------------------------------------------ */
/* Signing the challenge                                               */
/* ------------------------------------------------------------------ */

/* Read the whole file at path into buf (at most size bytes). */
static int
read_key_file(const char *path, uint8_t *buf, size_t size, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	size_t      n = 0;
	int         fd, rv = CS_ECONFIG;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open the station key %s: %s "
		    "(countersign-station init makes it)", path,
		    strerror(errno));
		return CS_ECONFIG;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uintmax_t)st.st_size > size) {
		snprintf(err, errlen, "the station key %s is not a regular "
		    "file of at most %zu bytes", path, size);
		goto out;
	}
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			snprintf(err, errlen, "cannot read the station key "
			    "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0) {
			break;
		}
		n += (size_t)r;
	}
	*len = n;
	rv   = CS_OK;
out:
	close(fd);
	return rv;
}

/* PEM file → decoded P-256 private key in *key (initialised on CS_OK). */
static int
load_p256_key(const char *path, ecc_key *key, char *err, size_t errlen)
{
	uint8_t pem[STATION_KEY_PEM_MAX];
	uint8_t der[STATION_KEY_PEM_MAX];
	size_t  pem_len = 0;
	word32  idx = 0;
	int     n, rv;

	if ((rv = read_key_file(path, pem, sizeof(pem), &pem_len, err,
	    errlen)) != CS_OK) {
		goto out;
	}
	rv = CS_ECONFIG;
	if ((n = wc_KeyPemToDer(pem, (int)pem_len, der, (int)sizeof(der),
	    NULL)) <= 0) {
		snprintf(err, errlen, "the station key %s is not an "
		    "unencrypted PEM private key (wolfSSL %d)", path, n);
		goto out;
	}
	if (wc_ecc_init(key) != 0) {
		snprintf(err, errlen, "wolfCrypt cannot initialise a key");
		rv = CS_ECRYPTO;
		goto out;
	}
	if (wc_EccPrivateKeyDecode(der, &idx, key, (word32)n) != 0 ||
	    key->dp == NULL || key->dp->id != ECC_SECP256R1 ||
	    key->type != ECC_PRIVATEKEY) {
		snprintf(err, errlen, "the station key %s is not an EC P-256 "
		    "private key", path);
		wc_ecc_free(key);
		goto out;
	}
	rv = CS_OK;
out:
	cs_wipe(pem, sizeof(pem));
	cs_wipe(der, sizeof(der));
	return rv;
}

/*
 * One DER INTEGER at *p (end bounds it) as an unsigned value left-padded
 * into out[32].  Strict: minimal length, positive, non-zero, fits.
 */
static int
der_uint32(const uint8_t **p, const uint8_t *end, uint8_t out[P256_LEN])
{
	const uint8_t *q = *p;
	size_t         len;

	if (end - q < 2 || q[0] != 0x02) {
		return CS_EINVAL;
	}
	len = q[1];
	q += 2;
	if (len == 0 || len > (size_t)(end - q) || (q[0] & 0x80) != 0) {
		return CS_EINVAL;
	}
	if (q[0] == 0x00) {
		/* A leading zero only to keep a high bit from reading as a
		 * sign; anything else is not minimal DER. */
		if (len == 1 || (q[1] & 0x80) == 0) {
			return CS_EINVAL;
		}
		q++;
		len--;
	}
	if (len > P256_LEN) {
		return CS_EINVAL;
	}
	memset(out, 0, P256_LEN);
	memcpy(out + P256_LEN - len, q, len);
	*p = q + len;
	return CS_OK;
}

int
station_sig_der_to_raw(const uint8_t *der, size_t len, uint8_t sig[64])
{
	static const uint8_t zero[P256_LEN];
	const uint8_t       *p, *end;

	if (der == NULL || sig == NULL || len < 2 || len > ECDSA_DER_MAX ||
	    der[0] != 0x30 || der[1] != len - 2) {
		return CS_EINVAL; /* also rules out the long length form */
	}
	p   = der + 2;
	end = der + len;
	if (der_uint32(&p, end, sig) != CS_OK ||
	    der_uint32(&p, end, sig + P256_LEN) != CS_OK || p != end ||
	    memcmp(sig, zero, P256_LEN) == 0 ||
	    memcmp(sig + P256_LEN, zero, P256_LEN) == 0) {
		memset(sig, 0, 2 * P256_LEN);
		return CS_EINVAL;
	}
	return CS_OK;
}

int
station_sign_challenge(const char *key_path, const uint8_t *msg,
    size_t len, uint8_t sig[64], char *err, size_t errlen)
{
	ecc_key key;
	WC_RNG  rng;
	uint8_t digest[CS_SHA256_LEN];
	uint8_t der[ECDSA_DER_MAX];
	word32  der_len = sizeof(der);
	int     rv, wrv;

	if (key_path == NULL || msg == NULL || sig == NULL) {
		snprintf(err, errlen, "nothing to sign");
		return CS_EINVAL;
	}
	if ((rv = cs_sha256(msg, len, digest)) != CS_OK) {
		snprintf(err, errlen, "SHA-256 failed in wolfCrypt");
		return rv;
	}
	if ((rv = load_p256_key(key_path, &key, err, errlen)) != CS_OK) {
		return rv;
	}
	if (wc_InitRng(&rng) != 0) {
		snprintf(err, errlen, "cannot seed the random generator");
		rv = CS_ECRYPTO;
		goto key;
	}
	if ((wrv = wc_ecc_sign_hash(digest, sizeof(digest), der, &der_len,
	    &rng, &key)) != 0) {
		snprintf(err, errlen, "signing with the station key failed "
		    "(wolfSSL %d)", wrv);
		rv = CS_ECRYPTO;
	} else if (station_sig_der_to_raw(der, der_len, sig) != CS_OK) {
		snprintf(err, errlen, "wolfCrypt made a malformed signature");
		rv = CS_ECRYPTO;
	}
	wc_FreeRng(&rng);
key:
	wc_ecc_free(&key); /* wipes the private scalar */
	/* Debian's wolfCrypt has FP_ECC: a per-thread table of points that
	 * leaks when a thread ends without freeing it (see cs_crypto.c). */
	wc_ecc_fp_free();
	return rv;
}

/* ------------------------------------------------------------------ */
/* Authentication                                                      */
/* ------------------------------------------------------------------ */

/* err as the call's message (cut to fit; err itself is what the caller
 * of station_session_open prints). */
static void
set_message(struct cs_rpc_result *res, const char *err)
{
	size_t n = strnlen(err, sizeof(res->message) - 1);

	memcpy(res->message, err, n);
	res->message[n] = '\0';
}

/* err for a failed Hello or Authenticate: the authority's reason, and
 * what the operator can do about it. */
static void
auth_error(const char *step, int rv, const struct cs_rpc_result *res,
    char *err, size_t errlen)
{
	switch (rv) {
	case CS_EUNAUTH:
	case CS_EPERM:
	case CS_ENOENT:
	case CS_EPRECOND:
		snprintf(err, errlen, "the authority did not accept this "
		    "station: %s; is it enrolled and enabled? "
		    "(countersign-admin station list)", res->message);
		break;
	case CS_EUNAVAIL:
	case CS_ETIMEDOUT:
	case CS_ECLOSED:
		snprintf(err, errlen, "%s: %s", step, res->message);
		break;
	case CS_EUNIMPL:
		snprintf(err, errlen, "%s: the authority does not offer it "
		    "(%s); is it older than this station?", step,
		    res->message);
		break;
	default:
		snprintf(err, errlen, "%s failed (%s): %s", step,
		    cs_status_name(res->status), res->message);
		break;
	}
}

/* Hello → *hello, whose challenge and authority id are checked. */
static int
auth_hello(station_session *s, Countersign__V1__HelloResponse **hello,
    struct cs_rpc_result *res, char *err, size_t errlen)
{
	Countersign__V1__HelloRequest req =
	    COUNTERSIGN__V1__HELLO_REQUEST__INIT;
	int rv;

	req.station_name = s->name;
	if ((rv = cs_rpc_call(s->cli, &countersign__v1__authority__descriptor,
	    "Hello", &req.base, (ProtobufCMessage **)hello, res)) != CS_OK) {
		auth_error("Hello", rv, res, err, errlen);
		return rv;
	}
	if ((*hello)->challenge.len != CS_AUTH_CHALLENGE_LEN ||
	    (*hello)->authority_id == NULL) {
		snprintf(err, errlen, "the authority sent a challenge of %zu "
		    "bytes, not %u", (*hello)->challenge.len,
		    CS_AUTH_CHALLENGE_LEN);
		res->status = CS_STATUS_UNKNOWN; /* not the authority's word */
		set_message(res, err);
		return CS_EPROTO;
	}
	/* The signed answer names the authority: sign only for the one this
	 * station is configured for, so that a server trusted over TLS
	 * cannot relay another authority's challenge. */
	if (s->authority_id != NULL &&
	    strcmp((*hello)->authority_id, s->authority_id) != 0) {
		snprintf(err, errlen, "the server says it is authority \"%.64s\", "
		    "but [station] authority_id is \"%s\"; check authority_url",
		    (*hello)->authority_id, s->authority_id);
		res->status = CS_STATUS_UNKNOWN;
		set_message(res, err);
		return CS_EPEERAUTH;
	}
	return CS_OK;
}

/* Authenticate with sig over the challenge; installs the token. */
static int
auth_answer(station_session *s, const Countersign__V1__HelloResponse *hello,
    uint8_t sig[CS_SIG_LEN], struct cs_rpc_result *res, char *err,
    size_t errlen)
{
	Countersign__V1__AuthenticateRequest   req =
	    COUNTERSIGN__V1__AUTHENTICATE_REQUEST__INIT;
	Countersign__V1__AuthenticateResponse *rsp = NULL;
	int                                    rv;

	req.station_name   = s->name;
	req.challenge      = hello->challenge;
	req.signature.data = sig;
	req.signature.len  = CS_SIG_LEN;
	if ((rv = cs_rpc_call(s->cli, &countersign__v1__authority__descriptor,
	    "Authenticate", &req.base, (ProtobufCMessage **)&rsp, res)) !=
	    CS_OK) {
		auth_error("Authenticate", rv, res, err, errlen);
		return rv;
	}
	if (rsp->token.len != CS_AUTH_TOKEN_LEN) {
		snprintf(err, errlen, "the authority sent a session token of "
		    "%zu bytes, not %u", rsp->token.len, CS_AUTH_TOKEN_LEN);
		res->status = CS_STATUS_UNKNOWN;
		set_message(res, err);
		rv = CS_EPROTO;
	} else {
		rv = cs_rpc_client_set_token(s->cli, rsp->token.data,
		    rsp->token.len);
		cs_log_info("session", "authenticated authority=%s "
		    "station=%s ttl_s=%u", hello->authority_id, s->name,
		    rsp->ttl_s);
	}
	cs_wipe(rsp->token.data, rsp->token.len);
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return rv;
}

/* Hello, sign, Authenticate.  Caller holds s->mtx (or owns s alone).
 * res receives the status of the step that failed. */
static int
authenticate(station_session *s, struct cs_rpc_result *res, char *err,
    size_t errlen)
{
	Countersign__V1__HelloResponse *hello = NULL;
	uint8_t                         msg[CS_AUTH_MSG_MAX];
	uint8_t                         sig[CS_SIG_LEN];
	size_t                          msg_len;
	int                             rv;

	if ((rv = auth_hello(s, &hello, res, err, errlen)) != CS_OK) {
		goto out;
	}
	if (cs_auth_message(hello->authority_id, s->name,
	    hello->challenge.data, msg, sizeof(msg), &msg_len) != CS_OK) {
		snprintf(err, errlen, "cannot build the message to sign: the "
		    "authority id '%.64s' or station name '%s' is empty or "
		    "longer than %u bytes", hello->authority_id, s->name,
		    CS_AUTH_NAME_MAX);
		res->status = CS_STATUS_UNKNOWN;
		set_message(res, err);
		rv = CS_EPROTO;
		goto out;
	}
	if ((rv = station_sign_challenge(s->key, msg, msg_len, sig, err,
	    errlen)) != CS_OK) {
		/* Local, not the authority's: no wire status to report. */
		res->status = CS_STATUS_UNKNOWN;
		set_message(res, err);
		goto out;
	}
	if ((rv = auth_answer(s, hello, sig, res, err, errlen)) == CS_OK) {
		s->auth_gen++;
	}
out:
	if (hello != NULL) {
		protobuf_c_message_free_unpacked(&hello->base, NULL);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Session                                                             */
/* ------------------------------------------------------------------ */

int
station_session_open(station_session **out,
    const struct station_config *cfg, char *err, size_t errlen)
{
	struct cs_rpc_result res;
	station_session     *s;
	int                  rv;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return CS_ENOMEM;
	}
	if (pthread_mutex_init(&s->mtx, NULL) != 0) {
		free(s);
		snprintf(err, errlen, "cannot make a mutex");
		return CS_ENOMEM;
	}
	if ((s->name = strdup(cfg->name)) == NULL ||
	    (s->key = strdup(cfg->key)) == NULL ||
	    (cfg->authority_id != NULL &&
	        (s->authority_id = strdup(cfg->authority_id)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		rv = CS_ENOMEM;
		goto fail;
	}
	if ((rv = station_connect(cfg, &s->cli, err, errlen)) != CS_OK ||
	    (rv = authenticate(s, &res, err, errlen)) != CS_OK) {
		goto fail;
	}
	*out = s;
	return CS_OK;
fail:
	station_session_close(s);
	return rv;
}

static uint64_t
auth_gen_now(station_session *s)
{
	uint64_t g;

	pthread_mutex_lock(&s->mtx);
	g = s->auth_gen;
	pthread_mutex_unlock(&s->mtx);
	return g;
}

int
station_session_call(station_session *s, const char *method,
    const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res)
{
	struct cs_rpc_result local;
	char                 err[512];
	uint64_t             gen;
	int                  rv;

	if (res == NULL) {
		res = &local;
	}
	gen = auth_gen_now(s);
	rv  = cs_rpc_call(s->cli, &countersign__v1__authority__descriptor,
	    method, in, out, res);
	if (rv == CS_ETIMEDOUT && res->redial) {
		/*
		 * The connection gave no reply and was dropped (the authority
		 * may have closed it, idle, without nng noticing).  Every
		 * station call is safe to repeat (a sign again returns the
		 * same record, a report again changes nothing): once more,
		 * on a new connection, which needs a new session.
		 */
		cs_log_info("session", "no reply on a stale connection, "
		    "trying once more on a new one method=%s", method);
		rv = cs_rpc_call(s->cli, &countersign__v1__authority__descriptor,
		    method, in, out, res);
	}
	if (rv != CS_EUNAUTH) {
		return rv;
	}
	pthread_mutex_lock(&s->mtx);
	if (s->auth_gen == gen) {
		cs_log_info("session", "session refused, authenticating "
		    "again method=%s reason=\"%s\"", method, res->message);
		rv = authenticate(s, res, err, sizeof(err));
	} else {
		rv = CS_OK; /* another thread renewed it meanwhile */
	}
	pthread_mutex_unlock(&s->mtx);
	if (rv != CS_OK) {
		set_message(res, err); /* res->status: the failed step's */
		return rv;
	}
	return cs_rpc_call(s->cli, &countersign__v1__authority__descriptor,
	    method, in, out, res);
}

bool
station_session_transient(int rv, const struct cs_rpc_result *res)
{
	return rv == CS_EUNAVAIL || rv == CS_ETIMEDOUT || rv == CS_ECLOSED ||
	    (rv != CS_OK && res->status == CS_STATUS_INTERNAL);
}

int
station_session_call_patiently(station_session *s, const char *method,
    const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res, unsigned limit_s,
    volatile sig_atomic_t *stop, station_wait_note *note, void *ctx)
{
	uint64_t deadline = cs_mono_ms() +
	    (uint64_t)(limit_s != 0 ? limit_s : 300u) * 1000u;
	unsigned backoff  = 250;
	bool     said     = false;
	int      rv;

	for (;;) {
		rv = station_session_call(s, method, in, out, res);
		if (!station_session_transient(rv, res)) {
			if (said && rv == CS_OK && note != NULL) {
				note(ctx, "authority-back", NULL);
			}
			return rv;
		}
		if (!said && note != NULL) {
			note(ctx, "waiting", res->message);
		}
		said = true;
		if (stop != NULL && *stop) {
			return CS_ECANCELED;
		}
		if (cs_mono_ms() >= deadline) {
			return rv;
		}
		{
			struct timespec ts = {.tv_sec = backoff / 1000u,
			    .tv_nsec = (long)(backoff % 1000u) * 1000000L};

			while (nanosleep(&ts, &ts) != 0 && errno == EINTR &&
			    !(stop != NULL && *stop)) {
			}
		}
		backoff = backoff < 4000 ? backoff * 2 : 5000;
	}
}

cs_rpc_client *
station_session_client(station_session *s)
{
	return s->cli;
}

void
station_session_close(station_session *s)
{
	if (s == NULL) {
		return;
	}
	cs_rpc_client_close(s->cli);
	pthread_mutex_destroy(&s->mtx);
	free(s->name);
	free(s->authority_id);
	free(s->key);
	free(s);
}

/* ------------------------------------------------------------------ */
/* UIDs                                                                */
/* ------------------------------------------------------------------ */

int
station_parse_uid(const char *hex, uint8_t *out, size_t *len)
{
	return cs_hex_decode(hex, out, STATION_UID_MAX, len);
}
