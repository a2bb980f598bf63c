# Included by the top-level CMakeLists.txt inside its testing section. Each test runs a
# script under tests/node with Node.js against the rwkv-server built here; the npm
# packages (package-lock.json) are installed into tests/node/node_modules by
# tools/setup.sh.
find_program(RWKV_NODE NAMES node nodejs REQUIRED)
set(RWKV_NODE_DIR ${PROJECT_SOURCE_DIR}/tests/node)
if(RWKV_SANITIZE)
  # rwkv-server is built with ASan here; leaks at exit are not what these tests check.
  set(RWKV_NODE_ENV "ASAN_OPTIONS=detect_leaks=0")
else()
  set(RWKV_NODE_ENV "")
endif()

# The chat page at "/" in headless Chromium (/usr/bin/chromium, or $RWKV_CHROMIUM).
add_test(NAME server.chat_page
         COMMAND ${RWKV_NODE} ${RWKV_NODE_DIR}/chat_page_test.mjs --server $<TARGET_FILE:rwkv-server>)
set_tests_properties(server.chat_page PROPERTIES LABELS node TIMEOUT 180 ENVIRONMENT "${RWKV_NODE_ENV}")

# The server through the official openai npm client: models, chat and completions with
# and without streaming, and 401/404/400 as the client's error classes.
add_test(NAME server.openai_client
         COMMAND ${RWKV_NODE} ${RWKV_NODE_DIR}/openai_client_test.mjs --server $<TARGET_FILE:rwkv-server>)
set_tests_properties(server.openai_client PROPERTIES LABELS node TIMEOUT 300 ENVIRONMENT "${RWKV_NODE_ENV}")

# A bounded load and fault run (streams, disconnects, malformed requests) small enough
# for the sanitizer build; tests/node/load_test.mjs --clients 32 --requests 500 is the
# full one.
add_test(NAME server.load
         COMMAND ${RWKV_NODE} ${RWKV_NODE_DIR}/load_test.mjs --server $<TARGET_FILE:rwkv-server>
                 --clients 8 --requests 60 --max-tokens 8 --seed 1)
set_tests_properties(server.load PROPERTIES LABELS node TIMEOUT 300 ENVIRONMENT "${RWKV_NODE_ENV}")

# Two replicas behind nginx with examples/nginx/rwkv-replicas.conf: a conversation's
# follow-up turn reaches the replica holding its cached state (docs/scaling.md).
find_program(RWKV_NGINX NAMES nginx PATHS /usr/sbin /usr/local/sbin REQUIRED)
add_test(NAME server.nginx_replicas
         COMMAND ${RWKV_NODE} ${RWKV_NODE_DIR}/nginx_replicas_test.mjs --server $<TARGET_FILE:rwkv-server>
                 --nginx ${RWKV_NGINX})
set_tests_properties(server.nginx_replicas PROPERTIES LABELS node TIMEOUT 300 ENVIRONMENT "${RWKV_NODE_ENV}")
