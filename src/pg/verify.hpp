#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pg/catalog.hpp"

namespace phasemig::pg {

struct CheckResult {
    int no;
    std::string name;
    std::optional<bool> passed;  // NULL only where there is no baseline
    std::string detail;
};

struct VerifyResult {
    State state = State::Absent;
    std::vector<CheckResult> checks;
};

// Runs the checks for the schema's state and, with `record`, appends the
// result to phasemig_verify_history.
VerifyResult run_verify(const std::string& schema, bool record = true);
// The history row's columns, as text (see insert_history_autonomously).
std::vector<std::string> history_fields(const std::string& schema, const VerifyResult& res);
void record_verify(const std::vector<std::string>& fields);

}  // namespace phasemig::pg
