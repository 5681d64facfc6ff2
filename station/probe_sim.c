/*
 * probe_sim.c - "sim:" probes: an in-process simulated Cortex-M-like MCU
 * for the job runner's unit tests, with the memory map of the lm3s6965
 * target profile and the rules of real NOR flash, plus fault injection.
 *
 *   sim:[name][?uid=HEX][&trust=PATH][&product=N][&fw_end=ADDR]
 *       [&fail=WHAT,...]
 *
 *   flash 0x00000000  256 KiB, 1 KiB pages: erase sets a page to 0xFF,
 *                     programming only clears bits; written only through
 *                     probe_flash_write (plain writes are refused)
 *   RAM   0x20000000  64 KiB
 *   UID   0x2000FF00  read-only (default 8 bytes 01 23 45 67 89 ab cd ef)
 *   the LM3S flash controller and its flash protection (lm3s_sim.h):
 *         0x400FD000 FMA/FMD/FMC/..., 0x400FE200 FMPRE0-3, 0x400FE400
 *         FMPPE0-3, 32-bit accesses through probe_read/probe_write
 *
 * Locking (probe_protect): the profile's steps write those registers;
 * once FMPRE bits are clear (and committed, to survive a reset) debug
 * reads of those flash blocks fail, cleared FMPPE bits refuse programming,
 * RAM and the UID stay readable, and only probe_sim_recover (the part's
 * debug port unlock: mass erase) brings the device back.
 *
 * probe_run is the device's boot check: with trust= (an SPKI DER public
 * key file) the real target verifier checks the record at 0x3F000 against
 * the UID and product= (default 0x1234) and the device "exits" 0 when
 * authorized, else 1; without trust= it exits 0 iff the record page
 * starts with "CSRD".  The device measures itself as the example firmware
 * does (cs_image.h): SHA-256 over flash [0, fw_end), where fw_end= is
 * given or else is the end of the last byte below the record area that
 * is not 0xFF.  So the sim assumes its firmware starts at 0 and does not
 * end in 0xFF bytes (give fw_end= for one that does).
 *
 * fail= (comma-separated) makes the probe misbehave: open, read, flash,
 * disconnect@N (after N bytes written through this probe every call
 * fails CS_ECLOSED), verify (flash read-back has one bit flipped), uid-ff,
 * lock (the flash controller's commit keeps nothing: after a reset the
 * device is unlocked again, so a lock does not take).
 *
 * Devices live in a process-wide table keyed by name so that tests can
 * reopen a device and see its flash; one mutex guards the table and every
 * access (simple, and the sim is never the bottleneck).
 */
#include "lm3s_sim.h"
#include "probe_impl.h"
#include "probe_sim.h"

#include "countersign/verify.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hex.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_FLASH_BASE  0x00000000u
#define SIM_FLASH_SIZE  0x40000u
#define SIM_PAGE_SIZE   0x400u
#define SIM_RAM_BASE    0x20000000u
#define SIM_RAM_SIZE    0x10000u
#define SIM_UID_ADDR    0x2000FF00u
#define SIM_RECORD_ADDR 0x0003F000u
#define SIM_PRODUCT     0x1234u
#define SIM_NAME_MAX    64u
#define SIM_TRUST_MAX   512u /* bytes of an SPKI DER file */
#define SIM_PARAM_MAX   512u

static const uint8_t sim_default_uid[8] = {0x01, 0x23, 0x45, 0x67, 0x89,
    0xab, 0xcd, 0xef};

struct sim_dev {
	struct sim_dev *next;
	char            name[SIM_NAME_MAX + 1];
	uint8_t         uid[CS_RECORD_UID_MAX];
	size_t          uid_len;
	uint8_t         flash[SIM_FLASH_SIZE];
	uint8_t         ram[SIM_RAM_SIZE];
	struct lm3s_sim fc; /* flash controller and protection */
};

/* The process-wide device table (see the file comment). */
static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sim_dev *sim_devs;

struct sim_probe {
	struct sim_dev *dev; /* owned by the table */
	bool            f_read, f_flash, f_verify, f_uid_ff;
	bool            f_disconnect, f_lock;
	uint64_t        disconnect_after;
	uint32_t        fw_end; /* 0: find it (see the file comment) */
	uint64_t        written;
	bool            gone; /* disconnect@N happened */
	bool            has_trust;
	uint8_t         key_id[CS_KEY_ID_LEN];
	uint8_t         pub[CS_P256_POINT_LEN];
	size_t          pub_len;
	uint8_t         alg;
	uint32_t        product;
};

/* With sim_lock held. */
static struct sim_dev *
sim_find(const char *name, bool create)
{
	struct sim_dev *d;

	for (d = sim_devs; d != NULL; d = d->next) {
		if (strcmp(d->name, name) == 0) {
			return d;
		}
	}
	if (!create || (d = calloc(1, sizeof(*d))) == NULL) {
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	memcpy(d->uid, sim_default_uid, sizeof(sim_default_uid));
	d->uid_len = sizeof(sim_default_uid);
	memset(d->flash, 0xFF, sizeof(d->flash));
	lm3s_sim_init(&d->fc, d->flash, sizeof(d->flash));
	d->next  = sim_devs;
	sim_devs = d;
	return d;
}

int
probe_sim_copy_flash(const char *from, const char *to)
{
	struct sim_dev *a, *b;
	int             rv = CS_OK;

	if (from == NULL || to == NULL || strcmp(from, to) == 0 ||
	    strlen(to) > SIM_NAME_MAX) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&sim_lock);
	if ((a = sim_find(from, false)) == NULL) {
		rv = CS_ENOENT;
	} else if ((b = sim_find(to, true)) == NULL) {
		rv = CS_ENOMEM;
	} else {
		memcpy(b->flash, a->flash, sizeof(b->flash));
	}
	pthread_mutex_unlock(&sim_lock);
	return rv;
}

int
probe_sim_recover(const char *name)
{
	struct sim_dev *d;
	int             rv = CS_OK;

	if (name == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&sim_lock);
	if ((d = sim_find(name, false)) == NULL) {
		rv = CS_ENOENT;
	} else {
		lm3s_sim_recover(&d->fc);
	}
	pthread_mutex_unlock(&sim_lock);
	return rv;
}

int
probe_sim_locked(const char *name)
{
	struct sim_dev *d;
	int             rv;

	if (name == NULL) {
		return CS_EINVAL;
	}
	pthread_mutex_lock(&sim_lock);
	d  = sim_find(name, false);
	rv = d == NULL ? CS_ENOENT : lm3s_sim_locked(&d->fc) ? 1 : 0;
	pthread_mutex_unlock(&sim_lock);
	return rv;
}

void
probe_sim_reset_all(void)
{
	pthread_mutex_lock(&sim_lock);
	while (sim_devs != NULL) {
		struct sim_dev *d = sim_devs;

		sim_devs = d->next;
		free(d);
	}
	pthread_mutex_unlock(&sim_lock);
}

static int
sim_parse_fail(probe *p, struct sim_probe *s, char *list, bool *f_open)
{
	char *save = NULL;

	for (char *w = strtok_r(list, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save)) {
		uint32_t n;

		if (strcmp(w, "open") == 0) {
			*f_open = true;
		} else if (strcmp(w, "read") == 0) {
			s->f_read = true;
		} else if (strcmp(w, "flash") == 0) {
			s->f_flash = true;
		} else if (strcmp(w, "verify") == 0) {
			s->f_verify = true;
		} else if (strcmp(w, "uid-ff") == 0) {
			s->f_uid_ff = true;
		} else if (strcmp(w, "lock") == 0) {
			s->f_lock = true;
		} else if (strncmp(w, "disconnect@", 11) == 0 &&
		    probe_parse_u32(w + 11, UINT32_MAX, &n) == CS_OK) {
			s->f_disconnect     = true;
			s->disconnect_after = n;
		} else {
			return probe_fail(p, CS_EADDR, "sim: unknown fail= "
			    "value '%s' (open, read, flash, disconnect@N, "
			    "verify, uid-ff, lock)", w);
		}
	}
	return CS_OK;
}

/* trust=PATH: an SPKI DER public key (countersign-keytool export
 * --format der). */
static int
sim_load_trust(probe *p, struct sim_probe *s, const char *path)
{
	uint8_t der[SIM_TRUST_MAX + 1];
	size_t  n;
	cs_alg  alg;
	FILE   *fp = fopen(path, "rb");

	if (fp == NULL) {
		return probe_fail(p, CS_EADDR, "sim: trust=%s: cannot open "
		    "the public key file", path);
	}
	n = fread(der, 1, sizeof(der), fp);
	fclose(fp);
	if (n == 0 || n > SIM_TRUST_MAX ||
	    cs_spki_decode(der, n, &alg, s->pub, &s->pub_len) != CS_OK ||
	    cs_key_id(der, n, s->key_id) != CS_OK) {
		return probe_fail(p, CS_EADDR, "sim: trust=%s: not a P-256 "
		    "or Ed25519 SubjectPublicKeyInfo DER file", path);
	}
	s->alg       = (uint8_t)alg;
	s->has_trust = true;
	return CS_OK;
}

static int
sim_open(probe *p, const struct probe_url *u)
{
	static const char *const known[] = {"uid", "trust", "product",
	    "fail", "fw_end", NULL};
	struct sim_probe        *s;
	char                     v[SIM_PARAM_MAX];
	uint8_t                  uid[CS_RECORD_UID_MAX];
	size_t                   uid_len = 0;
	bool                     f_open  = false;
	const char              *name = u->where[0] != '\0' ? u->where
	                                                    : "default";
	int                      rv;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return probe_fail(p, CS_ENOMEM, "out of memory");
	}
	p->impl    = s;
	s->product = SIM_PRODUCT;
	if (strlen(name) > SIM_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
	    "XYZ0123456789_.-") != strlen(name)) {
		return probe_fail(p, CS_EADDR, "sim: bad device name '%s' "
		    "(1..%u of A-Z a-z 0-9 _ . -)", name, SIM_NAME_MAX);
	}
	if ((rv = probe_query_check(p, u->query, known)) != CS_OK) {
		return rv;
	}
	if ((rv = probe_query_get(u->query, "uid", v, sizeof(v))) == 1 &&
	    cs_hex_decode(v, uid, sizeof(uid), &uid_len) != CS_OK) {
		return probe_fail(p, CS_EADDR, "sim: uid=%s: 1 to %u bytes "
		    "as hex", v, CS_RECORD_UID_MAX);
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "product", v,
	    sizeof(v))) == 1 &&
	    probe_parse_u32(v, UINT32_MAX, &s->product) != CS_OK) {
		return probe_fail(p, CS_EADDR, "sim: product=%s: not a "
		    "32-bit number", v);
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "fw_end", v,
	    sizeof(v))) == 1 &&
	    (probe_parse_u32(v, SIM_RECORD_ADDR, &s->fw_end) != CS_OK ||
	    s->fw_end == 0)) {
		return probe_fail(p, CS_EADDR, "sim: fw_end=%s: expected the "
		    "end of the firmware, 1 to 0x%x (the record area)", v,
		    SIM_RECORD_ADDR);
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "fail", v,
	    sizeof(v))) == 1 &&
	    (rv = sim_parse_fail(p, s, v, &f_open)) != CS_OK) {
		return rv;
	}
	if (rv >= 0 && (rv = probe_query_get(u->query, "trust", v,
	    sizeof(v))) == 1 && (rv = sim_load_trust(p, s, v)) != CS_OK) {
		return rv;
	}
	if (rv < 0) {
		return probe_fail(p, CS_EADDR, "sim: URL parameter too long");
	}
	if (f_open) {
		return probe_fail(p, CS_EUNAVAIL, "sim:%s: cannot connect to "
		    "the probe (fail=open)", name);
	}
	pthread_mutex_lock(&sim_lock);
	s->dev = sim_find(name, true);
	if (s->dev != NULL && uid_len != 0) {
		memcpy(s->dev->uid, uid, uid_len);
		s->dev->uid_len = uid_len;
	}
	if (s->dev != NULL) {
		s->dev->fc.commit_ignored = s->f_lock;
	}
	pthread_mutex_unlock(&sim_lock);
	if (s->dev == NULL) {
		return probe_fail(p, CS_ENOMEM, "out of memory");
	}
	return CS_OK;
}

static void
sim_close(probe *p)
{
	free(p->impl);
	p->impl = NULL;
}

/* Every verb first: an unplugged probe answers nothing. */
static int
sim_gone(probe *p, struct sim_probe *s)
{
	if (s->gone) {
		return probe_fail(p, CS_ECLOSED, "sim:%s: probe disconnected "
		    "(fail=disconnect@%llu)", s->dev->name,
		    (unsigned long long)s->disconnect_after);
	}
	return CS_OK;
}

/* How many of len bytes may still be written before the injected
 * disconnect; sets gone when the write reaches it. */
static size_t
sim_budget(struct sim_probe *s, size_t len)
{
	uint64_t left;

	if (!s->f_disconnect) {
		return len;
	}
	left = s->disconnect_after > s->written
	           ? s->disconnect_after - s->written
	           : 0;
	if (left < len) {
		s->gone = true;
		return (size_t)left;
	}
	return len;
}

static int
sim_read(probe *p, uint32_t addr, void *buf, size_t len)
{
	struct sim_probe *s = p->impl;
	struct sim_dev   *d = s->dev;
	uint8_t          *b = buf;
	uint32_t          reg;
	int               rv;

	if ((rv = sim_gone(p, s)) != CS_OK) {
		return rv;
	}
	if (s->f_read) {
		return probe_fail(p, CS_EIO, "sim:%s: read of 0x%08x failed "
		    "(fail=read)", d->name, addr);
	}
	pthread_mutex_lock(&sim_lock);
	if (addr - SIM_FLASH_BASE < SIM_FLASH_SIZE &&
	    len <= SIM_FLASH_SIZE - (addr - SIM_FLASH_BASE) &&
	    !lm3s_sim_readable(&d->fc, addr - SIM_FLASH_BASE, len)) {
		rv = probe_fail(p, CS_EIO, "sim:%s: reading 0x%08x + %zu: bus "
		    "fault (the flash is read protected)", d->name, addr, len);
	} else if (addr - SIM_FLASH_BASE < SIM_FLASH_SIZE &&
	    len <= SIM_FLASH_SIZE - (addr - SIM_FLASH_BASE)) {
		memcpy(b, d->flash + (addr - SIM_FLASH_BASE), len);
		if (s->f_verify) {
			b[0] ^= 0x01; /* one flipped bit */
		}
		rv = CS_OK;
	} else if (addr - SIM_RAM_BASE < SIM_RAM_SIZE &&
	    len <= SIM_RAM_SIZE - (addr - SIM_RAM_BASE)) {
		memcpy(b, d->ram + (addr - SIM_RAM_BASE), len);
		/* Overlay the UID where the read covers it. */
		for (size_t i = 0; i < d->uid_len; i++) {
			uint32_t a = SIM_UID_ADDR + (uint32_t)i;

			if (a >= addr && a - addr < len) {
				b[a - addr] = s->f_uid_ff ? 0xFF : d->uid[i];
			}
		}
		rv = CS_OK;
	} else if (len == 4 && addr % 4 == 0 &&
	    lm3s_sim_reg_read(&d->fc, addr, &reg)) {
		for (unsigned i = 0; i < 4; i++) {
			b[i] = (uint8_t)(reg >> (8 * i));
		}
		rv = CS_OK;
	} else {
		rv = probe_fail(p, CS_EIO, "sim:%s: no memory at 0x%08x + "
		    "%zu (flash 0x%08x + 0x%x, RAM 0x%08x + 0x%x)", d->name,
		    addr, len, SIM_FLASH_BASE, SIM_FLASH_SIZE, SIM_RAM_BASE,
		    SIM_RAM_SIZE);
	}
	pthread_mutex_unlock(&sim_lock);
	return rv;
}

static int
sim_write(probe *p, uint32_t addr, const void *buf, size_t len)
{
	struct sim_probe *s = p->impl;
	struct sim_dev   *d = s->dev;
	size_t            n;
	int               rv;

	if ((rv = sim_gone(p, s)) != CS_OK) {
		return rv;
	}
	if (addr - SIM_FLASH_BASE < SIM_FLASH_SIZE) {
		return probe_fail(p, CS_EIO, "sim:%s: 0x%08x is flash: plain "
		    "memory writes to flash are refused (program it with "
		    "probe_flash_write)", d->name, addr);
	}
	if (len == 4 && addr % 4 == 0 && !(addr - SIM_RAM_BASE <
	    SIM_RAM_SIZE)) {
		const uint8_t *w = buf;
		bool           ok;

		if (sim_budget(s, len) != len) {
			return sim_gone(p, s); /* unplugged before it landed */
		}
		pthread_mutex_lock(&sim_lock);
		ok = lm3s_sim_reg_write(&d->fc, addr, (uint32_t)w[0] |
		    (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 |
		    (uint32_t)w[3] << 24);
		pthread_mutex_unlock(&sim_lock);
		if (ok) {
			s->written += len;
			return CS_OK;
		}
	}
	if (!(addr - SIM_RAM_BASE < SIM_RAM_SIZE &&
	    len <= SIM_RAM_SIZE - (addr - SIM_RAM_BASE))) {
		return probe_fail(p, CS_EIO, "sim:%s: no RAM at 0x%08x + %zu",
		    d->name, addr, len);
	}
	if (addr < SIM_UID_ADDR + d->uid_len &&
	    SIM_UID_ADDR < addr + len) {
		return probe_fail(p, CS_EIO, "sim:%s: write to 0x%08x + %zu "
		    "touches the read-only UID at 0x%08x", d->name, addr, len,
		    SIM_UID_ADDR);
	}
	n = sim_budget(s, len);
	pthread_mutex_lock(&sim_lock);
	memcpy(d->ram + (addr - SIM_RAM_BASE), buf, n);
	pthread_mutex_unlock(&sim_lock);
	s->written += n;
	return n == len ? CS_OK : sim_gone(p, s);
}

static int
sim_flash_write(probe *p, uint32_t erase_addr, size_t erase_len,
    uint32_t addr, const void *buf, size_t len)
{
	struct sim_probe *s = p->impl;
	struct sim_dev   *d = s->dev;
	const uint8_t    *b = buf;
	size_t            n;
	int               rv;

	if ((rv = sim_gone(p, s)) != CS_OK) {
		return rv;
	}
	if (s->f_flash) {
		return probe_fail(p, CS_EIO, "sim:%s: flash programming at "
		    "0x%08x failed (fail=flash)", d->name, addr);
	}
	if (erase_len != 0 &&
	    (erase_addr % SIM_PAGE_SIZE != 0 || erase_len % SIM_PAGE_SIZE != 0 ||
	    erase_addr - SIM_FLASH_BASE >= SIM_FLASH_SIZE ||
	    erase_len > SIM_FLASH_SIZE - (erase_addr - SIM_FLASH_BASE))) {
		return probe_fail(p, CS_EINVAL, "sim:%s: erase 0x%08x + %zu "
		    "is not whole %u-byte pages inside flash", d->name,
		    erase_addr, erase_len, SIM_PAGE_SIZE);
	}
	if (!(addr - SIM_FLASH_BASE < SIM_FLASH_SIZE &&
	    len <= SIM_FLASH_SIZE - (addr - SIM_FLASH_BASE))) {
		return probe_fail(p, CS_EIO, "sim:%s: 0x%08x + %zu is not "
		    "inside flash", d->name, addr, len);
	}
	pthread_mutex_lock(&sim_lock);
	if ((erase_len != 0 && !lm3s_sim_programmable(&d->fc,
	    erase_addr - SIM_FLASH_BASE, erase_len)) ||
	    !lm3s_sim_programmable(&d->fc, addr - SIM_FLASH_BASE, len)) {
		pthread_mutex_unlock(&sim_lock);
		return probe_fail(p, CS_EIO, "sim:%s: flash at 0x%08x is write "
		    "protected (FMPPE): erase and programming refused",
		    d->name, erase_len != 0 ? erase_addr : addr);
	}
	if (erase_len != 0) {
		memset(d->flash + (erase_addr - SIM_FLASH_BASE), 0xFF,
		    erase_len);
	}
	/* NOR: programming clears bits only.  Check every byte first so
	 * that a refused write changes nothing. */
	rv = CS_OK;
	for (size_t i = 0; i < len; i++) {
		uint8_t cur = d->flash[addr - SIM_FLASH_BASE + i];

		if ((b[i] & (uint8_t)~cur) != 0) {
			rv = probe_fail(p, CS_EIO, "sim:%s: flash byte at "
			    "0x%08zx is 0x%02x: programming 0x%02x would set "
			    "bits, which NOR flash cannot (erase the page "
			    "first)", d->name, (size_t)addr + i, cur, b[i]);
			break;
		}
	}
	if (rv == CS_OK) {
		n = sim_budget(s, len);
		for (size_t i = 0; i < n; i++) {
			d->flash[addr - SIM_FLASH_BASE + i] &= b[i];
		}
		s->written += n;
		rv = n != len ? CS_ECLOSED : CS_OK;
	}
	pthread_mutex_unlock(&sim_lock);
	return rv == CS_ECLOSED ? sim_gone(p, s) : rv;
}

static int
sim_flash_done(probe *p)
{
	return sim_gone(p, p->impl);
}

static int
sim_reset_halt(probe *p)
{
	struct sim_probe *s = p->impl;
	int               rv;

	if ((rv = sim_gone(p, s)) != CS_OK) {
		return rv;
	}
	pthread_mutex_lock(&sim_lock);
	lm3s_sim_reset(&s->dev->fc);
	pthread_mutex_unlock(&sim_lock);
	return CS_OK;
}

static int
sim_run(probe *p, unsigned timeout_ms, struct probe_stop *stop)
{
	struct sim_probe      *s = p->impl;
	uint8_t                rec[CS_RECORD_MAX_LEN];
	uint8_t                uid[CS_RECORD_UID_MAX];
	size_t                 uid_len, len;
	struct cs_trust_key    key;
	struct cs_verify_trust trust;
	cs_verify_result       r;
	uint8_t                fw_digest[CS_SHA256_LEN];
	uint32_t               fw_end = s->fw_end;
	int                    rv;

	(void)timeout_ms; /* the boot check answers at once */
	if ((rv = sim_gone(p, s)) != CS_OK) {
		return rv;
	}
	pthread_mutex_lock(&sim_lock);
	/* The firmware measures itself (cs_image.h): from 0 to the end of
	 * its last byte below the record area, unless fw_end= says. */
	if (fw_end == 0) {
		fw_end = SIM_RECORD_ADDR - SIM_FLASH_BASE;
		while (fw_end > 0 && s->dev->flash[fw_end - 1] == 0xFF) {
			fw_end--;
		}
	}
	rv = cs_sha256(s->dev->flash, fw_end, fw_digest);
	memcpy(rec, s->dev->flash + SIM_RECORD_ADDR, sizeof(rec));
	uid_len = s->dev->uid_len;
	memcpy(uid, s->dev->uid, uid_len);
	pthread_mutex_unlock(&sim_lock);
	if (rv != CS_OK) {
		return probe_fail(p, rv, "sim:%s: boot check: cannot hash the "
		    "firmware", s->dev->name);
	}
	if (s->f_uid_ff) {
		memset(uid, 0xFF, uid_len);
	}
	stop->exited = true;
	if (!s->has_trust) {
		stop->exit_code = memcmp(rec, CS_RECORD_MAGIC,
		    CS_RECORD_MAGIC_LEN) == 0 ? 0 : 1;
		return CS_OK;
	}
	/* As the example firmware does: the header says how long. */
	len = cs_record_size(rec, CS_RECORD_HEADER_LEN);
	if (len == 0) {
		len = CS_RECORD_HEADER_LEN;
	}
	memset(&key, 0, sizeof(key));
	key.alg     = s->alg;
	key.key_id  = s->key_id;
	key.pub     = s->pub;
	key.pub_len = s->pub_len;
	memset(&trust, 0, sizeof(trust));
	trust.keys       = &key;
	trust.n_keys     = 1;
	trust.product_id      = s->product;
	trust.firmware_digest = fw_digest;
	r = cs_verify_record(rec, len, uid, uid_len, &trust, NULL);
	stop->exit_code = CS_VERIFY_AUTHORIZED(r) ? 0 : 1;
	if (stop->exit_code != 0) {
		/* Not a probe error, but the reason is worth telling. */
		probe_fail(p, CS_OK, "sim:%s: boot check: %s (%s)",
		    s->dev->name, cs_verify_strerror(r), cs_verify_name(r));
	}
	return CS_OK;
}

const struct probe_ops probe_sim_ops = {
	.scheme      = "sim",
	.open        = sim_open,
	.close       = sim_close,
	.read        = sim_read,
	.write       = sim_write,
	.flash_write = sim_flash_write,
	.flash_done  = sim_flash_done,
	.reset_halt  = sim_reset_halt,
	.run         = sim_run,
	.protect     = probe_protect_steps,
};
