/*
 * bench.c - countersign-hsm-bench: how much the HSM shim costs.
 *
 * In one run, against one key on one token, it measures signatures per
 * second for 1 and 2 threads two ways:
 *
 *   raw   each thread has a session of its own (C_OpenSession) and loops
 *         C_SignInit + C_Sign on the key's handle: bare PKCS#11, the
 *         ceiling for any shim;
 *   shim  each thread loops cs_hsm_sign() on a pool of 2 sessions:
 *         session borrowing, the key cache, error classification.
 *
 * The two alternate in short rounds (100 ms by default; raw first in odd
 * rounds, shim first in even ones) so that drift and the load of other
 * processes hit both alike: on a shared 2-CPU machine, runs of a few
 * seconds each differed by up to 10 % between identical loops.  The last
 * line is key=value pairs for scripts; shim_over_raw is the smaller of the
 * two shim/raw ratios.
 *
 * The raw loop needs the bare PKCS#11 API, so this program includes the
 * PKCS#11 header itself (last, for its lowercase macros).  It loads the
 * same module file as the shim, which the dynamic linker maps once, so
 * both share one initialisation and one login: this file never sees the
 * PIN.  This is a benchmark, not a test: ctest does not run it.
 */
#include "cs_cli.h"
#include "cs_crypto.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "hsm_bench_loop.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Last: it defines lowercase macros (value, count, parameter, ...). */
#include <p11-kit/pkcs11.h>

#define PROG        "countersign-hsm-bench"
#define MAX_THREADS 2

struct bench {
	struct cs_cli cli;
	const char   *module, *token, *pin_file, *label;
	cs_alg      alg;
	cs_hsm     *h;

	void             *dl;
	CK_FUNCTION_LIST *p11;
	CK_SESSION_HANDLE raw[MAX_THREADS];
	unsigned          nraw;
	CK_OBJECT_HANDLE  key;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " --module PATH --token LABEL --pin-file FILE "
	    "--label KEY\n"
	    "       [--alg p256|ed25519] [--seconds S] [--rounds R]\n"
	    "\n"
	    "Compares signatures per second through the HSM shim with a bare "
	    "PKCS#11\nC_SignInit + C_Sign loop on the same key, for 1 and 2 "
	    "threads.  Each of\nthe four measurements lasts S seconds "
	    "(default 3), split into R rounds\n(default 30).  The key is "
	    "generated (default p256) if it does not exist.\n"
	    "--module, --token and --pin-file fall back to "
	    "COUNTERSIGN_HSM_MODULE,\nCOUNTERSIGN_HSM_TOKEN and "
	    "COUNTERSIGN_HSM_PIN_FILE.\n");
}

/* ------------------------------------------------------------------ */
/* The bare PKCS#11 side                                               */

static int
raw_open(struct bench *b)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID           slots[64];
	CK_ULONG             n = 64;
	CK_UTF8CHAR          want[32];
	CK_OBJECT_CLASS      cls = CKO_PRIVATE_KEY;
	CK_ULONG             found = 0;
	CK_RV                rv;
	bool                 have_slot = false;
	CK_SLOT_ID           slot      = 0;

	/* The same file the shim loaded: the same instance of the module. */
	if ((b->dl = dlopen(b->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		return cs_cli_error(&b->cli, 1, "cannot load %s: %s",
		    b->module, dlerror());
	}
	*(void **)&get = dlsym(b->dl, "C_GetFunctionList");
	if (get == NULL || get(&b->p11) != CKR_OK) {
		return cs_cli_error(&b->cli, 1, "%s has no usable "
		    "C_GetFunctionList", b->module);
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv         = b->p11->C_Initialize(&args);
	if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED && rv != CKR_OK) {
		return cs_cli_error(&b->cli, 1, "C_Initialize: 0x%lx",
		    (unsigned long)rv);
	}
	memset(want, ' ', sizeof(want));
	memcpy(want, b->token, strlen(b->token));
	if ((rv = b->p11->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		return cs_cli_error(&b->cli, 1, "C_GetSlotList: 0x%lx",
		    (unsigned long)rv);
	}
	for (CK_ULONG i = 0; i < n && !have_slot; i++) {
		CK_TOKEN_INFO ti;
		if (b->p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			slot      = slots[i];
			have_slot = true;
		}
	}
	if (!have_slot) {
		return cs_cli_error(&b->cli, 1, "no token \"%s\" for the raw "
		    "loop", b->token);
	}
	for (b->nraw = 0; b->nraw < MAX_THREADS; b->nraw++) {
		/* Read/write, like the pool's: only the shim differs. */
		rv = b->p11->C_OpenSession(slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		    &b->raw[b->nraw]);
		if (rv != CKR_OK) {
			return cs_cli_error(&b->cli, 1, "C_OpenSession: "
			    "0x%lx", (unsigned long)rv);
		}
	}
	/* The shim logged the application in; these sessions share it. */
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_LABEL, (void *)b->label, strlen(b->label)},
	};
	if ((rv = b->p11->C_FindObjectsInit(b->raw[0], tmpl, 2)) != CKR_OK ||
	    (rv = b->p11->C_FindObjects(b->raw[0], &b->key, 1, &found)) !=
		CKR_OK ||
	    (rv = b->p11->C_FindObjectsFinal(b->raw[0])) != CKR_OK) {
		return cs_cli_error(&b->cli, 1, "finding the key: 0x%lx",
		    (unsigned long)rv);
	}
	if (found != 1) {
		return cs_cli_error(&b->cli, 1, "the raw loop cannot see key "
		    "\"%s\"", b->label);
	}
	return 0;
}

static void
raw_close(struct bench *b)
{
	for (unsigned i = 0; i < b->nraw; i++) {
		b->p11->C_CloseSession(b->raw[i]);
	}
	/* No C_Finalize: the shim initialised the module and finalizes it. */
	if (b->dl != NULL) {
		dlclose(b->dl);
	}
}

/* ------------------------------------------------------------------ */
/* The measurement                                                     */

/*
 * One signature the bare way, on the calling thread's own session.  The
 * mechanism is set up per call, which costs next to nothing beside a
 * signature; both loops pay the same indirect call (hsm_bench_measure).
 */
static int
raw_sign(void *arg, unsigned thread, const uint8_t *msg, size_t len,
    uint8_t sig[CS_SIG_LEN])
{
	struct bench     *b    = arg;
	CK_SESSION_HANDLE s    = b->raw[thread];
	CK_MECHANISM      mech = {b->alg == CS_ALG_ED25519 ? CKM_EDDSA
	                                                   : CKM_ECDSA,
	         NULL, 0};
	CK_ULONG          n    = CS_SIG_LEN;
	CK_RV             rv   = b->p11->C_SignInit(s, &mech, b->key);

	if (rv == CKR_OK) {
		/* PKCS#11 takes the message as non-const; C_Sign reads it. */
		rv = b->p11->C_Sign(s, (CK_BYTE_PTR)msg, (CK_ULONG)len, sig,
		    &n);
	}
	return rv == CKR_OK ? CS_OK : CS_EHSM;
}

static int
run(struct bench *b, unsigned seconds, unsigned rounds)
{
	double   rate[MAX_THREADS + 1][2]; /* [threads][raw, shim] */
	double   worst = 0;
	unsigned ms    = seconds * 1000u / rounds;
	struct hsm_bench_shim shim = {.h = b->h, .label = b->label,
	    .alg = b->alg};

	printf(PROG ": token \"%s\" key \"%s\" alg=%s seconds=%u "
	    "rounds=%u\n", b->token, b->label, cs_alg_name(b->alg), seconds,
	    rounds);
	printf("%-8s %12s %12s %9s\n", "threads", "raw sig/s", "shim sig/s",
	    "shim/raw");
	for (unsigned t = 1; t <= MAX_THREADS; t++) {
		unsigned long count[2] = {0, 0};
		double        secs[2]  = {0, 0};
		for (unsigned r = 0; r < rounds; r++) {
			for (unsigned k = 0; k < 2; k++) {
				bool raw = (k == 0) == (r % 2 == 0);
				int  rv  = raw ? hsm_bench_measure(t, ms,
				      raw_sign, b, &count[0], &secs[0])
				               : hsm_bench_measure(t, ms,
				      hsm_bench_shim_sign, &shim, &count[1],
				      &secs[1]);
				if (rv != CS_OK) {
					return cs_cli_error(&b->cli, 1,
					    "signing failed in the %s loop: "
					    "%s", raw ? "raw" : "shim",
					    cs_strerror(rv));
				}
			}
		}
		rate[t][0] = (double)count[0] / secs[0];
		rate[t][1] = (double)count[1] / secs[1];
		double ratio = rate[t][1] / rate[t][0];
		worst        = t == 1 || ratio < worst ? ratio : worst;
		printf("%-8u %12.0f %12.0f %9.3f\n", t, rate[t][0], rate[t][1],
		    ratio);
	}
	printf("(shim_over_raw is the smaller of the two shim/raw "
	    "ratios)\n");
	printf("alg=%s threads1_raw=%.0f threads1_shim=%.0f "
	    "threads2_raw=%.0f threads2_shim=%.0f shim_over_raw=%.3f\n",
	    cs_alg_name(b->alg), rate[1][0], rate[1][1], rate[2][0],
	    rate[2][1], worst);
	return 0;
}

static bool
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char         *end;
	unsigned long v;

	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"module", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'},
	    {"pin-file", required_argument, NULL, 'p'},
	    {"label", required_argument, NULL, 'l'},
	    {"alg", required_argument, NULL, 'a'},
	    {"seconds", required_argument, NULL, 's'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {
	    .cli      = {.prog = PROG, .usage_code = 2},
	    .module   = env("COUNTERSIGN_HSM_MODULE"),
	    .token    = env("COUNTERSIGN_HSM_TOKEN"),
	    .pin_file = env("COUNTERSIGN_HSM_PIN_FILE"),
	    .alg      = CS_ALG_NONE,
	};
	struct cs_hsm_key key;
	unsigned          seconds = 3, rounds = 30;
	char              err[1024];
	int               opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			b.module = optarg;
			break;
		case 't':
			b.token = optarg;
			break;
		case 'p':
			b.pin_file = optarg;
			break;
		case 'l':
			b.label = optarg;
			break;
		case 'a':
			if (cs_alg_parse(optarg, &b.alg) != CS_OK) {
				return cs_cli_usage(&b.cli, NULL, "--alg "
				    "takes p256 or ed25519");
			}
			break;
		case 's':
			if (!parse_uint(optarg, 1, 3600, &seconds)) {
				return cs_cli_usage(&b.cli, NULL, "--seconds "
				    "takes 1 to 3600");
			}
			break;
		case 'r':
			if (!parse_uint(optarg, 1, 100, &rounds)) {
				return cs_cli_usage(&b.cli, NULL, "--rounds "
				    "takes 1 to 100");
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cs_cli_usage(&b.cli, NULL, "bad option");
		}
	}
	if (b.module == NULL || b.token == NULL || b.pin_file == NULL ||
	    b.label == NULL) {
		return cs_cli_usage(&b.cli, NULL, "--module, --token, "
		    "--pin-file and --label are required (or their "
		    "COUNTERSIGN_HSM_* variables)");
	}
	if ((rv = cs_cli_positional(&b.cli, NULL, argc, argv, 0)) != 0) {
		return rv;
	}
	cs_log_open(PROG, CS_LOG_WARN, false);
	struct cs_hsm_opts o = {
	    .module   = b.module,
	    .token    = b.token,
	    .pin_file = b.pin_file,
	    .sessions = MAX_THREADS,
	};
	if ((rv = cs_hsm_open(&b.h, &o, err, sizeof(err))) != CS_OK) {
		return cs_cli_error(&b.cli, 1, "%s", err);
	}
	rv = cs_hsm_key(b.h, b.label, &key);
	if (rv == CS_ENOENT) {
		b.alg = b.alg != CS_ALG_NONE ? b.alg : CS_ALG_P256;
		printf("generating %s key \"%s\"\n", cs_alg_name(b.alg),
		    b.label);
		rv = cs_hsm_keygen(b.h, b.label, b.alg, &key);
	}
	if (rv != CS_OK) {
		rv = cs_cli_error(&b.cli, 1, "key \"%s\": %s", b.label,
		    cs_strerror(rv));
		goto out;
	}
	if (b.alg != CS_ALG_NONE && key.alg != b.alg) {
		rv = cs_cli_error(&b.cli, 1, "key \"%s\" is %s, not %s",
		    b.label, cs_alg_name(key.alg), cs_alg_name(b.alg));
		goto out;
	}
	b.alg = key.alg;
	if ((rv = raw_open(&b)) == 0) {
		rv = run(&b, seconds, rounds);
	}
out:
	if (b.p11 != NULL || b.dl != NULL) {
		raw_close(&b);
	}
	cs_hsm_close(b.h);
	return rv;
}
