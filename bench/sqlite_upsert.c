/* sqlite_upsert.c - the floor under a Converge write: SQLite alone running the writer's upsert.
 *
 * usage: sqlite_upsert DIR [KEYS] [ROWS] [GROUP] [SQL run after the migrations]
 * Loads the schema from the migrations folder's SQL files (run from the repository root), then runs the
 * writer's statement (WriteSession.upsertSQL) for ROWS (default 200000) writes of 16-byte
 * values to random keys among KEYS (default 100000), GROUP (default 14, what
 * redis-benchmark -c 50 -P 1 gives the writer) per BEGIN IMMEDIATE ... COMMIT, plus the
 * node-row update and the feed sweep each group does; WAL, synchronous NORMAL, temp_store
 * MEMORY, SQLite's default checkpoints, as a node runs. The same again on a bare table (key PRIMARY KEY, value),
 * the least a per-key B-tree row costs, and on that table with a unique seq column (the feed's
 * order), to show what keeping a second order costs. Prints "name: value unit (details)" lines with the
 * wall and CPU time per row; the first quarter of the rows warms the file and is not counted.
 * Build: gcc -O2 -o sqlite_upsert bench/sqlite_upsert.c -lsqlite3
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glob.h>

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite_upsert: %.80s: %s\n", sql, err);
        exit(1);
    }
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(n + 1);
    if (fread(text, 1, n, f) != (size_t)n) { perror(path); exit(1); }
    text[n] = 0;
    fclose(f);
    return text;
}

static const char *converge_upsert =
    "INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, lamport = excluded.lamport, "
    "origin = excluded.origin, seq = excluded.seq, deleted = excluded.deleted, "
    "updated_at = excluded.updated_at, expires_at = excluded.expires_at";

/* The writer's sweep of the feed table (WriteSession.compactFeed), twice the seqs of each group. */
static const char *feed_sweep =
    "DELETE FROM feed WHERE seq IN (SELECT feed.seq FROM feed LEFT JOIN kv ON kv.rowid = feed.row "
    "WHERE feed.seq > ?1 AND feed.seq <= ?2 AND (kv.seq IS NULL OR kv.seq <> feed.seq))";

static const char *bare_upsert =
    "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

static const char *seq_upsert =
    "INSERT INTO kv (key, value, seq) VALUES (?, ?, ?3) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, seq = excluded.seq";

/* The tables: 0 = Converge's (the migrations), 1 = key and value only, 2 = with a unique seq. */
enum { CONVERGE, BARE, WITH_SEQ };

static const char *extra_sql = NULL;

static void run(const char *dir, const char *name, int shape, long keys, long rows, int group) {
    int converge = shape == CONVERGE;
    char path[4096];
    snprintf(path, sizeof path, "%s/upsert-%s.db", dir, name);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char file[4200];
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        remove(file);
    }
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) { fprintf(stderr, "sqlite_upsert: cannot open %s\n", path); exit(1); }
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "PRAGMA synchronous = NORMAL");
    exec(db, "PRAGMA temp_store = MEMORY");
    if (converge) {
        glob_t files;
        if (glob("migrations/*.sql", 0, NULL, &files) != 0) { fprintf(stderr, "sqlite_upsert: run from the repository root\n"); exit(1); }
        for (size_t i = 0; i < files.gl_pathc; i++) {
            char *sql = slurp(files.gl_pathv[i]);
            exec(db, sql);
            free(sql);
        }
        globfree(&files);
        exec(db, "INSERT INTO node (singleton, id, epoch, lamport, next_seq, created_at) VALUES (1, 'A', 'e', 0, 1, 'now')");
        if (extra_sql) exec(db, extra_sql);
    } else if (shape == BARE) {
        exec(db, "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB)");
    } else {
        exec(db, "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB, seq INTEGER NOT NULL UNIQUE)");
    }
    sqlite3_stmt *upsert, *node = NULL, *sweep = NULL;
    long swept = 0;
    sqlite3_prepare_v2(db, converge ? converge_upsert : shape == BARE ? bare_upsert : seq_upsert, -1, &upsert, NULL);
    if (converge) {
        sqlite3_prepare_v2(db, "UPDATE node SET lamport = ?, next_seq = ? WHERE singleton = 1", -1, &node, NULL);
        sqlite3_prepare_v2(db, feed_sweep, -1, &sweep, NULL);  /* NULL before migration 0007 */
    }
    unsigned char value[16];
    memset(value, 'v', sizeof value);
    srand(42);
    long seq = 1, warm = rows / 4;
    double w0 = 0, c0 = 0;
    for (long done = 0; done < rows;) {
        if (done >= warm && w0 == 0) { w0 = wall(); c0 = cpu(); }
        exec(db, "BEGIN IMMEDIATE");
        for (int i = 0; i < group && done < rows; i++, done++, seq++) {
            char key[32];
            snprintf(key, sizeof key, "key:%012ld", ((long)rand() * 2654435761L) % keys);
            sqlite3_bind_text(upsert, 1, key, -1, SQLITE_TRANSIENT);
            /* A new value every write, as in a real load: SQLite skips rewriting a cell whose
               bytes did not change, which would leave the page clean. */
            memcpy(value, &seq, sizeof seq);
            sqlite3_bind_blob(upsert, 2, value, sizeof value, SQLITE_STATIC);
            if (shape == WITH_SEQ) sqlite3_bind_int64(upsert, 3, seq);
            if (converge) {
                sqlite3_bind_int64(upsert, 3, seq);
                sqlite3_bind_text(upsert, 4, "A", -1, SQLITE_STATIC);
                sqlite3_bind_int64(upsert, 5, seq);
                sqlite3_bind_int64(upsert, 6, 0);
                sqlite3_bind_text(upsert, 7, "2026-12-08T00:00:00.000Z", -1, SQLITE_STATIC);
                sqlite3_bind_null(upsert, 8);
            }
            if (sqlite3_step(upsert) != SQLITE_DONE) { fprintf(stderr, "sqlite_upsert: %s\n", sqlite3_errmsg(db)); exit(1); }
            sqlite3_reset(upsert);
        }
        if (sweep) {
            long window = 2L * group;
            if (swept >= seq - 1) swept = 0;
            sqlite3_bind_int64(sweep, 1, swept);
            sqlite3_bind_int64(sweep, 2, swept + window < seq - 1 ? swept + window : seq - 1);
            if (sqlite3_step(sweep) != SQLITE_DONE) { fprintf(stderr, "sqlite_upsert: sweep: %s\n", sqlite3_errmsg(db)); exit(1); }
            sqlite3_reset(sweep);
            swept += window;
        }
        if (converge) {
            sqlite3_bind_int64(node, 1, seq);
            sqlite3_bind_int64(node, 2, seq);
            sqlite3_step(node);
            sqlite3_reset(node);
        }
        exec(db, "COMMIT");
    }
    double w = wall() - w0, c = cpu() - c0;
    long counted = rows - warm;
    printf("sqlite_upsert_%s: %.0f rows/s (%ld random keys, groups of %d, %ld rows counted; %.1f us wall and %.1f us CPU per row)\n",
           name, counted / w, keys, group, counted, 1e6 * w / counted, 1e6 * c / counted);
    sqlite3_finalize(upsert);
    if (node) sqlite3_finalize(node);
    if (sweep) sqlite3_finalize(sweep);
    sqlite3_close(db);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: sqlite_upsert DIR [KEYS] [ROWS] [GROUP]\n"); return 2; }
    long keys = argc > 2 ? atol(argv[2]) : 100000;
    long rows = argc > 3 ? atol(argv[3]) : 200000;
    int group = argc > 4 ? atoi(argv[4]) : 14;
    extra_sql = argc > 5 ? argv[5] : NULL;  /* run after the migrations: to measure what a part of the schema costs */
    run(argv[1], "converge_schema", CONVERGE, keys, rows, group);
    run(argv[1], "key_value_only", BARE, keys, rows, group);
    run(argv[1], "key_value_and_unique_seq", WITH_SEQ, keys, rows, group);
    return 0;
}
