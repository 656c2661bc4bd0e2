// The C++/PostgreSQL boundary.
//
// Two rules keep the backend alive:
//  * no C++ exception crosses into PostgreSQL: every SQL-callable function
//    runs its body through entry(), which catches everything and raises the
//    error with ereport only after the catch block has been left;
//  * no PostgreSQL error (a longjmp) skips a live C++ object: C++ code calls
//    PostgreSQL through guarded(), which turns the error into a PgError
//    exception once the PG_TRY block is done, so C++ unwinding runs the
//    destructors, and entry() re-raises the original error unchanged.
#pragma once

#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// A PostgreSQL error caught by guarded(), on its way to entry().
class PgError final : public std::exception {
public:
    explicit PgError(ErrorData* edata) noexcept : edata_(edata) {}
    ErrorData* edata() const noexcept { return edata_; }
    const char* what() const noexcept override;

private:
    ErrorData* edata_;
};

// An error raised by phasemig's own code, reported by entry() with ereport.
class Error : public std::exception {
public:
    Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)), hint_(std::move(hint))
    {
    }
    int sqlstate() const noexcept { return sqlstate_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    int sqlstate_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

namespace detail {
// Copies the current PostgreSQL error out of ErrorContext and clears it.
ErrorData* capture_error(MemoryContext caller) noexcept;
}  // namespace detail

// Runs f, which calls PostgreSQL.  f must not keep a C++ object with a
// destructor alive across a PostgreSQL call: on a longjmp its frame is
// abandoned.  C++ exceptions thrown by f leave the PG_TRY block first.
template <typename F>
auto guarded(F&& f) -> decltype(f())
{
    using R = decltype(f());
    ErrorData* volatile pg_error = nullptr;
    std::exception_ptr cxx_error;
    MemoryContext caller = CurrentMemoryContext;
    std::conditional_t<std::is_void_v<R>, char, std::optional<std::conditional_t<std::is_void_v<R>, char, R>>> result{};

    PG_TRY();
    {
        try {
            if constexpr (std::is_void_v<R>)
                f();
            else
                result.emplace(f());
        } catch (...) {
            cxx_error = std::current_exception();
        }
    }
    PG_CATCH();
    {
        pg_error = detail::capture_error(caller);
    }
    PG_END_TRY();

    if (pg_error)
        throw PgError(pg_error);
    if (cxx_error)
        std::rethrow_exception(cxx_error);
    if constexpr (!std::is_void_v<R>)
        return std::move(*result);
}

// Where entry() keeps caught errors: the caller's context, which outlives
// any subtransaction a step opens.
extern MemoryContext error_context;

namespace detail {
char* copy_for_report(const std::string& s) noexcept;
[[noreturn]] void raise(int sqlstate, const char* message, const char* detail, const char* hint);
}  // namespace detail

// The body of every SQL-callable function.
template <typename F>
Datum entry(F&& body) noexcept
{
    ErrorData* pg_error = nullptr;
    int sqlstate = 0;
    char* message = nullptr;
    char* det = nullptr;
    char* hint = nullptr;
    Datum result = (Datum) 0;
    MemoryContext saved = error_context;
    error_context = CurrentMemoryContext;
    try {
        result = body();
    } catch (const PgError& e) {
        pg_error = e.edata();
    } catch (const Error& e) {
        sqlstate = e.sqlstate();
        message = detail::copy_for_report(e.message());
        det = e.detail().empty() ? nullptr : detail::copy_for_report(e.detail());
        hint = e.hint().empty() ? nullptr : detail::copy_for_report(e.hint());
    } catch (const std::bad_alloc&) {
        sqlstate = ERRCODE_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        sqlstate = ERRCODE_INTERNAL_ERROR;
        message = detail::copy_for_report(std::string("unexpected C++ exception: ") + e.what());
    } catch (...) {
        sqlstate = ERRCODE_INTERNAL_ERROR;
    }
    error_context = saved;
    // Outside every catch block: now PostgreSQL may longjmp.
    if (pg_error)
        ReThrowError(pg_error);
    if (sqlstate)
        detail::raise(sqlstate, message, det, hint);
    return result;
}

}  // namespace phasemig::pg

// Declares an SQL-callable function with C linkage, exported from the module
// although everything else is built with -fvisibility=hidden.
#define PHASEMIG_FUNCTION(name)                           \
    extern "C" {                                          \
    PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);             \
    PG_FUNCTION_INFO_V1(name);                            \
    }                                                     \
    extern "C" Datum name(PG_FUNCTION_ARGS)
