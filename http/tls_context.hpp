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

}  // namespace ib::http
