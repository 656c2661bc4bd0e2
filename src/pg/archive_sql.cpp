// The archives' chunks from SQL: the views that show them as rows, and the
// updates that pack a row-per-entry archive (assignments 1.1 -> 1.2,
// phases 1.2 -> 1.3).
#include <initializer_list>
#include <string>
#include <vector>

#include "pg/archive_io.hpp"
#include "pg/guard.hpp"
#include "pg/scan.hpp"
#include "pg/spi.hpp"
#include "pg/text.hpp"

using namespace phasemig;
using namespace phasemig::pg;

namespace {

// The bytea argument 0 (a chunk), detoasted when it must be.
core::Bytes chunk_arg(FunctionCallInfo fcinfo)
{
    return guarded([&] { return varlena_bytes(PG_GETARG_DATUM(0)); });
}

// Materializes n rows of the calling set-returning function, row(i, values,
// nulls) filling each: a guard per 256 rows, whose allocations go with them.
template <typename Row>
void put_rows(FunctionCallInfo fcinfo, std::size_t n, Row&& row)
{
    guarded([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    constexpr std::size_t kRowsPerGuard = 256;
    for (std::size_t from = 0; from < n; from += kRowsPerGuard) {
        guarded([&] {
            MemoryContext rows = AllocSetContextCreate(CurrentMemoryContext, "phasemig archive rows",
                                                       ALLOCSET_SMALL_SIZES);
            MemoryContext old = MemoryContextSwitchTo(rows);
            for (std::size_t i = from; i < n && i < from + kRowsPerGuard; i++) {
                Datum values[16];
                bool nulls[16];
                row(i, values, nulls);
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
            MemoryContextSwitchTo(old);
            MemoryContextDelete(rows);
        });
    }
}

// The row-per-entry table an update packs: its OID, qualified name and the
// attribute numbers of `columns`; raises when one is missing (`what` names
// the table it should be).
struct OldArchive {
    Oid oid = InvalidOid;
    std::string name;
    std::vector<AttrNumber> attrs;
};
OldArchive old_archive(FunctionCallInfo fcinfo, std::initializer_list<const char*> columns, const char* what)
{
    OldArchive t;
    t.oid = guarded([&] { return PG_GETARG_OID(0); });
    t.name = guarded([&] {
        return std::string(
            quote_qualified_identifier(get_namespace_name(get_rel_namespace(t.oid)), get_rel_name(t.oid)));
    });
    for (const char* c : columns) {
        const AttrNumber a = guarded([&] { return get_attnum(t.oid, c); });
        if (a == InvalidAttrNumber)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "table " + t.name + " is not " + what);
        t.attrs.push_back(a);
    }
    return t;
}

}  // namespace

// _phasemig_archive_entries(chunk bytea) RETURNS TABLE(row_position bigint,
//   assignment_key uuid, project_key uuid, assignment_date date, phase_key uuid)
PHASEMIG_FUNCTION(phasemig_archive_entries)
{
    return entry([&]() -> Datum {
        std::vector<ArchivedAssignment> entries;
        const core::Bytes chunk = chunk_arg(fcinfo);
        if (!core::decode_chunk(chunk.data, chunk.len, entries))
            throw Error(ERRCODE_DATA_CORRUPTED, "phasemig's assignment archive is damaged",
                        strfmt("The chunk does not decode (entry %zu).", entries.size() + 1));
        put_rows(fcinfo, entries.size(), [&](std::size_t i, Datum* values, bool* nulls) {
            const ArchivedAssignment& a = entries[i];
            nulls[0] = nulls[1] = nulls[4] = false;
            nulls[2] = !a.has_project;
            nulls[3] = !a.has_date;
            auto uuid = [](const core::Key& k) {
                auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
                k.to_uuid(u->data);
                return UUIDPGetDatum(u);
            };
            values[0] = Int64GetDatum(static_cast<std::int64_t>(a.pos));
            values[1] = uuid(a.id);
            values[2] = uuid(a.project);
            values[3] = DateADTGetDatum(a.date);
            values[4] = uuid(a.phase);
        });
        return (Datum) 0;
    });
}

// _phasemig_pack_archive(old regclass) RETURNS bigint
// Packs a 1.1 archive table (a row per assignment: run_id, row_position,
// assignment_key, project_key, assignment_date, phase_key) into the chunks
// of phasemig_assignment_archive, run by run, in the old table's physical
// order (the order it was written in); returns the entries packed.
PHASEMIG_FUNCTION(phasemig_pack_archive)
{
    return entry([&]() -> Datum {
        const OldArchive t = old_archive(
            fcinfo, {"run_id", "row_position", "assignment_key", "project_key", "assignment_date", "phase_key"},
            "a phasemig 1.1 assignment archive");
        const Oid old = t.oid;
        const std::string& name = t.name;
        const std::vector<AttrNumber>& attrs = t.attrs;
        spi_connect();
        std::vector<std::int64_t> runs;
        for (const Row& r : spi_rows("SELECT DISTINCT run_id FROM " + name + " ORDER BY 1"))
            runs.push_back(std::stoll(r.at(0).value()));
        std::uint64_t packed = 0;
        for (std::int64_t run : runs) {
            AssignmentArchiveWriter w(run);
            scan_table(old, attrs, [&](const Datum* v, const bool* n) {
                if (n[0] || DatumGetInt64(v[0]) != run || n[1] || n[2] || n[5])
                    return;
                const core::Key project = n[3] ? core::Key{} : core::Key::from_uuid(DatumGetUUIDP(v[3])->data);
                w.add(static_cast<std::uint64_t>(DatumGetInt64(v[1])), core::Key::from_uuid(DatumGetUUIDP(v[2])->data),
                      n[3], project, n[4], n[4] ? 0 : DatumGetDateADT(v[4]),
                      core::Key::from_uuid(DatumGetUUIDP(v[5])->data));
            });
            w.finish();
            packed += w.written();
        }
        spi_finish();
        return Int64GetDatum(static_cast<std::int64_t>(packed));
    });
}

namespace {

// The text of a key as the chunk's kinds byte says it was printed.
Datum key_text(const core::Key& k, bool integer)
{
    char buf[48];
    const int len = key_to_cstr(k, integer ? KeyType::Int8 : KeyType::Uuid, buf);
    return PointerGetDatum(cstring_to_text_with_len(buf, len));
}

Datum bytes_text(const core::Bytes& b)
{
    return PointerGetDatum(cstring_to_text_with_len(reinterpret_cast<const char*>(b.data), static_cast<int>(b.len)));
}

// A numeric rebuilt from the bytes its varlena held.
Datum bytes_numeric(const core::Bytes& b)
{
    auto* v = static_cast<struct varlena*>(palloc(VARHDRSZ + b.len));
    SET_VARSIZE(v, VARHDRSZ + b.len);
    memcpy(VARDATA(v), b.data, b.len);
    return PointerGetDatum(v);
}

}  // namespace

// _phasemig_phase_entries(chunk bytea) RETURNS TABLE(phase_id text, project_id text,
//   phase_type text, name text, start_date date, end_date date, description text,
//   capital_budget numeric, expense_budget numeric, total_budget numeric)
PHASEMIG_FUNCTION(phasemig_phase_entries)
{
    return entry([&]() -> Datum {
        const core::Bytes chunk = chunk_arg(fcinfo);
        // Decoded whole first: a damaged chunk returns no row.
        std::vector<core::PhaseArchiveEntry> entries;
        core::PhaseChunkDecoder dec(chunk.data, chunk.len);
        core::PhaseArchiveEntry e;
        while (dec.next(e))
            entries.push_back(e);
        if (!dec.ok())
            throw Error(ERRCODE_DATA_CORRUPTED, "phasemig's phase archive is damaged",
                        strfmt("The chunk does not decode (entry %zu).", entries.size() + 1));
        const bool phase_int = dec.kinds() & core::phase_codec::kPhaseIdInteger;
        const bool project_int = dec.kinds() & core::phase_codec::kProjectIdInteger;
        put_rows(fcinfo, entries.size(), [&](std::size_t i, Datum* values, bool* nulls) {
            const core::PhaseArchiveEntry& a = entries[i];
            const core::Bytes* texts[] = {&a.phase_type, &a.name, nullptr, nullptr, &a.description};
            values[0] = key_text(a.phase, phase_int);
            nulls[0] = false;
            nulls[1] = !a.has_project;
            values[1] = a.has_project ? key_text(a.project, project_int) : (Datum) 0;
            for (int c = 2; c <= 6; c++) {
                if (const core::Bytes* t = texts[c - 2]) {
                    nulls[c] = !t->present();
                    values[c] = nulls[c] ? (Datum) 0 : bytes_text(*t);
                }
            }
            nulls[4] = !a.has_start;
            values[4] = DateADTGetDatum(a.start);
            nulls[5] = !a.has_end;
            values[5] = DateADTGetDatum(a.end);
            const core::Bytes* budgets[] = {&a.capital, &a.expense, &a.total};
            for (int c = 0; c < 3; c++) {
                nulls[7 + c] = !budgets[c]->present();
                values[7 + c] = nulls[7 + c] ? (Datum) 0 : bytes_numeric(*budgets[c]);
            }
        });
        return (Datum) 0;
    });
}

// _phasemig_pack_phase_archive(old regclass) RETURNS bigint
// Packs a 1.2 phase archive table (a row per phase: run_id, phase_id text,
// project_id text, phase_type, name, start_date, end_date, description and
// the three budgets) into the chunks of phasemig_phase_archive, run by run,
// in the old table's physical order; returns the entries packed.  Ids were
// written as uuid or integer text: a run's kind is its first id's.
PHASEMIG_FUNCTION(phasemig_pack_phase_archive)
{
    return entry([&]() -> Datum {
        const OldArchive t = old_archive(fcinfo,
                                         {"run_id", "phase_id", "project_id", "phase_type", "name", "start_date",
                                          "end_date", "description", "capital_budget", "expense_budget",
                                          "total_budget"},
                                         "a phasemig 1.2 phase archive");
        const Oid old = t.oid;
        const std::string& name = t.name;
        const std::vector<AttrNumber>& attrs = t.attrs;
        spi_connect();
        struct Run {
            std::int64_t id;
            KeyType phase, project;
        };
        std::vector<Run> runs;
        auto kind = [](const std::optional<std::string>& text) {
            return text && key_from_text(*text, KeyType::Uuid) ? KeyType::Uuid : KeyType::Int8;
        };
        for (const Row& r : spi_rows("SELECT DISTINCT ON (run_id) run_id, phase_id, "
                                     "(SELECT project_id FROM " + name + " p WHERE p.run_id = o.run_id "
                                     "AND project_id IS NOT NULL LIMIT 1) FROM " + name + " o ORDER BY run_id"))
            runs.push_back({std::stoll(r.at(0).value()), kind(r.at(1)), kind(r.at(2))});
        std::uint64_t packed = 0;
        for (const Run& run : runs) {
            PhaseArchiveWriter w(run.id, run.phase, run.project);
            std::optional<std::string> bad;
            scan_table(old, attrs, [&](const Datum* v, const bool* n) {
                if (n[0] || DatumGetInt64(v[0]) != run.id || n[1] || bad)
                    return;
                auto key = [&](Datum d, KeyType type) {
                    const text* t = DatumGetTextPP(d);
                    return key_from_text(std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)), type);
                };
                core::PhaseArchiveEntry e;
                const auto phase = key(v[1], run.phase);
                const auto project = n[2] ? std::optional<core::Key>(core::Key{}) : key(v[2], run.project);
                if (!phase || !project) {
                    bad = TextDatumGetCString(phase ? v[2] : v[1]);
                    return;
                }
                e.phase = *phase;
                e.has_project = !n[2];
                e.project = *project;
                if (!n[3])
                    e.phase_type = varlena_bytes(v[3]);
                if (!n[4])
                    e.name = varlena_bytes(v[4]);
                e.has_start = !n[5];
                e.start = n[5] ? 0 : DatumGetDateADT(v[5]);
                e.has_end = !n[6];
                e.end = n[6] ? 0 : DatumGetDateADT(v[6]);
                if (!n[7])
                    e.description = varlena_bytes(v[7]);
                set_budgets(e, v + 8, n + 8);
                w.add(e);
            });
            if (bad)
                throw Error(ERRCODE_DATA_CORRUPTED, "phasemig's phase archive is damaged",
                            strfmt("Run %lld holds the id \"%s\", which is not of the kind of its other ids.",
                                   static_cast<long long>(run.id), bad->c_str()));
            w.finish();
            packed += w.written();
        }
        spi_finish();
        return Int64GetDatum(static_cast<std::int64_t>(packed));
    });
}
