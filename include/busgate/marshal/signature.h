// Type signatures: validation (length, nesting, struct and dict-entry shape) and walking by complete
// types. Functions other than validate_signature expect a signature that validated.
#pragma once

#include <cstddef>
#include <string_view>

#include "busgate/marshal/validity.h"

namespace busgate::marshal {

Validity validate_signature(std::string_view signature);

// True if `signature` is valid and holds exactly one complete type (what a variant may carry).
bool is_single_complete_type(std::string_view signature);

// The end (exclusive) of the complete type starting at `position` of a valid signature.
std::size_t complete_type_end(std::string_view signature, std::size_t position);

// The complete type starting at `position`.
inline std::string_view complete_type_at(std::string_view signature, std::size_t position) {
    return signature.substr(position, complete_type_end(signature, position) - position);
}

}  // namespace busgate::marshal
