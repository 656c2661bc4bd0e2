#include "pg/context.hpp"

#include "pg/guard.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

int setting_stage_messages = 0;
int setting_lock_timeout_ms = 5000;
int setting_lock_retries = 3;
int setting_direct_reads = kDirectReadsAuto;
char* setting_fault_injection = nullptr;

namespace {
Stages* g_current = nullptr;
}

const Extension& extension()
{
    // Looked up per call (an ALTER EXTENSION SET SCHEMA or a reinstall must
    // not leave a stale name behind); cheap syscache reads.
    static Extension ext;
    struct Raw {
        const char* schema;
        Oid owner;
    };
    Raw raw = guarded([] {
        Oid extoid = get_extension_oid("phasemig", false);
        Raw r{nullptr, InvalidOid};
        Relation rel = table_open(ExtensionRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extoid));
        SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
        HeapTuple tup = systable_getnext(scan);
        if (HeapTupleIsValid(tup)) {
            auto* form = reinterpret_cast<Form_pg_extension>(GETSTRUCT(tup));
            r.owner = form->extowner;
            r.schema = get_namespace_name(form->extnamespace);
        }
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
        if (!r.schema)
            elog(ERROR, "extension phasemig has no schema");
        return r;
    });
    ext.schema = raw.schema;
    ext.qschema = guarded([&] { return quote_identifier(raw.schema); });
    ext.owner = raw.owner;
    return ext;
}

void as_extension_owner(const std::function<void()>& f)
{
    Oid saved_user;
    int saved_sec;
    Oid owner = extension().owner;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    if (saved_user == owner) {
        f();
        return;
    }
    SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    try {
        f();
    } catch (...) {
        // Abort would restore it too; restoring here keeps C++ callers sane.
        SetUserIdAndSecContext(saved_user, saved_sec);
        throw;
    }
    SetUserIdAndSecContext(saved_user, saved_sec);
}

Stages::Stages(std::string step, std::string schema, int total)
    : step_(std::move(step)), schema_(std::move(schema)), total_(total), started_(std::chrono::steady_clock::now())
{
    stage_started_ = started_;
    g_current = this;
}

Stages::~Stages()
{
    if (g_current == this)
        g_current = nullptr;
    // A step that failed (C++ unwinding on the way to the error) gives the
    // query text back too, so it does not look as if still running while
    // the caller's statement goes on.  pgstat_report_activity only writes
    // this backend's own status entry and raises no error.
    if (!finished_ && debug_query_string)
        pgstat_report_activity(STATE_RUNNING, debug_query_string);
}

Stages* current_stages()
{
    return g_current;
}

void Stages::report(const std::string& text)
{
    // pg_stat_activity.query of this backend: the way another session sees
    // how far a long step has got, without shared memory or a preload.
    guarded([&] { pgstat_report_activity(STATE_RUNNING, text.c_str()); });
}

void Stages::begin(const std::string& name)
{
    current_ = name;
    index_++;
    stage_started_ = std::chrono::steady_clock::now();
    report(strfmt("phasemig %s of schema \"%s\": stage %d/%d %s", step_.c_str(), schema_.c_str(), index_, total_,
                  name.c_str()));
}

void Stages::progress(std::uint64_t done, std::uint64_t total)
{
    report(strfmt("phasemig %s of schema \"%s\": stage %d/%d %s, %llu of %llu rows", step_.c_str(),
                  schema_.c_str(), index_, total_, current_.c_str(), static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(total)));
}

void Stages::end()
{
    auto now = std::chrono::steady_clock::now();
    double ms = std::chrono::duration<double, std::milli>(now - stage_started_).count();
    timings_.emplace_back(current_, ms);
    if (setting_stage_messages != 0) {
        std::string msg = strfmt("phasemig %s: %s done in %.1f ms", step_.c_str(), current_.c_str(), ms);
        const int level = setting_stage_messages;
        guarded([&] { ereport(level, (errmsg_internal("%s", msg.c_str()))); });
    }
    if (setting_fault_injection && setting_fault_injection[0] != '\0') {
        std::string point = step_ + ":" + current_;
        if (point == setting_fault_injection || std::string(setting_fault_injection) == step_ + ":*")
            throw Error(ERRCODE_TRIGGERED_ACTION_EXCEPTION,
                        strfmt("phasemig fault injected after stage \"%s\"", point.c_str()),
                        "The setting phasemig.fault_injection asked for this failure; it exists for tests.");
    }
}

void Stages::finish()
{
    // Give pg_stat_activity its query text back.
    finished_ = true;
    if (debug_query_string)
        report(debug_query_string);
}

double Stages::total_ms() const
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
}

}  // namespace phasemig::pg
