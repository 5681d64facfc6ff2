/*
 * revocation.c - disabled stations refused at TLS (see revocation.h).
 *
 * One mutex serialises re-issues: two officers disabling two stations at
 * once each get a CRL that has both (the second re-reads the store after
 * the first's commit).  The CRL number is the issue time in
 * milliseconds (wall clock), or the last number + 1 when that is not
 * larger: it grows within a run, and across restarts as long as the clock
 * does not go back.
 */
#include "revocation.h"

#include "cs_err.h"
#include "cs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_MOD        "revocation"
#define REFRESH_S      86400 /* re-issue a CRL this old */
#define EXTRA_CRL_MAX  (1024 * 1024)

struct revocation {
	store              *st;
	station_ca         *ca;
	char               *crl_path;
	char               *cert, *key, *ca_file, *extra_crl;
	cs_srv             *srv;
	pthread_mutex_t     mtx;
	char               *pem;    /* the current CRL we issued */
	uint64_t            number;
	time_t              issued;
};

static int
say(char *err, size_t errlen, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
say(char *err, size_t errlen, int rv, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rv;
}

/* The extra CRL file's text (may be NULL: none). */
static int
read_extra(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	char       *buf;
	FILE       *fp;
	size_t      n;

	*out = NULL;
	if (path == NULL) {
		return CS_OK;
	}
	if ((fp = fopen(path, "rb")) == NULL) {
		return say(err, errlen, CS_ENOENT, "[tls] crl %s: %s", path,
		    strerror(errno));
	}
	if (fstat(fileno(fp), &st) != 0 || st.st_size > EXTRA_CRL_MAX) {
		fclose(fp);
		return say(err, errlen, CS_ETOOBIG, "[tls] crl %s: not a "
		    "file of at most %d bytes", path, EXTRA_CRL_MAX);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fclose(fp);
		return CS_ENOMEM;
	}
	n      = fread(buf, 1, (size_t)st.st_size, fp);
	buf[n] = '\0';
	fclose(fp);
	*out = buf;
	return CS_OK;
}

/* Write text to path through path.tmp, fsync'ed, renamed into place. */
static int
write_atomic(const char *path, const char *a, const char *b, char *err,
    size_t errlen)
{
	char tmp[4096];
	int  fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return say(err, errlen, CS_EINVAL, "CRL path too long");
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	         0644)) < 0) {
		return say(err, errlen, CS_EIO, "cannot write %s: %s", tmp,
		    strerror(errno));
	}
	ok = write(fd, a, strlen(a)) == (ssize_t)strlen(a) &&
	    (b == NULL || write(fd, b, strlen(b)) == (ssize_t)strlen(b)) &&
	    fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return say(err, errlen, CS_EIO, "cannot write %s: %s", path,
		    strerror(e));
	}
	return CS_OK;
}

/* The revoked list from the store: every disabled station with a serial. */
static int
revoked_list(revocation *r, StoredStation ***list, size_t *n,
    struct station_revoked **out, size_t *nout)
{
	store_txn *txn;
	size_t     k = 0;
	int        rv;

	*out  = NULL;
	*nout = 0;
	if ((rv = store_txn_begin(r->st, false, &txn)) != CS_OK) {
		return rv;
	}
	rv = store_station_list(txn, list, n);
	store_txn_abort(txn);
	if (rv != CS_OK) {
		return rv;
	}
	if (*n > 0 && (*out = calloc(*n, sizeof(**out))) == NULL) {
		return CS_ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		const StoredStation *s = (*list)[i];
		if (s->enabled) {
			continue;
		}
		if (s->cert_serial.len == 0 ||
		    s->cert_serial.len > STATION_SERIAL_MAX) {
			cs_log_warn(LOG_MOD, "disabled station has no recorded "
			    "certificate serial and cannot be refused at TLS "
			    "(it is still refused at Authenticate) station=%s",
			    s->name);
			continue;
		}
		(*out)[k].serial      = s->cert_serial.data;
		(*out)[k].serial_len  = s->cert_serial.len;
		(*out)[k].when_unix_s = s->disabled_unix_s;
		k++;
	}
	*nout = k;
	return CS_OK;
}

/*
 * Issue a CRL from the store, write it, and make a TLS context with it.
 * Called with r->mtx held (or before anyone else can see r).
 */
static int
reissue(revocation *r, cs_tls_server **tls, char *err, size_t errlen)
{
	StoredStation         **list = NULL;
	struct station_revoked *rev  = NULL;
	size_t                  n = 0, nrev = 0;
	char                   *pem = NULL, *extra = NULL;
	time_t                  now = time(NULL);
	uint64_t                number = 0;
	int                     rv;

	*tls = NULL;
	if ((rv = read_extra(r->extra_crl, &extra, err, errlen)) != CS_OK) {
		return rv;
	}
	struct cs_tls_files f = {
	    .cert = r->cert, .key = r->key, .ca = r->ca_file,
	    .crl = r->extra_crl};
	if (r->ca != NULL) {
		if ((rv = revoked_list(r, &list, &n, &rev, &nrev)) != CS_OK) {
			say(err, errlen, rv, "cannot read the stations: %s",
			    cs_strerror(rv));
			goto out;
		}
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		uint64_t ms = (uint64_t)wall.tv_sec * 1000u +
		    (uint64_t)wall.tv_nsec / 1000000u;
		number = ms > r->number ? ms : r->number + 1;
		if ((rv = station_ca_crl(r->ca, rev, nrev, number, now, &pem,
		         err, errlen)) != CS_OK ||
		    (rv = write_atomic(r->crl_path, pem, extra, err,
		         errlen)) != CS_OK) {
			goto out;
		}
		f.crl = r->crl_path;
	}
	if ((rv = cs_tls_server_make(tls, &f, true)) != CS_OK) {
		say(err, errlen, rv, "the station port's TLS files or CRL "
		    "cannot be used: %s (see the tls log line)",
		    cs_strerror(rv));
		goto out;
	}
	if (pem != NULL) {
		free(r->pem);
		r->pem    = pem;
		pem       = NULL;
		r->number = number;
		r->issued = now;
		cs_log_info(LOG_MOD, "CRL issued number=%llu revoked=%zu "
		    "path=%s", (unsigned long long)number, nrev, r->crl_path);
	}
out:
	free(pem);
	free(extra);
	free(rev);
	store_station_list_free(list, n);
	return rv;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int
revocation_open(revocation **out, const struct revocation_opts *o,
    cs_tls_server **tls, char *err, size_t errlen)
{
	revocation *r;
	int         rv;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return CS_ENOMEM;
	}
	pthread_mutex_init(&r->mtx, NULL);
	r->st        = o->st;
	r->ca        = o->ca;
	r->crl_path  = dup_or_null(o->crl_path);
	r->cert      = dup_or_null(o->files.cert);
	r->key       = dup_or_null(o->files.key);
	r->ca_file   = dup_or_null(o->files.ca);
	r->extra_crl = dup_or_null(o->files.crl);
	if (r->crl_path == NULL || r->cert == NULL || r->key == NULL ||
	    r->ca_file == NULL || (o->files.crl != NULL && r->extra_crl ==
	    NULL)) {
		revocation_close(r);
		return CS_ENOMEM;
	}
	if ((rv = reissue(r, tls, err, errlen)) != CS_OK) {
		revocation_close(r);
		return rv;
	}
	*out = r;
	return CS_OK;
}

void
revocation_attach(revocation *r, cs_srv *srv)
{
	if (r != NULL) {
		pthread_mutex_lock(&r->mtx);
		r->srv = srv;
		pthread_mutex_unlock(&r->mtx);
	}
}

int
revocation_station_changed(revocation *r, const char *name, bool enabled)
{
	cs_tls_server *tls = NULL;
	char           err[512] = "";
	unsigned       closed   = 0;
	int            rv;

	if (r == NULL) {
		return CS_OK;
	}
	pthread_mutex_lock(&r->mtx);
	rv = reissue(r, &tls, err, sizeof(err));
	if (rv == CS_OK && r->srv != NULL) {
		cs_srv_set_tls(r->srv, tls);
	}
	if (!enabled && r->srv != NULL) {
		closed = cs_srv_close_peer_name(r->srv, name);
	}
	pthread_mutex_unlock(&r->mtx);
	cs_tls_server_release(tls);
	if (rv != CS_OK) {
		cs_log_error(LOG_MOD, "CRL not re-issued station=%s err=\"%s\" "
		    "(the station is still refused at Authenticate and Sign)",
		    name, err);
	}
	cs_log_info(LOG_MOD, "station %s station=%s connections_closed=%u",
	    enabled ? "enabled" : "disabled", name, closed);
	return rv;
}

void
revocation_refresh(revocation *r)
{
	cs_tls_server *tls = NULL;
	char           err[512] = "";

	if (r == NULL || r->ca == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mtx);
	if (time(NULL) - r->issued >= REFRESH_S) {
		if (reissue(r, &tls, err, sizeof(err)) == CS_OK) {
			cs_srv_set_tls(r->srv, tls);
		} else {
			cs_log_error(LOG_MOD, "CRL not re-issued err=\"%s\" "
			    "(the current one is valid for %u days from its "
			    "issue)", err, STATION_CRL_DAYS);
		}
	}
	pthread_mutex_unlock(&r->mtx);
	cs_tls_server_release(tls);
}

int
revocation_crl_pem(revocation *r, char **pem)
{
	int rv = CS_ENOENT;

	*pem = NULL;
	if (r == NULL) {
		return rv;
	}
	pthread_mutex_lock(&r->mtx);
	if (r->pem != NULL) {
		rv = (*pem = strdup(r->pem)) != NULL ? CS_OK : CS_ENOMEM;
	}
	pthread_mutex_unlock(&r->mtx);
	return rv;
}

void
revocation_close(revocation *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_destroy(&r->mtx);
	free(r->pem);
	free(r->crl_path);
	free(r->cert);
	free(r->key);
	free(r->ca_file);
	free(r->extra_crl);
	free(r);
}
