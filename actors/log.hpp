#pragma once

#include <string_view>

namespace ib::actors {

/// Writes one line to stderr with a UTC timestamp, atomically with respect to other log lines.
/// Never pass request content, completions or keys.
void log_line(std::string_view line);

}  // namespace ib::actors
