#include "http/tls_context.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <boost/asio/ssl/context.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/error.hpp"

namespace ib::http {

namespace ssl = boost::asio::ssl;

namespace {

/// Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange and AEAD ciphers only (TLS 1.3
/// suites are OpenSSL's defaults, all of them fine).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

error tls_error(std::string what, const std::string& file, const std::string& why) {
  return error{errc::internal, "TLS: cannot use " + what + " " + file + ": " + why};
}

/// OpenSSL's reason for the last failure (and clears its queue).
std::string openssl_reason() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return "unknown OpenSSL error";
  }
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
}

bool readable(const std::string& file) {
  std::ifstream in{file, std::ios::binary};
  return in.good();
}

/// True for OpenSSL's hashed certificate names: eight hex digits, a dot, a decimal number
/// (`5ad8a5d6.0`; CRLs are `.r0`).
bool is_hashed_name(std::string_view name) {
  if (name.size() < 10 || name[8] != '.') {
    return false;
  }
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  for (std::size_t i = 0; i < 8; ++i) {
    if (!hex(name[i])) {
      return false;
    }
  }
  for (std::size_t i = 9; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') {
      return false;
    }
  }
  return true;
}

/// Whether `dir` holds at least one certificate under its hashed name.
bool has_hashed_certificates(const char* dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it{dir, ec};
  for (; !ec && it != fs::directory_iterator{}; it.increment(ec)) {
    if (is_hashed_name(it->path().filename().native())) {
      return true;
    }
  }
  return false;
}

}  // namespace

void use_system_trust_store(ssl::context& ctx) {
  const char* dir = X509_get_default_cert_dir();
  const bool overridden = std::getenv(X509_get_default_cert_file_env()) != nullptr
                          || std::getenv(X509_get_default_cert_dir_env()) != nullptr;
  if (!overridden && dir != nullptr && has_hashed_certificates(dir)
      && SSL_CTX_load_verify_locations(ctx.native_handle(), nullptr, dir) == 1) {
    return;
  }
  ERR_clear_error();
  ctx.set_default_verify_paths();
}

result<std::shared_ptr<ssl::context>> make_server_tls_context(const std::string& cert_file,
                                                              const std::string& key_file) {
  if (!readable(cert_file)) {
    return tls_error("certificate file", cert_file, "cannot read it");
  }
  if (!readable(key_file)) {
    return tls_error("key file", key_file, "cannot read it");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                                  | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
    return error{errc::internal, "TLS: cannot set the cipher list: " + openssl_reason()};
  }
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    ERR_clear_error();
    return tls_error("certificate file", cert_file, ec.message());
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    ERR_clear_error();
    return tls_error("key file", key_file, ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return tls_error("key file", key_file,
                     "it does not match the certificate (" + openssl_reason() + ")");
  }
  return ctx;
}

}  // namespace ib::http
