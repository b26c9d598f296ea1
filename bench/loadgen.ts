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
const { protocol: protocolName = "duplex", nodes, ...numbers } = JSON.parse(
  paramsArg,
) as {
  protocol?: string;
  /** Every node's port and pid, for a workload across several processes. */
  nodes?: { port: number; pid: number }[];
} & Record<string, number>;
const params = numbers as Record<string, number>;
const CLK_TCK = params.clkTck ?? 100;

/**
 * How a server's wire reads: the JSON envelope (duplex and the raw, Node,
 * Bun servers, byte for byte) or Socket.IO's framing (Engine.IO 4 over a
 * WebSocket, spoken here by hand, so every server meets the same client):
 * `42<id>["echo",data]` answered by `43<id>[data]`, pushes as `42["bench",…]`.
 */
interface Wire {
  /** The socket's URL on `port`. */
  url(port: number): string;
  /** Resolves once the socket may carry requests (Socket.IO: after `40`). */
  ready(ws: WebSocket): Promise<void>;
  echo(data: string, id: number): string;
  join(id: number, since?: string): string;
  fanout(data: string): string;
  publish(data: string): string;
  /** The id a reply answers, or undefined for a push. */
  replyId(text: string): number | undefined;
  /** A reply's data. */
  replyData(text: string): unknown;
}

const duplexWire: Wire = {
  url: (port) => `ws://127.0.0.1:${port}`,
  ready: () => Promise.resolve(),
  echo: (data, id) =>
    `{"event":"echo","data":${JSON.stringify(data)},"id":${id}}`,
  join: (id, since) =>
    since === undefined
      ? `{"event":"join","id":${id}}`
      : `{"event":"join","data":{"since":${since}},"id":${id}}`,
  fanout: (data) => `{"event":"fanout","data":${JSON.stringify(data)}}`,
  publish: (data) =>
    `{"event":"publish","data":${JSON.stringify(data)},"id":1}`,
  replyId: (text) => {
    // A reply, or (from the floor, which echoes) the request itself.
    if (
      !text.startsWith('{"id"') && !text.startsWith('{"event":"echo"') &&
      !text.startsWith('{"event":"join"')
    ) {
      return undefined;
    }
    const id = /"id":(\d+)/.exec(text);
    return id ? Number(id[1]) : undefined;
  },
  replyData: (text) => JSON.parse(text).data,
};

const socketIoWire: Wire = {
  url: (port) => `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`,
  ready: (ws) =>
    new Promise((resolve) => {
      ws.addEventListener("message", function connected(event) {
        const text = event.data as string;
        if (text.startsWith("0{")) ws.send("40");
        else if (text.startsWith("40")) {
          ws.removeEventListener("message", connected);
          resolve();
        }
      });
    }),
  echo: (data, id) => `42${id}["echo",${JSON.stringify(data)}]`,
  join: (id) => `42${id}["join"]`,
  fanout: (data) => `42["fanout",${JSON.stringify(data)}]`,
  publish: () => {
    throw new Error("Socket.IO has no acknowledged publish in this bench");
  },
  replyId: (text) => {
    const id = /^43(\d+)/.exec(text);
    return id ? Number(id[1]) : undefined;
  },
  replyData: (text) => JSON.parse(text.replace(/^43\d+/, ""))[0],
};

const wire = protocolName === "socketio" ? socketIoWire : duplexWire;
const url = wire.url(port);

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

async function open(
  n: number,
  batch = 200,
  at: (i: number) => string = () => url,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i += batch) {
    const opened = Array.from(
      { length: Math.min(batch, n - i) },
      (_, k) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(at(i + k));
          const ready = wire.ready(ws);
          ws.onopen = () => ready.then(() => resolve(ws));
          ws.onerror = () => reject(new Error("connect failed"));
          if (wire === socketIoWire) {
            // Engine.IO pings ("2") must be answered ("3").
            ws.addEventListener("message", (event) => {
              if (event.data === "2") ws.send("3");
            });
          }
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

const echo = (data: string, id: number) => wire.echo(data, id);

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
    ws.onmessage = (event) => {
      if (wire.replyId(event.data) === undefined) return;
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
      const id = wire.replyId(event.data);
      if (id === undefined) return;
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
function joinAll(sockets: WebSocket[]): Promise<unknown[]> {
  return Promise.all(sockets.map((ws, i) =>
    new Promise<unknown>((resolve) => {
      ws.onmessage = (event) => {
        if (wire.replyId(event.data) === i + 1) {
          resolve(wire.replyData(event.data));
        }
      };
      ws.send(wire.join(i + 1));
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

/**
 * 4. Fan-out: `clients` members of one room, `publishes` publishes from one
 * of them: the time until each member has each publish, and CPU per
 * delivery. Across nodes (`nodes`, one Redis between them) the members are
 * spread over every node, the publisher is on the first, and the CPU is
 * summed over every node (Redis's apart, with `redisPid`).
 */
async function fanout(): Promise<Record<string, number>> {
  const { clients = 1000, publishes = 20, size = 32, redisPid } = params;
  const all = nodes ?? [{ port, pid }];
  const sockets = await open(
    clients,
    200,
    (i) => wire.url(all[i % all.length].port),
  );
  await joinAll(sockets);
  await delay(200); // subscriptions settle on every node
  const data = "x".repeat(size);
  const delays: number[] = [];
  let deliveries = 0;
  let t0 = 0;
  let received = 0;
  let done: () => void = () => {};
  for (const ws of sockets) {
    ws.onmessage = (event) => {
      if (event.data === "2") return; // an Engine.IO ping
      delays.push(performance.now() - t0);
      deliveries++;
      if (++received === clients) done();
    };
  }
  const cpuOf = () =>
    all.reduce((sum, node) => sum + serverCpuMicros(node.pid), 0);
  const cpu0 = cpuOf();
  const redis0 = redisPid ? serverCpuMicros(redisPid) : 0;
  for (let p = 0; p < publishes; p++) {
    received = 0;
    const arrived = new Promise<void>((resolve) => done = resolve);
    t0 = performance.now();
    sockets[0].send(wire.fanout(data));
    await Promise.race([arrived, delay(5000)]);
    await delay(20);
  }
  const cpu = cpuOf() - cpu0;
  const redis = redisPid ? serverCpuMicros(redisPid) - redis0 : NaN;
  await closeAll(sockets);
  delays.sort((a, b) => a - b);
  return {
    p50Ms: percentile(delays, 0.5),
    p99Ms: percentile(delays, 0.99),
    cpuMicrosPerDelivery: cpu / deliveries,
    redisCpuMicrosPerDelivery: redis / deliveries,
    deliveries,
    expected: clients * publishes,
  };
}

const workloads: Record<string, () => Promise<Record<string, number>>> = {
  throughput,
  latency,
  idle,
  fanout,
  handshakes,
  publish,
  recover,
  crossfanout: fanout,
};
const run = workloads[workload];
if (!run) throw new Error(`unknown workload ${workload}`);
console.log(JSON.stringify(await run()));
