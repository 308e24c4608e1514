// /metrics: a bus snapshot in the OpenMetrics text format (which Prometheus also reads). Counters come
// from bus::BusCounters, which are never reset, so a scraper never sees one go backwards across a reload.
#pragma once

#include <string>

#include "web/web_hub.h"

namespace busgate::web {

inline constexpr std::string_view openmetrics_content_type =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

std::string render_openmetrics(const bus::BusSnapshot& snapshot);

}  // namespace busgate::web
