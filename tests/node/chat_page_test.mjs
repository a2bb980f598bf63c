// The chat page at "/" in a real browser: headless Chromium (the system's, driven by
// playwright-core) against the rwkv-server built here.
//
//   node tests/node/chat_page_test.mjs --server build/rwkv-server [--model M] [--screenshot OUT.png]
//
// Starts the server on a free loopback port, checks GET / over plain HTTP (HTML, no
// external resources, open without the API key's header), then in the page: the model
// id shows; Enter sends and a reply streams in over several updates with a tokens/s
// status; Shift+Enter makes a new line; a second message continues the conversation
// (the whole history goes with each request, under one X-Conversation-Id); a bad
// setting shows the server's HTTP status and message; Reset empties the conversation
// and starts a new id; an API key set in the page is sent and survives a reload; a
// phone-sized window needs no sideways scrolling. Ends with SIGTERM and requires exit 0. Every wait is bounded;
// on failure it prints the page's text and the server's stderr; the server and the
// browser are killed whatever happens.
import process from 'node:process';
import { chromium } from 'playwright-core';
import { RwkvServer } from './server_process.mjs';

// Generous enough for an AddressSanitizer build on a loaded two-core machine.
const kStartSeconds = 120;
const kReplySeconds = 60;
const kUiSeconds = 15;
const kExitSeconds = 30;
// Short replies keep the test quick; greedy ones keep it the same every run.
const kMaxTokens = 100;
const kViewport = { width: 1000, height: 700 };
const kApiKey = 'chat-page-test-key';

function parseArgs(argv) {
  const args = { server: '', model: '', screenshot: '' };
  for (let i = 0; i < argv.length; ++i) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (['--server', '--model', '--screenshot'].includes(flag) && value !== undefined) {
      args[flag.slice(2)] = value;
      ++i;
    } else {
      throw new Error(`unknown argument ${flag} (usage: --server PATH [--model M] [--screenshot OUT.png])`);
    }
  }
  if (!args.server) throw new Error('--server PATH is required');
  return args;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// GET / as any HTTP client sees it.
async function checkPageOverHttp(baseUrl) {
  const res = await fetch(`${baseUrl}/`, { signal: AbortSignal.timeout(kUiSeconds * 1000) });
  check(res.status === 200, `GET / answered ${res.status}`);
  const type = res.headers.get('content-type') || '';
  check(/^text\/html;\s*charset=utf-8$/i.test(type), `GET / has Content-Type "${type}"`);
  const csp = res.headers.get('content-security-policy') || '';
  check(/connect-src 'self'/.test(csp), `GET / has Content-Security-Policy "${csp}"`);
  const html = await res.text();
  check(html.startsWith('<!DOCTYPE html>') && html.includes('<title>'), 'GET / is not an HTML page with a title');
  // Self-contained: no URL anywhere (scripts, styles, fonts, links), no file beside it.
  const url = /https?:\/\/\S*|\/\/[a-z0-9-]+(?:\.[a-z0-9-]+)+/i.exec(html);
  check(url === null, `GET / refers to ${url && url[0]}`);
  const resource = /<(?:script|link|img|iframe)[^>]*\s(?:src|href)=["']?(?!data:)[^"'\s>]+/i.exec(html);
  check(resource === null, `GET / loads ${resource && resource[0]}`);
  const models = await (await fetch(`${baseUrl}/v1/models`)).json();
  return models.data[0].id;
}

// Waits for `predicate(arg)` to hold in the page, failing with `what` after `seconds`.
async function waitInPage(page, what, seconds, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: seconds * 1000, polling: 'raf' });
  } catch (error) {
    throw new Error(`${what}: not within ${seconds} s (${error.message.split('\n')[0]})`);
  }
}

// The page's conversation as [{role, text}], "user" or "assistant".
function conversation(page) {
  return page.$$eval('#conversation .message', (nodes) => nodes.map((n) => ({
    role: n.classList.contains('user') ? 'user' : 'assistant',
    text: n.querySelector('.text').textContent,
  })));
}

// Watches how the latest assistant reply grows: `appends`, the changes that added text
// to it; `renders`, the observer callbacks among them (a browser that reads several
// events at once shows them in one); `partial`, whether text showed while the request
// was still in flight (Send disabled).
async function watchReply(page) {
  await page.evaluate(() => {
    if (window.replyWatcher) window.replyWatcher.disconnect();
    const watch = { appends: 0, renders: 0, partial: false };
    window.replyWatch = watch;
    window.replyWatcher = new MutationObserver((records) => {
      const grew = records.filter((r) => r.type === 'characterData' &&
                                         r.target.parentElement?.closest('.message.assistant') &&
                                         r.target.length > (r.oldValue || '').length).length;
      if (grew === 0) return;
      watch.appends += grew;
      ++watch.renders;
      if (document.getElementById('send').disabled) watch.partial = true;
    });
    window.replyWatcher.observe(document.getElementById('conversation'),
                                { subtree: true, characterData: true, characterDataOldValue: true });
  });
}

// Waits for the reply in flight to end (Send enabled again, the status no longer
// "waiting"/"generating"), then returns the status text.
async function replyFinished(page, what) {
  await waitInPage(page, what, kReplySeconds, () => {
    const status = document.getElementById('status').textContent;
    return !document.getElementById('send').disabled && status !== '' && !/^(waiting|generating)/.test(status);
  });
  return page.textContent('#status');
}

async function run(args, state) {
  const extra = args.model ? ['--model', args.model] : [];
  state.server = new RwkvServer(args.server, extra);
  const baseUrl = await state.server.url(kStartSeconds);
  const modelId = await checkPageOverHttp(baseUrl);

  state.browser = await chromium.launch({
    executablePath: process.env.RWKV_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
    timeout: kStartSeconds * 1000,
  });
  const page = await state.browser.newPage({ viewport: kViewport });
  state.page = page;
  page.setDefaultTimeout(kUiSeconds * 1000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    // A 400 the test asks for below is logged by Chromium as a failed resource.
    if (message.type() === 'error' && !/status of 400/.test(message.text())) pageErrors.push(message.text());
  });
  const requests = [];
  page.on('request', (request) => {
    if (request.url().endsWith('/v1/chat/completions')) {
      requests.push({ body: request.postDataJSON(), headers: request.headers() });
    }
  });

  await page.goto(`${baseUrl}/`, { timeout: kUiSeconds * 1000 });
  await waitInPage(page, `the model id "${modelId}" in the header`, kUiSeconds,
                   (id) => document.getElementById('model-id').textContent === id, modelId);
  for (const label of ['Message', 'Temperature', 'Top-p', 'Max tokens', 'API key']) {
    check(await page.getByLabel(label, { exact: false }).count() === 1, `no single field labelled "${label}"`);
  }

  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', String(kMaxTokens));

  // First message, sent with Enter.
  await watchReply(page);
  await page.fill('#prompt', 'Hello! What is the capital of France?');
  await page.press('#prompt', 'Enter');
  let status = await replyFinished(page, 'the first reply');
  let turns = await conversation(page);
  check(turns.length === 2 && turns[0].role === 'user' && turns[1].role === 'assistant',
        `after one message the conversation is ${JSON.stringify(turns)}`);
  check(turns[1].text.trim() !== '', 'the first reply is empty');
  check(/\d+(?:\.\d+)? tokens\/s/.test(status), `the status shows no tokens/s: "${status}"`);
  // Streamed: shown before it ended, grown piece by piece.
  const watch = await page.evaluate(() => window.replyWatch);
  check(watch.partial && watch.appends > 1,
        `the first reply was not streamed into the page: ${JSON.stringify(watch)}`);
  state.summary = `the first reply in ${watch.appends} pieces, ${watch.renders} renders: ${status}`;
  check(requests.length === 1, `${requests.length} requests for one message`);
  const first = requests[0];
  check(first.body.stream === true && first.body.stream_options?.include_usage === true,
        `the request does not stream with usage: ${JSON.stringify(first.body)}`);
  check(first.body.temperature === 0 && first.body.top_p === 0.3 && first.body.max_tokens === kMaxTokens,
        `the request does not carry the settings: ${JSON.stringify(first.body)}`);
  const conversationId = first.headers['x-conversation-id'];
  check(/^[0-9a-f]{16,}$/.test(conversationId || ''), `X-Conversation-Id is "${conversationId}"`);
  check(first.headers.authorization === undefined, 'an Authorization header without an API key');

  // Shift+Enter is a new line, not a send.
  await page.fill('#prompt', 'And of Italy?');
  await page.press('#prompt', 'Shift+Enter');
  await page.type('#prompt', 'Answer briefly.');
  check(await page.inputValue('#prompt') === 'And of Italy?\nAnswer briefly.', 'Shift+Enter did not add a new line');
  check(requests.length === 1, 'Shift+Enter sent the message');

  // Second message, sent with the button: the history goes with it.
  await page.click('#send');
  status = await replyFinished(page, 'the second reply');
  turns = await conversation(page);
  check(turns.length === 4 && turns[2].role === 'user' && turns[3].role === 'assistant' && turns[3].text.trim() !== '',
        `after two messages the conversation is ${JSON.stringify(turns)}`);
  check(/\d+(?:\.\d+)? tokens\/s/.test(status), `the status shows no tokens/s: "${status}"`);
  const second = requests[1];
  const sentRoles = second.body.messages.map((m) => m.role).join(',');
  check(sentRoles === 'user,assistant,user' && second.body.messages[1].content.trimStart() === turns[1].text &&
        second.body.messages[2].content === 'And of Italy?\nAnswer briefly.',
        `the second request sends ${JSON.stringify(second.body.messages)}`);
  check(second.headers['x-conversation-id'] === conversationId, 'the conversation id changed within a conversation');
  if (args.screenshot) await page.screenshot({ path: args.screenshot });

  // A setting the server refuses: its status and message show, and the turn leaves.
  await page.fill('#temperature', '-1');
  await page.fill('#prompt', 'This one fails.');
  await page.click('#send');
  status = await replyFinished(page, 'the refused request');
  check(/HTTP 400: .*temperature/.test(status), `the status for a bad temperature is "${status}"`);
  check((await page.textContent('#conversation')).includes('HTTP 400'), 'the error is not shown in the conversation');
  await page.fill('#temperature', '0');

  // Reset: an empty conversation, then a new id and only the new message in the history.
  await page.click('#reset');
  await waitInPage(page, 'an empty conversation after Reset', kUiSeconds,
                   () => document.querySelectorAll('#conversation .message').length === 0);
  check(await page.textContent('#status') === '', 'the status stays after Reset');
  // This server takes any key; the page must send it once one is set.
  await page.fill('#api-key', kApiKey);
  await page.dispatchEvent('#api-key', 'change');
  await page.fill('#prompt', 'Hi again.');
  await page.press('#prompt', 'Enter');
  await replyFinished(page, 'the reply after Reset');
  const afterReset = requests[requests.length - 1];
  check(afterReset.body.messages.length === 1,
        `after Reset the request sends ${afterReset.body.messages.length} messages`);
  check(afterReset.headers['x-conversation-id'] !== conversationId, 'Reset kept the conversation id');
  check(afterReset.headers.authorization === `Bearer ${kApiKey}`,
        `with an API key set, Authorization is "${afterReset.headers.authorization}"`);

  // A reload keeps the key (localStorage), not the conversation; a phone-sized window
  // scrolls nothing sideways.
  await page.setViewportSize({ width: 360, height: 640 });
  await page.reload();
  await waitInPage(page, 'the model id after a reload', kUiSeconds,
                   (id) => document.getElementById('model-id').textContent === id, modelId);
  check(await page.inputValue('#api-key') === kApiKey, 'the API key is not kept across a reload');
  check(await page.locator('#conversation .message').count() === 0, 'a reload kept the conversation');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `at 360 px wide the page is ${overflow} px too wide`);

  check(pageErrors.length === 0, `the page logged errors:\n  ${pageErrors.join('\n  ')}`);
  await state.browser.close();
  state.browser = null;

  const exit = await state.server.stop('SIGTERM', kExitSeconds);
  check(exit !== null, `the server did not exit within ${kExitSeconds} s of SIGTERM`);
  check(exit.code === 0, `the server exited with ${JSON.stringify(exit)} after SIGTERM`);
}

async function main() {
  const state = { server: null, browser: null, page: null, summary: '' };
  const started = Date.now();
  let failed = false;
  try {
    await run(parseArgs(process.argv.slice(2)), state);
  } catch (error) {
    failed = true;
    console.error(`FAIL: ${error.message}`);
    if (state.page) {
      const text = await state.page.evaluate(() => document.body.innerText).catch((e) => `(unreadable: ${e.message})`);
      console.error(`--- the page's text ---\n${text}`);
    }
    if (state.server) console.error(`--- rwkv-server's stderr ---\n${state.server.stderr}`);
  } finally {
    if (state.browser) await state.browser.close().catch(() => {});
    if (state.server) state.server.kill();
  }
  if (!failed) console.log(`chat page: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (${state.summary})`);
  process.exit(failed ? 1 : 0);
}

main();
