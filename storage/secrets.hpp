#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ib::storage {

using sha256_digest = std::array<std::uint8_t, 32>;

/// Fills `out` from OpenSSL's CSPRNG (RAND_bytes). A CSPRNG failure cannot be worked around
/// safely, so it prints a message (without data) and aborts the process.
void fill_random(std::span<std::uint8_t> out) noexcept;

/// Prints `<what> failed` to stderr and aborts: for OpenSSL failures that leave no safe way on
/// (the CSPRNG, a digest or cipher context that cannot be allocated). Never pass data in `what`.
[[noreturn]] void crypto_fatal(const char* what) noexcept;

/// `n` characters of [0-9A-Za-z] from the CSPRNG (RAND_bytes, rejection-sampled: no modulo bias).
std::string random_base62(std::size_t n);

/// A new gateway key: `ib_` + 32 base62 characters.
std::string new_gateway_key();

/// True if `key` has the gateway key shape (`ib_` + 32 base62).
bool is_gateway_key_shape(std::string_view key) noexcept;

/// A new id such as `usr_` + 24 base62 characters.
std::string new_id(std::string_view prefix);

/// SHA-256 of `data`.
sha256_digest sha256(std::string_view data) noexcept;

/// The key hint shown by the API: `sk-…wxyz` (a short prefix up to the first `-`/`_` within the
/// first 8 characters, an ellipsis, the last 4 characters); shorter keys reveal less.
std::string key_hint(std::string_view key);

}  // namespace ib::storage
