/*
 * dap_usb.c - CMSIS-DAP v2 probes over libusb-1.0: discovery by interface
 * string and bulk endpoints, and the bulk OUT/IN transport of dap.h.
 *
 * The libusb context is process-wide and made once (pthread_once), never
 * freed: libusb contexts are thread-safe, and making one per probe would
 * start one hotplug/event thread per probe for nothing.  That context is
 * the one piece of state this module keeps outside its handles.
 *
 * Everything a device says about itself (strings, descriptor fields) is
 * untrusted: strings are cut to DAP_USB_STRING_MAX and anything outside
 * printable ASCII becomes '?', since serials end up in URLs and logs.
 */
#include "dap_usb.h"

#include "cs_err.h"
#include "cs_log.h"

#include <libusb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the interface string of a CMSIS-DAP interface contains (spec). */
#define DAP_USB_MARK "CMSIS-DAP"

/* xfer's bound when the caller gives 0 (libusb's 0 means "forever"). */
#define DAP_USB_TIMEOUT_DEFAULT_MS 5000u

/* How long a stale response is waited for after a timeout (see xfer). */
#define DAP_USB_DRAIN_MS 20u

/* Largest command, and largest response buffer, xfer accepts. */
#define DAP_USB_RSP_MAX 65536u

static pthread_once_t  usb_once = PTHREAD_ONCE_INIT;
static libusb_context *usb_ctx;
static int             usb_init_rc;

static void
usb_init_once(void)
{
	usb_init_rc = libusb_init(&usb_ctx);
}

static int
usb_context(libusb_context **ctx, char *err, size_t errlen)
{
	pthread_once(&usb_once, usb_init_once);
	if (usb_init_rc != 0) {
		snprintf(err, errlen, "cannot start libusb: %s",
		    libusb_strerror(usb_init_rc));
		return CS_EIO;
	}
	*ctx = usb_ctx;
	return CS_OK;
}

/* A libusb error of a transfer, as a cs_err; the original goes to the log
 * (rule 4).  An unplugged probe shows up as NO_DEVICE, but also as PIPE or
 * IO depending on the host controller and the moment it happens. */
static int
usb_xfer_err(int r, uint8_t ep)
{
	cs_log_warn("usb", "bulk transfer failed ep=0x%02x libusb=%s(%d)",
	    (unsigned)ep, libusb_error_name(r), r);
	switch (r) {
	case LIBUSB_ERROR_NO_DEVICE:
	case LIBUSB_ERROR_PIPE:
	case LIBUSB_ERROR_IO:
		return CS_ECLOSED;
	case LIBUSB_ERROR_TIMEOUT:
		return CS_ETIMEDOUT;
	case LIBUSB_ERROR_NO_MEM:
		return CS_ENOMEM;
	case LIBUSB_ERROR_OVERFLOW:
		return CS_EPROTO;
	default:
		return CS_EIO;
	}
}

/* Read string descriptor idx as printable ASCII ("" when idx is 0 or the
 * device does not answer). */
static void
usb_string(libusb_device_handle *h, uint8_t idx, char *out, size_t len)
{
	unsigned char buf[DAP_USB_STRING_MAX];
	int           r;
	size_t        i;

	out[0] = '\0';
	if (idx == 0) {
		return;
	}
	r = libusb_get_string_descriptor_ascii(h, idx, buf, sizeof(buf));
	if (r <= 0) {
		return;
	}
	for (i = 0; i < (size_t)r && i + 1 < len; i++) {
		out[i] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? (char)buf[i] : '?';
	}
	out[i] = '\0';
}

/* The first bulk OUT and bulk IN endpoint of alt; false when it lacks
 * either. */
static bool
usb_bulk_pair(const struct libusb_interface_descriptor *alt, uint8_t *out,
    uint8_t *in, uint16_t *mps)
{
	uint16_t mps_out = 0, mps_in = 0;
	bool     have_out = false, have_in = false;

	for (uint8_t e = 0; e < alt->bNumEndpoints; e++) {
		const struct libusb_endpoint_descriptor *ep = &alt->endpoint[e];

		if ((ep->bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) !=
		    LIBUSB_TRANSFER_TYPE_BULK) {
			continue;
		}
		if ((ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) != 0) {
			if (!have_in) {
				*in      = ep->bEndpointAddress;
				mps_in   = ep->wMaxPacketSize & 0x7ffu;
				have_in  = true;
			}
		} else if (!have_out) {
			*out     = ep->bEndpointAddress;
			mps_out  = ep->wMaxPacketSize & 0x7ffu;
			have_out = true;
		}
	}
	if (!have_out || !have_in || mps_out == 0 || mps_in == 0) {
		return false;
	}
	*mps = mps_out < mps_in ? mps_out : mps_in;
	return true;
}

/* One probe found while scanning: the device (referenced) and its info. */
struct usb_cand {
	libusb_device      *dev;
	struct dap_usb_info info;
};

/* Counts of devices skipped while scanning, for the note. */
struct usb_skipped {
	unsigned access; /* permission denied */
	unsigned other;  /* busy, gone meanwhile, ... */
};

/*
 * If dev has a CMSIS-DAP v2 interface, fill *c (without taking a
 * reference) and return true.  Only devices with an interface that could
 * be one (a string and a bulk pair) are opened to read strings.
 */
static bool
usb_probe_device(libusb_device *dev, struct usb_cand *c,
    struct usb_skipped *skipped)
{
	struct libusb_device_descriptor  dd;
	struct libusb_config_descriptor *cfg = NULL;
	libusb_device_handle            *h   = NULL;
	char                             istr[DAP_USB_STRING_MAX];
	bool                             found = false;
	int                              r;

	if (libusb_get_device_descriptor(dev, &dd) != 0 ||
	    libusb_get_active_config_descriptor(dev, &cfg) != 0) {
		return false; /* unconfigured or vanished: not usable anyway */
	}
	for (uint8_t i = 0; i < cfg->bNumInterfaces && !found; i++) {
		const struct libusb_interface           *itf = &cfg->interface[i];
		const struct libusb_interface_descriptor *alt;
		uint8_t  out = 0, in = 0;
		uint16_t mps = 0;

		if (itf->num_altsetting < 1) {
			continue;
		}
		alt = &itf->altsetting[0];
		if (alt->iInterface == 0 ||
		    !usb_bulk_pair(alt, &out, &in, &mps)) {
			continue;
		}
		if (h == NULL && (r = libusb_open(dev, &h)) != 0) {
			if (r == LIBUSB_ERROR_ACCESS) {
				skipped->access++;
			} else {
				skipped->other++;
			}
			cs_log_debug("usb", "cannot open device bus=%u addr=%u "
			    "libusb=%s", libusb_get_bus_number(dev),
			    libusb_get_device_address(dev),
			    libusb_error_name(r));
			break;
		}
		usb_string(h, alt->iInterface, istr, sizeof(istr));
		if (strstr(istr, DAP_USB_MARK) == NULL) {
			continue;
		}
		memset(&c->info, 0, sizeof(c->info));
		c->dev              = dev;
		c->info.vid         = dd.idVendor;
		c->info.pid         = dd.idProduct;
		c->info.bus         = libusb_get_bus_number(dev);
		c->info.address     = libusb_get_device_address(dev);
		c->info.interface   = alt->bInterfaceNumber;
		c->info.ep_out      = out;
		c->info.ep_in       = in;
		c->info.packet_size = mps;
		usb_string(h, dd.iSerialNumber, c->info.serial,
		    sizeof(c->info.serial));
		usb_string(h, dd.iProduct, c->info.product,
		    sizeof(c->info.product));
		found = true;
	}
	if (h != NULL) {
		libusb_close(h);
	}
	libusb_free_config_descriptor(cfg);
	return found;
}

static int
usb_cand_cmp(const void *a, const void *b)
{
	const struct dap_usb_info *x = &((const struct usb_cand *)a)->info;
	const struct dap_usb_info *y = &((const struct usb_cand *)b)->info;

	if (x->bus != y->bus) {
		return x->bus < y->bus ? -1 : 1;
	}
	return x->address < y->address ? -1 : x->address > y->address;
}

static void
usb_cands_free(struct usb_cand *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		libusb_unref_device(c[i].dev);
	}
	free(c);
}

/* All attached probes, sorted by bus and address, each device referenced
 * (usb_cands_free). */
static int
usb_scan(struct usb_cand **out, size_t *n, char *err, size_t errlen)
{
	libusb_context    *ctx;
	libusb_device    **list = NULL;
	struct usb_cand   *c;
	struct usb_skipped skipped = {0, 0};
	ssize_t            cnt;
	size_t             k = 0;
	int                rv;

	*out = NULL;
	*n   = 0;
	if (errlen > 0) {
		err[0] = '\0';
	}
	if ((rv = usb_context(&ctx, err, errlen)) != CS_OK) {
		return rv;
	}
	if ((cnt = libusb_get_device_list(ctx, &list)) < 0) {
		snprintf(err, errlen, "cannot list USB devices: %s",
		    libusb_strerror((int)cnt));
		return CS_EIO;
	}
	if ((c = calloc(DAP_USB_PROBES_MAX, sizeof(*c))) == NULL) {
		libusb_free_device_list(list, 1);
		return CS_ENOMEM;
	}
	for (ssize_t i = 0; i < cnt && k < DAP_USB_PROBES_MAX; i++) {
		if (usb_probe_device(list[i], &c[k], &skipped)) {
			libusb_ref_device(c[k].dev);
			k++;
		}
	}
	libusb_free_device_list(list, 1);
	qsort(c, k, sizeof(*c), usb_cand_cmp);
	if (skipped.access > 0) {
		snprintf(err, errlen, "%u USB device(s) with a bulk interface "
		    "could not be opened (permission denied): install the "
		    "probe's udev rule or add this user to its group",
		    skipped.access);
	} else if (skipped.other > 0) {
		snprintf(err, errlen, "%u USB device(s) with a bulk interface "
		    "could not be opened (busy or gone)", skipped.other);
	}
	*out = c;
	*n   = k;
	return CS_OK;
}

int
dap_usb_list(struct dap_usb_info **out, size_t *n, char *err, size_t errlen)
{
	struct usb_cand     *c;
	struct dap_usb_info *info = NULL;
	size_t               k;
	int                  rv;

	*out = NULL;
	*n   = 0;
	if ((rv = usb_scan(&c, &k, err, errlen)) != CS_OK) {
		return rv;
	}
	if (k > 0 && (info = calloc(k, sizeof(*info))) == NULL) {
		usb_cands_free(c, k);
		return CS_ENOMEM;
	}
	for (size_t i = 0; i < k; i++) {
		info[i] = c[i].info;
	}
	usb_cands_free(c, k);
	*out = info;
	*n   = k;
	return CS_OK;
}

/* ------------------------------------------------------------------ */
/* the transport                                                       */
/* ------------------------------------------------------------------ */

struct usb_link {
	libusb_device_handle *h;
	uint8_t               interface;
	uint8_t               ep_out, ep_in;
	uint16_t              mps;
	bool                  detached; /* a kernel driver to reattach */
	bool                  resync;   /* a late response may be queued */
	uint8_t              *buf;      /* IN transfers land here */
	size_t                buf_size;
};

/* Read and drop a response that arrived after its command timed out, so
 * that the next command is not answered with the previous one's reply. */
static int
usb_drain(struct usb_link *l)
{
	int got = 0, r;

	l->resync = false;
	r = libusb_bulk_transfer(l->h, l->ep_in, l->buf, (int)l->buf_size,
	    &got, DAP_USB_DRAIN_MS);
	if (r == 0) {
		cs_log_info("usb", "dropped a late response bytes=%d", got);
	} else if (r != LIBUSB_ERROR_TIMEOUT) {
		return usb_xfer_err(r, l->ep_in);
	}
	return CS_OK;
}

static int
usb_xfer(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp,
    size_t rsp_size, size_t *rsp_len, unsigned timeout_ms)
{
	struct usb_link *l = ctx;
	size_t           need;
	int              done = 0, got = 0, r, rv;

	*rsp_len = 0;
	if (len == 0 || len > DAP_USB_RSP_MAX || rsp_size == 0 ||
	    rsp_size > DAP_USB_RSP_MAX) {
		return CS_EINVAL;
	}
	if (timeout_ms == 0) {
		timeout_ms = DAP_USB_TIMEOUT_DEFAULT_MS;
	}
	/* An IN transfer must be a whole number of packets, or a probe that
	 * sends a full packet overflows it. */
	need = (rsp_size + l->mps - 1) / l->mps * l->mps;
	if (need > l->buf_size) {
		uint8_t *nb = realloc(l->buf, need);

		if (nb == NULL) {
			return CS_ENOMEM;
		}
		l->buf      = nb;
		l->buf_size = need;
	}
	if (l->resync && (rv = usb_drain(l)) != CS_OK) {
		return rv;
	}
	/* libusb takes a non-const buffer for both directions; it only reads
	 * an OUT transfer's. */
	r = libusb_bulk_transfer(l->h, l->ep_out, (unsigned char *)cmd,
	    (int)len, &done, timeout_ms);
	if (r != 0) {
		l->resync = r == LIBUSB_ERROR_TIMEOUT;
		return usb_xfer_err(r, l->ep_out);
	}
	if ((size_t)done != len) {
		cs_log_warn("usb", "short command write sent=%d of=%zu", done,
		    len);
		return CS_EIO;
	}
	r = libusb_bulk_transfer(l->h, l->ep_in, l->buf, (int)need, &got,
	    timeout_ms);
	if (r != 0) {
		l->resync = r == LIBUSB_ERROR_TIMEOUT;
		return usb_xfer_err(r, l->ep_in);
	}
	if ((size_t)got > rsp_size) {
		cs_log_warn("usb", "response too long bytes=%d max=%zu", got,
		    rsp_size);
		return CS_EPROTO;
	}
	memcpy(rsp, l->buf, (size_t)got);
	*rsp_len = (size_t)got;
	return CS_OK;
}

static void
usb_close(void *ctx)
{
	struct usb_link *l = ctx;

	if (l == NULL) {
		return;
	}
	/* Both fail harmlessly when the probe is already gone. */
	libusb_release_interface(l->h, l->interface);
	if (l->detached) {
		libusb_attach_kernel_driver(l->h, l->interface);
	}
	libusb_close(l->h);
	free(l->buf);
	free(l);
}

static bool
usb_matches(const struct dap_usb_info *i, const char *serial, uint16_t vid,
    uint16_t pid)
{
	return (serial == NULL || serial[0] == '\0' ||
	           strcmp(i->serial, serial) == 0) &&
	    (vid == 0 || i->vid == vid) && (pid == 0 || i->pid == pid);
}

/* "SERIAL (VID:PID, bus B address A), ..." of the candidates that match
 * the filters, for errors. */
static void
usb_describe(const struct usb_cand *c, size_t n, const char *serial,
    uint16_t vid, uint16_t pid, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w;

		if (!usb_matches(&c[i].info, serial, vid, pid)) {
			continue;
		}
		w = snprintf(out + used, len - used,
		    "%s%s (%04x:%04x, bus %u address %u)", used > 0 ? ", " : "",
		    c[i].info.serial[0] != '\0' ? c[i].info.serial :
		                                  "no serial",
		    c[i].info.vid, c[i].info.pid, c[i].info.bus,
		    c[i].info.address);
		if (w < 0) {
			break;
		}
		used += (size_t)w;
	}
}

int
dap_usb_open(const char *serial, uint16_t vid, uint16_t pid,
    struct dap_transport *t, char *err, size_t errlen)
{
	struct usb_cand *c = NULL;
	struct usb_link *l = NULL;
	size_t           n, hits = 0, hit = 0;
	char             seen[512];
	int              r, rv;

	memset(t, 0, sizeof(*t));
	if ((rv = usb_scan(&c, &n, err, errlen)) != CS_OK) {
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		if (usb_matches(&c[i].info, serial, vid, pid)) {
			hits++;
			hit = i;
		}
	}
	if (hits == 0) {
		usb_describe(c, n, NULL, 0, 0, seen, sizeof(seen));
		snprintf(err, errlen, "no CMSIS-DAP v2 probe%s%s attached%s%s%s",
		    serial != NULL && serial[0] != '\0' ? " with serial " : "",
		    serial != NULL ? serial : "", n > 0 ? " (attached: " : "",
		    seen, n > 0 ? ")" : "");
		rv = CS_ENOENT;
		goto out;
	}
	if (hits > 1) {
		usb_describe(c, n, serial, vid, pid, seen, sizeof(seen));
		snprintf(err, errlen, "%zu CMSIS-DAP v2 probes match: %s; say "
		    "which with its serial (cmsis-dap://SERIAL)", hits, seen);
		rv = CS_EINVAL;
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		rv = CS_ENOMEM;
		goto out;
	}
	l->interface = c[hit].info.interface;
	l->ep_out    = c[hit].info.ep_out;
	l->ep_in     = c[hit].info.ep_in;
	l->mps       = c[hit].info.packet_size;
	if ((r = libusb_open(c[hit].dev, &l->h)) != 0) {
		snprintf(err, errlen, "cannot open probe %s: %s%s",
		    c[hit].info.serial, libusb_strerror(r),
		    r == LIBUSB_ERROR_ACCESS ? " (install the probe's udev "
		                               "rule)" : "");
		rv = CS_EUNAVAIL;
		goto out;
	}
	if (libusb_kernel_driver_active(l->h, l->interface) == 1) {
		if ((r = libusb_detach_kernel_driver(l->h, l->interface)) != 0) {
			snprintf(err, errlen, "cannot detach the kernel driver "
			    "from probe %s: %s", c[hit].info.serial,
			    libusb_strerror(r));
			rv = CS_EUNAVAIL;
			goto out;
		}
		l->detached = true;
	}
	if ((r = libusb_claim_interface(l->h, l->interface)) != 0) {
		snprintf(err, errlen, "cannot claim interface %u of probe %s: "
		    "%s%s", l->interface, c[hit].info.serial,
		    libusb_strerror(r), r == LIBUSB_ERROR_BUSY ?
		    " (another program is using it)" : "");
		rv = CS_EUNAVAIL;
		goto out;
	}
	t->ctx         = l;
	t->packet_size = l->mps;
	t->xfer        = usb_xfer;
	t->close       = usb_close;
	l              = NULL;
	rv             = CS_OK;
out:
	if (l != NULL) {
		if (l->h != NULL) {
			if (l->detached) {
				libusb_attach_kernel_driver(l->h, l->interface);
			}
			libusb_close(l->h);
		}
		free(l);
	}
	usb_cands_free(c, n);
	return rv;
}
