#pragma once

#include <string>
#include <vector>

namespace phasemig::pg {

// Inserts one phasemig_verify_history row in a transaction of its own (a
// background worker), so it stays when the caller's transaction aborts.
// Fields, as text: target_schema, state, passed, checks, checks_passed,
// checks_failed, failed_checks (JSON array), result (JSON), performed_by.
// Returns false when no worker could be started.
bool insert_history_autonomously(const std::vector<std::string>& fields);

}  // namespace phasemig::pg
