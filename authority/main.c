/*
 * main.c - countersign-authority, the OEM's signing authority daemon.
 *
 * Runs in the foreground (systemd supervises it), logs to stderr (the
 * journal) or syslog, and stops cleanly on SIGTERM/SIGINT: it stops
 * accepting connections, lets requests in flight finish, then exits.
 * Command-line and configuration errors, before logging starts, are
 * printed through cs_cli like those of the other programs.
 *
 * Exit status: 0 stopped cleanly (or --check-config passed), 1 bad
 * configuration or could not start, 2 usage error, 78 the HSM refused the
 * PIN (see EXIT_PIN_REFUSED).
 */
#include "admin_service.h"
#include "authority_config.h"
#include "authority_service.h"
#include "console.h"
#include "cs_cli.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "cs_tls.h"
#include "firmware.h"
#include "revocation.h"
#include "pipeline.h"
#include "sessions.h"
#include "station_ca.h"
#include "store.h"

#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG           "countersign-authority"
#define DEFAULT_CONFIG "/etc/countersign/authority.conf"
#define DRAIN_MS       10000u
#define EXIT_FAIL      1
#define EXIT_USAGE     2

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: " PROG " [-c FILE] [--check-config]\n"
	    "\n"
	    "The Countersign signing authority: answers stations over mutual\n"
	    "TLS and signs device records with the OEM key in the HSM.\n"
	    "\n"
	    "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
	    "      --check-config  check the configuration and the TLS files\n"
	    "                      it names, print \"configuration OK\", exit\n"
	    "  -h, --help          this help\n"
	    "  -V, --version       print the version\n"
	    "\n"
	    "Exit status: 0 stopped cleanly or configuration OK, 1 bad\n"
	    "configuration or cannot start, 2 usage error, 78 the HSM "
	    "refused the\nPIN (not restarted).\n");
}

/* Make the station listener's TLS context: client certificates required. */
static int
station_tls(const struct authority_config *cfg, cs_tls_server **out)
{
	struct cs_tls_files f = {
	    .cert = cfg->cert,
	    .key  = cfg->key,
	    .ca   = cfg->station_ca,
	    .crl  = cfg->crl,
	};
	return cs_tls_server_make(out, &f, true);
}

/*
 * Every connection costs a descriptor: take the hard limit the service
 * manager allows (LimitNOFILE= in the unit), so that the connection caps,
 * not the kernel, decide who is refused.  cs_srv keeps its caps below it.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Exit status when the HSM refused the PIN (or the PIN file is open to
 * others): retrying would hammer the PIN until a real HSM locks it, so
 * the unit does not restart on it (RestartPreventExitStatus=78, EX_CONFIG).
 */
#define EXIT_PIN_REFUSED 78

static void
pin_refused_exit_msg(const char *why)
{
	cs_log_error("authority", "stopping for good: %s; fix the PIN (or "
	    "its file) and start the service again; exit status %d is not "
	    "restarted by the unit", why, EXIT_PIN_REFUSED);
}

/* Everything the daemon runs, torn down in reverse order. */
struct daemon {
	store         *st;
	cs_hsm        *hsm;
	station_ca    *ca;
	sessions      *sessions;
	pipeline      *pipeline;
	cs_rpc_server *stations;
	cs_rpc_server *admin;
	console       *console; /* NULL without a [console] section */
	revocation    *rev;     /* the station port's CRL and TLS context */
	firmware      *fw;      /* held images, target profiles */
	bool           pin_refused; /* the HSM refused the PIN at start */
	unsigned       fill_warned; /* store fill level last warned about */
	struct authority_service svc;
	struct admin_service     admin_svc;
};

/* Open the store, the HSM and the station CA; messages say what to fix. */
static int
open_state(struct daemon *d, const struct authority_config *cfg)
{
	char err[512] = "";
	int  rv;

	rv = store_open(&d->st, cfg->data_dir,
	    (size_t)cfg->map_size_mb * 1024u * 1024u, err, sizeof(err));
	if (rv != CS_OK) {
		cs_log_error("authority", "cannot open the store dir=%s "
		    "err=\"%s\"", cfg->data_dir, err);
		return rv;
	}
	if (cfg->hsm_module == NULL) {
		cs_log_warn("authority", "no [hsm] section: records cannot be "
		    "signed and stations cannot be enrolled");
		return CS_OK;
	}
	struct cs_hsm_opts ho = {
	    .module   = cfg->hsm_module,
	    .token    = cfg->hsm_token,
	    .pin_file = cfg->hsm_pin_file,
	    /* one more than the signers, for enrollment and key reads */
	    .sessions = cfg->hsm_sessions + 1,
	};
	if ((rv = cs_hsm_open(&d->hsm, &ho, err, sizeof(err))) != CS_OK) {
		cs_log_error("authority", "cannot open the HSM err=\"%s\"", err);
		if (rv == CS_EPERM) {
			pin_refused_exit_msg(err);
			d->pin_refused = true;
		}
		return rv;
	}
	rv = station_ca_open(&d->ca, d->hsm, cfg->hsm_station_ca_key,
	    cfg->station_ca, err, sizeof(err));
	if (rv == CS_ENOENT) {
		/* The station CA may be run elsewhere: then this authority
		 * only checks certificates and does not enroll. */
		cs_log_warn("authority", "station enrollment unavailable "
		    "err=\"%s\"", err);
	} else if (rv != CS_OK) {
		cs_log_error("authority", "station CA unusable err=\"%s\"", err);
		return rv;
	}
	return CS_OK;
}

/*
 * Warn once when the store's map passes 80 % and again at 90 % (re-armed
 * when it drops back below): raise map_size_mb before signing stops.
 */
static void
store_fill_warn(struct daemon *d)
{
	uint64_t used, size;
	unsigned level = 0;

	if (store_space(d->st, &used, &size) != CS_OK || size == 0) {
		return;
	}
	level = used * 10 >= size * 9 ? 90u : used * 10 >= size * 8 ? 80u : 0u;
	if (level > d->fill_warned) {
		cs_log_warn("authority", "the store is %u%% full used_bytes=%llu "
		    "map_bytes=%llu: raise [authority] map_size_mb and reload "
		    "(SIGHUP) before it fills (signing then stops with \"store "
		    "full\")",
		    level, (unsigned long long)used, (unsigned long long)size);
	}
	d->fill_warned = level;
}

/*
 * SIGHUP: logs reopened, and a raised [authority] map_size_mb applied to
 * the open store (other settings need a restart; a smaller map is
 * ignored: LMDB never shrinks a map that holds data).
 */
static void
reload(struct daemon *d, const char *path, struct authority_config *cfg)
{
	struct authority_config n;
	char                    err[512] = "";
	int                     rv;

	memset(&n, 0, sizeof(n));
	if (authority_config_load(&n, path, err, sizeof(err)) != 0) {
		cs_log_error("authority", "reload: %s is not valid, nothing "
		    "changed err=\"%s\"", path, err);
		authority_config_free(&n);
		return;
	}
	if (n.map_size_mb > cfg->map_size_mb) {
		rv = store_grow(d->st, (size_t)n.map_size_mb * 1024u * 1024u);
		if (rv == CS_OK) {
			cs_log_info("authority", "reload: map_size_mb %u -> %u",
			    cfg->map_size_mb, n.map_size_mb);
			cfg->map_size_mb = n.map_size_mb;
		} else {
			cs_log_error("authority", "reload: the map was not grown "
			    "to %u MiB err=\"%s\"%s", n.map_size_mb,
			    cs_strerror(rv), rv == CS_EAGAIN ? " (transactions "
			    "kept running for 5 s; reload again)" : "");
		}
	} else if (n.map_size_mb < cfg->map_size_mb) {
		cs_log_warn("authority", "reload: map_size_mb %u is smaller "
		    "than the map in use (%u); a map is never shrunk",
		    n.map_size_mb, cfg->map_size_mb);
	}
	authority_config_free(&n);
}

static void
forget_conn(void *arg, uint64_t conn_id)
{
	sessions_forget_conn(arg, conn_id);
}

/*
 * The firmware key named in [hsm] firmware_key should be on the token and
 * protected.  Missing: held images are refused (with a message saying so)
 * but the authority still signs.  On the token but readable: the
 * authority does not start (CS_ECONFIG), since images sealed under it
 * would be protected by nothing.
 */
static int
check_firmware_key(struct daemon *d, const struct authority_config *cfg)
{
	struct cs_hsm_secret info;
	int                  rv;

	if (cfg->hsm_firmware_key == NULL) {
		cs_log_info("authority", "no [hsm] firmware_key: orders can "
		    "bind a firmware digest but not hold an image");
		return CS_OK;
	}
	if (d->hsm == NULL) {
		cs_log_warn("authority", "[hsm] firmware_key is set but the "
		    "HSM is not open: held images cannot be created or "
		    "served");
		return CS_OK;
	}
	rv = cs_hsm_secret_info(d->hsm, cfg->hsm_firmware_key, &info);
	if (rv != CS_OK) {
		cs_log_warn("authority", "firmware key not usable key=%s "
		    "err=%s: held images cannot be created or served until "
		    "it exists (countersign-keytool keygen --label %s --alg "
		    "aes256)", cfg->hsm_firmware_key, cs_strerror(rv),
		    cfg->hsm_firmware_key);
	} else if (!info.sensitive || info.extractable ||
	    info.value_readable) {
		cs_log_error("authority", "firmware key is not protected by "
		    "the token key=%s sensitive=%d extractable=%d: make a "
		    "new one with countersign-keytool keygen --alg aes256; "
		    "not starting", cfg->hsm_firmware_key, info.sensitive,
		    info.extractable);
		return CS_ECONFIG;
	}
	return CS_OK;
}

static int
start_servers(struct daemon *d, const struct authority_config *cfg)
{
	cs_tls_server *tls = NULL;
	char           err[512] = "", crl_path[4096];
	int            rv;

	if ((rv = sessions_open(&d->sessions, cfg->session_ttl_s,
	    cfg->max_connections)) != CS_OK ||
	    (rv = pipeline_open(&d->pipeline, d->st, d->hsm)) != CS_OK ||
	    (rv = pipeline_set_collapse(d->pipeline, cfg->audit_collapse_s)) !=
	        CS_OK) {
		cs_log_error("authority", "cannot start err=\"%s\"",
		    cs_strerror(rv));
		return rv;
	}
	struct firmware_opts fo = {
	    .hsm         = d->hsm,
	    .key_label   = cfg->hsm_firmware_key,
	    .targets_dir = cfg->firmware_targets_dir,
	};
	if ((rv = firmware_open(&d->fw, &fo)) != CS_OK) {
		cs_log_error("authority", "cannot start err=\"%s\"",
		    cs_strerror(rv));
		return rv;
	}
	if ((rv = check_firmware_key(d, cfg)) != CS_OK) {
		return rv;
	}
	authority_service_init(&d->svc, cfg->id, d->st, d->sessions,
	    d->pipeline);
	admin_service_init(&d->admin_svc, d->st, d->hsm, d->ca, d->sessions,
	    d->pipeline);
	d->svc.fw       = d->fw;
	d->admin_svc.fw = d->fw;

	struct cs_rpc_server_opts ao = {
	    .url     = cfg->admin_listen,
	    .workers = 4,
	    .max_msg = ADMIN_MAX_MSG,
	};
	if ((rv = cs_rpc_server_open(&d->admin, &ao)) != CS_OK ||
	    (rv = cs_rpc_server_add(d->admin, &d->admin_svc.base.base)) !=
	        CS_OK ||
	    (rv = cs_rpc_server_start(d->admin)) != CS_OK) {
		cs_log_error("authority", "cannot serve the admin API url=%s "
		    "err=\"%s\" (does its directory exist and belong to this "
		    "user?)", cfg->admin_listen, cs_strerror(rv));
		return rv;
	}
	/* Disabled stations are refused at TLS: the first CRL now. */
	snprintf(crl_path, sizeof(crl_path), "%s/station-crl.pem",
	    cfg->data_dir);
	struct revocation_opts ro = {
	    .st       = d->st,
	    .ca       = d->ca,
	    .crl_path = crl_path,
	    .files    = {.cert = cfg->cert, .key = cfg->key,
	        .ca = cfg->station_ca, .crl = cfg->crl},
	};
	if ((rv = revocation_open(&d->rev, &ro, &tls, err, sizeof(err))) !=
	    CS_OK) {
		cs_log_error("authority", "cannot set up the station port's "
		    "TLS err=\"%s\"", err);
		return rv;
	}
	d->admin_svc.rev = d->rev;
	struct cs_rpc_server_opts so = {
	    .url     = cfg->station_listen,
	    .tls     = tls,
	    .workers = cfg->workers,
	    .limits  = {
	        .handshake_ms    = cfg->handshake_timeout_ms,
	        .max_conns       = cfg->max_connections,
	        .max_per_source  = cfg->max_connections_per_source,
	        .max_per_name    = cfg->max_connections_per_station,
	        .max_inflight    = cfg->max_requests_per_connection,
	        .send_timeout_ms = cfg->send_timeout_ms,
	        .max_handshaking = cfg->max_handshakes,
	        .idle_ms         = cfg->idle_timeout_s * 1000u,
	        /* The console's connections come out of the same
	         * descriptors. */
	        .fd_reserve = 128u + (cfg->console_cert != NULL
	                ? cfg->console_max_connections : 0u),
	    },
	    /* Challenges and tokens die with their connection. */
	    .on_close     = forget_conn,
	    .on_close_arg = d->sessions,
	};
	rv = cs_rpc_server_open(&d->stations, &so);
	cs_tls_server_release(tls); /* the server holds its own */
	if (rv != CS_OK ||
	    (rv = cs_rpc_server_add(d->stations, &d->svc.base.base)) !=
	        CS_OK ||
	    (rv = cs_rpc_server_start(d->stations)) != CS_OK) {
		cs_log_error("authority", "cannot serve stations url=%s "
		    "err=\"%s\"", cfg->station_listen, cs_strerror(rv));
		return rv;
	}
	revocation_attach(d->rev, cs_rpc_server_transport(d->stations));
	if (cfg->console_cert != NULL) {
		struct console_opts co = {
		    .listen         = cfg->console_listen,
		    .cert           = cfg->console_cert,
		    .key            = cfg->console_key,
		    .session_idle_s = cfg->console_session_idle_s,
		    .session_max_s  = cfg->console_session_max_s,
		    .data_dir       = cfg->data_dir,
		    .hsm_check_key  = cfg->hsm_station_ca_key,
		    .rev            = d->rev,
		    .metrics_public = cfg->console_metrics_public,
		    .limits         = {
		        .handshake_ms   = cfg->handshake_timeout_ms,
		        .idle_ms        = cfg->console_idle_timeout_s * 1000u,
		        .max_conns      = cfg->console_max_connections,
		        .max_per_source = cfg->console_max_connections_per_source,
		    },
		    .stations       = cs_rpc_server_transport(d->stations),
		};
		rv = console_open(&d->console, &co, d->st, d->hsm, d->pipeline,
		    d->sessions);
		if (rv != CS_OK) {
			cs_log_error("authority", "cannot serve the web console "
			    "url=%s err=\"%s\"", cfg->console_listen,
			    cs_strerror(rv));
			return rv;
		}
	}
	return CS_OK;
}

/*
 * Stop in the order that loses nothing: no new requests, requests in
 * flight finish (their commits included), the committer drains, then the
 * store is closed cleanly and the HSM logged out.
 */
static void
stop_all(struct daemon *d)
{
	console_close(d->console);
	cs_rpc_server_close(d->stations, DRAIN_MS);
	cs_rpc_server_close(d->admin, DRAIN_MS);
	revocation_close(d->rev);
	pipeline_close(d->pipeline);
	firmware_close(d->fw);
	sessions_close(d->sessions);
	station_ca_close(d->ca);
	store_close(d->st);
	cs_hsm_close(d->hsm);
	memset(d, 0, sizeof(*d));
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const struct cs_cli      cli = {.prog = PROG, .usage_code = EXIT_USAGE};
	struct authority_config  cfg;
	struct daemon            d;
	const char              *path  = DEFAULT_CONFIG;
	bool                     check = false;
	cs_tls_server           *tls   = NULL;
	char                     err[512];
	cs_log_level             level = CS_LOG_INFO;
	sigset_t                 sigs;
	int                      opt, sig, rv, status = EXIT_FAIL;

	memset(&d, 0, sizeof(d));

	while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", CS_VERSION);
			return 0;
		default:
			/* getopt said which */
			return cs_cli_usage(&cli, NULL, "bad option");
		}
	}
	if (optind != argc) {
		return cs_cli_usage(&cli, NULL, "unexpected argument \"%s\"",
		    argv[optind]);
	}
	if ((rv = authority_config_load(&cfg, path, err, sizeof(err))) != 0) {
		return cs_cli_error(&cli, EXIT_FAIL, "%s", err);
	}
	cs_log_level_parse(cfg.log_level, &level);
	cs_log_open(PROG, level, cfg.log_syslog);

	if ((rv = station_tls(&cfg, &tls)) != CS_OK) {
		/* cs_tls logged which file and why */
		cs_cli_error(&cli, EXIT_FAIL, "%s: [tls] files cannot be "
		    "used: %s (see the log line above)", path,
		    cs_strerror(rv));
		goto out;
	}
	if (check && cfg.console_cert != NULL) {
		struct cs_tls_files cf = {
		    .cert = cfg.console_cert,
		    .key  = cfg.console_key,
		};
		nng_tls_config *ctls = NULL;

		if ((rv = cs_tls_config_make(&ctls, NNG_TLS_MODE_SERVER,
		         NNG_TLS_AUTH_MODE_NONE, &cf)) != CS_OK) {
			cs_cli_error(&cli, EXIT_FAIL, "%s: [console] files "
			    "cannot be used: %s (see the log line above)", path,
			    cs_strerror(rv));
			goto out;
		}
		nng_tls_config_free(ctls);
	}
	if (check) {
		printf("configuration OK\n");
		status = 0;
		goto out;
	}

	/* Block the stop signals before any thread starts, so that only
	 * sigwait() below ever sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	cs_tls_server_release(tls); /* checked; the daemon makes its own */
	tls = NULL;
	if ((rv = open_state(&d, &cfg)) != CS_OK) {
		status = d.pin_refused ? EXIT_PIN_REFUSED : EXIT_FAIL;
		goto out;
	}
	if (start_servers(&d, &cfg) != CS_OK) {
		goto out;
	}
	cs_log_info("authority", "started id=%s version=%s", cfg.id,
	    CS_VERSION);
	for (;;) {
		/* Wake every second: the CRL is kept fresh, and a PIN that
		 * the HSM refused during recovery stops the daemon. */
		struct timespec tick = {.tv_sec = 1};
		if ((sig = sigtimedwait(&sigs, NULL, &tick)) < 0) {
			if (cs_hsm_pin_refused(d.hsm)) {
				pin_refused_exit_msg("the HSM refused the PIN");
				status = EXIT_PIN_REFUSED;
				goto out;
			}
			revocation_refresh(d.rev);
			store_fill_warn(&d);
			pipeline_tick(d.pipeline);
			continue;
		}
		if (sig == SIGHUP) {
			cs_log_open(PROG, level, cfg.log_syslog);
			cs_log_info("authority", "logs reopened");
			reload(&d, path, &cfg);
			continue;
		}
		cs_log_info("authority", "stopping signal=%s",
		    sig == SIGTERM ? "TERM" : "INT");
		break;
	}
	status = 0;
out:
	stop_all(&d);
	cs_tls_server_release(tls);
	authority_config_free(&cfg);
	if (status == 0 && !check) {
		cs_log_info("authority", "stopped");
	}
	return status;
}
