#include "busgate/marshal/signature.h"

#include <array>

#include "busgate/marshal/types.h"

namespace busgate::marshal {

// Follows dbus-daemon's checks, including its notion of array depth as a run of consecutive 'a's:
// a(a(...)) is limited by struct depth and by the run-time nesting limit instead. Brackets must nest
// properly: "(a{sv)}" is rejected (dbus issue 418).
Validity validate_signature(std::string_view signature) {
    if (signature.size() > limit::signature_length) {
        return Validity::signature_too_long;
    }
    // Element counts of open structs and dict entries; index 0 is the top level.
    std::array<int, limit::signature_length + 2> element_count{};
    std::array<char, limit::signature_length + 2> opener{};
    std::size_t open = 0;
    int struct_depth = 0;
    int array_depth = 0;
    int dict_entry_depth = 0;
    char last = 0;

    for (std::size_t i = 0; i < signature.size(); ++i) {
        const char c = signature[i];
        switch (c) {
            case type::array:
                if (++array_depth > limit::array_depth) {
                    return Validity::exceeded_maximum_array_recursion;
                }
                break;
            case type::struct_begin:
                if (++struct_depth > limit::struct_depth) {
                    return Validity::exceeded_maximum_struct_recursion;
                }
                element_count[++open] = 0;
                opener[open] = c;
                break;
            case type::struct_end:
                if (struct_depth == 0 || opener[open] != type::struct_begin) {
                    return Validity::struct_ended_but_not_started;
                }
                if (last == type::struct_begin) {
                    return Validity::struct_has_no_fields;
                }
                --open;
                --struct_depth;
                break;
            case type::dict_entry_begin:
                if (last != type::array) {
                    return Validity::dict_entry_not_inside_array;
                }
                if (++dict_entry_depth > limit::struct_depth) {
                    return Validity::exceeded_maximum_dict_entry_recursion;
                }
                element_count[++open] = 0;
                opener[open] = c;
                break;
            case type::dict_entry_end: {
                if (dict_entry_depth == 0 || opener[open] != type::dict_entry_begin) {
                    return Validity::dict_entry_ended_but_not_started;
                }
                --dict_entry_depth;
                const int count = element_count[open--];
                if (count == 0) {
                    return Validity::dict_entry_has_no_fields;
                }
                if (count == 1) {
                    return Validity::dict_entry_has_only_one_field;
                }
                if (count > 2) {
                    return Validity::dict_entry_has_too_many_fields;
                }
                break;
            }
            default:
                if (!is_basic_type(c) && c != type::variant) {
                    return Validity::unknown_typecode;
                }
                break;
        }

        if (c != type::array && c != type::dict_entry_begin && c != type::struct_begin) {
            ++element_count[open];
        }
        if (array_depth > 0) {
            if (c == type::array) {
                if (i + 1 < signature.size() &&
                    (signature[i + 1] == type::struct_end || signature[i + 1] == type::dict_entry_end)) {
                    return Validity::missing_array_element_type;
                }
            } else {
                array_depth = 0;
            }
        }
        if (last == type::dict_entry_begin && !is_basic_type(c)) {
            return Validity::dict_key_must_be_basic_type;
        }
        last = c;
    }

    if (array_depth > 0) {
        return Validity::missing_array_element_type;
    }
    if (struct_depth > 0) {
        return Validity::struct_started_but_not_ended;
    }
    if (dict_entry_depth > 0) {
        return Validity::dict_entry_started_but_not_ended;
    }
    return Validity::valid;
}

bool is_single_complete_type(std::string_view signature) {
    return !signature.empty() && validate_signature(signature) == Validity::valid &&
           complete_type_end(signature, 0) == signature.size();
}

std::size_t complete_type_end(std::string_view signature, std::size_t position) {
    while (position < signature.size() && signature[position] == type::array) {
        ++position;
    }
    if (position >= signature.size()) {
        return signature.size();
    }
    const char c = signature[position];
    if (c != type::struct_begin && c != type::dict_entry_begin) {
        return position + 1;
    }
    int depth = 0;
    do {
        const char d = signature[position++];
        if (d == type::struct_begin || d == type::dict_entry_begin) {
            ++depth;
        } else if (d == type::struct_end || d == type::dict_entry_end) {
            --depth;
        }
    } while (depth > 0 && position < signature.size());
    return position;
}

}  // namespace busgate::marshal
