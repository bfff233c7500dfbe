// Redaction of credentials in source specs, URLs and messages built from
// them, before they are shown anywhere (logs, /api/stats, start-up errors,
// probe reports). One function, used for every place a spec is shown, so
// that no path forgets a case.
//
// Thread-safety: pure function, safe from any thread; returns a new string.
#pragma once

#include <string>
#include <string_view>

namespace freshframe::httpclient {

// `text` with every credential replaced by "***":
// - the password of user info in any URL in it ("rtsp://u:pw@cam/x" ->
//   "rtsp://u:***@cam/x"; the user name stays, it says which account);
// - the value of every token-like KEY=VALUE parameter that starts the text
//   or follows '?', '&', ';' or a space (URL queries, GStreamer element
//   properties such as user-pw=...): token, access_token, password, key,
//   api_key, secret, sig, ... (see IsSecretKey in redact.cpp).
// Everything else is kept byte for byte, so a redacted spec still says which
// source it is. Works on whole messages ("cannot open http://u:p@h/: ...").
std::string RedactUrl(std::string_view text);

}  // namespace freshframe::httpclient
