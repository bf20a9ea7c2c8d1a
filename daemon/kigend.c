/*
 * kigend: the certificate-expiry daemon. This file owns the process: options, the libuv
 * loop, signals and sd_notify. All the work is in src/.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "err.h"
#include "i18n.h"
#include "inventory.h"
#include "log.h"
#include "maint.h"
#include "probe.h"
#include "probe_sync.h"
#include "register_records.h"
#include "report.h"
#include "revocation.h"
#include "scan.h"
#include "secret.h"
#include "service.h"
#include "timeutil.h"
#include "tz.h"

#define EXIT_USAGE 3 /* SPEC §6: usage or configuration error */

enum format {
    FORMAT_AUTO,
    FORMAT_JSON,
    FORMAT_TABLE,
};

struct options {
    const char *config_path;
    const char *check_path;
    bool once;
    enum format format;
    bool has_now;
    int64_t now;
    enum kigen_language lang; /* of what the command line says to its user (LANG, ...) */
};

struct once {
    int status;
    bool done;
    bool probes_done;
    int64_t now; /* --now, for the maintenance windows */
};

/* In the language of the user's locale (LANG, LC_MESSAGES, LANGUAGE), as every CLI speaks. */
static void usage(FILE *out, enum kigen_language lang)
{
    fputs(_(lang,
            "Usage: kigend [--config FILE] [--once [--format json|table] [--now RFC3339]]\n"
            "       kigend --check-config FILE\n"
            "\n"
            "Watches certificates and tells people before they run out.\n"
            "\n"
            "  -c, --config FILE        configuration (default /etc/kigen/kigen.yaml)\n"
            "      --once               scan once, print the report, exit 0/1/2 (Nagios)\n"
            "      --format FORMAT      json or table (default: table on a terminal)\n"
            "      --now TIME           evaluate at TIME (RFC 3339) instead of now; for the\n"
            "                           daemon, its clock starts at TIME (tests, rehearsals)\n"
            "      --check-config FILE  validate FILE and exit 0, or 3 with the error\n"
            "  -h, --help               this text\n"
            "      --version            the version\n"),
          out);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    const enum kigen_language lang = o->lang;
    enum {
        OPT_ONCE = 256,
        OPT_FORMAT,
        OPT_NOW,
        OPT_CHECK,
        OPT_VERSION
    };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "once", no_argument, NULL, OPT_ONCE },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "now", required_argument, NULL, OPT_NOW },
        { "check-config", required_argument, NULL, OPT_CHECK },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    int c;

    o->config_path = "/etc/kigen/kigen.yaml";
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case OPT_ONCE:
            o->once = true;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                o->format = FORMAT_JSON;
            else if (strcmp(optarg, "table") == 0)
                o->format = FORMAT_TABLE;
            else {
                fprintf(stderr, _(lang, "kigend: --format must be json or table, not '%s'\n"),
                        optarg);
                return -EINVAL;
            }
            break;
        case OPT_NOW:
            if (kigen_time_parse(optarg, &o->now) < 0) {
                fprintf(stderr,
                        _(lang, "kigend: --now '%s' is not an RFC 3339 time "
                                "(like 2026-11-24T12:00:00Z)\n"),
                        optarg);
                return -EINVAL;
            }
            o->has_now = true;
            break;
        case OPT_CHECK:
            o->check_path = optarg;
            break;
        case 'h':
            usage(stdout, lang);
            exit(0);
        case OPT_VERSION:
            printf("kigend %s\n", KIGEN_VERSION);
            exit(0);
        default:
            usage(stderr, lang);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, _(lang, "kigend: unexpected argument '%s'\n"), argv[optind]);
        return -EINVAL;
    }
    if (o->format != FORMAT_AUTO && !o->once) {
        fputs(_(lang, "kigend: --format goes with --once\n"), stderr);
        return -EINVAL;
    }
    return 0;
}

/* Under systemd stderr is the journal: a "<N>" prefix gives each line its priority. */
static void journal_stream_log(enum kigen_log_level level, const char *message, void *data)
{
    fprintf(stderr, "<%d>%s\n", (int)level, message);
}

/* A configuration error for the person at the command line, in their language. */
static int load_config(const char *path, enum kigen_language lang, struct kigen_config **ret_config)
{
    char err[1024];
    int r = kigen_config_load_lang(path, lang, ret_config, err, sizeof(err));

    if (r < 0)
        fprintf(stderr, "kigend: %s\n", err);
    return r;
}

static void once_done_cb(struct kigen_scanner *scanner, int status, void *data)
{
    struct once *once = data;

    once->status = status;
    once->done = true;
}

static void once_probes_done_cb(struct kigen_prober *prober, void *data)
{
    struct once *once = data;

    once->probes_done = true;
}

static int64_t once_clock(void *data)
{
    const struct once *once = data;

    return once->now;
}

/*
 * The probes of --once run beside the scan, each result final (one failure is down). The
 * maintenance windows apply; without them (no zoneinfo) a failure is simply down.
 */
static int start_probes(uv_loop_t *loop, const struct options *o, const struct kigen_config *config,
                        struct once *once, struct kigen_prober **ret_prober,
                        struct kigen_maint_set **ret_maint)
{
    char err[256] = "";
    int r;

    if (config->probes.n_targets == 0)
        return 0;
    r = kigen_maint_set_new(config, ret_maint, err, sizeof(err));
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Maintenance windows unavailable (%s), ignoring",
                        err);
    r = kigen_prober_new(loop, config, ret_prober);
    if (r < 0)
        return r;
    kigen_prober_set_maintenance(*ret_prober, *ret_maint);
    if (o->has_now)
        kigen_prober_set_clock(*ret_prober, once_clock, once);
    return kigen_prober_run_once(*ret_prober, once_probes_done_cb, once);
}

/*
 * Reads the holders' register (if configured) into inventory, as the daemon does after a
 * scan: its declared certificates and bad rows become records. Returns 0 or -ENOMEM.
 */
static int load_register(struct kigen_inventory *inventory, const struct kigen_config *config,
                         int64_t now, enum kigen_language lang)
{
    struct kigen_register_read read;
    struct kigen_tz *tz = NULL;
    const char *path = config->holders.register_path;
    int r;

    if (!path)
        return 0;
    if (kigen_tz_load(config->timezone, &tz) < 0)
        kigen_log_warn("Cannot load timezone '%s', register dates read as UTC", config->timezone);
    r = kigen_register_read_lang(path, tz, lang, &read);
    if (r == 0)
        r = kigen_register_records_apply(inventory, config, tz, path, &read, now);
    kigen_register_read_done(&read);
    kigen_tz_free(tz);
    return r;
}

/*
 * --check-config: the register too. Every problem (the file, each bad row) is one line on
 * stderr. Returns how many there are, or -ENOMEM.
 */
static int cmp_part(const void *pa, const void *pb)
{
    const struct kigen_file *a = *(const struct kigen_file *const *)pa;
    const struct kigen_file *b = *(const struct kigen_file *const *)pb;

    return (a->part > b->part) - (a->part < b->part);
}

static int check_register(const struct kigen_config *config, enum kigen_language lang)
{
    struct kigen_inventory *inventory = NULL;
    const struct kigen_file **bad = NULL;
    size_t n = 0;
    int r = kigen_inventory_new(&inventory);

    if (r == 0)
        r = load_register(inventory, config, (int64_t)time(NULL), lang);
    if (r == 0 && inventory->n_errors && !(bad = malloc(inventory->n_errors * sizeof(*bad))))
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < inventory->n_files; i++)
        if (inventory->files[i]->error)
            bad[n++] = inventory->files[i];
    /* In line order, as an administrator fixes them. */
    if (n)
        qsort(bad, n, sizeof(*bad), cmp_part);
    /* A bad row's message begins FILE:LINE:, the file's own does not. */
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%s%s (%s)\n", bad[i]->part ? "" : config->holders.register_path,
                bad[i]->part ? "" : ": ", bad[i]->message ? bad[i]->message : "",
                kigen_err_text(lang, bad[i]->error));
    free(bad);
    kigen_inventory_free(inventory);
    return r < 0 ? r : (int)n;
}

/*
 * SPEC §13 for --once: the same check the daemon runs after a scan, here on this thread, with
 * the daemon's cache in state_dir/revocation (read, and written when this user may).
 */
static int check_revocation(struct kigen_inventory *inventory, const struct kigen_config *config,
                            int64_t now)
{
    struct kigen_revocation_run *run = NULL;
    char *cache = NULL;
    int r;

    if (asprintf(&cache, "%s/revocation", config->state_dir) < 0)
        return -ENOMEM;
    r = kigen_revocation_collect(config, inventory, cache, now, &run);
    free(cache);
    if (r < 0 || !run)
        return r;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        kigen_revocation_run_free(run);
        return -ENOMEM;
    }
    kigen_revocation_execute(run, NULL);
    r = kigen_revocation_apply(inventory, run);
    kigen_revocation_run_free(run);
    curl_global_cleanup();
    return r;
}

/* --once: the same scan the daemon runs, on a loop that ends when it completes. */
static int run_once(const struct options *o, const struct kigen_config *config)
{
    uv_loop_t loop;
    struct kigen_inventory *inventory = NULL;
    struct kigen_scanner *scanner = NULL;
    struct kigen_prober *prober = NULL;
    struct kigen_maint_set *maint = NULL;
    const struct kigen_probe_status *probes = NULL;
    size_t n_probes = 0;
    struct kigen_view view = { 0 };
    struct once once = { .now = o->now };
    enum format format = o->format;
    int r, status = EXIT_USAGE;

    r = uv_loop_init(&loop);
    if (r < 0) {
        fprintf(stderr, "kigend: cannot start the event loop: %s\n", uv_strerror(r));
        return EXIT_USAGE;
    }
    r = kigen_inventory_new(&inventory);
    if (r == 0)
        r = kigen_scanner_new(&loop, inventory, &scanner);
    if (r == 0)
        r = kigen_scanner_start(scanner, config, once_done_cb, &once);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start the scan");
        goto out;
    }
    r = start_probes(&loop, o, config, &once, &prober, &maint);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start the probes");
        kigen_scanner_cancel(scanner);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!once.done || once.status < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, once.done ? once.status : -EIO, "The scan failed");
        goto out;
    }
    if (prober)
        probes = kigen_prober_status(prober, &n_probes);
    for (size_t i = 0; i < n_probes; i++) {
        r = kigen_probe_sync(inventory, &probes[i], NULL);
        if (r < 0) {
            kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot record the server certificates");
            goto out;
        }
    }
    r = load_register(inventory, config, o->has_now ? o->now : (int64_t)time(NULL),
                      KIGEN_LANGUAGE_EN); /* the report's errors are data, in English */
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot read the holders' register");
        goto out;
    }
    r = check_revocation(inventory, config, o->has_now ? o->now : (int64_t)time(NULL));
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot check revocation");
        goto out;
    }
    r = kigen_view_build(config, inventory, o->has_now ? o->now : (int64_t)time(NULL), NULL, &view);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot build the report");
        goto out;
    }
    kigen_view_set_probes(&view, probes, n_probes);
    if (format == FORMAT_AUTO)
        format = isatty(STDOUT_FILENO) ? FORMAT_TABLE : FORMAT_JSON;
    r = format == FORMAT_JSON
            ? kigen_report_json(stdout, &view)
            : kigen_report_table(stdout, &view, isatty(STDOUT_FILENO), kigen_language_from_env());
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot write the report");
        goto out;
    }
    status = kigen_view_exit_status(&view);
out:
    kigen_view_done(&view);
    if (prober) {
        kigen_prober_close(prober, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        kigen_prober_free(prober);
    }
    kigen_maint_set_free(maint);
    kigen_scanner_free(scanner);
    kigen_inventory_free(inventory);
    uv_loop_close(&loop);
    return status;
}

/*
 * 1,024 status clients (KIGEN_CONTROL_MAX_CLIENTS) and the scan's files need more than the
 * usual soft limit of 1,024 descriptors. Everything here waits with epoll, which has no
 * FD_SETSIZE; the unit sets LimitNOFILE= itself. Returns the soft limit the daemon was given
 * when it raised it, for exec hooks (programs that select() or loop over every possible
 * descriptor expect it), else 0.
 */
static uint64_t raise_fd_limit(void)
{
    const rlim_t want = 65536;
    struct rlimit rl;
    rlim_t given;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want || rl.rlim_cur >= rl.rlim_max)
        return 0;
    given = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    return (uint64_t)given;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct kigen_config *config = NULL;
    int status;

    /* Before anything allocates through OpenSSL: passwords must not stay in freed memory. */
    (void)kigen_secret_wipe_openssl_frees();
    o.lang = kigen_language_from_env();
    if (parse_options(argc, argv, &o) < 0)
        return EXIT_USAGE;
    if (o.check_path) {
        if (load_config(o.check_path, o.lang, &config) < 0)
            return EXIT_USAGE;
        status = check_register(config, o.lang);
        if (status != 0) {
            if (status < 0)
                kigen_log_errno(KIGEN_LOG_ERR, status, "Cannot check the holders' register");
            fprintf(stderr,
                    P_(o.lang, "%s: the holders' register '%s' has %d problem\n",
                       "%s: the holders' register '%s' has %d problems\n", (unsigned long)status),
                    o.check_path, config->holders.register_path, status);
            kigen_config_free(config);
            return EXIT_USAGE;
        }
        printf(_(o.lang, "%s: configuration is valid (%zu keystores, %zu probe targets)\n"),
               o.check_path, config->n_keystores, config->probes.n_targets);
        kigen_config_free(config);
        return 0;
    }
    if (!o.once && getenv("JOURNAL_STREAM"))
        kigen_log_setup(journal_stream_log, NULL, KIGEN_LOG_INFO);
    if (load_config(o.config_path, o.lang, &config) < 0)
        return EXIT_USAGE;
    kigen_time_use_zone(config->timezone);
    if (!o.once) {
        struct kigen_sink_limits sink_limits = { 0 };

        sink_limits.exec_nofile = raise_fd_limit();
        /*
         * Tests only: a failed mail or webhook POST is retried after KIGEN_TEST_RETRY_FIRST_MS
         * milliseconds, doubling up to KIGEN_TEST_RETRY_MAX_MS, and given up
         * KIGEN_TEST_RETRY_FOR_MS after the first attempt, instead of SPEC §12's minute, hour
         * and day. Not documented for people.
         */
        if (getenv("KIGEN_TEST_RETRY_FIRST_MS"))
            sink_limits.durable.retry_first_ms =
                strtoull(getenv("KIGEN_TEST_RETRY_FIRST_MS"), NULL, 10);
        if (getenv("KIGEN_TEST_RETRY_MAX_MS"))
            sink_limits.durable.retry_max_ms =
                strtoull(getenv("KIGEN_TEST_RETRY_MAX_MS"), NULL, 10);
        if (getenv("KIGEN_TEST_RETRY_FOR_MS"))
            sink_limits.durable.retry_for_ms =
                strtoull(getenv("KIGEN_TEST_RETRY_FOR_MS"), NULL, 10);
        /*
         * Buffers of a megabyte or more (the state file's text, list answers, the metrics of
         * a large inventory) come from mmap and go back to the system when freed. glibc
         * otherwise raises its threshold after the first such free, and later ones land in
         * the heap, where under churn a resident daemon's RSS only grows.
         */
        (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
        /* Once, before any thread: libcurl's global init is not thread-safe (the webhooks). */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            kigen_log_err("Cannot initialise libcurl");
            kigen_config_free(config);
            return 1;
        }
        status = kigend_service_run(o.config_path, config,
                                    o.has_now ? o.now - (int64_t)time(NULL) : 0, &sink_limits);
        curl_global_cleanup();
        return status;
    }
    status = run_once(&o, config);
    kigen_config_free(config);
    return status;
}
