/*
 * order_fw.c - an order's firmware as the station sees it, and fetching
 * the image an order holds (order_fw.h).
 *
 * The held image arrives in the flat form (base, size bytes, gaps 0xFF)
 * and is kept in one locked block.  The measured form the station
 * programs and hashes is a view into that block rather than a copy
 * (image_from_flat and image_digest would make heap copies that are
 * neither locked nor wiped); order_fw_view cuts it exactly as
 * image_measured does, and image_test checks the two agree.
 */
#include "order_fw.h"

#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_log.h"
#include "secmem.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LOG_MOD "firmware"

/* Times a fetch may start over on a new connection without progress. */
#define FETCH_RESTARTS_MAX 3u

int
order_fw_from_status(struct order_fw *of,
    const Countersign__V1__OrderStatus *os, char *err, size_t errlen)
{
	memset(of, 0, sizeof(*of));
	if (os->firmware_sha256.len != 0 &&
	    os->firmware_sha256.len != ORDER_FW_DIGEST_LEN) {
		snprintf(err, errlen, "the authority's order has a firmware "
		    "digest of %zu bytes, not %u", os->firmware_sha256.len,
		    ORDER_FW_DIGEST_LEN);
		return CS_EPROTO;
	}
	if (os->target != NULL && strlen(os->target) > TARGET_NAME_MAX) {
		snprintf(err, errlen, "the authority's order names a target "
		    "longer than %u characters", TARGET_NAME_MAX);
		return CS_EPROTO;
	}
	of->binds_digest = os->firmware_sha256.len == ORDER_FW_DIGEST_LEN;
	if (of->binds_digest) {
		memcpy(of->digest, os->firmware_sha256.data,
		    ORDER_FW_DIGEST_LEN);
	}
	if (os->target != NULL) {
		memcpy(of->target, os->target, strlen(os->target) + 1);
	}
	of->held         = os->firmware_held;
	of->withdrawn    = os->firmware_withdrawn;
	of->size         = os->firmware_size;
	of->version      = os->firmware_version;
	of->require_lock = os->require_lock;
	if (of->held && (!of->binds_digest || of->size == 0 ||
	        of->size > IMAGE_MAX_BYTES)) {
		snprintf(err, errlen, "the authority says order %s holds an "
		    "image of %" PRIu64 " bytes %s", os->order_id, of->size,
		    of->binds_digest ? "(empty or over the station's limit)"
		                     : "but binds no digest");
		return CS_EPROTO;
	}
	return CS_OK;
}

const char *
order_fw_short(const uint8_t d[ORDER_FW_DIGEST_LEN], char out[20])
{
	cs_hex_encode(d, 8, out, 17);
	memcpy(out + 16, "...", 4);
	return out;
}

/* One piece of the measured form: [lo, hi) of the flat bytes. */
static void
view_add(struct image *out, uint64_t base, const uint8_t *flat, uint64_t lo,
    uint64_t hi)
{
	struct image_segment *s;

	if (lo >= hi) {
		return;
	}
	s       = &out->seg[out->nseg++];
	s->addr = (uint32_t)lo;
	s->len  = (uint32_t)(hi - lo);
	s->data = (uint8_t *)flat + (lo - base);
	out->bytes += s->len;
}

int
order_fw_view(struct image *out, const struct target *t, uint32_t base,
    const uint8_t *flat, size_t len, char *err, size_t errlen)
{
	uint64_t lo = base, hi = (uint64_t)base + len;
	uint64_t rbeg = t->record_addr, rend = rbeg + t->record_size;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > IMAGE_MAX_BYTES || hi > (1ull << 32)) {
		snprintf(err, errlen, "a flat image of %zu bytes at 0x%08" PRIX32
		    " is empty, too big or runs past 4 GiB", len, base);
		return CS_EINVAL;
	}
	/* As image_measured: the span, cut around the record area. */
	if (hi <= rbeg || lo >= rend) {
		view_add(out, base, flat, lo, hi);
	} else {
		view_add(out, base, flat, lo, rbeg < lo ? lo : rbeg);
		view_add(out, base, flat, rend > hi ? hi : rend, hi);
	}
	if (out->nseg == 0) {
		snprintf(err, errlen, "the image lies wholly in the record "
		    "area of %s", t->name);
		return CS_EINVAL;
	}
	if (image_check(out, t, err, errlen) != CS_OK) {
		memset(out, 0, sizeof(*out));
		return CS_EINVAL;
	}
	return CS_OK;
}

int
order_fw_digest(const struct image *m, uint8_t digest[ORDER_FW_DIGEST_LEN])
{
	wc_Sha256 sha;
	size_t    i;
	int       rv = CS_ECRYPTO;

	if (wc_InitSha256(&sha) != 0) {
		return CS_ECRYPTO;
	}
	for (i = 0; i < m->nseg; i++) {
		if (wc_Sha256Update(&sha, m->seg[i].data, m->seg[i].len) != 0) {
			break;
		}
	}
	if (i == m->nseg && wc_Sha256Final(&sha, digest) == 0) {
		rv = CS_OK;
	}
	wc_Sha256Free(&sha);
	return rv;
}

void
held_image_free(struct held_image *h)
{
	if (h == NULL) {
		return;
	}
	secmem_free(h->flat, h->flat_len);
	memset(h, 0, sizeof(*h));
}

/* The reply to a chunk request fits the fetch so far. */
static int
chunk_ok(const struct fetch_opts *o, const struct held_image *h,
    const Countersign__V1__GetFirmwareResponse *r, uint64_t offset,
    char *err, size_t errlen)
{
	const struct order_fw *of = o->of;
	char                   a[20], b[20];

	if (r->version == 0 || (h->version != 0 && r->version != h->version)) {
		snprintf(err, errlen, "the authority answered with image "
		    "version %u during a fetch of version %u", r->version,
		    h->version);
		return CS_EPROTO;
	}
	if (r->size != of->size || r->size != h->flat_len ||
	    (h->version != 0 && r->base_addr != h->base)) {
		snprintf(err, errlen, "the order's image changed while it was "
		    "fetched (%" PRIu64 " bytes, the order said %" PRIu64 "); "
		    "run again", r->size, of->size);
		return CS_EPROTO;
	}
	if (r->firmware_sha256.len != ORDER_FW_DIGEST_LEN ||
	    memcmp(r->firmware_sha256.data, of->digest, ORDER_FW_DIGEST_LEN) !=
	        0) {
		snprintf(err, errlen, "the image served is %s, but order %s "
		    "binds %s (replaced meanwhile?); run again",
		    r->firmware_sha256.len == ORDER_FW_DIGEST_LEN
		        ? order_fw_short(r->firmware_sha256.data, a)
		        : "no digest",
		    o->order_id, order_fw_short(of->digest, b));
		return CS_EPROTO;
	}
	if (r->target == NULL || strcmp(r->target, of->target) != 0) {
		snprintf(err, errlen, "the image served was checked against "
		    "target \"%.64s\", not the order's \"%s\"",
		    r->target != NULL ? r->target : "", of->target);
		return CS_EPROTO;
	}
	if (r->offset != offset || r->data.len == 0 ||
	    r->data.len > ORDER_FW_CHUNK_MAX ||
	    r->data.len > r->size - offset) {
		snprintf(err, errlen, "the authority sent %zu bytes at offset "
		    "%" PRIu64 " for a request at %" PRIu64 " of %" PRIu64,
		    r->data.len, r->offset, offset, r->size);
		return CS_EPROTO;
	}
	return CS_OK;
}

/* One chunk, asked patiently. */
static int
fetch_chunk(const struct fetch_opts *o, uint64_t offset, uint32_t version,
    Countersign__V1__GetFirmwareResponse **out, struct cs_rpc_result *res)
{
	Countersign__V1__GetFirmwareRequest in =
	    COUNTERSIGN__V1__GET_FIRMWARE_REQUEST__INIT;

	in.order_id = (char *)o->order_id;
	in.offset   = offset;
	in.version  = version;
	*out        = NULL;
	return station_session_call_patiently(o->session, "GetFirmware",
	    &in.base, (ProtobufCMessage **)out, res, o->retry_max_s, o->stop,
	    o->note, o->note_ctx);
}

/* The reply's chunk wiped from the unpacked message, then freed. */
static void
chunk_free(Countersign__V1__GetFirmwareResponse *r)
{
	if (r != NULL) {
		cs_wipe(r->data.data, r->data.len);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
}

/* The whole image in h->flat, chunk by chunk. */
static int
fetch_all(const struct fetch_opts *o, struct held_image *h,
    struct cs_rpc_result *res, bool *mismatch, char *err, size_t errlen)
{
	Countersign__V1__GetFirmwareResponse *r = NULL;
	uint64_t offset = 0, reached = 0;
	unsigned restarts = 0;
	int      rv;

	while (reached < h->flat_len) {
		if (o->stop != NULL && *o->stop) {
			snprintf(err, errlen, "stopped before the image was "
			    "fetched");
			return CS_ECANCELED;
		}
		rv = fetch_chunk(o, offset, h->version, &r, res);
		if (rv == CS_ECANCELED) {
			snprintf(err, errlen, "stopped before the image was "
			    "fetched");
			return rv;
		}
		if (rv != CS_OK) {
			/* A new connection (the authority restarted, the link
			 * dropped) must start the fetch at offset 0 again: ask
			 * for it with the version pinned, then skip ahead.  A
			 * replaced or withdrawn image fails at offset 0 too. */
			if (res->status == CS_STATUS_FAILED_PRECONDITION &&
			    offset > 0 && restarts < FETCH_RESTARTS_MAX) {
				cs_log_info(LOG_MOD, "fetch starts over on a new "
				    "connection order=%s reached=%" PRIu64
				    " reason=\"%s\"", o->order_id, reached,
				    res->message);
				restarts++;
				offset = 0;
				continue;
			}
			snprintf(err, errlen, "%s", res->message);
			return rv;
		}
		if ((rv = chunk_ok(o, h, r, offset, err, errlen)) != CS_OK) {
			chunk_free(r);
			*mismatch = true;
			return rv;
		}
		if (h->version == 0) {
			h->version = r->version;
			h->base    = r->base_addr;
		}
		memcpy(h->flat + offset, r->data.data, r->data.len);
		offset += r->data.len;
		chunk_free(r);
		r = NULL;
		if (offset > reached) {
			reached  = offset;
			restarts = 0;
			if (o->progress != NULL) {
				o->progress(o->progress_ctx, reached,
				    h->flat_len);
			}
		} else {
			offset = reached; /* started over: go on from there */
		}
	}
	return CS_OK;
}

int
held_image_fetch(const struct fetch_opts *o, struct held_image *h,
    struct cs_rpc_result *res, bool *mismatch, char *err, size_t errlen)
{
	const struct order_fw *of = o->of;
	uint8_t                got[ORDER_FW_DIGEST_LEN];
	char                   a[20], b[20];
	int                    rv;

	memset(h, 0, sizeof(*h));
	memset(res, 0, sizeof(*res));
	*mismatch = false;
	if (strcmp(of->target, o->target->name) != 0) {
		*mismatch = true;
		snprintf(err, errlen, "order %s was made for target \"%s\", not "
		    "\"%s\": its image is for another part", o->order_id,
		    of->target, o->target->name);
		return CS_EINVAL;
	}
	if ((rv = secmem_alloc((void **)&h->flat, (size_t)of->size, true, NULL,
	         err, errlen)) != CS_OK) {
		return rv;
	}
	h->flat_len = (size_t)of->size;
	if ((rv = fetch_all(o, h, res, mismatch, err, errlen)) != CS_OK) {
		goto fail;
	}
	if ((rv = order_fw_view(&h->img, o->target, h->base, h->flat,
	         h->flat_len, err, errlen)) != CS_OK) {
		*mismatch = true;
		goto fail;
	}
	if ((rv = order_fw_digest(&h->img, got)) != CS_OK) {
		snprintf(err, errlen, "cannot hash the image");
		goto fail;
	}
	if (memcmp(got, of->digest, ORDER_FW_DIGEST_LEN) != 0) {
		*mismatch = true;
		rv        = CS_ECRYPTO;
		snprintf(err, errlen, "the image fetched for order %s has the "
		    "digest %s, but the order binds %s: not programmed",
		    o->order_id, order_fw_short(got, a),
		    order_fw_short(of->digest, b));
		goto fail;
	}
	cs_log_info(LOG_MOD, "held image fetched order=%s version=%u "
	    "bytes=%zu base=0x%08" PRIx32, o->order_id, h->version,
	    h->flat_len, h->base);
	return CS_OK;
fail:
	held_image_free(h);
	return rv;
}
