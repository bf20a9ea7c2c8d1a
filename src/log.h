/*
 * The one log API. Library code logs at debug at most; the loop-level caller logs once.
 * Messages start with a capital, quote paths ('%s'), and say when they carry on.
 */
#ifndef KIGEN_LOG_H
#define KIGEN_LOG_H

#include <stdarg.h>

/* syslog(3) priorities: 3 err, 4 warning, 5 notice, 6 info, 7 debug. */
enum kigen_log_level {
    KIGEN_LOG_ERR = 3,
    KIGEN_LOG_WARNING = 4,
    KIGEN_LOG_NOTICE = 5,
    KIGEN_LOG_INFO = 6,
    KIGEN_LOG_DEBUG = 7,
};

/* Where lines go; the default writes "kigend: message" to stderr. */
typedef void (*kigen_log_handler)(enum kigen_log_level level, const char *message, void *data);

/* Sets the handler (NULL: stderr) and the most verbose level that is written. Loop thread. */
void kigen_log_setup(kigen_log_handler handler, void *data, enum kigen_log_level max_level);

void kigen_log(enum kigen_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kigen_logv(enum kigen_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define kigen_log_err(...)    kigen_log(KIGEN_LOG_ERR, __VA_ARGS__)
#define kigen_log_warn(...)   kigen_log(KIGEN_LOG_WARNING, __VA_ARGS__)
#define kigen_log_notice(...) kigen_log(KIGEN_LOG_NOTICE, __VA_ARGS__)
#define kigen_log_info(...)   kigen_log(KIGEN_LOG_INFO, __VA_ARGS__)
#define kigen_log_debug(...)  kigen_log(KIGEN_LOG_DEBUG, __VA_ARGS__)

/* Logs the message followed by ": " and strerror(-r) at level; returns r (negative errno). */
int kigen_log_errno(enum kigen_log_level level, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
