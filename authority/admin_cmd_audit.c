/*
 * admin_cmd_audit.c - countersign-admin's commands for the audit log:
 * `audit list` (one page, one event a line), `audit verify` (the hash
 * chain, exit status 3 when broken) and `audit export` (the whole log,
 * page by page, as JSON lines or RFC 4180 CSV).
 *
 * An export to a file goes through FILE.tmp, renamed only once complete,
 * so that a failed export never leaves a file that looks whole.
 */
#include "admin_cli.h"
#include "countersign/v1/admin.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIT_PAGE      1000u
#define AUDIT_LIMIT_MAX AUDIT_PAGE

static void
event_json(FILE *fp, const Countersign__V1__AuditEvent *e)
{
	struct cs_json j;
	char           t[ADMIN_TIME_LEN];

	admin_time_iso(e->time_unix_ms, t);
	cs_json_init(&j, fp);
	cs_json_open(&j, NULL);
	cs_json_u64(&j, "seq", e->seq);
	cs_json_u64(&j, "time_unix_ms", e->time_unix_ms);
	cs_json_str(&j, "time", t);
	cs_json_str(&j, "actor", e->actor);
	cs_json_str(&j, "type", e->type);
	cs_json_open(&j, "fields");
	for (size_t i = 0; i < e->n_fields; i++) {
		cs_json_str(&j, e->fields[i]->key, e->fields[i]->value);
	}
	cs_json_close(&j);
	cs_json_bytes(&j, "prev_hash", e->prev_hash.data,
	    e->prev_hash.len);
	cs_json_bytes(&j, "hash", e->hash.data, e->hash.len);
	cs_json_close(&j);
	fputc('\n', fp);
}

/* A value for the one-line text form: as is when it is one plain word,
 * otherwise quoted and escaped so a line stays one event. */
static void
text_value(FILE *fp, const char *v)
{
	size_t n = strlen(v);
	bool   plain = n > 0;

	for (size_t i = 0; i < n && plain; i++) {
		plain = (unsigned char)v[i] > 0x20 && v[i] != '"' &&
		    v[i] != '\\' && v[i] != 0x7f;
	}
	if (plain) {
		fputs(v, fp);
	} else {
		cs_json_print_string(fp, v, n);
	}
}

static void
event_text(FILE *fp, const Countersign__V1__AuditEvent *e)
{
	char t[ADMIN_TIME_LEN];

	admin_time_iso(e->time_unix_ms, t);
	fprintf(fp, "%" PRIu64 " %s ", e->seq, t);
	text_value(fp, e->actor);
	fputc(' ', fp);
	text_value(fp, e->type);
	for (size_t i = 0; i < e->n_fields; i++) {
		fprintf(fp, " %s=", e->fields[i]->key);
		text_value(fp, e->fields[i]->value);
	}
	fputc('\n', fp);
}

static int
csv_field_str(FILE *fp, const char *s)
{
	admin_csv_field(fp, s, strlen(s));
	return fputc(',', fp);
}

static int
event_csv(struct admin *a, FILE *fp,
    const Countersign__V1__AuditEvent *e)
{
	char   t[ADMIN_TIME_LEN], *kv = NULL;
	size_t kv_len                 = 0;
	FILE  *m;

	/* The fields join as k=v;k=v into one CSV field. */
	if ((m = open_memstream(&kv, &kv_len)) == NULL) {
		return admin_cli_fail(a, "out of memory");
	}
	for (size_t i = 0; i < e->n_fields; i++) {
		admin_csv_kv(m, e->fields[i]->key, e->fields[i]->value,
		    i == 0);
	}
	if (fclose(m) != 0) {
		free(kv);
		return admin_cli_fail(a, "out of memory");
	}
	admin_time_iso(e->time_unix_ms, t);
	fprintf(fp, "%" PRIu64 ",%s,", e->seq, t);
	csv_field_str(fp, e->actor);
	csv_field_str(fp, e->type);
	admin_csv_field(fp, kv, kv_len);
	fputc(',', fp);
	admin_cli_hex(fp, e->prev_hash.data, e->prev_hash.len);
	fputc(',', fp);
	admin_cli_hex(fp, e->hash.data, e->hash.len);
	/* RFC 4180 ends records with CRLF. */
	fputs("\r\n", fp);
	free(kv);
	return ADMIN_EXIT_OK;
}

static int
audit_page(struct admin *a, uint64_t since, uint32_t limit,
    Countersign__V1__ListAuditReply **rep)
{
	Countersign__V1__ListAuditRequest req =
	    COUNTERSIGN__V1__LIST_AUDIT_REQUEST__INIT;

	req.since_seq = since;
	req.limit     = limit;
	return admin_cli_call(a, "ListAudit", &req, rep);
}

int
admin_cmd_audit_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"since", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListAuditReply *rep = NULL;
	struct admin                    *a   = ctx;
	uint64_t                         since = 0, limit = 0;
	int                              opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 's') {
			rv = admin_cli_num(a, cmd, "--since", optarg, 0,
			    UINT64_MAX, &since);
		} else if (opt == 'l') {
			rv = admin_cli_num(a, cmd, "--limit", optarg, 1,
			    AUDIT_LIMIT_MAX, &limit);
		} else {
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
		if (rv != ADMIN_EXIT_OK) {
			return rv;
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK ||
	    (rv = audit_page(a, since, (uint32_t)limit, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	for (size_t i = 0; i < rep->n_events; i++) {
		if (a->cli.json) {
			event_json(stdout, rep->events[i]);
		} else {
			event_text(stdout, rep->events[i]);
		}
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_audit_verify(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__VerifyAuditRequest req =
	    COUNTERSIGN__V1__VERIFY_AUDIT_REQUEST__INIT;
	Countersign__V1__VerifyAuditReply *rep = NULL;
	struct admin                      *a   = ctx;
	int                                rv;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 0, &rv) ||
	    (rv = admin_cli_call(a, "VerifyAudit", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	rv = rep->intact ? ADMIN_EXIT_OK : ADMIN_EXIT_BROKEN;
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_bool(&j, "intact", rep->intact);
		cs_json_u64(&j, "verified_up_to", rep->verified_up_to);
		if (!rep->intact) {
			cs_json_u64(&j, "first_bad_seq", rep->first_bad_seq);
		}
		cs_json_close(&j);
		putchar('\n');
	} else if (rep->intact) {
		printf("audit chain intact: %" PRIu64 " events verified\n",
		    rep->verified_up_to);
	} else {
		printf("audit chain BROKEN at seq %" PRIu64 " (verified up to "
		       "%" PRIu64 ")\n",
		    rep->first_bad_seq, rep->verified_up_to);
	}
out:
	admin_cli_free(rep);
	return rv;
}

/* Page through the log from since, writing each event to fp. */
static int
audit_export_to(struct admin *a, FILE *fp, bool csv, uint64_t since)
{
	Countersign__V1__ListAuditReply *rep = NULL;
	int rv;

	if (csv) {
		fputs("seq,time,actor,type,fields,prev_hash,hash\r\n", fp);
	}
	for (;;) {
		if ((rv = audit_page(a, since, AUDIT_PAGE, &rep)) !=
		    ADMIN_EXIT_OK) {
			return rv;
		}
		if (rep->n_events == 0) {
			break;
		}
		for (size_t i = 0; i < rep->n_events && rv == ADMIN_EXIT_OK;
		    i++) {
			if (rep->events[i]->seq <= since) {
				/* Would loop for ever on the same page. */
				rv = admin_cli_fail(a, "the authority "
				    "returned event %" PRIu64 " for events "
				    "after %" PRIu64 "; export stopped",
				    rep->events[i]->seq, since);
			} else if (csv) {
				rv = event_csv(a, fp, rep->events[i]);
			} else {
				event_json(fp, rep->events[i]);
			}
			since = rep->events[i]->seq;
		}
		admin_cli_free(rep);
		rep = NULL;
		if (rv != ADMIN_EXIT_OK) {
			return rv;
		}
	}
	admin_cli_free(rep);
	return ADMIN_EXIT_OK;
}

/* Export into path through path.tmp (see the top of the file). */
static int
audit_export_file(struct admin *a, const char *path, bool csv,
    uint64_t since)
{
	char *tmp = NULL;
	FILE *fp  = NULL;
	int   fd, rv;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		return admin_cli_fail(a, "out of memory");
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) < 0) {
		rv = errno == EEXIST
		    ? admin_cli_fail(a, "%s exists (left by an interrupted "
		          "export?): remove it and retry", tmp)
		    : admin_cli_fail(a, "cannot create %s: %s", tmp,
		          strerror(errno));
		free(tmp);
		return rv;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		rv = admin_cli_fail(a, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	if ((rv = audit_export_to(a, fp, csv, since)) != ADMIN_EXIT_OK) {
		goto out;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		rv = admin_cli_fail(a, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	int cr = fclose(fp);
	fp = NULL;
	if (cr != 0 || rename(tmp, path) != 0) {
		rv = admin_cli_fail(a, "cannot write %s: %s", path,
		    strerror(errno));
	}
out:
	if (fp != NULL) {
		fclose(fp);
	}
	if (rv != ADMIN_EXIT_OK) {
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

int
admin_cmd_audit_export(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"since", required_argument, NULL, 's'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct admin *a      = ctx;
	const char   *format = NULL, *out = NULL;
	uint64_t      since  = 0;
	int           opt, rv;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (opt == 'f') {
			format = optarg;
		} else if (opt == 'o') {
			out = optarg;
		} else if (opt == 's') {
			if ((rv = admin_cli_num(a, cmd, "--since", optarg, 0,
			    UINT64_MAX, &since)) != ADMIN_EXIT_OK) {
				return rv;
			}
		} else {
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	if (format == NULL || (strcmp(format, "jsonl") != 0 &&
	    strcmp(format, "csv") != 0)) {
		return cs_cli_usage(&a->cli, cmd, "--format jsonl or --format "
		    "csv is required");
	}
	bool csv = strcmp(format, "csv") == 0;
	/* Connect before creating the file, so that an authority that is
	 * down leaves nothing behind. */
	if ((rv = admin_cli_connect(a)) != ADMIN_EXIT_OK) {
		return rv;
	}
	if (out == NULL || strcmp(out, "-") == 0) {
		return audit_export_to(a, stdout, csv, since);
	}
	return audit_export_file(a, out, csv, since);
}
