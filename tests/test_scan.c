#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "err.h"
#include "inventory.h"
#include "scan.h"
#include "testutil.h"

struct fixture {
    char dir[256];
    char *include[1];
    struct kigen_keystore ks;
    struct kigen_config config;
    struct kigen_inventory *inventory;
    struct kigen_scanner *scanner;
    uv_loop_t loop;
};

static void copy_file(const char *from, const char *to)
{
    size_t len;
    uint8_t *buf = fixture_load(from, &len);
    FILE *f = fopen(to, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

static char *join(const struct fixture *fx, const char *name)
{
    static char buf[512];

    snprintf(buf, sizeof(buf), "%s/%s", fx->dir, name);
    return buf;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kigen-scan-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    fx->include[0] = "*";
    fx->ks.name = "ks";
    fx->ks.path = fx->dir;
    fx->ks.recursive = true;
    fx->ks.include.v = fx->include;
    fx->ks.include.n = 1;
    fx->ks.password_sidecar = true;
    fx->ks.max_file_size = 1 << 20;
    fx->config.keystores = &fx->ks;
    fx->config.n_keystores = 1;
    if (uv_loop_init(&fx->loop) < 0 || kigen_inventory_new(&fx->inventory) < 0 ||
        kigen_scanner_new(&fx->loop, fx->inventory, &fx->scanner) < 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[300];

    kigen_scanner_free(fx->scanner);
    kigen_inventory_free(fx->inventory);
    uv_loop_close(&fx->loop);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static void done_cb(struct kigen_scanner *scanner, int status, void *data)
{
    *(int *)data = status;
}

static void scan(struct fixture *fx)
{
    int status = 1;

    assert_int_equal(kigen_scanner_start(fx->scanner, &fx->config, done_cb, &status), 0);
    assert_true(kigen_scanner_is_busy(fx->scanner));
    assert_int_equal(kigen_scanner_start(fx->scanner, &fx->config, done_cb, &status), -EBUSY);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(status, 0);
    assert_false(kigen_scanner_is_busy(fx->scanner));
}

static void test_unchanged_files_are_not_read_again(void **state)
{
    struct fixture *fx = *state;
    struct kigen_file *f;
    struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000, 0 } };

    copy_file("certs/bundle.pem", join(fx, "a.pem"));
    copy_file("certs/single.der", join(fx, "b.der"));
    scan(fx);
    assert_int_equal(fx->inventory->files_read, 2);
    assert_int_equal(fx->inventory->n_certs, 4);
    scan(fx);
    assert_int_equal(fx->inventory->files_read, 2);
    assert_int_equal(fx->inventory->files_unchanged, 2);
    /* A new mtime is a change: that file alone is read. */
    assert_int_equal(utimensat(AT_FDCWD, join(fx, "b.der"), ts, 0), 0);
    scan(fx);
    assert_int_equal(fx->inventory->files_read, 3);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "b.der"));
    assert_non_null(f);
    assert_int_equal(f->format, KIGEN_FORMAT_DER);
    assert_int_equal(fx->inventory->scans, 3);
}

static void test_removed_files_leave_the_inventory(void **state)
{
    struct fixture *fx = *state;

    copy_file("certs/single.pem", join(fx, "a.pem"));
    copy_file("certs/chain.p7b", join(fx, "b.p7b"));
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 2);
    assert_int_equal(unlink(join(fx, "a.pem")), 0);
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 1);
    assert_int_equal(fx->inventory->n_certs, 2);
    assert_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));
}

static void test_sidecar_password_opens_the_file_and_is_not_a_record(void **state)
{
    struct fixture *fx = *state;
    struct kigen_file *f;

    copy_file("certs/sidecar.p12", join(fx, "user.p12"));
    copy_file("certs/sidecar.p12.pass", join(fx, "user.p12.pass"));
    copy_file("certs/modern.p12", join(fx, "locked.p12"));
    /* A sidecar may be a link, as the file may: inside the keystore, not out of it. */
    copy_file("certs/sidecar.p12", join(fx, "linked.p12"));
    assert_int_equal(mkdir(join(fx, "secrets"), 0700), 0);
    copy_file("certs/sidecar.p12.pass", join(fx, "secrets/linked.pass"));
    assert_int_equal(symlink("secrets/linked.pass", join(fx, "linked.p12.pass")), 0);
    copy_file("certs/sidecar.p12", join(fx, "outlinked.p12"));
    assert_int_equal(
        symlink(fixture_path("certs/sidecar.p12.pass"), join(fx, "outlinked.p12.pass")), 0);
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "user.p12"));
    assert_non_null(f);
    assert_int_equal(f->error, 0);
    assert_int_equal(f->certs.n, 2);
    assert_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "user.p12.pass")));
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "locked.p12"));
    assert_non_null(f);
    assert_int_equal(f->error, KIGEN_E_NEEDS_PASSWORD);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "linked.p12"));
    assert_non_null(f);
    assert_int_equal(f->error, 0);
    assert_int_equal(f->certs.n, 2);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "outlinked.p12"));
    assert_non_null(f);
    assert_int_equal(f->error, KIGEN_E_NEEDS_PASSWORD);
    assert_int_equal(fx->inventory->n_errors, 2);
}

static void test_links_out_of_the_keystore_devices_and_fifos_are_skipped(void **state)
{
    struct fixture *fx = *state;
    copy_file("certs/single.pem", join(fx, "a.pem"));
    assert_int_equal(symlink(fixture_path("certs/ok.pem"), join(fx, "outside.pem")), 0);
    assert_int_equal(symlink("/dev/zero", join(fx, "zero.pem")), 0);
    assert_int_equal(mkfifo(join(fx, "fifo.pem"), 0600), 0);
    assert_int_equal(symlink("a.pem", join(fx, "inside.pem")), 0);
    assert_int_equal(symlink(".", join(fx, "loop")), 0);
    assert_int_equal(symlink("missing", join(fx, "dangling.pem")), 0);
    scan(fx);
    /* a.pem once: the link inside the keystore names the same file, the loop adds nothing. */
    assert_int_equal(fx->inventory->n_files, 1);
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));

    fx->ks.follow_symlinks = true;
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 2);
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "outside.pem")));
}

static void test_size_limit_is_inclusive(void **state)
{
    struct fixture *fx = *state;
    struct kigen_file *f;
    struct stat st;

    copy_file("certs/single.pem", join(fx, "a.pem"));
    assert_int_equal(stat(join(fx, "a.pem"), &st), 0);
    fx->ks.max_file_size = (uint64_t)st.st_size;
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem"));
    assert_non_null(f);
    assert_int_equal(f->error, 0);
    fx->ks.max_file_size = (uint64_t)st.st_size - 1;
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem"));
    assert_non_null(f);
    assert_int_equal(f->error, KIGEN_E_TOO_LARGE);
    assert_int_equal(f->certs.n, 0);
}

static void test_include_and_exclude_globs_filter_names(void **state)
{
    struct fixture *fx = *state;
    char *exclude[] = { "skip-*" };

    copy_file("certs/single.pem", join(fx, "a.pem"));
    copy_file("certs/single.pem", join(fx, "skip-me.pem"));
    copy_file("certs/single.der", join(fx, "b.der"));
    fx->include[0] = "*.pem";
    fx->ks.exclude.v = exclude;
    fx->ks.exclude.n = 1;
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 1);
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));
}

static void test_missing_keystore_is_one_error_and_others_still_read(void **state)
{
    struct fixture *fx = *state;
    struct kigen_keystore two[2];
    struct kigen_file *f;

    copy_file("certs/single.pem", join(fx, "a.pem"));
    two[0] = fx->ks;
    two[0].name = "gone";
    two[0].path = "/nonexistent/kigen";
    two[1] = fx->ks;
    fx->config.keystores = two;
    fx->config.n_keystores = 2;
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "gone", "/nonexistent/kigen");
    assert_non_null(f);
    assert_int_equal(f->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_non_null(strstr(f->message, "/nonexistent/kigen"));
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));
    /* A keystore dropped from the configuration leaves the inventory. */
    fx->config.keystores = &fx->ks;
    fx->config.n_keystores = 1;
    scan(fx);
    assert_null(kigen_inventory_find(fx->inventory, "gone", "/nonexistent/kigen"));
    assert_int_equal(fx->inventory->n_files, 1);
}

static void test_many_files_across_batches(void **state)
{
    struct fixture *fx = *state;
    char name[64];

    assert_int_equal(mkdir(join(fx, "deep"), 0700), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "%s/c%03d.pem", i % 2 ? "deep" : ".", i);
        copy_file("certs/single.pem", join(fx, name));
    }
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 300);
    assert_int_equal(fx->inventory->n_certs, 300);
    fx->ks.recursive = false;
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 150);
}

/* Watches a rescan's merge from the loop: the counts it sees between two slices. */
struct merge_watch {
    struct fixture *fx;
    size_t before;    /* files_unchanged when the rescan began */
    size_t n_between; /* iterations that saw the merge half done */
    bool cancels;     /* cancel the scan the first time */
};

static void merge_watch_cb(uv_prepare_t *prepare)
{
    struct merge_watch *w = prepare->data;
    size_t now = w->fx->inventory->files_unchanged;

    if (now > w->before && now < w->before + 600) {
        if (w->cancels && !w->n_between)
            kigen_scanner_cancel(w->fx->scanner);
        w->n_between++;
    }
}

/*
 * 600 unchanged files are merged 256 at a time with a 1 ns slice: the loop turns between the
 * slices, a cancel there ends the scan with nothing swept, and a whole rescan keeps them all.
 */
static void test_the_merge_of_a_rescan_lets_the_loop_turn(void **state)
{
    struct fixture *fx = *state;
    struct merge_watch w = { .fx = fx };
    uv_prepare_t prepare;
    char name[64];
    int status = 1;

    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof(name), "c%03d.pem", i);
        copy_file("certs/single.pem", join(fx, name));
    }
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 600);
    kigen_scanner_set_merge_slice(fx->scanner, 1);
    assert_int_equal(uv_prepare_init(&fx->loop, &prepare), 0);
    prepare.data = &w;
    assert_int_equal(uv_prepare_start(&prepare, merge_watch_cb), 0);

    /* Cancelled between two slices: nothing is swept, no file is read again. */
    w.before = fx->inventory->files_unchanged;
    w.cancels = true;
    assert_int_equal(kigen_scanner_start(fx->scanner, &fx->config, done_cb, &status), 0);
    while (kigen_scanner_is_busy(fx->scanner))
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(status, -ECANCELED);
    assert_int_equal(w.n_between, 1);
    assert_int_equal(fx->inventory->n_files, 600);
    assert_int_equal(fx->inventory->files_read, 600);

    /* Whole: three slices, two turns of the loop between them. */
    w.before = fx->inventory->files_unchanged;
    w.cancels = false;
    w.n_between = 0;
    assert_int_equal(kigen_scanner_start(fx->scanner, &fx->config, done_cb, &status), 0);
    while (kigen_scanner_is_busy(fx->scanner))
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(status, 0);
    assert_true(w.n_between >= 2);
    assert_int_equal(fx->inventory->files_unchanged, w.before + 600);
    assert_int_equal(fx->inventory->n_files, 600);
    assert_int_equal(fx->inventory->files_read, 600);
    uv_close((uv_handle_t *)&prepare, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static void scan_paths(struct fixture *fx, const char *const *paths, size_t n)
{
    int status = 1;

    assert_int_equal(
        kigen_scanner_start_paths(fx->scanner, &fx->config, paths, n, done_cb, &status), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(status, 0);
}

static void test_partial_scan_reads_only_the_changed_paths(void **state)
{
    struct fixture *fx = *state;
    char added[512], gone_dir[512];
    const char *paths[2];
    uint64_t read_before;

    assert_int_equal(mkdir(join(fx, "d"), 0700), 0);
    copy_file("certs/single.pem", join(fx, "a.pem"));
    copy_file("certs/bundle.pem", join(fx, "d/b.pem"));
    scan(fx);
    assert_int_equal(fx->inventory->n_files, 2);
    read_before = fx->inventory->files_read;

    /* A new file, and a whole directory removed. */
    copy_file("certs/single.der", join(fx, "c.der"));
    snprintf(added, sizeof(added), "%s", join(fx, "c.der"));
    assert_int_equal(unlink(join(fx, "d/b.pem")), 0);
    assert_int_equal(rmdir(join(fx, "d")), 0);
    snprintf(gone_dir, sizeof(gone_dir), "%s", join(fx, "d"));
    paths[0] = added;
    paths[1] = gone_dir;
    scan_paths(fx, paths, 2);
    assert_int_equal(fx->inventory->files_read, read_before + 1);
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", added));
    assert_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "d/b.pem")));
    /* Untouched: still there, not read again. */
    assert_non_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));
    assert_int_equal(fx->inventory->n_files, 2);
}

/* The scanner's memory of roots, as the daemon keeps it in its state. */
struct roots {
    uint64_t expected; /* what root_dev answers */
    uint64_t remembered;
    int64_t now;
};

static int64_t roots_now(void *data)
{
    return ((struct roots *)data)->now;
}

static uint64_t roots_dev(const char *keystore, const char *path, void *data)
{
    return ((struct roots *)data)->expected;
}

static void roots_read(const char *keystore, const char *path, uint64_t dev, void *data)
{
    ((struct roots *)data)->remembered = dev;
}

static const struct kigen_scan_hooks roots_hooks = { roots_now, roots_dev, roots_read };

static void scan_with_status(struct fixture *fx, int want)
{
    int status = 1;

    assert_int_equal(kigen_scanner_start(fx->scanner, &fx->config, done_cb, &status), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(status, want);
}

static void test_vanished_root_keeps_its_records_as_last_seen(void **state)
{
    struct fixture *fx = *state;
    struct roots roots = { 0, 0, 1000 };
    char root[512], away[512];
    struct kigen_file *f, *err;
    struct stat st;

    snprintf(root, sizeof(root), "%s", join(fx, "ks"));
    snprintf(away, sizeof(away), "%s", join(fx, "ks.away"));
    assert_int_equal(mkdir(root, 0700), 0);
    copy_file("certs/single.pem", join(fx, "ks/a.pem"));
    copy_file("certs/bundle.pem", join(fx, "ks/b.pem"));
    fx->ks.path = root;
    kigen_scanner_set_hooks(fx->scanner, &roots_hooks, &roots);
    scan(fx);
    assert_int_equal(fx->inventory->n_certs, 4);
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(roots.remembered, (uint64_t)st.st_dev); /* read completely: remembered */
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 0);

    /* Moved away: the records stay, stale, with one error at the root. */
    assert_int_equal(rename(root, away), 0);
    roots.expected = roots.remembered;
    roots.remembered = 0;
    roots.now = 2000;
    scan(fx);
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 1);
    assert_int_equal(roots.remembered, 0);
    assert_int_equal(fx->inventory->n_certs, 4);
    assert_int_equal(fx->inventory->n_errors, 1);
    err = kigen_inventory_find(fx->inventory, "ks", root);
    assert_non_null(err);
    assert_int_equal(err->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_non_null(strstr(err->message, "No such file or directory"));
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "ks/a.pem"));
    assert_non_null(f);
    assert_true(f->is_stale);
    assert_int_equal(f->last_seen, 1000);
    /* Its parent is watched for its return. */
    {
        const char *const *dirs;
        size_t n = kigen_scanner_dirs(fx->scanner, &dirs);

        assert_int_equal(n, 1);
        assert_string_equal(dirs[0], fx->dir);
    }

    /* Back, less one file deleted meanwhile: that one is gone, the other is live again. */
    assert_int_equal(unlink(join(fx, "ks.away/b.pem")), 0);
    assert_int_equal(rename(away, root), 0);
    roots.now = 3000;
    scan(fx);
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 0);
    assert_int_equal(fx->inventory->n_errors, 0);
    assert_null(kigen_inventory_find(fx->inventory, "ks", root));
    assert_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "ks/b.pem")));
    f = kigen_inventory_find(fx->inventory, "ks", join(fx, "ks/a.pem"));
    assert_non_null(f);
    assert_false(f->is_stale);
    assert_int_equal(f->last_seen, 3000);
    assert_int_equal(fx->inventory->n_certs, 1);
}

static void test_empty_root_on_another_device_is_unavailable(void **state)
{
    struct fixture *fx = *state;
    struct roots roots = { 0, 0, 1000 };
    struct kigen_file *err;
    struct stat st;

    copy_file("certs/single.pem", join(fx, "a.pem"));
    kigen_scanner_set_hooks(fx->scanner, &roots_hooks, &roots);
    scan(fx);
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_int_equal(roots.remembered, (uint64_t)st.st_dev);

    /* The share was read on another device; what is here now is its empty mount point. */
    assert_int_equal(unlink(join(fx, "a.pem")), 0);
    roots.expected = (uint64_t)st.st_dev + 1;
    roots.remembered = 0;
    scan(fx);
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 1);
    assert_int_equal(fx->inventory->n_certs, 1); /* kept as last seen */
    err = kigen_inventory_find(fx->inventory, "ks", fx->dir);
    assert_non_null(err);
    assert_int_equal(err->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_non_null(strstr(err->message, "another file system"));

    /* A partial scan below an unavailable root cannot tell: it asks for a full scan. */
    {
        int status = 1;
        const char *paths[1] = { join(fx, "a.pem") };

        assert_int_equal(
            kigen_scanner_start_paths(fx->scanner, &fx->config, paths, 1, done_cb, &status), 0);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        assert_int_equal(status, -ESTALE);
        assert_int_equal(fx->inventory->n_certs, 1);
    }

    /* On another device but holding files: the keystore's new place, read as it is. */
    copy_file("certs/bundle.pem", join(fx, "b.pem"));
    scan_with_status(fx, 0);
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 0);
    assert_int_equal(roots.remembered, (uint64_t)st.st_dev);
    assert_int_equal(fx->inventory->n_certs, 3);
    assert_int_equal(fx->inventory->n_errors, 0);
    assert_null(kigen_inventory_find(fx->inventory, "ks", join(fx, "a.pem")));

    /* The same device and emptied: a real removal, not an unmount. */
    assert_int_equal(unlink(join(fx, "b.pem")), 0);
    roots.expected = (uint64_t)st.st_dev;
    scan(fx);
    assert_int_equal(kigen_scanner_unavailable(fx->scanner), 0);
    assert_int_equal(fx->inventory->n_files, 0);
}

static void test_keystore_of_one_file_that_vanishes_keeps_its_certificates(void **state)
{
    struct fixture *fx = *state;
    char file[512], away[512];
    struct kigen_file *f;

    snprintf(file, sizeof(file), "%s", join(fx, "one.pem"));
    snprintf(away, sizeof(away), "%s", join(fx, "one.away"));
    copy_file("certs/bundle.pem", file);
    fx->ks.path = file;
    scan(fx);
    assert_int_equal(fx->inventory->n_certs, 3);
    assert_int_equal(rename(file, away), 0);
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "ks", file);
    assert_non_null(f);
    assert_int_equal(f->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_int_equal(f->certs.n, 3);
    assert_true(f->is_stale);
    assert_int_equal(fx->inventory->n_errors, 1);
    assert_int_equal(rename(away, file), 0);
    scan(fx);
    f = kigen_inventory_find(fx->inventory, "ks", file);
    assert_non_null(f);
    assert_int_equal(f->error, 0);
    assert_int_equal(f->certs.n, 3);
    assert_false(f->is_stale);
    assert_int_equal(fx->inventory->n_errors, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unchanged_files_are_not_read_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_files_leave_the_inventory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sidecar_password_opens_the_file_and_is_not_a_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_links_out_of_the_keystore_devices_and_fifos_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_is_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_and_exclude_globs_filter_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_keystore_is_one_error_and_others_still_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_files_across_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_merge_of_a_rescan_lets_the_loop_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_scan_reads_only_the_changed_paths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_vanished_root_keeps_its_records_as_last_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_root_on_another_device_is_unavailable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_keystore_of_one_file_that_vanishes_keeps_its_certificates, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
