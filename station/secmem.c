/*
 * secmem.c - locked, undumpable, wiped memory for the OEM's firmware
 * (secmem.h).
 *
 * Blocks are anonymous mappings of whole pages: mlock and madvise work on
 * pages, and munmap returns them at once (a free()d heap block could be
 * reused unlocked).  A fixed table of live blocks lets the handler of a
 * fatal signal wipe them without locks: slots are claimed and released
 * with atomics, and a block leaves the table before it is unmapped.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, MADV_DONTDUMP */
#include "secmem.h"

#include "cs_err.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Live blocks: a job holds one image and one layout per probe. */
#define SECMEM_SLOTS 256u
#define SLOT_BUSY    ((uintptr_t)1) /* being filled in */

struct slot {
	_Atomic(uintptr_t) addr; /* 0: free */
	_Atomic(size_t)    len;
};

static struct slot      slots[SECMEM_SLOTS];
static _Atomic(size_t)  locked_bytes;

static size_t
page_round(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (len + pg - 1) / pg * pg;
}

static void
slot_add(void *p, size_t len)
{
	for (size_t i = 0; i < SECMEM_SLOTS; i++) {
		uintptr_t want = 0;

		/* Reserve the slot, then its length, then the address: the
		 * wiper never pairs an address with another block's length. */
		if (atomic_compare_exchange_strong(&slots[i].addr, &want,
		        SLOT_BUSY)) {
			atomic_store(&slots[i].len, len);
			atomic_store(&slots[i].addr, (uintptr_t)p);
			return;
		}
	}
	/* Table full: the block is still wiped when freed, only not by
	 * secmem_wipe_all.  A job never holds this many. */
}

static void
slot_remove(void *p)
{
	for (size_t i = 0; i < SECMEM_SLOTS; i++) {
		uintptr_t want = (uintptr_t)p;

		if (atomic_compare_exchange_strong(&slots[i].addr, &want, 0)) {
			return;
		}
	}
}

int
secmem_alloc(void **out, size_t len, bool must_lock, bool *locked,
    char *err, size_t errlen)
{
	size_t size;
	void  *p;

	*out = NULL;
	if (locked != NULL) {
		*locked = false;
	}
	if (len == 0) {
		snprintf(err, errlen, "no memory asked for");
		return CS_EINVAL;
	}
	size = page_round(len);
	p    = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "out of memory (%zu bytes)", size);
		return CS_ENOMEM;
	}
	/* Before a byte is written: no core dump shows it. */
	if (madvise(p, size, MADV_DONTDUMP) != 0) {
		snprintf(err, errlen, "cannot keep memory out of core dumps: "
		    "%s", strerror(errno));
		munmap(p, size);
		return CS_ENOMEM;
	}
	if (mlock(p, size) == 0) {
		atomic_fetch_add(&locked_bytes, size);
		if (locked != NULL) {
			*locked = true;
		}
	} else if (must_lock) {
		int e = errno;

		munmap(p, size);
		if (e == ENOMEM || e == EPERM || e == EAGAIN) {
			struct rlimit rl;

			getrlimit(RLIMIT_MEMLOCK, &rl);
			snprintf(err, errlen, "cannot lock %zu KiB of memory for "
			    "the firmware (RLIMIT_MEMLOCK is %llu KiB, %zu KiB "
			    "locked already): raise it (ulimit -l, or "
			    "LimitMEMLOCK= in the station's unit)", size / 1024,
			    rl.rlim_cur == RLIM_INFINITY
			        ? 0ull : (unsigned long long)rl.rlim_cur / 1024,
			    atomic_load(&locked_bytes) / 1024);
		} else {
			snprintf(err, errlen, "cannot lock memory for the "
			    "firmware: %s", strerror(e));
		}
		return CS_ENOMEM;
	}
	slot_add(p, size);
	*out = p;
	return CS_OK;
}

void
secmem_free(void *p, size_t len)
{
	size_t size;

	if (p == NULL) {
		return;
	}
	size = page_round(len);
	slot_remove(p);
	explicit_bzero(p, size);
	if (munlock(p, size) == 0) {
		atomic_fetch_sub(&locked_bytes, size);
	}
	munmap(p, size);
}

/* CAP_IPC_LOCK in the effective set: mlock ignores RLIMIT_MEMLOCK. */
static bool
can_lock_any(void)
{
	FILE              *fp = fopen("/proc/self/status", "r");
	char               line[256];
	unsigned long long eff = 0;
	bool               found = false;

	if (fp == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	}
	fclose(fp);
	return found && (eff & (1ull << 14)) != 0; /* CAP_IPC_LOCK */
}

int
secmem_budget(size_t need, char *err, size_t errlen)
{
	struct rlimit rl;
	size_t        held = atomic_load(&locked_bytes);

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || can_lock_any() ||
	    (uint64_t)held + need <= (uint64_t)rl.rlim_cur) {
		return CS_OK;
	}
	snprintf(err, errlen, "the firmware needs %zu KiB of locked memory "
	    "(so that it never reaches swap), but RLIMIT_MEMLOCK allows %llu "
	    "KiB: raise it (ulimit -l %zu, or LimitMEMLOCK=%zuK in the "
	    "station's unit), or use fewer probes", need / 1024,
	    (unsigned long long)rl.rlim_cur / 1024, (held + need) / 1024 + 1,
	    (held + need) / 1024 + 1);
	return CS_ENOMEM;
}

void
secmem_wipe_all(void)
{
	for (size_t i = 0; i < SECMEM_SLOTS; i++) {
		uintptr_t a = atomic_load(&slots[i].addr);

		if (a != 0 && a != SLOT_BUSY) {
			explicit_bzero((void *)a, atomic_load(&slots[i].len));
		}
	}
}

int
secmem_no_core(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? CS_OK : CS_EIO;
}
