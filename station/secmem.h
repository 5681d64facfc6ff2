/*
 * secmem.h - memory for the OEM's firmware on the station.
 *
 * An order whose image the authority holds streams it into the station's
 * memory only: the contract manufacturer, who runs this PC, must not find
 * it on disk.  Memory from secmem_alloc() is therefore
 *   - locked (mlock): never written to swap,
 *   - left out of core dumps (MADV_DONTDUMP),
 *   - wiped (explicit_bzero) before it is given back, and
 *   - listed, so that a fatal signal's handler can wipe all of it at once
 *     (secmem_wipe_all, async-signal-safe) before the process dies.
 *
 * Locking counts against RLIMIT_MEMLOCK (8 MiB for a user on Debian 12);
 * secmem_budget() tells before a run whether what it needs fits.
 */
#ifndef SECMEM_H
#define SECMEM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * len bytes of page-aligned, zeroed memory, excluded from core dumps.
 * must_lock: fail (CS_ENOMEM, err says why and what to do) unless it can
 * be locked in RAM; otherwise locking is tried and *locked (if not NULL)
 * says whether it took.  Errors: CS_EINVAL (len 0), CS_ENOMEM.
 */
int secmem_alloc(void **out, size_t len, bool must_lock, bool *locked,
    char *err, size_t errlen);

/* Wipe, unlock and give back memory from secmem_alloc (the same len).
 * NULL-safe. */
void secmem_free(void *p, size_t len);

/*
 * Whether need bytes more can be locked under this process's
 * RLIMIT_MEMLOCK (beyond what secmem holds locked now).  CS_OK, or
 * CS_ENOMEM with err naming the limit, the need and how to raise it.
 */
int secmem_budget(size_t need, char *err, size_t errlen);

/* Wipe every block secmem_alloc handed out and that is not yet freed.
 * Async-signal-safe: for the handler of a signal that ends the process. */
void secmem_wipe_all(void);

/* No core dump of this process from now on (prctl PR_SET_DUMPABLE 0):
 * copies of the image in library buffers (TLS records, messages) are not
 * in secmem's blocks.  CS_OK or CS_EIO. */
int secmem_no_core(void);

#endif /* SECMEM_H */
