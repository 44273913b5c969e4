import { SerialLoad } from './serial-load.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('never runs two loads at once, and a change during a load makes exactly one more', async () => {
  let running = 0;
  let most = 0;
  let loads = 0;
  const loader = new SerialLoad({
    load: async () => {
      running++;
      most = Math.max(most, running);
      loads++;
      await sleep(30);
      running--;
    },
    failed: () => {},
    debounceMs: 1,
  });
  loader.request();
  await sleep(10);
  for (let i = 0; i < 5; i++) loader.request(); // during the first load
  await sleep(150);
  expect(most).toBe(1);
  expect(loads).toBe(2);
  await loader.stop();
});

it('reports a failed load and tries again until one succeeds; stop() ends the retries', async () => {
  const errors: string[] = [];
  let attempts = 0;
  const loader = new SerialLoad({
    load: async () => {
      attempts++;
      if (attempts < 3) throw new Error(`HTTP 500 #${attempts}`);
    },
    failed: (e) => void errors.push((e as Error).message),
    debounceMs: 1,
  });
  loader.request();
  // Backoff: about 100-200 ms, then 200-400 ms.
  const deadline = Date.now() + 5000;
  while (attempts < 3 && Date.now() < deadline) await sleep(20);
  expect(attempts).toBe(3);
  expect(errors).toEqual(['HTTP 500 #1', 'HTTP 500 #2']);
  await loader.stop();
  loader.request();
  await sleep(50);
  expect(attempts).toBe(3);
});
