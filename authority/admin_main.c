/*
 * admin_main.c - countersign-admin, the officer's command line for the
 * signing authority: orders and their quotas, station enrollment, signing
 * keys, device look-ups and the audit log.  Everything except `ca init`
 * is one call to the authority's Admin service (admin.proto) over its
 * local ipc socket; the authority checks every request itself, so this
 * file only parses what the officer typed, strictly, and prints replies.
 *
 * `ca init` is local on purpose: the station CA must exist before the
 * authority can start its station listener, so it cannot be asked of the
 * authority.
 *
 * Exit status: 0 success, 1 refused by the authority or I/O error, 2 usage
 * error, 3 audit chain broken, 4 the authority cannot be reached.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "admin_format.h"
#include "cs_json.h"
#include "admin_service.h"
#include "authority_config.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "station_ca.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG           "countersign-admin"
#define DEFAULT_CONFIG "/etc/countersign/authority.conf"

enum {
	EXIT_OK          = 0,
	EXIT_FAIL        = 1, /* refused by the authority, or I/O */
	EXIT_USAGE       = 2,
	EXIT_BROKEN      = 3, /* audit chain broken */
	EXIT_UNREACHABLE = 4,
};

#define TIMEOUT_MS_DEFAULT 5000u
/* Audit pages of 1000 events run to a few hundred KiB, over the RPC
 * default of 64 KiB: the authority answers up to ADMIN_MAX_MSG. */
#define ADMIN_REPLY_MAX    ADMIN_MAX_MSG
#define AUDIT_PAGE         1000u
#define AUDIT_LIMIT_MAX    AUDIT_PAGE
#define UID_MAX            32u
#define QUOTA_MAX          ((uint64_t)1 << 32)
/* The station CA's lifetime: the library enforces its own rules; this
 * only stops a typo of a few extra digits. */
#define CA_DAYS_MAX        36500u
#define FIRMWARE_CHUNK     65536u

/* What every command shares: the global options and, once made, the
 * connection. */
struct admin {
	const char             *config_path;
	const char             *url; /* --url, or the config's admin_listen */
	bool                    json;
	uint32_t                timeout_ms;
	struct authority_config cfg;
	bool                    cfg_loaded;
	cs_rpc_client          *c;
};

struct cmd {
	const char *group;
	const char *verb;
	int (*fn)(struct admin *a, const struct cmd *cmd, int argc,
	    char **argv);
	const char *help; /* synopsis and description, for --help */
};

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "error: ..." and return EXIT_FAIL. */
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

static int
usage_fail(const struct cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Same for usage errors: EXIT_USAGE and a pointer to the right --help. */
static int
usage_fail(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd != NULL) {
		fprintf(stderr, "\n(see " PROG " %s %s --help)\n", cmd->group,
		    cmd->verb);
	} else {
		fputs("\n(see " PROG " --help)\n", stderr);
	}
	return EXIT_USAGE;
}

/* The end of every getopt loop: --help, or an option getopt rejected
 * (it has already said which). */
static int
other_opt(const struct cmd *cmd, int opt)
{
	if (opt == 'h') {
		printf("usage: " PROG " [GLOBAL OPTIONS] %s %s", cmd->group,
		    cmd->help);
		return EXIT_OK;
	}
	return usage_fail(cmd, "bad option");
}

/* Check that exactly want positional arguments are left. */
static int
positional(const struct cmd *cmd, int argc, char **argv, int want)
{
	if (argc - optind > want) {
		return usage_fail(cmd, "unexpected argument \"%s\"",
		    argv[optind + want]);
	}
	if (argc - optind < want) {
		return usage_fail(cmd, "missing argument");
	}
	return EXIT_OK;
}

static int
parse_num(const struct cmd *cmd, const char *opt, const char *s,
    uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (admin_parse_u64(s, lo, hi, out) != CS_OK) {
		return usage_fail(cmd, "%s \"%s\": expected a whole number "
		    "from %" PRIu64 " to %" PRIu64, opt, s, lo, hi);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Configuration and connection                                        */

static int
load_config(struct admin *a)
{
	char err[512];

	if (a->cfg_loaded) {
		return EXIT_OK;
	}
	if (authority_config_load(&a->cfg, a->config_path, err,
	    sizeof(err)) != CS_OK) {
		return fail("%s", err);
	}
	a->cfg_loaded = true;
	return EXIT_OK;
}

/*
 * Connect once, waiting for the connection so that a stopped authority is
 * reported as such, with exit status 4.  A failure of a later call is
 * reported with the message the RPC layer or the authority gave (status
 * 1): the RPC client does not tell a lost connection from an authority
 * answering UNAVAILABLE, and after a successful connect the message is
 * the better guide.
 */
static int
admin_connect(struct admin *a)
{
	char err[512];
	int  rv;

	if (a->c != NULL) {
		return EXIT_OK;
	}
	if (a->url == NULL) {
		if ((rv = load_config(a)) != EXIT_OK) {
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
		fprintf(stderr, "error: cannot reach the authority at %s: "
		    "%s\nIs countersign-authority running?  ", a->url, err);
		if (a->cfg_loaded) {
			fprintf(stderr, "Is admin_listen in %s right?\n",
			    a->config_path);
		} else {
			fprintf(stderr, "Is --url right?\n");
		}
		fprintf(stderr, "Are you root or the authority's user (the "
		    "socket's owner)?\n");
		return EXIT_UNREACHABLE;
	}
	if (rv != CS_OK) {
		return fail("%s", err);
	}
	return EXIT_OK;
}

/* One Admin call; prints why on failure and returns the exit status. */
static int
admin_call(struct admin *a, const char *method, const void *req,
    void *reply)
{
	struct cs_rpc_result res = {0};
	int                  rv;

	if ((rv = admin_connect(a)) != EXIT_OK) {
		return rv;
	}
	rv = cs_rpc_call(a->c, &countersign__v1__admin__descriptor, method,
	    req, (ProtobufCMessage **)reply, &res);
	if (rv != CS_OK) {
		return fail("%s", res.message[0] != '\0' ? res.message
		                                         : cs_strerror(rv));
	}
	return EXIT_OK;
}

static void
free_reply(void *reply)
{
	if (reply != NULL) {
		protobuf_c_message_free_unpacked(reply, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

/* Create path for writing, refusing to replace anything. */
static int
create_excl(const char *path, int *fd)
{
	if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) < 0) {
		if (errno == EEXIST) {
			return fail("%s exists; it is not overwritten: move "
			    "it away or choose another name", path);
		}
		return fail("cannot create %s: %s", path, strerror(errno));
	}
	/* The umask must not make a certificate unreadable to others. */
	fchmod(*fd, 0644);
	return EXIT_OK;
}

static int
write_all(int fd, const char *path, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return fail("cannot write %s: %s", path,
			    strerror(errno));
		}
		b += w;
		n -= (size_t)w;
	}
	return EXIT_OK;
}

/* Read a whole small file (at most max bytes); *buf is malloc'ed and
 * NUL-terminated. */
static int
read_small(const char *path, size_t max, char **buf, size_t *len)
{
	FILE *fp;
	char *b;
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL) {
		return fail("cannot open %s: %s", path, strerror(errno));
	}
	if ((b = malloc(max + 2)) == NULL) {
		fclose(fp);
		return fail("out of memory");
	}
	n = fread(b, 1, max + 1, fp);
	bool bad = ferror(fp) != 0;
	fclose(fp);
	if (bad || n > max) {
		free(b);
		if (bad) {
			return fail("cannot read %s", path);
		}
		return fail("%s is larger than %zu bytes: not a CSR", path,
		    max);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return EXIT_OK;
}

/* SHA-256 of a file of any size, read in chunks. */
static int
file_sha256(const char *path, uint8_t out[CS_SHA256_LEN])
{
	static uint8_t buf[FIRMWARE_CHUNK];
	wc_Sha256      sha;
	FILE          *fp;
	size_t         n;
	int            rv = EXIT_OK;

	if ((fp = fopen(path, "rb")) == NULL) {
		return fail("cannot open %s: %s", path, strerror(errno));
	}
	if (wc_InitSha256(&sha) != 0) {
		fclose(fp);
		return fail("cannot initialise SHA-256");
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (wc_Sha256Update(&sha, buf, (word32)n) != 0) {
			rv = fail("SHA-256 of %s failed", path);
			break;
		}
	}
	if (rv == EXIT_OK && ferror(fp)) {
		rv = fail("cannot read %s", path);
	}
	if (rv == EXIT_OK && wc_Sha256Final(&sha, out) != 0) {
		rv = fail("SHA-256 of %s failed", path);
	}
	wc_Sha256Free(&sha);
	fclose(fp);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Output helpers                                                      */

static void
print_hex(FILE *fp, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(fp, "%02x", p[i]);
	}
}

/* Seconds since the epoch as ISO-8601 UTC, "never" for 0. */
static const char *
time_s(uint64_t s, char out[ADMIN_TIME_LEN])
{
	if (s == 0) {
		return "never";
	}
	admin_time_iso(s * 1000u, out);
	/* Whole seconds: drop the ".000" the millisecond form carries. */
	char *dot = strchr(out, '.');
	if (dot != NULL) {
		memcpy(dot, "Z", 2);
	}
	return out;
}

/* The last valid day of an order, from its first invalid second. */
static const char *
expires_date(uint64_t expires, char out[ADMIN_DATE_LEN])
{
	if (expires == 0) {
		return "never";
	}
	admin_date(expires - 1, out);
	return out;
}

/* Why an order is not active, in one word. */
static const char *
order_state(const Countersign__V1__OrderStatus *o)
{
	if (o->closed) {
		return "closed";
	}
	if (o->active) {
		return "active";
	}
	if (o->remaining == 0) {
		return "exhausted";
	}
	return "expired";
}

/* ------------------------------------------------------------------ */
/* ca                                                                  */

static int
ca_init(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cn", required_argument, NULL, 'n'},
	    {"days", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cn   = NULL;
	uint64_t    days = STATION_CA_DAYS_DEFAULT;
	char        defcn[256], err[1024];
	cs_hsm     *h = NULL;
	int         opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			cn = optarg;
			break;
		case 'd':
			if ((rv = parse_num(cmd, "--days", optarg, 1,
			    CA_DAYS_MAX, &days)) != EXIT_OK) {
				return rv;
			}
			break;
		default:
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = load_config(a)) != EXIT_OK) {
		return rv;
	}
	const struct authority_config *cfg = &a->cfg;
	if (cfg->hsm_module == NULL) {
		return fail("%s has no [hsm] section: the station CA's key is "
		    "made in the HSM, so add [hsm] module, token and pin_file "
		    "first (see deploy/authority.conf.example)",
		    a->config_path);
	}
	if (cn == NULL) {
		snprintf(defcn, sizeof(defcn), "%s station CA", cfg->id);
		cn = defcn;
	}
	struct cs_hsm_opts ho = {
	    .module   = cfg->hsm_module,
	    .token    = cfg->hsm_token,
	    .pin_file = cfg->hsm_pin_file,
	    .sessions = 1,
	};
	if (cs_hsm_open(&h, &ho, err, sizeof(err)) != CS_OK) {
		return fail("%s", err);
	}
	if (station_ca_init(h, cfg->hsm_station_ca_key, cn, (unsigned)days,
	    cfg->station_ca, err, sizeof(err)) != CS_OK) {
		cs_hsm_close(h);
		return fail("%s", err);
	}
	cs_hsm_close(h);
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "cert", cfg->station_ca);
		cs_json_str(&j, "key_label", cfg->hsm_station_ca_key);
		cs_json_str(&j, "token", cfg->hsm_token);
		cs_json_str(&j, "cn", cn);
		cs_json_u64(&j, "days", days);
		cs_json_close(&j);
		putchar('\n');
		return EXIT_OK;
	}
	printf("station CA \"%s\" created, valid %" PRIu64 " days\n"
	       "  certificate: %s\n"
	       "  HSM key:     \"%s\" on token \"%s\"\n",
	    cn, days, cfg->station_ca, cfg->hsm_station_ca_key,
	    cfg->hsm_token);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* station                                                             */

static void
station_json(struct cs_json *j, const char *key,
    const Countersign__V1__StationInfo *s)
{
	cs_json_open(j, key);
	cs_json_str(j, "name", s->name);
	cs_json_str(j, "cm", s->cm);
	cs_json_bool(j, "enabled", s->enabled);
	cs_json_u64(j, "enrolled_unix_s", s->enrolled_unix_s);
	cs_json_u64(j, "last_seen_unix_s", s->last_seen_unix_s);
	cs_json_bytes(j, "cert_sha256", s->cert_sha256.data,
	    s->cert_sha256.len);
	cs_json_bytes(j, "public_key_der", s->public_key_der.data,
	    s->public_key_der.len);
	cs_json_close(j);
}

/* One station as a JSON document of its own, for enable/disable. */
static void
station_json_doc(const Countersign__V1__StationInfo *s)
{
	struct cs_json j;

	cs_json_init(&j, stdout);
	if (s != NULL) {
		station_json(&j, NULL, s);
	} else {
		fputs("null", stdout);
	}
	putchar('\n');
}

static int
station_enroll(struct admin *a, const struct cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"csr", required_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'n'},
	    {"cm", required_argument, NULL, 'm'},
	    {"out", required_argument, NULL, 'o'},
	    {"days", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__EnrollStationRequest req =
	    COUNTERSIGN__V1__ENROLL_STATION_REQUEST__INIT;
	Countersign__V1__EnrollStationReply *rep = NULL;
	const char *csr = NULL, *name = NULL, *cm = NULL, *out = NULL;
	uint64_t    days = 0;
	char       *pem  = NULL;
	size_t      pem_len = 0;
	int         opt, rv, fd = -1;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			csr = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'm':
			cm = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'd':
			if ((rv = parse_num(cmd, "--days", optarg, 1,
			    STATION_CERT_DAYS_MAX, &days)) != EXIT_OK) {
				return rv;
			}
			break;
		default:
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	if (csr == NULL || name == NULL || cm == NULL || out == NULL) {
		return usage_fail(cmd, "%s is required", csr == NULL ? "--csr"
		    : name == NULL ? "--name" : cm == NULL ? "--cm" : "-o");
	}
	if ((rv = read_small(csr, STATION_CSR_MAX, &pem, &pem_len)) !=
	    EXIT_OK) {
		return rv;
	}
	/* Claim the output first: a certificate issued and then not
	 * written would need a second enrollment. */
	if ((rv = create_excl(out, &fd)) != EXIT_OK) {
		goto out;
	}
	req.csr_pem.data = (uint8_t *)pem;
	req.csr_pem.len  = pem_len;
	req.name         = (char *)name;
	req.cm           = (char *)cm;
	req.days         = (uint32_t)days;
	if ((rv = admin_call(a, "EnrollStation", &req, &rep)) != EXIT_OK ||
	    (rv = write_all(fd, out, rep->cert_pem.data,
	    rep->cert_pem.len)) != EXIT_OK) {
		goto out;
	}
	if (fsync(fd) != 0) {
		rv = fail("cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	int cr = close(fd);
	fd     = -1;
	if (cr != 0) {
		rv = fail("cannot write %s: %s", out, strerror(errno));
		unlink(out);
		goto out;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		if (rep->station != NULL) {
			station_json(&j, "station", rep->station);
		}
		cs_json_str(&j, "cert_file", out);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("enrolled station \"%s\" of %s\n"
		       "certificate written to %s\n"
		       "next: send %s to the station and set [station] cert "
		       "to its path in the station's configuration\n",
		    name, cm, out, out);
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(out); /* created here, still empty or partial */
	}
	free_reply(rep);
	free(pem);
	return rv;
}

static int
station_list(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListStationsRequest req =
	    COUNTERSIGN__V1__LIST_STATIONS_REQUEST__INIT;
	Countersign__V1__ListStationsReply *rep = NULL;
	char t1[ADMIN_TIME_LEN], t2[ADMIN_TIME_LEN];
	int  opt, rv, wn = 4, wc = 2;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "ListStations", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_array(&j, "stations");
		for (size_t i = 0; i < rep->n_stations; i++) {
			station_json(&j, NULL, rep->stations[i]);
		}
		cs_json_end(&j);
		cs_json_close(&j);
		putchar('\n');
		free_reply(rep);
		return EXIT_OK;
	}
	for (size_t i = 0; i < rep->n_stations; i++) {
		int n = (int)strlen(rep->stations[i]->name);
		int c = (int)strlen(rep->stations[i]->cm);
		wn    = n > wn ? n : wn;
		wc    = c > wc ? c : wc;
	}
	printf("%-*s  %-*s  %-8s  %-20s  %s\n", wn, "NAME", wc, "CM", "STATE",
	    "ENROLLED", "LAST SEEN");
	for (size_t i = 0; i < rep->n_stations; i++) {
		const Countersign__V1__StationInfo *s = rep->stations[i];
		printf("%-*s  %-*s  %-8s  %-20s  %s\n", wn, s->name, wc, s->cm,
		    s->enabled ? "enabled" : "disabled",
		    time_s(s->enrolled_unix_s, t1),
		    time_s(s->last_seen_unix_s, t2));
	}
	if (rep->n_stations == 0) {
		printf("(no stations enrolled)\n");
	}
	free_reply(rep);
	return EXIT_OK;
}

static int
station_enable(struct admin *a, const struct cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__SetStationEnabledRequest req =
	    COUNTERSIGN__V1__SET_STATION_ENABLED_REQUEST__INIT;
	Countersign__V1__StationReply *rep = NULL;
	int opt, rv;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 1)) != EXIT_OK) {
		return rv;
	}
	req.name    = argv[optind];
	req.enabled = strcmp(cmd->verb, "enable") == 0;
	if ((rv = admin_call(a, "SetStationEnabled", &req, &rep)) !=
	    EXIT_OK) {
		return rv;
	}
	if (a->json) {
		station_json_doc(rep->station);
	} else {
		printf("station \"%s\" %s\n", req.name,
		    req.enabled ? "enabled" : "disabled: it can no longer "
		                              "sign or report");
	}
	free_reply(rep);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* key                                                                 */

static void
key_json(struct cs_json *j, const char *key,
    const Countersign__V1__KeyInfo *k)
{
	cs_json_open(j, key);
	cs_json_str(j, "label", k->label);
	cs_json_str(j, "algorithm", k->algorithm);
	cs_json_bytes(j, "key_id", k->key_id.data, k->key_id.len);
	cs_json_bytes(j, "public_key_der", k->public_key_der.data,
	    k->public_key_der.len);
	cs_json_close(j);
}

static void
key_line(const Countersign__V1__KeyInfo *k)
{
	printf("%-9s  ", k->algorithm);
	print_hex(stdout, k->key_id.data, k->key_id.len);
	/* Key ids are 8 bytes; pad shorter ones to keep the column. */
	for (size_t i = k->key_id.len; i < CS_KEY_ID_LEN; i++) {
		fputs("  ", stdout);
	}
	printf("  %s\n", k->label);
}

static int
key_add(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__AddKeyRequest req =
	    COUNTERSIGN__V1__ADD_KEY_REQUEST__INIT;
	Countersign__V1__KeyReply *rep = NULL;
	int opt, rv;

	while ((opt = getopt_long(argc, argv, "l:h", longopts, NULL)) != -1) {
		if (opt != 'l') {
			return other_opt(cmd, opt);
		}
		req.label = optarg;
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	if (req.label[0] == '\0') {
		return usage_fail(cmd, "--label is required");
	}
	if ((rv = admin_call(a, "AddKey", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		if (rep->key != NULL) {
			key_json(&j, NULL, rep->key);
		} else {
			fputs("null", stdout);
		}
		putchar('\n');
	} else if (rep->key != NULL) {
		printf("key added; orders may now name it:\n");
		key_line(rep->key);
	}
	free_reply(rep);
	return EXIT_OK;
}

static int
key_list(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListKeysRequest req =
	    COUNTERSIGN__V1__LIST_KEYS_REQUEST__INIT;
	Countersign__V1__ListKeysReply *rep = NULL;
	int opt, rv;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "ListKeys", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_array(&j, "keys");
		for (size_t i = 0; i < rep->n_keys; i++) {
			key_json(&j, NULL, rep->keys[i]);
		}
		cs_json_end(&j);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%-9s  %-16s  %s\n", "ALGORITHM", "KEY ID", "LABEL");
		for (size_t i = 0; i < rep->n_keys; i++) {
			key_line(rep->keys[i]);
		}
		if (rep->n_keys == 0) {
			printf("(no keys: add one with " PROG " key add)\n");
		}
	}
	free_reply(rep);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* token                                                               */

static int
token_create(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"role", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__CreateTokenRequest req =
	    COUNTERSIGN__V1__CREATE_TOKEN_REQUEST__INIT;
	Countersign__V1__CreateTokenReply *rep = NULL;
	int opt, rv;

	while ((opt = getopt_long(argc, argv, "n:r:h", longopts, NULL)) !=
	    -1) {
		if (opt == 'n') {
			req.name = optarg;
		} else if (opt == 'r') {
			req.role = optarg;
		} else {
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	if (req.name[0] == '\0') {
		return usage_fail(cmd, "--name is required");
	}
	if (strcmp(req.role, "viewer") != 0 &&
	    strcmp(req.role, "officer") != 0) {
		return usage_fail(cmd, "--role viewer or --role officer is "
		    "required");
	}
	if ((rv = admin_call(a, "CreateToken", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "token", rep->token);
		cs_json_str(&j, "name", rep->name);
		cs_json_str(&j, "role", rep->role);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%s\n", rep->token);
		fprintf(stderr, "token \"%s\" (%s) created.  Store it now "
		    "(e.g. in a password manager): it is shown this once and "
		    "the authority keeps only its hash.\n", rep->name,
		    rep->role);
	}
	free_reply(rep);
	return EXIT_OK;
}

static int
token_disable(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__DisableTokenRequest req =
	    COUNTERSIGN__V1__DISABLE_TOKEN_REQUEST__INIT;
	Countersign__V1__DisableTokenReply *rep = NULL;
	int opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'n') {
			req.name = optarg;
		} else {
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	if (req.name == NULL) {
		fprintf(stderr, "error: --name is required\n");
		return EXIT_USAGE;
	}
	if ((rv = admin_call(a, "DisableToken", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;

		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "name", req.name);
		cs_json_u64(&j, "disabled", rep->disabled);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("token \"%s\" disabled (%u token%s): bearer use ends now, "
		    "console sessions at their next request\n", req.name,
		    rep->disabled, rep->disabled == 1 ? "" : "s");
	}
	free_reply(rep);
	return EXIT_OK;
}

static int
token_list(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListTokensRequest req =
	    COUNTERSIGN__V1__LIST_TOKENS_REQUEST__INIT;
	Countersign__V1__ListTokensReply *rep = NULL;
	char d[ADMIN_DATE_LEN];
	int  opt, rv;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "ListTokens", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_array(&j, "tokens");
		for (size_t i = 0; i < rep->n_tokens; i++) {
			cs_json_open(&j, NULL);
			cs_json_str(&j, "name", rep->tokens[i]->name);
			cs_json_str(&j, "role", rep->tokens[i]->role);
			cs_json_u64(&j, "created_unix_s",
			    rep->tokens[i]->created_unix_s);
			cs_json_bool(&j, "disabled",
			    rep->tokens[i]->disabled);
			cs_json_close(&j);
		}
		cs_json_end(&j);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%-7s  %-10s  %-8s  %s\n", "ROLE", "CREATED", "STATE",
		    "NAME");
		for (size_t i = 0; i < rep->n_tokens; i++) {
			admin_date(rep->tokens[i]->created_unix_s, d);
			printf("%-7s  %-10s  %-8s  %s\n", rep->tokens[i]->role,
			    d, rep->tokens[i]->disabled ? "disabled" :
			    "active", rep->tokens[i]->name);
		}
		if (rep->n_tokens == 0) {
			printf("(no tokens: make one with " PROG " token "
			    "create)\n");
		}
	}
	free_reply(rep);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* order                                                               */

static void
order_json(struct cs_json *j, const char *key,
    const Countersign__V1__OrderStatus *o)
{
	char d[ADMIN_DATE_LEN];

	cs_json_open(j, key);
	cs_json_str(j, "order_id", o->order_id);
	cs_json_str(j, "state", order_state(o));
	cs_json_bool(j, "active", o->active);
	cs_json_bool(j, "closed", o->closed);
	cs_json_u64(j, "product_id", o->product_id);
	cs_json_str(j, "key_label", o->key_label);
	cs_json_u64(j, "uid_len", o->uid_len);
	cs_json_u64(j, "quota", o->quota);
	cs_json_u64(j, "issued", o->issued);
	cs_json_u64(j, "confirmed", o->confirmed);
	cs_json_u64(j, "failed", o->failed);
	cs_json_u64(j, "remaining", o->remaining);
	cs_json_array(j, "cms");
	for (size_t i = 0; i < o->n_cms; i++) {
		cs_json_str(j, NULL, o->cms[i]);
	}
	cs_json_end(j);
	cs_json_u64(j, "expires_unix_s", o->expires_unix_s);
	if (o->expires_unix_s != 0) {
		cs_json_str(j, "valid_through",
		    expires_date(o->expires_unix_s, d));
	}
	cs_json_bytes(j, "firmware_sha256", o->firmware_sha256.data,
	    o->firmware_sha256.len);
	cs_json_u64(j, "created_unix_s", o->created_unix_s);
	cs_json_close(j);
}

static void
order_text(const Countersign__V1__OrderStatus *o)
{
	char d[ADMIN_DATE_LEN], t[ADMIN_TIME_LEN];

	printf("order       %s\n", o->order_id);
	printf("state       %s\n", order_state(o));
	printf("product     %" PRIu32 "\n", o->product_id);
	printf("key         %s\n", o->key_label);
	printf("uid length  %" PRIu32 " bytes\n", o->uid_len);
	printf("quota       %" PRIu64 "\n", o->quota);
	printf("issued      %" PRIu64 "\n", o->issued);
	printf("confirmed   %" PRIu64 "\n", o->confirmed);
	printf("failed      %" PRIu64 "\n", o->failed);
	printf("remaining   %" PRIu64 "\n", o->remaining);
	printf("cms         ");
	for (size_t i = 0; i < o->n_cms; i++) {
		printf("%s%s", i > 0 ? ", " : "", o->cms[i]);
	}
	printf("%s\n", o->n_cms == 0 ? "any" : "");
	if (o->expires_unix_s == 0) {
		printf("expires     never\n");
	} else {
		printf("expires     valid through %s (UTC)\n",
		    expires_date(o->expires_unix_s, d));
	}
	printf("firmware    ");
	print_hex(stdout, o->firmware_sha256.data, o->firmware_sha256.len);
	printf("%s\n", o->firmware_sha256.len == 0 ? "none (records bind no "
	                                             "firmware)"
	                                           : " (SHA-256)");
	printf("created     %s\n", time_s(o->created_unix_s, t));
}

/* Print the order of an OrderReply in the chosen format. */
static int
order_reply_print(struct admin *a, Countersign__V1__OrderReply *rep)
{
	if (rep->order == NULL) {
		return fail("the authority's reply carried no order");
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		order_json(&j, NULL, rep->order);
		putchar('\n');
	} else {
		order_text(rep->order);
	}
	return EXIT_OK;
}

/* Options of order create, before they become a request. */
struct order_args {
	const char *id, *key, *firmware, *expires;
	uint64_t    product, quota, uid_len;
	bool        have_product, have_quota, have_uid_len;
	char      **cms;
	size_t      n_cms;
};

static int
order_create_opts(const struct cmd *cmd, int argc, char **argv,
    struct order_args *o)
{
	static const struct option longopts[] = {
	    {"id", required_argument, NULL, 'i'},
	    {"product", required_argument, NULL, 'p'},
	    {"key", required_argument, NULL, 'k'},
	    {"quota", required_argument, NULL, 'q'},
	    {"uid-len", required_argument, NULL, 'u'},
	    {"cm", required_argument, NULL, 'm'},
	    {"expires", required_argument, NULL, 'e'},
	    {"firmware", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt, rv = EXIT_OK;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			o->id = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'm':
			o->cms[o->n_cms++] = optarg; /* at most argc */
			break;
		case 'e':
			o->expires = optarg;
			break;
		case 'f':
			o->firmware = optarg;
			break;
		case 'p':
			rv = parse_num(cmd, "--product", optarg, 0,
			    UINT32_MAX, &o->product);
			o->have_product = true;
			break;
		case 'q':
			rv = parse_num(cmd, "--quota", optarg, 1, QUOTA_MAX,
			    &o->quota);
			o->have_quota = true;
			break;
		case 'u':
			rv = parse_num(cmd, "--uid-len", optarg, 1, UID_MAX,
			    &o->uid_len);
			o->have_uid_len = true;
			break;
		default:
			rv = other_opt(cmd, opt);
			return rv == EXIT_OK ? -1 : rv;
		}
		if (rv != EXIT_OK) {
			return rv;
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	const char *missing = o->id == NULL ? "--id"
	    : !o->have_product              ? "--product"
	    : o->key == NULL                ? "--key"
	    : !o->have_quota                ? "--quota"
	    : !o->have_uid_len              ? "--uid-len"
	                                    : NULL;
	if (missing != NULL) {
		return usage_fail(cmd, "%s is required", missing);
	}
	return EXIT_OK;
}

static int
order_create(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	Countersign__V1__CreateOrderRequest req =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply *rep = NULL;
	struct order_args            o   = {0};
	uint8_t                      fw[CS_SHA256_LEN];
	char                         err[256];
	int                          rv;

	if ((o.cms = calloc((size_t)argc, sizeof(*o.cms))) == NULL) {
		return fail("out of memory");
	}
	if ((rv = order_create_opts(cmd, argc, argv, &o)) != EXIT_OK) {
		rv = rv < 0 ? EXIT_OK : rv; /* -1: --help was printed */
		goto out;
	}
	if (o.expires != NULL && (rv = admin_parse_date(o.expires,
	    time(NULL), &req.expires_unix_s, err, sizeof(err))) != CS_OK) {
		rv = usage_fail(cmd, "--expires: %s", err);
		goto out;
	}
	if (o.firmware != NULL) {
		if ((rv = file_sha256(o.firmware, fw)) != EXIT_OK) {
			goto out;
		}
		req.firmware_sha256.data = fw;
		req.firmware_sha256.len  = sizeof(fw);
	}
	req.order_id   = (char *)o.id;
	req.product_id = (uint32_t)o.product;
	req.key_label  = (char *)o.key;
	req.quota      = o.quota;
	req.uid_len    = (uint32_t)o.uid_len;
	req.cms        = o.cms;
	req.n_cms      = o.n_cms;
	if ((rv = admin_call(a, "CreateOrder", &req, &rep)) == EXIT_OK) {
		if (!a->json) {
			printf("order created\n");
		}
		rv = order_reply_print(a, rep);
	}
out:
	free_reply(rep);
	free(o.cms);
	return rv;
}

static int
order_list(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListOrdersRequest req =
	    COUNTERSIGN__V1__LIST_ORDERS_REQUEST__INIT;
	Countersign__V1__ListOrdersReply *rep = NULL;
	char d[ADMIN_DATE_LEN];
	int  opt, rv, wi = 5, wk = 3;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "ListOrders", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_array(&j, "orders");
		for (size_t i = 0; i < rep->n_orders; i++) {
			order_json(&j, NULL, rep->orders[i]);
		}
		cs_json_end(&j);
		cs_json_close(&j);
		putchar('\n');
		free_reply(rep);
		return EXIT_OK;
	}
	for (size_t i = 0; i < rep->n_orders; i++) {
		int n = (int)strlen(rep->orders[i]->order_id);
		int k = (int)strlen(rep->orders[i]->key_label);
		wi    = n > wi ? n : wi;
		wk    = k > wk ? k : wk;
	}
	printf("%-*s  %10s  %-*s  %10s  %10s  %10s  %10s  %-8s  %s\n", wi,
	    "ORDER", "PRODUCT", wk, "KEY", "QUOTA", "ISSUED", "FAILED",
	    "REMAINING", "STATE", "VALID THROUGH");
	for (size_t i = 0; i < rep->n_orders; i++) {
		const Countersign__V1__OrderStatus *o = rep->orders[i];
		printf("%-*s  %10" PRIu32 "  %-*s  %10" PRIu64 "  %10" PRIu64
		       "  %10" PRIu64 "  %10" PRIu64 "  %-8s  %s\n",
		    wi, o->order_id, o->product_id, wk, o->key_label, o->quota,
		    o->issued, o->failed, o->remaining, order_state(o),
		    expires_date(o->expires_unix_s, d));
	}
	if (rep->n_orders == 0) {
		printf("(no orders)\n");
	}
	free_reply(rep);
	return EXIT_OK;
}

/* show, quota and close: one order id, maybe one more argument, one
 * OrderReply. */
static int
order_one(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ShowOrderRequest show =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__AdjustQuotaRequest adjust =
	    COUNTERSIGN__V1__ADJUST_QUOTA_REQUEST__INIT;
	Countersign__V1__CloseOrderRequest close_req =
	    COUNTERSIGN__V1__CLOSE_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply *rep = NULL;
	bool quota = strcmp(cmd->verb, "quota") == 0;
	int  opt, rv;

	/* "+": stop at the order id, so that "-5" after it is the delta
	 * and not an unknown option. */
	if ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, quota ? 2 : 1)) != EXIT_OK) {
		return rv;
	}
	char *id = argv[optind];
	if (quota) {
		if (admin_parse_delta(argv[optind + 1], QUOTA_MAX,
		    &adjust.delta) != CS_OK) {
			return usage_fail(cmd, "the change \"%s\" must be +N "
			    "or -N (the sign is required), N from 1 to "
			    "%" PRIu64,
			    argv[optind + 1], QUOTA_MAX);
		}
		adjust.order_id = id;
		rv = admin_call(a, "AdjustQuota", &adjust, &rep);
	} else if (strcmp(cmd->verb, "close") == 0) {
		close_req.order_id = id;
		rv = admin_call(a, "CloseOrder", &close_req, &rep);
	} else {
		show.order_id = id;
		rv = admin_call(a, "ShowOrder", &show, &rep);
	}
	if (rv == EXIT_OK) {
		rv = order_reply_print(a, rep);
	}
	free_reply(rep);
	return rv;
}

/* ------------------------------------------------------------------ */
/* device                                                              */

static void
device_json(struct cs_json *j, const Countersign__V1__DeviceInfo *d)
{
	char t[ADMIN_TIME_LEN];

	cs_json_open(j, NULL);
	cs_json_bytes(j, "uid", d->uid.data, d->uid.len);
	cs_json_str(j, "order_id", d->order_id);
	cs_json_u64(j, "product_id", d->product_id);
	cs_json_str(j, "station", d->station);
	cs_json_u64(j, "serial", d->serial);
	cs_json_str(j, "state", d->state);
	cs_json_u64(j, "issued_unix_s", d->issued_unix_s);
	cs_json_str(j, "issued", time_s(d->issued_unix_s, t));
	cs_json_bytes(j, "record", d->record.data, d->record.len);
	cs_json_close(j);
}

static void
device_text(const Countersign__V1__DeviceInfo *d)
{
	char t[ADMIN_TIME_LEN];

	printf("uid      ");
	print_hex(stdout, d->uid.data, d->uid.len);
	printf("\norder    %s\n", d->order_id);
	printf("product  %" PRIu32 "\n", d->product_id);
	printf("station  %s\n", d->station);
	printf("serial   %" PRIu64 "\n", d->serial);
	printf("state    %s\n", d->state);
	printf("issued   %s\n", time_s(d->issued_unix_s, t));
	printf("record   ");
	print_hex(stdout, d->record.data, d->record.len);
	printf(" (%zu bytes)\n", d->record.len);
}

static int
write_record(struct admin *a, const struct cmd *cmd,
    const Countersign__V1__DeviceReply *rep, const char *path)
{
	int fd, rv;

	if (rep->n_devices > 1) {
		return usage_fail(cmd, "the UID has records in %zu orders: "
		    "give --order ID to choose the one for --record-out",
		    rep->n_devices);
	}
	const ProtobufCBinaryData *r = &rep->devices[0]->record;
	if ((rv = create_excl(path, &fd)) != EXIT_OK) {
		return rv;
	}
	if ((rv = write_all(fd, path, r->data, r->len)) != EXIT_OK ||
	    close(fd) != 0) {
		rv = rv != EXIT_OK ? rv : fail("cannot write %s", path);
		unlink(path);
		return rv;
	}
	if (!a->json) {
		printf("record (%zu bytes) written to %s\n", r->len, path);
	}
	return EXIT_OK;
}

static int
device_show(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"record-out", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ShowDeviceRequest req =
	    COUNTERSIGN__V1__SHOW_DEVICE_REQUEST__INIT;
	Countersign__V1__DeviceReply *rep = NULL;
	const char *record_out = NULL;
	uint8_t     uid[UID_MAX];
	int         opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			req.order_id = optarg;
			break;
		case 'r':
			record_out = optarg;
			break;
		default:
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 1)) != EXIT_OK) {
		return rv;
	}
	if (cs_hex_decode(argv[optind], uid, sizeof(uid), &req.uid.len) !=
	    CS_OK) {
		return usage_fail(cmd, "UID \"%s\": expected 1 to %u bytes of "
		    "hex (0x prefix and colons allowed)", argv[optind],
		    UID_MAX);
	}
	req.uid.data = uid;
	if ((rv = admin_call(a, "ShowDevice", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (rep->n_devices == 0) {
		rv = fail("no device with UID %s%s%s", argv[optind],
		    req.order_id[0] != '\0' ? " in order " : "", req.order_id);
		goto out;
	}
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_array(&j, "devices");
		for (size_t i = 0; i < rep->n_devices; i++) {
			device_json(&j, rep->devices[i]);
		}
		cs_json_end(&j);
		cs_json_close(&j);
		putchar('\n');
	} else {
		for (size_t i = 0; i < rep->n_devices; i++) {
			printf("%s", i > 0 ? "\n" : "");
			device_text(rep->devices[i]);
		}
	}
	if (record_out != NULL) {
		rv = write_record(a, cmd, rep, record_out);
	}
out:
	free_reply(rep);
	return rv;
}

/* ------------------------------------------------------------------ */
/* audit                                                               */

static void
event_json(FILE *fp, const Countersign__V1__AuditEvent *e)
{
	struct cs_json j;
	char              t[ADMIN_TIME_LEN];

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
event_csv(FILE *fp, const Countersign__V1__AuditEvent *e)
{
	char   t[ADMIN_TIME_LEN], *kv = NULL;
	size_t kv_len                 = 0;
	FILE  *m;

	/* The fields join as k=v;k=v into one CSV field. */
	if ((m = open_memstream(&kv, &kv_len)) == NULL) {
		return fail("out of memory");
	}
	for (size_t i = 0; i < e->n_fields; i++) {
		admin_csv_kv(m, e->fields[i]->key, e->fields[i]->value,
		    i == 0);
	}
	if (fclose(m) != 0) {
		free(kv);
		return fail("out of memory");
	}
	admin_time_iso(e->time_unix_ms, t);
	fprintf(fp, "%" PRIu64 ",%s,", e->seq, t);
	csv_field_str(fp, e->actor);
	csv_field_str(fp, e->type);
	admin_csv_field(fp, kv, kv_len);
	fputc(',', fp);
	print_hex(fp, e->prev_hash.data, e->prev_hash.len);
	fputc(',', fp);
	print_hex(fp, e->hash.data, e->hash.len);
	/* RFC 4180 ends records with CRLF. */
	fputs("\r\n", fp);
	free(kv);
	return EXIT_OK;
}

static int
audit_page(struct admin *a, uint64_t since, uint32_t limit,
    Countersign__V1__ListAuditReply **rep)
{
	Countersign__V1__ListAuditRequest req =
	    COUNTERSIGN__V1__LIST_AUDIT_REQUEST__INIT;

	req.since_seq = since;
	req.limit     = limit;
	return admin_call(a, "ListAudit", &req, rep);
}

static int
audit_list(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"since", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__ListAuditReply *rep = NULL;
	uint64_t since = 0, limit = 0;
	int      opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 's') {
			rv = parse_num(cmd, "--since", optarg, 0, UINT64_MAX,
			    &since);
		} else if (opt == 'l') {
			rv = parse_num(cmd, "--limit", optarg, 1,
			    AUDIT_LIMIT_MAX, &limit);
		} else {
			return other_opt(cmd, opt);
		}
		if (rv != EXIT_OK) {
			return rv;
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = audit_page(a, since, (uint32_t)limit, &rep)) != EXIT_OK) {
		return rv;
	}
	for (size_t i = 0; i < rep->n_events; i++) {
		if (a->json) {
			event_json(stdout, rep->events[i]);
		} else {
			event_text(stdout, rep->events[i]);
		}
	}
	free_reply(rep);
	return EXIT_OK;
}

static int
audit_verify(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__VerifyAuditRequest req =
	    COUNTERSIGN__V1__VERIFY_AUDIT_REQUEST__INIT;
	Countersign__V1__VerifyAuditReply *rep = NULL;
	int opt, rv;

	if ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "VerifyAudit", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	rv = rep->intact ? EXIT_OK : EXIT_BROKEN;
	if (a->json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_bool(&j, "intact", rep->intact);
		cs_json_u64(&j, "verified_up_to", rep->verified_up_to);
		if (!rep->intact) {
			cs_json_u64(&j, "first_bad_seq",
			    rep->first_bad_seq);
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
	free_reply(rep);
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
		if ((rv = audit_page(a, since, AUDIT_PAGE, &rep)) != EXIT_OK) {
			return rv;
		}
		if (rep->n_events == 0) {
			break;
		}
		for (size_t i = 0; i < rep->n_events && rv == EXIT_OK; i++) {
			if (rep->events[i]->seq <= since) {
				/* Would loop for ever on the same page. */
				rv = fail("the authority returned event "
				    "%" PRIu64
				    " for events after %" PRIu64 "; export "
				    "stopped", rep->events[i]->seq, since);
			} else if (csv) {
				rv = event_csv(fp, rep->events[i]);
			} else {
				event_json(fp, rep->events[i]);
			}
			since = rep->events[i]->seq;
		}
		free_reply(rep);
		rep = NULL;
		if (rv != EXIT_OK) {
			return rv;
		}
	}
	free_reply(rep);
	return EXIT_OK;
}

/* Export into path through path.tmp, renamed only once complete, so a
 * failed export never leaves a file that looks whole. */
static int
audit_export_file(struct admin *a, const char *path, bool csv,
    uint64_t since)
{
	char *tmp = NULL;
	FILE *fp  = NULL;
	int   fd, rv;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		return fail("out of memory");
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) < 0) {
		rv = errno == EEXIST
		    ? fail("%s exists (left by an interrupted export?): "
		           "remove it and retry", tmp)
		    : fail("cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return rv;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		rv = fail("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rv = audit_export_to(a, fp, csv, since)) != EXIT_OK) {
		goto out;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		rv = fail("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	int cr = fclose(fp);
	fp = NULL;
	if (cr != 0 || rename(tmp, path) != 0) {
		rv = fail("cannot write %s: %s", path, strerror(errno));
	}
out:
	if (fp != NULL) {
		fclose(fp);
	}
	if (rv != EXIT_OK) {
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

static int
audit_export(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"since", required_argument, NULL, 's'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *format = NULL, *out = NULL;
	uint64_t    since = 0;
	int         opt, rv;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (opt == 'f') {
			format = optarg;
		} else if (opt == 'o') {
			out = optarg;
		} else if (opt == 's') {
			if ((rv = parse_num(cmd, "--since", optarg, 0,
			    UINT64_MAX, &since)) != EXIT_OK) {
				return rv;
			}
		} else {
			return other_opt(cmd, opt);
		}
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK) {
		return rv;
	}
	if (format == NULL || (strcmp(format, "jsonl") != 0 &&
	    strcmp(format, "csv") != 0)) {
		return usage_fail(cmd, "--format jsonl or --format csv is "
		    "required");
	}
	bool csv = strcmp(format, "csv") == 0;
	/* Connect before creating the file, so that an authority that is
	 * down leaves nothing behind. */
	if ((rv = admin_connect(a)) != EXIT_OK) {
		return rv;
	}
	if (out == NULL || strcmp(out, "-") == 0) {
		return audit_export_to(a, stdout, csv, since);
	}
	return audit_export_file(a, out, csv, since);
}

/* `ca crl [-o FILE]`: the CRL the station port loads, for anyone to check
 * (openssl crl -in FILE -CAfile station-ca.pem -noout -text). */
static int
ca_crl(struct admin *a, const struct cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__StationCrlRequest req =
	    COUNTERSIGN__V1__STATION_CRL_REQUEST__INIT;
	Countersign__V1__StationCrlReply *rep = NULL;
	const char                       *out = NULL;
	int                               opt, rv;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (opt == 'o') {
			out = optarg;
			continue;
		}
		return other_opt(cmd, opt);
	}
	if ((rv = positional(cmd, argc, argv, 0)) != EXIT_OK ||
	    (rv = admin_call(a, "StationCrl", &req, &rep)) != EXIT_OK) {
		return rv;
	}
	if (out == NULL || strcmp(out, "-") == 0) {
		fputs(rep->pem, stdout);
		free_reply(rep);
		return EXIT_OK;
	}
	char  tmp[4096];
	FILE *fp = NULL;
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	if ((fp = fopen(tmp, "w")) == NULL ||
	    fputs(rep->pem, fp) == EOF || fclose(fp) != 0 ||
	    rename(tmp, out) != 0) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", out,
		    strerror(errno));
		unlink(tmp);
		free_reply(rep);
		return EXIT_FAIL;
	}
	free_reply(rep);
	printf("CRL written to %s\n", out);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Command table and main                                              */

static const struct cmd commands[] = {
    {"ca", "init", ca_init,
	"init [--cn NAME] [--days N]\n\n"
	"Create the station CA: a P-256 key in the HSM ([hsm] station_ca_key)"
	"\nand its self-signed certificate at [tls] station_ca.  Local: "
	"needs the\nconfiguration and the HSM, not a running authority.  "
	"--cn defaults to\n\"<authority id> station CA\", --days to 3650.\n"},
    {"ca", "crl", ca_crl,
	"crl [-o FILE]\n\n"
	"Print (or write to FILE) the station CA's current CRL: every "
	"disabled\nstation's certificate.  The station port refuses those "
	"certificates at\nTLS; check it with `openssl crl -in FILE -CAfile "
	"<station_ca> -noout\n-text`.\n"},
    {"station", "enroll", station_enroll,
	"enroll --csr FILE --name NAME --cm CM -o CERT [--days N]\n\n"
	"Issue a station certificate from the CSR that `countersign-station "
	"init`\nmade, bound to NAME and the contract manufacturer CM.  The "
	"certificate is\nwritten to CERT (never overwritten).  --days: "
	"validity, default 365.\n"},
    {"station", "list", station_list,
	"list\n\nList the enrolled stations.\n"},
    {"station", "disable", station_enable,
	"disable NAME\n\nRefuse the station from now on (sign and report)."
	"\n"},
    {"station", "enable", station_enable,
	"enable NAME\n\nAccept a disabled station again.\n"},
    {"key", "add", key_add,
	"add --label LABEL\n\nMake a signing key of the HSM (made with "
	"countersign-keytool keygen)\nknown to the authority.\n"},
    {"key", "list", key_list,
	"list\n\nList the signing keys: algorithm, key id, label.\n"},
    {"token", "create", token_create,
	"create --name NAME --role viewer|officer\n\n"
	"Make an admin token for the web console and scripts (bearer "
	"token).\nviewer: read-only; officer: may change orders and "
	"stations.  The token\nis printed once; the authority keeps only "
	"its SHA-256.\n"},
    {"token", "list", token_list,
	"list\n\nList the admin tokens: role, creation day, state, name.\n"},
    {"token", "disable", token_disable,
	"disable --name NAME\n\nDisable the tokens called NAME: scripts "
	"using them are refused at once,\nconsole sessions opened with "
	"them end at their next request.\n"},
    {"order", "create", order_create,
	"create --id ID --product N --key LABEL --quota Q\n"
	"       --uid-len BYTES [--cm CM]... [--expires YYYY-MM-DD] "
	"[--firmware FILE]\n\n"
	"Create a production order.  --cm (repeatable) limits it to those "
	"contract\nmanufacturers (default: any).  --expires: the last UTC "
	"day it is valid.\n--firmware: bind the records to the SHA-256 of "
	"FILE.  --quota 1..2^32,\n--uid-len 1..32.\n"},
    {"order", "list", order_list, "list\n\nList the orders.\n"},
    {"order", "show", order_one,
	"show ID\n\nShow an order: counts, quota, key, CMs, expiry, "
	"firmware digest.\n"},
    {"order", "quota", order_one,
	"quota ID +N|-N\n\nRaise or lower an order's quota by N (the sign is "
	"required).\n"},
    {"order", "close", order_one,
	"close ID\n\nClose an order for good: nothing more is signed for "
	"it.\n"},
    {"device", "show", device_show,
	"show UID [--order ID] [--record-out FILE]\n\n"
	"Show the records of a device UID (hex; 0x prefix and colons "
	"allowed).\n--record-out writes the raw record of the one match "
	"(give --order\nwhen the UID is in several orders).\n"},
    {"audit", "list", audit_list,
	"list [--since SEQ] [--limit N]\n\nList audit events after SEQ, "
	"one per line: seq time actor type k=v...\n"},
    {"audit", "verify", audit_verify,
	"verify\n\nCheck the audit log's hash chain.  Exit status 3 when it "
	"is broken.\n"},
    {"audit", "export", audit_export,
	"export --format jsonl|csv [--since SEQ] [-o FILE]\n\n"
	"Export the whole audit log (or the part after SEQ) as JSON lines "
	"or CSV\n(RFC 4180) to FILE, written through FILE.tmp, or to "
	"stdout.\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "The officer's command line of the Countersign signing "
	    "authority.\n"
	    "\n"
	    "Commands (COMMAND --help for each):\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *nl = strchr(commands[i].help, '\n');
		fprintf(fp, "  %s %.*s\n", commands[i].group,
		    (int)(nl - commands[i].help), commands[i].help);
	}
	fprintf(fp,
	    "\n"
	    "Global options (before the command):\n"
	    "  -c, --config FILE    authority configuration (default\n"
	    "                       " DEFAULT_CONFIG ")\n"
	    "      --url URL        the Admin socket, ipc:///path (default: "
	    "admin_listen)\n"
	    "      --timeout-ms MS  per call (default 5000)\n"
	    "      --json           print JSON\n"
	    "  -h, --help           this help\n"
	    "  -V, --version        print the version\n"
	    "\n"
	    "Exit status: 0 success, 1 refused or I/O error, 2 usage error, "
	    "3 audit\nchain broken, 4 the authority cannot be reached.\n");
}

/* Only ipc:// for now: the Admin service does not listen on TLS yet. */
static int
check_url(const char *url)
{
	if (strncmp(url, "tls+tcp://", 10) == 0) {
		return usage_fail(NULL, "--url %s: the authority's Admin "
		    "service does not serve tls+tcp:// yet; run " PROG " on "
		    "the authority's host with its ipc:// socket", url);
	}
	if (strncmp(url, "ipc://", 6) != 0 || url[6] == '\0') {
		return usage_fail(NULL, "--url %s: expected ipc:///path",
		    url);
	}
	return EXIT_OK;
}

/* Find and run group verb; "group --help" lists the group's verbs. */
static int
dispatch(struct admin *a, int argc, char **argv)
{
	const char *group = argv[0];
	const char *verb  = argc > 1 ? argv[1] : NULL;
	bool        known = false;
	char        name[128];

	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(group, commands[i].group) != 0) {
			continue;
		}
		known = true;
		if (verb != NULL && strcmp(verb, commands[i].verb) == 0) {
			/* getopt names argv[0] in its messages. */
			snprintf(name, sizeof(name), PROG " %s %s", group,
			    verb);
			argv[1] = name;
			optind  = 0; /* fresh getopt state for the command */
			return commands[i].fn(a, &commands[i], argc - 1,
			    argv + 1);
		}
	}
	if (!known) {
		return usage_fail(NULL, "unknown command \"%s\"", group);
	}
	bool help = verb != NULL && (strcmp(verb, "--help") == 0 ||
	    strcmp(verb, "-h") == 0);
	FILE *fp = help ? stdout : stderr;
	if (verb == NULL) {
		fprintf(stderr, "error: %s needs a subcommand, one of:\n",
		    group);
	} else if (!help) {
		fprintf(stderr, "error: %s \"%s\" is not a command; one of:\n",
		    group, verb);
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(group, commands[i].group) == 0) {
			const char *nl = strchr(commands[i].help, '\n');
			fprintf(fp, "  " PROG " %s %.*s\n", group,
			    (int)(nl - commands[i].help), commands[i].help);
		}
	}
	return help ? EXIT_OK : EXIT_USAGE;
}

int
main(int argc, char **argv)
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
	struct admin a = {
	    .config_path = DEFAULT_CONFIG,
	    .timeout_ms  = TIMEOUT_MS_DEFAULT,
	};
	uint64_t t;
	int      opt, rv;

	/* Global options only: "+" stops at the command. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'c':
			a.config_path = optarg;
			break;
		case 'u':
			if ((rv = check_url(optarg)) != EXIT_OK) {
				return rv;
			}
			a.url = optarg;
			break;
		case 't':
			if (admin_parse_u64(optarg, 1, CS_RPC_MAX_DEADLINE_MS,
			    &t) != CS_OK) {
				return usage_fail(NULL, "--timeout-ms \"%s\": "
				    "expected 1 to %u", optarg,
				    CS_RPC_MAX_DEADLINE_MS);
			}
			a.timeout_ms = (uint32_t)t;
			break;
		case 'j':
			a.json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf(PROG " %s\n", CS_VERSION);
			return EXIT_OK;
		default:
			return usage_fail(NULL, "bad global option");
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* The HSM shim and the RPC layer log only what matters here. */
	cs_log_open(PROG, CS_LOG_WARN, false);
	rv = dispatch(&a, argc - optind, argv + optind);
	cs_rpc_client_close(a.c);
	if (a.cfg_loaded) {
		authority_config_free(&a.cfg);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "error: cannot write the output: %s\n",
		    strerror(errno));
		return rv == EXIT_OK ? EXIT_FAIL : rv;
	}
	return rv;
}
