/*
 * station_fixture.c - see station_fixture.h.
 */
#include "station_fixture.h"

#include "cs_err.h"
#include "station_config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

station_session *
tf_session(const char *dir, int port, const char *name)
{
	struct station_config cfg;
	station_session      *s = NULL;
	char                  cert[700], key[700], ca[700], url[64], err[512];

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.name          = (char *)name;
	cfg.authority_url = url;
	cfg.ca            = ca;
	cfg.cert          = cert;
	cfg.key           = key;
	cfg.timeout_ms    = 20000;
	cfg.log_level     = (char *)"warn";
	if (station_session_open(&s, &cfg, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "session %s: %s\n", name, err);
		fail();
	}
	return s;
}
