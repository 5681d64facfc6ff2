/*
 * main.c - countersign-station, the agent on a contract manufacturer's
 * programming PC.  This file is the command line; each command lives in
 * its own function, and the session with the authority in
 * station_session.c.
 *
 * sign, report and order exit with a code that says why they failed, so
 * that a programming script can tell "stop the line" (quota exhausted, a
 * clone) from "retry" (authority unreachable) without parsing messages:
 *
 *   code  meaning                                  wire status
 *   0     ok                                       OK
 *   1     any other error                          (others, local errors)
 *   2     usage or configuration error             -
 *   3     authority unreachable or timed out       UNAVAILABLE,
 *                                                  DEADLINE_EXCEEDED
 *   4     station not authenticated / not allowed  UNAUTHENTICATED,
 *                                                  PERMISSION_DENIED
 *   5     quota exhausted                          RESOURCE_EXHAUSTED
 *   6     order unknown, closed or expired         NOT_FOUND,
 *                                                  FAILED_PRECONDITION
 *   7     bad UID                                  INVALID_ARGUMENT
 *   8     UID already signed under another order   ALREADY_EXISTS
 *         or CM: a cloning signal
 *
 * While the session is being made (before the command's own call) a
 * refusal (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND,
 * FAILED_PRECONDITION) is 4: it is about the station, not an order or a
 * UID.  ping and init exit 0, 1 or 2.
 */
#include "countersign/record.h"
#include "countersign/v1/authority.pb-c.h"
#include "cs_err.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "cs_tls.h"
#include "dap_usb.h"
#include "station_config.h"
#include "station_init.h"
#include "station_session.h"
#include "image.h"
#include "job.h"
#include "probe.h"
#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/countersign/station.conf"

/* Longest order id: the authority's limit (STORE_ORDER_ID_MAX). */
#define ORDER_ID_MAX 64u

/* Longest --detail of a report; a line or two for the audit log. */
#define DETAIL_MAX 1024u

/* The exit codes above: name, value, text for the usage. */
#define EXIT_LIST(X)                                                          \
	X(EXIT_OK, 0, "ok")                                                   \
	X(EXIT_ERROR, 1, "any other error")                                   \
	X(EXIT_USAGE, 2, "usage or configuration error")                      \
	X(EXIT_UNREACHABLE, 3, "authority unreachable or timed out")          \
	X(EXIT_DENIED, 4, "station not authenticated or not allowed")         \
	X(EXIT_QUOTA, 5, "the order's quota is exhausted")                    \
	X(EXIT_ORDER, 6, "order unknown, closed or expired")                  \
	X(EXIT_UID, 7, "bad UID")                                             \
	X(EXIT_CLONE, 8, "UID already signed under another order or CM "      \
	    "(cloning signal)")                                                \
	X(EXIT_INCOMPLETE, 9, "run: fewer devices than --count (none came "   \
	    "on a probe in time, or the run was stopped)")

enum exit_code {
#define EXIT_ENUM(name, val, text) name = val,
	EXIT_LIST(EXIT_ENUM)
#undef EXIT_ENUM
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: countersign-station [-c FILE] COMMAND [ARGS]\n"
	    "\n"
	    "The Countersign station agent.\n"
	    "\n"
	    "Commands:\n"
	    "  init               make this station's key ([station] key) and a\n"
	    "                     certificate signing request beside it\n"
	    "  ping [--count N]   connect to the authority with this station's\n"
	    "                     certificate; print its id, the TLS version\n"
	    "                     and the round-trip time\n"
	    "  sign --order ID --uid HEX [--out FILE]\n"
	    "                     get the device record of UID in order ID;\n"
	    "                     write it to FILE (or to stdout if not a\n"
	    "                     terminal)\n"
	    "  report --order ID --uid HEX --outcome OUTCOME [--detail TEXT]\n"
	    "                     tell how programming ended: programmed,\n"
	    "                     failed or verify-failed\n"
	    "  order ID           print the order's counters\n"
	    "  run --order ID --image FILE --target NAME --probe URL\n"
	    "      [--probe URL ...] [--count N] [--json]\n"
	    "                     program devices: one worker per probe\n"
	    "  read-uid --target NAME --probe URL\n"
	    "                     print the UID of the device on the probe\n"
	    "  probes [--json]    list attached CMSIS-DAP v2 USB probes and\n"
	    "                     their URLs (cmsis-dap://SERIAL)\n"
	    "\n"
	    "UIDs are hex, 1 to 32 bytes: 04A1B2C3, 0x04a1b2c3, 04:a1:b2:c3.\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE  configuration (default " DEFAULT_CONFIG ")\n"
	    "  -h, --help         this help (COMMAND --help: the command's)\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "Exit codes of sign, report, order and run (run: the reason to\n"
	    "stop the line first: 5, then 4/6, 3, 1, 9):\n");
#define EXIT_USAGE_LINE(name, val, text) fprintf(fp, "  %d  %s\n", val, text);
	EXIT_LIST(EXIT_USAGE_LINE)
#undef EXIT_USAGE_LINE
}

/* Exit code for the wire status of a failed call (table above). */
static int
exit_for_status(int status)
{
	switch (status) {
	case CS_STATUS_UNAVAILABLE:
	case CS_STATUS_DEADLINE_EXCEEDED:
		return EXIT_UNREACHABLE;
	case CS_STATUS_UNAUTHENTICATED:
	case CS_STATUS_PERMISSION_DENIED:
		return EXIT_DENIED;
	case CS_STATUS_RESOURCE_EXHAUSTED:
		return EXIT_QUOTA;
	case CS_STATUS_NOT_FOUND:
	case CS_STATUS_FAILED_PRECONDITION:
		return EXIT_ORDER;
	case CS_STATUS_INVALID_ARGUMENT:
		return EXIT_UID;
	case CS_STATUS_ALREADY_EXISTS:
		return EXIT_CLONE;
	default:
		return EXIT_ERROR;
	}
}

/* Exit code for a failed station_session_call(). */
static int
exit_for_call(int rv, const struct cs_rpc_result *res)
{
	/* A re-authentication that could not use the station's own files
	 * is a local configuration problem, whatever the wire said. */
	return rv == CS_ECONFIG ? EXIT_USAGE : exit_for_status(res->status);
}

/* Exit code for a failed station_session_open(). */
static int
exit_for_open(int rv)
{
	switch (rv) {
	case CS_ECONFIG:
	case CS_EPEERAUTH: /* the authority's certificate: ca, URL */
		return EXIT_USAGE;
	case CS_EUNAVAIL:
	case CS_ETIMEDOUT:
	case CS_ETLS:
	case CS_ECLOSED:
		return EXIT_UNREACHABLE;
	case CS_EUNAUTH:
	case CS_EPERM:
	case CS_ENOENT:
	case CS_EPRECOND:
		return EXIT_DENIED;
	default:
		return EXIT_ERROR;
	}
}

/* Open the session; prints why not and returns the exit code. */
static int
session_open(const struct station_config *cfg, station_session **s)
{
	char err[1024];
	int  rv;

	if ((rv = station_session_open(s, cfg, err, sizeof(err))) != CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return exit_for_open(rv);
	}
	return EXIT_OK;
}

/* --order: 1..ORDER_ID_MAX bytes. */
static int
check_order_id(const char *id)
{
	if (id == NULL || id[0] == '\0' || strlen(id) > ORDER_ID_MAX) {
		fprintf(stderr, "error: --order takes an order id of 1 to %u "
		    "bytes\n", ORDER_ID_MAX);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* --uid into uid/len, with a clear message when it is not one. */
static int
parse_uid_arg(const char *hex, uint8_t uid[STATION_UID_MAX], size_t *len)
{
	if (hex == NULL) {
		fprintf(stderr, "error: --uid is required\n");
		return EXIT_USAGE;
	}
	if (station_parse_uid(hex, uid, len) != CS_OK) {
		fprintf(stderr, "error: --uid '%s' is not a UID: give 1 to %u "
		    "bytes in hex, two digits a byte, optionally with a 0x "
		    "prefix and ':' or '-' between bytes (04A1B2C3, "
		    "04:a1:b2:c3)\n", hex, STATION_UID_MAX);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Lower-case hex of b into out (2 * len + 1 bytes). */
static const char *
hex_string(const uint8_t *b, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	}
	out[2 * len] = '\0';
	return out;
}

static void
print_order(const Countersign__V1__OrderStatus *o)
{
	printf("order=%s product=%" PRIu32 " quota=%" PRIu64 " issued=%"
	    PRIu64 " confirmed=%" PRIu64 " failed=%" PRIu64 " remaining=%"
	    PRIu64 " active=%s\n", o->order_id, o->product_id, o->quota,
	    o->issued, o->confirmed, o->failed, o->remaining,
	    o->active ? "yes" : "no");
}

static double
elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int
cmd_ping(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	cs_rpc_client *cli = NULL;
	long           count = 1;
	int            opt, rv;
	char          *end, err[512];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end != '\0' || count < 1 || count > 100000) {
				fprintf(stderr, "error: --count takes a "
				    "number from 1 to 100000\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] ping "
			    "[--count N]\n\nConnects to the authority named "
			    "in the configuration with this\nstation's "
			    "certificate and sends N pings (default 1).\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if ((rv = station_connect(cfg, &cli, err, sizeof(err))) != CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return EXIT_ERROR;
	}
	for (long i = 0; i < count; i++) {
		Countersign__V1__PingRequest  req =
		    COUNTERSIGN__V1__PING_REQUEST__INIT;
		Countersign__V1__PingResponse *rsp = NULL;
		struct cs_rpc_result           res;
		struct timespec                t0, t1;
		char                           ver[16], cipher[64];

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rv = cs_rpc_call(cli, &countersign__v1__authority__descriptor,
		    "Ping", &req.base, (ProtobufCMessage **)&rsp, &res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rv != CS_OK) {
			fprintf(stderr, "error: ping failed (%s): %s\n",
			    cs_status_name(res.status), res.message);
			cs_rpc_client_close(cli);
			return EXIT_ERROR;
		}
		if (!cs_tls_last_handshake(ver, sizeof(ver), cipher,
		    sizeof(cipher))) {
			snprintf(ver, sizeof(ver), "none");
			snprintf(cipher, sizeof(cipher), "none");
		}
		printf("authority=%s version=%s tls=%s cipher=%s "
		    "rtt_ms=%.3f\n", rsp->authority_id, rsp->version, ver,
		    cipher, elapsed_ms(&t0, &t1));
		protobuf_c_message_free_unpacked(&rsp->base, NULL);
	}
	cs_rpc_client_close(cli);
	return EXIT_OK;
}

static int
cmd_init(const struct station_config *cfg, int argc, char **argv)
{
	char csr[STATION_PATH_MAX], err[STATION_PATH_MAX + 256];
	int  rv;

	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		printf("usage: countersign-station [-c FILE] init\n\nMakes "
		    "this station's EC P-256 key at [station] key (mode\n"
		    "0600, never replaced) and a CSR beside it for "
		    "enrollment.\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "error: init takes no arguments\n");
		return EXIT_USAGE;
	}
	if ((rv = station_init(cfg, csr, sizeof(csr), err, sizeof(err))) !=
	    CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return EXIT_ERROR;
	}
	printf("key: %s\ncsr: %s\nnext: the OEM enrolls it with "
	    "countersign-admin station enroll --csr %s --name %s --cm CM "
	    "-o CERT, and [station] cert names the certificate\n",
	    cfg->key, csr, csr, cfg->name);
	return EXIT_OK;
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

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return CS_EIO;
		}
		p += w;
		len -= (size_t)w;
	}
	return CS_OK;
}

/*
 * Make ready to write, before asking for the record: a path that cannot
 * be written, or a terminal, is found out before the authority counts a
 * record against the order's quota.
 */
static int
record_out_begin(struct record_out *o, const char *path)
{
	int n;

	struct stat st;

	o->path   = path;
	o->fd     = -1;
	o->direct = false;
	if (path != NULL && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode)) {
			fprintf(stderr, "error: --out %s is a directory\n", path);
			return EXIT_USAGE;
		}
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0) {
			fprintf(stderr, "error: cannot open %s: %s\n", path,
			    strerror(errno));
			return EXIT_USAGE;
		}
		o->direct = true;
		return EXIT_OK;
	}
	if (path == NULL) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, "error: refusing to write binary to a "
			    "terminal; use --out FILE\n");
			return EXIT_USAGE;
		}
		o->fd = STDOUT_FILENO;
		return EXIT_OK;
	}
	n = snprintf(o->tmp, sizeof(o->tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
		fprintf(stderr, "error: --out path too long\n");
		return EXIT_USAGE;
	}
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (o->fd < 0) {
		fprintf(stderr, "error: cannot create %s: %s\n", o->tmp,
		    strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Drop a file that will not be completed; NULL-safe for stdout. */
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
record_out_commit(struct record_out *o, const uint8_t *rec, size_t len)
{
	const char *what = o->path == NULL ? "stdout"
	    : o->direct                    ? o->path
	                                   : o->tmp;

	if (write_all(o->fd, rec, len) != CS_OK) {
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
		fprintf(stderr, "warning: %s written but its directory "
		    "could not be synced: %s\n", o->path, strerror(errno));
	}
	return EXIT_OK;
fail:
	fprintf(stderr, "error: cannot write %s: %s\n", what,
	    strerror(errno));
	record_out_abort(o);
	return EXIT_ERROR;
}

/*
 * The authority's answer goes straight into a device: check that it is a
 * record of the right size for the UID that was asked for, so that a
 * mixed-up reply is never programmed.
 */
static int
check_record(const ProtobufCBinaryData *rec, const uint8_t *uid,
    size_t uid_len)
{
	if (rec->len < CS_RECORD_MIN_LEN || rec->len > CS_RECORD_MAX_LEN ||
	    rec->data[CS_RECORD_OFF_UID_LEN] != uid_len ||
	    memcmp(rec->data + CS_RECORD_OFF_UID, uid, uid_len) != 0) {
		fprintf(stderr, "error: the authority answered with a record "
		    "of %zu bytes that is not the record of this UID; "
		    "nothing written\n", rec->len);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* Sign RPC; on success the record is written and the line printed. */
static int
sign_and_write(station_session *s, const char *order, const uint8_t *uid,
    size_t uid_len, struct record_out *o)
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
	if ((rv = station_session_call(s, "Sign", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		fprintf(stderr, "error: %s\n", res.message);
		record_out_abort(o);
		return exit_for_call(rv, &res);
	}
	if ((rv = check_record(&rsp->record, uid, uid_len)) == EXIT_OK &&
	    (rv = record_out_commit(o, rsp->record.data, rsp->record.len)) ==
	    EXIT_OK) {
		fprintf(stderr, "signed order=%s uid=%s serial=%" PRIu64
		    " reissued=%s remaining=%" PRIu64 " bytes=%zu\n", order,
		    hex_string(uid, uid_len, hex), rsp->serial,
		    rsp->reissued ? "yes" : "no", rsp->remaining,
		    rsp->record.len);
	}
	record_out_abort(o);
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return rv;
}

static int
cmd_sign(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"uid", required_argument, NULL, 'u'},
	    {"out", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	station_session  *s = NULL;
	struct record_out o;
	const char       *order = NULL, *uid_hex = NULL, *out = NULL;
	uint8_t           uid[STATION_UID_MAX];
	size_t            uid_len = 0;
	int               opt, rv;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			order = optarg;
			break;
		case 'u':
			uid_hex = optarg;
			break;
		case 'f':
			out = optarg;
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] sign "
			    "--order ID --uid HEX [--out FILE]\n\nAsks the "
			    "authority for the device record of UID in order "
			    "ID and\nwrites it to FILE (atomically) or to "
			    "stdout; prints a summary\nline on stderr.  "
			    "Asking again for the same UID and order gives\n"
			    "the same record (reissued=yes).  Exit codes: "
			    "countersign-station --help.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s'\n",
		    argv[optind]);
		return EXIT_USAGE;
	}
	if ((rv = check_order_id(order)) != EXIT_OK ||
	    (rv = parse_uid_arg(uid_hex, uid, &uid_len)) != EXIT_OK ||
	    (rv = record_out_begin(&o, out)) != EXIT_OK) {
		return rv;
	}
	if ((rv = session_open(cfg, &s)) != EXIT_OK) {
		record_out_abort(&o);
		return rv;
	}
	rv = sign_and_write(s, order, uid, uid_len, &o);
	station_session_close(s);
	return rv;
}

/* ------------------------------------------------------------------ */
/* report, order                                                       */
/* ------------------------------------------------------------------ */

static int
parse_outcome(const char *s, Countersign__V1__Outcome *out)
{
	if (s == NULL) {
		fprintf(stderr, "error: --outcome is required\n");
		return EXIT_USAGE;
	}
	if (strcmp(s, "programmed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_PROGRAMMED;
	} else if (strcmp(s, "failed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_FAILED;
	} else if (strcmp(s, "verify-failed") == 0) {
		*out = COUNTERSIGN__V1__OUTCOME__OUTCOME_VERIFY_FAILED;
	} else {
		fprintf(stderr, "error: --outcome is programmed, failed or "
		    "verify-failed, not '%s'\n", s);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Report RPC with a prepared request; prints the order's line. */
static int
report_call(station_session *s, Countersign__V1__ReportRequest *req)
{
	Countersign__V1__ReportResponse *rsp = NULL;
	struct cs_rpc_result             res;
	int                              rv;

	if ((rv = station_session_call(s, "Report", &req->base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		fprintf(stderr, "error: %s\n", res.message);
		return exit_for_call(rv, &res);
	}
	rv = EXIT_OK;
	if (rsp->order != NULL) {
		print_order(rsp->order);
	} else {
		fprintf(stderr, "error: the authority's report reply has no "
		    "order status\n");
		rv = EXIT_ERROR;
	}
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return rv;
}

static int
cmd_report(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"uid", required_argument, NULL, 'u'},
	    {"outcome", required_argument, NULL, 'r'},
	    {"detail", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ReportRequest req =
	    COUNTERSIGN__V1__REPORT_REQUEST__INIT;
	Countersign__V1__Outcome outcome = 0;
	station_session         *s = NULL;
	const char *order = NULL, *uid_hex = NULL, *oc = NULL, *detail = "";
	uint8_t     uid[STATION_UID_MAX];
	size_t      uid_len = 0;
	int         opt, rv;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			order = optarg;
			break;
		case 'u':
			uid_hex = optarg;
			break;
		case 'r':
			oc = optarg;
			break;
		case 'd':
			detail = optarg;
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] report "
			    "--order ID --uid HEX\n    --outcome "
			    "programmed|failed|verify-failed [--detail TEXT]"
			    "\n\nTells the authority how programming UID "
			    "ended and prints the\norder's counters.  Exit "
			    "codes: countersign-station --help.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s'\n",
		    argv[optind]);
		return EXIT_USAGE;
	}
	if ((rv = check_order_id(order)) != EXIT_OK ||
	    (rv = parse_uid_arg(uid_hex, uid, &uid_len)) != EXIT_OK ||
	    (rv = parse_outcome(oc, &outcome)) != EXIT_OK) {
		return rv;
	}
	if (strlen(detail) > DETAIL_MAX) {
		fprintf(stderr, "error: --detail is longer than %u bytes\n",
		    DETAIL_MAX);
		return EXIT_USAGE;
	}
	if ((rv = session_open(cfg, &s)) != EXIT_OK) {
		return rv;
	}
	req.order_id = (char *)order;
	req.uid.data = uid;
	req.uid.len  = uid_len;
	req.outcome  = outcome;
	req.detail   = (char *)detail;
	rv           = report_call(s, &req);
	station_session_close(s);
	return rv;
}

/* GetOrder RPC; prints the order's line. */
static int
order_call(station_session *s, const char *order)
{
	Countersign__V1__GetOrderRequest   req =
	    COUNTERSIGN__V1__GET_ORDER_REQUEST__INIT;
	Countersign__V1__GetOrderResponse *rsp = NULL;
	struct cs_rpc_result               res;
	int                                rv;

	req.order_id = (char *)order;
	if ((rv = station_session_call(s, "GetOrder", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		fprintf(stderr, "error: %s\n", res.message);
		return exit_for_call(rv, &res);
	}
	rv = EXIT_OK;
	if (rsp->order != NULL) {
		print_order(rsp->order);
	} else {
		fprintf(stderr, "error: the authority's reply has no order "
		    "status\n");
		rv = EXIT_ERROR;
	}
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	return rv;
}

static int
cmd_order(const struct station_config *cfg, int argc, char **argv)
{
	station_session *s = NULL;
	int              rv;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		printf("usage: countersign-station [-c FILE] order ID\n\n"
		    "Prints the order's quota and counters as the authority "
		    "has them.\nExit codes: countersign-station --help.\n");
		return EXIT_OK;
	}
	if (argc != 2) {
		fprintf(stderr, "error: order takes one order id\n");
		return EXIT_USAGE;
	}
	if ((rv = check_order_id(argv[1])) != EXIT_OK ||
	    (rv = session_open(cfg, &s)) != EXIT_OK) {
		return rv;
	}
	rv = order_call(s, argv[1]);
	station_session_close(s);
	return rv;
}

/* ------------------------------------------------------------------ */
/* run, read-uid                                                       */
/* ------------------------------------------------------------------ */

/* Where target profiles are looked up by name. */
static const char *const target_dirs[] = {
    "/etc/countersign/targets",
    CS_TARGETS_DIR,
    NULL,
};

static int
load_target(const char *name, struct target *t)
{
	char err[1024];
	int  rv;

	if (name == NULL) {
		fprintf(stderr, "error: --target is required (a profile name, "
		    "e.g. lm3s6965, or a path to an .ini file)\n");
		return EXIT_USAGE;
	}
	if ((rv = target_load(t, name, target_dirs, err, sizeof(err))) !=
	    CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int
cmd_read_uid(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"probe", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct target t;
	const char   *tname = NULL, *url = NULL;
	probe        *p     = NULL;
	uint8_t       uid[32];
	char          hex[65], err[512];
	int           opt, rv;

	(void)cfg;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			tname = optarg;
			break;
		case 'p':
			url = optarg;
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] read-uid "
			    "--target NAME --probe URL\n\nConnects to the probe, "
			    "halts the device and prints its UID.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if ((rv = load_target(tname, &t)) != EXIT_OK) {
		return rv;
	}
	if (url == NULL) {
		fprintf(stderr, "error: --probe URL is required (sim:, "
		    "gdb://host:port, gdb+unix:///path)\n");
		return EXIT_USAGE;
	}
	if (probe_open(&p, url, 0, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "error: probe %s: %s\n", url, err);
		return EXIT_ERROR;
	}
	if (probe_read(p, t.uid_addr, uid, t.uid_len) != CS_OK) {
		fprintf(stderr, "error: reading the UID at 0x%08" PRIx32 ": %s\n",
		    t.uid_addr, probe_error(p));
		probe_close(p);
		return EXIT_ERROR;
	}
	probe_close(p);
	printf("%s\n", hex_string(uid, t.uid_len, hex));
	{
		bool ff = true, zero = true;

		for (uint32_t i = 0; i < t.uid_len; i++) {
			ff   = ff && uid[i] == 0xff;
			zero = zero && uid[i] == 0x00;
		}
		if (ff || zero) {
			fprintf(stderr, "warning: the UID reads as all 0x%s: "
			    "erased or unreadable memory, not a device UID; "
			    "check the probe connection and the target "
			    "profile\n", ff ? "FF" : "00");
			return EXIT_UID;
		}
	}
	return EXIT_OK;
}

static int
cmd_probes(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dap_usb_info *info = NULL;
	size_t               n    = 0;
	bool                 json = false;
	char                 err[512];
	int                  opt, rv;

	(void)cfg;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] probes "
			    "[--json]\n\nLists the CMSIS-DAP v2 probes on USB "
			    "and the --probe URL of each.  --json: one JSON "
			    "object per probe.\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if ((rv = dap_usb_list(&info, &n, err, sizeof(err))) != CS_OK) {
		fprintf(stderr, "error: %s\n", rv == CS_ENOMEM ?
		    cs_strerror(rv) : err);
		return EXIT_ERROR;
	}
	if (err[0] != '\0') {
		fprintf(stderr, "warning: %s\n", err);
	}
	if (n == 0 && !json) {
		fprintf(stderr, "no CMSIS-DAP v2 probe found\n");
	}
	for (size_t i = 0; i < n; i++) {
		const struct dap_usb_info *p = &info[i];

		if (json) {
			struct cs_json j;
			char           hex[8], url[sizeof(p->serial) + 16];

			cs_json_init(&j, stdout);
			cs_json_open(&j, NULL);
			cs_json_str(&j, "serial", p->serial);
			snprintf(hex, sizeof(hex), "%04x", p->vid);
			cs_json_str(&j, "vid", hex);
			snprintf(hex, sizeof(hex), "%04x", p->pid);
			cs_json_str(&j, "pid", hex);
			cs_json_str(&j, "product", p->product);
			cs_json_u64(&j, "packet_size", p->packet_size);
			cs_json_u64(&j, "bus", p->bus);
			cs_json_u64(&j, "address", p->address);
			if (p->serial[0] != '\0') {
				snprintf(url, sizeof(url), "cmsis-dap://%s",
				    p->serial);
				cs_json_str(&j, "url", url);
			} else {
				cs_json_null(&j, "url");
			}
			cs_json_close(&j);
			putchar('\n');
		} else {
			printf("%-24s %04x:%04x  %-32s %4u  %s%s\n",
			    p->serial[0] != '\0' ? p->serial : "(no serial)",
			    p->vid, p->pid, p->product, p->packet_size,
			    p->serial[0] != '\0' ? "cmsis-dap://" : "",
			    p->serial[0] != '\0' ? p->serial :
			                          "(no URL: no serial number)");
		}
	}
	free(info);
	return EXIT_OK;
}

static volatile sig_atomic_t run_stop;

/* The first SIGINT/SIGTERM finishes the devices in hand; a second one
 * ends the program at once (the default action). */
static void
on_stop_signal(int sig)
{
	run_stop = 1;
	signal(sig, SIG_DFL);
}

/* Parse a non-negative number with a range; prints why not. */
static int
parse_uint_arg(const char *opt, const char *s, unsigned long max,
    unsigned long *out)
{
	char         *end;
	unsigned long v;

	errno = 0;
	v     = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
		fprintf(stderr, "error: %s '%s': give a number from 0 to %lu\n",
		    opt, s, max);
		return EXIT_USAGE;
	}
	*out = v;
	return EXIT_OK;
}

/* The exit code of a run: the reason to stop the line first. */
static int
run_exit(const struct job_result *r)
{
	if (r->quota_exhausted) {
		return EXIT_QUOTA;
	}
	if (r->halt_status != 0) {
		return exit_for_status(r->halt_status);
	}
	if (r->authority_lost || r->unreported > 0) {
		return EXIT_UNREACHABLE;
	}
	if (r->failed > 0 || r->refused > 0) {
		return EXIT_ERROR;
	}
	if (r->short_of_count > 0 || r->stopped) {
		return EXIT_INCOMPLETE;
	}
	return EXIT_OK;
}

static int
cmd_run(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"image", required_argument, NULL, 'i'},
	    {"format", required_argument, NULL, 'f'},
	    {"base", required_argument, NULL, 'b'},
	    {"target", required_argument, NULL, 't'},
	    {"probe", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"retry-s", required_argument, NULL, 'r'},
	    {"next-device-s", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char       *probes[JOB_MAX_PROBES];
	size_t            nprobes = 0;
	const char       *order = NULL, *image_path = NULL, *tname = NULL;
	enum image_format fmt   = IMAGE_AUTO;
	unsigned long     base = 0, count = 0, retry = 0, next = 0;
	struct target     t;
	struct image      img;
	struct job_opts   jo;
	struct job_result res;
	station_session  *s    = NULL;
	bool              json = false;
	char              err[1024];
	int               opt, rv;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			order = optarg;
			break;
		case 'i':
			image_path = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "elf") == 0) {
				fmt = IMAGE_ELF;
			} else if (strcmp(optarg, "ihex") == 0) {
				fmt = IMAGE_IHEX;
			} else if (strcmp(optarg, "bin") == 0) {
				fmt = IMAGE_BIN;
			} else {
				fprintf(stderr, "error: --format is elf, ihex "
				    "or bin\n");
				return EXIT_USAGE;
			}
			break;
		case 'b':
			if (parse_uint_arg("--base", optarg, UINT32_MAX,
			        &base) != EXIT_OK) {
				return EXIT_USAGE;
			}
			break;
		case 't':
			tname = optarg;
			break;
		case 'p':
			if (nprobes == JOB_MAX_PROBES) {
				fprintf(stderr, "error: at most %u probes\n",
				    JOB_MAX_PROBES);
				return EXIT_USAGE;
			}
			probes[nprobes++] = optarg;
			break;
		case 'n':
			if (parse_uint_arg("--count", optarg, 1000000, &count) !=
			    EXIT_OK) {
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'r':
			if (parse_uint_arg("--retry-s", optarg, 86400, &retry) !=
			    EXIT_OK) {
				return EXIT_USAGE;
			}
			break;
		case 'w':
			if (parse_uint_arg("--next-device-s", optarg, 86400,
			        &next) != EXIT_OK) {
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] run --order "
			    "ID --image FILE [--format elf|ihex|bin --base ADDR]\n"
			    "       --target NAME --probe URL [--probe URL ...] "
			    "[--count N] [--json]\n"
			    "       [--retry-s S] [--next-device-s S]\n\n"
			    "Programs devices, one worker per probe: reads the "
			    "UID, gets its record\nfrom the authority, writes "
			    "image and record, reads them back, starts the\n"
			    "device and reports.  --count N: devices in all "
			    "(default: one per\nprobe; a worker then waits for "
			    "the next device on its probe).  --json:\none JSON "
			    "object per event on stdout.  Stops cleanly when "
			    "the quota\nruns out (exit 5).\n");
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if ((rv = check_order_id(order)) != EXIT_OK ||
	    (rv = load_target(tname, &t)) != EXIT_OK) {
		return rv;
	}
	if (nprobes == 0 || image_path == NULL) {
		fprintf(stderr, "error: --image FILE and at least one --probe "
		    "URL are required\n");
		return EXIT_USAGE;
	}
	if (image_load(&img, image_path, fmt, (uint32_t)base, err,
	        sizeof(err)) != CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return EXIT_USAGE;
	}
	if (image_check(&img, &t, err, sizeof(err)) != CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		image_free(&img);
		return EXIT_USAGE;
	}
	if ((rv = session_open(cfg, &s)) != EXIT_OK) {
		image_free(&img);
		return rv;
	}
	memset(&jo, 0, sizeof(jo));
	jo.json             = json;
	jo.session          = s;
	jo.order_id         = order;
	jo.target           = &t;
	jo.image            = &img;
	jo.probes           = probes;
	jo.nprobes          = nprobes;
	jo.count            = (unsigned)count;
	jo.probe_timeout_ms = 0;
	jo.retry_max_s      = (unsigned)retry;
	jo.next_device_s    = (unsigned)next;
	jo.events           = stdout;
	jo.progress         = !jo.json && isatty(STDERR_FILENO);
	jo.stop             = &run_stop;
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	rv = job_run(&jo, &res);
	station_session_close(s);
	image_free(&img);
	if (rv != CS_OK) {
		fprintf(stderr, "error: the job could not start: %s\n",
		    cs_strerror(rv));
		return EXIT_ERROR;
	}
	if (jo.json) {
		struct cs_json j;

		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "event", "summary");
		cs_json_u64(&j, "programmed", res.programmed);
		cs_json_u64(&j, "failed", res.failed);
		cs_json_u64(&j, "refused", res.refused);
		cs_json_u64(&j, "remaining", res.remaining);
		cs_json_bool(&j, "quota_exhausted", res.quota_exhausted);
		cs_json_bool(&j, "authority_lost", res.authority_lost);
		cs_json_u64(&j, "short_of_count", res.short_of_count);
		cs_json_u64(&j, "unreported", res.unreported);
		cs_json_close(&j);
		putchar('\n');
	}
	fprintf(stderr, "%s: %u programmed, %u failed, %u refused; %" PRIu64
	    " left in order %s\n",
	    res.quota_exhausted      ? "quota exhausted"
	    : res.halt_status != 0   ? "stopped by the authority's answer"
	    : res.authority_lost     ? "authority unreachable, stopped"
	    : res.stopped            ? "stopped on request"
	    : res.short_of_count > 0 ? "run ended early"
	                             : "run finished",
	    res.programmed, res.failed, res.refused, res.remaining, order);
	if (res.short_of_count > 0 && !res.quota_exhausted &&
	    res.halt_status == 0 && !res.authority_lost) {
		fprintf(stderr, "%u of the devices asked for (--count) were "
		    "never started: no device came on a probe in time\n",
		    res.short_of_count);
	}
	if (res.unreported > 0) {
		fprintf(stderr, "%u outcomes could not be reported to the "
		    "authority; tell the OEM\n", res.unreported);
	}
	return run_exit(&res);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static const struct command {
	const char *name;
	int (*fn)(const struct station_config *, int, char **);
	bool config; /* needs station.conf */
} commands[] = {
    {"init", cmd_init, true},
    {"ping", cmd_ping, true},
    {"sign", cmd_sign, true},
    {"report", cmd_report, true},
    {"order", cmd_order, true},
    {"run", cmd_run, true},
    {"read-uid", cmd_read_uid, false},
    {"probes", cmd_probes, false},
};

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			return &commands[i];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const struct command *cmd;
	struct station_config cfg;
	const char           *path = DEFAULT_CONFIG;
	cs_log_level          level = CS_LOG_WARN;
	char                  err[512];
	int                   opt, rv;

	/* Options before the command only: "+" stops at the first word. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("countersign-station %s\n", CS_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "countersign-station: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((cmd = find_command(argv[optind])) == NULL) {
		fprintf(stderr, "countersign-station: unknown command '%s'\n",
		    argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	/* COMMAND --help, and the commands that only talk to probes, need
	 * no configuration. */
	for (int i = optind + 1; i < argc && cmd->config; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			memset(&cfg, 0, sizeof(cfg));
			return cmd->fn(&cfg, argc - optind, argv + optind);
		}
	}
	if (!cmd->config) {
		memset(&cfg, 0, sizeof(cfg));
		cs_log_open("countersign-station", level, false);
		return cmd->fn(&cfg, argc - optind, argv + optind);
	}
	if ((rv = station_config_load(&cfg, path, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	cs_log_level_parse(cfg.log_level, &level);
	cs_log_open("countersign-station", level, false);
	signal(SIGPIPE, SIG_IGN);

	rv = cmd->fn(&cfg, argc - optind, argv + optind);
	station_config_free(&cfg);
	return rv;
}
