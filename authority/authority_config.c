/*
 * authority_config.c - the option table of authority.conf.  This table is
 * the one place where defaults live.
 */
#include "authority_config.h"
#include "cs_config.h"

#include <string.h>

/* The console's listen URL: https://host:port. */
static const char *
check_https_url(const char *v)
{
	if (strncmp(v, "https://", 8) != 0 || strchr(v + 8, ':') == NULL) {
		return "must be https://host:port (e.g. https://127.0.0.1:8443)";
	}
	return NULL;
}

#define OPT(...) CS_CONF_OPT(struct authority_config, __VA_ARGS__)

static const struct cs_conf_opt opts[] = {
	OPT("authority", "id", CS_CONF_STRING, id, CS_CONF_REQUIRED, NULL, 0,
	    0, cs_conf_check_name, "name of this authority"),
	OPT("authority", "data_dir", CS_CONF_STRING, data_dir,
	    CS_CONF_REQUIRED, NULL, 0, 0, NULL, "directory for the store"),
	OPT("authority", "station_listen", CS_CONF_STRING, station_listen,
	    CS_CONF_REQUIRED, NULL, 0, 0, cs_conf_check_tls_url,
	    "tls+tcp://host:port where stations connect"),
	OPT("authority", "admin_listen", CS_CONF_STRING, admin_listen,
	    CS_CONF_OPTIONAL, "ipc:///run/countersign/admin.sock", 0, 0,
	    cs_conf_check_ipc_url, "ipc:///path for countersign-admin"),
	OPT("authority", "workers", CS_CONF_UINT, workers, CS_CONF_OPTIONAL,
	    "16", 1, 256, NULL, "requests served at once"),
	OPT("authority", "log_level", CS_CONF_STRING, log_level,
	    CS_CONF_OPTIONAL, "info", 0, 0, cs_conf_check_log_level,
	    "error, warn, info or debug"),
	OPT("authority", "log_syslog", CS_CONF_BOOL, log_syslog,
	    CS_CONF_OPTIONAL, "false", 0, 0, NULL,
	    "log to syslog instead of stderr"),
	OPT("authority", "map_size_mb", CS_CONF_UINT, map_size_mb,
	    CS_CONF_OPTIONAL, "1024", 1, 1048576, NULL,
	    "largest size of the store's data file, MiB"),
	OPT("authority", "session_ttl_s", CS_CONF_UINT, session_ttl_s,
	    CS_CONF_OPTIONAL, "3600", 10, 86400, NULL,
	    "lifetime of a station session token, seconds"),
	OPT("limits", "handshake_timeout_ms", CS_CONF_UINT,
	    handshake_timeout_ms, CS_CONF_OPTIONAL, "10000", 100, 600000, NULL,
	    "a connection must finish its TLS handshake this soon, ms"),
	OPT("limits", "max_connections", CS_CONF_UINT, max_connections,
	    CS_CONF_OPTIONAL, "1024", 1, 65536, NULL,
	    "station connections at once, in total"),
	OPT("limits", "max_connections_per_source", CS_CONF_UINT,
	    max_connections_per_source, CS_CONF_OPTIONAL, "64", 1, 1000000,
	    NULL, "station connections at once from one IP address"),
	OPT("limits", "max_connections_per_station", CS_CONF_UINT,
	    max_connections_per_station, CS_CONF_OPTIONAL, "64", 1, 65536,
	    NULL, "connections at once with one station's certificate"),
	OPT("limits", "max_requests_per_connection", CS_CONF_UINT,
	    max_requests_per_connection, CS_CONF_OPTIONAL, "8", 1, 1024, NULL,
	    "requests queued or running per connection"),
	OPT("limits", "send_timeout_ms", CS_CONF_UINT, send_timeout_ms,
	    CS_CONF_OPTIONAL, "5000", 100, 600000, NULL,
	    "a peer that reads no reply for this long is dropped, ms"),
	OPT("limits", "max_handshakes", CS_CONF_UINT, max_handshakes,
	    CS_CONF_OPTIONAL, "256", 1, 1000000, NULL,
	    "station connections still in their TLS handshake at once"),
	OPT("limits", "idle_timeout_s", CS_CONF_UINT, idle_timeout_s,
	    CS_CONF_OPTIONAL, "600", 1, 86400, NULL,
	    "an open station connection unused this long is closed, s"),
	OPT("limits", "audit_collapse_s", CS_CONF_UINT, audit_collapse_s,
	    CS_CONF_OPTIONAL, "60", 1, 3600, NULL,
	    "repeated refusals/authentications of one station and reason "
	    "are audited once per this interval, with a count, s"),
	OPT("tls", "cert", CS_CONF_STRING, cert, CS_CONF_REQUIRED, NULL, 0, 0,
	    NULL, "authority certificate, PEM"),
	OPT("tls", "key", CS_CONF_STRING, key, CS_CONF_REQUIRED, NULL, 0, 0,
	    NULL, "authority private key, PEM"),
	OPT("tls", "station_ca", CS_CONF_STRING, station_ca, CS_CONF_REQUIRED,
	    NULL, 0, 0, NULL, "CA certificate that stations chain to, PEM"),
	OPT("tls", "crl", CS_CONF_STRING, crl, CS_CONF_OPTIONAL, NULL, 0, 0,
	    NULL, "revoked station certificates, PEM CRL"),
	OPT("hsm", "module", CS_CONF_STRING, hsm_module, CS_CONF_IF_SECTION,
	    NULL, 0, 0, NULL, "PKCS#11 module path"),
	OPT("hsm", "token", CS_CONF_STRING, hsm_token, CS_CONF_IF_SECTION,
	    NULL, 0, 0, NULL, "token label"),
	OPT("hsm", "pin_file", CS_CONF_STRING, hsm_pin_file,
	    CS_CONF_IF_SECTION, NULL, 0, 0, NULL, "file with the user PIN"),
	OPT("hsm", "sessions", CS_CONF_UINT, hsm_sessions, CS_CONF_OPTIONAL,
	    "2", 1, 64, NULL, "signing sessions in the pool"),
	OPT("hsm", "station_ca_key", CS_CONF_STRING, hsm_station_ca_key,
	    CS_CONF_OPTIONAL, "station-ca", 0, 0, cs_conf_check_name,
	    "label of the station CA's key on the token"),
	OPT("hsm", "firmware_key", CS_CONF_STRING, hsm_firmware_key,
	    CS_CONF_OPTIONAL, NULL, 0, 0, cs_conf_check_name,
	    "label of the AES-256 key that seals held firmware images"),
	OPT("firmware", "targets_dir", CS_CONF_STRING, firmware_targets_dir,
	    CS_CONF_OPTIONAL, NULL, 0, 0, NULL,
	    "directory of target profiles (NAME.ini)"),
	OPT("console", "listen", CS_CONF_STRING, console_listen,
	    CS_CONF_OPTIONAL, "https://127.0.0.1:8443", 0, 0,
	    check_https_url, "https://host:port of the web console"),
	OPT("console", "cert", CS_CONF_STRING, console_cert,
	    CS_CONF_IF_SECTION, NULL, 0, 0, NULL,
	    "web console certificate, PEM"),
	OPT("console", "key", CS_CONF_STRING, console_key, CS_CONF_IF_SECTION,
	    NULL, 0, 0, NULL, "web console private key, PEM"),
	OPT("console", "session_idle_s", CS_CONF_UINT, console_session_idle_s,
	    CS_CONF_OPTIONAL, "1800", 1, 86400, NULL,
	    "a console session ends when unused this long, seconds"),
	OPT("console", "session_max_s", CS_CONF_UINT, console_session_max_s,
	    CS_CONF_OPTIONAL, "28800", 1, 604800, NULL,
	    "a console session ends this long after sign-in, seconds"),
	OPT("console", "max_connections", CS_CONF_UINT, console_max_connections,
	    CS_CONF_OPTIONAL, "256", 1, 100000, NULL,
	    "console connections at once, in total"),
	OPT("console", "max_connections_per_source", CS_CONF_UINT,
	    console_max_connections_per_source, CS_CONF_OPTIONAL, "32", 1,
	    100000, NULL, "console connections at once from one IP address"),
	OPT("console", "idle_timeout_s", CS_CONF_UINT, console_idle_timeout_s,
	    CS_CONF_OPTIONAL, "60", 1, 86400, NULL,
	    "a console connection that moves no byte this long is closed, s"),
	OPT("console", "metrics_public", CS_CONF_BOOL, console_metrics_public,
	    CS_CONF_OPTIONAL, "false", 0, 0, NULL,
	    "serve /metrics without a token"),
};

#define NOPTS CS_CONF_NOPTS(opts)

int
authority_config_load(struct authority_config *cfg, const char *path,
    char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	return cs_conf_load(path, opts, NOPTS, cfg, err, errlen);
}

void
authority_config_free(struct authority_config *cfg)
{
	cs_conf_free(opts, NOPTS, cfg);
}
