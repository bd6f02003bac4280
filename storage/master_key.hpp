#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "storage/fernet.hpp"

namespace ib::storage {

/// Resolves the master keys (design §6): from `env_keys` (IB_MASTER_KEY's comma-separated values,
/// each as `parse_fernet_key` reads it) when given, else the one key in `<data_dir>/master.key`
/// (at most 1 KiB, surrounding whitespace ignored). On first start that file is created with
/// O_EXCL and mode 0600, holding one generated key and a newline, synced with its directory
/// before the call returns; a process that loses the race to create it reads the winner's file
/// instead (errc::invalid_request if the winner has not written it yet). The data dir is created
/// with mode 0700 if missing (`ensure_private_dir`). The first key encrypts, every key may
/// decrypt (rotation). errc::invalid_request for a malformed key, an oversized file or an empty
/// `data_dir`; errc::storage for a file or directory that cannot be read or written (a
/// half-written new file is removed). Errors name the offending key position or the file, never
/// a key's value. Blocking file I/O, for start-up (`run_gateway`, `rotate_master_key`).
result<std::vector<fernet_key>> load_master_keys(const std::vector<std::string>& env_keys,
                                                 const std::string& data_dir);

}  // namespace ib::storage
