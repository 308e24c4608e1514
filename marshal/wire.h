// Private helpers: loading and storing integers in either byte order from unaligned buffers.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "busgate/marshal/types.h"

namespace busgate::marshal::wire {

template <std::size_t Size>
using UnsignedOfSize =
    std::conditional_t<Size == 2, std::uint16_t, std::conditional_t<Size == 4, std::uint32_t, std::uint64_t>>;

template <typename U>
inline U byteswap(U value) {
    if constexpr (sizeof(U) == 2) {
        return static_cast<U>(__builtin_bswap16(value));
    } else if constexpr (sizeof(U) == 4) {
        return __builtin_bswap32(value);
    } else {
        return __builtin_bswap64(value);
    }
}

template <typename T>
inline T load(const std::uint8_t* p, ByteOrder order) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    if constexpr (sizeof(T) > 1) {
        if (order != native_byte_order) {
            value = std::bit_cast<T>(byteswap(std::bit_cast<UnsignedOfSize<sizeof(T)>>(value)));
        }
    }
    return value;
}

template <typename T>
inline void store(std::uint8_t* p, T value, ByteOrder order) {
    if constexpr (sizeof(T) > 1) {
        if (order != native_byte_order) {
            value = std::bit_cast<T>(byteswap(std::bit_cast<UnsignedOfSize<sizeof(T)>>(value)));
        }
    }
    std::memcpy(p, &value, sizeof(T));
}

inline std::uint32_t load_u32(const std::uint8_t* p, ByteOrder order) {
    return load<std::uint32_t>(p, order);
}

}  // namespace busgate::marshal::wire
