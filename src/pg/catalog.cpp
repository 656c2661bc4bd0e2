#include "pg/catalog.hpp"

#include <set>

#include "pg/guard.hpp"
#include "pg/spi.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

namespace {

const Column kNoColumn{};

const std::vector<std::string> kProjectColumns = {"id", "start_date", "end_date"};
const std::vector<std::string> kPhaseColumns = {"id",         "project_id", "phase_type",   "name",
                                                "start_date", "end_date",   "description",  "created_at",
                                                "capital_budget", "expense_budget", "total_budget"};
const std::vector<std::string> kAssignmentColumns = {"id", "project_id", "project_phase_id", "assignment_date"};
const std::vector<std::string> kAlembicColumns = {"version_num"};

Table read_table(Oid nsp, const std::string& qschema, const std::string& name, const std::vector<std::string>& columns)
{
    Table t;
    t.name = name;
    struct Raw {
        Oid oid;
        char relkind;
    };
    Raw raw = guarded([&] {
        Raw r{get_relname_relid(name.c_str(), nsp), 0};
        if (OidIsValid(r.oid))
            r.relkind = get_rel_relkind(r.oid);
        return r;
    });
    t.oid = raw.oid;
    t.relkind = raw.relkind;
    t.qualified = qschema + "." + quote_ident(name);
    if (!t.present())
        return t;
    for (const auto& c : columns) {
        Column col = guarded([&] {
            Column out;
            HeapTuple tup = SearchSysCacheAttName(raw.oid, c.c_str());
            if (HeapTupleIsValid(tup)) {
                auto* att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
                out.attnum = att->attnum;
                out.type = att->atttypid;
                out.typmod = att->atttypmod;
                out.notnull = att->attnotnull;
                ReleaseSysCache(tup);
            }
            return out;
        });
        if (col.present())
            t.columns.emplace(c, col);
    }
    return t;
}

}  // namespace

const Column& Table::col(const std::string& column) const
{
    auto it = columns.find(column);
    return it == columns.end() ? kNoColumn : it->second;
}

const char* state_name(State state) noexcept
{
    switch (state) {
    case State::Absent: return "absent";
    case State::Legacy: return "legacy";
    case State::Upgraded: return "upgraded";
    case State::Mixed: return "mixed";
    }
    return "unknown";
}

std::string quote_ident(const std::string& ident)
{
    const char* q = guarded([&] { return quote_identifier(ident.c_str()); });
    return q;
}

Target inspect_target(const std::string& schema)
{
    Target t;
    t.schema = schema;
    t.nsp = guarded([&] { return get_namespace_oid(schema.c_str(), true); });
    if (!OidIsValid(t.nsp))
        throw Error(ERRCODE_INVALID_SCHEMA_NAME, strfmt("schema \"%s\" does not exist", schema.c_str()), "",
                    "Pass the schema that holds projects, project_phases and resource_assignments as target_schema.");
    t.qschema = quote_ident(schema);
    t.projects = read_table(t.nsp, t.qschema, "projects", kProjectColumns);
    t.phases = read_table(t.nsp, t.qschema, "project_phases", kPhaseColumns);
    t.assignments = read_table(t.nsp, t.qschema, "resource_assignments", kAssignmentColumns);
    t.alembic = read_table(t.nsp, t.qschema, "alembic_version", kAlembicColumns);

    std::vector<std::string> missing;
    for (const Table* tab : {&t.projects, &t.phases, &t.assignments})
        if (!tab->present())
            missing.push_back(tab->name);
    if (!missing.empty()) {
        t.state = State::Absent;
        t.state_detail = strfmt("Schema \"%s\" has no table %s.", schema.c_str(), join_quoted(missing, " and ").c_str());
        return t;
    }

    const bool has_type = t.phases.has("phase_type");
    std::vector<std::string> new_cols;
    for (const char* c : {"name", "start_date", "end_date", "description"})
        if (t.phases.has(c))
            new_cols.push_back(c);
    const bool has_dates = t.phases.has("name") && t.phases.has("start_date") && t.phases.has("end_date");
    const bool has_link = t.assignments.has("project_phase_id");

    if (has_type && new_cols.empty() && has_link) {
        t.state = State::Legacy;
        t.state_detail = "project_phases has phase_type and resource_assignments has project_phase_id (revision " +
                         std::string(kLegacyRevision) + ").";
    } else if (!has_type && has_dates && !has_link) {
        t.state = State::Upgraded;
        t.state_detail = "project_phases has name, start_date and end_date, and no phase_type; resource_assignments "
                         "has no project_phase_id (revision " +
                         std::string(kUpgradedRevision) + ").";
    } else {
        t.state = State::Mixed;
        std::string pp = has_type ? "project_phases has phase_type" : "project_phases has no phase_type";
        if (new_cols.empty())
            pp += " and none of name, start_date, end_date, description";
        else
            pp += " and has " + join_plain(new_cols, ", ");
        t.state_detail = pp + "; resource_assignments " +
                         (has_link ? "has project_phase_id" : "has no project_phase_id") +
                         ". That is neither revision: the schema was changed by hand or by an interrupted tool.";
    }
    return t;
}

IndexInfo find_index(Oid nsp, const char* name)
{
    IndexInfo info;
    struct Raw {
        Oid oid;
        bool valid;
        Oid table;
        int nkeys;
        AttrNumber keys[INDEX_MAX_KEYS];
    };
    Raw raw = guarded([&] {
        Raw r{};
        r.oid = get_relname_relid(name, nsp);
        if (!OidIsValid(r.oid) || get_rel_relkind(r.oid) != RELKIND_INDEX) {
            r.oid = InvalidOid;
            return r;
        }
        HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(r.oid));
        if (HeapTupleIsValid(tup)) {
            auto* idx = reinterpret_cast<Form_pg_index>(GETSTRUCT(tup));
            r.valid = idx->indisvalid && idx->indisready && idx->indislive;
            r.table = idx->indrelid;
            r.nkeys = idx->indnkeyatts;
            for (int i = 0; i < r.nkeys && i < INDEX_MAX_KEYS; i++)
                r.keys[i] = idx->indkey.values[i];
            ReleaseSysCache(tup);
        }
        return r;
    });
    info.oid = raw.oid;
    info.valid = raw.valid;
    info.table = raw.table;
    for (int i = 0; i < raw.nkeys; i++)
        info.keys.push_back(raw.keys[i]);
    return info;
}

ConstraintInfo find_constraint(Oid table, const char* name)
{
    return guarded([&] {
        ConstraintInfo c;
        c.oid = get_relation_constraint_oid(table, name, true);
        if (!OidIsValid(c.oid))
            return c;
        HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(c.oid));
        if (HeapTupleIsValid(tup)) {
            auto* con = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tup));
            c.type = con->contype;
            c.validated = con->convalidated;
            ReleaseSysCache(tup);
        }
        return c;
    });
}

ColumnDefinition describe_column(const Table& table, const std::string& column)
{
    // Runs under the caller's pinned search_path, so format_type and
    // pg_get_expr qualify every name outside pg_catalog.
    auto rows = spi_rows(
        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        "       pg_catalog.pg_get_expr(d.adbin, d.adrelid),"
        "       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0"
        "            THEN pg_catalog.quote_ident(cn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)"
        "                 pg_catalog.quote_ident(co.collname) END,"
        "       pg_catalog.col_description(a.attrelid, a.attnum)"
        "  FROM pg_catalog.pg_attribute a"
        "  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid"
        "  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid"
        "        AND d.adnum OPERATOR(pg_catalog.=) a.attnum"
        "  LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation"
        "  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace"
        " WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
        "   AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name AND NOT a.attisdropped",
        {Arg::of(static_cast<std::int64_t>(table.oid)), Arg::of(column)});
    ColumnDefinition def;
    def.column = column;
    if (rows.empty())
        return def;
    def.type = rows[0][0].value_or("");
    def.notnull = rows[0][1].value_or("f") == "t";
    def.default_expr = rows[0][2];
    def.collation = rows[0][3];
    def.comment = rows[0][4];
    return def;
}

void column_dependents(const Table& table, const std::string& column, std::vector<DependentObject>& archivable,
                       std::vector<std::string>& blocking)
{
    const Column& col = table.col(column);
    if (!col.present())
        return;
    auto rows = spi_rows(
        "SELECT d.classid::pg_catalog.regclass::pg_catalog.text, d.objid,"
        "       pg_catalog.pg_describe_object(d.classid, d.objid, 0),"
        "       c.relkind, c.relname, ix.indisvalid,"
        "       con.conname, con.conrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid, con.convalidated,"
        "       CASE WHEN c.relkind = 'i' THEN pg_catalog.pg_get_indexdef(d.objid) END,"
        "       CASE WHEN con.oid IS NOT NULL THEN pg_catalog.pg_get_constraintdef(con.oid) END,"
        "       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid OPERATOR(pg_catalog.=) d.objid"
        "               AND k.contype IN ('p', 'u', 'x'))"
        "  FROM pg_catalog.pg_depend d"
        "  LEFT JOIN pg_catalog.pg_class c ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
        "       AND c.oid OPERATOR(pg_catalog.=) d.objid"
        "  LEFT JOIN pg_catalog.pg_index ix ON ix.indexrelid OPERATOR(pg_catalog.=) c.oid"
        "  LEFT JOIN pg_catalog.pg_constraint con"
        "       ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass"
        "       AND con.oid OPERATOR(pg_catalog.=) d.objid"
        " WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
        "   AND d.refobjid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
        "   AND d.refobjsubid OPERATOR(pg_catalog.=) $2::pg_catalog.int4"
        "   AND d.deptype IN ('n', 'a')"
        " ORDER BY 1, 3",
        {Arg::of(static_cast<std::int64_t>(table.oid)), Arg::of(static_cast<std::int64_t>(col.attnum))});
    for (const Row& r : rows) {
        const std::string classname = r[0].value_or("");
        const std::string description = r[2].value_or("object");
        if (classname == "pg_attrdef")
            continue;  // the column default is kept with the column definition
        if (classname == "pg_class" && r[3].value_or("") == "i") {
            if (r[11].value_or("f") == "t")
                continue;  // backs a constraint, which is kept instead
            archivable.push_back(DependentObject{"index", r[4].value_or(""), r[9].value_or(""), r[5].value_or("t") == "t"});
            continue;
        }
        if (classname == "pg_constraint" && r[7].value_or("f") == "t") {
            archivable.push_back(
                DependentObject{"constraint", r[6].value_or(""), r[10].value_or(""), r[8].value_or("t") == "t"});
            continue;
        }
        blocking.push_back(description);
    }
}

std::optional<std::string> resolve_type(const std::string& type_name)
{
    return spi_value("SELECT pg_catalog.format_type(pg_catalog.to_regtype($1), NULL)", {Arg::of(type_name)});
}

bool relation_name_taken(Oid nsp, const std::string& name)
{
    return guarded([&] { return OidIsValid(get_relname_relid(name.c_str(), nsp)); });
}

}  // namespace phasemig::pg
