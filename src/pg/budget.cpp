#include "pg/budget.hpp"

#include <cstdio>
#include <algorithm>
#include <cstring>

#include <boost/sort/pdqsort/pdqsort.hpp>

namespace phasemig::pg {

namespace {

constexpr int kScale = 6;

// PostgreSQL's numeric on-disk format (the same in every version pg_upgrade
// supports): a varlena with a 16-bit header, short or long form, then
// base-10000 digits; value = sum of digit[i] * 10000^(weight - i).
constexpr std::uint16_t kSignMask = 0xC000;
constexpr std::uint16_t kNeg = 0x4000;
constexpr std::uint16_t kShort = 0x8000;
constexpr std::uint16_t kSpecial = 0xC000;
constexpr std::uint16_t kShortSign = 0x2000;
constexpr std::uint16_t kShortDscaleMask = 0x1F80;
constexpr int kShortDscaleShift = 7;
constexpr std::uint16_t kShortWeightSign = 0x0040;
constexpr std::uint16_t kShortWeightMask = 0x003F;
constexpr std::uint16_t kDscaleMask = 0x3FFF;

// 10^0 .. 10^30: a digit's weight by table, not by repeated multiplication
// (three numerics per phase, millions of phases).
constexpr int kMaxExp10 = 30;
struct Pow10Table {
    __int128 v[kMaxExp10 + 1];
    constexpr Pow10Table() : v()
    {
        __int128 p = 1;
        for (int i = 0; i <= kMaxExp10; i++) {
            v[i] = p;
            p *= 10;
        }
    }
};
constexpr Pow10Table kPow10Table;
constexpr const __int128* kPow10 = kPow10Table.v;

std::uint64_t mix(std::uint64_t x) noexcept
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

}  // namespace

bool numeric_to_fixed(Datum value, __int128& out, int& dscale) noexcept
{
    // A detoasted copy is not needed for the short inline values budgets
    // are; anything stored out of line or compressed is decoded by caller's
    // fallback (exact() turns false).
    const struct varlena* v = reinterpret_cast<const struct varlena*>(DatumGetPointer(value));
    if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
        return false;
    const char* data = VARDATA_ANY(v);
    const std::size_t len = VARSIZE_ANY_EXHDR(v);
    if (len < sizeof(std::uint16_t))
        return false;
    std::uint16_t header;
    std::memcpy(&header, data, sizeof header);
    int weight;
    bool negative;
    std::size_t offset;
    if ((header & kSignMask) == kSpecial)
        return false;  // NaN or infinity
    if ((header & kSignMask) == kShort) {
        negative = (header & kShortSign) != 0;
        dscale = (header & kShortDscaleMask) >> kShortDscaleShift;
        weight = (header & kShortWeightSign) ? static_cast<int>(~kShortWeightMask | (header & kShortWeightMask))
                                             : static_cast<int>(header & kShortWeightMask);
        offset = sizeof(std::uint16_t);
    } else {
        if (len < 2 * sizeof(std::uint16_t))
            return false;
        negative = (header & kSignMask) == kNeg;
        dscale = header & kDscaleMask;
        std::int16_t w;
        std::memcpy(&w, data + sizeof(std::uint16_t), sizeof w);
        weight = w;
        offset = 2 * sizeof(std::uint16_t);
    }
    const std::size_t ndigits = (len - offset) / sizeof(std::int16_t);
    __int128 acc = 0;
    for (std::size_t i = 0; i < ndigits; i++) {
        std::int16_t d;
        std::memcpy(&d, data + offset + i * sizeof d, sizeof d);
        // Position of this digit in units of 10^-6: 10000^(weight - i) * 10^6.
        const int exp4 = weight - static_cast<int>(i);  // power of 10000
        const int exp10 = exp4 * 4 + kScale;            // power of 10 once scaled
        if (exp10 < 0) {
            // Below 10^-6: only exact when the digit's part there is zero.
            if (exp10 <= -4) {
                if (d != 0)
                    return false;
                continue;
            }
            const int div = static_cast<int>(kPow10[-exp10]);
            if (d % div != 0)
                return false;
            acc += d / div;
            continue;
        }
        if (exp10 > kMaxExp10)
            return false;  // beyond 10^24 (well beyond numeric(15,2))
        acc += d * kPow10[exp10];
    }
    out = negative ? -acc : acc;
    return true;
}

std::string fixed_to_text(__int128 value, int dscale)
{
    const bool negative = value < 0;
    unsigned __int128 mag = negative ? static_cast<unsigned __int128>(-value) : static_cast<unsigned __int128>(value);
    char digits[64];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + static_cast<int>(mag % 10));
        mag /= 10;
    } while (mag);
    while (n <= kScale)
        digits[n++] = '0';
    // digits[] holds the number reversed, with kScale decimals.
    std::string s;
    if (negative)
        s += '-';
    for (int i = n - 1; i >= kScale; i--)
        s += digits[i];
    if (dscale > 0) {
        s += '.';
        for (int i = kScale - 1; i >= kScale - dscale && i >= 0; i--)
            s += digits[i];
        for (int extra = kScale; extra < dscale; extra++)
            s += '0';
    }
    return s;
}

namespace {
constexpr __int128 kPerCent = 10000;  // fixed point (10^-6) units per cent
std::uint64_t project_hash(const core::Key& k, const BudgetSums& s) noexcept
{
    std::uint64_t h = mix(k.hi ^ mix(k.lo));
    for (int c = 0; c < 3; c++) {
        const auto u = static_cast<unsigned __int128>(s.sum[c]);
        h = mix(h ^ static_cast<std::uint64_t>(u) ^ (static_cast<std::uint64_t>(c) << 61));
        h = mix(h ^ static_cast<std::uint64_t>(u >> 64));
        h = mix(h ^ (s.any[c] ? 0x9e3779b97f4a7c15ULL : 0));
    }
    return h;
}

// v (fixed point) in whole cents, when it is one and fits 64 bits.  A
// budget usually fits 64 bits already, where dividing by a constant is a
// multiplication; an __int128's is a library call (two per value).
bool to_cents(__int128 v, std::int64_t& cents) noexcept
{
    const auto small = static_cast<std::int64_t>(v);
    if (small == v) {
        if (small % static_cast<std::int64_t>(kPerCent) != 0)
            return false;
        cents = small / static_cast<std::int64_t>(kPerCent);
        return true;
    }
    if (v % kPerCent != 0)
        return false;
    const __int128 q = v / kPerCent;
    if (q < INT64_MIN || q > INT64_MAX)
        return false;
    cents = static_cast<std::int64_t>(q);
    return true;
}
}  // namespace

void Budgets::add(const core::Key& project, const Datum* values, const bool* nulls)
{
    __int128 v[3] = {0, 0, 0};
    bool has[3] = {false, false, false};
    std::int64_t add_cents[3] = {0, 0, 0};
    bool narrow = !widened_;
    for (int c = 0; c < 3; c++) {
        if (nulls[c])
            continue;
        int scale;
        if (!numeric_to_fixed(values[c], v[c], scale)) {
            exact_ = false;
            continue;
        }
        has[c] = true;
        if (scale > dscale_[c])
            dscale_[c] = scale;
        overall_.sum[c] += v[c];
        overall_.any[c] = true;
        narrow = narrow && to_cents(v[c], add_cents[c]);
    }
    // Consecutive phases of one project share a record: the sums do not
    // depend on the order within a project.
    if (narrow) {
        const bool same = !phases_.empty() && phases_.back().project == project;
        std::int64_t cents[3];
        for (int c = 0; c < 3 && narrow; c++) {
            const std::int64_t before = same ? phases_.back().cents[c] : 0;
            narrow = !__builtin_add_overflow(before, add_cents[c], &cents[c]);
        }
        if (narrow) {
            if (!same)
                phases_.push_back(PhaseBudget{project, {0, 0, 0}, {false, false, false}});
            PhaseBudget& r = phases_.back();
            for (int c = 0; c < 3; c++) {
                r.cents[c] = cents[c];
                r.any[c] = r.any[c] || has[c];
            }
            return;
        }
    }
    if (!widened_)
        widen();
    if (wide_.empty() || !(wide_.back().project == project))
        wide_.push_back(WideBudget{project, BudgetSums{}});
    BudgetSums& sums = wide_.back().sums;
    for (int c = 0; c < 3; c++) {
        sums.sum[c] += v[c];
        sums.any[c] = sums.any[c] || has[c];
    }
}

BudgetSums Budgets::sums_of(const PhaseBudget& r) noexcept
{
    BudgetSums s;
    for (int c = 0; c < 3; c++) {
        s.sum[c] = static_cast<__int128>(r.cents[c]) * kPerCent;
        s.any[c] = r.any[c];
    }
    return s;
}

void Budgets::widen()
{
    wide_.reserve(phases_.capacity());
    for (const PhaseBudget& r : phases_)
        wide_.push_back(WideBudget{r.project, sums_of(r)});
    core::BigVector<PhaseBudget>().swap(phases_);
    widened_ = true;
}

void Budgets::finish(const std::vector<core::Key>* split)
{
    if (widened_)
        finish_records(wide_, split);
    else
        finish_records(phases_, split);
}

template <typename Record>
void Budgets::finish_records(core::BigVector<Record>& records, const std::vector<core::Key>* split)
{
    // Without the index's runs: the projects met in more than one record,
    // found by a bit per project hash (a set bit met again: that project,
    // or one whose hash collides, gathered with the split ones; harmless).
    // Phases in no order by project show that in many records: one sort.
    std::vector<core::Key> found;
    if (!split) {
        const std::size_t limit = core::repeats_limit(records.size());
        core::KeyBits seen(records.size(), 16);
        for (const Record& r : records) {
            if (seen.test_and_set(r.project)) {
                found.push_back(r.project);
                if (found.size() > limit)
                    break;
            }
        }
        if (found.size() <= limit) {
            std::sort(found.begin(), found.end());
            found.erase(std::unique(found.begin(), found.end()), found.end());
            split = &found;
        }
    }
    // The sums and the digest do not depend on the order within a project.
    // Known runs: every record is a whole project but those of the split
    // projects, which are sorted together; else one sort of all.
    core::BigVector<Record> rest;
    if (split) {
        if (!split->empty()) {
            // A bit per hash of a split project first: most records are of
            // none, and skip the binary search (at 10M assignments, 1M
            // searches in tens of thousands of candidates took 70 ms).
            core::KeyBits maybe(split->size(), 64);
            for (const core::Key& k : *split)
                maybe.test_and_set(k);
            std::size_t kept = 0;
            for (std::size_t i = 0; i < records.size(); i++) {
                if (maybe.test(records[i].project) &&
                    std::binary_search(split->begin(), split->end(), records[i].project))
                    rest.push_back(records[i]);
                else
                    records[kept++] = records[i];
            }
            records.resize(kept);
        }
    } else {
        rest.swap(records);
    }
    boost::sort::pdqsort(rest.begin(), rest.end(),
                         [](const Record& a, const Record& b) { return a.project < b.project; });
    digest_ = 0;
    projects_ = 0;
    for (const core::BigVector<Record>* part : {&records, &rest})
        for (std::size_t i = 0; i < part->size();) {
            const core::BigVector<Record>& v = *part;
            BudgetSums sums;
            std::size_t j = i;
            for (; j < v.size() && v[j].project == v[i].project; j++) {
                const BudgetSums r = sums_of(v[j]);
                for (int c = 0; c < 3; c++) {
                    sums.sum[c] += r.sum[c];
                    sums.any[c] = sums.any[c] || r.any[c];
                }
            }
            digest_ += project_hash(v[i].project, sums);
            projects_++;
            i = j;
        }
    core::BigVector<Record>().swap(records);
}

std::optional<std::string> Budgets::text(int column) const
{
    if (!overall_.any[column])
        return std::nullopt;
    return fixed_to_text(overall_.sum[column], dscale_[column] > kScale ? kScale : dscale_[column]);
}

std::string Budgets::digest() const
{
    char buf[48];
    std::snprintf(buf, sizeof buf, "%016llx:%zu", static_cast<unsigned long long>(digest_), projects_);
    return buf;
}

}  // namespace phasemig::pg
