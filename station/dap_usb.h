/*
 * dap_usb.h - CMSIS-DAP v2 probes over USB (libusb-1.0): find them, and
 * open one as a struct dap_transport (dap.h) for the DAP layer.
 *
 * A CMSIS-DAP v2 probe is a USB interface (of any class, usually vendor
 * specific 0xFF) whose interface string contains "CMSIS-DAP" and which has
 * a bulk OUT and a bulk IN endpoint; the first such pair is used.  v1
 * (HID) probes are not supported.
 *
 * This is the only file of the project that includes <libusb.h>.  All
 * functions may be called from any thread: the process has one libusb
 * context, made on first use and kept until exit.
 */
#ifndef DAP_USB_H
#define DAP_USB_H

#include "dap.h"

#include <stddef.h>
#include <stdint.h>

/* Longest serial or product string kept (USB strings are at most 126
 * UTF-16 units; non-ASCII characters read as '?'). */
#define DAP_USB_STRING_MAX 128u

/* Most probes listed or considered by dap_usb_list / dap_usb_open. */
#define DAP_USB_PROBES_MAX 64u

/* One attached probe. */
struct dap_usb_info {
	uint16_t vid, pid;
	uint8_t  bus, address;   /* where it is plugged in right now */
	uint8_t  interface;      /* bInterfaceNumber of the DAP interface */
	uint8_t  ep_out, ep_in;  /* its bulk endpoint addresses */
	uint16_t packet_size;    /* wMaxPacketSize of those endpoints */
	char     serial[DAP_USB_STRING_MAX];  /* "" when it has none */
	char     product[DAP_USB_STRING_MAX]; /* "" when it has none */
};

/*
 * List the attached CMSIS-DAP v2 probes into *out (an array of *n, free()
 * it; NULL when *n is 0).  Reading a probe's strings opens it for a
 * moment; a device that cannot be opened is skipped and, on CS_OK, err
 * then holds a note saying so (e.g. missing udev rules), otherwise "".
 * Errors: CS_EIO (libusb cannot start or enumerate; err says why),
 * CS_ENOMEM.
 */
int dap_usb_list(struct dap_usb_info **out, size_t *n, char *err,
    size_t errlen);

/*
 * Open the one probe that matches serial (exact; NULL or "" matches any)
 * and vid/pid (each 0 matches any), claim its DAP interface (detaching a
 * kernel driver bound to it, reattached on close) and fill *t.  The
 * transport's xfer sends one command on bulk OUT and reads one response
 * on bulk IN, each bounded by timeout_ms; it returns CS_ECLOSED when the
 * probe was unplugged (or the USB link failed: LIBUSB_ERROR_NO_DEVICE,
 * PIPE, IO), CS_ETIMEDOUT, CS_EPROTO (response larger than rsp_size) or
 * CS_EIO.  t->close releases the interface and closes the device; the
 * transport is used by one thread at a time.
 * Errors: CS_ENOENT (no probe matches), CS_EINVAL (several match: err
 * lists them), CS_EUNAVAIL (cannot open or claim it: busy, permissions),
 * CS_EIO, CS_ENOMEM.
 */
int dap_usb_open(const char *serial, uint16_t vid, uint16_t pid,
    struct dap_transport *t, char *err, size_t errlen);

#endif /* DAP_USB_H */
