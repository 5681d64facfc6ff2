/*
 * station_config.c - the option table of station.conf, the one place
 * where its defaults live.
 */
#include "station_config.h"
#include "cs_config.h"

#include <string.h>

#define OPT(...) CS_CONF_OPT(struct station_config, __VA_ARGS__)

static const struct cs_conf_opt opts[] = {
	OPT("station", "name", CS_CONF_STRING, name, CS_CONF_REQUIRED, NULL,
	    0, 0, cs_conf_check_name, "this station's enrolled name"),
	OPT("station", "authority_url", CS_CONF_STRING, authority_url,
	    CS_CONF_REQUIRED, NULL, 0, 0, cs_conf_check_tls_url,
	    "tls+tcp://host:port of the authority"),
	OPT("station", "authority_id", CS_CONF_STRING, authority_id,
	    CS_CONF_OPTIONAL, NULL, 0, 0, cs_conf_check_name,
	    "the authority's [authority] id; its challenges are answered "
	    "only when it matches"),
	OPT("station", "ca", CS_CONF_STRING, ca, CS_CONF_REQUIRED, NULL, 0, 0,
	    NULL, "CA certificate that verifies the authority, PEM"),
	OPT("station", "cert", CS_CONF_STRING, cert, CS_CONF_REQUIRED, NULL,
	    0, 0, NULL, "this station's certificate, PEM"),
	OPT("station", "key", CS_CONF_STRING, key, CS_CONF_REQUIRED, NULL, 0,
	    0, NULL, "this station's private key, PEM"),
	OPT("station", "timeout_ms", CS_CONF_UINT, timeout_ms,
	    CS_CONF_OPTIONAL, "10000", 100, 600000, NULL,
	    "how long one request to the authority may take"),
	OPT("station", "log_level", CS_CONF_STRING, log_level,
	    CS_CONF_OPTIONAL, "warn", 0, 0, cs_conf_check_log_level,
	    "error, warn, info or debug"),
};

#define NOPTS CS_CONF_NOPTS(opts)

int
station_config_load(struct station_config *cfg, const char *path,
    char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	return cs_conf_load(path, opts, NOPTS, cfg, err, errlen);
}

void
station_config_free(struct station_config *cfg)
{
	cs_conf_free(opts, NOPTS, cfg);
}
