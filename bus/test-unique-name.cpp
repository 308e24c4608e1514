// Unique names (":1.N") and the core's connection ids they stand for.
#include <gtest/gtest.h>

#include "bus/unique_name.h"

namespace busgate::bus {
namespace {

TEST(UniqueName, FirstConnectionIsColonOneDotZeroAndTheMappingRoundTrips) {
    EXPECT_EQ(unique_name_of(1), ":1.0");
    for (const core::ConnectionId id :
         {core::ConnectionId{1}, core::ConnectionId{2}, core::ConnectionId{1000}}) {
        EXPECT_EQ(connection_id_of(unique_name_of(id)), id);
    }
    for (const char* foreign :
         {":1.05", ":2.3", ":1.", ":1.-1", "org.example.Name", ":1.99999999999999999999"}) {
        EXPECT_EQ(connection_id_of(foreign), std::nullopt) << foreign;
    }
}

}  // namespace
}  // namespace busgate::bus
