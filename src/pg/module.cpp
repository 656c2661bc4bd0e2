// Module entry: magic block and settings.
#include <climits>

#include "pg/context.hpp"
#include "pg/guard.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

using namespace phasemig::pg;

extern "C" void _PG_init(void)
{
    // Not "phasemig.verbose": VERBOSE is an SQL keyword, and SET could not
    // name it without quotes.
    static const struct config_enum_entry levels[] = {{"off", 0, false},     {"debug1", DEBUG1, false},
                                                      {"log", LOG, false},   {"info", INFO, false},
                                                      {"notice", NOTICE, false}, {nullptr, 0, false}};
    DefineCustomEnumVariable("phasemig.stage_messages",
                             "Reports each stage of a step, with its duration, at this message level.",
                             "off by default, so that output stays deterministic under pg_regress.",
                             &setting_stage_messages, 0, levels, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("phasemig.lock_timeout",
                            "How long one attempt waits for the step's locks when the session sets no lock_timeout.",
                            "Zero waits without limit.", &setting_lock_timeout_ms, 5000, 0, INT_MAX, PGC_USERSET,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("phasemig.lock_retries", "How many more attempts to take the locks, with backoff.",
                            nullptr, &setting_lock_retries, 3, 0, 100, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    static const struct config_enum_entry direct_reads[] = {{"off", kDirectReadsOff, false},
                                                            {"auto", kDirectReadsAuto, false},
                                                            {"on", kDirectReadsOn, false},
                                                            {nullptr, 0, false}};
    DefineCustomEnumVariable("phasemig.direct_reads",
                             "Whether the upgrade reads the assignments straight from the table's files.",
                             "auto: when the table is larger than a quarter of shared_buffers (a sequential scan "
                             "would read it through a small ring of buffers anyway); on: always; off: never.",
                             &setting_direct_reads, kDirectReadsAuto, direct_reads, PGC_USERSET, 0, nullptr, nullptr,
                             nullptr);
    DefineCustomStringVariable("phasemig.fault_injection",
                               "Test only: fail a step after the named stage (\"upgrade:archive\", ...).", nullptr,
                               &setting_fault_injection, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("phasemig");
}
