#include "http/origin_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace freshframe::http {
namespace {

struct HostPort {
  std::string host;        // lower case, without brackets or a trailing dot
  bool bracketed = false;  // "[...]": an IPv6 literal
  std::optional<uint16_t> port;
};

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<uint16_t> ParsePort(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

bool IsIpv4(const std::string& text) {
  in_addr address{};
  return inet_pton(AF_INET, text.c_str(), &address) == 1;
}

bool IsIpv6(const std::string& text) {
  in6_addr address{};
  return inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

// A DNS name as a Host header or an origin may carry it: letters, digits,
// '-', '.', '_' (seen in the wild), non-empty labels.
bool IsHostName(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.') return false;
  char previous = 0;
  for (const char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    if (!ok || (c == '.' && previous == '.')) return false;
    previous = c;
  }
  return true;
}

// "name", "name:port", "1.2.3.4:port", "[v6]" or "[v6]:port"; nullopt for
// anything else (an unbracketed IPv6 address, a bad port, junk).
std::optional<HostPort> SplitHostPort(std::string_view text) {
  HostPort out;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = Lower(text.substr(1, close - 1));
    out.bracketed = true;
    if (!IsIpv6(out.host)) return std::nullopt;
    rest = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    out.host = Lower(text.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
    if (!out.host.empty() && out.host.back() == '.') out.host.pop_back();
    if (!IsHostName(out.host)) return std::nullopt;
  }
  if (!rest.empty()) {
    if (rest.front() != ':') return std::nullopt;
    rest.remove_prefix(1);
    if (!rest.empty()) {  // "host:" is an empty port (RFC 3986): no port
      out.port = ParsePort(rest);
      if (!out.port) return std::nullopt;
    }
  }
  return out;
}

bool IsIpLiteral(const HostPort& host) { return host.bracketed || IsIpv4(host.host); }

bool IsLocalhost(std::string_view name) {
  constexpr std::string_view kLocal = "localhost";
  return name == kLocal || (name.size() > kLocal.size() && name.ends_with(".localhost"));
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

uint16_t DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// `text` shortened and with control characters replaced, to be quoted in a
// one-line message.
std::string Printable(std::string_view text) {
  constexpr size_t kMax = 100;
  std::string out;
  for (const char c : text.substr(0, kMax)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
  }
  if (text.size() > kMax) out.append("...");
  return out;
}

// "<before>'<quoted, made printable>'<after>", built with append (GCC 12
// -O3 reports a false -Wrestrict on operator+).
std::string Quoting(std::string_view before, std::string_view quoted, std::string_view after) {
  std::string out(before);
  out.append("'").append(Printable(quoted)).append("'").append(after);
  return out;
}

// The origin a page served by this server has: X-Forwarded-Proto's scheme
// (a TLS proxy's "https"; the first of a list) or http, and Host.
std::optional<std::string> OwnOrigin(const BrowserHeaders& headers) {
  if (headers.host.empty()) return std::nullopt;
  std::string scheme = Lower(headers.forwarded_proto.substr(0, headers.forwarded_proto.find(',')));
  scheme.erase(std::remove(scheme.begin(), scheme.end(), ' '), scheme.end());
  if (scheme != "https") scheme = "http";
  // Built with append: GCC 12 -O3 reports a false -Wrestrict on operator+.
  scheme.append("://").append(headers.host);
  return NormaliseOrigin(scheme);
}

}  // namespace

bool HostAllowed(const OriginPolicy& policy, std::string_view host) {
  if (Contains(policy.allow_hosts, "any")) return true;
  const auto parsed = SplitHostPort(host);
  if (!parsed) return false;
  return IsIpLiteral(*parsed) || IsLocalhost(parsed->host) ||
         Contains(policy.allow_hosts, parsed->host);
}

std::optional<std::string> NormaliseOrigin(std::string_view origin) {
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  const std::string scheme = Lower(origin.substr(0, sep));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const std::string_view authority = origin.substr(sep + 3);
  if (authority.find_first_of("/?#@") != std::string_view::npos) return std::nullopt;
  const auto parsed = SplitHostPort(authority);
  if (!parsed || parsed->host.empty()) return std::nullopt;
  std::string out = scheme;
  out.append("://");
  if (parsed->bracketed) {
    out.append("[").append(parsed->host).append("]");
  } else {
    out.append(parsed->host);
  }
  if (parsed->port && *parsed->port != DefaultPort(scheme)) {
    out.append(":").append(std::to_string(*parsed->port));
  }
  return out;
}

PolicyVerdict CheckBrowserPolicy(const OriginPolicy& policy, const BrowserHeaders& headers) {
  PolicyVerdict verdict;
  // Without Host (HTTP/1.0) there is no name to rebind: browsers always send
  // one.
  if (!headers.host.empty() && !HostAllowed(policy, headers.host)) {
    verdict.host_refused = true;
    verdict.refusal =
        Quoting("Host ", headers.host,
                " is not allowed (protection against DNS rebinding): to serve this "
                "name, start freshframe with --allow-host NAME (or --allow-host any)");
    return verdict;
  }
  if (headers.origin.empty()) return verdict;
  const auto origin = NormaliseOrigin(headers.origin);
  const auto own = OwnOrigin(headers);
  if (origin && own && *origin == *own) {
    verdict.origin = OriginKind::kSame;
    return verdict;
  }
  if (origin && Contains(policy.allow_origins, *origin)) {
    verdict.origin = OriginKind::kAllowed;
    verdict.allow_origin = *origin;
    return verdict;
  }
  if (Contains(policy.allow_origins, "*")) {
    verdict.origin = OriginKind::kAllowed;
    verdict.allow_origin.assign(1, '*');  // not = "*": GCC 12 -O3 false -Wrestrict
    return verdict;
  }
  verdict.origin = OriginKind::kForeign;
  verdict.refusal = Quoting("cross-origin request from ", headers.origin,
                            " refused: only this server's own pages may use it; to allow that "
                            "page, start freshframe with --allow-origin ORIGIN");
  return verdict;
}

Expected<std::string> ValidateAllowOrigin(const std::string& origin) {
  if (origin == "*") return origin;
  if (auto normalised = NormaliseOrigin(origin)) return *normalised;
  return Error{Quoting("invalid --allow-origin ", origin,
                       ": give an origin as browsers send it, scheme://host[:port] with http or "
                       "https and no path (e.g. http://192.168.1.10:8123), or * for any")};
}

Expected<std::string> ValidateAllowHost(const std::string& host) {
  if (host == "any") return host;
  auto parsed = SplitHostPort(host);
  if (parsed && !parsed->port && !parsed->host.empty() && !parsed->bracketed) {
    return parsed->host;
  }
  return Error{Quoting("invalid --allow-host ", host,
                       ": give a host name without scheme or port (e.g. cam.example.com), or "
                       "any; IP addresses and localhost are always allowed")};
}

}  // namespace freshframe::http
