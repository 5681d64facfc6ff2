/*
 * job.c - the programming job (job.h).
 *
 * Threads: one worker per probe, plus the caller, which waits.  Workers
 * share the authority session (its calls are thread-safe) and the job
 * state below, under one mutex.  A worker holds its device for the whole
 * sequence, so two workers never touch one device.
 */
#include "job.h"

#include "countersign/record.h"
#include "countersign/v1/authority.pb-c.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_json.h"
#include "cs_log.h"
#include "probe.h"
#include "secmem.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD "job"

struct job {
	const struct job_opts *o;
	pthread_mutex_t        mtx;
	unsigned               claimed; /* devices started */
	struct job_result      res;
	bool                   halt;    /* quota out, authority lost */
	uint64_t               start_ms;
};

struct worker {
	struct job *job;
	const char *url;
	unsigned    index;
	uint8_t     last_uid[32];
	size_t      last_uid_len;
};

/* What became of one device. */
enum outcome {
	OUT_PROGRAMMED,
	OUT_FAILED,     /* programming went wrong: reported */
	OUT_REFUSED,    /* the authority refused this UID */
	OUT_QUOTA,      /* no quota left: stop everything */
	OUT_LOST,       /* the authority stayed away: stop everything */
	OUT_NO_DEVICE,  /* nothing (new) on the probe */
	OUT_SIGNED,     /* get_record: the record is in hand */
	OUT_STOPPED,    /* asked to stop before the device was touched */
	OUT_HALT,       /* a refusal about the order or the station, not
	                   the device: stop everything */
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000u,
	    .tv_nsec = (long)(ms % 1000u) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static bool
stopping(struct job *j)
{
	bool s;

	pthread_mutex_lock(&j->mtx);
	s = j->halt || (j->o->stop != NULL && *j->o->stop);
	pthread_mutex_unlock(&j->mtx);
	return s;
}

/* Locked: count what became of a device, before its last event. */
static void
tally(struct job *j, enum outcome oc)
{
	switch (oc) {
	case OUT_PROGRAMMED:
		j->res.programmed++;
		break;
	case OUT_FAILED:
		j->res.failed++;
		break;
	case OUT_REFUSED:
		j->res.refused++;
		break;
	case OUT_QUOTA:
		j->res.quota_exhausted = true;
		j->res.remaining       = 0;
		j->halt                = true;
		j->claimed--; /* not made: the count is not used up */
		break;
	case OUT_LOST:
		j->res.authority_lost = true;
		j->halt               = true;
		j->claimed--;
		break;
	case OUT_HALT:
		j->res.refused++;
		j->halt = true;
		break;
	case OUT_NO_DEVICE:
	case OUT_SIGNED:
	case OUT_STOPPED:
		j->claimed--;
		break;
	}
}

static void
count_outcome(struct job *j, enum outcome oc)
{
	pthread_mutex_lock(&j->mtx);
	tally(j, oc);
	pthread_mutex_unlock(&j->mtx);
}

/* A device programmed: counted with its lock. */
static void
count_programmed(struct job *j, bool locked)
{
	pthread_mutex_lock(&j->mtx);
	tally(j, OUT_PROGRAMMED);
	if (locked) {
		j->res.locked++;
	} else {
		j->res.unlocked++;
	}
	pthread_mutex_unlock(&j->mtx);
}

/* Longest detail of a Report: the authority's limit
 * (AUTHORITY_MAX_DETAIL). */
#define REPORT_DETAIL_MAX 255u

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/*
 * s reduced to printable ASCII into out (outlen >= 1): messages come from
 * the authority and the GDB server, and anything else becomes '?', so
 * that no peer can write escape sequences to the operator's terminal (or,
 * through an MES, to someone else's).
 */
static const char *
printable(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0' && n + 1 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
	return out;
}

/* Locked: the progress line (stderr, a terminal). */
static void
progress(struct job *j)
{
	double min = (double)(mono_ms() - j->start_ms) / 60000.0;

	if (!j->o->progress) {
		return;
	}
	fprintf(stderr, "\r\033[K  done %u", j->res.programmed);
	if (j->res.unlocked > 0) {
		fprintf(stderr, " (%u not locked)", j->res.unlocked);
	} else if (j->res.locked > 0) {
		fprintf(stderr, " (%u locked)", j->res.locked);
	}
	fprintf(stderr, "  failed %u  refused %u  remaining %" PRIu64
	    "  %.1f devices/min", j->res.failed, j->res.refused,
	    j->res.remaining, min > 0 ? (double)j->res.programmed / min : 0.0);
	fflush(stderr);
}

/* What an event says about the firmware and the lock (event_ex). */
#define EV_FIRMWARE 1u /* "firmware_checked" */
#define EV_LOCK     2u /* "locked", true with EV_LOCKED */
#define EV_LOCKED   4u

/*
 * One event about a device on a probe.  uid may be NULL (no device yet);
 * serial 0: none.  flags: EV_* fields to add.
 */
static void
event_ex(struct worker *w, const char *what, const uint8_t *uid,
    size_t uid_len, uint64_t serial, const char *message, unsigned flags)
{
	struct job *j = w->job;
	char        hex[65] = "", url[512], msg[2048];
	FILE       *fp      = j->o->events;

	if (uid != NULL) {
		cs_hex_encode(uid, uid_len, hex, sizeof(hex));
	}
	pthread_mutex_lock(&j->mtx);
	if (j->o->progress) {
		fputs("\r\033[K", stderr);
	}
	printable(w->url, url, sizeof(url));
	printable(message, msg, sizeof(msg));
	if (j->o->json) {
		struct cs_json js;

		cs_json_init(&js, fp);
		cs_json_open(&js, NULL);
		cs_json_str(&js, "event", what);
		cs_json_str(&js, "probe", url);
		if (uid != NULL) {
			cs_json_str(&js, "uid", hex);
		}
		if (serial != 0) {
			cs_json_u64(&js, "serial", serial);
		}
		cs_json_u64(&js, "remaining", j->res.remaining);
		cs_json_u64(&js, "done", j->res.programmed);
		cs_json_u64(&js, "failed", j->res.failed);
		if ((flags & EV_FIRMWARE) != 0) {
			cs_json_bool(&js, "firmware_checked",
			    j->o->firmware_checked);
		}
		if ((flags & EV_LOCK) != 0) {
			cs_json_bool(&js, "locked", (flags & EV_LOCKED) != 0);
		}
		if (msg[0] != '\0') {
			cs_json_str(&js, "message", msg);
		}
		cs_json_close(&js);
		fputc('\n', fp);
	} else {
		fprintf(fp, "%-12s probe=%s%s%s", what, url,
		    uid != NULL ? " uid=" : "", hex);
		if (serial != 0) {
			fprintf(fp, " serial=%" PRIu64, serial);
		}
		if (msg[0] != '\0') {
			fprintf(fp, ": %s", msg);
		}
		fputc('\n', fp);
	}
	fflush(fp);
	progress(j);
	pthread_mutex_unlock(&j->mtx);
}

static void
event(struct worker *w, const char *what, const uint8_t *uid,
    size_t uid_len, uint64_t serial, const char *message)
{
	event_ex(w, what, uid, uid_len, serial, message, 0);
}

/* ------------------------------------------------------------------ */
/* The authority, patiently                                            */
/* ------------------------------------------------------------------ */

/* Who hears of a wait for the authority: the worker's events. */
struct wait_note {
	struct worker *w;
	const uint8_t *uid;
	size_t         uid_len;
};

static void
wait_note(void *ctx, const char *what, const char *message)
{
	struct wait_note *n = ctx;

	event(n->w, what, n->uid, n->uid_len, 0, message);
}

/*
 * Call method until it answers (or a refusal comes back), waiting with
 * back-off while the authority is unreachable, at most retry_max_s.
 */
static int
call_patiently(struct worker *w, const char *method,
    const ProtobufCMessage *in, ProtobufCMessage **out,
    struct cs_rpc_result *res, const uint8_t *uid, size_t uid_len,
    bool stoppable)
{
	const struct job_opts *o = w->job->o;
	struct wait_note       n = {w, uid, uid_len};

	return station_session_call_patiently(o->session, method, in, out,
	    res, o->retry_max_s, stoppable ? o->stop : NULL, wait_note, &n);
}

/* ------------------------------------------------------------------ */
/* Flash contents                                                      */
/* ------------------------------------------------------------------ */

/*
 * The flash a device ends up with, as runs of whole pages: image and
 * record laid into 0xFF-filled page runs, so that erasing a page never
 * wipes bytes another segment put there.
 */
struct run {
	uint32_t addr;
	uint32_t len;
	uint8_t *data;
};

/* Read-back compares this much at a time. */
#define READBACK_CHUNK (16u * 1024u)

/*
 * The runs' bytes and a read-back buffer share one block from secmem:
 * they are the OEM's firmware, so they are wiped when freed, never in a
 * core dump, and for a held image locked in memory.
 */
struct layout {
	struct run run[IMAGE_MAX_SEGMENTS + 1];
	size_t     n;
	uint8_t   *block;
	size_t     block_len;
	uint8_t   *back; /* READBACK_CHUNK bytes in block */
};

static void
layout_free(struct layout *l)
{
	secmem_free(l->block, l->block_len);
	l->block = NULL;
	l->n     = 0;
}

struct piece {
	uint32_t       addr;
	uint32_t       len;
	const uint8_t *data;
};

static int
piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * Image segments and the record, each widened to whole pages, grouped
 * into runs of pages that touch; every run filled with 0xFF and then the
 * pieces copied in (they never overlap: image_check keeps the image out
 * of the record area, image_load refuses overlapping segments).
 */
static int
layout_make(struct layout *l, const struct target *t, const struct image *img,
    const uint8_t *rec, size_t rec_len, bool secure, char *err,
    size_t errlen)
{
	struct piece pc[IMAGE_MAX_SEGMENTS + 1];
	uint64_t     mask = ~(uint64_t)(t->page_size - 1);
	size_t       n = 0, i, r, off;
	int          rv;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < img->nseg && n < IMAGE_MAX_SEGMENTS; i++) {
		pc[n].addr   = img->seg[i].addr;
		pc[n].len    = img->seg[i].len;
		pc[n++].data = img->seg[i].data;
	}
	pc[n].addr   = t->record_addr;
	pc[n].len    = (uint32_t)rec_len;
	pc[n++].data = rec;
	qsort(pc, n, sizeof(pc[0]), piece_cmp);

	for (i = 0; i < n; i++) {
		uint64_t lo = pc[i].addr & mask;
		uint64_t hi = ((uint64_t)pc[i].addr + pc[i].len +
		    t->page_size - 1) & mask;

		if (l->n > 0 && lo <= (uint64_t)l->run[l->n - 1].addr +
		    l->run[l->n - 1].len) {
			struct run *last = &l->run[l->n - 1];

			if (hi > (uint64_t)last->addr + last->len) {
				last->len = (uint32_t)(hi - last->addr);
			}
			continue;
		}
		if (l->n == sizeof(l->run) / sizeof(l->run[0])) {
			snprintf(err, errlen, "too many pieces of flash");
			return CS_ETOOBIG;
		}
		l->run[l->n].addr = (uint32_t)lo;
		l->run[l->n].len  = (uint32_t)(hi - lo);
		l->n++;
	}
	l->block_len = READBACK_CHUNK;
	for (r = 0; r < l->n; r++) {
		l->block_len += l->run[r].len;
	}
	if ((rv = secmem_alloc((void **)&l->block, l->block_len, secure, NULL,
	         err, errlen)) != CS_OK) {
		return rv;
	}
	l->back = l->block;
	for (r = 0, off = READBACK_CHUNK; r < l->n; r++) {
		l->run[r].data = l->block + off;
		off += l->run[r].len;
		memset(l->run[r].data, 0xff, l->run[r].len);
	}
	for (i = 0, r = 0; i < n; i++) {
		while (pc[i].addr >= (uint64_t)l->run[r].addr + l->run[r].len) {
			r++;
		}
		memcpy(l->run[r].data + (pc[i].addr - l->run[r].addr),
		    pc[i].data, pc[i].len);
	}
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* One device                                                          */
/* ------------------------------------------------------------------ */

/* Tell the authority how it went; never fails the job. */
static void
report(struct worker *w, const uint8_t *uid, size_t uid_len,
    Countersign__V1__Outcome outcome, bool locked, const char *detail)
{
	Countersign__V1__ReportRequest  in =
	    COUNTERSIGN__V1__REPORT_REQUEST__INIT;
	Countersign__V1__ReportResponse *out = NULL;
	struct cs_rpc_result             res;
	char                             text[REPORT_DETAIL_MAX + 1];
	int                              rv;

	in.order_id = (char *)w->job->o->order_id;
	in.uid.data = (uint8_t *)uid;
	in.uid.len  = uid_len;
	in.outcome  = outcome;
	in.locked   = locked;
	in.firmware_checked = w->job->o->firmware_checked;
	/* The reason often quotes a GDB server or probe: the authority
	 * takes printable ASCII up to its limit, so shorten it here. */
	in.detail   = (char *)printable(detail, text, sizeof(text));
	/* Not cut short by a stop request: the authority must hear how a
	 * device it signed for ended. */
	rv = call_patiently(w, "Report", &in.base, (ProtobufCMessage **)&out,
	    &res, uid, uid_len, false);
	if (rv != CS_OK) {
		pthread_mutex_lock(&w->job->mtx);
		w->job->res.unreported++;
		pthread_mutex_unlock(&w->job->mtx);
		event(w, "report-failed", uid, uid_len, 0, res.message);
		return;
	}
	if (out->order != NULL) {
		pthread_mutex_lock(&w->job->mtx);
		w->job->res.remaining = out->order->remaining;
		pthread_mutex_unlock(&w->job->mtx);
	}
	protobuf_c_message_free_unpacked(&out->base, NULL);
}

/* Is the device on the probe still the one whose record we hold?  The
 * operator may swap boards while the station waits for the authority. */
static int
same_device(probe *p, const struct target *t, const uint8_t *uid,
    size_t uid_len, char *why, size_t whylen)
{
	uint8_t now[32];

	if (probe_read(p, t->uid_addr, now, t->uid_len) != CS_OK) {
		snprintf(why, whylen, "cannot read the UID again: %s",
		    probe_error(p));
		return CS_EIO;
	}
	if (t->uid_len != uid_len || memcmp(now, uid, uid_len) != 0) {
		snprintf(why, whylen, "the device on the probe changed (its UID "
		    "is not the one the record was made for); nothing more "
		    "written");
		return CS_EIO;
	}
	return CS_OK;
}

/* Read every run back, a chunk at a time, and compare. */
static int
read_back(probe *p, struct layout *l, char *why, size_t whylen)
{
	size_t i;
	int    rv;

	for (i = 0; i < l->n; i++) {
		const struct run *r = &l->run[i];

		for (uint32_t off = 0; off < r->len; off += READBACK_CHUNK) {
			uint32_t n = r->len - off < READBACK_CHUNK
			    ? r->len - off : READBACK_CHUNK;

			if ((rv = probe_read(p, r->addr + off, l->back, n)) !=
			    CS_OK) {
				snprintf(why, whylen, "reading back 0x%08" PRIx32
				    ": %s", r->addr + off, probe_error(p));
				return rv;
			}
			if (memcmp(l->back, r->data + off, n) != 0) {
				snprintf(why, whylen, "read-back differs in "
				    "0x%08" PRIx32 "..0x%08" PRIx32, r->addr,
				    r->addr + r->len - 1);
				return CS_EIO;
			}
		}
	}
	return CS_OK;
}

/*
 * Lock the part as its profile says, after it booted.  *locked: the lock
 * took and was verified.  A probe that cannot lock a lockable part
 * leaves it unlocked (why says so) unless the order requires the lock.
 */
static int
lock_device(struct worker *w, probe *p, bool *locked, char *why,
    size_t whylen)
{
	const struct job_opts *o = w->job->o;
	int                    rv;

	*locked = false;
	if (!o->target->can_lock) {
		if (o->require_lock) { /* refused at the start already */
			snprintf(why, whylen, "lock did not take: the order "
			    "requires the lock and target %s cannot be locked",
			    o->target->name);
			return CS_EUNIMPL;
		}
		return CS_OK;
	}
	rv = probe_protect(p, o->target);
	if (rv == CS_OK) {
		*locked = true;
		return CS_OK;
	}
	if (rv == CS_EUNIMPL && !o->require_lock) {
		snprintf(why, whylen, "not locked: %s", probe_error(p));
		return CS_OK;
	}
	/* The probe layer's words often start with the verdict already. */
	snprintf(why, whylen, "%s%s", strncmp(probe_error(p), "lock did not "
	    "take", 17) == 0 ? "" : "lock did not take: ", probe_error(p));
	return rv;
}

/*
 * Program, read back, boot, lock.  Returns CS_OK (*locked says whether
 * the lock took; why may say why not) or fills why and *how.
 */
static int
program(struct worker *w, probe *p, const uint8_t *uid, size_t uid_len,
    const uint8_t *rec, size_t rec_len, Countersign__V1__Outcome *how,
    bool *locked, char *why, size_t whylen)
{
	const struct target *t = w->job->o->target;
	struct layout        l;
	struct probe_stop    stop;
	char                 err[200];
	size_t               i;
	int                  rv;

	*how    = COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED;
	*locked = false;
	why[0]  = '\0';
	if ((rv = layout_make(&l, t, w->job->o->image, rec, rec_len,
	         w->job->o->secure, err, sizeof(err))) != CS_OK) {
		snprintf(why, whylen, "cannot lay out the flash: %s", err);
		goto out;
	}
	if ((rv = same_device(p, t, uid, uid_len, why, whylen)) != CS_OK) {
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		rv = probe_flash_write(p, l.run[i].addr, l.run[i].len,
		    l.run[i].addr, l.run[i].data, l.run[i].len);
		if (rv != CS_OK) {
			snprintf(why, whylen, "writing flash at 0x%08" PRIx32
			    ": %s", l.run[i].addr, probe_error(p));
			goto out;
		}
	}
	if ((rv = probe_flash_done(p)) != CS_OK) {
		snprintf(why, whylen, "finishing the flash write: %s",
		    probe_error(p));
		goto out;
	}
	/* Read everything back: what the device will run is what we meant. */
	*how = COUNTERSIGN__V1__OUTCOME__OUTCOME_VERIFY_FAILED;
	if ((rv = read_back(p, &l, why, whylen)) != CS_OK ||
	    (rv = same_device(p, t, uid, uid_len, why, whylen)) != CS_OK) {
		goto out;
	}
	/* Start it; an emulated device tells whether it accepted its
	 * record (the example firmware exits 0 when authorized). */
	if ((rv = probe_reset_halt(p)) != CS_OK) {
		snprintf(why, whylen, "reset: %s", probe_error(p));
		goto out;
	}
	if (t->boot_check == TARGET_BOOT_SEMIHOSTING) {
		memset(&stop, 0, sizeof(stop));
		rv = probe_run(p, t->boot_timeout_ms, &stop);
		if (rv != CS_OK) {
			snprintf(why, whylen, "starting the device: %s",
			    probe_error(p));
			goto out;
		}
		if (!stop.exited || stop.exit_code != 0) {
			rv = CS_EIO;
			if (stop.exited) {
				snprintf(why, whylen, "the device refused to run "
				    "(exit code %d): its record did not verify",
				    stop.exit_code);
			} else {
				snprintf(why, whylen, "the device gave no boot "
				    "verdict within %u ms", t->boot_timeout_ms);
			}
			goto out;
		}
	}
	/* Locked last: afterwards its flash cannot be read back. */
	*how = COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED;
	if ((rv = lock_device(w, p, locked, why, whylen)) != CS_OK) {
		goto out;
	}
	*how = COUNTERSIGN__V1__OUTCOME__OUTCOME_PROGRAMMED;
	rv   = CS_OK;
out:
	layout_free(&l);
	return rv;
}

/* Ask for the record of uid; classify a refusal. */
static enum outcome
get_record(struct worker *w, const uint8_t *uid, size_t uid_len,
    uint8_t *rec, size_t *rec_len, uint64_t *serial)
{
	Countersign__V1__SignRequest   in = COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *out = NULL;
	struct cs_rpc_result           res;
	struct job                    *j = w->job;
	int                            rv;

	in.order_id = (char *)j->o->order_id;
	in.uid.data = (uint8_t *)uid;
	in.uid.len  = uid_len;
	if (j->o->firmware_sha256 != NULL) {
		in.firmware_sha256.data = (uint8_t *)j->o->firmware_sha256;
		in.firmware_sha256.len  = 32;
	}
	rv = call_patiently(w, "Sign", &in.base, (ProtobufCMessage **)&out,
	    &res, uid, uid_len, true);
	if (rv == CS_ECANCELED) {
		count_outcome(j, OUT_STOPPED);
		return OUT_STOPPED;
	}
	if (rv == CS_EEXHAUSTED) {
		count_outcome(j, OUT_QUOTA);
		event(w, "quota-exhausted", uid, uid_len, 0, res.message);
		return OUT_QUOTA;
	}
	if (station_session_transient(rv, &res)) {
		count_outcome(j, OUT_LOST);
		event(w, "authority-lost", uid, uid_len, 0, res.message);
		return OUT_LOST;
	}
	/* About the order or this station, not the device: every other
	 * device would get the same answer. */
	if (res.status == CS_STATUS_NOT_FOUND ||
	    res.status == CS_STATUS_FAILED_PRECONDITION ||
	    res.status == CS_STATUS_PERMISSION_DENIED ||
	    res.status == CS_STATUS_UNAUTHENTICATED) {
		count_outcome(j, OUT_HALT);
		pthread_mutex_lock(&j->mtx);
		if (j->res.halt_status == 0) {
			j->res.halt_status = res.status;
			printable(res.message, j->res.halt_message,
			    sizeof(j->res.halt_message));
		}
		pthread_mutex_unlock(&j->mtx);
		event(w, "stopped", uid, uid_len, 0, res.message);
		return OUT_HALT;
	}
	if (rv != CS_OK) {
		count_outcome(j, OUT_REFUSED);
		event(w, "refused", uid, uid_len, 0, res.message);
		return OUT_REFUSED;
	}
	/* Never program what is not this UID's record. */
	if (out->record.len < CS_RECORD_MIN_LEN ||
	    out->record.len > CS_RECORD_MAX_LEN ||
	    out->record.data[CS_RECORD_OFF_UID_LEN] != uid_len ||
	    memcmp(out->record.data + CS_RECORD_OFF_UID, uid, uid_len) != 0 ||
	    out->record.len > j->o->target->record_size) {
		protobuf_c_message_free_unpacked(&out->base, NULL);
		/* It was counted against the order: say what became of it. */
		report(w, uid, uid_len, COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED,
		    false, "the authority's answer is not a record for this "
		    "UID");
		count_outcome(j, OUT_REFUSED);
		event(w, "refused", uid, uid_len, 0, "the authority's answer "
		    "is not a record for this UID (or does not fit the "
		    "target's record area); device left untouched");
		return OUT_REFUSED;
	}
	memcpy(rec, out->record.data, out->record.len);
	*rec_len = out->record.len;
	*serial  = out->serial;
	pthread_mutex_lock(&j->mtx);
	j->res.remaining = out->remaining;
	pthread_mutex_unlock(&j->mtx);
	protobuf_c_message_free_unpacked(&out->base, NULL);
	return OUT_SIGNED;
}

static enum outcome
one_device(struct worker *w, probe *p, const uint8_t *uid, size_t uid_len)
{
	const struct job_opts   *o = w->job->o;
	uint8_t                  rec[CS_RECORD_MAX_LEN];
	size_t                   rec_len = 0;
	uint64_t                 serial  = 0;
	Countersign__V1__Outcome how;
	char                     why[256], text[sizeof(why) + 32];
	bool                     locked = false;
	enum outcome             oc;

	event_ex(w, "device", uid, uid_len, 0, NULL, EV_FIRMWARE);
	if ((oc = get_record(w, uid, uid_len, rec, &rec_len, &serial)) !=
	    OUT_SIGNED) {
		return oc; /* counted by get_record */
	}
	event(w, "signed", uid, uid_len, serial, NULL);
	if (program(w, p, uid, uid_len, rec, rec_len, &how, &locked, why,
	        sizeof(why)) != CS_OK) {
		report(w, uid, uid_len, how, false, why);
		count_outcome(w->job, OUT_FAILED);
		event_ex(w, "failed", uid, uid_len, serial, why,
		    EV_FIRMWARE | EV_LOCK);
		return OUT_FAILED;
	}
	report(w, uid, uid_len, how, locked, why);
	count_programmed(w->job, locked);
	/* What the shift lead sees: was the image the order's, is the
	 * device locked (and if not, why not). */
	snprintf(text, sizeof(text), "%s, %s",
	    o->firmware_checked ? "digest ok" : "no digest bound",
	    locked ? "locked" : why[0] != '\0' ? why
	        : "not locked (the profile cannot lock)");
	event_ex(w, "programmed", uid, uid_len, serial, text,
	    EV_FIRMWARE | EV_LOCK | (locked ? EV_LOCKED : 0));
	return OUT_PROGRAMMED;
}

/* Every device the job may program has been taken. */
static bool
count_reached(struct job *j)
{
	bool r;

	pthread_mutex_lock(&j->mtx);
	r = j->claimed >= j->o->count;
	pthread_mutex_unlock(&j->mtx);
	return r;
}

/*
 * Wait for a device on the probe that this worker has not programmed yet
 * (the operator swaps devices between cycles); reads its UID.
 */
static probe *
next_device(struct worker *w, uint8_t *uid, size_t *uid_len)
{
	const struct job_opts *o   = w->job->o;
	const struct target   *t   = o->target;
	unsigned               wait_s = o->next_device_s ? o->next_device_s
	                                                 : 60;
	uint64_t               deadline = mono_ms() + (uint64_t)wait_s * 1000u;
	bool                   said     = false;
	char                   err[256];
	size_t                 i;
	bool                   blank;

	while (!stopping(w->job) && !count_reached(w->job)) {
		probe *p = NULL;
		int    rv;

		rv = probe_open(&p, w->url, o->probe_timeout_ms, err,
		    sizeof(err));
		if (rv == CS_OK && (rv = probe_set_target(p, t)) != CS_OK) {
			snprintf(err, sizeof(err), "the probe does not take the "
			    "target profile: %s", cs_strerror(rv));
		}
		if (rv == CS_OK) {
			rv = probe_read(p, t->uid_addr, uid, t->uid_len);
			if (rv != CS_OK) {
				snprintf(err, sizeof(err), "cannot read the UID: "
				    "%s", probe_error(p));
			}
		}
		if (rv == CS_OK) {
			*uid_len = t->uid_len;
			for (i = 0, blank = true; i < *uid_len; i++) {
				blank = blank && (uid[i] == 0xff || uid[i] == 0);
			}
			if (blank) {
				snprintf(err, sizeof(err), "the UID reads as "
				    "erased memory; check the probe's "
				    "connection and the target profile");
			} else if (*uid_len != w->last_uid_len ||
			    memcmp(uid, w->last_uid, *uid_len) != 0) {
				return p;
			} else {
				snprintf(err, sizeof(err), "waiting for the next "
				    "device");
			}
		}
		probe_close(p);
		if (!said) {
			event(w, "no-device", NULL, 0, 0, err);
			said = true;
		}
		if (mono_ms() >= deadline) {
			return NULL;
		}
		sleep_ms(500);
	}
	return NULL;
}

/*
 * Take one of the devices the job may still program.  Taken only once a
 * device is on the probe, so that a worker waiting for its next device
 * never holds a unit another worker with a device in hand could use.
 */
static bool
claim(struct job *j)
{
	bool ok;

	pthread_mutex_lock(&j->mtx);
	ok = !j->halt && !(j->o->stop != NULL && *j->o->stop) &&
	    j->claimed < j->o->count;
	if (ok) {
		j->claimed++;
	}
	pthread_mutex_unlock(&j->mtx);
	return ok;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job    *j = w->job;
	uint8_t        uid[32];
	size_t         uid_len;

	while (!stopping(j) && !count_reached(j)) {
		probe       *p = next_device(w, uid, &uid_len);
		enum outcome oc;

		if (p == NULL) {
			break;
		}
		if (!claim(j)) {
			/* Another worker took the last unit meanwhile. */
			probe_close(p);
			break;
		}
		/* one_device counts the outcome just before its final event,
		 * so that every event carries the counts it brings about. */
		oc = one_device(w, p, uid, uid_len);
		probe_close(p);
		/* A device that failed may be seated again and retried; one
		 * that was programmed or refused is not taken twice. */
		if (oc == OUT_PROGRAMMED || oc == OUT_REFUSED) {
			memcpy(w->last_uid, uid, uid_len);
			w->last_uid_len = uid_len;
		}
		pthread_mutex_lock(&j->mtx);
		progress(j);
		pthread_mutex_unlock(&j->mtx);
	}
	return NULL;
}

int
job_run(const struct job_opts *o, struct job_result *res)
{
	struct job     j;
	struct worker *w;
	pthread_t     *t;
	size_t         i, started = 0;
	struct job_opts oo;

	if (o == NULL || res == NULL || o->session == NULL ||
	    o->order_id == NULL || o->target == NULL || o->image == NULL ||
	    o->probes == NULL || o->nprobes == 0 ||
	    o->nprobes > JOB_MAX_PROBES || o->events == NULL) {
		return CS_EINVAL;
	}
	oo = *o;
	if (oo.count == 0) {
		oo.count = (unsigned)oo.nprobes;
	}
	memset(&j, 0, sizeof(j));
	j.o        = &oo;
	j.start_ms = mono_ms();
	pthread_mutex_init(&j.mtx, NULL);
	w = calloc(o->nprobes, sizeof(*w));
	t = calloc(o->nprobes, sizeof(*t));
	if (w == NULL || t == NULL) {
		free(w);
		free(t);
		pthread_mutex_destroy(&j.mtx);
		return CS_ENOMEM;
	}
	for (i = 0; i < o->nprobes; i++) {
		w[i].job   = &j;
		w[i].url   = o->probes[i];
		w[i].index = (unsigned)i;
		if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) {
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
	}
	if (o->progress) {
		fputc('\n', stderr);
	}
	j.res.short_of_count = j.claimed < oo.count ? oo.count - j.claimed
	                                            : 0;
	j.res.stopped = o->stop != NULL && *o->stop;
	*res = j.res;
	free(w);
	free(t);
	pthread_mutex_destroy(&j.mtx);
	return started == o->nprobes ? CS_OK : CS_ENOMEM;
}
