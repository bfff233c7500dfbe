// RTSP Basic authentication with HTTP's credentials (internal to src/rtsp).
//
// gst-rtsp-server's own GstRTSPAuth looks Basic credentials up as whole
// "user:pass" strings, which cannot say "the bearer token as the password,
// with any user name". CreateAuth returns a GstRTSPAuth subclass whose
// authenticate step checks the Authorization header itself (in constant
// time); the rest (401 with WWW-Authenticate, the factory's role check) is
// gst-rtsp-server's.
//
// Thread-safety: Credentials is immutable; the auth object is used by
// gst-rtsp-server from its client threads and only reads it.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include "rtsp/credentials.h"

namespace freshframe::rtsp {

// The role every authenticated client gets; each media factory grants it
// access.
inline constexpr const char* kViewerRole = "viewer";

// A new GstRTSPAuth (a reference the caller owns) that accepts `credentials`
// and gives the role kViewerRole. `credentials` must outlive it.
GstRTSPAuth* CreateAuth(const Credentials& credentials);

}  // namespace freshframe::rtsp
