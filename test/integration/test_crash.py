"""Crashes (SPEC §6, issue "Hardening"): a step interrupted by a crash leaves
nothing behind.

  1. The backend running a downgrade is killed with SIGKILL while
     phasemig_progress shows it in its 'assignments' stage (the rewrite of
     resource_assignments).  The postmaster resets every backend and
     recovers.
  2. The whole server is stopped with pg_ctl stop -m immediate while an
     upgrade is in its 'phases' stage (the rewrite of project_phases), then
     started again.
After recovery the tables are as before the step (rows, shape, relfilenodes),
phasemig_status says the state before the step (never mixed), phasemig's own
tables hold nothing of the interrupted run, and the same step then succeeds
and verifies.  The cluster is running again when the test ends, whatever
happens.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_crash")
N_PROJECTS, PER_PROJECT = 60000, 10


def pg_ctl(*args):
    d = pmtest.cluster_dir()
    argv = pmtest.as_postgres([os.path.join(pmtest.pg_bindir(), "pg_ctl"), "-D", os.path.join(d, "data")]
                              + list(args))
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def server_up():
    try:
        with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
            cur.execute("SELECT 1")
            return True
    except psycopg2.Error:
        return False


def ensure_running():
    """Starts the cluster again if it is down (the test must leave it up)."""
    if server_up():
        return True
    d = pmtest.cluster_dir()
    if d and not os.path.exists(os.path.join(d, "data", "postmaster.pid")):
        r = pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(d, "server.log"))
        print(f"pg_ctl start: rc {r.returncode} {r.stdout.strip()} {r.stderr.strip()}", flush=True)
    return pmtest.wait_for(server_up, timeout=90, interval=0.2)


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except PermissionError:
        subprocess.run(pmtest.as_postgres(["kill", "-9", str(pid)]), check=True)


def describe(cur):
    return {"fingerprint": pmtest.quick_fingerprint(cur), "snapshot": pmtest.state_snapshot(cur)}


def same_as(label, cur, before, state):
    now = describe(cur)
    fp, bfp = now["fingerprint"], before["fingerprint"]
    diff = sorted(k for k in set(fp) | set(bfp) if fp.get(k) != bfp.get(k))
    R.check(not diff, f"{label}: tables as before the step: changed {diff}")
    R.check(now["snapshot"]["state"] == state,
            f"{label}: phasemig_status says {now['snapshot']['state']}, expected {state} (never mixed)")
    R.check(now["snapshot"] == before["snapshot"],
            f"{label}: phasemig's tables hold nothing of the interrupted run: {before['snapshot']} -> "
            f"{now['snapshot']}")
    cur.execute("SELECT phasemig_status() ->> 'detail'")
    print(f"{label}: after recovery: state {now['snapshot']['state']}; {cur.fetchone()[0]}", flush=True)


def verify_passes(label, cur):
    cur.execute("SELECT check_no, check_name, detail FROM phasemig_verify() WHERE passed IS NOT TRUE")
    bad = cur.fetchall()
    R.check(not bad, f"{label}: verify passes: {bad}")


def start_step(db, step, stage, mid_rows=False):
    """Starts phasemig_<step>() in a session of its own; returns (call, pid)
    once phasemig_progress shows it in `stage` (with some rows done when
    mid_rows), or (call, None).  A checkpoint first keeps recovery short."""
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        cur.execute("CHECKPOINT")
    conn = pmtest.connect(db)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]

    def go():
        cur.execute(f"SELECT phasemig_{step}()")
        return cur.fetchone()[0]

    call = pmtest.Call(go)
    with contextlib.closing(pmtest.connect(db)) as o, o.cursor() as ocur:
        def reached():
            if call.ended:
                return "ended"
            ocur.execute("SELECT stage, rows_done, rows_total FROM phasemig_progress WHERE pid = %s", (pid,))
            row = ocur.fetchone()
            if row and row[0] == stage and (not mid_rows or (row[1] or 0) > 0):
                return row
            return None
        seen = pmtest.wait_for(reached, timeout=120, interval=0.005)
    if not seen or seen == "ended":
        call.join(120)
        R.check(False, f"{step}: never seen in stage {stage} before it ended ({call.error})")
        return call, None
    print(f"{step}: backend {pid} seen in stage {seen[0]}"
          + (f" ({seen[1]} of {seen[2]} rows)" if seen[1] is not None else ""), flush=True)
    return call, pid


def main():
    if not pmtest.cluster_dir():
        R.check(False, "PHASEMIG_CLUSTER_DIR is not set: the test stops and starts the cluster")
        return
    db = pmtest.bench_db("pmcrash", N_PROJECTS, PER_PROJECT)
    try:
        crashes(db)
    finally:
        if pmtest.wait_for(server_up, timeout=90, interval=0.2):
            pmtest.drop_db(db)


def crashes(db):
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        # Projects without phases would fail verify's coverage check once upgraded.
        cur.execute("DELETE FROM projects p WHERE NOT EXISTS (SELECT FROM project_phases f WHERE f.project_id = p.id)")
        cur.execute("SELECT phasemig_upgrade()")
        verify_passes("upgrade", cur)
        upgraded = describe(cur)

    # ---- 1. SIGKILL of the backend in the middle of a downgrade
    log_from = pmtest.server_log_size()
    call, pid = start_step(db, "downgrade", "assignments", mid_rows=True)
    if pid:
        kill9(pid)
        call.join(60)
        R.check(isinstance(call.error, psycopg2.OperationalError),
                f"downgrade: the killed session lost its connection: {call.error!r}")
        R.check(pmtest.wait_for(server_up, timeout=90, interval=0.2), "server recovered from the killed backend")
        log = pmtest.server_log_since(log_from)
        R.check("was terminated by signal 9" in log, "server log: the backend was killed")
        R.check("all server processes terminated; reinitializing" in log, "server log: crash recovery ran")
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            same_as("after SIGKILL during downgrade", cur, upgraded, "upgraded")
            t0 = time.monotonic()
            cur.execute("SELECT phasemig_downgrade()")
            print(f"downgrade after recovery: {time.monotonic() - t0:.2f} s", flush=True)
            verify_passes("downgrade after recovery", cur)
            legacy = describe(cur)
    else:
        return

    # ---- 2. Immediate shutdown of the server in the middle of an upgrade
    log_from = pmtest.server_log_size()
    call, pid = start_step(db, "upgrade", "phases")
    if pid:
        t0 = time.monotonic()
        r = pg_ctl("stop", "-m", "immediate")
        print(f"pg_ctl stop -m immediate: rc {r.returncode} in {time.monotonic() - t0:.2f} s", flush=True)
        R.check(r.returncode == 0, f"pg_ctl stop -m immediate: {r.stdout} {r.stderr}")
        call.join(60)
        R.check(isinstance(call.error, psycopg2.OperationalError),
                f"upgrade: the session lost its connection: {call.error!r}")
        R.check(not server_up(), "the server is down")
        r = pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(pmtest.cluster_dir(), "server.log"))
        R.check(r.returncode == 0, f"pg_ctl start: {r.stdout} {r.stderr}")
        R.check(pmtest.wait_for(server_up, timeout=90, interval=0.2), "server up again")
        log = pmtest.server_log_since(log_from)
        R.check("database system was interrupted" in log or "not properly shut down" in log,
                "server log: recovery after the immediate shutdown")
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            same_as("after immediate shutdown during upgrade", cur, legacy, "legacy")
            cur.execute("SELECT phasemig_upgrade()")
            verify_passes("upgrade after recovery", cur)
            after = describe(cur)
            R.check(after["fingerprint"]["projects rows"] == upgraded["fingerprint"]["projects rows"]
                    and after["fingerprint"]["project_phases rows"] == upgraded["fingerprint"]["project_phases rows"],
                    "the round trip after both crashes gives the upgraded rows back")


if __name__ == "__main__":
    R.run(main, always=ensure_running, always_what="the cluster is running at the end")
