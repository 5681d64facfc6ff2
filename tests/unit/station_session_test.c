/*
 * station_session_test.c - the station's side of authentication that can
 * be checked without an authority: the UID parser, the conversion of
 * wolfCrypt's DER signatures to r||s, and challenge signatures made with
 * a key from `countersign-station init`, verified with cs_verify against
 * the public key as openssl reads it from the key file.  Then the whole
 * session against a stand-in authority on loopback TLS (the real one is
 * tested with it in the integration tests): authentication, refusal,
 * re-authentication after the token is forgotten, by one thread of many,
 * and the exit codes and output file of `countersign-station sign`.
 */
#include "countersign/v1/authority.pb-c.h"
#include "cs_auth.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_rpc.h"
#include "cs_tls.h"
#include "station_init.h"
#include "station_session.h"
#include "test_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

struct fx {
	char *dir;
	char  key[512];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_path(f->key, sizeof(f->key), f->dir, "station.key");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* Run a command; fail the test with its output unless it exits 0. */
static void
run_ok(char *const argv[])
{
	char out[8192];
	int  rv = tu_run(argv, out, sizeof(out));

	if (rv != 0) {
		fprintf(stderr, "%s failed (%d): %s\n", argv[0], rv, out);
	}
	assert_int_equal(rv, 0);
}

/* The station key made as `countersign-station init` makes it. */
static void
make_station_key(struct fx *f)
{
	struct station_config cfg = {
	    .name = (char *)"station-t",
	    .key  = f->key,
	};
	char csr[STATION_PATH_MAX], err[STATION_PATH_MAX + 256];

	if (station_init(&cfg, csr, sizeof(csr), err, sizeof(err)) != CS_OK) {
		fail_msg("station_init: %s", err);
	}
}

/* The raw public point of the PEM key at key, as openssl derives it. */
static void
public_key_of(struct fx *f, const char *key, uint8_t pub[CS_P256_POINT_LEN])
{
	char    der_path[512];
	uint8_t der[256];
	size_t  n, pub_len = 0;
	cs_alg  alg = CS_ALG_NONE;
	FILE   *fp;

	tu_path(der_path, sizeof(der_path), f->dir, "pub.der");
	char *argv[] = {(char *)"openssl", (char *)"pkey", (char *)"-in",
	    (char *)key, (char *)"-pubout", (char *)"-outform", (char *)"DER",
	    (char *)"-out", der_path, NULL};
	run_ok(argv);
	assert_non_null(fp = fopen(der_path, "rb"));
	n = fread(der, 1, sizeof(der), fp);
	fclose(fp);
	assert_int_equal(cs_spki_decode(der, n, &alg, pub, &pub_len), CS_OK);
	assert_int_equal(alg, CS_ALG_P256);
	assert_int_equal(pub_len, CS_P256_POINT_LEN);
}

/* ------------------------------------------------------------------ */

static void
expect_uid(const char *hex, const uint8_t *want, size_t want_len)
{
	uint8_t out[STATION_UID_MAX];
	size_t  len = 0;

	if (station_parse_uid(hex, out, &len) != CS_OK) {
		fail_msg("'%s' was refused", hex);
	}
	assert_int_equal(len, want_len);
	assert_memory_equal(out, want, want_len);
}

static void
test_parse_uid_good(void **state)
{
	static const uint8_t three[] = {0x04, 0xa1, 0xb2};
	uint8_t              max[STATION_UID_MAX];
	char                 hex[2 * STATION_UID_MAX + 1];

	(void)state;
	expect_uid("04A1B2", three, 3);
	expect_uid("04a1b2", three, 3);
	expect_uid("0x04a1B2", three, 3);
	expect_uid("0X04A1B2", three, 3);
	expect_uid("04:a1:b2", three, 3);
	expect_uid("04-A1-b2", three, 3);
	expect_uid("0x04:a1:b2", three, 3);
	expect_uid("00", (const uint8_t *)"\0", 1);
	for (size_t i = 0; i < STATION_UID_MAX; i++) {
		max[i] = (uint8_t)(0xf0 + i);
		snprintf(hex + 2 * i, 3, "%02X", max[i]);
	}
	expect_uid(hex, max, STATION_UID_MAX);
}

static void
test_parse_uid_bad(void **state)
{
	static const char *const bad[] = {
	    "", "0x", "0X", "4", "04a", "04:a", "g0", "04 a1", " 04", "04 ",
	    ":04", "04:", "04::a1", "04:-a1", "-04", "0x:04", "0:4", "0x0x04",
	    "04a1\n", "+04", "04,a1",
	    /* 33 bytes */
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f20",
	};
	uint8_t out[STATION_UID_MAX];
	size_t  len = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (station_parse_uid(bad[i], out, &len) != CS_EINVAL) {
			fail_msg("'%s' was accepted", bad[i]);
		}
	}
	assert_int_equal(len, 99); /* untouched on error */
	assert_int_equal(station_parse_uid(NULL, out, &len), CS_EINVAL);
}

/* ------------------------------------------------------------------ */

static void
test_der_to_raw(void **state)
{
	/* r with its high bit set (so a 0x00 pad), s of 31 bytes. */
	uint8_t der[72] = {0x30, 0, 0x02, 33, 0x00};
	uint8_t sig[64], want[64];
	size_t  n = 5;

	(void)state;
	memset(want, 0, sizeof(want));
	for (size_t i = 0; i < 32; i++) {
		want[i] = (uint8_t)(0x80 + i);
		der[n++] = want[i];
	}
	der[n++] = 0x02;
	der[n++] = 31;
	for (size_t i = 0; i < 31; i++) {
		want[33 + i] = (uint8_t)(0x11 + i);
		der[n++] = want[33 + i];
	}
	der[1] = (uint8_t)(n - 2);
	assert_int_equal(station_sig_der_to_raw(der, n, sig), CS_OK);
	assert_memory_equal(sig, want, 64);

	/* malformed: each is rejected */
	uint8_t bad[72];
	memcpy(bad, der, n);
	assert_int_equal(station_sig_der_to_raw(bad, n - 1, sig), CS_EINVAL);
	bad[n] = 0;
	bad[1]++;
	assert_int_equal(station_sig_der_to_raw(bad, n + 1, sig), CS_EINVAL);

	/* a padding zero that is not needed */
	static const uint8_t nonmin[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x01,
	    0x02, 0x01, 0x01};
	assert_int_equal(station_sig_der_to_raw(nonmin, sizeof(nonmin), sig),
	    CS_EINVAL);
	/* a negative r */
	static const uint8_t neg[] = {0x30, 0x06, 0x02, 0x01, 0x80, 0x02,
	    0x01, 0x01};
	assert_int_equal(station_sig_der_to_raw(neg, sizeof(neg), sig),
	    CS_EINVAL);
	/* r = 0 */
	static const uint8_t zero[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02,
	    0x01, 0x01};
	assert_int_equal(station_sig_der_to_raw(zero, sizeof(zero), sig),
	    CS_EINVAL);
	/* a 33-byte r that is not a padded 32-byte one */
	memcpy(bad, der, n);
	bad[4] = 0x01;
	assert_int_equal(station_sig_der_to_raw(bad, n, sig), CS_EINVAL);
	/* not a SEQUENCE; the long length form */
	memcpy(bad, der, n);
	bad[0] = 0x31;
	assert_int_equal(station_sig_der_to_raw(bad, n, sig), CS_EINVAL);
	static const uint8_t lng[] = {0x30, 0x81, 0x06, 0x02, 0x01, 0x01,
	    0x02, 0x01, 0x01};
	assert_int_equal(station_sig_der_to_raw(lng, sizeof(lng), sig),
	    CS_EINVAL);
	/* the smallest valid one: r = s = 1 */
	static const uint8_t one[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02,
	    0x01, 0x01};
	assert_int_equal(station_sig_der_to_raw(one, sizeof(one), sig), CS_OK);
	assert_int_equal(sig[31], 1);
	assert_int_equal(sig[63], 1);
	assert_int_equal(sig[0] | sig[30] | sig[32] | sig[62], 0);
}

/* ------------------------------------------------------------------ */

/* Sign n challenges with the key at key and verify each with pub; a
 * message or signature with one bit flipped must not verify. */
static void
sign_and_verify(const char *key, const uint8_t pub[CS_P256_POINT_LEN],
    unsigned n)
{
	uint8_t challenge[CS_AUTH_CHALLENGE_LEN];
	uint8_t msg[CS_AUTH_MSG_MAX], sig[CS_SIG_LEN];
	size_t  len;
	char    err[512];

	for (unsigned i = 0; i < n; i++) {
		memset(challenge, (int)i, sizeof(challenge));
		challenge[0] = (uint8_t)(i >> 8);
		assert_int_equal(cs_auth_message("authority-t", "station-t",
		    challenge, msg, sizeof(msg), &len), CS_OK);
		if (station_sign_challenge(key, msg, len, sig, err,
		    sizeof(err)) != CS_OK) {
			fail_msg("station_sign_challenge: %s", err);
		}
		assert_int_equal(cs_verify(CS_ALG_P256, pub, CS_P256_POINT_LEN,
		    msg, len, sig), CS_OK);

		msg[len - 1] ^= 0x01;
		assert_int_equal(cs_verify(CS_ALG_P256, pub, CS_P256_POINT_LEN,
		    msg, len, sig), CS_ECRYPTO);
		msg[len - 1] ^= 0x01;
		sig[i % CS_SIG_LEN] ^= 0x80;
		assert_int_not_equal(cs_verify(CS_ALG_P256, pub,
		    CS_P256_POINT_LEN, msg, len, sig), CS_OK);
	}
}

static void
test_sign_with_init_key(void **state)
{
	struct fx *f = *state;
	uint8_t    pub[CS_P256_POINT_LEN];

	make_station_key(f);
	public_key_of(f, f->key, pub);
	/* Many signatures, so that some r or s is shorter than 32 bytes
	 * (1 in 128 per signature) and the left-padding is exercised. */
	sign_and_verify(f->key, pub, 200);
}

/* A PKCS#8 key made by openssl is just as good. */
static void
test_sign_with_pkcs8_key(void **state)
{
	struct fx *f = *state;
	uint8_t    pub[CS_P256_POINT_LEN];

	char *gen[] = {(char *)"openssl", (char *)"genpkey",
	    (char *)"-algorithm", (char *)"EC", (char *)"-pkeyopt",
	    (char *)"ec_paramgen_curve:P-256", (char *)"-out", f->key, NULL};
	run_ok(gen);
	public_key_of(f, f->key, pub);
	sign_and_verify(f->key, pub, 5);
}

static void
expect_key_error(const char *key, const char *needle)
{
	uint8_t msg[4] = {1, 2, 3, 4}, sig[CS_SIG_LEN];
	char    err[1024] = "";

	assert_int_equal(station_sign_challenge(key, msg, sizeof(msg), sig,
	    err, sizeof(err)), CS_ECONFIG);
	if (strstr(err, needle) == NULL || strstr(err, key) == NULL) {
		fail_msg("error for %s lacks '%s' or the path: %s", key,
		    needle, err);
	}
}

static void
test_bad_keys(void **state)
{
	struct fx *f = *state;
	char       path[512];

	tu_path(path, sizeof(path), f->dir, "missing.key");
	expect_key_error(path, "cannot open");

	tu_path(path, sizeof(path), f->dir, "garbage.key");
	tu_write_file(path, "this is not a key\n");
	expect_key_error(path, "not an unencrypted PEM private key");

	/* a truncated PEM key */
	tu_write_file(path, "-----BEGIN EC PRIVATE KEY-----\n"
	    "MHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n");
	expect_key_error(path, "private key");

	/* keys of the wrong kind */
	tu_path(path, sizeof(path), f->dir, "p384.key");
	char *p384[] = {(char *)"openssl", (char *)"genpkey",
	    (char *)"-algorithm", (char *)"EC", (char *)"-pkeyopt",
	    (char *)"ec_paramgen_curve:P-384", (char *)"-out", path, NULL};
	run_ok(p384);
	expect_key_error(path, "not an EC P-256 private key");

	tu_path(path, sizeof(path), f->dir, "ed25519.key");
	char *ed[] = {(char *)"openssl", (char *)"genpkey",
	    (char *)"-algorithm", (char *)"ed25519", (char *)"-out", path, NULL};
	run_ok(ed);
	expect_key_error(path, "private key");

	/* a directory, and a file far too long to be a key */
	expect_key_error(f->dir, "not a regular file");
	tu_path(path, sizeof(path), f->dir, "huge.key");
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (unsigned i = 0; i < STATION_KEY_PEM_MAX + 1; i++) {
		fputc('A', fp);
	}
	fclose(fp);
	expect_key_error(path, "at most");
}

/* ------------------------------------------------------------------ */
/* A stand-in authority                                                */
/* ------------------------------------------------------------------ */

/* Only what the station relies on: Hello hands out a challenge,
 * Authenticate checks the signature with station1's public key and hands
 * out a token, Sign checks the token and answers with a record-shaped
 * blob, or with the refusal the test asks for. */
struct fake {
	Countersign__V1__Authority_Service base; /* first: handlers cast */
	pthread_mutex_t mtx;
	uint8_t         pub[CS_P256_POINT_LEN];
	uint8_t         challenge[CS_AUTH_CHALLENGE_LEN];
	uint8_t         token[CS_AUTH_TOKEN_LEN];
	bool            token_ok;  /* false: the token is forgotten */
	atomic_uint     hellos, auths, signs;
	int             sign_err;  /* CS_OK, or the refusal to answer */
};

struct sfx {
	char            *dir;
	char             url[128], conf[512], key[512], cert[512], ca[512];
	struct fake      fake;
	cs_rpc_server   *srv;
	struct station_config cfg;
};

static void
on_hello(Countersign__V1__Authority_Service *base,
    const Countersign__V1__HelloRequest *in,
    Countersign__V1__HelloResponse_Closure closure, void *data)
{
	struct fake                   *fk = (struct fake *)base;
	Countersign__V1__HelloResponse out =
	    COUNTERSIGN__V1__HELLO_RESPONSE__INIT;

	if (strcmp(in->station_name, "station1") != 0) {
		cs_rpc_req_fail(data, CS_EUNAUTH, "no station named %s",
		    in->station_name);
		closure(NULL, data);
		return;
	}
	pthread_mutex_lock(&fk->mtx);
	unsigned n = atomic_fetch_add(&fk->hellos, 1) + 1;
	memset(fk->challenge, (int)n, sizeof(fk->challenge));
	out.challenge.data = fk->challenge;
	out.challenge.len  = sizeof(fk->challenge);
	out.authority_id   = (char *)"fake-authority";
	closure(&out, data);
	pthread_mutex_unlock(&fk->mtx);
}

static void
on_authenticate(Countersign__V1__Authority_Service *base,
    const Countersign__V1__AuthenticateRequest *in,
    Countersign__V1__AuthenticateResponse_Closure closure, void *data)
{
	struct fake                          *fk = (struct fake *)base;
	Countersign__V1__AuthenticateResponse out =
	    COUNTERSIGN__V1__AUTHENTICATE_RESPONSE__INIT;
	uint8_t                               msg[CS_AUTH_MSG_MAX];
	size_t                                len;

	pthread_mutex_lock(&fk->mtx);
	if (in->challenge.len != CS_AUTH_CHALLENGE_LEN ||
	    memcmp(in->challenge.data, fk->challenge,
		CS_AUTH_CHALLENGE_LEN) != 0 ||
	    in->signature.len != CS_SIG_LEN ||
	    cs_auth_message("fake-authority", in->station_name,
		in->challenge.data, msg, sizeof(msg), &len) != CS_OK ||
	    cs_verify(CS_ALG_P256, fk->pub, sizeof(fk->pub), msg, len,
		in->signature.data) != CS_OK) {
		pthread_mutex_unlock(&fk->mtx);
		cs_rpc_req_fail(data, CS_EUNAUTH,
		    "bad answer to the challenge");
		closure(NULL, data);
		return;
	}
	atomic_fetch_add(&fk->auths, 1);
	fk->token[0]++;
	fk->token_ok   = true;
	out.token.data = fk->token;
	out.token.len  = sizeof(fk->token);
	out.ttl_s      = 60;
	closure(&out, data);
	pthread_mutex_unlock(&fk->mtx);
}

/* The test's hand on the authority, under the lock its handlers take. */
static void
fake_set(struct fake *fk, bool token_ok, int sign_err)
{
	pthread_mutex_lock(&fk->mtx);
	fk->token_ok = token_ok;
	fk->sign_err = sign_err;
	pthread_mutex_unlock(&fk->mtx);
}

static bool
token_valid(struct fake *fk, void *data)
{
	size_t         len;
	const uint8_t *tok = cs_rpc_req_token(data, &len);
	bool           ok;

	pthread_mutex_lock(&fk->mtx);
	ok = fk->token_ok && len == sizeof(fk->token) &&
	    memcmp(tok, fk->token, len) == 0;
	pthread_mutex_unlock(&fk->mtx);
	return ok;
}

static void
on_sign(Countersign__V1__Authority_Service *base,
    const Countersign__V1__SignRequest *in,
    Countersign__V1__SignResponse_Closure closure, void *data)
{
	struct fake                  *fk = (struct fake *)base;
	Countersign__V1__SignResponse out =
	    COUNTERSIGN__V1__SIGN_RESPONSE__INIT;
	uint8_t                       rec[160];

	if (!token_valid(fk, data)) {
		cs_rpc_req_fail(data, CS_EUNAUTH, "session expired");
		closure(NULL, data);
		return;
	}
	pthread_mutex_lock(&fk->mtx);
	int refuse = fk->sign_err;
	pthread_mutex_unlock(&fk->mtx);
	if (refuse != CS_OK) {
		cs_rpc_req_fail(data, refuse, "refused for order %s",
		    in->order_id);
		closure(NULL, data);
		return;
	}
	/* Shaped as a record: header, the UID at 32, signature last. */
	memset(rec, 0xee, sizeof(rec));
	rec[7] = (uint8_t)in->uid.len;
	memcpy(rec + 32, in->uid.data, in->uid.len);
	out.record.data = rec;
	out.record.len  = 32 + in->uid.len + 64;
	out.serial      = atomic_fetch_add(&fk->signs, 1) + 1;
	out.remaining   = 41;
	closure(&out, data);
}

static int
setup_fake(void **state)
{
	struct sfx     *f = calloc(1, sizeof(*f));
	cs_tls_server  *tls = NULL;
	char            sk[512], sc[512], text[2048];

	assert_non_null(f);
	f->dir = tu_tmpdir();
	tu_make_pki(f->dir);
	countersign__v1__authority__init(&f->fake.base, NULL);
	f->fake.base.hello        = on_hello;
	f->fake.base.authenticate = on_authenticate;
	f->fake.base.sign         = on_sign;
	pthread_mutex_init(&f->fake.mtx, NULL);
	struct cs_tls_files files = {
	    .cert = tu_path(sc, sizeof(sc), f->dir, "server.pem"),
	    .key  = tu_path(sk, sizeof(sk), f->dir, "server.key"),
	    .ca   = tu_path(f->ca, sizeof(f->ca), f->dir, "ca.pem"),
	};
	assert_int_equal(cs_tls_server_make(&tls, &files, true), CS_OK);
	struct cs_rpc_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
	    .tls = tls, .workers = 16};
	assert_int_equal(cs_rpc_server_open(&f->srv, &o), CS_OK);
	assert_int_equal(cs_rpc_server_add(f->srv, &f->fake.base.base),
	    CS_OK);
	assert_int_equal(cs_rpc_server_start(f->srv), CS_OK);
	cs_tls_server_release(tls);
	snprintf(f->url, sizeof(f->url), "tls+tcp://localhost:%d",
	    cs_rpc_server_port(f->srv));

	tu_path(f->key, sizeof(f->key), f->dir, "station1.key");
	tu_path(f->cert, sizeof(f->cert), f->dir, "station1.pem");
	struct fx pk = {.dir = f->dir};
	public_key_of(&pk, f->key, f->fake.pub);
	f->cfg = (struct station_config){.name = (char *)"station1",
	    .authority_url = f->url, .ca = f->ca, .cert = f->cert,
	    .key = f->key, .timeout_ms = 5000};

	tu_path(f->conf, sizeof(f->conf), f->dir, "station.conf");
	snprintf(text, sizeof(text), "[station]\nname = station1\n"
	    "authority_url = %s\nca = %s\ncert = %s\nkey = %s\n"
	    "timeout_ms = 5000\n", f->url, f->ca, f->cert, f->key);
	tu_write_file(f->conf, text);
	*state = f;
	return 0;
}

static int
teardown_fake(void **state)
{
	struct sfx *f = *state;

	cs_rpc_server_close(f->srv, 1000);
	pthread_mutex_destroy(&f->fake.mtx);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

/* One Sign through the session; returns its result. */
static int
session_sign(station_session *s, struct cs_rpc_result *res)
{
	Countersign__V1__SignRequest   req =
	    COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *rsp = NULL;
	uint8_t                        uid[4] = {4, 0xa1, 0xb2, 0xc3};
	int                            rv;

	req.order_id = (char *)"o1";
	req.uid.data = uid;
	req.uid.len  = sizeof(uid);
	rv = station_session_call(s, "Sign", &req.base,
	    (ProtobufCMessage **)&rsp, res);
	if (rv == CS_OK) {
		assert_int_equal(rsp->record.len, 100);
		protobuf_c_message_free_unpacked(&rsp->base, NULL);
	}
	return rv;
}

static void
test_session_authenticates(void **state)
{
	struct sfx          *f = *state;
	station_session     *s = NULL;
	struct cs_rpc_result res;
	char                 err[1024];

	if (station_session_open(&s, &f->cfg, err, sizeof(err)) != CS_OK) {
		fail_msg("station_session_open: %s", err);
	}
	assert_int_equal(atomic_load(&f->fake.auths), 1);
	assert_non_null(station_session_client(s));
	assert_int_equal(session_sign(s, &res), CS_OK);

	/* the authority forgets the token: one re-authentication */
	fake_set(&f->fake, false, CS_OK);
	assert_int_equal(session_sign(s, &res), CS_OK);
	assert_int_equal(atomic_load(&f->fake.auths), 2);

	/* a refusal is passed on with the authority's message */
	fake_set(&f->fake, true, CS_EEXHAUSTED);
	assert_int_not_equal(session_sign(s, &res), CS_OK);
	assert_int_equal(res.status, CS_STATUS_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(res.message, "refused for order o1"));
	station_session_close(s);
	station_session_close(NULL);
}

static void
test_session_refused(void **state)
{
	struct sfx      *f = *state;
	station_session *s = NULL;
	char             err[1024];

	f->cfg.name = (char *)"station9";
	assert_int_equal(station_session_open(&s, &f->cfg, err, sizeof(err)),
	    CS_EUNAUTH);
	assert_null(s);
	assert_non_null(strstr(err, "did not accept this station"));
	assert_non_null(strstr(err, "no station named station9"));

	/* the enrolled name, but the challenge signed with another key
	 * (station2's, which also makes the TLS connection) */
	char key2[512], cert2[512];
	f->cfg.name = (char *)"station1";
	tu_path(key2, sizeof(key2), f->dir, "station2.key");
	tu_path(cert2, sizeof(cert2), f->dir, "station2.pem");
	f->cfg.key  = key2;
	f->cfg.cert = cert2;
	assert_int_equal(station_session_open(&s, &f->cfg, err, sizeof(err)),
	    CS_EUNAUTH);
	assert_non_null(strstr(err, "bad answer to the challenge"));
}

struct worker {
	station_session *s;
	int              failures;
};

static void *
sign_many(void *arg)
{
	struct worker       *w = arg;
	struct cs_rpc_result res;

	for (int i = 0; i < 10; i++) {
		if (session_sign(w->s, &res) != CS_OK) {
			w->failures++;
		}
	}
	return NULL;
}

/* Many threads find the token forgotten at once; one re-authenticates. */
static void
test_session_reauth_once(void **state)
{
	struct sfx      *f = *state;
	station_session *s = NULL;
	pthread_t        t[8];
	struct worker    w[8];
	char             err[1024];

	if (station_session_open(&s, &f->cfg, err, sizeof(err)) != CS_OK) {
		fail_msg("station_session_open: %s", err);
	}
	fake_set(&f->fake, false, CS_OK);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){.s = s};
		assert_int_equal(pthread_create(&t[i], NULL, sign_many, &w[i]),
		    0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(atomic_load(&f->fake.auths), 2);
	assert_int_equal(atomic_load(&f->fake.signs), 80);
	station_session_close(s);
}

/* countersign-station sign: output file, summary line, exit codes. */
static void
test_sign_command(void **state)
{
	struct sfx *f = *state;
	char        prog[512], out[4096], rec[512];
	struct stat st;

	tu_program(prog, sizeof(prog), "station", "countersign-station");
	tu_path(rec, sizeof(rec), f->dir, "rec.bin");
	char *argv[] = {prog, (char *)"-c", f->conf, (char *)"sign",
	    (char *)"--order", (char *)"o1", (char *)"--uid",
	    (char *)"0x04:A1:b2:c3", (char *)"--out", rec, NULL};
	int rv = tu_run(argv, out, sizeof(out));
	if (rv != 0) {
		fail_msg("sign exited %d: %s", rv, out);
	}
	assert_non_null(strstr(out, "signed order=o1 uid=04a1b2c3 serial=1 "
	    "reissued=no remaining=41 bytes=100"));
	assert_int_equal(stat(rec, &st), 0);
	assert_int_equal(st.st_size, 100);
	assert_int_equal(st.st_mode & 07777, 0644);

	static const struct {
		int err, code;
	} refusals[] = {
	    {CS_EEXHAUSTED, 5}, {CS_ENOENT, 6}, {CS_EPRECOND, 6},
	    {CS_EINVAL, 7}, {CS_EEXIST, 8}, {CS_EPERM, 4}, {CS_EIO, 1},
	};
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		fake_set(&f->fake, true, refusals[i].err);
		rv = tu_run(argv, out, sizeof(out));
		if (rv != refusals[i].code) {
			fail_msg("%s: exit %d, not %d: %s",
			    cs_errname(refusals[i].err), rv,
			    refusals[i].code, out);
		}
		assert_non_null(strstr(out, "error: refused for order o1"));
	}
	/* a station the authority does not know */
	fake_set(&f->fake, true, CS_OK);
	char conf2[512], text[2048];
	tu_path(conf2, sizeof(conf2), f->dir, "unknown.conf");
	snprintf(text, sizeof(text), "[station]\nname = station9\n"
	    "authority_url = %s\nca = %s\ncert = %s\nkey = %s\n", f->url,
	    f->ca, f->cert, f->key);
	tu_write_file(conf2, text);
	argv[2] = conf2;
	assert_int_equal(tu_run(argv, out, sizeof(out)), 4);
	assert_non_null(strstr(out, "countersign-admin station list"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_uid_good),
	    cmocka_unit_test(test_parse_uid_bad),
	    cmocka_unit_test(test_der_to_raw),
	    cmocka_unit_test_setup_teardown(test_sign_with_init_key, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_sign_with_pkcs8_key, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_authenticates,
		setup_fake, teardown_fake),
	    cmocka_unit_test_setup_teardown(test_session_refused, setup_fake,
		teardown_fake),
	    cmocka_unit_test_setup_teardown(test_session_reauth_once,
		setup_fake, teardown_fake),
	    cmocka_unit_test_setup_teardown(test_sign_command, setup_fake,
		teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
