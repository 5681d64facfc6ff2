/*
 * admin_main.c - countersign-admin, the officer's command line for the
 * signing authority: orders and their quotas, station enrollment, signing
 * keys, admin tokens, device look-ups and the audit log.  Everything
 * except `ca init` is one call to the authority's Admin service
 * (admin.proto) over its local ipc socket; the authority checks every
 * request itself, so the tool only parses what the officer typed,
 * strictly, and prints replies.
 *
 * This file holds what the commands share (admin_cli.h): the global
 * options, the configuration and the connection, files and output
 * helpers, and the one command table (cs_cli.h) that drives dispatch,
 * the command list of --help and each command's --help.  The commands
 * themselves live in admin_cmd_*.c, one file a concern.
 *
 * Exit status: 0 success, 1 refused by the authority or I/O error, 2 usage
 * error, 3 audit chain broken, 4 the authority cannot be reached.
 */
#include "admin_cli.h"
#include "admin_service.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_err.h"
#include "cs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONFIG     "/etc/countersign/authority.conf"
#define TIMEOUT_MS_DEFAULT 5000u
/* Audit pages of 1000 events run to a few hundred KiB, over the RPC
 * default of 64 KiB: the authority answers up to ADMIN_MAX_MSG. */
#define ADMIN_REPLY_MAX    ADMIN_MAX_MSG

/* ------------------------------------------------------------------ */
/* Messages and arguments                                              */

int
admin_cli_fail(struct admin *a, const char *fmt, ...)
{
	char    text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return cs_cli_error(&a->cli, ADMIN_EXIT_FAIL, "%s", text);
}

int
admin_cli_num(struct admin *a, const struct cs_cli_cmd *cmd,
    const char *opt, const char *s, uint64_t lo, uint64_t hi,
    uint64_t *out)
{
	if (admin_parse_u64(s, lo, hi, out) != CS_OK) {
		return cs_cli_usage(&a->cli, cmd, "%s \"%s\": expected a "
		    "whole number from %" PRIu64 " to %" PRIu64, opt, s, lo,
		    hi);
	}
	return ADMIN_EXIT_OK;
}

bool
admin_cli_args_done(struct admin *a, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const char *optstring, int want, int *rv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	if ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) !=
	    -1) {
		*rv = cs_cli_other_opt(&a->cli, cmd, opt);
		return true;
	}
	*rv = cs_cli_positional(&a->cli, cmd, argc, argv, want);
	return *rv != ADMIN_EXIT_OK;
}

/* getopt's code for the one option (any value but 'h' and the short
 * name, which is a char). */
#define ONE_OPT 0x100

bool
admin_cli_one_opt_done(struct admin *a, const struct cs_cli_cmd *cmd,
    int argc, char **argv, const char *name, char short_name, char **value,
    int *rv)
{
	const struct option longopts[] = {
	    {name, required_argument, NULL, ONE_OPT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char optstring[4] = {short_name, ':', 'h', '\0'};
	int  opt;

	while ((opt = getopt_long(argc, argv,
	    short_name != 0 ? optstring : "h", longopts, NULL)) != -1) {
		if (opt != ONE_OPT && (short_name == 0 || opt != short_name)) {
			*rv = cs_cli_other_opt(&a->cli, cmd, opt);
			return true;
		}
		*value = optarg;
	}
	if ((*rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK) {
		return true;
	}
	/* Unset strings of a request are "", not NULL. */
	if (*value == NULL || (*value)[0] == '\0') {
		*rv = cs_cli_usage(&a->cli, cmd, "--%s is required", name);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Configuration and connection                                        */

int
admin_cli_config(struct admin *a)
{
	char err[512];

	if (a->cfg_loaded) {
		return ADMIN_EXIT_OK;
	}
	if (authority_config_load(&a->cfg, a->config_path, err,
	    sizeof(err)) != CS_OK) {
		return admin_cli_fail(a, "%s", err);
	}
	a->cfg_loaded = true;
	return ADMIN_EXIT_OK;
}

int
admin_cli_connect(struct admin *a)
{
	char err[512];
	int  rv;

	if (a->c != NULL) {
		return ADMIN_EXIT_OK;
	}
	if (a->url == NULL) {
		if ((rv = admin_cli_config(a)) != ADMIN_EXIT_OK) {
			return rv;
		}
		a->url = a->cfg.admin_listen;
	}
	struct cs_rpc_client_opts o = {
	    .url        = a->url,
	    .wait       = true,
	    .timeout_ms = a->timeout_ms,
	    .max_msg    = ADMIN_REPLY_MAX,
	};
	rv = cs_rpc_client_open(&a->c, &o, err, sizeof(err));
	if (rv == CS_EUNAVAIL) {
		return cs_cli_error(&a->cli, ADMIN_EXIT_UNREACHABLE, "cannot "
		    "reach the authority at %s: %s\nIs countersign-authority "
		    "running?  %s%s%s\nAre you root or the authority's user "
		    "(the socket's owner)?", a->url, err,
		    a->cfg_loaded ? "Is admin_listen in " : "Is --url right?",
		    a->cfg_loaded ? a->config_path : "",
		    a->cfg_loaded ? " right?" : "");
	}
	if (rv != CS_OK) {
		return admin_cli_fail(a, "%s", err);
	}
	return ADMIN_EXIT_OK;
}

int
admin_cli_call(struct admin *a, const char *method, const void *req,
    void *reply)
{
	struct cs_rpc_result res = {0};
	int                  rv;

	if ((rv = admin_cli_connect(a)) != ADMIN_EXIT_OK) {
		return rv;
	}
	rv = cs_rpc_call(a->c, &countersign__v1__admin__descriptor, method,
	    req, (ProtobufCMessage **)reply, &res);
	if (rv != CS_OK) {
		return admin_cli_fail(a, "%s", res.message[0] != '\0'
		    ? res.message : cs_strerror(rv));
	}
	return ADMIN_EXIT_OK;
}

void
admin_cli_free(void *reply)
{
	if (reply != NULL) {
		protobuf_c_message_free_unpacked(reply, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* Files and output                                                    */

int
admin_cli_create(struct admin *a, const char *path, int *fd)
{
	if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) < 0) {
		if (errno == EEXIST) {
			return admin_cli_fail(a, "%s exists; it is not "
			    "overwritten: move it away or choose another "
			    "name", path);
		}
		return admin_cli_fail(a, "cannot create %s: %s", path,
		    strerror(errno));
	}
	/* The umask must not make a certificate unreadable to others. */
	fchmod(*fd, 0644);
	return ADMIN_EXIT_OK;
}

int
admin_cli_write(struct admin *a, int fd, const char *path, const void *p,
    size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return admin_cli_fail(a, "cannot write %s: %s", path,
			    strerror(errno));
		}
		b += w;
		n -= (size_t)w;
	}
	return ADMIN_EXIT_OK;
}

void
admin_cli_hex(FILE *fp, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(fp, "%02x", p[i]);
	}
}

const char *
admin_cli_time(uint64_t unix_s, char out[ADMIN_TIME_LEN])
{
	if (unix_s == 0) {
		return "never";
	}
	admin_time_iso(unix_s * 1000u, out);
	/* Whole seconds: drop the ".000" the millisecond form carries. */
	char *dot = strchr(out, '.');
	if (dot != NULL) {
		memcpy(dot, "Z", 2);
	}
	return out;
}

void
admin_cli_list_begin(struct cs_json *j, const char *key)
{
	cs_json_init(j, stdout);
	cs_json_open(j, NULL);
	cs_json_array(j, key);
}

void
admin_cli_list_end(struct cs_json *j)
{
	cs_json_end(j);
	cs_json_close(j);
	putchar('\n');
}

/* ------------------------------------------------------------------ */
/* Command table and main                                              */

static const struct cs_cli_cmd commands[] = {
    {"ca init", "[--cn NAME] [--days N]",
	"Create the station CA's key in the HSM and its certificate.",
	"A P-256 key in the HSM ([hsm] station_ca_key) and its self-signed\n"
	"certificate at [tls] station_ca.  Local: needs the configuration "
	"and\nthe HSM, not a running authority.  --cn defaults to "
	"\"<authority id>\nstation CA\", --days to 3650.\n",
	admin_cmd_ca_init},
    {"ca crl", "[-o FILE]",
	"Print (or write to FILE) the station CA's current CRL.",
	"The CRL lists every disabled station's certificate.  The station "
	"port\nrefuses those certificates at TLS; check it with `openssl crl "
	"-in FILE\n-CAfile <station_ca> -noout -text`.\n",
	admin_cmd_ca_crl},
    {"station enroll", "--csr FILE --name NAME --cm CM -o CERT [--days N]",
	"Issue a station certificate from a station's CSR.",
	"The CSR is the one `countersign-station init` made; the certificate "
	"is\nbound to NAME and the contract manufacturer CM and written to "
	"CERT\n(never overwritten).  --days: validity, default 365.\n",
	admin_cmd_station_enroll},
    {"station list", "", "List the enrolled stations.", NULL,
	admin_cmd_station_list},
    {"station disable", "NAME",
	"Refuse the station from now on (sign and report).", NULL,
	admin_cmd_station_disable},
    {"station enable", "NAME", "Accept a disabled station again.", NULL,
	admin_cmd_station_enable},
    {"key add", "--label LABEL",
	"Make a signing key of the HSM known to the authority.",
	"The key is made with countersign-keytool keygen; the authority "
	"reads\nits public key and key id from the HSM.\n",
	admin_cmd_key_add},
    {"key list", "", "List the signing keys: algorithm, key id, label.",
	NULL, admin_cmd_key_list},
    {"token create", "--name NAME --role viewer|officer",
	"Make an admin token for the web console and scripts.",
	"A bearer token.  viewer: read-only; officer: may change orders and\n"
	"stations.  The token is printed once; the authority keeps only its"
	"\nSHA-256.\n",
	admin_cmd_token_create},
    {"token list", "",
	"List the admin tokens: role, creation day, state, name.", NULL,
	admin_cmd_token_list},
    {"token disable", "--name NAME", "Disable the tokens called NAME.",
	"Scripts using them are refused at once; console sessions opened "
	"with\nthem end at their next request.\n",
	admin_cmd_token_disable},
    {"order create",
	"--id ID --product N --key LABEL --quota Q\n"
	"        --uid-len BYTES [--cm CM]... [--expires YYYY-MM-DD]\n"
	"        [--target NAME [--require-lock] [--firmware FILE\n"
	"        [--firmware-format elf|ihex|bin] [--firmware-base ADDR]\n"
	"        [--digest-only]] [--targets-dir DIR]]",
	"Create a production order.",
	"--cm (repeatable) limits it to those contract manufacturers "
	"(default:\nany).  --expires: the last UTC day it is valid.  "
	"--quota 1..2^32,\n--uid-len 1..32.\n"
	"--target: the target profile (by name, from --targets-dir, else\n"
	"the configuration's [firmware] targets_dir, else\n"
	"/etc/countersign/targets, then the installed ones; the authority\n"
	"loads its own copy by the same name).  --firmware FILE (ELF, Intel\n"
	"HEX, or raw binary with --firmware-format bin --firmware-base ADDR)\n"
	"is checked against the target; the authority then holds it,\n"
	"encrypted under the HSM's firmware key ([hsm] firmware_key), and\n"
	"stations fetch it; the records bind its firmware digest.\n"
	"--digest-only binds the digest without handing over the image.\n"
	"--require-lock: devices must be reported locked (the profile needs\n"
	"a [protect] section).\n",
	admin_cmd_order_create},
    {"order firmware", "ID --replace FILE [--firmware-format elf|ihex|bin]\n"
	"        [--firmware-base ADDR] [--targets-dir DIR] | ID --withdraw",
	"Replace or withdraw the image an order holds.",
	"--replace: the new image (checked against the order's target) "
	"becomes\nthe next version under a new key; the old one is "
	"deleted, and the\norder binds the new digest from now on.  "
	"--withdraw: the image is\ndeleted and nothing more is signed for "
	"the order (a later --replace\nbrings it back).  Both are "
	"audited.\n",
	admin_cmd_order_firmware},
    {"order list", "", "List the orders.", NULL, admin_cmd_order_list},
    {"order show", "ID",
	"Show an order: counts, quota, CMs, expiry, firmware, target, lock.",
	NULL, admin_cmd_order_show},
    {"order quota", "ID +N|-N",
	"Raise or lower an order's quota by N (the sign is required).", NULL,
	admin_cmd_order_quota},
    {"order close", "ID",
	"Close an order for good: nothing more is signed for it.", NULL,
	admin_cmd_order_close},
    {"device show", "UID [--order ID] [--record-out FILE]",
	"Show the records of a device UID.",
	"UID in hex; 0x prefix and colons allowed.  --record-out writes the "
	"raw\nrecord of the one match (give --order when the UID is in "
	"several\norders).\n",
	admin_cmd_device_show},
    {"audit list", "[--since SEQ] [--limit N]",
	"List audit events after SEQ: seq time actor type k=v...", NULL,
	admin_cmd_audit_list},
    {"audit verify", "",
	"Check the audit log's hash chain (exit status 3: broken).", NULL,
	admin_cmd_audit_verify},
    {"audit export", "--format jsonl|csv [--since SEQ] [-o FILE]",
	"Export the audit log as JSON lines or CSV.",
	"The whole log, or the part after SEQ, as JSON lines or CSV (RFC "
	"4180)\nto FILE, written through FILE.tmp, or to stdout.\n",
	admin_cmd_audit_export},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " ADMIN_PROG " [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "The officer's command line of the Countersign signing "
	    "authority.\n"
	    "\n"
	    "Commands (COMMAND --help for each):\n");
	cs_cli_list(fp, commands, NCOMMANDS);
	fprintf(fp,
	    "\n"
	    "Global options (before the command):\n"
	    "  -c, --config FILE    authority configuration (default\n"
	    "                       " DEFAULT_CONFIG ")\n"
	    "      --url URL        the Admin socket, ipc:///path (default: "
	    "admin_listen)\n"
	    "      --timeout-ms MS  per call (default 5000)\n"
	    "      --json           print JSON; errors too, as one object\n"
	    "                       {\"error\":TEXT,\"exit\":N} on stdout\n"
	    "  -h, --help           this help\n"
	    "  -V, --version        print the version\n"
	    "\n"
	    "Exit status: 0 success, 1 refused or I/O error, 2 usage error, "
	    "3 audit\nchain broken, 4 the authority cannot be reached.\n");
}

/* Only ipc:// for now: the Admin service does not listen on TLS yet. */
static int
check_url(struct admin *a, const char *url)
{
	if (strncmp(url, "tls+tcp://", 10) == 0) {
		return cs_cli_usage(&a->cli, NULL, "--url %s: the authority's "
		    "Admin service does not serve tls+tcp:// yet; run "
		    ADMIN_PROG " on the authority's host with its ipc:// "
		    "socket", url);
	}
	if (strncmp(url, "ipc://", 6) != 0 || url[6] == '\0') {
		return cs_cli_usage(&a->cli, NULL, "--url %s: expected "
		    "ipc:///path", url);
	}
	return ADMIN_EXIT_OK;
}

/*
 * The global options.  Their values are checked after the loop, so that
 * --json anywhere among them also makes these errors JSON.  Returns
 * ADMIN_EXIT_OK to run the command at argv[optind], or *done set and the
 * exit status (after --help and --version too).
 */
static int
global_opts(struct admin *a, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"url", required_argument, NULL, 'u'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *timeout = NULL;
	bool        help = false, version = false, bad = false;
	uint64_t    t;
	int         opt, rv;

	*done = true;
	/* "+" stops at the command. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'c':
			a->config_path = optarg;
			break;
		case 'u':
			a->url = optarg;
			break;
		case 't':
			timeout = optarg;
			break;
		case 'j':
			a->cli.json = true;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			version = true;
			break;
		default:
			bad = true; /* getopt said which */
			break;
		}
	}
	if (bad) {
		return cs_cli_usage(&a->cli, NULL, "bad global option");
	}
	if (help) {
		usage(stdout);
		return ADMIN_EXIT_OK;
	}
	if (version) {
		printf(ADMIN_PROG " %s\n", CS_VERSION);
		return ADMIN_EXIT_OK;
	}
	if (a->url != NULL && (rv = check_url(a, a->url)) != ADMIN_EXIT_OK) {
		return rv;
	}
	if (timeout != NULL) {
		if (admin_parse_u64(timeout, 1, CS_RPC_MAX_DEADLINE_MS, &t) !=
		    CS_OK) {
			return cs_cli_usage(&a->cli, NULL, "--timeout-ms "
			    "\"%s\": expected 1 to %u", timeout,
			    CS_RPC_MAX_DEADLINE_MS);
		}
		a->timeout_ms = (uint32_t)t;
	}
	if (optind >= argc) {
		usage(stderr);
		return cs_cli_usage(&a->cli, NULL, "no command given");
	}
	*done = false;
	return ADMIN_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct admin a = {
	    .cli = {.prog = ADMIN_PROG, .usage_code = ADMIN_EXIT_USAGE},
	    .config_path = DEFAULT_CONFIG,
	    .timeout_ms  = TIMEOUT_MS_DEFAULT,
	};
	bool done;
	int  rv;

	rv = global_opts(&a, argc, argv, &done);
	if (done) {
		return rv;
	}
	/* The HSM shim and the RPC layer log only what matters here. */
	cs_log_open(ADMIN_PROG, CS_LOG_WARN, false);
	rv = cs_cli_dispatch(&a.cli, commands, NCOMMANDS, &a, argc - optind,
	    argv + optind);
	cs_rpc_client_close(a.c);
	if (a.cfg_loaded) {
		authority_config_free(&a.cfg);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* Not through cs_cli: stdout is what failed. */
		fprintf(stderr, "error: cannot write the output: %s\n",
		    strerror(errno));
		return rv == ADMIN_EXIT_OK ? ADMIN_EXIT_FAIL : rv;
	}
	return rv;
}
