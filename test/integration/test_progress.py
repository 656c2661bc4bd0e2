"""Progress and stage messages (issue "Operations"): what a DBA sees of a long
step from a second session, and what the caller sees.

On 100,000 projects / 1,000,000 assignments (bench/generate.sql), a second
session polls phasemig_progress while the first runs a long upgrade, then a
long downgrade:

  * it sees the step, the schema and the stage names, each stage with its
    number (stage_no matches the stage's position among the stages the
    caller is told about) and `stages` equal to the number of stages the
    step has;
  * every stage that lasted 200 ms or more (by its own message) was seen;
  * in stages that go through the rows one by one (the fills, the
    preflight scans), rows_done of rows_total increases, never decreases,
    and stays within rows_total; such a stage that lasts 300 ms or more
    shows at least two different counts, and each step shows an increasing
    count in at least one stage;
  * when the call returns, the session is no longer listed.

With the stage-message setting on, the caller receives one message
"phasemig <step>: <stage> done in N ms" per stage, in order, for upgrade and
downgrade; with it off -- the default, and explicitly -- none at all
(pg_regress output stays deterministic).  The setting is phasemig.verbose as
first designed; when the build has phasemig.stage_messages (the rename that
avoids the SQL keyword VERBOSE) that is used instead, at level notice.

On the seed-shaped database also:
  * a step waiting for its locks is listed in stage "lock";
  * a step that failed (phasemig.fault_injection) is not listed afterwards
    as if it were still running.
"""
import contextlib
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

import psycopg2  # noqa: E402

R = pmtest.Result("test_progress")

N_PROJECTS = 100_000
PER_PROJECT = 10
SCHEMA = "big"
STAGES = {
    "upgrade": ["lock", "preflight", "archive", "phases", "indexes", "assignments", "alembic"],
    "downgrade": ["lock", "preflight", "archive", "assignments", "phases", "alembic"],
}
# Stages that call back per row (fill functions, streamed scans).  The
# upgrade's "archive" is one INSERT ... SELECT: nothing can report from it.
ROW_STAGES = {
    "upgrade": {"preflight", "phases"},
    "downgrade": {"preflight", "assignments", "phases"},
}
SEEN_IF_MS = 200.0
LONG_MS = 300.0
MESSAGE = re.compile(r"^NOTICE:  phasemig (upgrade|downgrade|verify): ([a-z_]+) done in (\d+(?:\.\d+)?) ms$")
PROGRESS_SQL = ("SELECT step, target_schema, stage, stage_no, stages, rows_done, rows_total, datname"
                "  FROM phasemig_progress WHERE pid = %s")


class Setting:
    """How to switch the stage messages on and off in this build."""

    def __init__(self, db):
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            cur.execute("LOAD 'phasemig'")
            cur.execute("SELECT name FROM pg_settings WHERE name IN ('phasemig.verbose', 'phasemig.stage_messages')")
            names = {r[0] for r in cur.fetchall()}
        if "phasemig.stage_messages" in names:
            self.name = "phasemig.stage_messages"
            self.on = "SET phasemig.stage_messages = notice"
            self.off = "SET phasemig.stage_messages = off"
        elif "phasemig.verbose" in names:
            self.name = "phasemig.verbose"
            # VERBOSE is an SQL keyword: the documented spelling must work.
            with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
                try:
                    cur.execute("SET phasemig.verbose = on")
                    plain = None
                except psycopg2.Error as e:
                    plain = e.pgerror.strip().splitlines()[0]
            R.check(plain is None, f"SET phasemig.verbose = on is accepted (got: {plain})")
            self.on = 'SET phasemig."verbose" = on'
            self.off = 'SET phasemig."verbose" = off'
        else:
            raise RuntimeError("neither phasemig.verbose nor phasemig.stage_messages exists")
        print(f"stage messages: {self.on}", flush=True)


def messages(conn):
    return [n.strip() for n in conn.notices]


def run_observed(db, step_sql, setting_sql):
    """Runs step_sql in one session, polling phasemig_progress for it from a
    second one; returns (summary, observations, messages, listed_after, took)."""
    a = pmtest.connect(db)
    b = pmtest.connect(db)
    ca, cb = a.cursor(), b.cursor()
    if setting_sql:
        ca.execute(setting_sql)
    del a.notices[:]
    pid = a.get_backend_pid()
    out = {}

    def call():
        t0 = time.monotonic()
        try:
            ca.execute(step_sql)
            out["summary"] = ca.fetchone()[0]
        except Exception as e:  # noqa: BLE001 - reported by the caller
            out["error"] = e
        out["took"] = time.monotonic() - t0

    th = threading.Thread(target=call, daemon=True)
    th.start()
    obs = []
    while th.is_alive():
        cb.execute(PROGRESS_SQL, (pid,))
        for r in cb.fetchall():
            obs.append(dict(zip(("step", "schema", "stage", "stage_no", "stages", "rows_done", "rows_total",
                                 "datname"), r)))
        time.sleep(0.005)  # leave the step a core of its own on a small machine
    th.join()
    cb.execute(PROGRESS_SQL, (pid,))
    listed_after = cb.fetchall()
    msgs = messages(a)
    a.close()
    b.close()
    if "error" in out:
        raise out["error"]
    return out["summary"], obs, msgs, listed_after, out["took"]


def check_step(step, db, summary, obs, msgs, listed_after, took):
    stages = STAGES[step]
    print(f"{step}: {took:.1f} s, {len(obs)} observations", flush=True)

    # What the caller is told.
    parsed = [MESSAGE.match(m) for m in msgs]
    R.check(all(parsed) and len(msgs) == len(stages),
            f"{step}: one message per stage, each 'phasemig {step}: <stage> done in N ms': {msgs}")
    done = [(m.group(2), float(m.group(3))) for m in parsed if m and m.group(1) == step]
    R.check([s for s, _ in done] == stages, f"{step}: messages name the stages {stages} in order: {done}")
    ms = dict(done)
    R.check(set((summary or {}).get("timings", {})) == set(stages) | {"total"},
            f"{step}: the summary's timings have the same stages: {(summary or {}).get('timings')}")

    # What the second session sees.
    R.check(len(obs) > 0, f"{step}: the second session saw the step in phasemig_progress")
    R.check(all(o["step"] == step and o["schema"] == SCHEMA and o["datname"] == db for o in obs),
            f"{step}: every row names the step, the schema and the database")
    R.check(all(o["stage"] in stages for o in obs),
            f"{step}: every stage seen is one of {stages}: {sorted({o['stage'] for o in obs})}")
    wrong_no = sorted({(o["stage"], o["stage_no"]) for o in obs
                       if o["stage"] in stages and o["stage_no"] != stages.index(o["stage"]) + 1})
    R.check(not wrong_no, f"{step}: stage_no is the stage's position among the stages: {wrong_no}")
    totals = sorted({o["stages"] for o in obs})
    R.check(totals == [len(stages)],
            f"{step}: 'stages' is the number of stages the step has ({len(stages)}), seen: {totals}")
    seq = [o["stage_no"] for o in obs]
    R.check(seq == sorted(seq), f"{step}: stages are seen in order")
    seen = {o["stage"] for o in obs}
    missed = [(s, ms[s]) for s in stages if ms.get(s, 0) >= SEEN_IF_MS and s not in seen]
    R.check(not missed, f"{step}: every stage of {SEEN_IF_MS:.0f} ms or more was seen; missed: {missed}")

    increasing = []
    for s in stages:
        counts = [(o["rows_done"], o["rows_total"]) for o in obs if o["stage"] == s and o["rows_done"] is not None]
        done_seq = [c[0] for c in counts]
        R.check(done_seq == sorted(done_seq), f"{step}/{s}: rows_done never decreases: {done_seq[:20]}")
        over = [c for c in counts if c[1] is not None and c[1] > 0 and c[0] > c[1]]
        R.check(not over, f"{step}/{s}: rows_done stays within rows_total: {over[:5]}")
        distinct = sorted(set(done_seq))
        if len(distinct) >= 2:
            increasing.append(s)
        if s in ROW_STAGES[step] and ms.get(s, 0) >= LONG_MS:
            R.check(len(distinct) >= 2,
                    f"{step}/{s}: a row-by-row stage of {ms[s]:.0f} ms shows rows_done of rows_total increasing "
                    f"(counts seen: {distinct[:10]}, {len([o for o in obs if o['stage'] == s])} observations)")
        if counts:
            print(f"  {s}: {ms.get(s, 0):.0f} ms, rows_done {distinct[0]}..{distinct[-1]} of {counts[-1][1]}"
                  f" ({len(distinct)} counts)", flush=True)
        else:
            print(f"  {s}: {ms.get(s, 0):.0f} ms, {'seen' if s in seen else 'not seen'}, no row counts", flush=True)
    R.check(increasing, f"{step}: at least one stage shows rows_done increasing")
    R.check(listed_after == [], f"{step}: not listed once the call has returned: {listed_after}")


def big(setting):
    db = pmtest.fresh_db("pmprog")
    try:
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            t0 = time.monotonic()
            with open(os.path.join(pmtest.ROOT, "bench", "generate.sql")) as f:
                cur.execute(f.read())
            cur.execute("SELECT phasemig_bench.phasemig_bench_generate(%s, %s, %s)",
                        (SCHEMA, N_PROJECTS, PER_PROJECT))
            gen = cur.fetchone()[0]
            print(f"generated {gen['projects']} projects, {gen['assignments']} assignments"
                  f" in {time.monotonic() - t0:.1f} s", flush=True)
        for step in ("upgrade", "downgrade"):
            res = run_observed(db, f"SELECT phasemig_{step}('{SCHEMA}')", setting.on)
            check_step(step, db, *res)
    finally:
        pmtest.drop_db(db)


def small(setting):
    db = pmtest.fresh_db("pmprog")
    try:
        conn = pmtest.connect(db)
        cur = conn.cursor()
        pmtest.load_seed(cur)

        # Default and explicit off: nothing but results.
        for label, sql in (("default", None), ("off", setting.off)):
            c = pmtest.connect(db)
            k = c.cursor()
            if sql:
                k.execute(sql)
            for q in ("SELECT phasemig_upgrade()", "SELECT count(*) FROM phasemig_verify()",
                      "SELECT phasemig_downgrade()", "SELECT phasemig_assert()"):
                k.execute(q)
            R.check(messages(c) == [], f"stage messages {label}: upgrade, verify, downgrade send nothing: "
                                       f"{messages(c)}")
            c.close()

        # On, on small data too: one message per stage.
        c = pmtest.connect(db)
        k = c.cursor()
        k.execute(setting.on)
        k.execute("SELECT phasemig_upgrade()")
        got = [MESSAGE.match(m).group(2) if MESSAGE.match(m) else m for m in messages(c)]
        R.check(got == STAGES["upgrade"], f"seed upgrade with messages on: one per stage: {got}")
        del c.notices[:]
        k.execute("SELECT phasemig_downgrade()")
        got = [MESSAGE.match(m).group(2) if MESSAGE.match(m) else m for m in messages(c)]
        R.check(got == STAGES["downgrade"], f"seed downgrade with messages on: one per stage: {got}")
        c.close()

        # Waiting for locks is visible as stage "lock".
        blocker = pmtest.connect(db, autocommit=False)
        bc = blocker.cursor()
        bc.execute("LOCK TABLE project_phases IN ACCESS SHARE MODE")
        release = threading.Timer(1.5, blocker.rollback)
        release.start()
        _, obs, _, after, took = run_observed(db, "SELECT phasemig_upgrade()", None)
        release.join()
        blocker.close()
        R.check(any(o["stage"] == "lock" and o["stage_no"] == 1 for o in obs),
                f"a step waiting for its locks is listed in stage 1 'lock' ({took:.1f} s): "
                f"{sorted({o['stage'] for o in obs})}")
        R.check(after == [], "... and not listed once it has returned")

        # A failed step is not left listed as running.
        a = pmtest.connect(db)
        ca = a.cursor()
        ca.execute("SET phasemig.fault_injection = 'downgrade:archive'")
        try:
            ca.execute("SELECT phasemig_downgrade()")
            failed = None
        except psycopg2.Error as e:
            failed = e.pgerror.strip().splitlines()[0]
        R.check(failed and "fault injected" in failed, f"the injected fault failed the downgrade: {failed}")
        cur.execute(PROGRESS_SQL, (a.get_backend_pid(),))
        stale = cur.fetchall()
        cur.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", (a.get_backend_pid(),))
        activity = cur.fetchone()
        R.check(stale == [], f"a session whose step failed is not listed in phasemig_progress: {stale} "
                             f"(pg_stat_activity: {activity})")
        a.close()
        conn.close()
    finally:
        pmtest.drop_db(db)


def main():
    db = pmtest.fresh_db("pmprog")
    try:
        setting = Setting(db)
    finally:
        pmtest.drop_db(db)
    small(setting)
    big(setting)


if __name__ == "__main__":
    R.run(main)
