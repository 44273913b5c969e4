// AF_PACKET exists only on Linux. Elsewhere the addon still builds (so `npm ci` works on a
// developer's laptop) and opening a socket says why it cannot.
#include <napi.h>

namespace {

Napi::Value Unsupported(const Napi::CallbackInfo& info) {
  Napi::Error error = Napi::Error::New(info.Env(), "AF_PACKET sockets exist only on Linux");
  error.Set("code", Napi::String::New(info.Env(), "ENOTSUP"));
  error.ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", Napi::Function::New(env, Unsupported, "PacketSocket"));
  return exports;
}

}  // namespace

NODE_API_MODULE(packet, Init)
