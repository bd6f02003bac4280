#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace ib::storage {

/// A Fernet key: the first 16 bytes sign (HMAC-SHA256), the last 16 encrypt (AES-128-CBC).
struct fernet_key {
  std::array<std::uint8_t, 16> signing{};
  std::array<std::uint8_t, 16> encryption{};
};

/// Parses a key as `Fernet.generate_key()` writes it (32 bytes, url-safe base64 with padding;
/// surrounding whitespace is ignored).
result<fernet_key> parse_fernet_key(std::string_view text);

/// The url-safe base64 form of `key` (44 characters).
std::string encode_fernet_key(const fernet_key& key);

/// A new random key (RAND_bytes).
fernet_key generate_fernet_key();

/// Encrypts `plain` into a Fernet token with the given IV and time (pure; for tests).
std::string fernet_encrypt(const fernet_key& key, std::string_view plain,
                           std::span<const std::uint8_t, 16> iv, std::int64_t unix_time);

/// Encrypts with a random IV (RAND_bytes) and the current time.
std::string fernet_encrypt(const fernet_key& key, std::string_view plain);

/// Decrypts and verifies a token: checks version, length, base64, the HMAC (in constant time,
/// before decrypting), padding, and that the timestamp is not more than `max_clock_skew_s`
/// ahead of `now_unix`; with `ttl_s`, also that it is not older than that.
result<std::string> fernet_decrypt(const fernet_key& key, std::string_view token,
                                   std::int64_t now_unix,
                                   std::optional<std::int64_t> ttl_s = std::nullopt,
                                   std::int64_t max_clock_skew_s = 60);

/// Master keys for rotation: encrypt with the first, decrypt with any.
class fernet_keyring {
 public:
  /// Throws std::invalid_argument when `keys` is empty (a start-up error, not a data-plane one).
  explicit fernet_keyring(std::vector<fernet_key> keys);
  std::string encrypt(std::string_view plain) const;
  result<std::string> decrypt(std::string_view token) const;
  /// Index of the key that decrypts `token`, if any.
  std::optional<std::size_t> key_index(std::string_view token) const;
  const std::vector<fernet_key>& keys() const noexcept { return keys_; }

 private:
  std::vector<fernet_key> keys_;
};

}  // namespace ib::storage
