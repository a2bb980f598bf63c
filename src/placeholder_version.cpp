namespace rwkv {
const char* library_version() { return "0.1.0"; }
}  // namespace rwkv
