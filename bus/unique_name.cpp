#include "bus/unique_name.h"

namespace busgate::bus {
namespace {

constexpr std::string_view unique_name_prefix = ":1.";

}  // namespace

std::string unique_name_of(core::ConnectionId id) {
    return std::string(unique_name_prefix) + std::to_string(id - 1);
}

std::optional<core::ConnectionId> connection_id_of(std::string_view unique_name) {
    if (!unique_name.starts_with(unique_name_prefix)) {
        return std::nullopt;
    }
    const std::string_view digits = unique_name.substr(unique_name_prefix.size());
    if (digits.empty() || digits.size() > 20 || (digits.size() > 1 && digits.front() == '0')) {
        return std::nullopt;
    }
    core::ConnectionId number = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9' ||
            number > (core::first_internal_connection_id - static_cast<unsigned>(c - '0')) / 10) {
            return std::nullopt;
        }
        number = number * 10 + static_cast<unsigned>(c - '0');
    }
    if (number + 1 >= core::first_internal_connection_id) {
        return std::nullopt;
    }
    return number + 1;
}

}  // namespace busgate::bus
