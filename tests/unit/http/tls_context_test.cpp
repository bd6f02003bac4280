// The listener's TLS context from PEM files: what fails, and that the message names the file.
// The upstream side's system trust store: what is read up front, and that it verifies as before.
#include "http/tls_context.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

namespace ib::http {
namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path()
              / ("ib-tls-test-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream{path} << text;
  return path.string();
}

TEST(TlsContext, AMissingFileIsNamed) {
  auto ctx = make_server_tls_context("/nonexistent/c.pem", "/nonexistent/k.pem");
  ASSERT_FALSE(ctx);
  EXPECT_NE(ctx.error().message.find("certificate file /nonexistent/c.pem"), std::string::npos)
      << ctx.error().message;
}

TEST(TlsContext, AFileThatIsNoPemIsNamed) {
  auto cert = temp_file("cert.pem", "not a certificate\n");
  auto key = temp_file("key.pem", "not a key\n");
  auto ctx = make_server_tls_context(cert, key);
  ASSERT_FALSE(ctx);
  EXPECT_NE(ctx.error().message.find(cert), std::string::npos) << ctx.error().message;
  std::filesystem::remove(cert);
  std::filesystem::remove(key);
}

/// The certificates `ctx`'s store holds now (those read up front).
int loaded_certificates(boost::asio::ssl::context& ctx) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  int n = 0;
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objects, i)) == X509_LU_X509) {
      ++n;
    }
  }
  return n;
}

/// Whether `cert` verifies against `ctx`'s trust store (as a chain of itself).
bool verifies(boost::asio::ssl::context& ctx, X509* cert) {
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> vctx{X509_STORE_CTX_new(),
                                                                       &X509_STORE_CTX_free};
  if (X509_STORE_CTX_init(vctx.get(), SSL_CTX_get_cert_store(ctx.native_handle()), cert, nullptr)
      != 1) {
    return false;
  }
  // Trust, not validity dates: the first root of the system bundle may have expired.
  X509_STORE_CTX_set_flags(vctx.get(), X509_V_FLAG_NO_CHECK_TIME);
  return X509_verify_cert(vctx.get()) == 1;
}

/// A fresh self-signed certificate (a CA nobody trusts).
std::unique_ptr<X509, decltype(&X509_free)> self_signed() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_EC_gen("P-256"), &EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), &X509_free};
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ib test root"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

/// The first certificate of OpenSSL's default CA file, or null when there is none.
std::unique_ptr<X509, decltype(&X509_free)> first_system_root() {
  std::unique_ptr<FILE, decltype(&std::fclose)> f{std::fopen(X509_get_default_cert_file(), "r"),
                                                  &std::fclose};
  X509* cert = f ? PEM_read_X509(f.get(), nullptr, nullptr, nullptr) : nullptr;
  return {cert, &X509_free};
}

/// Sets (or with null, unsets) an environment variable for the life of the guard.
class env_guard {
 public:
  env_guard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~env_guard() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(SystemTrustStore, ReadsNoCertificateUpFrontAndVerifiesSystemRootsAsBefore) {
  // OpenSSL's defaults alone, as on a server whose environment sets neither.
  env_guard file{X509_get_default_cert_file_env(), nullptr};
  env_guard dir{X509_get_default_cert_dir_env(), nullptr};
  auto root = first_system_root();
  if (!root) {
    GTEST_SKIP() << "no system CA file at " << X509_get_default_cert_file();
  }
  boost::asio::ssl::context lazy{boost::asio::ssl::context::tls_client};
  use_system_trust_store(lazy);
  boost::asio::ssl::context eager{boost::asio::ssl::context::tls_client};
  eager.set_default_verify_paths();
  // The default store parses the whole bundle; with a hashed directory nothing is read yet.
  EXPECT_GT(loaded_certificates(eager), 0);
  if (loaded_certificates(lazy) != 0) {
    GTEST_SKIP() << X509_get_default_cert_dir() << " holds no hashed names: the bundle is read";
  }
  // The same verdicts: a system root verifies, a stranger's self-signed certificate does not.
  EXPECT_TRUE(verifies(eager, root.get()));
  EXPECT_TRUE(verifies(lazy, root.get()));
  // Read on demand: the one it needed (and any other under the same hash), not the bundle.
  EXPECT_GE(loaded_certificates(lazy), 1);
  EXPECT_LT(loaded_certificates(lazy), loaded_certificates(eager));
  auto stranger = self_signed();
  EXPECT_FALSE(verifies(eager, stranger.get()));
  EXPECT_FALSE(verifies(lazy, stranger.get()));
}

TEST(SystemTrustStore, HonoursSslCertFile) {
  auto trusted = self_signed();
  auto pem_path = std::filesystem::temp_directory_path()
                  / ("ib-tls-test-" + std::to_string(::getpid()) + "-root.pem");
  {
    std::unique_ptr<FILE, decltype(&std::fclose)> f{std::fopen(pem_path.c_str(), "w"),
                                                    &std::fclose};
    ASSERT_TRUE(f);
    ASSERT_EQ(PEM_write_X509(f.get(), trusted.get()), 1);
  }
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_client};
  {
    env_guard file{X509_get_default_cert_file_env(), pem_path.c_str()};
    env_guard dir{X509_get_default_cert_dir_env(), nullptr};
    use_system_trust_store(ctx);
  }
  EXPECT_TRUE(verifies(ctx, trusted.get()));
  auto stranger = self_signed();
  EXPECT_FALSE(verifies(ctx, stranger.get()));
  std::filesystem::remove(pem_path);
}

}  // namespace
}  // namespace ib::http
