// AF_PACKET sockets for Node: send and receive whole Ethernet frames on one interface.
//
// One class, PacketSocket. The socket is non-blocking and watched with a libuv poll handle on
// the main loop, so a frame arriving calls JavaScript without ever blocking the event loop.
// Errors of the system become JavaScript exceptions (code = errno name); nothing here aborts.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace {

// Frames are at most the MTU plus headers; 64 KiB covers jumbo frames and GRO'd skbs alike.
constexpr size_t kReceiveBufferSize = 65536;
// Frames handled per wake-up before we yield to the loop (a flood must not starve timers).
constexpr int kFramesPerWake = 64;

Napi::Error SystemError(Napi::Env env, int err, const std::string& what) {
  std::string message = what + ": " + strerror(err);
  if (err == EPERM || err == EACCES) message += " (AF_PACKET sockets need CAP_NET_RAW)";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, uv_err_name(-err)));
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

Napi::Error TypeError(Napi::Env env, const std::string& message) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return error;
}

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PacketSocket",
                       {
                           InstanceMethod<&PacketSocket::Send>("send"),
                           InstanceMethod<&PacketSocket::AddMembership>("addMembership"),
                           InstanceMethod<&PacketSocket::DropMembership>("dropMembership"),
                           InstanceMethod<&PacketSocket::Close>("close"),
                           InstanceAccessor<&PacketSocket::IfIndex>("ifindex"),
                       });
  }

  // new PacketSocket({ interface: string, protocol: number, filter?: Buffer, onFrame, onError })
  //   onFrame(frame: Buffer, packetType: number)  packetType is PACKET_HOST, PACKET_OUTGOING, ...
  //   onError(error: Error)                       a receive failed (e.g. ENETDOWN); the socket stays open
  explicit PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall() || info.Length() != 1 || !info[0].IsObject()) {
      TypeError(env, "PacketSocket takes one options object").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    Napi::Value name = options.Get("interface");
    Napi::Value protocol = options.Get("protocol");
    Napi::Value filter = options.Get("filter");
    Napi::Value onFrame = options.Get("onFrame");
    Napi::Value onError = options.Get("onError");
    if (env.IsExceptionPending()) return;
    if (!name.IsString() || !protocol.IsNumber() || !onFrame.IsFunction() || !onError.IsFunction() ||
        !(filter.IsUndefined() || filter.IsBuffer())) {
      TypeError(env, "PacketSocket options: { interface: string, protocol: number, filter?: Buffer, onFrame: function, onError: function }")
          .ThrowAsJavaScriptException();
      return;
    }
    uint32_t proto = protocol.As<Napi::Number>().Uint32Value();
    if (proto > 0xffff) {
      TypeError(env, "protocol must be an EtherType (0..0xffff)").ThrowAsJavaScriptException();
      return;
    }
    std::string ifname = name.As<Napi::String>().Utf8Value();
    if (ifname.empty() || ifname.size() >= IF_NAMESIZE) {
      SystemError(env, ENODEV, "no such interface '" + ifname + "'").ThrowAsJavaScriptException();
      return;
    }
    unsigned int index = if_nametoindex(ifname.c_str());
    if (index == 0) {
      SystemError(env, errno, "no such interface '" + ifname + "'").ThrowAsJavaScriptException();
      return;
    }

    // Protocol 0 receives nothing: the filter is attached before bind() gives the socket a
    // protocol and an interface, so no frame of another interface or kind is ever queued.
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      SystemError(env, errno, "socket(AF_PACKET)").ThrowAsJavaScriptException();
      return;
    }
    if (filter.IsBuffer()) {
      Napi::Buffer<uint8_t> program = filter.As<Napi::Buffer<uint8_t>>();
      size_t count = program.Length() / sizeof(sock_filter);
      if (program.Length() % sizeof(sock_filter) != 0 || count == 0 || count > BPF_MAXINSNS) {
        close(fd);
        TypeError(env, "filter must be 1 to 4096 classic BPF instructions of 8 bytes").ThrowAsJavaScriptException();
        return;
      }
      std::vector<sock_filter> instructions(count);
      memcpy(instructions.data(), program.Data(), program.Length());
      sock_fprog fprog = {static_cast<unsigned short>(count), instructions.data()};
      if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) < 0) {
        int err = errno;
        close(fd);
        SystemError(env, err, "setsockopt(SO_ATTACH_FILTER)").ThrowAsJavaScriptException();
        return;
      }
    }
    sockaddr_ll address = {};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(static_cast<uint16_t>(proto));
    address.sll_ifindex = static_cast<int>(index);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
      int err = errno;
      close(fd);
      SystemError(env, err, "bind(AF_PACKET, '" + ifname + "')").ThrowAsJavaScriptException();
      return;
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      close(fd);
      Napi::Error::New(env, "no libuv loop").ThrowAsJavaScriptException();
      return;
    }
    auto poll = new uv_poll_t;
    int rc = uv_poll_init(loop, poll, fd);
    if (rc == 0) {
      poll->data = this;
      rc = uv_poll_start(poll, UV_READABLE, OnReadable);
      if (rc != 0) uv_close(reinterpret_cast<uv_handle_t*>(poll), FreePoll);
    } else {
      delete poll;
    }
    if (rc != 0) {
      close(fd);
      SystemError(env, -rc, "uv_poll_start").ThrowAsJavaScriptException();
      return;
    }

    fd_ = fd;
    ifindex_ = index;
    poll_ = poll;
    buffer_.resize(kReceiveBufferSize);
    onFrame_ = Napi::Persistent(onFrame.As<Napi::Function>());
    onError_ = Napi::Persistent(onError.As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "PacketSocket", info.This().As<Napi::Object>());
    // While open, the poll handle points at this object: keep it from being collected.
    Ref();
  }

  ~PacketSocket() override { Release(); }

 private:
  static void FreePoll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  // Stops the poll and closes the socket; safe to call twice.
  void Release() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
      poll_ = nullptr;
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto self = static_cast<PacketSocket*>(handle->data);
    if (self == nullptr) return;
    // A callback may close the socket (dropping the reference that keeps it alive): hold our
    // own until the loop below has seen that.
    self->Ref();
    self->Receive(status);
    self->Unref();
  }

  void Receive(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      // libuv reports POLLERR as EBADF and stops the handle. On a packet socket POLLERR means
      // a pending socket error, ENETDOWN when the link went down or away: read (and so clear)
      // it, report it, and watch again, so that the socket receives once the link is back.
      int err = 0;
      socklen_t length = sizeof err;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &length) < 0 || err == 0) {
        Report(SystemError(env, -status, "poll (the socket no longer receives; close it)"));
        return;
      }
      int rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
      Report(SystemError(env, err, "AF_PACKET socket"));
      if (rc != 0 && fd_ >= 0) Report(SystemError(env, -rc, "uv_poll_start (the socket no longer receives; close it)"));
      return;
    }
    for (int i = 0; i < kFramesPerWake && fd_ >= 0; i++) {
      sockaddr_ll from = {};
      socklen_t fromLength = sizeof from;
      ssize_t n = recvfrom(fd_, buffer_.data(), buffer_.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromLength);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) Report(SystemError(env, errno, "recvfrom(AF_PACKET)"));
        return;
      }
      Napi::Buffer<uint8_t> frame = Napi::Buffer<uint8_t>::Copy(env, buffer_.data(), static_cast<size_t>(n));
      Call(onFrame_, {frame, Napi::Number::New(env, from.sll_pkttype)});
    }
  }

  void Report(const Napi::Error& error) { Call(onError_, {error.Value()}); }

  // Calls into JavaScript from a libuv callback. A callback that throws is JavaScript's bug:
  // it goes to process 'uncaughtException' like any other, instead of staying pending here.
  void Call(const Napi::FunctionReference& callback, const std::initializer_list<napi_value>& args) {
    Napi::Env env = Env();
    if (callback.IsEmpty() || !context_) return;
    callback.MakeCallback(Value(), args, *context_);
    if (env.IsExceptionPending()) {
      Napi::Error error = env.GetAndClearPendingException();
      napi_fatal_exception(env, error.Value());
    }
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBuffer()) {
      TypeError(env, "send(frame: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fd_ < 0) {
      SystemError(env, EBADF, "send on a closed PacketSocket").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> frame = info[0].As<Napi::Buffer<uint8_t>>();
    // Bound to an interface, the socket needs no address: the frame carries its own header.
    ssize_t n;
    do n = send(fd_, frame.Data(), frame.Length(), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) SystemError(env, errno, "send(AF_PACKET)").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Value Membership(const Napi::CallbackInfo& info, int option, const char* name) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() != 6) {
      TypeError(env, std::string(name) + "(mac: Buffer of 6 bytes)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fd_ < 0) {
      SystemError(env, EBADF, std::string(name) + " on a closed PacketSocket").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    packet_mreq request = {};
    request.mr_ifindex = static_cast<int>(ifindex_);
    request.mr_type = PACKET_MR_MULTICAST;
    request.mr_alen = 6;
    memcpy(request.mr_address, info[0].As<Napi::Buffer<uint8_t>>().Data(), 6);
    if (setsockopt(fd_, SOL_PACKET, option, &request, sizeof request) < 0) {
      SystemError(env, errno, std::string("setsockopt(") + (option == PACKET_ADD_MEMBERSHIP ? "PACKET_ADD_MEMBERSHIP" : "PACKET_DROP_MEMBERSHIP") + ")")
          .ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  // Joins a multicast group (e.g. an IPv6 solicited-node group, 33:33:ff:xx:xx:xx) on the
  // interface; the kernel counts joins per socket and forgets them all when the socket closes.
  Napi::Value AddMembership(const Napi::CallbackInfo& info) { return Membership(info, PACKET_ADD_MEMBERSHIP, "addMembership"); }
  Napi::Value DropMembership(const Napi::CallbackInfo& info) { return Membership(info, PACKET_DROP_MEMBERSHIP, "dropMembership"); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool wasOpen = fd_ >= 0;
    Release();
    if (wasOpen) {
      onFrame_.Reset();
      onError_.Reset();
      context_.reset();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value IfIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }

  int fd_ = -1;
  unsigned int ifindex_ = 0;
  uv_poll_t* poll_ = nullptr;
  std::vector<uint8_t> buffer_;
  Napi::FunctionReference onFrame_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", PacketSocket::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(packet, Init)
