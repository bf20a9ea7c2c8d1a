/* The resident daemon: the libuv loop that keeps the inventory current and says what is due. */
#ifndef KIGEND_SERVICE_H
#define KIGEND_SERVICE_H

#include "config.h"

/*
 * Runs until SIGTERM or SIGINT. Takes ownership of config; config_path is re-read on SIGHUP.
 * Returns the process exit status.
 */
int kigend_service_run(const char *config_path, struct kigen_config *config);

#endif
