// The assignment archive's chunks from SQL: the view that shows them as rows,
// and the 1.1 -> 1.2 update that packs the row-per-assignment archive.
#include <string>
#include <vector>

#include "pg/archive_io.hpp"
#include "pg/guard.hpp"
#include "pg/scan.hpp"
#include "pg/spi.hpp"
#include "pg/text.hpp"

using namespace phasemig;
using namespace phasemig::pg;

// _phasemig_archive_entries(chunk bytea) RETURNS TABLE(row_position bigint,
//   assignment_key uuid, project_key uuid, assignment_date date, phase_key uuid)
PHASEMIG_FUNCTION(phasemig_archive_entries)
{
    return entry([&]() -> Datum {
        std::vector<ArchivedAssignment> entries;
        std::size_t len = 0;
        const unsigned char* data = guarded([&] {
            struct varlena* b = pg_detoast_datum_packed(PG_GETARG_VARLENA_PP(0));
            len = VARSIZE_ANY_EXHDR(b);
            return reinterpret_cast<const unsigned char*>(VARDATA_ANY(b));
        });
        if (!core::decode_chunk(data, len, entries))
            throw Error(ERRCODE_DATA_CORRUPTED, "phasemig's assignment archive is damaged",
                        strfmt("The chunk does not decode (entry %zu).", entries.size() + 1));
        guarded([&] { InitMaterializedSRF(fcinfo, 0); });
        auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
        constexpr std::size_t kRowsPerGuard = 256;
        for (std::size_t from = 0; from < entries.size(); from += kRowsPerGuard) {
            guarded([&] {
                for (std::size_t i = from; i < entries.size() && i < from + kRowsPerGuard; i++) {
                    const ArchivedAssignment& a = entries[i];
                    Datum values[5];
                    bool nulls[5] = {false, false, !a.has_project, !a.has_date, false};
                    pg_uuid_t keys[3];
                    values[0] = Int64GetDatum(static_cast<std::int64_t>(a.pos));
                    a.id.to_uuid(keys[0].data);
                    values[1] = UUIDPGetDatum(&keys[0]);
                    a.project.to_uuid(keys[1].data);
                    values[2] = UUIDPGetDatum(&keys[1]);
                    values[3] = DateADTGetDatum(a.date);
                    a.phase.to_uuid(keys[2].data);
                    values[4] = UUIDPGetDatum(&keys[2]);
                    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
                }
            });
        }
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
        const Oid old = guarded([&] { return PG_GETARG_OID(0); });
        spi_connect();
        const std::string name = guarded([&] {
            return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(old)), get_rel_name(old)));
        });
        std::vector<std::int64_t> runs;
        for (const Row& r : spi_rows("SELECT DISTINCT run_id FROM " + name + " ORDER BY 1"))
            runs.push_back(std::stoll(r.at(0).value()));
        std::vector<AttrNumber> attrs;
        for (const char* c : {"run_id", "row_position", "assignment_key", "project_key", "assignment_date", "phase_key"})
            attrs.push_back(guarded([&] { return get_attnum(old, c); }));
        for (AttrNumber a : attrs)
            if (a == InvalidAttrNumber)
                throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "table " + name + " is not a phasemig 1.1 assignment archive");
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
