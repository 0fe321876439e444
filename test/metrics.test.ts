/**
 * Prometheus metrics, scraped over HTTP from a real run: the CLI with --metrics-port, real Python
 * servers, a model that fails one message and kills its server on another.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStage } from '../src/index.js';
import { jsonLines, startCli, summaryOf } from './support/cli-runner.js';
import { collect } from './support/collect.js';
import { freePort } from './support/free-port.js';
import { fixtures } from './support/paths.js';
import { waitFor } from './support/wait-for.js';

/** Samples of a Prometheus text page: `name{labels}` → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function sum(samples: Map<string, number>, prefix: string): number {
  let total = 0;
  for (const [name, value] of samples) if (name.startsWith(prefix)) total += value;
  return total;
}

describe('metrics', () => {
  test('--metrics-port serves counters, histograms and gauges during a run, on 127.0.0.1', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const { child, done } = startCli(['run', '--python-path', fixtures, '--model', `h=${fixtures}hostile.py`, '--partitions', '2', '--metrics-port', String(port)]);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const outputs = () => jsonLines(stdout).length;
    const line = (m: object) => JSON.stringify(m) + '\n';
    try {

      let input = '';
      for (let i = 0; i < 100; i++) input += line({ key: `k${i % 7}`, seq: i });
      input += line({ key: 'k1', seq: 100, fail: true });
      child.stdin!.write(input);
      await waitFor('100 outputs and one error', () => outputs() === 100 && stderr.includes('asked to fail at seq 100'), 30_000);
      let m = await scrape(url);
      assert.equal(m.get('pystage_messages_in_total'), 101);
      assert.equal(m.get('pystage_outputs_total{model="h"}'), 100);
      assert.equal(m.get('pystage_errors_total{model="h",code="PYSTAGE_MODEL_EXECUTION"}'), 1);
      assert.equal(m.get('pystage_batch_size_sum'), 101);
      assert.ok(m.get('pystage_batch_size_count')! >= 2);
      assert.ok(m.get('pystage_message_latency_seconds_count')! >= 2);
      for (const p of [0, 1]) {
        assert.equal(m.get(`pystage_in_flight_messages{partition="${p}"}`), 0);
        assert.equal(m.get(`pystage_queued_messages{partition="${p}"}`), 0);
        assert.ok(m.get(`pystage_server_rss_bytes{partition="${p}"}`)! > 1_000_000, `server ${p} RSS`);
      }
      assert.equal(sum(m, 'pystage_restarts_total'), 0);

      // A message that kills its server on every try: 3 restarts (maxAttempts), sent again twice, then given up.
      child.stdin!.write(line({ key: 'k2', seq: 101, die: true }) + line({ key: 'k3', seq: 102 }));
      await waitFor('the poison message given up', () => outputs() === 101 && stderr.includes('PYSTAGE_POISON_MESSAGE'), 30_000);
      // The next message of that partition runs on the server restarted after the last crash; its reply reports the restart.
      child.stdin!.write(line({ key: 'k2', seq: 103 }));
      await waitFor('the message after the poison one', () => outputs() === 102, 30_000);
      m = await scrape(url);
      assert.equal(m.get('pystage_messages_in_total'), 104);
      assert.equal(sum(m, 'pystage_restarts_total{'), 3);
      assert.ok([...m.keys()].some((k) => k.startsWith('pystage_restarts_total{') && k.includes('cause="closed"')), [...m.keys()].join('\n'));
      assert.ok(sum(m, 'pystage_reexecutions_total{') >= 2);
      assert.equal(m.get('pystage_errors_total{model="h",code="PYSTAGE_POISON_MESSAGE"}'), 1);

      const missing = await fetch(`http://127.0.0.1:${port}/other`);
      assert.equal(missing.status, 404);
      child.stdin!.end();
      const result = await done;
      assert.equal(result.code, 0, stderr.slice(-2000));
      assert.equal(summaryOf(stderr).in, 104);
      await assert.rejects(fetch(url), 'the metrics server stops with the stage');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('--metrics-port 0 prints its URL at the default log level; --metrics-host picks the address (default loopback only)', async () => {
    // 127.0.0.2 is loopback too on Linux, but not the address 127.0.0.1 binds: it tells the two apart.
    const served = async (hostArgs: string[]) => {
      const { child, done } = startCli(['run', '--model', `a=${fixtures}arith.py`, '--partitions', '1', '--metrics-port', '0', ...hostArgs]);
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
      await waitFor('the metrics URL on stderr', () => stderr.includes('"metricsUrl"'));
      const url = new URL((JSON.parse(stderr.split('\n').find((l) => l.includes('"metricsUrl"'))!) as { metricsUrl: string }).metricsUrl);
      const other = `http://127.0.0.2:${url.port}/metrics`;
      const reached = await fetch(other).then((r) => r.status, () => null);
      child.stdin!.end();
      assert.equal((await done).code, 0);
      return { url, reached };
    };
    const loopback = await served([]);
    assert.equal(loopback.url.hostname, '127.0.0.1');
    assert.equal(loopback.reached, null, 'the default serves 127.0.0.1 only');
    const everywhere = await served(['--metrics-host', '0.0.0.0']);
    assert.equal(everywhere.url.hostname, '0.0.0.0');
    assert.equal(everywhere.reached, 200, '--metrics-host 0.0.0.0 serves every address');
  });

  test('the API option: metricsPort 0 picks a free port, metricsUrl names it, close stops it; no option, no server', async () => {
    const stage = await createStage({ models: [{ name: 'a', file: `${fixtures}arith.py` }], partitions: 1, metricsPort: 0 });
    assert.match(stage.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const records = await collect(stage.process([{ key: 1, a: 1, b: 2 }, { key: 2, a: 3, b: 4 }]));
    assert.deepEqual(records.map((r) => r.kind), ['output', 'output']);
    const m = await scrape(stage.metricsUrl!);
    assert.equal(m.get('pystage_outputs_total{model="a"}'), 2);
    await stage.close();
    await assert.rejects(fetch(stage.metricsUrl!));
    const plain = await createStage({ models: [{ name: 'a', file: `${fixtures}arith.py` }], partitions: 1 });
    assert.equal(plain.metricsUrl, null);
    await plain.close();
  });
});
