#include "app/logging.h"

#include <gtest/gtest.h>

namespace freshframe::app {
namespace {

TEST(LoggingTest, JournalOnlyWhenTheVariableNamesStderr) {
  EXPECT_TRUE(StderrIsJournal("8:1234", 8, 1234));
  EXPECT_FALSE(StderrIsJournal(nullptr, 8, 1234));
  // Inherited by a child whose stderr now goes somewhere else.
  EXPECT_FALSE(StderrIsJournal("8:1234", 8, 99));
  EXPECT_FALSE(StderrIsJournal("9:1234", 8, 1234));
  for (const char* malformed :
       {"", ":", "8:", ":1234", "8;1234", "8:1234x", "x8:1234", "-8:1234"}) {
    EXPECT_FALSE(StderrIsJournal(malformed, 8, 1234)) << malformed;
  }
}

TEST(LoggingTest, SyslogPriorities) {
  EXPECT_EQ(SyslogPriority(spdlog::level::critical), '2');
  EXPECT_EQ(SyslogPriority(spdlog::level::err), '3');
  EXPECT_EQ(SyslogPriority(spdlog::level::warn), '4');
  EXPECT_EQ(SyslogPriority(spdlog::level::info), '6');
  EXPECT_EQ(SyslogPriority(spdlog::level::debug), '7');
  EXPECT_EQ(SyslogPriority(spdlog::level::trace), '7');
}

TEST(LoggingTest, JournalLinesStartWithThePriorityAndCarryNoTime) {
  EXPECT_EQ(LogPattern(true).substr(0, 4), "<%*>");
  EXPECT_EQ(LogPattern(true).find("%Y"), std::string_view::npos);
  EXPECT_NE(LogPattern(false).find("%Y"), std::string_view::npos);
}

TEST(LoggingTest, ErrorLines) {
  EXPECT_EQ(ErrorLine("bad.toml:3:8: no", false), "freshframe: error: bad.toml:3:8: no\n");
  EXPECT_EQ(ErrorLine("bad.toml:3:8: no", true), "<3>freshframe: error: bad.toml:3:8: no\n");
}

}  // namespace
}  // namespace freshframe::app
