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

// Runs the checks for the schema's state and appends them to the history.
VerifyResult run_verify(const std::string& schema);
void record_verify(const std::string& schema, const VerifyResult& res);

}  // namespace phasemig::pg
