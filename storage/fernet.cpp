#include "storage/fernet.hpp"

#include <algorithm>
#include <ctime>
#include <limits>
#include <memory>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/text.hpp"
#include "storage/secrets.hpp"

namespace ib::storage {

namespace {

// -- layout of a token: version | timestamp | IV | ciphertext | HMAC --------------------------

constexpr std::uint8_t fernet_version = 0x80;
constexpr std::size_t ts_size = 8;
constexpr std::size_t iv_size = 16;
constexpr std::size_t block_size = 16;
constexpr std::size_t mac_size = 32;
constexpr std::size_t header_size = 1 + ts_size + iv_size;
constexpr std::size_t min_token_size = header_size + block_size + mac_size;
constexpr std::size_t key_size = 32;

// EVP update calls take int lengths: feed them in bounded chunks.
constexpr std::size_t evp_chunk = std::size_t{1} << 30;

// -- url-safe base64 (RFC 4648 §5), with padding, strict and canonical -------------------------

constexpr std::string_view b64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_b64_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& x : t) {
    x = -1;
  }
  for (std::size_t i = 0; i < b64_alphabet.size(); ++i) {
    t[static_cast<unsigned char>(b64_alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}

constexpr auto b64_table = make_b64_table();

std::string b64_encode(std::span<const std::uint8_t> in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    out.push_back(b64_alphabet[(v >> 18) & 63]);
    out.push_back(b64_alphabet[(v >> 12) & 63]);
    out.push_back(b64_alphabet[(v >> 6) & 63]);
    out.push_back(b64_alphabet[v & 63]);
  }
  const std::size_t rest = in.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{in[i]} << 16;
    out.push_back(b64_alphabet[(v >> 18) & 63]);
    out.push_back(b64_alphabet[(v >> 12) & 63]);
    out.append("==");
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8);
    out.push_back(b64_alphabet[(v >> 18) & 63]);
    out.push_back(b64_alphabet[(v >> 12) & 63]);
    out.push_back(b64_alphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

/// Decodes padded url-safe base64. Rejects other characters, missing or misplaced padding and
/// non-zero unused bits, so each byte string has exactly one accepted encoding.
std::optional<std::vector<std::uint8_t>> b64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t pad = 0;
  if (in.back() == '=') {
    pad = in[in.size() - 2] == '=' ? 2 : 1;
  }
  std::vector<std::uint8_t> out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const std::size_t data_chars = last ? 4 - pad : 4;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      std::uint32_t six = 0;
      if (j < data_chars) {
        const std::int8_t d = b64_table[static_cast<unsigned char>(in[i + j])];
        if (d < 0) {
          return std::nullopt;
        }
        six = static_cast<std::uint32_t>(d);
      }
      v = (v << 6) | six;
    }
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    if (data_chars == 2) {
      if ((v & 0xffff) != 0) {
        return std::nullopt;
      }
      continue;
    }
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    if (data_chars == 3) {
      if ((v & 0xff) != 0) {
        return std::nullopt;
      }
      continue;
    }
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

// -- OpenSSL helpers --------------------------------------------------------------------------

std::array<std::uint8_t, mac_size> hmac_sha256(const std::array<std::uint8_t, 16>& key,
                                               std::span<const std::uint8_t> data) {
  std::array<std::uint8_t, mac_size> out{};
  std::size_t len = 0;
  static constexpr char digest[] = "SHA256";
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key.data(), key.size(), data.data(),
                data.size(), out.data(), out.size(), &len)
          == nullptr
      || len != out.size()) {
    crypto_fatal("EVP_Q_mac(HMAC-SHA256)");
  }
  return out;
}

struct cipher_ctx_deleter {
  void operator()(EVP_CIPHER_CTX* p) const noexcept { EVP_CIPHER_CTX_free(p); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

cipher_ctx new_cipher_ctx() {
  cipher_ctx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) {
    crypto_fatal("EVP_CIPHER_CTX_new");
  }
  return ctx;
}

/// AES-128-CBC with PKCS#7 padding; appends the ciphertext to `out`.
void aes_cbc_encrypt(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t, 16> iv,
                     std::string_view plain, std::vector<std::uint8_t>& out) {
  auto ctx = new_cipher_ctx();
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_cbc(), nullptr, key.data(), iv.data()) != 1) {
    crypto_fatal("EVP_EncryptInit_ex");
  }
  const std::size_t start = out.size();
  out.resize(start + plain.size() + block_size);
  std::size_t written = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(plain.data());
  for (std::size_t off = 0; off < plain.size(); off += evp_chunk) {
    const std::size_t n = std::min(evp_chunk, plain.size() - off);
    int len = 0;
    if (EVP_EncryptUpdate(ctx.get(), out.data() + start + written, &len, in + off,
                          static_cast<int>(n))
        != 1) {
      crypto_fatal("EVP_EncryptUpdate");
    }
    written += static_cast<std::size_t>(len);
  }
  int len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + start + written, &len) != 1) {
    crypto_fatal("EVP_EncryptFinal_ex");
  }
  written += static_cast<std::size_t>(len);
  out.resize(start + written);
}

/// Decrypts AES-128-CBC and strips PKCS#7 padding; nullopt when the padding is wrong.
std::optional<std::string> aes_cbc_decrypt(const std::array<std::uint8_t, 16>& key,
                                           std::span<const std::uint8_t> iv,
                                           std::span<const std::uint8_t> cipher) {
  auto ctx = new_cipher_ctx();
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_128_cbc(), nullptr, key.data(), iv.data()) != 1) {
    crypto_fatal("EVP_DecryptInit_ex");
  }
  std::string out(cipher.size() + block_size, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  std::size_t written = 0;
  for (std::size_t off = 0; off < cipher.size(); off += evp_chunk) {
    const std::size_t n = std::min(evp_chunk, cipher.size() - off);
    int len = 0;
    if (EVP_DecryptUpdate(ctx.get(), dst + written, &len, cipher.data() + off, static_cast<int>(n))
        != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return std::nullopt;
    }
    written += static_cast<std::size_t>(len);
  }
  int len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), dst + written, &len) != 1) {
    // Don't leave the partial plaintext lying around in freed memory.
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  written += static_cast<std::size_t>(len);
  out.resize(written);
  return out;
}

/// True when a > b + c, without overflow.
bool exceeds_sum(std::int64_t a, std::int64_t b, std::int64_t c) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(b, c, &sum)) {
    return c < 0;  // b + c is below INT64_MIN (then a exceeds it) or above INT64_MAX (then not)
  }
  return a > sum;
}

std::int64_t now_unix() noexcept {
  return static_cast<std::int64_t>(std::time(nullptr));
}

error token_error(std::string message) {
  return error{errc::crypto, std::move(message)};
}

/// How far decrypting with one key got: a malformed token fails the same way under every key;
/// once the signature matched, the key is the token's key and any later failure is final.
enum class stage : std::uint8_t { malformed, bad_signature, verified };

struct attempt {
  result<std::string> plain;
  stage reached;
};

constexpr std::int64_t default_clock_skew_s = 60;

attempt decrypt_with(const fernet_key& key, std::string_view token, std::int64_t now,
                     std::optional<std::int64_t> ttl_s, std::int64_t max_clock_skew_s) {
  auto raw = b64_decode(token);
  if (!raw) {
    return {token_error("fernet: token is not valid url-safe base64"), stage::malformed};
  }
  const std::vector<std::uint8_t>& data = *raw;
  if (data.size() < min_token_size || (data.size() - header_size - mac_size) % block_size != 0) {
    return {token_error("fernet: token has an invalid length"), stage::malformed};
  }
  if (data[0] != fernet_version) {
    return {token_error("fernet: unknown token version"), stage::malformed};
  }
  const std::size_t signed_size = data.size() - mac_size;
  const auto mac = hmac_sha256(key.signing, std::span{data.data(), signed_size});
  if (CRYPTO_memcmp(mac.data(), data.data() + signed_size, mac_size) != 0) {
    return {token_error("fernet: token signature does not verify"), stage::bad_signature};
  }
  std::uint64_t ts_raw = 0;
  for (std::size_t i = 0; i < ts_size; ++i) {
    ts_raw = (ts_raw << 8) | data[1 + i];
  }
  if (ts_raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return {token_error("fernet: token timestamp is too far in the future"), stage::verified};
  }
  const auto ts = static_cast<std::int64_t>(ts_raw);
  // As Python's `cryptography`: the timestamp is only checked when the caller gives a TTL. A
  // stored key (no TTL) written on a clock running ahead of ours must still decrypt (design §6).
  if (ttl_s && exceeds_sum(ts, now, max_clock_skew_s)) {
    return {token_error("fernet: token timestamp is too far in the future"), stage::verified};
  }
  if (ttl_s && exceeds_sum(now, ts, *ttl_s)) {
    return {token_error("fernet: token has expired"), stage::verified};
  }
  auto plain = aes_cbc_decrypt(key.encryption, std::span{data.data() + 1 + ts_size, iv_size},
                               std::span{data.data() + header_size, signed_size - header_size});
  if (!plain) {
    return {token_error("fernet: token padding is invalid"), stage::verified};
  }
  return {std::move(*plain), stage::verified};
}

}  // namespace

result<fernet_key> parse_fernet_key(std::string_view text) {
  auto raw = b64_decode(trim(text));
  if (!raw || raw->size() != key_size) {
    if (raw) {
      OPENSSL_cleanse(raw->data(), raw->size());
    }
    return error{errc::invalid_request,
                 "not a valid Fernet key (expected 44 characters of url-safe base64 encoding "
                 "32 bytes)"};
  }
  fernet_key key;
  std::copy_n(raw->begin(), 16, key.signing.begin());
  std::copy_n(raw->begin() + 16, 16, key.encryption.begin());
  OPENSSL_cleanse(raw->data(), raw->size());
  return key;
}

std::string encode_fernet_key(const fernet_key& key) {
  std::array<std::uint8_t, key_size> raw{};
  std::copy(key.signing.begin(), key.signing.end(), raw.begin());
  std::copy(key.encryption.begin(), key.encryption.end(), raw.begin() + 16);
  std::string out = b64_encode(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

fernet_key generate_fernet_key() {
  fernet_key key;
  fill_random(key.signing);
  fill_random(key.encryption);
  return key;
}

std::string fernet_encrypt(const fernet_key& key, std::string_view plain,
                           std::span<const std::uint8_t, 16> iv, std::int64_t unix_time) {
  std::vector<std::uint8_t> data;
  data.reserve(header_size + plain.size() + block_size + mac_size);
  data.push_back(fernet_version);
  const auto ts = static_cast<std::uint64_t>(unix_time);
  for (std::size_t i = 0; i < ts_size; ++i) {
    data.push_back(static_cast<std::uint8_t>(ts >> (8 * (ts_size - 1 - i))));
  }
  data.insert(data.end(), iv.begin(), iv.end());
  aes_cbc_encrypt(key.encryption, iv, plain, data);
  const auto mac = hmac_sha256(key.signing, data);
  data.insert(data.end(), mac.begin(), mac.end());
  return b64_encode(data);
}

std::string fernet_encrypt(const fernet_key& key, std::string_view plain) {
  std::array<std::uint8_t, iv_size> iv{};
  fill_random(iv);
  return fernet_encrypt(key, plain, iv, now_unix());
}

result<std::string> fernet_decrypt(const fernet_key& key, std::string_view token,
                                   std::int64_t now_unix, std::optional<std::int64_t> ttl_s,
                                   std::int64_t max_clock_skew_s) {
  return decrypt_with(key, token, now_unix, ttl_s, max_clock_skew_s).plain;
}

// -- fernet_keyring ---------------------------------------------------------------------------

fernet_keyring::fernet_keyring(std::vector<fernet_key> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) {
    throw std::invalid_argument("fernet_keyring: at least one key is required");
  }
}

std::string fernet_keyring::encrypt(std::string_view plain) const {
  return fernet_encrypt(keys_.front(), plain);
}

result<std::string> fernet_keyring::decrypt(std::string_view token) const {
  const std::int64_t now = now_unix();
  for (const auto& key : keys_) {
    auto a = decrypt_with(key, token, now, std::nullopt, default_clock_skew_s);
    if (a.reached != stage::bad_signature) {
      return std::move(a.plain);
    }
  }
  if (keys_.size() == 1) {
    return token_error("fernet: token signature does not verify");
  }
  return token_error("fernet: token does not verify under any master key");
}

std::optional<std::size_t> fernet_keyring::key_index(std::string_view token) const {
  const std::int64_t now = now_unix();
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    auto a = decrypt_with(keys_[i], token, now, std::nullopt, default_clock_skew_s);
    if (a.plain) {
      return i;
    }
    if (a.reached != stage::bad_signature) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace ib::storage
