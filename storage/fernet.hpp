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

// Fernet tokens as the Fernet spec defines them (github.com/fernet/spec, Spec.md) and Python's
// `cryptography.fernet` reads and writes them (design §6): url-safe base64 (RFC 4648 §5, padded)
// of version 0x80 | timestamp (8 bytes, big-endian Unix seconds) | IV (16) | AES-128-CBC
// ciphertext with PKCS#7 padding | HMAC-SHA256 (32) over everything before it. The functions are
// thread-safe; an OpenSSL failure that leaves no safe way on aborts (`crypto_fatal`).

/// A Fernet key: the first 16 bytes sign (HMAC-SHA256), the last 16 encrypt (AES-128-CBC).
struct fernet_key {
  std::array<std::uint8_t, 16> signing{};     ///< bytes 0..15 of the 32-byte key
  std::array<std::uint8_t, 16> encryption{};  ///< bytes 16..31
};

/// Parses a key as `Fernet.generate_key()` writes it (32 bytes, url-safe base64 with padding:
/// 44 characters; surrounding spaces, tabs, CR and LF are ignored). Strict: other characters and
/// non-canonical encodings are refused. errc::invalid_request otherwise; the message never holds
/// the text.
result<fernet_key> parse_fernet_key(std::string_view text);

/// The url-safe base64 form of `key` (44 characters, padded), as `parse_fernet_key` reads it.
std::string encode_fernet_key(const fernet_key& key);

/// A new random key (RAND_bytes; aborts if the CSPRNG fails).
fernet_key generate_fernet_key();

/// Encrypts `plain` into a Fernet token with the given IV and time (`unix_time` in Unix
/// seconds, written as an unsigned 64-bit value: a negative time reads back as far in the
/// future). Deterministic, for the spec's test vectors; never fails.
std::string fernet_encrypt(const fernet_key& key, std::string_view plain,
                           std::span<const std::uint8_t, 16> iv, std::int64_t unix_time);

/// Encrypts with a random IV (RAND_bytes) and the current wall-clock time (`std::time`).
std::string fernet_encrypt(const fernet_key& key, std::string_view plain);

/// Decrypts and verifies a token: checks base64, length, version, the HMAC (in constant time,
/// before decrypting), with `ttl_s` that the timestamp is neither more than `max_clock_skew_s`
/// ahead of `now_unix` nor older than `ttl_s`, and the padding (all times in Unix seconds; no
/// overflow at any value). Like Python's `cryptography`, no `ttl_s` means no timestamp check (the
/// Fernet spec makes the age check optional; a stored token has no age limit). Every failure is
/// errc::crypto with a message naming the check that failed (never the plaintext).
result<std::string> fernet_decrypt(const fernet_key& key, std::string_view token,
                                   std::int64_t now_unix,
                                   std::optional<std::int64_t> ttl_s = std::nullopt,
                                   std::int64_t max_clock_skew_s = 60);

/// Master keys for rotation (design §6): encrypt with the first, decrypt with any. Immutable
/// after construction, so one keyring may be shared by threads (the key actor, start-up checks).
class fernet_keyring {
 public:
  /// Throws std::invalid_argument when `keys` is empty (a start-up error, not a data-plane one).
  explicit fernet_keyring(std::vector<fernet_key> keys);
  /// `fernet_encrypt` with the first key (random IV, current time).
  std::string encrypt(std::string_view plain) const;
  /// `fernet_decrypt` at the current time, no TTL (so no timestamp check), trying the keys in order
  /// until one's HMAC verifies; that key's verdict is final. errc::crypto when the token is
  /// malformed, when no key's HMAC verifies, or when the verifying key finds it bad (timestamp,
  /// padding).
  result<std::string> decrypt(std::string_view token) const;
  /// Index of the key that decrypts `token`, if any (nullopt also when the token is malformed or
  /// fails after its HMAC verified).
  std::optional<std::size_t> key_index(std::string_view token) const;
  /// The keys, the encrypting one first.
  const std::vector<fernet_key>& keys() const noexcept { return keys_; }

 private:
  std::vector<fernet_key> keys_;
};

}  // namespace ib::storage
