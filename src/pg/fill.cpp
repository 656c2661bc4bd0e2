#include "pg/fill.hpp"

#include "pg/context.hpp"
#include "pg/guard.hpp"
#include "pg/model.hpp"
#include "pg/scan.hpp"

namespace phasemig::pg {

namespace {

FillContext* g_active = nullptr;

constexpr int kFieldName = 1;
constexpr int kFieldDescription = 2;
constexpr int kFieldStart = 1;
// Progress is reported every this many rows.
constexpr std::uint64_t kProgressEvery = 1 << 16;
// How many rows ahead the upgrade's rewrite prefetches its planned phase.
constexpr std::size_t kPlanAhead = 8;

FillContext& active(std::int64_t token)
{
    if (!g_active || g_active->token != token)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "phasemig internal fill function called outside of a phasemig step",
                    "Functions whose names start with _phasemig are used by phasemig_upgrade and phasemig_downgrade "
                    "inside the ALTER TABLE statements they run.",
                    "Call phasemig_upgrade() or phasemig_downgrade() instead.");
    return *g_active;
}

void count_row(FillContext& ctx)
{
    if (++ctx.rows % kProgressEvery == 0) {
        if (Stages* s = current_stages())
            s->progress(ctx.rows, ctx.expected_rows);
    }
}

const core::PlannedPhase* planned(FillContext& ctx, const core::Key& id)
{
    if (ctx.last_planned && ctx.last_id == id)
        return ctx.last_planned;
    if (!ctx.planner)
        return nullptr;
    ctx.last_planned = ctx.planner->find_in_order(id, ctx.plan_cursor);
    ctx.last_id = id;
    ctx.planner->prefetch_in_order(ctx.plan_cursor + kPlanAhead);
    return ctx.last_planned;
}

// The key type of argument `arg`, resolved once per call site.
KeyType arg_key_type(FunctionCallInfo fcinfo, int arg)
{
    auto* cached = static_cast<KeyType*>(fcinfo->flinfo->fn_extra);
    if (cached && cached[arg] != KeyType::Unsupported)
        return cached[arg];
    KeyType kt = guarded([&] {
        if (!fcinfo->flinfo->fn_extra)
            fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(KeyType) * 8);
        return key_type_of(get_fn_expr_argtype(fcinfo->flinfo, arg));
    });
    if (kt == KeyType::Unsupported)
        throw Error(ERRCODE_DATATYPE_MISMATCH, "unsupported id type in phasemig fill function");
    static_cast<KeyType*>(fcinfo->flinfo->fn_extra)[arg] = kt;
    return kt;
}

[[noreturn]] void give_up(FillContext& ctx)
{
    ctx.needs_second_pass = true;
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "phasemig's single pass over the assignments gave up",
                "The downgrade rolls this attempt back and reads the assignments twice.");
}

}  // namespace

Datum fill_assignment(FillContext& ctx, const AssignmentRow& row, std::uint64_t pos)
{
    count_row(ctx);
    const UpgradedData& d = *ctx.data;
    const core::PhaseIndex::Project* slot = row.project_null ? nullptr : d.index.find(row.project);
    if (!slot && ctx.one_pass)
        give_up(ctx);  // the first pass finds every such row and refuses with all of them
    if (!slot)
        throw Error(ERRCODE_NOT_NULL_VIOLATION,
                    row.project_null ? std::string("an assignment without a project cannot get a phase")
                                     : "project " + key_to_text(row.project, ctx.project_key) +
                                           " has assignments but no phases",
                    "project_phase_id cannot be NOT NULL for its assignments; nothing has been changed.");
    if (ctx.archive || ctx.archive_one_pass) {
        ArchivedAssignment e;
        bool found;
        if (ctx.archive) {
            found = ctx.archive->find(pos, row.id, e);
        } else {
            const core::OnePassAnswer a = ctx.archive_one_pass->find(pos, row.id, e);
            if (a == core::OnePassAnswer::Unknown)
                give_up(ctx);
            found = a == core::OnePassAnswer::Found;
        }
        if (found && d.restorable(row, e)) {
            ctx.restored++;
            return key_to_datum(e.phase, ctx.phase_key);
        }
    }
    const core::PhaseIndex::Phase* m = row.date_null ? nullptr : d.index.match(*slot, row.date);
    if (m) {
        ctx.matched++;
    } else {
        ctx.outside++;
        m = d.index.first(*slot);
    }
    return key_to_datum(m->id, ctx.phase_key);
}

Error phase_appeared(const core::Key& id, KeyType type)
{
    return Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "phase " + key_to_text(id, type) + " appeared during the step",
                 "A phase was not seen when the step read the table; nothing has been changed.");
}

ActiveFill::ActiveFill(FillContext& ctx) : previous_(g_active)
{
    g_active = &ctx;
}

ActiveFill::~ActiveFill()
{
    g_active = previous_;
}

std::int64_t new_fill_token()
{
    std::int64_t token = 0;
    bool ok = guarded([&] { return pg_strong_random(&token, sizeof token); });
    if (!ok || token == 0)
        token = static_cast<std::int64_t>(MyProcPid) * 1000003 + static_cast<std::int64_t>(GetCurrentTimestamp());
    return token;
}

}  // namespace phasemig::pg

using namespace phasemig;
using namespace phasemig::pg;

// _phasemig_fill_text(id anyelement, field int, token bigint) RETURNS text
PHASEMIG_FUNCTION(phasemig_fill_text)
{
    return entry([&]() -> Datum {
        FillContext& ctx = active(PG_GETARG_INT64(2));
        const int field = PG_GETARG_INT32(1);
        const core::Key id = datum_to_key(PG_GETARG_DATUM(0), arg_key_type(fcinfo, 0));
        count_row(ctx);
        const std::string* value = nullptr;
        if ((field == kFieldName || field == kFieldDescription) && ctx.planner) {
            const core::PlannedPhase* p = planned(ctx, id);
            if (p) {
                std::uint32_t s = field == kFieldName ? p->name : p->description;
                if (s == 0) {
                    fcinfo->isnull = true;
                    return (Datum) 0;
                }
                value = &ctx.planner->string_at(s);
            }
        }
        if (!value)
            throw phase_appeared(id, arg_key_type(fcinfo, 0));
        // Per row: no guard, this frame holds nothing with a destructor.
        return PointerGetDatum(cstring_to_text_with_len(value->data(), static_cast<int>(value->size())));
    });
}

// _phasemig_fill_date(id anyelement, field int, token bigint) RETURNS date
PHASEMIG_FUNCTION(phasemig_fill_date)
{
    return entry([&]() -> Datum {
        FillContext& ctx = active(PG_GETARG_INT64(2));
        const int field = PG_GETARG_INT32(1);
        const core::Key id = datum_to_key(PG_GETARG_DATUM(0), arg_key_type(fcinfo, 0));
        count_row(ctx);
        const core::PlannedPhase* p = planned(ctx, id);
        if (!p)
            throw phase_appeared(id, arg_key_type(fcinfo, 0));
        return DateADTGetDatum(field == kFieldStart ? p->range.start : p->range.end);
    });
}

// _phasemig_fill_assignment(result anyelement, project_id "any", on_date date,
//                           assignment_id "any", row tid, token bigint) RETURNS anyelement
// The downgrade's USING clause until 1.1 (since 1.2 it fills the column in
// its own rewrite); kept for the 1.0 install script, which declares it.
PHASEMIG_FUNCTION(phasemig_fill_assignment)
{
    return entry([&]() -> Datum {
        FillContext& ctx = active(PG_GETARG_INT64(5));
        AssignmentRow row;
        row.id = datum_to_key(PG_GETARG_DATUM(3), ctx.assignment_key);
        row.project_null = PG_ARGISNULL(1);
        if (!row.project_null)
            row.project = datum_to_key(PG_GETARG_DATUM(1), ctx.project_key);
        row.date_null = PG_ARGISNULL(2);
        row.date = row.date_null ? 0 : PG_GETARG_DATEADT(2);
        const auto* tid = reinterpret_cast<const ItemPointerData*>(PG_GETARG_POINTER(4));
        return fill_assignment(ctx, row, tid_position(tid));
    });
}
