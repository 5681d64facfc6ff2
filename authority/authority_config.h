/*
 * authority_config.h - authority.conf: every option of the signing
 * authority, its default and its meaning, in one table
 * (authority_config.c).  deploy/authority.conf.example documents the same
 * options for operators.
 */
#ifndef AUTHORITY_CONFIG_H
#define AUTHORITY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct authority_config {
	/* [authority] */
	char    *id;             /* name reported to stations */
	char    *data_dir;       /* LMDB environment and state */
	char    *station_listen; /* tls+tcp://host:port for stations */
	char    *admin_listen;   /* ipc:///path for countersign-admin */
	unsigned workers;        /* requests served at once */
	char    *log_level;      /* error, warn, info, debug */
	bool     log_syslog;     /* log to syslog instead of stderr */
	unsigned map_size_mb;    /* largest size of the LMDB data file */
	unsigned session_ttl_s;  /* lifetime of a station session token */
	/* [limits] budgets of every peer (docs/authority.md) */
	unsigned handshake_timeout_ms; /* TLS handshake + SP header */
	unsigned max_connections;      /* station port, in total */
	unsigned max_connections_per_source; /* per IP address */
	unsigned max_connections_per_station; /* per certificate name */
	unsigned max_requests_per_connection; /* queued or running */
	unsigned send_timeout_ms;      /* unread replies: drop the peer */
	unsigned max_handshakes;       /* connections in their handshake */
	unsigned idle_timeout_s;       /* open connection unused this long */
	unsigned audit_collapse_s;     /* audit_limit.h interval */
	/* [tls] */
	char *cert;       /* authority's certificate chain (PEM) */
	char *key;        /* its private key (PEM) */
	char *station_ca; /* CA that station certificates must chain to */
	char *crl;        /* optional CRL of revoked station certificates */
	/* [hsm] (optional until signing is configured) */
	char    *hsm_module;   /* PKCS#11 module path */
	char    *hsm_token;    /* token label */
	char    *hsm_pin_file; /* file holding the user PIN */
	unsigned hsm_sessions; /* signing sessions in the pool */
	char    *hsm_station_ca_key; /* label of the station CA's key */
	char    *hsm_firmware_key;   /* label of the AES key that seals held
	                                firmware images; NULL: none held */
	/* [firmware] */
	char    *firmware_targets_dir; /* target profiles; NULL: the defaults
	                                  (/etc/countersign/targets, then the
	                                  installed ones) */
	/* [console] (optional: no section, no web console) */
	char    *console_listen;     /* https://host:port */
	char    *console_cert;       /* its certificate chain (PEM) */
	char    *console_key;        /* its private key (PEM) */
	unsigned console_session_idle_s; /* session ends when unused this long */
	unsigned console_session_max_s;  /* session ends this long after sign-in */
	unsigned console_max_connections;  /* HTTPS connections at once */
	unsigned console_max_connections_per_source;
	unsigned console_idle_timeout_s;   /* a connection idle this long ends */
	bool     console_metrics_public;   /* /metrics without a token */
};

/*
 * Load path.  Returns CS_OK, or CS_ENOENT / CS_ECONFIG with the
 * `file:line: message` text in err.  Free with authority_config_free().
 */
int authority_config_load(struct authority_config *cfg, const char *path,
    char *err, size_t errlen);

/* Free the strings of cfg; NULL-safe. */
void authority_config_free(struct authority_config *cfg);

#endif /* AUTHORITY_CONFIG_H */
