#include "http/auth.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "http/router.h"

namespace freshframe::http {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(kSpaces);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpaces) - first + 1);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool Printable(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F) return false;
  }
  return true;
}

bool TokenMatches(const ServerOptions& options, std::string_view authorization,
                  std::string_view target) {
  if (const auto bearer = AuthCredentials(authorization, "Bearer")) {
    if (ConstantTimeEquals(*bearer, options.token)) return true;
  }
  const std::string query = QueryParam(target, "token");
  if (query.empty()) return false;
  const auto decoded = PercentDecode(query);
  return decoded && ConstantTimeEquals(*decoded, options.token);
}

bool BasicMatches(const ServerOptions& options, std::string_view authorization) {
  const auto credentials = AuthCredentials(authorization, "Basic");
  if (!credentials) return false;
  const auto decoded = Base64Decode(*credentials);
  return decoded && ConstantTimeEquals(*decoded, options.basic_auth);
}

}  // namespace

bool AuthRequired(const ServerOptions& options) {
  return !options.token.empty() || !options.basic_auth.empty();
}

bool Authorized(const ServerOptions& options, std::string_view authorization,
                std::string_view target) {
  if (!AuthRequired(options)) return true;
  if (!options.token.empty() && TokenMatches(options, authorization, target)) return true;
  return !options.basic_auth.empty() && BasicMatches(options, authorization);
}

bool Authorized(const ServerOptions& options, const boost::beast::http::request_header<>& request) {
  return Authorized(options, request[boost::beast::http::field::authorization], request.target());
}

std::vector<std::string> AuthChallenges(const ServerOptions& options) {
  std::vector<std::string> challenges;
  for (const auto& [configured, scheme] :
       {std::pair{!options.token.empty(), "Bearer"}, {!options.basic_auth.empty(), "Basic"}}) {
    if (!configured) continue;
    std::string challenge = scheme;
    challenge.append(" realm=\"").append(kAuthRealm).append("\"");
    challenges.push_back(std::move(challenge));
  }
  return challenges;
}

std::string RedactToken(std::string_view target) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::string(target);
  const auto hash = target.find('#', question);
  std::string out(target.substr(0, question + 1));
  std::string_view query = target.substr(
      question + 1, hash == std::string_view::npos ? std::string_view::npos : hash - question - 1);
  for (bool first = true;; first = false) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!first) out.push_back('&');
    out.append(pair.substr(0, pair.find('=')) == "token" ? std::string_view("token=***") : pair);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (hash != std::string_view::npos) out.append(target.substr(hash));
  return out;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;  // "%" or "%X" at the end
    const int high = HexValue(text[i + 1]);
    const int low = HexValue(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

Expected<std::string> ValidateToken(const std::string& token) {
  if (token.empty()) return Error{"the token is empty"};
  if (!Printable(token)) return Error{"the token must not contain spaces or control characters"};
  return token;
}

Expected<std::string> ValidateBasicAuth(const std::string& user_pass) {
  const auto colon = user_pass.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == user_pass.size() ||
      !Printable(user_pass.substr(0, colon))) {
    return Error{
        "must be USER:PASSWORD (a non-empty user without ':' or spaces, a non-empty password)"};
  }
  for (const char c : user_pass) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return Error{"must not contain control characters"};
    }
  }
  return user_pass;
}

Expected<std::string> ReadTokenFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error{"cannot read token file " + path + ": it is a directory"};
  }
  std::ifstream in(path);
  if (!in) return Error{"cannot read token file " + path + ": " + std::strerror(errno)};
  std::string line;
  std::getline(in, line);
  if (in.bad()) return Error{"cannot read token file " + path + ": " + std::strerror(errno)};
  const std::string token(Trim(line));
  if (token.empty()) {
    return Error{"token file " + path + " is empty (its first line must be the token)"};
  }
  auto valid = ValidateToken(token);
  if (!valid) return Error{"token file " + path + ": " + valid.error().message};
  return token;
}

}  // namespace freshframe::http
