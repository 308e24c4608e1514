// The lines of busgate-dbus-proxy --log, in xdg-dbus-proxy's form: "C<serial>: -> ..." for what a sandboxed
// client sends, "B<serial>: <- ..." for what it receives, and "*DENIED*" / "*HIDDEN*" (with " (ping)" when
// the client waits for the answer) for what the bus refused it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "busgate/marshal/message.h"

namespace busgate::bus {

std::string outgoing_log_line(const marshal::MessageHeader& header);
std::string incoming_log_line(const marshal::MessageHeader& header);
// The verdict for a refusal with `error_name` of `refused`; nothing for an error that is no filtering
// decision.
std::optional<std::string> verdict_log_line(std::string_view error_name,
                                            const marshal::MessageHeader& refused);

}  // namespace busgate::bus
