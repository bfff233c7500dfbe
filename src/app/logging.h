// Logging set-up for the freshframe command: one stderr logger, with a
// timestamp in a terminal and a syslog priority prefix ("<3>" ... "<7>",
// sd-daemon(3)) when stderr is systemd's stream to the journal, which then
// files each line at its level (journalctl -p warning) and adds its own time.
//
// Thread-safety: SetUpLogging runs once on the main thread before any other
// thread logs. The rest are pure functions, callable from any thread.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/common.h>

namespace freshframe::app {

// Makes the default spdlog logger: stderr, at `level` (trace ... off).
void SetUpLogging(const std::string& level);

// True when JOURNAL_STREAM (systemd.exec(5): "DEVICE:INODE" of the stream
// it connected to stdout/stderr) names the file stderr is: a variable
// inherited by a child whose stderr was redirected elsewhere does not count.
bool StderrIsJournal(const char* journal_stream, unsigned long long device,
                     unsigned long long inode);

// The syslog priority digit of a level: '3' err ... '7' debug.
char SyslogPriority(spdlog::level::level_enum level);

// The spdlog pattern for a terminal or for the journal.
std::string_view LogPattern(bool journal);

// The line PrintError writes: "freshframe: error: MESSAGE\n", after "<3>"
// for the journal.
std::string ErrorLine(std::string_view message, bool journal);

// Writes ErrorLine to stderr: the errors that end the command before (or
// instead of) logging, such as a bad --config, at the journal's err level.
void PrintError(std::string_view message);

}  // namespace freshframe::app
