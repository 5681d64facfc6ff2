/*
 * main.c - countersign-station, the agent on a contract manufacturer's
 * programming PC.  This file is the command line; each command lives in
 * its own function.
 */
#include "countersign/v1/authority.pb-c.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_rpc.h"
#include "cs_tls.h"
#include "station_config.h"
#include "station_init.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CONFIG "/etc/countersign/station.conf"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: countersign-station [-c FILE] COMMAND [ARGS]\n"
	    "\n"
	    "The Countersign station agent.\n"
	    "\n"
	    "Commands:\n"
	    "  init               make this station's key ([station] key) and a\n"
	    "                     certificate signing request beside it\n"
	    "  ping [--count N]   connect to the authority with this station's\n"
	    "                     certificate; print its id, the TLS version\n"
	    "                     and the round-trip time\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE  configuration (default " DEFAULT_CONFIG ")\n"
	    "  -h, --help         this help (COMMAND --help: the command's)\n"
	    "  -V, --version      print the version\n");
}

/* The host part of tls+tcp://host:port, without IPv6 brackets. */
static int
url_host(const char *url, char *host, size_t len)
{
	const char *p = strstr(url, "://");
	const char *end;

	if (p == NULL) {
		return CS_EADDR;
	}
	p += 3;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL || end == p || (size_t)(end - p) >= len) {
		return CS_EADDR;
	}
	memcpy(host, p, (size_t)(end - p));
	host[end - p] = '\0';
	return CS_OK;
}

/* Connect to the authority as this station; prints why on failure. */
static int
connect_authority(const struct station_config *cfg, cs_rpc_client **out)
{
	nng_tls_config *tls = NULL;
	char            host[256], err[512];
	int             rv;

	if ((rv = url_host(cfg->authority_url, host, sizeof(host))) != 0) {
		fprintf(stderr, "error: cannot read a host name in "
		    "authority_url %s\n", cfg->authority_url);
		return rv;
	}
	struct cs_tls_files f = {
	    .cert        = cfg->cert,
	    .key         = cfg->key,
	    .ca          = cfg->ca,
	    .server_name = host,
	};
	if ((rv = cs_tls_config_make(&tls, NNG_TLS_MODE_CLIENT,
	    NNG_TLS_AUTH_MODE_REQUIRED, &f)) != CS_OK) {
		fprintf(stderr, "error: the station's TLS files cannot be "
		    "used (%s); check [station] cert, key and ca\n",
		    cs_strerror(rv));
		return rv;
	}
	struct cs_rpc_client_opts co = {
	    .url        = cfg->authority_url,
	    .tls        = tls,
	    .timeout_ms = cfg->timeout_ms,
	    .wait       = true,
	};
	rv = cs_rpc_client_open(out, &co, err, sizeof(err));
	nng_tls_config_free(tls); /* the dialer holds its own reference */
	if (rv != CS_OK) {
		fprintf(stderr, "error: %s\n", err);
	}
	return rv;
}

static double
elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int
cmd_ping(const struct station_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	cs_rpc_client *cli = NULL;
	long           count = 1;
	int            opt, rv;
	char          *end;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end != '\0' || count < 1 || count > 100000) {
				fprintf(stderr, "error: --count takes a "
				    "number from 1 to 100000\n");
				return 2;
			}
			break;
		case 'h':
			printf("usage: countersign-station [-c FILE] ping "
			    "[--count N]\n\nConnects to the authority named "
			    "in the configuration with this\nstation's "
			    "certificate and sends N pings (default 1).\n");
			return 0;
		default:
			return 2;
		}
	}
	if ((rv = connect_authority(cfg, &cli)) != CS_OK) {
		return 1;
	}
	for (long i = 0; i < count; i++) {
		Countersign__V1__PingRequest  req =
		    COUNTERSIGN__V1__PING_REQUEST__INIT;
		Countersign__V1__PingResponse *rsp = NULL;
		struct cs_rpc_result           res;
		struct timespec                t0, t1;
		char                           ver[16], cipher[64];

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rv = cs_rpc_call(cli, &countersign__v1__authority__descriptor,
		    "Ping", &req.base, (ProtobufCMessage **)&rsp, &res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rv != CS_OK) {
			fprintf(stderr, "error: ping failed (%s): %s\n",
			    cs_status_name(res.status), res.message);
			cs_rpc_client_close(cli);
			return 1;
		}
		if (!cs_tls_last_handshake(ver, sizeof(ver), cipher,
		    sizeof(cipher))) {
			snprintf(ver, sizeof(ver), "none");
			snprintf(cipher, sizeof(cipher), "none");
		}
		printf("authority=%s version=%s tls=%s cipher=%s "
		    "rtt_ms=%.3f\n", rsp->authority_id, rsp->version, ver,
		    cipher, elapsed_ms(&t0, &t1));
		protobuf_c_message_free_unpacked(&rsp->base, NULL);
	}
	cs_rpc_client_close(cli);
	return 0;
}

static int
cmd_init(const struct station_config *cfg, int argc, char **argv)
{
	char csr[STATION_PATH_MAX], err[STATION_PATH_MAX + 256];
	int  rv;

	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		printf("usage: countersign-station [-c FILE] init\n\nMakes "
		    "this station's EC P-256 key at [station] key (mode\n"
		    "0600, never replaced) and a CSR beside it for "
		    "enrollment.\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "error: init takes no arguments\n");
		return 2;
	}
	if ((rv = station_init(cfg, csr, sizeof(csr), err, sizeof(err))) !=
	    CS_OK) {
		fprintf(stderr, "error: %s\n", err);
		return 1;
	}
	printf("key: %s\ncsr: %s\nnext: the OEM enrolls it with "
	    "countersign-admin station enroll --csr %s --name %s --cm CM "
	    "-o CERT, and [station] cert names the certificate\n",
	    cfg->key, csr, csr, cfg->name);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct station_config cfg;
	const char           *path = DEFAULT_CONFIG;
	cs_log_level          level = CS_LOG_WARN;
	char                  err[512];
	int                   opt, rv;

	/* Options before the command only: "+" stops at the first word. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("countersign-station %s\n", CS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "countersign-station: no command given\n");
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "ping") != 0 && strcmp(cmd, "init") != 0) {
		fprintf(stderr, "countersign-station: unknown command '%s'\n",
		    cmd);
		usage(stderr);
		return 2;
	}
	if ((rv = station_config_load(&cfg, path, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	cs_log_level_parse(cfg.log_level, &level);
	cs_log_open("countersign-station", level, false);
	signal(SIGPIPE, SIG_IGN);

	rv = strcmp(cmd, "init") == 0
	    ? cmd_init(&cfg, argc - optind, argv + optind)
	    : cmd_ping(&cfg, argc - optind, argv + optind);
	station_config_free(&cfg);
	return rv;
}
