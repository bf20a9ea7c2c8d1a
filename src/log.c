#include "log.h"

#include <stdio.h>
#include <string.h>

/*
 * The process has one log destination, chosen by main() before the loop starts; this is
 * the only static state in the library, and only the loop thread writes it.
 */
static kigen_log_handler log_handler;
static void *log_data;
static enum kigen_log_level log_max = KIGEN_LOG_INFO;

void kigen_log_setup(kigen_log_handler handler, void *data, enum kigen_log_level max_level)
{
    log_handler = handler;
    log_data = data;
    log_max = max_level;
}

void kigen_logv(enum kigen_log_level level, const char *fmt, va_list ap)
{
    char line[2048];

    if (level > log_max)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    if (log_handler)
        log_handler(level, line, log_data);
    else
        fprintf(stderr, "kigend: %s\n", line);
}

void kigen_log(enum kigen_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kigen_logv(level, fmt, ap);
    va_end(ap);
}

int kigen_log_errno(enum kigen_log_level level, int r, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kigen_log(level, "%s: %s", msg, strerror(r < 0 ? -r : r));
    return r;
}
