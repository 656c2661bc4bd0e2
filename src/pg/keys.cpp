#include "pg/keys.hpp"

#include <array>
#include <cstdio>
#include <cstring>

namespace phasemig::pg {

KeyType key_type_of(Oid type) noexcept
{
    switch (type) {
    case UUIDOID: return KeyType::Uuid;
    case INT2OID: return KeyType::Int2;
    case INT4OID: return KeyType::Int4;
    case INT8OID: return KeyType::Int8;
    default: return KeyType::Unsupported;
    }
}

const char* key_type_sql(KeyType type) noexcept
{
    switch (type) {
    case KeyType::Uuid: return "uuid";
    case KeyType::Int2: return "smallint";
    case KeyType::Int4: return "integer";
    case KeyType::Int8: return "bigint";
    default: return "unsupported";
    }
}

core::Key datum_to_key(Datum value, KeyType type) noexcept
{
    switch (type) {
    case KeyType::Uuid: return core::Key::from_uuid(DatumGetUUIDP(value)->data);
    case KeyType::Int2: return core::Key::from_int(DatumGetInt16(value));
    case KeyType::Int4: return core::Key::from_int(DatumGetInt32(value));
    case KeyType::Int8: return core::Key::from_int(DatumGetInt64(value));
    default: return core::Key{};
    }
}

Datum key_to_datum(const core::Key& key, KeyType type)
{
    switch (type) {
    case KeyType::Uuid: {
        auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
        key.to_uuid(u->data);
        return UUIDPGetDatum(u);
    }
    case KeyType::Int2: return Int16GetDatum(static_cast<int16>(key.to_int()));
    case KeyType::Int4: return Int32GetDatum(static_cast<int32>(key.to_int()));
    case KeyType::Int8: return Int64GetDatum(key.to_int());
    default: return (Datum) 0;
    }
}

int key_to_cstr(const core::Key& key, KeyType type, char* buf) noexcept
{
    static const char hex[] = "0123456789abcdef";
    if (type == KeyType::Uuid) {
        unsigned char b[16];
        key.to_uuid(b);
        int o = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                buf[o++] = '-';
            buf[o++] = hex[b[i] >> 4];
            buf[o++] = hex[b[i] & 15];
        }
        buf[o] = '\0';
        return o;
    }
    // Decimal, as int8out prints it.
    std::int64_t v = key.to_int();
    unsigned long long mag = v < 0 ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    char tmp[24];
    int t = 0;
    do {
        tmp[t++] = static_cast<char>('0' + mag % 10);
        mag /= 10;
    } while (mag);
    int o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (t)
        buf[o++] = tmp[--t];
    buf[o] = '\0';
    return o;
}

std::string key_to_text(const core::Key& key, KeyType type)
{
    char buf[48];
    const int len = key_to_cstr(key, type, buf);
    return std::string(buf, static_cast<std::size_t>(len));
}

namespace {
int hexval(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
}  // namespace

namespace {
// The canonical form (8-4-4-4-12 lower or upper hex digits), as uuid_out
// writes it and the archives hold it: one table lookup per digit.
bool canonical_uuid(std::string_view text, unsigned char* b) noexcept
{
    static const auto table = [] {
        std::array<signed char, 256> t{};
        t.fill(-1);
        for (int c = 0; c < 256; c++)
            t[static_cast<std::size_t>(c)] = static_cast<signed char>(hexval(static_cast<char>(c)));
        return t;
    }();
    if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
        return false;
    static constexpr int kAt[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        const int hi = table[static_cast<unsigned char>(text[static_cast<std::size_t>(kAt[i])])];
        const int lo = table[static_cast<unsigned char>(text[static_cast<std::size_t>(kAt[i] + 1)])];
        bad |= hi | lo;  // -1 has the sign bit
        b[i] = static_cast<unsigned char>(((hi & 15) << 4) | (lo & 15));
    }
    return bad >= 0;
}
}  // namespace

std::optional<core::Key> key_from_text(std::string_view text, KeyType type) noexcept
{
    if (type == KeyType::Uuid) {
        unsigned char b[16];
        if (canonical_uuid(text, b))
            return core::Key::from_uuid(b);
        int n = 0;
        for (std::size_t i = 0; i < text.size(); i++) {
            if (text[i] == '-')
                continue;
            if (n >= 32)
                return std::nullopt;
            int v = hexval(text[i]);
            if (v < 0)
                return std::nullopt;
            if (n % 2 == 0)
                b[n / 2] = static_cast<unsigned char>(v << 4);
            else
                b[n / 2] = static_cast<unsigned char>(b[n / 2] | v);
            n++;
        }
        if (n != 32)
            return std::nullopt;
        return core::Key::from_uuid(b);
    }
    if (type == KeyType::Unsupported || text.empty())
        return std::nullopt;
    // Decimal, optional sign; overflow is rejected.
    std::size_t i = 0;
    bool neg = false;
    if (text[0] == '-' || text[0] == '+') {
        neg = text[0] == '-';
        i = 1;
    }
    if (i >= text.size())
        return std::nullopt;
    unsigned long long mag = 0;
    for (; i < text.size(); i++) {
        if (text[i] < '0' || text[i] > '9')
            return std::nullopt;
        unsigned long long next = mag * 10 + static_cast<unsigned>(text[i] - '0');
        if (next / 10 != mag)
            return std::nullopt;
        mag = next;
    }
    if (!neg && mag > 9223372036854775807ULL)
        return std::nullopt;
    if (neg && mag > 9223372036854775808ULL)
        return std::nullopt;
    std::int64_t v = neg ? static_cast<std::int64_t>(0 - mag) : static_cast<std::int64_t>(mag);
    return core::Key::from_int(v);
}

std::string day_to_text(std::int64_t day)
{
    // Days since 2000-01-01 to civil date (Howard Hinnant's algorithm).
    std::int64_t z = day + 10957 + 719468;  // to days since 0000-03-01
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t y = yoe + era * 400;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld", static_cast<long long>(y), static_cast<long long>(m),
                  static_cast<long long>(d));
    return buf;
}

}  // namespace phasemig::pg
