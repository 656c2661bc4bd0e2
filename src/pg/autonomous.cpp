// Recording a failed verification so that it outlives the error raised
// about it: phasemig_assert fails the caller's transaction on purpose (so a
// pg_cron run shows as failed), and an INSERT in that transaction would be
// rolled back with it.  A short-lived background worker writes the history
// row in a transaction of its own.
#include "pg/autonomous.hpp"

#include <cstring>

#include "pg/context.hpp"
#include "pg/guard.hpp"

namespace phasemig::pg {

namespace {

constexpr int kFields = 9;

// The DSM segment: a header, then kFields NUL-terminated strings.
struct Payload {
    Oid database;
    Oid user;
    Size lengths[kFields];
    char data[FLEXIBLE_ARRAY_MEMBER];
};

}  // namespace

bool insert_history_autonomously(const std::vector<std::string>& fields)
{
    if (fields.size() != kFields)
        return false;
    Size total = offsetof(Payload, data);
    for (const auto& f : fields)
        total += f.size() + 1;
    const Oid owner = extension().owner;
    return guarded([&] {
        dsm_segment* seg = dsm_create(total, 0);
        auto* p = static_cast<Payload*>(dsm_segment_address(seg));
        p->database = MyDatabaseId;
        p->user = owner;
        char* out = p->data;
        for (int i = 0; i < kFields; i++) {
            p->lengths[i] = fields[i].size();
            memcpy(out, fields[i].data(), fields[i].size());
            out[fields[i].size()] = '\0';
            out += fields[i].size() + 1;
        }

        BackgroundWorker worker;
        memset(&worker, 0, sizeof worker);
        worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        worker.bgw_start_time = BgWorkerStart_ConsistentState;
        worker.bgw_restart_time = BGW_NEVER_RESTART;
        snprintf(worker.bgw_library_name, BGW_MAXLEN, "phasemig");
        snprintf(worker.bgw_function_name, BGW_MAXLEN, "phasemig_history_worker");
        snprintf(worker.bgw_name, BGW_MAXLEN, "phasemig history writer");
        snprintf(worker.bgw_type, BGW_MAXLEN, "phasemig history writer");
        worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
        worker.bgw_notify_pid = MyProcPid;

        BackgroundWorkerHandle* handle = nullptr;
        bool ok = RegisterDynamicBackgroundWorker(&worker, &handle);
        if (ok) {
            pid_t pid;
            ok = WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED &&
                 WaitForBackgroundWorkerShutdown(handle) == BGWH_STOPPED;
        }
        dsm_detach(seg);
        return ok;
    });
}

}  // namespace phasemig::pg

// The worker.  Plain C style: nothing here has a destructor, so an error
// simply ends the worker (and is logged) without skipping C++ clean-up.
extern "C" PGDLLEXPORT void phasemig_history_worker(Datum main_arg);

extern "C" void phasemig_history_worker(Datum main_arg)
{
    using phasemig::pg::Payload;
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    dsm_segment* seg = dsm_attach(DatumGetUInt32(main_arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("phasemig history writer could not attach to its shared memory segment")));
    auto* p = static_cast<Payload*>(dsm_segment_address(seg));
    const char* fields[phasemig::pg::kFields];
    const char* cursor = p->data;
    for (int i = 0; i < phasemig::pg::kFields; i++) {
        fields[i] = cursor;
        cursor += p->lengths[i] + 1;
    }

    BackgroundWorkerInitializeConnectionByOid(p->database, p->user, 0);
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "phasemig: recording a failed verification");

    if (SPI_execute("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
                    " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                    " WHERE e.extname OPERATOR(pg_catalog.=) 'phasemig'",
                    true, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("extension \"phasemig\" is not installed")));
    char* schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql,
                     "INSERT INTO %s.phasemig_verify_history"
                     " (target_schema, state, passed, checks, checks_passed, checks_failed, failed_checks, result,"
                     "  performed_by)"
                     " VALUES ($1, $2, $3::boolean, $4::integer, $5::integer, $6::integer,"
                     "         ARRAY(SELECT pg_catalog.jsonb_array_elements_text($7::jsonb)), $8::jsonb, $9::name)",
                     schema);
    Oid types[phasemig::pg::kFields];
    Datum values[phasemig::pg::kFields];
    for (int i = 0; i < phasemig::pg::kFields; i++) {
        types[i] = TEXTOID;
        values[i] = CStringGetTextDatum(fields[i]);
    }
    if (SPI_execute_with_args(sql.data, phasemig::pg::kFields, types, values, nullptr, false, 0) != SPI_OK_INSERT)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("phasemig history writer could not insert")));

    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    dsm_detach(seg);
    proc_exit(0);
}
