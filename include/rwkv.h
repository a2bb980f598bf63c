/* The C API of rwkv-engine: load an RWKV model, feed tokens, read logits, keep and
 * restore states, tokenize and sample. Valid C99 and C++; link with -lrwkv
 * (pkg-config: rwkv).
 *
 *   rwkv_model* model = rwkv_model_load("model.rwkv");
 *   if (!model) { fprintf(stderr, "%s\n", rwkv_last_error()); return 1; }
 *   rwkv_state* state = rwkv_state_new(model);
 *   float* logits = malloc(sizeof(float) * rwkv_model_n_vocab(model));
 *   int32_t prompt[] = {33155, 45, 40213};
 *   rwkv_eval(model, state, prompt, 3, logits);
 *
 * Conventions:
 * - Functions returning int give 0 on success and -1 on error; those returning a
 *   pointer give NULL on error. rwkv_last_error() then tells what went wrong, naming
 *   the file, argument or token; it is per thread and stays set until the next error.
 * - Nothing here throws or aborts on bad input: every argument is checked.
 * - A loaded model is immutable and may be used from several threads at once, each
 *   with its own states. A state keeps its model alive: freeing the model while
 *   states remain is allowed. Tokenizers are immutable too; samplers and stream
 *   decoders belong to one thread at a time.
 * - Every *_free function accepts NULL.
 */
#ifndef RWKV_H
#define RWKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a declaration in this file changes incompatibly. */
#define RWKV_API_VERSION 1

#if defined(__GNUC__)
#define RWKV_EXPORT __attribute__((visibility("default")))
#else
#define RWKV_EXPORT
#endif

typedef struct rwkv_model rwkv_model;
typedef struct rwkv_state rwkv_state;
typedef struct rwkv_tokenizer rwkv_tokenizer;
typedef struct rwkv_decoder rwkv_decoder;
typedef struct rwkv_sampler rwkv_sampler;

/* ---- Library ------------------------------------------------------------------- */

/* RWKV_API_VERSION of the library actually loaded (compare with the header's). */
RWKV_EXPORT int32_t rwkv_api_version(void);
/* The library's version, "MAJOR.MINOR.PATCH". */
RWKV_EXPORT const char* rwkv_version(void);
/* The last error's message on this thread; "" when there has been none. */
RWKV_EXPORT const char* rwkv_last_error(void);

/* Threads for the matrix products: 0 = one per physical core. Takes effect only
 * before the first model is loaded (-1 with an error afterwards, unless n is the
 * count already in use). */
RWKV_EXPORT int rwkv_set_threads(int32_t n_threads);
/* The thread count in use (or that will be used). */
RWKV_EXPORT int32_t rwkv_get_threads(void);

/* The default model: $RWKV_DEFAULT_MODEL when set, else the one the build or the
 * installation put in place. NULL with an error when none is found. The string
 * stays valid until the next call on this thread. */
RWKV_EXPORT const char* rwkv_default_model_path(void);

/* ---- Models -------------------------------------------------------------------- */

/* Loads a native model file (written by `rwkv-cli convert`), or converts any other
 * format the library reads (.pth, rwkv.cpp, GGUF, safetensors, a Hugging Face
 * directory) in memory first. NULL on error. */
RWKV_EXPORT rwkv_model* rwkv_model_load(const char* path);
RWKV_EXPORT void rwkv_model_free(rwkv_model* model);

RWKV_EXPORT int32_t rwkv_model_n_vocab(const rwkv_model* model);
RWKV_EXPORT int32_t rwkv_model_n_layer(const rwkv_model* model);
RWKV_EXPORT int32_t rwkv_model_n_embd(const rwkv_model* model);
/* Heads and head size; 0 for RWKV-4, which has none. */
RWKV_EXPORT int32_t rwkv_model_n_head(const rwkv_model* model);
RWKV_EXPORT int32_t rwkv_model_head_size(const rwkv_model* model);
/* The architecture as the official code names it: "4", "5.0", "5.1", "5.2", "6.0", "7.0". */
RWKV_EXPORT const char* rwkv_model_arch(const rwkv_model* model);
/* The tokenizer the model was trained with: "bytes", "world" or "neox". */
RWKV_EXPORT const char* rwkv_model_tokenizer_kind(const rwkv_model* model);
/* Floats in one state of this model. */
RWKV_EXPORT size_t rwkv_model_state_size(const rwkv_model* model);

/* Converts a model of any readable format to a native file. `type` is the weight
 * type of the matrices: "f32", "f16", "bf16", "q8_0", "q4_s", or NULL/"" to keep the
 * source's precision. Written to a temporary name and renamed when complete. */
RWKV_EXPORT int rwkv_convert(const char* input_path, const char* output_path, const char* type);
/* Re-quantizes a native model file's matrices to `type` (as above, not NULL). */
RWKV_EXPORT int rwkv_quantize(const char* input_path, const char* output_path, const char* type);

/* ---- States -------------------------------------------------------------------- */

/* A new initial state for the model. */
RWKV_EXPORT rwkv_state* rwkv_state_new(const rwkv_model* model);
RWKV_EXPORT rwkv_state* rwkv_state_copy(const rwkv_state* state);
RWKV_EXPORT void rwkv_state_free(rwkv_state* state);
/* Back to the initial state. */
RWKV_EXPORT int rwkv_state_reset(rwkv_state* state);
/* Copies `from` into `to` (both of the same model). */
RWKV_EXPORT int rwkv_state_assign(rwkv_state* to, const rwkv_state* from);
/* The state's floats (rwkv_model_state_size of them, layout in docs/format.md),
 * for reading and writing in place. */
RWKV_EXPORT float* rwkv_state_data(rwkv_state* state);
RWKV_EXPORT size_t rwkv_state_size(const rwkv_state* state);

/* State files (a checksummed format that records the model's shape). */
RWKV_EXPORT int rwkv_state_save(const rwkv_state* state, const char* path);
RWKV_EXPORT rwkv_state* rwkv_state_load(const rwkv_model* model, const char* path);
/* A state-tuning checkpoint (.pth with blocks.N.att.time_state) as a start state. */
RWKV_EXPORT rwkv_state* rwkv_state_load_tuned(const rwkv_model* model, const char* pth_path);
/* The bytes of a state file, in memory. Writes them to `out` when `capacity` is
 * large enough and returns their count either way (call with NULL, 0 to size a
 * buffer); -1 on error. */
RWKV_EXPORT int64_t rwkv_state_to_bytes(const rwkv_state* state, void* out, size_t capacity);
RWKV_EXPORT rwkv_state* rwkv_state_from_bytes(const rwkv_model* model, const void* bytes, size_t n_bytes);

/* ---- Evaluation ---------------------------------------------------------------- */

/* Feeds n tokens (n >= 1) in sequence mode; writes the last token's n_vocab logits
 * when logits != NULL. The state is unchanged when an error is returned. */
RWKV_EXPORT int rwkv_eval(const rwkv_model* model, rwkv_state* state, const int32_t* tokens, size_t n,
                          float* logits);
/* As rwkv_eval, writing n × n_vocab logits: every token's. */
RWKV_EXPORT int rwkv_eval_all(const rwkv_model* model, rwkv_state* state, const int32_t* tokens, size_t n,
                              float* logits);

/* One sequence in a batch. */
typedef struct rwkv_batch_item {
  const int32_t* tokens; /* its next tokens: one when decoding, or a chunk of a prompt */
  size_t n_tokens;       /* >= 1 */
  rwkv_state* state;     /* advanced in place; no two items may share one */
  float* logits;         /* NULL, or room for n_logits floats */
  size_t n_logits;       /* 0, n_vocab (the last token's) or n_tokens × n_vocab (every token's) */
} rwkv_batch_item;

/* Advances several independent sequences at once: every weight matrix is read once
 * for all their tokens, so B sequences taking one token each cost far less than B
 * calls of rwkv_eval. Each item's result is that of rwkv_eval on its own (within
 * float rounding). No state changes when an error is returned. */
RWKV_EXPORT int rwkv_eval_batch(const rwkv_model* model, const rwkv_batch_item* items, size_t n_items);

/* ---- Tokenizers ---------------------------------------------------------------- */

/* kind: "bytes", "world" or "neox"; vocab_path: the World vocabulary file or the
 * NeoX tokenizer.json (ignored for bytes). */
RWKV_EXPORT rwkv_tokenizer* rwkv_tokenizer_load(const char* kind, const char* vocab_path);
/* The model's own tokenizer: bytes needs no file; World uses the vocabulary embedded
 * in the model file when there is one; otherwise vocab_path, or when it is NULL the
 * kind's usual file name in the working directory or beside the model. */
RWKV_EXPORT rwkv_tokenizer* rwkv_tokenizer_for_model(const rwkv_model* model, const char* vocab_path);
RWKV_EXPORT void rwkv_tokenizer_free(rwkv_tokenizer* tokenizer);
RWKV_EXPORT int32_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer* tokenizer);
/* "bytes", "world" or "neox". */
RWKV_EXPORT const char* rwkv_tokenizer_kind(const rwkv_tokenizer* tokenizer);

/* Text (n_bytes of UTF-8) to ids: writes them to `out` when `capacity` is large
 * enough and returns their count either way; -1 on error. */
RWKV_EXPORT int64_t rwkv_tokenize(const rwkv_tokenizer* tokenizer, const char* text, size_t n_bytes, int32_t* out,
                                  size_t capacity);
/* Ids to the bytes they stand for (not necessarily whole UTF-8 characters): writes
 * them to `out` when `capacity` is large enough and returns their count either way;
 * -1 on error. Special tokens give no bytes. */
RWKV_EXPORT int64_t rwkv_detokenize(const rwkv_tokenizer* tokenizer, const int32_t* ids, size_t n_ids, char* out,
                                    size_t capacity);

/* Streaming decoding: text as ids arrive, never part of a UTF-8 character (bytes that
 * can never become valid UTF-8 turn into U+FFFD). The decoder keeps the tokenizer
 * alive: either may be freed first. */
RWKV_EXPORT rwkv_decoder* rwkv_decoder_new(const rwkv_tokenizer* tokenizer);
RWKV_EXPORT void rwkv_decoder_free(rwkv_decoder* decoder);
/* Adds one id; returns the text now complete (often "") and its length in *n_bytes;
 * NULL on error. The text stays valid until the decoder's next call. */
RWKV_EXPORT const char* rwkv_decoder_push(rwkv_decoder* decoder, int32_t id, size_t* n_bytes);
/* Returns what is held back and starts over. */
RWKV_EXPORT const char* rwkv_decoder_flush(rwkv_decoder* decoder, size_t* n_bytes);

/* ---- Sampling ------------------------------------------------------------------ */

enum { RWKV_SAMPLING_OFFICIAL = 0, RWKV_SAMPLING_LLAMA = 1 };

typedef struct rwkv_sampler_params {
  float temperature;        /* 0 = greedy */
  int32_t top_k;            /* 0 = off */
  float top_p;              /* 1 = off */
  float min_p;              /* 0 = off */
  float repetition_penalty; /* 1 = off */
  float presence_penalty;   /* ChatRWKV's alpha_presence */
  float frequency_penalty;  /* alpha_frequency */
  float penalty_decay;      /* alpha_decay */
  uint64_t seed;
  int32_t order;             /* RWKV_SAMPLING_OFFICIAL (ChatRWKV's order) or RWKV_SAMPLING_LLAMA */
  const int32_t* bias_ids;   /* n_bias ids whose logits get bias_values added (may be NULL) */
  const float* bias_values;
  size_t n_bias;
  const int32_t* banned_ids; /* n_banned ids never sampled (may be NULL) */
  size_t n_banned;
} rwkv_sampler_params;

/* The library's defaults (temperature 1, every filter off, decay 0.996, seed 0). */
RWKV_EXPORT rwkv_sampler_params rwkv_sampler_default_params(void);
/* The arrays in params are copied. */
RWKV_EXPORT rwkv_sampler* rwkv_sampler_new(const rwkv_sampler_params* params, int32_t n_vocab);
RWKV_EXPORT void rwkv_sampler_free(rwkv_sampler* sampler);
/* Picks a token from n_vocab logits (which are used as scratch and changed); -1 on error. */
RWKV_EXPORT int32_t rwkv_sampler_sample(rwkv_sampler* sampler, float* logits);
/* Records a generated token for the penalties; exempt != 0 for tokens that decode to
 * a single space, tab or digit, which ChatRWKV does not count. */
RWKV_EXPORT int rwkv_sampler_accept(rwkv_sampler* sampler, int32_t token, int exempt);
/* Forgets the penalty history. */
RWKV_EXPORT int rwkv_sampler_reset(rwkv_sampler* sampler);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_H */
