#include "http/auth.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "http/admission.h"

namespace freshframe::http {
namespace {

ServerOptions WithToken(std::string token) {
  ServerOptions options;
  options.token = std::move(token);
  return options;
}

ServerOptions WithBasic(std::string user_pass) {
  ServerOptions options;
  options.basic_auth = std::move(user_pass);
  return options;
}

// A file in the test's temporary directory, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& contents)
      : path_(testing::TempDir() + "freshframe_token_" + std::to_string(getpid()) + "_" +
              testing::UnitTest::GetInstance()->current_test_info()->name()) {
    std::ofstream(path_) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(AuthBase64Test, DecodesStandardBase64) {
  EXPECT_EQ(Base64Decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(Base64Decode("YQ=="), "a");
  EXPECT_EQ(Base64Decode("YWI="), "ab");
  EXPECT_EQ(Base64Decode("YQ"), "a");  // padding is optional
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode("+/+/"), std::string("\xfb\xff\xbf"));
}

TEST(AuthBase64Test, RejectsBadInput) {
  EXPECT_FALSE(Base64Decode("dXNlcjpwYXNz!"));   // outside the alphabet
  EXPECT_FALSE(Base64Decode("YQ=a"));            // padding in the middle
  EXPECT_FALSE(Base64Decode("Y==="));            // too much padding
  EXPECT_FALSE(Base64Decode("YQ="));             // padded to a length not a multiple of 4
  EXPECT_FALSE(Base64Decode("YWJjZ"));           // 5 digits: not a whole byte
  EXPECT_FALSE(Base64Decode("dXNl cjpw"));       // spaces inside
  EXPECT_FALSE(Base64Decode("dXNlcjpwYXNz-_"));  // the URL-safe alphabet is not Basic's
}

TEST(AuthHeaderTest, ParsesSchemeAndCredentials) {
  EXPECT_EQ(AuthCredentials("Bearer abc", "Bearer"), "abc");
  EXPECT_EQ(AuthCredentials("bearer abc", "Bearer"), "abc");  // scheme is case-insensitive
  EXPECT_EQ(AuthCredentials("  BASIC   dXNlcjpwYXNz  ", "Basic"), "dXNlcjpwYXNz");
  EXPECT_EQ(AuthCredentials("Bearer\tabc", "Bearer"), "abc");
  EXPECT_FALSE(AuthCredentials("Basic abc", "Bearer"));
  EXPECT_FALSE(AuthCredentials("Bearer", "Bearer"));  // no credentials
  EXPECT_FALSE(AuthCredentials("Bearer   ", "Bearer"));
  EXPECT_FALSE(AuthCredentials("Bearerabc", "Bearer"));
  EXPECT_FALSE(AuthCredentials("", "Bearer"));
}

TEST(AuthCompareTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secreT", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("Secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret1", "secret"));       // longer
  EXPECT_FALSE(ConstantTimeEquals("secre", "secret"));         // prefix
  EXPECT_FALSE(ConstantTimeEquals("secretsecret", "secret"));  // the secret repeated
  EXPECT_FALSE(ConstantTimeEquals("", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));  // an empty secret never matches
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0c", 3), std::string("a\0b", 3)));
}

TEST(AuthCheckTest, OpenWithoutCredentialsConfigured) {
  EXPECT_FALSE(AuthRequired(ServerOptions{}));
  EXPECT_TRUE(Authorized(ServerOptions{}, "", "/"));
  EXPECT_TRUE(AuthChallenges(ServerOptions{}).empty());
}

TEST(AuthCheckTest, TokenAsBearerOrQuery) {
  const ServerOptions options = WithToken("s3cr+t/x");
  EXPECT_TRUE(AuthRequired(options));
  EXPECT_TRUE(Authorized(options, "Bearer s3cr+t/x", "/"));
  EXPECT_TRUE(Authorized(options, "", "/stream.mjpg?token=s3cr+t/x"));
  EXPECT_TRUE(Authorized(options, "", "/stream.mjpg?t=1&token=s3cr%2Bt%2Fx"));  // encoded
  EXPECT_TRUE(Authorized(options, "", "http://host/?action=stream&token=s3cr+t/x"));
  EXPECT_FALSE(Authorized(options, "", "/"));
  EXPECT_FALSE(Authorized(options, "Bearer wrong", "/"));
  EXPECT_FALSE(Authorized(options, "Bearer s3cr+t/", "/"));
  EXPECT_FALSE(Authorized(options, "", "/?token=wrong"));
  EXPECT_FALSE(Authorized(options, "", "/?token=s3cr%2"));  // malformed escape
  EXPECT_FALSE(Authorized(options, "", "/?tokens=s3cr+t/x"));
  EXPECT_FALSE(Authorized(options, "Basic czNjcit0L3g=", "/"));  // the token is not a Basic secret
  EXPECT_EQ(AuthChallenges(options), std::vector<std::string>{"Bearer realm=\"freshframe\""});
}

TEST(AuthCheckTest, BasicCredentials) {
  const ServerOptions options = WithBasic("user:pa:ss");
  EXPECT_TRUE(Authorized(options, "Basic dXNlcjpwYTpzcw==", "/"));  // user:pa:ss
  EXPECT_TRUE(Authorized(options, "basic dXNlcjpwYTpzcw", "/"));
  EXPECT_FALSE(Authorized(options, "Basic dXNlcjpwYTpzcA==", "/"));  // user:pa:sp
  EXPECT_FALSE(Authorized(options, "Basic !!!!", "/"));
  EXPECT_FALSE(Authorized(options, "Bearer user:pa:ss", "/"));
  EXPECT_FALSE(Authorized(options, "", "/?token=user:pa:ss"));
  EXPECT_EQ(AuthChallenges(options), std::vector<std::string>{"Basic realm=\"freshframe\""});
}

TEST(AuthCheckTest, EitherCredentialWhenBothAreConfigured) {
  ServerOptions options = WithToken("tok");
  options.basic_auth = "user:pass";
  EXPECT_TRUE(Authorized(options, "Bearer tok", "/"));
  EXPECT_TRUE(Authorized(options, "", "/?token=tok"));
  EXPECT_TRUE(Authorized(options, "Basic dXNlcjpwYXNz", "/"));
  EXPECT_FALSE(Authorized(options, "Basic dXNlcjpwYXNx", "/"));
  EXPECT_EQ(AuthChallenges(options).size(), 2U);
}

TEST(AuthCheckTest, RequestOverloadReadsHeaderAndTarget) {
  const ServerOptions options = WithToken("tok");
  boost::beast::http::request_header<> request;
  request.target("/api/stats");
  EXPECT_FALSE(Authorized(options, request));
  request.set(boost::beast::http::field::authorization, "Bearer tok");
  EXPECT_TRUE(Authorized(options, request));
  request.erase(boost::beast::http::field::authorization);
  request.target("/api/stats?token=tok");
  EXPECT_TRUE(Authorized(options, request));
}

TEST(AuthRedactTest, HidesTokenValuesOnly) {
  EXPECT_EQ(RedactToken("/stream.mjpg"), "/stream.mjpg");
  EXPECT_EQ(RedactToken("/stream.mjpg?t=1&token=abc"), "/stream.mjpg?t=1&token=***");
  EXPECT_EQ(RedactToken("/?token=abc&action=stream#x"), "/?token=***&action=stream#x");
  EXPECT_EQ(RedactToken("/?token"), "/?token=***");
  EXPECT_EQ(RedactToken("/?tokens=abc"), "/?tokens=abc");
}

TEST(AuthPercentTest, DecodesEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2fc+d"), "a b/c+d");
  EXPECT_FALSE(PercentDecode("a%2"));
  EXPECT_FALSE(PercentDecode("a%zz"));
  EXPECT_FALSE(PercentDecode("%"));
}

TEST(AuthValidateTest, CommandLineValues) {
  EXPECT_TRUE(ValidateToken("abc-123_~+/="));
  EXPECT_FALSE(ValidateToken(""));
  EXPECT_FALSE(ValidateToken("a b"));
  EXPECT_FALSE(ValidateToken("a\tb"));
  EXPECT_TRUE(ValidateBasicAuth("user:pass"));
  EXPECT_TRUE(ValidateBasicAuth("user:pa:ss word"));  // the password may hold ':' and spaces
  EXPECT_FALSE(ValidateBasicAuth("userpass"));
  EXPECT_FALSE(ValidateBasicAuth(":pass"));
  EXPECT_FALSE(ValidateBasicAuth("user:"));
  EXPECT_FALSE(ValidateBasicAuth("us er:pass"));
  EXPECT_FALSE(ValidateBasicAuth("user:pa\nss"));
  // Error texts never repeat the secret.
  EXPECT_EQ(ValidateBasicAuth("sekrit").error().message.find("sekrit"), std::string::npos);
  EXPECT_EQ(ValidateToken("sek rit").error().message.find("sek"), std::string::npos);
}

TEST(AuthTokenFileTest, ReadsTheFirstLineTrimmed) {
  const TempFile file("  tok-123 \r\nsecond line\n");
  const auto token = ReadTokenFile(file.path());
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_EQ(*token, "tok-123");
}

TEST(AuthTokenFileTest, MissingEmptyOrBadFilesAreErrors) {
  const auto missing = ReadTokenFile("/nonexistent/freshframe-token");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/freshframe-token"), std::string::npos);
  const TempFile empty("   \nsecond\n");
  const auto blank = ReadTokenFile(empty.path());
  ASSERT_FALSE(blank.ok());
  EXPECT_NE(blank.error().message.find("empty"), std::string::npos);
  const TempFile spaced("two words\n");
  const auto bad = ReadTokenFile(spaced.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("words"), std::string::npos);  // no secret in the error
  EXPECT_FALSE(ReadTokenFile(testing::TempDir()).ok());             // a directory
}

TEST(AuthAdmissionTest, PerAddressAndStreamingPlacesAreGivenBack) {
  Admission admission(/*max_clients=*/1, /*max_per_address=*/2);
  LeasePtr a = admission.Connect("10.0.0.1");
  LeasePtr b = admission.Connect("10.0.0.1");
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(admission.Connect("10.0.0.1"));
  EXPECT_TRUE(admission.Connect("10.0.0.2"));  // another address (released at once)
  EXPECT_TRUE(a->TryStream());
  EXPECT_TRUE(a->TryStream());  // already streaming: no second place
  EXPECT_FALSE(b->TryStream());
  EXPECT_EQ(admission.streaming(), 1U);
  a.reset();
  EXPECT_EQ(admission.streaming(), 0U);
  EXPECT_TRUE(b->TryStream());
  EXPECT_TRUE(admission.Connect("10.0.0.1"));
  admission.Count(Rejection::kAuth);
  admission.Count(Rejection::kAuth);
  admission.Count(Rejection::kUriTooLong);
  EXPECT_EQ(admission.rejected(Rejection::kAuth), 2U);
  EXPECT_EQ(admission.rejected(Rejection::kUriTooLong), 1U);
  EXPECT_EQ(admission.rejected(Rejection::kPerAddress), 0U);
}

TEST(AuthAdmissionTest, ZeroMeansNoLimit) {
  Admission admission(0, 0);
  std::vector<LeasePtr> leases;
  for (int i = 0; i < 100; ++i) {
    leases.push_back(admission.Connect("10.0.0.1"));
    ASSERT_TRUE(leases.back() && leases.back()->TryStream());
  }
}

}  // namespace
}  // namespace freshframe::http
