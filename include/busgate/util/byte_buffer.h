// ByteBuffer: the buffer a connection reads into and a framed message lives in.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace busgate::util {

// A growable byte buffer that, unlike std::vector, leaves new bytes uninitialized (recvmsg is about
// to overwrite them) and copies with memcpy. A span of its bytes is what the parsers take.
class ByteBuffer {
  public:
    ByteBuffer() = default;
    ByteBuffer(ByteBuffer&& other) noexcept { *this = std::move(other); }
    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        return *this;
    }

    std::uint8_t* data() { return data_.get(); }
    const std::uint8_t* data() const { return data_.get(); }
    std::uint8_t* begin() { return data(); }
    std::uint8_t* end() { return data() + size_; }
    const std::uint8_t* begin() const { return data(); }
    const std::uint8_t* end() const { return data() + size_; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    void clear() { size_ = 0; }

    // Grows to `size` bytes; bytes beyond the old size are uninitialized.
    void resize(std::size_t size) {
        reserve(size);
        size_ = size;
    }
    void append(std::span<const std::uint8_t> bytes) {
        if (bytes.empty()) {
            return;
        }
        reserve(std::max(size_ + bytes.size(), 2 * capacity_));
        std::memcpy(data_.get() + size_, bytes.data(), bytes.size());
        size_ += bytes.size();
    }
    // Replaces the contents; `bytes` may lie within this buffer.
    void assign(std::span<const std::uint8_t> bytes) {
        if (bytes.size() > capacity_) {
            ByteBuffer fresh;
            fresh.reserve(bytes.size());
            std::memcpy(fresh.data(), bytes.data(), bytes.size());
            fresh.size_ = bytes.size();
            *this = std::move(fresh);
            return;
        }
        if (!bytes.empty()) {
            std::memmove(data_.get(), bytes.data(), bytes.size());
        }
        size_ = bytes.size();
    }
    void reserve(std::size_t capacity) {
        if (capacity <= capacity_) {
            return;
        }
        auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
        if (size_ > 0) {
            std::memcpy(fresh.get(), data_.get(), size_);
        }
        data_ = std::move(fresh);
        capacity_ = capacity;
    }

  private:
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace busgate::util
