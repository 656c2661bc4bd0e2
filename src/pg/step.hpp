// What upgrade and downgrade share: privileges, locks, the run log, archived
// object definitions, the alembic revision, and the dry-run subtransaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/budget.hpp"
#include "pg/catalog.hpp"
#include "pg/context.hpp"
#include "pg/text.hpp"

namespace phasemig::pg {

// 42501 unless the caller owns the table / may read it.
void require_owner(const Table& table);
void require_select(const Table& table);
void require_update(const Table& table);

// Takes every lock the step needs, up front and in a fixed order:
// projects SHARE, project_phases and resource_assignments ACCESS EXCLUSIVE,
// alembic_version EXCLUSIVE.  Each attempt waits at most the
// session's lock_timeout (or phasemig.lock_timeout); after
// phasemig.lock_retries failed attempts, with backoff, it gives up (55P03).
void lock_target(const Target& t);

// After the locks: the step reads what was committed while it waited, not
// what its statement's snapshot saw before (the caller's statement started
// before the wait).  Pushed for the step, popped at its end (or by abort).
void begin_locked_snapshot();
void end_locked_snapshot();

// The newest run of a step for a schema whose archive is still there.
std::optional<std::int64_t> latest_run(const std::string& schema, const char* step);

struct Baseline {
    std::uint64_t projects = 0;
    std::uint64_t phases = 0;
    std::uint64_t assignments = 0;
    std::optional<std::string> capital;
    std::optional<std::string> expense;
    std::optional<std::string> total;
    std::optional<std::string> digest;  // per-project sums (Budgets::digest), when exact
};
// Budget sums: from the sums a scan computed when they are exact, otherwise
// in SQL (numeric text, NULL when absent).
void read_budgets(const Target& t, Baseline& b, const Budgets* computed = nullptr);

// id_type: "uuid" or "integer", how the archive's keys read back.
std::int64_t begin_run(const std::string& schema, const char* step, bool restore, const Target& t,
                       const Baseline& b, const char* from_revision, const char* to_revision, const char* id_type);
// Also records the baseline's assignment count (the upgrade counts them while
// archiving them).
void finish_run(std::int64_t run_id, const std::string& summary_json, std::uint64_t archived_phases,
                std::uint64_t archived_assignments, std::uint64_t assignments);

// Archives of a step's run that a later step of the same kind supersedes;
// called by the new run before it writes its own.
void drop_superseded_archives(const std::string& schema, const char* step, std::int64_t keep_run);

// Column definitions and dependent indexes/constraints of columns a step
// drops, so the reverse step can re-create them as they were.
struct ArchivedObject {
    std::string table;
    std::string column;
    std::string kind;  // column, index, constraint
    std::string name;
    std::optional<std::string> definition;
    std::optional<std::string> type;
    bool notnull = false;
    std::optional<std::string> default_expr;
    std::optional<std::string> collation;
    std::optional<std::string> comment;
    bool validated = true;
};
void archive_objects(std::int64_t run_id, const Table& table, const std::vector<std::string>& columns);
std::vector<ArchivedObject> load_objects(std::optional<std::int64_t> run_id);
const ArchivedObject* find_object(const std::vector<ArchivedObject>& objs, const std::string& kind,
                                  const std::string& table, const std::string& column_or_name);

// "ALTER TABLE t ALTER COLUMN c SET DEFAULT ..., COMMENT ON ..." for a
// re-added column, from its archived definition.
void restore_column_extras(const Table& table, const ArchivedObject& column);
// Re-creates an archived index or constraint.  Constraints are added NOT
// VALID and then validated when they were valid.
void restore_object(const Table& table, const ArchivedObject& obj);
// restore_object's first half: true when the constraint it added NOT VALID
// was valid when archived, so the caller still has to validate it.
bool add_archived_object(const Table& table, const ArchivedObject& obj);

// Moves alembic_version when it holds `from` (checked by preflight).
bool move_alembic(const Target& t, const char* from, const char* to);

// Settings a step runs with, undone by restore_step_settings (or by the end
// of the (sub)transaction on error): no synchronized scans, so every table
// is read from its first block (the archive's order depends on it).
int pin_step_settings();
void restore_step_settings(int level);

// Runs the body of a step; with dry_run inside a subtransaction that is
// rolled back afterwards, whatever happens.
std::string run_step(bool dry_run, const std::function<std::string()>& body);

// Runs body in a subtransaction, kept when body returns.  When body raises,
// the subtransaction is rolled back; then the error travels on, unless
// gave_up() says body asked for another way: then the result is false.
bool try_subtransaction(const std::function<void()>& body, const std::function<bool()>& gave_up);

// Text argument or 22004 when NULL.
std::string text_arg(FunctionCallInfo fcinfo, int arg, const char* name);
Datum jsonb_from_text(const std::string& json);

void add_timings(Json& j, const Stages& stages);

}  // namespace phasemig::pg
