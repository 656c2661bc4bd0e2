#!/usr/bin/python3
"""Archives are configuration tables (SPEC §5): pg_dump carries them, and a
restored database can still be migrated back exactly.

  A. the seed database (uuid ids), upgraded, no edits: dumped plain and custom,
     restored into fresh databases; status, run log, verify history and
     archives are the original's; the downgrade is exact (fingerprint = the
     pre-upgrade one); new runs and verifications continue the sequences; a
     later upgrade restores the timelines.
  B. the seed database with user edits after the upgrade, and
  C. a generated database with bigint ids (bench/generate.sql) with edits:
     dumped, restored; in every copy (and in the original, the oracle) the
     downgrade gives untouched assignments their archived phase and the others
     the SPEC §3 date rule (modelled here), with the WARNING count; the copies
     end identical to the original; a later upgrade restores the edits.  B is
     also dumped again in the legacy state (the downgrade's archive) and
     upgraded from that dump.
  D. phasemig_purge_archive (in a restored copy of A): status shows no
     archive, the downgrade falls back to the date rule (the seed's WARNING
     with 420), what verify's budget check says is printed and checked for
     sense, and a new upgrade/downgrade archives again.

Environment: PHASEMIG_DUMP_SEED (seed of the generated database, default
from the clock, printed first), PHASEMIG_DUMP_KEEP=1 keeps the databases and
dump files.
"""
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

GENERATE_SQL = os.path.join(pmtest.ROOT, "bench", "generate.sql")
WARN_RE = re.compile(r"WARNING:\s+(\d+) assignments were outside phase date ranges and assigned to first phase")
STATE_TABLES = ("phasemig_run", "phasemig_phase_archive", "phasemig_assignment_archive", "phasemig_object_archive",
                "phasemig_verify_history")
SCHEMA = "app"

res = pmtest.Result("test_dump_restore")
databases = []
workdir = tempfile.mkdtemp(prefix="pmdump_")


def pg_path():
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return bindir


def sh(*argv):
    """Runs a client program; a failure is a failed check with its output."""
    p = subprocess.run(list(argv), capture_output=True, text=True)
    ok = p.returncode == 0
    res.check(ok, f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[:2000]}")
    return ok, p.stdout + p.stderr


def new_db(prefix):
    name = pmtest.fresh_db(prefix)
    databases.append(name)
    return name


def dump_and_restore(src, fmt, tag):
    """pg_dump src in format fmt ('plain' or 'custom'); restore into a new
    database made with createdb; returns its name."""
    path = os.path.join(workdir, f"{tag}.{'sql' if fmt == 'plain' else 'dump'}")
    dst = f"pmrest_{tag}_{uuid.uuid4().hex[:6]}"
    if fmt == "plain":
        sh("pg_dump", "-Fp", "-f", path, src)
    else:
        sh("pg_dump", "-Fc", "-f", path, src)
    sh("createdb", dst)
    databases.append(dst)
    if fmt == "plain":
        sh("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst, "-f", path)
    else:
        sh("pg_restore", "--exit-on-error", "-d", dst, path)
    return dst


class Db:
    def __init__(self, name):
        self.name = name
        self.conn = pmtest.connect(name)
        self.cur = self.conn.cursor()

    def one(self, sql, args=None):
        self.cur.execute(sql, args)
        return self.cur.fetchone()[0]

    def all(self, sql, args=None):
        self.cur.execute(sql, args)
        return self.cur.fetchall()

    def step(self, name, **kw):
        """phasemig_upgrade / phasemig_downgrade; returns (summary, warning count)."""
        del self.conn.notices[:]
        args = ", ".join(f"{k} => %({k})s" for k in kw)
        self.cur.execute(f"SELECT phasemig_{name}(%(s)s{', ' + args if args else ''})::text", dict(kw, s=SCHEMA))
        summary = json.loads(self.one_fetched())
        warned = [int(m.group(1)) for n in self.conn.notices for m in [WARN_RE.search(n)] if m]
        return summary, (warned[0] if warned else 0)

    def one_fetched(self):
        return self.cur.fetchone()[0]

    def status(self):
        return self.one("SELECT phasemig_status(%s)", (SCHEMA,))

    def verify(self):
        return {r[0]: (r[1], r[2], r[3]) for r in
                self.all("SELECT check_no, check_name, passed, detail FROM phasemig_verify(%s)", (SCHEMA,))}

    def fingerprint(self):
        return pmtest.fingerprint(self.cur, SCHEMA)

    def ext_state(self):
        """Rows of phasemig's own tables (count and a hash of every row)."""
        out = {}
        for t in STATE_TABLES:
            out[t] = self.one(f"SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), ''))"
                              f"  FROM {t} x")
        for s in ("phasemig_run_run_id_seq", "phasemig_verify_history_verify_id_seq",
                  "phasemig_object_archive_object_no_seq"):
            out[s] = self.one(f"SELECT last_value || ':' || is_called FROM {s}")
        return out

    def phases(self):
        return {r[0]: r[1:] for r in self.all(
            f"SELECT id::text, project_id::text, name, start_date, end_date, description FROM {SCHEMA}.project_phases")}

    def legacy_assignments(self):
        return {r[0]: r[1:] for r in self.all(
            f"SELECT id::text, project_id::text, assignment_date, project_phase_id::text"
            f"  FROM {SCHEMA}.resource_assignments")}

    def assignments(self):
        return {r[0]: r[1:] for r in self.all(
            f"SELECT id::text, project_id::text, assignment_date FROM {SCHEMA}.resource_assignments")}

    def close(self):
        self.conn.close()


def idkey(v):
    try:
        return (0, int(v))
    except ValueError:
        return (1, uuid.UUID(v).int)


def date_rule(phases, project, on_date):
    """SPEC §3: among the project's phases holding the date, earliest start then
    smallest id; none -> the project's first phase (earliest start, then id).
    Returns (phase id, fell back)."""
    mine = sorted((p[2], idkey(i), i, p[3]) for i, p in phases.items() if p[0] == project)
    for start, _, i, end in mine:
        if start <= on_date <= end:
            return i, False
    return mine[0][2], True


def expected_downgrade(pre_legacy, phases, assignments):
    """project_phase_id per assignment after a downgrade with the archive of the
    upgrade (pre_legacy: assignment -> (project, date, phase) at upgrade time)
    and the fallback count."""
    out, outside, restored = {}, 0, 0
    for aid, (project, on_date) in assignments.items():
        arch = pre_legacy.get(aid)
        if arch and arch[0] == project and arch[1] == on_date and arch[2] in phases and phases[arch[2]][0] == project:
            out[aid] = (project, on_date, arch[2])
            restored += 1
            continue
        ph, fell = date_rule(phases, project, on_date)
        outside += fell
        out[aid] = (project, on_date, ph)
    return out, outside, restored


def diff(want, got, limit=5):
    keys = [k for k in sorted(set(want) | set(got), key=str) if want.get(k) != got.get(k)]
    return "; ".join(f"{k}: expected {want.get(k)!r}, got {got.get(k)!r}" for k in keys[:limit]) + (
        f" ... and {len(keys) - limit} more" if len(keys) > limit else "")


def snapshot(db):
    """What pg_dump must carry: status, run log, archives, verify history,
    sequences, and the application's tables."""
    return {"status": db.status(), "state": db.ext_state(), "fingerprint": db.fingerprint()}


def check_restored_copy(orig_snap, copy, where):
    c = snapshot(copy)
    res.check(c["status"] == orig_snap["status"], f"{where}: phasemig_status differs from the original's: "
                                                  f"{c['status']} vs {orig_snap['status']}")
    for k, v in orig_snap["state"].items():
        res.check(v == c["state"][k], f"{where}: {k} did not come along: original {v}, restored {c['state'][k]}")
    res.check(c["fingerprint"] == orig_snap["fingerprint"],
              f"{where}: the application tables differ from the original's: "
              f"{diff(orig_snap['fingerprint'], c['fingerprint'])}")


# --------------------------------------------------------------------------- A. seed, no edits

def scenario_a():
    name = new_db("pmdumpA")
    orig = Db(name)
    pmtest.load_seed(orig.cur, SCHEMA)
    fp_legacy = orig.fingerprint()
    up, _ = orig.step("upgrade")
    res.check(up["assignments"] == {"total": 1011, "matched": 591, "outside": 420, "archived": 1011},
              f"A: seed upgrade assignments {up['assignments']}")
    v = orig.verify()
    res.check(all(r[1] for r in v.values()), f"A: verify of the upgraded seed fails: {v}")
    upgraded_phases = orig.phases()
    status = orig.status()
    res.check(status["archive"]["upgrade"] is not None and status["archive"]["upgrade"]["assignments"] == 1011,
              f"A: status before the dump shows no upgrade archive: {status['archive']}")

    copies = {}
    snap = snapshot(orig)
    for fmt in ("plain", "custom"):
        dst = dump_and_restore(name, fmt, f"a_{fmt}")
        copy = Db(dst)
        copies[fmt] = copy
        where = f"A ({fmt} dump)"
        check_restored_copy(snap, copy, where)
        st = copy.status()
        res.check(st["state"] == "upgraded" and st["archive"]["upgrade"]["assignments"] == 1011
                  and st["archive"]["upgrade"]["phases"] == 8,
                  f"{where}: status does not show the archive: {st['archive']}")
        hist = copy.all("SELECT state, passed, checks FROM phasemig_verify_history ORDER BY verify_id")
        res.check(hist == [("upgraded", True, 9)], f"{where}: verify history {hist}")
        runs = copy.all("SELECT run_id, step, assignments, archived_assignments FROM phasemig_run ORDER BY run_id")
        res.check(runs == [(1, "upgrade", 1011, 1011)], f"{where}: run log {runs}")
        # verify in the copy: the baseline of the restored run log, a new history row
        v = copy.verify()
        res.check(all(r[1] for r in v.values()) and "upgrade run 1" in v[7][2],
                  f"{where}: verify in the restored copy: {v.get(7)}")
        res.check(copy.one("SELECT max(verify_id) FROM phasemig_verify_history") == 2,
                  f"{where}: the verify history sequence did not come along")
    # The plain copy: downgrade exact, then a later upgrade restores the timelines.
    copy = copies["plain"]
    down, warn = copy.step("downgrade")
    res.check(down["run_id"] == 2, f"A (plain): the downgrade in the copy is run {down['run_id']}, not 2")
    res.check(down["assignments"] == {"total": 1011, "matched": 0, "outside": 0, "restored": 1011} and warn == 0,
              f"A (plain): downgrade assignments {down['assignments']}, warning {warn}")
    fp = copy.fingerprint()
    res.check(fp == fp_legacy, f"A (plain): the restored copy's downgrade is not exact: {diff(fp_legacy, fp)}")
    v = copy.verify()
    res.check(all(r[1] for r in v.values()), f"A (plain): legacy verify in the copy: {v}")
    up2, _ = copy.step("upgrade")
    res.check(up2["timelines"] == {"split": 0, "restored": 5}, f"A (plain): later upgrade timelines {up2['timelines']}")
    res.check(copy.phases() == upgraded_phases, "A (plain): the later upgrade's phases differ from the original's")
    # The original does the same: same result (the oracle).
    down_o, _ = orig.step("downgrade")
    res.check(orig.fingerprint() == fp_legacy, "A: the original's own downgrade is not exact")
    return orig, copies["custom"], fp_legacy, upgraded_phases


# --------------------------------------------------------------------------- B, C. with user edits

SEED_EDITS = """
-- Data Center Migration: rename, describe, move the boundary
UPDATE app.project_phases SET name = 'Discovery', description = 'scoping, it''s \\ "quoted"', end_date = end_date - 10
 WHERE id = md5('phase-1-planning')::uuid;
UPDATE app.project_phases SET name = 'Build', start_date = start_date - 10 WHERE id = md5('phase-1-execution')::uuid;
-- ERP Rollout: a phase added at the end (the timeline stays continuous)
UPDATE app.project_phases SET end_date = end_date - 20 WHERE id = md5('phase-2-execution')::uuid;
INSERT INTO app.project_phases (id, project_id, name, start_date, end_date, description, total_budget)
SELECT md5('phase-2-hypercare')::uuid, project_id, 'Hypercare Planning', end_date + 1, end_date + 20, '', 0
  FROM app.project_phases WHERE id = md5('phase-2-execution')::uuid;
-- Mobile App Redesign: its Planning phase removed, Execution covers the project
UPDATE app.project_phases e SET start_date = p.start_date
  FROM app.project_phases p WHERE e.id = md5('phase-3-execution')::uuid AND p.id = md5('phase-3-planning')::uuid;
DELETE FROM app.project_phases WHERE id = md5('phase-3-planning')::uuid;
-- Security Audit: a description only
UPDATE app.project_phases SET description = 'ünïcødé ✓' WHERE id = md5('phase-5-execution')::uuid;
-- assignments: new ones, moved in time, moved to another project
INSERT INTO app.resource_assignments (id, project_id, resource_id, assignment_date, allocation_percentage)
SELECT md5('new-assignment-' || n)::uuid, p.id, NULL, p.start_date + (n * 37) % (p.end_date - p.start_date + 60) - 30, 50
  FROM generate_series(1, 40) n JOIN app.projects p ON p.id = md5('project-' || (1 + n % 5))::uuid;
UPDATE app.resource_assignments SET assignment_date = assignment_date + 11
 WHERE id IN (SELECT md5('assignment-' || k)::uuid FROM generate_series(1, 1011, 17) k);
UPDATE app.resource_assignments SET project_id = md5('project-2')::uuid
 WHERE id IN (SELECT md5('assignment-' || k)::uuid FROM generate_series(5, 1011, 41) k);
-- moved away and back: unchanged, the archive still applies
UPDATE app.resource_assignments SET assignment_date = assignment_date + 5
 WHERE id IN (SELECT md5('assignment-' || k)::uuid FROM generate_series(3, 1011, 29) k);
UPDATE app.resource_assignments SET assignment_date = assignment_date - 5
 WHERE id IN (SELECT md5('assignment-' || k)::uuid FROM generate_series(3, 1011, 29) k);
"""


def generated_edits(rng):
    """Set-based user edits for the generated (bigint) database."""
    salt = rng.randint(1, 10 ** 6)
    return f"""
-- renames and descriptions
UPDATE app.project_phases SET name = name || ' (' || (id % 97) || ')',
       description = CASE WHEN id % 2 = 0 THEN 'note ' || id END
 WHERE hashint8(id + {salt}) % 5 = 0;
-- moved boundaries in two-phase projects: the first phase ends a day earlier
WITH two AS (SELECT project_id FROM app.project_phases GROUP BY 1
              HAVING count(*) = 2 AND hashint8(project_id + {salt}) % 4 = 0),
     f AS (SELECT DISTINCT ON (ph.project_id) ph.id, ph.project_id, ph.end_date FROM app.project_phases ph
             JOIN two USING (project_id) WHERE ph.end_date > ph.start_date ORDER BY ph.project_id, ph.start_date),
     moved AS (UPDATE app.project_phases ph SET end_date = ph.end_date - 1 FROM f WHERE ph.id = f.id
               RETURNING ph.project_id, ph.end_date)
UPDATE app.project_phases ph SET start_date = moved.end_date + 1
  FROM moved WHERE ph.project_id = moved.project_id AND ph.start_date = moved.end_date + 2;
-- a phase added at the end of some one-phase projects (split off the last 3 days)
WITH one AS (SELECT project_id FROM app.project_phases GROUP BY 1
              HAVING count(*) = 1 AND hashint8(project_id + {salt}) % 3 = 0),
     cut AS (UPDATE app.project_phases ph SET end_date = ph.end_date - 3 FROM one
              WHERE ph.project_id = one.project_id AND ph.end_date - ph.start_date > 5
              RETURNING ph.id, ph.project_id, ph.end_date)
INSERT INTO app.project_phases (id, project_id, name, start_date, end_date, description, total_budget)
SELECT 900000000 + cut.id, cut.project_id, 'Closing', cut.end_date + 1, cut.end_date + 3, 'added', 0 FROM cut;
-- new assignments, moved ones, one moved to another project
INSERT INTO app.resource_assignments (id, project_id, assignment_date)
SELECT 800000000 + n, p.id, p.start_date + (hashint4(n + {salt}) & 1023) % (p.end_date - p.start_date + 40) - 20
  FROM generate_series(1, 150) n
  JOIN LATERAL (SELECT id, start_date, end_date FROM app.projects pr
                 WHERE EXISTS (SELECT 1 FROM app.project_phases ph WHERE ph.project_id = pr.id)
                 ORDER BY hashint8(pr.id + n) LIMIT 1) p ON true;
UPDATE app.resource_assignments SET assignment_date = assignment_date + (id % 9)::int - 4
 WHERE hashint8(id + {salt}) % 13 = 0;
UPDATE app.resource_assignments a SET project_id = (SELECT min(project_id) FROM app.project_phases)
 WHERE hashint8(a.id + {salt}) % 101 = 0;
"""


def scenario_edits(label, build, edits_sql, dump_legacy_again=False):
    name = new_db(f"pmdump{label}")
    orig = Db(name)
    build(orig)
    fp_legacy = orig.fingerprint()
    pre = orig.legacy_assignments()
    up, _ = orig.step("upgrade")
    orig.cur.execute(edits_sql)
    edited = orig.phases()
    assignments = orig.assignments()
    v = orig.verify()
    print(f"{label}: after the edits: {len(edited)} phases, {len(assignments)} assignments; verify: "
          + ", ".join(f"{k}={r[1]}" for k, r in sorted(v.items())), flush=True)
    want, outside, restored = expected_downgrade(pre, edited, assignments)
    print(f"{label}: the model expects {restored} assignments restored from the archive, "
          f"{len(want) - restored - outside} matched by date, {outside} outside (WARNING)", flush=True)
    res.check(outside > 0 and restored > 0 and len(want) - restored - outside > 0,
              f"{label}: the edits do not exercise all three ways of the fill ({restored}, {outside})")

    snap = snapshot(orig)
    copies = {fmt: Db(dump_and_restore(name, fmt, f"{label.lower()}_{fmt}")) for fmt in ("plain", "custom")}
    results = {}
    for where, db in [("original", orig)] + [(f"{fmt} copy", c) for fmt, c in copies.items()]:
        w = f"{label} ({where})"
        if db is not orig:
            check_restored_copy(snap, db, w)
        down, warn = db.step("downgrade")
        got = db.legacy_assignments()
        res.check(got == want, f"{w}: project_phase_id after the downgrade: {diff(want, got)}")
        res.check(warn == outside, f"{w}: WARNING counts {warn} assignments, the date rule {outside}")
        res.check(down["assignments"] == {"total": len(want), "matched": len(want) - restored - outside,
                                          "outside": outside, "restored": restored},
                  f"{w}: downgrade summary {down['assignments']}")
        untouched = [a for a in want if a in pre and pre[a][:2] == want[a][:2] and pre[a][2] in edited
                     and edited[pre[a][2]][0] == want[a][0]]
        res.check(all(got.get(a) == pre[a] for a in untouched),
                  f"{w}: an untouched assignment did not get its archived phase back")
        v = db.verify()
        res.check(all(r[1] for r in v.values()), f"{w}: legacy verify: {[r for r in v.values() if not r[1]]}")
        results[where] = {"legacy": db.fingerprint(), "history": db.all(
            "SELECT run_id, step, projects, phases, assignments FROM phasemig_run ORDER BY run_id")}
        if dump_legacy_again and db is copies["custom"]:
            # dumped again in the legacy state: the downgrade's archive holds the edits
            again = Db(dump_and_restore(db.name, "custom", f"{label.lower()}_legacy"))
            res.check(again.status()["archive"]["downgrade"]["phases"] == len(edited),
                      f"{label} (legacy dump): status shows no downgrade archive: {again.status()['archive']}")
            up3, _ = again.step("upgrade")
            res.check(again.phases() == edited, f"{label} (legacy dump): the edits did not come back: "
                                                f"{diff(edited, again.phases())}")
            res.check(up3["timelines"]["split"] == 0, f"{label} (legacy dump): upgrade timelines {up3['timelines']}")
            again.close()
        up2, _ = db.step("upgrade")
        got_ph = db.phases()
        res.check(got_ph == edited, f"{w}: the later upgrade did not restore the edits: {diff(edited, got_ph)}")
        res.check(up2["timelines"]["split"] == 0, f"{w}: later upgrade timelines {up2['timelines']}")
        results[where]["upgraded"] = db.fingerprint()
    for where in results:
        if where != "original":
            res.check(results[where] == results["original"],
                      f"{label} ({where}): ends different from the original: "
                      f"{diff(results['original'], results[where])}")
    # And back once more: the edited legacy state again, exactly.
    for db in [orig] + list(copies.values()):
        db.step("downgrade")
        res.check(db.fingerprint() == results["original"]["legacy"], f"{label} ({db.name}): second round trip differs")
        db.close()
    return fp_legacy


def build_seed(db):
    pmtest.load_seed(db.cur, SCHEMA)


def build_generated(seed):
    def build(db):
        with open(GENERATE_SQL) as f:
            db.cur.execute(f.read())
        info = db.one("SELECT phasemig_bench.phasemig_bench_generate(%s, 400, 8, 'bigint', %s)", (SCHEMA, seed))
        print(f"C: generated {info}", flush=True)
        res.check(db.one(f"SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                         f" WHERE attrelid = '{SCHEMA}.project_phases'::regclass AND attname = 'id'") == "bigint",
                  "C: the generated ids are not bigint")
    return build


# --------------------------------------------------------------------------- D. purge

def scenario_purge(orig, copy, fp_legacy, upgraded_phases):
    """In the custom-format copy of A (upgraded, no edits)."""
    pre = orig.legacy_assignments()      # the original is back in the legacy state: the seed's own phases
    before = copy.status()["archive"]
    res.check(before["upgrade"] is not None, f"D: no archive before the purge: {before}")
    purged = copy.one("SELECT phasemig_purge_archive(%s)", (SCHEMA,))
    print(f"D: phasemig_purge_archive: {purged}", flush=True)
    res.check(purged.get("assignment_rows") == 1011 and purged.get("phase_rows") == 8,
              f"D: purge removed {purged}")
    st = copy.status()
    res.check(st["archive"] == {"upgrade": None, "downgrade": None}, f"D: status after the purge: {st['archive']}")
    res.check(copy.one("SELECT count(*) FROM phasemig_assignment_archive") == 0
              and copy.one("SELECT count(*) FROM phasemig_phase_archive") == 0,
              "D: archive rows left after the purge")
    res.check(copy.one("SELECT count(*) FROM phasemig_run WHERE archive_dropped_at IS NULL") == 0,
              "D: runs still marked as holding an archive")
    res.check(copy.one("SELECT count(*) FROM phasemig_verify_history") > 0, "D: the purge removed the verify history")
    v_up = copy.verify()
    print("D: verify (upgraded, archive purged): " + " | ".join(
        f"{k} {r[0]}: {r[1]} ({r[2]})" for k, r in sorted(v_up.items())), flush=True)
    res.check(v_up[7][1] is not False, f"D: budgets unchanged, yet verify's budget check fails after the purge: {v_up[7]}")
    res.check(v_up[7][1] is True or "baseline" in v_up[7][2],
              f"D: a NULL budget check must say there is no baseline: {v_up[7]}")
    res.check(all(r[1] for k, r in v_up.items() if k != 7), f"D: other checks after the purge: {v_up}")
    # Downgrade without an archive: the date rule for everyone, the seed's warning.
    phases = copy.phases()
    assignments = copy.assignments()
    want, outside, restored = expected_downgrade({}, phases, assignments)
    down, warn = copy.step("downgrade")
    res.check(warn == 420 and outside == 420, f"D: downgrade after the purge warned about {warn} (model {outside}), "
                                               f"the seed's warning says 420")
    res.check(down["assignments"] == {"total": 1011, "matched": 591, "outside": 420, "restored": 0},
              f"D: downgrade after the purge: {down['assignments']}")
    got = copy.legacy_assignments()
    res.check(got == want, f"D: project_phase_id after the purge follows the date rule: {diff(want, got)}")
    changed = sum(1 for a in got if got[a] != pre[a])
    print(f"D: {changed} of 1011 assignments point at another phase than before the upgrade (the archive is gone)",
          flush=True)
    fp = copy.fingerprint()
    for part in ("projects rows", "projects shape", "project_phases rows", "project_phases shape",
                 "resource_assignments shape", "alembic_version rows", "alembic_version shape"):
        res.check(fp.get(part) == fp_legacy.get(part), f"D: after the purged downgrade, {part} differs")
    v_dn = copy.verify()
    print("D: verify (legacy, after the purged downgrade): " + " | ".join(
        f"{k} {r[0]}: {r[1]} ({r[2]})" for k, r in sorted(v_dn.items())), flush=True)
    res.check(all(r[1] for r in v_dn.values()), f"D: legacy verify after the purged downgrade: {v_dn}")
    # A new upgrade archives again, and the next downgrade is exact again.
    copy.step("upgrade")
    st = copy.status()
    res.check(st["archive"]["upgrade"] is not None and st["archive"]["upgrade"]["assignments"] == 1011,
              f"D: the upgrade after the purge keeps no archive: {st['archive']}")
    v_up2 = copy.verify()
    res.check(all(r[1] for r in v_up2.values()), f"D: verify after the new upgrade: {v_up2}")
    before2 = got
    copy.step("downgrade")
    res.check(copy.legacy_assignments() == before2, "D: the round trip after the purge is not exact")
    # Purging in the legacy state: the next upgrade cannot restore timelines; it splits.
    copy.one("SELECT phasemig_purge_archive(%s)", (SCHEMA,))
    v_dn2 = copy.verify()
    print(f"D: verify (legacy, archive purged): budgets: {v_dn2[6][1]} ({v_dn2[6][2]}); "
          f"row counts: {v_dn2[7][1]} ({v_dn2[7][2]})", flush=True)
    res.check(v_dn2[6][1] is not False,
              f"D: budgets unchanged, yet verify's legacy budget check fails after the purge: {v_dn2[6]}")
    up, _ = copy.step("upgrade")
    res.check(up["timelines"] == {"split": 5, "restored": 0}, f"D: upgrade after a legacy purge: {up['timelines']}")
    res.check(copy.phases() == upgraded_phases, "D: the split after the purge differs from the first upgrade's")
    copy.close()


def main():
    seed = int(os.environ.get("PHASEMIG_DUMP_SEED") or int(time.time()) % 100000)
    bindir = pg_path()
    print(f"test_dump_restore: seed {seed} (reproduce with PHASEMIG_DUMP_SEED={seed}); client programs from {bindir}",
          flush=True)
    rng = random.Random(seed)
    keep = os.environ.get("PHASEMIG_DUMP_KEEP") == "1"
    try:
        orig_a, copy_a, fp_legacy_a, phases_a = scenario_a()
        scenario_purge(orig_a, copy_a, fp_legacy_a, phases_a)
        orig_a.close()
        scenario_edits("B", build_seed, SEED_EDITS, dump_legacy_again=True)
        scenario_edits("C", build_generated(round(rng.random(), 6)), generated_edits(rng))
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        res.check(False, f"unexpected exception {e!r}")
    finally:
        if keep and res.failed:
            print(f"kept databases {databases} and dumps in {workdir}", flush=True)
        else:
            for d in databases:
                with contextlib.suppress(Exception):
                    pmtest.drop_db(d)
            shutil.rmtree(workdir, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
