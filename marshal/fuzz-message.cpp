// libFuzzer target for the message validator: any byte string is framed, parsed and validated; a
// valid message is then walked with BodyReader and re-stamped with a sender, which must validate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "busgate/marshal/message.h"
#include "busgate/marshal/reader.h"
#include "busgate/marshal/rewrite.h"

using namespace busgate::marshal;

namespace {

void walk(BodyReader& reader, int depth) {
    while (!reader.at_end() && !reader.failed()) {
        const char code = reader.peek();
        if (code == 'a' || code == '(' || code == '{' || code == 'v') {
            if (depth > 80 || !reader.enter()) {
                std::abort();  // validated data must be walkable, and within the nesting limit
            }
            walk(reader, depth + 1);
            reader.leave();
        } else if (!reader.skip()) {
            std::abort();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const FrameSize frame = frame_size(input);
    MessageHeader header;
    if (parse_message(input, header) != Validity::valid) {
        return 0;
    }
    if (frame.validity != Validity::valid || frame.total != size) {
        std::abort();
    }
    BodyReader reader(input, header);
    walk(reader, 0);
    if (reader.failed()) {
        std::abort();
    }

    std::vector<std::uint8_t> stamped;
    rewrite_header_with_sender(input, header, ":1.42", stamped);
    const auto body = body_of(input, header);
    stamped.insert(stamped.end(), body.begin(), body.end());
    MessageHeader stamped_header;
    if (parse_message(stamped, stamped_header) != Validity::valid || stamped_header.sender != ":1.42" ||
        stamped_header.serial != header.serial || stamped_header.signature != header.signature) {
        std::abort();
    }
    return 0;
}
