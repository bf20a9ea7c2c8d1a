/* The resident daemon: the libuv loop that keeps the inventory current and says what is due. */
#ifndef KIGEND_SERVICE_H
#define KIGEND_SERVICE_H

#include <stdint.h>

#include "config.h"
#include "sink.h"

/*
 * Runs until SIGTERM or SIGINT. Takes ownership of config; config_path is re-read on SIGHUP.
 * clock_offset (seconds, usually 0) is added to the wall clock wherever certificates are
 * judged: `kigend --now TIME` starts the daemon's clock at TIME, which then runs at real
 * speed, for tests and rehearsals. sink_limits (copied) bound the alert sinks; the daemon
 * passes the soft RLIMIT_NOFILE it was started with there, for exec hooks. Returns the process
 * exit status.
 */
int kigend_service_run(const char *config_path, struct kigen_config *config, int64_t clock_offset,
                       const struct kigen_sink_limits *sink_limits);

#endif
