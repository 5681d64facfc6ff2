/*
 * usb_mock.c - the CMSIS-DAP v2 probe of usb_mock.h: a umockdev testbed
 * with the probe's sysfs entries and an ioctl handler that plays the
 * kernel's usbfs for it.
 *
 * umockdev runs the handler on its own worker thread, and libusb reaps
 * URBs from whichever thread handles events, so all state here sits
 * behind one mutex.  The client's memory is reached only through
 * UMockdevIoctlData (resolve/update/set_ptr): the handler shares the
 * address space, but the API is what makes the writes reach the client
 * when an ioctl completes.
 *
 * The URB model is usbfs's: URBs belong to the open file they were
 * submitted on; SUBMITURB queues, REAPURBNDELAY hands back one completed
 * URB of that file or EAGAIN, DISCARDURB cancels one still in flight (it
 * is then reaped with -ENOENT).  A disconnect completes what is in flight
 * with -ESHUTDOWN and fails new submissions with ENODEV, which libusb
 * reports as LIBUSB_ERROR_NO_DEVICE.  Bulk responses are the device's:
 * one answered command's response goes to the next bulk IN URB, whoever
 * submitted it (a late one included, as on a real probe).
 */
#include "usb_mock.h"

#include <errno.h>
#include <linux/usbdevice_fs.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <umockdev.h>

#define MOCK_DEVNODE "/dev/bus/usb/001/002"
#define MOCK_HUB     "/sys/devices/pci0000:00/0000:00:14.0/usb1"
#define MOCK_PROBE   MOCK_HUB "/1-1"
#define MOCK_EP_OUT  0x01u
#define MOCK_EP_IN   0x81u
#define MOCK_PACKET  512u

/* String descriptor indexes, as in the descriptors below. */
#define STR_MANUFACTURER 1u
#define STR_PRODUCT      2u
#define STR_SERIAL       3u
#define STR_INTERFACE    4u

#define MOCK_MANUFACTURER "Countersign"
#define MOCK_PRODUCT      "CSIM CMSIS-DAP"
#define MOCK_INTERFACE    "CMSIS-DAP v2"

/* One URB between SUBMITURB and REAPURB.  URBs belong to the file they
 * were submitted on (each libusb_open is one), as in usbfs. */
struct mock_urb {
	UMockdevIoctlClient *owner; /* referenced */
	UMockdevIoctlData *urb;    /* struct usbdevfs_urb, resolved */
	UMockdevIoctlData *buf;    /* its buffer (NULL when empty) */
	int                status; /* what the reap reports */
	int                actual;
	uint8_t            ep;
};

struct usb_mock {
	UMockdevTestbed   *bed;
	UMockdevIoctlBase *handler;
	char               serial[64];

	GMutex   lock;
	dap_sim *sim;
	GQueue   waiting_in; /* IN URBs with no response yet */
	GQueue   held;       /* IN URBs a hanging probe never answers */
	GQueue   done;       /* completed URBs, reaped in order */
	GQueue   responses;  /* GBytes, oldest first */
	unsigned swallow;
	bool     present;    /* in sysfs */
	struct usb_mock_stats st;
};

static void
mock_urb_free(struct mock_urb *u)
{
	if (u->buf != NULL) {
		g_object_unref(u->buf);
	}
	g_object_unref(u->urb);
	g_object_unref(u->owner);
	g_free(u);
}

/* A string descriptor for index idx (0: the language list, en-US). */
static size_t
mock_string_desc(const usb_mock *m, uint8_t idx, uint8_t *d, size_t len)
{
	const char *s;
	size_t      n;

	if (idx == 0) {
		static const uint8_t langs[] = {4, 3, 0x09, 0x04};

		memcpy(d, langs, sizeof(langs));
		return sizeof(langs);
	}
	switch (idx) {
	case STR_MANUFACTURER:
		s = MOCK_MANUFACTURER;
		break;
	case STR_PRODUCT:
		s = MOCK_PRODUCT;
		break;
	case STR_SERIAL:
		s = m->serial;
		break;
	case STR_INTERFACE:
		s = MOCK_INTERFACE;
		break;
	default:
		return 0;
	}
	n = strlen(s);
	if (2 + 2 * n > len || 2 + 2 * n > 255) {
		return 0;
	}
	d[0] = (uint8_t)(2 + 2 * n);
	d[1] = 3;
	for (size_t i = 0; i < n; i++) {
		d[2 + 2 * i] = (uint8_t)s[i];
		d[3 + 2 * i] = 0;
	}
	return 2 + 2 * n;
}

/* Answer a control URB (setup packet in the first 8 bytes). */
static void
mock_control(usb_mock *m, struct mock_urb *u)
{
	uint8_t  desc[256];
	size_t   n = 0, room;
	uint8_t *setup;
	uint16_t wvalue, wlength;

	m->st.control++;
	if (u->buf == NULL || u->buf->data_len < 8) {
		u->status = -EINVAL;
		return;
	}
	setup   = u->buf->data;
	wvalue  = (uint16_t)(setup[2] | setup[3] << 8);
	wlength = (uint16_t)(setup[6] | setup[7] << 8);
	if (setup[0] != 0x80 || setup[1] != 6 /* GET_DESCRIPTOR */ ||
	    (wvalue >> 8) != 3 /* string */ ||
	    (n = mock_string_desc(m, (uint8_t)(wvalue & 0xff), desc,
	         sizeof(desc))) == 0) {
		u->status = -EPIPE; /* a stall, as a device answers */
		return;
	}
	room = (size_t)u->buf->data_len - 8;
	if (n > wlength) {
		n = wlength;
	}
	if (n > room) {
		n = room;
	}
	umockdev_ioctl_data_update(u->buf, 8, desc, (gint)n);
	u->actual = (int)n;
}

/* Everything in flight fails as on a disconnect. */
static void
mock_fail_all(usb_mock *m)
{
	struct mock_urb *u;

	while ((u = g_queue_pop_head(&m->waiting_in)) != NULL ||
	    (u = g_queue_pop_head(&m->held)) != NULL) {
		u->status = -ESHUTDOWN;
		g_queue_push_tail(&m->done, u);
	}
	while (!g_queue_is_empty(&m->responses)) {
		g_bytes_unref(g_queue_pop_head(&m->responses));
	}
}

/* Give queued responses to waiting IN URBs. */
static void
mock_match(usb_mock *m)
{
	while (!g_queue_is_empty(&m->waiting_in) &&
	    !g_queue_is_empty(&m->responses)) {
		struct mock_urb *u = g_queue_pop_head(&m->waiting_in);
		GBytes          *r = g_queue_pop_head(&m->responses);
		gsize            n;
		const uint8_t   *p = g_bytes_get_data(r, &n);
		gsize            room = u->buf != NULL ? (gsize)u->buf->data_len : 0;

		if (n > room) {
			u->status = -EOVERFLOW; /* babble */
			n         = room;
		}
		if (n > 0) {
			umockdev_ioctl_data_update(u->buf, 0, (guint8 *)p,
			    (gint)n);
		}
		u->actual = (int)n;
		m->st.bulk_in++;
		g_bytes_unref(r);
		g_queue_push_tail(&m->done, u);
	}
}

static void
mock_bulk_out(usb_mock *m, struct mock_urb *u)
{
	uint8_t rsp[MOCK_PACKET];
	size_t  n = 0;

	m->st.bulk_out++;
	if (m->sim != NULL && u->buf != NULL) {
		n = dap_sim_command(m->sim, u->buf->data,
		    (size_t)u->buf->data_len, rsp, sizeof(rsp));
	}
	if (n == 0) {
		/* The sim's unplug_after: the probe vanished with this command
		 * on the wire. */
		m->st.unplugged = true;
		u->status       = -ESHUTDOWN;
		mock_fail_all(m);
		return;
	}
	u->actual = u->buf->data_len;
	g_queue_push_tail(&m->responses, g_bytes_new(rsp, n));
}

static int
mock_submit(usb_mock *m, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
	UMockdevIoctlData   *d;
	struct usbdevfs_urb *urb;
	struct mock_urb     *u;

	d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb),
	    NULL);
	if (d == NULL) {
		return EFAULT;
	}
	if (m->st.unplugged) {
		g_object_unref(d);
		return ENODEV;
	}
	urb       = (struct usbdevfs_urb *)d->data;
	u         = g_new0(struct mock_urb, 1);
	u->urb    = d;
	u->owner  = g_object_ref(client);
	u->ep     = urb->endpoint;
	if (urb->buffer_length > 0) {
		u->buf = umockdev_ioctl_data_resolve(d,
		    offsetof(struct usbdevfs_urb, buffer),
		    (gsize)urb->buffer_length, NULL);
		if (u->buf != NULL) {
			g_object_ref(u->buf);
		}
	}
	if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
		mock_control(m, u);
		g_queue_push_tail(&m->done, u);
	} else if (urb->type == USBDEVFS_URB_TYPE_BULK &&
	    urb->endpoint == MOCK_EP_OUT) {
		mock_bulk_out(m, u);
		g_queue_push_tail(&m->done, u);
	} else if (urb->type == USBDEVFS_URB_TYPE_BULK &&
	    urb->endpoint == MOCK_EP_IN) {
		if (m->swallow > 0) {
			/* Only a DISCARDURB returns it; the response stays
			 * queued and comes out late, on the next IN URB. */
			m->swallow--;
			g_queue_push_tail(&m->held, u);
			return 0;
		}
		g_queue_push_tail(&m->waiting_in, u);
	} else {
		mock_urb_free(u);
		return EINVAL;
	}
	mock_match(m);
	return 0;
}

static int
mock_reap(usb_mock *m, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
	struct mock_urb   *u = NULL;
	UMockdevIoctlData *ptr;
	gint32             v;

	for (GList *l = m->done.head; l != NULL; l = l->next) {
		if (((struct mock_urb *)l->data)->owner == client) {
			u = l->data;
			g_queue_delete_link(&m->done, l);
			break;
		}
	}
	if (u == NULL) {
		return m->st.unplugged ? ENODEV : EAGAIN;
	}
	v = u->status;
	umockdev_ioctl_data_update(u->urb, offsetof(struct usbdevfs_urb,
	    status), (guint8 *)&v, sizeof(v));
	v = u->actual;
	umockdev_ioctl_data_update(u->urb, offsetof(struct usbdevfs_urb,
	    actual_length), (guint8 *)&v, sizeof(v));
	ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(void *), NULL);
	if (ptr == NULL) {
		g_queue_push_head(&m->done, u);
		return EFAULT;
	}
	umockdev_ioctl_data_set_ptr(ptr, 0, u->urb);
	g_object_unref(ptr);
	mock_urb_free(u);
	return 0;
}

static bool
mock_discard_from(usb_mock *m, GQueue *q, UMockdevIoctlClient *client,
    gulong addr)
{
	for (GList *l = q->head; l != NULL; l = l->next) {
		struct mock_urb *u = l->data;

		if (u->owner == client && u->urb->client_addr == addr) {
			g_queue_delete_link(q, l);
			u->status = -ENOENT;
			u->actual = 0;
			m->st.discarded++;
			g_queue_push_tail(&m->done, u);
			return true;
		}
	}
	return false;
}

static int
mock_discard(usb_mock *m, UMockdevIoctlClient *client,
    UMockdevIoctlData *arg)
{
	gulong addr = *(gulong *)arg->data;

	if (mock_discard_from(m, &m->waiting_in, client, addr) ||
	    mock_discard_from(m, &m->held, client, addr)) {
		return 0;
	}
	return EINVAL; /* already completed: usbfs says the same */
}

static gboolean
mock_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client,
    gpointer data)
{
	usb_mock          *m   = data;
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
	gulong             req = umockdev_ioctl_client_get_request(client);
	int                e   = 0;

	(void)handler;
	g_mutex_lock(&m->lock);
	switch (req) {
	case USBDEVFS_GET_CAPABILITIES: {
		UMockdevIoctlData *d;
		guint32            caps = USBDEVFS_CAP_BULK_CONTINUATION |
		    USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
		    USBDEVFS_CAP_REAP_AFTER_DISCONNECT |
		    USBDEVFS_CAP_ZERO_PACKET;

		d = umockdev_ioctl_data_resolve(arg, 0, sizeof(caps), NULL);
		if (d == NULL) {
			e = EFAULT;
			break;
		}
		umockdev_ioctl_data_update(d, 0, (guint8 *)&caps, sizeof(caps));
		g_object_unref(d);
		break;
	}
	case USBDEVFS_GETDRIVER:
		e = ENODATA; /* no kernel driver bound */
		break;
	case USBDEVFS_CLAIMINTERFACE:
		m->st.claims++;
		e = m->st.unplugged ? ENODEV : 0;
		break;
	case USBDEVFS_RELEASEINTERFACE:
		m->st.releases++;
		e = m->st.unplugged ? ENODEV : 0;
		break;
	case USBDEVFS_CLEAR_HALT:
	case USBDEVFS_RESETEP:
	case USBDEVFS_SETINTERFACE:
		e = m->st.unplugged ? ENODEV : 0;
		break;
	case USBDEVFS_SUBMITURB:
		e = mock_submit(m, client, arg);
		break;
	case USBDEVFS_REAPURB:
	case USBDEVFS_REAPURBNDELAY:
		e = mock_reap(m, client, arg);
		break;
	case USBDEVFS_DISCARDURB:
		e = mock_discard(m, client, arg);
		break;
	default:
		m->st.unknown++;
		fprintf(stderr, "usb_mock: unhandled ioctl 0x%lx\n", req);
		e = ENOTTY;
		break;
	}
	g_mutex_unlock(&m->lock);
	umockdev_ioctl_client_complete(client, e == 0 ? 0 : -1, e);
	return TRUE;
}

/* The descriptors sysfs shows (and libusb parses): device, then the one
 * configuration with its interface and endpoints. */
static const char probe_descriptors[] =
    /* device: USB 2.0, class per interface, ep0 64, c251:f002, bcdDevice
     * 1.00, strings 1/2/3, one configuration */
    "120100020000004051c202f0000101020301"
    /* configuration: 32 bytes in all, 1 interface, value 1, bus powered,
     * 100 mA */
    "090220000101008032"
    /* interface 0, alt 0: 2 endpoints, class ff/00/00, string 4 */
    "090400000" "2ff000004"
    /* bulk OUT 0x01, 512 bytes */
    "07050102000200"
    /* bulk IN 0x81, 512 bytes */
    "07058102000200";

static const char hub_descriptors[] =
    /* device: USB 2.0 root hub 1d6b:0002 */
    "12010002090001406b1d020005060302" "0101"
    /* configuration, interface (hub class), interrupt IN 0x81 */
    "09021900010100e000" "090400000109000000" "0705810304000c";

static void
mock_add_devices(usb_mock *m)
{
	char *probe;

	probe = g_strdup_printf(
	    "P: /devices/pci0000:00/0000:00:14.0/usb1/1-1\n"
	    "N: bus/usb/001/002\n"
	    "E: SUBSYSTEM=usb\n"
	    "E: DEVTYPE=usb_device\n"
	    "E: DRIVER=usb\n"
	    "E: BUSNUM=001\n"
	    "E: DEVNUM=002\n"
	    "E: DEVNAME=/dev/bus/usb/001/002\n"
	    "E: PRODUCT=c251/f002/100\n"
	    "A: busnum=1\\n\n"
	    "A: devnum=2\\n\n"
	    "A: devpath=1\\n\n"
	    "A: speed=480\\n\n"
	    "A: version= 2.00\\n\n"
	    "A: idVendor=c251\\n\n"
	    "A: idProduct=f002\\n\n"
	    "A: bcdDevice=0100\\n\n"
	    "A: bMaxPacketSize0=64\\n\n"
	    "A: bNumConfigurations=1\\n\n"
	    "A: bConfigurationValue=1\\n\n"
	    "A: bNumInterfaces= 1\\n\n"
	    "A: manufacturer=" MOCK_MANUFACTURER "\\n\n"
	    "A: product=" MOCK_PRODUCT "\\n\n"
	    "A: serial=%s\\n\n"
	    "H: descriptors=%s\n",
	    m->serial, probe_descriptors);
	g_assert(umockdev_testbed_add_from_string(m->bed, probe, NULL));
	g_free(probe);
	g_assert(umockdev_testbed_add_from_string(m->bed,
	    "P: /devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0\n"
	    "E: SUBSYSTEM=usb\n"
	    "E: DEVTYPE=usb_interface\n"
	    "E: INTERFACE=255/0/0\n"
	    "E: PRODUCT=c251/f002/100\n"
	    "A: bInterfaceNumber=00\\n\n"
	    "A: bAlternateSetting= 0\\n\n"
	    "A: bInterfaceClass=ff\\n\n"
	    "A: bInterfaceSubClass=00\\n\n"
	    "A: bInterfaceProtocol=00\\n\n"
	    "A: bNumEndpoints=02\\n\n"
	    "A: interface=" MOCK_INTERFACE "\\n\n",
	    NULL));
	m->present = true;
}

int
usb_mock_new(usb_mock **out, const char *serial, dap_sim *sim)
{
	usb_mock *m = g_new0(usb_mock, 1);
	char     *hub;

	g_mutex_init(&m->lock);
	g_queue_init(&m->waiting_in);
	g_queue_init(&m->held);
	g_queue_init(&m->done);
	g_queue_init(&m->responses);
	g_strlcpy(m->serial, serial, sizeof(m->serial));
	m->sim = sim;
	m->bed = umockdev_testbed_new();
	hub = g_strdup_printf(
	    "P: /devices/pci0000:00/0000:00:14.0/usb1\n"
	    "N: bus/usb/001/001\n"
	    "E: SUBSYSTEM=usb\n"
	    "E: DEVTYPE=usb_device\n"
	    "E: DRIVER=usb\n"
	    "E: BUSNUM=001\n"
	    "E: DEVNUM=001\n"
	    "E: DEVNAME=/dev/bus/usb/001/001\n"
	    "E: PRODUCT=1d6b/2/605\n"
	    "A: busnum=1\\n\n"
	    "A: devnum=1\\n\n"
	    "A: speed=480\\n\n"
	    "A: idVendor=1d6b\\n\n"
	    "A: idProduct=0002\\n\n"
	    "A: bConfigurationValue=1\\n\n"
	    "A: product=EHCI Host Controller\\n\n"
	    "H: descriptors=%s\n",
	    hub_descriptors);
	g_assert(umockdev_testbed_add_from_string(m->bed, hub, NULL));
	g_free(hub);
	m->handler = umockdev_ioctl_base_new();
	g_signal_connect(m->handler, "handle-ioctl", G_CALLBACK(mock_ioctl),
	    m);
	/* The handler before the device node: libusb may open it as soon as
	 * it sees the "add" uevent. */
	g_assert(umockdev_testbed_attach_ioctl(m->bed, MOCK_DEVNODE,
	    m->handler, NULL));
	mock_add_devices(m);
	*out = m;
	return 0;
}

void
usb_mock_free(usb_mock *m)
{
	struct mock_urb *u;

	if (m == NULL) {
		return;
	}
	umockdev_testbed_detach_ioctl(m->bed, MOCK_DEVNODE, NULL);
	g_object_unref(m->handler);
	g_object_unref(m->bed);
	while ((u = g_queue_pop_head(&m->waiting_in)) != NULL ||
	    (u = g_queue_pop_head(&m->held)) != NULL) {
		mock_urb_free(u);
	}
	while ((u = g_queue_pop_head(&m->done)) != NULL) {
		mock_urb_free(u);
	}
	while (!g_queue_is_empty(&m->responses)) {
		g_bytes_unref(g_queue_pop_head(&m->responses));
	}
	g_mutex_clear(&m->lock);
	g_free(m);
}

void
usb_mock_set_sim(usb_mock *m, dap_sim *sim)
{
	g_mutex_lock(&m->lock);
	m->sim = sim;
	g_mutex_unlock(&m->lock);
}

void
usb_mock_unplug(usb_mock *m)
{
	g_mutex_lock(&m->lock);
	m->st.unplugged = true;
	mock_fail_all(m);
	g_mutex_unlock(&m->lock);
	if (m->present) {
		umockdev_testbed_uevent(m->bed, MOCK_PROBE, "remove");
		umockdev_testbed_remove_device(m->bed, MOCK_PROBE);
		m->present = false;
	}
}

void
usb_mock_replug(usb_mock *m)
{
	g_mutex_lock(&m->lock);
	m->st.unplugged = false;
	m->swallow      = 0;
	g_mutex_unlock(&m->lock);
	if (!m->present) {
		/* umockdev 0.17's remove_device leaves the /sys/bus link
		 * behind, and adding the device again would trip over it. */
		char *sys  = umockdev_testbed_get_sys_dir(m->bed);
		char *link = g_build_filename(sys, "bus", "usb", "devices",
		    "1-1", NULL);
		char *ilink = g_build_filename(sys, "bus", "usb", "devices",
		    "1-1:1.0", NULL);

		(void)unlink(link);
		(void)unlink(ilink);
		g_free(ilink);
		g_free(link);
		g_free(sys);
		mock_add_devices(m);
	}
}

void
usb_mock_swallow(usb_mock *m, unsigned n)
{
	g_mutex_lock(&m->lock);
	m->swallow = n;
	g_mutex_unlock(&m->lock);
}

void
usb_mock_stats(usb_mock *m, struct usb_mock_stats *st)
{
	g_mutex_lock(&m->lock);
	*st = m->st;
	g_mutex_unlock(&m->lock);
}

bool
usb_mock_preloaded(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "libumockdev-preload") != NULL;
}
