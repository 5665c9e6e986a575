// Status and Result<T>: the one error model of Tessera's core.
// A Status carries a code and a message that names the node, the op and what
// is wrong. Library code never throws across the C API or the plugin ABI and
// never aborts on bad input; it returns a Status.
#pragma once

#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace tessera {

// Numeric values match TSR_* codes in include/tessera/tessera.h and backend.h.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,   // bad user input: model, options, tensors
  kNotFound = 2,          // missing file, input name, backend
  kUnsupported = 3,       // op/dtype/feature not implemented
  kOutOfRange = 4,        // index out of range, overflow
  kOutOfMemory = 5,       // allocation failed or over a configured cap
  kFailedPrecondition = 6,
  kInternal = 7,          // a bug in Tessera
  kNoDevice = 8,          // backend present but its hardware is not
  kIoError = 9,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: message"
  std::string ToString() const;
  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
std::string StrCat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
Status InvalidArgument(Args&&... a) { return Status(StatusCode::kInvalidArgument, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status NotFound(Args&&... a) { return Status(StatusCode::kNotFound, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status Unsupported(Args&&... a) { return Status(StatusCode::kUnsupported, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status OutOfRange(Args&&... a) { return Status(StatusCode::kOutOfRange, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status OutOfMemory(Args&&... a) { return Status(StatusCode::kOutOfMemory, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status FailedPrecondition(Args&&... a) { return Status(StatusCode::kFailedPrecondition, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status Internal(Args&&... a) { return Status(StatusCode::kInternal, StrCat(std::forward<Args>(a)...)); }
template <typename... Args>
Status IoError(Args&&... a) { return Status(StatusCode::kIoError, StrCat(std::forward<Args>(a)...)); }

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}                       // NOLINT
  Result(Status status) : status_(std::move(status)) {                // NOLINT
    if (status_.ok()) status_ = Internal("Result constructed from an ok Status without a value");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tessera

#define TSR_CONCAT_INNER(a, b) a##b
#define TSR_CONCAT(a, b) TSR_CONCAT_INNER(a, b)

#define TSR_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    ::tessera::Status _tsr_st = (expr);             \
    if (!_tsr_st.ok()) return _tsr_st;              \
  } while (0)

#define TSR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#define TSR_ASSIGN_OR_RETURN(lhs, expr) \
  TSR_ASSIGN_OR_RETURN_IMPL(TSR_CONCAT(_tsr_res_, __LINE__), lhs, expr)
