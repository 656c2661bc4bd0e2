"""Cancels and memory (SPEC §6 and §7, issue "Hardening").

Cancels: pg_cancel_backend() and statement_timeout at several points of
upgrade, downgrade and verify (early, in the middle of the table rewrites,
late), on 100,000 projects and 1,000,000 assignments (the CI size of the benchmark): the call ends within 1.5 s of
the cancel, with SQLSTATE 57014; the server stays up (same postmaster start
time, the session itself still works); the transaction rolled back (rows and
shape, relfilenodes, phasemig_status state and phasemig's own tables as they
were).  The late points run as dry runs, so that a cancel arriving after the
step's end cannot commit it.

Memory: one session makes 1,000 failing calls (preflight refusals, calls in
the wrong state, fault injections, phasemig_phase_for in the wrong state,
statement_timeout cancels of short steps); the backend's anonymous memory
(RssAnon in /proc/<pid>/status) after them is within 20 MB of what it was
after a warm-up.
"""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_cancel")
MAX_LATENCY = 1.5
N_PROJECTS, PER_PROJECT = 100000, 10
LATENCIES = []
GHOSTS = []


def postmaster_start(cur):
    cur.execute("SELECT pg_postmaster_start_time()")
    return cur.fetchone()[0]


class Target:
    def __init__(self, db):
        self.db = db
        self.obs = pmtest.connect(db)
        self.ocur = self.obs.cursor()
        self.started = postmaster_start(self.ocur)

    def baseline(self):
        self.fp = pmtest.quick_fingerprint(self.ocur)
        self.snap = pmtest.state_snapshot(self.ocur)

    def stage_of(self, pid):
        self.ocur.execute("SELECT stage, rows_done, rows_total FROM phasemig_progress WHERE pid = %s", (pid,))
        return self.ocur.fetchone()

    def cancel(self, label, sql, stage=None, delay=0.0, timeout_ms=None, tries=1):
        """Runs sql in a new session and cancels it: at `stage` (+ delay)
        with pg_cancel_backend, or by statement_timeout = timeout_ms.  With
        tries > 1 (dry runs only: a call that ends before the cancel lands
        changes nothing), a miss is tried again, earlier."""
        for attempt in range(tries):
            last = attempt == tries - 1
            if self._cancel(label, sql, stage, delay, timeout_ms, miss_ok=not last):
                return
            print(f"{label}: the call ended before the cancel; again, earlier", flush=True)
            delay = 0.0
            if timeout_ms:
                timeout_ms *= 0.8

    def _cancel(self, label, sql, stage, delay, timeout_ms, miss_ok):
        conn = pmtest.connect(self.db)
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        if timeout_ms:
            cur.execute(f"SET statement_timeout = {int(timeout_ms)}")
        seen = None

        def go():
            cur.execute(sql)
            return cur.fetchall()

        t_start = time.monotonic()
        call = pmtest.Call(go)
        t_cancel = None
        if stage:
            def reached():
                if call.ended:
                    return "ended"
                row = self.stage_of(pid)
                return row if row and row[0] == stage else None
            seen = pmtest.wait_for(reached, timeout=120, interval=0.005)
            if seen and seen != "ended":
                time.sleep(delay)
                seen = self.stage_of(pid)
                t_cancel = time.monotonic()
                self.ocur.execute("SELECT pg_cancel_backend(%s)", (pid,))
        else:
            t_cancel = t_start + timeout_ms / 1000.0
        call.join(120)
        e = call.error
        code = getattr(e, "pgcode", None)
        latency = call.ended - t_cancel if (call.ended and t_cancel) else None
        where = f"stage {seen[0]}" + (f" ({seen[1]} of {seen[2]} rows)" if seen[1] is not None else "") \
            if seen and seen != "ended" else f"after {timeout_ms} ms" if timeout_ms else f"never reached {stage}"
        missed = e is None or t_cancel is None
        if missed and miss_ok:
            conn.close()
            return False
        print(f"{label}: cancelled at {where}; ended {latency if latency is None else round(latency, 3)} s "
              f"after the cancel; SQLSTATE {code}", flush=True)
        ok = R.check(t_cancel is not None, f"{label}: the call reached stage {stage} before it ended ({seen})")
        if ok:
            R.check(code == "57014", f"{label}: SQLSTATE 57014, got {code}: {e}")
            R.check(latency is not None and latency < MAX_LATENCY,
                    f"{label}: ended {latency} s after the cancel (limit {MAX_LATENCY} s)")
            if latency is not None:
                LATENCIES.append((label, latency))
        # The cancelled session, now idle, is no longer shown as running a step.
        if self.stage_of(pid):
            GHOSTS.append(label)
        # The session itself still works, and the server did not restart.
        code2, e2 = pmtest.sqlstate(cur, "SELECT 1")
        R.check(code2 is None, f"{label}: the session still works: {e2}")
        conn.close()
        R.check(postmaster_start(self.ocur) == self.started, f"{label}: the server did not restart")
        fp = pmtest.quick_fingerprint(self.ocur)
        diff = sorted(k for k in set(fp) | set(self.fp) if fp.get(k) != self.fp.get(k))
        R.check(not diff, f"{label}: rolled back: changed {diff}")
        snap = pmtest.state_snapshot(self.ocur)
        R.check(snap == self.snap, f"{label}: status and phasemig tables unchanged: {self.snap} -> {snap}")
        if e is None and snap["state"] != self.snap["state"]:
            raise RuntimeError(f"{label}: the step committed before the cancel; the cancel points after it "
                               "would start from the wrong state")
        return True

    def timed(self, sql):
        t0 = time.monotonic()
        self.ocur.execute(sql)
        return time.monotonic() - t0

    def timed_step(self, sql):
        """Seconds a step takes, and the seconds of each of its stages."""
        t0 = time.monotonic()
        self.ocur.execute(sql)
        took = time.monotonic() - t0
        stages = {k: float(v) / 1000.0 for k, v in self.ocur.fetchone()[0]["timings"].items()}
        return took, stages


def cancels():
    db = pmtest.bench_db("pmcancel", N_PROJECTS, PER_PROJECT)
    try:
        t = Target(db)
        t.baseline()

        # ---- upgrade (legacy)
        up = "SELECT phasemig_upgrade()"
        up_dry = "SELECT phasemig_upgrade(dry_run => true)"
        # Two dry runs (the first one warms the caches and sets hint bits);
        # the shorter sets the cancel points.  Cancels of real (not dry)
        # runs stay within the first half, so that none can miss and commit.
        T0, _ = t.timed_step(up_dry)
        T, st = t.timed_step(up_dry)
        T = min(T0, T)
        print(f"upgrade dry run: {T:.2f} s; stages " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()), flush=True)
        # Cancels a third into a stage, as measured by the dry run.
        t.cancel("upgrade early (preflight)", up, stage="preflight", delay=st.get("preflight", 0) / 3)
        t.cancel("upgrade archive", up, stage="archive", delay=st.get("archive", 0) / 3)
        t.cancel("upgrade mid-rewrite (phases)", up, stage="phases", delay=st.get("phases", 0) / 3)
        t.cancel("upgrade late (indexes, dry run)", up_dry, stage="indexes", tries=3)
        t.cancel("upgrade statement_timeout 25%", up, timeout_ms=T * 250)
        t.cancel("upgrade statement_timeout 50%", up, timeout_ms=T * 500)
        t.cancel("upgrade statement_timeout 75% (dry run)", up_dry, timeout_ms=T * 750, tries=3)
        t.cancel("upgrade statement_timeout 95% (dry run)", up_dry, timeout_ms=T * 950, tries=3)
        t.ocur.execute(up)

        # ---- verify (upgraded)
        t.baseline()
        ver = "SELECT * FROM phasemig_verify()"
        T = t.timed(ver)
        t.baseline()  # that verify added a history row
        print(f"verify (upgraded): {T:.2f} s", flush=True)
        t.cancel("verify early (checks)", ver, stage="checks")
        t.cancel("verify coverage", ver, stage="coverage")
        t.cancel("verify late (assignments)", ver, stage="assignments")
        t.cancel("verify statement_timeout 50%", ver, timeout_ms=T * 500)

        # ---- downgrade (upgraded)
        down = "SELECT phasemig_downgrade()"
        down_dry = "SELECT phasemig_downgrade(dry_run => true)"
        T0, _ = t.timed_step(down_dry)
        T, st = t.timed_step(down_dry)
        T = min(T0, T)
        print(f"downgrade dry run: {T:.2f} s; stages " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()),
              flush=True)
        t.cancel("downgrade early (preflight)", down, stage="preflight", delay=st.get("preflight", 0) / 3)
        t.cancel("downgrade archive", down, stage="archive", delay=st.get("archive", 0) / 3)
        t.cancel("downgrade mid-rewrite (assignments)", down, stage="assignments",
                 delay=st.get("assignments", 0) / 4)
        t.cancel("downgrade late (phases, dry run)", down_dry, stage="phases", tries=3)
        t.cancel("downgrade statement_timeout 25%", down, timeout_ms=T * 250)
        t.cancel("downgrade statement_timeout 50%", down, timeout_ms=T * 500)
        t.cancel("downgrade statement_timeout 75% (dry run)", down_dry, timeout_ms=T * 750, tries=3)
        t.cancel("downgrade statement_timeout 95% (dry run)", down_dry, timeout_ms=T * 950, tries=3)
        t.ocur.execute(down)

        # ---- verify (legacy)
        t.baseline()
        T = t.timed(ver)
        t.baseline()
        print(f"verify (legacy): {T:.2f} s", flush=True)
        t.cancel("verify legacy (checks)", ver, stage="checks", delay=T / 3)
        t.cancel("verify legacy statement_timeout 50%", ver, timeout_ms=T * 500)
        t.obs.close()
    finally:
        pmtest.drop_db(db)
    R.check(not GHOSTS, f"after a cancel, phasemig_progress still shows the idle session running the step "
            f"({len(GHOSTS)} cases: {GHOSTS[:4]} ...)")
    if LATENCIES:
        worst = max(LATENCIES, key=lambda x: x[1])
        print(f"cancel latency: {len(LATENCIES)} cancels, median "
              f"{sorted(l for _, l in LATENCIES)[len(LATENCIES) // 2]:.3f} s, worst {worst[1]:.3f} s ({worst[0]})",
              flush=True)


def memory():
    db = pmtest.fresh_db("pmmemory")
    try:
        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            pmtest.load_seed(cur, "seed")
            pmtest.load_seed(cur, "up")
            cur.execute("SELECT phasemig_upgrade('up')")
            # A preflight refusal: a phase_type value that is neither PLANNING nor EXECUTION.
            cur.execute("SELECT pm_legacy_schema('bad', 'bigint', 'varchar')")
            cur.execute("INSERT INTO bad.projects VALUES (1, 'A', '2025-01-01', '2025-03-31')")
            cur.execute("INSERT INTO bad.project_phases (id, project_id, phase_type) VALUES (11, 1, 'TESTING')")
            cur.execute("INSERT INTO bad.resource_assignments (id, project_id, project_phase_id, assignment_date)"
                        " VALUES (101, 1, 11, '2025-01-30')")
            # Big enough that a dry run takes some tens of milliseconds.
            with open(pmtest.BENCH_GENERATE) as f:
                cur.execute(f.read())
            cur.execute("SELECT phasemig_bench.phasemig_bench_generate('mid', 3000, 10)")
            before = {s: pmtest.quick_fingerprint(cur, s) for s in ("seed", "up", "bad", "mid")}
            cur.execute("SELECT count(*) FROM phasemig_run")
            runs = cur.fetchone()[0]

        conn = pmtest.connect(db)
        cur = conn.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        up_stages = pmtest.step_stages("upgrade")
        calls = [
            ("preflight refusal", "SELECT phasemig_upgrade('bad')", None),
            ("preflight refusal (dry run)", "SELECT phasemig_upgrade('bad', dry_run => true)", None),
            ("wrong state: downgrade legacy", "SELECT phasemig_downgrade('seed')", None),
            ("wrong state: upgrade upgraded", "SELECT phasemig_upgrade('up')", None),
            ("fault injection", "SELECT phasemig_upgrade('seed')", "fault"),
            ("fault injection (dry run, larger schema)", "SELECT phasemig_upgrade('mid', dry_run => true)", "fault"),
            ("phase_for in the wrong state",
             "SELECT phasemig_phase_for(id, start_date, 'seed') FROM seed.projects", None),
            ("phase_for, no such schema", "SELECT phasemig_phase_for(1::bigint, '2025-01-01', 'nowhere')", None),
            ("statement_timeout: upgrade dry run", "SELECT phasemig_upgrade('mid', dry_run => true)", "timeout"),
            ("statement_timeout: verify", "SELECT * FROM phasemig_verify('mid')", "timeout_short"),
        ]
        outcomes = {}

        def one(i):
            name, sql, kind = calls[i % len(calls)]
            if kind == "fault":
                cur.execute("SET phasemig.fault_injection = %s", ("upgrade:" + up_stages[(i // len(calls)) % len(up_stages)],))
            elif kind == "timeout":
                cur.execute("SET statement_timeout = '15ms'")
            elif kind == "timeout_short":
                cur.execute("SET statement_timeout = '3ms'")
            code, _ = pmtest.sqlstate(cur, sql)
            if kind == "fault":
                cur.execute("RESET phasemig.fault_injection")
            elif kind:
                cur.execute("RESET statement_timeout")
            outcomes.setdefault(name, {})
            outcomes[name][code] = outcomes[name].get(code, 0) + 1

        for i in range(100):
            one(i)
        warm = pmtest.backend_memory(pid)
        t0 = time.monotonic()
        outcomes.clear()
        for i in range(1000):
            one(i)
        took = time.monotonic() - t0
        end = pmtest.backend_memory(pid)
        conn.close()
        print(f"memory: 1,000 failing calls in {took:.1f} s; outcomes (SQLSTATE: calls): "
              + "; ".join(f"{k}: {v}" for k, v in outcomes.items()), flush=True)
        print("memory: backend {pid} after warm-up / after 1,000 calls: ".format(pid=pid)
              + ", ".join(f"{k} {warm.get(k, 0) / 1024:.1f} / {end.get(k, 0) / 1024:.1f} MB"
                          for k in ("VmRSS", "RssAnon", "RssShmem", "VmHWM", "VmData")), flush=True)
        failing = sum(n for v in outcomes.values() for code, n in v.items() if code is not None)
        R.check(failing >= 950, f"memory: at least 950 of the 1,000 calls failed: {failing}")
        for name, v in outcomes.items():
            if "statement_timeout" in name:
                R.check(v.get("57014", 0) > 0, f"memory: {name} was cancelled by statement_timeout: {v}")
            else:
                R.check(None not in v, f"memory: {name} always failed: {v}")
        growth = end["RssAnon"] - warm["RssAnon"]
        R.check(growth < 20 * 1024, f"memory: RssAnon grew by {growth / 1024:.1f} MB over 1,000 failing calls")
        data_growth = end.get("VmData", 0) - warm.get("VmData", 0)
        R.check(data_growth < 20 * 1024, f"memory: VmData grew by {data_growth / 1024:.1f} MB")

        with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
            after = {s: pmtest.quick_fingerprint(cur, s) for s in ("seed", "up", "bad", "mid")}
            R.check(after == before, "memory: the failing calls changed nothing")
            cur.execute("SELECT count(*) FROM phasemig_run")
            R.check(cur.fetchone()[0] == runs, "memory: no run recorded")
    finally:
        pmtest.drop_db(db)


if __name__ == "__main__":
    R.run(cancels, memory)
