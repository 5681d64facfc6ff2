/*
 * station_cmd_sign.c - the countersign-station commands that talk to the
 * authority one call at a time: init (the station's key and CSR), ping,
 * sign (one device record, written atomically), report (how programming
 * ended) and order (its counters).  A programming script drives sign and
 * report around a third-party programmer; run (station_cmd_run.c) does
 * the same for whole batches itself.
 *
 * The command table, the set-up every command shares and the exit codes
 * are in main.c (station_cli.h).
 */
#include "countersign/record.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_tls.h"
#include "station_cli.h"
#include "station_init.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longest --detail of a report: the authority's limit
 * (AUTHORITY_MAX_DETAIL); printable ASCII only, as it requires. */
#define DETAIL_MAX 255u

/* Whether s is what the authority keeps: printable ASCII, not too long. */
static bool
detail_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (s[n] < 0x20 || s[n] > 0x7e || n == DETAIL_MAX) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* init, ping                                                          */
/* ------------------------------------------------------------------ */

int
station_cmd_init(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli *st = ctx;
	struct station_args a;
	char csr[STATION_PATH_MAX], err[STATION_PATH_MAX + 256];
	int  rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if (station_init(&st->cfg, csr, sizeof(csr), err, sizeof(err)) !=
	    CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "%s", err);
	}
	printf("key: %s\ncsr: %s\nnext: the OEM enrolls it with "
	    "countersign-admin station enroll --csr %s --name %s --cm CM "
	    "-o CERT, and [station] cert names the certificate\n",
	    st->cfg.key, csr, csr, st->cfg.name);
	return EXIT_OK;
}

static double
elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* One Ping call; prints the authority's line. */
static int
ping_once(struct station_cli *st, cs_rpc_client *cli)
{
	Countersign__V1__PingRequest   req =
	    COUNTERSIGN__V1__PING_REQUEST__INIT;
	Countersign__V1__PingResponse *rsp = NULL;
	struct cs_rpc_result           res;
	struct timespec                t0, t1;
	char                           ver[16], cipher[64];
	int                            rv;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rv = cs_rpc_call(cli, &countersign__v1__authority__descriptor,
	    "Ping", &req.base, (ProtobufCMessage **)&rsp, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rv != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "ping failed (%s): "
		    "%s", cs_status_name(res.status), res.message);
	}
	if (!cs_tls_last_handshake(ver, sizeof(ver), cipher,
	    sizeof(cipher))) {
		snprintf(ver, sizeof(ver), "none");
		snprintf(cipher, sizeof(cipher), "none");
	}
	printf("authority=%s version=%s tls=%s cipher=%s rtt_ms=%.3f\n",
	    rsp->authority_id, rsp->version, ver, cipher,
	    elapsed_ms(&t0, &t1));
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return EXIT_OK;
}

int
station_cmd_ping(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli *st = ctx;
	struct station_args a;
	cs_rpc_client      *cli   = NULL;
	unsigned long       count = 1;
	char                err[512];
	int                 rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if (a.count != NULL && (rv = station_cli_number(st, cmd, "--count",
	    a.count, 1, 100000, &count)) != EXIT_OK) {
		return rv;
	}
	if (station_connect(&st->cfg, &cli, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "%s", err);
	}
	for (unsigned long i = 0; i < count && rv == EXIT_OK; i++) {
		rv = ping_once(st, cli);
	}
	cs_rpc_client_close(cli);
	return rv;
}

/* ------------------------------------------------------------------ */
/* sign                                                                */
/* ------------------------------------------------------------------ */

/*
 * Where the record goes: FILE.tmp renamed to FILE, so that a reader never
 * sees half a record; or straight into FILE when it is not a regular file
 * (a pipe to a programmer, /dev/null: renaming over those would replace
 * them); or stdout.
 */
struct record_out {
	const char *path; /* NULL: stdout */
	char        tmp[STATION_PATH_MAX];
	int         fd;
	bool        direct; /* path itself is written: no tmp, no rename */
};

/*
 * Make ready to write, before asking for the record: a path that cannot
 * be written, or a terminal, is found out before the authority counts a
 * record against the order's quota.
 */
static int
record_out_begin(struct station_cli *st, struct record_out *o,
    const char *path)
{
	struct stat sb;
	int         n;

	o->path   = path;
	o->fd     = -1;
	o->direct = false;
	if (path != NULL && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		if (S_ISDIR(sb.st_mode)) {
			return cs_cli_error(&st->cli, EXIT_USAGE, "--out %s "
			    "is a directory", path);
		}
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0) {
			return cs_cli_error(&st->cli, EXIT_USAGE, "cannot "
			    "open %s: %s", path, strerror(errno));
		}
		o->direct = true;
		return EXIT_OK;
	}
	if (path == NULL) {
		if (isatty(STDOUT_FILENO)) {
			return cs_cli_error(&st->cli, EXIT_USAGE, "refusing "
			    "to write binary to a terminal; use --out FILE");
		}
		o->fd = STDOUT_FILENO;
		return EXIT_OK;
	}
	n = snprintf(o->tmp, sizeof(o->tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "--out path too "
		    "long");
	}
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (o->fd < 0) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "cannot create %s: "
		    "%s", o->tmp, strerror(errno));
	}
	return EXIT_OK;
}

/* Drop a file that will not be completed; harmless for stdout and after
 * the commit. */
static void
record_out_abort(struct record_out *o)
{
	if (o->path != NULL && o->fd >= 0) {
		close(o->fd);
		if (!o->direct) {
			unlink(o->tmp);
		}
	}
	o->fd = -1;
}

/* fsync the directory holding path, so that the rename is durable. */
static int
sync_parent(const char *path)
{
	char dir[STATION_PATH_MAX];
	int  fd, rv = CS_OK;

	snprintf(dir, sizeof(dir), "%s", path); /* fits: shorter than tmp */
	if ((fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
	    0) {
		return CS_EIO;
	}
	if (fsync(fd) != 0) {
		rv = CS_EIO;
	}
	close(fd);
	return rv;
}

/* Write the record and put the file in place (mode 0644). */
static int
record_out_commit(struct station_cli *st, struct record_out *o,
    const uint8_t *rec, size_t len)
{
	const char *what = o->path == NULL ? "stdout"
	    : o->direct                    ? o->path
	                                   : o->tmp;
	int         rv;

	if (station_write_all(o->fd, rec, len) != CS_OK) {
		goto fail;
	}
	if (o->path == NULL) {
		return EXIT_OK;
	}
	if (o->direct) {
		if (close(o->fd) != 0) {
			o->fd = -1;
			goto fail;
		}
		o->fd = -1;
		return EXIT_OK;
	}
	/* 0644 whatever the umask: the programming tool may run as
	 * another user. */
	if (fchmod(o->fd, 0644) != 0 || fsync(o->fd) != 0) {
		goto fail;
	}
	if (close(o->fd) != 0) {
		o->fd = -1;
		unlink(o->tmp);
		goto fail;
	}
	o->fd = -1;
	if (rename(o->tmp, o->path) != 0) {
		what = o->path;
		unlink(o->tmp);
		goto fail;
	}
	if (sync_parent(o->path) != CS_OK) {
		cs_cli_warn(&st->cli, "%s written but its directory could not "
		    "be synced: %s", o->path, strerror(errno));
	}
	return EXIT_OK;
fail:
	rv = cs_cli_error(&st->cli, EXIT_ERROR, "cannot write %s: %s", what,
	    strerror(errno));
	record_out_abort(o);
	return rv;
}

/*
 * The authority's answer goes straight into a device: check that it is a
 * record of the right size for the UID that was asked for, so that a
 * mixed-up reply is never programmed.
 */
static int
check_record(struct station_cli *st, const ProtobufCBinaryData *rec,
    const uint8_t *uid, size_t uid_len)
{
	if (rec->len < CS_RECORD_MIN_LEN || rec->len > CS_RECORD_MAX_LEN ||
	    rec->data[CS_RECORD_OFF_UID_LEN] != uid_len ||
	    memcmp(rec->data + CS_RECORD_OFF_UID, uid, uid_len) != 0) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "the authority "
		    "answered with a record of %zu bytes that is not the "
		    "record of this UID; nothing written", rec->len);
	}
	return EXIT_OK;
}

/* Sign RPC; on success the record is written and the line printed. */
static int
sign_and_write(struct station_cli *st, station_session *s,
    const char *order, const uint8_t *uid, size_t uid_len,
    const uint8_t *fw, size_t fw_len, struct record_out *o)
{
	Countersign__V1__SignRequest   req =
	    COUNTERSIGN__V1__SIGN_REQUEST__INIT;
	Countersign__V1__SignResponse *rsp = NULL;
	struct cs_rpc_result           res;
	char                           hex[2 * STATION_UID_MAX + 1];
	int                            rv;

	req.order_id = (char *)order;
	req.uid.data = (uint8_t *)uid;
	req.uid.len  = uid_len;
	req.firmware_sha256.data = (uint8_t *)fw;
	req.firmware_sha256.len  = fw_len;
	if ((rv = station_session_call(s, "Sign", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		record_out_abort(o);
		return station_cli_call_failed(st, rv, &res);
	}
	if ((rv = check_record(st, &rsp->record, uid, uid_len)) == EXIT_OK &&
	    (rv = record_out_commit(st, o, rsp->record.data,
	    rsp->record.len)) == EXIT_OK) {
		fprintf(stderr, "signed order=%s uid=%s serial=%" PRIu64
		    " reissued=%s remaining=%" PRIu64 " bytes=%zu\n", order,
		    station_cli_hex(uid, uid_len, hex), rsp->serial,
		    rsp->reissued ? "yes" : "no", rsp->remaining,
		    rsp->record.len);
	}
	record_out_abort(o);
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return rv;
}

int
station_cmd_sign(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"uid", required_argument, NULL, 'u'},
	    {"out", required_argument, NULL, 'f'},
	    {"firmware-sha256", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli *st = ctx;
	struct station_args a;
	station_session    *s = NULL;
	struct record_out   o;
	uint8_t             uid[STATION_UID_MAX];
	uint8_t             fw[CS_SHA256_LEN];
	size_t              uid_len = 0, fw_len = 0;
	int                 rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if ((rv = station_cli_order_uid(st, cmd, &a, uid, &uid_len)) !=
	    EXIT_OK) {
		return rv;
	}
	if (a.fw_sha256 != NULL &&
	    (cs_hex_decode(a.fw_sha256, fw, sizeof(fw), &fw_len) != CS_OK ||
	        fw_len != sizeof(fw))) {
		return cs_cli_usage(&st->cli, cmd, "--firmware-sha256 takes the "
		    "64 hex digits of a SHA-256 digest");
	}
	if ((rv = record_out_begin(st, &o, a.out)) != EXIT_OK) {
		return rv;
	}
	if ((rv = station_cli_session(st, &s)) != EXIT_OK) {
		record_out_abort(&o);
		return rv;
	}
	rv = sign_and_write(st, s, a.order, uid, uid_len, fw, fw_len, &o);
	station_session_close(s);
	return rv;
}

/* ------------------------------------------------------------------ */
/* report, order                                                       */
/* ------------------------------------------------------------------ */

static int
parse_outcome(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const char *s, Countersign__V1__Outcome *out)
{
	if (s == NULL) {
		return cs_cli_usage(&st->cli, cmd, "--outcome is required");
	}
	if (strcmp(s, "programmed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_PROGRAMMED;
	} else if (strcmp(s, "failed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED;
	} else if (strcmp(s, "verify-failed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_VERIFY_FAILED;
	} else {
		return cs_cli_usage(&st->cli, cmd, "--outcome is programmed, "
		    "failed or verify-failed, not '%s'", s);
	}
	return EXIT_OK;
}

/*
 * Report and GetOrder both answer with the order's status: print it, or
 * say that the reply lacks one.  what names the reply in the message.
 */
static int
print_order_reply(struct station_cli *st,
    const Countersign__V1__OrderStatus *order, const char *what)
{
	if (order == NULL) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "the authority's %s "
		    "has no order status", what);
	}
	station_cli_print_order(order);
	return EXIT_OK;
}

int
station_cmd_report(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"uid", required_argument, NULL, 'u'},
	    {"outcome", required_argument, NULL, 'r'},
	    {"detail", required_argument, NULL, 'd'},
	    {"locked", no_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ReportRequest req =
	    COUNTERSIGN__V1__REPORT_REQUEST__INIT;
	Countersign__V1__ReportResponse *rsp     = NULL;
	Countersign__V1__Outcome         outcome = 0;
	struct station_cli              *st      = ctx;
	struct station_args              a;
	station_session                 *s = NULL;
	struct cs_rpc_result             res;
	uint8_t                          uid[STATION_UID_MAX];
	size_t                           uid_len = 0;
	int                              rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if ((rv = station_cli_order_uid(st, cmd, &a, uid, &uid_len)) !=
	    EXIT_OK ||
	    (rv = parse_outcome(st, cmd, a.outcome, &outcome)) != EXIT_OK) {
		return rv;
	}
	if (a.detail != NULL && !detail_ok(a.detail)) {
		return cs_cli_usage(&st->cli, cmd, "--detail must be at most %u "
		    "printable ASCII characters (no line breaks or tabs)",
		    DETAIL_MAX);
	}
	if ((rv = station_cli_session(st, &s)) != EXIT_OK) {
		return rv;
	}
	req.order_id = (char *)a.order;
	req.uid.data = uid;
	req.uid.len  = uid_len;
	req.outcome  = outcome;
	req.detail   = (char *)(a.detail != NULL ? a.detail : "");
	req.locked   = a.locked;
	if ((rv = station_session_call(s, "Report", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		rv = station_cli_call_failed(st, rv, &res);
		goto out;
	}
	rv = print_order_reply(st, rsp->order, "report reply");
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
out:
	station_session_close(s);
	return rv;
}

int
station_cmd_order(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__GetOrderRequest   req =
	    COUNTERSIGN__V1__GET_ORDER_REQUEST__INIT;
	Countersign__V1__GetOrderResponse *rsp = NULL;
	struct station_cli                *st  = ctx;
	struct station_args                a;
	station_session                   *s = NULL;
	struct cs_rpc_result               res;
	int                                rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 1,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	req.order_id = argv[optind];
	if ((rv = station_cli_order_id(st, cmd, req.order_id)) != EXIT_OK ||
	    (rv = station_cli_session(st, &s)) != EXIT_OK) {
		return rv;
	}
	if ((rv = station_session_call(s, "GetOrder", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		rv = station_cli_call_failed(st, rv, &res);
		goto out;
	}
	rv = print_order_reply(st, rsp->order, "reply");
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
out:
	station_session_close(s);
	return rv;
}
