#include "http/origin_policy.h"

#include <gtest/gtest.h>

namespace freshframe::http {
namespace {

OriginPolicy Default() { return {}; }

TEST(HostAllowed, IpLiteralsAndLocalhostAlways) {
  const OriginPolicy policy = Default();
  for (const char* host :
       {"127.0.0.1", "127.0.0.1:8080", "192.168.1.10:80", "[::1]", "[::1]:8080", "[fe80::1]:1",
        "localhost", "localhost:8080", "LOCALHOST:1", "cam.localhost:8080", "localhost.:8080"}) {
    EXPECT_TRUE(HostAllowed(policy, host)) << host;
  }
}

TEST(HostAllowed, OtherNamesOnlyWhenListed) {
  OriginPolicy policy = Default();
  for (const char* host : {"evil.example.com", "attacker.example:8080", "127.0.0.1.nip.io",
                           "localhost.evil.com", "::1", "[::1", "[nonsense]:80", "host:99999",
                           "host:12x", "a b", "", ":8080", "1.2.3.4:5:6"}) {
    EXPECT_FALSE(HostAllowed(policy, host)) << host;
  }
  policy.allow_hosts = {"cam.example.com"};
  EXPECT_TRUE(HostAllowed(policy, "cam.example.com"));
  EXPECT_TRUE(HostAllowed(policy, "CAM.Example.com:8443"));
  EXPECT_TRUE(HostAllowed(policy, "cam.example.com."));
  EXPECT_FALSE(HostAllowed(policy, "evil.example.com"));
  policy.allow_hosts = {"any"};
  EXPECT_TRUE(HostAllowed(policy, "evil.example.com"));
}

TEST(NormaliseOrigin, AsBrowsersSerialise) {
  EXPECT_EQ(NormaliseOrigin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(NormaliseOrigin("HTTP://Cam.Example.COM:80"), "http://cam.example.com");
  EXPECT_EQ(NormaliseOrigin("https://cam.example.com:443"), "https://cam.example.com");
  EXPECT_EQ(NormaliseOrigin("https://cam.example.com:80"), "https://cam.example.com:80");
  EXPECT_EQ(NormaliseOrigin("http://[::1]:8080"), "http://[::1]:8080");
  for (const char* bad : {"null", "", "file://", "ftp://x", "http://", "http://a/b", "http://u@a",
                          "http://a:b", "chrome-extension://abc", "http://a?x", "http//a"}) {
    EXPECT_FALSE(NormaliseOrigin(bad)) << bad;
  }
}

PolicyVerdict Check(const OriginPolicy& policy, std::string_view host, std::string_view origin,
                    std::string_view proto = "") {
  return CheckBrowserPolicy(policy, BrowserHeaders{host, origin, proto});
}

TEST(CheckBrowserPolicy, NoOriginIsNotABrowserCrossOriginRequest) {
  const auto verdict = Check(Default(), "127.0.0.1:8080", "");
  EXPECT_EQ(verdict.origin, OriginKind::kNone);
  EXPECT_TRUE(verdict.refusal.empty());
  EXPECT_TRUE(verdict.allow_origin.empty());
}

TEST(CheckBrowserPolicy, OwnOriginPasses) {
  EXPECT_EQ(Check(Default(), "127.0.0.1:8080", "http://127.0.0.1:8080").origin, OriginKind::kSame);
  EXPECT_EQ(Check(Default(), "localhost:8080", "http://localhost:8080").origin, OriginKind::kSame);
  // Behind a TLS proxy that passes the browser's Host and X-Forwarded-Proto.
  OriginPolicy proxied;
  proxied.allow_hosts = {"cam.example.com"};
  EXPECT_EQ(Check(proxied, "cam.example.com", "https://cam.example.com", "https").origin,
            OriginKind::kSame);
  EXPECT_EQ(Check(proxied, "cam.example.com:8443", "https://cam.example.com:8443", "https").origin,
            OriginKind::kSame);
  // The scheme counts: https page, plain-http server without the proxy's word.
  EXPECT_EQ(Check(proxied, "cam.example.com", "https://cam.example.com").origin,
            OriginKind::kForeign);
  EXPECT_TRUE(Check(Default(), "127.0.0.1:8080", "http://127.0.0.1:8080").allow_origin.empty());
}

TEST(CheckBrowserPolicy, ForeignOriginsAreRefusedWithTheFlagNamed) {
  for (const char* origin : {"http://evil.example.com", "http://127.0.0.1:3000", "null",
                             "http://localhost:8080", "https://127.0.0.1:8080", "junk"}) {
    const auto verdict = Check(Default(), "127.0.0.1:8080", origin);
    EXPECT_EQ(verdict.origin, OriginKind::kForeign) << origin;
    EXPECT_NE(verdict.refusal.find("--allow-origin"), std::string::npos) << verdict.refusal;
    EXPECT_FALSE(verdict.host_refused);
    EXPECT_EQ(verdict.refusal.find('\n'), std::string::npos);
  }
}

TEST(CheckBrowserPolicy, AllowedOriginsGetTheirOwnCorsValue) {
  OriginPolicy policy;
  policy.allow_origins = {"http://127.0.0.1:3000"};
  const auto allowed = Check(policy, "127.0.0.1:8080", "http://127.0.0.1:3000");
  EXPECT_EQ(allowed.origin, OriginKind::kAllowed);
  EXPECT_EQ(allowed.allow_origin, "http://127.0.0.1:3000");
  EXPECT_TRUE(allowed.refusal.empty());
  EXPECT_EQ(Check(policy, "127.0.0.1:8080", "http://127.0.0.1:3001").origin, OriginKind::kForeign);
  policy.allow_origins.push_back("*");
  const auto any = Check(policy, "127.0.0.1:8080", "http://evil.example.com");
  EXPECT_EQ(any.origin, OriginKind::kAllowed);
  EXPECT_EQ(any.allow_origin, "*");
  // A listed origin is still echoed, not "*".
  EXPECT_EQ(Check(policy, "127.0.0.1:8080", "http://127.0.0.1:3000").allow_origin,
            "http://127.0.0.1:3000");
}

TEST(CheckBrowserPolicy, HostIsCheckedFirstAndNamesTheFlag) {
  const auto verdict = Check(Default(), "attacker.example", "http://attacker.example");
  EXPECT_TRUE(verdict.host_refused);
  EXPECT_NE(verdict.refusal.find("--allow-host"), std::string::npos);
  // Control characters from the request never reach the message.
  const auto odd = Check(Default(), "evil\x01\x1b[31m", "");
  EXPECT_EQ(odd.refusal.find('\x1b'), std::string::npos);
  // Without a Host header (HTTP/1.0) only the Origin matters.
  EXPECT_TRUE(Check(Default(), "", "").refusal.empty());
  EXPECT_EQ(Check(Default(), "", "http://127.0.0.1:8080").origin, OriginKind::kForeign);
}

TEST(ValidateAllow, OriginsAndHosts) {
  EXPECT_EQ(*ValidateAllowOrigin("*"), "*");
  EXPECT_EQ(*ValidateAllowOrigin("HTTPS://Cam.example.com:443"), "https://cam.example.com");
  EXPECT_FALSE(ValidateAllowOrigin("cam.example.com"));
  EXPECT_FALSE(ValidateAllowOrigin("http://cam.example.com/"));
  EXPECT_NE(ValidateAllowOrigin("x").error().message.find("scheme://host"), std::string::npos);
  EXPECT_EQ(*ValidateAllowHost("Cam.Example.com"), "cam.example.com");
  EXPECT_EQ(*ValidateAllowHost("any"), "any");
  EXPECT_FALSE(ValidateAllowHost("cam.example.com:8080"));
  EXPECT_FALSE(ValidateAllowHost("http://cam"));
  EXPECT_FALSE(ValidateAllowHost(""));
}

}  // namespace
}  // namespace freshframe::http
