#include "storage/master_key.hpp"

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/data_dir.hpp"
#include "storage/secrets.hpp"

namespace ib::storage {

namespace {

/// Largest master.key we read: one key and a newline, with room for stray whitespace.
constexpr std::size_t max_master_key_file = 1024;

std::string errno_text(int err) {
  return std::string{std::strerror(err)};
}

result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return error{errc::storage, errno_text(errno)};
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

/// Makes a new directory entry durable.
void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

result<std::vector<fernet_key>> load_master_keys(const std::vector<std::string>& env_keys,
                                                 const std::string& data_dir) {
  std::vector<fernet_key> keys;
  if (!env_keys.empty()) {
    for (std::size_t i = 0; i < env_keys.size(); ++i) {
      auto k = parse_fernet_key(env_keys[i]);
      if (!k) {
        // Name the position only: the value is a secret even when it is malformed.
        return error{errc::invalid_request,
                     "IB_MASTER_KEY: key " + std::to_string(i + 1) + " of "
                         + std::to_string(env_keys.size())
                         + " is not a valid Fernet key (expected 44 characters of url-safe "
                           "base64 encoding 32 bytes)"};
      }
      keys.push_back(*k);
    }
    return keys;
  }
  const std::string dir = strip_trailing_slashes(data_dir);
  if (auto r = ensure_private_dir(dir); !r) {
    return r.error();
  }
  const std::string path = dir + "/master.key";
  // Two rounds: if another process creates the file between our read and our create, read it.
  for (int round = 0; round < 2; ++round) {
    const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rfd >= 0) {
      // The key must be our own private regular file: refuse a symlink (O_NOFOLLOW above), a
      // device or FIFO, and a file others may read.
      struct stat st {};
      if (::fstat(rfd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        ::close(rfd);
        return error{errc::storage,
                     path + ": must be a regular file readable by its owner only (mode 0600)"};
      }
      std::string text(max_master_key_file + 1, '\0');
      std::size_t got = 0;
      int read_errno = 0;
      while (got < text.size()) {
        const ssize_t n = ::read(rfd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          read_errno = errno;
          break;
        }
        if (n == 0) {
          break;
        }
        got += static_cast<std::size_t>(n);
      }
      ::close(rfd);
      if (read_errno != 0) {
        OPENSSL_cleanse(text.data(), text.size());
        return error{errc::storage, path + ": " + errno_text(read_errno)};
      }
      auto k = got <= max_master_key_file ? parse_fernet_key(std::string_view{text}.substr(0, got))
                                          : result<fernet_key>{errc::invalid_request};
      OPENSSL_cleanse(text.data(), text.size());
      if (!k) {
        return error{errc::invalid_request,
                     path + ": not a valid Fernet key (expected one line of 44 characters of "
                            "url-safe base64 encoding 32 bytes)"};
      }
      keys.push_back(*k);
      return keys;
    }
    if (errno != ENOENT) {
      return error{errc::storage, path + ": " + errno_text(errno)};
    }
    // Written whole under a private temporary name, then linked into place: link(2) is atomic
    // and never replaces, so a process racing us either reads our complete key or wins itself.
    const std::string tmp = path + ".tmp." + random_base62(12);
    const int wfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (wfd < 0) {
      return error{errc::storage, tmp + ": " + errno_text(errno)};
    }
    const fernet_key key = generate_fernet_key();
    std::string line = encode_fernet_key(key);
    line.push_back('\n');
    auto written = write_all(wfd, line);
    OPENSSL_cleanse(line.data(), line.size());
    if (written && ::fsync(wfd) != 0) {
      written = error{errc::storage, errno_text(errno)};
    }
    ::close(wfd);
    if (!written) {
      ::unlink(tmp.c_str());  // never leave a half-written key behind
      return error{errc::storage, path + ": " + written.error().message};
    }
    const int linked = ::link(tmp.c_str(), path.c_str());
    const int link_errno = errno;
    ::unlink(tmp.c_str());
    if (linked != 0) {
      if (link_errno == EEXIST) {
        continue;  // another process won the race: read its key
      }
      return error{errc::storage, path + ": " + errno_text(link_errno)};
    }
    fsync_dir(dir);
    keys.push_back(key);
    return keys;
  }
  return error{errc::storage, path + ": could not be read or created"};
}

}  // namespace ib::storage
