// Converting ids and dates between PostgreSQL Datums and the core's Key/Day.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/key.hpp"
#include "pg/postgres_headers.hpp"

namespace phasemig::pg {

// The id types phasemig handles (SPEC §1: uuid, or bigint/integer instead).
enum class KeyType { Unsupported, Uuid, Int2, Int4, Int8 };

KeyType key_type_of(Oid type) noexcept;
const char* key_type_sql(KeyType type) noexcept;

// Neither allocates nor raises for a supported type and a non-null Datum,
// so they may run per row without a guard.
core::Key datum_to_key(Datum value, KeyType type) noexcept;
// Pallocs for uuid: call inside guarded() or from an fmgr function body.
Datum key_to_datum(const core::Key& key, KeyType type);

// The canonical text form PostgreSQL prints (uuid_out / int8out), so archive
// rows written with id::text compare equal.
std::string key_to_text(const core::Key& key, KeyType type);
// The same into buf (at least 40 bytes), returning the length; no allocation.
int key_to_cstr(const core::Key& key, KeyType type, char* buf) noexcept;
std::optional<core::Key> key_from_text(std::string_view text, KeyType type) noexcept;

// DateADT is already days since 2000-01-01; infinities are out of range.
inline bool date_is_finite(DateADT d) noexcept { return !DATE_NOT_FINITE(d); }

// YYYY-MM-DD without calling into PostgreSQL (proleptic Gregorian, as PostgreSQL).
std::string day_to_text(std::int64_t day);

}  // namespace phasemig::pg
