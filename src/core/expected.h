// Errors are values: Expected<T> holds either a T or an Error with a message
// written for the user ("cannot open cascade: tried /a, /b").
//
// Thread-safety: plain values; same rules as the T they hold.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace freshframe {

struct Error {
  std::string message;
};

template <typename T>
class Expected {
 public:
  Expected(T value) : data_(std::move(value)) {}       // NOLINT: implicit by design
  Expected(Error error) : data_(std::move(error)) {}   // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const Error& error() const { return std::get<Error>(data_); }

 private:
  std::variant<T, Error> data_;
};

}  // namespace freshframe
