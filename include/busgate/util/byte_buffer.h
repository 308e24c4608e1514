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
//
// It may keep free bytes in front of its contents (headroom): the bus stamps SENDER into a message by
// moving the message's 16-byte fixed header back into them, so the rest, the body above all, stays
// where it was read.
class ByteBuffer {
  public:
    ByteBuffer() = default;
    ByteBuffer(ByteBuffer&& other) noexcept { *this = std::move(other); }
    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        data_ = std::move(other.data_);
        front_ = std::exchange(other.front_, 0);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        return *this;
    }

    std::uint8_t* data() { return data_.get() + front_; }
    const std::uint8_t* data() const { return data_.get() + front_; }
    std::uint8_t* begin() { return data(); }
    std::uint8_t* end() { return data() + size_; }
    const std::uint8_t* begin() const { return data(); }
    const std::uint8_t* end() const { return data() + size_; }
    std::size_t size() const { return size_; }
    // Room from data() on.
    std::size_t capacity() const { return capacity_ - front_; }
    bool empty() const { return size_ == 0; }
    void clear() { size_ = 0; }

    // Free bytes in front of data().
    std::size_t headroom() const { return front_; }
    // The contents start `count` bytes earlier, in the headroom (count <= headroom()); those bytes are
    // uninitialized.
    void grow_front(std::size_t count) {
        front_ -= count;
        size_ += count;
    }

    // Grows to `size` bytes; bytes beyond the old size are uninitialized.
    void resize(std::size_t size) {
        reserve(size);
        size_ = size;
    }
    void append(std::span<const std::uint8_t> bytes) {
        if (bytes.empty()) {
            return;
        }
        if (size_ + bytes.size() > capacity()) {
            reserve(std::max(size_ + bytes.size(), 2 * capacity()));
        }
        std::memcpy(data() + size_, bytes.data(), bytes.size());
        size_ += bytes.size();
    }
    // Replaces the contents, with `headroom` free bytes in front of them; `bytes` may lie within this
    // buffer.
    void assign(std::span<const std::uint8_t> bytes, std::size_t headroom = 0) {
        if (bytes.empty()) {
            // Nothing to hold allocates nothing: an idle connection's input buffer stays unallocated.
            if (capacity_ >= headroom) {
                front_ = headroom;
            }
            size_ = 0;
            return;
        }
        if (capacity_ < headroom || bytes.size() > capacity_ - headroom) {
            ByteBuffer fresh;
            fresh.data_ = std::make_unique_for_overwrite<std::uint8_t[]>(headroom + bytes.size());
            fresh.capacity_ = headroom + bytes.size();
            fresh.front_ = headroom;
            std::memcpy(fresh.data(), bytes.data(), bytes.size());
            fresh.size_ = bytes.size();
            *this = std::move(fresh);
            return;
        }
        std::memmove(data_.get() + headroom, bytes.data(), bytes.size());
        front_ = headroom;
        size_ = bytes.size();
    }
    // Room for `capacity` bytes from data() on; the headroom is kept.
    void reserve(std::size_t capacity) {
        if (capacity <= this->capacity()) {
            return;
        }
        auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(front_ + capacity);
        if (size_ > 0) {
            std::memcpy(fresh.get() + front_, data(), size_);
        }
        data_ = std::move(fresh);
        capacity_ = front_ + capacity;
    }

  private:
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t front_ = 0;  // headroom: where the contents start in data_
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;  // of data_, headroom included
};

}  // namespace busgate::util
