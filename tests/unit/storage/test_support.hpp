#pragma once

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

namespace ib::storage::test {

/// What a child process printed on stdout, and its exit code (-1 if it did not exit normally).
struct process_output {
  int exit_code = -1;
  std::string out;
};

/// Runs `python3 -c <script>` with `env` added to the environment (values travel through the
/// environment, never through the shell's parser), and collects its stdout.
inline process_output run_python(const std::string& script,
                                 const std::vector<std::pair<std::string, std::string>>& env) {
  ::setenv("IB_TEST_PY", script.c_str(), 1);
  for (const auto& [k, v] : env) {
    ::setenv(k.c_str(), v.c_str(), 1);
  }
  process_output res;
  if (FILE* p = ::popen("python3 -c \"$IB_TEST_PY\"", "r")) {
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
      res.out.append(buf.data(), n);
    }
    const int status = ::pclose(p);
    if (status != -1 && WIFEXITED(status)) {
      res.exit_code = WEXITSTATUS(status);
    }
  }
  ::unsetenv("IB_TEST_PY");
  for (const auto& [k, v] : env) {
    ::unsetenv(k.c_str());
  }
  return res;
}

/// A fresh directory (mkdtemp) removed with everything in it at the end of the scope.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ib_storage_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace ib::storage::test
