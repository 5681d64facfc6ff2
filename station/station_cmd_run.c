/*
 * station_cmd_run.c - the countersign-station commands that touch
 * devices: run (program a batch, one worker per probe, through job.c),
 * read-uid (the UID of the device on a probe) and probes (the CMSIS-DAP
 * probes on USB).  run and probes take --json for a manufacturing
 * execution system; their errors then also come as cs_cli's JSON object
 * on stdout.
 *
 * The command table, the set-up every command shares and the exit codes
 * are in main.c (station_cli.h).
 */
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_json.h"
#include "dap_usb.h"
#include "order_fw.h"
#include "probe.h"
#include "secmem.h"
#include "station_cli.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where target profiles are looked up by name. */
static const char *const target_dirs[] = {
    "/etc/countersign/targets",
    CS_TARGETS_DIR,
    NULL,
};

static int
load_target(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const char *name, struct target *t)
{
	char err[1024];

	if (name == NULL) {
		return cs_cli_usage(&st->cli, cmd, "--target is required (a "
		    "profile name, e.g. lm3s6965, or a path to an .ini file)");
	}
	if (target_load(t, name, target_dirs, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "%s", err);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* run                                                                 */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t run_stop;

/* The second SIGINT/SIGTERM: wipe the firmware in memory, then die of
 * the signal (its default action). */
static void
on_second_signal(int sig)
{
	secmem_wipe_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The first SIGINT/SIGTERM finishes the devices in hand; a second one
 * ends the program at once. */
static void
on_stop_signal(int sig)
{
	run_stop = 1;
	signal(sig, on_second_signal);
}

/* The exit code of a run: the reason to stop the line first. */
static int
run_exit(const struct job_result *r)
{
	if (r->quota_exhausted) {
		return EXIT_QUOTA;
	}
	if (r->halt_status != 0) {
		return station_cli_exit_for_status(r->halt_status);
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

/* The numbers and the format of run's options into jo and img's
 * loader arguments. */
static int
run_options(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const struct station_args *a, struct job_opts *jo,
    enum image_format *fmt, unsigned long *base)
{
	unsigned long count = 0, retry = 0, next = 0;
	int           rv;

	*fmt  = IMAGE_AUTO;
	*base = 0;
	if (a->format != NULL) {
		if (strcmp(a->format, "elf") == 0) {
			*fmt = IMAGE_ELF;
		} else if (strcmp(a->format, "ihex") == 0) {
			*fmt = IMAGE_IHEX;
		} else if (strcmp(a->format, "bin") == 0) {
			*fmt = IMAGE_BIN;
		} else {
			return cs_cli_usage(&st->cli, cmd, "--format is elf, "
			    "ihex or bin");
		}
	}
	if ((a->base != NULL && (rv = station_cli_number(st, cmd, "--base",
	    a->base, 0, UINT32_MAX, base)) != EXIT_OK) ||
	    (a->count != NULL && (rv = station_cli_number(st, cmd,
	    "--count", a->count, 0, 1000000, &count)) != EXIT_OK) ||
	    (a->retry_s != NULL && (rv = station_cli_number(st, cmd,
	    "--retry-s", a->retry_s, 0, 86400, &retry)) != EXIT_OK) ||
	    (a->next_device_s != NULL && (rv = station_cli_number(st, cmd,
	    "--next-device-s", a->next_device_s, 0, 86400, &next)) !=
	    EXIT_OK)) {
		return rv;
	}
	if ((rv = station_cli_order_id(st, cmd, a->order)) != EXIT_OK) {
		return rv;
	}
	if (a->nprobes == 0) {
		return cs_cli_usage(&st->cli, cmd, "at least one --probe URL is "
		    "required");
	}
	memset(jo, 0, sizeof(*jo));
	jo->json          = a->json;
	jo->order_id      = a->order;
	jo->probes        = a->probes;
	jo->nprobes       = a->nprobes;
	jo->count         = (unsigned)count;
	jo->retry_max_s   = (unsigned)retry;
	jo->next_device_s = (unsigned)next;
	jo->events        = stdout;
	jo->progress      = !jo->json && isatty(STDERR_FILENO);
	jo->stop          = &run_stop;
	return EXIT_OK;
}

/* The summary of a run: a JSON object with --json, and the text on
 * stderr in any case. */
static void
run_summary(const struct job_opts *jo, const struct job_result *res)
{
	if (jo->json) {
		struct cs_json j;

		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "event", "summary");
		cs_json_u64(&j, "programmed", res->programmed);
		cs_json_u64(&j, "locked", res->locked);
		cs_json_u64(&j, "unlocked", res->unlocked);
		cs_json_u64(&j, "failed", res->failed);
		cs_json_u64(&j, "refused", res->refused);
		cs_json_u64(&j, "remaining", res->remaining);
		cs_json_bool(&j, "quota_exhausted", res->quota_exhausted);
		cs_json_bool(&j, "authority_lost", res->authority_lost);
		cs_json_u64(&j, "short_of_count", res->short_of_count);
		cs_json_u64(&j, "unreported", res->unreported);
		if (res->halt_message[0] != '\0') {
			cs_json_str(&j, "message", res->halt_message);
		}
		cs_json_close(&j);
		putchar('\n');
	}
	char locks[48] = "";

	if (res->unlocked > 0) {
		snprintf(locks, sizeof(locks), " (%u not locked)",
		    res->unlocked);
	} else if (res->locked > 0) {
		snprintf(locks, sizeof(locks), " (%u locked)", res->locked);
	}
	fprintf(stderr, "%s: %u programmed%s, %u failed, %u refused; %"
	    PRIu64 " left in order %s\n",
	    res->quota_exhausted      ? "quota exhausted"
	    : res->halt_status != 0   ? "stopped by the authority's answer"
	    : res->authority_lost     ? "authority unreachable, stopped"
	    : res->stopped            ? "stopped on request"
	    : res->short_of_count > 0 ? "run ended early"
	                              : "run finished",
	    res->programmed, locks, res->failed, res->refused,
	    res->remaining, jo->order_id);
	if (res->halt_status != 0) {
		fprintf(stderr, "the authority refused to sign more: %s\n"
		    "no new device was started; devices already in hand were "
		    "finished and reported.  Ask the OEM before going on.\n",
		    res->halt_message);
	}
	if (res->short_of_count > 0 && !res->quota_exhausted &&
	    res->halt_status == 0 && !res->authority_lost) {
		fprintf(stderr, "%u of the devices asked for (--count) were "
		    "never started: no device came on a probe in time\n",
		    res->short_of_count);
	}
	if (res->unreported > 0) {
		fprintf(stderr, "%u outcomes could not be reported to the "
		    "authority; tell the OEM\n", res->unreported);
	}
}

/* The order, as GetOrder says, into *of. */
static int
run_get_order(struct station_cli *st, station_session *s, const char *id,
    struct order_fw *of)
{
	Countersign__V1__GetOrderRequest   req =
	    COUNTERSIGN__V1__GET_ORDER_REQUEST__INIT;
	Countersign__V1__GetOrderResponse *rsp = NULL;
	struct cs_rpc_result               res;
	char                               err[256];
	int                                rv;

	req.order_id = (char *)id;
	if ((rv = station_session_call(s, "GetOrder", &req.base,
	    (ProtobufCMessage **)&rsp, &res)) != CS_OK) {
		return station_cli_call_failed(st, rv, &res);
	}
	if (rsp->order == NULL) {
		snprintf(err, sizeof(err), "the authority's answer has no "
		    "order");
		rv = CS_EPROTO;
	} else {
		rv = order_fw_from_status(of, rsp->order, err, sizeof(err));
	}
	protobuf_c_message_free_unpacked(&rsp->base, NULL);
	if (rv != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "%s", err);
	}
	return EXIT_OK;
}

/*
 * What the order allows, before anything is fetched, signed or written:
 * its part, the lock, where the image comes from.
 */
static int
run_order_checks(struct station_cli *st, const struct cs_cli_cmd *cmd,
    const struct station_args *a, const struct target *t,
    const struct order_fw *of)
{
	if (of->withdrawn && !of->held) {
		return cs_cli_error(&st->cli, EXIT_ORDER, "order %s's firmware "
		    "was withdrawn by the OEM: nothing more is programmed for "
		    "it; ask the OEM", a->order);
	}
	if (of->target[0] != '\0' && strcmp(of->target, t->name) != 0) {
		return cs_cli_error(&st->cli, EXIT_FIRMWARE, "order %s was made "
		    "for target %s, not %s: its firmware is for another part; "
		    "nothing was signed or written", a->order, of->target,
		    t->name);
	}
	if (of->require_lock && !t->can_lock) {
		return cs_cli_error(&st->cli, EXIT_FIRMWARE, "order %s requires "
		    "every device to be locked, but target profile %s cannot "
		    "lock the part%s%s; nothing was signed or written",
		    a->order, t->name, t->protect.reason[0] != '\0' ? ": " : "",
		    t->protect.reason);
	}
	if (of->held && a->image != NULL) {
		return cs_cli_usage(&st->cli, cmd, "order %s's firmware is held "
		    "by the authority: the station fetches it; run without "
		    "--image", a->order);
	}
	if (!of->held && a->image == NULL) {
		return cs_cli_usage(&st->cli, cmd, "--image FILE is required: "
		    "order %s does not hold its firmware", a->order);
	}
	return EXIT_OK;
}

/* The firmware a run programs, as one event ("firmware"). */
static void
run_fw_event(const struct job_opts *jo, const char *source,
    const uint8_t digest[32], bool checked, uint32_t version,
    uint64_t bytes)
{
	char hex[65], brief[20];

	cs_hex_encode(digest, 32, hex, sizeof(hex));
	if (jo->json) {
		struct cs_json j;

		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "event", "firmware");
		cs_json_str(&j, "source", source);
		cs_json_str(&j, "firmware_sha256", hex);
		cs_json_bool(&j, "firmware_checked", checked);
		if (version != 0) {
			cs_json_u64(&j, "version", version);
		}
		cs_json_u64(&j, "bytes", bytes);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%-12s order=%s digest=%s bytes=%" PRIu64 ": %s\n",
		    "firmware", jo->order_id, order_fw_short(digest, brief),
		    bytes, strcmp(source, "held") == 0
		        ? "fetched from the authority, held in memory only"
		    : checked ? "the order's digest"
		              : "the order binds no digest");
	}
	fflush(stdout);
}

/* A wait for the authority while the image is fetched. */
static void
run_fetch_note(void *ctx, const char *what, const char *message)
{
	const struct job_opts *jo = ctx;

	if (jo->json) {
		struct cs_json j;

		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "event", what);
		if (message != NULL && message[0] != '\0') {
			cs_json_str(&j, "message", message);
		}
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%-12s fetching the order's firmware%s%s\n", what,
		    message != NULL ? ": " : "", message != NULL ? message : "");
	}
	fflush(stdout);
}

/* The fetch's progress on a terminal. */
static void
run_fetch_progress(void *ctx, uint64_t got, uint64_t size)
{
	const struct job_opts *jo = ctx;

	if (jo->progress) {
		fprintf(stderr, "\r\033[K  fetching the order's firmware: %"
		    PRIu64 " of %" PRIu64 " KiB%s", got / 1024, size / 1024,
		    got == size ? "\n" : "");
	}
}

/*
 * The order's held image into *h: the memory it needs checked against
 * RLIMIT_MEMLOCK first (the image, and one flash layout per probe), no
 * core dump from now on, then the fetch.
 */
static int
run_fetch(struct station_cli *st, station_session *s, struct job_opts *jo,
    const struct target *t, const struct order_fw *of,
    struct held_image *h)
{
	struct fetch_opts    fo;
	struct cs_rpc_result res;
	size_t               pg   = (size_t)sysconf(_SC_PAGESIZE);
	size_t               img  = ((size_t)of->size + pg - 1) / pg * pg;
	size_t               need = img + jo->nprobes * (img + t->record_size +
	    2u * t->page_size + 16u * 1024u + pg);
	bool                 mismatch;
	char                 err[512];
	int                  rv;

	if (secmem_budget(need, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "order %s: %s",
		    jo->order_id, err);
	}
	if (secmem_no_core() != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "cannot turn core "
		    "dumps off for the firmware in memory");
	}
	memset(&fo, 0, sizeof(fo));
	fo.session     = s;
	fo.order_id    = jo->order_id;
	fo.target      = t;
	fo.of          = of;
	fo.retry_max_s = jo->retry_max_s;
	fo.stop        = jo->stop;
	fo.note        = run_fetch_note;
	fo.note_ctx    = jo;
	fo.progress    = run_fetch_progress;
	fo.progress_ctx = jo;
	rv = held_image_fetch(&fo, h, &res, &mismatch, err, sizeof(err));
	if (rv == CS_OK) {
		return EXIT_OK;
	}
	if (mismatch) {
		return cs_cli_error(&st->cli, EXIT_FIRMWARE, "%s; nothing was "
		    "signed or written", err);
	}
	if (rv == CS_ENOMEM) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "%s", err);
	}
	if (rv == CS_ECANCELED) {
		return cs_cli_error(&st->cli, EXIT_INCOMPLETE, "%s", err);
	}
	if (station_session_transient(rv, &res)) {
		return cs_cli_error(&st->cli, EXIT_UNREACHABLE, "the order's "
		    "firmware could not be fetched: %s", res.message);
	}
	return cs_cli_error(&st->cli, station_cli_exit_for_status(res.status),
	    "the authority refused the order's firmware: %s", res.message);
}

/*
 * The local --image: loaded, checked against the profile, its measured
 * form in *prog; when the order binds a digest, the image's must be it
 * (exit 10 otherwise, before anything is signed or written).
 */
static int
run_local_image(struct station_cli *st, const struct station_args *a,
    enum image_format fmt, unsigned long base, const struct target *t,
    const struct order_fw *of, struct image *img, struct image *prog,
    uint8_t digest[32])
{
	char err[1024], want[20], got[20];

	if (image_load(img, a->image, fmt, (uint32_t)base, err,
	    sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "%s", err);
	}
	if (image_check(img, t, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_USAGE, "%s", err);
	}
	/* Program the measured form (gaps as 0xFF): the flash then holds
	 * exactly the bytes the firmware digest covers. */
	if (image_measured(img, t, prog) != CS_OK ||
	    image_digest(img, t, digest) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "out of memory");
	}
	if (of->binds_digest && memcmp(digest, of->digest, 32) != 0) {
		return cs_cli_error(&st->cli, EXIT_FIRMWARE, "%s is not the "
		    "firmware order %s was made for: its digest is %s, the "
		    "order binds %s; nothing was signed or written",
		    a->image, a->order, order_fw_short(digest, got),
		    order_fw_short(of->digest, want));
	}
	return EXIT_OK;
}

int
station_cmd_run(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"order", required_argument, NULL, 'o'},
	    {"image", required_argument, NULL, 'i'},
	    {"format", required_argument, NULL, 'F'},
	    {"base", required_argument, NULL, 'b'},
	    {"target", required_argument, NULL, 't'},
	    {"probe", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"retry-s", required_argument, NULL, 'R'},
	    {"next-device-s", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli *st = ctx;
	struct station_args a;
	enum image_format   fmt;
	unsigned long       base;
	struct target       t;
	struct image        img, prog;
	struct held_image   held;
	struct order_fw     of;
	struct job_opts     jo;
	struct job_result   res;
	station_session    *s = NULL;
	uint8_t             digest[32];
	int                 rv;

	memset(&img, 0, sizeof(img));
	memset(&prog, 0, sizeof(prog));
	memset(&held, 0, sizeof(held));
	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if ((rv = run_options(st, cmd, &a, &jo, &fmt, &base)) != EXIT_OK ||
	    (rv = load_target(st, cmd, a.target, &t)) != EXIT_OK) {
		return rv;
	}
	if (a.image == NULL && (a.format != NULL || a.base != NULL)) {
		return cs_cli_usage(&st->cli, cmd, "--format and --base go with "
		    "--image FILE");
	}
	if ((rv = station_cli_session(st, &s)) != EXIT_OK) {
		return rv;
	}
	/* The order first: it decides which firmware, which part, and
	 * whether devices must be locked. */
	if ((rv = run_get_order(st, s, a.order, &of)) != EXIT_OK ||
	    (rv = run_order_checks(st, cmd, &a, &t, &of)) != EXIT_OK) {
		goto out;
	}
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	if (of.held) {
		if ((rv = run_fetch(st, s, &jo, &t, &of, &held)) != EXIT_OK) {
			goto out;
		}
		jo.image  = &held.img;
		jo.secure = true;
		run_fw_event(&jo, "held", of.digest, true, held.version,
		    held.flat_len);
	} else {
		if ((rv = run_local_image(st, &a, fmt, base, &t, &of, &img,
		         &prog, digest)) != EXIT_OK) {
			goto out;
		}
		jo.image = &prog;
		run_fw_event(&jo, "file", digest, of.binds_digest, 0,
		    prog.bytes);
	}
	jo.session          = s;
	jo.target           = &t;
	jo.firmware_sha256  = of.binds_digest ? of.digest : NULL;
	jo.firmware_checked = of.binds_digest;
	jo.require_lock     = of.require_lock;
	rv = job_run(&jo, &res);
	if (rv != CS_OK) {
		rv = cs_cli_error(&st->cli, EXIT_ERROR, "the job could not "
		    "start: %s", cs_strerror(rv));
		goto out;
	}
	run_summary(&jo, &res);
	rv = run_exit(&res);
out:
	station_session_close(s);
	held_image_free(&held);
	image_free(&prog);
	image_free(&img);
	return rv;
}

/* ------------------------------------------------------------------ */
/* read-uid, probes                                                    */
/* ------------------------------------------------------------------ */

int
station_cmd_read_uid(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"probe", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli *st = ctx;
	struct station_args a;
	struct target       t;
	probe              *p = NULL;
	uint8_t             uid[32];
	char                hex[65], err[512];
	bool                ff = true, zero = true;
	int                 rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_NO_CONFIG, &a)) != EXIT_OK || a.help ||
	    (rv = load_target(st, cmd, a.target, &t)) != EXIT_OK) {
		return rv;
	}
	if (a.nprobes != 1) {
		return cs_cli_usage(&st->cli, cmd, "%s", a.nprobes == 0 ?
		    "--probe URL is required (sim:, gdb://host:port, "
		    "gdb+unix:///path, cmsis-dap://SERIAL)" :
		    "read-uid reads one probe: give --probe once");
	}
	if (probe_open(&p, a.probes[0], 0, err, sizeof(err)) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "probe %s: %s",
		    a.probes[0], err);
	}
	if (probe_read(p, t.uid_addr, uid, t.uid_len) != CS_OK) {
		rv = cs_cli_error(&st->cli, EXIT_ERROR, "reading the UID at "
		    "0x%08" PRIx32 ": %s", t.uid_addr, probe_error(p));
		probe_close(p);
		return rv;
	}
	probe_close(p);
	printf("%s\n", station_cli_hex(uid, t.uid_len, hex));
	for (uint32_t i = 0; i < t.uid_len; i++) {
		ff   = ff && uid[i] == 0xff;
		zero = zero && uid[i] == 0x00;
	}
	if (ff || zero) {
		cs_cli_warn(&st->cli, "the UID reads as all 0x%s: erased or "
		    "unreadable memory, not a device UID; check the probe "
		    "connection and the target profile", ff ? "FF" : "00");
		return EXIT_UID;
	}
	return EXIT_OK;
}

/* One probe as a JSON object on its own line. */
static void
print_probe_json(const struct dap_usb_info *p)
{
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
		snprintf(url, sizeof(url), "cmsis-dap://%s", p->serial);
		cs_json_str(&j, "url", url);
	} else {
		cs_json_null(&j, "url");
	}
	cs_json_close(&j);
	putchar('\n');
}

int
station_cmd_probes(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct station_cli  *st   = ctx;
	struct station_args  a;
	struct dap_usb_info *info = NULL;
	size_t               n    = 0;
	char                 err[512];
	int                  rv;

	if ((rv = station_cli_begin(st, cmd, argc, argv, longopts, 0,
	    STATION_NO_CONFIG, &a)) != EXIT_OK || a.help) {
		return rv;
	}
	if ((rv = dap_usb_list(&info, &n, err, sizeof(err))) != CS_OK) {
		return cs_cli_error(&st->cli, EXIT_ERROR, "%s",
		    rv == CS_ENOMEM ? cs_strerror(rv) : err);
	}
	if (err[0] != '\0') {
		cs_cli_warn(&st->cli, "%s", err);
	}
	if (n == 0 && !a.json) {
		fprintf(stderr, "no CMSIS-DAP v2 probe found\n");
	}
	for (size_t i = 0; i < n; i++) {
		const struct dap_usb_info *p = &info[i];

		if (a.json) {
			print_probe_json(p);
			continue;
		}
		printf("%-24s %04x:%04x  %-32s %4u  %s%s\n",
		    p->serial[0] != '\0' ? p->serial : "(no serial)", p->vid,
		    p->pid, p->product, p->packet_size,
		    p->serial[0] != '\0' ? "cmsis-dap://" : "",
		    p->serial[0] != '\0' ? p->serial
		                         : "(no URL: no serial number)");
	}
	free(info);
	return EXIT_OK;
}
