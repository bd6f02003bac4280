#include "storage/data_dir.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <sys/stat.h>

namespace ib::storage {

namespace {

std::string errno_text(int err) {
  return std::string{std::strerror(err)};
}

}  // namespace

std::string strip_trailing_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  return dir;
}

result<void> ensure_private_dir(const std::string& dir) {
  if (dir.empty()) {
    return error{errc::invalid_request, "data dir: empty path"};
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return error{errc::storage, "data dir " + dir + ": not a directory"};
    }
    return {};
  }
  if (errno != ENOENT) {
    return error{errc::storage, "data dir " + dir + ": " + errno_text(errno)};
  }
  const std::filesystem::path parent = std::filesystem::path{dir}.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return error{errc::storage, "data dir " + dir + ": " + ec.message()};
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return error{errc::storage, "data dir " + dir + ": " + errno_text(errno)};
  }
  return {};
}

}  // namespace ib::storage
