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

    def finish(self):
        took = time.time() - self.started
        print(f"{self.name} took {took:.1f} s", flush=True)
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)
