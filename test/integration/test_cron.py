"""pg_cron for real (issue "Operations"): a scheduled phasemig_assert() leaves
a trail in cron.job_run_details and in phasemig_verify_history, and drift is
caught by the next run.

  * pg_cron (preloaded by scripts/test.sh, cron.database_name = 'postgres')
    is created in database postgres; a test database gets the seed-shaped
    data and is upgraded by phasemig.
  * cron.schedule_in_database(job_name, schedule, command, database) -- the
    signature of pg_cron 1.4 -- runs SELECT phasemig_assert() in the test
    database every minute (1.4.2 has minute granularity).
  * The first run that completes is 'succeeded', and phasemig_verify_history
    has a passing row written during it.
  * Drift: a one-day gap in one project's timeline (its Planning phase ends a
    day early).  The next run is 'failed', its return_message names check 6
    (timeline coverage) and nothing else, and phasemig_verify_history has a
    failing row written during it (by phasemig's background worker: the
    job's own transaction was rolled back by the error).
  * The job is unscheduled at the end.  Waiting is bounded: at most 75 s per
    run, so about 2.5 minutes in all.

pg_cron connects to the job's database with libpq, to cron.job.nodename
(cron.host, 'localhost' by default).  The throwaway cluster of
scripts/cluster.sh listens on no TCP address (listen_addresses = ''), so the
job's nodename is set to the socket directory (PGHOST) in the same
transaction that schedules it.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_cron")
RUN_WAIT = 75.0  # seconds: one minute boundary plus the run itself, with slack


def wait_run(cron, jobid, after_runid):
    """Polls cron.job_run_details (database postgres) for the first finished
    run of `jobid` with runid > after_runid; returns it as a dict or None."""
    deadline = time.monotonic() + RUN_WAIT
    while time.monotonic() < deadline:
        cron.execute(
            "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details"
            " WHERE jobid = %s AND runid > %s AND status IN ('succeeded', 'failed')"
            " ORDER BY runid LIMIT 1", (jobid, after_runid))
        row = cron.fetchone()
        if row:
            return dict(zip(("runid", "status", "return_message", "start_time", "end_time"), row))
        time.sleep(0.5)
    return None


def history_during(cur, run):
    """phasemig_verify_history rows written while `run` was running."""
    cur.execute(
        "SELECT verify_id, passed, state, checks, checks_passed, checks_failed, failed_checks, performed_by"
        "  FROM phasemig_verify_history"
        " WHERE target_schema = 'public' AND verified_at BETWEEN %s AND %s ORDER BY verify_id",
        (run["start_time"], run["end_time"]))
    return [dict(zip(("verify_id", "passed", "state", "checks", "checks_passed", "checks_failed",
                      "failed_checks", "performed_by"), r)) for r in cur.fetchall()]


def main():
    pg = pmtest.connect("postgres")
    cron = pg.cursor()
    cron.execute("SELECT current_setting('cron.database_name', true), current_setting('shared_preload_libraries')")
    cron_db, preload = cron.fetchone()
    if not R.check(cron_db == "postgres" and "pg_cron" in preload,
                   f"pg_cron must be preloaded with cron.database_name = 'postgres' "
                   f"(shared_preload_libraries = {preload!r}, cron.database_name = {cron_db!r})"):
        return
    cron.execute("SET client_min_messages = warning")
    cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    cron.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
    print(f"pg_cron extension version {cron.fetchone()[0]}", flush=True)

    db = pmtest.fresh_db("pmcron")
    jobid = None
    try:
        conn = pmtest.connect(db)
        cur = conn.cursor()
        pmtest.load_seed(cur)
        cur.execute("SELECT phasemig_upgrade() -> 'assignments'")
        cur.execute("SELECT phasemig_assert()")
        R.check(cur.fetchone()[0] == 9, "phasemig_assert() passes all 9 checks right after the upgrade")

        # Scheduled together with its host fix in one transaction, so
        # that no run can start with the default (TCP) host.
        job = f"phasemig-verify-{db}"
        host = os.environ.get("PGHOST", "/var/run/postgresql")  # as pmtest.dsn()
        pg.autocommit = False
        cron.execute("SELECT cron.schedule_in_database(%s, '* * * * *', 'SELECT phasemig_assert()', %s)",
                     (job, db))
        jobid = cron.fetchone()[0]
        if host.startswith("/"):
            cron.execute("UPDATE cron.job SET nodename = %s WHERE jobid = %s", (host, jobid))
        pg.commit()
        pg.autocommit = True
        cron.execute("SELECT schedule, command, database, username, active FROM cron.job WHERE jobid = %s", (jobid,))
        R.check(cron.fetchone() == ("* * * * *", "SELECT phasemig_assert()", db, "postgres", True),
                "cron.job holds the schedule, the command, the database and the user")
        scheduled_at = time.monotonic()

        # 1. A real run on the healthy schema.
        ok = wait_run(cron, jobid, 0)
        if not R.check(ok is not None, f"a run of job {jobid} finished within {RUN_WAIT:.0f} s"):
            return
        print(f"first run after {time.monotonic() - scheduled_at:.1f} s: {ok['status']} ({ok['return_message']})",
              flush=True)
        R.check(ok["status"] == "succeeded", f"the run on the upgraded schema succeeded: {ok}")
        R.check((ok["return_message"] or "").strip() == "1 row",
                f"return_message of the succeeded run is '1 row': {ok['return_message']!r}")
        rows = history_during(cur, ok)
        R.check(len(rows) == 1, f"one phasemig_verify_history row written during the run: {rows}")
        if rows:
            h = rows[0]
            R.check(h["passed"] is True and h["state"] == "upgraded" and h["checks"] == 9
                    and h["checks_passed"] == 9 and h["checks_failed"] == 0 and h["failed_checks"] == [],
                    f"the history row of the succeeded run passes all 9 checks: {h}")
            R.check(h["performed_by"] == "postgres", f"performed_by is the job's user: {h['performed_by']}")

        # 2. Drift: a gap of one day in one timeline.
        cur.execute(
            "UPDATE project_phases ph SET end_date = ph.end_date - 1 FROM projects p"
            " WHERE p.id = ph.project_id AND p.name = 'Data Center Migration' AND ph.name = 'Planning'"
            " RETURNING ph.end_date")
        R.check(cur.rowcount == 1, "drift: Data Center Migration's Planning phase ends one day early")
        cur.execute("SELECT check_no FROM phasemig_verify() WHERE passed IS NOT TRUE ORDER BY 1")
        R.check([r[0] for r in cur.fetchall()] == [6], "phasemig_verify() now fails check 6 only")

        bad = wait_run(cron, jobid, ok["runid"])
        if not R.check(bad is not None, f"the next run of job {jobid} finished within {RUN_WAIT:.0f} s"):
            return
        print(f"run after the drift: {bad['status']} ({bad['return_message']!r})", flush=True)
        R.check(bad["status"] == "failed", f"the run after the drift failed: {bad}")
        msg = bad["return_message"] or ""
        R.check("check 6 (timeline coverage)" in msg, f"return_message names check 6 (timeline coverage): {msg!r}")
        first = msg.strip().splitlines()[0] if msg.strip() else ""
        R.check(re.sub(r"^ERROR:\s+", "", first)
                == 'phasemig verification of schema "public" failed: check 6 (timeline coverage)',
                f"return_message's error line names check 6 and no other: {first!r}")
        R.check("gap at 2025-04-03" in msg, f"return_message's detail shows where the gap is: {msg!r}")
        rows = history_during(cur, bad)
        R.check(len(rows) == 1, f"one phasemig_verify_history row written during the failed run: {rows}")
        if rows:
            h = rows[0]
            R.check(h["passed"] is False and h["checks_failed"] == 1 and h["checks_passed"] == 8
                    and h["failed_checks"] == ["6. timeline coverage"],
                    f"the history row of the failed run records check 6 failing: {h}")
        cur.execute("SELECT phasemig_status() #> '{last_verify}'")
        lv = cur.fetchone()[0]
        R.check(lv and lv.get("passed") is False and lv.get("failed_checks") == 1,
                f"phasemig_status() reports the failed verification as the last one: {lv}")
        conn.close()
    finally:
        if jobid is not None:
            pg.autocommit = True
            cron.execute("SELECT cron.unschedule(%s)", (jobid,))
            R.check(cron.fetchone()[0] is True, "the job is unscheduled")
            cron.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", (jobid,))
        pg.close()
        pmtest.drop_db(db)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        R.check(False, f"unexpected {type(e).__name__}: {e}")
    R.finish()
