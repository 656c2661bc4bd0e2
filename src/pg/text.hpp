// Small text helpers: printf-style formatting, lists for messages, and a
// JSON writer for the summaries (turned into jsonb at the end of a step).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phasemig::pg {

std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// "a", "b" and "c" -> "\"a\", \"b\" and \"c\"" (last separator given).
std::string join_quoted(const std::vector<std::string>& items, const char* last_sep);
// A string literal for SQL text, whatever standard_conforming_strings is.
std::string sql_literal(const std::string& s);
std::string join_plain(const std::vector<std::string>& items, const char* sep);

// 2800000 -> "2,800,000"; numeric text "2800000.00" -> "2,800,000.00".
std::string group_thousands(const std::string& numeric_text);
std::string group_thousands(std::int64_t n);

class Json {
public:
    Json& begin_object();
    Json& end_object();
    Json& key(const std::string& k);
    Json& str(const std::string& v);
    Json& num(std::int64_t v);
    Json& num_text(const std::string& numeric);  // an SQL numeric, already text
    Json& boolean(bool v);
    Json& null();
    Json& raw(const std::string& json);
    const std::string& text() const { return out_; }

private:
    void comma();
    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

std::string json_escape(const std::string& s);

}  // namespace phasemig::pg
