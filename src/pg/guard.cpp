#include "pg/guard.hpp"

#include <cstring>

namespace phasemig::pg {

MemoryContext error_context = nullptr;

const char* PgError::what() const noexcept
{
    return edata_ && edata_->message ? edata_->message : "PostgreSQL error";
}

namespace detail {

ErrorData* capture_error(MemoryContext caller) noexcept
{
    MemoryContextSwitchTo(error_context ? error_context : caller);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    MemoryContextSwitchTo(caller);
    return edata;
}

char* copy_for_report(const std::string& s) noexcept
{
    // NO_OOM: this runs inside a catch block, where PostgreSQL must not longjmp.
    auto* p = static_cast<char*>(MemoryContextAllocExtended(CurrentMemoryContext, s.size() + 1, MCXT_ALLOC_NO_OOM));
    if (p) {
        std::memcpy(p, s.data(), s.size());
        p[s.size()] = '\0';
    }
    return p;
}

void raise(int sqlstate, const char* message, const char* det, const char* hint)
{
    if (sqlstate == ERRCODE_OUT_OF_MEMORY && !message)
        message = "out of memory in phasemig";
    if (!message)
        message = "unexpected error in phasemig";
    ereport(ERROR,
            (errcode(sqlstate), errmsg_internal("%s", message), det ? errdetail_internal("%s", det) : 0,
             hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

}  // namespace detail
}  // namespace phasemig::pg
