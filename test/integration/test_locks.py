"""Locks (SPEC §6, issue "Hardening"): a step never queues behind, or in
front of, the application for longer than phasemig.lock_timeout x attempts.

  * A long transaction holding a conflicting lock (ACCESS SHARE on
    project_phases, ROW EXCLUSIVE on projects, an updated alembic_version row,
    ACCESS SHARE on resource_assignments for the downgrade): the step gives up
    within (1 + lock_retries) x timeout + backoff, with SQLSTATE 55P03 and a
    hint naming pg_blocking_pids, and nothing has changed.
  * While it waits, the application's own queries on those tables (another
    session) are not held up for longer than one attempt.
  * The session's own lock_timeout, when set, is used instead of
    phasemig.lock_timeout.
  * A row lock on alembic_version (SELECT ... FOR UPDATE in a long
    transaction) is bounded the same way.
  * When the blocker commits during the retries, the step succeeds; a
    cancel or statement_timeout during the wait ends it at once (57014).
  * Blockers that let go one after the other do not stretch one attempt
    beyond its timeout.
  * When the blocker is a writer that commits while the step waits, the step
    works on what it committed (project dates, new phases, phase dates).
"""
import contextlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_locks")
SLACK = 0.5  # seconds allowed on top of a computed bound (scheduling, round trips)


def backoff_total(retries):
    """Sleep between attempts in lock_target: 100 ms, doubling, at most 2 s."""
    total, b = 0, 100
    for _ in range(retries):
        total += b
        b = min(b * 2, 2000)
    return total / 1000.0


def give_up_bound(timeout_ms, retries):
    return (1 + retries) * timeout_ms / 1000.0 + backoff_total(retries)


class AppLoad:
    """The application: another session running short queries on the tables
    in a loop, recording how long each one took."""

    QUERIES = [
        ("select project_phases", "SELECT count(*) FROM project_phases"),
        ("select resource_assignments", "SELECT count(*) FROM resource_assignments"),
        ("select projects", "SELECT count(*) FROM projects"),
        # Rewrites a row with the same values: the fingerprint stays the same.
        ("update projects", "UPDATE projects SET name = name WHERE id = (SELECT id FROM projects ORDER BY id LIMIT 1)"),
    ]

    def __init__(self, db, statement_timeout="20s"):
        self.conn = pmtest.connect(db)
        self.cur = self.conn.cursor()
        self.cur.execute(f"SET statement_timeout = '{statement_timeout}'")
        self.stop = threading.Event()
        self.max = {}
        self.errors = []
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            for name, sql in self.QUERIES:
                t0 = time.monotonic()
                try:
                    self.cur.execute(sql)
                except Exception as e:  # noqa: BLE001
                    self.errors.append(f"{name}: {e}".strip())
                took = time.monotonic() - t0
                self.max[name] = max(self.max.get(name, 0.0), took)
                self.count += 1
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)
        self.conn.close()

    def worst(self):
        return max(self.max.values()) if self.max else 0.0


def run_step(db, step, settings, statement_timeout="30s"):
    """Runs phasemig_<step>() in a new session with the given SETs; returns a
    Call whose result is the summary, plus the session's pid."""
    conn = pmtest.connect(db)
    cur = conn.cursor()
    cur.execute(f"SET statement_timeout = '{statement_timeout}'")
    for k, v in settings.items():
        cur.execute(f"SET {k} = %s", (v,))
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]

    def go():
        try:
            t0 = time.monotonic()
            try:
                cur.execute(f"SELECT phasemig_{step}()")
                return cur.fetchone()[0]
            finally:
                go.elapsed = time.monotonic() - t0
        finally:
            conn.close()

    go.elapsed = None
    call = pmtest.Call(go)
    call.pid = pid
    call.fn = go
    return call


def blocked_case(db, label, step, blocker_sql, settings, expect_timeout_ms, retries, app=True):
    """A blocker holds blocker_sql's locks in an open transaction; the step
    must give up within the bound and change nothing."""
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        before = pmtest.fingerprint(cur)
        snap = pmtest.state_snapshot(cur)
    blocker = pmtest.connect(db, autocommit=False)
    bcur = blocker.cursor()
    for sql in blocker_sql:
        bcur.execute(sql)
    bcur.execute("SELECT pg_backend_pid()")
    blocker_pid = bcur.fetchone()[0]

    bound = give_up_bound(expect_timeout_ms, retries)
    load = AppLoad(db) if app else contextlib.nullcontext()
    blocking_seen = []
    with load:
        time.sleep(0.2 if app else 0)
        call = run_step(db, step, settings, statement_timeout=f"{int((bound + 5) * 1000)}ms")
        # While it waits, pg_blocking_pids (the hint's advice) names the
        # blocker.  It may first name an application session whose short
        # transaction the step queues behind for a moment: keep looking.
        with contextlib.closing(pmtest.connect(db)) as o, o.cursor() as ocur:
            def blocked():
                ocur.execute("SELECT pg_blocking_pids(%s)", (call.pid,))
                pids = ocur.fetchone()[0] or []
                blocking_seen.extend(p for p in pids if p not in blocking_seen)
                return True if blocker_pid in pids else None
            pmtest.wait_for(blocked, timeout=bound + 5, interval=0.02)
        call.join(bound + 30)
        time.sleep(0.1)
    blocker.rollback()
    blocker.close()

    elapsed = call.fn.elapsed
    e = call.error
    code = getattr(e, "pgcode", None)
    print(f"{label}: {step} gave up after {elapsed:.3f} s (bound {bound:.3f} s); "
          f"SQLSTATE {code}; blocker pid {blocker_pid} seen blocking: {blocker_pid in blocking_seen}", flush=True)
    R.check(code == "55P03", f"{label}: SQLSTATE 55P03, got {code}: {e}")
    if code == "55P03":
        R.check(e.diag.message_primary == 'could not lock the tables of schema "public"',
                f"{label}: message: {e.diag.message_primary}")
        R.check("pg_blocking_pids" in (e.diag.message_hint or ""), f"{label}: hint names pg_blocking_pids: "
                f"{e.diag.message_hint}")
        attempts = (f"{1 + retries} attempts waited at most {expect_timeout_ms} ms each" if retries
                    else f"1 attempt waited at most {expect_timeout_ms} ms.")
        R.check(attempts in (e.diag.message_detail or ""),
                f"{label}: detail gives attempts and timeout: {e.diag.message_detail}")
        R.check("Nothing has been changed" in (e.diag.message_detail or ""), f"{label}: detail says nothing changed")
    R.check(elapsed is not None and elapsed <= bound + SLACK,
            f"{label}: gave up within the bound: {elapsed} s > {bound} + {SLACK} s")
    # Every attempt really waited its full timeout (the retries happened).
    R.check(elapsed is not None and elapsed >= bound * 0.9,
            f"{label}: waited all attempts: {elapsed} s < 0.9 x {bound} s")
    R.check(blocker_pid in blocking_seen, f"{label}: pg_blocking_pids(step) named the blocker {blocker_pid}: "
            f"{blocking_seen}")
    if app:
        per_attempt = expect_timeout_ms / 1000.0
        print(f"{label}: application queries while phasemig waited: {load.count}, slowest "
              + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(load.max.items())), flush=True)
        R.check(not load.errors, f"{label}: application queries failed: {load.errors[:3]}")
        R.check(load.worst() <= per_attempt + SLACK,
                f"{label}: an application query was held up {load.worst():.3f} s "
                f"(> one attempt {per_attempt} s + {SLACK} s): {load.max}")
        R.check(load.worst() <= bound, f"{label}: an application query was held up longer than the whole bound")
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        R.check(pmtest.fingerprint(cur) == before, f"{label}: tables unchanged (fingerprint)")
        R.check(pmtest.state_snapshot(cur) == snap, f"{label}: status and phasemig's tables unchanged")
    return elapsed


def commit_during_retries(db, label, step, blocker_sql, settings, timeout_ms, retries, commit_after,
                          expect_state):
    blocker = pmtest.connect(db, autocommit=False)
    bcur = blocker.cursor()
    for sql in blocker_sql:
        bcur.execute(sql)
    bound = give_up_bound(timeout_ms, retries)
    call = run_step(db, step, settings, statement_timeout=f"{int((bound + 10) * 1000)}ms")
    time.sleep(commit_after)
    blocker.commit()
    committed = time.monotonic()
    blocker.close()
    call.join(bound + 60)
    elapsed = call.fn.elapsed
    after_commit = call.ended - committed if call.ended else None
    print(f"{label}: blocker committed after {commit_after:.2f} s; {step} finished after {elapsed:.3f} s "
          f"({after_commit:.3f} s after the commit; bound {bound:.3f} s)", flush=True)
    R.check(call.error is None, f"{label}: {step} succeeded: {call.error}")
    R.check(elapsed is not None and elapsed <= bound + SLACK, f"{label}: within the bound")
    # At most: the rest of the current attempt, one backoff, then the step.
    R.check(elapsed is not None and elapsed >= commit_after, f"{label}: it waited for the blocker")
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        cur.execute("SELECT phasemig_status() ->> 'state'")
        R.check(cur.fetchone()[0] == expect_state, f"{label}: state is {expect_state}")
        cur.execute("SELECT check_no, check_name, passed, detail FROM phasemig_verify() WHERE passed IS NOT TRUE")
        bad = cur.fetchall()
        R.check(not bad, f"{label}: verify passes: {bad}")


def rolling_blockers(db, label):
    """Three sessions each hold a lock the step needs; the first lets go
    shortly before the timeout, then the second: one attempt must still end
    within the timeout (it is what phasemig.lock_timeout promises the
    application), not wait the timeout once per table."""
    timeout_ms = 400
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        before = pmtest.fingerprint(cur)
    blockers = []
    for sql in ("SELECT count(*) FROM project_phases", "SELECT count(*) FROM resource_assignments",
                "UPDATE alembic_version SET version_num = version_num"):
        b = pmtest.connect(db, autocommit=False)
        b.cursor().execute(sql)
        blockers.append(b)

    def release():
        time.sleep(0.35)
        blockers[0].commit()
        time.sleep(0.35)
        blockers[1].commit()

    releaser = threading.Thread(target=release, daemon=True)
    with AppLoad(db) as load:
        time.sleep(0.2)
        call = run_step(db, "upgrade", {"phasemig.lock_timeout": f"{timeout_ms}ms", "phasemig.lock_retries": "0"})
        releaser.start()
        call.join(30)
        time.sleep(0.1)
    releaser.join()
    blockers[2].rollback()
    for b in blockers:
        b.close()
    elapsed = call.fn.elapsed
    code = getattr(call.error, "pgcode", None)
    bound = give_up_bound(timeout_ms, 0)
    print(f"{label}: one attempt ended after {elapsed:.3f} s (timeout {bound:.3f} s); SQLSTATE {code}; slowest "
          f"application query {load.worst():.3f} s", flush=True)
    R.check(code == "55P03", f"{label}: SQLSTATE 55P03, got {code}")
    R.check(elapsed <= bound + SLACK, f"{label}: one attempt waited {elapsed:.3f} s, more than its "
            f"{timeout_ms} ms (+ {SLACK} s): the timeout applies per table, not per attempt")
    R.check(load.worst() <= bound + SLACK, f"{label}: an application query was held up {load.worst():.3f} s: "
            f"{load.max}")
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        R.check(pmtest.fingerprint(cur) == before, f"{label}: tables unchanged (fingerprint)")


def writer_commits_during_wait():
    """The blocker is a writer that commits while the step waits for its
    locks: the step must work on what that writer committed (it holds the
    locks from then on), not on a snapshot taken before it got them."""
    def seeded(upgrade=False):
        db = pmtest.fresh_db("pmlockw")
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            pmtest.load_seed(cur)
            if upgrade:
                cur.execute("SELECT phasemig_upgrade()")
        return db

    def step_while_writer_commits(db, step_sql, writes):
        writer = pmtest.connect(db, autocommit=False)
        wcur = writer.cursor()
        for sql, args in writes:
            wcur.execute(sql, args)
        conn = pmtest.connect(db)
        cur = conn.cursor()
        cur.execute("SET phasemig.lock_timeout = '10s'")
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]

        def go():
            cur.execute(step_sql)
            return cur.fetchone()[0]
        call = pmtest.Call(go)
        with contextlib.closing(pmtest.connect(db)) as o, o.cursor() as ocur:
            def waiting():
                ocur.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,))
                r = ocur.fetchone()
                return bool(r and r[0])
            R.check(pmtest.wait_for(lambda: waiting() or call.ended, timeout=5) and not call.ended,
                    "writer: the step waits for the writer's locks")
        time.sleep(0.1)
        writer.commit()
        writer.close()
        call.join(60)
        conn.close()
        return call

    # a. A project's end date moves: the upgrade must split the new range.
    db = seeded()
    try:
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            cur.execute("SELECT id FROM projects ORDER BY id LIMIT 1")
            pid = cur.fetchone()[0]
            call = step_while_writer_commits(db, "SELECT phasemig_upgrade()", [
                ("UPDATE projects SET end_date = end_date + 100 WHERE id = %s", (pid,))])
            R.check(call.error is None, f"writer (project dates): the upgrade succeeds: {call.error}")
            cur.execute("SELECT p.end_date = max(f.end_date) FROM projects p JOIN project_phases f"
                        " ON f.project_id = p.id WHERE p.id = %s GROUP BY p.end_date", (pid,))
            r = cur.fetchone()
            R.check(r is not None and r[0], "writer (project dates): the last phase ends on the project's end date "
                    "as committed before the upgrade got its locks")
            cur.execute("SELECT check_no, detail FROM phasemig_verify() WHERE passed IS NOT TRUE")
            bad = cur.fetchall()
            R.check(not bad, f"writer (project dates): verify passes right after the upgrade: {bad}")
    finally:
        pmtest.drop_db(db)

    # b. A new project with its two phases and an assignment.
    db = seeded()
    try:
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            call = step_while_writer_commits(db, "SELECT phasemig_upgrade()", [
                ("INSERT INTO projects (id, name, start_date, end_date) VALUES "
                 "('00000000-0000-0000-0000-00000000000a', 'new', '2025-01-01', '2025-06-30')", None),
                ("INSERT INTO project_phases (id, project_id, phase_type, total_budget, created_at) VALUES "
                 "('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', 'PLANNING', 10,"
                 " '2025-01-01'), ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-00000000000a',"
                 " 'EXECUTION', 20, '2025-01-02')", None),
                ("INSERT INTO resource_assignments (id, project_id, project_phase_id, assignment_date) VALUES "
                 "('00000000-0000-0000-0000-000000000aa1', '00000000-0000-0000-0000-00000000000a',"
                 " '00000000-0000-0000-0000-0000000000a2', '2025-05-01')", None)])
            R.check(call.error is None, f"writer (new project): the upgrade succeeds: "
                    f"{getattr(call.error, 'pgcode', None)} {str(call.error).splitlines()[0] if call.error else ''}")
            cur.execute("SELECT count(*) FROM projects")
            n = cur.fetchone()[0]
            cur.execute("SELECT projects FROM phasemig_run WHERE step = 'upgrade' ORDER BY run_id DESC LIMIT 1")
            r = cur.fetchone()
            if call.error is None:
                R.check(r is not None and r[0] == n, f"writer (new project): the run's baseline counts {n} projects: "
                        f"{r}")
    finally:
        pmtest.drop_db(db)

    # c. Downgrade: a phase boundary moves 20 days later; date matching
    #    (restore => false) must use the committed ranges.
    db = seeded(upgrade=True)
    try:
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            cur.execute("SELECT f.project_id, f.id, f.end_date FROM project_phases f WHERE f.name = 'Planning'"
                        " AND EXISTS (SELECT FROM project_phases g WHERE g.project_id = f.project_id"
                        "             AND g.name = 'Execution') ORDER BY 1 LIMIT 1")
            proj, plan, pend = cur.fetchone()
            cur.execute("SELECT count(*) FROM resource_assignments WHERE project_id = %s"
                        " AND assignment_date > %s AND assignment_date <= %s::date + 20", (proj, pend, pend))
            moved = cur.fetchone()[0]
            call = step_while_writer_commits(db, "SELECT phasemig_downgrade(restore => false)", [
                ("UPDATE project_phases SET end_date = end_date + 20 WHERE id = %s", (plan,)),
                ("UPDATE project_phases SET start_date = start_date + 20 WHERE project_id = %s"
                 " AND name = 'Execution'", (proj,))])
            R.check(call.error is None, f"writer (phase dates): the downgrade succeeds: {call.error}")
            cur.execute("SELECT f.phase_type::text, count(*) FROM resource_assignments r"
                        " JOIN project_phases f ON f.id = r.project_phase_id WHERE r.project_id = %s"
                        " AND r.assignment_date > %s AND r.assignment_date <= %s::date + 20 GROUP BY 1",
                        (proj, pend, pend))
            got = dict(cur.fetchall())
            R.check(moved > 0 and got == {"PLANNING": moved},
                    f"writer (phase dates): the {moved} assignments in the moved 20 days are matched to the "
                    f"Planning phase as committed before the downgrade got its locks: {got}")
    finally:
        pmtest.drop_db(db)


def cancel_while_waiting(db, label, how):
    """pg_cancel_backend or statement_timeout while the step waits for its
    locks (in an attempt or in the backoff between two): 57014 at once."""
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        before = pmtest.fingerprint(cur)
        snap = pmtest.state_snapshot(cur)
    blocker = pmtest.connect(db, autocommit=False)
    blocker.cursor().execute("SELECT count(*) FROM project_phases")
    settings = {"phasemig.lock_timeout": "1000ms", "phasemig.lock_retries": "3"}
    if how == "cancel":
        call = run_step(db, "upgrade", settings)
        time.sleep(1.5)  # in the second attempt, or in the backoff
        with contextlib.closing(pmtest.connect(db)) as o, o.cursor() as ocur:
            t_cancel = time.monotonic()
            ocur.execute("SELECT pg_cancel_backend(%s)", (call.pid,))
    else:
        call = run_step(db, "upgrade", settings, statement_timeout="1500ms")
        t_cancel = time.monotonic() + 1.5
    call.join(30)
    blocker.rollback()
    blocker.close()
    code = getattr(call.error, "pgcode", None)
    latency = call.ended - t_cancel
    print(f"{label}: ended {latency:.3f} s after the cancel; SQLSTATE {code}", flush=True)
    R.check(code == "57014", f"{label}: SQLSTATE 57014, got {code}: {call.error}")
    R.check(latency < 0.5, f"{label}: ended {latency:.3f} s after the cancel")
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        R.check(pmtest.fingerprint(cur) == before, f"{label}: tables unchanged (fingerprint)")
        R.check(pmtest.state_snapshot(cur) == snap, f"{label}: status and phasemig's tables unchanged")


def main():
    db = pmtest.fresh_db("pmlocks")
    try:
        seeded_cases(db)
    finally:
        pmtest.drop_db(db)

    # 10. A writer commits while the step waits: the step sees its work.
    writer_commits_during_wait()


def seeded_cases(db):
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        pmtest.load_seed(cur)
    base = {"phasemig.lock_timeout": "300ms", "phasemig.lock_retries": "2"}

    # 1. ACCESS SHARE on project_phases (a long read-only transaction).
    blocked_case(db, "access share on project_phases", "upgrade",
                 ["SELECT count(*) FROM project_phases"], base, 300, 2)

    # 2. The session's own lock_timeout wins over phasemig.lock_timeout.
    blocked_case(db, "session lock_timeout", "upgrade", ["SELECT count(*) FROM project_phases"],
                 {"phasemig.lock_timeout": "2000ms", "phasemig.lock_retries": "2", "lock_timeout": "150ms"}, 150, 2)

    # 3. An open write on projects (ROW EXCLUSIVE conflicts with SHARE).
    blocked_case(db, "row exclusive on projects", "upgrade",
                 ["UPDATE projects SET name = name WHERE id = (SELECT id FROM projects ORDER BY id LIMIT 1)"], base, 300, 2,
                 app=False)

    # 4. No retries at all: one attempt.
    blocked_case(db, "no retries", "upgrade", ["SELECT count(*) FROM resource_assignments"],
                 {"phasemig.lock_timeout": "300ms", "phasemig.lock_retries": "0"}, 300, 0, app=False)

    # 5. alembic_version updated in an open transaction (table and row lock).
    blocked_case(db, "updated alembic_version row", "upgrade",
                 ["UPDATE alembic_version SET version_num = version_num"], base, 300, 2)

    # 6. Only a row lock on alembic_version (SELECT ... FOR UPDATE): the
    #    step must not wait for it without bound while holding ACCESS
    #    EXCLUSIVE on project_phases and resource_assignments.
    blocked_case(db, "row lock on alembic_version", "upgrade",
                 ["SELECT * FROM alembic_version FOR UPDATE"], base, 300, 2)

    # Blockers that let go one after the other, each just before the timeout.
    rolling_blockers(db, "rolling blockers")

    # A cancel, or statement_timeout, while it waits for the locks.
    cancel_while_waiting(db, "pg_cancel_backend during the lock wait", "cancel")
    cancel_while_waiting(db, "statement_timeout during the lock wait", "timeout")

    # 7. The blocker commits during the retries: the upgrade succeeds.
    commit_during_retries(db, "blocker commits (upgrade)", "upgrade", ["SELECT count(*) FROM project_phases"],
                          {"phasemig.lock_timeout": "300ms", "phasemig.lock_retries": "5"}, 300, 5, 0.8,
                          "upgraded")

    # 8. Downgrade: ACCESS SHARE on resource_assignments.
    blocked_case(db, "access share on resource_assignments (downgrade)", "downgrade",
                 ["SELECT count(*) FROM resource_assignments"], base, 300, 2)

    # 9. The blocker commits during the retries: the downgrade succeeds.
    commit_during_retries(db, "blocker commits (downgrade)", "downgrade",
                          ["SELECT count(*) FROM resource_assignments"],
                          {"phasemig.lock_timeout": "300ms", "phasemig.lock_retries": "5"}, 300, 5, 1.0, "legacy")


if __name__ == "__main__":
    R.run(main)
