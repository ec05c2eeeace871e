import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { callBody, openSession, post } from '../helpers/raw-http.js';
import { FrameGenerator } from './frames.js';
import { HTTP_FRAMES, RSS_LIMIT_MB, SEED, startFuzzGateway, until } from './harness.js';

describe(`protocol fuzzer over HTTP (FUZZ_SEED=${SEED} FUZZ_HTTP_FRAMES=${HTTP_FRAMES})`, () => {
  test('over HTTP: no crash, every request answered, RSS bounded, a legitimate call works afterwards', async (t) => {
    t.diagnostic(`replay with FUZZ_SEED=${SEED} FUZZ_HTTP_FRAMES=${HTTP_FRAMES}`);
    const gw = startFuzzGateway('http', 'listeners:\n  http:\n    host: 127.0.0.1\n    port: 0', []);
    try {
      let url = '';
      assert.ok(await until(() => (url = /"url":"(http:[^"]+)"/.exec(gw.stderr())?.[1] ?? '') !== '', 30_000), `the gateway did not start: ${gw.stderr()}`);
      const session = await openSession(url);
      const generator = new FrameGenerator(SEED ^ 0x5bd1e995);
      const failures: string[] = [];
      let requests = 0;
      let next = 0;
      const started = Date.now();
      const worker = async (): Promise<void> => {
        while (next < HTTP_FRAMES && failures.length < 10) {
          next += 1;
          const frame = generator.next();
          try {
            const sent = Date.now();
            const answer = await post(url, frame.text, { 'mcp-session-id': session });
            slowest.push([Date.now() - sent, frame.text.slice(0, 100)]);
            if (frame.expectId !== undefined) {
              requests += 1;
              if (answer.body?.['id'] !== frame.expectId) failures.push(`${frame.text.slice(0, 120)} -> ${answer.status} ${answer.text.slice(0, 200)}`);
            } else if (answer.status >= 500) failures.push(`${frame.text.slice(0, 120)} -> ${answer.status}`);
          } catch (error) {
            failures.push(`${frame.text.slice(0, 120)} -> ${(error as Error).message}`);
          }
        }
      };
      const slowest: Array<[number, string]> = [];
      await Promise.all(Array.from({ length: 8 }, () => worker()));
      if (process.env['FUZZ_PROFILE'] !== undefined) for (const [ms, text] of slowest.sort((a, b) => b[0] - a[0]).slice(0, 8)) t.diagnostic(`${ms} ms: ${text}`);
      const seconds = (Date.now() - started) / 1000;
      t.diagnostic(`http: ${next} frames in ${seconds.toFixed(1)} s (${Math.round(next / seconds)} frames/s), ${requests} requests, peak RSS ${gw.peakRssMb()} MB`);
      assert.equal(gw.exited(), undefined, `the gateway died (seed ${SEED}): ${gw.stderr().slice(-3000)}`);
      assert.deepEqual(failures, [], `seed ${SEED}`);
      const echoed = (answer: Awaited<ReturnType<typeof post>>): string | undefined => (answer.body?.['result'] as { content: Array<{ text: string }> } | undefined)?.content[0]?.text;
      // The fuzzed session still answers. Past 100,000 tool calls (runs of about 200,000 frames and
      // more) the chain-length limit cuts it off by design, and must say so; a fresh session works.
      const legit = await post(url, callBody('legit', 'paced.echo', { text: 'still here' }), { 'mcp-session-id': session });
      const cutOff = (legit.body?.['error'] as { data?: { reason?: string } } | undefined)?.data?.reason === 'chain_limit';
      assert.ok(echoed(legit) === 'still here' || cutOff, `the legitimate call after the fuzzing: ${legit.status} ${legit.text.slice(0, 500)}`);
      const fresh = await post(url, callBody('legit-fresh', 'paced.echo', { text: 'still here' }), { 'mcp-session-id': await openSession(url) });
      assert.equal(echoed(fresh), 'still here', `a legitimate call on a new session: ${fresh.status} ${fresh.text.slice(0, 500)}`);
      assert.ok(gw.peakRssMb() < RSS_LIMIT_MB, `peak RSS ${gw.peakRssMb()} MB over ${RSS_LIMIT_MB} MB (seed ${SEED})`);
    } finally {
      gw.stop();
    }
  });
});
