// Errors are values: Expected<T> holds either a T or an Error with a message
// written for the user ("cannot open cascade: tried /a, /b"). Expected<T, E>
// carries another error type where the message alone is not enough (an HTTP
// status as well, say).
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

template <typename T, typename E = Error>
class Expected {
 public:
  Expected(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(E error) : data_(std::move(error)) {}  // NOLINT: implicit by design

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

  const E& error() const { return std::get<E>(data_); }

 private:
  std::variant<T, E> data_;
};

}  // namespace freshframe
