// The preparation half of each step — everything up to the first change —
// shared by the step itself and by phasemig_preflight.
#pragma once

#include <optional>
#include <vector>

#include "pg/model.hpp"
#include "pg/step.hpp"

namespace phasemig::pg {

struct UpgradePrep {
    KeyTypes types;
    std::optional<std::int64_t> restore_run;  // the downgrade whose timeline may come back
    std::vector<ArchivedObject> objects;      // what that downgrade archived
    LegacyData data;
    std::vector<Finding> findings;
};
// scan_assignments: also read the assignments (preflight); the upgrade itself
// reads them while archiving them.
void prepare_upgrade(const Target& t, bool restore, UpgradePrep& prep, bool scan_assignments = true);

struct DowngradePrep {
    KeyTypes types;
    std::optional<std::int64_t> archive_run;  // the upgrade whose archive restores values
    bool restore_assignments = false;         // restore => true and an archive exists
    std::vector<ArchivedObject> objects;
    UpgradedData data;
    std::vector<Finding> findings;
};
// coverage: also check every project's timeline (warnings for preflight).
// scan_assignments: also read the assignments and the archive (preflight);
// the downgrade first tries without (see downgrade.cpp).
void prepare_downgrade(const Target& t, bool restore, DowngradePrep& prep, bool coverage = true,
                       bool scan_assignments = true);
// The part of prepare_downgrade that reads the assignments (and the archive).
void prepare_downgrade_assignments(const Target& t, DowngradePrep& prep);

}  // namespace phasemig::pg
