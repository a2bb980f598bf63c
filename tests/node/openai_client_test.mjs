// rwkv-server through the official `openai` npm client (tests/node/package.json pins
// it): what a program written for OpenAI's API sees when pointed at this server.
//
//   node tests/node/openai_client_test.mjs --server build/rwkv-server [--model M]
//
// Starts the server on a free loopback port with an API key, then checks /v1/models,
// chat and completions with and without streaming (the streamed text must equal the
// non-streamed text of the same greedy request), and that 401, 404 and 400 reach the
// caller as the client's own error classes. Ends with SIGTERM and requires exit 0.
// Every wait is bounded; the server is killed whatever happens.
import process from 'node:process';
import OpenAI from 'openai';
import { RwkvServer } from './server_process.mjs';

// Generous enough for an AddressSanitizer build on a loaded two-core machine.
const kStartSeconds = 120;
const kRequestSeconds = 120;
const kExitSeconds = 30;
const kApiKey = 'rwkv-openai-client-test-key';

function parseArgs(argv) {
  const args = { server: '', model: '' };
  for (let i = 0; i < argv.length; ++i) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === '--server' || flag === '--model') && value !== undefined) {
      args[flag.slice(2)] = value;
      ++i;
    } else {
      throw new Error(`unknown argument ${flag} (usage: --server PATH [--model M])`);
    }
  }
  if (!args.server) throw new Error('--server PATH is required');
  return args;
}

// Rejects after `seconds` with the step's name, so that one hung call cannot hang the test.
function bounded(name, promise, seconds = kRequestSeconds) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no answer within ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const failures = [];
function check(condition, what, detail) {
  if (condition) return;
  const shown = typeof detail === 'string' ? detail : JSON.stringify(detail);
  const message = detail === undefined ? what : `${what}: ${shown}`;
  failures.push(message);
  console.error(`FAIL ${message}`);
}

// The error a call rejects with, or null when it resolved.
async function rejection(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return error;
  }
}

function checkUsage(usage, name) {
  check(usage && typeof usage === 'object', `${name}: usage is an object`, usage);
  if (!usage) return;
  for (const key of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    check(Number.isInteger(usage[key]) && usage[key] >= 0, `${name}: usage.${key} is a count`, usage);
  }
  check(usage.total_tokens === usage.prompt_tokens + usage.completion_tokens,
    `${name}: usage.total_tokens = prompt_tokens + completion_tokens`, usage);
  check(Number.isInteger(usage.prompt_tokens_details?.cached_tokens),
    `${name}: usage.prompt_tokens_details.cached_tokens is a count`, usage);
}

async function run(client) {
  const models = await bounded('models.list', client.models.list());
  const ids = models.data.map((m) => m.id);
  check(ids.length === 1 && typeof ids[0] === 'string' && ids[0].length > 0, 'models.list() lists the one model', ids);
  check(models.data[0]?.object === 'model', 'models.list(): object is "model"', models.data[0]);
  const model = ids[0];

  const chatRequest = {
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Name three colours of the rainbow.' },
    ],
    temperature: 0,
    max_tokens: 20,
  };
  const chat = await bounded('chat.completions.create', client.chat.completions.create(chatRequest));
  check(typeof chat.id === 'string' && chat.id.length > 0, 'chat: id is a string', chat.id);
  check(chat.object === 'chat.completion', 'chat: object is chat.completion', chat.object);
  check(chat.model === model, 'chat: model echoes the request', chat.model);
  check(Number.isInteger(chat.created), 'chat: created is an integer', chat.created);
  check(chat.choices?.length === 1, 'chat: one choice', chat.choices);
  const message = chat.choices?.[0]?.message;
  check(message?.role === 'assistant', 'chat: message.role is assistant', message);
  check(typeof message?.content === 'string' && message.content.length > 0, 'chat: message.content is text', message);
  check(['stop', 'length'].includes(chat.choices?.[0]?.finish_reason), 'chat: finish_reason is stop or length',
    chat.choices?.[0]);
  checkUsage(chat.usage, 'chat');
  check(chat.usage?.completion_tokens > 0 && chat.usage?.completion_tokens <= 20,
    'chat: 1 to max_tokens (20) completion tokens', chat.usage);

  const chatStream = await bounded('chat.completions.create stream',
    client.chat.completions.create({ ...chatRequest, stream: true, stream_options: { include_usage: true } }));
  let streamed = '';
  let chunks = 0;
  let lastChunk = null;
  let streamId = null;
  let finishReason = null;
  let role = null;
  await bounded('chat stream iteration', (async () => {
    for await (const chunk of chatStream) {
      ++chunks;
      lastChunk = chunk;
      streamId ??= chunk.id;
      check(chunk.object === 'chat.completion.chunk', 'chat stream: object is chat.completion.chunk', chunk);
      check(typeof chunk.id === 'string' && chunk.id === streamId, 'chat stream: every chunk has the same id', chunk);
      const choice = chunk.choices?.[0];
      if (choice?.delta?.role) role = choice.delta.role;
      if (typeof choice?.delta?.content === 'string') streamed += choice.delta.content;
      if (choice?.finish_reason) finishReason = choice.finish_reason;
    }
  })());
  check(chunks >= 2, 'chat stream: at least a content chunk and the usage chunk', chunks);
  check(role === 'assistant', 'chat stream: a delta carries role assistant', role);
  check(streamed === message?.content, 'chat stream: deltas concatenate to the non-streamed content',
    { streamed, content: message?.content });
  check(finishReason === chat.choices?.[0]?.finish_reason, 'chat stream: same finish_reason as non-streamed',
    { streamed: finishReason, content: chat.choices?.[0]?.finish_reason });
  check(lastChunk?.usage != null, 'chat stream: the last chunk has usage', lastChunk);
  check(Array.isArray(lastChunk?.choices) && lastChunk.choices.length === 0,
    'chat stream: the usage chunk has no choices', lastChunk);
  checkUsage(lastChunk?.usage, 'chat stream');
  check(lastChunk?.usage?.completion_tokens === chat.usage?.completion_tokens &&
        lastChunk?.usage?.prompt_tokens === chat.usage?.prompt_tokens,
    'chat stream: same usage as non-streamed', { streamed: lastChunk?.usage, content: chat.usage });

  const completionRequest = { model, prompt: 'The capital of France is', temperature: 0, max_tokens: 16 };
  const completion = await bounded('completions.create', client.completions.create(completionRequest));
  check(completion.object === 'text_completion', 'completion: object is text_completion', completion.object);
  check(typeof completion.id === 'string' && completion.id.length > 0, 'completion: id is a string', completion.id);
  check(typeof completion.choices?.[0]?.text === 'string' && completion.choices[0].text.length > 0,
    'completion: choices[0].text is text', completion.choices);
  check(['stop', 'length'].includes(completion.choices?.[0]?.finish_reason), 'completion: finish_reason',
    completion.choices?.[0]);
  checkUsage(completion.usage, 'completion');

  const completionStream = await bounded('completions.create stream',
    client.completions.create({ ...completionRequest, stream: true, stream_options: { include_usage: true } }));
  let streamedText = '';
  let completionUsage = null;
  await bounded('completion stream iteration', (async () => {
    for await (const chunk of completionStream) {
      check(chunk.object === 'text_completion', 'completion stream: object is text_completion', chunk);
      if (typeof chunk.choices?.[0]?.text === 'string') streamedText += chunk.choices[0].text;
      if (chunk.usage) completionUsage = chunk.usage;
    }
  })());
  check(streamedText === completion.choices?.[0]?.text, 'completion stream: text equals the non-streamed text',
    { streamed: streamedText, text: completion.choices?.[0]?.text });
  checkUsage(completionUsage, 'completion stream');

  const wrongKey = new OpenAI({
    baseURL: client.baseURL, apiKey: 'not-the-key', maxRetries: 0, timeout: kRequestSeconds * 1000,
  });
  const unauthorized = await bounded('wrong key', rejection(wrongKey.models.list()));
  check(unauthorized instanceof OpenAI.AuthenticationError, 'a wrong key raises AuthenticationError',
    String(unauthorized));
  check(unauthorized?.status === 401, 'a wrong key: status 401', unauthorized?.status);
  const unauthorizedChat = await bounded('wrong key chat', rejection(wrongKey.chat.completions.create(chatRequest)));
  check(unauthorizedChat instanceof OpenAI.AuthenticationError, 'a wrong key on chat raises AuthenticationError',
    String(unauthorizedChat));

  const unknownModel = await bounded('unknown model',
    rejection(client.chat.completions.create({ ...chatRequest, model: 'no-such-model' })));
  check(unknownModel instanceof OpenAI.NotFoundError, 'an unknown model raises NotFoundError', String(unknownModel));
  check(unknownModel?.status === 404, 'an unknown model: status 404', unknownModel?.status);
  check(unknownModel?.code === 'model_not_found', 'an unknown model: code model_not_found', unknownModel?.error);

  const badField = await bounded('bad field',
    rejection(client.chat.completions.create({ ...chatRequest, temperature: 'hot' })));
  check(badField instanceof OpenAI.BadRequestError, 'temperature: "hot" raises BadRequestError', String(badField));
  check(badField?.status === 400, 'temperature: "hot": status 400', badField?.status);
  check(/temperature/.test(badField?.message ?? ''), 'temperature: "hot": the message names the field',
    badField?.message);
  check(badField?.param === 'temperature', 'temperature: "hot": param is temperature', badField?.error);

  const badStream = await bounded('bad field stream',
    rejection(client.completions.create({ ...completionRequest, max_tokens: -1, stream: true })));
  check(badStream instanceof OpenAI.BadRequestError, 'max_tokens: -1 with stream raises BadRequestError',
    String(badStream));
  check(/max_tokens/.test(badStream?.message ?? ''), 'max_tokens: -1: the message names the field', badStream?.message);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = new RwkvServer(args.server, ['--api-key', kApiKey, ...(args.model ? ['--model', args.model] : [])]);
  // Whatever ends this process, the server goes with it.
  process.on('exit', () => server.kill());
  let ok = false;
  try {
    const base = await server.url(kStartSeconds);
    console.log(`server at ${base}`);
    // No retries: a 5xx or a timeout must show, not be papered over.
    const client = new OpenAI({
      baseURL: `${base}/v1`, apiKey: kApiKey, maxRetries: 0, timeout: kRequestSeconds * 1000,
    });
    await run(client);
    const exit = await server.stop('SIGTERM', kExitSeconds);
    check(exit !== null, `the server exits within ${kExitSeconds} s of SIGTERM`);
    check(exit === null || (exit.code === 0 && exit.signal === null), 'SIGTERM: exit code 0', exit);
    ok = failures.length === 0;
  } catch (error) {
    failures.push(String(error?.stack ?? error));
    console.error(`FAIL ${error?.stack ?? error}`);
  } finally {
    server.kill();
  }
  if (!ok) {
    console.error(`\n${failures.length} failure(s). The server's stderr:\n${server.stderr}`);
    process.exit(1);
  }
  console.log('openai client: all checks passed');
}

main();
