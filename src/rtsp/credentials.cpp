#include "rtsp/credentials.h"

#include <optional>

#include "core/credentials.h"

namespace freshframe::rtsp {

bool Credentials::Accepts(std::string_view authorization) const {
  const std::optional<std::string_view> encoded = AuthCredentials(authorization, "Basic");
  if (!encoded) return false;
  const std::optional<std::string> decoded = Base64Decode(*encoded);
  if (!decoded) return false;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string_view password = std::string_view(*decoded).substr(colon + 1);
  // Both checked, so that which one matched does not show in the time.
  const bool basic_ok = ConstantTimeEquals(*decoded, basic_auth);
  const bool token_ok = ConstantTimeEquals(password, token);
  return basic_ok || token_ok;
}

}  // namespace freshframe::rtsp
