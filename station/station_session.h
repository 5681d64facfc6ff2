/*
 * station_session.h - the station's session with the authority: the TLS
 * connection, the proof of possession of the station key (cs_auth.h) that
 * turns it into an authenticated session, and calls that renew the
 * session by themselves when the authority has forgotten it.
 */
#ifndef STATION_SESSION_H
#define STATION_SESSION_H

#include "cs_rpc.h"
#include "station_config.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest device UID, in bytes (docs/record-format.md). */
#define STATION_UID_MAX 32u

/* Longest station key file, PEM.  A P-256 key is about 230 bytes. */
#define STATION_KEY_PEM_MAX 8192u

typedef struct station_session station_session;

/*
 * Connect to cfg->authority_url with the station's certificate and key,
 * checking the authority's certificate against cfg->ca and the host named
 * in the URL; waits for the first connection.  No session is made: this
 * is for calls that need none (Ping).  Errors: CS_ECONFIG (the URL has no
 * host, or the TLS files cannot be used), CS_EUNAVAIL, CS_EPEERAUTH,
 * CS_ETLS, CS_ENOMEM; err says which and what to do.
 */
int station_connect(const struct station_config *cfg, cs_rpc_client **out,
    char *err, size_t errlen);

/*
 * Connect (station_connect) and authenticate: Hello, sign the challenge
 * with the key in cfg->key, Authenticate; later calls carry the session
 * token.  The session copies what it needs of cfg.  Errors: those of
 * station_connect; CS_ECONFIG (the key file is missing or not a P-256
 * key); the authority's refusal as cs_err_from_status() maps it (chiefly
 * CS_EUNAUTH, CS_EPERM); CS_EUNAVAIL / CS_ETIMEDOUT; CS_EPROTO (the
 * authority's answer is malformed); CS_ECRYPTO.  err (always set on
 * failure) carries the authority's message and what to do.
 */
int station_session_open(station_session **out,
    const struct station_config *cfg, char *err, size_t errlen);

/*
 * Call countersign.v1.Authority/method with in, as cs_rpc_call() does.
 * When the authority answers UNAUTHENTICATED (it forgets tokens after
 * their TTL and when it restarts) the session authenticates again and the
 * call is repeated once; this is safe for every method because the
 * authority checks the token before it does anything.  Thread-safe: one
 * thread re-authenticates while the others wait for it and then retry
 * with the new token.  If re-authenticating fails, the result is that
 * failure (res says why; CS_ECONFIG with res->status UNKNOWN when the
 * station's own key cannot be used).
 */
int station_session_call(station_session *s, const char *method,
    const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res);

/*
 * Whether a failed call may work when asked again later: the authority
 * unreachable, the connection lost, or its own trouble (INTERNAL, the
 * HSM busy) rather than a verdict on the request.
 */
bool station_session_transient(int rv, const struct cs_rpc_result *res);

/*
 * What station_session_call_patiently() tells while it waits: "waiting"
 * (first transient failure, with the reason) and "authority-back" (an
 * answer after waiting).
 */
typedef void station_wait_note(void *ctx, const char *what,
    const char *message);

/*
 * station_session_call(), asked again with back-off (0.25 s doubling to
 * 5 s) while the failure is transient, for at most limit_s seconds (0:
 * 300).  stop (may be NULL): when it becomes non-zero during the wait,
 * returns CS_ECANCELED.  note (may be NULL) hears of the wait.  Returns
 * the last call's result.
 */
int station_session_call_patiently(station_session *s, const char *method,
    const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res, unsigned limit_s,
    volatile sig_atomic_t *stop, station_wait_note *note, void *ctx);

/* The session's client, for calls made directly; owned by the session. */
cs_rpc_client *station_session_client(station_session *s);

/* Close the connection and wipe the session; NULL-safe. */
void station_session_close(station_session *s);

/*
 * Sign msg with the P-256 private key in the PEM file key_path (SEC1 or
 * PKCS#8, unencrypted): ECDSA over SHA-256, sig as raw r||s, 32 bytes
 * each, big-endian, left-padded.  Key material is wiped before returning.
 * Errors: CS_ECONFIG (the file is missing, unreadable, too long or not a
 * P-256 private key: err names it), CS_ECRYPTO, CS_EINVAL (NULL).
 */
int station_sign_challenge(const char *key_path, const uint8_t *msg,
    size_t len, uint8_t sig[64], char *err, size_t errlen);

/*
 * Convert a DER ECDSA-Sig-Value to raw r||s (each left-padded to 32
 * bytes).  Errors: CS_EINVAL (not DER, trailing bytes, r or s zero or
 * wider than 32 bytes).
 */
int station_sig_der_to_raw(const uint8_t *der, size_t len, uint8_t sig[64]);

/*
 * Parse a device UID written in hex: upper or lower case, an optional
 * "0x" prefix, and optionally ':' or '-' between bytes ("04A1B2",
 * "0x04a1b2", "04:a1:b2").  out holds STATION_UID_MAX bytes; *len gets
 * 1..STATION_UID_MAX.  Errors: CS_EINVAL (empty, odd number of digits, a
 * misplaced separator, a non-hex character, too long).
 */
int station_parse_uid(const char *hex, uint8_t *out, size_t *len);

#endif /* STATION_SESSION_H */
