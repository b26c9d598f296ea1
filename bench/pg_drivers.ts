/**
 * The two Postgres drivers on Deno, measured as the engine uses a driver,
 * on one private PostgreSQL, same run: postgres.js (`postgres`) and
 * node-postgres (`pg`). Round trips of the engine's publish (an insert and
 * a `NOTIFY` in one statement), one at a time and 8 at once; `LISTEN`
 * delivery of 2,000 notifications (all arrive? how fast?); and after the
 * database restarts, whether the listener comes back by itself. The choice
 * and these figures are in docs/SCALING.md.
 *
 *   deno run -A bench/pg_drivers.ts
 */

import { postgres } from "../lib/postgres/_postgres.ts";
import pg from "npm:pg@8.23.0";
import { startPostgres } from "../tests/_postgres.ts";

const N = 2_000;
const STATEMENT =
  "with i as (insert into t (body) values ($1) returning id) select pg_notify('c', (select id::text from i))";

interface Driver {
  query(text: string, args: unknown[]): Promise<unknown>;
  listen(on: (payload: string) => void, onListen: () => void): Promise<void>;
  end(): Promise<void>;
}

function postgresJs(url: string): Driver {
  const sql = postgres(url, {
    max: 8,
    onnotice: () => {},
    backoff: () => 0.2,
  });
  return {
    query: (text, args) => sql.unsafe(text, args as string[]),
    listen: async (on, onListen) => void await sql.listen("c", on, onListen),
    end: () => sql.end({ timeout: 1 }),
  };
}

function nodePg(url: string): Driver {
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  // Idle clients that lose their server emit on the pool: without this, a crash.
  pool.on("error", () => {});
  let listener: pg.Client | undefined;
  return {
    query: (text, args) => pool.query(text, args),
    async listen(on, onListen) {
      // pg has no reconnecting listener: this is all it does by itself.
      listener = new pg.Client({ connectionString: url });
      listener.on("error", () => {});
      listener.on(
        "notification",
        (n: { payload?: string }) => on(n.payload ?? ""),
      );
      await listener.connect();
      await listener.query("listen c");
      onListen();
    },
    async end() {
      await listener?.end().catch(() => {});
      await pool.end();
    },
  };
}

async function rate(driver: Driver, parallel: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < N) await driver.query(STATEMENT, ["x".repeat(64)]);
    }),
  );
  return N / ((performance.now() - started) / 1000);
}

async function measure(name: string, make: (url: string) => Driver) {
  const server = await startPostgres();
  const setup = postgres(server.url, { onnotice: () => {} });
  await setup`create table t (id bigserial primary key, body text)`;
  await setup.end();
  const driver = make(server.url);
  let heard = 0;
  let listens = 0;
  await driver.listen(() => heard++, () => listens++);
  const serial = await rate(driver, 1);
  const parallel = await rate(driver, 8);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const delivered = heard / (2 * N);
  await server.stop();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await server.restart();
  const deadline = Date.now() + 10_000;
  while (listens < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const relistened = listens >= 2;
  await driver.end().catch(() => {});
  await server.close();
  console.log(
    `${name}: ${serial.toFixed(0)} publishes/s one at a time, ${
      parallel.toFixed(0)
    } 8 at once; LISTEN got ${(delivered * 100).toFixed(1)}%; ${
      relistened ? "listens again by itself" : "does not listen again"
    } after a restart`,
  );
}

await measure("postgres.js 3.4.9", postgresJs);
await measure("pg 8.23.0", nodePg);
