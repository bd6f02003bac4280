#include "storage/secrets.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace ib::storage {

namespace {

constexpr std::string_view base62_alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// 248 = 4 * 62: bytes at or above it are rejected, so `b % 62` is uniform.
constexpr unsigned base62_reject_from = 248;

constexpr std::string_view gateway_key_prefix = "ib_";
constexpr std::size_t gateway_key_random_chars = 32;
constexpr std::size_t id_random_chars = 24;

bool is_base62(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool is_printable_ascii(char c) noexcept {
  return c >= 0x21 && c <= 0x7e;
}

}  // namespace

[[noreturn]] void crypto_fatal(const char* what) noexcept {
  std::fprintf(stderr, "inferbridge: fatal: %s failed; refusing to continue\n", what);
  std::abort();
}

void fill_random(std::span<std::uint8_t> out) noexcept {
  // RAND_bytes takes an int length: fill in bounded chunks.
  constexpr std::size_t chunk = std::size_t{1} << 20;
  for (std::size_t off = 0; off < out.size(); off += chunk) {
    const std::size_t n = std::min(chunk, out.size() - off);
    if (RAND_bytes(out.data() + off, static_cast<int>(n)) != 1) {
      crypto_fatal("RAND_bytes");
    }
  }
}

std::string random_base62(std::size_t n) {
  std::string out;
  out.reserve(n);
  std::array<std::uint8_t, 64> buf{};
  while (out.size() < n) {
    fill_random(buf);
    for (std::uint8_t b : buf) {
      if (b >= base62_reject_from) {
        continue;
      }
      out.push_back(base62_alphabet[b % base62_alphabet.size()]);
      if (out.size() == n) {
        break;
      }
    }
  }
  return out;
}

std::string new_gateway_key() {
  return std::string{gateway_key_prefix} + random_base62(gateway_key_random_chars);
}

bool is_gateway_key_shape(std::string_view key) noexcept {
  if (key.size() != gateway_key_prefix.size() + gateway_key_random_chars
      || !key.starts_with(gateway_key_prefix)) {
    return false;
  }
  for (char c : key.substr(gateway_key_prefix.size())) {
    if (!is_base62(c)) {
      return false;
    }
  }
  return true;
}

std::string new_id(std::string_view prefix) {
  return std::string{prefix} + random_base62(id_random_chars);
}

sha256_digest sha256(std::string_view data) noexcept {
  // Every authenticated request hashes its key: fetch the algorithm once (OpenSSL 3's implicit
  // fetch inside EVP_Digest costs more than the hash of a short key) and reuse a context per
  // thread.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ctx_holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~ctx_holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local ctx_holder holder;
  sha256_digest out{};
  unsigned int len = 0;
  if (md == nullptr || holder.ctx == nullptr || EVP_DigestInit_ex(holder.ctx, md, nullptr) != 1
      || EVP_DigestUpdate(holder.ctx, data.data(), data.size()) != 1
      || EVP_DigestFinal_ex(holder.ctx, out.data(), &len) != 1 || len != out.size()) {
    crypto_fatal("SHA-256");
  }
  return out;
}

std::string key_hint(std::string_view key) {
  static constexpr std::string_view ellipsis = "\xE2\x80\xA6";  // U+2026 "…"
  static constexpr std::size_t max_prefix = 8;
  static constexpr std::size_t suffix_len = 4;
  static constexpr std::size_t min_hidden = 8;
  static constexpr std::size_t short_key = 12;

  // Only printable ASCII is ever echoed: anything else could be a broken UTF-8 sequence.
  for (char c : key) {
    if (!is_printable_ascii(c)) {
      return std::string{ellipsis};
    }
  }
  std::string out;
  if (key.size() < short_key) {
    // Short keys: at most a quarter of the key, and never more than 2 characters.
    const std::size_t reveal = std::min<std::size_t>(2, key.size() / 4);
    out.append(ellipsis);
    out.append(key.substr(key.size() - reveal));
    return out;
  }
  // The prefix runs up to and including the first '-' or '_' inside the first 8 characters,
  // and is shown only when at least `min_hidden` characters stay hidden.
  std::size_t prefix_len = 0;
  const std::size_t sep = key.substr(0, max_prefix).find_first_of("-_");
  if (sep != std::string_view::npos && sep > 0 && key.size() >= sep + 1 + suffix_len + min_hidden) {
    prefix_len = sep + 1;
  }
  out.append(key.substr(0, prefix_len));
  out.append(ellipsis);
  out.append(key.substr(key.size() - suffix_len));
  return out;
}

}  // namespace ib::storage
