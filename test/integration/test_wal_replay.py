"""The assignment archive survives WAL replay.

When the upgrade finds the archive table's storage new in its transaction (it
TRUNCATEs the table when no other run's archive is in it), it fills pages
itself and writes them straight to the file, WAL-logged as whole pages, as
CREATE INDEX does (pg/archive_io.cpp, ChunkTableWriter).  Nothing of that goes
through shared buffers, so only the WAL carries it to a standby or through a
crash of the machine.  This test makes a streaming standby of the test
cluster, runs an upgrade on the primary, waits until the standby has replayed
it, and compares the archive there with the primary's: every chunk, byte for
byte, and every archived assignment decoded.
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmtest  # noqa: E402

R = pmtest.Result("test_wal_replay")
N_PROJECTS, PER_PROJECT = 20000, 10
SLOT = "phasemig_test_wal_replay"
STANDBY_PORT = int(os.environ.get("PHASEMIG_STANDBY_PORT", "55499"))

ARCHIVE = ("SELECT count(*), coalesce(sum(entries), 0), "
           "md5(string_agg(md5(data), ',' ORDER BY run_id, chunk_no)) FROM phasemig_assignment_archive")
DECODED = ("SELECT count(*), md5(string_agg(assignment_id || project_id || assignment_date || project_phase_id, ',' "
           "ORDER BY row_position)) FROM phasemig_archived_assignments")


def run(argv):
    r = subprocess.run(pmtest.as_postgres(argv), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print(f"{' '.join(argv)}: rc {r.returncode}\n{r.stdout}\n{r.stderr}", flush=True)
    return r.returncode == 0


def main():
    with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
        cur.execute("SHOW wal_level")
        level = cur.fetchone()[0]
    if level == "minimal":
        R.check(True, "wal_level is minimal: no standby to replay on, nothing to test")
        return
    db = pmtest.bench_db("pmwal", N_PROJECTS, PER_PROJECT)
    work = tempfile.mkdtemp(prefix="phasemig_standby_")
    if os.getuid() == 0:
        shutil.chown(work, "postgres", "postgres")
    data, sock = os.path.join(work, "data"), os.path.join(work, "socket")
    bindir = pmtest.pg_bindir()
    try:
        with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
            cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                        (SLOT,))
        params = pmtest.connect().get_dsn_parameters()
        ok = run([os.path.join(bindir, "pg_basebackup"), "-h", params.get("host", "/tmp"), "-p", params["port"],
                  "-U", params.get("user", "postgres"), "-D", data, "-X", "stream", "-c", "fast",
                  "-C", "-S", SLOT, "-R"])
        R.check(ok, "pg_basebackup made a standby")
        if not ok:
            return
        os.makedirs(sock, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(sock, "postgres", "postgres")
        with open(os.path.join(data, "postgresql.auto.conf"), "a") as f:
            f.write(f"port = {STANDBY_PORT}\nunix_socket_directories = '{sock}'\nshared_buffers = 64MB\n"
                    "hot_standby = on\n")
        ok = run([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", os.path.join(work, "server.log"), "-w",
                  "-t", "120", "start"])
        R.check(ok, "the standby started")
        if not ok:
            return
        check_replay(db, sock)
    finally:
        run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]) \
            if os.path.exists(os.path.join(data, "postmaster.pid")) else None
        with contextlib.closing(pmtest.connect()) as c, c.cursor() as cur:
            cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                        (SLOT,))
        shutil.rmtree(work, ignore_errors=True)
        pmtest.drop_db(db)


def check_replay(db, sock):
    with contextlib.closing(pmtest.connect(db)) as c, c.cursor() as cur:
        cur.execute("SELECT pg_relation_filenode('phasemig_assignment_archive')")
        node_before = cur.fetchone()[0]
        cur.execute("SELECT phasemig_upgrade()->'assignments'")
        print(f"upgrade: {cur.fetchone()[0]}", flush=True)
        cur.execute("SELECT pg_relation_filenode('phasemig_assignment_archive'), "
                    "pg_relation_size('phasemig_assignment_archive')")
        node_after, size = cur.fetchone()
        # New storage in the upgrade's transaction: the direct path was taken.
        R.check(node_after != node_before and size > 0,
                f"the upgrade wrote its archive into new storage ({node_before} -> {node_after}, {size} bytes)")
        cur.execute(ARCHIVE)
        primary = cur.fetchone()
        cur.execute(DECODED)
        primary_decoded = cur.fetchone()
        cur.execute("SELECT pg_current_wal_lsn()")
        lsn = cur.fetchone()[0]
    R.check(primary[1] == N_PROJECTS * PER_PROJECT and primary_decoded[0] == N_PROJECTS * PER_PROJECT,
            f"the primary's archive holds every assignment: {primary[1]} entries in {primary[0]} chunks")

    def replayed():
        with contextlib.closing(pmtest.connect("postgres", host=sock, port=STANDBY_PORT)) as c, c.cursor() as cur:
            cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
            return cur.fetchone()[0]

    R.check(pmtest.wait_for(replayed, timeout=120, interval=0.2), f"the standby replayed the WAL up to {lsn}")
    with contextlib.closing(pmtest.connect(db, host=sock, port=STANDBY_PORT)) as c, c.cursor() as cur:
        cur.execute(ARCHIVE)
        standby = cur.fetchone()
        cur.execute(DECODED)
        standby_decoded = cur.fetchone()
    R.check(standby == primary, f"the standby's archive chunks equal the primary's: {standby} vs {primary}")
    R.check(standby_decoded == primary_decoded,
            f"the standby decodes the same assignments: {standby_decoded} vs {primary_decoded}")


if __name__ == "__main__":
    R.run(main)
