// What the tests in tests/node share: an rwkv-server (or any) child process whose
// stderr is kept for failure reports, bounded waits, and a free loopback port.
import { spawn } from 'node:child_process';
import net from 'node:net';

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A free TCP port on 127.0.0.1 (for programs that cannot pick one themselves, as nginx).
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export class ChildProcess {
  constructor(path, args, options = {}) {
    this.name = options.name || path;
    this.stderr = '';
    this.exit = null;  // {code, signal} once it has exited
    this.child = spawn(path, args, { stdio: ['ignore', 'ignore', 'pipe'], env: options.env || process.env });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text) => { this.stderr += text; });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.on('error', (error) => {
        this.stderr += `\n(spawn failed: ${error.message})`;
        this.exit = { code: null, signal: null, error: error.message };
        resolve(this.exit);
      });
    });
  }

  // The process id (for reading /proc/PID), undefined when the spawn failed.
  get pid() {
    return this.child.pid;
  }

  // The first match of `pattern` in stderr, or a throw after `seconds` or at exit.
  async waitForStderr(pattern, seconds) {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      const match = pattern.exec(this.stderr);
      if (match) return match;
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before printing ${pattern}`);
      await sleep(50);
    }
    throw new Error(`${this.name} did not print ${pattern} within ${seconds} s`);
  }

  // Sends `signal`, then waits up to `seconds` for the exit (null when it did not come).
  async stop(signal, seconds) {
    if (this.exit) return this.exit;
    this.child.kill(signal);
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve(null), seconds * 1000); });
    return Promise.race([this.exited, late]).finally(() => clearTimeout(timer));
  }

  kill() {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

// rwkv-server on a free loopback port; `url()` waits for its "listening on" line.
export class RwkvServer extends ChildProcess {
  constructor(path, args = [], options = {}) {
    super(path, ['--host', '127.0.0.1', '--port', '0', ...args], { name: 'rwkv-server', ...options });
  }

  async url(seconds) {
    return (await this.waitForStderr(/listening on (http:\/\/\S+)/, seconds))[1];
  }
}
