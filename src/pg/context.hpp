// Per-call plumbing shared by the steps: the extension's own schema and
// owner, stage timing/progress, and settings.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// Settings (phasemig.*), defined in _PG_init.
extern int setting_stage_messages;  // 0 = off, else an elog level
extern int setting_lock_timeout_ms;
extern int setting_lock_retries;
// phasemig.direct_reads: when a step reads a table it holds exclusively
// straight from its files (scan.cpp, DirectPages).
enum DirectReads { kDirectReadsOff = 0, kDirectReadsAuto = 1, kDirectReadsOn = 2 };
extern int setting_direct_reads;
extern char* setting_fault_injection;

struct Extension {
    std::string schema;   // unquoted
    std::string qschema;  // quoted, for SQL text
    Oid owner = InvalidOid;
    std::string table(const char* name) const { return qschema + "." + name; }
};
const Extension& extension();

// Runs f as the extension's owner: phasemig's own tables are not granted to
// the roles that call it.  Callers check the caller's rights on the target
// tables before.
void as_extension_owner(const std::function<void()>& f);

// Stages of a step: progress visible in pg_stat_activity.query from other
// sessions ('phasemig upgrade of schema "s": stage 3/7 archive, N of M rows';
// the view phasemig_progress parses it), timings for the summary, messages at the level
// phasemig.stage_messages asks for (none by default), and
// the test-only fault injection point after each stage.
class Stages {
public:
    Stages(std::string step, std::string schema, int total);
    ~Stages();
    void begin(const std::string& name);
    // Progress inside the current stage ("rows done of total").
    void progress(std::uint64_t done, std::uint64_t total);
    void end();
    // After the last stage: pg_stat_activity shows the caller's query again.
    void finish();
    const std::vector<std::pair<std::string, double>>& timings() const { return timings_; }
    double total_ms() const;

private:
    void report(const std::string& text);
    std::string step_;
    std::string schema_;
    int total_;
    int index_ = 0;
    std::string current_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point stage_started_;
    std::vector<std::pair<std::string, double>> timings_;
    bool finished_ = false;
};

// The innermost running step, for progress reported from per-row functions.
Stages* current_stages();

}  // namespace phasemig::pg
