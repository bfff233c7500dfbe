// httpclient: the HTTP/1.1 client parsing that every freshframe client of an
// MJPEG stream shares (the probe, the MJPEG source, bench/compare's strip
// sampler), so that remote bytes go through one fuzzed implementation:
// - url.h: Url and ParseUrl (http:// only; user info becomes Basic
//   credentials sent in a header, never in the request target);
// - http_response.h: the response head (FindHeadEnd, ParseResponseHead,
//   MultipartBoundary) and ChunkedDecoder;
// - multipart_parser.h, multipart_body.h: a multipart/x-mixed-replace body
//   split into parts, de-chunked first when it came chunked;
// - redact.h: RedactUrl, credentials masked in anything shown;
// - text_util.h: case-blind header names and tokens.
// No sockets here: each client owns its connection and feeds these the bytes
// it read. The module depends on nothing but the standard library.
//
// Thread-safety and ownership: the free functions are pure and safe from any
// thread. ChunkedDecoder, MultipartParser and MultipartBody are not
// thread-safe (one thread feeds each) and keep no pointers to the caller's
// bytes; a part's body points into the parser and is valid only until the
// next Feed/Next (MultipartParser) or during the on_part call
// (MultipartBody). Every returned value is owned by the caller.
#pragma once

#include "httpclient/http_response.h"
#include "httpclient/multipart_body.h"
#include "httpclient/multipart_parser.h"
#include "httpclient/redact.h"
#include "httpclient/text_util.h"
#include "httpclient/url.h"
