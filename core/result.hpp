#pragma once

#include <utility>
#include <variant>

#include "core/error.hpp"

namespace ib {

/// A value or an `ib::error`: the subset of `std::expected` that the project needs (house
/// style §4: pure code returns it instead of throwing). Converts implicitly from a `T`, an
/// `error` or an `errc`, so a function can `return value;` or `return error{...};`. Reading the
/// side that is not held (`value()` on an error, `error()` on a value) throws
/// `std::bad_variant_access`: check `has_value()` first.
template <class T>
class [[nodiscard]] result {
 public:
  /// A success holding `value`.
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  /// A failure holding `err` (even if `err.code` is `errc::none`).
  result(ib::error err) : data_(std::in_place_index<1>, std::move(err)) {}  // NOLINT
  /// A failure with `code` and a message safe to show a client.
  result(errc code, std::string message = {})
      : data_(std::in_place_index<1>, ib::error{code, std::move(message)}) {}

  /// True when a value is held.
  bool has_value() const noexcept { return data_.index() == 0; }
  /// `has_value()`.
  explicit operator bool() const noexcept { return has_value(); }

  /// The value (`*r` and `r->` too); throws `std::bad_variant_access` on an error.
  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; throws `std::bad_variant_access` on a value.
  const ib::error& error() const& { return std::get<1>(data_); }
  ib::error&& error() && { return std::get<1>(std::move(data_)); }

 private:
  std::variant<T, ib::error> data_;
};

/// `result<void>`: success or an `ib::error`. Unlike `result<T>`, an error whose code is
/// `errc::none` reads as success.
template <>
class [[nodiscard]] result<void> {
 public:
  /// A success (`return {};`).
  result() = default;
  /// A failure holding `err`; a success when `err.code` is `errc::none`.
  result(ib::error err) : err_(std::move(err)) {}  // NOLINT
  /// A failure with `code` and a message safe to show a client.
  result(errc code, std::string message = {}) : err_{code, std::move(message)} {}

  /// True on success.
  bool has_value() const noexcept { return err_.code == errc::none; }
  /// `has_value()`.
  explicit operator bool() const noexcept { return has_value(); }
  /// The error (code `errc::none` on success; never throws).
  const ib::error& error() const& { return err_; }
  ib::error&& error() && { return std::move(err_); }

 private:
  ib::error err_;
};

}  // namespace ib
