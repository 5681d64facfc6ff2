/*
 * admin_cmd_orders.c - countersign-admin's commands for production orders
 * and the devices signed for them: `order create`, `order list`, `order
 * show`, `order quota`, `order close` and `device show`.
 *
 * `order create --firmware FILE` hashes the image here and sends only its
 * SHA-256: images run to megabytes, far over what the Admin service takes
 * in one message, and the digest is all the records bind.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "admin_cli.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIRMWARE_CHUNK 65536u

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

/* SHA-256 of a file of any size, read in chunks. */
static int
file_sha256(struct admin *a, const char *path, uint8_t out[CS_SHA256_LEN])
{
	static uint8_t buf[FIRMWARE_CHUNK];
	wc_Sha256      sha;
	FILE          *fp;
	size_t         n;
	int            rv = ADMIN_EXIT_OK;

	if ((fp = fopen(path, "rb")) == NULL) {
		return admin_cli_fail(a, "cannot open %s: %s", path,
		    strerror(errno));
	}
	if (wc_InitSha256(&sha) != 0) {
		fclose(fp);
		return admin_cli_fail(a, "cannot initialise SHA-256");
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
		if (wc_Sha256Update(&sha, buf, (word32)n) != 0) {
			rv = admin_cli_fail(a, "SHA-256 of %s failed", path);
			break;
		}
	}
	if (rv == ADMIN_EXIT_OK && ferror(fp)) {
		rv = admin_cli_fail(a, "cannot read %s", path);
	}
	if (rv == ADMIN_EXIT_OK && wc_Sha256Final(&sha, out) != 0) {
		rv = admin_cli_fail(a, "SHA-256 of %s failed", path);
	}
	wc_Sha256Free(&sha);
	fclose(fp);
	return rv;
}

/* Options of order create, before they become a request. */
struct order_args {
	const char *id, *key, *firmware, *expires;
	uint64_t    product, quota, uid_len;
	bool        have_product, have_quota, have_uid_len;
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
			o->firmware = optarg;
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
	if (o.firmware != NULL) {
		if ((rv = file_sha256(a, o.firmware, fw)) != ADMIN_EXIT_OK) {
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
	if ((rv = admin_cli_call(a, "CreateOrder", &req, &rep)) ==
	    ADMIN_EXIT_OK) {
		if (!a->cli.json) {
			printf("order created\n");
		}
		rv = order_reply_print(a, rep);
	}
out:
	admin_cli_free(rep);
	free(o.cms);
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
