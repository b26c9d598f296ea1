/**
 * The load generator: one workload against one server on 127.0.0.1, then
 * one JSON line of results on stdout. Deno's own WebSocket client: it is
 * not the bottleneck for what we compare, server CPU per message, which is
 * read from /proc/PID/stat over the measurement window only.
 *
 *   deno run -A bench/loadgen.ts WORKLOAD PORT SERVER_PID '{"size":32,...}'
 *
 * With `redisPid` in the parameters, Redis's CPU is measured too, so that
 * the cost of a publish shows where it goes.
 */

const [workload, portArg, pidArg, paramsArg = "{}"] = Deno.args;
const port = Number(portArg);
const pid = Number(pidArg);
const params = JSON.parse(paramsArg) as Record<string, number>;
const url = `ws://127.0.0.1:${port}`;
const CLK_TCK = params.clkTck ?? 100;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Server CPU time in microseconds: the sum of every thread's run time from
 * /proc/PID/task/TID/schedstat (nanoseconds), falling back to utime+stime
 * from /proc/PID/stat (clock ticks, 10 ms granularity).
 */
function serverCpuMicros(of = pid): number {
  try {
    let nanos = 0;
    for (const task of Deno.readDirSync(`/proc/${of}/task`)) {
      const schedstat = Deno.readTextFileSync(
        `/proc/${of}/task/${task.name}/schedstat`,
      );
      nanos += Number(schedstat.split(" ")[0]);
    }
    return nanos / 1000;
  } catch {
    const stat = Deno.readTextFileSync(`/proc/${of}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  }
}

function serverRss(): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)![1]) * 1024;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function open(n: number, batch = 200): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i += batch) {
    const opened = Array.from(
      { length: Math.min(batch, n - i) },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve(ws);
          ws.onerror = () => reject(new Error("connect failed"));
        }),
    );
    sockets.push(...await Promise.all(opened));
  }
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) =>
    new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.onclose = () => resolve();
      ws.close();
    })
  ));
}

function echo(data: string, id: number): string {
  return `{"event":"echo","data":${JSON.stringify(data)},"id":${id}}`;
}

/** 1. Throughput: `conns` connections × `inflight` messages in flight. */
async function throughput(): Promise<Record<string, number>> {
  const { conns = 50, inflight = 32, size = 32, seconds = 5, warmup = 1 } =
    params;
  const data = "x".repeat(size);
  const sockets = await open(conns);
  let counted = 0;
  let counting = false;
  let stop = false;
  let nextId = 1;
  for (const ws of sockets) {
    ws.onmessage = () => {
      if (counting) counted++;
      if (!stop) ws.send(echo(data, nextId++));
    };
    for (let i = 0; i < inflight; i++) ws.send(echo(data, nextId++));
  }
  await delay(warmup * 1000);
  const cpu0 = serverCpuMicros();
  const t0 = performance.now();
  counting = true;
  await delay(seconds * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = serverCpuMicros() - cpu0;
  stop = true;
  await delay(200);
  await closeAll(sockets);
  return {
    messagesPerSecond: counted / elapsed,
    cpuMicrosPerMessage: cpu / counted,
  };
}

/** 2. Latency at a fixed rate over `conns` connections. */
async function latency(): Promise<Record<string, number>> {
  const { conns = 50, rate = 5000, seconds = 5, warmup = 1, size = 32 } =
    params;
  const data = "x".repeat(size);
  const sockets = await open(conns);
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
  let measuring = false;
  for (const ws of sockets) {
    ws.onmessage = (event) => {
      const id = Number(/"id":(\d+)/.exec(event.data)![1]);
      const t = sentAt.get(id);
      sentAt.delete(id);
      if (measuring && t !== undefined) samples.push(performance.now() - t);
    };
  }
  let nextId = 1;
  let credit = 0;
  let last = performance.now();
  const end = last + (warmup + seconds) * 1000;
  const measureFrom = last + warmup * 1000;
  let k = 0;
  while (performance.now() < end) {
    const now = performance.now();
    measuring = now >= measureFrom;
    credit += ((now - last) * rate) / 1000;
    last = now;
    for (; credit >= 1; credit--) {
      const id = nextId++;
      sentAt.set(id, performance.now());
      sockets[k++ % conns].send(echo(data, id));
    }
    await delay(1);
  }
  await delay(500);
  await closeAll(sockets);
  samples.sort((a, b) => a - b);
  return {
    p50Ms: percentile(samples, 0.5),
    p99Ms: percentile(samples, 0.99),
    p999Ms: percentile(samples, 0.999),
    samples: samples.length,
  };
}

/** 3. Idle memory: RSS growth per idle connection. */
async function idle(): Promise<Record<string, number>> {
  const { count = 5000 } = params;
  await delay(300);
  const before = serverRss();
  const sockets = await open(count);
  await delay(1500);
  const after = serverRss();
  await closeAll(sockets);
  return {
    kibPerConnection: (after - before) / count / 1024,
    connections: count,
  };
}

/** 4. Fan-out: one publish to `clients` members of one room. */
async function fanout(): Promise<Record<string, number>> {
  const { clients = 1000, publishes = 20, size = 32 } = params;
  const sockets = await open(clients);
  await joinAll(sockets);
  const data = "x".repeat(size);
  const delays: number[] = [];
  let deliveries = 0;
  let t0 = 0;
  let received = 0;
  let done: () => void = () => {};
  for (const ws of sockets) {
    ws.onmessage = () => {
      delays.push(performance.now() - t0);
      deliveries++;
      if (++received === clients) done();
    };
  }
  const cpu0 = serverCpuMicros();
  for (let p = 0; p < publishes; p++) {
    received = 0;
    const all = new Promise<void>((resolve) => done = resolve);
    t0 = performance.now();
    sockets[0].send(`{"event":"fanout","data":${JSON.stringify(data)}}`);
    await Promise.race([all, delay(5000)]);
    await delay(20);
  }
  const cpu = serverCpuMicros() - cpu0;
  await closeAll(sockets);
  delays.sort((a, b) => a - b);
  return {
    p50Ms: percentile(delays, 0.5),
    p99Ms: percentile(delays, 0.99),
    cpuMicrosPerDelivery: cpu / deliveries,
    deliveries,
  };
}

/** 5. Handshakes: connections opened and closed per second. */
async function handshakes(): Promise<Record<string, number>> {
  const { seconds = 5, concurrency = 16 } = params;
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const cpu0 = serverCpuMicros();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const [ws] = await open(1);
      await closeAll([ws]);
      count++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  return {
    handshakesPerSecond: count / elapsed,
    cpuMicrosPerHandshake: (serverCpuMicros() - cpu0) / count,
  };
}

/** Joins every socket to the bench topic; resolves with each join's reply data. */
function joinAll(sockets: WebSocket[], data = ""): Promise<unknown[]> {
  return Promise.all(sockets.map((ws, i) =>
    new Promise<unknown>((resolve) => {
      ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.id === i) resolve(message.data);
      };
      ws.send(`{"event":"join",${data}"id":${i}}`);
    })
  ));
}

/**
 * 6. Publish: `members` in one topic, `publishers` of them publishing with
 * `inflight` unacknowledged each, as fast as the server acknowledges:
 * publishes/s, server (and Redis) CPU per publish, deliveries/s.
 */
async function publish(): Promise<Record<string, number>> {
  const {
    members = 100,
    publishers = 4,
    inflight = 8,
    size = 32,
    seconds = 5,
    warmup = 1,
    redisPid,
  } = params;
  const sockets = await open(members);
  await joinAll(sockets);
  const text = `{"event":"publish","data":${
    JSON.stringify("x".repeat(size))
  },"id":1}`;
  let acked = 0;
  let delivered = 0;
  let counting = false;
  let stop = false;
  sockets.forEach((ws, i) => {
    const publisher = i < publishers;
    ws.onmessage = (event) => {
      if (event.data.startsWith('{"id"')) {
        if (counting) acked++;
        if (publisher && !stop) ws.send(text);
      } else if (counting) delivered++;
    };
    if (publisher) { for (let k = 0; k < inflight; k++) ws.send(text); }
  });
  await delay(warmup * 1000);
  const cpu0 = serverCpuMicros();
  const redis0 = redisPid ? serverCpuMicros(redisPid) : 0;
  const t0 = performance.now();
  counting = true;
  await delay(seconds * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = serverCpuMicros() - cpu0;
  const redis = redisPid ? serverCpuMicros(redisPid) - redis0 : NaN;
  stop = true;
  await delay(300);
  await closeAll(sockets);
  return {
    publishesPerSecond: acked / elapsed,
    deliveriesPerSecond: delivered / elapsed,
    cpuMicrosPerPublish: cpu / acked,
    redisCpuMicrosPerPublish: redis / acked,
  };
}

/**
 * 7. Recovery: a member leaves, `missed` publishes are made, it comes back
 * with its position; the time from its join to the join's reply, by which
 * every missed publish has arrived. `rounds` times; the median.
 */
async function recover(): Promise<Record<string, number>> {
  const { missed = 1000, size = 32, rounds = 5 } = params;
  const [publisher] = await open(1);
  await joinAll([publisher]);
  const text = `{"event":"publish","data":${
    JSON.stringify("x".repeat(size))
  },"id":1}`;
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const [member] = await open(1);
    const [joined] = await joinAll([member]) as { position: unknown }[];
    await closeAll([member]);
    // Publish `missed`, 32 unacknowledged at most.
    await new Promise<void>((resolve) => {
      let sent = 0;
      let acked = 0;
      publisher.onmessage = (event) => {
        if (!event.data.startsWith('{"id"')) return; // its own pushes
        if (++acked === missed) return resolve();
        if (sent < missed) sent++, publisher.send(text);
      };
      for (; sent < Math.min(32, missed); sent++) publisher.send(text);
    });
    const [back] = await open(1);
    let replayed = 0;
    const t0 = performance.now();
    const reply = await new Promise<{ recovered?: boolean }>((resolve) => {
      back.onmessage = (event) => {
        if (event.data.startsWith('{"event":"bench"')) replayed++;
        else if (event.data.startsWith('{"id"')) {
          resolve(JSON.parse(event.data).data);
        }
      };
      back.send(
        `{"event":"join","data":{"since":${
          JSON.stringify(joined.position)
        }},"id":1}`,
      );
    });
    times.push(performance.now() - t0);
    await closeAll([back]);
    if (!reply.recovered || replayed !== missed) {
      throw new Error(
        `recovery failed: recovered ${reply.recovered}, ${replayed}/${missed}`,
      );
    }
  }
  await closeAll([publisher]);
  times.sort((a, b) => a - b);
  return { recoverMs: percentile(times, 0.5), missed };
}

const workloads: Record<string, () => Promise<Record<string, number>>> = {
  throughput,
  latency,
  idle,
  fanout,
  handshakes,
  publish,
  recover,
};
const run = workloads[workload];
if (!run) throw new Error(`unknown workload ${workload}`);
console.log(JSON.stringify(await run()));
