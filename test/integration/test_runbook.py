"""docs/RUNBOOK.md is runnable as written (issue "Operations").

The runbook marks its blocks by the fence's info string:

  ```sql            runnable: psql, connected to the application database
  ```bash           runnable: bash -euo pipefail, with the PG* variables set
  ```text output    the exact output (stdout) of the runnable block above it,
                    on the seed-shaped demo database
  anything else     not run: ```sql norun / ```bash norun (examples to adapt,
                    or steps for another situation), ```text, ```python, ...

This test creates a scratch database with the seed-shaped data
(test/data/seed_demo.sql, in schema public, no extension yet), then runs every
runnable block in document order -- sql blocks with
`psql -X -v ON_ERROR_STOP=1 -f <block>`, bash blocks with `bash -euo pipefail`,
each in a session of its own, with PGHOST/PGPORT/PGUSER from the environment,
PGDATABASE = the scratch database and BACKUP_DIR = a scratch directory.  Each
block must succeed, and where the runbook states an output, stdout must be
that output (trailing blanks and psql's "You are now connected to ..." lines
aside).  A block that fails does not stop the blocks after it.

It also checks that the runbook is complete: every preflight code in
src/pg/model.cpp and src/pg/status.cpp, every verify check name in
src/pg/verify.cpp and every phasemig.* setting (except the test-only
fault_injection) is explained, and every phasemig.* setting it names exists.
"""
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_runbook")
RUNBOOK = os.path.join(pmtest.ROOT, "docs", "RUNBOOK.md")
FENCE = re.compile(r"^```(.*)$")
VERBOSE = "--print" in sys.argv  # show every block's output (for authors of the runbook)


def blocks(path):
    """[(kind, info, text, line)] for every fenced block; kind is 'sql', 'bash',
    'output' or 'other'."""
    out = []
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        info = m.group(1).strip()
        start = i + 1
        j = start
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        text = "\n".join(lines[start:j])
        if info in ("sql", "bash"):
            kind = info
        elif info == "text output":
            kind = "output"
        else:
            kind = "other"
        out.append((kind, info, text, start))
        i = j + 1
    return out


def normalize(text):
    lines = [l.rstrip() for l in text.split("\n") if not l.startswith("You are now connected to database")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def run_block(kind, text, env, workdir):
    path = os.path.join(workdir, "block." + kind)
    with open(path, "w") as f:
        f.write(text + "\n")
    if kind == "sql":
        argv = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-P", "pager=off", "-f", path]
    else:
        argv = ["bash", "-euo", "pipefail", path]
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def completeness(doc, db):
    src = os.path.join(pmtest.ROOT, "src", "pg")
    model = open(os.path.join(src, "model.cpp")).read()
    status = open(os.path.join(src, "status.cpp")).read()
    verify = open(os.path.join(src, "verify.cpp")).read()
    codes = set(re.findall(r'finding\(\s*"(?:error|warning)",\s*"([a-z_]+)"', model))
    codes |= set(re.findall(r'\{core::PlanProblem::\w+,\s*"([a-z_]+)"', model))
    codes |= set(re.findall(r'f\.code = "([a-z_]+)"', status))
    R.check(len(codes) >= 25, f"found the preflight codes in the sources: {sorted(codes)}")
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    R.check(not missing, f"the runbook explains every preflight code (as `code`); missing: {missing}")
    documented = set(re.findall(r"^\| *(?:error|warning)[^|]*\| *`([a-z_]+)`", doc, re.M))
    unknown = sorted(documented - codes)
    R.check(not unknown, f"every code in the runbook's code tables exists in the sources: {unknown}")

    checks = set(re.findall(r'CheckResult(?: r)?\{\s*(?:\d+|no),\s*"([^"]+)"', verify))
    R.check(len(checks) >= 17, f"found the verify checks in the sources: {sorted(checks)}")
    missing = sorted(c for c in checks if c not in doc)
    R.check(not missing, f"the runbook says what to do about every check; missing: {missing}")

    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        cur.execute("LOAD 'phasemig'")
        cur.execute("SELECT name FROM pg_settings WHERE name LIKE 'phasemig.%'")
        settings = {r[0] for r in cur.fetchall()}
    named = set(re.findall(r"\bphasemig\.([a-z_]+)\b", doc))
    named = {"phasemig." + n for n in named if n not in ("so", "control", "sql", "dump")}
    R.check(named <= settings, f"every setting the runbook names exists: {sorted(named - settings)}")
    undocumented = sorted(s for s in settings - named if s != "phasemig.fault_injection")
    R.check(not undocumented, f"the runbook explains every setting: missing {undocumented}")

    for rev in ("976e6adbac6f", "92023c163a26"):
        R.check(rev in doc, f"the runbook names revision {rev}")


def main():
    doc = open(RUNBOOK).read()
    found = blocks(RUNBOOK)
    runnable = [b for b in found if b[0] in ("sql", "bash")]
    outputs = [b for b in found if b[0] == "output"]
    R.check(len(runnable) >= 20 and len(outputs) >= 10,
            f"the runbook has runnable blocks ({len(runnable)}) and stated outputs ({len(outputs)})")
    # An output belongs to the runnable block just before it.
    pending = None
    pairs = []
    for b in found:
        if b[0] in ("sql", "bash"):
            pending = [b, None]
            pairs.append(pending)
        elif b[0] == "output":
            ok = pending is not None and pending[1] is None
            R.check(ok, f"the output block at line {b[3]} follows a runnable block (and is its only output)")
            if ok:
                pending[1] = b

    name = f"pmrunbook_{os.getpid()}"
    with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    workdir = tempfile.mkdtemp(prefix="pmrunbook.")
    try:
        with contextlib.closing(pmtest.connect(name)) as c, c.cursor() as cur:
            pmtest.load_seed(cur)
        env = dict(os.environ)
        env.update(PGDATABASE=name, BACKUP_DIR=workdir, PAGER="cat", PSQL_PAGER="cat")
        env.pop("PGOPTIONS", None)
        for (block, expected) in pairs:
            kind, _, text, line = block
            rc, out, err, took = run_block(kind, text, env, workdir)
            first = next((l for l in text.split("\n") if l.strip() and not l.startswith(("--", "#", "\\", ":"))),
                         text.split("\n")[0])
            label = f"{kind} block at line {line} ({first.strip()[:60]})"
            if VERBOSE:
                print(f"==== {label}: rc {rc}, {took:.2f} s\n{out}" + (f"---- stderr\n{err}" if err else ""),
                      flush=True)
            R.check(rc == 0, f"{label} succeeds; rc {rc}\n{err.strip()}")
            if expected is not None:
                want, got = normalize(expected[2]), normalize(out)
                R.check(got == want, f"{label}: output as stated at line {expected[3]}\n"
                                     f"--- stated\n{want}\n--- got\n{got}")
        completeness(doc, name)
    finally:
        # The runbook's own last blocks unschedule its job; this is for a run
        # that stopped before them.
        with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
            cur.execute("SELECT to_regclass('cron.job') IS NOT NULL")
            if cur.fetchone()[0]:
                cur.execute("SELECT jobid FROM cron.job WHERE jobname = %s", (f"phasemig-verify-{name}",))
                for (jobid,) in cur.fetchall():
                    R.check(False, f"the runbook left its pg_cron job {jobid} scheduled")
                    cur.execute("SELECT cron.unschedule(%s)", (jobid,))
        pmtest.drop_db(name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    R.run(main)
