#!/usr/bin/python3
"""The benchmark of SPEC §7 (issue "Fast at scale: near the physical floor at
10M assignments").  See bench/README.md for what it measures and why.

    /usr/bin/python3 bench/run.py --host /tmp/h6/socket --port 55436 --quick
    /usr/bin/python3 bench/run.py --sizes 100000:10,300000:10,1000000:10 --repeat 3

Per size (projects:assignments_per_project) it generates a legacy database
(the template), copies it (CREATE DATABASE ... TEMPLATE, STRATEGY FILE_COPY)
once per contender, and times, from the client, on identical data:
phasemig (upgrade, verify, downgrade), the plain-SQL reference
(phasemig_ref.upgrade/verify/downgrade), the physical floors of SPEC §7, and,
at the smallest size, the seed's one-query-per-row method on a sample
(extrapolated per row).  It samples the backend's memory during every step,
cancels a phasemig upgrade and downgrade at the largest size, compares the
rows phasemig and the reference produce, and writes a table, a JSON of every
figure (bench/results/<timestamp>.json) and a plot (bench/results/scaling.png).
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GENERATE_SQL = os.path.join(HERE, "generate.sql")
BASELINE_SQL = os.path.join(HERE, "baseline.sql")

STEPS = ("upgrade", "verify", "downgrade")
TARGET_FLOOR = {"upgrade": 2.0, "verify": 3.0, "downgrade": 1.5}  # phasemig / floor at most
TARGET_SPEEDUP = 3.0                                              # plain SQL / phasemig at least
CANCEL_LIMIT = 1.0                                                # seconds from cancel to return
TABLES = ("projects", "project_phases", "resource_assignments")

SQL = {
    "phasemig": {
        "upgrade": "SELECT phasemig_upgrade('public')",
        "verify": "SELECT * FROM phasemig_verify('public')",
        "downgrade": "SELECT phasemig_downgrade('public')",
    },
    "ref": {
        "upgrade": "SELECT phasemig_ref.upgrade('public')",
        "verify": "SELECT * FROM phasemig_ref.verify('public')",
        "downgrade": "SELECT phasemig_ref.downgrade('public')",
    },
}

T0 = time.perf_counter()


def log(msg):
    print(f"[{time.perf_counter() - T0:8.1f} s] {msg}", flush=True)


def parse_sizes(text):
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?::(\d+))?", part)
        if not m:
            raise argparse.ArgumentTypeError(f"bad size {part!r}: want projects:assignments_per_project")
        out.append((int(m.group(1)), int(m.group(2) or 10)))
    if not out:
        raise argparse.ArgumentTypeError("no sizes")
    return out


def fmt_s(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def huge_pages():
    """This machine's reserved huge pages (/proc/meminfo), where PostgreSQL
    with huge_pages = try puts shared memory; None if unreadable."""
    try:
        with open("/proc/meminfo") as f:
            m = dict(line.split(":", 1) for line in f if line.startswith("HugePages_") or line.startswith("Hugepagesize"))
        return {k.strip(): v.strip() for k, v in m.items()}
    except OSError:
        return None


# --------------------------------------------------------------------------
# backend memory: /proc/<pid>/status sampled from a thread
# --------------------------------------------------------------------------

class MemSampler:
    """Samples RssAnon (and VmRSS, RssShmem, VmHWM) of a backend every
    `interval` seconds while a statement runs.  VmHWM is reset first
    (echo 5 > /proc/<pid>/clear_refs) so that it is the peak of this step.
    Needs the backend on this machine and the right to read its /proc entry
    (root, or the postgres user); otherwise available = False."""

    def __init__(self, pid, interval=0.05, stage_conn=None):
        self.pid = pid
        self.stage_conn = stage_conn   # optional: reads phasemig_progress for the stage
        self.stage_peak = {}
        self.interval = interval
        self.ev = threading.Event()
        self.n = 0
        self.peak = {}
        self.base = None
        self.last = None
        self.hwm_reset = False
        self.thread = None

    def read(self):
        try:
            out = {}
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("RssAnon", "VmRSS", "RssShmem", "VmHWM"):
                        out[k] = int(v.split()[0])
            return out
        except (OSError, ValueError, IndexError):
            return None

    def _stage(self):
        if self.stage_conn is None:
            return None
        try:
            return q1(self.stage_conn, "SELECT stage FROM phasemig_progress WHERE pid = %s", (self.pid,))
        except psycopg2.Error:
            self.stage_conn = None
            return None

    def _take(self):
        s = self.read()
        st = self._stage()
        if s and st:
            self.stage_peak[st] = max(self.stage_peak.get(st, 0), s.get("RssAnon", 0))
        if s:
            self.n += 1
            self.last = s
            for k, v in s.items():
                if v > self.peak.get(k, -1):
                    self.peak[k] = v

    def start(self):
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            pass
        self.base = self.read()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            self._take()
            if self.ev.wait(self.interval):
                return

    def stop(self):
        self.ev.set()
        if self.thread:
            self.thread.join()
        self._take()

    def result(self):
        if not self.peak:
            return {"available": False}
        return {
            "available": True,
            "samples": self.n,
            "interval_s": self.interval,
            "base_rss_anon_kb": (self.base or {}).get("RssAnon"),
            "peak_rss_anon_kb": self.peak.get("RssAnon"),
            "peak_vm_rss_kb": self.peak.get("VmRSS"),
            "peak_rss_shmem_kb": self.peak.get("RssShmem"),
            "vm_hwm_kb": (self.last or {}).get("VmHWM"),
            "vm_hwm_reset": self.hwm_reset,
            "stage_peak_rss_anon_kb": self.stage_peak or None,
        }


# --------------------------------------------------------------------------
# database helpers
# --------------------------------------------------------------------------

def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def q1(conn, sql, params=None):
    rows = q(conn, sql, params)
    return rows[0][0] if rows else None


def timed(conn, sql, params=None, pid=None, checkpoint=True, stage_conn=None):
    """Runs one statement and times it from the client (perf_counter around
    execute + fetch).  CHECKPOINT first, then sync(2) (not timed): with
    fsync = off the kernel would otherwise write back the database copies
    made just before (gigabytes at 10M) while the statement runs, which made
    the same step 30-50% slower from one run to the next.  With pid, samples
    that backend's memory meanwhile.  Returns a dict."""
    if checkpoint:
        q(conn, "CHECKPOINT")
        os.sync()
    del conn.notices[:]
    sampler = MemSampler(pid, stage_conn=stage_conn) if pid else None
    load = loadavg()
    if sampler:
        sampler.start()
    rows = None
    t0 = time.perf_counter()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
    finally:
        t1 = time.perf_counter()
        if sampler:
            sampler.stop()
    out = {"seconds": round(t1 - t0, 4), "load1": load[0] if load else None}
    if sampler:
        out["memory"] = sampler.result()
    out["_rows"] = rows
    out["_notices"] = [n.strip() for n in conn.notices]
    return out


def stage_times(notices):
    """phasemig.stage_messages = notice lines -> {stage: ms}."""
    out = {}
    for n in notices:
        m = re.search(r"phasemig \w+: (\w+) done in ([\d.]+) ms", n)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def table_shape(conn, table):
    """Columns (in order), constraints and indexes of public.<table>."""
    rel = f"public.{table}"
    if q1(conn, "SELECT to_regclass(%s) IS NOT NULL", (rel,)) is not True:
        return None
    cols = q(conn, """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
                        FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0
                         AND NOT a.attisdropped ORDER BY a.attnum""", (rel,))
    cons = q(conn, """SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
                       WHERE conrelid = %s::regclass ORDER BY 1""", (rel,))
    idx = q(conn, """SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
                       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                      WHERE i.indrelid = %s::regclass ORDER BY 1""", (rel,))
    return {"columns": [list(r) for r in cols], "constraints": [list(r) for r in cons],
            "indexes": [list(r) for r in idx]}


def column_names(conn, table):
    return [r[0] for r in q(conn, """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass
                                       AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
                            (f"public.{table}",))]


BUCKETS = 1024


def digest(conn, table, cols):
    """Per bucket of ids (hash of id & 1023): row count and the sum of a
    64-bit hash of the row (the given columns, in that order) -- an
    order-independent content digest that two databases can compare."""
    collist = ", ".join(f'"{c}"' for c in cols)
    rows = q(conn, f"""SELECT (hashtextextended(id::text, 0) & {BUCKETS - 1})::int,
                              count(*), sum(hashtextextended(ROW({collist})::text, 7))::text
                         FROM public.{table} GROUP BY 1""")
    return {b: (n, h) for b, n, h in rows}


def bucket_rows(conn, table, cols, buckets):
    collist = ", ".join(f'"{c}"' for c in cols)
    rows = q(conn, f"""SELECT id::text, ROW({collist})::text FROM public.{table}
                        WHERE (hashtextextended(id::text, 0) & {BUCKETS - 1})::int = ANY(%s)""",
             (list(buckets),))
    return dict(rows)


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.prefix = args.db_prefix
        self.admin = self.connect("postgres")
        self.problems = []       # anything that looked wrong, for the report
        self.notes = []          # differences that are expected (column order)

    # ---- connections and databases
    def connect(self, dbname):
        kw = {"dbname": dbname, "application_name": "phasemig-bench"}
        for k in ("host", "port", "user"):
            if getattr(self.args, k):
                kw[k] = getattr(self.args, k)
        conn = psycopg2.connect(**kw)
        conn.autocommit = True
        return conn

    def session(self, dbname, who):
        """A fresh backend for a contender, warmed up (phasemig.so loaded,
        catalog caches filled), with phasemig.stage_messages = notice so
        that verify's stage times can be read from the NOTICEs."""
        conn = self.connect(dbname)
        pid = q1(conn, "SELECT pg_backend_pid()")
        q(conn, "SET phasemig.stage_messages = notice")
        q(conn, "SELECT phasemig_status('public')")
        if who == "ref":
            q(conn, "SELECT phasemig_ref._tables('public')")
        return conn, pid

    def drop_db(self, name):
        q(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def copy_db(self, name):
        self.drop_db(name)
        t0 = time.perf_counter()
        q(self.admin, f'CREATE DATABASE "{name}" TEMPLATE "{self.prefix}_tpl" STRATEGY FILE_COPY')
        return round(time.perf_counter() - t0, 3)

    def dbname(self, tag):
        return f"{self.prefix}_{tag}"

    def settings(self):
        names = ("server_version", "shared_buffers", "work_mem", "maintenance_work_mem",
                 "max_parallel_workers_per_gather", "max_parallel_maintenance_workers",
                 "max_wal_size", "checkpoint_timeout", "fsync", "synchronous_commit",
                 "full_page_writes", "wal_level", "autovacuum", "jit", "effective_io_concurrency")
        return dict(q(self.admin, "SELECT name, current_setting(name) FROM pg_settings "
                                  "WHERE name = ANY(%s) ORDER BY 1", (list(names),)))

    # ---- template: a freshly generated legacy database per size
    def build_template(self, n_projects, per):
        a = self.args
        name = self.dbname("tpl")
        self.drop_db(name)
        q(self.admin, f'CREATE DATABASE "{name}"')
        conn = self.connect(name)
        q(conn, "CREATE EXTENSION phasemig")
        with open(GENERATE_SQL) as f:
            q(conn, f.read())
        with open(BASELINE_SQL) as f:
            q(conn, f.read())
        gen = timed(conn, "SELECT phasemig_bench.phasemig_bench_generate('public', %s, %s, %s, %s)",
                    (n_projects, per, a.id_type, a.seed), checkpoint=False)
        info = {"generate_seconds": gen["seconds"], "generate": gen["_rows"][0][0]}
        # no run may be "restored" from an earlier one: clear both archives
        info["phasemig_purge_archive"] = q1(conn, "SELECT phasemig_purge_archive('public')")
        q(conn, "SELECT phasemig_ref.forget('public')")
        t0 = time.perf_counter()
        q(conn, "VACUUM ANALYZE")
        q(conn, "CHECKPOINT")
        info["vacuum_analyze_checkpoint_seconds"] = round(time.perf_counter() - t0, 3)
        info["rows"] = {t: q1(conn, f"SELECT count(*) FROM public.{t}") for t in TABLES}
        info["bytes"] = {t: {"heap": q1(conn, "SELECT pg_relation_size(%s)", (f"public.{t}",)),
                             "total": q1(conn, "SELECT pg_total_relation_size(%s)", (f"public.{t}",))}
                         for t in TABLES}
        info["database_bytes"] = q1(conn, "SELECT pg_database_size(current_database())")
        conn.close()
        return info

    # ---- archives empty before the timed upgrade (both contenders)
    def check_clean(self, conn, label):
        st = q1(conn, "SELECT phasemig_status('public')")
        ref_rows = q1(conn, "SELECT count(*) FROM phasemig_ref.state WHERE target_schema = 'public'")
        clean = (st.get("state") == "legacy" and not (st.get("archive") or {}).get("upgrade")
                 and not (st.get("archive") or {}).get("downgrade") and ref_rows == 0)
        if not clean:
            self.problem(f"{label}: archives not empty before the timed upgrade: "
                         f"phasemig {st.get('archive')}, reference state rows {ref_rows}")
        return clean

    def problem(self, text):
        log("PROBLEM: " + text)
        self.problems.append(text)

    def note(self, text):
        if text not in self.notes:
            log("note: " + text)
            self.notes.append(text)

    def report_diff(self, where, diff):
        """A comparison's differences for one pair: a changed column order
        (ADD COLUMN appends; both contenders re-add the dropped columns at
        the end) is a note; anything else is a problem."""
        for t, d in diff.items():
            d = dict(d)
            order = d.pop("column_order", None)
            if order:
                self.note(f"{where.split(': ', 1)[-1]}: {t} column order differs "
                          f"({', '.join(f'{k}: {v}' for k, v in order.items())})")
            if d:
                self.problem(f"{where}: {t}: {json.dumps(d, default=str)[:2000]}")

    # ---- one contender: upgrade, verify (+ verify floor); later downgrade
    def up_and_verify(self, who, dbname, res):
        conn, pid = self.session(dbname, who)
        obs = self.connect(dbname) if who == "phasemig" else None
        res["clean_archives"] = self.check_clean(conn, f"{who} {dbname}")
        r = timed(conn, SQL[who]["upgrade"], pid=pid, stage_conn=obs)
        summary = r.pop("_rows")[0][0]
        notices = r.pop("_notices")
        r["summary"] = summary
        r["timings"] = summary.get("timings") if isinstance(summary, dict) else None
        if who == "phasemig":
            r["stage_ms"] = stage_times(notices)
            restored = (summary.get("timelines") or {}).get("restored")
        else:
            restored = summary.get("projects_restored")
        if restored:
            self.problem(f"{who} upgrade restored {restored} project timelines from an archive "
                         "(should compute them on fresh data)")
        res["upgrade"] = r
        log(f"  {who:8s} upgrade   {r['seconds']:8.3f} s")
        conn.close()

        # a fresh backend for verify: its memory figures are its own (a
        # backend keeps the heap an earlier statement grew)
        conn, pid = self.session(dbname, who)
        r = timed(conn, SQL[who]["verify"], pid=pid, stage_conn=obs)
        rows = r.pop("_rows")
        notices = r.pop("_notices")
        r["checks"] = [list(x) for x in rows]
        if who == "phasemig":
            r["stage_ms"] = stage_times(notices)
        res["verify"] = r
        log(f"  {who:8s} verify    {r['seconds']:8.3f} s")

        # verify floor: one sequential scan of resource_assignments as this
        # contender's upgrade left it; single process (like phasemig), and
        # parallel for information; best of 3 each
        n_assign = None
        single, par = [], []
        q(conn, "SET max_parallel_workers_per_gather = 0")
        for _ in range(3):
            t = timed(conn, "SELECT count(*) FROM public.resource_assignments", checkpoint=False)
            single.append(t["seconds"])
            n_assign = t["_rows"][0][0]
        q(conn, "RESET max_parallel_workers_per_gather")
        for _ in range(3):
            par.append(timed(conn, "SELECT count(*) FROM public.resource_assignments", checkpoint=False)["seconds"])
        res["verify_floor"] = {"single_seconds": single, "parallel_seconds": par,
                               "seconds": min(single), "parallel_best": min(par),
                               "heap_bytes": q1(conn, "SELECT pg_relation_size('public.resource_assignments')"),
                               "count": n_assign}
        conn.close()
        if obs:
            obs.close()

    def downgrade(self, who, dbname, res):
        conn, pid = self.session(dbname, who)
        obs = self.connect(dbname) if who == "phasemig" else None
        r = timed(conn, SQL[who]["downgrade"], pid=pid, stage_conn=obs)
        if obs:
            obs.close()
        summary = r.pop("_rows")[0][0]
        notices = r.pop("_notices")
        r["summary"] = summary
        r["timings"] = summary.get("timings") if isinstance(summary, dict) else None
        if who == "phasemig":
            r["stage_ms"] = stage_times(notices)
        else:
            r["warnings"] = [n for n in notices if "WARNING" in n]
        res["downgrade"] = r
        log(f"  {who:8s} downgrade {r['seconds']:8.3f} s")
        conn.close()

    # ---- the floors of SPEC §7, in their own copy
    def floors(self, dbname):
        """Order (one copy of the template, legacy):
          1. upgrade floor, rewrite part: VACUUM FULL project_phases as the
             upgrade finds it (legacy);
          2. downgrade floor, alternative (output state): resource_assignments
             in the legacy state with its project_phase_id index and FK dropped
             (not timed): VACUUM FULL + CREATE INDEX (project_phase_id) + FK
             NOT VALID + VALIDATE, i.e. the legacy objects re-made;
          3. phasemig_upgrade() (not timed) -> upgraded state;
          4. the two date indexes dropped (not timed); upgrade floor,
             alternative rewrite: VACUUM FULL project_phases (upgraded rows);
             then CREATE INDEX on start_date and on end_date (the index part of
             both upgrade floors);
          5. downgrade floor (primary): resource_assignments as the upgrade
             left it (project_phase_id dropped): VACUUM FULL + CREATE INDEX
             (project_id) + FK (project_id) -> projects NOT VALID + VALIDATE."""
        conn = self.connect(dbname)
        pid = q1(conn, "SELECT pg_backend_pid()")
        f = {}
        peak = {}

        def t(sql, part=None):
            r = timed(conn, sql, pid=pid)
            m = r.get("memory") or {}
            if part and m.get("available"):
                peak[part] = max(peak.get(part, 0), m.get("peak_rss_anon_kb") or 0)
            return r["seconds"]

        f["upgrade_rewrite_legacy"] = t("VACUUM FULL public.project_phases", "upgrade")
        f["project_phases_heap_legacy"] = q1(conn, "SELECT pg_relation_size('public.project_phases')")
        q(conn, "ALTER TABLE public.resource_assignments DROP CONSTRAINT resource_assignments_project_phase_id_fkey")
        q(conn, "DROP INDEX public.ix_resource_assignments_project_phase_id")
        alt = {"vacuum_full": t("VACUUM FULL public.resource_assignments", "downgrade_alt")}
        alt["create_index"] = t("CREATE INDEX ix_resource_assignments_project_phase_id "
                                "ON public.resource_assignments (project_phase_id)", "downgrade_alt")
        alt["fk_validate"] = t("ALTER TABLE public.resource_assignments ADD CONSTRAINT "
                               "resource_assignments_project_phase_id_fkey FOREIGN KEY (project_phase_id) "
                               "REFERENCES public.project_phases(id) NOT VALID")
        alt["fk_validate"] += t("ALTER TABLE public.resource_assignments VALIDATE CONSTRAINT "
                                "resource_assignments_project_phase_id_fkey", "downgrade_alt")
        alt["heap_bytes"] = q1(conn, "SELECT pg_relation_size('public.resource_assignments')")
        alt["seconds"] = round(alt["vacuum_full"] + alt["create_index"] + alt["fk_validate"], 4)
        f["downgrade_alt"] = alt

        q(conn, "SELECT phasemig_purge_archive('public')")
        q(conn, "SELECT phasemig_upgrade('public', restore => false)")
        q(conn, "DROP INDEX public.ix_project_phases_start_date, public.ix_project_phases_end_date")
        f["upgrade_rewrite_upgraded"] = t("VACUUM FULL public.project_phases")
        f["project_phases_heap_upgraded"] = q1(conn, "SELECT pg_relation_size('public.project_phases')")
        ix = t("CREATE INDEX ix_project_phases_start_date ON public.project_phases (start_date)", "upgrade")
        ix += t("CREATE INDEX ix_project_phases_end_date ON public.project_phases (end_date)", "upgrade")
        f["upgrade_indexes"] = round(ix, 4)
        f["upgrade"] = {"seconds": round(f["upgrade_rewrite_legacy"] + ix, 4),
                        "vacuum_full": f["upgrade_rewrite_legacy"], "create_indexes": round(ix, 4)}
        f["upgrade_alt"] = {"seconds": round(f["upgrade_rewrite_upgraded"] + ix, 4),
                            "vacuum_full": f["upgrade_rewrite_upgraded"], "create_indexes": round(ix, 4)}

        d = {"heap_bytes_before": q1(conn, "SELECT pg_relation_size('public.resource_assignments')")}
        d["vacuum_full"] = t("VACUUM FULL public.resource_assignments", "downgrade")
        d["heap_bytes"] = q1(conn, "SELECT pg_relation_size('public.resource_assignments')")
        d["create_index"] = t("CREATE INDEX bench_floor_ix ON public.resource_assignments (project_id)",
                              "downgrade")
        d["fk_validate"] = t("ALTER TABLE public.resource_assignments ADD CONSTRAINT bench_floor_fk "
                             "FOREIGN KEY (project_id) REFERENCES public.projects(id) NOT VALID")
        d["fk_validate"] += t("ALTER TABLE public.resource_assignments VALIDATE CONSTRAINT bench_floor_fk",
                              "downgrade")
        d["seconds"] = round(d["vacuum_full"] + d["create_index"] + d["fk_validate"], 4)
        f["downgrade"] = d
        f["peak_rss_anon_kb"] = peak   # per floor, the backend's peak (index sorts use maintenance_work_mem)
        conn.close()
        return f

    # ---- comparisons between phasemig's and the reference's results
    def compare(self, dbs, pairs):
        """dbs: {label: database}; pairs: [(label_a, label_b)].  For each pair
        and each of the three tables: shape (columns with type and NOT NULL,
        constraints, indexes) and rows (digest over the columns both have,
        per bucket of ids; differing buckets are fetched and diffed row by
        row, up to 64 buckets).  Returns {"seconds", "differences"}."""
        t0 = time.perf_counter()
        conns = {lab: self.connect(name) for lab, name in dbs.items()}
        shapes = {lab: {t: table_shape(c, t) for t in TABLES} for lab, c in conns.items()}
        colnames = {lab: {t: column_names(c, t) for t in TABLES} for lab, c in conns.items()}
        cache = {}

        def dig(lab, t, cols):
            key = (lab, t, tuple(cols))
            if key not in cache:
                cache[key] = digest(conns[lab], t, cols)
            return cache[key]

        out = {}
        for la, lb in pairs:
            pair = {}
            for t in TABLES:
                d = {}
                sa, sb = shapes[la][t], shapes[lb][t]
                for part in ("columns", "constraints", "indexes"):
                    pa = {tuple(x) for x in (sa or {}).get(part, [])}
                    pb = {tuple(x) for x in (sb or {}).get(part, [])}
                    if pa != pb:
                        d[f"{part}_only_in_{la}"] = sorted(map(list, pa - pb))
                        d[f"{part}_only_in_{lb}"] = sorted(map(list, pb - pa))
                    elif part == "columns" and [x[0] for x in sa[part]] != [x[0] for x in sb[part]]:
                        d["column_order"] = {la: [x[0] for x in sa[part]], lb: [x[0] for x in sb[part]]}
                cols = sorted(set(colnames[la][t]) & set(colnames[lb][t]))
                da, db_ = dig(la, t, cols), dig(lb, t, cols)
                na = sum(v[0] for v in da.values())
                nb = sum(v[0] for v in db_.values())
                if na != nb:
                    d["row_count"] = {la: na, lb: nb}
                bad = sorted(b for b in set(da) | set(db_) if da.get(b) != db_.get(b))
                if bad:
                    look = bad[:64]
                    ra = bucket_rows(conns[la], t, cols, look)
                    rb = bucket_rows(conns[lb], t, cols, look)
                    diff_ids = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
                    d["buckets_differing"] = f"{len(bad)} of {BUCKETS}"
                    d["rows_differing"] = len(diff_ids) if len(bad) <= 64 else f">= {len(diff_ids)}"
                    d["compared_columns"] = cols
                    d["samples"] = [{"id": k, la: ra.get(k), lb: rb.get(k)} for k in diff_ids[:5]]
                if d:
                    pair[t] = d
            alembic = {lab: q(conns[lab], "SELECT version_num FROM public.alembic_version ORDER BY 1")
                       for lab in (la, lb)}
            if alembic[la] != alembic[lb]:
                pair["alembic_version"] = {"values": {k: [r[0] for r in v] for k, v in alembic.items()}}
            if pair:
                out[f"{la} vs {lb}"] = pair
        for c in conns.values():
            c.close()
        return {"seconds": round(time.perf_counter() - t0, 3), "differences": out}

    def compare_summaries(self, pm, ref):
        """Counts in the two contenders' summaries and verify results."""
        diffs = []
        up_p, up_r = pm["upgrade"]["summary"], ref["upgrade"]["summary"]
        if up_p.get("phases_by_name") != up_r.get("phases"):
            diffs.append(f"upgrade phases by name: phasemig {up_p.get('phases_by_name')}, ref {up_r.get('phases')}")
        for kp, kr in (("projects_without_phases", "projects_without_phases"), ("phases", "phases_total"),
                       ("projects", "projects")):
            if up_p.get(kp) != up_r.get(kr):
                diffs.append(f"upgrade {kp}: phasemig {up_p.get(kp)}, ref {up_r.get(kr)}")
        a_p = (up_p.get("assignments") or {}).get("total")
        if a_p != up_r.get("assignments"):
            diffs.append(f"upgrade assignments: phasemig {a_p}, ref {up_r.get('assignments')}")
        if {k: str(v) for k, v in (up_p.get("budgets") or {}).items()} != \
                {k: str(v) for k, v in (up_r.get("budgets") or {}).items()}:
            diffs.append(f"upgrade budgets: phasemig {up_p.get('budgets')}, ref {up_r.get('budgets')}")

        def nums(s):
            return [int(x.replace(",", "")) for x in re.findall(r"\d[\d,]*", s or "")]

        vp = {r[0]: r for r in pm["verify"]["checks"]}
        vr = {r[0]: r for r in ref["verify"]["checks"]}
        if set(vp) != set(vr):
            diffs.append(f"verify check numbers: phasemig {sorted(vp)}, ref {sorted(vr)}")
        for no in sorted(set(vp) & set(vr)):
            if vp[no][2] != vr[no][2]:
                diffs.append(f"verify check {no} ({vp[no][1]}): phasemig passed={vp[no][2]} ({vp[no][3]}), "
                             f"ref passed={vr[no][2]} ({vr[no][3]})")
            if no in (5, 9) and nums(vp[no][3]) != nums(vr[no][3]):
                diffs.append(f"verify check {no} numbers: phasemig '{vp[no][3]}', ref '{vr[no][3]}'")
        dp, dr = pm["downgrade"]["summary"], ref["downgrade"]["summary"]
        ap, ar = dp.get("assignments") or {}, dr.get("assignments") or {}
        for kp, kr in (("total", "total"), ("restored", "restored"), ("matched", "matched"),
                       ("outside", "outside_assigned_to_first_phase")):
            if ap.get(kp) != ar.get(kr):
                diffs.append(f"downgrade assignments {kp}: phasemig {ap.get(kp)}, ref {ar.get(kr)}")
        if dp.get("phases_by_type") != dr.get("phase_types"):
            diffs.append(f"downgrade phase types: phasemig {dp.get('phases_by_type')}, ref {dr.get('phase_types')}")
        return diffs

    # ---- the seed's method: one query per row, from Python
    def seed_method(self, dbname, n_projects, n_assign):
        """Alembic-style loops on a sample, in a transaction rolled back at
        the end.  Upgrade: per project, SELECT its phases, then one UPDATE per
        phase (name, dates computed in Python, SPEC §2).  Downgrade (after a
        reference upgrade, not timed): per assignment, SELECT its phase by
        date (else the first phase) and UPDATE resource_assignments.
        Per-row rates are extrapolated to every size."""
        a = self.args
        conn = self.connect(dbname)
        out = {}
        # upgrade loop
        n_p = min(a.seed_projects, n_projects)
        conn.autocommit = False
        cur = conn.cursor()
        cur.execute("ALTER TABLE public.project_phases ADD COLUMN name varchar(100), ADD COLUMN start_date date, "
                    "ADD COLUMN end_date date, ADD COLUMN description varchar(500)")
        cur.execute("SELECT id, start_date, end_date FROM public.projects LIMIT %s", (n_p,))
        projects = cur.fetchall()
        n_ph = 0
        t0 = time.perf_counter()
        for pid_, s, e in projects:
            cur.execute("SELECT id, phase_type::text FROM public.project_phases WHERE project_id = %s "
                        "ORDER BY CASE WHEN lower(phase_type::text) = 'planning' THEN 0 ELSE 1 END, "
                        "created_at NULLS LAST, id", (pid_,))
            phases = cur.fetchall()
            k = len(phases)
            d = (e - s).days
            seen = {}
            for i, (ph_id, ptype) in enumerate(phases, start=1):
                lo = s if i == 1 else s + datetime.timedelta(days=(i - 1) * d // k + 1)
                hi = e if i == k else s + datetime.timedelta(days=i * d // k)
                base = "Planning" if ptype.lower() == "planning" else "Execution"
                seen[base] = seen.get(base, 0) + 1
                name = base if seen[base] == 1 else f"{base} {seen[base]}"
                cur.execute("UPDATE public.project_phases SET name = %s, start_date = %s, end_date = %s "
                            "WHERE id = %s", (name, lo, hi, ph_id))
                n_ph += 1
        dt = time.perf_counter() - t0
        conn.rollback()
        out["upgrade"] = {"sample_projects": len(projects), "sample_phases": n_ph, "seconds": round(dt, 3),
                          "per_project_s": dt / max(1, len(projects)),
                          "queries": len(projects) + n_ph}
        log(f"  seed upgrade loop: {len(projects)} projects, {n_ph} phases in {dt:.2f} s")

        # downgrade loop, on the reference's upgrade of the same data
        conn.autocommit = True
        q(conn, "SELECT phasemig_ref.upgrade('public')")
        id_type = q1(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'public.project_phases'::regclass AND attname = 'id'")
        conn.autocommit = False
        cur = conn.cursor()
        n_a = min(a.seed_assignments, n_assign)
        cur.execute(f"ALTER TABLE public.resource_assignments ADD COLUMN project_phase_id {id_type}")
        cur.execute("SELECT id, project_id, assignment_date FROM public.resource_assignments LIMIT %s", (n_a,))
        assigns = cur.fetchall()
        outside = 0
        t0 = time.perf_counter()
        for aid, pid_, day in assigns:
            cur.execute("SELECT id FROM public.project_phases WHERE project_id = %s "
                        "AND start_date <= %s AND end_date >= %s ORDER BY start_date, id LIMIT 1",
                        (pid_, day, day))
            row = cur.fetchone()
            if row is None:
                outside += 1
                cur.execute("SELECT id FROM public.project_phases WHERE project_id = %s "
                            "ORDER BY start_date, id LIMIT 1", (pid_,))
                row = cur.fetchone()
            cur.execute("UPDATE public.resource_assignments SET project_phase_id = %s WHERE id = %s",
                        (row[0] if row else None, aid))
        dt = time.perf_counter() - t0
        conn.rollback()
        conn.autocommit = True
        out["downgrade"] = {"sample_assignments": len(assigns), "outside": outside, "seconds": round(dt, 3),
                            "per_assignment_s": dt / max(1, len(assigns)),
                            "queries": 2 * len(assigns) + outside}
        log(f"  seed downgrade loop: {len(assigns)} assignments in {dt:.2f} s")
        conn.close()
        return out

    # ---- restore => false, both contenders, same data (smallest size)
    def no_restore_check(self, db_pm, db_ref):
        """db_ref is in the reference's upgraded state already (seed run);
        db_pm is a fresh copy.  Both downgrade with restore => false; the
        resulting rows are compared."""
        out = {}
        c = self.connect(db_pm)
        q(c, "SELECT phasemig_upgrade('public')")
        c.close()
        c, pid = self.session(db_pm, "phasemig")
        r = timed(c, "SELECT phasemig_downgrade('public', restore => false)", pid=pid)
        out["phasemig"] = {"seconds": r["seconds"], "summary": r["_rows"][0][0],
                           "warnings": [n for n in r["_notices"] if "WARNING" in n]}
        c.close()
        c, pid = self.session(db_ref, "ref")
        # the session's client_min_messages is the default: the reference
        # raises its WARNING under SET client_min_messages = warning
        r = timed(c, "SELECT phasemig_ref.downgrade('public', restore => false)", pid=pid)
        out["ref"] = {"seconds": r["seconds"], "summary": r["_rows"][0][0],
                      "warnings": [n for n in r["_notices"] if "WARNING" in n]}
        c.close()
        out["compare"] = self.compare({"phasemig": db_pm, "ref": db_ref}, [("phasemig", "ref")])
        ap = out["phasemig"]["summary"].get("assignments") or {}
        ar = out["ref"]["summary"].get("assignments") or {}
        out["counts"] = {"phasemig": {k: ap.get(k) for k in ("restored", "matched", "outside")},
                         "ref": {"restored": ar.get("restored"), "matched": ar.get("matched"),
                                 "outside": ar.get("outside_assigned_to_first_phase")}}
        return out

    # ---- cancel latency (largest size)
    def fingerprint(self, dbname):
        c = self.connect(dbname)
        fp = {"state": q1(c, "SELECT phasemig_status('public')->>'state'"),
              "alembic": q(c, "SELECT version_num FROM public.alembic_version ORDER BY 1")}
        for t in TABLES:
            fp[t] = {"shape": table_shape(c, t),
                     "filenode": q1(c, "SELECT pg_relation_filenode(%s)", (f"public.{t}",)),
                     "rows": q1(c, f"SELECT count(*) || ':' || coalesce(sum(hashtextextended(x::text, 0)), 0) "
                                   f"FROM public.{t} x")}
        for t in ("phasemig_run", "phasemig_phase_archive", "phasemig_assignment_archive",
                  "phasemig_object_archive"):
            fp[t] = q1(c, f"SELECT count(*) FROM {t}")
        c.close()
        return fp

    def cancel_one(self, dbname, step, expected):
        conn = self.connect(dbname)
        pid = q1(conn, "SELECT pg_backend_pid()")
        q(conn, "SELECT phasemig_status('public')")
        before = self.fingerprint(dbname)
        box = {}

        def run():
            try:
                with conn.cursor() as cur:
                    cur.execute(SQL["phasemig"][step])
                    cur.fetchall()
            except psycopg2.Error as e:
                box["error"] = e
            box["ended"] = time.perf_counter()

        th = threading.Thread(target=run, daemon=True)
        t_start = time.perf_counter()
        th.start()
        delay = self.args.cancel_at * expected
        th.join(delay)
        res = {"expected_seconds": round(expected, 3), "cancel_after_seconds": round(delay, 3)}
        if th.is_alive():
            t_cancel = time.perf_counter()
            res["cancel_sent"] = q1(self.admin, "SELECT pg_cancel_backend(%s)", (pid,))
            th.join(120)
            ended = box.get("ended")
            res["latency_seconds"] = round(ended - t_cancel, 4) if ended else None
            res["cancelled_at_seconds"] = round(t_cancel - t_start, 3)
        else:
            res["missed"] = True  # the step ended before the cancel
            res["latency_seconds"] = None
        err = box.get("error")
        res["sqlstate"] = getattr(err, "pgcode", None)
        res["error"] = str(err).strip().splitlines()[0] if err else None
        try:
            res["session_works"] = q1(conn, "SELECT 1") == 1
        except psycopg2.Error:
            res["session_works"] = False
        conn.close()
        after = self.fingerprint(dbname)
        res["state_unchanged"] = before == after
        if before != after:
            res["changed"] = sorted(k for k in before if before[k] != after.get(k))
        lat = res["latency_seconds"]
        res["pass"] = bool(lat is not None and lat < CANCEL_LIMIT and res["sqlstate"] == "57014"
                           and res["state_unchanged"] and res["session_works"])
        log(f"  cancel {step}: after {res.get('cancelled_at_seconds')} s of ~{expected:.2f} s -> "
            f"returned {lat} s later, SQLSTATE {res['sqlstate']}, unchanged {res['state_unchanged']}")
        return res

    def cancel_tests(self, dbname, t_up, t_down):
        out = {"upgrade": self.cancel_one(dbname, "upgrade", t_up)}
        c = self.connect(dbname)
        t = timed(c, SQL["phasemig"]["upgrade"])
        out["upgrade_after_cancel_seconds"] = t["seconds"]
        c.close()
        out["downgrade"] = self.cancel_one(dbname, "downgrade", t_down)
        return out

    # ---- per size
    def run_size(self, n_projects, per, smallest, largest):
        a = self.args
        label = f"{n_projects}:{per}"
        t_size = time.perf_counter()
        log(f"size {label}: generating {n_projects} projects, {n_projects * per} assignments ({a.id_type})")
        res = {"size": label, "projects": n_projects, "assignments_per_project": per,
               "assignments": n_projects * per, "id_type": a.id_type, "load_start": loadavg()}
        so = phasemig_so()
        res["phasemig_so_md5"] = so["md5"] if so else None
        res["template"] = self.build_template(n_projects, per)
        res["phases"] = res["template"]["rows"]["project_phases"]
        log(f"  generated in {res['template']['generate_seconds']:.1f} s: {res['template']['rows']}")
        reps = []
        for rep in range(a.repeat):
            rr = {"rep": rep, "copies": {}}
            order = ("phasemig", "ref") if rep % 2 == 0 else ("ref", "phasemig")
            db = {"phasemig": self.dbname("pm"), "ref": self.dbname("ref"), "floor": self.dbname("floor")}
            for k, name in db.items():
                rr["copies"][k] = self.copy_db(name)
            for who in order:
                rr[who] = {}
                self.up_and_verify(who, db[who], rr[who])
            if rep == 0 and not a.no_compare:
                log("  comparing the upgraded rows")
                cmp = self.compare({"phasemig": db["phasemig"], "ref": db["ref"]}, [("phasemig", "ref")])
                rr["compare_upgraded"] = cmp
                for pair, d in cmp["differences"].items():
                    self.report_diff(f"{label}: after upgrade, {pair}", d)
            for who in order:
                self.downgrade(who, db[who], rr[who])
            if rep == 0:
                diffs = self.compare_summaries(rr["phasemig"], rr["ref"])
                rr["summary_differences"] = diffs
                for d in diffs:
                    self.problem(f"{label}: {d}")
            if rep == 0 and not a.no_compare:
                log("  comparing the downgraded rows (and with the generated ones)")
                cmp = self.compare({"phasemig": db["phasemig"], "ref": db["ref"], "generated": self.dbname("tpl")},
                                   [("phasemig", "ref"), ("phasemig", "generated"), ("ref", "generated")])
                rr["compare_downgraded"] = cmp
                for pair, d in cmp["differences"].items():
                    self.report_diff(f"{label}: after downgrade, {pair}", d)
            log("  floors")
            rr["floors"] = self.floors(db["floor"])
            rr["load_end"] = loadavg()
            reps.append(rr)
            if not a.keep:
                for name in db.values():
                    self.drop_db(name)
        res["reps"] = reps

        def best(f):
            vals = [f(r) for r in reps]
            vals = [v for v in vals if v is not None]
            return min(vals) if vals else None

        def med(f):
            vals = sorted(v for v in (f(r) for r in reps) if v is not None)
            return vals[len(vals) // 2] if vals else None

        b = {}
        for step in STEPS:
            e = {}
            e["phasemig"] = best(lambda r: r["phasemig"][step]["seconds"])
            e["ref"] = best(lambda r: r["ref"][step]["seconds"])
            e["phasemig_median"] = med(lambda r: r["phasemig"][step]["seconds"])
            e["ref_median"] = med(lambda r: r["ref"][step]["seconds"])
            if step == "verify":
                e["floor"] = best(lambda r: r["phasemig"]["verify_floor"]["seconds"])
                e["floor_parallel"] = best(lambda r: r["phasemig"]["verify_floor"]["parallel_best"])
                e["floor_on_ref_state"] = best(lambda r: r["ref"]["verify_floor"]["seconds"])
            else:
                e["floor"] = best(lambda r: r["floors"][step]["seconds"])
                e["floor_alt"] = best(lambda r: r["floors"][step + "_alt"]["seconds"])
            e["ratio"] = e["phasemig"] / e["floor"] if e["floor"] else None
            e["ref_ratio"] = e["ref"] / e["floor"] if e["floor"] else None
            e["speedup"] = e["ref"] / e["phasemig"] if e["phasemig"] else None
            mem = [r["phasemig"][step].get("memory") or {} for r in reps]
            pk = [m.get("peak_rss_anon_kb") for m in mem if m.get("available")]
            e["peak_rss_anon_mb"] = round(max(pk) / 1024, 1) if pk else None
            hw = [m.get("vm_hwm_kb") for m in mem if m.get("available") and m.get("vm_hwm_kb")]
            e["vm_hwm_mb"] = round(max(hw) / 1024, 1) if hw else None
            mem = [r["ref"][step].get("memory") or {} for r in reps]
            pk = [m.get("peak_rss_anon_kb") for m in mem if m.get("available")]
            e["ref_peak_rss_anon_mb"] = round(max(pk) / 1024, 1) if pk else None
            if step != "verify":
                pk = [(r["floors"].get("peak_rss_anon_kb") or {}).get(step) for r in reps]
                pk = [x for x in pk if x]
                e["floor_peak_rss_anon_mb"] = round(max(pk) / 1024, 1) if pk else None
            b[step] = e
        res["best"] = b

        if smallest and not a.no_seed:
            log("  seed method (one query per row) on a sample")
            name = self.dbname("seed")
            self.copy_db(name)
            res["seed"] = self.seed_method(name, n_projects, n_projects * per)
            if not a.no_compare:
                log("  restore => false on both contenders")
                name2 = self.dbname("pm2")
                self.copy_db(name2)
                nr = self.no_restore_check(name2, name)
                res["no_restore"] = nr
                for pair, d in nr["compare"]["differences"].items():
                    self.report_diff(f"{label}: after downgrade(restore => false), {pair}", d)
                if nr["counts"]["phasemig"] != nr["counts"]["ref"]:
                    self.problem(f"{label}: downgrade(restore => false) counts differ: {nr['counts']}")
                if not a.keep:
                    self.drop_db(name2)
            if not a.keep:
                self.drop_db(name)

        if largest and not a.no_cancel:
            log("  cancel latency")
            name = self.dbname("cancel")
            self.copy_db(name)
            res["cancel"] = self.cancel_tests(name, b["upgrade"]["phasemig"], b["downgrade"]["phasemig"])
            if not a.keep:
                self.drop_db(name)
        if not a.keep:
            self.drop_db(self.dbname("tpl"))
        res["load_end"] = loadavg()
        so = phasemig_so()
        if so and res["phasemig_so_md5"] and so["md5"] != res["phasemig_so_md5"]:
            self.problem(f"{label}: phasemig.so was re-installed while this size ran "
                         f"({res['phasemig_so_md5'][:8]} -> {so['md5'][:8]}): its figures may mix two builds")
        res["wall_seconds"] = round(time.perf_counter() - t_size, 1)
        log(f"size {label} done in {res['wall_seconds']:.1f} s")
        return res


# --------------------------------------------------------------------------
# report: table, verdicts, JSON, plot
# --------------------------------------------------------------------------

def extrapolate_seed(results):
    seed = next((r["seed"] for r in results if r.get("seed")), None)
    if not seed:
        return
    src = next(r["size"] for r in results if r.get("seed"))
    for r in results:
        r["best"]["upgrade"]["seed_extrapolated"] = seed["upgrade"]["per_project_s"] * r["projects"]
        r["best"]["downgrade"]["seed_extrapolated"] = seed["downgrade"]["per_assignment_s"] * r["assignments"]
        r["best"]["upgrade"]["seed_extrapolated_from"] = src
        r["best"]["downgrade"]["seed_extrapolated_from"] = src


def verdicts(results):
    out = []
    for r in results:
        for step in STEPS:
            e = r["best"][step]
            if e["ratio"] is not None:
                out.append({"size": r["size"], "step": step, "target": f"phasemig <= {TARGET_FLOOR[step]}x floor",
                            "value": round(e["ratio"], 2), "pass": e["ratio"] <= TARGET_FLOOR[step]})
            if e["speedup"] is not None:
                out.append({"size": r["size"], "step": step,
                            "target": f"phasemig >= {TARGET_SPEEDUP}x faster than plain SQL",
                            "value": round(e["speedup"], 2), "pass": e["speedup"] >= TARGET_SPEEDUP})
        for step, c in (r.get("cancel") or {}).items():
            if isinstance(c, dict):
                out.append({"size": r["size"], "step": step, "target": f"cancel honoured < {CANCEL_LIMIT} s, "
                            "SQLSTATE 57014, nothing changed",
                            "value": c.get("latency_seconds"), "pass": c.get("pass")})
    return out


def print_table(results, meta):
    hdr = ("size", "assignments", "step", "phasemig s", "floor s", "x floor", "target", "plain SQL s",
           "speed-up", "seed s (extrap.)", "peak RssAnon MB", "verdict")
    rows = []
    for r in results:
        for step in STEPS:
            e = r["best"][step]
            v = []
            if e["ratio"] is not None:
                v.append("floor " + ("PASS" if e["ratio"] <= TARGET_FLOOR[step] else "FAIL"))
            if e["speedup"] is not None:
                v.append("3x " + ("PASS" if e["speedup"] >= TARGET_SPEEDUP else "FAIL"))
            rows.append((r["size"], f"{r['assignments']:,}", step, fmt_s(e["phasemig"]), fmt_s(e["floor"]),
                         f"{e['ratio']:.2f}" if e["ratio"] else "-", f"<= {TARGET_FLOOR[step]}",
                         fmt_s(e["ref"]), f"{e['speedup']:.2f}" if e["speedup"] else "-",
                         (fmt_s(e["seed_extrapolated"]) + "*") if e.get("seed_extrapolated") else "n/a",
                         f"{e['peak_rss_anon_mb']}" if e["peak_rss_anon_mb"] is not None else "-",
                         ", ".join(v)))
    w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(hdr))
    print()
    print(f"phasemig benchmark {meta['started']}  id type {meta['id_type']}  repeat {meta['repeat']} "
          f"(best of N)  load average start {meta['load_start']} end {meta.get('load_end')}")
    print(line)
    print("-" * len(line))
    for x in rows:
        print("  ".join(str(v).rjust(w[i]) if i not in (0, 2, 6, 11) else str(v).ljust(w[i])
                        for i, v in enumerate(x)))
    seed_src = next((r for r in results if r.get("seed")), None)
    if seed_src:
        s = seed_src["seed"]
        print(f"* seed method = one query per row from Python (Alembic style), EXTRAPOLATED per row from a "
              f"sample at size {seed_src['size']}: upgrade {s['upgrade']['sample_projects']} projects in "
              f"{s['upgrade']['seconds']} s, downgrade {s['downgrade']['sample_assignments']} assignments in "
              f"{s['downgrade']['seconds']} s; per-row loops only, DDL not included.")
    print("floors: upgrade = VACUUM FULL project_phases (legacy) + 2 date-index builds; verify = count(*) of "
          "resource_assignments, one process; downgrade = VACUUM FULL resource_assignments (upgraded state) "
          "+ 1 index + 1 FK validation.  See bench/README.md.")
    extra = []
    for r in results:
        bv = r["best"]["verify"]
        bu, bd = r["best"]["upgrade"], r["best"]["downgrade"]
        extra.append(f"  {r['size']}: verify floor parallel {fmt_s(bv.get('floor_parallel'))} s; "
                     f"alt floors: upgrade (rewrite of upgraded rows) {fmt_s(bu.get('floor_alt'))} s "
                     f"(x{bu['phasemig'] / bu['floor_alt']:.2f}), downgrade (legacy state, real column and FK) "
                     f"{fmt_s(bd.get('floor_alt'))} s (x{bd['phasemig'] / bd['floor_alt']:.2f}); "
                     f"plain SQL / floor: up {bu['ref_ratio']:.1f}, verify {bv['ref_ratio']:.1f}, "
                     f"down {bd['ref_ratio']:.1f}; wall {r['wall_seconds']} s")
        mem = []
        for step in STEPS:
            e = r["best"][step]
            if e.get("peak_rss_anon_mb") is not None:
                per_ph = e["peak_rss_anon_mb"] * 1048576 / max(1, r["phases"])
                per_as = e["peak_rss_anon_mb"] * 1048576 / max(1, r["assignments"])
                mem.append(f"{step} {e['peak_rss_anon_mb']} MB ({per_ph:.0f} B/phase, {per_as:.0f} B/assignment; "
                           f"plain SQL {e.get('ref_peak_rss_anon_mb')} MB"
                           + (f", floor {e['floor_peak_rss_anon_mb']} MB" if e.get("floor_peak_rss_anon_mb") else "")
                           + ")")
        if mem:
            extra.append(f"  {r['size']}: phasemig peak RssAnon: " + "; ".join(mem))
        st = []
        for step in STEPS:
            rep = min(r["reps"], key=lambda x: x["phasemig"][step]["seconds"])
            tm = rep["phasemig"][step].get("timings") or rep["phasemig"][step].get("stage_ms") or {}
            parts = ", ".join(f"{k} {v / 1000:.2f}" for k, v in tm.items() if k != "total" and v >= 1)
            st.append(f"{step}: {parts}")
        extra.append(f"  {r['size']}: phasemig stages (s): " + "; ".join(st))
        sp = []
        for step in STEPS:
            pk = {}
            for rep in r["reps"]:
                for k, v in ((rep["phasemig"][step].get("memory") or {}).get("stage_peak_rss_anon_kb") or {}).items():
                    pk[k] = max(pk.get(k, 0), v)
            if pk:
                sp.append(f"{step}: " + ", ".join(f"{k} {v / 1024:.0f}" for k, v in pk.items()))
        if sp:
            extra.append(f"  {r['size']}: phasemig peak RssAnon per stage (MB, 50 ms samples): " + "; ".join(sp))
        c = r.get("cancel")
        if c:
            for step in ("upgrade", "downgrade"):
                x = c[step]
                extra.append(f"  {r['size']}: cancel {step} at {x.get('cancelled_at_seconds')} s "
                             f"(~{int(100 * meta['cancel_at'])}% of {x['expected_seconds']} s): returned after "
                             f"{x['latency_seconds']} s, SQLSTATE {x['sqlstate']}, state unchanged "
                             f"{x['state_unchanged']} -> {'PASS' if x['pass'] else 'FAIL'}"
                             + (" (missed: the step ended first)" if x.get("missed") else ""))
    print("\n".join(extra))


def plot(results, path, meta):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not available: no plot")
        return None
    xs = [r["assignments"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    for ax, step in zip(axes, STEPS):
        b = [r["best"][step] for r in results]
        ax.plot(xs, [e["phasemig"] for e in b], "o-", color="tab:blue", label="phasemig")
        ax.plot(xs, [e["ref"] for e in b], "s-", color="tab:orange", label="plain SQL (phasemig_ref)")
        ax.plot(xs, [e["floor"] for e in b], "^-", color="tab:green", label="physical floor (SPEC §7)")
        ax.plot(xs, [e["floor"] * TARGET_FLOOR[step] for e in b], "--", color="tab:green", alpha=0.5,
                label=f"target: {TARGET_FLOOR[step]}x floor")
        ax.plot(xs, [e["ref"] / TARGET_SPEEDUP for e in b], ":", color="tab:orange", alpha=0.7,
                label=f"target: plain SQL / {TARGET_SPEEDUP:g}")
        if all(e.get("seed_extrapolated") for e in b):
            ax.plot(xs, [e["seed_extrapolated"] for e in b], "x:", color="tab:red",
                    label="seed method, one query per row (EXTRAPOLATED)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(step)
        ax.set_xlabel("assignments")
        ax.set_ylabel("seconds (best of %d)" % meta["repeat"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"phasemig vs plain SQL vs physical floor ({meta['id_type']} ids, {meta['started']}, "
                 f"load avg {meta['load_start'][0] if meta['load_start'] else '?'}"
                 f"-{meta['load_end'][0] if meta.get('load_end') else '?'})", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def clean_for_json(o):
    if isinstance(o, dict):
        return {str(k): clean_for_json(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [clean_for_json(v) for v in o]
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat()
    if isinstance(o, float):
        return round(o, 6)
    if isinstance(o, (str, int, bool)) or o is None:
        return o
    return str(o)


def file_md5(path):
    try:
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def phasemig_so():
    try:
        lib = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True, text=True).stdout.strip()
        p = os.path.join(lib, "phasemig.so")
        return {"path": p, "md5": file_md5(p), "mtime": datetime.datetime.fromtimestamp(
            os.path.getmtime(p)).isoformat(timespec="seconds")}
    except (OSError, FileNotFoundError):
        return None


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=parse_sizes, default=None,
                    help="projects:assignments_per_project, comma-separated "
                         "(default 10000:10,30000:10,100000:10)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: sizes 2000:10,5000:10, every contender, < 2 minutes")
    ap.add_argument("--id-type", choices=("uuid", "bigint"), default="uuid")
    ap.add_argument("--seed", type=float, default=0.42, help="generator seed (default 0.42)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per size, each on fresh copies, contenders interleaved; "
                         "the table reports the best (default 1)")
    ap.add_argument("--host", default=os.environ.get("PGHOST"))
    ap.add_argument("--port", default=os.environ.get("PGPORT"))
    ap.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    ap.add_argument("--db-prefix", default="pmbench", help="prefix of the databases it makes and drops")
    ap.add_argument("--seed-assignments", type=int, default=10000,
                    help="sample of the seed method's downgrade loop (default 10000)")
    ap.add_argument("--seed-projects", type=int, default=2000,
                    help="sample of the seed method's upgrade loop (default 2000)")
    ap.add_argument("--cancel-at", type=float, default=0.4,
                    help="cancel after this fraction of the step's measured time (default 0.4)")
    ap.add_argument("--no-seed", action="store_true", help="skip the seed method")
    ap.add_argument("--no-cancel", action="store_true", help="skip the cancel test")
    ap.add_argument("--no-compare", action="store_true",
                    help="skip comparing the rows of phasemig and the reference (costly at 10M)")
    ap.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for JSON and PNG")
    ap.add_argument("--plot", default=None,
                    help="PNG path (default <out>/scaling.png; with --quick <out>/scaling-quick.png)")
    a = ap.parse_args()
    if a.sizes is None:
        a.sizes = parse_sizes("2000:10,5000:10" if a.quick else "10000:10,30000:10,100000:10")
    a.sizes = sorted(a.sizes, key=lambda s: (s[0] * s[1], s[0]))
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")

    bench = Bench(a)
    started = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    meta = {"started": started, "argv": sys.argv[1:], "sizes": [f"{p}:{n}" for p, n in a.sizes],
            "id_type": a.id_type, "seed": a.seed, "repeat": a.repeat, "cancel_at": a.cancel_at,
            "load_start": loadavg(), "host": platform.node(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "settings": bench.settings(),
            "phasemig_so": phasemig_so(), "git_head": git_head(), "huge_pages": huge_pages(),
            "phasemig_version": q1(bench.admin, "SELECT default_version FROM pg_available_extensions "
                                                "WHERE name = 'phasemig'")}
    if meta["settings"].get("autovacuum") == "on":
        log("note: autovacuum is on; for quiet runs start the cluster with 'autovacuum = off'")
    if (meta["huge_pages"] or {}).get("HugePages_Total", "0") == "0":
        log("note: no huge pages reserved: shared memory on 4 kB pages costs every new backend a page fault per "
            "page of shared buffers it touches; as root, sysctl -w vm.nr_hugepages=320 before starting the cluster")
    log(f"sizes {meta['sizes']}, {a.id_type} ids, repeat {a.repeat}, load {meta['load_start']}")
    results, failed = [], []
    for i, (p, n) in enumerate(a.sizes):
        try:
            results.append(bench.run_size(p, n, smallest=(i == 0), largest=(i == len(a.sizes) - 1)))
        except (psycopg2.Error, OSError, KeyError, TypeError, ValueError) as e:
            # a step that fails is a finding, not the end of the run
            import traceback
            traceback.print_exc()
            bench.problem(f"size {p}:{n} failed: {type(e).__name__}: {str(e).strip()}")
            failed.append({"size": f"{p}:{n}", "error": f"{type(e).__name__}: {str(e).strip()}"})
            if bench.admin.closed:
                bench.admin = bench.connect("postgres")
            if not a.keep:
                for tag in ("pm", "ref", "floor", "seed", "pm2", "cancel", "tpl"):
                    bench.drop_db(bench.dbname(tag))
    if not results:
        print("no size completed", file=sys.stderr)
        return 1
    meta["load_end"] = loadavg()
    meta["seconds"] = round(time.perf_counter() - T0, 1)
    so = phasemig_so()
    meta["phasemig_so_end"] = so
    extrapolate_seed(results)
    v = verdicts(results)
    print_table(results, meta)
    print()
    print("targets:")
    for x in v:
        print(f"  {x['size']:>14s} {x['step']:9s} {x['target']:55s} {str(x['value']):>8s}  "
              f"{'PASS' if x['pass'] else 'FAIL'}")
    if bench.notes:
        print("\nnotes:")
        for p in bench.notes:
            print("  - " + p)
    if bench.problems:
        print("\nproblems seen:")
        for p in bench.problems:
            print("  - " + p)
    else:
        print("\nno differences between phasemig and the reference; both round trips gave back the generated rows")
    os.makedirs(a.out, exist_ok=True)
    png = a.plot or os.path.join(a.out, "scaling-quick.png" if a.quick else "scaling.png")
    meta["plot"] = plot(results, png, meta)
    doc = {"meta": meta, "targets": {"floor_ratio_max": TARGET_FLOOR, "speedup_min": TARGET_SPEEDUP,
                                     "cancel_seconds_max": CANCEL_LIMIT},
           "results": results, "failed_sizes": failed, "verdicts": v, "problems": bench.problems,
           "notes": bench.notes}
    path = os.path.join(a.out, f"{started}{'-quick' if a.quick else ''}.json")
    with open(path, "w") as f:
        json.dump(clean_for_json(doc), f, indent=1)
    print(f"\nJSON: {path}\nplot: {meta['plot']}\ntotal {meta['seconds']} s")
    bench.admin.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
