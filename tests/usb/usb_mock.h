/*
 * usb_mock.h - a simulated CMSIS-DAP v2 probe on a simulated USB bus, for
 * tests of dap_usb.c through the unmodified libusb-1.0.
 *
 * umockdev presents a sysfs tree (a root hub on bus 1 and the probe at
 * bus 1 address 2: VID 0xC251 PID 0xF002, interface 0 of class 0xFF with
 * interface string "CMSIS-DAP v2", bulk OUT 0x01 and IN 0x81 of 512 bytes)
 * and answers the probe's usbfs ioctls: every bulk OUT URB goes to
 * dap_sim_command() and its response completes the next bulk IN URB;
 * control URBs answer GET_DESCRIPTOR(string).
 *
 * The process must run under umockdev-wrapper (LD_PRELOAD of
 * libumockdev-preload), and the mock must exist before libusb is first
 * used: libusb enumerates once at start, then follows uevents.
 */
#ifndef USB_MOCK_H
#define USB_MOCK_H

#include "dap_sim.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct usb_mock usb_mock;

/* Build the testbed and plug the probe in, answering with sim (borrowed;
 * may be NULL until usb_mock_set_sim). */
int  usb_mock_new(usb_mock **out, const char *serial, dap_sim *sim);
void usb_mock_free(usb_mock *m);

/* Answer later commands with sim (borrowed). */
void usb_mock_set_sim(usb_mock *m, dap_sim *sim);

/* Pull the probe out: URBs in flight complete with -ESHUTDOWN, new ones
 * fail with ENODEV, and the device leaves sysfs with a "remove" uevent.
 * A command the sim does not answer (its unplug_after) does the same. */
void usb_mock_unplug(usb_mock *m);

/* Plug it in again (an "add" uevent). */
void usb_mock_replug(usb_mock *m);

/* Leave the next n bulk IN URBs unanswered (a probe that hangs): the
 * host's timeout then discards them. */
void usb_mock_swallow(usb_mock *m, unsigned n);

/* Counters, for checks. */
struct usb_mock_stats {
	unsigned bulk_out;   /* commands received */
	unsigned bulk_in;    /* responses delivered */
	unsigned control;    /* control URBs answered */
	unsigned discarded;  /* URBs the host cancelled */
	unsigned claims;     /* CLAIMINTERFACE */
	unsigned releases;   /* RELEASEINTERFACE */
	unsigned unknown;    /* ioctls not handled */
	bool     unplugged;
};
void usb_mock_stats(usb_mock *m, struct usb_mock_stats *st);

/* True when this process runs with libumockdev-preload (else the mock
 * cannot work and the caller should fail with a clear message). */
bool usb_mock_preloaded(void);

#endif /* USB_MOCK_H */
