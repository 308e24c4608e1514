// The DBUS_COOKIE_SHA1 keyring: a directory (~/.dbus-keyrings, mode 0700) holding one file per
// context with lines "<id> <creation time> <hex cookie>", shared with every other D-Bus
// implementation of the user. Follows dbus-daemon: keys older than 7 minutes are dropped, a new
// one is made when none is younger than 5 minutes, writers take a lock file.
#pragma once

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace busgate::transport {

class CookieKeyring {
  public:
    struct Key {
        long id;
        std::time_t creation_time;
        std::string cookie;  // hex
    };

    // The keyring of `context` under `directory`, loaded (and refreshed if needed).
    // Errors (unsafe permissions, unwritable directory, bad context) come back as a message.
    static std::optional<CookieKeyring> open(const std::filesystem::path& directory, std::string_view context,
                                             std::string& error, std::time_t now = std::time(nullptr));

    // The newest usable key's id, creating one if needed; -1 and `error` on failure.
    long best_key_id(std::string& error, std::time_t now = std::time(nullptr));
    // The cookie of `id`, or empty if the keyring has no such key.
    std::string cookie(long id) const;

    static bool is_valid_context(std::string_view context);

  private:
    CookieKeyring(std::filesystem::path file) : file_(std::move(file)) {}
    bool reload(bool add_new, std::string& error, std::time_t now);

    std::filesystem::path file_;
    std::vector<Key> keys_;
};

// SHA-1 of `text`, hex encoded (the hash DBUS_COOKIE_SHA1 exchanges).
std::string sha1_hex(std::string_view text);

}  // namespace busgate::transport
