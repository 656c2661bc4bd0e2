#include "pg/spi.hpp"

namespace phasemig::pg {

namespace {

struct PreparedArgs {
    int n = 0;
    Oid* types = nullptr;
    Datum* values = nullptr;
    char* nulls = nullptr;
};

// Inside a guard: builds the Datum arrays in the current memory context.
PreparedArgs prepare(const Args& args)
{
    PreparedArgs p;
    p.n = static_cast<int>(args.size());
    if (p.n == 0)
        return p;
    p.types = static_cast<Oid*>(palloc(sizeof(Oid) * p.n));
    p.values = static_cast<Datum*>(palloc(sizeof(Datum) * p.n));
    p.nulls = static_cast<char*>(palloc(p.n));
    for (int i = 0; i < p.n; i++) {
        const Arg& a = args[i];
        p.nulls[i] = ' ';
        switch (a.kind) {
        case Arg::Kind::Null:
            p.types[i] = a.null_type;
            p.values[i] = (Datum) 0;
            p.nulls[i] = 'n';
            break;
        case Arg::Kind::Text:
            p.types[i] = TEXTOID;
            p.values[i] = PointerGetDatum(cstring_to_text_with_len(a.text.data(), static_cast<int>(a.text.size())));
            break;
        case Arg::Kind::Int8:
            p.types[i] = INT8OID;
            p.values[i] = Int64GetDatum(a.int8);
            break;
        case Arg::Kind::Bool:
            p.types[i] = BOOLOID;
            p.values[i] = BoolGetDatum(a.boolean);
            break;
        case Arg::Kind::Date:
            p.types[i] = DATEOID;
            p.values[i] = DateADTGetDatum(static_cast<DateADT>(a.int8));
            break;
        }
    }
    return p;
}

int run(const std::string& sql, const Args& args, long count)
{
    PreparedArgs p = prepare(args);
    int rc = p.n == 0 ? SPI_execute(sql.c_str(), false, count)
                      : SPI_execute_with_args(sql.c_str(), p.n, p.types, p.values, p.nulls, false, count);
    if (rc < 0)
        elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
    return rc;
}

struct TextResult {
    std::uint64_t rows = 0;
    int cols = 0;
    char** cells = nullptr;  // rows * cols, NULL for SQL NULL
};

}  // namespace

void spi_connect()
{
    guarded([] {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
    });
}

void spi_finish()
{
    guarded([] { SPI_finish(); });
}

std::uint64_t spi_exec(const std::string& sql, const Args& args)
{
    return guarded([&] {
        run(sql, args, 0);
        return static_cast<std::uint64_t>(SPI_processed);
    });
}

std::vector<Row> spi_rows(const std::string& sql, const Args& args)
{
    // Text is collected into palloc'd cells under the guard, and only then
    // copied into C++ strings.
    TextResult r = guarded([&] {
        run(sql, args, 0);
        TextResult t;
        if (!SPI_tuptable)
            return t;
        t.rows = SPI_processed;
        t.cols = SPI_tuptable->tupdesc->natts;
        t.cells = static_cast<char**>(palloc0(sizeof(char*) * (t.rows * t.cols + 1)));
        for (std::uint64_t i = 0; i < t.rows; i++)
            for (int c = 0; c < t.cols; c++)
                t.cells[i * t.cols + c] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1);
        return t;
    });
    std::vector<Row> out;
    out.reserve(r.rows);
    for (std::uint64_t i = 0; i < r.rows; i++) {
        Row row;
        row.reserve(r.cols);
        for (int c = 0; c < r.cols; c++) {
            char* cell = r.cells[i * r.cols + c];
            row.push_back(cell ? std::optional<std::string>(cell) : std::nullopt);
        }
        out.push_back(std::move(row));
    }
    return out;
}

std::optional<std::string> spi_value(const std::string& sql, const Args& args)
{
    auto rows = spi_rows(sql, args);
    if (rows.empty() || rows[0].empty())
        return std::nullopt;
    return rows[0][0];
}

std::int64_t spi_int(const std::string& sql, const Args& args)
{
    auto v = spi_value(sql, args);
    return v ? std::stoll(*v) : 0;
}

bool spi_bool(const std::string& sql, const Args& args)
{
    auto v = spi_value(sql, args);
    return v && *v == "t";
}

void spi_stream(const std::string& sql, const Args& args, long batch_rows,
                const std::function<void(SPITupleTable*, std::uint64_t)>& batch)
{
    Portal portal = guarded([&] {
        PreparedArgs p = prepare(args);
        Portal cur = SPI_cursor_open_with_args(nullptr, sql.c_str(), p.n, p.types, p.values, p.nulls, false, 0);
        return cur;
    });
    for (;;) {
        bool done = guarded([&] {
            CHECK_FOR_INTERRUPTS();
            SPI_cursor_fetch(portal, true, batch_rows);
            std::uint64_t n = SPI_processed;
            if (n == 0)
                return true;
            batch(SPI_tuptable, n);
            SPI_freetuptable(SPI_tuptable);
            return false;
        });
        if (done)
            break;
    }
    guarded([&] { SPI_cursor_close(portal); });
}

}  // namespace phasemig::pg
