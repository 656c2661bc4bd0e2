// SPI through the guard: small results come back as C++ values, large ones
// are streamed through a cursor in batches.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "pg/guard.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// A query parameter; values are converted to Datums inside the guard.
struct Arg {
    enum class Kind { Null, Text, Int8, Bool, Date };
    Kind kind = Kind::Null;
    Oid null_type = TEXTOID;
    std::string text;
    std::int64_t int8 = 0;
    bool boolean = false;

    static Arg null(Oid type = TEXTOID) { Arg a; a.null_type = type; return a; }
    static Arg of(std::string s) { Arg a; a.kind = Kind::Text; a.text = std::move(s); return a; }
    static Arg of(const char* s) { return of(std::string(s)); }
    static Arg of(std::int64_t v) { Arg a; a.kind = Kind::Int8; a.int8 = v; return a; }
    static Arg of(bool v) { Arg a; a.kind = Kind::Bool; a.boolean = v; return a; }
    static Arg text_or_null(const std::optional<std::string>& s) { return s ? of(*s) : null(TEXTOID); }
    static Arg date(std::int32_t day) { Arg a; a.kind = Kind::Date; a.int8 = day; return a; }
};

using Args = std::vector<Arg>;
using Row = std::vector<std::optional<std::string>>;

void spi_connect();
void spi_finish();

// Runs a statement; returns the number of rows processed.
std::uint64_t spi_exec(const std::string& sql, const Args& args = {});
// Runs a query and returns every row as text (for small results).
std::vector<Row> spi_rows(const std::string& sql, const Args& args = {});
// First column of the first row; nullopt for no row or NULL.
std::optional<std::string> spi_value(const std::string& sql, const Args& args = {});
std::int64_t spi_int(const std::string& sql, const Args& args = {});
bool spi_bool(const std::string& sql, const Args& args = {});

// Streams a query through a cursor.  `batch` runs inside the guard for every
// fetched batch, with SPI_tuptable filled; it must follow guarded()'s rule.
void spi_stream(const std::string& sql, const Args& args, long batch_rows,
                const std::function<void(SPITupleTable*, std::uint64_t)>& batch);

}  // namespace phasemig::pg
