// The listener's TLS context from PEM files: what fails, and that the message names the file.
#include "http/tls_context.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
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

}  // namespace
}  // namespace ib::http
