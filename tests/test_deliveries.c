/*
 * Durable deliveries: real files in a scratch directory, a real loop, and attempts that
 * succeed or fail as each test says. A queue is closed and a new one made on the same
 * directory to stand for a restart.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "alert.h"
#include "deliveries.h"
#include "log.h"
#include "testutil.h"

struct harness {
    uv_loop_t loop;
    char dir[256];
    struct kigen_deliveries *q;
    struct kigen_deliveries_limits limits;
    bool is_failing; /* attempts fail */
    unsigned attempts;
    unsigned added;
    unsigned closes;
    bool is_closed;
    struct kigen_delivery *running;
    uv_timer_t report; /* reports the running attempt from a later callback */
    char last_key[80];
    int64_t last_created;
};

static void report_cb(uv_timer_t *timer)
{
    struct harness *h = timer->data;
    struct kigen_delivery *d = h->running;

    h->running = NULL;
    kigen_deliveries_attempted(d, !h->is_failing, h->is_failing ? "550 no such user" : NULL);
}

static int attempt(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                   const char *key, int64_t created_ms)
{
    struct harness *h = data;

    h->attempts++;
    h->running = d;
    snprintf(h->last_key, sizeof(h->last_key), "%s", key);
    h->last_created = created_ms;
    uv_timer_start(&h->report, report_cb, 0, 0);
    return 0;
}

static void abort_attempt(void *data, struct kigen_delivery *d)
{
}

static const struct kigen_deliveries_ops ops = { .max_running = 1,
                                                 .attempt = attempt,
                                                 .abort = abort_attempt };

static void added_cb(void *data, int status)
{
    struct harness *h = data;

    assert_int_equal(status, 0);
    h->added++;
}

static void closed_cb(void *data)
{
    struct harness *h = data;

    h->is_closed = true;
}

static void run_until(struct harness *h, bool (*cond)(struct harness *), int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;

    while (!cond(h) && uv_hrtime() < end)
        uv_run(&h->loop, UV_RUN_ONCE);
    assert_true(cond(h));
}

static void open_queue(struct harness *h)
{
    h->is_closed = false;
    assert_int_equal(kigen_deliveries_new(&h->loop, h->dir, "mail", &ops, h, &h->limits, &h->q), 0);
}

static bool is_closed(struct harness *h)
{
    return h->is_closed && !h->running;
}

static void close_queue(struct harness *h)
{
    kigen_deliveries_close(h->q, closed_cb, h);
    run_until(h, is_closed, 5000);
    kigen_deliveries_free(h->q);
    h->q = NULL;
}

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));

    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->report);
    h->report.data = h;
    snprintf(h->dir, sizeof(h->dir), "/tmp/kigen-deliveries-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    strcat(h->dir, "/deliveries"); /* made by the queue */
    h->limits = (struct kigen_deliveries_limits){
        .retry_first_ms = 20, .retry_max_ms = 40, .retry_for_ms = 60000, .max_pending = 100
    };
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    char cmd[600];

    if (h->q)
        close_queue(h);
    uv_close((uv_handle_t *)&h->report, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    *strrchr(h->dir, '/') = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
    assert_int_equal(system(cmd), 0);
    free(h);
    return 0;
}

static struct kigen_alert *alert_of(const char *message)
{
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_EXPIRED, message);

    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", "ab12cd34ef56ab12cd34"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", "CN=田中"), 0);
    return a;
}

/* Files in the directory whose names end with suffix. */
static unsigned files(const struct harness *h, const char *suffix)
{
    DIR *d = opendir(h->dir);
    struct dirent *e;
    unsigned n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        if (strlen(e->d_name) > strlen(suffix) &&
            strcmp(e->d_name + strlen(e->d_name) - strlen(suffix), suffix) == 0)
            n++;
    closedir(d);
    return n;
}

static char *file_text(const struct harness *h, const char *key)
{
    char path[512];
    FILE *f;
    static char buf[8192];
    size_t n;

    snprintf(path, sizeof(path), "%s/mail-%s.json", h->dir, key);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool one_added(struct harness *h)
{
    return h->added >= 1;
}

static bool delivered(struct harness *h)
{
    return h->q && kigen_deliveries_pending(h->q) == 0 && !h->running && h->attempts > 0;
}

static bool tried_twice(struct harness *h)
{
    return h->attempts >= 2 && !h->running;
}

static void test_added_alert_is_written_then_delivered_and_kept_as_done(void **state)
{
    struct harness *h = *state;
    struct kigen_alert *a = alert_of("Expired.");
    char key[33];

    open_queue(h);
    kigen_deliveries_key(a, key);
    assert_int_equal(kigen_deliveries_add(h->q, NULL, a, 60000, added_cb, h), 0);
    assert_int_equal(h->added, 0); /* from a later callback */
    assert_int_equal(kigen_deliveries_pending(h->q), 1);
    run_until(h, one_added, 5000);
    run_until(h, delivered, 5000);
    assert_int_equal(h->attempts, 1);
    assert_string_equal(h->last_key, key);
    assert_true(h->last_created > 1700000000000);
    /* The same alert again (an engine outbox sent after a crash): not twice. */
    assert_int_equal(kigen_deliveries_add(h->q, NULL, a, 60000, added_cb, h), -EEXIST);
    close_queue(h);
    assert_non_null(strstr(file_text(h, key), "\"done\":\"delivered\""));
    assert_null(strstr(file_text(h, key), "Expired.")); /* the done mark holds no alert */
    /* After a restart too. */
    open_queue(h);
    assert_true(kigen_deliveries_knows(h->q, key));
    assert_int_equal(kigen_deliveries_add(h->q, NULL, a, 60000, added_cb, h), -EEXIST);
    assert_int_equal(kigen_deliveries_pending(h->q), 0);
    kigen_alert_free(a);
}

static void test_pending_delivery_survives_a_restart_and_is_retried(void **state)
{
    struct harness *h = *state;
    struct kigen_alert *a = alert_of("Expired, 田中.");
    char key[33];
    int64_t created;

    h->is_failing = true;
    open_queue(h);
    kigen_deliveries_key(a, key);
    assert_int_equal(kigen_deliveries_add(h->q, NULL, a, 60000, added_cb, h), 0);
    run_until(h, tried_twice, 5000);
    created = h->last_created;
    close_queue(h);
    assert_non_null(strstr(file_text(h, key), "\"message\":\"Expired, 田中.\""));
    assert_int_equal(files(h, ".json"), 1);
    /* The restart: loaded, retried with the same key and creation time, then delivered. */
    h->is_failing = false;
    h->attempts = 0;
    open_queue(h);
    assert_int_equal(kigen_deliveries_pending(h->q), 1);
    run_until(h, delivered, 5000);
    assert_int_equal(h->attempts, 1);
    assert_string_equal(h->last_key, key);
    assert_int_equal(h->last_created, created);
    assert_int_equal(kigen_deliveries_failed(h->q), 0);
    kigen_alert_free(a);
}

static bool given_up(struct harness *h)
{
    return kigen_deliveries_failed(h->q) == 1;
}

static void test_delivery_is_given_up_after_retry_for(void **state)
{
    struct harness *h = *state;
    struct kigen_alert *a = alert_of("Expired.");

    h->is_failing = true;
    h->limits.retry_for_ms = 150;
    open_queue(h);
    assert_int_equal(kigen_deliveries_add(h->q, NULL, a, 60000, added_cb, h), 0);
    run_until(h, given_up, 5000);
    assert_int_equal(kigen_deliveries_pending(h->q), 0);
    /* 20, 40, 40, ... ms apart within 150 ms, then one last try at the end. */
    assert_true(h->attempts >= 4 && h->attempts <= 7);
    kigen_alert_free(a);
}

static void test_damaged_files_are_set_aside(void **state)
{
    struct harness *h = *state;
    char path[512];
    FILE *f;

    assert_int_equal(mkdir(h->dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/mail-truncated.json", h->dir);
    f = fopen(path, "w");
    fputs("{\"version\":1,\"key\":\"truncated\",\"alert\":{\"event\":\"cert.exp", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/mail-wrong.json", h->dir);
    f = fopen(path, "w");
    fputs("{\"version\":1,\"key\":\"wrong\",\"alert\":{\"event\":\"no.such\",\"priority\":3,"
          "\"message\":\"x\",\"fields\":[]}}",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/webhook:x-other.json", h->dir); /* another sink's */
    f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    open_queue(h);
    assert_int_equal(kigen_deliveries_pending(h->q), 0);
    assert_int_equal(files(h, ".json.bad"), 2);
    assert_int_equal(files(h, ".json"), 1); /* the other sink's is left alone */
}

static bool three_added(struct harness *h)
{
    return h->added >= 3;
}

static void test_full_queue_gives_up_the_oldest(void **state)
{
    struct harness *h = *state;
    struct kigen_alert *a[3] = { alert_of("one"), alert_of("two"), alert_of("three") };

    h->is_failing = true;
    h->limits.retry_first_ms = 60000; /* nothing is tried again during the test */
    h->limits.retry_max_ms = 60000;
    h->limits.max_pending = 2;
    open_queue(h);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kigen_deliveries_add(h->q, NULL, a[i], 60000, added_cb, h), 0);
        run_until(h, i == 2 ? three_added : one_added, 5000);
        while (h->running)
            uv_run(&h->loop, UV_RUN_ONCE);
    }
    assert_int_equal(kigen_deliveries_pending(h->q), 2);
    assert_int_equal(kigen_deliveries_failed(h->q), 1);
    for (int i = 0; i < 3; i++)
        kigen_alert_free(a[i]);
}

/* Attempts that stay under way until the queue closes; abort() reports from within. */
static int hold_attempt(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                        const char *key, int64_t created_ms)
{
    struct harness *h = data;

    h->attempts++;
    return 0;
}

static void hold_abort(void *data, struct kigen_delivery *d)
{
    kigen_deliveries_attempted(d, false, "stopped");
}

static const struct kigen_deliveries_ops hold_ops = { .max_running = 1,
                                                      .attempt = hold_attempt,
                                                      .abort = hold_abort };

static void count_closed_cb(void *data)
{
    struct harness *h = data;

    h->closes++;
}

static bool four_added(struct harness *h)
{
    return h->added >= 4;
}

static bool four_closed(struct harness *h)
{
    return h->closes >= 4;
}

/* The longest file name in the directory. */
static size_t longest_name(const struct harness *h)
{
    DIR *d = opendir(h->dir);
    struct dirent *e;
    size_t max = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        if (strlen(e->d_name) > max)
            max = strlen(e->d_name);
    closedir(d);
    return max;
}

static void test_sinks_sharing_a_directory_keep_their_own_files(void **state)
{
    struct harness *h = *state;
    char long_name[400] = "webhook:";
    const char *names[4] = { "webhook:team", "webhook:team-chat", "webhook:a/b c%", long_name };
    struct kigen_deliveries *q[4];
    struct kigen_alert *a[4] = { alert_of("zero"), alert_of("one"), alert_of("two"),
                                 alert_of("three") };
    char path[512];
    FILE *f;

    memset(long_name + 8, 'x', 300);
    assert_int_equal(mkdir(h->dir, 0700), 0);
    /* A file with team's prefix that names another sink: left alone, neither loaded nor bad. */
    snprintf(path, sizeof(path), "%s/webhook:team-other.json", h->dir);
    f = fopen(path, "w");
    fputs("{\"version\":1,\"sink\":\"webhook:elsewhere\",\"key\":\"other\",\"created_ms\":1,"
          "\"first_ms\":0,\"attempts\":0,\"next_ms\":1,\"keep_ms\":1,\"alert\":{\"event\":"
          "\"cert.expired\",\"priority\":3,\"message\":\"x\",\"fields\":[]}}",
          f);
    fclose(f);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(
            kigen_deliveries_new(&h->loop, h->dir, names[i], &hold_ops, h, &h->limits, &q[i]), 0);
        assert_int_equal(kigen_deliveries_pending(q[i]), 0);
        assert_int_equal(kigen_deliveries_add(q[i], NULL, a[i], 60000, added_cb, h), 0);
    }
    run_until(h, four_added, 5000);
    assert_int_equal(files(h, ".json"), 5);
    assert_true(longest_name(h) < 200);
    for (int i = 0; i < 4; i++)
        kigen_deliveries_close(q[i], count_closed_cb, h);
    run_until(h, four_closed, 5000);
    /* The restart: each queue takes back its own file and no other. */
    for (int i = 0; i < 4; i++) {
        kigen_deliveries_free(q[i]);
        assert_int_equal(
            kigen_deliveries_new(&h->loop, h->dir, names[i], &hold_ops, h, &h->limits, &q[i]), 0);
        assert_int_equal(kigen_deliveries_pending(q[i]), 1);
    }
    assert_int_equal(files(h, ".bad"), 0);
    assert_int_equal(files(h, ".json"), 5);
    h->closes = 0;
    for (int i = 0; i < 4; i++)
        kigen_deliveries_close(q[i], count_closed_cb, h);
    run_until(h, four_closed, 5000);
    for (int i = 0; i < 4; i++) {
        kigen_deliveries_free(q[i]);
        kigen_alert_free(a[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_added_alert_is_written_then_delivered_and_kept_as_done,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_delivery_survives_a_restart_and_is_retried,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_is_given_up_after_retry_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_files_are_set_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_gives_up_the_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sharing_a_directory_keep_their_own_files, setup,
                                        teardown),
    };

    kigen_log_setup(NULL, NULL, KIGEN_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
