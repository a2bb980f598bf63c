// rwkv-server benchmark: aggregate decode tokens/s with 1, 4 and 16 concurrent streams,
// and the time to first token of the 10th turn of a long conversation with and without
// the prefix-state cache. Loopback only; needs Node.js 18+ and nothing from npm.
//
//   node tools/bench/server_bench.mjs --server build/rwkv-server --model M.rwkv
//        [--tokenizer-vocab V] [--threads 2] [--streams 1,4,16|none] [--tokens 64] [--runs 3]
//        [--conversation-tokens 2000] [--turns 10] [--reply-tokens 150] [--think-ms 1000] [--json OUT]
//
// Throughput: for each stream count S, a server with --parallel S; S clients each stream
// one completion of --tokens tokens at once (end-of-text banned, so every stream runs
// to the end), after a warm-up round. Aggregate tokens/s = all completion tokens / wall
// time from the first request to the last [DONE]; the median of --runs rounds.
// Conversation: a system message and turns of a user message and a reply of
// --reply-tokens tokens, the user messages sized so that the --turns-th turn's prompt is
// about --conversation-tokens tokens. With the cache, a client plays turns 1..N-1 as a
// user would, reading each reply for --think-ms before answering (meanwhile the server
// feeds the finished reply into its cache), then the N-th turn is timed (request sent →
// first content chunk). Without the cache (--state-cache-mb 0) the same N-th request is
// timed. Both are medians over --runs conversations.
import fs from 'node:fs';
import process from 'node:process';
import { RwkvServer, sleep } from '../../tests/node/server_process.mjs';

function parseArgs(argv) {
  const args = { server: '', model: '', 'tokenizer-vocab': '', threads: '2', streams: '1,4,16', tokens: '64',
                 runs: '3', 'conversation-tokens': '2000', turns: '10', 'reply-tokens': '150', 'think-ms': '1000',
                 json: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'help' || name === 'h') {
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(0, 21).join('\n'));
      process.exit(0);
    }
    if (!(name in args) || argv[i + 1] === undefined) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    args[name] = argv[i + 1];
  }
  if (!args.server || !args.model) throw new Error('--server PATH and --model M are required (see --help)');
  return args;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function startServer(args, extra) {
  const flags = ['--model', args.model, '--threads', args.threads, ...extra];
  if (args['tokenizer-vocab']) flags.push('--tokenizer-vocab', args['tokenizer-vocab']);
  const server = new RwkvServer(args.server, flags);
  try {
    return { server, base: await server.url(300) };
  } catch (error) {
    server.kill();
    throw new Error(`${error.message}\n${server.stderr}`);
  }
}

async function stopServer(server) {
  const exit = await server.stop('SIGTERM', 60);
  if (!exit || exit.code !== 0) throw new Error(`rwkv-server exited with ${JSON.stringify(exit)}\n${server.stderr}`);
}

// Streams one request; returns {text, firstTokenMs, usage, endMs} (times from `start`).
async function stream(base, route, body, start = performance.now()) {
  const res = await fetch(base + route, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`${route}: HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let text = '';
  let firstTokenMs = null;
  let usage = null;
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ')) throw new Error(`not an SSE data line: ${event}`);
      const data = event.slice(6);
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`${route}: ${chunk.error.message}`);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      const piece = choice ? (choice.delta ? choice.delta.content : choice.text) : '';
      if (piece) {
        if (firstTokenMs === null) firstTokenMs = performance.now() - start;
        text += piece;
      }
    }
  }
  return { text, firstTokenMs, usage, endMs: performance.now() - start };
}

const kNoEndOfText = { logit_bias: { 0: -100 } };

async function throughput(args, streams, tokens, runs) {
  const { server, base } = await startServer(args, ['--parallel', String(streams), '--queue', String(streams)]);
  try {
    const round = async (seed) => {
      const start = performance.now();
      const results = await Promise.all(Array.from({ length: streams }, (_, i) =>
        stream(base, '/v1/completions', { prompt: `Stream ${i} of round ${seed}:`, max_tokens: tokens,
                                          temperature: 1, seed: seed * 100 + i, ...kNoEndOfText }, start)));
      const seconds = (performance.now() - start) / 1000;
      const generated = results.reduce((sum, r) => sum + r.usage.completion_tokens, 0);
      return generated / seconds;
    };
    await round(0);  // warm-up
    const rates = [];
    for (let r = 1; r <= runs; ++r) rates.push(await round(r));
    return { streams, tokens_per_stream: tokens, tokens_per_second: median(rates), runs: rates };
  } finally {
    await stopServer(server);
  }
}

// Words that tokenize to about one token each with the World vocabulary.
const kWords = ('the of and to in is that for it as was with be by on not he this are or his from at which but have ' +
                'an had they you were their one all we can her has there been if more when will would who so no')
  .split(' ');

function userMessage(conversation, turn, words) {
  const out = [];
  for (let i = 0; i < words; ++i) out.push(kWords[(conversation * 7919 + turn * 104729 + i * 31) % kWords.length]);
  return `Turn ${turn}: ${out.join(' ')}?`;
}

async function tokenCount(base, text) {
  const res = await fetch(base + '/tokenize', { method: 'POST', body: JSON.stringify({ content: text }) });
  return (await res.json()).tokens.length;
}

async function conversationTtft(args, runs) {
  const turns = Number(args.turns);
  const target = Number(args['conversation-tokens']);
  const replyTokens = Number(args['reply-tokens']);
  const thinkMs = Number(args['think-ms']);
  // Per turn: the user message, its template, and a reply with its template.
  const wordsPerMessage = Math.max(1, Math.round(target / turns - replyTokens - 12));
  const system = { role: 'system', content: 'You are a helpful assistant. Answer briefly.' };
  const request = (messages) => ({ messages, max_tokens: replyTokens, temperature: 1, top_p: 0.5, seed: 7,
                                   ...kNoEndOfText });

  // With the cache: a user plays the conversation; the last turn is timed.
  const cached = await startServer(args, ['--parallel', '1']);
  const lastTurns = [];
  const withCache = [];
  try {
    for (let c = 0; c < runs; ++c) {
      const messages = [system];
      for (let t = 1; t < turns; ++t) {
        messages.push({ role: 'user', content: userMessage(c, t, wordsPerMessage) });
        const reply = await stream(cached.base, '/v1/chat/completions', request(messages));
        messages.push({ role: 'assistant', content: reply.text });
        await sleep(thinkMs);
      }
      messages.push({ role: 'user', content: userMessage(c, turns, wordsPerMessage) });
      const last = await stream(cached.base, '/v1/chat/completions', request(messages));
      withCache.push({ ttft_ms: last.firstTokenMs, prompt_tokens: last.usage.prompt_tokens,
                       cached_tokens: last.usage.prompt_tokens_details.cached_tokens });
      lastTurns.push(messages);
    }
  } finally {
    await stopServer(cached.server);
  }

  // Without the cache: the same last turns.
  const plain = await startServer(args, ['--parallel', '1', '--state-cache-mb', '0']);
  const withoutCache = [];
  try {
    await stream(plain.base, '/v1/chat/completions', request([system, { role: 'user', content: 'warm up' }]));
    for (const messages of lastTurns) {
      const last = await stream(plain.base, '/v1/chat/completions', request(messages));
      withoutCache.push({ ttft_ms: last.firstTokenMs, prompt_tokens: last.usage.prompt_tokens,
                          cached_tokens: last.usage.prompt_tokens_details.cached_tokens });
    }
  } finally {
    await stopServer(plain.server);
  }
  const ttftWith = median(withCache.map((r) => r.ttft_ms));
  const ttftWithout = median(withoutCache.map((r) => r.ttft_ms));
  return { turn: turns, reply_tokens: replyTokens, think_ms: thinkMs,
           prompt_tokens: median(withCache.map((r) => r.prompt_tokens)),
           ttft_ms_with_cache: ttftWith, ttft_ms_without_cache: ttftWithout, speedup: ttftWithout / ttftWith,
           with_cache: withCache, without_cache: withoutCache };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const runs = Number(args.runs);
  const report = { model: args.model, threads: Number(args.threads), throughput: [], conversation: null };
  for (const s of args.streams === 'none' ? [] : args.streams.split(',').map(Number)) {
    const t = await throughput(args, s, Number(args.tokens), runs);
    report.throughput.push(t);
    console.log(`${s} stream(s): ${t.tokens_per_second.toFixed(1)} tokens/s aggregate ` +
                `(median of ${runs}: ${t.runs.map((r) => r.toFixed(1)).join(', ')})`);
  }
  const c = await conversationTtft(args, runs);
  report.conversation = c;
  console.log(`turn ${c.turn} of a ${c.prompt_tokens}-token conversation (replies of ${c.reply_tokens} tokens, ` +
              `${c.think_ms} ms to answer each): time to first token ` +
              `${c.ttft_ms_with_cache.toFixed(0)} ms with the cache ` +
              `(cached ${c.with_cache.map((r) => r.cached_tokens).join(', ')} tokens), ` +
              `${c.ttft_ms_without_cache.toFixed(0)} ms without: ${c.speedup.toFixed(1)}x`);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
}

main().catch((error) => {
  console.error(`server_bench: ${error.stack || error}`);
  process.exit(1);
});
