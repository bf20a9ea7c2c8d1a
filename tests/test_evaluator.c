/*
 * The evaluation in slices (src/evaluator.c) on a real libuv loop: it says what one
 * kigen_engine_evaluate() says, lets the loop turn in between, begins again when the
 * inventory or the configuration changes under it (and then still says cert.gone once), and
 * always ends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evaluator.h"
#include "testutil.h"
#include "timeutil.h"

#define N_CERTS 300
#define NOW     1800000000

struct fixture {
    struct kigen_keystore ks;
    struct kigen_config config;
    uint64_t config_serial;
    struct kigen_inventory *inventory;
    struct kigen_engine engine;
    uv_loop_t loop;
    struct kigen_evaluator *evaluator;
    int calls; /* of done */
    int last_result;
    size_t last_records;
    bool is_churning; /* churn_cb moves inventory->changes at every loop iteration */
    uv_prepare_t churn;
};

/* Certificate i: its fingerprint sorts as i does; one in ten is in its renewal window. */
static struct kigen_file *make_file(size_t i)
{
    struct kigen_file *f;
    struct kigen_cert cert = { 0 }, *c = &cert; /* kigen_certs_push takes its contents */
    char path[64], subject[64];

    snprintf(path, sizeof(path), "/srv/naccs/user%03zu.p12", i);
    snprintf(subject, sizeof(subject), "CN=user%03zu,O=Example,C=JP", i);
    f = kigen_file_new("naccs", path);
    assert_non_null(f);
    assert_int_equal(
        kigen_cert_set_strings(c, subject, "CN=NACCS Client CA,O=NACCS,C=JP", "01", "1", ""), 0);
    c->sha256[0] = (uint8_t)(i >> 8);
    c->sha256[1] = (uint8_t)i;
    c->sha256[2] = 0xa5;
    c->not_before = NOW - 400 * 86400;
    c->not_after = NOW + (i % 10 ? 200 : 10) * 86400;
    assert_int_equal(kigen_certs_push(&f->certs, c), 0);
    return f;
}

static void source_cb(void *data, struct kigen_slicer_source *src)
{
    struct fixture *fx = data;

    memset(src, 0, sizeof(*src));
    src->config = &fx->config;
    src->config_serial = fx->config_serial;
    src->inventory = fx->inventory;
}

static int64_t clock_cb(void *data)
{
    return NOW;
}

static void done_cb(void *data, struct kigen_view *view, int64_t now, int result)
{
    struct fixture *fx = data;

    assert_int_equal(now, NOW);
    fx->calls++;
    fx->last_result = result;
    fx->last_records = view ? view->n_records : 0;
}

static void churn_cb(uv_prepare_t *prepare)
{
    struct fixture *fx = prepare->data;

    if (fx->is_churning)
        fx->inventory->changes++;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || kigen_inventory_new(&fx->inventory) < 0)
        return -1;
    fx->ks.name = "naccs";
    fx->ks.path = "/srv/naccs";
    fx->config.keystores = &fx->ks;
    fx->config.n_keystores = 1;
    fx->config.policy =
        (struct kigen_policy){ .renew_before = 28 * 86400, .critical_before = 7 * 86400 };
    fx->config.alerts.reminder_every = 86400;
    kigen_time_use_zone("UTC");
    for (size_t i = 0; i < N_CERTS; i++)
        assert_int_equal(kigen_inventory_put(fx->inventory, make_file(i)), 0);
    kigen_engine_init(&fx->engine);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_prepare_init(&fx->loop, &fx->churn), 0);
    fx->churn.data = fx;
    assert_int_equal(uv_prepare_start(&fx->churn, churn_cb), 0);
    assert_int_equal(kigen_evaluator_new(&fx->loop, &fx->engine, source_cb, clock_cb, done_cb, fx,
                                         &fx->evaluator),
                     0);
    kigen_evaluator_set_budget(fx->evaluator, 1, 0); /* 64 certificates a slice */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    kigen_evaluator_close(fx->evaluator);
    uv_close((uv_handle_t *)&fx->churn, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    kigen_engine_done(&fx->engine);
    kigen_inventory_free(fx->inventory);
    free(fx);
    return 0;
}

/* Turns the loop until done was called calls times; returns how many iterations that took. */
static int run_until(struct fixture *fx, int calls)
{
    int iterations = 0;

    while (fx->calls < calls) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        iterations++;
        assert_true(iterations < 1000);
    }
    return iterations;
}

static void deliver_all(struct kigen_engine *engine)
{
    while (engine->n_outbox)
        kigen_engine_delivered(engine, engine->outbox[0].id);
}

/* What kigen_engine_evaluate() says of the fixture's inventory now, on an engine of its own. */
static void evaluate_in_one_go(struct fixture *fx, struct kigen_engine *engine)
{
    struct kigen_view view;

    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, NOW, NULL, &view), 0);
    assert_true(kigen_engine_evaluate(engine, &fx->config, fx->inventory, &view, NOW) >= 0);
    kigen_view_done(&view);
}

static void test_slices_say_what_one_evaluation_says(void **state)
{
    struct fixture *fx = *state;
    struct kigen_engine once;
    int iterations;

    kigen_engine_init(&once);
    evaluate_in_one_go(fx, &once);
    assert_int_equal(once.n_outbox, N_CERTS / 10); /* cert.renewal_open */

    kigen_evaluator_start(fx->evaluator);
    assert_int_equal(fx->calls, 0); /* nothing within start: the loop polls first */
    assert_true(kigen_evaluator_is_busy(fx->evaluator));
    iterations = run_until(fx, 1);
    /* A poll, the view, the sort, then 300 certificates at 64 a slice. */
    assert_int_equal(iterations, 8);
    assert_int_equal(fx->last_result, N_CERTS / 10);
    assert_int_equal(fx->last_records, N_CERTS);
    assert_false(kigen_evaluator_is_busy(fx->evaluator));
    assert_int_equal(kigen_evaluator_restarts(fx->evaluator), 0);
    assert_int_equal(fx->engine.n_outbox, once.n_outbox);
    assert_int_equal(fx->engine.n_unique, N_CERTS);
    for (size_t i = 0; i < once.n_outbox; i++) {
        const struct kigen_alert *a = once.outbox[i].alert, *b = fx->engine.outbox[i].alert;

        assert_same_alert_fields(a, b);
        assert_string_equal(a->message, b->message);
    }
    kigen_engine_done(&once);

    /* Nothing changed: a second evaluation says nothing. */
    deliver_all(&fx->engine);
    kigen_evaluator_start(fx->evaluator);
    run_until(fx, 2);
    assert_int_equal(fx->last_result, 0);
    assert_int_equal(fx->engine.n_outbox, 0);
}

/*
 * A certificate the pass had already seen leaves the inventory in the middle of it: the pass
 * begins again, and cert.gone is said of it, once; nothing else is said again.
 */
static void test_a_change_in_the_middle_begins_again_and_loses_no_gone(void **state)
{
    struct fixture *fx = *state;
    struct kigen_file *first;

    evaluate_in_one_go(fx, &fx->engine);
    deliver_all(&fx->engine);
    kigen_evaluator_start(fx->evaluator);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* a poll */
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the view */
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the sort */
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the first 64 certificates, user000 among them */
    assert_int_equal(fx->calls, 0);
    first = kigen_inventory_find(fx->inventory, "naccs", "/srv/naccs/user000.p12");
    assert_non_null(first);
    kigen_inventory_remove(fx->inventory, first);
    run_until(fx, 1);
    assert_int_equal(kigen_evaluator_restarts(fx->evaluator), 1);
    assert_int_equal(fx->last_result, 1);
    assert_int_equal(fx->last_records, N_CERTS - 1);
    assert_int_equal(fx->engine.n_outbox, 1);
    assert_int_equal(fx->engine.outbox[0].alert->event, KIGEN_EVENT_CERT_GONE);
    assert_non_null(strstr(fx->engine.outbox[0].alert->message, "user000"));
}

/* A reload in the middle: the configuration's serial moves, and the pass begins again. */
static void test_a_reload_in_the_middle_begins_again(void **state)
{
    struct fixture *fx = *state;

    kigen_evaluator_start(fx->evaluator);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* a poll */
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the view */
    fx->config_serial++;
    run_until(fx, 1);
    assert_int_equal(kigen_evaluator_restarts(fx->evaluator), 1);
    assert_int_equal(fx->last_result, N_CERTS / 10);
    assert_int_equal(fx->engine.n_outbox, N_CERTS / 10);
}

/* An inventory that changes at every iteration is still evaluated, after a few restarts. */
static void test_an_estate_that_never_keeps_still_is_still_evaluated(void **state)
{
    struct fixture *fx = *state;

    fx->is_churning = true;
    kigen_evaluator_start(fx->evaluator);
    run_until(fx, 1);
    assert_int_equal(kigen_evaluator_restarts(fx->evaluator), KIGEN_EVALUATOR_RESTARTS);
    assert_int_equal(fx->last_result, N_CERTS / 10);
    assert_int_equal(fx->engine.n_outbox, N_CERTS / 10);
}

/*
 * Asked for again while one runs: one more follows it, not one per request; but a request
 * made before the pass built its view is answered by that pass.
 */
static void test_a_request_while_busy_is_one_more_pass(void **state)
{
    struct fixture *fx = *state;

    kigen_evaluator_start(fx->evaluator);
    kigen_evaluator_start(fx->evaluator); /* before the view */
    run_until(fx, 1);
    assert_false(kigen_evaluator_is_busy(fx->evaluator));
    deliver_all(&fx->engine);
    fx->calls = 0;

    kigen_evaluator_start(fx->evaluator);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* a poll */
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the view */
    kigen_evaluator_start(fx->evaluator);
    kigen_evaluator_start(fx->evaluator);
    run_until(fx, 1);
    assert_int_equal(fx->last_result, 0); /* said already */
    assert_true(kigen_evaluator_is_busy(fx->evaluator));
    run_until(fx, 2);
    assert_int_equal(fx->last_result, 0);
    assert_false(kigen_evaluator_is_busy(fx->evaluator));
    for (int i = 0; i < 20; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->calls, 2);
}

/* Below the one-go size an evaluation is done within start; closed busy, done is not called. */
static void test_small_inventories_in_one_go_and_close_while_busy(void **state)
{
    struct fixture *fx = *state;

    kigen_evaluator_set_budget(fx->evaluator, 0, N_CERTS + 1);
    kigen_evaluator_start(fx->evaluator);
    assert_int_equal(fx->calls, 1);
    assert_int_equal(fx->last_result, N_CERTS / 10);
    assert_false(kigen_evaluator_is_busy(fx->evaluator));

    kigen_evaluator_set_budget(fx->evaluator, 0, 0);
    kigen_evaluator_start(fx->evaluator);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_true(kigen_evaluator_is_busy(fx->evaluator));
    kigen_evaluator_close(fx->evaluator);
    fx->evaluator = NULL;
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slices_say_what_one_evaluation_says, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_change_in_the_middle_begins_again_and_loses_no_gone,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_reload_in_the_middle_begins_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_estate_that_never_keeps_still_is_still_evaluated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_request_while_busy_is_one_more_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_small_inventories_in_one_go_and_close_while_busy,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
