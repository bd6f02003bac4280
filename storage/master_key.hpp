#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "storage/fernet.hpp"

namespace ib::storage {

/// Resolves the master keys: from `env_keys` (IB_MASTER_KEY's comma-separated values) when given,
/// else `<data_dir>/master.key` (created with mode 0600 holding one generated key and a newline
/// on first start; the data dir is created with mode 0700 if missing). The first key encrypts,
/// every key may decrypt (rotation). errc::invalid_request for a malformed key, errc::storage for
/// a file that cannot be read or written; errors name the offending key position or the file,
/// never a key's value.
result<std::vector<fernet_key>> load_master_keys(const std::vector<std::string>& env_keys,
                                                 const std::string& data_dir);

}  // namespace ib::storage
