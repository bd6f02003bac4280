#pragma once

#include <utility>
#include <variant>

#include "core/error.hpp"

namespace ib {

/// A value or an `ib::error`: the subset of `std::expected` that the project needs.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  result(ib::error err) : data_(std::in_place_index<1>, std::move(err)) {}  // NOLINT
  result(errc code, std::string message = {})
      : data_(std::in_place_index<1>, ib::error{code, std::move(message)}) {}

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const ib::error& error() const& { return std::get<1>(data_); }
  ib::error&& error() && { return std::get<1>(std::move(data_)); }

 private:
  std::variant<T, ib::error> data_;
};

/// `result<void>`: success or an `ib::error`.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(ib::error err) : err_(std::move(err)) {}  // NOLINT
  result(errc code, std::string message = {}) : err_{code, std::move(message)} {}

  bool has_value() const noexcept { return err_.code == errc::none; }
  explicit operator bool() const noexcept { return has_value(); }
  const ib::error& error() const& { return err_; }
  ib::error&& error() && { return std::move(err_); }

 private:
  ib::error err_;
};

}  // namespace ib
