#include "app/logging.h"

#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace freshframe::app {
namespace {

// The "%*" flag of the journal pattern: the line's priority digit.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    const char digit = SyslogPriority(msg.level);
    dest.append(&digit, &digit + 1);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }
};

bool StderrGoesToJournal() {
  struct stat stderr_stat {};
  return fstat(2, &stderr_stat) == 0 &&
         StderrIsJournal(std::getenv("JOURNAL_STREAM"), stderr_stat.st_dev, stderr_stat.st_ino);
}

bool ParseUnsigned(std::string_view text, unsigned long long& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

bool StderrIsJournal(const char* journal_stream, unsigned long long device,
                     unsigned long long inode) {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long named_device = 0;
  unsigned long long named_inode = 0;
  return ParseUnsigned(text.substr(0, colon), named_device) &&
         ParseUnsigned(text.substr(colon + 1), named_inode) && named_device == device &&
         named_inode == inode;
}

char SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return '2';
    case spdlog::level::err:
      return '3';
    case spdlog::level::warn:
      return '4';
    case spdlog::level::info:
      return '6';
    default:
      return '7';  // debug, trace
  }
}

std::string_view LogPattern(bool journal) {
  return journal ? "<%*>%l %v" : "%Y-%m-%d %H:%M:%S.%e %^%l%$ %v";
}

std::string ErrorLine(std::string_view message, bool journal) {
  std::string line = journal ? "<3>freshframe: error: " : "freshframe: error: ";
  line.append(message);
  line.push_back('\n');
  return line;
}

void PrintError(std::string_view message) {
  const std::string line = ErrorLine(message, StderrGoesToJournal());
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void SetUpLogging(const std::string& level) {
  // Logs go to stderr: stdout carries results (the URL line, probe output).
  const bool journal = StderrGoesToJournal();
  auto logger = spdlog::stderr_color_mt("freshframe");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SyslogPriorityFlag>('*').set_pattern(std::string(LogPattern(journal)));
  logger->set_formatter(std::move(formatter));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace freshframe::app
