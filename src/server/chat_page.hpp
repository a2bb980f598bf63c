// The chat page rwkv-server serves at "/": one self-contained HTML document (inline CSS
// and JavaScript, nothing fetched from elsewhere) that keeps the conversation in the
// browser and streams each reply from POST /v1/chat/completions.
#pragma once

#include <string_view>

namespace rwkv::server {

// The whole page, UTF-8; served as text/html under kChatPageContentSecurityPolicy.
std::string_view chat_page_html();

// Lets the page's inline script and style run and reach this server only: no other
// origin, no frames, no plug-ins.
inline constexpr const char* kChatPageContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace rwkv::server
