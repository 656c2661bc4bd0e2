"""Shared helpers for phasemig's integration tests.

The tests run against the throwaway cluster scripts/test.sh starts (PGHOST,
PGPORT, PGUSER in the environment; PHASEMIG_CLUSTER_DIR is its directory).
Each test works in databases of its own, made with fresh_db().  Run a test
directly:  PGHOST=... PGPORT=... /usr/bin/python3 test/integration/test_x.py
"""
import contextlib
import os
import sys
import time
import uuid

import psycopg2
import psycopg2.extensions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "test", "regress", "fixture.sql")
SEED = os.path.join(ROOT, "test", "data", "seed_demo.sql")


def dsn(dbname="postgres", **extra):
    parts = {
        "host": os.environ.get("PGHOST", "/var/run/postgresql"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": dbname,
    }
    parts.update(extra)
    return " ".join(f"{k}={v}" for k, v in parts.items())


def connect(dbname="postgres", autocommit=True, **extra):
    conn = psycopg2.connect(dsn(dbname, **extra))
    conn.autocommit = autocommit
    return conn


def fresh_db(prefix="pmtest"):
    """Creates an empty database with phasemig and the test fixture functions
    (pm_legacy_schema, pm_fingerprint); returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(connect()) as c, c.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    with contextlib.closing(connect(name)) as c, c.cursor() as cur:
        cur.execute("CREATE EXTENSION phasemig")
        with open(FIXTURE) as f:
            cur.execute(f.read())
    return name


def drop_db(name):
    with contextlib.closing(connect()) as c, c.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fingerprint(cur, schema="public"):
    """Rows and shape of the tables phasemig touches, as a dict part -> md5."""
    cur.execute("SELECT part, fingerprint FROM pm_fingerprint(%s)", (schema,))
    return dict(cur.fetchall())


def load_seed(cur, schema="public"):
    """The seed-shaped demo data (5 projects, 8 phases, 1,011 assignments)."""
    with open(SEED) as f:
        sql = f.read()
    # psql variables of the script: only :"schema" is used.
    sql = "\n".join(l for l in sql.splitlines() if not l.startswith("\\"))
    cur.execute(sql.replace(':"schema"', '"%s"' % schema.replace('"', '""')))
    cur.execute("RESET search_path")


class Result:
    """Counts checks; prints the closing line the workplace reads."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.started = time.time()

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", flush=True)
        return ok

    def run(self, *parts, always=None, always_what=""):
        """Runs each part (a function); an exception is a failed check, with
        its traceback.  Then, whatever happened, the check `always()` (a
        function returning whether `always_what` holds), then finish()."""
        try:
            for part in parts:
                try:
                    part()
                except Exception as e:  # noqa: BLE001 - reported as a failed check
                    import traceback
                    traceback.print_exc()
                    self.check(False, f"{part.__name__}: unexpected {type(e).__name__}: {e}")
        finally:
            if always is not None:
                self.check(always(), always_what)
        self.finish()

    def finish(self):
        took = time.time() - self.started
        print(f"{self.name} took {took:.1f} s", flush=True)
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


# ---------------------------------------------------------------------------
# Helpers for the hardening tests (locks, concurrency, faults, crash, cancel).
# ---------------------------------------------------------------------------
BENCH_GENERATE = os.path.join(ROOT, "bench", "generate.sql")


def bench_db(prefix, n_projects, per_project, id_type="uuid", seed=0.42):
    """fresh_db() filled by bench/generate.sql in schema public; returns its name."""
    name = fresh_db(prefix)
    with contextlib.closing(connect(name)) as c, c.cursor() as cur:
        with open(BENCH_GENERATE) as f:
            cur.execute(f.read())
        cur.execute("SELECT phasemig_bench.phasemig_bench_generate('public', %s, %s, %s, %s)",
                    (n_projects, per_project, id_type, seed))
    return name


def sqlstate(cur, sql, args=None):
    """Runs sql; returns (None, None) on success, else (SQLSTATE, the error)."""
    try:
        cur.execute(sql, args)
        return None, None
    except psycopg2.Error as e:
        return e.pgcode, e


def wait_for(predicate, timeout=30.0, interval=0.02):
    """Polls predicate() until it returns something true; returns it, or None
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def state_snapshot(cur, schema="public"):
    """What a failed step must leave as it was: the state phasemig_status
    reports, and the number of rows in each of phasemig's own tables."""
    cur.execute("SELECT phasemig_status(%s) ->> 'state'", (schema,))
    snap = {"state": cur.fetchone()[0]}
    for t in ("phasemig_run", "phasemig_phase_archive", "phasemig_assignment_archive",
              "phasemig_object_archive", "phasemig_verify_history"):
        cur.execute(f"SELECT count(*) FROM {t}")
        snap[t] = cur.fetchone()[0]
    return snap


def backend_memory(pid):
    """VmRSS, RssAnon, VmHWM ... of a backend, in kB, from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.startswith(("Vm", "Rss")) and v.strip().endswith("kB"):
                out[k] = int(v.split()[0])
    return out


class Call:
    """Runs fn() in a thread; afterwards .result, .error (a psycopg2.Error or
    other exception) and .ended (time.monotonic() when fn returned)."""

    def __init__(self, fn):
        import threading
        self.result = self.error = self.ended = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test
            self.error = e
        self.ended = time.monotonic()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()


def cluster_dir():
    return os.environ.get("PHASEMIG_CLUSTER_DIR")


def as_postgres(args):
    """argv to run a server program as the cluster's owner (runuser when root)."""
    if os.getuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + list(args)
    return list(args)


def pg_bindir():
    import subprocess
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def server_log_size():
    d = cluster_dir()
    p = os.path.join(d, "server.log") if d else None
    return os.path.getsize(p) if p and os.path.exists(p) else 0


def server_log_since(offset):
    """The server log written since offset (see server_log_size); '' without a cluster dir."""
    d = cluster_dir()
    p = os.path.join(d, "server.log") if d else None
    if not p or not os.path.exists(p):
        return ""
    with open(p, errors="replace") as f:
        f.seek(offset)
        return f.read()


def quick_fingerprint(cur, schema="public"):
    """A cheaper stand-in for fingerprint() on large tables: per table, the row
    count and an order-independent sum of row hashes, and the shape (columns,
    constraints, indexes and the table's relfilenode, which a rolled-back
    rewrite gives back)."""
    out = {}
    for t in ("projects", "project_phases", "resource_assignments", "alembic_version"):
        cur.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::text", (schema, t))
        rel = cur.fetchone()[0]
        if rel is None:
            continue
        cur.execute(f"SELECT count(*) || ':' || coalesce(sum(hashtextextended(x::text, 0)), 0) FROM {rel} x")
        out[t + " rows"] = cur.fetchone()[0]
        cur.execute("""
            SELECT md5(string_agg(d, ';' ORDER BY d)) FROM (
                SELECT format('col %%s %%s %%s %%s %%s', a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                              a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid)) AS d
                  FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                 WHERE a.attrelid = %(r)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
                UNION ALL
                SELECT format('con %%s %%s %%s', conname, pg_get_constraintdef(c.oid), convalidated)
                  FROM pg_constraint c WHERE conrelid = %(r)s::regclass
                UNION ALL
                SELECT format('idx %%s %%s %%s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid), i.indisvalid)
                  FROM pg_index i WHERE i.indrelid = %(r)s::regclass
                UNION ALL
                SELECT 'file ' || pg_relation_filenode(%(r)s::regclass)) q""", {"r": rel})
        out[t + " shape"] = cur.fetchone()[0]
    return out


def step_stages(step):
    """The stages of a step ("upgrade", "downgrade", "verify") in order: the
    Stages::begin("...") calls of src/pg/<step>.cpp, the names
    phasemig.fault_injection and phasemig_progress use."""
    import re
    with open(os.path.join(ROOT, "src", "pg", f"{step}.cpp")) as f:
        text = f.read()
    seen = []
    for s in re.findall(r'(?:\bst\.|\bst->)begin\("([a-z_]+)"\)', text):
        if s not in seen:
            seen.append(s)
    return seen
