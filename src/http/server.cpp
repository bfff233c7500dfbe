#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "core/clock.h"
#include "http/http.h"
#include "http/router.h"
#include "http/session.h"

namespace freshframe::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Server::Impl {
  explicit Impl(const ServerOptions& options)
      : io(std::make_unique<net::io_context>(options.threads)),
        acceptor(std::in_place, *io),
        admission(options.max_clients, options.max_connections_per_address),
        context{options, streams, MonotonicMicros(), admission} {}

  // Listener: one accept at a time; every connection gets its own strand.
  void DoAccept() {
    acceptor->async_accept(net::make_strand(*io),
                           [this](boost::system::error_code ec, tcp::socket socket) {
                             OnAccept(ec, std::move(socket));
                           });
  }

  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;  // acceptor closed
    if (ec) {
      // Out of descriptors and the like: log, and keep listening.
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      StartHttpSession(std::move(socket), context);
    }
    DoAccept();
  }

  // Both are reset explicitly in Stop(): the acceptor first, then the
  // io_context, whose destruction releases every session's handlers while
  // the context they refer to is still alive.
  std::unique_ptr<net::io_context> io;
  std::optional<tcp::acceptor> acceptor;
  StreamRegistry streams;
  Admission admission;
  ServerContext context;
  std::vector<std::thread> threads;
  std::string url;
  bool stopped = false;
};

namespace {

Expected<net::ip::address> ParseBind(const std::string& bind) {
  if (bind == "localhost") return net::ip::make_address("127.0.0.1");
  boost::system::error_code ec;
  auto address = net::ip::make_address(bind, ec);
  if (ec)
    return Error{"invalid bind address '" + bind +
                 "' (use an IP address such as 127.0.0.1, ::1 or 0.0.0.0)"};
  return address;
}

// Built with append rather than operator+ (GCC 12 -O3 reports a false
// -Wrestrict on "[" + std::string).
std::string HostText(const net::ip::address& address) {
  std::string text;
  if (address.is_v6()) text.append("[");
  text.append(address.to_string());
  if (address.is_v6()) text.append("]");
  return text;
}

std::string BrowsableUrl(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_unspecified()) {
    address = address.is_v6() ? net::ip::address(net::ip::address_v6::loopback())
                              : net::ip::address(net::ip::address_v4::loopback());
  }
  std::string url = "http://";
  url.append(HostText(address)).append(":").append(std::to_string(endpoint.port())).append("/");
  return url;
}

}  // namespace

Expected<std::string> ValidateBind(const std::string& bind) {
  auto address = ParseBind(bind);
  if (!address) return address.error();
  return address->to_string();
}

Expected<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, ServerDeps deps,
                                                std::string name) {
  auto address = ParseBind(options.bind);
  if (!address) return address.error();
  ServerOptions resolved = options;
  if (resolved.threads <= 0) {
    resolved.threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  }
  auto impl = std::make_unique<Impl>(resolved);
  const tcp::endpoint endpoint(*address, options.port);
  std::string where = HostText(*address);
  where.append(":").append(std::to_string(options.port));
  boost::system::error_code ec;
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Error{"cannot listen on " + where + ": " + ec.message()};
  impl->url = BrowsableUrl(impl->acceptor->local_endpoint());

  impl->DoAccept();
  // spdlog's registry is a function-local static inside libspdlog, whose
  // guarded construction TSan cannot see; made here, before the I/O threads
  // exist, it happens before every log line they write (two sessions' first
  // lines, on two threads at once, were reported as a race on it).
  spdlog::default_logger_raw();
  for (int i = 0; i < resolved.threads; ++i) {
    impl->threads.emplace_back([io = impl->io.get()] { io->run(); });
  }
  auto server = std::unique_ptr<Server>(new Server(std::move(impl)));
  if (auto added = server->AddStream(std::move(name), std::move(deps)); !added) {
    return added.error();
  }
  return server;
}

Expected<bool> Server::AddStream(std::string name, ServerDeps deps, size_t position) {
  if (!impl_ || impl_->stopped) return Error{"the server is stopping"};
  if (!IsStreamName(name)) {
    return Error{"stream name '" + name + "' is not URL-safe (1.." +
                 std::to_string(kMaxStreamName) + " of A-Z a-z 0-9 _ -)"};
  }
  auto stream = std::make_shared<StreamContext>(std::move(name), std::move(deps));
  stream->Start();
  if (auto added = impl_->streams.Add(stream, position); !added) {
    stream->Close();
    return added.error();
  }
  return true;
}

bool Server::RemoveStream(const std::string& name) {
  if (!impl_) return false;
  StreamContextPtr removed = impl_->streams.Remove(name);
  if (!removed) return false;
  // New requests no longer find it; Close stops its threads and ends its
  // sessions, which let go of it (and of deps.owner) as they finish.
  removed->Close();
  return true;
}

std::vector<std::string> Server::StreamNames() const {
  std::vector<std::string> names;
  if (!impl_) return names;
  for (const auto& stream : impl_->streams.All()) names.push_back(stream->name);
  return names;
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // The watcher threads first, and the variants' part streams closed (the
  // pipeline's variant encoders run on), so nothing posts to a session any
  // more; then MJPEG, WebSocket and SSE sessions alike end with the
  // io_context.
  for (const auto& stream : impl_->streams.All()) stream->Close();
  impl_->context.life->End();  // WebRTC answers still to come post nothing
  impl_->io->stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  impl_->acceptor.reset();
  impl_->io.reset();
  // Destroying the io_context's pending handlers releases every session (and
  // with it every Demand hold) before the pipeline that owns Demand goes.
  impl_.reset();
}

uint16_t Server::port() const {
  boost::system::error_code ec;
  return impl_ ? impl_->acceptor->local_endpoint(ec).port() : 0;
}

std::string Server::url() const { return impl_ ? impl_->url : std::string(); }

}  // namespace freshframe::http
