/** Intruders: no token, no execution; model files cannot escape the python path; servers listen on a 0600 Unix socket only. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { FrameDecoder, encodeFrame } from '../../src/protocol/index.js';
import { createStage, ModelLoadError } from '../../src/index.js';
import { fixtures } from '../support/paths.js';

/** Socket inodes among the open files of `pid`. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  return inodes;
}

/** Listening sockets of `pid`: TCP ones as [address hex, port], Unix ones by path. */
function listeningSockets(pid: number): { tcp: [string, number][]; unix: string[] } {
  const mine = socketInodes(pid);
  const tcp: [string, number][] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A' || !mine.has(cols[9]!)) continue; // LISTEN, and this process's
      const [addr, port] = cols[1]!.split(':');
      tcp.push([addr!, parseInt(port!, 16)]);
    }
  }
  const unix: string[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // Flags 00010000 is __SO_ACCEPTCON: a listening socket; inode in column 7, path in column 8.
    if (cols[3] === '00010000' && mine.has(cols[6]!) && cols[7] !== undefined) unix.push(cols[7]);
  }
  return { tcp, unix };
}

test('a client without the token gets Code -4 and nothing runs; escapes are refused; a 0600 Unix socket only', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'slow', file: 'slow_leaky.py' }] });
  const [status] = await stage.status();
  const listen = listeningSockets(status!.serverPid!);
  assert.deepEqual(listen.tcp, [], 'the server listens on no TCP port');
  assert.equal(listen.unix.length, 1, `one Unix socket: ${listen.unix.join(', ')}`);
  const path = listen.unix[0]!;
  assert.equal(statSync(path).mode & 0o777, 0o600, 'only its owner may connect');
  assert.ok(String(status!.server.Uniq).endsWith('.unix'));

  const replies: Record<string, unknown>[] = [];
  await new Promise<void>((resolve) => {
    const socket = connect({ path });
    const decoder = new FrameDecoder({ onFrame: (p) => replies.push(JSON.parse(p.toString())), onError: () => {} });
    socket.on('data', (c) => decoder.push(c));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    socket.write(encodeFrame(JSON.stringify({ Cmd: 'executeModel', CmdVer: 1, Id: 1, CmdOptions: { ModelName: 'slow', InputDictionary: { seq: 1 } } })));
  });
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.Code, -4);
  const [after] = await stage.status();
  const models = after!.server.Models as { Name: string; Executed: number }[];
  assert.equal(models.find((m) => m.Name === 'slow')!.Executed, 0, 'the intruder executed nothing');
  await assert.rejects(stage.addModel({ name: 'escape', file: '/etc/passwd' }), ModelLoadError);
  await assert.rejects(stage.addModel({ name: 'escape', file: '../../../package.json' }), ModelLoadError);
  await stage.close();
});
