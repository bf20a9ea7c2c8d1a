/*
 * eval_bench: what one evaluation costs the loop (daemon/service.c evaluate()) for N
 * certificates shaped like bench/mkcorpus's (one file and certificate each, distinct
 * fingerprints; one in a thousand in its renewal window, the rest fine). Times the unsorted view
 * and kigen_engine_evaluate(), first on an empty engine (the daemon's first evaluation: every
 * certificate is new) and then again at the same time (a rescan of an unchanged estate: the
 * usual case). Best of five, in milliseconds. Then the daemon's way (src/evaluator.c): the
 * same evaluation as a pass, its groups in slices of KIGEN_SLICE_NS, each part timed alone,
 * the longest of five passes: what one loop iteration pays at most.
 *
 * Usage: eval_bench [N [RUNS]]   (default 100000 certificates, 6 runs; more runs for a
 * profiler)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "inventory.h"
#include "report.h"
#include "slicer.h"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int runs = argc > 2 ? atoi(argv[2]) : 6;
    struct kigen_keystore ks = { .name = "bench" };
    struct kigen_rule rule = { .issuer = "*NACCS Client CA*",
                               .set = { .renew_before = 28 * 86400, .critical_before = -1 } };
    struct kigen_config config = { .keystores = &ks,
                                   .n_keystores = 1,
                                   .rules = &rule,
                                   .n_rules = 1,
                                   .policy = { .renew_before = 28 * 86400,
                                               .critical_before = 7 * 86400 } };
    static const struct kigen_view_filter unsorted = { .state = -1,
                                                       .within = -1,
                                                       .is_unsorted = true };
    struct kigen_inventory *inv = NULL;
    struct kigen_engine engine;
    double best_view = 1e9, first = 0, best_again = 1e9;
    int64_t now = 1795000000;
    char path[96], subject[96], serial[40];

    config.alerts.reminder_every = 7 * 86400;
    if (kigen_inventory_new(&inv) < 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        struct kigen_file *f;
        struct kigen_cert cert = { 0 }, *c = &cert; /* kigen_certs_push takes its contents */

        snprintf(path, sizeof(path), "/srv/bench/d%03zu/cert%06zu.pem", i % 100, i);
        snprintf(subject, sizeof(subject), "CN=user%06zu.bench.example,O=Bench,C=JP", i);
        snprintf(serial, sizeof(serial), "%zx1f2e3d4c5b6a", i * 7919);
        f = kigen_file_new("bench", path);
        if (!f)
            return 1;
        if (kigen_cert_set_strings(c, subject, "CN=Bench CA,O=Bench,C=JP", serial, "0", "") < 0)
            return 1;
        for (size_t b = 0; b < KIGEN_SHA256_LEN; b++)
            c->sha256[b] = (uint8_t)((i * 2654435761u) >> (b % 4 * 8)) ^ (uint8_t)(b * 31);
        memcpy(c->sha256 + KIGEN_SHA256_LEN - sizeof(i), &i, sizeof(i));
        /* Most are fine; one in a thousand is in its renewal window and alerted once. */
        c->not_before = now - 300 * 86400;
        c->not_after =
            now + (i % 1000 ? 60 * 86400 + (int64_t)(i * 3163 % 100000) * 300 : 20 * 86400);
        if (kigen_certs_push(&f->certs, c) < 0 || kigen_inventory_put(inv, f) < 0)
            return 1;
    }
    kigen_engine_init(&engine);
    for (int run = 0; run < runs; run++) {
        struct kigen_view view;
        double t0 = now_ms(), t1, t2;

        if (kigen_view_build(&config, inv, now, &unsorted, &view) < 0)
            return 1;
        t1 = now_ms();
        if (kigen_engine_evaluate(&engine, &config, inv, &view, now) < 0)
            return 1;
        t2 = now_ms();
        while (engine.n_outbox > 0)
            kigen_engine_delivered(&engine, engine.outbox[0].id);
        kigen_view_done(&view);
        if (t1 - t0 < best_view)
            best_view = t1 - t0;
        if (run == 0)
            first = t2 - t1;
        else if (t2 - t1 < best_again)
            best_again = t2 - t1;
    }
    printf("%zu certificates: view %.1f ms; evaluation %.1f ms the first time, %.1f ms again "
           "(unchanged)\n",
           n, best_view, first, best_again);
    {
        double worst[4] = { 0 }; /* view, sort, a slice of groups, the end */
        int slices = 0;

        for (int run = 0; run < 5; run++) {
            struct kigen_engine_pass pass;
            struct kigen_view view;
            double t[3];
            int r;

            t[0] = now_ms();
            if (kigen_view_build(&config, inv, now, &unsorted, &view) < 0)
                return 1;
            t[1] = now_ms();
            if (kigen_engine_pass_begin(&engine, &view, now, &pass) < 0)
                return 1;
            t[2] = now_ms();
            worst[0] = t[1] - t[0] > worst[0] ? t[1] - t[0] : worst[0];
            worst[1] = t[2] - t[1] > worst[1] ? t[2] - t[1] : worst[1];
            slices = 0;
            do {
                t[0] = now_ms();
                r = kigen_engine_pass_step(&engine, &config, inv, &pass, KIGEN_SLICE_NS);
                t[1] = now_ms();
                worst[2] = t[1] - t[0] > worst[2] ? t[1] - t[0] : worst[2];
                slices++;
            } while (r == 0);
            if (r < 0 || kigen_engine_pass_end(&engine, &config, inv, &pass) < 0)
                return 1;
            t[2] = now_ms();
            worst[3] = t[2] - t[1] > worst[3] ? t[2] - t[1] : worst[3];
            kigen_view_done(&view);
        }
        printf("in slices (the longest of five passes): view %.1f ms, sort %.1f ms, %d slices "
               "of groups of at most %.1f ms, end %.1f ms\n",
               worst[0], worst[1], slices, worst[2], worst[3]);
    }
    kigen_engine_done(&engine);
    kigen_inventory_free(inv);
    return 0;
}
