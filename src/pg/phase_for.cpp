// phasemig_phase_for(project_id, on_date, target_schema): the date rule of
// SPEC §3 as a function, for reports.  The phases are read once per
// statement (per call site) into the C++ index; each call is then a lookup.
#include <cstring>
#include <memory>

#include "pg/guard.hpp"
#include "pg/model.hpp"
#include "pg/step.hpp"

namespace phasemig::pg {
namespace {

struct PhaseForCache {
    char schema[NAMEDATALEN + 1];
    UpgradedData* data;  // owned; freed when the call site's memory context goes
    KeyType project_key;
    KeyType phase_key;
    Oid arg_type;
};

void free_cache(void* arg) noexcept
{
    auto* cache = static_cast<PhaseForCache*>(arg);
    delete cache->data;
    cache->data = nullptr;
}

PhaseForCache* build_cache(FunctionCallInfo fcinfo, const std::string& schema)
{
    Target t = inspect_target(schema);
    if (t.state != State::Upgraded)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    strfmt("phasemig_phase_for needs schema \"%s\" at the upgraded revision", schema.c_str()),
                    t.state_detail, "Phases have dates only after phasemig_upgrade().");
    require_select(t.phases);
    const Oid arg_type = guarded([&] { return get_fn_expr_argtype(fcinfo->flinfo, 0); });
    const Oid phase_type = t.phases.col("id").type;
    const KeyType pk = key_type_of(t.phases.col("project_id").type);
    if (key_type_of(arg_type) == KeyType::Unsupported || arg_type != phase_type || pk == KeyType::Unsupported ||
        (pk == KeyType::Uuid) != (key_type_of(arg_type) == KeyType::Uuid)) {
        const std::string arg_name = guarded([&] { return std::string(format_type_be(arg_type)); });
        const std::string phase_name = guarded([&] { return std::string(format_type_be(phase_type)); });
        throw Error(ERRCODE_DATATYPE_MISMATCH,
                    strfmt("phasemig_phase_for takes and returns ids of type %s, not %s", phase_name.c_str(),
                           arg_name.c_str()),
                    "The result is a project_phases.id, and its type is that of the project_id argument.",
                    strfmt("Cast the project id: phasemig_phase_for(project_id::%s, ...).", phase_name.c_str()));
    }
    KeyTypes types;
    types.project = pk;
    types.phase = key_type_of(phase_type);
    auto data = std::make_unique<UpgradedData>();
    load_upgraded(t, types, *data);

    PhaseForCache* cache = guarded([&] {
        auto* c = static_cast<PhaseForCache*>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PhaseForCache)));
        auto* cb = static_cast<MemoryContextCallback*>(
            MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(MemoryContextCallback)));
        cb->func = free_cache;
        cb->arg = c;
        MemoryContextRegisterResetCallback(fcinfo->flinfo->fn_mcxt, cb);
        return c;
    });
    std::strncpy(cache->schema, schema.c_str(), NAMEDATALEN);
    cache->data = data.release();
    cache->project_key = pk;
    cache->phase_key = types.phase;
    cache->arg_type = arg_type;
    return cache;
}

}  // namespace
}  // namespace phasemig::pg

using namespace phasemig;
using namespace phasemig::pg;

// phasemig_phase_for(project_id anyelement, on_date date, target_schema text) RETURNS anyelement
PHASEMIG_FUNCTION(phasemig_phase_for)
{
    return entry([&]() -> Datum {
        auto* cache = static_cast<PhaseForCache*>(fcinfo->flinfo->fn_extra);
        text* schema_arg = PG_GETARG_TEXT_PP(2);
        const char* schema_ptr = VARDATA_ANY(schema_arg);
        const std::size_t schema_len = VARSIZE_ANY_EXHDR(schema_arg);
        if (!cache || !cache->data || std::strlen(cache->schema) != schema_len ||
            std::strncmp(cache->schema, schema_ptr, schema_len) != 0) {
            if (cache)
                free_cache(cache);
            cache = build_cache(fcinfo, std::string(schema_ptr, schema_len));
            fcinfo->flinfo->fn_extra = cache;
        }
        const core::Key project = datum_to_key(PG_GETARG_DATUM(0), cache->project_key);
        const core::PhaseIndex::Phase* m = cache->data->index.match(project, PG_GETARG_DATEADT(1));
        if (!m)
            PG_RETURN_NULL();
        // No guard: this frame holds nothing with a destructor.
        return key_to_datum(m->id, cache->phase_key);
    });
}
