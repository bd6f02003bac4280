#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ib::storage {

// Randomness and hashing for keys and ids (design §9: gateway keys come from a CSPRNG and are
// looked up by hash). Every function is thread-safe. None can fail: an OpenSSL failure aborts.

/// A SHA-256 digest: 32 raw bytes.
using sha256_digest = std::array<std::uint8_t, 32>;

/// Fills `out` from OpenSSL's CSPRNG (RAND_bytes). A CSPRNG failure cannot be worked around
/// safely, so it prints a message (without data) and aborts the process.
void fill_random(std::span<std::uint8_t> out) noexcept;

/// Prints `<what> failed` to stderr and aborts: for OpenSSL failures that leave no safe way on
/// (the CSPRNG, a digest or cipher context that cannot be allocated). Never pass data in `what`.
[[noreturn]] void crypto_fatal(const char* what) noexcept;

/// `n` characters of [0-9A-Za-z] from the CSPRNG (RAND_bytes, rejection-sampled: no modulo bias).
std::string random_base62(std::size_t n);

/// A new gateway key: `ib_` + 32 base62 characters (about 190 bits of entropy).
std::string new_gateway_key();

/// True if `key` has the gateway key shape (`ib_` + 32 base62), so that a malformed key can be
/// refused before it is hashed and looked up.
bool is_gateway_key_shape(std::string_view key) noexcept;

/// A new id: `prefix` + 24 base62 characters (e.g. `usr_…`).
std::string new_id(std::string_view prefix);

/// SHA-256 of `data` (FIPS 180-4). Reuses one digest context per thread.
sha256_digest sha256(std::string_view data) noexcept;

/// The key hint shown by the API, e.g. `sk-…wxyz` (UTF-8; `…` is U+2026). A key of 12 or more
/// characters shows the last 4, after a prefix up to and including the first `-` or `_` within
/// its first 8 characters (when that is not the key's first character and at least 8 characters
/// stay hidden). A shorter key shows at most its last 2 (a quarter of it, rounded down). A key
/// holding anything but printable ASCII shows nothing but `…`.
std::string key_hint(std::string_view key);

}  // namespace ib::storage
