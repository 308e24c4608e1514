// org.busgate.Endpoints1, the driver's table for container endpoints (endpoints_interface.cpp).
#pragma once

#include <string_view>

#include "bus/driver.h"

namespace busgate::bus {

inline constexpr std::string_view endpoints_interface_name = "org.busgate.Endpoints1";

extern const Driver::Interface endpoints_interface_table;

}  // namespace busgate::bus
