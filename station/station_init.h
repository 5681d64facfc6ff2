/*
 * station_init.h - `countersign-station init`: make this station's key
 * pair and a certificate signing request for enrollment.
 */
#ifndef STATION_INIT_H
#define STATION_INIT_H

#include "station_config.h"

#include <stddef.h>

/* Longest path of the key or CSR file. */
#define STATION_PATH_MAX 4096

/*
 * Generate an EC P-256 key at cfg->key (created with mode 0600; an
 * existing file is never replaced) and a PKCS#10 CSR beside it (the key's
 * name with ".key" replaced by ".csr", or ".csr" appended), subject
 * CN=cfg->name, signed with the new key (ECDSA with SHA-256).  The CSR's
 * path is written to csr_path.  Errors: CS_EEXIST (the key file exists),
 * CS_EIO (a file cannot be written: err says which and why), CS_ECRYPTO.
 * Key material is wiped from memory before returning.
 */
int station_init(const struct station_config *cfg, char *csr_path,
    size_t csr_len, char *err, size_t errlen);

/*
 * Write all len bytes of buf to fd, going on after a short write or an
 * interrupted one.  Errors: CS_EIO (errno says why when write() failed).
 * Used for the key and CSR here and for the record that
 * `countersign-station sign` writes.
 */
int station_write_all(int fd, const void *buf, size_t len);

#endif /* STATION_INIT_H */
