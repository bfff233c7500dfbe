#include "rtsp/auth.h"

#include <glib.h>

#include <algorithm>
#include <string>

namespace freshframe::rtsp {
namespace {

// Compares without an early exit, so the time taken says nothing about how
// much of a secret matched.
bool SameSecret(std::string_view given, std::string_view expected) {
  unsigned char differ = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    differ |=
        static_cast<unsigned char>(given[i] ^ expected[i % std::max<size_t>(1, expected.size())]);
  }
  return differ == 0 && !expected.empty();
}

std::string DecodeBase64(std::string_view text) {
  const std::string copy(text);
  gsize length = 0;
  guchar* decoded = g_base64_decode(copy.c_str(), &length);
  std::string out(reinterpret_cast<const char*>(decoded), length);
  g_free(decoded);
  return out;
}

struct CheckingAuth {
  GstRTSPAuth parent;
  const Credentials* credentials;
  GstRTSPToken* token;
};

struct CheckingAuthClass {
  GstRTSPAuthClass parent;
};

GObjectClass* parent_class = nullptr;  // set once, by ClassInit

gboolean Authenticate(GstRTSPAuth* auth, GstRTSPContext* ctx) {
  auto* self = reinterpret_cast<CheckingAuth*>(auth);
  ctx->token = nullptr;
  for (int i = 0;; ++i) {
    gchar* value = nullptr;
    if (gst_rtsp_message_get_header(ctx->request, GST_RTSP_HDR_AUTHORIZATION, &value, i) !=
        GST_RTSP_OK) {
      break;
    }
    if (self->credentials->Accepts(value)) {
      // Not a new reference: gst-rtsp-server's own authenticate also lends
      // the token it keeps.
      ctx->token = self->token;
      break;
    }
  }
  // TRUE either way: without a token, gst-rtsp-server answers 401 with the
  // WWW-Authenticate header that makes clients send their credentials.
  return TRUE;
}

void Finalize(GObject* object) {
  auto* self = reinterpret_cast<CheckingAuth*>(object);
  if (self->token != nullptr) gst_rtsp_token_unref(self->token);
  parent_class->finalize(object);
}

void ClassInit(gpointer klass, gpointer /*data*/) {
  static_cast<GstRTSPAuthClass*>(klass)->authenticate = Authenticate;
  static_cast<GObjectClass*>(klass)->finalize = Finalize;
  parent_class = static_cast<GObjectClass*>(g_type_class_peek_parent(klass));
}

GType CheckingAuthType() {
  static const GType type = g_type_register_static_simple(
      GST_TYPE_RTSP_AUTH, "FreshframeRtspAuth", sizeof(CheckingAuthClass), ClassInit,
      sizeof(CheckingAuth), nullptr, static_cast<GTypeFlags>(0));
  return type;
}

}  // namespace

bool Credentials::Accepts(std::string_view authorization) const {
  constexpr std::string_view kBasic = "basic ";
  if (authorization.size() <= kBasic.size() ||
      g_ascii_strncasecmp(authorization.data(), kBasic.data(), kBasic.size()) != 0) {
    return false;
  }
  std::string_view encoded = authorization.substr(kBasic.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && (encoded.back() == ' ' || encoded.back() == '\t')) {
    encoded.remove_suffix(1);
  }
  const std::string decoded = DecodeBase64(encoded);
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string_view password = std::string_view(decoded).substr(colon + 1);
  // Both checked, so that which one matched does not show in the time.
  const bool basic_ok = !basic_auth.empty() && SameSecret(decoded, basic_auth);
  const bool token_ok = !token.empty() && SameSecret(password, token);
  return basic_ok || token_ok;
}

GstRTSPAuth* CreateAuth(const Credentials& credentials) {
  auto* self = static_cast<CheckingAuth*>(g_object_new(CheckingAuthType(), nullptr));
  self->credentials = &credentials;
  self->token =
      gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, kViewerRole, nullptr);
  auto* auth = reinterpret_cast<GstRTSPAuth*>(self);
  gst_rtsp_auth_set_supported_methods(auth, GST_RTSP_AUTH_BASIC);
  gst_rtsp_auth_set_realm(auth, "freshframe");
  return auth;
}

}  // namespace freshframe::rtsp
