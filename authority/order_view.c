/*
 * order_view.c - StoredOrder to OrderStatus (order_view.h).
 */
#include "order_view.h"

#include "cs_err.h"

#include <time.h>

bool
order_active(const StoredOrder *o)
{
	return !o->closed && o->issued < o->quota &&
	    (o->expires_unix_s == 0 ||
	        (uint64_t)time(NULL) < o->expires_unix_s);
}

void
order_view(Countersign__V1__OrderStatus *os, const StoredOrder *o)
{
	countersign__v1__order_status__init(os);
	os->order_id        = o->order_id;
	os->product_id      = o->product_id;
	os->quota           = o->quota;
	os->issued          = o->issued;
	os->confirmed       = o->confirmed;
	os->failed          = o->failed;
	os->remaining       = o->quota > o->issued ? o->quota - o->issued : 0;
	os->uid_len         = o->uid_len;
	os->active          = order_active(o);
	os->closed          = o->closed;
	os->expires_unix_s  = o->expires_unix_s;
	os->n_cms           = o->n_cms;
	os->cms             = o->cms;
	os->key_label       = o->key_label;
	os->firmware_sha256 = o->firmware_sha256;
	os->created_unix_s  = o->created_unix_s;
	os->target          = o->target;
	os->require_lock    = o->require_lock;
	os->unlocked        = o->unlocked;
}

int
order_view_firmware(Countersign__V1__OrderStatus *os, store_txn *txn)
{
	StoredFirmware *f = NULL;
	int             rv;

	os->firmware_held      = false;
	os->firmware_size      = 0;
	os->firmware_version   = 0;
	os->firmware_withdrawn = false;
	rv = store_firmware_get(txn, os->order_id, &f);
	if (rv == CS_ENOENT) {
		return CS_OK;
	}
	if (rv != CS_OK) {
		return rv;
	}
	os->firmware_held      = !f->withdrawn && f->chunks > 0;
	os->firmware_size      = f->size;
	os->firmware_version   = f->version;
	os->firmware_withdrawn = f->withdrawn;
	countersign__v1__stored_firmware__free_unpacked(f, NULL);
	return CS_OK;
}
