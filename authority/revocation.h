/*
 * revocation.h - disabled stations refused at TLS.
 *
 * The station port's TLS context carries a CRL issued by the station CA
 * (its key stays on the HSM): every disabled station's certificate is on
 * it.  When the officer disables a station, a new CRL is issued from the
 * store, written to <data_dir>/station-crl.pem, and a new TLS context that
 * loads it replaces the old one for connections from then on; the
 * station's open connections are closed.  Enabling it issues a CRL without
 * it.  The CRL is also re-issued when it is a day old (it is valid for
 * STATION_CRL_DAYS days), and at start.
 *
 * Without a station CA on this authority (enrollment elsewhere) there is
 * nothing to sign with: the configured [tls] crl is used as it is, and
 * disabling still closes the station's connections.
 */
#ifndef REVOCATION_H
#define REVOCATION_H

#include "cs_srv.h"
#include "cs_tls.h"
#include "station_ca.h"
#include "store.h"

typedef struct revocation revocation;

struct revocation_opts {
	store              *st;
	station_ca         *ca;       /* NULL: no CRL of our own */
	const char         *crl_path; /* where the issued CRL is written */
	struct cs_tls_files files;    /* the station port's TLS files; .crl
	                                 is an extra CRL file (optional) */
};

/*
 * Issue the first CRL and make the station port's TLS context.  *tls gets
 * a reference for the caller (cs_tls_server_release).  Errors: those of
 * station_ca_crl, cs_tls_server_make, the store, CS_EIO (cannot write the
 * CRL file); err says which.
 */
int revocation_open(revocation **out, const struct revocation_opts *o,
    cs_tls_server **tls, char *err, size_t errlen);

/* The server whose context and connections follow the CRL.  NULL-safe. */
void revocation_attach(revocation *r, cs_srv *srv);

/*
 * After station name was enabled or disabled (committed): re-issue the
 * CRL, swap the TLS context, and when disabled close the station's open
 * connections.  Returns CS_OK, or the error of the re-issue (the old
 * context stays; the station's connections are closed all the same and
 * the pipeline refuses it anyway).  NULL-safe (r == NULL: CS_OK).
 */
int revocation_station_changed(revocation *r, const char *name,
    bool enabled);

/* Re-issue the CRL when the current one is older than a day. */
void revocation_refresh(revocation *r);

/* A copy of the current CRL (PEM, malloc'd); CS_ENOENT without one. */
int revocation_crl_pem(revocation *r, char **pem);

/* NULL-safe. */
void revocation_close(revocation *r);

#endif /* REVOCATION_H */
