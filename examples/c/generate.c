/* Text generation through the C API (rwkv.h), in C99.
 *
 *   cc -std=c99 generate.c $(pkg-config --cflags --libs rwkv) -o generate
 *   ./generate "The Python interpreter" 200            # the default model
 *   ./generate "Hello" 100 model.rwkv                   # another model
 *
 * Prints what follows the prompt, as `rwkv-cli generate` does, streaming whole UTF-8
 * characters. Samples with temperature 1 and top-p 0.85, or greedily when RWKV_GREEDY
 * is set (the tests compare that with rwkv-cli). */
#include <rwkv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what) {
  fprintf(stderr, "generate: %s: %s\n", what, rwkv_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s PROMPT [MAX_TOKENS [MODEL]]\n", argv[0]);
    return 2;
  }
  const char* prompt = argv[1];
  const long max_tokens = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
  const char* path = argc > 3 ? argv[3] : rwkv_default_model_path();
  if (path == NULL) return fail("no model");
  if (rwkv_api_version() != RWKV_API_VERSION) {
    fprintf(stderr, "generate: librwkv has API version %d, this program was built for %d\n",
            (int)rwkv_api_version(), RWKV_API_VERSION);
    return 1;
  }

  int status = 1;
  rwkv_model* model = rwkv_model_load(path);
  rwkv_state* state = NULL;
  rwkv_tokenizer* tokenizer = NULL;
  rwkv_decoder* decoder = NULL;
  rwkv_sampler* sampler = NULL;
  int32_t* tokens = NULL;
  float* logits = NULL;
  if (model == NULL) { fail("loading the model"); goto done; }
  state = rwkv_state_new(model);
  tokenizer = rwkv_tokenizer_for_model(model, NULL);
  if (state == NULL || tokenizer == NULL) { fail("setting up"); goto done; }
  decoder = rwkv_decoder_new(tokenizer);

  rwkv_sampler_params params = rwkv_sampler_default_params();
  params.top_p = 0.85f;
  if (getenv("RWKV_GREEDY") != NULL) params.temperature = 0.0f;
  const int32_t n_vocab = rwkv_model_n_vocab(model);
  sampler = rwkv_sampler_new(&params, n_vocab);
  logits = malloc(sizeof(float) * (size_t)n_vocab);
  if (decoder == NULL || sampler == NULL || logits == NULL) { fail("setting up"); goto done; }

  /* Tokenize: ask for the count, then fill. */
  const int64_t n_prompt = rwkv_tokenize(tokenizer, prompt, strlen(prompt), NULL, 0);
  if (n_prompt <= 0) { fail(n_prompt == 0 ? "empty prompt" : "tokenizing"); goto done; }
  tokens = malloc(sizeof(int32_t) * (size_t)n_prompt);
  if (tokens == NULL) goto done;
  rwkv_tokenize(tokenizer, prompt, strlen(prompt), tokens, (size_t)n_prompt);

  /* The whole prompt in one call (sequence mode), then one token at a time. */
  if (rwkv_eval(model, state, tokens, (size_t)n_prompt, logits) != 0) { fail("reading the prompt"); goto done; }
  for (long i = 0; i < max_tokens; ++i) {
    int32_t token = rwkv_sampler_sample(sampler, logits);
    if (token < 0) { fail("sampling"); goto done; }
    if (token == 0 && strcmp(rwkv_model_tokenizer_kind(model), "bytes") != 0) break; /* end of text */
    char piece[8];
    const int64_t n_piece = rwkv_detokenize(tokenizer, &token, 1, piece, sizeof piece);
    const int exempt = n_piece == 1 && strchr(" \t0123456789", piece[0]) != NULL;
    rwkv_sampler_accept(sampler, token, exempt);
    size_t n_text = 0;
    const char* text = rwkv_decoder_push(decoder, token, &n_text);
    if (text == NULL) { fail("decoding"); goto done; }
    fwrite(text, 1, n_text, stdout);
    fflush(stdout);
    if (rwkv_eval(model, state, &token, 1, logits) != 0) { fail("generating"); goto done; }
  }
  size_t n_rest = 0;
  const char* rest = rwkv_decoder_flush(decoder, &n_rest);
  fwrite(rest, 1, n_rest, stdout);
  fputc('\n', stdout);
  status = 0;

done:
  free(tokens);
  free(logits);
  rwkv_sampler_free(sampler);
  rwkv_decoder_free(decoder);
  rwkv_tokenizer_free(tokenizer);
  rwkv_state_free(state);
  rwkv_model_free(model);
  return status;
}
