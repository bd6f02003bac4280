// inferbridge: argv/env -> config::load -> run. The only code no test links.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "app/commands.hpp"
#include "app/gateway.hpp"
#include "config/load.hpp"

#ifdef IB_JEMALLOC
// jemalloc's options, read when it starts (jemalloc(3), "TUNING"; MALLOC_CONF in the
// environment is read after, and overrides them). With a background thread, the pages a burst
// leaves free go back to the OS on jemalloc's decay schedule (10 s for dirty pages) even when
// the process then goes quiet; without one, only while it goes on allocating (bench/README.md,
// "Fifth round": 33 MiB held 15 s after a c=1024 burst without it, 24-30 MiB with it). One such
// thread purges every arena (jemalloc's default started four on a 2-core machine).
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
const char* malloc_conf = "background_thread:true,max_background_threads:1";
}
#endif

namespace {

constexpr const char* usage =
    "usage: inferbridge [--config PATH] [--check-config]\n"
    "       inferbridge rotate-master-key [--batch-size N] [--config PATH]\n"
    "       inferbridge compact [--config PATH]\n"
    "       inferbridge migrate-store --to POSTGRES_URL [--config PATH]\n"
    "\n"
    "Runs the InferBridge gateway. Without --config (or IB_CONFIG) the embedded default\n"
    "configuration is used. Environment: IB_LISTEN, IB_DATA_DIR, IB_MASTER_KEY, IB_ADMIN_TOKEN,\n"
    "IB_LOG_LEVEL (debug, info, warn, error), IB_<PROVIDER>_BASE_URL,\n"
    "IB_DATABASE_URL (a PostgreSQL URL: several nodes share it; needs IB_MASTER_KEY).\n"
    "migrate-store copies the LMDB store of IB_DATA_DIR into PostgreSQL (idempotent).\n"
    "rotate-master-key re-encrypts every provider key under the new master key (IB_MASTER_KEY's\n"
    "first, else a new master.key) in batches, then compacts the store; resumable. compact\n"
    "rewrites data.mdb without its freed pages (run it after deleting keys). Both need the\n"
    "gateway stopped.\n"
    "The log (one line per request, and the gateway's own events) goes to stdout, after the\n"
    "`listening on HOST:PORT` line; configuration errors go to stderr.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false;
  bool rotate = false;
  bool migrate = false;
  bool compact = false;
  ib::app::rotate_options rotate_opt;
  std::string migrate_to;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check = true;
    } else if (arg == "rotate-master-key") {
      rotate = true;
    } else if (arg == "compact") {
      compact = true;
    } else if (arg == "--batch-size" && i + 1 < argc) {
      const long n = std::strtol(argv[++i], nullptr, 10);
      if (n < 1 || n > 1'000'000) {
        std::fprintf(stderr, "inferbridge: --batch-size: expected 1 to 1000000\n");
        return 2;
      }
      rotate_opt.batch_size = static_cast<std::size_t>(n);
    } else if (arg == "migrate-store") {
      migrate = true;
    } else if (arg == "--to" && i + 1 < argc) {
      migrate_to = argv[++i];
    } else if (arg.rfind("--to=", 0) == 0) {
      migrate_to = arg.substr(5);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "inferbridge: unknown argument '%s'\n%s", arg.c_str(), usage);
      return 2;
    }
  }
  auto env = ib::config::process_env();
  if (config_path.empty()) {
    if (auto it = env.find("IB_CONFIG"); it != env.end()) {
      config_path = it->second;
    }
  }
  ib::result<ib::config::config> cfg = ib::errc::internal;
  if (config_path.empty()) {
    cfg = ib::config::load_default(env);
  } else {
    std::ifstream in(config_path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "inferbridge: cannot read config file %s: %s\n", config_path.c_str(),
                   std::strerror(errno));
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    cfg = ib::config::load(text.str(), env);
  }
  if (!cfg) {
    std::fprintf(stderr, "inferbridge: invalid configuration%s%s: %s\n",
                 config_path.empty() ? "" : " in ", config_path.c_str(),
                 cfg.error().message.c_str());
    return 2;
  }
  if (check) {
    std::fputs(ib::config::describe(*cfg).c_str(), stdout);
    std::fputs("configuration OK\n", stdout);
    return 0;
  }
  if (rotate) {
    if (auto it = env.find("IB_TEST_ROTATION_HOLD_AFTER_BATCHES"); it != env.end()) {
      rotate_opt.hold_after_batches = std::strtoul(it->second.c_str(), nullptr, 10);
    }
    return ib::app::rotate_master_key(*cfg, rotate_opt);
  }
  if (compact) {
    return ib::app::compact_store(*cfg);
  }
  if (migrate) {
    if (migrate_to.empty()) {
      std::fprintf(stderr, "inferbridge: migrate-store needs --to POSTGRES_URL\n%s", usage);
      return 2;
    }
    return ib::app::migrate_store(*cfg, migrate_to);
  }
  return ib::app::run_gateway(*cfg);
}
