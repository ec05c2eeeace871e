import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { callBody } from '../helpers/raw-http.js';
import { FrameGenerator, type Frame } from './frames.js';
import { FRAMES, key, RSS_LIMIT_MB, SEED, startFuzzGateway, until } from './harness.js';

describe(`protocol fuzzer over stdio (FUZZ_SEED=${SEED} FUZZ_FRAMES=${FRAMES})`, () => {
  test('over stdio: no crash, every request answered, RSS bounded, a legitimate call works afterwards', async (t) => {
    t.diagnostic(`replay with FUZZ_SEED=${SEED} FUZZ_FRAMES=${FRAMES}`);
    const gw = startFuzzGateway('stdio', 'listeners:\n  stdio:\n    agent: alice', ['--stdio']);
    try {
      const answered = new Set<string>();
      let buffered = '';
      gw.child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline !== -1) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          try {
            answered.add(key((JSON.parse(line) as { id?: unknown }).id));
          } catch {
            assert.fail(`the gateway wrote a line that is not JSON on stdout: ${line.slice(0, 200)}`);
          }
          newline = buffered.indexOf('\n');
        }
      });
      const stdin = gw.child.stdin;
      assert.ok(stdin);
      const write = async (text: string): Promise<void> => {
        if (!stdin.write(`${text}\n`)) await new Promise((resolve) => stdin.once('drain', resolve));
      };
      await write(JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } }));
      assert.ok(await until(() => answered.has(key('init')), 30_000), `no answer to initialize: ${gw.stderr().slice(-2000)}`);
      await write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      const generator = new FrameGenerator(SEED);
      // Requests not yet seen answered (pruned as answers come, so a long run stays linear).
      const expected: Array<string | number> = [];
      let requests = 0;
      const started = Date.now();
      for (let i = 0; i < FRAMES; i += 1) {
        const frame: Frame = generator.next();
        if (frame.expectId !== undefined) {
          expected.push(frame.expectId);
          requests += 1;
        }
        await write(frame.text);
        if (gw.exited() !== undefined) break;
        // Let answers catch up now and then, as a real client would wait for some of them.
        if (i % 500 === 499) {
          await until(() => expected.every((id) => answered.has(key(id))), 30_000);
          expected.splice(0, expected.length, ...expected.filter((id) => !answered.has(key(id))));
        }
        if (i % 20_000 === 19_999 && process.env['FUZZ_PROGRESS'] !== undefined) {
          process.stderr.write(`fuzz progress: ${i + 1} frames, ${Math.round((i + 1) / ((Date.now() - started) / 1000))} frames/s, peak RSS ${gw.peakRssMb()} MB, dead: ${JSON.stringify(gw.exited() ?? null)}\n`);
        }
      }
      const allAnswered = await until(() => expected.every((id) => answered.has(key(id))), 60_000);
      const seconds = (Date.now() - started) / 1000;
      t.diagnostic(`stdio: ${FRAMES} frames in ${seconds.toFixed(1)} s (${Math.round(FRAMES / seconds)} frames/s), ${requests} requests, peak RSS ${gw.peakRssMb()} MB`);
      assert.equal(gw.exited(), undefined, `the gateway died (seed ${SEED}): ${gw.stderr().slice(-3000)}`);
      const missing = expected.filter((id) => !answered.has(key(id)));
      assert.ok(allAnswered, `${missing.length} requests never answered (seed ${SEED}), e.g. ${JSON.stringify(missing.slice(0, 5))}`);
      await write(callBody('legit', 'paced.echo', { text: 'still here' }));
      assert.ok(await until(() => answered.has(key('legit')), 30_000), 'a legitimate call after the fuzzing got no answer');
      assert.ok(gw.peakRssMb() < RSS_LIMIT_MB, `peak RSS ${gw.peakRssMb()} MB over ${RSS_LIMIT_MB} MB (seed ${SEED})`);
    } finally {
      gw.stop();
    }
  });

});
