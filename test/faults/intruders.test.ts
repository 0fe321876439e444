/** Intruders: no token, no execution; model files cannot escape the python path; servers listen on loopback only. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { FrameDecoder, encodeFrame } from '../../src/protocol/index.js';
import { createStage, ModelLoadError } from '../../src/index.js';
import { fixtures } from '../support/paths.js';

/** Listening TCP sockets of this machine as [address hex, port] from /proc/net/tcp and tcp6. */
function listeningSockets(): [string, number][] {
  const found: [string, number][] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A') continue; // LISTEN
      const [addr, port] = cols[1]!.split(':');
      found.push([addr!, parseInt(port!, 16)]);
    }
  }
  return found;
}

test('a client without the token gets Code -4 and nothing runs; escapes are refused; loopback only', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'slow', file: 'slow_leaky.py' }] });
  const [status] = await stage.status();
  const uniq = String(status!.server.Uniq);
  const port = Number(/\.(\d+)$/.exec(uniq)![1]);
  const listen = listeningSockets().filter(([, p]) => p === port);
  assert.ok(listen.length > 0, `server port ${port} is listening`);
  for (const [addr] of listen) assert.equal(addr, '0100007F', `server bound to ${addr}, not 127.0.0.1`);

  const replies: Record<string, unknown>[] = [];
  await new Promise<void>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
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
