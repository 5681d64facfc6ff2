/*
 * main.c - countersign-station, the agent on a contract manufacturer's
 * programming PC.  This file is the command line: the one command table
 * (dispatch, the --help list and each command's --help come from it), the
 * global options, the exit codes and the set-up every command shares
 * (station_cli.h).  The commands live in station_cmd_sign.c and
 * station_cmd_run.c, the session with the authority in station_session.c.
 *
 * Exit codes (STATION_EXIT_LIST) and the wire status behind each:
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
 *   9     run: fewer devices than --count          -
 *   10    run: the image or target is not the      -
 *         order's (checked before any Sign)
 *
 * While the session is being made (before the command's own call) a
 * refusal (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND,
 * FAILED_PRECONDITION) is 4: it is about the station, not an order or a
 * UID.  ping and init exit 0, 1 or 2.
 */
#include "cs_err.h"
#include "cs_log.h"
#include "station_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/countersign/station.conf"

/* Longest order id: the authority's limit (STORE_ORDER_ID_MAX). */
#define ORDER_ID_MAX 64u

static const struct cs_cli_cmd commands[] = {
    {"init", "",
	"make this station's key ([station] key) and a CSR beside it",
	"Makes this station's EC P-256 key at [station] key (mode 0600, "
	"never\nreplaced) and a CSR beside it for enrollment.\n",
	station_cmd_init},
    {"ping", "[--count N]",
	"connect to the authority; print its id, TLS version and round trip",
	"Connects to the authority named in the configuration with this\n"
	"station's certificate and sends N pings (default 1, at most "
	"100000).\n",
	station_cmd_ping},
    {"sign", "--order ID --uid HEX [--out FILE]\n      "
	"[--firmware-sha256 HEX]",
	"get the device record of UID in order ID",
	"Asks the authority for the device record of UID in order ID and\n"
	"writes it to FILE (atomically) or to stdout if that is not a "
	"terminal;\nprints a summary line on stderr.  Asking again for the "
	"same UID and\norder gives the same record (reissued=yes).  An "
	"order that binds a\nfirmware digest signs only for a station that "
	"names the same digest\n(--firmware-sha256: the digest of the image "
	"it programs, docs/record-format.md).\nExit codes: "
	"countersign-station --help.\n",
	station_cmd_sign},
    {"report",
	"--order ID --uid HEX --outcome OUTCOME [--detail TEXT]\n      "
	"[--locked]",
	"tell how programming ended: programmed, failed or verify-failed",
	"Tells the authority how programming UID ended (OUTCOME is "
	"programmed,\nfailed or verify-failed; --detail at most 255 printable "
	"ASCII characters; --locked: the device's lock was applied and\n"
	"verified) and prints the\norder's counters.  Exit codes: countersign-station "
	"--help.\n",
	station_cmd_report},
    {"order", "ID", "print the order's counters",
	"Prints the order's quota and counters as the authority has them.\n"
	"Exit codes: countersign-station --help.\n",
	station_cmd_order},
    {"run",
	"--order ID [--image FILE\n"
	"      [--format elf|ihex|bin --base ADDR]] --target NAME\n"
	"      --probe URL [--probe URL ...] [--count N] [--json]\n"
	"      [--retry-s S] [--next-device-s S]",
	"program devices: one worker per probe",
	"Programs devices, one worker per probe: reads the UID, gets its "
	"record\nfrom the authority, writes image and record, reads them "
	"back, starts the\ndevice, locks it if its profile says how, and "
	"reports.\n"
	"The order decides the firmware: an order whose image the authority "
	"holds\ntakes no --image (the station fetches the image into memory, "
	"locked,\nnever written to disk); an order that binds a firmware "
	"digest takes only\nan --image with that digest (else exit 10, "
	"before anything is signed or\nwritten); an order made for a target "
	"takes only that --target; an order\nthat requires the lock only a "
	"profile that can lock.\n"
	"--count N: devices in all (default: one per probe; a worker then "
	"waits\nfor the next device on its probe).  --json: one JSON object "
	"per event\non stdout, and an error as {\"error\":\"TEXT\",\"exit\":N}."
	"  Stops\ncleanly when the quota runs out (exit 5).\n",
	station_cmd_run},
    {"read-uid", "--target NAME --probe URL",
	"print the UID of the device on the probe",
	"Connects to the probe, halts the device and prints its UID.\n",
	station_cmd_read_uid},
    {"probes", "[--json]",
	"list attached CMSIS-DAP v2 USB probes and their URLs",
	"Lists the CMSIS-DAP v2 probes on USB and the --probe URL of each\n"
	"(cmsis-dap://SERIAL).  --json: one JSON object per probe, and an "
	"error\nas {\"error\":\"TEXT\",\"exit\":N}.\n",
	station_cmd_probes},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: countersign-station [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "The Countersign station agent.\n"
	    "\n"
	    "Commands:\n");
	cs_cli_list(fp, commands, NCOMMANDS);
	fprintf(fp,
	    "\n"
	    "UIDs are hex, 1 to 32 bytes: 04A1B2C3, 0x04a1b2c3, 04:a1:b2:c3.\n"
	    "\n"
	    "Global options:\n"
	    "  -c, --config FILE  configuration (default " DEFAULT_CONFIG ")\n"
	    "  -h, --help         this help (COMMAND --help: the command's)\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "Exit codes of sign, report, order and run (run: the reason to\n"
	    "stop the line first: 10 and 2 before it starts; then 5, 4/6, 3,\n"
	    "1, 9):\n");
#define STATION_EXIT_LINE(name, val, text)                                    \
	fprintf(fp, "  %d  %s\n", val, text);
	STATION_EXIT_LIST(STATION_EXIT_LINE)
#undef STATION_EXIT_LINE
}

/* ------------------------------------------------------------------ */
/* The set-up every command shares                                     */
/* ------------------------------------------------------------------ */

/* Load station.conf and open the log at its level. */
static int
load_config(struct station_cli *st)
{
	cs_log_level level = CS_LOG_WARN;
	char         err[512];

	if (station_config_load(&st->cfg, st->config_path, err,
	    sizeof(err)) != 0) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "%s", err);
	}
	st->cfg_loaded = true;
	cs_log_level_parse(st->cfg.log_level, &level);
	cs_log_open(st->cli.prog, level, false);
	signal(SIGPIPE, SIG_IGN);
	return EXIT_OK;
}

int
station_cli_begin(struct station_cli *st, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const struct option *longopts, int npos,
    enum station_needs needs, struct station_args *a)
{
	bool bad = false, too_many = false;
	int  opt, rv;

	memset(a, 0, sizeof(*a));
	/* Every value is kept and checked after the loop, so that a --json
	 * anywhere among the options shapes even the first error. */
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			a->order = optarg;
			break;
		case 'u':
			a->uid = optarg;
			break;
		case 'f':
			a->out = optarg;
			break;
		case 'r':
			a->outcome = optarg;
			break;
		case 'd':
			a->detail = optarg;
			break;
		case 'i':
			a->image = optarg;
			break;
		case 'F':
			a->format = optarg;
			break;
		case 'b':
			a->base = optarg;
			break;
		case 't':
			a->target = optarg;
			break;
		case 'n':
			a->count = optarg;
			break;
		case 'R':
			a->retry_s = optarg;
			break;
		case 'w':
			a->next_device_s = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'S':
			a->fw_sha256 = optarg;
			break;
		case 'L':
			a->locked = true;
			break;
		case 'h':
			a->help = true;
			break;
		case 'p':
			if (a->nprobes == JOB_MAX_PROBES) {
				too_many = true;
			} else {
				a->probes[a->nprobes++] = optarg;
			}
			break;
		default:
			bad = true; /* getopt said what */
			break;
		}
	}
	st->cli.json = a->json;
	if (bad || a->help) {
		return cs_cli_other_opt(&st->cli, cmd, bad ? '?' : 'h');
	}
	if (too_many) {
		return cs_cli_usage(&st->cli, cmd, "at most %u probes",
		    JOB_MAX_PROBES);
	}
	if ((rv = cs_cli_positional(&st->cli, cmd, argc, argv, npos)) != 0) {
		return rv;
	}
	if (needs == STATION_CONFIG) {
		return load_config(st);
	}
	cs_log_open(st->cli.prog, CS_LOG_WARN, false);
	return EXIT_OK;
}

int
station_cli_number(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const char *opt, const char *text, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char         *end;
	unsigned long v;

	errno = 0;
	v     = strtoul(text, &end, 0);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    v < min || v > max) {
		return cs_cli_usage(&st->cli, cmd, "%s '%s': give a number "
		    "from %lu to %lu", opt, text, min, max);
	}
	*out = v;
	return EXIT_OK;
}

int
station_cli_order_id(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const char *id)
{
	if (id == NULL || id[0] == '\0' || strlen(id) > ORDER_ID_MAX) {
		return cs_cli_usage(&st->cli, cmd, "--order takes an order id "
		    "of 1 to %u bytes", ORDER_ID_MAX);
	}
	return EXIT_OK;
}

int
station_cli_order_uid(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const struct station_args *a, uint8_t uid[STATION_UID_MAX], size_t *len)
{
	const char *hex = a->uid;
	int         rv;

	if ((rv = station_cli_order_id(st, cmd, a->order)) != EXIT_OK) {
		return rv;
	}
	if (hex == NULL) {
		return cs_cli_usage(&st->cli, cmd, "--uid is required");
	}
	if (station_parse_uid(hex, uid, len) != CS_OK) {
		return cs_cli_usage(&st->cli, cmd, "--uid '%s' is not a UID: "
		    "give 1 to %u bytes in hex, two digits a byte, optionally "
		    "with a 0x prefix and ':' or '-' between bytes (04A1B2C3, "
		    "04:a1:b2:c3)", hex, STATION_UID_MAX);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Exit codes                                                          */
/* ------------------------------------------------------------------ */

int
station_cli_exit_for_status(int status)
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

int
station_cli_call_failed(struct station_cli *st, int rv,
    const struct cs_rpc_result *res)
{
	/* A re-authentication that could not use the station's own files
	 * is a local configuration problem, whatever the wire said. */
	return cs_cli_error(&st->cli, rv == CS_ECONFIG ? EXIT_USAGE :
	    station_cli_exit_for_status(res->status), "%s", res->message);
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

int
station_cli_session(struct station_cli *st, station_session **s)
{
	char err[1024];
	int  rv;

	if ((rv = station_session_open(s, &st->cfg, err, sizeof(err))) !=
	    CS_OK) {
		return cs_cli_error(&st->cli, exit_for_open(rv), "%s", err);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Output shared by the commands                                       */
/* ------------------------------------------------------------------ */

const char *
station_cli_hex(const uint8_t *b, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	}
	out[2 * len] = '\0';
	return out;
}

void
station_cli_print_order(const Countersign__V1__OrderStatus *o)
{
	char fw[24];

	printf("order=%s product=%" PRIu32 " quota=%" PRIu64 " issued=%"
	    PRIu64 " confirmed=%" PRIu64 " failed=%" PRIu64 " remaining=%"
	    PRIu64 " active=%s", o->order_id, o->product_id, o->quota,
	    o->issued, o->confirmed, o->failed, o->remaining,
	    o->active ? "yes" : "no");
	/* What a run of it needs: which firmware, which part, the lock. */
	if (o->firmware_held) {
		snprintf(fw, sizeof(fw), "held:v%" PRIu32, o->firmware_version);
	} else {
		snprintf(fw, sizeof(fw), "%s", o->firmware_withdrawn
		        ? "withdrawn"
		    : o->firmware_sha256.len != 0 ? "digest"
		                                  : "none");
	}
	printf(" firmware=%s", fw);
	if (o->firmware_sha256.len == 32) {
		char hex[17];

		printf(" firmware_sha256=%s...",
		    station_cli_hex(o->firmware_sha256.data, 8, hex));
	}
	printf(" target=%s lock=%s unlocked=%" PRIu64 "\n",
	    o->target != NULL && o->target[0] != '\0' ? o->target : "any",
	    o->require_lock ? "required" : "not-required", o->unlocked);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli st = {
	    .cli         = {.prog = "countersign-station",
	        .usage_code = EXIT_USAGE},
	    .config_path = DEFAULT_CONFIG,
	};
	int opt, rv;

	/* Options before the command only: "+" stops at the first word. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'c':
			st.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("countersign-station %s\n", CS_VERSION);
			return EXIT_OK;
		default:
			return cs_cli_usage(&st.cli, NULL, "bad global "
			    "option");
		}
	}
	rv = cs_cli_dispatch(&st.cli, commands, NCOMMANDS, &st, argc - optind,
	    argv + optind);
	if (st.cfg_loaded) {
		station_config_free(&st.cfg);
	}
	return rv;
}
