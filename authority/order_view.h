/*
 * order_view.h - how an order looks from outside: the wire OrderStatus
 * that stations (GetOrder, Report) and officers (Admin) are shown.
 */
#ifndef ORDER_VIEW_H
#define ORDER_VIEW_H

#include "countersign/v1/authority.pb-c.h"
#include "store.h"

#include <stdbool.h>

/* Open, not expired and with quota left. */
bool order_active(const StoredOrder *o);

/*
 * Fill os (initialised here) from o.  os points into o: it is valid as long
 * as o is, and must not be freed with protobuf-c's free_unpacked.
 */
void order_view(Countersign__V1__OrderStatus *os, const StoredOrder *o);

/*
 * Fill os's firmware fields (firmware_held, _size, _version, _withdrawn)
 * from the order's firmware row in txn; an order without one holds no
 * image.  Only numbers are copied: os does not point into the row.
 * Returns the store's error (CS_OK when there is no row).
 */
int order_view_firmware(Countersign__V1__OrderStatus *os, store_txn *txn);

#endif /* ORDER_VIEW_H */
