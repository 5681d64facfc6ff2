/*
 * console_ops.c - the console's two routes for machines: /healthz for
 * supervisors and load balancers (no sign-in) and /metrics for
 * Prometheus (a viewer's token, or none with metrics_public).
 *
 * /healthz asks the HSM for a key, which a hung token can make wait for
 * ever: the check runs on a thread of its own with a deadline, one at a
 * time, and its answer is reused for HEALTH_MAX_AGE_MS, so that requests
 * nobody authenticated cost the HSM nothing.  /metrics is the text
 * exposition format, built from the store, the pipeline's counters, the
 * station port's and the console's connection counters.
 */
#include "console_impl.h"

#include "cs_err.h"
#include "cs_tls.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The HSM check runs on a thread of its own so that a hung token costs
 * the request HSM_CHECK_MS, not a worker for ever.  At most one runs at
 * a time; console_close waits for it.
 */
struct hsm_check {
	console *c;
	char     label[STORE_NAME_MAX + 1];
	bool     done, abandoned;
	int      rv;
};

/* c->mtx held. */
static bool
hsm_check_busy(console *c)
{
	return c->hsm_checks > 0;
}

static void *
hsm_check_main(void *arg)
{
	struct hsm_check *h = arg;
	console          *c = h->c;
	struct cs_hsm_key k;
	int               rv = cs_hsm_key(c->hsm, h->label, &k);

	pthread_mutex_lock(&c->mtx);
	h->rv   = rv;
	h->done = true;
	if (h->abandoned) {
		free(h);
	}
	c->hsm_checks--;
	pthread_cond_broadcast(&c->hcv);
	pthread_mutex_unlock(&c->mtx);
	return NULL;
}

#define HEALTH_MAX_AGE_MS 2000u

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void healthz_check(console *c, struct resp *r);

/*
 * /healthz needs no sign-in, so it must cost the HSM nothing per request:
 * one request at a time refreshes the answer, at most once per
 * HEALTH_MAX_AGE_MS (counted from the start of the previous check); every
 * other request is answered from the last check, waiting for the first
 * one only when there is none yet.
 */
void
console_healthz(console *c, const struct console_req *q, struct resp *r)
{
	struct timespec dl;
	uint64_t        now;

	(void)q;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += HSM_CHECK_MS / 1000u + 1;
	pthread_mutex_lock(&c->mtx);
	while (c->hz_refreshing && c->hz_body == NULL &&
	    pthread_cond_timedwait(&c->hcv, &c->mtx, &dl) == 0) {
	}
	now = mono_ms();
	if (c->hz_body != NULL &&
	    (c->hz_refreshing || now - c->hz_at_ms < HEALTH_MAX_AGE_MS)) {
		r->status = c->hz_status;
		r->body   = strdup(c->hz_body);
		pthread_mutex_unlock(&c->mtx);
		r->type = "text/plain; charset=utf-8";
		r->len  = r->body != NULL ? strlen(r->body) : 0;
		return;
	}
	if (c->hz_refreshing) {
		pthread_mutex_unlock(&c->mtx);
		r->status = 503;
		r->body   = strdup("unavailable: the first health check has "
		      "not finished\n");
		r->type   = "text/plain; charset=utf-8";
		r->len    = r->body != NULL ? strlen(r->body) : 0;
		return;
	}
	c->hz_refreshing = true;
	c->hz_at_ms      = now;
	pthread_mutex_unlock(&c->mtx);
	healthz_check(c, r);
	pthread_mutex_lock(&c->mtx);
	if (r->body != NULL && (r->status == 200 || r->status == 503)) {
		char *copy = strdup(r->body);
		if (copy != NULL) {
			free(c->hz_body);
			c->hz_body   = copy;
			c->hz_status = r->status;
		}
	}
	c->hz_refreshing = false;
	pthread_cond_broadcast(&c->hcv);
	pthread_mutex_unlock(&c->mtx);
}

static void
healthz_check(console *c, struct resp *r)
{
	StoredKey       **keys = NULL;
	struct hsm_check *h;
	store_txn        *txn;
	size_t            nk = 0;
	pthread_t         t;
	struct timespec   dl;
	int               rv;

	if ((rv = store_txn_begin(c->st, false, &txn)) != CS_OK) {
		goto store_bad;
	}
	rv = store_key_list(txn, &keys, &nk);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		goto store_bad;
	}
	if (c->hsm == NULL) {
		store_key_list_free(keys, nk);
		r->status = 503;
		r->body   = strdup("unavailable: no HSM configured ([hsm])\n");
		goto text;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		store_key_list_free(keys, nk);
		resp_error(r, 500, "out of memory");
		return;
	}
	h->c = c;
	snprintf(h->label, sizeof(h->label), "%s",
	    nk > 0 ? keys[0]->label : c->hsm_check_key);
	store_key_list_free(keys, nk);
	pthread_mutex_lock(&c->mtx);
	if (hsm_check_busy(c)) {
		pthread_mutex_unlock(&c->mtx);
		free(h);
		r->status = 503;
		r->body   = strdup("unavailable: an earlier HSM check has not "
		      "returned\n");
		goto text;
	}
	c->hsm_checks++;
	c->hz_hsm_calls++;
	pthread_mutex_unlock(&c->mtx);
	if (pthread_create(&t, NULL, hsm_check_main, h) != 0) {
		pthread_mutex_lock(&c->mtx);
		c->hsm_checks--;
		pthread_mutex_unlock(&c->mtx);
		free(h);
		resp_error(r, 500, "cannot start the HSM check");
		return;
	}
	pthread_detach(t);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += HSM_CHECK_MS / 1000u;
	pthread_mutex_lock(&c->mtx);
	while (!h->done) {
		if (pthread_cond_timedwait(&c->hcv, &c->mtx, &dl) != 0 &&
		    !h->done) {
			break;
		}
	}
	if (!h->done) {
		h->abandoned = true; /* the thread frees it */
		pthread_mutex_unlock(&c->mtx);
		r->status = 503;
		r->body   = strdup("unavailable: the HSM did not answer within "
		      "2 s\n");
		goto text;
	}
	rv = h->rv;
	pthread_mutex_unlock(&c->mtx);
	free(h);
	if (rv != CS_OK) {
		char buf[160];
		snprintf(buf, sizeof(buf), "unavailable: HSM key check failed "
		    "(%s)\n", cs_strerror(rv));
		r->status = 503;
		r->body   = strdup(buf);
		goto text;
	}
	r->status = 200;
	r->body   = strdup("ok\n");
	goto text;
store_bad:
	{
		char buf[160];
		snprintf(buf, sizeof(buf), "unavailable: the store cannot be "
		    "read (%s)\n", cs_strerror(rv));
		r->status = 503;
		r->body   = strdup(buf);
	}
text:
	r->type = "text/plain; charset=utf-8";
	r->len  = r->body != NULL ? strlen(r->body) : 0;
}

/* A Prometheus label value: \, " and newline escaped. */
static void
prom_label(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			fputc('\\', fp);
			fputc(*s, fp);
		} else if (*s == '\n') {
			fputs("\\n", fp);
		} else {
			fputc(*s, fp);
		}
	}
}

void
console_metrics(console *c, const struct console_req *q, struct resp *r)
{
	struct console_overview  v;
	struct pipeline_metrics *m;
	struct pipeline_stats    ps;
	size_t                   active = 0;
	uint64_t                 cum;
	struct stat              sb;
	char                     path[4096];
	FILE                    *fp;

	(void)q;
	if (!console_overview_get(c, &v, r)) {
		return;
	}
	m = v.m;
	pipeline_stats_get(c->pl, &ps);
	free(r->body);
	r->body = NULL;
	if ((fp = open_memstream(&r->body, &r->len)) == NULL) {
		resp_error(r, 500, "out of memory");
		goto out;
	}
	fputs("# HELP countersign_records_issued_total Records issued, per "
	      "order (durable, from the store).\n"
	      "# TYPE countersign_records_issued_total counter\n", fp);
	for (size_t i = 0; i < v.no; i++) {
		fputs("countersign_records_issued_total{order=\"", fp);
		prom_label(fp, v.orders[i]->order_id);
		fprintf(fp, "\"} %" PRIu64 "\n", v.orders[i]->issued);
	}
	fputs("# HELP countersign_order_remaining Units an order may still "
	      "issue (quota - issued).\n"
	      "# TYPE countersign_order_remaining gauge\n", fp);
	for (size_t i = 0; i < v.no; i++) {
		fputs("countersign_order_remaining{order=\"", fp);
		prom_label(fp, v.orders[i]->order_id);
		fprintf(fp, "\"} %" PRIu64 "\n",
		    v.orders[i]->quota > v.orders[i]->issued
		        ? v.orders[i]->quota - v.orders[i]->issued : 0);
	}
	{
		uint64_t used = 0, size = 0;
		if (store_space(c->st, &used, &size) == CS_OK) {
			fprintf(fp, "# HELP countersign_store_used_bytes Bytes of "
			    "the store's map in use.\n"
			    "# TYPE countersign_store_used_bytes gauge\n"
			    "countersign_store_used_bytes %" PRIu64 "\n"
			    "# HELP countersign_store_free_bytes Bytes of the map "
			    "left (map_size_mb - used).\n"
			    "# TYPE countersign_store_free_bytes gauge\n"
			    "countersign_store_free_bytes %" PRIu64 "\n", used,
			    size > used ? size - used : 0);
		}
	}
	fputs("# HELP countersign_sign_latency_seconds Time from a sign "
	      "request entering the pipeline to its reply.\n"
	      "# TYPE countersign_sign_latency_seconds histogram\n", fp);
	cum = 0;
	for (size_t i = 0; i < PIPELINE_LATENCY_BUCKETS; i++) {
		cum += m->latency[i];
		fprintf(fp, "countersign_sign_latency_seconds_bucket{le=\"%g\"} "
		    "%" PRIu64 "\n", pipeline_latency_le[i], cum);
	}
	cum += m->latency[PIPELINE_LATENCY_BUCKETS];
	fprintf(fp, "countersign_sign_latency_seconds_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\n", cum);
	fprintf(fp, "countersign_sign_latency_seconds_sum %.6f\n",
	    m->latency_sum_s);
	fprintf(fp, "countersign_sign_latency_seconds_count %" PRIu64 "\n",
	    m->latency_count);
	fputs("# HELP countersign_refusals_total Sign requests refused since "
	      "start, by reason.\n"
	      "# TYPE countersign_refusals_total counter\n", fp);
	for (size_t i = 0; i < m->n_reasons; i++) {
		fputs("countersign_refusals_total{reason=\"", fp);
		prom_label(fp, m->refusals[i].reason);
		fprintf(fp, "\"} %" PRIu64 "\n", m->refusals[i].n);
	}
	fprintf(fp, "# HELP countersign_hsm_errors_total HSM signing errors "
	    "since start.\n"
	    "# TYPE countersign_hsm_errors_total counter\n"
	    "countersign_hsm_errors_total %" PRIu64 "\n", ps.hsm_errors);
	snprintf(path, sizeof(path), "%s/data.mdb", c->data_dir);
	fprintf(fp, "# HELP countersign_lmdb_bytes Size of the store's data "
	    "file.\n"
	    "# TYPE countersign_lmdb_bytes gauge\n"
	    "countersign_lmdb_bytes %lld\n",
	    stat(path, &sb) == 0 ? (long long)sb.st_size : 0LL);
	for (size_t i = 0; i < v.ns; i++) {
		active += v.stations[i]->enabled ? 1u : 0u;
	}
	fprintf(fp, "# HELP countersign_stations_active Enrolled stations that "
	    "are enabled.\n"
	    "# TYPE countersign_stations_active gauge\n"
	    "countersign_stations_active %zu\n", active);
	if (c->stations != NULL) {
		struct cs_srv_stats ss;
		cs_srv_stats(c->stations, &ss);
		fprintf(fp, "# HELP countersign_station_connections Open "
		    "connections on the station port.\n"
		    "# TYPE countersign_station_connections gauge\n"
		    "countersign_station_connections %u\n"
		    "# HELP countersign_station_connections_max The cap in force "
		    "(max_connections, lowered to fit the descriptor limit).\n"
		    "# TYPE countersign_station_connections_max gauge\n"
		    "countersign_station_connections_max %u\n"
		    "# HELP countersign_station_connections_refused_total "
		    "Connections closed at once, by the limit that refused "
		    "them.\n"
		    "# TYPE countersign_station_connections_refused_total "
		    "counter\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"max_connections\"} %" PRIu64 "\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"max_connections_per_source\"} %" PRIu64 "\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"max_connections_per_station\"} %" PRIu64 "\n"
		    "countersign_station_connections_refused_total"
		    "{limit=\"descriptors\"} %" PRIu64 "\n"
		    "# HELP countersign_station_connections_dropped_total "
		    "Connections the authority ended, by cause.\n"
		    "# TYPE countersign_station_connections_dropped_total "
		    "counter\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"handshake_timeout\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"handshake_failed\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"send_timeout\"} %" PRIu64 "\n"
		    "countersign_station_connections_dropped_total"
		    "{cause=\"protocol_error\"} %" PRIu64 "\n",
		    ss.open, ss.max_conns, ss.refused_total, ss.refused_source,
		    ss.refused_name, ss.refused_fd, ss.handshake_timeouts, ss.handshake_failures,
		    ss.send_timeouts, ss.protocol_errors);
	}
	pthread_mutex_lock(&c->mtx);
	uint64_t hz_calls = c->hz_hsm_calls;
	pthread_mutex_unlock(&c->mtx);
	fprintf(fp, "# HELP countersign_healthz_hsm_checks_total HSM checks "
	    "made for /healthz (at most one per 2 s).\n"
	    "# TYPE countersign_healthz_hsm_checks_total counter\n"
	    "countersign_healthz_hsm_checks_total %" PRIu64 "\n", hz_calls);
	{
		struct cs_tls_gate_stats gs;
		cs_tls_server_limits_stats(&gs);
		fprintf(fp, "# HELP countersign_console_connections Open "
		    "connections on the console port.\n"
		    "# TYPE countersign_console_connections gauge\n"
		    "countersign_console_connections %u\n"
		    "# HELP countersign_console_connections_refused_total "
		    "Console connections refused by a connection cap.\n"
		    "# TYPE countersign_console_connections_refused_total "
		    "counter\n"
		    "countersign_console_connections_refused_total %" PRIu64
		    "\n"
		    "# HELP countersign_console_connections_dropped_total "
		    "Console connections the authority ended, by cause.\n"
		    "# TYPE countersign_console_connections_dropped_total "
		    "counter\n"
		    "countersign_console_connections_dropped_total"
		    "{cause=\"handshake_timeout\"} %" PRIu64 "\n"
		    "countersign_console_connections_dropped_total"
		    "{cause=\"idle_timeout\"} %" PRIu64 "\n",
		    gs.open, gs.refused, gs.timeouts, gs.idle);
	}
	fputs("# HELP countersign_commit_batch_size Jobs committed per LMDB "
	      "write transaction of the pipeline.\n"
	      "# TYPE countersign_commit_batch_size histogram\n", fp);
	cum = 0;
	for (size_t i = 0; i < PIPELINE_BATCH_BUCKETS; i++) {
		cum += m->batch[i];
		fprintf(fp, "countersign_commit_batch_size_bucket{le=\"%" PRIu64
		    "\"} %" PRIu64 "\n", pipeline_batch_le[i], cum);
	}
	cum += m->batch[PIPELINE_BATCH_BUCKETS];
	fprintf(fp, "countersign_commit_batch_size_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\n", cum);
	fprintf(fp, "countersign_commit_batch_size_sum %" PRIu64 "\n"
	    "countersign_commit_batch_size_count %" PRIu64 "\n", m->batch_sum,
	    m->batch_count);
	if (fclose(fp) != 0) {
		free(r->body);
		r->body = NULL;
		resp_error(r, 500, "out of memory");
		goto out;
	}
	r->status = 200;
	r->type   = "text/plain; version=0.0.4; charset=utf-8";
out:
	console_overview_free(&v);
}
