#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/clock.h"
#include "http/api_routes.h"
#include "http/auth.h"
#include "http/router.h"
#include "http/session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

constexpr int64_t kSnapshotFreshUs = 100'000;
constexpr std::string_view kEventStreamType = "text/event-stream";

// The header of a response that lasts as long as the connection: no length,
// the body ends with the connection. `allow_origin`: the CORS value for a
// page listed with --allow-origin ("" for none: the default).
std::string EndlessHeader(std::string_view type, std::string_view extra,
                          std::string_view allow_origin) {
  std::string header =
      "HTTP/1.1 200 OK\r\nServer: freshframe/" FRESHFRAME_VERSION "\r\nContent-Type: ";
  header.append(type).append("\r\n").append(extra);
  if (!allow_origin.empty()) {
    header.append("Access-Control-Allow-Origin: ")
        .append(allow_origin)
        .append("\r\nVary: Origin\r\n");
  }
  header.append("Connection: close\r\n\r\n");
  return header;
}

BrowserHeaders BrowserHeadersOf(const Request& request) {
  const auto get = [&](bhttp::field field) {
    const auto it = request.find(field);
    return it == request.end() ? std::string_view{} : std::string_view(it->value());
  };
  const auto proto = request.find("X-Forwarded-Proto");
  return BrowserHeaders{
      get(bhttp::field::host), get(bhttp::field::origin),
      proto == request.end() ? std::string_view{} : std::string_view(proto->value())};
}

// Whether a request is a CORS preflight: OPTIONS with the method the page
// wants to send.
bool IsPreflight(const Request& request) {
  return request.method() == bhttp::verb::options && request.count(bhttp::field::origin) != 0 &&
         request.count(bhttp::field::access_control_request_method) != 0;
}

class HttpSession;

// Waits (one-shot) for the next part on behalf of a snapshot request, and
// keeps the encoder busy meanwhile.
class SnapshotWaiter final : public PartSubscriber {
 public:
  SnapshotWaiter(std::weak_ptr<HttpSession> session, StreamContextPtr stream)
      : session_(std::move(session)), stream_(std::move(stream)), hold_(stream_->deps.demand) {}
  bool OnPart(const StreamPartPtr& part) override;
  void OnClosed() override;

 private:
  std::weak_ptr<HttpSession> session_;
  StreamContextPtr stream_;  // before hold_: the Demand lives in what it keeps alive
  Demand::Hold hold_;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(net::ip::tcp::socket socket, ServerContext& context, LeasePtr lease)
      : peer_(PeerName(socket)),
        stream_(std::move(socket)),
        context_(context),
        lease_(std::move(lease)),
        snapshot_timer_(stream_.get_executor()) {}

  void Start() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  // The part a snapshot waited for; null if the stream was removed meanwhile.
  void OnSnapshotPart(const StreamPartPtr& part) {
    if (!waiter_) return;  // already answered (timed out)
    waiter_.reset();
    snapshot_timer_.cancel();
    if (!part) return SendError(bhttp::status::service_unavailable, "stream stopped");
    SendJpeg(*part);
  }

 private:
  // The header first: the route decides how large a body it takes, so a body
  // we would refuse is refused before it is read (POST /api/config: 4 KiB,
  // not the general 16 KiB).
  void DoRead() {
    // Per request: what the previous one set must not shape the answer to a
    // request that fails before Handle() (a 400 after a HEAD would lose its
    // body, a 431 would carry another page's CORS header).
    head_ = false;
    allow_origin_.clear();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(context_.options.header_limit));
    parser_->body_limit(context_.options.body_limit);
    body_route_ = Route::kNotFound;
    stream_.expires_after(context_.options.read_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code header_ec) {
    if (header_ec) return OnRead(header_ec);
    const auto& header = parser_->get();
    body_route_ = Classify(header.method_string(), header.target()).route;
    if (const size_t limit = BodyLimit(body_route_); limit > 0) {
      // Beast checks Content-Length against the limit only while parsing the
      // header, so a declared length is checked here; the parser's limit then
      // bounds a chunked body.
      const auto length = parser_->content_length();
      if (length && *length > limit) return OnRead(bhttp::error::body_limit);
      parser_->body_limit(limit);
    }
    if (parser_->is_done()) return OnRead({});
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == beast::error::timeout ||
        ec == net::error::operation_aborted) {
      return Close();  // client went away or stalled (slowloris): just close
    }
    if (ec == bhttp::error::header_limit) {
      if (TargetTooLong()) return UriTooLong();
      return SendError(bhttp::status::request_header_fields_too_large, "headers too large");
    }
    if (ec == bhttp::error::body_limit) {
      if (body_route_ == Route::kConfigUpdate) return SendJson(ConfigTooLarge());
      return SendError(bhttp::status::payload_too_large, "request body too large");
    }
    if (ec) return SendError(bhttp::status::bad_request, "malformed request: " + ec.message());
    request_ = parser_->release();
    if (request_.target().size() > context_.options.uri_limit) return UriTooLong();
    Handle();
  }

  void Handle() {
    const std::string_view target(request_.target().data(), request_.target().size());
    const std::string_view method(request_.method_string().data(), request_.method_string().size());
    const RouteResult result = Classify(method, target);
    head_ = result.head;
    // Once per request, before any route answers (streams and upgrades
    // included); only the health check stays open. The browser-origin policy
    // comes before auth: a page must not learn even whether credentials are
    // needed, and a preflight never carries them.
    if (result.route != Route::kHealth) {
      const PolicyVerdict verdict =
          CheckBrowserPolicy(context_.options.origin_policy, BrowserHeadersOf(request_));
      if (!verdict.refusal.empty()) return RefuseBrowser(verdict);
      allow_origin_ = verdict.allow_origin;
      if (IsPreflight(request_)) return Preflight(result);
      if (!Authorized(context_.options, request_)) return Unauthorized();
    }
    switch (result.route) {
      case Route::kMethodNotAllowed:
        return MethodNotAllowed(result);
      case Route::kBadRequest:
        return SendError(bhttp::status::bad_request, "bad request target");
      case Route::kNotFound:
        return SendError(bhttp::status::not_found, "not found");
      case Route::kAddSlash:
        return AddSlash(target);
      default:
        break;
    }
    // Which stream: named (/streams/NAME/), numbered (?action=stream_N) or
    // the first. Taken once: a reload may remove it meanwhile, and this
    // request then finishes with the stream it started with.
    StreamContextPtr stream =
        result.stream_name.empty()
            ? context_.streams.At(static_cast<size_t>(std::max(0L, result.stream_index)))
            : context_.streams.Find(result.stream_name);
    const RequestFacts facts{request_[bhttp::field::content_type], request_.body(), peer_,
                             !result.stream_name.empty()};
    if (auto reply = AnswerRoute(context_, stream.get(), result.route, facts)) {
      auto response = MakeResponse(static_cast<bhttp::status>(reply->status), reply->type,
                                   std::move(reply->body));
      if (reply->close) response.keep_alive(false);
      return Send(std::move(response));
    }
    if (!stream) return NoSuchStream(result);
    switch (result.route) {
      case Route::kSnapshot:
        return Snapshot(std::move(stream));
      case Route::kStream:
        return Stream(std::move(stream), std::string(target));
      case Route::kWebSocket:
        return WebSocket(std::move(stream), target, encode::Codec::kJpeg);
      case Route::kH264WebSocket:
        if (!HasH264(*stream)) return;
        return WebSocket(std::move(stream), target, encode::Codec::kH264);
      case Route::kH264Stream:
        if (!HasH264(*stream)) return;
        return H264Stream(std::move(stream), target);
      case Route::kWhep:
        return Whep(std::move(stream), result);
      case Route::kWhepSession:
        return EndWhep(*stream, result.whep_id);
      case Route::kEvents:
        return Events(std::move(stream));
      default:  // /api/detections without a detector: AnswerRoute leaves it to us
        return NoDetector();
    }
  }

  void NoSuchStream(const RouteResult& result) {
    std::string what = !result.stream_name.empty()
                           ? "no stream named '" + std::string(result.stream_name) + "'"
                           : "no stream number " + std::to_string(result.stream_index);
    Send(JsonError(bhttp::status::not_found, what + " (GET /api/streams lists them)"));
  }

  // /streams/NAME -> /streams/NAME/: the page's relative URLs need the slash.
  void AddSlash(std::string_view target) {
    const auto query = target.find('?');
    std::string location(target.substr(0, query));
    location.append("/");
    if (query != std::string_view::npos) location.append(target.substr(query));
    auto response = MakeResponse(bhttp::status::moved_permanently, "text/plain; charset=utf-8",
                                 "moved to " + location + "\n");
    response.set(bhttp::field::location, location);
    Send(std::move(response));
  }

  void Snapshot(StreamContextPtr stream) {
    if (auto latest = stream->fanout.Latest()) {
      if (MonotonicMicros() - latest->frame->meta.stamps.capture_us < kSnapshotFreshUs ||
          !stream->SourceLive()) {
        return SendJpeg(*latest);
      }
    }
    // Nothing fresh (nobody was watching): ask for the next frame (or, from a
    // stalled source, for the encoder to encode the last one).
    waiter_ = std::make_shared<SnapshotWaiter>(weak_from_this(), stream);
    stream->fanout.Subscribe(waiter_);
    snapshot_timer_.expires_after(context_.options.snapshot_timeout);
    snapshot_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->waiter_) return;
      self->waiter_.reset();
      self->SendError(bhttp::status::service_unavailable, "no frame available");
    });
  }

  void SendJpeg(const StreamPart& part) {
    const auto& jpeg = part.frame->bytes;
    auto response =
        MakeResponse(bhttp::status::ok, "image/jpeg", std::string(jpeg.begin(), jpeg.end()));
    const int64_t capture = part.frame->meta.stamps.capture_us;
    response.set("X-Frame-Timestamp", FormatStampSeconds(capture));
    response.set("X-Frame-Sequence", std::to_string(part.frame->meta.sequence));
    Send(std::move(response));
  }

  void Stream(StreamContextPtr stream, std::string path) {
    const auto query = CheckStreamQuery(*stream, path);
    if (!query) return;
    const std::string type = "multipart/x-mixed-replace;boundary=" + std::string(kBoundary);
    if (head_) return SendText(bhttp::status::ok, type, "");
    if (!AdmitStream() || !ReserveVariant(*stream, *query)) return;
    HandOver(EndlessHeader(type,
                           "Cache-Control: no-store, no-cache, must-revalidate\r\n"
                           "Pragma: no-cache\r\n"
                           // A proxy (nginx) would otherwise buffer parts.
                           "X-Accel-Buffering: no\r\n",
                           allow_origin_),
             std::move(stream), std::move(path), &StartMjpegSession);
  }

  // The per-client options of a stream request (?fps, ?mirror, ?width; see
  // stream_query.h); nullopt, after answering 400, if one is invalid.
  std::optional<StreamQuery> CheckStreamQuery(const StreamContext& stream,
                                              std::string_view target) {
    auto query = ParseStreamQuery(target, stream.Source());
    if (!query) {
      SendError(bhttp::status::bad_request, query.error().message);
      return std::nullopt;
    }
    if (!query->variant.is_default() && !stream.variants.available()) {
      SendError(bhttp::status::bad_request, "mirror and width are not available on this server");
      return std::nullopt;
    }
    return *query;
  }

  // Reserves the place of the query's pixel variant for the session that
  // will open it (VariantStreams::Reserve), as the last check before the
  // stream's header is sent, so that a request answered otherwise (HEAD,
  // 426, --max-clients' 503) holds none; false after answering 503 when it
  // asks for a new variant while --max-variants are in use.
  bool ReserveVariant(StreamContext& stream, const StreamQuery& query) {
    auto place =
        stream.variants.Reserve(query.variant, context_.options.max_variants, MonotonicMicros());
    if (place) return true;
    context_.admission.Count(Rejection::kMaxVariants);
    // Debug, as SendError logs: a client that retries must not flood the log.
    spdlog::debug("client {}: 503 {}", peer_, place.error().message);
    auto response = JsonError(bhttp::status::service_unavailable, place.error().message);
    // Places free up only as viewers of other variants leave.
    response.set(bhttp::field::retry_after, "5");
    Send(std::move(response));
    return false;
  }

  // Whether the stream has an H.264 encoder; a 404 saying so if not.
  bool HasH264(const StreamContext& stream) {
    if (stream.deps.h264 != nullptr) return true;
    Send(JsonError(bhttp::status::not_found, "H.264 is not available on this server"));
    return false;
  }

  // H.264 streams have one picture for all (one encode): a per-client
  // option would need an encode per client. 400 if any is given.
  bool NoStreamOptions(const StreamContext& stream, std::string_view target) {
    const auto query = CheckStreamQuery(stream, target);
    if (!query) return false;
    if (query->fps > 0 || !query->variant.is_default() || query->early_parts) {
      SendError(bhttp::status::bad_request, "H.264 streams take no fps, mirror, width or parts");
      return false;
    }
    return true;
  }

  // GET /stream.h264: the Annex-B elementary stream (h264_session.cpp).
  void H264Stream(StreamContextPtr stream, std::string_view target) {
    if (!NoStreamOptions(*stream, target)) return;
    if (head_) return SendText(bhttp::status::ok, "video/h264", "");
    HandOver(EndlessHeader("video/h264", "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n",
                           allow_origin_),
             std::move(stream), std::string(target), &StartH264Session);
  }

  // POST /whep: the offer goes to the stream's WebRTC peers
  // (whep_session.cpp), which answer on their own time; the connection is
  // theirs from here on.
  void Whep(StreamContextPtr stream, const RouteResult& result) {
    if (!stream->deps.whep.offer) {
      return Send(JsonError(bhttp::status::not_found, "WebRTC is not available on this server"));
    }
    const std::string_view type = request_[bhttp::field::content_type];
    if (type.substr(0, type.find(';')) != "application/sdp") {
      return SendError(bhttp::status::unsupported_media_type,
                       "a WHEP offer is an SDP body with Content-Type: application/sdp");
    }
    if (!AdmitStream()) return;
    std::string prefix =
        result.stream_name.empty() ? "/" : "/streams/" + std::string(result.stream_name) + "/";
    StartWhepExchange(std::move(stream_), context_, std::move(stream), std::move(peer_), lease_,
                      std::move(request_.body()), std::move(prefix), allow_origin_);
  }

  // DELETE /whep/ID: ends that WebRTC session.
  void EndWhep(const StreamContext& stream, std::string_view id) {
    if (!stream.deps.whep.end || !stream.deps.whep.end(id)) {
      return SendError(bhttp::status::not_found, "no such WebRTC session");
    }
    SendText(bhttp::status::ok, "text/plain; charset=utf-8", "ended\n");
  }

  // /ws/stream and /ws/h264, whatever the method: a request without
  // "Upgrade: websocket" gets 426; any other goes to a WsSession, which
  // answers the handshake (101, or Beast's 400 / 426 for one that is not
  // valid).
  void WebSocket(StreamContextPtr stream, std::string_view target, encode::Codec codec) {
    const auto query = CheckStreamQuery(*stream, target);
    if (!query) return;
    if (codec == encode::Codec::kH264 && !NoStreamOptions(*stream, target)) return;
    const auto upgrade = request_.find(bhttp::field::upgrade);
    if (upgrade == request_.end() || !bhttp::token_list{upgrade->value()}.exists("websocket")) {
      auto response = MakeResponse(bhttp::status::upgrade_required, "text/plain; charset=utf-8",
                                   "a WebSocket endpoint: connect with a WebSocket client\n");
      response.set(bhttp::field::upgrade, "websocket");
      response.set(bhttp::field::sec_websocket_version, "13");
      response.keep_alive(false);
      return Send(std::move(response));
    }
    if (!AdmitStream() || !ReserveVariant(*stream, *query)) return;
    std::string path = RedactToken(target);  // before request_ moves: `target` points into it
    StartWsSession(std::move(stream_), context_, std::move(stream), std::move(peer_),
                   std::move(path), lease_, *query, std::move(request_), codec);
  }

  // GET /api/events: Server-Sent Events, one per detection set.
  void Events(StreamContextPtr stream) {
    if (stream->deps.detections == nullptr) return NoDetector();
    if (head_) {
      auto response = MakeResponse(bhttp::status::ok, kEventStreamType, "");
      response.set(bhttp::field::cache_control, "no-cache");
      response.set("X-Accel-Buffering", "no");
      return Send(std::move(response));
    }
    // X-Accel-Buffering: a proxy such as nginx would otherwise hold events
    // back in its buffer, which defeats a low-latency stream.
    HandOver(EndlessHeader(kEventStreamType, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
                           allow_origin_),
             std::move(stream), "/api/events", &StartSseSession);
  }

  void MethodNotAllowed(const RouteResult& result) {
    Response response = result.resource == Route::kConfig
                            ? JsonError(bhttp::status::method_not_allowed,
                                        "method not allowed: /api/config takes GET, HEAD and POST")
                            : MakeResponse(bhttp::status::method_not_allowed,
                                           "text/plain; charset=utf-8", "method not allowed\n");
    response.set(bhttp::field::allow, result.allow);
    response.keep_alive(false);
    Send(std::move(response));
  }

  // Like every answer, CORS headers only for a page listed with
  // --allow-origin: any other page's POST never gets here (RefuseBrowser),
  // and cannot read the answers of GET (config_api.h).
  void SendJson(const JsonReply& reply) {
    auto response =
        MakeResponse(static_cast<bhttp::status>(reply.status), "application/json", reply.body);
    // The body was read in full (413: too large, unread): only then close.
    if (reply.status == 413) response.keep_alive(false);
    Send(std::move(response));
  }

  void NoDetector() {
    SendText(bhttp::status::not_found, "application/json",
             R"({"error":"no detector runs in this process"})");
  }

  // Takes a streaming place (--max-clients) for this connection before it
  // becomes a stream (MJPEG, SSE, WebSocket); when none is free, answers 503
  // and returns false.
  bool AdmitStream() {
    if (lease_->TryStream()) return true;
    context_.admission.Count(Rejection::kMaxClients);
    auto response = JsonError(bhttp::status::service_unavailable, "too many streaming clients");
    response.set(bhttp::field::retry_after, "1");
    Send(std::move(response));
    return false;
  }

  // Sends the header of an endless response, then gives the connection to
  // `takeover`, which owns it from then on.
  using Takeover = void (*)(beast::tcp_stream, ServerContext&, StreamContextPtr, std::string,
                            std::string, LeasePtr);
  void HandOver(std::string header_text, StreamContextPtr stream, std::string path,
                Takeover takeover) {
    if (!AdmitStream()) return;
    auto header = std::make_shared<std::string>(std::move(header_text));
    stream_.expires_after(context_.options.write_stall_timeout);
    net::async_write(stream_, net::buffer(*header),
                     [self = shared_from_this(), header, stream = std::move(stream),
                      path = RedactToken(path), takeover](beast::error_code ec, size_t) mutable {
                       if (ec) return self->Close();
                       takeover(std::move(self->stream_), self->context_, std::move(stream),
                                std::move(self->peer_), std::move(path), self->lease_);
                     });
  }

  // A Host or Origin the policy refuses (origin_policy.h): 403 with the
  // one-line reason, which names the flag that would allow it. Logged once
  // per address and minute at most; counted every time.
  void RefuseBrowser(const PolicyVerdict& verdict) {
    context_.admission.Count(verdict.host_refused ? Rejection::kHost : Rejection::kOrigin);
    if (context_.admission.ShouldLogRefusal(lease_->address(), MonotonicMicros())) {
      spdlog::warn("client {}: 403 {} {}: {}", peer_, request_.method_string(),
                   RedactToken(request_.target()), verdict.refusal);
    }
    Send(JsonError(bhttp::status::forbidden, verdict.refusal));
  }

  // OPTIONS with Access-Control-Request-Method from a page the policy lets
  // through (a listed origin: same-origin requests are not preflighted).
  void Preflight(const RouteResult& result) {
    if (result.resource == Route::kNotFound)
      return SendError(bhttp::status::not_found, "not found");
    auto response = MakeResponse(bhttp::status::no_content, "text/plain; charset=utf-8", "");
    response.set(bhttp::field::access_control_allow_methods, result.allow);
    response.set(bhttp::field::access_control_allow_headers, "Authorization, Content-Type");
    response.set(bhttp::field::access_control_max_age, "600");
    Send(std::move(response));
  }

  void Unauthorized() {
    context_.admission.Count(Rejection::kAuth);
    auto response = JsonError(bhttp::status::unauthorized, "authentication required");
    for (const std::string& challenge : AuthChallenges(context_.options)) {
      response.insert(bhttp::field::www_authenticate, challenge);
    }
    Send(std::move(response));
  }

  void UriTooLong() {
    context_.admission.Count(Rejection::kUriTooLong);
    SendError(
        bhttp::status::uri_too_long,
        "request target longer than " + std::to_string(context_.options.uri_limit) + " bytes");
  }

  // After a header_limit error: whether the request-target alone is over the
  // limit (then the answer is 414, not 431). Once the request line is parsed,
  // the parser holds it (and has taken it out of the buffer); until then,
  // what was read of it is at the start of the buffer.
  bool TargetTooLong() const {
    std::string_view target = parser_->get().target();
    if (target.empty()) {
      const auto data = buffer_.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      const std::string_view line = text.substr(0, text.find("\r\n"));
      const auto start = line.find(' ');
      if (start == std::string_view::npos) return false;
      target = line.substr(start + 1);
      target = target.substr(0, target.find(' '));
    }
    return target.size() > context_.options.uri_limit;
  }

  // An error with a JSON body {"error": message}; the connection closes after it.
  Response JsonError(bhttp::status status, std::string_view message) {
    auto response =
        MakeResponse(status, "application/json", nlohmann::json{{"error", message}}.dump() + "\n");
    response.keep_alive(false);
    return response;
  }

  Response MakeResponse(bhttp::status status, std::string_view type, std::string body) {
    Response response{status, request_.version() != 0 ? request_.version() : 11};
    response.set(bhttp::field::server, "freshframe/" FRESHFRAME_VERSION);
    response.set(bhttp::field::content_type, type);
    response.set(bhttp::field::cache_control, "no-store");
    response.keep_alive(request_.keep_alive());
    if (!allow_origin_.empty()) {
      response.set(bhttp::field::access_control_allow_origin, allow_origin_);
      response.set(bhttp::field::vary, "Origin");
      // The frame stamps of a snapshot, readable by the allowed page too.
      response.set(bhttp::field::access_control_expose_headers,
                   "X-Frame-Timestamp, X-Frame-Sequence, Location, ETag");
    }
    response.body() = std::move(body);
    response.prepare_payload();
    if (head_) response.body().clear();  // Content-Length stays that of GET
    return response;
  }

  void SendText(bhttp::status status, std::string_view type, std::string body) {
    Send(MakeResponse(status, type, std::move(body)));
  }

  void SendError(bhttp::status status, std::string message) {
    const bool parse_failed = !parser_ || !parser_->is_done();
    auto response = MakeResponse(status, "text/plain; charset=utf-8", message + "\n");
    if (parse_failed || status >= bhttp::status::bad_request) response.keep_alive(false);
    spdlog::debug("client {}: {} {}", peer_, static_cast<int>(status), message);
    Send(std::move(response));
  }

  void Send(Response response) {
    response_ = std::make_shared<Response>(std::move(response));
    stream_.expires_after(context_.options.write_stall_timeout);
    bhttp::async_write(
        stream_, *response_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return Close();
    const bool keep_alive = response_->keep_alive();
    response_.reset();
    if (!keep_alive) return Close();
    DoRead();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  std::string peer_;
  beast::tcp_stream stream_;
  ServerContext& context_;
  LeasePtr lease_;  // this connection's places in the limits
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Route body_route_ = Route::kNotFound;  // the route the header names, for its body limit
  Request request_;
  std::shared_ptr<Response> response_;
  std::shared_ptr<SnapshotWaiter> waiter_;
  net::steady_timer snapshot_timer_;
  bool head_ = false;
  std::string allow_origin_;  // this request's Access-Control-Allow-Origin, "" for none
};

bool SnapshotWaiter::OnPart(const StreamPartPtr& part) {
  if (auto session = session_.lock()) {
    net::post(session->executor(), [session, part] { session->OnSnapshotPart(part); });
  }
  return false;
}

void SnapshotWaiter::OnClosed() { OnPart(nullptr); }

}  // namespace

void StartHttpSession(net::ip::tcp::socket socket, ServerContext& context) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  auto lease = context.admission.Connect(ec ? "unknown" : endpoint.address().to_string());
  if (!lease) {
    context.admission.Count(Rejection::kPerAddress);
    spdlog::debug("connection from {} refused: too many from that address", PeerName(socket));
    return RefuseConnection(std::move(socket));
  }
  std::make_shared<HttpSession>(std::move(socket), context, std::move(lease))->Start();
}

}  // namespace freshframe::http
