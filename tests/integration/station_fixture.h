/*
 * station_fixture.h - for integration tests that drive an authority as a
 * station in-process: a session opened with the station files that
 * `countersign-station init` and `countersign-admin station enroll` left
 * in a test directory.
 */
#ifndef STATION_FIXTURE_H
#define STATION_FIXTURE_H

#include "station_session.h"

/*
 * A session of station name against the authority on 127.0.0.1:port,
 * with dir/NAME.pem, dir/NAME.key and the test PKI's dir/ca.pem.  Fails
 * the test when it cannot be opened.
 */
station_session *tf_session(const char *dir, int port, const char *name);

#endif /* STATION_FIXTURE_H */
