// A map from Key to a small value for lookups that mostly come in the order
// the entries were added: a rewrite of the table they were read from meets
// its rows in the same physical order.  A cursor follows that order through
// a plain array (sequential memory, no hashing); any other key is found
// through the hash map and moves the cursor after it.  Answers never depend
// on the order, only the speed does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/flat_map.hpp"
#include "core/key.hpp"

namespace phasemig::core {

template <typename V>
class OrderedKeyMap {
public:
    void reserve(std::size_t n)
    {
        entries_.reserve(n);
        index_.reserve(n);
    }

    // A key added again keeps its place and takes the new value.
    void put(const Key& key, const V& value)
    {
        if (const std::uint32_t* i = index_.find(key)) {
            entries_[*i].value = value;
            return;
        }
        index_.put(key, static_cast<std::uint32_t>(entries_.size()));
        entries_.push_back(Entry{key, value});
    }

    const V* find(const Key& key) const noexcept
    {
        const std::uint32_t* i = index_.find(key);
        return i ? &entries_[*i].value : nullptr;
    }

    // `cursor` starts at 0 and belongs to one pass over the keys.
    const V* find_in_order(const Key& key, std::size_t& cursor) const noexcept
    {
        if (cursor < entries_.size() && entries_[cursor].key == key)
            return &entries_[cursor++].value;
        const std::uint32_t* i = index_.find(key);
        if (!i)
            return nullptr;
        cursor = std::size_t{*i} + 1;
        return &entries_[*i].value;
    }

    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry {
        Key key;
        V value;
    };
    std::vector<Entry> entries_;
    FlatKeyMap<std::uint32_t> index_;
};

}  // namespace phasemig::core
