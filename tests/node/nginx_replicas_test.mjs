// Two rwkv-server replicas behind nginx, with the repository's example configuration
// (examples/nginx/rwkv-replicas.conf): requests are routed by X-Conversation-Id with
// consistent hashing, so a conversation's follow-up turn reaches the replica that holds
// its cached state and feeds only its new message.
//
//   node tests/node/nginx_replicas_test.mjs --server build/rwkv-server [--nginx /usr/sbin/nginx]
//
// Only loopback addresses; every wait is bounded; every process is stopped at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { ChildProcess, RwkvServer, freePort, sleep } from './server_process.mjs';

const kStartSeconds = 120;  // an AddressSanitizer build on a busy two-core machine
const kConversations = 16;  // first turns spread over both replicas (all on one: 2^-15)
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function parseArgs(argv) {
  const args = { server: '', nginx: '', config: path.join(repoRoot, 'examples', 'nginx', 'rwkv-replicas.conf') };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in args) || argv[i + 1] === undefined) {
      throw new Error(`unknown argument ${argv[i]} (usage: --server PATH [--nginx PATH] [--config FILE])`);
    }
    args[name] = argv[i + 1];
  }
  if (!args.server) throw new Error('--server PATH is required');
  if (!args.nginx) {
    args.nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p)) || 'nginx';
  }
  return args;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function post(base, route, body, conversation) {
  const headers = { 'Content-Type': 'application/json' };
  if (conversation) headers['X-Conversation-Id'] = conversation;
  const res = await fetch(base + route, { method: 'POST', headers, body: JSON.stringify(body),
                                          signal: AbortSignal.timeout(120000) });
  const text = await res.text();
  check(res.status === 200, `${route} answered ${res.status}: ${text}`);
  return { body: JSON.parse(text), replica: res.headers.get('x-rwkv-replica') };
}

function chatBody(messages) {
  return { messages, max_tokens: 12, temperature: 0 };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rwkv-nginx-'));
  const processes = [];
  try {
    const replicas = [new RwkvServer(args.server, ['--threads', '1']), new RwkvServer(args.server, ['--threads', '1'])];
    processes.push(...replicas);
    const urls = await Promise.all(replicas.map((r) => r.url(kStartSeconds)));
    const addresses = urls.map((u) => u.replace('http://', ''));

    // The example, with the replicas' and the balancer's ports of this run.
    const port = await freePort();
    let config = fs.readFileSync(args.config, 'utf8');
    for (const [from, to] of [['127.0.0.1:8081', addresses[0]], ['127.0.0.1:8082', addresses[1]],
                              ['127.0.0.1:8080', `127.0.0.1:${port}`]]) {
      check(config.includes(from), `${args.config} no longer names ${from}`);
      config = config.replaceAll(from, to);
    }
    fs.writeFileSync(path.join(dir, 'nginx.conf'), config);
    const nginx = new ChildProcess(args.nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr'],
                                   { name: 'nginx' });
    processes.push(nginx);
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        if ((await fetch(base + '/health', { signal: AbortSignal.timeout(2000) })).ok) break;
      } catch { /* not up yet */ }
      check(!nginx.exit, `nginx exited: ${JSON.stringify(nginx.exit)}\n${nginx.stderr}`);
      check(Date.now() < deadline, `nginx did not answer within 30 s\n${nginx.stderr}`);
      await sleep(100);
    }

    // First turns of many conversations: each lands on one replica, both are used.
    const turns = [];
    for (let i = 0; i < kConversations; ++i) {
      const id = `conversation-${i}-${process.pid}`;
      const messages = [{ role: 'user', content: `Question number ${i}: what is a cat?` }];
      const first = await post(base, '/v1/chat/completions', chatBody(messages), id);
      check(addresses.includes(first.replica), `unknown replica ${first.replica}`);
      turns.push({ id, messages, first });
    }
    const used = new Set(turns.map((t) => t.first.replica));
    check(used.size === 2, `all ${kConversations} conversations went to ${[...used]}: no spreading`);

    // A follow-up turn on one conversation per replica: the same replica, and only the new
    // message is fed.
    const newMessage = 'And a dog?';
    const newTokens = (await post(urls[0], '/tokenize', { content: `User: ${newMessage}\n\n` })).body.tokens.length +
                      (await post(urls[0], '/tokenize', { content: 'Assistant:' })).body.tokens.length;
    for (const address of addresses) {
      const turn = turns.find((t) => t.first.replica === address);
      const messages = [...turn.messages, turn.first.body.choices[0].message, { role: 'user', content: newMessage }];
      // The reply was fed into the cache right after the first turn's answer; a request
      // arriving meanwhile waits for that, so the cache must hit at once.
      const second = await post(base, '/v1/chat/completions', chatBody(messages), turn.id);
      const usage = second.body.usage;
      check(second.replica === address, `${turn.id}: the follow-up went to ${second.replica}, not ${address}`);
      check(usage.prompt_tokens_details.cached_tokens === usage.prompt_tokens - newTokens,
            `${turn.id}: cached_tokens ${usage.prompt_tokens_details.cached_tokens} of ${usage.prompt_tokens}, ` +
            `expected all but the new message's ${newTokens}`);
      // The other replica has nothing of this conversation: there it would cost it all.
      const other = urls[addresses.indexOf(address) === 0 ? 1 : 0];
      const elsewhere = await post(other, '/v1/chat/completions', chatBody(messages));
      check(elsewhere.body.usage.prompt_tokens_details.cached_tokens === 0,
            `${turn.id}: the other replica had a cached prefix`);
      check(elsewhere.body.choices[0].message.content === second.body.choices[0].message.content,
            `${turn.id}: the replicas answered the same greedy request differently`);
      console.log(`${turn.id} on ${address}: follow-up fed ${newTokens} of ${usage.prompt_tokens} prompt tokens`);
    }

    const nginxExit = await nginx.stop('SIGQUIT', 10);
    check(nginxExit !== null, 'nginx did not stop on SIGQUIT');
    for (const r of replicas) {
      const exit = await r.stop('SIGTERM', 30);
      check(exit && exit.code === 0, `rwkv-server exited with ${JSON.stringify(exit)}\n${r.stderr}`);
    }
    console.log(`ok: ${kConversations} conversations over 2 replicas (${[...used].join(', ')}), follow-ups cached`);
  } catch (error) {
    for (const p of processes) console.error(`--- ${p.name} stderr ---\n${p.stderr}`);
    throw error;
  } finally {
    for (const p of processes) p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`nginx_replicas_test: ${error.stack || error}`);
  process.exit(1);
});
