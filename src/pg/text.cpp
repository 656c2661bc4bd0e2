#include "pg/text.hpp"

#include <cstdarg>
#include <cstdio>

namespace phasemig::pg {

std::string strfmt(const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string s(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
    if (n > 0)
        std::vsnprintf(s.data(), s.size() + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

std::string join_quoted(const std::vector<std::string>& items, const char* last_sep)
{
    std::string out;
    for (std::size_t i = 0; i < items.size(); i++) {
        if (i > 0)
            out += (i + 1 == items.size()) ? last_sep : ", ";
        out += "\"" + items[i] + "\"";
    }
    return out;
}

std::string join_plain(const std::vector<std::string>& items, const char* sep)
{
    std::string out;
    for (std::size_t i = 0; i < items.size(); i++) {
        if (i > 0)
            out += sep;
        out += items[i];
    }
    return out;
}

std::string group_thousands(const std::string& numeric_text)
{
    std::string sign, intpart, frac;
    std::size_t i = 0;
    if (!numeric_text.empty() && (numeric_text[0] == '-' || numeric_text[0] == '+')) {
        sign = numeric_text[0] == '-' ? "-" : "";
        i = 1;
    }
    std::size_t dot = numeric_text.find('.', i);
    intpart = numeric_text.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (dot != std::string::npos)
        frac = numeric_text.substr(dot);
    std::string grouped;
    for (std::size_t k = 0; k < intpart.size(); k++) {
        if (k > 0 && (intpart.size() - k) % 3 == 0)
            grouped += ',';
        grouped += intpart[k];
    }
    return sign + grouped + frac;
}

std::string group_thousands(std::int64_t n)
{
    return group_thousands(std::to_string(n));
}

std::string json_escape(const std::string& s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

void Json::comma()
{
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back())
            out_ += ',';
        first_.back() = false;
    }
}

Json& Json::begin_object()
{
    comma();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

Json& Json::end_object()
{
    out_ += '}';
    first_.pop_back();
    return *this;
}

Json& Json::key(const std::string& k)
{
    comma();
    out_ += json_escape(k) + ":";
    after_key_ = true;
    return *this;
}

Json& Json::str(const std::string& v)
{
    comma();
    out_ += json_escape(v);
    return *this;
}

Json& Json::num(std::int64_t v)
{
    comma();
    out_ += std::to_string(v);
    return *this;
}

Json& Json::num_text(const std::string& numeric)
{
    comma();
    out_ += numeric.empty() ? "null" : numeric;
    return *this;
}

Json& Json::boolean(bool v)
{
    comma();
    out_ += v ? "true" : "false";
    return *this;
}

Json& Json::null()
{
    comma();
    out_ += "null";
    return *this;
}

Json& Json::raw(const std::string& json)
{
    comma();
    out_ += json;
    return *this;
}

std::string sql_literal(const std::string& s)
{
    // E'' with backslashes doubled reads the same whatever
    // standard_conforming_strings is (as quote_literal() does).
    const bool escape = s.find('\\') != std::string::npos;
    std::string out = escape ? "E'" : "'";
    for (char c : s) {
        if (c == '\'' || (escape && c == '\\'))
            out += c;
        out += c;
    }
    return out + "'";
}

}  // namespace phasemig::pg
