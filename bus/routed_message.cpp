#include "bus/routed_message.h"

#include <fcntl.h>

#include <cstddef>

#include "busgate/marshal/rewrite.h"

namespace busgate::bus {
namespace {

// Every routed message is one allocation (make_shared's block: the payload and its counts). With 64 calls
// in flight they are made and freed in bursts deeper than malloc's per-thread cache (7 blocks a size), so
// most went to malloc's slow paths. Each thread keeps up to `kept` freed blocks of each size here instead;
// a block made on one thread and freed on another joins the second thread's list.
template <std::size_t size>
class BlockPool {
  public:
    static constexpr std::size_t kept = 256;  // about 100 KB of payload blocks at most

    ~BlockPool() {
        gone_ = true;
        for (std::size_t i = 0; i < count_; ++i) {
            ::operator delete(blocks_[i]);
        }
    }
    static void* take() {
        if (!gone_) {
            if (BlockPool& pool = mine(); pool.count_ > 0) {
                return pool.blocks_[--pool.count_];
            }
        }
        return ::operator new(size);
    }
    static void give(void* block) {
        // A payload freed while this thread exits, after its pool went, goes straight back to malloc.
        if (!gone_) {
            if (BlockPool& pool = mine(); pool.count_ < kept) {
                pool.blocks_[pool.count_++] = block;
                return;
            }
        }
        ::operator delete(block);
    }

  private:
    static BlockPool& mine() {
        thread_local BlockPool pool;
        return pool;
    }
    static thread_local bool gone_;  // trivially destroyed: readable until the thread ends
    void* blocks_[kept];
    std::size_t count_ = 0;
};

template <std::size_t size>
thread_local bool BlockPool<size>::gone_ = false;

// Under AddressSanitizer every block goes back to malloc, so that a payload used after its release is
// still reported.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool pooled = false;
#else
constexpr bool pooled = true;
#endif
#else
constexpr bool pooled = true;
#endif

// allocate_shared's allocator: single blocks from the pool of their size.
template <typename T>
struct PooledAllocator {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "the pool's blocks come from operator new");
    using value_type = T;
    PooledAllocator() = default;
    template <typename U>
    PooledAllocator(const PooledAllocator<U>&) {}
    T* allocate(std::size_t n) {
        return pooled && n == 1 ? static_cast<T*>(BlockPool<sizeof(T)>::take())
                                : static_cast<T*>(::operator new(n * sizeof(T)));
    }
    void deallocate(T* block, std::size_t n) {
        if (pooled && n == 1) {
            BlockPool<sizeof(T)>::give(block);
        } else {
            ::operator delete(block);
        }
    }
    template <typename U>
    bool operator==(const PooledAllocator<U>&) const {
        return true;
    }
};

std::shared_ptr<RoutedMessage> make_routed() {
    return std::allocate_shared<RoutedMessage>(PooledAllocator<RoutedMessage>());
}

}  // namespace

std::vector<std::uint8_t> stamped_message(const transport::IncomingMessage& message,
                                          std::string_view sender) {
    const auto body = marshal::body_of(message.bytes, message.header);
    std::vector<std::uint8_t> stamped;
    // The header grows by the SENDER field at most (code, signature, length, name, NUL, padding to 8).
    // Reserved once, so the header is written in place and the body appended without a zero fill first.
    stamped.reserve(std::size_t{message.header.body_offset} + sender.size() + 16 + body.size());
    marshal::rewrite_header_with_sender(message.bytes, message.header, sender, stamped);
    stamped.insert(stamped.end(), body.begin(), body.end());
    return stamped;
}

RoutedMessage::Ref RoutedMessage::stamped(transport::IncomingMessage& message, std::string_view sender) {
    auto routed = make_routed();
    if (marshal::stampable_in_front(message.header) &&
        message.bytes.headroom() >= marshal::sender_field_room(sender)) {
        // The common case: the client's buffer becomes the payload, SENDER written in its headroom; the
        // body is never copied. `message.header`'s views still point at the fields, which did not move.
        marshal::stamp_sender_in_front(message.bytes.data(), message.header, sender);
        message.bytes.grow_front(marshal::sender_field_room(sender));
        routed->bytes = std::move(message.bytes);
    } else {
        routed->bytes.assign(stamped_message(message, sender));
    }
    routed->fds = std::move(message.fds);
    return routed;
}

RoutedMessage::Ref RoutedMessage::built(const marshal::MessageSpec& spec, const marshal::BodyWriter& body,
                                        std::vector<util::UniqueFd> fds) {
    auto routed = make_routed();
    routed->bytes.assign(marshal::build_message(spec, body));
    routed->fds = std::move(fds);
    return routed;
}

RoutedMessage::Ref RoutedMessage::copy(std::span<const std::uint8_t> bytes,
                                       std::span<const util::UniqueFd> fds) {
    auto routed = make_routed();
    routed->bytes.assign(bytes);
    for (const util::UniqueFd& fd : fds) {
        routed->fds.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    }
    return routed;
}

const marshal::MessageHeader* RoutedMessage::header() const {
    if (!parsed_) {
        parsed_ = true;
        marshal::MessageHeader header;
        if (marshal::parse_validated_header(bytes, header) == marshal::Validity::valid) {
            header_.emplace(header);
        }
    }
    return header_ ? &*header_ : nullptr;
}

}  // namespace busgate::bus
