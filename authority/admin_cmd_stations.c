/*
 * admin_cmd_stations.c - countersign-admin's commands for the station CA
 * and the stations it certifies: `ca init`, `ca crl`, `station enroll`,
 * `station list`, `station disable` and `station enable`.
 *
 * `ca init` is the one local command of the tool, on purpose: the station
 * CA must exist before the authority can start its station listener, so
 * it cannot be asked of the authority.  It opens the HSM itself.
 */
#include "admin_cli.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_err.h"
#include "cs_hsm.h"
#include "station_ca.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The station CA's lifetime: the library enforces its own rules; this
 * only stops a typo of a few extra digits. */
#define CA_DAYS_MAX 36500u

int
admin_cmd_ca_init(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"cn", required_argument, NULL, 'n'},
	    {"days", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct admin *a    = ctx;
	const char   *cn   = NULL;
	uint64_t      days = STATION_CA_DAYS_DEFAULT;
	char          defcn[256], err[1024];
	cs_hsm       *h = NULL;
	int           opt, rv;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			cn = optarg;
			break;
		case 'd':
			if ((rv = admin_cli_num(a, cmd, "--days", optarg, 1,
			    CA_DAYS_MAX, &days)) != ADMIN_EXIT_OK) {
				return rv;
			}
			break;
		default:
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK || (rv = admin_cli_config(a)) != ADMIN_EXIT_OK) {
		return rv;
	}
	const struct authority_config *cfg = &a->cfg;
	if (cfg->hsm_module == NULL) {
		return admin_cli_fail(a, "%s has no [hsm] section: the "
		    "station CA's key is made in the HSM, so add [hsm] "
		    "module, token and pin_file first (see "
		    "deploy/authority.conf.example)",
		    a->config_path);
	}
	if (cn == NULL) {
		snprintf(defcn, sizeof(defcn), "%s station CA", cfg->id);
		cn = defcn;
	}
	struct cs_hsm_opts ho = {
	    .module   = cfg->hsm_module,
	    .token    = cfg->hsm_token,
	    .pin_file = cfg->hsm_pin_file,
	    .sessions = 1,
	};
	if (cs_hsm_open(&h, &ho, err, sizeof(err)) != CS_OK) {
		return admin_cli_fail(a, "%s", err);
	}
	if (station_ca_init(h, cfg->hsm_station_ca_key, cn, (unsigned)days,
	    cfg->station_ca, err, sizeof(err)) != CS_OK) {
		cs_hsm_close(h);
		return admin_cli_fail(a, "%s", err);
	}
	cs_hsm_close(h);
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "cert", cfg->station_ca);
		cs_json_str(&j, "key_label", cfg->hsm_station_ca_key);
		cs_json_str(&j, "token", cfg->hsm_token);
		cs_json_str(&j, "cn", cn);
		cs_json_u64(&j, "days", days);
		cs_json_close(&j);
		putchar('\n');
		return ADMIN_EXIT_OK;
	}
	printf("station CA \"%s\" created, valid %" PRIu64 " days\n"
	       "  certificate: %s\n"
	       "  HSM key:     \"%s\" on token \"%s\"\n",
	    cn, days, cfg->station_ca, cfg->hsm_station_ca_key,
	    cfg->hsm_token);
	return ADMIN_EXIT_OK;
}

/* `ca crl [-o FILE]`: the CRL the station port loads, for anyone to check
 * (openssl crl -in FILE -CAfile station-ca.pem -noout -text).  Unlike a
 * certificate, FILE is replaced: refreshing a copy is the point. */
int
admin_cmd_ca_crl(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__StationCrlRequest req =
	    COUNTERSIGN__V1__STATION_CRL_REQUEST__INIT;
	Countersign__V1__StationCrlReply *rep = NULL;
	struct admin                     *a   = ctx;
	const char                       *out = NULL;
	char                              tmp[4096];
	FILE                             *fp;
	int                               opt, rv;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (opt != 'o') {
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
		out = optarg;
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK ||
	    (rv = admin_cli_call(a, "StationCrl", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (out == NULL || strcmp(out, "-") == 0) {
		fputs(rep->pem, stdout);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	if ((fp = fopen(tmp, "w")) == NULL) {
		rv = admin_cli_fail(a, "cannot create %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	bool bad = fputs(rep->pem, fp) == EOF;
	if (fclose(fp) != 0 || bad || rename(tmp, out) != 0) {
		rv = admin_cli_fail(a, "cannot write %s: %s", out,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
	printf("CRL written to %s\n", out);
out:
	admin_cli_free(rep);
	return rv;
}

static void
station_json(struct cs_json *j, const char *key,
    const Countersign__V1__StationInfo *s)
{
	cs_json_open(j, key);
	cs_json_str(j, "name", s->name);
	cs_json_str(j, "cm", s->cm);
	cs_json_bool(j, "enabled", s->enabled);
	cs_json_u64(j, "enrolled_unix_s", s->enrolled_unix_s);
	cs_json_u64(j, "last_seen_unix_s", s->last_seen_unix_s);
	cs_json_bytes(j, "cert_sha256", s->cert_sha256.data,
	    s->cert_sha256.len);
	cs_json_bytes(j, "public_key_der", s->public_key_der.data,
	    s->public_key_der.len);
	cs_json_close(j);
}

/* Read the CSR (at most STATION_CSR_MAX bytes); *buf is malloc'ed and
 * NUL-terminated. */
static int
read_csr(struct admin *a, const char *path, char **buf, size_t *len)
{
	const size_t max = STATION_CSR_MAX;
	FILE        *fp;
	char        *b;
	size_t       n;

	if ((fp = fopen(path, "rb")) == NULL) {
		return admin_cli_fail(a, "cannot open %s: %s", path,
		    strerror(errno));
	}
	if ((b = malloc(max + 2)) == NULL) {
		fclose(fp);
		return admin_cli_fail(a, "out of memory");
	}
	n        = fread(b, 1, max + 1, fp);
	bool bad = ferror(fp) != 0;
	fclose(fp);
	if (bad || n > max) {
		free(b);
		if (bad) {
			return admin_cli_fail(a, "cannot read %s", path);
		}
		return admin_cli_fail(a, "%s is larger than %zu bytes: not a "
		    "CSR", path, max);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return ADMIN_EXIT_OK;
}

int
admin_cmd_station_enroll(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"csr", required_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'n'},
	    {"cm", required_argument, NULL, 'm'},
	    {"out", required_argument, NULL, 'o'},
	    {"days", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__EnrollStationRequest req =
	    COUNTERSIGN__V1__ENROLL_STATION_REQUEST__INIT;
	Countersign__V1__EnrollStationReply *rep = NULL;
	struct admin *a   = ctx;
	const char   *csr = NULL, *name = NULL, *cm = NULL, *out = NULL;
	uint64_t      days    = 0;
	char         *pem     = NULL;
	size_t        pem_len = 0;
	int           opt, rv, fd = -1;

	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			csr = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'm':
			cm = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'd':
			if ((rv = admin_cli_num(a, cmd, "--days", optarg, 1,
			    STATION_CERT_DAYS_MAX, &days)) != ADMIN_EXIT_OK) {
				return rv;
			}
			break;
		default:
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	if (csr == NULL || name == NULL || cm == NULL || out == NULL) {
		return cs_cli_usage(&a->cli, cmd, "%s is required",
		    csr == NULL ? "--csr" : name == NULL ? "--name"
		    : cm == NULL ? "--cm" : "-o");
	}
	if ((rv = read_csr(a, csr, &pem, &pem_len)) != ADMIN_EXIT_OK) {
		return rv;
	}
	/* Claim the output first: a certificate issued and then not
	 * written would need a second enrollment. */
	if ((rv = admin_cli_create(a, out, &fd)) != ADMIN_EXIT_OK) {
		goto out;
	}
	req.csr_pem.data = (uint8_t *)pem;
	req.csr_pem.len  = pem_len;
	req.name         = (char *)name;
	req.cm           = (char *)cm;
	req.days         = (uint32_t)days;
	if ((rv = admin_cli_call(a, "EnrollStation", &req, &rep)) !=
	    ADMIN_EXIT_OK ||
	    (rv = admin_cli_write(a, fd, out, rep->cert_pem.data,
	    rep->cert_pem.len)) != ADMIN_EXIT_OK) {
		goto out;
	}
	if (fsync(fd) != 0) {
		rv = admin_cli_fail(a, "cannot write %s: %s", out,
		    strerror(errno));
		goto out;
	}
	int cr = close(fd);
	fd     = -1;
	if (cr != 0) {
		rv = admin_cli_fail(a, "cannot write %s: %s", out,
		    strerror(errno));
		unlink(out);
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		if (rep->station != NULL) {
			station_json(&j, "station", rep->station);
		}
		cs_json_str(&j, "cert_file", out);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("enrolled station \"%s\" of %s\n"
		       "certificate written to %s\n"
		       "next: send %s to the station and set [station] cert "
		       "to its path in the station's configuration\n",
		    name, cm, out, out);
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(out); /* created here, still empty or partial */
	}
	admin_cli_free(rep);
	free(pem);
	return rv;
}

int
admin_cmd_station_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__ListStationsRequest req =
	    COUNTERSIGN__V1__LIST_STATIONS_REQUEST__INIT;
	Countersign__V1__ListStationsReply *rep = NULL;
	struct admin *a = ctx;
	char          t1[ADMIN_TIME_LEN], t2[ADMIN_TIME_LEN];
	int           rv, wn = 4, wc = 2;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 0, &rv) ||
	    (rv = admin_cli_call(a, "ListStations", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		admin_cli_list_begin(&j, "stations");
		for (size_t i = 0; i < rep->n_stations; i++) {
			station_json(&j, NULL, rep->stations[i]);
		}
		admin_cli_list_end(&j);
		goto out;
	}
	for (size_t i = 0; i < rep->n_stations; i++) {
		int n = (int)strlen(rep->stations[i]->name);
		int c = (int)strlen(rep->stations[i]->cm);
		wn    = n > wn ? n : wn;
		wc    = c > wc ? c : wc;
	}
	printf("%-*s  %-*s  %-8s  %-20s  %s\n", wn, "NAME", wc, "CM", "STATE",
	    "ENROLLED", "LAST SEEN");
	for (size_t i = 0; i < rep->n_stations; i++) {
		const Countersign__V1__StationInfo *s = rep->stations[i];
		printf("%-*s  %-*s  %-8s  %-20s  %s\n", wn, s->name, wc, s->cm,
		    s->enabled ? "enabled" : "disabled",
		    admin_cli_time(s->enrolled_unix_s, t1),
		    admin_cli_time(s->last_seen_unix_s, t2));
	}
	if (rep->n_stations == 0) {
		printf("(no stations enrolled)\n");
	}
out:
	admin_cli_free(rep);
	return rv;
}

/* disable and enable: one station NAME, one StationReply. */
static int
station_set_enabled(struct admin *a, const struct cs_cli_cmd *cmd,
    int argc, char **argv, bool enabled)
{
	Countersign__V1__SetStationEnabledRequest req =
	    COUNTERSIGN__V1__SET_STATION_ENABLED_REQUEST__INIT;
	Countersign__V1__StationReply *rep = NULL;
	int                            rv;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 1, &rv)) {
		return rv;
	}
	req.name    = argv[optind];
	req.enabled = enabled;
	if ((rv = admin_cli_call(a, "SetStationEnabled", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		if (rep->station != NULL) {
			station_json(&j, NULL, rep->station);
		} else {
			fputs("null", stdout);
		}
		putchar('\n');
	} else {
		printf("station \"%s\" %s\n", req.name,
		    enabled ? "enabled" : "disabled: it can no longer sign or "
		                          "report");
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_station_disable(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv)
{
	return station_set_enabled(ctx, cmd, argc, argv, false);
}

int
admin_cmd_station_enable(void *ctx, const struct cs_cli_cmd *cmd,
    int argc, char **argv)
{
	return station_set_enabled(ctx, cmd, argc, argv, true);
}
