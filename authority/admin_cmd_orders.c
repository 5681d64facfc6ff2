/*
 * admin_cmd_orders.c - countersign-admin's commands for production orders
 * and the devices signed for them: `order create`, `order list`, `order
 * show`, `order quota`, `order close` and `device show`.
 *
 * `order create --target NAME --firmware FILE` loads the image here
 * (ELF, Intel HEX, or raw binary with --firmware-base), checks it against
 * the target profile and sends its segments: the authority checks them
 * again against its own copy of the profile, computes the firmware digest
 * (docs/record-format.md) and keeps the image encrypted.  --digest-only
 * sends only the digest computed here, as the record binds it.  `order
 * firmware ID --replace FILE | --withdraw` changes the held image.
 */
#include "admin_cli.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"
#include "cs_image.h"
#include "cs_target.h"
#include "firmware.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CS_TARGETS_DIR
#error "CS_TARGETS_DIR (the installed target profiles) must be defined"
#endif

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

static void
order_json(struct cs_json *j, const Countersign__V1__OrderStatus *o)
{
	char d[ADMIN_DATE_LEN];

	cs_json_open(j, NULL);
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
	cs_json_u64(j, "unlocked", o->unlocked);
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
	cs_json_str(j, "target", o->target);
	cs_json_bool(j, "require_lock", o->require_lock);
	cs_json_bool(j, "firmware_held", o->firmware_held);
	cs_json_u64(j, "firmware_size", o->firmware_size);
	cs_json_u64(j, "firmware_version", o->firmware_version);
	cs_json_bool(j, "firmware_withdrawn", o->firmware_withdrawn);
	cs_json_u64(j, "unlocked", o->unlocked);
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
	printf("unlocked    %" PRIu64 "%s\n", o->unlocked, o->require_lock
	    ? " (the order requires the lock)" : "");
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
	admin_cli_hex(stdout, o->firmware_sha256.data,
	    o->firmware_sha256.len);
	printf("%s\n", o->firmware_sha256.len == 0
	    ? "none (records bind no firmware)" : " (SHA-256)");
	if (o->firmware_withdrawn) {
		printf("image       withdrawn (version %" PRIu32 "): nothing "
		    "more is signed\n", o->firmware_version);
	} else if (o->firmware_held) {
		printf("image       held, version %" PRIu32 ", %" PRIu64
		    " bytes (encrypted; stations fetch it)\n",
		    o->firmware_version, o->firmware_size);
	} else {
		printf("image       not held (%s)\n",
		    o->firmware_sha256.len != 0 ? "digest only" : "none");
	}
	printf("target      %s\n", o->target != NULL && o->target[0] != '\0'
	    ? o->target : "none");
	printf("lock        %s\n", o->require_lock
	    ? "required (devices must be reported locked)" : "not required");
	printf("created     %s\n", admin_cli_time(o->created_unix_s, t));
}

/* Print the order of an OrderReply in the chosen format. */
static int
order_reply_print(struct admin *a, const Countersign__V1__OrderReply *rep)
{
	if (rep->order == NULL) {
		return admin_cli_fail(a, "the authority's reply carried no "
		    "order");
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		order_json(&j, rep->order);
		putchar('\n');
	} else {
		order_text(rep->order);
	}
	return ADMIN_EXIT_OK;
}

/* An image file and how to read it (--firmware-format, --firmware-base). */
struct image_args {
	const char *file, *format, *base, *targets_dir;
};

/* Target profiles: --targets-dir, else the authority's own targets_dir
 * (from its configuration, when this host has it), else where the
 * authority looks by default. */
static int
load_profile(struct admin *a, const struct image_args *ia, const char *name,
    struct target *t)
{
	const char *const defaults[] = {FIRMWARE_ETC_TARGETS, CS_TARGETS_DIR,
	    NULL};
	const char       *given[]    = {ia->targets_dir, NULL};
	char              err[1024];

	if (given[0] == NULL && a->url == NULL &&
	    admin_cli_config(a) == ADMIN_EXIT_OK) {
		given[0] = a->cfg.firmware_targets_dir;
	}
	if (target_load(t, name, given[0] != NULL ? given : defaults,
	        err, sizeof(err)) != CS_OK) {
		return admin_cli_fail(a, "target %s: %s", name, err);
	}
	return ADMIN_EXIT_OK;
}

/* Load the image of ia (and check it against t when t is given). */
static int
load_image(struct admin *a, const struct cs_cli_cmd *cmd,
    const struct image_args *ia, const struct target *t, struct image *img)
{
	enum image_format fmt  = IMAGE_AUTO;
	uint64_t          base = 0;
	char              err[1024];

	memset(img, 0, sizeof(*img));
	if (ia->format != NULL) {
		if (strcmp(ia->format, "elf") == 0) {
			fmt = IMAGE_ELF;
		} else if (strcmp(ia->format, "ihex") == 0) {
			fmt = IMAGE_IHEX;
		} else if (strcmp(ia->format, "bin") == 0) {
			fmt = IMAGE_BIN;
		} else {
			return cs_cli_usage(&a->cli, cmd, "--firmware-format "
			    "is elf, ihex or bin, not \"%s\"", ia->format);
		}
	}
	if ((fmt == IMAGE_BIN) != (ia->base != NULL)) {
		return cs_cli_usage(&a->cli, cmd, "a raw binary needs "
		    "--firmware-format bin and --firmware-base ADDR (and "
		    "--firmware-base only goes with bin)");
	}
	if (ia->base != NULL) {
		/* An address: decimal or 0x hex. */
		char *end = NULL;

		errno = 0;
		base  = strtoull(ia->base, &end, 0);
		if (ia->base[0] < '0' || ia->base[0] > '9' || *end != '\0' ||
		    errno != 0 || base > UINT32_MAX) {
			return cs_cli_usage(&a->cli, cmd, "--firmware-base "
			    "\"%s\": an address from 0 to 0xFFFFFFFF (decimal "
			    "or 0x hex)", ia->base);
		}
	}
	if (image_load(img, ia->file, fmt, (uint32_t)base, err, sizeof(err)) !=
	    CS_OK) {
		return admin_cli_fail(a, "cannot load %s: %s", ia->file, err);
	}
	if (t != NULL && image_check(img, t, err, sizeof(err)) != CS_OK) {
		image_free(img);
		return admin_cli_fail(a, "%s does not fit target %s: %s",
		    ia->file, t->name, err);
	}
	return ADMIN_EXIT_OK;
}

/* The request's segments, pointing into img (segs has room for all). */
static size_t
image_segments(const struct image *img, Countersign__V1__FirmwareSegment *seg,
    Countersign__V1__FirmwareSegment **ptrs)
{
	for (size_t i = 0; i < img->nseg; i++) {
		countersign__v1__firmware_segment__init(&seg[i]);
		seg[i].addr      = img->seg[i].addr;
		seg[i].data.data = img->seg[i].data;
		seg[i].data.len  = img->seg[i].len;
		ptrs[i]          = &seg[i];
	}
	return img->nseg;
}

/* Options of order create, before they become a request. */
struct order_args {
	const char       *id, *key, *expires, *target;
	struct image_args image;
	uint64_t          product, quota, uid_len;
	bool              have_product, have_quota, have_uid_len;
	bool              digest_only, require_lock;
	char      **cms;
	size_t      n_cms;
};

/* Returns ADMIN_EXIT_OK to go on, or *done set and the exit status (0
 * after --help). */
static int
order_create_opts(struct admin *a, const struct cs_cli_cmd *cmd, int argc,
    char **argv, struct order_args *o, bool *done)
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
	    {"firmware-format", required_argument, NULL, 'F'},
	    {"firmware-base", required_argument, NULL, 'B'},
	    {"targets-dir", required_argument, NULL, 'T'},
	    {"target", required_argument, NULL, 't'},
	    {"digest-only", no_argument, NULL, 'd'},
	    {"require-lock", no_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt, rv = ADMIN_EXIT_OK;

	*done = true;
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
			o->image.file = optarg;
			break;
		case 'F':
			o->image.format = optarg;
			break;
		case 'B':
			o->image.base = optarg;
			break;
		case 'T':
			o->image.targets_dir = optarg;
			break;
		case 't':
			o->target = optarg;
			break;
		case 'd':
			o->digest_only = true;
			break;
		case 'L':
			o->require_lock = true;
			break;
		case 'p':
			rv = admin_cli_num(a, cmd, "--product", optarg, 0,
			    UINT32_MAX, &o->product);
			o->have_product = true;
			break;
		case 'q':
			rv = admin_cli_num(a, cmd, "--quota", optarg, 1,
			    ADMIN_QUOTA_MAX, &o->quota);
			o->have_quota = true;
			break;
		case 'u':
			rv = admin_cli_num(a, cmd, "--uid-len", optarg, 1,
			    ADMIN_UID_MAX, &o->uid_len);
			o->have_uid_len = true;
			break;
		default:
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
		if (rv != ADMIN_EXIT_OK) {
			return rv;
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	const char *missing = o->id == NULL ? "--id"
	    : !o->have_product              ? "--product"
	    : o->key == NULL                ? "--key"
	    : !o->have_quota                ? "--quota"
	    : !o->have_uid_len              ? "--uid-len"
	                                    : NULL;
	if (missing != NULL) {
		return cs_cli_usage(&a->cli, cmd, "%s is required", missing);
	}
	if (o->target == NULL && (o->image.file != NULL || o->require_lock)) {
		return cs_cli_usage(&a->cli, cmd, "%s needs --target NAME (the "
		    "profile the image is checked against%s)",
		    o->image.file != NULL ? "--firmware" : "--require-lock",
		    o->image.file != NULL ? "" : " and that says how to lock");
	}
	if (o->image.file == NULL && (o->digest_only ||
	        o->image.format != NULL || o->image.base != NULL)) {
		return cs_cli_usage(&a->cli, cmd, "--digest-only, "
		    "--firmware-format and --firmware-base go with --firmware "
		    "FILE");
	}
	*done = false;
	return ADMIN_EXIT_OK;
}

int
admin_cmd_order_create(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__CreateOrderRequest req =
	    COUNTERSIGN__V1__CREATE_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply *rep = NULL;
	struct admin                *a   = ctx;
	struct order_args            o   = {0};
	struct target                t;
	struct image                 img = {0};
	Countersign__V1__FirmwareSegment  seg[IMAGE_MAX_SEGMENTS];
	Countersign__V1__FirmwareSegment *segp[IMAGE_MAX_SEGMENTS];
	uint8_t                      fw[CS_SHA256_LEN];
	char                         err[256];
	bool                         done;
	int                          rv;

	if ((o.cms = calloc((size_t)argc, sizeof(*o.cms))) == NULL) {
		return admin_cli_fail(a, "out of memory");
	}
	rv = order_create_opts(a, cmd, argc, argv, &o, &done);
	if (done) {
		goto out;
	}
	if (o.expires != NULL && admin_parse_date(o.expires, time(NULL),
	    &req.expires_unix_s, err, sizeof(err)) != CS_OK) {
		rv = cs_cli_usage(&a->cli, cmd, "--expires: %s", err);
		goto out;
	}
	if (o.target != NULL &&
	    (rv = load_profile(a, &o.image, o.target, &t)) != ADMIN_EXIT_OK) {
		goto out;
	}
	if (o.require_lock && !t.can_lock) {
		rv = admin_cli_fail(a, "target %s cannot be locked (its profile "
		    "has no [protect] section): an order on it cannot require "
		    "the lock", t.name);
		goto out;
	}
	if (o.image.file != NULL) {
		if ((rv = load_image(a, cmd, &o.image, &t, &img)) !=
		    ADMIN_EXIT_OK) {
			goto out;
		}
		if (image_digest(&img, &t, fw) != CS_OK) {
			rv = admin_cli_fail(a, "cannot compute the digest of %s",
			    o.image.file);
			goto out;
		}
		/* Both: the authority refuses an image whose digest it
		 * computes differently. */
		req.firmware_sha256.data = fw;
		req.firmware_sha256.len  = sizeof(fw);
		if (!o.digest_only) {
			req.n_firmware_segments = image_segments(&img, seg,
			    segp);
			req.firmware_segments = segp;
		}
	}
	req.target       = (char *)(o.target != NULL ? o.target : "");
	req.require_lock = o.require_lock;
	req.order_id   = (char *)o.id;
	req.product_id = (uint32_t)o.product;
	req.key_label  = (char *)o.key;
	req.quota      = o.quota;
	req.uid_len    = (uint32_t)o.uid_len;
	req.cms        = o.cms;
	req.n_cms      = o.n_cms;
	if ((rv = admin_cli_call(a, "CreateOrder", &req, &rep)) ==
	    ADMIN_EXIT_OK) {
		if (!a->cli.json) {
			printf("order created\n");
		}
		rv = order_reply_print(a, rep);
	}
out:
	admin_cli_free(rep);
	image_free(&img);
	free(o.cms);
	return rv;
}

int
admin_cmd_order_firmware(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"replace", required_argument, NULL, 'r'},
	    {"withdraw", no_argument, NULL, 'w'},
	    {"firmware-format", required_argument, NULL, 'F'},
	    {"firmware-base", required_argument, NULL, 'B'},
	    {"targets-dir", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__SetOrderFirmwareRequest req =
	    COUNTERSIGN__V1__SET_ORDER_FIRMWARE_REQUEST__INIT;
	Countersign__V1__ShowOrderRequest show =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply      *rep = NULL, *cur = NULL;
	Countersign__V1__FirmwareSegment  seg[IMAGE_MAX_SEGMENTS];
	Countersign__V1__FirmwareSegment *segp[IMAGE_MAX_SEGMENTS];
	struct admin                     *a  = ctx;
	struct image_args                 ia = {0};
	struct image                      img = {0};
	struct target                     t;
	bool                              withdraw = false;
	int                               opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			ia.file = optarg;
			break;
		case 'w':
			withdraw = true;
			break;
		case 'F':
			ia.format = optarg;
			break;
		case 'B':
			ia.base = optarg;
			break;
		case 'T':
			ia.targets_dir = optarg;
			break;
		default:
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 1)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	if (withdraw == (ia.file != NULL)) {
		return cs_cli_usage(&a->cli, cmd, "give either --replace FILE "
		    "or --withdraw");
	}
	req.order_id = argv[optind];
	req.withdraw = withdraw;
	if (!withdraw) {
		/* The image is checked here against the order's own target,
		 * as the authority will check it. */
		show.order_id = req.order_id;
		if ((rv = admin_cli_call(a, "ShowOrder", &show, &cur)) !=
		    ADMIN_EXIT_OK) {
			goto out;
		}
		if (cur->order == NULL || cur->order->target == NULL ||
		    cur->order->target[0] == '\0') {
			rv = admin_cli_fail(a, "order %s is not bound to a "
			    "target, so it cannot hold an image; create a new "
			    "order with --target", req.order_id);
			goto out;
		}
		if ((rv = load_profile(a, &ia, cur->order->target, &t)) !=
		        ADMIN_EXIT_OK ||
		    (rv = load_image(a, cmd, &ia, &t, &img)) !=
		        ADMIN_EXIT_OK) {
			goto out;
		}
		req.n_firmware_segments = image_segments(&img, seg, segp);
		req.firmware_segments   = segp;
	}
	if ((rv = admin_cli_call(a, "SetOrderFirmware", &req, &rep)) ==
	    ADMIN_EXIT_OK) {
		if (!a->cli.json) {
			printf("%s\n", withdraw ? "image withdrawn"
			                        : "image replaced");
		}
		rv = order_reply_print(a, rep);
	}
out:
	admin_cli_free(cur);
	admin_cli_free(rep);
	image_free(&img);
	return rv;
}

int
admin_cmd_order_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__ListOrdersRequest req =
	    COUNTERSIGN__V1__LIST_ORDERS_REQUEST__INIT;
	Countersign__V1__ListOrdersReply *rep = NULL;
	struct admin                     *a   = ctx;
	char                              d[ADMIN_DATE_LEN];
	int                               rv, wi = 5, wk = 3;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 0, &rv) ||
	    (rv = admin_cli_call(a, "ListOrders", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		admin_cli_list_begin(&j, "orders");
		for (size_t i = 0; i < rep->n_orders; i++) {
			order_json(&j, rep->orders[i]);
		}
		admin_cli_list_end(&j);
		goto out;
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
out:
	admin_cli_free(rep);
	return rv;
}

/* What show, quota and close ask of the authority. */
enum order_verb { ORDER_SHOW, ORDER_QUOTA, ORDER_CLOSE };

/* show, quota and close: one order id, the change for quota, one
 * OrderReply. */
static int
order_one(struct admin *a, const struct cs_cli_cmd *cmd, int argc,
    char **argv, enum order_verb verb)
{
	Countersign__V1__ShowOrderRequest show =
	    COUNTERSIGN__V1__SHOW_ORDER_REQUEST__INIT;
	Countersign__V1__AdjustQuotaRequest adjust =
	    COUNTERSIGN__V1__ADJUST_QUOTA_REQUEST__INIT;
	Countersign__V1__CloseOrderRequest close_req =
	    COUNTERSIGN__V1__CLOSE_ORDER_REQUEST__INIT;
	Countersign__V1__OrderReply *rep = NULL;
	int                          rv;

	/* "+": stop at the order id, so that "-5" after it is the change
	 * and not an unknown option. */
	if (admin_cli_args_done(a, cmd, argc, argv, "+h",
	    verb == ORDER_QUOTA ? 2 : 1, &rv)) {
		return rv;
	}
	char *id = argv[optind];
	switch (verb) {
	case ORDER_QUOTA:
		if (admin_parse_delta(argv[optind + 1], ADMIN_QUOTA_MAX,
		    &adjust.delta) != CS_OK) {
			return cs_cli_usage(&a->cli, cmd, "the change \"%s\" "
			    "must be +N or -N (the sign is required), N from "
			    "1 to %" PRIu64, argv[optind + 1],
			    ADMIN_QUOTA_MAX);
		}
		adjust.order_id = id;
		rv = admin_cli_call(a, "AdjustQuota", &adjust, &rep);
		break;
	case ORDER_CLOSE:
		close_req.order_id = id;
		rv = admin_cli_call(a, "CloseOrder", &close_req, &rep);
		break;
	case ORDER_SHOW:
		show.order_id = id;
		rv = admin_cli_call(a, "ShowOrder", &show, &rep);
		break;
	}
	if (rv == ADMIN_EXIT_OK) {
		rv = order_reply_print(a, rep);
	}
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_order_show(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	return order_one(ctx, cmd, argc, argv, ORDER_SHOW);
}

int
admin_cmd_order_quota(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	return order_one(ctx, cmd, argc, argv, ORDER_QUOTA);
}

int
admin_cmd_order_close(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	return order_one(ctx, cmd, argc, argv, ORDER_CLOSE);
}

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
	cs_json_str(j, "lock", d->lock);
	cs_json_bool(j, "firmware_checked", d->firmware_checked);
	cs_json_u64(j, "issued_unix_s", d->issued_unix_s);
	cs_json_str(j, "issued", admin_cli_time(d->issued_unix_s, t));
	cs_json_bytes(j, "record", d->record.data, d->record.len);
	cs_json_close(j);
}

static void
device_text(const Countersign__V1__DeviceInfo *d)
{
	char t[ADMIN_TIME_LEN];

	printf("uid      ");
	admin_cli_hex(stdout, d->uid.data, d->uid.len);
	printf("\norder    %s\n", d->order_id);
	printf("product  %" PRIu32 "\n", d->product_id);
	printf("station  %s\n", d->station);
	printf("serial   %" PRIu64 "\n", d->serial);
	printf("state    %s\n", d->state);
	printf("lock     %s\n", d->lock[0] != '\0' ? d->lock
	    : "not reported");
	printf("firmware %s\n", d->firmware_checked
	    ? "checked against the order's digest" : "not checked");
	printf("issued   %s\n", admin_cli_time(d->issued_unix_s, t));
	printf("record   ");
	admin_cli_hex(stdout, d->record.data, d->record.len);
	printf(" (%zu bytes)\n", d->record.len);
}

/* --record-out: the one matching record, into a new file. */
static int
write_record(struct admin *a, const struct cs_cli_cmd *cmd,
    const Countersign__V1__DeviceReply *rep, const char *path)
{
	int fd, rv;

	if (rep->n_devices > 1) {
		return cs_cli_usage(&a->cli, cmd, "the UID has records in %zu "
		    "orders: give --order ID to choose the one for "
		    "--record-out", rep->n_devices);
	}
	const ProtobufCBinaryData *r = &rep->devices[0]->record;
	if ((rv = admin_cli_create(a, path, &fd)) != ADMIN_EXIT_OK) {
		return rv;
	}
	if ((rv = admin_cli_write(a, fd, path, r->data, r->len)) !=
	    ADMIN_EXIT_OK || close(fd) != 0) {
		rv = rv != ADMIN_EXIT_OK ? rv
		    : admin_cli_fail(a, "cannot write %s", path);
		unlink(path);
		return rv;
	}
	if (!a->cli.json) {
		printf("record (%zu bytes) written to %s\n", r->len, path);
	}
	return ADMIN_EXIT_OK;
}

int
admin_cmd_device_show(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
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
	struct admin                 *a   = ctx;
	const char                   *record_out = NULL;
	uint8_t                       uid[ADMIN_UID_MAX];
	int                           opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			req.order_id = optarg;
			break;
		case 'r':
			record_out = optarg;
			break;
		default:
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 1)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	if (cs_hex_decode(argv[optind], uid, sizeof(uid), &req.uid.len) !=
	    CS_OK) {
		return cs_cli_usage(&a->cli, cmd, "UID \"%s\": expected 1 to "
		    "%u bytes of hex (0x prefix and colons allowed)",
		    argv[optind], ADMIN_UID_MAX);
	}
	req.uid.data = uid;
	if ((rv = admin_cli_call(a, "ShowDevice", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (rep->n_devices == 0) {
		rv = admin_cli_fail(a, "no device with UID %s%s%s",
		    argv[optind], req.order_id[0] != '\0' ? " in order " : "",
		    req.order_id);
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		admin_cli_list_begin(&j, "devices");
		for (size_t i = 0; i < rep->n_devices; i++) {
			device_json(&j, rep->devices[i]);
		}
		admin_cli_list_end(&j);
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
	admin_cli_free(rep);
	return rv;
}
