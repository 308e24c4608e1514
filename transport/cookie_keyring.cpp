#include "transport/cookie_keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/uuid/detail/sha1.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "busgate/util/encoding.h"

namespace busgate::transport {
namespace {

// dbus-keyring.c's timings.
constexpr std::time_t new_key_timeout = 60 * 5;
constexpr std::time_t expire_keys_timeout = new_key_timeout + 60 * 2;
constexpr std::time_t max_time_travel = 60 * 5;
constexpr std::size_t max_keys = 256;
constexpr std::size_t cookie_bytes = 24;

// The keyring lock file; a lock older than our patience is taken to be stale, as dbus-daemon does.
class LockFile {
  public:
    explicit LockFile(std::filesystem::path path) : path_(std::move(path)) {
        for (int attempt = 0; attempt < 20 && !held_; ++attempt) {
            const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ::close(fd);
                held_ = true;
            } else if (attempt == 19) {
                ::unlink(path_.c_str());
                const int retry = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (retry >= 0) {
                    ::close(retry);
                    held_ = true;
                }
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
    }
    ~LockFile() {
        if (held_) {
            ::unlink(path_.c_str());
        }
    }
    LockFile(const LockFile&) = delete;
    LockFile& operator=(const LockFile&) = delete;
    bool held() const { return held_; }

  private:
    std::filesystem::path path_;
    bool held_ = false;
};

}  // namespace

bool CookieKeyring::is_valid_context(std::string_view context) {
    if (context.empty()) {
        return false;
    }
    for (unsigned char c : context) {
        if (c >= 0x80 || c <= ' ' || c == '/' || c == '\\' || c == '.') {
            return false;
        }
    }
    return true;
}

std::optional<CookieKeyring> CookieKeyring::open(const std::filesystem::path& directory,
                                                 std::string_view context, std::string& error,
                                                 std::time_t now) {
    if (!is_valid_context(context)) {
        error = "invalid keyring context";
        return std::nullopt;
    }
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        error = "cannot create keyring directory " + directory.string();
        return std::nullopt;
    }
    struct stat status {};
    if (::stat(directory.c_str(), &status) != 0 || !S_ISDIR(status.st_mode) || status.st_uid != ::geteuid() ||
        (status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        error = "keyring directory " + directory.string() + " is not private to its user";
        return std::nullopt;
    }
    CookieKeyring keyring(directory / std::string(context));
    if (!keyring.reload(false, error, now)) {
        return std::nullopt;
    }
    return keyring;
}

bool CookieKeyring::reload(bool add_new, std::string& error, std::time_t now) {
    const LockFile lock(file_.string() + ".lock");
    if (add_new && !lock.held()) {
        error = "cannot lock keyring " + file_.string();
        return false;
    }
    keys_.clear();
    std::ifstream input(file_);
    std::string line;
    while (std::getline(input, line) && keys_.size() < max_keys) {
        std::istringstream fields(line);
        Key key{};
        long long created = 0;
        if (!(fields >> key.id >> created >> key.cookie) || key.id <= 0 || key.cookie.empty()) {
            continue;
        }
        key.creation_time = static_cast<std::time_t>(created);
        if (key.creation_time - now > max_time_travel || now - key.creation_time > expire_keys_timeout) {
            continue;
        }
        keys_.push_back(std::move(key));
    }
    if (!add_new) {
        return true;
    }

    long id = 0;
    do {
        const std::string raw = util::random_bytes(sizeof(std::uint32_t));
        std::uint32_t value;
        std::memcpy(&value, raw.data(), sizeof value);
        id = static_cast<long>(value & 0x7fffffff);
    } while (id == 0 || cookie(id) != "");
    keys_.push_back({id, now, util::hex_encode(util::random_bytes(cookie_bytes))});

    const std::filesystem::path temporary = file_.string() + ".tmp";
    {
        std::ofstream output(temporary, std::ios::trunc);
        for (const Key& key : keys_) {
            output << key.id << ' ' << static_cast<long long>(key.creation_time) << ' ' << key.cookie << '\n';
        }
        if (!output.flush()) {
            error = "cannot write keyring " + temporary.string();
            return false;
        }
    }
    ::chmod(temporary.c_str(), 0600);
    if (::rename(temporary.c_str(), file_.c_str()) != 0) {
        error = "cannot replace keyring " + file_.string();
        return false;
    }
    return true;
}

long CookieKeyring::best_key_id(std::string& error, std::time_t now) {
    for (int round = 0; round < 2; ++round) {
        for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) {
            if (now - it->creation_time < new_key_timeout && it->creation_time - now <= max_time_travel) {
                return it->id;
            }
        }
        if (round == 0 && !reload(true, error, now)) {
            return -1;
        }
    }
    error = "no recent key in keyring";
    return -1;
}

std::string CookieKeyring::cookie(long id) const {
    for (const Key& key : keys_) {
        if (key.id == id) {
            return key.cookie;
        }
    }
    return {};
}

std::string sha1_hex(std::string_view text) {
    boost::uuids::detail::sha1 hash;
    hash.process_bytes(text.data(), text.size());
    boost::uuids::detail::sha1::digest_type digest;
    hash.get_digest(digest);
    std::string bytes;
    for (unsigned int word : digest) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            bytes.push_back(static_cast<char>((word >> shift) & 0xff));
        }
    }
    return util::hex_encode(bytes);
}

}  // namespace busgate::transport
