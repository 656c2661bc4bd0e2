// Reading the target schema from the catalog: which tables and columns are
// there, of which types, in which state (SPEC §1).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pg/keys.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

inline constexpr const char* kLegacyRevision = "976e6adbac6f";
inline constexpr const char* kUpgradedRevision = "92023c163a26";
inline constexpr const char* kFkName = "resource_assignments_project_phase_id_fkey";
inline constexpr const char* kAssignmentPhaseIndex = "ix_resource_assignments_project_phase_id";
inline constexpr const char* kCheckName = "check_phase_dates";
inline constexpr const char* kStartIndex = "ix_project_phases_start_date";
inline constexpr const char* kEndIndex = "ix_project_phases_end_date";

struct Column {
    AttrNumber attnum = InvalidAttrNumber;
    Oid type = InvalidOid;
    int32 typmod = -1;
    bool notnull = false;
    bool present() const noexcept { return attnum != InvalidAttrNumber; }
};

struct Table {
    std::string name;
    Oid oid = InvalidOid;
    char relkind = 0;
    std::string qualified;  // quoted schema.table, for SQL text
    std::map<std::string, Column> columns;
    bool present() const noexcept { return oid != InvalidOid; }
    const Column& col(const std::string& column) const;
    bool has(const std::string& column) const { return col(column).present(); }
};

enum class State { Absent, Legacy, Upgraded, Mixed };
const char* state_name(State state) noexcept;

struct Target {
    std::string schema;
    Oid nsp = InvalidOid;
    std::string qschema;
    Table projects;
    Table phases;
    Table assignments;
    Table alembic;
    State state = State::Absent;
    std::string state_detail;  // a sentence: what was found where
};

// Raises 3F000 when the schema does not exist.  Takes no lock: callers that
// change anything lock first and inspect again.
Target inspect_target(const std::string& schema);

// The quoted form of an identifier / a qualified name.
std::string quote_ident(const std::string& ident);

struct IndexInfo {
    Oid oid = InvalidOid;
    bool valid = false;
    Oid table = InvalidOid;
    std::vector<AttrNumber> keys;
};
IndexInfo find_index(Oid nsp, const char* name);

struct ConstraintInfo {
    Oid oid = InvalidOid;
    char type = 0;
    bool validated = false;
};
ConstraintInfo find_constraint(Oid table, const char* name);

// A definition kept to recreate an object dropped with a column.
struct DependentObject {
    std::string kind;  // "index" or "constraint"
    std::string name;
    std::string definition;  // CREATE INDEX ... / constraint definition
    bool validated = true;   // constraints only
};

// What a column looks like, kept before it is dropped so that the reverse
// step can re-create it exactly.
struct ColumnDefinition {
    std::string column;
    std::string type;  // format_type, schema-qualified
    bool notnull = false;
    std::optional<std::string> default_expr;
    std::optional<std::string> collation;  // qualified, when not the type's default
    std::optional<std::string> comment;
};
ColumnDefinition describe_column(const Table& table, const std::string& column);

// Objects depending on a column.  Indexes and constraints are returned for
// archiving; anything else (views, rules, triggers, policies, statistics)
// goes to `blocking` as a description, since dropping it would lose it.
void column_dependents(const Table& table, const std::string& column, std::vector<DependentObject>& archivable,
                       std::vector<std::string>& blocking);

// Whether a type of that (qualified) name exists, and its canonical name.
std::optional<std::string> resolve_type(const std::string& type_name);
bool relation_name_taken(Oid nsp, const std::string& name);

}  // namespace phasemig::pg
