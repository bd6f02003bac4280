#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"

namespace boost::asio::ssl {
class context;
}

namespace ib::http {

/// A server-side TLS context from PEM files: the certificate chain `cert_file` and its private
/// key `key_file`. TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for 1.2 (the server's
/// order), no renegotiation, no compression, no session tickets (nothing to rotate). Fails
/// with errc::internal naming the file when one cannot be read or used, or when the key does
/// not match the certificate. Never puts key material in the message.
result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls_context(
    const std::string& cert_file, const std::string& key_file);

/// Makes `ctx` trust the system's CA store, as OpenSSL's default verify paths do, without
/// reading the whole bundle up front when it need not: when neither `SSL_CERT_FILE` nor
/// `SSL_CERT_DIR` is set and OpenSSL's default certificate directory holds certificates under
/// their subject-hash names (Debian's /etc/ssl/certs, kept by update-ca-certificates from the
/// same certificates as the bundle), only that directory is used, and a handshake reads just the
/// issuers it needs (the bundle parsed at start cost about 0.8 MB of heap and 1.7 MB of RSS);
/// otherwise both default locations, as `SSL_CTX_set_default_verify_paths`. Missing or
/// unreadable locations leave verification failing, never skipped; throws
/// boost::system::system_error only when OpenSSL cannot set the default locations at all.
void use_system_trust_store(boost::asio::ssl::context& ctx);

}  // namespace ib::http
