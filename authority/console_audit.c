/*
 * console_audit.c - the console's view of the audit log: GET /api/audit
 * (filtered pages, with the chain's state) and GET /api/audit/export (the
 * file countersign-admin audit export writes, as JSON lines or CSV).
 *
 * Both read a log that only grows and may be long, so both are bounded:
 * a page looks at AUDIT_SCAN_MAX events at most and says where to go on;
 * the chain check is reused for AUDIT_VERIFY_S seconds so that a page
 * that polls cannot keep a read transaction open; an export is built in
 * memory, so only one runs at a time, of EXPORT_MAX events at most.
 */
#include "console_impl.h"

#include "admin_format.h"
#include "cs_err.h"
#include "cs_hex.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_MAX      200000u /* audit events in one export response */
#define AUDIT_VERIFY_S  10u     /* an audit chain check is reused this long */
#define AUDIT_LIMIT_MAX 500u
#define AUDIT_LIMIT_DEF 100u
#define AUDIT_SCAN_MAX  20000u /* events one /api/audit call looks at */

static const char *
event_field(const StoredAuditEvent *e, const char *key)
{
	for (size_t i = 0; i < e->n_fields; i++) {
		if (strcmp(e->fields[i]->key, key) == 0) {
			return e->fields[i]->value;
		}
	}
	return NULL;
}

static void
event_json(struct cs_json *j, const StoredAuditEvent *e)
{
	cs_json_open(j, NULL);
	cs_json_u64(j, "seq", e->seq);
	cs_json_u64(j, "time_unix_ms", e->time_unix_ms);
	cs_json_str(j, "actor", e->actor);
	cs_json_str(j, "type", e->type);
	cs_json_open(j, "fields");
	for (size_t i = 0; i < e->n_fields; i++) {
		cs_json_str(j, e->fields[i]->key, e->fields[i]->value);
	}
	cs_json_close(j);
	cs_json_bytes(j, "hash", e->hash.data, e->hash.len);
	cs_json_close(j);
}

/*
 * The chain's state for the audit page.  Walking the chain reads every
 * event, so the answer is reused for AUDIT_VERIFY_S seconds: a page that
 * polls cannot keep a read transaction (and the store's old pages) busy.
 */
static int
audit_verified(console *c, uint64_t *good, uint64_t *first)
{
	uint64_t now = console_now_s();
	int      rv;

	pthread_mutex_lock(&c->mtx);
	if (c->verify_at_s != 0 && now < c->verify_at_s + AUDIT_VERIFY_S) {
		*good = c->verify_good;
		*first = c->verify_first;
		rv = c->verify_rv;
		pthread_mutex_unlock(&c->mtx);
		return rv;
	}
	pthread_mutex_unlock(&c->mtx);
	rv = store_audit_verify(c->st, good, first);
	if (rv == CS_OK || rv == CS_ECRYPTO) {
		pthread_mutex_lock(&c->mtx);
		c->verify_at_s  = now;
		c->verify_good  = *good;
		c->verify_first = *first;
		c->verify_rv    = rv;
		pthread_mutex_unlock(&c->mtx);
	}
	return rv;
}

void
console_api_audit(console *c, const struct console_req *q, struct resp *r)
{
	const char       *query = q->query;
	char              type[QUERY_VALUE_MAX] = "", actor[QUERY_VALUE_MAX] = "";
	char              order[QUERY_VALUE_MAX] = "";
	bool              has_type, has_actor, has_order, bad = false;
	uint64_t          since_ms, until_ms, after, limit, good = 0, first = 0;
	uint64_t          next, scanned = 0;
	StoredAuditEvent **keep = NULL;
	size_t            nkeep = 0;
	struct jbody      b;
	int               vrv;

	has_type  = console_query_get(query, "type", type, sizeof(type), &bad);
	has_actor = console_query_get(query, "actor", actor, sizeof(actor),
	    &bad);
	has_order = console_query_get(query, "order", order, sizeof(order),
	    &bad);
	if (bad) {
		resp_error(r, 400, "a filter value is malformed or longer than "
		    "%u bytes", QUERY_VALUE_MAX - 1);
		return;
	}
	if (!console_query_u64(query, "since_ms", UINT64_MAX, 0, &since_ms,
	        r) ||
	    !console_query_u64(query, "until_ms", UINT64_MAX, UINT64_MAX,
	        &until_ms, r) ||
	    !console_query_u64(query, "after_seq", UINT64_MAX, 0, &after, r) ||
	    !console_query_u64(query, "limit", UINT64_MAX, AUDIT_LIMIT_DEF,
	        &limit, r)) {
		return;
	}
	if (limit == 0 || limit > AUDIT_LIMIT_MAX) {
		resp_error(r, 400, "limit must be 1..%u", AUDIT_LIMIT_MAX);
		return;
	}
	if ((keep = calloc(limit, sizeof(*keep))) == NULL) {
		resp_error(r, 500, "out of memory");
		return;
	}
	/* Page through the log after `after`, keeping what matches, until
	 * limit events matched, the log ended or AUDIT_SCAN_MAX were looked
	 * at; next_after_seq lets the caller go on from there. */
	next = after;
	while (nkeep < limit && scanned < AUDIT_SCAN_MAX) {
		StoredAuditEvent **ev = NULL;
		size_t             n  = 0, i;
		int                rv = store_audit_list(c->st, next, 0, &ev, &n);

		if (rv != CS_OK) {
			resp_error(r, 500, "cannot read the audit log (%s)",
			    cs_strerror(rv));
			goto out;
		}
		if (n == 0) {
			store_audit_list_free(ev, n);
			break;
		}
		for (i = 0; i < n && nkeep < limit; i++) {
			StoredAuditEvent *e = ev[i];
			const char       *o = event_field(e, "order");

			next = e->seq;
			scanned++;
			if ((has_type && strcmp(e->type, type) != 0) ||
			    (has_actor && strcmp(e->actor, actor) != 0) ||
			    (has_order && (o == NULL || strcmp(o, order) != 0)) ||
			    e->time_unix_ms < since_ms ||
			    e->time_unix_ms > until_ms) {
				continue;
			}
			keep[nkeep++] = e;
			ev[i]         = NULL;
		}
		for (i = 0; i < n; i++) {
			if (ev[i] != NULL) {
				countersign__v1__stored_audit_event__free_unpacked(
				    ev[i], NULL);
			}
		}
		free(ev);
	}
	vrv = audit_verified(c, &good, &first);
	if (vrv != CS_OK && vrv != CS_ECRYPTO) {
		resp_error(r, 500, "cannot verify the audit log (%s)",
		    cs_strerror(vrv));
		goto out;
	}
	if (!jbody_begin(&b, r)) {
		goto out;
	}
	cs_json_open(&b.j, NULL);
	cs_json_array(&b.j, "events");
	for (size_t i = 0; i < nkeep; i++) {
		event_json(&b.j, keep[i]);
	}
	cs_json_end(&b.j);
	cs_json_u64(&b.j, "next_after_seq", next);
	cs_json_u64(&b.j, "verified_up_to", good);
	cs_json_bool(&b.j, "intact", vrv == CS_OK);
	cs_json_close(&b.j);
	jbody_end(&b, r, 200);
out:
	store_audit_list_free(keep, nkeep);
}

/* One event as countersign-admin audit export writes it. */
static void
export_line(FILE *fp, const StoredAuditEvent *e, bool csv)
{
	char t[ADMIN_TIME_LEN];

	admin_time_iso(e->time_unix_ms, t);
	if (!csv) {
		struct cs_json j;

		cs_json_init(&j, fp);
		cs_json_open(&j, NULL);
		cs_json_u64(&j, "seq", e->seq);
		cs_json_u64(&j, "time_unix_ms", e->time_unix_ms);
		cs_json_str(&j, "time", t);
		cs_json_str(&j, "actor", e->actor);
		cs_json_str(&j, "type", e->type);
		cs_json_open(&j, "fields");
		for (size_t i = 0; i < e->n_fields; i++) {
			cs_json_str(&j, e->fields[i]->key,
			    e->fields[i]->value);
		}
		cs_json_close(&j);
		cs_json_bytes(&j, "prev_hash", e->prev_hash.data,
		    e->prev_hash.len);
		cs_json_bytes(&j, "hash", e->hash.data, e->hash.len);
		cs_json_close(&j);
		fputc('\n', fp);
		return;
	}
	{
		char   *kv = NULL, hx[2 * STORE_HASH_LEN + 1];
		size_t  kvl = 0;
		FILE   *m   = open_memstream(&kv, &kvl);

		if (m != NULL) {
			for (size_t i = 0; i < e->n_fields; i++) {
				admin_csv_kv(m, e->fields[i]->key, e->fields[i]->value,
				    i == 0);
			}
			fclose(m);
		}
		fprintf(fp, "%" PRIu64 ",%s,", e->seq, t);
		admin_csv_field(fp, e->actor, strlen(e->actor));
		fputc(',', fp);
		admin_csv_field(fp, e->type, strlen(e->type));
		fputc(',', fp);
		admin_csv_field(fp, kv != NULL ? kv : "", kv != NULL ? kvl : 0);
		cs_hex_encode(e->prev_hash.data, e->prev_hash.len, hx,
		    sizeof(hx));
		fprintf(fp, ",%s,", hx);
		cs_hex_encode(e->hash.data, e->hash.len, hx, sizeof(hx));
		fprintf(fp, "%s\r\n", hx);
		free(kv);
	}
}

static void
export_done(console *c)
{
	pthread_mutex_lock(&c->mtx);
	c->exporting = false;
	pthread_mutex_unlock(&c->mtx);
}

void
console_api_audit_export(console *c, const struct console_req *q,
    struct resp *r)
{
	const char *query = q->query;
	char        fmt[16], num[32];
	bool        bad = false, csv, busy;
	uint64_t    since = 0, count = 0;
	FILE       *fp;

	if (!console_query_get(query, "format", fmt, sizeof(fmt), &bad) ||
	    (strcmp(fmt, "jsonl") != 0 && strcmp(fmt, "csv") != 0)) {
		resp_error(r, 400, "give format=jsonl or format=csv");
		return;
	}
	if (console_query_get(query, "after_seq", num, sizeof(num), &bad)) {
		char *end;

		errno = 0;
		since = strtoull(num, &end, 10);
		if (errno != 0 || end == num || *end != '\0' || num[0] == '-') {
			bad = true;
		}
	}
	if (bad) {
		resp_error(r, 400, "after_seq must be a sequence number");
		return;
	}
	csv = strcmp(fmt, "csv") == 0;
	/* The export is built in memory: one at a time, and at most
	 * EXPORT_MAX events per request (continue with after_seq). */
	pthread_mutex_lock(&c->mtx);
	busy = c->exporting;
	c->exporting = true;
	pthread_mutex_unlock(&c->mtx);
	if (busy) {
		resp_error(r, 503, "another audit export is running; try again "
		    "in a moment");
		return;
	}
	free(r->body);
	r->body = NULL;
	if ((fp = open_memstream(&r->body, &r->len)) == NULL) {
		export_done(c);
		resp_error(r, 500, "out of memory");
		return;
	}
	if (csv) {
		fputs("seq,time,actor,type,fields,prev_hash,hash\r\n", fp);
	}
	for (;;) {
		StoredAuditEvent **ev = NULL;
		size_t             n  = 0;
		int                rv = store_audit_list(c->st, since, 0, &ev, &n);

		if (rv != CS_OK) {
			fclose(fp);
			export_done(c);
			resp_error(r, 500, "cannot read the audit log (%s)",
			    cs_strerror(rv));
			return;
		}
		for (size_t i = 0; i < n && count < EXPORT_MAX; i++, count++) {
			export_line(fp, ev[i], csv);
			since = ev[i]->seq;
		}
		store_audit_list_free(ev, n);
		if (n == 0 || count >= EXPORT_MAX) {
			break;
		}
	}
	export_done(c);
	if (fclose(fp) != 0) {
		free(r->body);
		r->body = NULL;
		resp_error(r, 500, "out of memory");
		return;
	}
	r->status      = 200;
	r->type        = csv ? "text/csv; charset=utf-8"
	                     : "application/x-ndjson; charset=utf-8";
	r->disposition = csv ? "attachment; filename=\"audit.csv\""
	                     : "attachment; filename=\"audit.jsonl\"";
}
