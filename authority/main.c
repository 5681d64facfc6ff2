/*
 * main.c - countersign-authority, the OEM's signing authority daemon.
 *
 * Runs in the foreground (systemd supervises it), logs to stderr (the
 * journal) or syslog, and stops cleanly on SIGTERM/SIGINT: it stops
 * accepting connections, lets requests in flight finish, then exits.
 */
#include "authority_config.h"
#include "authority_service.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "cs_tls.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/countersign/authority.conf"
#define DRAIN_MS       10000u

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: countersign-authority [-c FILE] [--check-config]\n"
	    "\n"
	    "The Countersign signing authority: answers stations over mutual\n"
	    "TLS and signs device records with the OEM key in the HSM.\n"
	    "\n"
	    "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
	    "      --check-config  check the configuration and the TLS files\n"
	    "                      it names, print \"configuration OK\", exit\n"
	    "  -h, --help          this help\n"
	    "  -V, --version       print the version\n");
}

/* Make the station listener's TLS config: client certificates required. */
static int
station_tls(const struct authority_config *cfg, nng_tls_config **out)
{
	struct cs_tls_files f = {
	    .cert = cfg->cert,
	    .key  = cfg->key,
	    .ca   = cfg->station_ca,
	    .crl  = cfg->crl,
	};
	return cs_tls_config_make(out, NNG_TLS_MODE_SERVER,
	    NNG_TLS_AUTH_MODE_REQUIRED, &f);
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
	struct authority_config  cfg;
	struct authority_service svc;
	const char              *path  = DEFAULT_CONFIG;
	bool                     check = false;
	nng_tls_config          *tls   = NULL;
	cs_rpc_server           *srv   = NULL;
	char                     err[512];
	cs_log_level             level = CS_LOG_INFO;
	sigset_t                 sigs;
	int                      opt, sig, rv, status = 1;

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
			printf("countersign-authority %s\n", CS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "countersign-authority: unexpected argument "
		    "'%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if ((rv = authority_config_load(&cfg, path, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	cs_log_level_parse(cfg.log_level, &level);
	cs_log_open("countersign-authority", level, cfg.log_syslog);

	if ((rv = station_tls(&cfg, &tls)) != CS_OK) {
		/* cs_tls logged which file and why */
		fprintf(stderr, "%s: [tls] files cannot be used: %s (see the "
		    "log line above)\n", path, cs_strerror(rv));
		goto out;
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

	authority_service_init(&svc, cfg.id);
	struct cs_rpc_server_opts so = {
	    .url     = cfg.station_listen,
	    .tls     = tls,
	    .workers = cfg.workers,
	};
	if ((rv = cs_rpc_server_open(&srv, &so)) != CS_OK ||
	    (rv = cs_rpc_server_add(srv, &svc.base.base)) != CS_OK ||
	    (rv = cs_rpc_server_start(srv)) != CS_OK) {
		cs_log_error("authority", "cannot serve stations url=%s "
		    "err=\"%s\"", cfg.station_listen, cs_strerror(rv));
		goto out;
	}
	cs_log_info("authority", "started id=%s version=%s", cfg.id,
	    CS_VERSION);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0) {
			continue;
		}
		if (sig == SIGHUP) {
			cs_log_open("countersign-authority", level,
			    cfg.log_syslog);
			cs_log_info("authority", "logs reopened");
			continue;
		}
		cs_log_info("authority", "stopping signal=%s",
		    sig == SIGTERM ? "TERM" : "INT");
		break;
	}
	status = 0;
out:
	cs_rpc_server_close(srv, DRAIN_MS);
	if (tls != NULL) {
		nng_tls_config_free(tls);
	}
	authority_config_free(&cfg);
	if (status == 0 && !check) {
		cs_log_info("authority", "stopped");
	}
	return status;
}
