// phasemig_status, phasemig_preflight and phasemig_purge_archive.
#include "pg/guard.hpp"
#include "pg/spi.hpp"
#include "pg/steps.hpp"

namespace phasemig::pg {

namespace {

void table_json(Json& j, const Table& t, const std::vector<std::string>& columns)
{
    j.key(t.name).begin_object();
    j.key("present").boolean(t.present());
    if (t.present()) {
        std::vector<std::string> present;
        for (const auto& c : columns)
            if (t.has(c))
                present.push_back(json_escape(c));
        j.key("columns").raw("[" + join_plain(present, ",") + "]");
    }
    j.end_object();
}

std::string status(const std::string& schema)
{
    Target t = inspect_target(schema);
    const Extension& ext = extension();
    Json j;
    j.begin_object();
    j.key("schema").str(schema);
    j.key("state").str(state_name(t.state));
    j.key("detail").str(t.state_detail);
    j.key("tables").begin_object();
    table_json(j, t.projects, {"id", "start_date", "end_date"});
    table_json(j, t.phases,
               {"phase_type", "name", "start_date", "end_date", "description", "created_at", "capital_budget",
                "expense_budget", "total_budget"});
    table_json(j, t.assignments, {"project_phase_id", "assignment_date"});
    table_json(j, t.alembic, {"version_num"});
    j.end_object();
    j.key("alembic_revision");
    if (t.alembic.present() && t.alembic.has("version_num")) {
        require_select(t.alembic);
        auto rows = spi_rows("SELECT version_num::text FROM " + t.alembic.qualified + " ORDER BY 1");
        if (rows.size() == 1 && rows[0][0])
            j.str(*rows[0][0]);
        else if (rows.empty())
            j.null();
        else {
            std::vector<std::string> revs;
            for (auto& r : rows)
                revs.push_back(json_escape(r[0].value_or("")));
            j.raw("[" + join_plain(revs, ",") + "]");
        }
    } else {
        j.null();
    }

    // What the archive holds for this schema: one entry per step kept.
    std::vector<Row> runs;
    std::vector<Row> last;
    std::vector<Row> verify;
    as_extension_owner([&] {
        runs = spi_rows("SELECT r.step, r.run_id, to_char(r.finished_at AT TIME ZONE 'UTC',"
                        "       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), r.archived_phases, r.archived_assignments,"
                        "       (SELECT count(*) FROM " + ext.table("phasemig_object_archive") +
                            " o WHERE o.run_id = r.run_id), r.performed_by"
                            "  FROM " + ext.table("phasemig_run") + " r"
                            " WHERE r.target_schema = $1 AND r.archive_dropped_at IS NULL"
                            "   AND r.finished_at IS NOT NULL ORDER BY r.run_id",
                        {Arg::of(schema)});
        last = spi_rows("SELECT step, run_id, to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                        "  FROM " + ext.table("phasemig_run") +
                            " WHERE target_schema = $1 ORDER BY run_id DESC LIMIT 1",
                        {Arg::of(schema)});
        verify = spi_rows("SELECT passed, to_char(verified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                          "       checks_failed, state"
                          "  FROM " + ext.table("phasemig_verify_history") +
                              " WHERE target_schema = $1 ORDER BY verify_id DESC LIMIT 1",
                          {Arg::of(schema)});
    });
    j.key("archive").begin_object();
    for (const char* step : {"upgrade", "downgrade"}) {
        j.key(step);
        const Row* found = nullptr;
        for (const Row& r : runs)
            if (r[0] == std::optional<std::string>(step))
                found = &r;
        if (!found) {
            j.null();
            continue;
        }
        const Row& r = *found;
        j.begin_object();
        j.key("run_id").num(std::stoll(r[1].value_or("0")));
        j.key("at").str(r[2].value_or(""));
        j.key("by").str(r[6].value_or(""));
        j.key("phases").num(std::stoll(r[3].value_or("0")));
        j.key("assignments").num(std::stoll(r[4].value_or("0")));
        j.key("objects").num(std::stoll(r[5].value_or("0")));
        j.key("restores")
            .str(std::string(step) == "upgrade"
                     ? "phase_type of each phase and project_phase_id of each assignment, for the next downgrade"
                     : "name, dates and description of each phase, for the next upgrade");
        j.end_object();
    }
    j.end_object();
    j.key("last_step");
    if (last.empty())
        j.null();
    else
        j.begin_object()
            .key("step")
            .str(last[0][0].value_or(""))
            .key("run_id")
            .num(std::stoll(last[0][1].value_or("0")))
            .key("at")
            .str(last[0][2].value_or(""))
            .end_object();
    j.key("last_verify");
    if (verify.empty())
        j.null();
    else
        j.begin_object()
            .key("passed")
            .boolean(verify[0][0].value_or("f") == "t")
            .key("at")
            .str(verify[0][1].value_or(""))
            .key("failed_checks")
            .num(std::stoll(verify[0][2].value_or("0")))
            .key("state")
            .str(verify[0][3].value_or(""))
            .end_object();
    j.end_object();
    return j.text();
}

std::vector<Finding> preflight(const std::string& schema)
{
    Target t = inspect_target(schema);
    std::vector<Finding> out;
    for (const Table* tab : {&t.projects, &t.phases, &t.assignments})
        if (tab->present())
            require_select(*tab);
    switch (t.state) {
    case State::Absent: {
        Finding f;
        f.severity = "error";
        f.code = "missing_table";
        f.message = t.state_detail;
        f.count = 1;
        out.push_back(f);
        break;
    }
    case State::Mixed: {
        Finding f;
        f.severity = "error";
        f.code = "mixed_state";
        f.message = t.state_detail;
        f.count = 1;
        out.push_back(f);
        break;
    }
    case State::Legacy: {
        UpgradePrep prep;
        prepare_upgrade(t, true, prep);
        out = std::move(prep.findings);
        break;
    }
    case State::Upgraded: {
        DowngradePrep prep;
        prepare_downgrade(t, true, prep);
        out = std::move(prep.findings);
        break;
    }
    }
    // Errors first, then warnings; each group in the order found.
    std::stable_sort(out.begin(), out.end(),
                     [](const Finding& a, const Finding& b) { return a.severity == "error" && b.severity != "error"; });
    return out;
}

std::string purge(const std::string& schema)
{
    const Extension& ext = extension();
    std::int64_t phases = 0, assignments = 0, objects = 0, runs = 0;
    as_extension_owner([&] {
        const std::string live = "SELECT run_id FROM " + ext.table("phasemig_run") + " WHERE target_schema = $1";
        const Args args = {Arg::of(schema)};
        // Archived assignments and phases, not chunks: what the rows were
        // until 1.1 and 1.2.
        assignments = spi_int("WITH d AS (DELETE FROM " + ext.table("phasemig_assignment_archive") +
                                  " WHERE run_id IN (" + live + ") RETURNING entries)"
                                  " SELECT coalesce(sum(entries), 0)::bigint FROM d",
                              args);
        phases = spi_int("WITH d AS (DELETE FROM " + ext.table("phasemig_phase_archive") +
                             " WHERE run_id IN (" + live + ") RETURNING entries)"
                             " SELECT coalesce(sum(entries), 0)::bigint FROM d",
                         args);
        objects = static_cast<std::int64_t>(
            spi_exec("DELETE FROM " + ext.table("phasemig_object_archive") + " WHERE run_id IN (" + live + ")", args));
        runs = static_cast<std::int64_t>(spi_exec("UPDATE " + ext.table("phasemig_run") +
                                                      " SET archive_dropped_at = clock_timestamp()"
                                                      " WHERE target_schema = $1 AND archive_dropped_at IS NULL",
                                                  args));
    });
    Json j;
    j.begin_object()
        .key("schema")
        .str(schema)
        .key("runs")
        .num(runs)
        .key("phase_rows")
        .num(phases)
        .key("assignment_rows")
        .num(assignments)
        .key("object_rows")
        .num(objects)
        .end_object();
    return j.text();
}

}  // namespace

}  // namespace phasemig::pg

using namespace phasemig::pg;

// phasemig_status(target_schema text) RETURNS jsonb
PHASEMIG_FUNCTION(phasemig_status)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        spi_connect();
        std::string s = status(schema);
        spi_finish();
        return jsonb_from_text(s);
    });
}

// phasemig_preflight(target_schema text) RETURNS TABLE(severity, code, message, count, sample)
PHASEMIG_FUNCTION(phasemig_preflight)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        spi_connect();
        std::vector<Finding> findings = preflight(schema);
        spi_finish();
        guarded([&] { InitMaterializedSRF(fcinfo, 0); });
        auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
        for (const Finding& f : findings) {
            guarded([&] {
                Datum values[5];
                bool nulls[5] = {false, false, false, false, false};
                values[0] = CStringGetTextDatum(f.severity.c_str());
                values[1] = CStringGetTextDatum(f.code.c_str());
                values[2] = CStringGetTextDatum(f.message.c_str());
                values[3] = Int64GetDatum(f.count);
                if (f.sample.empty())
                    nulls[4] = true;
                else
                    values[4] = CStringGetTextDatum(f.sample.c_str());
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            });
        }
        return (Datum) 0;
    });
}

// phasemig_purge_archive(target_schema text) RETURNS jsonb
PHASEMIG_FUNCTION(phasemig_purge_archive)
{
    return entry([&]() -> Datum {
        const std::string schema = text_arg(fcinfo, 0, "target_schema");
        spi_connect();
        std::string s = purge(schema);
        spi_finish();
        return jsonb_from_text(s);
    });
}
