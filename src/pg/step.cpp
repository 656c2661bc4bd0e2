#include "pg/step.hpp"

#include <algorithm>

#include "pg/guard.hpp"
#include "pg/spi.hpp"

namespace phasemig::pg {

namespace {

void require_acl(const Table& table, AclMode mode)
{
    guarded([&] {
        if (pg_class_aclcheck(table.oid, GetUserId(), mode) != ACLCHECK_OK)
            aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, table.name.c_str());
    });
}

struct LockItem {
    Oid relid;
    LOCKMODE mode;
};

// One attempt in a subtransaction, so a timeout releases whatever it got.
bool try_locks(const std::vector<LockItem>& items, int timeout_ms)
{
    return guarded([&] {
        MemoryContext oldcxt = CurrentMemoryContext;
        ResourceOwner oldowner = CurrentResourceOwner;
        volatile bool ok = false;
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(oldcxt);
        PG_TRY();
        {
            // One bound for the whole attempt, not per table: each wait gets
            // what is left of it.
            const TimestampTz deadline = GetCurrentTimestamp() + static_cast<TimestampTz>(timeout_ms) * 1000;
            int nest = NewGUCNestLevel();
            for (const LockItem& it : items) {
                if (timeout_ms > 0) {
                    const long left_ms =
                        static_cast<long>((deadline - GetCurrentTimestamp() + 999) / 1000);
                    if (left_ms <= 0 && !ConditionalLockRelationOid(it.relid, it.mode))
                        ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                                        errmsg("could not obtain lock on relation %u", it.relid)));
                    if (left_ms <= 0)
                        continue;
                    char buf[32];
                    snprintf(buf, sizeof buf, "%ld", left_ms);
                    (void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                             0, false);
                } else {
                    (void) set_config_option("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                                             0, false);
                }
                LockRelationOid(it.relid, it.mode);
            }
            AtEOXact_GUC(true, nest);
            ReleaseCurrentSubTransaction();
            ok = true;
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(oldcxt);
            ErrorData* e = CopyErrorData();
            FlushErrorState();
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(oldcxt);
            CurrentResourceOwner = oldowner;
            if (e->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
                ReThrowError(e);
            FreeErrorData(e);
        }
        PG_END_TRY();
        MemoryContextSwitchTo(oldcxt);
        CurrentResourceOwner = oldowner;
        return static_cast<bool>(ok);
    });
}

}  // namespace

void require_owner(const Table& table)
{
    guarded([&] {
        if (!pg_class_ownercheck(table.oid, GetUserId()))
            aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, table.name.c_str());
    });
}

void require_select(const Table& table)
{
    require_acl(table, ACL_SELECT);
}

void require_update(const Table& table)
{
    require_acl(table, ACL_UPDATE);
}

void lock_target(const Target& t)
{
    std::vector<LockItem> items = {{t.projects.oid, ShareLock},
                                   {t.phases.oid, AccessExclusiveLock},
                                   {t.assignments.oid, AccessExclusiveLock}};
    // EXCLUSIVE, not SHARE ROW EXCLUSIVE: it also waits out a SELECT ... FOR
    // UPDATE of the revision row, which would otherwise stall the step's
    // UPDATE later, unbounded, with the other tables locked.
    if (t.alembic.present())
        items.push_back({t.alembic.oid, ExclusiveLock});

    // The session's own bound wins; otherwise ours, so that a migration never
    // queues the application behind it for long.
    const int timeout = LockTimeout > 0 ? LockTimeout : setting_lock_timeout_ms;
    const int attempts = 1 + std::max(0, setting_lock_retries);
    int backoff_ms = 100;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        if (try_locks(items, timeout))
            return;
        if (attempt == attempts)
            break;
        guarded([&] {
            // Sleep in small steps so a cancel is answered at once.
            for (int slept = 0; slept < backoff_ms; slept += 10) {
                CHECK_FOR_INTERRUPTS();
                pg_usleep(10000L);
            }
        });
        backoff_ms = std::min(backoff_ms * 2, 2000);
    }
    throw Error(ERRCODE_LOCK_NOT_AVAILABLE,
                strfmt("could not lock the tables of schema \"%s\"", t.schema.c_str()),
                strfmt("Another session holds a conflicting lock on projects, project_phases, resource_assignments "
                       "or alembic_version; %d %s waited at most %d ms%s. Nothing has been changed.",
                       attempts, attempts == 1 ? "attempt" : "attempts", timeout, attempts == 1 ? "" : " each"),
                "Find the blocking sessions with SELECT pid, state, query FROM pg_stat_activity WHERE pid = ANY "
                "(pg_blocking_pids(pg_backend_pid())); from a session that is waiting, or run in a quieter window; "
                "phasemig.lock_timeout and phasemig.lock_retries set how long phasemig waits.");
}

void begin_locked_snapshot()
{
    guarded([] {
        CommandCounterIncrement();
        PushActiveSnapshot(GetLatestSnapshot());
    });
}

void end_locked_snapshot()
{
    guarded([] { PopActiveSnapshot(); });
}

std::optional<std::int64_t> latest_run(const std::string& schema, const char* step)
{
    std::optional<std::string> v;
    as_extension_owner([&] {
        v = spi_value("SELECT max(run_id) FROM " + extension().table("phasemig_run") +
                          " WHERE target_schema = $1 AND step = $2 AND archive_dropped_at IS NULL",
                      {Arg::of(schema), Arg::of(step)});
    });
    if (!v)
        return std::nullopt;
    return std::stoll(*v);
}

void read_budgets(const Target& t, Baseline& b, const Budgets* computed)
{
    if (computed && computed->exact()) {
        b.capital = computed->text(0);
        b.expense = computed->text(1);
        b.total = computed->text(2);
        b.digest = computed->digest();
        return;
    }
    auto col = [&](const char* c) {
        return t.phases.has(c) ? std::string("sum(") + c + ")::text" : std::string("NULL::text");
    };
    auto rows = spi_rows("SELECT " + col("capital_budget") + ", " + col("expense_budget") + ", " +
                         col("total_budget") + " FROM " + t.phases.qualified);
    if (!rows.empty()) {
        b.capital = rows[0][0];
        b.expense = rows[0][1];
        b.total = rows[0][2];
    }
}

std::int64_t begin_run(const std::string& schema, const char* step, bool restore, const Target& t,
                       const Baseline& b, const char* from_revision, const char* to_revision, const char* id_type)
{
    std::int64_t id = 0;
    const bool alembic = t.alembic.present();
    // The caller's role, before the records are written as the extension owner.
    const std::string caller = guarded([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
    as_extension_owner([&] {
        id = spi_int("INSERT INTO " + extension().table("phasemig_run") +
                         " (target_schema, step, restore, started_at, performed_by, from_revision, to_revision,"
                         "  projects, phases, assignments, capital, expense, total, budget_digest, id_type)"
                         " VALUES ($1, $2, $3, statement_timestamp(), $12::name, $4, $5, $6, $7, $8,"
                         "         $9::numeric, $10::numeric, $11::numeric, $13, $14)"
                         " RETURNING run_id",
                     {Arg::of(schema), Arg::of(step), Arg::of(restore),
                      alembic ? Arg::of(from_revision) : Arg::null(), alembic ? Arg::of(to_revision) : Arg::null(),
                      Arg::of(static_cast<std::int64_t>(b.projects)), Arg::of(static_cast<std::int64_t>(b.phases)),
                      Arg::of(static_cast<std::int64_t>(b.assignments)), Arg::text_or_null(b.capital),
                      Arg::text_or_null(b.expense), Arg::text_or_null(b.total), Arg::of(caller),
                      Arg::text_or_null(b.digest), Arg::of(id_type)});
    });
    return id;
}

void finish_run(std::int64_t run_id, const std::string& summary_json, std::uint64_t archived_phases,
                std::uint64_t archived_assignments, std::uint64_t assignments)
{
    as_extension_owner([&] {
        spi_exec("UPDATE " + extension().table("phasemig_run") +
                     " SET finished_at = clock_timestamp(), summary = $2::jsonb,"
                     "     archived_phases = $3, archived_assignments = $4, assignments = $5 WHERE run_id = $1",
                 {Arg::of(run_id), Arg::of(summary_json), Arg::of(static_cast<std::int64_t>(archived_phases)),
                  Arg::of(static_cast<std::int64_t>(archived_assignments)),
                  Arg::of(static_cast<std::int64_t>(assignments))});
    });
}

void drop_superseded_archives(const std::string& schema, const char* step, std::int64_t keep_run)
{
    as_extension_owner([&] {
        const Extension& ext = extension();
        const std::string older = "SELECT run_id FROM " + ext.table("phasemig_run") +
                                  " WHERE target_schema = $1 AND step = $2 AND run_id < $3"
                                  "   AND archive_dropped_at IS NULL";
        const Args args = {Arg::of(schema), Arg::of(step), Arg::of(keep_run)};
        // The assignment archive is the big one (a row per assignment): when
        // it holds nothing else, TRUNCATE it instead of deleting row by row.
        // (Called before the new run writes its own rows.)
        const bool only_superseded =
            std::string(step) == "upgrade" &&
            !spi_bool("SELECT EXISTS (SELECT 1 FROM " + ext.table("phasemig_run") +
                          " WHERE step = 'upgrade' AND archive_dropped_at IS NULL AND run_id <> $3"
                          "   AND NOT (target_schema = $1 AND run_id < $3))",
                      {Arg::of(schema), Arg::of(step), Arg::of(keep_run)});
        // The phase archive holds both steps' runs: TRUNCATEd when no other
        // run is kept at all.  A TRUNCATEd archive gets new storage, which
        // the step's archive is written into page by page (ChunkTableWriter).
        const bool nothing_else =
            only_superseded &&
            !spi_bool("SELECT EXISTS (SELECT 1 FROM " + ext.table("phasemig_run") +
                          " WHERE archive_dropped_at IS NULL AND run_id <> $3"
                          "   AND NOT (target_schema = $1 AND step = $2 AND run_id < $3))",
                      args);
        if (only_superseded)
            spi_exec("TRUNCATE " + ext.table("phasemig_assignment_archive") +
                     (nothing_else ? ", " + ext.table("phasemig_phase_archive") : std::string()));
        for (const char* table : {"phasemig_assignment_archive", "phasemig_phase_archive", "phasemig_object_archive"}) {
            const std::string name = table;
            if ((only_superseded && name == "phasemig_assignment_archive") ||
                (nothing_else && name == "phasemig_phase_archive"))
                continue;
            spi_exec("DELETE FROM " + ext.table(table) + " WHERE run_id IN (" + older + ")", args);
        }
        spi_exec("UPDATE " + ext.table("phasemig_run") + " SET archive_dropped_at = clock_timestamp()"
                 " WHERE run_id IN (" + older + ")", args);
    });
}

void archive_objects(std::int64_t run_id, const Table& table, const std::vector<std::string>& columns)
{
    std::vector<ArchivedObject> objs;
    std::vector<std::string> seen;
    for (const auto& c : columns) {
        if (!table.has(c))
            continue;
        ColumnDefinition def = describe_column(table, c);
        ArchivedObject col;
        col.table = table.name;
        col.column = c;
        col.kind = "column";
        col.name = c;
        col.type = def.type;
        col.notnull = def.notnull;
        col.default_expr = def.default_expr;
        col.collation = def.collation;
        col.comment = def.comment;
        objs.push_back(col);
        std::vector<DependentObject> deps;
        std::vector<std::string> blocking;
        column_dependents(table, c, deps, blocking);
        for (const auto& d : deps) {
            // A constraint over two dropped columns is kept once.
            if (std::find(seen.begin(), seen.end(), d.kind + ":" + d.name) != seen.end())
                continue;
            seen.push_back(d.kind + ":" + d.name);
            ArchivedObject o;
            o.table = table.name;
            o.column = c;
            o.kind = d.kind;
            o.name = d.name;
            o.definition = d.definition;
            o.validated = d.validated;
            objs.push_back(o);
        }
    }
    as_extension_owner([&] {
        for (const auto& o : objs)
            spi_exec("INSERT INTO " + extension().table("phasemig_object_archive") +
                         " (run_id, table_name, column_name, kind, name, definition, type, not_null, default_expr,"
                         "  collation_name, comment, validated)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                     {Arg::of(run_id), Arg::of(o.table), Arg::of(o.column), Arg::of(o.kind), Arg::of(o.name),
                      Arg::text_or_null(o.definition), Arg::text_or_null(o.type), Arg::of(o.notnull),
                      Arg::text_or_null(o.default_expr), Arg::text_or_null(o.collation),
                      Arg::text_or_null(o.comment), Arg::of(o.validated)});
    });
}

std::vector<ArchivedObject> load_objects(std::optional<std::int64_t> run_id)
{
    std::vector<ArchivedObject> out;
    if (!run_id)
        return out;
    std::vector<Row> rows;
    as_extension_owner([&] {
        rows = spi_rows("SELECT table_name, column_name, kind, name, definition, type, not_null, default_expr,"
                        "       collation_name, comment, validated"
                        "  FROM " + extension().table("phasemig_object_archive") +
                            " WHERE run_id = $1 ORDER BY kind = 'column' DESC, object_no",
                        {Arg::of(*run_id)});
    });
    for (const Row& r : rows) {
        ArchivedObject o;
        o.table = r[0].value_or("");
        o.column = r[1].value_or("");
        o.kind = r[2].value_or("");
        o.name = r[3].value_or("");
        o.definition = r[4];
        o.type = r[5];
        o.notnull = r[6].value_or("f") == "t";
        o.default_expr = r[7];
        o.collation = r[8];
        o.comment = r[9];
        o.validated = r[10].value_or("t") == "t";
        out.push_back(std::move(o));
    }
    return out;
}

const ArchivedObject* find_object(const std::vector<ArchivedObject>& objs, const std::string& kind,
                                  const std::string& table, const std::string& column_or_name)
{
    for (const auto& o : objs) {
        if (o.kind != kind || o.table != table)
            continue;
        if (kind == "column" ? o.column == column_or_name : o.name == column_or_name)
            return &o;
    }
    return nullptr;
}

void restore_column_extras(const Table& table, const ArchivedObject& column)
{
    const std::string col = quote_ident(column.column);
    if (column.default_expr)
        spi_exec("ALTER TABLE " + table.qualified + " ALTER COLUMN " + col + " SET DEFAULT " + *column.default_expr);
    if (column.comment)
        spi_exec("COMMENT ON COLUMN " + table.qualified + "." + col + " IS " +
                 guarded([&] { return std::string(quote_literal_cstr(column.comment->c_str())); }));
}

bool add_archived_object(const Table& table, const ArchivedObject& obj)
{
    if (!obj.definition)
        return false;
    if (obj.kind == "index") {
        spi_exec(*obj.definition);
        return false;
    }
    // Constraints: added NOT VALID, then validated in a separate pass, as
    // they were when archived.
    std::string def = *obj.definition;
    static const std::string kNotValid = " NOT VALID";
    const bool check_or_fk = def.rfind("CHECK", 0) == 0 || def.rfind("FOREIGN KEY", 0) == 0;
    if (def.size() > kNotValid.size() && def.compare(def.size() - kNotValid.size(), kNotValid.size(), kNotValid) == 0)
        def.resize(def.size() - kNotValid.size());
    spi_exec("ALTER TABLE " + table.qualified + " ADD CONSTRAINT " + quote_ident(obj.name) + " " + def +
             (check_or_fk ? " NOT VALID" : ""));
    return check_or_fk && obj.validated;
}

void restore_object(const Table& table, const ArchivedObject& obj)
{
    if (add_archived_object(table, obj))
        spi_exec("ALTER TABLE " + table.qualified + " VALIDATE CONSTRAINT " + quote_ident(obj.name));
}

bool move_alembic(const Target& t, const char* from, const char* to)
{
    if (!t.alembic.present())
        return false;
    return spi_exec("UPDATE " + t.alembic.qualified + " SET version_num = $2 WHERE version_num = $1",
                    {Arg::of(from), Arg::of(to)}) > 0;
}

int pin_step_settings()
{
    return guarded([] {
        const int level = NewGUCNestLevel();
        (void) set_config_option("synchronize_seqscans", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                                 false);
        return level;
    });
}

void restore_step_settings(int level)
{
    guarded([level] { AtEOXact_GUC(true, level); });
}

namespace {

struct Subtransaction {
    MemoryContext cxt;
    ResourceOwner owner;
};

Subtransaction begin_subtransaction()
{
    return guarded([] {
        Subtransaction s{CurrentMemoryContext, CurrentResourceOwner};
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(s.cxt);
        return s;
    });
}

void end_subtransaction(const Subtransaction& s, bool keep)
{
    guarded([&] {
        if (keep)
            ReleaseCurrentSubTransaction();
        else
            RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(s.cxt);
        CurrentResourceOwner = s.owner;
    });
}

}  // namespace

std::string run_step(bool dry_run, const std::function<std::string()>& body)
{
    if (!dry_run)
        return body();
    const Subtransaction sub = begin_subtransaction();
    std::string summary;
    try {
        summary = body();
    } catch (...) {
        // Leave the subtransaction before the error travels on, so that a
        // caller's own exception block finds its subtransaction current.
        end_subtransaction(sub, false);
        throw;
    }
    end_subtransaction(sub, false);
    return summary;
}

bool try_subtransaction(const std::function<void()>& body, const std::function<bool()>& gave_up)
{
    const Subtransaction sub = begin_subtransaction();
    try {
        body();
    } catch (...) {
        end_subtransaction(sub, false);
        if (gave_up())
            return false;
        throw;
    }
    end_subtransaction(sub, true);
    return true;
}

std::string text_arg(FunctionCallInfo fcinfo, int arg, const char* name)
{
    if (PG_ARGISNULL(arg))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, strfmt("%s must not be null", name));
    return guarded([&] { return text_to_cstring(PG_GETARG_TEXT_PP(arg)); });
}

Datum jsonb_from_text(const std::string& json)
{
    return guarded([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}

void add_timings(Json& j, const Stages& stages)
{
    j.key("timings").begin_object();
    for (const auto& [name, ms] : stages.timings())
        j.key(name).raw(strfmt("%.3f", ms));
    j.key("total").raw(strfmt("%.3f", stages.total_ms()));
    j.end_object();
}

}  // namespace phasemig::pg
