// A bounded load and fault run against rwkv-server, with Node's own http module only.
//
//   node tests/node/load_test.mjs --server build/rwkv-server [--model M] [--clients 32]
//       [--requests 500] [--parallel N] [--queue N] [--max-tokens 32] [--threads N]
//       [--seed S] [--api-key KEY] [--json OUT] [-- SERVER FLAGS...]
//
// Starts the server on a free loopback port, warms it up, then sends --requests
// requests from --clients concurrent workers. Each request is drawn from its own
// seeded generator (the same --seed gives the same requests, whatever the
// interleaving): mostly streamed chat or completions with random prompts and settings;
// about 10% each of clients that disconnect after the first few chunks, malformed
// requests that must get their 4xx, and non-streamed requests. After the run the
// server must still answer /health, free every sequence, and exit 0 on SIGTERM.
//
// The report gives requests served, errors by status and code, disconnects, p50/p99
// time to first token and between tokens (per SSE chunk with text), throughput, and
// the server's RSS after start, after warm-up and after the load. 503 queue_full
// refusals are counted apart: the default queue (see --queue) is large enough that
// they should not happen, and a smaller --queue makes them. Exit status 1 on any
// unexpected answer, a crash, or an unclean exit. Flags after "--" go to the server as
// they are (say, -- --state-cache-mb 0).
import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';
import { RwkvServer, sleep } from './server_process.mjs';

const kStartSeconds = 120;
// One request may wait in the queue behind every other worker's whole generation.
const kRequestSeconds = 300;
const kExitSeconds = 30;
// How long the server may take to drop the sequences of clients that went away.
const kIdleSeconds = 20;
const kHost = '127.0.0.1';
// The server's body limit (ServerOptions::max_body_bytes) and prompt limit
// (max_prompt_tokens): one past each.
const kMaxBodyBytes = 8 << 20;
const kMaxPromptTokens = 1 << 20;

const kUsage = `usage: node load_test.mjs --server PATH [--model M] [--clients 32] [--requests 500]
  [--parallel N] [--queue N] [--max-tokens 32] [--threads N] [--seed S] [--api-key KEY] [--json OUT]
  [-- SERVER FLAGS...]`;

function parseArgs(argv) {
  const args = {
    server: '', model: '', clients: 32, requests: 500, parallel: 4, queue: -1, maxTokens: 32, threads: 0,
    seed: 1, apiKey: 'rwkv-load-test-key', json: '', serverFlags: [],
  };
  const integers = { clients: 1, requests: 1, parallel: 1, queue: 0, 'max-tokens': 1, threads: 0, seed: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--help') {
      console.log(kUsage);
      process.exit(0);
    }
    if (argv[i] === '--') {
      args.serverFlags = argv.slice(i + 1);
      break;
    }
    const name = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (!argv[i].startsWith('--') || value === undefined) throw new Error(`bad argument ${argv[i]}\n${kUsage}`);
    const key = name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in args) || key === 'serverFlags') throw new Error(`unknown flag --${name}\n${kUsage}`);
    if (name in integers) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < integers[name]) {
        throw new Error(`--${name} ${value}: expected an integer >= ${integers[name]}`);
      }
      args[key] = n;
    } else {
      args[key] = value;
    }
  }
  if (!args.server) throw new Error(`--server PATH is required\n${kUsage}`);
  // Every worker's request, plus the sequences of clients that just went away and that
  // the server has not noticed yet, fits in the slots and the queue.
  if (args.queue < 0) args.queue = Math.max(16, 2 * args.clients);
  return args;
}

// mulberry32: small, fast and seedable; one per request so that request i is the same
// whatever order the workers reach it in.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),  // lo..hi inclusive
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (p) => next() < p,
  };
}

const kWords = ['the', 'river', 'mountain', 'quiet', 'engine', 'language', 'model', 'state', 'token', 'weights',
  'a', 'story', 'about', 'why', 'how', 'light', 'winter', 'garden', 'number', 'seven', 'blue', 'house', 'city',
  'computer', 'write', 'explain', 'short', 'poem', 'friend', 'music', 'ocean', 'tree', 'bright', 'slow', 'fast',
  '日本語', '中文', 'café', 'naïve', '🙂', 'ünïcödé', '—', '"quoted"', 'tab\there', 'line\nbreak', '\\',
  '{json}'];

function randomText(r, minWords, maxWords) {
  const words = [];
  for (let i = r.int(minWords, maxWords); i > 0; --i) words.push(r.pick(kWords));
  return words.join(' ');
}

// Random sampling settings in the ranges the server takes (api.cpp).
function randomSettings(r, maxTokens) {
  const s = { max_tokens: r.int(1, maxTokens), seed: r.int(0, 2 ** 31) };
  if (r.chance(0.3)) s.temperature = 0;
  else if (r.chance(0.7)) s.temperature = Math.round(r.next() * 150) / 100;
  if (r.chance(0.4)) s.top_p = Math.max(0.05, Math.round(r.next() * 100) / 100);
  if (r.chance(0.3)) s.top_k = r.int(0, 50);
  if (r.chance(0.2)) s.min_p = Math.round(r.next() * 20) / 100;
  if (r.chance(0.2)) s.presence_penalty = Math.round(r.next() * 100) / 100;
  if (r.chance(0.2)) s.frequency_penalty = Math.round(r.next() * 100) / 100;
  if (r.chance(0.1)) s.stop = r.chance(0.5) ? '\n' : ['.', 'the'];
  if (r.chance(0.1)) s.logit_bias = { [String(r.int(0, 200))]: r.int(-100, 100) };
  return s;
}

function generationBody(r, args, chat, stream) {
  const body = { ...randomSettings(r, args.maxTokens) };
  if (r.chance(0.5)) body.model = args.modelId;
  if (chat) {
    body.messages = [];
    if (r.chance(0.3)) body.messages.push({ role: 'system', content: randomText(r, 2, 12) });
    for (let turns = r.int(0, 2); turns > 0; --turns) {
      body.messages.push({ role: 'user', content: randomText(r, 1, 20) });
      body.messages.push({ role: 'assistant', content: randomText(r, 1, 20) });
    }
    // Now and then a prompt of a few hundred tokens, fed in several chunks.
    body.messages.push({ role: 'user', content: randomText(r, 1, r.chance(0.1) ? 300 : 30) });
  } else {
    body.prompt = randomText(r, 1, r.chance(0.1) ? 300 : 30);
  }
  if (stream) {
    body.stream = true;
    if (r.chance(0.5)) body.stream_options = { include_usage: true };
  }
  return body;
}

// The malformed requests, each with the status, error code and (where the server names
// one) the field it must get. `payload` is a function so that the large ones are only
// built when drawn.
function malformedRequest(r, args) {
  const chat = '/v1/chat/completions';
  const completions = '/v1/completions';
  const hi = [{ role: 'user', content: 'hi' }];
  const json = (body) => () => JSON.stringify(body);
  const raw = (text) => () => text;
  const cases = [
    ['invalid JSON', chat, raw('{"messages": [{"role": "user", "content": "hi"}'), 400, 'invalid_json'],
    ['body not an object', completions, raw('[1, 2, 3]'), 400, 'invalid_value'],
    ['temperature a string', chat, json({ messages: hi, temperature: 'hot' }), 400, 'invalid_value', 'temperature'],
    ['max_tokens a string', completions, json({ prompt: 'hi', max_tokens: 'ten', stream: true }), 400, 'invalid_value',
      'max_tokens'],
    ['messages a string', chat, json({ messages: 'hi' }), 400, 'invalid_value', 'messages'],
    ['stream a string', completions, json({ prompt: 'hi', stream: 'yes' }), 400, 'invalid_value', 'stream'],
    ['top_p out of range', completions, json({ prompt: 'hi', top_p: 2 }), 400, 'invalid_value', 'top_p'],
    ['empty prompt', completions, json({ prompt: '' }), 400, 'invalid_value', 'prompt'],
    ['token id out of range', completions, json({ prompt: [1, 2, 1e9] }), 400, 'invalid_value', 'prompt'],
    ['unknown model', chat, json({ model: 'no-such-model', messages: hi, stream: r.chance(0.5) }), 404,
      'model_not_found', 'model'],
    ['unknown route', '/v1/nope', json({ prompt: 'hi' }), 404, 'not_found'],
    ['body over the limit', completions, () => JSON.stringify({ prompt: 'x'.repeat(kMaxBodyBytes + 1024) }), 413,
      'payload_too_large'],
  ];
  // A prompt one token over the limit costs the server a second or more to parse, so
  // it comes less often than the cheap cases.
  if (r.chance(0.25)) {
    cases.push(['prompt over the limit', completions,
      () => `{"max_tokens": 1, "prompt": [${'1,'.repeat(kMaxPromptTokens)}1]}`, 400, 'context_length_exceeded',
      'prompt']);
  }
  if (args.apiKey) {
    cases.push(['no API key', completions, json({ prompt: 'hi' }), 401, 'invalid_api_key', undefined, '']);
    cases.push(['wrong API key', chat, json({ messages: hi }), 401, 'invalid_api_key', undefined, 'Bearer wrong']);
  }
  const [name, path, payload, status, code, param, auth] = r.pick(cases);
  return { name, path, payload: payload(), status, code, param, auth };
}

// One HTTP exchange. `onChunk(text)` sees the body as it arrives and may return true to
// abort (a client going away). Resolves {status, headers, body, aborted, error}.
function exchange(port, { method = 'POST', path, payload, auth, timeoutSeconds = kRequestSeconds }, onChunk) {
  return new Promise((resolve) => {
    const headers = {};
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    if (auth) headers.Authorization = auth;
    let settled = false;
    const result = { status: 0, headers: {}, body: '', aborted: false, error: null };
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) result.error = error;
      resolve(result);
    };
    const req = http.request({ host: kHost, port, method, path, headers }, (res) => {
      result.status = res.statusCode;
      result.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (text) => {
        result.body += text;
        if (onChunk && onChunk(text)) {
          result.aborted = true;
          req.destroy();
          finish(null);
        }
      });
      res.on('end', () => finish(null));
      res.on('error', (e) => finish(e.code ?? e.message));
      res.on('aborted', () => finish('response aborted'));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(`no answer within ${timeoutSeconds} s`);
    }, timeoutSeconds * 1000);
    req.on('error', (e) => finish(e.code ?? e.message));
    req.end(payload);
  });
}

// Server-Sent Events as they come: calls onEvent(data, timeMs) for each "data:" line.
class SseParser {
  constructor(onEvent) {
    this.buffer = '';
    this.onEvent = onEvent;
  }
  push(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (line.startsWith('data: ')) this.onEvent(line.slice(6), performance.now());
      }
    }
  }
}

function errorOf(body) {
  try {
    return JSON.parse(body)?.error ?? null;
  } catch {
    return null;
  }
}

// The text of a chunk of either route.
function chunkText(chunk, chat) {
  const choice = chunk.choices?.[0];
  if (!choice) return '';
  return (chat ? choice.delta?.content : choice.text) ?? '';
}

function authHeader(args) {
  return args.apiKey ? `Bearer ${args.apiKey}` : '';
}

// A streamed request, read to the end or (when `abortAfter` > 0) abandoned after that
// many chunks with text. Returns an outcome the caller tallies.
async function streamed(port, args, r, kind) {
  const chat = r.chance(0.5);
  const body = generationBody(r, args, chat, true);
  const abortAfter = kind === 'disconnect' ? r.int(1, 3) : 0;
  const start = performance.now();
  let firstTextAt = null;
  let lastTextAt = null;
  const gaps = [];
  let textChunks = 0;
  let done = false;
  let finishReason = null;
  let usage = null;
  const problems = [];
  const parser = new SseParser((data, at) => {
    if (data === '[DONE]') {
      done = true;
      return;
    }
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      problems.push(`an event that is not JSON: ${data.slice(0, 200)}`);
      return;
    }
    if (chunk.error) {
      problems.push(`an error event: ${JSON.stringify(chunk.error)}`);
      return;
    }
    const expected = chat ? 'chat.completion.chunk' : 'text_completion';
    if (chunk.object !== expected) problems.push(`object ${chunk.object}, expected ${expected}`);
    if (chunk.usage) usage = chunk.usage;
    const reason = chunk.choices?.[0]?.finish_reason;
    if (reason) finishReason = reason;
    if (chunkText(chunk, chat).length > 0) {
      ++textChunks;
      if (firstTextAt === null) firstTextAt = at;
      else gaps.push(at - lastTextAt);
      lastTextAt = at;
    }
  });
  const result = await exchange(port, {
    path: chat ? '/v1/chat/completions' : '/v1/completions', payload: JSON.stringify(body), auth: authHeader(args),
  }, (text) => {
    parser.push(text);
    return abortAfter > 0 && textChunks >= abortAfter && !done;
  });
  const outcome = {
    kind, route: chat ? 'chat' : 'completions', status: result.status, error: result.error, problems,
    ttftMs: firstTextAt === null ? null : firstTextAt - start, tbtMs: gaps, textChunks, aborted: result.aborted,
  };
  if (result.status !== 200) {
    outcome.apiError = errorOf(result.body);
    outcome.retryAfter = result.headers['retry-after'];
    return outcome;
  }
  if (!String(result.headers['content-type']).startsWith('text/event-stream')) {
    problems.push(`content-type ${result.headers['content-type']}`);
  }
  if (result.aborted) return outcome;
  if (result.error) return outcome;
  if (!done) problems.push('the stream ended without data: [DONE]');
  if (!['stop', 'length'].includes(finishReason)) problems.push(`finish_reason ${finishReason}`);
  if (body.stream_options?.include_usage) {
    if (!usage) problems.push('include_usage but no usage chunk');
    else if (usage.completion_tokens > body.max_tokens) {
      problems.push(`${usage.completion_tokens} tokens > max_tokens ${body.max_tokens}`);
    }
  }
  outcome.completionTokens = usage?.completion_tokens;
  return outcome;
}

async function nonStreamed(port, args, r) {
  const chat = r.chance(0.5);
  const body = generationBody(r, args, chat, false);
  const result = await exchange(port, {
    path: chat ? '/v1/chat/completions' : '/v1/completions', payload: JSON.stringify(body), auth: authHeader(args),
  });
  const outcome = {
    kind: 'non-streamed', route: chat ? 'chat' : 'completions', status: result.status, error: result.error,
    problems: [],
  };
  if (result.status !== 200) {
    outcome.apiError = errorOf(result.body);
    outcome.retryAfter = result.headers['retry-after'];
    return outcome;
  }
  let reply;
  try {
    reply = JSON.parse(result.body);
  } catch {
    outcome.problems.push(`a body that is not JSON: ${result.body.slice(0, 200)}`);
    return outcome;
  }
  const choice = reply.choices?.[0];
  const text = chat ? choice?.message?.content : choice?.text;
  if (reply.object !== (chat ? 'chat.completion' : 'text_completion')) outcome.problems.push(`object ${reply.object}`);
  if (typeof text !== 'string') outcome.problems.push(`no text in ${result.body.slice(0, 200)}`);
  if (!['stop', 'length'].includes(choice?.finish_reason)) {
    outcome.problems.push(`finish_reason ${choice?.finish_reason}`);
  }
  const usage = reply.usage;
  if (!usage || usage.total_tokens !== usage.prompt_tokens + usage.completion_tokens ||
      usage.completion_tokens > body.max_tokens) {
    outcome.problems.push(`usage ${JSON.stringify(usage)} (max_tokens ${body.max_tokens})`);
  }
  outcome.completionTokens = usage?.completion_tokens;
  return outcome;
}

async function malformed(port, args, r) {
  const c = malformedRequest(r, args);
  const result = await exchange(port, {
    path: c.path, payload: c.payload, auth: c.auth ?? authHeader(args),
  });
  const outcome = { kind: 'malformed', name: c.name, status: result.status, error: result.error, problems: [] };
  outcome.apiError = errorOf(result.body);
  if (result.error) return outcome;
  if (result.status !== c.status) {
    outcome.problems.push(`${c.name}: HTTP ${result.status}, expected ${c.status}: ${result.body.slice(0, 300)}`);
  } else if (outcome.apiError?.code !== c.code) {
    outcome.problems.push(`${c.name}: code ${outcome.apiError?.code}, expected ${c.code}: ` +
      result.body.slice(0, 300));
  } else if (c.param && outcome.apiError?.param !== c.param) {
    outcome.problems.push(`${c.name}: param ${outcome.apiError?.param}, expected ${c.param}`);
  } else if (typeof outcome.apiError?.message !== 'string' || typeof outcome.apiError?.type !== 'string') {
    outcome.problems.push(`${c.name}: not the OpenAI error shape: ${result.body.slice(0, 300)}`);
  }
  return outcome;
}

function pickKind(r) {
  const x = r.next();
  if (x < 0.1) return 'disconnect';
  if (x < 0.2) return 'malformed';
  if (x < 0.3) return 'non-streamed';
  return 'streamed';
}

async function oneRequest(port, args, index) {
  const r = rng(args.seed * 1000003 + index);
  const kind = pickKind(r);
  if (kind === 'malformed') return malformed(port, args, r);
  if (kind === 'non-streamed') return nonStreamed(port, args, r);
  return streamed(port, args, r, kind);
}

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function rssMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) / 1024 : null;
    };
    return { rss: field('VmRSS'), peak: field('VmHWM') };
  } catch {
    return { rss: null, peak: null };
  }
}

// The server's flags from the command line (RwkvServer adds --host 127.0.0.1 --port 0).
function serverFlags(args) {
  const flags = ['--parallel', String(args.parallel), '--queue', String(args.queue)];
  if (args.model) flags.push('--model', args.model);
  if (args.threads) flags.push('--threads', String(args.threads));
  if (args.apiKey) flags.push('--api-key', args.apiKey);
  flags.push(...args.serverFlags);
  return flags;
}

// Prometheus text → {name or name{labels}: value}.
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function metrics(port, args) {
  const result = await exchange(port, { method: 'GET', path: '/metrics', auth: authHeader(args), timeoutSeconds: 30 });
  if (result.status !== 200) {
    throw new Error(`/metrics: HTTP ${result.status} ${result.error ?? ''} ${result.body.slice(0, 200)}`);
  }
  return parseMetrics(result.body);
}

async function modelId(port, args) {
  const result = await exchange(port, {
    method: 'GET', path: '/v1/models', auth: authHeader(args), timeoutSeconds: 30,
  });
  if (result.status !== 200) throw new Error(`/v1/models: HTTP ${result.status} ${result.error ?? ''}`);
  return JSON.parse(result.body).data[0].id;
}

// One of each generation kind per sequence slot, at once: every slot and buffer the
// load will use is touched before the "after warm-up" RSS.
async function warmUp(port, args) {
  const jobs = [];
  for (let i = 0; i < args.parallel; ++i) {
    const body = { prompt: randomText(rng(i), 20, 80), max_tokens: Math.min(4, args.maxTokens), temperature: 0 };
    const payload = JSON.stringify({ ...body, stream: i % 2 === 0 });
    jobs.push(exchange(port, { path: '/v1/completions', payload, auth: authHeader(args) }));
  }
  for (const result of await Promise.all(jobs)) {
    if (result.status !== 200) {
      throw new Error(`warm-up: HTTP ${result.status} ${result.error ?? ''} ${result.body.slice(0, 300)}`);
    }
  }
}

// Whether an outcome is what its kind allows.
function classify(outcome) {
  if (outcome.kind === 'malformed') {
    if (outcome.error) return `connection: ${outcome.error} (${outcome.name})`;
    return outcome.problems.length ? outcome.problems.join('; ') : null;
  }
  if (outcome.status === 503 && outcome.apiError?.code === 'queue_full') {
    return outcome.retryAfter ? null : '503 queue_full without Retry-After';  // counted apart
  }
  if (outcome.error) return `connection: ${outcome.error}`;
  if (outcome.status !== 200) return `HTTP ${outcome.status}: ${JSON.stringify(outcome.apiError)}`;
  return outcome.problems.length ? outcome.problems.join('; ') : null;
}

function round(x, digits = 1) {
  return x === null || x === undefined ? null : Number(x.toFixed(digits));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = new RwkvServer(args.server, serverFlags(args));
  process.on('exit', () => server.kill());
  const report = {
    settings: { clients: args.clients, requests: args.requests, parallel: args.parallel, queue: args.queue,
      maxTokens: args.maxTokens, seed: args.seed, apiKey: Boolean(args.apiKey), model: args.model || '(default)',
      serverFlags: args.serverFlags },
  };
  const unexpected = [];
  try {
    const port = Number(new URL(await server.url(kStartSeconds)).port);
    report.rssMiB = { afterStart: round(rssMiB(server.pid).rss) };
    args.modelId = await modelId(port, args);
    await warmUp(port, args);
    report.rssMiB.afterWarmUp = round(rssMiB(server.pid).rss);
    const before = await metrics(port, args);

    // Health is polled through the run: a server too busy to answer it is a finding.
    let healthWorst = 0;
    let healthFailures = 0;
    let running = true;
    const healthPoll = (async () => {
      while (running) {
        const t = performance.now();
        const h = await exchange(port, { method: 'GET', path: '/health', timeoutSeconds: 30 });
        healthWorst = Math.max(healthWorst, performance.now() - t);
        if (h.status !== 200) ++healthFailures;
        await sleep(500);
      }
    })();

    const outcomes = [];
    let next = 0;
    const start = performance.now();
    const worker = async () => {
      while (next < args.requests) {
        const index = next++;
        const outcome = await oneRequest(port, args, index);
        outcome.index = index;
        outcomes.push(outcome);
        const problem = classify(outcome);
        if (problem) unexpected.push(`request ${index} (${outcome.kind} ${outcome.route ?? ''}): ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: args.clients }, worker));
    const seconds = (performance.now() - start) / 1000;
    running = false;
    await healthPoll;

    const health = await exchange(port, { method: 'GET', path: '/health', timeoutSeconds: 30 });
    report.healthyAfter = health.status === 200 && /"ok"/.test(health.body);
    if (!report.healthyAfter) {
      unexpected.push(`/health after the load: HTTP ${health.status} ${health.error ?? ''} ${health.body}`);
    }
    if (healthFailures) unexpected.push(`/health failed ${healthFailures} times during the load`);

    // Sequences of clients that went away end at the server's next look at them.
    let after = await metrics(port, args);
    const idleBy = Date.now() + kIdleSeconds * 1000;
    while ((after.rwkv_active_sequences > 0 || after.rwkv_queue_length > 0) && Date.now() < idleBy) {
      await sleep(200);
      after = await metrics(port, args);
    }
    if (after.rwkv_active_sequences !== 0 || after.rwkv_queue_length !== 0) {
      unexpected.push(`${kIdleSeconds} s after the load: ${after.rwkv_active_sequences} active sequences, ` +
        `${after.rwkv_queue_length} queued`);
    }
    report.rssMiB.afterLoad = round(rssMiB(server.pid).rss);
    report.rssMiB.peak = round(rssMiB(server.pid).peak);

    const served = outcomes.filter((o) => o.status >= 200 && o.status < 300 && !o.aborted && !o.error);
    const errorsByKind = {};
    for (const o of outcomes) {
      if (o.status >= 200 && o.status < 300 && !o.error) continue;  // served, or a disconnect
      const key = o.error ? `${o.status || 'connection'} ${o.error}` : `${o.status} ${o.apiError?.code ?? '-'}`;
      errorsByKind[key] = (errorsByKind[key] ?? 0) + 1;
    }
    const kinds = {};
    for (const o of outcomes) kinds[o.kind] = (kinds[o.kind] ?? 0) + 1;
    const streams = outcomes.filter((o) => o.ttftMs !== null && o.ttftMs !== undefined);
    const ttft = streams.map((o) => o.ttftMs);
    const tbt = streams.flatMap((o) => o.tbtMs);
    const completionTokens = after.rwkv_completion_tokens_total - before.rwkv_completion_tokens_total;
    const promptTokens = after.rwkv_prompt_tokens_total - before.rwkv_prompt_tokens_total;
    Object.assign(report, {
      seconds: round(seconds, 2),
      requests: outcomes.length,
      kinds,
      served2xx: served.length,
      refused503: outcomes.filter((o) => o.status === 503 && o.apiError?.code === 'queue_full').length,
      errorsByKind,
      disconnects: outcomes.filter((o) => o.aborted).length,
      disconnectsAsked: kinds.disconnect ?? 0,
      ttftMs: { p50: round(percentile(ttft, 50)), p99: round(percentile(ttft, 99)), n: ttft.length },
      tbtMs: { p50: round(percentile(tbt, 50)), p99: round(percentile(tbt, 99)), n: tbt.length },
      throughput: {
        requestsPerSecond: round(outcomes.length / seconds, 2),
        servedPerSecond: round(served.length / seconds, 2),
        completionTokensPerSecond: round(completionTokens / seconds, 1),
        promptTokensPerSecond: round(promptTokens / seconds, 1),
      },
      server: {
        completionTokens, promptTokens,
        steps: after.rwkv_steps_total - before.rwkv_steps_total,
        cancelledSequences: after.rwkv_cancelled_sequences_total - before.rwkv_cancelled_sequences_total,
        metricsAfter: after,
        requestsByRouteStatus: Object.fromEntries(
          Object.entries(after).filter(([name]) => name.startsWith('rwkv_requests_total'))),
      },
      healthWorstMs: round(healthWorst),
    });
  } catch (error) {
    unexpected.push(`aborted: ${error?.stack ?? error}`);
  } finally {
    const exit = await server.stop('SIGTERM', kExitSeconds);
    server.kill();
    report.exit = exit ?? { timedOut: `no exit within ${kExitSeconds} s of SIGTERM` };
    report.exitedCleanly = exit !== null && exit.code === 0 && exit.signal === null;
    if (!report.exitedCleanly) unexpected.push(`the server's exit after SIGTERM: ${JSON.stringify(report.exit)}`);
  }
  report.unexpected = unexpected;
  printReport(report);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
  if (unexpected.length) {
    console.error(`\n${unexpected.length} unexpected:\n  ${unexpected.slice(0, 30).join('\n  ')}`);
    console.error(`\nthe server's stderr (last 4000 characters):\n${server.stderr.slice(-4000)}`);
    process.exit(1);
  }
}

function printReport(r) {
  const s = r.settings;
  const lines = [
    `rwkv-server load: ${s.requests} requests from ${s.clients} clients, --parallel ${s.parallel} ` +
      `--queue ${s.queue}, max_tokens <= ${s.maxTokens}, seed ${s.seed}, model ${s.model}` +
      (s.serverFlags.length ? `, server flags ${s.serverFlags.join(' ')}` : ''),
  ];
  if (r.requests !== undefined) {
    const kinds = Object.entries(r.kinds).map(([k, v]) => `${v} ${k}`).join(', ');
    const errors = Object.entries(r.errorsByKind).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
    const t = r.throughput;
    lines.push(
      `  ran ${r.seconds} s: ${r.requests} requests (${kinds})`,
      `  served (2xx): ${r.served2xx}; refused 503 queue_full: ${r.refused503}; ` +
        `disconnects: ${r.disconnects} of ${r.disconnectsAsked} asked`,
      `  errors by kind: ${errors}`,
      `  TTFT ms: p50 ${r.ttftMs.p50}, p99 ${r.ttftMs.p99} (${r.ttftMs.n} streams); ` +
        `TBT ms: p50 ${r.tbtMs.p50}, p99 ${r.tbtMs.p99} (${r.tbtMs.n} gaps)`,
      `  throughput: ${t.requestsPerSecond} requests/s, ${t.completionTokensPerSecond} tokens/s generated, ` +
        `${t.promptTokensPerSecond} prompt tokens/s`,
      `  server: ${r.server.steps} steps, ${r.server.cancelledSequences} sequences cancelled; ` +
        `/health worst ${r.healthWorstMs} ms during the load, healthy after: ${r.healthyAfter}`,
    );
  }
  if (r.rssMiB) {
    lines.push(`  RSS MiB: after start ${r.rssMiB.afterStart}, after warm-up ${r.rssMiB.afterWarmUp}, ` +
      `after load ${r.rssMiB.afterLoad}, peak ${r.rssMiB.peak}`);
  }
  lines.push(`  exit after SIGTERM: ${JSON.stringify(r.exit)} (${r.exitedCleanly ? 'clean' : 'NOT clean'}); ` +
    `unexpected: ${r.unexpected.length}`);
  console.log(lines.join('\n'));
}

main();
