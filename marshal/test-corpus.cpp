// The message corpora of the upstream dbus test suite (Debian package dbus-tests): every valid
// message must be accepted and every invalid one rejected, as dbus_message_demarshal() does.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "busgate/marshal/message.h"

using namespace busgate::marshal;

namespace {

std::vector<std::filesystem::path> corpus(const char* directory) {
    std::vector<std::filesystem::path> files;
    const std::filesystem::path root = std::filesystem::path(BUSGATE_DBUS_TEST_DATA) / directory;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
        if (entry.path().extension() == ".message-raw") {
            files.push_back(entry.path());
        }
    }
    return files;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(DbusTestsCorpus, EveryValidMessageIsAccepted) {
    const auto files = corpus("valid-messages");
    ASSERT_GE(files.size(), 2u) << "dbus-tests data missing under " << BUSGATE_DBUS_TEST_DATA;
    for (const auto& path : files) {
        const auto bytes = read_file(path);
        MessageHeader header;
        EXPECT_EQ(describe(parse_message(bytes, header)), describe(Validity::valid)) << path;
    }
}

TEST(DbusTestsCorpus, EveryInvalidMessageIsRejected) {
    const auto files = corpus("invalid-messages");
    ASSERT_GE(files.size(), 6u) << "dbus-tests data missing under " << BUSGATE_DBUS_TEST_DATA;
    for (const auto& path : files) {
        const auto bytes = read_file(path);
        MessageHeader header;
        const Validity validity = parse_message(bytes, header);
        EXPECT_NE(validity, Validity::valid) << path;
        std::cout << "[ corpus   ] " << path.filename().string() << ": " << describe(validity) << "\n";
    }
}
