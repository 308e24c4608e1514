#include "bus/peer.h"

#include <algorithm>

namespace busgate::bus {

const InstalledMatch* Peer::match(std::uint64_t cookie) const {
    for (const InstalledMatch& installed : matches) {
        if (installed.cookie == cookie) {
            return &installed;
        }
    }
    return nullptr;
}

}  // namespace busgate::bus
