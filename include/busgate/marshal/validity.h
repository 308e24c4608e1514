// Why a message, signature or value is invalid. One enumerator per reason dbus-daemon distinguishes,
// so a rejected message can be logged the way dbus-daemon logs it.
#pragma once

#include <string_view>

namespace busgate::marshal {

#define BUSGATE_VALIDITY_TABLE(X)                                                                 \
    X(valid, "valid")                                                                             \
    X(not_enough_data, "not enough data")                                                         \
    X(too_much_data, "too much data")                                                             \
    X(unknown_typecode, "unknown type code")                                                      \
    X(missing_array_element_type, "missing array element type")                                   \
    X(signature_too_long, "signature is too long")                                                \
    X(exceeded_maximum_array_recursion, "exceeded maximum array recursion")                       \
    X(exceeded_maximum_struct_recursion, "exceeded maximum struct recursion")                     \
    X(exceeded_maximum_dict_entry_recursion, "exceeded maximum dict entry recursion")             \
    X(struct_ended_but_not_started, "struct ended but not started")                               \
    X(struct_started_but_not_ended, "struct started but not ended")                               \
    X(struct_has_no_fields, "struct has no fields")                                               \
    X(dict_entry_ended_but_not_started, "dict entry ended but not started")                       \
    X(dict_entry_started_but_not_ended, "dict entry started but not ended")                       \
    X(dict_entry_has_no_fields, "dict entry has no fields")                                       \
    X(dict_entry_has_only_one_field, "dict entry has only one field")                             \
    X(dict_entry_has_too_many_fields, "dict entry has too many fields")                           \
    X(dict_entry_not_inside_array, "dict entry not inside array")                                 \
    X(dict_key_must_be_basic_type, "dict key must be a basic type")                               \
    X(alignment_padding_not_nul, "alignment padding not nul")                                     \
    X(boolean_not_zero_or_one, "boolean is not zero or one")                                      \
    X(bad_byte_order, "bad byte order")                                                           \
    X(bad_protocol_version, "bad protocol version")                                               \
    X(bad_message_type, "bad message type")                                                       \
    X(bad_serial, "bad serial")                                                                   \
    X(insane_fields_array_length, "insane fields array length")                                   \
    X(insane_body_length, "insane body length")                                                   \
    X(message_too_long, "message too long")                                                       \
    X(header_field_code, "invalid header field code")                                             \
    X(header_field_has_wrong_type, "header field has wrong type")                                 \
    X(header_field_appears_twice, "header field appears twice")                                   \
    X(uses_local_interface, "uses the local interface")                                           \
    X(uses_local_path, "uses the local path")                                                     \
    X(bad_destination, "bad destination")                                                         \
    X(bad_interface, "bad interface")                                                             \
    X(bad_member, "bad member")                                                                   \
    X(bad_error_name, "bad error name")                                                           \
    X(bad_sender, "bad sender")                                                                   \
    X(missing_path, "missing path")                                                               \
    X(missing_interface, "missing interface")                                                     \
    X(missing_member, "missing member")                                                           \
    X(missing_error_name, "missing error name")                                                   \
    X(missing_reply_serial, "missing reply serial")                                               \
    X(length_out_of_bounds, "length out of bounds")                                               \
    X(array_length_exceeds_maximum, "array length exceeds maximum")                               \
    X(array_length_incorrect, "array length incorrect")                                           \
    X(bad_path, "bad object path")                                                                \
    X(bad_utf8_in_string, "bad UTF-8 in string")                                                  \
    X(string_missing_nul, "string missing nul")                                                   \
    X(signature_length_out_of_bounds, "signature length out of bounds")                           \
    X(signature_missing_nul, "signature missing nul")                                             \
    X(variant_signature_length_out_of_bounds, "variant signature length out of bounds")           \
    X(variant_signature_bad, "variant signature bad")                                             \
    X(variant_signature_empty, "variant signature empty")                                         \
    X(variant_signature_specifies_multiple_values, "variant signature specifies multiple values") \
    X(variant_signature_missing_nul, "variant signature missing nul")                             \
    X(nested_too_deeply, "values nested too deeply")

enum class Validity : unsigned char {
#define BUSGATE_VALIDITY_ENUM(name, text) name,
    BUSGATE_VALIDITY_TABLE(BUSGATE_VALIDITY_ENUM)
#undef BUSGATE_VALIDITY_ENUM
};

// A short English description, e.g. "bad UTF-8 in string".
std::string_view describe(Validity validity);

}  // namespace busgate::marshal
