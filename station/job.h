/*
 * job.h - the programming job: `countersign-station run`.
 *
 * One worker per probe (gang programming).  For each device a worker:
 * reads the UID → asks the authority for its record (Sign) → writes the
 * image and the record into flash → reads everything back and compares →
 * resets and runs the device (for emulated devices: the boot verdict) →
 * locks it when the profile says how (probe_protect) → reports the
 * outcome (Report, with locked and firmware_checked).  The device is not
 * touched until its record is in hand; when the authority is unreachable
 * the worker waits and retries with back-off.  A failed attempt costs no
 * quota: asking again for the same UID returns the same record.  A
 * profile that can lock is always used to lock, whether or not the order
 * requires it: a shipped device should leave locked.
 *
 * Events go to o->events as one JSON object per line (--json) or as text;
 * on a terminal a progress line shows done (and how many of them are not
 * locked), failed, remaining quota and devices per minute.
 */
#ifndef JOB_H
#define JOB_H

#include "cs_image.h"
#include "station_session.h"
#include "cs_target.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JOB_MAX_PROBES 64u

struct job_opts {
	station_session     *session;  /* authenticated, shared by workers */
	const char          *order_id;
	const struct target *target;
	const struct image  *image;
	const char *const   *probes;   /* URLs, nprobes of them */
	size_t               nprobes;
	unsigned             count;    /* devices to program in all; 0: one
	                                  per probe */
	unsigned             probe_timeout_ms; /* per probe exchange */
	unsigned             retry_max_s;      /* give up on the authority
	                                          after this long; 0 = 300 */
	unsigned             next_device_s;    /* wait this long for the
	                                          next device on a probe;
	                                          0 = 60 */
	/* The order binds this firmware digest (32 bytes; NULL: none):
	 * sent in every Sign, which the authority refuses for another. */
	const uint8_t       *firmware_sha256;
	bool                 firmware_checked; /* image's digest checked
	                                          against the order's */
	bool                 secure;   /* the OEM's held image: every copy
	                                  of it in locked memory (secmem.h) */
	bool                 require_lock; /* the order requires the lock */
	bool                 json;     /* events as JSON lines */
	FILE                *events;   /* stdout */
	bool                 progress; /* a progress line on stderr (TTY) */
	volatile sig_atomic_t *stop;   /* set by a signal handler: finish
	                                  the device in hand, then stop */
};

struct job_result {
	unsigned programmed; /* programmed, read back, booted (if checked) */
	unsigned locked;     /* of those, locked and the lock verified */
	unsigned unlocked;   /* of those, left unlocked (the profile or the
	                        probe cannot lock) */
	unsigned failed;     /* a device that failed (reported) */
	unsigned refused;    /* a UID the authority refused (clone, ...) */
	bool     quota_exhausted;
	bool     authority_lost; /* gave up waiting for the authority */
	int      halt_status;    /* a refusal about the order or station
	                            (wire status) stopped the job; 0: none */
	char     halt_message[256]; /* the authority's words for it */
	bool     stopped;        /* a stop was requested */
	unsigned short_of_count; /* devices of --count never started (no
	                            device came, or the job stopped) */
	unsigned unreported;     /* programmed or failed, but the authority
	                            never heard of it */
	uint64_t remaining;      /* quota left, as last heard */
};

/*
 * Run the job.  Returns CS_OK when it ran to its end (see *res for what
 * happened), or an error that stopped it at once (CS_EINVAL: bad
 * options).
 */
int job_run(const struct job_opts *o, struct job_result *res);

#endif /* JOB_H */
