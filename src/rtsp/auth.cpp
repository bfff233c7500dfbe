#include "rtsp/auth.h"

#include <glib.h>

#include <string>

namespace freshframe::rtsp {
namespace {

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
