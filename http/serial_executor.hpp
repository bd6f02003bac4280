#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace ib::http {

/// The executor one connection's handlers run on, so that they never run at once: `io`'s own
/// executor when `io` was made for one thread (`io_context(1)`, concurrency hint 1: its
/// handlers are serial already), else a new strand on `io`.
///
/// A strand costs a mutex, a queue and a type-erased executor copy on every handler; with one
/// I/O thread (the default on two cores) that was about 4 % of the gateway's CPU per request
/// (bench/README.md, "hot spots"). Asio has no public accessor for the hint; the scheduler
/// service holding it is the io_context's own implementation and stays put (Boost 1.81).
/// An io_context made for one thread must be run by one thread only.
inline boost::asio::any_io_executor serial_executor(boost::asio::io_context& io) {
  if (boost::asio::use_service<boost::asio::detail::scheduler>(io).concurrency_hint() == 1) {
    return io.get_executor();
  }
  return boost::asio::make_strand(io);
}

}  // namespace ib::http
