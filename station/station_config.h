/*
 * station_config.h - station.conf: every option of a station agent in one
 * table (station_config.c); deploy/station.conf.example documents them.
 */
#ifndef STATION_CONFIG_H
#define STATION_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct station_config {
	/* [station] */
	char    *name;          /* this station's name, as enrolled */
	char    *authority_url; /* tls+tcp://host:port of the authority */
	char    *authority_id;  /* the authority's id, checked when set */
	char    *ca;            /* CA that the authority's cert chains to */
	char    *cert;          /* this station's certificate (PEM) */
	char    *key;           /* this station's private key (PEM) */
	unsigned timeout_ms;    /* per request */
	char    *log_level;     /* error, warn, info, debug */
};

/* Load path; CS_OK or CS_ENOENT / CS_ECONFIG with `file:line: message`. */
int station_config_load(struct station_config *cfg, const char *path,
    char *err, size_t errlen);

/* Free the strings of cfg; NULL-safe. */
void station_config_free(struct station_config *cfg);

#endif /* STATION_CONFIG_H */
