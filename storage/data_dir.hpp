#pragma once

#include <string>

#include "core/result.hpp"

namespace ib::storage {

/// `dir` without trailing slashes ("/" stays "/", "" stays ""), so that one directory has one
/// spelling.
std::string strip_trailing_slashes(std::string dir);

/// Creates the data directory `dir` with mode 0700 (less the umask) when it is missing, its
/// parents with the default mode; an existing directory (or a symlink to one) is left as it is,
/// mode included. errc::invalid_request for an empty path; errc::storage when `dir` is not a
/// directory, cannot be examined or cannot be created (the message names the path and the
/// system's reason).
result<void> ensure_private_dir(const std::string& dir);

}  // namespace ib::storage
