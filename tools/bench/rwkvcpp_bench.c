// A benchmark driver over rwkv.cpp's public C API (rwkv.h), measured the way
// `rwkv-cli bench` measures our engine, for tools/bench/device_scaling.sh:
//
//   rwkvcpp_bench bench --model M.bin [--threads N] [--decode N] [--prefill N] [--chunk C]
//   rwkvcpp_bench quantize IN.bin OUT.bin Q8_0|Q5_1|Q5_0|Q4_1|Q4_0
//
// bench prints one JSON object: decode ms/token (median of --decode single-token
// rwkv_eval calls, logits included, greedy, after a --prefill-token prompt and a few
// untimed steps) and prefill tokens/s (median of 3 timed rwkv_eval_sequence runs of
// --prefill tokens from the initial state, after one untimed run that builds the graph;
// --chunk C > 0 uses rwkv_eval_sequence_in_chunks instead). The prompt's token ids are
// the same sequence rwkv-cli bench feeds.
//
// Built against rwkv.cpp (github.com/RWKV/rwkv.cpp), whose rwkv.h this includes; it
// contains none of rwkv.cpp's own code.
#define _POSIX_C_SOURCE 199309L

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rwkv.h"

enum { kWarmupTokens = 4, kPrefillRuns = 3 };

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// The middle element (the upper one of an even count), as rwkv-cli bench reports.
static double median(double* values, size_t count) {
  qsort(values, count, sizeof(double), compare_doubles);
  return values[count / 2];
}

// rwkv-cli bench's prompt: a fixed linear congruential sequence over the vocabulary.
static void bench_tokens(uint32_t* out, size_t count, uint32_t n_vocab) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = (uint32_t)((state >> 33) % n_vocab);
  }
}

static uint32_t argmax(const float* values, size_t count) {
  size_t best = 0;
  for (size_t i = 1; i < count; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return (uint32_t)best;
}

static void* checked_malloc(size_t bytes) {
  void* p = malloc(bytes);
  if (p == NULL) {
    fprintf(stderr, "rwkvcpp_bench: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

static void usage(FILE* to) {
  fputs("usage: rwkvcpp_bench bench --model M.bin [--threads N] [--decode N] [--prefill N] [--chunk C]\n"
        "       rwkvcpp_bench quantize IN.bin OUT.bin Q8_0|Q5_1|Q5_0|Q4_1|Q4_0\n",
        to);
}

// A positive integer flag value, or exit 2 naming the flag.
static long parse_count(const char* flag, const char* text, long min) {
  char* end = NULL;
  errno = 0;
  const long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > 1000000) {
    fprintf(stderr, "rwkvcpp_bench: flag %s: '%s' is not an integer >= %ld\n", flag, text, min);
    exit(2);
  }
  return value;
}

// The JSON string of s (paths and rwkv.cpp's system info hold no control characters,
// but quotes and backslashes are escaped all the same).
static void print_json_string(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') putchar('\\');
    if ((unsigned char)*s >= 0x20) putchar(*s);
  }
  putchar('"');
}

static int run_quantize(int argc, char** argv) {
  if (argc != 5) {
    usage(stderr);
    return 2;
  }
  rwkv_set_print_errors(NULL, true);
  const double start = now_seconds();
  if (!rwkv_quantize_model_file(argv[2], argv[3], argv[4])) {
    fprintf(stderr, "rwkvcpp_bench: quantizing %s to %s as %s failed (error flags 0x%x)\n", argv[2], argv[3],
            argv[4], (unsigned)rwkv_get_last_error(NULL));
    return 1;
  }
  fprintf(stderr, "rwkvcpp_bench: %s -> %s (%s) in %.1f s\n", argv[2], argv[3], argv[4], now_seconds() - start);
  return 0;
}

static int run_bench(int argc, char** argv) {
  const char* model_path = NULL;
  long threads = 1, decode_tokens = 32, prefill_tokens = 128, chunk = 0;
  for (int i = 2; i < argc; ++i) {
    const char* flag = argv[i];
    if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "rwkvcpp_bench: flag %s needs a value\n", flag);
      return 2;
    }
    const char* value = argv[++i];
    if (strcmp(flag, "--model") == 0) {
      model_path = value;
    } else if (strcmp(flag, "--threads") == 0) {
      threads = parse_count(flag, value, 1);
    } else if (strcmp(flag, "--decode") == 0) {
      decode_tokens = parse_count(flag, value, 1);
    } else if (strcmp(flag, "--prefill") == 0) {
      prefill_tokens = parse_count(flag, value, 1);
    } else if (strcmp(flag, "--chunk") == 0) {
      chunk = parse_count(flag, value, 0);
    } else {
      fprintf(stderr, "rwkvcpp_bench: unknown flag %s\n", flag);
      return 2;
    }
  }
  if (model_path == NULL) {
    usage(stderr);
    return 2;
  }

  rwkv_set_print_errors(NULL, true);
  const double load_start = now_seconds();
  struct rwkv_context* ctx = rwkv_init_from_file(model_path, (uint32_t)threads, 0);
  const double load_seconds = now_seconds() - load_start;
  if (ctx == NULL) {
    fprintf(stderr, "rwkvcpp_bench: %s: rwkv_init_from_file failed (error flags 0x%x)\n", model_path,
            (unsigned)rwkv_get_last_error(NULL));
    return 1;
  }
  const size_t n_vocab = rwkv_get_n_vocab(ctx), state_len = rwkv_get_state_len(ctx);
  float* state = checked_malloc(state_len * sizeof(float));
  float* next_state = checked_malloc(state_len * sizeof(float));
  float* logits = checked_malloc(rwkv_get_logits_len(ctx) * sizeof(float));
  uint32_t* prompt = checked_malloc((size_t)prefill_tokens * sizeof(uint32_t));
  bench_tokens(prompt, (size_t)prefill_tokens, (uint32_t)n_vocab);

  // Prefill from the initial state (state_in NULL), logits of the last token only.
  double prefill_runs[kPrefillRuns], first_prefill_seconds = 0;
  for (int run = -1; run < kPrefillRuns; ++run) {
    const double start = now_seconds();
    const bool ok = chunk > 0 ? rwkv_eval_sequence_in_chunks(ctx, prompt, (size_t)prefill_tokens, (size_t)chunk,
                                                             NULL, state, logits)
                              : rwkv_eval_sequence(ctx, prompt, (size_t)prefill_tokens, NULL, state, logits);
    const double seconds = now_seconds() - start;
    if (!ok) {
      fprintf(stderr, "rwkvcpp_bench: %s: prefill of %ld tokens failed (error flags 0x%x)\n", model_path,
              prefill_tokens, (unsigned)rwkv_get_last_error(ctx));
      return 1;
    }
    if (run < 0) {
      first_prefill_seconds = seconds;  // builds and caches the sequence graph
    } else {
      prefill_runs[run] = seconds;
    }
  }
  const double prefill_seconds = median(prefill_runs, kPrefillRuns);

  // Greedy decode after the prompt: each step feeds the previous step's most likely token.
  double* decode_seconds = checked_malloc((size_t)decode_tokens * sizeof(double));
  uint32_t token = argmax(logits, n_vocab);
  for (long step = -kWarmupTokens; step < decode_tokens; ++step) {
    const double start = now_seconds();
    const bool ok = rwkv_eval(ctx, token, state, next_state, logits);
    const double seconds = now_seconds() - start;
    if (!ok) {
      fprintf(stderr, "rwkvcpp_bench: %s: rwkv_eval failed (error flags 0x%x)\n", model_path,
              (unsigned)rwkv_get_last_error(ctx));
      return 1;
    }
    if (step >= 0) decode_seconds[step] = seconds;
    float* swap = state;
    state = next_state;
    next_state = swap;
    token = argmax(logits, n_vocab);
  }
  const double decode_seconds_per_token = median(decode_seconds, (size_t)decode_tokens);

  printf("{\"engine\":\"rwkv.cpp\",\"model\":");
  print_json_string(model_path);
  printf(",\"n_layer\":%zu,\"n_embd\":%zu,\"n_vocab\":%zu,\"threads\":%ld,\"load_ms\":%.3f", rwkv_get_n_layer(ctx),
         rwkv_get_n_embed(ctx), n_vocab, threads, load_seconds * 1e3);
  printf(",\"decode_tokens\":%ld,\"decode_ms_per_token\":%.4f,\"decode_tokens_per_second\":%.3f", decode_tokens,
         decode_seconds_per_token * 1e3, 1.0 / decode_seconds_per_token);
  printf(",\"prefill_tokens\":%ld,\"prefill_chunk\":%ld,\"prefill_tokens_per_second\":%.3f,\"first_prefill_ms\":%.3f",
         prefill_tokens, chunk, (double)prefill_tokens / prefill_seconds, first_prefill_seconds * 1e3);
  printf(",\"system_info\":");
  print_json_string(rwkv_get_system_info_string());
  printf("}\n");

  free(decode_seconds);
  free(prompt);
  free(logits);
  free(next_state);
  free(state);
  rwkv_free(ctx);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "bench") == 0) return run_bench(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "quantize") == 0) return run_quantize(argc, argv);
  usage(argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout : stderr);
  return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
}
