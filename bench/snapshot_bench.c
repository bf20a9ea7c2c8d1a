/*
 * snapshot_bench: what the loop pays to hand a render to the thread pool, against the render
 * itself. Builds a view of N records shaped like bench/mkcorpus's (one file and certificate
 * each, distinct strings), then times a snapshot copied in one go (kigen_snapshot_builder with
 * no budget: what the loop pays in all) and, from the
 * snapshot, the sort, the list document and the metrics text (the thread pool's part).
 * Best of five, in milliseconds. Then the daemon's way, the copy from the inventory in
 * slices (kigen_snapshot_builder): the total and the longest slice.
 *
 * Then the size of the metrics (SPEC §10) at the defaults and with every metrics: option:
 * bytes and series per certificate (the text of N records less that of none, over N) and
 * the render time, best of five. With OUT_DIR, both texts are written there as
 * metrics-default.prom and metrics-full.prom (bench/metrics_size.sh runs promtool on them).
 * Every record has a holder and the keystore one label, as a NACCS estate with a register.
 *
 * Usage: snapshot_bench [N [OUT_DIR]]   (default 100000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inventory.h"
#include "metrics.h"
#include "report.h"
#include "slicer.h"
#include "snapshot.h"

static double now_ms(void);

/* Text bytes and sample lines (not # lines) of a render of view with options; best time. */
static int measure(const struct kigen_view *view, const struct kigen_metrics *options,
                   const char *save, size_t *ret_bytes, size_t *ret_series, double *ret_ms)
{
    struct kigen_metrics_extra extra = { .options = *options };
    double best = 1e9;
    size_t series = 0;
    char *text = NULL;
    size_t len = 0;

    for (int run = 0; run < 5; run++) {
        double t0 = now_ms();

        free(text);
        if (kigen_metrics_render(view, &extra, &text, &len) < 0)
            return -1;
        if (now_ms() - t0 < best)
            best = now_ms() - t0;
    }
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        if (*p != '#')
            series++;
    if (save) {
        FILE *f = fopen(save, "w");

        if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
            return -1;
    }
    free(text);
    *ret_bytes = len;
    *ret_series = series;
    *ret_ms = best;
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    const char *out_dir = argc > 2 ? argv[2] : NULL;
    struct kigen_label label = { "team", "bench" };
    struct kigen_keystore ks = { .name = "bench", .labels = { &label, 1 } };
    struct kigen_file **files = calloc(n, sizeof(*files));
    struct kigen_cert *certs = calloc(n, sizeof(*certs));
    struct kigen_view view = { .now = 1795000000 };
    double best[5] = { 1e9, 1e9, 1e9, 1e9, 1e9 };
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
    char path[96], subject[96], serial[40], entry[2] = "0";

    view.records = calloc(n, sizeof(*view.records));
    if (!files || !certs || !view.records)
        return 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/srv/bench/d%03zu/cert%06zu.pem", i % 100, i);
        snprintf(subject, sizeof(subject), "CN=user%06zu.bench.example,O=Bench,C=JP", i);
        snprintf(serial, sizeof(serial), "%zx1f2e3d4c5b6a", i * 7919);
        files[i] = kigen_file_new("bench", path);
        if (!files[i])
            return 1;
        certs[i].subject = strdup(subject);
        certs[i].issuer = strdup("CN=Bench CA,O=Bench,C=JP");
        certs[i].serial = strdup(serial);
        certs[i].entry = entry;
        memcpy(certs[i].sha256, &i, sizeof(i));
        certs[i].not_before = 1700000000 + (int64_t)(i * 3163 % 100000) * 3000;
        certs[i].not_after = certs[i].not_before + 365 * 86400;
        view.records[i] = (struct kigen_record){ .file = files[i],
                                                 .cert = &certs[i],
                                                 .keystore = &ks,
                                                 .state = (enum kigen_state)(i % 5),
                                                 .holder = "田中 太郎",
                                                 .renewal_opens = certs[i].not_after - 28 * 86400 };
    }
    view.n_records = n;
    /* The same certificates in an inventory: what building a view costs the loop. */
    if (kigen_inventory_new(&inv) < 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (kigen_certs_push(&files[i]->certs, &certs[i]) < 0 ||
            kigen_inventory_put(inv, files[i]) < 0)
            return 1;
    for (int run = 0; run < 5; run++) {
        struct kigen_view built;
        double t0 = now_ms();

        if (kigen_view_build(&config, inv, view.now, &unsorted, &built) < 0)
            return 1;
        if (now_ms() - t0 < best[4])
            best[4] = now_ms() - t0;
        kigen_view_done(&built);
    }
    for (int run = 0; run < 5; run++) {
        struct kigen_metrics_extra extra = { 0 };
        struct kigen_snapshot *snap;
        double t[5];
        char *text;
        size_t len;

        struct kigen_snapshot_builder *b;

        t[0] = now_ms();
        if (kigen_snapshot_builder_new(&unsorted, view.now, &b) < 0 ||
            kigen_snapshot_builder_step(b, &config, 0, inv, 0) != 1 ||
            kigen_snapshot_builder_finish(b, NULL, 0, &snap) < 0)
            return 1;
        kigen_snapshot_builder_free(b);
        t[1] = now_ms();
        kigen_view_sort(&snap->view);
        t[2] = now_ms();
        if (kigen_report_json_text(&snap->view, &text, &len) < 0)
            return 1;
        free(text);
        t[3] = now_ms();
        if (kigen_metrics_render(&snap->view, &extra, &text, &len) < 0)
            return 1;
        free(text);
        t[4] = now_ms();
        kigen_snapshot_free(snap);
        for (int k = 0; k < 4; k++)
            if (t[k + 1] - t[k] < best[k])
                best[k] = t[k + 1] - t[k];
    }
    printf("%zu records: view %.1f ms, snapshot %.1f ms (loop); sort %.1f, list %.1f, "
           "metrics %.1f ms (thread pool)\n",
           n, best[4], best[0], best[1], best[2], best[3]);

    /* The daemon's way: the same copy from the inventory, in slices of KIGEN_SLICE_NS. */
    {
        double total = 1e9, longest = 0;
        int slices = 0;

        for (int run = 0; run < 5; run++) {
            struct kigen_snapshot_builder *b;
            struct kigen_snapshot *snap;
            double sum = 0, t0;
            int r, k = 0;

            if (kigen_snapshot_builder_new(&unsorted, view.now, &b) < 0)
                return 1;
            do {
                t0 = now_ms();
                r = kigen_snapshot_builder_step(b, &config, 0, inv, KIGEN_SLICE_NS);
                t0 = now_ms() - t0;
                sum += t0;
                longest = t0 > longest ? t0 : longest;
                k++;
            } while (r == 0);
            if (r < 0 || kigen_snapshot_builder_finish(b, NULL, 0, &snap) < 0)
                return 1;
            kigen_snapshot_builder_free(b);
            kigen_snapshot_free(snap);
            if (sum < total) {
                total = sum;
                slices = k;
            }
        }
        printf("%zu records in slices: %.1f ms in %d slices (best of five), longest slice "
               "%.2f ms (of all five)\n",
               n, total, slices, longest);
    }

    {
        static const struct kigen_metrics lean = { 0 };
        static const struct kigen_metrics full = { .labels = KIGEN_METRICS_SUBJECT |
                                                             KIGEN_METRICS_ISSUER |
                                                             KIGEN_METRICS_SERIAL |
                                                             KIGEN_METRICS_SHA256,
                                                   .not_before = true,
                                                   .state_series = true };
        const struct kigen_metrics *options[2] = { &lean, &full };
        static const char *const names[2] = { "default", "full" };
        struct kigen_view empty = { .now = view.now };
        char save[4096];

        for (int k = 0; k < 2; k++) {
            size_t bytes, series, bytes0, series0;
            double ms, ms0;

            snprintf(save, sizeof(save), "%s/metrics-%s.prom", out_dir ? out_dir : ".", names[k]);
            if (measure(&view, options[k], out_dir ? save : NULL, &bytes, &series, &ms) < 0 ||
                measure(&empty, options[k], NULL, &bytes0, &series0, &ms0) < 0)
                return 1;
            printf("metrics %-7s: %zu bytes, %zu series for %zu certificates; per certificate "
                   "%.0f bytes, %.2f series; render %.1f ms\n",
                   names[k], bytes, series, n, (double)(bytes - bytes0) / (double)n,
                   (double)(series - series0) / (double)n, ms);
        }
    }
    return 0;
}
