# The AF_PACKET socket addon of the node agent (see README.md). Built by the root package's
# `install` script: node-gyp rebuild --directory=native/packet
{
  "targets": [
    {
      "target_name": "packet",
      "sources": ["src/packet.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"sources!": ["src/packet.cc"], "sources": ["src/unsupported.cc"]}]]
    }
  ]
}
