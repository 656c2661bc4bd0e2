#!/usr/bin/python3
"""Property tests: lossless round trips in both directions (SPEC §2, §3, §5).

Hundreds of random legacy databases, each generated in Python from a seeded
RNG and loaded with COPY into a schema of its own (phasemig works on a target
schema, so one schema is one application database; two worker databases run
the cases side by side).  Every database goes through

  round 1: dry-run upgrade, upgrade, verify, phase_for, dry-run downgrade,
           downgrade                      -> rows and shape identical (a),
           timeline = Python model of SPEC §2 (b), dry runs = real runs (e);
  round 2: upgrade (restored), random user edits (renames, descriptions,
           moved boundaries, phases added/removed; in some databases also
           overlaps, gaps, same-start phases, a phase moved to another
           project), new/moved/deleted assignments, verify against the
           model, downgrade -> project_phase_id and phase_type per the SPEC §3
           model, and the WARNING count (d);
  round 3: (sometimes a phase added, deleted or moved to another project in
           the legacy state first) upgrade -> every edit back per phase id (c),
           downgrade -> legacy rows and shape identical again (a);
  sometimes: downgrade with restore => false (every assignment by date).

A sample of the databases is also run, from identical copies, through the
plain-SQL reference bench/baseline.sql (phasemig_ref) with the same edits (f);
disagreements are printed as "REF:" lines, with the model's (the SPEC's) answer.

Environment: PHASEMIG_PROP_SEED (default: from the clock, printed first),
PHASEMIG_PROP_CASES (default 220), PHASEMIG_PROP_ONLY (case numbers, comma
separated), PHASEMIG_PROP_JOBS (worker databases, default 2),
PHASEMIG_PROP_REF_EVERY (cross-check every n-th case, default 4; 0 = never),
PHASEMIG_PROP_KEEP=1 (keep the databases and schemas of failing cases).
"""
import collections
import datetime as dt
import decimal
import io
import json
import multiprocessing
import os
import random
import re
import sys
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

D = decimal.Decimal
DAY = dt.timedelta(days=1)
BASELINE_SQL = os.path.join(pmtest.ROOT, "bench", "baseline.sql")
WARN_RE = re.compile(r"WARNING:\s+(\d+) assignments were outside phase date ranges and assigned to first phase")
IGNORED_SUMMARY_KEYS = ("timings", "run_id", "dry_run")
MAX_DETAIL = 6   # mismatching rows shown per failed comparison


# --------------------------------------------------------------------------- ids, values

class Ids:
    """Unique ids of one table.  Integer ids mix small numbers (so that text
    order and numeric order differ: 9 < 10, -3 < 2) with the type's whole range."""

    def __init__(self, rng, id_type):
        self.rng, self.type, self.used = rng, id_type, set()

    def new(self):
        while True:
            r = self.rng.random()
            if self.type == "uuid":
                v = str(uuid.UUID(int=self.rng.getrandbits(128)))
            else:
                hi = 2 ** 63 - 1 if self.type == "bigint" else 2 ** 31 - 1
                if r < 0.45:
                    v = self.rng.randint(1, 120)
                elif r < 0.55:
                    v = self.rng.randint(-120, 0)
                else:
                    v = self.rng.randint(-hi - 1, hi)
                v = str(v)
            if v not in self.used:
                self.used.add(v)
                return v


def idkey(id_type, v):
    """Sort key of an id as PostgreSQL orders its type (uuid: bytewise)."""
    return uuid.UUID(v).int if id_type == "uuid" else int(v)


def qident(name):
    return '"' + name.replace('"', '""') + '"'


def money(rng, null_p=0.2):
    return None if rng.random() < null_p else D(rng.randint(0, 10 ** 9)) / 100


def psum(values):
    """sum() as SQL computes it: NULLs ignored, NULL when no value."""
    vals = [v for v in values if v is not None]
    return sum(vals, D(0)) if vals else None


TEXT_CHARS = "abcdefghij klmnopqrstuvwxyz'\"\\%_-.,;:!?()[]{}éüçøß✓ωЖ€😀"


def rand_text(rng, lo=1, hi=60):
    return "".join(rng.choice(TEXT_CHARS) for _ in range(rng.randint(lo, hi)))


NAME_POOL = ["Discovery", "Build", "Hypercare Planning", "Test & accept", "Go-live", "Owner's review",
             "déploiement", "pre-planning", "Execution", "Planning", "Planning 2", "Execution 3", "Wrap up",
             "x", 'Phase "omega" ω', "tab\there", "Replanning", "EXECUTION", "back\\slash", "n" * 100]


def unique_name(rng, taken):
    """A name not yet used in the project (compared case-insensitively, to be safe)."""
    lowered = {t.lower() for t in taken}
    name = rng.choice(NAME_POOL) if rng.random() < 0.7 else rand_text(rng, 1, 40).strip() or "y"
    while name.lower() in lowered:
        name = f"{name[:90]} {rng.randint(2, 9999)}"
    return name


def rand_desc(rng):
    r = rng.random()
    if r < 0.2:
        return None
    if r < 0.3:
        return ""
    if r < 0.35:
        return "d" * 500
    if r < 0.45:
        return "line one\nline two\r\n\ttabbed \\ backslash"
    return rand_text(rng, 1, 120)


def rand_created(rng, null_p=0.3):
    """created_at: NULL, +-infinity, or one of a few instants (ties), some a
    microsecond apart."""
    r = rng.random()
    if r < null_p:
        return None
    if r < null_p + 0.06:
        return "infinity"
    if r < null_p + 0.1:
        return "-infinity"
    return (dt.datetime(2024, 1, 1, 9) + dt.timedelta(hours=rng.randint(0, 3))
            + dt.timedelta(microseconds=rng.choice([0, 0, 0, 1, 999, 1000, 500000])))


def created_key(c):
    """ORDER BY created_at (NULLS LAST): -infinity, instants, infinity, NULL."""
    if c is None:
        return (3,)
    if c == "-infinity":
        return (0,)
    if c == "infinity":
        return (2,)
    return (1, c)


def rand_type(rng, kind, planning):
    word = "planning" if planning else "execution"
    if kind == "enum":
        return word.upper()
    r = rng.random()
    if r < 0.4:
        return word.upper()
    if r < 0.6:
        return word.capitalize()
    if r < 0.75:
        return word
    return "".join(c.upper() if rng.random() < 0.5 else c for c in word)


def copy_value(v):
    if v is None:
        return r"\N"
    s = v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_rows(cur, table, cols, rows):
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join(copy_value(v) for v in r))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)


# --------------------------------------------------------------------------- the model

class Model:
    """One application database as the SPEC says it must be, and the archives
    phasemig keeps for it.  Ids are text, as PostgreSQL prints them."""

    def __init__(self, id_type, kind):
        self.id_type, self.kind = id_type, kind
        self.state = "legacy"
        self.projects = {}      # id -> {s, e}
        self.phases = {}        # id -> {project, type | name,start,end,desc, cap, exp, tot, created, updated}
        self.assigns = {}       # id -> {project, date, phase (legacy), resource, alloc}
        self.arch_types = {}    # upgrade archive: phase id -> (project, type)
        self.arch_assign = {}   # upgrade archive: assignment id -> (project, date, phase)
        self.dn_arch = None     # downgrade archive: phase id -> (project, name, start, end, desc)
        self.baseline = None    # budgets per project at the last upgrade
        self.diverged = set()   # ids whose values the model took from the database after a reported fault

    def k(self, v):
        return idkey(self.id_type, v)

    def by_project(self):
        out = collections.defaultdict(list)
        for pid, ph in self.phases.items():
            out[ph["project"]].append(pid)
        return out

    def copy(self):
        import copy
        return copy.deepcopy(self)

    # ---- SPEC §2
    def split(self, project_id, phase_ids):
        p = self.projects[project_id]
        s, e = p["s"], p["e"]
        d, k = (e - s).days, len(phase_ids)
        order = sorted(phase_ids, key=lambda i: (
            0 if self.phases[i]["type"].lower() == "planning" else 1,
            created_key(self.phases[i]["created"]), self.k(i)))
        seen = collections.Counter()
        out = {}
        for i, phid in enumerate(order, 1):
            base = "Planning" if self.phases[phid]["type"].lower() == "planning" else "Execution"
            seen[base] += 1
            name = base if seen[base] == 1 else f"{base} {seen[base]}"
            start = s if i == 1 else s + DAY * ((i - 1) * d // k + 1)
            end = e if i == k else s + DAY * (i * d // k)
            out[phid] = (name, start, end, None)
        return out

    def budgets_by_project(self):
        out = {}
        for pid, ids in self.by_project().items():
            out[pid] = tuple(psum(self.phases[i][c] for i in ids) for c in ("cap", "exp", "tot"))
        return out

    def totals(self):
        return tuple(psum(ph[c] for ph in self.phases.values()) for c in ("cap", "exp", "tot"))

    def upgrade(self, restore=True):
        """Applies the upgrade; returns the summary fields the SPEC fixes."""
        assert self.state == "legacy"
        self.arch_types = {i: (ph["project"], ph["type"]) for i, ph in self.phases.items()}
        self.arch_assign = {i: (a["project"], a["date"], a["phase"]) for i, a in self.assigns.items()}
        self.baseline = (self.budgets_by_project(), self.totals())
        split = restored = 0
        new = {}
        for pid, ids in self.by_project().items():
            if restore and self.dn_arch is not None and all(
                    i in self.dn_arch and self.dn_arch[i][0] == pid for i in ids):
                restored += 1
                for i in ids:
                    new[i] = self.dn_arch[i][1:]
            else:
                split += 1
                new.update(self.split(pid, ids))
        for i, (name, start, end, desc) in new.items():
            ph = self.phases[i]
            del ph["type"]
            ph.update(name=name, start=start, end=end, desc=desc)
        for a in self.assigns.values():
            del a["phase"]
        self.state = "upgraded"
        matched = sum(1 for a in self.assigns.values() if self.holding(a["project"], a["date"]))
        return {
            "phases": len(self.phases),
            "projects": len(self.projects),
            "timelines": {"split": split, "restored": restored},
            "assignments": {"total": len(self.assigns), "matched": matched,
                            "outside": len(self.assigns) - matched, "archived": len(self.assigns)},
            "phases_by_name": dict(collections.Counter(ph["name"] for ph in self.phases.values())),
            "projects_without_phases": len(self.projects) - len(self.by_project()),
        }

    # ---- SPEC §3 date rule
    def ordered(self, project_id):
        ids = [i for i, ph in self.phases.items() if ph["project"] == project_id]
        return sorted(ids, key=lambda i: (self.phases[i]["start"], self.k(i)))

    def holding(self, project_id, on_date, ordered=None):
        ids = ordered if ordered is not None else self.ordered(project_id)
        return [i for i in ids if self.phases[i]["start"] <= on_date <= self.phases[i]["end"]]

    def phase_for(self, project_id, on_date):
        h = self.holding(project_id, on_date)
        return h[0] if h else None

    def downgrade(self, restore=True):
        """Applies the downgrade; returns (summary fields, fallback count)."""
        assert self.state == "upgraded"
        self.dn_arch = {i: (ph["project"], ph["name"], ph["start"], ph["end"], ph["desc"])
                        for i, ph in self.phases.items()}
        orders = {pid: self.ordered(pid) for pid in self.by_project()}
        n_restored = n_matched = n_outside = 0
        for aid, a in self.assigns.items():
            arch = self.arch_assign.get(aid) if restore else None
            if (arch is not None and arch[0] == a["project"] and arch[1] == a["date"]
                    and arch[2] in self.phases and self.phases[arch[2]]["project"] == a["project"]):
                a["phase"] = arch[2]
                n_restored += 1
                continue
            order = orders[a["project"]]   # KeyError: a project without phases (the test avoids it)
            h = self.holding(a["project"], a["date"], order)
            if h:
                a["phase"] = h[0]
                n_matched += 1
            else:
                a["phase"] = order[0]
                n_outside += 1
        types_restored = 0
        for i, ph in self.phases.items():
            if i in self.arch_types:
                ph["type"] = self.arch_types[i][1]
                types_restored += 1
            else:
                ph["type"] = "PLANNING" if "planning" in ph["name"].lower() else "EXECUTION"
            for c in ("name", "start", "end", "desc"):
                del ph[c]
        self.state = "legacy"
        summary = {
            "phases": len(self.phases),
            "projects": len(self.projects),
            "assignments": {"total": len(self.assigns), "matched": n_matched, "outside": n_outside,
                            "restored": n_restored},
            "phases_by_type": dict(collections.Counter(ph["type"] for ph in self.phases.values())),
            "phase_types_restored": types_restored,
        }
        return summary, n_outside

    # ---- SPEC §4, upgraded state: which checks must pass
    def verify_upgraded(self):
        bp = self.by_project()
        covered = True
        for pid, ids in bp.items():
            order = sorted(ids, key=lambda i: (self.phases[i]["start"], self.phases[i]["end"], self.k(i)))
            p = self.projects[pid]
            if self.phases[order[0]]["start"] != p["s"] or max(self.phases[i]["end"] for i in ids) != p["e"]:
                covered = False
            for x, y in zip(order, order[1:]):
                if self.phases[y]["start"] != self.phases[x]["end"] + DAY:
                    covered = False
        without = len(self.projects) - len(bp)
        matched = multi = 0
        orders = {pid: self.ordered(pid) for pid in bp}
        for a in self.assigns.values():
            h = self.holding(a["project"], a["date"], orders.get(a["project"], []))
            matched += bool(h)
            multi += len(h) > 1
        budgets_ok = self.baseline is not None and self.baseline == (self.budgets_by_project(), self.totals())
        expect = {1: True, 2: True, 3: True, 4: True, 5: True, 6: covered and without == 0, 7: budgets_ok,
                  8: True, 9: multi == 0}
        return expect, matched, len(self.assigns) - matched


# --------------------------------------------------------------------------- random databases

def gen_database(rng, case_no):
    id_type = rng.choice(["uuid", "bigint", "integer"])
    kind = rng.choice(["enum", "varchar"])
    m = Model(id_type, kind)
    info = {
        "case": case_no, "id_type": id_type, "kind": kind,
        "alembic": rng.random() < 0.8,
        "schema": f"prop_{case_no}" if rng.random() < 0.85 else f'Prop "{case_no}" ü',
        "irregular": rng.random() < 0.3,        # overlapping/gapped edits allowed in round 2
        "legacy_add": rng.random() < 0.25,      # a phase added/deleted/moved in the legacy state before round 3
        "no_restore": rng.random() < 0.25,      # a final downgrade with restore => false
        "orphan": rng.random() < 0.1,           # assignment in a project without phases: refused
    }
    pids, phids, aids, rids = (Ids(rng, id_type) for _ in range(4))
    info["ids"] = (pids, phids, aids, rids)
    size = rng.random()
    n_proj = 0 if size < 0.02 else rng.randint(1, 8) if size < 0.93 else rng.randint(25, 60)
    ts0 = dt.datetime(2024, 1, 1, 9, 0)
    for _ in range(n_proj):
        pid = pids.new()
        k = rng.choices([0, 1, 2, 3, 4, 5], weights=[12, 18, 40, 15, 8, 7])[0]
        r = rng.random()
        if r < 0.2 and k >= 2:
            d = k - 1                                    # d + 1 == k: one day per phase
        elif r < 0.45:
            d = rng.randint(1, 12)
        else:
            d = rng.randint(13, 500)
        d = max(d, k - 1, 1)
        r = rng.random()
        if r < 0.03:
            s = dt.date(1, 3, 1) + DAY * rng.randint(0, 30)          # the first century
        elif r < 0.06:
            s = dt.date(9997, 1, 1) + DAY * rng.randint(0, 30)       # near 9999-12-31
        else:
            s = dt.date(2024, 1, 1) + DAY * rng.randint(0, 900)
        m.projects[pid] = {"s": s, "e": s + DAY * d, "name": f"Project {pid[:8]}"}
        if k == 2 and rng.random() < 0.6:
            planning = [True, False]
            rng.shuffle(planning)
        else:
            planning = [rng.random() < 0.45 for _ in range(k)]
        for pl in planning:
            created = rand_created(rng)
            m.phases[phids.new()] = {
                "project": pid, "type": rand_type(rng, kind, pl), "created": created,
                "updated": None if rng.random() < 0.5 else ts0 + dt.timedelta(days=rng.randint(0, 99)),
                "cap": money(rng), "exp": money(rng), "tot": money(rng)}
    bp = m.by_project()
    for pid, ids in bp.items():
        p = m.projects[pid]
        d = (p["e"] - p["s"]).days
        for _ in range(rng.randint(0, 20 if n_proj > 20 else 10)):
            m.assigns[aids.new()] = {
                "project": pid, "date": p["s"] + DAY * rng.randint(-15, d + 15), "phase": rng.choice(ids),
                "resource": None if rng.random() < 0.2 else rids.new(),
                "alloc": None if rng.random() < 0.3 else D(rng.randint(0, 10000)) / 100}
    # Sometimes a project with more phases than days: the upgrade must refuse.
    info["infeasible"] = None
    cands = [pid for pid, ids in bp.items() if len(ids) >= 3]
    if cands and rng.random() < 0.06:
        pid = rng.choice(sorted(cands))
        info["infeasible"] = (pid, m.projects[pid]["e"])
        m.projects[pid]["e"] = m.projects[pid]["s"] + DAY * (len(bp[pid]) - 2)
    return m, info


def describe(m, info):
    return (f"case {info['case']} (schema {info['schema']!r}, {info['id_type']} ids, phase_type {info['kind']}, "
            f"{len(m.projects)} projects, {len(m.phases)} phases, {len(m.assigns)} assignments"
            f"{', irregular edits' if info['irregular'] else ''})")


def load_database(cur, schema, m, info):
    cur.execute("SELECT pm_legacy_schema(%s, %s, %s, %s)", (schema, info["id_type"], info["kind"], info["alembic"]))
    q = qident(schema)
    copy_rows(cur, f"{q}.projects", ["id", "name", "start_date", "end_date"],
              [(i, p["name"], p["s"], p["e"]) for i, p in m.projects.items()])
    copy_rows(cur, f"{q}.project_phases",
              ["id", "project_id", "phase_type", "capital_budget", "expense_budget", "total_budget",
               "created_at", "updated_at"],
              [(i, ph["project"], ph["type"], ph["cap"], ph["exp"], ph["tot"], ph["created"], ph["updated"])
               for i, ph in m.phases.items()])
    copy_rows(cur, f"{q}.resource_assignments",
              ["id", "project_id", "resource_id", "project_phase_id", "assignment_date", "allocation_percentage"],
              [(i, a["project"], a["resource"], a["phase"], a["date"], a["alloc"]) for i, a in m.assigns.items()])


# --------------------------------------------------------------------------- user edits

def edit_upgraded(rng, m, info):
    """Random user edits in the upgraded state, applied to the model; returns
    SQL (with {s} for the schema) that makes the same edits."""
    pids, phids, aids, rids = info["ids"]
    before = m.copy()
    for pid in sorted(m.by_project(), key=m.k):
        if rng.random() < 0.3:
            continue

        def cur_list():
            return m.ordered(pid)

        for _ in range(rng.randint(1, 3)):
            L = cur_list()
            op = rng.choice(["rename", "describe", "boundary", "add", "remove", "rename", "describe"])
            if op == "rename":
                i = rng.choice(L)
                m.phases[i]["name"] = unique_name(rng, [m.phases[j]["name"] for j in L if j != i])
            elif op == "describe":
                m.phases[rng.choice(L)]["desc"] = rand_desc(rng)
            elif op == "boundary" and len(L) >= 2:
                j = rng.randrange(len(L) - 1)
                a, b = m.phases[L[j]], m.phases[L[j + 1]]
                if a["start"] <= b["end"] - DAY:
                    mid = a["start"] + DAY * rng.randint(0, (b["end"] - a["start"]).days - 1)
                    a["end"], b["start"] = mid, mid + DAY
            elif op == "add":
                long_ = [i for i in L if m.phases[i]["end"] > m.phases[i]["start"]]
                if long_:
                    p = m.phases[rng.choice(long_)]
                    mid = p["start"] + DAY * rng.randint(0, (p["end"] - p["start"]).days - 1)
                    new = phids.new()
                    m.phases[new] = {
                        "project": pid, "name": unique_name(rng, [m.phases[j]["name"] for j in L]),
                        "start": mid + DAY, "end": p["end"], "desc": rand_desc(rng),
                        "created": rand_created(rng, 0.5),
                        "updated": None, "cap": money(rng, 0.5), "exp": money(rng, 0.5), "tot": money(rng, 0.5)}
                    p["end"] = mid
            elif op == "remove" and len(L) >= 2:
                j = rng.randrange(len(L))
                gone = m.phases.pop(L[j])
                if j > 0:
                    m.phases[L[j - 1]]["end"] = gone["end"]
                else:
                    m.phases[L[1]]["start"] = gone["start"]
        if info["irregular"] and rng.random() < 0.6:
            L = cur_list()
            op = rng.choice(["overlap", "gap", "same_start", "shift_out", "move_phase"])
            if op == "overlap" and len(L) >= 2:
                j = rng.randrange(len(L) - 1)
                a, b = m.phases[L[j]], m.phases[L[j + 1]]
                a["end"] = min(b["end"], a["end"] + DAY * rng.randint(1, 5))
            elif op == "gap":
                long_ = [i for i in L if m.phases[i]["end"] > m.phases[i]["start"]]
                if long_:
                    p = m.phases[rng.choice(long_)]
                    p["end"] -= DAY * rng.randint(1, (p["end"] - p["start"]).days)
            elif op == "same_start":
                p = m.phases[rng.choice(L)]
                new = phids.new()
                m.phases[new] = {
                    "project": pid, "name": unique_name(rng, [m.phases[j]["name"] for j in L]),
                    "start": p["start"], "end": p["start"] + DAY * rng.randint(0, (p["end"] - p["start"]).days),
                    "desc": rand_desc(rng), "created": None, "updated": None,
                    "cap": None, "exp": None, "tot": None}
            elif op == "shift_out":
                m.phases[L[0]]["start"] -= DAY * rng.randint(1, 10)
            elif op == "move_phase" and len(L) >= 2:
                # a phase handed over to another project (keeps its dates)
                i = rng.choice(L)
                others = sorted(set(m.projects) - {pid}, key=m.k)
                if others:
                    dest = rng.choice(others)
                    taken = [ph["name"] for ph in m.phases.values() if ph["project"] == dest]
                    m.phases[i]["project"] = dest
                    if m.phases[i]["name"].lower() in {x.lower() for x in taken}:
                        m.phases[i]["name"] = unique_name(rng, taken)

    with_phases = sorted(m.by_project(), key=m.k)
    sql = []
    for aid in sorted(m.assigns, key=m.k):
        a = m.assigns[aid]
        p = m.projects[a["project"]]
        r = rng.random()
        if r < 0.10:
            a["date"] = p["s"] + DAY * rng.randint(-15, (p["e"] - p["s"]).days + 15)
            sql.append(("UPDATE {s}.resource_assignments SET assignment_date = %s WHERE id = %s::{t}",
                        (a["date"], aid)))
        elif r < 0.14 and with_phases:
            a["project"] = rng.choice(with_phases)
            sql.append(("UPDATE {s}.resource_assignments SET project_id = %s::{t} WHERE id = %s::{t}",
                        (a["project"], aid)))
        elif r < 0.17:
            # moved away and back: unchanged, so the archive still applies
            sql.append(("UPDATE {s}.resource_assignments SET assignment_date = assignment_date + 40 WHERE id = %s::{t}",
                        (aid,)))
            sql.append(("UPDATE {s}.resource_assignments SET assignment_date = assignment_date - 40 WHERE id = %s::{t}",
                        (aid,)))
        elif r < 0.20:
            del m.assigns[aid]
            sql.append(("DELETE FROM {s}.resource_assignments WHERE id = %s::{t}", (aid,)))
        elif r < 0.25:
            a["resource"] = rids.new()
            sql.append(("UPDATE {s}.resource_assignments SET resource_id = %s::{t} WHERE id = %s::{t}",
                        (a["resource"], aid)))
    for _ in range(rng.randint(0, 6) if with_phases else 0):
        pid = rng.choice(with_phases)
        p = m.projects[pid]
        aid = aids.new()
        m.assigns[aid] = {"project": pid, "date": p["s"] + DAY * rng.randint(-15, (p["e"] - p["s"]).days + 15),
                          "resource": rids.new(), "alloc": D(rng.randint(0, 10000)) / 100}
        a = m.assigns[aid]
        sql.append(("INSERT INTO {s}.resource_assignments (id, project_id, resource_id, assignment_date,"
                    " allocation_percentage) VALUES (%s::{t}, %s::{t}, %s::{t}, %s, %s)",
                    (aid, pid, a["resource"], a["date"], a["alloc"])))

    # Phase statements: deletions, updates, insertions.
    phase_sql = []
    for i in sorted(set(before.phases) - set(m.phases), key=m.k):
        phase_sql.append(("DELETE FROM {s}.project_phases WHERE id = %s::{t}", (i,)))
    for i in sorted(set(before.phases) & set(m.phases), key=m.k):
        o, n = before.phases[i], m.phases[i]
        if any(o[c] != n[c] for c in ("name", "start", "end", "desc", "project")):
            phase_sql.append(("UPDATE {s}.project_phases SET name = %s, start_date = %s, end_date = %s,"
                              " description = %s, project_id = %s::{t} WHERE id = %s::{t}",
                              (n["name"], n["start"], n["end"], n["desc"], n["project"], i)))
    for i in sorted(set(m.phases) - set(before.phases), key=m.k):
        n = m.phases[i]
        phase_sql.append(("INSERT INTO {s}.project_phases (id, project_id, name, start_date, end_date, description,"
                          " capital_budget, expense_budget, total_budget, created_at)"
                          " VALUES (%s::{t}, %s::{t}, %s, %s, %s, %s, %s, %s, %s, %s)",
                          (i, n["project"], n["name"], n["start"], n["end"], n["desc"], n["cap"], n["exp"],
                           n["tot"], n["created"])))
    return phase_sql + sql


def edit_legacy(rng, m, info):
    """A hand edit in the legacy state, before the next upgrade: a phase added,
    deleted (its assignments moved to a sibling) or moved to another project
    (likewise).  The upgrade restores a project's archived timeline only when
    the archive holds all its phases, with the same project (SPEC §2)."""
    pids, phids, aids, rids = info["ids"]
    bp = m.by_project()

    def room(pid, extra=1):
        return (m.projects[pid]["e"] - m.projects[pid]["s"]).days + 1 >= len(bp.get(pid, [])) + extra

    op = rng.choice(["add", "add", "delete", "move"])
    multi = sorted((pid for pid, ids in bp.items() if len(ids) >= 2), key=m.k)
    stmts = []
    if op in ("delete", "move") and multi:
        pid = rng.choice(multi)
        victim = rng.choice(sorted(bp[pid], key=m.k))
        sibling = rng.choice(sorted(set(bp[pid]) - {victim}, key=m.k))
        for a in m.assigns.values():
            if a["phase"] == victim:
                a["phase"] = sibling
        stmts.append(("UPDATE {s}.resource_assignments SET project_phase_id = %s::{t} WHERE project_phase_id = %s::{t}",
                      (sibling, victim)))
        dests = [d for d in sorted(m.projects, key=m.k) if d != pid and room(d)]
        if op == "move" and dests:
            dest = rng.choice(dests)
            m.phases[victim]["project"] = dest
            stmts.append(("UPDATE {s}.project_phases SET project_id = %s::{t} WHERE id = %s::{t}", (dest, victim)))
            return stmts, f"phase {victim} moved from project {pid} to {dest}"
        del m.phases[victim]
        stmts.append(("DELETE FROM {s}.project_phases WHERE id = %s::{t}", (victim,)))
        return stmts, f"phase {victim} of project {pid} deleted"
    cands = [pid for pid in sorted(m.projects, key=m.k) if room(pid)]
    if not cands:
        return [], None
    pid = rng.choice(cands)
    i = phids.new()
    created = rand_created(rng)
    m.phases[i] = {"project": pid, "type": rand_type(rng, info["kind"], rng.random() < 0.5), "created": created,
                   "updated": None, "cap": money(rng), "exp": money(rng), "tot": money(rng)}
    ph = m.phases[i]
    stmts.append(("INSERT INTO {s}.project_phases (id, project_id, phase_type, capital_budget, expense_budget,"
                  " total_budget, created_at) VALUES (%s::{t}, %s::{t}, %s, %s, %s, %s, %s)",
                  (i, pid, ph["type"], ph["cap"], ph["exp"], ph["tot"], created)))
    return stmts, f"phase {i} added to project {pid}"


# --------------------------------------------------------------------------- talking to the server

class Target:
    """One schema in the worker's database, run by phasemig or by phasemig_ref."""

    def __init__(self, conn, schema, id_type, ref=False):
        self.conn, self.cur, self.schema, self.id_type, self.ref = conn, conn.cursor(), schema, id_type, ref
        self.q = qident(schema)

    def run(self, stmts):
        if not stmts:
            return
        parts = []
        for sql, params in stmts:
            parts.append(self.cur.mogrify(sql.replace("{s}", self.q).replace("{t}", self.id_type), params).decode())
        self.cur.execute(";\n".join(parts))

    def step(self, name, dry_run=False, restore=True):
        """Runs upgrade/downgrade; returns (summary, warning count, notices)."""
        del self.conn.notices[:]
        if self.ref:
            self.cur.execute(f"SELECT phasemig_ref.{name}(%s, %s)::text", (self.schema, restore))
        else:
            self.cur.execute(f"SELECT phasemig_{name}(%s, dry_run => %s, restore => %s)::text",
                             (self.schema, dry_run, restore))
        summary = json.loads(self.cur.fetchone()[0], parse_float=D)
        notices = list(self.conn.notices)
        warned = [int(mm.group(1)) for n in notices for mm in [WARN_RE.search(n)] if mm]
        return summary, (warned[0] if warned else 0), len(warned), notices

    def fingerprint(self):
        fp = pmtest.fingerprint(self.cur, self.schema)
        self.cur.execute("""SELECT t.typname, t.typtype::text, coalesce(string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder), '')
                              FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                              LEFT JOIN pg_enum e ON e.enumtypid = t.oid
                             WHERE n.nspname = %s AND t.typtype = 'e' GROUP BY 1, 2""", (self.schema,))
        for name, _, labels in self.cur.fetchall():
            fp[f"enum {name}"] = labels
        return fp

    def upgraded_phases(self):
        self.cur.execute(f"SELECT id::text, project_id::text, name, start_date, end_date, description"
                         f" FROM {self.q}.project_phases")
        return {r[0]: r[1:] for r in self.cur.fetchall()}

    def legacy_phases(self):
        self.cur.execute(f"SELECT id::text, project_id::text, phase_type::text FROM {self.q}.project_phases")
        return {r[0]: r[1:] for r in self.cur.fetchall()}

    def assignments(self):
        self.cur.execute(f"SELECT id::text, project_id::text, assignment_date, project_phase_id::text"
                         f" FROM {self.q}.resource_assignments")
        return {r[0]: r[1:] for r in self.cur.fetchall()}

    def verify(self):
        fn = "phasemig_ref.verify" if self.ref else "phasemig_verify"
        self.cur.execute(f"SELECT check_no, passed, detail FROM {fn}(%s) ORDER BY check_no", (self.schema,))
        return {r[0]: (r[1], r[2]) for r in self.cur.fetchall()}

    def state_counts(self):
        self.cur.execute("SELECT (SELECT count(*) FROM phasemig_run), (SELECT count(*) FROM phasemig_phase_archive),"
                         " (SELECT count(*) FROM phasemig_assignment_archive),"
                         " (SELECT count(*) FROM phasemig_object_archive)")
        return self.cur.fetchone()


def expected_upgraded(m):
    return {i: (ph["project"], ph["name"], ph["start"], ph["end"], ph["desc"]) for i, ph in m.phases.items()}


def expected_legacy(m):
    return ({i: (ph["project"], ph["type"]) for i, ph in m.phases.items()},
            {i: (a["project"], a["date"], a["phase"]) for i, a in m.assigns.items()})


def diff_maps(want, got, a="expected", b="got"):
    """Human-readable differences of two dicts (first MAX_DETAIL)."""
    out = []
    for k in sorted(set(want) | set(got), key=str):
        if want.get(k, "<absent>") != got.get(k, "<absent>"):
            out.append(f"{k}: {a} {want.get(k, '<absent>')!r}, {b} {got.get(k, '<absent>')!r}")
    more = f" ... and {len(out) - MAX_DETAIL} more" if len(out) > MAX_DETAIL else ""
    return "; ".join(out[:MAX_DETAIL]) + more


def strip(summary):
    return {k: v for k, v in summary.items() if k not in IGNORED_SUMMARY_KEYS}


def sub_summary(summary, expected):
    """The part of a summary the model fixes (same keys as expected)."""
    return {k: summary.get(k) for k in expected}


# --------------------------------------------------------------------------- one case

class Checker:
    def __init__(self, label):
        self.label, self.passed, self.failed, self.ref_notes = label, 0, 0, []
        self.causes = set()     # known causes of this case's failures

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {self.label}: {what}", flush=True)
        return ok

    def ref(self, what):
        self.ref_notes.append(what)
        print(f"REF: {self.label}: {what}", flush=True)


def check_dry_then_real(ck, t, name, restore=True, where=""):
    """Dry run (e), then the real step.  Returns (real summary, warning count)."""
    fp0 = t.fingerprint()
    counts0 = t.state_counts()
    dry, dwarn, _, _ = t.step(name, dry_run=True, restore=restore)
    ck.check(dry.get("dry_run") is True and dry.get("run_id") is None,
             f"{where}: dry-run {name} reports dry_run true and no run_id ({dry.get('dry_run')}, {dry.get('run_id')})")
    fp1 = t.fingerprint()
    ck.check(fp1 == fp0, f"{where}: dry-run {name} changed the schema: {diff_maps(fp0, fp1)}")
    ck.check(t.state_counts() == counts0, f"{where}: dry-run {name} left rows in phasemig's tables "
                                          f"({counts0} -> {t.state_counts()})")
    real, warn, nwarn, notices = t.step(name, restore=restore)
    ck.check(strip(dry) == strip(real), f"{where}: dry-run {name} summary differs from the real one: "
                                        f"{diff_maps(strip(real), strip(dry))}")
    ck.check(dwarn == warn, f"{where}: dry-run {name} warned about {dwarn} assignments, the real run about {warn}")
    ck.check(nwarn <= 1, f"{where}: {name} raised the outside-phase WARNING {nwarn} times: {notices}")
    ck.check(real.get("dry_run") is False and isinstance(real.get("run_id"), int),
             f"{where}: real {name} reports dry_run false and a run_id")
    return real, warn


def check_upgraded(ck, t, m, where):
    want = expected_upgraded(m)
    got = t.upgraded_phases()
    if not ck.check(got == want, f"{where}: phases differ from the SPEC model: {diff_maps(want, got)}"):
        for i, v in got.items():     # report once: the model goes on from the database's values
            if i in m.phases and want[i] != v:
                m.phases[i].update(name=v[1], start=v[2], end=v[3], desc=v[4])
                m.diverged.add(i)
    exp, matched, outside = m.verify_upgraded()
    v = t.verify()
    ck.check(sorted(v) == list(range(1, 10)), f"{where}: verify returned checks {sorted(v)}")
    for no, ok in exp.items():
        if no in v:
            ck.check(v[no][0] is ok, f"{where}: verify check {no} passed={v[no][0]}, the model says {ok}: {v[no][1]}")
    if 9 in v:
        ck.check(v[9][1].startswith(f"{matched:,} matched, {outside:,} outside any phase"),
                 f"{where}: verify check 9 detail {v[9][1]!r}, the model says {matched} matched, {outside} outside")
    # phase_for: the date rule as a function, for every assignment and the project bounds
    t.cur.execute(f"SELECT a.id::text, phasemig_phase_for(a.project_id, a.assignment_date, %s)::text"
                  f"  FROM {t.q}.resource_assignments a", (t.schema,))
    got_pf = dict(t.cur.fetchall())
    want_pf = {aid: m.phase_for(a["project"], a["date"]) for aid, a in m.assigns.items()}
    ck.check(got_pf == want_pf, f"{where}: phasemig_phase_for differs from the date rule: {diff_maps(want_pf, got_pf)}")
    return v


def explain_moved(ck, m, where):
    """The known cause of a phase_type difference: phases handed over to another
    project after the upgrade (phasemig then ignores their archived phase_type)."""
    moved = sorted((i for i, ph in m.phases.items() if i in m.arch_types and m.arch_types[i][0] != ph["project"]),
                   key=m.k)
    if moved:
        ck.causes.add("moved")
        print(f"FAIL: {ck.label}: {where}: note: phases {moved[:MAX_DETAIL]} were moved to another project after "
              f"the upgrade; SPEC §3 fills phase_type from the archive for every phase that existed at upgrade time "
              f"(no same-project condition); phasemig derives it from the name instead", flush=True)


def check_down_summary(ck, m, down, expect, where):
    if not ck.check(sub_summary(down, expect) == expect,
                    f"{where}: downgrade summary {diff_maps(expect, sub_summary(down, expect))}"):
        explain_moved(ck, m, where)


def check_legacy(ck, t, m, where):
    """The legacy state against the model.  After a difference the model takes
    the database's values, so that one fault is reported once, not in every
    later round."""
    want_ph, want_as = expected_legacy(m)
    got_ph = t.legacy_phases()
    got_as = t.assignments()
    if not ck.check(got_ph == want_ph, f"{where}: phase_type differs from the model: {diff_maps(want_ph, got_ph)}"):
        explain_moved(ck, m, where)
        for i, v in got_ph.items():
            if i in m.phases and want_ph[i] != v:
                m.phases[i]["type"] = v[1]
                m.diverged.add(i)
    if not ck.check(got_as == want_as, f"{where}: project_phase_id differs from the model: {diff_maps(want_as, got_as)}"):
        for i, v in got_as.items():
            if i in m.assigns and want_as[i] != v:
                m.assigns[i]["phase"] = v[2]
                m.diverged.add(i)
    v = t.verify()
    bad = {no: r for no, r in v.items() if r[0] is not True}
    ck.check(len(v) == 7 and not bad, f"{where}: legacy verify has failing checks: {bad}")


def run_case(conn, ref_conn, case_no, seed, with_ref):
    rng = random.Random(f"{seed}:{case_no}")
    m, info = gen_database(rng, case_no)
    label = describe(m, info)
    ck = Checker(label)
    schema = info["schema"]
    cur = conn.cursor()
    load_database(cur, schema, m, info)
    t = Target(conn, schema, info["id_type"])
    r = None
    if with_ref:
        rschema = f"ref_{case_no}"
        load_database(ref_conn.cursor(), rschema, m, info)
        r = Target(ref_conn, rschema, info["id_type"], ref=True)

    # Bad input first: a project with more phases than days is refused, nothing changes.
    if info["infeasible"]:
        pid, good_end = info["infeasible"]
        fp0 = t.fingerprint()
        try:
            t.step("upgrade")
            ck.check(False, f"upgrade accepted project {pid} with more phases than days")
        except Exception as e:  # noqa: BLE001
            conn.rollback() if not conn.autocommit else None
            ck.check(getattr(e, "pgcode", None) is not None and "too_many_phases" in str(e) and pid in str(e),
                     f"upgrade of project {pid} with more phases than days: unexpected error {e!r}")
        ck.check(t.fingerprint() == fp0, "the refused upgrade changed the schema")
        m.projects[pid]["e"] = good_end
        stmt = [("UPDATE {s}.projects SET end_date = %s WHERE id = %s::{t}", (good_end, pid))]
        t.run(stmt)
        if r:
            r.run(stmt)

    # preflight: no error; its warnings count what the model counts
    cur.execute("SELECT severity, code, count FROM phasemig_preflight(%s)", (schema,))
    pf = {code: (sev, n) for sev, code, n in cur.fetchall()}
    ck.check(not [c for c, (s, _) in pf.items() if s == "error"], f"round 1: preflight reports errors: {pf}")
    without = len(m.projects) - len(m.by_project())
    ck.check(pf.get("project_without_phases", (None, 0))[1] == without,
             f"round 1: preflight project_without_phases {pf.get('project_without_phases')}, the model says {without}")
    dup = sum(1 for ids in m.by_project().values()
              if len({m.phases[i]["type"].lower() for i in ids}) < len(ids))
    ck.check(pf.get("duplicate_phase_type", (None, 0))[1] == dup,
             f"round 1: preflight duplicate_phase_type {pf.get('duplicate_phase_type')}, the model says {dup}")
    outside = sum(1 for a in m.assigns.values()
                  if not m.projects[a["project"]]["s"] <= a["date"] <= m.projects[a["project"]]["e"])
    ck.check(pf.get("assignments_outside_phases", (None, 0))[1] == outside,
             f"round 1: preflight assignments_outside_phases {pf.get('assignments_outside_phases')}, "
             f"the model says {outside}")

    # ---------------------------------------------------------------- round 1
    fp_legacy = t.fingerprint()
    expect = m.upgrade()
    up, _ = check_dry_then_real(ck, t, "upgrade", where="round 1")
    ck.check(sub_summary(up, expect) == expect, f"round 1: upgrade summary {diff_maps(expect, sub_summary(up, expect))}")
    ck.check(up.get("budgets") == dict(zip(("capital", "expense", "total"), m.totals())),
             f"round 1: upgrade budgets {up.get('budgets')} vs {m.totals()}")
    if r:
        r.step("upgrade")
        compare_ref(ck, t, r, m, "round 1 upgrade")
    check_upgraded(ck, t, m, "round 1 upgraded")
    expect, fallback = m.downgrade()
    down, warn = check_dry_then_real(ck, t, "downgrade", where="round 1")
    check_down_summary(ck, m, down, expect, "round 1")
    ck.check(warn == fallback == 0, f"round 1: downgrade warned about {warn} assignments (model {fallback})")
    fp_after = t.fingerprint()
    ck.check(fp_after == fp_legacy, f"round 1 (a): upgrade -> downgrade is not identical: {diff_maps(fp_legacy, fp_after)}")
    if r:
        _, rwarn, _, _ = r.step("downgrade")
        compare_ref(ck, t, r, m, "round 1 downgrade", warn=(warn, rwarn))
    check_legacy(ck, t, m, "round 1 downgraded")

    # ---------------------------------------------------------------- round 2: edits
    expect = m.upgrade()
    up, _ = check_dry_then_real(ck, t, "upgrade", where="round 2")
    ck.check(sub_summary(up, expect) == expect, f"round 2: upgrade summary {diff_maps(expect, sub_summary(up, expect))}")
    if r:
        r.step("upgrade")
        compare_ref(ck, t, r, m, "round 2 upgrade")
    check_upgraded(ck, t, m, "round 2 upgraded (restored)")
    stmts = edit_upgraded(rng, m, info)
    t.run(stmts)
    if r:
        r.run(stmts)
    if r:
        compare_ref(ck, t, r, m, "round 2 after edits", verify=True)
    check_upgraded(ck, t, m, "round 2 after edits")

    # An assignment in a project without phases: the downgrade refuses, names the project.
    if info["orphan"]:
        empty = sorted(set(m.projects) - set(m.by_project()), key=m.k)
        if empty:
            pid = rng.choice(empty)
            aid = info["ids"][2].new()
            p = m.projects[pid]
            t.run([("INSERT INTO {s}.resource_assignments (id, project_id, assignment_date) VALUES (%s::{t}, %s::{t}, %s)",
                    (aid, pid, p["s"]))])
            fp0 = t.fingerprint()
            counts0 = t.state_counts()
            try:
                t.step("downgrade")
                ck.check(False, f"downgrade accepted assignment {aid} in project {pid}, which has no phases")
            except Exception as e:  # noqa: BLE001
                ck.check(getattr(e, "pgcode", None) == "23502" and pid in str(e),
                         f"downgrade with an assignment in project {pid} (no phases): the error does not name "
                         f"the project or is not a not_null_violation: {e.pgcode if hasattr(e, 'pgcode') else ''} {e!r}")
            ck.check(t.fingerprint() == fp0 and t.state_counts() == counts0,
                     "the refused downgrade changed something")
            t.run([("DELETE FROM {s}.resource_assignments WHERE id = %s::{t}", (aid,))])

    expect, fallback = m.downgrade()
    down, warn = check_dry_then_real(ck, t, "downgrade", where="round 2")
    check_down_summary(ck, m, down, expect, "round 2 (d)")
    ck.check(warn == fallback, f"round 2 (d): WARNING counts {warn} assignments, the model {fallback}")
    if r:
        _, rwarn, _, _ = r.step("downgrade")
        compare_ref(ck, t, r, m, "round 2 downgrade", warn=(warn, rwarn))
    check_legacy(ck, t, m, "round 2 downgraded (d)")

    # ---------------------------------------------------------------- round 3: back up
    if info["legacy_add"]:
        stmts, what = edit_legacy(rng, m, info)
        ck.label += f" [legacy edit: {what}]"
        t.run(stmts)
        if r:
            r.run(stmts)
    fp_legacy2 = t.fingerprint()
    expect = m.upgrade()
    up, _ = check_dry_then_real(ck, t, "upgrade", where="round 3")
    ck.check(sub_summary(up, expect) == expect, f"round 3: upgrade summary {diff_maps(expect, sub_summary(up, expect))}")
    if r:
        r.step("upgrade")
        compare_ref(ck, t, r, m, "round 3 upgrade", verify=True)
    check_upgraded(ck, t, m, "round 3 upgraded (c: edits restored)")
    expect, fallback = m.downgrade()
    down, warn = check_dry_then_real(ck, t, "downgrade", where="round 3")
    check_down_summary(ck, m, down, expect, "round 3")
    ck.check(warn == fallback == 0, f"round 3: downgrade warned about {warn} assignments (model {fallback})")
    fp_after = t.fingerprint()
    ck.check(fp_after == fp_legacy2,
             f"round 3 (a): upgrade -> downgrade of the edited database is not identical: {diff_maps(fp_legacy2, fp_after)}")
    if r:
        r.step("downgrade")
        compare_ref(ck, t, r, m, "round 3 downgrade")
    check_legacy(ck, t, m, "round 3 downgraded")

    # ---------------------------------------------------------------- restore => false
    if info["no_restore"] and m.by_project():
        types_before = {i: ph["type"] for i, ph in m.phases.items()}
        t.cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
                      " AND attname = 'phase_type'", (f"{t.q}.project_phases",))
        orig_type = t.cur.fetchone()[0]
        m.upgrade()
        t.step("upgrade")
        if r:
            r.step("upgrade")
        by_name = {i: "PLANNING" if "planning" in ph["name"].lower() else "EXECUTION" for i, ph in m.phases.items()}
        expect, fallback = m.downgrade(restore=False)
        down, warn, _, _ = t.step("downgrade", restore=False)
        ck.check(down["assignments"] == expect["assignments"],
                 f"restore => false: downgrade assignments {down['assignments']}, model {expect['assignments']}")
        ck.check(warn == fallback, f"restore => false: WARNING counts {warn}, the model {fallback}")
        got_as = t.assignments()
        want_as = expected_legacy(m)[1]
        ck.check(got_as == want_as, f"restore => false: project_phase_id differs from the date rule: "
                                    f"{diff_maps(want_as, got_as)}")
        # SPEC §3 is ambiguous here: "restore => false skips the archive" (all of it: then
        # phase_type comes from the name -- the reference behaviour -- and its type is the
        # enum phasetype, else varchar) or only the assignments' archive (then phase_type
        # and its type come from the archive, as the phase_type bullet says without
        # condition).  Either reading is accepted, applied to every phase; which one is
        # counted and reported.
        got_ph = {i: v[1] for i, v in t.legacy_phases().items()}
        if types_before == by_name:
            reading = "either" if got_ph == by_name else None
        else:
            reading = "archive" if got_ph == types_before else "name" if got_ph == by_name else None
        ck.check(reading is not None, f"restore => false: phase_type neither from the archive nor from the name: "
                                      f"archive: {diff_maps(types_before, got_ph)}; name: {diff_maps(by_name, got_ph)}")
        info["no_restore_reading"] = reading
        t.cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
                      " AND attname = 'phase_type'", (f"{t.q}.project_phases",))
        got_type = t.cur.fetchone()[0]
        chain_type = orig_type if info["kind"] == "enum" else "character varying"
        ck.check(got_type in (orig_type, chain_type),
                 f"restore => false: phase_type is {got_type}, neither its original {orig_type} nor {chain_type}")
        info["no_restore_type"] = "original" if got_type == orig_type else "fallback"
        for i, ph in m.phases.items():
            ph["type"] = got_ph.get(i, ph["type"])
        if r:
            _, rwarn, _, _ = r.step("downgrade", restore=False)
            compare_ref(ck, t, r, m, "restore => false downgrade", warn=(warn, rwarn), types=False)

    return ck, info


def compare_ref(ck, t, r, m, where, warn=None, verify=False, types=True):
    """(f) phasemig and phasemig_ref on identical input: same phases, same
    project_phase_id; each disagreement is judged by the model (the SPEC).
    Rows where phasemig already failed against the model in an earlier step
    (and so differs from here on) are left out."""
    def drop(d):
        return {k: v for k, v in d.items() if k not in m.diverged}
    if m.state == "upgraded":
        mine, theirs, want = drop(t.upgraded_phases()), drop(r.upgraded_phases()), drop(expected_upgraded(m))
        if mine != theirs:
            ck.ref(f"{where}: phases differ (phasemig vs phasemig_ref): {diff_maps(mine, theirs, 'phasemig', 'phasemig_ref')}; "
                   f"the SPEC model agrees with {'phasemig' if mine == want else 'phasemig_ref' if theirs == want else 'neither'}")
        if verify:
            vm, vr = t.verify(), r.verify()
            exp, _, _ = m.verify_upgraded()
            for no in (1, 2, 3, 4, 5, 6, 8, 9):
                if vm.get(no, (None,))[0] != vr.get(no, (None,))[0]:
                    ck.ref(f"{where}: verify check {no}: phasemig passed={vm.get(no)}, phasemig_ref passed={vr.get(no)};"
                           f" the model says {exp[no]}")
    else:
        mp, ma, rp, ra = drop(t.legacy_phases()), drop(t.assignments()), drop(r.legacy_phases()), drop(r.assignments())
        wp, wa = (drop(x) for x in expected_legacy(m))
        if ma != ra:
            ck.ref(f"{where}: project_phase_id differs (phasemig vs phasemig_ref): {diff_maps(ma, ra, 'phasemig', 'phasemig_ref')}; the SPEC "
                   f"model agrees with {'phasemig' if ma == wa else 'phasemig_ref' if ra == wa else 'neither'}")
        if types and mp != rp:
            ck.ref(f"{where}: phase_type differs (phasemig vs phasemig_ref): {diff_maps(mp, rp, 'phasemig', 'phasemig_ref')}; the SPEC "
                   f"model agrees with {'phasemig' if mp == wp else 'phasemig_ref' if rp == wp else 'neither'}")
    if warn is not None and warn[0] != warn[1]:
        ck.ref(f"{where}: WARNING count phasemig {warn[0]}, phasemig_ref {warn[1]}")


# --------------------------------------------------------------------------- workers

def worker(args):
    cases, seed, ref_every, keep = args
    db = pmtest.fresh_db("pmprop")
    conn = pmtest.connect(db)
    ref_conn = None
    if ref_every:
        ref_conn = pmtest.connect(db)
        with open(BASELINE_SQL) as f:
            ref_conn.cursor().execute(f.read())
    passed = failed = 0
    ref_notes, failing = [], []
    stats = collections.Counter()
    for n in cases:
        with_ref = bool(ref_every) and n % ref_every == 0
        try:
            ck, info = run_case(conn, ref_conn, n, seed, with_ref)
        except Exception:  # noqa: BLE001
            failed += 1
            failing.append(n)
            print(f"FAIL: case {n}: exception\n{traceback.format_exc()}", flush=True)
            conn.close()
            conn = pmtest.connect(db)
            if ref_conn is not None:
                ref_conn.close()
                ref_conn = pmtest.connect(db)
            continue
        passed += ck.passed
        failed += ck.failed
        ref_notes += ck.ref_notes
        stats["cases"] += 1
        stats["ref"] += with_ref
        stats[info["id_type"]] += 1
        stats[info["kind"]] += 1
        for key in ("irregular", "legacy_add", "no_restore", "orphan", "infeasible"):
            stats[key] += bool(info[key])
        if info.get("no_restore_reading"):
            stats["reading " + str(info["no_restore_reading"])] += 1
            if info["kind"] == "varchar":
                stats["type " + info["no_restore_type"]] += 1
        if ck.failed:
            failing.append(n)
            if ck.causes == {"moved"}:
                stats["failed_moved_only"] += 1
        if not (ck.failed and keep):
            cur = conn.cursor()
            cur.execute("SET client_min_messages = warning")
            cur.execute(f"DROP SCHEMA {qident(info['schema'])} CASCADE")
            if with_ref:
                cur.execute(f"DROP SCHEMA {qident('ref_%d' % n)} CASCADE")
    conn.close()
    if ref_conn is not None:
        ref_conn.close()
    if not (failing and keep):
        pmtest.drop_db(db)
    else:
        print(f"kept database {db} (failing cases {failing})", flush=True)
    return passed, failed, ref_notes, failing, stats


def main():
    seed = int(os.environ.get("PHASEMIG_PROP_SEED") or int(time.time() * 1000) % 1_000_000_007)
    n_cases = int(os.environ.get("PHASEMIG_PROP_CASES", "220"))
    jobs = max(1, int(os.environ.get("PHASEMIG_PROP_JOBS", "2")))
    ref_every = int(os.environ.get("PHASEMIG_PROP_REF_EVERY", "4"))
    keep = os.environ.get("PHASEMIG_PROP_KEEP") == "1"
    only = os.environ.get("PHASEMIG_PROP_ONLY")
    cases = [int(x) for x in only.split(",")] if only else list(range(n_cases))
    print(f"test_property: seed {seed} (reproduce with PHASEMIG_PROP_SEED={seed}; one case: "
          f"PHASEMIG_PROP_ONLY=<n>), {len(cases)} databases, {jobs} workers, "
          f"reference cross-check every {ref_every or 'no'} case", flush=True)
    res = pmtest.Result("test_property")
    chunks = [cases[w::jobs] for w in range(jobs)]
    if jobs == 1:
        outs = [worker((chunks[0], seed, ref_every, keep))]
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            outs = pool.map(worker, [(c, seed, ref_every, keep) for c in chunks])
    stats = collections.Counter()
    notes, failing = [], []
    for p, f, rn, fl, st in outs:
        res.passed += p
        res.failed += f
        notes += rn
        failing += fl
        stats += st
    print(f"databases: {stats['cases']} ({stats['uuid']} uuid, {stats['bigint']} bigint, {stats['integer']} integer; "
          f"{stats['enum']} enum, {stats['varchar']} varchar phase_type); irregular edits {stats['irregular']}, "
          f"legacy-state phase edits {stats['legacy_add']}, restore => false {stats['no_restore']}, "
          f"refused: more phases than days {stats['infeasible']}, assignment without phases {stats['orphan']}; "
          f"cross-checked with phasemig_ref {stats['ref']}", flush=True)
    print(f"restore => false, where phase_type from the archive and from the name differ, phasemig took it from: "
          f"the archive {stats['reading archive']}, the name {stats['reading name']} "
          f"(same either way: {stats['reading either']}); varchar(20) phase_type re-added as: the original "
          f"{stats['type original']}, plain varchar {stats['type fallback']}", flush=True)
    print(f"reference disagreements: {len(notes)}", flush=True)
    if failing:
        print(f"failing cases: {sorted(failing)} (seed {seed}); of them {stats['failed_moved_only']} fail only where "
              f"a phase was moved to another project after the upgrade (phase_type not taken from the archive, "
              f"SPEC §3)", flush=True)
    res.finish()


if __name__ == "__main__":
    main()
