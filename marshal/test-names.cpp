#include <gtest/gtest.h>

#include <string>

#include "busgate/marshal/names.h"

using namespace busgate::marshal;

TEST(Names, ObjectPathsFollowTheSpecification) {
    EXPECT_TRUE(is_valid_object_path("/"));
    EXPECT_TRUE(is_valid_object_path("/org/freedesktop/DBus"));
    EXPECT_TRUE(is_valid_object_path("/a_b/C9"));
    EXPECT_FALSE(is_valid_object_path(""));
    EXPECT_FALSE(is_valid_object_path("org"));
    EXPECT_FALSE(is_valid_object_path("/org/"));
    EXPECT_FALSE(is_valid_object_path("//org"));
    EXPECT_FALSE(is_valid_object_path("/org//x"));
    EXPECT_FALSE(is_valid_object_path("/org-x"));
    EXPECT_FALSE(is_valid_object_path("/org.x"));
}

TEST(Names, InterfaceNamesNeedTwoElementsNotStartingWithDigits) {
    EXPECT_TRUE(is_valid_interface_name("org.freedesktop.DBus"));
    EXPECT_TRUE(is_valid_interface_name("_a._9"));
    EXPECT_FALSE(is_valid_interface_name("org"));
    EXPECT_FALSE(is_valid_interface_name("org.9x"));
    EXPECT_FALSE(is_valid_interface_name(".org.x"));
    EXPECT_FALSE(is_valid_interface_name("org..x"));
    EXPECT_FALSE(is_valid_interface_name("org.x."));
    EXPECT_FALSE(is_valid_interface_name("org.foo-bar"));
    EXPECT_FALSE(is_valid_interface_name(std::string(128, 'a') + "." + std::string(127, 'b')));
    EXPECT_TRUE(is_valid_interface_name(std::string(127, 'a') + "." + std::string(127, 'b')));
}

TEST(Names, ErrorNamesAreInterfaceNames) {
    EXPECT_TRUE(is_valid_error_name("org.freedesktop.DBus.Error.Failed"));
    EXPECT_FALSE(is_valid_error_name("Failed"));
}

TEST(Names, MemberNamesAreOneElement) {
    EXPECT_TRUE(is_valid_member_name("Hello"));
    EXPECT_TRUE(is_valid_member_name("_x9"));
    EXPECT_FALSE(is_valid_member_name(""));
    EXPECT_FALSE(is_valid_member_name("9x"));
    EXPECT_FALSE(is_valid_member_name("a.b"));
    EXPECT_FALSE(is_valid_member_name("a-b"));
    EXPECT_FALSE(is_valid_member_name(std::string(256, 'a')));
}

TEST(Names, WellKnownBusNamesAllowHyphensButNoLeadingDigits) {
    EXPECT_TRUE(is_valid_bus_name("org.freedesktop.DBus"));
    EXPECT_TRUE(is_valid_bus_name("org.foo-bar.x"));
    EXPECT_TRUE(is_valid_bus_name("-a.-b"));
    EXPECT_FALSE(is_valid_bus_name("org"));
    EXPECT_FALSE(is_valid_bus_name("org.9"));
    EXPECT_FALSE(is_valid_bus_name("org..x"));
    EXPECT_FALSE(is_valid_bus_name("org.x."));
    EXPECT_FALSE(is_valid_bus_name(".org.x"));
}

TEST(Names, UniqueNamesAsDbusDaemonAcceptsThem) {
    EXPECT_TRUE(is_valid_bus_name(":1.42"));
    EXPECT_TRUE(is_valid_bus_name(":1.0.9"));
    EXPECT_TRUE(is_valid_bus_name(":abc-1"));  // dbus-daemon requires no dot after the colon
    EXPECT_FALSE(is_valid_bus_name(":1..2"));
    EXPECT_FALSE(is_valid_bus_name(":1."));
    EXPECT_FALSE(is_valid_bus_name(":1:2"));
    EXPECT_TRUE(is_unique_name(":1.42"));
    EXPECT_FALSE(is_unique_name("org.x"));
}

TEST(Names, NamespacesMayHaveOneElement) {
    EXPECT_TRUE(is_valid_bus_namespace("org"));
    EXPECT_TRUE(is_valid_bus_namespace("org.example"));
    EXPECT_FALSE(is_valid_bus_namespace(":1.2"));
    EXPECT_FALSE(is_valid_bus_namespace("org."));
}

TEST(Utf8, AcceptsWellFormedTextIncludingNoncharacters) {
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("plain"));
    EXPECT_TRUE(is_valid_utf8("\xc3\xa9t\xc3\xa9"));  // été
    EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));       // €
    EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));   // U+1F600
    EXPECT_TRUE(is_valid_utf8("\xef\xbf\xbe"));       // U+FFFE, a noncharacter: valid for dbus-daemon
    EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
}

TEST(Utf8, RejectsNulOverlongSurrogatesAndTruncation) {
    EXPECT_FALSE(is_valid_utf8(std::string_view("a\0b", 3)));
    EXPECT_FALSE(is_valid_utf8("\xc0\x80"));          // overlong NUL
    EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong '/'
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // U+D800
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
    EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
    EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
    EXPECT_FALSE(is_valid_utf8("\xf8\x88\x80\x80\x80"));
    EXPECT_FALSE(is_valid_utf8("\xc3\x28"));
}
