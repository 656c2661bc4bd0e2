"""Faults (SPEC §6, issue "Hardening"): a step that fails after any of its
stages leaves the database exactly as it was.

For every stage of upgrade and of downgrade (the st.begin("...") calls of
src/pg/upgrade.cpp and src/pg/downgrade.cpp, cross-checked with the stages a
dry run reports in its timings), phasemig.fault_injection = '<step>:<stage>'
makes the step fail with SQLSTATE 09000 and the documented message, and
leaves identical: pm_fingerprint (rows and shape), phasemig_status state,
phasemig_run, the archives and the verify history.  Each stage is tried
  * as a plain call (autocommit), with dry_run false and true;
  * in the caller's own transaction, in a SAVEPOINT rolled back to after the
    error, with dry_run false and true: the caller's own earlier work is
    still there, and the transaction stays usable (the real step then runs
    in it, or the caller's work commits);
  * in a plpgsql EXCEPTION block that catches the error, likewise.
Also: verify with a fault after each of its stages records no history, and
after a failed step (idle session, or a plpgsql block that caught the error
and goes on) no other session sees it as running in phasemig_progress.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_faults")
FIRST_PROJECT = "(SELECT id FROM projects ORDER BY id LIMIT 1)"


class Session:
    """The session that runs the steps, and an observer."""

    def __init__(self, db):
        self.db = db
        self.conn = pmtest.connect(db)
        self.cur = self.conn.cursor()
        self.cur.execute("SELECT pg_backend_pid()")
        self.pid = self.cur.fetchone()[0]
        self.obs = pmtest.connect(db)
        self.ocur = self.obs.cursor()
        self.ghosts = []

    def ghost_check(self, label):
        """After a failed step, is the session still shown as running it?"""
        self.ocur.execute("SELECT step, stage FROM phasemig_progress WHERE pid = %s", (self.pid,))
        row = self.ocur.fetchone()
        if row:
            self.ghosts.append(f"{label} -> {row[0]} {row[1]}")

    def set_autocommit(self, on):
        self.conn.autocommit = on


def expect_fault(label, e, step, stage):
    code = getattr(e, "pgcode", None)
    ok = R.check(code == "09000", f"{label}: SQLSTATE 09000, got {code}: {e}")
    if ok:
        R.check(e.diag.message_primary == f'phasemig fault injected after stage "{step}:{stage}"',
                f"{label}: message: {e.diag.message_primary}")
        R.check("phasemig.fault_injection" in (e.diag.message_detail or ""), f"{label}: detail names the setting")


def unchanged(label, cur, base_fp, base_snap):
    fp = pmtest.fingerprint(cur)
    diff = sorted(k for k in set(fp) | set(base_fp) if fp.get(k) != base_fp.get(k))
    R.check(not diff, f"{label}: tables changed: {diff}")
    snap = pmtest.state_snapshot(cur)
    R.check(snap == base_snap, f"{label}: status / phasemig tables changed: {base_snap} -> {snap}")


def call_sql(step, dry):
    return f"SELECT phasemig_{step}(dry_run => {'true' if dry else 'false'})"


def faults_for_step(s, step, stages, target_state):
    cur = s.cur
    base_fp = pmtest.fingerprint(cur)
    base_snap = pmtest.state_snapshot(cur)
    iteration = 0
    for stage in stages:
        point = f"{step}:{stage}"
        for dry in (False, True):
            tag = f"{point}{' dry_run' if dry else ''}"

            # -- plain call, autocommit
            s.set_autocommit(True)
            cur.execute("SET phasemig.fault_injection = %s", (point,))
            code, e = pmtest.sqlstate(cur, call_sql(step, dry))
            s.ghost_check(f"{tag} (plain)")
            expect_fault(f"{tag} (plain)", e, step, stage)
            cur.execute("RESET phasemig.fault_injection")
            unchanged(f"{tag} (plain)", cur, base_fp, base_snap)

            # -- in the caller's transaction, in a savepoint
            iteration += 1
            s.set_autocommit(False)
            cur.execute(f"UPDATE projects SET name = name || ' (caller)' WHERE id = {FIRST_PROJECT}")
            inner_fp = pmtest.fingerprint(cur)
            inner_snap = pmtest.state_snapshot(cur)
            cur.execute("SET LOCAL phasemig.fault_injection = %s", (point,))
            cur.execute("SAVEPOINT before_step")
            code, e = pmtest.sqlstate(cur, call_sql(step, dry))
            expect_fault(f"{tag} (savepoint)", e, step, stage)
            code, e2 = pmtest.sqlstate(cur, "ROLLBACK TO SAVEPOINT before_step")
            R.check(code is None, f"{tag} (savepoint): ROLLBACK TO SAVEPOINT works: {e2}")
            if code is None:
                unchanged(f"{tag} (savepoint, inside the transaction)", cur, inner_fp, inner_snap)
                cur.execute("SET LOCAL phasemig.fault_injection = ''")
                if iteration % 2:
                    # The transaction is usable: the real step runs in it.
                    code, e3 = pmtest.sqlstate(cur, f"SELECT phasemig_{step}()")
                    R.check(code is None, f"{tag} (savepoint): the step then succeeds in the same "
                            f"transaction: {e3}")
                    if code is None:
                        cur.execute("SELECT phasemig_status() ->> 'state'")
                        R.check(cur.fetchone()[0] == target_state, f"{tag} (savepoint): state {target_state}")
                        cur.execute("SELECT count(*) FROM projects WHERE name LIKE '%(caller)'")
                        R.check(cur.fetchone()[0] == 1, f"{tag} (savepoint): the caller's work is still there")
                    s.conn.rollback()
                else:
                    # Or the caller's own work commits, and nothing of the step.
                    s.conn.commit()
                    unchanged(f"{tag} (savepoint, committed)", cur, inner_fp, inner_snap)
                    cur.execute(f"UPDATE projects SET name = left(name, -9) WHERE id = {FIRST_PROJECT}")
                    s.conn.commit()
            else:
                s.conn.rollback()
            s.set_autocommit(True)
            unchanged(f"{tag} (savepoint, after)", cur, base_fp, base_snap)

            # -- in a plpgsql EXCEPTION block
            iteration += 1
            s.set_autocommit(False)
            del s.conn.notices[:]
            cur.execute(f"UPDATE projects SET name = name || ' (caller)' WHERE id = {FIRST_PROJECT}")
            inner_fp = pmtest.fingerprint(cur)
            inner_snap = pmtest.state_snapshot(cur)
            cur.execute("SET LOCAL phasemig.fault_injection = %s", (point,))
            code, e = pmtest.sqlstate(cur, f"""
                DO $$
                DECLARE st text; msg text;
                BEGIN
                    BEGIN
                        PERFORM phasemig_{step}(dry_run => {'true' if dry else 'false'});
                        RAISE NOTICE 'not caught';
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                        RAISE NOTICE 'caught %: %', st, msg;
                    END;
                    -- still usable inside the block
                    RAISE NOTICE 'state %, % caller rows', phasemig_status() ->> 'state',
                        (SELECT count(*) FROM projects WHERE name LIKE '%(caller)');
                END $$""")
            s.ghost_check(f"{tag} (plpgsql)")
            R.check(code is None, f"{tag} (plpgsql): the DO block ran: {e}")
            notices = " ".join(n.strip() for n in s.conn.notices)
            R.check(f'caught 09000: phasemig fault injected after stage "{point}"' in notices,
                    f"{tag} (plpgsql): caught the fault: {notices}")
            R.check(f"state {base_snap['state']}, 1 caller rows" in notices,
                    f"{tag} (plpgsql): state and caller's work inside the block: {notices}")
            if code is None:
                unchanged(f"{tag} (plpgsql, inside the transaction)", cur, inner_fp, inner_snap)
                cur.execute("SET LOCAL phasemig.fault_injection = ''")
                if iteration % 2:
                    code, e3 = pmtest.sqlstate(cur, f"SELECT phasemig_{step}()")
                    R.check(code is None, f"{tag} (plpgsql): the step then succeeds in the same transaction: {e3}")
                    s.conn.rollback()
                else:
                    s.conn.commit()
                    unchanged(f"{tag} (plpgsql, committed)", cur, inner_fp, inner_snap)
                    cur.execute(f"UPDATE projects SET name = left(name, -9) WHERE id = {FIRST_PROJECT}")
                    s.conn.commit()
            else:
                s.conn.rollback()
            s.set_autocommit(True)
            unchanged(f"{tag} (plpgsql, after)", cur, base_fp, base_snap)

    # Every stage at once: 'step:*' fails after the first stage.
    cur.execute("SET phasemig.fault_injection = %s", (f"{step}:*",))
    code, e = pmtest.sqlstate(cur, call_sql(step, False))
    s.ghost_check(f"{step}:*")
    expect_fault(f"{step}:*", e, step, stages[0])
    cur.execute("RESET phasemig.fault_injection")
    unchanged(f"{step}:*", cur, base_fp, base_snap)

    # A stage that does not exist fails nothing.
    cur.execute("SET phasemig.fault_injection = %s", (f"{step}:no_such_stage",))
    code, e = pmtest.sqlstate(cur, call_sql(step, True))
    R.check(code is None, f"{step}:no_such_stage: a dry run succeeds: {e}")
    cur.execute("RESET phasemig.fault_injection")
    unchanged(f"{step}:no_such_stage", cur, base_fp, base_snap)


def caught_then_busy(s, step, stage):
    """A failed step caught in a plpgsql block while the caller's statement
    goes on: other sessions must not see the failed step as running."""
    label = f"{step}:{stage} caught, statement goes on"
    s.cur.execute("SET phasemig.fault_injection = %s", (f"{step}:{stage}",))
    sql = (f"DO $$ BEGIN BEGIN PERFORM phasemig_{step}(); EXCEPTION WHEN OTHERS THEN NULL; END; "
           "PERFORM pg_sleep(1.5); END $$")
    call = pmtest.Call(lambda: s.cur.execute(sql))

    def seen():
        s.ocur.execute("SELECT state, wait_event FROM pg_stat_activity WHERE pid = %s", (s.pid,))
        r = s.ocur.fetchone()
        return r if r and r[1] == "PgSleep" else None
    busy = pmtest.wait_for(lambda: seen() or call.ended, timeout=10, interval=0.01)
    s.ocur.execute("SELECT step, stage FROM phasemig_progress WHERE pid = %s", (s.pid,))
    row = s.ocur.fetchone()
    ended_early = call.ended
    call.join(30)
    s.cur.execute("RESET phasemig.fault_injection")
    R.check(busy and not ended_early and call.error is None, f"{label}: the DO block ran: {call.error}")
    R.check(row is None, f"{label}: phasemig_progress shows the failed step as running: {row}")


def check_stage_names(cur, step, from_source):
    """The stages in the source are those the installed build reports."""
    cur.execute(f"SELECT jsonb_object_keys(phasemig_{step}(dry_run => true) -> 'timings')")
    reported = {r[0] for r in cur.fetchall()} - {"total"}
    R.check(set(from_source) == reported,
            f"{step}: stages in the source {sorted(from_source)} = stages the installed build reports "
            f"{sorted(reported)}")
    print(f"{step} stages: {', '.join(from_source)}", flush=True)


def main():
    db = pmtest.fresh_db("pmfaults")
    try:
        s = Session(db)
        pmtest.load_seed(s.cur)
        up = pmtest.step_stages("upgrade")
        down = pmtest.step_stages("downgrade")
        ver = pmtest.step_stages("verify")
        R.check(len(up) >= 5 and len(down) >= 5, f"stage names found in the source: {up} {down}")

        legacy_fp = pmtest.fingerprint(s.cur)
        check_stage_names(s.cur, "upgrade", up)
        faults_for_step(s, "upgrade", up, "upgraded")
        s.cur.execute("SELECT phasemig_upgrade()")
        s.cur.execute("SELECT count(*) FROM phasemig_verify() WHERE passed IS NOT TRUE")
        R.check(s.cur.fetchone()[0] == 0, "upgrade after the faults: verify passes")

        check_stage_names(s.cur, "downgrade", down)
        faults_for_step(s, "downgrade", down, "legacy")

        # verify: a fault after any stage fails it and records no history.
        base_fp = pmtest.fingerprint(s.cur)
        base_snap = pmtest.state_snapshot(s.cur)
        for stage in ver:
            s.cur.execute("SET phasemig.fault_injection = %s", (f"verify:{stage}",))
            code, e = pmtest.sqlstate(s.cur, "SELECT * FROM phasemig_verify()")
            s.ghost_check(f"verify:{stage}")
            expect_fault(f"verify:{stage}", e, "verify", stage)
            s.cur.execute("RESET phasemig.fault_injection")
            unchanged(f"verify:{stage}", s.cur, base_fp, base_snap)

        s.cur.execute("SELECT phasemig_downgrade()")
        s.cur.execute("SELECT count(*) FROM phasemig_verify() WHERE passed IS NOT TRUE")
        R.check(s.cur.fetchone()[0] == 0, "downgrade after the faults: verify passes")
        R.check(pmtest.fingerprint(s.cur) == legacy_fp, "round trip after all the faults: legacy data as before")

        caught_then_busy(s, "upgrade", "archive")
        R.check(not s.ghosts, f"after a failed step, phasemig_progress still shows the idle session as running it "
                f"({len(s.ghosts)} cases, e.g. {s.ghosts[:3]})")
        s.conn.close()
        s.obs.close()
    finally:
        pmtest.drop_db(db)


if __name__ == "__main__":
    R.run(main)
