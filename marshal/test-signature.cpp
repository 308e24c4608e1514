#include <gtest/gtest.h>

#include <string>

#include "busgate/marshal/signature.h"

using namespace busgate::marshal;

TEST(Signature, AcceptsEveryTypeAndContainer) {
    for (const char* valid : {"", "y", "bnqiuxtdsoghv", "ai", "aai", "(i)", "(ii(s))", "a{sv}", "a{s(ai)}",
                              "aa{yv}", "a(ya{sv})", "ah"}) {
        EXPECT_EQ(validate_signature(valid), Validity::valid) << valid;
    }
}

TEST(Signature, RejectsMalformedContainers) {
    EXPECT_EQ(validate_signature("a"), Validity::missing_array_element_type);
    EXPECT_EQ(validate_signature("(a)"), Validity::missing_array_element_type);
    EXPECT_EQ(validate_signature("()"), Validity::struct_has_no_fields);
    EXPECT_EQ(validate_signature("(i"), Validity::struct_started_but_not_ended);
    EXPECT_EQ(validate_signature("i)"), Validity::struct_ended_but_not_started);
    EXPECT_EQ(validate_signature("{sv}"), Validity::dict_entry_not_inside_array);
    EXPECT_EQ(validate_signature("a{s}"), Validity::dict_entry_has_only_one_field);
    EXPECT_EQ(validate_signature("a{}"), Validity::dict_entry_has_no_fields);
    EXPECT_EQ(validate_signature("a{sss}"), Validity::dict_entry_has_too_many_fields);
    EXPECT_EQ(validate_signature("a{vs}"), Validity::dict_key_must_be_basic_type);
    EXPECT_EQ(validate_signature("a{(i)s}"), Validity::dict_key_must_be_basic_type);
    EXPECT_EQ(validate_signature("a{sv"), Validity::dict_entry_started_but_not_ended);
    EXPECT_EQ(validate_signature("z"), Validity::unknown_typecode);
    EXPECT_EQ(validate_signature("r"), Validity::unknown_typecode);  // STRUCT code, never in signatures
    EXPECT_EQ(validate_signature("e"), Validity::unknown_typecode);
}

TEST(Signature, RejectsMisnestedBrackets) {
    // From dbus-tests' invalid-messages/mis-nested-sig (dbus issue 418).
    EXPECT_NE(validate_signature("(ta{ya{da{ya{yaq}}})}"), Validity::valid);
    EXPECT_NE(validate_signature("(a{s)}"), Validity::valid);
    EXPECT_NE(validate_signature("a{s(})"), Validity::valid);
}

TEST(Signature, LengthLimitIs255) {
    EXPECT_EQ(validate_signature(std::string(255, 'y')), Validity::valid);
    EXPECT_EQ(validate_signature(std::string(256, 'y')), Validity::signature_too_long);
}

TEST(Signature, ArrayAndStructDepthLimitIs32) {
    EXPECT_EQ(validate_signature(std::string(32, 'a') + "y"), Validity::valid);
    EXPECT_EQ(validate_signature(std::string(33, 'a') + "y"), Validity::exceeded_maximum_array_recursion);
    EXPECT_EQ(validate_signature(std::string(32, '(') + "y" + std::string(32, ')')), Validity::valid);
    EXPECT_EQ(validate_signature(std::string(33, '(') + "y" + std::string(33, ')')),
              Validity::exceeded_maximum_struct_recursion);
}

TEST(Signature, CompleteTypesAreFoundByWalking) {
    const std::string_view signature = "ia{s(ai)}v(ss)aay";
    EXPECT_EQ(complete_type_at(signature, 0), "i");
    EXPECT_EQ(complete_type_at(signature, 1), "a{s(ai)}");
    EXPECT_EQ(complete_type_at(signature, 9), "v");
    EXPECT_EQ(complete_type_at(signature, 10), "(ss)");
    EXPECT_EQ(complete_type_at(signature, 14), "aay");
    EXPECT_TRUE(is_single_complete_type("a{sv}"));
    EXPECT_FALSE(is_single_complete_type("ss"));
    EXPECT_FALSE(is_single_complete_type(""));
    EXPECT_FALSE(is_single_complete_type("a"));
}
